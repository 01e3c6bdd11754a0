//! The console's JSON under `/console/api/`: reads for each page, the live overview, incidents and steps (one
//! server-sent event stream), and the writes an operator may make (silences, dead-letter replay, logout), each through [`Write`] and audited with the
//! operator's key name by the same code the `/v1` API runs.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderValue;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_core::event::Event;
use sluice_domain::budget::budget_use;
use sluice_domain::silence::Preview;

use super::session::{set_cookie, Operator, Write};
use super::ConsoleState;
use crate::http::{ops, silences, ApiError};
use crate::outbox::audit;
use crate::state::{now_ms, AppState};

/// How often the live overview is pushed.
pub const TICK: Duration = Duration::from_secs(2);
/// The window the overview's rates are counted over.
const RATE_WINDOW_MS: i64 = 10_000;
/// The window Slack budget use is counted over (Slack's limits are per minute).
const BUDGET_WINDOW_MS: i64 = 60_000;
/// Events a search reads at most before filtering by service and state.
const SEARCH_SCAN: usize = 2000;

pub fn routes() -> Router<Arc<ConsoleState>> {
    Router::new()
        .route("/console/api/session", get(session))
        .route("/console/api/logout", post(logout))
        .route("/console/api/overview", get(overview))
        .route("/console/api/stream", get(stream))
        .route("/console/api/events", get(events))
        .route("/console/api/events/{id}", get(event))
        .route("/console/api/dead-letters", get(dead_letters))
        .route("/console/api/dead-letters/replay", post(replay))
        .route(
            "/console/api/silences",
            get(list_silences).post(create_silence),
        )
        .route("/console/api/silences/preview", post(preview_silence))
        .route("/console/api/silences/{id}/expire", post(expire_silence))
        .route("/console/api/audit", get(audit_log))
        .route("/console/api/approvals", get(approvals))
        .route("/console/api/incidents", get(incidents))
        .route("/console/api/incidents/{id}", get(incident))
        .route("/console/api/steps", get(steps))
        .route("/console/api/config", get(config))
}

/// Who is logged in, and the CSRF token the page sends back with every write.
async fn session(op: Operator) -> Json<Value> {
    Json(json!({ "operator": op.name, "csrf": op.csrf }))
}

