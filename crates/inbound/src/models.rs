//! Tolerant models of what Slack sends us: [`EventCallback`] (Events API), [`Interaction`]
//! (the `payload` of interactivity requests) and [`SlashCommand`].
//!
//! Real payloads omit fields that the documentation calls required (enterprise installs send
//! `"team": null`, modals have no `channel`, some actions have no `value`), and Slack adds
//! fields without notice. So every field is defaulted, unknown fields are ignored, and each
//! model keeps the JSON it was read from in `raw` for anything not modelled here. A payload
//! that is valid JSON never fails to parse because something is missing.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// Reads `null` as the type's default, so `"team": null` and a missing `team` mean the same.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A workspace. `None` in payloads from org-wide (enterprise) installs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Team {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub domain: String,
    pub enterprise_id: Option<String>,
    pub enterprise_name: Option<String>,
}

/// An Enterprise Grid organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Enterprise {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
}

/// The user who clicked, submitted or typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct User {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    pub username: Option<String>,
    pub name: Option<String>,
    /// On Enterprise Grid this can be the organisation's id (`E…`).
    pub team_id: Option<String>,
}

/// A conversation reference (`{"id": "C…", "name": "…"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Channel {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    pub name: Option<String>,
}

/// Where an interactive element lives: a message, a modal view or a home tab.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Container {
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    pub message_ts: Option<String>,
    pub channel_id: Option<String>,
    pub view_id: Option<String>,
    pub is_ephemeral: Option<bool>,
    pub thread_ts: Option<String>,
}

/// A message the interaction happened on (only what Sluice reads; the rest stays in `raw`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Message {
    #[serde(deserialize_with = "null_default")]
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    pub user: Option<String>,
    pub bot_id: Option<String>,
    pub blocks: Option<Value>,
    pub metadata: Option<Value>,
}

/// A text object (`plain_text` or `mrkdwn`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Text {
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub text: String,
}

/// An option of a select menu, as Slack sends it back and as we answer options requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SelectOption {
    pub text: Text,
    #[serde(deserialize_with = "null_default")]
    pub value: String,
}

impl SelectOption {
    /// A plain-text option.
    pub fn new(text: impl Into<String>, value: impl Into<String>) -> Self {
        SelectOption {
            text: Text {
                kind: "plain_text".into(),
                text: text.into(),
            },
            value: value.into(),
        }
    }
}

/// One element the user acted on in a `block_actions` payload.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Action {
    #[serde(deserialize_with = "null_default")]
    pub action_id: String,
    #[serde(deserialize_with = "null_default")]
    pub block_id: String,
    /// Element type: `button`, `static_select`, `users_select`, `datepicker`, …
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    pub value: Option<String>,
    pub text: Option<Text>,
    pub action_ts: Option<String>,
    pub selected_option: Option<SelectOption>,
    pub selected_options: Option<Vec<SelectOption>>,
    pub selected_user: Option<String>,
    pub selected_users: Option<Vec<String>>,
    pub selected_channel: Option<String>,
    pub selected_conversation: Option<String>,
    pub selected_date: Option<String>,
    pub selected_time: Option<String>,
}

/// The state of a modal's inputs: `values[block_id][action_id]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ViewState {
    #[serde(deserialize_with = "null_default")]
    pub values: HashMap<String, HashMap<String, InputValue>>,
}

/// One input's current value in a view's state. Which field is set depends on the element.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct InputValue {
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    pub value: Option<String>,
    pub selected_option: Option<SelectOption>,
    pub selected_options: Option<Vec<SelectOption>>,
    pub selected_user: Option<String>,
    pub selected_users: Option<Vec<String>>,
    pub selected_channel: Option<String>,
    pub selected_conversation: Option<String>,
    pub selected_date: Option<String>,
    pub selected_time: Option<String>,
}

impl ViewState {
    /// The input at `block_id`/`action_id`, if the view has it.
    pub fn get(&self, block_id: &str, action_id: &str) -> Option<&InputValue> {
        self.values.get(block_id)?.get(action_id)
    }
}

/// A modal or home tab view as it comes back in payloads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct View {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    pub team_id: Option<String>,
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub callback_id: String,
    #[serde(deserialize_with = "null_default")]
    pub private_metadata: String,
    pub external_id: Option<String>,
    pub hash: Option<String>,
    pub root_view_id: Option<String>,
    pub previous_view_id: Option<String>,
    pub app_id: Option<String>,
    pub bot_id: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub state: ViewState,
    pub blocks: Option<Value>,
}

/// Fields every interaction payload may carry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Common {
    #[serde(deserialize_with = "null_default")]
    pub team: Option<Team>,
    #[serde(deserialize_with = "null_default")]
    pub enterprise: Option<Enterprise>,
    #[serde(deserialize_with = "null_default")]
    pub is_enterprise_install: bool,
    #[serde(deserialize_with = "null_default")]
    pub user: User,
    pub api_app_id: Option<String>,
    pub trigger_id: Option<String>,
    pub response_url: Option<String>,
}

