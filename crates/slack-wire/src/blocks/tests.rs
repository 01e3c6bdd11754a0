use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn mrkdwn(t: &str) -> Value {
    json!({ "type": "mrkdwn", "text": t })
}

fn plain(t: &str) -> Value {
    json!({ "type": "plain_text", "text": t })
}

fn button(label: &str, id: &str) -> Value {
    json!({ "type": "button", "text": plain(label), "action_id": id, "value": "v" })
}

/// Fits, asserts the result passes the independent check, that fitting again changes nothing,
/// and returns the notes.
fn fit(msg: &mut Value) -> Vec<String> {
    let notes = fit_message(msg);
    assert_eq!(
        check_message(msg),
        Vec::<String>::new(),
        "after fit: {msg:#}"
    );
    let mut again = msg.clone();
    assert_eq!(
        fit_message(&mut again),
        Vec::<String>::new(),
        "fit is not idempotent"
    );
    assert_eq!(&again, msg);
    notes
}

fn text_at<'a>(msg: &'a Value, pointer: &str) -> &'a str {
    msg.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {msg:#}"))
}

#[test]
fn escape_mrkdwn_table() {
    let cases = [
        ("<!channel> deploy failed", "&lt;!channel&gt; deploy failed"),
        ("<!here>", "&lt;!here&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        (
            "<https://evil.example|click me>",
            "&lt;https://evil.example|click me&gt;",
        ),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),
        ("*bold* _it_ `code`", "*bold* _it_ `code`"),
        ("Grüße 🚨", "Grüße 🚨"),
        ("", ""),
    ];
    for (input, want) in cases {
        assert_eq!(escape_mrkdwn(input), want, "{input}");
    }
}

#[test]
fn truncate_table() {
    let cases: &[(&str, usize, &str)] = &[
        ("hello", 10, "hello"),
        ("hello", 5, "hello"),
        ("hello!", 5, "hell…"),
        ("hello", 1, "…"),
        ("hello", 0, ""),
        ("", 0, ""),
        ("héllo wörld", 3, "hé…"),
        ("日本語のテキスト", 4, "日本語…"),
        ("🚨🚨🚨🚨", 3, "🚨🚨…"),
        ("ab🚨cd", 3, "ab…"),
        ("ends with…", 10, "ends with…"),
    ];
    for (input, max, want) in cases {
        let got = truncate(input, *max);
        assert_eq!(&got, want, "truncate({input:?}, {max})");
        assert!(chars(&got) <= *max);
    }
}

#[test]
fn mrkdwn_cut_does_not_split_links_or_entities() {
    let link = format!(
        "{}<https://example.com/a/long/path|label> tail",
        "x".repeat(10)
    );
    assert_eq!(truncate_mrkdwn(&link, 30), format!("{}…", "x".repeat(10)));
    let entity = format!("{}&amp; more", "y".repeat(8));
    assert_eq!(truncate_mrkdwn(&entity, 11), format!("{}…", "y".repeat(8)));
    // A whole link before the cut is kept.
    let whole = "<https://e.x|e> and then a lot more text";
    assert_eq!(truncate_mrkdwn(whole, 20), "<https://e.x|e> and…");
}

