//! The weekly draws: witnesses commit and reveal, operators freeze and draw, anyone reads the
//! record, the entries file and an inclusion proof.

use super::body::Body;
use super::docs::{BodyRefusals, StaffRefusals};
use super::error::{ApiError, ErrorBody};
use super::ok_json;
use crate::app::auth::{Operator, Witness};
use crate::app::rounds::{self, Round};
use crate::app::App;
use crate::domain::campaign::{round_state, RoundState};
use crate::domain::draw::record::{
    entries_file, PrizeRecord, RoundRecord, WinnerRecord, WitnessRecord,
};
use crate::domain::draw::ALGORITHM;
use crate::domain::phone::mask;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/rounds/{round}").get(record))
        .service(web::resource("/api/rounds/{round}/entries").get(entries))
        .service(web::resource("/api/rounds/{round}/proof/{ticket}").get(proof))
        .service(web::resource("/api/rounds/{round}/commitments").post(commit))
        .service(web::resource("/api/rounds/{round}/reveal").post(reveal))
        .service(web::resource("/api/rounds/{round}/freeze").post(freeze))
        .service(web::resource("/api/rounds/{round}/draw").post(draw));
}

/// The round record: DESIGN §4's published JSON, plus the round's state and times.
#[derive(Serialize, ToSchema)]
pub struct RoundRecordView {
    #[serde(flatten)]
    record: RoundRecord,
    state: RoundState,
    /// Local time the entry window opened and closed.
    opens_at: String,
    closes_at: String,
    frozen_at: Option<String>,
    drawn_at: Option<String>,
}

fn record_view(app: &App, r: &Round) -> RoundRecordView {
    let c = &app.campaign;
    let s = &r.state;
    let prizes = if s.prizes.is_empty() {
        // Before the freeze: the round's own prizes (rollover is added at the freeze).
        c.tiers.iter().map(|t| (t.name.clone(), t.count)).collect()
    } else {
        s.prizes.clone()
    };
    let drawn = s.drawn_at.is_some();
    RoundRecordView {
        record: RoundRecord {
            algorithm: ALGORITHM.into(),
            campaign_id: c.id.clone(),
            round: r.window.number,
            entry_count: s.entry_count,
            entries_root: s.entries_root.clone(),
            witnesses: s
                .witnesses
                .iter()
                .map(|w| WitnessRecord {
                    name: w.name.clone(),
                    commitment: w.commitment.clone(),
                    secret: w.secret.clone(),
                })
                .collect(),
            beacon_source: s.beacon_source.clone(),
            beacon: drawn.then(|| s.beacon.clone().unwrap_or_default()),
            seed: s.seed.clone(),
            prizes: prizes
                .into_iter()
                .map(|(tier, count)| PrizeRecord { tier, count })
                .collect(),
            winners: s
                .winners
                .iter()
                .map(|w| WinnerRecord {
                    rank: w.rank,
                    ticket: w.ticket,
                    tier: w.tier.clone(),
                    phone: Some(mask(&w.phone)),
                })
                .collect(),
        },
        state: round_state(&r.window, s.progress, app.clock.now()),
        opens_at: c.local_rfc3339(r.window.opens_at),
        closes_at: c.local_rfc3339(r.window.closes_at),
        frozen_at: s.frozen_at.map(|t| c.local_rfc3339(t)),
        drawn_at: s.drawn_at.map(|t| c.local_rfc3339(t)),
    }
}

/// The round's record (no authentication): complete once drawn, the fields known so far before.
#[utoipa::path(get, path = "/api/rounds/{round}", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, body = RoundRecordView),
    (status = 404, body = ErrorBody, description = "`round_not_found`")))]
pub async fn record(app: web::Data<App>, round: web::Path<u32>) -> Result<HttpResponse, ApiError> {
    let r = rounds::round(&app, round.into_inner()).await?;
    Ok(ok_json(&record_view(&app, &r)))
}

/// The entries file: the frozen tickets, one lowercase UUID per line, canonical order.
#[utoipa::path(get, path = "/api/rounds/{round}/entries", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, content_type = "text/plain"),
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`")))]
pub async fn entries(app: web::Data<App>, round: web::Path<u32>) -> Result<HttpResponse, ApiError> {
    let frozen = rounds::entries(&app, round.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(entries_file(&frozen.tickets)))
}

#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    ticket: Uuid,
    leaf_index: u64,
    tree_size: u64,
    /// Hex.
    root: String,
    /// RFC 6962 audit path, hex, nearest sibling first.
    path: Vec<String>,
}

/// The RFC 6962 audit path that proves a ticket is among the frozen entries.
#[utoipa::path(get, path = "/api/rounds/{round}/proof/{ticket}", tag = "draws",
    params(("round" = u32, Path), ("ticket" = Uuid, Path)),
    responses((status = 200, body = InclusionProof),
    (status = 404, body = ErrorBody, description = "`round_not_found`, `not_an_entry`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`")))]
