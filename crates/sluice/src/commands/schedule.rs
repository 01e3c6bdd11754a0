//! The schedule timer: one leader (the `schedules` lease) asks, every second and for each `[[schedule]]`, which cron
//! minute is due (`sluice_domain::schedule::plan`, from the last minute claimed in the database and the ChatOps
//! clock), and claims that minute in the database (a unique row: one replica wins it even if two lead at once across
//! a lease hand-over) together with its report in the outbox, in one transaction: Sluice's own statistics and/or an
//! allow-listed JSON endpoint, rendered with the schedule's minijinja template. A minute missed while Sluice was
//! down runs once or is recorded as skipped, as the schedule says. Every run and skip is audited (`schedule.run`, `schedule.skip`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use sluice_domain::outbox::outbox_item;
use sluice_domain::outgoing::Origin;
use sluice_domain::schedule::plan;
use sluice_slack_wire::blocks::escape_mrkdwn;
use tokio::sync::watch;

use super::clock;
use crate::config::commands::ScheduleConfig;
use crate::outbox::audit;
use crate::state::{now_ms, AppState};

const TICK: Duration = Duration::from_secs(1);
const ROLE: &str = "schedules";
/// Who the audit log names for a scheduled run.
const ACTOR: &str = "sluice:schedule";

pub async fn run_schedules(state: Arc<AppState>, owner: String, shutdown: watch::Receiver<bool>) {
    if state.config.chatops.schedules.is_empty() {
        return;
    }
    crate::leader::every(&state, ROLE, &owner, TICK, shutdown, || async {
        for s in &state.config.chatops.schedules {
            if let Err(e) = tick(&state, s, &owner, clock::now_ms()).await {
                tracing::warn!(schedule = %s.name, error = %e, "schedule not run; the next tick tries again");
            }
        }
    })
    .await
}

/// One schedule at `now`: claim the due minute, if any, and run or skip it.
async fn tick(
    state: &Arc<AppState>,
    s: &ScheduleConfig,
    owner: &str,
    now: i64,
) -> Result<(), String> {
    let last = state
        .store
        .last_schedule_run(&s.name)
        .await
        .map_err(|e| e.to_string())?;
    let Some(p) = plan(&s.cron, s.missed, last, now) else {
        return Ok(());
    };
    let due = local(s.cron.time_zone, p.due_ms);
    let mut detail =
        json!({ "due": due, "due_ms": p.due_ms, "missed": p.missed, "channel": s.channel });
    if !p.run {
        let claimed = state
            .store
            .claim_schedule_run(&s.name, p.due_ms, "skipped", owner, now_ms(), None)
            .await
            .map_err(|e| e.to_string())?;
        if claimed {
            let why = "skipped: missed while Sluice was down";
            audit(state, ACTOR, "schedule.skip", &s.name, why, detail).await;
        }
        return Ok(());
    }
    // Rendered before the claim: the claim and the post are one transaction, so a minute is claimed exactly when its
    // report is in the outbox. A report that cannot be rendered is posted as the error, not lost.
    let (text, result) = match report(state, s, p.due_ms, now, &due).await {
        Ok(text) => (text, "ok".to_string()),
        Err(e) => (
            format!("*{}*: the report could not be made: {e}", s.name),
            format!("error: {e}"),
        ),
    };
    let args = json!({ "channel": s.channel, "text": text });
    let post = outbox_item(
        &state.config.slack.team_id,
        &s.channel,
        "chat.postMessage",
        args,
    );
    let claimed = state
        .store
        .claim_schedule_run(&s.name, p.due_ms, "run", owner, now_ms(), Some(post))
        .await
        .map_err(|e| e.to_string())?;
    if !claimed {
        return Ok(());
    }
    state.wake.notify_one();
    detail["late"] = json!(p.missed > 0);
    audit(state, ACTOR, "schedule.run", &s.name, &result, detail).await;
    Ok(())
}

/// Every string in outside JSON mrkdwn-escaped, so an endpoint's `<!channel>` cannot ping anyone.
fn escaped(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(escape_mrkdwn(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(escaped).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (escape_mrkdwn(&k), escaped(v)))
                .collect(),
        ),
        other => other,
    }
}

fn local(tz: Tz, ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_default()
}

/// The report's text: the template over `schedule`, `due`, `stats` (with `report = "stats"`) and `data` (the
/// url's JSON; a failed fetch is said in the report rather than skipping it).
async fn report(
    state: &AppState,
    s: &ScheduleConfig,
    due_ms: i64,
    now: i64,
    due: &str,
) -> Result<String, String> {
    let tz = s.cron.time_zone;
    let stats = if s.stats {
        let to = now.max(due_ms);
        let st = state
            .store
            .period_stats(to - s.period_ms, to)
            .await
            .map_err(|e| format!("statistics: {e}"))?;
        let pairs = |v: &[(String, i64)]| -> Vec<Value> {
            v.iter()
                .map(|(name, count)| json!({ "name": escape_mrkdwn(name), "count": count }))
                .collect()
        };
        json!({
            "from": local(tz, st.from_ms), "to": local(tz, st.to_ms),
            "received": st.received, "posted": st.posted, "suppressed": st.suppressed,
            "dead_lettered": st.dead_lettered, "approvals": st.approvals,
            "noisiest_services": pairs(&st.noisiest_services), "noisiest_routes": pairs(&st.noisiest_routes),
            "sampled": st.sampled,
        })
    } else {
        Value::Null
    };
    let (data, fetch_error) = match &s.url {
        Some(url) => match fetch(state, url, s.timeout_ms).await {
            Ok(v) => (escaped(v), None),
            Err(e) => (Value::Null, Some(e)),
        },
        None => (Value::Null, None),
    };
    let to = now.max(due_ms);
    let digest = if s.digest_channels.is_empty() {
        Value::Null
    } else {
        Value::String(digest(state, s, to - s.period_ms).await)
    };
    let env = minijinja::Environment::new();
    let text = env
        .render_str(
            &s.template,
            json!({ "schedule": s.name, "due": due, "stats": stats, "data": data, "digest": digest }),
        )
        .map_err(|e| format!("template: {e}"))?;
    Ok(match fetch_error {
        Some(e) => format!("{text}\n⚠️ {e}"),
        None => text,
    })
}

