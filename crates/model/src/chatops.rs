//! What the ChatOps verbs of the store return: an open alert with its first event, Sluice's own statistics over a
//! period (scheduled reports), a recent event with its fate (`status <service>`).

use serde::Serialize;

/// An open alert and the event that opened it (its body as stored): what `status`, `ack` and the console's silence
/// preview read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenAlert {
    pub alert_id: i64,
    pub dedup_key: String,
    pub first_event_id: String,
    pub count: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub body: serde_json::Value,
}

/// A stored event: when, what, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentEvent {
    pub id: String,
    pub received_at_ms: i64,
    pub body: serde_json::Value,
    pub fate: serde_json::Value,
}

/// Sluice's own numbers for `[from_ms, to_ms)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeriodStats {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Events from sources (not Sluice's own answers in Slack).
    pub received: i64,
    /// Messages posted to Slack.
    pub posted: i64,
    /// Events muted by a silence or an inhibition rule.
    pub suppressed: i64,
    pub dead_lettered: i64,
    /// Approval requests made.
    pub approvals: i64,
    /// Services by events received, most first (at most 5).
    pub noisiest_services: Vec<(String, i64)>,
    /// Routes by events queued, most first (at most 5).
    pub noisiest_routes: Vec<(String, i64)>,
    /// More events than were read for the two lists: their counts are of the latest ones only.
    pub sampled: bool,
}
