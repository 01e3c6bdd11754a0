//! `sluice.toml`: the one configuration file, its validation and its secrets.
//!
//! [`Config::load`] parses the file, resolves secrets from the environment or from files, and
//! builds the router and renderer, collecting *every* problem as a [`Problem`] that names the
//! line and says how to fix it. `sluice check` prints those problems; `serve` refuses to start
//! on any of them. Secrets are never accepted inline: a config file is the kind of thing that
//! ends up in git.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use sluice_core::inhibit::{InhibitRuleConfig, Inhibitor};
use sluice_core::render::Renderer;
use sluice_core::route::{Router, RoutingConfig};
use sluice_slack::api::Client;
use sluice_slack_wire::secret::Secret;
use toml::Spanned;

pub mod actions;
mod approvals;
pub mod commands;
pub mod console;
pub mod forms;
pub mod incidents;
pub mod steps;
pub use approvals::ApprovalsConfig;
pub use commands::ChatopsConfig;

/// The file as written. Every table denies unknown keys so that a typo is an error, not a
/// silently ignored setting.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub slack: SlackConfig,
    #[serde(default)]
    pub dispatch: DispatchConfig,
    #[serde(default)]
    pub dedup: DedupConfig,
    #[serde(default)]
    pub actions: RawActions,
    #[serde(default)]
    pub approvals: approvals::RawApprovals,
    /// `[console]`: the operator console's login throttle (`config/console.rs`).
    #[serde(default)]
    pub console: console::RawConsole,
    /// `[[action]]`: named calls to internal systems (`config/actions.rs`).
    #[serde(default, rename = "action")]
    pub action_defs: Vec<Spanned<actions::RawAction>>,
    #[serde(default, rename = "api_key")]
    pub api_keys: Vec<Spanned<ApiKeyConfig>>,
    #[serde(default, rename = "hook")]
    pub hooks: Vec<Spanned<HookConfig>>,
    #[serde(default, rename = "source")]
    pub sources: Vec<Spanned<SourceConfig>>,
    #[serde(default)]
    pub routing: RoutingConfig,
    /// `[[inhibit]]`: while a matching source alert fires, its targets are muted.
    #[serde(default)]
    pub inhibit: Vec<Spanned<InhibitRuleConfig>>,
    /// Template name → minijinja source, or `{ file = "path" }`.
    #[serde(default)]
    pub templates: BTreeMap<String, Spanned<TemplateSource>>,
    /// `[[command]]`, `[[rotation]]`, `[[schedule]]`: ChatOps, checked in `config/commands.rs`.
    #[serde(default, rename = "command")]
    pub commands: Vec<Spanned<commands::RawCommand>>,
    #[serde(default, rename = "rotation")]
    pub rotations: Vec<Spanned<commands::RawRotation>>,
    #[serde(default, rename = "schedule")]
    pub schedules: Vec<Spanned<commands::RawSchedule>>,
    /// `[[form]]`: modals that feed an `[[action]]` (`config/forms.rs`).
    #[serde(default, rename = "form")]
    pub forms: Vec<Spanned<forms::RawForm>>,
    /// `[[step]]`: actions offered to Workflow Builder as custom steps (`config/steps.rs`).
    #[serde(default, rename = "step")]
    pub steps: Vec<Spanned<steps::RawStep>>,
    /// `[[incident_type]]`: incidents and their war rooms, checked in `config/incidents.rs`.
    #[serde(default, rename = "incident_type")]
    pub incident_types: Vec<Spanned<incidents::RawIncidentType>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// API requests handled at once; more get 503 with Retry-After at once instead of queueing.
    pub max_in_flight: usize,
    /// Requests without an API key (hooks, GitHub and GitLab webhooks) handled at once, in a pool of their own so
    /// that slow or hostile unauthenticated clients cannot take the slots of authenticated ones.
    pub max_in_flight_unauthenticated: usize,
    /// Open connections at once; past it a new connection is closed at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, also while a kept-alive connection waits for its next one.
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers are in; slower gets 408.
    pub body_timeout_ms: u64,
    pub log_format: LogFormat,
    /// A TLS-terminating proxy or load balancer stands in front, so a non-loopback `listen` is not plain HTTP to
    /// the world. Without it such a `listen` earns a warning.
    pub behind_tls_proxy: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            max_in_flight: 1024,
            max_in_flight_unauthenticated: 256,
            max_connections: 4096,
            header_timeout_ms: 30_000,
            body_timeout_ms: 10_000,
            log_format: LogFormat::Pretty,
            behind_tls_proxy: false,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://path.db` (default) or `postgres://…`. May also come from `url_env`.
    pub url: String,
    pub url_env: Option<String>,
    /// `full` (fsync every commit) or `normal` (survives a process crash, not a power cut).
    pub durability: String,
    /// Delivered outbox rows and closed alerts older than this are pruned.
    pub retention_hours: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: "sqlite://sluice.db".into(),
            url_env: None,
            durability: "full".into(),
            retention_hours: 24 * 7,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// Base URL of the Web API. Point it at the simulator for tests and the demo.
    pub api_base: String,
    /// Environment variable holding the bot token (`xoxb-…`).
    pub bot_token_env: Option<String>,
    /// File holding the bot token.
    pub bot_token_file: Option<PathBuf>,
    /// Slack rejects inline tokens; so do we. Present only to give a clear error.
    pub bot_token: Option<Spanned<String>>,
    /// The workspace id used to key rate limits and lanes.
    pub team_id: String,
    pub timeout_ms: u64,
    pub limits: SlackLimits,
    /// Environment variable or file holding the signing secret. With it, Sluice serves
    /// `/slack/events`, `/slack/interactions`, `/slack/commands` and `/slack/options`.
    pub signing_secret_env: Option<String>,
    pub signing_secret_file: Option<PathBuf>,
    /// Refused with a clear error: the signing secret is a secret.
    pub signing_secret: Option<Spanned<String>>,
    /// Hosts besides Slack's that response_url may point at (`127.0.0.1:9999` for the simulator).
    pub response_url_hosts: Vec<String>,
    /// Receive Slack's requests over Socket Mode instead of public endpoints.
    pub socket_mode: Option<SocketModeConfig>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SocketModeConfig {
    /// Environment variable or file holding the app-level token (`xapp-…`).
    pub app_token_env: Option<String>,
    pub app_token_file: Option<PathBuf>,
    /// WebSocket connections kept open (Slack allows up to 10).
    #[serde(default = "default_connections")]
    pub connections: usize,
}

