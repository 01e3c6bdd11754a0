//! [`RateGate`]: asks before every Slack call whether it fits Slack's rate for its key.
//!
//! One process (SQLite) keeps the buckets in memory ([`Limiter`]). Several replicas
//! (PostgreSQL) share them through the database, so three replicas together still send at most
//! Slack's limit per channel and per method, not three times it, and a 429 seen by one replica
//! holds back all of them. Slack calls are at most a few per second per workspace, so one
//! database round trip per call costs nothing that matters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_slack::ratelimit::{Limiter, RateKey};
use sluice_slack_wire::tiers::Rate;
use sluice_store::{RateDecision, Store, StoreError};

use crate::state::now_ms;

pub enum RateGate {
    Local(Limiter),
    Shared {
        store: Arc<dyn Store>,
        post_message_workspace: Rate,
    },
}

/// The shared-bucket name of a key (never a secret: webhook keys are opaque ids).
fn cell(key: &RateKey) -> String {
    match key {
        RateKey::Channel { team, channel } => format!("post:{team}:{channel}"),
        RateKey::Method { team, method } => format!("method:{team}:{method}"),
        RateKey::Webhook { hook } => format!("hook:{hook}"),
    }
}

impl RateGate {
    /// In-memory buckets for one process, or buckets in `store` when replicas share it.
    pub fn for_store(store: &Arc<dyn Store>, post_message_workspace: Rate) -> RateGate {
        if store.backend() == "sqlite" {
            RateGate::Local(Limiter::with_post_message_workspace_limit(
                post_message_workspace,
            ))
        } else {
            RateGate::Shared {
                store: store.clone(),
                post_message_workspace,
            }
        }
    }

    /// Wait until a call for `key` fits, and take its slot.
    pub async fn acquire(&self, key: &RateKey) -> Result<(), StoreError> {
        match self {
            RateGate::Local(limiter) => loop {
                match limiter.try_acquire(key, Instant::now()) {
                    Ok(()) => return Ok(()),
                    Err(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                }
            },
            RateGate::Shared {
                store,
                post_message_workspace,
            } => {
                let mut cells = vec![(cell(key), key.rate())];
                if let RateKey::Channel { team, .. } = key {
                    cells.push((format!("post-workspace:{team}"), *post_message_workspace));
                }
                for (name, rate) in cells {
                    let interval = rate.interval().as_millis().max(1) as i64;
                    loop {
                        match store
                            .take_rate(&name, interval, rate.burst, now_ms())
                            .await?
                        {
                            RateDecision::Allowed => break,
                            RateDecision::RetryAt(at) => {
                                let wait = (at - now_ms()).clamp(1, 60_000) as u64;
                                tokio::time::sleep(Duration::from_millis(wait)).await;
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Slack said 429 with `retry_after` for `key`: nothing for that key before then.
    pub async fn penalize(&self, key: &RateKey, retry_after: Duration) -> Result<(), StoreError> {
        match self {
            RateGate::Local(limiter) => {
                limiter.penalize(key, Instant::now() + retry_after);
                Ok(())
            }
            RateGate::Shared { store, .. } => {
                store
                    .block_rate(&cell(key), now_ms() + retry_after.as_millis() as i64)
                    .await
            }
        }
    }
}
