//! What the operator console reads ([`ConsoleStore`]; the types are `sluice-model`'s): read-only views for people
//! (nothing here is on the pipeline's path, and every verb is bounded), and the console's sessions.

use crate::{
    ApprovalSummary, AuditRecord, CallCount, ConsoleSession, EventSummary, HeldInhibition,
    LaneView, LeaderView, RecentCounts, StoreError,
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
}
