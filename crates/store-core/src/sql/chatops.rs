//! ChatOps: schedule claims, open alerts for `status` and `ack`, and the statistics of scheduled reports.

use super::Stmt;

/// Binds: 1 schedule, 2 due minute, 3 outcome, 4 owner, 5 now. Returns a row only for the replica that claimed it.
pub(crate) static CLAIM_RUN: Stmt = Stmt::new(
    "INSERT INTO schedule_runs (schedule, due_ms, outcome, claimed_by, claimed_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (schedule, due_ms) DO NOTHING RETURNING due_ms",
);

/// Binds: 1 schedule.
pub(crate) static LAST_RUN: Stmt =
    Stmt::new("SELECT MAX(due_ms) FROM schedule_runs WHERE schedule = ?1");

/// An open alert and its first event's body, with `$tail` after the WHERE.
macro_rules! open_alert {
    ($tail:literal) => {
        concat!(
            "SELECT a.id, a.dedup_key, a.first_event_id, a.count, a.first_seen_ms, a.last_seen_ms,
                    CAST(e.body AS TEXT) AS body
             FROM alerts a JOIN events e ON e.id = a.first_event_id WHERE a.closed_at_ms IS NULL",
            $tail
        )
    };
}

/// Binds: 1 limit. Latest seen first.
pub(crate) static OPEN_ALERTS: Stmt =
    Stmt::new(open_alert!(" ORDER BY a.last_seen_ms DESC LIMIT ?1"));

/// Binds: 1 dedup key, alert id or first event id.
pub(crate) static FIND_OPEN_ALERT: Stmt = Stmt::new(open_alert!(
    " AND (a.dedup_key = ?1 OR a.first_event_id = ?1 OR CAST(a.id AS TEXT) = ?1) ORDER BY a.id DESC LIMIT 1"
));

/// Binds: 1 since, 2 limit. Latest first.
pub(crate) static EVENTS_SINCE: Stmt = Stmt::new(
    "SELECT id, received_at_ms, CAST(body AS TEXT) AS body, CAST(fate AS TEXT) AS fate
     FROM events WHERE received_at_ms >= ?1 AND source NOT IN ('slack', 'sluice')
     ORDER BY received_at_ms DESC LIMIT ?2",
);

/// Binds: 1 from, 2 to.
pub(crate) static COUNT_RECEIVED: Stmt = Stmt::new(
    "SELECT COUNT(*) FROM events WHERE received_at_ms >= ?1 AND received_at_ms < ?2
       AND source NOT IN ('slack', 'sluice')",
);

/// Binds: 1 from, 2 to.
pub(crate) static COUNT_POSTED: Stmt = Stmt::new(
    "SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND method = 'chat.postMessage'
       AND sent_at_ms >= ?1 AND sent_at_ms < ?2",
);

/// Binds: 1 from, 2 to.
pub(crate) static COUNT_DEAD: Stmt = Stmt::new(
    "SELECT COUNT(*) FROM outbox WHERE state = 'dead' AND dead_at_ms >= ?1 AND dead_at_ms < ?2",
);

/// Binds: 1 from, 2 to.
pub(crate) static COUNT_APPROVALS: Stmt =
    Stmt::new("SELECT COUNT(*) FROM approvals WHERE created_at_ms >= ?1 AND created_at_ms < ?2");

/// Binds: 1 from, 2 to, 3 limit. Latest first.
pub(crate) static PERIOD_EVENTS: Stmt = Stmt::new(
    "SELECT CAST(body AS TEXT) AS body, CAST(fate AS TEXT) AS fate FROM events
     WHERE received_at_ms >= ?1 AND received_at_ms < ?2 AND source NOT IN ('slack', 'sluice')
     ORDER BY received_at_ms DESC LIMIT ?3",
);
