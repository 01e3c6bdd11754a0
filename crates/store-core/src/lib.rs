//! Durable state for Sluice behind one trait of domain verbs, [`Store`], and its one implementation over any SQL
//! backend, [`SqlStore`]. The backends (`sluice-store-sqlite`, `sluice-store-postgres`) and the URL that chooses
//! between them (`sluice_store::open`) live in their own crates.
//!
//! The HTTP layer calls [`Store::ingest`] to make an event durable (with its routing fate and the Slack calls it
//! produced); the dispatcher claims *lanes* (one Slack channel in one workspace), reads their pending outbox items in
//! order and marks each one sent, retried or dead. Two backends implement the trait, each with its own migrations:
//! SQLite (default; one process, WAL, group commit) and PostgreSQL (several replicas, `FOR UPDATE SKIP LOCKED`).
//!
//! Alert handling keeps its state here too: silences ([`Store::create_silence`]; matching them is the caller's job),
//! the one decision per alert that Slack buttons record ([`Store::record_alert_action`]), where an event's cards
//! were posted ([`Store::message_of`]) and which event a card is ([`Store::event_of_message`]).
//!
//! Approvals (issue 11) have their verbs in [`ApprovalStore`], which every `Store` is; the operator console's
//! read-only views and its sessions are [`ConsoleStore`]'s.
//!
//! No SQL type crosses the trait: rows come back as the plain structs in this module, and every time is an `i64` of
//! milliseconds since the Unix epoch passed in by the caller, so tests control the clock.

mod action_run;
mod alerting;
mod approval;
mod audit;
mod chatops;
mod console;
mod coord;
pub mod db;
mod error;
mod group;
mod grouping;
mod incident;
mod ingest;
pub mod migrate;
mod sql;
mod sql_store;

pub use action_run::ActionRunStore;
pub use approval::*;
pub use chatops::ChatopsStore;
pub use console::ConsoleStore;
pub use error::StoreError;
pub use incident::IncidentStore;
/// The types that cross the trait live in `sluice-model`, beneath the store and the domain, with the alert lifecycle
/// ([`alert::decide`]) that ingest calls.
pub use sluice_model::*;
pub use sql_store::SqlStore;

