//! A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) with a webhook receiver
//! pointing at Sluice: alerts fired at its API land in the simulator as one card each, and a
//! resolve updates the same card in place.
//!
//! Without the binary the test prints SKIPPED; with `SLUICE_REQUIRE_ALERTMANAGER=1` (CI, whose
//! script installs the package) a missing binary fails it instead.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use common::fixture::Fixture;
use common::proc::*;

const BINARY: &str = "prometheus-alertmanager";

struct Alertmanager(Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn installed() -> bool {
    Command::new(BINARY)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_alerts_become_cards_and_a_resolve_updates_the_card() {
    if !installed() {
        if std::env::var("SLUICE_REQUIRE_ALERTMANAGER").is_ok() {
            panic!("SLUICE_REQUIRE_ALERTMANAGER is set but {BINARY} is not installed (apt-get install prometheus-alertmanager)");
        }
        {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIPPED alertmanager e2e: {BINARY} not installed (apt-get install prometheus-alertmanager)");
        }
        return;
    }
    let s = Fixture::builder()
        .config(|_| "[routing]\ndefault = { channels = [\"alerts\"] }\n".to_string())
        .start()
        .await;
    let Fixture {
        sim, sluice, dir, ..
    } = s;

    let am_port = free_port();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            r#"route:
  receiver: sluice
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sluice
    webhook_configs:
      - url: http://{}/v1/sources/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {KEY}
"#,
            sluice.addr
        ),
    )
    .unwrap();
    let am = Alertmanager(
        Command::new(BINARY)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{am_port}/api/v2/alerts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http
        .get(format!("http://127.0.0.1:{am_port}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "alertmanager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let alert = |name: &str, ends_at: Option<String>| {
        let mut a = json!({
            "labels": {"alertname": name, "service": "checkout", "severity": "critical", "env": "prod"},
            "annotations": {"summary": format!("{name} on checkout"), "description": "p99 above 2s for 5m"},
            "generatorURL": "http://prometheus.example/graph",
        });
        if let Some(end) = ends_at {
            a["endsAt"] = json!(end);
        }
        a
    };
    // Two alerts, and the first one sent three times (Alertmanager dedups its own repeats).
    for _ in 0..3 {
        let r = http
            .post(&api)
            .json(&json!([alert("CheckoutLatency", None)]))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let r = http
        .post(&api)
        .json(&json!([alert("CheckoutErrors", None)]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    wait_until(
        "two cards from Alertmanager",
        Duration::from_secs(30),
        || sim.messages("alerts").len() >= 2,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cards = sim.messages("alerts");
    assert_eq!(
        cards.len(),
        2,
        "one card per alert: {:?}",
        cards.iter().map(|m| &m.text).collect::<Vec<_>>()
    );
    let latency = cards
        .iter()
        .find(|m| m.text.contains("CheckoutLatency"))
        .expect("the latency card")
        .clone();
    assert!(latency.text.contains("CRITICAL"), "{}", latency.text);

    // Resolve the latency alert: Alertmanager sends a resolved notification, the card updates.
    let ended = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = http
        .post(&api)
        .json(&json!([alert("CheckoutLatency", Some(ended))]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    wait_until(
        "the latency card to show resolved",
        Duration::from_secs(30),
        || {
            sim.messages("alerts")
                .iter()
                .any(|m| m.ts == latency.ts && m.edits >= 1 && m.text.contains("RESOLVED"))
        },
    )
    .await;
    assert_eq!(
        sim.messages("alerts")
            .iter()
            .filter(|m| m.thread_ts.is_none())
            .count(),
        2,
        "the resolve posted a new card"
    );
    assert_eq!(sim.count_429(), 0);
    drop(am);
}
