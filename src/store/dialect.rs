//! What the one SQL store ([`super::sql`]) needs of a database, and nothing more.
//!
//! The store's statements are written once, with `$n` placeholders, `RETURNING` and
//! `ON CONFLICT`, which both databases understand. They bind [`Arg`]s and read rows through
//! [`ReadRow`]; each backend maps those to its own column types (a ticket id is a `UUID` on
//! PostgreSQL and lowercase hyphenated text on SQLite). A [`Dialect`] supplies the rest: its
//! connections and transactions, row locks, and the few operations where the databases really
//! differ (advisory locks, reading a million ids, the measured one-statement fast paths).

use super::{StoreError, StoreResult};
use chrono::{DateTime, NaiveDate, Utc};
use std::borrow::Cow;
use std::future::Future;
use std::ops::DerefMut;
use uuid::Uuid;

/// A bound value, by what it is rather than how a database stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    Text(Option<Cow<'a, str>>),
    /// An `INTEGER` column.
    Int(Option<i32>),
    /// A `BIGINT` column (audit sequence numbers, outbox ids).
    BigInt(Option<i64>),
    Bool(Option<bool>),
    Id(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
    Bytes(Option<Vec<u8>>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}
impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Some(Cow::Owned(v)))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v.map(Cow::Borrowed))
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref().map(Cow::Borrowed))
    }
}
impl From<i32> for Arg<'_> {
    fn from(v: i32) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i32>> for Arg<'_> {
    fn from(v: Option<i32>) -> Self {
        Arg::Int(v)
    }
}
/// Rounds, ranks and counts: `INTEGER` columns. The configuration keeps them far below 2³¹.
impl From<u32> for Arg<'_> {
    fn from(v: u32) -> Self {
        Arg::Int(Some(i32::try_from(v).unwrap_or(i32::MAX)))
    }
}
impl From<Option<u32>> for Arg<'_> {
    fn from(v: Option<u32>) -> Self {
        Arg::Int(v.map(|v| i32::try_from(v).unwrap_or(i32::MAX)))
    }
}
impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::BigInt(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::BigInt(v)
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(Some(v))
    }
}
impl From<Option<bool>> for Arg<'_> {
    fn from(v: Option<bool>) -> Self {
        Arg::Bool(v)
    }
}
impl From<Uuid> for Arg<'_> {
    fn from(v: Uuid) -> Self {
        Arg::Id(Some(v))
    }
}
impl From<Option<Uuid>> for Arg<'_> {
    fn from(v: Option<Uuid>) -> Self {
        Arg::Id(v)
    }
}
impl From<DateTime<Utc>> for Arg<'_> {
    fn from(v: DateTime<Utc>) -> Self {
        Arg::Time(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Arg<'_> {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::Time(v)
    }
}
impl From<Vec<u8>> for Arg<'_> {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(Some(v))
    }
}
impl From<NaiveDate> for Arg<'_> {
    fn from(v: NaiveDate) -> Self {
        Arg::Date(Some(v))
    }
}

/// One statement and its bound values.
#[derive(Debug, Clone)]
pub struct Sql<'a> {
    pub text: Cow<'a, str>,
    pub args: Vec<Arg<'a>>,
}

/// A statement, to be bound and run: `sql("… $1").bind(x).fetch_all(&mut *conn)`.
pub fn sql<'a>(text: impl Into<Cow<'a, str>>) -> Sql<'a> {
    Sql {
        text: text.into(),
        args: Vec::new(),
    }
}

impl<'a> Sql<'a> {
    pub fn bind(mut self, value: impl Into<Arg<'a>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Rows affected.
    pub async fn execute<E: Exec>(self, e: &'a mut E) -> StoreResult<u64> {
        e.execute(self).await
    }

    pub async fn fetch_all<E: Exec>(self, e: &'a mut E) -> StoreResult<Vec<E::Row>> {
        e.fetch_all(self).await
    }

    pub async fn fetch_optional<E: Exec>(self, e: &'a mut E) -> StoreResult<Option<E::Row>> {
        e.fetch_optional(self).await
    }

    /// The one row the statement must return.
    pub async fn fetch_one<E: Exec>(self, e: &'a mut E) -> StoreResult<E::Row> {
        let text = self.text.clone();
        e.fetch_optional(self)
            .await?
            .ok_or_else(|| StoreError::Database(format!("no row from: {text}")))
    }
}

/// A connection statements run on (inside a transaction or not).
pub trait Exec: Send {
    type Row: ReadRow;

