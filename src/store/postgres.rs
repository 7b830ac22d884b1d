//! PostgreSQL: for production and for several service instances on one database. Correctness
//! across instances comes from the database: row locks on the audit head serialise appends, an
//! advisory lock serialises configuration syncs, and unique constraints back every "once".

use super::*;
use crate::domain::audit::chain;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Key of the advisory lock held while the configuration is synced.
const SYNC_LOCK: i64 = 0x4341_4D50_5359_4E43; // "CAMPSYNC"

pub struct PostgresStore {
    pool: PgPool,
}

type Tx = Transaction<'static, Postgres>;

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Database(format!("bad PostgreSQL URL {:?}: {e}", redact_url(url)))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> StoreResult<Tx> {
        Ok(self.pool.begin().await?)
    }
}

async fn append(tx: &mut Tx, event: AuditEvent, at: DateTime<Utc>) -> StoreResult<AuditEntry> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
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

fn token_from_row(row: &sqlx::postgres::PgRow) -> StoreResult<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: parse_role(row.try_get("role")?)?,
        venue_id: row.try_get("venue_id")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn audit_from_row(row: &sqlx::postgres::PgRow) -> StoreResult<AuditEntry> {
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

async fn recorded(conn: &mut sqlx::PgConnection) -> StoreResult<Option<Campaign>> {
    let row = sqlx::query(
        "SELECT definition::text AS definition FROM campaigns ORDER BY synced_at LIMIT 1",
    )
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
    conn: &mut sqlx::PgConnection,
    campaign_id: &str,
) -> StoreResult<Vec<(u32, RoundProgress)>> {
    let rows =
        sqlx::query("SELECT number, progress FROM rounds WHERE campaign_id = $1 ORDER BY number")
            .bind(campaign_id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| {
            let n: i32 = r.try_get("number")?;
            let p: String = r.try_get("progress")?;
            Ok((n as u32, parse_progress(&p)?))
        })
        .collect()
}

const TOKEN_COLUMNS: &str = "id, name, role, venue_id, created_at, revoked_at";

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn recorded_campaign(&self) -> StoreResult<Option<Campaign>> {
        let mut conn = self.pool.acquire().await?;
        recorded(&mut conn).await
    }

    async fn sync_campaign(&self, c: &Campaign, at: DateTime<Utc>) -> StoreResult<SyncOutcome> {
        let mut tx = self.begin().await?;
        // Two instances starting together must not both create the campaign.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SYNC_LOCK)
            .execute(&mut *tx)
            .await?;
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
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone,
                first_round_start = excluded.first_round_start, win_limit = excluded.win_limit,
                min_witnesses = excluded.min_witnesses, definition = excluded.definition,
                synced_at = excluded.synced_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.time_zone)
        .bind(c.first_round_start)
        .bind(c.win_limit as i32)
        .bind(c.min_witnesses as i32)
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
            .bind(r.number as i32)
            .bind(r.opens_at)
            .bind(r.closes_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM rounds WHERE campaign_id = $1 AND number > $2 AND progress = 'pending'",
        )
        .bind(&c.id)
        .bind(c.rounds.len() as i32)
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
            .bind(k.face_value_yuan.map(|v| v as i32))
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
            .bind(position as i32)
            .bind(&t.name)
            .bind(&t.label)
            .bind(t.count as i32)
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
        let mut conn = self.pool.acquire().await?;
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
        .bind(record.id)
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
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
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
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE id = $1")
                .bind(id)
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
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_head(&self) -> StoreResult<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }
}
