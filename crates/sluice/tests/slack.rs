//! Slack talking to Sluice, end to end: the real binary, the simulator playing the user's side
//! (signed clicks, slash commands, events, Socket Mode), and what reaches Slack in return.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_sim::{Simulator, Tamper};

use common::internal::audited;
use common::proc::*;

/// A Sluice that serves `/slack/*` (or Socket Mode) for `sim`; `extra` adds tables.
fn slack_config(
    dir: &Path,
    sim: &Simulator,
    sim_addr: std::net::SocketAddr,
    slack_extra: &str,
    extra: &str,
) -> PathBuf {
    std::fs::write(dir.join("signing"), sluice_sim::DEFAULT_SIGNING_SECRET).unwrap();
    std::fs::write(dir.join("app-token"), sluice_sim::DEFAULT_APP_TOKEN).unwrap();
    let db = format!("sqlite://{}", dir.join("sluice.db").display());
    let slack = format!(
        "signing_secret_file = \"signing\"\nresponse_url_hosts = [\"http://{sim_addr}\"]\n{slack_extra}"
    );
    let cfg = write_config_full(dir, sim_addr, &db, &slack, extra);
    let _ = sim;
    cfg
}

async fn api(addr: std::net::SocketAddr, path: &str) -> Value {
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

fn block_texts(blocks: &Value) -> String {
    blocks.to_string()
}

/// Post one alert and wait for its card; returns (channel id, ts).
async fn alert_card(sim: &Simulator, addr: std::net::SocketAddr) -> (String, String) {
    let e = json!({"title": "Checkout p99 above 2s", "severity": "critical", "status": "firing",
                   "source": "am", "service": "checkout", "labels": {"ch": "c00"}});
    let (ids, failed) = post_all(addr, vec![e], 1).await;
    assert_eq!((ids.len(), failed), (1, 0));
    wait_until("the alert card", Duration::from_secs(10), || {
        !sim.messages("c00").is_empty()
    })
    .await;
    let m = sim.messages("c00").remove(0);
    assert!(
        block_texts(&m.blocks).contains("\"sluice_ack\""),
        "the card has no Acknowledge button: {}",
        m.blocks
    );
    (m.channel, m.ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledge_and_resolve_from_the_card_once_each_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let cfg = slack_config(dir.path(), &sim, sim_run.addr, "", &channel_routes(1));
    let sluice = start_sluice(&cfg);
    sim.set_app_base_url(format!("http://{}", sluice.addr));
    let (channel, ts) = alert_card(&sim, sluice.addr).await;

    // A double click by alice and bob clicking at the same moment: Slack gets its 200s at
    // once, exactly one acknowledgement wins, the card changes once, the loser is told.
    let (a1, a2, b) = tokio::join!(
        sim.click_button(&channel, &ts, "sluice_ack", "U0001"),
        sim.click_button(&channel, &ts, "sluice_ack", "U0001"),
        sim.click_button(&channel, &ts, "sluice_ack", "U0002"),
    );
    for d in [a1.unwrap(), a2.unwrap(), b.unwrap()] {
        assert_eq!(d.status, 200);
        assert!(
            d.elapsed < Duration::from_secs(1),
            "ack took {:?}",
            d.elapsed
        );
    }
    wait_until(
        "the card to show the acknowledgement",
        Duration::from_secs(10),
        || sim.messages(&channel).first().is_some_and(|m| m.edits >= 1),
    )
    .await;
    // The clicks were answered at once and are decided in the background. A refusal is audited before the
    // loser is told: once the loser has heard, both records are there.
    wait_until(
        "the loser's ephemeral answer",
        Duration::from_secs(10),
        || {
            ["U0001", "U0002"].iter().any(|u| {
                sim.ephemerals(Some(*u))
                    .iter()
                    .any(|e| e.text.contains("Already acknowledged by"))
            })
        },
    )
    .await;
    assert_eq!(
        audited(sluice.addr, "alert.ack").await.len(),
        2,
        "the refusal was told before it was audited"
    );
    // A third record would mean the double click was decided twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records = api(sluice.addr, "/v1/audit").await["records"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        records.len(),
        2,
        "one decision and one refusal: {records:#?}"
    );
    let winner = records
        .iter()
        .find(|r| r["result"] == "ok")
        .expect("nobody acknowledged")["actor"]
        .as_str()
        .unwrap()
        .to_string();
    let loser = if winner == "U0001" { "U0002" } else { "U0001" };
    let refused = records.iter().find(|r| r["result"] != "ok").unwrap();
    assert_eq!(refused["actor"], loser);
    assert_eq!(
        refused["result"],
        format!("refused: already acknowledged by {winner}")
    );
    wait_until(
        "the loser's ephemeral answer",
        Duration::from_secs(10),
        || {
            sim.ephemerals(Some(loser)).iter().any(|e| {
                e.text
                    .contains(&format!("Already acknowledged by <@{winner}>"))
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let card = sim.messages(&channel).remove(0);
    assert_eq!(card.edits, 1, "the card changed more than once");
    assert!(
        block_texts(&card.blocks).contains(&format!("Acknowledged by <@{winner}>")),
        "{}",
        card.blocks
    );
    assert!(
        !block_texts(&card.blocks).contains("\"sluice_ack\""),
        "Acknowledge is still offered"
    );

    // Resolve: the card turns resolved and the thread says who did it.
    sim.click_button(&channel, &ts, "sluice_resolve", "U0002")
        .await
        .unwrap();
    wait_until(
        "the resolved card and its thread reply",
        Duration::from_secs(10),
        || {
            let msgs = sim.messages(&channel);
            msgs.iter().any(|m| {
                m.thread_ts.as_deref() == Some(ts.as_str())
                    && m.text.contains("Resolved by <@U0002>")
            }) && msgs[0].edits >= 2
        },
    )
    .await;
    let card = sim.messages(&channel).remove(0);
    let text = block_texts(&card.blocks);
    assert!(
        text.contains("Resolved by <@U0002>")
            && text.contains(&format!("Acknowledged by <@{winner}>")),
        "{text}"
    );
    assert!(
        !text.contains("\"sluice_resolve\""),
        "Resolve is still offered on a resolved card"
    );

    let audit = api(sluice.addr, "/v1/audit").await;
    assert_eq!(audit["intact"], true);
    let last = audit["records"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["actor"].as_str(),
            last["action"].as_str(),
            last["result"].as_str()
        ),
        (Some("U0002"), Some("alert.resolve"), Some("ok"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorised_click_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let extra = format!("[actions]\nusers = [\"U0001\"]\n{}", channel_routes(1));
    let cfg = slack_config(dir.path(), &sim, sim_run.addr, "", &extra);
    let sluice = start_sluice(&cfg);
    sim.set_app_base_url(format!("http://{}", sluice.addr));
    let (channel, ts) = alert_card(&sim, sluice.addr).await;

    sim.click_button(&channel, &ts, "sluice_ack", "U0003")
        .await
        .unwrap();
    wait_until("the refusal", Duration::from_secs(10), || {
        sim.ephemerals(Some("U0003"))
            .iter()
            .any(|e| e.text.contains("not allowed"))
    })
    .await;
    assert_eq!(sim.messages(&channel)[0].edits, 0);
    let audit = api(sluice.addr, "/v1/audit").await;
    assert_eq!(audit["records"][0]["result"], "refused: not allowed");

    // Forged and stale clicks: 401, nothing runs, nothing is audited.
    for tamper in [
        Tamper::BadSignature,
        Tamper::StaleTimestamp(600),
        Tamper::MissingHeaders,
        Tamper::TamperedBody,
    ] {
        let d = sim
            .forged(tamper)
            .click_button(&channel, &ts, "sluice_ack", "U0001")
            .await
            .unwrap();
        assert_eq!(d.status, 401, "{tamper:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.messages(&channel)[0].edits, 0);
    assert_eq!(
        api(sluice.addr, "/v1/audit").await["records"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_event_is_handled_once_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let cfg = slack_config(
        dir.path(),
        &sim,
        sim_run.addr,
        "",
        "[routing]\ndefault = { channels = [\"alerts\"] }\n",
    );
    let mut sluice = start_sluice(&cfg);
    sim.set_app_base_url(format!("http://{}", sluice.addr));

    // A real message to mention the app under.
    let (ids, _) = post_all(sluice.addr, vec![event("deploy started", "x")], 1).await;
    assert_eq!(ids.len(), 1);
    wait_until("the parent message", Duration::from_secs(10), || {
        !sim.messages("alerts").is_empty()
    })
    .await;
    let parent = sim.messages("alerts").remove(0);
    let mention = json!({"type": "app_mention", "user": "U0001", "channel": parent.channel,
                         "text": "<@U0BOT> status?", "ts": parent.ts, "thread_ts": parent.ts});
    let d = sim.send_event(mention).await.unwrap();
    assert_eq!(d.status, 200);
    let event_id = sim
        .deliveries()
        .iter()
        .rev()
        .find_map(|d| d.event_id.clone())
        .expect("the event delivery");
    let replies = || {
        sim.messages("alerts")
            .iter()
            .filter(|m| m.thread_ts.as_deref() == Some(parent.ts.as_str()))
            .count()
    };
    wait_until("the reply in the thread", Duration::from_secs(10), || {
        replies() == 1
    })
    .await;

    sim.resend_event(&event_id, 1, "http_timeout")
        .await
        .unwrap();
    sluice.child.kill().unwrap();
    sluice.child.wait().unwrap();
    let restarted = start_sluice(&cfg);
    // The restarted server listens where the system put it; Slack is pointed there, as an app's Request URL would be.
    sim.set_app_base_url(format!("http://{}", restarted.addr));
    let d = sim.resend_event(&event_id, 2, "http_error").await.unwrap();
    assert_eq!(d.status, 200, "a retry must still be acknowledged");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(replies(), 1, "a retried event was handled twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_command_answers_in_the_http_response() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let cfg = slack_config(dir.path(), &sim, sim_run.addr, "", &channel_routes(1));
    let sluice = start_sluice(&cfg);
    sim.set_app_base_url(format!("http://{}", sluice.addr));
    let (_, ts) = alert_card(&sim, sluice.addr).await;
    assert!(!ts.is_empty());
    let d = sim
        .slash_command("/sluice", "status", "c00", "U0001")
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    assert!(
        d.body.contains("outbox") && d.body.contains("dead letters"),
        "{}",
        d.body
    );
    assert!(d.elapsed < Duration::from_secs(3));
    let d = sim
        .slash_command("/sluice", "frobnicate", "c00", "U0001")
        .await
        .unwrap();
    assert!(d.body.contains("don't know"), "{}", d.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_survives_a_refresh_and_a_drop_mid_stream_handling_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let slack_extra = "[slack.socket_mode]\napp_token_file = \"app-token\"\nconnections = 2\n";
    let extra = "[slack.limits]\npost_message_per_minute = 30000\n";
    let cfg = slack_config(dir.path(), &sim, sim_run.addr, slack_extra, extra);
    let sluice = start_sluice(&cfg);
    wait_until(
        "two Socket Mode connections",
        Duration::from_secs(15),
        || sim.socket_connections() == 2,
    )
    .await;

    // Parents to mention under: 40 channels, posted straight to the simulator.
    let http = reqwest::Client::new();
    let mut parents = Vec::new();
    for i in 0..40 {
        let r: Value = http
            .post(format!("http://{}/api/chat.postMessage", sim_run.addr))
            .bearer_auth(sluice_sim::DEFAULT_TOKEN)
            .json(&json!({"channel": format!("m{i:02}"), "text": "parent"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        parents.push((
            r["channel"].as_str().unwrap().to_string(),
            r["ts"].as_str().unwrap().to_string(),
        ));
    }

    let started = Instant::now();
    for n in 0..1000 {
        let (channel, ts) = &parents[n % parents.len()];
        let e = json!({"type": "app_mention", "user": "U0001", "channel": channel, "text": format!("ping {n}"), "ts": ts, "thread_ts": ts});
        // Like Slack, hold an envelope while no connection is open (mid-reconnect).
        let deadline = Instant::now() + Duration::from_secs(20);
        let d = loop {
            match sim.send_event(e.clone()).await {
                Ok(d) => break d,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("envelope {n}: {err:?}"),
            }
        };
        assert_eq!(d.status, 200, "envelope {n} not acked: {}", d.body);
        match n {
            300 => sim.socket_refresh().await,
            600 => sim.socket_drop().await,
            _ => {}
        }
    }
    eprintln!(
        "socket mode: 1,000 envelopes acked in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let replies = || -> usize {
        parents
            .iter()
            .map(|(c, ts)| {
                sim.messages(c)
                    .iter()
                    .filter(|m| m.thread_ts.as_deref() == Some(ts.as_str()))
                    .count()
            })
            .sum()
    };
    wait_until("1,000 replies", Duration::from_secs(120), || {
        replies() >= 1000
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(replies(), 1000, "some event was handled twice");
    for (c, ts) in &parents {
        let n = sim
            .messages(c)
            .iter()
            .filter(|m| m.thread_ts.as_deref() == Some(ts.as_str()))
            .count();
        assert_eq!(n, 25, "thread {c}:{ts}");
    }
    let via_socket = sim
        .deliveries()
        .iter()
        .filter(|d| d.via == "socket")
        .count();
    assert!(
        via_socket >= 1000,
        "only {via_socket} deliveries went over Socket Mode"
    );
    wait_until(
        "the connections to be back to two",
        Duration::from_secs(15),
        || sim.socket_connections() == 2,
    )
    .await;
    drop(sluice);
}
