//! The operator console at `/`: a few embedded pages (plain HTML, one vanilla JS file, one CSS file; no build step)
//! over JSON endpoints under `/console/api/`, for the people who run Sluice.
//!
//! It is behind a session opened with an `admin` API key ([`session`], kept in the database; failed logins are
//! counted in the database and throttled per address and overall by [`throttle`], across replicas and restarts);
//! its JSON ([`api`]) reads the store's
//! console views (`sluice_store::ConsoleStore`) and, for writes, calls the same code the `/v1` API does (silences,
//! dead-letter replay), audited with the operator's key name. The overview is pushed every two seconds over
//! server-sent events. [`config_view`] shows the config in force, redacted.

mod api;
pub mod config_view;
pub mod session;
pub mod throttle;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::json;

use crate::http::{ApiError, Caller};
use crate::outbox::audit;
use crate::state::{now_ms, AppState};
use session::{same_origin, set_cookie, Operator, Sessions};
use sluice_store::LoginFailures;

/// What the console's handlers share: the app and the open sessions.
pub struct ConsoleState {
    pub app: Arc<AppState>,
    pub sessions: Sessions,
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The console's routes, with their state: `/`, `/login`, `/logout`, `/console/assets/*`, `/console/api/*`.
pub fn routes(app: Arc<AppState>) -> Router {
    let state = Arc::new(ConsoleState {
        sessions: Sessions(app.store.clone()),
        app,
    });
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route(
            "/console/assets/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/console/assets/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .merge(api::routes())
        .with_state(state)
}

/// Headers every console page carries: no inline script runs, nothing frames it, nothing is cached.
fn page(status: StatusCode, html: String) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it Chromium sends `Origin: null` on the console's own form posts, which the
    // same-origin check must refuse.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

async fn index(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    match Operator::of(&state, &headers).await {
        Ok(Some(_)) => page(StatusCode::OK, INDEX_HTML.to_string()),
        Ok(None) => redirect("/login"),
        Err(e) => e.into_response(),
    }
}

fn login_html(error: &str) -> String {
    // `error` is one of this module's fixed messages, never the request's text.
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(r#"<p id="login-error" class="error" role="alert">{error}</p>"#)
    };
    LOGIN_HTML.replace("<!--error-->", &error)
}

async fn login_page() -> Response {
    page(StatusCode::OK, login_html(""))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    key: String,
}

/// Whether the console is served over HTTPS: behind a TLS proxy by configuration, or as the proxy says.
fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.server.behind_tls_proxy
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The address a login comes from: the connection's peer, or behind a TLS proxy the address the proxy appended
/// to `X-Forwarded-For` (the last one: earlier ones are the client's to forge).
fn client_ip(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
    let forwarded = state
        .config
        .server
        .behind_tls_proxy
        .then(|| {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back()
        })
        .flatten();
    forwarded
        .or(peer.map(|p| p.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// A refused login: counted, audited (with how long the address is now held up, when this failure used up an
/// allowance), its noted attempt left in the store as a failure; the page says why.
async fn refused(
    state: &ConsoleState,
    client: IpAddr,
    noted: &LoginFailures,
    status: StatusCode,
    outcome: &'static str,
    message: &str,
) -> Response {
    metrics::counter!("sluice_console_logins_total", "outcome" => outcome).increment(1);
    let limits = state.app.config.get().console;
    let throttled = throttle::used_up(&limits, noted, now_ms());
    audit(
        &state.app,
        "anonymous",
        "console.login",
        "console",
        outcome,
        json!({ "via": "console", "client": client.to_string(),
                "throttled_for_secs": throttled.map(|t| t.retry_after_secs) }),
    )
    .await;
    page(status, login_html(message))
}

async fn login(
    State(state): State<Arc<ConsoleState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(e) = same_origin(&headers) {
        return e.into_response();
    }
    let client = client_ip(
        &state.app,
        &headers,
        peer.map(|Extension(ConnectInfo(a))| a),
    );
    // Noted before the key is checked: a guess racing this one on any replica counts it, and it counts theirs.
    let limits = state.app.config.get().console;
    let now = now_ms();
    let store = &state.app.store;
    let noted = match store
        .note_login_attempt(&client.to_string(), now, now - limits.login_window_ms)
        .await
    {
        Ok(n) => n,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Err(t) = throttle::admit(&limits, &noted, now) {
        // Refused attempts are not failures: waiting out the window is enough.
        if let Err(e) = store.forget_login_attempt(noted.attempt_id).await {
            tracing::warn!(error = %e, "a refused login attempt stays counted");
        }
        metrics::counter!("sluice_console_logins_total", "outcome" => "throttled").increment(1);
        metrics::counter!("sluice_console_login_refused_total", "limit" => t.limit()).increment(1);
        let who = if t.overall {
            "Too many failed logins to this Sluice"
        } else {
            "Too many failed logins from your address"
        };
        let mut r = page(
            StatusCode::TOO_MANY_REQUESTS,
            login_html(&format!(
                "{who}: try again in {} seconds.",
                t.retry_after_secs
            )),
        );
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(t.retry_after_secs));
        return r;
    }
    let caller = Caller::of_key(&state.app, form.key.trim());
    let Some(caller) = caller else {
        return refused(
            &state,
            client,
            &noted,
            StatusCode::UNAUTHORIZED,
            "unknown_key",
            "That key was refused: it is not one of this Sluice's API keys.",
        )
        .await;
    };
    if caller.require("admin").is_err() {
        return refused(
            &state,
            client,
            &noted,
            StatusCode::FORBIDDEN,
            "not_admin",
            "That key was refused: the console needs a key with the \"admin\" scope.",
        )
        .await;
    }
    metrics::counter!("sluice_console_logins_total", "outcome" => "ok").increment(1);
    // This address's failures (this attempt's row with them) are forgiven; other addresses keep theirs.
    if let Err(e) = store.clear_login_failures(&client.to_string()).await {
        tracing::warn!(error = %e, "a successful login's earlier failures stay counted");
    }
    let id = match state.sessions.open(&caller.name).await {
        Ok(id) => id,
        Err(e) => return ApiError::from(e).into_response(),
    };
    audit(
        &state.app,
        &caller.name,
        "console.login",
        "console",
        "ok",
        json!({ "via": "console" }),
    )
    .await;
    let mut r = redirect("/");
    if let Ok(v) = HeaderValue::from_str(&set_cookie(Some(&id), over_https(&state.app, &headers))) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}