fn default_connections() -> usize {
    2
}

/// `[actions]` as written: who may act on alert cards, where escalations go, the acknowledging reaction and the
/// slash command's name. Checked into [`ActionsConfig`].
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawActions {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub channel_members: bool,
    pub escalate_group: Option<Spanned<String>>,
    pub escalate_channel: Option<Spanned<String>>,
    pub ack_reaction: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    /// Signing and destinations of outgoing calls, checked in `config/approvals.rs`.
    pub outgoing_secret_env: Option<Spanned<String>>,
    pub outgoing_secret_file: Option<Spanned<PathBuf>>,
    pub outgoing_secret: Option<Spanned<String>>,
    pub allow_link_local: Vec<Spanned<String>>,
}

/// Who may act on alert cards, where escalations go, and the slash command's name (`[actions]`, checked).
#[derive(Debug, Clone)]
pub struct ActionsConfig {
    /// Slack user ids allowed to act.
    pub users: Vec<String>,
    /// Slack user group ids (`S…`) whose members may act.
    pub groups: Vec<String>,
    /// Members of the channel a card is in may act on it. With `users` and `groups` empty and this off,
    /// everyone may act.
    pub channel_members: bool,
    /// The on-call user group (`S…`) that Escalate mentions.
    pub escalate_group: Option<String>,
    /// The channel (name or id) that Escalate posts to, with a link to the card.
    pub escalate_channel: Option<String>,
    /// The emoji (name without colons) that acknowledges an alert when someone reacts with it on its card;
    /// `None` when set to "" (reactions then do nothing).
    pub ack_reaction: Option<String>,
    /// The slash command Sluice answers.
    pub command: String,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            users: Vec::new(),
            groups: Vec::new(),
            channel_members: false,
            escalate_group: None,
            escalate_channel: None,
            ack_reaction: Some(DEFAULT_ACK_REACTION.into()),
            command: "/sluice".into(),
        }
    }
}

/// The reaction that acknowledges when `[actions] ack_reaction` is not set.
pub const DEFAULT_ACK_REACTION: &str = "eyes";

impl ActionsConfig {
    /// Escalate has somewhere to go (so cards offer the button).
    pub fn can_escalate(&self) -> bool {
        self.escalate_group.is_some() || self.escalate_channel.is_some()
    }
}

type Report<'a> = dyn FnMut(Option<std::ops::Range<usize>>, String, &str) + 'a;

/// Checks `[actions]`, reporting each problem with its line and fix.
fn check_actions(raw: &RawActions, p: &mut Report<'_>) -> ActionsConfig {
    let defaults = ActionsConfig::default();
    let command = match &raw.command {
        Some(c) if !c.get_ref().starts_with('/') || c.get_ref().len() < 2 => {
            p(
                Some(c.span()),
                format!("actions.command {:?} must start with /", c.get_ref()),
                "for example \"/sluice\"",
            );
            defaults.command.clone()
        }
        Some(c) => c.get_ref().clone(),
        None => defaults.command.clone(),
    };
    let escalate_group = raw.escalate_group.as_ref().and_then(|g| {
        let id = g.get_ref().trim();
        let looks_like_id = id.len() > 1
            && id.starts_with('S')
            && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if looks_like_id {
            Some(id.to_string())
        } else {
            p(
                Some(g.span()),
                format!("actions.escalate_group {:?} is not a user group id", g.get_ref()),
                "use the group's id, which starts with S (in Slack: People → User groups → the group → ⋯ → Copy group ID), not its @handle",
            );
            None
        }
    });
    let escalate_channel = raw.escalate_channel.as_ref().and_then(|c| {
        let name = c.get_ref().trim().trim_start_matches('#');
        let valid = !name.is_empty()
            && name.chars().count() <= 80
            && name
                .chars()
                .all(|ch| ch.is_alphanumeric() || ch == '-' || ch == '_');
        if valid {
            Some(name.to_string())
        } else {
            p(
                Some(c.span()),
                format!("actions.escalate_channel {:?} is not a channel name or id", c.get_ref()),
                "use the channel's name (\"incidents\") or id (\"C0123ABCD\"); Sluice must be a member of it",
            );
            None
        }
    });
    let ack_reaction = match &raw.ack_reaction {
        None => defaults.ack_reaction.clone(),
        Some(r) => {
            let name = r.get_ref().trim().trim_matches(':');
            if name.is_empty() {
                None
            } else if name
                .chars()
                .all(|ch| ch.is_alphanumeric() || "_-+'".contains(ch))
            {
                Some(name.to_string())
            } else {
                p(
                    Some(r.span()),
                    format!("actions.ack_reaction {:?} is not an emoji name", r.get_ref()),
                    "use the emoji's name as Slack shows it, e.g. \"eyes\" or \":white_check_mark:\"; \"\" turns acknowledging by reaction off",
                );
                None
            }
        }
    };
    ActionsConfig {
        users: raw.users.clone(),
        groups: raw.groups.clone(),
        channel_members: raw.channel_members,
        escalate_group,
        escalate_channel,
        ack_reaction,
        command,
    }
}

/// Limits Slack applies that are not fixed per method: they can differ per workspace.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct SlackLimits {
    /// Workspace-wide ceiling on chat.postMessage across all channels. Slack documents
    /// "several hundred per minute"; raise it only if Slack has raised it for you.
    pub post_message_per_minute: u32,
}

