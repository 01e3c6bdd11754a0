use super::*;

fn state(status: Status) -> State {
    State {
        status,
        sev: 2,
        roles: BTreeMap::from([("commander".to_string(), "U0001".to_string())]),
        remind_at_ms: Some(10_000),
    }
}

fn reminders() -> Reminders {
    BTreeMap::from([(1, 10), (2, 30)])
}

fn kinds(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Timeline(t) => format!("timeline:{}:{}", t.kind, t.text),
            Effect::Refresh => "refresh".into(),
            Effect::Say(s) => format!("say:{s}"),
            Effect::Summarize => "summarize".into(),
            Effect::Refused(r) => format!("refused:{r}"),
        })
        .collect()
}

#[test]
fn each_input_moves_the_incident_and_says_what_to_do() {
    let now = 1_000_000;
    // (state, input, status after, sev after, effects)
    let table: Vec<(State, Input, Status, u8, Vec<&str>)> = vec![
        (
            state(Status::Investigating),
            Input::Status {
                to: Status::Mitigated,
                text: "rolled back".into(),
            },
            Status::Mitigated,
            2,
            vec!["timeline:status:mitigated: rolled back", "refresh"],
        ),
        (
            state(Status::Mitigated),
            Input::Status {
                to: Status::Mitigated,
                text: String::new(),
            },
            Status::Mitigated,
            2,
            vec!["refused:the incident is already mitigated"],
        ),
        (
            state(Status::Investigating),
            Input::Role {
                role: "commander".into(),
                user: "U0002".into(),
            },
            Status::Investigating,
            2,
            vec![
                "timeline:role:commander: <@U0002>",
                "refresh",
                "say:<@U0002> is now the commander.",
            ],
        ),
        (
            state(Status::Investigating),
            Input::Role {
                role: "commander".into(),
                user: "U0001".into(),
            },
            Status::Investigating,
            2,
            vec!["refused:<@U0001> is already the commander"],
        ),
        (
            state(Status::Investigating),
            Input::Severity { sev: 1 },
            Status::Investigating,
            1,
            vec!["timeline:severity:SEV2 → SEV1", "refresh"],
        ),
        (
            state(Status::Investigating),
            Input::Severity { sev: 7 },
            Status::Investigating,
            2,
            vec!["refused:severity 7 is not between 1 and 4"],
        ),
        (
            state(Status::Investigating),
            Input::Severity { sev: 2 },
            Status::Investigating,
            2,
            vec!["refused:the incident is already SEV2"],
        ),
        (
            state(Status::Identified),
            Input::Note {
                text: " Decision: roll back ".into(),
                pinned: false,
            },
            Status::Identified,
            2,
            vec!["timeline:note:Decision: roll back", "refresh"],
        ),
        (
            state(Status::Identified),
            Input::Note {
                text: "  ".into(),
                pinned: false,
            },
            Status::Identified,
            2,
            vec!["refused:a note needs some text"],
        ),
        (
            state(Status::Mitigated),
            Input::Resolve {
                text: String::new(),
            },
            Status::Resolved,
            2,
            vec!["timeline:resolved:resolved", "refresh", "summarize"],
        ),
        (
            state(Status::Investigating),
            Input::Status {
                to: Status::Resolved,
                text: "fixed".into(),
            },
            Status::Resolved,
            2,
            vec!["timeline:resolved:resolved: fixed", "refresh", "summarize"],
        ),
        (
            state(Status::Resolved),
            Input::Note {
                text: "late".into(),
                pinned: true,
            },
            Status::Resolved,
            2,
            vec!["refused:this incident is resolved"],
        ),
        (
            state(Status::Resolved),
            Input::Resolve {
                text: String::new(),
            },
            Status::Resolved,
            2,
            vec!["refused:this incident is resolved"],
        ),
    ];
    for (i, (s, input, status, sev, effects)) in table.into_iter().enumerate() {
        let (next, got) = decide(&s, &input, "U0003", &reminders(), now);
        assert_eq!(next.status, status, "row {i}: {input:?}");
        assert_eq!(next.sev, sev, "row {i}: {input:?}");
        assert_eq!(kinds(&got), effects, "row {i}: {input:?}");
        if got.iter().any(|e| matches!(e, Effect::Refused(_))) {
            assert_eq!(next, s, "row {i}: a refusal changes nothing");
        }
    }
}

