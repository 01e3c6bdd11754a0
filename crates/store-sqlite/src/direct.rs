//! The group commit without a thread hop per statement.
//!
//! sqlx's SQLite driver runs every statement on its connection's worker thread and waits for the answer, so a group
//! commit of a few hundred statements paid a few hundred thread switches. [`run_tx`] instead takes the one write
//! connection from its pool, borrows its handle from the worker (`lock_handle`: the worker makes no call on it while
//! we hold it) on a blocking thread, and runs the whole transaction there through rusqlite, which links the same
//! `libsqlite3-sys` as sqlx. One hop per commit instead of one per statement; the same connection, pragmas and
//! durability (`synchronous`, WAL) as every other write. Statements are prepared once per commit (rusqlite's cache)
//! and finalised before the handle goes back to sqlx, so sqlx can always close it.

use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::Connection;
use sqlx::SqlitePool;

use sluice_store_core::db::{Arg, Conn, Dialect, RawRow, Row, Sql, TxWork};
use sluice_store_core::{Ingested, StoreError};

/// Distinct statements a group commit prepares: the fixed ones and a few multi-row shapes.
const STATEMENT_CACHE: usize = 64;

/// Runs `work` in one `BEGIN IMMEDIATE` transaction on the write connection, on a blocking thread.
pub(crate) async fn run_tx(
    write: &SqlitePool,
    work: Box<dyn TxWork>,
) -> Result<Ingested, StoreError> {
    let conn = write.acquire().await?;
    let (conn, done) = tokio::task::spawn_blocking(move || {
        let mut conn = conn;
        let done = locked(&mut conn, work);
        (conn, done)
    })
    .await
    .map_err(|e| StoreError::Other(format!("the SQLite group commit failed: {e}")))?;
    // Back to the pool here, on the runtime, rather than on the blocking thread.
    drop(conn);
    done
}

fn locked(
    conn: &mut sqlx::SqliteConnection,
    work: Box<dyn TxWork>,
) -> Result<Ingested, StoreError> {
    // Only channels and a fair mutex: no runtime needed to wait for the worker to let go of the handle.
    let mut handle = futures::executor::block_on(conn.lock_handle())?;
    // SAFETY: while `handle` lives, sqlx's worker thread makes no call on this database handle, and this thread is
    // the only one using it. The rusqlite connection does not own the handle (dropping it never closes it) and is
    // dropped (in `transact`) before `handle`, finalising every statement it prepared.
    let db = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }.map_err(error)?;
    db.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let done = transact(Direct(db), work);
    drop(handle);
    done
}

fn transact(mut db: Direct, work: Box<dyn TxWork>) -> Result<Ingested, StoreError> {
    // IMMEDIATE, as every write transaction of this backend: the write lock is taken at once.
    db.0.execute_batch("BEGIN IMMEDIATE").map_err(error)?;
    // Every statement of `Direct` completes at once, so the future never waits for anything.
    let done = futures::executor::block_on(work.run(&mut db))?;
    db.0.execute_batch("COMMIT").map_err(error)?;
    Ok(done)
}

/// SQLite errors classified as sqlx's are (see `StoreError`'s `From<sqlx::Error>`): duplicates are conflicts; busy,
/// locked, I/O, full and cannot-open mean "retry later".
fn error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            // 2067 SQLITE_CONSTRAINT_UNIQUE, 1555 SQLITE_CONSTRAINT_PRIMARYKEY.
            if matches!(f.extended_code, 2067 | 1555) {
                return StoreError::Conflict(msg.clone().unwrap_or_else(|| e.to_string()));
            }
            if matches!(f.extended_code & 0xff, 5 | 6 | 10 | 13 | 14) {
                return StoreError::Unavailable(e.to_string());
            }
            StoreError::Other(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// The write connection's handle, borrowed for one transaction, as a [`Conn`]. Every call runs to completion before
/// it returns.
struct Direct(Connection);

/// Ends a transaction left open (an error, a failed COMMIT, a panic) before sqlx gets the handle back.
impl Drop for Direct {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

impl Direct {
    fn prepare(
        &self,
        sql: Sql<'_>,
        args: &[Arg<'_>],
    ) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(&sql.text(Dialect::Sqlite))
            .map_err(error)?;
        for (i, a) in args.iter().enumerate() {
            let at = i + 1;
            match *a {
                Arg::Int(v) => st.raw_bind_parameter(at, v),
                Arg::Text(v) => st.raw_bind_parameter(at, v),
                // As sqlx binds it: an INTEGER 0 or 1.
                Arg::Bool(v) => st.raw_bind_parameter(at, i64::from(v)),
                Arg::Json(v) => st.raw_bind_parameter(at, v),
                Arg::Bytes(v) => st.raw_bind_parameter(at, v),
                Arg::TextArray(_) => {
                    return Err(StoreError::Other("SQLite has no array parameters".into()))
                }
            }
            .map_err(error)?;
        }
        Ok(st)
    }

    fn rows(&mut self, sql: Sql<'_>, args: &[Arg<'_>], max: usize) -> Result<Vec<Row>, StoreError> {
        let mut st = self.prepare(sql, args)?;
        let names: Arc<[String]> = st.column_names().into_iter().map(String::from).collect();
        let mut rows = st.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(error)? {
            if out.len() < max {
                let values = (0..names.len())
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(error)?;
                out.push(Row::new(OwnedRow {
                    names: names.clone(),
                    values,
                }));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Conn for Direct {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: Sql<'_>, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let mut st = self.prepare(sql, args)?;
        // Stepped to the end, so a statement with RETURNING runs whole too.
        let mut rows = st.raw_query();
        while rows.next().map_err(error)?.is_some() {}
        drop(rows);
        drop(st);
        Ok(self.0.changes())
    }

    async fn fetch_all(&mut self, sql: Sql<'_>, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        self.rows(sql, args, usize::MAX)
    }

    async fn fetch_optional(
        &mut self,
        sql: Sql<'_>,
        args: &[Arg<'_>],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, args, 1)?.pop())
    }
}

/// A row read out of its statement, typed as SQLite stored it.
struct OwnedRow {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl OwnedRow {
    fn value(&self, i: usize) -> Result<&Value, StoreError> {
        self.values
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {i} in the row")))
    }
}

fn mistyped(i: usize, want: &str, v: &Value) -> StoreError {
    StoreError::Corrupt(format!(
        "column {i}: expected {want}, found {:?}",
        v.data_type()
    ))
}

impl RawRow for OwnedRow {
    fn index_of(&self, name: &str) -> Result<usize, StoreError> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| StoreError::Corrupt(format!("no column named {name} in the row")))
    }

    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            Value::Integer(v) => Ok(Some(*v)),
            other => Err(mistyped(i, "an integer", other)),
        }
    }

    fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            other => Err(mistyped(i, "text", other)),
        }
    }

    fn boolean(&self, i: usize) -> Result<Option<bool>, StoreError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            Value::Integer(v) => Ok(Some(*v != 0)),
            other => Err(mistyped(i, "a boolean", other)),
        }
    }
}
