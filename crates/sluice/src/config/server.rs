//! `[server]`: where the API listens, its request limits and log format. The one check is a warning: a listen
//! address other machines reach, with no TLS-terminating proxy said to stand in front.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{line_of, Problem};

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// API requests handled at once; more get 503 with Retry-After at once instead of queueing.
    pub max_in_flight: usize,
    /// Requests without an API key (hooks, GitHub and GitLab webhooks) handled at once, in a pool of their own so
    /// that slow or hostile unauthenticated clients cannot take the slots of authenticated ones.
    pub max_in_flight_unauthenticated: usize,
    /// Open connections at once; past it a new connection is closed at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, also while a kept-alive connection waits for its next one.
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers are in; slower gets 408.
    pub body_timeout_ms: u64,
    pub log_format: LogFormat,
    /// A TLS-terminating proxy or load balancer stands in front, so a non-loopback `listen` is not plain HTTP to
    /// the world. Without it such a `listen` earns a warning.
    pub behind_tls_proxy: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            max_in_flight: 1024,
            max_in_flight_unauthenticated: 256,
            max_connections: 4096,
            header_timeout_ms: 30_000,
            body_timeout_ms: 10_000,
            log_format: LogFormat::Pretty,
            behind_tls_proxy: false,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The warning a plain-HTTP listen address reachable from other machines earns, on the line of its `listen`.
pub(super) fn check(raw: &ServerConfig, text: &str) -> Option<Problem> {
    let listen = raw.listen;
    if listen.ip().is_loopback() || raw.behind_tls_proxy {
        return None;
    }
    Some(Problem {
        line: text
            .match_indices("listen")
            .find(|(at, _)| text[..*at].rsplit('\n').next().is_some_and(|pre| pre.trim().is_empty()))
            .map(|(at, _)| line_of(text, at)),
        message: format!(
            "server.listen {listen} is reachable from other machines over plain HTTP: API keys, \
             Slack's requests and alert contents would cross the network unencrypted"
        ),
        fix: "put a TLS-terminating proxy or load balancer in front and set server.behind_tls_proxy = true, \
              or listen on 127.0.0.1"
            .into(),
        warning: true,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::parse;

    /// Regression (issue 15, defect 8): a listen address other machines reach, with nothing said of TLS in front.
    #[test]
    fn regression_a_non_loopback_listen_without_tls_in_front_earns_a_warning() {
        let warnings = |text: &str| {
            let text = format!("{text}[routing]\ndefault = {{ channels = [\"ops\"] }}\n");
            match parse(&text) {
                Ok(c) => c.warnings,
                Err(p) => panic!("{p:?}"),
            }
        };
        let w = warnings("# the API\n[server]\nlisten = \"0.0.0.0:8080\"\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].line, w[0].warning), (Some(3), true), "{w:?}");
        assert!(w[0].message.contains("plain HTTP"), "{w:?}");
        assert!(w[0].fix.contains("behind_tls_proxy"), "{w:?}");
        assert!(
            warnings("[server]\nlisten = \"0.0.0.0:8080\"\nbehind_tls_proxy = true\n").is_empty()
        );
        assert!(warnings("[server]\nlisten = \"127.0.0.1:8080\"\n").is_empty());
        assert!(warnings("[server]\nlisten = \"[::1]:8080\"\n").is_empty());
    }
}
