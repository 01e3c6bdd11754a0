//! The accept loop: what `axum::serve` does, plus the limits a server facing the network needs.
//!
//! - **A connection cap** (`server.max_connections`), so idle or slow clients cannot exhaust memory or descriptors.
//!   When the table is full, the connection that has waited longest without a request in progress (a kept-alive
//!   connection between requests, or one that never finished its headers) is closed to make room
//!   (`sluice_http_connections_evicted_total`), as nginx reuses its idle keep-alive connections: clients that
//!   reconnect as fast as they are closed cannot keep a valid client's new connection out. Only when every
//!   connection is in the middle of a request is the new one closed at once
//!   (`sluice_http_connections_refused_total`). `sluice_http_connections` is the gauge of open ones.
//! - **A header deadline** (`server.header_timeout_ms`): a client must send a request's headers within it, both on
//!   a new connection and while a kept-alive connection waits for its next request (hyper's `header_read_timeout`),
//!   so slowloris and forgotten keep-alive connections are closed rather than held for ever.
//!
//! The body deadline and the per-pool request limits are request-level and live in [`crate::http`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};

/// The connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// How long open connections may take to finish their requests once a stop is asked for.
const DRAIN: Duration = Duration::from_secs(5);
/// How long a new connection waits for the slot of the idle connection closed for it.
const EVICTION_WAIT: Duration = Duration::from_millis(200);

/// One open connection, as the cap sees it.
struct Conn {
    /// Requests in progress on it.
    busy: AtomicUsize,
    /// When it last had no request in progress (its opening, or its last answer), in ms since the server started.
    idle_since_ms: AtomicU64,
    /// Rung to close it.
    close: Notify,
}

/// The open connections, so that a full table can close its longest-idle one.
#[derive(Default)]
struct Table {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Table {
    /// Closes the connection idle the longest; `false` when every connection has a request in progress.
    fn evict_idlest(&self) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let idlest = conns
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since_ms.load(Ordering::Acquire));
        match idlest {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Counts a request in progress on its connection for as long as it lives.
struct Busy {
    conn: Arc<Conn>,
    epoch: Instant,
}

impl Busy {
    fn new(conn: &Arc<Conn>, epoch: Instant) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy {
            conn: conn.clone(),
            epoch,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` until `stop` turns true, then lets open connections finish (at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let table = Arc::new(Table::default());
    let epoch = Instant::now();
    let mut next_id: u64 = 0;
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) if table.evict_idlest() => {
                metrics::counter!("sluice_http_connections_evicted_total").increment(1);
                match tokio::time::timeout(EVICTION_WAIT, slots.clone().acquire_owned()).await {
                    Ok(Ok(slot)) => slot,
                    _ => {
                        metrics::counter!("sluice_http_connections_refused_total").increment(1);
                        drop(stream);
                        continue;
                    }
                }
            }
            Err(_) => {
                metrics::counter!("sluice_http_connections_refused_total").increment(1);
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let state = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(epoch.elapsed().as_millis() as u64),
            close: Notify::new(),
        });
        table
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, state.clone());
        let counted = state.clone();
        let app = app.clone();
        let service = tower::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let busy = Busy::new(&counted, epoch);
            let app = app.clone();
            async move {
                let mut req = req.map(axum::body::Body::new);
                // Who is calling, for what counts per client (the console's login throttle).
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let answer = tower::ServiceExt::oneshot(app, req).await;
                drop(busy);
                answer
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        let table = table.clone();
        tokio::spawn(async move {
            metrics::gauge!("sluice_http_connections").increment(1.0);
            tokio::select! {
                ended = conn => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                // Closed to make room: it had no request in progress, so dropping it loses nothing.
                _ = state.close.notified() => {}
            }
            table
                .conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            metrics::gauge!("sluice_http_connections").decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still open after the drain period; closing them");
    } else {
        tracing::info!("in-flight requests drained");
    }
}
