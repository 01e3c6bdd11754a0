//! The group commit without a thread hop per statement, and with its statements prepared once.
//!
//! sqlx's SQLite driver runs every statement on its connection's worker thread and waits for the answer, so a group
//! commit of a few hundred statements paid a few hundred thread switches. [`run_tx`] instead runs the whole
//! transaction on a blocking thread through rusqlite (which links the same `libsqlite3-sys` as sqlx): one hop per
//! commit instead of one per statement.
//!
//! On a database file it runs on a connection of its own ([`Committer`]), opened with the write connection's
//! settings (`synchronous`, `busy_timeout`, no foreign keys; WAL is the file's). That connection keeps its prepared
//! statements from one commit to the next: preparing (parsing and planning) the commit's statements again each time
//! was a quarter of the writer's CPU. It writes only while the caller holds the pool's one write connection, so
//! SQLite still never arbitrates between two writers of this process. An in-memory database is only reachable
//! through the connection that made it: there the commit borrows that connection's handle from sqlx's worker for the
//! transaction, and finalises its statements before handing it back, so sqlx can always close it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use sqlx::SqlitePool;

use sluice_store_core::db::{Arg, Conn, Dialect, RawRow, Row, Sql, TxWork};
use sluice_store_core::{Durability, Ingested, StoreError};

/// Distinct statements a group commit prepares: the fixed ones and the multi-row shapes (`sql::shaped`).
const STATEMENT_CACHE: usize = 256;

/// The group commit's own connection to a database file, opened at its first commit and kept with its statements.
pub(crate) struct Committer {
    path: PathBuf,
    durability: Durability,
    busy_timeout: Duration,
    conn: Mutex<Option<Connection>>,
}

impl Committer {
    pub(crate) fn new(path: PathBuf, durability: Durability, busy_timeout: Duration) -> Arc<Self> {
        Arc::new(Committer {
            path,
            durability,
            busy_timeout,
            conn: Mutex::new(None),
        })
    }

    fn open(&self) -> Result<Connection, StoreError> {
        // The file exists (the pools made and migrated it); no URI, so a path is a path.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = Connection::open_with_flags(&self.path, flags).map_err(error)?;
        db.busy_timeout(self.busy_timeout).map_err(error)?;
        let synchronous = match self.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        db.execute_batch(&format!(
            "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = OFF;"
        ))
        .map_err(error)?;
        db.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(db)
    }

    /// Runs `work` in one transaction on the kept connection, opening it first if needed. The caller holds the write
    /// pool's connection.
    fn run(&self, work: Box<dyn TxWork>) -> Result<Ingested, StoreError> {
        // A panic elsewhere while holding the lock leaves at worst a connection whose transaction `Direct` rolled back.
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if conn.is_none() {
            *conn = Some(self.open()?);
        }
        let db = conn.as_mut().expect("opened above");
        let done = transact(db, work);
        if matches!(done, Err(StoreError::Unavailable(_))) {
            // I/O, a full disk, a lock not granted: open afresh next time rather than trust this connection.
            *conn = None;
        }
        done
    }
}

/// Runs `work` in one `BEGIN IMMEDIATE` transaction on a blocking thread: on `committer`'s connection for a database
/// file, else on the write connection's own handle. Either way while holding the write pool's one connection.
pub(crate) async fn run_tx(
    write: &SqlitePool,
    committer: Option<&Arc<Committer>>,
    work: Box<dyn TxWork>,
) -> Result<Ingested, StoreError> {
    let conn = write.acquire().await?;
    let committer = committer.cloned();
    let (conn, done) = tokio::task::spawn_blocking(move || {
        let mut conn = conn;
        let done = match committer {
            Some(committer) => committer.run(work),
            None => borrowed(&mut conn, work),
        };
        (conn, done)
    })
    .await
    .map_err(|e| StoreError::Other(format!("the SQLite group commit failed: {e}")))?;
    // Back to the pool here, on the runtime, rather than on the blocking thread.
    drop(conn);
    done
}

/// `work` on the write connection's own handle, borrowed from sqlx's worker for the transaction.
fn borrowed(
    conn: &mut sqlx::SqliteConnection,
    work: Box<dyn TxWork>,
) -> Result<Ingested, StoreError> {
    // Only channels and a fair mutex: no runtime needed to wait for the worker to let go of the handle.
    let mut handle = futures::executor::block_on(conn.lock_handle())?;
    // SAFETY: while `handle` lives, sqlx's worker thread makes no call on this database handle, and this thread is
    // the only one using it. The rusqlite connection does not own the handle (dropping it never closes it) and is
    // dropped before `handle`, finalising every statement it prepared.
    let mut db =
        unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }.map_err(error)?;
    db.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let done = transact(&mut db, work);
    drop(db);
    drop(handle);
    done
}

fn transact(db: &mut Connection, work: Box<dyn TxWork>) -> Result<Ingested, StoreError> {
    // IMMEDIATE, as every write transaction of this backend: the write lock is taken at once.
    db.execute_batch("BEGIN IMMEDIATE").map_err(error)?;
    let mut tx = Direct(db);
    // Every statement of `Direct` completes at once, so the future never waits for anything.
    let done = futures::executor::block_on(work.run(&mut tx))?;
    tx.0.execute_batch("COMMIT").map_err(error)?;
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

/// A connection in a group commit's transaction, as a [`Conn`]. Every call runs to completion before it returns.
struct Direct<'c>(&'c mut Connection);

/// Ends a transaction left open (an error, a failed COMMIT, a panic), so the connection is ready for the next one.
impl Drop for Direct<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

impl Direct<'_> {
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
impl Conn for Direct<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_store_core::BoxFuture;

    /// A group commit that writes one row.
    struct Insert(i64);

    impl TxWork for Insert {
        fn run<'c>(
            self: Box<Self>,
            c: &'c mut dyn Conn,
        ) -> BoxFuture<'c, Result<Ingested, StoreError>> {
            Box::pin(async move {
                c.exec("INSERT INTO t (v) VALUES (?1)", &[Arg::Int(Some(self.0))])
                    .await?;
                Ok(Ingested::default())
            })
        }
    }

    #[test]
    fn a_commit_another_writer_holds_off_fails_alone_and_the_next_one_lands() {
        let dir = std::env::temp_dir().join(format!(
            "sluice-direct-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER NOT NULL);")
            .unwrap();
        let committer = Committer::new(path, Durability::Full, Duration::from_millis(50));
        committer.run(Box::new(Insert(1))).unwrap();

        // Another process (a `sluice migrate`, a backup) holds the write lock past the busy timeout.
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let refused = committer.run(Box::new(Insert(2)));
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
        other.execute_batch("ROLLBACK").unwrap();

        // The kept connection was let go; the next commit opens a fresh one and lands, and the refused one left
        // nothing behind.
        committer.run(Box::new(Insert(3))).unwrap();
        committer.run(Box::new(Insert(4))).unwrap();
        let rows: Vec<i64> = other
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [1, 3, 4]);
        drop(committer);
        drop(other);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn uuid_like() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }
}
