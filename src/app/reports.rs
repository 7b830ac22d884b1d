//! What operators and auditors read: the charts' figures, the export of every voucher, and the
//! settlement of the venues.

use super::auth::{Auditor, Operator, SettlementReader};
use super::{App, Result};
use crate::domain::audit::AuditEvent;
use crate::domain::refusal::Refusal;
use crate::store::{RedemptionRecord, VoucherRecord};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

/// The figures behind the operators' charts.
pub struct Stats {
    /// Rounds that hold tickets: (round, tickets).
    pub tickets_per_round: Vec<(u32, u64)>,
    /// Local dates from the first with a redemption to the last.
    pub days: Vec<NaiveDate>,
    /// Per venue, in the campaign's order: unreversed redemptions on each of `days`.
    pub per_venue: Vec<Vec<u32>>,
    /// Text messages queued in the last hour, against the campaign-wide budget.
    pub sms_last_hour: u64,
    pub sms_per_hour: i64,
    /// The outbox of the last 24 hours, by status, and who sends it.
    pub sms_last_day: crate::store::OutboxCounts,
    pub sms_gateway: crate::config::SmsProvider,
    /// Per drawn round, where its prizes' claims stand.
    pub claims: Vec<crate::store::ClaimCounts>,
}

pub async fn stats(app: &App, _who: &Auditor) -> Result<Stats> {
    let c = &app.campaign;
    let tz = c.tz();
    let tickets_per_round = app.store.tickets_per_round(&c.id).await?;
    let since = c
        .rounds
        .first()
        .map_or(DateTime::<Utc>::MIN_UTC, |r| r.opens_at);
    let until = app.clock.now() + Duration::days(1);
    let uses = app
        .store
        .redemptions_between(None, since, until)
        .await?
        .into_iter()
        .filter(|r| r.reversal_id.is_none())
        .map(|r| (r.venue_id, r.redeemed_at.with_timezone(&tz).date_naive()));
    let ids: Vec<&str> = c.venues.iter().map(|v| v.id.as_str()).collect();
    let (days, per_venue) = crate::domain::redemption::per_venue_per_day(&ids, uses);
    let sms_last_hour = app
        .store
        .sms_queued_since(app.clock.now() - Duration::hours(1))
        .await?;
    let sms_last_day = app
        .store
        .outbox_counts(app.clock.now() - Duration::days(1))
        .await?;
    let claims = app.store.claim_counts(&c.id).await?;
    Ok(Stats {
        claims,
        sms_last_hour,
        sms_last_day,
        sms_gateway: app.sms.provider,
        sms_per_hour: app.login.campaign_sms_per_hour,
        tickets_per_round,
        days,
        per_venue,
    })
}

/// Every voucher of the campaign (void and reissued ones included); the export is audited.
pub async fn vouchers_export(app: &App, who: &Operator) -> Result<Vec<VoucherRecord>> {
    let c = &app.campaign;
    let vouchers = app.store.all_vouchers(&c.id).await?;
    app.store
        .append_audit(
            AuditEvent::new(
                who.actor(),
                "export.vouchers",
                format!("campaign:{}", c.id),
                serde_json::json!({"rows": vouchers.len()}),
            ),
            app.clock.now(),
        )
        .await?;
    Ok(vouchers)
}

/// A range of local dates, first and last included.
pub struct Dates {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The redemptions a settlement covers.
pub struct Settlement {
    /// The venue, or all.
    pub venue: Option<String>,
    pub dates: Dates,
    /// The instants the dates cover, `[from, to)`.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Made or reversed within the range.
    pub redemptions: Vec<RedemptionRecord>,
}

/// What was redeemed and reversed in a range of local dates: a desk gets its own venue's, an
/// auditor or operator one venue's or all.
pub async fn settlement(
    app: &App,
    who: &SettlementReader,
    dates: Dates,
    venue: Option<&str>,
) -> Result<Settlement> {
    let c = &app.campaign;
    let venue = match who {
        SettlementReader::Desk(desk) => {
            if venue.is_some_and(|v| v != desk.venue().id) {
                return Err(Refusal::OwnVenueOnly.into());
            }
            Some(desk.venue().id.clone())
        }
        SettlementReader::Auditor(_) => {
            if let Some(v) = venue.filter(|v| c.venue(v).is_none()) {
                return Err(Refusal::query("venue", format!("没有这个场所：{v}")).into());
            }
            venue.map(str::to_owned)
        }
    };
    if dates.to < dates.from {
        return Err(Refusal::query("to", "截止日期不能早于起始日期").into());
    }
    if (dates.to - dates.from).num_days() > 366 {
        return Err(Refusal::query("to", "一次结算最多 366 天").into());
    }
    let tz = c.tz();
    let start_of = |d: NaiveDate| {
        d.and_time(NaiveTime::MIN)
            .and_local_timezone(tz)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| Refusal::query("from", format!("{d} 在 {tz} 没有零点")))
    };
    let from = start_of(dates.from)?;
    let to = start_of(dates.to + Duration::days(1))?;
    let redemptions = app
        .store
        .redemptions_between(venue.as_deref(), from, to)
        .await?;
    Ok(Settlement {
        venue,
        dates,
        from,
        to,
        redemptions,
    })
}
