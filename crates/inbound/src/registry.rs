//! [`Registry`]: which handler runs for which slash command, action, view, shortcut, event or
//! options request — Bolt's listener idea in Rust — plus the [`Middleware`] chain around them.
//!
//! Handlers are async trait objects (`async_trait`); any `Fn(Ctx<P>) -> impl Future` closure
//! is a handler, so `registry.command("/ops", |ctx| async move { … })` works. Every handler
//! gets a [`Ctx`] with who/where the request came from, a [`Responder`] for answering the user,
//! the [`Trigger`] for opening modals, the Slack Web API client and the typed payload.

use crate::models::{BlockActions, BlockSuggestion, EventCallback, SelectOption, Shortcut};
use crate::models::{SlashCommand, ViewClosed, ViewSubmission};
use crate::outbox::Outbox;
use crate::respond::{Reply, RespondError, ResponseType, ResponseUrl, Trigger};
use async_trait::async_trait;
use serde_json::{json, Value};
use sluice_slack::api::{Client, View};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// What a handler reports when it could not do its job. The message is shown to the user
/// ("⚠️ That didn't work: <message>"), so say what went wrong and what to do, not internals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    pub message: String,
}

impl HandlerError {
    /// An error with a message for the user.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError::new(e.to_string())
    }
}

/// What handlers return.
pub type HandlerResult<T> = Result<T, HandlerError>;

/// How a `view_submission` handler wants the modal to react. Sent in the HTTP response (or
/// the Socket Mode ack), so it must be decided within Slack's 3 seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ViewResponse {
    /// Close this view.
    #[default]
    None,
    /// Keep the modal open and show these messages under the inputs (`block_id → message`).
    Errors(HashMap<String, String>),
    /// Replace the current view.
    Update(Value),
    /// Push a new view on the stack.
    Push(Value),
    /// Close every view of the modal.
    Clear,
}

impl ViewResponse {
    /// Keep the modal open with one error under `block_id`.
    pub fn error(block_id: impl Into<String>, message: impl Into<String>) -> Self {
        ViewResponse::Errors(HashMap::from([(block_id.into(), message.into())]))
    }

    /// The response body, or `None` for an empty 200.
    pub fn to_json(&self) -> Option<Value> {
        match self {
            ViewResponse::None => None,
            ViewResponse::Errors(e) => Some(json!({"response_action": "errors", "errors": e})),
            ViewResponse::Update(v) => Some(json!({"response_action": "update", "view": v})),
            ViewResponse::Push(v) => Some(json!({"response_action": "push", "view": v})),
            ViewResponse::Clear => Some(json!({"response_action": "clear"})),
        }
    }
}

/// Options for an external select menu.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum OptionsResponse {
    /// A flat list (at most 100; more are cut off, as Slack would refuse them).
    Options(Vec<SelectOption>),
    /// Labelled groups.
    Groups(Vec<(String, Vec<SelectOption>)>),
    /// No options.
    #[default]
    Empty,
}

