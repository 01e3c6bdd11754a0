//! Socket Mode, Slack's side: [`SocketState`] holds the open WebSocket connections of the app
//! and the envelopes waiting for an ack; [`session`] runs one connection (`GET /sim/socket`).
//!
//! A connection is opened with a one-time ticket from `apps.connections.open`, greeted with
//! `hello`, and then receives envelopes round-robin. The app answers each with
//! `{"envelope_id": …, "payload": …?}`; the delivering side ([`crate::inbound`]) waits for that ack
//! and redelivers on timeout. The writer of each connection is a channel so that the lock over the
//! workspace is never held across a socket write.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::Simulator;

/// Slack allows up to ten simultaneous connections per app.
pub const MAX_CONNECTIONS: usize = 10;

/// What the simulator tells one connection's writer to do.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    /// A close frame, then end the connection.
    Close,
    /// End the connection without a close frame, like a dropped network link.
    Abort,
}

/// One open WebSocket connection.
#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    pub tx: mpsc::UnboundedSender<Outbound>,
    /// Told to disconnect (`refresh_requested`): gets no more envelopes.
    pub closing: bool,
    pub opened: Instant,
}

/// Socket Mode connections, tickets, pending acks and counters.
#[derive(Debug, Default)]
pub struct SocketState {
    pub conns: Vec<Conn>,
    /// Tickets from `apps.connections.open` not yet used to connect.
    pub tickets: BTreeSet<String>,
    /// Envelope id → where to hand the ack's payload.
    pub pending: BTreeMap<String, oneshot::Sender<Option<Value>>>,
    next_conn: u64,
    /// Round-robin position.
    rr: usize,
    pub envelopes_sent: u64,
    pub envelopes_acked: u64,
    pub envelopes_redelivered: u64,
    pub connections_opened: u64,
}

impl SocketState {
    /// Connections that take envelopes (not told to disconnect).
    pub fn open_count(&self) -> usize {
        self.conns.iter().filter(|c| !c.closing).count()
    }

    pub fn reset_counters(&mut self) {
        self.envelopes_sent = 0;
        self.envelopes_acked = 0;
        self.envelopes_redelivered = 0;
        self.connections_opened = 0;
    }

    pub fn stats(&self) -> Value {
        json!({
            "connections": self.open_count(),
            "connections_opened": self.connections_opened,
            "envelopes_sent": self.envelopes_sent,
            "envelopes_acked": self.envelopes_acked,
            "envelopes_redelivered": self.envelopes_redelivered,
        })
    }

    fn register(&mut self, tx: mpsc::UnboundedSender<Outbound>, now: Instant) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        self.connections_opened += 1;
        self.conns.push(Conn {
            id,
            tx,
            closing: false,
            opened: now,
        });
        id
    }

    fn unregister(&mut self, id: u64) {
        self.conns.retain(|c| c.id != id);
    }

    /// Sends `text` to the next open connection in turn, skipping `avoid` when another exists
    /// (a redelivery goes to a different connection if it can). Returns the connection used.
    pub fn send_round_robin(&mut self, text: String, avoid: Option<u64>) -> Option<u64> {
        let open: Vec<usize> = (0..self.conns.len())
            .filter(|&i| !self.conns[i].closing)
            .collect();
        if open.is_empty() {
            return None;
        }
        let mut pick = open[self.rr % open.len()];
        if open.len() > 1 && Some(self.conns[pick].id) == avoid {
            self.rr += 1;
            pick = open[self.rr % open.len()];
        }
        self.rr += 1;
        let conn = &self.conns[pick];
        conn.tx.send(Outbound::Text(text)).ok()?;
        Some(conn.id)
    }

    /// The oldest connection that is not already closing.
    pub fn oldest_open(&self) -> Option<&Conn> {
        self.conns
            .iter()
            .filter(|c| !c.closing)
            .min_by_key(|c| (c.opened, c.id))
    }
}

/// Runs one Socket Mode connection until either side ends it.
pub async fn session(sim: Simulator, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (id, hello) = {
        let mut state = sim.lock();
        let now = state.clock.now();
        let id = state.socket.register(tx, now);
        let hello = json!({
            "type": "hello",
            "num_connections": state.socket.conns.len(),
            "connection_info": {"app_id": state.cfg.app_id},
            "debug_info": {
                "host": "sluice-sim",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
        });
        (id, hello)
    };
    tracing::debug!(conn = id, "socket mode connection opened");
    if sink
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        sim.lock().socket.unregister(id);
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Text(t)) => {
                    if sink.send(WsMessage::Text(t.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close) => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break;
                }
                // Dropping both halves ends the TCP connection without a close frame.
                Some(Outbound::Abort) | None => break,
            },
            inbound = stream.next() => match inbound {
                Some(Ok(WsMessage::Text(t))) => ack(&sim, t.as_str()),
                Some(Ok(WsMessage::Binary(b))) => ack(&sim, &String::from_utf8_lossy(&b)),
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    sim.lock().socket.unregister(id);
    tracing::debug!(conn = id, "socket mode connection closed");
}

/// An ack from the app: `{"envelope_id": …, "payload": …?}`. Unknown or late acks are ignored,
/// as Slack ignores them.
fn ack(sim: &Simulator, text: &str) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(envelope_id) = v.get("envelope_id").and_then(Value::as_str) else {
        return;
    };
    let mut state = sim.lock();
    if let Some(waiter) = state.socket.pending.remove(envelope_id) {
        state.socket.envelopes_acked += 1;
        let _ = waiter.send(v.get("payload").cloned());
    }
}
