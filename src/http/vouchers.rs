//! Vouchers: the holder's view (with the holder-code secret), the front desk (check, redeem, reverse, recent), the
//! operators' void and reissue, and the CSV exports (winners and vouchers; settlement).

use super::body::Body;
use super::docs::{BodyRefusals, SessionRefusals, StaffRefusals};
use super::error::{ApiError, ErrorBody};
use super::{client_address, ok_json};
use crate::app::auth::{Auditor, Desk, Operator, Session, SettlementReader};
use crate::app::reports::{self, Dates};
use crate::app::{vouchers, App};
use crate::domain::campaign::{Campaign, Venue, VoucherKind};
use crate::domain::phone::mask;
use crate::domain::redemption::{status, VoucherStatus};
use crate::domain::refusal::Refusal;
use crate::domain::voucher::VoucherCode;
use crate::store::{RedemptionRecord, VoucherRecord};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/me/vouchers").get(my_vouchers))
        .service(web::resource("/api/venue/check").post(check))
        .service(web::resource("/api/venue/redeem").post(redeem))
        .service(web::resource("/api/venue/redemptions").get(recent))
        .service(web::resource("/api/venue/redemptions/{id}/reverse").post(reverse))
        .service(web::resource("/api/settlement.csv").get(settlement_csv))
        .service(web::resource("/api/admin/vouchers").get(find_vouchers))
        .service(web::resource("/api/admin/vouchers/{id}/void").post(void))
        .service(web::resource("/api/admin/vouchers/{id}/reissue").post(reissue))
        .service(web::resource("/api/admin/exports/vouchers.csv").get(vouchers_csv))
        .service(web::resource("/api/admin/stats").get(stats));
}

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

// Views
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct VenueRef {
    id: String,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct Visit {
    venue_id: String,
    venue_name: String,
    /// Local time, RFC 3339.
    at: String,
}

/// A voucher as its holder (and the operators) see it.
#[derive(Serialize, ToSchema)]
pub struct VoucherView {
    id: Uuid,
    /// `XXXX-XXXX-XXXX`.
    code: String,
    kind: String,
    kind_name: String,
    round: u32,
    tier: String,
    tier_label: String,
    face_value_yuan: Option<u32>,
    /// First and last valid local dates (inclusive), in the campaign's time zone.
    valid_from: NaiveDate,
    valid_until: NaiveDate,
    status: VoucherStatus,
    /// `once_per_venue` (the tourism card: once at each scenic spot) or `single_use`.
    policy: String,
    /// Whether redeeming asks for the holder code (the 6 digits that change every 30 s).
    holder_check: bool,
    /// Where it can be used.
    venues: Vec<VenueRef>,
    /// Where it was already used (for the tourism card: the scenic spots visited).
    visited: Vec<Visit>,
    /// What the holder's phone computes the holder code from: only in the holder's own view
    /// (`/api/me`, `/api/me/vouchers`), only while the voucher can be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    holder_key: Option<HolderKey>,
    /// When the operators voided it, and why.
    voided_at: Option<String>,
    void_reason: Option<String>,
    /// The voided voucher this one replaces.
    reissued_from: Option<Uuid>,
}

/// The holder code's parameters (DESIGN §5): RFC 6238 TOTP, HMAC-SHA1 over the secret, steps of
/// `step_seconds` from the Unix epoch, `digits` digits. The QR code shows `XXXX-XXXX-XXXX-NNNNNN`
/// (the voucher code, then the holder code).
#[derive(Serialize, ToSchema)]
pub struct HolderKey {
    /// 20 bytes, hex.
    secret: String,
    step_seconds: i64,
    digits: usize,
}

fn kind_of<'a>(c: &'a Campaign, v: &VoucherRecord) -> Result<&'a VoucherKind, ApiError> {
    c.voucher_kind(&v.kind).ok_or_else(|| {
        ApiError::from(anyhow::anyhow!(
            "voucher kind {:?} is not configured",
            v.kind
        ))
    })
}

