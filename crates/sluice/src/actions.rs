//! What people do in Slack, and what Sluice does about it: the handlers registered with the
//! inbound registry (sluice-inbound).
//!
//! - **Alert actions** ([`Verb`]): Acknowledge, Escalate, Silence 1 h and Resolve on an alert card, and
//!   Acknowledge by reacting with the configured emoji (`reaction_added`). Who may act is configured
//!   ([`Permissions`]: users, user groups, members of the card's channel); the first decision of each kind per
//!   alert wins across clicks, reactions and replicas (`Store::record_alert_action`); the card is refreshed
//!   through the living-message path (`NewEvent::follow_up`: rendered at send time from the alert as it stands,
//!   so a deduplicated alert keeps its count); every attempt, allowed or refused, is audited.
//! - **`/sluice`** (name configurable): `help`, `status`.
//! - **`app_mention`**: a short hello in the thread, through the outbox.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_core::event::{Event, Kind, Status};
use sluice_core::render::{
    RenderContext, ACTIONS_BLOCK_ID, ACTION_ACK, ACTION_ESCALATE, ACTION_RESOLVE, ACTION_SILENCE,
};
use sluice_core::route::Decision;
use sluice_inbound::models::{EventCallback, SlashCommand};
use sluice_inbound::{ActionPayload, Ctx, HandlerError, HandlerResult, OnceStore, Registry, Reply};
use sluice_slack::api::Client;
use sluice_slack::blocks::{escape_mrkdwn, fit_message};
use sluice_store::{
    AckOutcome, Fate, FollowUp, NewAudit, NewEvent, NewOutboxItem, NewSilence, Store,
};

use crate::config::ActionsConfig;
use crate::living::{self, Part};
use crate::pipeline::outbox_item;
use crate::silence::identity_matchers;
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

/// Who may act on alert cards: listed users, members of listed user groups, and — with `channel_members` — members
/// of the channel the card is in (memberships are asked of Slack and remembered for a minute). With none of these
/// configured, everyone in the workspace may act.
pub struct Permissions {
    users: Vec<String>,
    groups: Vec<String>,
    channel_members: bool,
    slack: Client,
    /// `"group:S…"` / `"channel:C…"` → when read, members.
    members: Mutex<BTreeMap<String, (Instant, Vec<String>)>>,
}

const MEMBERS_CACHE: Duration = Duration::from_secs(60);

impl Permissions {
    pub fn new(cfg: &ActionsConfig, slack: Client) -> Self {
        Permissions {
            users: cfg.users.clone(),
            groups: cfg.groups.clone(),
            channel_members: cfg.channel_members,
            slack,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// May `user` act on a card in `channel`?
    pub async fn may_act(&self, user: &str, channel: &str) -> bool {
        if self.users.is_empty() && self.groups.is_empty() && !self.channel_members {
            return true;
        }
        if self.users.iter().any(|u| u == user) {
            return true;
        }
        for group in &self.groups {
            if self.is_member(&format!("group:{group}"), user).await {
                return true;
            }
        }
        self.channel_members && self.is_member(&format!("channel:{channel}"), user).await
    }

    async fn is_member(&self, key: &str, user: &str) -> bool {
        let cached = self.members.lock().ok().and_then(|m| {
            m.get(key)
                .filter(|(at, _)| at.elapsed() < MEMBERS_CACHE)
                .map(|(_, users)| users.clone())
        });
        let users = match cached {
            Some(users) => users,
            None => {
                let read = match key.split_once(':') {
                    Some(("group", id)) => self.slack.usergroups_users_list(id).await,
                    Some((_, id)) => self.slack.conversations_members(id).await,
                    None => return false,
                };
                match read {
                    Ok(users) => {
                        if let Ok(mut m) = self.members.lock() {
                            m.insert(key.to_string(), (Instant::now(), users.clone()));
                        }
                        users
                    }
                    Err(e) => {
                        // Fail closed: an unknown membership is not a permission.
                        tracing::warn!(%key, error = %e, "could not read members");
                        return false;
                    }
                }
            }
        };
        users.iter().any(|u| u == user)
    }
}

/// A decision people take on an alert, once per alert each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Ack,
    Escalate,
    Silence,
    Resolve,
}

/// How long "Silence 1 h" silences.
pub const SILENCE_MS: i64 = 3_600_000;

impl Verb {
    pub const ALL: [Verb; 4] = [Verb::Ack, Verb::Escalate, Verb::Silence, Verb::Resolve];

