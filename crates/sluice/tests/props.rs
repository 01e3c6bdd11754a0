//! Malformed input (issue 15), through the Sluice app (`sluice::server::app` with `oneshot`)
//! and the config parser:
//!
//! - `/v1/events`, `/v1/messages`, `/hooks/{name}/{secret}` and `/v1/sources/{name}` answer
//!   any body (arbitrary bytes, arbitrary JSON, mutated valid payloads) with a status below
//!   500; `/v1/events` accepts (202) exactly what `parse_events` accepts, 413 above the
//!   body limit;
//! - `Config::parse` answers any text (arbitrary, or a complete config with values, types
//!   and keys changed, or its bytes damaged) with a config or a list of problems, never a
//!   panic, and a refusal always has at least one problem.
//!
//! Cases per property: `PROPTEST_CASES` (CI default below; `bench/props.sh` runs 100,000).

#[path = "../../core/tests/mutate/mod.rs"]
mod mutate;

use axum::body::Body;
use axum::http::Request;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::Sha256;
use sluice::config::Config;
use sluice::server::app;
use sluice::state::AppState;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use tower::ServiceExt;

const KEY: &str = "props-key-events";
const HOOK_SECRET: &str = "hook-secret-0123456789abcdef";
const GITHUB_SECRET: &str = "gh-webhook-secret";
const GITLAB_TOKEN: &str = "gl-webhook-token";

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("KEY".to_string(), KEY.to_string()),
        ("HOOK".to_string(), HOOK_SECRET.to_string()),
        ("TOKEN".to_string(), "xoxb-props".to_string()),
        ("GH".to_string(), GITHUB_SECRET.to_string()),
        ("GL".to_string(), GITLAB_TOKEN.to_string()),
    ])
}

const TEMPLATE: &str = r#"{"text": {{ event.title }}, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": {{ emoji ~ " " ~ event.text }}}}]}"#;

fn app_config(url: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536

[storage]
url = "{url}"
durability = "normal"

[slack]
api_base = "http://127.0.0.1:9/api/"
bot_token_env = "TOKEN"
team_id = "T0SIM"

[dedup]
window_secs = 600

[[api_key]]
name = "ci"
key_env = "KEY"
scopes = ["events:write", "messages:write", "read", "admin"]

[[hook]]
name = "cron"
channel = "ops"
secret_env = "HOOK"

[[source]]
name = "github"
secret_env = "GH"

[[source]]
name = "gitlab"
secret_env = "GL"

[templates]
mine = '''{TEMPLATE}'''

[routing]
default = {{ channels = ["alerts"] }}

[[routing.rule]]
name = "mine"
match = {{ source = "custom" }}
channels = ["custom"]
template = "mine"

[[routing.rule]]
name = "grouped"
match = {{ source = "alertmanager" }}
channels = ["k8s"]
group_by = ["service"]

[[routing.rule]]
name = "drop-successful-deploys"
match = {{ kind = "deployment", severity = "ok" }}
drop = true
"#
    )
}

/// One app for all cases of a test binary: SQLite in a temporary directory, Slack a closed
/// port on 127.0.0.1 (nothing is dispatched: `oneshot` only).
static APP: LazyLock<(tempfile::TempDir, Arc<AppState>)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/props.db", dir.path().display());
    let cfg =
        Config::parse(&app_config(&url), dir.path(), &env()).unwrap_or_else(|p| panic!("{p:#?}"));
    let store = RT
        .block_on(sluice_store::open(
            &url,
            &sluice_store::StoreOptions {
                migrate: true,
                ..Default::default()
            },
        ))
        .unwrap();
    (dir, Arc::new(AppState::new(cfg, store, None)))
});

fn call(uri: &str, content_type: Option<&str>, headers: &[(&str, String)], body: Vec<u8>) -> u16 {
    let mut b = Request::post(uri).header("authorization", format!("Bearer {KEY}"));
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let req = b.body(Body::from(body)).unwrap();
    let state = APP.1.clone(); // outside the runtime: setting it up blocks on the store
    RT.block_on(async { app(state).oneshot(req).await.unwrap().status().as_u16() })
}

