//! The plain data types that cross the [`crate::Store`] trait: what goes in ([`NewEvent`]) and what comes out
//! ([`EventStatus`], [`OutboxItem`], [`DeadLetter`], …). No SQL type appears here.

use serde::{Deserialize, Serialize};

/// Caller-generated event id (a UUID v7 string).
pub type EventId = String;

/// How a SQLite database syncs on commit. PostgreSQL ignores it (its durability is the server's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged event survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash, may lose the last commits on power loss; faster.
    Normal,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub durability: Durability,
    /// Pool size (readers for SQLite; the whole pool for PostgreSQL).
    pub max_connections: u32,
    /// Apply pending migrations at open. Without it a schema behind or ahead of the binary is refused.
    pub migrate: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Full,
            max_connections: 8,
            migrate: true,
        }
    }
}

/// What `sluice migrate` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    pub backend: &'static str,
    /// Schema version before.
    pub from: i64,
    /// Schema version after (the binary's).
    pub to: i64,
    /// Names of the migrations applied, in order (empty when already up to date).
    pub applied: Vec<String>,
}

/// An event to make durable, with the routing decision already taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub id: EventId,
    pub received_at_ms: i64,
    pub source: String,
    /// The normalised event.
    pub body: serde_json::Value,
    pub fate: Fate,
    /// The Slack calls it produced (replaced by `dedup.on_open` when it merges into or resolves an open alert).
    pub outbox: Vec<NewOutboxItem>,
    pub dedup: Option<Dedup>,
}

/// Deduplication request, applied atomically inside `ingest`:
/// - no open alert with `key` (or its `last_seen` is more than `window_ms` before this event) and `!resolves`:
///   the event opens a new alert (its first item per lane is remembered as the alert's post); stored as given.
/// - open alert within the window and `!resolves`: fate becomes `Merged { into, count }`, `on_open` is enqueued.
/// - open alert and `resolves`: fate becomes `Resolved { into }`, the alert closes, `on_open` is enqueued.
/// - no open alert and `resolves`: stored as given.
///
/// Enqueued items with `ref_post` are linked to the alert's post in the same lane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dedup {
    pub key: String,
    pub window_ms: i64,
    /// The event reports the alert resolved.
    pub resolves: bool,
    /// Items to enqueue instead of the event's own outbox when it merges into / resolves an open alert.
    pub on_open: Vec<NewOutboxItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutboxItem {
    /// `"<team>:<channel>"`: items of one lane are sent strictly in order, one at a time.
    pub lane: String,
    pub team: String,
    pub channel: String,
    /// Slack Web API method, e.g. `chat.postMessage`.
    pub method: String,
    pub args: serde_json::Value,
    /// This call refers to the alert's original post in the same lane (e.g. `chat.update`, a threaded reply): it is
    /// sent only after that post was sent, and carries the post's channel + ts in [`OutboxItem::ref_sent`].
    pub ref_post: bool,
}

/// What happened to an event. Serialised tagged: `{"kind":"merged","into":"…","count":3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fate {
    Queued { rules: Vec<String> },
    Dropped { rule: String },
    Unrouted,
    Merged { into: EventId, count: u32 },
    Resolved { into: EventId },
}

/// A pending outbox item as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    pub event_id: Option<EventId>,
    pub lane: String,
    pub team: String,
    pub channel: String,
    pub method: String,
    pub args: serde_json::Value,
    pub attempts: u32,
    pub created_at_ms: i64,
    pub next_attempt_at_ms: i64,
    /// For an item linked to a post: the post's sent channel + ts, or `None` while it is not sent.
    pub ref_sent: Option<RefSent>,
    /// The item is linked to a post that is not sent yet: do not send it now.
    /// (`ref_post` items with no post in their lane have `ref_sent: None, ref_pending: false`.)
    pub ref_pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefSent {
    pub channel: String,
    pub ts: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventStatus {
    pub id: EventId,
    pub received_at_ms: i64,
    pub source: String,
    pub fate: Fate,
    pub body: serde_json::Value,
    /// Every outbox item this event enqueued, in id order.
    pub deliveries: Vec<DeliveryStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryStatus {
    pub item_id: i64,
    pub channel: String,
    pub method: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Sent {
        channel: String,
        ts: String,
        at_ms: i64,
    },
    Dead {
        reason: String,
        at_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub item_id: i64,
    pub event_id: Option<EventId>,
    pub channel: String,
    pub method: String,
    pub reason: String,
    pub attempts: u32,
    pub dead_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    Item(i64),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OutboxStats {
    pub pending: u64,
    pub oldest_pending_age_ms: Option<i64>,
    pub dead: u64,
    /// Lanes with an unexpired lease.
    pub lanes_leased: u64,
}

/// The answer of [`crate::Store::take_rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", content = "at_ms", rename_all = "snake_case")]
pub enum RateDecision {
    /// Go ahead: one allowance was consumed.
    Allowed,
    /// Nothing was consumed; the earliest time (ms) at which the key can allow a call again.
    RetryAt(i64),
}

/// A human action to append to the audit log (see [`crate::Store::record_audit`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAudit {
    pub at_ms: i64,
    /// Slack user id or API key name.
    pub actor: String,
    pub team: String,
    /// What was done, e.g. `"alert.ack"`.
    pub action: String,
    /// What it was done to: an event id or `"channel:ts"`.
    pub target: String,
    /// `"ok"`, `"refused: …"` or `"error: …"`.
    pub result: String,
    pub detail: serde_json::Value,
}

/// One entry of the hash-chained audit log.
///
/// `hash = hex(sha256(prev_hash ‖ canonical JSON of {id, at_ms, actor, team, action, target, result, detail}))`,
/// where canonical JSON has object keys sorted and no whitespace; the first entry's `prev_hash` is 64 zeros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3, … without gaps.
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub team: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}
