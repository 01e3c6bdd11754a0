//! Groups of alerts (noise control): the SQL both backends run, written once.
//!
//! Statements use SQLite's numbered placeholders (`?1`); PostgreSQL runs them through [`pg!`], which turns them
//! into `$1`. Everything else in them is common to both dialects.

use crate::error::corrupt;
use crate::ingest::{ref_dead_reason, to_json, IngestTx, ItemRow, TouchedLanes};
use crate::{GroupFlush, StoreError};

/// The statement with `?N` placeholders rewritten as PostgreSQL's `$N`.
pub(crate) fn to_pg(sql: &str) -> String {
    sql.replace('?', "$")
}

/// [`to_pg`] of a fixed statement, rewritten once per call site and kept for the life of the process, so the
/// ingest path does not allocate a new statement text per event.
macro_rules! pg {
    ($sql:expr) => {{
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| $crate::grouping::to_pg(&$sql)).as_str()
    }};
}
pub(crate) use pg;

/// Creates the group or marks it changed, and returns its id.
/// Binds: 1 key, 2 rule, 3 lane, 4 team, 5 channel, 6 template, 7 labels (JSON), 8 first event id, 9 wait,
/// 10 interval, 11 repeat, 12 now.
///
/// Due time after a change: a new group waits `group_wait` from its creation; a group whose last flush showed it
/// resolved starts over with `group_wait` from now (Alertmanager would have forgotten it); otherwise the change is
/// shown `group_interval` after the last flush (at once if that is past), or earlier if something else was due.
pub(crate) const JOIN_GROUP: &str = "
INSERT INTO alert_groups (key, rule, lane, team, channel, template, labels, first_event_id, wait_ms, interval_ms,
                          repeat_ms, created_at_ms, changed_at_ms, due_at_ms, version, events)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?12 + ?9, 1, 1)
ON CONFLICT (key) DO UPDATE SET
    version = alert_groups.version + 1,
    events = alert_groups.events + 1,
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
RETURNING id";

/// Counts the event in its route's current second. Binds: 1 rule, 2 second (ms).
pub(crate) const COUNT_ROUTE_EVENT: &str = "
INSERT INTO route_events (rule, bucket_ms, events) VALUES (?1, ?2, 1)
ON CONFLICT (rule, bucket_ms) DO UPDATE SET events = route_events.events + 1";

/// Binds: 1 group id, 2 alert id.
pub(crate) const ADD_MEMBER: &str =
    "INSERT INTO group_alerts (group_id, alert_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

pub(crate) const GROUP_COLUMNS: &str = "id, key, rule, lane, team, channel, template, labels, version, first_event_id,
    created_at_ms, changed_at_ms, notified_at_ms, notified_firing, post_item_id, digested_at_ms, events, wait_ms, interval_ms, repeat_ms";

/// Binds: 1 now, 2 limit.
pub(crate) fn due_groups_sql() -> String {
    format!(
        "SELECT {GROUP_COLUMNS} FROM alert_groups WHERE due_at_ms IS NOT NULL AND due_at_ms <= ?1
         ORDER BY due_at_ms, id LIMIT ?2"
    )
}

/// Firing and resolved alerts of a group. Binds: 1 group id.
pub(crate) const GROUP_COUNTS: &str = "
SELECT COALESCE(SUM(CASE WHEN a.closed_at_ms IS NULL THEN 1 ELSE 0 END), 0), COUNT(*)
FROM group_alerts ga JOIN alerts a ON a.id = ga.alert_id WHERE ga.group_id = ?1";

/// The alerts a group card lists. Binds: 1 group id, 2 limit.
pub(crate) const GROUP_MEMBERS: &str = "
SELECT a.first_event_id, CAST(e.body AS TEXT), a.count, a.first_seen_ms, a.last_seen_ms, a.closed_at_ms
FROM group_alerts ga JOIN alerts a ON a.id = ga.alert_id JOIN events e ON e.id = a.first_event_id
WHERE ga.group_id = ?1
ORDER BY CASE WHEN a.closed_at_ms IS NULL THEN 0 ELSE 1 END, a.last_seen_ms DESC, a.id
LIMIT ?2";

