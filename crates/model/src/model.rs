//! The plain data types that cross the store's trait (`sluice_store::Store`): what goes in ([`NewEvent`]) and what comes out
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

/// An event's body as the store keeps it: JSON text, encoded once by whoever made the event. Ingest encodes the
/// parsed event straight to text; a tree of `serde_json::Value` per event in between (built, walked, encoded and
/// freed) was a tenth of the server's CPU in a storm of new alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventBody(String);

impl EventBody {
    /// `value` (an event, or any other body: a digest, a message) encoded as JSON.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<EventBody, serde_json::Error> {
        serde_json::to_string(value).map(EventBody)
    }

    /// The body of a JSON value. Encoding a `Value` cannot fail: its map keys are strings.
    pub fn of(value: &serde_json::Value) -> EventBody {
        EventBody(value.to_string())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event to make durable, with the routing decision already taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub id: EventId,
    pub received_at_ms: i64,
    pub source: String,
    /// The normalised event, as stored.
    pub body: EventBody,
    pub fate: Fate,
    /// The Slack calls it produced (replaced by `dedup.on_open` when it merges into or resolves an open alert).
    pub outbox: Vec<NewOutboxItem>,
    pub dedup: Option<Dedup>,
    /// What inhibition rules make of the event (nothing, for most events).
    #[serde(default)]
    pub inhibit: Inhibit,
    /// The event acts on an alert it is not a duplicate of (a decision taken in Slack on the alert's card): see
    /// [`FollowUp`]. Ignored when `dedup` is set.
    #[serde(default)]
    pub follow_up: Option<FollowUp>,
}

/// An event's inhibition keys, computed by the caller (matching rules is not the store's job) and applied inside
/// `ingest`, so every replica decides alike:
/// - `checks`: an event whose fate is `Queued` is stored `Suppressed { by: "inhibit:<rule>" }` (and posts nothing)
///   when a key it checks is held by an alert that is open, was last seen within that alert's dedup window, and is
///   not the event's own alert (same dedup key). An event that continues its own open alert (merges into it within
///   the window, or resolves it) is not muted: a card people already see keeps being updated, and its resolve
///   is never lost. A `both_sides` key is not muted by a holder whose key is `both_sides` too (Alertmanager).
/// - `provides`: when the event opens, merges into or reopens an alert, the alert holds these keys until it closes
///   or goes quiet for longer than its window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inhibit {
    #[serde(default)]
    pub provides: Vec<InhibitKey>,
    #[serde(default)]
    pub checks: Vec<InhibitKey>,
}

/// One inhibition key: an opaque string equal for a source and the targets it mutes, and the rule it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InhibitKey {
    pub rule: String,
    pub key: String,
    /// The event matches the rule's source and its target.
    #[serde(default)]
    pub both_sides: bool,
}

/// What `Store::ingest` decided that its caller could not know beforehand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ingested {
    /// `(event id, rule)` of each event of the batch an inhibition rule suppressed, in batch order.
    pub inhibited: Vec<(EventId, String)>,
}

