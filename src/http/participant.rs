//! Participants: registration, login again by a one-time SMS code, and "mine".

use super::auth::{ParticipantSession, SESSION_COOKIE, SESSION_PREFIX};
use super::body::Body;
use super::error::ApiError;
use super::{ok_json, AppState};
use crate::domain::campaign::{round_state, RoundProgress, RoundState};
use crate::domain::phone::{mask, Phone};
use crate::domain::random::uniform;
use crate::domain::token::token_hash;
use crate::store::{LoginCode, LoginOutcome, NewParticipant, NewSession, Participant, StoreError};
use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use utoipa::ToSchema;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/participants").post(register))
        .service(web::resource("/api/login/code").post(request_code))
        .service(web::resource("/api/login").post(login))
        .service(web::resource("/api/logout").post(logout))
        .service(web::resource("/api/me").get(me));
}

/// A participant as they see themselves: the phone is masked even here, since pages show it.
#[derive(Serialize, ToSchema)]
pub struct ParticipantView {
    id: uuid::Uuid,
    /// `138****5678`
    phone: String,
    display_name: Option<String>,
}

impl From<&Participant> for ParticipantView {
    fn from(p: &Participant) -> Self {
        Self {
            id: p.id,
            phone: mask(&p.phone),
            display_name: p.display_name.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    participant: ParticipantView,
    /// The session token, also set as the `clp_session` cookie; send it as a Bearer token to use
    /// the API without cookies.
    token: String,
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn parse_phone(input: &str) -> Result<Phone, ApiError> {
    Phone::parse(input).map_err(|e| invalid("invalid_phone", e.to_string()))
}

/// A new session: the token for the participant, its hash for the database, and the cookie.
fn new_session(state: &AppState) -> Result<(String, NewSession), ApiError> {
    let bytes = crate::startup::os_random_bytes().map_err(ApiError::internal)?;
    let token = format!("{SESSION_PREFIX}{}", hex::encode(bytes));
    let session = NewSession {
        token_hash: token_hash(&token),
        expires_at: state.clock.now() + Duration::days(state.login.session_days),
    };
    Ok((token, session))
}

fn session_cookie(token: &str, days: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::days(days))
        .finish()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Mainland mobile number; `+86`, `0086`, spaces and dashes are fine.
    phone: String,
    /// Optional, at most 20 characters.
    display_name: Option<String>,
    /// Agreement to the privacy notice; must be `true`.
    consent: bool,
}

const MAX_NAME_CHARS: usize = 20;

fn display_name(input: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(name) = input.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            "invalid_display_name",
            format!("昵称最多 {MAX_NAME_CHARS} 个字"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("invalid_display_name", "昵称不能包含控制字符"));
    }
    Ok(Some(name.to_owned()))
}

/// Registers with a phone number and consent to the privacy notice; logs in at once.
#[utoipa::path(post, path = "/api/participants", tag = "participants", request_body = Registration,
    responses((status = 201, body = SessionView), (status = 409, body = super::error::ErrorBody),
    (status = 422, body = super::error::ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
    Body(body): Body<Registration>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&body.phone)?;
    let name = display_name(body.display_name.as_deref())?;
    if !body.consent {
        return Err(invalid("consent_required", "请阅读并同意隐私政策后再报名"));
    }
    let (token, session) = new_session(&state)?;
    let participant = state
        .store
        .register_participant(
            NewParticipant {
                phone: phone.as_str().to_owned(),
                display_name: name,
                session,
            },
            state.clock.now(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "phone_taken",
                "这个手机号已经报名了，请用短信验证码登录",
            ),
            other => other.into(),
        })?;
    Ok(HttpResponse::Created()
        .cookie(session_cookie(&token, state.login.session_days))
        .json(SessionView {
            participant: (&participant).into(),
            token,
        }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    phone: String,
}

#[derive(Serialize, ToSchema)]
pub struct CodeSent {
    /// The masked number the code went to.
    sent_to: String,
    expires_in_seconds: i64,
}

pub(crate) fn client_address(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        if let Some(ip) = req.connection_info().realip_remote_addr() {
            return ip.to_owned();
        }
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn code_hash(phone: &str, code: &str) -> String {
    hex::encode(Sha256::digest(
        format!("login-code:{phone}:{code}").as_bytes(),
    ))
}

/// Sends a 6-digit login code by SMS. Throttled per phone and per client address.
#[utoipa::path(post, path = "/api/login/code", tag = "participants", request_body = CodeRequest,
    responses((status = 202, body = CodeSent), (status = 404, body = super::error::ErrorBody),
    (status = 429, body = super::error::ErrorBody, description = "with Retry-After")))]
pub async fn request_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    Body(body): Body<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&body.phone)?;
    if state
        .store
        .participant_by_phone(phone.as_str())
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_registered",
            "这个手机号还没有报名，请先报名",
        ));
    }
    let mut rng = crate::startup::os_seeded_rng().map_err(ApiError::internal)?;
    let code = format!("{:06}", uniform(&mut rng, 1_000_000));
    let now = state.clock.now();
    let ttl = state.login.code_ttl_secs;
    let issued = state
        .store
        .issue_login_code(
            LoginCode {
                phone: phone.as_str().to_owned(),
                code_hash: code_hash(phone.as_str(), &code),
                requested_from: client_address(&req, state.login.trust_forwarded_for),
                expires_at: now + Duration::seconds(ttl),
            },
            &state.login.limits(),
            now,
        )
        .await?;
    if let Err(retry_after) = issued {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("请求太频繁，请 {retry_after} 秒后再试"),
        )
        .retry_after(retry_after));
    }
    let minutes = (ttl + 59) / 60;
    let text = format!("【衡阳学法】您的登录验证码是 {code}，{minutes} 分钟内有效。请勿告诉他人。");
    state.sms.send(phone.as_str(), &text, now).await?;
    Ok(HttpResponse::Accepted().json(CodeSent {
        sent_to: phone.masked(),
        expires_in_seconds: ttl,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeLogin {
    phone: String,
    /// The 6 digits from the SMS.
    code: String,
}

/// Logs in with the code from the SMS. A code works once, for 5 minutes, and allows 5 tries.
#[utoipa::path(post, path = "/api/login", tag = "participants", request_body = CodeLogin,
    responses((status = 200, body = SessionView), (status = 401, body = super::error::ErrorBody),
    (status = 422, body = super::error::ErrorBody)))]
pub async fn login(
    state: web::Data<AppState>,
    Body(body): Body<CodeLogin>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&body.phone)?;
    let code = body.code.trim();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid("invalid_code", "验证码是 6 位数字"));
    }
    let (token, session) = new_session(&state)?;
    let outcome = state
        .store
        .verify_login_code(
            phone.as_str(),
            &code_hash(phone.as_str(), code),
            session,
            &state.login.limits(),
            state.clock.now(),
        )
        .await?;
    match outcome {
        LoginOutcome::LoggedIn(participant) => Ok(HttpResponse::Ok()
            .cookie(session_cookie(&token, state.login.session_days))
            .json(SessionView {
                participant: (&participant).into(),
                token,
            })),
        LoginOutcome::WrongCode { tries_left } => Err(ApiError::unauthorized(
            "wrong_code",
            if tries_left > 0 {
                format!("验证码不正确，还可以再试 {tries_left} 次")
            } else {
                "验证码不正确，这个验证码已失效，请重新获取".into()
            },
        )),
        LoginOutcome::TooManyTries => Err(ApiError::unauthorized(
            "too_many_tries",
            "这个验证码错误次数太多，已失效，请重新获取",
        )),
        LoginOutcome::NoActiveCode => Err(ApiError::unauthorized(
            "code_expired",
            "验证码已过期或已使用，请重新获取",
        )),
    }
}

