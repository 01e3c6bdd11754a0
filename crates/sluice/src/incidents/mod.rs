//! Incidents: the thin handler around `sluice_domain::incident` (the state machine, the card, the summary).
//!
//! - Declaring (`/ops incident declare`, a reaction on a message in a watched channel, the
//!   *Declare incident* message shortcut: [`declare`]) commits the
//!   incident under its unique declare key with its first outbox row: the lookup's signed call when the type has a
//!   `lookup`, else the war room's `conversations.create`. Declaring twice finds the first incident.
//! - The war room needs Slack's answer (the new channel's id) before anything can be invited, pinned or announced.
//!   The dispatcher tells this module when such a call ended ([`Hooks`], like an `[[action]]` run's `call_ended`):
//!   [`Hooks::lookup_ended`] records the lookup's context (or its failure) and commits the `conversations.create`;
//!   [`Hooks::room_created`] records the channel id and commits the rest in one transaction: the invite, the topic and
//!   purpose, the card and its pin (linked to the card's post), and the announcement.
//! - Updates (`command.rs`) and notes by reaction load the incident from its war room, `decide`, and commit the new
//!   state, the timeline lines and the card's and announcement's `chat.update`s on the version they read.
//! - `reminders.rs`: one leader reminds quiet incidents and archives resolved war rooms when configured.

mod command;
mod reminders;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};
use sluice_domain::incident::{self, slug, RoomMessage};
use sluice_domain::outbox::{lane, outbox_item};
use sluice_domain::outgoing::http_item;
use sluice_inbound::models::{EventCallback, Shortcut};
use sluice_inbound::{ActionPayload, Ctx, HandlerError, HandlerResult, Registry, Reply};
use sluice_slack::api::Client;
use sluice_store::{
    Declared, IncidentCommit, IncidentItem, IncidentPost, IncidentRecord, NewIncident,
    NewOutboxItem, NewTimelineEntry, Store, TimelineEntry,
};

pub use command::command;
pub use reminders::run_reminders;

use crate::alerts::Permissions;
use crate::commands::clock::now_ms;
use crate::config::incidents::IncidentType;
use crate::outbox::audit;
use crate::state::AppState;

fn store_error(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::new(e.to_string())
}

/// Adds the alert cards' *Declare incident* button's handler (before the `[[action]]` buttons' pattern: an exact
/// `action_id` is matched first). Each click counts, as for `[[action]]` buttons; the alert's declare key makes a
/// double click one incident.
pub fn register(r: &mut Registry, state: Arc<AppState>, slack: Client) {
    if state.config.incidents.is_empty() {
        return;
    }
    let (s, c) = (state.clone(), slack.clone());
    r.shortcut(DECLARE_SHORTCUT, move |ctx: Ctx<Shortcut>| {
        let (s, c) = (s.clone(), c.clone());
        async move { shortcut(&s, &c, ctx).await }
    });
    let id = format!(
        "{}{}",
        sluice_core::render::RUN_ACTION_PREFIX,
        crate::config::incidents::DECLARE_BUTTON
    );
    r.action(&id, move |ctx: Ctx<ActionPayload>| {
        let (s, c) = (state.clone(), slack.clone());
        async move { card_clicked(&s, &c, ctx).await }
    });
}

/// The message shortcut's `callback_id` (*Declare incident* in a message's ⋯ menu; `sluice manifest` declares it).
pub const DECLARE_SHORTCUT: &str = "sluice_declare_incident";

/// The title an incident declared from a message gets: its first line (60 characters at most), or where it came from.
fn title_from(text: &str, channel_name: &str) -> String {
    let first = text.lines().next().unwrap_or_default().trim();
    let t: String = first.chars().take(60).collect();
    if t.is_empty() {
        format!("escalation from #{channel_name}")
    } else {
        t
    }
}

