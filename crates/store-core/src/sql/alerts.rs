//! Alerts (dedup), their cards, decisions on them, and the inhibition keys they hold.

use super::Stmt;

/// An `alerts` row selected as `id, first_event_id, count, last_seen_ms, started_at_ms, closed_at_ms`. Binds: 1
/// dedup key.
pub(crate) static OPEN_ALERT: Stmt = Stmt::new(
    "SELECT id, first_event_id, count, last_seen_ms, started_at_ms, closed_at_ms FROM alerts
     WHERE dedup_key = ?1 AND closed_at_ms IS NULL",
);

/// Which of a batch's dedup keys have an open alert. Followed by an [`super::in_list`] of keys from `?1` and `)`.
pub(crate) const OPEN_KEYS: &str =
    "SELECT dedup_key FROM alerts WHERE closed_at_ms IS NULL AND dedup_key IN (";

/// The latest close of a batch's dedup keys closed at or after a time. Binds: 1 since; followed by an
/// [`super::in_list`] of keys from `?2` and [`CLOSED_KEYS_END`].
pub(crate) const CLOSED_KEYS: &str = "SELECT dedup_key, MAX(closed_at_ms) FROM alerts
     WHERE closed_at_ms IS NOT NULL AND closed_at_ms >= ?1 AND dedup_key IN (";
pub(crate) const CLOSED_KEYS_END: &str = ") GROUP BY dedup_key";

/// New alerts, many at once. Followed by [`super::values_list`] rows of 7 (dedup key, first event id, count, first
/// seen, last seen, the source's start twice: of the latest and of the first occurrence) and [`INSERT_ALERTS_END`].
pub(crate) const INSERT_ALERTS: &str = "INSERT INTO alerts
     (dedup_key, first_event_id, count, first_seen_ms, last_seen_ms, started_at_ms, first_started_at_ms) VALUES ";
pub(crate) const INSERT_ALERTS_END: &str = " RETURNING id, first_event_id";

/// Followed by [`super::values_list`] rows of 3 (alert id, lane, item id).
pub(crate) const INSERT_ALERT_POSTS: &str =
    "INSERT INTO alert_posts (alert_id, lane, item_id) VALUES ";

/// The latest closed alert of a key, selected as [`OPEN_ALERT`] is. Binds: 1 dedup key.
pub(crate) static LAST_CLOSED_ALERT: Stmt = Stmt::new(
    "SELECT id, first_event_id, count, last_seen_ms, started_at_ms, closed_at_ms FROM alerts
     WHERE dedup_key = ?1 AND closed_at_ms IS NOT NULL
     ORDER BY closed_at_ms DESC, id DESC LIMIT 1",
);

/// Binds: 1 closed at, 2 alert id, 3 the source's end (or NULL), 4 the event that closed it (or NULL: went quiet).
pub(crate) static CLOSE_ALERT: Stmt = Stmt::new(
    "UPDATE alerts SET closed_at_ms = ?1, ended_at_ms = ?3, last_event_id = COALESCE(?4, last_event_id)
     WHERE id = ?2",
);

/// A closed alert inhibits nothing; dropping its keys keeps the lookup short. Binds: 1 alert id.
pub(crate) static DROP_KEYS: Stmt = Stmt::new("DELETE FROM inhibit_keys WHERE alert_id = ?1");

/// An open alert as the lifecycle says. Binds: 1 count, 2 last seen, 3 alert id, 4 the source's start of the latest
/// occurrence, 5 the event.
pub(crate) static UPDATE_ALERT: Stmt = Stmt::new(
    "UPDATE alerts SET closed_at_ms = NULL, ended_at_ms = NULL, count = ?1, last_seen_ms = ?2,
            started_at_ms = ?4, last_event_id = ?5
     WHERE id = ?3",
);

/// Binds: 1 dedup key, 2 first event id, 3 now, 4 the source's start (or NULL).
pub(crate) static CREATE_ALERT: Stmt = Stmt::new(
    "INSERT INTO alerts (dedup_key, first_event_id, count, first_seen_ms, last_seen_ms, started_at_ms,
                         first_started_at_ms)
     VALUES (?1, ?2, 1, ?3, ?3, ?4, ?4) RETURNING id",
);

/// An alert born closed (a resolve for an alert never seen) never fired. Binds: 1 alert id, 2 closed at.
pub(crate) static BORN_CLOSED: Stmt =
    Stmt::new("UPDATE alerts SET count = 0, closed_at_ms = ?2 WHERE id = ?1");

