use super::*;
use crate::testutil::{assert_valid, field, link};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

const SECRET: &str = "webhook-secret-for-tests";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn github() -> GitHub {
    GitHub::new(Some(Secret::new(SECRET)))
}

/// A correctly signed delivery of `event`.
fn deliver(event: &str, body: &[u8]) -> Result<Parsed, SourceError> {
    let headers = Headers::new()
        .with("x-github-event", event)
        .with("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .with("x-hub-signature-256", sign(SECRET, body));
    github().parse(&headers, body)
}

fn one_event(event: &str, body: &[u8]) -> Event {
    let parsed = deliver(event, body).expect("parses");
    assert_valid(&parsed.events);
    assert_eq!(parsed.events.len(), 1, "{parsed:?}");
    assert_eq!(parsed.ignored, None);
    parsed.events.into_iter().next().expect("one event")
}

#[test]
fn githubs_documented_signature_example_is_accepted() {
    let body = b"Hello, World!";
    let headers = Headers::new().with("X-GitHub-Event", "ping").with(
        "X-Hub-Signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    );
    let gh = GitHub::new(Some(Secret::new("It's a Secret to Everybody")));
    // The signature holds, so the body is read, and it is not JSON.
    let err = gh.parse(&headers, body).unwrap_err();
    assert!(
        matches!(err, SourceError::BadPayload { ref field, .. } if field.is_empty()),
        "{err}"
    );
}

#[test]
fn unsigned_or_badly_signed_deliveries_are_unauthorized() {
    let body = include_bytes!("fixtures/workflow_run_failure.json");
    let good = sign(SECRET, body);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("other secret", Some(sign("not-the-secret", body))),
        ("other body", Some(sign(SECRET, b"{}"))),
        ("sha1 header value", Some(good.replace("sha256=", "sha1="))),
        ("empty", Some(String::new())),
    ];
    for (name, sig) in cases {
        let mut headers = Headers::new().with("X-GitHub-Event", "workflow_run");
        if let Some(sig) = sig {
            headers = headers.with("X-Hub-Signature-256", sig);
        }
        let r = github().parse(&headers, body);
        assert!(
            matches!(r, Err(SourceError::Unauthorized(_))),
            "{name}: {r:?}"
        );
    }
    // Checked before the body is read: garbage with a bad signature is unauthorized, not bad.
    let r = github().parse(
        &Headers::new()
            .with("X-GitHub-Event", "push")
            .with("X-Hub-Signature-256", "sha256=00"),
        b"not json",
    );
    assert!(matches!(r, Err(SourceError::Unauthorized(_))), "{r:?}");
}

#[test]
fn a_failed_workflow_run_fires_and_its_green_rerun_resolves_the_same_card() {
    let failed = one_event(
        "workflow_run",
        include_bytes!("fixtures/workflow_run_failure.json"),
    );
    assert_eq!(failed.title, "CI failed on main in acme/checkout");
    assert_eq!(failed.text, "Fix rounding in <Invoice> totals & taxes");
    assert_eq!(failed.severity, Severity::Error);
    assert_eq!(failed.status, Status::Firing);
    assert_eq!(failed.kind, Kind::Alert);
    assert_eq!(failed.source, "github");
    assert_eq!(failed.service, "checkout");
    assert_eq!(failed.labels["repository"], "acme/checkout");
    assert_eq!(failed.labels["branch"], "main");
    assert_eq!(failed.labels["workflow"], "CI");
    assert_eq!(failed.labels["trigger"], "push");
    assert_eq!(field(&failed, "Run"), Some("#1482"));
    assert_eq!(field(&failed, "Commit"), Some("8f3c2a1"));
    assert_eq!(field(&failed, "Triggered by"), Some("octocat"));
    assert_eq!(
        link(&failed, "Run"),
        Some("https://github.com/acme/checkout/actions/runs/9012345678")
    );
    assert_eq!(
        link(&failed, "Commit"),
        Some("https://github.com/acme/checkout/commit/8f3c2a1b9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a")
    );
    assert_eq!(
        failed.dedup_key.as_deref(),
        Some("gh:acme/checkout:.github/workflows/ci.yml:main")
    );
    assert_eq!(
        failed.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_714_564_800)
    );

    let green = one_event(
        "workflow_run",
        include_bytes!("fixtures/workflow_run_rerun_success.json"),
    );
    assert_eq!(green.title, "CI succeeded on main in acme/checkout");
    assert_eq!(green.severity, Severity::Ok);
    assert_eq!(green.status, Status::Resolved);
    assert_eq!(
        green.dedup_key, failed.dedup_key,
        "the re-run updates the failure's card"
    );
    assert_eq!(field(&green, "Run"), Some("#1482 (attempt 2)"));
    assert_eq!(field(&green, "Triggered by"), Some("hubot"));
}

