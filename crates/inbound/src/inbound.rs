//! [`Inbound`]: one verified request from Slack in, one acknowledgement out, and the handler
//! run exactly once in the background. HTTP ([`crate::http`]) and Socket Mode
//! ([`crate::socket`]) both feed [`Inbound::process`], so dedupe, middleware, error reporting
//! and the synchronous answers behave the same on both transports.
//!
//! Order of work for every request: find the handler (none → "not handled", counted) → claim
//! the idempotency key in the [`OnceStore`] (store down → [`Ack::Retry`] so Slack redelivers
//! later; already claimed → acknowledge and do nothing) → spawn the handler behind the
//! middleware chain, catching errors and panics → acknowledge. Slash commands, view
//! submissions and options wait up to `sync_reply_budget` for the handler's answer because
//! Slack only accepts those answers in the acknowledgement itself.

use crate::models::{EventCallback, Interaction, SlashCommand};
use crate::once::OnceStore;
use crate::outbox::Outbox;
use crate::registry::{
    ActionPayload, Ctx, Decision, HandlerResult, Kind, OptionsResponse, Registry, RequestInfo,
    Responder,
};
use crate::respond::{Reply, ResponseUrl, Trigger};
use crate::stats::{Stats, StatsSnapshot};
use futures::FutureExt;
use serde_json::{json, Value};
use sluice_slack::api::Client;
use sluice_slack_wire::Secret;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Settings of the inbound side.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// The app's signing secret (Basic Information page).
    pub signing_secret: Secret,
    /// Larger bodies are refused with 413 before they are verified or parsed.
    pub max_body_bytes: usize,
    /// Hosts `response_url`s may point at: `hooks.slack.com` (https only) or
    /// `http://127.0.0.1:8080` (http allowed for exactly that host and port).
    pub response_url_hosts: Vec<String>,
    /// How long an event id is remembered. Slack retries for about 5 minutes.
    pub once_ttl_events: Duration,
    /// How long a click is remembered (see [`Inbound`] on interaction keys).
    pub once_ttl_actions: Duration,
    /// How long a slash command, view submission or options request waits for its handler's
    /// answer before acknowledging without it. Slack gives up at 3 s.
    pub sync_reply_budget: Duration,
}

impl InboundConfig {
    /// Defaults: 1 MiB bodies, Slack's hosts only, events remembered 1 h, clicks 10 min,
    /// 2.5 s for synchronous answers.
    pub fn new(signing_secret: Secret) -> Self {
        InboundConfig {
            signing_secret,
            max_body_bytes: 1024 * 1024,
            response_url_hosts: vec!["hooks.slack.com".into(), "slack.com".into()],
            once_ttl_events: Duration::from_secs(3600),
            once_ttl_actions: Duration::from_secs(600),
            sync_reply_budget: Duration::from_millis(2500),
        }
    }
}

/// The acknowledgement owed to Slack for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// 200 with an empty body.
    Empty,
    /// 200 with this JSON (challenge, slash command reply, view response, options).
    Json(Value),
    /// Could not decide safely (idempotency store down): HTTP 500 / no Socket Mode ack, so
    /// Slack delivers it again later.
    Retry(String),
}

/// A parsed request, transport-independent.
#[derive(Debug, Clone)]
// Built once per request and moved straight into `process`: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Incoming {
    Event(EventCallback),
    Interaction(Interaction),
    Command(SlashCommand),
}

/// When and how often Slack delivered a request.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// When the request reached us; `trigger_id`s expire 3 s after this.
    pub received_at: Instant,
    /// `X-Slack-Retry-Num` or Socket Mode `retry_attempt`.
    pub retry_num: u32,
    /// `X-Slack-Retry-Reason` or Socket Mode `retry_reason`.
    pub retry_reason: Option<String>,
}

impl Delivery {
    /// A first delivery arriving now.
    pub fn now() -> Self {
        Delivery {
            received_at: Instant::now(),
            retry_num: 0,
            retry_reason: None,
        }
    }
}

