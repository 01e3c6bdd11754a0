//! ChatOps as the store keeps it: its verbs ([`ChatopsStore`]; the types are `sluice-model`'s). Each scheduled
//! minute is claimed once across replicas (a unique row), and the reads `status`, `ack` and scheduled reports need.

use crate::{NewOutboxItem, OpenAlert, PeriodStats, RecentEvent, StoreError};

/// The ChatOps verbs. Every [`crate::Store`] has them.
#[async_trait::async_trait]
pub trait ChatopsStore: Send + Sync {
    /// Claims `(schedule, due_ms)` with `outcome` (`"run"` or `"skipped"`) and enqueues `post` (the report) in the
    /// same transaction, so a minute is claimed if and only if its report is in the outbox. `true` for exactly one
    /// caller, however many replicas try at once; `false` (nothing written) when it was claimed before.
    async fn claim_schedule_run(
        &self,
        schedule: &str,
        due_ms: i64,
        outcome: &str,
        owner: &str,
        now_ms: i64,
        post: Option<NewOutboxItem>,
    ) -> Result<bool, StoreError>;

    /// The latest minute claimed for `schedule`, `None` if it never ran.
    async fn last_schedule_run(&self, schedule: &str) -> Result<Option<i64>, StoreError>;

    /// Open alerts with their first event, latest seen first, at most `limit`.
    async fn open_alerts(&self, limit: usize) -> Result<Vec<OpenAlert>, StoreError>;

    /// The open alert whose dedup key, alert id or first event id is `needle`.
    async fn find_open_alert(&self, needle: &str) -> Result<Option<OpenAlert>, StoreError>;

    /// Events from sources received since `since_ms`, latest first, at most `limit`.
    async fn events_since(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<RecentEvent>, StoreError>;

    /// Sluice's own statistics for `[from_ms, to_ms)`.
    async fn period_stats(&self, from_ms: i64, to_ms: i64) -> Result<PeriodStats, StoreError>;
}