#[test]
fn workflow_conclusions_map_to_severity_and_status() {
    let base: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/workflow_run_failure.json"))
            .unwrap_or_default();
    let cases = [
        ("success", Some((Severity::Ok, Status::Resolved))),
        ("failure", Some((Severity::Error, Status::Firing))),
        ("timed_out", Some((Severity::Error, Status::Firing))),
        ("startup_failure", Some((Severity::Error, Status::Firing))),
        ("action_required", Some((Severity::Warning, Status::Firing))),
        ("cancelled", None),
        ("skipped", None),
        ("neutral", None),
        ("stale", None),
    ];
    for (conclusion, want) in cases {
        let mut body = base.clone();
        body["workflow_run"]["conclusion"] = json!(conclusion);
        let body = body.to_string();
        let parsed = deliver("workflow_run", body.as_bytes()).expect(conclusion);
        let got = parsed.events.first().map(|e| (e.severity, e.status));
        assert_eq!(got, want, "{conclusion}");
        if want.is_none() {
            let reason = parsed.ignored.unwrap_or_default();
            assert!(reason.contains(conclusion), "{conclusion}: {reason}");
        }
    }
}

#[test]
fn runs_still_going_are_ignored() {
    let parsed = deliver(
        "workflow_run",
        include_bytes!("fixtures/workflow_run_in_progress.json"),
    )
    .expect("parses");
    assert!(parsed.events.is_empty());
    assert_eq!(
        parsed.ignored.as_deref(),
        Some("workflow_run \"in_progress\": only completed runs are posted")
    );
}

#[test]
fn a_deploy_workflow_with_few_fields_is_a_deployment() {
    let e = one_event(
        "workflow_run",
        include_bytes!("fixtures/deploy_workflow_minimal.json"),
    );
    assert_eq!(e.kind, Kind::Deployment);
    assert_eq!(e.title, "Deploy to production timed out in acme/ledger");
    assert_eq!(e.severity, Severity::Error);
    assert!(e.links.is_empty() && e.occurred_at.is_none());
    assert_eq!(
        e.dedup_key.as_deref(),
        Some("gh:acme/ledger:Deploy to production:-")
    );
}

#[test]
fn a_failed_check_run() {
    let e = one_event(
        "check_run",
        include_bytes!("fixtures/check_run_failure.json"),
    );
    assert_eq!(
        e.title,
        "Check unit-tests failed on release/2024-05 in acme/checkout"
    );
    assert_eq!(e.text, "3 tests failed");
    assert_eq!(e.severity, Severity::Error);
    assert_eq!(e.kind, Kind::Alert);
    assert_eq!(
        field(&e, "Summary"),
        Some("tax::rounding, tax::zero, invoice::total")
    );
    assert_eq!(field(&e, "App"), Some("CI Bot"));
    assert_eq!(link(&e, "Details"), Some("https://ci.example.com/builds/4"));
    assert_eq!(
        e.dedup_key.as_deref(),
        Some("gh:acme/checkout:check:unit-tests:release/2024-05")
    );
    let mut green: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/check_run_failure.json"))
            .unwrap_or_default();
    green["check_run"]["conclusion"] = json!("success");
    let g = one_event("check_run", green.to_string().as_bytes());
    assert_eq!((g.severity, g.status), (Severity::Ok, Status::Resolved));
    assert_eq!(g.dedup_key, e.dedup_key);
}

