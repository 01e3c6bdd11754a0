use super::*;
use crate::testutil::{assert_valid, field, link};
use serde_json::json;

const TOKEN: &str = "gl-hook-token-for-tests";

fn gitlab() -> GitLab {
    GitLab::new(Some(Secret::new(TOKEN)))
}

fn deliver(event: &str, body: &[u8]) -> Result<Parsed, SourceError> {
    let headers = Headers::new()
        .with("X-Gitlab-Event", event)
        .with("X-Gitlab-Token", TOKEN)
        .with("X-Gitlab-Instance", "https://gitlab.example.com");
    gitlab().parse(&headers, body)
}

fn one_event(event: &str, body: &[u8]) -> Event {
    let parsed = deliver(event, body).expect("parses");
    assert_valid(&parsed.events);
    assert_eq!(parsed.events.len(), 1, "{parsed:?}");
    parsed.events.into_iter().next().expect("one event")
}

#[test]
fn a_missing_or_wrong_token_is_unauthorized_before_the_body_is_read() {
    let body = include_bytes!("fixtures/pipeline_failed.json");
    for token in [
        None,
        Some(""),
        Some("gl-hook-token-for-test"),
        Some("GL-HOOK-TOKEN-FOR-TESTS"),
    ] {
        let mut headers = Headers::new().with("X-Gitlab-Event", "Pipeline Hook");
        if let Some(t) = token {
            headers = headers.with("X-Gitlab-Token", t);
        }
        let r = gitlab().parse(&headers, body);
        assert!(
            matches!(r, Err(SourceError::Unauthorized(_))),
            "{token:?}: {r:?}"
        );
        let r = gitlab().parse(&headers, b"not json");
        assert!(
            matches!(r, Err(SourceError::Unauthorized(_))),
            "{token:?}: {r:?}"
        );
    }
    let r = GitLab::new(None).parse(
        &Headers::new()
            .with("X-Gitlab-Event", "Pipeline Hook")
            .with("X-Gitlab-Token", TOKEN),
        body,
    );
    assert!(matches!(r, Err(SourceError::Unauthorized(_))), "{r:?}");
}

#[test]
fn a_failed_pipeline_fires_and_the_next_green_one_resolves_its_card() {
    let red = one_event(
        "Pipeline Hook",
        include_bytes!("fixtures/pipeline_failed.json"),
    );
    assert_eq!(red.title, "Pipeline #31 failed on main in platform/billing");
    assert_eq!(red.text, "Retry <failed> payments & log them");
    assert_eq!(red.severity, Severity::Error);
    assert_eq!(red.status, Status::Firing);
    assert_eq!(red.kind, Kind::Alert);
    assert_eq!(red.source, "gitlab");
    assert_eq!(red.service, "billing");
    assert_eq!(red.labels["project"], "platform/billing");
    assert_eq!(red.labels["ref"], "main");
    assert_eq!(red.labels["trigger"], "push");
    assert_eq!(field(&red, "Pipeline"), Some("#31"));
    assert_eq!(field(&red, "Commit"), Some("bcbb5ec"));
    assert_eq!(field(&red, "Triggered by"), Some("Administrator"));
    assert_eq!(field(&red, "Duration"), Some("6m 12s"));
    assert_eq!(
        field(&red, "Failed jobs"),
        Some("test: test-image"),
        "allowed failures and skipped jobs are not blamed"
    );
    assert_eq!(
        link(&red, "Pipeline"),
        Some("https://gitlab.example.com/platform/billing/-/pipelines/31")
    );
    assert!(link(&red, "Commit").is_some());
    assert_eq!(
        red.dedup_key.as_deref(),
        Some("gl:platform/billing:pipeline:main")
    );
    assert_eq!(
        red.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_714_564_800)
    );

    let green = one_event(
        "Pipeline Hook",
        include_bytes!("fixtures/pipeline_success.json"),
    );
    assert_eq!(
        green.title,
        "Pipeline #32 passed on main in platform/billing"
    );
    assert_eq!(
        (green.severity, green.status),
        (Severity::Ok, Status::Resolved)
    );
    assert_eq!(green.dedup_key, red.dedup_key);
    assert_eq!(field(&green, "Failed jobs"), None);
    assert_eq!(field(&green, "Duration"), Some("1h 06m"));
}

#[test]
fn pipeline_statuses_that_are_not_outcomes_are_ignored() {
    let base: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/pipeline_failed.json")).unwrap_or_default();
    let cases = [
        ("success", Some((Severity::Ok, Status::Resolved))),
        ("failed", Some((Severity::Error, Status::Firing))),
        ("canceled", None),
        ("skipped", None),
        ("running", None),
        ("pending", None),
        ("created", None),
        ("manual", None),
        ("waiting_for_resource", None),
    ];
    for (status, want) in cases {
        let mut body = base.clone();
        body["object_attributes"]["status"] = json!(status);
        let parsed = deliver("Pipeline Hook", body.to_string().as_bytes()).expect(status);
        assert_eq!(
            parsed.events.first().map(|e| (e.severity, e.status)),
            want,
            "{status}"
        );
        if want.is_none() {
            let reason = parsed.ignored.unwrap_or_default();
            assert!(
                reason.contains(&format!("\"{status}\"")),
                "{status}: {reason}"
            );
        }
    }
    let running = deliver(
        "Pipeline Hook",
        include_bytes!("fixtures/pipeline_running.json"),
    )
    .expect("parses");
    assert!(running.events.is_empty() && running.ignored.is_some());
}

