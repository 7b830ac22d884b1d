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

/// The redemptions as settlement reads them.
pub fn as_settled(records: &[RedemptionRecord]) -> Vec<crate::domain::settlement::Redemption<'_>> {
    records
        .iter()
        .map(|r| crate::domain::settlement::Redemption {
            id: r.id,
            venue_id: &r.venue_id,
            kind: &r.kind,
            code: &r.code,
            redeemed_at: r.redeemed_at,
            reversed_at: r.reversed_at,
        })
        .collect()
}

/// Attempts tallied per batch: one transaction each, short enough not to hold up submissions.
pub const TALLY_BATCH: u32 = 2_000;

/// Tallies every attempt done with (submitted, or its time up) and not tallied yet into the
/// learning figures, a batch at a time. How many it tallied.
pub async fn tally(app: &App) -> Result<u64> {
    let mut done = 0;
    loop {
        let n = app
            .store
            .tally_attempts(&app.questions, &app.campaign, TALLY_BATCH, app.clock.now())
            .await?;
        done += n;
        if n < u64::from(TALLY_BATCH) {
            return Ok(done);
        }
    }
}

/// A venue's redemptions over the whole campaign, reversals netted, with their face value.
pub struct VenueFigures {
    pub venue_id: String,
    pub name: String,
    pub redemptions: i64,
    pub face_value_yuan: i64,
}

/// What the campaign reports: the learning figures (tallied up to now first) and the prizes.
pub struct Report {
    pub figures: crate::store::QuizFigures,
    pub tickets_per_round: Vec<(u32, u64)>,
    pub claims: Vec<crate::store::ClaimCounts>,
    pub venues: Vec<VenueFigures>,
    pub at: DateTime<Utc>,
}

/// The campaign's report for operators and auditors (`GET /api/admin/report`): every attempt
/// done with so far is tallied first, so the figures are exact as of now.
pub async fn report(app: &App, _who: &Auditor) -> Result<Report> {
    let c = &app.campaign;
    let at = app.clock.now();
    tally(app).await?;
    let figures = app.store.quiz_figures(at).await?;
    let tickets_per_round = app.store.tickets_per_round(&c.id).await?;
    let claims = app.store.claim_counts(&c.id).await?;
    let since = c
        .rounds
        .first()
        .map_or(DateTime::<Utc>::MIN_UTC, |r| r.opens_at);
    let until = at + Duration::days(1);
    let records = app.store.redemptions_between(None, since, until).await?;
    let redemptions = as_settled(&records);
    let settled = crate::domain::settlement::settle(&redemptions, since, until, |k| {
        c.voucher_kind(k).and_then(|k| k.face_value_yuan)
    });
    let venues = c
        .venues
        .iter()
        .map(|v| {
            let (redemptions, face_value_yuan) = settled
                .totals
                .iter()
                .filter(|((venue, _), _)| *venue == v.id)
                .fold((0, 0), |(n, y), (_, t)| (n + t.count, y + t.value));
            VenueFigures {
                venue_id: v.id.clone(),
                name: v.name.clone(),
                redemptions,
                face_value_yuan,
            }
        })
        .collect();
    Ok(Report {
        figures,
        tickets_per_round,
        claims,
        venues,
        at,
    })
}