/// Ends this session.
#[utoipa::path(post, path = "/api/logout", tag = "participants", responses((status = 204)))]
pub async fn logout(
    state: web::Data<AppState>,
    session: ParticipantSession,
) -> Result<HttpResponse, ApiError> {
    state.store.end_session(&session.token_hash).await?;
    let mut gone = session_cookie("", 0);
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

#[derive(Serialize, ToSchema)]
pub struct TicketView {
    round: u32,
    /// The ticket: a random UUID.
    ticket: uuid::Uuid,
    /// The round's state: the ticket takes part in the draw once the round is drawn.
    round_state: RoundState,
    /// Local time the round's entries close.
    round_closes_at: String,
    obtained_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Mine {
    participant: ParticipantView,
    /// The round open for entries now, if any.
    current_round: Option<u32>,
    /// Whether this participant already holds a ticket for the current round.
    holds_current_ticket: bool,
    tickets: Vec<TicketView>,
    /// Vouchers won (after a draw).
    vouchers: Vec<super::vouchers::VoucherView>,
}

/// The participant, their tickets by round and (once drawn) their vouchers.
#[utoipa::path(get, path = "/api/me", tag = "participants", responses((status = 200, body = Mine),
    (status = 401, body = super::error::ErrorBody)))]
pub async fn me(
    state: web::Data<AppState>,
    session: ParticipantSession,
) -> Result<HttpResponse, ApiError> {
    let c = &state.campaign;
    let now = state.clock.now();
    let progress: HashMap<u32, RoundProgress> = state
        .store
        .round_progress(&c.id)
        .await?
        .into_iter()
        .collect();
    let tickets: Vec<TicketView> = state
        .store
        .tickets_of(session.participant.id)
        .await?
        .into_iter()
        .filter(|t| t.campaign_id == c.id)
        .filter_map(|t| {
            let window = c.round(t.round)?;
            let p = progress
                .get(&t.round)
                .copied()
                .unwrap_or(RoundProgress::Pending);
            Some(TicketView {
                round: t.round,
                ticket: t.id,
                round_state: round_state(window, p, now),
                round_closes_at: c.local_rfc3339(window.closes_at),
                obtained_at: c.local_rfc3339(t.created_at),
            })
        })
        .collect();
    let current_round = c.open_round(now).map(|r| r.number);
    Ok(ok_json(&Mine {
        participant: (&session.participant).into(),
        current_round,
        holds_current_ticket: tickets.iter().any(|t| Some(t.round) == current_round),
        tickets,
        vouchers: super::vouchers::views_of(&state, session.participant.id).await?,
    }))
}