impl Common {
    /// The workspace id, falling back to the user's team and then the organisation for
    /// enterprise installs where `team` is null.
    pub fn team_id(&self) -> Option<String> {
        non_empty(self.team.as_ref().map(|t| t.id.as_str()))
            .or_else(|| non_empty(self.user.team_id.as_deref()))
            .or_else(|| non_empty(self.enterprise.as_ref().map(|e| e.id.as_str())))
    }

    /// The organisation id, from `enterprise` or `team.enterprise_id`.
    pub fn enterprise_id(&self) -> Option<String> {
        non_empty(self.enterprise.as_ref().map(|e| e.id.as_str()))
            .or_else(|| non_empty(self.team.as_ref().and_then(|t| t.enterprise_id.as_deref())))
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `block_actions`: the user clicked a button, chose from a menu, picked a date…
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct BlockActions {
    #[serde(flatten)]
    pub common: Common,
    #[serde(deserialize_with = "null_default")]
    pub container: Container,
    pub channel: Option<Channel>,
    pub message: Option<Message>,
    pub view: Option<View>,
    pub state: Option<ViewState>,
    #[serde(deserialize_with = "null_default")]
    pub actions: Vec<Action>,
}

impl BlockActions {
    /// The channel the click happened in: the payload's `channel`, or its container's (a message in a channel).
    pub fn channel_id(&self) -> Option<String> {
        self.channel
            .as_ref()
            .map(|c| c.id.clone())
            .or_else(|| self.container.channel_id.clone())
    }

    /// The `ts` of the message the clicked button is on, if it is on a message.
    pub fn message_ts(&self) -> Option<String> {
        self.container
            .message_ts
            .clone()
            .or_else(|| self.message.as_ref().map(|m| m.ts.clone()))
    }
}

/// `block_suggestion`: an external select menu wants options for what the user typed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct BlockSuggestion {
    #[serde(flatten)]
    pub common: Common,
    #[serde(deserialize_with = "null_default")]
    pub action_id: String,
    #[serde(deserialize_with = "null_default")]
    pub block_id: String,
    /// What the user typed so far.
    #[serde(deserialize_with = "null_default")]
    pub value: String,
    #[serde(deserialize_with = "null_default")]
    pub container: Container,
    pub channel: Option<Channel>,
    pub message: Option<Message>,
    pub view: Option<View>,
}

/// `view_submission`: the user pressed the modal's submit button.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ViewSubmission {
    #[serde(flatten)]
    pub common: Common,
    #[serde(deserialize_with = "null_default")]
    pub view: View,
    /// Present when the modal has an input with `response_url_enabled`.
    #[serde(deserialize_with = "null_default")]
    pub response_urls: Vec<ResponseUrlEntry>,
}

/// One entry of `view_submission.response_urls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ResponseUrlEntry {
    pub block_id: String,
    pub action_id: String,
    pub channel_id: String,
    pub response_url: String,
}

/// `view_closed`: the user cancelled or closed a modal that set `notify_on_close`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ViewClosed {
    #[serde(flatten)]
    pub common: Common,
    #[serde(deserialize_with = "null_default")]
    pub view: View,
    /// True when the whole stack of views was closed at once.
    #[serde(deserialize_with = "null_default")]
    pub is_cleared: bool,
}

/// `shortcut` (global, from the shortcut menu) or `message_action` (from a message's menu).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Shortcut {
    #[serde(flatten)]
    pub common: Common,
    /// `shortcut` or `message_action`.
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub callback_id: String,
    pub action_ts: Option<String>,
    /// Message shortcuts only.
    pub channel: Option<Channel>,
    pub message: Option<Message>,
    pub message_ts: Option<String>,
}

/// An interactivity payload, by its `type`. Types we do not model arrive as `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum Interaction {
    BlockActions(BlockActions),
    BlockSuggestion(BlockSuggestion),
    ViewSubmission(ViewSubmission),
    ViewClosed(ViewClosed),
    Shortcut(Shortcut),
    MessageAction(Shortcut),
    Other { kind: String, raw: Value },
}

/// Why a body could not be read as a Slack payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("form field `payload` is missing")]
    NoPayloadField,
    #[error("form body could not be read: {0}")]
    Form(String),
    #[error("{kind} payload has an unexpected shape: {detail}")]
    Shape { kind: String, detail: String },
}