fn venue_name(c: &Campaign, id: &str) -> String {
    c.venue(id)
        .map(|v| v.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

fn last_valid_day(c: &Campaign, k: &VoucherKind) -> NaiveDate {
    (k.valid_until - Duration::seconds(1))
        .with_timezone(&c.tz())
        .date_naive()
}

fn visits(c: &Campaign, v: &VoucherRecord) -> Vec<Visit> {
    v.uses
        .iter()
        .map(|u| Visit {
            venue_id: u.venue_id.clone(),
            venue_name: venue_name(c, &u.venue_id),
            at: c.local_rfc3339(u.at),
        })
        .collect()
}

fn display_code(code: &str) -> String {
    VoucherCode::parse(code)
        .map(|c| c.to_string())
        .unwrap_or_else(|_| code.to_owned())
}

fn voucher_view(
    c: &Campaign,
    v: &VoucherRecord,
    now: DateTime<Utc>,
    holder: bool,
) -> Result<VoucherView, ApiError> {
    let k = kind_of(c, v)?;
    let status = status(k, v.standing(), &v.domain_uses(), &c.venues, now);
    let live = matches!(status, VoucherStatus::Usable | VoucherStatus::NotYetValid);
    let tier_label = c
        .tiers
        .iter()
        .find(|t| t.name == v.tier)
        .map(|t| t.label.clone())
        .unwrap_or_else(|| v.tier.clone());
    Ok(VoucherView {
        id: v.id,
        code: display_code(&v.code),
        kind: v.kind.clone(),
        kind_name: k.name.clone(),
        round: v.round,
        tier: v.tier.clone(),
        tier_label,
        face_value_yuan: k.face_value_yuan,
        valid_from: k.valid_from.with_timezone(&c.tz()).date_naive(),
        valid_until: last_valid_day(c, k),
        status,
        policy: k.policy.as_str().into(),
        holder_check: k.holder_check,
        venues: c
            .venues
            .iter()
            .filter(|x| x.category == k.category)
            .map(|x| VenueRef {
                id: x.id.clone(),
                name: x.name.clone(),
            })
            .collect(),
        visited: visits(c, v),
        holder_key: v
            .holder_secret
            .as_ref()
            .filter(|_| holder && live && k.holder_check)
            .map(|secret| HolderKey {
                secret: secret.to_hex(),
                step_seconds: crate::domain::holder_code::STEP_SECONDS,
                digits: crate::domain::holder_code::DIGITS,
            }),
        voided_at: v.voided_at.map(|t| c.local_rfc3339(t)),
        void_reason: v.void_reason.clone(),
        reissued_from: v.reissued_from,
    })
}

/// Views of vouchers for the operators: no holder key.
pub(crate) fn views(app: &App, list: &[VoucherRecord]) -> Result<Vec<VoucherView>, ApiError> {
    let now = app.clock.now();
    list.iter()
        .map(|v| voucher_view(&app.campaign, v, now, false))
        .collect()
}

/// Views of the holder's own vouchers, for the holder's session: with the holder key of each
/// usable one.
pub(crate) fn holder_views(
    app: &App,
    list: &[VoucherRecord],
) -> Result<Vec<VoucherView>, ApiError> {
    let now = app.clock.now();
    list.iter()
        .map(|v| voucher_view(&app.campaign, v, now, true))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The holder
// ---------------------------------------------------------------------------------------------

/// My vouchers: code, holder key, validity, where each can be used and where it was used.
#[utoipa::path(get, path = "/api/me/vouchers", tag = "vouchers", security(("session" = [])),
    responses((status = 200, body = Vec<VoucherView>), SessionRefusals))]
pub async fn my_vouchers(app: web::Data<App>, session: Session) -> Result<HttpResponse, ApiError> {
    let list = vouchers::of(&app, session.participant().id).await?;
    Ok(ok_json(&holder_views(&app, &list)?))
}

// ---------------------------------------------------------------------------------------------
// The front desk
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeInput {
    /// As typed: any case, spaces and hyphens ignored.
    code: String,
}

/// What the front desk sees of a voucher.
#[derive(Serialize, ToSchema)]
pub struct DeskVoucher {
    code: String,
    kind: String,
    kind_name: String,
    face_value_yuan: Option<u32>,
    valid_from: NaiveDate,
    valid_until: NaiveDate,
    /// Holder's display name and masked phone (only at a venue of the voucher's category).
    holder_name: Option<String>,
    holder_phone: Option<String>,
    holder_check: bool,
    visited: Vec<Visit>,
}

fn desk_voucher(c: &Campaign, v: &VoucherRecord, venue: &Venue) -> Result<DeskVoucher, ApiError> {
    let k = kind_of(c, v)?;
    let same_category = k.category == venue.category;
    Ok(DeskVoucher {
        code: display_code(&v.code),
        kind: v.kind.clone(),
        kind_name: k.name.clone(),
        face_value_yuan: k.face_value_yuan,
        valid_from: k.valid_from.with_timezone(&c.tz()).date_naive(),
        valid_until: last_valid_day(c, k),
        holder_name: v.holder_name.clone().filter(|_| same_category),
        holder_phone: same_category.then(|| mask(&v.holder_phone)),
        holder_check: k.holder_check,
        visited: if same_category {
            visits(c, v)
        } else {
            Vec::new()
        },
    })
}

#[derive(Serialize, ToSchema)]
pub struct Refused {
    code: String,
    message: String,
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckResult {
    /// Whether it can be redeemed here now (the holder code is asked at redemption).
    redeemable: bool,
    /// Why not, when it cannot: the same code and message a redemption would get.
    refusal: Option<Refused>,
    voucher: DeskVoucher,
}

/// Checks a code at this venue without redeeming it. A typo is 422 and an unknown code 404
/// (and counts as a failed look-up); a known code gets its verdict.
#[utoipa::path(post, path = "/api/venue/check", tag = "vouchers", security(("bearer" = [])),
    request_body = CodeInput, responses((status = 200, body = CheckResult), BodyRefusals,
    StaffRefusals, (status = 404, body = ErrorBody, description = "`unknown_code`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `typo`, `malformed_code`"),
    (status = 429, body = ErrorBody, description = "`too_many_failed_lookups`, with Retry-After")))]
