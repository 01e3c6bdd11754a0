//! `sluice.toml`: the one configuration file, its validation and its secrets.
//!
//! [`Config::load`] parses the file, resolves secrets from the environment or from files, and
//! builds the router and renderer, collecting *every* problem as a [`Problem`] that names the
//! line and says how to fix it. `sluice check` prints those problems; `serve` refuses to start
//! on any of them. Secrets are never accepted inline: a config file is the kind of thing that
//! ends up in git.
//!
//! Each section is parsed and checked in a file of its own below `config/`, next to the types it configures:
//! `server`, `storage`, `slack`, `actions_table` (`[actions]`), `approvals`, `actions` (`[[action]]`), `forms`,
//! `steps`, `commands` (`[[command]]`, `[[rotation]]`, `[[schedule]]`), `incidents`, `console`, `api_keys`, `hooks`,
//! `sources`, `templates`, `routing` (`[routing]`, `[[inhibit]]`), `dispatch`, `dedup`. Each area's `check`
//! takes its raw section and the shared problem collector ([`Report`]); [`Config::parse`] calls them in turn.

use std::collections::BTreeMap;
use std::fmt;
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
mod actions_table;
mod api_keys;
mod approvals;
pub mod commands;
pub mod console;
mod dedup;
mod dispatch;
pub mod forms;
mod hooks;
pub mod incidents;
mod routing;
mod server;
mod slack;
mod sources;
pub mod steps;
mod storage;
mod templates;
pub use actions_table::{ActionsConfig, RawActions, DEFAULT_ACK_REACTION};
pub use api_keys::{ApiKey, ApiKeyConfig, SCOPES};
pub use approvals::ApprovalsConfig;
pub use commands::ChatopsConfig;
pub use dedup::DedupConfig;
pub use dispatch::DispatchConfig;
pub use hooks::{Hook, HookConfig};
pub use server::{LogFormat, ServerConfig};
pub use slack::{SlackConfig, SlackLimits, SocketModeConfig};
pub use sources::{SourceConfig, SourceInstance};
pub use storage::StorageConfig;
pub use templates::TemplateSource;

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

/// Where an area reports a problem: the span of the offending text (for its line), what is wrong, how to fix it.
type Report<'a> = dyn FnMut(Option<std::ops::Range<usize>>, String, &str) + 'a;

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
        slack::client(&self.slack, self.bot_token.clone())
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
    ///
    /// The areas are checked in the order their problems have always been reported in.
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

        let storage_url = storage::check(&raw.storage, text, env, &mut p);
        let secrets = slack::check(&raw.slack, base, env, &mut p);
        let actions = actions_table::check(&raw.actions, &mut p);
        let mut approvals = approvals::check(&raw.approvals, &raw.actions, base, env, &mut p);
        let signed =
            raw.actions.outgoing_secret_env.is_some() || raw.actions.outgoing_secret_file.is_some();
        let (action_defs, mut action_buttons) = actions::check(
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
        action_buttons.extend(incidents.card_button());
        slack::check_api_base(&raw.slack, &mut p);
        let api_keys = api_keys::check(&raw.api_keys, base, env, &mut p);
        let hooks = hooks::check(&raw.hooks, base, env, &mut p);
        let sources = sources::check(&raw.sources, base, env, &mut p);
        let renderer = templates::check(&raw.templates, base, &mut p).map(|r| {
            r.offer_escalate(actions.can_escalate())
                .with_action_buttons(action_buttons)
        });
        let template_names = renderer
            .as_ref()
            .map(|r| r.template_names())
            .unwrap_or_default();
        let router = routing::check_routing(&raw.routing, &template_names, &mut p);
        let inhibitor = routing::check_inhibit(&raw.inhibit, &mut p);

        let mut warnings = routing::warnings(router.as_ref(), inhibitor.as_ref(), text);
        warnings.extend(server::check(&raw.server, text));

        match (router, renderer, inhibitor) {
            (Some(router), Some(renderer), Some(inhibitor)) if problems.is_empty() => Ok(Config {
                source: text.into(),
                server: raw.server,
                storage_url,
                storage: raw.storage,
                slack: raw.slack,
                bot_token: secrets.bot_token,
                signing_secret: secrets.signing_secret,
                app_token: secrets.app_token,
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

/// A secret named by an area's `secret_env` or `secret_file` (exactly one of them), or `None` when it cannot be read.
fn secret_from(
    var: &Option<String>,
    file: &Option<PathBuf>,
    base: &Path,
    env: &dyn Env,
) -> Option<Secret> {
    match (var, file) {
        (Some(var), None) => env.var(var).map(|s| Secret::new(s.trim().to_string())),
        (None, Some(file)) => read_secret_file(base, file).ok(),
        _ => None,
    }
}

/// The config areas' unit tests: a parse with a fixed environment, the problems it reports, and a table check.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use super::{Config, Problem};

    /// Parses `text` with a few environment variables set: `OUT` (a valid outgoing secret), `SHORT` (too short a
    /// secret), `DEPLOYER_TOKEN` (a header value), `KEY_CI` (an API key), `HOOK` (a hook's secret).
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        let env = BTreeMap::from([
            ("OUT".to_string(), "outgoing-secret-0123456789".to_string()),
            ("SHORT".to_string(), "short".to_string()),
            ("DEPLOYER_TOKEN".to_string(), "tok-123".to_string()),
            ("KEY_CI".to_string(), "ci-secret-key".to_string()),
            ("HOOK".to_string(), "0123456789abcdef0123".to_string()),
        ]);
        Config::parse(text, std::path::Path::new("."), &env)
    }

    /// The errors (not warnings) `text` earns.
    pub fn problems(text: &str) -> Vec<Problem> {
        match parse(text) {
            Ok(_) => vec![],
            Err(p) => p.into_iter().filter(|p| !p.warning).collect(),
        }
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
    use super::testing::problems;

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
}
