//! Reload without restart, on the real binary under load: a valid config takes effect (SIGHUP), an invalid one and
//! one that changes what cannot change while serving are refused (`POST /v1/admin/reload`) and the old config keeps
//! serving, and no request fails meanwhile.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fixture::Fixture;
use common::proc::*;
use serde_json::{json, Value};

const ROUTES: &str = "[routing]\ndefault = { channels = [\"ops\"] }\n";
const DATABASE_RULE: &str =
    "[[routing.rule]]\nname = \"database\"\nmatch = { service = \"db\" }\nchannels = [\"db\"]\n";
const BROKEN_RULE: &str =
    "[[routing.rule]]\nname = \"broken\"\nmatch = { service = { regex = \"(\" } }\nchannels = [\"x\"]\n";

fn db_event(title: &str) -> Value {
    json!({"title": title, "severity": "warning", "status": "firing", "source": "e2e", "service": "db"})
}

/// Sends `event` until a message with `title` shows in `channel` (each try a new event, so the first one routed by
/// the new config is what lands).
async fn lands_in(
    sim: &sluice_sim::Simulator,
    addr: std::net::SocketAddr,
    channel: &str,
    title: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let (ok, failed) = post_all(addr, vec![db_event(&format!("{title} {n}"))], 1).await;
        assert_eq!((ok.len(), failed), (1, 0), "the event was refused");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if sim.messages(channel).iter().any(|m| m.text.contains(title)) {
            return;
        }
    }
    panic!("no {title:?} in #{channel} within 20 s");
}

async fn admin_reload(addr: std::net::SocketAddr) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/admin/reload"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_takes_a_valid_config_and_refuses_the_others() {
    let s = Fixture::builder()
        .config(|_| ROUTES.to_string())
        .start()
        .await;
    let Fixture {
        sim,
        sluice,
        config: cfg,
        ..
    } = s;
    let original = std::fs::read_to_string(&cfg).unwrap();
    let addr = sluice.addr;

    // Load all along: events into #ops, every answer counted.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let events = (0..20)
                    .map(|i| event(&format!("load {round}.{i}"), "x"))
                    .collect();
                let (ok, bad) = post_all(addr, events, 4).await;
                sent.fetch_add(ok.len() + bad, Ordering::Relaxed);
                failed.fetch_add(bad, Ordering::Relaxed);
            }
        })
    };

    lands_in(&sim, addr, "ops", "before any reload").await;

    // A valid change, by SIGHUP: the database's events get a channel of their own.
    std::fs::write(&cfg, format!("{original}{DATABASE_RULE}")).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &sluice.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    lands_in(&sim, addr, "db", "after the reload").await;

    // An invalid file is refused with its line and fix, and the new routes keep serving.
    std::fs::write(&cfg, format!("{original}{DATABASE_RULE}{BROKEN_RULE}")).unwrap();
    let (status, body) = admin_reload(addr).await;
    assert_eq!(status, 422, "{body}");
    let problems = body["problems"].to_string();
    assert!(
        problems.contains("line") && problems.contains("regex"),
        "{body}"
    );
    lands_in(&sim, addr, "db", "after the refused reload").await;

    // A listen address cannot change while serving: refused, and named.
    std::fs::write(
        &cfg,
        format!("{original}{DATABASE_RULE}").replace("127.0.0.1:0", "127.0.0.1:1"),
    )
    .unwrap();
    let (status, body) = admin_reload(addr).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["needs_restart"], json!(["server.listen"]), "{body}");

    // Not without a key.
    let no_admin = reqwest::Client::new()
        .post(format!("http://{addr}/v1/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_admin.status(), 401);

    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(sent > 0, "no load was sent");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the reloads"
    );

    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (result, n) in [("ok", 1), ("invalid", 1), ("needs_restart", 1)] {
        let line = format!("sluice_config_reload_total{{result=\"{result}\"}} {n}");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    let audit: Value = reqwest::Client::new()
        .get(format!("http://{addr}/v1/audit"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reloads: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "config.reload")
        .filter_map(|r| r["result"].as_str())
        .collect();
    assert_eq!(
        reloads,
        ["ok", "refused: invalid", "refused: needs_restart"],
        "{audit}"
    );
    eprintln!("{sent} requests during three reloads, none failed");
}
