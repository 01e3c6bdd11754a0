//! Operating Sluice: `/healthz`, `/readyz`, `/metrics`, and the dead-letter API.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_store::Replay;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller};
use crate::outbox::{self, replay_target};
use crate::state::{now_ms, AppState};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(list_dead))
        .routes(routes!(replay))
        .routes(routes!(audit))
        .routes(routes!(verify_audit))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "`ok`: the process answers"))
)]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready means: the database answers. A replica that cannot reach it is taken out of rotation.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "`ready`: the database answers (503 when it does not)"))
)]
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response()
        }
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format"))
)]
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    // Outbox gauges are read when scraped: always current, no background loop needed.
    if let Ok(stats) = state.store.outbox_stats(now_ms()).await {
        metrics::gauge!("sluice_outbox_pending").set(stats.pending as f64);
        metrics::gauge!("sluice_outbox_dead").set(stats.dead as f64);
        metrics::gauge!("sluice_outbox_oldest_pending_age_seconds")
            .set(stats.oldest_pending_age_ms.unwrap_or(0) as f64 / 1000.0);
        metrics::gauge!("sluice_outbox_lanes_leased").set(stats.lanes_leased as f64);
    }
    match &state.metrics {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are disabled\n").into_response(),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    tag = "operations",
    params(ListQuery),
    responses((status = 200, description = r#"`{"dead_letters": [...]}` with their reasons"#)),
    security(("api_key" = ["read"]))
)]
async fn list_dead(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require("read")?;
    let dead = state
        .store
        .dead_letters(q.limit.unwrap_or(100).min(1000))
        .await?;
    Ok(Json(json!({ "dead_letters": dead })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Records after this id (default 0).
    since_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
}

/// Every human action, oldest first, pageable with `since_id`; `intact` says whether the
/// hash chain verifies (false means a record was edited or deleted behind our back).
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = r#"`{"records", "intact", "first_broken_id"}`, oldest first"#)),
    security(("api_key" = ["read"]))
)]
async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require("read")?;
    let records = state
        .store
        .audit(q.since_id.unwrap_or(0), q.limit.unwrap_or(100).min(1000))
        .await?;
    let broken = state.store.verify_audit().await?;
    Ok(Json(
        json!({ "records": records, "intact": broken.is_none(), "first_broken_id": broken }),
    ))
}

/// The chain recomputed: `200 {"intact": true}`, or `409 {"intact": false, "first_broken_id": N}` naming the first
/// record that was altered (or follows a removed one).
#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    tag = "audit",
    responses((status = 200, description = r#"`{"intact": true}`, or 409 naming the first altered record"#)),
    security(("api_key" = ["read"]))
)]
async fn verify_audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require("read")?;
    let verdict = audit_verification(&state).await?;
    Ok(if verdict["intact"] == json!(true) {
        Json(verdict).into_response()
    } else {
        (StatusCode::CONFLICT, Json(verdict)).into_response()
    })
}

#[utoipa::path(
    post,
    path = "/v1/dead-letters/replay",
    tag = "operations",
    request_body(content = Object, description = r#"{"id": N} or {"all": true}"#),
    responses((status = 200, description = r#"`{"replayed": N}`"#)),
    security(("api_key" = ["admin"]))
)]
async fn replay(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require("admin")?;
    let which = parse_replay(&body)?;
    let replayed = replay_dead(&state, &caller.name, which, "api").await?;
    Ok(Json(json!({ "replayed": replayed })))
}

/// Replays dead letters for `actor` (audited, `via` the API or the console) and wakes the dispatcher.
/// What a replay request (`{"id": N}` or `{"all": true}`) asks for; the API's and the console's.
pub(crate) fn parse_replay(body: &[u8]) -> Result<Replay, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("body", format!("malformed JSON: {e}")))?;
    match (
        v.get("id").and_then(Value::as_i64),
        v.get("all").and_then(Value::as_bool),
    ) {
        (Some(id), _) => Ok(Replay::Item(id)),
        (None, Some(true)) => Ok(Replay::All),
        _ => Err(ApiError::bad_request(
            "id",
            "give {\"id\": <dead letter id>} or {\"all\": true}",
        )),
    }
}

pub(crate) async fn replay_dead(
    state: &AppState,
    actor: &str,
    which: Replay,
    via: &str,
) -> Result<u64, ApiError> {
    let replayed = state.store.replay(which, now_ms()).await?;
    let target = replay_target(&which);
    let detail = json!({ "replayed": replayed, "via": via });
    outbox::audit(state, actor, "dlq.replay", &target, "ok", detail).await;
    if replayed > 0 {
        state.wake.notify_one();
    }
    Ok(replayed)
}

/// The audit chain's verification as `GET /v1/audit/verify` answers it: whether it is intact, the first broken record.
pub(crate) async fn audit_verification(state: &AppState) -> Result<Value, ApiError> {
    Ok(match state.store.verify_audit().await? {
        None => json!({ "intact": true, "first_broken_id": null }),
        Some(id) => json!({ "intact": false, "first_broken_id": id,
                            "message": format!("the audit log is broken at record {id}: it, or the record before it, was altered or removed") }),
    })
}