#[test]
fn a_named_deploy_pipeline_with_few_fields() {
    let e = one_event(
        "Pipeline Hook",
        include_bytes!("fixtures/pipeline_minimal.json"),
    );
    assert_eq!(e.title, "Deploy to staging failed in ops/infra");
    assert_eq!(e.kind, Kind::Deployment);
    assert_eq!(e.service, "infra");
    assert!(e.links.is_empty() && e.occurred_at.is_none());
    assert_eq!(
        e.dedup_key.as_deref(),
        Some("gl:ops/infra:Deploy to staging:-")
    );
}

#[test]
fn deployments_map_to_the_deployment_card() {
    let e = one_event(
        "Deployment Hook",
        include_bytes!("fixtures/deployment_success.json"),
    );
    assert_eq!(
        e.title,
        "Deployment of platform/billing to production succeeded"
    );
    assert_eq!(e.kind, Kind::Deployment);
    assert_eq!(e.environment, "production");
    assert_eq!(e.text, "Release 3.2.0");
    assert_eq!(e.labels["tier"], "production");
    assert_eq!(field(&e, "Ref"), Some("v3.2.0"));
    assert_eq!(field(&e, "Commit"), Some("279484c0"));
    assert_eq!(
        link(&e, "Job"),
        Some("https://gitlab.example.com/platform/billing/-/jobs/796")
    );
    assert_eq!(
        link(&e, "Environment"),
        Some("https://billing.example.com/")
    );
    assert_eq!(
        e.dedup_key.as_deref(),
        Some("gl:platform/billing:deployment:15")
    );
    assert_eq!(
        e.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_714_565_100)
    );

    let base: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/deployment_success.json"))
            .unwrap_or_default();
    let cases = [
        ("success", Severity::Ok, Status::Resolved),
        ("failed", Severity::Error, Status::Resolved),
        ("canceled", Severity::Warning, Status::Resolved),
        ("running", Severity::Info, Status::Firing),
        ("created", Severity::Info, Status::Firing),
    ];
    for (status, severity, state) in cases {
        let mut body = base.clone();
        body["status"] = json!(status);
        let e = one_event("Deployment Hook", body.to_string().as_bytes());
        assert_eq!((e.severity, e.status), (severity, state), "{status}");
        assert_eq!(
            e.dedup_key.as_deref(),
            Some("gl:platform/billing:deployment:15")
        );
    }
}

#[test]
fn other_events_are_ignored_with_their_name() {
    let p = deliver("Push Hook", br#"{"object_kind":"push"}"#).expect("push");
    assert!(p.events.is_empty());
    assert_eq!(
        p.ignored.as_deref(),
        Some("ignored event type \"Push Hook\"")
    );
}

#[test]
fn malformed_deliveries_name_the_field() {
    let cases: Vec<(&str, &str, serde_json::Value, &str, &str)> = vec![
        (
            "no attributes",
            "Pipeline Hook",
            json!({"project": {"path_with_namespace": "a/b"}}),
            "object_attributes",
            "is required",
        ),
        (
            "no project",
            "Pipeline Hook",
            json!({"object_attributes": {"status": "failed"}}),
            "project",
            "is required",
        ),
        (
            "status number",
            "Pipeline Hook",
            json!({"object_attributes": {"status": 1}, "project": {"path_with_namespace": "a/b"}}),
            "object_attributes.status",
            "expected a string, got a number",
        ),
        (
            "builds object",
            "Pipeline Hook",
            json!({"object_attributes": {"status": "failed"}, "project": {"path_with_namespace": "a/b"}, "builds": {}}),
            "builds",
            "expected an array, got an object",
        ),
        (
            "duration string",
            "Pipeline Hook",
            json!({"object_attributes": {"status": "failed", "duration": "6m"}, "project": {"path_with_namespace": "a/b"}}),
            "object_attributes.duration",
            "expected a number",
        ),
        (
            "bad finished_at",
            "Pipeline Hook",
            json!({"object_attributes": {"status": "failed", "finished_at": "12:00"}, "project": {"path_with_namespace": "a/b"}}),
            "object_attributes.finished_at",
            "is not a timestamp",
        ),
        (
            "project name missing",
            "Deployment Hook",
            json!({"status": "success", "project": {"name": "b"}}),
            "project.path_with_namespace",
            "is required",
        ),
        (
            "unknown deployment status",
            "Deployment Hook",
            json!({"status": "exploded", "project": {"path_with_namespace": "a/b"}}),
            "status",
            "\"exploded\" is not a deployment status",
        ),
        (
            "not json",
            "Deployment Hook",
            json!("just a string"),
            "",
            "expected a JSON object",
        ),
    ];
    for (name, event, body, field, fragment) in cases {
        match deliver(event, body.to_string().as_bytes()) {
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
    let r = gitlab().parse(&Headers::new().with("X-Gitlab-Token", TOKEN), b"{}");
    assert!(
        matches!(r, Err(SourceError::BadPayload { ref field, .. }) if field == "X-Gitlab-Event"),
        "{r:?}"
    );
}

/// The full events for each fixture, so any change in a mapping is a reviewed diff.
#[test]
fn fixture_events_snapshot() {
    for (name, event, body) in [
        (
            "pipeline_failed",
            "Pipeline Hook",
            &include_bytes!("fixtures/pipeline_failed.json")[..],
        ),
        (
            "pipeline_success",
            "Pipeline Hook",
            include_bytes!("fixtures/pipeline_success.json"),
        ),
        (
            "deployment_success",
            "Deployment Hook",
            include_bytes!("fixtures/deployment_success.json"),
        ),
    ] {
        insta::assert_json_snapshot!(name, one_event(event, body));
    }
}
