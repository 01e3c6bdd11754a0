//! The simulator's HTTP surface, built by [`router`]: the Web API (`/api/{method}`), incoming
//! webhooks (`/services/{id}`), the control API (`/sim/*`) and the page at `/` (with its stream, [`crate::ui`]).
//!
//! Each Web API call goes through the same gate, in Slack's order as seen from outside: injected
//! faults (a broken network answers before Slack looks at anything), then the token, the scope,
//! a per-method injected error, the rate limit, and finally the method itself. Every call is
//! recorded, whatever it was answered.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sluice_slack_wire::tiers::{rate_class, slack_limit, RateClass};

use crate::api::{self, str_arg, ApiError, Args};
use crate::bucket::retry_after_secs;
use crate::model::{Call, FaultsPatch};
use crate::state::State;
use crate::Simulator;

pub fn router(sim: Simulator) -> Router {
    Router::new()
        .merge(crate::ui::routes())
        .route("/api/{method}", post(web_api).get(web_api))
        .route("/services/{*hook}", post(webhook))
        .route("/sim/state", get(sim_state))
        .route("/sim/calls", get(sim_calls))
        .route("/sim/stats", get(sim_stats))
        .route(
            "/sim/faults",
            get(get_faults).post(post_faults).delete(delete_faults),
        )
        .route("/sim/reset", post(sim_reset))
        .route("/sim/response/{id}", post(response_url))
        .route("/sim/socket", get(socket_upgrade))
        .route("/sim/app_url", post(set_app_url))
        .route("/sim/user/{action}", post(user_action))
        .route("/sim/channels", post(sim_create_channel))
        .route("/sim/socket/{control}", post(socket_control))
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            announce_change,
        ))
        .with_state(sim)
}

/// Anything but a read may have changed the workspace: the page's streams look again at once.
async fn announce_change(
    AxState(sim): AxState<Simulator>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let read = req.method() == axum::http::Method::GET;
    let resp = next.run(req).await;
    if !read {
        sim.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
    resp
}

/// What the gate decided for one call.
struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

impl Answer {
    fn ok(mut body: Value) -> Self {
        if let Some(o) = body.as_object_mut() {
            o.insert("ok".into(), Value::Bool(true));
        }
        Self {
            status: StatusCode::OK,
            body,
            retry_after: None,
        }
    }

    fn err(e: ApiError) -> Self {
        Self {
            status: StatusCode::OK,
            body: e.body(),
            retry_after: None,
        }
    }

    fn status(status: StatusCode, error: &str) -> Self {
        Self {
            status,
            body: json!({"ok": false, "error": error}),
            retry_after: None,
        }
    }

    fn limited(retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({"ok": false, "error": "ratelimited"}),
            retry_after: Some(retry_after),
        }
    }

    fn error_string(&self) -> Option<String> {
        self.body
            .get("error")
            .and_then(Value::as_str)
            .map(String::from)
    }

    fn is_ok(&self) -> bool {
        self.body.get("ok").and_then(Value::as_bool) == Some(true)
    }
}

fn with_retry_after(mut resp: Response, retry_after: Option<u64>) -> Response {
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Sleeps the injected latency, outside the lock so other calls are not held up.
async fn injected_latency(sim: &Simulator) {
    let ms = sim.lock().faults.faults.latency_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Connection-level faults: outage (503), random errors (500), a 429 storm, 429s for one channel.
/// `channel` is the channel the call names, as given, if any.
fn connection_fault(state: &mut State, channel: Option<&str>, now: Instant) -> Option<Answer> {
    let f = &state.faults.faults;
    if f.outage_until.is_some_and(|until| now < until) {
        return Some(Answer::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
        ));
    }
    if f.error_rate > 0.0 && rand::random::<f64>() < f.error_rate {
        return Some(Answer::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
        ));
    }
    if let Some(retry) = state.faults.storm_retry_after(now) {
        return Some(Answer::limited(retry));
    }
    let given = channel?;
    let (target, retry, times) = state.faults.faults.channel_429.clone()?;
    let same = |a: &str, b: &str| match (state.channel_index(a), state.channel_index(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim_start_matches('#') == b.trim_start_matches('#'),
    };
    if times == 0 || !same(given, &target) {
        return None;
    }
    state.faults.faults.channel_429 = Some((target, retry, times - 1));
    Some(Answer::limited(retry.max(1)))
}

fn parse_args(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<Args, &'static str> {
    let mut args = Map::new();
    if let Some(q) = query {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(q).map_err(|_| "invalid_form_data")?;
        args.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(args);
    }
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => args.extend(o),
            _ => return Err("invalid_json"),
        }
    } else {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| "invalid_form_data")?;
        args.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    }
    Ok(args)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// The gate and the method, under one lock so that a call sees a consistent workspace.