/// *Declare incident* from a message's menu: the incident type watching the message's channel (else the default
/// type), the message's text and permalink on the card. Its key is the message's, as a reaction's is, so a shortcut
/// and a reaction on one message (or two clicks) make one incident.
async fn shortcut(state: &AppState, slack: &Client, ctx: Ctx<Shortcut>) -> HandlerResult<()> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the shortcut came without a user"))?;
    let p = &ctx.payload;
    let (Some(ch), Some(message)) = (p.channel.as_ref(), p.message.as_ref()) else {
        ctx.reply(Reply::ephemeral(
            "Declare incident works from a message's menu (⋯ → Declare incident).",
        ))
        .await?;
        return Ok(());
    };
    let channel = ch.id.clone();
    let name = ch.name.clone().unwrap_or_default();
    let ts = p
        .message_ts
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| message.ts.clone());
    let incidents = &state.config.incidents;
    let Some(t) = incidents
        .types
        .iter()
        .find(|t| {
            t.watch_channels
                .iter()
                .any(|w| w == &channel || (!name.is_empty() && w == &name))
        })
        .or_else(|| incidents.default_type())
    else {
        return Ok(());
    };
    if !may_declare(slack, t, &user, &channel).await {
        audit(
            state,
            &user,
            "incident.declare",
            &format!("{channel}/{ts}"),
            "refused: not permitted to declare",
            json!({"type": t.name, "via": "shortcut"}),
        )
        .await;
        ctx.reply(Reply::ephemeral(format!(
            "You may not declare {} incidents.",
            t.name
        )))
        .await?;
        return Ok(());
    }
    let text = message.text.clone().unwrap_or_default();
    let origin = Origin {
        via: "shortcut",
        channel: channel.clone(),
        ts: Some(ts.clone()),
        text: Some(text.clone()),
        permalink: slack.chat_get_permalink(&channel, &ts).await.ok(),
    };
    let declared = declare(
        state,
        t,
        &format!("msg:{channel}:{ts}"),
        &title_from(&text, &name),
        t.default_sev,
        &user,
        &origin,
    )
    .await
    .map_err(HandlerError::new)?;
    ctx.reply(Reply::ephemeral(declared_text(&declared)))
        .await?;
    Ok(())
}

/// An alert's severity as an incident's: critical 1, error 2, warning 3, anything else 4.
fn sev_of(severity: &str) -> u8 {
    match severity {
        "critical" => 1,
        "error" => 2,
        "warning" => 3,
        _ => 4,
    }
}

async fn card_clicked(
    state: &AppState,
    slack: &Client,
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
        .ok_or_else(|| HandlerError::new("this button carries no event id"))?;
    let body = &ctx.payload.body;
    let channel = body
        .channel_id()
        .ok_or_else(|| HandlerError::new("the click came without a channel"))?;
    let ts = body.message_ts();
    let Some(t) = state.config.incidents.default_type() else {
        return Ok(());
    };
    if !may_declare(slack, t, &user, &channel).await {
        audit(
            state,
            &user,
            "incident.declare",
            &event_id,
            "refused: not permitted to declare",
            json!({"type": t.name, "via": "card"}),
        )
        .await;
        ctx.reply(Reply::ephemeral(format!(
            "You may not declare {} incidents.",
            t.name
        )))
        .await?;
        return Ok(());
    }
    let Some(event) = state.store.event(&event_id).await.map_err(store_error)? else {
        ctx.reply(Reply::ephemeral("This alert is no longer stored."))
            .await?;
        return Ok(());
    };
    let title = event.body["title"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or("alert")
        .to_string();
    let sev = sev_of(event.body["severity"].as_str().unwrap_or_default());
    let permalink = match &ts {
        Some(ts) => slack.chat_get_permalink(&channel, ts).await.ok(),
        None => None,
    };
    let origin = Origin {
        via: "card",
        channel: channel.clone(),
        ts: ts.clone(),
        text: Some(title.clone()),
        permalink,
    };
    let declared = declare(
        state,
        t,
        &format!("alert:{event_id}"),
        &title,
        sev,
        &user,
        &origin,
    )
    .await
    .map_err(HandlerError::new)?;
    ctx.reply(Reply::ephemeral(declared_text(&declared)))
        .await?;
    Ok(())
}

/// What the declarer is told, however they declared: the war room being set up, or the incident already declared
/// (titles come from alerts and people's messages: escaped, so they cannot mention anyone).
pub fn declared_text(declared: &Declared) -> String {
    let r = &declared.incident;
    let title = sluice_slack_wire::blocks::escape_mrkdwn(&r.title);
    let room = match &r.channel_id {
        Some(id) => format!("<#{id}>"),
        None => format!("#{}", r.channel_name),
    };
    if declared.created {
        format!(
            "Declared *{title}* (SEV{}). The war room {room} is being set up; you will be invited.",
            r.sev
        )
    } else {
        format!("*{title}* is already declared: join {room}.")
    }
}

/// What an incident was declared from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `command`, `reaction`, `shortcut` or `card`.
    pub via: &'static str,
    pub channel: String,
    pub ts: Option<String>,
    pub text: Option<String>,
    pub permalink: Option<String>,
}

