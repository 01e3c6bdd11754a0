//! Noise control under a storm: grouping and the storm guard.
//!
//! The first test drives the real pipeline, store and flusher with its own clock, so a 60-second storm of 10,000
//! alerts runs in seconds and is exactly reproducible. The end-to-end tests run the real binary against the
//! simulator in real time, with the timings scaled down.
//!
//! `cargo test -p sluice --test storm -- --nocapture` prints the figures.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value};
use sluice::notify::{Notifier, TickReport};
use sluice_core::event::Event;
use sluice_domain::pipeline::Pipeline;
use sluice_domain::silence::SilenceSet;
use sluice_store::{EventBody, Fate};
use time::OffsetDateTime;

use common::fixture::Fixture;
use common::proc::*;

const T0: i64 = 1_800_000_000_000;

/// 10,000 alerts from 50 services: 2,000 distinct alerts (40 per service), each firing 5 times, mixed severities,
/// spread evenly over 60 seconds.
fn storm_alert(i: usize) -> Value {
    let service = format!("svc-{:02}", i % 50);
    let alert = (i / 50) % 40;
    let severity = ["critical", "warning", "warning", "info"][alert % 4];
    json!({
        "title": format!("alert-{alert:02} on {service}"), "severity": severity, "status": "firing",
        "source": "alertmanager", "service": service,
        "labels": {"alertname": format!("alert-{alert:02}"), "ch": "alerts"},
        "dedup_key": format!("{service}/alert-{alert:02}"),
    })
}