/// The inbound side: config, handlers, idempotency memory and the Slack client.
///
/// Interaction idempotency key: `action:{team}:{channel}:{message_ts}:{action_id}:{user}`,
/// remembered `once_ttl_actions` (10 min). A double click, or Socket Mode redelivering the
/// same click, produces one handler run; for selects, date pickers and other elements with a
/// selection the selected value is appended so choosing a different option is a new action.
/// The price: the same user pressing the same button on the same message again within 10
/// minutes is ignored, which is what approve/ack buttons want; a button meant to be pressed
/// repeatedly should update its message so the next press carries a new `action_id` or value, or be registered
/// with `Registry::keyed_per_click`, which adds the click's `action_ts` to the key (Slack's retries of one click
/// carry the same `action_ts`; a new click a new one).
/// Shortcuts and view submissions are keyed by their `trigger_id`, which Slack makes fresh per
/// user gesture. Slash commands are not deduplicated: Slack does not retry them.
pub struct Inbound {
    pub(crate) cfg: InboundConfig,
    registry: Registry,
    once: Arc<dyn OnceStore>,
    outbox: Arc<dyn Outbox>,
    slack: Client,
    urls: ResponseUrl,
    pub(crate) stats: Arc<Stats>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("cfg", &self.cfg)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// Who and where a request is about; becomes a [`Ctx`].
#[derive(Debug, Default)]
struct Who {
    team_id: Option<String>,
    enterprise_id: Option<String>,
    user_id: Option<String>,
    channel_id: Option<String>,
    response_url: Option<String>,
    trigger_id: Option<String>,
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

const PANIC_REASON: &str =
    "the handler crashed. This is a bug in Sluice; the details are in its logs";

impl Inbound {
    /// Builds the inbound side. Handlers write to Slack through `outbox`; `slack` is the bot-token client for the
    /// calls bound to a request's 3-second `trigger_id` alone (`views.open`, `views.push`) and `views.update`.
    pub fn new(
        cfg: InboundConfig,
        registry: Registry,
        once: Arc<dyn OnceStore>,
        outbox: Arc<dyn Outbox>,
        slack: Client,
    ) -> Self {
        let stats = Arc::new(Stats::default());
        let urls = ResponseUrl::new(&cfg.response_url_hosts, stats.clone());
        Inbound {
            cfg,
            registry,
            once,
            outbox,
            slack,
            urls,
            stats,
            clock: Arc::new(unix_now),
        }
    }

    /// Replaces the clock used for the signature timestamp window (unix seconds), so tests can
    /// replay Slack's published test vector.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn now_unix(&self) -> i64 {
        (self.clock)()
    }

    /// Counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The `response_url` client (allow-listed, use-counted).
    pub fn response_urls(&self) -> &ResponseUrl {
        &self.urls
    }

    /// Handles one verified request and returns the acknowledgement. Handlers run in spawned
    /// tasks; this returns as soon as the acknowledgement is known.
    pub async fn process(self: &Arc<Self>, incoming: Incoming, delivery: Delivery) -> Ack {
        match incoming {
            Incoming::Event(body) => self.event(body, delivery).await,
            Incoming::Command(cmd) => self.command(cmd, delivery).await,
            Incoming::Interaction(i) => self.interaction(i, delivery).await,
        }
    }

    fn responder(&self, who: &Who) -> Responder {
        Responder {
            response_url: who.response_url.clone(),
            channel_id: who.channel_id.clone(),
            user_id: who.user_id.clone(),
            urls: self.urls.clone(),
            outbox: self.outbox.clone(),
        }
    }

    fn ctx<P>(&self, who: Who, delivery: &Delivery, payload: P) -> Ctx<P> {
        let respond = self.responder(&who);
        Ctx {
            trigger: who.trigger_id.map(|id| Trigger {
                id,
                received_at: delivery.received_at,
            }),
            team_id: who.team_id,
            enterprise_id: who.enterprise_id,
            user_id: who.user_id,
            channel_id: who.channel_id,
            response_url: who.response_url,
            views: self.slack.clone(),
            outbox: self.outbox.clone(),
            respond,
            retry_num: delivery.retry_num,
            payload,
        }
    }

