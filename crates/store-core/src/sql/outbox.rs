//! Events, the outbox and its lanes.

use super::Stmt;

/// Binds: 1 id.
pub(crate) static EVENT: Stmt = Stmt::new(
    "SELECT id, received_at_ms, source, CAST(body AS TEXT) AS body, CAST(fate AS TEXT) AS fate FROM events WHERE id = ?1",
);

/// The fate of an event. Binds: 1 id.
pub(crate) static EVENT_FATE: Stmt =
    Stmt::new("SELECT CAST(fate AS TEXT) FROM events WHERE id = ?1");

/// Binds: 1 id, 2 received at, 3 source, 4 body (JSON), 5 fate (JSON).
pub(crate) static INSERT_EVENT: Stmt = Stmt::new(
    "INSERT INTO events (id, received_at_ms, source, body, fate) VALUES (?1, ?2, ?3, ?4, ?5)",
);

/// Followed by [`super::values_list`] rows of 5: id, received at, source, body (JSON), fate (JSON).
pub(crate) const INSERT_EVENTS: &str =
    "INSERT INTO events (id, received_at_ms, source, body, fate) VALUES ";

/// Followed by [`super::values_list`] rows of 9 and [`INSERT_ITEMS_END`].
pub(crate) const INSERT_ITEMS: &str =
    "INSERT INTO outbox (event_id, lane, team, channel, method, args, ref_post, created_at_ms, next_attempt_at_ms) VALUES ";
pub(crate) const INSERT_ITEMS_END: &str = " RETURNING id, lane, event_id, ref_post";

/// Binds: 1 event id, 2 lane, 3 team, 4 channel, 5 method, 6 args (JSON), 7 ref_post, 8 ref item id, 9 state,
/// 10 created at (also first due), 11 dead reason, 12 dead at.
pub(crate) static INSERT_ITEM: Stmt = Stmt::new(
    "INSERT INTO outbox (event_id, lane, team, channel, method, args, ref_post, ref_item_id, state,
                         created_at_ms, next_attempt_at_ms, dead_reason, dead_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12) RETURNING id",
);

/// The deliveries of an event. Binds: 1 event id.
pub(crate) static EVENT_ITEMS: Stmt = Stmt::new(
    "SELECT id, channel, method, state, attempts, last_error, sent_channel, sent_ts, sent_at_ms,
            dead_reason, dead_at_ms
     FROM outbox WHERE event_id = ?1 ORDER BY id",
);

/// Binds: 1 item id.
pub(crate) static ITEM_LANE: Stmt = Stmt::new("SELECT lane FROM outbox WHERE id = ?1");

/// Binds: 1 item id.
pub(crate) static ITEM_STATE: Stmt = Stmt::new("SELECT state FROM outbox WHERE id = ?1");

/// Binds: 1 lane, 2 limit.
pub(crate) static LANE_ITEMS: Stmt = Stmt::new(
    "SELECT o.id, o.event_id, o.lane, o.team, o.channel, o.method, CAST(o.args AS TEXT) AS args, o.attempts,
            o.created_at_ms, o.next_attempt_at_ms, o.sending_at_ms, o.ref_item_id, r.state AS ref_state,
            r.sent_channel AS ref_channel, r.sent_ts AS ref_ts
     FROM outbox o LEFT JOIN outbox r ON r.id = o.ref_item_id
     WHERE o.lane = ?1 AND o.state = 'pending' ORDER BY o.id LIMIT ?2",
);

/// Keeps the first attempt's time: an earlier attempt's post is looked for from then on. Binds: 1 now, 2 item id.
pub(crate) static MARK_SENDING: Stmt = Stmt::new(
    "UPDATE outbox SET sending_at_ms = COALESCE(sending_at_ms, ?1) WHERE id = ?2 AND state = 'pending'",
);

/// The channel id Slack gave the lane's latest sent item, if one is still stored. Binds: 1 lane.
pub(crate) static LANE_CHANNEL_ID: Stmt = Stmt::new(
    "SELECT sent_channel FROM outbox
     WHERE lane = ?1 AND state = 'sent' AND sent_channel IS NOT NULL AND sent_channel <> ''
     ORDER BY id DESC LIMIT 1",
);

/// Binds: 1 channel, 2 ts, 3 now, 4 item id.
pub(crate) static MARK_SENT: Stmt = Stmt::new(
    "UPDATE outbox SET state = 'sent', sent_channel = ?1, sent_ts = ?2, sent_at_ms = ?3
     WHERE id = ?4 AND state = 'pending' RETURNING lane",
);

