//! Malformed input (issue 15): Block Kit fitting. For any JSON given as a `chat.postMessage`
//! payload, `fit_message` does not panic, afterwards `check_message` (written independently)
//! finds nothing Slack would refuse, and fitting the result again changes nothing.
//!
//! Cases per property: `PROPTEST_CASES` (CI default below; `bench/props.sh` runs 100,000).

#[path = "../../core/tests/mutate/mod.rs"]
mod mutate;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sluice_slack_wire::blocks::{check_message, fit_message};

fn assert_fits(mut msg: Value) -> Result<(), TestCaseError> {
    let before = msg.clone();
    fit_message(&mut msg);
    let problems = check_message(&msg);
    prop_assert!(
        problems.is_empty(),
        "{:?}\nfitted: {}\nfrom: {}",
        problems,
        msg,
        before
    );
    let mut again = msg.clone();
    let notes = fit_message(&mut again);
    prop_assert_eq!(
        &again,
        &msg,
        "fitting twice changed the message: {:?}\nfrom: {}",
        notes,
        before
    );
    Ok(())
}

/// Text of any length, around the limits that matter (75, 150, 2000, 3000, 40,000).
fn text() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => mutate::any_string().prop_map(Value::String),
        2 => (prop::sample::select(vec![24usize, 30, 75, 100, 150, 255, 300, 2000, 3000, 4000, 12_000]), -2i64..3, prop::sample::select(vec!["a", "é", "👍", "&", "<"]))
            .prop_map(|(n, d, c)| Value::String(c.repeat((n as i64 + d).max(0) as usize))),
        1 => mutate::leaf(),
    ]
    .boxed()
}

fn text_obj() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => (prop::sample::select(vec!["plain_text", "mrkdwn", "bogus"]), text(), prop::option::of(any::<bool>()))
            .prop_map(|(t, s, emoji)| {
                let mut o = json!({"type": t, "text": s});
                if let Some(e) = emoji { o["emoji"] = json!(e); }
                o
            }),
        1 => mutate::leaf(),
    ]
    .boxed()
}

fn option() -> BoxedStrategy<Value> {
    (text_obj(), text(), prop::option::of(text_obj()))
        .prop_map(|(t, v, d)| {
            let mut o = json!({"text": t, "value": v});
            if let Some(d) = d {
                o["description"] = d;
            }
            o
        })
        .boxed()
}

fn element() -> BoxedStrategy<Value> {
    let kind = prop::sample::select(vec![
        "button",
        "static_select",
        "overflow",
        "checkboxes",
        "radio_buttons",
        "image",
        "datepicker",
        "users_select",
        "plain_text_input",
        "mrkdwn",
        "plain_text",
        "workflow_button",
        "bogus",
    ]);
    (
        kind,
        text_obj(),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(prop_oneof![4 => prop::collection::vec(option(), 0..3), 1 => prop::collection::vec(option(), 4..12)]),
        prop::option::of(text()),
        prop::option::of(prop::sample::select(vec!["primary", "danger", "bogus"])),
        prop::option::of((text_obj(), text_obj(), text_obj(), text_obj())),
    )
        .prop_map(|(t, label, action_id, value, options, url, style, confirm)| {
            let mut o = Map::new();
            o.insert("type".into(), json!(t));
            match t {
                "mrkdwn" | "plain_text" => {
                    o.insert("text".into(), label.get("text").cloned().unwrap_or(label));
                }
                "image" => {
                    o.insert("image_url".into(), url.clone().unwrap_or(json!("https://example.com/i.png")));
                    o.insert("alt_text".into(), label.get("text").cloned().unwrap_or(label));
                }
                _ => {
                    o.insert("text".into(), label);
                }
            }
            let mut put = |k: &str, v: Option<Value>| if let Some(v) = v { o.insert(k.into(), v); };
            put("action_id", action_id);
            put("value", value);
            put("options", options.map(Value::Array));
            put("url", url);
            put("style", style.map(|s| json!(s)));
            put("confirm", confirm.map(|(title, text, confirm, deny)| json!({"title": title, "text": text, "confirm": confirm, "deny": deny})));
            Value::Object(o)
        })
    .boxed()
}

