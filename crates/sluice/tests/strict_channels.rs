//! Sluice against a workspace as strict as Slack: channels are not created by posting to them, the bot
//! is not in every channel, and people act in channels they never joined. The real binary, the
//! simulator with its default (strict) workspace.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use sluice_sim::{SimConfig, Simulator};

use common::fixture::Fixture;
use common::proc::*;

async fn dead_letters(addr: SocketAddr) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("http://{addr}/v1/dead-letters"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["dead_letters"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_does_not_exist_or_hides_from_the_bot_is_dead_lettered_with_the_fix() {
    let sim = Simulator::new(SimConfig {
        channels: vec!["c00".into()],
        ..SimConfig::default()
    });
    // c02 is private and nobody invited the app.
    sim.create_channel_as_user("c02", true, &["U0001".into()], false)
        .unwrap();
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let s = Fixture::builder()
        .sim((sim, sim_run))
        .config(|_| channel_routes(3))
        .start()
        .await;
    let Fixture { sim, sluice, .. } = s;

    let events = vec![
        event("Reaches c00", "c00"),
        event("Misrouted to c01", "c01"),
        event("Private c02", "c02"),
    ];
    let (ids, failed) = post_all(sluice.addr, events, 1).await;
    assert_eq!((ids.len(), failed), (3, 0), "every event is accepted");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let dead = dead_letters(sluice.addr).await;
        if dead.len() >= 2 || std::time::Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 2, "{dead:?}");
    for d in &dead {
        let reason = d["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("channel_not_found"), "{reason}");
        assert!(reason.contains("/invite"), "the fix is named: {reason}");
    }
    assert_eq!(
        sim.messages("c00").len(),
        1,
        "the good channel got its card"
    );
    assert!(
        !sim.channels().iter().any(|c| c.name == "c01"),
        "no channel was made up"
    );
    assert!(sim.messages("c02").is_empty());
}