fn answer_web_api(
    state: &mut State,
    method: &str,
    parsed: &Result<Args, &'static str>,
    token: Option<String>,
    host: Option<&str>,
    now: Instant,
) -> Answer {
    let channel_given = parsed.as_ref().ok().and_then(|a| str_arg(a, "channel"));
    if let Some(a) = connection_fault(state, channel_given.as_deref(), now) {
        return a;
    }
    let args = match parsed {
        Ok(a) => a,
        Err(e) => return Answer::err(ApiError::new(*e)),
    };
    let Some(token) = token else {
        return Answer::err(ApiError::new("not_authed"));
    };
    // Bot tokens and app-level tokens are not interchangeable.
    let is_app_token = state.cfg.app_tokens.contains(&token);
    // A running Workflow step's token (`functions.rs`) acts as the app's bot for that execution.
    let is_bot_token = state.cfg.bot_tokens.contains(&token) || state.functions.token_valid(&token);
    if method == "apps.connections.open" {
        if is_bot_token {
            return Answer::err(ApiError::new("not_allowed_token_type"));
        }
        if !is_app_token {
            return Answer::err(ApiError::new("invalid_auth"));
        }
    } else if is_app_token {
        return Answer::err(ApiError::new("not_allowed_token_type"));
    } else if !is_bot_token {
        return Answer::err(ApiError::new("invalid_auth"));
    }
    let Some(scope) = api::method_scope(method) else {
        return Answer::err(ApiError::new("unknown_method"));
    };
    if let (Some(needed), Some(granted)) = (scope, &state.cfg.scopes) {
        if !granted.iter().any(|s| s == needed) {
            let mut e = ApiError::new("missing_scope");
            e.extra.insert("needed".into(), json!(needed));
            e.extra.insert("provided".into(), json!(granted.join(",")));
            return Answer::err(e);
        }
    }
    if let Some((m, error)) = &state.faults.faults.method_error {
        if m == method {
            return Answer::err(ApiError::new(error.clone()));
        }
    }
    if state.cfg.enforce_rate_limits {
        let class = rate_class(method);
        let key = match class {
            // Slack limits posts per channel. Key on the channel's name, which is known even
            // before a first post creates the channel, so that "alerts", "#alerts" and its id
            // share one bucket from the first call on.
            RateClass::PerChannel => {
                let given = channel_given.unwrap_or_default();
                let name = match state.channel_index(&given) {
                    Some(i) => state.channels[i].name.clone(),
                    None => given.trim_start_matches('#').to_string(),
                };
                format!("{method}:{name}")
            }
            _ => method.to_string(),
        };
        if let Err(wait) = state.limiter.check(&key, slack_limit(class), now) {
            return Answer::limited(retry_after_secs(wait));
        }
    }
    if method == "apps.connections.open" {
        return open_connection(state, host);
    }
    let with_caller;
    let args = if method.starts_with("functions.") {
        with_caller = crate::functions::with_caller(args, &token);
        &with_caller
    } else {
        args
    };
    match api::dispatch(state, method, args, now) {
        Ok(body) => Answer::ok(body),
        Err(e) => Answer::err(e),
    }
}

