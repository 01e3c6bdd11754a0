//! Test support: a recording HTTP sink on 127.0.0.1 that stands in for response_urls and the
//! Web API, signed request builders, and an Inbound wired to both.
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::Request;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use sluice_inbound::{Inbound, InboundConfig, OnceStore, Outbox, Registry};
use sluice_slack::Client;
use sluice_slack_wire::{signature, Secret};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub const SECRET: &str = "test-signing-secret";

/// Everything POSTed to the sink: (path, JSON body).
#[derive(Clone, Default)]
pub struct Sink {
    pub posts: Arc<Mutex<Vec<(String, Value)>>>,
    pub notify: Arc<Notify>,
    pub base: String,
}

impl Sink {
    pub async fn start() -> Sink {
        let mut sink = Sink::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        sink.base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/resp/{id}", post(record_resp))
            .route("/api/{method}", post(record_api))
            .with_state(sink.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        sink
    }

    /// A response_url on this sink.
    pub fn url(&self, id: &str) -> String {
        format!("{}/resp/{id}", self.base)
    }

    pub fn host_entry(&self) -> String {
        self.base.clone()
    }

    pub fn posts(&self) -> Vec<(String, Value)> {
        self.posts.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` posts arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<(String, Value)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.notify.notified();
            if self.posts.lock().unwrap().len() >= n {
                return self.posts();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.posts();
            }
        }
    }
}

async fn record_resp(
    State(s): State<Sink>,
    Path(id): Path<String>,
    Json(v): Json<Value>,
) -> &'static str {
    s.posts.lock().unwrap().push((format!("/resp/{id}"), v));
    s.notify.notify_waiters();
    "ok"
}

async fn record_api(
    State(s): State<Sink>,
    Path(method): Path<String>,
    Json(v): Json<Value>,
) -> Json<Value> {
    s.posts.lock().unwrap().push((format!("/api/{method}"), v));
    s.notify.notify_waiters();
    Json(json!({"ok": true, "channel": "C1", "ts": "1.2", "message_ts": "1.2"}))
}

pub fn inbound(registry: Registry, once: Arc<dyn OnceStore>, sink: &Sink) -> Arc<Inbound> {
    let mut cfg = InboundConfig::new(Secret::new(SECRET));
    cfg.response_url_hosts.push(sink.host_entry());
    let slack = Client::new(
        &format!("{}/api/", sink.base),
        Secret::new("xoxb-test"),
        Duration::from_secs(5),
    )
    .unwrap();
    let outbox = Arc::new(SendNow(slack.clone()));
    Arc::new(Inbound::new(cfg, registry, once, outbox, slack))
}

/// The integrator's outbox as these tests see it: each call is sent at once to the sink's Web API, so a test can
/// see which call a handler's write became.
#[derive(Debug)]
pub struct SendNow(pub Client);

#[async_trait::async_trait]
impl Outbox for SendNow {
    async fn enqueue(&self, method: &str, args: Value) -> Result<(), String> {
        self.0
            .call(method, &args)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

pub fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// A request signed with [`SECRET`] now.
pub fn signed(path: &str, content_type: &str, body: &str) -> Request<Body> {
    signed_with(path, content_type, body, SECRET, &now(), &[])
}

pub fn signed_with(
    path: &str,
    content_type: &str,
    body: &str,
    secret: &str,
    ts: &str,
    extra: &[(&str, &str)],
) -> Request<Body> {
    let sig = signature::sign(&Secret::new(secret), ts, body.as_bytes());
    let mut b = Request::post(path)
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig);
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

pub const FORM: &str = "application/x-www-form-urlencoded";
pub const JSON: &str = "application/json";

/// An interactivity form body carrying `payload`.
pub fn interaction_form(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub async fn body_json(resp: axum::response::Response) -> Value {
    use http_body_util::BodyExt;
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    }
}