async fn logout(
    State(state): State<Arc<ConsoleState>>,
    Write(op): Write,
) -> Result<Response, ApiError> {
    state.sessions.close(&op.session_id).await?;
    audit(
        &state.app,
        &op.name,
        "console.logout",
        "console",
        "ok",
        json!({ "via": "console" }),
    )
    .await;
    let mut r = Json(json!({ "logged_out": true })).into_response();
    if let Ok(v) =
        HeaderValue::from_str(&set_cookie(None, state.app.config.server.behind_tls_proxy))
    {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(r)
}

/// The sum of a Prometheus counter's series in this process's metrics (`None` when metrics are off).
fn counter_sum(rendered: &str, name: &str) -> f64 {
    rendered
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A counter's value per value of `label` (e.g. 429s per method).
fn counter_by(rendered: &str, name: &str, label: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{name}{{");
    let key = format!("{label}=\"");
    let mut out = BTreeMap::new();
    for line in rendered.lines() {
        let Some(rest) = line.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(v) = labels
            .split_once(key.as_str())
            .and_then(|(_, after)| after.split_once('"'))
            .map(|(v, _)| v.to_string())
        else {
            continue;
        };
        if let Ok(n) = value.trim().parse::<f64>() {
            *out.entry(v).or_default() += n as u64;
        }
    }
    out
}

/// Events an inhibition may have muted that the overview reads at most.
const INHIBITED_SCAN: usize = 500;

/// The inhibitions in force: each key a firing alert holds, the `[[inhibit]]` rule it comes from, and the latest
/// events it muted.
async fn inhibitions(state: &AppState, now: i64) -> Result<Vec<Value>, ApiError> {
    let held = state.store.held_inhibitions(now, 100).await?;
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let inhibitor = &state.config.inhibitor;
    let muted: Vec<(Event, _)> = state
        .store
        .recent_events(None, INHIBITED_SCAN)
        .await?
        .into_iter()
        .filter(|e| {
            e.fate["kind"] == "suppressed"
                && e.fate["by"]
                    .as_str()
                    .is_some_and(|b| b.starts_with("inhibit:"))
        })
        .filter_map(|e| Some((serde_json::from_value::<Event>(e.body.clone()).ok()?, e)))
        .collect();
    Ok(held
        .into_iter()
        .map(|h| {
            let rule = serde_json::from_value::<Event>(h.body.clone())
                .ok()
                .and_then(|e| {
                    inhibitor
                        .keys(&e)
                        .provides
                        .into_iter()
                        .find(|k| k.key == h.key)
                })
                .map(|k| k.rule);
            let mutes: Vec<Value> = muted
                .iter()
                .filter(|(ev, _)| inhibitor.keys(ev).checks.iter().any(|k| k.key == h.key))
                .take(20)
                .map(|(ev, e)| {
                    json!({ "event_id": e.id, "received_at_ms": e.received_at_ms, "title": ev.title,
                            "service": ev.service, "severity": ev.severity.as_str() })
                })
                .collect();
            json!({ "rule": rule, "key": h.key, "alert_id": h.alert_id, "event_id": h.first_event_id,
                    "title": h.body["title"], "service": h.body["service"], "severity": h.body["severity"],
                    "last_seen_ms": h.last_seen_ms, "until_ms": h.last_seen_ms + h.window_ms, "mutes": mutes })
        })
        .collect())
}

/// `sluice_storm_active{route="…"}` as this process last set it, if it leads the flusher.
fn storm_gauge(rendered: &str, route: &str) -> Option<bool> {
    let prefix = format!("sluice_storm_active{{route=\"{route}\"}} ");
    rendered
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v > 0.0)
}

/// What the overview shows, as of now.
pub(crate) async fn snapshot(state: &AppState) -> Result<Value, ApiError> {
    let now = now_ms();
    let store = &state.store;
    let counts = store.recent_counts(now - RATE_WINDOW_MS).await?;
    let stats = store.outbox_stats(now).await?;
    let lanes = store.lanes(now, 200).await?;
    let leaders = store.leaders(now).await?;
    let rendered = state.metrics.as_ref().map(|m| m.render());
    let rate_limited = rendered
        .as_deref()
        .map(|r| counter_sum(r, "sluice_slack_ratelimited_total") as u64);
    let mut storms = Vec::new();
    for route in state.config.router.noise_routes() {
        let Some(storm) = route.noise.storm.as_ref() else {
            continue;
        };
        let rate = store.route_rate(&route.rule, now - storm.window_ms).await?;
        let active = rendered
            .as_deref()
            .and_then(|r| storm_gauge(r, &route.rule))
            .unwrap_or(rate > storm.above);
        storms.push(
            json!({ "route": route.rule, "rate": rate, "above": storm.above,
                            "window_ms": storm.window_ms, "active": active }),
        );
    }
    let calls = store.calls_by_channel(now - BUDGET_WINDOW_MS, 500).await?;
    let limited = rendered
        .as_deref()
        .map(|r| counter_by(r, "sluice_slack_ratelimited_total", "method"))
        .unwrap_or_default();
    let budget = budget_use(
        &calls,
        &limited,
        state.config.slack.limits.post_message_per_minute,
    );
    let inhibitions = inhibitions(state, now).await?;
    let mut replicas: Vec<&str> = lanes
        .iter()
        .filter_map(|l| l.owner.as_deref())
        .chain(leaders.iter().filter(|l| l.held).map(|l| l.owner.as_str()))
        .collect();
    replicas.sort_unstable();
    replicas.dedup();
    let window_s = RATE_WINDOW_MS as f64 / 1000.0;
    let lanes: Vec<Value> = lanes
        .iter()
        .map(|l| {
            json!({ "lane": l.lane, "pending": l.pending, "owner": l.owner, "lease_until_ms": l.lease_until_ms,
                    "oldest_age_ms": l.oldest_pending_at_ms.map(|t| (now - t).max(0)) })
        })
        .collect();
    Ok(json!({
        "at_ms": now,
        "window_ms": RATE_WINDOW_MS,
        "events_in": counts.events_in,
        "calls_out": counts.calls_out,
        "events_in_per_s": counts.events_in as f64 / window_s,
        "calls_out_per_s": counts.calls_out as f64 / window_s,
        "outbox": { "pending": stats.pending, "oldest_pending_age_ms": stats.oldest_pending_age_ms,
                    "dead": stats.dead, "lanes_leased": stats.lanes_leased },
        "dead_letters": stats.dead,
        "rate_limited_429": rate_limited,
        "lanes": lanes,
        "storms": storms,
        "budget": budget,
        "inhibitions": inhibitions,
        "replicas": replicas,
        "leaders": leaders,
        "backend": store.backend(),
    }))
}

async fn overview(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(snapshot(&state.app).await?))
}

/// Every [`TICK`], as `snapshot`, `incidents` and `steps` events, until the session ends or the page goes away:
/// one stream keeps every live page current.
async fn stream(
    State(state): State<Arc<ConsoleState>>,
    op: Operator,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let first = true;
    let s = futures::stream::unfold((state, op, first), |(state, op, first)| async move {
        if !first {
            tokio::time::sleep(TICK).await;
        }
        if !state.sessions.is_open(&op.session_id).await {
            return None;
        }
        let app = &state.app;
        let events: Vec<Result<SseEvent, Infallible>> = [
            ("snapshot", snapshot(app).await),
            ("incidents", incident_list(app).await),
            ("steps", steps_view(app).await),
        ]
        .into_iter()
        .map(|(name, v)| {
            Ok(match v {
                Ok(v) => SseEvent::default().event(name).data(v.to_string()),
                Err(e) => SseEvent::default()
                    .event("problem")
                    .data(json!({ "message": e.message }).to_string()),
            })
        })
        .collect();
        Some((futures::stream::iter(events), (state, op, false)))
    });
    Sse::new(s.flatten()).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct EventQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    service: String,
    /// The fate's kind: queued, dropped, unrouted, merged, resolved, suppressed.
    #[serde(default)]
    state: String,
    limit: Option<usize>,
}

const FATES: &[&str] = &[
    "queued",
    "dropped",
    "unrouted",
    "merged",
    "resolved",
    "suppressed",
];

/// Search: by id (exact), or the latest events filtered by source, service and fate.
async fn events(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
    Query(q): Query<EventQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = &state.app.store;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let id = q.id.trim();
    if !id.is_empty() {
        let found = store.event(id).await?;
        let list: Vec<Value> = found
            .into_iter()
            .map(|e| {
                json!({ "id": e.id, "received_at_ms": e.received_at_ms, "source": e.source,
                             "body": e.body, "fate": e.fate })
            })
            .collect();
        return Ok(Json(json!({ "events": list })));
    }
    let fate = q.state.trim().to_ascii_lowercase();
    if !fate.is_empty() && !FATES.contains(&fate.as_str()) {
        return Err(ApiError::bad_request(
            "state",
            format!("state {fate:?} is not one of {}", FATES.join(", ")),
        ));
    }
    let source = Some(q.source.trim()).filter(|s| !s.is_empty());
    let service = q.service.trim();
    let list: Vec<_> = store
        .recent_events(source, SEARCH_SCAN)
        .await?
        .into_iter()
        .filter(|e| service.is_empty() || e.body["service"].as_str() == Some(service))
        .filter(|e| fate.is_empty() || e.fate["kind"].as_str() == Some(fate.as_str()))
        .take(limit)
        .collect();
    Ok(Json(json!({ "events": list, "scanned": SEARCH_SCAN })))
}

/// One event's fate, deliveries (channel + ts) and the decisions taken on its alert.
async fn event(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.app.store.event(&id).await? {
        Some(e) => Ok(Json(json!(e))),
        None => Err(ApiError::not_found(format!("no event {id:?}"))),
    }
}

async fn dead_letters(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
) -> Result<Json<Value>, ApiError> {
    let dead = state.app.store.dead_letters(500).await?;
    Ok(Json(json!({ "dead_letters": dead })))
}

async fn replay(
    State(state): State<Arc<ConsoleState>>,
    Write(op): Write,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let which = ops::parse_replay(&body)?;
    let replayed = ops::replay_dead(&state.app, &op.name, which, "console").await?;
    Ok(Json(json!({ "replayed": replayed })))
}

#[derive(Deserialize)]
struct SilenceQuery {
    all: Option<bool>,
}

async fn list_silences(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
    Query(q): Query<SilenceQuery>,
) -> Result<Json<Value>, ApiError> {
    let list = state
        .app
        .store
        .silences(q.all.unwrap_or(false), now_ms())
        .await?;
    Ok(Json(json!({ "silences": list })))
}

/// Open alerts a silence would match, read-only: the request is validated as creating it would be.
async fn preview_silence(
    State(state): State<Arc<ConsoleState>>,
    Write(op): Write,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let new = silences::parse_request(&body, &op.name)?;
    let preview = Preview::new(&new.matchers).map_err(|e| ApiError::bad_request("matchers", e))?;
    let open = state.app.store.open_alerts(1000).await?;
    let total = open.len();
    let matches: Vec<Value> = open
        .into_iter()
        .filter(|a| {
            serde_json::from_value::<Event>(a.body.clone()).is_ok_and(|e| preview.matches(&e))
        })
        .map(|a| {
            json!({ "alert_id": a.alert_id, "event_id": a.first_event_id, "count": a.count,
                    "last_seen_ms": a.last_seen_ms, "title": a.body["title"], "service": a.body["service"],
                    "severity": a.body["severity"], "source": a.body["source"], "labels": a.body["labels"] })
        })
        .collect();
    Ok(Json(json!({ "matches": matches, "open_alerts": total })))
}

async fn create_silence(
    State(state): State<Arc<ConsoleState>>,
    Write(op): Write,
    body: Bytes,
) -> Result<Response, ApiError> {
    let silence = silences::create_silence(&state.app, &op.name, &body, "console").await?;
    Ok((axum::http::StatusCode::CREATED, Json(json!(silence))).into_response())
}

async fn expire_silence(
    State(state): State<Arc<ConsoleState>>,
    Write(op): Write,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    silences::expire_silence(&state.app, &op.name, &id, "console").await?;
    Ok(Json(json!({ "expired": id })))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
}

/// The latest audit records, newest first, with the whole chain's verification.
async fn audit_log(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let records = state
        .app
        .store
        .audit_tail(q.limit.unwrap_or(100).clamp(1, 1000))
        .await?;
    let verification = ops::audit_verification(&state.app).await?;
    Ok(Json(
        json!({ "records": records, "verification": verification }),
    ))
}

async fn approvals(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
) -> Result<Json<Value>, ApiError> {
    let list = state.app.store.approvals(200).await?;
    Ok(Json(json!({ "approvals": list })))
}

/// Incidents the page lists at most.
const INCIDENTS_SHOWN: usize = 200;
/// Claimed minutes shown per schedule, and step runs shown.
const RUNS_SHOWN: usize = 10;
const STEP_RUNS_SHOWN: usize = 50;

/// Incidents, open ones first: what the list shows of each.
async fn incident_list(state: &AppState) -> Result<Value, ApiError> {
    let list: Vec<Value> = state
        .store
        .incidents(INCIDENTS_SHOWN)
        .await?
        .into_iter()
        .map(|i| {
            json!({ "id": i.id, "title": i.title, "kind": i.kind, "sev": i.sev, "status": i.status,
                    "channel_name": i.channel_name, "channel_id": i.channel_id, "declarer": i.declarer,
                    "created_at_ms": i.created_at_ms, "resolved_at_ms": i.resolved_at_ms, "roles": i.roles,
                    "version": i.version })
        })
        .collect();
    Ok(json!({ "incidents": list }))
}

async fn incidents(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(incident_list(&state.app).await?))
}

/// One incident as it stands, and its whole timeline.
async fn incident(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = &state.app.store;
    let Some(i) = store.incident(&id).await? else {
        return Err(ApiError::not_found(format!("no incident {id:?}")));
    };
    let timeline = store.incident_timeline(&id).await?;
    Ok(Json(json!({ "incident": i, "timeline": timeline })))
}

/// Each `[[schedule]]` with its next due minute and latest claimed minutes, the `[[step]]`s offered to Workflow
/// Builder, and the latest step runs (without the execution's token, which the run keeps to complete it).
async fn steps_view(state: &AppState) -> Result<Value, ApiError> {
    let config = state.config.get();
    let now = now_ms();
    let mut schedules = Vec::new();
    for s in &config.chatops.schedules {
        let runs = state.store.schedule_runs(&s.name, RUNS_SHOWN).await?;
        schedules.push(json!({
            "name": s.name, "cron": s.cron_text, "time_zone": s.cron.time_zone.name(), "channel": s.channel,
            "next_due_ms": s.cron.next_after(now), "runs": runs,
        }));
    }
    let offered: Vec<Value> = config
        .steps
        .iter()
        .map(|s| json!({ "action": s.action, "title": s.title }))
        .collect();
    let runs: Vec<Value> = state
        .store
        .step_runs(STEP_RUNS_SHOWN)
        .await?
        .into_iter()
        .map(|r| {
            json!({ "id": r.id, "step": r.action, "execution_id": r.card["step"]["execution_id"],
                    "actor": r.actor, "state": r.state, "status": r.status, "result": r.result,
                    "started_at_ms": r.started_at_ms, "finished_at_ms": r.finished_at_ms })
        })
        .collect();
    Ok(json!({ "at_ms": now, "schedules": schedules, "steps": offered, "step_runs": runs }))
}

async fn steps(
    State(state): State<Arc<ConsoleState>>,
    _op: Operator,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(steps_view(&state.app).await?))
}