/// `apps.connections.open`: a one-time ticket in a `ws://` URL on the host the app reached us on.
fn open_connection(state: &mut State, host: Option<&str>) -> Answer {
    if state.socket.conns.len() >= crate::socket::MAX_CONNECTIONS {
        return Answer::err(ApiError::new("too_many_websockets"));
    }
    let ticket = format!("{:032x}", rand::random::<u128>());
    state.socket.tickets.insert(ticket.clone());
    let base = match host {
        Some(h) => format!("ws://{h}"),
        None => state.base_url().replacen("http://", "ws://", 1),
    };
    Answer::ok(json!({ "url": format!("{base}/sim/socket?ticket={ticket}") }))
}

fn recorded_args(parsed: &Result<Args, &'static str>) -> Value {
    match parsed {
        Ok(a) => {
            let mut a = a.clone();
            // Tokens never reach the record: it is served over HTTP and printed in test failures.
            a.remove("token");
            Value::Object(a)
        }
        Err(_) => Value::Null,
    }
}

async fn web_api(
    AxState(sim): AxState<Simulator>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    injected_latency(&sim).await;
    let parsed = parse_args(&headers, query.as_deref(), &body);
    let token = bearer(&headers).or_else(|| parsed.as_ref().ok().and_then(|a| str_arg(a, "token")));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let answer = {
        let mut state = sim.lock();
        let now = state.clock.now();
        state.deliver_scheduled(now);
        let answer = answer_web_api(&mut state, &method, &parsed, token, host, now);
        // The channel as the call resolved it (a post to "alerts" records its id).
        let channel = answer
            .body
            .get("channel")
            .and_then(|c| c.as_str().or_else(|| c.get("id").and_then(Value::as_str)))
            .map(String::from)
            .or_else(|| {
                let given = parsed.as_ref().ok().and_then(|a| str_arg(a, "channel"))?;
                state
                    .channel_index(&given)
                    .map(|i| state.channels[i].id.clone())
            });
        let call = Call {
            seq: 0,
            at_ms: 0,
            method: method.clone(),
            channel,
            status: answer.status.as_u16(),
            ok: answer.is_ok(),
            error: answer.error_string(),
            retry_after: answer.retry_after,
            args: recorded_args(&parsed),
        };
        state.record(now, call);
        answer
    };
    tracing::debug!(%method, status = answer.status.as_u16(), "sim web api call");
    let done_but_unanswered = sim.lock().faults.faults.answer_latency_ms;
    if done_but_unanswered > 0 {
        tokio::time::sleep(Duration::from_millis(done_but_unanswered)).await;
    }
    let resp = (answer.status, Json(answer.body)).into_response();
    with_retry_after(resp, answer.retry_after)
}

/// Incoming webhooks answer plain text: `ok` or one of Slack's error strings.
struct HookAnswer {
    status: StatusCode,
    text: String,
    retry_after: Option<u64>,
    channel: Option<String>,
}

impl HookAnswer {
    fn new(status: StatusCode, text: &str) -> Self {
        Self {
            status,
            text: text.into(),
            retry_after: None,
            channel: None,
        }
    }
}

fn parse_hook_payload(headers: &HeaderMap, body: &[u8]) -> Option<Args> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Slack takes the JSON as the body, or form-encoded in a `payload` field.
    let json: Value = if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        let payload = pairs.into_iter().find(|(k, _)| k == "payload")?.1;
        serde_json::from_str(&payload).ok()?
    } else {
        serde_json::from_slice(body).ok()?
    };
    match json {
        Value::Object(o) => Some(o),
        _ => None,
    }
}

