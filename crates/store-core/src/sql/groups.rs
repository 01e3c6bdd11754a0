//! Groups of alerts (noise control): joining them, flushing them, and a route's rate and alerts.

use super::Stmt;

/// Creates the group or marks it changed, and returns its id; `$joins` is how many alerts join it (a literal or a
/// placeholder), so [`JOIN_GROUP`] and [`JOIN_GROUP_MANY`] are one text.
/// Binds: 1 key, 2 rule, 3 lane, 4 team, 5 channel, 6 template, 7 labels (JSON), 8 first event id, 9 wait,
/// 10 interval, 11 repeat, 12 now (of the first join).
///
/// Due time after a change: a new group waits `group_wait` from its creation; a group whose last flush showed it
/// resolved starts over with `group_wait` from now (Alertmanager would have forgotten it); otherwise the change is
/// shown `group_interval` after the last flush (at once if that is past), or earlier if something else was due.
/// Only the first of several joins sets the changed and due times (later ones find `changed_at_ms` set and keep
/// them), so n joins at once equal n joins one after the other.
macro_rules! join_group {
    ($joins:literal) => {
        concat!("
INSERT INTO alert_groups (key, rule, lane, team, channel, template, labels, first_event_id, wait_ms, interval_ms,
                          repeat_ms, created_at_ms, changed_at_ms, due_at_ms, version, events)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?12 + ?9, ", $joins, ", ", $joins, ")
ON CONFLICT (key) DO UPDATE SET
    version = alert_groups.version + ", $joins, ",
    events = alert_groups.events + ", $joins, ",
    changed_at_ms = COALESCE(alert_groups.changed_at_ms, ?12),
    due_at_ms = CASE
        WHEN alert_groups.changed_at_ms IS NOT NULL THEN alert_groups.due_at_ms
        WHEN alert_groups.notified_at_ms IS NULL THEN alert_groups.created_at_ms + alert_groups.wait_ms
        WHEN alert_groups.notified_firing = 0 THEN ?12 + alert_groups.wait_ms
        WHEN alert_groups.due_at_ms IS NOT NULL
             AND alert_groups.due_at_ms < alert_groups.notified_at_ms + alert_groups.interval_ms
            THEN alert_groups.due_at_ms
        ELSE alert_groups.notified_at_ms + alert_groups.interval_ms
    END
RETURNING id")
    };
}

/// One alert joins the group (see [`join_group!`]). Binds 1–12.
pub(crate) static JOIN_GROUP: Stmt = Stmt::new(join_group!("1"));

/// Several alerts of one group commit join the group at once (see [`join_group!`]). Binds 1–12, 13 how many.
pub(crate) static JOIN_GROUP_MANY: Stmt = Stmt::new(join_group!("?13"));

