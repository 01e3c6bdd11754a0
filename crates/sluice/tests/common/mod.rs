//! Shared test set-up: a config, a store in a temporary directory, the app without a socket.
#![allow(dead_code)]

pub mod browser;
pub mod fixture;
pub mod internal;
pub mod pg;
pub mod proc;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sluice::config::Config;
use sluice::state::AppState;
use sluice_store::StoreOptions;

pub const KEY: &str = "test-key-events";
pub const READ_ONLY_KEY: &str = "test-key-read-only";
pub const HOOK_SECRET: &str = "hook-secret-0123456789abcdef";

pub const ROUTING: &str = r#"
[routing]
default = { channels = ["alerts"] }

[[routing.rule]]
name = "drop-successful-deploys"
match = { kind = "deployment", severity = "ok" }
drop = true

[[routing.rule]]
name = "deploys"
match = { kind = "deployment" }
channels = ["deploys"]
"#;

pub fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("KEY".to_string(), KEY.to_string()),
        ("RO_KEY".to_string(), READ_ONLY_KEY.to_string()),
        ("HOOK".to_string(), HOOK_SECRET.to_string()),
        ("TOKEN".to_string(), "xoxb-sim-token".to_string()),
    ])
}

/// A config for tests: `extra` is appended (server/slack/dispatch tables, routing).
pub fn config(dir: &Path, db_url: &str, api_base: &str, extra: &str) -> Config {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536

[storage]
url = "{db_url}"

[slack]
api_base = "{api_base}"
bot_token_env = "TOKEN"
team_id = "T0SIM"

[[api_key]]
name = "ci"
key_env = "KEY"
scopes = ["events:write", "messages:write", "read", "admin"]

[[api_key]]
name = "dashboard"
key_env = "RO_KEY"
scopes = ["read"]

[[hook]]
name = "cron"
channel = "ops"
secret_env = "HOOK"
{extra}
"#
    );
    match Config::parse(&text, dir, &env()) {
        Ok(c) => c,
        Err(p) => panic!("test config invalid: {p:#?}"),
    }
}

pub async fn state(dir: &Path, extra: &str) -> Arc<AppState> {
    let url = format!("sqlite://{}/test.db", dir.display());
    state_at(dir, &url, extra).await
}

/// The app's state on the database at `url` (SQLite or PostgreSQL), migrated.
pub async fn state_at(dir: &Path, url: &str, extra: &str) -> Arc<AppState> {
    let url = url.to_string();
    let cfg = config(dir, &url, "http://127.0.0.1:9/api/", extra);
    let store = sluice_store::open(
        &url,
        &StoreOptions {
            migrate: true,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("open store");
    Arc::new(AppState::new(cfg, store, None))
}