fn answer_webhook(
    state: &mut State,
    hook: &str,
    payload: &Option<Args>,
    now: Instant,
) -> HookAnswer {
    let target = state
        .cfg
        .webhooks
        .iter()
        .find(|(id, _)| id == hook)
        .map(|(_, ch)| ch.clone());
    if let Some(a) = connection_fault(state, target.as_deref(), now) {
        let text = match a.status {
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
            _ => "internal_error",
        };
        return HookAnswer {
            retry_after: a.retry_after,
            ..HookAnswer::new(a.status, text)
        };
    }
    let Some(channel_name) = target else {
        return HookAnswer::new(StatusCode::NOT_FOUND, "no_service");
    };
    let Some(payload) = payload else {
        return HookAnswer::new(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if state.cfg.enforce_rate_limits {
        let key = format!("webhook:{hook}");
        if let Err(wait) = state
            .limiter
            .check(&key, slack_limit(RateClass::Webhook), now)
        {
            return HookAnswer {
                retry_after: Some(retry_after_secs(wait)),
                ..HookAnswer::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            };
        }
    }
    let content = match api::content(payload) {
        Ok(c) => c,
        Err(e) => return HookAnswer::new(StatusCode::BAD_REQUEST, &e.error),
    };
    let Some(ch) = state.resolve_for_post(&channel_name, now) else {
        return HookAnswer::new(StatusCode::NOT_FOUND, "channel_not_found");
    };
    match api::post(
        state,
        ch,
        content,
        str_arg(payload, "thread_ts"),
        false,
        now,
    ) {
        Ok(msg) => HookAnswer {
            channel: Some(msg.channel),
            ..HookAnswer::new(StatusCode::OK, "ok")
        },
        Err(e) => HookAnswer::new(StatusCode::NOT_FOUND, &e.error),
    }
}

async fn webhook(
    AxState(sim): AxState<Simulator>,
    Path(hook): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    injected_latency(&sim).await;
    let payload = parse_hook_payload(&headers, &body);
    let answer = {
        let mut state = sim.lock();
        let now = state.clock.now();
        state.deliver_scheduled(now);
        let answer = answer_webhook(&mut state, &hook, &payload, now);
        let mut args = payload.clone().unwrap_or_default();
        args.insert("hook".into(), json!(hook));
        let ok = answer.status == StatusCode::OK;
        let call = Call {
            seq: 0,
            at_ms: 0,
            method: "webhook".into(),
            channel: answer.channel.clone(),
            status: answer.status.as_u16(),
            ok,
            error: (!ok).then(|| answer.text.clone()),
            retry_after: answer.retry_after,
            args: Value::Object(args),
        };
        state.record(now, call);
        answer
    };
    let resp = (
        answer.status,
        [(header::CONTENT_TYPE, "text/html")],
        answer.text,
    )
        .into_response();
    with_retry_after(resp, answer.retry_after)
}

async fn sim_state(AxState(sim): AxState<Simulator>) -> Json<Value> {
    Json(sim.lock().snapshot())
}

#[derive(Deserialize)]
struct CallsQuery {
    method: Option<String>,
    since: Option<u64>,
}

async fn sim_calls(
    AxState(sim): AxState<Simulator>,
    Query(q): Query<CallsQuery>,
) -> Json<Vec<Call>> {
    let state = sim.lock();
    let calls = state
        .calls
        .iter()
        .filter(|c| q.method.as_deref().is_none_or(|m| c.method == m))
        .filter(|c| q.since.is_none_or(|s| c.seq > s))
        .cloned()
        .collect();
    Json(calls)
}

async fn sim_stats(AxState(sim): AxState<Simulator>) -> Json<Value> {
    Json(sim.lock().stats())
}

fn faults_json(state: &State, now: Instant) -> Value {
    let f = &state.faults.faults;
    json!({
        "error_rate": f.error_rate,
        "method_error": f.method_error,
        "latency_ms": f.latency_ms,
        "answer_latency_ms": f.answer_latency_ms,
        "outage_secs_left": f.outage_until.map(|u| u.saturating_duration_since(now).as_secs_f64()),
        "storm_retry_after": state.faults.storm_retry_after(now),
        "channel_429": f.channel_429,
    })
}

async fn get_faults(AxState(sim): AxState<Simulator>) -> Json<Value> {
    let state = sim.lock();
    let now = state.clock.now();
    Json(faults_json(&state, now))
}

async fn post_faults(AxState(sim): AxState<Simulator>, body: Bytes) -> Response {
    let patch: FaultsPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"ok": false, "error": format!("invalid faults: {e}")})),
            )
                .into_response()
        }
    };
    if patch.error_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": "error_rate must be between 0 and 1"})),
        )
            .into_response();
    }
    let mut state = sim.lock();
    let now = state.clock.now();
    let fs = &mut state.faults;
    if let Some(r) = patch.error_rate {
        fs.faults.error_rate = r;
    }
    if let Some(m) = patch.method_error {
        fs.faults.method_error = Some(m);
    }
    if let Some(l) = patch.latency_ms {
        fs.faults.latency_ms = l;
    }
    if let Some(l) = patch.answer_latency_ms {
        fs.faults.answer_latency_ms = l;
    }
    if let Some(secs) = patch.outage_secs {
        fs.faults.outage_until = Some(now + Duration::from_secs(secs));
    }
    if let Some(secs) = patch.storm_secs {
        fs.faults.storm = Some((Duration::from_secs(secs), patch.retry_after.unwrap_or(1)));
        fs.set_at = Some(now);
    }
    if let Some(c) = patch.channel_429 {
        fs.faults.channel_429 = Some(c);
    }
    Json(faults_json(&state, now)).into_response()
}

