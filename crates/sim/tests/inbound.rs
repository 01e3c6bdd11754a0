//! The simulator playing Slack's side: user actions delivered as signed HTTP to a tiny app on a
//! loopback port that checks the signature with `sluice_slack_wire::signature::verify`, the way Sluice
//! does, and records what it got.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::*;
use serde_json::{json, Value};
use sluice_sim::{
    DeliverVia, SimConfig, SimError, Simulator, Tamper, DEFAULT_APP_TOKEN, DEFAULT_SIGNING_SECRET,
    DEFAULT_TOKEN,
};
use sluice_slack_wire::signature::{verify, SignatureError};
use sluice_slack_wire::Secret;

/// One request the app received.
#[derive(Debug, Clone)]
struct Got {
    endpoint: String,
    headers: BTreeMap<String, String>,
    body: String,
    verified: Result<(), SignatureError>,
}

impl Got {
    fn form(&self) -> BTreeMap<String, String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.body)
            .unwrap()
            .into_iter()
            .collect()
    }

    /// The JSON of an interaction (`payload` field) or an event (the body).
    fn payload(&self) -> Value {
        match self.form().get("payload") {
            Some(p) => serde_json::from_str(p).unwrap(),
            None => serde_json::from_str(&self.body).unwrap(),
        }
    }
}

#[derive(Clone, Default)]
struct App {
    got: Arc<Mutex<Vec<Got>>>,
    /// endpoint → body to answer (200).
    replies: Arc<Mutex<BTreeMap<String, String>>>,
    delay: Arc<Mutex<Option<Duration>>>,
}

impl App {
    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn last(&self) -> Got {
        self.got().last().cloned().expect("the app got a request")
    }

    fn reply(&self, endpoint: &str, body: &str) {
        self.replies
            .lock()
            .unwrap()
            .insert(endpoint.into(), body.into());
    }
}

async fn slack_endpoint(
    State(app): State<App>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = verify(
        &Secret::new(DEFAULT_SIGNING_SECRET),
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now,
    );
    let got = Got {
        endpoint: endpoint.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8(body.to_vec()).unwrap(),
        verified: verified.clone(),
    };
    app.got.lock().unwrap().push(got.clone());
    let delay = *app.delay.lock().unwrap();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if verified.is_err() {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    if endpoint == "events" {
        let p = got.payload();
        if p["type"] == "url_verification" {
            return (StatusCode::OK, p["challenge"].as_str().unwrap().into());
        }
    }
    let reply = app
        .replies
        .lock()
        .unwrap()
        .get(&endpoint)
        .cloned()
        .unwrap_or_default();
    (StatusCode::OK, reply)
}

/// The app on a loopback port and a simulator (also served) delivering to it.
async fn setup(cfg: SimConfig) -> (Simulator, sluice_sim::RunningSim, App) {
    let app = App::default();
    let router = Router::new()
        .route("/slack/{endpoint}", post(slack_endpoint))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into()],
        enforce_rate_limits: false,
        app_base_url: Some(format!("http://{addr}")),
        ..cfg
    });
    let running = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sim, running, app)
}

fn alert_blocks() -> Value {
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "*DiskFull* on db-1"}},
        {"type": "actions", "block_id": "alert-a1", "elements": [
            {"type": "button", "action_id": "ack", "style": "primary", "value": "a1",
             "text": {"type": "plain_text", "text": "Acknowledge"}},
            {"type": "button", "action_id": "silence", "value": "a1:1h",
             "text": {"type": "plain_text", "text": "Silence"}}
        ]},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "runbook", "value": "rb",
             "text": {"type": "plain_text", "text": "Runbook"}}
        ]}
    ])
}

