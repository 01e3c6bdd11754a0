//! Test helpers shared by the adapters' tests: [`assert_valid`] holds every produced event
//! to the same validation the native API applies.

use std::collections::BTreeMap;

use sluice_core::{Event, RenderContext, Renderer};
use time::OffsetDateTime;

/// Each event, written as JSON and read back through `sluice_core::parse_events`, is
/// accepted and unchanged: what an adapter makes is what the native API would accept. It
/// also renders with the built-in `auto` card into a message Slack would take.
pub(crate) fn assert_valid(events: &[Event]) {
    let renderer = Renderer::new(&BTreeMap::new()).expect("built-in templates compile");
    for (i, e) in events.iter().enumerate() {
        let json = serde_json::to_vec(e).expect("an Event serializes");
        match sluice_core::parse_events(&json) {
            Ok(back) => assert_eq!(back.as_slice(), std::slice::from_ref(e), "event {i}"),
            Err(err) => panic!("event {i} is invalid: {err}\n{e:#?}"),
        }
        let ctx = RenderContext {
            event_id: "ev_test",
            channel: "C0TEST",
            template: "auto",
            count: 1,
            now: OffsetDateTime::UNIX_EPOCH,
        };
        let mut msg = renderer.render(e, &ctx).expect("renders");
        sluice_slack_wire::blocks::fit_message(&mut msg);
        let problems = sluice_slack_wire::blocks::check_message(&msg);
        assert!(problems.is_empty(), "event {i} renders badly: {problems:?}");
    }
}

/// The value of the field titled `title`, if the event has one.
pub(crate) fn field<'a>(e: &'a Event, title: &str) -> Option<&'a str> {
    e.fields
        .iter()
        .find(|f| f.title == title)
        .map(|f| f.value.as_str())
}

/// The URL of the link titled `title`, if the event has one.
pub(crate) fn link<'a>(e: &'a Event, title: &str) -> Option<&'a str> {
    e.links
        .iter()
        .find(|l| l.title == title)
        .map(|l| l.url.as_str())
}
