//! Operators and auditors: tokens for venues, witnesses and auditors; the audit log.

use super::auth::Caller;
use super::body::Body;
use super::error::ApiError;
use super::{ok_json, AppState};
use crate::domain::audit::AuditEntry;
use crate::domain::token::{check_token_name, check_venue_binding, Role};
use crate::store::{verify_audit_log, NewToken, TokenRecord};
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
        .service(web::resource("/api/audit/verify").get(verify_audit));
}

const READERS: &[Role] = &[Role::Operator, Role::Auditor];

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
#[utoipa::path(get, path = "/api/whoami", tag = "admin", security(("bearer" = [])), responses(
    (status = 200, body = WhoAmI), (status = 401, body = super::error::ErrorBody)))]
pub async fn whoami(state: web::Data<AppState>, caller: Caller) -> HttpResponse {
    let venue_name = caller
        .token
        .venue_id
        .as_deref()
        .and_then(|id| state.campaign.venue(id))
        .map(|v| v.name.clone());
    ok_json(&WhoAmI {
        name: caller.token.name.clone(),
        role: caller.role(),
        venue_id: caller.token.venue_id.clone(),
        venue_name,
        reversal_window_minutes: (caller.role() == Role::Venue)
            .then_some(state.vouchers.reversal_window_minutes),
    })
}

/// Every token ever made, revoked ones included (never the tokens themselves).
#[utoipa::path(get, path = "/api/admin/tokens", tag = "admin", security(("bearer" = [])), responses(
    (status = 200, body = Vec<TokenRecord>), (status = 401, body = super::error::ErrorBody),
    (status = 403, body = super::error::ErrorBody)))]
pub async fn list_tokens(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    Ok(ok_json(&state.store.list_tokens().await?))
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
#[utoipa::path(post, path = "/api/admin/tokens", tag = "admin", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = super::error::ErrorBody),
    (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Caller,
    Body(body): Body<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    if body.role == Role::Operator {
        return Err(ApiError::forbidden(
            "operator tokens are made on the server with `campaign-lottery token create`",
        ));
    }
    let name = check_token_name(&body.name).map_err(ApiError::invalid)?;
    check_venue_binding(body.role, body.venue_id.as_deref()).map_err(ApiError::invalid)?;
    let (token, token_hash) = crate::startup::new_token().map_err(ApiError::internal)?;
    let record = state
        .store
        .create_token(
            NewToken {
                name,
                role: body.role,
                venue_id: body.venue_id,
                token_hash,
            },
            &caller.actor(),
            state.clock.now(),
        )
        .await?;
    Ok(HttpResponse::Created().json(CreatedToken { token, record }))
}

/// Revokes a token at once; it is kept in the list, marked revoked.
#[utoipa::path(post, path = "/api/admin/tokens/{id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "token id")),
    responses((status = 200, body = TokenRecord), (status = 404, body = super::error::ErrorBody),
    (status = 409, body = super::error::ErrorBody)))]
pub async fn revoke_token(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    let record = state
        .store
        .revoke_token(id.into_inner(), &caller.actor(), state.clock.now())
        .await?;
    Ok(ok_json(&record))
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
    responses((status = 200, body = AuditPage), (status = 403, body = super::error::ErrorBody)))]
pub async fn audit_log(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let entries = state.store.audit_page(query.after.max(0), limit).await?;
    let (head_seq, head_hash) = state.store.audit_head().await?;
    Ok(ok_json(&AuditPage {
        entries,
        head_seq,
        head_hash,
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

/// Recomputes the whole hash chain.
#[utoipa::path(get, path = "/api/audit/verify", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AuditVerdict), (status = 403, body = super::error::ErrorBody)))]
pub async fn verify_audit(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let verdict = match verify_audit_log(state.store.as_ref()).await? {
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
