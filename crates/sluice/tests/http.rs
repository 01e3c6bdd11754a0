//! The HTTP API called without a socket: every status code a caller can get, and that nothing
//! is enqueued when a request is refused.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sluice::server::app;
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

/// Regression: PostgreSQL refuses a NUL character in text, so a `\u0000` anywhere in a request answered 503 ("retry
/// later") or 500 there and 202 on SQLite, and a retrying client looped forever. Both backends now answer the same
/// 400 naming the field, and nothing is enqueued.
#[tokio::test]
async fn regression_a_nul_character_is_a_400_naming_the_field_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/test.db", dir.path().display());
    let pg = common::pg::TestDb::create(
        "regression_a_nul_character_is_a_400_naming_the_field_on_both_backends",
    )
    .await;
    let mut urls = vec![sqlite];
    urls.extend(pg.as_ref().map(|db| db.url.clone()));
    for url in &urls {
        let s = state_at(dir.path(), url, common::ROUTING).await;
        let mut bad_label = alert("two");
        bad_label["labels"]["team"] = json!("pay\u{0}ments");
        // (method, uri, key, body, the field the 400 names; `None` for the hook's plain-word answer)
        type Case<'a> = (&'a str, String, Option<&'a str>, String, Option<&'a str>);
        let cases: Vec<Case> = vec![
            ("POST", "/v1/events".into(), Some(KEY), alert("a\u{0}b").to_string(), Some("title")),
            ("POST", "/v1/events".into(), Some(KEY), json!([alert("one"), bad_label]).to_string(), Some("[1].labels.team")),
            ("POST", "/v1/messages".into(), Some(KEY), json!({"channel": "ops", "text": "x\u{0}"}).to_string(), Some("text")),
            ("POST", format!("/hooks/cron/{HOOK_SECRET}"), None, json!({"text": "x\u{0}"}).to_string(), None),
            ("POST", "/v1/silences".into(), Some(KEY),
             json!({"matchers": [{"name": "service", "value": "checkout"}], "duration": "1h", "comment": "db\u{0}"}).to_string(),
             Some("comment")),
            ("POST", "/v1/sources/alertmanager".into(), Some(KEY),
             json!({"version": "4", "status": "firing", "receiver": "sluice", "groupKey": "{}:{}",
                    "alerts": [{"status": "firing", "labels": {"alertname": "Disk\u{0}Full"}, "annotations": {},
                                "startsAt": "2026-01-01T00:00:00Z", "fingerprint": "f1"}]}).to_string(),
             Some("labels.alertname")),
            ("GET", "/v1/events/evt_%00x".into(), Some(KEY), String::new(), Some("path")),
            ("GET", "/v1/silences?service=%00".into(), Some(KEY), String::new(), Some("query")),
        ];
        for (method, uri, key, body, field) in cases {
            let a = call(&s, method, &uri, key, body).await;
            assert_eq!(
                a.status,
                StatusCode::BAD_REQUEST,
                "{url} {method} {uri}: {}",
                a.body
            );
            match field {
                Some(field) => {
                    assert_eq!(a.json()["field"], json!(field), "{url} {uri}: {}", a.body);
                    assert!(a.body.contains("NUL character"), "{url} {uri}: {}", a.body);
                }
                // The Slack-compatible hook answers as Slack does: a plain word.
                None => assert_eq!(a.body, "invalid_payload", "{url} {uri}"),
            }
        }
        assert_eq!(
            pending(&s).await,
            0,
            "{url}: a refused request enqueues nothing"
        );
        // The same backend still takes the same requests without the NUL.
        let a = call(&s, "POST", "/v1/events", Some(KEY), alert("ab").to_string()).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{url}: {}", a.body);
    }
    if let Some(db) = pg {
        db.drop_db().await;
    }
}

/// The `chat.postMessage` arguments waiting in the outbox, oldest first.
async fn queued_args(state: &std::sync::Arc<sluice::state::AppState>) -> Vec<Value> {
    let lanes = state
        .store
        .claim_lanes("test-reader", sluice::state::now_ms(), 60_000, 100)
        .await
        .unwrap();
    let mut args = Vec::new();
    for lane in lanes {
        for item in state.store.lane_items(&lane, 100).await.unwrap() {
            args.push(item.args);
        }
    }
    args
}