/// Card refreshes for an alert, caused by an event that is not one of its duplicates — an acknowledgement, an
/// escalation, a silence from Slack — so the card is re-rendered from the alert as it stands (count, last seen,
/// decisions) instead of from one event. Applied atomically inside `ingest`, under the same rules as
/// [`Dedup::refresh`]: each item is linked to the alert's post in its lane (a lane where the alert has no post, or
/// only a dead one, gets nothing) and is left out while a refresh of that card is still waiting to be read. The
/// event's own `ref_post` items are linked to the alert's posts too. An unknown `alert_of` (e.g. pruned) enqueues
/// no refresh; the event is stored as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Any event of the alert: its first event, or one merged into or resolving it.
    pub alert_of: EventId,
    /// The card refreshes (`ref_post` items, typically living `chat.update` markers), at most one per lane.
    pub refresh: Vec<NewOutboxItem>,
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
    /// Card refreshes (`ref_post` items, typically `chat.update`), **coalesced**: enqueued when the event merges
    /// into, resolves or reopens an alert, but only in lanes where the alert has a post and no refresh of it is
    /// still waiting to be read. The dispatcher renders a refresh from `Store::alert_card` at send time,
    /// so one refresh shows every duplicate that arrived before it went out.
    #[serde(default)]
    pub refresh: Vec<NewOutboxItem>,
    /// With `reopen_window_ms > 0`: a firing event for an alert that was *closed* (resolved) at most that long ago
    /// reopens it instead of opening a new one: fate `Merged { into, count }`, `on_reopen` and `refresh` are
    /// enqueued (e.g. a thread reply on the original card). `0` keeps the old rule: a closed alert is over.
    #[serde(default)]
    pub reopen_window_ms: i64,
    #[serde(default)]
    pub on_reopen: Vec<NewOutboxItem>,
    /// Groups of alerts (noise control, see [`GroupJoin`]) the alert belongs to. For each, the alert joins the
    /// group (created on first use) whatever dedup decided, and the group is marked changed: it becomes due for a
    /// flush per its timings. A grouped delivery has no item in the event's outbox: the flusher posts the group.
    #[serde(default)]
    pub groups: Vec<GroupJoin>,
    /// When the source says it happened (the event's `occurred_at`): for a firing event, the start of the occurrence
    /// (Alertmanager's `startsAt`; the same start again is a re-send, see `alert::decide`), for a resolve its end.
    #[serde(default)]
    pub occurred_at_ms: Option<i64>,
}

/// An alert joining a group of its route on ingest ([`Dedup::groups`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupJoin {
    /// Unique per route, lane and group label values.
    pub key: String,
    /// The route (rule name) that grouped it.
    pub rule: String,
    pub lane: String,
    pub team: String,
    pub channel: String,
    pub template: String,
    /// The `group_by` labels and values, in order.
    pub labels: Vec<(String, String)>,
    pub wait_ms: i64,
    pub interval_ms: i64,
    pub repeat_ms: i64,
}

/// A group that is due for a flush (`Store::due_groups`): its row and the alerts it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupState {
    pub id: i64,
    pub key: String,
    pub rule: String,
    pub lane: String,
    pub team: String,
    pub channel: String,
    pub template: String,
    pub labels: Vec<(String, String)>,
    /// Bumped by every change; [`GroupFlush::version`] hands it back.
    pub version: i64,
    /// The event that created the group (its buttons and metadata carry it).
    pub first_event_id: EventId,
    pub created_at_ms: i64,
    /// The first change not yet flushed; `None` when the group is due only to repeat itself.
    pub changed_at_ms: Option<i64>,
    /// The last flush, `None` before the first.
    pub notified_at_ms: Option<i64>,
    /// How many alerts fired at the last flush (0 before the first).
    pub notified_firing: i64,
    /// The group's card (outbox item), if one was posted.
    pub post_item_id: Option<i64>,
    /// Set when the last flush only counted the group in a storm digest.
    pub digested_at_ms: Option<i64>,
    /// Events that joined the group, duplicates included.
    pub events: i64,
    pub firing: i64,
    pub resolved: i64,
    /// Up to the number asked for: firing first, then most recently seen.
    pub alerts: Vec<AlertCard>,
    pub wait_ms: i64,
    pub interval_ms: i64,
    pub repeat_ms: i64,
}

/// What a flush did with a group (`Store::flush_group`), committed in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFlush {
    pub group_id: i64,
    /// [`GroupState::version`] as read: if the group changed since, it stays due (at its `group_interval`).
    pub version: i64,
    /// A new card: becomes the group's post, which `updates` then refer to.
    pub post: Option<NewOutboxItem>,
    /// Linked to the group's post (`chat.update` of the card, thread replies). Born dead if the post is dead.
    pub updates: Vec<NewOutboxItem>,
    /// Firing alerts as the flush saw them.
    pub notified_firing: i64,
    /// When to flush again without a change (`repeat_interval`), `None` for not before a change.
    pub next_due_ms: Option<i64>,
    /// The flush only counted the group in a storm digest.
    pub digested: bool,
}

