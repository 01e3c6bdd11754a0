//! `[[hook]]`: incoming-webhook-compatible URLs, `POST /hooks/{name}/{secret}`, each posting to one channel.
//! Checked: names used once and fit for a URL, the secret from the environment or a file (never inline) and at
//! least 16 characters long.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_slack_wire::secret::Secret;
use toml::Spanned;

use super::{secret_from, Env, Report};

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

#[derive(Debug, Clone)]
pub struct Hook {
    pub name: String,
    pub channel: String,
    pub secret: Secret,
}

/// Checks every `[[hook]]`; a hook with a problem is left out of the result.
pub(super) fn check(
    raw: &[Spanned<HookConfig>],
    base: &Path,
    env: &dyn Env,
    p: &mut Report<'_>,
) -> Vec<Hook> {
    let mut hooks = Vec::new();
    let mut hook_names = BTreeSet::new();
    for spanned in raw {
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
        let secret = secret_from(&h.secret_env, &h.secret_file, base, env);
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
    hooks
}

#[cfg(test)]
mod tests {
    use super::super::testing::{parse, problems};

    const CRON: &str = "[[hook]]\nname = \"cron\"\nchannel = \"ops\"\nsecret_env = \"HOOK\"\n";

    #[test]
    fn short_hook_secret_is_refused() {
        let p = problems("[[hook]]\nname = \"cron\"\nchannel = \"ops\"\nsecret_env = \"SHORT\"\n");
        assert!(p[0].message.contains("shorter"), "{p:?}");
    }

    #[test]
    fn a_valid_hook_is_kept_with_its_secret() {
        let cfg = parse(CRON).map_err(|p| format!("{p:?}")).unwrap();
        assert_eq!(cfg.hooks.len(), 1);
        assert_eq!(
            (cfg.hooks[0].name.as_str(), cfg.hooks[0].channel.as_str()),
            ("cron", "ops")
        );
        assert_eq!(cfg.hooks[0].secret.expose(), "0123456789abcdef0123");
    }

    /// (config, line, words of the message, words of the fix).
    #[test]
    fn broken_hooks_are_refused_with_their_line_and_fix() {
        let twice = format!("{CRON}\n{CRON}");
        super::super::testing::assert_reported(&[
            (twice.as_str(), 6, "hook name \"cron\" is used twice", "its own name"),
            (
                "[[hook]]\nname = \"a b\"\nchannel = \"ops\"\nsecret_env = \"HOOK\"\n",
                1,
                "must be letters, digits, - or _",
                "/hooks/{name}/{secret}",
            ),
            (
                "[[hook]]\nname = \"cron\"\nchannel = \"ops\"\nsecret = \"0123456789abcdef0123\"\n",
                1,
                "has its secret inline",
                "secret_env or secret_file",
            ),
            (
                "[[hook]]\nname = \"cron\"\nchannel = \"ops\"\nsecret_env = \"NOPE\"\n",
                1,
                "its secret could not be read",
                "exactly one of secret_env",
            ),
            (
                "[[hook]]\nname = \"cron\"\nchannel = \"ops\"\nsecret_env = \"HOOK\"\nsecret_file = \"h\"\n",
                1,
                "its secret could not be read",
                "exactly one of secret_env",
            ),
        ]);
    }
}