static SOURCE_FIXTURES: LazyLock<Vec<(&'static str, String, Value)>> = LazyLock::new(|| {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sources/src");
    let mut out = Vec::new();
    for source in ["alertmanager", "grafana", "github", "gitlab"] {
        let mut files: Vec<_> = std::fs::read_dir(format!("{dir}/{source}/fixtures"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let name = f.file_stem().unwrap().to_str().unwrap().to_owned();
            let event = match source {
                "github" => ["workflow_run", "check_run", "deployment_status", "ping"]
                    .into_iter()
                    .find(|p| name.starts_with(p))
                    .unwrap_or("workflow_run")
                    .to_owned(),
                "gitlab" if name.starts_with("deployment") => "Deployment Hook".to_owned(),
                "gitlab" => "Pipeline Hook".to_owned(),
                _ => String::new(),
            };
            out.push((
                source,
                event,
                serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap(),
            ));
        }
    }
    assert!(out.len() >= 15, "fixtures not found");
    out
});

fn source_headers(source: &str, event: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    match source {
        "github" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).unwrap();
            mac.update(body);
            vec![
                ("x-github-event", event.to_owned()),
                (
                    "x-hub-signature-256",
                    format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
                ),
            ]
        }
        "gitlab" => vec![
            ("x-gitlab-event", event.to_owned()),
            ("x-gitlab-token", GITLAB_TOKEN.to_owned()),
        ],
        _ => Vec::new(),
    }
}

fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        mutate::value(),
        (mutate::any_string(), mutate::value(), prop::option::of(mutate::value())).prop_map(|(ch, blocks, text)| {
            let mut m = json!({"channel": ch, "blocks": blocks});
            if let Some(t) = text { m["text"] = t; }
            m
        }),
        mutate::edits(5).prop_map(|e| mutate::mutated(&json!({
            "channel": "ops",
            "text": "deploy *done* <!here>",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Deploy"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "checkout v1.2"}, "fields": [{"type": "mrkdwn", "text": "*env*\nprod"}]},
                {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://example.com"}]},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "by ci"}]}
            ],
            "thread_ts": "1712345678.000100",
            "unfurl_links": false
        }), &e)),
    ]
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        mutate::value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// `/v1/events`: arbitrary bytes and JSON, generated events and batches, and a valid event
    /// mutated or damaged: a status below 500, and 202 exactly when `parse_events` accepts it and it holds no NUL.
    #[test]
    fn app_events_any_body(
        body in prop_oneof![
            body_bytes(),
            prop::collection::vec(mutate::event_json(), 1..4).prop_map(|b| serde_json::to_vec(&b).unwrap()),
            mutate::event_json().prop_map(|e| serde_json::to_vec(&e).unwrap()),
            (mutate::edits(5), prop::option::of(mutate::byte_edits())).prop_map(|(e, d)| {
                let mut ev = mutate::full_event();
                ev["source"] = json!("custom");
                let b = serde_json::to_vec(&mutate::mutated(&ev, &e)).unwrap();
                d.map(|d| mutate::damage(&b, &d)).unwrap_or(b)
            }),
        ],
    ) {
        // Accepted: what the parser accepts, less text holding a NUL character, which no backend can store.
        let valid = sluice_core::parse_events(&body).is_ok_and(|events| {
            events.iter().all(|e| {
                sluice_core::nul::nul_path(&serde_json::to_value(e).unwrap_or_default()).is_none()
            })
        });
        let too_large = body.len() > 65536; // the config's server.max_body_bytes
        let s = call("/v1/events", Some("application/json"), &[], body);
        prop_assert!(s < 500, "status {}", s);
        if too_large {
            prop_assert_eq!(s, 413);
        } else {
            prop_assert_eq!(s == 202, valid, "status {} for a body parse_events {}", s, if valid { "accepts" } else { "refuses" });
        }
    }

    /// `/v1/messages`: any body, arbitrary Block Kit or a valid message mutated.
    #[test]
    fn app_messages_any_body(body in prop_oneof![body_bytes(), message().prop_map(|m| serde_json::to_vec(&m).unwrap())]) {
        let s = call("/v1/messages", Some("application/json"), &[], body);
        prop_assert!(s < 500, "status {}", s);
    }

    /// The Slack-compatible hooks endpoint: any body as JSON or as a form's `payload`, with
    /// right and wrong names and secrets.
    #[test]
    fn app_hooks_any_body(
        body in prop_oneof![body_bytes(), message().prop_map(|m| serde_json::to_vec(&m).unwrap())],
        form in any::<bool>(),
        name in prop_oneof![4 => Just("cron".to_owned()), 1 => "[a-z0-9_-]{1,10}"],
        secret in prop_oneof![4 => Just(HOOK_SECRET.to_owned()), 1 => "[A-Za-z0-9_.~-]{1,40}"],
        ct in prop_oneof![Just("application/json".to_owned()), Just("text/plain".to_owned()), "[ -~]{0,20}"],
    ) {
        let (ct, body) = if form {
            let text = String::from_utf8_lossy(&body).into_owned();
            ("application/x-www-form-urlencoded".to_owned(), serde_urlencoded::to_string([("payload", text)]).unwrap().into_bytes())
        } else {
            (ct, body)
        };
        let Ok(ct) = axum::http::HeaderValue::from_str(&ct) else { return Ok(()) };
        let s = call(&format!("/hooks/{name}/{secret}"), ct.to_str().ok(), &[], body);
        prop_assert!(s < 500, "status {}", s);
    }

    /// `/v1/sources/{name}`: every source's fixtures mutated or damaged, correctly signed.
    #[test]
    fn app_sources_any_body(
        i in 0..SOURCE_FIXTURES.len(),
        edits in prop::option::of(mutate::edits(5)),
        damage in prop::option::of(mutate::byte_edits()),
        random in prop::option::of(body_bytes()),
    ) {
        let (source, event, seed) = &SOURCE_FIXTURES[i];
        let mut body = match (random, &edits) {
            (Some(b), _) => b,
            (None, Some(e)) => serde_json::to_vec(&mutate::mutated(seed, e)).unwrap(),
            (None, None) => serde_json::to_vec(seed).unwrap(),
        };
        if let Some(d) = &damage {
            body = mutate::damage(&body, d);
        }
        let headers = source_headers(source, event, &body);
        let s = call(&format!("/v1/sources/{source}"), Some("application/json"), &headers, body);
        prop_assert!(s < 500, "status {}", s);
    }
}

