//! Who is at the console: operator sessions, the login that opens one, and the checks every write passes.
//!
//! A session is opened by presenting an API key with the `admin` scope at `/login`. Its token is 32 random bytes,
//! sent back as an `HttpOnly; SameSite=Strict` cookie (`Secure` behind TLS). The store keeps only the token's
//! SHA-256 (`ConsoleStore::open_console_session`), the key's name and an absolute expiry: sessions survive a restart,
//! every replica sharing the database honours them (no sticky sessions), and reading the table opens none. Logging
//! out deletes the row.
//!
//! Writes are CSRF-safe three ways: the cookie is `SameSite=Strict`, a request whose `Origin` (or
//! `Sec-Fetch-Site`) says it comes from another site is refused, and every POST carries the session's CSRF token in
//! `X-CSRF-Token`. The CSRF token is derived from the session token (a different hash of it), so it is stored
//! nowhere either. A handler that takes [`Write`] cannot run without all three.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use rand::RngCore as _;
use sluice_store::{Store, StoreError};
use subtle::ConstantTimeEq;

use super::ConsoleState;
use crate::config::sha256;
use crate::http::ApiError;
use crate::state::now_ms;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "sluice_session";
/// How long a session lasts from login, whatever happens in it.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// The header every console write carries the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the store knows a session by.
fn token_hash(token: &str) -> String {
    hex::encode(sha256(
        format!("sluice-console-session\0{token}").as_bytes(),
    ))
}

/// The session's CSRF token: derived from its token, so only the cookie's holder can know it.
fn csrf_of(token: &str) -> String {
    hex::encode(sha256(format!("sluice-console-csrf\0{token}").as_bytes()))
}

/// The console's sessions, in the store.
pub struct Sessions(pub Arc<dyn Store>);

impl Sessions {
    /// Opens a session for the key named `operator`; returns its token (the cookie's value).
    pub async fn open(&self, operator: &str) -> Result<String, StoreError> {
        let token = random_token();
        let now = now_ms();
        self.0
            .open_console_session(
                &token_hash(&token),
                operator,
                now,
                now + SESSION_TTL.as_millis() as i64,
            )
            .await?;
        Ok(token)
    }

    pub async fn close(&self, token: &str) -> Result<bool, StoreError> {
        self.0.close_console_session(&token_hash(token)).await
    }

    /// The operator of session `token`, if it is open.
    async fn get(&self, token: &str) -> Result<Option<String>, StoreError> {
        // A token is 64 hex digits; anything else is no session (and costs no query).
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        Ok(self
            .0
            .console_session(&token_hash(token), now_ms())
            .await?
            .map(|s| s.operator))
    }

    /// Whether session `token` is still open (the live stream ends when it is not, or the store cannot say).
    pub async fn is_open(&self, token: &str) -> bool {
        matches!(self.get(token).await, Ok(Some(_)))
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
    pub async fn of(
        state: &ConsoleState,
        headers: &HeaderMap,
    ) -> Result<Option<Operator>, ApiError> {
        let Some(token) = cookie_value(headers, COOKIE_NAME) else {
            return Ok(None);
        };
        Ok(state.sessions.get(token).await?.map(|name| Operator {
            name,
            csrf: csrf_of(token),
            session_id: token.to_string(),
        }))
    }
}

impl FromRequestParts<Arc<ConsoleState>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ConsoleState>,
    ) -> Result<Self, Self::Rejection> {
        Operator::of(state, &parts.headers).await?.ok_or_else(|| {
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
    fn the_store_and_the_page_never_see_the_session_token_itself() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert_ne!(token_hash(&t), t);
        assert_ne!(csrf_of(&t), t);
        assert_ne!(csrf_of(&t), token_hash(&t));
        assert_eq!(csrf_of(&t), csrf_of(&t));
    }
}
