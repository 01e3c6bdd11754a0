//! Approvals end to end: the real binary, the simulator playing the approvers, a test HTTP server on 127.0.0.1
//! playing the internal system that receives the signed callback, and the `sluice approval request --wait` CLI.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sluice_sim::Simulator;

use common::fixture::{Fixture, Places};
use common::internal::*;
use common::proc::*;

/// A config serving `/slack/*` for the simulator, calling back to `callback_hosts`, on `listen`.
fn config(p: &Places, listen: &str, callback_hosts: &[String]) -> PathBuf {
    let (dir, sim, db) = (p.dir, p.sim, p.db);
    std::fs::write(dir.join("signing"), sluice_sim::DEFAULT_SIGNING_SECRET).unwrap();
    std::fs::write(dir.join("outgoing"), OUTGOING_SECRET).unwrap();
    std::fs::write(dir.join("token"), sluice_sim::DEFAULT_TOKEN).unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    let hosts: Vec<String> = callback_hosts.iter().map(|h| format!("{h:?}")).collect();
    let text = format!(
        r#"
[server]
listen = "{listen}"

[storage]
url = "{db}"

[slack]
api_base = "http://{sim}/api/"
bot_token_file = "token"
team_id = "T0SIM"
signing_secret_file = "signing"
response_url_hosts = ["http://{sim}"]

[actions]
outgoing_secret_file = "outgoing"

[approvals]
callback_hosts = [{hosts}]
timeout_ms = 2000

[dispatch]
backoff_base_ms = 100
backoff_max_ms = 400

[[api_key]]
name = "ci"
key_file = "key"
scopes = ["approvals:write", "read"]
"#,
        hosts = hosts.join(", ")
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn setup_with(extra_hosts: &[&str], listen: &str) -> Fixture {
    setup_on(start_sim().await, extra_hosts, listen).await
}

/// [`setup_with`] against a simulator of the test's own; the internal system is always a callback host.
async fn setup_on(
    sim: (Simulator, sluice_sim::RunningSim),
    extra_hosts: &[&str],
    listen: &str,
) -> Fixture {
    let extra_hosts: Vec<String> = extra_hosts.iter().map(|h| h.to_string()).collect();
    let listen = listen.to_string();
    Fixture::builder()
        .sim(sim)
        .whole_config(move |p| {
            let mut hosts = vec![format!("http://{}", p.internal)];
            hosts.extend(extra_hosts);
            config(p, &listen, &hosts)
        })
        .start()
        .await
}

async fn setup() -> Fixture {
    setup_with(&[], "127.0.0.1:0").await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn request(addr: SocketAddr, body: Value) -> (u16, Value) {
    let r = http()
        .post(format!("http://{addr}/v1/approvals"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn approval(addr: SocketAddr, id: &str) -> Value {
    http()
        .get(format!("http://{addr}/v1/approvals/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `action` has `n` audit records (up to 10 s); their results, sorted.
async fn wait_audited(addr: SocketAddr, action: &str, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = results(&audited(addr, action).await);
        if got.len() >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The approval's card: the top-level message whose metadata names it.
fn card(sim: &Simulator, id: &str) -> Option<sluice_sim::Message> {
    sim.channels()
        .into_iter()
        .flat_map(|c| sim.messages(&c.id))
        .find(|m| {
            m.thread_ts.is_none()
                && m.metadata
                    .as_ref()
                    .is_some_and(|md| md["event_payload"]["approval_id"] == id)
        })
}

fn replies(sim: &Simulator, card: &sluice_sim::Message) -> Vec<sluice_sim::Message> {
    sim.messages(&card.channel)
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(card.ts.as_str()))
        .collect()
}

async fn card_posted(sim: &Simulator, id: &str) -> sluice_sim::Message {
    wait_until("the approval card", Duration::from_secs(20), || {
        card(sim, id).is_some()
    })
    .await;
    card(sim, id).unwrap()
}

/// Waits for the approval's card to lose both buttons and show each of `shows`, and for a reply in its thread
/// that contains `reply`.
async fn wait_final(
    sim: &Simulator,
    id: &str,
    c: &sluice_sim::Message,
    shows: &[&str],
    reply: &str,
) {
    wait_until(
        "the final card, without buttons",
        Duration::from_secs(10),
        || {
            card(sim, id).is_some_and(|m| {
                let b = m.blocks.to_string();
                !b.contains("sluice_approval_approve")
                    && !b.contains("sluice_approval_reject")
                    && shows.iter().all(|s| b.contains(s))
            })
        },
    )
    .await;
    wait_until("the thread reply", Duration::from_secs(10), || {
        replies(sim, c).iter().any(|m| m.text.contains(reply))
    })
    .await;
}

async fn wait_state(addr: SocketAddr, id: &str, state: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = approval(addr, id).await;
        if a["state"] == state {
            return a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "approval {id} never became {state}: {a}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn base(title: &str) -> Value {
    json!({"title": title, "text": "Ship it?", "channel": "deploys", "requester": "U0004",
           "approvers": {"users": ["U0001", "U0002", "U0003"]}, "expires_in": "10m",
           "fields": {"service": "checkout", "version": "1.2.3"}})
}

/// Spawns `sluice approval request … --wait` against `addr`.
fn cli(addr: SocketAddr, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["approval", "request", "--wait", "--channel", "deploys"])
        .args(args)
        .env("SLUICE_URL", format!("http://{addr}"))
        .env("SLUICE_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice approval request")
}

/// Waits for the CLI to finish; its exit code and stdout.
async fn cli_done(mut child: std::process::Child, within: Duration) -> (i32, String) {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            use std::io::Read as _;
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return (status.code().unwrap_or(-1), out);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the CLI did not finish within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The approval id the CLI printed first (`approval apr_… requested`), read through the API by title instead.
async fn approval_by_title(sim: &Simulator, title: &str) -> (String, sluice_sim::Message) {
    wait_until("the CLI's approval card", Duration::from_secs(20), || {
        sim.channels()
            .into_iter()
            .flat_map(|c| sim.messages(&c.id))
            .any(|m| m.thread_ts.is_none() && m.text.contains(title))
    })
    .await;
    let m = sim
        .channels()
        .into_iter()
        .flat_map(|c| sim.messages(&c.id))
        .find(|m| m.thread_ts.is_none() && m.text.contains(title))
        .unwrap();
    let id = m.metadata.as_ref().unwrap()["event_payload"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    (id, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_approve_once_the_card_loses_its_buttons_and_the_callback_is_signed_and_sent_once(
) {
    let s = setup().await;
    let mut body = base("Deploy checkout 1.2.3");
    body["required"] = json!(2);
    body["callback_url"] = json!(format!("http://{}/approved", s.internal_addr));
    body["idempotency_key"] = json!("pipeline-42");
    let (status, created) = request(s.sluice.addr, body.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "pending");
    let id = created["id"].as_str().unwrap().to_string();
    // The same idempotency key returns the same approval and posts no second card.
    let (status, again) = request(s.sluice.addr, body).await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));

    let c = card_posted(&s.sim, &id).await;
    assert!(c.blocks.to_string().contains("sluice_approval_approve"));

    // One approval: pending. The same person again (twice at once, a double click): still pending.
    let d = s
        .sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001")
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while approval(s.sluice.addr, &id).await["decisions"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first approval was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (a1, a2) = tokio::join!(
        s.sim
            .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001"),
        s.sim
            .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001"),
    );
    assert_eq!((a1.unwrap().status, a2.unwrap().status), (200, 200));
    // Slack's interaction key (user, message, button) makes the repeat one interaction that is not run again; were
    // it run, the state machine would refuse it (`decide`'s table tests). Either way: still pending, one decision.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = approval(s.sluice.addr, &id).await;
    assert_eq!(a["state"], "pending", "{a}");
    assert_eq!(a["decisions"].as_array().unwrap().len(), 1, "{a}");

    // A second person: approved.
    let clicked = std::time::Instant::now();
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0002")
        .await
        .unwrap();
    let a = wait_state(s.sluice.addr, &id, "approved").await;
    let who: Vec<&str> = a["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["actor"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["U0001", "U0002"]);
    assert_eq!(a["ts"], json!(c.ts), "the API names the card");

    // The card: no buttons, who approved; a thread reply says so.
    wait_final(
        &s.sim,
        &id,
        &c,
        &["<@U0002>", "Approved"],
        "Approved by <@U0002> (2 of 2)",
    )
    .await;

    // The callback: exactly once, signed, with the decision's idempotency key.
    wait_until("the callback", Duration::from_secs(10), || {
        !s.internal.received().is_empty()
    })
    .await;
    eprintln!(
        "approval: deciding click to signed callback received in {} ms",
        clicked.elapsed().as_millis()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = s.internal.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "/approved");
    assert!(signature_ok(&got[0]), "bad signature: {:?}", got[0].headers);
    assert_eq!(
        got[0].headers["idempotency-key"],
        format!("{id}.approved").as_str()
    );
    let sent: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(
        (sent["id"].as_str(), sent["state"].as_str()),
        (Some(id.as_str()), Some("approved"))
    );

    // All of it audited, the callback's outcome included.
    assert_eq!(
        wait_audited(s.sluice.addr, "approval.callback", 1).await,
        ["ok: HTTP 200"]
    );
    assert_eq!(
        results(&audited(s.sluice.addr, "approval.request").await),
        ["ok"]
    );
    assert_eq!(
        results(&audited(s.sluice.addr, "approval.approve").await),
        ["ok", "ok"],
        "the repeated clicks were not run again"
    );
    drop(s.dir);
}

/// `channel` a user id: the card goes to the direct message with that person, opened with `conversations.open`,
/// and is decided there like in a channel: the card updated in place, the reply in its thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_asked_of_one_person_goes_to_their_direct_messages_and_is_decided_there() {
    let s = setup().await;
    let mut body = base("Rotate the signing key");
    body["channel"] = json!("U0002");
    body["approvers"] = json!({"users": ["U0002"]});
    let (status, created) = request(s.sluice.addr, body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(&s.sim, &id).await;
    assert!(
        c.channel.starts_with('D'),
        "in a direct message: {}",
        c.channel
    );
    let calls = s.sim.calls();
    let opened: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "conversations.open")
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(opened[0].ok, "{opened:?}");
    assert_eq!(opened[0].args["users"], "U0002");
    assert!(
        calls
            .iter()
            .filter(|call| call.method == "chat.postMessage")
            .all(|call| call.args["channel"] == c.channel.as_str()),
        "posted to the direct message's id: {calls:?}"
    );

    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0002")
        .await
        .unwrap();
    wait_state(s.sluice.addr, &id, "approved").await;
    wait_final(&s.sim, &id, &c, &["Approved"], "Approved by <@U0002>").await;
    let after = card(&s.sim, &id).unwrap();
    assert_eq!((after.channel, after.ts), (c.channel.clone(), c.ts.clone()));
}

/// An app installed before it asked for `im:write`: `conversations.open` is refused, and the card is posted to the
/// user id as before (Slack takes that too), landing in the same direct message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_im_write_an_approval_still_reaches_the_persons_direct_messages() {
    let scopes = sluice_sim::api::METHODS
        .iter()
        .filter_map(|(_, scope)| *scope)
        .filter(|scope| *scope != "im:write")
        .map(str::to_string)
        .collect();
    let sim = Simulator::new(sluice_sim::SimConfig {
        auto_create_channels: true,
        scopes: Some(scopes),
        ..sluice_sim::SimConfig::default()
    });
    let run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let s = setup_on((sim, run), &[], "127.0.0.1:0").await;
    let mut body = base("Renew the certificate");
    body["channel"] = json!("U0003");
    body["approvers"] = json!({"users": ["U0003"]});
    let (status, created) = request(s.sluice.addr, body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(&s.sim, &id).await;
    assert!(
        c.channel.starts_with('D'),
        "in a direct message: {}",
        c.channel
    );
    let opened: Vec<_> = s
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "conversations.open")
        .collect();
    assert!(
        !opened.is_empty()
            && opened
                .iter()
                .all(|c| c.error.as_deref() == Some("missing_scope")),
        "{opened:?}"
    );
}

/// A request that asks for a comment: Approve opens a modal (someone who may not approve is refused without one),
/// nothing is recorded until it is submitted, and the comment is kept with the approval and shown on the card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_asks_for_a_comment_first_when_the_request_says_so() {
    let s = setup().await;
    let mut body = base("Scale the cluster");
    body["approve_comment"] = json!(true);
    body["approvers"] = json!({"users": ["U0001"]});
    let (status, created) = request(s.sluice.addr, body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(&s.sim, &id).await;
    assert!(
        c.blocks
            .to_string()
            .contains("sluice_approval_approve_comment"),
        "{}",
        c.blocks
    );

    s.sim
        .click_button(
            &c.channel,
            &c.ts,
            "sluice_approval_approve_comment",
            "U0003",
        )
        .await
        .unwrap();
    wait_until("the refusal", Duration::from_secs(10), || {
        s.sim
            .ephemerals(Some("U0003"))
            .iter()
            .any(|e| e.text.contains("not one of the approvers"))
    })
    .await;
    assert!(s.sim.views().is_empty(), "no modal for a non-approver");

    s.sim
        .click_button(
            &c.channel,
            &c.ts,
            "sluice_approval_approve_comment",
            "U0001",
        )
        .await
        .unwrap();
    wait_until("the comment modal", Duration::from_secs(10), || {
        !s.sim.views().is_empty()
    })
    .await;
    let view = s.sim.views().into_iter().next().unwrap();
    assert_eq!(view.callback_id.as_deref(), Some("sluice_approval_approve"));
    assert_eq!(
        approval(s.sluice.addr, &id).await["state"],
        "pending",
        "nothing is recorded before the modal is submitted"
    );
    let done = s
        .sim
        .submit_view(
            &view.id,
            "U0001",
            json!({"comment": {"comment": {"type": "plain_text_input", "value": " capacity checked "}}}),
        )
        .await
        .unwrap();
    assert_eq!(done.status, 200);
    assert!(!done.body.contains("errors"), "{}", done.body);
    let a = wait_state(s.sluice.addr, &id, "approved").await;
    assert_eq!(a["decisions"][0]["reason"], "capacity checked", "{a}");
    wait_final(
        &s.sim,
        &id,
        &c,
        &["capacity checked"],
        "Approved by <@U0001>",
    )
    .await;
    assert_eq!(
        results(&audited(s.sluice.addr, "approval.approve").await),
        ["ok", "refused: not an approver"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_and_a_non_approver_are_refused_and_both_are_audited() {
    let s = setup().await;
    let mut body = base("Drop the orders table");
    body["approvers"] = json!({"users": ["U0001", "U0004"]});
    let (_, created) = request(s.sluice.addr, body).await;
    let id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(&s.sim, &id).await;

    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0004")
        .await
        .unwrap();
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0003")
        .await
        .unwrap();
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_reject", "U0003")
        .await
        .unwrap();
    wait_until("both refusals said", Duration::from_secs(10), || {
        s.sim
            .ephemerals(Some("U0004"))
            .iter()
            .any(|e| e.text.contains("your own request"))
            && s.sim
                .ephemerals(Some("U0003"))
                .iter()
                .filter(|e| e.text.contains("not one of the approvers"))
                .count()
                == 2
    })
    .await;
    assert_eq!(
        results(&audited(s.sluice.addr, "approval.approve").await),
        ["refused: not an approver", "refused: own request"]
    );
    assert_eq!(
        results(&audited(s.sluice.addr, "approval.reject").await),
        ["refused: not an approver"]
    );
    assert!(
        s.sim.views().is_empty(),
        "no reject modal for a non-approver"
    );
    let a = approval(s.sluice.addr, &id).await;
    assert_eq!(
        (
            a["state"].as_str(),
            a["decisions"].as_array().unwrap().len()
        ),
        (Some("pending"), 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_needs_a_reason_in_the_modal_and_the_waiting_cli_exits_1() {
    let s = setup().await;
    let child = cli(
        s.sluice.addr,
        &[
            "--title",
            "Rotate the prod keys",
            "--approver",
            "U0001",
            "--approver",
            "U0002",
            "--requester",
            "U0004",
            "--expires-in",
            "10m",
        ],
    );
    let (id, c) = approval_by_title(&s.sim, "Rotate the prod keys").await;
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_reject", "U0002")
        .await
        .unwrap();
    wait_until("the reject modal", Duration::from_secs(10), || {
        !s.sim.views().is_empty()
    })
    .await;
    let view = s.sim.views().into_iter().next().unwrap();
    assert_eq!(view.callback_id.as_deref(), Some("sluice_approval_reject"));

    // Without a reason: the modal stays open with the error under the field; nothing is decided.
    let empty = s
        .sim
        .submit_view(
            &view.id,
            "U0002",
            json!({"reason": {"reason": {"type": "plain_text_input", "value": "  "}}}),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&empty.body).unwrap();
    assert_eq!(answer["response_action"], "errors", "{answer}");
    assert!(
        answer["errors"]["reason"]
            .as_str()
            .unwrap()
            .contains("Say why"),
        "{answer}"
    );
    assert_eq!(approval(s.sluice.addr, &id).await["state"], "pending");

    // With a reason: rejected, the card says who and why, the CLI exits 1.
    let done = s
        .sim
        .submit_view(
            &view.id,
            "U0002",
            json!({"reason": {"reason": {"type": "plain_text_input", "value": "tests are red"}}}),
        )
        .await
        .unwrap();
    assert_eq!(done.status, 200);
    assert!(
        done.body.is_empty() || !done.body.contains("errors"),
        "{}",
        done.body
    );
    let (code, out) = cli_done(child, Duration::from_secs(30)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rejected by U0002: tests are red"), "{out}");
    wait_final(
        &s.sim,
        &id,
        &c,
        &["tests are red"],
        "Rejected by <@U0002>: tests are red",
    )
    .await;
    assert_eq!(
        results(&audited(s.sluice.addr, "approval.reject").await),
        ["ok"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_updates_its_card_and_the_waiting_cli_exits_2() {
    let s = setup().await;
    let child = cli(
        s.sluice.addr,
        &[
            "--title",
            "Scale down the cluster",
            "--approver",
            "U0001",
            "--expires-in",
            "3s",
        ],
    );
    let (id, c) = approval_by_title(&s.sim, "Scale down the cluster").await;
    let (code, out) = cli_done(child, Duration::from_secs(30)).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("expired"), "{out}");
    wait_final(&s.sim, &id, &c, &["Expired"], "Expired").await;
    // A late click changes nothing and is told so.
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001")
        .await
        .ok();
    let a = approval(s.sluice.addr, &id).await;
    assert_eq!(a["state"], "expired");
    assert_eq!(audited(s.sluice.addr, "approval.expire").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_killed_while_a_cli_waits_completes_the_decision_after_restart_and_calls_back_once()
{
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut s = setup_with(&[], &listen).await;
    let addr = s.sluice.addr;
    let callback = format!("http://{}/done", s.internal_addr);
    let child = cli(
        addr,
        &[
            "--title",
            "Failover the primary",
            "--approver",
            "U0001",
            "--callback-url",
            &callback,
        ],
    );
    let (id, c) = approval_by_title(&s.sim, "Failover the primary").await;

    // SIGKILL: nothing is shut down cleanly.
    s.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.restart();
    assert_eq!(s.sluice.addr, addr);

    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001")
        .await
        .unwrap();
    let (code, out) = cli_done(child, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("approved by U0001"), "{out}");
    wait_until("the callback", Duration::from_secs(15), || {
        !s.internal.received().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = s.internal.received();
    assert_eq!(got.len(), 1, "the internal system is called once: {got:?}");
    assert_eq!(
        got[0].headers["idempotency-key"],
        format!("{id}.approved").as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_answered_500_is_retried_until_it_succeeds_once() {
    let s = setup().await;
    s.internal
        .then_answer([Answer::Status(500), Answer::Status(503)]);
    let mut body = base("Restart payments");
    body["callback_url"] = json!(format!("http://{}/cb", s.internal_addr));
    let (_, created) = request(s.sluice.addr, body).await;
    let id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(&s.sim, &id).await;
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001")
        .await
        .unwrap();
    wait_until("three attempts", Duration::from_secs(20), || {
        s.internal.received().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = s.internal.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let keys: Vec<_> = got
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_string())
        .collect();
    assert!(
        keys.iter().all(|k| *k == format!("{id}.approved")),
        "{keys:?}"
    );
    assert_eq!(
        wait_audited(s.sluice.addr, "approval.callback", 1).await,
        ["ok: HTTP 200"]
    );
}

async fn dead_letters(addr: SocketAddr) -> Vec<Value> {
    let v: Value = http()
        .get(format!("http://{addr}/v1/dead-letters"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["dead_letters"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_to_the_metadata_address_or_redirected_elsewhere_is_refused_and_dead_lettered() {
    // 169.254.169.254 is listed as a callback host, but not in [actions] allow_link_local: refused before connecting.
    let s = setup_with(&["http://169.254.169.254"], "127.0.0.1:0").await;
    let mut body = base("Read the instance role");
    body["callback_url"] = json!("http://169.254.169.254/latest/meta-data/iam");
    let (status, created) = request(s.sluice.addr, body).await;
    assert_eq!(status, 201, "{created}");
    let metadata_id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(&s.sim, &metadata_id).await;
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001")
        .await
        .unwrap();

    // The internal system redirects to another host: not followed.
    s.internal
        .then_answer([Answer::Redirect("http://evil.example/steal".into())]);
    let mut body = base("Redirected callback");
    body["callback_url"] = json!(format!("http://{}/cb", s.internal_addr));
    let (_, created) = request(s.sluice.addr, body).await;
    let redirect_id = created["id"].as_str().unwrap().to_string();
    let c2 = card_posted(&s.sim, &redirect_id).await;
    s.sim
        .click_button(&c2.channel, &c2.ts, "sluice_approval_approve", "U0001")
        .await
        .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let dead = dead_letters(s.sluice.addr).await;
        if dead.len() >= 2 {
            break dead;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not dead-lettered: {dead:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = |id: &str| {
        dead.iter()
            .find(|d| d["event_id"] == id)
            .map(|d| d["reason"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(
        reason(&metadata_id).contains("169.254.169.254")
            && reason(&metadata_id).contains("metadata"),
        "{dead:?}"
    );
    assert!(
        reason(&redirect_id).contains("redirects are not followed")
            && reason(&redirect_id).contains("evil.example"),
        "{dead:?}"
    );
    assert_eq!(
        s.internal.received().len(),
        1,
        "the redirect target was never called"
    );
    let outcomes = wait_audited(s.sluice.addr, "approval.callback", 2).await;
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes.iter().all(|o| o.starts_with("error: refused")),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_altered_audit_row_is_named_by_audit_verify_which_exits_non_zero() {
    let s = setup().await;
    for title in ["one", "two", "three"] {
        let (status, _) = request(s.sluice.addr, base(title)).await;
        assert_eq!(status, 201);
    }
    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["audit", "verify", "--url"])
            .arg(format!("http://{}", s.sluice.addr))
            .env("SLUICE_API_KEY", KEY)
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    // Someone with database access edits the second record.
    let db = format!("sqlite://{}", s.dir.path().join("sluice.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE id = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    let broken = verify();
    let out = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{out}");
    assert!(out.contains("broken at record 2"), "{out}");
    let r = http()
        .get(format!("http://{}/v1/audit/verify", s.sluice.addr))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["first_broken_id"], 2, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_400_naming_the_field_and_create_nothing() {
    let s = setup().await;
    let cases = [
        (
            json!({"channel": "deploys", "approvers": {"users": ["U0001"]}}),
            "body",
        ),
        (
            json!({"title": "x", "channel": "deploys", "approvers": {}}),
            "approvers",
        ),
        (
            json!({"title": "x", "channel": "deploys", "approvers": {"users": ["U0001"]}, "callback_url": "https://elsewhere.example/"}),
            "callback_url",
        ),
        (
            json!({"title": "x", "channel": "deploys", "approvers": {"users": ["U0001"]}, "required": 2}),
            "required",
        ),
        (
            json!({"title": "x", "channel": "deploys", "approvers": {"users": ["U0001"]}, "expires_in": "forever"}),
            "expires_in",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = request(s.sluice.addr, body.clone()).await;
        assert_eq!(
            (status, v["field"].as_str()),
            (400, Some(field)),
            "{body}: {v}"
        );
    }
    assert!(audited(s.sluice.addr, "approval.request").await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s
        .sim
        .channels()
        .iter()
        .all(|c| s.sim.messages(&c.id).is_empty()));
    let r = http()
        .get(format!("http://{}/v1/approvals/apr_nope", s.sluice.addr))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// A load balancer in front of the replicas: each request from "Slack" goes to the next replica in turn.
async fn round_robin(replicas: Vec<SocketAddr>) -> SocketAddr {
    #[derive(Clone)]
    struct Lb {
        replicas: Vec<SocketAddr>,
        next: Arc<std::sync::atomic::AtomicUsize>,
        http: reqwest::Client,
    }
    async fn forward(
        State(lb): State<Lb>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let n = lb.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let to = lb.replicas[n % lb.replicas.len()];
        let mut req = lb
            .http
            .post(format!("http://{to}{}", uri.path()))
            .body(body);
        for (k, v) in headers.iter() {
            let k = k.as_str();
            if k == "content-type" || k.starts_with("x-slack-") {
                req = req.header(k, v.as_bytes());
            }
        }
        match req.send().await {
            Ok(r) => {
                let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
                (status, r.bytes().await.unwrap_or_default()).into_response()
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
    let lb = Lb {
        replicas,
        next: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        http: http(),
    };
    let app = axum::Router::new().fallback(forward).with_state(lb);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_and_clicks_at_the_same_instant_make_one_decision_and_one_callback(
) {
    let Some(db) = common::pg::TestDb::create("approval_race").await else {
        return;
    };
    let s = Fixture::builder()
        .whole_config(|p| config(p, "127.0.0.1:0", &[format!("http://{}", p.internal)]))
        .db(&db.url)
        .migrate_first()
        .start()
        .await;
    let other = s.start_another();
    let replicas = [&s.sluice, &other];
    let (sim, internal, internal_addr) = (&s.sim, &s.internal, s.internal_addr);
    let lb = round_robin(replicas.iter().map(|r| r.addr).collect()).await;
    sim.set_app_base_url(format!("http://{lb}"));

    let mut body = base("Promote the replica");
    body["callback_url"] = json!(format!("http://{internal_addr}/decided"));
    let (status, created) = request(replicas[0].addr, body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(sim, &id).await;

    // A double click by U0001 (its two deliveries go to different replicas) and U0002 clicking at the same instant.
    let (a, b, d) = tokio::join!(
        sim.click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001"),
        sim.click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001"),
        sim.click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0002"),
    );
    for r in [a, b, d] {
        assert_eq!(r.unwrap().status, 200);
    }
    let a = wait_state(replicas[1].addr, &id, "approved").await;
    wait_until("the callback", Duration::from_secs(15), || {
        !internal.received().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a_now = approval(replicas[0].addr, &id).await;
    assert_eq!(
        a_now["decisions"].as_array().unwrap().len(),
        1,
        "one decision: {a}"
    );
    assert_eq!(internal.received().len(), 1, "one callback");
    assert_eq!(
        wait_audited(replicas[0].addr, "approval.approve", 2).await,
        ["ok", "refused: already approved"]
    );
    drop((other, s));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_loses_its_buttons_and_a_second_cancel_is_a_409() {
    let s = setup().await;
    let (_, created) = request(s.sluice.addr, base("Migrate the billing DB")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(&s.sim, &id).await;
    let cancel = |reason: &'static str| {
        let addr = s.sluice.addr;
        let id = id.clone();
        async move {
            http()
                .post(format!("http://{addr}/v1/approvals/{id}/cancel"))
                .bearer_auth(KEY)
                .json(&json!({ "reason": reason }))
                .send()
                .await
                .unwrap()
        }
    };
    let r = cancel("window closed").await;
    assert_eq!(r.status().as_u16(), 200);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["state"], "cancelled");
    assert_eq!(cancel("again").await.status().as_u16(), 409);
    wait_final(
        &s.sim,
        &id,
        &c,
        &["Cancelled", "window closed"],
        "Cancelled by ci (window closed)",
    )
    .await;
    assert_eq!(
        results(&audited(s.sluice.addr, "approval.cancel").await),
        ["ok", "refused: already cancelled"]
    );
}

/// Regression: Reject opens a modal, and its click used to be keyed by user + message + button for 10 minutes, so
/// closing the modal and clicking Reject again was swallowed as a duplicate. Each click now opens the modal; the
/// same click delivered twice (a Slack retry) still acts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_clicked_again_after_closing_its_modal_opens_the_modal_again() {
    let s = setup().await;
    let (status, created) = request(s.sluice.addr, base("Rotate the staging keys")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let c = card_posted(&s.sim, &id).await;
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_reject", "U0002")
        .await
        .unwrap();
    wait_until("the first reject modal", Duration::from_secs(10), || {
        s.sim.views().len() == 1
    })
    .await;
    // The modal is closed without submitting (nothing reaches Sluice), and Reject is clicked again.
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_reject", "U0002")
        .await
        .unwrap();
    wait_until("a second reject modal", Duration::from_secs(10), || {
        s.sim.views().len() == 2
    })
    .await;
    // The same click delivered twice (Slack retrying it) opens one modal.
    let second = s
        .sim
        .deliveries()
        .into_iter()
        .rev()
        .find(|d| {
            d.kind == "interactions" && d.payload.to_string().contains("sluice_approval_reject")
        })
        .expect("the second click's delivery");
    let status = resend_interaction(s.sluice.addr, &second.payload).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        s.sim.views().len(),
        2,
        "a retried click opened another modal"
    );
    assert_eq!(approval(s.sluice.addr, &id).await["state"], "pending");
}

/// Sends an interaction payload to Sluice again, signed as Slack signs it: what Slack does when it retries one.
async fn resend_interaction(addr: SocketAddr, payload: &Value) -> u16 {
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let ts = (sluice::state::now_ms() / 1000).to_string();
    let mut mac =
        Hmac::<Sha256>::new_from_slice(sluice_sim::DEFAULT_SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    http()
        .post(format!("http://{addr}/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .header("x-slack-retry-num", "1")
        .header("x-slack-retry-reason", "http_timeout")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