    /// As recorded in the store and the audit log (`alert.<verb>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Ack => "ack",
            Verb::Escalate => "escalate",
            Verb::Silence => "silence",
            Verb::Resolve => "resolve",
        }
    }

    fn parse(s: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str() == s)
    }

    fn action_id(self) -> &'static str {
        match self {
            Verb::Ack => ACTION_ACK,
            Verb::Escalate => ACTION_ESCALATE,
            Verb::Silence => ACTION_SILENCE,
            Verb::Resolve => ACTION_RESOLVE,
        }
    }

    fn infinitive(self) -> &'static str {
        match self {
            Verb::Ack => "acknowledge",
            Verb::Escalate => "escalate",
            Verb::Silence => "silence",
            Verb::Resolve => "resolve",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Verb::Ack => "acknowledged",
            Verb::Escalate => "escalated",
            Verb::Silence => "silenced",
            Verb::Resolve => "resolved",
        }
    }
}

/// What a recorded decision says after "Acknowledged", "Already …": "by <@U1> at 10:42 UTC", or for a silence
/// "until 11:42 UTC by <@U1>".
fn decided(verb: Verb, actor: &str, at_ms: i64) -> String {
    match verb {
        Verb::Silence => format!(
            "until {} by <@{actor}>",
            clock(at_ms.saturating_add(SILENCE_MS))
        ),
        _ => format!("by <@{actor}> at {}", clock(at_ms)),
    }
}

/// The card's line for a recorded decision: "Acknowledged by <@U1> at 10:42 UTC", "Silenced until 11:42 UTC by
/// <@U1>".
fn decision_line(action: &str, actor: &str, at_ms: i64) -> String {
    match Verb::parse(action) {
        Some(v) => {
            let past = v.past();
            let capital = past[..1].to_ascii_uppercase();
            format!("{capital}{} {}", &past[1..], decided(v, actor, at_ms))
        }
        None => format!("{action} by <@{actor}> at {}", clock(at_ms)),
    }
}