/// Binds: 1 group id, 2 version read, 3 now, 4 notified firing, 5 next due (or NULL), 6 digested (0/1),
/// 7 post item id (or NULL to keep the old one). Returns the post item id after the update.
pub(crate) const FINISH_FLUSH: &str = "
UPDATE alert_groups SET
    notified_at_ms = ?3,
    notified_firing = ?4,
    post_item_id = COALESCE(?7, post_item_id),
    digested_at_ms = CASE WHEN ?6 = 1 THEN ?3 ELSE NULL END,
    changed_at_ms = CASE WHEN version = ?2 THEN NULL ELSE changed_at_ms END,
    due_at_ms = CASE WHEN version = ?2 THEN ?5 ELSE ?3 + interval_ms END
WHERE id = ?1";

/// A group's first event and lane. Binds: 1 group id.
pub(crate) const GROUP_OF: &str = "SELECT first_event_id, lane FROM alert_groups WHERE id = ?1";

/// The group's post: id and dead reason, if any. Binds: 1 group id.
pub(crate) const GROUP_POST: &str = "
SELECT o.id, o.dead_reason FROM alert_groups g JOIN outbox o ON o.id = g.post_item_id WHERE g.id = ?1";

/// Marks the groups whose first event is given as changed and due now (an action on the card).
/// Binds: 1 event id, 2 now.
pub(crate) const TOUCH_GROUPS: &str = "
UPDATE alert_groups SET version = version + 1, changed_at_ms = COALESCE(changed_at_ms, ?2), due_at_ms = ?2
WHERE first_event_id = ?1";

/// At the end of a storm: every group of the route that has no card and changes not yet flushed is reported by
/// the final digest, as if flushed now as digested. Binds: 1 rule, 2 now.
pub(crate) const ABSORB_GROUPS: &str = "
UPDATE alert_groups SET
    notified_at_ms = ?2,
    digested_at_ms = ?2,
    notified_firing = (SELECT COUNT(*) FROM group_alerts ga JOIN alerts a ON a.id = ga.alert_id
                       WHERE ga.group_id = alert_groups.id AND a.closed_at_ms IS NULL),
    changed_at_ms = NULL,
    due_at_ms = ?2 + repeat_ms
WHERE rule = ?1 AND post_item_id IS NULL AND changed_at_ms IS NOT NULL";

/// At the end of a storm: a group that had a card before the storm and was only digested since is due now, as
/// changed, so its card is brought up to date (an update, not a new message). Binds: 1 rule, 2 now.
pub(crate) const REFRESH_DIGESTED_CARDS: &str = "
UPDATE alert_groups SET version = version + 1, changed_at_ms = COALESCE(changed_at_ms, ?2), due_at_ms = ?2
WHERE rule = ?1 AND post_item_id IS NOT NULL AND digested_at_ms IS NOT NULL";

/// Events of a route in the seconds after a time. Binds: 1 rule, 2 since.
pub(crate) const ROUTE_RATE: &str =
    "SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) FROM route_events WHERE rule = ?1 AND bucket_ms > ?2";

/// Alerts of a route's groups seen since a time. Binds: 1 rule, 2 since.
pub(crate) const ROUTE_ALERTS: &str = "
SELECT DISTINCT a.id, CAST(e.body AS TEXT), a.count, a.last_seen_ms
FROM alert_groups g JOIN group_alerts ga ON ga.group_id = g.id JOIN alerts a ON a.id = ga.alert_id
JOIN events e ON e.id = a.first_event_id
WHERE g.rule = ?1 AND a.last_seen_ms >= ?2";

/// The groups of the alert whose first event is given. Binds: 1 event id.
pub(crate) const GROUPS_OF_EVENT: &str = "
SELECT g.key, g.rule, g.channel, o.sent_ts, g.notified_at_ms, g.digested_at_ms
FROM alerts a JOIN group_alerts ga ON ga.alert_id = a.id JOIN alert_groups g ON g.id = ga.group_id
LEFT JOIN outbox o ON o.id = g.post_item_id AND o.state = 'sent'
WHERE a.first_event_id = ?1 ORDER BY g.id";

