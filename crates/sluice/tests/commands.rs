//! ChatOps end to end: the real binary, the Slack simulator playing the users, and a test clock
//! (`SLUICE_CLOCK_FILE`) for on-call hand-offs and cron minutes. Configured commands (usage, permissions, `help`),
//! the built-ins (`status`, `silence`, `ack`, `oncall`) and `[[schedule]]`s (on time in their zone, once, once with
//! two replicas on PostgreSQL, a missed run run once or skipped), and a command whose internal system fails or times out.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::fixture::{Builder, Fixture};
use common::internal::{audited, Answer};
use common::pg::TestDb;
use common::proc::*;
use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};

/// Serving Slack's requests, replying through the simulator's response_urls, on a test clock starting `at`.
fn builder(at: &str) -> Builder {
    Fixture::builder().signed().response_urls().clock(at)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Runs `/ops <text>` as `user` in `channel`; the answer's text (the HTTP answer, or else the user's latest
/// ephemeral, which arrives through the response_url).
async fn ops(sim: &Simulator, text: &str, channel: &str, user: &str) -> String {
    let before = sim.ephemerals(Some(user)).len();
    let d = sim
        .slash_command("/ops", text, channel, user)
        .await
        .unwrap();
    assert_eq!(d.status, 200, "{text}: {}", d.body);
    assert!(
        d.elapsed < Duration::from_secs(3),
        "{text}: acked after {:?}",
        d.elapsed
    );
    if let Some(t) = d
        .json()
        .and_then(|v| v["text"].as_str().map(str::to_string))
    {
        return t;
    }
    wait_until("the command's answer", Duration::from_secs(10), || {
        sim.ephemerals(Some(user)).len() > before
    })
    .await;
    sim.ephemerals(Some(user)).last().unwrap().text.clone()
}

/// The issue's example: `/ops deploy <service> <env>` runs the `deploy` action with the arguments as `args`.
fn commands_config(internal: SocketAddr) -> String {
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

[[action]]
name = "restart"
label = "Restart"
url = "http://{internal}/restart"
{COMMANDS}"#
    )
}

const COMMANDS: &str = r#"

[[command]]
name = "deploy"
usage = "deploy <service> <env>"
description = "deploy a service"
args = [{ name = "service", type = "string" }, { name = "env", type = "enum", values = ["staging", "production"] }]
action = "deploy"
users = ["U0001"]

[[command]]
name = "restart"
args = [{ name = "service", type = "string" }]
action = "restart"
users = ["U0002"]

[[rotation]]
name = "payments"
members = ["U0001", "U0002"]
handoff = "weekly"
handoff_day = "monday"
handoff_time = "09:00"
time_zone = "Europe/Berlin"
start = "2026-03-02"

[routing]
default = { channels = ["c00"] }
"#;

