//! Participants: one flow for new and returning participants (a one-time code by SMS to the
//! phone, then the code, with consent the first time), logging out, and what a participant holds.

use super::auth::Session;
use super::{App, Result};
use crate::csprng;
use crate::domain::campaign::{round_state, RoundProgress, RoundState, RoundWindow};
use crate::domain::exclusion::Reason;
use crate::domain::phone::Phone;
use crate::domain::random::uniform;
use crate::domain::refusal::Refusal;
use crate::domain::sms::Template;
use crate::domain::token::{login_code_hash, session_token_from_bytes, token_hash};
use crate::store::{
    LoginCode, LoginOutcome, NewSession, NewSms, Newcomer, Participant, TicketRecord, VoucherRecord,
};
use chrono::Duration;
use std::collections::HashMap;

/// A session just opened: the token is shown to the participant once and stored as a hash.
pub struct LoggedIn {
    pub participant: Participant,
    pub token: String,
    /// The participant was created by this login (the phone's first code).
    pub registered: bool,
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

/// Where a code went.
pub struct CodeSent {
    /// The masked number.
    pub sent_to: String,
    pub expires_in_seconds: i64,
    /// When the next code for this phone may be asked for (the one just sent stays valid).
    pub resend_in_seconds: i64,
}

/// Sends a 6-digit code by SMS to a phone, paid for by a solved proof-of-work `challenge` for
/// that phone (see [`super::challenge`]), within the limits per phone and per client `address`.
/// Whether the phone takes part already makes no difference to the answer, so that it tells a
/// stranger nothing.
pub async fn request_code(
    app: &App,
    phone: &str,
    challenge: Option<&str>,
    address: &str,
) -> Result<CodeSent> {
    let phone = parse_phone(phone)?;
    let challenge = super::challenge::check(app, &phone, challenge)?;
    let code = format!("{:06}", uniform(&mut csprng::rng()?, 1_000_000));
    let now = app.clock.now();
    let ttl = app.login.code_ttl_secs;
    let minutes = (ttl + 59) / 60;
    let issued = app
        .store
        .issue_login_code(
            LoginCode {
                phone: phone.as_str().to_owned(),
                code_hash: login_code_hash(phone.as_str(), &code),
                requested_from: address.to_owned(),
                expires_at: now + Duration::seconds(ttl),
                sms: NewSms::new(
                    phone.as_str(),
                    &Template::LoginCode { code, minutes },
                    &app.sms.sign_name,
                    Some(now + Duration::seconds(ttl)),
                ),
                challenge,
            },
            &app.login.limits(),
            now,
        )
        .await;
    if let Err(crate::store::StoreError::Refused(Refusal::SmsPaused { .. })) = &issued {
        // The operators' alert: the metric, a log line, and the console's status.
        metrics::counter!("sms_paused_refusals_total").increment(1);
        tracing::warn!("the campaign's hourly SMS budget is spent: code requests are refused");
    }
    issued?;
    tracing::info!(phone = %phone.masked(), "code SMS queued");
    Ok(CodeSent {
        sent_to: phone.masked(),
        expires_in_seconds: ttl,
        resend_in_seconds: app.login.phone_interval_secs,
    })
}

/// A code entered for a phone; `consent` and the nickname matter only the first time.
pub struct CodeLogin<'a> {
    pub phone: &'a str,
    pub code: &'a str,
    pub display_name: Option<&'a str>,
    pub consent: bool,
}

/// Logs in with the code from the SMS: it works once, while it is valid, within its tries. For
/// a phone that takes no part yet it registers the participant, with consent to the privacy
/// notice (without it: `consent_required`, and the code stays valid).
pub async fn login(app: &App, l: &CodeLogin<'_>) -> Result<LoggedIn> {
    let phone = parse_phone(l.phone)?;
    let code = l.code.trim();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(Refusal::InvalidCode.into());
    }
    let newcomer = if l.consent {
        Some(Newcomer {
            display_name: display_name(l.display_name)?,
        })
    } else {
        None
    };
    let (token, session) = new_session(app)?;
    let outcome = app
        .store
        .verify_login_code(
            phone.as_str(),
            &login_code_hash(phone.as_str(), code),
            session,
            newcomer,
            &app.login.limits(),
            app.clock.now(),
        )
        .await?;
    match outcome {
        LoginOutcome::LoggedIn {
            participant,
            registered,
        } => Ok(LoggedIn {
            participant,
            token,
            registered,
        }),
        LoginOutcome::ConsentNeeded => Err(Refusal::ConsentRequired.into()),
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
    /// Why the ticket is not drawn among: an operator's exclusion, or, once the round is
    /// frozen, the win limit reached in earlier rounds.
    pub excluded: Option<Reason>,
}

/// What a participant holds in this campaign.
pub struct Holdings {
    /// The round open for entries now, if any.
    pub current_round: Option<u32>,
    pub tickets: Vec<HeldTicket>,
    pub vouchers: Vec<VoucherRecord>,
    /// Prizes won (or passed on to them as a reserve), with where each claim stands.
    pub prizes: Vec<crate::store::PrizeState>,
}

pub async fn holdings(app: &App, session: &Session) -> Result<Holdings> {
    let c = &app.campaign;
    let now = app.clock.now();
    let progress: HashMap<u32, RoundProgress> =
        app.store.round_progress(&c.id).await?.into_iter().collect();
    let vouchers = super::vouchers::of(app, session.participant().id).await?;
    let mut won: Vec<u32> = vouchers.iter().map(|v| v.round).collect();
    won.sort_unstable();
    won.dedup();
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
            let wins_before = won.iter().filter(|r| **r < ticket.round).count() as u32;
            let excluded = ticket.excluded.or_else(|| {
                (p != RoundProgress::Pending && wins_before >= c.win_limit)
                    .then_some(Reason::WonEarlier)
            });
            Some(HeldTicket {
                state: round_state(&window, p, now),
                window,
                ticket,
                excluded,
            })
        })
        .collect();
    let prizes = app
        .store
        .prizes_of(session.participant().id)
        .await?
        .into_iter()
        .filter(|p| p.campaign_id == c.id)
        .collect();
    Ok(Holdings {
        current_round: c.open_round(now).map(|r| r.number),
        tickets,
        vouchers,
        prizes,
    })
}
