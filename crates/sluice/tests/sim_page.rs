//! The Slack simulator's page in a real browser: Debian's Chromium, headless, driven over WebDriver (chromedriver) by
//! fantoccini, with the real `sluice serve` behind the simulator. A person on the page acknowledges an alert card by
//! clicking it (the card changes in place, pushed over server-sent events), types `/ops help` into the message box
//! and sees the ephemeral answer only they can see, opens a command's form as a dialog, picks a team from the options
//! the app's endpoint offers as they type, and gets the server's error under the field it is about, replies in a thread and reacts from the picker, and sees `&lt;!channel&gt;` as the
//! literal text Slack would show.
//!
//! Without `chromium` and `chromedriver` the test says it skipped, unless `SLUICE_REQUIRE_BROWSER=1` (CI), when it
//! fails. On failure a screenshot of the page is saved to `target/browser-screenshots/`.

mod common;

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;
use sluice_sim::{SimConfig, Simulator};

use common::browser::{click, type_into, wait_text, Browser};
use common::fixture::Fixture;
use common::proc::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_acks_a_card_types_a_command_and_meets_a_form_error_in_the_simulator_page() {
    let Some(browser) = Browser::open("simulator page browser test").await else {
        return;
    };
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into()],
        ..SimConfig::default()
    });
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // The internal system answers the team field's options; the form's action is never reached: the test stops at
    // the field's error.
    let s = Fixture::builder()
        .sim((sim, sim_run))
        .signed()
        .response_urls()
        .internal_stub(json!({"options": [
            "payments", {"text": "Checkout team", "value": "checkout"}
        ]}))
        .config(|p| {
            let internal = p.internal;
            format!(
                r#"
[actions]
command = "/ops"
outgoing_secret_file = "outgoing"

[[action]]
name = "deploy"
label = "Deploy"
url = "http://127.0.0.1:9/deploy"

[[form]]
name = "deploy"
title = "Deploy a service"
submit = "Deploy"
action = "deploy"
inputs = [
  {{ name = "service", label = "Service", type = "text", placeholder = "checkout" }},
  {{ name = "team", label = "Team", type = "external_select", url = "http://{internal}/options" }},
]

[[command]]
name = "deploy"
form = "deploy"

[routing]
default = {{ channels = ["alerts"] }}
"#
            )
        })
        .start()
        .await;

    let client = browser.client.clone();
    let page = s.sim_run.url();
    let base = format!("http://{}", s.addr());
    browser
        .run(
            "simulator-page",
            walk_through(client, page, base, s.sim.clone()),
        )
        .await;
}

