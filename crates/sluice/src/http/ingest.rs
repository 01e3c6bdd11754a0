//! Ingest: `POST /v1/events`, `POST /v1/messages`, the Slack-incoming-webhook-compatible
//! `POST /hooks/{name}/{secret}`, and `GET /v1/events/{id}` to ask what became of an event.
//!
//! Every endpoint answers 2xx only after the store committed (invariant 1: accepted means
//! durable), and enqueues nothing unless the whole request is valid.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use sluice_core::event::{parse_events, Event};
use sluice_core::nul::{nul_path, nul_path_in_json, NUL_MESSAGE};
use sluice_slack_wire::blocks::{check_message, fit_foreign_message};
use sluice_store::{DeliveryState, EventBody, EventStatus, Fate, NewEvent};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller};
use crate::state::{now, AppState};
use sluice_domain::outbox::outbox_item;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(post_events))
        .routes(routes!(get_event))
        .routes(routes!(post_message))
        .routes(routes!(post_hook))
}

fn new_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    request_body(content = Object, description = "one event or an array of up to 1000 (title, severity, status, source required)"),
    responses((status = 202, description = r#"accepted after the commit: `{"id"}`, or `{"ids", "accepted"}` for an array"#)),
    security(("api_key" = ["events:write"]))
)]
async fn post_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require("events:write")?;
    let events = parse_events(&body).map_err(|e| {
        let field = if e.field.is_empty() {
            "body".to_string()
        } else {
            e.field
        };
        ApiError::bad_request(field, e.message)
    })?;
    let ids = accept(&state, &events, "api").await?;
    let is_batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let answer = if is_batch {
        json!({ "ids": ids, "accepted": ids.len() })
    } else {
        json!({ "id": ids[0] })
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// Route, render and commit `events` in one transaction; their ids in order.
pub(crate) async fn accept(
    state: &AppState,
    events: &[Event],
    source: &str,
) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let now = now();
    let batch = {
        // A poisoned lock only means a panic elsewhere mid-swap; the set itself is whole.
        let silences = state.silences.read().unwrap_or_else(|e| e.into_inner());
        let pipeline = state.pipeline(&silences);
        let mut batch = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let body = EventBody::encode(event).map_err(|e| {
                ApiError::bad_request("body", format!("the event cannot be stored as JSON: {e}"))
            })?;
            // Read from the encoded text: it is parsed only if it holds a `\u0000`.
            if let Some(path) = nul_path_in_json(body.as_str().as_bytes()) {
                let field = if events.len() > 1 {
                    format!("[{i}].{path}")
                } else {
                    path
                };
                return Err(ApiError::bad_request(field, NUL_MESSAGE));
            }
            let new = pipeline.process(new_id(), event, body, now).map_err(|e| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "render_failed", e.0)
            })?;
            batch.push(new);
        }
        batch
    };
    let ids: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
    commit(state, batch).await?;
    metrics::counter!("sluice_events_received_total", "source" => source.to_string())
        .increment(ids.len() as u64);
    Ok(ids)
}