pub async fn check(
    req: HttpRequest,
    app: web::Data<App>,
    desk: Desk,
    Body(body): Body<CodeInput>,
) -> Result<HttpResponse, ApiError> {
    let checked = vouchers::check(&app, &desk, &client_address(&req), &body.code).await?;
    let refusal = checked.refusal.map(|r| Refused {
        code: r.code().to_owned(),
        message: r.message(),
        details: r.details(),
    });
    Ok(ok_json(&CheckResult {
        redeemable: refusal.is_none(),
        refusal,
        voucher: desk_voucher(&app.campaign, &checked.voucher, desk.venue())?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemInput {
    code: String,
    /// The holder code shown on the holder's phone, 6 digits (asked for by most voucher kinds).
    holder_code: Option<String>,
    /// No longer taken (the phone's last four digits are public): refused with a message
    /// saying what to send instead.
    #[schema(ignore)]
    holder_digits: Option<serde::de::IgnoredAny>,
}

#[derive(Serialize, ToSchema)]
pub struct RedemptionView {
    id: Uuid,
    code: String,
    kind: String,
    kind_name: String,
    venue_id: String,
    venue_name: String,
    /// Local time, RFC 3339.
    redeemed_at: String,
    reversed_at: Option<String>,
    /// Whether this venue can still reverse it.
    reversible: bool,
}

fn redemption_view(app: &App, r: &RedemptionRecord) -> RedemptionView {
    let c = &app.campaign;
    let window = app.vouchers.reversal_window();
    RedemptionView {
        id: r.id,
        code: display_code(&r.code),
        kind: r.kind.clone(),
        kind_name: c
            .voucher_kind(&r.kind)
            .map(|k| k.name.clone())
            .unwrap_or_else(|| r.kind.clone()),
        venue_id: r.venue_id.clone(),
        venue_name: venue_name(c, &r.venue_id),
        redeemed_at: c.local_rfc3339(r.redeemed_at),
        reversed_at: r.reversed_at.map(|t| c.local_rfc3339(t)),
        reversible: r.reversal_id.is_none()
            && crate::domain::redemption::may_reverse(r.redeemed_at, window, app.clock.now()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Redeemed {
    redemption: RedemptionView,
    voucher: DeskVoucher,
    /// True when this answers an earlier request with the same Idempotency-Key.
    replayed: bool,
}

/// Redeems a code at this venue, exactly once. Send an `Idempotency-Key`: the first answer to a
/// key, a refusal too, is the answer to every retry with the same key and request; the same key
/// with another code or another holder code is refused (`idempotency_key_reused`). The holder
/// code is the holder's of now (one 30-second step either side accepted), and a code a voucher
/// was redeemed with is not taken again (`holder_code_used`).
#[utoipa::path(post, path = "/api/venue/redeem", tag = "vouchers", security(("bearer" = [])),
    request_body = RedeemInput, params(("Idempotency-Key" = String, Header)),
    responses((status = 200, body = Redeemed), BodyRefusals, StaffRefusals,
    (status = 400, body = ErrorBody, description = "`idempotency_key_required`, `invalid_idempotency_key`, `malformed_json`, `duplicate_key`"),
    (status = 404, body = ErrorBody, description = "`unknown_code`"),
    (status = 409, body = ErrorBody, description = "`already_used` (details: when and where)"),
    (status = 410, body = ErrorBody, description = "`voucher_void`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `typo`, `malformed_code`, `wrong_venue_category`, `not_yet_valid`, `expired`, `holder_code_required`, `holder_mismatch`, `holder_code_used`, `idempotency_key_reused`"),
    (status = 429, body = ErrorBody, description = "`too_many_failed_lookups`, with Retry-After")))]
pub async fn redeem(
    req: HttpRequest,
    app: web::Data<App>,
    desk: Desk,
    Body(body): Body<RedeemInput>,
) -> Result<HttpResponse, ApiError> {
    // A header that is not text is as good as a bad key.
    let key = req
        .headers()
        .get("Idempotency-Key")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    if body.holder_digits.is_some() {
        return Err(Refusal::field(
            "holder_digits",
            "已不再用手机号后四位核验：请在 holder_code 中填持券人手机上显示的 6 位动态码",
        )
        .into());
    }
    let done = vouchers::redeem(
        &app,
        &desk,
        &client_address(&req),
        &vouchers::Redemption {
            code: &body.code,
            holder_code: body.holder_code.as_deref(),
            idempotency_key: key,
        },
    )
    .await?;
    let mut res = HttpResponse::Ok();
    if done.replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(res.json(Redeemed {
        redemption: redemption_view(&app, &done.redemption),
        voucher: desk_voucher(&app.campaign, &done.voucher, desk.venue())?,
        replayed: done.replayed,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecentQuery {
    /// At most this many (default 20, at most 200).
    limit: Option<u32>,
}

/// This venue's latest redemptions, newest first, with whether each can still be reversed.
#[utoipa::path(get, path = "/api/venue/redemptions", tag = "vouchers", security(("bearer" = [])),
    params(RecentQuery), responses((status = 200, body = Vec<RedemptionView>), StaffRefusals,
    (status = 400, body = ErrorBody, description = "`invalid_query` (`limit`)")))]
pub async fn recent(
    app: web::Data<App>,
    desk: Desk,
    query: web::Query<RecentQuery>,
) -> Result<HttpResponse, ApiError> {
    let list = vouchers::recent(&app, &desk, query.limit.unwrap_or(20)).await?;
    Ok(ok_json(
        &list
            .iter()
            .map(|r| redemption_view(&app, r))
            .collect::<Vec<_>>(),
    ))
}

/// Reverses this venue's own redemption within the reversal window (default 30 minutes). The
/// reversal is a record of its own; the code can then be redeemed again.
#[utoipa::path(post, path = "/api/venue/redemptions/{id}/reverse", tag = "vouchers",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = RedemptionView), StaffRefusals,
    (status = 404, body = ErrorBody, description = "`redemption_not_found`"),
    (status = 409, body = ErrorBody, description = "`already_reversed`, `reversal_window_passed`")))]
pub async fn reverse(
    app: web::Data<App>,
    desk: Desk,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let r = vouchers::reverse(&app, &desk, &id).await?;
    Ok(ok_json(&redemption_view(&app, &r)))
}

// ---------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FindQuery {
    /// The winner's phone, in any accepted spelling.
    phone: String,
}

/// A winner's vouchers, found by phone (for a winner who lost a code).
#[utoipa::path(get, path = "/api/admin/vouchers", tag = "vouchers", security(("bearer" = [])),
    params(FindQuery), responses((status = 200, body = Vec<VoucherView>), StaffRefusals,
    (status = 400, body = ErrorBody, description = "`invalid_query` (`phone`)")))]
pub async fn find_vouchers(
    app: web::Data<App>,
    operator: Operator,
    query: web::Query<FindQuery>,
) -> Result<HttpResponse, ApiError> {
    let list = vouchers::find(&app, &operator, &query.phone).await?;
    Ok(ok_json(&views(&app, &list)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidInput {
    /// Why (e.g. "持券人报失"), for the audit log: 1 to 200 characters.
    reason: String,
}

/// Voids a voucher (lost, say). Its uses stay on record; reissue gives the winner a new code.
#[utoipa::path(post, path = "/api/admin/vouchers/{id}/void", tag = "vouchers",
    security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = VoidInput,
    responses((status = 200, body = VoucherView), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`voucher_not_found`"),
    (status = 409, body = ErrorBody, description = "`already_void`"),
    (status = 422, body = ErrorBody, description = "`invalid_field` (`reason`)")))]
pub async fn void(
    app: web::Data<App>,
    operator: Operator,
    id: web::Path<String>,
    Body(body): Body<VoidInput>,
) -> Result<HttpResponse, ApiError> {
    let v = vouchers::void(&app, &operator, &id, &body.reason).await?;
    Ok(ok_json(&voucher_view(
        &app.campaign,
        &v,
        app.clock.now(),
        false,
    )?))
}

/// A new code for a voided voucher, to the same winner, once. The new code keeps the old one's
/// uses (a tourism card's visited spots stay visited).
#[utoipa::path(post, path = "/api/admin/vouchers/{id}/reissue", tag = "vouchers",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 201, body = VoucherView), StaffRefusals,
    (status = 404, body = ErrorBody, description = "`voucher_not_found`"),
    (status = 409, body = ErrorBody, description = "`voucher_not_void`, `already_reissued`")))]
