//! [`Client`]: a thin typed client for Slack's Web API, and [`SlackError`], every way a call
//! can fail.
//!
//! One `POST {base}{method}` with a JSON body and the bot token as a Bearer header; no retries
//! and no rate limiting here. Deciding what a failure means is [`crate::retry::classify`]'s job
//! and spacing calls is [`crate::ratelimit::Limiter`]'s, so this layer stays a faithful,
//! testable mapping of HTTP outcomes to [`SlackError`] variants:
//!
//! | Slack says | we return |
//! |---|---|
//! | 2xx, `ok: true` | `Ok(body)` (warnings logged) |
//! | 2xx, `ok: false` | [`SlackError::Api`] |
//! | 429 | [`SlackError::RateLimited`] with `Retry-After` |
//! | other non-2xx | [`SlackError::Http`] |
//! | no answer in time | [`SlackError::Timeout`] |
//! | connection failed | [`SlackError::Transport`] |
//! | unreadable body | [`SlackError::Decode`] |
//!
//! The token lives in a [`Secret`] and only ever goes into the `Authorization` header; neither
//! logs nor errors contain it. Response models are tolerant: unknown fields are ignored and
//! everything Slack may omit is an `Option`.

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_slack_wire::tiers;
use sluice_slack_wire::Secret;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Every way a Web API call can fail. `Display` never includes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// HTTP 200 with `ok: false`: Slack understood the request and refused it.
    #[error("{method}: Slack answered ok:false, error {error:?}{}", warnings_suffix(.warnings))]
    Api {
        method: String,
        error: String,
        warnings: Vec<String>,
    },
    /// HTTP 429. `retry_after` is Slack's `Retry-After`; when that header is missing or
    /// unreadable it is the method's own sustained interval (at least 1 s), see
    /// [`default_retry_after`].
    #[error("{method}: rate limited by Slack, retry after {retry_after:?}")]
    RateLimited {
        method: String,
        retry_after: Duration,
    },
    /// Any other non-2xx status (5xx, 503 during an outage, 404 for an unknown method).
    #[error("{method}: HTTP {status} from Slack")]
    Http { method: String, status: u16 },
    /// No complete answer within the client's timeout. The call may or may not have taken effect.
    #[error("{method}: no answer from Slack in time")]
    Timeout { method: String },
    /// Connecting or sending failed (DNS, TLS, connection reset).
    #[error("{method}: could not reach Slack: {detail}")]
    Transport { method: String, detail: String },
    /// Slack answered something we could not read (not JSON, or a field we rely on is missing).
    #[error("{method}: could not read Slack's answer: {detail}")]
    Decode { method: String, detail: String },
    /// The client was built with a bad setting (base URL, token).
    #[error("Slack client configuration: {0}")]
    Config(String),
}

fn warnings_suffix(warnings: &[String]) -> String {
    if warnings.is_empty() {
        String::new()
    } else {
        format!(" (warnings: {})", warnings.join(", "))
    }
}

impl SlackError {
    /// The Web API method the failed call was for (None for configuration errors).
    pub fn method(&self) -> Option<&str> {
        match self {
            SlackError::Api { method, .. }
            | SlackError::RateLimited { method, .. }
            | SlackError::Http { method, .. }
            | SlackError::Timeout { method }
            | SlackError::Transport { method, .. }
            | SlackError::Decode { method, .. } => Some(method),
            SlackError::Config(_) => None,
        }
    }

