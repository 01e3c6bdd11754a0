//! Webhook sources over HTTP (no socket): Alertmanager with an API key, GitHub with its
//! signature, GitLab with its token; bad credentials and malformed payloads refused, nothing
//! enqueued.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::Sha256;
use sluice::server::app;
use tower::ServiceExt;

use common::*;

const GITHUB_SECRET: &str = "gh-webhook-secret";
const GITLAB_TOKEN: &str = "gl-webhook-token";

const SOURCES: &str = r#"
[[source]]
name = "github"
secret_env = "GH"

[[source]]
name = "ci-gitlab"
type = "gitlab"
secret_env = "GL"

[routing]
default = { channels = ["alerts"] }
"#;

async fn post(
    state: &std::sync::Arc<sluice::state::AppState>,
    uri: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = app(state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn github_signature(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn sources_state(dir: &std::path::Path) -> std::sync::Arc<sluice::state::AppState> {
    let url = format!("sqlite://{}/test.db", dir.display());
    let mut env = env();
    env.insert("GH".into(), GITHUB_SECRET.into());
    env.insert("GL".into(), GITLAB_TOKEN.into());
    let text = format!(
        "[storage]\nurl = \"{url}\"\n[slack]\nbot_token_env = \"TOKEN\"\n[[api_key]]\nname = \"am\"\nkey_env = \"KEY\"\n{SOURCES}"
    );
    let cfg = sluice::config::Config::parse(&text, dir, &env).unwrap_or_else(|p| panic!("{p:#?}"));
    let store = sluice_store::open(&url, &sluice_store::StoreOptions::default())
        .await
        .unwrap();
    std::sync::Arc::new(sluice::state::AppState::new(cfg, store, None))
}

#[tokio::test]
async fn alertmanager_deliveries_need_an_api_key_and_become_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = sources_state(dir.path()).await;
    let body = include_str!("../../sources/src/alertmanager/fixtures/grouped.json");
    let auth = [("authorization", format!("Bearer {KEY}"))];

    let (status, _) = post(&s, "/v1/sources/alertmanager", &[], body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = post(
        &s,
        "/v1/sources/alertmanager",
        &auth,
        "{\"version\": \"4\", \"alerts\": 3}",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["field"], "alerts", "{v}");
    assert_eq!(s.store.outbox_stats(0).await.unwrap().pending, 0);

    let (status, v) = post(&s, "/v1/sources/alertmanager", &auth, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let ids = v["ids"].as_array().unwrap();
    assert!(
        ids.len() >= 2,
        "a grouped delivery is one event per alert: {v}"
    );
    let ev = s
        .store
        .event(ids[0].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.source, "alertmanager");
    assert!(
        ev.body["dedup_key"].as_str().unwrap().starts_with("am:"),
        "{}",
        ev.body
    );
}

#[tokio::test]
async fn github_deliveries_are_verified_by_their_signature() {
    let dir = tempfile::tempdir().unwrap();
    let s = sources_state(dir.path()).await;
    let body = include_str!("../../sources/src/github/fixtures/workflow_run_failure.json");
    let event = ("x-github-event", "workflow_run".to_string());

    let (status, _) = post(&s, "/v1/sources/github", std::slice::from_ref(&event), body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "missing signature");
    let forged = (
        "x-hub-signature-256",
        github_signature(&body.replace("failure", "success")),
    );
    let (status, _) = post(&s, "/v1/sources/github", &[event.clone(), forged], body).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "signature of another body"
    );
    assert_eq!(s.store.outbox_stats(0).await.unwrap().pending, 0);

    let good = ("x-hub-signature-256", github_signature(body));
    let (status, v) = post(&s, "/v1/sources/github", &[event, good], body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["accepted"], 1);
    let ping = include_str!("../../sources/src/github/fixtures/ping.json");
    let (status, v) = post(
        &s,
        "/v1/sources/github",
        &[
            ("x-github-event", "ping".into()),
            ("x-hub-signature-256", github_signature(ping)),
        ],
        ping,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["accepted"], 0);
    assert!(v["ignored"].is_string(), "{v}");
}

#[tokio::test]
async fn gitlab_deliveries_need_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = sources_state(dir.path()).await;
    let body = include_str!("../../sources/src/gitlab/fixtures/pipeline_failed.json");
    let kind = ("x-gitlab-event", "Pipeline Hook".to_string());
    let (status, _) = post(
        &s,
        "/v1/sources/ci-gitlab",
        &[kind.clone(), ("x-gitlab-token", "wrong".into())],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = post(
        &s,
        "/v1/sources/ci-gitlab",
        &[kind, ("x-gitlab-token", GITLAB_TOKEN.into())],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let (status, v) = post(&s, "/v1/sources/nope", &[], body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

#[test]
fn a_github_source_without_its_secret_is_refused_at_start() {
    let text = "[[source]]\nname = \"github\"\nsecret_env = \"UNSET_SECRET_VAR\"\n";
    let problems = sluice::config::Config::parse(text, std::path::Path::new("."), &env())
        .err()
        .unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("github") && p.line == Some(1)),
        "{problems:#?}"
    );
}
