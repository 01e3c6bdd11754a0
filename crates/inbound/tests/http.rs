//! The HTTP endpoints called with `oneshot` (no socket), plus a recording sink on 127.0.0.1
//! that plays response_urls and the Web API.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{json, Value};
use sluice_inbound::models::{BlockSuggestion, EventCallback, SlashCommand, ViewSubmission};
use sluice_inbound::{
    routes, Ctx, Decision, HandlerError, InboundConfig, MemoryOnce, Middleware, OnceStore,
    OptionsResponse, Registry, Reply, RequestInfo, ViewResponse,
};
use sluice_inbound::{ActionPayload, Inbound};
use sluice_slack::Client;
use sluice_slack_wire::Secret;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const VECTOR_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const VECTOR_TS: &str = "1531420618";
const VECTOR_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const VECTOR_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

fn counting_command(count: Arc<AtomicUsize>) -> Registry {
    let mut r = Registry::new();
    r.command("/webhook-collect", move |ctx: Ctx<SlashCommand>| {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(Some(Reply::ephemeral(format!(
                "collected for {}",
                ctx.payload.user_id
            ))))
        }
    });
    r
}

fn vector_inbound(registry: Registry) -> Arc<Inbound> {
    let slack = Client::new(
        "http://127.0.0.1:9/api/",
        Secret::new("xoxb"),
        Duration::from_secs(1),
    )
    .unwrap();
    Arc::new(
        Inbound::new(
            InboundConfig::new(Secret::new(VECTOR_SECRET)),
            registry,
            Arc::new(MemoryOnce::new()),
            Arc::new(SendNow(slack.clone())),
            slack,
        )
        .with_clock(|| 1531420618 + 10),
    )
}

