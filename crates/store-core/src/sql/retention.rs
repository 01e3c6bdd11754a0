//! Retention ([`crate::Store::prune`]): what goes, in the order it must go. Binds: 1 cut, 2 idle time of a rate row.

use super::Stmt;

/// Bookkeeping of alerts about to be pruned (not counted as removed).
pub(crate) static ALERT_POSTS: Stmt = Stmt::new(
    "DELETE FROM alert_posts WHERE alert_id IN
         (SELECT id FROM alerts WHERE closed_at_ms IS NOT NULL AND closed_at_ms < ?1)",
);

/// Alerts closed before the cut, then sent items nothing needs any more, then events with nothing left.
pub(crate) static COUNTED: [Stmt; 3] = [
    Stmt::new("DELETE FROM alerts WHERE closed_at_ms IS NOT NULL AND closed_at_ms < ?1"),
    Stmt::new(
        "DELETE FROM outbox WHERE state = 'sent' AND sent_at_ms < ?1
             AND NOT EXISTS (SELECT 1 FROM alert_posts p WHERE p.item_id = outbox.id)
             AND NOT EXISTS (SELECT 1 FROM alert_groups g WHERE g.post_item_id = outbox.id)
             AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.ref_item_id = outbox.id AND f.state <> 'sent')
             AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.card_item_id = outbox.id AND a.state = 'pending')",
    ),
    Stmt::new(
        "DELETE FROM events WHERE received_at_ms < ?1
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = events.id)
             AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.first_event_id = events.id AND a.closed_at_ms IS NULL)",
    ),
];

/// Bookkeeping too: the inhibition keys of pruned alerts (closing an alert already drops its keys).
pub(crate) static INHIBIT_KEYS: Stmt = Stmt::new(
    "DELETE FROM inhibit_keys WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = inhibit_keys.alert_id)",
);

pub(crate) static SILENCES: Stmt =
    Stmt::new("DELETE FROM silences WHERE COALESCE(expired_at_ms, ends_at_ms) < ?1");

/// After the events: an action goes only once the event it is recorded on is gone.
pub(crate) static ALERT_ACTIONS: Stmt = Stmt::new(
    "DELETE FROM alert_actions WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = alert_actions.event_id)",
);

/// Lanes with nothing pending and no holder. Only on SQLite: on PostgreSQL a lane row is what transactions lock
/// before touching the lane, and the store never deleted them there.
pub(crate) static IDLE_LANES: Stmt =
    Stmt::new("DELETE FROM lanes WHERE head_id IS NULL AND owner IS NULL");

/// Short-lived coordination rows (counted).
pub(crate) static COORDINATION: [Stmt; 3] = [
    Stmt::new("DELETE FROM once_keys WHERE expires_at_ms < ?1"),
    Stmt::new("DELETE FROM rate_limits WHERE tat_ms < ?1 - ?2 AND blocked_until_ms < ?1 - ?2"),
    Stmt::new("DELETE FROM leaders WHERE until_ms < ?1"),
];