    fn execute<'e>(&'e mut self, q: Sql<'e>) -> impl Future<Output = StoreResult<u64>> + Send + 'e;

    fn fetch_all<'e>(
        &'e mut self,
        q: Sql<'e>,
    ) -> impl Future<Output = StoreResult<Vec<Self::Row>>> + Send + 'e;

    fn fetch_optional<'e>(
        &'e mut self,
        q: Sql<'e>,
    ) -> impl Future<Output = StoreResult<Option<Self::Row>>> + Send + 'e;
}

/// Reading a column by name, whatever the database stored it as. Each method returns `None`
/// for SQL NULL; [`ReadRow::get`] makes a missing value an error.
pub trait ReadRow: Send + Sync + Sized {
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;
    /// Any integer column, whatever its width.
    fn opt_i64(&self, column: &str) -> StoreResult<Option<i64>>;
    fn opt_bool(&self, column: &str) -> StoreResult<Option<bool>>;
    fn opt_id(&self, column: &str) -> StoreResult<Option<Uuid>>;
    fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>>;
    fn opt_date(&self, column: &str) -> StoreResult<Option<NaiveDate>>;

    fn get<T: Column>(&self, column: &str) -> StoreResult<T> {
        T::read(self, column)
    }
}

/// A Rust type a column can be read as.
pub trait Column: Sized {
    fn read<R: ReadRow>(row: &R, column: &str) -> StoreResult<Self>;
}

fn required<T>(value: Option<T>, column: &str) -> StoreResult<T> {
    value.ok_or_else(|| StoreError::Database(format!("column {column} is unexpectedly NULL")))
}

fn narrow<T: TryFrom<i64>>(value: i64, column: &str) -> StoreResult<T> {
    T::try_from(value)
        .map_err(|_| StoreError::Database(format!("column {column} is out of range: {value}")))
}

macro_rules! columns {
    ($($t:ty => $read:ident),* $(,)?) => {$(
        impl Column for Option<$t> {
            fn read<R: ReadRow>(row: &R, column: &str) -> StoreResult<Self> {
                row.$read(column)
            }
        }
        impl Column for $t {
            fn read<R: ReadRow>(row: &R, column: &str) -> StoreResult<Self> {
                required(row.$read(column)?, column)
            }
        }
    )*};
}

columns!(
    String => opt_text,
    i64 => opt_i64,
    bool => opt_bool,
    Uuid => opt_id,
    DateTime<Utc> => opt_time,
    NaiveDate => opt_date,
);

macro_rules! narrow_columns {
    ($($t:ty),*) => {$(
        impl Column for Option<$t> {
            fn read<R: ReadRow>(row: &R, column: &str) -> StoreResult<Self> {
                row.opt_i64(column)?.map(|v| narrow(v, column)).transpose()
            }
        }
        impl Column for $t {
            fn read<R: ReadRow>(row: &R, column: &str) -> StoreResult<Self> {
                narrow(required(row.opt_i64(column)?, column)?, column)
            }
        }
    )*};
}

narrow_columns!(i32, u32, u64);

/// Implements [`Exec`] for a sqlx connection type: every [`Arg`] is bound as itself but ids,
/// which are bound as `$id_expr`.
macro_rules! sqlx_exec {
    ($db:ty, $conn:ty, $row:ty, |$id:ident| $id_expr:expr) => {
        fn bound<'q>(
            q: &'q $crate::store::dialect::Sql<'_>,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            use $crate::store::dialect::Arg;
            let mut query = sqlx::query(&q.text);
            for a in &q.args {
                query = match a {
                    Arg::Text(v) => query.bind(v.as_deref()),
                    Arg::Int(v) => query.bind(*v),
                    Arg::BigInt(v) => query.bind(*v),
                    Arg::Bool(v) => query.bind(*v),
                    Arg::Id($id) => query.bind($id_expr),
                    Arg::Time(v) => query.bind(*v),
                    Arg::Date(v) => query.bind(*v),
                    Arg::Bytes(v) => query.bind(v.as_deref()),
                };
            }
            query
        }

        impl $crate::store::dialect::Exec for $conn {
            type Row = $row;

            async fn execute<'e>(
                &'e mut self,
                q: $crate::store::dialect::Sql<'e>,
            ) -> $crate::store::StoreResult<u64> {
                Ok(bound(&q).execute(self).await?.rows_affected())
            }

            async fn fetch_all<'e>(
                &'e mut self,
                q: $crate::store::dialect::Sql<'e>,
            ) -> $crate::store::StoreResult<Vec<$row>> {
                Ok(bound(&q).fetch_all(self).await?)
            }

            async fn fetch_optional<'e>(
                &'e mut self,
                q: $crate::store::dialect::Sql<'e>,
            ) -> $crate::store::StoreResult<Option<$row>> {
                Ok(bound(&q).fetch_optional(self).await?)
            }
        }
    };
}
pub(super) use sqlx_exec;