#[test]
fn updates_move_the_reminder_by_the_severity_and_the_reminder_fires_once_due() {
    let s = state(Status::Investigating);
    let (next, _) = decide(
        &s,
        &Input::Note {
            text: "x".into(),
            pinned: false,
        },
        "U1",
        &reminders(),
        60_000,
    );
    assert_eq!(next.remind_at_ms, Some(60_000 + 30 * 60_000));
    let (next, _) = decide(&s, &Input::Severity { sev: 1 }, "U1", &reminders(), 60_000);
    assert_eq!(next.remind_at_ms, Some(60_000 + 10 * 60_000));
    let (next, _) = decide(&s, &Input::Severity { sev: 3 }, "U1", &reminders(), 60_000);
    assert_eq!(next.remind_at_ms, None, "no reminder configured for SEV3");
    // Not due yet: nothing.
    let (same, effects) = decide(&s, &Input::Remind, "sluice", &reminders(), 9_999);
    assert!(effects.is_empty());
    assert_eq!(same, s);
    // Due: one reminder, and the next one later.
    let (next, effects) = decide(&s, &Input::Remind, "sluice", &reminders(), 10_000);
    assert_eq!(effects.len(), 2, "{effects:?}");
    assert!(matches!(&effects[1], Effect::Say(t) if t.starts_with("Reminder:")));
    assert_eq!(next.remind_at_ms, Some(10_000 + 30 * 60_000));
    let (next, _) = decide(
        &s,
        &Input::Resolve {
            text: String::new(),
        },
        "U1",
        &reminders(),
        5,
    );
    assert_eq!(
        next.remind_at_ms, None,
        "a resolved incident is not reminded"
    );
}

#[test]
fn channel_names_are_what_slack_accepts() {
    let table = [
        (
            "inc-2026-12-02-checkout-errors",
            Some("inc-2026-12-02-checkout-errors"),
        ),
        ("#Esc-ACME Corp!!", Some("esc-acme-corp")),
        ("  ---  ", None),
        ("a_b", Some("a_b")),
    ];
    for (raw, want) in table {
        assert_eq!(channel_name(raw).as_deref(), want, "{raw}");
    }
    let long = channel_name(&"x".repeat(200)).unwrap();
    assert_eq!(long.len(), 76);
    assert_eq!(next_name(&long, 1).len(), 78);
    assert_eq!(next_name("inc-a", 1), "inc-a-2");
    assert_eq!(
        slug("Checkout errors: 500s on /pay"),
        "checkout-errors-500s-on-pay"
    );
}

#[test]
fn decisions_and_action_items_are_marked_lines() {
    let table = [
        ("Decision: roll back", Some(("decision", "roll back"))),
        (
            "decision:  freeze deploys",
            Some(("decision", "freeze deploys")),
        ),
        ("TODO: add an alert", Some(("action", "add an alert"))),
        ("AI: postmortem", Some(("action", "postmortem"))),
        ("aim high", None),
        ("looking at logs", None),
        // Multi-byte text whose bytes a prefix's length would cut inside a character.
        ("ééé", None),
        ("日本語のメモ", None),
        ("Décision: on garde", None),
    ];
    for (text, want) in table {
        let got = marked(text);
        assert_eq!(got.as_ref().map(|(k, t)| (*k, t.as_str())), want, "{text}");
    }
}

fn record() -> IncidentRecord {
    IncidentRecord {
        id: "inc_1".into(),
        declare_key: "k".into(),
        kind: "default".into(),
        title: "Checkout errors".into(),
        sev: 2,
        status: "resolved".into(),
        channel_name: "inc-x".into(),
        channel_id: Some("C1".into()),
        declarer: "U0001".into(),
        roles: BTreeMap::from([("commander".to_string(), "U0002".to_string())]),
        origin: json!({"text": "customer says <checkout> fails", "permalink": "https://x/p1"}),
        context: json!({"error": "HTTP 500"}),
        created_at_ms: 0,
        resolved_at_ms: Some(3_900_000),
        remind_at_ms: None,
        version: 3,
        card_item_id: None,
        card: None,
        announcement_item_id: None,
        announcement: None,
    }
}

