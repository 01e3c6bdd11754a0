use super::*;
use crate::event::{Event, Kind, Severity, Status};

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    routing: RoutingConfig,
}

fn templates() -> BTreeSet<String> {
    ["auto", "alert", "deployment", "generic", "oncall-page"]
        .into_iter()
        .map(String::from)
        .collect()
}

fn config(src: &str) -> RoutingConfig {
    match toml::from_str::<File>(src) {
        Ok(f) => f.routing,
        Err(e) => panic!("test config does not parse: {e}"),
    }
}

fn router(src: &str) -> Router {
    match Router::new(&config(src), &templates()) {
        Ok(r) => r,
        Err(errs) => panic!("config refused: {errs:?}"),
    }
}

fn event(kind: Kind, severity: Severity, service: &str, labels: &[(&str, &str)]) -> Event {
    Event {
        title: "Something happened".into(),
        text: String::new(),
        severity,
        status: Status::Firing,
        kind,
        source: "prometheus".into(),
        service: service.into(),
        environment: "production".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        fields: vec![],
        links: vec![],
        dedup_key: None,
        occurred_at: None,
    }
}

const EXAMPLE: &str = r#"
[routing]
default = { channels = ["alerts"], template = "auto" }

[[routing.rule]]
name = "audit"
match = { environment = "production", "labels.audit" = "yes" }
channels = ["audit", "alerts"]
continue = true

[[routing.rule]]
name = "drop-successful-deploys"
match = { kind = "deployment", severity = "ok" }
drop = true

[[routing.rule]]
name = "payments-critical"
match = { service = { regex = "^(checkout|payments)" }, severity = ["critical", "error"], "labels.team" = "payments" }
channels = ["payments-alerts", "incidents"]
template = "alert"
continue = true

[[routing.rule]]
name = "incidents"
match = { severity = "critical" }
channels = ["incidents", "oncall"]
template = "oncall-page"

[[routing.rule]]
name = "not-staging"
match = { environment = { not = ["staging", "dev"] }, labels = { team = { not = "payments" } }, kind = "message" }
channels = ["general"]
"#;

