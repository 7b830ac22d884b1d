//! Vouchers: the holder's view and QR code, the front desk (check, redeem, reverse, recent), the
//! operators' void and reissue, and the CSV exports (winners and vouchers; settlement).

use super::auth::{Caller, ParticipantSession};
use super::body::Body;
use super::error::ApiError;
use super::participant::client_address;
use super::{ok_json, AppState};
use crate::domain::audit::AuditEvent;
use crate::domain::campaign::{Campaign, Category, Venue, VoucherKind};
use crate::domain::phone::mask;
use crate::domain::redemption::{judge, status, HolderCheck, Refusal, VoucherStatus};
use crate::domain::token::Role;
use crate::domain::voucher::{CodeError, VoucherCode};
use crate::store::{RedeemOutcome, RedemptionRecord, ReverseOutcome, VoucherRecord};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/me/vouchers").get(my_vouchers))
        .service(web::resource("/api/me/vouchers/{id}/qr.svg").get(qr_svg))
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
    /// Whether redeeming asks for the last four digits of the holder's phone.
    holder_check: bool,
    /// Where it can be used.
    venues: Vec<VenueRef>,
    /// Where it was already used (for the tourism card: the scenic spots visited).
    visited: Vec<Visit>,
    /// The QR code of the code, as SVG (for the holder's own vouchers).
    qr_svg: String,
    /// When the operators voided it, and why.
    voided_at: Option<String>,
    void_reason: Option<String>,
    /// The voided voucher this one replaces.
    reissued_from: Option<Uuid>,
}

fn kind_of<'a>(c: &'a Campaign, v: &VoucherRecord) -> Result<&'a VoucherKind, ApiError> {
    c.voucher_kind(&v.kind).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
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
) -> Result<VoucherView, ApiError> {
    let k = kind_of(c, v)?;
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
        status: status(k, v.void, &v.domain_uses(), &c.venues, now),
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
        qr_svg: format!("/api/me/vouchers/{}/qr.svg", v.id),
        voided_at: v.voided_at.map(|t| c.local_rfc3339(t)),
        void_reason: v.void_reason.clone(),
        reissued_from: v.reissued_from,
    })
}

/// The participant's vouchers for `/api/me`.
pub(crate) async fn views_of(
    state: &AppState,
    participant: Uuid,
) -> Result<Vec<VoucherView>, ApiError> {
    let now = state.clock.now();
    state
        .store
        .vouchers_of(participant)
        .await?
        .iter()
        .filter(|v| v.campaign_id == state.campaign.id)
        .map(|v| voucher_view(&state.campaign, v, now))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The holder
// ---------------------------------------------------------------------------------------------

/// My vouchers: code, QR code, validity, where each can be used and where it was used.
#[utoipa::path(get, path = "/api/me/vouchers", tag = "vouchers", responses(
    (status = 200, body = Vec<VoucherView>), (status = 401, body = super::error::ErrorBody)))]
pub async fn my_vouchers(
    state: web::Data<AppState>,
    session: ParticipantSession,
) -> Result<HttpResponse, ApiError> {
    Ok(ok_json(&views_of(&state, session.participant.id).await?))
}

/// The QR code of one of my vouchers (SVG). Another participant's voucher is not found.
#[utoipa::path(get, path = "/api/me/vouchers/{id}/qr.svg", tag = "vouchers",
    params(("id" = Uuid, Path)), responses((status = 200, content_type = "image/svg+xml"),
    (status = 404, body = super::error::ErrorBody)))]
pub async fn qr_svg(
    state: web::Data<AppState>,
    session: ParticipantSession,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let missing = || ApiError::not_found("no such voucher among yours");
    let id = Uuid::parse_str(&id).map_err(|_| missing())?;
    let voucher = state
        .store
        .voucher(id)
        .await?
        .filter(|v| v.participant_id == session.participant.id)
        .ok_or_else(missing)?;
    let svg = qr_code_svg(&display_code(&voucher.code))?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "private, no-store"))
        .body(svg))
}

fn qr_code_svg(text: &str) -> Result<String, ApiError> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

