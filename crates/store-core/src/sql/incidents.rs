//! Incidents and their timelines.

use super::Stmt;

/// Binds: 1 id, 2 declare key, 3 kind, 4 title, 5 sev, 6 status, 7 channel name, 8 declarer, 9 roles (JSON text),
/// 10 origin (JSON text), 11 context (JSON text), 12 created at, 13 remind at. Returns nothing when the declare key
/// is already stored.
pub(crate) static DECLARE: Stmt = Stmt::new(
    "INSERT INTO incidents (id, declare_key, kind, title, sev, status, channel_name, declarer, roles, origin, context,
                            created_at_ms, remind_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
     ON CONFLICT (declare_key) DO NOTHING RETURNING id",
);

/// Binds: 1 declare key.
pub(crate) static BY_KEY: Stmt = Stmt::new("SELECT id FROM incidents WHERE declare_key = ?1");

/// An incident with its card's and announcement's sent places, with `$tail` after the FROM.
macro_rules! incident {
    ($tail:literal) => {
        concat!(
            "SELECT i.id, i.declare_key, i.kind, i.title, i.sev, i.status, i.channel_name, i.channel_id, i.declarer,
                    i.roles, i.origin, i.context, i.created_at_ms, i.resolved_at_ms, i.remind_at_ms, i.version,
                    i.card_item_id, c.state AS card_state, c.sent_channel AS card_channel, c.sent_ts AS card_ts,
                    i.announcement_item_id, a.state AS ann_state, a.sent_channel AS ann_channel,
                    a.sent_ts AS ann_ts
             FROM incidents i LEFT JOIN outbox c ON c.id = i.card_item_id
                              LEFT JOIN outbox a ON a.id = i.announcement_item_id ",
            $tail
        )
    };
}

/// Binds: 1 id.
pub(crate) static GET: Stmt = Stmt::new(incident!("WHERE i.id = ?1"));

/// The latest incident of a war room. Binds: 1 channel id.
pub(crate) static BY_CHANNEL: Stmt = Stmt::new(incident!(
    "WHERE i.channel_id = ?1 ORDER BY i.created_at_ms DESC LIMIT 1"
));

/// The optimistic commit: only on the version the decision was taken on. Binds: 1 status, 2 sev, 3 roles (JSON
/// text), 4 channel id, 5 context (JSON text), 6 resolved at, 7 remind at, 8 id, 9 version.
pub(crate) static COMMIT: Stmt = Stmt::new(
    "UPDATE incidents SET status = ?1, sev = ?2, roles = ?3, channel_id = ?4, context = ?5, resolved_at_ms = ?6,
                          remind_at_ms = ?7, version = version + 1
     WHERE id = ?8 AND version = ?9",
);

/// A resolved incident's key is set aside, so the same title may be declared again. Binds: 1 id.
pub(crate) static RETIRE_KEY: Stmt =
    Stmt::new("UPDATE incidents SET declare_key = declare_key || '#' || id WHERE id = ?1");

/// Binds: 1 card item id, 2 id.
pub(crate) static SET_CARD: Stmt =
    Stmt::new("UPDATE incidents SET card_item_id = ?1 WHERE id = ?2");

/// Binds: 1 announcement item id, 2 id.
pub(crate) static SET_ANNOUNCEMENT: Stmt =
    Stmt::new("UPDATE incidents SET announcement_item_id = ?1 WHERE id = ?2");

/// Binds: 1 incident id.
pub(crate) static NEXT_SEQ: Stmt =
    Stmt::new("SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_timeline WHERE incident_id = ?1");

/// Binds: 1 incident id, 2 seq, 3 at, 4 author, 5 kind, 6 text.
pub(crate) static ADD_LINE: Stmt = Stmt::new(
    "INSERT INTO incident_timeline (incident_id, seq, at_ms, author, kind, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
);

/// Binds: 1 incident id.
pub(crate) static TIMELINE: Stmt = Stmt::new(
    "SELECT seq, at_ms, author, kind, text FROM incident_timeline WHERE incident_id = ?1 ORDER BY seq",
);

/// Incidents whose timer is due: an open one's reminder, a resolved one's archive time. Binds: 1 now, 2 limit.
pub(crate) static DUE_REMINDERS: Stmt = Stmt::new(
    "SELECT id FROM incidents WHERE remind_at_ms IS NOT NULL AND remind_at_ms <= ?1
     ORDER BY remind_at_ms LIMIT ?2",
);

/// Incidents still without a war room whose lookup ended, or whose channel was created, before `?1` (a crash between Slack's
/// answer and its record in the incident): the call's method, state and sent channel. Binds: 1 before, 2 limit.
pub(crate) static STALLED: Stmt = Stmt::new(
    "SELECT i.id, o.method, o.state, o.sent_channel FROM incidents i JOIN outbox o ON o.event_id = i.id
     WHERE i.channel_id IS NULL AND i.status <> 'resolved'
       AND o.method IN ('conversations.create', 'http.request')
       AND ((o.state = 'sent' AND o.sent_at_ms < ?1)
            OR (o.state = 'dead' AND o.method = 'http.request' AND o.dead_at_ms < ?1))
       AND NOT EXISTS (SELECT 1 FROM outbox n WHERE n.event_id = i.id AND n.id > o.id)
     ORDER BY o.id LIMIT ?2",
);