pub async fn reissue(
    app: web::Data<App>,
    operator: Operator,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let v = vouchers::reissue(&app, &operator, &id).await?;
    Ok(HttpResponse::Created().json(voucher_view(&app.campaign, &v, app.clock.now(), false)?))
}

#[derive(Serialize, ToSchema)]
pub struct RoundTickets {
    round: u32,
    tickets: u64,
}

#[derive(Serialize, ToSchema)]
pub struct VenueDays {
    id: String,
    name: String,
    /// Redemptions (not reversed) on each of `days`.
    per_day: Vec<u32>,
    total: u32,
}

#[derive(Serialize, ToSchema)]
pub struct RedemptionsPerDay {
    /// Local dates, from the first with a redemption to the last; empty before any.
    days: Vec<NaiveDate>,
    venues: Vec<VenueDays>,
}

/// For the operators' charts.
#[derive(Serialize, ToSchema)]
pub struct Stats {
    /// Rounds that hold tickets, by round.
    tickets_per_round: Vec<RoundTickets>,
    redemptions: RedemptionsPerDay,
    sms: SmsStatus,
    /// Per drawn round: prizes to claim, claimed, forfeited.
    claims: Vec<ClaimsView>,
}

#[derive(Serialize, ToSchema)]
pub struct ClaimsView {
    round: u32,
    to_claim: u64,
    claimed: u64,
    forfeited: u64,
    /// Holders told by SMS of their prize, and reminded of its deadline.
    notified: u64,
    reminded: u64,
}

