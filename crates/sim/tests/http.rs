//! The simulator's HTTP surface driven through `router()` with `oneshot`: what Sluice (or a person
//! with curl) would see.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};
use sluice_sim::{Faults, SimConfig, Simulator, DEFAULT_TOKEN};
use sluice_slack_wire::limits;

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn token_is_checked_from_header_or_form_field() {
    let (sim, app) = sim_with_alerts();
    let cases: &[(Option<&str>, Option<&str>)] = &[
        (None, Some("not_authed")),
        (Some(""), Some("not_authed")),
        (Some("xoxb-wrong"), Some("invalid_auth")),
        (Some(DEFAULT_TOKEN), None),
    ];
    for (token, want) in cases {
        let r = api_with(&app, "auth.test", *token, json!({})).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "logical errors are HTTP 200 like Slack"
        );
        assert_eq!(r.error().as_deref(), *want, "token {token:?}");
    }
    let r = api_form(&app, "auth.test", &[("token", DEFAULT_TOKEN)]).await;
    assert_eq!(r.json()["ok"], true);
    assert_eq!(r.json()["team_id"], "T0SIM");
    let r = api_form(
        &app,
        "chat.postMessage",
        &[("token", "nope"), ("channel", "alerts"), ("text", "x")],
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("invalid_auth"));
    assert!(
        sim.messages("alerts").is_empty(),
        "a refused call posts nothing"
    );
    // Every call was recorded, and the token was not.
    let calls = sim.calls();
    assert_eq!(calls.len(), 6);
    assert!(calls.iter().all(|c| c.args.get("token").is_none()));
}

#[tokio::test]
async fn missing_scope_is_reported_with_the_scope_needed() {
    let sim = Simulator::new(SimConfig {
        scopes: Some(vec!["chat:write".into()]),
        channels: vec!["a".into()],
        ..SimConfig::default()
    });
    let app = sim.router();
    assert_eq!(
        api(
            &app,
            "chat.postMessage",
            json!({"channel": "a", "text": "x"})
        )
        .await
        .json()["ok"],
        true
    );
    let r = api(&app, "users.info", json!({"user": "U0001"})).await;
    assert_eq!(r.error().as_deref(), Some("missing_scope"));
    assert_eq!(r.json()["needed"], "users:read");
}

#[tokio::test]
async fn unknown_method_and_bad_json_are_errors_not_crashes() {
    let (_sim, app) = sim_with_alerts();
    assert_eq!(
        api(&app, "apps.uninstall", json!({}))
            .await
            .error()
            .as_deref(),
        Some("unknown_method")
    );
    let r = post_raw(
        &app,
        "/api/chat.postMessage",
        "application/json",
        "{not json",
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("invalid_json"));
}

// ---------------------------------------------------------------- posting

#[tokio::test]
async fn posts_are_read_back_in_order_with_increasing_ts_and_threads() {
    let (sim, app) = sim_unlimited();
    let alerts_id = sim.channels()[0].id.clone();
    let mut last_ts = String::new();
    for (i, channel) in ["alerts", "#alerts", alerts_id.as_str()]
        .into_iter()
        .enumerate()
    {
        let r = api(
            &app,
            "chat.postMessage",
            json!({"channel": channel, "text": format!("m{i}")}),
        )
        .await;
        let body = r.json();
        assert_eq!(body["ok"], true, "{body}");
        assert_eq!(
            body["channel"],
            alerts_id.as_str(),
            "the answer names the channel by id"
        );
        let ts = body["ts"].as_str().unwrap().to_string();
        assert_eq!(body["message"]["ts"], ts.as_str());
        assert!(ts > last_ts, "{ts} after {last_ts}");
        assert_eq!(
            ts.split_once('.').map(|(s, m)| (s.len(), m.len())),
            Some((10, 6))
        );
        last_ts = ts;
    }
    let parent = sim.messages("alerts")[0].ts.clone();
    let reply = api(
        &app,
        "chat.postMessage",
        json!({"channel": "alerts", "text": "r1", "thread_ts": parent}),
    )
    .await
    .json();
    assert_eq!(reply["message"]["thread_ts"], parent.as_str());
    // Replying to a reply lands in the parent's thread, as in Slack.
    let r2 = api(&app, "chat.postMessage", json!({"channel": "alerts", "text": "r2", "thread_ts": reply["ts"], "reply_broadcast": true})).await.json();
    assert_eq!(r2["message"]["thread_ts"], parent.as_str());
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "alerts", "text": "x", "thread_ts": "1.000000"}),
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("thread_not_found"));

    let msgs = sim.messages("#alerts");
    let texts: Vec<&str> = msgs.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m0", "m1", "m2", "r1", "r2"]);
    assert!(msgs[4].reply_broadcast);
    assert_eq!(
        sim.messages(&alerts_id),
        msgs,
        "by id and by name are the same channel"
    );

    // History: newest first, top level plus broadcast replies, with thread info on the parent.
    let h = api(&app, "conversations.history", json!({"channel": alerts_id}))
        .await
        .json();
    let texts: Vec<&str> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["r2", "m2", "m1", "m0"]);
    assert_eq!(h["messages"][3]["reply_count"], 2);
    let rep = api(
        &app,
        "conversations.replies",
        json!({"channel": alerts_id, "ts": parent}),
    )
    .await
    .json();
    assert_eq!(rep["messages"].as_array().unwrap().len(), 3);
    // Reads take a channel's id only, as Slack's do: its name is channel_not_found.
    for method in [
        "conversations.history",
        "conversations.replies",
        "conversations.info",
    ] {
        let r = api(&app, method, json!({"channel": "alerts", "ts": parent})).await;
        assert_eq!(r.error().as_deref(), Some("channel_not_found"), "{method}");
    }
}