#[test]
fn a_valid_message_is_left_alone() {
    let mut msg = json!({
        "channel": "C1",
        "text": "Deploy failed",
        "metadata": { "event_type": "sluice", "event_payload": { "id": 1 } },
        "blocks": [
            { "type": "header", "text": plain("Deploy failed") },
            { "type": "section", "block_id": "summary", "text": mrkdwn("*api* failed"),
              "fields": [mrkdwn("*env*\nprod"), mrkdwn("*by*\n<@U1>")],
              "accessory": button("Logs", "logs") },
            { "type": "divider" },
            { "type": "actions", "block_id": "acts", "elements": [
                button("Ack", "ack"),
                { "type": "button", "text": plain("Rollback"), "action_id": "rollback", "style": "danger",
                  "confirm": { "title": plain("Roll back?"), "text": mrkdwn("Really?"), "confirm": plain("Yes"), "deny": plain("No") } },
                { "type": "static_select", "action_id": "assign", "placeholder": plain("Assign"),
                  "options": [{ "text": plain("Ann"), "value": "U1" }, { "text": plain("Bob"), "value": "U2" }] },
                { "type": "overflow", "action_id": "more", "options": [
                    { "text": plain("Silence"), "value": "silence" }, { "text": plain("Runbook"), "value": "rb", "url": "https://r.example" }] }
            ]},
            { "type": "context", "elements": [mrkdwn("via Alertmanager"),
                { "type": "image", "image_url": "https://i.example/a.png", "alt_text": "logo" }] },
            { "type": "image", "image_url": "https://i.example/graph.png", "alt_text": "graph", "title": plain("CPU") },
            { "type": "rich_text", "elements": [{ "type": "rich_text_section", "elements": [{ "type": "text", "text": "hi" }] }] }
        ]
    });
    let before = msg.clone();
    assert_eq!(fit(&mut msg), Vec::<String>::new());
    assert_eq!(msg, before);
}

#[test]
fn oversize_texts_of_every_kind_are_cut_with_an_ellipsis() {
    let long = |n: usize| "é".repeat(n + 10);
    let mut msg = json!({
        "text": long(lim::MESSAGE_TEXT_HARD),
        "blocks": [
            { "type": "header", "text": plain(&long(lim::HEADER_TEXT)) },
            { "type": "section", "text": mrkdwn(&long(lim::SECTION_TEXT)),
              "fields": [mrkdwn(&long(lim::SECTION_FIELD_TEXT))] },
            { "type": "context", "elements": [plain(&long(lim::CONTEXT_TEXT))] },
            { "type": "actions", "elements": [
                { "type": "button", "text": plain(&long(lim::BUTTON_TEXT)), "value": long(lim::BUTTON_VALUE),
                  "confirm": { "title": plain(&long(lim::CONFIRM_TITLE)), "text": plain(&long(lim::CONFIRM_TEXT)),
                               "confirm": plain(&long(30)), "deny": plain(&long(30)) } },
                { "type": "static_select", "placeholder": plain(&long(lim::PLACEHOLDER_TEXT)),
                  "options": [{ "text": plain(&long(lim::OPTION_TEXT)), "value": long(lim::OPTION_VALUE) }] }
            ]},
            { "type": "image", "image_url": "https://i.example/x.png", "alt_text": long(lim::IMAGE_ALT_TEXT) },
            { "type": "input", "label": plain(&long(lim::INPUT_LABEL)), "hint": plain(&long(lim::INPUT_LABEL)),
              "element": { "type": "plain_text_input", "action_id": "in" } }
        ]
    });
    let notes = fit(&mut msg);
    let expect: &[(&str, usize, bool)] = &[
        ("/text", lim::MESSAGE_TEXT_SOFT, true),
        ("/blocks/0/text/text", lim::HEADER_TEXT, true),
        ("/blocks/1/text/text", lim::SECTION_TEXT, true),
        ("/blocks/1/fields/0/text", lim::SECTION_FIELD_TEXT, true),
        ("/blocks/2/elements/0/text", lim::CONTEXT_TEXT, true),
        ("/blocks/3/elements/0/text/text", lim::BUTTON_TEXT, true),
        ("/blocks/3/elements/0/value", lim::BUTTON_VALUE, false),
        (
            "/blocks/3/elements/0/confirm/title/text",
            lim::CONFIRM_TITLE,
            true,
        ),
        (
            "/blocks/3/elements/0/confirm/text/text",
            lim::CONFIRM_TEXT,
            true,
        ),
        (
            "/blocks/3/elements/0/confirm/confirm/text",
            lim::CONFIRM_BUTTON_TEXT,
            true,
        ),
        (
            "/blocks/3/elements/1/placeholder/text",
            lim::PLACEHOLDER_TEXT,
            true,
        ),
        (
            "/blocks/3/elements/1/options/0/text/text",
            lim::OPTION_TEXT,
            true,
        ),
        (
            "/blocks/3/elements/1/options/0/value",
            lim::OPTION_VALUE,
            false,
        ),
        ("/blocks/4/alt_text", lim::IMAGE_ALT_TEXT, true),
        ("/blocks/5/label/text", lim::INPUT_LABEL, true),
        ("/blocks/5/hint/text", lim::INPUT_LABEL, true),
    ];
    for (pointer, max, ellipsis) in expect {
        let t = text_at(&msg, pointer);
        assert_eq!(chars(t), *max, "{pointer}");
        assert_eq!(t.ends_with('…'), *ellipsis, "{pointer}");
    }
    assert!(notes.len() >= expect.len(), "{notes:#?}");
}