/// The handlers Sluice answers Slack with.
pub fn registry(state: Arc<AppState>, permissions: Arc<Permissions>, command: &str) -> Registry {
    let mut r = Registry::new();
    for verb in Verb::ALL {
        let (state, permissions) = (state.clone(), permissions.clone());
        r.action(verb.action_id(), move |ctx: Ctx<ActionPayload>| {
            let (state, permissions) = (state.clone(), permissions.clone());
            async move { clicked(&state, &permissions, verb, ctx).await }
        });
    }
    let (s, p) = (state.clone(), permissions);
    r.event("reaction_added", move |ctx: Ctx<EventCallback>| {
        let (s, p) = (s.clone(), p.clone());
        async move { reacted(&s, &p, ctx).await }
    });
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

fn clock(at_ms: i64) -> String {
    sluice_core::render::hh_mm(crate::living::at(at_ms))
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

/// Someone acting on a card, however they did it.
struct Act {
    verb: Verb,
    user: String,
    /// Any event of the alert (the card's buttons carry its first event's id).
    event_id: String,
    /// The card: channel id and ts.
    channel: String,
    ts: String,
    /// `"button"` or `"reaction"`, for the audit log.
    via: &'static str,
    /// The alert's event, when the handler already read it (a reaction checks it is an alert's card).
    event: Option<Event>,
}

/// How the person who acted hears back.
enum Answer<'a> {
    /// Through the click's `response_url`.
    Click(&'a Ctx<ActionPayload>),
    /// A reaction has no `response_url`: `chat.postEphemeral` through the outbox. Only refusals are said; a
    /// reaction on an alert someone already acknowledged is just a reaction.
    Reaction,
}

async fn clicked(
    state: &AppState,
    permissions: &Permissions,
    verb: Verb,
    ctx: Ctx<ActionPayload>,
) -> HandlerResult<()> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the click came without a user"))?;
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
    let act = Act {
        verb,
        user,
        event_id,
        channel,
        ts,
        via: "button",
        event: None,
    };
    take(state, permissions, act, Answer::Click(&ctx)).await
}

/// `reaction_added`: the configured emoji on one of our alert cards acknowledges the alert, exactly like the
/// button. Any other reaction, or one on a message that is not an alert card, is none of our business.
async fn reacted(
    state: &AppState,
    permissions: &Permissions,
    ctx: Ctx<EventCallback>,
) -> HandlerResult<()> {
    let Some(wanted) = state.config.actions.ack_reaction.as_deref() else {
        return Ok(());
    };
    let Some(event) = ctx.payload.event.as_ref() else {
        return Ok(());
    };
    // Skin tones arrive as "thumbsup::skin-tone-2".
    let reaction = event.raw["reaction"].as_str().unwrap_or_default();
    if reaction.split("::").next() != Some(wanted) {
        return Ok(());
    }
    let item = &event.raw["item"];
    let (Some("message"), Some(channel), Some(ts), Some(user)) = (
        item["type"].as_str(),
        item["channel"].as_str(),
        item["ts"].as_str(),
        event.user.as_deref(),
    ) else {
        return Ok(());
    };
    let Some(event_id) = state
        .store
        .event_of_message(channel, ts)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
    else {
        return Ok(());
    };
    let Some(event) = state
        .store
        .event(&event_id)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
        .and_then(|s| serde_json::from_value::<Event>(s.body).ok())
        .filter(|e| e.kind == Kind::Alert)
    else {
        return Ok(());
    };
    let act = Act {
        verb: Verb::Ack,
        user: user.to_string(),
        event_id,
        channel: channel.to_string(),
        ts: ts.to_string(),
        via: "reaction",
        event: Some(event),
    };
    take(state, permissions, act, Answer::Reaction).await
}

/// Tells `act.user` something only they see, in the card's channel.
async fn tell(state: &AppState, act: &Act, answer: &Answer<'_>, text: String) -> HandlerResult<()> {
    match answer {
        Answer::Click(ctx) => Ok(ctx.reply(Reply::ephemeral(text)).await?),
        Answer::Reaction => {
            let args = json!({ "channel": act.channel, "user": act.user, "text": text });
            let item = outbox_item(
                &state.config.slack.team_id,
                &act.channel,
                "chat.postEphemeral",
                args,
            );
            enqueue(
                state,
                &format!("alert.{}", act.verb.as_str()),
                json!({ "actor": act.user }),
                vec![item],
                None,
            )
            .await
        }
    }
}

/// Checks, decides once, carries out and audits one action on an alert card.
async fn take(
    state: &AppState,
    permissions: &Permissions,
    mut act: Act,
    answer: Answer<'_>,
) -> HandlerResult<()> {
    let verb = act.verb;
    let action = format!("alert.{}", verb.as_str());
    let target = format!("{} {}:{}", act.event_id, act.channel, act.ts);
    let mut detail =
        json!({ "event_id": act.event_id, "channel": act.channel, "ts": act.ts, "via": act.via });
    let user = act.user.as_str();
    let cfg = &state.config.actions;

    if !permissions.may_act(user, &act.channel).await {
        audit(
            state,
            user,
            &action,
            &target,
            "refused: not allowed",
            detail,
        )
        .await;
        return tell(
            state,
            &act,
            &answer,
            format!(
                "You are not allowed to {} alerts here. Ask an admin to add you to `[actions]` in sluice.toml.",
                verb.infinitive()
            ),
        )
        .await;
    }
    if verb == Verb::Escalate && !cfg.can_escalate() {
        audit(
            state,
            user,
            &action,
            &target,
            "refused: not configured",
            detail,
        )
        .await;
        return tell(
            state,
            &act,
            &answer,
            "Escalation is not configured. Ask an admin to set `escalate_group` or `escalate_channel` under `[actions]` in sluice.toml.".into(),
        )
        .await;
    }
    let event: Event = match act.event.take() {
        Some(event) => event,
        None => {
            let stored = state
                .store
                .event(&act.event_id)
                .await
                .map_err(|e| HandlerError::new(e.to_string()))?
                .ok_or_else(|| {
                    HandlerError::new(format!("alert {} is no longer stored", act.event_id))
                })?;
            serde_json::from_value(stored.body).map_err(|e| {
                HandlerError::new(format!("alert {} cannot be read: {e}", act.event_id))
            })?
        }
    };

    let at_ms = now_ms();
    match state
        .store
        .record_alert_action(&act.event_id, verb.as_str(), user, at_ms)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
    {
        AckOutcome::AlreadyBy { actor, at_ms } => {
            let result = format!("refused: already {} by {actor}", verb.past());
            audit(state, user, &action, &target, &result, detail).await;
            if let Answer::Click(_) = answer {
                let said = format!("Already {} {}.", verb.past(), decided(verb, &actor, at_ms));
                tell(state, &act, &answer, said).await?;
            }
        }
        AckOutcome::Recorded => {
            let mut outbox = Vec::new();
            match verb {
                Verb::Silence => {
                    let silence = NewSilence {
                        matchers: identity_matchers(&event),
                        starts_at_ms: at_ms,
                        ends_at_ms: at_ms + SILENCE_MS,
                        author: user.to_string(),
                        comment: "from Slack".into(),
                    };
                    let created = match state.store.create_silence(silence, at_ms).await {
                        Ok(s) => s,
                        Err(e) => {
                            let result = format!("error: the silence could not be created: {e}");
                            audit(state, user, &action, &target, &result, detail).await;
                            return Err(HandlerError::new(format!(
                                "the alert is marked silenced but the silence could not be created ({e}); create it with POST /v1/silences"
                            )));
                        }
                    };
                    if let Err(e) = state.refresh_silences(true).await {
                        tracing::warn!(error = %e, "silences not reloaded; the next refresh will");
                    }
                    detail["silence"] = json!({ "id": created.id, "ends_at_ms": created.ends_at_ms, "matchers": created.matchers });
                }
                Verb::Resolve => outbox.push(outbox_item(
                    &state.config.slack.team_id,
                    &act.channel,
                    "chat.postMessage",
                    json!({
                        "channel": act.channel, "thread_ts": act.ts,
                        "text": format!("✅ Resolved by <@{user}> at {}.", clock(at_ms)),
                    }),
                )),
                Verb::Escalate => {
                    // A read, not a write: the link goes into the escalation message.
                    let link = match permissions
                        .slack
                        .chat_get_permalink(&act.channel, &act.ts)
                        .await
                    {
                        Ok(link) => Some(link),
                        Err(e) => {
                            tracing::warn!(error = %e, "no permalink for the escalated card; naming channel and ts instead");
                            None
                        }
                    };
                    outbox.extend(escalation(state, &act, &event, link.as_deref(), at_ms));
                }
                Verb::Ack => {}
            }
            let (refresh, follow_up) = card_refresh(state, &act, &event).await?;
            outbox.extend(refresh);
            enqueue(
                state,
                &action,
                json!({ "actor": user, "target": target }),
                outbox,
                follow_up,
            )
            .await?;
            audit(state, user, &action, &target, "ok", detail).await;
        }
    }
    Ok(())
}

/// Where an escalation goes: with an escalation channel, a message there (mentioning the on-call group if there is
/// one) that links to the card, and a note in the card's thread saying where it went; with only a group, the
/// mention in the card's thread. The group is mentioned once, so it is notified once.
fn escalation(
    state: &AppState,
    act: &Act,
    event: &Event,
    permalink: Option<&str>,
    at_ms: i64,
) -> Vec<NewOutboxItem> {
    let cfg = &state.config.actions;
    let team = &state.config.slack.team_id;
    let user = &act.user;
    let mention = cfg
        .escalate_group
        .as_ref()
        .map(|g| format!("<!subteam^{g}> "))
        .unwrap_or_default();
    let title = escape_mrkdwn(&event.title);
    let service = if event.service.is_empty() {
        String::new()
    } else {
        format!(" ({})", escape_mrkdwn(&event.service))
    };
    let thread = |text: String| {
        outbox_item(
            team,
            &act.channel,
            "chat.postMessage",
            json!({ "channel": act.channel, "thread_ts": act.ts, "text": text }),
        )
    };
    match &cfg.escalate_channel {
        Some(channel) => {
            let card = match permalink {
                Some(link) => format!("<{link}|the alert card>"),
                None => format!("the alert card in <#{}> (message {})", act.channel, act.ts),
            };
            let text = format!(
                ":rotating_light: {mention}*{title}*{service} was escalated by <@{user}> at {}: see {card}.",
                clock(at_ms)
            );
            let where_to = if channel.starts_with(['C', 'G'])
                && channel
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                format!("<#{channel}>")
            } else {
                format!("#{channel}")
            };
            vec![
                outbox_item(
                    team,
                    channel,
                    "chat.postMessage",
                    json!({ "channel": channel, "text": text }),
                ),
                thread(format!(
                    ":rotating_light: Escalated by <@{user}> to {where_to}."
                )),
            ]
        }
        None => vec![thread(format!(
            ":rotating_light: {mention}this alert was escalated by <@{user}> at {}.",
            clock(at_ms)
        ))],
    }
}

