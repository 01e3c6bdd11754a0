//! What the operator console reads ([`ConsoleStore`]; the types are `sluice-model`'s): read-only views for people
//! (nothing here is on the pipeline's path, and every verb is bounded), the console's sessions, and its login
//! throttle's failures (kept here so every replica, and the next process, counts the same guesses).

use crate::{
    ActionRunRecord, ApprovalSummary, AuditRecord, CallCount, ConsoleSession, EventSummary,
    HeldInhibition, IncidentRecord, LaneView, LeaderView, LoginFailures, RecentCounts, ScheduleRun,
    StoreError,
};

/// The console's read verbs. Every [`crate::Store`] has them.
#[async_trait::async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Events accepted and Slack calls sent at or after `since_ms`.
    async fn recent_counts(&self, since_ms: i64) -> Result<RecentCounts, StoreError>;

    /// Lanes with pending items or a lease in force at `now_ms`, by name, at most `limit`.
    async fn lanes(&self, now_ms: i64, limit: usize) -> Result<Vec<LaneView>, StoreError>;

    /// Every leader role and who holds (or last held) it.
    async fn leaders(&self, now_ms: i64) -> Result<Vec<LeaderView>, StoreError>;

    /// The latest events, newest first, from `source` only when given.
    async fn recent_events(
        &self,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError>;

    /// The latest `limit` audit records, newest first.
    async fn audit_tail(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Pending approvals, then the latest decided ones.
    async fn approvals(&self, limit: usize) -> Result<Vec<ApprovalSummary>, StoreError>;

    /// Opens a session known by `token_hash` (the token itself is never stored) for `operator` until
    /// `expires_at_ms`, forgetting sessions that expired by `now_ms`.
    async fn open_console_session(
        &self,
        token_hash: &str,
        operator: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// The session known by `token_hash`, if it is still open at `now_ms`.
    async fn console_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError>;

    /// Ends the session known by `token_hash`; whether there was one.
    async fn close_console_session(&self, token_hash: &str) -> Result<bool, StoreError>;

    /// Inhibition keys in force at `now_ms` (held by an open alert seen within the key's window), latest alert
    /// first, at most `limit`.
    async fn held_inhibitions(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<HeldInhibition>, StoreError>;

    /// Slack calls sent at or after `since_ms`, per channel and method, busiest first, at most `limit`.
    async fn calls_by_channel(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<CallCount>, StoreError>;

    /// Incidents, open ones first (newest first), then resolved ones (newest first), at most `limit`.
    async fn incidents(&self, limit: usize) -> Result<Vec<IncidentRecord>, StoreError>;

    /// The latest minutes claimed for `schedule` (run or skipped), newest first, at most `limit`.
    async fn schedule_runs(
        &self,
        schedule: &str,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>, StoreError>;

    /// The latest runs Workflow Builder started through a `[[step]]`, newest first, at most `limit`.
    async fn step_runs(&self, limit: usize) -> Result<Vec<ActionRunRecord>, StoreError>;

    /// Notes a login attempt from `client` at `now_ms` **before** its key is checked, forgets failures made at or
    /// before `since_ms` (the window's start), and counts what is left in the window (this attempt and any in flight elsewhere included), so
    /// guesses made at once on any replica cannot all slip under the limit.
    async fn note_login_attempt(
        &self,
        client: &str,
        now_ms: i64,
        since_ms: i64,
    ) -> Result<LoginFailures, StoreError>;

    /// Forgets one noted attempt (one the throttle refused, so waiting out the window is enough).
    async fn forget_login_attempt(&self, attempt_id: i64) -> Result<(), StoreError>;

    /// Forgets every failure from `client` (its login succeeded); how many there were. Other addresses keep theirs.
    async fn clear_login_failures(&self, client: &str) -> Result<u64, StoreError>;
}
