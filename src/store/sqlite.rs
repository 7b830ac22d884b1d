//! SQLite: the embedded default. One writer connection (SQLite allows one writer at a time
//! anyway) taking `BEGIN IMMEDIATE`, so that a transaction that reads before it writes never
//! meets a stale snapshot and excludes every other writer (no row locks needed); a pool of
//! readers beside it (WAL lets them run during writes). Ids are lowercase hyphenated text,
//! instants RFC 3339 text.

use super::dialect::{Dialect, ReadRow};
use super::sql::{write_redemption, write_submission, RedemptionWrite, ROUND_TICKETS};
use super::{StoreError, StoreResult, Submission, TicketOutcome};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct Lite {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Alive as long as the store; the checkpointer stops when it is gone.
    _alive: std::sync::Arc<()>,
}

/// How often the background task copies the write-ahead log back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The size the write-ahead log is kept under: a log that restarts (the first write after a
/// complete checkpoint) is cut back to it (`journal_size_limit`), and a log past it that no write
/// restarts — the service is quiet after a burst, or a long reader kept it from restarting — is
/// emptied by the checkpointer (`TRUNCATE`). Without them a burst leaves a log of its largest size
/// for good.
pub const WAL_LIMIT: u64 = 4 << 20;

/// Past this the log is emptied even while writes go on: an emptying checkpoint holds writers off
/// while it runs, so under load it is only worth it for a log that restarts cannot keep small.
const WAL_HARD_LIMIT: u64 = 16 * WAL_LIMIT;

/// How long the checkpointer waits for readers and the writer before it tries again next time:
/// an emptying checkpoint holds the writer off while it waits, so not long.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(200);

impl Lite {
    pub async fn connect(url: &str, limits: super::ConnectLimits) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(limits.lock_timeout)
            .pragma("journal_size_limit", WAL_LIMIT.to_string());
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
            // A connection whose COMMIT failed (a full disk, say) is left inside its transaction by
            // sqlx when the rollback that follows fails too ("no transaction is active"), and then
            // refuses every BEGIN. Such a connection is closed and a fresh one opened.
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    use sqlx::TransactionManager;
                    Ok(sqlx::sqlite::SqliteTransactionManager::get_transaction_depth(conn) == 0)
                })
            })
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(limits.max_connections.max(1))
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let wal = {
            let mut name = options.get_filename().as_os_str().to_owned();
            name.push("-wal");
            std::path::PathBuf::from(name)
        };
        let checkpointer = {
            use sqlx::ConnectOptions;
            options.busy_timeout(CHECKPOINT_WAIT).connect().await?
        };
        let alive = std::sync::Arc::new(());
        tokio::spawn(checkpoint_until_gone(
            checkpointer,
            wal,
            std::sync::Arc::downgrade(&alive),
        ));
        Ok(Self {
            writer,
            reader,
            _alive: alive,
        })
    }
}

/// Copies the write-ahead log into the database every [`CHECKPOINT_EVERY`] (`PASSIVE`: it waits
/// for nobody), and empties it when it is past [`WAL_LIMIT`] and has not grown since the last
/// tick (nobody is writing, so holding writers off costs nothing), or past [`WAL_HARD_LIMIT`],
/// until the store is gone. A failure (a full disk) is logged when it starts and when it ends,
/// not at every try.
async fn checkpoint_until_gone(
    mut conn: SqliteConnection,
    wal: std::path::PathBuf,
    alive: std::sync::Weak<()>,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut last_size = 0;
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() {
            break;
        }
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let quiet = size == last_size;
        last_size = size;
        // An emptying checkpoint under steady writes stalls them (measured: the p99 of 256
        // redemptions a second went from 3.6 to 27–33 ms); restarts keep such a log small.
        let empty = size > WAL_HARD_LIMIT || (size > WAL_LIMIT && quiet);
        let mode = if empty { "TRUNCATE" } else { "PASSIVE" };
        // Busy (readers or the writer in the way) is a row, not an error: tried again next tick.
        match sqlx::query(&format!("PRAGMA wal_checkpoint({mode})"))
            .execute(&mut conn)
            .await
        {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("WAL checkpoints work again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoint failed; trying again every half second");
            }
            Err(_) => {}
        }
    }
}

super::dialect::sqlx_exec!(Sqlite, SqliteConnection, SqliteRow, |id| id
    .map(|id| id.hyphenated().to_string()));

/// What an SQLite error means: a full database (`SQLITE_FULL`, also past `max_page_count`), a
/// database locked by another process for longer than the busy timeout; `None` for another
/// database's error.
pub(super) fn failure(e: &dyn sqlx::error::DatabaseError) -> Option<super::Failure> {
    let e = e.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    let primary = sqlx::error::DatabaseError::code(e)?.parse::<i32>().ok()? & 0xff;
    Some(match primary {
        13 => super::Failure::Full,
        5 | 6 => super::Failure::Unavailable,
        _ => super::Failure::Other,
    })
}

