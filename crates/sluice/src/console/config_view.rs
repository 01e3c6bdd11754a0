//! The effective config, as the console shows it: the file in force (the one the last successful reload read, or
//! the one `serve` started with), parsed, with every secret replaced by `"redacted"`, and what `sluice check` says
//! about it.
//!
//! Redaction works on the file's text, never on the compiled config: a `*_env` setting shows the variable's *name*
//! (its value is never read into the view), a `*_file` setting its path; inline secrets (`key`, `secret`,
//! `bot_token`, `signing_secret`, `app_token`, `outgoing_secret`, anything ending in `_token`, `_secret`,
//! `_password`), key hashes (`sha256`), inline header values of outgoing calls, and the password in any URL are shown
//! as `"redacted"`.

use serde_json::{json, Map, Value};

use crate::config::{Config, Problem};

/// What stands in for a secret.
pub const REDACTED: &str = "redacted";

/// Keys whose inline value is a secret (or a secret's hash).
fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_env") || key.ends_with("_file") {
        return false;
    }
    matches!(
        key.as_str(),
        "key" | "secret" | "token" | "password" | "sha256" | "authorization"
    ) || ["_token", "_secret", "_password", "_sha256"]
        .iter()
        .any(|suffix| key.ends_with(suffix))
}

/// `s` with the password of a URL in it replaced.
fn redact_url(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some(REDACTED));
            u.to_string()
        }
        _ => s.to_string(),
    }
}

/// A header's value: `{ env = "…", prefix = "…" }` and `{ file = "…" }` are shown, an inline value is not.
fn redact_header(v: &toml::Value) -> Value {
    match v {
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| {
                    let shown = match k.as_str() {
                        "env" | "file" | "prefix" => to_json(v),
                        _ => json!(REDACTED),
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        _ => json!(REDACTED),
    }
}

fn to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => json!(s),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => json!(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// `v` (the value of `key`, if in a table) with its secrets redacted.
fn redact(key: Option<&str>, v: &toml::Value) -> Value {
    if let Some(k) = key {
        if k.eq_ignore_ascii_case("headers") {
            if let toml::Value::Table(t) = v {
                return Value::Object(
                    t.iter()
                        .map(|(h, v)| (h.clone(), redact_header(v)))
                        .collect(),
                );
            }
        }
        if secret_key(k) && !matches!(v, toml::Value::Table(_) | toml::Value::Array(_)) {
            return json!(REDACTED);
        }
    }
    match v {
        toml::Value::String(s) => json!(redact_url(s)),
        toml::Value::Array(a) => Value::Array(a.iter().map(|x| redact(None, x)).collect()),
        toml::Value::Table(t) => {
            let mut m = Map::new();
            for (k, v) in t {
                m.insert(k.clone(), redact(Some(k), v));
            }
            Value::Object(m)
        }
        other => to_json(other),
    }
}

fn problem(p: &Problem) -> Value {
    json!({ "line": p.line, "message": p.message, "fix": p.fix, "warning": p.warning })
}

/// The config in force, redacted, with its `check` result.
pub fn view(config: &Config) -> Value {
    let settings = match toml::from_str::<toml::Value>(&config.source) {
        Ok(v) => redact(None, &v),
        // It parsed when it was loaded; this cannot happen, but say so rather than show nothing.
        Err(e) => json!({ "unreadable": e.message() }),
    };
    let mut problems: Vec<Value> = config.warnings.iter().map(problem).collect();
    if let Err(more) = config.slack_client() {
        problems.extend(more.iter().map(problem));
    }
    let errors = problems.iter().filter(|p| p["warning"] == false).count();
    let warnings = problems.len() - errors;
    json!({
        "settings": settings,
        "check": { "ok": errors == 0, "errors": errors, "warnings": warnings, "problems": problems },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(toml_text: &str) -> Value {
        redact(None, &toml::from_str::<toml::Value>(toml_text).unwrap())
    }

    #[test]
    fn secrets_are_redacted_and_where_they_come_from_is_shown() {
        let v = shown(
            r#"
            [storage]
            url = "postgres://sluice:hunter2@db.internal/sluice"
            [slack]
            bot_token_env = "SLUICE_SLACK_BOT_TOKEN"
            signing_secret = "8f14e45fceea167a5a36dedd4bea2543"
            app_token_file = "/run/secrets/app"
            [[api_key]]
            name = "ci"
            sha256 = "0123abcd"
            scopes = ["write"]
            [[hook]]
            name = "deploys"
            secret = "s3cr3t"
            [[action]]
            name = "restart"
            url = "https://deployer.internal/restart"
            headers = { Authorization = { env = "DEPLOYER_TOKEN", prefix = "Bearer " }, X-Api-Key = "inline-value" }
            "#,
        );
        let cases: &[(&str, Value)] = &[
            (
                "/storage/url",
                json!("postgres://sluice:redacted@db.internal/sluice"),
            ),
            ("/slack/bot_token_env", json!("SLUICE_SLACK_BOT_TOKEN")),
            ("/slack/signing_secret", json!(REDACTED)),
            ("/slack/app_token_file", json!("/run/secrets/app")),
            ("/api_key/0/name", json!("ci")),
            ("/api_key/0/sha256", json!(REDACTED)),
            ("/api_key/0/scopes", json!(["write"])),
            ("/hook/0/secret", json!(REDACTED)),
            (
                "/action/0/headers/Authorization",
                json!({ "env": "DEPLOYER_TOKEN", "prefix": "Bearer " }),
            ),
            ("/action/0/headers/X-Api-Key", json!(REDACTED)),
            ("/action/0/url", json!("https://deployer.internal/restart")),
        ];
        for (path, want) in cases {
            assert_eq!(v.pointer(path), Some(want), "{path} in {v}");
        }
        let text = v.to_string();
        for secret in ["hunter2", "8f14e45f", "0123abcd", "s3cr3t", "inline-value"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}
