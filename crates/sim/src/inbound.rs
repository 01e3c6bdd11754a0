//! Slack's side of the inbound half: the simulator acts as a workspace member and sends the app
//! what Slack would send. The methods live on [`Simulator`] (`click_button`, `react`,
//! `slash_command`, `send_event`, `resend_event`, `submit_view`, `options_request`,
//! `url_verification`); each answers a [`Delivered`].
//!
//! Delivery is signed HTTP to `{app_base_url}/slack/{events,interactions,commands,options}` in
//! Slack's encodings, or a Socket Mode envelope when the app is connected (see
//! [`crate::DeliverVia`]). Payloads are built from the recorded state (the message a button is on,
//! the view being submitted), so the app sees what it posted. Every attempt is recorded as a
//! [`Delivery`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sluice_slack_wire::signature::sign;
use sluice_slack_wire::Secret;

use crate::api::{self, str_arg};
use crate::model::{Delivery, Message};
use crate::state::{Ephemeral, State};
use crate::{DeliverVia, Simulator};

mod ephemeral;
mod functions;
mod typed;
pub use functions::Fired;
mod view_response;
pub(crate) use ephemeral::on_ephemeral;

/// The legacy verification token Slack still puts in payloads; apps must not rely on it.
pub const VERIFICATION_TOKEN: &str = "sim-verification-token";
/// The workspace's domain (`team.domain`, `team_domain`).
pub const TEAM_DOMAIN: &str = "sluice-sim";
/// Socket Mode redelivers an unacknowledged envelope at most this many times.
pub const MAX_REDELIVERIES: u32 = 3;

/// What the app answered to one request from "Slack".
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// HTTP status; 200 for an acknowledged envelope; 0 when there was no answer in time (Slack
    /// counts that as a failed delivery).
    pub status: u16,
    /// The response body, or the ack's `payload` as JSON text ("" for an ack without one), or
    /// why there was no answer.
    pub body: String,
    pub elapsed: Duration,
    /// Set when delivered over Socket Mode.
    pub envelope_id: Option<String>,
}

impl Delivered {
    /// The app acknowledged in time (HTTP 2xx or an envelope ack).
    pub fn acked(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Why a user-side action could not be sent at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error(
        "no app to deliver to: set SimConfig.app_base_url or call Simulator::set_app_base_url"
    )]
    NoAppUrl,
    #[error("deliver_via is Socket but the app has no Socket Mode connection open")]
    NoSocketConnection,
    #[error("channel {0:?} is not in the simulated workspace")]
    UnknownChannel(String),
    #[error("no message with ts {ts} in channel {channel}")]
    UnknownMessage { channel: String, ts: String },
    #[error("message {ts} has no element with action_id {action_id:?}")]
    UnknownAction { ts: String, action_id: String },
    #[error("user {0:?} is not a member of the simulated workspace (try U0001)")]
    UnknownUser(String),
    #[error("no modal with id {0:?} was opened with views.open")]
    UnknownView(String),
    #[error("no event with id {0:?} was sent")]
    UnknownEvent(String),
    #[error("Slack would refuse this: {0}")]
    Refused(String),
}

/// A forged request, for testing that the app refuses it. Applies to HTTP deliveries only (Socket
/// Mode has no signatures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Signed with the wrong secret.
    BadSignature,
    /// Correctly signed, but with a timestamp this many seconds in the past (a replay).
    StaleTimestamp(u64),
    /// No `X-Slack-Request-Timestamp` and no `X-Slack-Signature`.
    MissingHeaders,
    /// Signed, then the body was changed in transit.
    TamperedBody,
}

/// The four endpoints Slack sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Events,
    Interactions,
    Commands,
    Options,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Events => "events",
            Kind::Interactions => "interactions",
            Kind::Commands => "commands",
            Kind::Options => "options",
        }
    }

    fn socket_type(self) -> &'static str {
        match self {
            Kind::Events => "events_api",
            Kind::Interactions | Kind::Options => "interactive",
            Kind::Commands => "slash_commands",
        }
    }
}