fn block() -> BoxedStrategy<Value> {
    let kind = prop::sample::select(vec![
        "section",
        "header",
        "divider",
        "context",
        "actions",
        "image",
        "input",
        "rich_text",
        "markdown",
        "bogus",
    ]);
    (
        kind,
        text_obj(),
        prop::option::of(text()),
        prop::option::of(prop_oneof![4 => prop::collection::vec(text_obj(), 0..3), 1 => prop::collection::vec(text_obj(), 9..13)]),
        prop_oneof![8 => prop::collection::vec(element(), 0..4), 1 => prop::collection::vec(element(), 24..28)],
        prop::option::of(element()),
    )
        .prop_map(|(t, txt, block_id, fields, elements, accessory)| {
            let mut o = Map::new();
            o.insert("type".into(), json!(t));
            if let Some(b) = block_id {
                o.insert("block_id".into(), b);
            }
            match t {
                "section" => {
                    o.insert("text".into(), txt);
                    if let Some(f) = fields {
                        o.insert("fields".into(), Value::Array(f));
                    }
                    if let Some(a) = accessory {
                        o.insert("accessory".into(), a);
                    }
                }
                "header" => {
                    o.insert("text".into(), txt);
                }
                "markdown" => {
                    o.insert("text".into(), txt.get("text").cloned().unwrap_or(txt));
                }
                "context" | "actions" | "rich_text" => {
                    o.insert("elements".into(), Value::Array(elements));
                }
                "image" => {
                    o.insert("image_url".into(), json!("https://example.com/i.png"));
                    o.insert("alt_text".into(), txt.get("text").cloned().unwrap_or(txt));
                }
                "input" => {
                    o.insert("label".into(), txt);
                    if let Some(a) = accessory {
                        o.insert("element".into(), a);
                    }
                }
                _ => {}
            }
            Value::Object(o)
        })
    .boxed()
}

/// A `chat.postMessage` payload shaped like what Sluice and user templates produce.
fn message() -> BoxedStrategy<Value> {
    (
        prop::option::of(text()),
        prop_oneof![
            8 => prop::collection::vec(block(), 0..6),
            1 => prop::collection::vec(Just(json!({"type": "divider"})), 45..60),
            1 => prop::collection::vec(block(), 45..52),
        ],
        prop::option::of(mutate::leaf()),
    )
        .prop_map(|(text, blocks, extra)| {
            let mut o = json!({"channel": "C0PROPS", "blocks": blocks});
            if let Some(t) = text {
                o["text"] = t;
            }
            if let Some(x) = extra {
                o["metadata"] = x;
            }
            o
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Any JSON at all.
    #[test]
    fn fit_message_arbitrary_json(msg in mutate::value()) {
        assert_fits(msg)?;
    }

    /// Arbitrary JSON under `blocks` and `text`.
    #[test]
    fn fit_message_arbitrary_blocks(blocks in mutate::value(), text in prop::option::of(mutate::value())) {
        let mut msg = json!({"channel": "C0", "blocks": blocks});
        if let Some(t) = text { msg["text"] = t; }
        assert_fits(msg)?;
    }

    /// Block Kit-shaped messages with texts, counts and ids around every limit.
    #[test]
    fn fit_message_block_kit(msg in message()) {
        assert_fits(msg)?;
    }

    /// Block Kit-shaped messages with values, types and keys changed.
    #[test]
    fn fit_message_mutated(msg in message(), edits in mutate::edits(6)) {
        assert_fits(mutate::mutated(&msg, &edits))?;
    }
}

/// `PROPTEST_CASES` when set (proptest's own variable), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
