use super::*;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2024-05-01 12:30:00 UTC);

fn ctx<'a>(template: &'a str) -> RenderContext<'a> {
    RenderContext {
        event_id: "01HXYZEVENT",
        channel: "C0ALERTS",
        template,
        count: 1,
        now: NOW,
    }
}

fn firing() -> Event {
    Event {
        title: "DB down".into(),
        text: "Primary postgres in eu-west-1 is not answering health checks".into(),
        severity: Severity::Critical,
        status: Status::Firing,
        kind: Kind::Alert,
        source: "prometheus".into(),
        service: "checkout".into(),
        environment: "production".into(),
        labels: [("team", "payments"), ("region", "eu-west-1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        fields: vec![Field {
            title: "Replica lag".into(),
            value: "42s".into(),
        }],
        links: vec![
            Link {
                title: "Runbook".into(),
                url: "https://runbooks.example.com/db-down".into(),
            },
            Link {
                title: "Dashboard".into(),
                url: "https://grafana.example.com/d/pg?var=a|b".into(),
            },
        ],
        dedup_key: Some("checkout-db-down".into()),
        occurred_at: Some(datetime!(2024-05-01 12:00:00 UTC)),
    }
}

fn deploy(severity: Severity) -> Event {
    Event {
        title: "checkout v1.42.0 to production".into(),
        text: "Changes: fix rounding in tax calculation".into(),
        severity,
        status: Status::Resolved,
        kind: Kind::Deployment,
        source: "github-actions".into(),
        service: "checkout".into(),
        environment: "production".into(),
        labels: BTreeMap::new(),
        fields: vec![],
        links: vec![Link {
            title: "Workflow run".into(),
            url: "https://github.com/acme/checkout/actions/runs/1".into(),
        }],
        dedup_key: None,
        occurred_at: None,
    }
}

fn renderer() -> Renderer {
    Renderer::new(&BTreeMap::new()).unwrap()
}

fn render(e: &Event, template: &str) -> Value {
    renderer().render(e, &ctx(template)).unwrap()
}

#[test]
fn snapshot_firing_alert() {
    insta::assert_json_snapshot!(render(&firing(), "auto"));
}

#[test]
fn snapshot_resolved_alert() {
    let mut e = firing();
    e.status = Status::Resolved;
    insta::assert_json_snapshot!(render(&e, "alert"));
}

#[test]
fn snapshot_deployment_success() {
    insta::assert_json_snapshot!(render(&deploy(Severity::Ok), "auto"));
}

#[test]
fn snapshot_deployment_failure() {
    insta::assert_json_snapshot!(render(&deploy(Severity::Error), "deployment"));
}

#[test]
fn snapshot_generic() {
    let mut e = firing();
    e.kind = Kind::Message;
    e.severity = Severity::Info;
    e.title = "Nightly backup finished".into();
    e.text = "3.2 TB in 41 minutes".into();
    e.service = "backup".into();
    e.labels.clear();
    insta::assert_json_snapshot!(render(&e, "auto"));
}

fn injection() -> Event {
    let mut e = firing();
    e.title = "<!channel> <@U123> & <https://evil.example|click me>".into();
    e.text = "<!here> please <!subteam^S123>".into();
    e.service = "<!everyone>".into();
    e.labels = [("<b>", "<!channel>")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    e.fields = vec![Field {
        title: "<x>".into(),
        value: "a&b".into(),
    }];
    e.links = vec![Link {
        title: "<!channel>".into(),
        url: "https://example.com/".into(),
    }];
    e
}

#[test]
fn snapshot_injection_attempt() {
    insta::assert_json_snapshot!(render(&injection(), "alert"));
}

#[test]
fn no_event_text_can_form_a_mention_or_link() {
    let mut generic = injection();
    generic.kind = Kind::Message;
    for (e, t) in [
        (injection(), "alert"),
        (generic, "generic"),
        (injection(), "deployment"),
    ] {
        let v = render(&e, t);
        // Metadata is machine-readable and never displayed, so it keeps the raw values.
        let s = format!("{}{}", v["text"], v["blocks"]);
        for bad in [
            "<!channel>",
            "<!here>",
            "<!everyone>",
            "<@U123>",
            "<https://evil",
            "<!subteam",
        ] {
            assert!(!s.contains(bad), "{t}: {bad} survived in {s}");
        }
        assert!(s.contains("&lt;!channel&gt;"), "{t}");
    }
}

fn oversized() -> Event {
    let mut e = firing();
    e.title = "T".repeat(1000);
    e.text = "x&y ".repeat(2500); // 10,000 chars, escapes crossing every cut point
    e.labels = (0..40)
        .map(|i| (format!("label_{i:02}"), "v".repeat(1000)))
        .collect();
    e.fields = (0..50)
        .map(|i| Field {
            title: format!("field {i}"),
            value: "<".repeat(2000),
        })
        .collect();
    e.links = (0..20)
        .map(|i| Link {
            title: "L".repeat(200),
            url: format!("https://example.com/{i}/{}", "p".repeat(2900)),
        })
        .collect();
    e.service = "s".repeat(200);
    e.source = "o".repeat(200);
    e
}

#[test]
fn snapshot_oversized_event() {
    let v = render(&oversized(), "alert");
    // The snapshot would be huge; record its shape: each block's type and text sizes.
    let shape: Vec<Value> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            json!({
                "type": b["type"],
                "text_chars": b["text"]["text"].as_str().map(|s| s.chars().count()),
                "text_end": b["text"]["text"].as_str().map(|s| s.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<String>()),
                "fields": b["fields"].as_array().map(|f| f.iter().map(|f| f["text"].as_str().map_or(0, |s| s.chars().count())).collect::<Vec<_>>()),
                "elements": b["elements"].as_array().map(Vec::len),
            })
        })
        .collect();
    insta::assert_json_snapshot!(json!({
        "text_chars": v["text"].as_str().map(|s| s.chars().count()),
        "blocks": shape,
    }));
}