#[test]
fn deployment_states_map_to_severity_and_status() {
    let e = one_event(
        "deployment_status",
        include_bytes!("fixtures/deployment_status_success.json"),
    );
    assert_eq!(
        e.title,
        "Deployment of acme/checkout to production succeeded"
    );
    assert_eq!(e.kind, Kind::Deployment);
    assert_eq!(e.environment, "production");
    assert_eq!(e.text, "Deployed v2.14.0");
    assert_eq!(field(&e, "Ref"), Some("v2.14.0"));
    assert_eq!(field(&e, "Task"), None, "the default task says nothing");
    assert_eq!(field(&e, "By"), Some("deploy-bot[bot]"));
    assert_eq!(
        link(&e, "Logs"),
        Some("https://deploy.example.com/runs/555/logs")
    );
    assert_eq!(
        link(&e, "Environment"),
        Some("https://checkout.example.com/")
    );
    assert_eq!(
        e.dedup_key.as_deref(),
        Some("gh:acme/checkout:deployment:42")
    );

    let base: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/deployment_status_success.json"))
            .unwrap_or_default();
    let cases = [
        ("success", Some((Severity::Ok, Status::Resolved))),
        ("failure", Some((Severity::Error, Status::Resolved))),
        ("error", Some((Severity::Error, Status::Resolved))),
        ("pending", Some((Severity::Info, Status::Firing))),
        ("queued", Some((Severity::Info, Status::Firing))),
        ("in_progress", Some((Severity::Info, Status::Firing))),
        ("inactive", None),
    ];
    for (state, want) in cases {
        let mut body = base.clone();
        body["deployment_status"]["state"] = json!(state);
        let parsed = deliver("deployment_status", body.to_string().as_bytes()).expect(state);
        assert_valid(&parsed.events);
        let got = parsed.events.first().map(|e| (e.severity, e.status));
        assert_eq!(got, want, "{state}");
        // Every state of one deployment updates the same card.
        if let Some(e) = parsed.events.first() {
            assert_eq!(
                e.dedup_key.as_deref(),
                Some("gh:acme/checkout:deployment:42")
            );
        }
    }
}

