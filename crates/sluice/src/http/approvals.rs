//! Approvals over HTTP: `POST /v1/approvals` (scope `approvals:write`; the same `idempotency_key` returns the same
//! approval), `GET /v1/approvals/{id}` (`?wait=60s` long-polls until it is decided or the wait ends) and
//! `POST /v1/approvals/{id}/cancel`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_core::duration::parse_duration_ms;
use sluice_domain::approval::card::to_json;
use sluice_domain::approval::request::ApprovalRequest;
use sluice_domain::approval::Input;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller};
use crate::approvals;
use crate::outbox::audit;
use crate::state::{now_ms, AppState};

/// The longest `?wait=` honoured.
const MAX_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(200);

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(read))
        .routes(routes!(cancel))
}

#[utoipa::path(
    post,
    path = "/v1/approvals",
    tag = "approvals",
    request_body(content = Object, description = "title, channel, approvers (users, groups, channel_members), required, expires_in, callback_url, idempotency_key…"),
    responses((status = 201, description = "the approval, pending, with its card posted")),
    security(("api_key" = ["approvals:write"]))
)]
async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require("approvals:write")?;
    if let Some(field) = sluice_core::nul::nul_path_in_json(&body) {
        return Err(ApiError::bad_request(field, sluice_core::nul::NUL_MESSAGE));
    }
    let req: ApprovalRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("body", format!("not an approval request: {e}")))?;
    if let Some(name) = req.action.as_deref() {
        if state.config.action_defs.get(name).is_none() {
            return Err(ApiError::bad_request(
                "action",
                format!("no [[action]] named {name:?} is configured in sluice.toml"),
            ));
        }
    }
    let valid = req
        .validate(
            &caller.name,
            &state.config.approvals.callback_hosts,
            now_ms(),
        )
        .map_err(|(field, message)| ApiError::bad_request(field, message))?;
    let created = approvals::create(&state, valid).await?;
    let a = &created.approval;
    if created.created {
        let detail = json!({ "title": a.request["title"], "channel": a.channel, "requester": a.requester,
                             "required": a.required, "approvers": a.request["approvers"],
                             "expires_at_ms": a.expires_at_ms, "via": "api" });
        audit(
            &state,
            &caller.name,
            "approval.request",
            &a.id,
            "ok",
            detail,
        )
        .await;
    }
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "id": a.id, "state": a.state }))).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadQuery {
    /// Long-poll: answer once decided or after this long (e.g. 30s, at most 2m).
    wait: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/approvals/{id}",
    tag = "approvals",
    params(("id" = String, Path, description = "the id"), ReadQuery),
    responses((status = 200, description = "the approval and its decision")),
    security(("api_key" = ["read"]))
)]
async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require("read")?;
    let wait = match q.wait.as_deref() {
        None => Duration::ZERO,
        Some(w) => match parse_duration_ms(w) {
            Ok(ms) => Duration::from_millis(ms as u64).min(MAX_WAIT),
            _ => {
                return Err(ApiError::bad_request(
                    "wait",
                    format!("{w:?} is not a duration such as \"60s\""),
                ))
            }
        },
    };
    let until = Instant::now() + wait;
    loop {
        let a = state
            .store
            .approval(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no approval {id}")))?;
        if a.state != "pending" || Instant::now() >= until {
            return Ok(Json(to_json(&a)));
        }
        tokio::time::sleep(POLL.min(until.saturating_duration_since(Instant::now()))).await;
    }
}

#[derive(Deserialize, Default)]
struct CancelBody {
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/cancel",
    tag = "approvals",
    params(("id" = String, Path, description = "the id")),
    request_body(content = Object, description = r#"optional {"reason"}"#),
    responses((status = 200, description = "the approval, cancelled")),
    security(("api_key" = ["approvals:write"]))
)]
async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require("approvals:write")?;
    let b: CancelBody = if body.is_empty() {
        CancelBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("body", format!("not a cancellation: {e}")))?
    };
    let reason = b.reason.filter(|r| !r.trim().is_empty());
    let applied = approvals::apply(&state, &id, |_| Input::Cancel {
        by: caller.name.clone(),
        reason: reason.clone(),
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no approval {id}")))?;
    let result = match &applied.refused {
        Some(why) => why.audit(),
        None => "ok".into(),
    };
    audit(
        &state,
        &caller.name,
        "approval.cancel",
        &id,
        &result,
        json!({ "reason": reason, "via": "api" }),
    )
    .await;
    if let Some(why) = applied.refused {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", why.tell()));
    }
    Ok(Json(to_json(&applied.approval)))
}
