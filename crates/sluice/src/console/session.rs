//! Who is at the console: operator sessions, the login that opens one, and the checks every write passes.
//!
//! A session is opened by presenting an API key with the `admin` scope at `/login`. Its id is 32 random bytes, kept
//! here (never the key) and sent back as an `HttpOnly; SameSite=Strict` cookie (`Secure` behind TLS). Sessions live
//! in this process's memory with an absolute expiry, so a restart logs everyone out, and with replicas behind one
//! address the balancer must keep an operator on one replica (sticky sessions).
//!
//! Writes are CSRF-safe three ways: the cookie is `SameSite=Strict`, a request whose `Origin` (or
//! `Sec-Fetch-Site`) says it comes from another site is refused, and every POST carries the session's CSRF token in
//! `X-CSRF-Token`. A handler that takes [`Write`] cannot run without all three.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use rand::RngCore as _;
use subtle::ConstantTimeEq;

use super::ConsoleState;
use crate::http::ApiError;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "sluice_session";
/// How long a session lasts from login, whatever happens in it.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// The header every console write carries the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Clone)]
struct Session {
    operator: String,
    csrf: String,
    expires: Instant,
}

/// The open sessions of this process.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// Opens a session for the key named `operator`; returns its id.
    pub fn open(&self, operator: &str) -> String {
        let id = random_token();
        let session = Session {
            operator: operator.to_string(),
            csrf: random_token(),
            expires: Instant::now() + SESSION_TTL,
        };
        if let Ok(mut map) = self.0.lock() {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
            map.insert(id.clone(), session);
        }
        id
    }

    pub fn close(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }

    fn get(&self, id: &str) -> Option<Session> {
        let map = self.0.lock().ok()?;
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// Whether session `id` is still open (the live stream ends when it is not).
    pub fn is_open(&self, id: &str) -> bool {
        self.get(id).is_some()
    }
}

/// An operator whose session cookie is valid.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The name of the API key they logged in with: the audit log's actor for what they do here.
    pub name: String,
    pub csrf: String,
    pub session_id: String,
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Operator {
    /// The operator of the session named by the request's cookie, if it is open.
    pub fn of(state: &ConsoleState, headers: &HeaderMap) -> Option<Operator> {
        let id = cookie_value(headers, COOKIE_NAME)?;
        let s = state.sessions.get(id)?;
        Some(Operator {
            name: s.operator,
            csrf: s.csrf,
            session_id: id.to_string(),
        })
    }
}

impl FromRequestParts<Arc<ConsoleState>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ConsoleState>,
    ) -> Result<Self, Self::Rejection> {
        Operator::of(state, &parts.headers).ok_or_else(|| {
            ApiError::unauthorized("no console session (or it expired): log in at /login")
        })
    }
}

/// Refuses a request that another site sent: an `Origin` that is not this host, or `Sec-Fetch-Site: cross-site`.
/// A request without `Origin` (not from a browser, or a same-origin GET) passes this check.
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let forbidden = |message: String| ApiError::new(StatusCode::FORBIDDEN, "cross_origin", message);
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err(forbidden(
            "cross-site request refused: the console only takes writes from its own pages".into(),
        ));
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let host_of_origin = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    if host.is_empty() || host_of_origin != Some(host) {
        return Err(forbidden(format!(
            "cross-origin request refused: Origin {origin:?} is not this console's ({host:?})"
        )));
    }
    Ok(())
}

/// An operator's write: the session is open, the request comes from this origin, and it carries the session's CSRF
/// token in `X-CSRF-Token`.
#[derive(Debug, Clone)]
pub struct Write(pub Operator);

impl FromRequestParts<Arc<ConsoleState>> for Write {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ConsoleState>,
    ) -> Result<Self, Self::Rejection> {
        same_origin(&parts.headers)?;
        let op = Operator::from_request_parts(parts, state).await?;
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if presented.is_empty() || !bool::from(presented.ct_eq(op.csrf.as_bytes())) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token header: reload the console and try again",
            ));
        }
        Ok(Write(op))
    }
}

/// The `Set-Cookie` value that opens (`Some(id)`) or ends (`None`) a session.
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_this_hosts_origin_may_write() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("host", "127.0.0.1:8080")], true),
            (
                &[
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://127.0.0.1:8080"),
                ],
                true,
            ),
            (
                &[("host", "ops.example"), ("origin", "https://ops.example")],
                true,
            ),
            (
                &[
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://evil.example"),
                ],
                false,
            ),
            (
                &[
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://127.0.0.1:9090"),
                ],
                false,
            ),
            (&[("host", "127.0.0.1:8080"), ("origin", "null")], false),
            (
                &[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")],
                false,
            ),
        ];
        for (h, ok) in cases {
            assert_eq!(same_origin(&headers(h)).is_ok(), *ok, "{h:?}");
        }
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_behind_tls() {
        let c = set_cookie(Some("abc"), true);
        for part in [
            "sluice_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Secure",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie(Some("abc"), false).contains("Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_closed() {
        let s = Sessions::default();
        let id = s.open("ops-admin");
        assert!(s.is_open(&id));
        assert_eq!(s.get(&id).map(|s| s.operator), Some("ops-admin".into()));
        s.close(&id);
        assert!(!s.is_open(&id));
        assert!(!s.is_open("not-a-session"));
    }
}
