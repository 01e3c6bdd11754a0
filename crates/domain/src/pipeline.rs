//! The outbound pipeline: an accepted [`Event`] becomes a [`NewEvent`] — its fate and the Slack
//! calls it causes — ready to be committed in one transaction.
//!
//! Routing and rendering are pure (sluice-core); this module only joins them to the store's
//! model types. Nothing here does IO: the caller commits the result.

use sluice_core::event::{Event, Status};
use sluice_core::inhibit::{InhibitKey, Inhibitor};
use sluice_core::noise::Noise;
use sluice_core::render::{Renderer, BUILTIN_TEMPLATES};
use sluice_core::route::{Decision, Delivery, Router};
use sluice_model::{Dedup, EventBody, Fate, GroupJoin, Inhibit, NewEvent, RefSent};
use time::OffsetDateTime;

use crate::living::{self, Part};
use crate::outbox::lane;
use crate::silence::SilenceSet;

/// What the pipeline needs besides the event: routing, rendering and the workspace.
pub struct Pipeline<'a> {
    pub silences: &'a SilenceSet,
    pub router: &'a Router,
    pub inhibitor: &'a Inhibitor,
    pub renderer: &'a Renderer,
    pub team: &'a str,
    pub dedup_window_ms: i64,
}

/// Why an event could not be turned into Slack calls. The event is then refused with a 4xx
/// rather than accepted and lost.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PipelineError(pub String);

/// The route's noise control and `event`'s group labels, if delivery `d` groups it (then the flusher posts the
/// group's card, and `event` posts nothing of its own there).
fn grouped<'d>(d: &'d Delivery, event: &Event) -> Option<(&'d Noise, Vec<(String, String)>)> {
    let noise = d.noise.as_deref()?;
    Some((noise, noise.group_of(event)?))
}

/// The template the card of `event` at `ts` in `channel` was rendered with, so a card redrawn after an action
/// keeps its route's look. The pipeline posts one card per delivery that does not group the event, in delivery
/// order, and `posts` (`Store::message_of`) are the event's cards in that same order: the card's place among them
/// names its delivery. `None` if the card is not among them (or the routes changed since).
pub fn card_template(
    router: &Router,
    event: &Event,
    posts: &[RefSent],
    channel: &str,
    ts: &str,
) -> Option<String> {
    let Decision::Deliver { deliveries, .. } = router.route(event) else {
        return None;
    };
    let place = posts
        .iter()
        .position(|p| p.channel == channel && p.ts == ts)?;
    deliveries
        .into_iter()
        .filter(|d| grouped(d, event).is_none())
        .nth(place)
        .map(|d| d.template)
}

