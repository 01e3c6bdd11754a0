//! A handler that panics or fails is never silent: the user who clicked is told, through the
//! simulator's response_url, exactly as Slack would show it; and a response_url pointing
//! anywhere but an allowed host is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_inbound::{
    ActionPayload, Ctx, HandlerError, HandlerResult, Inbound, InboundConfig, MemoryOnce, Registry,
};
use sluice_sim::{SimConfig, Simulator};
use sluice_slack::api::Client;
use sluice_slack_wire::Secret;

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_or_failing_handler_tells_the_user_through_the_response_url() {
    let sim = Simulator::new(SimConfig::default());
    sim.create_channel_as_user("ops", false, &sim.user_ids(), true)
        .unwrap();
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();

    let mut registry = Registry::new();
    registry.action("boom", |_ctx: Ctx<ActionPayload>| async move {
        let v: Vec<u8> = Vec::new();
        // An out-of-bounds index: the kind of bug a handler may have.
        let _ = v[usize::MAX / 2];
        Ok(())
    });
    registry.action("fail", |_ctx: Ctx<ActionPayload>| async move {
        HandlerResult::<()>::Err(HandlerError::new("the deploy service answered 502"))
    });
    let mut cfg = InboundConfig::new(Secret::new(sluice_sim::DEFAULT_SIGNING_SECRET));
    cfg.response_url_hosts
        .push(format!("http://{}", sim_run.addr));
    let slack = Client::new(
        &format!("http://{}/api/", sim_run.addr),
        Secret::new(sluice_sim::DEFAULT_TOKEN),
        Duration::from_secs(5),
    )
    .unwrap();
    let inbound = Arc::new(Inbound::new(
        cfg,
        registry,
        Arc::new(MemoryOnce::default()),
        Arc::new(sluice_inbound::NoOutbox),
        slack,
    ));
    let app = sluice_inbound::routes(inbound);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    sim.set_app_base_url(format!("http://{app_addr}"));

    // A message with two buttons, posted as the app would.
    let posted: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/api/chat.postMessage", sim_run.addr))
        .bearer_auth(sluice_sim::DEFAULT_TOKEN)
        .json(&json!({"channel": "ops", "text": "Deploy checkout?", "blocks": [
            {"type": "actions", "elements": [
                {"type": "button", "action_id": "boom", "text": {"type": "plain_text", "text": "Deploy"}, "value": "1"},
                {"type": "button", "action_id": "fail", "text": {"type": "plain_text", "text": "Roll back"}, "value": "2"}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (channel, ts) = (
        posted["channel"].as_str().unwrap().to_string(),
        posted["ts"].as_str().unwrap().to_string(),
    );

    let d = sim
        .click_button(&channel, &ts, "boom", "U0001")
        .await
        .unwrap();
    assert_eq!(
        d.status, 200,
        "Slack must get its ack even when the handler panics"
    );
    wait_until("alice's ephemeral about the panic", || {
        sim.ephemerals(Some("U0001"))
            .iter()
            .any(|e| e.via == "response_url" && e.text.contains("That didn't work"))
    })
    .await;
    let told = sim.ephemerals(Some("U0001"));
    assert!(
        !told.iter().any(|e| e.text.contains("index out of bounds")),
        "the panic message leaked to the user: {told:?}"
    );

    sim.click_button(&channel, &ts, "fail", "U0002")
        .await
        .unwrap();
    wait_until("bob's ephemeral about the failure", || {
        sim.ephemerals(Some("U0002"))
            .iter()
            .any(|e| e.text.contains("the deploy service answered 502"))
    })
    .await;
    assert!(
        sim.calls().iter().any(|c| c.method == "response_url"),
        "the answer did not go through the response_url"
    );
}

#[test]
fn a_response_url_outside_the_allowed_hosts_is_refused() {
    let urls = sluice_inbound::ResponseUrl::new(
        &[
            "hooks.slack.com".to_string(),
            "http://127.0.0.1:9999".to_string(),
        ],
        Default::default(),
    );
    for bad in [
        "http://169.254.169.254/latest/meta-data/",
        "https://example.com/hook",
        "http://hooks.slack.com/commands/1",
        "https://user:pw@hooks.slack.com/x",
        "http://127.0.0.1:9998/sim/response/1",
    ] {
        assert!(urls.check(bad).is_err(), "{bad} was allowed");
    }
    assert!(urls
        .check("https://hooks.slack.com/actions/T1/1/abc")
        .is_ok());
    assert!(urls.check("http://127.0.0.1:9999/sim/response/1").is_ok());
}
