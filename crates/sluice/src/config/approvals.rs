//! `[approvals]` and the outgoing-call settings of `[actions]` (`outgoing_secret_env`, `outgoing_secret_file`,
//! `allow_link_local`): checked into [`ApprovalsConfig`], each problem reported with its line and fix like the rest
//! of the file.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use sluice_domain::outgoing::Origin;
use sluice_slack_wire::secret::Secret;
use toml::Spanned;

use super::{read_secret_file, Env, RawActions, Report};

/// `[approvals]` as written.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawApprovals {
    /// Where callbacks may go: `["https://ci.internal:8443"]` (scheme, host and port compared).
    pub callback_hosts: Vec<Spanned<String>>,
    /// How long an outgoing call (a callback) may take before it counts as failed and is retried, in ms.
    pub timeout_ms: Option<u64>,
    /// Approve asks for a comment (in a modal) before it is recorded, on every request.
    pub approve_comment: bool,
}

/// Approvals and outgoing calls, checked.
#[derive(Debug, Clone, Default)]
pub struct ApprovalsConfig {
    pub callback_hosts: Vec<Origin>,
    /// Signs every outgoing call; required once anything calls out.
    pub outgoing_secret: Option<Secret>,
    pub allow_link_local: Vec<IpAddr>,
    pub timeout_ms: u64,
    /// The destinations of the `[[action]]`s (`config/actions.rs`): allowed as well.
    pub action_origins: Vec<Origin>,
    /// Approve asks for a comment before it is recorded (`approve_comment`).
    pub approve_comment: bool,
}

pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

impl ApprovalsConfig {
    /// Every destination an outgoing call may have.
    pub fn allowed(&self) -> Vec<Origin> {
        self.callback_hosts
            .iter()
            .chain(&self.action_origins)
            .cloned()
            .collect()
    }
}