/// May `user` declare an incident of type `t` (in `channel`)?
pub async fn may_declare(slack: &Client, t: &IncidentType, user: &str, channel: &str) -> bool {
    Permissions::listed(
        t.declare_users.clone(),
        t.declare_groups.clone(),
        false,
        slack.clone(),
    )
    .may_act(user, channel)
    .await
}

/// May `user` resolve incidents of type `t`, give roles and change their severity?
pub async fn may_resolve(slack: &Client, t: &IncidentType, user: &str, channel: &str) -> bool {
    Permissions::listed(
        t.resolve_users.clone(),
        t.resolve_groups.clone(),
        false,
        slack.clone(),
    )
    .may_act(user, channel)
    .await
}

fn line(author: &str, kind: &str, text: String) -> NewTimelineEntry {
    NewTimelineEntry {
        at_ms: now_ms(),
        author: author.to_string(),
        kind: kind.to_string(),
        text,
    }
}

fn plain(item: NewOutboxItem) -> IncidentItem {
    IncidentItem {
        item,
        on: None,
        is: None,
    }
}

/// The `conversations.create` of an incident's war room, in a lane of its own.
fn create_item(state: &AppState, r: &IncidentRecord, t: &IncidentType) -> NewOutboxItem {
    let team = &state.config.slack.team_id;
    let mut item = outbox_item(
        team,
        &r.channel_name,
        "conversations.create",
        json!({"name": r.channel_name, "is_private": t.private}),
    );
    item.lane = lane(team, &format!("incident:{}", r.id));
    item
}

/// The lookup's signed call, or why it cannot be made.
fn lookup_item(
    state: &AppState,
    t: &IncidentType,
    id: &str,
    title: &str,
    declarer: &str,
    origin: &Value,
) -> Option<Result<NewOutboxItem, String>> {
    let name = t.lookup.as_deref()?;
    let Some(action) = state.config.action_defs.get(name) else {
        return Some(Err(format!("the lookup action {name:?} is not configured")));
    };
    let context = json!({
        "incident": {"id": id, "title": title, "type": t.name},
        "message": origin,
        "user": {"id": declarer},
    });
    Some((|| {
        let request = state.config.action_defs.request(action, &context)?;
        // An action without a body of its own is sent what the lookup is about.
        let body = if request.body == json!({}) {
            context.clone()
        } else {
            request.body
        };
        let mut call = http_item(
            &request.url,
            body,
            id,
            &format!("incident.lookup.{name}"),
            action.timeout_ms,
        )?;
        call.args["method"] = json!(action.method);
        call.args["action"] = json!(action.name);
        call.args["incident_id"] = json!(id);
        Ok(call)
    })())
}

