use super::*;
use crate::testutil::{assert_valid, field, link};
use serde_json::json;
use sluice_core::{Event, Kind, Severity, Status};

fn parse(body: &[u8]) -> Result<Parsed, SourceError> {
    Grafana.parse(&Headers::new(), body)
}

fn events(body: &[u8]) -> Vec<Event> {
    let parsed = parse(body).expect("parses");
    assert_valid(&parsed.events);
    parsed.events
}

#[test]
fn firing_and_resolved_alerts_with_grafana_links_and_values() {
    let ev = events(include_bytes!("fixtures/grouped.json"));
    assert_eq!(ev.len(), 2);
    let firing = &ev[0];
    assert_eq!(firing.title, "Memory above 90% in zone us-1");
    assert_eq!(firing.text, "ledger pods use 94% of their memory limit");
    assert_eq!(firing.severity, Severity::Error, "high maps to error");
    assert_eq!(firing.status, Status::Firing);
    assert_eq!(firing.kind, Kind::Alert);
    assert_eq!(firing.source, "grafana");
    assert_eq!(firing.service, "ledger");
    assert_eq!(firing.environment, "production");
    assert_eq!(firing.labels["grafana_folder"], "Platform");
    assert_eq!(
        firing.dedup_key.as_deref(),
        Some("grafana:c6eadffa33fcdf37")
    );
    assert_eq!(
        firing.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_714_564_800)
    );
    assert_eq!(field(firing, "Value B"), Some("94.2394"));
    assert_eq!(field(firing, "Value C"), Some("1"));
    assert_eq!(field(firing, "owner"), Some("@team-blue"));
    assert_eq!(
        field(firing, "__dashboardUid__"),
        None,
        "Grafana's bookkeeping is hidden"
    );
    let titles: Vec<&str> = firing.links.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Source", "Runbook", "Dashboard", "Panel", "Silence"]
    );
    assert_eq!(
        link(firing, "Panel"),
        Some("https://grafana.example.com/d/abc123?orgId=1&viewPanel=4")
    );

    let resolved = &ev[1];
    assert_eq!(resolved.status, Status::Resolved);
    assert_eq!(resolved.title, "High CPU usage");
    assert_eq!(resolved.severity, Severity::Warning, "no severity label");
    assert_eq!(
        field(resolved, "Severity"),
        None,
        "a missing label is not a misspelling"
    );
    assert_eq!(link(resolved, "Silence"), None);
    assert_eq!(link(resolved, "Dashboard"), None, "empty URLs are no links");
    assert_eq!(
        resolved.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_714_563_000)
    );
    assert!(resolved.fields.is_empty(), "{:?}", resolved.fields);
}

#[test]
fn older_grafana_value_string_and_enterprise_extras() {
    let ev = events(include_bytes!("fixtures/old_value_string.json"));
    let e = &ev[0];
    assert_eq!(e.title, "DatasourceNoData");
    assert_eq!(e.severity, Severity::Info);
    assert_eq!(
        field(e, "Values"),
        Some("[ var='B' labels={queue=orders} value=1.4151331895396988e+04 ]")
    );
    assert_eq!(
        link(e, "Image"),
        Some("https://grafana.example.com/public/img/attachments/xyz.png")
    );
}

#[test]
fn legacy_alerting_is_refused_with_the_fix() {
    let e = parse(include_bytes!("fixtures/legacy.json")).unwrap_err();
    assert!(
        matches!(e, SourceError::Unsupported(ref m) if m.contains("unified alerting")),
        "{e}"
    );
}

#[test]
fn empty_notification_is_ignored() {
    let p = parse(br#"{"status":"firing","alerts":[]}"#).unwrap_or_default();
    assert!(p.events.is_empty());
    assert!(p.ignored.is_some());
}

#[test]
fn malformed_payloads_name_the_field() {
    let ok = json!({"status": "firing", "labels": {"alertname": "A"}});
    let with = |extra: serde_json::Value| {
        let mut a = ok.clone();
        if let (Some(a), Some(extra)) = (a.as_object_mut(), extra.as_object()) {
            a.extend(extra.clone());
        }
        json!({"alerts": [ok, a]})
    };
    let cases: Vec<(&str, serde_json::Value, &str, &str)> = vec![
        (
            "no alerts",
            json!({"status": "firing", "title": "x"}),
            "alerts",
            "is required",
        ),
        (
            "alerts string",
            json!({"alerts": "none"}),
            "alerts",
            "expected an array, got a string",
        ),
        (
            "values array",
            with(json!({"values": [1, 2]})),
            "alerts[1].values",
            "expected an object of query values",
        ),
        (
            "panelURL number",
            with(json!({"panelURL": 4})),
            "alerts[1].panelURL",
            "expected a string, got a number",
        ),
        (
            "labels null",
            with(json!({"labels": null})),
            "alerts[1].labels",
            "is required",
        ),
        (
            "status unknown",
            with(json!({"status": "pending"})),
            "alerts[1].status",
            "not an alert status",
        ),
        (
            "endsAt garbage",
            with(json!({"status": "resolved", "endsAt": "later"})),
            "alerts[1].endsAt",
            "not a timestamp",
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
}

#[test]
fn query_values_read_like_numbers() {
    for (x, want) in [
        (1.0, "1"),
        (94.23943737541908, "94.2394"),
        (0.5, "0.5"),
        (-3.0, "-3"),
        (1e20, "100000000000000000000"),
    ] {
        assert_eq!(number(x), want);
    }
}

/// The full events for each fixture, so any change in a mapping is a reviewed diff.
#[test]
fn fixture_events_snapshot() {
    for (name, body) in [
        ("grouped", &include_bytes!("fixtures/grouped.json")[..]),
        (
            "old_value_string",
            include_bytes!("fixtures/old_value_string.json"),
        ),
    ] {
        insta::assert_json_snapshot!(name, events(body));
    }
}
