//! What the operator console reads: read-only views over the store's tables, for people rather than for the
//! pipeline (`sluice_store::ConsoleStore`).

use serde::Serialize;

/// Events accepted and Slack calls sent since a time, for the overview's rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecentCounts {
    pub events_in: u64,
    pub calls_out: u64,
}

/// One outbox lane: how much waits in it and who holds its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaneView {
    pub lane: String,
    pub pending: u64,
    /// When the oldest pending item was enqueued.
    pub oldest_pending_at_ms: Option<i64>,
    /// The replica holding the lane's lease, while it holds it.
    pub owner: Option<String>,
    pub lease_until_ms: Option<i64>,
}

/// A leader role (the group flusher, the approvals' timer, …) and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderView {
    pub role: String,
    pub owner: String,
    pub until_ms: i64,
    /// Whether the lease was still valid at the time asked.
    pub held: bool,
}

/// A stored event as the search lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSummary {
    pub id: String,
    pub received_at_ms: i64,
    pub source: String,
    pub body: serde_json::Value,
    pub fate: serde_json::Value,
}

/// An approval as the console lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalSummary {
    pub id: String,
    pub requester: String,
    pub state: String,
    pub channel: String,
    pub required: u32,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub decided_at_ms: Option<i64>,
    pub request: serde_json::Value,
}

/// An open operator console session (the store knows it by the hash of its token only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleSession {
    /// The name of the API key the operator logged in with.
    pub operator: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// An inhibition key in force: held by an open alert seen within the key's window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldInhibition {
    pub key: String,
    pub window_ms: i64,
    pub alert_id: i64,
    pub dedup_key: String,
    pub first_event_id: String,
    pub last_seen_ms: i64,
    /// The body of the alert's first event.
    pub body: serde_json::Value,
}

/// Slack calls sent to one channel with one method in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallCount {
    pub channel: String,
    pub method: String,
    pub calls: u64,
}

/// One minute of a `[[schedule]]` that a replica claimed: run, or skipped because it was missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleRun {
    pub due_ms: i64,
    /// `run` or `skipped`.
    pub outcome: String,
    /// The replica that claimed it.
    pub claimed_by: String,
    pub claimed_at_ms: i64,
}

/// Failed console logins inside the throttle's window, counted just after an attempt was noted (the attempt
/// included), so concurrent guesses each see the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoginFailures {
    /// The noted attempt: forgotten when it is refused, cleared with the rest of its address's on success.
    pub attempt_id: i64,
    /// Failures (and attempts in flight) from the same client address.
    pub client: u64,
    /// When the oldest of them was noted.
    pub client_oldest_ms: Option<i64>,
    /// Failures (and attempts in flight) from every address.
    pub total: u64,
    pub total_oldest_ms: Option<i64>,
}