fn alert(title: &str, key: &str) -> Value {
    json!({"title": title, "severity": "critical", "status": "firing", "source": "am",
           "service": "checkout", "dedup_key": key})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_parse_check_permissions_and_the_built_ins_act_on_alerts() {
    // 08:59 in Berlin (CET) on Monday 9 March 2026, a minute before the rotation hands off.
    let s = builder("2026-03-09T07:59:00Z")
        .internal_stub(json!({"deployed": "1.4.2"}))
        .config(|p| commands_config(p.internal))
        .start()
        .await;
    let (sim, sluice, internal) = (&s.sim, &s.sluice, &s.internal);

    let (ids, failed) = post_all(
        sluice.addr,
        vec![alert("Checkout p99 above 2s", "checkout-p99")],
        1,
    )
    .await;
    assert_eq!((ids.len(), failed), (1, 0));
    wait_until("the alert card", Duration::from_secs(15), || {
        !sim.messages("c00").is_empty()
    })
    .await;

    // Bad arguments: the usage.
    let t = ops(sim, "deploy checkout", "c00", "U0001").await;
    assert!(
        t.contains("missing &lt;env&gt;. Usage: `/ops deploy &lt;service&gt; &lt;env&gt;`"),
        "{t}"
    );
    let t = ops(sim, "deploy checkout prod", "c00", "U0001").await;
    assert!(t.contains("not one of staging, production"), "{t}");

    // Not permitted: an ephemeral refusal, audited.
    let t = ops(sim, "deploy checkout staging", "c00", "U0002").await;
    assert!(t.contains("not allowed to run `/ops deploy`"), "{t}");
    let records = audited(sluice.addr, "command.deploy").await;
    let results: Vec<&str> = records
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert!(results.contains(&"refused: bad arguments"), "{results:?}");
    assert!(
        records
            .iter()
            .any(|r| r["actor"] == "U0002" && r["result"] == "refused: not allowed"),
        "{records:?}"
    );

    // A permitted user: the action runs once, with the arguments in its body, and its result is posted here.
    let t = ops(sim, "deploy checkout staging", "c00", "U0001").await;
    assert!(t.contains("Running Deploy"), "{t}");
    wait_until(
        "the deploy result in the channel",
        Duration::from_secs(15),
        || {
            sim.messages("c00")
                .iter()
                .any(|m| m.text.contains("Deploy: HTTP 200") && m.text.contains("1.4.2"))
        },
    )
    .await;
    assert_eq!(
        internal
            .received()
            .iter()
            .map(|r| r.json())
            .collect::<Vec<_>>(),
        vec![json!({"service": "checkout", "env": "staging", "by": "U0001"})],
        "one call, with the command's arguments"
    );
    let runs = audited(sluice.addr, "action.run").await;
    assert!(
        runs.iter()
            .any(|r| r["actor"] == "U0001" && r["result"] == "ok"),
        "{runs:?}"
    );

    // help lists what this user may run here, and only that.
    // Placeholders are escaped, so Slack shows `<service>` instead of reading it as a link and dropping it.
    let t = ops(sim, "help", "c00", "U0001").await;
    assert!(
        t.contains("`/ops deploy &lt;service&gt; &lt;env&gt;` — deploy a service"),
        "{t}"
    );
    assert!(
        t.contains("`/ops status &lt;service&gt;`") && !t.contains('<'),
        "{t}"
    );
    assert!(!t.contains("restart"), "{t}");
    // No incident types configured: no incident commands offered.
    assert!(!t.contains("incident declare"), "{t}");
    let t = ops(sim, "help", "c00", "U0002").await;
    assert!(
        t.contains("`/ops restart &lt;service&gt;`") && !t.contains("/ops deploy"),
        "{t}"
    );

    // status <service>: the open alert with its key.
    let t = ops(sim, "status checkout", "c00", "U0001").await;
    assert!(
        t.contains("Open alerts (1)")
            && t.contains("Checkout p99 above 2s")
            && t.contains("`checkout-p99`"),
        "{t}"
    );

    // ack by dedup key: through the card's path; the card loses its Acknowledge button; a refusal for others.
    let t = ops(sim, "ack checkout-p99", "c00", "U0002").await;
    assert!(t.contains("not allowed to acknowledge"), "{t}");
    let t = ops(sim, "ack checkout-p99", "c00", "U0001").await;
    assert!(t.contains("Done: acknowledged"), "{t}");
    wait_until("the card acknowledged", Duration::from_secs(10), || {
        let card = sim.messages("c00").remove(0);
        let b = card.blocks.to_string();
        !b.contains("\"sluice_ack\"") && b.contains("Acknowledged by")
    })
    .await;
    let acks = audited(sluice.addr, "alert.ack").await;
    assert!(
        acks.iter()
            .any(|r| r["result"] == "ok" && r["detail"]["via"] == "command"),
        "{acks:?}"
    );

    // silence: a following alert of the service is muted.
    let t = ops(
        sim,
        "silence service=checkout 1h deploying the fix",
        "c00",
        "U0001",
    )
    .await;
    assert!(t.starts_with("Silenced service=checkout for 1h"), "{t}");
    let created = audited(sluice.addr, "silence.create").await;
    assert!(
        created
            .iter()
            .any(|r| r["actor"] == "U0001" && r["detail"]["via"] == "slash command"),
        "{created:?}"
    );
    let (ids, _) = post_all(
        sluice.addr,
        vec![alert("Checkout errors", "checkout-errors")],
        1,
    )
    .await;
    let ev: Value = http()
        .get(format!("http://{}/v1/events/{}", sluice.addr, ids[0]))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ev["fate"]["kind"], "suppressed", "{ev}");
    let t = ops(sim, "silence service=checkout 1h", "c00", "U0001").await;
    assert!(t.contains("missing &lt;comment&gt;"), "{t}");

    // oncall before and after the hand-off at 09:00 Berlin time.
    let t = ops(sim, "oncall payments", "c00", "U0002").await;
    assert!(
        t.contains("<@U0001> is on call; next <@U0002> from Mon 9 Mar 09:00 CET"),
        "{t}"
    );
    s.set_clock("2026-03-09T08:00:30Z");
    let t = ops(sim, "oncall", "c00", "U0002").await;
    assert!(
        t.contains("<@U0002> is on call; next <@U0001> from Mon 16 Mar 09:00 CET"),
        "{t}"
    );
    let t = ops(sim, "oncall web", "c00", "U0002").await;
    assert!(t.contains("no rotation `web`"), "{t}");
}

