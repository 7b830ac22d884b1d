//! Participants: registration, a one-time code by SMS to log in again, logging out, and what a
//! participant holds.

use super::auth::Session;
use super::{App, Result};
use crate::csprng;
use crate::domain::campaign::{round_state, RoundProgress, RoundState, RoundWindow};
use crate::domain::phone::Phone;
use crate::domain::random::uniform;
use crate::domain::refusal::Refusal;
use crate::domain::token::{login_code_hash, session_token_from_bytes, token_hash};
use crate::store::{
    LoginCode, LoginOutcome, NewParticipant, NewSession, Participant, TicketRecord, VoucherRecord,
};
use chrono::Duration;
use std::collections::HashMap;

/// A session just opened: the token is shown to the participant once and stored as a hash.
pub struct LoggedIn {
    pub participant: Participant,
    pub token: String,
}

fn new_session(app: &App) -> Result<(String, NewSession)> {
    let token = session_token_from_bytes(csprng::bytes()?);
    let session = NewSession {
        token_hash: token_hash(&token),
        expires_at: app.clock.now() + Duration::days(app.login.session_days),
    };
    Ok((token, session))
}

pub fn parse_phone(input: &str) -> std::result::Result<Phone, Refusal> {
    Phone::parse(input).map_err(Refusal::InvalidPhone)
}

const MAX_NAME_CHARS: usize = 20;

/// An optional nickname: at most 20 characters, nothing invisible (it is shown at the desks).
fn display_name(input: Option<&str>) -> std::result::Result<Option<String>, Refusal> {
    let Some(name) = input.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Refusal::InvalidDisplayName {
            message: format!("昵称最多 {MAX_NAME_CHARS} 个字"),
        });
    }
    if name.chars().any(crate::domain::text::is_forbidden) {
        return Err(Refusal::InvalidDisplayName {
            message: "昵称不能包含控制字符或不可见字符".into(),
        });
    }
    Ok(Some(name.to_owned()))
}

pub struct Registration<'a> {
    pub phone: &'a str,
    pub display_name: Option<&'a str>,
    pub consent: bool,
}

/// Registers a phone with consent to the privacy notice, and logs in at once.
pub async fn register(app: &App, r: &Registration<'_>) -> Result<LoggedIn> {
    let phone = parse_phone(r.phone)?;
    let display_name = display_name(r.display_name)?;
    if !r.consent {
        return Err(Refusal::ConsentRequired.into());
    }
    let (token, session) = new_session(app)?;
    let participant = app
        .store
        .register_participant(
            NewParticipant {
                phone: phone.as_str().to_owned(),
                display_name,
                session,
            },
            app.clock.now(),
        )
        .await?;
    Ok(LoggedIn { participant, token })
}

/// Where a code went.
pub struct CodeSent {
    /// The masked number.
    pub sent_to: String,
    pub expires_in_seconds: i64,
}

/// Sends a 6-digit login code by SMS to a registered phone, within the limits per phone and per
/// client `address`.
pub async fn request_code(app: &App, phone: &str, address: &str) -> Result<CodeSent> {
    let phone = parse_phone(phone)?;
    if app
        .store
        .participant_by_phone(phone.as_str())
        .await?
        .is_none()
    {
        return Err(Refusal::NotRegistered.into());
    }
    let code = format!("{:06}", uniform(&mut csprng::rng()?, 1_000_000));
    let now = app.clock.now();
    let ttl = app.login.code_ttl_secs;
    app.store
        .issue_login_code(
            LoginCode {
                phone: phone.as_str().to_owned(),
                code_hash: login_code_hash(phone.as_str(), &code),
                requested_from: address.to_owned(),
                expires_at: now + Duration::seconds(ttl),
            },
            &app.login.limits(),
            now,
        )
        .await?;
    let minutes = (ttl + 59) / 60;
    let text = format!("【衡阳学法】您的登录验证码是 {code}，{minutes} 分钟内有效。请勿告诉他人。");
    app.sms.send(phone.as_str(), &text, now).await?;
    Ok(CodeSent {
        sent_to: phone.masked(),
        expires_in_seconds: ttl,
    })
}

/// Logs in with the code from the SMS: it works once, while it is valid, within its tries.
pub async fn login(app: &App, phone: &str, code: &str) -> Result<LoggedIn> {
    let phone = parse_phone(phone)?;
    let code = code.trim();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(Refusal::InvalidCode.into());
    }
    let (token, session) = new_session(app)?;
    let outcome = app
        .store
        .verify_login_code(
            phone.as_str(),
            &login_code_hash(phone.as_str(), code),
            session,
            &app.login.limits(),
            app.clock.now(),
        )
        .await?;
    match outcome {
        LoginOutcome::LoggedIn(participant) => Ok(LoggedIn { participant, token }),
        LoginOutcome::WrongCode { tries_left } => Err(Refusal::WrongCode { tries_left }.into()),
        LoginOutcome::TooManyTries => Err(Refusal::TooManyTries.into()),
        LoginOutcome::NoActiveCode => Err(Refusal::CodeExpired.into()),
    }
}

pub async fn logout(app: &App, session: &Session) -> Result<()> {
    Ok(app.store.end_session(session.token_hash()).await?)
}

/// A ticket with the round it is in.
pub struct HeldTicket {
    pub ticket: TicketRecord,
    pub window: RoundWindow,
    pub state: RoundState,
}

/// What a participant holds in this campaign.
pub struct Holdings {
    /// The round open for entries now, if any.
    pub current_round: Option<u32>,
    pub tickets: Vec<HeldTicket>,
    pub vouchers: Vec<VoucherRecord>,
}

pub async fn holdings(app: &App, session: &Session) -> Result<Holdings> {
    let c = &app.campaign;
    let now = app.clock.now();
    let progress: HashMap<u32, RoundProgress> =
        app.store.round_progress(&c.id).await?.into_iter().collect();
    let tickets = app
        .store
        .tickets_of(session.participant().id)
        .await?
        .into_iter()
        .filter(|t| t.campaign_id == c.id)
        .filter_map(|ticket| {
            let window = c.round(ticket.round)?.clone();
            let p = progress
                .get(&ticket.round)
                .copied()
                .unwrap_or(RoundProgress::Pending);
            Some(HeldTicket {
                state: round_state(&window, p, now),
                window,
                ticket,
            })
        })
        .collect();
    Ok(Holdings {
        current_round: c.open_round(now).map(|r| r.number),
        tickets,
        vouchers: super::vouchers::of(app, session.participant().id).await?,
    })
}
