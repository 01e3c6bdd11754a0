//! `[[action]]` buttons end to end: the real binary, the simulator clicking as users, and a test HTTP server on
//! 127.0.0.1 playing the internal system the action calls (signed, through the outbox, `Idempotency-Key` = the run).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_sim::{Message, Simulator};

use common::fixture::{Fixture, Places};
use common::internal::*;
use common::proc::*;

/// Alerts labelled `ch = "c00"` go to c00; every alert card gets Restart (U0001 and U0002 may run it), Slow
/// restart (timeout 500 ms) and Drain (timeout 10 s).
fn config(p: &Places) -> String {
    std::fs::write(p.dir.join("restarter-token"), "restarter-token-42").unwrap();
    let internal = p.internal;
    format!(
        r#"
[actions]
outgoing_secret_file = "outgoing"

[dispatch]
backoff_base_ms = 100
backoff_max_ms = 300
max_age_secs = 3

[[action]]
name = "restart"
label = "Restart"
url = "http://{internal}/restart/{{{{ event.service }}}}"
headers = {{ Authorization = {{ file = "restarter-token", prefix = "Bearer " }} }}
body = '{{"service": "{{{{ event.service }}}}", "team": "{{{{ labels.team }}}}", "by": "{{{{ user.id }}}}"}}'
users = ["U0001", "U0002"]
on = {{ kind = "alert" }}
confirm = {{ title = "Restart?", text = "This restarts the service." }}
result_template = "Restarted {{{{ body.version }}}} (HTTP {{{{ status }}}})"

[[action]]
name = "slow-restart"
label = "Slow restart"
url = "http://{internal}/slow"
timeout = "500ms"
users = ["U0001"]
on = {{ kind = "alert" }}

[[action]]
name = "drain"
label = "Drain"
url = "http://{internal}/drain"
timeout = "10s"
users = ["U0001"]
on = {{ kind = "alert" }}

[[action]]
name = "scale"
label = "Scale"
url = "http://{internal}/scale"
body = '{{"replicas": {{{{ approval.fields.replicas }}}}}}'

[[action]]
name = "failover"
label = "Failover"
url = "http://{internal}/failover/{{{{ event.service }}}}"
body = '{{"service": "{{{{ event.service }}}}", "approved_by": "{{{{ user.id }}}}"}}'
users = ["U0001"]
on = {{ kind = "alert", severity = "critical" }}
approval = {{ approvers = {{ users = ["U0002"] }}, expires_in = "10m" }}

[approvals]
timeout_ms = 2000
callback_hosts = ["http://{internal}"]

{}
"#,
        channel_routes(1)
    )
}

