//! [`Outbox`]: the port through which everything that handles a request from Slack writes to Slack.
//!
//! The integrator implements it over its durable outbox, so those writes are committed, rate-limited and retried
//! by the one dispatcher like every other Slack call. This crate never posts a message itself: the only calls it
//! makes directly are the two that cannot wait for a queue, each named where it is made — `views.open`/`views.push`
//! with a `trigger_id` Slack honours for 3 seconds ([`crate::Ctx::open_view`]), and replies to a request's
//! `response_url` ([`crate::ResponseUrl`]).

use async_trait::async_trait;
use serde_json::Value;
pub use sluice_model::{FollowUp, NewOutboxItem};

/// A handler's writes, committed together or not at all: what a decision sends (its messages, in order) and, for
/// a decision on an alert, the refreshes of that alert's cards.
#[derive(Debug, Clone)]
pub struct Writes {
    /// What caused them, as the integrator records it (`alert.ack`, `mention`, …).
    pub what: String,
    /// Who and on what, recorded with them.
    pub detail: Value,
    pub items: Vec<NewOutboxItem>,
    pub follow_up: Option<FollowUp>,
}

/// Enqueues Slack Web API calls for later, durable delivery.
#[async_trait]
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// Enqueues `method` (`chat.postEphemeral`, `chat.postMessage`, …) with `args`; `Ok` once it is durable.
    async fn enqueue(&self, method: &str, args: Value) -> Result<(), String>;

    /// Commits `writes` as one: `Ok` once all of them are durable, none of them on an error. An outbox that keeps no
    /// batches refuses them.
    async fn commit(&self, writes: Writes) -> Result<(), String> {
        Err(format!(
            "this integration's outbox cannot commit the writes of {}",
            writes.what
        ))
    }
}

/// An [`Outbox`] that refuses every write, for an integration whose handlers only answer synchronously or through
/// the `response_url` (tests, benchmarks): a write would be a bug there, and it fails loudly.
#[derive(Debug, Default)]
pub struct NoOutbox;

#[async_trait]
impl Outbox for NoOutbox {
    async fn enqueue(&self, method: &str, _args: Value) -> Result<(), String> {
        Err(format!(
            "this integration has no outbox, so {method} cannot be sent"
        ))
    }
}