const SCHEDULES: &str = r#"
[routing]
default = { channels = ["alerts"] }

[[schedule]]
name = "morning"
cron = "0 9 * * *"
time_zone = "Asia/Tokyo"
channel = "ops"
report = "stats"

[[schedule]]
name = "standup"
cron = "30 9 * * *"
time_zone = "Asia/Tokyo"
channel = "ops"
template = "standup reminder for {{ due }}"
missed = "skip"
"#;

fn posts(sim: &Simulator, starting: &str) -> usize {
    sim.channels()
        .into_iter()
        .filter(|c| c.name == "ops")
        .flat_map(|c| sim.messages(&c.id))
        .filter(|m| m.text.starts_with(starting))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_posts_once_at_its_minute_in_its_zone_and_missed_runs_are_run_once_or_skipped() {
    // 08:59 in Tokyo on 2 July.
    let mut s = builder("2026-07-01T23:59:00Z")
        .config(|_| SCHEDULES.into())
        .start()
        .await;
    let (sim, sluice) = (&s.sim, &s.sluice);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(posts(sim, "*morning*"), 0, "posted before its minute");

    s.set_clock("2026-07-02T00:00:05Z");
    wait_until("the 09:00 report", Duration::from_secs(15), || {
        posts(sim, "*morning*") == 1
    })
    .await;
    let text = sim
        .channels()
        .into_iter()
        .filter(|c| c.name == "ops")
        .flat_map(|c| sim.messages(&c.id))
        .next()
        .unwrap()
        .text;
    assert!(
        text.contains("events received: 0") && text.contains("2026-07-02 09:00 JST"),
        "{text}"
    );
    // Later ticks in the same minute, and the minute after, post nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.set_clock("2026-07-02T00:01:10Z");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(posts(sim, "*morning*"), 1);
    s.set_clock("2026-07-02T00:30:02Z");
    wait_until("the 09:30 reminder", Duration::from_secs(15), || {
        posts(sim, "standup reminder") == 1
    })
    .await;
    let runs = audited(sluice.addr, "schedule.run").await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r["result"] == "ok" && r["detail"]["missed"] == 0),
        "{runs:?}"
    );

    // Down over the next day's 09:00 and 09:30, back at noon: morning runs once, late; standup is skipped.
    s.stop();
    s.set_clock("2026-07-03T03:00:00Z");
    s.restart();
    let (sim, sluice) = (&s.sim, &s.sluice);
    wait_until("the missed morning report", Duration::from_secs(15), || {
        posts(sim, "*morning*") == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(posts(sim, "*morning*"), 2);
    assert_eq!(
        posts(sim, "standup reminder"),
        1,
        "a skipped run was posted"
    );
    let skips = audited(sluice.addr, "schedule.skip").await;
    assert_eq!(skips.len(), 1, "{skips:?}");
    assert_eq!(skips[0]["target"], "standup");
    assert_eq!(skips[0]["detail"]["due"], "2026-07-03 09:30 JST");
    let late: Vec<Value> = audited(sluice.addr, "schedule.run")
        .await
        .into_iter()
        .filter(|r| r["detail"]["missed"] == 1)
        .collect();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0]["detail"]["due"], "2026-07-03 09:00 JST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_post_a_scheduled_report_once() {
    let Some(db) = TestDb::create("schedule_replicas").await else {
        return;
    };
    let s = builder("2026-07-01T23:59:30Z")
        .config(|_| SCHEDULES.into())
        .db(&db.url)
        .migrate_first()
        .start()
        .await;
    let another = s.start_another();
    let replicas = [&s.sluice, &another];
    let sim = &s.sim;
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.set_clock("2026-07-02T00:00:01Z");
    wait_until("the report", Duration::from_secs(20), || {
        posts(sim, "*morning*") >= 1
    })
    .await;
    // Both replicas tick every second; leadership may move. Still one post, one audited run.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(posts(sim, "*morning*"), 1);
    assert_eq!(audited(replicas[0].addr, "schedule.run").await.len(), 1);
    drop((another, s));
    db.drop_db().await;
}