/// One request about to be delivered.
struct Outgoing {
    kind: Kind,
    /// The payload: the event_callback JSON, the interaction JSON, or the command's fields.
    payload: Value,
    /// Slack shows the ack's payload to the user (commands, view submissions, options).
    accepts_response_payload: bool,
    retry_attempt: u32,
    retry_reason: String,
    event_id: Option<String>,
    /// url_verification is an HTTP-only handshake.
    http_only: bool,
}

impl Outgoing {
    fn new(kind: Kind, payload: Value, accepts_response_payload: bool) -> Self {
        Self {
            kind,
            payload,
            accepts_response_payload,
            retry_attempt: 0,
            retry_reason: String::new(),
            event_id: None,
            http_only: false,
        }
    }

    /// The HTTP body and its content type, in Slack's encoding for the endpoint.
    fn http_body(&self) -> (Vec<u8>, &'static str) {
        const FORM: &str = "application/x-www-form-urlencoded";
        match self.kind {
            Kind::Events => (self.payload.to_string().into_bytes(), "application/json"),
            Kind::Interactions | Kind::Options => {
                let form = [("payload", self.payload.to_string())];
                (encode_form(&form), FORM)
            }
            Kind::Commands => {
                let fields: Vec<(String, String)> = self
                    .payload
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                (encode_form(&fields), FORM)
            }
        }
    }
}

fn encode_form<K: serde::Serialize, V: serde::Serialize>(pairs: &[(K, V)]) -> Vec<u8> {
    // Strings always encode; an empty body would be refused by the app, which is what a test
    // would then see.
    serde_urlencoded::to_string(pairs)
        .unwrap_or_default()
        .into_bytes()
}

/// Wall-clock unix seconds. Signatures use real time, not the simulator's movable clock: the app
/// compares them with its own clock, and a test that advanced the simulator must not make every
/// later request look like a replay.
fn wall_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn action_ts(state: &State, now: Instant) -> String {
    let micros = state.clock.unix_micros(now);
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

fn user_json(state: &State, user: &str) -> Result<Value, SimError> {
    let u = state
        .users
        .iter()
        .find(|u| u.id == user)
        .ok_or_else(|| SimError::UnknownUser(user.to_string()))?;
    Ok(json!({"id": u.id, "username": u.name, "name": u.name, "team_id": state.cfg.team_id}))
}

fn team_json(state: &State) -> Value {
    json!({"id": state.cfg.team_id, "domain": TEAM_DOMAIN})
}

/// Channel `channel`'s id and name, and its message `ts`: what a click or a message shortcut acts on.
fn message_in(
    state: &State,
    channel: &str,
    ts: &str,
) -> Result<(String, String, Message), SimError> {
    let ci = state
        .channel_index(channel)
        .ok_or_else(|| SimError::UnknownChannel(channel.to_string()))?;
    let c = &state.channels[ci];
    let msg = c
        .find(ts)
        .cloned()
        .ok_or_else(|| SimError::UnknownMessage {
            channel: c.id.clone(),
            ts: ts.to_string(),
        })?;
    Ok((c.id.clone(), c.name.clone(), msg))
}

/// Finds the element with `action_id` in message blocks, giving every block without a
/// `block_id` the one Slack would have generated (so payload and message agree).
fn find_action(blocks: &mut Value, action_id: &str) -> Option<(String, Value)> {
    let blocks = blocks.as_array_mut()?;
    let mut found = None;
    for (i, block) in blocks.iter_mut().enumerate() {
        let Some(b) = block.as_object_mut() else {
            continue;
        };
        let block_id = match b.get("block_id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                let id = format!("sim-b{i}");
                b.insert("block_id".into(), json!(id));
                id
            }
        };
        let mut candidates: Vec<&Value> = Vec::new();
        if let Some(els) = b.get("elements").and_then(Value::as_array) {
            candidates.extend(els);
        }
        candidates.extend(b.get("accessory"));
        candidates.extend(b.get("element"));
        if found.is_none() {
            if let Some(el) = candidates
                .into_iter()
                .find(|e| e.get("action_id").and_then(Value::as_str) == Some(action_id))
            {
                found = Some((block_id, el.clone()));
            }
        }
    }
    found
}