/// The digest of the schedule's channels since `since_ms` (`sluice_domain::incident::digest`, read with
/// `conversations.history`), summarised by the configured LLM when there is one; its failure falls back to the
/// extractive digest and says so.
async fn digest(state: &AppState, s: &ScheduleConfig, since_ms: i64) -> String {
    use sluice_domain::incident::{digest as extract, DigestMessage};
    let slack = match state.config.slack_client() {
        Ok(c) => c,
        Err(_) => return "⚠️ the digest needs a Slack bot token".into(),
    };
    let mut parts = Vec::new();
    for name in &s.digest_channels {
        // Slack's history reads take only ids.
        let channel = if crate::dispatch::recover::is_channel_id(name) {
            name.clone()
        } else {
            match crate::dispatch::recover::channel_id(&slack, name).await {
                Ok(Some(id)) => id,
                _ => {
                    parts.push(format!("⚠️ there is no channel #{name} to digest"));
                    continue;
                }
            }
        };
        let read = slack
            .call(
                "conversations.history",
                &json!({"channel": channel, "oldest": format!("{}.000000", since_ms / 1000), "limit": 200}),
            )
            .await;
        let messages: Vec<DigestMessage> = match read {
            Ok(v) => v["messages"]
                .as_array()
                .map(|ms| {
                    ms.iter()
                        .filter(|m| m["bot_id"].is_null())
                        .rev()
                        .map(|m| DigestMessage {
                            text: m["text"].as_str().unwrap_or_default().to_string(),
                            pinned: m["reactions"].as_array().is_some_and(|rs| {
                                rs.iter().any(|r| r["name"].as_str() == Some("pushpin"))
                            }),
                            replies: m["reply_count"].as_u64().unwrap_or(0) as u32,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Err(e) => {
                parts.push(format!("⚠️ #{name} could not be read: {e}"));
                continue;
            }
        };
        parts.extend(extract(name, &messages));
    }
    if parts.is_empty() {
        return "No decisions or action items in this period.".into();
    }
    let extractive = parts.join("\n");
    let Some((url, key_env, model)) = &s.llm else {
        return extractive;
    };
    match summarise(
        &state.config.approvals.allow_link_local,
        url,
        key_env.as_deref(),
        model,
        &extractive,
        s.timeout_ms,
    )
    .await
    {
        Ok(summary) => format!("*Summary:*\n{}", escape_mrkdwn(summary.trim())),
        Err(e) => format!(
            "{extractive}\n⚠️ the summary service failed ({e}); this is the extractive digest"
        ),
    }
}

/// Asks an OpenAI-compatible chat-completions endpoint to summarise `text`.
async fn summarise(
    allow_link_local: &[std::net::IpAddr],
    url: &str,
    key_env: Option<&str>,
    model: &str,
    text: &str,
    timeout_ms: u64,
) -> Result<String, String> {
    let body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Summarise these decisions and action items for a team channel, briefly, keeping every decision and action item."},
            {"role": "user", "content": text},
        ],
    });
    let origin = Origin::of(url)?;
    let client = crate::egress::client_for(
        url,
        &origin,
        allow_link_local,
        Duration::from_millis(timeout_ms),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut req = client.post(url).json(&body);
    if let Some(key) = key_env.and_then(|k| std::env::var(k).ok()) {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {timeout_ms} ms")
        } else {
            "unreachable".to_string()
        }
    })?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status().as_u16()));
    }
    let v: Value = r.json().await.map_err(|_| "not JSON".to_string())?;
    v["choices"][0]["message"]["content"]
        .as_str()
        .filter(|c| !c.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| "no choices[0].message.content".to_string())
}

/// GETs an allow-listed JSON endpoint (through `crate::egress`: never a link-local or metadata address unless
/// listed, no redirects), within `timeout_ms`.
async fn fetch(state: &AppState, url: &str, timeout_ms: u64) -> Result<Value, String> {
    // Checked at start too; checked again so that nothing but a listed destination is ever called.
    let origin = Origin::of(url)?;
    if !state.config.approvals.allowed().contains(&origin) {
        return Err(format!("{origin} is not allow-listed"));
    }
    let client = crate::egress::client_for(
        url,
        &origin,
        &state.config.approvals.allow_link_local,
        Duration::from_millis(timeout_ms),
    )
    .await
    .map_err(|e| e.to_string())?;
    let r = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{url} did not answer within {timeout_ms} ms")
        } else {
            format!("{url} could not be reached")
        }
    })?;
    if !r.status().is_success() {
        return Err(format!("{url} answered {}", r.status()));
    }
    r.json::<Value>()
        .await
        .map_err(|_| format!("{url} did not answer with JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_json_is_escaped_everywhere() {
        let v = json!({ "<!channel>": ["a & b", { "n": 3, "t": "<@U1>" }], "ok": true });
        assert_eq!(
            escaped(v),
            json!({ "&lt;!channel&gt;": ["a &amp; b", { "n": 3, "t": "&lt;@U1&gt;" }], "ok": true })
        );
    }
}