/// The campaign-wide SMS budget: past it, code requests are refused `sms_paused` until the
/// hour has room again.
#[derive(Serialize, ToSchema)]
pub struct SmsStatus {
    /// Queued in the last hour.
    last_hour: u64,
    /// `login.campaign_sms_per_hour`.
    hourly_budget: i64,
    /// Sending is paused now.
    paused: bool,
    /// Who sends the outbox: `outbox` (nobody: it waits to be read), `aliyun`, `tencent`.
    gateway: String,
    /// The messages of the last 24 hours by status.
    last_day: OutboxView,
}

/// Messages by status.
#[derive(Serialize, ToSchema)]
pub struct OutboxView {
    queued: u64,
    sending: u64,
    sent: u64,
    delivered: u64,
    /// Not sent, or not delivered (the reason is in `campaign-lottery sms recent`).
    failed: u64,
}

/// Tickets per round and redemptions per venue and local day, for the operators' and auditors'
/// charts.
#[utoipa::path(get, path = "/api/admin/stats", tag = "vouchers", security(("bearer" = [])),
    responses((status = 200, body = Stats), StaffRefusals))]
pub async fn stats(app: web::Data<App>, auditor: Auditor) -> Result<HttpResponse, ApiError> {
    let s = reports::stats(&app, &auditor).await?;
    Ok(ok_json(&Stats {
        claims: s
            .claims
            .iter()
            .map(|c| ClaimsView {
                round: c.round,
                to_claim: c.to_claim,
                claimed: c.claimed,
                forfeited: c.forfeited,
                notified: c.notified,
                reminded: c.reminded,
            })
            .collect(),
        sms: SmsStatus {
            last_hour: s.sms_last_hour,
            hourly_budget: s.sms_per_hour,
            paused: s.sms_last_hour as i64 >= s.sms_per_hour,
            gateway: s.sms_gateway.name().to_owned(),
            last_day: OutboxView {
                queued: s.sms_last_day.queued,
                sending: s.sms_last_day.sending,
                sent: s.sms_last_day.sent,
                delivered: s.sms_last_day.delivered,
                failed: s.sms_last_day.failed,
            },
        },
        tickets_per_round: s
            .tickets_per_round
            .into_iter()
            .map(|(round, tickets)| RoundTickets { round, tickets })
            .collect(),
        redemptions: RedemptionsPerDay {
            days: s.days,
            venues: app
                .campaign
                .venues
                .iter()
                .zip(s.per_venue)
                .map(|(v, per_day)| VenueDays {
                    id: v.id.clone(),
                    name: v.name.clone(),
                    total: per_day.iter().sum(),
                    per_day,
                })
                .collect(),
        },
    }))
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------

/// Text typed by people, as a cell a spreadsheet would not run as a formula.
fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

fn csv_response(name: &str, rows: Vec<Vec<String>>) -> Result<HttpResponse, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.write_record(&row)
            .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    }
    let mut bytes = b"\xEF\xBB\xBF".to_vec(); // a BOM, so that spreadsheet programs read UTF-8
    bytes.extend(
        w.into_inner()
            .map_err(|e| ApiError::from(anyhow::anyhow!("{e}")))?,
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(bytes))
}

