//! Silences over HTTP: `GET /v1/silences`, `POST /v1/silences`, `DELETE /v1/silences/{id}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, Caller};
use crate::outbox::audit;
use crate::state::{now_ms, AppState};
use sluice_domain::silence::SilenceRequest;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/silences", get(list).post(create))
        .route("/v1/silences/{id}", delete(expire))
}

#[derive(Deserialize)]
struct ListQuery {
    all: Option<bool>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require("read")?;
    let silences = state
        .store
        .silences(q.all.unwrap_or(false), now_ms())
        .await?;
    Ok(Json(json!({ "silences": silences })))
}

async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require("silences:write")?;
    if let Some(field) = sluice_core::nul::nul_path_in_json(&body) {
        return Err(ApiError::bad_request(field, sluice_core::nul::NUL_MESSAGE));
    }
    let req: SilenceRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("body", format!("not a silence: {e}")))?;
    let new = req
        .validate(&caller.name, now_ms())
        .map_err(|(field, message)| ApiError::bad_request(field, message))?;
    let silence = state.store.create_silence(new, now_ms()).await?;
    let detail = json!({ "matchers": silence.matchers, "starts_at_ms": silence.starts_at_ms,
                         "ends_at_ms": silence.ends_at_ms, "comment": silence.comment, "via": "api" });
    audit(
        &state,
        &caller.name,
        "silence.create",
        &silence.id,
        "ok",
        detail,
    )
    .await;
    state.refresh_silences(true).await?;
    tracing::info!(id = %silence.id, author = %silence.author, "silence created");
    Ok((StatusCode::CREATED, Json(json!(silence))).into_response())
}

async fn expire(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("silences:write")?;
    let via = json!({ "via": "api" });
    if !state.store.expire_silence(&id, now_ms()).await? {
        let result = "refused: no such silence in force";
        audit(&state, &caller.name, "silence.expire", &id, result, via).await;
        return Err(ApiError::not_found(format!("no silence {id:?} in force")));
    }
    audit(&state, &caller.name, "silence.expire", &id, "ok", via).await;
    state.refresh_silences(true).await?;
    Ok(Json(json!({ "expired": id })))
}