fn deliver(pairs: &[(&str, &str, &str)], matched: &[&str]) -> Decision {
    Decision::Deliver {
        deliveries: pairs
            .iter()
            .map(|(c, t, r)| Delivery {
                channel: c.to_string(),
                template: t.to_string(),
                rule: r.to_string(),
                noise: None,
            })
            .collect(),
        matched: matched.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn events_route_as_the_rules_say() {
    use Kind::*;
    use Severity::*;
    let r = router(EXAMPLE);
    let cases: Vec<(&str, Event, Decision)> = vec![
        (
            "unmatched goes to the default route",
            event(Alert, Warning, "search", &[]),
            deliver(&[("alerts", "auto", "default")], &["default"]),
        ),
        (
            "drop rule",
            event(Deployment, Ok, "checkout", &[]),
            Decision::Drop {
                rule: "drop-successful-deploys".into(),
            },
        ),
        (
            "continue into a later rule; shared channel de-duplicated, first wins",
            event(Alert, Critical, "checkout-api", &[("team", "payments")]),
            deliver(
                &[
                    ("payments-alerts", "alert", "payments-critical"),
                    ("incidents", "alert", "payments-critical"),
                    ("oncall", "oncall-page", "incidents"),
                ],
                &["payments-critical", "incidents"],
            ),
        ),
        (
            "regex matches but label does not",
            event(Alert, Critical, "payments", &[("team", "search")]),
            deliver(
                &[
                    ("incidents", "oncall-page", "incidents"),
                    ("oncall", "oncall-page", "incidents"),
                ],
                &["incidents"],
            ),
        ),
        (
            "one-of excludes warning",
            event(Alert, Warning, "payments", &[("team", "payments")]),
            deliver(&[("alerts", "auto", "default")], &["default"]),
        ),
        (
            "regex is applied to service, not title",
            event(Alert, Error, "billing", &[("team", "payments")]),
            deliver(&[("alerts", "auto", "default")], &["default"]),
        ),
        (
            "a drop after a continue rule keeps what was already chosen",
            event(Deployment, Ok, "checkout", &[("audit", "yes")]),
            deliver(
                &[("audit", "auto", "audit"), ("alerts", "auto", "audit")],
                &["audit", "drop-successful-deploys"],
            ),
        ),
        (
            "not on a missing label matches",
            event(Message, Info, "x", &[]),
            deliver(&[("general", "auto", "not-staging")], &["not-staging"]),
        ),
        (
            "not on a present label that equals the value does not match",
            event(Message, Info, "x", &[("team", "payments")]),
            deliver(&[("alerts", "auto", "default")], &["default"]),
        ),
    ];
    for (name, e, want) in cases {
        assert_eq!(r.route(&e), want, "{name}");
    }
}

#[test]
fn without_default_unmatched_is_unrouted() {
    let r = router(
        r#"
[[routing.rule]]
name = "crit"
match = { severity = "critical" }
channels = ["incidents"]
"#,
    );
    assert_eq!(
        r.route(&event(Kind::Alert, Severity::Info, "x", &[])),
        Decision::Unrouted
    );
    let empty = Router::new(&RoutingConfig::default(), &templates()).unwrap();
    assert_eq!(
        empty.route(&event(Kind::Alert, Severity::Info, "x", &[])),
        Decision::Unrouted
    );
}

#[test]
fn matchers_on_every_field() {
    let r = router(
        r#"
[[routing.rule]]
name = "all"
match = { kind = "alert", source = "prometheus", severity = { regex = "^(crit|err)" }, status = "firing", service = "api", environment = { regex = "prod" }, title = { regex = "(?i)something" }, "labels.region" = ["eu", "us"] }
channels = ["x"]
"#,
    );
    let mut e = event(Kind::Alert, Severity::Error, "api", &[("region", "eu")]);
    assert!(matches!(r.route(&e), Decision::Deliver { .. }));
    for change in [
        |e: &mut Event| e.kind = Kind::Message,
        |e: &mut Event| e.source = "grafana".into(),
        |e: &mut Event| e.severity = Severity::Warning,
        |e: &mut Event| e.status = Status::Resolved,
        |e: &mut Event| e.service = "apis".into(),
        |e: &mut Event| e.environment = "staging".into(),
        |e: &mut Event| e.title = "else".into(),
        |e: &mut Event| {
            e.labels.insert("region".into(), "ap".into());
        },
        |e: &mut Event| {
            e.labels.clear();
        },
    ] {
        let mut changed = e.clone();
        change(&mut changed);
        assert_eq!(r.route(&changed), Decision::Unrouted, "{changed:?}");
    }
    e.severity = Severity::Critical;
    assert!(matches!(r.route(&e), Decision::Deliver { .. }));
}

/// Each bad config, the text the error must contain, and the text its span must cover.
#[test]
fn config_errors_point_at_the_right_place() {
    let cases: [(&str, &str, &str); 14] = [
        (
            "[[routing.rule]]\nname = \"a\"\nmatch = { service = { regex = \"(unclosed\" } }\nchannels = [\"x\"]\n",
            "regex \"(unclosed\" does not compile",
            "{ regex = \"(unclosed\" }",
        ),
        (
            "[[routing.rule]]\nname = \"a\"\nmatch = { servce = \"x\" }\nchannels = [\"x\"]\n",
            "unknown match field `servce` (did you mean `service`?)",
            "servce",
        ),
        (
            "[[routing.rule]]\nname = \"ok\"\nchannels = [\"x\"]\n\n[[routing.rule]]\nname = \"nothing\"\nmatch = { kind = \"alert\" }\n",
            "rule \"nothing\" has neither `channels` nor `drop = true`",
            "[[routing.rule]]\nname = \"nothing\"\nmatch = { kind = \"alert\" }",
        ),
        (
            "[[routing.rule]]\nname = \"both\"\ndrop = true\nchannels = [\"x\"]\n",
            "has both `drop = true` and `channels`",
            "[\"x\"]",
        ),
        (
            "[[routing.rule]]\nname = \"dup\"\nchannels = [\"x\"]\n[[routing.rule]]\nname = \"dup\"\nchannels = [\"y\"]\n",
            "duplicate rule name \"dup\"",
            "\"dup\"",
        ),
        (
            "[[routing.rule]]\nname = \"t\"\nchannels = [\"x\"]\ntemplate = \"alrt\"\n",
            "unknown template \"alrt\"",
            "\"alrt\"",
        ),
        (
            "[routing]\ndefault = { channels = [\"x\"], template = \"nope\" }\n",
            "unknown template \"nope\"",
            "\"nope\"",
        ),
        (
            "[[routing.rule]]\nname = \"sev\"\nmatch = { severity = \"urgent\" }\nchannels = [\"x\"]\n",
            "severity \"urgent\" is not one of critical, error, warning, info, ok",
            "\"urgent\"",
        ),
        (
            "[[routing.rule]]\nname = \"kind\"\nmatch = { kind = { not = [\"alert\", \"deploy\"] } }\nchannels = [\"x\"]\n",
            "kind \"deploy\" is not one of alert, deployment, message",
            "{ not = [\"alert\", \"deploy\"] }",
        ),
        (
            "[[routing.rule]]\nname = \"e\"\nchannels = []\n",
            "empty `channels` list",
            "[]",
        ),
        (
            "[[routing.rule]]\nname = \"d\"\ndrop = true\ncontinue = true\n",
            "`continue = true` has no effect",
            "true",
        ),
        (
            "[[routing.rule]]\nname = \"twice\"\nmatch = { \"labels.team\" = \"a\", labels = { team = \"b\" } }\nchannels = [\"x\"]\n",
            "matches `labels.team` twice",
            "team",
        ),
        (
            "[[routing.rule]]\nname = \"tbl\"\nmatch = { service = { foo = \"x\" } }\nchannels = [\"x\"]\n",
            "this table is not a matcher",
            "{ foo = \"x\" }",
        ),
        (
            "[[routing.rule]]\nname = \"lbl\"\nmatch = { labels = \"x\" }\nchannels = [\"x\"]\n",
            "`labels` must be a table",
            "\"x\"",
        ),
    ];
    for (src, message, spanned) in cases {
        let errs = Router::new(&config(src), &templates()).expect_err(message);
        let e = errs
            .iter()
            .find(|e| e.message.contains(message))
            .unwrap_or_else(|| panic!("no error containing {message:?} in {errs:?}"));
        let span = e.span.clone().unwrap_or_else(|| panic!("no span: {e:?}"));
        assert_eq!(&src[span], spanned, "span of {message:?}");
        assert!(!e.fix.is_empty());
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let src = "[[routing.rule]]\nname = \"a\"\nmatch = { servce = \"x\", severity = \"urgent\" }\n\n[[routing.rule]]\nname = \"a\"\nchannels = [\"x\"]\ntemplate = \"nope\"\n";
    let errs = Router::new(&config(src), &templates()).unwrap_err();
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn toml_shape_errors_keep_their_span() {
    let src = "[routing]\n[[routing.rule]]\nname = \"a\"\nchanels = [\"x\"]\n";
    let e = toml::from_str::<File>(src)
        .err()
        .expect("unknown key is refused");
    let ce = ConfigError::from_toml(&e);
    assert!(ce.message.contains("chanels"), "{ce}");
    assert_eq!(ce.line_col(src).map(|(l, _)| l), Some(4));

    let src = "[[routing.rule]]\nname = \"a\"\nmatch = { severity = 3 }\nchannels = [\"x\"]\n";
    let e = toml::from_str::<File>(src)
        .err()
        .expect("a number is not a matcher");
    assert!(
        e.message()
            .contains("a matcher: a string, an array of strings"),
        "{e}"
    );
}

#[test]
fn check_finds_rules_that_can_never_match() {
    let src = r#"
[routing]
default = { channels = ["alerts"] }

[[routing.rule]]
name = "all-critical"
match = { severity = ["critical", "error"] }
channels = ["incidents"]

[[routing.rule]]
name = "checkout-critical"
match = { severity = "critical", service = "checkout" }
channels = ["checkout"]

[[routing.rule]]
name = "empty"
match = { service = [] }
channels = ["x"]

[[routing.rule]]
name = "contradiction"
match = { status = { not = { regex = "" } } }
channels = ["x"]

[[routing.rule]]
name = "prod-regex"
match = { environment = { regex = "^prod" } }
channels = ["prod"]
continue = true

[[routing.rule]]
name = "prod-exact"
match = { environment = ["production", "prod-eu"], kind = "alert" }
channels = ["prod2"]

[[routing.rule]]
name = "after-catch-all"
match = { environment = "production", kind = "alert" }
channels = ["never"]

[[routing.rule]]
name = "fine"
match = { kind = "message" }
channels = ["general"]
"#;
    let r = router(src);
    let warnings = r.check();
    let named = |rule: &str| {
        warnings
            .iter()
            .find(|w| w.message.starts_with(&format!("rule \"{rule}\"")))
            .cloned()
    };
    let shadowed = named("checkout-critical").expect("shadowed by all-critical");
    assert!(
        shadowed.message.contains("earlier rule \"all-critical\""),
        "{shadowed}"
    );
    assert!(src[shadowed.span.clone().unwrap()].contains("name = \"checkout-critical\""));
    assert!(named("empty").unwrap().message.contains("empty list"));
    assert!(named("contradiction")
        .unwrap()
        .message
        .contains("no status satisfies"));
    // "prod-regex" continues, so it shadows nothing; "prod-exact" does not continue and
    // covers "after-catch-all".
    assert!(named("prod-exact").is_none());
    assert!(named("after-catch-all")
        .unwrap()
        .message
        .contains("\"prod-exact\""));
    assert!(named("fine").is_none());
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
}

#[test]
fn check_reports_combinations_that_fall_through_without_default() {
    let r = router(
        r#"
[[routing.rule]]
name = "alerts"
match = { kind = "alert" }
channels = ["alerts"]

[[routing.rule]]
name = "deploys"
match = { kind = "deployment", service = "checkout" }
channels = ["deploys"]

[[routing.rule]]
name = "messages"
match = { kind = "message", status = "firing" }
channels = ["general"]
"#,
    );
    let warnings = r.check();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0].message;
    assert!(w.contains("15 of the 30"), "{w}");
    assert!(w.contains("deployment/critical/firing"), "{w}");
    assert!(w.contains("message/ok/resolved"), "{w}");
    assert!(!w.contains("alert/"), "{w}");
    assert!(!w.contains("message/ok/firing"), "{w}");

    let with_catch_all = router("[[routing.rule]]\nname = \"everything\"\nchannels = [\"x\"]\n");
    assert!(with_catch_all.check().is_empty());
}