impl Default for SlackLimits {
    fn default() -> Self {
        SlackLimits {
            post_message_per_minute: sluice_slack_wire::tiers::POST_MESSAGE_WORKSPACE_PER_MINUTE,
        }
    }
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            api_base: "https://slack.com/api/".into(),
            bot_token_env: Some("SLUICE_SLACK_BOT_TOKEN".into()),
            bot_token_file: None,
            bot_token: None,
            team_id: "default".into(),
            timeout_ms: 10_000,
            limits: SlackLimits::default(),
            signing_secret_env: Some("SLUICE_SLACK_SIGNING_SECRET".into()),
            signing_secret_file: None,
            signing_secret: None,
            response_url_hosts: Vec::new(),
            socket_mode: None,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// Give up retrying a transient failure after this long and dead-letter the message.
    pub max_age_secs: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Lanes (channels) worked at once by this process.
    pub max_lanes: usize,
    /// How long a lane lease lasts before another replica may take it over.
    pub lease_ms: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_age_secs: 3600,
            backoff_base_ms: 250,
            backoff_max_ms: 30_000,
            max_lanes: 256,
            lease_ms: 15_000,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Events with the same `dedup_key` within this window are merged into one message.
    pub window_secs: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig { window_secs: 3600 }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub name: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Environment variable holding the key.
    pub key_env: Option<String>,
    /// File holding the key.
    pub key_file: Option<PathBuf>,
    /// Hex SHA-256 of the key, for configs that must not be able to read the key at all.
    pub sha256: Option<String>,
    /// Rejected with a clear error: keys are secrets.
    pub key: Option<String>,
}

fn default_scopes() -> Vec<String> {
    vec![
        "events:write".into(),
        "messages:write".into(),
        "read".into(),
    ]
}

/// What an API key may do.
pub const SCOPES: &[&str] = &[
    "events:write",
    "messages:write",
    "silences:write",
    "approvals:write",
    "read",
    "admin",
];

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// The hook's name: `POST /hooks/{name}/{secret}`.
    pub name: String,
    pub channel: String,
    /// Environment variable or file holding the hook's URL secret.
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret: Option<String>,
}

/// A webhook source (Alertmanager, Grafana, GitHub, GitLab) at `POST /v1/sources/{name}`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    /// The adapter: alertmanager, grafana, github or gitlab. Default: the name.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// GitHub's webhook secret or GitLab's token, from the environment or a file.
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret: Option<String>,
}

/// A configured source, ready to parse deliveries.
pub struct SourceInstance {
    pub name: String,
    pub adapter: Box<dyn sluice_sources::Source + Send + Sync>,
    /// Sources without their own signature (Alertmanager, Grafana) authenticate with an API key.
    pub needs_api_key: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum TemplateSource {
    Inline(String),
    File { file: PathBuf },
}

/// One thing wrong with the configuration, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
    /// Warnings are reported by `check` but do not stop `serve`.
    pub warning: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.warning { "warning" } else { "error" };
        match self.line {
            Some(line) => write!(f, "{kind}: line {line}: {}", self.message)?,
            None => write!(f, "{kind}: {}", self.message)?,
        }
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// A caller's key, held only as its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    pub sha256: [u8; 32],
    pub scopes: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub name: String,
    pub channel: String,
    pub secret: Secret,
}

/// A validated configuration, ready to run.
pub struct Config {
    pub server: ServerConfig,
    pub storage_url: String,
    pub storage: StorageConfig,
    pub slack: SlackConfig,
    pub bot_token: Option<Secret>,
    /// Set when Slack's requests are to be served (HTTP endpoints or Socket Mode).
    pub signing_secret: Option<Secret>,
    /// Set when Socket Mode is configured.
    pub app_token: Option<Secret>,
    pub actions: ActionsConfig,
    /// `[approvals]` and the outgoing calls' secret and allowed addresses.
    pub approvals: ApprovalsConfig,
    /// `[[action]]`s by name, their templates compiled.
    pub action_defs: std::sync::Arc<actions::Actions>,
    /// `[[command]]`, `[[rotation]]` and `[[schedule]]`.
    pub chatops: ChatopsConfig,
    /// `[[form]]`s.
    pub forms: forms::Forms,
    /// `[[step]]`s, by action name.
    pub steps: std::sync::Arc<steps::Steps>,
    /// `[[incident_type]]`.
    pub incidents: incidents::IncidentsConfig,
    /// `[console]`.
    pub console: console::ConsoleConfig,
    pub dispatch: DispatchConfig,
    pub dedup: DedupConfig,
    pub api_keys: Vec<ApiKey>,
    pub hooks: Vec<Hook>,
    pub sources: Vec<SourceInstance>,
    pub router: Router,
    pub inhibitor: Inhibitor,
    /// Shared with the dispatcher, which renders living alert cards at send time.
    pub renderer: std::sync::Arc<Renderer>,
    /// Non-fatal findings (unreachable rules, unrouted events).
    pub warnings: Vec<Problem>,
    /// The text this config was read from (the console shows it redacted: `console::config_view`).
    pub source: std::sync::Arc<str>,
}