#[tokio::test]
async fn posting_to_an_unknown_channel_is_refused_as_slack_does_unless_auto_create_is_on() {
    let (sim, app) = sim_unlimited();
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "#new-one", "text": "hi"}),
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("channel_not_found"));
    assert!(!sim.channels().iter().any(|c| c.name == "new-one"));
    // An id that does not exist is never a name.
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "C999999", "text": "hi"}),
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("channel_not_found"));
    // A user id opens a DM.
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "U0001", "text": "psst"}),
    )
    .await
    .json();
    assert!(r["channel"].as_str().unwrap().starts_with('D'), "{r}");
    assert_eq!(
        r["message"]["team"], "T0SIM",
        "message.team is the workspace"
    );

    let lenient = Simulator::new(SimConfig {
        auto_create_channels: true,
        ..SimConfig::default()
    });
    let r = api(
        &lenient.router(),
        "chat.postMessage",
        json!({"channel": "new-one", "text": "hi"}),
    )
    .await
    .json();
    assert_eq!(r["ok"], true, "{r}");
    assert!(lenient
        .channels()
        .iter()
        .any(|c| c.name == "new-one" && c.messages == 1));
}

#[tokio::test]
async fn channels_the_bot_is_not_in_and_users_not_in_a_channel_are_refused_as_slack_does() {
    let (sim, app) = sim_unlimited();
    let made = post_json(
        &app,
        "/sim/channels",
        json!({"name": "secret", "private": true, "members": ["U0001"]}),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK);
    assert_eq!(made.json()["channel"]["is_member"], false);
    post_json(
        &app,
        "/sim/channels",
        json!({"name": "lobby", "members": ["U0001"]}),
    )
    .await;
    post_json(
        &app,
        "/sim/channels",
        json!({"name": "team", "members": ["U0001"], "bot": true}),
    )
    .await;
    // A private channel the bot is not in does not exist for it.
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "secret", "text": "x"}),
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("channel_not_found"));
    // A public one takes the post only with chat:write.public, which the default grants.
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "lobby", "text": "x"}),
    )
    .await;
    assert_eq!(r.json()["ok"], true);
    let narrow = Simulator::new(SimConfig {
        scopes: Some(vec!["chat:write".into()]),
        ..SimConfig::default()
    });
    let narrow_app = narrow.router();
    post_json(&narrow_app, "/sim/channels", json!({"name": "lobby"})).await;
    let r = api(
        &narrow_app,
        "chat.postMessage",
        json!({"channel": "lobby", "text": "x"}),
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("not_in_channel"));

    // An ephemeral reaches only a member of the channel.
    let eph = |user: &str| json!({"channel": "team", "user": user, "text": "only you"});
    assert_eq!(
        api(&app, "chat.postEphemeral", eph("U0001")).await.json()["ok"],
        true
    );
    let r = api(&app, "chat.postEphemeral", eph("U0002")).await;
    assert_eq!(r.error().as_deref(), Some("user_not_in_channel"));
    assert_eq!(sim.ephemerals(Some("U0002")).len(), 0);

    // Mistakes in the request say what is wrong.
    for (body, says) in [
        (json!({"name": "Bad Name"}), "not a valid channel name"),
        (json!({"name": "team"}), "exists"),
        (json!({"name": "other", "members": ["U9999"]}), "no user"),
        (json!({"nom": "x"}), "invalid body"),
    ] {
        let r = post_json(&app, "/sim/channels", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.json()["error"].as_str().unwrap().contains(says), "{says}");
    }
}

#[tokio::test]
async fn update_changes_content_counts_edits_and_delete_removes() {
    let (sim, app) = sim_unlimited();
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*firing*"}}]);
    let posted = api(&app, "chat.postMessage", json!({"channel": "alerts", "text": "firing", "blocks": blocks, "metadata": {"event_type": "sluice_alert", "event_payload": {"id": "a1"}}})).await.json();
    // chat.postMessage takes a channel's name; every later call about the message needs the id it answers.
    let (ts, ch) = (posted["ts"].clone(), posted["channel"].clone());
    let new_blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*resolved*"}}]);
    let r = api(
        &app,
        "chat.update",
        json!({"channel": ch, "ts": ts, "text": "resolved", "blocks": new_blocks}),
    )
    .await
    .json();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["ts"], ts);
    let m = &sim.messages("alerts")[0];
    assert_eq!((m.text.as_str(), m.edits), ("resolved", 1));
    assert_eq!(m.blocks, new_blocks);
    assert_eq!(
        m.metadata.as_ref().unwrap()["event_payload"]["id"],
        "a1",
        "update keeps metadata it does not mention"
    );

    for (args, err) in [
        (
            json!({"channel": ch, "ts": "1.000001", "text": "x"}),
            "message_not_found",
        ),
        // A name, even of the channel the message is in: chat.update takes ids only, as Slack's newer methods do.
        (
            json!({"channel": "alerts", "ts": ts, "text": "x"}),
            "channel_not_found",
        ),
        (
            json!({"channel": "#alerts", "ts": ts, "text": "x"}),
            "channel_not_found",
        ),
        (
            json!({"channel": "nowhere", "ts": ts, "text": "x"}),
            "channel_not_found",
        ),
        (json!({"channel": ch, "ts": ts}), "no_text"),
    ] {
        assert_eq!(
            api(&app, "chat.update", args.clone())
                .await
                .error()
                .as_deref(),
            Some(err),
            "{args}"
        );
    }
    assert_eq!(
        api(&app, "chat.delete", json!({"channel": ch, "ts": ts}))
            .await
            .json()["ok"],
        true
    );
    assert!(sim.messages("alerts").is_empty());
    assert_eq!(
        api(&app, "chat.delete", json!({"channel": ch, "ts": ts}))
            .await
            .error()
            .as_deref(),
        Some("message_not_found")
    );
}