/// Counts events in a route's second. Binds: 1 rule, 2 second (ms), and with [`COUNT_ROUTE_EVENTS`] 3 how many.
macro_rules! count_route {
    ($events:literal) => {
        concat!(
            "
INSERT INTO route_events (rule, bucket_ms, events) VALUES (?1, ?2, ",
            $events,
            ")
ON CONFLICT (rule, bucket_ms) DO UPDATE SET events = route_events.events + ",
            $events
        )
    };
}

/// Counts the event in its route's current second. Binds: 1 rule, 2 second (ms).
pub(crate) static COUNT_ROUTE_EVENT: Stmt = Stmt::new(count_route!("1"));

/// Counts several events in a route's second. Binds: 1 rule, 2 second (ms), 3 how many.
pub(crate) static COUNT_ROUTE_EVENTS: Stmt = Stmt::new(count_route!("?3"));

/// Binds: 1 group id, 2 alert id.
pub(crate) static ADD_MEMBER: Stmt = Stmt::new(
    "INSERT INTO group_alerts (group_id, alert_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
);

/// Members, many at once. Followed by [`super::values_list`] rows of 2 (group id, alert id) and [`ADD_MEMBERS_END`].
pub(crate) const ADD_MEMBERS: &str = "INSERT INTO group_alerts (group_id, alert_id) VALUES ";
pub(crate) const ADD_MEMBERS_END: &str = " ON CONFLICT DO NOTHING";

/// Groups due at a time, earliest first. Binds: 1 now, 2 limit.
pub(crate) static DUE_GROUPS: Stmt = Stmt::new(
    "SELECT id, key, rule, lane, team, channel, template, labels, version, first_event_id, created_at_ms,
            changed_at_ms, notified_at_ms, notified_firing, post_item_id, digested_at_ms, events, wait_ms,
            interval_ms, repeat_ms
     FROM alert_groups WHERE due_at_ms IS NOT NULL AND due_at_ms <= ?1
     ORDER BY due_at_ms, id LIMIT ?2",
);

/// Firing and resolved alerts of a group. Binds: 1 group id.
pub(crate) static GROUP_COUNTS: Stmt = Stmt::new(
    "
SELECT COALESCE(SUM(CASE WHEN a.closed_at_ms IS NULL THEN 1 ELSE 0 END), 0), COUNT(*)
FROM group_alerts ga JOIN alerts a ON a.id = ga.alert_id WHERE ga.group_id = ?1",
);

/// The alerts a group card lists. Binds: 1 group id, 2 limit.
pub(crate) static GROUP_MEMBERS: Stmt = Stmt::new("
SELECT a.first_event_id, CAST(e.body AS TEXT), a.count, a.first_seen_ms, a.last_seen_ms, a.closed_at_ms
FROM group_alerts ga JOIN alerts a ON a.id = ga.alert_id JOIN events e ON e.id = a.first_event_id
WHERE ga.group_id = ?1
ORDER BY CASE WHEN a.closed_at_ms IS NULL THEN 0 ELSE 1 END, a.last_seen_ms DESC, a.id
LIMIT ?2");

/// Binds: 1 group id, 2 version read, 3 now, 4 notified firing, 5 next due (or NULL), 6 digested (0/1),
/// 7 post item id (or NULL to keep the old one). Returns the post item id after the update.
pub(crate) static FINISH_FLUSH: Stmt = Stmt::new(
    "
UPDATE alert_groups SET
    notified_at_ms = ?3,
    notified_firing = ?4,
    post_item_id = COALESCE(?7, post_item_id),
    digested_at_ms = CASE WHEN ?6 = 1 THEN ?3 ELSE NULL END,
    changed_at_ms = CASE WHEN version = ?2 THEN NULL ELSE changed_at_ms END,
    due_at_ms = CASE WHEN version = ?2 THEN ?5 ELSE ?3 + interval_ms END
WHERE id = ?1",
);

/// A group's first event and lane. Binds: 1 group id.
pub(crate) static GROUP_OF: Stmt =
    Stmt::new("SELECT first_event_id, lane FROM alert_groups WHERE id = ?1");

/// The group's post: id and dead reason, if any. Binds: 1 group id.
pub(crate) static GROUP_POST: Stmt = Stmt::new("
SELECT o.id, o.dead_reason FROM alert_groups g JOIN outbox o ON o.id = g.post_item_id WHERE g.id = ?1");

/// Marks the groups whose first event is given as changed and due now (an action on the card).
/// Binds: 1 event id, 2 now.
pub(crate) static TOUCH_GROUPS: Stmt = Stmt::new("
UPDATE alert_groups SET version = version + 1, changed_at_ms = COALESCE(changed_at_ms, ?2), due_at_ms = ?2
WHERE first_event_id = ?1");

/// At the end of a storm: every group of the route that has no card and changes not yet flushed is reported by
/// the final digest, as if flushed now as digested. Binds: 1 rule, 2 now.
pub(crate) static ABSORB_GROUPS: Stmt = Stmt::new(
    "
UPDATE alert_groups SET
    notified_at_ms = ?2,
    digested_at_ms = ?2,
    notified_firing = (SELECT COUNT(*) FROM group_alerts ga JOIN alerts a ON a.id = ga.alert_id
                       WHERE ga.group_id = alert_groups.id AND a.closed_at_ms IS NULL),
    changed_at_ms = NULL,
    due_at_ms = ?2 + repeat_ms
WHERE rule = ?1 AND post_item_id IS NULL AND changed_at_ms IS NOT NULL",
);

/// At the end of a storm: a group that had a card before the storm and was only digested since is due now, as
/// changed, so its card is brought up to date (an update, not a new message). Binds: 1 rule, 2 now.
pub(crate) static REFRESH_DIGESTED_CARDS: Stmt = Stmt::new("
UPDATE alert_groups SET version = version + 1, changed_at_ms = COALESCE(changed_at_ms, ?2), due_at_ms = ?2
WHERE rule = ?1 AND post_item_id IS NOT NULL AND digested_at_ms IS NOT NULL");

/// Events of a route in the seconds after a time. Binds: 1 rule, 2 since.
pub(crate) static ROUTE_RATE: Stmt =
    Stmt::new("SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) FROM route_events WHERE rule = ?1 AND bucket_ms > ?2");

/// Alerts of a route's groups seen since a time. Binds: 1 rule, 2 since.
pub(crate) static ROUTE_ALERTS: Stmt = Stmt::new(
    "
SELECT DISTINCT a.id, CAST(e.body AS TEXT), a.count, a.last_seen_ms
FROM alert_groups g JOIN group_alerts ga ON ga.group_id = g.id JOIN alerts a ON a.id = ga.alert_id
JOIN events e ON e.id = a.first_event_id
WHERE g.rule = ?1 AND a.last_seen_ms >= ?2",
);

/// The groups of the alert whose first event is given. Binds: 1 event id.
pub(crate) static GROUPS_OF_EVENT: Stmt = Stmt::new(
    "
SELECT g.key, g.rule, g.channel, o.sent_ts, g.notified_at_ms, g.digested_at_ms
FROM alerts a JOIN group_alerts ga ON ga.alert_id = a.id JOIN alert_groups g ON g.id = ga.group_id
LEFT JOIN outbox o ON o.id = g.post_item_id AND o.state = 'sent'
WHERE a.first_event_id = ?1 ORDER BY g.id",
);

/// Retention, before alerts and items are pruned: groups with nothing pending whose last flush is older than the
/// cut (so their cards can go), and the memberships of alerts about to be pruned. Binds: 1 cut.
pub(crate) static PRUNE_GROUPS: [Stmt; 4] = [
    Stmt::new("DELETE FROM route_events WHERE bucket_ms < ?1"),
    Stmt::new(
        "DELETE FROM group_alerts WHERE group_id IN (SELECT id FROM alert_groups
         WHERE due_at_ms IS NULL AND notified_at_ms < ?1 AND notified_firing = 0)",
    ),
    Stmt::new(
        "DELETE FROM alert_groups WHERE due_at_ms IS NULL AND notified_at_ms < ?1 AND notified_firing = 0",
    ),
    Stmt::new(
        "DELETE FROM group_alerts WHERE alert_id IN
         (SELECT id FROM alerts WHERE closed_at_ms IS NOT NULL AND closed_at_ms < ?1)",
    ),
];
