//! SQLite: the embedded default. One writer connection (SQLite allows one writer at a time
//! anyway) taking `BEGIN IMMEDIATE`, so that a transaction that reads before it writes never
//! meets a stale snapshot; a pool of readers beside it (WAL lets them run during writes).

use super::*;
use crate::domain::audit::chain;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Alive as long as the store; the checkpointer stops when it is gone.
    _alive: std::sync::Arc<()>,
}

/// How often the background task copies the write-ahead log back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

type Tx = Transaction<'static, Sqlite>;

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Database(format!(
                        "cannot create the database folder {}: {e}",
                        dir.display()
                    ))
                })?;
            }
        }
        // The writer never checkpoints itself: an automatic checkpoint runs inside whichever
        // commit crosses the threshold and makes that one request slow. A background task
        // checkpoints instead, beside the writer (WAL lets it).
        // No ping before each use (sqlx's default): a local file does not drop the connection,
        // and on the one writer the ping would queue behind every write.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let alive = std::sync::Arc::new(());
        let weak = std::sync::Arc::downgrade(&alive);
        let pool = reader.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if weak.upgrade().is_none() || pool.is_closed() {
                    break;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        });
        Ok(Self {
            writer,
            reader,
            _alive: alive,
        })
    }

    async fn begin(&self) -> StoreResult<Tx> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

async fn append(tx: &mut Tx, event: AuditEvent, at: DateTime<Utc>) -> StoreResult<AuditEntry> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut **tx)
        .await?;
    let prev_seq: i64 = row.try_get("seq")?;
    let prev_hash: String = row.try_get("hash")?;
    let entry = chain(prev_seq, decode_hash(&prev_hash)?, at, event);
    sqlx::query(
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
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(entry.seq)
        .bind(&entry.hash)
        .execute(&mut **tx)
        .await?;
    Ok(entry)
}

// ---- vouchers ---------------------------------------------------------------------------------

fn voucher_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<VoucherRecord> {
    let reissued_from: Option<String> = row.try_get("reissued_from")?;
    Ok(VoucherRecord {
        id: uuid_of(row, "id")?,
        code: row.try_get("code")?,
        campaign_id: row.try_get("campaign_id")?,
        round: row.try_get::<i64, _>("round")? as u32,
        rank: row.try_get::<i64, _>("rank")? as u32,
        tier: row.try_get("tier")?,
        kind: row.try_get("kind")?,
        participant_id: uuid_of(row, "participant_id")?,
        holder_phone: row.try_get("phone")?,
        holder_name: row.try_get("display_name")?,
        void: row.try_get::<String, _>("status")? == "void",
        issued_at: row.try_get("issued_at")?,
        voided_at: row.try_get("voided_at")?,
        void_reason: row.try_get("void_reason")?,
        reissued_from: reissued_from.as_deref().map(parse_uuid).transpose()?,
        uses: Vec::new(),
    })
}

fn redemption_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<RedemptionRecord> {
    let reversal: Option<String> = row.try_get("reversal_id")?;
    Ok(RedemptionRecord {
        id: uuid_of(row, "id")?,
        voucher_id: uuid_of(row, "voucher_id")?,
        code: row.try_get("code")?,
        kind: row.try_get("kind")?,
        venue_id: row.try_get("venue_id")?,
        token_id: uuid_of(row, "token_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        redeemed_at: row.try_get("redeemed_at")?,
        reversal_id: reversal.as_deref().map(parse_uuid).transpose()?,
        reversed_at: row.try_get("reversed_at")?,
    })
}

async fn uses_where(
    conn: &mut sqlx::SqliteConnection,
    column: &str,
    value: &str,
) -> StoreResult<Vec<(String, UseRecord)>> {
    let rows = sqlx::query(&format!(
        "SELECT r.entitlement, r.id, r.venue_id, r.redeemed_at FROM redemptions r
         JOIN vouchers v ON v.id = r.voucher_id
         WHERE {column} = $1 AND r.reversal_id IS NULL ORDER BY r.redeemed_at"
    ))
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("entitlement")?,
                UseRecord {
                    redemption_id: uuid_of(row, "id")?,
                    venue_id: row.try_get("venue_id")?,
                    at: row.try_get("redeemed_at")?,
                },
            ))
        })
        .collect()
}

/// `column` is one of ours, never input.
async fn vouchers_where(
    conn: &mut sqlx::SqliteConnection,
    column: &str,
    value: &str,
) -> StoreResult<Vec<VoucherRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {VOUCHER_COLUMNS} {VOUCHER_FROM} WHERE {column} = $1 {VOUCHER_ORDER}"
    ))
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    let mut vouchers = rows
        .iter()
        .map(voucher_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    // A participant's or a campaign's codes include every code of each entitlement.
    attach_uses(&mut vouchers, uses_where(conn, column, value).await?);
    Ok(vouchers)
}

async fn one_voucher(
    conn: &mut sqlx::SqliteConnection,
    column: &str,
    value: &str,
) -> StoreResult<Option<VoucherRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {VOUCHER_COLUMNS} {VOUCHER_FROM} WHERE {column} = $1"
    ))
    .bind(value)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut voucher = voucher_from_row(&row)?;
    let entitlement = voucher.entitlement();
    let uses = uses_where(conn, "r.entitlement", &entitlement).await?;
    attach_uses(std::slice::from_mut(&mut voucher), uses);
    Ok(Some(voucher))
}

async fn by_idempotency_key(
    conn: &mut sqlx::SqliteConnection,
    token_id: Uuid,
    key: &str,
) -> StoreResult<Option<RedemptionRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM} WHERE r.token_id = $1 AND r.idempotency_key = $2"
    ))
    .bind(token_id.to_string())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(redemption_from_row).transpose()
}

