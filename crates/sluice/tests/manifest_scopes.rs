//! The scopes `sluice manifest` asks for are enough, and each one it asks for is needed: the real binary against
//! a simulator that grants exactly those scopes (and answers `missing_scope` otherwise, as Slack does).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};

use common::proc::*;

/// Cards in #c00; only the members of the simulator's @oncall group (S0001: U0001, U0002) may act on them.
fn config(dir: &Path, sim_addr: std::net::SocketAddr) -> std::path::PathBuf {
    std::fs::write(dir.join("signing"), sluice_sim::DEFAULT_SIGNING_SECRET).unwrap();
    let db = format!("sqlite://{}", dir.join("sluice.db").display());
    let slack = format!(
        "signing_secret_file = \"signing\"\nresponse_url_hosts = [\"http://{sim_addr}\"]\n"
    );
    let extra = format!("[actions]\ngroups = [\"S0001\"]\n{}", channel_routes(1));
    write_config_full(dir, sim_addr, &db, &slack, &extra)
}

fn manifest_scopes(cfg: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "manifest",
            "--url",
            "https://sluice.example.org",
            "--config",
        ])
        .arg(cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = yaml_serde::from_str(&text).unwrap();
    manifest["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// An alert's card, then U0001 clicks Acknowledge: the audit log's result for it.
async fn acknowledge_with(scopes: Vec<String>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::new(SimConfig {
        channels: vec!["c00".into()],
        scopes: Some(scopes),
        ..SimConfig::default()
    });
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cfg = config(dir.path(), sim_run.addr);
    let sluice = start_sluice(&cfg);
    sim.set_app_base_url(format!("http://{}", sluice.addr));
    let e = json!({"title": "Checkout p99 above 2s", "severity": "critical", "status": "firing",
                   "source": "am", "service": "checkout", "labels": {"ch": "c00"}});
    let (ids, failed) = post_all(sluice.addr, vec![e], 1).await;
    assert_eq!((ids.len(), failed), (1, 0));
    wait_until("the alert card", Duration::from_secs(15), || {
        !sim.messages("c00").is_empty()
    })
    .await;
    let card = sim.messages("c00").remove(0);
    let clicked = sim
        .click_button(&card.channel, &card.ts, "sluice_ack", "U0001")
        .await
        .unwrap();
    assert_eq!(clicked.status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let audit: Value = reqwest::Client::new()
            .get(format!("http://{}/v1/audit", sluice.addr))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found = audit["records"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["action"].as_str().is_some_and(|a| a.contains("ack")))
            .and_then(|r| r["result"].as_str().map(str::to_string));
        if let Some(result) = found {
            return result;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no acknowledgement audited: {audit}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_scopes_suffice_and_the_group_scope_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let scopes = manifest_scopes(&config(dir.path(), "127.0.0.1:9".parse().unwrap()));
    assert!(scopes.iter().any(|s| s == "usergroups:read"), "{scopes:?}");

    let granted = acknowledge_with(scopes.clone()).await;
    assert_eq!(granted, "ok", "with the manifest's scopes {scopes:?}");

    // Without the scope the manifest justified by `[actions] groups`, Slack refuses the membership read and the
    // click is refused (fail closed): the manifest asked for nothing it does not use.
    let fewer: Vec<String> = scopes
        .into_iter()
        .filter(|s| s != "usergroups:read")
        .collect();
    let refused = acknowledge_with(fewer).await;
    assert!(refused.starts_with("refused"), "{refused}");
}
