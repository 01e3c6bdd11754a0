//! Workflow Builder custom steps end to end: the real binary, the simulator running steps (`function_executed`) and
//! checking their completions as Slack does, and a test HTTP server on 127.0.0.1 playing the internal system.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use sluice_sim::functions::Outcome;
use sluice_sim::Simulator;

use common::fixture::{Fixture, Places};
use common::internal::*;
use common::proc::*;

/// A `deploy` step (inputs service, replicas, by; outputs version from a pointer and summary from a template).
fn config(p: &Places) -> String {
    let internal = p.internal;
    format!(
        r#"
[actions]
outgoing_secret_file = "outgoing"

[routing]
default = {{ channels = ["alerts"] }}

[dispatch]
backoff_base_ms = 100
backoff_max_ms = 300
max_age_secs = 3

[[action]]
name = "deploy"
label = "Deploy"
url = "http://{internal}/deploy"
body = '{{"service": "{{{{ inputs.service }}}}", "replicas": "{{{{ inputs.replicas }}}}", "by": "{{{{ user.id }}}}"}}'

[[action]]
name = "restart"
label = "Restart"
url = "http://{internal}/restart"
users = ["U0001"]

[[step]]
action = "restart"
title = "Restart a service"
inputs = [{{ name = "by", type = "user_id", title = "Requested by", required = false }}]

[[step]]
action = "deploy"
title = "Deploy a service"
inputs = [
  {{ name = "service", type = "string", title = "Service" }},
  {{ name = "replicas", type = "integer", title = "Replicas", required = false }},
  {{ name = "by", type = "user_id", title = "Requested by", required = false }},
]
outputs = [
  {{ name = "version", type = "string", title = "Version", from = "/version" }},
  {{ name = "summary", type = "string", title = "Summary", from = "{{{{ body.version }}}} (HTTP {{{{ status }}}})" }},
]
"#
    )
}

async fn setup() -> Fixture {
    let s = Fixture::builder().signed().config(config).start().await;
    s.sim
        .declare_function_outputs("deploy", &["version", "summary"]);
    s
}

async fn finished(sim: &Simulator, id: &str) -> Outcome {
    wait_until("the step to complete", Duration::from_secs(30), || {
        sim.function_execution(id)
            .is_some_and(|e| e.outcome != Outcome::Running)
    })
    .await;
    sim.function_execution(id).unwrap().outcome
}

fn completions(sim: &Simulator) -> usize {
    sim.calls()
        .iter()
        .filter(|c| c.method.starts_with("functions.complete"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_runs_its_action_once_and_completes_with_outputs_from_the_answer() {
    let s = setup().await;
    let fired = s
        .sim
        .fire_function(
            "deploy",
            json!({"service": "checkout", "replicas": 3, "by": "U0002"}),
        )
        .await
        .unwrap();
    assert_eq!(fired.delivered.status, 200);
    assert!(
        fired.delivered.elapsed < Duration::from_secs(3),
        "acked at once"
    );
    let outcome = finished(&s.sim, &fired.execution_id).await;
    let Outcome::Completed { outputs } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        Value::Object(outputs),
        json!({"version": "1.2.2", "summary": "1.2.2 (HTTP 200)"})
    );
    let e = s.sim.function_execution(&fired.execution_id).unwrap();
    assert_eq!(
        e.completed_with_execution_token,
        Some(true),
        "completed with the execution's own token"
    );

    let got = s.internal.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(signature_ok(&got[0]));
    assert_eq!(
        got[0].json(),
        json!({"service": "checkout", "replicas": "3", "by": "U0002"})
    );
    assert_eq!(
        got[0].headers["idempotency-key"],
        format!("run_{}", fired.execution_id).as_str()
    );
    let runs = audited(s.sluice.addr, "step.run").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0]["actor"].as_str(), runs[0]["result"].as_str()),
        (Some("U0002"), Some("ok"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_system_answering_500_completes_the_step_with_a_readable_error() {
    let s = setup().await;
    s.internal
        .answer((0..100).map(|_| Answer::Status(500)).collect());
    let fired = s
        .sim
        .fire_function("deploy", json!({"service": "checkout"}))
        .await
        .unwrap();
    let outcome = finished(&s.sim, &fired.execution_id).await;
    let Outcome::Failed { error } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(error.contains("Deploy"), "{error}");
    assert!(error.contains("HTTP 500"), "{error}");
    assert_eq!(completions(&s.sim), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_execution_delivered_twice_calls_once_and_completes_once() {
    let s = setup().await;
    let fired = s
        .sim
        .fire_function("deploy", json!({"service": "checkout"}))
        .await
        .unwrap();
    // Slack's retry of the same event, and the same execution under another event id.
    let again = s
        .sim
        .resend_event(&fired.event_id, 1, "http_timeout")
        .await
        .unwrap();
    assert_eq!(again.status, 200);
    let other = s.sim.refire_function(&fired.execution_id).await.unwrap();
    assert_eq!(other.delivered.status, 200);
    assert_ne!(other.event_id, fired.event_id);
    let outcome = finished(&s.sim, &fired.execution_id).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    // Give a second run every chance to show itself.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.internal.received().len(), 1, "one call");
    assert_eq!(completions(&s.sim), 1, "one completion");
    assert_eq!(
        s.sim
            .function_execution(&fired.execution_id)
            .unwrap()
            .completion_calls,
        1
    );
    assert_eq!(audited(s.sluice.addr, "step.run").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_complete_the_step_with_an_error_naming_the_input() {
    let s = setup().await;
    let fired = s
        .sim
        .fire_function(
            "deploy",
            json!({"service": "checkout", "replicas": "three"}),
        )
        .await
        .unwrap();
    let outcome = finished(&s.sim, &fired.execution_id).await;
    let Outcome::Failed { error } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(error.contains("\"replicas\""), "{error}");
    assert!(error.contains("integer"), "{error}");
    let missing = s.sim.fire_function("deploy", json!({})).await.unwrap();
    let Outcome::Failed { error } = finished(&s.sim, &missing.execution_id).await else {
        panic!("a missing input is an error");
    };
    assert!(error.contains("\"service\" is required"), "{error}");
    let unknown = s.sim.fire_function("rollback", json!({})).await.unwrap();
    let Outcome::Failed { error } = finished(&s.sim, &unknown.execution_id).await else {
        panic!("an unknown step is an error");
    };
    assert!(error.contains("not configured"), "{error}");
    assert!(s.internal.received().is_empty(), "nothing was called");
    let runs = audited(s.sluice.addr, "step.run").await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs
        .iter()
        .all(|r| r["result"].as_str().unwrap().starts_with("refused: ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_runs_only_for_someone_its_action_permits() {
    let s = setup().await;
    for inputs in [json!({"by": "U0002"}), json!({})] {
        let fired = s.sim.fire_function("restart", inputs).await.unwrap();
        let Outcome::Failed { error } = finished(&s.sim, &fired.execution_id).await else {
            panic!("refused");
        };
        assert!(error.contains("is not allowed to run Restart"), "{error}");
    }
    assert!(s.internal.received().is_empty(), "nothing was called");
    let fired = s
        .sim
        .fire_function("restart", json!({"by": "U0001"}))
        .await
        .unwrap();
    let outcome = finished(&s.sim, &fired.execution_id).await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(s.internal.received().len(), 1);
    let results = results(&audited(s.sluice.addr, "step.run").await);
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0], "ok");
    assert!(results[1].contains("not allowed"), "{results:?}");
}
