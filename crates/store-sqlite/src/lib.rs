//! `sluice-store-sqlite`: the SQLite backend of the store ([`SqliteBackend`] under `SqlStore`): one process, WAL, and
//! group commit for ingest. Connection set-up, binding and decoding, and migrations only; the verbs and their SQL
//! are `sluice-store-core`'s.
//!
//! All writes go through a write pool of exactly one connection, so SQLite never has to arbitrate between writers
//! (no `SQLITE_BUSY` storms); reads use a separate pool and, thanks to WAL, never wait for the writer.
//! `ingest` calls do not take the write connection themselves: they are funnelled into one writer task
//! (the store's group commit) that commits everything waiting in a single transaction and answers each caller. One fsync
//! then acknowledges many events, which is what makes one-event-per-request ingest fast. That transaction runs on a
//! blocking thread through rusqlite ([`direct`]), not one statement at a time through sqlx: on a database file on a
//! connection of its own that keeps its prepared statements, taken only while holding the write pool's connection.

use std::collections::BTreeSet;
use std::ops::DerefMut;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Sqlite;

use sluice_store_core::db::{Arg, Backend, Conn, Dialect, Row, Sql, Tx, TxWork};
use sluice_store_core::*;

mod direct;

/// This backend's migrations (`migrations/`); the schema version is the number of the last one applied.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The SQLite side of [`SqlStore`]: a read pool, a write pool of exactly one connection, and on a database file the
/// group commit's own connection (used only while holding the write pool's).
pub struct SqliteBackend {
    read: SqlitePool,
    write: SqlitePool,
    committer: Option<Arc<direct::Committer>>,
}

/// How long a statement waits for a lock another process holds (e.g. `sluice migrate`, a backup) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn connect_options(url: &str, durability: Durability) -> Result<SqliteConnectOptions, StoreError> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid SQLite URL {url}: {e}")))?
        .create_if_missing(true)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(false)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        });
    Ok(if is_memory(url) {
        opts
    } else {
        opts.journal_mode(SqliteJournalMode::Wal)
    })
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

async fn single_connection_pool(opts: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    // An in-memory database lives as long as its connection: keep the one connection forever.
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await?)
}

/// Applies the migrations the database lacks (`sluice migrate`).
pub async fn migrate_url(url: &str) -> Result<MigrationReport, StoreError> {
    let pool = single_connection_pool(connect_options(url, Durability::Full)?).await?;
    let mut conn = pool.acquire().await?;
    let report = migrate::run(&mut *conn, lite, &MIGRATOR, "sqlite").await;
    drop(conn);
    pool.close().await;
    report
}

fn lite(c: &mut SqliteConnection) -> Box<dyn Conn + '_> {
    Box::new(Lite(c))
}

/// Opens the store at `url`, migrating or checking its schema as `opts` says.
pub async fn open(url: &str, opts: &StoreOptions) -> Result<SqlStore<SqliteBackend>, StoreError> {
    let connect = connect_options(url, opts.durability)?;
    let write = single_connection_pool(connect.clone()).await?;
    {
        let mut conn = write.acquire().await?;
        if opts.migrate {
            migrate::run(&mut *conn, lite, &MIGRATOR, "sqlite").await?;
        } else {
            migrate::check(&mut *lite(&mut conn), &MIGRATOR).await?;
        }
    }
    let committer = (!is_memory(url)).then(|| {
        direct::Committer::new(
            connect.get_filename().to_path_buf(),
            opts.durability,
            BUSY_TIMEOUT,
        )
    });
    let read = if is_memory(url) {
        // Every connection to `:memory:` would be a separate database: read through the one writer.
        write.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect)
            .await?
    };
    Ok(SqlStore::new(SqliteBackend {
        read,
        write,
        committer,
    }))
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn read(&self) -> Result<Box<dyn Conn>, StoreError> {
        Ok(Box::new(Lite(self.read.acquire().await?)))
    }

    async fn write(&self) -> Result<Box<dyn Conn>, StoreError> {
        Ok(Box::new(Lite(self.write.acquire().await?)))
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        // IMMEDIATE: the write lock is taken at once, so a transaction never fails half-way on a lock upgrade.
        Ok(Box::new(Lite(
            self.write.begin_with("BEGIN IMMEDIATE").await?,
        )))
    }

    async fn run_tx(&self, work: Box<dyn TxWork>) -> Result<Ingested, StoreError> {
        direct::run_tx(&self.write, self.committer.as_ref(), work).await
    }

    async fn lock_lanes(&self, _: &mut dyn Conn, _: &BTreeSet<String>) -> Result<(), StoreError> {
        // One process, one write connection: transactions that change lanes already run one at a time.
        Ok(())
    }

    async fn lock_keys(&self, _: &mut dyn Conn, _: &[&str]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A SQLite connection (pooled, or in a transaction) as a [`Conn`].
struct Lite<C>(C);

fn bind<'q>(
    mut q: Query<'q, Sqlite, SqliteArguments<'q>>,
    args: &[Arg<'q>],
) -> Result<Query<'q, Sqlite, SqliteArguments<'q>>, StoreError> {
    for a in args {
        q = match *a {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Json(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
            Arg::TextArray(_) => {
                return Err(StoreError::Other("SQLite has no array parameters".into()))
            }
        };
    }
    Ok(q)
}

#[async_trait::async_trait]
impl<C: DerefMut<Target = SqliteConnection> + Send> Conn for Lite<C> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: Sql<'_>, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let text = sql.text(Dialect::Sqlite);
        let q = bind(sqlx::query(&text), args)?;
        Ok(q.execute(&mut *self.0).await?.rows_affected())
    }

    async fn fetch_all(&mut self, sql: Sql<'_>, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        let text = sql.text(Dialect::Sqlite);
        let q = bind(sqlx::query(&text), args)?;
        Ok(q.fetch_all(&mut *self.0)
            .await?
            .into_iter()
            .map(Row::new)
            .collect())
    }

    async fn fetch_optional(
        &mut self,
        sql: Sql<'_>,
        args: &[Arg<'_>],
    ) -> Result<Option<Row>, StoreError> {
        let text = sql.text(Dialect::Sqlite);
        let q = bind(sqlx::query(&text), args)?;
        Ok(q.fetch_optional(&mut *self.0).await?.map(Row::new))
    }
}

#[async_trait::async_trait]
impl Tx for Lite<sqlx::Transaction<'static, Sqlite>> {
    fn conn(&mut self) -> &mut dyn Conn {
        self
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }
}
