use super::*;
use crate::testutil::{assert_valid, field, link};
use serde_json::json;
use sluice_core::{Kind, Severity};

fn parse(body: &[u8]) -> Result<Parsed, SourceError> {
    Alertmanager.parse(&Headers::new(), body)
}

fn events(body: &[u8]) -> Vec<Event> {
    let parsed = parse(body).expect("parses");
    assert_valid(&parsed.events);
    parsed.events
}

#[test]
fn a_group_with_firing_and_resolved_alerts_gives_one_event_each() {
    let ev = events(include_bytes!("fixtures/grouped.json"));
    assert_eq!(ev.len(), 2);

    let firing = &ev[0];
    assert_eq!(firing.title, "Checkout 5xx rate above 5% on 10.0.3.17");
    // Raw text: escaping is the renderer's job.
    assert!(
        firing.text.contains("See <the dashboard> & logs."),
        "{}",
        firing.text
    );
    assert_eq!(firing.severity, Severity::Critical);
    assert_eq!(firing.status, Status::Firing);
    assert_eq!(firing.kind, Kind::Alert);
    assert_eq!(firing.source, "alertmanager");
    assert_eq!(firing.service, "checkout", "service wins over job");
    assert_eq!(firing.environment, "prod");
    assert_eq!(firing.labels["instance"], "10.0.3.17:8080");
    assert_eq!(firing.labels.len(), 7);
    assert_eq!(firing.dedup_key.as_deref(), Some("am:a1b2c3d4e5f60718"));
    assert_eq!(
        firing.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_714_564_800)
    );
    assert_eq!(field(firing, "dashboard"), Some("Checkout / Overview"));
    assert_eq!(
        field(firing, "runbook_url"),
        None,
        "shown as a link instead"
    );
    assert!(link(firing, "Source")
        .is_some_and(|u| u.starts_with("http://prometheus-0.monitoring:9090/graph?")));
    assert_eq!(
        link(firing, "Runbook"),
        Some("https://runbooks.example.com/checkout/errors")
    );
    assert_eq!(
        link(firing, "Silence"),
        Some("https://alertmanager.example.com/#/silences/new?filter=%7Balertname%3D%22CheckoutHighErrorRate%22%2Cenv%3D%22prod%22%2Cinstance%3D%2210.0.3.17%3A8080%22%2Cjob%3D%22checkout-api%22%2Cservice%3D%22checkout%22%2Cseverity%3D%22critical%22%2Cteam%3D%22payments%22%7D")
    );

    let resolved = &ev[1];
    assert_eq!(resolved.status, Status::Resolved);
    assert_eq!(
        resolved.title, "CheckoutHighErrorRate",
        "no summary: the alert name"
    );
    assert_eq!(resolved.text, "Error rate back under 5%.");
    assert_eq!(
        resolved.severity,
        Severity::Critical,
        "a resolved alert keeps its severity"
    );
    assert_eq!(
        resolved.service, "checkout-api",
        "job when there is no service label"
    );
    assert_eq!(resolved.environment, "staging");
    assert_eq!(
        resolved.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_714_564_530),
        "resolved alerts happened when they ended"
    );
    assert_eq!(link(resolved, "Silence"), None, "nothing to silence");
    assert_eq!(resolved.dedup_key.as_deref(), Some("am:0f9e8d7c6b5a4321"));
}

#[test]
fn extra_fields_are_ignored_and_odd_values_are_explained() {
    let ev = events(include_bytes!("fixtures/extras.json"));
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e.severity, Severity::Warning);
    assert_eq!(
        field(e, "Severity"),
        Some("\"P2\" is not a known severity; shown as warning")
    );
    assert_eq!(e.service, "postgres");
    assert_eq!(e.environment, "eu-1", "cluster when there is no env label");
    assert_eq!(link(e, "Source"), None, "an empty generatorURL is no link");
    assert_eq!(field(e, "__internal"), None);
    assert_eq!(
        field(e, "Truncated"),
        Some("Alertmanager left 12 more alerts of this group out of the notification (max_alerts)")
    );
    // A trailing slash on externalURL and quotes in a label value still give a working link.
    let silence = link(e, "Silence").unwrap_or_default();
    assert!(
        silence.starts_with("https://am.example.com/alertmanager/#/silences/new?filter=%7B"),
        "{silence}"
    );
    assert!(silence.contains("%5C%22data%5C%22"), "{silence}");
}

