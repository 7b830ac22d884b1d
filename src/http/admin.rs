//! Operators and auditors: tokens for venues, witnesses and auditors; the audit log.

use super::body::Body;
use super::docs::{BodyRefusals, StaffRefusals};
use super::error::{ApiError, ErrorBody};
use super::ok_json;
use crate::app::auth::{Auditor, Operator, Staff};
use crate::app::{staff, App};
use crate::domain::audit::AuditEntry;
use crate::domain::token::Role;
use crate::store::TokenRecord;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/whoami").get(whoami))
        .service(
            web::resource("/api/admin/tokens")
                .get(list_tokens)
                .post(create_token),
        )
        .service(web::resource("/api/admin/tokens/{id}/revoke").post(revoke_token))
        .service(web::resource("/api/audit").get(audit_log))
        .service(web::resource("/api/audit/verify").get(verify_audit))
        .service(web::resource("/api/audit/head").get(audit_head));
}

#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    name: String,
    role: Role,
    venue_id: Option<String>,
    venue_name: Option<String>,
    /// For venue tokens: how long after a redemption it can be reversed.
    reversal_window_minutes: Option<i64>,
}

/// The token's own identity: for pages to check a token before using it.
#[utoipa::path(get, path = "/api/whoami", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), StaffRefusals))]
pub async fn whoami(app: web::Data<App>, staff: Staff) -> HttpResponse {
    let t = staff.token();
    ok_json(&WhoAmI {
        name: t.name.clone(),
        role: t.role,
        venue_id: t.venue_id.clone(),
        venue_name: t
            .venue_id
            .as_deref()
            .and_then(|id| app.campaign.venue(id))
            .map(|v| v.name.clone()),
        reversal_window_minutes: (t.role == Role::Venue)
            .then_some(app.vouchers.reversal_window_minutes),
    })
}

/// Every token ever made, revoked ones included (never the tokens themselves).
#[utoipa::path(get, path = "/api/admin/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenRecord>), StaffRefusals))]
pub async fn list_tokens(
    app: web::Data<App>,
    operator: Operator,
) -> Result<HttpResponse, ApiError> {
    Ok(ok_json(&staff::tokens(&app, &operator).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// `venue`, `witness` or `auditor`; operator tokens are made with the CLI only.
    role: Role,
    /// Who or what will use it: "衡山宾馆前台", "公证处".
    name: String,
    /// The venue a venue token is bound to.
    venue_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// Shown once; only its hash is kept.
    token: String,
    #[serde(flatten)]
    record: TokenRecord,
}

/// Makes a token for a venue, a witness or an auditor. The token is in this response only.
#[utoipa::path(post, path = "/api/admin/tokens", tag = "admin", security(("bearer" = [])),
    request_body = CreateToken,
    responses((status = 201, body = CreatedToken), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`unknown_venue`"),
    (status = 409, body = ErrorBody, description = "`venue_inactive`"),
    (status = 422, body = ErrorBody, description = "`invalid_field` (`name`, `venue_id`)")))]
pub async fn create_token(
    app: web::Data<App>,
    operator: Operator,
    Body(body): Body<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let created = staff::create_token(
        &app,
        &operator,
        body.role,
        &body.name,
        body.venue_id.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedToken {
        token: created.token,
        record: created.record,
    }))
}

/// Revokes a token at once; it is kept in the list, marked revoked. An operator cannot revoke
/// its own token, nor the last live operator token.
#[utoipa::path(post, path = "/api/admin/tokens/{id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "token id")),
    responses((status = 200, body = TokenRecord), StaffRefusals,
    (status = 404, body = ErrorBody, description = "`token_not_found`"),
    (status = 409, body = ErrorBody, description = "`already_revoked`, `own_token`, `last_operator`")))]
pub async fn revoke_token(
    app: web::Data<App>,
    operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok_json(
        &staff::revoke_token(&app, &operator, id.into_inner()).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries after this sequence number (default 0).
    #[serde(default)]
    after: i64,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    head_seq: i64,
    head_hash: String,
}

/// The audit log, oldest first, page by page.
#[utoipa::path(get, path = "/api/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), StaffRefusals,
    (status = 400, body = ErrorBody, description = "`invalid_query` (`limit`)")))]
pub async fn audit_log(
    app: web::Data<App>,
    auditor: Auditor,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = staff::audit_page(&app, &auditor, query.after, query.limit.unwrap_or(100)).await?;
    Ok(ok_json(&AuditPage {
        entries: page.entries,
        head_seq: page.head.0,
        head_hash: page.head.1,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AuditVerdict {
    ok: bool,
    /// Entries in the verified chain.
    entries: Option<i64>,
    /// Where the chain breaks.
    problem: Option<String>,
}

/// The audit log's head (no authentication, DESIGN §4d): keep a copy, and check it later with
/// `campaign-lottery audit verify --anchors`.
#[utoipa::path(get, path = "/api/audit/head", tag = "admin",
    responses((status = 200, body = crate::domain::draw::record::AuditHead)))]
pub async fn audit_head(app: web::Data<App>) -> Result<HttpResponse, ApiError> {
    Ok(ok_json(&staff::audit_head(&app).await?))
}

/// Recomputes the whole hash chain.
#[utoipa::path(get, path = "/api/audit/verify", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AuditVerdict), StaffRefusals))]
pub async fn verify_audit(app: web::Data<App>, auditor: Auditor) -> Result<HttpResponse, ApiError> {
    let verdict = match staff::verify_audit(&app, &auditor).await? {
        Ok(n) => AuditVerdict {
            ok: true,
            entries: Some(n),
            problem: None,
        },
        Err(brk) => AuditVerdict {
            ok: false,
            entries: None,
            problem: Some(brk.to_string()),
        },
    };
    Ok(ok_json(&verdict))
}
