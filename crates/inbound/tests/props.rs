//! Malformed input (issue 15): requests from Slack through the public entry point
//! (`routes()` with `oneshot`). Signature verification and the form/JSON parsing of every
//! payload kind (events, block_actions, view_submission, view_closed, shortcuts, message
//! actions, slash commands, options) answer every request without a panic and never with a
//! 5xx: a bad request gets a 4xx, a request that is not correctly signed gets a 401.
//!
//! Cases per property: `PROPTEST_CASES` (CI default below; `bench/props.sh` runs 100,000).

#[path = "../../core/tests/mutate/mod.rs"]
mod mutate;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use serde_json::Value;
use sluice_inbound::models::{
    BlockSuggestion, EventCallback, Shortcut, SlashCommand, ViewClosed, ViewSubmission,
};
use sluice_inbound::{
    routes, ActionPayload, Ctx, Inbound, InboundConfig, MemoryOnce, OptionsResponse, Registry,
    Reply, ViewResponse,
};
use sluice_slack::Client;
use sluice_slack_wire::{signature, Secret};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tower::ServiceExt;

const SECRET: &str = "props-signing-secret";
const NOW: i64 = 1_700_000_000;
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
const PATHS: [&str; 4] = [
    "/slack/events",
    "/slack/interactions",
    "/slack/commands",
    "/slack/options",
];

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

/// An Inbound with a handler for every fixture's id, so valid-looking payloads go all the way
/// to a handler; Slack's Web API is a closed port on 127.0.0.1. The clock is fixed at [`NOW`].
fn inbound() -> Arc<Inbound> {
    let mut r = Registry::new();
    r.command("/ops", |ctx: Ctx<SlashCommand>| async move {
        Ok(Some(Reply::ephemeral(format!(
            "hi {}",
            ctx.payload.user_id
        ))))
    });
    for id in ["approve", "duration"] {
        r.action(id, |_ctx: Ctx<ActionPayload>| async move { Ok(()) });
    }
    r.view_submission("silence_form", |_ctx: Ctx<ViewSubmission>| async move {
        Ok(ViewResponse::None)
    });
    r.view_closed(
        "silence_form",
        |_ctx: Ctx<ViewClosed>| async move { Ok(()) },
    );
    for id in ["new_incident", "escalate"] {
        r.shortcut(id, |_ctx: Ctx<Shortcut>| async move { Ok(()) });
    }
    for ev in ["app_mention", "reaction_added"] {
        r.event(ev, |_ctx: Ctx<EventCallback>| async move { Ok(()) });
    }
    r.options("service_picker", |_ctx: Ctx<BlockSuggestion>| async move {
        Ok(OptionsResponse::Options(Vec::new()))
    });
    let slack = Client::new(
        "http://127.0.0.1:9/api/",
        Secret::new("xoxb-props"),
        Duration::from_secs(1),
    )
    .unwrap();
    let mut cfg = InboundConfig::new(Secret::new(SECRET));
    cfg.max_body_bytes = 64 * 1024;
    cfg.sync_reply_budget = Duration::from_millis(200);
    let outbox = Arc::new(sluice_inbound::NoOutbox);
    Arc::new(Inbound::new(cfg, r, Arc::new(MemoryOnce::new()), outbox, slack).with_clock(|| NOW))
}

static INBOUND: LazyLock<Arc<Inbound>> = LazyLock::new(inbound);

/// (path, fixture) for every fixture under `tests/fixtures`.
static FIXTURES: LazyLock<Vec<(&'static str, Value)>> = LazyLock::new(|| {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out: Vec<_> = files
        .iter()
        .map(|f| {
            let name = f.file_stem().unwrap().to_str().unwrap();
            let path = if name.starts_with("event_") {
                "/slack/events"
            } else if name == "block_suggestion" {
                "/slack/options"
            } else {
                "/slack/interactions"
            };
            (
                path,
                serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap(),
            )
        })
        .collect();
    assert!(out.len() >= 10, "fixtures not found");
    out
});

/// The form a slash command arrives as (Slack's published example, with `/ops`).
const COMMAND_FIELDS: &[(&str, &str)] = &[
    ("token", "xyzz0WbapA4vBCDEFasx0q6G"),
    ("team_id", "T1DC2JH3J"),
    ("team_domain", "testteamnow"),
    ("enterprise_id", "E0001"),
    ("channel_id", "G8PSS9T3V"),
    ("channel_name", "foobar"),
    ("user_id", "U2CERLKJA"),
    ("user_name", "roadrunner"),
    ("command", "/ops"),
    ("text", "page db"),
    ("api_app_id", "A123"),
    ("is_enterprise_install", "false"),
    (
        "response_url",
        "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN",
    ),
    (
        "trigger_id",
        "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
    ),
];

fn signed(path: &str, content_type: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let ts = NOW.to_string();
    let sig = signature::sign(&Secret::new(SECRET), &ts, &body);
    let mut b = Request::post(path)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(Body::from(body)).unwrap()
}

