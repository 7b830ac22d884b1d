//! The store, written once for both databases: every statement below runs on SQLite and on
//! PostgreSQL alike. What differs between them is behind [`Dialect`].

use super::dialect::{self, for_update, sql, Arg, Dialect, Exec, ReadRow};
use super::events::*;
use super::*;
use crate::domain::audit::chain;
use crate::domain::lifecycle::{self, FreezeFacts, WitnessStep};
use std::collections::{BTreeMap, BTreeSet};

/// The store over one database.
pub struct SqlStore<D> {
    pub(super) db: D,
}

impl<D: Dialect> SqlStore<D> {
    pub fn new(db: D) -> Self {
        Self { db }
    }

    /// Outbox messages, by the rest of a query (`$1` the limit).
    async fn outbox_rows(&self, rest: &str, limit: u32) -> StoreResult<Vec<SmsMessage>> {
        let mut conn = self.db.reader().await?;
        sql(format!("SELECT {SMS_COLUMNS} FROM sms_outbox {rest}"))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(sms_message)
            .collect()
    }
}

/// The tickets held for a round, each with its holder's wins in earlier rounds (`id`, `wins`):
/// $1 campaign, $2 round. Which of them are entries is [`crate::domain::exclusion::sort_out`]'s
/// to say.
pub(super) const ROUND_TICKETS: &str = "SELECT t.id, COALESCE(w.wins, 0) AS wins FROM tickets t
     LEFT JOIN (SELECT participant_id, COUNT(*) AS wins FROM round_winners
                WHERE campaign_id = $1 AND round < $2 GROUP BY participant_id) w
       ON w.participant_id = t.participant_id
     WHERE t.campaign_id = $1 AND t.round = $2";

/// A round's operators' exclusions.
async fn operator_exclusions(
    conn: &mut impl Exec,
    campaign_id: &str,
    round: u32,
) -> StoreResult<std::collections::HashMap<Uuid, Reason>> {
    sql("SELECT ticket_id, reason FROM ticket_exclusions WHERE campaign_id = $1 AND round = $2")
        .bind(campaign_id)
        .bind(round)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.get("ticket_id")?,
                parse_reason(&r.get::<String>("reason")?)?,
            ))
        })
        .collect()
}

fn parse_reason(s: &str) -> StoreResult<Reason> {
    Reason::parse(s).ok_or_else(|| StoreError::Database(format!("unknown exclusion reason {s}")))
}

/// A round's tickets sorted out into entries and exclusions (DESIGN §4a).
async fn sorted_out_of<D: Dialect>(
    conn: &mut D::Conn,
    campaign_id: &str,
    round: u32,
    win_limit: u32,
) -> StoreResult<SortedOut> {
    let tickets = D::round_tickets(conn, campaign_id, round).await?;
    let excluded = operator_exclusions(&mut *conn, campaign_id, round).await?;
    Ok(crate::domain::exclusion::sort_out(
        tickets, &excluded, win_limit,
    ))
}

// ---- rows -------------------------------------------------------------------------------------

const TOKEN_COLUMNS: &str = "id, name, role, venue_id, created_at, revoked_at";

fn token_from_row(row: &impl ReadRow) -> StoreResult<TokenRecord> {
    Ok(TokenRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        role: parse_role(&row.get::<String>("role")?)?,
        venue_id: row.get("venue_id")?,
        created_at: row.get("created_at")?,
        revoked_at: row.get("revoked_at")?,
    })
}

fn audit_from_row(row: &impl ReadRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: row.get("seq")?,
        at: row.get("at")?,
        actor: row.get("actor")?,
        action: row.get("action")?,
        subject: row.get("subject")?,
        details: row.get("details")?,
        prev_hash: row.get("prev_hash")?,
        hash: row.get("hash")?,
    })
}

const PARTICIPANT_COLUMNS: &str = "p.id, p.phone, p.display_name, p.created_at";

fn participant_from_row(row: &impl ReadRow) -> StoreResult<Participant> {
    Ok(Participant {
        id: row.get("id")?,
        phone: row.get("phone")?,
        display_name: row.get("display_name")?,
        created_at: row.get("created_at")?,
    })
}

/// Columns of `quiz_attempts a`, for [`attempt_from_row`].
const ATTEMPT_COLUMNS: &str =
    "a.id, a.participant_id, a.questions, a.started_at, a.deadline, a.submitted_at, \
     a.score, a.passed, a.result, a.ticket_round, a.ticket_status, a.ticket_id";

fn attempt_from_row(r: &impl ReadRow) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        id: r.get("id")?,
        participant_id: r.get("participant_id")?,
        questions: parse_questions(&r.get::<String>("questions")?)?,
        started_at: r.get("started_at")?,
        deadline: r.get("deadline")?,
        submitted_at: r.get("submitted_at")?,
        score: r.get("score")?,
        passed: r.get("passed")?,
        result: r.get("result")?,
        ticket_round: r.get("ticket_round")?,
        ticket: ticket_outcome(
            r.get::<Option<String>>("ticket_status")?.as_deref(),
            r.get("ticket_id")?,
        )?,
    })
}

fn voucher_from_row(row: &impl ReadRow) -> StoreResult<VoucherRecord> {
    Ok(VoucherRecord {
        id: row.get("id")?,
        code: row.get("code")?,
        campaign_id: row.get("campaign_id")?,
        round: row.get("round")?,
        rank: row.get("rank")?,
        tier: row.get("tier")?,
        kind: row.get("kind")?,
        participant_id: row.get("participant_id")?,
        holder_phone: row.get("phone")?,
        holder_name: row.get("display_name")?,
        void: row.get::<String>("status")? == "void",
        claimed: row.get::<Option<DateTime<Utc>>>("claimed_at")?.is_some(),
        issued_at: row.get("issued_at")?,
        voided_at: row.get("voided_at")?,
        void_reason: row.get("void_reason")?,
        reissued_from: row.get("reissued_from")?,
        holder_secret: row
            .get::<Option<String>>("holder_secret")?
            .map(|hex| {
                crate::domain::holder_code::Secret::from_hex(&hex)
                    .ok_or_else(|| StoreError::Database("unreadable holder secret".into()))
            })
            .transpose()?,
        uses: Vec::new(),
    })
}

fn redemption_from_row(row: &impl ReadRow) -> StoreResult<RedemptionRecord> {
    Ok(RedemptionRecord {
        id: row.get("id")?,
        voucher_id: row.get("voucher_id")?,
        code: row.get("code")?,
        kind: row.get("kind")?,
        venue_id: row.get("venue_id")?,
        token_id: row.get("token_id")?,
        idempotency_key: row.get("idempotency_key")?,
        redeemed_at: row.get("redeemed_at")?,
        reversal_id: row.get("reversal_id")?,
        reversed_at: row.get("reversed_at")?,
    })
}

// ---- values ---------------------------------------------------------------------------------

/// What the sync should write, decided from the recorded state.
pub(super) fn plan_sync(
    recorded: Option<&Campaign>,
    progress: &[(u32, RoundProgress)],
    new: &Campaign,
) -> StoreResult<SyncOutcome> {
    match recorded {
        None => Ok(SyncOutcome::Created),
        Some(old) => {
            crate::domain::campaign::check_compatible(old, progress, new)?;
            Ok(if old == new {
                SyncOutcome::Unchanged
            } else {
                SyncOutcome::Updated
            })
        }
    }
}

pub(super) fn decode_hash(hex_hash: &str) -> StoreResult<[u8; 32]> {
    hex::decode(hex_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            StoreError::Database(format!(
                "audit head hash {hex_hash:?} is not 32 bytes of hex"
            ))
        })
}

pub(super) fn parse_role(s: &str) -> StoreResult<Role> {
    Role::parse(s).ok_or_else(|| StoreError::Database(format!("unknown role {s:?} in api_tokens")))
}

pub(super) fn ticket_outcome(status: Option<&str>, id: Option<Uuid>) -> StoreResult<TicketOutcome> {
    match (status, id) {
        (None, _) => Ok(TicketOutcome::None),
        (Some("issued"), Some(id)) => Ok(TicketOutcome::Issued(id)),
        (Some("already_held"), Some(id)) => Ok(TicketOutcome::AlreadyHeld(id)),
        (Some(other), _) => Err(StoreError::Database(format!(
            "bad ticket status {other:?} on an attempt"
        ))),
    }
}

pub(super) fn ticket_columns(t: TicketOutcome) -> (Option<&'static str>, Option<Uuid>) {
    match t {
        TicketOutcome::None => (None, None),
        TicketOutcome::Issued(id) => (Some("issued"), Some(id)),
        TicketOutcome::AlreadyHeld(id) => (Some("already_held"), Some(id)),
    }
}

pub(super) fn parse_questions(json: &str) -> StoreResult<Vec<AttemptQuestion>> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Database(format!("unreadable attempt questions: {e}")))
}

pub(super) fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(e.to_string()))
}

pub(super) fn prizes_json(prizes: &[(String, u32)]) -> StoreResult<String> {
    to_json(
        &prizes
            .iter()
            .map(|(tier, count)| serde_json::json!({"tier": tier, "count": count}))
            .collect::<Vec<_>>(),
    )
}

pub(super) fn parse_prizes(json: Option<&str>) -> StoreResult<Vec<(String, u32)>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let list: Vec<crate::domain::draw::record::PrizeRecord> = serde_json::from_str(json)
        .map_err(|e| StoreError::Database(format!("unreadable prizes: {e}")))?;
    Ok(list.into_iter().map(|p| (p.tier, p.count)).collect())
}

/// Judges a redemption by the campaign's rules.
pub(super) fn judge_redeem(
    campaign: &Campaign,
    voucher: &VoucherRecord,
    r: &Redeem,
    used_steps: &[i64],
) -> StoreResult<Result<Option<i64>, crate::domain::redemption::Reason>> {
    use crate::domain::redemption::{judge, HolderCheck};
    let kind = campaign.voucher_kind(&voucher.kind).ok_or_else(|| {
        StoreError::Database(format!("voucher kind {:?} is not configured", voucher.kind))
    })?;
    Ok(judge(
        kind,
        voucher.standing(),
        &voucher.domain_uses(),
        &r.venue,
        r.at,
        HolderCheck::Code {
            given: r.holder_code.as_deref(),
            secret: voucher.holder_secret.as_ref().map(|s| s.as_bytes()),
            used: used_steps,
        },
    ))
}

/// The audit head kept at the freeze or the draw, if it was.
fn anchor(r: &impl ReadRow, step: &str) -> StoreResult<Option<(i64, String)>> {
    let seq: Option<i64> = r.get(&format!("audit_seq_at_{step}"))?;
    let hash: Option<String> = r.get(&format!("audit_hash_at_{step}"))?;
    Ok(seq.zip(hash))
}

async fn kept_record(
    conn: &mut impl Exec,
    campaign_id: &str,
    round: u32,
) -> StoreResult<Option<KeptRecord>> {
    let Some(row) = sql("SELECT record, record_key_id, record_signature FROM rounds
         WHERE campaign_id = $1 AND number = $2 AND record IS NOT NULL")
    .bind(campaign_id)
    .bind(round)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    let key_id: Option<String> = row.get("record_key_id")?;
    let signature: Option<String> = row.get("record_signature")?;
    Ok(Some(KeptRecord {
        json: row.get("record")?,
        signature: key_id
            .zip(signature)
            .map(|(key_id, signature)| RecordSignature { key_id, signature }),
    }))
}

/// Signing keys matching `filter` (a fixed condition), oldest first; their secret halves only if
/// `with_secret`.
async fn signing_keys_where(
    conn: &mut impl Exec,
    filter: &str,
    with_secret: bool,
) -> StoreResult<Vec<SigningKeyRecord>> {
    sql(format!(
        "SELECT id, public_key, secret_key, created_at, retired_at FROM signing_keys
         WHERE {filter} ORDER BY created_at, id"
    ))
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(SigningKeyRecord {
            id: r.get("id")?,
            public_key: r.get("public_key")?,
            secret_key: if with_secret {
                r.get("secret_key")?
            } else {
                String::new()
            },
            created_at: r.get("created_at")?,
            retired_at: r.get("retired_at")?,
        })
    })
    .collect()
}

/// The holder-code steps the voucher of `code` was redeemed with, from `since` on (older ones
/// are out of every window).
async fn used_holder_steps(conn: &mut impl Exec, code: &str, since: i64) -> StoreResult<Vec<i64>> {
    sql(
        "SELECT r.holder_step FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id
         WHERE v.code = $1 AND r.holder_step >= $2",
    )
    .bind(code)
    .bind(since)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| row.get("holder_step"))
    .collect()
}

pub(super) fn redemption_slot<'a>(
    campaign: &Campaign,
    voucher: &VoucherRecord,
    venue_id: &'a str,
) -> StoreResult<&'a str> {
    let kind = campaign.voucher_kind(&voucher.kind).ok_or_else(|| {
        StoreError::Database(format!("voucher kind {:?} is not configured", voucher.kind))
    })?;
    Ok(crate::domain::redemption::slot(kind.policy, venue_id))
}

/// The columns every voucher query selects (with `p` the holder and `w` the winner row).
pub(super) const VOUCHER_COLUMNS: &str =
    "v.id, v.code, v.campaign_id, v.round, v.rank, w.tier, v.kind,
     v.participant_id, p.phone, p.display_name, v.status, v.issued_at, v.voided_at, v.void_reason,
     v.reissued_from, w.claimed_at, v.holder_secret";

pub(super) const VOUCHER_FROM: &str = "FROM vouchers v
     JOIN participants p ON p.id = v.participant_id
     JOIN round_winners w ON w.campaign_id = v.campaign_id AND w.round = v.round AND w.rank = v.rank";

pub(super) const VOUCHER_ORDER: &str = "ORDER BY v.round, v.rank, v.kind, v.issued_at";

pub(super) const REDEMPTION_COLUMNS: &str = "r.id, r.voucher_id, v.code, v.kind, r.venue_id,
     r.token_id, r.idempotency_key, r.redeemed_at, r.reversal_id, x.reversed_at";

pub(super) const REDEMPTION_FROM: &str = "FROM redemptions r
     JOIN vouchers v ON v.id = r.voucher_id
     LEFT JOIN reversals x ON x.id = r.reversal_id";

/// Attaches to each voucher the unreversed uses of its entitlement.
pub(super) fn attach_uses(vouchers: &mut [VoucherRecord], uses: Vec<(String, UseRecord)>) {
    let mut by_entitlement: std::collections::HashMap<String, Vec<UseRecord>> =
        std::collections::HashMap::new();
    for (e, u) in uses {
        by_entitlement.entry(e).or_default().push(u);
    }
    for v in vouchers {
        if let Some(u) = by_entitlement.get(&v.entitlement()) {
            v.uses = u.clone();
        }
    }
}