impl Interaction {
    /// Reads the JSON in an interactivity request's `payload` form field.
    pub fn from_json(raw: Value) -> Result<Self, PayloadError> {
        let kind = raw
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        fn typed<T: for<'de> Deserialize<'de>>(kind: &str, raw: Value) -> Result<T, PayloadError> {
            serde_json::from_value(raw).map_err(|e| PayloadError::Shape {
                kind: kind.to_owned(),
                detail: e.to_string(),
            })
        }
        Ok(match kind.as_str() {
            "block_actions" => Interaction::BlockActions(typed(&kind, raw)?),
            "block_suggestion" => Interaction::BlockSuggestion(typed(&kind, raw)?),
            "view_submission" => Interaction::ViewSubmission(typed(&kind, raw)?),
            "view_closed" => Interaction::ViewClosed(typed(&kind, raw)?),
            "shortcut" => Interaction::Shortcut(typed(&kind, raw)?),
            "message_action" => Interaction::MessageAction(typed(&kind, raw)?),
            _ => Interaction::Other { kind, raw },
        })
    }

    /// Reads an interactivity request body: `application/x-www-form-urlencoded` with one
    /// field `payload` holding JSON.
    pub fn from_form(body: &[u8]) -> Result<Self, PayloadError> {
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Form(e.to_string()))?;
        let payload = fields
            .into_iter()
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v)
            .ok_or(PayloadError::NoPayloadField)?;
        let raw: Value =
            serde_json::from_str(&payload).map_err(|e| PayloadError::Json(e.to_string()))?;
        Self::from_json(raw)
    }

    /// The payload's `type` as Slack named it.
    pub fn kind(&self) -> &str {
        match self {
            Interaction::BlockActions(_) => "block_actions",
            Interaction::BlockSuggestion(_) => "block_suggestion",
            Interaction::ViewSubmission(_) => "view_submission",
            Interaction::ViewClosed(_) => "view_closed",
            Interaction::Shortcut(_) => "shortcut",
            Interaction::MessageAction(_) => "message_action",
            Interaction::Other { kind, .. } => kind,
        }
    }
}

/// A slash command invocation (form fields over HTTP, a JSON object over Socket Mode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SlashCommand {
    /// `/ops`, with the slash.
    pub command: String,
    /// Everything after the command, as typed.
    pub text: String,
    pub user_id: String,
    pub user_name: Option<String>,
    pub channel_id: String,
    pub channel_name: Option<String>,
    pub team_id: String,
    pub team_domain: Option<String>,
    pub enterprise_id: Option<String>,
    pub enterprise_name: Option<String>,
    pub api_app_id: Option<String>,
    pub is_enterprise_install: Option<String>,
    pub response_url: String,
    pub trigger_id: String,
    /// `1` on Slack's certificate checks, which carry no command.
    pub ssl_check: Option<String>,
}

impl SlashCommand {
    /// Reads the form body Slack posts to the command URL.
    pub fn from_form(body: &[u8]) -> Result<Self, PayloadError> {
        serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Form(e.to_string()))
    }

    /// True for Slack's `ssl_check=1` probes.
    pub fn is_ssl_check(&self) -> bool {
        self.ssl_check.as_deref() == Some("1")
    }
}

/// An Events API request body: `url_verification`, `event_callback`, `app_rate_limited`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct EventCallback {
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// `url_verification` only.
    pub challenge: Option<String>,
    pub team_id: Option<String>,
    pub enterprise_id: Option<String>,
    pub api_app_id: Option<String>,
    pub event_id: Option<String>,
    pub event_time: Option<i64>,
    pub event_context: Option<String>,
    pub is_ext_shared_channel: Option<bool>,
    #[serde(deserialize_with = "null_default")]
    pub authorizations: Vec<Authorization>,
    pub event: Option<Event>,
}

impl EventCallback {
    /// The workspace the event belongs to (falling back to the organisation, then the first
    /// authorization, for org-wide installs).
    pub fn team(&self) -> Option<String> {
        non_empty(self.team_id.as_deref())
            .or_else(|| non_empty(self.enterprise_id.as_deref()))
            .or_else(|| {
                self.authorizations.first().and_then(|a| {
                    non_empty(a.team_id.as_deref())
                        .or_else(|| non_empty(a.enterprise_id.as_deref()))
                })
            })
    }
}

/// One installation the event is visible to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Authorization {
    pub enterprise_id: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub is_bot: bool,
    #[serde(deserialize_with = "null_default")]
    pub is_enterprise_install: bool,
}

/// The inner `event` of an `event_callback`. Common fields are typed; the whole object is
/// in `raw` for event types with fields of their own (`reaction`, `item`, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Event {
    pub kind: String,
    pub subtype: Option<String>,
    pub user: Option<String>,
    pub channel: Option<String>,
    pub text: Option<String>,
    pub ts: Option<String>,
    pub thread_ts: Option<String>,
    pub event_ts: Option<String>,
    pub raw: Value,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_owned);
        // `reaction_added` and friends put the channel under `item`.
        let channel = s("channel").or_else(|| {
            raw.get("item")
                .and_then(|i| i.get("channel"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        Ok(Event {
            kind: s("type").unwrap_or_default(),
            subtype: s("subtype"),
            user: s("user"),
            channel,
            text: s("text"),
            ts: s("ts"),
            thread_ts: s("thread_ts"),
            event_ts: s("event_ts"),
            raw,
        })
    }
}
