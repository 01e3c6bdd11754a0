//! `sluice route test`: what an event would do under a config — the route decision, the inhibition rules it meets,
//! its grouping key and the Block Kit it would post — without a server, a database or Slack.
//!
//! It runs the same [`Pipeline::process`] the ingest path runs and prints what that decided. Silences live in a
//! running Sluice's database, not in the config: they are consulted only when the caller passes them (`route test
//! --url`, which reads them from `GET /v1/silences`).

use std::fmt::Write;

use serde_json::Value;
use sluice_core::event::{parse_events, Event};
use sluice_core::route::Decision;
use sluice_domain::living;
use sluice_domain::pipeline::Pipeline;
use sluice_domain::silence::SilenceSet;
use sluice_store::{EventBody, Silence};
use time::OffsetDateTime;

use crate::config::Config;

/// The id the previewed events get (a real one is a UUID given at ingest).
pub const PREVIEW_ID: &str = "route-test";

/// What `body` (one event or an array, as `POST /v1/events` takes it) would do under `cfg` at `now`, with the
/// `silences` of a running Sluice if given. `Err` says why the body would be refused, as the API would.
pub fn explain(
    cfg: &Config,
    body: &Value,
    now: OffsetDateTime,
    silences: Option<&[Silence]>,
) -> Result<String, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let events =
        parse_events(&bytes).map_err(|e| format!("the event would be refused (400): {e}"))?;
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        if events.len() > 1 {
            let _ = writeln!(out, "=== event [{i}]: {}", event.title);
        }
        out.push_str(&one(cfg, event, now, silences)?);
    }
    Ok(out)
}

