//! Schema migrations, run the same way on both backends: each backend embeds its own files with `sqlx::migrate!` and
//! hands its connection here.
//!
//! The schema version is the number of the last migration applied, read from sqlx's `_sqlx_migrations`. A database
//! made by releases before sqlx ran the migrations has `sluice_schema_migrations` instead: its version counts until
//! the next migration, which moves its rows into `_sqlx_migrations` (with the checksums of the same files) and drops
//! it, so such a database opens as it did and `sluice migrate` carries it on.
//!
//! A schema behind the binary is refused with "run `sluice migrate`" (unless the store was opened to migrate), one
//! ahead of it with "upgrade sluice", before sqlx looks at it.

use sqlx::migrate::{Migrate, MigrateError, Migrator};

use crate::db::{args, Arg, Conn, Stmt};
use crate::{MigrationReport, StoreError};

/// Whether a table exists. Binds: 1 table name. Dialects: each database has its own catalogue.
static TABLE_EXISTS: Stmt = Stmt::dialects(
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
    "SELECT CAST(CASE WHEN to_regclass(?1) IS NULL THEN 0 ELSE 1 END AS BIGINT)",
);
static SQLX_VERSION: Stmt =
    Stmt::new("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success");
static LEGACY_VERSIONS: Stmt =
    Stmt::new("SELECT version FROM sluice_schema_migrations ORDER BY version");
static ADOPT: Stmt = Stmt::new(
    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
     VALUES (?1, ?2, TRUE, ?3, 0) ON CONFLICT (version) DO NOTHING",
);
static DROP_LEGACY: Stmt = Stmt::new("DROP TABLE sluice_schema_migrations");

/// The table of the hand-written runner of earlier releases.
const LEGACY: &str = "sluice_schema_migrations";

/// The number of the last migration in `m`.
pub fn binary_version(m: &Migrator) -> i64 {
    m.iter().map(|m| m.version).max().unwrap_or(0)
}

/// `0002_coordination` for the migration file `0002_coordination.sql`.
fn name(m: &sqlx::migrate::Migration) -> String {
    format!("{:04}_{}", m.version, m.description.replace(' ', "_"))
}

async fn table_exists(c: &mut dyn Conn, table: &str) -> Result<bool, StoreError> {
    let n: i64 = c.one(&TABLE_EXISTS, args![table]).await?.get(0)?;
    Ok(n > 0)
}

/// The schema version of the database (0 for an empty one).
pub async fn schema_version(c: &mut dyn Conn) -> Result<i64, StoreError> {
    // The legacy table counts while it exists: it is dropped in the transaction that adopts it.
    if table_exists(c, LEGACY).await? {
        let versions = c.all(&LEGACY_VERSIONS, &[]).await?;
        return versions.last().map_or(Ok(0), |r| r.get(0));
    }
    if table_exists(c, "_sqlx_migrations").await? {
        return c.one(&SQLX_VERSION, &[]).await?.get(0);
    }
    Ok(0)
}

fn too_new(db: i64, binary: i64) -> StoreError {
    StoreError::SchemaMismatch {
        db,
        binary,
        fix: "this binary is older than the database: upgrade sluice".into(),
    }
}

/// Refuses a schema that is not exactly the binary's, saying what to do.
pub async fn check(c: &mut dyn Conn, m: &Migrator) -> Result<(), StoreError> {
    let (db, binary) = (schema_version(c).await?, binary_version(m));
    if db > binary {
        return Err(too_new(db, binary));
    }
    if db < binary {
        return Err(StoreError::SchemaMismatch {
            db,
            binary,
            fix: "run `sluice migrate`".into(),
        });
    }
    Ok(())
}

fn migrate_error(e: MigrateError) -> StoreError {
    match e {
        MigrateError::Execute(e) => e.into(),
        other => StoreError::Other(format!("migration failed: {other}")),
    }
}

/// Applies every migration of `m` the database lacks. `conn` is the backend's connection; `as_conn` views it as a
/// [`Conn`] for the reads and the adoption of a legacy version table.
pub async fn run<C>(
    conn: &mut C,
    as_conn: for<'a> fn(&'a mut C) -> Box<dyn Conn + 'a>,
    m: &Migrator,
    backend: &'static str,
) -> Result<MigrationReport, StoreError>
where
    C: Migrate + Send,
{
    let binary = binary_version(m);
    // Replicas starting together: one migrates, the others wait here and then find nothing to do (a no-op on SQLite,
    // which has one process).
    conn.lock().await.map_err(migrate_error)?;
    let from = {
        let mut c = as_conn(conn);
        let from = schema_version(&mut *c).await?;
        if from > binary {
            drop(c);
            let _ = conn.unlock().await;
            return Err(too_new(from, binary));
        }
        from
    };
    adopt_legacy(conn, as_conn, m).await?;
    conn.unlock().await.map_err(migrate_error)?;
    m.run_direct(conn).await.map_err(migrate_error)?;
    Ok(MigrationReport {
        backend,
        from,
        to: binary,
        applied: m.iter().filter(|m| m.version > from).map(name).collect(),
    })
}

/// Moves the versions recorded by the hand-written runner of earlier releases into `_sqlx_migrations`, with the
/// checksums of this binary's files (the same files), and drops its table, in one transaction.
async fn adopt_legacy<C>(
    conn: &mut C,
    as_conn: for<'a> fn(&'a mut C) -> Box<dyn Conn + 'a>,
    m: &Migrator,
) -> Result<(), StoreError>
where
    C: Migrate + Send,
{
    if !table_exists(&mut *as_conn(conn), LEGACY).await? {
        return Ok(());
    }
    conn.ensure_migrations_table()
        .await
        .map_err(migrate_error)?;
    let mut c = as_conn(conn);
    c.exec("BEGIN", &[]).await?;
    for r in c.all(&LEGACY_VERSIONS, &[]).await? {
        let version: i64 = r.get(0)?;
        let Some(known) = m.iter().find(|m| m.version == version) else {
            continue;
        };
        c.exec(
            &ADOPT,
            &[
                version.into(),
                Arg::Text(Some(known.description.as_ref())),
                Arg::Bytes(&known.checksum),
            ],
        )
        .await?;
    }
    c.exec(&DROP_LEGACY, &[]).await?;
    c.exec("COMMIT", &[]).await?;
    Ok(())
}
