//! Socket Mode: [`run_socket_mode`] keeps `connections` WebSockets to Slack open and feeds
//! every envelope to the same [`Inbound::process`] as HTTP, so dedupe, middleware and
//! synchronous answers are identical on both transports.
//!
//! Per connection: `apps.connections.open` (app token as Bearer) gives a `wss://` URL; we
//! connect, wait for `hello`, then for each envelope acknowledge with `{"envelope_id"}` as
//! soon as [`Inbound::process`] knows the answer (at once for events and clicks; with
//! `"payload"` for view submissions, options and slash command replies when the envelope
//! `accepts_response_payload`). An envelope whose idempotency claim failed is deliberately not
//! acknowledged, so Slack redelivers it. `disconnect` with `refresh_requested` or `warning`
//! opens the replacement first and closes the old connection only once the new one said
//! `hello`, so no envelope window is lost. Any other end of a connection reconnects with
//! exponential backoff and full jitter ([`sluice_slack::retry::backoff`]). Garbage frames are
//! logged and skipped; nothing in a frame can panic this code.

use crate::inbound::{Ack, Delivery, Inbound, Incoming};
use crate::models::{EventCallback, Interaction, SlashCommand};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sluice_slack::{api::Client, retry::backoff, SlackError};
use sluice_slack_wire::Secret;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Connections kept open when the caller has no preference. Slack allows up to 10.
pub const DEFAULT_CONNECTIONS: usize = 2;
const MAX_CONNECTIONS: usize = 10;
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that lived at least this long before dropping resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// How a connection makes sure Slack is still at the other end. A connection can die without a close frame or a
/// TCP reset (a NAT or proxy that forgets it, a host that vanished): without pings it would be noticed only when
/// Slack gave up on our acks and retried elsewhere. Every `ping_every` we send a ping; a connection from which nothing
/// at all (pong, ping, envelope) was heard for `silent_after` is closed and replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub ping_every: Duration,
    pub silent_after: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            ping_every: Duration::from_secs(10),
            silent_after: Duration::from_secs(30),
        }
    }
}

/// Notes that something came from Slack (whatever it was) and passes it on.
fn heard<T>(last_heard: &mut Instant, frame: T) -> T {
    *last_heard = Instant::now();
    frame
}

/// Why Socket Mode stopped for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketModeError {
    #[error("Socket Mode client cannot be built: {0}")]
    Config(String),
    #[error("Slack refused the app-level token ({0}): check it is an xapp- token with connections:write and that Socket Mode is enabled")]
    Auth(String),
}

enum ConnectError {
    Fatal(SocketModeError),
    Transient(String),
    /// Slack said 429: wait at least this long before asking again.
    RateLimited(Duration),
}

/// What a connection tells its slot.
enum ConnEvent {
    /// Slack asked us to move: connect a replacement, then fire the sender.
    Refresh(oneshot::Sender<()>),
    /// The connection ended on its own.
    Dropped { lived: Duration },
}

/// Runs Socket Mode until `shutdown` becomes true (or its sender is dropped). `api_base` is
/// `https://slack.com/api/` or the simulator's; `connections` is clamped to 1..=10.
/// Returns `Err` only when Slack refuses the app token, which no retry can fix.
pub async fn run_socket_mode(
    inbound: Arc<Inbound>,
    app_token: Secret,
    api_base: String,
    connections: usize,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SocketModeError> {
    run_socket_mode_with(
        inbound,
        app_token,
        api_base,
        connections,
        Liveness::default(),
        shutdown,
    )
    .await
}

/// [`run_socket_mode`] with the liveness check's timings.
pub async fn run_socket_mode_with(
    inbound: Arc<Inbound>,
    app_token: Secret,
    api_base: String,
    connections: usize,
    liveness: Liveness,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SocketModeError> {
    let api = Client::new(&api_base, app_token, Duration::from_secs(10))
        .map_err(|e| SocketModeError::Config(e.to_string()))?;
    let mut slots = JoinSet::new();
    for slot in 0..connections.clamp(1, MAX_CONNECTIONS) {
        slots.spawn(run_slot(
            slot,
            inbound.clone(),
            api.clone(),
            liveness,
            shutdown.clone(),
        ));
    }
    while let Some(done) = slots.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Socket Mode stopped");
                slots.abort_all();
                return Err(e);
            }
            Err(e) if e.is_panic() => tracing::error!("Socket Mode slot panicked"),
            Err(_) => {}
        }
    }
    Ok(())
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Resolves once shutdown is requested (or nobody can request it any more).
async fn until_shutdown(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Sleeps `d` unless shutdown comes first (then `false`).
async fn pause(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = until_shutdown(shutdown) => false,
    };
    slept && !stopping(shutdown)
}

