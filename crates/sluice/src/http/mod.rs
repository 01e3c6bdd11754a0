//! The HTTP surface: one router per area, merged by [`app`].
//!
//! Handlers read raw bytes and parse them themselves, so that every bad input gets an error that
//! names the field, and so that the body limit (413) applies before any parsing. Nothing is
//! enqueued unless the whole request is valid.

mod admin;
mod approvals;
mod auth;
mod error;
mod ingest;
pub mod openapi;
pub(crate) mod ops;
pub(crate) mod silences;
mod sources;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use auth::Caller;
pub use error::ApiError;

use crate::state::AppState;

/// The whole HTTP application, without a socket: tests call it with `oneshot`.
///
/// The API routes admit a bounded number of requests at once, in two pools: requests that carry an API key
/// (`server.max_in_flight`) and requests that do not (`server.max_in_flight_unauthenticated`: hooks, GitHub and
/// GitLab webhooks), so that slow or hostile clients without a key cannot take the slots of those with one. Beyond
/// its pool a request is answered 503 with Retry-After at once rather than queued without bound. Health, readiness
/// and metrics are outside both pools so probes keep answering under load.
///
/// Inside its pool, a request's body is read before its handler runs: a declared `Content-Length` over
/// `server.max_body_bytes` is a 413 before a byte of it is read, and a body that has not arrived within
/// `server.body_timeout_ms` is a 408, which frees the slot a trickling client held.
/// The HTTP API and operations endpoints, with `beside` (the operator console) served next to them: outside the
/// API's request pools and body deadline (a console's live stream stays open), inside the NUL-refusal.
pub fn app(state: Arc<AppState>, beside: Router) -> Router {
    let server = &state.config.server;
    let body_limit = server.max_body_bytes;
    let gate = Arc::new(Gate {
        keyed: Arc::new(Semaphore::new(server.max_in_flight.max(1))),
        open: Arc::new(Semaphore::new(server.max_in_flight_unauthenticated.max(1))),
        body_limit,
        body_timeout: Duration::from_millis(server.body_timeout_ms.max(1)),
    });
    let (api, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(ingest::routes())
        .merge(sources::routes())
        .merge(silences::routes())
        .merge(approvals::routes())
        .merge(admin::routes())
        .split_for_parts();
    let (ops, ops_doc) = ops::routes().split_for_parts();
    doc.merge(ops_doc);
    // The error answers are added once every operation is in.
    utoipa::Modify::modify(&openapi::Errors, &mut doc);
    let doc = Arc::new(doc);
    let api = api
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state.clone())
        // Wrapped once as a whole: `route_layer` would give every route its own limit.
        .layer(axum::middleware::from_fn_with_state(gate, admit));
    Router::new()
        .merge(ops)
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { axum::Json(doc.as_ref().clone()) }),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state.clone())
        .merge(beside)
        .fallback_service(api)
        .layer(axum::middleware::from_fn(refuse_nul_in_uri))
}

/// The two request pools and the body rules, see [`app`].
struct Gate {
    keyed: Arc<Semaphore>,
    open: Arc<Semaphore>,
    body_limit: usize,
    body_timeout: Duration,
}

async fn admit(
    State(gate): State<Arc<Gate>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    // Whether the key is valid is the handler's business; a request that claims one competes with those that do.
    let (pool, name, setting) = if request.headers().contains_key(AUTHORIZATION) {
        (&gate.keyed, "keyed", "server.max_in_flight")
    } else {
        (
            &gate.open,
            "unauthenticated",
            "server.max_in_flight_unauthenticated",
        )
    };
    let Ok(_slot) = pool.clone().try_acquire_owned() else {
        metrics::counter!("sluice_http_shed_total", "pool" => name).increment(1);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!("too many requests in flight ({setting}); nothing was accepted, retry shortly"),
        )
        .into_response();
    };
    // The rest of such a body is never read, so the connection cannot carry another request: say so, or a client
    // that pools connections sends its next request down one the server is closing.
    let too_large = || {
        let mut r = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is larger than {} bytes (server.max_body_bytes)",
                gate.body_limit
            ),
        )
        .into_response();
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gate.body_limit as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let read = http_body_util::Limited::new(body, gate.body_limit).collect();
    let bytes = match tokio::time::timeout(gate.body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(e)) => {
            return ApiError::bad_request("body", format!("the body could not be read: {e}"))
                .into_response()
        }
        Err(_) => {
            metrics::counter!("sluice_http_body_timeouts_total", "pool" => name).increment(1);
            let mut r = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {} ms (server.body_timeout_ms); nothing was accepted",
                    gate.body_timeout.as_millis()
                ),
            )
            .into_response();
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// A NUL character in the path or query (`%00`) can name nothing that exists, and PostgreSQL refuses it in a
/// query: it is a 400 before any handler runs, on every backend alike.
async fn refuse_nul_in_uri(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let uri = request.uri();
    let field = if uri.path().contains("%00") {
        Some("path")
    } else if uri.query().is_some_and(|q| q.contains("%00")) {
        Some("query")
    } else {
        None
    };
    match field {
        Some(field) => ApiError::bad_request(field, sluice_core::nul::NUL_MESSAGE).into_response(),
        None => next.run(request).await,
    }
}