fn status(req: Request<Body>) -> u16 {
    RT.block_on(async {
        routes(INBOUND.clone())
            .oneshot(req)
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// The body a payload travels in: events as JSON, interactions as `payload=<json>`.
fn encode(path: &str, payload: &Value) -> (Option<&'static str>, Vec<u8>) {
    if path == "/slack/events" {
        (Some(JSON), serde_json::to_vec(payload).unwrap())
    } else {
        let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        (Some(FORM), form.into_bytes())
    }
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just(FORM.to_owned()),
        Just(JSON.to_owned()),
        Just("application/json; charset=utf-8".to_owned()),
        "[ -~]{0,30}",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Correctly signed arbitrary bytes, on every endpoint, under any content type: a 4xx
    /// (or a 200 when the bytes happen to be a payload), never a panic or a 5xx.
    #[test]
    fn inbound_signed_arbitrary_bytes(
        path in prop::sample::select(PATHS.to_vec()),
        ct in content_type(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let s = status(signed(path, ct.as_deref(), body));
        prop_assert!(s < 500, "status {}", s);
    }

    /// Correctly signed arbitrary JSON, as a JSON body and as an interaction form.
    #[test]
    fn inbound_signed_arbitrary_json(path in prop::sample::select(PATHS.to_vec()), doc in mutate::value(), form in any::<bool>()) {
        let (ct, body) = encode(if form { "/slack/interactions" } else { "/slack/events" }, &doc);
        let s = status(signed(path, ct, body));
        prop_assert!(s < 500, "status {}", s);
    }

    /// Every payload kind (events, block_actions, block_suggestion, view_submission,
    /// view_closed, shortcut, message_action) with values, types and keys changed, or its
    /// bytes damaged, correctly signed.
    #[test]
    fn inbound_mutated_payloads(
        i in 0..FIXTURES.len(),
        edits in mutate::edits(6),
        damage in prop::option::of(mutate::byte_edits()),
    ) {
        let (path, seed) = &FIXTURES[i];
        let (ct, mut body) = encode(path, &mutate::mutated(seed, &edits));
        if let Some(d) = &damage {
            body = mutate::damage(&body, d);
        }
        let s = status(signed(path, ct, body));
        prop_assert!(s < 500, "status {}", s);
    }

    /// Slash commands with fields left out, repeated, or given arbitrary values.
    #[test]
    fn inbound_mutated_commands(
        fields in prop::collection::vec((0..COMMAND_FIELDS.len() + 2, prop::option::of(mutate::any_string())), 0..20),
        keep_all in any::<bool>(),
        damage in prop::option::of(mutate::byte_edits()),
    ) {
        let mut form: Vec<(String, String)> = if keep_all {
            COMMAND_FIELDS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        } else {
            Vec::new()
        };
        for (i, v) in fields {
            let k = COMMAND_FIELDS.get(i).map(|(k, _)| k.to_string()).unwrap_or_else(|| "payload".into());
            match v {
                Some(v) => form.push((k, v)),
                None => form.retain(|(fk, _)| *fk != k),
            }
        }
        let mut body = serde_urlencoded::to_string(&form).unwrap().into_bytes();
        if let Some(d) = &damage {
            body = mutate::damage(&body, d);
        }
        let s = status(signed("/slack/commands", Some(FORM), body));
        prop_assert!(s < 500, "status {}", s);
    }

    /// Arbitrary signature headers in front of a valid payload: a 401 unless the signature is
    /// the right one for a fresh timestamp; never a panic or a 5xx. Retry headers are read too.
    #[test]
    fn inbound_arbitrary_signature_headers(
        i in 0..FIXTURES.len(),
        ts in prop::option::of(prop_oneof![
            (-400i64..400).prop_map(|d| (NOW + d).to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            mutate::any_string(),
            Just(format!(" {NOW}")),
            Just(format!("{NOW}.0")),
        ]),
        sig in prop::option::of(prop_oneof![
            Just(None),
            mutate::any_string().prop_map(Some),
            "v0=[0-9a-f]{0,70}".prop_map(Some),
            "v[0-9]=[0-9A-F]{64}".prop_map(Some),
        ]),
        retry in prop::option::of((mutate::any_string(), mutate::any_string())),
    ) {
        let (path, payload) = &FIXTURES[i];
        let (ct, body) = encode(path, payload);
        let mut b = Request::post(*path).header("content-type", ct.unwrap());
        let mut right = false;
        if let Some(ts) = &ts {
            b = b.header("x-slack-request-timestamp", ts.as_str());
        }
        if let Some(sig) = &sig {
            let sig = match (sig, &ts) {
                (Some(s), _) => s.clone(),
                (None, Some(ts)) => {
                    right = true;
                    signature::sign(&Secret::new(SECRET), ts, &body)
                }
                (None, None) => String::new(),
            };
            b = b.header("x-slack-signature", sig);
        }
        if let Some((num, reason)) = &retry {
            b = b.header("x-slack-retry-num", num.as_str()).header("x-slack-retry-reason", reason.as_str());
        }
        // Header values must be visible ASCII; a value http refuses is not a request at all.
        let Ok(req) = b.body(Body::from(body)) else { return Ok(()) };
        let s = status(req);
        prop_assert!(s < 500, "status {}", s);
        if !right {
            prop_assert_eq!(s, 401);
        }
    }
}

/// `PROPTEST_CASES` when set (proptest's own variable), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seeds are good: every fixture, unmutated and correctly signed, is answered 200, so the
/// mutations above start from payloads that reach a handler.
#[test]
fn unmutated_fixtures_reach_their_handlers() {
    for (path, payload) in FIXTURES.iter() {
        let (ct, body) = encode(path, payload);
        assert_eq!(status(signed(path, ct, body)), 200, "{path} {payload}");
    }
    let form = serde_urlencoded::to_string(COMMAND_FIELDS)
        .unwrap()
        .into_bytes();
    assert_eq!(status(signed("/slack/commands", Some(FORM), form)), 200);
}
