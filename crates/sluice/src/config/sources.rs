//! `[[source]]`: webhook sources at `POST /v1/sources/{name}` (Alertmanager, Grafana, GitHub, GitLab). Checked:
//! a known type, names used once, the webhook secret from the environment or a file (never inline) where the
//! source signs its deliveries. Alertmanager and Grafana are there without a `[[source]]`, behind an API key.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{secret_from, Env, Report};

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

/// Checks every `[[source]]` and adds the built-in ones not configured.
pub(super) fn check(
    raw: &[Spanned<SourceConfig>],
    base: &Path,
    env: &dyn Env,
    p: &mut Report<'_>,
) -> Vec<SourceInstance> {
    // Alertmanager and Grafana are there by default (API key auth).
    let mut sources: Vec<SourceInstance> = Vec::new();
    for spanned in raw {
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
        let secret = secret_from(&c.secret_env, &c.secret_file, base, env);
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
    sources
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_reported, parse};

    #[test]
    fn the_built_in_sources_are_there_without_a_source_table() {
        let cfg = parse("").map_err(|p| format!("{p:?}")).unwrap();
        let names: Vec<(&str, bool)> = cfg
            .sources
            .iter()
            .map(|s| (s.name.as_str(), s.needs_api_key))
            .collect();
        assert_eq!(names, [("alertmanager", true), ("grafana", true)]);
    }

    #[test]
    fn a_signed_source_with_its_secret_needs_no_api_key() {
        let cfg = parse("[[source]]\nname = \"gh\"\ntype = \"github\"\nsecret_env = \"OUT\"\n")
            .map_err(|p| format!("{p:?}"))
            .unwrap();
        let gh = cfg
            .sources
            .iter()
            .find(|s| s.name == "gh")
            .map(|s| s.needs_api_key);
        assert_eq!(gh, Some(false));
        assert_eq!(cfg.sources.len(), 3, "the built-in two are still there");
    }

    /// (config, line, words of the message, words of the fix).
    #[test]
    fn broken_sources_are_refused_with_their_line_and_fix() {
        assert_reported(&[
            (
                "[[source]]\nname = \"x\"\ntype = \"nagios\"\n",
                1,
                "source \"x\": unknown type \"nagios\"",
                "use one of: alertmanager",
            ),
            (
                "[[source]]\nname = \"github\"\n",
                1,
                "needs its webhook secret, which could not be read",
                "secret_env (exported) or secret_file",
            ),
            (
                "[[source]]\nname = \"gitlab\"\nsecret = \"abc\"\n",
                1,
                "has its secret inline",
                "secret_env or secret_file",
            ),
            (
                "[[source]]\nname = \"am\"\ntype = \"alertmanager\"\n\n[[source]]\nname = \"am\"\ntype = \"grafana\"\n",
                5,
                "source name \"am\" is used twice",
                "its own name",
            ),
        ]);
    }
}