const STORM_ROUTE: &str = r#"
[routing]
default = { channels = ["alerts"], group_by = ["service"], group_wait = "30s", group_interval = "5m", repeat_interval = "4h", storm = { above = 300, per = "1m", digest_every = "1m" } }
"#;

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_10000_alerts_from_50_services_in_60_seconds_becomes_a_few_digests() {
    let dir = tempfile::tempdir().unwrap();
    let state = common::state(dir.path(), STORM_ROUTE).await;
    let store = state.store.clone();
    let silences = SilenceSet::default();
    let pipeline = Pipeline {
        silences: &silences,
        router: &state.config.router,
        inhibitor: &state.config.inhibitor,
        renderer: &state.config.renderer,
        team: "T0SIM",
        dedup_window_ms: 3_600_000,
    };
    let mut notifier = Notifier::new(store.clone(), &state.config.router, "T0SIM", 3_600_000);

    // 10,000 events over 60 s: one every 6 ms, ingested in batches of 50 (300 ms of traffic each); the flusher
    // ticks every 250 ms of the test's clock, then for ten more minutes so the storm ends and everything is due.
    let (n, step_ms, batch) = (10_000usize, 6i64, 50usize);
    let mut ids = Vec::with_capacity(n);
    let mut report = TickReport::default();
    let mut next_tick = T0;
    let tick = |r: TickReport, report: &mut TickReport| {
        report.posted += r.posted;
        report.updated += r.updated;
        report.digested += r.digested;
        report.quiet += r.quiet;
        report.digests += r.digests;
    };
    for start in (0..n).step_by(batch) {
        let now = T0 + start as i64 * step_ms;
        while next_tick <= now {
            tick(notifier.tick(next_tick).await.unwrap(), &mut report);
            next_tick += 250;
        }
        let mut events = Vec::with_capacity(batch);
        for i in start..start + batch {
            let body = storm_alert(i);
            let event: Event = serde_json::from_value(body.clone()).unwrap();
            let id = format!("ev{i:05}");
            events.push(
                pipeline
                    .process(id.clone(), &event, EventBody::of(&body), at(now))
                    .unwrap(),
            );
            ids.push(id);
        }
        store.ingest(events).await.unwrap();
    }
    let end = T0 + 11 * 60_000;
    while next_tick <= end {
        tick(notifier.tick(next_tick).await.unwrap(), &mut report);
        next_tick += 250;
    }
    assert!(!notifier.in_storm("default"), "the storm is over");

    // What would reach Slack: the outbox of the channel. New messages are the items not linked to a card.
    let items = store.lane_items("T0SIM:alerts", 100_000).await.unwrap();
    let messages: Vec<&sluice_store::OutboxItem> = items
        .iter()
        .filter(|i| i.method == "chat.postMessage" && !i.ref_pending && i.ref_sent.is_none())
        .collect();
    let calls = items.len();
    let mut headers: Vec<String> = messages
        .iter()
        .map(|m| {
            m.args["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    headers.dedup();

    // Every event accounted for: stored, with a fate, and its alert in a group that was digested or carded.
    let mut fates: BTreeMap<&str, usize> = BTreeMap::new();
    let mut digested = 0;
    for id in &ids {
        let st = store
            .event(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} lost"));
        *fates
            .entry(match st.fate {
                Fate::Queued { .. } => "first of its alert",
                Fate::Merged { .. } => "merged into its alert",
                _ => "other",
            })
            .or_default() += 1;
        assert_eq!(st.groups.len(), 1, "{id}: {:?}", st.groups);
        let g = &st.groups[0];
        assert!(
            g.notified_at_ms.is_some(),
            "{id}: its group was never flushed"
        );
        digested += usize::from(g.digested_at_ms.is_some());
    }
    let digests: Vec<&sluice_store::OutboxItem> = messages
        .iter()
        .copied()
        .filter(|m| m.event_id.as_deref().is_some_and(|e| e.starts_with("dig_")))
        .collect();
    let digest_events: u64 = {
        let mut sum = 0;
        for d in &digests {
            let st = store
                .event(d.event_id.as_deref().unwrap())
                .await
                .unwrap()
                .unwrap();
            sum += st.body["events"].as_u64().unwrap();
        }
        sum
    };
    eprintln!(
        "storm (simulated clock): {n} alerts from 50 services over 60 s -> {} Slack messages ({} digests, {} group cards), \
         {calls} Slack calls in all; compression {:.0}:1; {} events accounted for {fates:?}, {digested} of them digested; \
         the digests count {digest_events} events; flusher: {report:?}",
        messages.len(),
        digests.len(),
        messages.len() - digests.len(),
        n as f64 / messages.len() as f64,
        ids.len(),
    );
    for h in &headers {
        eprintln!("  message: {h}");
    }
    assert_eq!(fates.values().sum::<usize>(), n);
    assert_eq!(fates.get("other"), None);
    assert_eq!(fates["first of its alert"], 2_000, "2,000 distinct alerts");
    assert!(messages.len() <= 60, "{} messages", messages.len());
    assert!(digests.len() >= 2, "a start and an end digest at least");
    assert_eq!(
        digest_events, n as u64,
        "the digests together count every event of the storm"
    );
    let first = serde_json::to_string(&digests[0].args["blocks"]).unwrap();
    assert!(
        first.contains("svc-") && first.contains("critical") && first.contains("warning"),
        "the digest lists counts per service and severity: {first}"
    );

    // Calm again: a new alert in a group the digests covered, and one for a new service, each get a card; the
    // 49 other services stay reported by the digests.
    let calm = end + 60_000;
    let mut events = Vec::new();
    for (i, (service, name)) in [("svc-00", "new-alert"), ("svc-new", "first-alert")]
        .into_iter()
        .enumerate()
    {
        let body = json!({"title": format!("{name} on {service}"), "severity": "critical", "status": "firing",
                          "source": "alertmanager", "service": service, "dedup_key": format!("{service}/{name}")});
        let event: Event = serde_json::from_value(body.clone()).unwrap();
        events.push(
            pipeline
                .process(format!("calm{i}"), &event, EventBody::of(&body), at(calm))
                .unwrap(),
        );
    }
    store.ingest(events).await.unwrap();
    let mut t = calm;
    while t <= calm + 6 * 60_000 {
        notifier.tick(t).await.unwrap();
        t += 1_000;
    }
    let after: Vec<String> = store
        .lane_items("T0SIM:alerts", 100_000)
        .await
        .unwrap()
        .into_iter()
        .skip(calls)
        .filter(|i| i.method == "chat.postMessage" && !i.ref_pending && i.ref_sent.is_none())
        .map(|i| i.args["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after
            .iter()
            .any(|t| t.contains("service=svc-00") && t.contains("[FIRING:41]")),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|t| t.contains("service=svc-new") && t.contains("[FIRING:1]")),
        "{after:?}"
    );
}

/// A grouped route end to end: one card per service, updated in place, resolved with one thread reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_card_per_group_kept_up_to_date_then_resolved_in_place() {
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
        .config(|_| routes.to_string())
        .start()
        .await;
    let Fixture { sim, sluice, .. } = s;
    let alert = |service: &str, name: &str, status: &str| {
        json!({"title": format!("{name} on {service}"), "severity": "critical", "status": status, "source": "e2e",
               "service": service, "dedup_key": format!("{service}/{name}")})
    };
    let first = vec![
        alert("db", "disk-full", "firing"),
        alert("db", "replication-lag", "firing"),
        alert("db", "disk-full", "firing"),
        alert("api", "latency", "firing"),
    ];
    let (ids, failed) = post_all(sluice.addr, first, 1).await;
    assert_eq!((ids.len(), failed), (4, 0));
    let top = |sim: &sluice_sim::Simulator| -> Vec<sluice_sim::Message> {
        sim.messages("alerts")
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .collect()
    };
    wait_until("two group cards", Duration::from_secs(20), || {
        top(&sim).len() == 2
    })
    .await;
    let cards = top(&sim);
    let db = cards
        .iter()
        .find(|m| m.text.contains("service=db"))
        .expect("db card");
    assert!(db.text.contains("[FIRING:2]"), "{}", db.text);
    let db_ts = db.ts.clone();

    // A third db alert and the end of both db alerts: the same card, updated, and one reply in its thread.
    let (more, _) = post_all(
        sluice.addr,
        vec![
            alert("db", "cpu", "firing"),
            alert("db", "disk-full", "resolved"),
            alert("db", "replication-lag", "resolved"),
            alert("db", "cpu", "resolved"),
        ],
        1,
    )
    .await;
    assert_eq!(more.len(), 4);
    wait_until(
        "the db card to show resolved",
        Duration::from_secs(20),
        || {
            top(&sim)
                .iter()
                .any(|m| m.ts == db_ts && m.text.contains("[RESOLVED]"))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(top(&sim).len(), 2, "no new message: the card lives on");
    let replies: Vec<_> = sim
        .messages("alerts")
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(db_ts.as_str()))
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0].text.contains("All 3 alerts resolved"),
        "{}",
        replies[0].text
    );
    let api = top(&sim)
        .into_iter()
        .find(|m| m.text.contains("service=api"))
        .unwrap();
    assert!(api.text.contains("[FIRING:1]"), "{}", api.text);

    // The API says where each event went.
    let st: Value = reqwest::Client::new()
        .get(format!("http://{}/v1/events/{}", sluice.addr, ids[2]))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&st["state"], &st["fate"]["count"]),
        (&json!("merged"), &json!(2)),
        "{st}"
    );
    assert_eq!(st["groups"][0]["ts"], json!(db_ts), "{st}");
}