#[test]
fn surplus_fields_elements_and_options_are_dropped() {
    let options = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({ "text": plain(&format!("o{i}")), "value": format!("v{i}") }))
            .collect()
    };
    let mut msg = json!({
        "text": "t",
        "blocks": [
            { "type": "section", "text": mrkdwn("s"), "fields": (0..15).map(|i| mrkdwn(&format!("f{i}"))).collect::<Vec<_>>() },
            { "type": "context", "elements": (0..14).map(|i| mrkdwn(&format!("c{i}"))).collect::<Vec<_>>() },
            { "type": "actions", "elements": (0..30).map(|i| button("b", &format!("b{i}"))).collect::<Vec<_>>() },
            { "type": "actions", "elements": [
                { "type": "static_select", "action_id": "sel", "options": options(130) },
                { "type": "overflow", "action_id": "ovf", "options": options(8) },
                { "type": "checkboxes", "action_id": "chk", "options": options(12) }
            ]}
        ]
    });
    fit(&mut msg);
    let len = |p: &str| msg.pointer(p).and_then(Value::as_array).map(Vec::len);
    assert_eq!(len("/blocks/0/fields"), Some(lim::SECTION_FIELDS));
    assert_eq!(len("/blocks/1/elements"), Some(lim::CONTEXT_ELEMENTS));
    assert_eq!(len("/blocks/2/elements"), Some(lim::ACTIONS_ELEMENTS));
    assert_eq!(
        len("/blocks/3/elements/0/options"),
        Some(lim::SELECT_OPTIONS)
    );
    assert_eq!(
        len("/blocks/3/elements/1/options"),
        Some(lim::OVERFLOW_OPTIONS)
    );
    assert_eq!(
        len("/blocks/3/elements/2/options"),
        Some(lim::CHECKBOX_OPTIONS)
    );
    // The first ones are kept, in order.
    assert_eq!(text_at(&msg, "/blocks/0/fields/9/text"), "f9");
}

