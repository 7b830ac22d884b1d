//! HTTP: one module per audience, each handler parsing the request, calling one use case of
//! [`crate::app`] and rendering its answer. Who may call what is in the handlers' argument types
//! ([`auth`]); the error shape is [`error`]'s.

pub mod admin;
pub mod auth;
pub mod body;
pub mod docs;
pub mod error;
pub mod pages;
pub mod participants;
pub mod public;
pub mod quiz;
pub mod report;
pub mod rounds;
pub mod sms;
pub mod vouchers;

use crate::config::ServerSettings;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use error::ApiError;
use std::time::{Duration, Instant};

/// What the HTTP layer needs of the settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub body_limit: usize,
    pub body_timeout: Duration,
    /// Mark session cookies `Secure` (served over HTTPS).
    pub secure_cookies: bool,
    /// Proxies in front that append to `X-Forwarded-For` (see [`client_address_in`]).
    pub trusted_proxies: usize,
}

impl Settings {
    pub fn new(server: &ServerSettings) -> Self {
        Self {
            body_limit: server.body_limit_bytes,
            body_timeout: Duration::from_secs(server.body_timeout_secs.max(1)),
            secure_cookies: server.https,
            trusted_proxies: server.trusted_proxies,
        }
    }
}

/// Registers every route, the extractor limits and the JSON error handlers.
pub fn configure(cfg: &mut web::ServiceConfig, settings: &Settings) {
    cfg.app_data(web::Data::new(settings.clone()))
        .app_data(web::PayloadConfig::new(settings.body_limit))
        .app_data(
            web::JsonConfig::default()
                .limit(settings.body_limit)
                .error_handler(error::json_error),
        )
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .configure(public::routes)
        .configure(participants::routes)
        .configure(quiz::routes)
        .configure(rounds::routes)
        .configure(admin::routes)
        .configure(report::routes)
        .configure(vouchers::routes)
        .configure(sms::routes)
        .configure(pages::routes)
        .configure(docs::routes);
}

/// For any request no route matches.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::from(crate::domain::refusal::Refusal::NoSuchRoute {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
    .error_response()
}

/// Gives error responses that actix made itself (404, 405, limits) the JSON error shape.
pub fn json_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let text = error::default_body(
            res.status(),
            res.request().method().as_str(),
            res.request().path(),
        );
        let (req, res) = res.into_parts();
        let mut res = res.set_body(text);
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let res: ServiceResponse<EitherBody<B, BoxBody>> =
            ServiceResponse::new(req, res.map_into_boxed_body()).map_into_right_body();
        Ok(ErrorHandlerResponse::Response(res))
    })
}

/// Every answer that does not set its own policy may not be framed, and is not to be sniffed
/// as something else than its content type: API data runs no scripts and loads nothing.
pub fn security_headers<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        let headers = res.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            let html = headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
            // The API page (Swagger UI) runs its own scripts: it may only not be framed.
            let policy = if html {
                "frame-ancestors 'none'"
            } else {
                "default-src 'none'; frame-ancestors 'none'"
            };
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(policy),
            );
        }
        Ok(res)
    }
}

/// Counts requests and their latency by route pattern (not raw path, to keep labels few), and
/// tells readiness about writes refused for want of space.
pub fn record_metrics<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let started = Instant::now();
    let method = req.method().to_string();
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        if res.status() == actix_web::http::StatusCode::INSUFFICIENT_STORAGE {
            if let Some(app) = res.request().app_data::<web::Data<crate::app::App>>() {
                app.health.note_full();
            }
        }
        let status = res.status().as_u16().to_string();
        let labels = [("method", method), ("route", route), ("status", status)];
        metrics::counter!("http_requests_total", &labels).increment(1);
        metrics::histogram!("http_request_duration_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        Ok(res)
    }
}

/// The span of each request, as tracing-actix-web's default but with the path alone: a query
/// string may carry a token (the SMS reports' address) or a phone number, which no log keeps.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.path(),
            http.client_ip = %request.connection_info().realip_remote_addr().unwrap_or(""),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Echoes the request id the tracing middleware gave this request, for support questions.
pub fn echo_request_id<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .copied();
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id.to_string()).ok()) {
            res.headers_mut()
                .insert(HeaderName::from_static("x-request-id"), value);
        }
        Ok(res)
    }
}

/// A JSON response with status 200.
pub fn ok_json<T: serde::Serialize>(value: &T) -> HttpResponse {
    HttpResponse::Ok().json(value)
}

/// The client's address, for the per-address limits: see [`client_address_in`].
pub fn client_address(req: &HttpRequest) -> String {
    let trusted = req
        .app_data::<web::Data<Settings>>()
        .map_or(0, |s| s.trusted_proxies);
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    client_address_in(req.peer_addr().map(|a| a.ip()), &forwarded, trusted)
}

/// The client's address from the connection's peer and the `X-Forwarded-For` headers as
/// received (in order), behind `trusted` proxies that each append the address they were reached
/// from: the entry `trusted` places from the right is the one the outermost proxy appended.
/// Entries left of it are whatever the client sent, so never used; when there are fewer entries
/// than proxies, or that one is not an address, the request did not come through them all and
/// the peer is used.
pub fn client_address_in(
    peer: Option<std::net::IpAddr>,
    forwarded_for: &[&str],
    trusted: usize,
) -> String {
    let peer = || peer.map_or_else(|| "unknown".into(), |ip| ip.to_string());
    if trusted == 0 {
        return peer();
    }
    let entries: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    entries
        .len()
        .checked_sub(trusted)
        .and_then(|i| entries[i].parse::<std::net::IpAddr>().ok())
        .map_or_else(peer, |ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::client_address_in;
    use std::net::IpAddr;

    const PROXY: &str = "10.0.0.2";

    fn peer() -> Option<IpAddr> {
        Some(PROXY.parse().unwrap())
    }

    #[test]
    fn without_proxies_the_peer_is_the_client_whatever_the_header_says() {
        assert_eq!(client_address_in(peer(), &["1.2.3.4"], 0), PROXY);
        assert_eq!(client_address_in(None, &[], 0), "unknown");
    }

    #[test]
    fn behind_proxies_the_address_they_appended_counts_not_what_the_client_wrote() {
        // The client sent "6.6.6.6"; nginx appended the address it saw.
        assert_eq!(
            client_address_in(peer(), &["6.6.6.6, 203.0.113.7"], 1),
            "203.0.113.7"
        );
        // Two proxies: a CDN appended the client, the load balancer the CDN.
        assert_eq!(
            client_address_in(peer(), &["6.6.6.6, 203.0.113.7, 198.51.100.1"], 2),
            "203.0.113.7"
        );
        // Several headers are one list, in order.
        assert_eq!(
            client_address_in(peer(), &["6.6.6.6", "203.0.113.7"], 1),
            "203.0.113.7"
        );
        assert_eq!(
            client_address_in(peer(), &["2001:db8::1"], 1),
            "2001:db8::1"
        );
    }

    #[test]
    fn a_request_that_bypassed_the_proxies_counts_as_its_peer() {
        assert_eq!(client_address_in(peer(), &[], 1), PROXY);
        assert_eq!(client_address_in(peer(), &["203.0.113.7"], 2), PROXY);
        assert_eq!(client_address_in(peer(), &["not-an-address"], 1), PROXY);
        assert_eq!(client_address_in(peer(), &["6.6.6.6, "], 1), PROXY);
    }
}
