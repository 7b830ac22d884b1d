//! The weekly draws: witnesses commit and reveal, operators freeze and draw, anyone reads a
//! round's state, its entries file and a ticket's inclusion proof. Whether a step may happen is
//! [`crate::domain::lifecycle`]'s to decide, inside the store's transaction for the step.

use super::auth::{Auditor, Operator, Witness};
use super::{internal, App, Result};
use crate::domain::audit::AuditEvent;
use crate::domain::campaign::RoundWindow;
use crate::domain::draw::beacon::{self, Given};
use crate::domain::draw::merkle::{Hash, Tree};
use crate::domain::draw::{leaf_hashes, seed::commitment};
use crate::domain::exclusion::{self, Reason};
use crate::domain::refusal::Refusal;
use crate::domain::risk::{self, Signal, TicketSigns};
use crate::domain::text;
use crate::store::{DrawRound, Exclusion, FreezeRound, RoundDrawState};
use std::sync::Arc;
use uuid::Uuid;

/// A round of the campaign, as configured and as recorded.
pub struct Round {
    pub window: RoundWindow,
    pub state: RoundDrawState,
}

fn window(app: &App, round: u32) -> Result<RoundWindow> {
    Ok(app
        .campaign
        .round(round)
        .cloned()
        .ok_or(Refusal::RoundNotFound { round })?)
}

/// What the database records of a round of this campaign.
pub async fn round(app: &App, round: u32) -> Result<Round> {
    let window = window(app, round)?;
    let state = app
        .store
        .round_draw_state(&app.campaign.id, round)
        .await?
        .ok_or(Refusal::RoundNotFound { round })?;
    Ok(Round { window, state })
}

fn hex32(input: &str, refusal: Refusal) -> std::result::Result<Hash, Refusal> {
    hex::decode(input.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(refusal)
}

/// A witness commits to a secret for the round, before the freeze, once.
pub async fn commit(app: &App, witness: &Witness, round: u32, commitment: &str) -> Result<Round> {
    window(app, round)?;
    let c = hex32(commitment, Refusal::InvalidCommitment)?;
    app.store
        .commit_witness(
            &app.campaign.id,
            round,
            witness.name(),
            &hex::encode(c),
            witness.actor(),
            app.clock.now(),
        )
        .await?;
    self::round(app, round).await
}

/// A witness reveals its secret after the freeze; one that does not match the commitment is
/// refused, and the refusal is on the record.
pub async fn reveal(app: &App, witness: &Witness, round: u32, secret: &str) -> Result<Round> {
    let secret = hex32(secret, Refusal::InvalidSecret)?;
    let current = self::round(app, round).await?;
    let name = witness.name();
    // The commitment never changes once made, so it is safe to check it before the write (which
    // checks the round's state again in its own transaction).
    if let Some(mine) = current.state.witnesses.iter().find(|w| w.name == name) {
        if hex::encode(commitment(&app.campaign.id, round, name, &secret)) != mine.commitment {
            app.store
                .append_audit(
                    AuditEvent::new(
                        witness.actor(),
                        "round.reveal_refused",
                        format!("round:{round}"),
                        serde_json::json!({"witness": name, "reason": "secret does not match the commitment"}),
                    ),
                    app.clock.now(),
                )
                .await?;
            return Err(Refusal::WrongSecret.into());
        }
    }
    app.store
        .reveal_secret(
            &app.campaign.id,
            round,
            name,
            &hex::encode(secret),
            witness.actor(),
            app.clock.now(),
        )
        .await?;
    self::round(app, round).await
}

/// Freezes a round's entries: after its window, once the previous round is drawn and enough
/// witnesses have committed. `beacon_source` says exactly which public value will be the beacon
/// (empty: none).
pub async fn freeze(app: &App, who: &Operator, round: u32, beacon_source: &str) -> Result<Round> {
    let c = &app.campaign;
    let w = window(app, round)?;
    let beacon_source = text::checked("beacon_source", beacon_source, 500, true)?;
    beacon::may_declare(
        &beacon_source,
        app.clock.now(),
        chrono::Duration::minutes(i64::from(c.beacon_margin_minutes)),
    )?;
    app.store
        .freeze_round(
            FreezeRound {
                campaign_id: c.id.clone(),
                round,
                closes_at: w.closes_at,
                closes_at_local: w
                    .closes_at
                    .with_timezone(&c.tz())
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                min_witnesses: c.min_witnesses,
                beacon_source,
                base_prizes: c.tiers.iter().map(|t| (t.name.clone(), t.count)).collect(),
                win_limit: c.win_limit,
            },
            who.actor(),
            app.clock.now(),
        )
        .await?;
    self::round(app, round).await
}

/// Draws a frozen round: winners and their vouchers in one transaction, once. `beacon` is what
/// the source declared at the freeze asks for: its value (free text), round N's signature
/// (`drand-quicknet:N`), or nothing.
pub async fn draw(app: &App, who: &Operator, round: u32, beacon: &Given) -> Result<Round> {
    let c = &app.campaign;
    window(app, round)?;
    let beacon = Given {
        value: text::checked("beacon", &beacon.value, 500, true)?,
        signature: text::checked("beacon_signature", &beacon.signature, 200, true)?,
    };
    app.store
        .draw_round(
            DrawRound {
                campaign_id: c.id.clone(),
                round,
                beacon,
                tier_kinds: c.tier_kinds(),
                win_limit: c.win_limit,
                reserves: c.reserves,
                claim_deadline: app.clock.now() + chrono::Duration::days(i64::from(c.claim_days)),
            },
            who.actor(),
            app.clock.now(),
        )
        .await?;
    // The record is kept now, as drawn (DESIGN §4d); if keeping fails, the first answer to
    // GET /api/rounds/{round} keeps it instead, from the same state.
    if let Err(e) = super::records::record_json(app, round).await {
        tracing::warn!(round, error = %e, "the drawn round's record was not kept yet");
    }
    self::round(app, round).await
}

/// A frozen round's entries and exclusions with their Merkle trees. They never change after the
/// freeze, and rebuilding them for every proof would cost about a second of CPU at a million
/// tickets, so a few are kept in memory.
pub struct Frozen {
    pub root: String,
    pub tickets: Vec<Uuid>,
    tree: Tree,
    pub exclusions: Vec<(Uuid, Reason)>,
    exclusion_tree: Tree,
}

/// The frozen rounds this process has served lately (a few; each is about 100 MB at 1 M tickets).
#[derive(Default)]
pub(super) struct FrozenCache(std::sync::Mutex<std::collections::HashMap<u32, Arc<Frozen>>>);

impl FrozenCache {
    const KEEP: usize = 3;

    fn get(&self, round: u32, root: &str) -> Option<Arc<Frozen>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&round).filter(|f| f.root == root).cloned()
    }

    fn put(&self, round: u32, frozen: Arc<Frozen>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::KEEP && !map.contains_key(&round) {
            map.clear();
        }
        map.insert(round, frozen);
    }
}

