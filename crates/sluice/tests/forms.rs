//! `[[form]]` modals end to end: the real binary, the Slack simulator playing the user (the command, typing into an
//! external select, submitting the modal) and a test HTTP server on 127.0.0.1 playing the internal system (the
//! action's endpoint and the external select's options endpoint). A submission is checked server-side (a required
//! field left empty, a number out of range: the field's error, the modal stays open), a valid one runs the action
//! once (a resubmission runs nothing more), and the options are narrowed to what was typed (an endpoint that fails
//! gives an empty list, never an error).

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use sluice_sim::Simulator;

use common::fixture::{Fixture, Places};
use common::internal::{audited, Answer};
use common::proc::*;

/// What the internal system's `/options` answers: a list of teams.
fn teams() -> Answer {
    Answer::Json(json!({"options": [
        "payments", {"text": "Checkout team", "value": "checkout"}, "search"
    ]}))
}

/// The set-up: #ops made by `people` with the bot in it; the internal system answers `/options` with [`teams`],
/// everything else `{"deployed": "1.4.2"}`.
async fn start(people: &[&str], config: fn(&Places) -> String) -> Fixture {
    let (sim, sim_run) = start_sim().await;
    let people: Vec<String> = people.iter().map(|s| s.to_string()).collect();
    sim.create_channel_as_user("ops", false, &people, true)
        .unwrap();
    let s = Fixture::builder()
        .sim((sim, sim_run))
        .internal_stub(json!({"deployed": "1.4.2"}))
        .signed()
        .response_urls()
        .config(config)
        .start()
        .await;
    s.internal.always("/options", teams());
    s
}

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
url = "http://{internal}/deploy"
body = '{{"service": "{{{{ form.service }}}}", "env": "{{{{ form.env }}}}", "replicas": "{{{{ form.replicas }}}}", "team": "{{{{ form.team }}}}", "by": "{{{{ user.id }}}}"}}'
users = ["U0001", "U0002"]

[[form]]
name = "deploy"
title = "Deploy a service"
submit = "Deploy"
action = "deploy"
inputs = [
  {{ name = "service", label = "Service", type = "text", placeholder = "checkout" }},
  {{ name = "env", label = "Environment", type = "select", options = ["staging", "production"], initial = "staging" }},
  {{ name = "replicas", type = "number", min = 1, max = 5, required = false }},
  {{ name = "team", label = "Team", type = "external_select", url = "http://{internal}/options" }},
  {{ name = "notes", type = "multiline", required = false }},
]

[[command]]
name = "deploy"
form = "deploy"
users = ["U0001", "U0002"]

[routing]
default = {{ channels = ["ops"] }}
"#
    )
}