#[test]
fn sixty_blocks_become_fifty_with_an_omission_note() {
    let blocks: Vec<Value> = (0..60)
        .map(|i| json!({ "type": "section", "text": mrkdwn(&format!("item {i}")) }))
        .collect();
    let mut msg = json!({ "text": "many", "blocks": blocks });
    let notes = fit(&mut msg);
    let blocks = msg["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), lim::MESSAGE_BLOCKS);
    assert_eq!(text_at(&msg, "/blocks/48/text/text"), "item 48");
    assert_eq!(blocks[49]["type"], "context");
    assert_eq!(
        text_at(&msg, "/blocks/49/elements/0/text"),
        "… 11 more blocks omitted"
    );
    assert!(notes.iter().any(|n| n.contains("11 blocks")), "{notes:?}");
}

#[test]
fn invalid_blocks_do_not_count_toward_the_fifty() {
    let mut blocks: Vec<Value> = (0..50)
        .map(|i| json!({ "type": "section", "text": mrkdwn(&format!("{i}")) }))
        .collect();
    blocks.insert(3, json!({ "type": "carousel" }));
    blocks.insert(7, json!({ "type": "section" }));
    let mut msg = json!({ "text": "t", "blocks": blocks });
    fit(&mut msg);
    assert_eq!(msg["blocks"].as_array().unwrap().len(), 50);
    assert_eq!(text_at(&msg, "/blocks/49/text/text"), "49");
}

#[test]
fn duplicate_and_long_ids_are_made_unique() {
    let long_id = "x".repeat(300);
    let mut msg = json!({
        "text": "t",
        "blocks": [
            { "type": "section", "block_id": "b", "text": mrkdwn("1"), "accessory": button("a", "ack") },
            { "type": "section", "block_id": "b", "text": mrkdwn("2"), "accessory": button("a", "ack") },
            { "type": "actions", "block_id": long_id, "elements": [button("a", "ack"), button("c", &long_id), button("d", &long_id)] },
            { "type": "divider", "block_id": 42 }
        ]
    });
    let notes = fit(&mut msg);
    assert_eq!(text_at(&msg, "/blocks/0/block_id"), "b");
    assert_eq!(text_at(&msg, "/blocks/1/block_id"), "b~2");
    assert_eq!(text_at(&msg, "/blocks/0/accessory/action_id"), "ack");
    assert_eq!(text_at(&msg, "/blocks/1/accessory/action_id"), "ack~2");
    assert_eq!(text_at(&msg, "/blocks/2/elements/0/action_id"), "ack~3");
    assert_eq!(text_at(&msg, "/blocks/2/block_id"), "x".repeat(255));
    assert_eq!(
        text_at(&msg, "/blocks/2/elements/1/action_id"),
        "x".repeat(255)
    );
    let renamed = text_at(&msg, "/blocks/2/elements/2/action_id");
    assert_eq!(chars(renamed), 255);
    assert!(renamed.ends_with("~2"));
    assert!(
        msg.pointer("/blocks/3/block_id").is_none(),
        "a non-string id is dropped; Slack assigns one"
    );
    assert!(notes.iter().any(|n| n.contains("duplicate")), "{notes:?}");
}

#[test]
fn missing_text_is_derived_from_the_blocks_and_cannot_ping() {
    let mut msg = json!({
        "channel": "C1",
        "blocks": [
            { "type": "header", "text": plain("<!channel> CPU high & rising") },
            { "type": "section", "text": mrkdwn("*db-1* at 97%") },
            { "type": "divider" }
        ]
    });
    let notes = fit(&mut msg);
    assert_eq!(
        text_at(&msg, "/text"),
        "*&lt;!channel&gt; CPU high &amp; rising*\n*db-1* at 97%"
    );
    assert!(notes.iter().any(|n| n.starts_with("text:")), "{notes:?}");

    for mut m in [
        json!({ "channel": "C1" }),
        json!({ "text": "  ", "blocks": [{ "type": "divider" }] }),
    ] {
        fit(&mut m);
        assert_eq!(m["text"], EMPTY_MESSAGE_TEXT);
    }
}

#[test]
fn escaped_injection_strings_survive_fitting_unchanged() {
    let evil = escape_mrkdwn("<!everyone> <@U1> <https://phish|bank> & co");
    let mut msg = json!({ "text": evil, "blocks": [{ "type": "section", "text": mrkdwn(&evil) }] });
    fit(&mut msg);
    assert_eq!(msg["text"], evil);
    assert!(!text_at(&msg, "/blocks/0/text/text").contains('<'));
}

#[test]
fn shapes_slack_would_refuse_are_removed_or_repaired() {
    let mut msg = json!({
        "text": "t",
        "blocks": [
            { "type": "section", "text": mrkdwn("keep"), "colour": "red" },
            { "type": "video", "title": plain("v") },
            "not a block",
            { "type": "header", "text": mrkdwn("*made plain*") },
            { "type": "section", "text": { "type": "html", "text": "x" } },
            { "type": "section", "text": mrkdwn("") },
            { "type": "actions", "elements": [{ "type": "button", "action_id": "no-label" }, { "type": "datepicker", "action_id": "d" }] },
            { "type": "actions", "elements": [{ "type": "plain_text_input" }] },
            { "type": "context", "elements": [] },
            { "type": "image", "alt_text": "no source" },
            { "type": "section", "text": mrkdwn("s"), "accessory": { "type": "button", "text": plain("x"),
                "url": format!("https://e.example/{}", "a".repeat(3000)), "style": "blue",
                "confirm": { "title": plain("Sure?") } } }
        ]
    });
    let notes = fit(&mut msg);
    let blocks = msg["blocks"].as_array().unwrap();
    let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["section", "header", "actions", "section"],
        "{msg:#}"
    );
    assert!(blocks[0].get("colour").is_none());
    assert_eq!(blocks[1]["text"]["type"], "plain_text");
    assert_eq!(
        blocks[2]["elements"].as_array().unwrap().len(),
        1,
        "the label-less button is gone"
    );
    let acc = &blocks[3]["accessory"];
    assert!(
        acc.get("url").is_none(),
        "an over-long URL is dropped, not cut into a broken link"
    );
    assert!(acc.get("style").is_none());
    assert_eq!(acc["confirm"]["title"]["text"], "Sure?");
    assert_eq!(
        acc["confirm"]["deny"]["text"], "Cancel",
        "a confirm dialog is repaired, never dropped"
    );
    assert!(notes.len() >= 10, "{notes:#?}");
}