/// One connection slot: keeps one connection alive, replacing it on refresh or drop.
async fn run_slot(
    slot: usize,
    inbound: Arc<Inbound>,
    api: Client,
    liveness: Liveness,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SocketModeError> {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let mut attempt: u32 = 0;
    let mut handoff: Option<oneshot::Sender<()>> = None;
    let mut conn_no: u64 = 0;
    loop {
        if stopping(&shutdown) {
            return Ok(());
        }
        let attempted = match connect(&api).await {
            Ok(ws) => Ok(ws),
            Err(ConnectError::Fatal(e)) => return Err(e),
            Err(ConnectError::Transient(why)) => Err((Duration::ZERO, why)),
            // Asking again sooner than Slack said only earns another 429.
            Err(ConnectError::RateLimited(retry_after)) => Err((
                retry_after,
                format!("apps.connections.open rate limited; Retry-After {retry_after:?}"),
            )),
        };
        let ws = match attempted {
            Ok(ws) => ws,
            Err((at_least, why)) => {
                let wait =
                    backoff(attempt, BACKOFF_BASE, BACKOFF_CAP, &mut rand::rng()).max(at_least);
                tracing::warn!(slot, attempt, ?wait, error = %why, "Socket Mode connect failed; retrying");
                attempt = attempt.saturating_add(1);
                if !pause(wait, &mut shutdown).await {
                    return Ok(());
                }
                continue;
            }
        };
        conn_no += 1;
        tracing::info!(slot, conn = conn_no, "Socket Mode connected");
        if let Some(old) = handoff.take() {
            // The replacement is up: the old connection may close now.
            let _ = old.send(());
        }
        tokio::spawn(run_connection(
            slot,
            conn_no,
            ws,
            inbound.clone(),
            liveness,
            events_tx.clone(),
            shutdown.clone(),
        ));
        let event = tokio::select! {
            e = events_rx.recv() => e,
            _ = until_shutdown(&mut shutdown) => return Ok(()),
        };
        match event {
            Some(ConnEvent::Refresh(ready)) => {
                attempt = 0;
                handoff = Some(ready);
            }
            other => {
                let lived = match other {
                    Some(ConnEvent::Dropped { lived }) => lived,
                    _ => Duration::ZERO,
                };
                if lived >= STABLE_AFTER {
                    attempt = 0;
                }
                let wait = backoff(attempt, BACKOFF_BASE, BACKOFF_CAP, &mut rand::rng());
                attempt = attempt.saturating_add(1);
                tracing::warn!(slot, ?wait, "Socket Mode connection dropped; reconnecting");
                if !pause(wait, &mut shutdown).await {
                    return Ok(());
                }
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `apps.connections.open`, connect, and wait for `hello`.
async fn connect(api: &Client) -> Result<Ws, ConnectError> {
    let answer = match api.call("apps.connections.open", &json!({})).await {
        Ok(a) => a,
        Err(SlackError::Api { error, .. })
            if matches!(
                error.as_str(),
                "invalid_auth"
                    | "not_authed"
                    | "not_allowed_token_type"
                    | "account_inactive"
                    | "token_revoked"
                    | "token_expired"
            ) =>
        {
            return Err(ConnectError::Fatal(SocketModeError::Auth(error)))
        }
        Err(SlackError::RateLimited { retry_after, .. }) => {
            return Err(ConnectError::RateLimited(retry_after))
        }
        Err(e) => return Err(ConnectError::Transient(e.to_string())),
    };
    let Some(url) = answer.get("url").and_then(Value::as_str) else {
        return Err(ConnectError::Transient(
            "apps.connections.open answered without a url".into(),
        ));
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| ConnectError::Transient(format!("WebSocket connect: {e}")))?;
    let hello = tokio::time::timeout(HELLO_TIMEOUT, async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if v.get("type").and_then(Value::as_str) == Some("hello") {
                        return Ok(());
                    }
                    tracing::debug!("frame before hello ignored");
                }
                Ok(Message::Ping(p)) => {
                    let _ = ws.send(Message::Pong(p)).await;
                }
                Ok(Message::Close(_)) => return Err("closed before hello".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("before hello: {e}")),
            }
        }
        Err("closed before hello".to_owned())
    })
    .await;
    match hello {
        Ok(Ok(())) => Ok(ws),
        Ok(Err(e)) => Err(ConnectError::Transient(e)),
        Err(_) => Err(ConnectError::Transient("no hello within 10 s".into())),
    }
}

/// Reads one connection until it ends; acks envelopes through a writer task.
async fn run_connection(
    slot: usize,
    conn: u64,
    ws: Ws,
    inbound: Arc<Inbound>,
    liveness: Liveness,
    events: mpsc::UnboundedSender<ConnEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let mut last_heard = Instant::now();
    let mut pings = tokio::time::interval(liveness.ping_every);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut sink, mut stream) = ws.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let is_close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || is_close {
                break;
            }
        }
    });
    let inflight = Arc::new(AtomicUsize::new(0));
    let mut reported = false;
    let mut retiring: Option<oneshot::Receiver<()>> = None;
    let mut closing_since: Option<Instant> = None;
    loop {
        let close_deadline = closing_since.map(|t| t + Duration::from_secs(5));
        tokio::select! {
            _ = pings.tick(), if closing_since.is_none() => {
                if last_heard.elapsed() >= liveness.silent_after {
                    tracing::warn!(slot, conn, silent = ?last_heard.elapsed(), "Socket Mode connection went silent; replacing it");
                    break;
                }
                let _ = out.send(Message::Ping(Vec::new().into()));
            }
            frame = stream.next() => match heard(&mut last_heard, frame) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!(slot, conn, error = %e, "Socket Mode connection broke");
                    break;
                }
                Some(Ok(Message::Text(t))) => {
                    let v: Value = match serde_json::from_str(t.as_str()) {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!(slot, conn, error = %e, "Socket Mode frame is not JSON; skipped");
                            continue;
                        }
                    };
                    match v.get("type").and_then(Value::as_str).unwrap_or_default() {
                        "hello" => {}
                        "disconnect" => {
                            let reason = v.get("reason").and_then(Value::as_str).unwrap_or_default();
                            tracing::info!(slot, conn, reason, "Slack asked to disconnect");
                            if !reported && matches!(reason, "refresh_requested" | "warning") {
                                let (tx, rx) = oneshot::channel();
                                reported = events.send(ConnEvent::Refresh(tx)).is_ok();
                                retiring = Some(rx);
                            }
                        }
                        _ if v.get("envelope_id").and_then(Value::as_str).is_some() => {
                            let inbound = inbound.clone();
                            let out = out.clone();
                            let inflight = inflight.clone();
                            inflight.fetch_add(1, Ordering::SeqCst);
                            tokio::spawn(async move {
                                if let Some(ack) = envelope_ack(&inbound, v).await {
                                    let _ = out.send(Message::text(ack.to_string()));
                                }
                                inflight.fetch_sub(1, Ordering::SeqCst);
                            });
                        }
                        other => tracing::debug!(slot, conn, kind = other, "Socket Mode frame ignored"),
                    }
                }
                Some(Ok(Message::Ping(p))) => {
                    let _ = out.send(Message::Pong(p));
                }
                Some(Ok(_)) => {}
            },
            ready = async {
                match retiring.as_mut() {
                    Some(rx) => rx.await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                retiring = None;
                if ready {
                    // Let acks being computed go out before saying goodbye.
                    let deadline = Instant::now() + Duration::from_secs(3);
                    while inflight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let _ = out.send(Message::Close(None));
                    closing_since = Some(Instant::now());
                }
            }
            _ = until_shutdown(&mut shutdown), if closing_since.is_none() => {
                let _ = out.send(Message::Close(None));
                closing_since = Some(Instant::now());
            }
            _ = async {
                match close_deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            } => break,
        }
    }
    writer.abort();
    tracing::info!(slot, conn, "Socket Mode connection closed");
    if !reported {
        let _ = events.send(ConnEvent::Dropped {
            lived: started.elapsed(),
        });
    }
}

