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

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use auth::Caller;
pub use error::ApiError;

use crate::state::AppState;

/// The whole HTTP application, without a socket: tests call it with `oneshot`.
pub fn app(state: Arc<AppState>) -> Router {
    let limit = state.config.server.max_body_bytes;
    Router::new()
        .merge(ingest::routes())
        .merge(ops::routes())
        .merge(sources::routes())
        .merge(silences::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