async fn delete_faults(AxState(sim): AxState<Simulator>) -> Json<Value> {
    sim.clear_faults();
    Json(json!({"ok": true}))
}

async fn sim_reset(AxState(sim): AxState<Simulator>) -> Json<Value> {
    sim.reset();
    Json(json!({"ok": true}))
}

/// Uses a response_url: Slack's limits first (5 uses in 30 minutes), then the effect.
fn answer_response_url(
    state: &mut State,
    id: &str,
    payload: &Option<Args>,
    now: Instant,
) -> (Answer, Option<String>) {
    let fail = |status, error: &str| (Answer::status(status, error), None);
    let Some(ru) = state.response_urls.get(id).cloned() else {
        return fail(StatusCode::NOT_FOUND, "invalid_url");
    };
    if now > ru.created + crate::state::RESPONSE_URL_TTL {
        return fail(StatusCode::NOT_FOUND, "expired_url");
    }
    if ru.uses >= crate::state::RESPONSE_URL_MAX_USES {
        return fail(StatusCode::NOT_FOUND, "used_url");
    }
    let Some(args) = payload else {
        return fail(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let channel = ru.channel.clone();
    let ch = channel.as_deref().and_then(|c| state.channel_index(c));
    let original = || ru.message_ts.clone().filter(|_| ch.is_some());
    let flag = |key: &str| {
        matches!(args.get(key), Some(Value::Bool(true)))
            || matches!(str_arg(args, key).as_deref(), Some("true"))
    };
    let on_ephemeral = crate::inbound::on_ephemeral(
        state,
        &ru,
        args,
        flag("replace_original"),
        flag("delete_original"),
    );
    let result: Result<(), ApiError> = if let Some(done) = on_ephemeral {
        done
    } else if flag("delete_original") {
        match (ch, original()) {
            (Some(i), Some(ts)) => {
                let msgs = &mut state.channels[i].messages;
                let before = msgs.len();
                msgs.retain(|m| m.ts != ts);
                if msgs.len() == before {
                    Err(ApiError::new("message_not_found"))
                } else {
                    Ok(())
                }
            }
            _ => Err(ApiError::new("message_not_found")),
        }
    } else {
        match api::content(args) {
            Err(e) => Err(e),
            Ok(c) if flag("replace_original") => match (ch, original()) {
                (Some(i), Some(ts)) => match state.channels[i].find_mut(&ts) {
                    Some(m) => {
                        m.text = c.text;
                        if !c.blocks.is_null() {
                            m.blocks = c.blocks;
                        }
                        m.edits += 1;
                        Ok(())
                    }
                    None => Err(ApiError::new("message_not_found")),
                },
                _ => Err(ApiError::new("message_not_found")),
            },
            Ok(c) if str_arg(args, "response_type").as_deref() == Some("in_channel") => match ch {
                Some(i) => {
                    api::post(state, i, c, str_arg(args, "thread_ts"), false, now).map(|_| ())
                }
                None => Err(ApiError::new("channel_not_found")),
            },
            Ok(c) => {
                let ts = state.next_ts(now);
                state.ephemerals.push(crate::state::Ephemeral {
                    channel: channel.clone().unwrap_or_default(),
                    user: ru.user.clone(),
                    ts,
                    text: c.text,
                    blocks: c.blocks,
                    via: "response_url".into(),
                });
                Ok(())
            }
        }
    };
    match result {
        Ok(()) => {
            if let Some(r) = state.response_urls.get_mut(id) {
                r.uses += 1;
            }
            (Answer::ok(json!({})), channel)
        }
        Err(e) => {
            let status = if e.error == "message_not_found" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            (
                Answer {
                    status,
                    body: e.body(),
                    retry_after: None,
                },
                channel,
            )
        }
    }
}

async fn response_url(
    AxState(sim): AxState<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let payload = parse_hook_payload(&headers, &body);
    let answer = {
        let mut state = sim.lock();
        let now = state.clock.now();
        let (answer, channel) = answer_response_url(&mut state, &id, &payload, now);
        let mut args = payload.clone().unwrap_or_default();
        args.insert("response_url_id".into(), json!(id));
        let call = Call {
            seq: 0,
            at_ms: 0,
            method: "response_url".into(),
            channel,
            status: answer.status.as_u16(),
            ok: answer.is_ok(),
            error: answer.error_string(),
            retry_after: None,
            args: Value::Object(args),
        };
        state.record(now, call);
        answer
    };
    (answer.status, Json(answer.body)).into_response()
}

#[derive(Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

async fn socket_upgrade(
    AxState(sim): AxState<Simulator>,
    Query(q): Query<TicketQuery>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    let admitted = {
        let mut state = sim.lock();
        let ticket = q.ticket.unwrap_or_default();
        state.socket.conns.len() < crate::socket::MAX_CONNECTIONS
            && state.socket.tickets.remove(&ticket)
    };
    if !admitted {
        return (
            StatusCode::UNAUTHORIZED,
            "invalid or used ticket (get one from apps.connections.open), or 10 connections open",
        )
            .into_response();
    }
    ws.on_upgrade(move |socket| crate::socket::session(sim, socket))
}

#[derive(Deserialize)]
struct AppUrl {
    url: String,
}

async fn set_app_url(AxState(sim): AxState<Simulator>, Json(body): Json<AppUrl>) -> Json<Value> {
    sim.set_app_base_url(body.url);
    Json(json!({"ok": true}))
}

/// The body of `POST /sim/channels`: a channel made by a person, not by the bot.
#[derive(Deserialize)]
struct NewChannel {
    name: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    members: Vec<String>,
    /// Whether the bot is a member (a person adds it with `/invite @app`).
    #[serde(default)]
    bot: bool,
}

/// `POST /sim/channels`: create a channel as a user would, to test how the app copes with channels
/// it is not in and users who are not in a channel.
async fn sim_create_channel(AxState(sim): AxState<Simulator>, body: Bytes) -> Response {
    let c: NewChannel = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"ok": false, "error": format!("invalid body: {e}; expected {{\"name\", \"private\", \"members\", \"bot\"}}")})),
            )
                .into_response()
        }
    };
    match sim.create_channel_as_user(&c.name, c.private, &c.members, c.bot) {
        Ok(info) => Json(json!({"ok": true, "channel": info})).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": e})),
        )
            .into_response(),
    }
}