async fn setup() -> Fixture {
    Fixture::builder()
        .signed()
        .response_urls()
        .config(config)
        .start()
        .await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    http()
        .get(format!("http://{addr}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn card(sim: &Simulator, title: &str) -> Option<Message> {
    sim.messages("c00")
        .into_iter()
        .find(|m| m.thread_ts.is_none() && m.text.contains(title))
}

fn replies(sim: &Simulator, c: &Message) -> Vec<Message> {
    sim.messages(&c.channel)
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(c.ts.as_str()))
        .collect()
}

/// Posts an alert and waits for its card.
async fn alert_card(s: &Fixture, title: &str) -> Message {
    let alert = json!({"title": title, "severity": "critical", "status": "firing", "source": "e2e",
                       "service": "checkout", "labels": {"ch": "c00", "team": "web"}});
    let (ids, failed) = post_all(s.sluice.addr, vec![alert], 1).await;
    assert_eq!((ids.len(), failed), (1, 0));
    wait_until("the alert card", Duration::from_secs(30), || {
        card(&s.sim, title).is_some()
    })
    .await;
    card(&s.sim, title).unwrap()
}

/// Posts a deduplicated alert (again: the same key fires again) and returns its ids.
async fn fire(s: &Fixture, title: &str, key: &str) -> Vec<String> {
    let alert = json!({"title": title, "severity": "critical", "status": "firing", "source": "e2e",
                       "service": "checkout", "dedup_key": key, "labels": {"ch": "c00", "team": "web"}});
    let (ids, failed) = post_all(s.sluice.addr, vec![alert], 1).await;
    assert_eq!((ids.len(), failed), (1, 0));
    ids
}

/// The card's text as Slack shows it now.
fn card_text(s: &Fixture, title: &str) -> String {
    card(&s.sim, title)
        .map(|m| m.blocks.to_string())
        .unwrap_or_default()
}

async fn wait_card(s: &Fixture, title: &str, shows: &str) {
    wait_until(
        &format!("the card to show {shows:?}"),
        Duration::from_secs(20),
        || card(&s.sim, title).is_some_and(|m| m.blocks.to_string().contains(shows)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permitted_click_calls_the_internal_system_once_signed_and_the_result_goes_to_the_thread()
{
    let s = setup().await;
    let c = alert_card(&s, "Checkout is down").await;
    let blocks = c.blocks.to_string();
    assert!(blocks.contains("sluice_run:restart"), "{blocks}");
    assert!(
        blocks.contains("Restart?"),
        "the button asks for confirmation: {blocks}"
    );

    // The internal system fails once, then answers: retried, one success.
    s.internal.answer(vec![Answer::Status(500)]);
    let d = s
        .sim
        .click_button(&c.channel, &c.ts, "sluice_run:restart", "U0001")
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    wait_until("the thread reply", Duration::from_secs(20), || {
        replies(&s.sim, &c)
            .iter()
            .any(|m| m.text.contains("Restarted 1.2.2 (HTTP 200)"))
    })
    .await;
    wait_card(&s, "Checkout is down", "Restart done").await;

    let got = s.internal.received();
    assert_eq!(got.len(), 2, "one failure and one success: {got:?}");
    for r in &got {
        assert_eq!(r.path, "/restart/checkout");
        assert!(signature_ok(r), "a valid signature");
        assert_eq!(r.headers["authorization"], "Bearer restarter-token-42");
    }
    let key = got[0].headers["idempotency-key"].to_str().unwrap();
    assert!(key.starts_with("run_"), "{key}");
    assert_eq!(
        got[1].headers["idempotency-key"], key,
        "the retry carries the same Idempotency-Key"
    );
    let body: Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(
        body,
        json!({"service": "checkout", "team": "web", "by": "U0001"})
    );
    let runs = audited(s.sluice.addr, "action.run").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0]["actor"].as_str(), runs[0]["result"].as_str()),
        (Some("U0001"), Some("ok"))
    );
    let calls = audited(s.sluice.addr, "action.restart").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["result"], "ok: HTTP 200");

    // Once it finished, the same person may run it again (each click counts): a new run, a new key.
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:restart", "U0001")
        .await
        .unwrap();
    wait_until("the second run's call", Duration::from_secs(20), || {
        s.internal.received().len() == 3
    })
    .await;
    let again = s.internal.received();
    assert_ne!(again[2].headers["idempotency-key"], key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpermitted_click_is_refused_audited_and_calls_nothing() {
    let s = setup().await;
    let c = alert_card(&s, "Payments slow").await;
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:restart", "U0003")
        .await
        .unwrap();
    wait_until("the refusal", Duration::from_secs(15), || {
        s.sim
            .ephemerals(Some("U0003"))
            .iter()
            .any(|e| e.text.contains("not allowed to run Restart"))
    })
    .await;
    let runs = audited(s.sluice.addr, "action.run").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["result"], "refused: not permitted");
    assert_eq!(runs[0]["actor"], "U0003");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(s.internal.received().is_empty(), "nothing was called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_is_shown_failed_on_the_card_and_in_the_thread() {
    let s = setup().await;
    let c = alert_card(&s, "Search degraded").await;
    s.internal
        .answer(vec![Answer::Slow(Duration::from_secs(3)); 20]);
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:slow-restart", "U0001")
        .await
        .unwrap();
    wait_card(&s, "Search degraded", "Running Slow restart").await;
    // A second click while it runs starts nothing and says so.
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:slow-restart", "U0001")
        .await
        .unwrap();
    wait_until(
        "the already-running answer",
        Duration::from_secs(10),
        || {
            s.sim
                .ephemerals(Some("U0001"))
                .iter()
                .any(|e| e.text.contains("Slow restart is already running"))
        },
    )
    .await;
    wait_card(&s, "Search degraded", "Slow restart failed").await;
    let reply = replies(&s.sim, &c)
        .into_iter()
        .find(|m| m.text.contains("Slow restart timed out after 500ms"))
        .unwrap_or_else(|| panic!("{:?}", replies(&s.sim, &c)));
    assert!(
        reply.text.contains("tries") || reply.text.contains("try"),
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_redirected_to_another_host_is_refused_and_dead_lettered_with_the_reason() {
    let s = setup().await;
    let c = alert_card(&s, "Cache misses").await;
    s.internal.answer(vec![Answer::Redirect(
        "http://evil.example:9999/steal".into(),
    )]);
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:restart", "U0002")
        .await
        .unwrap();
    wait_card(&s, "Cache misses", "Restart failed").await;
    assert_eq!(s.internal.received().len(), 1, "called once, not retried");
    let dead = get(s.sluice.addr, "/v1/dead-letters").await;
    let dead = dead["dead_letters"].as_array().cloned().unwrap_or_default();
    assert!(
        dead.iter()
            .any(|d| d.to_string().contains("redirects are not followed")),
        "{dead:?}"
    );
    assert!(replies(&s.sim, &c)
        .iter()
        .any(|m| m.text.contains("Restart was refused")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_with_an_action_calls_the_internal_system_once_after_it_is_approved() {
    let s = setup().await;
    let body = json!({"title": "Restart checkout", "channel": "c00", "requester": "U0004",
                      "approvers": {"users": ["U0001", "U0002"]}, "action": "restart"});
    let r = http()
        .post(format!("http://{}/v1/approvals", s.sluice.addr))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    // An unknown action is a 400 naming the field.
    let mut bad = body.clone();
    bad["action"] = json!("launch-missiles");
    let r = http()
        .post(format!("http://{}/v1/approvals", s.sluice.addr))
        .bearer_auth(KEY)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("action"));

    wait_until("the approval card", Duration::from_secs(20), || {
        card(&s.sim, "Restart checkout").is_some()
    })
    .await;
    let c = card(&s.sim, "Restart checkout").unwrap();
    assert!(
        s.internal.received().is_empty(),
        "nothing runs before approval"
    );
    // A double click approves once and runs the action once.
    let (a, b) = tokio::join!(
        s.sim
            .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001"),
        s.sim
            .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001"),
    );
    assert_eq!((a.unwrap().status, b.unwrap().status), (200, 200));
    wait_until(
        "the action's result in the approval's thread",
        Duration::from_secs(20),
        || {
            replies(&s.sim, &c)
                .iter()
                .any(|m| m.text.contains("Restarted 1.2.2"))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = s.internal.received();
    assert_eq!(got.len(), 1, "called exactly once: {got:?}");
    assert_eq!(
        got[0].headers["idempotency-key"].to_str().unwrap(),
        format!("{id}.action")
    );
    assert!(signature_ok(&got[0]));
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["by"], "U0001");
    // The run started with the decision, as the approver's: audited once.
    let runs = audited(s.sluice.addr, "action.run").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0]["actor"].as_str(), runs[0]["result"].as_str()),
        (Some("U0001"), Some("ok"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_needs_an_approval_asks_for_it_and_runs_once_approved() {
    let s = setup().await;
    let c = alert_card(&s, "Primary database down").await;
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:failover", "U0001")
        .await
        .unwrap();
    // Its approval's card is posted in the channel; nothing is called yet.
    wait_until("the approval card", Duration::from_secs(20), || {
        card(&s.sim, "Run Failover on: Primary database down").is_some()
    })
    .await;
    let a = card(&s.sim, "Run Failover on: Primary database down").unwrap();
    assert!(s
        .sim
        .ephemerals(Some("U0001"))
        .iter()
        .any(|e| e.text.contains("Failover needs an approval")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        s.internal.received().is_empty(),
        "nothing runs before approval"
    );
    s.sim
        .click_button(&a.channel, &a.ts, "sluice_approval_approve", "U0002")
        .await
        .unwrap();
    wait_until("the failover call", Duration::from_secs(20), || {
        !s.internal.received().is_empty()
    })
    .await;
    wait_until(
        "the result in the approval's thread",
        Duration::from_secs(20),
        || {
            replies(&s.sim, &a)
                .iter()
                .any(|m| m.text.contains("Failover: HTTP 200"))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = s.internal.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].path, "/failover/checkout",
        "the action ran on the alert's event"
    );
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body, json!({"service": "checkout", "approved_by": "U0002"}));
    // The alert's card, where the button was clicked, shows the run the approval started.
    wait_card(&s, "Primary database down", "Failover done (by <@U0002>").await;
}

/// A redraw of the card (the alert fires again) keeps the run's line: running, then done; the run's own update
/// keeps the count the redraws showed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_status_line_survives_every_redraw_of_its_card() {
    let s = setup().await;
    fire(&s, "Queue backlog", "backlog-1").await;
    wait_until("the alert card", Duration::from_secs(30), || {
        card(&s.sim, "Queue backlog").is_some()
    })
    .await;
    let c = card(&s.sim, "Queue backlog").unwrap();
    s.internal
        .answer(vec![Answer::Slow(Duration::from_secs(5))]);
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:drain", "U0001")
        .await
        .unwrap();
    wait_card(&s, "Queue backlog", "Running Drain").await;

    fire(&s, "Queue backlog", "backlog-1").await;
    wait_card(&s, "Queue backlog", "×2").await;
    let t = card_text(&s, "Queue backlog");
    assert!(t.contains("Running Drain… (by <@U0001>, since"), "{t}");
    assert!(
        s.internal.received().len() == 1 && !t.contains("Drain done"),
        "still running when redrawn: {t}"
    );

    wait_card(&s, "Queue backlog", "Drain done").await;
    let t = card_text(&s, "Queue backlog");
    assert!(t.contains("×2"), "the run's end keeps the count: {t}");
    assert!(t.contains("HTTP 200"), "{t}");
    assert!(!t.contains("Running Drain"), "{t}");

    fire(&s, "Queue backlog", "backlog-1").await;
    wait_card(&s, "Queue backlog", "×3").await;
    let t = card_text(&s, "Queue backlog");
    assert!(t.contains("Drain done (by <@U0001>"), "{t}");
    assert_eq!(s.internal.received().len(), 1, "called once");
}

/// A dead-lettered action call that an operator replays runs its run again: the card shows it running, then done
/// from the new outcome, and the result reaches the thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_dead_lettered_call_runs_its_failed_run_again_and_redraws_the_card() {
    let s = setup().await;
    let c = alert_card(&s, "Workers stuck").await;
    // 404: sending it again cannot help, so it is dead-lettered at once; the replay is answered slowly, then 200.
    s.internal.answer(vec![
        Answer::Status(404),
        Answer::Slow(Duration::from_secs(2)),
    ]);
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:restart", "U0001")
        .await
        .unwrap();
    wait_card(&s, "Workers stuck", "Restart failed").await;
    assert!(
        card_text(&s, "Workers stuck").contains("answered HTTP 404"),
        "the card says why: {}",
        card_text(&s, "Workers stuck")
    );
    let dead = get(s.sluice.addr, "/v1/dead-letters").await;
    let item = dead["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["method"] == "http.request")
        .unwrap_or_else(|| panic!("{dead}"))["item_id"]
        .as_i64()
        .unwrap();

    let r = http()
        .post(format!("http://{}/v1/dead-letters/replay", s.sluice.addr))
        .bearer_auth(KEY)
        .json(&json!({ "id": item }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    wait_card(&s, "Workers stuck", "Running Restart").await;
    wait_card(&s, "Workers stuck", "Restart done").await;
    wait_until(
        "the replay's result in the thread",
        Duration::from_secs(20),
        || {
            replies(&s.sim, &c)
                .iter()
                .any(|m| m.text.contains("Restarted late (HTTP 200)"))
        },
    )
    .await;
    let got = s.internal.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[1].headers["idempotency-key"], got[0].headers["idempotency-key"],
        "the replay is the same run's call"
    );
    let calls = audited(s.sluice.addr, "action.restart").await;
    let results: Vec<&str> = calls.iter().filter_map(|c| c["result"].as_str()).collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].starts_with("error:"), "{results:?}");
    assert_eq!(results[1], "ok: HTTP 200");
}

/// An approved request whose action cannot start (its body renders as no JSON for this request's fields) says so plainly: on
/// the card, to the requester in its thread, and to the callback as a failed outcome; nothing is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_action_that_cannot_start_is_told_on_the_card_the_thread_and_the_callback() {
    let s = setup().await;
    let body = json!({"title": "Scale checkout", "fields": {"replicas": "three"}, "channel": "c00",
                      "requester": "U0004", "approvers": {"users": ["U0001"]}, "action": "scale",
                      "callback_url": format!("http://{}/callback", s.internal_addr)});
    let r = http()
        .post(format!("http://{}/v1/approvals", s.sluice.addr))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    wait_until("the approval card", Duration::from_secs(20), || {
        card(&s.sim, "Scale checkout").is_some()
    })
    .await;
    let c = card(&s.sim, "Scale checkout").unwrap();
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_approval_approve", "U0001")
        .await
        .unwrap();
    wait_card(&s, "Scale checkout", "Approved, but Scale could not start").await;
    let t = card_text(&s, "Scale checkout");
    assert!(t.contains("did not render as JSON"), "{t}");
    assert!(
        !t.contains("sluice_approval_approve"),
        "decided: no buttons: {t}"
    );
    wait_until(
        "the requester told in the thread",
        Duration::from_secs(20),
        || {
            replies(&s.sim, &c).iter().any(|m| {
                m.text.contains("<@U0004>")
                    && m.text.contains("Approved, but Scale could not start")
            })
        },
    )
    .await;
    wait_until("the callback", Duration::from_secs(20), || {
        s.internal.received().iter().any(|r| r.path == "/callback")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = s.internal.received();
    assert_eq!(
        got.len(),
        1,
        "the callback only, no call to /scale: {got:?}"
    );
    assert!(signature_ok(&got[0]));
    let sent: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(sent["state"], "approved");
    assert_eq!(sent["action"]["state"], "failed", "{sent}");
    assert_eq!(sent["action"]["name"], "scale");
    assert!(
        sent["action"]["error"]
            .as_str()
            .unwrap()
            .contains("did not render as JSON"),
        "{sent}"
    );
}

/// On a card without a dedup key, a decision taken while an action runs stays when the run ends: the run's end
/// redraws the card from the store (the acknowledgement, the run), not from the card as it was clicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_during_a_run_stays_on_the_card_when_the_run_ends() {
    let s = setup().await;
    let c = alert_card(&s, "Cron jobs late").await;
    s.internal
        .answer(vec![Answer::Slow(Duration::from_secs(4))]);
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_run:drain", "U0001")
        .await
        .unwrap();
    wait_card(&s, "Cron jobs late", "Running Drain").await;
    s.sim
        .click_button(&c.channel, &c.ts, "sluice_ack", "U0002")
        .await
        .unwrap();
    wait_card(&s, "Cron jobs late", "Acknowledged by <@U0002>").await;
    assert!(
        card_text(&s, "Cron jobs late").contains("Running Drain"),
        "{}",
        card_text(&s, "Cron jobs late")
    );
    wait_card(&s, "Cron jobs late", "Drain done").await;
    let t = card_text(&s, "Cron jobs late");
    assert!(t.contains("Acknowledged by <@U0002>"), "{t}");
    assert!(
        !t.contains("\"sluice_ack\""),
        "the Acknowledge button stays gone: {t}"
    );
}