/// A modal as Slack puts it in `view_submission` and `view_closed`: its definition, ids and the inputs' `state`.
fn view_payload(state: &State, v: &crate::model::View, values: Value) -> Value {
    let mut view = v.definition.clone();
    if let Some(o) = view.as_object_mut() {
        o.insert("id".into(), json!(v.id));
        o.insert("team_id".into(), json!(state.cfg.team_id));
        o.insert("app_id".into(), json!(state.cfg.app_id));
        o.insert("bot_id".into(), json!(crate::BOT_ID));
        o.insert("hash".into(), json!(v.hash));
        o.insert("root_view_id".into(), json!(v.root_view_id));
        o.insert("previous_view_id".into(), json!(v.previous_view_id));
        o.insert("state".into(), json!({ "values": values }));
        for key in ["private_metadata", "callback_id", "external_id"] {
            if !o.contains_key(key) {
                o.insert(key.into(), json!(""));
            }
        }
    }
    view
}

impl Simulator {
    /// Where the app's `/slack/…` endpoints are (`http://127.0.0.1:8080`).
    pub fn set_app_base_url(&self, url: impl Into<String>) {
        self.lock().cfg.app_base_url = Some(url.into());
    }

    /// A handle on the same workspace whose HTTP deliveries are forged with `tamper`.
    pub fn forged(&self, tamper: Tamper) -> Simulator {
        Simulator {
            tamper: Some(tamper),
            ..self.clone()
        }
    }

    /// Ephemeral messages (from `chat.postEphemeral`, response_url and slash command answers),
    /// oldest first, for one user or everyone.
    pub fn ephemerals(&self, user: Option<&str>) -> Vec<Ephemeral> {
        self.lock()
            .ephemerals
            .iter()
            .filter(|e| user.is_none_or(|u| e.user == u))
            .cloned()
            .collect()
    }

    /// A fresh trigger_id, valid for three seconds on the simulator's clock, as if a user had
    /// just clicked something (for tests of `views.open` without an app).
    pub fn new_trigger_id(&self) -> String {
        let mut state = self.lock();
        let now = state.clock.now();
        state.issue_trigger(now)
    }

    /// Every request sent to the app, oldest first (one per attempt).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// `user` clicks the button `action_id` on message `ts` in `channel`: a `block_actions`
    /// interaction built from the recorded message.
    pub async fn click_button(
        &self,
        channel: &str,
        ts: &str,
        action_id: &str,
        user: &str,
    ) -> Result<Delivered, SimError> {
        let out = {
            let mut state = self.lock();
            let now = state.clock.now();
            let user_v = user_json(&state, user)?;
            let (channel_id, channel_name, msg) = message_in(&state, channel, ts)?;
            let mut message = api::message_json(&msg, &state.cfg.team_id);
            let (block_id, element) =
                find_action(&mut message["blocks"], action_id).ok_or_else(|| {
                    SimError::UnknownAction {
                        ts: ts.to_string(),
                        action_id: action_id.to_string(),
                    }
                })?;
            let mut action = json!({
                "action_id": action_id,
                "block_id": block_id,
                "type": element.get("type").cloned().unwrap_or(json!("button")),
                "action_ts": action_ts(&state, now),
            });
            for key in ["text", "value", "style"] {
                if let Some(v) = element.get(key) {
                    action[key] = v.clone();
                }
            }
            let trigger_id = state.issue_trigger_for(Some(user), now);
            let response_url =
                state.issue_response_url(user, Some(channel_id.clone()), Some(msg.ts.clone()), now);
            let payload = json!({
                "type": "block_actions",
                "user": user_v,
                "api_app_id": state.cfg.app_id,
                "token": VERIFICATION_TOKEN,
                "container": {
                    "type": "message", "message_ts": msg.ts, "channel_id": channel_id,
                    "is_ephemeral": false,
                },
                "trigger_id": trigger_id,
                "team": team_json(&state),
                "enterprise": null,
                "is_enterprise_install": false,
                "channel": {"id": channel_id, "name": channel_name},
                "message": message,
                "state": {"values": {}},
                "response_url": response_url,
                "actions": [action],
            });
            Outgoing::new(Kind::Interactions, payload, false)
        };
        self.deliver(out).await
    }