/// Binds: 1 next attempt at, 2 error, 3 item id.
pub(crate) static MARK_RETRY: Stmt = Stmt::new(
    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_ms = ?1, last_error = ?2
     WHERE id = ?3 AND state = 'pending'",
);

/// Binds: 1 reason, 2 now, 3 item id.
pub(crate) static MARK_DEAD: Stmt = Stmt::new(
    "UPDATE outbox SET state = 'dead', dead_reason = ?1, dead_at_ms = ?2
     WHERE id = ?3 AND state = 'pending' RETURNING lane",
);

/// The pending items that reference a post that died. Binds: 1 reason, 2 now, 3 post item id.
pub(crate) static MARK_FOLLOWERS_DEAD: Stmt = Stmt::new(
    "UPDATE outbox SET state = 'dead', dead_reason = ?1, dead_at_ms = ?2
     WHERE ref_item_id = ?3 AND state = 'pending' RETURNING lane",
);

/// Binds: 1 limit.
pub(crate) static DEAD_LETTERS: Stmt = Stmt::new(
    "SELECT id, event_id, channel, method, dead_reason, attempts, dead_at_ms FROM outbox
     WHERE state = 'dead' ORDER BY dead_at_ms DESC, id DESC LIMIT ?1",
);

pub(crate) static ALL_DEAD: Stmt = Stmt::new("SELECT id, lane FROM outbox WHERE state = 'dead'");

/// An item to replay and the post it references. Binds: 1 item id.
pub(crate) static REPLAY_CANDIDATE: Stmt = Stmt::new(
    "SELECT o.lane, o.state, o.ref_item_id, r.state AS ref_state FROM outbox o
     LEFT JOIN outbox r ON r.id = o.ref_item_id WHERE o.id = ?1",
);

/// Followed by an [`super::in_list`] of item ids from `?2` and `)`. Binds: 1 now.
pub(crate) const REPLAY: &str =
    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at_ms = ?1,
        dead_reason = NULL, dead_at_ms = NULL
 WHERE state = 'dead' AND id IN (";

/// The oldest pending item is always some lane's head (ids grow with time within a lane). Binds: 1 now.
pub(crate) static STATS: Stmt = Stmt::new(
    "SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending') AS pending,
            (SELECT MIN(h.created_at_ms) FROM lanes l JOIN outbox h ON h.id = l.head_id) AS oldest,
            (SELECT COUNT(*) FROM outbox WHERE state = 'dead') AS dead,
            (SELECT COUNT(*) FROM lanes WHERE owner IS NOT NULL AND lease_until_ms > ?1) AS leased",
);

/// Sets the heads of lanes that gained pending items; a lane that has a head keeps it (every new item has a larger
/// id). Followed by [`super::values_list`] rows of 2 (lane, smallest new item id) and [`SET_LANE_HEADS_END`].
pub(crate) const SET_LANE_HEADS: &str = "INSERT INTO lanes (lane, head_id) VALUES ";
pub(crate) const SET_LANE_HEADS_END: &str =
    " ON CONFLICT (lane) DO UPDATE SET head_id = COALESCE(lanes.head_id, excluded.head_id)";

/// Recomputes a lane's head after items left (or re-entered) the pending state. Binds: 1 lane.
pub(crate) static REFRESH_LANE: Stmt = Stmt::new(
    "INSERT INTO lanes (lane, head_id)
     VALUES (?1, (SELECT MIN(id) FROM outbox WHERE lane = ?1 AND state = 'pending'))
     ON CONFLICT (lane) DO UPDATE SET head_id = excluded.head_id",
);

/// The cards of an event: its sent posts that are not replies or updates. Binds: 1 event id.
pub(crate) static MESSAGES_OF: Stmt = Stmt::new(
    "SELECT sent_channel, sent_ts FROM outbox
     WHERE event_id = ?1 AND method = 'chat.postMessage' AND NOT ref_post AND state = 'sent'
     ORDER BY id",
);

/// The event whose card is a message. Binds: 1 channel, 2 ts.
pub(crate) static EVENT_OF_MESSAGE: Stmt = Stmt::new(
    "SELECT event_id FROM outbox
     WHERE sent_channel = ?1 AND sent_ts = ?2 AND state = 'sent' AND method = 'chat.postMessage'
           AND NOT ref_post
     ORDER BY id LIMIT 1",
);