fn one(
    cfg: &Config,
    event: &Event,
    now: OffsetDateTime,
    given: Option<&[Silence]>,
) -> Result<String, String> {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "event: {} · {} · {} · source={} service={} environment={}",
        event.kind.as_str(),
        event.severity.as_str(),
        event.status.as_str(),
        event.source,
        or_none(&event.service),
        or_none(&event.environment),
    );
    let silences = given.map_or_else(SilenceSet::default, |list| SilenceSet::new(0, list));
    let pipeline = Pipeline {
        silences: &silences,
        router: &cfg.router,
        inhibitor: &cfg.inhibitor,
        renderer: &cfg.renderer,
        team: &cfg.slack.team_id,
        dedup_window_ms: (cfg.dedup.window_secs * 1000) as i64,
    };
    let decision = cfg.router.route(event);
    match &decision {
        Decision::Drop { rule } => {
            let _ = writeln!(
                w,
                "route: dropped by rule {rule:?} (drop = true): nothing is posted"
            );
        }
        Decision::Unrouted => {
            let _ = writeln!(
                w,
                "route: unrouted: no rule matches and there is no [routing] default; the event is recorded, nothing is posted"
            );
        }
        Decision::Deliver {
            deliveries,
            matched,
        } => {
            let _ = writeln!(w, "route: matched {}", quoted(matched));
            for d in deliveries {
                let how = match d
                    .noise
                    .as_deref()
                    .and_then(|n| Some((n, n.group_of(event)?)))
                {
                    Some((noise, labels)) => {
                        let key: Vec<String> =
                            labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                        format!(
                            "grouped: joins the group {{{}}}; the group's card is posted after group_wait ({} ms), not this event's own",
                            key.join(", "),
                            noise.wait_ms
                        )
                    }
                    None => "posts its own card".to_string(),
                };
                let _ = writeln!(
                    w,
                    "  → #{} (rule {:?}, template {:?}): {how}",
                    d.channel.trim_start_matches('#'),
                    d.rule,
                    d.template
                );
            }
        }
    }
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let _ = match (given, silences.silenced_by(event, now_ms)) {
        (None, _) => writeln!(
            w,
            "silences: not consulted: they live in a running Sluice's database (`sluice silence list`), not in the config"
        ),
        (Some(_), Some(id)) => {
            let s = given.into_iter().flatten().find(|s| s.id == id);
            writeln!(
                w,
                "silences: muted by {id} ({:?} by {}): nothing is posted (fate suppressed)",
                s.map(|s| s.comment.as_str()).unwrap_or_default(),
                s.map(|s| s.author.as_str()).unwrap_or_default()
            )
        }
        (Some(list), None) => writeln!(
            w,
            "silences: none of the {} read from the server matches",
            list.len()
        ),
    };
    if matches!(decision, Decision::Deliver { .. }) {
        let keys = cfg.inhibitor.keys(event);
        if keys.checks.is_empty() && keys.provides.is_empty() {
            let _ = writeln!(w, "inhibition: no [[inhibit]] rule matches it");
        }
        for k in &keys.checks {
            let _ = writeln!(
                w,
                "inhibition: target of {:?}: muted (fate suppressed) while an alert matching its source fires with the same `equal` values{}",
                k.rule,
                if k.both_sides { " (it matches the source too, and never mutes itself)" } else { "" }
            );
        }
        for k in &keys.provides {
            let _ = writeln!(
                w,
                "inhibition: source of {:?}: while it fires, it mutes that rule's targets with the same `equal` values",
                k.rule
            );
        }
    }
    if matches!(decision, Decision::Deliver { .. }) {
        let _ = match &event.dedup_key {
            Some(key) => writeln!(
                w,
                "dedup key: {key:?}: the same key within {} s updates one card (×N) instead of posting again",
                cfg.dedup.window_secs
            ),
            None => writeln!(w, "dedup key: none: every such event posts a card of its own"),
        };
    }
    let new = pipeline
        .process(
            PREVIEW_ID.to_string(),
            event,
            EventBody::of(&Value::Null),
            now,
        )
        .map_err(|e| format!("the event would be refused (422): {}", e.0))?;
    for item in &new.outbox {
        // The card is drawn when it is sent; shown here as it would be if sent at once.
        let mut args =
            match living::first_card_of(&cfg.renderer, &item.args, event, PREVIEW_ID, now) {
                Some(card) => card.map_err(|e| format!("the event would be refused (422): {e}"))?,
                None => item.args.clone(),
            };
        if let Some(o) = args.as_object_mut() {
            // The dispatcher's own bookkeeping, not what the route decides.
            o.remove("metadata");
        }
        let pretty = serde_json::to_string_pretty(&args).map_err(|e| e.to_string())?;
        let _ = writeln!(w, "{} to #{}:\n{pretty}", item.method, item.channel);
    }
    Ok(out)
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    /// The demo's config, as `sluice demo` fills it in, with its secret files.
    fn demo() -> Config {
        let dir = tempfile::tempdir().unwrap();
        for (file, value) in [
            ("bot-token", "xoxb-demo"),
            ("signing-secret", "demo-signing-secret"),
            ("api-key", "demo-key"),
            ("hook-secret", "0123456789abcdef0123"),
            ("outgoing-secret", "demo-outgoing-secret-0123456789abcdef"),
        ] {
            std::fs::write(dir.path().join(file), value).unwrap();
        }
        let text = include_str!("demo.toml")
            .replace("{listen}", "127.0.0.1:8080")
            .replace("{data_dir}", "/tmp/sluice-demo")
            .replace("{api_base}", "http://127.0.0.1:9999/api/")
            .replace("{sim_addr}", "127.0.0.1:9999");
        Config::parse(&text, dir.path(), &BTreeMap::<String, String>::new())
            .unwrap_or_else(|p| panic!("{p:#?}"))
    }

    #[test]
    fn the_demo_config_explains_a_handful_of_events() {
        let cfg = demo();
        let now = time::macros::datetime!(2026-12-02 14:00 UTC);
        let cases = [
            (
                "critical_payments_alert",
                json!({"title": "Checkout error rate 12%", "severity": "critical", "status": "firing",
                       "source": "prometheus", "service": "checkout", "labels": {"team": "payments"},
                       "dedup_key": "checkout-errors"}),
            ),
            (
                "warning_is_an_inhibition_target",
                json!({"title": "Checkout p99 900 ms", "severity": "warning", "status": "firing",
                       "source": "prometheus", "service": "checkout", "dedup_key": "checkout-latency"}),
            ),
            (
                "kubernetes_alert_is_grouped",
                json!({"title": "Pod crash looping", "severity": "error", "status": "firing",
                       "source": "kubernetes", "service": "api", "dedup_key": "api-crashloop"}),
            ),
            (
                "green_deploy_is_dropped",
                json!({"title": "Deployed api 1.2.3", "kind": "deployment", "severity": "ok",
                       "status": "resolved", "source": "ci", "service": "api"}),
            ),
            (
                "failed_deploy_goes_to_deploys",
                json!({"title": "Deploy of api 1.2.4 failed", "kind": "deployment", "severity": "error",
                       "status": "firing", "source": "ci", "service": "api"}),
            ),
        ];
        for (name, event) in cases {
            let text = explain(&cfg, &event, now, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            insta::assert_snapshot!(name, text);
        }
    }

    /// With a running Sluice's silences (`--url`), a matching one is named and nothing is posted.
    #[test]
    fn silences_given_are_consulted() {
        let cfg = demo();
        let now = time::macros::datetime!(2026-12-02 14:00 UTC);
        let at = now.unix_timestamp() * 1000;
        let silence: Silence = serde_json::from_value(json!({
            "id": "sil_1", "matchers": [{"name": "service", "op": "=", "value": "checkout"}],
            "starts_at_ms": at - 60_000, "ends_at_ms": at + 60_000, "author": "alice",
            "comment": "migration", "created_at_ms": at - 60_000, "expired_at_ms": null
        }))
        .unwrap();
        let event = |service: &str| json!({"title": "Disk full", "severity": "warning", "status": "firing", "source": "am", "service": service});
        let muted = explain(
            &cfg,
            &event("checkout"),
            now,
            Some(std::slice::from_ref(&silence)),
        )
        .unwrap();
        assert!(
            muted.contains("silences: muted by sil_1 (\"migration\" by alice)"),
            "{muted}"
        );
        assert!(!muted.contains("chat.postMessage"), "{muted}");
        let other = explain(&cfg, &event("search"), now, Some(&[silence])).unwrap();
        assert!(
            other.contains("none of the 1 read from the server matches"),
            "{other}"
        );
        assert!(other.contains("chat.postMessage to #alerts"), "{other}");
    }

    #[test]
    fn a_bad_event_says_why_it_would_be_refused() {
        let cfg = demo();
        let now = time::macros::datetime!(2026-12-02 14:00 UTC);
        let e = explain(
            &cfg,
            &json!({"title": "x", "severity": "loud", "status": "firing", "source": "s"}),
            now,
            None,
        )
        .unwrap_err();
        assert!(e.contains("400") && e.contains("severity"), "{e}");
    }
}