/// A complete config touching every table, as TOML, with the secrets it names on disk.
fn full_config(dir: &Path) -> String {
    for (f, v) in [
        ("bot-token", "xoxb-file"),
        ("api-key", "key-file-0123456789abcdef"),
        ("hook-secret", "hook-file-0123456789abcdef"),
        ("signing-secret", "sig-file"),
        ("outgoing-secret", "outgoing-file-0123456789abcdef"),
    ] {
        let p = dir.join(f);
        if !p.exists() {
            std::fs::write(p, v).unwrap();
        }
    }
    let demo = include_str!("../src/demo.toml")
        .replace("{listen}", "127.0.0.1:0")
        .replace("{data_dir}", "/nonexistent-props")
        .replace("{api_base}", "http://127.0.0.1:9/api/")
        .replace("{sim_addr}", "127.0.0.1:9");
    format!(
        "{demo}\n[dedup]\nwindow_secs = 600\n\n[[source]]\nname = \"github\"\nsecret_env = \"GH\"\n\n[[source]]\nname = \"ci-gitlab\"\ntype = \"gitlab\"\nsecret_env = \"GL\"\n\n[templates]\nmine = '''{TEMPLATE}'''\n"
    )
}

static CONFIG_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
static FULL_CONFIG: LazyLock<(String, Value)> = LazyLock::new(|| {
    let text = full_config(CONFIG_DIR.path());
    Config::parse(&text, CONFIG_DIR.path(), &env())
        .unwrap_or_else(|p| panic!("the seed config is invalid: {p:#?}"));
    let v: toml::Value = toml::from_str(&text).unwrap();
    (text, serde_json::to_value(v).unwrap())
});

