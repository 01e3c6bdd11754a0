//! The SQLite backend, [`SqliteStore`]: one process, WAL, and group commit for ingest.
//!
//! All writes go through a write pool of exactly one connection, so SQLite never has to arbitrate between writers
//! (no `SQLITE_BUSY` storms); reads use a separate pool and, thanks to WAL, never wait for the writer.
//! `ingest` calls do not take the write connection themselves: they are funnelled into one writer task
//! ([`crate::group`]) that commits everything waiting in a single transaction and answers each caller. One fsync
//! then acknowledges many events, which is what makes one-event-per-request ingest fast.

use std::collections::BTreeSet;
use std::ops::DerefMut;
use std::str::FromStr;
use std::time::Duration;

use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite};

use crate::db::{Arg, Backend, Conn, Dialect, Row, Sql, Tx};
use crate::sql_store::SqlStore;
use crate::*;

/// Migrations of this backend, in order; the schema version is the number of the last one applied.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "0001_init", include_str!("migrations/0001_init.sql")),
    (
        2,
        "0002_coordination",
        include_str!("migrations/0002_coordination.sql"),
    ),
    (
        3,
        "0003_alerting",
        include_str!("migrations/0003_alerting.sql"),
    ),
    (
        4,
        "0004_living_alerts",
        include_str!("migrations/0004_living_alerts.sql"),
    ),
    (
        5,
        "0005_inhibit",
        include_str!("migrations/0005_inhibit.sql"),
    ),
    (
        6,
        "0006_message_lookup",
        include_str!("migrations/0006_message_lookup.sql"),
    ),
    (7, "0007_groups", include_str!("migrations/0007_groups.sql")),
];
/// The number of the last migration.
const BINARY_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The SQLite side of [`SqlStore`]: a read pool and a write pool of exactly one connection.
pub(crate) struct SqliteBackend {
    read: SqlitePool,
    write: SqlitePool,
}

fn connect_options(url: &str, durability: Durability) -> Result<SqliteConnectOptions, StoreError> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid SQLite URL {url}: {e}")))?
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(10))
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

pub(crate) async fn migrate_url(url: &str) -> Result<MigrationReport, StoreError> {
    let pool = single_connection_pool(connect_options(url, Durability::Full)?).await?;
    let mut conn = pool.acquire().await?;
    let report = apply_migrations(&mut conn).await;
    drop(conn);
    pool.close().await;
    report
}

fn schema_version(conn: &mut SqliteConnection) -> crate::BoxFuture<'_, Result<i64, StoreError>> {
    // Boxed as Send here, where lifetimes are concrete (see `crate::open`).
    Box::pin(async move {
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sluice_schema_migrations'",
        )
        .fetch_one(&mut *conn)
        .await?;
        if exists == 0 {
            return Ok(0);
        }
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM sluice_schema_migrations")
                .fetch_one(&mut *conn)
                .await?,
        )
    })
}

fn too_new(db: i64) -> StoreError {
    StoreError::SchemaMismatch {
        db,
        binary: BINARY_VERSION,
        fix: "this binary is older than the database: upgrade sluice".into(),
    }
}

fn apply_migrations(
    conn: &mut SqliteConnection,
) -> crate::BoxFuture<'_, Result<MigrationReport, StoreError>> {
    // Boxed as Send here, where lifetimes are concrete (see `crate::open`).
    Box::pin(async move {
        // IMMEDIATE: two processes migrating at once serialise here instead of both applying.
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::Executor::execute(
            &mut *tx,
            "CREATE TABLE IF NOT EXISTS sluice_schema_migrations (
                 version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
        )
        .await?;
        let from = schema_version(&mut tx).await?;
        if from > BINARY_VERSION {
            return Err(too_new(from));
        }
        let mut applied = Vec::new();
        // Collected first: a filtering closure held across `.await` trips rustc's higher-ranked Send check.
        let pending: Vec<(i64, &'static str, &'static str)> =
            MIGRATIONS.iter().copied().filter(|m| m.0 > from).collect();
        for (version, name, sql) in pending {
            sqlx::Executor::execute(&mut *tx, sql).await?;
            sqlx::query(
                "INSERT INTO sluice_schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)",
            )
            .bind(version)
            .bind(name)
            .bind(wall_clock_ms())
            .execute(&mut *tx)
            .await?;
            applied.push(name.to_string());
        }
        tx.commit().await?;
        Ok(MigrationReport {
            backend: "sqlite",
            from,
            to: BINARY_VERSION,
            applied,
        })
    })
}

/// Only for the migration record; everything else takes the caller's clock.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Opens the store at `url`, migrating or checking its schema as `opts` says.
pub(crate) async fn open(
    url: &str,
    opts: &StoreOptions,
) -> Result<SqlStore<SqliteBackend>, StoreError> {
    let connect = connect_options(url, opts.durability)?;
    let write = single_connection_pool(connect.clone()).await?;
    {
        let mut conn = write.acquire().await?;
        if opts.migrate {
            apply_migrations(&mut conn).await?;
        } else {
            let db = schema_version(&mut conn).await?;
            if db > BINARY_VERSION {
                return Err(too_new(db));
            }
            if db < BINARY_VERSION {
                return Err(StoreError::SchemaMismatch {
                    db,
                    binary: BINARY_VERSION,
                    fix: "run `sluice migrate`".into(),
                });
            }
        }
    }
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
    Ok(SqlStore::new(SqliteBackend { read, write }))
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