/// Winners and their vouchers, one row per voucher (void and reissued codes included). For
/// operators; the export is written to the audit log.
#[utoipa::path(get, path = "/api/admin/exports/vouchers.csv", tag = "vouchers",
    security(("bearer" = [])), responses((status = 200, content_type = "text/csv"),
    StaffRefusals))]
pub async fn vouchers_csv(
    app: web::Data<App>,
    operator: Operator,
) -> Result<HttpResponse, ApiError> {
    let c = &app.campaign;
    let now = app.clock.now();
    let vouchers = reports::vouchers_export(&app, &operator).await?;
    let mut rows = vec![[
        "round",
        "rank",
        "tier",
        "participant_id",
        "phone",
        "display_name",
        "voucher_id",
        "code",
        "kind",
        "status",
        "issued_at",
        "voided_at",
        "void_reason",
        "reissued_from",
        "uses",
        "used_at_venues",
    ]
    .map(String::from)
    .to_vec()];
    for v in &vouchers {
        let k = kind_of(c, v)?;
        let st = status(k, v.standing(), &v.domain_uses(), &c.venues, now);
        rows.push(vec![
            v.round.to_string(),
            v.rank.to_string(),
            v.tier.clone(),
            v.participant_id.to_string(),
            v.holder_phone.clone(),
            cell(v.holder_name.as_deref().unwrap_or_default()),
            v.id.to_string(),
            display_code(&v.code),
            v.kind.clone(),
            serde_json::to_value(st)
                .ok()
                .and_then(|s| s.as_str().map(str::to_owned))
                .unwrap_or_default(),
            c.local_rfc3339(v.issued_at),
            v.voided_at.map(|t| c.local_rfc3339(t)).unwrap_or_default(),
            cell(v.void_reason.as_deref().unwrap_or_default()),
            v.reissued_from.map(|i| i.to_string()).unwrap_or_default(),
            v.uses.len().to_string(),
            v.uses
                .iter()
                .map(|u| u.venue_id.as_str())
                .collect::<Vec<_>>()
                .join(";"),
        ]);
    }
    csv_response(&format!("{}-vouchers.csv", c.id), rows)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SettlementQuery {
    /// First local date (inclusive), YYYY-MM-DD.
    from: NaiveDate,
    /// Last local date (inclusive), YYYY-MM-DD.
    to: NaiveDate,
    /// One venue (operators and auditors); a venue token always gets its own.
    venue: Option<String>,
}

/// Settlement: what was redeemed and reversed per venue in a range of local dates, one row per
/// redemption (+1) and per reversal (−1), then per venue and voucher kind the net count and
/// face value. A venue token gets its own venue's; operators and auditors all or one.
#[utoipa::path(get, path = "/api/settlement.csv", tag = "vouchers", security(("bearer" = [])),
    params(SettlementQuery), responses((status = 200, content_type = "text/csv"), StaffRefusals,
    (status = 400, body = ErrorBody, description = "`invalid_query` (`from`, `to`, `venue`)")))]