    /// `user` picks the message shortcut `callback_id` from the ⋯ menu of message `ts` in `channel`: a
    /// `message_action` interaction carrying the message, with a fresh trigger id and response URL.
    pub async fn message_shortcut(
        &self,
        channel: &str,
        ts: &str,
        callback_id: &str,
        user: &str,
    ) -> Result<Delivered, SimError> {
        let out = {
            let mut state = self.lock();
            let now = state.clock.now();
            let user_v = user_json(&state, user)?;
            let (channel_id, channel_name, msg) = message_in(&state, channel, ts)?;
            let message = api::message_json(&msg, &state.cfg.team_id);
            let trigger_id = state.issue_trigger_for(Some(user), now);
            let response_url = state.issue_response_url(user, Some(channel_id.clone()), None, now);
            let payload = json!({
                "type": "message_action",
                "token": VERIFICATION_TOKEN,
                "action_ts": action_ts(&state, now),
                "team": team_json(&state),
                "user": user_v,
                "channel": {"id": channel_id, "name": channel_name},
                "is_enterprise_install": false,
                "enterprise": null,
                "callback_id": callback_id,
                "trigger_id": trigger_id,
                "response_url": response_url,
                "message_ts": msg.ts,
                "message": message,
            });
            Outgoing::new(Kind::Interactions, payload, false)
        };
        self.deliver(out).await
    }

    /// `user` adds reaction `emoji` to message `ts`: it shows on the message, and the app gets a
    /// `reaction_added` event.
    pub async fn react(
        &self,
        channel: &str,
        ts: &str,
        emoji: &str,
        user: &str,
    ) -> Result<Delivered, SimError> {
        let event = {
            let mut state = self.lock();
            let now = state.clock.now();
            user_json(&state, user)?;
            let ci = state
                .channel_index(channel)
                .ok_or_else(|| SimError::UnknownChannel(channel.to_string()))?;
            let channel_id = state.channels[ci].id.clone();
            let emoji = emoji.trim_matches(':').to_string();
            let event_ts = action_ts(&state, now);
            let msg = state.channels[ci]
                .find_mut(ts)
                .ok_or_else(|| SimError::UnknownMessage {
                    channel: channel_id.clone(),
                    ts: ts.to_string(),
                })?;
            match msg.reactions.iter_mut().find(|(n, _)| *n == emoji) {
                Some((_, users)) if users.iter().any(|u| u == user) => {
                    return Err(SimError::Refused("already_reacted".into()))
                }
                Some((_, users)) => users.push(user.to_string()),
                None => msg.reactions.push((emoji.clone(), vec![user.to_string()])),
            }
            json!({
                "type": "reaction_added",
                "user": user,
                "reaction": emoji,
                "item_user": msg.user,
                "item": {"type": "message", "channel": channel_id, "ts": ts},
                "event_ts": event_ts,
            })
        };
        self.send_event(event).await
    }