    /// Slack's error code for `ok: false` answers (`channel_not_found`, ...).
    pub fn api_error(&self) -> Option<&str> {
        match self {
            SlackError::Api { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// How long to wait after a 429 whose `Retry-After` is missing or unreadable.
///
/// Slack always sends the header, so this only matters behind a misbehaving proxy. Waiting one
/// sustained interval of the method's class (1 s for chat.postMessage, 60 s for a Tier 1
/// method) and at least 1 s is the shortest wait that cannot turn into a hammering loop.
pub fn default_retry_after(method: &str) -> Duration {
    tiers::slack_limit(tiers::rate_class(method))
        .interval()
        .max(Duration::from_secs(1))
}

/// Parses `Retry-After` as Slack sends it: whole seconds. Fractional seconds are accepted too;
/// anything else (an HTTP date, garbage, negative) is `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let secs: f64 = value.parse().ok()?;
    if (0.0..1e9).contains(&secs) {
        Some(Duration::from_secs_f64(secs))
    } else {
        None
    }
}

/// Warnings Slack attached to an answer (`response_metadata.warnings`, plus the older
/// comma-separated top-level `warning`).
pub fn response_warnings(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body
        .pointer("/response_metadata/warnings")
        .and_then(Value::as_array)
        .map(|ws| {
            ws.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(w) = body.get("warning").and_then(Value::as_str) {
        for w in w.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if !out.iter().any(|o| o == w) {
                out.push(w.to_owned());
            }
        }
    }
    out
}

/// A Slack Web API client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    token: Secret,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("token", &self.inner.token)
            .finish()
    }
}

/// `chat.postMessage` / `chat.update`: where the message is and its id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// `chat.postEphemeral`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EphemeralPosted {
    #[serde(default)]
    pub message_ts: Option<String>,
}

/// `chat.scheduleMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Scheduled {
    #[serde(default)]
    pub channel: Option<String>,
    pub scheduled_message_id: String,
    #[serde(default)]
    pub post_at: Option<i64>,
}

/// `auth.test`: who the token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuthTest {
    pub team_id: String,
    pub user_id: String,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub enterprise_id: Option<String>,
    #[serde(default)]
    pub is_enterprise_install: Option<bool>,
}

/// A conversation (channel, private channel, DM) as `conversations.*` return it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Conversation {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_channel: Option<bool>,
    #[serde(default)]
    pub is_private: Option<bool>,
    #[serde(default)]
    pub is_im: Option<bool>,
    #[serde(default)]
    pub is_archived: Option<bool>,
    #[serde(default)]
    pub is_member: Option<bool>,
    #[serde(default)]
    pub topic: Option<Topic>,
    #[serde(default)]
    pub purpose: Option<Topic>,
    #[serde(default)]
    pub num_members: Option<u64>,
}

/// A conversation's topic or purpose.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Topic {
    #[serde(default)]
    pub value: Option<String>,
}

/// One page of `conversations.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationPage {
    pub channels: Vec<Conversation>,
    /// `None` on the last page (Slack sends an empty string there).
    pub next_cursor: Option<String>,
}

/// A user as `users.info` / `users.lookupByEmail` return it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub deleted: Option<bool>,
    #[serde(default)]
    pub is_bot: Option<bool>,
    #[serde(default)]
    pub tz: Option<String>,
    #[serde(default)]
    pub profile: Option<Profile>,
}

/// The parts of a user's profile Sluice uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub real_name: Option<String>,
}

/// A view (modal or home tab) as `views.*` return it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct View {
    pub id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub hash: Option<String>,
    #[serde(default)]
    pub callback_id: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub private_metadata: Option<String>,
    #[serde(default)]
    pub root_view_id: Option<String>,
    #[serde(default)]
    pub previous_view_id: Option<String>,
}

