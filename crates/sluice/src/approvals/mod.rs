//! The approval workflow's thin handler: [`create`] stores a request with its card, [`apply`] loads an approval,
//! lets the pure `sluice_domain::approval::decide` decide, and commits the new state with the outbox rows its
//! effects need (card update, thread reply, signed callback) in one transaction, guarded by the approval's version:
//! a double click, a Slack retry or two replicas deciding at once commit one decision, the others read again and
//! decide again (and are told it is already decided). The Slack side is in `slack.rs`, the expiry timer (one leader,
//! driven by the database) in `expiry.rs`; every attempt is audited through `crate::outbox::audit`.

pub mod cli;
mod expiry;
mod slack;

use serde_json::json;
use sluice_domain::approval::card::{card, not_started as not_started_line, to_json, with_line};
use sluice_domain::approval::request::Valid;
use sluice_domain::approval::{decide, Effect, Input, Refusal, State};
use sluice_domain::outbox::outbox_item;
use sluice_domain::outgoing::http_item;
use sluice_store::{
    ApprovalCommit, ApprovalItem, ApprovalRecord, Created, NewApproval, StoreError,
};

pub use expiry::run_expiry;
pub use slack::register;

use crate::state::{now_ms, AppState};

/// How many times [`apply`] reads again after losing a race before it gives up.
const RACES: usize = 8;

