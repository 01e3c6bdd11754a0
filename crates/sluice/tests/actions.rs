//! Actions from Slack on alert cards, end to end: the real binary, the simulator clicking buttons and reacting as
//! users, and what the card, the threads, the store and the audit log show afterwards.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_sim::{Message, Simulator};

use common::fixture::Fixture;
use common::internal::{audited, results};
use common::proc::*;

/// How long a condition that asks Sluice over HTTP may take to hold.
const WAIT: Duration = Duration::from_secs(15);

/// A Sluice that serves `/slack/*` for the simulator, routing `labels.ch = "c00"` to `c00`, with `actions` as its
/// `[actions]` table.
async fn start(actions: &str) -> (tempfile::TempDir, Simulator, sluice_sim::RunningSim, Sluice) {
    let extra = format!("[actions]\n{actions}\n{}", channel_routes(1));
    let Fixture {
        dir,
        sim,
        sim_run,
        sluice,
        ..
    } = Fixture::builder()
        .signed()
        .response_urls()
        .config(move |_| extra)
        .start()
        .await;
    (dir, sim, sim_run, sluice)
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn alert(title: &str, key: &str) -> Value {
    json!({"title": title, "severity": "critical", "status": "firing", "source": "e2e", "service": "checkout",
           "dedup_key": key, "labels": {"ch": "c00", "team": "web"}})
}

/// The top-level message (the card) in c00 whose title contains `title`.
fn card(sim: &Simulator, title: &str) -> Option<Message> {
    sim.messages("c00")
        .into_iter()
        .find(|m| m.thread_ts.is_none() && m.text.contains(title))
}

fn text(m: &Message) -> String {
    m.blocks.to_string()
}

/// Posts `n` copies of one alert and waits for its card to count them all; returns the event ids, channel id and ts.
async fn alert_card(
    sim: &Simulator,
    addr: SocketAddr,
    title: &str,
    n: usize,
) -> (Vec<String>, String, String) {
    let (ids, failed) = post_all(addr, vec![alert(title, title); n], 1).await;
    assert_eq!((ids.len(), failed), (n, 0));
    let counted = format!("×{n}");
    wait_until("the alert card", Duration::from_secs(30), || {
        card(sim, title).is_some_and(|m| n == 1 || text(&m).contains(&counted))
    })
    .await;
    let m = card(sim, title).unwrap();
    (ids, m.channel, m.ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_by_two_clicks_and_two_reactions_at_once_is_one_ack_and_the_card_keeps_its_count(
) {
    let (_dir, sim, _sim_run, sluice) = start("").await;
    let (ids, channel, ts) = alert_card(&sim, sluice.addr, "Checkout p99 above 2s", 14).await;

    // Alice double-clicks Acknowledge (Slack sends the same interaction twice: handled once) and Dave clicks it
    // while Bob and Carol react with :eyes: — all at once.
    let (a1, a2, d, b, c) = tokio::join!(
        sim.click_button(&channel, &ts, "sluice_ack", "U0001"),
        sim.click_button(&channel, &ts, "sluice_ack", "U0001"),
        sim.click_button(&channel, &ts, "sluice_ack", "U0004"),
        sim.react(&channel, &ts, "eyes", "U0002"),
        sim.react(&channel, &ts, "eyes", "U0003"),
    );
    for d in [a1.unwrap(), a2.unwrap(), d.unwrap(), b.unwrap(), c.unwrap()] {
        assert_eq!(d.status, 200, "{}", d.body);
    }
    wait_until("the card to show the ack", Duration::from_secs(15), || {
        card(&sim, "Checkout").is_some_and(|m| text(&m).contains("Acknowledged by"))
    })
    .await;
    // Every attempt is audited before anything else is asked.
    wait_for("four audited attempts", WAIT, || async {
        audited(sluice.addr, "alert.ack").await.len() == 4
    })
    .await;
    let records = audited(sluice.addr, "alert.ack").await;
    let winner = records
        .iter()
        .find(|r| r["result"] == "ok")
        .expect("nobody acknowledged")["actor"]
        .as_str()
        .unwrap()
        .to_string();
    let already = format!("refused: already acknowledged by {winner}");
    assert_eq!(
        results(&records),
        ["ok".to_string(), already.clone(), already.clone(), already]
    );
    let vias: Vec<&str> = records
        .iter()
        .map(|r| r["detail"]["via"].as_str().unwrap())
        .collect();
    assert_eq!(
        (
            vias.iter().filter(|v| **v == "button").count(),
            vias.iter().filter(|v| **v == "reaction").count()
        ),
        (2, 2)
    );

    // The store holds one decision, seen from the first event and from a duplicate alike.
    for id in [&ids[0], &ids[13]] {
        let ev = get(sluice.addr, &format!("/v1/events/{id}")).await;
        let actions = ev["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1, "{ev}");
        assert_eq!(
            (actions[0]["action"].as_str(), actions[0]["actor"].as_str()),
            (Some("ack"), Some(winner.as_str()))
        );
    }

    // The card: one acknowledgement, by the winner, no Acknowledge button, and still ×14.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = card(&sim, "Checkout").unwrap();
    let t = text(&m);
    assert_eq!(t.matches("Acknowledged by").count(), 1, "{t}");
    assert!(t.contains(&format!("Acknowledged by <@{winner}>")), "{t}");
    assert!(
        !t.contains("\"sluice_ack\""),
        "Acknowledge is still offered: {t}"
    );
    assert!(t.contains("×14"), "the count was lost after the ack: {t}");

    // A clicking loser is told who won; a reacting one is not pestered.
    for user in ["U0001", "U0004"].into_iter().filter(|u| *u != winner) {
        wait_until("a loser to hear who won", Duration::from_secs(10), || {
            sim.ephemerals(Some(user)).iter().any(|e| {
                e.text
                    .contains(&format!("Already acknowledged by <@{winner}>"))
            })
        })
        .await;
    }
    for user in ["U0002", "U0003"] {
        assert!(sim.ephemerals(Some(user)).is_empty(), "{user} was messaged");
    }

    // A fifteenth copy refreshes the card again: the count moves on and the acknowledgement stays.
    let (more, _) = post_all(
        sluice.addr,
        vec![alert("Checkout p99 above 2s", "Checkout p99 above 2s")],
        1,
    )
    .await;
    assert_eq!(more.len(), 1);
    wait_until("the card to count 15", Duration::from_secs(15), || {
        card(&sim, "Checkout").is_some_and(|m| text(&m).contains("×15"))
    })
    .await;
    let t = text(&card(&sim, "Checkout").unwrap());
    assert!(t.contains(&format!("Acknowledged by <@{winner}>")), "{t}");
    assert!(!t.contains("\"sluice_ack\""), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorised_click_or_reaction_is_refused_and_a_channel_member_may_act() {
    let (_dir, sim, sim_run, sluice) = start("users = [\"U0001\"]\nchannel_members = true").await;
    let (ids, channel, ts) = alert_card(&sim, sluice.addr, "Disk full on db1", 3).await;
    // Bob joins the channel; Carol does not.
    let invite: Value = reqwest::Client::new()
        .post(format!("http://{}/api/conversations.invite", sim_run.addr))
        .bearer_auth(sluice_sim::DEFAULT_TOKEN)
        .json(&json!({"channel": channel, "users": "U0002"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(invite["ok"], true, "{invite}");
    let edits_before = card(&sim, "Disk full").unwrap().edits;

    sim.click_button(&channel, &ts, "sluice_ack", "U0003")
        .await
        .unwrap();
    sim.react(&channel, &ts, "eyes", "U0003").await.unwrap();
    // The click is answered through its response_url. The reaction has none, and Slack refuses an
    // ephemeral to Carol, who is not in the channel: she is told in a direct message that names it.
    wait_until(
        "two refusals for carol: by response_url and by direct message",
        Duration::from_secs(15),
        || {
            let by_url = sim
                .ephemerals(Some("U0003"))
                .iter()
                .any(|e| e.via == "response_url" && e.text.contains("not allowed to acknowledge"));
            let by_dm = sim.messages("U0003").iter().any(|m| {
                m.text.contains("not allowed to acknowledge")
                    && m.text.contains(&format!("In <#{channel}>"))
            });
            by_url && by_dm
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m = card(&sim, "Disk full").unwrap();
    assert_eq!(m.edits, edits_before, "a refused action changed the card");
    assert!(text(&m).contains("\"sluice_ack\""));
    let ev = get(sluice.addr, &format!("/v1/events/{}", ids[0])).await;
    assert_eq!(ev["fate"]["kind"], "queued");
    let records = audited(sluice.addr, "alert.ack").await;
    assert_eq!(
        results(&records),
        ["refused: not allowed", "refused: not allowed"]
    );
    assert!(records.iter().all(|r| r["actor"] == "U0003"));

    // Bob is not listed, but he is in the channel.
    sim.react(&channel, &ts, "eyes", "U0002").await.unwrap();
    wait_until(
        "bob's acknowledgement on the card",
        Duration::from_secs(15),
        || card(&sim, "Disk full").is_some_and(|m| text(&m).contains("Acknowledged by <@U0002>")),
    )
    .await;
    assert!(text(&card(&sim, "Disk full").unwrap()).contains("×3"));
    let records = audited(sluice.addr, "alert.ack").await;
    assert_eq!(records.len(), 3);
    assert_eq!(
        (records[2]["actor"].as_str(), records[2]["result"].as_str()),
        (Some("U0002"), Some("ok"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalate_calls_on_call_in_the_escalation_channel_once_with_a_link_to_the_card() {
    let (_dir, sim, _sim_run, sluice) =
        start("escalate_group = \"S0001\"\nescalate_channel = \"incidents\"").await;
    let (_, channel, ts) = alert_card(&sim, sluice.addr, "Payments 5xx above 5%", 2).await;
    assert!(
        text(&card(&sim, "Payments").unwrap()).contains("\"sluice_escalate\""),
        "the card offers Escalate"
    );

    let (a1, a2, b) = tokio::join!(
        sim.click_button(&channel, &ts, "sluice_escalate", "U0001"),
        sim.click_button(&channel, &ts, "sluice_escalate", "U0001"),
        sim.click_button(&channel, &ts, "sluice_escalate", "U0002"),
    );
    for d in [a1.unwrap(), a2.unwrap(), b.unwrap()] {
        assert_eq!(d.status, 200);
    }
    wait_until("the escalation message", Duration::from_secs(15), || {
        !sim.messages("incidents").is_empty()
            && card(&sim, "Payments").is_some_and(|m| text(&m).contains("Escalated by"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posted = sim.messages("incidents");
    assert_eq!(posted.len(), 1, "escalated more than once: {posted:#?}");
    let winner = audited(sluice.addr, "alert.escalate")
        .await
        .into_iter()
        .find(|r| r["result"] == "ok")
        .expect("nobody escalated")["actor"]
        .as_str()
        .unwrap()
        .to_string();
    let msg = &posted[0].text;
    assert!(
        msg.contains("<!subteam^S0001>"),
        "on-call is not mentioned: {msg}"
    );
    assert!(msg.contains(&format!("escalated by <@{winner}>")), "{msg}");
    let link = format!(
        "https://sluice-sim.slack.com/archives/{channel}/p{}",
        ts.replace('.', "")
    );
    assert!(msg.contains(&link), "no link to the card: {msg}");

    // The card's thread says where it went (without pinging the group a second time), and the card says who.
    let notes: Vec<Message> = sim
        .messages(&channel)
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(ts.as_str()))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0].text.contains("#incidents") && !notes[0].text.contains("subteam"),
        "{}",
        notes[0].text
    );
    let t = text(&card(&sim, "Payments").unwrap());
    assert!(t.contains(&format!("Escalated by <@{winner}> at")), "{t}");
    assert!(
        !t.contains("\"sluice_escalate\""),
        "Escalate is still offered: {t}"
    );
    assert!(t.contains("\"sluice_ack\"") && t.contains("×2"), "{t}");
    let records = audited(sluice.addr, "alert.escalate").await;
    assert_eq!(records.len(), 2, "alice's double click is one click");
    assert_eq!(
        records.iter().filter(|r| r["result"] == "ok").count(),
        1,
        "{records:#?}"
    );

    // Resolving it from the card shows it resolved in place, count and decisions kept, and says so in the thread.
    sim.click_button(&channel, &ts, "sluice_resolve", "U0002")
        .await
        .unwrap();
    wait_until("the resolved card", Duration::from_secs(15), || {
        card(&sim, "Payments").is_some_and(|m| text(&m).contains("Resolved by <@U0002>"))
    })
    .await;
    let t = text(&card(&sim, "Payments").unwrap());
    assert!(t.contains("Resolved") && t.contains("×2"), "{t}");
    assert!(t.contains(&format!("Escalated by <@{winner}> at")), "{t}");
    assert!(
        !t.contains("\"sluice_resolve\"") && !t.contains("\"sluice_ack\""),
        "{t}"
    );
    assert!(sim
        .messages(&channel)
        .iter()
        .any(|m| m.thread_ts.as_deref() == Some(ts.as_str())
            && m.text.contains("Resolved by <@U0002>")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_for_an_hour_from_the_card_mutes_that_alert_and_nothing_else() {
    let (_dir, sim, _sim_run, sluice) = start("").await;
    let (_, channel, ts) = alert_card(&sim, sluice.addr, "Queue depth high", 1).await;

    // Alice and Bob click it at the same moment.
    let (a, b) = tokio::join!(
        sim.click_button(&channel, &ts, "sluice_silence", "U0001"),
        sim.click_button(&channel, &ts, "sluice_silence", "U0002"),
    );
    assert_eq!((a.unwrap().status, b.unwrap().status), (200, 200));
    wait_for("the silence", WAIT, || async {
        get(sluice.addr, "/v1/silences").await["silences"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    })
    .await;
    wait_until(
        "the card to say it is silenced",
        Duration::from_secs(15),
        || card(&sim, "Queue depth").is_some_and(|m| text(&m).contains("Silenced until")),
    )
    .await;
    wait_for("both clicks audited", WAIT, || async {
        audited(sluice.addr, "alert.silence").await.len() == 2
    })
    .await;
    let records = audited(sluice.addr, "alert.silence").await;
    let ok = records
        .iter()
        .find(|r| r["result"] == "ok")
        .expect("nobody silenced")
        .clone();
    let (winner, loser) = if ok["actor"] == "U0001" {
        ("U0001", "U0002")
    } else {
        ("U0002", "U0001")
    };
    assert_eq!(
        results(&records),
        [
            "ok".to_string(),
            format!("refused: already silenced by {winner}")
        ]
    );
    wait_until(
        "the loser to hear it is silenced",
        Duration::from_secs(10),
        || {
            sim.ephemerals(Some(loser)).iter().any(|e| {
                e.text.contains("Already silenced until")
                    && e.text.contains(&format!("by <@{winner}>"))
            })
        },
    )
    .await;
    let silences = get(sluice.addr, "/v1/silences").await["silences"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        silences.len(),
        1,
        "a second click made a second silence: {silences:#?}"
    );
    let s = &silences[0];
    assert_eq!(
        (s["author"].as_str(), s["comment"].as_str()),
        (Some(winner), Some("from Slack"))
    );
    assert_eq!(
        s["ends_at_ms"].as_i64().unwrap() - s["starts_at_ms"].as_i64().unwrap(),
        3_600_000
    );
    let mut matchers: Vec<String> = s["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}{}{}",
                m["name"].as_str().unwrap(),
                m["op"].as_str().unwrap(),
                m["value"].as_str().unwrap()
            )
        })
        .collect();
    matchers.sort();
    assert_eq!(
        matchers,
        [
            "ch=c00",
            "service=checkout",
            "source=e2e",
            "team=web",
            "title=Queue depth high"
        ]
    );
    let until = time::OffsetDateTime::from_unix_timestamp(s["ends_at_ms"].as_i64().unwrap() / 1000)
        .unwrap();
    let t = text(&card(&sim, "Queue depth").unwrap());
    assert!(
        t.contains(&format!(
            "Silenced until {:02}:{:02} UTC by <@{winner}>",
            until.hour(),
            until.minute()
        )),
        "{t}"
    );
    assert!(
        !t.contains("\"sluice_silence\""),
        "Silence is still offered: {t}"
    );
    assert_eq!(ok["detail"]["silence"]["id"], s["id"]);

    // The same alert again is muted by that silence; another alert still gets through.
    let (again, _) = post_all(
        sluice.addr,
        vec![alert("Queue depth high", "Queue depth high")],
        1,
    )
    .await;
    let (other, _) = post_all(
        sluice.addr,
        vec![alert("Queue consumers down", "Queue consumers down")],
        1,
    )
    .await;
    let fate = get(sluice.addr, &format!("/v1/events/{}", again[0])).await["fate"].clone();
    assert_eq!(
        fate,
        json!({"kind": "suppressed", "by": format!("silence:{}", s["id"].as_str().unwrap())})
    );
    wait_until("the other alert's card", Duration::from_secs(15), || {
        card(&sim, "Queue consumers down").is_some()
    })
    .await;
    let fate = get(sluice.addr, &format!("/v1/events/{}", other[0])).await["fate"].clone();
    assert_eq!(fate["kind"], "queued");
}

/// A group's card (noise control) takes the same decisions: a click and a reaction give one acknowledgement,
/// shown on the group card, which keeps listing its alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_card_is_acknowledged_once_by_click_or_reaction() {
    let routes = "[[routing.rule]]\nname = \"grouped\"\nmatch = { \"labels.ch\" = \"c00\" }\nchannels = [\"c00\"]\ngroup_by = [\"service\"]\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n";
    let s = Fixture::builder()
        .signed()
        .response_urls()
        .config(|_| routes.to_string())
        .start()
        .await;
    let Fixture { sim, sluice, .. } = s;

    let alerts = vec![
        alert("Checkout p99 above 2s", "latency"),
        alert("Checkout errors above 1%", "errors"),
        alert("Checkout p99 above 2s", "latency"),
    ];
    let (ids, failed) = post_all(sluice.addr, alerts, 1).await;
    assert_eq!((ids.len(), failed), (3, 0));
    wait_until("the group card", Duration::from_secs(20), || {
        card(&sim, "[FIRING:2] service=checkout").is_some()
    })
    .await;
    let m = card(&sim, "[FIRING:2]").unwrap();
    assert!(text(&m).contains("\"sluice_ack\""), "{}", text(&m));
    let (click, react) = tokio::join!(
        sim.click_button(&m.channel, &m.ts, "sluice_ack", "U0001"),
        sim.react(&m.channel, &m.ts, "eyes", "U0002"),
    );
    assert_eq!(click.unwrap().status, 200);
    assert_eq!(react.unwrap().status, 200);
    wait_until(
        "the group card to show the ack",
        Duration::from_secs(15),
        || card(&sim, "[FIRING:2]").is_some_and(|m| text(&m).contains("Acknowledged by")),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = text(&card(&sim, "[FIRING:2]").unwrap());
    assert_eq!(t.matches("Acknowledged by").count(), 1, "{t}");
    assert!(!t.contains("\"sluice_ack\""), "{t}");
    assert!(
        t.contains("Checkout errors above 1%") && t.contains("×2"),
        "the alerts stay listed: {t}"
    );
    let records = audited(sluice.addr, "alert.ack").await;
    assert_eq!(
        records.iter().filter(|r| r["result"] == "ok").count(),
        1,
        "{records:?}"
    );
    assert_eq!(
        sim.messages("c00")
            .iter()
            .filter(|m| m.thread_ts.is_none())
            .count(),
        1,
        "the decision updated the card, it did not post another"
    );
    let ev = get(sluice.addr, &format!("/v1/events/{}", ids[0])).await;
    assert_eq!(ev["actions"][0]["action"], "ack", "{ev}");
}

/// A click that fails after its checks (here: its alert is no longer stored) is audited with the error, like an
/// allowed or a refused one: no human action leaves no trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_that_fails_is_audited_with_its_error() {
    let (_dir, sim, sim_run, sluice) = start("").await;
    let posted: Value = reqwest::Client::new()
        .post(format!("http://{}/api/chat.postMessage", sim_run.addr))
        .bearer_auth(sluice_sim::DEFAULT_TOKEN)
        .json(&json!({"channel": "c00", "text": "An old card", "blocks": [
            {"type": "actions", "elements": [{"type": "button", "action_id": "sluice_ack", "value": "ev_gone",
              "text": {"type": "plain_text", "text": "Acknowledge"}}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (channel, ts) = (
        posted["channel"].as_str().unwrap(),
        posted["ts"].as_str().unwrap(),
    );
    let d = sim
        .click_button(channel, ts, "sluice_ack", "U0001")
        .await
        .unwrap();
    assert_eq!(d.status, 200, "{}", d.body);
    wait_for("the failed click in the audit log", WAIT, || async {
        !audited(sluice.addr, "alert.ack").await.is_empty()
    })
    .await;
    let records = audited(sluice.addr, "alert.ack").await;
    assert_eq!(
        results(&records),
        ["error: alert ev_gone is no longer stored".to_string()]
    );
    assert_eq!(records[0]["actor"], "U0001");
}