/// Where secrets come from: the process environment in production, a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// 1-based line of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl Config {
    /// The Slack client `serve` sends with, or why there can be none: no bot token (the variable named by
    /// `slack.bot_token_env` is unset, or the file is missing), or a token or `slack.api_base` the client refuses.
    ///
    /// `sluice check` and `server::start` both call this, so `check` refuses exactly the configurations `serve`
    /// would refuse at start-up (the one thing `check` cannot know is whether the database answers). `migrate` and
    /// `dlq` do not call Slack and do not need it.
    pub fn slack_client(&self) -> Result<Client, Vec<Problem>> {
        let problem = |message: String, fix: &str| Problem {
            line: None,
            message,
            fix: fix.to_string(),
            warning: false,
        };
        let Some(token) = self.bot_token.clone() else {
            return Err(vec![problem(
                "no Slack bot token: the variable named by slack.bot_token_env (default SLUICE_SLACK_BOT_TOKEN) is not set, and there is no slack.bot_token_file".into(),
                "set that variable, or put the token in a file and name it with slack.bot_token_file under [slack]",
            )]);
        };
        let timeout = std::time::Duration::from_millis(self.slack.timeout_ms);
        Client::new(&self.slack.api_base, token, timeout).map_err(|e| {
            vec![problem(
                format!("the Slack client cannot be built: {e}"),
                "set slack.api_base to an http(s) URL (Slack's https://slack.com/api/ by default) and check the token",
            )]
        })
    }

    /// Read and validate a file. `Err` holds every problem found, errors and warnings.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, Vec<Problem>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Problem {
                line: None,
                message: format!("cannot read {}: {e}", path.display()),
                fix: "pass the path of your sluice.toml with --config, or create one (see README)"
                    .into(),
                warning: false,
            }]
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base, env)
    }

    /// Validate config text. Relative file paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path, env: &dyn Env) -> Result<Config, Vec<Problem>> {
        let raw = read_raw(text)?;
        let mut problems = Vec::new();
        let mut p = |span: Option<std::ops::Range<usize>>, message: String, fix: &str| {
            problems.push(Problem {
                line: span.map(|s| line_of(text, s.start)),
                message,
                fix: fix.to_string(),
                warning: false,
            });
        };

        // Storage.
        let storage_url = match &raw.storage.url_env {
            Some(var) => match env.var(var) {
                Some(url) => url,
                None => {
                    p(
                        None,
                        format!("storage.url_env names ${var}, which is not set"),
                        "export the variable or use storage.url",
                    );
                    String::new()
                }
            },
            None => raw.storage.url.clone(),
        };
        if !storage_url.is_empty()
            && !storage_url.starts_with("sqlite:")
            && !storage_url.starts_with("postgres://")
            && !storage_url.starts_with("postgresql://")
        {
            p(
                None,
                format!("storage.url {storage_url:?} is neither sqlite: nor postgres://"),
                "use sqlite://sluice.db (one box) or postgres://user@host/db (replicas)",
            );
        }
        if raw.storage.url_env.is_none() {
            if let Some(password) = url::Url::parse(&storage_url)
                .ok()
                .and_then(|u| u.password().map(str::to_owned))
            {
                let line = text.find(&storage_url).or_else(|| text.find(&password));
                p(
                    line.map(|at| at..at),
                    "storage.url has its database password inline: secrets in config files end up in git".into(),
                    "remove it from the URL, change the password, and give the whole URL through storage.url_env \
                     (e.g. url_env = \"SLUICE_DATABASE_URL\"), or keep it in ~/.pgpass or PGPASSWORD",
                );
            }
        }
        if !matches!(raw.storage.durability.as_str(), "full" | "normal") {
            p(
                None,
                format!("storage.durability {:?} is not full or normal", raw.storage.durability),
                "use \"full\" (fsync each commit, the default) or \"normal\" (survives a crash of sluice, not of the machine)",
            );
        }

        // Slack token: never inline.
        if let Some(inline) = &raw.slack.bot_token {
            p(
                Some(inline.span()),
                "slack.bot_token is inline: tokens in config files end up in git".into(),
                "remove it, revoke the token, and set slack.bot_token_env (default SLUICE_SLACK_BOT_TOKEN) or slack.bot_token_file",
            );
        }
        let bot_token = match (&raw.slack.bot_token_file, &raw.slack.bot_token_env) {
            (Some(file), _) => match read_secret_file(base, file) {
                Ok(s) => Some(s),
                Err(e) => {
                    p(
                        None,
                        format!("slack.bot_token_file: {e}"),
                        "check the path and permissions",
                    );
                    None
                }
            },
            (None, Some(var)) => env.var(var).map(|t| Secret::new(t.trim().to_string())),
            (None, None) => None,
        };
        if let Some(inline) = &raw.slack.signing_secret {
            p(
                Some(inline.span()),
                "slack.signing_secret is inline: secrets in config files end up in git".into(),
                "remove it and set slack.signing_secret_env (default SLUICE_SLACK_SIGNING_SECRET) or slack.signing_secret_file",
            );
        }
        let signing_secret = match (
            &raw.slack.signing_secret_file,
            &raw.slack.signing_secret_env,
        ) {
            (Some(file), _) => match read_secret_file(base, file) {
                Ok(s) => Some(s),
                Err(e) => {
                    p(
                        None,
                        format!("slack.signing_secret_file: {e}"),
                        "check the path and permissions",
                    );
                    None
                }
            },
            (None, Some(var)) => env
                .var(var)
                .filter(|v| !v.trim().is_empty())
                .map(|t| Secret::new(t.trim().to_string())),
            (None, None) => None,
        };
        let app_token = match &raw.slack.socket_mode {
            None => None,
            Some(sm) => {
                let token = match (&sm.app_token_file, &sm.app_token_env) {
                    (Some(file), _) => read_secret_file(base, file).ok(),
                    (None, Some(var)) => env.var(var).map(|t| Secret::new(t.trim().to_string())),
                    (None, None) => None,
                };
                match token {
                    Some(t) if t.expose().starts_with("xapp-") => Some(t),
                    Some(_) => {
                        p(None, "slack.socket_mode: the app token does not start with xapp-".into(), "use the app-level token (Basic Information → App-Level Tokens, scope connections:write), not the bot token");
                        None
                    }
                    None => {
                        p(
                            None,
                            "slack.socket_mode is set but its app token could not be read".into(),
                            "set slack.socket_mode.app_token_env (exported) or app_token_file",
                        );
                        None
                    }
                }
            }
        };
        if raw
            .slack
            .socket_mode
            .as_ref()
            .is_some_and(|sm| sm.connections == 0 || sm.connections > 10)
        {
            p(
                None,
                "slack.socket_mode.connections must be between 1 and 10".into(),
                "use 2 (the default); Slack allows up to 10",
            );
        }
        let actions = check_actions(&raw.actions, &mut p);
        let mut approvals = approvals::check(&raw.approvals, &raw.actions, base, env, &mut p);
        let signed =
            raw.actions.outgoing_secret_env.is_some() || raw.actions.outgoing_secret_file.is_some();
        let (action_defs, action_buttons) = actions::check(
            &raw.action_defs,
            base,
            env,
            signed,
            &approvals.allow_link_local,
            &mut p,
        );
        let forms = forms::check(&raw.forms, &action_defs, &mut p);
        let steps = std::sync::Arc::new(steps::check(&raw.steps, &action_defs, &mut p));
        approvals.action_origins = action_defs.origins();
        approvals.action_origins.extend(forms.origins());
        let chatops = commands::check(
            &raw.commands,
            &raw.rotations,
            &raw.schedules,
            &approvals,
            &action_defs,
            &forms,
            &mut p,
        );
        let incidents = incidents::check(&raw.incident_types, &action_defs, &chatops, &mut p);
        let console = console::check(&raw.console, &mut p);
        let mut action_buttons = action_buttons;
        action_buttons.extend(incidents.card_button());

        if let Err(e) = url::Url::parse(&raw.slack.api_base) {
            p(
                None,
                format!("slack.api_base {:?} is not a URL: {e}", raw.slack.api_base),
                "use https://slack.com/api/ or the simulator's http://127.0.0.1:PORT/api/",
            );
        }

        // API keys.
        let mut api_keys = Vec::new();
        let mut names = BTreeSet::new();
        for spanned in &raw.api_keys {
            let span = Some(spanned.span());
            let k = spanned.get_ref();
            if !names.insert(k.name.clone()) {
                p(
                    span.clone(),
                    format!("api key name {:?} is used twice", k.name),
                    "give every key its own name",
                );
            }
            for s in &k.scopes {
                if !SCOPES.contains(&s.as_str()) {
                    p(
                        span.clone(),
                        format!("api key {:?}: unknown scope {s:?}", k.name),
                        &format!("use some of: {}", SCOPES.join(", ")),
                    );
                }
            }
            if k.key.is_some() {
                p(
                    span.clone(),
                    format!("api key {:?} has its key inline", k.name),
                    "remove `key`; set key_env, key_file, or sha256 = the hex SHA-256 of the key",
                );
                continue;
            }
            let digest = match (&k.sha256, &k.key_env, &k.key_file) {
                (Some(hexed), None, None) => match hex::decode(hexed.trim()) {
                    Ok(bytes) if bytes.len() == 32 => {
                        let mut d = [0u8; 32];
                        d.copy_from_slice(&bytes);
                        Some(d)
                    }
                    _ => {
                        p(
                            span.clone(),
                            format!("api key {:?}: sha256 is not 64 hex digits", k.name),
                            "use the output of `printf %s KEY | sha256sum`",
                        );
                        None
                    }
                },
                (None, Some(var), None) => match env.var(var) {
                    Some(key) if !key.trim().is_empty() => Some(sha256(key.trim().as_bytes())),
                    _ => {
                        p(
                            span.clone(),
                            format!("api key {:?}: ${var} is not set", k.name),
                            "export the variable before starting sluice",
                        );
                        None
                    }
                },
                (None, None, Some(file)) => match read_secret_file(base, file) {
                    Ok(s) => Some(sha256(s.expose().as_bytes())),
                    Err(e) => {
                        p(
                            span.clone(),
                            format!("api key {:?}: {e}", k.name),
                            "check the path and permissions",
                        );
                        None
                    }
                },
                _ => {
                    p(
                        span.clone(),
                        format!(
                            "api key {:?} needs exactly one of key_env, key_file, sha256",
                            k.name
                        ),
                        "set one of them",
                    );
                    None
                }
            };
            if let Some(sha256) = digest {
                api_keys.push(ApiKey {
                    name: k.name.clone(),
                    sha256,
                    scopes: k.scopes.iter().cloned().collect(),
                });
            }
        }

        // Incoming-webhook-compatible hooks.
        let mut hooks = Vec::new();
        let mut hook_names = BTreeSet::new();
        for spanned in &raw.hooks {
            let span = Some(spanned.span());
            let h = spanned.get_ref();
            if !hook_names.insert(h.name.clone()) {
                p(
                    span.clone(),
                    format!("hook name {:?} is used twice", h.name),
                    "give every hook its own name",
                );
            }
            if h.name.is_empty()
                || !h
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                p(
                    span.clone(),
                    format!("hook name {:?} must be letters, digits, - or _", h.name),
                    "it becomes part of the URL /hooks/{name}/{secret}",
                );
            }
            if h.secret.is_some() {
                p(
                    span.clone(),
                    format!("hook {:?} has its secret inline", h.name),
                    "remove `secret`; set secret_env or secret_file",
                );
                continue;
            }
            let secret = match (&h.secret_env, &h.secret_file) {
                (Some(var), None) => env.var(var).map(|s| Secret::new(s.trim().to_string())),
                (None, Some(file)) => read_secret_file(base, file).ok(),
                _ => None,
            };
            match secret {
                Some(s) if s.expose().len() >= 16 => hooks.push(Hook {
                    name: h.name.clone(),
                    channel: h.channel.clone(),
                    secret: s,
                }),
                Some(_) => p(
                    span.clone(),
                    format!("hook {:?}: secret is shorter than 16 characters", h.name),
                    "use an unguessable secret, e.g. `openssl rand -hex 24`",
                ),
                None => p(
                    span.clone(),
                    format!("hook {:?}: its secret could not be read", h.name),
                    "set exactly one of secret_env (exported) or secret_file (readable)",
                ),
            }
        }

        // Webhook sources. Alertmanager and Grafana are there by default (API key auth).
        let mut sources: Vec<SourceInstance> = Vec::new();
        for spanned in &raw.sources {
            let span = Some(spanned.span());
            let c = spanned.get_ref();
            let kind = c.kind.clone().unwrap_or_else(|| c.name.clone());
            let Some(info) = sluice_sources::SOURCES.iter().find(|i| i.name == kind) else {
                let known: Vec<_> = sluice_sources::names().collect();
                p(
                    span,
                    format!("source {:?}: unknown type {kind:?}", c.name),
                    &format!("use one of: {}", known.join(", ")),
                );
                continue;
            };
            if sources.iter().any(|s| s.name == c.name) {
                p(
                    span.clone(),
                    format!("source name {:?} is used twice", c.name),
                    "give every source its own name",
                );
            }
            if c.secret.is_some() {
                p(
                    span.clone(),
                    format!("source {:?} has its secret inline", c.name),
                    "remove `secret`; set secret_env or secret_file",
                );
                continue;
            }
            let secret = match (&c.secret_env, &c.secret_file) {
                (Some(var), None) => env.var(var).map(|s| Secret::new(s.trim().to_string())),
                (None, Some(file)) => read_secret_file(base, file).ok(),
                _ => None,
            };
            if info.needs_secret && secret.is_none() {
                p(span.clone(), format!("source {:?} ({kind}) needs its webhook secret, which could not be read", c.name), "set secret_env (exported) or secret_file to the secret configured in the webhook's settings");
                continue;
            }
            if let Some(adapter) = sluice_sources::by_name(&kind, secret) {
                sources.push(SourceInstance {
                    name: c.name.clone(),
                    adapter,
                    needs_api_key: !info.needs_secret,
                });
            }
        }
        for builtin in ["alertmanager", "grafana"] {
            if !sources.iter().any(|s| s.name == builtin) {
                if let Some(adapter) = sluice_sources::by_name(builtin, None) {
                    sources.push(SourceInstance {
                        name: builtin.to_string(),
                        adapter,
                        needs_api_key: true,
                    });
                }
            }
        }

        // Templates, then the router that names them.
        let mut template_sources = BTreeMap::new();
        for (name, spanned) in &raw.templates {
            match spanned.get_ref() {
                TemplateSource::Inline(src) => {
                    template_sources.insert(name.clone(), src.clone());
                }
                TemplateSource::File { file } => match std::fs::read_to_string(base.join(file)) {
                    Ok(src) => {
                        template_sources.insert(name.clone(), src);
                    }
                    Err(e) => p(
                        Some(spanned.span()),
                        format!("template {name:?}: cannot read {}: {e}", file.display()),
                        "check the path (relative to the config file)",
                    ),
                },
            }
        }
        let renderer = match Renderer::new(&template_sources) {
            Ok(r) => Some(
                r.offer_escalate(actions.can_escalate())
                    .with_action_buttons(action_buttons),
            ),
            Err(errs) => {
                for e in errs {
                    let span = raw
                        .templates
                        .iter()
                        .find(|(n, _)| e.message.contains(n.as_str()))
                        .map(|(_, s)| s.span());
                    p(span.or(e.span), e.message, &e.fix);
                }
                None
            }
        };
        let template_names = renderer
            .as_ref()
            .map(|r| r.template_names())
            .unwrap_or_default();
        let router = match Router::new(&raw.routing, &template_names) {
            Ok(r) => Some(r),
            Err(errs) => {
                for e in errs {
                    p(e.span, e.message, &e.fix);
                }
                None
            }
        };

        let inhibitor = match Inhibitor::new(&raw.inhibit) {
            Ok(i) => Some(i),
            Err(errs) => {
                for e in errs {
                    p(e.span, e.message, &e.fix);
                }
                None
            }
        };

        let mut warnings: Vec<Problem> = router
            .as_ref()
            .map(Router::check)
            .into_iter()
            .chain(inhibitor.as_ref().map(Inhibitor::check))
            .flatten()
            .map(|e| Problem {
                line: e.span.map(|s| line_of(text, s.start)),
                message: e.message,
                fix: e.fix,
                warning: true,
            })
            .collect();
        let listen = raw.server.listen;
        if !listen.ip().is_loopback() && !raw.server.behind_tls_proxy {
            warnings.push(Problem {
                line: text
                    .match_indices("listen")
                    .find(|(at, _)| text[..*at].rsplit('\n').next().is_some_and(|pre| pre.trim().is_empty()))
                    .map(|(at, _)| line_of(text, at)),
                message: format!(
                    "server.listen {listen} is reachable from other machines over plain HTTP: API keys, \
                     Slack's requests and alert contents would cross the network unencrypted"
                ),
                fix: "put a TLS-terminating proxy or load balancer in front and set server.behind_tls_proxy = true, \
                      or listen on 127.0.0.1"
                    .into(),
                warning: true,
            });
        }

        match (router, renderer, inhibitor) {
            (Some(router), Some(renderer), Some(inhibitor)) if problems.is_empty() => Ok(Config {
                source: text.into(),
                server: raw.server,
                storage_url,
                storage: raw.storage,
                slack: raw.slack,
                bot_token,
                signing_secret,
                app_token,
                actions,
                approvals,
                action_defs,
                chatops,
                forms,
                steps,
                incidents,
                console,
                dispatch: raw.dispatch,
                dedup: raw.dedup,
                api_keys,
                hooks,
                sources,
                router,
                inhibitor,
                renderer: std::sync::Arc::new(renderer),
                warnings,
            }),
            _ => {
                problems.extend(warnings);
                Err(problems)
            }
        }
    }
}

