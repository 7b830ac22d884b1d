//! Vouchers: the holder's own, the front desk's check, redemption and reversal, and the
//! operators' void and reissue of a lost code.

use super::auth::{Desk, Operator, Session};
use super::{App, Result};
use crate::domain::redemption::{judge, HolderCheck};
use crate::domain::refusal::Refusal;
use crate::domain::throttle::may_look_up;
use crate::domain::voucher::{CodeError, VoucherCode};
use crate::store::{RedeemOutcome, RedemptionRecord, ReverseOutcome, VoucherRecord};
use uuid::Uuid;

/// A participant's vouchers in this campaign, void ones included, each with its holder-code
/// secret: one issued before holder codes gets its secret now, the first time its holder looks.
pub async fn of(app: &App, participant: Uuid) -> Result<Vec<VoucherRecord>> {
    let mine = |list: Vec<VoucherRecord>| -> Vec<VoucherRecord> {
        list.into_iter()
            .filter(|v| v.campaign_id == app.campaign.id)
            .collect()
    };
    let list = mine(app.store.vouchers_of(participant).await?);
    let missing = list
        .iter()
        .filter(|v| v.holder_secret.is_none())
        .map(|v| Ok((v.id, crate::csprng::holder_secret()?)))
        .collect::<std::result::Result<Vec<_>, crate::csprng::RandomError>>()?;
    if missing.is_empty() {
        return Ok(list);
    }
    app.store.give_holder_secrets(&missing).await?;
    Ok(mine(app.store.vouchers_of(participant).await?))
}

/// One of the participant's own vouchers; another's is answered like a missing one.
pub async fn own(app: &App, session: &Session, id: &str) -> Result<VoucherRecord> {
    let id = Uuid::parse_str(id).map_err(|_| Refusal::VoucherNotFound)?;
    Ok(app
        .store
        .voucher(id)
        .await?
        .filter(|v| v.participant_id == session.participant().id)
        .ok_or(Refusal::VoucherNotFound)?)
}

/// A code as typed; a typo is refused here, before any database look-up.
pub fn parse_code(input: &str) -> std::result::Result<VoucherCode, Refusal> {
    VoucherCode::parse(input).map_err(|e| match e {
        CodeError::Typo => Refusal::Typo,
        CodeError::WrongLength(n) => Refusal::MalformedCode {
            message: format!("券码应为 12 位字母和数字，这里是 {n} 位"),
        },
        CodeError::BadSymbol(c) => Refusal::MalformedCode {
            message: format!("券码中不会出现“{c}”，请核对"),
        },
    })
}

/// Too many failed look-ups from this desk's token or address: refused before anything about
/// the code is looked at.
async fn throttle(app: &App, desk: &Desk, address: &str) -> Result<()> {
    let now = app.clock.now();
    let limits = app.vouchers.lookup_limits();
    let failures = app
        .store
        .lookup_failures(desk.token_id(), address, now - limits.window)
        .await?;
    Ok(may_look_up(&failures, &limits, now)?)
}

async fn failed_lookup(app: &App, desk: &Desk, address: &str) -> Result<()> {
    Ok(app
        .store
        .record_lookup_failure(desk.token_id(), address, app.clock.now())
        .await?)
}

/// A known code and whether it could be redeemed here now (the holder code is asked at
/// redemption).
pub struct Checked {
    pub voucher: VoucherRecord,
    pub refusal: Option<Refusal>,
}

/// Checks a code at this desk without redeeming it. An unknown code counts as a failed look-up.
pub async fn check(app: &App, desk: &Desk, address: &str, code: &str) -> Result<Checked> {
    throttle(app, desk, address).await?;
    let code = parse_code(code)?;
    let Some(voucher) = app.store.voucher_by_code(code.as_str()).await? else {
        failed_lookup(app, desk, address).await?;
        return Err(Refusal::UnknownCode.into());
    };
    let c = &app.campaign;
    let kind = c.voucher_kind(&voucher.kind).ok_or_else(|| {
        super::internal(format!("voucher kind {:?} is not configured", voucher.kind))
    })?;
    let verdict = judge(
        kind,
        voucher.standing(),
        &voucher.domain_uses(),
        desk.venue(),
        app.clock.now(),
        HolderCheck::NotYet,
    );
    Ok(Checked {
        refusal: verdict.err().map(|r| r.refusal(c)),
        voucher,
    })
}

/// What the front desk sends to redeem a code.
pub struct Redemption<'a> {
    pub code: &'a str,
    /// The holder code from the holder's phone (6 digits), as typed or scanned.
    pub holder_code: Option<&'a str>,
    /// Chosen by the desk per redemption, and sent again when retrying it (the header as sent).
    pub idempotency_key: Option<&'a str>,
}

/// Checks an Idempotency-Key as sent.
pub fn idempotency_key(key: Option<&str>) -> std::result::Result<String, Refusal> {
    let key = key.ok_or(Refusal::IdempotencyKeyRequired)?.trim();
    if key.is_empty() || key.len() > 100 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::InvalidIdempotencyKey);
    }
    Ok(key.to_owned())
}

