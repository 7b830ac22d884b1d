//! The one error shape every response uses: `{"error":{"code":"…","message":"…","details":…}}`,
//! rendered from a [`Refusal`] (its code, its Chinese message, its facts) or, for a failure of
//! ours, a generic 500 whose cause goes to the log only.

use crate::app::Error;
use crate::domain::refusal::{Kind, Refusal};
use actix_web::body::BoxBody;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

pub struct ApiError(Error);

/// One line, whatever `RUST_BACKTRACE` says: the request logger prints errors with `{:?}`, and a
/// backtrace through actix's types made each failure a line of most of a megabyte.
impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Error::Refused(r) => write!(f, "{}", r.code()),
            other => write!(f, "{:#}", other),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `round_not_frozen`, `invalid_field`, `forbidden`, … (the list
    /// is in the API description).
    pub code: String,
    /// For people, in Chinese: what is wrong and, where it helps, what to do.
    pub message: String,
    /// Facts behind the error for some codes: `field` for a wrong value, when and where a
    /// voucher was used for `already_used`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Kind::Timeout => StatusCode::REQUEST_TIMEOUT,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Gone => StatusCode::GONE,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::TooMany => StatusCode::TOO_MANY_REQUESTS,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
    }
}

/// The JSON body of a refusal.
pub fn body(r: &Refusal) -> String {
    serde_json::to_string(&ErrorBody {
        error: ErrorDetail {
            code: r.code().into(),
            message: r.message(),
            details: r.details(),
        },
    })
    .unwrap_or_default()
}

impl ApiError {
    /// What the caller is told: a refusal, or `None` for a failure of ours (500).
    pub fn refusal(&self) -> Option<Refusal> {
        match &self.0 {
            Error::Refused(r) => Some(r.clone()),
            Error::Unavailable(_) => Some(Refusal::Unavailable),
            Error::StorageFull(_) => Some(Refusal::StorageFull),
            Error::Internal(_) => None,
        }
    }
}

/// Logs a storage failure at most once a minute per kind, with how many were left unlogged, so
/// that a burst of them (a full disk, a restarting database) does not fill the log (and the disk)
/// in turn; each one is counted in `storage_failures_total`.
fn note_storage_failure(kind: &'static str, cause: &str) {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    static LAST: [AtomicI64; 2] = [AtomicI64::new(i64::MIN / 2), AtomicI64::new(i64::MIN / 2)];
    static UNLOGGED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
    metrics::counter!("storage_failures_total", "kind" => kind).increment(1);
    let i = usize::from(kind == "full");
    let now = chrono::Utc::now().timestamp();
    let last = LAST[i].load(Ordering::Relaxed);
    if now - last >= 60
        && LAST[i]
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let unlogged = UNLOGGED[i].swap(0, Ordering::Relaxed);
        tracing::error!(kind, cause, unlogged, "the database cannot take requests");
    } else {
        UNLOGGED[i].fetch_add(1, Ordering::Relaxed);
    }
}

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.refusal() {
            Some(r) => status_of(r.kind()),
            None => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut res = HttpResponse::build(self.status_code());
        match &self.0 {
            Error::Unavailable(cause) => note_storage_failure("unavailable", cause),
            Error::StorageFull(cause) => note_storage_failure("full", cause),
            Error::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed unexpectedly");
            }
            Error::Refused(_) => {}
        }
        let text = match self.refusal() {
            Some(r) => {
                if r.kind() == Kind::Unauthenticated {
                    res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
                }
                if let Some(seconds) = r.retry_after() {
                    res.insert_header((header::RETRY_AFTER, seconds.to_string()));
                }
                body(&r)
            }
            None => internal_body(),
        };
        res.content_type("application/json").body(text)
    }
}

fn internal_body() -> String {
    serde_json::json!({"error": {"code": "internal_error", "message": "服务出了点问题，已记录，请稍后再试"}})
        .to_string()
}

/// Turns actix's JSON extraction failures into refusals.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let r = match &err {
        JsonPayloadError::ContentType => Refusal::UnsupportedMediaType,
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => Refusal::PayloadTooLarge { limit: *limit },
        JsonPayloadError::Deserialize(e) => Refusal::MalformedJson {
            problem: e.to_string(),
        },
        _ => Refusal::UnreadableBody,
    };
    ApiError::from(r).into()
}

pub fn path_error(err: PathError, req: &HttpRequest) -> actix_web::Error {
    let _ = err;
    ApiError::from(Refusal::NoSuchRoute {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
    .into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let problem = err.to_string();
    // serde_urlencoded names the field in backticks: "unknown field `x`", "invalid digit …".
    let field = problem
        .split('`')
        .nth(1)
        .filter(|_| problem.contains("field"))
        .unwrap_or("")
        .to_owned();
    ApiError::from(Refusal::query(field, "查询参数不符合要求")).into()
}

/// The refusal for an error response that carries no JSON body of its own (no route, wrong
/// method, a limit hit inside actix); `None` for a failure of ours.
pub fn default_for_status(status: StatusCode, method: &str, path: &str) -> Option<Refusal> {
    let (method, path) = (method.to_owned(), path.to_owned());
    Some(match status {
        StatusCode::NOT_FOUND => Refusal::NoSuchRoute { method, path },
        StatusCode::METHOD_NOT_ALLOWED => Refusal::MethodNotAllowed { method, path },
        StatusCode::PAYLOAD_TOO_LARGE => Refusal::PayloadTooLarge { limit: 0 },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Refusal::UnsupportedMediaType,
        StatusCode::REQUEST_TIMEOUT => Refusal::BodyTimeout { secs: 0 },
        _ => return None,
    })
}

/// The body for a status actix answered by itself.
pub fn default_body(status: StatusCode, method: &str, path: &str) -> String {
    match default_for_status(status, method, path) {
        Some(r) => body(&r),
        None if status.is_server_error() => internal_body(),
        None => body(&Refusal::UnreadableBody),
    }
}
