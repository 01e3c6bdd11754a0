//! [`Limiter`]: the client-side rate limiter the dispatcher asks before every Slack call, so
//! that Slack never has to answer 429.
//!
//! Calls are keyed by [`RateKey`]: chat.postMessage per *channel* (Slack's rule: about 1/s per
//! channel, bursts tolerated), every other method per workspace and method, incoming webhooks
//! per hook. chat.postMessage additionally passes a workspace-wide ceiling. Rates come from
//! [`sluice_slack_wire::tiers::our_limit`], the one table of them.
//!
//! Each key is a GCRA cell (a token bucket stored as one "theoretical arrival time"). It is
//! written here rather than taken from `governor` because the dispatcher and its tests pass
//! the clock in as a plain `Instant` per call, each key has its own rate (the tier of its
//! method), and a 429 must be able to push one key's next slot to Slack's `Retry-After`;
//! governor ties a limiter to one quota and its own clock type and has no way to penalise a
//! key. The cell is about twenty lines.
//!
//! Memory stays bounded: a cell whose arrival time has passed behaves exactly like a key never
//! seen, so such cells are dropped in periodic sweeps without changing any decision.

use sluice_slack_wire::tiers::{self, Rate, RateClass};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a Slack call is rate-limited by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// chat.postMessage into one channel.
    Channel { team: String, channel: String },
    /// Any other Web API method, per workspace.
    Method { team: String, method: String },
    /// One incoming-webhook URL (an opaque id for it, never the URL itself: it is a secret).
    Webhook { hook: String },
}

impl RateKey {
    /// The key for calling `method` in workspace `team`; `channel` matters only for
    /// chat.postMessage, the one method Slack limits per channel.
    pub fn for_call(team: &str, method: &str, channel: Option<&str>) -> RateKey {
        match (tiers::rate_class(method), channel) {
            (RateClass::PerChannel, Some(channel)) => RateKey::Channel {
                team: team.to_owned(),
                channel: channel.to_owned(),
            },
            _ => RateKey::Method {
                team: team.to_owned(),
                method: method.to_owned(),
            },
        }
    }

    /// The rate this key is held to.
    pub fn rate(&self) -> Rate {
        match self {
            RateKey::Channel { .. } => tiers::our_limit(RateClass::PerChannel),
            RateKey::Method { method, .. } => tiers::our_limit(tiers::rate_class(method)),
            RateKey::Webhook { .. } => tiers::our_limit(RateClass::Webhook),
        }
    }
}

/// Internal key: the per-channel keys plus each workspace's chat.postMessage ceiling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Cell {
    Key(RateKey),
    WorkspacePosts(String),
}

/// Sweep idle cells at least this often (measured on the caller's clock).
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Also sweep when the map grows past this many cells (then past twice what survived).
const MIN_HIGH_WATER: usize = 1024;

/// Client-side limiter over all workspaces, channels and methods. Cheap to clone (clones
/// share state); all methods take `&self`.
#[derive(Clone, Debug)]
pub struct Limiter {
    state: Arc<Mutex<State>>,
    /// The workspace-wide chat.postMessage ceiling (it differs between workspaces).
    post_message_workspace: Rate,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::with_post_message_workspace_limit(tiers::our_post_message_workspace_limit())
    }
}

#[derive(Debug, Default)]
struct State {
    /// Per cell, the GCRA theoretical arrival time: the cell is "full" (whole burst available)
    /// when it is at or before now.
    tat: HashMap<Cell, Instant>,
    last_sweep: Option<Instant>,
    high_water: usize,
}

/// GCRA: with emission interval `t` and burst `b`, a call at `now` is allowed when
/// `tat <= now + t*(b-1)`; allowing it moves `tat` to `max(tat, now) + t`.
fn check(tat: Option<Instant>, rate: Rate, now: Instant) -> Result<Instant, Instant> {
    let interval = rate.interval();
    let tolerance = interval * rate.burst.max(1).saturating_sub(1);
    let tat = tat.map_or(now, |t| t.max(now));
    let ahead = tat.saturating_duration_since(now);
    if ahead > tolerance {
        Err(now + (ahead - tolerance))
    } else {
        Ok(tat + interval)
    }
}