/// Regression: the Slack-compatible hook was not Slack's. It added `"text": "New message"` to attachments-only posts
/// (what Alertmanager's default Slack template sends: Slack shows no such line), answered `ok` where Slack refuses and
/// then dead-lettered, and cut text at 4,000 characters where Slack keeps 40,000.
#[tokio::test]
async fn regression_the_slack_compatible_hook_answers_and_posts_as_slack_would() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let hook = format!("/hooks/cron/{HOOK_SECRET}");

    let attachment = json!({"fallback": "[FIRING:1] DiskFull", "color": "danger", "title": "DiskFull", "text": "sda1 97%"});
    let a = call(
        &s,
        "POST",
        &hook,
        None,
        json!({"attachments": [attachment]}).to_string(),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok"));

    let long = "x".repeat(12_000);
    let a = call(&s, "POST", &hook, None, json!({"text": long}).to_string()).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok"));

    let too_many = vec![attachment.clone(); 101];
    let sixty_blocks: Vec<Value> = (0..60)
        .map(
            |i| json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("line {i}")}}),
        )
        .collect();
    let refused = [
        (json!({"attachments": too_many}), "too_many_attachments"),
        (json!({"attachments": "not a list"}), "invalid_attachments"),
        (
            json!({"text": "x", "blocks": sixty_blocks}),
            "invalid_blocks",
        ),
        (json!({"blocks": [{"type": "section"}]}), "invalid_blocks"),
    ];
    for (body, word) in refused {
        let a = call(&s, "POST", &hook, None, body.to_string()).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (StatusCode::BAD_REQUEST, word),
            "{body}"
        );
    }

    let queued = queued_args(&s).await;
    assert_eq!(
        queued.len(),
        2,
        "only the two good posts are queued: {queued:?}"
    );
    assert_eq!(
        queued[0].get("text"),
        None,
        "no invented text: {}",
        queued[0]
    );
    assert_eq!(queued[0]["attachments"][0]["title"], "DiskFull");
    assert_eq!(
        queued[1]["text"].as_str().map(|t| t.chars().count()),
        Some(12_000),
        "text kept whole"
    );
}

/// Regression: `POST /v1/messages` trimmed a 60-block message to 50 without telling the caller. It is still fitted
/// (the API's promise is that a message is deliverable), and the 202 says what was changed.
#[tokio::test]
async fn regression_a_trimmed_message_says_what_was_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), common::ROUTING).await;
    let blocks: Vec<Value> = (0..60)
        .map(
            |i| json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("line {i}")}}),
        )
        .collect();
    let a = call(
        &s,
        "POST",
        "/v1/messages",
        Some(KEY),
        json!({"channel": "ops", "text": "report", "blocks": blocks}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let adjusted = a.json()["adjusted"].as_array().cloned().unwrap_or_default();
    assert!(
        adjusted
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.starts_with("blocks:")
                && n.contains("11 blocks over the limit of 50 omitted"))),
        "the answer names the trimmed blocks: {}",
        a.body
    );
    let queued = queued_args(&s).await;
    assert_eq!(queued[0]["blocks"].as_array().map(Vec::len), Some(50));

    // A message that needed nothing says nothing more than its id.
    let a = call(
        &s,
        "POST",
        "/v1/messages",
        Some(KEY),
        json!({"channel": "ops", "text": "fine"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.json().as_object().map(|o| o.len()), Some(1), "{}", a.body);
}

/// Regression: a repeated resolve posted a new card (GitHub redeliveries, Alertmanager HA pairs, every green CI run
/// twice): two `resolved` events with the same `dedup_key` and no open alert gave two messages. On both backends.
#[tokio::test]
async fn regression_a_repeated_resolve_posts_no_second_card() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/test.db", dir.path().display());
    let pg = common::pg::TestDb::create("regression_a_repeated_resolve_posts_no_second_card").await;
    let mut urls = vec![sqlite];
    urls.extend(pg.as_ref().map(|db| db.url.clone()));
    for url in &urls {
        let s = state_at(dir.path(), url, common::ROUTING).await;
        let with = |key: &str, status: &str| {
            let mut e = alert("CI on main");
            e["dedup_key"] = json!(key);
            e["status"] = json!(status);
            e.to_string()
        };
        // Never seen firing: the first resolve posts its card, the repeat is resolved into it.
        let first = call(
            &s,
            "POST",
            "/v1/events",
            Some(KEY),
            with("ci:main", "resolved"),
        )
        .await;
        let again = call(
            &s,
            "POST",
            "/v1/events",
            Some(KEY),
            with("ci:main", "resolved"),
        )
        .await;
        assert_eq!(
            (first.status, again.status),
            (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
        );
        assert_eq!(queued_args(&s).await.len(), 1, "{url}: one card, not two");
        let first_id = first.json()["id"].clone();
        let uri = format!(
            "/v1/events/{}",
            again.json()["id"].as_str().unwrap_or_default()
        );
        let view = call(&s, "GET", &uri, Some(KEY), Body::empty()).await.json();
        assert_eq!(view["state"], "resolved", "{url}: {view}");
        assert_eq!(view["fate"]["into"], first_id, "{url}: {view}");

        // Fired (its card), resolved (a reply in its thread and a refresh of the card), then resolved again: nothing.
        let before = pending(&s).await;
        for status in ["firing", "resolved", "resolved"] {
            let a = call(&s, "POST", "/v1/events", Some(KEY), with("db:down", status)).await;
            assert_eq!(a.status, StatusCode::ACCEPTED, "{url}: {}", a.body);
        }
        assert_eq!(
            pending(&s).await - before,
            3,
            "{url}: nothing for the repeat"
        );

        // And a firing after the repeat is a new occurrence, counted as its first.
        let a = call(
            &s,
            "POST",
            "/v1/events",
            Some(KEY),
            with("ci:main", "firing"),
        )
        .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{url}: {}", a.body);
    }
    if let Some(db) = pg {
        db.drop_db().await;
    }
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