/// Declares an incident of type `t` (permission already checked): commits it once per `key` with its first
/// outbox row, and audits it. `Ok(Declared { created: false, .. })` names the incident declared before.
#[allow(clippy::too_many_arguments)]
pub async fn declare(
    state: &AppState,
    t: &IncidentType,
    key: &str,
    title: &str,
    sev: u8,
    declarer: &str,
    origin: &Origin,
) -> Result<Declared, String> {
    let now = now_ms();
    let id = format!("inc_{}", uuid::Uuid::now_v7().simple());
    let date = chrono::DateTime::from_timestamp_millis(now)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let vars = json!({
        "date": date, "slug": slug(title), "title": title, "sev": sev, "type": t.name, "id": id,
    });
    let channel_name = t.channel_name(&vars)?;
    let origin_json = json!({
        "via": origin.via, "channel": origin.channel, "ts": origin.ts, "text": origin.text,
        "permalink": origin.permalink,
    });
    let new = NewIncident {
        id: id.clone(),
        declare_key: format!("{}:{key}", t.name),
        kind: t.name.clone(),
        title: title.to_string(),
        sev,
        channel_name: channel_name.clone(),
        declarer: declarer.to_string(),
        origin: origin_json.clone(),
        created_at_ms: now,
        remind_at_ms: t.reminders.get(&sev).map(|m| now + m * 60_000),
    };
    let placeholder = IncidentRecord {
        id: id.clone(),
        declare_key: new.declare_key.clone(),
        kind: t.name.clone(),
        title: title.to_string(),
        sev,
        status: "investigating".into(),
        channel_name,
        channel_id: None,
        declarer: declarer.to_string(),
        roles: Default::default(),
        origin: origin_json.clone(),
        context: Value::Null,
        created_at_ms: now,
        resolved_at_ms: None,
        remind_at_ms: None,
        version: 0,
        card_item_id: None,
        card: None,
        announcement_item_id: None,
        announcement: None,
    };
    let first = match lookup_item(state, t, &id, title, declarer, &origin_json) {
        Some(Ok(call)) => call,
        Some(Err(e)) => {
            tracing::warn!(incident = %id, error = %e, "the lookup cannot be made; creating the war room without it");
            create_item(state, &placeholder, t)
        }
        None => create_item(state, &placeholder, t),
    };
    let declared = state
        .store
        .declare_incident(
            new,
            line(
                declarer,
                "declared",
                format!("declared via {}: {title} (SEV{sev})", origin.via),
            ),
            vec![plain(first)],
        )
        .await
        .map_err(|e| e.to_string())?;
    state.wake.notify_one();
    let result = if declared.created {
        "ok".to_string()
    } else {
        format!("already declared: {}", declared.incident.id)
    };
    audit(
        state,
        declarer,
        "incident.declare",
        &declared.incident.id,
        &result,
        json!({"type": t.name, "title": title, "sev": sev, "via": origin.via, "key": key}),
    )
    .await;
    Ok(declared)
}

/// Loads the incident, lets `change` build a commit on it, and commits it on the version read; a lost race reads
/// again and asks again. `None` from `change`: nothing to do.
pub async fn commit_with<F>(
    store: &dyn Store,
    id: &str,
    mut change: F,
) -> Result<Option<IncidentRecord>, String>
where
    F: FnMut(&IncidentRecord) -> Option<IncidentCommit>,
{
    for _ in 0..8 {
        let Some(r) = store.incident(id).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let Some(c) = change(&r) else {
            return Ok(None);
        };
        if store
            .commit_incident(c, now_ms())
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Some(r));
        }
    }
    Err(format!("incident {id} kept changing; not committed"))
}

/// `r` as it stands after commit `c` (for drawing the card before it is read again).
pub fn applied(r: &IncidentRecord, c: &IncidentCommit) -> IncidentRecord {
    IncidentRecord {
        status: c.status.clone(),
        sev: c.sev,
        roles: c.roles.clone(),
        channel_id: c.channel_id.clone(),
        context: c.context.clone(),
        resolved_at_ms: c.resolved_at_ms,
        remind_at_ms: c.remind_at_ms,
        ..r.clone()
    }
}

/// The timeline as it will read after `c`'s lines.
pub fn with_lines(timeline: &[TimelineEntry], c: &IncidentCommit) -> Vec<TimelineEntry> {
    let mut all = timeline.to_vec();
    let last = all.last().map_or(0, |e| e.seq);
    for (seq, l) in (last + 1..).zip(c.timeline.iter()) {
        all.push(TimelineEntry {
            seq,
            at_ms: l.at_ms,
            author: l.author.clone(),
            kind: l.kind.clone(),
            text: l.text.clone(),
        });
    }
    all
}

/// The war room's topic: severity, status, title (Slack keeps 250 characters).
fn topic(r: &IncidentRecord) -> String {
    format!("SEV{} · {} · {}", r.sev, r.status, r.title)
        .chars()
        .take(250)
        .collect()
}