/// An alert of a route's groups, for storm digests (`Store::route_alerts`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteAlert {
    pub alert_id: i64,
    pub body: serde_json::Value,
    pub count: u32,
    pub last_seen_ms: i64,
}

/// Where an event's alert stands in a group (in [`EventStatus::groups`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRef {
    pub key: String,
    pub rule: String,
    pub channel: String,
    /// The group's card, once sent.
    pub ts: Option<String>,
    /// The last flush of the group; `None` while it waits for its first (`group_wait`).
    pub notified_at_ms: Option<i64>,
    /// Set when a storm digest, not the card, reported the group's last change.
    pub digested_at_ms: Option<i64>,
}

/// An alert as it stands now, for rendering its card at send time (see `Store::alert_card`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertCard {
    /// The event that opened the alert (its body is the card's content; its id is on the buttons).
    pub first_event_id: EventId,
    pub body: serde_json::Value,
    /// How many events the alert stands for (the first one included).
    pub count: u32,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// When it was resolved (or went quiet), `None` while it fires.
    pub closed_at_ms: Option<i64>,
    /// When the source says it started and ended (Alertmanager's `startsAt` of its first occurrence, `endsAt` of
    /// its resolve), when it said: a card's duration is the source's.
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    /// The body of the latest event that continued or resolved it (`None` while it is its first event alone): a
    /// deployment's card shows its final state.
    pub latest: Option<serde_json::Value>,
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
    Queued {
        rules: Vec<String>,
    },
    Dropped {
        rule: String,
    },
    Unrouted,
    Merged {
        into: EventId,
        count: u32,
    },
    Resolved {
        into: EventId,
    },
    /// Muted by a silence (`by: "silence:sil_…"`) or an inhibition rule (`by: "inhibit:<rule>"`). Stored like
    /// `Dropped`: only the event row is written; any outbox or dedup request the event carries is ignored, so a
    /// muted event never posts, merges into, bumps or resolves an alert.
    Suppressed {
        by: String,
    },
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
    /// When a call of this item last started without its outcome being recorded
    /// ([`crate::Store::mark_sending`]): it may have reached Slack, so look for it before sending again.
    pub sending_at_ms: Option<i64>,
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
    /// Acknowledge / resolve decisions taken on the alert this event belongs to (itself, or the alert it was merged
    /// into or resolved), oldest first. See `Store::record_alert_action`.
    pub actions: Vec<AlertAction>,
    /// The groups the event's alert belongs to, with their cards (noise control).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupRef>,
}

/// One recorded decision on an alert (the first click of its kind wins; see `Store::record_alert_action`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertAction {
    /// `"ack"` or `"resolve"`.
    pub action: String,
    /// Who took it (Slack user id).
    pub actor: String,
    pub at_ms: i64,
}

/// The answer of `Store::record_alert_action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AckOutcome {
    /// This call took the decision.
    Recorded,
    /// Somebody (possibly the same actor, clicking twice) took it first; nothing changed.
    AlreadyBy { actor: String, at_ms: i64 },
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

/// The answer of `Store::take_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", content = "at_ms", rename_all = "snake_case")]
pub enum RateDecision {
    /// Go ahead: one allowance was consumed.
    Allowed,
    /// Nothing was consumed; the earliest time (ms) at which the key can allow a call again.
    RetryAt(i64),
}

/// A human action to append to the audit log (see `Store::record_audit`).
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

/// A silence to create (Alertmanager-style): events matching *all* `matchers` are muted while
/// `starts_at_ms <= now < ends_at_ms`. Matching is the caller's job; the store only keeps silences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSilence {
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub author: String,
    pub comment: String,
}

/// One condition of a silence: `name op value`, e.g. `severity != "info"` or `service =~ "db-.*"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    /// A label name, or one of the event fields `service`, `environment`, `severity`, `source`, `kind`, `title`.
    pub name: String,
    pub op: MatchOp,
    /// A literal for `Eq`/`NotEq`, a regular expression for `Regex`/`NotRegex` (not checked by the store).
    pub value: String,
}