impl OptionsResponse {
    /// The response body Slack expects.
    pub fn to_json(&self) -> Value {
        use sluice_slack_wire::limits::{OPTION_GROUPS, SELECT_OPTIONS};
        match self {
            OptionsResponse::Empty => json!({"options": []}),
            OptionsResponse::Options(o) => {
                json!({"options": o.iter().take(SELECT_OPTIONS).collect::<Vec<_>>()})
            }
            OptionsResponse::Groups(g) => json!({"option_groups": g
                .iter()
                .take(OPTION_GROUPS)
                .map(|(label, o)| json!({
                    "label": {"type": "plain_text", "text": label},
                    "options": o.iter().take(SELECT_OPTIONS).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()}),
        }
    }
}

/// The action a handler was chosen for, and the whole payload it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPayload {
    pub action: crate::models::Action,
    pub body: BlockActions,
}

/// Answers the user who made the request: through the `response_url` when there is one (a direct call, bound to
/// the request), else `chat.postEphemeral` in the channel, else a direct message from the app — both through the
/// integrator's [`Outbox`], never straight to Slack.
#[derive(Debug, Clone)]
pub struct Responder {
    pub(crate) response_url: Option<String>,
    pub(crate) channel_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) urls: ResponseUrl,
    pub(crate) outbox: Arc<dyn Outbox>,
}

impl Responder {
    /// Sends `reply` to the user.
    ///
    /// A `response_url` that cannot take the reply (expired: 404 or 410; used five times; unreachable) is not the
    /// end of it: the reply goes through the outbox instead, as if there had been none, so the user is not left with
    /// nothing. Only a URL that is not Slack's is refused outright.
    pub async fn send(&self, reply: &Reply) -> Result<(), RespondError> {
        let mut fell_back = false;
        if let Some(url) = &self.response_url {
            match self.urls.post(url, &reply.to_json()).await {
                Ok(()) => return Ok(()),
                Err(
                    e @ (RespondError::Exhausted
                    | RespondError::Http { .. }
                    | RespondError::Transport(_)),
                ) if self.user_id.is_some() => {
                    metrics::counter!("sluice_response_url_fallbacks_total").increment(1);
                    tracing::info!(error = %e, "response_url could not take the reply; sending it through the outbox");
                    fell_back = true;
                }
                Err(e) => return Err(e),
            }
        }
        let user = self.user_id.as_deref().ok_or(RespondError::NoTarget)?;
        // A reply the response_url would have shown the whole channel stays public when it is re-routed.
        let public = fell_back && reply.response_type == ResponseType::InChannel;
        let mut args = reply.to_json();
        if let Some(obj) = args.as_object_mut() {
            obj.remove("response_type");
            obj.remove("replace_original");
            obj.remove("delete_original");
        }
        match &self.channel_id {
            Some(channel) if public => {
                args["channel"] = json!(channel);
                self.outbox
                    .enqueue("chat.postMessage", args)
                    .await
                    .map_err(RespondError::Outbox)
            }
            Some(channel) => {
                args["channel"] = json!(channel);
                args["user"] = json!(user);
                self.outbox
                    .enqueue("chat.postEphemeral", args)
                    .await
                    .map_err(RespondError::Outbox)
            }
            None => {
                // Modals have no channel: the app's DM with the user is the only place left.
                args["channel"] = json!(user);
                self.outbox
                    .enqueue("chat.postMessage", args)
                    .await
                    .map_err(RespondError::Outbox)
            }
        }
    }
}

/// Everything a handler knows about its request.
#[derive(Debug, Clone)]
pub struct Ctx<P> {
    pub team_id: Option<String>,
    pub enterprise_id: Option<String>,
    pub user_id: Option<String>,
    pub channel_id: Option<String>,
    pub response_url: Option<String>,
    pub trigger: Option<Trigger>,
    /// The Web API client (bot token), for the calls bound to this request's 3-second `trigger_id` only
    /// ([`Ctx::open_view`], [`Ctx::push_view`]) and [`Ctx::update_view`]. Every other write goes through
    /// [`Ctx::outbox`].
    pub(crate) views: Client,
    /// Where this handler's Slack writes go: the integrator's durable outbox.
    pub outbox: Arc<dyn Outbox>,
    pub respond: Responder,
    /// `X-Slack-Retry-Num` / Socket Mode `retry_attempt` (0 on the first delivery).
    pub retry_num: u32,
    pub payload: P,
}

impl<P> Ctx<P> {
    /// Answers the user (see [`Responder::send`]).
    pub async fn reply(&self, reply: Reply) -> Result<(), RespondError> {
        self.respond.send(&reply).await
    }

    /// `views.open` with this request's trigger; fails fast once the 3 s window is gone.
    pub async fn open_view(&self, view: &Value) -> Result<View, RespondError> {
        self.trigger
            .as_ref()
            .ok_or(RespondError::NoTrigger)?
            .open(&self.views, view)
            .await
    }

    /// `views.push` with this request's trigger; fails fast once the 3 s window is gone.
    pub async fn push_view(&self, view: &Value) -> Result<View, RespondError> {
        self.trigger
            .as_ref()
            .ok_or(RespondError::NoTrigger)?
            .push(&self.views, view)
            .await
    }