// ---------------------------------------------------------------------------------------------
// The front desk
// ---------------------------------------------------------------------------------------------

/// The venue a venue token is bound to.
fn venue_of<'a>(state: &'a AppState, caller: &Caller) -> Result<&'a Venue, ApiError> {
    caller.require(&[Role::Venue])?;
    let id = caller.token.venue_id.as_deref().unwrap_or_default();
    state.campaign.venue(id).ok_or_else(|| {
        ApiError::forbidden(format!(
            "this token's venue {id:?} is no longer a partner of the campaign"
        ))
    })
}

/// Too many failed look-ups from this token or address: 429 before anything about the code
/// is looked at.
async fn throttle(state: &AppState, caller: &Caller, address: &str) -> Result<(), ApiError> {
    let s = &state.vouchers;
    let now = state.clock.now();
    let window = Duration::minutes(s.failed_lookup_window_minutes);
    let f = state
        .store
        .lookup_failures(caller.token.id, address, now - window)
        .await?;
    let over = if f.by_token >= s.failed_lookups_per_token {
        f.token_oldest
    } else if f.by_address >= s.failed_lookups_per_address {
        f.address_oldest
    } else {
        return Ok(());
    };
    let retry = over
        .map(|oldest| crate::store::retry_after(oldest, window, now))
        .unwrap_or(60);
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_lookups",
        format!("查询失败次数过多，请 {retry} 秒后再试"),
    )
    .retry_after(retry))
}

async fn failed_lookup(state: &AppState, caller: &Caller, address: &str) -> Result<(), ApiError> {
    state
        .store
        .record_lookup_failure(caller.token.id, address, state.clock.now())
        .await?;
    Ok(())
}

/// A code as typed; a typo is refused here, before any database look-up.
fn parse_code(input: &str) -> Result<VoucherCode, ApiError> {
    VoucherCode::parse(input).map_err(|e| {
        let code = match e {
            CodeError::Typo => "typo",
            CodeError::WrongLength(_) | CodeError::BadSymbol(_) => "malformed_code",
        };
        let message = match e {
            CodeError::Typo => "券码有误：请核对后重新输入（最后一位校验不符）".to_owned(),
            CodeError::WrongLength(n) => format!("券码应为 12 位字母和数字，这里是 {n} 位"),
            CodeError::BadSymbol(c) => format!("券码中不会出现“{c}”，请核对"),
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    })
}

fn category_name(c: Category) -> &'static str {
    match c {
        Category::Scenic => "景区",
        Category::Hotel => "酒店",
        Category::Dining => "餐厅",
    }
}

/// A refusal as the front desk reads it.
fn refusal_error(c: &Campaign, r: &Refusal) -> ApiError {
    let tz = c.tz();
    let day = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y年%m月%d日").to_string();
    match r {
        Refusal::Void => ApiError::new(StatusCode::GONE, "voucher_void", "此券已作废，不能使用"),
        Refusal::WrongCategory { venue, voucher } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_venue_category",
            format!(
                "此券只能在{}使用，本店是{}",
                category_name(*voucher),
                category_name(*venue)
            ),
        )
        .with_details(serde_json::json!({"voucher_category": voucher, "venue_category": venue})),
        Refusal::NotYetValid { from } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_yet_valid",
            format!("此券自 {} 起才能使用", day(*from)),
        )
        .with_details(serde_json::json!({"valid_from": c.local_rfc3339(*from)})),
        Refusal::Expired { until } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "expired",
            format!(
                "此券已过期（有效期至 {}）",
                day(*until - Duration::seconds(1))
            ),
        )
        .with_details(serde_json::json!({"valid_until": c.local_rfc3339(*until)})),
        Refusal::AlreadyUsed(used) => {
            let at = used.at.with_timezone(&tz).format("%Y-%m-%d %H:%M");
            let name = venue_name(c, &used.venue_id);
            ApiError::new(
                StatusCode::CONFLICT,
                "already_used",
                format!("此券已于 {at} 在「{name}」使用过"),
            )
            .with_details(serde_json::json!({
                "used_at": c.local_rfc3339(used.at), "venue_id": used.venue_id, "venue_name": name,
            }))
        }
        Refusal::HolderDigitsRequired => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "holder_digits_required",
            "请输入持券人手机号后四位",
        ),
        Refusal::HolderMismatch => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "holder_mismatch",
            "手机号后四位与持券人不符",
        ),
    }
}

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
    /// Whether it can be redeemed here now (the holder's digits are asked at redemption).
    redeemable: bool,
    /// Why not, when it cannot: the same code and message a redemption would get.
    refusal: Option<Refused>,
    voucher: DeskVoucher,
}

