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

/// Incidents, open ones first, then the latest. Binds: 1 limit.
pub(crate) static INCIDENTS: Stmt = Stmt::new(
    "SELECT i.id, i.declare_key, i.kind, i.title, i.sev, i.status, i.channel_name, i.channel_id, i.declarer,
            i.roles, i.origin, i.context, i.created_at_ms, i.resolved_at_ms, i.remind_at_ms, i.version,
            i.card_item_id, c.state AS card_state, c.sent_channel AS card_channel, c.sent_ts AS card_ts,
            i.announcement_item_id, a.state AS ann_state, a.sent_channel AS ann_channel, a.sent_ts AS ann_ts
     FROM incidents i LEFT JOIN outbox c ON c.id = i.card_item_id
                      LEFT JOIN outbox a ON a.id = i.announcement_item_id
     ORDER BY CASE WHEN i.status = 'resolved' THEN 1 ELSE 0 END, i.created_at_ms DESC, i.id LIMIT ?1",
);

/// A schedule's latest claimed minutes. Binds: 1 schedule, 2 limit.
pub(crate) static SCHEDULE_RUNS: Stmt = Stmt::new(
    "SELECT due_ms, outcome, claimed_by, claimed_at_ms FROM schedule_runs
     WHERE schedule = ?1 ORDER BY due_ms DESC LIMIT ?2",
);

/// The latest runs Workflow Builder started: a step's run carries `{"step": …}` in place of a card
/// (`sluice::steps`). Binds: 1 limit.
pub(crate) static STEP_RUNS: Stmt = Stmt::new(
    "SELECT id, action, target, actor, team, channel, ts, reply, card, state, status, result, started_at_ms,
            finished_at_ms
     FROM action_runs WHERE card LIKE '{\"step\":%'
     ORDER BY started_at_ms DESC, id DESC LIMIT ?1",
);

/// Forgets login failures that left the window (a failure at the window's start has just left it). Binds: 1 window
/// start.
pub(crate) static DROP_OLD_LOGIN_FAILURES: Stmt =
    Stmt::new("DELETE FROM console_login_failures WHERE at_ms <= ?1");

/// Notes a login attempt. Binds: 1 client, 2 now.
pub(crate) static NOTE_LOGIN_ATTEMPT: Stmt =
    Stmt::new("INSERT INTO console_login_failures (client, at_ms) VALUES (?1, ?2) RETURNING id");

/// Failures in the window, the client's and everyone's, with the oldest of each. Binds: 1 client, 2 window start.
pub(crate) static LOGIN_FAILURES: Stmt = Stmt::new(
    "SELECT COUNT(CASE WHEN client = ?1 THEN 1 END) AS client_count,
            MIN(CASE WHEN client = ?1 THEN at_ms END) AS client_oldest,
            COUNT(*) AS total_count, MIN(at_ms) AS total_oldest
     FROM console_login_failures WHERE at_ms > ?2",
);

/// Binds: 1 attempt id.
pub(crate) static FORGET_LOGIN_ATTEMPT: Stmt =
    Stmt::new("DELETE FROM console_login_failures WHERE id = ?1");

/// Binds: 1 client.
pub(crate) static CLEAR_LOGIN_FAILURES: Stmt =
    Stmt::new("DELETE FROM console_login_failures WHERE client = ?1");