/// The alert's post in a lane, its state and dead reason. Binds: 1 alert id, 2 lane.
pub(crate) static ALERT_POST: Stmt = Stmt::new(
    "SELECT p.item_id, o.state, o.dead_reason FROM alert_posts p LEFT JOIN outbox o ON o.id = p.item_id
     WHERE p.alert_id = ?1 AND p.lane = ?2",
);

/// Binds: 1 alert id, 2 lane, 3 item id.
pub(crate) static ADD_ALERT_POST: Stmt =
    Stmt::new("INSERT INTO alert_posts (alert_id, lane, item_id) VALUES (?1, ?2, ?3)");

/// Binds: 1 alert id, 2 lane.
pub(crate) static REFRESH_PENDING: Stmt = Stmt::new(
    "SELECT o.id FROM alert_posts p JOIN outbox o ON o.id = p.refresh_item_id
     WHERE p.alert_id = ?1 AND p.lane = ?2 AND o.state = 'pending'",
);

/// Binds: 1 item id, 2 alert id, 3 lane.
pub(crate) static SET_REFRESH: Stmt =
    Stmt::new("UPDATE alert_posts SET refresh_item_id = ?1 WHERE alert_id = ?2 AND lane = ?3");

/// Binds: 1 alert id, 2 lane.
pub(crate) static CLEAR_REFRESH: Stmt =
    Stmt::new("UPDATE alert_posts SET refresh_item_id = NULL WHERE alert_id = ?1 AND lane = ?2");

/// The latest alert opened by an event. Binds: 1 event id.
pub(crate) static ALERT_OF: Stmt =
    Stmt::new("SELECT id FROM alerts WHERE first_event_id = ?1 ORDER BY id DESC LIMIT 1");

/// The alert a card's first post, refresh or reply (outbox item) belongs to, as it stands. Binds: 1 item id.
pub(crate) static ALERT_CARD: Stmt = Stmt::new(
    "SELECT a.id, a.first_event_id, a.count, a.first_seen_ms, a.last_seen_ms, a.closed_at_ms,
            CAST(e.body AS TEXT) AS body, p.lane, p.refresh_item_id,
            a.first_started_at_ms, a.ended_at_ms, CAST(l.body AS TEXT) AS latest
     FROM outbox o
     JOIN alert_posts p ON p.item_id = COALESCE(o.ref_item_id, o.id)
     JOIN alerts a ON a.id = p.alert_id
     JOIN events e ON e.id = a.first_event_id
     LEFT JOIN events l ON l.id = a.last_event_id
     WHERE o.id = ?1",
);

/// Binds: 1 key, 2 now, 3 own dedup key (or NULL), 4 both-sided.
pub(crate) static KEY_HELD: Stmt = Stmt::new(
    "SELECT EXISTS (SELECT 1 FROM inhibit_keys k JOIN alerts a ON a.id = k.alert_id
     WHERE k.key = ?1 AND a.closed_at_ms IS NULL AND a.last_seen_ms >= ?2 - k.window_ms
       AND a.dedup_key IS DISTINCT FROM ?3 AND NOT (k.both_sides AND ?4))",
);

/// Followed by [`super::values_list`] rows of 4 (key, alert id, both-sided, window) and [`HOLD_KEYS_END`].
pub(crate) const HOLD_KEYS: &str =
    "INSERT INTO inhibit_keys (key, alert_id, both_sides, window_ms) VALUES ";
pub(crate) const HOLD_KEYS_END: &str = " ON CONFLICT (key, alert_id) DO NOTHING";

/// The first decision per (alert, action) wins. Binds: 1 root event id, 2 action, 3 actor, 4 now.
pub(crate) static RECORD_ACTION: Stmt = Stmt::new(
    "INSERT INTO alert_actions (event_id, action, actor, at_ms) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (event_id, action) DO NOTHING RETURNING actor",
);

/// Binds: 1 root event id, 2 action.
pub(crate) static ACTION_WINNER: Stmt =
    Stmt::new("SELECT actor, at_ms FROM alert_actions WHERE event_id = ?1 AND action = ?2");

/// Binds: 1 root event id.
pub(crate) static ACTIONS_OF: Stmt = Stmt::new(
    "SELECT action, actor, at_ms FROM alert_actions WHERE event_id = ?1 ORDER BY at_ms, action",
);