async fn post_alert(sim: &Simulator) -> String {
    let r = api(
        &sim.router(),
        "chat.postMessage",
        json!({"channel": "alerts", "text": "DiskFull on db-1", "blocks": alert_blocks()}),
    )
    .await;
    r.json()["ts"].as_str().unwrap().to_string()
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

async fn respond(sim: &Simulator, url: &str, body: Value) -> Resp {
    let req = axum::http::Request::post(path_of(url))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    send(&sim.router(), req).await
}

// ---------------------------------------------------------------- interactions

#[tokio::test]
async fn click_button_sends_a_signed_block_actions_payload_built_from_the_message() {
    let (sim, running, app) = setup(SimConfig::default()).await;
    let ts = post_alert(&sim).await;
    let channel = sim.channels()[0].id.clone();

    let d = sim
        .click_button("alerts", &ts, "silence", "U0002")
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    assert_eq!(d.envelope_id, None);

    let got = app.last();
    assert_eq!(got.endpoint, "interactions");
    assert_eq!(got.verified, Ok(()));
    assert_eq!(
        got.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        got.form().keys().collect::<Vec<_>>(),
        ["payload"],
        "one form field"
    );
    let p = got.payload();
    assert_eq!(p["type"], "block_actions");
    assert_eq!(
        p["user"],
        json!({"id": "U0002", "username": "bob", "name": "bob", "team_id": "T0SIM"})
    );
    assert_eq!(p["team"], json!({"id": "T0SIM", "domain": "sluice-sim"}));
    assert_eq!(p["api_app_id"], "A0SIM");
    assert_eq!(p["channel"]["id"], channel.as_str());
    assert_eq!(p["container"]["type"], "message");
    assert_eq!(p["container"]["message_ts"], ts.as_str());
    assert_eq!(p["container"]["channel_id"], channel.as_str());
    assert_eq!(p["message"]["ts"], ts.as_str());
    assert_eq!(p["message"]["text"], "DiskFull on db-1");
    let a = &p["actions"][0];
    assert_eq!(a["action_id"], "silence");
    assert_eq!(a["block_id"], "alert-a1");
    assert_eq!(a["value"], "a1:1h");
    assert_eq!(a["type"], "button");
    assert!(a["action_ts"].as_str().unwrap().contains('.'));
    assert!(p["response_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/sim/response/", running.url())));
    let trigger = p["trigger_id"].as_str().unwrap();
    assert_eq!(trigger.split('.').count(), 3, "{trigger}");

    // A block without a block_id gets one, the same in the action and in the message.
    sim.click_button(&channel, &ts, "runbook", "U0001")
        .await
        .unwrap();
    let p = app.last().payload();
    let block_id = p["actions"][0]["block_id"].as_str().unwrap().to_string();
    assert!(!block_id.is_empty());
    assert_eq!(p["message"]["blocks"][2]["block_id"], block_id.as_str());
    assert_ne!(
        p["trigger_id"], trigger,
        "every interaction has a fresh trigger"
    );

    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].kind, "interactions");
    assert_eq!(deliveries[0].via, "http");
    assert_eq!(deliveries[0].status, 200);
}

#[tokio::test]
async fn click_button_refuses_what_a_user_could_not_click() {
    let (sim, _running, _app) = setup(SimConfig::default()).await;
    let ts = post_alert(&sim).await;
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, fn(&SimError) -> bool);
    let cases: &[Case] = &[
        ("nope", &ts, "ack", "U0001", |e| {
            matches!(e, SimError::UnknownChannel(_))
        }),
        ("alerts", "1.000001", "ack", "U0001", |e| {
            matches!(e, SimError::UnknownMessage { .. })
        }),
        ("alerts", &ts, "reboot", "U0001", |e| {
            matches!(e, SimError::UnknownAction { .. })
        }),
        ("alerts", &ts, "ack", "U9999", |e| {
            matches!(e, SimError::UnknownUser(_))
        }),
    ];
    for (channel, ts, action, user, want) in cases {
        let e = sim
            .click_button(channel, ts, action, user)
            .await
            .unwrap_err();
        assert!(want(&e), "{channel} {ts} {action} {user}: {e}");
    }
    let no_app = Simulator::new(SimConfig::default());
    assert_eq!(no_app.url_verification().await, Err(SimError::NoAppUrl));
    let socket_only = Simulator::new(SimConfig {
        deliver_via: DeliverVia::Socket,
        ..SimConfig::default()
    });
    assert_eq!(
        socket_only.send_event(json!({"type": "app_mention"})).await,
        Err(SimError::NoSocketConnection)
    );
}

