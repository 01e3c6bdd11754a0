//! Malformed input (issue 15): the native event parser and the renderer.
//!
//! - `parse_events` answers `Ok` or an `EventError` for any bytes; what it accepts goes back
//!   through it unchanged (so what Sluice stores is what it would accept again).
//! - Every accepted event renders with every built-in template, and with user minijinja
//!   templates renders or fails with a `RenderError`; every message rendered, once
//!   `fit_message` has run, is one Slack takes (`check_message` finds nothing).
//!
//! Cases per property: `PROPTEST_CASES` (CI default below; `bench/props.sh` runs 100,000).

mod mutate;

use proptest::prelude::*;
use serde_json::{json, Value};
use sluice_core::render::AlertLife;
use sluice_core::{parse_events, Event, RenderContext, Renderer};
use sluice_slack_wire::blocks::{check_message, fit_message};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use time::OffsetDateTime;

/// Accepted events are stable: written back as JSON and parsed again, they come back equal.
fn assert_round_trip(events: &[Event]) -> Result<(), TestCaseError> {
    for (i, e) in events.iter().enumerate() {
        let json = serde_json::to_vec(e).map_err(|err| {
            TestCaseError::fail(format!("event {i} does not serialize: {err}\n{e:#?}"))
        })?;
        match parse_events(&json) {
            Ok(back) => prop_assert_eq!(back.as_slice(), std::slice::from_ref(e)),
            Err(err) => {
                return Err(TestCaseError::fail(format!(
                    "event {i} accepted, then refused: {err}\n{e:#?}"
                )))
            }
        }
    }
    Ok(())
}

/// A rendered message fits once fitted, and fitting again changes nothing.
fn assert_sendable(mut msg: Value, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        msg.get("text").is_some_and(Value::is_string),
        "{}: no text: {}",
        what,
        msg
    );
    fit_message(&mut msg);
    let problems = check_message(&msg);
    prop_assert!(problems.is_empty(), "{}: {:?}\n{}", what, problems, msg);
    let again = {
        let mut m = msg.clone();
        fit_message(&mut m);
        m
    };
    prop_assert_eq!(again, msg, "{}: fitting twice changed the message", what);
    Ok(())
}

/// User templates in the style the docs describe, touching every part of the context.
const USER_TEMPLATES: &[(&str, &str)] = &[
    (
        "oncall",
        r#"{"text": {{ "[" ~ event.severity ~ "] " ~ event.title }}, "blocks": [
  {"type": "section", "text": {"type": "mrkdwn", "text": {{ emoji ~ " *" ~ event.title ~ "*\n" ~ event.text }}}},
  {% if event.fields %}{"type": "section", "fields": [{% for f in event.fields %}{"type": "mrkdwn", "text": {{ "*" ~ f.title ~ "*\n" ~ f.value }}}{% if not loop.last %},{% endif %}{% endfor %}]},{% endif %}
  {% if event.links %}{"type": "actions", "elements": [{% for l in event.links %}{"type": "button", "text": {"type": "plain_text", "text": {{ l.title }}}, "url": {{ l.url }}}{% if not loop.last %},{% endif %}{% endfor %}]},{% endif %}
  {"type": "context", "elements": [{"type": "mrkdwn", "text": {{ event_id ~ " · " ~ channel ~ " · " ~ (event.occurred_at or now) ~ " ×" ~ count }}}]}
]}"#,
    ),
    (
        "labels",
        r#"[{"type": "section", "text": {"type": "mrkdwn", "text": {{ event.labels | tojson }}}},
  {"type": "header", "text": {"type": "plain_text", "text": {{ event.service ~ "/" ~ event.environment ~ "/" ~ event.source }}}},
  {% for k, v in event.labels | items %}{"type": "section", "text": {"type": "plain_text", "text": {{ k ~ "=" ~ v }}}},{% endfor %}
  {"type": "divider"}]"#,
    ),
    (
        "fallback_only",
        r#"{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": {{ fallback_text }}}}]}"#,
    ),
    (
        "dedup",
        r#"{"text": {{ event.dedup_key | default("none") }}, "blocks": []}"#,
    ),
];

static RENDERER: LazyLock<Renderer> = LazyLock::new(|| {
    let user: BTreeMap<String, String> = USER_TEMPLATES
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Renderer::new(&user).expect("the user templates compile")
});

fn when() -> impl Strategy<Value = OffsetDateTime> {
    (0i64..4_102_444_800).prop_map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap())
}