/// The card's and the announcement's `chat.update`s (and the war room's topic while it is open), drawn from the
/// incident as it will stand.
pub fn refresh_items(
    state: &AppState,
    r: &IncidentRecord,
    timeline: &[TimelineEntry],
) -> Vec<IncidentItem> {
    let team = &state.config.slack.team_id;
    let mut items = Vec::new();
    if let Some(room) = &r.channel_id {
        let mut args = incident::card(r, timeline);
        args["channel"] = json!(room);
        items.push(IncidentItem {
            item: outbox_item(team, room, "chat.update", args),
            on: Some(IncidentPost::Card),
            is: None,
        });
        if r.status != "resolved" {
            items.push(plain(outbox_item(
                team,
                room,
                "conversations.setTopic",
                json!({"channel": room, "topic": topic(r)}),
            )));
        }
    }
    if let Some(t) = state.config.incidents.get(&r.kind) {
        if let Some(ch) = &t.announce_channel {
            let mut args = incident::announcement(r);
            args["channel"] = json!(ch);
            items.push(IncidentItem {
                item: outbox_item(team, ch, "chat.update", args),
                on: Some(IncidentPost::Announcement),
                is: None,
            });
        }
    }
    items
}

/// The war room's messages, oldest first, with whether each carries the note reaction (for the summary).
pub async fn room_messages(slack: &Client, channel: &str, note_reaction: &str) -> Vec<RoomMessage> {
    let read = slack
        .call(
            "conversations.history",
            &json!({"channel": channel, "limit": 200}),
        )
        .await;
    let Ok(v) = read else {
        tracing::warn!(%channel, "could not read the war room's history for the summary");
        return vec![];
    };
    let mut out: Vec<RoomMessage> = v["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m["bot_id"].is_null() && m["subtype"].is_null())
                .map(|m| RoomMessage {
                    user: m["user"].as_str().unwrap_or_default().to_string(),
                    text: m["text"].as_str().unwrap_or_default().to_string(),
                    pinned: m["reactions"].as_array().is_some_and(|rs| {
                        rs.iter().any(|r| r["name"].as_str() == Some(note_reaction))
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    out.reverse();
    out
}

/// What the dispatcher tells incidents: a call they wait on ended.
pub struct Hooks {
    pub state: Arc<AppState>,
    pub slack: Client,
}

impl Hooks {
    /// The lookup answered (`Ok(body)`) or failed for good (`Err(reason)`): record its context, then create the
    /// war room.
    pub async fn lookup_ended(&self, id: &str, answer: Result<&str, String>) {
        let state = &*self.state;
        let context = match answer {
            Ok(body) => match serde_json::from_str::<Value>(body) {
                Ok(v) if v.is_object() => v,
                _ => json!({"error": "the lookup's answer is not a JSON object"}),
            },
            Err(reason) => json!({"error": reason}),
        };
        let said = match context["error"].as_str() {
            Some(e) => format!("lookup failed: {e}"),
            None => format!(
                "lookup: {}",
                serde_json::to_string(&context).unwrap_or_default()
            ),
        };
        let result = commit_with(&*state.store, id, |r| {
            if !r.context.is_null() {
                return None;
            }
            let t = state.config.incidents.get(&r.kind)?;
            let mut c = IncidentCommit::on(r);
            c.context = context.clone();
            c.timeline.push(line("sluice", "lookup", said.clone()));
            c.items.push(plain(create_item(state, r, t)));
            Some(c)
        })
        .await;
        match result {
            Ok(_) => state.wake.notify_one(),
            Err(e) => {
                tracing::error!(incident = %id, error = %e, "the lookup's result was not recorded")
            }
        }
    }

    /// Slack created the war room `channel` (named `name`): record it and commit everything that needed its id.
    pub async fn room_created(&self, id: &str, channel: &str, name: &str) {
        let state = &*self.state;
        let Ok(Some(r)) = state.store.incident(id).await else {
            return;
        };
        let Some(t) = state.config.incidents.get(&r.kind).cloned() else {
            return;
        };
        // Who to invite: the declarer, the listed people, the groups' members, the rotation's on-call and the
        // people the lookup named. Reads (user groups) are made before the commit.
        let mut people: BTreeSet<String> = BTreeSet::new();
        people.insert(r.declarer.clone());
        people.extend(t.invite_users.iter().cloned());
        for g in &t.invite_groups {
            match self.slack.usergroups_users_list(g).await {
                Ok(users) => people.extend(users),
                Err(e) => {
                    tracing::warn!(incident = %id, group = %g, error = %e, "could not read the group's members")
                }
            }
        }
        if let Some(rot) = t
            .rotation
            .as_ref()
            .and_then(|n| state.config.chatops.rotations.iter().find(|r| &r.name == n))
        {
            let now = chrono::DateTime::from_timestamp_millis(now_ms()).unwrap_or_default();
            if let Some(on) = rot.at(now).and_then(|o| o.now) {
                people.insert(on);
            }
        }
        people.retain(|u| !u.is_empty());
        // The lookup's people are invited in a call of their own: an id the lookup got wrong (`user_not_found`)
        // must not keep everyone else out.
        let named: Vec<String> = r.context["account_manager"]
            .as_str()
            .filter(|am| !am.is_empty() && !people.contains(*am))
            .map(|am| vec![am.to_string()])
            .unwrap_or_default();
        let team = state.config.slack.team_id.clone();
        let room = channel.to_string();
        let result = commit_with(&*state.store, id, |r| {
            if r.channel_id.is_some() {
                return None;
            }
            let mut c = IncidentCommit::on(r);
            c.channel_id = Some(room.clone());
            c.timeline
                .push(line("sluice", "room", format!("war room #{name} created")));
            let now_r = applied(r, &c);
            let item = |method: &str, args: Value| outbox_item(&team, &room, method, args);
            for users in [people.iter().cloned().collect::<Vec<_>>(), named.clone()] {
                if !users.is_empty() {
                    c.items.push(plain(item(
                        "conversations.invite",
                        // force: one id Slack refuses (a deactivated account, a typo in
                        // invite_users) must not keep everyone else out of the war room.
                        json!({"channel": room, "users": users.join(","), "force": true}),
                    )));
                }
            }
            c.items.push(plain(item(
                "conversations.setTopic",
                json!({"channel": room, "topic": topic(r)}),
            )));
            let purpose: String = format!(
                "Incident {} declared by <@{}>; /ops incident help for updates",
                r.title, r.declarer
            )
            .chars()
            .take(250)
            .collect();
            c.items.push(plain(item(
                "conversations.setPurpose",
                json!({"channel": room, "purpose": purpose}),
            )));
            let mut card = incident::card(&now_r, &[]);
            card["channel"] = json!(room);
            c.items.push(IncidentItem {
                item: item("chat.postMessage", card),
                on: None,
                is: Some(IncidentPost::Card),
            });
            c.items.push(IncidentItem {
                item: item("pins.add", json!({"channel": room})),
                on: Some(IncidentPost::Card),
                is: None,
            });
            if let Some(ch) = &t.announce_channel {
                let mut a = incident::announcement(&now_r);
                a["channel"] = json!(ch);
                c.items.push(IncidentItem {
                    item: outbox_item(&team, ch, "chat.postMessage", a),
                    on: None,
                    is: Some(IncidentPost::Announcement),
                });
            }
            Some(c)
        })
        .await;
        match result {
            Ok(Some(_)) => {
                audit(
                    state,
                    "sluice",
                    "incident.room",
                    id,
                    "ok",
                    json!({"channel": channel, "name": name, "invited": people, "named_by_lookup": named}),
                )
                .await;
                state.wake.notify_one();
            }
            Ok(None) => {}
            Err(e) => tracing::error!(incident = %id, error = %e, "the war room was not recorded"),
        }
    }

    /// The war room could not be created at all: say so on the timeline and to the declarer.
    pub async fn room_failed(&self, id: &str, reason: &str) {
        let state = &*self.state;
        let team = state.config.slack.team_id.clone();
        let _ = commit_with(&*state.store, id, |r| {
            let mut c = IncidentCommit::on(r);
            c.timeline.push(line(
                "sluice",
                "room",
                format!("the war room could not be created: {reason}"),
            ));
            let ch = r.origin["channel"].as_str().unwrap_or_default();
            if !ch.is_empty() {
                c.items.push(plain(outbox_item(
                    &team,
                    ch,
                    "chat.postEphemeral",
                    json!({"channel": ch, "user": r.declarer,
                           "text": format!("The war room for *{}* could not be created: {reason}", r.title)}),
                )));
            }
            Some(c)
        })
        .await;
        audit(
            state,
            "sluice",
            "incident.room",
            id,
            &format!("error: {reason}"),
            json!({}),
        )
        .await;
    }
}

/// A `reaction_added` incidents care about: the note reaction in a war room (the message goes on the timeline) or
/// a type's reaction in a watched channel (an escalation). `Ok(false)`: not ours, the alert actions may look.
pub async fn reacted(
    state: &AppState,
    slack: &Client,
    ctx: &Ctx<EventCallback>,
) -> HandlerResult<bool> {
    if state.config.incidents.is_empty() {
        return Ok(false);
    }
    let Some(event) = ctx.payload.event.as_ref() else {
        return Ok(false);
    };
    let reaction = event.raw["reaction"]
        .as_str()
        .unwrap_or_default()
        .split("::")
        .next()
        .unwrap_or_default()
        .to_string();
    let item = &event.raw["item"];
    let (Some("message"), Some(channel), Some(ts), Some(user)) = (
        item["type"].as_str(),
        item["channel"].as_str(),
        item["ts"].as_str(),
        event.user.as_deref(),
    ) else {
        return Ok(false);
    };
    let types = &state.config.incidents.types;
    if types.iter().any(|t| t.note_reaction == reaction) {
        if let Some(r) = state
            .store
            .incident_in_channel(channel)
            .await
            .map_err(store_error)?
        {
            let text = message_text(slack, channel, ts).await.unwrap_or_default();
            if text.trim().is_empty() {
                return Ok(true);
            }
            command::apply(
                state,
                slack,
                &r,
                user,
                incident::Input::Note { text, pinned: true },
                "reaction",
            )
            .await?;
            return Ok(true);
        }
    }
    let Some(t) = types
        .iter()
        .find(|t| t.reaction.as_deref() == Some(reaction.as_str()))
    else {
        return Ok(false);
    };
    let name = match slack.conversations_info(channel).await {
        Ok(c) => c.name.unwrap_or_default(),
        Err(_) => String::new(),
    };
    if !t
        .watch_channels
        .iter()
        .any(|w| w == channel || (!name.is_empty() && w == &name))
    {
        return Ok(false);
    }
    let team = state.config.slack.team_id.clone();
    if !may_declare(slack, t, user, channel).await {
        audit(
            state,
            user,
            "incident.declare",
            &format!("{channel}/{ts}"),
            "refused: not permitted to declare",
            json!({"type": t.name, "via": "reaction"}),
        )
        .await;
        let note = outbox_item(
            &team,
            channel,
            "chat.postEphemeral",
            json!({"channel": channel, "user": user,
                   "text": format!("You may not declare {} incidents.", t.name)}),
        );
        ctx.outbox
            .commit(sluice_inbound::Writes {
                what: "incident.refused".into(),
                detail: json!({"actor": user}),
                items: vec![note],
                follow_up: None,
            })
            .await
            .map_err(HandlerError::new)?;
        return Ok(true);
    }
    let text = message_text(slack, channel, ts).await.unwrap_or_default();
    let permalink = slack.chat_get_permalink(channel, ts).await.ok();
    let title = title_from(&text, &name);
    let origin = Origin {
        via: "reaction",
        channel: channel.to_string(),
        ts: Some(ts.to_string()),
        text: Some(text),
        permalink,
    };
    declare(
        state,
        t,
        &format!("msg:{channel}:{ts}"),
        &title,
        t.default_sev,
        user,
        &origin,
    )
    .await
    .map_err(HandlerError::new)?;
    Ok(true)
}

/// The text of message `ts` in `channel` (a read).
async fn message_text(slack: &Client, channel: &str, ts: &str) -> Option<String> {
    let v = slack
        .call(
            "conversations.history",
            &json!({"channel": channel, "latest": ts, "oldest": ts, "inclusive": true, "limit": 1}),
        )
        .await
        .ok()?;
    v["messages"]
        .as_array()?
        .iter()
        .find(|m| m["ts"].as_str() == Some(ts))
        .and_then(|m| m["text"].as_str())
        .map(str::to_string)
}