#[tokio::test]
async fn slash_command_sends_slacks_form_fields_and_shows_the_answer() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    app.reply("commands", "Silenced db-1 for 1h");
    let d = sim
        .slash_command("/sluice", "silence db-1 1h", "alerts", "U0003")
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    let got = app.last();
    assert_eq!(got.endpoint, "commands");
    assert_eq!(got.verified, Ok(()));
    let form = got.form();
    for field in [
        "command",
        "text",
        "user_id",
        "user_name",
        "channel_id",
        "channel_name",
        "team_id",
        "team_domain",
        "enterprise_id",
        "api_app_id",
        "response_url",
        "trigger_id",
    ] {
        assert!(form.contains_key(field), "missing {field}: {form:?}");
    }
    assert_eq!(form["command"], "/sluice");
    assert_eq!(form["text"], "silence db-1 1h");
    assert_eq!(form["user_id"], "U0003");
    assert_eq!(form["user_name"], "carol");
    assert_eq!(form["channel_name"], "alerts");
    assert_eq!(form["enterprise_id"], "");
    // A plain-text answer is shown to the user only.
    let eph = sim.ephemerals(Some("U0003"));
    assert_eq!(eph.len(), 1);
    assert_eq!(eph[0].text, "Silenced db-1 for 1h");
    assert_eq!(eph[0].via, "command_response");
    assert!(sim.ephemerals(Some("U0001")).is_empty());

    app.reply(
        "commands",
        &json!({"response_type": "in_channel", "text": "db-1 silenced by carol"}).to_string(),
    );
    sim.slash_command("sluice", "silence db-1", "alerts", "U0003")
        .await
        .unwrap();
    assert_eq!(app.last().form()["command"], "/sluice");
    assert_eq!(sim.messages("alerts")[0].text, "db-1 silenced by carol");
}

#[tokio::test]
async fn events_are_wrapped_in_event_callback_and_resent_with_retry_headers() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    let d = sim
        .send_event(json!({"type": "app_mention", "user": "U0001", "text": "<@U0BOT> status", "channel": "C000001"}))
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    let first = app.last();
    assert_eq!(first.endpoint, "events");
    assert_eq!(first.verified, Ok(()));
    assert_eq!(first.headers["content-type"], "application/json");
    assert!(!first.headers.contains_key("x-slack-retry-num"));
    let p = first.payload();
    assert_eq!(p["type"], "event_callback");
    assert_eq!(p["team_id"], "T0SIM");
    assert_eq!(p["api_app_id"], "A0SIM");
    assert!(p["event_time"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(p["event"]["type"], "app_mention");
    assert!(p["event"]["event_ts"].is_string());
    let event_id = p["event_id"].as_str().unwrap().to_string();
    assert!(event_id.starts_with("Ev"), "{event_id}");

    sim.send_event(json!({"type": "app_mention"}))
        .await
        .unwrap();
    assert_ne!(app.last().payload()["event_id"], event_id.as_str());

    sim.resend_event(&event_id, 1, "http_timeout")
        .await
        .unwrap();
    let again = app.last();
    assert_eq!(again.verified, Ok(()));
    assert_eq!(again.body, first.body, "a retry is the same body");
    assert_eq!(again.headers["x-slack-retry-num"], "1");
    assert_eq!(again.headers["x-slack-retry-reason"], "http_timeout");
    assert_eq!(
        sim.resend_event("EvNOPE", 1, "x").await,
        Err(SimError::UnknownEvent("EvNOPE".into()))
    );
    let last = sim.deliveries().pop().unwrap();
    assert_eq!(last.event_id.as_deref(), Some(event_id.as_str()));
    assert_eq!(last.retry_attempt, 1);
    assert_eq!(last.retry_reason, "http_timeout");
}

#[tokio::test]
async fn react_adds_the_reaction_and_sends_reaction_added() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    let ts = post_alert(&sim).await;
    sim.react("alerts", &ts, ":eyes:", "U0001").await.unwrap();
    assert_eq!(
        sim.messages("alerts")[0].reactions,
        vec![("eyes".to_string(), vec!["U0001".to_string()])]
    );
    let e = app.last().payload()["event"].clone();
    assert_eq!(e["type"], "reaction_added");
    assert_eq!(e["user"], "U0001");
    assert_eq!(e["reaction"], "eyes");
    assert_eq!(e["item_user"], "U0BOT");
    assert_eq!(e["item"]["ts"], ts.as_str());
    assert_eq!(
        sim.react("alerts", &ts, "eyes", "U0001").await,
        Err(SimError::Refused("already_reacted".into()))
    );
}

