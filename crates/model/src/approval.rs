//! Approvals as plain data: what crosses the store's approval verbs and what the approval workflow decides over
//! (`sluice_domain::approval::decide`). The store keeps them; it does not own the rules.

use serde::{Deserialize, Serialize};

use crate::{NewOutboxItem, RefSent};

/// An approval to create ([`ApprovalStore::create_approval`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApproval {
    /// `"apr_"` + a UUID v7.
    pub id: String,
    /// The same key returns the same approval, never a second one.
    pub idempotency_key: Option<String>,
    /// The request as validated (title, text, fields, links, channel, approvers, callback_url, …), returned as is.
    pub request: serde_json::Value,
    /// Slack user id (or API key name) of who asked.
    pub requester: String,
    pub required: u32,
    pub allow_self: bool,
    pub team: String,
    pub channel: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// One counted decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    /// Slack user id, or the API key name for a cancellation over HTTP.
    pub actor: String,
    /// `"approve"`, `"reject"`, `"cancel"` or `"expire"` (actor `"sluice"`).
    pub verdict: String,
    pub reason: Option<String>,
    pub at_ms: i64,
}

/// An approval as it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRecord {
    pub id: String,
    pub idempotency_key: Option<String>,
    pub request: serde_json::Value,
    pub requester: String,
    /// `pending`, `approved`, `rejected`, `expired` or `cancelled`.
    pub state: String,
    pub required: u32,
    pub allow_self: bool,
    pub team: String,
    pub channel: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub decided_at_ms: Option<i64>,
    /// Bumped by every commit; [`ApprovalCommit::version`] hands it back.
    pub version: i64,
    /// Oldest first.
    pub decisions: Vec<ApprovalDecision>,
    /// The card's outbox item, and where it was posted once sent.
    pub card_item_id: Option<i64>,
    pub card: Option<RefSent>,
}

/// An outbox row a decision causes: with `on_card`, it is linked to the approval's card (a `chat.update` of it, or
/// a reply in its thread) and waits for the card to be sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalItem {
    pub item: NewOutboxItem,
    pub on_card: bool,
}

/// What a decision changes, committed at once ([`ApprovalStore::commit_approval`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalCommit {
    pub id: String,
    /// The [`ApprovalRecord::version`] the decision was taken on.
    pub version: i64,
    pub state: String,
    pub decided_at_ms: Option<i64>,
    pub decision: Option<ApprovalDecision>,
    pub items: Vec<ApprovalItem>,
    /// The `[[action]]` run an approval's `action` starts when it is approved, recorded with the decision (its
    /// outgoing call is among `items`), so an approved action runs exactly once, even across a crash.
    pub run: Option<crate::NewActionRun>,
}

/// The answer of [`ApprovalStore::create_approval`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Created {
    pub approval: ApprovalRecord,
    /// `false` when the idempotency key named an approval that already existed (nothing was written).
    pub created: bool,
}
