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
use sluice_slack::blocks::fit_message;
use sluice_store::AlertCard;
use time::OffsetDateTime;

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

pub fn is_living(args: &Value) -> bool {
    args.get(LIVING_KEY).is_some()
}

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
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
pub fn render(
    renderer: &Renderer,
    args: &Value,
    card: &AlertCard,
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
    let life = life_of(card);
    let mut out = match part {
        Part::Card => {
            let ctx = RenderContext {
                event_id: &card.first_event_id,
                channel,
                template: marker["template"].as_str().unwrap_or("auto"),
                count: card.count,
                now,
            };
            renderer
                .render_alert(&event, &ctx, &life)
                .map_err(|e| format!("rendering the alert card: {e}"))?
        }
        Part::ResolvedReply => json!({ "channel": channel, "text": resolved_reply(&event, &life) }),
        Part::RefireReply => json!({ "channel": channel, "text": refire_reply(&event, &life) }),
    };
    fit_message(&mut out);
    Ok(out)
}