/// Commit, count the fates, and wake the dispatcher.
pub(crate) async fn commit(state: &AppState, batch: Vec<NewEvent>) -> Result<(), ApiError> {
    let mut routed = 0u64;
    let mut enqueued = false;
    for e in &batch {
        match &e.fate {
            Fate::Dropped { rule } => {
                metrics::counter!("sluice_events_dropped_total", "rule" => rule.clone())
                    .increment(1)
            }
            Fate::Unrouted => metrics::counter!("sluice_events_unrouted_total").increment(1),
            Fate::Suppressed { by } => {
                // `silence:<id>` counts as `silence`: silence ids would make a series per silence.
                let kind = by.split(':').next().unwrap_or_default().to_string();
                metrics::counter!("sluice_events_suppressed_total", "by" => kind).increment(1)
            }
            _ => routed += 1,
        }
        enqueued |= !e.outbox.is_empty() || e.dedup.as_ref().is_some_and(|d| !d.on_open.is_empty());
    }
    let ingested = state.store.ingest(batch).await?;
    // The store mutes inhibited events inside the commit; they were counted as routed above.
    for (_, rule) in &ingested.inhibited {
        metrics::counter!("sluice_events_suppressed_total", "by" => format!("inhibit:{rule}"))
            .increment(1);
    }
    metrics::counter!("sluice_events_routed_total")
        .increment(routed.saturating_sub(ingested.inhibited.len() as u64));
    if enqueued {
        state.wake.notify_one();
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "the id")),
    responses((status = 200, description = "what became of the event: state, fate, deliveries, groups, actions")),
    security(("api_key" = ["read"]))
)]
async fn get_event(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("read")?;
    let status = state
        .store
        .event(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event with id {id:?}")))?;
    Ok(Json(event_view(&status)))
}

/// One word for where an event stands, then the detail.
pub fn event_view(s: &EventStatus) -> Value {
    let all_sent = !s.deliveries.is_empty()
        && s.deliveries
            .iter()
            .all(|d| matches!(d.state, DeliveryState::Sent { .. }));
    let any_dead = s
        .deliveries
        .iter()
        .any(|d| matches!(d.state, DeliveryState::Dead { .. }));
    // An alert on a grouped route is reported by its group: waiting for group_wait, on the group's card, or
    // counted in a storm digest.
    let grouped = s.groups.first().map(|g| {
        if g.digested_at_ms.is_some() {
            "digested"
        } else if g.ts.is_some() {
            "posted"
        } else {
            "grouped"
        }
    });
    let state = match (&s.fate, grouped) {
        (Fate::Queued { .. }, Some(g)) if s.deliveries.is_empty() => g,
        (Fate::Dropped { .. }, _) => "dropped",
        (Fate::Unrouted, _) => "unrouted",
        (Fate::Suppressed { .. }, _) => "suppressed",
        (Fate::Merged { .. }, _) => "merged",
        (Fate::Resolved { .. }, _) if all_sent || s.deliveries.is_empty() => "resolved",
        _ if any_dead => "dead_lettered",
        _ if all_sent => "posted",
        _ => "queued",
    };
    json!({
        "id": s.id,
        "state": state,
        "received_at_ms": s.received_at_ms,
        "source": s.source,
        "fate": s.fate,
        "deliveries": s.deliveries,
        "groups": s.groups,
        "actions": s.actions,
        "event": s.body,
    })
}

/// Keys of chat.postMessage that callers of `/v1/messages` and hooks may set.
const MESSAGE_KEYS: &[&str] = &[
    "text",
    "blocks",
    "attachments",
    "thread_ts",
    "reply_broadcast",
    "unfurl_links",
    "unfurl_media",
    "mrkdwn",
    "metadata",
];

/// Copy the allowed message keys from `body` into chat.postMessage args for `channel`, fitted to Slack's limits;
/// with them, one note per change the fitting made (so the caller can be told).
fn message_args(
    channel: &str,
    body: &Map<String, Value>,
) -> Result<(Value, Vec<String>), (String, String)> {
    let mut args = Map::new();
    args.insert("channel".into(), json!(channel.trim_start_matches('#')));
    for (k, v) in body {
        if k == "channel" {
            continue;
        }
        if !MESSAGE_KEYS.contains(&k.as_str()) {
            return Err((
                k.clone(),
                format!(
                    "unknown key {k:?}; accepted: channel, {}",
                    MESSAGE_KEYS.join(", ")
                ),
            ));
        }
        args.insert(k.clone(), v.clone());
    }
    let has = |k: &str| match args.get(k) {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
    if !(has("text") || has("blocks") || has("attachments")) {
        return Err((
            "text".into(),
            "a message needs text, blocks or attachments".into(),
        ));
    }
    for (key, want_array) in [("blocks", true), ("attachments", true), ("text", false)] {
        match (args.get(key), want_array) {
            (None, _) | (Some(Value::Array(_)), true) | (Some(Value::String(_)), false) => {}
            _ => {
                let kind = if want_array { "an array" } else { "a string" };
                return Err((key.into(), format!("{key} must be {kind}")));
            }
        }
    }
    if let Some(ts) = args.get("thread_ts") {
        if !ts.is_string() {
            return Err((
                "thread_ts".into(),
                "thread_ts must be a string like \"1700000000.000100\"".into(),
            ));
        }
    }
    let mut args = Value::Object(args);
    let notes = fit_foreign_message(&mut args);
    Ok((args, notes))
}

/// What Slack's own incoming webhook would refuse in this message, as the word it answers with: it checks rather
/// than repairs, and a tool pointed at Sluice must learn of its mistake as it would from Slack, not from a dead
/// letter later.
fn slack_would_refuse(body: &Map<String, Value>) -> Option<&'static str> {
    if let Some(a) = body.get("attachments") {
        match a.as_array() {
            None => return Some("invalid_attachments"),
            Some(a) if a.len() > sluice_slack_wire::limits::MESSAGE_ATTACHMENTS => {
                return Some("too_many_attachments")
            }
            Some(_) => {}
        }
    }
    let blocks = body.get("blocks")?;
    let problems = check_message(&json!({ "text": "-", "blocks": blocks }));
    (!problems.is_empty()).then_some("invalid_blocks")
}

fn queue_message(
    state: &AppState,
    source: &str,
    rule: &str,
    channel: &str,
    args: Value,
    body: Value,
) -> NewEvent {
    let team = &state.config.slack.team_id;
    NewEvent {
        id: new_id(),
        received_at_ms: crate::state::now_ms(),
        source: source.to_string(),
        body: EventBody::of(&body),
        fate: Fate::Queued {
            rules: vec![rule.to_string()],
        },
        outbox: vec![outbox_item(team, channel, "chat.postMessage", args)],
        dedup: None,
        inhibit: Default::default(),
        follow_up: None,
    }
}

#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "events",
    request_body(content = Object, description = "a chat.postMessage-like message: channel, text, blocks"),
    responses((status = 202, description = r#"accepted after the commit: `{"id"}` (and `adjusted` when cut to fit)"#)),
    security(("api_key" = ["messages:write"]))
)]
async fn post_message(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require("messages:write")?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("body", format!("malformed JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ApiError::bad_request("body", "expected a JSON object"))?;
    if let Some(field) = nul_path(&value) {
        return Err(ApiError::bad_request(field, NUL_MESSAGE));
    }
    let channel = match obj.get("channel") {
        Some(Value::String(c)) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            return Err(ApiError::bad_request(
                "channel",
                "channel is required: a channel id or name",
            ))
        }
    };
    let (args, adjusted) =
        message_args(&channel, obj).map_err(|(f, m)| ApiError::bad_request(f, m))?;
    let new = queue_message(&state, "api", "api", &channel, args, value.clone());
    let id = new.id.clone();
    commit(&state, vec![new]).await?;
    metrics::counter!("sluice_events_received_total", "source" => "messages").increment(1);
    // What was changed to fit Slack's limits is said, never done silently.
    let answer = if adjusted.is_empty() {
        json!({ "id": id })
    } else {
        json!({ "id": id, "adjusted": adjusted })
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// An answer in the shape Slack's incoming webhooks use: a plain-text word.
fn slack_says(status: StatusCode, word: &'static str) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        word,
    )
        .into_response()
}

#[utoipa::path(
    post,
    path = "/hooks/{name}/{secret}",
    tag = "hooks",
    params(("name" = String, Path), ("secret" = String, Path, description = "the hook's secret")),
    request_body(content = Object, description = "a Slack incoming-webhook payload"),
    responses((status = 200, description = "`ok` as text, like Slack's incoming webhooks"))
)]
async fn post_hook(
    State(state): State<Arc<AppState>>,
    Path((name, secret)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(hook) = state.config.hooks.iter().find(|h| h.name == name) else {
        return slack_says(StatusCode::NOT_FOUND, "no_service");
    };
    if !bool::from(hook.secret.expose().as_bytes().ct_eq(secret.as_bytes())) {
        return slack_says(StatusCode::FORBIDDEN, "invalid_token");
    }
    // Slack's webhooks take a JSON body, or a form with the JSON in `payload`.
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let parsed: Option<Value> = if is_form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "payload"))
            .and_then(|(_, p)| serde_json::from_str(&p).ok())
    } else {
        serde_json::from_slice(&body).ok()
    };
    let Some(Value::Object(obj)) = parsed.filter(|v| nul_path(v).is_none()) else {
        return slack_says(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    // Fields Slack's webhooks accept but that have no meaning here are ignored, as Slack does.
    let kept: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| MESSAGE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(word) = slack_would_refuse(&kept) {
        return slack_says(StatusCode::BAD_REQUEST, word);
    }
    let args = match message_args(&hook.channel, &kept) {
        Ok((args, _)) => args,
        Err((field, _)) if field == "text" => {
            return slack_says(StatusCode::BAD_REQUEST, "no_text")
        }
        Err(_) => return slack_says(StatusCode::BAD_REQUEST, "invalid_payload"),
    };
    let new = queue_message(
        &state,
        "hook",
        &format!("hook:{name}"),
        &hook.channel,
        args,
        Value::Object(obj),
    );
    match commit(&state, vec![new]).await {
        Ok(()) => {
            metrics::counter!("sluice_events_received_total", "source" => "hook").increment(1);
            slack_says(StatusCode::OK, "ok")
        }
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
            slack_says(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable")
        }
        Err(_) => slack_says(StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    }
}
