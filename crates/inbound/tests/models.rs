//! Every payload type parsed from a fixture shaped like Slack's real payloads, including
//! enterprise installs where `team` is null.

mod common;

use common::fixture;
use sluice_inbound::models::{EventCallback, Interaction, SlashCommand};

fn interaction(name: &str) -> Interaction {
    Interaction::from_json(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn block_actions_from_a_message() {
    let Interaction::BlockActions(p) = interaction("block_actions") else {
        panic!("kind")
    };
    assert_eq!(p.common.team_id().as_deref(), Some("T0ABCDEF1"));
    assert_eq!(p.common.user.id, "U0123ABCD");
    assert_eq!(p.container.message_ts.as_deref(), Some("1712345678.000100"));
    assert_eq!(p.channel.unwrap().id, "C0INCIDNT");
    assert_eq!(p.actions[0].action_id, "approve");
    assert_eq!(p.actions[0].value.as_deref(), Some("req-42"));
    assert_eq!(
        p.message.unwrap().metadata.unwrap()["event_payload"]["request_id"],
        "req-42"
    );
}

#[test]
fn enterprise_payloads_have_no_team_and_fall_back_to_the_org() {
    let Interaction::BlockActions(p) = interaction("block_actions_enterprise") else {
        panic!("kind")
    };
    assert_eq!(p.common.team, None);
    assert!(p.common.is_enterprise_install);
    assert_eq!(p.common.team_id().as_deref(), Some("E0ACMEORG"));
    assert_eq!(p.common.enterprise_id().as_deref(), Some("E0ACMEORG"));
    assert_eq!(p.container.view_id.as_deref(), Some("V0MODAL01"));
    assert_eq!(p.actions[0].selected_option.as_ref().unwrap().value, "1h");
    assert_eq!(p.channel, None);

    let Interaction::ViewSubmission(v) = interaction("view_submission_enterprise") else {
        panic!("kind")
    };
    assert_eq!(v.common.team, None);
    assert_eq!(v.common.team_id().as_deref(), Some("E0ACMEORG"));
    assert_eq!(v.view.callback_id, "silence_form");

    let e: EventCallback = serde_json::from_value(fixture("event_reaction_enterprise")).unwrap();
    assert_eq!(e.team_id, None);
    assert_eq!(e.team().as_deref(), Some("E0ACMEORG"));
    let ev = e.event.unwrap();
    assert_eq!(ev.kind, "reaction_added");
    assert_eq!(
        ev.channel.as_deref(),
        Some("C0INCIDNT"),
        "channel read from item"
    );
    assert_eq!(ev.raw["reaction"], "eyes");
}

#[test]
fn view_submission_state_values() {
    let Interaction::ViewSubmission(v) = interaction("view_submission") else {
        panic!("kind")
    };
    let s = &v.view.state;
    assert_eq!(
        s.get("dur", "duration")
            .unwrap()
            .selected_option
            .as_ref()
            .unwrap()
            .value,
        "1h"
    );
    assert_eq!(
        s.get("who", "owner").unwrap().selected_user.as_deref(),
        Some("U0OWNER01")
    );
    assert_eq!(s.get("why", "reason").unwrap().value, None);
    assert_eq!(v.view.private_metadata, "{\"alert\":\"db-latency\"}");
    assert_eq!(v.view.previous_view_id, None);
}

#[test]
fn suggestion_closed_shortcut_and_message_action() {
    let Interaction::BlockSuggestion(s) = interaction("block_suggestion") else {
        panic!("kind")
    };
    assert_eq!(
        (s.action_id.as_str(), s.value.as_str()),
        ("service_picker", "pay")
    );
    let Interaction::ViewClosed(c) = interaction("view_closed") else {
        panic!("kind")
    };
    assert_eq!(c.view.id, "V0MODAL05");
    assert!(!c.is_cleared);
    let Interaction::Shortcut(g) = interaction("shortcut") else {
        panic!("kind")
    };
    assert_eq!(g.callback_id, "new_incident");
    assert_eq!(
        g.common.trigger_id.as_deref(),
        Some("7012345678904.1234567890.aaaaaa")
    );
    let Interaction::MessageAction(m) = interaction("message_action") else {
        panic!("kind")
    };
    assert_eq!(m.kind, "message_action");
    assert_eq!(m.message.unwrap().text.as_deref(), Some("db is slow again"));
    assert_eq!(m.channel.unwrap().id, "C0INCIDNT");
}

#[test]
fn event_callback_and_unknown_types() {
    let e: EventCallback = serde_json::from_value(fixture("event_app_mention")).unwrap();
    assert_eq!(e.event_id.as_deref(), Some("Ev0APPMENT1"));
    assert_eq!(e.team().as_deref(), Some("T0ABCDEF1"));
    assert_eq!(
        e.event.unwrap().text.as_deref(),
        Some("<@U0SLUICEBOT> status db")
    );
    let other =
        Interaction::from_json(serde_json::json!({"type": "workflow_step_edit", "x": 1})).unwrap();
    assert_eq!(other.kind(), "workflow_step_edit");
}

#[test]
fn almost_empty_payloads_still_parse() {
    for kind in [
        "block_actions",
        "block_suggestion",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
    ] {
        let i = Interaction::from_json(serde_json::json!({"type": kind, "team": null, "user": null, "view": null, "actions": null}))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(i.kind(), kind);
    }
    assert!(Interaction::from_form(b"nothing=here").is_err());
    assert!(Interaction::from_form(b"payload=%7Bnot-json").is_err());
}

#[test]
fn slash_command_form() {
    let c = SlashCommand::from_form(b"command=%2Fops&text=page+db&user_id=U1&channel_id=C1&team_id=T1&enterprise_id=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F1%2Fx&trigger_id=1.2.3&api_app_id=A1&future_field=1").unwrap();
    assert_eq!(c.command, "/ops");
    assert_eq!(c.text, "page db");
    assert_eq!(c.response_url, "https://hooks.slack.com/commands/T1/1/x");
    assert!(!c.is_ssl_check());
}
