//! A stateful stand-in for Slack's Web API and incoming webhooks on 127.0.0.1, so that no test or
//! demo of Sluice ever reaches slack.com. The principal type is [`Simulator`]: build one from a
//! [`SimConfig`], mount [`Simulator::router`] in a test or [`Simulator::serve`] it on a port, and
//! read back what Sluice did with [`Simulator::calls`] and [`Simulator::messages`].
//!
//! It behaves like Slack where Sluice depends on it: bearer-token checks, Block Kit validation
//! ([`blockkit`]), per-channel and per-method rate limits answered with 429 + `Retry-After`
//! ([`bucket`], using the numbers in [`sluice_slack_wire::tiers`]), and injected [`Faults`].
//!
//! It also plays Slack's side of the inbound half ([`inbound`]): a simulated user clicks buttons,
//! reacts, types slash commands and submits modals, and the simulator sends the app what Slack
//! would, signed over HTTP or as Socket Mode envelopes ([`socket`]), with response_urls and
//! trigger_ids that expire like Slack's.
//!
//! The state is one workspace behind one lock ([`state::State`]), never held across an await.

pub mod api;
mod args;
pub mod blockkit;
pub mod bucket;
pub mod channels_admin;
mod dm;
mod executions;
pub mod functions;
mod http;
pub mod inbound;
pub mod model;
pub mod mrkdwn;
pub mod scheduled;
pub mod socket;
pub mod state;
mod ui;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use inbound::{Delivered, SimError, Tamper};
pub use model::{Call, ChannelInfo, Delivery, Faults, FaultsPatch, Message, User, Usergroup, View};
pub use state::{Ephemeral, BOT_ID, BOT_USER_ID};

/// The bot token a default [`SimConfig`] accepts.
pub const DEFAULT_TOKEN: &str = "xoxb-sim-token";
/// The app-level token a default [`SimConfig`] accepts for Socket Mode.
pub const DEFAULT_APP_TOKEN: &str = "xapp-sim-token";
/// The signing secret a default [`SimConfig`] signs requests to the app with.
pub const DEFAULT_SIGNING_SECRET: &str = "sim-signing-secret";

/// How the simulated workspace starts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SimConfig {
    /// Accepted bearer tokens.
    pub bot_tokens: Vec<String>,
    pub team_id: String,
    pub enforce_rate_limits: bool,
    /// Posting to an unknown (valid) channel name creates the channel. Off by default, as in
    /// Slack, where posting to a channel that does not exist answers `channel_not_found`.
    pub auto_create_channels: bool,
    /// Channel names created at start, in order (ids C000001, C000002, …).
    pub channels: Vec<String>,
    /// (hook path id, channel name) answered at `POST /services/{id}`; the id may contain `/`
    /// ("T0SIM/B0001/secret") like Slack's hook URLs.
    pub webhooks: Vec<(String, String)>,
    /// If set, methods needing a scope not in the list answer `missing_scope`.
    pub scopes: Option<Vec<String>>,
    /// The secret requests to the app are signed with (`X-Slack-Signature`).
    pub signing_secret: String,
    /// Accepted app-level tokens (`xapp-…`), for `apps.connections.open`.
    pub app_tokens: Vec<String>,
    /// Where the app's `/slack/…` endpoints are (`http://127.0.0.1:8080`), for HTTP deliveries.
    pub app_base_url: Option<String>,
    /// `api_app_id` in payloads.
    pub app_id: String,
    /// How user-side requests reach the app.
    pub deliver_via: DeliverVia,
    /// How long an envelope waits for its ack before it is redelivered (Slack: 3 s).
    pub socket_ack_timeout: Duration,
    /// How long an HTTP delivery waits for the answer (Slack: 3 s).
    pub http_timeout: Duration,
    /// After `refresh_requested`, how long before the connection is closed (Slack: a few s).
    pub socket_refresh_grace: Duration,
}

/// How requests from "Slack" reach the app.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum DeliverVia {
    /// Signed HTTP to `app_base_url`.
    Http,
    /// Socket Mode envelopes (an error when no connection is open).
    Socket,
    /// Socket Mode when a connection is open, else HTTP.
    #[default]
    Auto,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bot_tokens: vec![DEFAULT_TOKEN.into()],
            team_id: "T0SIM".into(),
            enforce_rate_limits: true,
            auto_create_channels: false,
            channels: Vec::new(),
            webhooks: Vec::new(),
            scopes: None,
            signing_secret: DEFAULT_SIGNING_SECRET.into(),
            app_tokens: vec![DEFAULT_APP_TOKEN.into()],
            app_base_url: None,
            app_id: "A0SIM".into(),
            deliver_via: DeliverVia::Auto,
            socket_ack_timeout: Duration::from_secs(3),
            http_timeout: Duration::from_secs(3),
            socket_refresh_grace: Duration::from_secs(2),
        }
    }
}

