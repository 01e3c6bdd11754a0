//! Several `sluice serve` replicas on one PostgreSQL and one simulator: every event delivered
//! exactly once, no channel over Slack's limit, and a replica killed mid-stream loses nothing.
//!
//! Needs `SLUICE_TEST_POSTGRES_URL`; without it each test prints SKIPPED (CI sets it and
//! `SLUICE_REQUIRE_POSTGRES=1`, so CI never skips).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::fixture::Fixture;
use common::pg::TestDb;
use common::proc::*;

/// Raise the workspace-wide chat.postMessage ceiling (Slack's is several hundred a minute; the
/// simulator does not enforce one) so 10,000 messages need seconds, not 17 minutes. Every
/// per-channel limit stays Slack's.
const FAST_WORKSPACE: &str = "[slack.limits]\npost_message_per_minute = 30000\n";

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
    let extra = format!(
        "[dispatch]\nlease_ms = 3000\n{FAST_WORKSPACE}{}",
        channel_routes(40)
    );
    let s = Fixture::builder()
        .db(&db.url)
        .config(move |_| extra)
        .migrate_first()
        .start()
        .await;
    let b = s.start_another();
    let Fixture {
        sluice: mut a,
        sim,
        sim_run,
        ..
    } = s;

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

/// Grouping with two replicas: whichever replica takes an alert, each group gets one card (the flusher runs on one
/// leader), and when that leader dies the other takes over within the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_post_one_card_per_group_and_the_flusher_fails_over() {
    let Some(db) = TestDb::create("replica_groups").await else {
        return;
    };
    let routes = r#"
[[routing.rule]]
name = "alerts"
match = { kind = "alert" }
channels = ["alerts"]
group_by = ["service"]
group_wait = "1s"
group_interval = "2s"
"#;
    let s = Fixture::builder()
        .db(&db.url)
        .config(|_| routes.to_string())
        .migrate_first()
        .start()
        .await;
    let other = s.start_another();
    let Fixture { sluice, sim, .. } = s;
    let mut replicas = vec![sluice, other];
    let alert = |service: String, name: usize| {
        serde_json::json!({"title": format!("alert {name} on {service}"), "severity": "critical",
                           "status": "firing", "source": "e2e", "service": service,
                           "dedup_key": format!("{service}/{name}")})
    };
    // 5 services × 4 alerts × 2 copies, alternating between the replicas.
    for round in 0..2 {
        for (n, r) in replicas.iter().enumerate() {
            let events: Vec<_> = (0..20)
                .filter(|i| (i + round) % 2 == n)
                .map(|i| alert(format!("svc{}", i % 5), i / 5))
                .collect();
            let (ids, failed) = post_all(r.addr, events, 4).await;
            assert_eq!((ids.len(), failed), (10, 0));
        }
    }
    let cards = |sim: &sluice_sim::Simulator| -> Vec<String> {
        sim.messages("alerts")
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .map(|m| m.text)
            .collect()
    };
    wait_until("five group cards", Duration::from_secs(30), || {
        cards(&sim).len() >= 5
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = cards(&sim);
    assert_eq!(got.len(), 5, "{got:#?}");
    for s in 0..5 {
        assert!(
            got.iter()
                .any(|t| t.starts_with(&format!("[FIRING:4] service=svc{s}"))),
            "{got:#?}"
        );
    }

    // Kill the replica that leads the flusher (its lease row names its pid): the other takes over.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let owner: String = sqlx::query_scalar("SELECT owner FROM leaders WHERE role = 'notify'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let leader = replicas
        .iter()
        .position(|r| owner.contains(&format!("/{}-", r.child.id())))
        .unwrap_or_else(|| panic!("no replica owns the flusher lease {owner}"));
    let mut gone = replicas.remove(leader);
    let survivor = replicas.pop().unwrap();
    gone.child.kill().unwrap();
    gone.child.wait().unwrap();
    let (ids, failed) = post_all(survivor.addr, vec![alert("svc-late".into(), 0)], 1).await;
    assert_eq!((ids.len(), failed), (1, 0));
    wait_until("the late group's card", Duration::from_secs(30), || {
        cards(&sim).iter().any(|t| t.contains("service=svc-late"))
    })
    .await;
    assert_eq!(cards(&sim).len(), 6);
    drop(survivor);
    db.drop_db().await;
}