    /// `user` types `/command text` in `channel`. A JSON or text answer is shown the way Slack
    /// shows it: ephemeral to the user, or in the channel with `response_type: in_channel`.
    pub async fn slash_command(
        &self,
        command: &str,
        text: &str,
        channel: &str,
        user: &str,
    ) -> Result<Delivered, SimError> {
        let (out, channel_id) = {
            let mut state = self.lock();
            let now = state.clock.now();
            let user_v = user_json(&state, user)?;
            let ci = state
                .channel_index(channel)
                .ok_or_else(|| SimError::UnknownChannel(channel.to_string()))?;
            let (channel_id, channel_name) = (
                state.channels[ci].id.clone(),
                state.channels[ci].name.clone(),
            );
            let trigger_id = state.issue_trigger_for(Some(user), now);
            let response_url = state.issue_response_url(user, Some(channel_id.clone()), None, now);
            let command = if command.starts_with('/') {
                command.to_string()
            } else {
                format!("/{command}")
            };
            let payload = json!({
                "token": VERIFICATION_TOKEN,
                "team_id": state.cfg.team_id,
                "team_domain": TEAM_DOMAIN,
                "enterprise_id": "",
                "enterprise_name": "",
                "channel_id": channel_id,
                "channel_name": channel_name,
                "user_id": user,
                "user_name": user_v["username"],
                "command": command,
                "text": text,
                "api_app_id": state.cfg.app_id,
                "is_enterprise_install": "false",
                "response_url": response_url,
                "trigger_id": trigger_id,
            });
            (Outgoing::new(Kind::Commands, payload, true), channel_id)
        };
        let delivered = self.deliver(out).await?;
        if delivered.acked() {
            self.show_command_answer(&channel_id, user, &delivered.body);
        }
        Ok(delivered)
    }

