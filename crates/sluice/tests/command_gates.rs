//! Gates before a command's action, end to end: the real binary, the Slack simulator playing the users, and a test
//! HTTP server on 127.0.0.1 playing the internal system. A command whose action has a `confirm` answers with Run /
//! Cancel first (the action runs once however often Run is clicked, never after Cancel); a command whose action needs
//! an approval posts the approval card and runs only once the approvals are in (a rejection tells the requester).

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use sluice_sim::Simulator;

use common::fixture::{Fixture, Places};
use common::internal::audited;
use common::proc::*;

fn config(p: &Places) -> String {
    let internal = p.internal;
    format!(
        r#"
[actions]
command = "/ops"
users = ["U0001"]
outgoing_secret_file = "outgoing"

[[action]]
name = "deploy"
label = "Deploy"
method = "POST"
url = "http://{internal}/deploy"
body = '{{"service": "{{{{ args.service }}}}", "env": "{{{{ args.env }}}}", "by": "{{{{ user.id }}}}"}}'
users = ["U0001", "U0002"]
confirm = {{ title = "Deploy?", text = "This deploys to the environment you named.", ok = "Deploy", deny = "Back" }}

[[action]]
name = "restart"
label = "Restart"
url = "http://{internal}/restart"
body = '{{"service": "{{{{ args.service }}}}"}}'
users = ["U0001"]

[[action]]
name = "rollback"
label = "Rollback"
url = "http://{internal}/rollback"
body = '{{"service": "{{{{ args.service }}}}", "approved_by": "{{{{ user.id }}}}"}}'
users = ["U0001"]
approval = {{ approvers = {{ users = ["U0003", "U0004"] }}, required = 2, expires_in = "30m" }}

[[action]]
name = "purge"
label = "Purge"
url = "http://{internal}/purge"
users = ["U0001"]
approval = {{ approvers = {{ users = ["U0003"] }}, expires_in = "2s" }}

[[command]]
name = "purge"
action = "purge"

[[command]]
name = "deploy"
usage = "deploy <service> <env>"
args = [{{ name = "service", type = "string" }}, {{ name = "env", type = "enum", values = ["staging", "production"] }}]
action = "deploy"
users = ["U0001"]

[[command]]
name = "restart"
args = [{{ name = "service", type = "string" }}]
action = "restart"
confirm = true

[[command]]
name = "rollback"
args = [{{ name = "service", type = "string" }}]
action = "rollback"

[routing]
default = {{ channels = ["ops"] }}
"#
    )
}

/// The set-up on `db` (SQLite in its directory when `None`), with #ops made by people and the bot in it.
async fn setup_on(db: Option<&str>, people: &[&str]) -> Fixture {
    let (sim, sim_run) = start_sim().await;
    let people: Vec<String> = people.iter().map(|s| s.to_string()).collect();
    sim.create_channel_as_user("ops", false, &people, true)
        .unwrap();
    let f = Fixture::builder()
        .sim((sim, sim_run))
        .internal_stub(json!({"deployed": "1.4.2"}))
        .signed()
        .response_urls()
        .config(config);
    match db {
        Some(url) => f.db(url).migrate_first(),
        None => f,
    }
    .start()
    .await
}

async fn setup() -> Fixture {
    setup_on(None, &["U0001", "U0002", "U0003", "U0004"]).await
}

/// `/ops <text>` as `user` in #ops: acked within 3 s; the answer (the HTTP body's message, or else the user's
/// latest ephemeral) with its text and blocks.
async fn ops(sim: &Simulator, text: &str, user: &str) -> (String, Value, String) {
    let before = sim.ephemerals(Some(user)).len();
    let d = sim.slash_command("/ops", text, "ops", user).await.unwrap();
    assert_eq!(d.status, 200, "{text}: {}", d.body);
    assert!(
        d.elapsed < Duration::from_secs(3),
        "{text}: acked after {:?}",
        d.elapsed
    );
    wait_until("the command's answer", Duration::from_secs(10), || {
        sim.ephemerals(Some(user)).len() > before
    })
    .await;
    let e = sim.ephemerals(Some(user)).last().unwrap().clone();
    (e.text, e.blocks, e.ts)
}

