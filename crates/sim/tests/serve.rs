//! The simulator on a real 127.0.0.1 socket, spoken to with reqwest the way Sluice's client does.

use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator, DEFAULT_TOKEN};

#[tokio::test]
async fn serves_the_web_api_webhooks_and_state_on_a_local_port() {
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into()],
        webhooks: vec![("hook1".into(), "deploys".into())],
        ..SimConfig::default()
    });
    let running = sim
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .expect("binding port 0 on loopback works");
    assert_ne!(running.addr.port(), 0);
    let http = reqwest::Client::new();

    let posted: Value = http
        .post(format!("{}chat.postMessage", running.api_url()))
        .bearer_auth(DEFAULT_TOKEN)
        .json(&json!({"channel": "#alerts", "text": "disk full on db-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["ok"], true, "{posted}");

    let hook = http
        .post(running.webhook_url("hook1"))
        .json(&json!({"text": "deployed v2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 200);
    assert_eq!(hook.text().await.unwrap(), "ok");

    let state: Value = http
        .get(format!("{}/sim/state", running.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = state["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alerts", "deploys"]);
    assert_eq!(sim.messages("alerts")[0].text, "disk full on db-1");
    assert_eq!(sim.messages("deploys")[0].text, "deployed v2");

    let addr = running.addr;
    running.stopped().await;
    let after = reqwest::Client::new()
        .get(format!("http://{addr}/sim/state"))
        .send()
        .await;
    assert!(after.is_err(), "the port is closed once stopped");
}

#[tokio::test]
async fn stopping_does_not_wait_for_a_page_holding_its_stream_open() {
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into()],
        ..SimConfig::default()
    });
    let running = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut stream = reqwest::get(format!("{}/sim/stream?channel=alerts", running.url()))
        .await
        .unwrap();
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let first = stream.chunk().await.unwrap().expect("the first view");
    assert!(String::from_utf8_lossy(&first).contains("event: view"));
    tokio::time::timeout(std::time::Duration::from_secs(5), running.stopped())
        .await
        .expect("stopped() returns while the page's stream is open");
}

#[tokio::test]
async fn a_page_stream_sends_the_view_again_when_the_workspace_changes() {
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into()],
        ..SimConfig::default()
    });
    let running = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut stream = reqwest::get(format!("{}/sim/stream?channel=alerts", running.url()))
        .await
        .unwrap();
    stream.chunk().await.unwrap().expect("the first view");
    let posted: Value = reqwest::Client::new()
        .post(format!("{}chat.postMessage", running.api_url()))
        .bearer_auth(DEFAULT_TOKEN)
        .json(&json!({"channel": "alerts", "text": "fresh news"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["ok"], true);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seen.contains("fresh news") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the new message is pushed")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    running.stopped().await;
}
