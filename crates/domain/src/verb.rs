//! The decisions people take on an alert ([`Verb`]: Acknowledge, Escalate, Silence 1 h, Resolve), and how a card
//! shows the ones recorded ([`show_actions`]): a line each, and no button for what is done.

use serde_json::{json, Value};
use sluice_core::render::{
    ACTIONS_BLOCK_ID, ACTION_ACK, ACTION_ESCALATE, ACTION_RESOLVE, ACTION_SILENCE,
};

use crate::clock::clock;

pub use sluice_model::alert::{Verb, SILENCE_MS};

/// The `action_id` of the card's button for `verb`.
pub fn action_id(verb: Verb) -> &'static str {
    match verb {
        Verb::Ack => ACTION_ACK,
        Verb::Escalate => ACTION_ESCALATE,
        Verb::Silence => ACTION_SILENCE,
        Verb::Resolve => ACTION_RESOLVE,
    }
}

/// What a recorded decision says after "Acknowledged", "Already …": "by <@U1> at 10:42 UTC", or for a silence
/// "until 11:42 UTC by <@U1>".
pub fn decided(verb: Verb, actor: &str, at_ms: i64) -> String {
    match verb {
        Verb::Silence => format!(
            "until {} by <@{actor}>",
            clock(at_ms.saturating_add(SILENCE_MS))
        ),
        _ => format!("by <@{actor}> at {}", clock(at_ms)),
    }
}

/// The card's line for a recorded decision: "Acknowledged by <@U1> at 10:42 UTC", "Silenced until 11:42 UTC by
/// <@U1>".
pub fn decision_line(action: &str, actor: &str, at_ms: i64) -> String {
    match Verb::parse(action) {
        Some(v) => {
            let past = v.past();
            let capital = past[..1].to_ascii_uppercase();
            format!("{capital}{} {}", &past[1..], decided(v, actor, at_ms))
        }
        None => format!("{action} by <@{actor}> at {}", clock(at_ms)),
    }
}

/// Puts the recorded decisions `(action, actor, at_ms)` on a rendered card: one context line each, and no button
/// for what is already done. Used by every card refresh, so a duplicate arriving after an acknowledgement does not
/// bring the button back.
pub fn show_actions(args: &mut Value, actions: &[(String, String, i64)]) {
    let done: Vec<&str> = actions
        .iter()
        .filter_map(|a| Verb::parse(&a.0))
        .map(action_id)
        .collect();
    if let Some(blocks) = args["blocks"].as_array_mut() {
        for block in blocks.iter_mut() {
            if block["block_id"] == ACTIONS_BLOCK_ID {
                if let Some(elements) = block["elements"].as_array_mut() {
                    elements.retain(|e| !done.contains(&e["action_id"].as_str().unwrap_or("")));
                }
            }
        }
        blocks.retain(|b| {
            b["block_id"] != ACTIONS_BLOCK_ID
                || b["elements"].as_array().is_some_and(|e| !e.is_empty())
        });
        let lines: Vec<Value> = actions
            .iter()
            .map(|(action, actor, at_ms)| json!({"type": "mrkdwn", "text": decision_line(action, actor, *at_ms)}))
            .collect();
        if !lines.is_empty() {
            blocks.push(json!({"type": "context", "elements": lines}));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sluice_core::event::Event;
    use sluice_core::render::{RenderContext, Renderer};

    use super::*;

    const T: i64 = 1_714_559_400_000; // 10:30 UTC

    fn buttons(card: &Value) -> Vec<String> {
        card["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["block_id"] == ACTIONS_BLOCK_ID)
            .flat_map(|b| b["elements"].as_array().unwrap().clone())
            .map(|e| e["action_id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn each_decision_takes_its_button_away_and_says_who_and_when() {
        let event: Event =
            serde_json::from_value(json!({"title": "Disk full", "severity": "critical",
            "status": "firing", "source": "am", "service": "db"}))
            .unwrap();
        let renderer = Renderer::new(&BTreeMap::new())
            .unwrap()
            .offer_escalate(true);
        let ctx = RenderContext {
            event_id: "ev1",
            channel: "C1",
            template: "auto",
            count: 1,
            now: time::OffsetDateTime::UNIX_EPOCH,
        };
        let decided = |a: &str, u: &str, at: i64| (a.to_string(), u.to_string(), at);
        type Case<'a> = (Vec<(String, String, i64)>, &'a [&'a str], &'a [&'a str]);
        let cases: Vec<Case> = vec![
            (
                vec![],
                &[ACTION_ACK, ACTION_ESCALATE, ACTION_SILENCE, ACTION_RESOLVE],
                &[],
            ),
            (
                vec![decided("ack", "U1", T)],
                &[ACTION_ESCALATE, ACTION_SILENCE, ACTION_RESOLVE],
                &["Acknowledged by <@U1> at 10:30 UTC"],
            ),
            (
                vec![
                    decided("ack", "U1", T),
                    decided("escalate", "U2", T + 60_000),
                    decided("silence", "U3", T + 120_000),
                ],
                &[ACTION_RESOLVE],
                &[
                    "Acknowledged by <@U1> at 10:30 UTC",
                    "Escalated by <@U2> at 10:31 UTC",
                    "Silenced until 11:32 UTC by <@U3>",
                ],
            ),
        ];
        for (actions, left, lines) in cases {
            let mut card = renderer.render(&event, &ctx).unwrap();
            show_actions(&mut card, &actions);
            assert_eq!(buttons(&card), left, "{actions:?}");
            let text = card.to_string();
            for line in lines {
                assert!(text.contains(line), "{line} missing: {text}");
            }
        }
        // Every button gone: no empty actions block is left (Slack refuses one).
        let mut card = renderer.render(&event, &ctx).unwrap();
        let all: Vec<_> = Verb::ALL
            .iter()
            .map(|v| decided(v.as_str(), "U1", T))
            .collect();
        show_actions(&mut card, &all);
        assert!(!card.to_string().contains(ACTIONS_BLOCK_ID));
    }

    #[test]
    fn a_decision_this_version_does_not_know_is_still_shown() {
        assert_eq!(decision_line("page", "U9", T), "page by <@U9> at 10:30 UTC");
    }
}