/// The same storm as the first test, through the real binary and the simulator in real time, compressed: the
/// timings are scaled down twelvefold (60 s of traffic in 5 s... see the config) so CI stays fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_through_the_binary_posts_few_messages_with_no_429s_and_loses_nothing() {
    let routes = r#"
[routing]
default = { channels = ["alerts"], group_by = ["service"], group_wait = "2s", group_interval = "25s", storm = { above = 250, per = "5s", digest_every = "5s" } }
"#;
    let s = Fixture::builder()
        .config(|_| routes.to_string())
        .start()
        .await;
    let Fixture { sim, sluice, .. } = s;
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    // 10,000 alerts in batches of 50, paced to take about 15 s.
    for (k, start) in (0..10_000).step_by(50).enumerate() {
        let batch: Vec<Value> = (start..start + 50).map(storm_alert).collect();
        let r = http
            .post(format!("http://{}/v1/events", sluice.addr))
            .bearer_auth(KEY)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        ids.extend(
            v["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_string()),
        );
        let due = Duration::from_millis(75 * (k as u64 + 1));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let sent_in = started.elapsed();
    wait_until("the storm to end", Duration::from_secs(60), || {
        sim.messages("alerts")
            .iter()
            .any(|m| m.text.contains("is over"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let messages: Vec<sluice_sim::Message> = sim
        .messages("alerts")
        .into_iter()
        .filter(|m| m.thread_ts.is_none())
        .collect();
    let limited = sim
        .calls()
        .iter()
        .filter(|c| c.error.as_deref() == Some("ratelimited"))
        .count();
    let mut accounted: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let st: Value = http
            .get(format!("http://{}/v1/events/{id}", sluice.addr))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let how = if st["groups"][0]["digested_at_ms"].is_number() {
            "digested"
        } else if st["groups"][0]["ts"].is_string() {
            "on a card"
        } else {
            "unaccounted"
        };
        *accounted.entry(how.to_string()).or_default() += 1;
    }
    eprintln!(
        "storm (binary + simulator): {} alerts sent in {:.1} s -> {} Slack messages, {limited} 429s, \
         compression {:.0}:1, accounted {accounted:?}",
        ids.len(),
        sent_in.as_secs_f64(),
        messages.len(),
        ids.len() as f64 / messages.len().max(1) as f64
    );
    for m in &messages {
        eprintln!("  message: {}", m.text);
    }
    assert_eq!(ids.len(), 10_000);
    assert_eq!(limited, 0, "no 429s");
    assert!(messages.len() <= 60, "{} messages", messages.len());
    assert_eq!(accounted.get("unaccounted"), None, "{accounted:?}");
    assert_eq!(accounted.values().sum::<usize>(), 10_000);
}
