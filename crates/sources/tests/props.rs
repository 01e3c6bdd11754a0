//! Malformed input (issue 15): every source adapter, fed arbitrary bytes and mutated copies of
//! its own fixtures, answers `Ok` or a `SourceError` (never a panic), and every event it
//! produces is one the native API would accept and that renders into a message Slack takes.
//!
//! Cases per property: `PROPTEST_CASES` (CI default below; `bench/props.sh` runs 100,000).

#[path = "../../core/tests/mutate/mod.rs"]
mod mutate;

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::Value;
use sha2::Sha256;
use sluice_core::{Event, RenderContext, Renderer};
use sluice_slack_wire::Secret;
use sluice_sources::{by_name, github, gitlab, Headers, Source};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use time::OffsetDateTime;

const SECRET: &str = "props-secret";

/// (source, event header value, fixture) for every fixture under `src/*/fixtures`.
static FIXTURES: LazyLock<Vec<(&'static str, &'static str, Value)>> = LazyLock::new(|| {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut out = Vec::new();
    for source in ["alertmanager", "grafana", "github", "gitlab"] {
        let mut files: Vec<_> = std::fs::read_dir(format!("{dir}/{source}/fixtures"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let name = f.file_stem().unwrap().to_str().unwrap().to_owned();
            let event = match source {
                "github" => ["workflow_run", "check_run", "deployment_status", "ping"]
                    .into_iter()
                    .find(|p| name.starts_with(p))
                    .unwrap_or("workflow_run"),
                "gitlab" if name.starts_with("deployment") => "Deployment Hook",
                "gitlab" => "Pipeline Hook",
                _ => "",
            };
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            out.push((source, event, v));
        }
    }
    assert!(out.len() >= 15, "fixtures not found");
    out
});

static RENDERER: LazyLock<Renderer> =
    LazyLock::new(|| Renderer::new(&BTreeMap::new()).expect("built-in templates compile"));

/// The headers a correctly configured sender would send with `body`.
fn headers_for(source: &str, event: &str, body: &[u8]) -> Headers {
    match source {
        "github" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(body);
            let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            Headers::new()
                .with(github::EVENT_HEADER, event)
                .with(github::SIGNATURE_HEADER, sig)
        }
        "gitlab" => Headers::new()
            .with(gitlab::EVENT_HEADER, event)
            .with(gitlab::TOKEN_HEADER, SECRET),
        _ => Headers::new().with("content-type", "application/json"),
    }
}

fn adapter(source: &str) -> Box<dyn Source + Send + Sync> {
    by_name(source, Some(Secret::new(SECRET))).unwrap()
}

/// What a user would notice: each event goes through the native API unchanged and renders
/// with the built-in card into a message that fits Slack's limits.
fn assert_valid(events: &[Event]) -> Result<(), TestCaseError> {
    for (i, e) in events.iter().enumerate() {
        let json = serde_json::to_vec(e).map_err(|err| {
            TestCaseError::fail(format!("event {i} does not serialize: {err}\n{e:#?}"))
        })?;
        match sluice_core::parse_events(&json) {
            Ok(back) => prop_assert_eq!(back.as_slice(), std::slice::from_ref(e), "event {}", i),
            Err(err) => {
                return Err(TestCaseError::fail(format!(
                    "event {i} is invalid: {err}\n{e:#?}"
                )))
            }
        }
        let ctx = RenderContext {
            event_id: "ev_props",
            channel: "C0PROPS",
            template: "auto",
            count: 1,
            now: OffsetDateTime::UNIX_EPOCH,
        };
        let mut msg = RENDERER.render(e, &ctx).map_err(|err| {
            TestCaseError::fail(format!("event {i} does not render: {err}\n{e:#?}"))
        })?;
        sluice_slack_wire::blocks::fit_message(&mut msg);
        let problems = sluice_slack_wire::blocks::check_message(&msg);
        prop_assert!(
            problems.is_empty(),
            "event {} renders badly: {:?}",
            i,
            problems
        );
    }
    Ok(())
}

