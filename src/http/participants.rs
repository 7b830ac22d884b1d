//! Participants: registration, login again by a one-time SMS code, and "mine".

use super::auth::SESSION_COOKIE;
use super::body::Body;
use super::docs::{BodyRefusals, SessionRefusals};
use super::error::{ApiError, ErrorBody};
use super::{client_address, ok_json, Settings};
use crate::app::auth::Session;
use crate::app::participants::{self, LoggedIn, Registration};
use crate::app::App;
use crate::domain::campaign::RoundState;
use crate::domain::phone::mask;
use crate::store::Participant;
use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
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

fn session_cookie(token: &str, days: i64, secure: bool) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::days(days))
        .finish()
}

/// The answer to a login: the session as JSON and as a cookie.
fn logged_in(
    app: &App,
    settings: &Settings,
    mut res: actix_web::HttpResponseBuilder,
    l: LoggedIn,
) -> HttpResponse {
    res.cookie(session_cookie(
        &l.token,
        app.login.session_days,
        settings.secure_cookies,
    ))
    .json(SessionView {
        participant: (&l.participant).into(),
        token: l.token,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationBody {
    /// Mainland mobile number; `+86`, `0086`, spaces, dashes and full-width digits are fine.
    phone: String,
    /// Optional, at most 20 characters.
    display_name: Option<String>,
    /// Agreement to the privacy notice; must be `true`.
    consent: bool,
}

/// Registers with a phone number and consent to the privacy notice; logs in at once.
#[utoipa::path(post, path = "/api/participants", tag = "participants", request_body = RegistrationBody,
    responses((status = 201, body = SessionView), BodyRefusals,
    (status = 409, body = ErrorBody, description = "`phone_taken`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_phone`, `invalid_display_name`, `consent_required`")))]
pub async fn register(
    app: web::Data<App>,
    settings: web::Data<Settings>,
    Body(body): Body<RegistrationBody>,
) -> Result<HttpResponse, ApiError> {
    let l = participants::register(
        &app,
        &Registration {
            phone: &body.phone,
            display_name: body.display_name.as_deref(),
            consent: body.consent,
        },
    )
    .await?;
    Ok(logged_in(&app, &settings, HttpResponse::Created(), l))
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

/// Sends a 6-digit login code by SMS. Throttled per phone and per client address.
#[utoipa::path(post, path = "/api/login/code", tag = "participants", request_body = CodeRequest,
    responses((status = 202, body = CodeSent), BodyRefusals,
    (status = 404, body = ErrorBody, description = "`not_registered`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_phone`"),
    (status = 429, body = ErrorBody, description = "`too_many_requests`, with Retry-After")))]
pub async fn request_code(
    app: web::Data<App>,
    req: HttpRequest,
    Body(body): Body<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let sent = participants::request_code(&app, &body.phone, &client_address(&req)).await?;
    Ok(HttpResponse::Accepted().json(CodeSent {
        sent_to: sent.sent_to,
        expires_in_seconds: sent.expires_in_seconds,
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
    responses((status = 200, body = SessionView), BodyRefusals,
    (status = 401, body = ErrorBody, description = "`wrong_code` (with `tries_left`), `too_many_tries`, `code_expired`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_phone`, `invalid_code`")))]
pub async fn login(
    app: web::Data<App>,
    settings: web::Data<Settings>,
    Body(body): Body<CodeLogin>,
) -> Result<HttpResponse, ApiError> {
    let l = participants::login(&app, &body.phone, &body.code).await?;
    Ok(logged_in(&app, &settings, HttpResponse::Ok(), l))
}

/// Ends this session.
#[utoipa::path(post, path = "/api/logout", tag = "participants", security(("session" = [])),
    responses((status = 204), SessionRefusals))]
pub async fn logout(
    app: web::Data<App>,
    settings: web::Data<Settings>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    participants::logout(&app, &session).await?;
    let mut gone = session_cookie("", 0, settings.secure_cookies);
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
#[utoipa::path(get, path = "/api/me", tag = "participants", security(("session" = [])),
    responses((status = 200, body = Mine), SessionRefusals))]
pub async fn me(app: web::Data<App>, session: Session) -> Result<HttpResponse, ApiError> {
    let c = &app.campaign;
    let held = participants::holdings(&app, &session).await?;
    let tickets: Vec<TicketView> = held
        .tickets
        .iter()
        .map(|t| TicketView {
            round: t.ticket.round,
            ticket: t.ticket.id,
            round_state: t.state,
            round_closes_at: c.local_rfc3339(t.window.closes_at),
            obtained_at: c.local_rfc3339(t.ticket.created_at),
        })
        .collect();
    Ok(ok_json(&Mine {
        participant: session.participant().into(),
        current_round: held.current_round,
        holds_current_ticket: tickets.iter().any(|t| Some(t.round) == held.current_round),
        tickets,
        vouchers: super::vouchers::views(&app, &held.vouchers)?,
    }))
}