/// Records a failed look-up, and forgets this token's and this address's failures older than a
/// day: only the throttling window is ever read.
async fn prune_and_record_failure(
    tx: &mut Tx,
    token_id: String,
    address: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM lookup_failures WHERE (token_id = $1 OR address = $2) AND at < $3")
        .bind(&token_id)
        .bind(address)
        .bind(at - chrono::Duration::days(1))
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO lookup_failures (token_id, address, at) VALUES ($1, $2, $3)")
        .bind(&token_id)
        .bind(address)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn token_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<TokenRecord> {
    let id: String = row.try_get("id")?;
    Ok(TokenRecord {
        id: Uuid::parse_str(&id)
            .map_err(|e| StoreError::Database(format!("bad token id {id:?}: {e}")))?,
        name: row.try_get("name")?,
        role: parse_role(row.try_get("role")?)?,
        venue_id: row.try_get("venue_id")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn audit_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

async fn recorded(conn: &mut sqlx::SqliteConnection) -> StoreResult<Option<Campaign>> {
    let row = sqlx::query("SELECT definition FROM campaigns ORDER BY synced_at LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let text: String = row.try_get("definition")?;
            serde_json::from_str(&text).map(Some).map_err(|e| {
                StoreError::Database(format!("recorded campaign definition is unreadable: {e}"))
            })
        }
    }
}

async fn progress(
    conn: &mut sqlx::SqliteConnection,
    campaign_id: &str,
) -> StoreResult<Vec<(u32, RoundProgress)>> {
    let rows =
        sqlx::query("SELECT number, progress FROM rounds WHERE campaign_id = $1 ORDER BY number")
            .bind(campaign_id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| {
            let n: i64 = r.try_get("number")?;
            let p: String = r.try_get("progress")?;
            Ok((n as u32, parse_progress(&p)?))
        })
        .collect()
}

fn parse_uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::Database(format!("bad id {s:?}: {e}")))
}

fn uuid_of(row: &sqlx::sqlite::SqliteRow, column: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(column)?;
    parse_uuid(&text)
}

fn participant_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Participant> {
    Ok(Participant {
        id: uuid_of(row, "id")?,
        phone: row.try_get("phone")?,
        display_name: row.try_get("display_name")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn insert_session(
    tx: &mut Tx,
    participant: Uuid,
    s: &NewSession,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO participant_sessions (token_hash, participant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&s.token_hash)
    .bind(participant.to_string())
    .bind(at)
    .bind(s.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn round_progress_of(
    conn: &mut sqlx::SqliteConnection,
    campaign_id: &str,
    round: u32,
) -> StoreResult<RoundProgress> {
    let p: Option<String> =
        sqlx::query_scalar("SELECT progress FROM rounds WHERE campaign_id = $1 AND number = $2")
            .bind(campaign_id)
            .bind(i64::from(round))
            .fetch_optional(&mut *conn)
            .await?;
    parse_progress(&p.ok_or_else(|| StoreError::NotFound(format!("round {round}")))?)
}

async fn eligible(
    conn: &mut sqlx::SqliteConnection,
    campaign_id: &str,
    round: u32,
    win_limit: u32,
) -> StoreResult<Vec<Uuid>> {
    // One row instead of a million: SQLite hands rows over one at a time, which dominates the
    // time of a large freeze. The order is restored (and checked) here.
    let joined: Option<String> = sqlx::query_scalar(&format!(
        "SELECT group_concat(id, ',') FROM ({ELIGIBLE_TICKETS})"
    ))
    .bind(campaign_id)
    .bind(i64::from(round))
    .bind(i64::from(win_limit))
    .fetch_one(&mut *conn)
    .await?;
    let Some(joined) = joined else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::with_capacity(joined.len() / 37 + 1);
    for id in joined.split(',') {
        ids.push(parse_uuid(id)?);
    }
    ids.sort_unstable();
    Ok(ids)
}

async fn draw_state(
    conn: &mut sqlx::SqliteConnection,
    campaign_id: &str,
    round: u32,
) -> StoreResult<Option<RoundDrawState>> {
    let row = sqlx::query(
        "SELECT progress, frozen_at, entry_count, entries_root, beacon_source, prizes, beacon, seed, drawn_at
         FROM rounds WHERE campaign_id = $1 AND number = $2",
    )
    .bind(campaign_id)
    .bind(i64::from(round))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let witnesses = sqlx::query(
        "SELECT witness, commitment, committed_at, secret, revealed_at FROM witness_commitments
         WHERE campaign_id = $1 AND round = $2 ORDER BY witness",
    )
    .bind(campaign_id)
    .bind(i64::from(round))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|w| {
        Ok(WitnessState {
            name: w.try_get("witness")?,
            commitment: w.try_get("commitment")?,
            committed_at: w.try_get("committed_at")?,
            secret: w.try_get("secret")?,
            revealed_at: w.try_get("revealed_at")?,
        })
    })
    .collect::<StoreResult<Vec<_>>>()?;
    let winners = sqlx::query(
        "SELECT w.rank, w.ticket_id, w.tier, p.phone FROM round_winners w JOIN participants p ON p.id = w.participant_id
         WHERE w.campaign_id = $1 AND w.round = $2 ORDER BY w.rank",
    )
    .bind(campaign_id)
    .bind(i64::from(round))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|w| {
        Ok(WinnerState {
            rank: w.try_get::<i64, _>("rank")? as u32,
            ticket: uuid_of(w, "ticket_id")?,
            tier: w.try_get("tier")?,
            phone: w.try_get("phone")?,
        })
    })
    .collect::<StoreResult<Vec<_>>>()?;
    let prizes: Option<String> = r.try_get("prizes")?;
    Ok(Some(RoundDrawState {
        progress: parse_progress(r.try_get("progress")?)?,
        frozen_at: r.try_get("frozen_at")?,
        entry_count: r
            .try_get::<Option<i64>, _>("entry_count")?
            .map(|n| n as u64),
        entries_root: r.try_get("entries_root")?,
        beacon_source: r.try_get("beacon_source")?,
        prizes: parse_prizes(prizes.as_deref())?,
        beacon: r.try_get("beacon")?,
        seed: r.try_get("seed")?,
        drawn_at: r.try_get("drawn_at")?,
        witnesses,
        winners,
    }))
}

/// Columns of `quiz_attempts a`, for [`attempt_from_row`].
const ATTEMPT_COLUMNS: &str =
    "a.id, a.participant_id, a.questions, a.started_at, a.deadline, a.submitted_at, \
     a.score, a.passed, a.result, a.ticket_round, a.ticket_status, a.ticket_id";

fn attempt_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<AttemptRecord> {
    let questions: String = r.try_get("questions")?;
    let score: Option<i64> = r.try_get("score")?;
    Ok(AttemptRecord {
        id: uuid_of(r, "id")?,
        participant_id: uuid_of(r, "participant_id")?,
        questions: parse_questions(&questions)?,
        started_at: r.try_get("started_at")?,
        deadline: r.try_get("deadline")?,
        submitted_at: r.try_get("submitted_at")?,
        score: score.map(|s| s as u32),
        passed: r.try_get("passed")?,
        result: r.try_get("result")?,
        ticket_round: r
            .try_get::<Option<i64>, _>("ticket_round")?
            .map(|n| n as u32),
        ticket: ticket_outcome(
            r.try_get::<Option<String>, _>("ticket_status")?.as_deref(),
            r.try_get::<Option<String>, _>("ticket_id")?
                .as_deref()
                .map(parse_uuid)
                .transpose()?,
        )?,
    })
}

const TOKEN_COLUMNS: &str = "id, name, role, venue_id, created_at, revoked_at";

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn recorded_campaign(&self) -> StoreResult<Option<Campaign>> {
        let mut conn = self.reader.acquire().await?;
        recorded(&mut conn).await
    }

    async fn sync_campaign(&self, c: &Campaign, at: DateTime<Utc>) -> StoreResult<SyncOutcome> {
        let mut tx = self.begin().await?;
        let old = recorded(&mut tx).await?;
        let progress = match &old {
            Some(old) => progress(&mut tx, &old.id).await?,
            None => Vec::new(),
        };
        let outcome = plan_sync(old.as_ref(), &progress, c)?;
        if outcome == SyncOutcome::Unchanged {
            return Ok(outcome);
        }
        let definition =
            serde_json::to_string(c).map_err(|e| StoreError::Database(e.to_string()))?;
        sqlx::query(
            "INSERT INTO campaigns (id, name, time_zone, first_round_start, win_limit, min_witnesses, definition, synced_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone,
                first_round_start = excluded.first_round_start, win_limit = excluded.win_limit,
                min_witnesses = excluded.min_witnesses, definition = excluded.definition,
                synced_at = excluded.synced_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.time_zone)
        .bind(c.first_round_start.to_string())
        .bind(i64::from(c.win_limit))
        .bind(i64::from(c.min_witnesses))
        .bind(definition)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        for r in &c.rounds {
            // Only pending rounds move; settled ones were checked to be unchanged.
            sqlx::query(
                "INSERT INTO rounds (campaign_id, number, opens_at, closes_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (campaign_id, number) DO UPDATE
                 SET opens_at = excluded.opens_at, closes_at = excluded.closes_at
                 WHERE rounds.progress = 'pending'",
            )
            .bind(&c.id)
            .bind(i64::from(r.number))
            .bind(r.opens_at)
            .bind(r.closes_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM rounds WHERE campaign_id = $1 AND number > $2 AND progress = 'pending'",
        )
        .bind(&c.id)
        .bind(c.rounds.len() as i64)
        .execute(&mut *tx)
        .await?;
        for k in &c.voucher_kinds {
            sqlx::query(
                "INSERT INTO voucher_kinds (campaign_id, code, name, category, policy, valid_from, valid_until, face_value_yuan, holder_check)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (campaign_id, code) DO UPDATE SET name = excluded.name,
                    category = excluded.category, policy = excluded.policy, valid_from = excluded.valid_from,
                    valid_until = excluded.valid_until, face_value_yuan = excluded.face_value_yuan,
                    holder_check = excluded.holder_check",
            )
            .bind(&c.id)
            .bind(&k.code)
            .bind(&k.name)
            .bind(k.category.as_str())
            .bind(k.policy.as_str())
            .bind(k.valid_from)
            .bind(k.valid_until)
            .bind(k.face_value_yuan.map(i64::from))
            .bind(k.holder_check)
            .execute(&mut *tx)
            .await?;
        }
        for gone in old
            .iter()
            .flat_map(|o| &o.voucher_kinds)
            .filter(|k| c.voucher_kind(&k.code).is_none())
        {
            sqlx::query("DELETE FROM voucher_kinds WHERE campaign_id = $1 AND code = $2")
                .bind(&c.id)
                .bind(&gone.code)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM prize_tiers WHERE campaign_id = $1")
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        for (position, t) in c.tiers.iter().enumerate() {
            sqlx::query(
                "INSERT INTO prize_tiers (campaign_id, position, name, label, count, voucher_kinds)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&c.id)
            .bind(position as i64)
            .bind(&t.name)
            .bind(&t.label)
            .bind(i64::from(t.count))
            .bind(t.voucher_kinds.join(","))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE venues SET active = FALSE WHERE campaign_id = $1")
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        for v in &c.venues {
            sqlx::query(
                "INSERT INTO venues (id, campaign_id, name, category, example, active) VALUES ($1, $2, $3, $4, $5, TRUE)
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
        append(&mut tx, sync_event(c, outcome), at).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn round_progress(&self, campaign_id: &str) -> StoreResult<Vec<(u32, RoundProgress)>> {
        let mut conn = self.reader.acquire().await?;
        progress(&mut conn, campaign_id).await
    }

    async fn create_token(
        &self,
        t: NewToken,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TokenRecord> {
        let mut tx = self.begin().await?;
        if let Some(venue) = &t.venue_id {
            let active: Option<bool> =
                sqlx::query_scalar("SELECT active FROM venues WHERE id = $1")
                    .bind(venue)
                    .fetch_optional(&mut *tx)
                    .await?;
            match active {
                None => return Err(StoreError::NotFound(format!("venue {venue:?}"))),
                Some(false) => {
                    return Err(StoreError::Conflict(format!(
                        "venue {venue:?} is no longer in the campaign configuration"
                    )))
                }
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
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, venue_id, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.id.to_string())
        .bind(&record.name)
        .bind(record.role.as_str())
        .bind(&record.venue_id)
        .bind(&t.token_hash)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        append(&mut tx, token_event(actor, "token.create", &record), at).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(
        &self,
        id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TokenRecord> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(at)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::Conflict(format!("token {id} is already revoked")),
                None => StoreError::NotFound(format!("token {id}")),
            });
        };
        let record = token_from_row(&row)?;
        append(&mut tx, token_event(actor, "token.revoke", &record), at).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn append_audit(&self, event: AuditEvent, at: DateTime<Utc>) -> StoreResult<AuditEntry> {
        let mut tx = self.begin().await?;
        let entry = append(&mut tx, event, at).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn audit_page(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_head(&self) -> StoreResult<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    // ---- participants -------------------------------------------------------------------------

    async fn register_participant(
        &self,
        p: NewParticipant,
        at: DateTime<Utc>,
    ) -> StoreResult<Participant> {
        let mut tx = self.begin().await?;
        let participant = Participant {
            id: Uuid::new_v4(),
            phone: p.phone,
            display_name: p.display_name,
            created_at: at,
        };
        let inserted = sqlx::query(
            "INSERT INTO participants (id, phone, display_name, consented_at, created_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (phone) DO NOTHING",
        )
        .bind(participant.id.to_string())
        .bind(&participant.phone)
        .bind(&participant.display_name)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict("phone already registered".into()));
        }
        insert_session(&mut tx, participant.id, &p.session, at).await?;
        tx.commit().await?;
        Ok(participant)
    }

    async fn participant_by_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Participant>> {
        let row = sqlx::query(
            "SELECT p.id, p.phone, p.display_name, p.created_at FROM participant_sessions s
             JOIN participants p ON p.id = s.participant_id WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(participant_from_row).transpose()
    }

    async fn participant_by_phone(&self, phone: &str) -> StoreResult<Option<Participant>> {
        let row = sqlx::query(
            "SELECT id, phone, display_name, created_at FROM participants WHERE phone = $1",
        )
        .bind(phone)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(participant_from_row).transpose()
    }

    async fn end_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM participant_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn issue_login_code(
        &self,
        code: LoginCode,
        limits: &LoginLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), i64>> {
        let mut tx = self.begin().await?;
        let hour = chrono::Duration::hours(1);
        let interval = chrono::Duration::seconds(limits.phone_interval_secs);
        let phone_times: Vec<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT created_at FROM login_codes WHERE phone = $1 AND created_at > $2 ORDER BY created_at",
        )
        .bind(&code.phone)
        .bind(now - hour)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(&last) = phone_times.last() {
            if last + interval > now {
                return Ok(Err(retry_after(last, interval, now)));
            }
        }
        if phone_times.len() as i64 >= limits.phone_per_hour {
            return Ok(Err(retry_after(phone_times[0], hour, now)));
        }
        let address_times: Vec<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT created_at FROM login_codes WHERE requested_from = $1 AND created_at > $2
             ORDER BY created_at LIMIT $3",
        )
        .bind(&code.requested_from)
        .bind(now - hour)
        .bind(limits.address_per_hour)
        .fetch_all(&mut *tx)
        .await?;
        if address_times.len() as i64 >= limits.address_per_hour {
            return Ok(Err(retry_after(address_times[0], hour, now)));
        }
        sqlx::query(
            "INSERT INTO login_codes (id, phone, code_hash, requested_from, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(&code.phone)
        .bind(&code.code_hash)
        .bind(&code.requested_from)
        .bind(now)
        .bind(code.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn verify_login_code(
        &self,
        phone: &str,
        code_hash: &str,
        session: NewSession,
        limits: &LoginLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<LoginOutcome> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT id, code_hash, tries FROM login_codes
             WHERE phone = $1 AND used_at IS NULL AND expires_at > $2 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(phone)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(LoginOutcome::NoActiveCode);
        };
        let id: String = row.try_get("id")?;
        let stored: String = row.try_get("code_hash")?;
        // Count the try first, conditionally, so that parallel guesses cannot exceed the limit.
        let tries: Option<i64> = sqlx::query_scalar(
            "UPDATE login_codes SET tries = tries + 1 WHERE id = $1 AND tries < $2 RETURNING tries",
        )
        .bind(&id)
        .bind(limits.max_tries)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(tries) = tries else {
            return Ok(LoginOutcome::TooManyTries);
        };
        if stored != code_hash {
            tx.commit().await?;
            return Ok(LoginOutcome::WrongCode {
                tries_left: (i64::from(limits.max_tries) - tries).max(0) as u32,
            });
        }
        let used =
            sqlx::query("UPDATE login_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        if used.rows_affected() != 1 {
            return Ok(LoginOutcome::NoActiveCode);
        }
        let row = sqlx::query(
            "SELECT id, phone, display_name, created_at FROM participants WHERE phone = $1",
        )
        .bind(phone)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(participant) = row.as_ref().map(participant_from_row).transpose()? else {
            return Ok(LoginOutcome::NoActiveCode);
        };
        insert_session(&mut tx, participant.id, &session, now).await?;
        tx.commit().await?;
        Ok(LoginOutcome::LoggedIn(participant))
    }

    async fn enqueue_sms(&self, phone: &str, body: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("INSERT INTO sms_outbox (phone, body, created_at) VALUES ($1, $2, $3)")
            .bind(phone)
            .bind(body)
            .bind(at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn tickets_per_round(&self, campaign_id: &str) -> StoreResult<Vec<(u32, u64)>> {
        let rows = sqlx::query(super::TICKETS_PER_ROUND)
            .bind(campaign_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                let round: i64 = r.try_get("round")?;
                let tickets: i64 = r.try_get("tickets")?;
                Ok((round as u32, tickets as u64))
            })
            .collect()
    }

    async fn mark_sms_sent(&self, id: i64, at: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(super::MARK_SMS_SENT)
            .bind(at)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn pending_sms(&self, limit: u32) -> StoreResult<Vec<SmsMessage>> {
        let rows = sqlx::query(
            "SELECT id, phone, body, created_at, sent_at FROM sms_outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SmsMessage {
                    id: r.try_get("id")?,
                    phone: r.try_get("phone")?,
                    body: r.try_get("body")?,
                    created_at: r.try_get("created_at")?,
                    sent_at: r.try_get("sent_at")?,
                })
            })
            .collect()
    }

    // ---- the quiz and tickets -------------------------------------------------------------------

    async fn start_attempt(&self, a: NewAttempt, daily_limit: u32) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let counted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO attempt_days (participant_id, local_day, started) VALUES ($1, $2, 1)
             ON CONFLICT (participant_id, local_day) DO UPDATE SET started = attempt_days.started + 1
             WHERE attempt_days.started < $3
             RETURNING started",
        )
        .bind(a.participant_id.to_string())
        .bind(a.local_day.to_string())
        .bind(i64::from(daily_limit))
        .fetch_optional(&mut *tx)
        .await?;
        if counted.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline, local_day)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(a.id.to_string())
        .bind(a.participant_id.to_string())
        .bind(to_json(&a.questions)?)
        .bind(a.started_at)
        .bind(a.deadline)
        .bind(a.local_day.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn attempt(&self, id: Uuid) -> StoreResult<Option<AttemptRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM quiz_attempts a WHERE a.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(attempt_from_row).transpose()
    }

    async fn session_attempt(
        &self,
        token_hash: &str,
        attempt_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Participant, Option<AttemptRecord>)>> {
        let row = sqlx::query(&format!(
            "SELECT p.id AS p_id, p.phone, p.display_name, p.created_at AS p_created_at,
                    a.id IS NOT NULL AS has_attempt, {ATTEMPT_COLUMNS}
             FROM participant_sessions s
             JOIN participants p ON p.id = s.participant_id
             LEFT JOIN quiz_attempts a ON a.id = $2 AND a.participant_id = p.id
             WHERE s.token_hash = $1 AND s.expires_at > $3"
        ))
        .bind(token_hash)
        .bind(attempt_id.to_string())
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let participant = Participant {
            id: uuid_of(&r, "p_id")?,
            phone: r.try_get("phone")?,
            display_name: r.try_get("display_name")?,
            created_at: r.try_get("p_created_at")?,
        };
        let attempt = if r.try_get("has_attempt")? {
            Some(attempt_from_row(&r)?)
        } else {
            None
        };
        Ok(Some((participant, attempt)))
    }

    async fn submit_attempt(&self, s: Submission) -> StoreResult<SubmitOutcome> {
        // Writes are serialised by the single writer, so the ticket can be held first and the
        // attempt recorded after; a refusal rolls both back.
        // The session is checked on a reader, beside the one writer rather than inside it.
        if let Some(session) = &s.session {
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM participant_sessions
                 WHERE token_hash = $1 AND participant_id = $2 AND expires_at > $3",
            )
            .bind(session)
            .bind(s.participant_id.to_string())
            .bind(s.at)
            .fetch_optional(&self.reader)
            .await?;
            if live.is_none() {
                return Ok(SubmitOutcome::LoggedOut);
            }
        }
        let mut tx = self.begin().await?;
        let mut ticket = TicketOutcome::None;
        let mut ticket_round = None;
        if let (Some((campaign_id, round)), true) = (&s.ticket_round, s.passed) {
            let id = Uuid::new_v4();
            let issued: Option<String> = sqlx::query_scalar(
                "INSERT INTO tickets (id, campaign_id, round, participant_id, attempt_id, created_at)
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (
                     SELECT 1 FROM rounds WHERE campaign_id = $2 AND number = $3 AND progress = 'pending')
                 ON CONFLICT (campaign_id, round, participant_id) DO NOTHING RETURNING id",
            )
            .bind(id.to_string())
            .bind(campaign_id)
            .bind(i64::from(*round))
            .bind(s.participant_id.to_string())
            .bind(s.attempt_id.to_string())
            .bind(s.at)
            .fetch_optional(&mut *tx)
            .await?;
            ticket = match issued {
                Some(_) => TicketOutcome::Issued(id),
                None => {
                    let held: Option<String> = sqlx::query_scalar(
                        "SELECT id FROM tickets WHERE campaign_id = $1 AND round = $2 AND participant_id = $3",
                    )
                    .bind(campaign_id)
                    .bind(i64::from(*round))
                    .bind(s.participant_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                    // None: the round is no longer taking entries (frozen).
                    match held {
                        Some(held) => TicketOutcome::AlreadyHeld(parse_uuid(&held)?),
                        None => TicketOutcome::None,
                    }
                }
            };
            if ticket != TicketOutcome::None {
                ticket_round = Some(i64::from(*round));
            }
        }
        let (status, ticket_id) = ticket_columns(ticket);
        let done = sqlx::query(
            "UPDATE quiz_attempts SET submitted_at = $1, score = $2, passed = $3, result = $4,
                 ticket_round = $7, ticket_status = $8, ticket_id = $9
             WHERE id = $5 AND participant_id = $6 AND submitted_at IS NULL AND deadline >= $1",
        )
        .bind(s.at)
        .bind(i64::from(s.score))
        .bind(s.passed)
        .bind(&s.result)
        .bind(s.attempt_id.to_string())
        .bind(s.participant_id.to_string())
        .bind(ticket_round)
        .bind(status)
        .bind(ticket_id.map(|u| u.to_string()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(SubmitOutcome::Recorded(ticket));
        }
        // Nothing recorded: roll back the ticket too, and say why.
        let submitted: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
            "SELECT submitted_at FROM quiz_attempts WHERE id = $1 AND participant_id = $2",
        )
        .bind(s.attempt_id.to_string())
        .bind(s.participant_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(match submitted {
            None => SubmitOutcome::NotFound,
            Some(Some(_)) => SubmitOutcome::AlreadySubmitted,
            Some(None) => SubmitOutcome::Expired,
        })
    }

    async fn tickets_of(&self, participant_id: Uuid) -> StoreResult<Vec<TicketRecord>> {
        let rows = sqlx::query(
            "SELECT id, campaign_id, round, created_at FROM tickets WHERE participant_id = $1 ORDER BY round",
        )
        .bind(participant_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let round: i64 = r.try_get("round")?;
                Ok(TicketRecord {
                    id: uuid_of(r, "id")?,
                    campaign_id: r.try_get("campaign_id")?,
                    round: round as u32,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    // ---- draws ------------------------------------------------------------------------------

    async fn round_draw_state(
        &self,
        campaign_id: &str,
        round: u32,
    ) -> StoreResult<Option<RoundDrawState>> {
        let mut conn = self.reader.acquire().await?;
        draw_state(&mut conn, campaign_id, round).await
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
        let mut tx = self.begin().await?;
        let progress = round_progress_of(&mut tx, campaign_id, round).await?;
        if progress != RoundProgress::Pending {
            return Err(StoreError::Conflict(format!(
                "round {round} is already {}: commitments are closed",
                progress.as_str()
            )));
        }
        let inserted = sqlx::query(
            "INSERT INTO witness_commitments (campaign_id, round, witness, commitment, committed_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(campaign_id)
        .bind(i64::from(round))
        .bind(witness)
        .bind(commitment)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "{witness} has already committed to round {round}"
            )));
        }
        append(&mut tx, commit_event(actor, round, witness, commitment), at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn freeze_round(
        &self,
        f: FreezeRound,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let progress = round_progress_of(&mut tx, &f.campaign_id, f.round).await?;
        if progress != RoundProgress::Pending {
            return Err(StoreError::Conflict(format!(
                "round {} is already {}",
                f.round,
                progress.as_str()
            )));
        }
        let (previous_offered, previous_awarded) = if f.round > 1 {
            let previous = round_progress_of(&mut tx, &f.campaign_id, f.round - 1).await?;
            if previous != RoundProgress::Drawn {
                return Err(StoreError::Conflict(format!(
                    "round {} must be drawn before round {} is frozen",
                    f.round - 1,
                    f.round
                )));
            }
            let prizes: Option<String> = sqlx::query_scalar(
                "SELECT prizes FROM rounds WHERE campaign_id = $1 AND number = $2",
            )
            .bind(&f.campaign_id)
            .bind(i64::from(f.round - 1))
            .fetch_one(&mut *tx)
            .await?;
            let awarded: Vec<(String, i64)> = sqlx::query_as(
                "SELECT tier, COUNT(*) FROM round_winners WHERE campaign_id = $1 AND round = $2 GROUP BY tier",
            )
            .bind(&f.campaign_id)
            .bind(i64::from(f.round - 1))
            .fetch_all(&mut *tx)
            .await?;
            (
                parse_prizes(prizes.as_deref())?,
                awarded.into_iter().map(|(t, n)| (t, n as u32)).collect(),
            )
        } else {
            (Vec::new(), std::collections::HashMap::new())
        };
        let commitments: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM witness_commitments WHERE campaign_id = $1 AND round = $2",
        )
        .bind(&f.campaign_id)
        .bind(i64::from(f.round))
        .fetch_one(&mut *tx)
        .await?;
        if commitments < i64::from(f.min_witnesses) {
            return Err(StoreError::Conflict(format!(
                "round {} needs {} witness commitments before the freeze; it has {commitments}",
                f.round, f.min_witnesses
            )));
        }
        let entries = eligible(&mut tx, &f.campaign_id, f.round, f.win_limit).await?;
        let root = hex::encode(crate::domain::draw::entries_root(&entries));
        let prizes = prizes_with_rollover(&f.base_prizes, &previous_offered, &previous_awarded);
        sqlx::query(
            "UPDATE rounds SET progress = 'frozen', frozen_at = $1, entry_count = $2, entries_root = $3,
                 beacon_source = $4, prizes = $5
             WHERE campaign_id = $6 AND number = $7 AND progress = 'pending'",
        )
        .bind(at)
        .bind(entries.len() as i64)
        .bind(&root)
        .bind(&f.beacon_source)
        .bind(prizes_json(&prizes)?)
        .bind(&f.campaign_id)
        .bind(i64::from(f.round))
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            freeze_event(
                actor,
                f.round,
                entries.len(),
                &root,
                &prizes,
                &f.beacon_source,
            ),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
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
        let mut tx = self.begin().await?;
        let progress = round_progress_of(&mut tx, campaign_id, round).await?;
        if progress != RoundProgress::Frozen {
            return Err(StoreError::Conflict(match progress {
                RoundProgress::Pending => format!(
                    "round {round} is not frozen yet: secrets are revealed after the freeze"
                ),
                _ => format!("round {round} is already drawn"),
            }));
        }
        let done = sqlx::query(
            "UPDATE witness_commitments SET secret = $1, revealed_at = $2
             WHERE campaign_id = $3 AND round = $4 AND witness = $5 AND secret IS NULL",
        )
        .bind(secret_hex)
        .bind(at)
        .bind(campaign_id)
        .bind(i64::from(round))
        .bind(witness)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "{witness} has no unrevealed commitment to round {round}"
            )));
        }
        append(&mut tx, reveal_event(actor, round, witness), at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn draw_round(&self, d: DrawRound, actor: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let state = draw_state(&mut tx, &d.campaign_id, d.round)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("round {}", d.round)))?;
        let plan = plan_draw(&d, &state)?;
        let entries = eligible(&mut tx, &d.campaign_id, d.round, d.win_limit).await?;
        let result = plan.run(&d, &state, &entries)?;
        let mut issued = Vec::new();
        for w in &result.winners {
            let participant: String =
                sqlx::query_scalar("SELECT participant_id FROM tickets WHERE id = $1")
                    .bind(w.ticket.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query(
                "INSERT INTO round_winners (campaign_id, round, rank, ticket_id, participant_id, tier)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&d.campaign_id)
            .bind(i64::from(d.round))
            .bind(i64::from(w.rank))
            .bind(w.ticket.to_string())
            .bind(&participant)
            .bind(&w.tier)
            .execute(&mut *tx)
            .await?;
            for kind in plan.kinds_of(&w.tier) {
                let id = Uuid::new_v4();
                issued.push((id, w.rank, kind.clone()));
                sqlx::query(
                    "INSERT INTO vouchers (id, code, campaign_id, round, rank, participant_id, kind, issued_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id.to_string())
                .bind(new_voucher_code()?.as_str())
                .bind(&d.campaign_id)
                .bind(i64::from(d.round))
                .bind(i64::from(w.rank))
                .bind(&participant)
                .bind(kind)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "UPDATE rounds SET progress = 'drawn', beacon = $1, seed = $2, drawn_at = $3
             WHERE campaign_id = $4 AND number = $5 AND progress = 'frozen'",
        )
        .bind(&d.beacon)
        .bind(hex::encode(result.seed))
        .bind(at)
        .bind(&d.campaign_id)
        .bind(i64::from(d.round))
        .execute(&mut *tx)
        .await?;
        append(&mut tx, draw_event(actor, d.round, &d.beacon, &result), at).await?;
        append(&mut tx, issue_event(actor, d.round, &issued), at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn round_entries(
        &self,
        campaign_id: &str,
        round: u32,
        win_limit: u32,
    ) -> StoreResult<Vec<Uuid>> {
        let mut conn = self.reader.acquire().await?;
        eligible(&mut conn, campaign_id, round, win_limit).await
    }

    // ---- vouchers -------------------------------------------------------------------------------

    async fn voucher(&self, id: Uuid) -> StoreResult<Option<VoucherRecord>> {
        let mut conn = self.reader.acquire().await?;
        one_voucher(&mut conn, "v.id", &id.to_string()).await
    }

    async fn voucher_by_code(&self, code: &str) -> StoreResult<Option<VoucherRecord>> {
        let mut conn = self.reader.acquire().await?;
        one_voucher(&mut conn, "v.code", code).await
    }

    async fn vouchers_of(&self, participant_id: Uuid) -> StoreResult<Vec<VoucherRecord>> {
        let mut conn = self.reader.acquire().await?;
        vouchers_where(&mut conn, "v.participant_id", &participant_id.to_string()).await
    }

    async fn all_vouchers(&self, campaign_id: &str) -> StoreResult<Vec<VoucherRecord>> {
        let mut conn = self.reader.acquire().await?;
        vouchers_where(&mut conn, "v.campaign_id", campaign_id).await
    }

    async fn redeem(&self, campaign: &Campaign, r: Redeem) -> StoreResult<RedeemOutcome> {
        // Judged on a reader connection, so that the one writer only writes: the insert's
        // guards (the voucher still live, the slot free and the key unused, by unique indexes)
        // keep the judgement true. When a guard fails, read again: the answer is then a
        // refusal, a replay or a reuse.
        let mut conn = self.reader.acquire().await?;
        for _ in 0..5 {
            let voucher = one_voucher(&mut conn, "v.code", &r.code).await?;
            let verdict = match &voucher {
                Some(v) => judge_redeem(campaign, v, &r)?,
                None => Ok(()),
            };
            if voucher.is_none() || verdict.is_err() {
                // A retry of a request that went through is refused by the rules now (its own
                // use is there): the key says what the first answer was.
                if let Some(earlier) =
                    by_idempotency_key(&mut conn, r.token_id, &r.idempotency_key).await?
                {
                    return Ok(replay(earlier, voucher, &r));
                }
                return Ok(refused(voucher, verdict));
            }
            let voucher = voucher.expect("checked above");
            let id = Uuid::new_v4();
            let mut tx = self.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO redemptions (id, voucher_id, entitlement, slot, venue_id, token_id,
                     idempotency_key, redeemed_at)
                 SELECT $1, id, $3, $4, $5, $6, $7, $8 FROM vouchers WHERE id = $2 AND status = 'issued'
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.to_string())
            .bind(voucher.id.to_string())
            .bind(voucher.entitlement())
            .bind(redemption_slot(campaign, &voucher, &r.venue.id)?)
            .bind(&r.venue.id)
            .bind(r.token_id.to_string())
            .bind(&r.idempotency_key)
            .bind(r.at)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                drop(tx);
                if let Some(earlier) =
                    by_idempotency_key(&mut conn, r.token_id, &r.idempotency_key).await?
                {
                    return Ok(replay(earlier, Some(voucher), &r));
                }
                continue;
            }
            let redemption = r.record(id, &voucher);
            append(&mut tx, redeem_event(&redemption, &r.actor), r.at).await?;
            tx.commit().await?;
            return Ok(RedeemOutcome::Redeemed {
                redemption,
                voucher,
                replayed: false,
            });
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
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM} WHERE r.id = $1 AND r.venue_id = $2"
        ))
        .bind(redemption_id.to_string())
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
        sqlx::query(
            "INSERT INTO reversals (id, redemption_id, venue_id, token_id, reversed_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(reversal.to_string())
        .bind(redemption_id.to_string())
        .bind(venue_id)
        .bind(token_id.to_string())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE redemptions SET reversal_id = $1 WHERE id = $2 AND reversal_id IS NULL",
        )
        .bind(reversal.to_string())
        .bind(redemption_id.to_string())
        .execute(&mut *tx)
        .await?;
        append(&mut tx, reverse_event(&redemption, reversal, actor), at).await?;
        tx.commit().await?;
        redemption.reversal_id = Some(reversal);
        redemption.reversed_at = Some(at);
        Ok(ReverseOutcome::Reversed(redemption))
    }

    async fn recent_redemptions(
        &self,
        venue_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<RedemptionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM}
             WHERE ($1 IS NULL OR r.venue_id = $1) ORDER BY r.redeemed_at DESC, r.id LIMIT $2"
        ))
        .bind(venue_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(redemption_from_row).collect()
    }

    async fn redemptions_between(
        &self,
        venue_id: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<RedemptionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {REDEMPTION_COLUMNS} {REDEMPTION_FROM}
             WHERE ($1 IS NULL OR r.venue_id = $1)
               AND ((r.redeemed_at >= $2 AND r.redeemed_at < $3)
                    OR (x.reversed_at >= $2 AND x.reversed_at < $3))
             ORDER BY r.redeemed_at, r.id"
        ))
        .bind(venue_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(redemption_from_row).collect()
    }

    async fn void_voucher(
        &self,
        id: Uuid,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<VoucherRecord> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE vouchers SET status = 'void', voided_at = $1, void_reason = $2
             WHERE id = $3 AND status = 'issued'",
        )
        .bind(at)
        .bind(reason)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let voucher = one_voucher(&mut tx, "v.id", &id.to_string())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("voucher {id}")))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "voucher {id} is already void"
            )));
        }
        append(&mut tx, void_event(id, reason, actor), at).await?;
        tx.commit().await?;
        Ok(voucher)
    }

    async fn reissue_voucher(
        &self,
        id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<VoucherRecord> {
        let mut tx = self.begin().await?;
        let old = one_voucher(&mut tx, "v.id", &id.to_string())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("voucher {id}")))?;
        check_reissue(&old)?;
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM vouchers WHERE reissued_from = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(new) = taken {
            return Err(StoreError::Conflict(format!(
                "voucher {id} was already reissued as {new}"
            )));
        }
        let new_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO vouchers (id, code, campaign_id, round, rank, participant_id, kind, issued_at, reissued_from)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id.to_string())
        .bind(new_voucher_code()?.as_str())
        .bind(&old.campaign_id)
        .bind(i64::from(old.round))
        .bind(i64::from(old.rank))
        .bind(old.participant_id.to_string())
        .bind(&old.kind)
        .bind(at)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        append(&mut tx, reissue_event(&old, new_id, actor), at).await?;
        let new = one_voucher(&mut tx, "v.id", &new_id.to_string())
            .await?
            .ok_or_else(|| StoreError::Database("the reissued voucher vanished".into()))?;
        tx.commit().await?;
        Ok(new)
    }

    async fn record_lookup_failure(
        &self,
        token_id: Uuid,
        address: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        prune_and_record_failure(&mut tx, token_id.to_string(), address, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lookup_failures(
        &self,
        token_id: Uuid,
        address: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<LookupFailures> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM lookup_failures WHERE token_id = $1 AND at > $3) AS by_token,
                    (SELECT MIN(at) FROM lookup_failures WHERE token_id = $1 AND at > $3) AS token_oldest,
                    (SELECT COUNT(*) FROM lookup_failures WHERE address = $2 AND at > $3) AS by_address,
                    (SELECT MIN(at) FROM lookup_failures WHERE address = $2 AND at > $3) AS address_oldest",
        )
        .bind(token_id.to_string())
        .bind(address)
        .bind(since)
        .fetch_one(&self.reader)
        .await?;
        Ok(LookupFailures {
            by_token: row.try_get::<i64, _>("by_token")? as u32,
            token_oldest: row.try_get("token_oldest")?,
            by_address: row.try_get::<i64, _>("by_address")? as u32,
            address_oldest: row.try_get("address_oldest")?,
        })
    }

    async fn forget_expired(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let mut gone = 0;
        for sql in super::FORGET_EXPIRED {
            gone += sqlx::query(sql)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(gone)
    }
}
