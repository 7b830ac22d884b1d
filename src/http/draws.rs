//! The weekly draws: witnesses commit and reveal, operators freeze and draw, anyone reads the
//! record, the entries file and an inclusion proof.

use super::auth::Caller;
use super::body::Body;
use super::error::ApiError;
use super::{ok_json, AppState};
use crate::domain::audit::AuditEvent;
use crate::domain::draw::merkle::{Hash, Tree};
use crate::domain::draw::record::{
    entries_file, PrizeRecord, RoundRecord, WinnerRecord, WitnessRecord,
};
use crate::domain::draw::{leaf_hashes, seed::commitment, ALGORITHM};
use crate::domain::phone::mask;
use crate::domain::token::Role;
use crate::store::RoundDrawState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
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

fn round_of(
    state: &AppState,
    round: u32,
) -> Result<crate::domain::campaign::RoundWindow, ApiError> {
    state
        .campaign
        .round(round)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("the campaign has no round {round}")))
}

async fn draw_state(state: &AppState, round: u32) -> Result<RoundDrawState, ApiError> {
    round_of(state, round)?;
    state
        .store
        .round_draw_state(&state.campaign.id, round)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("round {round} is not recorded")))
}

fn hex32(input: &str, code: &'static str, what: &str) -> Result<Hash, ApiError> {
    hex::decode(input.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                format!("{what} must be 64 hex digits (32 bytes)"),
            )
        })
}

/// The round record: DESIGN §4's published JSON, plus the round's state and times.
#[derive(Serialize, ToSchema)]
pub struct RoundRecordView {
    #[serde(flatten)]
    record: RoundRecord,
    state: crate::domain::campaign::RoundState,
    /// Local time the entry window opened and closed.
    opens_at: String,
    closes_at: String,
    frozen_at: Option<String>,
    drawn_at: Option<String>,
}

/// The round's record (no authentication): complete once drawn, the fields known so far before.
#[utoipa::path(get, path = "/api/rounds/{round}", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, body = RoundRecordView), (status = 404, body = super::error::ErrorBody)))]
pub async fn record(
    state: web::Data<AppState>,
    round: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let round = round.into_inner();
    let window = round_of(&state, round)?;
    let s = draw_state(&state, round).await?;
    let c = &state.campaign;
    let prizes = if s.prizes.is_empty() {
        // Before the freeze: the round's own prizes (rollover is added at the freeze).
        c.tiers.iter().map(|t| (t.name.clone(), t.count)).collect()
    } else {
        s.prizes.clone()
    };
    let drawn = s.drawn_at.is_some();
    let view = RoundRecordView {
        record: RoundRecord {
            algorithm: ALGORITHM.into(),
            campaign_id: c.id.clone(),
            round,
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
            beacon: if drawn {
                Some(s.beacon.clone().unwrap_or_default())
            } else {
                None
            },
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
        state: crate::domain::campaign::round_state(&window, s.progress, state.clock.now()),
        opens_at: c.local_rfc3339(window.opens_at),
        closes_at: c.local_rfc3339(window.closes_at),
        frozen_at: s.frozen_at.map(|t| c.local_rfc3339(t)),
        drawn_at: s.drawn_at.map(|t| c.local_rfc3339(t)),
    };
    Ok(ok_json(&view))
}

/// A frozen round's entries and Merkle tree, kept in memory: they never change after the freeze,
/// and rebuilding them for every proof would cost about a second of CPU at a million tickets.
pub struct FrozenRound {
    root: String,
    tickets: Vec<Uuid>,
    tree: Tree,
}

/// The frozen rounds this process has served lately (a few; each is about 100 MB at 1 M tickets).
#[derive(Default)]
pub struct FrozenCache(std::sync::Mutex<std::collections::HashMap<u32, Arc<FrozenRound>>>);

impl FrozenCache {
    const KEEP: usize = 3;

    fn get(&self, round: u32, root: &str) -> Option<Arc<FrozenRound>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&round).filter(|f| f.root == root).cloned()
    }

    fn put(&self, round: u32, frozen: Arc<FrozenRound>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::KEEP && !map.contains_key(&round) {
            map.clear();
        }
        map.insert(round, frozen);
    }
}

async fn frozen_round(state: &AppState, round: u32) -> Result<Arc<FrozenRound>, ApiError> {
    let s = draw_state(state, round).await?;
    let Some(root) = s.entries_root.filter(|_| s.frozen_at.is_some()) else {
        return Err(ApiError::conflict(format!(
            "round {round} is not frozen yet: its entries are published at the freeze"
        )));
    };
    if let Some(hit) = state.frozen.get(round, &root) {
        return Ok(hit);
    }
    let tickets = state
        .store
        .round_entries(&state.campaign.id, round, state.campaign.win_limit)
        .await?;
    let tree = Tree::new(leaf_hashes(&tickets));
    if hex::encode(tree.root()) != root {
        return Err(ApiError::internal(anyhow::anyhow!(
            "the entries of round {round} no longer match its frozen root"
        )));
    }
    let frozen = Arc::new(FrozenRound {
        root,
        tickets,
        tree,
    });
    state.frozen.put(round, frozen.clone());
    Ok(frozen)
}

/// The entries file: the frozen tickets, one lowercase UUID per line, canonical order.
#[utoipa::path(get, path = "/api/rounds/{round}/entries", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, content_type = "text/plain"), (status = 409, body = super::error::ErrorBody)))]
pub async fn entries(
    state: web::Data<AppState>,
    round: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let frozen = frozen_round(&state, round.into_inner()).await?;
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
    responses((status = 200, body = InclusionProof), (status = 404, body = super::error::ErrorBody)))]