    /// `views.update` (needs no trigger), sent **directly**, outside the outbox: one of the named direct calls, with
    /// [`Ctx::open_view`], [`Ctx::push_view`] and the response_url replies. The user is looking at the modal now;
    /// queued behind a channel's messages the update would land after they moved on, and its `hash` would be stale.
    pub async fn update_view(
        &self,
        view_id: &str,
        hash: Option<&str>,
        view: &Value,
    ) -> Result<View, RespondError> {
        Ok(self.views.views_update(view_id, hash, view).await?)
    }
}

macro_rules! handler_trait {
    ($(#[$doc:meta])* $name:ident, $payload:ty, $out:ty) => {
        $(#[$doc])*
        #[async_trait]
        pub trait $name: Send + Sync + 'static {
            async fn handle(&self, ctx: Ctx<$payload>) -> HandlerResult<$out>;
        }

        #[async_trait]
        impl<F, Fut> $name for F
        where
            F: Fn(Ctx<$payload>) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = HandlerResult<$out>> + Send + 'static,
        {
            async fn handle(&self, ctx: Ctx<$payload>) -> HandlerResult<$out> {
                (self)(ctx).await
            }
        }
    };
}

handler_trait!(
    /// Runs a slash command. `Some(reply)` ready within ~2.5 s becomes the HTTP response;
    /// later it is posted through the `response_url`.
    CommandHandler, SlashCommand, Option<Reply>
);
handler_trait!(
    /// Runs when a user acts on an interactive element.
    ActionHandler, ActionPayload, ()
);
handler_trait!(
    /// Decides what a submitted modal does; the answer goes back in the HTTP response.
    ViewHandler, ViewSubmission, ViewResponse
);
handler_trait!(
    /// Runs when a modal with `notify_on_close` is closed.
    ViewClosedHandler, ViewClosed, ()
);
handler_trait!(
    /// Runs a global or message shortcut.
    ShortcutHandler, Shortcut, ()
);
handler_trait!(
    /// Runs for an Events API event.
    EventHandler, EventCallback, ()
);
handler_trait!(
    /// Supplies options for an external select menu, synchronously.
    OptionsHandler, BlockSuggestion, OptionsResponse
);

/// The kind of request a middleware is looking at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Command,
    Action,
    ViewSubmission,
    ViewClosed,
    Shortcut,
    Event,
    Options,
}

impl Kind {
    /// Label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Command => "command",
            Kind::Action => "action",
            Kind::ViewSubmission => "view_submission",
            Kind::ViewClosed => "view_closed",
            Kind::Shortcut => "shortcut",
            Kind::Event => "event",
            Kind::Options => "options",
        }
    }
}

/// What a middleware sees of a request before its handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub kind: Kind,
    /// The command, action_id, callback_id or event type the handler was chosen by.
    pub name: String,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub channel_id: Option<String>,
}

/// A middleware's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// Do not run the handler; tell the user this (ephemeral).
    Refuse(String),
}

/// Code around every handler, in registration order: logging, authorisation (refuse with a
/// message), error reporting. `before` runs in order and the first refusal stops the chain;
/// `after` runs for every middleware whose `before` ran, with the handler's outcome
/// (`Err` holds the reason shown to the user, panics included).
#[async_trait]
pub trait Middleware: Send + Sync + 'static {
    async fn before(&self, _req: &RequestInfo) -> Decision {
        Decision::Continue
    }
    async fn after(&self, _req: &RequestInfo, _outcome: &Result<(), String>) {}
}