/// Retention, before alerts and items are pruned: groups with nothing pending whose last flush is older than the
/// cut (so their cards can go), and the memberships of alerts about to be pruned. Binds: 1 cut.
pub(crate) const PRUNE_GROUPS: [&str; 4] = [
    "DELETE FROM route_events WHERE bucket_ms < ?1",
    "DELETE FROM group_alerts WHERE group_id IN (SELECT id FROM alert_groups
         WHERE due_at_ms IS NULL AND notified_at_ms < ?1 AND notified_firing = 0)",
    "DELETE FROM alert_groups WHERE due_at_ms IS NULL AND notified_at_ms < ?1 AND notified_firing = 0",
    "DELETE FROM group_alerts WHERE alert_id IN
         (SELECT id FROM alerts WHERE closed_at_ms IS NOT NULL AND closed_at_ms < ?1)",
];

/// The row of [`GROUP_COLUMNS`], decoded the same way by both backends.
#[derive(sqlx::FromRow)]
pub(crate) struct GroupRow {
    id: i64,
    key: String,
    rule: String,
    lane: String,
    team: String,
    channel: String,
    template: String,
    labels: String,
    version: i64,
    first_event_id: String,
    created_at_ms: i64,
    changed_at_ms: Option<i64>,
    notified_at_ms: Option<i64>,
    notified_firing: i64,
    post_item_id: Option<i64>,
    digested_at_ms: Option<i64>,
    events: i64,
    wait_ms: i64,
    interval_ms: i64,
    repeat_ms: i64,
}

pub(crate) fn labels_json(labels: &[(String, String)]) -> Result<String, StoreError> {
    serde_json::to_string(labels)
        .map_err(|e| StoreError::Other(format!("cannot serialise group labels: {e}")))
}

/// A group row without its alerts and counts (the caller adds them).
pub(crate) fn group_state(r: GroupRow) -> Result<crate::GroupState, StoreError> {
    let labels = serde_json::from_str(&r.labels).map_err(|e| corrupt("group labels", e))?;
    Ok(crate::GroupState {
        id: r.id,
        key: r.key,
        rule: r.rule,
        lane: r.lane,
        team: r.team,
        channel: r.channel,
        template: r.template,
        labels,
        version: r.version,
        first_event_id: r.first_event_id,
        created_at_ms: r.created_at_ms,
        changed_at_ms: r.changed_at_ms,
        notified_at_ms: r.notified_at_ms,
        notified_firing: r.notified_firing,
        post_item_id: r.post_item_id,
        digested_at_ms: r.digested_at_ms,
        events: r.events,
        firing: 0,
        resolved: 0,
        alerts: Vec::new(),
        wait_ms: r.wait_ms,
        interval_ms: r.interval_ms,
        repeat_ms: r.repeat_ms,
    })
}

/// The writes of [`crate::Store::flush_group`], once for both backends, inside the caller's transaction: the new card
/// (it becomes the group's post), the updates linked to the group's post (born dead if it is dead), then the group's
/// new state. `first_event_id` is the group's (see [`IngestTx::group_of`]); the items are recorded as its.
pub(crate) async fn flush_in(
    tx: &mut dyn IngestTx,
    f: &GroupFlush,
    first_event_id: &str,
    now_ms: i64,
    touched: &mut TouchedLanes,
) -> Result<(), StoreError> {
    let item_row = |item, ref_item_id, dead_reason| -> Result<ItemRow<'_>, StoreError> {
        Ok(ItemRow {
            event_id: first_event_id,
            item,
            args: to_json("outbox args", &item.args)?,
            ref_item_id,
            created_at_ms: now_ms,
            dead_reason,
        })
    };
    let mut post_id = None;
    if let Some(post) = &f.post {
        let id = tx.insert_item(&item_row(post, None, None)?).await?;
        touched.insert(post.lane.clone(), id);
        post_id = Some(id);
    }
    let current = match post_id {
        Some(id) => Some((id, None)),
        None => tx.group_post(f.group_id).await?,
    };
    for item in &f.updates {
        let Some((ref_id, dead)) = &current else {
            return Err(StoreError::Other(format!(
                "group {} has no card to update",
                f.group_id
            )));
        };
        let dead_reason = dead.as_ref().map(|r| ref_dead_reason(*ref_id, r));
        let born_dead = dead_reason.is_some();
        let id = tx
            .insert_item(&item_row(item, Some(*ref_id), dead_reason)?)
            .await?;
        if !born_dead {
            let head = touched.entry(item.lane.clone()).or_insert(id);
            *head = (*head).min(id);
        }
    }
    tx.finish_flush(f, post_id, now_ms).await
}
