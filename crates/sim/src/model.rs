//! The simulator's public records: what a test reads back ([`Call`], [`Message`], [`ChannelInfo`])
//! and the faults it can inject ([`Faults`], set over HTTP with a [`FaultsPatch`]).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One recorded Web API or webhook call, in arrival order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Call {
    /// 1-based sequence number, never reused (not even across [`crate::Simulator::reset`]).
    pub seq: u64,
    /// Milliseconds since the simulator started, on its monotonic clock.
    pub at_ms: u64,
    /// Web API method (`chat.postMessage`) or `webhook` for an incoming webhook.
    pub method: String,
    /// The channel id the call addressed, when it named one the simulator knows.
    pub channel: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Whether Slack would have said `ok: true`.
    pub ok: bool,
    /// Slack's error string when not ok.
    pub error: Option<String>,
    /// The `Retry-After` seconds answered with a 429.
    pub retry_after: Option<u64>,
    /// The call's arguments as received, with the token removed.
    pub args: serde_json::Value,
}

/// One message in a channel, with its current content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    /// Channel id.
    pub channel: String,
    /// Slack's message id within the channel ("1700000000.000100").
    pub ts: String,
    /// The thread parent's `ts` for a reply.
    pub thread_ts: Option<String>,
    /// Top-level (notification) text.
    pub text: String,
    /// Block Kit blocks (`null` when none were given).
    pub blocks: serde_json::Value,
    /// `metadata` as posted (`{event_type, event_payload}`).
    pub metadata: Option<serde_json::Value>,
    /// How many times `chat.update` changed it.
    pub edits: u32,
    /// Reaction name → user ids, in the order reactions were first added.
    pub reactions: Vec<(String, Vec<String>)>,
    /// Author user id (the bot's for API and webhook posts).
    pub user: String,
    /// A thread reply that is also shown in the channel.
    #[serde(default)]
    pub reply_broadcast: bool,
    /// Legacy attachments, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<serde_json::Value>,
}

/// A channel as listed by [`crate::Simulator::channels`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelInfo {
    pub id: String,
    pub name: String,
    pub messages: usize,
}

/// A seeded workspace member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub email: String,
}

/// A user group (`@oncall`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usergroup {
    pub id: String,
    pub handle: String,
    pub users: Vec<String>,
}

/// A modal or home tab opened through `views.*`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct View {
    /// "V…" id Slack assigns.
    pub id: String,
    /// `modal` or `home`.
    pub kind: String,
    /// The user a home tab was published for, or whose click or command opened a modal.
    pub user: Option<String>,
    /// Changes on every update; `views.update` with a stale hash gets `hash_conflict`.
    pub hash: String,
    pub root_view_id: String,
    pub previous_view_id: Option<String>,
    pub external_id: Option<String>,
    pub callback_id: Option<String>,
    /// The trigger that opened or pushed it (validated by a later task).
    pub trigger_id: Option<String>,
    /// The view definition as last given (title, blocks, private_metadata …).
    pub definition: serde_json::Value,
}

/// Faults injected into the HTTP surface. They apply before token checks and rate limits, the way a
/// broken network or an overloaded Slack would.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Faults {
    /// Probability (0..=1) that a call is answered HTTP 500.
    pub error_rate: f64,
    /// (method, error): that method answers `{"ok":false,"error":error}`.
    pub method_error: Option<(String, String)>,
    /// Delay added before every call is answered.
    pub latency_ms: u64,
    /// Delay between carrying out a Web API call and answering it: Slack has done it, the caller waits. A caller
    /// that times out or dies in this window never hears of a post that was made.
    pub answer_latency_ms: u64,
    /// Until then every call is answered HTTP 503. Not serialised: an `Instant` has no wire form;
    /// over HTTP use `outage_secs`.
    #[serde(skip)]
    pub outage_until: Option<Instant>,
    /// (for how long from when the faults were set, Retry-After seconds): every call answers 429.
    pub storm: Option<(Duration, u64)>,
    /// (channel id or name, Retry-After seconds, times): the next `times` calls naming that
    /// channel answer 429.
    pub channel_429: Option<(String, u64, u32)>,
}

/// The body of `POST /sim/faults`: each key present changes that fault, the others stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub error_rate: Option<f64>,
    pub method_error: Option<(String, String)>,
    pub latency_ms: Option<u64>,
    pub answer_latency_ms: Option<u64>,
    pub outage_secs: Option<u64>,
    pub storm_secs: Option<u64>,
    /// Retry-After for `storm_secs` (default 1).
    pub retry_after: Option<u64>,
    pub channel_429: Option<(String, u64, u32)>,
}

/// One request the simulator sent to the app, playing Slack's side (an event, an interaction, a
/// slash command, an options request), or one Socket Mode envelope delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    /// Shares the numbering of [`Call::seq`], so calls and deliveries interleave in order.
    pub seq: u64,
    pub at_ms: u64,
    /// `events`, `interactions`, `commands` or `options` (the `/slack/…` endpoint it is for).
    pub kind: String,
    /// `http` or `socket`.
    pub via: String,
    /// HTTP status the app answered; 0 when it did not answer in time (or at all), 200 for an
    /// acknowledged envelope.
    pub status: u16,
    /// Socket Mode envelope id.
    pub envelope_id: Option<String>,
    /// `X-Slack-Retry-Num` / the envelope's `retry_attempt`.
    pub retry_attempt: u32,
    pub retry_reason: String,
    /// The `event_id` of an event delivery.
    pub event_id: Option<String>,
    /// The request payload as JSON (for form bodies, the parsed fields or `payload`).
    pub payload: serde_json::Value,
    /// The app's answer body (or the ack's payload), or why there was none.
    pub response: String,
    /// The forgery applied, if any (`BadSignature`, …).
    pub tamper: Option<String>,
}
