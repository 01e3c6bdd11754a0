//! Living alert messages: the outbox items that keep one alert's card and thread up to date, and how the
//! dispatcher turns them into Slack calls at send time.
//!
//! The pipeline cannot know, when an event is accepted, how many duplicates its alert will have gathered by the
//! time Slack is called — and with coalescing (see `sluice_model::Dedup::refresh`) one refresh stands for many
//! duplicates. So a living item carries only a marker (`{"sluice_living": {"part", "template"}}`); the dispatcher
//! asks the store for the alert as it stands (`Store::alert_card`) and renders it with the pure
//! [`Renderer::render_alert`] just before the call.
//!
//! An event's first card is drawn at send time too ([`post`], [`event_post`]): a channel takes about one message a
//! second, so in a storm most cards wait in the outbox, and rendering them when the event is accepted would spend
//! the request's time and the commit's bytes on cards that are drawn again, or never sent. The card is drawn from
//! what the store holds when Slack is called: the event, and for an alert its count and state by then.

use serde_json::{json, Value};
use sluice_core::event::{Event, Status};
use sluice_core::render::{
    refire_reply, resolved_reply, AlertLife, RenderContext, RenderError, Renderer,
};
use sluice_model::{AlertCard, NewOutboxItem};
use sluice_slack_wire::blocks::fit_message;
use time::OffsetDateTime;

use crate::action::RunShown;
use crate::alert;
use crate::clock::at;
use crate::outbox::outbox_item;

/// The key of the marker in a living item's args.
pub const LIVING_KEY: &str = "sluice_living";