/// The config in force (after any reload), secrets redacted, and what `sluice check` says about it.
async fn config(State(state): State<Arc<ConsoleState>>, _op: Operator) -> Json<Value> {
    let config = state.app.config.get();
    let mut v = super::config_view::view(config);
    v["path"] = json!(state.app.config.path().map(|p| p.display().to_string()));
    Json(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_storm_gauges_are_read_from_the_metrics_text() {
        let text = "# TYPE sluice_slack_ratelimited_total counter\n\
                    sluice_slack_ratelimited_total{method=\"chat.postMessage\"} 3\n\
                    sluice_slack_ratelimited_total{method=\"chat.update\"} 2\n\
                    sluice_slack_ratelimited_total_other 100\n\
                    sluice_storm_active{route=\"db\"} 1\n\
                    sluice_storm_active{route=\"web\"} 0\n";
        assert_eq!(counter_sum(text, "sluice_slack_ratelimited_total"), 5.0);
        assert_eq!(storm_gauge(text, "db"), Some(true));
        assert_eq!(storm_gauge(text, "web"), Some(false));
        assert_eq!(storm_gauge(text, "api"), None);
        assert_eq!(
            counter_by(text, "sluice_slack_ratelimited_total", "method"),
            BTreeMap::from([("chat.postMessage".into(), 3), ("chat.update".into(), 2)])
        );
    }
}
