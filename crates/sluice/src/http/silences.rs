//! Silences over HTTP: `GET /v1/silences`, `POST /v1/silences`, `DELETE /v1/silences/{id}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller};
use crate::outbox::audit;
use crate::state::{now_ms, AppState};
use sluice_domain::silence::SilenceRequest;
use sluice_store::{NewSilence, Silence};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(expire))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Also the expired ones.
    all: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/v1/silences",
    tag = "silences",
    params(ListQuery),
    responses((status = 200, description = r#"`{"silences": [...]}`"#)),
    security(("api_key" = ["read"]))
)]
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

#[utoipa::path(
    post,
    path = "/v1/silences",
    tag = "silences",
    request_body(content = Object, description = "matchers (name=value, name!=value, name=~regex, name!~regex), duration (e.g. 2h) or starts_at/ends_at, comment, author"),
    responses((status = 201, description = "the silence created")),
    security(("api_key" = ["silences:write"]))
)]
async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require("silences:write")?;
    let silence = create_silence(&state, &caller.name, &body, "api").await?;
    Ok((StatusCode::CREATED, Json(json!(silence))).into_response())
}

/// A silence request as `POST /v1/silences` takes it, validated (errors name the field).
pub(crate) fn parse_request(body: &[u8], author: &str) -> Result<NewSilence, ApiError> {
    if let Some(field) = sluice_core::nul::nul_path_in_json(body) {
        return Err(ApiError::bad_request(field, sluice_core::nul::NUL_MESSAGE));
    }
    let req: SilenceRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("body", format!("not a silence: {e}")))?;
    req.validate(author, now_ms())
        .map_err(|(field, message)| ApiError::bad_request(field, message))
}

/// Creates a silence for `actor` (audited, `via` the API or the console) and puts it in force at once.
pub(crate) async fn create_silence(
    state: &AppState,
    actor: &str,
    body: &[u8],
    via: &str,
) -> Result<Silence, ApiError> {
    let new = parse_request(body, actor)?;
    let silence = state.store.create_silence(new, now_ms()).await?;
    let detail = json!({ "matchers": silence.matchers, "starts_at_ms": silence.starts_at_ms,
                         "ends_at_ms": silence.ends_at_ms, "comment": silence.comment, "via": via });
    audit(state, actor, "silence.create", &silence.id, "ok", detail).await;
    state.refresh_silences(true).await?;
    tracing::info!(id = %silence.id, author = %silence.author, "silence created");
    Ok(silence)
}

#[utoipa::path(
    delete,
    path = "/v1/silences/{id}",
    tag = "silences",
    params(("id" = String, Path, description = "the id")),
    responses((status = 200, description = "the silence, expired now")),
    security(("api_key" = ["silences:write"]))
)]
async fn expire(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("silences:write")?;
    expire_silence(&state, &caller.name, &id, "api").await?;
    Ok(Json(json!({ "expired": id })))
}

/// Ends silence `id` now for `actor` (audited, refused with 404 when no such silence is in force).
pub(crate) async fn expire_silence(
    state: &AppState,
    actor: &str,
    id: &str,
    via: &str,
) -> Result<(), ApiError> {
    let via = json!({ "via": via });
    if !state.store.expire_silence(id, now_ms()).await? {
        let result = "refused: no such silence in force";
        audit(state, actor, "silence.expire", id, result, via).await;
        return Err(ApiError::not_found(format!("no silence {id:?} in force")));
    }
    audit(state, actor, "silence.expire", id, "ok", via).await;
    state.refresh_silences(true).await?;
    Ok(())
}
