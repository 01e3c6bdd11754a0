//! How the store's logic talks to either database: [`Conn`], one object-safe way to run a statement.
//!
//! Every statement is written once (see [`crate::sql`]) with SQLite's numbered placeholders (`?1`) and rewritten for
//! PostgreSQL (`$1`) once per statement ([`Stmt`]). Arguments are [`Arg`]s and rows come back as [`Row`]s, so the
//! logic that runs them ([`crate::sql_store`], [`crate::ingest`], [`crate::grouping`]) is written once too and no
//! SQL type crosses into it. Each backend implements [`Conn`] for its connections (binding and decoding, nothing
//! else) and [`Backend`] for what truly differs: how a transaction starts and what it must lock.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::{BoxFuture, Ingested, StoreError};

/// The SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement written once with `?N` placeholders, and where the dialects truly differ, its PostgreSQL text.
pub struct Stmt {
    sqlite: &'static str,
    postgres: Option<&'static str>,
    pg_text: OnceLock<String>,
}

impl Stmt {
    /// A statement both dialects run as written (PostgreSQL after `?N` → `$N`).
    pub const fn new(sql: &'static str) -> Self {
        Stmt {
            sqlite: sql,
            postgres: None,
            pg_text: OnceLock::new(),
        }
    }

    /// A real dialect difference (`GREATEST` vs `MAX`, `FOR UPDATE`, …): one text per dialect, both with `?N`.
    pub const fn dialects(sqlite: &'static str, postgres: &'static str) -> Self {
        Stmt {
            sqlite,
            postgres: Some(postgres),
            pg_text: OnceLock::new(),
        }
    }

    /// The text for `dialect`; PostgreSQL's is rewritten once and kept for the life of the process.
    pub fn text(&self, dialect: Dialect) -> &str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self
                .pg_text
                .get_or_init(|| to_pg(self.postgres.unwrap_or(self.sqlite))),
        }
    }
}

/// `?N` placeholders rewritten as PostgreSQL's `$N`. No statement of ours has a `?` anywhere else.
pub fn to_pg(sql: &str) -> String {
    sql.replace('?', "$")
}

/// What to run: a fixed statement, or one built at run time (a list of `?N` of the batch's length).
#[derive(Clone, Copy)]
pub enum Sql<'a> {
    Stmt(&'a Stmt),
    Built(&'a str),
}

impl<'a> From<&'a Stmt> for Sql<'a> {
    fn from(s: &'a Stmt) -> Self {
        Sql::Stmt(s)
    }
}

impl<'a> From<&'a str> for Sql<'a> {
    fn from(s: &'a str) -> Self {
        Sql::Built(s)
    }
}

impl<'a> From<&'a String> for Sql<'a> {
    fn from(s: &'a String) -> Self {
        Sql::Built(s)
    }
}

impl Sql<'_> {
    pub fn text(&self, dialect: Dialect) -> Cow<'_, str> {
        match (self, dialect) {
            (Sql::Stmt(s), d) => Cow::Borrowed(s.text(d)),
            (Sql::Built(s), Dialect::Sqlite) => Cow::Borrowed(s),
            (Sql::Built(s), Dialect::Postgres) => Cow::Owned(to_pg(s)),
        }
    }
}

/// One bound value.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Bool(bool),
    /// JSON text for a JSON column (JSONB on PostgreSQL, TEXT on SQLite).
    Json(&'a str),
    /// Bytes (BLOB, BYTEA).
    Bytes(&'a [u8]),
    /// A `text[]`: PostgreSQL only, for its own locking statements.
    TextArray(&'a [&'a str]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// `args![a, b, …]`: the arguments of a statement, in placeholder order.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$($crate::db::Arg::from($a)),*] };
}
pub(crate) use args;

/// A row as the backend decodes it: by column position, each value typed as the store reads it.
pub trait RawRow: Send + Sync {
    fn index_of(&self, name: &str) -> Result<usize, StoreError>;
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn boolean(&self, i: usize) -> Result<Option<bool>, StoreError>;
}

/// Every sqlx row the store reads is a [`RawRow`]: the decoding is sqlx's own.
impl<R> RawRow for R
where
    R: sqlx::Row + Send + Sync,
    usize: sqlx::ColumnIndex<R>,
    for<'n> &'n str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn index_of(&self, name: &str) -> Result<usize, StoreError> {
        Ok(sqlx::ColumnIndex::index(&name, self)?)
    }
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn boolean(&self, i: usize) -> Result<Option<bool>, StoreError> {
        Ok(self.try_get(i)?)
    }
}

/// A row of a result.
pub struct Row(Box<dyn RawRow>);

impl Row {
    pub fn new(raw: impl RawRow + 'static) -> Self {
        Row(Box::new(raw))
    }

    /// The value of a column, by position or by name.
    pub fn get<T: FromCol>(&self, col: impl Col) -> Result<T, StoreError> {
        let i = col.index(&*self.0)?;
        T::from_col(&*self.0, i)
    }
}

/// A column, by position or by name.
pub trait Col {
    fn index(&self, row: &dyn RawRow) -> Result<usize, StoreError>;
}
impl Col for usize {
    fn index(&self, _: &dyn RawRow) -> Result<usize, StoreError> {
        Ok(*self)
    }
}
impl Col for &str {
    fn index(&self, row: &dyn RawRow) -> Result<usize, StoreError> {
        row.index_of(self)
    }
}