fn values(service: &str, env: &str, replicas: &str, team: Option<&str>) -> Value {
    let team = match team {
        Some(t) => {
            json!({"type": "external_select", "selected_option": {"text": {"type": "plain_text", "text": t}, "value": t}})
        }
        None => json!({"type": "external_select", "selected_option": null}),
    };
    json!({
        "service": {"service": {"type": "plain_text_input", "value": service}},
        "env": {"env": {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": env}, "value": env}}},
        "replicas": {"replicas": {"type": "number_input", "value": replicas}},
        "team": {"sluice_form_opt:deploy:team": team},
        "notes": {"notes": {"type": "plain_text_input", "value": null}},
    })
}

async fn the_modal(sim: &Simulator) -> sluice_sim::model::View {
    wait_until("the form's modal", Duration::from_secs(10), || {
        sim.views()
            .iter()
            .any(|v| v.callback_id.as_deref() == Some("sluice_form:deploy"))
    })
    .await;
    sim.views()
        .into_iter()
        .find(|v| v.callback_id.as_deref() == Some("sluice_form:deploy"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_checks_its_fields_and_runs_its_action_once() {
    let s = start(&["U0001", "U0002", "U0003"], config).await;
    let (sim, sluice, internal) = (&s.sim, &s.sluice, &s.internal);

    // Not permitted: refused, no modal.
    let d = sim
        .slash_command("/ops", "deploy", "ops", "U0003")
        .await
        .unwrap();
    assert!(d.acked());
    wait_until("the refusal", Duration::from_secs(10), || {
        sim.ephemerals(Some("U0003"))
            .iter()
            .any(|e| e.text.contains("not allowed to run `/ops deploy`"))
    })
    .await;
    assert!(sim.views().is_empty());

    // The command opens the modal with the trigger of the command, within its life.
    let d = sim
        .slash_command("/ops", "deploy", "ops", "U0001")
        .await
        .unwrap();
    assert!(d.acked() && d.elapsed < Duration::from_secs(3), "{d:?}");
    let view = the_modal(sim).await;
    let blocks = view.definition["blocks"].as_array().unwrap().clone();
    assert_eq!(blocks.len(), 5, "{blocks:?}");
    assert_eq!(blocks[0]["block_id"], "service");
    assert_eq!(blocks[1]["element"]["initial_option"]["value"], "staging");
    assert_eq!(blocks[2]["optional"], true);
    assert_eq!(blocks[3]["element"]["type"], "external_select");

    // Typing "chec" into the external select: the endpoint is asked (signed), the options narrowed.
    let o = sim
        .options_request("sluice_form_opt:deploy:team", "team", "chec", "U0001")
        .await
        .unwrap();
    assert_eq!(o.status, 200);
    let answer = o.json().unwrap();
    assert_eq!(
        answer["options"],
        json!([{"text": {"type": "plain_text", "text": "Checkout team"}, "value": "checkout"}]),
        "{answer}"
    );
    let asked = internal.received_at("/options");
    assert_eq!(asked.len(), 1);
    assert!(asked[0].signed());
    assert_eq!(asked[0].json()["value"], "chec");
    assert_eq!(asked[0].json()["user"], "U0001");
    // The endpoint failing: an empty list in time, never an error to Slack.
    internal.always("/options", Answer::Status(500));
    let o = sim
        .options_request("sluice_form_opt:deploy:team", "team", "pay", "U0001")
        .await
        .unwrap();
    assert_eq!(o.status, 200, "{}", o.body);
    assert!(o.elapsed < Duration::from_secs(3));
    assert_eq!(o.json().unwrap()["options"], json!([]));
    internal.always("/options", teams());

    // A required field left empty: its error, the modal stays open, nothing runs.
    let empty = sim
        .submit_view(
            &view.id,
            "U0001",
            values("  ", "staging", "", Some("checkout")),
        )
        .await
        .unwrap();
    let a: Value = serde_json::from_str(&empty.body).unwrap();
    assert_eq!(a["response_action"], "errors", "{a}");
    assert_eq!(a["errors"]["service"], "This field is required.", "{a}");
    // A number out of range and an external select left empty: both fields' errors at once.
    let bad = sim
        .submit_view(&view.id, "U0001", values("checkout", "staging", "9", None))
        .await
        .unwrap();
    let a: Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(a["response_action"], "errors", "{a}");
    assert_eq!(a["errors"]["replicas"], "must be between 1 and 5", "{a}");
    assert_eq!(a["errors"]["team"], "This field is required.", "{a}");
    // A choice that was never offered (a forged submission): refused server-side.
    let forged = sim
        .submit_view(
            &view.id,
            "U0001",
            values("checkout", "qa", "2", Some("checkout")),
        )
        .await
        .unwrap();
    let a: Value = serde_json::from_str(&forged.body).unwrap();
    assert!(
        a["errors"]["env"]
            .as_str()
            .unwrap()
            .contains("not one of the choices"),
        "{a}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        internal.received_at("/deploy").is_empty(),
        "nothing runs while the form is wrong"
    );

    // Valid: the modal closes, the action runs once with the values as `form.*`, the result is posted in #ops.
    let ok = sim
        .submit_view(
            &view.id,
            "U0001",
            values("checkout", "production", "3", Some("checkout")),
        )
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert!(!ok.body.contains("errors"), "{}", ok.body);
    // Submitted again (a retry, or a second replica seeing it): nothing more runs.
    let again = sim
        .submit_view(
            &view.id,
            "U0001",
            values("checkout", "production", "3", Some("checkout")),
        )
        .await
        .unwrap();
    assert!(!again.body.contains("errors"), "{}", again.body);
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
    let deploys = internal.received_at("/deploy");
    assert_eq!(deploys.len(), 1, "exactly once: {deploys:?}");
    assert!(deploys[0].signed());
    assert_eq!(
        deploys[0].json(),
        json!({"service": "checkout", "env": "production", "replicas": "3", "team": "checkout", "by": "U0001"})
    );
    wait_until("the submitter told", Duration::from_secs(10), || {
        sim.ephemerals(Some("U0001"))
            .iter()
            .any(|e| e.text.contains("Running Deploy"))
    })
    .await;

    // Every submission is audited: the invalid ones, the run, the repeat.
    let records = audited(sluice.addr, "form.deploy").await;
    let results: Vec<&str> = records
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|r| **r == "refused: invalid").count(),
        3,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| r.starts_with("ok: run run_form_"))
            .count(),
        1,
        "{results:?}"
    );
    assert!(
        results.contains(&"refused: already submitted"),
        "{results:?}"
    );
    let commands = audited(sluice.addr, "command.deploy").await;
    assert!(
        commands
            .iter()
            .any(|r| r["actor"] == "U0001" && r["result"] == "form opened: deploy"),
        "{commands:?}"
    );
}

fn two_step_config(p: &Places) -> String {
    let internal = p.internal;
    format!(
        r#"
[actions]
command = "/ops"
users = ["U0001"]
outgoing_secret_file = "outgoing"

[[action]]
name = "release"
label = "Release"
url = "http://{internal}/release"
body = '{{"service": "{{{{ form.service }}}}", "version": "{{{{ form.version }}}}", "flags": "{{{{ form.flags | join(",") }}}}"}}'

[[form]]
name = "release"
title = "Release (1 of 2)"
submit = "Next"
next = "release_version"
inputs = [{{ name = "service", type = "select", options = ["checkout", "search"] }}]

[[form]]
name = "release_version"
title = "Release (2 of 2)"
submit = "Release"
action = "release"
inputs = [
  {{ name = "version", type = "text" }},
  {{ name = "flags", type = "checkboxes", options = ["canary", "dry-run"], required = false }},
]

[[command]]
name = "release"
form = "release"

[routing]
default = {{ channels = ["ops"] }}
"#
    )
}

fn view_of(sim: &Simulator, callback: &str) -> Option<sluice_sim::model::View> {
    sim.views()
        .into_iter()
        .find(|v| v.callback_id.as_deref() == Some(callback))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_step_form_pushes_its_second_step_and_runs_with_both_steps_values() {
    let s = start(&["U0001"], two_step_config).await;
    let (sim, sluice, internal) = (&s.sim, &s.sluice, &s.internal);

    sim.slash_command("/ops", "release", "ops", "U0001")
        .await
        .unwrap();
    wait_until("the first step", Duration::from_secs(10), || {
        view_of(sim, "sluice_form:release").is_some()
    })
    .await;
    let first = view_of(sim, "sluice_form:release").unwrap();
    let choose = |v: &str| json!({"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": v}, "value": v}});
    let next = sim
        .submit_view(
            &first.id,
            "U0001",
            json!({"service": {"service": choose("search")}}),
        )
        .await
        .unwrap();
    let a: Value = serde_json::from_str(&next.body).unwrap();
    assert_eq!(a["response_action"], "push", "{a}");
    let second = view_of(sim, "sluice_form:release_version").expect("the second step, pushed");
    assert_eq!(second.previous_view_id.as_deref(), Some(first.id.as_str()));
    assert!(
        internal.received_at("/release").is_empty(),
        "nothing runs after the first step"
    );

    // The second step checks its own fields.
    let empty = sim
        .submit_view(
            &second.id,
            "U0001",
            json!({"version": {"version": {"type": "plain_text_input", "value": ""}}}),
        )
        .await
        .unwrap();
    let a: Value = serde_json::from_str(&empty.body).unwrap();
    assert_eq!(a["errors"]["version"], "This field is required.", "{a}");

    let done = sim
        .submit_view(
            &second.id,
            "U0001",
            json!({"version": {"version": {"type": "plain_text_input", "value": "1.4.2"}},
                   "flags": {"flags": {"type": "checkboxes", "selected_options": [
                       {"text": {"type": "plain_text", "text": "canary"}, "value": "canary"}]}}}),
        )
        .await
        .unwrap();
    assert!(!done.body.contains("errors"), "{}", done.body);
    wait_until("the release called", Duration::from_secs(15), || {
        internal.received_at("/release").len() == 1
    })
    .await;
    assert_eq!(
        internal.received_at("/release")[0].json(),
        json!({"service": "search", "version": "1.4.2", "flags": "canary"}),
        "the action sees both steps' values"
    );
    let records = audited(sluice.addr, "form.release").await;
    assert!(
        records
            .iter()
            .any(|r| r["result"] == "ok: next step release_version"),
        "{records:?}"
    );
}

fn button_config(p: &Places) -> String {
    let internal = p.internal;
    format!(
        r#"
[actions]
outgoing_secret_file = "outgoing"

[[action]]
name = "purge"
label = "Purge"
url = "http://{internal}/purge"
body = '{{"cache": "{{{{ form.cache }}}}"}}'
users = ["U0001"]
approval = {{ approvers = {{ users = ["U0003"] }} }}

[[form]]
name = "purge"
title = "Purge a cache"
action = "purge"
inputs = [{{ name = "cache", type = "select", options = ["cdn", "api"] }}]

[routing]
default = {{ channels = ["ops"] }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_opens_a_form_and_an_action_that_needs_approval_asks_for_it() {
    let s = start(&["U0001", "U0002", "U0003"], button_config).await;
    let (sim, sluice, internal) = (&s.sim, &s.sluice, &s.internal);

    // A message with the form's button, posted through the API.
    let posted = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", sluice.addr))
        .bearer_auth(KEY)
        .json(&json!({"channel": "ops", "text": "Caches", "blocks": [
            {"type": "actions", "elements": [{"type": "button", "action_id": "sluice_form_open:purge",
                                               "text": {"type": "plain_text", "text": "Purge…"}}]}]}))
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_success(), "{:?}", posted.text().await);
    wait_until("the message", Duration::from_secs(10), || {
        sim.messages("ops").iter().any(|m| m.text == "Caches")
    })
    .await;
    let m = sim
        .messages("ops")
        .into_iter()
        .find(|m| m.text == "Caches")
        .unwrap();

    // Someone the action does not list: refused, no modal.
    sim.click_button(&m.channel, &m.ts, "sluice_form_open:purge", "U0002")
        .await
        .unwrap();
    wait_until("the refusal", Duration::from_secs(10), || {
        sim.ephemerals(Some("U0002"))
            .iter()
            .any(|e| e.text.contains("not allowed to run Purge"))
    })
    .await;
    assert!(sim.views().is_empty());

    sim.click_button(&m.channel, &m.ts, "sluice_form_open:purge", "U0001")
        .await
        .unwrap();
    wait_until("the modal", Duration::from_secs(10), || {
        view_of(sim, "sluice_form:purge").is_some()
    })
    .await;
    let view = view_of(sim, "sluice_form:purge").unwrap();
    let done = sim
        .submit_view(
            &view.id,
            "U0001",
            json!({"cache": {"cache": {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "cdn"}, "value": "cdn"}}}}),
        )
        .await
        .unwrap();
    assert!(!done.body.contains("errors"), "{}", done.body);

    // The approval card, the submitter told; nothing runs until it is approved, then once with the form's values.
    wait_until("the approval card", Duration::from_secs(15), || {
        sim.messages("ops")
            .iter()
            .any(|m| m.text.contains("Run Purge: the form Purge a cache"))
    })
    .await;
    wait_until("the submitter told", Duration::from_secs(10), || {
        sim.ephemerals(Some("U0001"))
            .iter()
            .any(|e| e.text.contains("Purge needs an approval"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(internal.received_at("/purge").is_empty());
    let card = sim
        .messages("ops")
        .into_iter()
        .find(|m| m.text.contains("Run Purge"))
        .unwrap();
    sim.click_button(&card.channel, &card.ts, "sluice_approval_approve", "U0003")
        .await
        .unwrap();
    wait_until("the purge called", Duration::from_secs(15), || {
        internal.received_at("/purge").len() == 1
    })
    .await;
    assert_eq!(
        internal.received_at("/purge")[0].json(),
        json!({"cache": "cdn"})
    );
    let records = audited(sluice.addr, "form.purge").await;
    assert!(
        records.iter().any(|r| r["result"]
            .as_str()
            .unwrap_or_default()
            .starts_with("approval requested: apr_")),
        "{records:?}"
    );
}
