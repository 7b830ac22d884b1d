//! What the service tells holders by SMS of itself (DESIGN §5): a prize to claim, a reminder
//! before the claim deadline, each redemption and reversal of their vouchers. Each event gets one
//! message, whatever the number of instances: the store marks the event in the transaction that
//! queues it.

use super::{App, Result};
use crate::domain::sms::Template;
use crate::store::{NewSms, Notice};

/// Notices read per kind in one turn.
const PER_TURN: u32 = 500;

/// The message of a notice, as the campaign words it (local dates and times).
fn message(app: &App, n: &Notice) -> NewSms {
    let c = &app.campaign;
    let tz = c.tz();
    let day = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&tz).format("%-m月%-d日 %H:%M").to_string()
    };
    let kind_name = |kind: &str| {
        c.voucher_kind(kind)
            .map_or_else(|| kind.to_owned(), |k| k.name.clone())
    };
    let venue_name = |id: &str| {
        c.venue(id)
            .map_or_else(|| id.to_owned(), |v| v.name.clone())
    };
    let template = match n {
        Notice::Prize {
            round, claim_by, ..
        } => Template::PrizeNotice {
            round: *round,
            claim_by: day(*claim_by),
        },
        Notice::Reminder {
            round, claim_by, ..
        } => Template::ClaimReminder {
            round: *round,
            claim_by: day(*claim_by),
        },
        Notice::Redeemed {
            kind, venue_id, at, ..
        } => Template::Redeemed {
            kind: kind_name(kind),
            venue: venue_name(venue_id),
            time: day(*at),
        },
        Notice::Reversed {
            kind, venue_id, at, ..
        } => Template::Reversed {
            kind: kind_name(kind),
            venue: venue_name(venue_id),
            time: day(*at),
        },
    };
    NewSms::new(n.phone(), &template, &app.sms.sign_name, None)
}

/// Queues the messages of every event not told yet; how many were queued.
pub async fn send_due(app: &App) -> Result<u64> {
    let now = app.clock.now();
    let remind_before = chrono::Duration::hours(i64::from(app.sms.reminder_hours));
    let due = app
        .store
        .pending_notices(&app.campaign.id, remind_before, now, PER_TURN)
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let with_messages: Vec<(Notice, NewSms)> = due
        .into_iter()
        .map(|n| {
            let m = message(app, &n);
            (n, m)
        })
        .collect();
    let queued = app
        .store
        .queue_notices(&app.campaign.id, &with_messages, now)
        .await?;
    if queued > 0 {
        tracing::info!(queued, "notices queued for SMS");
    }
    Ok(queued)
}
