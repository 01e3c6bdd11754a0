//! The outbound pipeline: an accepted [`Event`] becomes a [`NewEvent`] — its fate and the Slack
//! calls it causes — ready to be committed in one transaction.
//!
//! Routing and rendering are pure (sluice-core); this module only joins them to the store's
//! types. Nothing here does IO: the caller commits the result.

use sluice_core::event::{Event, Status};
use sluice_core::render::{RenderContext, Renderer};
use sluice_core::route::{Decision, Router};
use sluice_slack::blocks::fit_message;
use sluice_store::{Dedup, Fate, NewEvent, NewOutboxItem};
use time::OffsetDateTime;

use crate::living::{self, Part};
use crate::silence::SilenceSet;

/// What the pipeline needs besides the event: routing, rendering and the workspace.
pub struct Pipeline<'a> {
    pub silences: &'a SilenceSet,
    pub router: &'a Router,
    pub renderer: &'a Renderer,
    pub team: &'a str,
    pub dedup_window_ms: i64,
}

/// Why an event could not be turned into Slack calls. The event is then refused with a 4xx
/// rather than accepted and lost.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PipelineError(pub String);

/// The lane of a channel: one channel in one workspace, worked in order by one dispatcher.
pub fn lane(team: &str, channel: &str) -> String {
    format!("{team}:{}", channel.trim_start_matches('#'))
}

/// A chat.postMessage (or chat.update, …) into `channel`.
pub fn outbox_item(
    team: &str,
    channel: &str,
    method: &str,
    args: serde_json::Value,
) -> NewOutboxItem {
    let channel = channel.trim_start_matches('#').to_string();
    NewOutboxItem {
        lane: lane(team, &channel),
        team: team.to_string(),
        channel,
        method: method.to_string(),
        args,
        ref_post: false,
    }
}

impl Pipeline<'_> {
    /// Route and render one event received at `now`.
    pub fn process(
        &self,
        id: String,
        event: &Event,
        body: serde_json::Value,
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
        for d in &deliveries {
            let ctx = RenderContext {
                event_id: &new.id,
                channel: &d.channel,
                template: &d.template,
                count: 1,
                now,
            };
            let mut args = self
                .renderer
                .render(event, &ctx)
                .map_err(|e| PipelineError(format!("rendering for channel {}: {e}", d.channel)))?;
            fit_message(&mut args);
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
            }
            new.outbox
                .push(outbox_item(self.team, &d.channel, "chat.postMessage", args));
        }
        new.fate = Fate::Queued { rules: matched };
        if let Some(key) = &event.dedup_key {
            new.dedup = Some(Dedup {
                key: key.clone(),
                window_ms: self.dedup_window_ms,
                resolves,
                on_open,
                refresh,
                reopen_window_ms: self.dedup_window_ms,
                on_reopen,
            });
        }
        Ok(new)
    }
}