#[test]
fn missing_optional_fields_still_give_usable_events() {
    let ev = events(include_bytes!("fixtures/minimal.json"));
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].title, "Watchdog");
    assert_eq!(ev[0].status, Status::Firing);
    assert_eq!(ev[0].severity, Severity::Warning);
    assert!(ev[0].links.is_empty());
    assert_eq!(ev[0].occurred_at, None);
    assert_eq!(ev[0].service, "");
    // No alert status: the group's.
    assert_eq!(ev[1].status, Status::Resolved);
    // No fingerprint: a stable hash of the labels, the same on every delivery.
    let key = ev[1].dedup_key.clone().unwrap_or_default();
    assert!(key.starts_with("am:") && key.len() == 3 + 32, "{key}");
    let again = events(
        json!({"alerts": [{"status": "resolved", "labels": {"instance": "node-3", "alertname": "NodeDown"}}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(again[0].dedup_key.as_deref(), Some(key.as_str()));
    assert_ne!(ev[0].dedup_key, ev[1].dedup_key);
}

#[test]
fn an_empty_group_is_ignored_with_a_reason() {
    let parsed = parse(br#"{"version":"4","status":"firing","alerts":[]}"#).unwrap_or_default();
    assert!(parsed.events.is_empty());
    assert_eq!(
        parsed.ignored.as_deref(),
        Some("the alert group has no alerts")
    );
}

#[test]
fn a_giant_alert_is_cut_to_fit() {
    let labels: serde_json::Map<String, serde_json::Value> = (0..300)
        .map(|i| (format!("label_{i:03}"), json!("v".repeat(2000))))
        .chain([("alertname".to_owned(), json!("Big"))])
        .collect();
    let body = json!({
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": "S".repeat(10_000), "description": "D".repeat(100_000)},
            "fingerprint": "f".repeat(1000),
            "generatorURL": format!("https://prom.example.com/{}", "p".repeat(5000)),
        }],
        "externalURL": "https://am.example.com",
    });
    let ev = events(body.to_string().as_bytes());
    let e = &ev[0];
    assert!(e.title.ends_with('…') && e.text.ends_with('…'));
    assert_eq!(e.labels.len(), 100);
    assert!(field(e, "Labels not kept").is_some());
    assert_eq!(
        link(e, "Source"),
        None,
        "a URL too long for a button is left out"
    );
}

#[test]
fn malformed_payloads_name_the_field() {
    let ok_alert = json!({"status": "firing", "labels": {"alertname": "A"}});
    let cases: Vec<(&str, serde_json::Value, &str, &str)> = vec![
        (
            "no alerts",
            json!({"status": "firing"}),
            "alerts",
            "is required (an array)",
        ),
        (
            "alerts object",
            json!({"alerts": {}}),
            "alerts",
            "expected an array, got an object",
        ),
        (
            "alert not object",
            json!({"alerts": [ok_alert, "x"]}),
            "alerts[1]",
            "expected an alert (an object), got a string",
        ),
        (
            "labels missing",
            json!({"alerts": [ok_alert, ok_alert, {"status": "firing"}]}),
            "alerts[2].labels",
            "is required",
        ),
        (
            "labels string",
            json!({"alerts": [ok_alert, ok_alert, {"status": "firing", "labels": "a=b"}]}),
            "alerts[2].labels",
            "expected the alert's labels (an object), got a string",
        ),
        (
            "label value object",
            json!({"alerts": [{"status": "firing", "labels": {"a": {"b": 1}}}]}),
            "alerts[0].labels.a",
            "expected a string, got an object",
        ),
        (
            "annotations array",
            json!({"alerts": [{"status": "firing", "labels": {}, "annotations": []}]}),
            "alerts[0].annotations",
            "expected an object of strings",
        ),
        (
            "bad status",
            json!({"alerts": [{"status": "pending", "labels": {}}]}),
            "alerts[0].status",
            "\"pending\" is not an alert status",
        ),
        (
            "no status anywhere",
            json!({"alerts": [{"labels": {}}]}),
            "alerts[0].status",
            "is required",
        ),
        (
            "bad group status",
            json!({"status": 1, "alerts": [ok_alert]}),
            "status",
            "expected a string, got a number",
        ),
        (
            "bad startsAt",
            json!({"alerts": [{"status": "firing", "labels": {}, "startsAt": "noon"}]}),
            "alerts[0].startsAt",
            "is not a timestamp",
        ),
        (
            "generatorURL number",
            json!({"alerts": [{"status": "firing", "labels": {}, "generatorURL": 5}]}),
            "alerts[0].generatorURL",
            "expected a string, got a number",
        ),
        (
            "externalURL object",
            json!({"externalURL": {}, "alerts": [ok_alert]}),
            "externalURL",
            "expected a string, got an object",
        ),
    ];
    for (name, body, field, fragment) in cases {
        match parse(body.to_string().as_bytes()) {
            Err(SourceError::BadPayload { field: f, message }) => {
                assert_eq!(f, field, "{name}: {message}");
                assert!(
                    message.contains(fragment),
                    "{name}: {message:?} lacks {fragment:?}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    for body in [&b"not json"[..], b"", b"[]"] {
        assert!(
            matches!(parse(body), Err(SourceError::BadPayload { ref field, .. }) if field.is_empty()),
            "{body:?}"
        );
    }
}

#[test]
fn an_unknown_payload_version_is_unsupported() {
    let e = parse(br#"{"version":"3","alerts":[]}"#).unwrap_err();
    assert!(
        matches!(e, SourceError::Unsupported(ref m) if m.contains("version \"3\"")),
        "{e}"
    );
    assert!(
        parse(br#"{"version":4,"alerts":[]}"#).is_ok(),
        "a numeric 4 is fine"
    );
}

/// The full events for each fixture, so any change in a mapping is a reviewed diff.
#[test]
fn fixture_events_snapshot() {
    for (name, body) in [
        ("grouped", &include_bytes!("fixtures/grouped.json")[..]),
        ("extras", include_bytes!("fixtures/extras.json")),
        ("minimal", include_bytes!("fixtures/minimal.json")),
    ] {
        insta::assert_json_snapshot!(name, events(body));
    }
}