pub async fn proof(
    app: web::Data<App>,
    path: web::Path<(u32, String)>,
) -> Result<HttpResponse, ApiError> {
    let (round, ticket) = path.into_inner();
    let p = rounds::proof(&app, round, &ticket).await?;
    Ok(ok_json(&InclusionProof {
        ticket: p.ticket,
        leaf_index: p.leaf_index,
        tree_size: p.tree_size,
        root: p.root,
        path: p.path.iter().map(hex::encode).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// Hex SHA-256 commitment to the witness's secret (see docs/draw-algorithm.md).
    commitment: String,
}

/// A step of a round done.
#[derive(Serialize, ToSchema)]
pub struct Done {
    round: u32,
    state: RoundState,
    /// For people, in Chinese.
    message: String,
}

fn done(app: &App, r: &Round, message: String) -> HttpResponse {
    ok_json(&Done {
        round: r.window.number,
        state: round_state(&r.window, r.state.progress, app.clock.now()),
        message,
    })
}

/// A witness commits to a secret for the round (before the freeze, once). The witness is named by
/// its token's name.
#[utoipa::path(post, path = "/api/rounds/{round}/commitments", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = Commitment,
    responses((status = 200, body = Done), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`already_committed`, `already_frozen`, `already_drawn`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_commitment`")))]
pub async fn commit(
    app: web::Data<App>,
    witness: Witness,
    round: web::Path<u32>,
    Body(body): Body<Commitment>,
) -> Result<HttpResponse, ApiError> {
    let r = rounds::commit(&app, &witness, round.into_inner(), &body.commitment).await?;
    let message = format!("{} 已对第 {} 期提交承诺", witness.name(), r.window.number);
    Ok(done(&app, &r, message))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// The 32-byte secret, hex.
    secret: String,
}

/// A witness reveals its secret after the freeze; it must match the commitment.
#[utoipa::path(post, path = "/api/rounds/{round}/reveal", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = Secret,
    responses((status = 200, body = Done), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`, `already_drawn`, `not_committed`, `already_revealed`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_secret`, `wrong_secret`")))]
pub async fn reveal(
    app: web::Data<App>,
    witness: Witness,
    round: web::Path<u32>,
    Body(body): Body<Secret>,
) -> Result<HttpResponse, ApiError> {
    let r = rounds::reveal(&app, &witness, round.into_inner(), &body.secret).await?;
    let message = format!("{} 已公布第 {} 期的密钥", witness.name(), r.window.number);
    Ok(done(&app, &r, message))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct FreezeBody {
    /// Exactly which public value will be the beacon (e.g. "drand quicknet round 1234567"); empty
    /// or absent: no beacon.
    #[serde(default)]
    beacon_source: String,
}

/// Freezes the round's entries: after the entry window, once the previous round is drawn and
/// enough witnesses have committed.
#[utoipa::path(post, path = "/api/rounds/{round}/freeze", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = FreezeBody,
    responses((status = 200, body = Done), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_closed`, `previous_round_not_drawn`, `not_enough_commitments`, `already_frozen`, `already_drawn`"),
    (status = 422, body = ErrorBody, description = "`invalid_field` (`beacon_source`)")))]
pub async fn freeze(
    app: web::Data<App>,
    operator: Operator,
    round: web::Path<u32>,
    Body(body): Body<FreezeBody>,
) -> Result<HttpResponse, ApiError> {
    let r = rounds::freeze(&app, &operator, round.into_inner(), &body.beacon_source).await?;
    let message = format!("第 {} 期已封存", r.window.number);
    Ok(done(&app, &r, message))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DrawBody {
    /// The value of the beacon declared at the freeze.
    #[serde(default)]
    beacon: String,
}

/// Draws the round: winners and their vouchers, in one transaction, once.
#[utoipa::path(post, path = "/api/rounds/{round}/draw", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = DrawBody,
    responses((status = 200, body = Done), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`, `reveals_missing`, `already_drawn`"),
    (status = 422, body = ErrorBody, description = "`invalid_field` (`beacon`), `unexpected_beacon`, `beacon_required`")))]
pub async fn draw(
    app: web::Data<App>,
    operator: Operator,
    round: web::Path<u32>,
    Body(body): Body<DrawBody>,
) -> Result<HttpResponse, ApiError> {
    let r = rounds::draw(&app, &operator, round.into_inner(), &body.beacon).await?;
    let message = format!("第 {} 期已开奖", r.window.number);
    Ok(done(&app, &r, message))
}
