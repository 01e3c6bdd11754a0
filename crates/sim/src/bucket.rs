//! Token buckets that decide when the simulator answers 429: [`TokenBucket`] for one key and
//! [`Limiter`] for many. Pure: the caller passes `now`, so the timing is tested without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sluice_slack_wire::tiers::Rate;

/// A token bucket holding up to `burst` calls and refilling at `calls / period`.
///
/// Credit is kept as a [`Duration`] (one call costs one `interval`) rather than a float count, so a
/// caller that waits exactly the advertised time is always let through.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    interval: Duration,
    capacity: Duration,
    credit: Duration,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        let interval = rate.interval().max(Duration::from_nanos(1));
        let capacity = interval * rate.burst.max(1);
        Self {
            interval,
            capacity,
            credit: capacity,
            last: now,
        }
    }

    /// Takes one call's worth of credit, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        // A `now` earlier than the last one (callers racing for the lock) adds nothing.
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.credit = (self.credit + elapsed).min(self.capacity);
        if self.credit >= self.interval {
            self.credit -= self.interval;
            Ok(())
        } else {
            Err(self.interval - self.credit)
        }
    }
}

/// `Retry-After` as Slack sends it: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Buckets by key ("chat.postMessage:C000001", "conversations.list", "webhook:T/B/X").
#[derive(Debug, Default, Clone)]
pub struct Limiter {
    buckets: HashMap<String, TokenBucket>,
}

impl Limiter {
    /// Takes one call from `key`'s bucket, creating it full at `rate` on first use.
    pub fn check(&mut self, key: &str, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.buckets
            .entry(key.to_string())
            .or_insert_with(|| TokenBucket::new(rate, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_slack_wire::tiers::{slack_limit, RateClass};

    fn per_channel() -> Rate {
        slack_limit(RateClass::PerChannel)
    }

    #[test]
    fn burst_then_429_with_time_to_next_token() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(per_channel(), t0);
        for i in 0..per_channel().burst {
            assert_eq!(b.try_take(t0), Ok(()), "call {i} is within the burst");
        }
        let wait = b.try_take(t0).expect_err("one past the burst is limited");
        assert_eq!(wait, Duration::from_secs(1));
        assert_eq!(retry_after_secs(wait), 1);
    }

    #[test]
    fn waiting_retry_after_recovers_exactly() {
        let t0 = Instant::now();
        let rate = slack_limit(RateClass::Tier(2)); // 20/min: one every 3 s
        let mut b = TokenBucket::new(rate, t0);
        for _ in 0..rate.burst {
            b.try_take(t0).unwrap();
        }
        let wait = b.try_take(t0).unwrap_err();
        assert_eq!(retry_after_secs(wait), 3);
        // Just before the advertised time it is still limited, at it the call goes through.
        let early = t0 + wait - Duration::from_millis(1);
        assert!(b.try_take(early).is_err());
        assert_eq!(b.try_take(t0 + wait), Ok(()));
        // And only one token came back.
        assert!(b.try_take(t0 + wait).is_err());
    }

    #[test]
    fn refill_is_capped_at_burst() {
        let t0 = Instant::now();
        let rate = per_channel();
        let mut b = TokenBucket::new(rate, t0);
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..rate.burst {
            assert!(b.try_take(later).is_ok());
        }
        assert!(
            b.try_take(later).is_err(),
            "an idle hour does not bank more than a burst"
        );
    }

    #[test]
    fn sustained_rate_is_exactly_the_published_one() {
        // Tier 3 = 50/min, burst 10: in the first minute 10 + 50 calls pass, not more.
        let t0 = Instant::now();
        let rate = slack_limit(RateClass::Tier(3));
        let mut b = TokenBucket::new(rate, t0);
        let mut passed = 0;
        for ms in (0..=60_000u64).step_by(100) {
            while b.try_take(t0 + Duration::from_millis(ms)).is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 60);
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one() {
        for (wait_ms, secs) in [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (2500, 3)] {
            assert_eq!(
                retry_after_secs(Duration::from_millis(wait_ms)),
                secs,
                "{wait_ms} ms"
            );
        }
    }

    #[test]
    fn limiter_keys_are_independent() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        let rate = per_channel();
        for _ in 0..rate.burst {
            l.check("post:C1", rate, t0).unwrap();
        }
        assert!(l.check("post:C1", rate, t0).is_err());
        assert!(l.check("post:C2", rate, t0).is_ok());
    }
}