/// Stores a validated request and its card; with a known idempotency key, returns the stored one instead.
pub async fn create(state: &AppState, mut v: Valid) -> Result<Created, StoreError> {
    let now = now_ms();
    v.request.approve_comment |= state.config.approvals.approve_comment;
    let id = format!("apr_{}", uuid::Uuid::now_v7().simple());
    let team = state.config.slack.team_id.clone();
    let request = serde_json::to_value(&v.request).unwrap_or_default();
    let new = NewApproval {
        id: id.clone(),
        idempotency_key: v.request.idempotency_key.clone(),
        request,
        requester: v.requester.clone(),
        required: v.required,
        allow_self: v.request.allow_self,
        team: team.clone(),
        channel: v.request.channel.clone(),
        created_at_ms: now,
        expires_at_ms: v.expires_at_ms,
    };
    // The card is drawn from the approval as it will be stored: pending, no decisions.
    let as_stored = ApprovalRecord {
        id,
        idempotency_key: new.idempotency_key.clone(),
        request: new.request.clone(),
        requester: new.requester.clone(),
        state: "pending".into(),
        required: new.required,
        allow_self: new.allow_self,
        team: team.clone(),
        channel: new.channel.clone(),
        created_at_ms: now,
        expires_at_ms: new.expires_at_ms,
        decided_at_ms: None,
        version: 0,
        decisions: Vec::new(),
        card_item_id: None,
        card: None,
    };
    let item = outbox_item(&team, &new.channel, "chat.postMessage", card(&as_stored));
    let created = state.store.create_approval(new, item).await?;
    if created.created {
        state.wake.notify_one();
    }
    Ok(created)
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Applied {
    /// The approval after the input (unchanged when nothing was committed).
    pub approval: ApprovalRecord,
    /// Why the input changed nothing, if it did not.
    pub refused: Option<Refusal>,
    /// A decision was committed.
    pub committed: bool,
}

/// Loads approval `id`, decides what `input` does to it, and commits that. `None` if the approval is unknown.
pub async fn apply(
    state: &AppState,
    id: &str,
    input: impl Fn(&ApprovalRecord) -> Input,
) -> Result<Option<Applied>, StoreError> {
    for _ in 0..RACES {
        let Some(record) = state.store.approval(id).await? else {
            return Ok(None);
        };
        let now = now_ms();
        let (next, effects) = decide(&State::of(&record), input(&record), now);
        let refused = effects.iter().find_map(|e| match e {
            Effect::Refuse { why, .. } => Some(why.clone()),
            _ => None,
        });
        let decision = effects.iter().find_map(|e| match e {
            Effect::Record(d) => Some(d.clone()),
            _ => None,
        });
        if decision.is_none() {
            return Ok(Some(Applied {
                approval: record,
                refused,
                committed: false,
            }));
        }
        let after = ApprovalRecord {
            state: next.status.as_str().to_string(),
            decisions: next.decisions.clone(),
            decided_at_ms: next.decided_at_ms,
            version: record.version + 1,
            ..record.clone()
        };
        // An approved request's action starts with the decision, in its transaction: once, even across a crash.
        // One that cannot start is said on the card, in its thread and to the callback.
        let (run, not_started) = if after.state == "approved" {
            match approved_action(state, &after).await {
                Ok(run) => (run, None),
                Err(not_started) => (None, Some(not_started)),
            }
        } else {
            (None, None)
        };
        let mut items = items_for(state, &after, &effects, not_started.as_ref());
        if let Some(p) = &run {
            items.extend(p.items.iter().map(|item| ApprovalItem {
                item: item.clone(),
                on_card: false,
            }));
        }
        let commit = ApprovalCommit {
            id: record.id.clone(),
            version: record.version,
            state: after.state.clone(),
            decided_at_ms: after.decided_at_ms,
            decision,
            items,
            run: run.as_ref().map(|p| p.run.clone()),
        };
        if state.store.commit_approval(commit, now).await? {
            state.wake.notify_one();
            if let Some(p) = &run {
                let detail = json!({ "action": p.run.action, "run": p.run.id, "channel": p.run.channel, "via": "approval" });
                crate::outbox::audit(
                    state,
                    &p.run.actor,
                    "action.run",
                    &p.run.target,
                    "ok",
                    detail,
                )
                .await;
            }
            if let Some(d) = after.decisions.last().filter(|d| d.verdict == "expire") {
                crate::outbox::audit(
                    state,
                    &d.actor,
                    "approval.expire",
                    &after.id,
                    "ok",
                    json!({}),
                )
                .await;
            }
            return Ok(Some(Applied {
                approval: after,
                refused,
                committed: true,
            }));
        }
        // Someone else decided first: read it again and decide again.
    }
    Err(StoreError::Conflict(format!(
        "approval {id} kept changing while deciding; try again"
    )))
}

/// An approved request's action that could not start: its label and why.
pub struct NotStarted {
    pub label: String,
    pub reason: String,
}

/// The run an approved request's `action` starts, committed with the approval's decision (so it starts once, even
/// across a crash). Its id is the approval's (`<id>.action`, the call's `Idempotency-Key`); its context the
/// approval's request (and the event, when a button asked for the approval); its result goes to the approval card's
/// thread. `None` without an action; `Err` when it cannot start (audited: the approval is decided all the same).
async fn approved_action(
    state: &AppState,
    a: &ApprovalRecord,
) -> Result<Option<crate::actions::run::Prepared>, NotStarted> {
    let Some(name) = a.request["action"].as_str() else {
        return Ok(None);
    };
    let Some(action) = state.config.action_defs.get(name) else {
        let reason = format!("no [[action]] named {name:?} is configured");
        let why = format!("error: {reason}");
        crate::outbox::audit(state, "sluice", "action.run", &a.id, &why, json!({})).await;
        return Err(NotStarted {
            label: name.to_string(),
            reason,
        });
    };
    let event = match a.request["event_id"].as_str() {
        Some(id) => state
            .store
            .event(id)
            .await
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_value::<sluice_core::event::Event>(s.body).ok()),
        None => None,
    };
    // Who approved last is who ran it.
    let actor = crate::actions::run::Actor {
        id: a
            .decisions
            .iter()
            .rev()
            .find(|d| d.verdict == "approve")
            .map(|d| d.actor.clone())
            .unwrap_or_else(|| a.requester.clone()),
        name: String::new(),
    };
    // A slash command's arguments (and a form's values) that asked for the approval.
    let args = a.request["args"].as_object().cloned().unwrap_or_default();
    let mut context = sluice_domain::action::context(
        event.as_ref(),
        Some(&a.request),
        &actor.id,
        &actor.name,
        args,
    );
    if let Some(form) = a.request["form"].as_object() {
        context["form"] = serde_json::Value::Object(form.clone());
    }
    let mut to = crate::actions::run::ReplyTo {
        channel: a.channel.clone(),
        ..Default::default()
    };
    if let Some(card) = &a.card {
        to.channel = card.channel.clone();
        to.ts = card.ts.clone();
    }
    let target = a.request["event_id"].as_str().unwrap_or(&a.id).to_string();
    // The event's card (a button asked for the approval) shows the run, as if it had been started there.
    if let Some(event) = &event {
        to.card = event_card(state, event, &target).await;
    }
    let run_id = format!("{}.action", a.id);
    match crate::actions::run::prepare_run(
        state,
        action,
        &target,
        &context,
        &actor,
        &to,
        Some(run_id),
    ) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            tracing::warn!(approval = %a.id, action = %name, error = %e, "the approved action cannot start");
            let detail = json!({ "action": name, "via": "approval" });
            crate::outbox::audit(
                state,
                &actor.id,
                "action.run",
                &target,
                &format!("error: {e}"),
                detail,
            )
            .await;
            Err(NotStarted {
                label: action.label.clone(),
                reason: e,
            })
        }
    }
}

