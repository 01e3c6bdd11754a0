//! What the operator console reads. Read-only; every statement here is bounded by a `LIMIT` or a time.

use super::Stmt;

/// Binds: 1 since.
pub(crate) static RECENT_COUNTS: Stmt = Stmt::new(
    "SELECT (SELECT COUNT(*) FROM events WHERE received_at_ms >= ?1) AS events_in,
            (SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND sent_at_ms >= ?1) AS calls_out",
);

/// Lanes with pending items or a live lease. Binds: 1 now, 2 limit.
pub(crate) static LANES: Stmt = Stmt::new(
    "SELECT l.lane,
            (SELECT COUNT(*) FROM outbox o WHERE o.lane = l.lane AND o.state = 'pending') AS pending,
            h.created_at_ms AS oldest,
            CASE WHEN l.lease_until_ms > ?1 THEN l.owner END AS owner,
            CASE WHEN l.lease_until_ms > ?1 THEN l.lease_until_ms END AS lease_until_ms
     FROM lanes l LEFT JOIN outbox h ON h.id = l.head_id
     WHERE l.head_id IS NOT NULL OR (l.owner IS NOT NULL AND l.lease_until_ms > ?1)
     ORDER BY l.lane LIMIT ?2",
);

/// No binds.
pub(crate) static LEADERS: Stmt =
    Stmt::new("SELECT role, owner, until_ms FROM leaders ORDER BY role");

/// The latest events, from one source or any (`''`). Binds: 1 source, 2 limit.
pub(crate) static RECENT_EVENTS: Stmt = Stmt::new(
    "SELECT id, received_at_ms, source, CAST(body AS TEXT) AS body, CAST(fate AS TEXT) AS fate
     FROM events WHERE (?1 = '' OR source = ?1)
     ORDER BY received_at_ms DESC, id DESC LIMIT ?2",
);

/// Pending approvals first, then the latest. Binds: 1 limit.
pub(crate) static APPROVALS: Stmt = Stmt::new(
    "SELECT id, requester, state, channel, required, created_at_ms, expires_at_ms, decided_at_ms,
            CAST(request AS TEXT) AS request
     FROM approvals
     ORDER BY CASE WHEN state = 'pending' THEN 0 ELSE 1 END, created_at_ms DESC LIMIT ?1",
);

/// Opens a console session. Binds: 1 token hash, 2 operator, 3 now, 4 expiry.
pub(crate) static OPEN_SESSION: Stmt = Stmt::new(
    "INSERT INTO console_sessions (token_hash, operator, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
);

/// Forgets sessions that have expired. Binds: 1 now.
pub(crate) static DROP_EXPIRED_SESSIONS: Stmt =
    Stmt::new("DELETE FROM console_sessions WHERE expires_at_ms <= ?1");

/// A session still open. Binds: 1 token hash, 2 now.
pub(crate) static SESSION: Stmt = Stmt::new(
    "SELECT operator, created_at_ms, expires_at_ms FROM console_sessions
     WHERE token_hash = ?1 AND expires_at_ms > ?2",
);

/// Ends a session. Binds: 1 token hash.
pub(crate) static CLOSE_SESSION: Stmt =
    Stmt::new("DELETE FROM console_sessions WHERE token_hash = ?1");

/// Inhibition keys in force: their alert open and seen within the key's window. Binds: 1 now, 2 limit.
pub(crate) static HELD_INHIBITIONS: Stmt = Stmt::new(
    "SELECT k.key, k.window_ms, a.id AS alert_id, a.dedup_key, a.first_event_id, a.last_seen_ms,
            CAST(e.body AS TEXT) AS body
     FROM inhibit_keys k JOIN alerts a ON a.id = k.alert_id JOIN events e ON e.id = a.first_event_id
     WHERE a.closed_at_ms IS NULL AND a.last_seen_ms >= ?1 - k.window_ms
     ORDER BY a.last_seen_ms DESC, k.key LIMIT ?2",
);

/// Slack calls sent since a time, per channel and method. Binds: 1 since, 2 limit.
pub(crate) static CALLS_BY_CHANNEL: Stmt = Stmt::new(
    "SELECT channel, method, COUNT(*) AS calls FROM outbox
     WHERE state = 'sent' AND sent_at_ms >= ?1
     GROUP BY channel, method ORDER BY calls DESC, channel, method LIMIT ?2",
);
