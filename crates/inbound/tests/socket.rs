//! Socket Mode against a small Slack stand-in on 127.0.0.1: `apps.connections.open` plus a
//! WebSocket endpoint that says hello, sends envelopes, records acks with their latency,
//! can ask for a refresh or drop a connection abruptly, and redelivers unacked envelopes.

mod common;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{any, post};
use axum::{Json, Router};
use common::Sink;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sluice_inbound::models::{EventCallback, SlashCommand, ViewSubmission};
use sluice_inbound::{
    run_socket_mode, run_socket_mode_with, Ctx, Liveness, MemoryOnce, Registry, Reply, ViewResponse,
};
use sluice_slack_wire::Secret;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

#[derive(Default)]
struct Script {
    /// Send `disconnect: refresh_requested` right after the envelope with this global number.
    refresh_at: Option<usize>,
    /// Drop the connection without a close frame right after this envelope.
    drop_at: Option<usize>,
    /// This connection says hello and then nothing ever again: it neither reads (so pings go unanswered) nor writes,
    /// nor closes, like a connection a NAT forgot.
    silent_conn: Option<usize>,
}

struct Srv {
    addr: String,
    queue_tx: mpsc::UnboundedSender<Value>,
    queue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
    /// envelope_id → (connection, envelope, sent at)
    pending: Mutex<HashMap<String, (usize, Value, Instant)>>,
    /// (ack frame, latency)
    acks: Mutex<Vec<(Value, Duration)>>,
    log: Mutex<Vec<String>>,
    conns: AtomicUsize,
    sent: AtomicUsize,
    opens: AtomicUsize,
    script: Script,
}

impl Srv {
    async fn start(script: Script) -> Arc<Srv> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let srv = Arc::new(Srv {
            addr: listener.local_addr().unwrap().to_string(),
            queue_tx,
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            pending: Mutex::default(),
            acks: Mutex::default(),
            log: Mutex::default(),
            conns: AtomicUsize::new(0),
            sent: AtomicUsize::new(0),
            opens: AtomicUsize::new(0),
            script,
        });
        let app = Router::new()
            .route("/api/apps.connections.open", post(open))
            .route("/ws", any(upgrade))
            .with_state(srv.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        srv
    }

