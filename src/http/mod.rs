//! HTTP: one module per audience, all thin over the store and the domain.

pub mod admin;
pub mod auth;
pub mod body;
pub mod draws;
pub mod error;
pub mod participant;
pub mod public;
pub mod quiz;
pub mod vouchers;

use crate::clock::Clock;
use crate::config::{LoginSettings, VoucherSettings};
use crate::domain::campaign::Campaign;
use crate::domain::quiz::QuestionBank;
use crate::sms::SmsSender;
use crate::store::SharedStore;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use error::{ApiError, ErrorBody, ErrorDetail};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::Instant;
use utoipa::OpenApi;

/// What every handler can reach.
pub struct AppState {
    pub store: SharedStore,
    pub campaign: Arc<Campaign>,
    pub questions: Arc<QuestionBank>,
    pub clock: Arc<dyn Clock>,
    pub metrics: PrometheusHandle,
    pub login: LoginSettings,
    pub vouchers: VoucherSettings,
    pub sms: Arc<dyn SmsSender>,
    /// Frozen rounds' entries and trees, for the entries file and inclusion proofs.
    pub frozen: draws::FrozenCache,
    /// Attempts this process started, for one-write submissions.
    pub attempts: quiz::AttemptCache,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Campaign lottery and voucher service",
        description = "你学法我送票·跟着旅发大会游湖南(衡阳): the law-quiz campaign's weekly draws and vouchers. \
                       Every error is `{\"error\":{\"code\":\"…\",\"message\":\"…\"}}`."
    ),
    paths(
        public::healthz,
        public::readyz,
        public::metrics,
        public::campaign,
        participant::register,
        participant::request_code,
        participant::login,
        participant::logout,
        participant::me,
        quiz::start,
        quiz::show_attempt,
        quiz::submit,
        draws::record,
        draws::entries,
        draws::proof,
        draws::commit,
        draws::reveal,
        draws::freeze,
        draws::draw,
        admin::whoami,
        admin::list_tokens,
        admin::create_token,
        admin::revoke_token,
        admin::audit_log,
        admin::verify_audit,
        vouchers::my_vouchers,
        vouchers::qr_svg,
        vouchers::check,
        vouchers::redeem,
        vouchers::recent,
        vouchers::reverse,
        vouchers::settlement_csv,
        vouchers::find_vouchers,
        vouchers::void,
        vouchers::reissue,
        vouchers::stats,
        vouchers::vouchers_csv,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "public", description = "No token needed"),
        (name = "participants", description = "Registration, login by SMS code, my tickets"),
        (name = "quiz", description = "The law quiz"),
        (name = "draws", description = "Weekly draws: commitments, freeze, reveals, draw, the published record"),
        (name = "admin", description = "Operators and auditors"),
        (name = "vouchers", description = "Vouchers: the holder's view, the front desk (venue tokens), void and reissue, exports"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Registers every route, the extractor limits and the JSON error handlers.
pub fn configure(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(body_limit)
            .error_handler(error::json_error),
    )
    .app_data(web::PayloadConfig::new(body_limit))
    .app_data(web::PathConfig::default().error_handler(error::path_error))
    .app_data(web::QueryConfig::default().error_handler(error::query_error))
    .configure(public::routes)
    .configure(participant::routes)
    .configure(quiz::routes)
    .configure(draws::routes)
    .configure(admin::routes)
    .configure(vouchers::routes)
    .configure(crate::web::routes)
    .service(
        utoipa_swagger_ui::SwaggerUi::new("/api/docs/{_:.*}")
            .url("/api/openapi.json", ApiDoc::openapi()),
    );
}

/// For any request no route matches.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::not_found(format!("no such route: {} {}", req.method(), req.path())).error_response()
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
        let (code, message) = error::default_for_status(
            res.status(),
            res.request().method().as_str(),
            res.request().path(),
        );
        let (req, res) = res.into_parts();
        let mut res = res.set_body(ApiError::body(code, &message));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let res: ServiceResponse<EitherBody<B, BoxBody>> =
            ServiceResponse::new(req, res.map_into_boxed_body()).map_into_right_body();
        Ok(ErrorHandlerResponse::Response(res))
    })
}

/// Counts requests and their latency by route pattern (not raw path, to keep labels few).
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
        let status = res.status().as_u16().to_string();
        let labels = [("method", method), ("route", route), ("status", status)];
        metrics::counter!("http_requests_total", &labels).increment(1);
        metrics::histogram!("http_request_duration_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        Ok(res)
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