pub(super) fn check(
    raw: &RawApprovals,
    out: &RawActions,
    base: &Path,
    env: &dyn Env,
    p: &mut Report<'_>,
) -> ApprovalsConfig {
    let mut callback_hosts = Vec::new();
    for h in &raw.callback_hosts {
        match Origin::of(h.get_ref()) {
            Ok(o)
                if url::Url::parse(h.get_ref())
                    .is_ok_and(|u| u.path() == "/" || u.path().is_empty()) =>
            {
                callback_hosts.push(o)
            }
            Ok(_) => p(
                Some(h.span()),
                format!("approvals.callback_hosts {:?} has a path", h.get_ref()),
                "list only scheme, host and port, e.g. \"https://ci.internal:8443\"",
            ),
            Err(e) => p(
                Some(h.span()),
                format!("approvals.callback_hosts: {e}"),
                "list scheme, host and port, e.g. \"https://ci.internal:8443\"",
            ),
        }
    }
    let mut allow_link_local = Vec::new();
    for a in &out.allow_link_local {
        match a.get_ref().parse::<IpAddr>() {
            Ok(ip) => allow_link_local.push(ip),
            Err(_) => p(
                Some(a.span()),
                format!("actions.allow_link_local {:?} is not an IP address", a.get_ref()),
                "list addresses such as \"169.254.169.254\" (only if calling them is truly intended)",
            ),
        }
    }
    if let Some(inline) = &out.outgoing_secret {
        p(
            Some(inline.span()),
            "actions.outgoing_secret is inline: secrets in config files end up in git".into(),
            "remove it, choose a new secret, and set actions.outgoing_secret_env or actions.outgoing_secret_file",
        );
    }
    let outgoing_secret = match (&out.outgoing_secret_env, &out.outgoing_secret_file) {
        (Some(var), None) => match env.var(var.get_ref()) {
            Some(s) if s.trim().len() >= 16 => Some(Secret::new(s.trim().to_string())),
            Some(_) => {
                p(
                    Some(var.span()),
                    format!(
                        "actions.outgoing_secret_env: ${} is shorter than 16 characters",
                        var.get_ref()
                    ),
                    "use an unguessable secret, e.g. `openssl rand -hex 32`",
                );
                None
            }
            None => {
                p(
                    Some(var.span()),
                    format!(
                        "actions.outgoing_secret_env names ${}, which is not set",
                        var.get_ref()
                    ),
                    "export the variable before starting sluice",
                );
                None
            }
        },
        (None, Some(file)) => match read_secret_file(base, file.get_ref()) {
            Ok(s) => Some(s),
            Err(e) => {
                p(
                    Some(file.span()),
                    format!("actions.outgoing_secret_file: {e}"),
                    "check the path and permissions",
                );
                None
            }
        },
        (Some(var), Some(_)) => {
            p(
                Some(var.span()),
                "actions has both outgoing_secret_env and outgoing_secret_file".into(),
                "keep one of them",
            );
            None
        }
        (None, None) => None,
    };
    if !callback_hosts.is_empty()
        && outgoing_secret.is_none()
        && out.outgoing_secret_env.is_none()
        && out.outgoing_secret_file.is_none()
    {
        p(
            raw.callback_hosts.first().map(|h| h.span()),
            "approvals.callback_hosts is set but outgoing calls have no secret to be signed with".into(),
            "set actions.outgoing_secret_env (or outgoing_secret_file) to a secret the receivers share; see README \"Signed outgoing calls\"",
        );
    }
    ApprovalsConfig {
        callback_hosts,
        outgoing_secret,
        allow_link_local,
        timeout_ms: raw
            .timeout_ms
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .clamp(100, 120_000),
        action_origins: Vec::new(),
        approve_comment: raw.approve_comment,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_reported, parse};

    #[test]
    fn approvals_and_outgoing_settings_are_checked_with_their_line_and_fix() {
        let table = [
            // (config, line, message contains, fix contains)
            ("[approvals]\ncallback_hosts = [\"https://ci.internal:8443\"]\n", 2, "no secret", "outgoing_secret_env"),
            ("[actions]\noutgoing_secret_env = \"OUT\"\n[approvals]\ncallback_hosts = [\"ftp://ci\"]\n", 4, "not an http or https URL", "scheme, host and port"),
            ("[actions]\noutgoing_secret_env = \"OUT\"\n[approvals]\ncallback_hosts = [\"https://ci.internal/hook\"]\n", 4, "has a path", "only scheme"),
            ("[actions]\noutgoing_secret = \"x\"\n", 2, "inline", "outgoing_secret_env"),
            ("[actions]\noutgoing_secret_env = \"NOPE\"\n", 2, "not set", "export"),
            ("[actions]\noutgoing_secret_env = \"SHORT\"\n", 2, "shorter than 16", "openssl"),
            ("[actions]\nallow_link_local = [\"metadata\"]\n", 2, "not an IP address", "169.254.169.254"),
        ];
        assert_reported(&table);
    }

    #[test]
    fn a_valid_table() {
        let cfg = parse(
            "[actions]\noutgoing_secret_env = \"OUT\"\nallow_link_local = [\"169.254.169.254\"]\n\
             [approvals]\ncallback_hosts = [\"https://CI.internal:8443\", \"http://127.0.0.1:9000/\"]\ntimeout_ms = 5000\napprove_comment = true\n",
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        let a = &cfg.approvals;
        assert!(a.approve_comment);
        let hosts: Vec<String> = a.callback_hosts.iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["https://ci.internal:8443", "http://127.0.0.1:9000"]);
        assert_eq!(a.timeout_ms, 5000);
        assert_eq!(a.allow_link_local.len(), 1);
        assert_eq!(
            a.outgoing_secret.as_ref().map(|s| s.expose().len()),
            Some(26)
        );
        assert!(
            !parse("").unwrap().approvals.approve_comment,
            "off unless set"
        );
    }
}
