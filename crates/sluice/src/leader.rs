//! A timer that one replica runs: [`every`] ticks, takes (or keeps) a role's lease in the database, and does the
//! work only while it leads; on shutdown it resigns, so another replica takes over at once. The approval expiry
//! and the schedules run on it.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::state::{now_ms, AppState};

/// How long a leader's lease lasts without a tick renewing it.
const LEASE_MS: i64 = 5_000;

/// Every `tick`, while this process (`owner`) holds the `role` lease, runs `work`; returns once `shutdown` turns
/// true, after resigning the role.
pub async fn every<F, Fut>(
    state: &AppState,
    role: &str,
    owner: &str,
    tick: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(tick) => false,
            _ = shutdown.wait_for(|s| *s) => true,
        };
        if stopping {
            let _ = state.store.resign(role, owner).await;
            return;
        }
        match state.store.try_lead(role, owner, now_ms(), LEASE_MS).await {
            Ok(true) => work().await,
            Ok(false) => {}
            Err(e) => tracing::debug!(%role, error = %e, "leadership check failed"),
        }
    }
}