#[tokio::test]
async fn form_bodies_carry_blocks_as_a_json_string() {
    let (sim, app) = sim_unlimited();
    let blocks = r#"[{"type":"header","text":{"type":"plain_text","text":"Hi"}}]"#;
    let r = api_form(
        &app,
        "chat.postMessage",
        &[
            ("token", DEFAULT_TOKEN),
            ("channel", "alerts"),
            ("text", "hi"),
            ("blocks", blocks),
        ],
    )
    .await;
    assert_eq!(r.json()["ok"], true, "{}", r.text);
    assert_eq!(sim.messages("alerts")[0].blocks[0]["type"], "header");
    let r = api_form(
        &app,
        "chat.postMessage",
        &[
            ("token", DEFAULT_TOKEN),
            ("channel", "alerts"),
            ("text", "hi"),
            ("blocks", "[{"),
        ],
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("invalid_blocks_format"));
}

// ---------------------------------------------------------------- Block Kit

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn button(action_id: &str, text: &str) -> Value {
    json!({"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}})
}

fn x(n: usize) -> String {
    "x".repeat(n)
}

#[tokio::test]
async fn block_kit_rejections_match_slack() {
    let (sim, app) = sim_unlimited();
    let plain = |t: String| json!({"type": "plain_text", "text": t});
    let buttons = |n: usize| json!([{"type": "actions", "elements": (0..n).map(|i| button(&format!("a{i}"), "ok")).collect::<Vec<_>>()}]);
    // (case, message args, error, a json-pointer the explanation must name)
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("no text or blocks", json!({}), "no_text", ""),
        (
            "empty text and blocks",
            json!({"text": "", "blocks": []}),
            "no_text",
            "",
        ),
        (
            "text over the hard limit",
            json!({"text": x(limits::MESSAGE_TEXT_HARD + 1)}),
            "msg_too_long",
            "",
        ),
        (
            "more attachments than Slack takes",
            json!({"attachments": vec![json!({"text": "a"}); limits::MESSAGE_ATTACHMENTS + 1]}),
            "too_many_attachments",
            "",
        ),
        (
            "attachments not an array",
            json!({"attachments": {"text": "a"}}),
            "invalid_attachments",
            "",
        ),
        (
            "blocks not an array",
            json!({"text": "t", "blocks": {"type": "divider"}}),
            "invalid_blocks",
            "/blocks]",
        ),
        (
            "block not an object",
            json!({"text": "t", "blocks": ["divider"]}),
            "invalid_blocks",
            "/blocks/0]",
        ),
        (
            "unknown block type",
            json!({"text": "t", "blocks": [{"type": "carousel"}]}),
            "invalid_blocks",
            "/blocks/0/type",
        ),
        (
            "too many blocks",
            json!({"text": "t", "blocks": vec![json!({"type": "divider"}); limits::MESSAGE_BLOCKS + 1]}),
            "invalid_blocks",
            "/blocks]",
        ),
        (
            "section text too long",
            json!({"blocks": [section(&x(limits::SECTION_TEXT + 1))]}),
            "invalid_blocks",
            "/blocks/0/text/text",
        ),
        (
            "section without text or fields",
            json!({"blocks": [{"type": "section"}]}),
            "invalid_blocks",
            "/blocks/0]",
        ),
        (
            "too many fields",
            json!({"blocks": [{"type": "section", "fields": vec![plain("f".into()); limits::SECTION_FIELDS + 1]}]}),
            "invalid_blocks",
            "/blocks/0/fields]",
        ),
        (
            "field too long",
            json!({"blocks": [{"type": "section", "fields": [plain(x(limits::SECTION_FIELD_TEXT + 1))]}]}),
            "invalid_blocks",
            "/blocks/0/fields/0/text",
        ),
        (
            "header too long",
            json!({"blocks": [{"type": "header", "text": plain(x(limits::HEADER_TEXT + 1))}]}),
            "invalid_blocks",
            "/blocks/0/text/text",
        ),
        (
            "header in mrkdwn",
            json!({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}]}),
            "invalid_blocks",
            "/blocks/0/text/type",
        ),
        (
            "too many actions",
            json!({"blocks": buttons(limits::ACTIONS_ELEMENTS + 1)}),
            "invalid_blocks",
            "/blocks/0/elements]",
        ),
        (
            "empty actions",
            json!({"blocks": buttons(0)}),
            "invalid_blocks",
            "/blocks/0/elements]",
        ),
        (
            "too many context elements",
            json!({"blocks": [{"type": "context", "elements": vec![plain("c".into()); limits::CONTEXT_ELEMENTS + 1]}]}),
            "invalid_blocks",
            "/blocks/0/elements]",
        ),
        (
            "button text too long",
            json!({"blocks": [{"type": "actions", "elements": [button("a", &x(limits::BUTTON_TEXT + 1))]}]}),
            "invalid_blocks",
            "/blocks/0/elements/0/text/text",
        ),
        (
            "button value too long",
            json!({"blocks": [{"type": "actions", "elements": [{"type": "button", "text": plain("b".into()), "value": x(limits::BUTTON_VALUE + 1)}]}]}),
            "invalid_blocks",
            "/blocks/0/elements/0/value",
        ),
        (
            "button url too long",
            json!({"blocks": [{"type": "actions", "elements": [{"type": "button", "text": plain("b".into()), "url": x(limits::BUTTON_URL + 1)}]}]}),
            "invalid_blocks",
            "/blocks/0/elements/0/url",
        ),
        (
            "button style unknown",
            json!({"blocks": [{"type": "actions", "elements": [{"type": "button", "text": plain("b".into()), "style": "green"}]}]}),
            "invalid_blocks",
            "/blocks/0/elements/0/style",
        ),
        (
            "action_id too long",
            json!({"blocks": [{"type": "actions", "elements": [button(&x(limits::ID + 1), "b")]}]}),
            "invalid_blocks",
            "/blocks/0/elements/0/action_id",
        ),
        (
            "block_id too long",
            json!({"blocks": [{"type": "divider", "block_id": x(limits::ID + 1)}]}),
            "invalid_blocks",
            "/blocks/0/block_id",
        ),
        (
            "duplicate action_id across blocks",
            json!({"blocks": [{"type": "actions", "elements": [button("ack", "a")]}, {"type": "section", "text": plain("s".into()), "accessory": button("ack", "b")}]}),
            "invalid_blocks",
            "/blocks/1/accessory/action_id",
        ),
        (
            "duplicate block_id",
            json!({"blocks": [{"type": "divider", "block_id": "b"}, {"type": "divider", "block_id": "b"}]}),
            "invalid_blocks",
            "/blocks/1/block_id",
        ),
        (
            "too many select options",
            json!({"blocks": [{"type": "actions", "elements": [{"type": "static_select", "action_id": "s", "options": (0..=limits::SELECT_OPTIONS).map(|i| json!({"text": plain(i.to_string()), "value": i.to_string()})).collect::<Vec<_>>()}]}]}),
            "invalid_blocks",
            "/blocks/0/elements/0/options]",
        ),
        (
            "confirm title too long",
            json!({"blocks": [{"type": "actions", "elements": [{"type": "button", "text": plain("b".into()), "confirm": {"title": plain(x(limits::CONFIRM_TITLE + 1)), "text": plain("t".into()), "confirm": plain("y".into()), "deny": plain("n".into())}}]}]}),
            "invalid_blocks",
            "/blocks/0/elements/0/confirm/title/text",
        ),
        (
            "image without alt_text",
            json!({"blocks": [{"type": "image", "image_url": "https://i"}]}),
            "invalid_blocks",
            "/blocks/0/alt_text",
        ),
        (
            "bad metadata",
            json!({"text": "t", "metadata": {"event_payload": {}}}),
            "invalid_metadata_format",
            "",
        ),
    ];
    for (case, mut args, want, pointer) in cases {
        args["channel"] = json!("alerts");
        let r = api(&app, "chat.postMessage", args).await;
        assert_eq!(r.status, StatusCode::OK, "{case}");
        assert_eq!(
            r.error().as_deref(),
            Some(want),
            "{case}: {}",
            r.text.chars().take(400).collect::<String>()
        );
        if want == "invalid_blocks" {
            let msgs = r.json()["response_metadata"]["messages"].clone();
            let joined = msgs
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            assert!(joined.starts_with("[ERROR] "), "{case}: {joined}");
            assert!(
                joined.contains(&format!("[json-pointer:{pointer}")),
                "{case}: wanted {pointer} in {joined}"
            );
        }
    }
    assert!(
        sim.messages("alerts").is_empty(),
        "nothing rejected was posted"
    );

    // The limits themselves are allowed.
    let at_limits = json!({"channel": "alerts", "text": x(limits::MESSAGE_TEXT_HARD), "blocks": [
        {"type": "header", "text": plain(x(limits::HEADER_TEXT))},
        section(&x(limits::SECTION_TEXT)),
        {"type": "actions", "elements": (0..limits::ACTIONS_ELEMENTS).map(|i| button(&format!("{i:0>255}"), &x(limits::BUTTON_TEXT))).collect::<Vec<_>>()},
    ]});
    let r = api(&app, "chat.postMessage", at_limits).await;
    assert_eq!(
        r.json()["ok"],
        true,
        "{}",
        r.text.chars().take(400).collect::<String>()
    );
}