fn vector_request(ts: Option<&str>, sig: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post("/slack/commands").header("content-type", FORM);
    if let Some(ts) = ts {
        b = b.header("x-slack-request-timestamp", ts);
    }
    if let Some(sig) = sig {
        b = b.header("x-slack-signature", sig);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn slacks_published_test_vector_reaches_the_command_handler() {
    let count = Arc::new(AtomicUsize::new(0));
    let inbound = vector_inbound(counting_command(count.clone()));
    let resp = routes(inbound.clone())
        .oneshot(vector_request(
            Some(VECTOR_TS),
            Some(VECTOR_SIG),
            VECTOR_BODY,
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        body_json(resp).await,
        json!({"text": "collected for U2CERLKJA", "response_type": "ephemeral"})
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(inbound.stats().rejected, 0);
}

#[tokio::test]
async fn unverified_requests_get_401_and_never_run_the_handler() {
    let tampered = VECTOR_BODY.replace("text=", "text=drop+database");
    let forged = "v0=0000000000000000000000000000000000000000000000000000000000000000";
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a str, &'a str);
    let cases: &[Case] = &[
        (
            "forged",
            Some(VECTOR_TS),
            Some(forged),
            VECTOR_BODY,
            "invalid signature",
        ),
        (
            "body tampered",
            Some(VECTOR_TS),
            Some(VECTOR_SIG),
            &tampered,
            "invalid signature",
        ),
        (
            "stale",
            Some("1531420000"),
            Some(VECTOR_SIG),
            VECTOR_BODY,
            "stale timestamp",
        ),
        (
            "no timestamp",
            None,
            Some(VECTOR_SIG),
            VECTOR_BODY,
            "missing timestamp",
        ),
        (
            "no signature",
            Some(VECTOR_TS),
            None,
            VECTOR_BODY,
            "missing signature",
        ),
        ("nothing", None, None, VECTOR_BODY, "missing timestamp"),
    ];
    let count = Arc::new(AtomicUsize::new(0));
    let inbound = vector_inbound(counting_command(count.clone()));
    for (i, (name, ts, sig, body, reason)) in cases.iter().enumerate() {
        let resp = routes(inbound.clone())
            .oneshot(vector_request(*ts, *sig, body))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(body_json(resp).await, json!(reason), "{name}");
        assert_eq!(inbound.stats().rejected, i as u64 + 1, "{name}");
    }
    // Give any wrongly spawned handler time to show itself.
    tokio::task::yield_now().await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "a handler ran on an unverified request"
    );
    assert_eq!(inbound.stats().handled, 0);
}

#[tokio::test]
async fn oversized_body_is_refused_with_413_before_verification() {
    let count = Arc::new(AtomicUsize::new(0));
    let slack = Client::new(
        "http://127.0.0.1:9/api/",
        Secret::new("xoxb"),
        Duration::from_secs(1),
    )
    .unwrap();
    let mut cfg = InboundConfig::new(Secret::new(SECRET));
    cfg.max_body_bytes = 64;
    let inbound = Arc::new(Inbound::new(
        cfg,
        counting_command(count.clone()),
        Arc::new(MemoryOnce::new()),
        Arc::new(SendNow(slack.clone())),
        slack,
    ));
    let body = format!("command=%2Fwebhook-collect&text={}", "a".repeat(100));
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/commands", FORM, &body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Without a Content-Length header the streaming limit still applies.
    let mut req = signed("/slack/commands", FORM, &body);
    req.headers_mut().remove("content-length");
    let resp = routes(inbound.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert_eq!(inbound.stats().rejected, 2);
}

#[tokio::test]
async fn url_verification_and_ssl_check() {
    let sink = Sink::start().await;
    let inbound = inbound(Registry::new(), Arc::new(MemoryOnce::new()), &sink);
    let body = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/events", JSON, &body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        body_json(resp).await,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    // Slack's certificate probe is unsigned; it gets an empty 200 and runs nothing.
    let probe = Request::post("/slack/commands")
        .header("content-type", FORM)
        .body(Body::from("ssl_check=1&token=x"))
        .unwrap();
    let resp = routes(inbound.clone()).oneshot(probe).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body_json(resp).await, Value::Null);
    let signed_probe = signed("/slack/commands", FORM, "ssl_check=1&token=x");
    let resp = routes(inbound.clone()).oneshot(signed_probe).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(inbound.stats().unhandled, 0);
    assert_eq!(inbound.stats().rejected, 0);
}

/// Counts event runs.
fn event_registry(count: Arc<AtomicUsize>) -> Registry {
    let mut r = Registry::new();
    r.event("app_mention", move |ctx: Ctx<EventCallback>| {
        let count = count.clone();
        async move {
            assert_eq!(ctx.channel_id.as_deref(), Some("C0INCIDNT"));
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    r
}

async fn settle<F: Fn() -> bool>(done: F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn same_event_twice_and_after_a_restart_runs_once() {
    let sink = Sink::start().await;
    let once: Arc<dyn OnceStore> = Arc::new(MemoryOnce::new());
    let count = Arc::new(AtomicUsize::new(0));
    let first = inbound(event_registry(count.clone()), once.clone(), &sink);
    let body = fixture("event_app_mention").to_string();
    for _ in 0..2 {
        let resp = routes(first.clone())
            .oneshot(signed("/slack/events", JSON, &body))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    settle(|| count.load(Ordering::SeqCst) >= 1).await;
    // "Restart": a new Inbound over the same store gets Slack's retry.
    let second = inbound(event_registry(count.clone()), once.clone(), &sink);
    let retry = signed_with(
        "/slack/events",
        JSON,
        &body,
        SECRET,
        &now(),
        &[
            ("x-slack-retry-num", "1"),
            ("x-slack-retry-reason", "http_timeout"),
        ],
    );
    let resp = routes(second.clone()).oneshot(retry).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(first.stats().duplicates + second.stats().duplicates, 2);
}

struct BrokenStore;
#[async_trait::async_trait]
impl OnceStore for BrokenStore {
    async fn first_time(&self, _key: &str, _ttl: Duration) -> Result<bool, String> {
        Err("database is locked".into())
    }
}

#[tokio::test]
async fn store_down_answers_500_and_runs_nothing() {
    let sink = Sink::start().await;
    let count = Arc::new(AtomicUsize::new(0));
    let inbound = inbound(event_registry(count.clone()), Arc::new(BrokenStore), &sink);
    let body = fixture("event_app_mention").to_string();
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/events", JSON, &body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert_eq!(inbound.stats().store_errors, 1);
}

fn action_registry(count: Arc<AtomicUsize>) -> Registry {
    let mut r = Registry::new();
    r.action("approve", move |ctx: Ctx<ActionPayload>| {
        let count = count.clone();
        async move {
            assert_eq!(ctx.payload.action.value.as_deref(), Some("req-42"));
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    r
}

#[tokio::test]
async fn double_click_runs_the_action_once() {
    let sink = Sink::start().await;
    let count = Arc::new(AtomicUsize::new(0));
    let inbound = inbound(
        action_registry(count.clone()),
        Arc::new(MemoryOnce::new()),
        &sink,
    );
    let mut click = fixture("block_actions");
    click["response_url"] = json!(sink.url("click"));
    let form = interaction_form(&click);
    for _ in 0..2 {
        let resp = routes(inbound.clone())
            .oneshot(signed("/slack/interactions", FORM, &form))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // A second click a moment later carries a new action_ts but is the same decision.
    click["actions"][0]["action_ts"] = json!("1712345691.000001");
    let form = interaction_form(&click);
    routes(inbound.clone())
        .oneshot(signed("/slack/interactions", FORM, &form))
        .await
        .unwrap();
    settle(|| count.load(Ordering::SeqCst) >= 1).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(inbound.stats().duplicates, 2);
    // A different user clicking is a different action.
    click["user"]["id"] = json!("U0SOMEONE");
    let form = interaction_form(&click);
    routes(inbound.clone())
        .oneshot(signed("/slack/interactions", FORM, &form))
        .await
        .unwrap();
    settle(|| count.load(Ordering::SeqCst) >= 2).await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn panicking_and_failing_handlers_tell_the_user() {
    let sink = Sink::start().await;
    let mut r = Registry::new();
    r.action("approve", |_ctx: Ctx<ActionPayload>| async move {
        if true {
            panic!("index out of bounds: secret internals");
        }
        Ok(())
    });
    r.command("/ops", |_ctx: Ctx<SlashCommand>| async move {
        Err(HandlerError::new(
            "PagerDuty did not answer; try again in a minute",
        ))
    });
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);

    let mut click = fixture("block_actions");
    click["response_url"] = json!(sink.url("panic"));
    let resp = routes(inbound.clone())
        .oneshot(signed(
            "/slack/interactions",
            FORM,
            &interaction_form(&click),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let cmd = serde_urlencoded::to_string([
        ("command", "/ops"),
        ("text", "page db"),
        ("user_id", "U1"),
        ("channel_id", "C1"),
        ("team_id", "T1"),
        ("response_url", &sink.url("cmd")),
        ("trigger_id", "1.2.3"),
    ])
    .unwrap();
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/commands", FORM, &cmd))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let posts = sink.wait_for(2).await;
    let find = |path: &str| {
        posts
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
    };
    let panic_msg = find("/resp/panic").expect("panic reported to the user");
    assert_eq!(panic_msg["response_type"], "ephemeral");
    let text = panic_msg["text"].as_str().unwrap();
    assert!(text.starts_with("⚠️ That didn't work: "), "{text}");
    assert!(
        !text.contains("secret internals"),
        "panic details leaked: {text}"
    );
    assert_eq!(
        find("/resp/cmd").expect("error reported")["text"],
        "⚠️ That didn't work: PagerDuty did not answer; try again in a minute"
    );
    assert_eq!(inbound.stats().handler_failures, 2);
}

#[tokio::test]
async fn failure_without_response_url_goes_through_post_ephemeral() {
    let sink = Sink::start().await;
    let mut r = Registry::new();
    r.event("app_mention", |_ctx: Ctx<EventCallback>| async move {
        Err(HandlerError::new("no such service `db`"))
    });
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);
    let body = fixture("event_app_mention").to_string();
    routes(inbound.clone())
        .oneshot(signed("/slack/events", JSON, &body))
        .await
        .unwrap();
    let posts = sink.wait_for(1).await;
    assert_eq!(posts[0].0, "/api/chat.postEphemeral");
    assert_eq!(posts[0].1["channel"], "C0INCIDNT");
    assert_eq!(posts[0].1["user"], "U0123ABCD");
    assert_eq!(
        posts[0].1["text"],
        "⚠️ That didn't work: no such service `db`"
    );
}

#[tokio::test]
async fn response_url_to_a_host_not_allowed_is_refused_and_nothing_is_sent() {
    let sink = Sink::start().await;
    let mut r = Registry::new();
    r.action("approve", |ctx: Ctx<ActionPayload>| async move {
        ctx.reply(Reply::ephemeral("approved")).await?;
        Ok(())
    });
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);
    for (i, url) in [
        "http://169.254.169.254/latest/meta-data/",
        "http://example.com/hook",
    ]
    .iter()
    .enumerate()
    {
        let mut click = fixture("block_actions");
        click["response_url"] = json!(url);
        click["container"]["message_ts"] = json!(format!("1.{i}"));
        routes(inbound.clone())
            .oneshot(signed(
                "/slack/interactions",
                FORM,
                &interaction_form(&click),
            ))
            .await
            .unwrap();
    }
    settle(|| inbound.stats().handler_failures >= 2).await;
    // The refusal and the error report both went nowhere: 2 refusals per click.
    assert_eq!(inbound.stats().ssrf_refused, 4);
    assert!(sink.posts().is_empty(), "{:?}", sink.posts());
    let direct = inbound
        .response_urls()
        .post("http://169.254.169.254/", &json!({}))
        .await;
    assert!(direct.is_err());
}

#[tokio::test]
async fn ack_comes_at_once_even_when_the_handler_takes_5_seconds() {
    let sink = Sink::start().await;
    let started = Arc::new(AtomicUsize::new(0));
    let mut r = Registry::new();
    let s = started.clone();
    r.action("approve", move |_ctx: Ctx<ActionPayload>| {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        }
    });
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);
    let form = interaction_form(&fixture("block_actions"));
    let t0 = Instant::now();
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/interactions", FORM, &form))
        .await
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(took < Duration::from_millis(100), "ack took {took:?}");
    settle(|| started.load(Ordering::SeqCst) == 1).await;
    assert_eq!(started.load(Ordering::SeqCst), 1, "handler was not started");
}

#[tokio::test]
async fn slow_slash_command_acks_empty_and_replies_through_response_url() {
    let sink = Sink::start().await;
    let mut r = Registry::new();
    r.command("/ops", |_ctx: Ctx<SlashCommand>| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Some(Reply::in_channel("done late")))
    });
    let s2 = sink.clone();
    let inbound = {
        let mut cfg = InboundConfig::new(Secret::new(SECRET));
        cfg.response_url_hosts.push(s2.host_entry());
        cfg.sync_reply_budget = Duration::from_millis(50);
        let slack = Client::new(
            &format!("{}/api/", s2.base),
            Secret::new("xoxb"),
            Duration::from_secs(5),
        )
        .unwrap();
        let outbox = Arc::new(SendNow(slack.clone()));
        Arc::new(Inbound::new(
            cfg,
            r,
            Arc::new(MemoryOnce::new()),
            outbox,
            slack,
        ))
    };
    let cmd = serde_urlencoded::to_string([
        ("command", "/ops"),
        ("user_id", "U1"),
        ("channel_id", "C1"),
        ("team_id", "T1"),
        ("response_url", &sink.url("late")),
    ])
    .unwrap();
    let t0 = Instant::now();
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/commands", FORM, &cmd))
        .await
        .unwrap();
    assert!(t0.elapsed() < Duration::from_millis(250));
    assert_eq!(body_json(resp).await, Value::Null);
    let posts = sink.wait_for(1).await;
    assert_eq!(
        posts[0],
        (
            "/resp/late".to_string(),
            json!({"text": "done late", "response_type": "in_channel"})
        )
    );
}

#[tokio::test]
async fn unknown_command_and_action_are_answered_not_handled() {
    let sink = Sink::start().await;
    let inbound = inbound(Registry::new(), Arc::new(MemoryOnce::new()), &sink);
    let cmd = "command=%2Fnope&user_id=U1&channel_id=C1&team_id=T1";
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/commands", FORM, cmd))
        .await
        .unwrap();
    let body = body_json(resp).await;
    assert_eq!(body["response_type"], "ephemeral");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("no handler for `/nope`"),
        "{body}"
    );
    let mut click = fixture("block_actions");
    click["response_url"] = json!(sink.url("unknown"));
    routes(inbound.clone())
        .oneshot(signed(
            "/slack/interactions",
            FORM,
            &interaction_form(&click),
        ))
        .await
        .unwrap();
    let posts = sink.wait_for(1).await;
    assert!(
        posts[0].1["text"].as_str().unwrap().contains("`approve`"),
        "{:?}",
        posts
    );
    assert_eq!(inbound.stats().unhandled, 2);
}

#[tokio::test]
async fn view_submission_errors_come_back_in_the_http_response() {
    let sink = Sink::start().await;
    let mut r = Registry::new();
    r.view_submission("silence_form", |ctx: Ctx<ViewSubmission>| async move {
        let reason = ctx
            .payload
            .view
            .state
            .get("why", "reason")
            .and_then(|v| v.value.clone());
        if reason.is_none() {
            return Ok(ViewResponse::error("why", "Say why you silence this alert"));
        }
        Ok(ViewResponse::None)
    });
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);
    let form = interaction_form(&fixture("view_submission"));
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/interactions", FORM, &form))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        body_json(resp).await,
        json!({"response_action": "errors", "errors": {"why": "Say why you silence this alert"}})
    );
}

#[tokio::test]
async fn options_are_answered_synchronously() {
    let sink = Sink::start().await;
    let mut r = Registry::new();
    r.options("service_picker", |ctx: Ctx<BlockSuggestion>| async move {
        let typed = ctx.payload.value.clone();
        Ok(OptionsResponse::Options(
            ["payments", "paging", "db"]
                .iter()
                .filter(|s| s.starts_with(&typed))
                .map(|s| sluice_inbound::models::SelectOption::new(*s, *s))
                .collect(),
        ))
    });
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);
    let form = interaction_form(&fixture("block_suggestion"));
    let resp = routes(inbound.clone())
        .oneshot(signed("/slack/options", FORM, &form))
        .await
        .unwrap();
    assert_eq!(
        body_json(resp).await,
        json!({"options": [{"text": {"type": "plain_text", "text": "payments"}, "value": "payments"}]})
    );
}

struct OnlyOncall {
    seen_after: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Middleware for OnlyOncall {
    async fn before(&self, req: &RequestInfo) -> Decision {
        if req.user_id.as_deref() == Some("U0123ABCD") {
            Decision::Continue
        } else {
            Decision::Refuse("Only the on-call engineer may approve deploys.".into())
        }
    }
    async fn after(&self, _req: &RequestInfo, _outcome: &Result<(), String>) {
        self.seen_after.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn middleware_can_refuse_with_a_message() {
    let sink = Sink::start().await;
    let count = Arc::new(AtomicUsize::new(0));
    let seen_after = Arc::new(AtomicUsize::new(0));
    let mut r = action_registry(count.clone());
    r.middleware(OnlyOncall {
        seen_after: seen_after.clone(),
    });
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);
    let mut click = fixture("block_actions");
    click["response_url"] = json!(sink.url("mw"));
    click["user"]["id"] = json!("U0INTRUDER");
    routes(inbound.clone())
        .oneshot(signed(
            "/slack/interactions",
            FORM,
            &interaction_form(&click),
        ))
        .await
        .unwrap();
    let posts = sink.wait_for(1).await;
    assert_eq!(
        posts[0].1["text"],
        "Only the on-call engineer may approve deploys."
    );
    click["user"]["id"] = json!("U0123ABCD");
    routes(inbound.clone())
        .oneshot(signed(
            "/slack/interactions",
            FORM,
            &interaction_form(&click),
        ))
        .await
        .unwrap();
    settle(|| seen_after.load(Ordering::SeqCst) >= 2).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(inbound.stats().refused, 1);
}

/// A middleware that lets everything through and counts the outcomes it sees.
struct Counting {
    seen_after: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Middleware for Counting {
    async fn after(&self, _req: &RequestInfo, _outcome: &Result<(), String>) {
        self.seen_after.fetch_add(1, Ordering::SeqCst);
    }
}

/// A middleware that panics before the handler for user U0PANIC, and after it for everyone else.
struct Brittle;

#[async_trait::async_trait]
impl Middleware for Brittle {
    async fn before(&self, req: &RequestInfo) -> Decision {
        if req.user_id.as_deref() == Some("U0PANIC") {
            panic!("middleware bug");
        }
        Decision::Continue
    }
    async fn after(&self, _req: &RequestInfo, _outcome: &Result<(), String>) {
        panic!("middleware bug after");
    }
}

/// Issue 15, item 12: a panic inside middleware was not caught; the user heard nothing and the middleware that ran
/// before it never saw the outcome. It is told like a handler's panic, and the chain carries on.
#[tokio::test]
async fn a_panicking_middleware_tells_the_user_and_the_chain_survives() {
    let sink = Sink::start().await;
    let handled = Arc::new(AtomicUsize::new(0));
    let outer_after = Arc::new(AtomicUsize::new(0));
    let mut r = action_registry(handled.clone());
    r.middleware(Counting {
        seen_after: outer_after.clone(),
    });
    r.middleware(Brittle);
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);
    let click_by = |user: &str, path: &str| {
        let mut click = fixture("block_actions");
        click["response_url"] = json!(sink.url(path));
        click["user"]["id"] = json!(user);
        click
    };

    // Before the handler: the user is told, the handler does not run, the outer middleware sees the end.
    let resp = routes(inbound.clone())
        .oneshot(signed(
            "/slack/interactions",
            FORM,
            &interaction_form(&click_by("U0PANIC", "panic")),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "acknowledged all the same");
    let posts = sink.wait_for(1).await;
    let text = posts[0].1["text"].as_str().unwrap_or_default().to_string();
    assert!(text.starts_with("⚠️ That didn't work"), "{text}");
    settle(|| outer_after.load(Ordering::SeqCst) >= 1).await;
    assert_eq!(handled.load(Ordering::SeqCst), 0);

    // After the handler: the handler's work stands, the outer middleware still sees the outcome.
    let resp = routes(inbound.clone())
        .oneshot(signed(
            "/slack/interactions",
            FORM,
            &interaction_form(&click_by("U0123ABCD", "ok")),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    settle(|| outer_after.load(Ordering::SeqCst) >= 2).await;
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

/// Issue 15, defect 6: when the response_url could not take the reply (expired, used five times, unreachable), the
/// user was left with nothing. The reply now goes through the outbox: ephemeral in the channel, or public there when
/// it was meant for the whole channel.
#[tokio::test]
async fn a_reply_the_response_url_cannot_take_goes_through_the_outbox() {
    let sink = Sink::start().await;
    let mut r = Registry::new();
    r.action("approve", |ctx: Ctx<ActionPayload>| async move {
        ctx.reply(Reply::ephemeral("Approved."))
            .await
            .map_err(|e| HandlerError::new(e.to_string()))?;
        ctx.reply(Reply::in_channel("Deploy approved by <@U0123ABCD>."))
            .await
            .map_err(|e| HandlerError::new(e.to_string()))
    });
    let inbound = inbound(r, Arc::new(MemoryOnce::new()), &sink);
    let mut click = fixture("block_actions");
    // An expired response_url: Slack answers 404.
    click["response_url"] = json!(format!("{}/expired/T0/1/abc", sink.base));
    let resp = routes(inbound.clone())
        .oneshot(signed(
            "/slack/interactions",
            FORM,
            &interaction_form(&click),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let posts = sink.wait_for(2).await;
    let ephemeral = posts
        .iter()
        .find(|(p, _)| p == "/api/chat.postEphemeral")
        .expect("an ephemeral fallback");
    assert_eq!(ephemeral.1["text"], "Approved.");
    assert_eq!(ephemeral.1["user"], click["user"]["id"]);
    assert_eq!(ephemeral.1["channel"], click["channel"]["id"]);
    assert_eq!(
        ephemeral.1.get("response_type"),
        None,
        "a Web API call, not a response_url body"
    );
    let public = posts
        .iter()
        .find(|(p, _)| p == "/api/chat.postMessage")
        .expect("the public reply stays public");
    assert_eq!(public.1["text"], "Deploy approved by <@U0123ABCD>.");
    assert_eq!(public.1["channel"], click["channel"]["id"]);
}