pub async fn proof(
    state: web::Data<AppState>,
    path: web::Path<(u32, String)>,
) -> Result<HttpResponse, ApiError> {
    let (round, ticket) = path.into_inner();
    let not_in = || {
        ApiError::not_found(format!(
            "{ticket} is not among the entries of round {round}"
        ))
    };
    let ticket = Uuid::parse_str(&ticket).map_err(|_| not_in())?;
    let frozen = frozen_round(&state, round).await?;
    let index = frozen
        .tickets
        .binary_search(&ticket)
        .map_err(|_| not_in())?;
    Ok(ok_json(&InclusionProof {
        ticket,
        leaf_index: index as u64,
        tree_size: frozen.tickets.len() as u64,
        root: frozen.root.clone(),
        path: frozen
            .tree
            .audit_path(index)
            .iter()
            .map(hex::encode)
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// Hex SHA-256 commitment to the witness's secret (see docs/draw-algorithm.md).
    commitment: String,
}

#[derive(Serialize, ToSchema)]
pub struct Done {
    round: u32,
    state: crate::domain::campaign::RoundState,
    message: String,
}

async fn done(state: &AppState, round: u32, message: String) -> Result<HttpResponse, ApiError> {
    let s = draw_state(state, round).await?;
    let window = round_of(state, round)?;
    Ok(ok_json(&Done {
        round,
        state: crate::domain::campaign::round_state(&window, s.progress, state.clock.now()),
        message,
    }))
}

/// A witness commits to a secret for the round (before the freeze, once). The witness is named by
/// its token's name.
#[utoipa::path(post, path = "/api/rounds/{round}/commitments", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = Commitment,
    responses((status = 200, body = Done), (status = 409, body = super::error::ErrorBody)))]
pub async fn commit(
    state: web::Data<AppState>,
    caller: Caller,
    round: web::Path<u32>,
    Body(body): Body<Commitment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Witness])?;
    let round = round.into_inner();
    round_of(&state, round)?;
    let c = hex32(&body.commitment, "invalid_commitment", "the commitment")?;
    state
        .store
        .commit_witness(
            &state.campaign.id,
            round,
            &caller.token.name,
            &hex::encode(c),
            &caller.actor(),
            state.clock.now(),
        )
        .await?;
    done(
        &state,
        round,
        format!("{} committed to round {round}", caller.token.name),
    )
    .await
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
    responses((status = 200, body = Done), (status = 409, body = super::error::ErrorBody),
    (status = 422, body = super::error::ErrorBody)))]
pub async fn reveal(
    state: web::Data<AppState>,
    caller: Caller,
    round: web::Path<u32>,
    Body(body): Body<Secret>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Witness])?;
    let round = round.into_inner();
    let secret = hex32(&body.secret, "invalid_secret", "the secret")?;
    let s = draw_state(&state, round).await?;
    let name = &caller.token.name;
    let mine = s
        .witnesses
        .iter()
        .find(|w| &w.name == name)
        .ok_or_else(|| ApiError::conflict(format!("{name} has not committed to round {round}")))?;
    let expected = commitment(&state.campaign.id, round, name, &secret);
    if hex::encode(expected) != mine.commitment {
        // Refused, and on the record.
        state
            .store
            .append_audit(
                AuditEvent::new(
                    caller.actor(),
                    "round.reveal_refused",
                    format!("round:{round}"),
                    serde_json::json!({"witness": name, "reason": "secret does not match the commitment"}),
                ),
                state.clock.now(),
            )
            .await?;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_secret",
            "this secret does not match your commitment",
        ));
    }
    state
        .store
        .reveal_secret(
            &state.campaign.id,
            round,
            name,
            &hex::encode(secret),
            &caller.actor(),
            state.clock.now(),
        )
        .await?;
    done(
        &state,
        round,
        format!("{name} revealed its secret for round {round}"),
    )
    .await
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
    responses((status = 200, body = Done), (status = 409, body = super::error::ErrorBody)))]
pub async fn freeze(
    state: web::Data<AppState>,
    caller: Caller,
    round: web::Path<u32>,
    Body(body): Body<FreezeBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    let round = round.into_inner();
    crate::draws::freeze(
        state.store.as_ref(),
        &state.campaign,
        state.clock.now(),
        round,
        &body.beacon_source,
        &caller.actor(),
    )
    .await?;
    done(&state, round, format!("round {round} is frozen")).await
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
    responses((status = 200, body = Done), (status = 409, body = super::error::ErrorBody),
    (status = 422, body = super::error::ErrorBody)))]
pub async fn draw(
    state: web::Data<AppState>,
    caller: Caller,
    round: web::Path<u32>,
    Body(body): Body<DrawBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Operator])?;
    let round = round.into_inner();
    crate::draws::draw(
        state.store.as_ref(),
        &state.campaign,
        state.clock.now(),
        round,
        &body.beacon,
        &caller.actor(),
    )
    .await?;
    done(&state, round, format!("round {round} is drawn")).await
}

impl From<crate::draws::DrawError> for ApiError {
    fn from(e: crate::draws::DrawError) -> Self {
        use crate::draws::DrawError;
        match e {
            DrawError::NotFound(m) => ApiError::not_found(m),
            DrawError::Conflict(m) => ApiError::conflict(m),
            DrawError::Invalid { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            DrawError::Store(e) => e.into(),
        }
    }
}