#[test]
fn the_summary_has_duration_people_decisions_actions_and_timeline() {
    let timeline = vec![
        TimelineEntry {
            seq: 1,
            at_ms: 0,
            author: "U0001".into(),
            kind: "declared".into(),
            text: "declared".into(),
        },
        TimelineEntry {
            seq: 2,
            at_ms: 60_000,
            author: "U0003".into(),
            kind: "note".into(),
            text: "Decision: roll back".into(),
        },
        TimelineEntry {
            seq: 3,
            at_ms: 120_000,
            author: "U0004".into(),
            kind: "note".into(),
            text: "saw 500s".into(),
        },
        TimelineEntry {
            seq: 4,
            at_ms: 130_000,
            author: "U0002".into(),
            kind: "pinned".into(),
            text: "freeze deploys".into(),
        },
    ];
    let messages = vec![
        RoomMessage {
            user: "U0004".into(),
            text: "TODO: add a canary".into(),
            pinned: false,
        },
        RoomMessage {
            user: "U0002".into(),
            text: "we keep the flag off".into(),
            pinned: true,
        },
        RoomMessage {
            user: "U0002".into(),
            text: "chatter".into(),
            pinned: false,
        },
    ];
    let s = summary(&record(), &timeline, &messages, 0);
    for want in [
        "*Duration:* 1h 05m",
        "<@U0001>, <@U0002>, <@U0003>, <@U0004>",
        "• roll back",
        "• we keep the flag off",
        "• freeze deploys",
        "• add a canary",
        "00:01:00 <@U0003> note: Decision: roll back",
    ] {
        assert!(s.contains(want), "{want} missing from:\n{s}");
    }
    assert!(!s.contains("chatter"), "{s}");
    assert!(
        !s.contains("• saw 500s"),
        "a plain note is no decision: {s}"
    );
}

#[test]
fn the_card_shows_the_context_or_that_the_lookup_failed_and_the_origin() {
    let c = card(&record(), &[]);
    let text = c["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(text.contains("the lookup failed (HTTP 500)"), "{text}");
    assert!(text.contains("<https://x/p1|the message>"), "{text}");
    assert!(text.contains("&lt;checkout&gt;"), "escaped: {text}");
    let mut r = record();
    r.context = json!({"customer": "Acme", "tier": "gold", "account_manager": "U0004"});
    let c = card(&r, &[]);
    let text = c["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        text.contains("customer *Acme*, tier gold, account manager <@U0004>"),
        "{text}"
    );
    let a = announcement(&r);
    assert!(a["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("<#C1>"));
}

#[test]
fn shown_text_is_escaped_but_keeps_mentions() {
    assert_eq!(show("commander: <@U0002>"), "commander: <@U0002>");
    assert_eq!(
        show("ask <@U0002|bob> in <#C0001>"),
        "ask <@U0002|bob> in <#C0001>"
    );
    assert_eq!(
        show("a <b> & <!channel>"),
        "a &lt;b&gt; &amp; &lt;!channel&gt;"
    );
}

#[test]
fn a_digest_picks_decisions_action_items_and_the_busiest_threads() {
    let m = |text: &str, pinned: bool, replies: u32| DigestMessage {
        text: text.into(),
        pinned,
        replies,
    };
    let msgs = vec![
        m("Decision: ship on Friday", false, 0),
        m("notes\nTODO: write the runbook", false, 0),
        m("we use postgres 16", true, 0),
        m("lunch?", false, 0),
        m("why is CI slow", false, 7),
        m("new laptop", false, 2),
    ];
    let d = digest("eng", &msgs).unwrap();
    for want in [
        "*Digest of #eng*",
        "*Decisions:*\n• ship on Friday\n• we use postgres 16",
        "*Action items:*\n• write the runbook",
        "*Busiest threads:*\n• why is CI slow (7 replies)\n• new laptop (2 replies)",
    ] {
        assert!(d.contains(want), "{want} missing from:\n{d}");
    }
    assert!(!d.contains("lunch"), "{d}");
    assert_eq!(digest("eng", &[m("lunch?", false, 0)]), None);
}
