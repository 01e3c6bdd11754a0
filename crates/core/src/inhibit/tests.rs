use super::*;
use crate::event::{Kind, Severity};

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    inhibit: Vec<Spanned<InhibitRuleConfig>>,
}

fn compile(src: &str) -> Result<Inhibitor, Vec<ConfigError>> {
    match toml::from_str::<File>(src) {
        Ok(f) => Inhibitor::new(&f.inhibit),
        Err(e) => Err(vec![ConfigError::from_toml(&e)]),
    }
}

fn inhibitor(src: &str) -> Inhibitor {
    compile(src).unwrap_or_else(|e| panic!("config refused: {e:?}"))
}

/// An alert (it has a dedup key) unless `dedup` is false.
fn event(severity: Severity, status: Status, service: &str, labels: &[(&str, &str)]) -> Event {
    Event {
        title: format!("{service} is unwell"),
        text: String::new(),
        severity,
        status,
        kind: Kind::Alert,
        source: "prometheus".into(),
        service: service.into(),
        environment: "production".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        fields: vec![],
        links: vec![],
        dedup_key: Some(format!("{service}-{severity}")),
        occurred_at: None,
    }
}

const RULES: &str = r#"
[[inhibit]]
name = "critical-mutes-warnings"
source = { severity = "critical" }
target = { severity = "warning" }
equal = ["service", "labels.cluster"]

[[inhibit]]
name = "outage-mutes-all"
source = { "labels.alertname" = "SiteDown" }
target = { severity = { not = "critical" } }
"#;

fn key(rule: &str, equal: &[(&str, &str)]) -> String {
    serde_json::to_string(&(rule, equal)).unwrap_or_default()
}

/// A key as (rule, equal field and value pairs, both_sides).
type Want<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool);

/// (what, event, provides, checks).
type Case<'a> = (&'a str, Event, Vec<Want<'a>>, Vec<Want<'a>>);

#[test]
fn keys_follow_source_target_and_equal() {
    use Severity::*;
    use Status::*;
    let non_alert = Event {
        dedup_key: None,
        ..event(Critical, Firing, "db", &[])
    };
    let cases: Vec<Case> = vec![
        (
            "a firing critical alert provides its service's key",
            event(Critical, Firing, "db", &[("cluster", "eu")]),
            vec![(
                "critical-mutes-warnings",
                vec![("service", "db"), ("labels.cluster", "eu")],
                false,
            )],
            vec![],
        ),
        (
            "a warning checks the same key",
            event(Warning, Firing, "db", &[("cluster", "eu")]),
            vec![],
            vec![
                (
                    "critical-mutes-warnings",
                    vec![("service", "db"), ("labels.cluster", "eu")],
                    false,
                ),
                ("outage-mutes-all", vec![], false),
            ],
        ),
        (
            "a missing label counts as empty",
            event(Warning, Firing, "api", &[]),
            vec![],
            vec![
                (
                    "critical-mutes-warnings",
                    vec![("service", "api"), ("labels.cluster", "")],
                    false,
                ),
                ("outage-mutes-all", vec![], false),
            ],
        ),
        (
            "a resolved alert provides nothing (its resolve ends the inhibition)",
            event(Critical, Resolved, "db", &[]),
            vec![],
            vec![],
        ),
        (
            "an event without a dedup key cannot be a source",
            non_alert,
            vec![],
            vec![],
        ),
        (
            "info matches no source and no target of the first rule",
            event(Info, Firing, "db", &[]),
            vec![],
            vec![("outage-mutes-all", vec![], false)],
        ),
        (
            "an alert matching both sides says so on both keys",
            event(Warning, Firing, "web", &[("alertname", "SiteDown")]),
            vec![("outage-mutes-all", vec![], true)],
            vec![
                (
                    "critical-mutes-warnings",
                    vec![("service", "web"), ("labels.cluster", "")],
                    false,
                ),
                ("outage-mutes-all", vec![], true),
            ],
        ),
    ];
    let inh = inhibitor(RULES);
    for (what, e, provides, checks) in cases {
        let want = |keys: Vec<Want>| -> Vec<InhibitKey> {
            keys.into_iter()
                .map(|(rule, equal, both_sides)| InhibitKey {
                    rule: rule.into(),
                    key: key(rule, &equal),
                    both_sides,
                })
                .collect()
        };
        let got = inh.keys(&e);
        assert_eq!(got.provides, want(provides), "{what}: provides");
        assert_eq!(got.checks, want(checks), "{what}: checks");
    }
}

