use super::*;
use crate::route::{Decision, Router, RoutingConfig};

fn router(toml_src: &str) -> Result<Router, Vec<ConfigError>> {
    #[derive(Deserialize)]
    struct Doc {
        routing: RoutingConfig,
    }
    let doc: Doc = toml::from_str(toml_src).expect("toml");
    let templates = ["auto".to_owned()].into_iter().collect();
    Router::new(&doc.routing, &templates)
}

fn alert(service: &str, severity: &str, key: &str) -> Event {
    serde_json::from_value(serde_json::json!({
        "title": "Disk full", "severity": severity, "status": "firing", "source": "am",
        "service": service, "labels": {"team": "storage"}, "dedup_key": key,
    }))
    .unwrap()
}

fn noise_of(r: &Router, e: &Event) -> Option<Arc<Noise>> {
    match r.route(e) {
        Decision::Deliver { deliveries, .. } => deliveries[0].noise.clone(),
        other => panic!("{other:?}"),
    }
}

use std::sync::Arc;

#[test]
fn a_grouped_route_carries_its_timings_and_defaults_like_alertmanager() {
    let r = router(
        r#"[routing]
default = { channels = ["alerts"], group_by = ["service", "labels.team"], group_wait = "10s" }
"#,
    )
    .unwrap();
    let n = noise_of(&r, &alert("db", "critical", "k1")).expect("grouped");
    assert_eq!(
        n.group_by,
        GroupBy::Labels(vec!["service".into(), "labels.team".into()])
    );
    assert_eq!(
        (n.wait_ms, n.interval_ms, n.repeat_ms),
        (10_000, 300_000, 14_400_000)
    );
    assert_eq!(n.storm, None);
    assert_eq!(
        n.group_of(&alert("db", "critical", "k1")),
        Some(vec![
            ("service".into(), "db".into()),
            ("labels.team".into(), "storage".into())
        ])
    );
    let mut deploy = alert("db", "info", "k");
    deploy.dedup_key = None;
    assert_eq!(n.group_of(&deploy), None, "only alerts are grouped");
}

#[test]
fn each_alert_and_empty_group_by_are_alertmanagers_two_extremes() {
    let r = router(
        r#"[[routing.rule]]
name = "each"
match = { service = "db" }
channels = ["db"]
group_by = ["..."]
storm = { above = 100 }

[[routing.rule]]
name = "all"
channels = ["all"]
group_by = []
"#,
    )
    .unwrap();
    let n = noise_of(&r, &alert("db", "critical", "k1")).unwrap();
    assert_eq!(
        n.group_of(&alert("db", "critical", "k1")),
        Some(vec![("alert".into(), "k1".into())])
    );
    assert_eq!(
        n.storm,
        Some(Storm {
            above: 100,
            window_ms: 60_000,
            digest_ms: 300_000
        })
    );
    let n = noise_of(&r, &alert("api", "warning", "k2")).unwrap();
    assert_eq!(n.group_of(&alert("api", "warning", "k2")), Some(vec![]));
}

#[test]
fn broken_noise_settings_are_refused_with_the_route_and_a_fix() {
    let cases = [
        (r#"group_wait = "10s""#, "has no `group_by`"),
        (r#"storm = { above = 5 }"#, "has no `group_by`"),
        (
            r#"group_by = ["service"]
group_interval = "soon""#,
            "is not a duration",
        ),
        (
            r#"group_by = ["service"]
repeat_interval = "0s""#,
            "longer than zero",
        ),
        (r#"group_by = ["service", "..."]"#, "mixes"),
        (
            r#"group_by = ["service"]
storm = { above = 0 }"#,
            "at least 1",
        ),
        (
            r#"group_by = ["service"]
storm = { above = 5, per = "a while" }"#,
            "storm.per",
        ),
        (
            r#"group_by = ["service"]
storm = { above = 5, every = "1m" }"#,
            "unknown field",
        ),
    ];
    for (keys, want) in cases {
        let src = format!("[[routing.rule]]\nname = \"r\"\nchannels = [\"c\"]\n{keys}\n");
        #[derive(Deserialize)]
        struct Doc {
            routing: RoutingConfig,
        }
        let errors = match toml::from_str::<Doc>(&src) {
            Err(e) => vec![ConfigError::from_toml(&e)],
            Ok(doc) => {
                let templates = ["auto".to_owned()].into_iter().collect();
                Router::new(&doc.routing, &templates)
                    .err()
                    .unwrap_or_default()
            }
        };
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains(want) && e.span.is_some()),
            "{keys}: want {want:?}, got {errors:?}"
        );
    }
}

fn storm() -> Storm {
    Storm {
        above: 100,
        window_ms: 10_000,
        digest_ms: 30_000,
    }
}

/// The rate over a sliding window of `window` seconds, for events arriving per second as in `per_second`.
fn windowed(per_second: &[u64], sec: usize, window: usize) -> u64 {
    per_second[sec.saturating_sub(window - 1)..=sec]
        .iter()
        .sum()
}

#[test]
fn the_storm_guard_starts_above_the_rate_and_ends_at_half_of_it() {
    let s = storm();
    let mut g = StormGuard::default();
    // 5 events a second for 20 s (50 per 10 s window: calm), then 30 a second for 10 s (300: storm), then 4 a
    // second (40 per window: calm again once the burst has left the window).
    let per_second: Vec<u64> = (0..60)
        .map(|sec| match sec {
            0..20 => 5,
            20..30 => 30,
            _ => 4,
        })
        .collect();
    let mut changes = Vec::new();
    for sec in 0..60 {
        let c = g.observe(&s, sec as i64 * 1000, windowed(&per_second, sec, 10));
        if c != StormChange::Steady {
            changes.push((sec, c, g.rate()));
        }
    }
    assert_eq!(
        changes,
        vec![
            (22, StormChange::Started, 125),
            (39, StormChange::Ended, 40)
        ],
        "starts once the window holds more than 100, ends at 50 or fewer"
    );
    assert_eq!(g.since_ms(), None);
}

#[test]
fn a_rate_between_half_and_the_limit_keeps_the_current_state() {
    let s = storm();
    let mut g = StormGuard::default();
    assert_eq!(g.observe(&s, 0, 0), StormChange::Steady);
    assert_eq!(g.observe(&s, 1000, 150), StormChange::Started);
    assert_eq!(g.since_ms(), Some(1000));
    for sec in 2..30 {
        assert_eq!(g.observe(&s, sec * 1000, 80), StormChange::Steady, "{sec}");
    }
    assert_eq!(g.observe(&s, 30_000, 50), StormChange::Ended);
    // And calm below the limit stays calm.
    assert_eq!(g.observe(&s, 31_000, 100), StormChange::Steady);
    assert_eq!(g.since_ms(), None);
}

#[test]
fn digest_counts_add_up_alerts_and_events_per_service_and_severity() {
    let mut c = DigestCounts::default();
    c.add("db", "critical", 14);
    c.add("db", "critical", 1);
    c.add("api", "warning", 3);
    assert_eq!(c.by[&("db".into(), "critical".into())], (2, 15));
    assert_eq!((c.alerts(), c.events()), (3, 18));
}
