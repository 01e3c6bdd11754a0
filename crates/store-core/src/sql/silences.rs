//! Silences and the version their caches reload on.

use super::Stmt;

/// Binds: 1 id, 2 matchers (JSON), 3 starts, 4 ends, 5 author, 6 comment, 7 now.
pub(crate) static CREATE: Stmt = Stmt::new(
    "INSERT INTO silences (id, matchers, starts_at_ms, ends_at_ms, author, comment, created_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
);

/// Binds: 1 include expired, 2 now.
pub(crate) static LIST: Stmt = Stmt::new(
    "SELECT id, CAST(matchers AS TEXT) AS matchers, starts_at_ms, ends_at_ms, author, comment, created_at_ms,
            expired_at_ms
     FROM silences WHERE ?1 OR (expired_at_ms IS NULL AND ends_at_ms > ?2)
     ORDER BY created_at_ms, id",
);

/// Binds: 1 id, 2 now.
pub(crate) static EXPIRE: Stmt = Stmt::new(
    "UPDATE silences SET expired_at_ms = ?2
     WHERE id = ?1 AND expired_at_ms IS NULL AND ends_at_ms > ?2",
);

pub(crate) static VERSION: Stmt = Stmt::new("SELECT version FROM silences_version WHERE one = 1");

pub(crate) static BUMP_VERSION: Stmt =
    Stmt::new("UPDATE silences_version SET version = version + 1 WHERE one = 1");