#[test]
fn non_object_messages_and_odd_blocks() {
    for v in [json!(null), json!(3), json!("hi"), json!([1, 2])] {
        let mut m = v;
        let notes = fit(&mut m);
        assert!(!notes.is_empty());
    }
    let mut m = json!({ "text": "t", "blocks": "[{\"type\":\"divider\"}]" });
    fit(&mut m);
    assert_eq!(m["blocks"], json!([{ "type": "divider" }]));
    let mut m = json!({ "text": "t", "blocks": { "type": "divider" } });
    fit(&mut m);
    assert!(m.get("blocks").is_none());
}

#[test]
fn markdown_blocks_share_one_text_budget() {
    let big = "m".repeat(8000);
    let mut msg = json!({ "text": "t", "blocks": [
        { "type": "markdown", "text": big }, { "type": "markdown", "text": big }, { "type": "markdown", "text": "x" }] });
    fit(&mut msg);
    let blocks = msg["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        chars(text_at(&msg, "/blocks/1/text")),
        lim::MARKDOWN_BLOCKS_TEXT - 8000
    );
}

#[test]
fn check_message_flags_what_slack_refuses() {
    let cases = [
        json!({ "blocks": [{ "type": "divider" }] }),
        json!({ "text": "x".repeat(5000) }),
        json!({ "text": "t", "blocks": (0..51).map(|_| json!({ "type": "divider" })).collect::<Vec<_>>() }),
        json!({ "text": "t", "blocks": [{ "type": "header", "text": mrkdwn("h") }] }),
        json!({ "text": "t", "blocks": [{ "type": "section", "text": mrkdwn(&"s".repeat(3001)) }] }),
        json!({ "text": "t", "blocks": [{ "type": "divider", "block_id": "a" }, { "type": "divider", "block_id": "a" }] }),
        json!({ "text": "t", "blocks": [{ "type": "actions", "elements": [button(&"b".repeat(76), "x")] }] }),
        json!({ "text": "t", "blocks": [{ "type": "carousel" }] }),
    ];
    for c in cases {
        assert!(!check_message(&c).is_empty(), "{c}");
    }
}

