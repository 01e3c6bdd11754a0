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

/// A card is drawn when it is sent, not when its event arrives: duplicates that came in while the first post waited
/// (here behind a Slack outage) are on it when it goes out, and the alert still has one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_that_came_while_the_first_card_waited_are_on_it_when_posted() {
    let s = Fixture::builder()
        .config(|_| channel_routes(1))
        .start()
        .await;
    s.sim.set_faults(sluice_sim::Faults {
        outage_until: Some(std::time::Instant::now() + Duration::from_secs(4)),
        ..Default::default()
    });
    let (first, _) = post_all(s.sluice.addr, vec![alert("firing")], 1).await;
    wait_until(
        "the first post to meet the outage",
        Duration::from_secs(10),
        || {
            s.sim
                .calls()
                .iter()
                .any(|c| c.method == "chat.postMessage" && c.status == 503)
        },
    )
    .await;
    let (dups, failed) = post_all(s.sluice.addr, vec![alert("firing"); 4], 1).await;
    assert_eq!((dups.len(), failed), (4, 0));
    wait_until("the card after the outage", Duration::from_secs(30), || {
        ok_calls(&s.sim, "chat.postMessage") == 1
    })
    .await;
    let posted = s
        .sim
        .calls()
        .into_iter()
        .find(|c| c.method == "chat.postMessage" && c.ok)
        .unwrap();
    let text = posted.args["text"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("(×5)"), "the post counts all five: {text}");
    assert!(
        posted.args["blocks"].to_string().contains("×5 · last "),
        "{}",
        posted.args["blocks"]
    );
    assert_eq!(
        posted.args["metadata"]["event_payload"]["event_id"], first[0],
        "the card is the first event's"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(card_and_replies(&s.sim).0.len(), 1, "one message");
}

/// A route's user template is drawn when the card is sent, and an event it cannot draw is still refused when it
/// comes in: 422 with the reason, nothing queued, so its sender hears of it. (Built-in cards draw every event.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_a_user_template_cannot_draw_is_refused_when_it_comes_in() {
    let s = Fixture::builder()
        .config(|_| {
            // Names the owning team from a label that not every event carries.
            "[templates]\nteam_card = '{\"text\": {{ event.labels.team ~ \": \" ~ event.title }}}'\n\
             [[routing.rule]]\nname = \"t\"\nmatch = { \"labels.ch\" = \"c00\" }\nchannels = [\"c00\"]\n\
             template = \"team_card\"\n"
                .to_string()
        })
        .start()
        .await;
    let http = reqwest::Client::new();
    let send = |labels: Value| {
        http.post(format!("http://{}/v1/events", s.sluice.addr))
            .bearer_auth(KEY)
            .json(&json!({"title": "Disk full", "severity": "critical", "status": "firing", "source": "e2e",
                          "labels": labels}))
            .send()
    };
    let bad = send(json!({"ch": "c00"})).await.unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "render_failed", "{body}");
    assert!(
        body.to_string().contains("team_card"),
        "names the template: {body}"
    );
    let good = send(json!({"ch": "c00", "team": "storage"})).await.unwrap();
    assert_eq!(
        good.status().as_u16(),
        202,
        "{}",
        good.text().await.unwrap()
    );
    wait_until("the template's card", Duration::from_secs(15), || {
        !s.sim.messages("c00").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let texts: Vec<String> = s.sim.messages("c00").into_iter().map(|m| m.text).collect();
    assert_eq!(
        texts,
        ["storage: Disk full"],
        "only the event it could draw"
    );
}
