//! What anyone may read: health, metrics, the campaign.

use super::error::ApiError;
use super::ok_json;
use crate::app::{health, App};
use crate::domain::campaign::{
    round_state, Campaign, CampaignTotals, Category, QuizRules, RedemptionPolicy, RoundProgress,
    RoundState,
};
use crate::domain::refusal::Refusal;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").get(healthz))
        .service(web::resource("/readyz").get(readyz))
        .service(web::resource("/metrics").get(metrics))
        .service(web::resource("/api/campaign").get(campaign));
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "public", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    ok_json(&Health { status: "ok" })
}

/// The process can read from and write to its database: with the database unreachable, or its
/// disk full, the instance is taken out of the load balancer's rotation (503 `not_ready` or
/// `storage_full`, with `Retry-After`). A change either way is logged once.
#[utoipa::path(get, path = "/readyz", tag = "public", responses(
    (status = 200, body = Health),
    (status = 503, body = super::error::ErrorBody, description = "`not_ready` or `storage_full`"),
))]
pub async fn readyz(app: web::Data<App>) -> HttpResponse {
    match health::ready(&app).await {
        Ok(()) => {
            if app.health.note_ready(true) {
                tracing::info!("ready again: the database answers and takes writes");
            }
            ok_json(&Health { status: "ready" })
        }
        Err(e) => {
            let cause = e.to_string();
            let refusal = ApiError::from(e).refusal();
            let refusal = refusal.unwrap_or(Refusal::Unavailable);
            if app.health.note_ready(false) {
                tracing::warn!(error = cause, code = refusal.code(), "not ready");
            }
            let mut res = HttpResponse::ServiceUnavailable();
            if let Some(seconds) = refusal.retry_after() {
                res.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            res.content_type("application/json")
                .body(super::error::body(&refusal))
        }
    }
}

/// Prometheus text format: `http_requests_total` and `http_request_duration_seconds` by method,
/// route and status.
#[utoipa::path(get, path = "/metrics", tag = "public", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    id: String,
    name: String,
    time_zone: String,
    /// The service's current time, local.
    now: String,
    win_limit: u32,
    min_witnesses: u32,
    quiz: QuizRules,
    /// The round whose entry window is open now, if any.
    current_round: Option<u32>,
    /// The next round to open, if any.
    next_round: Option<u32>,
    rounds: Vec<RoundView>,
    tiers: Vec<TierView>,
    winners_per_round: u64,
    totals: CampaignTotals,
    voucher_kinds: Vec<VoucherKindView>,
    venues: Vec<VenueView>,
    /// Once the last round is drawn: what could not be given, by tier (the last round's
    /// rollover left, forfeited prizes with no reserve left); null before.
    unawarded: Option<UnawardedView>,
}

#[derive(Serialize, ToSchema)]
pub struct UnawardedView {
    rollover_left: std::collections::BTreeMap<String, u32>,
    forfeited: std::collections::BTreeMap<String, u32>,
    total: u32,
}

#[derive(Serialize, ToSchema)]
pub struct RoundView {
    number: u32,
    /// Local time, RFC 3339.
    opens_at: String,
    /// Local time, RFC 3339; entries close at this instant.
    closes_at: String,
    state: RoundState,
}

#[derive(Serialize, ToSchema)]
pub struct TierView {
    name: String,
    label: String,
    /// Winners of this tier in each round.
    count: u32,
    voucher_kinds: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VoucherKindView {
    code: String,
    name: String,
    category: Category,
    policy: RedemptionPolicy,
    /// Local time, RFC 3339.
    valid_from: String,
    /// Local time, RFC 3339; the voucher is no longer valid from this instant.
    valid_until: String,
    face_value_yuan: Option<u32>,
    /// Redeeming asks for the holder code shown on the holder's phone (6 digits, every 30 s).
    holder_check: bool,
}

#[derive(Serialize, ToSchema)]
pub struct VenueView {
    id: String,
    name: String,
    category: Category,
    /// A placeholder, not a real partner.
    example: bool,
}

pub fn campaign_view(
    c: &Campaign,
    progress: &[(u32, RoundProgress)],
    now: chrono::DateTime<chrono::Utc>,
) -> CampaignView {
    let recorded: HashMap<u32, RoundProgress> = progress.iter().copied().collect();
    let rounds: Vec<RoundView> = c
        .rounds
        .iter()
        .map(|r| RoundView {
            number: r.number,
            opens_at: c.local_rfc3339(r.opens_at),
            closes_at: c.local_rfc3339(r.closes_at),
            state: round_state(
                r,
                recorded
                    .get(&r.number)
                    .copied()
                    .unwrap_or(RoundProgress::Pending),
                now,
            ),
        })
        .collect();
    CampaignView {
        id: c.id.clone(),
        name: c.name.clone(),
        time_zone: c.time_zone.clone(),
        now: c.local_rfc3339(now),
        win_limit: c.win_limit,
        min_witnesses: c.min_witnesses,
        quiz: c.quiz,
        current_round: rounds
            .iter()
            .find(|r| r.state == RoundState::Open)
            .map(|r| r.number),
        next_round: c.rounds.iter().find(|r| r.opens_at > now).map(|r| r.number),
        rounds,
        tiers: c
            .tiers
            .iter()
            .map(|t| TierView {
                name: t.name.clone(),
                label: t.label.clone(),
                count: t.count,
                voucher_kinds: t.voucher_kinds.clone(),
            })
            .collect(),
        winners_per_round: c.winners_per_round(),
        totals: c.totals(),
        voucher_kinds: c
            .voucher_kinds
            .iter()
            .map(|k| VoucherKindView {
                code: k.code.clone(),
                name: k.name.clone(),
                category: k.category,
                policy: k.policy,
                valid_from: c.local_rfc3339(k.valid_from),
                valid_until: c.local_rfc3339(k.valid_until),
                face_value_yuan: k.face_value_yuan,
                holder_check: k.holder_check,
            })
            .collect(),
        venues: c
            .venues
            .iter()
            .map(|v| VenueView {
                id: v.id.clone(),
                name: v.name.clone(),
                category: v.category,
                example: v.example,
            })
            .collect(),
        unawarded: None,
    }
}

/// The campaign: rounds with their windows and states, prize tiers and totals, voucher kinds and
/// venues. Times are local to the campaign.
#[utoipa::path(get, path = "/api/campaign", tag = "public", responses((status = 200, body = CampaignView)))]
pub async fn campaign(app: web::Data<App>) -> Result<HttpResponse, ApiError> {
    let progress = app.store.round_progress(&app.campaign.id).await?;
    let mut view = campaign_view(&app.campaign, &progress, app.clock.now());
    view.unawarded = crate::app::claims::unawarded(&app)
        .await?
        .map(|u| UnawardedView {
            rollover_left: u.rollover_left,
            forfeited: u.forfeited,
            total: u.total,
        });
    Ok(ok_json(&view))
}