/// Processes one envelope and returns the ack frame, or `None` when it must not be acked
/// (so Slack redelivers it).
async fn envelope_ack(inbound: &Arc<Inbound>, v: Value) -> Option<Value> {
    let envelope_id = v.get("envelope_id").and_then(Value::as_str)?.to_owned();
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    let accepts_payload = v
        .get("accepts_response_payload")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let delivery = Delivery {
        received_at: Instant::now(),
        retry_num: v
            .get("retry_attempt")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        retry_reason: v
            .get("retry_reason")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    };
    let payload = v.get("payload").cloned().unwrap_or(Value::Null);
    let incoming = match kind {
        "events_api" => serde_json::from_value::<EventCallback>(payload)
            .map(Incoming::Event)
            .map_err(|e| e.to_string()),
        "interactive" => Interaction::from_json(payload)
            .map(Incoming::Interaction)
            .map_err(|e| e.to_string()),
        "slash_commands" => serde_json::from_value::<SlashCommand>(payload)
            .map(Incoming::Command)
            .map_err(|e| e.to_string()),
        other => Err(format!("envelope type {other:?} is not handled")),
    };
    let ack = match incoming {
        Ok(incoming) => inbound.process(incoming, delivery).await,
        Err(why) => {
            // Acked anyway: a redelivery of the same bytes would fail the same way.
            tracing::warn!(envelope_id = %envelope_id, error = %why, "Socket Mode envelope unreadable; acknowledged and dropped");
            Ack::Empty
        }
    };
    match ack {
        Ack::Empty => Some(json!({ "envelope_id": envelope_id })),
        Ack::Json(body) if accepts_payload => {
            Some(json!({ "envelope_id": envelope_id, "payload": body }))
        }
        Ack::Json(_) => {
            tracing::warn!(envelope_id = %envelope_id, "envelope does not accept a response payload; answer dropped");
            Some(json!({ "envelope_id": envelope_id }))
        }
        Ack::Retry(why) => {
            tracing::warn!(envelope_id = %envelope_id, reason = %why, "envelope not acknowledged so Slack redelivers it");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    /// Slack hands out `wss://` URLs: the TLS path must be compiled in and must not panic
    /// for lack of a crypto provider (a peer that hangs up mid-handshake gives a plain error).
    #[tokio::test]
    async fn wss_urls_get_a_tls_handshake() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((sock, _)) = listener.accept().await {
                drop(sock);
            }
        });
        let r = tokio_tungstenite::connect_async(format!("wss://{addr}/link")).await;
        let err = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!err.contains("TLS support not compiled in"), "{err}");
        assert!(!err.is_empty());
    }
}