/// Random JSON biased toward Block Kit's vocabulary, so the fuzzing reaches deep code paths.
fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    const KEYS: &[&str] = &[
        "type",
        "text",
        "blocks",
        "fields",
        "elements",
        "element",
        "accessory",
        "block_id",
        "action_id",
        "options",
        "option_groups",
        "initial_option",
        "initial_options",
        "value",
        "url",
        "confirm",
        "title",
        "deny",
        "label",
        "hint",
        "placeholder",
        "alt_text",
        "image_url",
        "slack_file",
        "style",
        "emoji",
        "verbatim",
        "workflow",
        "description",
        "expand",
        "optional",
        "channel",
        "whatever",
    ];
    const TYPES: &[&str] = &[
        "section",
        "header",
        "divider",
        "context",
        "actions",
        "image",
        "input",
        "rich_text",
        "markdown",
        "video",
        "mrkdwn",
        "plain_text",
        "button",
        "static_select",
        "multi_static_select",
        "overflow",
        "checkboxes",
        "radio_buttons",
        "datepicker",
        "plain_text_input",
        "workflow_button",
        "users_select",
        "nope",
    ];
    let leaf = depth == 0 || rng.random_bool(0.3);
    match rng.random_range(0..if leaf { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random_range(-5i64..5)),
        3 => json!(TYPES[rng.random_range(0..TYPES.len())]),
        4 | 5 => {
            let pieces = [
                "a",
                "é",
                "🚨",
                "<!channel>",
                "&",
                "<http://x|y>",
                " ",
                "",
                "~2",
                "日本",
            ];
            let n = [0usize, 1, 3, 40, 80, 160, 400, 2100, 3100][rng.random_range(0..9)];
            json!((0..n)
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect::<String>())
        }
        6 => Value::Array(
            (0..rng.random_range(0..5))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            if rng.random_bool(0.8) {
                m.insert(
                    "type".into(),
                    json!(TYPES[rng.random_range(0..TYPES.len())]),
                );
            }
            for _ in 0..rng.random_range(0..6) {
                m.insert(
                    KEYS[rng.random_range(0..KEYS.len())].into(),
                    random_value(rng, depth - 1),
                );
            }
            Value::Object(m)
        }
    }
}

/// Random Block Kit-shaped JSON: plausible blocks whose every part may be oversize,
/// duplicated, missing, of the wrong type or plain garbage.
struct Gen(StdRng);

impl Gen {
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.0.random_range(0..xs.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.0.random_bool(p)
    }

    fn string(&mut self) -> String {
        let pieces = [
            "a",
            "é",
            "🚨",
            "<!channel>",
            "&",
            "<http://x|y>",
            " ",
            "~2",
            "日本",
            "&amp;",
        ];
        // Mostly short; sometimes just over one limit or another.
        let n = if self.chance(0.96) {
            [0usize, 1, 3, 20][self.0.random_range(0..4)]
        } else {
            [80usize, 160, 400, 2100, 3100, 4500][self.0.random_range(0..6)]
        };
        (0..n)
            .map(|_| pieces[self.0.random_range(0..pieces.len())])
            .collect()
    }

    /// Usually `good`, sometimes garbage or nothing.
    fn maybe(&mut self, good: Value) -> Option<Value> {
        match self.0.random_range(0..20) {
            0 => None,
            1 => Some(random_value(&mut self.0, 2)),
            _ => Some(good),
        }
    }

    fn text(&mut self) -> Value {
        let ty = self.pick(&["plain_text", "mrkdwn", "mrkdwn", "html"]);
        let mut t = json!({ "type": ty, "text": self.string() });
        if self.chance(0.1) {
            t["emoji"] = json!(self.chance(0.5));
        }
        if self.chance(0.05) {
            t["verbatim"] = json!("yes");
        }
        t
    }

    fn id(&mut self) -> Value {
        json!(self.pick(&[
            "a",
            "b",
            "ack",
            "ack~2",
            "",
            &"z".repeat(300),
            &"z".repeat(255)
        ]))
    }

    fn option(&mut self) -> Value {
        let mut o = Map::new();
        self.put(&mut o, "text", |g| g.text());
        self.put(&mut o, "value", |g| json!(g.string()));
        if self.chance(0.2) {
            self.put(&mut o, "description", |g| g.text());
        }
        if self.chance(0.1) {
            self.put(&mut o, "url", |g| json!(g.string()));
        }
        Value::Object(o)
    }