/// Checks a code at this venue without redeeming it. A typo is 422 and an unknown code 404
/// (and counts as a failed look-up); a known code gets its verdict.
#[utoipa::path(post, path = "/api/venue/check", tag = "vouchers", security(("bearer" = [])),
    request_body = CodeInput, responses((status = 200, body = CheckResult),
    (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody),
    (status = 429, body = super::error::ErrorBody)))]
pub async fn check(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    Body(body): Body<CodeInput>,
) -> Result<HttpResponse, ApiError> {
    let venue = venue_of(&state, &caller)?;
    let address = client_address(&req, state.login.trust_forwarded_for);
    throttle(&state, &caller, &address).await?;
    let code = parse_code(&body.code)?;
    let Some(v) = state.store.voucher_by_code(code.as_str()).await? else {
        failed_lookup(&state, &caller, &address).await?;
        return Err(unknown_code());
    };
    let c = &state.campaign;
    let verdict = judge(
        kind_of(c, &v)?,
        v.void,
        &v.domain_uses(),
        venue,
        state.clock.now(),
        HolderCheck::NotYet,
    );
    let refusal = verdict.err().map(|r| {
        let e = refusal_error(c, &r);
        Refused {
            code: e.code.to_owned(),
            message: e.message.clone(),
            details: e.details_value(),
        }
    });
    Ok(ok_json(&CheckResult {
        redeemable: refusal.is_none(),
        refusal,
        voucher: desk_voucher(c, &v, venue)?,
    }))
}

