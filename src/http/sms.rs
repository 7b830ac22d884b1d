//! The address an SMS provider pushes its delivery reports to.

use super::body::Body;
use super::error::{ApiError, ErrorBody};
use crate::app::App;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/sms/reports/{provider}").post(reports));
}

#[derive(Deserialize, IntoParams)]
pub struct ReportQuery {
    /// `SMS_REPORT_TOKEN`, as given in the provider's console with this address.
    token: Option<String>,
}

/// Delivery reports pushed by the configured provider (Aliyun `SmsReport`, Tencent's status
/// callback), each marking a sent message delivered or failed. The address exists only with
/// `SMS_REPORT_TOKEN` set, and answers 404 to any other provider or token.
#[utoipa::path(post, path = "/api/sms/reports/{provider}", tag = "public",
    params(("provider" = String, Path, description = "`aliyun` or `tencent`"), ReportQuery),
    request_body = Object,
    responses(
        (status = 200, description = "What the provider expects: Aliyun `{\"code\":0,\"msg\":\"成功\"}`, Tencent `{\"result\":0,\"errmsg\":\"OK\"}`"),
        (status = 400, body = ErrorBody, description = "`malformed_json`: not the provider's list of reports"),
        (status = 404, body = ErrorBody, description = "`not_found`")))]
pub async fn reports(
    app: web::Data<App>,
    provider: web::Path<String>,
    query: web::Query<ReportQuery>,
    Body(body): Body<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let taken =
        crate::app::sms::record_reports(&app, &provider, query.token.as_deref(), &bytes).await?;
    tracing::info!(
        reports = taken.reports,
        changed = taken.changed,
        "SMS delivery reports taken"
    );
    Ok(HttpResponse::Ok().json(taken.answer))
}