/// Serialised as Alertmanager writes it: `"="`, `"!="`, `"=~"`, `"!~"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatchOp {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    NotEq,
    #[serde(rename = "=~")]
    Regex,
    #[serde(rename = "!~")]
    NotRegex,
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// `"sil_"` + a UUID v7 in simple (hex, no dashes) form.
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub author: String,
    pub comment: String,
    pub created_at_ms: i64,
    /// Set when someone ended the silence early with `Store::expire_silence`.
    pub expired_at_ms: Option<i64>,
}

/// Where a silence stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Starts later.
    Pending,
    /// Mutes matching events now.
    Active,
    /// Ended, or expired early.
    Expired,
}

impl Silence {
    /// Its state at `now_ms`. A cache must ask this itself: silences start and end with time, without a write that
    /// would bump `Store::silences_version`.
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if self.expired_at_ms.is_some() || now_ms >= self.ends_at_ms {
            SilenceState::Expired
        } else if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// When it stopped muting (or will): the early expiry if any, else `ends_at_ms`.
    pub fn ended_at_ms(&self) -> i64 {
        self.expired_at_ms.unwrap_or(self.ends_at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows written before `Suppressed` existed must still read back, and the new variant must follow the same
    /// tagging, since fates are stored as JSON.
    #[test]
    fn fates_round_trip_through_their_stored_json() {
        let cases = [
            (
                r#"{"kind":"queued","rules":["a","b"]}"#,
                Fate::Queued {
                    rules: vec!["a".into(), "b".into()],
                },
            ),
            (
                r#"{"kind":"dropped","rule":"quiet"}"#,
                Fate::Dropped {
                    rule: "quiet".into(),
                },
            ),
            (r#"{"kind":"unrouted"}"#, Fate::Unrouted),
            (
                r#"{"kind":"merged","into":"e1","count":3}"#,
                Fate::Merged {
                    into: "e1".into(),
                    count: 3,
                },
            ),
            (
                r#"{"kind":"resolved","into":"e1"}"#,
                Fate::Resolved { into: "e1".into() },
            ),
            (
                r#"{"kind":"suppressed","by":"silence:sil_01"}"#,
                Fate::Suppressed {
                    by: "silence:sil_01".into(),
                },
            ),
        ];
        for (json, fate) in cases {
            let read: Fate = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(read, fate, "{json}");
            let written = serde_json::to_value(&fate).expect("serialise");
            assert_eq!(
                written,
                serde_json::from_str::<serde_json::Value>(json).expect("json"),
                "{json}"
            );
        }
    }

    #[test]
    fn match_ops_use_alertmanager_spelling() {
        for (op, text) in [
            (MatchOp::Eq, "\"=\""),
            (MatchOp::NotEq, "\"!=\""),
            (MatchOp::Regex, "\"=~\""),
            (MatchOp::NotRegex, "\"!~\""),
        ] {
            assert_eq!(serde_json::to_string(&op).expect("serialise"), text);
            assert_eq!(serde_json::from_str::<MatchOp>(text).expect("parse"), op);
        }
    }

    #[test]
    fn silence_state_follows_the_clock_and_early_expiry() {
        let s = Silence {
            id: "sil_x".into(),
            matchers: vec![],
            starts_at_ms: 100,
            ends_at_ms: 200,
            author: "a".into(),
            comment: "c".into(),
            created_at_ms: 50,
            expired_at_ms: None,
        };
        let table = [
            (99, SilenceState::Pending),
            (100, SilenceState::Active),
            (199, SilenceState::Active),
            (200, SilenceState::Expired),
        ];
        for (now, state) in table {
            assert_eq!(s.state(now), state, "at {now}");
        }
        assert_eq!(s.ended_at_ms(), 200);
        let early = Silence {
            expired_at_ms: Some(150),
            ..s
        };
        assert_eq!(early.state(120), SilenceState::Expired);
        assert_eq!(early.ended_at_ms(), 150);
    }
}
