//! `POST /v1/admin/reload` (admin scope): read the config file again and put it in force if it is valid, as SIGHUP
//! does (`crate::reload`). 200 with the new config's warnings; 422 with the file's errors; 409 when it changes what
//! cannot change while serving (named), or when the server was started without a file. Audited either way.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller};
use crate::outbox::audit;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(reload))
}

#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    tag = "operations",
    responses((status = 200, description = r#"`{"reloaded": true, "warnings"}`; 422 with the problems, 409 naming what needs a restart"#)),
    security(("api_key" = ["admin"]))
)]
async fn reload(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Response, ApiError> {
    caller.require("admin")?;
    let Some(path) = state.config.path().map(ToOwned::to_owned) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_config_file",
            "this server was not started from a config file, so there is nothing to reload",
        ));
    };
    let target = path.display().to_string();
    let actor = format!("api:{}", caller.name);
    // Reading and checking the file is blocking work: off the request threads.
    let (s, p, a) = (state.clone(), path.clone(), actor.clone());
    let outcome = tokio::task::spawn_blocking(move || crate::reload::reload(&s, &p, &a))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "config reload panicked");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the reload failed; the old config keeps serving",
            )
        })?;
    let answer = match outcome {
        Ok(done) => {
            audit(&state, &actor, "config.reload", &target, "ok", json!(done)).await;
            (
                StatusCode::OK,
                Json(json!({ "reloaded": true, "warnings": done.warnings })),
            )
        }
        Err(refused) => {
            let status = if refused.result == "invalid" {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::CONFLICT
            };
            let result = format!("refused: {}", refused.result);
            audit(
                &state,
                &actor,
                "config.reload",
                &target,
                &result,
                json!(refused),
            )
            .await;
            (
                status,
                Json(json!({
                    "error": format!("config_{}", refused.result),
                    "message": refused.message,
                    "problems": refused.problems,
                    "needs_restart": refused.needs_restart,
                })),
            )
        }
    };
    Ok(answer.into_response())
}
