//! The built-in commands: `status [service]`, `oncall [team]`, `silence <matchers> <duration> <comment>` and
//! `ack <alert>`. Each returns the reply and what the audit log records (`ok` or `refused: …`).

use chrono::{TimeZone, Utc};
use serde_json::json;
use sluice_core::event::Event;
use sluice_domain::command::words;
use sluice_domain::silence::{MatcherSpec, SilenceRequest};
use sluice_inbound::models::SlashCommand;
use sluice_inbound::{Ctx, HandlerError, HandlerResult, Reply};
use sluice_slack_wire::blocks::escape_mrkdwn;
use sluice_store::{MatchOp, Silence};

use super::clock;
use super::gate::Commands;
use crate::outbox::audit;
use crate::state::{now_ms, AppState};

type Answer = (Reply, String);

fn store_error(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::new(e.to_string())
}

fn refused(text: String, why: &str) -> Answer {
    (Reply::ephemeral(text), format!("refused: {why}"))
}

/// A time as people read it, in UTC.
fn when(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Does a silence cover alerts of `service`? (A matcher on the service that names it; other matchers may narrow
/// it further, which is why the list says "for" and shows them.)
fn covers(s: &Silence, service: &str) -> bool {
    s.matchers.iter().any(|m| {
        m.name == "service"
            && match m.op {
                MatchOp::Eq => m.value == service,
                MatchOp::Regex => regex::Regex::new(&format!("^(?:{})$", m.value))
                    .is_ok_and(|re| re.is_match(service)),
                _ => false,
            }
    })
}

fn matchers_text(s: &Silence) -> String {
    s.matchers
        .iter()
        .map(|m| {
            let op = match m.op {
                MatchOp::Eq => "=",
                MatchOp::NotEq => "!=",
                MatchOp::Regex => "=~",
                MatchOp::NotRegex => "!~",
            };
            format!("{}{op}{}", m.name, m.value)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `status`: Sluice's own state; `status <service>`: that service's open alerts, silences and recent events.
pub async fn status(state: &AppState, slash: &str, rest: &str) -> HandlerResult<Answer> {
    let now = now_ms();
    let service = rest.trim();
    if service.is_empty() {
        let stats = state.store.outbox_stats(now).await.map_err(store_error)?;
        let silences = state
            .store
            .silences(false, now)
            .await
            .map_err(store_error)?;
        let text = format!(
            "*Sluice status*\n• outbox: {} pending{}\n• dead letters: {}\n• silences: {}\nFor one service: `{slash} status &lt;service&gt;`.",
            stats.pending,
            stats
                .oldest_pending_age_ms
                .map(|ms| format!(" (oldest {}s)", ms / 1000))
                .unwrap_or_default(),
            stats.dead,
            silences.len()
        );
        return Ok((Reply::ephemeral(text), "ok".into()));
    }
    let of_service = |body: &serde_json::Value| body["service"].as_str() == Some(service);
    let alerts: Vec<_> = state
        .store
        .open_alerts(1000)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|a| of_service(&a.body))
        .collect();
    let silences: Vec<Silence> = state
        .store
        .silences(false, now)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|s| covers(s, service))
        .collect();
    let events: Vec<_> = state
        .store
        .events_since(now - 24 * 3_600_000, 2000)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|e| of_service(&e.body))
        .take(5)
        .collect();
    let name = escape_mrkdwn(service);
    let mut lines = vec![format!("*{name}*")];
    if alerts.is_empty() {
        lines.push("No open alerts.".into());
    } else {
        lines.push(format!("*Open alerts ({})*", alerts.len()));
        for a in alerts.iter().take(10) {
            let e: Option<Event> = serde_json::from_value(a.body.clone()).ok();
            let (title, severity) = e
                .map(|e| (e.title, e.severity.as_str().to_string()))
                .unwrap_or_default();
            lines.push(format!(
                "• [{severity}] {} — `{}` (alert {}), ×{}, since {}",
                escape_mrkdwn(&title),
                escape_mrkdwn(&a.dedup_key),
                a.alert_id,
                a.count,
                when(a.first_seen_ms)
            ));
        }
    }
    if silences.is_empty() {
        lines.push("No silences.".into());
    } else {
        lines.push("*Silences*".into());
        for s in &silences {
            lines.push(format!(
                "• `{}` for {} until {} by {}: {}",
                s.id,
                escape_mrkdwn(&matchers_text(s)),
                when(s.ends_at_ms),
                escape_mrkdwn(&s.author),
                escape_mrkdwn(&s.comment)
            ));
        }
    }
    if events.is_empty() {
        lines.push("No events in the last 24 hours.".into());
    } else {
        lines.push("*Recent events*".into());
        for e in &events {
            let title = e.body["title"].as_str().unwrap_or_default();
            let fate = e.fate["kind"].as_str().unwrap_or("?");
            lines.push(format!(
                "• {} {} → {fate}",
                when(e.received_at_ms),
                escape_mrkdwn(title)
            ));
        }
    }
    Ok((Reply::ephemeral(lines.join("\n")), "ok".into()))
}

/// `oncall [team]`: from the `[[rotation]]`s, on the ChatOps clock.
pub fn oncall(state: &AppState, slash: &str, rest: &str) -> Answer {
    let rotations = &state.config.chatops.rotations;
    if rotations.is_empty() {
        return refused(
            "No on-call rotations are configured. Ask an admin to add a `[[rotation]]` to sluice.toml.".into(),
            "no rotations",
        );
    }
    let team = rest.trim();
    let chosen: Vec<_> = if team.is_empty() {
        rotations.iter().collect()
    } else {
        rotations.iter().filter(|r| r.name == team).collect()
    };
    if chosen.is_empty() {
        let names: Vec<&str> = rotations.iter().map(|r| r.name.as_str()).collect();
        return refused(
            format!(
                "There is no rotation `{}`. Try `{slash} oncall` or one of: {}.",
                escape_mrkdwn(team),
                names.join(", ")
            ),
            "unknown rotation",
        );
    }
    let now = Utc
        .timestamp_millis_opt(clock::now_ms())
        .single()
        .unwrap_or_else(Utc::now);
    let lines: Vec<String> = chosen
        .into_iter()
        .map(|r| match r.at(now) {
            Some(on) => {
                let who = match (&on.now, on.overriding) {
                    (Some(u), false) => format!("<@{u}> is on call"),
                    (Some(u), true) => format!("<@{u}> is on call (override)"),
                    (None, _) => "nobody is on call yet".to_string(),
                };
                format!(
                    "*{}*: {who}; next <@{}> from {}",
                    r.name,
                    on.next,
                    on.next_at.format("%a %-d %b %H:%M %Z")
                )
            }
            None => format!("*{}*: nobody is on call", r.name),
        })
        .collect();
    (Reply::ephemeral(lines.join("\n")), "ok".into())
}

const SILENCE_USAGE: &str = "silence &lt;matchers&gt; &lt;duration&gt; &lt;comment&gt;";

/// `silence service=checkout env=prod 2h deploying the fix`: matchers up to the first word that is a duration,
/// then the comment. Validated and audited like `POST /v1/silences`.
pub async fn silence(
    state: &AppState,
    commands: &Commands,
    slash: &str,
    user: &str,
    channel: &str,
    rest: &str,
) -> HandlerResult<Answer> {
    let usage = format!(
        "Usage: `{slash} {SILENCE_USAGE}`, e.g. `{slash} silence service=checkout 2h deploying the fix`"
    );
    if !commands.alerts.may_act(user, channel).await {
        return Ok(refused(
            "You are not allowed to silence alerts here. Ask an admin to add you to `[actions]` in sluice.toml.".into(),
            "not allowed",
        ));
    }
    let ws = match words(rest) {
        Ok(w) => w,
        Err(e) => {
            return Ok(refused(
                format!("`{slash} silence`: {e}. {usage}"),
                "bad arguments",
            ))
        }
    };
    let at = ws.iter().position(|(_, w)| {
        !w.contains(['=', '~']) && sluice_core::duration::parse_duration(w).is_ok()
    });
    let (matchers, duration, comment) = match at {
        Some(i) if i > 0 => (
            ws[..i].iter().map(|(_, w)| w.clone()).collect::<Vec<_>>(),
            ws[i].1.clone(),
            ws.get(i + 1)
                .map(|(start, _)| rest[*start..].trim().to_string())
                .unwrap_or_default(),
        ),
        Some(_) => {
            return Ok(refused(
                format!("`{slash} silence`: missing &lt;matchers&gt;. {usage}"),
                "bad arguments",
            ))
        }
        None => {
            return Ok(refused(
                format!("`{slash} silence`: missing &lt;duration&gt;. {usage}"),
                "bad arguments",
            ))
        }
    };
    if comment.is_empty() {
        return Ok(refused(
            format!("`{slash} silence`: missing &lt;comment&gt;: say why. {usage}"),
            "bad arguments",
        ));
    }
    let request = SilenceRequest {
        matchers: matchers.into_iter().map(MatcherSpec::Text).collect(),
        starts_at: None,
        ends_at: None,
        duration: Some(duration.clone()),
        author: None,
        comment,
    };
    let now = now_ms();
    let new = match request.validate(user, now) {
        Ok(new) => new,
        Err((field, message)) => {
            return Ok(refused(
                format!(
                    "`{slash} silence`: {field}: {}. {usage}",
                    escape_mrkdwn(&message)
                ),
                "bad arguments",
            ))
        }
    };
    let silence = state
        .store
        .create_silence(new, now)
        .await
        .map_err(store_error)?;
    let detail = json!({ "matchers": silence.matchers, "starts_at_ms": silence.starts_at_ms,
                         "ends_at_ms": silence.ends_at_ms, "comment": silence.comment, "via": "slash command" });
    audit(state, user, "silence.create", &silence.id, "ok", detail).await;
    if let Err(e) = state.refresh_silences(true).await {
        tracing::warn!(error = %e, "silences not reloaded; the next refresh will");
    }
    Ok((
        Reply::ephemeral(format!(
            "Silenced {} for {duration} (until {}): `{}`.",
            escape_mrkdwn(&matchers_text(&silence)),
            when(silence.ends_at_ms),
            silence.id
        )),
        "ok".into(),
    ))
}

/// `ack <alert>`: the open alert with that dedup key or alert id (or any event id), acknowledged through the
/// card's path. `None`: that path answered the user.
pub async fn ack(
    state: &AppState,
    commands: &Commands,
    slash: &str,
    rest: &str,
    ctx: &Ctx<SlashCommand>,
) -> HandlerResult<Option<Answer>> {
    let ws = words(rest).unwrap_or_default();
    let [(_, needle)] = ws.as_slice() else {
        return Ok(Some(refused(
            format!("`{slash} ack`: name one alert. Usage: `{slash} ack &lt;alert&gt;` (its dedup key or alert id)"),
            "bad arguments",
        )));
    };
    let event_id = match state
        .store
        .find_open_alert(needle)
        .await
        .map_err(store_error)?
    {
        Some(a) => a.first_event_id,
        None => match state.store.event(needle).await.map_err(store_error)? {
            Some(_) => needle.clone(),
            None => {
                return Ok(Some(refused(
                    format!(
                    "No open alert `{}`. `{slash} status &lt;service&gt;` lists them with their keys.",
                    escape_mrkdwn(needle)
                ),
                    "no such alert",
                )))
            }
        },
    };
    let Some(card) = state
        .store
        .message_of(&event_id)
        .await
        .map_err(store_error)?
        .into_iter()
        .next()
    else {
        return Ok(Some(refused(
            "That alert's card has not been posted yet; try again in a moment.".into(),
            "card not posted",
        )));
    };
    crate::alerts::acknowledge_from_command(
        state,
        &commands.alerts,
        ctx,
        event_id,
        card.channel,
        card.ts,
    )
    .await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_store::SilenceMatcher;

    fn silence(op: MatchOp, value: &str) -> Silence {
        Silence {
            id: "sil_1".into(),
            matchers: vec![SilenceMatcher {
                name: "service".into(),
                op,
                value: value.into(),
            }],
            starts_at_ms: 0,
            ends_at_ms: 1,
            author: "U1".into(),
            comment: String::new(),
            created_at_ms: 0,
            expired_at_ms: None,
        }
    }

    #[test]
    fn a_silence_covers_a_service_it_names() {
        let table = [
            (MatchOp::Eq, "checkout", true),
            (MatchOp::Eq, "check", false),
            (MatchOp::Regex, "check.*", true),
            (MatchOp::Regex, "check", false),
            (MatchOp::NotEq, "payments", false),
        ];
        for (op, value, want) in table {
            assert_eq!(covers(&silence(op, value), "checkout"), want, "{value}");
        }
    }
}