fn parse_uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::Database(format!("bad id {s:?}: {e}")))
}

impl ReadRow for SqliteRow {
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn opt_i64(&self, column: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(column)?)
    }

    fn opt_bool(&self, column: &str) -> StoreResult<Option<bool>> {
        Ok(self.try_get(column)?)
    }

    fn opt_id(&self, column: &str) -> StoreResult<Option<Uuid>> {
        self.try_get::<Option<String>, _>(column)?
            .as_deref()
            .map(parse_uuid)
            .transpose()
    }

    fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.try_get(column)?)
    }

    fn opt_date(&self, column: &str) -> StoreResult<Option<NaiveDate>> {
        Ok(self.try_get(column)?)
    }
}

impl Dialect for Lite {
    type Row = SqliteRow;
    type Conn = SqliteConnection;
    type Reader = sqlx::pool::PoolConnection<Sqlite>;
    type Tx = sqlx::Transaction<'static, Sqlite>;

    const NAME: &'static str = "sqlite";
    const ROW_LOCKS: bool = false;

    fn placeholder(_: usize) -> String {
        // Anonymous: SQLite finds a numbered one by a linear scan, and sqlx asks for each.
        "?".into()
    }

    async fn reader(&self) -> StoreResult<Self::Reader> {
        Ok(self.reader.acquire().await?)
    }

    async fn begin(&self) -> StoreResult<Self::Tx> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn commit(tx: Self::Tx) -> StoreResult<()> {
        Ok(tx.commit().await?)
    }

    async fn migrate(&self) -> StoreResult<()> {
        Ok(MIGRATOR.run(&self.writer).await?)
    }

    async fn backup_into(&self, path: &std::path::Path) -> StoreResult<()> {
        use sqlx::ConnectOptions;
        if path.exists() {
            return Err(StoreError::Database(format!(
                "{} exists already: a backup never overwrites a file",
                path.display()
            )));
        }
        let target = path.to_str().ok_or_else(|| {
            StoreError::Database(format!("{} is not a UTF-8 path", path.display()))
        })?;
        // One read transaction on a reader: a snapshot of the database as of its start, written
        // out compacted, while the writer goes on (WAL).
        let copied = sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.reader)
            .await;
        if let Err(e) = copied {
            // A half-written copy (a full disk) is no backup.
            let _ = std::fs::remove_file(path);
            return Err(e.into());
        }
        let mut copy = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .connect()
            .await?;
        let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut copy)
            .await?;
        if verdict != "ok" {
            return Err(StoreError::Database(format!(
                "the copy at {} fails its integrity check: {verdict}",
                path.display()
            )));
        }
        Ok(())
    }

    async fn lock_key<'e>(_tx: &'e mut SqliteConnection, _key: &'e str) -> StoreResult<()> {
        // BEGIN IMMEDIATE already made this the only writer.
        Ok(())
    }

    async fn round_tickets<'e>(
        conn: &'e mut SqliteConnection,
        campaign_id: &'e str,
        round: u32,
    ) -> StoreResult<Vec<(Uuid, u32)>> {
        // One row instead of a million: SQLite hands rows over one at a time, which dominates
        // the time of a large freeze. Each ticket is `id:wins`.
        let joined: Option<String> = sqlx::query_scalar(&format!(
            "SELECT group_concat(id || ':' || wins, ',') FROM ({ROUND_TICKETS})"
        ))
        .bind(campaign_id)
        .bind(i64::from(round))
        .fetch_one(conn)
        .await?;
        let Some(joined) = joined else {
            return Ok(Vec::new());
        };
        let mut tickets = Vec::with_capacity(joined.len() / 39 + 1);
        for ticket in joined.split(',') {
            let (id, wins) = ticket
                .split_once(':')
                .ok_or_else(|| StoreError::Database(format!("bad ticket row {ticket:?}")))?;
            let wins = wins
                .parse()
                .map_err(|_| StoreError::Database(format!("bad win count in {ticket:?}")))?;
            tickets.push((parse_uuid(id)?, wins));
        }
        Ok(tickets)
    }

    async fn write_submission<'e>(
        &'e self,
        s: &'e Submission,
    ) -> StoreResult<Option<TicketOutcome>> {
        write_submission(self, s).await
    }

    async fn write_redemption<'e>(
        &'e self,
        _read: &'e mut SqliteConnection,
        w: &'e RedemptionWrite<'e>,
    ) -> StoreResult<bool> {
        // On the writer: the reader it was judged on stays free.
        write_redemption(self, w).await
    }

    async fn write_beside<'e>(
        &'e self,
        _read: &'e mut SqliteConnection,
        q: super::dialect::Sql<'e>,
    ) -> StoreResult<u64> {
        use super::dialect::Exec;
        let mut tx = self.begin().await?;
        let changed = tx.execute(q).await?;
        Self::commit(tx).await?;
        Ok(changed)
    }
}
