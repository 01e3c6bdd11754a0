//! Approvals and their decisions.

use super::Stmt;

/// Binds: 1 id, 2 idempotency key, 3 request (JSON), 4 requester, 5 required, 6 allow self, 7 team, 8 channel,
/// 9 created at, 10 expires at. Returns nothing when the idempotency key is already stored.
pub(crate) static CREATE: Stmt = Stmt::new(
    "INSERT INTO approvals (id, idempotency_key, request, requester, state, required, allow_self, team, channel,
                            created_at_ms, expires_at_ms)
     VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10)
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
);

/// Binds: 1 card item id, 2 approval id.
pub(crate) static SET_CARD: Stmt =
    Stmt::new("UPDATE approvals SET card_item_id = ?1 WHERE id = ?2");

/// Binds: 1 id.
pub(crate) static GET: Stmt = Stmt::new(
    "SELECT a.id, a.idempotency_key, CAST(a.request AS TEXT) AS request, a.requester, a.state, a.required,
            a.allow_self, a.team, a.channel, a.created_at_ms, a.expires_at_ms, a.decided_at_ms, a.version,
            a.card_item_id, o.state AS card_state, o.sent_channel, o.sent_ts
     FROM approvals a LEFT JOIN outbox o ON o.id = a.card_item_id WHERE a.id = ?1",
);

/// Binds: 1 idempotency key.
pub(crate) static BY_KEY: Stmt = Stmt::new("SELECT id FROM approvals WHERE idempotency_key = ?1");

/// Binds: 1 approval id.
pub(crate) static DECISIONS: Stmt = Stmt::new(
    "SELECT actor, verdict, reason, at_ms FROM approval_decisions WHERE approval_id = ?1 ORDER BY id",
);

/// The optimistic commit: only on the version the decision was taken on. Binds: 1 state, 2 decided at, 3 id,
/// 4 version.
pub(crate) static COMMIT: Stmt = Stmt::new(
    "UPDATE approvals SET state = ?1, decided_at_ms = ?2, version = version + 1 WHERE id = ?3 AND version = ?4",
);

/// Binds: 1 approval id, 2 actor, 3 verdict, 4 reason, 5 at.
pub(crate) static ADD_DECISION: Stmt = Stmt::new(
    "INSERT INTO approval_decisions (approval_id, actor, verdict, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
);

/// Binds: 1 now, 2 limit.
pub(crate) static DUE: Stmt = Stmt::new(
    "SELECT id FROM approvals WHERE state = 'pending' AND expires_at_ms <= ?1 ORDER BY expires_at_ms LIMIT ?2",
);