    fn list(&mut self, f: impl Fn(&mut Self) -> Value) -> Value {
        let n = match self.0.random_range(0..100) {
            0 => 130,
            1..=12 => [6usize, 11, 13, 30][self.0.random_range(0..4)],
            _ => self.0.random_range(0..4),
        };
        Value::Array((0..n).map(|_| f(self)).collect())
    }

    fn put(&mut self, m: &mut Map<String, Value>, key: &str, f: impl FnOnce(&mut Self) -> Value) {
        let good = f(self);
        if let Some(v) = self.maybe(good) {
            m.insert(key.into(), v);
        }
    }

    fn confirm(&mut self) -> Value {
        let mut c = Map::new();
        for k in ["title", "text", "confirm", "deny"] {
            self.put(&mut c, k, |g| g.text());
        }
        Value::Object(c)
    }

    fn element(&mut self) -> Value {
        let ty = self.pick(&[
            "button",
            "button",
            "static_select",
            "multi_static_select",
            "overflow",
            "checkboxes",
            "radio_buttons",
            "datepicker",
            "plain_text_input",
            "users_select",
            "image",
            "workflow_button",
            "nope",
        ]);
        let mut e = Map::new();
        e.insert("type".into(), json!(ty));
        self.put(&mut e, "action_id", |g| g.id());
        self.put(&mut e, "text", |g| g.text());
        if self.chance(0.5) {
            self.put(&mut e, "value", |g| json!(g.string()));
            self.put(&mut e, "url", |g| json!(g.string()));
            self.put(&mut e, "style", |g| {
                json!(g.pick(&["primary", "danger", "blue"]))
            });
        }
        self.put(&mut e, "options", |g| g.list(|g| g.option()));
        if self.chance(0.2) {
            self.put(&mut e, "option_groups", |g| {
                let n = g.0.random_range(0..3);
                Value::Array(
                    (0..n)
                        .map(|_| json!({ "label": g.text(), "options": g.list(|g| g.option()) }))
                        .collect(),
                )
            });
        }
        if self.chance(0.3) {
            self.put(&mut e, "initial_option", |g| g.option());
            self.put(&mut e, "initial_options", |g| g.list(|g| g.option()));
        }
        if self.chance(0.3) {
            self.put(&mut e, "placeholder", |g| g.text());
        }
        if self.chance(0.3) {
            self.put(&mut e, "confirm", |g| g.confirm());
        }
        if ty == "image" {
            self.put(&mut e, "image_url", |g| json!(g.string()));
            self.put(&mut e, "alt_text", |g| json!(g.string()));
        }
        if ty == "workflow_button" {
            self.put(
                &mut e,
                "workflow",
                |_| json!({ "trigger": { "url": "https://slack.com/x" } }),
            );
        }
        if self.chance(0.05) {
            e.insert("unknown".into(), json!(1));
        }
        Value::Object(e)
    }

    fn block(&mut self) -> Value {
        if self.chance(0.05) {
            return random_value(&mut self.0, 4);
        }
        let ty = self.pick(&[
            "section",
            "section",
            "section",
            "header",
            "divider",
            "context",
            "actions",
            "actions",
            "image",
            "input",
            "rich_text",
            "markdown",
            "video",
        ]);
        let mut b = Map::new();
        b.insert("type".into(), json!(ty));
        if self.chance(0.5) {
            self.put(&mut b, "block_id", |g| g.id());
        }
        match ty {
            "section" => {
                if self.chance(0.8) {
                    self.put(&mut b, "text", |g| g.text());
                }
                if self.chance(0.4) {
                    self.put(&mut b, "fields", |g| g.list(|g| g.text()));
                }
                if self.chance(0.4) {
                    self.put(&mut b, "accessory", |g| g.element());
                }
            }
            "header" => self.put(&mut b, "text", |g| g.text()),
            "context" => self.put(&mut b, "elements", |g| {
                g.list(|g| if g.chance(0.2) { g.element() } else { g.text() })
            }),
            "actions" => self.put(&mut b, "elements", |g| g.list(|g| g.element())),
            "image" => {
                self.put(&mut b, "image_url", |g| json!(g.string()));
                self.put(&mut b, "alt_text", |g| json!(g.string()));
                self.put(&mut b, "title", |g| g.text());
            }
            "input" => {
                self.put(&mut b, "label", |g| g.text());
                self.put(&mut b, "element", |g| g.element());
                self.put(&mut b, "hint", |g| g.text());
            }
            "markdown" => self.put(&mut b, "text", |g| json!(g.string())),
            _ => self.put(&mut b, "elements", |g| g.list(|g| g.text())),
        }
        Value::Object(b)
    }