#[tokio::test]
async fn submit_view_sends_view_submission_with_the_state_values() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    let ts = post_alert(&sim).await;
    sim.click_button("alerts", &ts, "ack", "U0001")
        .await
        .unwrap();
    let trigger = app.last().payload()["trigger_id"]
        .as_str()
        .unwrap()
        .to_string();
    let view = json!({"type": "modal", "callback_id": "silence", "private_metadata": "a1",
        "title": {"type": "plain_text", "text": "Silence"},
        "blocks": [{"type": "input", "block_id": "dur", "label": {"type": "plain_text", "text": "For"},
                    "element": {"type": "plain_text_input", "action_id": "v"}}]});
    let opened = api(
        &sim.router(),
        "views.open",
        json!({"trigger_id": trigger, "view": view}),
    )
    .await
    .json();
    assert_eq!(opened["ok"], true, "{opened}");
    let view_id = opened["view"]["id"].as_str().unwrap();

    app.reply(
        "interactions",
        &json!({"response_action": "errors", "errors": {"dur": "say how long"}}).to_string(),
    );
    let values = json!({"dur": {"v": {"type": "plain_text_input", "value": "1h"}}});
    let d = sim
        .submit_view(view_id, "U0001", values.clone())
        .await
        .unwrap();
    assert_eq!(d.json().unwrap()["errors"]["dur"], "say how long");
    let p = app.last().payload();
    assert_eq!(p["type"], "view_submission");
    assert_eq!(p["user"]["id"], "U0001");
    assert_eq!(p["view"]["id"], view_id);
    assert_eq!(p["view"]["callback_id"], "silence");
    assert_eq!(p["view"]["private_metadata"], "a1");
    assert_eq!(p["view"]["state"]["values"], values);
    assert!(p["trigger_id"].is_string());
    assert_eq!(
        sim.submit_view("V999999", "U0001", json!({})).await,
        Err(SimError::UnknownView("V999999".into()))
    );
}

#[tokio::test]
async fn options_request_and_url_verification() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    app.reply(
        "options",
        &json!({"options": [{"text": {"type": "plain_text", "text": "db-1"}, "value": "db-1"}]})
            .to_string(),
    );
    let d = sim
        .options_request("host", "pick", "db", "U0002")
        .await
        .unwrap();
    assert_eq!(d.json().unwrap()["options"][0]["value"], "db-1");
    let got = app.last();
    assert_eq!(got.endpoint, "options");
    assert_eq!(got.verified, Ok(()));
    let p = got.payload();
    assert_eq!(p["type"], "block_suggestion");
    assert_eq!(
        (&p["action_id"], &p["block_id"], &p["value"]),
        (&json!("host"), &json!("pick"), &json!("db"))
    );

    let d = sim.url_verification().await.unwrap();
    let sent = sim.deliveries().pop().unwrap();
    assert_eq!(sent.payload["type"], "url_verification");
    assert_eq!(d.body, sent.payload["challenge"].as_str().unwrap());
}

// ---------------------------------------------------------------- forgeries and timeouts