    fn api(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    fn push(&self, envelope: Value) {
        self.queue_tx.send(envelope).unwrap();
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

async fn open(State(srv): State<Arc<Srv>>, headers: HeaderMap) -> Json<Value> {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer xapp-test") {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    srv.opens.fetch_add(1, Ordering::SeqCst);
    Json(json!({"ok": true, "url": format!("ws://{}/ws", srv.addr)}))
}

async fn upgrade(State(srv): State<Arc<Srv>>, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(move |socket| serve_conn(srv, socket))
}

async fn serve_conn(srv: Arc<Srv>, socket: WebSocket) {
    let id = srv.conns.fetch_add(1, Ordering::SeqCst) + 1;
    srv.log.lock().unwrap().push(format!("open {id}"));
    let (mut tx, mut rx) = socket.split();
    let hello =
        json!({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0SLUICE1"}});
    if tx.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    if srv.script.silent_conn == Some(id) {
        srv.log.lock().unwrap().push(format!("silent {id}"));
        tokio::time::sleep(Duration::from_secs(120)).await;
        return;
    }
    // Garbage must not bother the client.
    let _ = tx.send(Message::text("{not json")).await;
    let _ = tx.send(Message::Ping(vec![1, 2, 3].into())).await;
    let mut retiring_until: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            frame = rx.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let Ok(ack) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                    let Some(eid) = ack["envelope_id"].as_str() else { continue };
                    if let Some((_, _, at)) = srv.pending.lock().unwrap().remove(eid) {
                        srv.acks.lock().unwrap().push((ack.clone(), at.elapsed()));
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            env = async { srv.queue_rx.lock().await.recv().await }, if retiring_until.is_none() => {
                let Some(env) = env else { break };
                let eid = env["envelope_id"].as_str().unwrap().to_owned();
                srv.pending.lock().unwrap().insert(eid, (id, env.clone(), Instant::now()));
                if tx.send(Message::text(env.to_string())).await.is_err() {
                    break;
                }
                let n = srv.sent.fetch_add(1, Ordering::SeqCst) + 1;
                if srv.script.refresh_at == Some(n) {
                    let bye = json!({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "test"}});
                    let _ = tx.send(Message::text(bye.to_string())).await;
                    retiring_until = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                }
                if srv.script.drop_at == Some(n) {
                    srv.log.lock().unwrap().push(format!("drop {id}"));
                    break; // no close frame: the socket just goes away
                }
            },
            _ = async { tokio::time::sleep_until(retiring_until.unwrap()).await }, if retiring_until.is_some() => {
                // Slack would close it eventually; the client should have done so first.
                srv.log.lock().unwrap().push(format!("server closed {id}"));
                break;
            }
        }
    }
    srv.log.lock().unwrap().push(format!("close {id}"));
    // Redeliver what this connection never acknowledged, like Slack does.
    let unacked: Vec<Value> = {
        let mut pending = srv.pending.lock().unwrap();
        let ids: Vec<String> = pending
            .iter()
            .filter(|(_, (c, _, _))| *c == id)
            .map(|(k, _)| k.clone())
            .collect();
        ids.iter()
            .filter_map(|k| pending.remove(k))
            .map(|(_, v, _)| v)
            .collect()
    };
    for mut env in unacked {
        env["retry_attempt"] = json!(env["retry_attempt"].as_u64().unwrap_or(0) + 1);
        env["retry_reason"] = json!("timeout");
        let _ = srv.queue_tx.send(env);
    }
}

fn event_envelope(i: usize) -> Value {
    json!({
        "envelope_id": format!("env-{i}"),
        "type": "events_api",
        "accepts_response_payload": false,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": {
            "team_id": "T0ABCDEF1", "api_app_id": "A0SLUICE1", "type": "event_callback",
            "event_id": format!("Ev{i:05}"), "event_time": 1712346100,
            "event": {"type": "app_mention", "user": "U1", "channel": "C1", "text": "hi", "ts": format!("1712346100.{i:06}")}
        }
    })
}

type Seen = Arc<Mutex<HashMap<String, usize>>>;

fn counting_events(seen: Seen) -> Registry {
    let mut r = Registry::new();
    r.event("app_mention", move |ctx: Ctx<EventCallback>| {
        let seen = seen.clone();
        async move {
            let id = ctx.payload.event_id.clone().unwrap_or_default();
            *seen.lock().unwrap().entry(id).or_default() += 1;
            Ok(())
        }
    });
    r
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), sluice_inbound::socket::SocketModeError>>,
}

async fn run(srv: &Arc<Srv>, registry: Registry, connections: usize) -> Running {
    run_with(srv, registry, connections, Liveness::default()).await
}

async fn run_with(
    srv: &Arc<Srv>,
    registry: Registry,
    connections: usize,
    liveness: Liveness,
) -> Running {
    let sink = Sink::start().await;
    let inbound = common::inbound(registry, Arc::new(MemoryOnce::new()), &sink);
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(run_socket_mode_with(
        inbound,
        Secret::new("xapp-test"),
        srv.api(),
        connections,
        liveness,
        rx,
    ));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let done = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "socket mode did not stop cleanly: {done:?}"
        );
    }
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn envelopes_are_acked_at_once_with_their_synchronous_payload() {
    let srv = Srv::start(Script::default()).await;
    let mut r = Registry::new();
    r.view_submission("silence_form", |_ctx: Ctx<ViewSubmission>| async move {
        Ok(ViewResponse::error("why", "Say why"))
    });
    r.command("/ops", |ctx: Ctx<SlashCommand>| async move {
        Ok(Some(Reply::ephemeral(format!(
            "on it: {}",
            ctx.payload.text
        ))))
    });
    let seen: Seen = Seen::default();
    let s2 = seen.clone();
    r.event("app_mention", move |ctx: Ctx<EventCallback>| {
        let seen = s2.clone();
        async move {
            // A slow handler must not delay the ack.
            tokio::time::sleep(Duration::from_secs(2)).await;
            *seen
                .lock()
                .unwrap()
                .entry(ctx.payload.event_id.unwrap_or_default())
                .or_default() += 1;
            Ok(())
        }
    });
    let running = run(&srv, r, 1).await;
    srv.push(json!({
        "envelope_id": "env-view", "type": "interactive", "accepts_response_payload": true,
        "retry_attempt": 0, "retry_reason": "", "payload": common::fixture("view_submission"),
    }));
    srv.push(json!({
        "envelope_id": "env-cmd", "type": "slash_commands", "accepts_response_payload": true,
        "payload": {"command": "/ops", "text": "page db", "user_id": "U1", "channel_id": "C1", "team_id": "T1",
                    "response_url": "https://hooks.slack.com/commands/T1/1/x", "trigger_id": "1.2.3"},
    }));
    srv.push(event_envelope(1));
    until("3 acks", || srv.acks.lock().unwrap().len() == 3).await;
    let acks = srv.acks.lock().unwrap().clone();
    for (ack, latency) in &acks {
        assert!(
            *latency < Duration::from_millis(100),
            "{ack} took {latency:?}"
        );
    }
    let by_id = |id: &str| {
        acks.iter()
            .find(|(a, _)| a["envelope_id"] == id)
            .unwrap()
            .0
            .clone()
    };
    assert_eq!(
        by_id("env-view"),
        json!({"envelope_id": "env-view", "payload": {"response_action": "errors", "errors": {"why": "Say why"}}})
    );
    assert_eq!(
        by_id("env-cmd"),
        json!({"envelope_id": "env-cmd", "payload": {"text": "on it: page db", "response_type": "ephemeral"}})
    );
    assert_eq!(by_id("env-1"), json!({"envelope_id": "env-1"}));
    until("slow handler ran", || seen.lock().unwrap().len() == 1).await;
    running.stop().await;
}