/// A Rust type a column is read as.
pub trait FromCol: Sized {
    fn from_col(row: &dyn RawRow, i: usize) -> Result<Self, StoreError>;
}

fn not_null<T>(v: Option<T>, i: usize) -> Result<T, StoreError> {
    v.ok_or_else(|| StoreError::Corrupt(format!("column {i} is unexpectedly NULL")))
}

impl FromCol for i64 {
    fn from_col(row: &dyn RawRow, i: usize) -> Result<Self, StoreError> {
        not_null(row.int(i)?, i)
    }
}
impl FromCol for Option<i64> {
    fn from_col(row: &dyn RawRow, i: usize) -> Result<Self, StoreError> {
        row.int(i)
    }
}
impl FromCol for String {
    fn from_col(row: &dyn RawRow, i: usize) -> Result<Self, StoreError> {
        not_null(row.text(i)?, i)
    }
}
impl FromCol for Option<String> {
    fn from_col(row: &dyn RawRow, i: usize) -> Result<Self, StoreError> {
        row.text(i)
    }
}
impl FromCol for bool {
    fn from_col(row: &dyn RawRow, i: usize) -> Result<Self, StoreError> {
        not_null(row.boolean(i)?, i)
    }
}

/// A connection (pooled, or inside a transaction) that runs statements.
#[async_trait::async_trait]
pub trait Conn: Send {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; the number of rows it changed.
    async fn execute(&mut self, sql: Sql<'_>, args: &[Arg<'_>]) -> Result<u64, StoreError>;
    async fn fetch_all(&mut self, sql: Sql<'_>, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError>;
    async fn fetch_optional(
        &mut self,
        sql: Sql<'_>,
        args: &[Arg<'_>],
    ) -> Result<Option<Row>, StoreError>;
}

impl dyn Conn + '_ {
    pub async fn exec<'a>(
        &mut self,
        sql: impl Into<Sql<'a>>,
        args: &[Arg<'_>],
    ) -> Result<u64, StoreError> {
        self.execute(sql.into(), args).await
    }

    pub async fn all<'a>(
        &mut self,
        sql: impl Into<Sql<'a>>,
        args: &[Arg<'_>],
    ) -> Result<Vec<Row>, StoreError> {
        self.fetch_all(sql.into(), args).await
    }

    pub async fn opt<'a>(
        &mut self,
        sql: impl Into<Sql<'a>>,
        args: &[Arg<'_>],
    ) -> Result<Option<Row>, StoreError> {
        self.fetch_optional(sql.into(), args).await
    }

    /// Exactly one row, as a statement with `RETURNING` or an aggregate gives.
    pub async fn one<'a>(
        &mut self,
        sql: impl Into<Sql<'a>>,
        args: &[Arg<'_>],
    ) -> Result<Row, StoreError> {
        self.fetch_optional(sql.into(), args)
            .await?
            .ok_or_else(|| StoreError::Other("a statement that returns a row returned none".into()))
    }
}

/// An open transaction: a [`Conn`] that ends with [`Tx::commit`] (dropped, it rolls back).
#[async_trait::async_trait]
pub trait Tx: Conn {
    fn conn(&mut self) -> &mut dyn Conn;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// The writes of one group commit, handed to [`Backend::run_tx`] to run inside one write transaction. Owned
/// (`'static`) so a backend may run it on a thread of its own.
pub trait TxWork: Send + 'static {
    fn run<'c>(self: Box<Self>, c: &'c mut dyn Conn)
        -> BoxFuture<'c, Result<Ingested, StoreError>>;
}

/// What differs between the backends beyond statement texts: where connections come from, how a write transaction
/// starts, and what a transaction that changes lanes or alerts must lock first (PostgreSQL; SQLite has one writer).
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn name(&self) -> &'static str;
    /// A connection for reads (SQLite: the read pool, never waiting for the writer).
    async fn read(&self) -> Result<Box<dyn Conn>, StoreError>;
    /// A connection for a single-statement write (SQLite: the one write connection).
    async fn write(&self) -> Result<Box<dyn Conn>, StoreError>;
    /// A write transaction (SQLite: `BEGIN IMMEDIATE` on the write connection).
    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// Locks lane rows (creating missing ones) in a fixed order before the transaction changes which items of those
    /// lanes are pending. A no-op where there is only one writer.
    async fn lock_lanes(
        &self,
        c: &mut dyn Conn,
        lanes: &BTreeSet<String>,
    ) -> Result<(), StoreError>;
    /// Serialises transactions on the same dedup or group keys across processes. A no-op with one writer.
    async fn lock_keys(&self, c: &mut dyn Conn, keys: &[&str]) -> Result<(), StoreError>;
    /// Runs `work` in one write transaction and commits it; an error rolls it back. By default a [`Backend::begin`]
    /// transaction, each statement a round trip. SQLite runs the whole transaction on a blocking thread over its
    /// write connection's handle, without a hop to sqlx's worker thread per statement.
    async fn run_tx(&self, work: Box<dyn TxWork>) -> Result<Ingested, StoreError> {
        let mut tx = self.begin().await?;
        let done = work.run(tx.conn()).await?;
        tx.commit().await?;
        Ok(done)
    }
    /// A bound on a round trip that must answer promptly (`/readyz`), if the backend wants one.
    fn ping_timeout(&self) -> Option<std::time::Duration> {
        None
    }
}