/// How a run on `event` (id `event_id`) shows on the event's card (see `actions::run::ReplyTo::card`): the living
/// refreshes of a deduplicated alert's cards, or the redraw of its first card; `Null` when it has no card.
async fn event_card(
    state: &AppState,
    event: &sluice_core::event::Event,
    event_id: &str,
) -> serde_json::Value {
    if let Some(refresh) = crate::alerts::living_refresh(state, event) {
        return json!({ "living": refresh });
    }
    let Some(post) = state
        .store
        .message_of(event_id)
        .await
        .ok()
        .and_then(|posts| posts.into_iter().next())
    else {
        return serde_json::Value::Null;
    };
    let template = crate::alerts::template_of(state, event, event_id, &post.channel, &post.ts)
        .await
        .unwrap_or_else(|_| "auto".to_string());
    json!({ "render": { "event_id": event_id, "template": template, "channel": post.channel, "ts": post.ts } })
}

/// Asks for the approval `[[action]]` `action` needs before it runs on `event` (`event_id`; its button clicked by `actor` in
/// `channel`): the approval's card goes to that channel; once approved, the action runs. The approval's id.
pub async fn request_for_action(
    state: &AppState,
    action: &crate::config::actions::Action,
    needs: &crate::config::actions::NeedsApproval,
    event: &sluice_core::event::Event,
    event_id: &str,
    actor: &crate::actions::run::Actor,
    channel: &str,
) -> Result<String, String> {
    let mut fields = std::collections::BTreeMap::new();
    if !event.service.is_empty() {
        fields.insert("service".to_string(), event.service.clone());
    }
    if !event.environment.is_empty() {
        fields.insert("environment".to_string(), event.environment.clone());
    }
    let request = sluice_domain::approval::request::ApprovalRequest {
        title: format!("Run {} on: {}", action.label, event.title),
        text: format!("<@{}> asked to run {}.", actor.id, action.label),
        fields,
        links: Vec::new(),
        requester: Some(actor.id.clone()),
        channel: channel.to_string(),
        approvers: needs.approvers.clone(),
        required: Some(needs.required),
        allow_self: false,
        expires_in: Some(needs.expires_in.clone()),
        callback_url: None,
        idempotency_key: None,
        action: Some(action.name.clone()),
        approve_comment: false,
        event_id: None,
        args: None,
        form: None,
    };
    let mut valid = request
        .validate(&actor.id, &[], now_ms())
        .map_err(|(field, message)| format!("{field}: {message}"))?;
    valid.request.event_id = Some(event_id.to_string());
    let created = create(state, valid).await.map_err(|e| e.to_string())?;
    let a = &created.approval;
    let detail = json!({ "title": a.request["title"], "channel": a.channel, "requester": a.requester,
                         "required": a.required, "approvers": a.request["approvers"],
                         "expires_at_ms": a.expires_at_ms, "via": "action", "action": action.name });
    crate::outbox::audit(state, &actor.id, "approval.request", &a.id, "ok", detail).await;
    Ok(a.id.clone())
}

/// Asks for the approval `[[action]]` `action` needs before a slash command (or a form) runs it with `args` (and
/// `form`, a form's values): the card goes to the command's `channel`, `said` is what the command was (shown on the
/// card); once approved the action runs with those arguments, and on rejection or expiry the requester is told.
/// The approval's id.
#[allow(clippy::too_many_arguments)]
pub async fn request_for_command(
    state: &AppState,
    action: &crate::config::actions::Action,
    needs: &crate::config::actions::NeedsApproval,
    said: &str,
    args: serde_json::Map<String, serde_json::Value>,
    form: Option<serde_json::Map<String, serde_json::Value>>,
    actor: &crate::actions::run::Actor,
    channel: &str,
) -> Result<String, String> {
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let fields = args
        .iter()
        .chain(form.iter().flatten())
        .map(|(k, v)| (k.clone(), shown(v)))
        .collect();
    let request = sluice_domain::approval::request::ApprovalRequest {
        title: format!("Run {}: {said}", action.label),
        text: format!(
            "<@{}> asked to run {} with `{said}`.",
            actor.id, action.label
        ),
        fields,
        links: Vec::new(),
        requester: Some(actor.id.clone()),
        channel: channel.to_string(),
        approvers: needs.approvers.clone(),
        required: Some(needs.required),
        allow_self: false,
        expires_in: Some(needs.expires_in.clone()),
        callback_url: None,
        idempotency_key: None,
        action: Some(action.name.clone()),
        approve_comment: false,
        event_id: None,
        args: None,
        form: None,
    };
    let mut valid = request
        .validate(&actor.id, &[], now_ms())
        .map_err(|(field, message)| format!("{field}: {message}"))?;
    valid.request.args = Some(args);
    valid.request.form = form;
    let created = create(state, valid).await.map_err(|e| e.to_string())?;
    let a = &created.approval;
    let detail = json!({ "title": a.request["title"], "channel": a.channel, "requester": a.requester,
                         "required": a.required, "approvers": a.request["approvers"],
                         "expires_at_ms": a.expires_at_ms, "via": "command", "action": action.name });
    crate::outbox::audit(state, &actor.id, "approval.request", &a.id, "ok", detail).await;
    Ok(a.id.clone())
}