impl Limiter {
    /// A limiter using [`tiers::our_limit`] for every key and
    /// [`tiers::our_post_message_workspace_limit`] across each workspace's channels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Like [`Limiter::new`], with a different workspace-wide chat.postMessage ceiling (from
    /// configuration: some workspaces are granted more, some operators want to keep less).
    pub fn with_post_message_workspace_limit(rate: Rate) -> Self {
        Limiter {
            state: Arc::default(),
            post_message_workspace: Rate {
                calls: rate.calls.max(1),
                burst: rate.burst.max(1),
                ..rate
            },
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a cell half-written (each update is a
        // single insert), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one call's worth of budget for `key` at `now`, or says when to try again.
    /// Nothing is taken when the answer is `Err`.
    pub fn try_acquire(&self, key: &RateKey, now: Instant) -> Result<(), Instant> {
        let mut state = self.lock();
        state.maybe_sweep(now);
        let cell = Cell::Key(key.clone());
        let own = check(state.tat.get(&cell).copied(), key.rate(), now);
        let workspace = match key {
            RateKey::Channel { team, .. } => {
                let ws = Cell::WorkspacePosts(team.clone());
                let decision = check(
                    state.tat.get(&ws).copied(),
                    self.post_message_workspace,
                    now,
                );
                Some((ws, decision))
            }
            _ => None,
        };
        match (own, workspace) {
            (Err(a), Some((_, Err(b)))) => Err(a.max(b)),
            (Err(a), _) | (Ok(_), Some((_, Err(a)))) => Err(a),
            (Ok(tat), ws) => {
                state.tat.insert(cell, tat);
                if let Some((ws, Ok(ws_tat))) = ws {
                    state.tat.insert(ws, ws_tat);
                }
                Ok(())
            }
        }
    }

    /// After a 429 for `key`: nothing for this key before `until`, and then no burst, only
    /// the sustained rate, since Slack has just told us we were over. Other keys are unaffected.
    pub fn penalize(&self, key: &RateKey, until: Instant) {
        let rate = key.rate();
        let tolerance = rate.interval() * rate.burst.max(1).saturating_sub(1);
        let mut state = self.lock();
        let cell = Cell::Key(key.clone());
        let penalised = until + tolerance;
        let tat = state
            .tat
            .get(&cell)
            .map_or(penalised, |t| (*t).max(penalised));
        state.tat.insert(cell, tat);
    }

    /// Number of keys currently remembered (for tests and a gauge).
    pub fn tracked_keys(&self) -> usize {
        self.lock().tat.len()
    }
}

impl State {
    fn maybe_sweep(&mut self, now: Instant) {
        let due = match self.last_sweep {
            None => {
                self.last_sweep = Some(now);
                false
            }
            Some(last) => now.saturating_duration_since(last) >= SWEEP_EVERY,
        };
        if due || self.tat.len() >= self.high_water.max(MIN_HIGH_WATER) {
            // A cell whose arrival time has passed is indistinguishable from a new key.
            self.tat.retain(|_, tat| *tat > now);
            self.last_sweep = Some(now);
            self.high_water = (self.tat.len() * 2).max(MIN_HIGH_WATER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(c: &str) -> RateKey {
        RateKey::for_call("T1", "chat.postMessage", Some(c))
    }

    /// Acquires as fast as allowed from `start` for `span`, returning the offsets of each grant.
    fn grants(l: &Limiter, key: &RateKey, start: Instant, span: Duration) -> Vec<Duration> {
        let mut out = Vec::new();
        let mut now = start;
        while now < start + span {
            match l.try_acquire(key, now) {
                Ok(()) => out.push(now - start),
                Err(next) => {
                    assert!(next > now, "retry time must be in the future");
                    now = next;
                }
            }
        }
        out
    }

    #[test]
    fn keys_for_calls() {
        assert_eq!(
            channel("C1"),
            RateKey::Channel {
                team: "T1".into(),
                channel: "C1".into()
            }
        );
        assert_eq!(
            RateKey::for_call("T1", "chat.update", Some("C1")),
            RateKey::Method {
                team: "T1".into(),
                method: "chat.update".into()
            }
        );
        assert_eq!(
            RateKey::for_call("T1", "chat.postMessage", None),
            RateKey::Method {
                team: "T1".into(),
                method: "chat.postMessage".into()
            }
        );
    }

    #[test]
    fn channel_bursts_then_one_per_second() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let burst = tiers::our_limit(RateClass::PerChannel).burst as usize;
        let got = grants(&l, &channel("C1"), t0, Duration::from_millis(10_500));
        assert!(got[..burst].iter().all(|d| d.is_zero()), "{got:?}");
        for pair in got[burst..].windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_secs(1), "{got:?}");
        }
        // Over 10.5 s: the burst plus one per second after the first.
        assert_eq!(got.len(), burst + 10, "{got:?}");
    }

    #[test]
    fn channels_are_independent() {
        let l = Limiter::new();
        let t0 = Instant::now();
        while l.try_acquire(&channel("C1"), t0).is_ok() {}
        assert!(l.try_acquire(&channel("C2"), t0).is_ok());
        assert!(l
            .try_acquire(&RateKey::for_call("T2", "chat.postMessage", Some("C1")), t0)
            .is_ok());
    }

    #[test]
    fn refusal_consumes_nothing() {
        let l = Limiter::new();
        let t0 = Instant::now();
        while l.try_acquire(&channel("C1"), t0).is_ok() {}
        let next = l.try_acquire(&channel("C1"), t0).unwrap_err();
        for _ in 0..100 {
            assert_eq!(l.try_acquire(&channel("C1"), t0), Err(next));
        }
        assert_eq!(l.try_acquire(&channel("C1"), next), Ok(()));
    }

    #[test]
    fn penalize_blocks_only_that_key_then_no_burst() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(30);
        l.penalize(&channel("C1"), until);
        assert_eq!(l.try_acquire(&channel("C1"), t0), Err(until));
        assert_eq!(
            l.try_acquire(&channel("C1"), until - Duration::from_millis(1)),
            Err(until)
        );
        assert!(l.try_acquire(&channel("C2"), t0).is_ok());
        assert!(l
            .try_acquire(&RateKey::for_call("T1", "chat.update", None), t0)
            .is_ok());
        assert_eq!(l.try_acquire(&channel("C1"), until), Ok(()));
        assert_eq!(
            l.try_acquire(&channel("C1"), until),
            Err(until + Duration::from_secs(1)),
            "after a 429 the key resumes at the sustained rate, without a burst"
        );
    }

    #[test]
    fn penalize_never_shortens_an_existing_wait() {
        let l = Limiter::new();
        let t0 = Instant::now();
        l.penalize(&channel("C1"), t0 + Duration::from_secs(60));
        l.penalize(&channel("C1"), t0 + Duration::from_secs(5));
        assert_eq!(
            l.try_acquire(&channel("C1"), t0 + Duration::from_secs(10)),
            Err(t0 + Duration::from_secs(60))
        );
    }

    #[test]
    fn tier_3_spacing() {
        let l = Limiter::new();
        let key = RateKey::for_call("T1", "chat.update", Some("C1"));
        let rate = tiers::our_limit(RateClass::Tier(3));
        let t0 = Instant::now();
        let got = grants(&l, &key, t0, Duration::from_secs(60));
        let burst = rate.burst as usize;
        assert!(got[..burst].iter().all(|d| d.is_zero()));
        for pair in got[burst..].windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(1200));
        }
        // 50/min sustained plus the burst head start, never more.
        assert!(got.len() <= 50 + burst, "{}", got.len());
    }

