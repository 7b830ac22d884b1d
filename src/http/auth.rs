//! Extractors for who is asking: one per role, so that a handler declares its role by its
//! argument types and cannot forget the check. A missing, unknown or revoked token is 401; a
//! token of another role is 403 (both from [`crate::app::auth`]).

use super::error::ApiError;
use crate::app::auth::{
    self, Auditor, Desk, Operator, Session, SessionKey, SettlementReader, Staff, Witness,
};
use crate::app::App;
use crate::domain::refusal::Refusal;
use crate::domain::token::SESSION_PREFIX;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

/// Participants' session cookie (HttpOnly, SameSite=Lax, Secure behind HTTPS); the API also
/// takes the session as a Bearer token.
pub const SESSION_COOKIE: &str = "clp_session";

/// The first-party device cookie: a random id per browser, kept a year, whose hash an attempt
/// records so that the review sees one browser behind many phones. It proves nothing and
/// grants nothing.
pub const DEVICE_COOKIE: &str = "cl_device";

/// The browser's device id, and the cookie to set when it has none yet (a new id).
pub fn device_id(
    req: &HttpRequest,
    secure: bool,
) -> Result<(String, Option<actix_web::cookie::Cookie<'static>>), crate::csprng::RandomError> {
    use actix_web::cookie::{time, Cookie, SameSite};
    if let Some(c) = req
        .cookie(DEVICE_COOKIE)
        .filter(|c| (16..=64).contains(&c.value().len()))
    {
        return Ok((c.value().to_owned(), None));
    }
    let id = hex::encode(crate::csprng::bytes::<16>()?);
    let cookie = Cookie::build(DEVICE_COOKIE, id.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::days(365))
        .finish();
    Ok((id, Some(cookie)))
}

/// The Bearer token, if the request sends one.
fn bearer(req: &HttpRequest) -> Result<Option<String>, Refusal> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Refusal::InvalidToken)?;
    match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(Refusal::InvalidToken),
    }
}

fn app(req: &HttpRequest) -> Result<web::Data<App>, ApiError> {
    req.app_data::<web::Data<App>>()
        .cloned()
        .ok_or_else(|| ApiError::from(anyhow::anyhow!("the application is not configured")))
}

impl FromRequest for Staff {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let app = app(req);
        let token = bearer(req);
        Box::pin(async move {
            let token = token?.ok_or(Refusal::MissingToken)?;
            Ok(auth::staff(&*app?, &token).await?)
        })
    }
}

/// An extractor for a role: the staff token, then its role.
macro_rules! role_extractor {
    ($ty:ty, |$staff:ident, $app:ident| $check:expr) => {
        impl FromRequest for $ty {
            type Error = ApiError;
            type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

            fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
                let staff = Staff::from_request(req, payload);
                let app = app(req);
                Box::pin(async move {
                    let $staff = staff.await?;
                    let $app = app?;
                    Ok($check?)
                })
            }
        }
    };
}

role_extractor!(Operator, |staff, _app| staff.operator());
role_extractor!(Witness, |staff, _app| staff.witness());
role_extractor!(Auditor, |staff, _app| staff.auditor());
role_extractor!(Desk, |staff, app| staff.desk(&app));
role_extractor!(SettlementReader, |staff, app| staff.settlement_reader(&app));

/// The session token: a `clp_…` Bearer token wins over the cookie (an API client that sends
/// one means it), else the cookie.
fn session_token(req: &HttpRequest) -> Option<String> {
    if let Ok(Some(t)) = bearer(req) {
        if t.starts_with(SESSION_PREFIX) {
            return Some(t);
        }
    }
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

/// The session as sent, for use cases that check it together with their own work; 401 when
/// there is none at all.
impl FromRequest for SessionKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            session_token(req)
                .map(|t| SessionKey::from_token(&t))
                .ok_or_else(|| Refusal::LoginRequired { expired: false }.into()),
        )
    }
}

/// A logged-in participant.
impl FromRequest for Session {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let key = SessionKey::from_request(req, payload).into_inner();
        let app = app(req);
        Box::pin(async move { Ok(auth::session(&*app?, &key?).await?) })
    }
}
