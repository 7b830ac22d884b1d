//! PostgreSQL: for production and for several service instances on one database. Correctness
//! across instances comes from the database: row locks (`FOR UPDATE`) on the round and on the
//! audit head serialise what must happen once, advisory locks serialise configuration syncs and
//! one phone's code requests, and unique constraints back every "once".

use super::dialect::{sql, Dialect, ReadRow};
use super::sql::{bind_submission, RedemptionWrite, ROUND_TICKETS};
use super::{redact_url, StoreError, StoreResult, Submission, TicketOutcome};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, Row, TypeInfo, ValueRef};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct Pg {
    pool: PgPool,
}

impl Pg {
    pub async fn connect(url: &str, limits: super::ConnectLimits) -> StoreResult<Self> {
        let millis = |d: Duration| format!("{}ms", d.as_millis());
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Database(format!("bad PostgreSQL URL {:?}: {e}", redact_url(url)))
            })?
            // Every statement, migrations and requests alike, gives up on a lock or on itself
            // instead of hanging: the caller is told the database is unavailable.
            .options([
                ("lock_timeout", millis(limits.lock_timeout)),
                ("statement_timeout", millis(limits.statement_timeout)),
            ]);
        first_connection(&options, limits.connect_timeout).await?;
        let pool = PgPoolOptions::new()
            .max_connections(limits.max_connections.max(2))
            .acquire_timeout(limits.connect_timeout)
            // sqlx pings every connection it hands out by default: a second round trip for each
            // statement. A connection that died is found by the statement itself instead (one
            // failed request per dead connection, e.g. after a database restart).
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

/// One connection made at once, so that a server that refuses or does not answer is named as
/// such (a pool only says, after its time-out, that it timed out).
async fn first_connection(options: &PgConnectOptions, timeout: Duration) -> StoreResult<()> {
    use sqlx::{ConnectOptions, Connection};
    let server = format!(
        "PostgreSQL at {}:{}",
        options.get_host(),
        options.get_port()
    );
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(StoreError::Unavailable(format!(
                "{server} refused the connection: is the server running and listening there?"
            )))
        }
        Ok(Err(e)) => Err(match StoreError::from(e) {
            StoreError::Unavailable(cause) => {
                StoreError::Unavailable(format!("{server} cannot be reached: {cause}"))
            }
            other => other,
        }),
        Err(_) => Err(StoreError::Unavailable(format!(
            "{server} did not answer within {} s (database.connect_timeout_secs)",
            timeout.as_secs()
        ))),
    }
}

super::dialect::sqlx_exec!(Postgres, PgConnection, PgRow, |id| *id);

/// What a PostgreSQL error means, by its SQLSTATE: no room (`53100` disk full, `53200` out of
/// memory), or a passing outage (connection exceptions `08…`, the server shutting down or
/// starting `57P01`–`57P03`, too many connections `53300`, a database not accepting connections
/// `55000`, a lock or statement time-out `55P03`, `57014`).
pub(super) fn failure(e: &dyn sqlx::error::DatabaseError) -> super::Failure {
    let code = e.code().unwrap_or_default();
    match code.as_ref() {
        "53100" | "53200" => super::Failure::Full,
        c if c.starts_with("08") => super::Failure::Unavailable,
        "57P01" | "57P02" | "57P03" | "53300" | "55000" | "55P03" | "57014" => {
            super::Failure::Unavailable
        }
        _ => super::Failure::Other,
    }
}

impl ReadRow for PgRow {
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn opt_i64(&self, column: &str) -> StoreResult<Option<i64>> {
        // PostgreSQL is strict about widths: read each as what it is.
        let value = self.try_get_raw(column)?;
        if value.is_null() {
            return Ok(None);
        }
        let width = value.type_info().name().to_owned();
        Ok(Some(match width.as_str() {
            "INT2" => i64::from(self.try_get::<i16, _>(column)?),
            "INT4" => i64::from(self.try_get::<i32, _>(column)?),
            _ => self.try_get::<i64, _>(column)?,
        }))
    }