fn check(source: &str, headers: &Headers, body: &[u8]) -> Result<(), TestCaseError> {
    match adapter(source).parse(headers, body) {
        Ok(parsed) => assert_valid(&parsed.events),
        Err(e) => {
            prop_assert!([400, 401, 422].contains(&e.http_status()));
            Ok(())
        }
    }
}

fn source() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["alertmanager", "grafana", "github", "gitlab"])
}

fn fixture() -> impl Strategy<Value = usize> {
    0..FIXTURES.len()
}

fn header_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let names = prop::sample::select(vec![
        github::EVENT_HEADER,
        github::SIGNATURE_HEADER,
        gitlab::EVENT_HEADER,
        gitlab::TOKEN_HEADER,
        "content-type",
        "authorization",
    ]);
    prop::collection::vec(
        (
            prop_oneof![names.prop_map(str::to_owned), "[a-zA-Z-]{1,12}"],
            prop_oneof![
                mutate::any_string(),
                Just(SECRET.to_owned()),
                Just("sha256=".to_owned()),
                "sha256=[0-9a-f]{0,70}",
            ],
        ),
        0..5,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Arbitrary bytes with a correct signature and a known event type: parsed or refused.
    #[test]
    fn sources_arbitrary_bytes(i in fixture(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        let (source, event, _) = &FIXTURES[i];
        check(source, &headers_for(source, event, &body), &body)?;
    }

    /// Arbitrary JSON documents, correctly signed.
    #[test]
    fn sources_arbitrary_json(i in fixture(), doc in mutate::value()) {
        let (source, event, _) = &FIXTURES[i];
        let body = serde_json::to_vec(&doc).unwrap();
        check(source, &headers_for(source, event, &body), &body)?;
    }

    /// Each fixture with values, types and keys changed, correctly signed.
    #[test]
    fn sources_mutated_fixtures(i in fixture(), edits in mutate::edits(6)) {
        let (source, event, seed) = &FIXTURES[i];
        let body = serde_json::to_vec(&mutate::mutated(seed, &edits)).unwrap();
        check(source, &headers_for(source, event, &body), &body)?;
    }

    /// Each fixture truncated or with bytes flipped, correctly signed.
    #[test]
    fn sources_damaged_fixtures(i in fixture(), edits in mutate::byte_edits()) {
        let (source, event, seed) = &FIXTURES[i];
        let body = mutate::damage(&serde_json::to_vec(seed).unwrap(), &edits);
        check(source, &headers_for(source, event, &body), &body)?;
    }

    /// Arbitrary headers (event types, signatures, tokens) in front of a valid or mutated
    /// body, for any adapter: a wrong signature is a SourceError, not a panic.
    #[test]
    fn sources_arbitrary_headers(
        s in source(),
        i in fixture(),
        edits in prop::option::of(mutate::edits(3)),
        headers in header_pairs(),
    ) {
        let seed = &FIXTURES[i].2;
        let doc = match &edits { Some(e) => mutate::mutated(seed, e), None => seed.clone() };
        let body = serde_json::to_vec(&doc).unwrap();
        check(s, &headers.into_iter().collect(), &body)?;
    }
}

/// `PROPTEST_CASES` when set (proptest's own variable), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seeds are good: every fixture, unmutated and correctly signed, parses (but the legacy
/// Grafana one, which is there to be refused).
#[test]
fn unmutated_fixtures_parse() {
    for (source, event, seed) in FIXTURES.iter() {
        let body = serde_json::to_vec(seed).unwrap();
        let parsed = adapter(source).parse(&headers_for(source, event, &body), &body);
        // Grafana's legacy payload is a fixture of what is refused as unsupported.
        let legacy = *source == "grafana" && seed.get("evalMatches").is_some();
        assert!(
            parsed.is_ok()
                || legacy && matches!(parsed, Err(sluice_sources::SourceError::Unsupported(_))),
            "{source} {event}: {parsed:?}"
        );
    }
}
