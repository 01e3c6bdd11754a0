//! Living alert messages: the outbox items that keep one alert's card and thread up to date, and how the
//! dispatcher turns them into Slack calls at send time.
//!
//! The pipeline cannot know, when an event is accepted, how many duplicates its alert will have gathered by the
//! time Slack is called — and with coalescing (see `sluice_store::Dedup::refresh`) one refresh stands for many
//! duplicates. So a living item carries only a marker (`{"sluice_living": {"part", "template"}}`); the dispatcher
//! asks the store for the alert as it stands ([`sluice_store::Store::alert_card`]) and renders it with the pure
//! [`Renderer::render_alert`] just before the call.

use serde_json::{json, Value};
use sluice_core::event::Event;
use sluice_core::render::{refire_reply, resolved_reply, AlertLife, RenderContext, Renderer};
use sluice_slack_wire::blocks::fit_message;
use sluice_store::{AlertCard, NewOutboxItem};
use time::OffsetDateTime;

use crate::alert;
use crate::clock::at;
use crate::outbox::outbox_item;

/// The key of the marker in a living item's args.
pub const LIVING_KEY: &str = "sluice_living";

/// What a living item becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `chat.update` of the card: state, count, last seen, duration.
    Card,
    /// Thread reply when the alert resolves.
    ResolvedReply,
    /// Thread reply when a resolved alert fires again.
    RefireReply,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Card => "card",
            Part::ResolvedReply => "resolved_reply",
            Part::RefireReply => "refire_reply",
        }
    }

    fn parse(s: &str) -> Option<Part> {
        [Part::Card, Part::ResolvedReply, Part::RefireReply]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// The args of a living item for `channel`, rendered later with `template` (cards only).
pub fn marker(channel: &str, part: Part, template: &str) -> Value {
    json!({
        "channel": channel,
        LIVING_KEY: { "part": part.as_str(), "template": template },
    })
}

/// A living item for the alert's card in `channel`: linked to the card (`ref_post`), rendered at send time.
pub fn item(team: &str, channel: &str, method: &str, part: Part, template: &str) -> NewOutboxItem {
    NewOutboxItem {
        ref_post: true,
        ..outbox_item(team, channel, method, marker(channel, part, template))
    }
}

pub fn is_living(args: &Value) -> bool {
    args.get(LIVING_KEY).is_some()
}

/// Where the alert stands, in the renderer's terms.
pub fn life_of(card: &AlertCard) -> AlertLife {
    AlertLife {
        count: card.count,
        first_seen: at(card.first_seen_ms),
        last_seen: at(card.last_seen_ms),
        resolved_at: card.closed_at_ms.map(at),
    }
}

/// The real args of a living item (`args` holds the marker) for the alert `card` as it stands. The caller adds
/// the referenced message's channel and ts. An error is a reason to dead-letter the item.
///
/// `actions` are the decisions recorded on the alert (`(action, actor, at_ms)`, see
/// `Store::alert_actions`): the card shows them, and one resolved from Slack is shown resolved.
pub fn render(
    renderer: &Renderer,
    args: &Value,
    card: &AlertCard,
    actions: &[(String, String, i64)],
    now: OffsetDateTime,
) -> Result<Value, String> {
    let marker = &args[LIVING_KEY];
    let part = marker["part"]
        .as_str()
        .and_then(Part::parse)
        .ok_or_else(|| format!("unknown living message part {}", marker["part"]))?;
    let channel = args["channel"].as_str().unwrap_or_default();
    let event: Event = serde_json::from_value(card.body.clone()).map_err(|e| {
        format!(
            "the alert's first event {} cannot be read: {e}",
            card.first_event_id
        )
    })?;
    let life = alert::life(life_of(card), actions);
    let mut out = match part {
        Part::Card => {
            let ctx = RenderContext {
                event_id: &card.first_event_id,
                channel,
                template: marker["template"].as_str().unwrap_or("auto"),
                count: card.count,
                now,
            };
            alert::card(renderer, &event, &ctx, Some(&life), actions)
                .map_err(|e| format!("rendering the alert card: {e}"))?
        }
        Part::ResolvedReply => json!({ "channel": channel, "text": resolved_reply(&event, &life) }),
        Part::RefireReply => json!({ "channel": channel, "text": refire_reply(&event, &life) }),
    };
    fit_message(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn card(closed_at_ms: Option<i64>) -> AlertCard {
        AlertCard {
            first_event_id: "ev1".into(),
            body: json!({"title": "Disk full", "severity": "critical", "status": "firing", "source": "am",
                         "service": "db"}),
            count: 14,
            first_seen_ms: 1_714_559_400_000,
            last_seen_ms: 1_714_560_120_000,
            closed_at_ms,
        }
    }

    fn text(v: &Value) -> String {
        v.to_string()
    }

    #[test]
    fn a_refresh_after_an_acknowledgement_keeps_it_on_the_card() {
        let r = Renderer::new(&BTreeMap::new()).unwrap();
        let args = marker("C1", Part::Card, "auto");
        let acked = [("ack".to_string(), "U1".to_string(), 1_714_559_500_000)];
        let out = render(&r, &args, &card(None), &acked, OffsetDateTime::UNIX_EPOCH).unwrap();
        let t = text(&out);
        assert!(t.contains("×14 · last 10:42 UTC"), "{t}");
        assert!(t.contains("Acknowledged by <@U1>"), "{t}");
        assert!(
            !t.contains("sluice_ack"),
            "the Acknowledge button stays gone: {t}"
        );
        assert!(!t.contains(LIVING_KEY), "the marker never reaches Slack");

        // Resolved with the button: shown resolved even before the source says so.
        let resolved = [("resolve".to_string(), "U2".to_string(), 1_714_560_300_000)];
        let t = text(
            &render(
                &r,
                &args,
                &card(None),
                &resolved,
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap(),
        );
        assert!(t.contains("Resolved 10:45 UTC · lasted 15m · ×14"), "{t}");
    }

    #[test]
    fn replies_say_what_happened_and_unknown_parts_are_refused() {
        let r = Renderer::new(&BTreeMap::new()).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let reply = render(
            &r,
            &marker("C1", Part::ResolvedReply, "auto"),
            &card(Some(1_714_560_600_000)),
            &[],
            now,
        )
        .unwrap();
        assert!(text(&reply).contains("after 20m (×14 events)"), "{reply}");
        let again = render(
            &r,
            &marker("C1", Part::RefireReply, "auto"),
            &card(None),
            &[],
            now,
        )
        .unwrap();
        assert!(text(&again).contains("Firing again"), "{again}");
        let bad = json!({"channel": "C1", LIVING_KEY: {"part": "nonsense"}});
        assert!(render(&r, &bad, &card(None), &[], now)
            .unwrap_err()
            .contains("nonsense"));
    }
}