impl Client {
    /// A client for the Web API at `base_url` (`https://slack.com/api/`, or the simulator's
    /// `http://127.0.0.1:9999/api/`). `timeout` bounds each whole call.
    pub fn new(base_url: &str, token: Secret, timeout: Duration) -> Result<Self, SlackError> {
        let mut base = Url::parse(base_url)
            .map_err(|e| SlackError::Config(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(SlackError::Config(format!(
                "base URL {base_url:?} must be http or https"
            )));
        }
        // Without the trailing slash, Url::join would replace the last segment ("api").
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                SlackError::Config("token contains characters not allowed in an HTTP header".into())
            })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| SlackError::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                token,
            }),
        })
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// Calls `method` with `args` as the JSON body. Returns the whole answer when Slack says
    /// `ok: true`; every other outcome is a [`SlackError`].
    pub async fn call(&self, method: &str, args: &Value) -> Result<Value, SlackError> {
        self.call_auth(method, args, self.inner.auth.clone()).await
    }

    /// [`Client::call`] with another token than the client's: a Workflow Builder step's `bot_access_token`, which
    /// Slack issues for one function execution.
    pub async fn call_with_token(
        &self,
        method: &str,
        args: &Value,
        token: &Secret,
    ) -> Result<Value, SlackError> {
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                SlackError::Config("token contains characters not allowed in an HTTP header".into())
            })?;
        auth.set_sensitive(true);
        self.call_auth(method, args, auth).await
    }

    async fn call_auth(
        &self,
        method: &str,
        args: &Value,
        auth: HeaderValue,
    ) -> Result<Value, SlackError> {
        let url = self
            .inner
            .base
            .join(method)
            .map_err(|e| SlackError::Config(format!("method {method:?}: {e}")))?;
        let result = self
            .inner
            .http
            .post(url)
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(args.to_string())
            .send()
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => return Err(self.transport_error(method, &e)),
        };
        let status = response.status();
        if status.as_u16() == 429 {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
                .unwrap_or_else(|| default_retry_after(method));
            tracing::debug!(
                method,
                status = 429,
                ?retry_after,
                "slack call rate limited"
            );
            return Err(SlackError::RateLimited {
                method: method.to_owned(),
                retry_after,
            });
        }
        if !status.is_success() {
            tracing::debug!(method, status = status.as_u16(), "slack call failed");
            return Err(SlackError::Http {
                method: method.to_owned(),
                status: status.as_u16(),
            });
        }
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(self.transport_error(method, &e)),
        };
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| SlackError::Decode {
            method: method.to_owned(),
            detail: format!("body is not JSON: {e}"),
        })?;
        let warnings = response_warnings(&body);
        match body.get("ok").and_then(Value::as_bool) {
            Some(true) => {
                if warnings.is_empty() {
                    tracing::debug!(method, status = status.as_u16(), "slack call ok");
                } else {
                    tracing::warn!(method, ?warnings, "slack call ok with warnings");
                }
                Ok(body)
            }
            Some(false) => {
                let error = body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown_error")
                    .to_owned();
                tracing::debug!(method, status = status.as_u16(), error = %error, ?warnings, "slack call refused");
                Err(SlackError::Api {
                    method: method.to_owned(),
                    error,
                    warnings,
                })
            }
            None => Err(SlackError::Decode {
                method: method.to_owned(),
                detail: "answer has no boolean \"ok\" field".into(),
            }),
        }
    }

    fn transport_error(&self, method: &str, e: &reqwest::Error) -> SlackError {
        if e.is_timeout() {
            tracing::debug!(method, "slack call timed out");
            return SlackError::Timeout {
                method: method.to_owned(),
            };
        }
        // reqwest's message names the URL, never headers; redact anyway in case a base URL
        // was ever built with a token in it.
        let mut detail = error_chain(e);
        let token = self.inner.token.expose();
        if !token.is_empty() {
            detail = detail.replace(token, "***");
        }
        tracing::debug!(method, detail = %detail, "slack call could not be sent");
        SlackError::Transport {
            method: method.to_owned(),
            detail,
        }
    }

    /// Calls `method` and reads `field` of the answer as `T`.
    async fn call_field<T: DeserializeOwned>(
        &self,
        method: &str,
        args: &Value,
        field: &str,
    ) -> Result<T, SlackError> {
        let body = self.call(method, args).await?;
        decode_field(method, &body, field)
    }

    /// Calls `method` and reads the whole answer as `T`.
    async fn call_as<T: DeserializeOwned>(
        &self,
        method: &str,
        args: &Value,
    ) -> Result<T, SlackError> {
        let body = self.call(method, args).await?;
        serde_json::from_value(body).map_err(|e| SlackError::Decode {
            method: method.to_owned(),
            detail: e.to_string(),
        })
    }

    /// `chat.postMessage`. `args` is the whole message (`channel`, `text`, `blocks`, ...);
    /// run it through [`sluice_slack_wire::blocks::fit_message`] first.
    pub async fn post_message(&self, args: &Value) -> Result<Posted, SlackError> {
        self.call_as("chat.postMessage", args).await
    }

    /// `chat.update`. `args` needs `channel` and `ts` plus the new content.
    pub async fn update_message(&self, args: &Value) -> Result<Posted, SlackError> {
        self.call_as("chat.update", args).await
    }

    /// `chat.delete`.
    pub async fn delete_message(&self, channel: &str, ts: &str) -> Result<(), SlackError> {
        self.call("chat.delete", &json!({ "channel": channel, "ts": ts }))
            .await
            .map(drop)
    }

    /// `chat.postEphemeral`. `args` needs `channel`, `user` and the content.
    pub async fn post_ephemeral(&self, args: &Value) -> Result<EphemeralPosted, SlackError> {
        self.call_as("chat.postEphemeral", args).await
    }

    /// `chat.scheduleMessage`. `args` needs `channel`, `post_at` (unix seconds) and the content.
    pub async fn schedule_message(&self, args: &Value) -> Result<Scheduled, SlackError> {
        self.call_as("chat.scheduleMessage", args).await
    }

    /// `auth.test`: checks the token and says whose it is.
    pub async fn auth_test(&self) -> Result<AuthTest, SlackError> {
        self.call_as("auth.test", &json!({})).await
    }

    /// `conversations.info`.
    pub async fn conversations_info(&self, channel: &str) -> Result<Conversation, SlackError> {
        self.call_field(
            "conversations.info",
            &json!({ "channel": channel }),
            "channel",
        )
        .await
    }

    /// `conversations.list`, one page. `types` is Slack's comma-separated list
    /// (`"public_channel,private_channel"`); pass the previous page's `next_cursor` to continue.
    pub async fn conversations_list(
        &self,
        types: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ConversationPage, SlackError> {
        let mut args = json!({ "types": types, "limit": limit, "exclude_archived": true });
        if let Some(c) = cursor {
            args["cursor"] = json!(c);
        }
        let method = "conversations.list";
        let body = self.call(method, &args).await?;
        let channels = decode_field(method, &body, "channels")?;
        let next_cursor = body
            .pointer("/response_metadata/next_cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        Ok(ConversationPage {
            channels,
            next_cursor,
        })
    }

    /// `conversations.create`.
    pub async fn conversations_create(
        &self,
        name: &str,
        is_private: bool,
    ) -> Result<Conversation, SlackError> {
        self.call_field(
            "conversations.create",
            &json!({ "name": name, "is_private": is_private }),
            "channel",
        )
        .await
    }

    /// `conversations.invite`: adds users to a channel.
    pub async fn conversations_invite(
        &self,
        channel: &str,
        users: &[impl AsRef<str>],
    ) -> Result<Conversation, SlackError> {
        let users: Vec<&str> = users.iter().map(AsRef::as_ref).collect();
        self.call_field(
            "conversations.invite",
            &json!({ "channel": channel, "users": users.join(",") }),
            "channel",
        )
        .await
    }

    /// `conversations.setTopic`.
    pub async fn conversations_set_topic(
        &self,
        channel: &str,
        topic: &str,
    ) -> Result<(), SlackError> {
        self.call(
            "conversations.setTopic",
            &json!({ "channel": channel, "topic": topic }),
        )
        .await
        .map(drop)
    }

    /// `users.info`.
    pub async fn users_info(&self, user: &str) -> Result<User, SlackError> {
        self.call_field("users.info", &json!({ "user": user }), "user")
            .await
    }

    /// `users.lookupByEmail`. An unknown address is `Api { error: "users_not_found" }`.
    pub async fn users_lookup_by_email(&self, email: &str) -> Result<User, SlackError> {
        self.call_field("users.lookupByEmail", &json!({ "email": email }), "user")
            .await
    }

    /// `usergroups.users.list`: the user ids in a user group.
    pub async fn usergroups_users_list(&self, usergroup: &str) -> Result<Vec<String>, SlackError> {
        self.call_field(
            "usergroups.users.list",
            &json!({ "usergroup": usergroup }),
            "users",
        )
        .await
    }

    /// `conversations.members`, every page: the user ids in `channel` (the bot included).
    pub async fn conversations_members(&self, channel: &str) -> Result<Vec<String>, SlackError> {
        let method = "conversations.members";
        let mut members = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut args = json!({ "channel": channel, "limit": 200 });
            if let Some(c) = &cursor {
                args["cursor"] = json!(c);
            }
            let body = self.call(method, &args).await?;
            members.extend(decode_field::<Vec<String>>(method, &body, "members")?);
            cursor = body
                .pointer("/response_metadata/next_cursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            if cursor.is_none() {
                return Ok(members);
            }
        }
    }

    /// `chat.getPermalink`: a link to the message `ts` in `channel` that opens it in Slack.
    pub async fn chat_get_permalink(&self, channel: &str, ts: &str) -> Result<String, SlackError> {
        self.call_field(
            "chat.getPermalink",
            &json!({ "channel": channel, "message_ts": ts }),
            "permalink",
        )
        .await
    }

    /// `reactions.add`. `name` is the emoji name without colons.
    pub async fn reactions_add(
        &self,
        channel: &str,
        ts: &str,
        name: &str,
    ) -> Result<(), SlackError> {
        self.call(
            "reactions.add",
            &json!({ "channel": channel, "timestamp": ts, "name": name.trim_matches(':') }),
        )
        .await
        .map(drop)
    }

    /// `views.open`. `trigger_id` is valid for 3 seconds: call this directly, not via the outbox.
    pub async fn views_open(&self, trigger_id: &str, view: &Value) -> Result<View, SlackError> {
        self.call_field(
            "views.open",
            &json!({ "trigger_id": trigger_id, "view": view }),
            "view",
        )
        .await
    }

    /// `views.update`. Pass the `hash` from the last answer to refuse updating a view someone
    /// else changed meanwhile (`hash_conflict`).
    pub async fn views_update(
        &self,
        view_id: &str,
        hash: Option<&str>,
        view: &Value,
    ) -> Result<View, SlackError> {
        let mut args = json!({ "view_id": view_id, "view": view });
        if let Some(h) = hash {
            args["hash"] = json!(h);
        }
        self.call_field("views.update", &args, "view").await
    }

    /// `views.push`: stacks a view on an open modal.
    pub async fn views_push(&self, trigger_id: &str, view: &Value) -> Result<View, SlackError> {
        self.call_field(
            "views.push",
            &json!({ "trigger_id": trigger_id, "view": view }),
            "view",
        )
        .await
    }

    /// `views.publish`: sets a user's home tab.
    pub async fn views_publish(
        &self,
        user_id: &str,
        hash: Option<&str>,
        view: &Value,
    ) -> Result<View, SlackError> {
        let mut args = json!({ "user_id": user_id, "view": view });
        if let Some(h) = hash {
            args["hash"] = json!(h);
        }
        self.call_field("views.publish", &args, "view").await
    }
}

fn decode_field<T: DeserializeOwned>(
    method: &str,
    body: &Value,
    field: &str,
) -> Result<T, SlackError> {
    let value = body.get(field).ok_or_else(|| SlackError::Decode {
        method: method.to_owned(),
        detail: format!("answer has no {field:?}"),
    })?;
    T::deserialize(value).map_err(|e| SlackError::Decode {
        method: method.to_owned(),
        detail: format!("{field}: {e}"),
    })
}

/// reqwest's top-level message is often just "error sending request"; the cause chain says why.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