fn unknown_code() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_code",
        "没有这个券码，请核对后重新输入",
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemInput {
    code: String,
    /// The last four digits of the holder's phone (asked for by most voucher kinds).
    holder_digits: Option<String>,
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

fn redemption_view(state: &AppState, r: &RedemptionRecord) -> RedemptionView {
    let c = &state.campaign;
    let window = Duration::minutes(state.vouchers.reversal_window_minutes);
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
            && crate::domain::redemption::may_reverse(r.redeemed_at, window, state.clock.now()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Redeemed {
    redemption: RedemptionView,
    voucher: DeskVoucher,
    /// True when this answers an earlier request with the same Idempotency-Key.
    replayed: bool,
}

fn idempotency_key(req: &HttpRequest) -> Result<String, ApiError> {
    let key = req
        .headers()
        .get("Idempotency-Key")
        .ok_or_else(|| {
            ApiError::bad_request(
                "idempotency_key_required",
                "send an Idempotency-Key header (a fresh random value per redemption, reused when retrying it)",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid_idempotency_key", "the Idempotency-Key is not text"))?
        .trim()
        .to_owned();
    if key.is_empty() || key.len() > 100 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "the Idempotency-Key must be 1 to 100 visible ASCII characters",
        ));
    }
    Ok(key)
}

/// Redeems a code at this venue, exactly once. Send an `Idempotency-Key`: a retry with the same
/// key gets the same answer; the same key with another code is refused. Every refusal names
/// its reason (`typo`, `malformed_code`, `unknown_code`, `wrong_venue_category`, `already_used`
/// with when and where, `not_yet_valid`, `expired`, `voucher_void`, `holder_digits_required`,
/// `holder_mismatch`).
#[utoipa::path(post, path = "/api/venue/redeem", tag = "vouchers", security(("bearer" = [])),
    request_body = RedeemInput, params(("Idempotency-Key" = String, Header)),
    responses((status = 200, body = Redeemed),
    (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
    (status = 409, body = super::error::ErrorBody), (status = 410, body = super::error::ErrorBody),
    (status = 422, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn redeem(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    Body(body): Body<RedeemInput>,
) -> Result<HttpResponse, ApiError> {
    let venue = venue_of(&state, &caller)?;
    let key = idempotency_key(&req)?;
    let address = client_address(&req, state.login.trust_forwarded_for);
    throttle(&state, &caller, &address).await?;
    let code = parse_code(&body.code)?;
    let digits = body
        .holder_digits
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    if let Some(d) = &digits {
        if d.len() != 4 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "holder_digits: the last four digits of the holder's phone, e.g. 5678",
            ));
        }
    }
    let outcome = state
        .store
        .redeem(
            &state.campaign,
            crate::store::Redeem {
                code: code.as_str().to_owned(),
                venue: venue.clone(),
                token_id: caller.token.id,
                idempotency_key: key,
                holder_digits: digits,
                actor: caller.actor(),
                at: state.clock.now(),
            },
        )
        .await?;
    let c = &state.campaign;
    match outcome {
        RedeemOutcome::Redeemed {
            redemption,
            voucher,
            replayed,
        } => {
            let mut res = HttpResponse::Ok();
            if replayed {
                res.insert_header(("Idempotent-Replayed", "true"));
            }
            Ok(res.json(Redeemed {
                redemption: redemption_view(&state, &redemption),
                voucher: desk_voucher(c, &voucher, venue)?,
                replayed,
            }))
        }
        RedeemOutcome::Refused { refusal, .. } => {
            if refusal == Refusal::HolderMismatch {
                failed_lookup(&state, &caller, &address).await?;
            }
            Err(refusal_error(c, &refusal))
        }
        RedeemOutcome::Unknown => {
            failed_lookup(&state, &caller, &address).await?;
            Err(unknown_code())
        }
        RedeemOutcome::KeyReused => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for another code; use a fresh key per redemption",
        )),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecentQuery {
    /// At most this many (default 20, at most 200).
    limit: Option<u32>,
}

/// This venue's latest redemptions, newest first, with whether each can still be reversed.
#[utoipa::path(get, path = "/api/venue/redemptions", tag = "vouchers", security(("bearer" = [])),
    params(RecentQuery), responses((status = 200, body = Vec<RedemptionView>),
    (status = 403, body = super::error::ErrorBody)))]
pub async fn recent(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<RecentQuery>,
) -> Result<HttpResponse, ApiError> {
    let venue = venue_of(&state, &caller)?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit: from 1 to 200"));
    }
    let list = state
        .store
        .recent_redemptions(Some(&venue.id), limit)
        .await?;
    Ok(ok_json(
        &list
            .iter()
            .map(|r| redemption_view(&state, r))
            .collect::<Vec<_>>(),
    ))
}

/// Reverses this venue's own redemption within the reversal window (default 30 minutes). The
/// reversal is a record of its own; the code can then be redeemed again.
#[utoipa::path(post, path = "/api/venue/redemptions/{id}/reverse", tag = "vouchers",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = RedemptionView), (status = 404, body = super::error::ErrorBody),
    (status = 409, body = super::error::ErrorBody)))]
