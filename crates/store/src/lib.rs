//! Durable state for Sluice behind one trait of domain verbs: [`Store`].
//!
//! The HTTP layer calls [`Store::ingest`] to make an event durable (with its routing fate and the Slack calls it
//! produced); the dispatcher claims *lanes* (one Slack channel in one workspace), reads their pending outbox items in
//! order and marks each one sent, retried or dead. Two backends implement the trait, each with its own migrations:
//! SQLite (default; one process, WAL, group commit) and PostgreSQL (several replicas, `FOR UPDATE SKIP LOCKED`).
//! The backend is chosen once, from the URL scheme, by [`open`].
//!
//! No SQL type crosses the trait: rows come back as the plain structs in this module, and every time is an `i64` of
//! milliseconds since the Unix epoch passed in by the caller, so tests control the clock.

mod error;
mod group;
mod ingest;
mod model;
mod postgres;
mod sqlite;

use std::sync::Arc;

pub use error::StoreError;
pub use model::*;

/// The storage verbs Sluice needs. Implemented by the SQLite and PostgreSQL backends; obtain one with [`open`].
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Cheap round trip to the database, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Makes a batch of events durable, all or nothing. Returns only after the transaction committed.
    /// Dedup (see [`Dedup`]) is applied atomically here, in batch order.
    async fn ingest(&self, batch: Vec<NewEvent>) -> Result<(), StoreError>;

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
    /// first event of an open alert. Dead and pending items are never pruned. Returns the number of rows removed.
    async fn prune(&self, older_than_ms: i64) -> Result<u64, StoreError>;
}

/// Which database a URL names.
enum Backend {
    Sqlite,
    Postgres,
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Other(format!(
            "unsupported database URL {}: use sqlite://path.db, sqlite::memory: or postgres://user@host/db",
            redact_url(url)
        )))
    }
}

/// Opens the store named by `url` (`sqlite://path.db`, `sqlite::memory:`, `postgres://…`).
///
/// With `opts.migrate` the schema is brought up to date first; without it a schema that is behind or ahead of this
/// binary is refused with [`StoreError::SchemaMismatch`].
pub async fn open(url: &str, opts: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    // Boxed as `Send` here, where lifetimes are concrete: otherwise callers that `tokio::spawn` a task calling `open`
    // hit rustc's "Executor is not general enough" limitation on sqlx futures.
    let fut: BoxFuture<'_, Result<Arc<dyn Store>, StoreError>> = match backend_of(url)? {
        Backend::Sqlite => Box::pin(async move {
            Ok(Arc::new(sqlite::SqliteStore::open(url, opts).await?) as Arc<dyn Store>)
        }),
        Backend::Postgres => Box::pin(async move {
            Ok(Arc::new(postgres::PgStore::open(url, opts).await?) as Arc<dyn Store>)
        }),
    };
    fut.await
}

pub(crate) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Applies every migration this binary knows that the database lacks (`sluice migrate`).
pub async fn migrate(url: &str) -> Result<MigrationReport, StoreError> {
    let fut: BoxFuture<'_, Result<MigrationReport, StoreError>> = match backend_of(url)? {
        Backend::Sqlite => Box::pin(sqlite::migrate_url(url)),
        Backend::Postgres => Box::pin(postgres::migrate_url(url)),
    };
    fut.await
}

/// The URL without its password, for error messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
