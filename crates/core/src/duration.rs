//! [`parse_duration`]: the one way Sluice reads a duration someone wrote, in `sluice.toml` (a route's `group_wait`,
//! `storm.window`, …), in `POST /v1/silences` (`duration`) and on the CLI (`sluice silence add --duration`, which
//! sends it to that API).
//!
//! A duration is humantime's: numbers with units, written together (`500ms`, `90s`, `15m`, `1h30m`, `2d`). Spaces
//! are refused, so `1 hour` means the same nowhere rather than something somewhere: humantime alone would take it,
//! the silence API always refused it, and one rule for all three is the point.

use std::time::Duration;

/// How to write one, for the fix of an error.
pub const DURATION_HINT: &str = "write numbers and units without spaces: 500ms, 90s, 5m, 1h30m, 2d";

/// Reads `text` (surrounding spaces ignored). The error says why it is not a duration; the caller names where it
/// was and adds [`DURATION_HINT`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.chars().any(char::is_whitespace) {
        return Err("it has a space in it".to_string());
    }
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// [`parse_duration`] in milliseconds, saturating at `i64::MAX`.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    parse_duration(text).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each way of writing a duration means, wherever it is written.
    #[test]
    fn one_reading_of_a_duration_for_config_api_and_cli() {
        let ok: [(&str, i64); 9] = [
            ("500ms", 500),
            ("90s", 90_000),
            ("15m", 900_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("2d", 172_800_000),
            (" 1h ", 3_600_000),
            ("0s", 0),
            ("1hour", 3_600_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_duration_ms(text), Ok(ms), "{text:?}");
        }
        assert_eq!(
            parse_duration("1 hour").unwrap_err(),
            "it has a space in it"
        );
        for text in ["1 hour", "1h 30m", "", "h", "90", "ten minutes", "-5m"] {
            assert!(parse_duration_ms(text).is_err(), "{text:?}");
        }
    }
}
