//! End to end: the real `sluice` binary against the Slack simulator on 127.0.0.1.
//!
//! Each test starts its own simulator (in this process) and its own `sluice serve` (a child
//! process with its own SQLite file), so they run in parallel and a SIGKILL is a real one.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_sim::Faults;

use common::fixture::Fixture;
use common::proc::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_events_over_twenty_channels_each_once_without_a_429() {
    let s = Fixture::builder()
        .config(|_| channel_routes(20))
        .start()
        .await;
    let Fixture { sim, sluice, .. } = s;

    let events = (0..1000)
        .map(|i| event(&format!("seq-{i:04}"), &format!("c{:02}", i % 20)))
        .collect();
    let (ids, failed) = post_all(sluice.addr, events, 32).await;
    assert_eq!(failed, 0);
    assert_eq!(ids.len(), 1000);

    wait_until(
        "1,000 messages in the simulator",
        Duration::from_secs(150),
        || posted_ids(&sim).len() >= 1000,
    )
    .await;
    let seen = posted_ids(&sim);
    for id in &ids {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "event {id} posted {:?} times",
            seen.get(id)
        );
    }
    assert_eq!(sim.count_429(), 0, "Slack had to say 429");
    assert_eq!(
        sim.channels()
            .iter()
            .filter(|c| c.name.starts_with('c'))
            .count(),
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_but_loses_nothing_and_keeps_order_per_channel() {
    let extra = format!(
        "[dispatch]\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\n{}",
        channel_routes(8)
    );
    let s = Fixture::builder().config(move |_| extra).start().await;
    let Fixture { sim, sluice, .. } = s;

    let batch = |range: std::ops::Range<usize>| -> Vec<Value> {
        range
            .map(|i| event(&format!("seq-{i:04}"), &format!("c{:02}", i % 8)))
            .collect()
    };
    let (mut ids, _) = post_all(sluice.addr, batch(0..40), 8).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sim.set_faults(Faults {
        outage_until: Some(Instant::now() + Duration::from_secs(10)),
        ..Faults::default()
    });
    let outage_started = Instant::now();
    let (more, failed) = post_all(sluice.addr, batch(40..120), 8).await;
    assert_eq!(failed, 0, "ingest must keep accepting while Slack is down");
    ids.extend(more);

    wait_until(
        "all 120 messages after the outage",
        Duration::from_secs(120),
        || posted_ids(&sim).len() >= 120,
    )
    .await;
    assert!(outage_started.elapsed() >= Duration::from_secs(10));
    let seen = posted_ids(&sim);
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "event {id}");
    }
    let outage_calls = sim.calls().iter().filter(|c| c.status == 503).count();
    assert!(outage_calls > 0, "the outage was never hit");
    // Per channel, messages are in the order they were accepted.
    for (name, id) in channel_ids(&sim) {
        if !name.starts_with('c') {
            continue;
        }
        let titles: Vec<String> = sim.messages(&id).into_iter().map(|m| m.text).collect();
        let mut sorted = titles.clone();
        sorted.sort();
        assert_eq!(titles, sorted, "channel {name} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_accepted_event() {
    let mut s = Fixture::builder()
        .config(|_| channel_routes(16))
        .start()
        .await;
    let addr = s.sluice.addr;
    // Slack takes 300 ms to answer a call it has already carried out, so the kill finds posts that reached Slack
    // but whose answers Sluice never read.
    s.sim.set_faults(Faults {
        answer_latency_ms: 300,
        ..Faults::default()
    });

    // A steady stream (40 events/s for 5 s over 16 channels); the kill lands in its middle.
    let sender = tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut refused = 0;
        for i in 0..200 {
            let e = event(&format!("seq-{i:04}"), &format!("c{:02}", i % 16));
            let (ids, failed) = post_all(addr, vec![e], 1).await;
            acked.extend(ids);
            refused += failed;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        (acked, refused)
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Kill the moment Slack has taken a post: its answer is still 300 ms away, so this post is certainly in flight
    // (a fixed delay could land between two posts on a busy machine).
    let taken = |sim: &sluice_sim::Simulator| {
        sim.calls()
            .iter()
            .filter(|c| c.method == "chat.postMessage" && c.ok)
            .count()
    };
    let before = taken(&s.sim);
    let deadline = Instant::now() + Duration::from_secs(10);
    while taken(&s.sim) == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // SIGKILL: no chance to flush or release anything.
    s.sluice.child.kill().unwrap();
    s.sluice.child.wait().unwrap();
    let (acked, refused) = sender.await.unwrap();
    assert!(!acked.is_empty(), "nothing was accepted before the kill");
    assert!(
        refused > 0,
        "the kill came after the stream ended; the test proves nothing"
    );

    let posts_before = s
        .sim
        .calls()
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .count();
    let found = s
        .sim
        .calls()
        .iter()
        .filter(|c| c.method == "conversations.history")
        .count();
    assert_eq!(found, 0, "nothing was looked for before the kill");
    let restarted = s.start_another();
    // The dead run's leases (15 s) are taken back at start: the backlog moves at once. Its first call is a look
    // for a post that was in flight (there is one: the kill came as Slack took it) or a post.
    wait_until(
        "a call to Slack within 8 s of the restart, well before the old leases would run out",
        Duration::from_secs(8),
        || {
            s.sim
                .calls()
                .iter()
                .filter(|c| c.method == "chat.postMessage" || c.method == "conversations.history")
                .count()
                > posts_before
        },
    )
    .await;
    let want = acked.len();
    wait_until(
        "every acknowledged event in Slack after the restart",
        Duration::from_secs(240),
        || {
            let seen = posted_ids(&s.sim);
            acked.iter().all(|id| seen.contains_key(id))
        },
    )
    .await;
    let seen = posted_ids(&s.sim);
    let duplicates: usize = acked.iter().map(|id| seen[id] - 1).sum();
    let looked = s
        .sim
        .calls()
        .iter()
        .filter(|c| c.method == "conversations.history")
        .count();
    eprintln!("sigkill: {want} acknowledged, all delivered, {duplicates} posted twice, {looked} history reads");
    assert!(
        looked > 0,
        "no post was in flight at the kill: the test proves nothing"
    );
    let (found, metrics) = found_after_retry(restarted.addr).await;
    assert!(
        found >= 1.0,
        "a post Slack had taken before the kill was found, not posted again: {metrics}"
    );
    // A post that was in flight at the kill is found in the channel, not posted again.
    assert_eq!(duplicates, 0, "posted twice");
}

/// `sluice_posts_found_after_retry_total` of the server at `addr`, once its outbox is empty (posts that were in Slack
/// before a kill satisfy a test's wait at once, while the restarted dispatcher may still be looking for them), with
/// the whole metrics page for messages.
async fn found_after_retry(addr: std::net::SocketAddr) -> (f64, String) {
    let url = format!("http://{addr}/metrics");
    let mut metrics = String::new();
    for _ in 0..300 {
        metrics = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if metrics.lines().any(|l| l == "sluice_outbox_pending 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let found = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_posts_found_after_retry_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    (found, metrics)
}

/// A channel configured by name whose first post was in flight at a kill: Sluice never learnt its id, and Slack's
/// history reads take ids only. The restarted server finds the id in the channel list and the post in the
/// channel, and does not post it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_post_in_flight_at_a_kill_is_found_through_the_channel_name() {
    let mut s = Fixture::builder()
        .config(|_| channel_routes(1))
        .start()
        .await;
    s.sim.set_faults(Faults {
        answer_latency_ms: 2_000,
        ..Faults::default()
    });
    let (acked, _) = post_all(s.sluice.addr, vec![event("first", "c00")], 1).await;
    assert_eq!(acked.len(), 1);
    wait_until("Slack took the post", Duration::from_secs(10), || {
        !posted_ids(&s.sim).is_empty()
    })
    .await;
    // Its answer is still two seconds away.
    s.sluice.child.kill().unwrap();
    s.sluice.child.wait().unwrap();
    s.sim.clear_faults();
    let restarted = s.start_another();
    let (found, metrics) = found_after_retry(restarted.addr).await;
    let calls = s.sim.calls();
    let listed = calls
        .iter()
        .filter(|c| c.method == "conversations.list")
        .count();
    let read = calls
        .iter()
        .filter(|c| c.method == "conversations.history" && c.ok)
        .count();
    assert_eq!(posted_ids(&s.sim)[&acked[0]], 1, "posted once");
    assert!(
        listed >= 1 && read >= 1,
        "looked up by name, then read: {listed} lists, {read} reads"
    );
    assert!(
        found >= 1.0,
        "the post was found, not sent again: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_only_its_channel_for_retry_after() {
    let s = Fixture::builder()
        .config(|_| channel_routes(2))
        .start()
        .await;
    let Fixture { sim, sluice, .. } = s;

    // Create both channels, then arm a single 429 with Retry-After: 2 on c00.
    let (_, failed) = post_all(
        sluice.addr,
        vec![event("warm-0", "c00"), event("warm-1", "c01")],
        2,
    )
    .await;
    assert_eq!(failed, 0);
    wait_until("warm-up posts", Duration::from_secs(10), || {
        posted_ids(&sim).len() == 2
    })
    .await;
    let ids = channel_ids(&sim);
    let (c0, c1) = (ids["c00"].clone(), ids["c01"].clone());
    sim.set_faults(Faults {
        channel_429: Some((c0.clone(), 2, 1)),
        ..Faults::default()
    });
    let events = (0..6)
        .flat_map(|i| {
            [
                event(&format!("a-{i}"), "c00"),
                event(&format!("b-{i}"), "c01"),
            ]
        })
        .collect();
    let (_, failed) = post_all(sluice.addr, events, 4).await;
    assert_eq!(failed, 0);
    wait_until("all 14 messages", Duration::from_secs(30), || {
        posted_ids(&sim).len() == 14
    })
    .await;

    let calls = sim.calls();
    let limited = calls
        .iter()
        .find(|c| c.status == 429 && c.channel.as_deref() == Some(c0.as_str()))
        .expect("the armed 429 was never hit");
    let t0 = limited.at_ms;
    let next_c0 = calls
        .iter()
        .filter(|c| c.channel.as_deref() == Some(c0.as_str()) && c.seq > limited.seq)
        .map(|c| c.at_ms)
        .min()
        .expect("c00 was never called again");
    assert!(
        next_c0 >= t0 + 2000,
        "c00 called again after {} ms",
        next_c0 - t0
    );
    let c1_during = calls
        .iter()
        .filter(|c| {
            c.channel.as_deref() == Some(c1.as_str()) && c.at_ms > t0 && c.at_ms < t0 + 2000
        })
        .count();
    assert!(c1_during > 0, "c01 was held up by c00's 429");
    assert_eq!(sim.count_429(), 1, "only the armed 429");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_to_the_binary_get_their_status_and_reach_nobody() {
    let s = Fixture::builder().config(|_| String::new()).start().await;
    let Fixture { sim, sluice, .. } = s;
    let http = reqwest::Client::new();
    let url = format!("http://{}/v1/events", sluice.addr);
    let valid = event("x", "c00").to_string();
    let huge = json!({"title": "x", "severity": "info", "status": "firing", "source": "s",
                      "text": "y".repeat(100_000)})
    .to_string();
    let cases = [
        ("malformed", Some(KEY), "{".to_string(), 400),
        (
            "bad severity",
            Some(KEY),
            valid.replace("warning", "loud"),
            400,
        ),
        ("no key", None, valid.clone(), 401),
        ("unknown key", Some("wrong"), valid.clone(), 401),
        ("oversized", Some(KEY), huge, 413),
    ];
    for (what, key, body, want) in cases {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{what}");
        if want == 413 {
            // The unread rest of the body ends the connection; the client must not send on it again.
            assert_eq!(r.headers()["connection"], "close", "{what}");
        }
    }
    let metrics = http
        .get(format!("http://{}/metrics", sluice.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("sluice_outbox_pending 0"), "{metrics}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sim.calls().iter().all(|c| c.method != "chat.postMessage"),
        "a refused request reached Slack"
    );
}
