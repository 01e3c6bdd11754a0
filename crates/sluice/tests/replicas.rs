//! Several `sluice serve` replicas on one PostgreSQL and one simulator: every event delivered
//! exactly once, no channel over Slack's limit, and a replica killed mid-stream loses nothing.
//!
//! Needs `SLUICE_TEST_POSTGRES_URL`; without it each test prints SKIPPED (CI sets it and
//! `SLUICE_REQUIRE_POSTGRES=1`, so CI never skips).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pg::TestDb;
use common::proc::*;

/// Raise the workspace-wide chat.postMessage ceiling (Slack's is several hundred a minute; the
/// simulator does not enforce one) so 10,000 messages need seconds, not 17 minutes. Every
/// per-channel limit stays Slack's.
const FAST_WORKSPACE: &str = "[slack.limits]\npost_message_per_minute = 30000\n";

fn migrate(config: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["migrate", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_deliver_ten_thousand_events_once_without_a_429() {
    let Some(db) = TestDb::create("three_replicas").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let extra = format!("{FAST_WORKSPACE}{}", channel_routes(400));

    // serve refuses an unmigrated database and says what to run.
    let first = write_config_db(dir.path(), sim_run.addr, &db.url, &extra);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(&first)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sluice migrate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    migrate(&first);

    let replicas: Vec<Sluice> = (0..3)
        .map(|_| start_sluice(&write_config_db(dir.path(), sim_run.addr, &db.url, &extra)))
        .collect();
    let addrs: Vec<_> = replicas.iter().map(|r| r.addr).collect();

    let started = Instant::now();
    let mut ids = Vec::new();
    let mut sends = Vec::new();
    for (n, addr) in addrs.iter().enumerate() {
        let events = (0..10_000)
            .filter(|i| i % 3 == n)
            .map(|i| event(&format!("seq-{i:05}"), &format!("c{:02}", i % 400)))
            .collect();
        let addr = *addr;
        sends.push(tokio::spawn(
            async move { post_all(addr, events, 12).await },
        ));
    }
    for s in sends {
        let (got, failed) = s.await.unwrap();
        assert_eq!(failed, 0);
        ids.extend(got);
    }
    assert_eq!(ids.len(), 10_000);
    eprintln!(
        "three replicas: 10,000 events accepted in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    wait_until(
        "10,000 messages in the simulator",
        Duration::from_secs(300),
        || posted_ids(&sim).len() >= 10_000,
    )
    .await;
    eprintln!(
        "three replicas: all delivered after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let seen = posted_ids(&sim);
    let twice: Vec<_> = ids.iter().filter(|id| seen.get(*id) != Some(&1)).collect();
    assert!(
        twice.is_empty(),
        "{} events not posted exactly once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(3)]
    );
    assert_eq!(sim.count_429(), 0, "a channel went over Slack's limit");
    drop(replicas);
    sim_run.shutdown();
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_stream_loses_nothing() {
    let Some(db) = TestDb::create("replica_killed").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let extra = format!(
        "[dispatch]\nlease_ms = 3000\n{FAST_WORKSPACE}{}",
        channel_routes(40)
    );
    let first = write_config_db(dir.path(), sim_run.addr, &db.url, &extra);
    migrate(&first);
    let mut a = start_sluice(&first);
    let b = start_sluice(&write_config_db(dir.path(), sim_run.addr, &db.url, &extra));

    // 400 events through A: 10 per channel, so delivery (1/s per channel) is still running
    // when A dies and B has to take A's lanes over once their leases expire.
    let events = (0..400)
        .map(|i| event(&format!("seq-{i:04}"), &format!("c{:02}", i % 40)))
        .collect();
    let (ids, failed) = post_all(a.addr, events, 16).await;
    assert_eq!(failed, 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = posted_ids(&sim).len();
    assert!(
        before_kill < 400,
        "everything was delivered before the kill; the test proves nothing"
    );
    a.child.kill().unwrap();
    a.child.wait().unwrap();

    wait_until(
        "every accepted event after the kill",
        Duration::from_secs(120),
        || {
            let seen = posted_ids(&sim);
            ids.iter().all(|id| seen.contains_key(id))
        },
    )
    .await;
    let seen = posted_ids(&sim);
    let duplicates: usize = ids.iter().map(|id| seen[id] - 1).sum();
    eprintln!("replica killed: {} accepted, {before_kill} delivered before the kill, all delivered, {duplicates} posted twice", ids.len());
    assert!(
        duplicates <= 40,
        "more duplicates ({duplicates}) than lanes in flight"
    );
    assert_eq!(sim.count_429(), 0);
    drop(b);
    sim_run.shutdown();
    db.drop_db().await;
}
