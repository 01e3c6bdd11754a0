//! The alert workflow's pure side, in one module: its state machine ([`State`], [`Input`], [`Effect`], [`decide`],
//! defined in `sluice-model` beneath the store so the store's ingest can call it), the one function that draws
//! an alert's card from where it stands ([`card`]: the living refresh of a deduplicated alert at send time, and the
//! immediate update of an alert without a dedup key after an action, so the two cannot drift apart), and the
//! messages a decision on the card sends ([`escalation`], [`resolved_reply`]).

use serde_json::{json, Value};
use sluice_core::event::{Event, Kind, Status};
use sluice_core::render::{AlertLife, RenderContext, RenderError, Renderer};
use sluice_model::NewOutboxItem;
use sluice_slack_wire::blocks::escape_mrkdwn;

pub use sluice_model::alert::{decide, reopens, Alert, Effect, Input, Life, Send, State, Verb};

use crate::action::{show_runs, RunShown};
use crate::clock::{at, clock};
use crate::outbox::outbox_item;
use crate::verb::show_actions;

/// When someone resolved the alert from Slack, if anyone did: the time of the recorded `resolve` decision among
/// `actions` (`(action, actor, at_ms)`, see `Store::alert_actions`). An alert resolved from Slack is shown
/// resolved even before its source says so.
pub fn resolved_from_slack(actions: &[(String, String, i64)]) -> Option<i64> {
    actions
        .iter()
        .find(|(action, _, _)| action == Verb::Resolve.as_str())
        .map(|(_, _, at_ms)| *at_ms)
}

/// Where a deduplicated alert stands once the decisions taken in Slack are counted: resolved at the recorded
/// `resolve` if its source has not resolved it yet.
pub fn life(mut life: AlertLife, actions: &[(String, String, i64)]) -> AlertLife {
    if life.resolved_at.is_none() {
        life.resolved_at = resolved_from_slack(actions).map(at);
    }
    life
}

/// What an alert's card shows: a deployment's card its latest event (running, then failed: the card says failed),
/// an alert's card its first event (what fired), drawn with its life (count, resolved).
pub fn content(first: Event, latest: Option<Event>) -> Event {
    match latest {
        Some(latest) if first.kind == Kind::Deployment => latest,
        _ => first,
    }
}

/// The card of alert `event` rendered with `ctx` (the route's template), with a line per recorded decision and no
/// button for what is done, resolved if its source or someone in Slack resolved it, and the status line of the
/// latest run of each `[[action]]` on it (`runs`: running since…, done, failed), so no redraw loses them.
///
/// `life` is where a deduplicated alert stands (count, first and last seen, resolved by its source); an alert
/// without a dedup key has none: it is its one event, and its card has no life line.
pub fn card(
    renderer: &Renderer,
    event: &Event,
    ctx: &RenderContext,
    life: Option<&AlertLife>,
    actions: &[(String, String, i64)],
    runs: &[RunShown],
) -> Result<Value, RenderError> {
    let mut card = match life {
        Some(l) => renderer.render_alert(event, ctx, &self::life(*l, actions))?,
        None => {
            let mut event = event.clone();
            if resolved_from_slack(actions).is_some() {
                event.status = Status::Resolved;
            }
            renderer.render(&event, ctx)?
        }
    };
    show_actions(&mut card, actions);
    if !runs.is_empty() {
        card["blocks"] = show_runs(&card["blocks"], runs);
    }
    Ok(card)
}

/// The card a decision was taken on, and who took it: what the messages a decision sends are addressed by.
pub struct OnCard<'a> {
    pub team: &'a str,
    /// The card's channel id and ts.
    pub channel: &'a str,
    pub ts: &'a str,
    /// Who decided.
    pub user: &'a str,
}

/// Where escalations go (`[actions] escalate_channel`, `escalate_group`).
pub struct EscalateTo<'a> {
    pub channel: Option<&'a str>,
    pub group: Option<&'a str>,
}

impl OnCard<'_> {
    /// A reply in the card's thread.
    fn reply(&self, text: String) -> NewOutboxItem {
        outbox_item(
            self.team,
            self.channel,
            "chat.postMessage",
            json!({ "channel": self.channel, "thread_ts": self.ts, "text": text }),
        )
    }
}

/// The reply in the card's thread when someone resolves the alert from Slack.
pub fn resolved_reply(on: &OnCard, at_ms: i64) -> NewOutboxItem {
    on.reply(format!(
        "✅ Resolved by <@{}> at {}.",
        on.user,
        clock(at_ms)
    ))
}

