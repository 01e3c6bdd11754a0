//! `[[api_key]]`: the callers of the HTTP API, each with its scopes and its key from the environment, a file, or
//! as its SHA-256. Keys are held hashed ([`ApiKey`]); an inline key is refused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{read_secret_file, sha256, Env, Report};

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

/// A caller's key, held only as its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    pub sha256: [u8; 32],
    pub scopes: BTreeSet<String>,
}

/// Checks every `[[api_key]]`: names used once, known scopes, exactly one readable source for the key.
pub(super) fn check(
    raw: &[Spanned<ApiKeyConfig>],
    base: &Path,
    env: &dyn Env,
    p: &mut Report<'_>,
) -> Vec<ApiKey> {
    let mut api_keys = Vec::new();
    let mut names = BTreeSet::new();
    for spanned in raw {
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
    api_keys
}

#[cfg(test)]
mod tests {
    use super::super::sha256;
    use super::super::testing::{parse, problems};

    #[test]
    fn an_inline_key_is_refused() {
        let p = problems("[[api_key]]\nname = \"ci\"\nkey = \"abc\"\n");
        assert!(p[0].message.contains("inline"), "{p:?}");
        assert_eq!(p[0].line, Some(1));
    }

    #[test]
    fn keys_are_held_hashed() {
        let cfg = parse("[[api_key]]\nname = \"ci\"\nkey_env = \"KEY_CI\"\n")
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
}
