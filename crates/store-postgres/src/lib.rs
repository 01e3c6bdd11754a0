//! `sluice-store-postgres`: the PostgreSQL backend of the store ([`PgBackend`] under `SqlStore`): several replicas
//! share one database. Connection set-up, binding, the locks replicas need, and migrations only; the verbs and their
//! SQL are `sluice-store-core`'s.
//!
//! Ingest is group-committed per process like SQLite's (the store's group commit). Concurrency rules, since many
//! processes write at once:
//! - every transaction that changes which items of a lane are pending first locks that lane's row in `lanes`
//!   (sorted, to avoid deadlocks), and only then reads or writes the lane's items. This keeps outbox ids in commit
//!   order within a lane (ingest allocates ids while holding the lock) and keeps `lanes.head_id` exact;
//! - dedup keys are serialised with transaction-scoped advisory locks, so two replicas seeing the same alert at the
//!   same moment produce one open alert and one merge, not two alerts;
//! - `claim_lanes` uses `FOR UPDATE SKIP LOCKED`, so dispatchers never wait on each other or hand out one lane twice.

use std::collections::BTreeSet;
use std::ops::DerefMut;
use std::time::Duration;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{
    PgArgumentBuffer, PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions,
    PgTypeInfo,
};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection, Postgres};

use sluice_store_core::db::{Arg, Backend, Conn, Dialect, Row, Sql, Stmt, Tx};
use sluice_store_core::*;

/// This backend's migrations (`migrations/`); the schema version is the number of the last one applied.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
/// How long a request waits for a connection before it is answered `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The PostgreSQL side of [`SqlStore`]: one pool, and the locks replicas need.
pub struct PgBackend {
    pool: PgPool,
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let opts: PgConnectOptions = url.parse().map_err(|e| {
        StoreError::Other(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
    })?;
    Ok(opts.log_statements(tracing::log::LevelFilter::Trace))
}

/// Applies the migrations the database lacks (`sluice migrate`).
pub async fn migrate_url(url: &str) -> Result<MigrationReport, StoreError> {
    let mut conn = PgConnection::connect_with(&connect_options(url)?).await?;
    let report = migrate::run(&mut conn, pg, &MIGRATOR, "postgres").await;
    let _ = conn.close().await;
    report
}

fn pg(c: &mut PgConnection) -> Box<dyn Conn + '_> {
    Box::new(Pg(c))
}

/// Opens the store at `url`, migrating or checking its schema as `opts` says.
pub async fn open(url: &str, opts: &StoreOptions) -> Result<SqlStore<PgBackend>, StoreError> {
    // A short acquire timeout turns an outage into a quick `Unavailable` (503) instead of requests hanging;
    // testing connections before handing them out lets the pool drop the ones a restart or
    // pg_terminate_backend killed, and reconnect by itself once the server is back.
    let pool = PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(true)
        .connect_with(connect_options(url)?)
        .await?;
    let mut conn = pool.acquire().await?;
    if opts.migrate {
        migrate::run(&mut *conn, pg, &MIGRATOR, "postgres").await?;
    } else {
        migrate::check(&mut *pg(&mut conn), &MIGRATOR).await?;
    }
    drop(conn);
    Ok(SqlStore::new(PgBackend { pool }))
}

/// Creates missing lane rows, in order. Binds: 1 lanes.
static ADD_LANES: Stmt = Stmt::new(
    "INSERT INTO lanes (lane) SELECT unnest(CAST(?1 AS text[])) ORDER BY 1 ON CONFLICT (lane) DO NOTHING",
);
/// Locks lane rows, in order. Binds: 1 lanes.
static LOCK_LANES: Stmt =
    Stmt::new("SELECT lane FROM lanes WHERE lane = ANY(?1) ORDER BY lane FOR UPDATE");
/// A transaction-scoped advisory lock on a dedup or group key. Binds: 1 key.
static LOCK_KEY: Stmt = Stmt::new("SELECT pg_advisory_xact_lock(hashtextextended(?1, 0))");

#[async_trait::async_trait]
impl Backend for PgBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn read(&self) -> Result<Box<dyn Conn>, StoreError> {
        Ok(Box::new(Pg(self.pool.acquire().await?)))
    }

    async fn write(&self) -> Result<Box<dyn Conn>, StoreError> {
        Ok(Box::new(Pg(self.pool.acquire().await?)))
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(Pg(self.pool.begin().await?)))
    }

    /// See the module docs for why every lane change does this.
    async fn lock_lanes(
        &self,
        c: &mut dyn Conn,
        lanes: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        if lanes.is_empty() {
            return Ok(());
        }
        let lanes: Vec<&str> = lanes.iter().map(String::as_str).collect();
        c.exec(&ADD_LANES, &[Arg::TextArray(&lanes)]).await?;
        c.exec(&LOCK_LANES, &[Arg::TextArray(&lanes)]).await?;
        Ok(())
    }

    async fn lock_keys(&self, c: &mut dyn Conn, keys: &[&str]) -> Result<(), StoreError> {
        for key in keys {
            c.exec(&LOCK_KEY, &[Arg::from(*key)]).await?;
        }
        Ok(())
    }

    fn ping_timeout(&self) -> Option<Duration> {
        Some(ACQUIRE_TIMEOUT * 2)
    }
}

/// JSON text bound as `jsonb` (binary format: a version byte, then the text), so statements need no cast.
struct Jsonb<'a>(&'a str);

impl sqlx::Type<Postgres> for Jsonb<'_> {
    fn type_info() -> PgTypeInfo {
        /// `jsonb` in `pg_type`.
        const JSONB_OID: u32 = 3802;
        PgTypeInfo::with_oid(Oid(JSONB_OID))
    }
}

impl sqlx::Encode<'_, Postgres> for Jsonb<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

/// A PostgreSQL connection (pooled, or in a transaction) as a [`Conn`].
struct Pg<C>(C);

fn bind<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    args: &[Arg<'q>],
) -> Query<'q, Postgres, PgArguments> {
    for a in args {
        q = match *a {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Json(v) => q.bind(Jsonb(v)),
            Arg::Bytes(v) => q.bind(v),
            Arg::TextArray(v) => q.bind(v),
        };
    }
    q
}

#[async_trait::async_trait]
impl<C: DerefMut<Target = PgConnection> + Send> Conn for Pg<C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&mut self, sql: Sql<'_>, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let text = sql.text(Dialect::Postgres);
        let q = bind(sqlx::query(&text), args);
        Ok(q.execute(&mut *self.0).await?.rows_affected())
    }

    async fn fetch_all(&mut self, sql: Sql<'_>, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        let text = sql.text(Dialect::Postgres);
        let q = bind(sqlx::query(&text), args);
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
        let text = sql.text(Dialect::Postgres);
        let q = bind(sqlx::query(&text), args);
        Ok(q.fetch_optional(&mut *self.0).await?.map(Row::new))
    }
}

#[async_trait::async_trait]
impl Tx for Pg<sqlx::Transaction<'static, Postgres>> {
    fn conn(&mut self) -> &mut dyn Conn {
        self
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }
}