// ---------------------------------------------------------------- rate limits

#[tokio::test]
async fn a_burst_to_one_channel_gets_429_while_another_channel_is_unaffected() {
    let (sim, app) = sim_with_alerts();
    let post = |ch: &'static str| {
        let app = app.clone();
        async move {
            api(
                &app,
                "chat.postMessage",
                json!({"channel": ch, "text": "x"}),
            )
            .await
        }
    };
    for i in 0..4 {
        assert_eq!(
            post("alerts").await.status,
            StatusCode::OK,
            "post {i} is within the burst"
        );
    }
    let limited = post("alerts").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.retry_after(), Some(1));
    assert_eq!(limited.json(), json!({"ok": false, "error": "ratelimited"}));
    // The same channel by another spelling shares the bucket; another channel has its own.
    assert_eq!(post("#alerts").await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(post("ops").await.json()["ok"], true);

    assert_eq!(sim.count_429(), 2);
    let last_429 = sim.calls().into_iter().rfind(|c| c.status == 429).unwrap();
    assert_eq!(last_429.retry_after, Some(1));
    assert_eq!(last_429.error.as_deref(), Some("ratelimited"));
    assert_eq!(last_429.channel, Some(sim.channels()[0].id.clone()));
    assert_eq!(sim.messages("alerts").len(), 4);

    // A channel made while the app runs shares one bucket across its name and its id.
    post_json(&app, "/sim/channels", json!({"name": "fresh", "bot": true})).await;
    let first = post("#fresh").await.json();
    for _ in 0..3 {
        assert_eq!(post("fresh").await.status, StatusCode::OK);
    }
    let by_id = api(
        &app,
        "chat.postMessage",
        json!({"channel": first["channel"], "text": "x"}),
    )
    .await;
    assert_eq!(by_id.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sim.count_429(), 3);

    // Waiting the advertised time (on the simulator's clock) lets the next post through.
    sim.advance_clock(Duration::from_secs(1));
    assert_eq!(post("alerts").await.status, StatusCode::OK);
}

