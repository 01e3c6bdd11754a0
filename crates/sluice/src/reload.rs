//! Reload without restart: SIGHUP and `POST /v1/admin/reload` read the config file again, check it as `sluice check`
//! does, and swap it in whole if it is valid and changes only what can change while serving. Otherwise the old
//! config keeps serving and the refusal says why. Counted in `sluice_config_reload_total{result}`.

use std::path::Path;

use serde::Serialize;

use crate::config::{Config, Problem, ProcessEnv};
use crate::state::AppState;

/// Why a reload was refused; the old config keeps serving.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    /// `invalid` (the file has errors) or `needs_restart` (it changes what is fixed while serving).
    pub result: &'static str,
    pub message: String,
    /// The file's errors, each with its line and fix (`invalid`).
    pub problems: Vec<String>,
    /// The settings that changed but cannot while serving (`needs_restart`).
    pub needs_restart: Vec<String>,
}

/// A reload that took effect.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// The new config's warnings (unreachable rules and the like), as `check` prints them.
    pub warnings: Vec<String>,
}

/// Read `path` again and swap it in if it is valid and changes nothing fixed. Logged and counted either way.
pub fn reload(state: &AppState, path: &Path, by: &str) -> Result<Reloaded, Refused> {
    let outcome = try_reload(state, path);
    let result = match &outcome {
        Ok(_) => "ok",
        Err(r) => r.result,
    };
    metrics::counter!("sluice_config_reload_total", "result" => result).increment(1);
    match &outcome {
        Ok(r) => tracing::info!(
            config = %path.display(),
            by,
            warnings = r.warnings.len(),
            "config reloaded"
        ),
        Err(r) => tracing::warn!(
            config = %path.display(),
            by,
            result = r.result,
            problems = ?r.problems,
            needs_restart = ?r.needs_restart,
            "config reload refused, the old config keeps serving: {}",
            r.message
        ),
    }
    outcome
}

fn try_reload(state: &AppState, path: &Path) -> Result<Reloaded, Refused> {
    let checked = Config::load(path, &ProcessEnv).and_then(|cfg| match cfg.slack_client() {
        Ok(_) => Ok(cfg),
        Err(problems) => Err(problems),
    });
    let new = match checked {
        Ok(cfg) => cfg,
        Err(problems) => {
            let errors: Vec<&Problem> = problems.iter().filter(|p| !p.warning).collect();
            return Err(Refused {
                result: "invalid",
                message: format!(
                    "{} has {} error(s); nothing was reloaded",
                    path.display(),
                    errors.len()
                ),
                problems: errors.iter().map(|p| p.to_string()).collect(),
                needs_restart: Vec::new(),
            });
        }
    };
    let fixed = fixed_changes(&state.config, &new);
    if !fixed.is_empty() {
        return Err(Refused {
            result: "needs_restart",
            message: format!(
                "{} changes what cannot change while serving ({}): restart to apply it, or undo those changes to reload the rest; nothing was reloaded",
                path.display(),
                fixed.join(", ")
            ),
            problems: Vec::new(),
            needs_restart: fixed,
        });
    }
    let warnings = new.warnings.iter().map(ToString::to_string).collect();
    state.config.replace(new);
    Ok(Reloaded { warnings })
}