#[tokio::test]
async fn refresh_requested_opens_the_new_connection_before_the_old_one_closes() {
    let srv = Srv::start(Script {
        refresh_at: Some(2),
        drop_at: None,
        silent_conn: None,
    })
    .await;
    let seen: Seen = Seen::default();
    let running = run(&srv, counting_events(seen.clone()), 1).await;
    for i in 0..5 {
        srv.push(event_envelope(i));
    }
    until("5 events", || seen.lock().unwrap().len() == 5).await;
    until("old connection closed", || {
        srv.log().contains(&"close 1".to_string())
    })
    .await;
    let log = srv.log();
    let pos = |s: &str| {
        log.iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s} missing in {log:?}"))
    };
    assert!(pos("open 2") < pos("close 1"), "{log:?}");
    assert!(
        !log.contains(&"server closed 1".to_string()),
        "client never closed the old connection: {log:?}"
    );
    assert!(seen.lock().unwrap().values().all(|n| *n == 1));
    running.stop().await;
}

/// Issue 15, item 12: a connection that dies without a close frame or a reset (a NAT that forgot it) was noticed
/// only through an error. Pings find it, and it is replaced.
#[tokio::test]
async fn a_silently_dead_connection_is_found_by_its_pings_and_replaced() {
    let srv = Srv::start(Script {
        silent_conn: Some(1),
        ..Script::default()
    })
    .await;
    let seen: Seen = Seen::default();
    let liveness = Liveness {
        ping_every: Duration::from_millis(100),
        silent_after: Duration::from_millis(500),
    };
    let running = run_with(&srv, counting_events(seen.clone()), 1, liveness).await;
    until("a replacement connection", || {
        srv.opens.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(
        srv.log().contains(&"silent 1".to_string()),
        "{:?}",
        srv.log()
    );
    for i in 0..3 {
        srv.push(event_envelope(i));
    }
    until("3 events over the replacement", || {
        seen.lock().unwrap().len() == 3
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn abrupt_drop_reconnects_and_nothing_is_lost() {
    let srv = Srv::start(Script {
        refresh_at: None,
        drop_at: Some(1),
        silent_conn: None,
    })
    .await;
    let seen: Seen = Seen::default();
    let running = run(&srv, counting_events(seen.clone()), 1).await;
    for i in 0..3 {
        srv.push(event_envelope(i));
    }
    until("3 events", || seen.lock().unwrap().len() == 3).await;
    until("all acked", || srv.pending.lock().unwrap().is_empty()).await;
    assert!(srv.opens.load(Ordering::SeqCst) >= 2, "no reconnect");
    assert!(srv.log().contains(&"drop 1".to_string()));
    assert!(
        seen.lock().unwrap().values().all(|n| *n == 1),
        "{:?}",
        seen.lock().unwrap()
    );
    running.stop().await;
}

#[tokio::test]
async fn a_thousand_envelopes_through_a_refresh_and_a_drop_are_each_handled_once() {
    let srv = Srv::start(Script {
        refresh_at: Some(300),
        drop_at: Some(700),
        silent_conn: None,
    })
    .await;
    let seen: Seen = Seen::default();
    let running = run(&srv, counting_events(seen.clone()), 2).await;
    for i in 0..1000 {
        srv.push(event_envelope(i));
    }
    until("1000 events", || seen.lock().unwrap().len() == 1000).await;
    until("all acked", || srv.pending.lock().unwrap().is_empty()).await;
    let seen = seen.lock().unwrap().clone();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    let log = srv.log();
    assert!(log.iter().any(|l| l.starts_with("drop")), "{log:?}");
    // The refreshed connection got its replacement and was closed by the client.
    assert!(srv.conns.load(Ordering::SeqCst) >= 3, "{log:?}");
    assert!(
        !log.iter().any(|l| l.starts_with("server closed")),
        "{log:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_refused_app_token_stops_with_an_error() {
    let srv = Srv::start(Script::default()).await;
    let sink = Sink::start().await;
    let inbound = common::inbound(Registry::new(), Arc::new(MemoryOnce::new()), &sink);
    let (_stop, rx) = watch::channel(false);
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        run_socket_mode(inbound, Secret::new("xoxb-wrong-kind"), srv.api(), 2, rx),
    )
    .await
    .unwrap();
    assert!(
        matches!(r, Err(sluice_inbound::socket::SocketModeError::Auth(ref e)) if e == "invalid_auth"),
        "{r:?}"
    );
}
