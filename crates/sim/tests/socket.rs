//! Socket Mode, with a tokio-tungstenite client standing in for the app: hello, envelopes, acks,
//! redelivery, refresh, abrupt drops and round-robin over connections.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sluice_sim::{RunningSim, SimConfig, Simulator, DEFAULT_APP_TOKEN};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for anything on loopback, short enough that a failing test fails soon.
const WAIT: Duration = Duration::from_secs(5);

async fn start(cfg: SimConfig) -> (Simulator, RunningSim) {
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into()],
        enforce_rate_limits: false,
        ..cfg
    });
    let running = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sim, running)
}

/// apps.connections.open, then connect; answers the socket and its hello.
async fn connect(running: &RunningSim) -> (Ws, Value) {
    let opened: Value = reqwest::Client::new()
        .post(format!("{}apps.connections.open", running.api_url()))
        .bearer_auth(DEFAULT_APP_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(opened["ok"], true, "{opened}");
    let url = opened["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("ws://{}/sim/socket?ticket=", running.addr)),
        "{url}"
    );
    let (mut ws, _) = connect_async(url).await.unwrap();
    let hello = next_json(&mut ws).await;
    (ws, hello)
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a good frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn ack(ws: &mut Ws, envelope: &Value, payload: Option<Value>) {
    let mut a = json!({"envelope_id": envelope["envelope_id"]});
    if let Some(p) = payload {
        a["payload"] = p;
    }
    ws.send(Message::Text(a.to_string().into())).await.unwrap();
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn post_alert(sim: &Simulator, running: &RunningSim) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{}chat.postMessage", running.api_url()))
        .bearer_auth(sluice_sim::DEFAULT_TOKEN)
        .json(&json!({"channel": "alerts", "text": "DiskFull", "blocks": [
            {"type": "actions", "block_id": "b", "elements": [
                {"type": "button", "action_id": "ack", "value": "a1", "text": {"type": "plain_text", "text": "Ack"}}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sim.messages("alerts").len(), 1);
    r["ts"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn hello_then_envelopes_that_the_app_acks() {
    let (sim, running) = start(SimConfig::default()).await;
    let (mut ws, hello) = connect(&running).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["num_connections"], 1);
    assert_eq!(hello["connection_info"]["app_id"], "A0SIM");
    assert!(hello["debug_info"].is_object());
    assert_eq!(sim.socket_connections(), 1);

    // A click goes over the socket (Auto mode, a connection is open), not HTTP.
    let ts = post_alert(&sim, &running).await;
    let clicker = sim.clone();
    let click =
        tokio::spawn(async move { clicker.click_button("alerts", &ts, "ack", "U0001").await });
    let env = next_json(&mut ws).await;
    assert_eq!(env["type"], "interactive");
    assert_eq!(env["payload"]["type"], "block_actions");
    assert_eq!(env["payload"]["actions"][0]["action_id"], "ack");
    assert_eq!(env["accepts_response_payload"], false);
    assert_eq!(env["retry_attempt"], 0);
    assert_eq!(env["retry_reason"], "");
    ack(&mut ws, &env, None).await;
    let d = click.await.unwrap().unwrap();
    assert_eq!(d.status, 200);
    assert_eq!(d.body, "");
    assert_eq!(d.envelope_id.as_deref(), env["envelope_id"].as_str());

    // A slash command accepts a response payload: the ack's payload is the answer.
    let s = sim.clone();
    let cmd = tokio::spawn(async move {
        s.slash_command("/sluice", "status", "alerts", "U0002")
            .await
    });
    let env = next_json(&mut ws).await;
    assert_eq!(env["type"], "slash_commands");
    assert_eq!(env["accepts_response_payload"], true);
    assert_eq!(env["payload"]["command"], "/sluice");
    assert_eq!(env["payload"]["user_id"], "U0002");
    ack(&mut ws, &env, Some(json!({"text": "all quiet"}))).await;
    let d = cmd.await.unwrap().unwrap();
    assert_eq!(d.json().unwrap()["text"], "all quiet");
    assert_eq!(sim.ephemerals(Some("U0002"))[0].text, "all quiet");

    // Events arrive as events_api with the event_callback as payload.
    let s = sim.clone();
    let ev = tokio::spawn(async move { s.send_event(json!({"type": "app_mention"})).await });
    let env = next_json(&mut ws).await;
    assert_eq!(env["type"], "events_api");
    assert_eq!(env["payload"]["type"], "event_callback");
    assert_eq!(env["payload"]["event"]["type"], "app_mention");
    ack(&mut ws, &env, None).await;
    assert_eq!(ev.await.unwrap().unwrap().status, 200);

    let stats = sim.state_json();
    assert_eq!(stats["socket_connections"], 1);
    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 3);
    assert!(deliveries
        .iter()
        .all(|d| d.via == "socket" && d.status == 200));
}

#[tokio::test]
async fn an_envelope_not_acked_in_time_is_redelivered() {
    let (sim, running) = start(SimConfig {
        socket_ack_timeout: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let (mut ws, _) = connect(&running).await;
    let s = sim.clone();
    let ev = tokio::spawn(async move { s.send_event(json!({"type": "app_mention"})).await });
    let first = next_json(&mut ws).await;
    // No ack: the same envelope comes again, marked as a retry.
    let second = next_json(&mut ws).await;
    assert_eq!(second["envelope_id"], first["envelope_id"]);
    assert_eq!(second["retry_attempt"], 1);
    assert_eq!(second["retry_reason"], "timeout");
    assert_eq!(second["payload"], first["payload"]);
    ack(&mut ws, &second, None).await;
    let d = ev.await.unwrap().unwrap();
    assert_eq!(d.status, 200);

    // Never acked: three redeliveries, then a failure.
    let s = sim.clone();
    let ev = tokio::spawn(async move { s.send_event(json!({"type": "app_mention"})).await });
    for attempt in 0..=3 {
        assert_eq!(next_json(&mut ws).await["retry_attempt"], attempt);
    }
    let d = ev.await.unwrap().unwrap();
    assert_eq!(d.status, 0);
    let stats = {
        use tower::ServiceExt;
        let resp = sim
            .router()
            .oneshot(
                axum::http::Request::get("/sim/stats")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    assert_eq!(stats["socket"]["envelopes_sent"], 6);
    assert_eq!(stats["socket"]["envelopes_acked"], 1);
    assert_eq!(stats["socket"]["envelopes_redelivered"], 4);
}

/// Reads envelopes on one connection, acking them if `acks`, and reports them with `name`.
fn reader(
    mut ws: Ws,
    name: &'static str,
    acks: bool,
    tx: mpsc::UnboundedSender<(&'static str, Value)>,
) {
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(t) = msg else { continue };
            let env: Value = serde_json::from_str(t.as_str()).unwrap();
            if acks {
                ack(&mut ws, &env, None).await;
            }
            if tx.send((name, env)).is_err() {
                break;
            }
        }
    });
}

#[tokio::test]
async fn envelopes_go_round_robin_and_a_redelivery_to_another_connection() {
    let (sim, running) = start(SimConfig {
        socket_ack_timeout: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let (a, _) = connect(&running).await;
    let (b, hello) = connect(&running).await;
    assert_eq!(hello["num_connections"], 2);
    assert_eq!(sim.socket_connections(), 2);
    let (tx, mut rx) = mpsc::unbounded_channel();
    reader(a, "a", true, tx.clone());
    reader(b, "b", true, tx);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let d = sim
            .send_event(json!({"type": "app_mention"}))
            .await
            .unwrap();
        assert_eq!(d.status, 200);
        seen.push(rx.recv().await.unwrap().0);
    }
    assert!(
        seen == ["a", "b", "a", "b"] || seen == ["b", "a", "b", "a"],
        "{seen:?}"
    );

    // One connection that never acks: the retry goes to the other one.
    let (sim, running) = start(SimConfig {
        socket_ack_timeout: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let (deaf, _) = connect(&running).await;
    let (good, _) = connect(&running).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    reader(deaf, "deaf", false, tx.clone());
    reader(good, "good", true, tx);
    for _ in 0..2 {
        let d = sim
            .send_event(json!({"type": "app_mention"}))
            .await
            .unwrap();
        assert_eq!(d.status, 200);
        let (name, env) = rx.recv().await.unwrap();
        if name == "deaf" {
            let (again, retry) = rx.recv().await.unwrap();
            assert_eq!(again, "good");
            assert_eq!(retry["retry_attempt"], 1);
            assert_eq!(retry["envelope_id"], env["envelope_id"]);
        }
    }
}

#[tokio::test]
async fn refresh_requested_then_closed_by_slack_or_by_the_app() {
    let (sim, running) = start(SimConfig {
        socket_refresh_grace: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let (mut ws, _) = connect(&running).await;
    sim.socket_refresh().await;
    let msg = next_json(&mut ws).await;
    assert_eq!(msg["type"], "disconnect");
    assert_eq!(msg["reason"], "refresh_requested");
    assert_eq!(sim.socket_connections(), 0, "no envelopes for it any more");
    // The app does nothing: Slack closes it with a close frame after the grace period.
    let frame = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert!(matches!(frame, Some(Ok(Message::Close(_)))), "{frame:?}");

    // The app reconnects and closes the old connection itself.
    let (mut old, _) = connect(&running).await;
    sim.socket_refresh().await;
    assert_eq!(next_json(&mut old).await["reason"], "refresh_requested");
    let (_new, hello) = connect(&running).await;
    assert_eq!(hello["num_connections"], 2, "the old one is still open");
    old.close(None).await.unwrap();
    wait_until("the old connection to be gone", || {
        sim.state_json()["socket_connections"] == 1 && sim.socket_connections() == 1
    })
    .await;
}

#[tokio::test]
async fn drop_closes_without_a_close_frame() {
    let (sim, running) = start(SimConfig::default()).await;
    let (mut ws, _) = connect(&running).await;
    sim.socket_drop().await;
    assert_eq!(sim.socket_connections(), 0);
    let end = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert!(
        !matches!(end, Some(Ok(Message::Close(_)))),
        "an abrupt drop sends no close frame: {end:?}"
    );
    assert!(matches!(end, None | Some(Err(_))), "{end:?}");
    // With no connection left, Auto falls back to HTTP (and here no app URL is set).
    assert_eq!(
        sim.send_event(json!({"type": "app_mention"})).await,
        Err(sluice_sim::SimError::NoAppUrl)
    );
}

#[tokio::test]
async fn refresh_and_drop_are_reachable_over_http_for_any_client() {
    let (sim, running) = start(SimConfig {
        socket_refresh_grace: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let control = |what: &str| {
        let url = format!("{}/sim/socket/{what}", running.url());
        async move {
            let r = reqwest::Client::new().post(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = control("refresh").await;
    assert_eq!(status, 409, "nothing to refresh: {body}");
    let (mut ws, _) = connect(&running).await;
    let (status, body) = control("refresh").await;
    assert_eq!((status, &body["connections"]), (200, &json!(0)), "{body}");
    assert_eq!(next_json(&mut ws).await["reason"], "refresh_requested");

    let (mut ws, _) = connect(&running).await;
    let (status, _) = control("drop").await;
    assert_eq!(status, 200);
    let end = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert!(
        matches!(end, None | Some(Err(_))),
        "dropped without a close frame: {end:?}"
    );
    assert_eq!(sim.socket_connections(), 0);
}

#[tokio::test]
async fn tickets_are_single_use() {
    let (_sim, running) = start(SimConfig::default()).await;
    let opened: Value = reqwest::Client::new()
        .post(format!("{}apps.connections.open", running.api_url()))
        .bearer_auth(DEFAULT_APP_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = opened["url"].as_str().unwrap();
    let (_ws, _) = connect_async(url).await.unwrap();
    assert!(
        connect_async(url).await.is_err(),
        "a ticket opens one connection"
    );
    assert!(
        connect_async(format!("ws://{}/sim/socket?ticket=guess", running.addr))
            .await
            .is_err()
    );
}
