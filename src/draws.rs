//! Freezing and drawing a round, shared by the API and the CLI: the checks that need the
//! campaign's configuration and the clock, then the store's atomic step.

use crate::domain::campaign::Campaign;
use crate::store::{DrawRound, FreezeRound, Store, StoreError};
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum DrawError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn window(c: &Campaign, round: u32) -> Result<&crate::domain::campaign::RoundWindow, DrawError> {
    c.round(round)
        .ok_or_else(|| DrawError::NotFound(format!("the campaign has no round {round}")))
}

/// Freezes a round's entries once its window has closed.
pub async fn freeze(
    store: &dyn Store,
    c: &Campaign,
    now: DateTime<Utc>,
    round: u32,
    beacon_source: &str,
    actor: &str,
) -> Result<(), DrawError> {
    let w = window(c, round)?;
    if now < w.closes_at {
        return Err(DrawError::Conflict(format!(
            "entries to round {round} are open until {}; it can be frozen after that",
            c.local_rfc3339(w.closes_at)
        )));
    }
    let beacon_source = beacon_source.trim();
    if beacon_source.chars().count() > 500 {
        return Err(DrawError::Invalid {
            code: "invalid_field",
            message: "beacon_source has at most 500 characters".into(),
        });
    }
    store
        .freeze_round(
            FreezeRound {
                campaign_id: c.id.clone(),
                round,
                min_witnesses: c.min_witnesses,
                beacon_source: beacon_source.to_owned(),
                base_prizes: c.tiers.iter().map(|t| (t.name.clone(), t.count)).collect(),
                win_limit: c.win_limit,
            },
            actor,
            now,
        )
        .await?;
    Ok(())
}

/// Draws a frozen round; `beacon` must be given exactly when a source was declared at the freeze.
pub async fn draw(
    store: &dyn Store,
    c: &Campaign,
    now: DateTime<Utc>,
    round: u32,
    beacon: &str,
    actor: &str,
) -> Result<(), DrawError> {
    window(c, round)?;
    let state = store
        .round_draw_state(&c.id, round)
        .await?
        .ok_or_else(|| DrawError::NotFound(format!("round {round} is not recorded")))?;
    let declared = state.beacon_source.unwrap_or_default();
    let beacon = beacon.trim();
    if declared.is_empty() && !beacon.is_empty() {
        return Err(DrawError::Invalid {
            code: "unexpected_beacon",
            message: format!(
                "round {round} was frozen without a beacon source; draw it without a beacon"
            ),
        });
    }
    if !declared.is_empty() && beacon.is_empty() {
        return Err(DrawError::Invalid {
            code: "beacon_required",
            message: format!(
                "round {round} was frozen with the beacon source {declared:?}: give its value"
            ),
        });
    }
    store
        .draw_round(
            DrawRound {
                campaign_id: c.id.clone(),
                round,
                beacon: beacon.to_owned(),
                tier_kinds: c
                    .tiers
                    .iter()
                    .map(|t| (t.name.clone(), t.voucher_kinds.clone()))
                    .collect(),
                win_limit: c.win_limit,
            },
            actor,
            now,
        )
        .await?;
    Ok(())
}