/// What the requester of a command's approval is told when it ends without running: `None` for any other approval
/// or outcome.
fn tell_requester(after: &ApprovalRecord) -> Option<String> {
    after.request.get("args")?;
    let title = after.request["title"].as_str().unwrap_or("your request");
    let last = after.decisions.last();
    let why = match (after.state.as_str(), last) {
        ("rejected", Some(d)) => format!(
            "was rejected by {}{}",
            sluice_domain::approval::who(&d.actor),
            d.reason
                .as_deref()
                .map(|r| format!(": {}", sluice_slack_wire::blocks::escape_mrkdwn(r)))
                .unwrap_or_default()
        ),
        ("expired", _) => "expired before it was approved".to_string(),
        ("cancelled", _) => "was cancelled".to_string(),
        _ => return None,
    };
    Some(format!("Your request “{title}” {why}. Nothing ran."))
}

/// `line` addressed to the requester (when there is one).
fn to_requester(requester: &str, line: &str) -> String {
    if requester.is_empty() {
        line.to_string()
    } else {
        format!("<@{requester}> {line}")
    }
}

/// The outbox rows an approval's effects need; with its action `not_started`, the card, a thread reply to the
/// requester and the callback (`"action": {"state": "failed", …}`) say so.
fn items_for(
    state: &AppState,
    after: &ApprovalRecord,
    effects: &[Effect],
    not_started: Option<&NotStarted>,
) -> Vec<ApprovalItem> {
    let team = &after.team;
    let mut items = Vec::new();
    let said = not_started.map(|n| not_started_line(&n.label, &n.reason));
    for e in effects {
        match e {
            Effect::UpdateCard => {
                let mut args = card(after);
                if let Some(line) = &said {
                    args = with_line(args, line);
                }
                items.push(ApprovalItem {
                    item: outbox_item(team, &after.channel, "chat.update", args),
                    on_card: true,
                });
                if let Some(line) = &said {
                    items.push(ApprovalItem {
                        item: outbox_item(
                            team,
                            &after.channel,
                            "chat.postMessage",
                            json!({ "channel": after.channel, "text": to_requester(&after.requester, line) }),
                        ),
                        on_card: true,
                    });
                }
            }
            Effect::Reply(text) => items.push(ApprovalItem {
                item: outbox_item(
                    team,
                    &after.channel,
                    "chat.postMessage",
                    json!({ "channel": after.channel, "text": text }),
                ),
                on_card: true,
            }),
            Effect::Finished(status) => {
                if let Some(text) = tell_requester(after) {
                    items.push(ApprovalItem {
                        item: outbox_item(
                            team,
                            &after.channel,
                            "chat.postEphemeral",
                            json!({ "channel": after.channel, "user": after.requester, "text": text }),
                        ),
                        on_card: false,
                    });
                }
                if let Some(url) = after.request["callback_url"].as_str() {
                    let key = format!("{}.{}", after.id, status.as_str());
                    let mut body = to_json(after);
                    if let Some(n) = not_started {
                        body["action"] = json!({
                            "name": after.request["action"], "state": "failed", "error": n.reason,
                        });
                    }
                    match http_item(
                        url,
                        body,
                        &key,
                        "approval.callback",
                        state.config.approvals.timeout_ms,
                    ) {
                        Ok(item) => items.push(ApprovalItem {
                            item,
                            on_card: false,
                        }),
                        // Validated when the approval was created; a URL that no longer parses is logged.
                        Err(e) => {
                            tracing::warn!(approval = %after.id, error = %e, "callback not sent")
                        }
                    }
                }
            }
            Effect::Record(_) | Effect::Refuse { .. } => {}
        }
    }
    items
}