#[test]
fn ping_and_other_events_produce_nothing_with_a_reason() {
    let p = deliver("ping", include_bytes!("fixtures/ping.json")).expect("ping");
    assert!(p.events.is_empty());
    assert_eq!(p.ignored.as_deref(), Some("ping from GitHub (hook 123456)"));
    let p = deliver("push", br#"{"ref":"refs/heads/main"}"#).expect("push");
    assert!(p.events.is_empty());
    assert_eq!(p.ignored.as_deref(), Some("ignored event type \"push\""));
}

#[test]
fn malformed_deliveries_name_the_field() {
    let wf: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/workflow_run_failure.json"))
            .unwrap_or_default();
    let with = |path: &[&str], v: serde_json::Value| {
        let mut body = wf.clone();
        let mut at = &mut body;
        for (i, k) in path.iter().enumerate() {
            if i + 1 == path.len() {
                at[*k] = v.clone();
            } else {
                at = &mut at[*k];
            }
        }
        body
    };
    let cases: Vec<(&str, &str, serde_json::Value, &str, &str)> = vec![
        (
            "no repository",
            "workflow_run",
            with(&["repository"], json!(null)),
            "repository",
            "is required",
        ),
        (
            "repository string",
            "workflow_run",
            with(&["repository"], json!("acme/checkout")),
            "repository",
            "expected the repository (an object), got a string",
        ),
        (
            "full_name number",
            "workflow_run",
            with(&["repository", "full_name"], json!(5)),
            "repository.full_name",
            "expected a string, got a number",
        ),
        (
            "run missing",
            "workflow_run",
            with(&["workflow_run"], json!(null)),
            "workflow_run",
            "is required",
        ),
        (
            "branch array",
            "workflow_run",
            with(&["workflow_run", "head_branch"], json!(["main"])),
            "workflow_run.head_branch",
            "expected a string, got an array",
        ),
        (
            "bad updated_at",
            "workflow_run",
            with(&["workflow_run", "updated_at"], json!("soon")),
            "workflow_run.updated_at",
            "is not a timestamp",
        ),
        (
            "no action",
            "workflow_run",
            with(&["action"], json!(null)),
            "action",
            "is required",
        ),
        (
            "unknown deployment state",
            "deployment_status",
            json!({"deployment_status": {"state": "exploded"}, "deployment": {}, "repository": {"full_name": "a/b"}}),
            "deployment_status.state",
            "\"exploded\" is not a deployment state",
        ),
        (
            "deployment missing",
            "deployment_status",
            json!({"deployment_status": {"state": "success"}, "repository": {"full_name": "a/b"}}),
            "deployment",
            "is required",
        ),
        (
            "check name missing",
            "check_run",
            json!({"action": "completed", "check_run": {"conclusion": "failure"}, "repository": {"full_name": "a/b"}}),
            "check_run.name",
            "is required",
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
    // A signed delivery without the event header cannot be routed.
    let body = b"{}";
    let r = github().parse(
        &Headers::new().with("X-Hub-Signature-256", sign(SECRET, body)),
        body,
    );
    assert!(
        matches!(r, Err(SourceError::BadPayload { ref field, .. }) if field == "X-GitHub-Event"),
        "{r:?}"
    );
}

/// A signed delivery of `event` sent the way GitHub sends it by default: `payload=<url-encoded JSON>`.
fn deliver_form(event: &str, json: &[u8]) -> Result<Parsed, SourceError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(json).unwrap_or_default())
        .finish();
    let headers = Headers::new()
        .with("x-github-event", event)
        .with("content-type", "application/x-www-form-urlencoded")
        .with("x-hub-signature-256", sign(SECRET, body.as_bytes()));
    github().parse(&headers, body.as_bytes())
}

#[test]
fn regression_githubs_default_form_content_type_is_accepted() {
    let ping = deliver_form("ping", include_bytes!("fixtures/ping.json"))
        .expect("a form-encoded ping parses");
    assert!(ping.events.is_empty());
    assert!(ping
        .ignored
        .unwrap_or_default()
        .starts_with("ping from GitHub"));

    let json = include_bytes!("fixtures/workflow_run_failure.json");
    let form = deliver_form("workflow_run", json).expect("a form-encoded run parses");
    let plain = deliver("workflow_run", json).expect("the JSON run parses");
    assert_eq!(
        form.events, plain.events,
        "both content types give the same event"
    );

    // The signature is over the raw form body: re-encoding the JSON does not verify.
    let body = format!("payload={}", String::from_utf8_lossy(json));
    let headers = Headers::new()
        .with("x-github-event", "workflow_run")
        .with("content-type", "application/x-www-form-urlencoded")
        .with(
            "x-hub-signature-256",
            sign("another-secret", body.as_bytes()),
        );
    assert!(matches!(
        github().parse(&headers, body.as_bytes()),
        Err(SourceError::Unauthorized(_))
    ));
}

#[test]
fn a_form_delivery_without_a_payload_field_names_it() {
    let body = b"hook_id=1";
    let headers = Headers::new()
        .with("x-github-event", "ping")
        .with(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .with("x-hub-signature-256", sign(SECRET, body));
    match github().parse(&headers, body) {
        Err(SourceError::BadPayload { field, message }) => {
            assert_eq!(field, "payload");
            assert!(message.contains("`payload` field"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn regression_a_completed_run_without_a_conclusion_is_ignored_not_refused() {
    let mut body: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/workflow_run_failure.json"))
            .unwrap_or_default();
    body["workflow_run"]["conclusion"] = json!(null);
    let parsed = deliver("workflow_run", body.to_string().as_bytes()).expect("a 2xx, not a 400");
    assert!(parsed.events.is_empty());
    assert_eq!(
        parsed.ignored.as_deref(),
        Some("workflow \"CI\" in acme/checkout completed without a conclusion: not posted")
    );
}

#[test]
fn regression_a_run_waiting_for_approval_is_posted_although_only_requested() {
    let mut body: serde_json::Value =
        serde_json::from_slice(include_bytes!("fixtures/workflow_run_failure.json"))
            .unwrap_or_default();
    body["action"] = json!("requested");
    body["workflow_run"]["status"] = json!("completed");
    body["workflow_run"]["conclusion"] = json!("action_required");
    let e = one_event("workflow_run", body.to_string().as_bytes());
    assert_eq!(e.title, "CI needs action on main in acme/checkout");
    assert_eq!((e.severity, e.status), (Severity::Warning, Status::Firing));

    // A requested run with no conclusion yet is still not news.
    body["workflow_run"]["conclusion"] = json!(null);
    let parsed = deliver("workflow_run", body.to_string().as_bytes()).expect("parses");
    assert!(parsed.events.is_empty());
    assert_eq!(
        parsed.ignored.as_deref(),
        Some("workflow_run \"requested\": only completed runs are posted")
    );
}

/// The full events for each fixture, so any change in a mapping is a reviewed diff.
#[test]
fn fixture_events_snapshot() {
    for (name, event, body) in [
        (
            "workflow_run_failure",
            "workflow_run",
            &include_bytes!("fixtures/workflow_run_failure.json")[..],
        ),
        (
            "workflow_run_rerun_success",
            "workflow_run",
            include_bytes!("fixtures/workflow_run_rerun_success.json"),
        ),
        (
            "check_run_failure",
            "check_run",
            include_bytes!("fixtures/check_run_failure.json"),
        ),
        (
            "deployment_status_success",
            "deployment_status",
            include_bytes!("fixtures/deployment_status_success.json"),
        ),
    ] {
        insta::assert_json_snapshot!(name, one_event(event, body));
    }
}