pub async fn settlement_csv(
    app: web::Data<App>,
    reader: SettlementReader,
    query: web::Query<SettlementQuery>,
) -> Result<HttpResponse, ApiError> {
    let c = &app.campaign;
    let s = reports::settlement(
        &app,
        &reader,
        Dates {
            from: query.from,
            to: query.to,
        },
        query.venue.as_deref(),
    )
    .await?;
    let redemptions = reports::as_settled(&s.redemptions);
    let settled = crate::domain::settlement::settle(&redemptions, s.from, s.to, |k| {
        c.voucher_kind(k).and_then(|k| k.face_value_yuan)
    });
    let kind_name = |k: &str| {
        c.voucher_kind(k)
            .map(|k| k.name.clone())
            .unwrap_or_default()
    };
    let mut rows = vec![[
        "venue_id",
        "venue_name",
        "entry",
        "local_time",
        "voucher_kind",
        "voucher_name",
        "code",
        "redemption_id",
        "count",
        "face_value_yuan",
    ]
    .map(String::from)
    .to_vec()];
    for e in &settled.entries {
        let r = e.redemption;
        rows.push(vec![
            r.venue_id.to_owned(),
            venue_name(c, r.venue_id),
            if e.count > 0 { "redeem" } else { "reverse" }.into(),
            c.local_rfc3339(e.at),
            r.kind.to_owned(),
            kind_name(r.kind),
            display_code(r.code),
            r.id.to_string(),
            e.count.to_string(),
            e.value.to_string(),
        ]);
    }
    for ((venue_id, kind), total) in &settled.totals {
        rows.push(vec![
            (*venue_id).to_owned(),
            venue_name(c, venue_id),
            "total".into(),
            String::new(),
            (*kind).to_owned(),
            kind_name(kind),
            String::new(),
            String::new(),
            total.count.to_string(),
            total.value.to_string(),
        ]);
    }
    let name = format!(
        "settlement-{}-{}-{}.csv",
        s.venue.as_deref().unwrap_or("all"),
        s.dates.from,
        s.dates.to
    );
    csv_response(&name, rows)
}
