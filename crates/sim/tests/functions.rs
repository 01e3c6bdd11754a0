//! Workflow Builder custom steps in the simulator: `function_executed` as Slack sends it, and
//! `functions.completeSuccess` / `functions.completeError` as strict as Slack.

mod common;

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::Router;
use common::*;
use serde_json::{json, Value};
use sluice_sim::functions::Outcome;
use sluice_sim::{SimConfig, Simulator};

/// A simulator delivering to an app on a loopback port that acks every event and keeps its body.
async fn setup() -> (Simulator, sluice_sim::RunningSim, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = got.clone();
    let router = Router::new().route(
        "/slack/events",
        post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let sim = Simulator::new(SimConfig {
        enforce_rate_limits: false,
        app_base_url: Some(format!("http://{addr}")),
        ..SimConfig::default()
    });
    let running = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sim, running, got)
}

#[tokio::test]
async fn function_executed_carries_the_execution_and_a_token_for_it_alone() {
    let (sim, _run, got) = setup().await;
    sim.declare_function_outputs("deploy", &["version"]);
    let one = sim
        .fire_function("deploy", json!({"service": "checkout"}))
        .await
        .unwrap();
    let two = sim.fire_function("deploy", json!({})).await.unwrap();
    let events = got.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    let e = &events[0]["event"];
    assert_eq!(events[0]["type"], "event_callback");
    assert_eq!(e["type"], "function_executed");
    assert_eq!(e["function"]["callback_id"], "deploy");
    assert_eq!(e["inputs"], json!({"service": "checkout"}));
    assert_eq!(e["function_execution_id"], one.execution_id.as_str());
    let token = e["bot_access_token"].as_str().unwrap().to_string();
    let other_token = events[1]["event"]["bot_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let app = sim.router();

    let call = |method: &'static str, token: String, body: Value| {
        let app = app.clone();
        async move { api_with(&app, method, Some(&token), body).await }
    };
    let id = one.execution_id.clone();
    // Arguments first, then the execution, then whose token it is.
    let cases = [
        (
            "functions.completeSuccess",
            token.clone(),
            json!({"outputs": {}}),
            "invalid_arguments",
        ),
        (
            "functions.completeSuccess",
            token.clone(),
            json!({"function_execution_id": id, "outputs": "x"}),
            "invalid_arguments",
        ),
        (
            "functions.completeError",
            token.clone(),
            json!({"function_execution_id": id}),
            "invalid_arguments",
        ),
        (
            "functions.completeError",
            token.clone(),
            json!({"function_execution_id": "Fx0", "error": "e"}),
            "function_execution_not_found",
        ),
        (
            "functions.completeError",
            other_token.clone(),
            json!({"function_execution_id": id, "error": "e"}),
            "access_denied",
        ),
        (
            "functions.completeSuccess",
            token.clone(),
            json!({"function_execution_id": id, "outputs": {"other": 1}}),
            "parameter_validation_failed",
        ),
        (
            "functions.completeError",
            "xwfp-made-up".into(),
            json!({"function_execution_id": id, "error": "e"}),
            "invalid_auth",
        ),
    ];
    for (method, t, body, want) in cases {
        let r = call(method, t, body.clone()).await;
        assert_eq!(
            r.error().as_deref(),
            Some(want),
            "{method} {body}: {}",
            r.text
        );
    }
    assert_eq!(
        sim.function_execution(&id).unwrap().outcome,
        Outcome::Running
    );

    let r = call(
        "functions.completeSuccess",
        token.clone(),
        json!({"function_execution_id": id, "outputs": {"version": "1.2"}}),
    )
    .await;
    assert_eq!(r.json()["ok"], true, "{}", r.text);
    let e = sim.function_execution(&id).unwrap();
    assert_eq!(
        e.outcome,
        Outcome::Completed {
            outputs: json!({"version": "1.2"}).as_object().unwrap().clone()
        }
    );
    assert_eq!(e.completed_with_execution_token, Some(true));
    // Completed: its token is spent, and the app's own token finds it no longer running.
    let r = call(
        "functions.completeError",
        token,
        json!({"function_execution_id": id, "error": "late"}),
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("invalid_auth"));
    let r = api(
        &app,
        "functions.completeError",
        json!({"function_execution_id": id, "error": "late"}),
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("execution_not_in_running_state"));

    // The app's bot token may complete an execution too.
    let r = api(
        &app,
        "functions.completeError",
        json!({"function_execution_id": two.execution_id, "error": "it broke"}),
    )
    .await;
    assert_eq!(r.json()["ok"], true, "{}", r.text);
    let e = sim.function_execution(&two.execution_id).unwrap();
    assert_eq!(
        e.outcome,
        Outcome::Failed {
            error: "it broke".into()
        }
    );
    assert_eq!(e.completed_with_execution_token, Some(false));
}
