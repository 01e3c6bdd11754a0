//! The accept loop: what `axum::serve` does, plus the limits a server facing the network needs.
//!
//! - **A connection cap** (`server.max_connections`): past it a new connection is closed at once and counted
//!   (`sluice_http_connections_refused_total`), so idle or slow clients cannot exhaust memory or descriptors.
//!   `sluice_http_connections` is the gauge of open ones.
//! - **A header deadline** (`server.header_timeout_ms`): a client must send a request's headers within it, both on
//!   a new connection and while a kept-alive connection waits for its next request (hyper's `header_read_timeout`),
//!   so slowloris and forgotten keep-alive connections are closed rather than held for ever.
//!
//! The body deadline and the per-pool request limits are request-level and live in [`crate::http`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// The connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// How long open connections may take to finish their requests once a stop is asked for.
const DRAIN: Duration = Duration::from_secs(5);

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
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("sluice_http_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            metrics::gauge!("sluice_http_connections").increment(1.0);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
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
    }
}
