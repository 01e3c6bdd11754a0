//! Answering the user: [`ResponseUrl`] posts to a `response_url` safely, [`Reply`] is what we
//! post, and [`Trigger`] opens modals within the 3-second `trigger_id` window.
//!
//! A `response_url` arrives inside a request, so it is untrusted input: POSTing wherever it
//! points would let anyone who can reach us make us call internal addresses (cloud metadata at
//! 169.254.169.254, admin ports). [`ResponseUrl`] only POSTs to an allow-list of hosts
//! (Slack's own by default), over https unless a host is explicitly allowed with `http://`,
//! and refuses everything else with [`RespondError::NotAllowed`] before any connection is made.
//! Slack accepts 5 uses of one `response_url` within 30 minutes; the 6th is refused locally
//! ([`RespondError::Exhausted`]) instead of being sent to fail.

use crate::stats::Stats;
use serde_json::{json, Value};
use sluice_slack::api::{Client, SlackError, View};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// Uses Slack allows per `response_url`…
pub const RESPONSE_URL_MAX_USES: usize = 5;
/// …within this window.
pub const RESPONSE_URL_WINDOW: Duration = Duration::from_secs(30 * 60);
/// How long a `trigger_id` is valid.
pub const TRIGGER_TTL: Duration = Duration::from_secs(3);

/// Why an answer to the user could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    #[error("response_url refused ({reason}); only Slack's hosts may be called")]
    NotAllowed { reason: String },
    #[error("response_url already used {RESPONSE_URL_MAX_USES} times in 30 minutes; Slack would refuse a 6th use: post with chat.postMessage instead")]
    Exhausted,
    #[error("response_url answered HTTP {status}")]
    Http { status: u16 },
    #[error("response_url could not be reached: {0}")]
    Transport(String),
    #[error("no way to reach the user: the request had no response_url and no channel")]
    NoTarget,
    #[error("trigger_id is {age_ms} ms old; Slack only accepts it for 3 s, so the modal cannot be opened now")]
    TriggerExpired { age_ms: u128 },
    #[error("no trigger_id in this request, so no modal can be opened from it")]
    NoTrigger,
    #[error("the answer could not be queued: {0}")]
    Outbox(String),
    #[error(transparent)]
    Slack(#[from] SlackError),
}

/// Whether a reply is seen by the user alone or by the whole channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseType {
    #[default]
    Ephemeral,
    InChannel,
}

/// A message posted through a `response_url` (or returned as a slash command's HTTP body).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    pub text: String,
    pub blocks: Option<Value>,
    pub response_type: ResponseType,
    pub replace_original: bool,
    pub delete_original: bool,
    pub thread_ts: Option<String>,
}

impl Reply {
    /// Seen only by the user who acted.
    pub fn ephemeral(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            ..Reply::default()
        }
    }

    /// Seen by everyone in the channel.
    pub fn in_channel(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            response_type: ResponseType::InChannel,
            ..Reply::default()
        }
    }

    /// Replaces the message the user acted on.
    pub fn replace(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            replace_original: true,
            ..Reply::default()
        }
    }

    /// Deletes the message the user acted on.
    pub fn delete() -> Self {
        Reply {
            delete_original: true,
            ..Reply::default()
        }
    }

    /// Adds Block Kit blocks (`text` stays the notification fallback).
    pub fn with_blocks(mut self, blocks: Value) -> Self {
        self.blocks = Some(blocks);
        self
    }

    /// The JSON body Slack expects.
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "text": self.text });
        if let Some(b) = &self.blocks {
            v["blocks"] = b.clone();
        }
        v["response_type"] = json!(match self.response_type {
            ResponseType::Ephemeral => "ephemeral",
            ResponseType::InChannel => "in_channel",
        });
        if self.replace_original {
            v["replace_original"] = json!(true);
        }
        if self.delete_original {
            v["delete_original"] = json!(true);
        }
        if let Some(t) = &self.thread_ts {
            v["thread_ts"] = json!(t);
        }
        v
    }
}