pub async fn reverse(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let venue = venue_of(&state, &caller)?;
    let missing = || ApiError::not_found("no such redemption at this venue");
    let id = Uuid::parse_str(&id).map_err(|_| missing())?;
    let window = Duration::minutes(state.vouchers.reversal_window_minutes);
    let outcome = state
        .store
        .reverse_redemption(
            id,
            &venue.id,
            caller.token.id,
            window,
            &caller.actor(),
            state.clock.now(),
        )
        .await?;
    match outcome {
        ReverseOutcome::Reversed(r) => Ok(ok_json(&redemption_view(&state, &r))),
        ReverseOutcome::NotFound => Err(missing()),
        ReverseOutcome::AlreadyReversed(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_reversed",
            "这笔核销已经撤销过了",
        )),
        ReverseOutcome::WindowPassed(r) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "reversal_window_passed",
            format!(
                "核销后 {} 分钟内才能撤销；这笔核销于 {} 完成，已超过时限，请联系活动运营",
                state.vouchers.reversal_window_minutes,
                r.redeemed_at
                    .with_timezone(&state.campaign.tz())
                    .format("%Y-%m-%d %H:%M")
            ),
        )),
    }
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
    params(FindQuery), responses((status = 200, body = Vec<VoucherView>),
    (status = 403, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn find_vouchers(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<FindQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    let phone = crate::domain::phone::Phone::parse(&query.phone)
        .map_err(|e| ApiError::invalid(format!("phone: {e}")))?;
    let Some(p) = state.store.participant_by_phone(phone.as_str()).await? else {
        return Ok(ok_json(&Vec::<VoucherView>::new()));
    };
    Ok(ok_json(&views_of(&state, p.id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidInput {
    /// Why (e.g. "持券人报失"), for the audit log.
    reason: String,
}

fn voucher_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found("no such voucher"))
}

/// Voids a voucher (lost, say). Its uses stay on record; reissue gives the winner a new code.
#[utoipa::path(post, path = "/api/admin/vouchers/{id}/void", tag = "vouchers",
    security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = VoidInput,
    responses((status = 200, body = VoucherView), (status = 404, body = super::error::ErrorBody),
    (status = 409, body = super::error::ErrorBody)))]
pub async fn void(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    Body(body): Body<VoidInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    let id = voucher_id(&id)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::invalid("reason: 1 to 200 characters"));
    }
    let now = state.clock.now();
    let v = state
        .store
        .void_voucher(id, reason, &caller.actor(), now)
        .await?;
    Ok(ok_json(&voucher_view(&state.campaign, &v, now)?))
}

/// A new code for a voided voucher, to the same winner, once. The new code keeps the old one's
/// uses (a tourism card's visited spots stay visited).
#[utoipa::path(post, path = "/api/admin/vouchers/{id}/reissue", tag = "vouchers",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 201, body = VoucherView), (status = 404, body = super::error::ErrorBody),
    (status = 409, body = super::error::ErrorBody)))]
pub async fn reissue(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    let id = voucher_id(&id)?;
    let now = state.clock.now();
    let v = state
        .store
        .reissue_voucher(id, &caller.actor(), now)
        .await?;
    Ok(HttpResponse::Created().json(voucher_view(&state.campaign, &v, now)?))
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
}

/// Tickets per round and redemptions per venue and local day, for the operators' and auditors'
/// charts.
#[utoipa::path(get, path = "/api/admin/stats", tag = "vouchers", security(("bearer" = [])),
    responses((status = 200, body = Stats), (status = 403, body = super::error::ErrorBody)))]
