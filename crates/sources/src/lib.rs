//! Source adapters: each turns one monitoring or CI system's webhook body into Sluice
//! [`Event`]s through the [`Source`] trait. [`by_name`] builds one from its configured name.
//!
//! The crate is pure: no IO, no clock, no HTTP framework. The binary mounts the endpoints and
//! hands each adapter the raw body bytes and the request headers as a [`Headers`] (a plain
//! list of name/value pairs, so this crate does not depend on axum or `http`). Signature and
//! token checks that the source itself defines (GitHub's `X-Hub-Signature-256`, GitLab's
//! `X-Gitlab-Token`) happen here, over the raw bytes, before anything is parsed; generic
//! bearer/basic auth in front of Alertmanager or Grafana is the binary's job.
//!
//! Every [`Event`] an adapter returns passes `sluice_core::parse_events`' limits: long text is
//! cut with "…", surplus labels, fields and links are dropped with a note, and links that are
//! not absolute http(s) URLs are left out (see [`shape`]). Text stays raw; the renderer
//! escapes it.
//!
//! Adding a source is a new folder with a `mod.rs` that implements [`Source`], plus one line
//! in [`SOURCES`].

use std::fmt;

use sluice_core::Event;
use sluice_slack_wire::Secret;

pub mod alertmanager;
mod alerts;
pub mod github;
pub mod gitlab;
pub mod grafana;
mod payload;
pub mod shape;
mod verify;

#[cfg(test)]
mod testutil;

/// Why a webhook request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The request's signature or token is missing or wrong (or no secret is configured for a
    /// source that needs one). Answer 401 and do not parse the body.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The body is not what the source sends: `field` is a JSON path such as
    /// `alerts[2].labels` (or a header name, or `""` for the whole body) and `message` says
    /// what was expected.
    #[error("{}", if .field.is_empty() { .message.clone() } else { format!("{}: {}", .field, .message) })]
    BadPayload { field: String, message: String },
    /// A well-formed request in a shape this adapter does not read (an old payload version).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl SourceError {
    /// The HTTP status the binary should answer with: 401, 400 or 422.
    pub fn http_status(&self) -> u16 {
        match self {
            SourceError::Unauthorized(_) => 401,
            SourceError::BadPayload { .. } => 400,
            SourceError::Unsupported(_) => 422,
        }
    }

    pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        SourceError::BadPayload {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What one webhook delivery became.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// The events to ingest, in payload order. May be empty.
    pub events: Vec<Event>,
    /// Why (part of) the delivery produced no event, for the binary to log and answer 2xx
    /// with: `"ignored event type \"push\""`, a ping, an in-progress run. `None` when every
    /// part of the delivery became an event.
    pub ignored: Option<String>,
}

impl Parsed {
    pub(crate) fn events(events: Vec<Event>) -> Self {
        Parsed {
            events,
            ignored: None,
        }
    }

    pub(crate) fn ignored(reason: impl Into<String>) -> Self {
        Parsed {
            events: Vec::new(),
            ignored: Some(reason.into()),
        }
    }
}

/// One kind of webhook sender.
pub trait Source {
    /// The configured name (`"github"`), also the `source` of every event it makes.
    fn name(&self) -> &'static str;
    /// Checks the request (where the source signs it) and converts the body.
    fn parse(&self, headers: &Headers, body: &[u8]) -> Result<Parsed, SourceError>;
}

/// Request headers as name/value pairs. Names compare case-insensitively, as HTTP says.
///
/// From an `http::HeaderMap`, skipping values that are not UTF-8:
/// `map.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect::<Headers>()`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Adds one header (builder style, handy in tests).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.push((name.into(), value.into()));
        self
    }

    /// The first value of `name`, compared case-insensitively, with surrounding blanks trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Header values can hold tokens (`X-Gitlab-Token`, `Authorization`): never print them.
impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| format!("{k}: ***")))
            .finish()
    }
}

/// A registered source: its name, whether it needs a secret, and how to build it.
pub struct SourceInfo {
    /// The name used in config and in the endpoint path.
    pub name: &'static str,
    /// True when the adapter refuses every request unless a secret is configured (the
    /// config check should say so at start-up rather than at the first delivery).
    pub needs_secret: bool,
    build: fn(Option<Secret>) -> Box<dyn Source + Send + Sync>,
}

/// Every source Sluice knows. Adding one is one line here.
pub const SOURCES: &[SourceInfo] = &[
    SourceInfo {
        name: alertmanager::NAME,
        needs_secret: false,
        build: |_| Box::new(alertmanager::Alertmanager),
    },
    SourceInfo {
        name: grafana::NAME,
        needs_secret: false,
        build: |_| Box::new(grafana::Grafana),
    },
    SourceInfo {
        name: github::NAME,
        needs_secret: true,
        build: |s| Box::new(github::GitHub::new(s)),
    },
    SourceInfo {
        name: gitlab::NAME,
        needs_secret: true,
        build: |s| Box::new(gitlab::GitLab::new(s)),
    },
];

/// The adapter called `name` (`"alertmanager"`, `"grafana"`, `"github"`, `"gitlab"`), or
/// `None` for an unknown name. `secret` is GitHub's webhook secret or GitLab's token; the
/// alert sources ignore it. An empty secret counts as none, and a source that needs one then
/// answers every request with [`SourceError::Unauthorized`] (fail closed).
pub fn by_name(name: &str, secret: Option<Secret>) -> Option<Box<dyn Source + Send + Sync>> {
    let secret = secret.filter(|s| !s.is_empty());
    SOURCES
        .iter()
        .find(|s| s.name == name)
        .map(|s| (s.build)(secret))
}

/// The names [`by_name`] accepts, for config errors ("accepted: alertmanager, grafana, …").
pub fn names() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_source_is_built_under_its_own_name() {
        for name in names() {
            let source = by_name(name, Some(Secret::new("s"))).expect(name);
            assert_eq!(source.name(), name);
        }
        assert!(by_name("jenkins", None).is_none());
        assert_eq!(
            names().collect::<Vec<_>>(),
            ["alertmanager", "grafana", "github", "gitlab"]
        );
    }

    #[test]
    fn headers_are_case_insensitive_and_never_printed() {
        let h: Headers = [("x-gitlab-token", " s3cr3t ")].into_iter().collect();
        assert_eq!(h.get("X-Gitlab-Token"), Some("s3cr3t"));
        assert_eq!(h.get("X-Other"), None);
        assert!(!format!("{h:?}").contains("s3cr3t"), "{h:?}");
    }

    #[test]
    fn sources_that_sign_fail_closed_without_a_secret() {
        for info in SOURCES.iter().filter(|s| s.needs_secret) {
            for secret in [None, Some(Secret::new(""))] {
                let source = by_name(info.name, secret).expect(info.name);
                let err = source.parse(&Headers::new(), b"{}").unwrap_err();
                assert!(
                    matches!(&err, SourceError::Unauthorized(m) if m.contains("no secret is configured")),
                    "{}: {err}",
                    info.name
                );
                assert_eq!(err.http_status(), 401);
            }
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = SourceError::bad("alerts[2].labels", "expected an object, got a string");
        assert_eq!(
            e.to_string(),
            "alerts[2].labels: expected an object, got a string"
        );
        assert_eq!(e.http_status(), 400);
        assert_eq!(SourceError::bad("", "empty").to_string(), "empty");
    }
}