/// Handlers by name.
#[derive(Default, Clone)]
pub struct Registry {
    pub(crate) commands: HashMap<String, Arc<dyn CommandHandler>>,
    pub(crate) actions: HashMap<String, Arc<dyn ActionHandler>>,
    pub(crate) action_patterns: Vec<(regex::Regex, Arc<dyn ActionHandler>)>,
    pub(crate) views: HashMap<String, Arc<dyn ViewHandler>>,
    pub(crate) views_closed: HashMap<String, Arc<dyn ViewClosedHandler>>,
    pub(crate) shortcuts: HashMap<String, Arc<dyn ShortcutHandler>>,
    pub(crate) events: HashMap<String, Arc<dyn EventHandler>>,
    pub(crate) options: HashMap<String, Arc<dyn OptionsHandler>>,
    pub(crate) middleware: Vec<Arc<dyn Middleware>>,
    /// `action_id` prefixes of buttons keyed per click ([`Registry::keyed_per_click`]).
    pub(crate) per_click: Vec<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = |m: &dyn Fn() -> Vec<String>| m();
        f.debug_struct("Registry")
            .field(
                "commands",
                &keys(&|| self.commands.keys().cloned().collect()),
            )
            .field("actions", &keys(&|| self.actions.keys().cloned().collect()))
            .field("views", &keys(&|| self.views.keys().cloned().collect()))
            .field("events", &keys(&|| self.events.keys().cloned().collect()))
            .field("middleware", &self.middleware.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A slash command, with its slash: `"/ops"`.
    pub fn command(&mut self, name: &str, h: impl CommandHandler) -> &mut Self {
        self.commands.insert(name.to_owned(), Arc::new(h));
        self
    }

    /// An interactive element by exact `action_id`.
    pub fn action(&mut self, action_id: &str, h: impl ActionHandler) -> &mut Self {
        self.actions.insert(action_id.to_owned(), Arc::new(h));
        self
    }

    /// Interactive elements whose `action_id` matches `pattern` (tried in registration order,
    /// after exact matches).
    pub fn action_matching(&mut self, pattern: regex::Regex, h: impl ActionHandler) -> &mut Self {
        self.action_patterns.push((pattern, Arc::new(h)));
        self
    }

    /// Buttons whose `action_id` starts with `prefix` are de-duplicated per click (the click's `action_ts`, the same
    /// in Slack's retries of it) rather than per user, message and button for 10 minutes. For a button that opens a
    /// modal (closing it and clicking again must open it again) or that may be run again once it finished.
    pub fn keyed_per_click(&mut self, prefix: &str) -> &mut Self {
        self.per_click.push(prefix.to_owned());
        self
    }

    pub(crate) fn is_per_click(&self, action_id: &str) -> bool {
        self.per_click
            .iter()
            .any(|p| action_id.starts_with(p.as_str()))
    }

    /// A modal submission by the view's `callback_id`.
    pub fn view_submission(&mut self, callback_id: &str, h: impl ViewHandler) -> &mut Self {
        self.views.insert(callback_id.to_owned(), Arc::new(h));
        self
    }

    /// A modal closed by the user, by the view's `callback_id`.
    pub fn view_closed(&mut self, callback_id: &str, h: impl ViewClosedHandler) -> &mut Self {
        self.views_closed
            .insert(callback_id.to_owned(), Arc::new(h));
        self
    }

    /// A global (`shortcut`) or message (`message_action`) shortcut by `callback_id`.
    pub fn shortcut(&mut self, callback_id: &str, h: impl ShortcutHandler) -> &mut Self {
        self.shortcuts.insert(callback_id.to_owned(), Arc::new(h));
        self
    }

    /// An Events API event by its inner `event.type` (`app_mention`, `reaction_added`, …).
    pub fn event(&mut self, event_type: &str, h: impl EventHandler) -> &mut Self {
        self.events.insert(event_type.to_owned(), Arc::new(h));
        self
    }

    /// Options for the external select with this `action_id`.
    pub fn options(&mut self, action_id: &str, h: impl OptionsHandler) -> &mut Self {
        self.options.insert(action_id.to_owned(), Arc::new(h));
        self
    }

    /// Adds a middleware at the end of the chain.
    pub fn middleware(&mut self, m: impl Middleware) -> &mut Self {
        self.middleware.push(Arc::new(m));
        self
    }

    pub(crate) fn find_action(&self, action_id: &str) -> Option<Arc<dyn ActionHandler>> {
        self.actions.get(action_id).cloned().or_else(|| {
            self.action_patterns
                .iter()
                .find(|(re, _)| re.is_match(action_id))
                .map(|(_, h)| h.clone())
        })
    }
}
