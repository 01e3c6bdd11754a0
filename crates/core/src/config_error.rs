//! [`ConfigError`]: how every module of the core reports a problem in `sluice.toml`, with where it is and the fix.

use std::ops::Range;

/// A problem in the configuration (or, from [`crate::Router::check`], a warning about it): where it
/// is (a byte range in the TOML source, when known), what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (fix: {fix})")]
pub struct ConfigError {
    pub span: Option<Range<usize>>,
    pub message: String,
    pub fix: String,
}

impl ConfigError {
    pub(crate) fn new(
        span: Option<Range<usize>>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError {
            span,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// A TOML syntax or shape error (from deserializing the config file) in the same form.
    pub fn from_toml(e: &toml::de::Error) -> Self {
        ConfigError::new(
            e.span(),
            e.message().to_owned(),
            "correct the TOML at this position (see the routing section of the docs)",
        )
    }

    /// 1-based line and column of the start of the span in `source`, for messages like
    /// `sluice.toml:12:5`.
    pub fn line_col(&self, source: &str) -> Option<(usize, usize)> {
        let start = self.span.as_ref()?.start;
        let before = source.get(..start)?;
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, col))
    }
}