/// The group `event` joins on delivery `d`, if the route groups alerts and `event` is one.
fn group_join(team: &str, d: &Delivery, event: &Event) -> Option<GroupJoin> {
    let (noise, labels) = grouped(d, event)?;
    let channel = d.channel.trim_start_matches('#').to_string();
    let lane = lane(team, &channel);
    let mut key = format!("{}\u{1f}{lane}", d.rule);
    for (k, v) in &labels {
        key.push('\u{1f}');
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    Some(GroupJoin {
        key,
        rule: d.rule.clone(),
        lane,
        team: team.to_string(),
        channel,
        template: d.template.clone(),
        labels,
        wait_ms: noise.wait_ms,
        interval_ms: noise.interval_ms,
        repeat_ms: noise.repeat_ms,
    })
}

/// The store's form of an event's inhibition keys.
fn inhibit_of(inhibitor: &Inhibitor, event: &Event) -> Inhibit {
    let keys = inhibitor.keys(event);
    let convert = |ks: Vec<InhibitKey>| {
        ks.into_iter()
            .map(|k| sluice_model::InhibitKey {
                rule: k.rule,
                key: k.key,
                both_sides: k.both_sides,
            })
            .collect()
    };
    Inhibit {
        provides: convert(keys.provides),
        checks: convert(keys.checks),
    }
}

impl Pipeline<'_> {
    /// Route one event received at `now`: its fate, and the Slack calls it causes (its cards are drawn when sent).
    pub fn process(
        &self,
        id: String,
        event: &Event,
        body: EventBody,
        now: OffsetDateTime,
    ) -> Result<NewEvent, PipelineError> {
        let received_at_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let mut new = NewEvent {
            id,
            received_at_ms,
            source: event.source.clone(),
            body,
            fate: Fate::Unrouted,
            outbox: Vec::new(),
            dedup: None,
            inhibit: Inhibit::default(),
            follow_up: None,
        };
        if let Some(silence) = self.silences.silenced_by(event, received_at_ms) {
            new.fate = Fate::Suppressed {
                by: format!("silence:{silence}"),
            };
            return Ok(new);
        }
        let (deliveries, matched) = match self.router.route(event) {
            Decision::Drop { rule } => {
                new.fate = Fate::Dropped { rule };
                return Ok(new);
            }
            Decision::Unrouted => return Ok(new),
            Decision::Deliver {
                deliveries,
                matched,
            } => (deliveries, matched),
        };
        let resolves = event.status == Status::Resolved;
        let (mut on_open, mut refresh, mut on_reopen) = (Vec::new(), Vec::new(), Vec::new());
        let mut groups = Vec::new();
        for d in &deliveries {
            if let Some(join) = group_join(self.team, d, event) {
                // The route groups its alerts: the flusher posts the group's card, not this event.
                groups.push(join);
                continue;
            }
            if !BUILTIN_TEMPLATES.contains(&d.template.as_str()) {
                // The card is drawn when it is sent; a user template that cannot draw this event refuses it now,
                // while its sender can still be told. Built-in cards draw every event.
                living::first_card(self.renderer, event, &new.id, &d.channel, &d.template, now)
                    .map_err(|e| {
                        PipelineError(format!("rendering for channel {}: {e}", d.channel))
                    })?;
            }
            if event.dedup_key.is_some() {
                // The alert's one card lives on: a duplicate, a resolve or a re-fire refreshes it in place
                // (coalesced, rendered at send time with the alert's count and state), and a resolve or re-fire
                // also says so in its thread. The dispatcher fills in the card's channel id and ts.
                let living = |method: &str, part: Part| {
                    living::item(self.team, &d.channel, method, part, &d.template)
                };
                refresh.push(living("chat.update", Part::Card));
                if resolves {
                    on_open.push(living("chat.postMessage", Part::ResolvedReply));
                } else {
                    on_reopen.push(living("chat.postMessage", Part::RefireReply));
                }
                new.outbox
                    .push(living::post(self.team, &d.channel, &d.template));
            } else {
                new.outbox.push(living::event_post(
                    self.team,
                    &d.channel,
                    &new.id,
                    &d.template,
                ));
            }
        }
        new.fate = Fate::Queued { rules: matched };
        // Only what would post is checked (silences and drop rules came first); the store decides in the commit.
        new.inhibit = inhibit_of(self.inhibitor, event);
        if let Some(key) = &event.dedup_key {
            new.dedup = Some(Dedup {
                key: key.clone(),
                window_ms: self.dedup_window_ms,
                resolves,
                on_open,
                refresh,
                reopen_window_ms: self.dedup_window_ms,
                on_reopen,
                groups,
                occurred_at_ms: event.occurred_at.map(|t| {
                    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
                }),
            });
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sluice_core::route::RoutingConfig;

    use super::*;

    #[derive(serde::Deserialize)]
    struct File {
        routing: RoutingConfig,
    }

    fn router(src: &str) -> Router {
        let file: File = toml::from_str(src).expect("test routing parses");
        let templates: BTreeSet<String> = ["auto", "alert", "generic", "page"]
            .into_iter()
            .map(String::from)
            .collect();
        Router::new(&file.routing, &templates).expect("test routing compiles")
    }

    fn post(channel: &str, ts: &str) -> RefSent {
        RefSent {
            channel: channel.into(),
            ts: ts.into(),
        }
    }

    /// An alert without a dedup key is redrawn after an action with its route's template, not the built-in card.
    #[test]
    fn a_card_is_redrawn_with_the_template_of_the_route_that_posted_it() {
        let router = router(
            r#"
            [routing]
            default = { channels = ["general"] }
            [[routing.rule]]
            name = "db"
            match = { service = "db" }
            channels = ["db-alerts", "oncall"]
            template = "page"
            continue = true
            [[routing.rule]]
            name = "all"
            match = { kind = "alert" }
            channels = ["alerts"]
            template = "generic"
            "#,
        );
        let event: Event = serde_json::from_value(serde_json::json!({
            "title": "Disk full", "severity": "critical", "status": "firing", "source": "am", "service": "db"
        }))
        .unwrap();
        let posts = [post("C1", "1.1"), post("C2", "2.2"), post("C3", "3.3")];
        let cases = [
            ("C1", "1.1", Some("page")),
            ("C2", "2.2", Some("page")),
            ("C3", "3.3", Some("generic")),
            ("C3", "9.9", None),
        ];
        for (channel, ts, want) in cases {
            assert_eq!(
                card_template(&router, &event, &posts, channel, ts).as_deref(),
                want,
                "{channel} {ts}"
            );
        }
    }
}
