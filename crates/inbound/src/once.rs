//! [`OnceStore`]: remembers which events and clicks were already handled, so Slack's retries,
//! Socket Mode redeliveries and double clicks run a handler once (DESIGN.md invariant 5).
//!
//! The integrator implements it over the database so the memory survives restarts and is
//! shared by replicas; [`MemoryOnce`] is for tests and single-process demos only.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Claims idempotency keys.
#[async_trait]
pub trait OnceStore: Send + Sync {
    /// `Ok(true)` the first time `key` is seen within `ttl` (and records it), `Ok(false)` for
    /// every later time. `Err` when the store could not answer: the caller then refuses the
    /// request (Slack retries) rather than risk running a handler twice.
    async fn first_time(&self, key: &str, ttl: Duration) -> Result<bool, String>;
}

/// An in-memory [`OnceStore`]. Forgets everything on restart, so never use it in production.
#[derive(Debug, Default)]
pub struct MemoryOnce {
    seen: Mutex<HashMap<String, Instant>>,
}

impl MemoryOnce {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OnceStore for MemoryOnce {
    async fn first_time(&self, key: &str, ttl: Duration) -> Result<bool, String> {
        let now = Instant::now();
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| "idempotency memory is poisoned".to_owned())?;
        // Expired keys are dropped when the map grows, so a long test run stays bounded.
        if seen.len() > 10_000 {
            seen.retain(|_, until| *until > now);
        }
        match seen.get(key) {
            Some(until) if *until > now => Ok(false),
            _ => {
                seen.insert(key.to_owned(), now + ttl);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_claim_within_ttl_is_refused_and_expired_keys_come_back() {
        let once = MemoryOnce::new();
        assert_eq!(
            once.first_time("a", Duration::from_secs(60)).await,
            Ok(true)
        );
        assert_eq!(
            once.first_time("a", Duration::from_secs(60)).await,
            Ok(false)
        );
        assert_eq!(
            once.first_time("b", Duration::from_secs(60)).await,
            Ok(true)
        );
        assert_eq!(once.first_time("c", Duration::ZERO).await, Ok(true));
        assert_eq!(once.first_time("c", Duration::ZERO).await, Ok(true));
    }
}
