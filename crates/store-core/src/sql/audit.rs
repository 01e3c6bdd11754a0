//! The tamper-evident audit log.

use super::Stmt;

/// The head the next append chains onto. Dialects: PostgreSQL locks it (`FOR UPDATE`), so appends from several
/// replicas queue on it and extend one chain; SQLite's single writer with `BEGIN IMMEDIATE` already serialises them.
pub(crate) static HEAD_FOR_APPEND: Stmt = Stmt::dialects(
    "SELECT last_id, last_hash FROM audit_head WHERE one = 1",
    "SELECT last_id, last_hash FROM audit_head WHERE one = 1 FOR UPDATE",
);

pub(crate) static HEAD: Stmt = Stmt::new("SELECT last_id, last_hash FROM audit_head WHERE one = 1");

/// Binds: 1 id, 2 at, 3 actor, 4 team, 5 action, 6 target, 7 result, 8 detail (canonical JSON text), 9 prev hash,
/// 10 hash.
pub(crate) static APPEND: Stmt = Stmt::new(
    "INSERT INTO audit_log (id, at_ms, actor, team, action, target, result, detail, prev_hash, hash)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
);

/// Binds: 1 id, 2 hash.
pub(crate) static MOVE_HEAD: Stmt =
    Stmt::new("UPDATE audit_head SET last_id = ?1, last_hash = ?2 WHERE one = 1");

/// Binds: 1 after id, 2 through id, 3 limit.
pub(crate) static PAGE: Stmt = Stmt::new(
    "SELECT id, at_ms, actor, team, action, target, result, detail, prev_hash, hash FROM audit_log
     WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
);