/// The answer recorded for a desk's Idempotency-Key.
pub(super) struct RecordedAnswer {
    request: String,
    answer: String,
    redemption_id: Option<Uuid>,
    reason: Option<String>,
}

async fn recorded_answer(
    conn: &mut impl Exec,
    token_id: Uuid,
    key: &str,
) -> StoreResult<Option<RecordedAnswer>> {
    sql(
        "SELECT request, answer, redemption_id, reason FROM idempotent_answers
         WHERE token_id = $1 AND idempotency_key = $2",
    )
    .bind(token_id)
    .bind(key)
    .fetch_optional(conn)
    .await?
    .map(|row| {
        Ok(RecordedAnswer {
            request: row.get("request")?,
            answer: row.get("answer")?,
            redemption_id: row.get("redemption_id")?,
            reason: row.get("reason")?,
        })
    })
    .transpose()
}

/// The first answer again, for a retry under the same key; a reuse of the key for another
/// request is refused.
async fn replay<D: Dialect>(
    conn: &mut D::Conn,
    earlier: RecordedAnswer,
    r: &Redeem,
) -> StoreResult<RedeemOutcome> {
    if !crate::domain::redemption::same_request(&earlier.request, &r.code, r.holder_code.as_deref())
    {
        return Ok(RedeemOutcome::KeyReused);
    }
    match (
        earlier.answer.as_str(),
        earlier.redemption_id,
        earlier.reason,
    ) {
        ("redeemed", Some(id), _) => {
            let redemption = sql(format!(
                "SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM} WHERE r.id = $1"
            ))
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .and_then(|row| redemption_from_row(&row))?;
            let voucher = one_voucher::<D>(conn, "v.id = $1", redemption.voucher_id.into(), false)
                .await?
                .ok_or_else(|| StoreError::Database(format!("redemption {id} has no voucher")))?;
            Ok(RedeemOutcome::Redeemed {
                redemption,
                voucher,
                replayed: true,
            })
        }
        ("refused", _, Some(reason)) => Ok(RedeemOutcome::Refused {
            reason: serde_json::from_str(&reason).map_err(|e| {
                StoreError::Database(format!("unreadable recorded refusal {reason:?}: {e}"))
            })?,
            replayed: true,
        }),
        ("unknown_code", _, _) => Ok(RedeemOutcome::Unknown { replayed: true }),
        (answer, ..) => Err(StoreError::Database(format!(
            "recorded answer {answer:?} is incomplete"
        ))),
    }
}

/// Records a refusal (or an unknown code) as the answer to its key, unless the key has an
/// answer already (a concurrent request with it): whether it was recorded.
async fn record_refusal<D: Dialect>(
    db: &D,
    read: &mut D::Conn,
    r: &Redeem,
    request: &str,
    reason: Option<&crate::domain::redemption::Reason>,
) -> StoreResult<bool> {
    let reason = reason
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Database(format!("cannot record a refusal: {e}")))?;
    let answer = if reason.is_some() {
        "refused"
    } else {
        "unknown_code"
    };
    let statement = sql(
        "INSERT INTO idempotent_answers (token_id, idempotency_key, request, answer, reason,
             answered_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
    )
    .bind(r.token_id)
    .bind(&r.idempotency_key)
    .bind(request)
    .bind(answer)
    .bind(&reason)
    .bind(r.at);
    Ok(db.write_beside(read, statement).await? == 1)
}

pub(super) fn parse_progress(s: &str) -> StoreResult<RoundProgress> {
    RoundProgress::parse(s)
        .ok_or_else(|| StoreError::Database(format!("unknown round progress {s:?}")))
}

// ---- shared steps -----------------------------------------------------------------------------

/// Appends to the audit log inside `tx`: the head row is locked (or the database is), so
/// appends from several instances queue.
pub(super) async fn append<D: Dialect>(
    tx: &mut D::Conn,
    event: AuditEvent,
    at: DateTime<Utc>,
) -> StoreResult<AuditEntry> {
    let head = sql(format!(
        "SELECT seq, hash FROM audit_head WHERE id = 1{}",
        for_update::<D>("audit_head")
    ))
    .fetch_one(tx)
    .await?;
    let prev_hash: String = head.get("hash")?;
    let entry = chain(head.get("seq")?, decode_hash(&prev_hash)?, at, event);
    sql(
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(entry.seq)
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.subject)
    .bind(&entry.details)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(tx)
    .await?;
    sql("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(entry.seq)
        .bind(&entry.hash)
        .execute(tx)
        .await?;
    Ok(entry)
}

async fn recorded(conn: &mut impl Exec) -> StoreResult<Option<Campaign>> {
    let row = sql("SELECT definition FROM campaigns ORDER BY synced_at LIMIT 1")
        .fetch_optional(conn)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => serde_json::from_str(&row.get::<String>("definition")?)
            .map(Some)
            .map_err(|e| {
                StoreError::Database(format!("recorded campaign definition is unreadable: {e}"))
            }),
    }
}

async fn progress(
    conn: &mut impl Exec,
    campaign_id: &str,
) -> StoreResult<Vec<(u32, RoundProgress)>> {
    sql("SELECT number, progress FROM rounds WHERE campaign_id = $1 ORDER BY number")
        .bind(campaign_id)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.get("number")?,
                parse_progress(&r.get::<String>("progress")?)?,
            ))
        })
        .collect()
}

/// A round's progress, its row locked for the rest of the transaction.
async fn locked_progress<D: Dialect>(
    tx: &mut D::Conn,
    campaign_id: &str,
    round: u32,
) -> StoreResult<RoundProgress> {
    let row = sql(format!(
        "SELECT progress FROM rounds WHERE campaign_id = $1 AND number = $2{}",
        for_update::<D>("rounds")
    ))
    .bind(campaign_id)
    .bind(round)
    .fetch_optional(tx)
    .await?
    .ok_or(Refusal::RoundNotFound { round })?;
    parse_progress(&row.get::<String>("progress")?)
}

async fn draw_state(
    conn: &mut impl Exec,
    campaign_id: &str,
    round: u32,
) -> StoreResult<Option<RoundDrawState>> {
    let row = sql(
        "SELECT progress, frozen_at, entry_count, entries_root, tickets_issued, exclusion_count,
                exclusions_root, exclusions_by_reason, beacon_source, prizes, beacon, seed, drawn_at,
                beacon_signature, audit_seq_at_freeze, audit_hash_at_freeze, audit_seq_at_draw,
                audit_hash_at_draw
         FROM rounds WHERE campaign_id = $1 AND number = $2",
    )
    .bind(campaign_id)
    .bind(round)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let witnesses = sql(
        "SELECT witness, commitment, committed_at, secret, revealed_at FROM witness_commitments
         WHERE campaign_id = $1 AND round = $2 ORDER BY witness",
    )
    .bind(campaign_id)
    .bind(round)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|w| {
        Ok(WitnessState {
            name: w.get("witness")?,
            commitment: w.get("commitment")?,
            committed_at: w.get("committed_at")?,
            secret: w.get("secret")?,
            revealed_at: w.get("revealed_at")?,
        })
    })
    .collect::<StoreResult<Vec<_>>>()?;
    let winners = sql(
        "SELECT w.rank, w.ticket_id, w.tier, p.phone FROM round_winners w
         JOIN participants p ON p.id = w.participant_id
         WHERE w.campaign_id = $1 AND w.round = $2 AND w.promoted_from IS NULL ORDER BY w.rank",
    )
    .bind(campaign_id)
    .bind(round)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|w| {
        Ok(WinnerState {
            rank: w.get("rank")?,
            ticket: w.get("ticket_id")?,
            tier: w.get("tier")?,
            phone: w.get("phone")?,
        })
    })
    .collect::<StoreResult<Vec<_>>>()?;
    let reserves = sql("SELECT rank, ticket_id FROM round_reserves
         WHERE campaign_id = $1 AND round = $2 ORDER BY rank")
    .bind(campaign_id)
    .bind(round)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ReserveState {
            rank: r.get("rank")?,
            ticket: r.get("ticket_id")?,
        })
    })
    .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(RoundDrawState {
        progress: parse_progress(&r.get::<String>("progress")?)?,
        frozen_at: r.get("frozen_at")?,
        entry_count: r.get("entry_count")?,
        entries_root: r.get("entries_root")?,
        tickets_issued: r.get::<Option<u32>>("tickets_issued")?.map(u64::from),
        exclusion_count: r.get::<Option<u32>>("exclusion_count")?.map(u64::from),
        exclusions_root: r.get("exclusions_root")?,
        exclusions_by_reason: r
            .get::<Option<String>>("exclusions_by_reason")?
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|e| StoreError::Database(format!("unreadable exclusions_by_reason: {e}")))?,
        beacon_source: r.get("beacon_source")?,
        prizes: parse_prizes(r.get::<Option<String>>("prizes")?.as_deref())?,
        beacon: r.get("beacon")?,
        beacon_signature: r.get("beacon_signature")?,
        audit_at_freeze: anchor(&r, "freeze")?,
        audit_at_draw: anchor(&r, "draw")?,
        seed: r.get("seed")?,
        drawn_at: r.get("drawn_at")?,
        witnesses,
        winners,
        reserves,
    }))
}

