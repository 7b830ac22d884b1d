//! Participants: one flow for new and returning participants (a one-time code by SMS, then the
//! code; consent the first time), and "mine".

use super::auth::SESSION_COOKIE;
use super::body::Body;
use super::docs::{BodyRefusals, SessionRefusals};
use super::error::{ApiError, ErrorBody};
use super::{client_address, ok_json, Settings};
use crate::app::auth::Session;
use crate::app::participants::{self, CodeLogin, LoggedIn};
use crate::app::App;
use crate::domain::campaign::RoundState;
use crate::domain::phone::mask;
use crate::store::Participant;
use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/login/challenge").post(challenge))
        .service(web::resource("/api/login/code").post(request_code))
        .service(web::resource("/api/login").post(login))
        .service(web::resource("/api/logout").post(logout))
        .service(web::resource("/api/me").get(me))
        .service(web::resource("/api/me/prizes/{round}/claim").post(claim))
        .service(web::resource("/api/me/prizes/{round}/decline").post(decline));
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
    /// This login registered the participant (the phone's first code).
    registered: bool,
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
fn logged_in(app: &App, settings: &Settings, l: LoggedIn) -> HttpResponse {
    let mut res = if l.registered {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    res.cookie(session_cookie(
        &l.token,
        app.login.session_days,
        settings.secure_cookies,
    ))
    .json(SessionView {
        participant: (&l.participant).into(),
        token: l.token,
        registered: l.registered,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    phone: String,
    /// The solved proof of work for this phone: base64 of the JSON `{challenge, solution}`, as
    /// the ALTCHA widget gives it.
    altcha: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The phone the code will be asked for: the challenge holds only for it.
    phone: String,
}

/// A proof-of-work challenge in the ALTCHA protocol (PoW v2, PBKDF2-SHA-256), bound to the phone
/// and signed; solved by the browser (about a second), it pays for one code SMS within 5 minutes.
#[utoipa::path(post, path = "/api/login/challenge", tag = "participants", request_body = ChallengeRequest,
    responses((status = 200, description = "`{\"parameters\": {algorithm, cost, data, keyLength, keyPrefix, nonce, salt}, \"signature\"}`"),
    BodyRefusals,
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_phone`")))]
pub async fn challenge(
    app: web::Data<App>,
    Body(body): Body<ChallengeRequest>,
) -> Result<HttpResponse, ApiError> {
    let challenge = crate::app::challenge::challenge(&app, &body.phone)?;
    Ok(ok_json(&challenge))
}

#[derive(Serialize, ToSchema)]
pub struct CodeSent {
    /// The masked number the code went to.
    sent_to: String,
    expires_in_seconds: i64,
    /// When the next code for this phone may be asked for; the one sent stays valid.
    resend_in_seconds: i64,
}

/// Sends a 6-digit code by SMS to a mainland mobile number, whether or not it takes part yet
/// (the answer is the same), paid for by a solved challenge from `/api/login/challenge`.
/// Throttled per phone and per client address.
#[utoipa::path(post, path = "/api/login/code", tag = "participants", request_body = CodeRequest,
    responses((status = 202, body = CodeSent), BodyRefusals,
    (status = 409, body = ErrorBody, description = "`challenge_used`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_phone`, `challenge_required`, `challenge_invalid`, `challenge_expired`"),
    (status = 429, body = ErrorBody, description = "`too_many_requests` (per phone, per address), `sms_paused` (the campaign's hourly budget), with Retry-After")))]
pub async fn request_code(
    app: web::Data<App>,
    req: HttpRequest,
    Body(body): Body<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let sent = participants::request_code(
        &app,
        &body.phone,
        body.altcha.as_deref(),
        &client_address(&req),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(CodeSent {
        sent_to: sent.sent_to,
        expires_in_seconds: sent.expires_in_seconds,
        resend_in_seconds: sent.resend_in_seconds,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeLoginBody {
    /// Mainland mobile number; `+86`, `0086`, spaces, dashes and full-width digits are fine.
    phone: String,
    /// The 6 digits from the SMS.
    code: String,
    /// For the first time: an optional nickname, at most 20 characters.
    display_name: Option<String>,
    /// For the first time: agreement to the privacy notice. Without it a phone that takes no
    /// part yet is answered `consent_required`, and the code stays valid.
    #[serde(default)]
    consent: bool,
}

/// Enters the code from the SMS: logs in, and the first time (with `consent`) registers the
/// participant. A code works once, for 5 minutes, and allows 5 tries.
#[utoipa::path(post, path = "/api/login", tag = "participants", request_body = CodeLoginBody,
    responses((status = 200, body = SessionView, description = "logged in"),
    (status = 201, body = SessionView, description = "registered and logged in"), BodyRefusals,
    (status = 401, body = ErrorBody, description = "`wrong_code` (with `tries_left`), `too_many_tries`, `code_expired`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_phone`, `invalid_code`, `invalid_display_name`, `consent_required`")))]
pub async fn login(
    app: web::Data<App>,
    settings: web::Data<Settings>,
    req: HttpRequest,
    Body(body): Body<CodeLoginBody>,
) -> Result<HttpResponse, ApiError> {
    let l = participants::login(
        &app,
        &CodeLogin {
            phone: &body.phone,
            code: &body.code,
            display_name: body.display_name.as_deref(),
            consent: body.consent,
        },
    )
    .await?;
    let mut res = logged_in(&app, &settings, l);
    // The browser gets its device id with its first session (see DEVICE_COOKIE).
    if let (_, Some(c)) =
        super::auth::device_id(&req, settings.secure_cookies).map_err(crate::app::Error::from)?
    {
        res.add_cookie(&c).map_err(crate::app::internal)?;
    }
    Ok(res)
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
    /// Why the ticket is not drawn among (DESIGN §4a), as a code and in Chinese; absent for a
    /// ticket in the draw.
    #[serde(skip_serializing_if = "Option::is_none")]
    excluded: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    excluded_reason: Option<&'static str>,
}

/// A prize won, or passed on from a forfeit to this participant as a reserve.
#[derive(Serialize, ToSchema)]
pub struct PrizeView {
    round: u32,
    rank: u32,
    tier: String,
    /// 一等奖…
    tier_label: String,
    /// `to_claim`, `claimed` or `forfeited`.
    state: &'static str,
    /// Local time: claim before it (while `to_claim`).
    claim_by: Option<String>,
    claimed_at: Option<String>,
    forfeited_at: Option<String>,
    /// `unclaimed` or `declined`.
    forfeit_reason: Option<&'static str>,
    /// The rank whose forfeited prize came to this reserve.
    promoted_from: Option<u32>,
}

fn prize_view(app: &App, p: &crate::store::PrizeState) -> PrizeView {
    use crate::domain::claim::Standing;
    let c = &app.campaign;
    let (claim_by, claimed_at, forfeited) = match p.standing {
        Standing::Open { deadline } => (Some(c.local_rfc3339(deadline)), None, None),
        Standing::Claimed { at } => (None, Some(c.local_rfc3339(at)), None),
        Standing::Forfeited { at, reason } => (None, None, Some((c.local_rfc3339(at), reason))),
    };
    PrizeView {
        round: p.round,
        rank: p.rank,
        tier_label: c
            .tiers
            .iter()
            .find(|t| t.name == p.tier)
            .map_or_else(|| p.tier.clone(), |t| t.label.clone()),
        tier: p.tier.clone(),
        state: p.standing.code(),
        claim_by,
        claimed_at,
        forfeit_reason: forfeited.as_ref().map(|(_, r)| r.as_str()),
        forfeited_at: forfeited.map(|(at, _)| at),
        promoted_from: p.promoted_from,
    }
}

/// Claims my prize of a round, before its deadline; its vouchers become usable. Claiming again
/// answers the same.
#[utoipa::path(post, path = "/api/me/prizes/{round}/claim", tag = "participants", security(("session" = [])),
    params(("round" = u32, Path)),
    responses((status = 200, body = PrizeView), SessionRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`, `no_prize`"),
    (status = 409, body = ErrorBody, description = "`claim_closed`: the deadline passed, or the prize was declined")))]
pub async fn claim(
    app: web::Data<App>,
    session: Session,
    round: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let p = crate::app::claims::claim(&app, &session, round.into_inner()).await?;
    Ok(ok_json(&prize_view(&app, &p)))
}

/// Declines my prize of a round (before claiming it, before its deadline): it goes to the next
/// reserve, and cannot be taken back.
#[utoipa::path(post, path = "/api/me/prizes/{round}/decline", tag = "participants", security(("session" = [])),
    params(("round" = u32, Path)),
    responses((status = 200, body = Reallocated), SessionRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`, `no_prize`"),
    (status = 409, body = ErrorBody, description = "`claim_closed`: already claimed, declined, or past the deadline")))]
pub async fn decline(
    app: web::Data<App>,
    session: Session,
    round: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let r = crate::app::claims::decline(&app, &session, round.into_inner()).await?;
    Ok(ok_json(&super::rounds::reallocation_view(&app, &r)))
}

pub use super::rounds::Reallocated;

#[derive(Serialize, ToSchema)]
pub struct Mine {
    participant: ParticipantView,
    /// The round open for entries now, if any.
    current_round: Option<u32>,
    /// Whether this participant already holds a ticket for the current round.
    holds_current_ticket: bool,
    tickets: Vec<TicketView>,
    /// Vouchers won (after a draw); usable once their prize is claimed.
    vouchers: Vec<super::vouchers::VoucherView>,
    /// The service's clock (RFC 3339, milliseconds): the page computes holder codes by it, so
    /// that a phone whose clock is off still shows the code the desk expects.
    server_time: String,
    /// Prizes won, with where each claim stands.
    prizes: Vec<PrizeView>,
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
            excluded: t.excluded.map(|r| r.as_str()),
            excluded_reason: t.excluded.map(|r| r.label()),
        })
        .collect();
    Ok(ok_json(&Mine {
        participant: session.participant().into(),
        current_round: held.current_round,
        holds_current_ticket: tickets.iter().any(|t| Some(t.round) == held.current_round),
        tickets,
        vouchers: super::vouchers::holder_views(&app, &held.vouchers)?,
        server_time: app
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        prizes: held.prizes.iter().map(|p| prize_view(&app, p)).collect(),
    }))
}