/// How the card shows a new decision. A deduplicated alert's cards are refreshed through the living-message path
/// (a follow-up: rendered at send time from the alert as it stands, count and all, coalesced with refreshes that
/// are already waiting), in every channel the alert was routed to. An alert without a dedup key has no duplicates,
/// so its card is rendered now, from the event, with count 1.
async fn card_refresh(
    state: &AppState,
    act: &Act,
    event: &Event,
) -> HandlerResult<(Vec<NewOutboxItem>, Option<FollowUp>)> {
    let team = &state.config.slack.team_id;
    // A group's card (noise control) is the flusher's to render: make the group due now and it is redrawn, with
    // the decision on it, at the next tick.
    if let Err(e) = state.store.touch_groups(&act.event_id, now_ms()).await {
        tracing::warn!(error = %e, "the group card was not marked for a refresh; it shows the decision at its next change");
    }
    if event.dedup_key.is_some() {
        if let Decision::Deliver { deliveries, .. } = state.config.router.route(event) {
            let refresh: Vec<NewOutboxItem> = deliveries
                .iter()
                .map(|d| living::item(team, &d.channel, "chat.update", Part::Card, &d.template))
                .collect();
            return Ok((
                Vec::new(),
                Some(FollowUp {
                    alert_of: act.event_id.clone(),
                    refresh,
                }),
            ));
        }
    }
    let update = rendered_card(state, act, event).await?;
    Ok((
        vec![outbox_item(team, &act.channel, "chat.update", update)],
        None,
    ))
}