/// Where an escalation goes: with an escalation channel, a message there (mentioning the on-call group if there is
/// one) that links to the card, and a note in the card's thread saying where it went; with only a group, the
/// mention in the card's thread. The group is mentioned once, so it is notified once.
pub fn escalation(
    on: &OnCard,
    to: &EscalateTo,
    event: &Event,
    permalink: Option<&str>,
    at_ms: i64,
) -> Vec<NewOutboxItem> {
    let user = on.user;
    let mention = to
        .group
        .map(|g| format!("<!subteam^{g}> "))
        .unwrap_or_default();
    let title = escape_mrkdwn(&event.title);
    let service = if event.service.is_empty() {
        String::new()
    } else {
        format!(" ({})", escape_mrkdwn(&event.service))
    };
    match to.channel {
        Some(channel) => {
            let card = match permalink {
                Some(link) => format!("<{link}|the alert card>"),
                None => format!("the alert card in <#{}> (message {})", on.channel, on.ts),
            };
            let text = format!(
                ":rotating_light: {mention}*{title}*{service} was escalated by <@{user}> at {}: see {card}.",
                clock(at_ms)
            );
            let where_to = if channel.starts_with(['C', 'G'])
                && channel
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                format!("<#{channel}>")
            } else {
                format!("#{channel}")
            };
            vec![
                outbox_item(
                    on.team,
                    channel,
                    "chat.postMessage",
                    json!({ "channel": channel, "text": text }),
                ),
                on.reply(format!(
                    ":rotating_light: Escalated by <@{user}> to {where_to}."
                )),
            ]
        }
        None => vec![on.reply(format!(
            ":rotating_light: {mention}this alert was escalated by <@{user}> at {}.",
            clock(at_ms)
        ))],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use sluice_core::render::ACTION_ACK;
    use time::OffsetDateTime;

    use super::*;

    const T: i64 = 1_714_559_400_000; // 10:30 UTC

    fn event() -> Event {
        serde_json::from_value(
            json!({"title": "Disk full", "severity": "critical", "status": "firing",
            "source": "am", "service": "db"}),
        )
        .unwrap()
    }

    fn ctx(template: &str) -> RenderContext<'_> {
        RenderContext {
            event_id: "ev1",
            channel: "C1",
            template,
            count: 1,
            now: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// "Resolved if someone resolved it" holds for both kinds of card: with a life (deduplicated) and without.
    #[test]
    fn a_card_is_resolved_when_its_source_or_someone_in_slack_resolved_it() {
        let r = Renderer::new(&BTreeMap::new()).unwrap();
        let by_slack = [("resolve".to_string(), "U2".to_string(), T)];
        let firing = AlertLife {
            count: 3,
            first_seen: at(T - 60_000),
            last_seen: at(T - 30_000),
            resolved_at: None,
        };
        let by_source = AlertLife {
            resolved_at: Some(at(T - 10_000)),
            ..firing
        };
        type Case<'a> = (Option<&'a AlertLife>, &'a [(String, String, i64)], bool);
        let cases: [Case; 5] = [
            (None, &[], false),
            (None, &by_slack, true),
            (Some(&firing), &[], false),
            (Some(&firing), &by_slack, true),
            (Some(&by_source), &[], true),
        ];
        for (life, actions, resolved) in cases {
            let t = card(&r, &event(), &ctx("auto"), life, actions, &[])
                .unwrap()
                .to_string();
            assert_eq!(
                t.contains("[RESOLVED]"),
                resolved,
                "{life:?} {actions:?}: {t}"
            );
            assert_eq!(
                t.contains("Resolved by <@U2> at 10:30 UTC"),
                !actions.is_empty(),
                "{t}"
            );
        }
        // The source's time wins over the click's.
        let l = life(by_source, &by_slack);
        assert_eq!(l.resolved_at, Some(at(T - 10_000)));
        assert_eq!(life(firing, &by_slack).resolved_at, Some(at(T)));
    }

    #[test]
    fn a_card_is_drawn_with_the_template_it_is_given() {
        let r = Renderer::new(&BTreeMap::new()).unwrap();
        let auto = card(&r, &event(), &ctx("auto"), None, &[], &[]).unwrap();
        let generic = card(&r, &event(), &ctx("generic"), None, &[], &[]).unwrap();
        assert!(auto.to_string().contains(ACTION_ACK), "{auto}");
        assert_ne!(auto["blocks"], generic["blocks"]);
        assert_eq!(
            generic,
            r.render(&event(), &ctx("generic")).unwrap(),
            "nothing decided: the route's card as posted"
        );
    }

    /// Where an escalation goes and what it says, for each way `[actions]` can be set.
    #[test]
    fn an_escalation_goes_where_actions_says_and_mentions_the_group_once() {
        let on = OnCard {
            team: "T1",
            channel: "C0CARD",
            ts: "1.2",
            user: "U1",
        };
        let texts = |items: &[NewOutboxItem]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|i| {
                    (
                        i.channel.clone(),
                        i.args["text"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Vec<(&'a str, &'a str)>,
        );
        let cases: Vec<Case> = vec![
            (
                None,
                Some("S1"),
                None,
                vec![("C0CARD", ":rotating_light: <!subteam^S1> this alert was escalated by <@U1> at 10:30 UTC.")],
            ),
            (
                Some("oncall"),
                Some("S1"),
                Some("https://x/p1"),
                vec![
                    ("oncall", ":rotating_light: <!subteam^S1> *Disk full* (db) was escalated by <@U1> at 10:30 UTC: see <https://x/p1|the alert card>."),
                    ("C0CARD", ":rotating_light: Escalated by <@U1> to #oncall."),
                ],
            ),
            (
                Some("C0ONCALL"),
                None,
                None,
                vec![
                    ("C0ONCALL", ":rotating_light: *Disk full* (db) was escalated by <@U1> at 10:30 UTC: see the alert card in <#C0CARD> (message 1.2)."),
                    ("C0CARD", ":rotating_light: Escalated by <@U1> to <#C0ONCALL>."),
                ],
            ),
        ];
        for (channel, group, link, want) in cases {
            let to = EscalateTo { channel, group };
            let items = escalation(&on, &to, &event(), link, T);
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(c, t)| (c.to_string(), t.to_string()))
                .collect();
            assert_eq!(texts(&items), want, "{channel:?} {group:?}");
            assert!(items
                .iter()
                .filter(|i| i.channel == "C0CARD")
                .all(|i| i.args["thread_ts"] == "1.2"));
        }
        let reply = resolved_reply(&on, T);
        assert_eq!(reply.args["text"], "✅ Resolved by <@U1> at 10:30 UTC.");
        assert_eq!(reply.args["thread_ts"], "1.2");
    }
}