    #[test]
    fn tier_1_method_waits_a_minute() {
        let l = Limiter::new();
        let key = RateKey::for_call("T1", "apps.connections.open", None);
        let t0 = Instant::now();
        for _ in 0..key.rate().burst {
            assert_eq!(l.try_acquire(&key, t0), Ok(()));
        }
        assert_eq!(l.try_acquire(&key, t0), Err(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn workspace_ceiling_applies_across_channels() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let ws = tiers::our_post_message_workspace_limit();
        // Fresh channels at one instant: only the workspace burst gets through.
        let granted = (0..100)
            .filter(|i| l.try_acquire(&channel(&format!("C{i}")), t0).is_ok())
            .count();
        assert_eq!(granted, ws.burst as usize);
        // Over a minute, many channels together stay within the workspace rate.
        let mut now = t0;
        let mut total = granted;
        let mut i = 0u32;
        while now < t0 + Duration::from_secs(60) {
            i += 1;
            match l.try_acquire(&channel(&format!("D{}", i % 1000)), now) {
                Ok(()) => total += 1,
                Err(next) => now = next,
            }
        }
        assert!(total <= (ws.calls + ws.burst) as usize, "{total}");
        assert!(
            total >= ws.calls as usize,
            "ceiling is a ceiling, not a throttle: {total}"
        );
        // Another workspace is not affected.
        assert!(l
            .try_acquire(&RateKey::for_call("T2", "chat.postMessage", Some("C1")), t0)
            .is_ok());
    }

    #[test]
    fn workspace_ceiling_is_configurable() {
        let l = Limiter::with_post_message_workspace_limit(Rate {
            calls: 60,
            period: Duration::from_secs(60),
            burst: 3,
        });
        let t0 = Instant::now();
        let granted = (0..10)
            .filter(|i| l.try_acquire(&channel(&format!("C{i}")), t0).is_ok())
            .count();
        assert_eq!(granted, 3);
        assert_eq!(
            l.try_acquire(&channel("C9"), t0),
            Err(t0 + Duration::from_secs(1))
        );
        // Another workspace is not affected.
        assert!(l
            .try_acquire(&RateKey::for_call("T2", "chat.postMessage", Some("C1")), t0)
            .is_ok());
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let l = Limiter::new();
        let t0 = Instant::now();
        // A stream of one-off keys (say, a new webhook every 10 ms): memory stays bounded
        // because keys idle past their interval are swept.
        for i in 0..5000u32 {
            let now = t0 + Duration::from_millis(10) * i;
            assert!(l
                .try_acquire(
                    &RateKey::Webhook {
                        hook: format!("H{i}")
                    },
                    now
                )
                .is_ok());
            assert!(
                l.tracked_keys() <= MIN_HIGH_WATER,
                "{i}: {}",
                l.tracked_keys()
            );
        }
        // And after a quiet spell the periodic sweep forgets everything idle.
        let later = t0 + Duration::from_secs(120);
        assert!(l.try_acquire(&channel("C1"), later).is_ok());
        assert_eq!(l.tracked_keys(), 2, "the channel and its workspace ceiling");
    }

    #[test]
    fn forgetting_a_key_changes_no_decision() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let key = channel("C1");
        while l.try_acquire(&key, t0).is_ok() {}
        // Long idle: the sweep drops the cell; the key gets its full burst back, as it would anyway.
        let later = t0 + Duration::from_secs(3600);
        let burst = tiers::our_limit(RateClass::PerChannel).burst;
        for _ in 0..burst {
            assert_eq!(l.try_acquire(&key, later), Ok(()));
        }
        assert!(l.try_acquire(&key, later).is_err());
    }
}