/// The card of an alert without duplicates as it should look now: rendered from its event, resolved if someone
/// resolved it, with a line per recorded decision and no button for what is done.
async fn rendered_card(state: &AppState, act: &Act, event: &Event) -> HandlerResult<Value> {
    let actions = state
        .store
        .alert_actions(&act.event_id)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?;
    let mut event = event.clone();
    if actions.iter().any(|a| a.0 == Verb::Resolve.as_str()) {
        event.status = Status::Resolved;
    }
    let ctx = RenderContext {
        event_id: &act.event_id,
        channel: &act.channel,
        template: "auto",
        count: 1,
        now: now(),
    };
    let mut args = state
        .config
        .renderer
        .render(&event, &ctx)
        .map_err(|e| HandlerError::new(e.to_string()))?;
    show_actions(&mut args, &actions);
    args["channel"] = json!(act.channel);
    args["ts"] = json!(act.ts);
    fit_message(&mut args);
    Ok(args)
}

/// Puts the recorded decisions `(action, actor, at_ms)` on a rendered card: one context line each, and no button
/// for what is already done. Used by every card refresh, so a duplicate arriving after an acknowledgement does not
/// bring the button back.
pub fn show_actions(args: &mut Value, actions: &[(String, String, i64)]) {
    let done: Vec<&str> = actions
        .iter()
        .filter_map(|a| Verb::parse(&a.0))
        .map(Verb::action_id)
        .collect();
    if let Some(blocks) = args["blocks"].as_array_mut() {
        for block in blocks.iter_mut() {
            if block["block_id"] == ACTIONS_BLOCK_ID {
                if let Some(elements) = block["elements"].as_array_mut() {
                    elements.retain(|e| !done.contains(&e["action_id"].as_str().unwrap_or("")));
                }
            }
        }
        blocks.retain(|b| {
            b["block_id"] != ACTIONS_BLOCK_ID
                || b["elements"].as_array().is_some_and(|e| !e.is_empty())
        });
        let lines: Vec<Value> = actions
            .iter()
            .map(|(action, actor, at_ms)| json!({"type": "mrkdwn", "text": decision_line(action, actor, *at_ms)}))
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
    outbox: Vec<NewOutboxItem>,
    follow_up: Option<FollowUp>,
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

async fn slash_command(state: &AppState, ctx: Ctx<SlashCommand>) -> HandlerResult<Option<Reply>> {
    let cmd = &ctx.payload;
    let word = cmd.text.split_whitespace().next().unwrap_or("help");
    let reply = match word {
        "status" => {
            let stats = state
                .store
                .outbox_stats(now_ms())
                .await
                .map_err(|e| HandlerError::new(e.to_string()))?;
            let silences = state
                .store
                .silences(false, now_ms())
                .await
                .map_err(|e| HandlerError::new(e.to_string()))?;
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
        "help" | "" => help_text(&cmd.command, &state.config.actions),
        other => format!("I don't know `{other}`. Try `{} help`.", cmd.command),
    };
    Ok(Some(Reply::ephemeral(reply)))
}

/// `/sluice help`: the commands, and what alert cards offer with this configuration.
fn help_text(command: &str, cfg: &ActionsConfig) -> String {
    let escalate = if cfg.can_escalate() {
        "*Escalate* (calls in on-call), "
    } else {
        ""
    };
    let reaction = cfg
        .ack_reaction
        .as_deref()
        .map(|r| format!("; react with :{r}: on a card to acknowledge it"))
        .unwrap_or_default();
    format!(
        "*{command}* — Sluice, the operations gateway\n\
         • `{command} status` — outbox, dead letters and silences\n\
         • `{command} help` — this message\n\
         Alert cards have *Acknowledge*, {escalate}*Silence 1 h* (mutes that alert for an hour) and *Resolve* \
         buttons{reaction}. Each is taken once per alert, and the card shows who did what."
    )
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
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sluice_core::render::Renderer;

    use super::*;

    const T: i64 = 1_714_559_400_000; // 10:30 UTC

    fn buttons(card: &Value) -> Vec<String> {
        card["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["block_id"] == ACTIONS_BLOCK_ID)
            .flat_map(|b| b["elements"].as_array().unwrap().clone())
            .map(|e| e["action_id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn each_decision_takes_its_button_away_and_says_who_and_when() {
        let event: Event =
            serde_json::from_value(json!({"title": "Disk full", "severity": "critical",
            "status": "firing", "source": "am", "service": "db"}))
            .unwrap();
        let renderer = Renderer::new(&BTreeMap::new())
            .unwrap()
            .offer_escalate(true);
        let ctx = RenderContext {
            event_id: "ev1",
            channel: "C1",
            template: "auto",
            count: 1,
            now: time::OffsetDateTime::UNIX_EPOCH,
        };
        let decided = |a: &str, u: &str, at: i64| (a.to_string(), u.to_string(), at);
        type Case<'a> = (Vec<(String, String, i64)>, &'a [&'a str], &'a [&'a str]);
        let cases: Vec<Case> = vec![
            (
                vec![],
                &[ACTION_ACK, ACTION_ESCALATE, ACTION_SILENCE, ACTION_RESOLVE],
                &[],
            ),
            (
                vec![decided("ack", "U1", T)],
                &[ACTION_ESCALATE, ACTION_SILENCE, ACTION_RESOLVE],
                &["Acknowledged by <@U1> at 10:30 UTC"],
            ),
            (
                vec![
                    decided("ack", "U1", T),
                    decided("escalate", "U2", T + 60_000),
                    decided("silence", "U3", T + 120_000),
                ],
                &[ACTION_RESOLVE],
                &[
                    "Acknowledged by <@U1> at 10:30 UTC",
                    "Escalated by <@U2> at 10:31 UTC",
                    "Silenced until 11:32 UTC by <@U3>",
                ],
            ),
        ];
        for (actions, left, lines) in cases {
            let mut card = renderer.render(&event, &ctx).unwrap();
            show_actions(&mut card, &actions);
            assert_eq!(buttons(&card), left, "{actions:?}");
            let text = card.to_string();
            for line in lines {
                assert!(text.contains(line), "{line} missing: {text}");
            }
        }
        // Every button gone: no empty actions block is left (Slack refuses one).
        let mut card = renderer.render(&event, &ctx).unwrap();
        let all: Vec<_> = Verb::ALL
            .iter()
            .map(|v| decided(v.as_str(), "U1", T))
            .collect();
        show_actions(&mut card, &all);
        assert!(!card.to_string().contains(ACTIONS_BLOCK_ID));
    }

    #[test]
    fn help_names_what_the_cards_offer_here() {
        let plain = help_text("/sluice", &ActionsConfig::default());
        assert!(plain.contains("*Acknowledge*, *Silence 1 h*"), "{plain}");
        assert!(plain.contains("react with :eyes:"), "{plain}");
        let cfg = ActionsConfig {
            escalate_group: Some("S1".into()),
            ack_reaction: None,
            ..ActionsConfig::default()
        };
        let t = help_text("/ops", &cfg);
        assert!(
            t.contains("`/ops status`") && t.contains("*Escalate*"),
            "{t}"
        );
        assert!(!t.contains("react with"), "{t}");
    }

    #[test]
    fn a_decision_this_version_does_not_know_is_still_shown() {
        assert_eq!(decision_line("page", "U9", T), "page by <@U9> at 10:30 UTC");
    }
}