/// One allowed host: `hooks.slack.com` (https, default port) or `http://127.0.0.1:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: String,
    port: Option<u16>,
    http_ok: bool,
}

impl AllowedHost {
    fn parse(entry: &str) -> Self {
        let (http_ok, rest) = match entry.split_once("://") {
            Some((scheme, rest)) => (scheme.eq_ignore_ascii_case("http"), rest),
            None => (false, entry),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse() {
                Ok(port) => (h, Some(port)),
                Err(_) => (rest, None),
            },
            _ => (rest, None),
        };
        AllowedHost {
            host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            port,
            http_ok,
        }
    }
}

/// Posts to `response_url`s, only on allowed hosts and within Slack's use limit.
/// Cheap to clone (shared use counts and connection pool).
#[derive(Clone)]
pub struct ResponseUrl {
    http: reqwest::Client,
    allowed: Arc<Vec<AllowedHost>>,
    uses: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseUrl")
            .field("allowed", &self.allowed)
            .finish()
    }
}

impl ResponseUrl {
    /// A client for `allowed_hosts` entries like `hooks.slack.com` (https only) or
    /// `http://127.0.0.1:8080` (http allowed for that host and port).
    pub fn new(allowed_hosts: &[String], stats: Arc<Stats>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // A redirect would be a way around the allow-list.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        ResponseUrl {
            http,
            allowed: Arc::new(
                allowed_hosts
                    .iter()
                    .map(|h| AllowedHost::parse(h))
                    .collect(),
            ),
            uses: Arc::new(Mutex::new(HashMap::new())),
            stats,
        }
    }

    /// Checks `url` against the allow-list without sending anything.
    pub fn check(&self, url: &str) -> Result<Url, RespondError> {
        let refuse = |reason: String| {
            self.stats.ssrf_refused();
            tracing::warn!(reason = %reason, "response_url refused");
            Err(RespondError::NotAllowed { reason })
        };
        let Ok(parsed) = Url::parse(url) else {
            return refuse("not a URL".into());
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return refuse("URL carries credentials".into());
        }
        let Some(host) = parsed.host_str() else {
            return refuse("URL has no host".into());
        };
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let scheme = parsed.scheme();
        let port = parsed.port();
        let ok = self.allowed.iter().any(|a| {
            a.host == host
                && a.port == port
                && (scheme == "https" || (scheme == "http" && a.http_ok))
        });
        if ok {
            Ok(parsed)
        } else {
            refuse(format!("{scheme}://{host} is not an allowed host"))
        }
    }

    /// POSTs `body` to `url` (after [`ResponseUrl::check`] and the use limit).
    pub async fn post(&self, url: &str, body: &Value) -> Result<(), RespondError> {
        let parsed = self.check(url)?;
        self.take_use(url)?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let result = self
            .http
            .post(parsed)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                // The URL is a capability: log the host only.
                tracing::warn!(host = %host, status = r.status().as_u16(), "response_url refused our post");
                Err(RespondError::Http {
                    status: r.status().as_u16(),
                })
            }
            Err(e) => {
                let detail = e.without_url().to_string();
                tracing::warn!(host = %host, error = %detail, "response_url unreachable");
                Err(RespondError::Transport(detail))
            }
        }
    }

    fn take_use(&self, url: &str) -> Result<(), RespondError> {
        let now = Instant::now();
        let Ok(mut uses) = self.uses.lock() else {
            return Ok(());
        };
        if uses.len() > 10_000 {
            uses.retain(|_, t| {
                t.iter()
                    .any(|at| now.duration_since(*at) < RESPONSE_URL_WINDOW)
            });
        }
        let entry = uses.entry(url.to_owned()).or_default();
        entry.retain(|at| now.duration_since(*at) < RESPONSE_URL_WINDOW);
        if entry.len() >= RESPONSE_URL_MAX_USES {
            return Err(RespondError::Exhausted);
        }
        entry.push(now);
        Ok(())
    }
}

/// A `trigger_id` and when its request reached us, so modal calls can fail fast and clearly
/// once the 3-second window is gone instead of getting Slack's `expired_trigger_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub id: String,
    pub received_at: Instant,
}