/// Slack's limits, checked independently of the renderer: every violation as a message.
fn limit_violations(msg: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let mut check = |what: &str, n: usize, max: usize| {
        if n > max {
            out.push(format!("{what}: {n} > {max}"));
        }
    };
    check("text", chars(&msg["text"]), limits::MESSAGE_TEXT_SOFT);
    let blocks = msg["blocks"].as_array().cloned().unwrap_or_default();
    check("blocks", blocks.len(), limits::MESSAGE_BLOCKS);
    let mut ids = BTreeSet::new();
    let mut dup = Vec::new();
    for b in &blocks {
        if let Some(id) = b["block_id"].as_str() {
            check("block_id", id.len(), limits::ID);
            if !ids.insert(id.to_owned()) {
                dup.push(id.to_owned());
            }
        }
        match b["type"].as_str() {
            Some("header") => check("header", chars(&b["text"]["text"]), limits::HEADER_TEXT),
            Some("section") => {
                check(
                    "section text",
                    chars(&b["text"]["text"]),
                    limits::SECTION_TEXT,
                );
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                check("section fields", fields.len(), limits::SECTION_FIELDS);
                for f in &fields {
                    check("field", chars(&f["text"]), limits::SECTION_FIELD_TEXT);
                }
            }
            Some("context") => {
                let els = b["elements"].as_array().cloned().unwrap_or_default();
                check("context elements", els.len(), limits::CONTEXT_ELEMENTS);
                for el in &els {
                    check("context text", chars(&el["text"]), limits::CONTEXT_TEXT);
                }
            }
            Some("actions") => {
                let els = b["elements"].as_array().cloned().unwrap_or_default();
                check("actions elements", els.len(), limits::ACTIONS_ELEMENTS);
                let mut actions = BTreeSet::new();
                for el in &els {
                    check(
                        "button text",
                        chars(&el["text"]["text"]),
                        limits::BUTTON_TEXT,
                    );
                    check("button url", chars(&el["url"]), limits::BUTTON_URL);
                    check("button value", chars(&el["value"]), limits::BUTTON_VALUE);
                    let id = el["action_id"].as_str().unwrap_or("");
                    check("action_id", id.len(), limits::ID);
                    if !actions.insert(id.to_owned()) {
                        dup.push(id.to_owned());
                    }
                }
            }
            other => check(&format!("unexpected block type {other:?}"), 1, 0),
        }
    }
    for d in dup {
        check(&format!("duplicate id {d}"), 1, 0);
    }
    out
}

