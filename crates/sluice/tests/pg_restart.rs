//! PostgreSQL restarted under a running replica: ingest answers 503 (not 500, not a hang)
//! while it cannot commit, /readyz says not ready, and every acknowledged event is delivered
//! once the database is back, without restarting Sluice.
//!
//! This stops and starts the machine's PostgreSQL cluster (`pg_ctlcluster`), so it lives in
//! its own test binary: cargo runs test binaries one after another, and nothing else in this
//! one uses the database at the same time.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::fixture::Fixture;
use common::pg::TestDb;
use common::proc::*;

fn cluster() -> Option<String> {
    let versions = std::fs::read_dir("/etc/postgresql").ok()?;
    let mut v: Vec<String> = versions
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v.pop()
}

fn pg_ctl(version: &str, action: &str) {
    let out = Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            version,
            "main",
            action,
            "-m",
            "fast",
        ])
        .output()
        .expect("run pg_ctlcluster");
    assert!(
        out.status.success() || action == "start",
        "pg_ctlcluster {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream_answers_503_and_loses_nothing() {
    let Some(version) =
        cluster().filter(|_| Command::new("pg_ctlcluster").arg("--help").output().is_ok())
    else {
        if std::env::var("SLUICE_REQUIRE_POSTGRES").is_ok() {
            panic!("SLUICE_REQUIRE_POSTGRES is set but there is no pg_ctlcluster to restart PostgreSQL with");
        }
        {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED postgres_restart: no local PostgreSQL cluster to restart"
            );
        }
        return;
    };
    let Some(db) = TestDb::create("postgres_restart").await else {
        return;
    };
    let s = Fixture::builder()
        .db(&db.url)
        .config(|_| channel_routes(20))
        .migrate_first()
        .start()
        .await;
    let Fixture {
        sluice,
        sim,
        sim_run,
        ..
    } = s;
    let addr = sluice.addr;

    // A steady stream of 40 events/s for 12 s; PostgreSQL is down from ~2 s to ~6 s.
    let sender = tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut acked = Vec::new();
        let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
        let mut slowest = Duration::ZERO;
        for i in 0..480 {
            let e = event(&format!("seq-{i:04}"), &format!("c{:02}", i % 20));
            let t = Instant::now();
            let r = http
                .post(format!("http://{addr}/v1/events"))
                .bearer_auth(KEY)
                .json(&e)
                .send()
                .await;
            slowest = slowest.max(t.elapsed());
            let status = match r {
                Ok(r) => {
                    let code = r.status().as_u16();
                    if code == 202 {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        acked.push(v["id"].as_str().unwrap_or_default().to_string());
                    }
                    code.to_string()
                }
                Err(e) if e.is_timeout() => "timeout".into(),
                Err(_) => "transport error".into(),
            };
            *statuses.entry(status).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        (acked, statuses, slowest)
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    pg_ctl(&version, "stop");
    let down_at = Instant::now();
    let http = reqwest::Client::new();
    let mut not_ready = false;
    while down_at.elapsed() < Duration::from_secs(4) {
        if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await {
            not_ready |= r.status().as_u16() == 503;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pg_ctl(&version, "start");

    let (acked, statuses, slowest) = sender.await.unwrap();
    eprintln!(
        "postgres restart: answers {statuses:?}, slowest {slowest:?}, {} acknowledged",
        acked.len()
    );
    assert!(not_ready, "/readyz never reported the database outage");
    assert!(
        statuses.get("503").copied().unwrap_or(0) > 0,
        "no 503 during the outage: {statuses:?}"
    );
    let other: usize = statuses
        .iter()
        .filter(|(s, _)| *s != "202" && *s != "503")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(other, 0, "answers other than 202/503: {statuses:?}");
    assert!(
        slowest < Duration::from_secs(5),
        "an ingest hung for {slowest:?}"
    );

    wait_until(
        "every acknowledged event after the restart",
        Duration::from_secs(120),
        || {
            let seen = posted_ids(&sim);
            acked.iter().all(|id| seen.contains_key(id))
        },
    )
    .await;
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status().as_u16(),
        200,
        "the replica did not recover by itself"
    );
    drop(sluice);
    sim_run.shutdown();
    db.drop_db().await;
}
