//! The published round record (DESIGN §4, §4d): assembled from the round's state while it runs;
//! once drawn, the exact bytes kept when it was drawn, so that it never changes and the next
//! round's record can link to it by their SHA-256.

use super::rounds::{self, Round};
use super::{App, Result};
use crate::domain::campaign::{round_state, RoundProgress, RoundState};
use crate::domain::draw::record::{
    instant, AuditHead, PrizeRecord, ReserveRecord, RoundRecord, WinnerRecord, WitnessRecord,
};
use crate::domain::draw::ALGORITHM;
use crate::domain::phone::mask;
use crate::domain::refusal::Refusal;
use crate::store::{KeptRecord, RecordSignature};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The round record: DESIGN §4's published JSON, plus the round's state and times.
#[derive(Serialize, ToSchema)]
pub struct RoundRecordView {
    #[serde(flatten)]
    record: RoundRecord,
    state: RoundState,
    /// Local time the entry window opened and closed.
    opens_at: String,
    closes_at: String,
    /// Local times of the freeze and the draw (the record has them in UTC).
    frozen_at_local: Option<String>,
    drawn_at_local: Option<String>,
}

fn record_view(app: &App, r: &Round, previous: Option<String>) -> RoundRecordView {
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
            previous_record_sha256: previous,
            campaign_id: c.id.clone(),
            round: r.window.number,
            entry_count: s.entry_count,
            entries_root: s.entries_root.clone(),
            tickets_issued: s.tickets_issued,
            exclusion_count: s.exclusion_count,
            exclusions_root: s.exclusions_root.clone(),
            exclusions_by_reason: s.exclusions_by_reason.clone(),
            witnesses: s
                .witnesses
                .iter()
                .map(|w| WitnessRecord {
                    name: w.name.clone(),
                    commitment: w.commitment.clone(),
                    secret: w.secret.clone(),
                    committed_at: Some(instant(w.committed_at)),
                    revealed_at: w.revealed_at.map(instant),
                })
                .collect(),
            frozen_at: s.frozen_at.map(instant),
            audit_head_at_freeze: s
                .audit_at_freeze
                .clone()
                .map(|(seq, hash)| AuditHead { seq, hash }),
            audit_head_at_draw: s
                .audit_at_draw
                .clone()
                .map(|(seq, hash)| AuditHead { seq, hash }),
            drawn_at: s.drawn_at.map(instant),
            beacon_source: s.beacon_source.clone(),
            beacon: drawn.then(|| s.beacon.clone().unwrap_or_default()),
            beacon_signature: s.beacon_signature.clone(),
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
            reserves: s
                .reserves
                .iter()
                .map(|r| ReserveRecord {
                    rank: r.rank,
                    ticket: r.ticket,
                })
                .collect(),
        },
        state: round_state(&r.window, s.progress, app.clock.now()),
        opens_at: c.local_rfc3339(r.window.opens_at),
        closes_at: c.local_rfc3339(r.window.closes_at),
        frozen_at_local: s.frozen_at.map(|t| c.local_rfc3339(t)),
        drawn_at_local: s.drawn_at.map(|t| c.local_rfc3339(t)),
    }
}

/// The record of `round` as served (JSON).
pub async fn record_json(app: &App, round: u32) -> Result<String> {
    Ok(record(app, round).await?.json)
}

/// The service's signature on a drawn round's record (`GET /api/rounds/{round}/record.sig`).
pub async fn signature(app: &App, round: u32) -> Result<RecordSignature> {
    record(app, round)
        .await?
        .signature
        .ok_or_else(|| Refusal::RoundNotDrawn { round }.into())
}

/// The record of `round` as served and, once drawn, its signature. A drawn round's is kept,
/// byte for byte and signed, the first time it is made (at the draw); every later answer is
/// those bytes. Rounds drawn before records were kept (migration 0018) get theirs kept the first
/// time they are served; records kept before they were signed (0019), signed then.
pub async fn record(app: &App, round: u32) -> Result<KeptRecord> {
    let c = &app.campaign;
    let r = rounds::round(app, round).await?;
    let drawn = r.state.progress == RoundProgress::Drawn;
    if drawn {
        if let Some(kept) = app.store.kept_record(&c.id, round).await? {
            if kept.signature.is_some() {
                return Ok(kept);
            }
            let signature = super::keys::sign(app, kept.json.as_bytes()).await?;
            return Ok(app.store.sign_kept_record(&c.id, round, &signature).await?);
        }
    }
    let previous = previous_record_sha256(app, round).await?;
    let json = serde_json::to_string(&record_view(app, &r, previous))
        .map_err(|e| super::internal(format!("round record: {e}")))?;
    if !drawn {
        return Ok(KeptRecord {
            json,
            signature: None,
        });
    }
    let signature = Some(super::keys::sign(app, json.as_bytes()).await?);
    Ok(app
        .store
        .keep_record(&c.id, round, &KeptRecord { json, signature })
        .await?)
}

/// SHA-256 of round r−1's record as served once drawn; 64 zeros for round 1; none while r−1 is
/// not drawn.
async fn previous_record_sha256(app: &App, round: u32) -> Result<Option<String>> {
    if round <= 1 {
        return Ok(Some("0".repeat(64)));
    }
    let previous = rounds::round(app, round - 1).await?;
    if previous.state.progress != RoundProgress::Drawn {
        return Ok(None);
    }
    let bytes = Box::pin(record_json(app, round - 1)).await?;
    Ok(Some(hex::encode(Sha256::digest(bytes.as_bytes()))))
}