pub async fn stats(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    let c = &state.campaign;
    let tz = c.tz();
    let tickets = state.store.tickets_per_round(&c.id).await?;
    let since = c
        .rounds
        .first()
        .map_or(DateTime::<Utc>::MIN_UTC, |r| r.opens_at);
    let until = state.clock.now() + Duration::days(1);
    let list = state.store.redemptions_between(None, since, until).await?;
    let uses = list
        .into_iter()
        .filter(|r| r.reversal_id.is_none())
        .map(|r| (r.venue_id, r.redeemed_at.with_timezone(&tz).date_naive()));
    let ids: Vec<&str> = c.venues.iter().map(|v| v.id.as_str()).collect();
    let (days, rows) = crate::domain::redemption::per_venue_per_day(&ids, uses);
    Ok(ok_json(&Stats {
        tickets_per_round: tickets
            .into_iter()
            .map(|(round, tickets)| RoundTickets { round, tickets })
            .collect(),
        redemptions: RedemptionsPerDay {
            days,
            venues: c
                .venues
                .iter()
                .zip(rows)
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
            .map_err(|e| ApiError::internal(e.into()))?;
    }
    let mut bytes = b"\xEF\xBB\xBF".to_vec(); // a BOM, so that spreadsheet programs read UTF-8
    bytes.extend(
        w.into_inner()
            .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?,
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
    (status = 403, body = super::error::ErrorBody)))]
pub async fn vouchers_csv(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    let c = &state.campaign;
    let now = state.clock.now();
    let vouchers = state.store.all_vouchers(&c.id).await?;
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
        let st = status(k, v.void, &v.domain_uses(), &c.venues, now);
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
    state
        .store
        .append_audit(
            AuditEvent::new(
                caller.actor(),
                "export.vouchers",
                format!("campaign:{}", c.id),
                serde_json::json!({"rows": vouchers.len()}),
            ),
            now,
        )
        .await?;
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
    params(SettlementQuery), responses((status = 200, content_type = "text/csv"),
    (status = 403, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn settlement_csv(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SettlementQuery>,
) -> Result<HttpResponse, ApiError> {
    let c = &state.campaign;
    let venue: Option<String> = match caller.role() {
        Role::Venue => {
            let own = venue_of(&state, &caller)?;
            if query.venue.as_deref().is_some_and(|v| v != own.id) {
                return Err(ApiError::forbidden(
                    "a venue token gets its own venue's settlement only",
                ));
            }
            Some(own.id.clone())
        }
        Role::Operator | Role::Auditor => {
            if let Some(v) = &query.venue {
                if c.venue(v).is_none() {
                    return Err(ApiError::invalid(format!("venue: unknown venue {v:?}")));
                }
            }
            query.venue.clone()
        }
        _ => {
            caller.require(&[Role::Venue, Role::Operator, Role::Auditor])?;
            None
        }
    };
    if query.to < query.from {
        return Err(ApiError::invalid(format!(
            "to ({}) is before from ({})",
            query.to, query.from
        )));
    }
    if (query.to - query.from).num_days() > 366 {
        return Err(ApiError::invalid("a settlement covers at most 366 days"));
    }
    let tz = c.tz();
    let start_of = |d: NaiveDate| -> Result<DateTime<Utc>, ApiError> {
        d.and_time(NaiveTime::MIN)
            .and_local_timezone(tz)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| ApiError::invalid(format!("{d} has no midnight in {tz}")))
    };
    let from = start_of(query.from)?;
    let to = start_of(query.to + Duration::days(1))?;
    let list = state
        .store
        .redemptions_between(venue.as_deref(), from, to)
        .await?;
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
    // (venue, kind) → (net count, net face value)
    let mut totals: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut entry =
        |rows: &mut Vec<Vec<String>>, r: &RedemptionRecord, at: DateTime<Utc>, sign: i64| {
            let k = c.voucher_kind(&r.kind);
            let value = i64::from(k.and_then(|k| k.face_value_yuan).unwrap_or(0));
            let t = totals
                .entry((r.venue_id.clone(), r.kind.clone()))
                .or_default();
            t.0 += sign;
            t.1 += sign * value;
            rows.push(vec![
                r.venue_id.clone(),
                venue_name(c, &r.venue_id),
                if sign > 0 { "redeem" } else { "reverse" }.into(),
                c.local_rfc3339(at),
                r.kind.clone(),
                k.map(|k| k.name.clone()).unwrap_or_default(),
                display_code(&r.code),
                r.id.to_string(),
                sign.to_string(),
                (sign * value).to_string(),
            ]);
        };
    let mut events: Vec<(DateTime<Utc>, &RedemptionRecord, i64)> = Vec::new();
    for r in &list {
        if r.redeemed_at >= from && r.redeemed_at < to {
            events.push((r.redeemed_at, r, 1));
        }
        if let Some(at) = r.reversed_at.filter(|at| *at >= from && *at < to) {
            events.push((at, r, -1));
        }
    }
    events.sort_by_key(|(at, r, sign)| (*at, r.id, -sign));
    for (at, r, sign) in events {
        entry(&mut rows, r, at, sign);
    }
    for ((venue_id, kind), (count, value)) in totals {
        rows.push(vec![
            venue_id.clone(),
            venue_name(c, &venue_id),
            "total".into(),
            String::new(),
            kind.clone(),
            c.voucher_kind(&kind)
                .map(|k| k.name.clone())
                .unwrap_or_default(),
            String::new(),
            String::new(),
            count.to_string(),
            value.to_string(),
        ]);
    }
    let name = format!(
        "settlement-{}-{}-{}.csv",
        venue.as_deref().unwrap_or("all"),
        query.from,
        query.to
    );
    csv_response(&name, rows)
}
