//! `[console]`: the operator console's login throttle, checked into [`ConsoleConfig`].
//!
//! ```toml
//! [console]
//! login_failures_per_client = 5   # failed logins one client address may make in the window (default 5)
//! login_failures_total = 50       # failed logins all addresses together may make in the window (default 50)
//! login_window = "15m"            # the window they are counted over, 1s to 24h (default 15m)
//! ```
//!
//! The failures are kept in the database (`console_login_failures`), so every replica and the next process count
//! the same guesses; a reload changes the limits at once.

use serde::Deserialize;
use sluice_core::duration::parse_duration_ms;
use toml::Spanned;

use super::Report;

/// `[console]` as written.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawConsole {
    pub login_failures_per_client: Option<Spanned<u32>>,
    pub login_failures_total: Option<Spanned<u32>>,
    pub login_window: Option<Spanned<String>>,
}

/// `[console]`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Failed logins one client address may make in [`Self::login_window_ms`]; the next is refused with 429.
    pub login_failures_per_client: u32,
    /// Failed logins all client addresses together may make in the window.
    pub login_failures_total: u32,
    pub login_window_ms: i64,
}

pub const DEFAULT_PER_CLIENT: u32 = 5;
pub const DEFAULT_TOTAL: u32 = 50;
pub const DEFAULT_WINDOW_MS: i64 = 15 * 60_000;
const MIN_WINDOW_MS: i64 = 1_000;
const MAX_WINDOW_MS: i64 = 24 * 3_600_000;

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            login_failures_per_client: DEFAULT_PER_CLIENT,
            login_failures_total: DEFAULT_TOTAL,
            login_window_ms: DEFAULT_WINDOW_MS,
        }
    }
}

/// Checks `[console]`; every problem goes to `p` with its line and fix (the defaults stand in for a wrong value).
pub fn check(raw: &RawConsole, p: &mut Report<'_>) -> ConsoleConfig {
    let mut c = ConsoleConfig::default();
    let mut count = |v: &Option<Spanned<u32>>, key: &str, default: u32| match v {
        Some(n) if *n.get_ref() == 0 => {
            p(
                Some(n.span()),
                format!("console.{key} is 0: no login could ever fail, so none could be tried"),
                &format!("allow at least one failure; the default is {default}"),
            );
            default
        }
        Some(n) => *n.get_ref(),
        None => default,
    };
    c.login_failures_per_client = count(
        &raw.login_failures_per_client,
        "login_failures_per_client",
        DEFAULT_PER_CLIENT,
    );
    c.login_failures_total = count(
        &raw.login_failures_total,
        "login_failures_total",
        DEFAULT_TOTAL,
    );
    if let Some(w) = &raw.login_window {
        match parse_duration_ms(w.get_ref()) {
            Ok(ms) if (MIN_WINDOW_MS..=MAX_WINDOW_MS).contains(&ms) => c.login_window_ms = ms,
            Ok(_) => p(
                Some(w.span()),
                format!(
                    "console.login_window {:?} is outside 1s to 24h",
                    w.get_ref()
                ),
                "write a duration between \"1s\" and \"24h\"; the default is \"15m\"",
            ),
            Err(e) => p(
                Some(w.span()),
                format!(
                    "console.login_window {:?} is not a duration: {e}",
                    w.get_ref()
                ),
                "write a duration such as \"15m\", \"1h\" or \"90s\"",
            ),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::super::testing::parse;
    use super::*;

    #[test]
    fn defaults_and_each_setting_read() {
        let c = parse("").unwrap();
        assert_eq!(c.console, ConsoleConfig::default());
        assert_eq!(c.console.login_window_ms, 900_000);
        let c = parse(
            "[console]\nlogin_failures_per_client = 3\nlogin_failures_total = 20\nlogin_window = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(
            c.console,
            ConsoleConfig {
                login_failures_per_client: 3,
                login_failures_total: 20,
                login_window_ms: 2_000,
            }
        );
    }

    #[test]
    fn a_wrong_window_or_limit_is_refused_with_its_line() {
        let cases = [
            ("login_window = \"500ms\"", "outside 1s to 24h"),
            ("login_window = \"2d\"", "outside 1s to 24h"),
            ("login_window = \"soon\"", "not a duration"),
            ("login_failures_per_client = 0", "is 0"),
            ("login_failures_total = 0", "is 0"),
            ("login_failures_total = -1", "invalid value"),
            ("login_failures_per_client = \"5\"", "invalid type"),
            ("login_windw = \"1m\"", "unknown field"),
        ];
        for (line, says) in cases {
            let problems = parse(&format!("[console]\n{line}\n"))
                .err()
                .unwrap_or_else(|| panic!("{line} accepted"));
            assert!(
                problems
                    .iter()
                    .any(|p| p.line == Some(2) && p.message.contains(says)),
                "{line}: {problems:?}"
            );
        }
    }
}