/// Structural problems reported in one run, at most.
const MAX_STRUCTURAL: usize = 50;

/// The file as written, or **every** structural problem in it (unknown keys, wrong types, negative numbers,
/// missing fields) where the TOML itself parses. Serde stops at the first problem, so the lines of each one found
/// are blanked — newlines kept, so every later line keeps its number — and the rest is read again.
fn read_raw(text: &str) -> Result<RawConfig, Vec<Problem>> {
    let problem = |text: &str, e: &toml::de::Error| {
        let message = e.message().trim().to_string();
        let mut fix =
            "correct the TOML at that line (sluice.example.toml is the annotated example)"
                .to_string();
        if let Some(typo) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            let allowed: Vec<&str> = message
                .split_once("expected")
                .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
                .unwrap_or_default();
            if let Some(meant) = sluice_core::event::closest(typo, &allowed) {
                fix = format!("did you mean `{meant}`? ({fix})");
            }
        }
        Problem {
            line: e.span().map(|s| line_of(text, s.start)),
            message,
            fix,
            warning: false,
        }
    };
    // Broken TOML: nothing after the first error can be trusted.
    if let Err(e) = text.parse::<toml::Table>() {
        return Err(vec![problem(text, &e)]);
    }
    let mut text = text.to_string();
    let mut problems = Vec::new();
    while problems.len() < MAX_STRUCTURAL {
        match toml::from_str::<RawConfig>(&text) {
            Ok(raw) if problems.is_empty() => return Ok(raw),
            Ok(_) => break,
            Err(e) => {
                problems.push(problem(&text, &e));
                let Some(span) = e.span() else { break };
                // The whole lines of the problem: blanking a part of one could leave a line that is not TOML.
                let start = text[..span.start.min(text.len())]
                    .rfind('\n')
                    .map_or(0, |at| at + 1);
                let end = span.end.min(text.len());
                let end = text[end..].find('\n').map_or(text.len(), |at| end + at);
                let blanked: String = text[start..end]
                    .chars()
                    .map(|c| if c == '\n' { c } else { ' ' })
                    .collect();
                if blanked == text[start..end] {
                    break;
                }
                text.replace_range(start..end, &blanked);
                if text.parse::<toml::Table>().is_err() {
                    break;
                }
            }
        }
    }
    Err(problems)
}

