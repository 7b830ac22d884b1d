//! Bearer tokens: 401 when the token is missing, unknown or revoked; 403 when its role does not
//! allow the action.

use super::error::ApiError;
use super::AppState;
use crate::domain::token::{token_hash, Role};
use crate::store::TokenRecord;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

/// The holder of a valid, unrevoked API token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: TokenRecord,
}

impl Caller {
    pub fn role(&self) -> Role {
        self.token.role
    }

    /// Refuses unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.token.role) {
            return Ok(());
        }
        let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "this needs a {} token; yours is a {} token",
            wanted.join(" or "),
            self.token.role
        )))
    }

    /// How the caller appears in the audit log.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.token.role, self.token.name)
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            "missing_token",
            "this needs an API token: send Authorization: Bearer <token>",
        )
    };
    let value = req.headers().get(AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized("invalid_token", "the Authorization header is not text")
    })?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim().to_owned())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let token = token?;
            let state =
                state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("app state missing")))?;
            let record = state
                .store
                .token_by_hash(&token_hash(&token))
                .await?
                .ok_or_else(|| {
                    ApiError::unauthorized("invalid_token", "this token is not known")
                })?;
            if record.revoked_at.is_some() {
                return Err(ApiError::unauthorized(
                    "invalid_token",
                    "this token has been revoked",
                ));
            }
            Ok(Caller { token: record })
        })
    }
}

/// Participants' session cookie (HttpOnly, SameSite=Lax); the API also takes it as a Bearer token.
pub const SESSION_COOKIE: &str = "clp_session";
/// Prefix of participants' session tokens.
pub const SESSION_PREFIX: &str = "clp_";

/// A logged-in participant.
#[derive(Debug, Clone)]
pub struct ParticipantSession {
    pub participant: crate::store::Participant,
    pub token_hash: String,
}

fn session_token(req: &HttpRequest) -> Option<String> {
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        return Some(c.value().to_owned());
    }
    bearer(req).ok().filter(|t| t.starts_with(SESSION_PREFIX))
}

/// Just the hash of the session token, for handlers that look the session up together with
/// their own data in one query. 401 when there is no token at all.
pub struct SessionToken(pub String);

impl FromRequest for SessionToken {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            session_token(req)
                .map(|t| SessionToken(token_hash(&t)))
                .ok_or_else(login_required),
        )
    }
}

pub fn login_required() -> ApiError {
    ApiError::unauthorized("login_required", "请先报名或登录")
}

impl FromRequest for ParticipantSession {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = session_token(req);
        Box::pin(async move {
            let token =
                token.ok_or_else(|| ApiError::unauthorized("login_required", "请先报名或登录"))?;
            let state =
                state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("app state missing")))?;
            let token_hash = token_hash(&token);
            let participant = state
                .store
                .participant_by_session(&token_hash, state.clock.now())
                .await?
                .ok_or_else(|| {
                    ApiError::unauthorized("login_required", "登录已过期，请重新登录")
                })?;
            Ok(ParticipantSession {
                participant,
                token_hash,
            })
        })
    }
}
