//! The operator console at `/`: a few embedded pages (plain HTML, one vanilla JS file, one CSS file; no build step)
//! over JSON endpoints under `/console/api/`, for the people who run Sluice.
//!
//! It is behind a session opened with an `admin` API key ([`session`]); its JSON ([`api`]) reads the store's
//! console views (`sluice_store::ConsoleStore`) and, for writes, calls the same code the `/v1` API does (silences,
//! dead-letter replay), audited with the operator's key name. The overview is pushed every two seconds over
//! server-sent events.

mod api;
pub mod session;

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

use crate::http::Caller;
use crate::outbox::audit;
use crate::state::AppState;
use session::{same_origin, set_cookie, Operator, Sessions};

/// What the console's handlers share: the app, and the open sessions.
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
        app,
        sessions: Sessions::default(),
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
    match Operator::of(&state, &headers) {
        Some(_) => page(StatusCode::OK, INDEX_HTML.to_string()),
        None => redirect("/login"),
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

async fn login(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(e) = same_origin(&headers) {
        return e.into_response();
    }
    let caller = Caller::of_key(&state.app, form.key.trim());
    let Some(caller) = caller else {
        metrics::counter!("sluice_console_logins_total", "outcome" => "unknown_key").increment(1);
        return page(
            StatusCode::UNAUTHORIZED,
            login_html("That key was refused: it is not one of this Sluice's API keys."),
        );
    };
    if caller.require("admin").is_err() {
        metrics::counter!("sluice_console_logins_total", "outcome" => "not_admin").increment(1);
        return page(
            StatusCode::FORBIDDEN,
            login_html("That key was refused: the console needs a key with the \"admin\" scope."),
        );
    }
    metrics::counter!("sluice_console_logins_total", "outcome" => "ok").increment(1);
    let id = state.sessions.open(&caller.name);
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
