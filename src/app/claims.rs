//! Claims (DESIGN §4b, §5): a winner claims the prize on /me within the claim period, or
//! declines it; unclaimed past the deadline it is forfeited. A forfeited prize goes to the next
//! reserve of its round, published in the round's reallocations document.

use super::auth::Session;
use super::{App, Result};
use crate::domain::refusal::Refusal;
use crate::store::{Forfeit, PrizeState, Reallocation};

fn forfeit(app: &App) -> Forfeit {
    Forfeit::of(&app.campaign)
}

fn round_of(app: &App, round: u32) -> Result<()> {
    app.campaign
        .round(round)
        .map(|_| ())
        .ok_or_else(|| Refusal::RoundNotFound { round }.into())
}

fn actor(session: &Session) -> String {
    format!("participant:{}", session.participant().id)
}

/// Claims the participant's prize of a round; its vouchers become usable.
pub async fn claim(app: &App, session: &Session, round: u32) -> Result<PrizeState> {
    round_of(app, round)?;
    Ok(app
        .store
        .claim_prize(
            &app.campaign.id,
            round,
            session.participant().id,
            &actor(session),
            app.clock.now(),
        )
        .await?)
}

/// Declines the participant's prize of a round: it goes to the next reserve.
pub async fn decline(app: &App, session: &Session, round: u32) -> Result<Reallocation> {
    round_of(app, round)?;
    Ok(app
        .store
        .decline_prize(
            &forfeit(app),
            round,
            session.participant().id,
            &actor(session),
            app.clock.now(),
        )
        .await?)
}

/// Forfeits the prizes whose claim period has ended, each passed to the next reserve.
pub async fn forfeit_overdue(app: &App) -> Result<Vec<Reallocation>> {
    let done = app
        .store
        .forfeit_overdue(&forfeit(app), app.clock.now())
        .await?;
    for r in &done {
        tracing::info!(
            forfeited_rank = r.forfeited_rank,
            reserve_rank = ?r.reserve_rank,
            "an unclaimed prize was forfeited"
        );
    }
    Ok(done)
}

/// A round's reallocations document.
pub async fn reallocations(app: &App, round: u32) -> Result<Vec<Reallocation>> {
    round_of(app, round)?;
    Ok(app.store.reallocations(&app.campaign.id, round).await?)
}

/// What the campaign could not give, once its last round is drawn (None before).
pub async fn unawarded(app: &App) -> Result<Option<crate::domain::claim::Unawarded>> {
    let c = &app.campaign;
    let Some(last) = c.rounds.last().map(|r| r.number) else {
        return Ok(None);
    };
    let Some(state) = app.store.round_draw_state(&c.id, last).await? else {
        return Ok(None);
    };
    if state.drawn_at.is_none() {
        return Ok(None);
    }
    let mut awarded = std::collections::HashMap::new();
    for w in &state.winners {
        *awarded.entry(w.tier.clone()).or_insert(0) += 1;
    }
    let mut without_reserve = Vec::new();
    for r in &c.rounds {
        for line in app.store.reallocations(&c.id, r.number).await? {
            if line.reserve_rank.is_none() {
                without_reserve.push(line.tier);
            }
        }
    }
    Ok(Some(crate::domain::claim::unawarded(
        &state.prizes,
        &awarded,
        &without_reserve,
    )))
}