    fn message(&mut self) -> Value {
        if self.chance(0.05) {
            return random_value(&mut self.0, 4);
        }
        let mut m = Map::new();
        m.insert("channel".into(), json!("C1"));
        if self.chance(0.7) {
            self.put(&mut m, "text", |g| json!(g.string()));
        }
        let n = [0usize, 1, 3, 10, 49, 50, 51, 70][self.0.random_range(0..8)];
        let blocks: Vec<Value> = (0..n).map(|_| self.block()).collect();
        self.put(&mut m, "blocks", |_| Value::Array(blocks));
        Value::Object(m)
    }
}

#[test]
fn random_json_never_panics_and_always_comes_out_valid() {
    let mut g = Gen(StdRng::seed_from_u64(0x51));
    let mut kept_blocks = 0;
    let mut kept_elements = 0;
    for i in 0..600 {
        let mut msg = g.message();
        let original = msg.clone();
        let notes = fit_message(&mut msg);
        let problems = check_message(&msg);
        assert!(
            problems.is_empty(),
            "case {i}: {problems:#?}\ninput: {original}\noutput: {msg}"
        );
        let mut again = msg.clone();
        assert_eq!(
            fit_message(&mut again),
            Vec::<String>::new(),
            "case {i} not idempotent: {original}"
        );
        if notes.is_empty() {
            assert_eq!(msg, original, "case {i}: changed without a note");
        }
        for b in msg
            .get("blocks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            kept_blocks += 1;
            kept_elements += b
                .get("elements")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            kept_elements += usize::from(b.get("accessory").is_some());
        }
    }
    // The generator must reach the deep paths, not just produce garbage that is thrown away.
    assert!(kept_blocks > 2000, "{kept_blocks}");
    assert!(kept_elements > 500, "{kept_elements}");
}

#[test]
fn an_attachments_only_message_gets_no_invented_text() {
    let mut msg =
        json!({ "attachments": [{ "fallback": "[FIRING:1] DiskFull", "text": "sda1 97%" }] });
    assert_eq!(fit(&mut msg), Vec::<String>::new());
    assert_eq!(msg.get("text"), None, "{msg}");
    // With nothing to show at all, Slack needs text, and gets one.
    let mut empty = json!({ "attachments": [] });
    fit_message(&mut empty);
    assert_eq!(empty["text"], EMPTY_MESSAGE_TEXT);
}

#[test]
fn a_foreign_message_keeps_text_up_to_slacks_own_limit() {
    let long = "y".repeat(lim::MESSAGE_TEXT_SOFT * 3);
    let mut ours = json!({ "text": long });
    fit_message(&mut ours);
    assert_eq!(
        ours["text"].as_str().map(chars),
        Some(lim::MESSAGE_TEXT_SOFT)
    );

    let mut theirs = json!({ "text": long });
    assert_eq!(fit_foreign_message(&mut theirs), Vec::<String>::new());
    assert_eq!(
        theirs["text"].as_str().map(chars),
        Some(lim::MESSAGE_TEXT_SOFT * 3)
    );

    let mut too_long = json!({ "text": "z".repeat(lim::MESSAGE_TEXT_HARD + 10) });
    let notes = fit_foreign_message(&mut too_long);
    assert_eq!(
        notes,
        vec![format!(
            "text: cut to {} characters",
            lim::MESSAGE_TEXT_HARD
        )]
    );
    assert_eq!(
        too_long["text"].as_str().map(chars),
        Some(lim::MESSAGE_TEXT_HARD)
    );
}