/// The entries and exclusions of a frozen round, in canonical order, with their trees.
pub async fn entries(app: &App, round: u32) -> Result<Arc<Frozen>> {
    let r = self::round(app, round).await?;
    let Some(root) = r.state.entries_root.filter(|_| r.state.frozen_at.is_some()) else {
        return Err(Refusal::RoundNotFrozen { round }.into());
    };
    if let Some(hit) = app.frozen.get(round, &root) {
        return Ok(hit);
    }
    let sorted = app
        .store
        .round_sorted_out(&app.campaign.id, round, app.campaign.win_limit)
        .await?;
    let tree = Tree::new(leaf_hashes(&sorted.entries));
    let exclusion_tree = Tree::new(exclusion::leaf_hashes(&sorted.exclusions));
    // A round frozen before exclusions were published has no root of them to match.
    let excluded_moved = r
        .state
        .exclusions_root
        .as_ref()
        .is_some_and(|x| *x != hex::encode(exclusion_tree.root()));
    if hex::encode(tree.root()) != root || excluded_moved {
        return Err(internal(format!(
            "the tickets of round {round} no longer match its frozen roots"
        )));
    }
    let frozen = Arc::new(Frozen {
        root,
        tickets: sorted.entries,
        tree,
        exclusions: sorted.exclusions,
        exclusion_tree,
    });
    app.frozen.put(round, frozen.clone());
    Ok(frozen)
}

/// The RFC 6962 audit path that proves a ticket is among a frozen round's entries, or among its
/// exclusions (with the reason).
pub struct Proof {
    pub ticket: Uuid,
    /// Why it is excluded; none for an entry.
    pub excluded: Option<Reason>,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub root: String,
    /// Nearest sibling first.
    pub path: Vec<Hash>,
}

