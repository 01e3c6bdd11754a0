//! [`Secret`]: a string that must never reach a log line (bot tokens, signing secrets,
//! webhook URLs, client secrets).
//!
//! `Debug` and `Display` both print `Secret(***)`, so a secret inside a config struct that is
//! logged with `{:?}`, or inside an error, stays hidden. The only way to the value is
//! [`Secret::expose`], which is easy to grep for.

use serde::Deserialize;
use std::fmt;

/// A secret string. Printing it never shows the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the one place that must send it (an HTTP header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string (usually a missing environment variable).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_never_shows_the_value() {
        let s = Secret::new("xoxb-123-abc");
        assert_eq!(format!("{s}"), "Secret(***)");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            token: Secret,
        }
        let logged = format!("{:?}", Config { token: s.clone() });
        assert!(!logged.contains("xoxb"), "{logged}");
        assert_eq!(s.expose(), "xoxb-123-abc");
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        let s: Secret = serde_json::from_str("\"shh\"").unwrap();
        assert_eq!(s.expose(), "shh");
    }
}
