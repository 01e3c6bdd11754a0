//! [`StoreError`]: what went wrong in storage, classified by what the caller should do about it.

/// A storage failure. The variant tells the caller what to do: `Unavailable` → answer 503 and retry later,
/// `SchemaMismatch` → run the `fix`, `Conflict` → the request contradicts stored state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or could not commit; nothing was accepted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database schema version differs from the one this binary was built for.
    #[error("database schema is at version {db}, this binary expects {binary}: {fix}")]
    SchemaMismatch { db: i64, binary: i64, fix: String },
    /// The request contradicts stored state (duplicate event id, item not pending, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be read back (bad JSON, unexpected value).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Other(String),
}

/// Every sqlx error that means "cannot reach the database or could not commit" becomes [`StoreError::Unavailable`]
/// (I/O errors such as connection refused or reset, pool timeouts, a broken protocol stream, and the server codes
/// below); duplicates become [`StoreError::Conflict`]; unreadable rows [`StoreError::Corrupt`].
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::Io(_)
            | E::Tls(_)
            | E::PoolTimedOut
            | E::PoolClosed
            | E::WorkerCrashed
            | E::Protocol(_) => StoreError::Unavailable(e.to_string()),
            E::ColumnDecode { .. }
            | E::Decode(_)
            | E::ColumnNotFound(_)
            | E::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
            E::Database(db) => {
                if db.is_unique_violation() {
                    return StoreError::Conflict(db.message().to_string());
                }
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // SQLite: 5 BUSY, 6 LOCKED, 10 IOERR (+ extended), 13 FULL, 14 CANTOPEN.
                // PostgreSQL: class 08 connection, 53 resources, 57P admin/crash shutdown (57P01 terminated,
                // 57P02 crash, 57P03 cannot connect now), 40 serialization/deadlock, 58 system I/O, 25006 read-only
                // transaction (connected to a standby during a failover). All mean "retry later", i.e. 503.
                let sqlite_primary = code.parse::<i64>().ok().map(|c| c & 0xff);
                let transient = matches!(sqlite_primary, Some(5 | 6 | 10 | 13 | 14))
                    || code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code.starts_with("40")
                    || code.starts_with("58")
                    || code == "25006";
                if transient {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Other(e.to_string())
                }
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}