impl Trigger {
    /// Time since the request arrived.
    pub fn age(&self) -> Duration {
        self.received_at.elapsed()
    }

    fn fresh(&self) -> Result<&str, RespondError> {
        let age = self.age();
        if age >= TRIGGER_TTL {
            return Err(RespondError::TriggerExpired {
                age_ms: age.as_millis(),
            });
        }
        Ok(&self.id)
    }

    /// `views.open` with this trigger.
    pub async fn open(&self, slack: &Client, view: &Value) -> Result<View, RespondError> {
        Ok(slack.views_open(self.fresh()?, view).await?)
    }

    /// `views.push` with this trigger.
    pub async fn push(&self, slack: &Client, view: &Value) -> Result<View, RespondError> {
        Ok(slack.views_push(self.fresh()?, view).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(hosts: &[&str]) -> ResponseUrl {
        let hosts: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
        ResponseUrl::new(&hosts, Arc::new(Stats::default()))
    }

    #[test]
    fn allow_list_decisions() {
        let c = client(&["hooks.slack.com", "slack.com", "http://127.0.0.1:4000"]);
        let cases = [
            ("https://hooks.slack.com/actions/T1/123/abc", true),
            ("https://HOOKS.slack.com/commands/T1/1/x", true),
            ("https://slack.com/x", true),
            ("http://hooks.slack.com/actions/T1/1/x", false),
            ("https://hooks.slack.com:8443/x", false),
            ("https://hooks.slack.com.evil.example/x", false),
            ("https://evilhooks.slack.com/x", false),
            ("https://user:pw@hooks.slack.com/x", false),
            ("http://169.254.169.254/latest/meta-data/", false),
            ("http://example.com/", false),
            ("http://127.0.0.1:4000/resp", true),
            ("https://127.0.0.1:4000/resp", true),
            ("http://127.0.0.1:4001/resp", false),
            ("http://127.0.0.1/resp", false),
            ("file:///etc/passwd", false),
            ("not a url", false),
        ];
        for (url, want) in cases {
            assert_eq!(c.check(url).is_ok(), want, "{url}");
        }
        assert_eq!(c.stats.snapshot().ssrf_refused, 11);
    }

    #[test]
    fn sixth_use_within_the_window_is_refused_locally() {
        let c = client(&["hooks.slack.com"]);
        for _ in 0..RESPONSE_URL_MAX_USES {
            assert_eq!(c.take_use("https://hooks.slack.com/a"), Ok(()));
        }
        assert_eq!(
            c.take_use("https://hooks.slack.com/a"),
            Err(RespondError::Exhausted)
        );
        assert_eq!(c.take_use("https://hooks.slack.com/b"), Ok(()));
    }

    #[test]
    fn reply_json_shapes() {
        assert_eq!(
            Reply::ephemeral("hi").to_json(),
            json!({"text":"hi","response_type":"ephemeral"})
        );
        assert_eq!(
            Reply::in_channel("all").with_blocks(json!([])).to_json(),
            json!({"text":"all","blocks":[],"response_type":"in_channel"})
        );
        assert_eq!(
            Reply::delete().to_json(),
            json!({"text":"","response_type":"ephemeral","delete_original":true})
        );
        assert_eq!(
            Reply::replace("done").to_json()["replace_original"],
            json!(true)
        );
    }

    #[tokio::test]
    async fn expired_trigger_fails_before_calling_slack() {
        let slack = Client::new(
            "http://127.0.0.1:9/api/",
            sluice_slack_wire::Secret::new("xoxb-test"),
            Duration::from_secs(1),
        )
        .unwrap();
        let Some(old) = Instant::now().checked_sub(Duration::from_secs(4)) else {
            return; // a machine up for less than 4 s cannot express the old instant
        };
        let t = Trigger {
            id: "1.2.3".into(),
            received_at: old,
        };
        let err = t.open(&slack, &json!({})).await.unwrap_err();
        assert!(matches!(err, RespondError::TriggerExpired { age_ms } if age_ms >= 4000));
    }
}
