//! The HTTP surface: one router per area, merged by [`app`].
//!
//! Handlers read raw bytes and parse them themselves, so that every bad input gets an error that
//! names the field, and so that the body limit (413) applies before any parsing. Nothing is
//! enqueued unless the whole request is valid.

mod auth;
mod error;
mod ingest;
mod ops;
mod silences;
mod sources;

use std::sync::Arc;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tower::ServiceBuilder;

pub use auth::Caller;
pub use error::ApiError;

use crate::state::AppState;

/// The whole HTTP application, without a socket: tests call it with `oneshot`.
///
/// The API routes admit at most `server.max_in_flight` requests at once. Beyond that they answer
/// 503 with Retry-After at once rather than queueing without bound, so an overload costs callers
/// a retry instead of costing the server its memory and every caller its latency. Health,
/// readiness and metrics are outside the limit so probes keep answering under load.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.config.server.max_body_bytes;
    let in_flight = state.config.server.max_in_flight.max(1);
    let api = Router::new()
        .merge(ingest::routes())
        .merge(sources::routes())
        .merge(silences::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state.clone());
    // Wrapped once as a whole: `Router::layer` would give every route its own limit.
    let api = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            metrics::counter!("sluice_http_shed_total").increment(1);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many requests in flight (server.max_in_flight); nothing was accepted, retry shortly",
            )
        }))
        .load_shed()
        .concurrency_limit(in_flight)
        .service(api);
    Router::new()
        .merge(ops::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
        .fallback_service(api)
        .layer(axum::middleware::from_fn(refuse_nul_in_uri))
}

/// A NUL character in the path or query (`%00`) can name nothing that exists, and PostgreSQL refuses it in a
/// query: it is a 400 before any handler runs, on every backend alike.
async fn refuse_nul_in_uri(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
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
