//! The HTTP API called without a socket: every status code a caller can get, and that nothing
//! is enqueued when a request is refused.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sluice::http::app;
use tower::ServiceExt;

use common::*;

struct Answer {
    status: StatusCode,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn call(
    state: &std::sync::Arc<sluice::state::AppState>,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: impl Into<Body>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = app(state.clone())
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn alert(title: &str) -> Value {
    json!({"title": title, "text": "p99 2.7s", "severity": "critical", "status": "firing",
           "source": "alertmanager", "service": "checkout", "environment": "prod",
           "labels": {"team": "payments"}})
}

async fn pending(state: &std::sync::Arc<sluice::state::AppState>) -> u64 {
    state.store.outbox_stats(0).await.unwrap().pending
}

#[tokio::test]
async fn an_accepted_event_is_committed_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let a = call(
        &s,
        "POST",
        "/v1/events",
        Some(KEY),
        alert("DB down").to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_string();
    assert_eq!(pending(&s).await, 1);

    let a = call(
        &s,
        "GET",
        &format!("/v1/events/{id}"),
        Some(READ_ONLY_KEY),
        Body::empty(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let v = a.json();
    assert_eq!(v["state"], "queued");
    assert_eq!(v["deliveries"][0]["channel"], "alerts");
    assert_eq!(v["event"]["title"], "DB down");
}

#[tokio::test]
async fn a_batch_is_committed_together() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let batch = json!([alert("a"), alert("b"), alert("c")]);
    let a = call(&s, "POST", "/v1/events", Some(KEY), batch.to_string()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.json()["ids"].as_array().unwrap().len(), 3);
    assert_eq!(pending(&s).await, 3);

    // One bad event refuses the whole batch, naming it.
    let mut bad = alert("d");
    bad["severity"] = json!("urgent");
    let a = call(
        &s,
        "POST",
        "/v1/events",
        Some(KEY),
        json!([alert("e"), bad]).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json()["field"].as_str().unwrap().contains("[1]"),
        "{}",
        a.body
    );
    assert_eq!(pending(&s).await, 3);
}

#[tokio::test]
async fn refused_requests_say_why_and_enqueue_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let ok = alert("x").to_string();
    let mut no_title = alert("x");
    no_title.as_object_mut().unwrap().remove("title");
    let huge = json!({"title": "x", "severity": "info", "status": "firing", "source": "s",
                      "text": "y".repeat(70_000)})
    .to_string();

    let cases: Vec<(&str, Option<&str>, String, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            Some(KEY),
            "{\"title\": ".into(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            "missing field",
            Some(KEY),
            no_title.to_string(),
            StatusCode::BAD_REQUEST,
            "title",
        ),
        ("no key", None, ok.clone(), StatusCode::UNAUTHORIZED, ""),
        (
            "unknown key",
            Some("nope"),
            ok.clone(),
            StatusCode::UNAUTHORIZED,
            "",
        ),
        (
            "key without the scope",
            Some(READ_ONLY_KEY),
            ok.clone(),
            StatusCode::FORBIDDEN,
            "",
        ),
        (
            "oversized body",
            Some(KEY),
            huge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (what, key, body, want, field) in cases {
        let a = call(&s, "POST", "/v1/events", key, body).await;
        assert_eq!(a.status, want, "{what}: {}", a.body);
        if !field.is_empty() {
            assert_eq!(a.json()["field"], field, "{what}: {}", a.body);
            assert!(
                !a.json()["message"].as_str().unwrap_or("").is_empty(),
                "{what}"
            );
        }
    }
    assert_eq!(pending(&s).await, 0, "a refused request enqueued something");
}

#[tokio::test]
async fn drop_rules_and_the_default_route_are_recorded_as_fates() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let green = json!({"title": "Deploy v1", "severity": "ok", "status": "resolved",
                       "kind": "deployment", "source": "github"});
    let a = call(&s, "POST", "/v1/events", Some(KEY), green.to_string()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let id = a.json()["id"].as_str().unwrap().to_string();
    let v = call(
        &s,
        "GET",
        &format!("/v1/events/{id}"),
        Some(KEY),
        Body::empty(),
    )
    .await
    .json();
    assert_eq!(v["state"], "dropped");
    assert_eq!(v["fate"]["rule"], "drop-successful-deploys");
    assert_eq!(pending(&s).await, 0);

    let red = json!({"title": "Deploy v2", "severity": "error", "status": "firing",
                     "kind": "deployment", "source": "github"});
    let a = call(&s, "POST", "/v1/events", Some(KEY), red.to_string()).await;
    let id = a.json()["id"].as_str().unwrap().to_string();
    let v = call(
        &s,
        "GET",
        &format!("/v1/events/{id}"),
        Some(KEY),
        Body::empty(),
    )
    .await
    .json();
    assert_eq!(v["deliveries"][0]["channel"], "deploys", "{v}");
}

#[tokio::test]
async fn unknown_event_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let a = call(&s, "GET", "/v1/events/evt_nope", Some(KEY), Body::empty()).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn explicit_messages_go_through_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let a = call(
        &s,
        "POST",
        "/v1/messages",
        Some(KEY),
        json!({"channel": "#ops", "text": "hello"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let cases = [
        (json!({"text": "no channel"}), "channel"),
        (json!({"channel": "ops"}), "text"),
        (
            json!({"channel": "ops", "text": "x", "colour": "red"}),
            "colour",
        ),
        (
            json!({"channel": "ops", "blocks": "not an array"}),
            "blocks",
        ),
    ];
    for (body, field) in cases {
        let a = call(&s, "POST", "/v1/messages", Some(KEY), body.to_string()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(a.json()["field"], field, "{}", a.body);
    }
    assert_eq!(pending(&s).await, 1);
}

#[tokio::test]
async fn hooks_answer_like_slacks_incoming_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let good = format!("/hooks/cron/{HOOK_SECRET}");
    let cases = [
        (
            good.as_str(),
            json!({"text": "backup done"}).to_string(),
            StatusCode::OK,
            "ok",
        ),
        (
            good.as_str(),
            json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]})
                .to_string(),
            StatusCode::OK,
            "ok",
        ),
        (
            good.as_str(),
            "not json".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            good.as_str(),
            json!({"username": "bot"}).to_string(),
            StatusCode::BAD_REQUEST,
            "no_text",
        ),
        (
            "/hooks/cron/wrong-secret-wrong-secret",
            json!({"text": "x"}).to_string(),
            StatusCode::FORBIDDEN,
            "invalid_token",
        ),
        (
            "/hooks/nope/whatever",
            json!({"text": "x"}).to_string(),
            StatusCode::NOT_FOUND,
            "no_service",
        ),
    ];
    for (uri, body, want, word) in cases {
        let a = call(&s, "POST", uri, None, body.clone()).await;
        assert_eq!(a.status, want, "{uri} {body}");
        assert_eq!(a.body, word, "{uri} {body}");
    }
    assert_eq!(pending(&s).await, 2);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    assert_eq!(
        call(&s, "GET", "/healthz", None, Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&s, "GET", "/readyz", None, Body::empty()).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn dead_letter_api_needs_admin_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let a = call(
        &s,
        "GET",
        "/v1/dead-letters",
        Some(READ_ONLY_KEY),
        Body::empty(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["dead_letters"], json!([]));
    let a = call(
        &s,
        "POST",
        "/v1/dead-letters/replay",
        Some(READ_ONLY_KEY),
        json!({"all": true}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = call(
        &s,
        "POST",
        "/v1/dead-letters/replay",
        Some(KEY),
        json!({"all": true}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["replayed"], 0);
}

#[tokio::test]
async fn a_silence_suppresses_exactly_what_it_matches_until_it_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let a = call(&s, "POST", "/v1/silences", Some(KEY),
                 json!({"matchers": ["service=checkout", "severity=~crit.*"], "duration": "1h", "comment": "db migration"}).to_string()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_string();
    assert_eq!(a.json()["author"], "ci");

    let post = |body: Value| {
        let s = s.clone();
        async move {
            let a = call(&s, "POST", "/v1/events", Some(KEY), body.to_string()).await;
            let id = a.json()["id"].as_str().unwrap().to_string();
            call(
                &s,
                "GET",
                &format!("/v1/events/{id}"),
                Some(KEY),
                Body::empty(),
            )
            .await
            .json()
        }
    };
    let silenced = post(alert("DB down")).await;
    assert_eq!(silenced["state"], "suppressed", "{silenced}");
    assert_eq!(silenced["fate"]["by"], format!("silence:{id}"));
    let mut other_service = alert("Queue slow");
    other_service["service"] = json!("queue");
    assert_eq!(post(other_service).await["state"], "queued");
    let mut warning = alert("DB slow");
    warning["severity"] = json!("warning");
    assert_eq!(post(warning).await["state"], "queued");
    assert_eq!(pending(&s).await, 2);

    // A read-only key may list but not end it.
    let a = call(
        &s,
        "GET",
        "/v1/silences",
        Some(READ_ONLY_KEY),
        Body::empty(),
    )
    .await;
    assert_eq!(a.json()["silences"].as_array().unwrap().len(), 1);
    let a = call(
        &s,
        "DELETE",
        &format!("/v1/silences/{id}"),
        Some(READ_ONLY_KEY),
        Body::empty(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = call(
        &s,
        "DELETE",
        &format!("/v1/silences/{id}"),
        Some(KEY),
        Body::empty(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(post(alert("DB down again")).await["state"], "queued");
    let a = call(
        &s,
        "DELETE",
        &format!("/v1/silences/{id}"),
        Some(KEY),
        Body::empty(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let a = call(
        &s,
        "POST",
        "/v1/silences",
        Some(KEY),
        json!({"matchers": ["team!=core"], "duration": "1h"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["field"], "matchers", "{}", a.body);
}

#[tokio::test]
async fn beyond_max_in_flight_callers_get_503_at_once_and_probes_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/test.db", dir.path().display());
    let text = format!(
        "[server]\nmax_in_flight = 1\n[storage]\nurl = \"{url}\"\n[slack]\nbot_token_env = \"TOKEN\"\n[[api_key]]\nname = \"ci\"\nkey_env = \"KEY\"\n{}",
        common::ROUTING
    );
    let cfg = sluice::config::Config::parse(&text, dir.path(), &env())
        .unwrap_or_else(|p| panic!("{p:#?}"));
    let store = sluice_store::open(&url, &sluice_store::StoreOptions::default())
        .await
        .unwrap();
    let state = std::sync::Arc::new(sluice::state::AppState::new(cfg, store, None));
    let router = app(state.clone());
    let post = |body: Body| {
        Request::post("/v1/events")
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .body(body)
            .unwrap()
    };

    // A request whose body has not finished arriving holds the only slot.
    let (release, held_body) = tokio::sync::oneshot::channel::<()>();
    let body = alert("held").to_string();
    let stream = futures::stream::once(async move {
        let _ = held_body.await;
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(body))
    });
    let held = tokio::spawn(router.clone().oneshot(post(Body::from_stream(stream))));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let started = std::time::Instant::now();
    let shed = router
        .clone()
        .oneshot(post(Body::from(alert("shed").to_string())))
        .await
        .unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "shedding waited"
    );
    assert!(shed.headers().contains_key("retry-after"));
    let health = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "probes must answer under overload"
    );

    release.send(()).unwrap();
    assert_eq!(held.await.unwrap().unwrap().status(), StatusCode::ACCEPTED);
    let after = router
        .clone()
        .oneshot(post(Body::from(alert("after").to_string())))
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::ACCEPTED);
    assert_eq!(
        pending(&state).await,
        2,
        "the shed request was not enqueued"
    );
}

/// Silences created and expired over HTTP (and so with `sluice silence`, which calls the API) and dead-letter
/// replays are human actions: each is in the audit log with who did it and what came of it.
#[tokio::test]
async fn silences_and_replays_over_http_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let a = call(
        &s,
        "POST",
        "/v1/silences",
        Some(KEY),
        json!({"matchers": ["service=checkout"], "duration": "1h", "comment": "deploy"})
            .to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let path = format!("/v1/silences/{id}");
        call(&s, "DELETE", &path, Some(KEY), Body::empty()).await;
    }
    let a = call(
        &s,
        "POST",
        "/v1/dead-letters/replay",
        Some(KEY),
        json!({"all": true}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    let audit = call(&s, "GET", "/v1/audit", Some(KEY), Body::empty())
        .await
        .json();
    assert_eq!(audit["intact"], true);
    let seen: Vec<(String, String, String, String)> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                field("actor"),
                field("action"),
                field("target"),
                field("result"),
            )
        })
        .collect();
    let want = |action: &str, target: &str, result: &str| {
        (
            "ci".to_string(),
            action.to_string(),
            target.to_string(),
            result.to_string(),
        )
    };
    assert_eq!(
        seen,
        vec![
            want("silence.create", &id, "ok"),
            want("silence.expire", &id, "ok"),
            want("silence.expire", &id, "refused: no such silence in force"),
            want("dlq.replay", "all", "ok"),
        ]
    );
    assert_eq!(audit["records"][0]["detail"]["comment"], "deploy");
    assert_eq!(audit["records"][3]["detail"]["replayed"], 0);
}
