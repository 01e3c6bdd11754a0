//! Inhibition end to end: the real binary against the simulator. While a critical alert for a service fires, that
//! service's warnings are recorded as suppressed by the rule and never reach Slack; other services' warnings do; once
//! the critical resolves, the service's warnings are delivered again. Suppresses exactly what it matches; expiry
//! restores delivery.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use common::fixture::Fixture;
use common::proc::*;

const RULES: &str = r#"
[routing]
default = { channels = ["alerts"] }

[[inhibit]]
name = "critical-mutes-warnings"
source = { severity = "critical" }
target = { severity = "warning" }
equal = ["service"]
"#;

fn alert(severity: &str, status: &str, service: &str, dedup_key: &str) -> Value {
    json!({"title": format!("{service} {severity}"), "severity": severity, "status": status, "source": "e2e",
           "service": service, "dedup_key": dedup_key})
}

async fn post_one(addr: SocketAddr, event: Value) -> String {
    let (ids, failed) = post_all(addr, vec![event], 1).await;
    assert_eq!((ids.len(), failed), (1, 0), "accepted");
    ids[0].clone()
}

async fn get(addr: SocketAddr, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
}

async fn event_view(addr: SocketAddr, id: &str) -> Value {
    get(addr, &format!("/v1/events/{id}"))
        .await
        .json::<Value>()
        .await
        .unwrap()
}

async fn wait_posted(sim: &sluice_sim::Simulator, what: &str, id: &str) {
    wait_until(what, Duration::from_secs(30), || {
        posted_ids(sim).contains_key(id)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_critical_mutes_its_services_warnings_until_it_resolves() {
    let s = Fixture::builder()
        .config(|_| RULES.to_string())
        .start()
        .await;
    let Fixture { sim, sluice, .. } = s;
    let addr = sluice.addr;

    let critical = post_one(addr, alert("critical", "firing", "db", "db-down")).await;
    wait_posted(&sim, "the critical alert", &critical).await;

    let muted = post_one(addr, alert("warning", "firing", "db", "db-slow")).await;
    let view = event_view(addr, &muted).await;
    assert_eq!(view["state"], "suppressed", "{view}");
    assert_eq!(
        view["fate"],
        json!({"kind": "suppressed", "by": "inhibit:critical-mutes-warnings"})
    );
    assert_eq!(view["deliveries"], json!([]));

    // Another service's warning is not muted. It goes to the same channel, whose items are sent in order, so once it
    // is out, a post of the muted warning would be out too.
    let other = post_one(addr, alert("warning", "firing", "api", "api-slow")).await;
    wait_posted(&sim, "the api warning", &other).await;
    let posted = posted_ids(&sim);
    assert!(!posted.contains_key(&muted), "the db warning reached Slack");
    assert_eq!(posted.len(), 2, "{posted:?}");

    let metrics = get(addr, "/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l
                == r#"sluice_events_suppressed_total{by="inhibit:critical-mutes-warnings"} 1"#),
        "{metrics}"
    );

    // The critical resolves: the db warnings are delivered again, starting with a new alert for the same key (the
    // muted one opened none).
    let resolved = post_one(addr, alert("critical", "resolved", "db", "db-down")).await;
    assert_eq!(
        event_view(addr, &resolved).await["fate"]["kind"],
        "resolved"
    );
    let restored = post_one(addr, alert("warning", "firing", "db", "db-slow")).await;
    assert_eq!(event_view(addr, &restored).await["fate"]["kind"], "queued");
    wait_posted(&sim, "the db warning after the resolve", &restored).await;
    assert!(!posted_ids(&sim).contains_key(&muted));
}