    /// Claims `key`. `Err(ack)` when the request must not run (duplicate or store down).
    async fn claim(&self, kind: Kind, key: &str, ttl: Duration) -> Result<(), Ack> {
        match self.once.first_time(key, ttl).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::info!(kind = kind.as_str(), key, "duplicate delivery ignored");
                self.stats.duplicate(kind.as_str());
                Err(Ack::Empty)
            }
            Err(e) => {
                tracing::error!(kind = kind.as_str(), key, error = %e, "idempotency store failed; asking Slack to retry");
                self.stats.store_error();
                Err(Ack::Retry(
                    "idempotency store unavailable, please retry".into(),
                ))
            }
        }
    }

    /// Tells the user nothing handles what they did (counted, and a reply so they are not
    /// left waiting), without holding up the acknowledgement.
    fn not_handled(&self, kind: Kind, name: &str, responder: Responder) {
        self.stats.unhandled(kind.as_str());
        tracing::warn!(kind = kind.as_str(), name, "no handler registered");
        let reply = Reply::ephemeral(format!(
            "⚠️ Sluice has no handler for this {} (`{name}`). Ask whoever runs Sluice to configure it.",
            kind.as_str().replace('_', " ")
        ));
        tokio::spawn(async move {
            if let Err(e) = responder.send(&reply).await {
                tracing::warn!(error = %e, "could not tell the user their request is not handled");
            }
        });
    }

    /// Runs the middleware chain and `fut`, reporting errors and panics to the user. `None`
    /// when the handler did not produce a value (refused, failed, panicked).
    async fn guarded<T, F>(
        self: Arc<Self>,
        info: RequestInfo,
        responder: Responder,
        fut: F,
    ) -> Option<T>
    where
        F: Future<Output = HandlerResult<T>> + Send,
    {
        let chain = &self.registry.middleware;
        for (i, m) in chain.iter().enumerate() {
            // A middleware is code like a handler: its panic is caught and told the same way, and the ones that ran
            // before it still see the outcome.
            let decision = match AssertUnwindSafe(m.before(&info)).catch_unwind().await {
                Ok(d) => d,
                Err(panic) => {
                    self.stats.handler_failed(info.kind.as_str(), "panic");
                    tracing::error!(kind = info.kind.as_str(), name = %info.name, panic = %panic_message(&*panic), "middleware panicked");
                    let reply = Reply::ephemeral(format!("⚠️ That didn't work: {PANIC_REASON}"));
                    if let Err(e) = responder.send(&reply).await {
                        tracing::error!(error = %e, "could not tell the user their request failed");
                    }
                    let outcome = Err(PANIC_REASON.to_owned());
                    for m in chain[..i].iter().rev() {
                        after_guarded(m.as_ref(), &info, &outcome).await;
                    }
                    return None;
                }
            };
            if let Decision::Refuse(msg) = decision {
                self.stats.refused(info.kind.as_str());
                tracing::info!(kind = info.kind.as_str(), name = %info.name, user = ?info.user_id, "refused by middleware");
                if let Err(e) = responder.send(&Reply::ephemeral(msg.clone())).await {
                    tracing::warn!(error = %e, "could not tell the user they were refused");
                }
                let outcome = Err(format!("refused: {msg}"));
                for m in chain[..=i].iter().rev() {
                    after_guarded(m.as_ref(), &info, &outcome).await;
                }
                return None;
            }
        }
        self.stats.handled(info.kind.as_str());
        let (outcome, value) = match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(Ok(v)) => (Ok(()), Some(v)),
            Ok(Err(e)) => {
                self.stats.handler_failed(info.kind.as_str(), "error");
                tracing::warn!(kind = info.kind.as_str(), name = %info.name, error = %e, "handler failed");
                (Err(e.message), None)
            }
            Err(panic) => {
                self.stats.handler_failed(info.kind.as_str(), "panic");
                let msg = panic_message(&*panic);
                tracing::error!(kind = info.kind.as_str(), name = %info.name, panic = %msg, "handler panicked");
                (Err(PANIC_REASON.to_owned()), None)
            }
        };
        if let Err(reason) = &outcome {
            let reply = Reply::ephemeral(format!("⚠️ That didn't work: {reason}"));
            if let Err(e) = responder.send(&reply).await {
                tracing::error!(error = %e, "could not tell the user their request failed");
            }
        }
        for m in chain.iter().rev() {
            after_guarded(m.as_ref(), &info, &outcome).await;
        }
        value
    }

    /// Spawns the handler and acknowledges at once.
    fn spawn<T: Send + 'static>(
        self: &Arc<Self>,
        info: RequestInfo,
        responder: Responder,
        fut: impl Future<Output = HandlerResult<T>> + Send + 'static,
    ) -> Ack {
        tokio::spawn(self.clone().guarded(info, responder, fut));
        Ack::Empty
    }

    /// Spawns the handler and waits up to the budget for its answer; an answer that comes
    /// later goes to `late`.
    async fn spawn_sync<T, L, LF>(
        self: &Arc<Self>,
        info: RequestInfo,
        responder: Responder,
        fut: impl Future<Output = HandlerResult<T>> + Send + 'static,
        late: L,
    ) -> Option<T>
    where
        T: Send + 'static,
        L: FnOnce(T) -> LF + Send + 'static,
        LF: Future<Output = ()> + Send,
    {
        let (tx, mut rx) = oneshot::channel();
        let this = self.clone();
        tokio::spawn(async move {
            if let Some(v) = this.guarded(info, responder, fut).await {
                if let Err(v) = tx.send(v) {
                    late(v).await;
                }
            }
        });
        match tokio::time::timeout(self.cfg.sync_reply_budget, &mut rx).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(_)) => None,
            Err(_) => {
                // Close first so a value sent at this very moment is either read here or
                // handed back to the task (and so to `late`): never lost in between.
                rx.close();
                rx.try_recv().ok()
            }
        }
    }

    async fn event(self: &Arc<Self>, body: EventCallback, delivery: Delivery) -> Ack {
        match body.kind.as_str() {
            "url_verification" => {
                return Ack::Json(json!({ "challenge": body.challenge.unwrap_or_default() }))
            }
            "event_callback" => {}
            other => {
                tracing::info!(kind = other, "Events API notice");
                return Ack::Empty;
            }
        }
        let Some(event) = body.event.clone() else {
            tracing::warn!("event_callback without an event");
            return Ack::Empty;
        };
        let Some(h) = self.registry.events.get(&event.kind).cloned() else {
            self.stats.unhandled(Kind::Event.as_str());
            tracing::debug!(event_type = %event.kind, "no handler for event type");
            return Ack::Empty;
        };
        let Some(event_id) = body.event_id.clone().filter(|e| !e.is_empty()) else {
            tracing::warn!(event_type = %event.kind, "event without event_id: cannot be deduplicated, not run");
            return Ack::Empty;
        };
        let team = body.team().unwrap_or_else(|| "-".into());
        tracing::info!(
            event_id = %event_id, team = %team, event_type = %event.kind,
            retry_num = delivery.retry_num, retry_reason = ?delivery.retry_reason,
            "event received"
        );
        let key = format!("event:{team}:{event_id}");
        if let Err(ack) = self
            .claim(Kind::Event, &key, self.cfg.once_ttl_events)
            .await
        {
            return ack;
        }
        let who = Who {
            team_id: Some(team),
            enterprise_id: body.enterprise_id.clone(),
            user_id: event.user.clone(),
            channel_id: event.channel.clone(),
            ..Who::default()
        };
        let info = RequestInfo {
            kind: Kind::Event,
            name: event.kind.clone(),
            team_id: who.team_id.clone(),
            user_id: who.user_id.clone(),
            channel_id: who.channel_id.clone(),
        };
        let ctx = self.ctx(who, &delivery, body);
        let responder = ctx.respond.clone();
        self.spawn(info, responder, async move { h.handle(ctx).await })
    }

    async fn command(self: &Arc<Self>, cmd: SlashCommand, delivery: Delivery) -> Ack {
        if cmd.is_ssl_check() {
            return Ack::Empty;
        }
        let who = Who {
            team_id: some(&cmd.team_id),
            enterprise_id: cmd.enterprise_id.clone().filter(|e| !e.is_empty()),
            user_id: some(&cmd.user_id),
            channel_id: some(&cmd.channel_id),
            response_url: some(&cmd.response_url),
            trigger_id: some(&cmd.trigger_id),
        };
        let Some(h) = self.registry.commands.get(&cmd.command).cloned() else {
            self.stats.unhandled(Kind::Command.as_str());
            tracing::warn!(command = %cmd.command, "no handler for slash command");
            return Ack::Json(
                Reply::ephemeral(format!(
                    "⚠️ Sluice has no handler for `{}`. Ask whoever runs Sluice to configure it.",
                    cmd.command
                ))
                .to_json(),
            );
        };
        let info = RequestInfo {
            kind: Kind::Command,
            name: cmd.command.clone(),
            team_id: who.team_id.clone(),
            user_id: who.user_id.clone(),
            channel_id: who.channel_id.clone(),
        };
        let ctx = self.ctx(who, &delivery, cmd);
        let responder = ctx.respond.clone();
        let late_responder = responder.clone();
        let reply = self
            .spawn_sync(
                info,
                responder,
                async move { h.handle(ctx).await },
                |reply: Option<Reply>| async move {
                    if let Some(reply) = reply {
                        if let Err(e) = late_responder.send(&reply).await {
                            tracing::warn!(error = %e, "late slash command reply could not be posted");
                        }
                    }
                },
            )
            .await;
        match reply.flatten() {
            Some(r) => Ack::Json(r.to_json()),
            None => Ack::Empty,
        }
    }

    async fn interaction(self: &Arc<Self>, i: Interaction, delivery: Delivery) -> Ack {
        match i {
            Interaction::BlockActions(p) => {
                let c = &p.common;
                let channel = p
                    .channel
                    .as_ref()
                    .and_then(|ch| some(&ch.id))
                    .or_else(|| p.container.channel_id.clone());
                let who = || Who {
                    team_id: c.team_id(),
                    enterprise_id: c.enterprise_id(),
                    user_id: some(&c.user.id),
                    channel_id: channel.clone(),
                    response_url: c.response_url.clone().filter(|u| !u.is_empty()),
                    trigger_id: c.trigger_id.clone().filter(|t| !t.is_empty()),
                };
                // Where the click happened: the message, or the view for modal/home buttons.
                let place = match (&channel, &p.view) {
                    (Some(ch), _) => ch.clone(),
                    (None, Some(v)) => format!("view/{}", v.id),
                    (None, None) => "-".into(),
                };
                let message_ts = p
                    .container
                    .message_ts
                    .clone()
                    .or_else(|| p.message.as_ref().and_then(|m| some(&m.ts)))
                    .unwrap_or_else(|| "-".into());
                let team = c.team_id().unwrap_or_else(|| "-".into());
                for action in &p.actions {
                    let Some(h) = self.registry.find_action(&action.action_id) else {
                        let w = who();
                        let responder = self.responder(&w);
                        self.not_handled(Kind::Action, &action.action_id, responder);
                        continue;
                    };
                    let mut key = format!(
                        "action:{team}:{place}:{message_ts}:{}:{}",
                        action.action_id, c.user.id
                    );
                    // A modal-opening or re-runnable button: this click, not this person on this button.
                    if let Some(ts) = action.action_ts.as_deref().filter(|ts| {
                        !ts.is_empty() && self.registry.is_per_click(&action.action_id)
                    }) {
                        key.push_str(":click:");
                        key.push_str(ts);
                    }
                    if action.kind != "button" {
                        if let Some(sel) = selection(action) {
                            key.push(':');
                            key.push_str(&sel);
                        }
                    }
                    if let Err(ack) = self
                        .claim(Kind::Action, &key, self.cfg.once_ttl_actions)
                        .await
                    {
                        if matches!(ack, Ack::Retry(_)) {
                            return ack;
                        }
                        continue;
                    }
                    let w = who();
                    let info = RequestInfo {
                        kind: Kind::Action,
                        name: action.action_id.clone(),
                        team_id: w.team_id.clone(),
                        user_id: w.user_id.clone(),
                        channel_id: w.channel_id.clone(),
                    };
                    let ctx = self.ctx(
                        w,
                        &delivery,
                        ActionPayload {
                            action: action.clone(),
                            body: p.clone(),
                        },
                    );
                    let responder = ctx.respond.clone();
                    self.spawn(info, responder, async move { h.handle(ctx).await });
                }
                Ack::Empty
            }
            Interaction::BlockSuggestion(p) => {
                let c = &p.common;
                let who = Who {
                    team_id: c.team_id(),
                    enterprise_id: c.enterprise_id(),
                    user_id: some(&c.user.id),
                    channel_id: p.channel.as_ref().and_then(|ch| some(&ch.id)),
                    ..Who::default()
                };
                let Some(h) = self.registry.options.get(&p.action_id).cloned() else {
                    self.stats.unhandled(Kind::Options.as_str());
                    tracing::warn!(action_id = %p.action_id, "no options handler");
                    return Ack::Json(OptionsResponse::Empty.to_json());
                };
                let info = RequestInfo {
                    kind: Kind::Options,
                    name: p.action_id.clone(),
                    team_id: who.team_id.clone(),
                    user_id: who.user_id.clone(),
                    channel_id: who.channel_id.clone(),
                };
                let ctx = self.ctx(who, &delivery, p);
                let responder = ctx.respond.clone();
                let options = self
                    .spawn_sync(
                        info,
                        responder,
                        async move { h.handle(ctx).await },
                        |_| async {
                            tracing::warn!(
                                "options came after Slack stopped waiting; the menu shows none"
                            );
                        },
                    )
                    .await;
                Ack::Json(options.unwrap_or_default().to_json())
            }
            Interaction::ViewSubmission(p) => {
                let c = &p.common;
                let who = Who {
                    team_id: c.team_id(),
                    enterprise_id: c.enterprise_id(),
                    user_id: some(&c.user.id),
                    // A modal has no channel; an input with response_url_enabled gives one.
                    channel_id: p.response_urls.first().and_then(|r| some(&r.channel_id)),
                    response_url: p.response_urls.first().and_then(|r| some(&r.response_url)),
                    trigger_id: c.trigger_id.clone().filter(|t| !t.is_empty()),
                };
                let callback_id = p.view.callback_id.clone();
                let Some(h) = self.registry.views.get(&callback_id).cloned() else {
                    let responder = self.responder(&who);
                    self.not_handled(Kind::ViewSubmission, &callback_id, responder);
                    return Ack::Empty;
                };
                if let Some(trigger) = &who.trigger_id {
                    let team = who.team_id.clone().unwrap_or_else(|| "-".into());
                    let key = format!("view_submission:{team}:{trigger}");
                    if let Err(ack) = self
                        .claim(Kind::ViewSubmission, &key, self.cfg.once_ttl_actions)
                        .await
                    {
                        return ack;
                    }
                }
                let info = RequestInfo {
                    kind: Kind::ViewSubmission,
                    name: callback_id,
                    team_id: who.team_id.clone(),
                    user_id: who.user_id.clone(),
                    channel_id: who.channel_id.clone(),
                };
                let ctx = self.ctx(who, &delivery, p);
                let responder = ctx.respond.clone();
                let response = self
                    .spawn_sync(info, responder, async move { h.handle(ctx).await }, |r| async move {
                        tracing::warn!(response = ?r, "view_submission answer came after Slack stopped waiting; it is lost");
                    })
                    .await;
                match response.and_then(|r| r.to_json()) {
                    Some(v) => Ack::Json(v),
                    None => Ack::Empty,
                }
            }
            Interaction::ViewClosed(p) => {
                let c = &p.common;
                let who = Who {
                    team_id: c.team_id(),
                    enterprise_id: c.enterprise_id(),
                    user_id: some(&c.user.id),
                    ..Who::default()
                };
                let callback_id = p.view.callback_id.clone();
                let Some(h) = self.registry.views_closed.get(&callback_id).cloned() else {
                    // Nobody to tell: the user closed the modal on purpose.
                    self.stats.unhandled(Kind::ViewClosed.as_str());
                    return Ack::Empty;
                };
                if !p.view.id.is_empty() {
                    let team = who.team_id.clone().unwrap_or_else(|| "-".into());
                    let key = format!("view_closed:{team}:{}", p.view.id);
                    if let Err(ack) = self
                        .claim(Kind::ViewClosed, &key, self.cfg.once_ttl_actions)
                        .await
                    {
                        return ack;
                    }
                }
                let info = RequestInfo {
                    kind: Kind::ViewClosed,
                    name: callback_id,
                    team_id: who.team_id.clone(),
                    user_id: who.user_id.clone(),
                    channel_id: None,
                };
                let ctx = self.ctx(who, &delivery, p);
                let responder = ctx.respond.clone();
                self.spawn(info, responder, async move { h.handle(ctx).await })
            }
            Interaction::Shortcut(p) | Interaction::MessageAction(p) => {
                let c = &p.common;
                let who = Who {
                    team_id: c.team_id(),
                    enterprise_id: c.enterprise_id(),
                    user_id: some(&c.user.id),
                    channel_id: p.channel.as_ref().and_then(|ch| some(&ch.id)),
                    response_url: c.response_url.clone().filter(|u| !u.is_empty()),
                    trigger_id: c.trigger_id.clone().filter(|t| !t.is_empty()),
                };
                let Some(h) = self.registry.shortcuts.get(&p.callback_id).cloned() else {
                    let responder = self.responder(&who);
                    self.not_handled(Kind::Shortcut, &p.callback_id, responder);
                    return Ack::Empty;
                };
                if let Some(trigger) = &who.trigger_id {
                    let team = who.team_id.clone().unwrap_or_else(|| "-".into());
                    let key = format!("shortcut:{team}:{trigger}");
                    if let Err(ack) = self
                        .claim(Kind::Shortcut, &key, self.cfg.once_ttl_actions)
                        .await
                    {
                        return ack;
                    }
                }
                let info = RequestInfo {
                    kind: Kind::Shortcut,
                    name: p.callback_id.clone(),
                    team_id: who.team_id.clone(),
                    user_id: who.user_id.clone(),
                    channel_id: who.channel_id.clone(),
                };
                let ctx = self.ctx(who, &delivery, p);
                let responder = ctx.respond.clone();
                self.spawn(info, responder, async move { h.handle(ctx).await })
            }
            Interaction::Other { kind, .. } => {
                tracing::info!(kind = %kind, "interaction type not handled by Sluice");
                self.stats.unhandled("other");
                Ack::Empty
            }
        }
    }
}

/// What a non-button element has selected, so a new choice is a new action.
fn selection(a: &crate::models::Action) -> Option<String> {
    if let Some(o) = &a.selected_option {
        return Some(o.value.clone());
    }
    if let Some(os) = &a.selected_options {
        return Some(
            os.iter()
                .map(|o| o.value.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    a.selected_user
        .clone()
        .or_else(|| a.selected_users.as_ref().map(|u| u.join(",")))
        .or_else(|| a.selected_channel.clone())
        .or_else(|| a.selected_conversation.clone())
        .or_else(|| a.selected_date.clone())
        .or_else(|| a.selected_time.clone())
        .or_else(|| a.value.clone())
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Inbound>();
    is::<Ctx<Value>>();
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// A middleware's `after`, with its panic caught and logged: the request's outcome is already decided and told.
async fn after_guarded(
    m: &dyn crate::registry::Middleware,
    info: &RequestInfo,
    outcome: &Result<(), String>,
) {
    if let Err(panic) = AssertUnwindSafe(m.after(info, outcome))
        .catch_unwind()
        .await
    {
        tracing::error!(kind = info.kind.as_str(), name = %info.name, panic = %panic_message(&*panic), "middleware panicked after the request");
    }
}