/// The settings read once at start-up (sockets, the store, Slack's client and endpoints, the dispatcher's and the
/// flusher's set-up, who may act) that differ between `old` and `new`, by name.
pub fn fixed_changes(old: &Config, new: &Config) -> Vec<String> {
    fn dbg(v: &impl std::fmt::Debug) -> String {
        format!("{v:?}")
    }
    let secret =
        |s: &Option<sluice_slack_wire::secret::Secret>| s.as_ref().map(|s| s.expose().to_string());
    let mut out = Vec::new();
    let mut differs = |name: &str, changed: bool| {
        if changed {
            out.push(name.to_string());
        }
    };
    differs("server.listen", old.server.listen != new.server.listen);
    differs(
        "server limits and timeouts",
        dbg(&old.server) != dbg(&new.server) && old.server.listen == new.server.listen,
    );
    differs("storage.url", old.storage_url != new.storage_url);
    differs(
        "storage.durability",
        old.storage.durability != new.storage.durability,
    );
    differs(
        "storage.retention_hours",
        old.storage.retention_hours != new.storage.retention_hours,
    );
    differs(
        "slack.socket_mode",
        old.slack.socket_mode.is_some() != new.slack.socket_mode.is_some()
            || dbg(&old.slack.socket_mode) != dbg(&new.slack.socket_mode)
            || secret(&old.app_token) != secret(&new.app_token),
    );
    differs("slack.api_base", old.slack.api_base != new.slack.api_base);
    differs("slack.team_id", old.slack.team_id != new.slack.team_id);
    differs(
        "slack.timeout_ms",
        old.slack.timeout_ms != new.slack.timeout_ms,
    );
    differs(
        "slack.limits",
        dbg(&old.slack.limits) != dbg(&new.slack.limits),
    );
    differs(
        "slack.response_url_hosts",
        old.slack.response_url_hosts != new.slack.response_url_hosts,
    );
    differs(
        "the bot token",
        secret(&old.bot_token) != secret(&new.bot_token),
    );
    differs(
        "the signing secret",
        secret(&old.signing_secret) != secret(&new.signing_secret),
    );
    differs("[dispatch]", dbg(&old.dispatch) != dbg(&new.dispatch));
    differs(
        "actions.command",
        old.actions.command != new.actions.command,
    );
    differs(
        "who may act on cards (actions.users, groups, channel_members)",
        (
            &old.actions.users,
            &old.actions.groups,
            old.actions.channel_members,
        ) != (
            &new.actions.users,
            &new.actions.groups,
            new.actions.channel_members,
        ),
    );
    // The slash command's handler keeps one permission check per `[[command]]`, by position, made at start.
    let runners = |c: &Config| -> Vec<(String, Vec<String>, Vec<String>)> {
        c.chatops
            .commands
            .iter()
            .map(|c| (c.spec.name.clone(), c.users.clone(), c.groups.clone()))
            .collect()
    };
    differs(
        "which [[command]]s there are, their order, or who may run them (users, groups)",
        runners(old) != runners(new),
    );
    differs(
        "dedup.window_secs (the group flusher's)",
        old.dedup.window_secs != new.dedup.window_secs,
    );
    differs(
        "[[schedule]] from none to some or back (the schedule runner starts only with some)",
        old.chatops.schedules.is_empty() != new.chatops.schedules.is_empty(),
    );
    differs(
        "noise control (group_by, group_wait, group_interval, repeat_interval, storm)",
        dbg(&old.router.noise_routes()) != dbg(&new.router.noise_routes()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::parse;

    const BASE: &str = "[routing]\ndefault = { channels = [\"ops\"] }\n";

    fn changes(old: &str, new: &str) -> Vec<String> {
        let cfg = |t: &str| parse(t).unwrap_or_else(|p| panic!("{t}: {p:#?}"));
        fixed_changes(&cfg(old), &cfg(new))
    }

    /// (what is added to the base config, the fixed settings that change; none: it may change while serving).
    #[test]
    fn what_may_change_while_serving_and_what_needs_a_restart() {
        let table: &[(&str, &[&str])] = &[
            ("[[routing.rule]]\nname = \"db\"\nmatch = { service = \"db\" }\nchannels = [\"db\"]\n", &[]),
            ("[[inhibit]]\nname = \"i\"\nsource = { severity = \"critical\" }\ntarget = { severity = \"warning\" }\nequal = []\n", &[]),
            ("[templates]\nmine = '{\"text\": \"x\"}'\n", &[]),
            ("[actions]\nescalate_channel = \"incidents\"\n", &[]),
            ("[server]\nlisten = \"127.0.0.1:9\"\n", &["server.listen"]),
            ("[server]\nmax_in_flight = 3\n", &["server limits and timeouts"]),
            ("[storage]\nurl = \"sqlite://other.db\"\n", &["storage.url"]),
            ("[slack]\napi_base = \"http://127.0.0.1:1/api/\"\n", &["slack.api_base"]),
            ("[actions]\ncommand = \"/ops\"\n", &["actions.command"]),
            ("[actions]\nusers = [\"U1\"]\n", &["who may act on cards (actions.users, groups, channel_members)"]),
            (
                "[actions]\noutgoing_secret_env = \"OUT\"\n[[action]]\nname = \"a\"\nurl = \"https://x.internal/a\"\n[[command]]\nname = \"a\"\naction = \"a\"\n",
                &["which [[command]]s there are, their order, or who may run them (users, groups)"],
            ),
            (
                "[actions]\noutgoing_secret_env = \"OUT\"\n[[action]]\nname = \"a\"\nurl = \"https://x.internal/a\"\n",
                &[],
            ),
        ];
        for (added, want) in table {
            let got = changes(BASE, &format!("{BASE}{added}"));
            assert_eq!(got, *want, "{added}");
        }
        let grouped = BASE.replace("[\"ops\"] }", "[\"ops\"], group_by = [\"service\"] }");
        let got = changes(BASE, &grouped);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("noise control"), "{got:?}");
    }
}