fn results(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["result"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The user's ephemeral with this ts, as it stands now.
fn ephemeral(sim: &Simulator, user: &str, ts: &str) -> Option<sluice_sim::state::Ephemeral> {
    sim.ephemerals(Some(user)).into_iter().find(|e| e.ts == ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_command_runs_once_and_a_cancelled_one_never() {
    let s = setup().await;
    let sim = &s.sim;

    // Not permitted: an ephemeral refusal, and no confirmation to click.
    let (t, blocks, _) = ops(sim, "deploy checkout staging", "U0002").await;
    assert!(t.contains("not allowed to run `/ops deploy`"), "{t}");
    assert!(!blocks.to_string().contains("sluice_cmd_run"), "{blocks}");
    // Bad arguments: the usage, no confirmation either.
    let (t, _, _) = ops(sim, "deploy checkout prod", "U0001").await;
    assert!(t.contains("not one of staging, production"), "{t}");

    // A permitted user: what will run with which arguments, Run (with the action's own dialog) and Cancel.
    let (t, blocks, ts) = ops(sim, "deploy checkout staging", "U0001").await;
    assert!(
        t.contains("Run Deploy with `/ops deploy checkout staging`?"),
        "{t}"
    );
    let shown = blocks.to_string();
    assert!(
        shown.contains("service: `checkout`") && shown.contains("env: `staging`"),
        "{shown}"
    );
    let run = &blocks[1]["elements"][0];
    assert_eq!(run["action_id"], "sluice_cmd_run", "{blocks}");
    assert_eq!(run["confirm"]["title"]["text"], "Deploy?", "{blocks}");
    assert_eq!(run["confirm"]["confirm"]["text"], "Deploy", "{blocks}");
    assert_eq!(blocks[1]["elements"][1]["action_id"], "sluice_cmd_cancel");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        s.internal.received_at("/deploy").is_empty(),
        "nothing runs before Run"
    );

    // Run clicked twice at once (a double click): one call, the confirmation becomes "running…" (its buttons gone),
    // then the result is posted in the channel.
    let (a, b) = tokio::join!(
        sim.click_ephemeral_button("U0001", &ts, "sluice_cmd_run"),
        sim.click_ephemeral_button("U0001", &ts, "sluice_cmd_run"),
    );
    assert!(a.unwrap().acked() && b.unwrap().acked());
    wait_until("the confirmation replaced", Duration::from_secs(10), || {
        ephemeral(sim, "U0001", &ts).is_some_and(|e| e.text.contains("Running Deploy"))
    })
    .await;
    assert!(
        !ephemeral(sim, "U0001", &ts)
            .unwrap()
            .blocks
            .to_string()
            .contains("sluice_cmd_run"),
        "the buttons are gone"
    );
    wait_until(
        "the deploy result in the channel",
        Duration::from_secs(15),
        || {
            sim.messages("ops")
                .iter()
                .any(|m| m.text.contains("Deploy: HTTP 200") && m.text.contains("1.4.2"))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deploys = s.internal.received_at("/deploy");
    assert_eq!(deploys.len(), 1, "exactly one call: {deploys:?}");
    assert!(deploys[0].signed());
    assert_eq!(
        deploys[0].json(),
        json!({"service": "checkout", "env": "staging", "by": "U0001"})
    );

    // Cancel: replaced, nothing runs.
    let (_, _, ts2) = ops(sim, "deploy search production", "U0001").await;
    sim.click_ephemeral_button("U0001", &ts2, "sluice_cmd_cancel")
        .await
        .unwrap();
    wait_until(
        "the confirmation cancelled",
        Duration::from_secs(10),
        || {
            ephemeral(sim, "U0001", &ts2).is_some_and(|e| {
                e.text
                    .contains("Cancelled `/ops deploy search production`: nothing ran.")
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        s.internal.received_at("/deploy").len(),
        1,
        "nothing ran after Cancel"
    );

    // Run and Cancel at once (two tabs, two replicas): one of them decides, the other is told; never both.
    let (_, _, ts3) = ops(sim, "deploy search staging", "U0001").await;
    let told_before = sim.ephemerals(Some("U0001")).len();
    let (a, b) = tokio::join!(
        sim.click_ephemeral_button("U0001", &ts3, "sluice_cmd_cancel"),
        sim.click_ephemeral_button("U0001", &ts3, "sluice_cmd_run"),
    );
    assert!(a.unwrap().acked() && b.unwrap().acked());
    wait_until(
        "one decision and one refusal",
        Duration::from_secs(10),
        || {
            let decided = ephemeral(sim, "U0001", &ts3)
                .is_some_and(|e| e.text.contains("Cancelled") || e.text.contains("Running Deploy"));
            decided && sim.ephemerals(Some("U0001")).len() > told_before
        },
    )
    .await;
    let told = sim.ephemerals(Some("U0001")).last().unwrap().text.clone();
    assert!(told.contains("was already run or cancelled"), "{told}");
    let ran = ephemeral(sim, "U0001", &ts3)
        .unwrap()
        .text
        .contains("Running Deploy");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let expected = if ran { 2 } else { 1 };
    assert_eq!(
        s.internal.received_at("/deploy").len(),
        expected,
        "ran: {ran}"
    );

    // `confirm = true` on a command whose action has no dialog of its own: Run / Cancel, without a dialog.
    let (t, blocks, ts3) = ops(sim, "restart checkout", "U0001").await;
    assert!(t.contains("Run Restart"), "{t}");
    assert!(
        blocks[1]["elements"][0].get("confirm").is_none(),
        "{blocks}"
    );
    sim.click_ephemeral_button("U0001", &ts3, "sluice_cmd_run")
        .await
        .unwrap();
    wait_until("the restart called", Duration::from_secs(15), || {
        s.internal.received_at("/restart").len() == 1
    })
    .await;

    // Every step is audited: the refusal, the confirmation asked, confirmed, cancelled, the clicks refused.
    let r = results(&audited(s.sluice.addr, "command.deploy").await);
    assert!(r.iter().any(|x| x == "refused: not allowed"), "{r:?}");
    let count = |p: &str| r.iter().filter(|x| x.starts_with(p)).count();
    assert_eq!(count("confirmation asked: "), 3, "{r:?}");
    assert_eq!(
        count("confirmed: ok: run run_"),
        if ran { 2 } else { 1 },
        "{r:?}"
    );
    assert_eq!(count("cancelled"), if ran { 1 } else { 2 }, "{r:?}");
    assert_eq!(
        count("refused: already decided"),
        1,
        "{r:?} (the double click's second is dropped on arrival)"
    );
}

/// The approval card a command asked for: its channel and ts.
async fn approval_card(sim: &Simulator, title: &str) -> (String, String) {
    wait_until("the approval card", Duration::from_secs(15), || {
        sim.messages("ops").iter().any(|m| m.text.contains(title))
    })
    .await;
    let m = sim
        .messages("ops")
        .into_iter()
        .find(|m| m.text.contains(title))
        .unwrap();
    (m.channel, m.ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_needs_approval_runs_only_after_the_approvals_are_in() {
    let s = setup().await;
    let sim = &s.sim;

    let (t, _, _) = ops(sim, "rollback checkout", "U0001").await;
    assert!(t.contains("Rollback needs an approval"), "{t}");
    let (ch, ts) = approval_card(sim, "Run Rollback: /ops rollback checkout").await;
    let card = sim
        .messages("ops")
        .into_iter()
        .find(|m| m.ts == ts)
        .unwrap();
    assert!(
        card.blocks.to_string().contains("sluice_approval_approve"),
        "{:?}",
        card.blocks
    );
    assert!(
        card.blocks.to_string().contains("checkout"),
        "the card shows the arguments"
    );

    // The requester may not approve their own request; one approval of two runs nothing.
    sim.click_button(&ch, &ts, "sluice_approval_approve", "U0001")
        .await
        .unwrap();
    sim.click_button(&ch, &ts, "sluice_approval_approve", "U0003")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        s.internal.received_at("/rollback").is_empty(),
        "not before the approvals are in"
    );

    // The second approval: the action runs once, with the command's arguments, its result in the card's thread.
    sim.click_button(&ch, &ts, "sluice_approval_approve", "U0004")
        .await
        .unwrap();
    wait_until("the rollback called", Duration::from_secs(15), || {
        s.internal.received_at("/rollback").len() == 1
    })
    .await;
    assert_eq!(
        s.internal.received_at("/rollback")[0].json(),
        json!({"service": "checkout", "approved_by": "U0004"})
    );
    wait_until(
        "the result in the card's thread",
        Duration::from_secs(15),
        || {
            sim.messages("ops").iter().any(|m| {
                m.thread_ts.as_deref() == Some(ts.as_str()) && m.text.contains("Rollback: HTTP 200")
            })
        },
    )
    .await;

    // Rejected: the requester is told, nothing runs.
    let (_, _, _) = ops(sim, "rollback payments", "U0001").await;
    let (ch2, ts2) = approval_card(sim, "Run Rollback: /ops rollback payments").await;
    sim.click_button(&ch2, &ts2, "sluice_approval_reject", "U0003")
        .await
        .unwrap();
    wait_until("the reject modal", Duration::from_secs(10), || {
        sim.views()
            .iter()
            .any(|v| v.callback_id.as_deref() == Some("sluice_approval_reject"))
    })
    .await;
    let view = sim
        .views()
        .into_iter()
        .find(|v| v.callback_id.as_deref() == Some("sluice_approval_reject"))
        .unwrap();
    let done = sim
        .submit_view(
            &view.id,
            "U0003",
            json!({"reason": {"reason": {"type": "plain_text_input", "value": "freeze week"}}}),
        )
        .await
        .unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    wait_until("the requester told", Duration::from_secs(15), || {
        sim.ephemerals(Some("U0001")).iter().any(|e| {
            e.text.contains("Run Rollback: /ops rollback payments")
                && e.text
                    .contains("was rejected by <@U0003>: freeze week. Nothing ran.")
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.internal.received_at("/rollback").len(),
        1,
        "a rejected request runs nothing"
    );

    // Nobody decides in time: it expires, the requester is told, nothing runs.
    let (t, _, _) = ops(sim, "purge", "U0001").await;
    assert!(t.contains("Purge needs an approval"), "{t}");
    wait_until(
        "the requester told of the expiry",
        Duration::from_secs(20),
        || {
            sim.ephemerals(Some("U0001")).iter().any(|e| {
                e.text.contains("Run Purge: /ops purge")
                    && e.text
                        .contains("expired before it was approved. Nothing ran.")
            })
        },
    )
    .await;
    assert!(s.internal.received_at("/purge").is_empty());

    let r = results(&audited(s.sluice.addr, "command.rollback").await);
    assert_eq!(
        r.iter()
            .filter(|x| x.starts_with("approval requested: apr_"))
            .count(),
        2,
        "{r:?}"
    );
    let requests = audited(s.sluice.addr, "approval.request").await;
    assert!(
        requests.iter().all(|x| x["detail"]["via"] == "command"),
        "{requests:?}"
    );
}

/// `remind list` until `done` holds for its answer.
async fn list_until(sim: &Simulator, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (t, _, _) = ops(sim, "remind list", "U0001").await;
        if done(&t) {
            return t;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_is_scheduled_listed_cancelled_and_posted_on_time() {
    let s = setup().await;
    let sim = &s.sim;

    // Not permitted ([actions] users only), and a delay Slack would refuse: told, nothing scheduled.
    let (t, _, _) = ops(sim, "remind #ops in 2h \"rotate the keys\"", "U0002").await;
    assert!(t.contains("not allowed to set reminders"), "{t}");
    let (t, _, _) = ops(sim, "remind #ops in 30s hi", "U0001").await;
    assert!(
        t.contains("not between 1m and 120d") && t.contains("Usage: `/ops remind"),
        "{t}"
    );

    // Set, listed with its id, cancelled: it is never posted.
    let (t, _, _) = ops(sim, "remind #ops in 2h \"rotate the keys\"", "U0001").await;
    assert!(t.contains("I'll post it in #ops"), "{t}");
    let listed = list_until(sim, "the reminder listed", |t| {
        t.contains("rotate the keys")
    })
    .await;
    assert!(listed.contains("<@U0001>: rotate the keys"), "{listed}");
    let id = listed
        .split('`')
        .find(|w| w.starts_with('Q'))
        .expect("an id")
        .to_string();
    let (t, _, _) = ops(sim, "remind cancel Qnope", "U0001").await;
    assert!(t.contains("No pending reminder `Qnope`"), "{t}");
    let (t, _, _) = ops(sim, &format!("remind cancel {id}"), "U0001").await;
    assert!(t.contains(&format!("Cancelled reminder `{id}`")), "{t}");
    list_until(sim, "the reminder gone", |t| {
        t.contains("No reminders are pending.")
    })
    .await;

    // Another one, due in a minute: posted in #ops once its time comes.
    ops(sim, "remind #ops in 1m stand-up", "U0001").await;
    list_until(sim, "the second reminder listed", |t| {
        t.contains("stand-up")
    })
    .await;
    sim.advance_clock(Duration::from_secs(3 * 3600));
    list_until(sim, "the reminder posted", |t| {
        t.contains("No reminders are pending.")
    })
    .await;
    let texts: Vec<String> = sim.messages("ops").into_iter().map(|m| m.text).collect();
    assert!(
        texts
            .iter()
            .any(|t| t == "⏰ Reminder from <@U0001>: stand-up"),
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains("rotate the keys")),
        "a cancelled reminder never posts: {texts:?}"
    );

    let r = results(&audited(s.sluice.addr, "command.remind").await);
    assert!(
        r.iter().any(|x| x == &format!("ok: cancelled {id}")),
        "{r:?}"
    );
    assert!(r.iter().any(|x| x == "refused: not allowed"), "{r:?}");
    assert!(
        r.iter()
            .filter(|x| x.starts_with("ok: scheduled for "))
            .count()
            == 2,
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_one_replica_and_cancel_on_the_other_decide_once_on_postgres() {
    let Some(db) = common::pg::TestDb::create("confirm_replicas").await else {
        return;
    };
    let s = setup_on(Some(&db.url), &["U0001", "U0002"]).await;
    let (sim, a) = (&s.sim, &s.sluice);
    let b = s.start_another();

    // The command on replica A; Run on A and Cancel on B, one right after the other: whichever is taken first
    // decides, the other replica says it is decided, and the action runs at most once.
    sim.set_app_base_url(format!("http://{}", a.addr));
    let (_, _, ts) = ops(sim, "deploy checkout staging", "U0001").await;
    let before = sim.ephemerals(Some("U0001")).len();
    sim.click_ephemeral_button("U0001", &ts, "sluice_cmd_run")
        .await
        .unwrap();
    sim.set_app_base_url(format!("http://{}", b.addr));
    sim.click_ephemeral_button("U0001", &ts, "sluice_cmd_cancel")
        .await
        .unwrap();
    wait_until(
        "one replica decided, the other refused",
        Duration::from_secs(15),
        || {
            let decided = ephemeral(sim, "U0001", &ts)
                .is_some_and(|e| e.text.contains("Cancelled") || e.text.contains("Running Deploy"));
            decided && sim.ephemerals(Some("U0001")).len() > before
        },
    )
    .await;
    let told = sim.ephemerals(Some("U0001")).last().unwrap().text.clone();
    assert!(told.contains("was already run or cancelled"), "{told}");
    let ran = ephemeral(sim, "U0001", &ts)
        .unwrap()
        .text
        .contains("Running Deploy");
    if ran {
        wait_until("the deploy called", Duration::from_secs(15), || {
            s.internal.received_at("/deploy").len() == 1
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.internal.received_at("/deploy").len(), usize::from(ran));
    let r = results(&audited(a.addr, "command.deploy").await);
    let decisions = r
        .iter()
        .filter(|x| x.starts_with("confirmed: ") || *x == "cancelled")
        .count();
    assert_eq!(decisions, 1, "{r:?}");
    assert_eq!(
        r.iter()
            .filter(|x| *x == "refused: already decided")
            .count(),
        1,
        "{r:?}"
    );
    drop((b, s));
    db.drop_db().await;
}
