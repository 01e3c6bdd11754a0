//! What people do in Slack, and what Sluice does about it: the handlers registered with the
//! inbound registry (sluice-inbound).
//!
//! - **Acknowledge / Resolve** on an alert card: who may act is configured (`[actions]`); the
//!   first decision per alert wins across clicks and replicas (`Store::record_alert_action`);
//!   the card is re-rendered from the stored event with every recorded action on it and
//!   updated through the outbox; a resolve also replies in the card's thread; every click,
//!   allowed or refused, is audited.
//! - **`/sluice`** (name configurable): `help`, `status`.
//! - **`app_mention`**: a short hello in the thread, through the outbox.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_core::event::{Event, Status};
use sluice_core::render::{RenderContext, ACTIONS_BLOCK_ID, ACTION_ACK, ACTION_RESOLVE};
use sluice_inbound::models::{EventCallback, SlashCommand};
use sluice_inbound::{ActionPayload, Ctx, HandlerError, HandlerResult, OnceStore, Registry, Reply};
use sluice_slack::api::Client;
use sluice_slack::blocks::fit_message;
use sluice_store::{AckOutcome, Fate, NewAudit, NewEvent, Store};

use crate::pipeline::outbox_item;
use crate::state::{now, now_ms, AppState};

/// Once-keys for inbound requests, kept in the store so that a retry after a restart, or on
/// another replica, is still recognised.
pub struct StoreOnce(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl OnceStore for StoreOnce {
    async fn first_time(&self, key: &str, ttl: Duration) -> Result<bool, String> {
        self.0
            .first_time(key, now_ms(), ttl.as_millis() as i64)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Who may press the buttons: listed users, members of listed user groups (asked of Slack and
/// remembered for a minute), or — when both lists are empty — everyone in the workspace.
pub struct Permissions {
    users: Vec<String>,
    groups: Vec<String>,
    slack: Client,
    members: Mutex<BTreeMap<String, (Instant, Vec<String>)>>,
}

const GROUP_CACHE: Duration = Duration::from_secs(60);

impl Permissions {
    pub fn new(users: Vec<String>, groups: Vec<String>, slack: Client) -> Self {
        Permissions {
            users,
            groups,
            slack,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    pub async fn may_act(&self, user: &str) -> bool {
        if self.users.is_empty() && self.groups.is_empty() {
            return true;
        }
        if self.users.iter().any(|u| u == user) {
            return true;
        }
        for group in &self.groups {
            let cached = self.members.lock().ok().and_then(|m| {
                m.get(group)
                    .filter(|(at, _)| at.elapsed() < GROUP_CACHE)
                    .map(|(_, users)| users.clone())
            });
            let users = match cached {
                Some(users) => users,
                None => match self.slack.usergroups_users_list(group).await {
                    Ok(users) => {
                        if let Ok(mut m) = self.members.lock() {
                            m.insert(group.clone(), (Instant::now(), users.clone()));
                        }
                        users
                    }
                    Err(e) => {
                        // Fail closed: an unknown membership is not a permission.
                        tracing::warn!(%group, error = %e, "could not read user group members");
                        continue;
                    }
                },
            };
            if users.iter().any(|u| u == user) {
                return true;
            }
        }
        false
    }
}

/// The handlers Sluice answers Slack with.
pub fn registry(state: Arc<AppState>, permissions: Arc<Permissions>, command: &str) -> Registry {
    let mut r = Registry::new();
    for (action_id, verb) in [(ACTION_ACK, "ack"), (ACTION_RESOLVE, "resolve")] {
        let (state, permissions) = (state.clone(), permissions.clone());
        r.action(action_id, move |ctx: Ctx<ActionPayload>| {
            let (state, permissions) = (state.clone(), permissions.clone());
            async move { alert_action(&state, &permissions, verb, ctx).await }
        });
    }
    let s = state.clone();
    r.command(command, move |ctx: Ctx<SlashCommand>| {
        let s = s.clone();
        async move { slash_command(&s, ctx).await }
    });
    let s = state;
    r.event("app_mention", move |ctx: Ctx<EventCallback>| {
        let s = s.clone();
        async move { mention(&s, ctx).await }
    });
    r
}

fn past_tense(verb: &str) -> &'static str {
    match verb {
        "ack" => "Acknowledged",
        _ => "Resolved",
    }
}

fn clock(at_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at_ms / 1000)
        .map(|t| format!("{:02}:{:02} UTC", t.hour(), t.minute()))
        .unwrap_or_default()
}

async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    result: &str,
    detail: Value,
) {
    let record = NewAudit {
        at_ms: now_ms(),
        actor: actor.to_string(),
        team: state.config.slack.team_id.clone(),
        action: action.to_string(),
        target: target.to_string(),
        result: result.to_string(),
        detail,
    };
    if let Err(e) = state.store.record_audit(record).await {
        tracing::error!(error = %e, %action, %actor, "audit record could not be written");
    }
}

async fn alert_action(
    state: &AppState,
    permissions: &Permissions,
    verb: &str,
    ctx: Ctx<ActionPayload>,
) -> HandlerResult<()> {
    let user = ctx.user_id.clone().unwrap_or_default();
    let event_id = ctx
        .payload
        .action
        .value
        .clone()
        .ok_or_else(|| HandlerError::new("this button carries no alert id"))?;
    let body = &ctx.payload.body;
    let channel = body
        .channel
        .as_ref()
        .map(|c| c.id.clone())
        .or_else(|| body.container.channel_id.clone())
        .ok_or_else(|| HandlerError::new("the click came without a channel"))?;
    let ts = body
        .container
        .message_ts
        .clone()
        .or_else(|| body.message.as_ref().map(|m| m.ts.clone()))
        .ok_or_else(|| HandlerError::new("the click came without a message"))?;
    let action = format!("alert.{verb}");
    let target = format!("{event_id} {channel}:{ts}");
    let detail = json!({ "event_id": event_id, "channel": channel, "ts": ts });

    if !permissions.may_act(&user).await {
        audit(
            state,
            &user,
            &action,
            &target,
            "refused: not allowed",
            detail,
        )
        .await;
        ctx.reply(Reply::ephemeral(format!(
            "You are not allowed to {} alerts here. Ask an admin to add you to `[actions]` in sluice.toml.",
            if verb == "ack" { "acknowledge" } else { "resolve" }
        )))
        .await?;
        return Ok(());
    }
    match state
        .store
        .record_alert_action(&event_id, verb, &user, now_ms())
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
    {
        AckOutcome::AlreadyBy { actor, at_ms } => {
            let result = format!(
                "refused: already {} by {actor}",
                past_tense(verb).to_lowercase()
            );
            audit(state, &user, &action, &target, &result, detail).await;
            ctx.reply(Reply::ephemeral(format!(
                "Already {} by <@{actor}> at {}.",
                past_tense(verb).to_lowercase(),
                clock(at_ms)
            )))
            .await?;
        }
        AckOutcome::Recorded => {
            let update = refreshed_card(state, &event_id, &channel, &ts).await?;
            let mut outbox = vec![outbox_item(
                &state.config.slack.team_id,
                &channel,
                "chat.update",
                update,
            )];
            if verb == "resolve" {
                let reply = json!({
                    "channel": channel, "thread_ts": ts,
                    "text": format!("✅ Resolved by <@{user}> at {}.", clock(now_ms())),
                });
                outbox.push(outbox_item(
                    &state.config.slack.team_id,
                    &channel,
                    "chat.postMessage",
                    reply,
                ));
            }
            enqueue(
                state,
                &action,
                json!({ "actor": user, "target": target }),
                outbox,
            )
            .await?;
            audit(state, &user, &action, &target, "ok", detail).await;
        }
    }
    Ok(())
}

/// The card for `event_id` as it should look now: rendered from the stored event, resolved if
/// someone resolved it, with one context line per recorded action and no button for what is
/// already done.
async fn refreshed_card(
    state: &AppState,
    event_id: &str,
    channel: &str,
    ts: &str,
) -> HandlerResult<Value> {
    let stored = state
        .store
        .event(event_id)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
        .ok_or_else(|| HandlerError::new(format!("alert {event_id} is no longer stored")))?;
    let mut event: Event = serde_json::from_value(stored.body.clone())
        .map_err(|e| HandlerError::new(e.to_string()))?;
    let done: Vec<&str> = stored.actions.iter().map(|a| a.action.as_str()).collect();
    if done.contains(&"resolve") {
        event.status = Status::Resolved;
    }
    let ctx = RenderContext {
        event_id,
        channel,
        template: "auto",
        count: 1,
        now: now(),
    };
    let mut args = state
        .config
        .renderer
        .render(&event, &ctx)
        .map_err(|e| HandlerError::new(e.to_string()))?;
    let actions: Vec<(String, String, i64)> = stored
        .actions
        .iter()
        .map(|a| (a.action.clone(), a.actor.clone(), a.at_ms))
        .collect();
    show_actions(&mut args, &actions);
    args["channel"] = json!(channel);
    args["ts"] = json!(ts);
    fit_message(&mut args);
    Ok(args)
}

/// Puts the recorded decisions `(action, actor, at_ms)` on a rendered card: one context line each, and no button
/// for what is already done. Shared with the living card refresh, so a duplicate arriving after an
/// acknowledgement does not bring the button back.
pub fn show_actions(args: &mut Value, actions: &[(String, String, i64)]) {
    let done: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    if let Some(blocks) = args["blocks"].as_array_mut() {
        for block in blocks.iter_mut() {
            if block["block_id"] == ACTIONS_BLOCK_ID {
                if let Some(elements) = block["elements"].as_array_mut() {
                    elements.retain(|e| {
                        let id = e["action_id"].as_str().unwrap_or("");
                        !(done.contains(&"ack") && id == ACTION_ACK)
                    });
                }
            }
        }
        blocks.retain(|b| {
            b["block_id"] != ACTIONS_BLOCK_ID
                || b["elements"].as_array().is_some_and(|e| !e.is_empty())
        });
        let lines: Vec<Value> = actions
            .iter()
            .map(|(action, actor, at_ms)| json!({"type": "mrkdwn", "text": format!("{} by <@{actor}> at {}", past_tense(action), clock(*at_ms))}))
            .collect();
        if !lines.is_empty() {
            blocks.push(json!({"type": "context", "elements": lines}));
        }
    }
}

/// Slack calls caused by an action go through the outbox like everything else, recorded as an
/// event of their own so `GET /v1/events/{id}` shows what became of them.
async fn enqueue(
    state: &AppState,
    rule: &str,
    body: Value,
    outbox: Vec<sluice_store::NewOutboxItem>,
) -> HandlerResult<()> {
    let new = NewEvent {
        id: format!("act_{}", uuid::Uuid::now_v7().simple()),
        received_at_ms: now_ms(),
        source: "slack".into(),
        body,
        fate: Fate::Queued {
            rules: vec![rule.to_string()],
        },
        outbox,
        dedup: None,
        follow_up: None,
    };
    state
        .store
        .ingest(vec![new])
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?;
    state.wake.notify_one();
    Ok(())
}

async fn slash_command(state: &AppState, ctx: Ctx<SlashCommand>) -> HandlerResult<Option<Reply>> {
    let cmd = &ctx.payload;
    let word = cmd.text.split_whitespace().next().unwrap_or("help");
    let reply = match word {
        "status" => {
            let stats = state.store.outbox_stats(now_ms()).await.map_err(|e| HandlerError::new(e.to_string()))?;
            let silences = state.store.silences(false, now_ms()).await.map_err(|e| HandlerError::new(e.to_string()))?;
            format!(
                "*Sluice status*\n• outbox: {} pending{}\n• dead letters: {}\n• silences: {}",
                stats.pending,
                stats
                    .oldest_pending_age_ms
                    .map(|ms| format!(" (oldest {}s)", ms / 1000))
                    .unwrap_or_default(),
                stats.dead,
                silences.len()
            )
        }
        "help" | "" => format!(
            "*{c}* — Sluice, the operations gateway\n• `{c} status` — outbox, dead letters and silences\n• `{c} help` — this message\nAlert cards have *Acknowledge* and *Resolve* buttons.",
            c = cmd.command
        ),
        other => format!("I don't know `{other}`. Try `{} help`.", cmd.command),
    };
    Ok(Some(Reply::ephemeral(reply)))
}

async fn mention(state: &AppState, ctx: Ctx<EventCallback>) -> HandlerResult<()> {
    let Some(event) = ctx.payload.event.as_ref() else {
        return Ok(());
    };
    let (Some(channel), Some(ts)) = (event.channel.clone(), event.ts.clone()) else {
        return Ok(());
    };
    let user = event.user.clone().unwrap_or_default();
    let reply = json!({
        "channel": channel,
        "thread_ts": event.thread_ts.clone().unwrap_or(ts),
        "text": format!("Hi <@{user}>: I route alerts and deploys here. Try `/sluice help`."),
    });
    let item = outbox_item(
        &state.config.slack.team_id,
        &channel,
        "chat.postMessage",
        reply,
    );
    enqueue(
        state,
        "mention",
        json!({ "actor": user, "event_id": ctx.payload.event_id }),
        vec![item],
    )
    .await
}