    fn opt_bool(&self, column: &str) -> StoreResult<Option<bool>> {
        Ok(self.try_get(column)?)
    }

    fn opt_id(&self, column: &str) -> StoreResult<Option<Uuid>> {
        Ok(self.try_get(column)?)
    }

    fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.try_get(column)?)
    }

    fn opt_date(&self, column: &str) -> StoreResult<Option<NaiveDate>> {
        Ok(self.try_get(column)?)
    }
}

impl Dialect for Pg {
    type Row = PgRow;
    type Conn = PgConnection;
    type Reader = sqlx::pool::PoolConnection<Postgres>;
    type Tx = sqlx::Transaction<'static, Postgres>;

    const NAME: &'static str = "postgres";
    const ROW_LOCKS: bool = true;

    async fn reader(&self) -> StoreResult<Self::Reader> {
        Ok(self.pool.acquire().await?)
    }

    async fn begin(&self) -> StoreResult<Self::Tx> {
        Ok(self.pool.begin().await?)
    }

    async fn commit(tx: Self::Tx) -> StoreResult<()> {
        Ok(tx.commit().await?)
    }

    async fn migrate(&self) -> StoreResult<()> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    async fn backup_into(&self, _path: &std::path::Path) -> StoreResult<()> {
        Err(StoreError::Database(
            "a PostgreSQL database is backed up with pg_dump, or continuously by WAL archiving \
             (docs/operations.md)"
                .into(),
        ))
    }

