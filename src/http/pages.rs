//! The participant pages: plain HTML, CSS and small ES modules compiled into the binary, so the
//! service needs no files beside it and no build step.

use crate::domain::refusal::Refusal;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

/// (path under /static/, content type, body)
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    ),
    (
        "prefs.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/prefs.js"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/common.js"),
    ),
    (
        "index.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/index.js"),
    ),
    (
        "join.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/join.js"),
    ),
    (
        "quiz.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/quiz.js"),
    ),
    (
        "me.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/me.js"),
    ),
    (
        "draws.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/draws.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console.js"),
    ),
    (
        "desk.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/desk.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/live.js"),
    ),
    (
        "recompute.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/recompute.js"),
    ),
    (
        "holder-code.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/holder-code.js"),
    ),
];

/// The ALTCHA widget, its PBKDF2 worker and Chinese texts (only for /join), and the QR code
/// generator (for /me) (static/vendor/README.md). Unchanged between releases of the service, and
/// 150 KB on a weak signal: cached a day.
const VENDORED: &[(&str, &str, &str)] = &[
    (
        "qrcode.mjs",
        "text/javascript; charset=utf-8",
        include_str!("../../static/vendor/qrcode.mjs"),
    ),
    (
        "altcha.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/vendor/altcha.min.js"),
    ),
    (
        "altcha-pbkdf2.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/vendor/altcha-pbkdf2.js"),
    ),
    (
        "altcha-zh-cn.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/vendor/altcha-zh-cn.js"),
    ),
    (
        "altcha.css",
        "text/css; charset=utf-8",
        include_str!("../../static/vendor/altcha.css"),
    ),
];

/// (route, body)
const PAGES: &[(&str, &str)] = &[
    ("/", include_str!("../../static/index.html")),
    ("/join", include_str!("../../static/join.html")),
    ("/quiz", include_str!("../../static/quiz.html")),
    ("/me", include_str!("../../static/me.html")),
    ("/privacy", include_str!("../../static/privacy.html")),
    ("/draws", include_str!("../../static/draws.html")),
    ("/live", include_str!("../../static/live.html")),
    ("/console", include_str!("../../static/console.html")),
    ("/desk", include_str!("../../static/desk.html")),
];

/// Pages load only what this service serves.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

fn respond(content_type: &'static str, body: &'static str) -> HttpResponse {
    respond_cached(content_type, body, "no-cache")
}

fn respond_cached(
    content_type: &'static str,
    body: &'static str,
    cache: &'static str,
) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .body(body)
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    if let Some((_, content_type, body)) = VENDORED.iter().find(|(n, _, _)| *n == name.as_str()) {
        return respond_cached(content_type, body, "public, max-age=86400");
    }
    match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, body)) => respond(content_type, body),
        None => HttpResponse::NotFound()
            .content_type("application/json")
            .body(super::error::body(&Refusal::NoSuchRoute {
                method: "GET".into(),
                path: format!("/static/{name}"),
            })),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    for &(path, body) in PAGES {
        cfg.service(
            web::resource(path)
                .get(move || async move { respond("text/html; charset=utf-8", body) }),
        );
    }
    // The icon and the share image: fetched by every first visit and every link preview, and the
    // same for a release, so cached a day. /favicon.ico is what a browser asks for unprompted.
    for path in ["/favicon.svg", "/favicon.ico"] {
        cfg.service(web::resource(path).get(|| async {
            respond_cached(
                "image/svg+xml",
                include_str!("../../static/favicon.svg"),
                "public, max-age=86400",
            )
        }));
    }
    cfg.service(web::resource("/static/share.png").get(|| async {
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("image/png")))
            .insert_header((
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ))
            .insert_header((
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .body(&include_bytes!("../../static/share.png")[..])
    }));
    cfg.service(web::resource("/static/{name}").get(asset));
}