async fn walk_through(c: Client, page: String, base: String, sim: Simulator) {
    c.goto(&format!("{page}/#alerts")).await.unwrap();
    wait_text(&c, "#live-status", "the stream to open", |t| t == "live").await;
    wait_text(&c, "#title", "the channel", |t| t == "#alerts").await;

    // A text as Slack stores it, escaped: the page shows the literal `<!channel>`, not a mention.
    let posted: serde_json::Value = reqwest::Client::new()
        .post(format!("{page}/api/chat.postMessage"))
        .bearer_auth(sluice_sim::DEFAULT_TOKEN)
        .json(&json!({"channel": "alerts", "text": "Typed &lt;!channel&gt; in a runbook :rocket:"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["ok"], true, "{posted}");
    wait_text(&c, "#messages", "the escaped entity as text", |t| {
        t.contains("Typed <!channel> in a runbook 🚀")
    })
    .await;
    assert!(
        c.find(Locator::Css(".mention.broadcast")).await.is_err(),
        "an escaped <!channel> is not drawn as a mention"
    );

    // An alert: its card arrives without a reload; Acknowledge is clicked in the page and the card changes.
    c.execute("window.__notReloaded = 42;", vec![])
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .bearer_auth(KEY)
        .json(
            &json!({"title": "Checkout latency high", "severity": "critical", "status": "firing",
                      "source": "e2e", "service": "checkout"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    wait_text(&c, "#messages", "the alert card", |t| {
        t.contains("Checkout latency high")
    })
    .await;
    let ack = "button.bk.live[data-action='sluice_ack']";
    wait_for(&c, ack, "the live Acknowledge button").await;
    click(&c, ack).await;
    wait_text(
        &c,
        "#messages",
        "the card acknowledged by the clicker",
        |t| t.contains("Acknowledged by @alice"),
    )
    .await;
    let kept = c
        .execute("return window.__notReloaded;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(42), "updated live, not by reloading the page");

    // A slash command typed in the message box: the answer is ephemeral, shown to the person who typed it.
    type_into(&c, "#message-input", "/ops help").await;
    click(&c, "#send").await;
    wait_text(&c, ".ephemeral", "the command's ephemeral answer", |t| {
        t.contains("Only visible to you") && t.contains("/ops")
    })
    .await;
    let d = sim
        .deliveries()
        .into_iter()
        .find(|d| d.kind == "commands")
        .expect("the command reached Sluice");
    assert_eq!(d.payload["command"], "/ops");
    assert_eq!(d.payload["text"], "help");
    assert_eq!(d.payload["user_id"], "U0001");
    assert_eq!(d.status, 200);

    // A form: the modal is a dialog; submitted empty, Sluice's error shows under the field and the modal stays.
    type_into(&c, "#message-input", "/ops deploy").await;
    click(&c, "#send").await;
    wait_text(&c, "#modal-title", "the form's dialog", |t| {
        t == "Deploy a service"
    })
    .await;
    // The team is an external select: typing asks the app, whose endpoint's options fill the list.
    type_into(&c, ".input[data-block='team'] input", "chec").await;
    let offered = "return [...document.querySelectorAll(\".input[data-block='team'] datalist option\")].map(o => o.value);";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let shown = c.execute(offered, vec![]).await.unwrap();
        // Sluice narrows them to what was typed.
        if shown == json!(["Checkout team"]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the endpoint's options in the list; shown {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    type_into(&c, ".input[data-block='team'] input", "Checkout team").await;
    click(&c, "#modal-submit").await;
    let error = wait_text(
        &c,
        ".input[data-block='service'] .field-error",
        "the field's error",
        |t| !t.is_empty(),
    )
    .await;
    assert!(!error.is_empty());
    wait_text(&c, "#modal-title", "the dialog still open", |t| {
        t == "Deploy a service"
    })
    .await;
    // The submission carried the option the person picked, by its value, as Slack sends it.
    let submitted = sim
        .deliveries()
        .into_iter()
        .rfind(|d| d.payload["type"] == "view_submission")
        .expect("the dialog was submitted to Sluice");
    assert_eq!(
        submitted.payload["view"]["state"]["values"]["team"]["sluice_form_opt:deploy:team"]
            ["selected_option"]["value"],
        "checkout",
        "{}",
        submitted.payload
    );
    click(&c, "#modal-cancel").await;
    wait_gone(&c, "#modal", "the dialog closed by Cancel").await;

    // A thread reply typed in the message box, and a reaction from the picker: both on the card, both sent to Sluice.
    let card =
        "document.querySelector('.msg[data-ts] .hdr, .msg[data-ts] .sec').closest('.msg[data-ts]')";
    c.execute(
        &format!("{card}.querySelector('.reply-btn').click();"),
        vec![],
    )
    .await
    .unwrap();
    type_into(&c, "#message-input", "on it").await;
    click(&c, "#send").await;
    wait_text(&c, ".thread", "the reply in the card's thread", |t| {
        t.contains("1 reply") && t.contains("on it")
    })
    .await;
    c.execute(
        &format!("{card}.querySelector('.react-btn').click();"),
        vec![],
    )
    .await
    .unwrap();
    click(&c, "#picker button[data-emoji='rocket']").await;
    wait_text(&c, ".reaction", "the reaction on the message", |t| {
        t.contains("🚀 1")
    })
    .await;
    let events: Vec<String> = sim
        .deliveries()
        .iter()
        .filter(|d| d.kind == "events")
        .filter_map(|d| d.payload["event"]["type"].as_str().map(String::from))
        .collect();
    assert!(
        events.iter().any(|e| e == "message") && events.iter().any(|e| e == "reaction_added"),
        "{events:?}"
    );

    // Someone else's screen: the ephemeral answer is not theirs to see.
    c.find(Locator::Css("#actor"))
        .await
        .unwrap()
        .select_by_value("U0002")
        .await
        .unwrap();
    wait_text(
        &c,
        "#messages",
        "bob's view without alice's ephemeral",
        |t| t.contains("Checkout latency high") && !t.contains("Only visible to you"),
    )
    .await;
}

async fn wait_for(c: &Client, css: &str, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.find(Locator::Css(css)).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what} ({css})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_gone(c: &Client, css: &str, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.find(Locator::Css(css)).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what} ({css} still there)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