/// The storage verbs Sluice needs. Implemented by the SQLite and PostgreSQL backends; obtain one with `sluice_store::open`.
#[async_trait::async_trait]
pub trait Store:
    ApprovalStore + ActionRunStore + ConsoleStore + ChatopsStore + IncidentStore + Send + Sync + 'static
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Cheap round trip to the database, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Makes a batch of events durable, all or nothing. Returns only after the transaction committed.
    /// Dedup (see [`Dedup`]) and inhibition (see [`Inhibit`]) are applied atomically here, in batch order.
    async fn ingest(&self, batch: Vec<NewEvent>) -> Result<Ingested, StoreError>;

    /// The stored event with its fate and the state of every Slack call it produced.
    async fn event(&self, id: &str) -> Result<Option<EventStatus>, StoreError>;

    /// Leases up to `max` lanes whose head item is due (`next_attempt_at <= now`, not waiting on an unsent ref) and
    /// that nobody holds (or whose lease expired). Lanes `owner` already holds are *not* returned again: keep them
    /// with [`Store::renew_leases`]. `owner` should be unique per process run (e.g. host + random suffix).
    async fn claim_lanes(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Extends the leases `owner` still holds among `lanes`; returns those lanes (a lane missing from the answer was
    /// lost, e.g. the lease expired and another owner took it).
    async fn renew_leases(
        &self,
        owner: &str,
        lanes: &[String],
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Gives a lane back (no-op if `owner` does not hold it).
    async fn release_lane(&self, owner: &str, lane: &str) -> Result<(), StoreError>;

    /// The owners that hold a lane lease at `now_ms`.
    async fn lease_holders(&self, now_ms: i64) -> Result<Vec<String>, StoreError>;

    /// Ends `owner`'s leases now, keeping it as their last holder. A dispatcher calls it at start for the leases of
    /// its own host's earlier runs that are gone (a crash, a SIGKILL), so it need not wait for them to run out.
    /// Returns how many ended.
    async fn expire_leases(&self, owner: &str, now_ms: i64) -> Result<u64, StoreError>;

    /// Records that a non-idempotent call of `item_id` (a post) is about to start (the first such time is kept). Until
    /// the outcome is recorded, the item reads back with `sending_at_ms`, which tells the next attempt — after a crash, a timeout or a lost
    /// lease — to look in Slack for the post before sending it again.
    async fn mark_sending(&self, item_id: i64, now_ms: i64) -> Result<(), StoreError>;

    /// The channel id Slack gave the lane's latest sent item (lanes are often named by channel name, while Slack's
    /// history reads need the id), if one is still stored.
    async fn lane_channel_id(&self, lane: &str) -> Result<Option<String>, StoreError>;

    /// Pending items of a lane in send order (id order), at most `limit`.
    async fn lane_items(&self, lane: &str, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;

    /// Records the successful Slack call; `channel` + `ts` are kept so later updates can reference the message.
    /// [`StoreError::Conflict`] if the item is unknown or not pending.
    async fn mark_sent(
        &self,
        item_id: i64,
        channel: &str,
        ts: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Schedules another attempt: attempts + 1, `next_attempt_at = next_attempt_at_ms`, remembers `error`.
    async fn mark_retry(
        &self,
        item_id: i64,
        next_attempt_at_ms: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Dead-letters the item with `reason`. Pending items that reference it (updates to a post that will never
    /// exist) die with it, with a reason that says so.
    async fn mark_dead(&self, item_id: i64, reason: &str, now_ms: i64) -> Result<(), StoreError>;

    /// Dead letters, most recent first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// Puts dead items back to pending with attempts reset and due at `now_ms`; returns how many were replayed.
    /// Replaying an update whose referenced post is dead replays that post too (the update cannot go out without it).
    async fn replay(&self, which: Replay, now_ms: i64) -> Result<u64, StoreError>;

    /// Numbers for `/metrics` and the console.
    async fn outbox_stats(&self, now_ms: i64) -> Result<OutboxStats, StoreError>;

    /// Retention: removes sent items older than `older_than_ms` that no open alert or pending update references,
    /// alerts closed before it, and events received before it that have no remaining outbox item and are not the
    /// first event of an open alert. Dead and pending items are never pruned.
    ///
    /// It also removes the short-lived coordination rows, taking `older_than_ms` as a (conservative) clock: once-keys
    /// that expired before it, rate rows idle since more than an hour before it (a rate row whose `tat` and block
    /// are in the past behaves exactly like no row), and leader rows whose lease ended before it. Audit rows are
    /// never pruned.
    ///
    /// Silences that ended (or were expired) before `older_than_ms` go too; alert actions go only with their event.
    /// Returns the number of rows removed.
    async fn prune(&self, older_than_ms: i64) -> Result<u64, StoreError>;

    /// Shared rate limiting (GCRA), so all replicas together stay under one Slack limit per `key` (e.g.
    /// `"post:T1:C1"` or `"method:T1:conversations.history"`): allows about one call per `interval_ms` with bursts
    /// of up to `burst` (at least 1).
    ///
    /// One atomic statement per call on a row per key (`tat`, `blocked_until`): allowed iff
    /// `now >= blocked_until` and `tat - now <= (burst - 1) * interval`, and then `tat = max(tat, now) + interval`.
    /// A refusal consumes nothing and says when to come back. Over any window, at most
    /// `burst + elapsed / interval` calls are allowed in total, whichever replicas make them.
    async fn take_rate(
        &self,
        key: &str,
        interval_ms: i64,
        burst: u32,
        now_ms: i64,
    ) -> Result<RateDecision, StoreError>;

    /// After a 429 (or a `Retry-After`): nothing is allowed for `key` before `until_ms`. Never shortens an existing
    /// block; other keys are unaffected.
    async fn block_rate(&self, key: &str, until_ms: i64) -> Result<(), StoreError>;

    /// Leader election for work that must run once across replicas (retention, schedules): `true` if `owner` now
    /// holds `role` until `now_ms + ttl_ms` — it already held it (renewed), or took it because nobody held it or
    /// the previous lease expired. `false` while another owner's lease runs. Call it again well within `ttl_ms` to
    /// keep the role; a `false` means stop the work.
    ///
    /// This is a lease row, not a PostgreSQL advisory lock: it behaves the same on SQLite and PostgreSQL, and it
    /// survives connection-pool churn (a session advisory lock is tied to one pooled connection and silently
    /// vanishes when that connection is recycled or killed, and a leader would not notice).
    async fn try_lead(
        &self,
        role: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Gives up `role` if `owner` holds it, so another replica can lead at once (no-op otherwise).
    async fn resign(&self, role: &str, owner: &str) -> Result<(), StoreError>;

    /// Exactly-once keys (Slack retries and redeliveries, API idempotency keys): `true` the first time `key` is
    /// seen — or the first time after its previous record expired — and the key is then remembered until
    /// `now_ms + ttl_ms`; `false` while it is remembered. Atomic across concurrent callers and replicas: of many
    /// simultaneous calls with one key exactly one gets `true`.
    async fn first_time(&self, key: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError>;

    /// Appends a human action to the tamper-evident audit log (see [`AuditRecord`] for the hash chain). Appends are
    /// serialised in the database, so concurrent replicas extend one chain and never fork it.
    async fn record_audit(&self, a: NewAudit) -> Result<AuditRecord, StoreError>;

    /// Audit records with `id > since_id`, oldest first, at most `limit` (page with the last id seen).
    async fn audit(&self, since_id: i64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Recomputes the whole chain: `None` if intact, else the first id where it breaks (an edited row, the row after
    /// a deleted one, or `last id + 1` when the newest rows were deleted).
    async fn verify_audit(&self) -> Result<Option<i64>, StoreError>;

    /// Stores a new silence, id `"sil_" + UUID v7`, and bumps [`Store::silences_version`] in the same transaction.
    /// Refused with [`StoreError::Other`] (a message for the user) when it has no matcher — it would mute
    /// everything — or does not end after it starts; regular expressions are not checked here.
    async fn create_silence(&self, s: NewSilence, now_ms: i64) -> Result<Silence, StoreError>;

    /// With `include_expired`, every stored silence; otherwise those not over at `now_ms`: active
    /// (`starts_at <= now < ends_at`, not expired) and pending (starting later). In creation order
    /// (`created_at_ms`, then id: silences created in the same millisecond come in no particular order).
    async fn silences(
        &self,
        include_expired: bool,
        now_ms: i64,
    ) -> Result<Vec<Silence>, StoreError>;

    /// Ends a silence now (active or pending): `true` if it did, `false` if it is unknown or already over
    /// (expired before, or past its end). Bumps [`Store::silences_version`] when it returns `true`.
    async fn expire_silence(&self, id: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// A number that changes on every `create_silence` and successful `expire_silence` (on any replica), so a cache
    /// of [`Store::silences`] knows when to reload with one cheap read. Time passing does not change it: the cache
    /// asks [`Silence::state`] itself.
    async fn silences_version(&self) -> Result<i64, StoreError>;

    /// Records a decision (`"ack"`, `"resolve"`) on the alert `event_id` belongs to: the event itself, or, for an
    /// event merged into or resolving an alert, that alert's first event — so every card and every duplicate
    /// shares one decision. The first call per (alert, action) wins atomically across replicas
    /// ([`AckOutcome::Recorded`]); later calls change nothing and learn who won ([`AckOutcome::AlreadyBy`]).
    /// [`StoreError::Conflict`] if the event is unknown (e.g. pruned).
    async fn record_alert_action(
        &self,
        event_id: &str,
        action: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<AckOutcome, StoreError>;

    /// The decisions on the alert `event_id` belongs to (see [`Store::record_alert_action`]) as
    /// `(action, actor, at_ms)`, oldest first; empty for an unknown event.
    async fn alert_actions(&self, event_id: &str)
        -> Result<Vec<(String, String, i64)>, StoreError>;

    /// Where the cards of `event_id` are, so an action can update them: channel + ts of every sent
    /// `chat.postMessage` item (not threaded replies or other `ref_post` items) of the event, or — for an event
    /// merged into or resolving an alert — of that alert's first event. In item order; empty if none was sent.
    async fn message_of(&self, event_id: &str) -> Result<Vec<RefSent>, StoreError>;

    /// The reverse of [`Store::message_of`]: the event whose card is the message `ts` in `channel` (the channel id
    /// Slack answered the post with), so that a reaction on a card can act on its alert. Only a sent
    /// `chat.postMessage` item that is not a `ref_post` item counts (a threaded reply or an update is no card).
    /// `None` if no card of ours is there.
    async fn event_of_message(
        &self,
        channel: &str,
        ts: &str,
    ) -> Result<Option<EventId>, StoreError>;

    /// The alert that outbox item `item_id` refers to (through its `ref_post` link to the alert's post), as it
    /// stands now; `None` if the item is unknown, not linked, or the alert was pruned. The dispatcher calls it just
    /// before sending an alert's first card, a card refresh or a thread reply so they show the current count,
    /// last-seen and state. The item is the alert's post (`alert_posts`) or refers to it.
    ///
    /// If `item_id` is the alert's pending refresh in its lane (see [`Dedup::refresh`]) it stops counting as
    /// pending in the same transaction: a duplicate that arrives after this read enqueues a new refresh, so no
    /// duplicate is left off the card; one that arrived before it is shown by this one.
    async fn alert_card(&self, item_id: i64) -> Result<Option<AlertCard>, StoreError>;

    /// Groups of alerts (noise control, see [`Dedup::groups`]) due for a flush at `now_ms`, earliest first, at most
    /// `limit`, each with its firing and resolved counts and up to `alerts` of its alerts (firing first, then the
    /// most recently seen). A group is due `group_wait` after it was created, `group_interval` after its last flush
    /// once something changed, and at the `next_due_ms` its last flush asked for.
    async fn due_groups(
        &self,
        now_ms: i64,
        limit: usize,
        alerts: usize,
    ) -> Result<Vec<GroupState>, StoreError>;

    /// Commits what a flush decided, in one transaction: the new card (which becomes the group's post), the
    /// updates linked to the group's post (born dead if it is dead), and the group's new state. A change that came
    /// in after [`Store::due_groups`] read the group (its `version` moved on) is not lost: the group stays due at
    /// its `group_interval`. [`StoreError::Conflict`] if the group is gone.
    async fn flush_group(&self, flush: GroupFlush, now_ms: i64) -> Result<(), StoreError>;

    /// How many events joined route `rule`'s groups after `since_ms` (counted per second, so the answer covers
    /// whole seconds): the rate the storm guard compares with its limit.
    async fn route_rate(&self, rule: &str, since_ms: i64) -> Result<u64, StoreError>;

    /// The alerts in route `rule`'s groups last seen at or after `since_ms`, with their first event's body and
    /// count, for a storm digest.
    async fn route_alerts(&self, rule: &str, since_ms: i64) -> Result<Vec<RouteAlert>, StoreError>;

    /// Makes the groups created by `first_event_id` due now, as changed (an action was taken on their card, which
    /// the flusher re-renders). Returns how many groups that was: 0 when the event started no group.
    async fn touch_groups(&self, first_event_id: &str, now_ms: i64) -> Result<u64, StoreError>;

    /// When a storm on route `rule` ends: the route's groups that never had a card and hold changes not yet
    /// flushed count as reported by the final digest (flushed now as digested), so the end of a storm does not
    /// post the cards the digests stood for; groups that had a card before the storm and were digested during it
    /// become due now, so their cards are updated. Returns how many groups were absorbed.
    async fn absorb_groups(&self, rule: &str, now_ms: i64) -> Result<u64, StoreError>;
}

/// A boxed `Send` future: what the backends return where lifetimes must be concrete.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The URL without its password, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// The wall clock in ms, only for records such as when a migration was applied; everything else takes the
/// caller's clock.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