/// The internal system failing behind a command: a 500 is retried with backoff and then reported, a call that
/// outlasts the action's timeout is reported as timed out; each user gets "running…" at once (Slack's 3 s are
/// never at risk), nothing hangs, and both runs are audited as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_system_fails_or_times_out_says_so_plainly() {
    let sim = Simulator::new(SimConfig {
        channels: vec!["c00".into()],
        ..SimConfig::default()
    });
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let s = builder("2026-03-09T07:59:00Z")
        .sim((sim, sim_run))
        .config(|p| {
            let internal = p.internal;
            format!(
                r#"
[actions]
command = "/ops"
users = ["U0001"]
outgoing_secret_file = "outgoing"

[dispatch]
backoff_base_ms = 100
backoff_max_ms = 300
max_age_secs = 3

[[action]]
name = "deploy"
label = "Deploy"
url = "http://{internal}/deploy"
users = ["U0001"]

[[action]]
name = "restart"
label = "Restart"
url = "http://{internal}/restart"
timeout = "500ms"
users = ["U0001"]

[[command]]
name = "deploy"
args = [{{ name = "service", type = "string" }}]
action = "deploy"

[[command]]
name = "restart"
args = [{{ name = "service", type = "string" }}]
action = "restart"

[routing]
default = {{ channels = ["c00"] }}
"#
            )
        })
        .start()
        .await;
    let (sim, sluice, internal) = (&s.sim, &s.sluice, &s.internal);
    internal.always("/deploy", Answer::Status(500));
    internal.always("/restart", Answer::Slow(Duration::from_secs(3)));

    let t = ops(sim, "deploy checkout", "c00", "U0001").await;
    assert!(t.contains("Running Deploy"), "{t}");
    let t = ops(sim, "restart checkout", "c00", "U0001").await;
    assert!(t.contains("Running Restart"), "{t}");

    let said = |needle: &str| sim.messages("c00").iter().any(|m| m.text.contains(needle));
    wait_until("the deploy's failure", Duration::from_secs(30), || {
        said("Deploy failed: the internal system answered HTTP 500 after")
    })
    .await;
    wait_until("the restart's timeout", Duration::from_secs(30), || {
        said("Restart timed out after 500ms")
    })
    .await;
    // Retried before giving up, and each try signed.
    let deploys = internal.received_at("/deploy");
    assert!(deploys.len() >= 2, "{} tries", deploys.len());
    assert!(deploys.iter().all(|r| r.signed()));

    // Both runs audited as started by the user, and each call's end as the error it was.
    let runs = audited(sluice.addr, "action.run").await;
    assert_eq!(
        runs.iter().filter(|r| r["actor"] == "U0001").count(),
        2,
        "{runs:?}"
    );
    for purpose in ["action.deploy", "action.restart"] {
        let calls = audited(sluice.addr, purpose).await;
        assert!(
            calls
                .iter()
                .any(|r| r["result"].as_str().is_some_and(|x| x.starts_with("error"))),
            "{purpose}: {calls:?}"
        );
    }
}