#[test]
fn keys_of_different_rules_or_values_never_collide() {
    let inh = inhibitor(
        r#"
[[inhibit]]
name = "a"
source = { severity = "critical" }
target = { severity = "warning" }
equal = ["service", "environment"]

[[inhibit]]
name = "a\",\"b"
source = { severity = "critical" }
target = { severity = "warning" }
equal = ["service"]
"#,
    );
    let mut e = event(Severity::Critical, Status::Firing, "x\",\"y", &[]);
    e.environment = String::new();
    let keys: Vec<String> = inh.keys(&e).provides.into_iter().map(|k| k.key).collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
    let mut other = event(Severity::Critical, Status::Firing, "x", &[]);
    other.environment = "y".into();
    assert_ne!(inh.keys(&other).provides[0].key, keys[0]);
}

#[test]
fn empty_equal_is_one_key_for_everything() {
    let inh = inhibitor(
        "[[inhibit]]\nname = \"all\"\nsource = { service = \"core\" }\ntarget = { service = { not = \"core\" } }\nequal = []\n",
    );
    let source = inh.keys(&event(Severity::Critical, Status::Firing, "core", &[]));
    let target = inh.keys(&event(Severity::Info, Status::Firing, "web", &[]));
    assert_eq!(source.provides[0].key, target.checks[0].key);
    assert!(inh
        .keys(&event(Severity::Info, Status::Firing, "core", &[]))
        .checks
        .is_empty());
}

#[test]
fn no_rules_no_keys() {
    let inh = Inhibitor::default();
    assert!(inh.is_empty());
    assert_eq!(
        inh.keys(&event(Severity::Critical, Status::Firing, "db", &[])),
        InhibitKeys::default()
    );
}

/// (config, the line of the problem, words in the message, words in the fix).
#[test]
fn broken_rules_are_refused_with_their_place_and_fix() {
    let cases = [
        (
            "[[inhibit]]\nname = \"a\"\nsource = { severity = \"critical\" }\ntarget = { severty = \"warning\" }\n",
            4,
            "unknown match field `severty` (did you mean `severity`?)",
            "match on one of",
        ),
        (
            "[[inhibit]]\nname = \"a\"\nsource = { service = { regex = \"(\" } }\ntarget = {}\n",
            3,
            "does not compile",
            "correct the regular expression",
        ),
        (
            "[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\n\n[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\n",
            7,
            "duplicate inhibit rule name \"a\"",
            "unique name",
        ),
        (
            "[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\nequal = [\n  \"servce\",\n]\n",
            6,
            "unknown field `servce` in `equal` (did you mean `service`?)",
            "labels.<key>",
        ),
        (
            "[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\nequal = [\"service\", \"service\"]\n",
            5,
            "lists `service` twice",
            "once",
        ),
        (
            "[[inhibit]]\nname = \"\"\nsource = {}\ntarget = {}\n",
            2,
            "empty name",
            "unique name",
        ),
        (
            "[[inhibit]]\nname = \"a\"\nsource = { severity = \"fatal\" }\ntarget = {}\n",
            3,
            "severity \"fatal\" is not one of",
            "critical",
        ),
    ];
    for (src, line, message, fix) in cases {
        let errs = match compile(src) {
            Ok(_) => panic!("accepted: {src}"),
            Err(e) => e,
        };
        assert_eq!(errs.len(), 1, "{src}: {errs:?}");
        let e = &errs[0];
        assert_eq!(e.line_col(src).map(|(l, _)| l), Some(line), "{src}: {e:?}");
        assert!(e.message.contains(message), "{src}: {e:?}");
        assert!(e.fix.contains(fix), "{src}: {e:?}");
    }
}

#[test]
fn a_table_without_target_or_with_an_unknown_key_is_a_toml_error() {
    for src in [
        "[[inhibit]]\nname = \"a\"\nsource = {}\n",
        "[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\nequals = []\n",
    ] {
        assert!(compile(src).is_err(), "{src}");
    }
}

#[test]
fn check_warns_about_a_side_that_can_never_match() {
    let inh = inhibitor(
        "[[inhibit]]\nname = \"a\"\nsource = { service = [] }\ntarget = { severity = \"warning\" }\n",
    );
    let w = inh.check();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].message.contains("its source can never match"), "{w:?}");
    assert!(inhibitor(RULES).check().is_empty());
}
