//! The login throttle: failed console logins spend tokens from two buckets, the client's (by IP address) and
//! everyone's. While either is empty every login is refused with 429 and a `Retry-After`, whatever the key (so a
//! throttled guesser learns nothing); the buckets refill steadily, so a correct key works again once the window has
//! passed. A successful login spends nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins one client may make in [`PERIOD`] before it must wait.
pub const PER_CLIENT: u32 = 5;
/// Failed logins all clients together may make in [`PERIOD`].
pub const OVERALL: u32 = 50;
/// The window the allowances are counted over.
pub const PERIOD: Duration = Duration::from_secs(60);
/// Clients remembered at most; beyond it, clients whose buckets are full again are forgotten.
const MAX_CLIENTS: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: u32, now: Instant) -> Self {
        Bucket {
            tokens: f64::from(capacity),
            at: now,
        }
    }

    /// Tokens as of `now`, refilled at `capacity` per `period`.
    fn refill(&mut self, capacity: u32, period: Duration, now: Instant) {
        let rate = f64::from(capacity) / period.as_secs_f64();
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(capacity));
        self.at = now;
    }

    /// How long until one token is back (zero if there is one).
    fn wait(&self, capacity: u32, period: Duration) -> Duration {
        if self.tokens >= 1.0 {
            return Duration::ZERO;
        }
        let rate = f64::from(capacity) / period.as_secs_f64();
        Duration::from_secs_f64((1.0 - self.tokens) / rate)
    }
}

/// A throttled attempt: who ran out, and how long to wait (whole seconds, at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
    /// Whether everyone's allowance ran out, not only this client's.
    pub overall: bool,
}

/// The throttle's state, shared by every login of this process.
pub struct LoginThrottle {
    per_client: u32,
    overall: u32,
    period: Duration,
    state: Mutex<(Bucket, HashMap<IpAddr, Bucket>)>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(PER_CLIENT, OVERALL, PERIOD)
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl LoginThrottle {
    /// `per_client` failures per client and `overall` failures in all per `period` (each at least one).
    pub fn new(per_client: u32, overall: u32, period: Duration) -> Self {
        let now = Instant::now();
        LoginThrottle {
            per_client: per_client.max(1),
            overall: overall.max(1),
            period: period.max(Duration::from_millis(1)),
            state: Mutex::new((Bucket::full(overall.max(1), now), HashMap::new())),
        }
    }

    /// Whether `client` may try a key now.
    pub fn check(&self, client: IpAddr) -> Result<(), Throttled> {
        self.check_at(client, Instant::now())
    }

    /// Counts a failed login by `client`; says whether this one used up an allowance (the moment worth auditing).
    pub fn failed(&self, client: IpAddr) -> Option<Throttled> {
        self.failed_at(client, Instant::now())
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), Throttled> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (all, clients) = &mut *guard;
        all.refill(self.overall, self.period, now);
        let mine = clients.get_mut(&client).map(|b| {
            b.refill(self.per_client, self.period, now);
            b.wait(self.per_client, self.period)
        });
        let overall = all.wait(self.overall, self.period);
        let wait = mine.unwrap_or_default().max(overall);
        if wait.is_zero() {
            Ok(())
        } else {
            Err(Throttled {
                retry_after_secs: secs(wait).max(1),
                overall: !overall.is_zero(),
            })
        }
    }

    fn failed_at(&self, client: IpAddr, now: Instant) -> Option<Throttled> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (all, clients) = &mut *guard;
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let (cap, period) = (self.per_client, self.period);
            clients.retain(|_, b| {
                b.refill(cap, period, now);
                b.tokens < f64::from(cap)
            });
        }
        let mine = clients
            .entry(client)
            .or_insert_with(|| Bucket::full(self.per_client, now));
        mine.refill(self.per_client, self.period, now);
        mine.tokens = (mine.tokens - 1.0).max(0.0);
        all.refill(self.overall, self.period, now);
        all.tokens = (all.tokens - 1.0).max(0.0);
        let mine_wait = mine.wait(self.per_client, self.period);
        let all_wait = all.wait(self.overall, self.period);
        let wait = mine_wait.max(all_wait);
        (!wait.is_zero()).then(|| Throttled {
            retry_after_secs: secs(wait).max(1),
            overall: !all_wait.is_zero(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn five_failures_a_minute_then_a_wait_then_one_more_try() {
        let t = LoginThrottle::new(5, 50, Duration::from_secs(60));
        let start = Instant::now();
        let a = ip("10.0.0.1");
        for n in 1..=4 {
            assert_eq!(t.check_at(a, start), Ok(()), "attempt {n}");
            assert_eq!(t.failed_at(a, start), None, "failure {n}");
        }
        assert_eq!(t.check_at(a, start), Ok(()));
        let out = t.failed_at(a, start).expect("the fifth failure throttles");
        assert_eq!(out.retry_after_secs, 12, "one token every 12 s");
        assert!(!out.overall);
        let refused = t.check_at(a, start + Duration::from_secs(5)).unwrap_err();
        assert_eq!(refused.retry_after_secs, 7);
        // Another client is not held up by this one.
        assert_eq!(t.check_at(ip("10.0.0.2"), start), Ok(()));
        // After the wait, one try again.
        assert_eq!(t.check_at(a, start + Duration::from_secs(12)), Ok(()));
    }

    #[test]
    fn failures_from_many_clients_use_up_the_overall_allowance() {
        let t = LoginThrottle::new(5, 10, Duration::from_secs(60));
        let now = Instant::now();
        let mut last = None;
        for n in 0..10u8 {
            last = t.failed_at(ip(&format!("10.0.1.{n}")), now);
        }
        assert_eq!(
            last,
            Some(Throttled {
                retry_after_secs: 6,
                overall: true
            })
        );
        let fresh = t.check_at(ip("10.0.2.1"), now).unwrap_err();
        assert!(fresh.overall);
        assert_eq!(
            t.check_at(ip("10.0.2.1"), now + Duration::from_secs(6)),
            Ok(())
        );
    }
}