    async fn lock_key<'e>(tx: &'e mut PgConnection, key: &'e str) -> StoreResult<()> {
        sql("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text AS locked")
            .bind(key)
            .fetch_one(tx)
            .await?;
        Ok(())
    }

    async fn round_tickets<'e>(
        conn: &'e mut PgConnection,
        campaign_id: &'e str,
        round: u32,
    ) -> StoreResult<Vec<(Uuid, u32)>> {
        // Streamed: a million rows are never all in memory at once, only their values.
        let mut rows = sqlx::query_as::<_, (Uuid, i64)>(ROUND_TICKETS)
            .bind(campaign_id)
            .bind(round as i32)
            .fetch(conn);
        let mut tickets = Vec::new();
        while let Some((id, wins)) = rows.try_next().await? {
            tickets.push((id, u32::try_from(wins).unwrap_or(u32::MAX)));
        }
        Ok(tickets)
    }

    async fn write_submission<'e>(
        &'e self,
        s: &'e Submission,
    ) -> StoreResult<Option<TicketOutcome>> {
        // One statement (measured: twice the portable way's rate through HTTP, see
        // docs/benchmarks.md): lock the attempt if it can still be submitted (and the
        // session is live), hold (or find) the ticket, record the result. ON CONFLICT DO
        // UPDATE returns the ticket another submission holds, even one committed after this
        // statement began; xmax = 0 tells a fresh insert.
        let round = match (&s.ticket_round, s.passed) {
            (Some((c, r)), true) => Some((c.as_str(), *r)),
            _ => None,
        };
        let row = bind_submission(
            sql("WITH att AS (
                 SELECT id FROM quiz_attempts
                 WHERE id = $5 AND participant_id = $6 AND submitted_at IS NULL AND deadline >= $11
                   AND ($10::text IS NULL OR EXISTS (
                       SELECT 1 FROM participant_sessions s
                       WHERE s.token_hash = $10 AND s.participant_id = $6 AND s.expires_at > $1))
                 FOR UPDATE
             ), ins AS (
                 INSERT INTO tickets (id, campaign_id, round, participant_id, attempt_id, created_at)
                 SELECT $7, $8, $9, $6, $5, $1 FROM att WHERE $9::int IS NOT NULL
                   AND EXISTS (SELECT 1 FROM rounds r WHERE r.campaign_id = $8 AND r.number = $9
                               AND r.progress = 'pending' FOR SHARE)
                 ON CONFLICT (campaign_id, round, participant_id) DO UPDATE SET id = tickets.id
                 RETURNING id, (xmax = 0) AS fresh
             )
             UPDATE quiz_attempts q SET submitted_at = $1, score = $2, passed = $3, result = $4,
                 ticket_round = (SELECT $9::int FROM ins),
                 ticket_id = (SELECT id FROM ins),
                 ticket_status = (SELECT CASE WHEN fresh THEN 'issued' ELSE 'already_held' END FROM ins)
             FROM att WHERE q.id = att.id
             RETURNING q.ticket_status, q.ticket_id"),
            s,
        )
        .bind(Uuid::new_v4())
        .bind(round.map(|(c, _)| c))
        .bind(round.map(|(_, r)| r))
        .bind(&s.session)
        .bind(s.due_after)
        .fetch_optional(&mut *self.pool.acquire().await?)
        .await?;
        row.map(|r| {
            super::sql::ticket_outcome(
                ReadRow::get::<Option<String>>(&r, "ticket_status")?.as_deref(),
                ReadRow::get(&r, "ticket_id")?,
            )
        })
        .transpose()
    }

    async fn write_beside<'e>(
        &'e self,
        read: &'e mut PgConnection,
        q: super::dialect::Sql<'e>,
    ) -> StoreResult<u64> {
        use super::dialect::Exec;
        read.execute(q).await
    }

    async fn write_redemption<'e>(
        &'e self,
        read: &'e mut PgConnection,
        w: &'e RedemptionWrite<'e>,
    ) -> StoreResult<bool> {
        // One statement (measured: ~560 redemptions/s against 360–460 the portable way,
        // docs/benchmarks.md): the voucher still live (FOR SHARE holds off a concurrent
        // void), the slot, the holder-code step and the key unused (unique indexes), the key's
        // answer, and the audit entry chained under the head's row lock, hashed in SQL over the
        // bytes that domain::audit::hash_frame frames. A key answered meanwhile (a refusal under it) fails
        // the answer's insert, and with it the whole statement: nothing is written.
        let (prefix, suffix) = crate::domain::audit::hash_frame(w.redemption.redeemed_at, &w.event);
        let statement = w
            .bind(sql("WITH v AS (
                     SELECT id FROM vouchers WHERE id = $2 AND status = 'issued' FOR SHARE
                 ), ins AS (
                     INSERT INTO redemptions (id, voucher_id, entitlement, slot, venue_id,
                         token_id, idempotency_key, redeemed_at, holder_step)
                     SELECT $1, v.id, $3, $4, $5, $6, $7, $8, $9 FROM v
                     ON CONFLICT DO NOTHING
                     RETURNING id
                 ), answer AS (
                     INSERT INTO idempotent_answers (token_id, idempotency_key, request, answer,
                         redemption_id, answered_at)
                     SELECT $6, $7, $16, 'redeemed', ins.id, $8 FROM ins
                 ), head AS (
                     SELECT seq, hash FROM audit_head WHERE id = 1 AND EXISTS (SELECT 1 FROM ins)
                     FOR UPDATE
                 ), log AS (
                     INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash,
                         hash)
                     SELECT seq + 1, $8, $10, $11, $12, $13, hash,
                            encode(sha256($14::bytea || int8send(seq + 1) || decode(hash, 'hex')
                                          || $15::bytea), 'hex')
                     FROM head
                     RETURNING seq, hash
                 ), upd AS (
                     UPDATE audit_head h SET seq = log.seq, hash = log.hash FROM log WHERE h.id = 1
                 )
                 SELECT (SELECT id FROM ins) AS redeemed"))
            .bind(&w.event.actor)
            .bind(&w.event.action)
            .bind(&w.event.subject)
            .bind(&w.event.details)
            .bind(prefix)
            .bind(suffix)
            .bind(w.request);
        // Run unwrapped, to tell the key's answer clashing from any other failure.
        match bound(&statement).fetch_one(read).await {
            Ok(row) => Ok(ReadRow::get::<Option<Uuid>>(&row, "redeemed")?.is_some()),
            Err(sqlx::Error::Database(e)) if e.constraint() == Some("idempotent_answers_pkey") => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}