fn read_secret_file(base: &Path, file: &Path) -> Result<Secret, String> {
    let path = base.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(Secret::new(s.trim().to_string())),
        Ok(_) => Err(format!("{} is empty", path.display())),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The config areas' unit tests: a parse with a fixed environment, the problems it reports, and a table check.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use super::{Config, Problem};

    /// Parses `text` with a few environment variables set: `OUT` (a valid outgoing secret), `SHORT` (too short a
    /// secret), `DEPLOYER_TOKEN` (a header value).
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        let env = BTreeMap::from([
            ("OUT".to_string(), "outgoing-secret-0123456789".to_string()),
            ("SHORT".to_string(), "short".to_string()),
            ("DEPLOYER_TOKEN".to_string(), "tok-123".to_string()),
        ]);
        Config::parse(text, std::path::Path::new("."), &env)
    }

    /// The errors (not warnings) `text` earns: line, message, fix.
    pub fn errors(text: &str) -> Vec<(Option<usize>, String, String)> {
        match parse(text) {
            Ok(_) => vec![],
            Err(p) => p
                .into_iter()
                .filter(|p| !p.warning)
                .map(|p| (p.line, p.message, p.fix))
                .collect(),
        }
    }

    /// Each row's config is refused with a problem on `line` whose message and fix contain the given texts.
    pub fn assert_reported(table: &[(&str, usize, &str, &str)]) {
        for (text, line, message, fix) in table {
            let found = errors(text);
            assert!(
                found
                    .iter()
                    .any(|(l, m, f)| *l == Some(*line) && m.contains(message) && f.contains(fix)),
                "{text:?}: {found:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("KEY_CI".to_string(), "ci-secret-key".to_string()),
            ("HOOK".to_string(), "0123456789abcdef0123".to_string()),
        ])
    }

    fn problems(text: &str) -> Vec<Problem> {
        match Config::parse(text, Path::new("."), &env()) {
            Ok(_) => vec![],
            Err(p) => p.into_iter().filter(|p| !p.warning).collect(),
        }
    }

    #[test]
    fn empty_config_is_valid() {
        assert!(problems("").is_empty());
    }

    #[test]
    fn a_typo_names_its_line() {
        let p = problems("[server]\nlisten = \"127.0.0.1:1\"\nmax_body = 5\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(3));
        assert!(p[0].message.contains("max_body"), "{}", p[0].message);
    }

    /// Issue 14: every structural problem in one run, each with its line (and a likely meaning for a typo).
    #[test]
    fn three_structural_problems_are_reported_in_one_run() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\nmax_body_byte = 5\n\n[dispatch]\nmax_lanes = -3\n\n[dedup]\nwindow_secs = \"an hour\"\n\n[routing]\ndefault = { channels = [\"ops\"] }\n";
        let p = problems(text);
        let found: Vec<(Option<usize>, &str, &str)> = p
            .iter()
            .map(|p| (p.line, p.message.as_str(), p.fix.as_str()))
            .collect();
        assert_eq!(p.len(), 3, "{found:#?}");
        assert_eq!(p[0].line, Some(3), "{found:#?}");
        assert!(p[0].message.contains("max_body_byte"), "{found:#?}");
        assert!(
            p[0].fix.contains("did you mean `max_body_bytes`?"),
            "{found:#?}"
        );
        assert_eq!(p[1].line, Some(6), "{found:#?}");
        assert!(p[1].message.contains("-3"), "{found:#?}");
        assert_eq!(p[2].line, Some(9), "{found:#?}");
        assert!(p[2].message.contains("an hour"), "{found:#?}");
        // Broken TOML is one problem: what follows it cannot be read.
        let p = problems("[server\nlisten = 1\nmax_body = 2\n");
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn inline_secrets_are_refused_with_the_fix() {
        let p = problems("[slack]\nbot_token = \"xoxb-123\"\n");
        assert_eq!(p[0].line, Some(2));
        assert!(p[0].fix.contains("bot_token_env"));
        let p = problems("[[api_key]]\nname = \"ci\"\nkey = \"abc\"\n");
        assert!(p[0].message.contains("inline"), "{p:?}");
        assert_eq!(p[0].line, Some(1));
    }

    #[test]
    fn keys_are_held_hashed() {
        let cfg = Config::parse(
            "[[api_key]]\nname = \"ci\"\nkey_env = \"KEY_CI\"\n",
            Path::new("."),
            &env(),
        )
        .map_err(|p| format!("{p:?}"))
        .unwrap();
        assert_eq!(cfg.api_keys[0].sha256, sha256(b"ci-secret-key"));
    }

    #[test]
    fn missing_env_var_and_unknown_scope_are_reported_together() {
        let p = problems(
            "[[api_key]]\nname = \"a\"\nkey_env = \"NOPE\"\n\n[[api_key]]\nname = \"b\"\nkey_env = \"KEY_CI\"\nscopes = [\"god\"]\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].line, Some(1));
        assert_eq!(p[1].line, Some(5));
    }

    #[test]
    fn short_hook_secret_is_refused() {
        let env = BTreeMap::from([("H".to_string(), "short".to_string())]);
        let err = Config::parse(
            "[[hook]]\nname = \"cron\"\nchannel = \"ops\"\nsecret_env = \"H\"\n",
            Path::new("."),
            &env,
        )
        .err()
        .unwrap_or_default();
        assert!(err[0].message.contains("shorter"), "{err:?}");
    }

    /// (config, line, words of the message, words of the fix).
    #[test]
    fn broken_inhibit_rules_are_refused_with_their_line_and_fix() {
        const OK: &str = "[[inhibit]]\nname = \"crit\"\nsource = { severity = \"critical\" }\ntarget = { severity = \"warning\" }\nequal = [\"service\"]\n\n";
        let cases = [
            (
                "[[inhibit]]\nname = \"a\"\nsource = { severity = \"critical\" }\ntarget = { servce = \"db\" }\n",
                4,
                "unknown match field `servce` (did you mean `service`?)",
                "match on one of",
            ),
            (
                "[[inhibit]]\nname = \"a\"\nsource = { \"labels.team\" = { regex = \"[\" } }\ntarget = {}\n",
                3,
                "does not compile",
                "correct the regular expression",
            ),
            (
                "[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\nequal = [\"cluster\"]\n",
                5,
                "unknown field `cluster` in `equal`",
                "labels.<key>",
            ),
            (
                "[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\nequals = []\n",
                5,
                "unknown field `equals`",
                "correct the TOML",
            ),
            (
                "[[inhibit]]\nname = \"a\"\nsource = {}\n",
                1,
                "missing field `target`",
                "correct the TOML",
            ),
        ];
        for (src, line, message, fix) in cases {
            let p = problems(src);
            assert_eq!(p.len(), 1, "{src}\n{p:?}");
            assert_eq!(p[0].line, Some(line), "{src}\n{p:?}");
            assert!(p[0].message.contains(message), "{src}\n{p:?}");
            assert!(p[0].fix.contains(fix), "{src}\n{p:?}");
        }
        let twice = format!("{OK}{}", OK.replace("critical\"", "error\""));
        let p = problems(&twice);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(8), "{p:?}");
        assert!(
            p[0].message
                .contains("duplicate inhibit rule name \"crit\""),
            "{p:?}"
        );
        assert!(problems(OK).is_empty());
        assert!(
            problems(&OK.replace("[\"service\"]", "[]")).is_empty(),
            "empty equal is allowed"
        );
    }

    /// Regression (issue 15, defect 8): every inline secret was refused except the database password.
    #[test]
    fn regression_an_inline_database_password_is_refused_like_every_other_secret() {
        let p = problems("[storage]\nurl = \"postgres://sluice:hunter2@db.internal/sluice\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(2), "{p:?}");
        assert!(p[0].message.contains("password inline"), "{p:?}");
        assert!(p[0].fix.contains("storage.url_env"), "{p:?}");
        assert!(
            !format!("{p:?}").contains("hunter2"),
            "the password is not repeated: {p:?}"
        );
        // A URL without a password (trust, .pgpass, PGPASSWORD) and one from the environment are fine.
        assert!(problems("[storage]\nurl = \"postgres://sluice@db.internal/sluice\"\n").is_empty());
        let env = BTreeMap::from([(
            "DB".to_string(),
            "postgres://sluice:hunter2@db.internal/sluice".to_string(),
        )]);
        assert!(Config::parse("[storage]\nurl_env = \"DB\"\n", Path::new("."), &env).is_ok());
    }

    /// Regression (issue 15, defect 8): a listen address other machines reach, with nothing said of TLS in front.
    #[test]
    fn regression_a_non_loopback_listen_without_tls_in_front_earns_a_warning() {
        let warnings = |text: &str| {
            let text = format!("{text}[routing]\ndefault = {{ channels = [\"ops\"] }}\n");
            match Config::parse(&text, Path::new("."), &env()) {
                Ok(c) => c.warnings,
                Err(p) => panic!("{p:?}"),
            }
        };
        let w = warnings("# the API\n[server]\nlisten = \"0.0.0.0:8080\"\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].line, w[0].warning), (Some(3), true), "{w:?}");
        assert!(w[0].message.contains("plain HTTP"), "{w:?}");
        assert!(w[0].fix.contains("behind_tls_proxy"), "{w:?}");
        assert!(
            warnings("[server]\nlisten = \"0.0.0.0:8080\"\nbehind_tls_proxy = true\n").is_empty()
        );
        assert!(warnings("[server]\nlisten = \"127.0.0.1:8080\"\n").is_empty());
        assert!(warnings("[server]\nlisten = \"[::1]:8080\"\n").is_empty());
    }

    #[test]
    fn bad_storage_url_is_refused() {
        let p = problems("[storage]\nurl = \"mysql://x\"\n");
        assert!(p[0].fix.contains("sqlite://"), "{p:?}");
    }

    #[test]
    fn actions_targets_are_checked_with_their_line_and_fix() {
        let p = problems(
            "[actions]\nescalate_group = \"@oncall\"\nescalate_channel = \"inc idents\"\nack_reaction = \"eyes please\"\ncommand = \"sluice\"\n",
        );
        let lines: Vec<Option<usize>> = p.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(5), Some(2), Some(3), Some(4)], "{p:#?}");
        assert!(p[1].fix.contains("starts with S"), "{}", p[1].fix);
        assert!(p[2].fix.contains("incidents"), "{}", p[2].fix);
        assert!(
            p[3].fix.contains("turns acknowledging by reaction off"),
            "{}",
            p[3].fix
        );
    }

    #[test]
    fn actions_defaults_and_a_valid_table() {
        let parse = |text: &str| {
            Config::parse(text, Path::new("."), &env())
                .map_err(|p| format!("{p:?}"))
                .unwrap()
        };
        let cfg = parse("");
        assert_eq!(cfg.actions.ack_reaction.as_deref(), Some("eyes"));
        assert!(!cfg.actions.can_escalate() && !cfg.actions.channel_members);
        let cfg = parse(
            "[actions]\nescalate_group = \"S0ONCALL\"\nescalate_channel = \"#incidents\"\nack_reaction = \":white_check_mark:\"\nchannel_members = true\n",
        );
        let a = &cfg.actions;
        assert_eq!(
            (
                a.escalate_group.as_deref(),
                a.escalate_channel.as_deref(),
                a.ack_reaction.as_deref(),
                a.channel_members
            ),
            (
                Some("S0ONCALL"),
                Some("incidents"),
                Some("white_check_mark"),
                true
            )
        );
        assert_eq!(
            parse("[actions]\nack_reaction = \"\"\n")
                .actions
                .ack_reaction,
            None
        );
    }
}