pub struct Redeemed {
    pub redemption: RedemptionRecord,
    pub voucher: VoucherRecord,
    /// True when this answers an earlier request with the same key.
    pub replayed: bool,
}

/// Redeems a code at this desk, exactly once. The first answer to a key, a refusal too, is the
/// answer to every retry with it; the key with another code or another holder code is refused.
pub async fn redeem(app: &App, desk: &Desk, address: &str, r: &Redemption<'_>) -> Result<Redeemed> {
    let key = idempotency_key(r.idempotency_key)?;
    throttle(app, desk, address).await?;
    let code = parse_code(r.code)?;
    let holder_code = r.holder_code.map(str::trim).filter(|d| !d.is_empty());
    if let Some(d) = holder_code {
        if !crate::domain::holder_code::well_formed(d) {
            return Err(Refusal::field(
                "holder_code",
                "动态码是持券人手机上显示的 6 位数字，例如 012345",
            )
            .into());
        }
    }
    let outcome = app
        .store
        .redeem(
            &app.campaign,
            crate::store::Redeem {
                code: code.as_str().to_owned(),
                venue: desk.venue().clone(),
                token_id: desk.token_id(),
                idempotency_key: key,
                holder_code: holder_code.map(str::to_owned),
                actor: desk.actor().to_owned(),
                at: app.clock.now(),
            },
        )
        .await?;
    match outcome {
        RedeemOutcome::Redeemed {
            redemption,
            voucher,
            replayed,
        } => Ok(Redeemed {
            redemption,
            voucher,
            replayed,
        }),
        // A replayed answer was counted when it was first given.
        RedeemOutcome::Refused { reason, replayed } => {
            // A wrong holder code is a guess, counted like an unknown code.
            if reason == crate::domain::redemption::Reason::HolderMismatch && !replayed {
                failed_lookup(app, desk, address).await?;
            }
            Err(reason.refusal(&app.campaign).into())
        }
        RedeemOutcome::Unknown { replayed } => {
            if !replayed {
                failed_lookup(app, desk, address).await?;
            }
            Err(Refusal::UnknownCode.into())
        }
        RedeemOutcome::KeyReused => Err(Refusal::IdempotencyKeyReused.into()),
    }
}

/// This desk's latest redemptions, newest first.
pub async fn recent(app: &App, desk: &Desk, limit: u32) -> Result<Vec<RedemptionRecord>> {
    if !(1..=200).contains(&limit) {
        return Err(Refusal::query("limit", "每次最多查看 1 到 200 条").into());
    }
    Ok(app
        .store
        .recent_redemptions(Some(&desk.venue().id), limit)
        .await?)
}

/// Reverses this desk's own redemption within the reversal window.
pub async fn reverse(app: &App, desk: &Desk, id: &str) -> Result<RedemptionRecord> {
    let id = Uuid::parse_str(id).map_err(|_| Refusal::RedemptionNotFound)?;
    let outcome = app
        .store
        .reverse_redemption(
            id,
            &desk.venue().id,
            desk.token_id(),
            app.vouchers.reversal_window(),
            desk.actor(),
            app.clock.now(),
        )
        .await?;
    match outcome {
        ReverseOutcome::Reversed(r) => Ok(r),
        ReverseOutcome::NotFound => Err(Refusal::RedemptionNotFound.into()),
        ReverseOutcome::AlreadyReversed(_) => Err(Refusal::AlreadyReversed.into()),
        ReverseOutcome::WindowPassed(r) => Err(Refusal::ReversalWindowPassed {
            minutes: app.vouchers.reversal_window_minutes,
            redeemed_at: r
                .redeemed_at
                .with_timezone(&app.campaign.tz())
                .format("%Y-%m-%d %H:%M")
                .to_string(),
        }
        .into()),
    }
}

/// A winner's vouchers, found by phone (for a winner who lost a code).
pub async fn find(app: &App, _who: &Operator, phone: &str) -> Result<Vec<VoucherRecord>> {
    let phone = crate::domain::phone::Phone::parse(phone)
        .map_err(|e| Refusal::query("phone", e.to_string()))?;
    match app.store.participant_by_phone(phone.as_str()).await? {
        Some(p) => of(app, p.id).await,
        None => Ok(Vec::new()),
    }
}

/// Voids a voucher (lost, say); its uses stay on record.
pub async fn void(app: &App, who: &Operator, id: &str, reason: &str) -> Result<VoucherRecord> {
    let id = Uuid::parse_str(id).map_err(|_| Refusal::VoucherNotFound)?;
    let reason = crate::domain::text::checked("reason", reason, 200, false)?;
    Ok(app
        .store
        .void_voucher(id, &reason, who.actor(), app.clock.now())
        .await?)
}

/// A new code for a voided voucher, to the same winner, once.
pub async fn reissue(app: &App, who: &Operator, id: &str) -> Result<VoucherRecord> {
    let id = Uuid::parse_str(id).map_err(|_| Refusal::VoucherNotFound)?;
    Ok(app
        .store
        .reissue_voucher(id, who.actor(), app.clock.now())
        .await?)
}