/// JSON back to TOML text: nulls are dropped (TOML has none), a non-table root is wrapped.
fn to_toml(v: &Value) -> Option<String> {
    fn strip(v: &Value) -> Option<toml::Value> {
        Some(match v {
            Value::Null => return None,
            Value::Bool(b) => toml::Value::Boolean(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => toml::Value::Integer(i),
                None => toml::Value::Float(n.as_f64()?),
            },
            Value::String(s) => toml::Value::String(s.clone()),
            Value::Array(a) => toml::Value::Array(a.iter().filter_map(strip).collect()),
            Value::Object(o) => toml::Value::Table(
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), strip(v)?)))
                    .collect(),
            ),
        })
    }
    match strip(v)? {
        t @ toml::Value::Table(_) => toml::to_string(&t).ok(),
        other => toml::to_string(&toml::Value::Table(
            [("x".to_owned(), other)].into_iter().collect(),
        ))
        .ok(),
    }
}

fn parse_config(text: &str) -> Result<(), TestCaseError> {
    if let Err(problems) = Config::parse(text, CONFIG_DIR.path(), &env()) {
        prop_assert!(!problems.is_empty(), "refused without a problem");
        prop_assert!(
            problems.iter().any(|p| !p.warning),
            "refused with warnings only: {:?}",
            problems
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Arbitrary text, and arbitrary TOML-looking lines.
    #[test]
    fn config_arbitrary_text(
        text in prop_oneof![
            ".{0,200}",
            prop::collection::vec(prop_oneof![
                "\\[{1,2}[a-z_.]{1,12}\\]{1,2}",
                "[a-z_]{1,12} = (\"[^\"\\\\]{0,12}\"|[0-9-]{1,6}|true|\\[\\]|\\{\\})",
                ".{0,30}",
            ], 0..12).prop_map(|l| l.join("\n")),
        ],
    ) {
        parse_config(&text)?;
    }

    /// The complete config with values, types and keys changed (through its TOML tree).
    #[test]
    fn config_mutated(edits in mutate::edits(6)) {
        let doc = mutate::mutated(&FULL_CONFIG.1, &edits);
        if let Some(text) = to_toml(&doc) {
            parse_config(&text)?;
        }
    }

    /// The complete config's text with bytes cut, changed or inserted.
    #[test]
    fn config_damaged_text(edits in mutate::byte_edits()) {
        let bytes = mutate::damage(FULL_CONFIG.0.as_bytes(), &edits);
        parse_config(&String::from_utf8_lossy(&bytes))?;
    }
}

/// `PROPTEST_CASES` when set (proptest's own variable), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seeds are good: the valid event is accepted, every source fixture is answered 2xx,
/// the valid message is queued and the hook takes a plain text message.
#[test]
fn unmutated_seeds_are_accepted() {
    let mut ev = mutate::full_event();
    ev["source"] = json!("custom");
    assert_eq!(
        call(
            "/v1/events",
            Some("application/json"),
            &[],
            serde_json::to_vec(&ev).unwrap()
        ),
        202
    );
    for (source, event, seed) in SOURCE_FIXTURES.iter() {
        let body = serde_json::to_vec(seed).unwrap();
        let headers = source_headers(source, event, &body);
        let s = call(
            &format!("/v1/sources/{source}"),
            Some("application/json"),
            &headers,
            body,
        );
        let legacy = *source == "grafana" && seed.get("evalMatches").is_some();
        assert!(
            (200..300).contains(&s) || legacy && s == 422,
            "{source} {event}: {s}"
        );
    }
    let msg = json!({"channel": "ops", "text": "hello"});
    assert_eq!(
        call(
            "/v1/messages",
            Some("application/json"),
            &[],
            serde_json::to_vec(&msg).unwrap()
        ),
        202
    );
    let hook = format!("/hooks/cron/{HOOK_SECRET}");
    assert_eq!(
        call(
            &hook,
            Some("application/json"),
            &[],
            serde_json::to_vec(&msg).unwrap()
        ),
        200
    );
}