    /// The app answered a slash command with a message in the response body: Slack shows it.
    fn show_command_answer(&self, channel_id: &str, user: &str, body: &str) {
        if body.trim().is_empty() {
            return;
        }
        let args: Map<String, Value> = match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(o)) => o,
            _ => [("text".to_string(), json!(body))].into_iter().collect(),
        };
        let Ok(content) = api::content(&args) else {
            return;
        };
        let mut state = self.lock();
        let now = state.clock.now();
        if str_arg(&args, "response_type").as_deref() == Some("in_channel") {
            if let Some(ci) = state.channel_index(channel_id) {
                let _ = api::post(&mut state, ci, content, None, false, now);
            }
        } else {
            let ts = state.next_ts(now);
            state.ephemerals.push(Ephemeral {
                channel: channel_id.to_string(),
                user: user.to_string(),
                ts,
                text: content.text,
                blocks: content.blocks,
                via: "command_response".into(),
            });
        }
    }

    /// Sends `event` (the inner object, e.g. `{"type":"app_mention",…}`) wrapped in an
    /// `event_callback` with a fresh `event_id`.
    pub async fn send_event(&self, mut event: Value) -> Result<Delivered, SimError> {
        let out = {
            let mut state = self.lock();
            let now = state.clock.now();
            let n = state.next_id();
            let event_id = format!("Ev{n:06}{:08X}", rand::random::<u32>());
            let event_time = state.unix_secs(now);
            if let Some(o) = event.as_object_mut() {
                if !o.contains_key("event_ts") {
                    o.insert("event_ts".into(), json!(action_ts(&state, now)));
                }
            }
            let body = json!({
                "token": VERIFICATION_TOKEN,
                "team_id": state.cfg.team_id,
                "context_team_id": state.cfg.team_id,
                "api_app_id": state.cfg.app_id,
                "event": event,
                "type": "event_callback",
                "event_id": event_id,
                "event_time": event_time,
                "authorizations": [{
                    "enterprise_id": null, "team_id": state.cfg.team_id,
                    "user_id": crate::BOT_USER_ID, "is_bot": true, "is_enterprise_install": false,
                }],
                "is_ext_shared_channel": false,
                "event_context": format!("4-sim-{n}"),
            });
            state.events_sent.insert(event_id.clone(), body.clone());
            let mut out = Outgoing::new(Kind::Events, body, false);
            out.event_id = Some(event_id);
            out
        };
        self.deliver(out).await
    }

    /// Sends an event again, byte for byte, as Slack's retry `retry_num` for `reason`
    /// (`http_timeout`, `http_error`, …): `X-Slack-Retry-Num` / `X-Slack-Retry-Reason` over HTTP,
    /// `retry_attempt` / `retry_reason` in a Socket Mode envelope.
    pub async fn resend_event(
        &self,
        event_id: &str,
        retry_num: u32,
        reason: &str,
    ) -> Result<Delivered, SimError> {
        let body = self
            .lock()
            .events_sent
            .get(event_id)
            .cloned()
            .ok_or_else(|| SimError::UnknownEvent(event_id.to_string()))?;
        let mut out = Outgoing::new(Kind::Events, body, false);
        out.event_id = Some(event_id.to_string());
        out.retry_attempt = retry_num;
        out.retry_reason = reason.to_string();
        self.deliver(out).await
    }

    /// `user` submits modal `view_id` (opened with views.open) with `values` as its
    /// `state.values` (`{block_id: {action_id: {type, value}}}`).
    pub async fn submit_view(
        &self,
        view_id: &str,
        user: &str,
        values: Value,
    ) -> Result<Delivered, SimError> {
        let out = {
            let mut state = self.lock();
            let now = state.clock.now();
            let user_v = user_json(&state, user)?;
            let v = state
                .views
                .get(view_id)
                .filter(|v| v.kind == "modal")
                .cloned()
                .ok_or_else(|| SimError::UnknownView(view_id.to_string()))?;
            let view = view_payload(&state, &v, values);
            let trigger_id = state.issue_trigger_for(Some(user), now);
            let payload = json!({
                "type": "view_submission",
                "team": team_json(&state),
                "user": user_v,
                "api_app_id": state.cfg.app_id,
                "token": VERIFICATION_TOKEN,
                "trigger_id": trigger_id,
                "view": view,
                "response_urls": [],
                "enterprise": null,
                "is_enterprise_install": false,
            });
            Outgoing::new(Kind::Interactions, payload, true)
        };
        let delivered = self.deliver(out).await?;
        if delivered.acked() {
            let mut state = self.lock();
            let now = state.clock.now();
            view_response::apply(&mut state, view_id, &delivered.body, now)?;
        }
        Ok(delivered)
    }

    /// `user` types `value` into an external select: a `block_suggestion` to `/slack/options`.
    pub async fn options_request(
        &self,
        action_id: &str,
        block_id: &str,
        value: &str,
        user: &str,
    ) -> Result<Delivered, SimError> {
        let out = {
            let state = self.lock();
            let now = state.clock.now();
            let payload = json!({
                "type": "block_suggestion",
                "user": user_json(&state, user)?,
                "team": team_json(&state),
                "api_app_id": state.cfg.app_id,
                "token": VERIFICATION_TOKEN,
                "container": {"type": "message"},
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "action_ts": action_ts(&state, now),
                "enterprise": null,
                "is_enterprise_install": false,
            });
            Outgoing::new(Kind::Options, payload, true)
        };
        self.deliver(out).await
    }

    /// The handshake Slack sends when the Events URL is configured; the app must answer the
    /// `challenge` (see [`Simulator::deliveries`] for the one sent). Always HTTP.
    pub async fn url_verification(&self) -> Result<Delivered, SimError> {
        let challenge = format!("{:032x}", rand::random::<u128>());
        let payload = json!({
            "token": VERIFICATION_TOKEN,
            "challenge": challenge,
            "type": "url_verification",
        });
        let mut out = Outgoing::new(Kind::Events, payload, false);
        out.http_only = true;
        self.deliver(out).await
    }

    /// Delivers over Socket Mode or HTTP, as configured.
    async fn deliver(&self, out: Outgoing) -> Result<Delivered, SimError> {
        let (via, open) = {
            let state = self.lock();
            (state.cfg.deliver_via, state.socket.open_count())
        };
        let socket = !out.http_only
            && match via {
                DeliverVia::Http => false,
                DeliverVia::Socket => true,
                DeliverVia::Auto => open > 0,
            };
        if socket {
            self.deliver_socket(out).await
        } else {
            self.deliver_http(out).await
        }
    }

    fn record_delivery(&self, out: &Outgoing, via: &str, d: &Delivered, attempt: u32) {
        let mut state = self.lock();
        let now = state.clock.now();
        let reason = if attempt > out.retry_attempt {
            "timeout".to_string()
        } else {
            out.retry_reason.clone()
        };
        let delivery = Delivery {
            seq: 0,
            at_ms: 0,
            kind: out.kind.name().into(),
            via: via.into(),
            status: d.status,
            envelope_id: d.envelope_id.clone(),
            retry_attempt: attempt,
            retry_reason: reason,
            event_id: out.event_id.clone(),
            payload: out.payload.clone(),
            response: d.body.clone(),
            tamper: (via == "http")
                .then(|| self.tamper.map(|t| format!("{t:?}")))
                .flatten(),
        };
        state.record_delivery(now, delivery);
    }

    async fn deliver_http(&self, out: Outgoing) -> Result<Delivered, SimError> {
        let (base, secret, timeout) = {
            let state = self.lock();
            (
                state.cfg.app_base_url.clone(),
                state.cfg.signing_secret.clone(),
                state.cfg.http_timeout,
            )
        };
        let base = base.ok_or(SimError::NoAppUrl)?;
        let url = format!("{}/slack/{}", base.trim_end_matches('/'), out.kind.name());
        let (body, content_type) = out.http_body();
        let mut timestamp = wall_unix();
        if let Some(Tamper::StaleTimestamp(secs)) = self.tamper {
            timestamp = timestamp.saturating_sub(secs);
        }
        let timestamp = timestamp.to_string();
        let secret = match self.tamper {
            Some(Tamper::BadSignature) => Secret::new(format!("not-{secret}")),
            _ => Secret::new(secret),
        };
        let signature = sign(&secret, &timestamp, &body);
        let mut sent = body;
        if self.tamper == Some(Tamper::TamperedBody) {
            // Still parses (JSON ignores trailing space, a form field gains one): only the
            // signature can tell.
            sent.push(b' ');
        }
        let mut req = self
            .http
            .post(&url)
            .timeout(timeout)
            .header("content-type", content_type);
        if self.tamper != Some(Tamper::MissingHeaders) {
            req = req
                .header("x-slack-request-timestamp", &timestamp)
                .header("x-slack-signature", &signature);
        }
        if out.retry_attempt > 0 {
            req = req
                .header("x-slack-retry-num", out.retry_attempt.to_string())
                .header("x-slack-retry-reason", &out.retry_reason);
        }
        let start = Instant::now();
        let answer = match req.body(sent).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.text().await {
                    Ok(text) => (status, text),
                    Err(e) if e.is_timeout() => (0, "timeout".to_string()),
                    Err(e) => (0, format!("reading the answer failed: {e}")),
                }
            }
            Err(e) if e.is_timeout() => (0, "timeout".to_string()),
            Err(e) => (0, format!("no answer: {e}")),
        };
        let d = Delivered {
            status: answer.0,
            body: answer.1,
            elapsed: start.elapsed(),
            envelope_id: None,
        };
        self.record_delivery(&out, "http", &d, out.retry_attempt);
        Ok(d)
    }

    async fn deliver_socket(&self, out: Outgoing) -> Result<Delivered, SimError> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let (envelope_id, timeout) = {
            let mut state = self.lock();
            let n = state.next_id();
            let envelope_id = format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                rand::random::<u32>(),
                n & 0xffff,
                rand::random::<u16>() & 0xfff,
                rand::random::<u16>() & 0xfff,
                rand::random::<u64>() & 0xffff_ffff_ffff
            );
            state.socket.pending.insert(envelope_id.clone(), tx);
            (envelope_id, state.cfg.socket_ack_timeout)
        };
        let start = Instant::now();
        let mut last_conn = None;
        for redelivery in 0..=MAX_REDELIVERIES {
            let attempt = out.retry_attempt + redelivery;
            let envelope = json!({
                "envelope_id": envelope_id,
                "type": out.kind.socket_type(),
                "payload": out.payload,
                "accepts_response_payload": out.accepts_response_payload,
                "retry_attempt": attempt,
                "retry_reason": if redelivery > 0 { "timeout" } else { out.retry_reason.as_str() },
            });
            let sent = {
                let mut state = self.lock();
                let conn = state
                    .socket
                    .send_round_robin(envelope.to_string(), last_conn);
                if conn.is_some() {
                    state.socket.envelopes_sent += 1;
                    if redelivery > 0 {
                        state.socket.envelopes_redelivered += 1;
                    }
                }
                conn
            };
            let Some(conn) = sent else {
                if redelivery == 0 {
                    self.lock().socket.pending.remove(&envelope_id);
                    return Err(SimError::NoSocketConnection);
                }
                break;
            };
            last_conn = Some(conn);
            match tokio::time::timeout(timeout, &mut rx).await {
                Ok(Ok(payload)) => {
                    let d = Delivered {
                        status: 200,
                        body: payload.map(|p| p.to_string()).unwrap_or_default(),
                        elapsed: start.elapsed(),
                        envelope_id: Some(envelope_id),
                    };
                    self.record_delivery(&out, "socket", &d, attempt);
                    return Ok(d);
                }
                // The waiter is only dropped with the state (a reset keeps it): nothing to wait for.
                Ok(Err(_)) => break,
                Err(_) => {
                    let d = Delivered {
                        status: 0,
                        body: "timeout".into(),
                        elapsed: start.elapsed(),
                        envelope_id: Some(envelope_id.clone()),
                    };
                    self.record_delivery(&out, "socket", &d, attempt);
                }
            }
        }
        self.lock().socket.pending.remove(&envelope_id);
        Ok(Delivered {
            status: 0,
            body: "timeout".into(),
            elapsed: start.elapsed(),
            envelope_id: Some(envelope_id),
        })
    }

    /// Open Socket Mode connections that take envelopes.
    pub fn socket_connections(&self) -> usize {
        self.lock().socket.open_count()
    }

    /// Asks the oldest connection to reconnect, as Slack does: a `disconnect` message with
    /// `refresh_requested`, then the connection is closed after `socket_refresh_grace` unless
    /// the app closes it first. It gets no envelopes meanwhile.
    pub async fn socket_refresh(&self) {
        let (tx, grace) = {
            let mut state = self.lock();
            let grace = state.cfg.socket_refresh_grace;
            let Some(id) = state.socket.oldest_open().map(|c| c.id) else {
                return;
            };
            let Some(conn) = state.socket.conns.iter_mut().find(|c| c.id == id) else {
                return;
            };
            conn.closing = true;
            (conn.tx.clone(), grace)
        };
        let msg = json!({
            "type": "disconnect",
            "reason": "refresh_requested",
            "debug_info": {"host": "sluice-sim"},
        });
        if tx
            .send(crate::socket::Outbound::Text(msg.to_string()))
            .is_err()
        {
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // Already gone if the app closed it first.
            let _ = tx.send(crate::socket::Outbound::Close);
        });
    }

    /// Drops the oldest connection without a close frame, like a broken network link.
    pub async fn socket_drop(&self) {
        let mut state = self.lock();
        let Some(id) = state.socket.oldest_open().map(|c| c.id) else {
            return;
        };
        if let Some(conn) = state.socket.conns.iter().find(|c| c.id == id) {
            let _ = conn.tx.send(crate::socket::Outbound::Abort);
        }
        // Gone at once from Slack's side: no envelope may go to it any more.
        state.socket.conns.retain(|c| c.id != id);
    }
}
