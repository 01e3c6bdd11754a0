//! `POST /v1/sources/{name}`: webhooks from Alertmanager, Grafana, GitHub and GitLab.
//!
//! Each delivery is parsed by its adapter (sluice-sources) into events, which then take the same
//! path as `/v1/events`: one transaction, 202 only after the commit. Alertmanager and Grafana
//! authenticate with an API key (their `http_config` bearer token); GitHub and GitLab with their
//! own signature or token, checked by the adapter over the raw body before parsing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sluice_sources::{Headers, SourceError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(receive))
}

#[utoipa::path(
    post,
    path = "/v1/sources/{name}",
    tag = "events",
    params(("name" = String, Path, description = "the source: alertmanager, grafana, or a configured [[source]]; GitHub and GitLab sources authenticate with their own signature or token instead of an API key")),
    request_body(content = Object, description = "the source's own webhook payload"),
    responses((status = 202, description = "accepted after the commit: the ids of the events the delivery became")),
    security(("api_key" = ["events:write"]))
)]
async fn receive(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let Some(source) = state.config.sources.iter().find(|s| s.name == name) else {
        let known: Vec<&str> = state
            .config
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        return Err(ApiError::not_found(format!(
            "no source named {name:?}; configured: {}",
            known.join(", ")
        )));
    };
    let (mut parts, body) = request.into_parts();
    if source.needs_api_key {
        Caller::from_request_parts(&mut parts, &state)
            .await?
            .require("events:write")?;
    }
    let limit = state.config.server.max_body_bytes;
    let body: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {limit} bytes (server.max_body_bytes)"),
        )
    })?;
    let headers: Headers = headers_of(&parts);
    let parsed = source
        .adapter
        .parse(&headers, &body)
        .map_err(|e| match &e {
            SourceError::Unauthorized(why) => {
                metrics::counter!("sluice_source_rejected_total", "source" => name.clone())
                    .increment(1);
                ApiError::unauthorized(why.clone())
            }
            SourceError::BadPayload { field, message } => {
                let field = if field.is_empty() {
                    "body".to_string()
                } else {
                    field.clone()
                };
                ApiError::bad_request(field, message.clone())
            }
            SourceError::Unsupported(why) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unsupported", why.clone())
            }
        })?;
    if let Some(why) = &parsed.ignored {
        tracing::info!(source = %name, reason = %why, "delivery (partly) ignored");
    }
    let ids = super::ingest::accept(&state, &parsed.events, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "ids": ids, "accepted": ids.len(), "ignored": parsed.ignored })),
    )
        .into_response())
}

fn headers_of(parts: &Parts) -> Headers {
    parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect()
}
