//! Living alert messages end to end: the real binary against the simulator. One alert keeps one card whose
//! counter is updated with few, coalesced `chat.update` calls; its resolve updates the same message and replies in
//! its thread, even after a restart between firing and resolving; a re-fire goes into the thread.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use sluice_sim::Simulator;

use common::fixture::Fixture;
use common::proc::*;

fn alert(status: &str) -> Value {
    json!({"title": "Disk full on db1", "severity": "critical", "status": status, "source": "e2e",
           "service": "db", "dedup_key": "disk-full@db1", "labels": {"ch": "c00"}})
}

/// Top-level messages and thread replies in `c00`.
fn card_and_replies(sim: &Simulator) -> (Vec<sluice_sim::Message>, Vec<sluice_sim::Message>) {
    sim.messages("c00")
        .into_iter()
        .partition(|m| m.thread_ts.is_none())
}

fn ok_calls(sim: &Simulator, method: &str) -> usize {
    sim.calls()
        .iter()
        .filter(|c| c.method == method && c.ok)
        .count()
}

async fn fate(addr: std::net::SocketAddr, id: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/v1/events/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["fate"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourteen_copies_one_card_then_resolved_in_place_across_a_restart() {
    let mut s = Fixture::builder()
        .config(|_| channel_routes(1))
        .start()
        .await;

    let (ids, failed) = post_all(s.sluice.addr, vec![alert("firing"); 14], 14).await;
    assert_eq!((ids.len(), failed), (14, 0));
    wait_until("the card to count 14", Duration::from_secs(30), || {
        card_and_replies(&s.sim)
            .0
            .iter()
            .any(|m| m.text.contains("(×14)"))
    })
    .await;
    // Let any straggling refresh go out before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cards, replies) = card_and_replies(&s.sim);
    assert_eq!(
        (cards.len(), replies.len()),
        (1, 0),
        "one message for 14 copies"
    );
    let updates = ok_calls(&s.sim, "chat.update");
    eprintln!("14 copies: 1 chat.postMessage, {updates} chat.update");
    assert!(
        (1..=2).contains(&updates),
        "{updates} chat.update calls for 13 duplicates"
    );
    let card = &cards[0];
    assert!(
        card.blocks.to_string().contains("×14 · last "),
        "the counter line: {}",
        card.blocks
    );
    let mut merged = 0;
    for id in &ids {
        if fate(s.sluice.addr, id).await["kind"] == "merged" {
            merged += 1;
        }
    }
    assert_eq!(merged, 13, "13 duplicates accounted for as merged");

    // The card's reference lives in the store: a restart between firing and resolving changes nothing.
    s.sluice.child.kill().unwrap();
    let _ = s.sluice.child.wait();
    s.sluice = s.start_another();
    let (resolved, _) = post_all(s.sluice.addr, vec![alert("resolved")], 1).await;
    wait_until("the resolve in the thread", Duration::from_secs(30), || {
        let (cards, replies) = card_and_replies(&s.sim);
        cards.iter().any(|m| m.text.contains("[RESOLVED]")) && !replies.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cards, replies) = card_and_replies(&s.sim);
    assert_eq!(cards.len(), 1, "still one message");
    assert_eq!(cards[0].ts, card.ts, "updated in place, same ts");
    let blocks = cards[0].blocks.to_string();
    assert!(
        blocks.contains("Resolved ") && blocks.contains("lasted"),
        "{blocks}"
    );
    assert!(
        !blocks.contains("sluice_ack"),
        "no Acknowledge button once resolved"
    );
    assert_eq!(replies.len(), 1, "one thread reply");
    assert_eq!(replies[0].thread_ts.as_deref(), Some(card.ts.as_str()));
    assert!(replies[0].text.contains("Resolved"), "{}", replies[0].text);
    assert_eq!(fate(s.sluice.addr, &resolved[0]).await["kind"], "resolved");

    // Firing again soon after: the thread hears about it, the channel gets no new message.
    let (again, _) = post_all(s.sluice.addr, vec![alert("firing")], 1).await;
    wait_until("the re-fire in the thread", Duration::from_secs(30), || {
        card_and_replies(&s.sim).1.len() >= 2
    })
    .await;
    let (cards, replies) = card_and_replies(&s.sim);
    assert_eq!(cards.len(), 1);
    assert!(
        replies[1].text.contains("Firing again"),
        "{}",
        replies[1].text
    );
    assert_eq!(
        fate(s.sluice.addr, &again[0]).await,
        json!({"kind": "merged", "into": ids_first(&s.sim), "count": 15})
    );
}

/// The event id on the card (the alert's first event).
fn ids_first(sim: &Simulator) -> String {
    card_and_replies(sim).0[0]
        .metadata
        .as_ref()
        .and_then(|m| m["event_payload"]["event_id"].as_str())
        .unwrap_or_default()
        .to_string()
}