#[test]
fn every_card_is_within_limits() {
    let r = renderer();
    let mut events = vec![
        firing(),
        injection(),
        oversized(),
        deploy(Severity::Ok),
        deploy(Severity::Critical),
    ];
    let mut resolved = oversized();
    resolved.status = Status::Resolved;
    events.push(resolved);
    let mut minimal = firing();
    minimal.text.clear();
    minimal.service.clear();
    minimal.environment.clear();
    minimal.labels.clear();
    minimal.fields.clear();
    minimal.links.clear();
    events.push(minimal);
    for e in &events {
        for kind in Kind::ALL {
            let mut e = e.clone();
            e.kind = kind;
            for template in BUILTIN_TEMPLATES {
                for count in [1, 3, u32::MAX] {
                    let c = RenderContext {
                        count,
                        ..ctx(template)
                    };
                    let v = r.render(&e, &c).unwrap();
                    let bad = limit_violations(&v);
                    assert!(bad.is_empty(), "{template}/{kind}/{count}: {bad:?}");
                    // The Slack layer's own checker agrees, and its final fitting pass
                    // (which the integrator runs) has nothing to change.
                    let slack = sluice_slack_wire::blocks::check_message(&v);
                    assert!(slack.is_empty(), "{template}/{kind}/{count}: {slack:?}");
                    let mut fitted = v.clone();
                    let notes = sluice_slack_wire::blocks::fit_message(&mut fitted);
                    assert!(notes.is_empty(), "{template}/{kind}/{count}: {notes:?}");
                    assert!(!v["text"].as_str().unwrap_or("").is_empty());
                    assert_eq!(v["channel"], "C0ALERTS");
                    assert_eq!(v["metadata"]["event_type"], METADATA_EVENT_TYPE);
                    assert_eq!(v["metadata"]["event_payload"]["event_id"], "01HXYZEVENT");
                }
            }
        }
    }
}

#[test]
fn fallback_text_and_count() {
    let r = renderer();
    let e = firing();
    let v = r.render(&e, &ctx("auto")).unwrap();
    assert_eq!(v["text"], "[CRITICAL] checkout: DB down");
    let v = r
        .render(
            &e,
            &RenderContext {
                count: 7,
                ..ctx("auto")
            },
        )
        .unwrap();
    assert_eq!(v["text"], "[CRITICAL] checkout: DB down (×7)");
    assert_eq!(
        v["blocks"][0]["text"]["text"],
        ":rotating_light: DB down (×7)"
    );
    assert_eq!(v["metadata"]["event_payload"]["count"], 7);
    let mut e = firing();
    e.status = Status::Resolved;
    e.service.clear();
    assert_eq!(
        r.render(&e, &ctx("auto")).unwrap()["text"],
        "[RESOLVED] DB down"
    );
}

#[test]
fn truncation_never_splits_an_escape() {
    for n in 1..12 {
        let s = fit(&escape(&"&".repeat(20)), n);
        assert!(s.chars().count() <= n, "{s}");
        assert!(s.ends_with('…'));
        let body = s.trim_end_matches('…');
        assert!(body.split("&amp;").all(str::is_empty), "{n}: {s}");
    }
    assert_eq!(fit("short", 5), "short");
    assert_eq!(fit("longer", 5), "long…");
}

#[test]
fn unknown_template_is_an_error() {
    let e = renderer().render(&firing(), &ctx("nope")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown template \"nope\"; known templates are alert, auto, deployment, generic"
    );
}

fn user(templates: &[(&str, &str)]) -> Result<Renderer, Vec<ConfigError>> {
    Renderer::new(
        &templates
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect(),
    )
}

#[test]
fn user_templates_render_json_with_escaped_values() {
    let r = user(&[
        (
            "page",
            r#"{"text": {{ "PAGE: " ~ event.title }}, "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": {{ emoji ~ " *" ~ event.title ~ "* (" ~ event.labels.team ~ ")" }}}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": {{ "event " ~ event_id ~ " ×" ~ count }}}]}
            ]}"#,
        ),
        ("bare", r#"[{"type": "section", "text": {"type": "mrkdwn", "text": {{ event.text }}}}]"#),
    ])
    .unwrap();
    assert_eq!(
        r.template_names().into_iter().collect::<Vec<_>>(),
        ["alert", "auto", "bare", "deployment", "generic", "page"]
    );
    let mut e = firing();
    e.title = "quote \" backslash \\ <!channel>".into();
    let v = r.render(&e, &ctx("page")).unwrap();
    assert_eq!(v["text"], "PAGE: quote \" backslash \\ &lt;!channel&gt;");
    assert_eq!(
        v["blocks"][0]["text"]["text"],
        ":rotating_light: *quote \" backslash \\ &lt;!channel&gt;* (payments)"
    );
    assert_eq!(
        v["blocks"][1]["elements"][0]["text"],
        "event 01HXYZEVENT ×1"
    );
    assert_eq!(v["metadata"]["event_payload"]["template"], "page");
    assert!(r.check().is_empty(), "{:?}", r.check());

    // A bare blocks array gets the built-in fallback text.
    let v = r.render(&e, &ctx("bare")).unwrap();
    assert_eq!(
        v["text"],
        "[CRITICAL] checkout: quote \" backslash \\ &lt;!channel&gt;"
    );
    assert_eq!(v["blocks"][0]["text"]["text"], escape(&e.text));
}

