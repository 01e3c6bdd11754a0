//! Runs of `[[action]]`s as plain data: what crosses the store's action-run verbs (`ActionRunStore`). What a run's
//! outcome means (running → done / failed, once) is decided by `sluice_domain::action`.

use serde::{Deserialize, Serialize};

/// A run to start ([`ActionRunStore::start_action_run`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewActionRun {
    /// `"run_"` + a UUID v7 (or `<approval id>.action` for an approval's action): the `Idempotency-Key` sent.
    pub id: String,
    /// The `[[action]]`'s name.
    pub action: String,
    /// What it runs on: an event id, an approval id.
    pub target: String,
    /// The Slack user who ran it.
    pub actor: String,
    pub team: String,
    /// Where its result goes: the card's channel and ts (ts empty when there is no card).
    pub channel: String,
    pub ts: String,
    /// `"thread"` or `"ephemeral"`.
    pub reply: String,
    /// The card when the run started, `{"text", "blocks"}` (redrawn with the run's status line), `Null` without a
    /// card.
    pub card: serde_json::Value,
    pub started_at_ms: i64,
}

/// A run as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRunRecord {
    pub id: String,
    pub action: String,
    pub target: String,
    pub actor: String,
    pub team: String,
    pub channel: String,
    pub ts: String,
    pub reply: String,
    pub card: serde_json::Value,
    /// `"running"`, `"done"` or `"failed"`.
    pub state: String,
    /// The internal system's HTTP status, once it answered.
    pub status: Option<i64>,
    /// The start of its answer, or why the run failed.
    pub result: Option<String>,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}