/// What a living item becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `chat.postMessage` of the alert's first card: as the event was received, or with its count and state if
    /// duplicates or its resolution came in while the post waited.
    Post,
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
            Part::Post => "post",
            Part::Card => "card",
            Part::ResolvedReply => "resolved_reply",
            Part::RefireReply => "refire_reply",
        }
    }

    fn parse(s: &str) -> Option<Part> {
        [
            Part::Post,
            Part::Card,
            Part::ResolvedReply,
            Part::RefireReply,
        ]
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

/// The first card of a deduplicated alert in `channel`, drawn at send time with `template`. The store links the
/// alert to this item (`alert_posts`), which is how the dispatcher finds the alert it draws.
pub fn post(team: &str, channel: &str, template: &str) -> NewOutboxItem {
    outbox_item(
        team,
        channel,
        "chat.postMessage",
        marker(channel, Part::Post, template),
    )
}

pub fn is_living(args: &Value) -> bool {
    args.get(LIVING_KEY).is_some()
}

/// The key of an event card's marker: a `chat.update` of the card of an event without a dedup key (it has no alert
/// life to refresh), drawn at send time from the event, the decisions and the `[[action]]` runs on it as they stand.
pub const EVENT_CARD_KEY: &str = "sluice_event_card";

/// The args of an event card's `chat.update` (`channel`, `ts`: the card), rendered later with `template`.
pub fn event_card_marker(channel: &str, ts: &str, event_id: &str, template: &str) -> Value {
    json!({
        "channel": channel,
        "ts": ts,
        EVENT_CARD_KEY: { "event_id": event_id, "template": template },
    })
}

/// The first card of an event without a dedup key in `channel`: a `chat.postMessage` drawn at send time from the
/// stored event with `template`, as [`render_event_card`] draws its redraws.
pub fn event_post(team: &str, channel: &str, event_id: &str, template: &str) -> NewOutboxItem {
    let args = json!({
        "channel": channel,
        EVENT_CARD_KEY: { "event_id": event_id, "template": template },
    });
    outbox_item(team, channel, "chat.postMessage", args)
}

/// What the first card of `event` (accepted as `event_id`) shows in `channel` with `template` if nothing happens to
/// it before it is sent: what [`post`] and [`event_post`] items become when sent at once. The pipeline renders it
/// to refuse an event a user template cannot render (built-in cards cannot fail), and `sluice route test` to show it.
pub fn first_card(
    renderer: &Renderer,
    event: &Event,
    event_id: &str,
    channel: &str,
    template: &str,
    now: OffsetDateTime,
) -> Result<Value, RenderError> {
    let ctx = RenderContext {
        event_id,
        channel,
        template,
        count: 1,
        now,
    };
    let mut out = alert::card(renderer, event, &ctx, None, &[], &[])?;
    fit_message(&mut out);
    Ok(out)
}

/// [`first_card`] for the args of a [`post`] or [`event_post`] item; `None` if `args` is neither.
pub fn first_card_of(
    renderer: &Renderer,
    args: &Value,
    event: &Event,
    event_id: &str,
    now: OffsetDateTime,
) -> Option<Result<Value, RenderError>> {
    let template = match (args.get(LIVING_KEY), args.get(EVENT_CARD_KEY)) {
        (Some(m), _) if m["part"] == Part::Post.as_str() => m["template"].as_str(),
        (_, Some(m)) if args.get("ts").is_none() => m["template"].as_str(),
        _ => None,
    }?;
    let channel = args["channel"].as_str().unwrap_or_default();
    Some(first_card(
        renderer, event, event_id, channel, template, now,
    ))
}

/// The event id an event card's marker names, if `args` is one.
pub fn event_card_of(args: &Value) -> Option<&str> {
    args.get(EVENT_CARD_KEY)?.get("event_id")?.as_str()
}

/// The real args of an event card's marker for `event` as it stands (see [`event_card_marker`]): `alert::card`
/// without a life, with the recorded decisions and runs. An error is a reason to dead-letter the item.
pub fn render_event_card(
    renderer: &Renderer,
    args: &Value,
    event: &Event,
    actions: &[(String, String, i64)],
    runs: &[RunShown],
    now: OffsetDateTime,
) -> Result<Value, String> {
    let marker = &args[EVENT_CARD_KEY];
    let channel = args["channel"].as_str().unwrap_or_default();
    let ctx = RenderContext {
        event_id: marker["event_id"].as_str().unwrap_or_default(),
        channel,
        template: marker["template"].as_str().unwrap_or("auto"),
        count: 1,
        now,
    };
    let mut out = alert::card(renderer, event, &ctx, None, actions, runs)
        .map_err(|e| format!("rendering the card: {e}"))?;
    out["channel"] = json!(channel);
    // A redraw names its card; a first post has no ts yet.
    if let Some(ts) = args.get("ts") {
        out["ts"] = ts.clone();
    }
    fit_message(&mut out);
    Ok(out)
}

/// Where the alert stands, in the renderer's terms.
/// Its duration is the source's when the source said when the alert started and ended (Alertmanager's `startsAt`,
/// `endsAt`), else the time between the first event and the close.
pub fn life_of(card: &AlertCard) -> AlertLife {
    AlertLife {
        count: card.count,
        first_seen: at(card.started_at_ms.unwrap_or(card.first_seen_ms)),
        last_seen: at(card.last_seen_ms),
        resolved_at: card.closed_at_ms.map(|c| at(card.ended_at_ms.unwrap_or(c))),
    }
}

/// The real args of a living item (`args` holds the marker) for the alert `card` as it stands. The caller adds
/// the referenced message's channel and ts. An error is a reason to dead-letter the item.
///
/// `actions` are the decisions recorded on the alert (`(action, actor, at_ms)`, see
/// `Store::alert_actions`): the card shows them, and one resolved from Slack is shown resolved. `runs` are the
/// latest `[[action]]` runs on it (`Store::action_runs_of`), each shown by its status line.
pub fn render(
    renderer: &Renderer,
    args: &Value,
    card: &AlertCard,
    actions: &[(String, String, i64)],
    runs: &[RunShown],
    now: OffsetDateTime,
) -> Result<Value, String> {
    let marker = &args[LIVING_KEY];
    let part = marker["part"]
        .as_str()
        .and_then(Part::parse)
        .ok_or_else(|| format!("unknown living message part {}", marker["part"]))?;
    let channel = args["channel"].as_str().unwrap_or_default();
    let read = |body: &Value| -> Result<Event, String> {
        serde_json::from_value(body.clone()).map_err(|e| {
            format!(
                "an event of the alert {} cannot be read: {e}",
                card.first_event_id
            )
        })
    };
    let latest = card.latest.as_ref().map(read).transpose()?;
    let event = alert::content(read(&card.body)?, latest);
    let life = alert::life(life_of(card), actions);
    let mut out = match part {
        Part::Post | Part::Card => {
            // A first post of an alert nothing has happened to since its event came in: the card as the event was
            // received, without a life line, as an alert without duplicates has always been first posted.
            let as_received = part == Part::Post
                && card.count <= 1
                && actions.is_empty()
                && (card.closed_at_ms.is_none() || event.status == Status::Resolved);
            let ctx = RenderContext {
                event_id: &card.first_event_id,
                channel,
                template: marker["template"].as_str().unwrap_or("auto"),
                count: card.count.max(1),
                now,
            };
            let life = (!as_received).then_some(&life);
            alert::card(renderer, &event, &ctx, life, actions, runs)
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
            started_at_ms: None,
            ended_at_ms: None,
            latest: None,
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
        let out = render(
            &r,
            &args,
            &card(None),
            &acked,
            &[],
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
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
                &[],
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap(),
        );
        assert!(t.contains("Resolved 10:45 UTC · lasted 15m · ×14"), "{t}");

        // A run on it stays on every redraw.
        let runs = [crate::action::RunShown {
            action: "restart".into(),
            label: "Restart".into(),
            state: crate::action::RunState::Running,
            actor: "U3".into(),
            at_ms: 1_714_560_000_000,
            note: String::new(),
        }];
        let out = render(
            &r,
            &args,
            &card(None),
            &acked,
            &runs,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        let t = text(&out);
        assert!(
            t.contains("Running Restart… (by <@U3>, since 10:40 UTC)"),
            "{t}"
        );
        assert!(t.contains("Acknowledged by <@U1>"), "{t}");
    }

    /// An event card's marker is drawn from the event with its decisions and runs, at its channel and ts; the
    /// marker never reaches Slack.
    #[test]
    fn an_event_card_is_drawn_at_send_time_with_its_decisions_and_runs() {
        let r = Renderer::new(&BTreeMap::new()).unwrap();
        let args = event_card_marker("C1", "1.2", "ev1", "auto");
        assert_eq!(event_card_of(&args), Some("ev1"));
        assert_eq!(event_card_of(&json!({"channel": "C1"})), None);
        let event: Event = serde_json::from_value(card(None).body).unwrap();
        let acked = [("ack".to_string(), "U1".to_string(), 1_714_559_500_000)];
        let runs = [crate::action::RunShown {
            action: "restart".into(),
            label: "Restart".into(),
            state: crate::action::RunState::Done,
            actor: "U3".into(),
            at_ms: 1_714_560_000_000,
            note: "HTTP 200".into(),
        }];
        let out = render_event_card(&r, &args, &event, &acked, &runs, OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(
            (out["channel"].as_str(), out["ts"].as_str()),
            (Some("C1"), Some("1.2"))
        );
        let t = text(&out);
        assert!(t.contains("Acknowledged by <@U1>"), "{t}");
        assert!(
            t.contains("Restart done (by <@U3>, 10:40 UTC): HTTP 200"),
            "{t}"
        );
        assert!(!t.contains(EVENT_CARD_KEY), "{t}");
    }

    /// An alert's first card is drawn when it is sent: as its event was received if nothing happened since (no life
    /// line, as an alert without duplicates has always been posted), with its count or its resolution if duplicates
    /// or the resolve came in while it waited. `first_card_of` shows what a first post becomes if sent at once.
    #[test]
    fn a_first_post_shows_the_alert_as_it_stands_when_sent() {
        let r = Renderer::new(&BTreeMap::new()).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let args = post("T1", "C1", "auto").args;
        let fresh = AlertCard {
            count: 1,
            ..card(None)
        };
        let event: Event = serde_json::from_value(fresh.body.clone()).unwrap();
        let at_once = first_card_of(&r, &args, &event, "ev1", now)
            .expect("a first post")
            .unwrap();
        let drawn = render(&r, &args, &fresh, &[], &[], now).unwrap();
        assert_eq!(drawn, at_once, "nothing happened: the card as received");
        assert!(!text(&drawn).contains("×1"), "{drawn}");

        let t = text(&render(&r, &args, &card(None), &[], &[], now).unwrap());
        assert!(
            t.contains("×14 · last 10:42 UTC"),
            "duplicates while it waited: {t}"
        );
        let resolved = AlertCard {
            count: 1,
            ..card(Some(1_714_560_600_000))
        };
        let t = text(&render(&r, &args, &resolved, &[], &[], now).unwrap());
        assert!(
            t.contains("Resolved 10:50 UTC"),
            "resolved while it waited: {t}"
        );

        let plain = event_post("T1", "C1", "ev1", "auto").args;
        assert!(first_card_of(&r, &plain, &event, "ev1", now).is_some());
        let out = render_event_card(&r, &plain, &event, &[], &[], now).unwrap();
        assert!(out.get("ts").is_none(), "a first post names no ts: {out}");
        assert!(!text(&out).contains(EVENT_CARD_KEY), "{out}");
        let update = marker("C1", Part::Card, "auto");
        assert!(first_card_of(&r, &update, &event, "ev1", now).is_none());
        let redraw = event_card_marker("C1", "1.2", "ev1", "auto");
        assert!(first_card_of(&r, &redraw, &event, "ev1", now).is_none());
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
            &[],
            now,
        )
        .unwrap();
        assert!(text(&again).contains("Firing again"), "{again}");
        let bad = json!({"channel": "C1", LIVING_KEY: {"part": "nonsense"}});
        assert!(render(&r, &bad, &card(None), &[], &[], now)
            .unwrap_err()
            .contains("nonsense"));
    }

    /// Regression, issue 15 defect 1: a failed deployment was shown as a success. GitLab sends `running` then
    /// `failed` for one deployment (GitHub `in_progress` then `failure`), the failure resolved the running card, and
    /// the card, drawn from the first event, read "Outcome: Succeeded". GitLab's `canceled` read "Succeeded with
    /// warnings". The card now reads the deployment's final state, with its severity.
    #[test]
    fn regression_a_failed_deployment_is_shown_as_a_success() {
        let r = Renderer::new(&BTreeMap::new()).unwrap();
        let deployment = |title: &str, severity: &str, status: &str, state: &str| {
            json!({"title": title, "severity": severity, "status": status, "kind": "deployment",
                   "source": "gitlab", "service": "shop", "environment": "production",
                   "labels": {"status": state}})
        };
        let running = deployment(
            "Deployment of shop to production is running",
            "info",
            "firing",
            "running",
        );
        let cases = [
            (
                deployment(
                    "Deployment of shop to production failed",
                    "error",
                    "resolved",
                    "failed",
                ),
                "*Outcome*\\nFailed",
                "[DEPLOY FAILED]",
            ),
            (
                deployment(
                    "Deployment of shop to production was canceled",
                    "warning",
                    "resolved",
                    "canceled",
                ),
                "*Outcome*\\nCanceled",
                "[DEPLOY CANCELED]",
            ),
            (
                deployment(
                    "Deployment of shop to production succeeded",
                    "ok",
                    "resolved",
                    "success",
                ),
                "*Outcome*\\nSucceeded",
                "[DEPLOYED]",
            ),
        ];
        for (last, outcome, tag) in cases {
            let c = AlertCard {
                body: running.clone(),
                count: 2,
                latest: Some(last.clone()),
                ..card(Some(1_714_560_600_000))
            };
            let out = render(
                &r,
                &marker("C1", Part::Card, "auto"),
                &c,
                &[],
                &[],
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap();
            let t = text(&out);
            assert!(t.contains(outcome), "{last}: {t}");
            assert!(t.contains(last["title"].as_str().unwrap()), "{t}");
            assert!(out["text"].as_str().unwrap().starts_with(tag), "{t}");
            assert!(!t.contains("is running"), "{t}");
        }
        // An alert's card stays its first event (what fired), whatever resolved it.
        let c = AlertCard {
            latest: Some(
                json!({"title": "Disk fine", "severity": "ok", "status": "resolved", "source": "am"}),
            ),
            ..card(Some(1_714_560_600_000))
        };
        let t = text(
            &render(
                &r,
                &marker("C1", Part::Card, "auto"),
                &c,
                &[],
                &[],
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap(),
        );
        assert!(t.contains("Disk full") && !t.contains("Disk fine"), "{t}");
    }

    /// Issue 15 defect 4: a card's duration is the source's (`startsAt` to `endsAt`), not the time between the
    /// deliveries Sluice happened to see.
    #[test]
    fn a_card_lasts_from_the_sources_start_to_its_end() {
        let r = Renderer::new(&BTreeMap::new()).unwrap();
        let c = AlertCard {
            first_seen_ms: 1_714_560_600_000 - 2_000,
            started_at_ms: Some(1_714_560_600_000 - 14 * 60_000),
            ended_at_ms: Some(1_714_560_600_000),
            ..card(Some(1_714_560_600_000 + 1_000))
        };
        let t = text(
            &render(
                &r,
                &marker("C1", Part::Card, "auto"),
                &c,
                &[],
                &[],
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap(),
        );
        assert!(t.contains("lasted 14m"), "{t}");
    }
}
