//! The handlers' way out: [`HandlerOutbox`], the inbound side's [`sluice_inbound::Outbox`] port that every handler
//! reaches as `ctx.outbox`, commits the Slack calls a handler decided on as an event of its own (the dispatcher
//! sends them); and [`audit`] records what a person did and what came of it.

use std::sync::Arc;

use serde_json::{json, Value};
use sluice_domain::outbox::outbox_item;
use sluice_inbound::{HandlerError, HandlerResult, Writes};
use sluice_store::{EventBody, Fate, FollowUp, NewAudit, NewEvent, NewOutboxItem, Replay, Store};

use crate::state::{now_ms, AppState};

/// Slack calls caused by an action go through the outbox like everything else, recorded as an
/// event of their own so `GET /v1/events/{id}` shows what became of them.
pub(crate) async fn enqueue(
    state: &AppState,
    rule: &str,
    body: Value,
    outbox: Vec<NewOutboxItem>,
    follow_up: Option<FollowUp>,
) -> HandlerResult<()> {
    let new = NewEvent {
        id: format!("act_{}", uuid::Uuid::now_v7().simple()),
        received_at_ms: now_ms(),
        source: "slack".into(),
        body: EventBody::of(&body),
        fate: Fate::Queued {
            rules: vec![rule.to_string()],
        },
        outbox,
        dedup: None,
        inhibit: Default::default(),
        follow_up,
    };
    state
        .store
        .ingest(vec![new])
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?;
    state.wake.notify_one();
    Ok(())
}

/// Records one human action and its result in the audit log. A failure to write it is logged, not returned: the
/// action itself has happened.
pub async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    result: &str,
    detail: Value,
) {
    let team = &state.config.slack.team_id;
    audit_in(&*state.store, team, actor, action, target, result, detail).await;
}

/// [`audit`] for a caller with a store and no running server (the CLI).
pub async fn audit_in(
    store: &dyn Store,
    team: &str,
    actor: &str,
    action: &str,
    target: &str,
    result: &str,
    detail: Value,
) {
    let record = NewAudit {
        at_ms: now_ms(),
        actor: actor.to_string(),
        team: team.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        result: result.to_string(),
        detail,
    };
    if let Err(e) = store.record_audit(record).await {
        tracing::error!(error = %e, %action, %actor, "audit record could not be written");
    }
}

/// The [`sluice_inbound::Outbox`] handed to the inbound side: a write from it (an ephemeral answer to a user whose
/// request had no `response_url`, a direct message) becomes an outbox row in its channel's lane, sent by the
/// dispatcher under the rate gate like any other call.
pub struct HandlerOutbox(pub Arc<AppState>);

impl std::fmt::Debug for HandlerOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandlerOutbox")
    }
}

#[async_trait::async_trait]
impl sluice_inbound::Outbox for HandlerOutbox {
    async fn enqueue(&self, method: &str, args: Value) -> Result<(), String> {
        let state = &self.0;
        let channel = args["channel"]
            .as_str()
            .ok_or_else(|| format!("{method} without a channel"))?
            .to_string();
        let body = json!({ "method": method, "user": args["user"] });
        let item = outbox_item(&state.config.slack.team_id, &channel, method, args);
        enqueue(state, "inbound.answer", body, vec![item], None)
            .await
            .map_err(|e| e.to_string())
    }

    async fn commit(&self, w: Writes) -> Result<(), String> {
        enqueue(&self.0, &w.what, w.detail, w.items, w.follow_up)
            .await
            .map_err(|e| e.to_string())
    }
}

/// What a dead-letter replay names in the audit log: `item 42` or `all`.
pub fn replay_target(which: &Replay) -> String {
    match which {
        Replay::Item(id) => format!("item {id}"),
        Replay::All => "all".to_string(),
    }
}