/// A database the store runs on.
pub trait Dialect: Send + Sync + Sized + 'static {
    type Row: ReadRow;
    /// The raw connection statements run on.
    type Conn: Exec<Row = Self::Row>;
    /// A pooled connection for reads outside a transaction.
    type Reader: DerefMut<Target = Self::Conn> + Send;
    /// A write transaction; dropped without [`Dialect::commit`], it rolls back.
    type Tx: DerefMut<Target = Self::Conn> + Send;

    /// `sqlite` or `postgres`.
    const NAME: &'static str;
    /// Whether `SELECT … FOR UPDATE` exists. Where it does not (SQLite), a write transaction
    /// already holds the whole database.
    const ROW_LOCKS: bool;

    /// The `n`th placeholder of a statement whose placeholders appear in order, for statements of
    /// thousands of values. `$n` by default; SQLite binds a numbered one in time linear in the
    /// statement's number of placeholders (so a statement of n of them in n²), an anonymous `?`
    /// at once.
    fn placeholder(n: usize) -> String {
        format!("${n}")
    }

    fn reader(&self) -> impl Future<Output = StoreResult<Self::Reader>> + Send;
    fn begin(&self) -> impl Future<Output = StoreResult<Self::Tx>> + Send;
    fn commit(tx: Self::Tx) -> impl Future<Output = StoreResult<()>> + Send;
    fn migrate(&self) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes a consistent copy of the live database to the new file `path`, while it serves,
    /// and checks the copy. Where the database is a server (PostgreSQL), its own tools do that.
    fn backup_into<'e>(
        &'e self,
        path: &'e std::path::Path,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'e;

    /// Serialises the transactions that take the same key until they end (PostgreSQL: an
    /// advisory lock). Where a write transaction excludes every other (SQLite), nothing to do.
    fn lock_key<'e>(
        tx: &'e mut Self::Conn,
        key: &'e str,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'e;

    /// What [`super::sql::ROUND_TICKETS`] selects, as `(ticket, wins)`, in any order: possibly
    /// a million rows, so each backend reads them its fastest way.
    fn round_tickets<'e>(
        conn: &'e mut Self::Conn,
        campaign_id: &'e str,
        round: u32,
    ) -> impl Future<Output = StoreResult<Vec<(Uuid, u32)>>> + Send + 'e;

    /// Writes a quiz submission if the attempt can still take it; `None` when it cannot (the
    /// store then says why). The portable way is [`super::sql::write_submission`].
    fn write_submission<'e>(
        &'e self,
        s: &'e super::Submission,
    ) -> impl Future<Output = StoreResult<Option<super::TicketOutcome>>> + Send + 'e;

    /// Writes a redemption judged allowed, with its audit entry, if its guards still hold (the
    /// voucher live, the slot free, the key unused); false when one does not. `read` is the
    /// connection it was judged on (taking a second one from the same pool while holding it
    /// could wait forever under load). The portable way is [`super::sql::write_redemption`].
    fn write_redemption<'e>(
        &'e self,
        read: &'e mut Self::Conn,
        w: &'e super::sql::RedemptionWrite<'e>,
    ) -> impl Future<Output = StoreResult<bool>> + Send + 'e;

    /// Runs one writing statement, committed, for a use case that holds `read`: on it where it
    /// may write (PostgreSQL, where a second connection from the same pool could wait forever
    /// under load), in a write transaction of its own where one writer takes every write
    /// (SQLite). The rows it changed.
    fn write_beside<'e>(
        &'e self,
        read: &'e mut Self::Conn,
        q: Sql<'e>,
    ) -> impl Future<Output = StoreResult<u64>> + Send + 'e;
}

/// `… FOR UPDATE OF alias` where the database has row locks; nothing where it does not.
pub fn for_update<D: Dialect>(of: &str) -> String {
    if D::ROW_LOCKS {
        format!(" FOR UPDATE OF {of}")
    } else {
        String::new()
    }
}

/// `FOR UPDATE SKIP LOCKED` where the database has row locks (rows another transaction holds
/// are passed over, not waited for); nothing where a write transaction holds everything.
pub fn skip_locked<D: Dialect>() -> &'static str {
    if D::ROW_LOCKS {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    }
}
