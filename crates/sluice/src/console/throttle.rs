//! The login throttle: failed console logins are counted in the database (`console_login_failures`), per client
//! address and for everyone, over a sliding window (`[console]`, `config/console.rs`: 5 per address and 50 in all
//! per 15 minutes by default). Every replica counts the same rows, and a restart forgets none of them.
//!
//! A login attempt is noted in the store **before** its key is checked, and the counts read after it include every
//! attempt noted so far on any replica, so guesses sent at once cannot all slip under the limit. Past either limit
//! the attempt is refused with 429 and a `Retry-After` lasting until the oldest counted failure leaves the window,
//! whatever the key (so a throttled guesser learns nothing), and the refused attempt is forgotten (waiting is enough).
//! A wrong key leaves its row as a failure; a right one clears its own address's failures only.
//!
//! The decisions here are pure functions of the counts and the time.

use sluice_store::LoginFailures;

use crate::config::console::ConsoleConfig;

/// A throttled attempt: which limit, and how long to wait (whole seconds, at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
    /// Whether everyone's allowance ran out, not only this client's.
    pub overall: bool,
}

impl Throttled {
    /// The `limit` label of `sluice_console_login_refused_total`.
    pub fn limit(&self) -> &'static str {
        if self.overall {
            "total"
        } else {
            "per_client"
        }
    }
}

fn wait_secs(oldest_ms: Option<i64>, window_ms: i64, now_ms: i64) -> u64 {
    let until = oldest_ms.unwrap_or(now_ms).saturating_add(window_ms);
    let ms = until.saturating_sub(now_ms).max(0) as u64;
    ms.div_ceil(1000).max(1)
}

/// Whether the attempt just noted (counted in `f`) may have its key checked. Past a limit, the wait lasts until the
/// oldest failure behind that limit leaves the window (the longer wait when both are past).
pub fn admit(c: &ConsoleConfig, f: &LoginFailures, now_ms: i64) -> Result<(), Throttled> {
    over(c, f, now_ms, 1)
}

/// After the noted attempt failed: whether it used up an allowance (the next attempt would be refused), the
/// moment worth auditing.
pub fn used_up(c: &ConsoleConfig, f: &LoginFailures, now_ms: i64) -> Option<Throttled> {
    over(c, f, now_ms, 0).err()
}

/// `Err` when `f`'s counts are more than `slack` past a limit.
fn over(c: &ConsoleConfig, f: &LoginFailures, now_ms: i64, slack: u64) -> Result<(), Throttled> {
    let mine = f.client >= u64::from(c.login_failures_per_client) + slack;
    let all = f.total >= u64::from(c.login_failures_total) + slack;
    let mut wait = 0;
    if mine {
        wait = wait_secs(f.client_oldest_ms, c.login_window_ms, now_ms);
    }
    if all {
        wait = wait.max(wait_secs(f.total_oldest_ms, c.login_window_ms, now_ms));
    }
    if mine || all {
        Err(Throttled {
            retry_after_secs: wait,
            overall: all,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn counted(client: u64, client_oldest: i64, total: u64, total_oldest: i64) -> LoginFailures {
        LoginFailures {
            attempt_id: 1,
            client,
            client_oldest_ms: Some(client_oldest),
            total,
            total_oldest_ms: Some(total_oldest),
        }
    }

    #[test]
    fn a_client_past_its_limit_waits_until_its_oldest_failure_leaves_the_window() {
        let c = ConsoleConfig::default(); // 5 per client, 50 in all, 15 minutes
        let t = T0 + 60_000;
        // (client count incl. this attempt, total count incl. it) → the decision.
        let table: &[(u64, u64, Result<(), Throttled>)] = &[
            (1, 1, Ok(())),
            (5, 5, Ok(())),
            (
                6,
                6,
                Err(Throttled {
                    retry_after_secs: 840,
                    overall: false,
                }),
            ),
            (1, 50, Ok(())),
            (
                1,
                51,
                Err(Throttled {
                    retry_after_secs: 870,
                    overall: true,
                }),
            ),
            (
                6,
                51,
                Err(Throttled {
                    retry_after_secs: 870,
                    overall: true,
                }),
            ),
        ];
        for (client, total, want) in table {
            // The client's oldest failure a minute old, everyone's oldest half a minute.
            let f = counted(*client, T0, *total, T0 + 30_000);
            assert_eq!(admit(&c, &f, t), *want, "{client} / {total}");
        }
        assert_eq!(
            Throttled {
                retry_after_secs: 1,
                overall: true
            }
            .limit(),
            "total"
        );
    }

    #[test]
    fn the_failure_that_uses_up_an_allowance_says_how_long_to_wait() {
        let c = ConsoleConfig {
            login_failures_per_client: 2,
            login_failures_total: 100,
            login_window_ms: 2_000,
        };
        assert_eq!(used_up(&c, &counted(1, T0, 1, T0), T0), None);
        assert_eq!(
            used_up(&c, &counted(2, T0, 2, T0), T0 + 500),
            Some(Throttled {
                retry_after_secs: 2,
                overall: false
            }),
            "1.5 s rounds up"
        );
        // Never less than a second, even at the window's edge.
        assert_eq!(
            admit(&c, &counted(3, T0, 3, T0), T0 + 2_000).map_err(|t| t.retry_after_secs),
            Err(1)
        );
    }
}