/// The simulator: one workspace, shared by every clone.
#[derive(Clone, Debug)]
pub struct Simulator {
    inner: Arc<Mutex<state::State>>,
    /// For requests to the app.
    http: reqwest::Client,
    /// Set on a handle from [`Simulator::forged`].
    tamper: Option<Tamper>,
    /// Bumped after every request that may have changed the workspace: the page's streams wait on it.
    pub(crate) changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(state::State::new(cfg))),
            http: reqwest::Client::new(),
            tamper: None,
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        // A panic while holding the lock cannot leave the workspace half-written in a way that
        // matters to a test double; keep serving rather than poisoning every later call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The whole HTTP surface, for `tower::ServiceExt::oneshot` tests.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// Binds `addr` (port 0 picks a free port) and serves until the [`RunningSim`] is dropped.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<RunningSim> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        self.lock().self_url = Some(format!("http://{addr}"));
        // One signal for both: the server stops accepting, and the page's open streams end, so that a graceful
        // shutdown does not wait forever on a browser tab.
        let (tx, rx) = watch::channel(false);
        let app = self
            .router()
            .layer(axum::Extension(ui::Stopping(rx.clone())));
        let task = tokio::spawn(async move {
            let mut rx = rx;
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stopping| *stopping).await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "slack simulator stopped serving");
            }
        });
        Ok(RunningSim {
            addr,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Every recorded Web API and webhook call, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The messages of a channel (by id or name, `#` optional) in post order, thread replies
    /// included, with their current content. Empty for an unknown channel.
    pub fn messages(&self, channel: &str) -> Vec<Message> {
        let state = self.lock();
        state
            .channel_index(channel)
            .map(|i| state.channels[i].messages.clone())
            .unwrap_or_default()
    }

    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.lock().channel_infos()
    }

    /// Views opened, pushed or published, by id.
    /// Creates a channel as a person would (see [`state::State::create_user_channel`]) and returns
    /// its `conversations.info` shape.
    pub fn create_channel_as_user(
        &self,
        name: &str,
        is_private: bool,
        members: &[String],
        with_bot: bool,
    ) -> Result<serde_json::Value, String> {
        let mut state = self.lock();
        let now = state.clock.now();
        let i = state.create_user_channel(name, is_private, members, with_bot, now)?;
        Ok(state.channels[i].info_json())
    }

    /// The ids of the workspace's people (not the bot).
    pub fn user_ids(&self) -> Vec<String> {
        self.lock().users.iter().map(|u| u.id.clone()).collect()
    }

    pub fn views(&self) -> Vec<View> {
        self.lock().views.values().cloned().collect()
    }

    /// Calls answered 429 (rate limits and injected 429s).
    pub fn count_429(&self) -> usize {
        self.lock().count_429()
    }

    /// Replaces the injected faults. A storm lasts from now.
    pub fn set_faults(&self, f: Faults) {
        let mut state = self.lock();
        let now = state.clock.now();
        state.faults = state::FaultState {
            faults: f,
            set_at: Some(now),
        };
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.faults.clone()
    }

    pub fn clear_faults(&self) {
        self.lock().faults = state::FaultState::default();
    }

    /// Forgets messages, calls, views, rate buckets and faults; keeps the config.
    pub fn reset(&self) {
        self.lock().reset();
    }

    /// Moves the simulator's clock forward: rate buckets refill, outages and storms end, scheduled
    /// messages come due, without the test sleeping.
    pub fn advance_clock(&self, by: Duration) {
        self.lock().clock.advance(by);
    }

    /// Everything as JSON, as `GET /sim/state` serves it.
    pub fn state_json(&self) -> serde_json::Value {
        self.lock().snapshot()
    }
}

/// A simulator serving on a socket. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSim {
    pub addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Web API base to give Sluice's client instead of `https://slack.com/api/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// A webhook URL for hook id `id`.
    pub fn webhook_url(&self, id: &str) -> String {
        format!("http://{}/services/{id}", self.addr)
    }

    /// Stops accepting connections; requests in flight are finished.
    pub fn shutdown(mut self) {
        self.signal_stop();
    }

    /// Stops and waits until the server task has ended.
    pub async fn stopped(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
