//! An alert's card, drawn from the alert as it stands: one function, [`card`], for every card the alert path
//! renders (the living refresh of a deduplicated alert at send time, and the immediate update of an alert without a
//! dedup key after an action), so the two cannot drift apart.

use serde_json::Value;
use sluice_core::event::{Event, Status};
use sluice_core::render::{AlertLife, RenderContext, RenderError, Renderer};

use crate::clock::at;
use crate::verb::{show_actions, Verb};

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

/// The card of alert `event` rendered with `ctx` (the route's template), with a line per recorded decision and no
/// button for what is done, resolved if its source or someone in Slack resolved it.
///
/// `life` is where a deduplicated alert stands (count, first and last seen, resolved by its source); an alert
/// without a dedup key has none: it is its one event, and its card has no life line.
pub fn card(
    renderer: &Renderer,
    event: &Event,
    ctx: &RenderContext,
    life: Option<&AlertLife>,
    actions: &[(String, String, i64)],
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
    Ok(card)
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
            let t = card(&r, &event(), &ctx("auto"), life, actions)
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
        let auto = card(&r, &event(), &ctx("auto"), None, &[]).unwrap();
        let generic = card(&r, &event(), &ctx("generic"), None, &[]).unwrap();
        assert!(auto.to_string().contains(ACTION_ACK), "{auto}");
        assert_ne!(auto["blocks"], generic["blocks"]);
        assert_eq!(
            generic,
            r.render(&event(), &ctx("generic")).unwrap(),
            "nothing decided: the route's card as posted"
        );
    }
}
