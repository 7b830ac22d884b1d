//! What each change writes to the audit log: one event per change, in the change's own
//! transaction. Codes, secrets before their reveal and tokens never appear here; the log is read
//! by auditors.

use super::{RedemptionRecord, SyncOutcome, TokenRecord, VoucherRecord};
use crate::domain::audit::AuditEvent;
use crate::domain::campaign::Campaign;
use uuid::Uuid;

pub(super) fn sync_event(campaign: &Campaign, outcome: SyncOutcome) -> AuditEvent {
    AuditEvent::new(
        "system",
        "campaign.sync",
        format!("campaign:{}", campaign.id),
        serde_json::json!({
            "outcome": outcome,
            "rounds": campaign.rounds.len(),
            "tiers": campaign.tiers.iter().map(|t| format!("{}×{}", t.name, t.count)).collect::<Vec<_>>(),
            "venues": campaign.venues.len(),
            "win_limit": campaign.win_limit,
        }),
    )
}

pub(super) fn token_event(actor: &str, action: &str, t: &TokenRecord) -> AuditEvent {
    AuditEvent::new(
        actor,
        action,
        format!("token:{}", t.id),
        serde_json::json!({"name": t.name, "role": t.role, "venue_id": t.venue_id}),
    )
}

pub(super) fn commit_event(actor: &str, round: u32, witness: &str, commitment: &str) -> AuditEvent {
    AuditEvent::new(
        actor,
        "round.commit",
        format!("round:{round}"),
        serde_json::json!({"witness": witness, "commitment": commitment}),
    )
}

pub(super) fn freeze_event(
    actor: &str,
    round: u32,
    entries: usize,
    root: &str,
    prizes: &[(String, u32)],
    beacon_source: &str,
    (exclusions_root, by_reason): (&str, &std::collections::BTreeMap<String, u64>),
) -> AuditEvent {
    AuditEvent::new(
        actor,
        "round.freeze",
        format!("round:{round}"),
        serde_json::json!({"entry_count": entries, "entries_root": root, "prizes": prizes,
            "beacon_source": beacon_source, "exclusions_root": exclusions_root,
            "exclusions_by_reason": by_reason}),
    )
}

pub(super) fn exclusion_event(actor: &str, x: &super::Exclusion, ticket: uuid::Uuid) -> AuditEvent {
    AuditEvent::new(
        actor,
        "ticket.exclude",
        format!("ticket:{ticket}"),
        serde_json::json!({"round": x.round, "reason": x.reason.as_str(), "note": x.note}),
    )
}

pub(super) fn restore_event(actor: &str, round: u32, ticket: uuid::Uuid) -> AuditEvent {
    AuditEvent::new(
        actor,
        "ticket.restore",
        format!("ticket:{ticket}"),
        serde_json::json!({"round": round}),
    )
}

pub(super) fn reveal_event(actor: &str, round: u32, witness: &str) -> AuditEvent {
    AuditEvent::new(
        actor,
        "round.reveal",
        format!("round:{round}"),
        serde_json::json!({"witness": witness}),
    )
}

pub(super) fn draw_event(
    actor: &str,
    round: u32,
    beacon: &crate::domain::draw::beacon::Beacon,
    r: &crate::domain::draw::DrawResult,
) -> AuditEvent {
    let mut details = serde_json::json!({
        "beacon": beacon.value,
        "seed": hex::encode(r.seed),
        "winners": r.winners.iter().map(|w| format!("{}:{}:{}", w.rank, w.ticket, w.tier)).collect::<Vec<_>>(),
    });
    if let Some(signature) = &beacon.signature {
        details["beacon_signature"] = signature.as_str().into();
    }
    AuditEvent::new(actor, "round.draw", format!("round:{round}"), details)
}

pub(super) fn redeem_event(r: &RedemptionRecord, actor: &str) -> AuditEvent {
    AuditEvent::new(
        actor,
        "voucher.redeem",
        format!("voucher:{}", r.voucher_id),
        serde_json::json!({"redemption": r.id, "venue": r.venue_id, "kind": r.kind}),
    )
}

pub(super) fn reverse_event(r: &RedemptionRecord, reversal: Uuid, actor: &str) -> AuditEvent {
    AuditEvent::new(
        actor,
        "voucher.reverse",
        format!("voucher:{}", r.voucher_id),
        serde_json::json!({"redemption": r.id, "reversal": reversal, "venue": r.venue_id}),
    )
}

pub(super) fn void_event(id: Uuid, reason: &str, actor: &str) -> AuditEvent {
    AuditEvent::new(
        actor,
        "voucher.void",
        format!("voucher:{id}"),
        serde_json::json!({"reason": reason}),
    )
}

pub(super) fn reissue_event(old: &VoucherRecord, new_id: Uuid, actor: &str) -> AuditEvent {
    AuditEvent::new(
        actor,
        "voucher.reissue",
        format!("voucher:{new_id}"),
        serde_json::json!({"replaces": old.id, "round": old.round, "rank": old.rank, "kind": old.kind}),
    )
}

/// The vouchers a draw issued: ids and kinds, never codes (the log is read by auditors).
pub(super) fn issue_event(actor: &str, round: u32, issued: &[(Uuid, u32, String)]) -> AuditEvent {
    AuditEvent::new(
        actor,
        "voucher.issue",
        format!("round:{round}"),
        serde_json::json!({
            "count": issued.len(),
            "vouchers": issued.iter().map(|(id, rank, kind)| format!("{id}:{rank}:{kind}")).collect::<Vec<_>>(),
        }),
    )
}

pub(super) fn claim_event(actor: &str, p: &super::PrizeState) -> AuditEvent {
    AuditEvent::new(
        actor,
        "prize.claim",
        format!("round:{}:rank:{}", p.round, p.rank),
        serde_json::json!({"tier": p.tier}),
    )
}

pub(super) fn reallocation_event(actor: &str, round: u32, r: &super::Reallocation) -> AuditEvent {
    AuditEvent::new(
        actor,
        "prize.forfeit",
        format!("round:{round}:rank:{}", r.forfeited_rank),
        serde_json::json!({"seq": r.seq, "reason": r.reason.as_str(), "reserve_rank": r.reserve_rank, "tier": r.tier}),
    )
}