/// `POST /sim/socket/refresh|drop`: Slack's two ways of ending a Socket Mode connection, for any
/// client under test (`refresh` asks the oldest connection to reconnect; `drop` cuts it).
async fn socket_control(AxState(sim): AxState<Simulator>, Path(control): Path<String>) -> Response {
    if sim.socket_connections() == 0 {
        return (
            StatusCode::CONFLICT,
            Json(json!({"ok": false, "error": "no Socket Mode connection is open"})),
        )
            .into_response();
    }
    match control.as_str() {
        "refresh" => sim.socket_refresh().await,
        "drop" => sim.socket_drop().await,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"ok": false, "error": format!("no socket control {control:?}: try refresh or drop")})),
            )
                .into_response()
        }
    }
    Json(json!({"ok": true, "connections": sim.socket_connections()})).into_response()
}

/// The body of `POST /sim/user/{action}`: the arguments of the library method of that name.
#[derive(Deserialize, Default)]
#[serde(default)]
struct UserAction {
    channel: String,
    ts: String,
    action_id: String,
    block_id: String,
    value: String,
    user: Option<String>,
    emoji: String,
    command: String,
    text: String,
    event: Value,
    event_id: String,
    retry_num: u32,
    reason: String,
    view_id: String,
    values: Value,
    thread_ts: Option<String>,
}

