//! The internal system a test's `[[action]]`s and approval callbacks call: a test HTTP server on 127.0.0.1 that
//! records every request, answers as scripted ([`Answer`]) and then with a default JSON body; the receiver's check
//! of Sluice's signature ([`signature_ok`], as the README tells receivers to do it); and the audit records of an
//! action ([`audited`], [`results`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::proc::KEY;

/// The secret the tests' configs sign outgoing calls with (their `outgoing` file).
pub const OUTGOING_SECRET: &str = "outgoing-secret-0123456789abcdef";

/// One request the internal system received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The request's body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Sluice signed it (whether the signature is right is [`signature_ok`]'s question).
    pub fn signed(&self) -> bool {
        self.headers.contains_key("x-sluice-signature")
    }
}

/// How the internal system answers its next requests (then 200 with its default body).
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    Redirect(String),
    /// Answers only after this long, `{"ok": true, "version": "late"}`.
    Slow(std::time::Duration),
    /// 200 with this body.
    Json(Value),
}

pub struct Internal {
    received: Mutex<Vec<Received>>,
    script: Mutex<Vec<Answer>>,
    /// Path → how it is always answered, before any script.
    always: Mutex<Vec<(String, Answer)>>,
    default: Value,
}

impl Internal {
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The next requests are answered with `answers`, in order.
    pub fn answer(&self, answers: Vec<Answer>) {
        *self.script.lock().unwrap() = answers;
    }

    /// `answers` are added after those already scripted.
    pub fn then_answer(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    /// Requests to `path` are answered with `answer` from now on (until the next `always` for it), whatever is
    /// scripted for the others.
    pub fn always(&self, path: &str, answer: Answer) {
        let mut always = self.always.lock().unwrap();
        always.retain(|(p, _)| p != path);
        always.push((path.to_string(), answer));
    }

    /// The requests received at `path`, in order.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

async fn handler(
    State(s): State<Arc<Internal>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let always = s
        .always
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| p == uri.path())
        .map(|(_, a)| a.clone());
    let next = always.or_else(|| {
        let mut script = s.script.lock().unwrap();
        (!script.is_empty()).then(|| script.remove(0))
    });
    match next {
        Some(Answer::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Answer::Redirect(to)) => {
            (StatusCode::FOUND, [("location", to)], "moved").into_response()
        }
        Some(Answer::Slow(d)) => {
            tokio::time::sleep(d).await;
            axum::Json(json!({"ok": true, "version": "late"})).into_response()
        }
        Some(Answer::Json(body)) => axum::Json(body).into_response(),
        None => axum::Json(s.default.clone()).into_response(),
    }
}

/// Starts the internal system, answering `{"ok": true, "version": "1.2.2"}` unless scripted otherwise.
pub async fn start_internal() -> (Arc<Internal>, SocketAddr) {
    start_internal_answering(json!({"ok": true, "version": "1.2.2"})).await
}

/// Starts the internal system, answering `default` unless scripted otherwise.
pub async fn start_internal_answering(default: Value) -> (Arc<Internal>, SocketAddr) {
    let s = Arc::new(Internal {
        received: Mutex::default(),
        script: Mutex::default(),
        always: Mutex::default(),
        default,
    });
    let app = axum::Router::new().fallback(handler).with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (s, addr)
}

/// A receiver's check of our signature, as the README tells receivers to do it: the HMAC over `v0:{ts}:{body}`
/// with [`OUTGOING_SECRET`], and a timestamp within five minutes.
pub fn signature_ok(r: &Received) -> bool {
    let ts = r.headers["x-sluice-request-timestamp"].to_str().unwrap();
    let sig = r.headers["x-sluice-signature"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(OUTGOING_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(&r.body);
    let want = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let age = sluice::state::now_ms() / 1000 - ts.parse::<i64>().unwrap();
    sig == want && age.abs() < 300
}

/// The audit records of `action` (the chain checked intact first).
pub async fn audited(addr: SocketAddr, action: &str) -> Vec<Value> {
    let audit: Value = reqwest::Client::new()
        .get(format!("http://{addr}/v1/audit?limit=1000"))
        .bearer_auth(KEY)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["intact"], true, "the audit chain is broken");
    audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == action)
        .cloned()
        .collect()
}

/// The results of audit `records`, sorted.
pub fn results(records: &[Value]) -> Vec<String> {
    let mut r: Vec<String> = records
        .iter()
        .map(|r| r["result"].as_str().unwrap().to_string())
        .collect();
    r.sort();
    r
}