async fn insert_session(
    tx: &mut impl Exec,
    participant: Uuid,
    s: &NewSession,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sql(
        "INSERT INTO participant_sessions (token_hash, participant_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&s.token_hash)
    .bind(participant)
    .bind(at)
    .bind(s.expires_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// Text messages queued after `since`, for the campaign-wide hourly budget.
async fn sms_queued_after(conn: &mut impl Exec, since: DateTime<Utc>) -> StoreResult<i64> {
    sql("SELECT COUNT(*) AS n FROM sms_outbox WHERE created_at > $1")
        .bind(since)
        .fetch_one(conn)
        .await?
        .get("n")
}

/// Queues a text message in the outbox, from which the SMS sender takes it.
async fn queue_sms(tx: &mut impl Exec, m: &NewSms, at: DateTime<Utc>) -> StoreResult<()> {
    let params = to_json(&m.params)?;
    sql(
        "INSERT INTO sms_outbox (phone, template, params, body, send_before, created_at, event_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_key) DO NOTHING",
    )
    .bind(&m.phone)
    .bind(&m.template)
    .bind(params)
    .bind(&m.body)
    .bind(m.send_before)
    .bind(at)
    .bind(&m.event_key)
    .execute(tx)
    .await?;
    Ok(())
}

const SMS_COLUMNS: &str = "id, phone, template, params, body, status, attempts, send_before, \
     failure, gateway_id, created_at, sent_at, delivered_at";

fn sms_message(r: &impl ReadRow) -> StoreResult<SmsMessage> {
    let params: String = r.get("params")?;
    let status: String = r.get("status")?;
    Ok(SmsMessage {
        id: r.get("id")?,
        phone: r.get("phone")?,
        template: r.get("template")?,
        params: serde_json::from_str(&params)
            .map_err(|e| StoreError::Database(format!("unreadable SMS parameters: {e}")))?,
        body: r.get("body")?,
        status: crate::domain::sms::Status::parse(&status)
            .ok_or_else(|| StoreError::Database(format!("unknown SMS status {status}")))?,
        attempts: r.get("attempts")?,
        send_before: r.get("send_before")?,
        failure: r.get("failure")?,
        gateway_id: r.get("gateway_id")?,
        created_at: r.get("created_at")?,
        sent_at: r.get("sent_at")?,
        delivered_at: r.get("delivered_at")?,
    })
}

async fn live_session(
    conn: &mut impl Exec,
    token_hash: &str,
    participant: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    Ok(sql("SELECT 1 AS live FROM participant_sessions
         WHERE token_hash = $1 AND participant_id = $2 AND expires_at > $3")
    .bind(token_hash)
    .bind(participant)
    .bind(at)
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// The unreversed uses of the entitlements of the vouchers `condition` selects; `condition` is
/// one of ours, never input, and `$1` is `key`. Reversed ones are left out here rather than in
/// SQL: SQLite's planner takes `reversal_id IS NULL` for a look-up in the unique index on
/// `reversal_id`, and so scanned every live redemption for each voucher.
async fn uses_where(
    conn: &mut impl Exec,
    condition: &str,
    key: Arg<'_>,
) -> StoreResult<Vec<(String, UseRecord)>> {
    let mut q = sql(format!(
        "SELECT r.entitlement, r.id, r.venue_id, r.redeemed_at, r.reversal_id FROM redemptions r
         JOIN vouchers v ON v.id = r.voucher_id
         WHERE {condition} ORDER BY r.redeemed_at"
    ));
    q.args.push(key);
    let mut uses = Vec::new();
    for row in q.fetch_all(conn).await? {
        if row.get::<Option<Uuid>>("reversal_id")?.is_some() {
            continue;
        }
        uses.push((
            row.get("entitlement")?,
            UseRecord {
                redemption_id: row.get("id")?,
                venue_id: row.get("venue_id")?,
                at: row.get("redeemed_at")?,
            },
        ));
    }
    Ok(uses)
}

async fn vouchers_where(
    conn: &mut impl Exec,
    condition: &str,
    key: Arg<'_>,
) -> StoreResult<Vec<VoucherRecord>> {
    let mut q = sql(format!(
        "SELECT {VOUCHER_COLUMNS} {VOUCHER_FROM} WHERE {condition} {VOUCHER_ORDER}"
    ));
    q.args.push(key.clone());
    let mut vouchers = q
        .fetch_all(conn)
        .await?
        .iter()
        .map(voucher_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    // A participant's or a campaign's codes include every code of each entitlement.
    attach_uses(&mut vouchers, uses_where(conn, condition, key).await?);
    Ok(vouchers)
}

/// One voucher with its uses; `lock` holds its row until the transaction ends.
async fn one_voucher<D: Dialect>(
    conn: &mut D::Conn,
    condition: &str,
    key: Arg<'_>,
    lock: bool,
) -> StoreResult<Option<VoucherRecord>> {
    let lock = if lock {
        for_update::<D>("v")
    } else {
        String::new()
    };
    let mut q = sql(format!(
        "SELECT {VOUCHER_COLUMNS} {VOUCHER_FROM} WHERE {condition}{lock}"
    ));
    q.args.push(key);
    let Some(row) = q.fetch_optional(conn).await? else {
        return Ok(None);
    };
    let mut voucher = voucher_from_row(&row)?;
    let entitlement = voucher.entitlement();
    let uses = uses_where(conn, "r.entitlement = $1", entitlement.as_str().into()).await?;
    attach_uses(std::slice::from_mut(&mut voucher), uses);
    Ok(Some(voucher))
}

/// Binds `$1`…`$6` of a submission's write: time, score, passed, answers, attempt, participant.
pub(super) fn bind_submission<'q>(q: dialect::Sql<'q>, s: &'q Submission) -> dialect::Sql<'q> {
    q.bind(s.at)
        .bind(s.score)
        .bind(s.passed)
        .bind(&s.result)
        .bind(s.attempt_id)
        .bind(s.participant_id)
}

/// What submitting writes, and what it did for the ticket, when done the portable way: the
/// ticket held first and the attempt recorded after, in one write transaction; a refusal rolls
/// both back. The session is checked on a reader, beside the writer rather than inside it.
pub(super) async fn write_submission<D: Dialect>(
    db: &D,
    s: &Submission,
) -> StoreResult<Option<TicketOutcome>> {
    if let Some(session) = &s.session {
        let mut conn = db.reader().await?;
        if !live_session(&mut *conn, session, s.participant_id, s.at).await? {
            return Ok(None);
        }
    }
    let mut tx = db.begin().await?;
    let mut ticket = TicketOutcome::None;
    if let (Some((campaign_id, round)), true) = (&s.ticket_round, s.passed) {
        let id = Uuid::new_v4();
        let issued = sql(
            "INSERT INTO tickets (id, campaign_id, round, participant_id, attempt_id, created_at)
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (
                 SELECT 1 FROM rounds WHERE campaign_id = $2 AND number = $3 AND progress = 'pending')
             ON CONFLICT (campaign_id, round, participant_id) DO NOTHING RETURNING id",
        )
        .bind(id)
        .bind(campaign_id)
        .bind(*round)
        .bind(s.participant_id)
        .bind(s.attempt_id)
        .bind(s.at)
        .fetch_optional(&mut *tx)
        .await?;
        ticket = match issued {
            Some(_) => TicketOutcome::Issued(id),
            // Held already, or (no row at all) the round no longer takes entries.
            None => sql(
                "SELECT id FROM tickets WHERE campaign_id = $1 AND round = $2 AND participant_id = $3",
            )
            .bind(campaign_id)
            .bind(*round)
            .bind(s.participant_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get("id").map(TicketOutcome::AlreadyHeld))
            .transpose()?
            .unwrap_or(TicketOutcome::None),
        };
    }
    let ticket_round = match (&s.ticket_round, ticket) {
        (Some((_, round)), TicketOutcome::Issued(_) | TicketOutcome::AlreadyHeld(_)) => {
            Some(*round)
        }
        _ => None,
    };
    let (status, ticket_id) = ticket_columns(ticket);
    let done = bind_submission(
        sql(
            "UPDATE quiz_attempts SET submitted_at = $1, score = $2, passed = $3, result = $4,
                 ticket_round = $7, ticket_status = $8, ticket_id = $9
             WHERE id = $5 AND participant_id = $6 AND submitted_at IS NULL AND deadline >= $10",
        ),
        s,
    )
    .bind(ticket_round)
    .bind(status)
    .bind(ticket_id)
    .bind(s.due_after)
    .execute(&mut *tx)
    .await?;
    if done != 1 {
        return Ok(None);
    }
    D::commit(tx).await?;
    Ok(Some(ticket))
}

/// Rows per insert of participants met by the tally (3 values each: far below either database's
/// limit on parameters).
const TAKERS_PER_STATEMENT: usize = 500;

/// Inserts `rows` into `table` (`name (columns)`) where new, one statement for all: the new
/// ones' `returning` columns (a row already there returns nothing).
async fn new_takers<'a, D: Dialect>(
    tx: &mut D::Tx,
    table: &str,
    key: &str,
    rows: Vec<Vec<Arg<'a>>>,
    returning: &str,
) -> StoreResult<Vec<D::Row>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let width = rows[0].len();
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let cells: Vec<String> = (1..=width).map(|c| format!("${}", i * width + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let mut q = sql(format!(
        "INSERT INTO {table} VALUES {} ON CONFLICT ({key}) DO NOTHING RETURNING {returning}",
        values.join(", ")
    ));
    for arg in rows.into_iter().flatten() {
        q = q.bind(arg);
    }
    q.fetch_all(&mut **tx).await
}

/// A redemption judged allowed, to be written if its guards still hold.
pub struct RedemptionWrite<'a> {
    pub redemption: &'a RedemptionRecord,
    /// The holder-code step that proved holding, taken once per voucher (a unique index).
    pub holder_step: Option<i64>,
    pub entitlement: String,
    pub slot: &'a str,
    /// The request's fingerprint, recorded as the answer to its key with the redemption.
    pub request: &'a str,
    pub event: AuditEvent,
}

impl<'a> RedemptionWrite<'a> {
    /// Binds `$1`…`$9`: the redemption's id, voucher, entitlement, slot, venue, token, key,
    /// time and holder-code step.
    pub fn bind<'q>(&'q self, q: dialect::Sql<'q>) -> dialect::Sql<'q> {
        let r = self.redemption;
        q.bind(r.id)
            .bind(r.voucher_id)
            .bind(&self.entitlement)
            .bind(self.slot)
            .bind(&r.venue_id)
            .bind(r.token_id)
            .bind(&r.idempotency_key)
            .bind(r.redeemed_at)
            .bind(self.holder_step)
    }
}

/// [`Dialect::write_redemption`] the portable way: a guarded insert (the voucher still live;
/// unique indexes on the slot and the key), the key's answer and the audit entry, in one write
/// transaction.
pub(super) async fn write_redemption<D: Dialect>(
    db: &D,
    w: &RedemptionWrite<'_>,
) -> StoreResult<bool> {
    let mut tx = db.begin().await?;
    let inserted = w
        .bind(sql(
            "INSERT INTO redemptions (id, voucher_id, entitlement, slot, venue_id, token_id,
                 idempotency_key, redeemed_at, holder_step)
             SELECT $1, id, $3, $4, $5, $6, $7, $8, $9 FROM vouchers
             WHERE id = $2 AND status = 'issued'
             ON CONFLICT DO NOTHING",
        ))
        .execute(&mut *tx)
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    let r = w.redemption;
    let answered = sql(
        "INSERT INTO idempotent_answers (token_id, idempotency_key, request, answer,
             redemption_id, answered_at)
         VALUES ($1, $2, $3, 'redeemed', $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(r.token_id)
    .bind(&r.idempotency_key)
    .bind(w.request)
    .bind(r.id)
    .bind(r.redeemed_at)
    .execute(&mut *tx)
    .await?;
    if answered == 0 {
        // The key has its answer already (a refusal made meanwhile): rolled back.
        return Ok(false);
    }
    append::<D>(&mut tx, w.event.clone(), w.redemption.redeemed_at).await?;
    D::commit(tx).await?;
    Ok(true)
}

/// A fresh holder-code secret, as stored (hex).
fn holder_secret() -> StoreResult<String> {
    crate::csprng::holder_secret()
        .map(|s| s.to_hex())
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// A fresh voucher code, as stored (12 symbols, no separators).
fn voucher_code() -> StoreResult<String> {
    crate::csprng::voucher_code()
        .map(|c| c.as_str().to_owned())
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// Rows inserted per statement by the set-based inserts of a draw: few statements, and far
/// below both databases' limits on bound values (SQLite 32 766, PostgreSQL 65 535).
const ROWS_PER_INSERT: usize = 1000;

/// `VALUES ($first, …), (…)`: `rows` rows of `width` placeholders each, numbered on from
/// `$first` in the order they appear (see [`Dialect::placeholder`]). The columns of such a list
/// are `column1`, `column2`, … on both databases.
fn values<D: Dialect>(rows: usize, width: usize, first: usize) -> String {
    let mut text = String::with_capacity(8 + rows * width * 7);
    text.push_str("VALUES ");
    for r in 0..rows {
        if r > 0 {
            text.push_str(", ");
        }
        text.push('(');
        for c in 0..width {
            if c > 0 {
                text.push_str(", ");
            }
            text.push_str(&D::placeholder(first + r * width + c));
        }
        text.push(')');
    }
    text
}

/// The voucher kinds a prize of `tier` comes with.
fn kinds_of_tier<'a>(tier_kinds: &'a [(String, Vec<String>)], tier: &str) -> &'a [String] {
    tier_kinds
        .iter()
        .find(|(t, _)| t == tier)
        .map(|(_, k)| k.as_slice())
        .unwrap_or(&[])
}

/// Issues one voucher of each `(rank, holder, kind)`, a fresh code each, a thousand a statement;
/// what was issued, `(id, rank, kind)`, for the audit log.
async fn issue_vouchers<D: Dialect>(
    tx: &mut D::Conn,
    campaign_id: &str,
    round: u32,
    issued: &[(u32, Uuid, &str)],
    at: DateTime<Utc>,
) -> StoreResult<Vec<(Uuid, u32, String)>> {
    let mut out = Vec::with_capacity(issued.len());
    for chunk in issued.chunks(ROWS_PER_INSERT) {
        let mut q = sql(format!(
            "INSERT INTO vouchers (id, code, campaign_id, round, rank, participant_id, kind,
                 issued_at, holder_secret) {}",
            values::<D>(chunk.len(), 9, 1)
        ));
        for (rank, holder, kind) in chunk {
            let id = Uuid::new_v4();
            out.push((id, *rank, (*kind).to_owned()));
            q = q
                .bind(id)
                .bind(voucher_code()?)
                .bind(campaign_id)
                .bind(round)
                .bind(*rank)
                .bind(*holder)
                .bind(*kind)
                .bind(at)
                .bind(holder_secret()?);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(out)
}

/// The participant's prize of a round, locked for the change to come; `no_prize` if none.
async fn held_prize<D: Dialect>(
    tx: &mut D::Conn,
    campaign_id: &str,
    round: u32,
    participant_id: Uuid,
) -> StoreResult<PrizeState> {
    let row = sql(format!(
        "SELECT {PRIZE_COLUMNS} FROM round_winners w
         WHERE w.campaign_id = $1 AND w.round = $2 AND w.participant_id = $3{}",
        for_update::<D>("w")
    ))
    .bind(campaign_id)
    .bind(round)
    .bind(participant_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Refusal::NoPrize { round })?;
    prize_from_row(&row)
}

/// A prize's row, as [`prize_from_row`] reads it.
const PRIZE_COLUMNS: &str = "w.campaign_id, w.round, w.rank, w.tier, w.participant_id,
     w.promoted_from, w.claim_deadline, w.claimed_at, w.forfeited_at, w.forfeit_reason";

fn prize_from_row(r: &impl ReadRow) -> StoreResult<PrizeState> {
    let forfeited = match r.get::<Option<DateTime<Utc>>>("forfeited_at")? {
        Some(at) => {
            let reason: String = r
                .get::<Option<String>>("forfeit_reason")?
                .unwrap_or_default();
            let reason = crate::domain::claim::ForfeitReason::parse(&reason)
                .ok_or_else(|| StoreError::Database(format!("unknown forfeit reason {reason}")))?;
            Some((at, reason))
        }
        None => None,
    };
    let claimed_at = r.get::<Option<DateTime<Utc>>>("claimed_at")?;
    let deadline = r
        .get::<Option<DateTime<Utc>>>("claim_deadline")?
        .or(claimed_at)
        .ok_or_else(|| StoreError::Database("a prize without a claim deadline".into()))?;
    Ok(PrizeState {
        campaign_id: r.get("campaign_id")?,
        round: r.get("round")?,
        rank: r.get("rank")?,
        tier: r.get("tier")?,
        participant_id: r.get("participant_id")?,
        promoted_from: r.get("promoted_from")?,
        standing: crate::domain::claim::Standing::of(deadline, claimed_at, forfeited),
    })
}

/// Forfeits an open prize for `reason` (its vouchers void), then gives it to the next unused
/// reserve of its round, who gets the vouchers and a claim period of their own; both recorded
/// in the reallocations document and audited. Nothing when the prize is no longer open.
async fn forfeit_prize<D: Dialect>(
    tx: &mut D::Conn,
    f: &Forfeit,
    prize: &PrizeState,
    reason: crate::domain::claim::ForfeitReason,
    actor: &str,
    at: DateTime<Utc>,
) -> StoreResult<Option<Reallocation>> {
    // The round's row serialises its reallocations (the next seq, the next reserve).
    locked_progress::<D>(tx, &prize.campaign_id, prize.round).await?;
    let taken = sql(
        "UPDATE round_winners SET forfeited_at = $1, forfeit_reason = $2
         WHERE campaign_id = $3 AND round = $4 AND rank = $5
           AND claimed_at IS NULL AND forfeited_at IS NULL",
    )
    .bind(at)
    .bind(reason.as_str())
    .bind(prize.campaign_id.as_str())
    .bind(prize.round)
    .bind(prize.rank)
    .execute(&mut *tx)
    .await?;
    if taken == 0 {
        return Ok(None);
    }
    sql(
        "UPDATE vouchers SET status = 'void', voided_at = $1, void_reason = 'forfeited'
         WHERE campaign_id = $2 AND round = $3 AND rank = $4 AND status = 'issued'",
    )
    .bind(at)
    .bind(prize.campaign_id.as_str())
    .bind(prize.round)
    .bind(prize.rank)
    .execute(&mut *tx)
    .await?;
    let reserves: Vec<(u32, Uuid, Uuid)> =
        sql("SELECT rank, ticket_id, participant_id FROM round_reserves
         WHERE campaign_id = $1 AND round = $2 ORDER BY rank")
        .bind(prize.campaign_id.as_str())
        .bind(prize.round)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.get("rank")?,
                r.get("ticket_id")?,
                r.get("participant_id")?,
            ))
        })
        .collect::<StoreResult<_>>()?;
    let used: Vec<u32> = sql("SELECT reserve_rank FROM reallocations
         WHERE campaign_id = $1 AND round = $2 AND reserve_rank IS NOT NULL")
    .bind(prize.campaign_id.as_str())
    .bind(prize.round)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| r.get("reserve_rank"))
    .collect::<StoreResult<_>>()?;
    let ranks: Vec<u32> = reserves.iter().map(|r| r.0).collect();
    let next = crate::domain::claim::next_reserve(&ranks, &used);
    let seq: u32 = sql("SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM reallocations
         WHERE campaign_id = $1 AND round = $2")
    .bind(prize.campaign_id.as_str())
    .bind(prize.round)
    .fetch_one(&mut *tx)
    .await?
    .get("seq")?;
    let r = Reallocation {
        seq,
        forfeited_rank: prize.rank,
        reason,
        reserve_rank: next,
        tier: prize.tier.clone(),
        at,
    };
    sql("INSERT INTO reallocations
             (campaign_id, round, seq, forfeited_rank, reason, reserve_rank, tier, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
    .bind(prize.campaign_id.as_str())
    .bind(prize.round)
    .bind(seq)
    .bind(prize.rank)
    .bind(reason.as_str())
    .bind(next)
    .bind(prize.tier.as_str())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    if let Some(rank) = next {
        let (_, ticket, holder) = reserves
            .iter()
            .find(|x| x.0 == rank)
            .copied()
            .ok_or_else(|| StoreError::Database(format!("reserve {rank} vanished")))?;
        sql(
            "INSERT INTO round_winners (campaign_id, round, rank, ticket_id, participant_id, tier,
                 promoted_from, claim_deadline)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(prize.campaign_id.as_str())
        .bind(prize.round)
        .bind(rank)
        .bind(ticket)
        .bind(holder)
        .bind(prize.tier.as_str())
        .bind(prize.rank)
        .bind(at + chrono::Duration::days(i64::from(f.claim_days)))
        .execute(&mut *tx)
        .await?;
        let issued: Vec<(u32, Uuid, &str)> = kinds_of_tier(&f.tier_kinds, &prize.tier)
            .iter()
            .map(|k| (rank, holder, k.as_str()))
            .collect();
        let issued = issue_vouchers::<D>(tx, &prize.campaign_id, prize.round, &issued, at).await?;
        append::<D>(tx, reallocation_event(actor, prize.round, &r), at).await?;
        append::<D>(tx, issue_event(actor, prize.round, &issued), at).await?;
    } else {
        append::<D>(tx, reallocation_event(actor, prize.round, &r), at).await?;
    }
    Ok(Some(r))
}

// ---- the store ---------------------------------------------------------------------------------

#[async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    fn backend(&self) -> &'static str {
        D::NAME
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.db.migrate().await
    }

    async fn backup_into(&self, path: &std::path::Path) -> StoreResult<()> {
        self.db.backup_into(path).await
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.db.reader().await?;
        sql("SELECT 1 AS one").fetch_one(&mut *conn).await?;
        Ok(())
    }

    async fn probe_write(&self, at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        sql("UPDATE service_probe SET at = $1 WHERE id = 1")
            .bind(at)
            .execute(&mut *tx)
            .await?;
        D::commit(tx).await
    }

    async fn recorded_campaign(&self) -> StoreResult<Option<Campaign>> {
        let mut conn = self.db.reader().await?;
        recorded(&mut *conn).await
    }

    async fn sync_campaign(&self, c: &Campaign, at: DateTime<Utc>) -> StoreResult<SyncOutcome> {
        let mut tx = self.db.begin().await?;
        // Two instances starting together must not both create the campaign.
        D::lock_key(&mut tx, "campaign-sync").await?;
        let old = recorded(&mut *tx).await?;
        let progress = match &old {
            Some(old) => progress(&mut *tx, &old.id).await?,
            None => Vec::new(),
        };
        let outcome = plan_sync(old.as_ref(), &progress, c)?;
        if outcome == SyncOutcome::Unchanged {
            return Ok(outcome);
        }
        sql(
            "INSERT INTO campaigns (id, name, time_zone, first_round_start, win_limit,
                 min_witnesses, definition, synced_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone,
                first_round_start = excluded.first_round_start, win_limit = excluded.win_limit,
                min_witnesses = excluded.min_witnesses, definition = excluded.definition,
                synced_at = excluded.synced_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.time_zone)
        .bind(c.first_round_start)
        .bind(c.win_limit)
        .bind(c.min_witnesses)
        .bind(to_json(c)?)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        for r in &c.rounds {
            // Only pending rounds move; settled ones were checked to be unchanged.
            sql("INSERT INTO rounds (campaign_id, number, opens_at, closes_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (campaign_id, number) DO UPDATE
                 SET opens_at = excluded.opens_at, closes_at = excluded.closes_at
                 WHERE rounds.progress = 'pending'")
            .bind(&c.id)
            .bind(r.number)
            .bind(r.opens_at)
            .bind(r.closes_at)
            .execute(&mut *tx)
            .await?;
        }
        sql("DELETE FROM rounds WHERE campaign_id = $1 AND number > $2 AND progress = 'pending'")
            .bind(&c.id)
            .bind(c.rounds.len() as u32)
            .execute(&mut *tx)
            .await?;
        for k in &c.voucher_kinds {
            sql("INSERT INTO voucher_kinds (campaign_id, code, name, category, policy, valid_from,
                     valid_until, face_value_yuan, holder_check)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (campaign_id, code) DO UPDATE SET name = excluded.name,
                    category = excluded.category, policy = excluded.policy,
                    valid_from = excluded.valid_from, valid_until = excluded.valid_until,
                    face_value_yuan = excluded.face_value_yuan, holder_check = excluded.holder_check")
            .bind(&c.id)
            .bind(&k.code)
            .bind(&k.name)
            .bind(k.category.as_str())
            .bind(k.policy.as_str())
            .bind(k.valid_from)
            .bind(k.valid_until)
            .bind(k.face_value_yuan)
            .bind(k.holder_check)
            .execute(&mut *tx)
            .await?;
        }
        for gone in old
            .iter()
            .flat_map(|o| &o.voucher_kinds)
            .filter(|k| c.voucher_kind(&k.code).is_none())
        {
            sql("DELETE FROM voucher_kinds WHERE campaign_id = $1 AND code = $2")
                .bind(&c.id)
                .bind(&gone.code)
                .execute(&mut *tx)
                .await?;
        }
        sql("DELETE FROM prize_tiers WHERE campaign_id = $1")
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        for (position, t) in c.tiers.iter().enumerate() {
            sql(
                "INSERT INTO prize_tiers (campaign_id, position, name, label, count, voucher_kinds)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&c.id)
            .bind(position as u32)
            .bind(&t.name)
            .bind(&t.label)
            .bind(t.count)
            .bind(t.voucher_kinds.join(","))
            .execute(&mut *tx)
            .await?;
        }
        sql("UPDATE venues SET active = FALSE WHERE campaign_id = $1")
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        for v in &c.venues {
            sql(
                "INSERT INTO venues (id, campaign_id, name, category, example, active)
                 VALUES ($1, $2, $3, $4, $5, TRUE)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category,
                    example = excluded.example, active = TRUE
                 WHERE venues.campaign_id = excluded.campaign_id",
            )
            .bind(&v.id)
            .bind(&c.id)
            .bind(&v.name)
            .bind(v.category.as_str())
            .bind(v.example)
            .execute(&mut *tx)
            .await?;
        }
        append::<D>(&mut tx, sync_event(c, outcome), at).await?;
        D::commit(tx).await?;
        Ok(outcome)
    }

    async fn round_progress(&self, campaign_id: &str) -> StoreResult<Vec<(u32, RoundProgress)>> {
        let mut conn = self.db.reader().await?;
        progress(&mut *conn, campaign_id).await
    }

    async fn create_token(
        &self,
        t: NewToken,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TokenRecord> {
        let mut tx = self.db.begin().await?;
        if let Some(venue) = &t.venue_id {
            let active = sql("SELECT active FROM venues WHERE id = $1")
                .bind(venue)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.get::<bool>("active"))
                .transpose()?;
            let venue = venue.clone();
            match active {
                None => return Err(Refusal::UnknownVenue { venue }.into()),
                Some(false) => return Err(Refusal::VenueInactive { venue }.into()),
                Some(true) => {}
            }
        }
        let record = TokenRecord {
            id: Uuid::new_v4(),
            name: t.name,
            role: t.role,
            venue_id: t.venue_id,
            created_at: at,
            revoked_at: None,
        };
        sql(
            "INSERT INTO api_tokens (id, name, role, venue_id, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.id)
        .bind(&record.name)
        .bind(record.role.as_str())
        .bind(&record.venue_id)
        .bind(&t.token_hash)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        append::<D>(&mut tx, token_event(actor, "token.create", &record), at).await?;
        D::commit(tx).await?;
        Ok(record)
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(token_from_row)
        .transpose()
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
        ))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(token_from_row)
        .collect()
    }

    async fn revoke_token(
        &self,
        id: Uuid,
        keep_an_operator: bool,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TokenRecord> {
        let mut tx = self.db.begin().await?;
        if keep_an_operator {
            // Revocations queue here, so that two operators revoking each other at once
            // cannot both leave the other last.
            D::lock_key(&mut tx, "token-revocation").await?;
            let others: u32 = sql("SELECT COUNT(*) AS n FROM api_tokens
                 WHERE role = 'operator' AND revoked_at IS NULL AND id <> $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .get("n")?;
            let target = sql("SELECT role FROM api_tokens WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.get::<String>("role"))
                .transpose()?;
            if target.as_deref() == Some("operator") && others == 0 {
                return Err(Refusal::LastOperator.into());
            }
        }
        let row = sql(format!(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL
             RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(at)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let exists = sql("SELECT 1 AS found FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => Refusal::AlreadyRevoked,
                None => Refusal::TokenNotFound,
            }
            .into());
        };
        let record = token_from_row(&row)?;
        append::<D>(&mut tx, token_event(actor, "token.revoke", &record), at).await?;
        D::commit(tx).await?;
        Ok(record)
    }

    async fn append_audit(&self, event: AuditEvent, at: DateTime<Utc>) -> StoreResult<AuditEntry> {
        let mut tx = self.db.begin().await?;
        let entry = append::<D>(&mut tx, event, at).await?;
        D::commit(tx).await?;
        Ok(entry)
    }

    async fn audit_page(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let mut conn = self.db.reader().await?;
        sql(
            "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(audit_from_row)
        .collect()
    }

    async fn audit_head(&self) -> StoreResult<(i64, String)> {
        let mut conn = self.db.reader().await?;
        let row = sql("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        Ok((row.get("seq")?, row.get("hash")?))
    }

    // ---- participants -------------------------------------------------------------------------

    async fn participant_by_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Participant>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM participant_sessions s
             JOIN participants p ON p.id = s.participant_id
             WHERE s.token_hash = $1 AND s.expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(participant_from_row)
        .transpose()
    }

    async fn participant_by_phone(&self, phone: &str) -> StoreResult<Option<Participant>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM participants p WHERE p.phone = $1"
        ))
        .bind(phone)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(participant_from_row)
        .transpose()
    }

    async fn end_session(&self, token_hash: &str) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        sql("DELETE FROM participant_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        D::commit(tx).await
    }

    async fn service_secret(&self, name: &str, fresh: &str) -> StoreResult<String> {
        let mut tx = self.db.begin().await?;
        sql("INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(fresh)
            .execute(&mut *tx)
            .await?;
        let row = sql("SELECT value FROM service_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        let value = row.get("value")?;
        D::commit(tx).await?;
        Ok(value)
    }

    async fn issue_login_code(
        &self,
        code: LoginCode,
        limits: &LoginLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        // One phone's requests queue here, so that two at once cannot both pass the limits.
        D::lock_key(&mut tx, &format!("login-code:{}", code.phone)).await?;
        let day = chrono::Duration::days(1);
        let times = |rows: Vec<D::Row>| {
            rows.iter()
                .map(|r| r.get::<DateTime<Utc>>("created_at"))
                .collect::<StoreResult<Vec<_>>>()
        };
        // Newest first, no more than the day's cap needs.
        let phone_times = times(
            sql(
                "SELECT created_at FROM login_codes WHERE phone = $1 AND created_at > $2
                 ORDER BY created_at DESC LIMIT $3",
            )
            .bind(&code.phone)
            .bind(now - day)
            .bind(limits.phone_per_day.max(limits.phone_per_hour))
            .fetch_all(&mut *tx)
            .await?,
        )?;
        let address_times = times(
            sql(
                "SELECT created_at FROM login_codes WHERE requested_from = $1 AND created_at > $2
                 ORDER BY created_at DESC LIMIT $3",
            )
            .bind(&code.requested_from)
            .bind(now - day)
            .bind(limits.address_per_day.max(limits.address_per_hour))
            .fetch_all(&mut *tx)
            .await?,
        )?;
        crate::domain::throttle::may_send_code(&phone_times, &address_times, limits, now)?;
        // The campaign-wide budget: every code request queues here (after its phone's lock),
        // so that instances together stay within it.
        D::lock_key(&mut tx, "sms-budget").await?;
        let hour_ago = now - chrono::Duration::hours(1);
        let in_hour = sms_queued_after(&mut *tx, hour_ago).await?;
        if in_hour >= limits.sms_per_hour {
            let frees_at = sql("SELECT created_at FROM sms_outbox WHERE created_at > $1
                 ORDER BY created_at LIMIT 1 OFFSET $2")
            .bind(hour_ago)
            .bind((in_hour - limits.sms_per_hour.max(0)).max(0))
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get::<DateTime<Utc>>("created_at"))
            .transpose()?;
            crate::domain::throttle::may_queue_sms(in_hour, limits.sms_per_hour, frees_at, now)?;
        }
        let spent = sql(
            "INSERT INTO spent_challenges (nonce, expires_at) VALUES ($1, $2)
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(&code.challenge.nonce)
        .bind(code.challenge.expires_at)
        .execute(&mut *tx)
        .await?;
        if spent == 0 {
            return Err(Refusal::ChallengeUsed.into());
        }
        sql(
            "INSERT INTO login_codes (id, phone, code_hash, requested_from, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::new_v4())
        .bind(&code.phone)
        .bind(&code.code_hash)
        .bind(&code.requested_from)
        .bind(now)
        .bind(code.expires_at)
        .execute(&mut *tx)
        .await?;
        queue_sms(&mut *tx, &code.sms, now).await?;
        D::commit(tx).await
    }

    async fn verify_login_code(
        &self,
        phone: &str,
        code_hash: &str,
        session: NewSession,
        newcomer: Option<Newcomer>,
        limits: &LoginLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<LoginOutcome> {
        let mut tx = self.db.begin().await?;
        // Only the newest code sent to the phone counts: a new one ends the older ones, also
        // once it is used.
        let row = sql("SELECT id, code_hash, tries, used_at FROM login_codes
             WHERE phone = $1 AND expires_at > $2
             ORDER BY created_at DESC LIMIT 1")
        .bind(phone)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(LoginOutcome::NoActiveCode);
        };
        if row.get::<Option<DateTime<Utc>>>("used_at")?.is_some() {
            return Ok(LoginOutcome::NoActiveCode);
        }
        let id: Uuid = row.get("id")?;
        let stored: String = row.get("code_hash")?;
        // Count the try first, conditionally, so that parallel guesses cannot exceed the limit.
        let tries = sql(
            "UPDATE login_codes SET tries = tries + 1 WHERE id = $1 AND tries < $2 RETURNING tries",
        )
        .bind(id)
        .bind(limits.max_tries)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(tries) = tries else {
            return Ok(LoginOutcome::TooManyTries);
        };
        let tries: i32 = tries.get("tries")?;
        if stored != code_hash {
            D::commit(tx).await?;
            return Ok(LoginOutcome::WrongCode {
                tries_left: (limits.max_tries - tries).max(0) as u32,
            });
        }
        let by_phone =
            format!("SELECT {PARTICIPANT_COLUMNS} FROM participants p WHERE p.phone = $1");
        let known = sql(&by_phone)
            .bind(phone)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(participant_from_row)
            .transpose()?;
        let (participant, registered) = match (known, newcomer) {
            (Some(p), _) => (p, false),
            // The right code for a phone that takes no part yet, without consent: nothing is
            // written (this try included), so the same code works once consent is given.
            (None, None) => return Ok(LoginOutcome::ConsentNeeded),
            (None, Some(n)) => {
                let created = sql(
                    "INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (phone) DO NOTHING",
                )
                .bind(Uuid::new_v4())
                .bind(phone)
                .bind(&n.display_name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let p = sql(&by_phone).bind(phone).fetch_one(&mut *tx).await?;
                (participant_from_row(&p)?, created == 1)
            }
        };
        let used = sql("UPDATE login_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if used != 1 {
            return Ok(LoginOutcome::NoActiveCode);
        }
        insert_session(&mut *tx, participant.id, &session, now).await?;
        D::commit(tx).await?;
        Ok(LoginOutcome::LoggedIn {
            participant,
            registered,
        })
    }

    async fn sms_queued_since(&self, since: DateTime<Utc>) -> StoreResult<u64> {
        let mut conn = self.db.reader().await?;
        Ok(sms_queued_after(&mut *conn, since).await?.max(0) as u64)
    }

    async fn enqueue_sms(&self, sms: &NewSms, at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        queue_sms(&mut *tx, sms, at).await?;
        D::commit(tx).await
    }

    async fn outbox_counts(&self, since: DateTime<Utc>) -> StoreResult<OutboxCounts> {
        let mut conn = self.db.reader().await?;
        let mut counts = OutboxCounts::default();
        for r in sql(
            "SELECT status, COUNT(*) AS n FROM sms_outbox WHERE created_at > $1
             GROUP BY status",
        )
        .bind(since)
        .fetch_all(&mut *conn)
        .await?
        {
            let n = r.get::<i64>("n")?.max(0) as u64;
            match crate::domain::sms::Status::parse(&r.get::<String>("status")?) {
                Some(crate::domain::sms::Status::Queued) => counts.queued = n,
                Some(crate::domain::sms::Status::Sending) => counts.sending = n,
                Some(crate::domain::sms::Status::Sent) => counts.sent = n,
                Some(crate::domain::sms::Status::Delivered) => counts.delivered = n,
                Some(crate::domain::sms::Status::Failed) => counts.failed = n,
                None => {}
            }
        }
        Ok(counts)
    }

    async fn pending_sms(&self, limit: u32) -> StoreResult<Vec<SmsMessage>> {
        self.outbox_rows(
            "WHERE status IN ('queued', 'sending') ORDER BY id LIMIT $1",
            limit,
        )
        .await
    }

    async fn recent_sms(&self, limit: u32) -> StoreResult<Vec<SmsMessage>> {
        self.outbox_rows("ORDER BY id DESC LIMIT $1", limit).await
    }

    async fn claim_sms(
        &self,
        limit: u32,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SmsMessage>> {
        let mut tx = self.db.begin().await?;
        sql(
            "UPDATE sms_outbox SET status = 'failed', failure = 'expired'
             WHERE status = 'queued' AND send_before <= $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sql(
            "UPDATE sms_outbox SET status = 'failed', lease_until = NULL,
             failure = 'outcome_unknown: the sender stopped during the try'
             WHERE status = 'sending' AND lease_until <= $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Another instance's sender skips what this one has locked (and the outer status check
        // keeps a row that changed meanwhile from being claimed twice).
        let mut claimed = sql(format!(
            "WITH due AS MATERIALIZED (
                 SELECT id FROM sms_outbox
                 WHERE status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
                 ORDER BY id LIMIT $3{})
             UPDATE sms_outbox SET status = 'sending', attempts = attempts + 1, lease_until = $1
             WHERE id IN (SELECT id FROM due) AND status = 'queued'
             RETURNING {SMS_COLUMNS}",
            dialect::skip_locked::<D>()
        ))
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(sms_message)
        .collect::<StoreResult<Vec<_>>>()?;
        D::commit(tx).await?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn record_sms_outcome(
        &self,
        id: i64,
        outcome: &crate::domain::sms::Outcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        use crate::domain::sms::Outcome;
        let q = match outcome {
            Outcome::Sent { gateway_id } => sql(
                "UPDATE sms_outbox SET status = 'sent', sent_at = $1, gateway_id = $2,
                 failure = NULL, lease_until = NULL WHERE id = $3 AND status = 'sending'",
            )
            .bind(now)
            .bind(gateway_id),
            Outcome::Retry { reason, at } => sql(
                "UPDATE sms_outbox SET status = 'queued', next_attempt_at = $1, failure = $2,
                 lease_until = NULL WHERE id = $3 AND status = 'sending'",
            )
            .bind(*at)
            .bind(reason),
            Outcome::Failed { reason } => sql(
                "UPDATE sms_outbox SET status = 'failed', failure = $1, lease_until = NULL
                 WHERE id = $2 AND status = 'sending'",
            )
            .bind(reason),
        };
        let mut tx = self.db.begin().await?;
        let done = q.bind(id).execute(&mut *tx).await?;
        D::commit(tx).await?;
        Ok(done == 1)
    }

    async fn record_deliveries(&self, reports: &[DeliveryReport]) -> StoreResult<u64> {
        let mut tx = self.db.begin().await?;
        let mut changed = 0;
        for report in reports {
            changed += if report.delivered {
                sql(
                    "UPDATE sms_outbox SET status = 'delivered', delivered_at = $1
                     WHERE gateway_id = $2 AND status = 'sent'",
                )
                .bind(report.at)
            } else {
                sql("UPDATE sms_outbox SET status = 'failed', failure = $1
                     WHERE gateway_id = $2 AND status = 'sent'")
                .bind(format!(
                    "undelivered: {}",
                    report.reason.as_deref().unwrap_or("no reason given")
                ))
            }
            .bind(&report.gateway_id)
            .execute(&mut *tx)
            .await?;
        }
        D::commit(tx).await?;
        Ok(changed)
    }

    // ---- the quiz and tickets -------------------------------------------------------------------

    async fn start_attempt(&self, a: NewAttempt, daily_limit: u32) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        let counted = sql(
            "INSERT INTO attempt_days (participant_id, local_day, started) VALUES ($1, $2, 1)
             ON CONFLICT (participant_id, local_day) DO UPDATE
             SET started = attempt_days.started + 1 WHERE attempt_days.started < $3
             RETURNING started",
        )
        .bind(a.participant_id)
        .bind(a.local_day.to_string())
        .bind(daily_limit)
        .fetch_optional(&mut *tx)
        .await?;
        if counted.is_none() {
            return Ok(false);
        }
        sql("INSERT INTO quiz_attempts
                 (id, participant_id, questions, started_at, deadline, local_day, network, device)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(a.id)
        .bind(a.participant_id)
        .bind(to_json(&a.questions)?)
        .bind(a.started_at)
        .bind(a.deadline)
        .bind(a.local_day.to_string())
        .bind(&a.network)
        .bind(&a.device)
        .execute(&mut *tx)
        .await?;
        D::commit(tx).await?;
        Ok(true)
    }

    async fn attempt(&self, id: Uuid) -> StoreResult<Option<AttemptRecord>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM quiz_attempts a WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(attempt_from_row)
        .transpose()
    }

    async fn submitted_attempts_of(
        &self,
        participant_id: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<AttemptRecord>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM quiz_attempts a
             WHERE a.participant_id = $1 AND a.submitted_at IS NOT NULL
             ORDER BY a.started_at DESC LIMIT $2"
        ))
        .bind(participant_id)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(attempt_from_row)
        .collect()
    }

    async fn session_attempt(
        &self,
        token_hash: &str,
        attempt_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Participant, Option<AttemptRecord>)>> {
        // One round trip: the session's participant, and the attempt if it is theirs.
        let mut conn = self.db.reader().await?;
        let row = sql(format!(
            "SELECT p.id AS p_id, p.phone, p.display_name, p.created_at AS p_created_at,
                    a.id IS NOT NULL AS has_attempt, {ATTEMPT_COLUMNS}
             FROM participant_sessions s
             JOIN participants p ON p.id = s.participant_id
             LEFT JOIN quiz_attempts a ON a.id = $2 AND a.participant_id = p.id
             WHERE s.token_hash = $1 AND s.expires_at > $3"
        ))
        .bind(token_hash)
        .bind(attempt_id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let participant = Participant {
            id: r.get("p_id")?,
            phone: r.get("phone")?,
            display_name: r.get("display_name")?,
            created_at: r.get("p_created_at")?,
        };
        let attempt = if r.get("has_attempt")? {
            Some(attempt_from_row(&r)?)
        } else {
            None
        };
        Ok(Some((participant, attempt)))
    }

    async fn submit_attempt(&self, s: Submission) -> StoreResult<SubmitOutcome> {
        if let Some(ticket) = self.db.write_submission(&s).await? {
            return Ok(SubmitOutcome::Recorded(ticket));
        }
        // Nothing was written: say why.
        let mut conn = self.db.reader().await?;
        if let Some(session) = &s.session {
            if !live_session(&mut *conn, session, s.participant_id, s.at).await? {
                return Ok(SubmitOutcome::LoggedOut);
            }
        }
        let submitted =
            sql("SELECT submitted_at FROM quiz_attempts WHERE id = $1 AND participant_id = $2")
                .bind(s.attempt_id)
                .bind(s.participant_id)
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.get::<Option<DateTime<Utc>>>("submitted_at"))
                .transpose()?;
        Ok(match submitted {
            None => SubmitOutcome::NotFound,
            Some(Some(_)) => SubmitOutcome::AlreadySubmitted,
            Some(None) => SubmitOutcome::Expired,
        })
    }

    async fn tickets_of(&self, participant_id: Uuid) -> StoreResult<Vec<TicketRecord>> {
        let mut conn = self.db.reader().await?;
        sql(
            "SELECT t.id, t.campaign_id, t.round, t.created_at, e.reason FROM tickets t
             LEFT JOIN ticket_exclusions e ON e.ticket_id = t.id
             WHERE t.participant_id = $1 ORDER BY t.round",
        )
        .bind(participant_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(TicketRecord {
                id: r.get("id")?,
                campaign_id: r.get("campaign_id")?,
                round: r.get("round")?,
                created_at: r.get("created_at")?,
                excluded: r
                    .get::<Option<String>>("reason")?
                    .map(|s| parse_reason(&s))
                    .transpose()?,
            })
        })
        .collect()
    }

    async fn tickets_per_round(&self, campaign_id: &str) -> StoreResult<Vec<(u32, u64)>> {
        let mut conn = self.db.reader().await?;
        sql(
            "SELECT round, COUNT(*) AS tickets FROM tickets WHERE campaign_id = $1
             GROUP BY round ORDER BY round",
        )
        .bind(campaign_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.get("round")?, r.get("tickets")?)))
        .collect()
    }

    async fn tally_attempts(
        &self,
        bank: &crate::domain::quiz::QuestionBank,
        campaign: &crate::domain::campaign::Campaign,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        use crate::domain::figures::{Attempt, Tally};
        let mut tx = self.db.begin().await?;
        // Claimed by this update: another tally at the same time finds them tallied (PostgreSQL
        // re-checks `tallied` after waiting for this transaction's row locks). Submitted ones, and
        // those whose time is up unsubmitted (they can no longer be submitted).
        let rows = sql("UPDATE quiz_attempts SET tallied = TRUE
             WHERE id IN (SELECT id FROM quiz_attempts
                          WHERE tallied = FALSE AND (submitted_at IS NOT NULL OR deadline < $2)
                          ORDER BY deadline LIMIT $1)
               AND tallied = FALSE
             RETURNING participant_id, questions, result, local_day, started_at, score, passed,
                       submitted_at")
        .bind(limit)
        .bind(crate::domain::quiz::due_after(now))
        .fetch_all(&mut *tx)
        .await?;
        let mut tally = Tally::default();
        for r in &rows {
            let questions = parse_questions(&r.get::<String>("questions")?)?;
            let answers: Vec<crate::domain::quiz::Answer> =
                serde_json::from_str(&r.get::<Option<String>>("result")?.unwrap_or_default())
                    .unwrap_or_default();
            let started: DateTime<Utc> = r.get("started_at")?;
            let local_day: String = r.get("local_day")?;
            tally.add(
                bank,
                &Attempt {
                    participant: r.get("participant_id")?,
                    submitted: r.get::<Option<DateTime<Utc>>>("submitted_at")?.is_some(),
                    local_day: &local_day,
                    round: campaign.open_round(started).map_or(0, |w| w.number),
                    passed: r.get::<Option<bool>>("passed")?.unwrap_or(false),
                    score: r.get::<Option<u32>>("score")?.unwrap_or(0),
                    questions: &questions,
                    answers: &answers,
                },
            );
        }
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        // Who is new: per day, per round, in all, as the insert of each set says.
        let mut new_per_day: BTreeMap<(String, u32), u64> = BTreeMap::new();
        let day_takers: Vec<(String, u32, Uuid)> = tally.takers.iter().cloned().collect();
        for chunk in day_takers.chunks(TAKERS_PER_STATEMENT) {
            let inserted = new_takers::<D>(
                &mut tx,
                "quiz_takers (local_day, round, participant_id)",
                "local_day, round, participant_id",
                chunk
                    .iter()
                    .map(|(d, r, p)| vec![Arg::from(d.as_str()), Arg::from(*r), Arg::from(*p)])
                    .collect(),
                "local_day, round",
            )
            .await?;
            for r in inserted {
                *new_per_day
                    .entry((r.get("local_day")?, r.get("round")?))
                    .or_default() += 1;
            }
        }
        let round_takers: BTreeSet<(u32, Uuid)> =
            tally.takers.iter().map(|(_, r, p)| (*r, *p)).collect();
        let mut new_per_round: BTreeMap<u32, u64> = BTreeMap::new();
        for chunk in round_takers
            .iter()
            .collect::<Vec<_>>()
            .chunks(TAKERS_PER_STATEMENT)
        {
            let inserted = new_takers::<D>(
                &mut tx,
                "quiz_round_takers (round, participant_id)",
                "round, participant_id",
                chunk
                    .iter()
                    .map(|(r, p)| vec![Arg::from(*r), Arg::from(*p)])
                    .collect(),
                "round",
            )
            .await?;
            for r in inserted {
                *new_per_round.entry(r.get("round")?).or_default() += 1;
            }
        }
        let people: BTreeSet<Uuid> = tally.takers.iter().map(|(_, _, p)| *p).collect();
        let mut new_people = 0u64;
        for chunk in people
            .iter()
            .collect::<Vec<_>>()
            .chunks(TAKERS_PER_STATEMENT)
        {
            new_people += new_takers::<D>(
                &mut tx,
                "quiz_campaign_takers (participant_id)",
                "participant_id",
                chunk.iter().map(|p| vec![Arg::from(**p)]).collect(),
                "participant_id",
            )
            .await?
            .len() as u64;
        }
        for (key, c) in &tally.days {
            sql("INSERT INTO quiz_day_figures
                     (local_day, round, started, submitted, passed, answered, correct, takers)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (local_day, round) DO UPDATE SET
                     started = quiz_day_figures.started + excluded.started,
                     submitted = quiz_day_figures.submitted + excluded.submitted,
                     passed = quiz_day_figures.passed + excluded.passed,
                     answered = quiz_day_figures.answered + excluded.answered,
                     correct = quiz_day_figures.correct + excluded.correct,
                     takers = quiz_day_figures.takers + excluded.takers")
            .bind(key.0.as_str())
            .bind(key.1)
            .bind(n(c.started))
            .bind(n(c.submitted))
            .bind(n(c.passed))
            .bind(n(c.answered))
            .bind(n(c.correct))
            .bind(n(new_per_day.get(key).copied().unwrap_or(0)))
            .execute(&mut *tx)
            .await?;
        }
        for ((day, round, question), q) in &tally.questions {
            sql("INSERT INTO quiz_question_figures
                     (local_day, round, question_id, topic, answered, correct)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (local_day, round, question_id) DO UPDATE SET
                     answered = quiz_question_figures.answered + excluded.answered,
                     correct = quiz_question_figures.correct + excluded.correct")
            .bind(day.as_str())
            .bind(*round)
            .bind(question.as_str())
            .bind(q.topic.as_str())
            .bind(n(q.answered))
            .bind(n(q.correct))
            .execute(&mut *tx)
            .await?;
        }
        for (round, new) in &new_per_round {
            sql("INSERT INTO quiz_round_figures (round, takers) VALUES ($1, $2)
                 ON CONFLICT (round) DO UPDATE SET takers = quiz_round_figures.takers + excluded.takers")
            .bind(*round)
            .bind(n(*new))
            .execute(&mut *tx)
            .await?;
        }
        if new_people > 0 {
            sql("INSERT INTO quiz_totals (id, takers) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET takers = quiz_totals.takers + excluded.takers")
            .bind(n(new_people))
            .execute(&mut *tx)
            .await?;
        }
        D::commit(tx).await?;
        Ok(rows.len() as u64)
    }

    async fn quiz_figures(&self, now: DateTime<Utc>) -> StoreResult<QuizFigures> {
        use crate::domain::figures::{Counts, QuestionFigures};
        let mut conn = self.db.reader().await?;
        let count = |r: &D::Row, col: &str| -> StoreResult<u64> {
            Ok(r.get::<Option<i64>>(col)?.unwrap_or(0).max(0) as u64)
        };
        let days = sql(
            "SELECT local_day, round, started, submitted, passed, answered, correct, takers
             FROM quiz_day_figures ORDER BY local_day, round",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.get("local_day")?,
                r.get("round")?,
                Counts {
                    started: count(r, "started")?,
                    submitted: count(r, "submitted")?,
                    passed: count(r, "passed")?,
                    answered: count(r, "answered")?,
                    correct: count(r, "correct")?,
                },
                count(r, "takers")?,
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let takers_per_round = sql("SELECT round, takers FROM quiz_round_figures ORDER BY round")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok((r.get("round")?, count(r, "takers")?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let takers = sql("SELECT takers FROM quiz_totals WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| count(&r, "takers"))
            .transpose()?
            .unwrap_or(0);
        let questions = sql(
            // PostgreSQL sums BIGINTs as NUMERIC: cast back.
            "SELECT question_id, MIN(topic) AS topic, CAST(SUM(answered) AS BIGINT) AS answered,
                    CAST(SUM(correct) AS BIGINT) AS correct
             FROM quiz_question_figures GROUP BY question_id ORDER BY question_id",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(QuestionFigures {
                id: r.get("question_id")?,
                topic: r.get("topic")?,
                answered: count(r, "answered")?,
                correct: count(r, "correct")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        // Two ranges of the tally's partial index, not one OR: with the OR, SQLite counted by
        // scanning the table (1.7 s at 5 M attempts).
        let untallied = sql(
            "SELECT (SELECT COUNT(*) FROM quiz_attempts WHERE tallied = FALSE AND deadline < $1)
                  + (SELECT COUNT(*) FROM quiz_attempts
                     WHERE tallied = FALSE AND deadline >= $1 AND submitted_at IS NOT NULL) AS n",
        )
        .bind(crate::domain::quiz::due_after(now))
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| count(&r, "n"))?;
        Ok(QuizFigures {
            days,
            takers_per_round,
            takers,
            questions,
            untallied,
        })
    }

    // ---- draws ------------------------------------------------------------------------------

    async fn round_draw_state(
        &self,
        campaign_id: &str,
        round: u32,
    ) -> StoreResult<Option<RoundDrawState>> {
        let mut conn = self.db.reader().await?;
        draw_state(&mut *conn, campaign_id, round).await
    }

    async fn commit_witness(
        &self,
        campaign_id: &str,
        round: u32,
        witness: &str,
        commitment: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let progress = locked_progress::<D>(&mut tx, campaign_id, round).await?;
        lifecycle::may_commit(round, progress)?;
        let inserted = sql(
            "INSERT INTO witness_commitments (campaign_id, round, witness, commitment, committed_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(campaign_id)
        .bind(round)
        .bind(witness)
        .bind(commitment)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if inserted == 0 {
            return Err(Refusal::AlreadyCommitted {
                round,
                witness: witness.to_owned(),
            }
            .into());
        }
        append::<D>(&mut tx, commit_event(actor, round, witness, commitment), at).await?;
        D::commit(tx).await
    }

    async fn freeze_round(
        &self,
        f: FreezeRound,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let progress = locked_progress::<D>(&mut tx, &f.campaign_id, f.round).await?;
        let previous = match f.round {
            1 => None,
            r => Some(locked_progress::<D>(&mut tx, &f.campaign_id, r - 1).await?),
        };
        let commitments: u32 = sql(
            "SELECT COUNT(*) AS n FROM witness_commitments WHERE campaign_id = $1 AND round = $2",
        )
        .bind(&f.campaign_id)
        .bind(f.round)
        .fetch_one(&mut *tx)
        .await?
        .get("n")?;
        lifecycle::may_freeze(&FreezeFacts {
            round: f.round,
            progress,
            closes_at: f.closes_at,
            closes_at_local: f.closes_at_local.clone(),
            now: at,
            previous,
            commitments,
            min_witnesses: f.min_witnesses,
        })?;
        let (previous_offered, previous_awarded) = if previous.is_some() {
            let prizes = sql("SELECT prizes FROM rounds WHERE campaign_id = $1 AND number = $2")
                .bind(&f.campaign_id)
                .bind(f.round - 1)
                .fetch_one(&mut *tx)
                .await?
                .get::<Option<String>>("prizes")?;
            let awarded = sql("SELECT tier, COUNT(*) AS n FROM round_winners
                 WHERE campaign_id = $1 AND round = $2 AND promoted_from IS NULL GROUP BY tier")
            .bind(&f.campaign_id)
            .bind(f.round - 1)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.get::<String>("tier")?, r.get::<u32>("n")?)))
            .collect::<StoreResult<std::collections::HashMap<_, _>>>()?;
            (parse_prizes(prizes.as_deref())?, awarded)
        } else {
            (Vec::new(), std::collections::HashMap::new())
        };
        let sorted = sorted_out_of::<D>(&mut tx, &f.campaign_id, f.round, f.win_limit).await?;
        let entries = &sorted.entries;
        let root = hex::encode(crate::domain::draw::entries_root(entries));
        let excluded_root = hex::encode(crate::domain::exclusion::exclusions_root(
            &sorted.exclusions,
        ));
        let by_reason = crate::domain::exclusion::by_reason(&sorted.exclusions);
        let prizes =
            lifecycle::prizes_with_rollover(&f.base_prizes, &previous_offered, &previous_awarded);
        sql(
            "UPDATE rounds SET progress = 'frozen', frozen_at = $1, entry_count = $2,
                 entries_root = $3, beacon_source = $4, prizes = $5, tickets_issued = $6,
                 exclusion_count = $7, exclusions_root = $8, exclusions_by_reason = $9
             WHERE campaign_id = $10 AND number = $11 AND progress = 'pending'",
        )
        .bind(at)
        .bind(entries.len() as u32)
        .bind(&root)
        .bind(&f.beacon_source)
        .bind(prizes_json(&prizes)?)
        .bind((entries.len() + sorted.exclusions.len()) as u32)
        .bind(sorted.exclusions.len() as u32)
        .bind(&excluded_root)
        .bind(to_json(&by_reason)?)
        .bind(&f.campaign_id)
        .bind(f.round)
        .execute(&mut *tx)
        .await?;
        let event = freeze_event(
            actor,
            f.round,
            entries.len(),
            &root,
            &prizes,
            &f.beacon_source,
            (&excluded_root, &by_reason),
        );
        let entry = append::<D>(&mut tx, event, at).await?;
        sql(
            "UPDATE rounds SET audit_seq_at_freeze = $1, audit_hash_at_freeze = $2
             WHERE campaign_id = $3 AND number = $4",
        )
        .bind(entry.seq)
        .bind(&entry.hash)
        .bind(&f.campaign_id)
        .bind(f.round)
        .execute(&mut *tx)
        .await?;
        D::commit(tx).await
    }

    async fn reveal_secret(
        &self,
        campaign_id: &str,
        round: u32,
        witness: &str,
        secret_hex: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let progress = locked_progress::<D>(&mut tx, campaign_id, round).await?;
        let step = match sql("SELECT secret FROM witness_commitments
             WHERE campaign_id = $1 AND round = $2 AND witness = $3")
        .bind(campaign_id)
        .bind(round)
        .bind(witness)
        .fetch_optional(&mut *tx)
        .await?
        {
            None => WitnessStep::NotCommitted,
            Some(r) if r.get::<Option<String>>("secret")?.is_some() => WitnessStep::Revealed,
            Some(_) => WitnessStep::Committed,
        };
        lifecycle::may_reveal(round, witness, progress, step)?;
        sql(
            "UPDATE witness_commitments SET secret = $1, revealed_at = $2
             WHERE campaign_id = $3 AND round = $4 AND witness = $5 AND secret IS NULL",
        )
        .bind(secret_hex)
        .bind(at)
        .bind(campaign_id)
        .bind(round)
        .bind(witness)
        .execute(&mut *tx)
        .await?;
        append::<D>(&mut tx, reveal_event(actor, round, witness), at).await?;
        D::commit(tx).await
    }

    async fn draw_round(&self, d: DrawRound, actor: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        // Lock the round: a second draw waits here, then finds it drawn.
        let progress = locked_progress::<D>(&mut tx, &d.campaign_id, d.round).await?;
        let state = draw_state(&mut *tx, &d.campaign_id, d.round)
            .await?
            .ok_or(Refusal::RoundNotFound { round: d.round })?;
        let unrevealed: Vec<&str> = state
            .witnesses
            .iter()
            .filter(|w| w.secret.is_none())
            .map(|w| w.name.as_str())
            .collect();
        let declared = state.beacon_source.as_deref().unwrap_or_default();
        let beacon = lifecycle::may_draw(d.round, progress, &unrevealed, declared, &d.beacon)?;
        let secrets = state
            .witnesses
            .iter()
            .map(|w| {
                let secret = hex::decode(w.secret.as_deref().unwrap_or_default()).map_err(|e| {
                    StoreError::Database(format!("stored secret of {} is not hex: {e}", w.name))
                })?;
                Ok((w.name.clone(), secret))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let entries = sorted_out_of::<D>(&mut tx, &d.campaign_id, d.round, d.win_limit)
            .await?
            .entries;
        let root = hex::encode(crate::domain::draw::entries_root(&entries));
        if state.entry_count != Some(entries.len() as u64)
            || state.entries_root.as_deref() != Some(root.as_str())
        {
            return Err(StoreError::Database(format!(
                "the eligible tickets of round {} no longer match those frozen",
                d.round
            )));
        }
        let result = crate::domain::draw::draw_with_reserves(
            &d.campaign_id,
            d.round,
            &entries,
            &secrets,
            &beacon.value,
            &state.prizes,
            d.reserves,
        );
        drop(entries);
        // Set-based: winners (their participant found by a join) and vouchers a thousand rows
        // a statement.
        let mut holders = std::collections::HashMap::with_capacity(result.winners.len());
        for chunk in result.winners.chunks(ROWS_PER_INSERT) {
            let mut q = sql(format!(
                "INSERT INTO round_winners
                     (campaign_id, round, rank, ticket_id, participant_id, tier, claim_deadline)
                 SELECT {}, {}, w.column1, t.id, t.participant_id, w.column3, {}
                 FROM ({}) w JOIN tickets t ON t.id = w.column2
                 RETURNING rank, participant_id",
                D::placeholder(1),
                D::placeholder(2),
                D::placeholder(3),
                values::<D>(chunk.len(), 3, 4)
            ))
            .bind(d.campaign_id.as_str())
            .bind(d.round)
            .bind(d.claim_deadline);
            for w in chunk {
                q = q.bind(w.rank).bind(w.ticket).bind(w.tier.as_str());
            }
            let rows = q.fetch_all(&mut *tx).await?;
            if rows.len() != chunk.len() {
                return Err(StoreError::Database(format!(
                    "{} of {} winners of round {} have no ticket",
                    chunk.len() - rows.len(),
                    chunk.len(),
                    d.round
                )));
            }
            for r in &rows {
                holders.insert(r.get::<u32>("rank")?, r.get::<Uuid>("participant_id")?);
            }
        }
        for chunk in result.reserves.chunks(ROWS_PER_INSERT) {
            let mut q = sql(format!(
                "INSERT INTO round_reserves (campaign_id, round, rank, ticket_id, participant_id)
                 SELECT {}, {}, r.column1, t.id, t.participant_id
                 FROM ({}) r JOIN tickets t ON t.id = r.column2",
                D::placeholder(1),
                D::placeholder(2),
                values::<D>(chunk.len(), 2, 3)
            ))
            .bind(d.campaign_id.as_str())
            .bind(d.round);
            for r in chunk {
                q = q.bind(r.rank).bind(r.ticket);
            }
            q.execute(&mut *tx).await?;
        }
        let kinds_of = |tier: &str| kinds_of_tier(&d.tier_kinds, tier);
        let mut issued = Vec::new();
        for w in &result.winners {
            let holder = holders.get(&w.rank).copied().ok_or_else(|| {
                StoreError::Database(format!("winner of rank {} has no holder", w.rank))
            })?;
            for kind in kinds_of(&w.tier) {
                issued.push((w.rank, holder, kind.as_str()));
            }
        }
        let issued = issue_vouchers::<D>(&mut tx, &d.campaign_id, d.round, &issued, at).await?;
        sql(
            "UPDATE rounds SET progress = 'drawn', beacon = $1, seed = $2, drawn_at = $3,
                 beacon_signature = $6
             WHERE campaign_id = $4 AND number = $5 AND progress = 'frozen'",
        )
        .bind(&beacon.value)
        .bind(hex::encode(result.seed))
        .bind(at)
        .bind(&d.campaign_id)
        .bind(d.round)
        .bind(beacon.signature.as_deref())
        .execute(&mut *tx)
        .await?;
        append::<D>(&mut tx, draw_event(actor, d.round, &beacon, &result), at).await?;
        let entry = append::<D>(&mut tx, issue_event(actor, d.round, &issued), at).await?;
        sql(
            "UPDATE rounds SET audit_seq_at_draw = $1, audit_hash_at_draw = $2
             WHERE campaign_id = $3 AND number = $4",
        )
        .bind(entry.seq)
        .bind(&entry.hash)
        .bind(&d.campaign_id)
        .bind(d.round)
        .execute(&mut *tx)
        .await?;
        D::commit(tx).await
    }

    async fn round_sorted_out(
        &self,
        campaign_id: &str,
        round: u32,
        win_limit: u32,
    ) -> StoreResult<SortedOut> {
        let mut conn = self.db.reader().await?;
        sorted_out_of::<D>(&mut conn, campaign_id, round, win_limit).await
    }

    async fn exclude_tickets(
        &self,
        x: &Exclusion,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.db.begin().await?;
        let progress = locked_progress::<D>(&mut tx, &x.campaign_id, x.round).await?;
        lifecycle::may_change_tickets(x.round, progress)?;
        let mut excluded = Vec::new();
        for ticket in &x.tickets {
            let held = sql(
                "SELECT 1 AS held FROM tickets WHERE id = $1 AND campaign_id = $2 AND round = $3",
            )
            .bind(*ticket)
            .bind(&x.campaign_id)
            .bind(x.round)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_none() {
                return Err(Refusal::NotATicket {
                    round: x.round,
                    ticket: ticket.to_string(),
                }
                .into());
            }
            let new = sql("INSERT INTO ticket_exclusions
                     (ticket_id, campaign_id, round, reason, note, excluded_by, excluded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ticket_id) DO NOTHING")
            .bind(*ticket)
            .bind(&x.campaign_id)
            .bind(x.round)
            .bind(x.reason.as_str())
            .bind(&x.note)
            .bind(actor)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if new == 1 {
                append::<D>(&mut tx, exclusion_event(actor, x, *ticket), at).await?;
                excluded.push(*ticket);
            }
        }
        D::commit(tx).await?;
        Ok(excluded)
    }

    async fn restore_tickets(
        &self,
        campaign_id: &str,
        round: u32,
        tickets: &[Uuid],
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.db.begin().await?;
        let progress = locked_progress::<D>(&mut tx, campaign_id, round).await?;
        lifecycle::may_change_tickets(round, progress)?;
        let mut restored = Vec::new();
        for ticket in tickets {
            let gone = sql(
                "DELETE FROM ticket_exclusions WHERE ticket_id = $1 AND campaign_id = $2 AND round = $3",
            )
            .bind(*ticket)
            .bind(campaign_id)
            .bind(round)
            .execute(&mut *tx)
            .await?;
            if gone == 1 {
                append::<D>(&mut tx, restore_event(actor, round, *ticket), at).await?;
                restored.push(*ticket);
            }
        }
        D::commit(tx).await?;
        Ok(restored)
    }

    async fn round_review(&self, campaign_id: &str, round: u32) -> StoreResult<Vec<TicketFacts>> {
        let mut conn = self.db.reader().await?;
        sql("SELECT t.id, p.phone, a.started_at, a.submitted_at, a.questions, a.network, a.device,
                    COUNT(*) OVER (PARTITION BY COALESCE(a.network, CAST(t.id AS TEXT))) AS same_network,
                    COUNT(*) OVER (PARTITION BY COALESCE(a.device, CAST(t.id AS TEXT))) AS same_device,
                    e.reason
             FROM tickets t
             JOIN participants p ON p.id = t.participant_id
             JOIN quiz_attempts a ON a.id = t.attempt_id
             LEFT JOIN ticket_exclusions e ON e.ticket_id = t.id
             WHERE t.campaign_id = $1 AND t.round = $2
             ORDER BY t.id")
        .bind(campaign_id)
        .bind(round)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            let questions = parse_questions(&r.get::<String>("questions")?)?;
            Ok(TicketFacts {
                ticket: r.get("id")?,
                phone: r.get("phone")?,
                started_at: r.get("started_at")?,
                submitted_at: r
                    .get::<Option<DateTime<Utc>>>("submitted_at")?
                    .unwrap_or(r.get("started_at")?),
                questions: questions.len() as u32,
                network: r.get("network")?,
                device: r.get("device")?,
                same_network: r.get::<i64>("same_network")?.max(1) as u64,
                same_device: r.get::<i64>("same_device")?.max(1) as u64,
                excluded: r
                    .get::<Option<String>>("reason")?
                    .map(|s| parse_reason(&s))
                    .transpose()?,
            })
        })
        .collect()
    }

    // ---- claims ---------------------------------------------------------------------------------

    async fn prizes_of(&self, participant_id: Uuid) -> StoreResult<Vec<PrizeState>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {PRIZE_COLUMNS} FROM round_winners w WHERE w.participant_id = $1
             ORDER BY w.round, w.rank"
        ))
        .bind(participant_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(prize_from_row)
        .collect()
    }

    async fn claim_prize(
        &self,
        campaign_id: &str,
        round: u32,
        participant_id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<PrizeState> {
        let mut tx = self.db.begin().await?;
        let prize = held_prize::<D>(&mut tx, campaign_id, round, participant_id).await?;
        if crate::domain::claim::may_claim(round, prize.standing, at)? {
            sql("UPDATE round_winners SET claimed_at = $1
                 WHERE campaign_id = $2 AND round = $3 AND rank = $4
                   AND claimed_at IS NULL AND forfeited_at IS NULL")
            .bind(at)
            .bind(campaign_id)
            .bind(round)
            .bind(prize.rank)
            .execute(&mut *tx)
            .await?;
            append::<D>(&mut tx, claim_event(actor, &prize), at).await?;
        }
        let prize = held_prize::<D>(&mut tx, campaign_id, round, participant_id).await?;
        D::commit(tx).await?;
        Ok(prize)
    }

    async fn decline_prize(
        &self,
        f: &Forfeit,
        round: u32,
        participant_id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Reallocation> {
        let mut tx = self.db.begin().await?;
        let prize = held_prize::<D>(&mut tx, &f.campaign_id, round, participant_id).await?;
        // Only an open prize is declined: a claimed one may already be in use.
        let open = matches!(prize.standing, crate::domain::claim::Standing::Open { .. })
            && crate::domain::claim::may_claim(round, prize.standing, at)?;
        if !open {
            return Err(Refusal::ClaimClosed { round }.into());
        }
        let r = forfeit_prize::<D>(
            &mut tx,
            f,
            &prize,
            crate::domain::claim::ForfeitReason::Declined,
            actor,
            at,
        )
        .await?
        .ok_or(Refusal::ClaimClosed { round })?;
        D::commit(tx).await?;
        Ok(r)
    }

    async fn forfeit_overdue(
        &self,
        f: &Forfeit,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Reallocation>> {
        let mut tx = self.db.begin().await?;
        let overdue: Vec<PrizeState> = sql(format!(
            "SELECT {PRIZE_COLUMNS} FROM round_winners w
             WHERE w.campaign_id = $1 AND w.claim_deadline <= $2
               AND w.claimed_at IS NULL AND w.forfeited_at IS NULL
             ORDER BY w.round, w.rank"
        ))
        .bind(f.campaign_id.as_str())
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(prize_from_row)
        .collect::<StoreResult<_>>()?;
        let mut done = Vec::new();
        for prize in &overdue {
            let reason = crate::domain::claim::ForfeitReason::Unclaimed;
            if let Some(r) =
                forfeit_prize::<D>(&mut tx, f, prize, reason, "system:claim-deadline", now).await?
            {
                done.push(r);
            }
        }
        D::commit(tx).await?;
        Ok(done)
    }

    async fn pending_notices(
        &self,
        campaign_id: &str,
        remind_before: chrono::Duration,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Notice>> {
        let mut conn = self.db.reader().await?;
        let mut out = Vec::new();
        // $2 and $3 bound the reminders' window; the notices take every open prize.
        for reminder in [false, true] {
            let condition = if reminder {
                "w.notified_at IS NOT NULL AND w.reminded_at IS NULL
                 AND w.claim_deadline > $2 AND w.claim_deadline <= $3"
            } else {
                "w.notified_at IS NULL AND w.claim_deadline > $2 AND $3 >= $2"
            };
            let rows = sql(format!(
                "SELECT w.round, w.rank, p.phone, w.claim_deadline FROM round_winners w
                 JOIN participants p ON p.id = w.participant_id
                 WHERE w.campaign_id = $1 AND w.claimed_at IS NULL AND w.forfeited_at IS NULL
                   AND {condition}
                 ORDER BY w.round, w.rank LIMIT $4"
            ))
            .bind(campaign_id)
            .bind(now)
            .bind(now + remind_before)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            for r in &rows {
                let (round, rank, phone, claim_by) = (
                    r.get("round")?,
                    r.get("rank")?,
                    r.get("phone")?,
                    r.get("claim_deadline")?,
                );
                out.push(if reminder {
                    Notice::Reminder {
                        round,
                        rank,
                        phone,
                        claim_by,
                    }
                } else {
                    Notice::Prize {
                        round,
                        rank,
                        phone,
                        claim_by,
                    }
                });
            }
        }
        // A redemption and a reversal are told alike: what, where, when.
        for (reversal, query) in [
            (
                false,
                "SELECT r.id, p.phone, v.kind, r.venue_id, r.redeemed_at AS at FROM redemptions r
                 JOIN vouchers v ON v.id = r.voucher_id JOIN participants p ON p.id = v.participant_id
                 WHERE v.campaign_id = $1 AND r.notified_at IS NULL ORDER BY r.redeemed_at LIMIT $2",
            ),
            (
                true,
                "SELECT x.id, p.phone, v.kind, x.venue_id, x.reversed_at AS at FROM reversals x
                 JOIN redemptions r ON r.id = x.redemption_id JOIN vouchers v ON v.id = r.voucher_id
                 JOIN participants p ON p.id = v.participant_id
                 WHERE v.campaign_id = $1 AND x.notified_at IS NULL ORDER BY x.reversed_at LIMIT $2",
            ),
        ] {
            let rows = sql(query)
                .bind(campaign_id)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            for r in &rows {
                let (id, phone, kind, venue_id, at) = (
                    r.get("id")?,
                    r.get("phone")?,
                    r.get("kind")?,
                    r.get("venue_id")?,
                    r.get("at")?,
                );
                out.push(if reversal {
                    Notice::Reversed {
                        reversal: id,
                        phone,
                        kind,
                        venue_id,
                        at,
                    }
                } else {
                    Notice::Redeemed {
                        redemption: id,
                        phone,
                        kind,
                        venue_id,
                        at,
                    }
                });
            }
        }
        Ok(out)
    }

    async fn queue_notices(
        &self,
        campaign_id: &str,
        notices: &[(Notice, NewSms)],
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut tx = self.db.begin().await?;
        let mut queued = 0;
        for (notice, sms) in notices {
            let marked = match notice {
                Notice::Prize { round, rank, .. } => {
                    sql("UPDATE round_winners SET notified_at = $1
                     WHERE campaign_id = $2 AND round = $3 AND rank = $4 AND notified_at IS NULL")
                    .bind(at)
                    .bind(campaign_id)
                    .bind(*round)
                    .bind(*rank)
                }
                Notice::Reminder { round, rank, .. } => {
                    sql("UPDATE round_winners SET reminded_at = $1
                     WHERE campaign_id = $2 AND round = $3 AND rank = $4 AND reminded_at IS NULL")
                    .bind(at)
                    .bind(campaign_id)
                    .bind(*round)
                    .bind(*rank)
                }
                Notice::Redeemed { redemption, .. } => sql(
                    "UPDATE redemptions SET notified_at = $1 WHERE id = $2 AND notified_at IS NULL",
                )
                .bind(at)
                .bind(*redemption),
                Notice::Reversed { reversal, .. } => sql(
                    "UPDATE reversals SET notified_at = $1 WHERE id = $2 AND notified_at IS NULL",
                )
                .bind(at)
                .bind(*reversal),
            }
            .execute(&mut *tx)
            .await?;
            if marked == 1 {
                let sms = NewSms {
                    event_key: Some(notice.key(campaign_id)),
                    ..sms.clone()
                };
                queue_sms(&mut *tx, &sms, at).await?;
                queued += 1;
            }
        }
        D::commit(tx).await?;
        Ok(queued)
    }

    async fn claim_counts(&self, campaign_id: &str) -> StoreResult<Vec<ClaimCounts>> {
        let mut conn = self.db.reader().await?;
        sql("SELECT round,
                    SUM(CASE WHEN claimed_at IS NULL AND forfeited_at IS NULL THEN 1 ELSE 0 END) AS open,
                    SUM(CASE WHEN claimed_at IS NOT NULL THEN 1 ELSE 0 END) AS claimed,
                    SUM(CASE WHEN forfeited_at IS NOT NULL THEN 1 ELSE 0 END) AS forfeited,
                    SUM(CASE WHEN notified_at IS NOT NULL THEN 1 ELSE 0 END) AS notified,
                    SUM(CASE WHEN reminded_at IS NOT NULL THEN 1 ELSE 0 END) AS reminded
             FROM round_winners WHERE campaign_id = $1 GROUP BY round ORDER BY round")
        .bind(campaign_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(ClaimCounts {
                round: r.get("round")?,
                to_claim: r.get::<i64>("open")?.max(0) as u64,
                claimed: r.get::<i64>("claimed")?.max(0) as u64,
                forfeited: r.get::<i64>("forfeited")?.max(0) as u64,
                notified: r.get::<i64>("notified")?.max(0) as u64,
                reminded: r.get::<i64>("reminded")?.max(0) as u64,
            })
        })
        .collect()
    }

    async fn reallocations(&self, campaign_id: &str, round: u32) -> StoreResult<Vec<Reallocation>> {
        let mut conn = self.db.reader().await?;
        sql(
            "SELECT seq, forfeited_rank, reason, reserve_rank, tier, at FROM reallocations
             WHERE campaign_id = $1 AND round = $2 ORDER BY seq",
        )
        .bind(campaign_id)
        .bind(round)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            let reason: String = r.get("reason")?;
            Ok(Reallocation {
                seq: r.get("seq")?,
                forfeited_rank: r.get("forfeited_rank")?,
                reason: crate::domain::claim::ForfeitReason::parse(&reason).ok_or_else(|| {
                    StoreError::Database(format!("unknown forfeit reason {reason}"))
                })?,
                reserve_rank: r.get("reserve_rank")?,
                tier: r.get("tier")?,
                at: r.get("at")?,
            })
        })
        .collect()
    }

    // ---- vouchers -------------------------------------------------------------------------------

    async fn voucher(&self, id: Uuid) -> StoreResult<Option<VoucherRecord>> {
        let mut conn = self.db.reader().await?;
        one_voucher::<D>(&mut conn, "v.id = $1", id.into(), false).await
    }

    async fn voucher_by_code(&self, code: &str) -> StoreResult<Option<VoucherRecord>> {
        let mut conn = self.db.reader().await?;
        one_voucher::<D>(&mut conn, "v.code = $1", code.into(), false).await
    }

    async fn vouchers_of(&self, participant_id: Uuid) -> StoreResult<Vec<VoucherRecord>> {
        let mut conn = self.db.reader().await?;
        vouchers_where(&mut *conn, "v.participant_id = $1", participant_id.into()).await
    }

    async fn kept_record(&self, campaign_id: &str, round: u32) -> StoreResult<Option<KeptRecord>> {
        let mut conn = self.db.reader().await?;
        kept_record(&mut *conn, campaign_id, round).await
    }

    async fn keep_record(
        &self,
        campaign_id: &str,
        round: u32,
        record: &KeptRecord,
    ) -> StoreResult<KeptRecord> {
        let mut tx = self.db.begin().await?;
        let signature = record.signature.as_ref();
        sql(
            "UPDATE rounds SET record = $3, record_key_id = $4, record_signature = $5
             WHERE campaign_id = $1 AND number = $2 AND progress = 'drawn' AND record IS NULL",
        )
        .bind(campaign_id)
        .bind(round)
        .bind(&record.json)
        .bind(signature.map(|s| s.key_id.as_str()))
        .bind(signature.map(|s| s.signature.as_str()))
        .execute(&mut *tx)
        .await?;
        let kept = kept_record(&mut *tx, campaign_id, round).await?;
        D::commit(tx).await?;
        kept.ok_or_else(|| {
            StoreError::Database(format!("round {round} is not drawn: no record kept"))
        })
    }

    async fn sign_kept_record(
        &self,
        campaign_id: &str,
        round: u32,
        signature: &RecordSignature,
    ) -> StoreResult<KeptRecord> {
        let mut tx = self.db.begin().await?;
        sql("UPDATE rounds SET record_key_id = $3, record_signature = $4
             WHERE campaign_id = $1 AND number = $2 AND record IS NOT NULL
               AND record_signature IS NULL")
        .bind(campaign_id)
        .bind(round)
        .bind(&signature.key_id)
        .bind(&signature.signature)
        .execute(&mut *tx)
        .await?;
        let kept = kept_record(&mut *tx, campaign_id, round).await?;
        D::commit(tx).await?;
        kept.ok_or_else(|| StoreError::Database(format!("round {round} has no record kept")))
    }

    async fn active_signing_key(&self, fresh: &SigningKeyRecord) -> StoreResult<SigningKeyRecord> {
        let mut tx = self.db.begin().await?;
        sql(
            "INSERT INTO signing_keys (id, public_key, secret_key, state, created_at)
             VALUES ($1, $2, $3, 'active', $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&fresh.id)
        .bind(&fresh.public_key)
        .bind(&fresh.secret_key)
        .bind(fresh.created_at)
        .execute(&mut *tx)
        .await?;
        let active = signing_keys_where(&mut *tx, "state = 'active'", true)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Database("no active signing key".into()))?;
        D::commit(tx).await?;
        Ok(active)
    }

    async fn rotate_signing_key(
        &self,
        fresh: &SigningKeyRecord,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let mut tx = self.db.begin().await?;
        let retired = sql(format!(
            "SELECT id FROM signing_keys WHERE state = 'active'{}",
            for_update::<D>("signing_keys")
        ))
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.get::<String>("id"))
        .transpose()?;
        sql("UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE state = 'active'")
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sql(
            "INSERT INTO signing_keys (id, public_key, secret_key, state, created_at)
             VALUES ($1, $2, $3, 'active', $4)",
        )
        .bind(&fresh.id)
        .bind(&fresh.public_key)
        .bind(&fresh.secret_key)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        append::<D>(
            &mut tx,
            crate::domain::audit::AuditEvent::new(
                actor,
                "keys.rotate",
                format!("key:{}", fresh.id),
                serde_json::json!({"retired": retired, "public_key": fresh.public_key}),
            ),
            at,
        )
        .await?;
        D::commit(tx).await?;
        Ok(retired)
    }

    async fn public_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let mut conn = self.db.reader().await?;
        signing_keys_where(&mut *conn, "1 = 1", false).await
    }

    async fn give_holder_secrets(
        &self,
        secrets: &[(Uuid, crate::domain::holder_code::Secret)],
    ) -> StoreResult<u64> {
        let mut tx = self.db.begin().await?;
        let mut given = 0;
        for (id, secret) in secrets {
            given += sql(
                "UPDATE vouchers SET holder_secret = $2 WHERE id = $1 AND holder_secret IS NULL",
            )
            .bind(*id)
            .bind(secret.to_hex())
            .execute(&mut *tx)
            .await?;
        }
        D::commit(tx).await?;
        Ok(given)
    }

    async fn all_vouchers(&self, campaign_id: &str) -> StoreResult<Vec<VoucherRecord>> {
        let mut conn = self.db.reader().await?;
        vouchers_where(&mut *conn, "v.campaign_id = $1", campaign_id.into()).await
    }

    async fn redeem(&self, campaign: &Campaign, r: Redeem) -> StoreResult<RedeemOutcome> {
        // A key answered before is answered the same (or refused as reused). Otherwise judged on
        // a read, then written by a write whose guards keep the judgement true (the voucher
        // still live, the slot free, the key unanswered, by unique indexes); a refusal is
        // recorded as the key's answer. When a guard fails, read again.
        let request =
            crate::domain::redemption::request_fingerprint(&r.code, r.holder_code.as_deref());
        let mut conn = self.db.reader().await?;
        let redemption_id = Uuid::new_v4();
        for _ in 0..5 {
            if let Some(earlier) =
                recorded_answer(&mut *conn, r.token_id, &r.idempotency_key).await?
            {
                return replay::<D>(&mut conn, earlier, &r).await;
            }
            // The steps before the voucher and its uses: a redemption committed between the two
            // reads is then seen as a use (the reason a desk wants first), never as a step
            // alone.
            let used = match r.holder_code {
                Some(_) => {
                    let since = crate::domain::holder_code::earliest_step(r.at);
                    used_holder_steps(&mut *conn, &r.code, since).await?
                }
                None => Vec::new(),
            };
            let voucher =
                one_voucher::<D>(&mut conn, "v.code = $1", r.code.as_str().into(), false).await?;
            let verdict = match &voucher {
                Some(v) => judge_redeem(campaign, v, &r, &used)?,
                None => Ok(None),
            };
            let Some(voucher) = voucher else {
                if record_refusal(&self.db, &mut conn, &r, &request, None).await? {
                    return Ok(RedeemOutcome::Unknown { replayed: false });
                }
                continue;
            };
            let holder_step = match verdict {
                Ok(step) => step,
                Err(reason) => {
                    if record_refusal(&self.db, &mut conn, &r, &request, Some(&reason)).await? {
                        return Ok(RedeemOutcome::Refused {
                            reason,
                            replayed: false,
                        });
                    }
                    continue;
                }
            };
            let redemption = r.record(redemption_id, &voucher);
            let write = RedemptionWrite {
                redemption: &redemption,
                holder_step,
                entitlement: voucher.entitlement(),
                slot: redemption_slot(campaign, &voucher, &r.venue.id)?,
                request: &request,
                event: redeem_event(&redemption, &r.actor),
            };
            if self.db.write_redemption(&mut conn, &write).await? {
                return Ok(RedeemOutcome::Redeemed {
                    redemption,
                    voucher,
                    replayed: false,
                });
            }
        }
        Err(StoreError::Database(format!(
            "redeeming at {} kept meeting concurrent changes",
            r.venue.id
        )))
    }

    async fn reverse_redemption(
        &self,
        redemption_id: Uuid,
        venue_id: &str,
        token_id: Uuid,
        window: chrono::Duration,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<ReverseOutcome> {
        let mut tx = self.db.begin().await?;
        let row = sql(format!(
            "SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM} WHERE r.id = $1 AND r.venue_id = $2{}",
            for_update::<D>("r")
        ))
        .bind(redemption_id)
        .bind(venue_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(ReverseOutcome::NotFound);
        };
        let mut redemption = redemption_from_row(&row)?;
        if redemption.reversal_id.is_some() {
            return Ok(ReverseOutcome::AlreadyReversed(redemption));
        }
        if !crate::domain::redemption::may_reverse(redemption.redeemed_at, window, at) {
            return Ok(ReverseOutcome::WindowPassed(redemption));
        }
        let reversal = Uuid::new_v4();
        sql(
            "INSERT INTO reversals (id, redemption_id, venue_id, token_id, reversed_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(reversal)
        .bind(redemption_id)
        .bind(venue_id)
        .bind(token_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sql("UPDATE redemptions SET reversal_id = $1 WHERE id = $2 AND reversal_id IS NULL")
            .bind(reversal)
            .bind(redemption_id)
            .execute(&mut *tx)
            .await?;
        append::<D>(&mut tx, reverse_event(&redemption, reversal, actor), at).await?;
        D::commit(tx).await?;
        redemption.reversal_id = Some(reversal);
        redemption.reversed_at = Some(at);
        Ok(ReverseOutcome::Reversed(redemption))
    }

    async fn recent_redemptions(
        &self,
        venue_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<RedemptionRecord>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM}
             WHERE ($1 IS NULL OR r.venue_id = $1) ORDER BY r.redeemed_at DESC, r.id LIMIT $2"
        ))
        .bind(venue_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(redemption_from_row)
        .collect()
    }

    async fn redemptions_between(
        &self,
        venue_id: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<RedemptionRecord>> {
        let mut conn = self.db.reader().await?;
        sql(format!(
            "SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM}
             WHERE ($1 IS NULL OR r.venue_id = $1)
               AND ((r.redeemed_at >= $2 AND r.redeemed_at < $3)
                    OR (x.reversed_at >= $2 AND x.reversed_at < $3))
             ORDER BY r.redeemed_at, r.id"
        ))
        .bind(venue_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(redemption_from_row)
        .collect()
    }

    async fn void_voucher(
        &self,
        id: Uuid,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<VoucherRecord> {
        let mut tx = self.db.begin().await?;
        let done = sql(
            "UPDATE vouchers SET status = 'void', voided_at = $1, void_reason = $2
             WHERE id = $3 AND status = 'issued'",
        )
        .bind(at)
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let voucher = one_voucher::<D>(&mut tx, "v.id = $1", id.into(), false)
            .await?
            .ok_or(Refusal::VoucherNotFound)?;
        if done == 0 {
            return Err(Refusal::AlreadyVoid.into());
        }
        append::<D>(&mut tx, void_event(id, reason, actor), at).await?;
        D::commit(tx).await?;
        Ok(voucher)
    }

    async fn reissue_voucher(
        &self,
        id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<VoucherRecord> {
        let mut tx = self.db.begin().await?;
        let old = one_voucher::<D>(&mut tx, "v.id = $1", id.into(), true)
            .await?
            .ok_or(Refusal::VoucherNotFound)?;
        let replaced_by = sql("SELECT id FROM vouchers WHERE reissued_from = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get::<Uuid>("id"))
            .transpose()?;
        crate::domain::redemption::may_reissue(old.void, replaced_by)?;
        let new_id = Uuid::new_v4();
        sql(
            "INSERT INTO vouchers (id, code, campaign_id, round, rank, participant_id, kind,
                 issued_at, reissued_from, holder_secret)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new_id)
        .bind(voucher_code()?)
        .bind(&old.campaign_id)
        .bind(old.round)
        .bind(old.rank)
        .bind(old.participant_id)
        .bind(&old.kind)
        .bind(at)
        .bind(id)
        .bind(holder_secret()?)
        .execute(&mut *tx)
        .await?;
        append::<D>(&mut tx, reissue_event(&old, new_id, actor), at).await?;
        let new = one_voucher::<D>(&mut tx, "v.id = $1", new_id.into(), false)
            .await?
            .ok_or_else(|| StoreError::Database("the reissued voucher vanished".into()))?;
        D::commit(tx).await?;
        Ok(new)
    }

    async fn record_lookup_failure(
        &self,
        token_id: Uuid,
        address: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        // Only the throttling window is ever read: this token's and this address's failures
        // older than a day go.
        sql("DELETE FROM lookup_failures WHERE (token_id = $1 OR address = $2) AND at < $3")
            .bind(token_id)
            .bind(address)
            .bind(at - chrono::Duration::days(1))
            .execute(&mut *tx)
            .await?;
        sql("INSERT INTO lookup_failures (token_id, address, at) VALUES ($1, $2, $3)")
            .bind(token_id)
            .bind(address)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        D::commit(tx).await
    }

    async fn lookup_failures(
        &self,
        token_id: Uuid,
        address: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<LookupFailures> {
        let mut conn = self.db.reader().await?;
        let row = sql(
            "SELECT (SELECT COUNT(*) FROM lookup_failures WHERE token_id = $1 AND at > $3) AS by_token,
                    (SELECT MIN(at) FROM lookup_failures WHERE token_id = $1 AND at > $3) AS token_oldest,
                    (SELECT COUNT(*) FROM lookup_failures WHERE address = $2 AND at > $3) AS by_address,
                    (SELECT MIN(at) FROM lookup_failures WHERE address = $2 AND at > $3) AS address_oldest",
        )
        .bind(token_id)
        .bind(address)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
        Ok(LookupFailures {
            by_token: row.get("by_token")?,
            token_oldest: row.get("token_oldest")?,
            by_address: row.get("by_address")?,
            address_oldest: row.get("address_oldest")?,
        })
    }

    async fn forget_expired(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.db.begin().await?;
        let mut gone = 0;
        for text in [
            "DELETE FROM login_codes WHERE created_at < $1",
            "DELETE FROM lookup_failures WHERE at < $1",
            "DELETE FROM participant_sessions WHERE expires_at < $1",
            // Whatever became of them; one in flight is left to its sender.
            "DELETE FROM sms_outbox WHERE created_at < $1 AND status <> 'sending'",
            "DELETE FROM spent_challenges WHERE expires_at < $1",
            // A desk retries within minutes; a redemption's answer stays with it.
            "DELETE FROM idempotent_answers WHERE answer <> 'redeemed' AND answered_at < $1",
        ] {
            gone += sql(text).bind(before).execute(&mut *tx).await?;
        }
        D::commit(tx).await?;
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::values;
    use crate::store::postgres::Pg;
    use crate::store::sqlite::Lite;

    #[test]
    fn values_lists_number_their_placeholders_row_by_row() {
        assert_eq!(values::<Pg>(2, 2, 1), "VALUES ($1, $2), ($3, $4)");
        assert_eq!(values::<Pg>(1, 3, 3), "VALUES ($3, $4, $5)");
        assert_eq!(values::<Lite>(2, 2, 1), "VALUES (?, ?), (?, ?)");
    }
}