/// One accepted event (arbitrary fields, filtered through the parser).
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        mutate::event_json(),
        mutate::edits(3).prop_map(|e| mutate::mutated(&mutate::full_event(), &e)),
    ]
    .prop_filter_map("refused by parse_events", |v| {
        parse_events(v.to_string().as_bytes())
            .ok()
            .map(|mut e| e.remove(0))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Any bytes: `Ok` or an error, never a panic; anything accepted round-trips.
    #[test]
    fn parse_events_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(events) = parse_events(&body) {
            assert_round_trip(&events)?;
        }
    }

    /// Arbitrary JSON documents.
    #[test]
    fn parse_events_arbitrary_json(doc in mutate::value()) {
        if let Ok(events) = parse_events(doc.to_string().as_bytes()) {
            assert_round_trip(&events)?;
        }
    }

    /// Generated events, alone or in a batch, some of them invalid.
    #[test]
    fn parse_events_generated(batch in prop::collection::vec(mutate::event_json(), 0..4), single in any::<bool>()) {
        let body = if single && !batch.is_empty() { batch[0].to_string() } else { json!(batch).to_string() };
        if let Ok(events) = parse_events(body.as_bytes()) {
            assert_round_trip(&events)?;
        }
    }

    /// A valid event with values, types and keys changed, or its bytes damaged.
    #[test]
    fn parse_events_mutated(edits in mutate::edits(6), damage in prop::option::of(mutate::byte_edits()), batch in any::<bool>()) {
        let mut doc = mutate::mutated(&mutate::full_event(), &edits);
        if batch {
            doc = json!([mutate::full_event(), doc]);
        }
        let mut body = serde_json::to_vec(&doc).unwrap();
        if let Some(d) = &damage {
            body = mutate::damage(&body, d);
        }
        if let Ok(events) = parse_events(&body) {
            assert_round_trip(&events)?;
        }
    }

    /// Every accepted event renders with each built-in template into a message Slack takes,
    /// as a single card and as a living alert card; user templates render or fail with an error.
    #[test]
    fn templates_over_arbitrary_events(
        e in event(),
        now in when(),
        count in 1u32..100_000,
        life in (when(), 0i64..1_000_000, prop::option::of(0i64..1_000_000)),
    ) {
        for template in ["auto", "alert", "deployment", "generic"] {
            let ctx = RenderContext { event_id: "ev_01J0PROPS", channel: "C0PROPS", template, count, now };
            let msg = RENDERER.render(&e, &ctx).map_err(|err| TestCaseError::fail(format!("{template}: {err}")))?;
            assert_sendable(msg, template)?;
        }
        let (first, last, resolved) = life;
        let life = AlertLife {
            count,
            first_seen: first,
            last_seen: first + time::Duration::seconds(last),
            resolved_at: resolved.map(|r| first + time::Duration::seconds(last + r)),
        };
        let ctx = RenderContext { event_id: "ev_01J0PROPS", channel: "C0PROPS", template: "auto", count, now };
        let msg = RENDERER.render_alert(&e, &ctx, &life).map_err(|err| TestCaseError::fail(format!("living card: {err}")))?;
        assert_sendable(msg, "living card")?;
        for (name, _) in USER_TEMPLATES {
            let ctx = RenderContext { event_id: "ev_01J0PROPS", channel: "C0PROPS", template: name, count, now };
            if let Ok(msg) = RENDERER.render(&e, &ctx) {
                assert_sendable(msg, name)?;
            }
        }
    }

    /// Arbitrary and damaged template sources: `Renderer::new` reports errors or compiles,
    /// and what compiles renders or fails with an error, never a panic.
    #[test]
    fn templates_arbitrary_sources(
        which in 0..USER_TEMPLATES.len(),
        damage in prop::option::of(mutate::byte_edits()),
        random in prop::option::of(".{0,80}"),
        name in prop_oneof![Just("mine".to_owned()), "[a-z ]{0,6}", Just("auto".to_owned())],
        e in event(),
    ) {
        let source = match random {
            Some(r) => r,
            None => {
                let base = USER_TEMPLATES[which].1.as_bytes();
                let bytes = damage.map(|d| mutate::damage(base, &d)).unwrap_or_else(|| base.to_vec());
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        let user = BTreeMap::from([(name.clone(), source)]);
        if let Ok(r) = Renderer::new(&user) {
            let _ = r.check();
            let ctx = RenderContext { event_id: "ev", channel: "C0", template: &name, count: 1, now: OffsetDateTime::UNIX_EPOCH };
            if let Ok(msg) = r.render(&e, &ctx) {
                assert_sendable(msg, &name)?;
            }
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