pub async fn proof(app: &App, round: u32, ticket: &str) -> Result<Proof> {
    let not_in = || Refusal::NotAnEntry {
        round,
        ticket: ticket.to_owned(),
    };
    let id = Uuid::parse_str(ticket).map_err(|_| not_in())?;
    let frozen = entries(app, round).await?;
    if let Ok(index) = frozen.tickets.binary_search(&id) {
        return Ok(Proof {
            ticket: id,
            excluded: None,
            leaf_index: index as u64,
            tree_size: frozen.tickets.len() as u64,
            root: frozen.root.clone(),
            path: frozen.tree.audit_path(index),
        });
    }
    let index = frozen
        .exclusions
        .binary_search_by_key(&id, |(t, _)| *t)
        .map_err(|_| not_in())?;
    Ok(Proof {
        ticket: id,
        excluded: Some(frozen.exclusions[index].1),
        leaf_index: index as u64,
        tree_size: frozen.exclusions.len() as u64,
        root: hex::encode(frozen.exclusion_tree.root()),
        path: frozen.exclusion_tree.audit_path(index),
    })
}

/// Excludes tickets from a round before its freeze, with a reason code an operator may give
/// (not `won_earlier`, which the win limit decides) and a note saying why; each exclusion is
/// audited. The tickets newly excluded.
pub async fn exclude(
    app: &App,
    who: &Operator,
    round: u32,
    tickets: Vec<Uuid>,
    reason: &str,
    note: &str,
) -> Result<Vec<Uuid>> {
    window(app, round)?;
    let reason = Reason::parse(reason)
        .filter(|r| r.set_by_operator())
        .ok_or_else(|| {
            Refusal::field(
                "reason",
                "排除原因须是 virtual_number、shared_address、shared_device、too_fast、\
                 duplicate_person、staff 或 other",
            )
        })?;
    if tickets.is_empty() || tickets.len() > MAX_AT_ONCE {
        return Err(Refusal::field("tickets", "一次排除 1 到 1000 张奖券").into());
    }
    let note = text::checked("note", note, 500, false)?;
    Ok(app
        .store
        .exclude_tickets(
            &Exclusion {
                campaign_id: app.campaign.id.clone(),
                round,
                tickets,
                reason,
                note,
            },
            who.actor(),
            app.clock.now(),
        )
        .await?)
}

/// Tickets one request may exclude or take back.
const MAX_AT_ONCE: usize = 1000;

/// Takes excluded tickets back into a round before its freeze (a mistake undone), audited.
pub async fn restore(
    app: &App,
    who: &Operator,
    round: u32,
    tickets: Vec<Uuid>,
) -> Result<Vec<Uuid>> {
    window(app, round)?;
    if tickets.is_empty() || tickets.len() > MAX_AT_ONCE {
        return Err(Refusal::field("tickets", "一次恢复 1 到 1000 张奖券").into());
    }
    Ok(app
        .store
        .restore_tickets(
            &app.campaign.id,
            round,
            &tickets,
            who.actor(),
            app.clock.now(),
        )
        .await?)
}

/// A ticket under review: its facts, the signals on it, and any exclusion.
pub struct Reviewed {
    pub facts: crate::store::TicketFacts,
    pub signals: Vec<Signal>,
    /// From the attempt's start to its submission, per question (0 without questions).
    pub seconds_per_question: f64,
}

/// The review of a round's tickets before its freeze: every ticket with a signal or an
/// operator's exclusion, strongest first (most signals, then the largest group). Nothing is
/// excluded by it.
pub struct Review {
    pub round: u32,
    pub tickets_issued: u64,
    pub flagged: Vec<Reviewed>,
}

pub async fn review(app: &App, _who: &Auditor, round: u32) -> Result<Review> {
    window(app, round)?;
    let all = app.store.round_review(&app.campaign.id, round).await?;
    let tickets_issued = all.len() as u64;
    let mut flagged: Vec<Reviewed> = all
        .into_iter()
        .filter_map(|facts| {
            let seconds =
                (facts.submitted_at - facts.started_at).num_milliseconds() as f64 / 1000.0;
            let signals = risk::signals(
                &TicketSigns {
                    phone: &facts.phone,
                    seconds,
                    questions: facts.questions,
                    network: facts.network.as_deref(),
                    same_network: facts.same_network,
                    same_device: facts.same_device,
                    device_known: facts.device.is_some(),
                },
                &app.risk,
            );
            let seconds_per_question = if facts.questions == 0 {
                0.0
            } else {
                (seconds / f64::from(facts.questions) * 10.0).round() / 10.0
            };
            (!signals.is_empty() || facts.excluded.is_some()).then_some(Reviewed {
                facts,
                signals,
                seconds_per_question,
            })
        })
        .collect();
    flagged.sort_by(|a, b| {
        b.signals
            .len()
            .cmp(&a.signals.len())
            .then(
                b.facts
                    .same_network
                    .max(b.facts.same_device)
                    .cmp(&a.facts.same_network.max(a.facts.same_device)),
            )
            .then(a.facts.ticket.cmp(&b.facts.ticket))
    });
    Ok(Review {
        round,
        tickets_issued,
        flagged,
    })
}