#[tokio::test]
async fn forged_requests_are_refused_by_verify() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    type Case = (Tamper, fn(&SignatureError) -> bool);
    let cases: &[Case] = &[
        (Tamper::BadSignature, |e| *e == SignatureError::Mismatch),
        (Tamper::TamperedBody, |e| *e == SignatureError::Mismatch),
        (Tamper::StaleTimestamp(600), |e| {
            matches!(e, SignatureError::Stale { .. })
        }),
        (Tamper::MissingHeaders, |e| {
            *e == SignatureError::MissingTimestamp
        }),
    ];
    for (tamper, want) in cases {
        let d = sim
            .forged(*tamper)
            .send_event(json!({"type": "app_mention"}))
            .await
            .unwrap();
        assert_eq!(d.status, 401, "{tamper:?}");
        let err = app.last().verified.unwrap_err();
        assert!(want(&err), "{tamper:?}: {err:?}");
        assert_eq!(
            sim.deliveries().pop().unwrap().tamper,
            Some(format!("{tamper:?}"))
        );
    }
    // The original handle was not changed by forging.
    sim.send_event(json!({"type": "app_mention"}))
        .await
        .unwrap();
    assert_eq!(app.last().verified, Ok(()));
}

#[tokio::test]
async fn a_slow_app_is_a_failed_delivery_with_status_0() {
    let (sim, _running, app) = setup(SimConfig {
        http_timeout: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    *app.delay.lock().unwrap() = Some(Duration::from_secs(2));
    let d = sim
        .send_event(json!({"type": "app_mention"}))
        .await
        .unwrap();
    assert_eq!(d.status, 0);
    assert!(!d.acked());
    assert!(d.elapsed < Duration::from_secs(2));
    assert_eq!(sim.deliveries()[0].status, 0);
}

// ---------------------------------------------------------------- response_url, trigger_id

#[tokio::test]
async fn response_url_effects_and_slacks_five_use_limit() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    let ts = post_alert(&sim).await;
    sim.click_button("alerts", &ts, "ack", "U0002")
        .await
        .unwrap();
    let url = app.last().payload()["response_url"]
        .as_str()
        .unwrap()
        .to_string();

    // 1: ephemeral by default, to the user who clicked.
    let r = respond(&sim, &url, json!({"text": "Only you can see this"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        sim.ephemerals(Some("U0002"))[0].text,
        "Only you can see this"
    );
    assert_eq!(sim.ephemerals(Some("U0002"))[0].via, "response_url");
    // 2: replace_original updates the message the button was on.
    let acked = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "Acknowledged by <@U0002>"}}]);
    respond(
        &sim,
        &url,
        json!({"replace_original": true, "text": "acked", "blocks": acked}),
    )
    .await;
    let msg = sim.messages("alerts")[0].clone();
    assert_eq!((msg.ts.as_str(), msg.text.as_str()), (ts.as_str(), "acked"));
    assert_eq!(msg.blocks, acked);
    assert_eq!(msg.edits, 1);
    // 3: in_channel posts into the thread asked for.
    respond(
        &sim,
        &url,
        json!({"response_type": "in_channel", "text": "on it", "thread_ts": ts}),
    )
    .await;
    assert_eq!(
        sim.messages("alerts")[1].thread_ts.as_deref(),
        Some(ts.as_str())
    );
    // A refused payload does not count as a use.
    let r = respond(&sim, &url, json!({"blocks": "nope"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // 4, 5.
    respond(&sim, &url, json!({"text": "four"})).await;
    assert_eq!(
        respond(&sim, &url, json!({"delete_original": true}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(sim.messages("alerts").len(), 1, "the original is gone");
    // 6: refused.
    let r = respond(&sim, &url, json!({"text": "six"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error().as_deref(), Some("used_url"));

    let uses: Vec<_> = sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "response_url")
        .collect();
    assert_eq!(uses.len(), 7, "every use is recorded, refused ones too");
    assert_eq!(uses.iter().filter(|c| c.ok).count(), 5);
}

#[tokio::test]
async fn response_url_expires_after_thirty_minutes() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    sim.slash_command("/sluice", "status", "alerts", "U0001")
        .await
        .unwrap();
    let url = app.last().form()["response_url"].clone();
    sim.advance_clock(Duration::from_secs(29 * 60));
    assert_eq!(
        respond(&sim, &url, json!({"text": "still fine"}))
            .await
            .status,
        StatusCode::OK
    );
    sim.advance_clock(Duration::from_secs(2 * 60));
    let r = respond(&sim, &url, json!({"text": "too late"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error().as_deref(), Some("expired_url"));
    let r = respond(&sim, "http://x/sim/response/unknown", json!({"text": "?"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn trigger_id_is_valid_for_three_seconds_and_once() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    let modal = json!({"type": "modal", "title": {"type": "plain_text", "text": "Ack"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]});
    let open = |trigger: String| {
        let sim = sim.clone();
        let modal = modal.clone();
        async move {
            api(
                &sim.router(),
                "views.open",
                json!({"trigger_id": trigger, "view": modal}),
            )
            .await
            .json()
        }
    };
    let trigger = |app: &App| {
        let g = app.last();
        match g.form().get("trigger_id") {
            Some(t) => t.clone(),
            None => g.payload()["trigger_id"].as_str().unwrap().to_string(),
        }
    };
    sim.slash_command("/sluice", "", "alerts", "U0001")
        .await
        .unwrap();
    let t = trigger(&app);
    sim.advance_clock(Duration::from_millis(2900));
    assert_eq!(open(t.clone()).await["ok"], true);
    assert_eq!(open(t).await["error"], "exchanged_trigger_id");

    sim.slash_command("/sluice", "", "alerts", "U0001")
        .await
        .unwrap();
    let t = trigger(&app);
    sim.advance_clock(Duration::from_millis(3100));
    assert_eq!(open(t).await["error"], "expired_trigger_id");
    assert_eq!(open("1.2.3".into()).await["error"], "invalid_trigger_id");
}

// ---------------------------------------------------------------- tokens and the page's API

#[tokio::test]
async fn apps_connections_open_wants_an_app_level_token() {
    let sim = Simulator::new(SimConfig::default());
    let app = sim.router();
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "apps.connections.open",
            DEFAULT_TOKEN,
            Some("not_allowed_token_type"),
        ),
        ("apps.connections.open", "xapp-wrong", Some("invalid_auth")),
        ("apps.connections.open", DEFAULT_APP_TOKEN, None),
        (
            "chat.postMessage",
            DEFAULT_APP_TOKEN,
            Some("not_allowed_token_type"),
        ),
    ];
    for (method, token, want) in cases {
        let r = api_with(
            &app,
            method,
            Some(token),
            json!({"channel": "a", "text": "x"}),
        )
        .await;
        assert_eq!(r.error().as_deref(), *want, "{method} with {token}");
    }
    let r = api_with(
        &app,
        "apps.connections.open",
        Some(DEFAULT_APP_TOKEN),
        json!({}),
    )
    .await;
    let _ = r; // rate limited as Tier 1 like Slack; the URL shape is checked in tests/socket.rs
}

#[tokio::test]
async fn the_page_api_clicks_buttons_for_a_person() {
    let (sim, running, app) = setup(SimConfig::default()).await;
    let ts = post_alert(&sim).await;
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{}/sim/user/click", running.url()))
        .json(&json!({"channel": "alerts", "ts": ts, "action_id": "ack"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(app.last().payload()["actions"][0]["action_id"], "ack");
    assert_eq!(app.last().payload()["user"]["id"], "U0001");

    let r = http
        .post(format!("{}/sim/user/click", running.url()))
        .json(&json!({"channel": "alerts", "ts": ts, "action_id": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("nope"));

    let page = http.get(running.url()).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains("\"/sim/user/\" + action") && page.contains("act(\"click\""),
        "the page's buttons click through"
    );

    let other = Simulator::new(SimConfig::default());
    let resp = send(
        &other.router(),
        axum::http::Request::post("/sim/app_url")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                json!({"url": "http://127.0.0.1:9"}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(other.state_json()["app_base_url"], "http://127.0.0.1:9");
}

/// Opens a modal for U0001 the way an app would: a click gives a trigger, views.open uses it.
async fn open_modal(sim: &Simulator, app: &App, view: Value) -> String {
    let ts = post_alert(sim).await;
    sim.click_button("alerts", &ts, "ack", "U0001")
        .await
        .unwrap();
    let trigger = app.last().payload()["trigger_id"]
        .as_str()
        .unwrap()
        .to_string();
    let opened = api(
        &sim.router(),
        "views.open",
        json!({"trigger_id": trigger, "view": view}),
    )
    .await
    .json();
    assert_eq!(opened["ok"], true, "{opened}");
    opened["view"]["id"].as_str().unwrap().to_string()
}

fn silence_modal() -> Value {
    json!({"type": "modal", "callback_id": "silence", "notify_on_close": true,
        "title": {"type": "plain_text", "text": "Silence"},
        "submit": {"type": "plain_text", "text": "Silence"},
        "blocks": [{"type": "input", "block_id": "dur", "label": {"type": "plain_text", "text": "For"},
                    "element": {"type": "plain_text_input", "action_id": "v"}}]})
}

#[tokio::test]
async fn a_modal_shows_for_the_user_who_opened_it_with_the_apps_errors_until_it_is_closed() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    let view_id = open_modal(&sim, &app, silence_modal()).await;
    let look = |user: &str| {
        let router = sim.router();
        let path = format!("/sim/render?channel=alerts&user={user}");
        async move { get(&router, &path).await.json() }
    };
    assert!(
        look("U0002").await["modal"].is_null(),
        "not on another user's screen"
    );
    let mine = look("U0001").await;
    assert_eq!(mine["modal"]["id"], view_id.as_str());
    assert!(mine["modal"]["html"]
        .as_str()
        .unwrap()
        .contains(r#"data-block="dur""#));

    app.reply(
        "interactions",
        &json!({"response_action": "errors", "errors": {"dur": "say how long"}}).to_string(),
    );
    sim.submit_view(
        &view_id,
        "U0001",
        json!({"dur": {"v": {"type": "plain_text_input", "value": null}}}),
    )
    .await
    .unwrap();
    let mine = look("U0001").await;
    assert_eq!(
        mine["modal"]["errors"]["dur"], "say how long",
        "the modal stays open with the error"
    );
    assert!(mine["modal"]["html"]
        .as_str()
        .unwrap()
        .contains("say how long"));

    // Cancel: gone from the screen, and the app hears of it because it asked (notify_on_close).
    sim.close_view(&view_id, "U0001", json!({}))
        .await
        .unwrap()
        .expect("a view_closed delivery");
    let p = app.last().payload();
    assert_eq!(p["type"], "view_closed");
    assert_eq!(p["view"]["id"], view_id.as_str());
    assert_eq!(p["user"]["id"], "U0001");
    assert_eq!(p["is_cleared"], false);
    assert!(look("U0001").await["modal"].is_null());
}

#[tokio::test]
async fn an_empty_answer_to_a_submission_closes_the_modal_without_view_closed() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    let view_id = open_modal(&sim, &app, silence_modal()).await;
    app.reply("interactions", "");
    sim.submit_view(&view_id, "U0001", json!({})).await.unwrap();
    let v = get(&sim.router(), "/sim/render?user=U0001").await.json();
    assert!(v["modal"].is_null(), "{v}");
    assert_eq!(app.last().payload()["type"], "view_submission");
}

#[tokio::test]
async fn a_typed_message_is_the_users_and_reaches_the_app_as_a_message_event() {
    let (sim, _running, app) = setup(SimConfig::default()).await;
    let parent = post_alert(&sim).await;
    let r = post_json(
        &sim.router(),
        "/sim/user/message",
        json!({"channel": "alerts", "user": "U0002", "text": "on it <b>", "thread_ts": parent}),
    )
    .await
    .json();
    assert_eq!(r["ok"], true, "{r}");
    let reply = sim.messages("alerts").last().cloned().unwrap();
    assert_eq!(reply.user, "U0002");
    assert_eq!(reply.thread_ts.as_deref(), Some(parent.as_str()));
    assert_eq!(
        reply.text, "on it &lt;b&gt;",
        "escaped as Slack's client sends it"
    );
    let got = app.last();
    assert_eq!(got.endpoint, "events");
    assert!(got.verified.is_ok());
    let e = &got.payload()["event"];
    assert_eq!(e["type"], "message");
    assert_eq!(e["user"], "U0002");
    assert_eq!(e["thread_ts"], parent.as_str());
    assert_eq!(e["channel_type"], "channel");
    assert_eq!(e["ts"], reply.ts.as_str());
}
