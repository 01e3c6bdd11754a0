//! `[slack]`: the Web API's address, the bot token, the signing secret and Socket Mode's app token, and the
//! workspace's limits. Checked: secrets written inline (refused), token files that cannot be read, Socket Mode's
//! app token and connection count, the API address; [`client`] is the one place that decides whether `serve` can
//! send at all, so `sluice check` refuses what `serve` would.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_slack::api::Client;
use sluice_slack_wire::secret::Secret;
use toml::Spanned;

use super::{read_secret_file, Env, Problem, Report};

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

/// The secrets `[slack]` names, read.
pub(super) struct SlackSecrets {
    pub bot_token: Option<Secret>,
    pub signing_secret: Option<Secret>,
    pub app_token: Option<Secret>,
}

/// Reads `[slack]`'s secrets, refusing inline ones and reporting files that cannot be read. A bot token that is
/// simply absent is not a problem here: [`client`] says so, for the commands that send.
pub(super) fn check(
    raw: &SlackConfig,
    base: &Path,
    env: &dyn Env,
    p: &mut Report<'_>,
) -> SlackSecrets {
    if let Some(inline) = &raw.bot_token {
        p(
            Some(inline.span()),
            "slack.bot_token is inline: tokens in config files end up in git".into(),
            "remove it, revoke the token, and set slack.bot_token_env (default SLUICE_SLACK_BOT_TOKEN) or slack.bot_token_file",
        );
    }
    let bot_token = match (&raw.bot_token_file, &raw.bot_token_env) {
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
    if let Some(inline) = &raw.signing_secret {
        p(
            Some(inline.span()),
            "slack.signing_secret is inline: secrets in config files end up in git".into(),
            "remove it and set slack.signing_secret_env (default SLUICE_SLACK_SIGNING_SECRET) or slack.signing_secret_file",
        );
    }
    let signing_secret = match (&raw.signing_secret_file, &raw.signing_secret_env) {
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
    let app_token = match &raw.socket_mode {
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
    SlackSecrets {
        bot_token,
        signing_secret,
        app_token,
    }
}

/// Reports a `slack.api_base` that is not a URL. Apart from [`check`] only so that problems keep the order they
/// have always been reported in (after the workflows').
pub(super) fn check_api_base(raw: &SlackConfig, p: &mut Report<'_>) {
    if let Err(e) = url::Url::parse(&raw.api_base) {
        p(
            None,
            format!("slack.api_base {:?} is not a URL: {e}", raw.api_base),
            "use https://slack.com/api/ or the simulator's http://127.0.0.1:PORT/api/",
        );
    }
}

/// The Slack client `serve` sends with, or why there can be none (see [`super::Config::slack_client`]).
pub(super) fn client(raw: &SlackConfig, bot_token: Option<Secret>) -> Result<Client, Vec<Problem>> {
    let problem = |message: String, fix: &str| Problem {
        line: None,
        message,
        fix: fix.to_string(),
        warning: false,
    };
    let Some(token) = bot_token else {
        return Err(vec![problem(
            "no Slack bot token: the variable named by slack.bot_token_env (default SLUICE_SLACK_BOT_TOKEN) is not set, and there is no slack.bot_token_file".into(),
            "set that variable, or put the token in a file and name it with slack.bot_token_file under [slack]",
        )]);
    };
    let timeout = std::time::Duration::from_millis(raw.timeout_ms);
    Client::new(&raw.api_base, token, timeout).map_err(|e| {
        vec![problem(
            format!("the Slack client cannot be built: {e}"),
            "set slack.api_base to an http(s) URL (Slack's https://slack.com/api/ by default) and check the token",
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{errors, parse};

    #[test]
    fn inline_secrets_are_refused_with_the_fix() {
        let p = errors("[slack]\nbot_token = \"xoxb-123\"\n");
        assert_eq!(p[0].0, Some(2));
        assert!(p[0].2.contains("bot_token_env"));
        let p = errors("[slack]\nsigning_secret = \"abc\"\n");
        assert_eq!(p[0].0, Some(2));
        assert!(p[0].2.contains("signing_secret_env"), "{p:?}");
    }

    #[test]
    fn socket_mode_without_a_readable_app_token_and_too_many_connections_are_refused() {
        let p = errors("[slack.socket_mode]\napp_token_env = \"NOPE\"\nconnections = 11\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].1.contains("could not be read"), "{p:?}");
        assert!(p[1].1.contains("between 1 and 10"), "{p:?}");
        // The bot token in the app token's place.
        let p = errors("[slack.socket_mode]\napp_token_env = \"DEPLOYER_TOKEN\"\n");
        assert!(p[0].1.contains("xapp-"), "{p:?}");
    }

    #[test]
    fn an_api_base_that_is_not_a_url_is_refused_and_no_token_means_no_client() {
        let p = errors("[slack]\napi_base = \"not a url\"\n");
        assert!(p[0].1.contains("is not a URL"), "{p:?}");
        let cfg = parse("[slack]\nbot_token_env = \"UNSET_TOKEN\"\n")
            .map_err(|p| format!("{p:?}"))
            .unwrap();
        let p = cfg.slack_client().err().unwrap_or_default();
        assert!(p[0].message.contains("no Slack bot token"), "{p:?}");
    }
}