/// The user-side API over HTTP, for the page's buttons and for curl.
async fn user_action(
    AxState(sim): AxState<Simulator>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let a: UserAction = if body.iter().all(u8::is_ascii_whitespace) {
        UserAction::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"ok": false, "error": format!("invalid body: {e}")})),
                )
                    .into_response()
            }
        }
    };
    // The first seeded member acts when the page does not say who.
    let user = a.user.clone().unwrap_or_else(|| "U0001".into());
    let result = match action.as_str() {
        "click" => sim.click_button(&a.channel, &a.ts, &a.action_id, &user).await,
        "react" => sim.react(&a.channel, &a.ts, &a.emoji, &user).await,
        "command" => sim.slash_command(&a.command, &a.text, &a.channel, &user).await,
        "event" => sim.send_event(a.event).await,
        "resend" => sim.resend_event(&a.event_id, a.retry_num, &a.reason).await,
        "submit" => sim.submit_view(&a.view_id, &user, a.values).await,
        "click_ephemeral" => {
            sim.click_ephemeral_button(&user, &a.ts, &a.action_id)
                .await
        }
        // These two need no app: the message is in the channel, the modal is closed, whether or not it heard.
        "message" => {
            let sent = sim
                .user_message(&a.channel, &user, &a.text, a.thread_ts.as_deref())
                .await;
            return done_or_delivered(sent);
        }
        "close" => return done_or_delivered(sim.close_view(&a.view_id, &user, a.values).await),
        "options" => {
            sim.options_request(&a.action_id, &a.block_id, &a.value, &user)
                .await
        }
        "url_verification" => sim.url_verification().await,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"ok": false, "error": format!("no user action {action:?}: try click, click_ephemeral, react, command, message, event, resend, submit, close, options, url_verification")})),
            )
                .into_response()
        }
    };
    done_or_delivered(result.map(Some))
}

/// The answer to a user action: what the app answered, or `"status": null` when it was sent nothing (`None`).
fn done_or_delivered(r: Result<Option<crate::Delivered>, crate::SimError>) -> Response {
    match r {
        Ok(None) => Json(json!({"ok": true, "status": null})).into_response(),
        Ok(Some(d)) => Json(json!({
            "ok": true,
            "status": d.status,
            "body": d.body,
            "elapsed_ms": d.elapsed.as_millis() as u64,
            "envelope_id": d.envelope_id,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::CONFLICT,
            Json(json!({"ok": false, "error": e.to_string()})),
        )
            .into_response(),
    }
}