#[tokio::test]
async fn other_methods_are_limited_per_method_by_tier() {
    let (sim, app) = sim_with_alerts();
    // conversations.list is Tier 2: burst 5, then one every 3 s.
    for _ in 0..5 {
        assert_eq!(
            api(&app, "conversations.list", json!({})).await.status,
            StatusCode::OK
        );
    }
    let r = api(&app, "conversations.list", json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.retry_after(), Some(3));
    assert_eq!(
        api(&app, "users.info", json!({"user": "U0001"}))
            .await
            .status,
        StatusCode::OK
    );
    sim.advance_clock(Duration::from_secs(3));
    assert_eq!(
        api(&app, "conversations.list", json!({})).await.status,
        StatusCode::OK
    );

    let (_, free) = sim_unlimited();
    for _ in 0..30 {
        assert_eq!(
            api(&free, "conversations.list", json!({})).await.status,
            StatusCode::OK
        );
    }
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn error_rate_answers_500_and_zero_answers_none() {
    let (sim, app) = sim_unlimited();
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    for _ in 0..5 {
        let r = api(&app, "auth.test", json!({})).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let r = post_json(&app, "/sim/faults", json!({"error_rate": 0.0})).await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(
            api(&app, "auth.test", json!({})).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        post_json(&app, "/sim/faults", json!({"error_rate": 2.0}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(sim.calls().iter().filter(|c| c.status == 500).count(), 5);
}

#[tokio::test]
async fn method_error_fails_only_that_method() {
    let (sim, app) = sim_unlimited();
    post_json(
        &app,
        "/sim/faults",
        json!({"method_error": ["chat.postMessage", "channel_not_found"]}),
    )
    .await;
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "alerts", "text": "x"}),
    )
    .await;
    assert_eq!(
        (r.status, r.error().as_deref()),
        (StatusCode::OK, Some("channel_not_found"))
    );
    assert_eq!(api(&app, "auth.test", json!({})).await.json()["ok"], true);
    assert!(sim.messages("alerts").is_empty());
    sim.clear_faults();
    assert_eq!(
        api(
            &app,
            "chat.postMessage",
            json!({"channel": "alerts", "text": "x"})
        )
        .await
        .json()["ok"],
        true
    );
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_answer() {
    let (_sim, app) = sim_unlimited();
    post_json(&app, "/sim/faults", json!({"latency_ms": 250})).await;
    let start = tokio::time::Instant::now();
    assert_eq!(api(&app, "auth.test", json!({})).await.json()["ok"], true);
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn outage_answers_503_before_anything_else_until_it_ends() {
    let (sim, app) = sim_unlimited();
    post_json(&app, "/sim/faults", json!({"outage_secs": 10})).await;
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "alerts", "text": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // Even a bad token gets 503: the connection fails before Slack looks at the request.
    assert_eq!(
        api_with(&app, "auth.test", Some("bad"), json!({}))
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        sim.calls().iter().filter(|c| c.status == 503).count(),
        2,
        "outage calls are recorded"
    );
    sim.advance_clock(Duration::from_secs(11));
    assert_eq!(
        api(
            &app,
            "chat.postMessage",
            json!({"channel": "alerts", "text": "x"})
        )
        .await
        .status,
        StatusCode::OK
    );

    sim.set_faults(Faults {
        outage_until: Some(std::time::Instant::now() + Duration::from_secs(3600)),
        ..Faults::default()
    });
    assert_eq!(
        api(&app, "auth.test", json!({})).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        send(
            &app,
            axum::http::Request::delete("/sim/faults")
                .body(axum::body::Body::empty())
                .unwrap()
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        api(&app, "auth.test", json!({})).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn storm_answers_429_to_everything_for_its_duration() {
    let (sim, app) = sim_unlimited();
    let r = post_json(
        &app,
        "/sim/faults",
        json!({"storm_secs": 5, "retry_after": 2}),
    )
    .await;
    assert_eq!(r.json()["storm_retry_after"], 2);
    for method in ["auth.test", "chat.postMessage", "users.info"] {
        let r = api(
            &app,
            method,
            json!({"channel": "alerts", "text": "x", "user": "U0001"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{method}");
        assert_eq!(r.retry_after(), Some(2));
    }
    assert_eq!(sim.count_429(), 3);
    sim.advance_clock(Duration::from_secs(5));
    assert_eq!(
        api(&app, "auth.test", json!({})).await.status,
        StatusCode::OK
    );

    sim.set_faults(Faults {
        storm: Some((Duration::from_secs(1), 7)),
        ..Faults::default()
    });
    assert_eq!(
        api(&app, "auth.test", json!({})).await.retry_after(),
        Some(7)
    );
}

#[tokio::test]
async fn channel_429_limits_only_that_channel_the_given_number_of_times() {
    let (sim, app) = sim_unlimited();
    let alerts_id = sim.channels()[0].id.clone();
    post_json(
        &app,
        "/sim/faults",
        json!({"channel_429": [alerts_id, 4, 2]}),
    )
    .await;
    let post = |ch: &'static str| {
        let app = app.clone();
        async move {
            api(
                &app,
                "chat.postMessage",
                json!({"channel": ch, "text": "x"}),
            )
            .await
        }
    };
    assert_eq!(post("ops").await.status, StatusCode::OK);
    for _ in 0..2 {
        let r = post("alerts").await; // by name, though the fault named the id
        assert_eq!(
            (r.status, r.retry_after()),
            (StatusCode::TOO_MANY_REQUESTS, Some(4))
        );
    }
    assert_eq!(post("alerts").await.status, StatusCode::OK);
    assert_eq!(sim.count_429(), 2);
}

// ---------------------------------------------------------------- webhooks

fn hook_sim() -> (Simulator, axum::Router) {
    let sim = Simulator::new(SimConfig {
        webhooks: vec![
            ("T0SIM/B0001/secret".into(), "deploys".into()),
            ("simple".into(), "alerts".into()),
        ],
        ..SimConfig::default()
    });
    let app = sim.router();
    (sim, app)
}

#[tokio::test]
async fn webhooks_post_into_their_channel_and_answer_like_slack() {
    let (sim, app) = hook_sim();
    let r = post_json(
        &app,
        "/services/T0SIM/B0001/secret",
        json!({"text": "deployed", "blocks": [section("*v1.2*")]}),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "ok"));
    let msgs = sim.messages("deploys");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].blocks[0]["text"]["text"], "*v1.2*");

    let form = serde_urlencoded::to_string([("payload", r#"{"text":"from form"}"#)]).unwrap();
    let r = post_raw(
        &app,
        "/services/simple",
        "application/x-www-form-urlencoded",
        &form,
    )
    .await;
    assert_eq!(r.text, "ok");
    assert_eq!(sim.messages("alerts")[0].text, "from form");

    let parent = msgs[0].ts.clone();
    let r = post_json(
        &app,
        "/services/T0SIM/B0001/secret",
        json!({"text": "reply", "thread_ts": parent}),
    )
    .await;
    assert_eq!(r.text, "ok");
    assert_eq!(
        sim.messages("deploys")[1].thread_ts.as_deref(),
        Some(parent.as_str())
    );

    let cases: Vec<(&str, &str, &str, StatusCode, &str)> = vec![
        (
            "/services/T0SIM/B0001/secret",
            "application/json",
            "{nope",
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            "/services/T0SIM/B0001/secret",
            "application/json",
            "{}",
            StatusCode::BAD_REQUEST,
            "no_text",
        ),
        (
            "/services/T0SIM/B0001/secret",
            "application/json",
            r#"{"text":"t","blocks":[{"type":"nope"}]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_blocks",
        ),
        (
            "/services/unknown",
            "application/json",
            r#"{"text":"t"}"#,
            StatusCode::NOT_FOUND,
            "no_service",
        ),
    ];
    for (path, ct, body, status, text) in cases {
        let r = post_raw(&app, path, ct, body).await;
        assert_eq!((r.status, r.text.as_str()), (status, text), "{path} {body}");
    }
    let calls: Vec<_> = sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "webhook")
        .collect();
    assert_eq!(calls.len(), 7);
    assert_eq!(calls[0].args["hook"], "T0SIM/B0001/secret");
    assert_eq!(calls[4].error.as_deref(), Some("no_text"));
}

#[tokio::test]
async fn webhooks_are_limited_to_about_one_per_second_per_hook() {
    let (sim, app) = hook_sim();
    for _ in 0..4 {
        assert_eq!(
            post_json(&app, "/services/simple", json!({"text": "x"}))
                .await
                .status,
            StatusCode::OK
        );
    }
    let r = post_json(&app, "/services/simple", json!({"text": "x"})).await;
    assert_eq!(
        (r.status, r.text.as_str(), r.retry_after()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(1))
    );
    assert_eq!(
        post_json(&app, "/services/T0SIM/B0001/secret", json!({"text": "x"}))
            .await
            .status,
        StatusCode::OK
    );
    sim.advance_clock(Duration::from_secs(1));
    assert_eq!(
        post_json(&app, "/services/simple", json!({"text": "x"}))
            .await
            .status,
        StatusCode::OK
    );

    post_json(&app, "/sim/faults", json!({"outage_secs": 5})).await;
    assert_eq!(
        post_json(&app, "/services/simple", json!({"text": "x"}))
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

// ---------------------------------------------------------------- the rest of the Web API

#[tokio::test]
async fn conversations_users_and_reactions() {
    let (sim, app) = sim_unlimited();
    let c = api(&app, "conversations.create", json!({"name": "incident-42"}))
        .await
        .json();
    let id = c["channel"]["id"].as_str().unwrap().to_string();
    for (args, err) in [
        (json!({"name": "incident-42"}), "name_taken"),
        (json!({"name": "Bad Name"}), "invalid_name_specials"),
        (json!({}), "invalid_name_required"),
    ] {
        assert_eq!(
            api(&app, "conversations.create", args)
                .await
                .error()
                .as_deref(),
            Some(err)
        );
    }
    let r = api(
        &app,
        "conversations.invite",
        json!({"channel": id, "users": "U0001,U0002"}),
    )
    .await
    .json();
    assert_eq!(r["channel"]["num_members"], 3);
    assert_eq!(
        api(
            &app,
            "conversations.invite",
            json!({"channel": id, "users": "U0001"})
        )
        .await
        .error()
        .as_deref(),
        Some("already_in_channel")
    );
    assert_eq!(
        api(
            &app,
            "conversations.invite",
            json!({"channel": id, "users": "U9999"})
        )
        .await
        .error()
        .as_deref(),
        Some("user_not_found")
    );
    api(
        &app,
        "conversations.setTopic",
        json!({"channel": id, "topic": "db down"}),
    )
    .await;
    let info = api(&app, "conversations.info", json!({"channel": id}))
        .await
        .json();
    assert_eq!(info["channel"]["topic"]["value"], "db down");
    let list = api(&app, "conversations.list", json!({"limit": 2}))
        .await
        .json();
    assert_eq!(list["channels"].as_array().unwrap().len(), 2);
    let next = list["response_metadata"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let rest = api(&app, "conversations.list", json!({"cursor": next}))
        .await
        .json();
    assert_eq!(rest["channels"][0]["name"], "incident-42");

    assert_eq!(
        api(&app, "users.info", json!({"user": "U0001"}))
            .await
            .json()["user"]["name"],
        "alice"
    );
    assert_eq!(
        api(
            &app,
            "users.lookupByEmail",
            json!({"email": "bob@example.com"})
        )
        .await
        .json()["user"]["id"],
        "U0002"
    );
    assert_eq!(
        api(&app, "users.lookupByEmail", json!({"email": "x@y"}))
            .await
            .error()
            .as_deref(),
        Some("users_not_found")
    );
    assert_eq!(
        api(&app, "usergroups.users.list", json!({"usergroup": "S0001"}))
            .await
            .json()["users"],
        json!(["U0001", "U0002"])
    );
    assert_eq!(
        api(&app, "conversations.members", json!({"channel": id}))
            .await
            .json()["members"],
        json!(["U0001", "U0002", "U0BOT"]),
        "the bot and the users invited above"
    );
    api(
        &app,
        "conversations.invite",
        json!({"channel": id, "users": "U0003"}),
    )
    .await;
    let first = api(
        &app,
        "conversations.members",
        json!({"channel": id, "limit": 2}),
    )
    .await
    .json();
    assert_eq!(first["members"], json!(["U0001", "U0002"]));
    let rest = api(
        &app,
        "conversations.members",
        json!({"channel": id, "limit": 2, "cursor": first["response_metadata"]["next_cursor"]}),
    )
    .await
    .json();
    assert_eq!(rest["members"], json!(["U0003", "U0BOT"]));
    assert_eq!(rest["response_metadata"]["next_cursor"], "");

    let ts = api(
        &app,
        "chat.postMessage",
        json!({"channel": id, "text": "x"}),
    )
    .await
    .json()["ts"]
        .clone();
    assert_eq!(
        api(
            &app,
            "reactions.add",
            json!({"channel": id, "timestamp": ts, "name": ":eyes:"})
        )
        .await
        .json()["ok"],
        true
    );
    assert_eq!(
        api(
            &app,
            "reactions.add",
            json!({"channel": id, "timestamp": ts, "name": "eyes"})
        )
        .await
        .error()
        .as_deref(),
        Some("already_reacted")
    );
    assert_eq!(
        sim.messages(&id)[0].reactions,
        vec![(
            "eyes".to_string(),
            vec![sluice_sim::BOT_USER_ID.to_string()]
        )]
    );
    let ts_s = ts.as_str().unwrap().to_string();
    assert_eq!(
        api(
            &app,
            "chat.getPermalink",
            json!({"channel": id, "message_ts": ts_s})
        )
        .await
        .json()["permalink"],
        format!(
            "https://sluice-sim.slack.com/archives/{id}/p{}",
            ts_s.replace('.', "")
        )
    );
    assert_eq!(
        api(
            &app,
            "chat.getPermalink",
            json!({"channel": id, "message_ts": "1.000001"})
        )
        .await
        .error()
        .as_deref(),
        Some("message_not_found")
    );

    let r = api(
        &app,
        "chat.postEphemeral",
        json!({"channel": id, "user": "U0001", "text": "only you"}),
    )
    .await
    .json();
    assert!(r["message_ts"].is_string());
    assert_eq!(
        sim.messages(&id).len(),
        1,
        "ephemeral messages are not in the channel"
    );
}

#[tokio::test]
async fn scheduled_messages_are_posted_when_due() {
    let (sim, app) = sim_unlimited();
    let now = api(&app, "auth.test", json!({})).await; // any call; the clock is the sim's
    assert_eq!(now.json()["ok"], true);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = api(
        &app,
        "chat.scheduleMessage",
        json!({"channel": "alerts", "text": "later", "post_at": unix + 60}),
    )
    .await
    .json();
    assert!(
        r["scheduled_message_id"].as_str().unwrap().starts_with('Q'),
        "{r}"
    );
    assert_eq!(
        api(
            &app,
            "chat.scheduleMessage",
            json!({"channel": "alerts", "text": "t", "post_at": unix - 10})
        )
        .await
        .error()
        .as_deref(),
        Some("time_in_past")
    );
    assert!(sim.messages("alerts").is_empty());
    sim.advance_clock(Duration::from_secs(61));
    api(&app, "auth.test", json!({})).await;
    assert_eq!(sim.messages("alerts")[0].text, "later");
}

#[tokio::test]
async fn views_are_kept_and_checked() {
    let (sim, app) = sim_unlimited();
    let modal = |title: &str| json!({"type": "modal", "callback_id": "ack", "title": {"type": "plain_text", "text": title}, "blocks": [section("hi")]});
    assert_eq!(
        api(&app, "views.open", json!({"view": modal("Ack")}))
            .await
            .error()
            .as_deref(),
        Some("invalid_trigger_id")
    );
    let trigger = sim.new_trigger_id();
    let r = api(
        &app,
        "views.open",
        json!({"trigger_id": trigger, "view": modal(&x(limits::VIEW_TITLE + 1))}),
    )
    .await;
    assert_eq!(r.error().as_deref(), Some("invalid_arguments"));
    assert!(r.json()["response_metadata"]["messages"][0]
        .as_str()
        .unwrap()
        .contains("/view/title/text"));

    let opened = api(
        &app,
        "views.open",
        json!({"trigger_id": trigger, "view": modal("Ack")}),
    )
    .await
    .json();
    let id = opened["view"]["id"].as_str().unwrap().to_string();
    let hash = opened["view"]["hash"].as_str().unwrap().to_string();
    let updated = api(
        &app,
        "views.update",
        json!({"view_id": id, "hash": hash, "view": modal("Acked")}),
    )
    .await
    .json();
    assert_eq!(updated["view"]["title"]["text"], "Acked");
    assert_eq!(
        api(
            &app,
            "views.update",
            json!({"view_id": id, "hash": hash, "view": modal("x")})
        )
        .await
        .error()
        .as_deref(),
        Some("hash_conflict")
    );
    let pushed = api(
        &app,
        "views.push",
        json!({"trigger_id": sim.new_trigger_id(), "view": modal("More")}),
    )
    .await
    .json();
    assert_eq!(pushed["view"]["root_view_id"], id.as_str());

    let home = json!({"type": "home", "blocks": [section("dashboard")]});
    assert_eq!(
        api(
            &app,
            "views.publish",
            json!({"user_id": "U0001", "view": home})
        )
        .await
        .json()["ok"],
        true
    );
    assert_eq!(
        api(
            &app,
            "views.publish",
            json!({"user_id": "U0001", "view": home})
        )
        .await
        .json()["ok"],
        true
    );
    let views = sim.views();
    assert_eq!(views.len(), 3, "republishing a home tab replaces it");
    assert!(views
        .iter()
        .any(|v| v.kind == "home" && v.user.as_deref() == Some("U0001")));
}

// ---------------------------------------------------------------- control API and page

#[tokio::test]
async fn control_api_reports_and_resets() {
    let (sim, app) = sim_with_alerts();
    for _ in 0..5 {
        api(
            &app,
            "chat.postMessage",
            json!({"channel": "alerts", "text": "x"}),
        )
        .await;
    }
    api(&app, "auth.test", json!({})).await;
    let stats = get(&app, "/sim/stats").await.json();
    assert_eq!(
        stats,
        json!({"calls": 6, "by_method": {"auth.test": 1, "chat.postMessage": 5}, "count_429": 1, "messages": 4,
            "deliveries": 0,
            "socket": {"connections": 0, "connections_opened": 0, "envelopes_sent": 0, "envelopes_acked": 0, "envelopes_redelivered": 0}})
    );

    let posts = get(&app, "/sim/calls?method=chat.postMessage&since=2")
        .await
        .json();
    let seqs: Vec<u64> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4, 5]);

    let state = get(&app, "/sim/state").await.json();
    assert_eq!(state["channels"][0]["name"], "alerts");
    assert_eq!(
        state["channels"][0]["messages"].as_array().unwrap().len(),
        4
    );
    assert_eq!(state["users"][0]["email"], "alice@example.com");
    assert_eq!(state["usergroups"][0]["handle"], "oncall");

    assert_eq!(
        post_json(&app, "/sim/faults", json!({"bogus": 1}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    send(
        &app,
        axum::http::Request::post("/sim/reset")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert!(sim.calls().is_empty());
    assert!(sim.messages("alerts").is_empty());
    assert_eq!(sim.channels().len(), 2, "configured channels come back");
    // Buckets were reset too, and seq numbers go on.
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "alerts", "text": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.calls()[0].seq, 7);
}

#[tokio::test]
async fn the_page_is_self_contained_html() {
    let (_sim, app) = sim_with_alerts();
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        r.text.contains("/sim/stream"),
        "live through server-sent events"
    );
    assert!(!r.text.contains("src=\"http"), "no external assets");
}

#[tokio::test]
async fn the_page_is_rendered_on_the_server_as_slack_shows_it() {
    let (_sim, app) = sim_with_alerts();
    let text = "&lt;!channel&gt; is text, <!here> is not: <@U0001> in <#C000002>, :rocket: *now* <script>x</script>";
    let r = api(
        &app,
        "chat.postMessage",
        json!({"channel": "alerts", "text": text}),
    )
    .await;
    assert_eq!(r.json()["ok"], true);
    let v = get(&app, "/sim/render?channel=alerts&user=U0002&tz=60")
        .await
        .json();
    let html = v["messages"].as_str().unwrap();
    assert!(html.contains("&lt;!channel&gt; is text"), "{html}");
    assert!(
        html.contains(r#"<span class="mention broadcast">@here</span>"#),
        "{html}"
    );
    assert!(html.contains("@alice</span>"), "{html}");
    assert!(html.contains("#ops</a>"), "{html}");
    assert!(html.contains("🚀 <b>now</b>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert_eq!(v["me"], "U0002");
    assert_eq!(v["title"], "#alerts");
    assert!(v["nav"].as_str().unwrap().contains("#ops"));
    assert!(v["modal"].is_null());
}