#[test]
fn bad_user_templates() {
    let errs = user(&[
        ("broken", "{\"text\": {{ event.title }"),
        ("alert", "[]"),
        ("fine", "[]"),
    ])
    .unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs.iter().any(|e| e
            .message
            .contains("template \"broken\" has a syntax error on line 1")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.message.contains("\"alert\" is the name of a built-in")),
        "{errs:?}"
    );

    let r = user(&[
        ("quoted", r#"{"text": "{{ event.title }}"}"#),
        ("number", "42"),
        ("extra", r#"{"text": "a", "attachments": []}"#),
        ("undefined", r#"{"text": {{ event.nope }}}"#),
    ])
    .unwrap();
    let e = firing();
    let err = r.render(&e, &ctx("quoted")).unwrap_err();
    assert!(
        matches!(&err, RenderError::InvalidJson { name, .. } if name == "quoted"),
        "{err}"
    );
    assert!(err.to_string().contains("line 1 column"), "{err}");
    let err = r.render(&e, &ctx("number")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template \"number\" produced a number; expected a blocks array or an object with \"text\" and/or \"blocks\" (an array)"
    );
    let err = r.render(&e, &ctx("extra")).unwrap_err();
    assert!(err.to_string().contains("the key \"attachments\""), "{err}");
    let err = r.render(&e, &ctx("undefined")).unwrap_err();
    assert!(matches!(err, RenderError::Template { .. }), "{err}");
    let warnings = r.check();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
}

#[test]
fn durations_read_at_the_precision_people_care_about() {
    let table = [
        (45, "45s"),
        (720, "12m"),
        (725, "12m 5s"),
        (3600, "1h"),
        (3 * 3600 + 4 * 60 + 9, "3h 4m"),
        (2 * 86_400 + 3600, "2d 1h"),
        (-5, "0s"),
    ];
    for (secs, want) in table {
        assert_eq!(
            human_duration(time::Duration::seconds(secs)),
            want,
            "{secs}s"
        );
    }
}

#[test]
fn a_living_alert_card_shows_its_count_and_last_seen_then_its_resolution() {
    let r = Renderer::new(&BTreeMap::new()).unwrap();
    let e = firing();
    let first = datetime!(2024-05-01 10:30:00 UTC);
    let mut life = AlertLife {
        count: 14,
        first_seen: first,
        last_seen: datetime!(2024-05-01 10:42:10 UTC),
        resolved_at: None,
    };
    let card = r.render_alert(&e, &ctx("alert"), &life).unwrap();
    let blocks = card["blocks"].to_string();
    assert!(card["text"].as_str().unwrap().ends_with("(×14)"), "{card}");
    assert!(blocks.contains("×14 · last 10:42 UTC"), "{blocks}");
    assert!(
        blocks.contains(ACTION_ACK),
        "a firing card keeps its buttons"
    );

    life.resolved_at = Some(datetime!(2024-05-01 10:52:00 UTC));
    let card = r.render_alert(&e, &ctx("alert"), &life).unwrap();
    let blocks = card["blocks"].to_string();
    assert!(
        card["text"].as_str().unwrap().starts_with("[RESOLVED]"),
        "{card}"
    );
    assert!(
        blocks.contains("Resolved 10:52 UTC · lasted 22m · ×14"),
        "{blocks}"
    );
    assert!(
        !blocks.contains(ACTION_ACK),
        "nothing to acknowledge once resolved"
    );
    let reply = resolved_reply(&e, &life);
    assert!(
        reply.contains("Resolved* at 10:52 UTC after 22m (×14 events)"),
        "{reply}"
    );
}

#[test]
fn firing_alert_offers_its_actions_and_escalate_only_when_it_can_go_somewhere() {
    let ids = |r: &Renderer| -> Vec<String> {
        let card = r
            .render(
                &firing(),
                &RenderContext {
                    event_id: "ev_42",
                    channel: "C1",
                    template: "auto",
                    count: 1,
                    now: OffsetDateTime::UNIX_EPOCH,
                },
            )
            .unwrap();
        let block = card["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["block_id"] == ACTIONS_BLOCK_ID)
            .cloned()
            .expect("a firing alert has an actions block");
        block["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["value"], "ev_42", "every button names the event");
                e["action_id"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let plain = Renderer::new(&BTreeMap::new()).unwrap();
    assert_eq!(
        ids(&plain),
        [ACTION_ACK, ACTION_SILENCE, ACTION_RESOLVE],
        "no Escalate without a target"
    );
    let with = Renderer::new(&BTreeMap::new())
        .unwrap()
        .offer_escalate(true);
    assert_eq!(
        ids(&with),
        [ACTION_ACK, ACTION_ESCALATE, ACTION_SILENCE, ACTION_RESOLVE]
    );
}

mod group_cards {
    use super::super::*;
    use crate::noise::{DigestCounts, Storm};
    use sluice_slack_wire::blocks::check_message;
    use time::macros::datetime;

    fn member(title: &str, severity: &str, count: u32, resolved: bool) -> GroupAlertView {
        let event: Event = serde_json::from_value(serde_json::json!({
            "title": title, "severity": severity, "status": "firing", "source": "am", "service": "db <!channel>",
        }))
        .unwrap();
        GroupAlertView {
            event,
            count,
            first_seen: datetime!(2026-11-23 10:00 UTC),
            last_seen: datetime!(2026-11-23 10:40 UTC),
            resolved_at: resolved.then_some(datetime!(2026-11-23 10:45 UTC)),
        }
    }

    fn view<'a>(
        alerts: &'a [GroupAlertView],
        labels: &'a [(String, String)],
        firing: u64,
        resolved: u64,
    ) -> GroupView<'a> {
        GroupView {
            first_event_id: "evt_1",
            route: "alerts",
            labels,
            firing,
            resolved,
            events: 40,
            alerts,
            first_seen: datetime!(2026-11-23 10:00 UTC),
            now: datetime!(2026-11-23 10:50 UTC),
        }
    }

    #[test]
    fn a_group_card_counts_its_alerts_lists_them_and_stays_valid_block_kit() {
        let labels = vec![("service".to_string(), "db".to_string())];
        let mut alerts: Vec<GroupAlertView> = (0..30)
            .map(|i| member(&format!("Disk full {i}"), "warning", 14, false))
            .collect();
        alerts.insert(0, member("Replication broken", "critical", 1, false));
        alerts.push(member("Backup late", "info", 2, true));
        let card = render_group(&view(&alerts, &labels, 31, 1));
        let text = card.to_string();
        assert!(
            card["text"]
                .as_str()
                .unwrap()
                .starts_with("[FIRING:31] service=db"),
            "{}",
            card["text"]
        );
        assert!(
            text.contains(":rotating_light: 31 firing · service=db"),
            "the worst severity leads"
        );
        assert!(text.contains("×14"), "{text}");
        assert!(
            text.contains("…and 22 more (31 firing, 1 resolved in all)"),
            "{text}"
        );
        assert!(!text.contains("<!channel>"), "outside text is escaped");
        assert!(text.contains(ACTION_ACK));
        assert_eq!(check_message(&card), Vec::<String>::new());
    }

    #[test]
    fn a_resolved_group_has_no_button_and_its_reply_says_how_long_it_lasted() {
        let alerts = vec![member("Disk full", "critical", 3, true)];
        let v = view(&alerts, &[], 0, 1);
        let card = render_group(&v);
        assert!(card["text"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED] all alerts"));
        assert!(!card.to_string().contains(ACTION_ACK));
        assert_eq!(
            group_resolved_reply(&v),
            ":white_check_mark: *All 1 alert resolved* at 10:50 UTC after 50m"
        );
        assert_eq!(check_message(&card), Vec::<String>::new());
    }

    #[test]
    fn a_digest_lists_the_busiest_services_with_their_severities() {
        let mut counts = DigestCounts::default();
        for s in 0..20 {
            counts.add(&format!("svc-{s:02}"), "critical", 10 + s);
            counts.add(&format!("svc-{s:02}"), "warning", 1);
        }
        let storm = Storm {
            above: 300,
            window_ms: 60_000,
            digest_ms: 300_000,
        };
        let d = DigestView {
            route: "alerts",
            phase: DigestPhase::Started,
            storm: &storm,
            rate: 4_000,
            storm_since: datetime!(2026-11-23 10:00 UTC),
            from: datetime!(2026-11-23 09:59 UTC),
            now: datetime!(2026-11-23 10:00 UTC),
            counts: &counts,
        };
        let msg = render_digest(&d);
        let text = msg.to_string();
        assert!(
            text.contains("4000 events in the last 1m (more than 300)"),
            "{text}"
        );
        assert!(
            text.contains("• *svc-19*: 1 critical, 1 warning (30 events)"),
            "busiest first: {text}"
        );
        assert!(text.contains("…and 5 more services"), "{text}");
        assert!(text.contains("40 alerts · 410 events"), "{text}");
        assert_eq!(check_message(&msg), Vec::<String>::new());
    }
}
