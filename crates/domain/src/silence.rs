//! Silences: mute matching events for a while, with an author and a comment.
//!
//! Silences live in the store; [`SilenceSet`] is the compiled copy the ingest path matches
//! against without a database round trip. It is reloaded when the store's silence version
//! changes (checked every second, and at once after a local change), so a silence created on
//! one replica mutes the others within a second. Matching follows Alertmanager: a label the
//! event lacks has the value "", so `team=""` matches events without a team.

use regex::Regex;
use serde::Deserialize;
use sluice_core::duration::{parse_duration_ms, DURATION_HINT};
use sluice_core::event::Event;
use sluice_model::{MatchOp, NewSilence, Silence, SilenceMatcher};

enum Test {
    Eq(String),
    NotEq(String),
    Regex(Regex),
    NotRegex(Regex),
}

struct Compiled {
    id: String,
    starts_at_ms: i64,
    ends_at_ms: i64,
    matchers: Vec<(String, Test)>,
}

/// The silences in force (or pending), compiled for matching.
#[derive(Default)]
pub struct SilenceSet {
    pub version: i64,
    entries: Vec<Compiled>,
}

fn value<'a>(e: &'a Event, name: &str) -> &'a str {
    match name {
        "service" => &e.service,
        "environment" => &e.environment,
        "severity" => e.severity.as_str(),
        "status" => e.status.as_str(),
        "source" => &e.source,
        "kind" => e.kind.as_str(),
        "title" => &e.title,
        label => e.labels.get(label).map(String::as_str).unwrap_or(""),
    }
}

/// Anchor a user's regex the way Alertmanager does: it must match the whole value.
fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

fn compile(m: &SilenceMatcher) -> Result<Test, String> {
    Ok(match m.op {
        MatchOp::Eq => Test::Eq(m.value.clone()),
        MatchOp::NotEq => Test::NotEq(m.value.clone()),
        MatchOp::Regex => Test::Regex(anchored(&m.value).map_err(|e| e.to_string())?),
        MatchOp::NotRegex => Test::NotRegex(anchored(&m.value).map_err(|e| e.to_string())?),
    })
}

impl Test {
    fn matches(&self, v: &str) -> bool {
        match self {
            Test::Eq(want) => v == want,
            Test::NotEq(want) => v != want,
            Test::Regex(re) => re.is_match(v),
            Test::NotRegex(re) => !re.is_match(v),
        }
    }
}

impl SilenceSet {
    pub fn new(version: i64, silences: &[Silence]) -> SilenceSet {
        let entries = silences
            .iter()
            .filter(|s| s.expired_at_ms.is_none())
            .filter_map(|s| {
                let matchers = s
                    .matchers
                    .iter()
                    .map(|m| compile(m).map(|t| (m.name.clone(), t)))
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                Some(Compiled {
                    id: s.id.clone(),
                    starts_at_ms: s.starts_at_ms,
                    ends_at_ms: s.ends_at_ms,
                    matchers,
                })
            })
            .collect();
        SilenceSet { version, entries }
    }

    /// The id of the first silence in force at `now_ms` that matches every matcher.
    pub fn silenced_by(&self, e: &Event, now_ms: i64) -> Option<&str> {
        self.entries
            .iter()
            .filter(|s| s.starts_at_ms <= now_ms && now_ms < s.ends_at_ms)
            .find(|s| s.matchers.iter().all(|(name, t)| t.matches(value(e, name))))
            .map(|s| s.id.as_str())
    }
}

/// A silence's matchers compiled on their own: which alerts a silence would mute, previewed before it exists (the
/// console shows the open alerts it matches). The same tests as [`SilenceSet`]'s, without the time window.
pub struct Preview(Vec<(String, Test)>);

impl Preview {
    /// Compiles `matchers`; a regex that does not compile is named.
    pub fn new(matchers: &[SilenceMatcher]) -> Result<Preview, String> {
        matchers
            .iter()
            .map(|m| {
                compile(m)
                    .map(|t| (m.name.clone(), t))
                    .map_err(|e| format!("matcher {:?}: regex does not compile: {e}", m.name))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Preview)
    }

    /// Whether a silence with these matchers mutes `e` (while in force).
    pub fn matches(&self, e: &Event) -> bool {
        self.0.iter().all(|(name, t)| t.matches(value(e, name)))
    }
}

/// Matchers that mute one alert — the one `e` is — and not its neighbours, for "Silence 1 h" on a card.
///
/// An alert whose labels carry `alertname` (Alertmanager, Grafana) is identified by its labels, as Alertmanager
/// identifies it: its summary often carries a value that changes from one notification to the next. Any other alert
/// is identified by its title, service and environment as well as its labels. The source is always part of it, and
/// the status never is (the silence covers the alert's resolve too). Every value is read with the same rule the
/// [`SilenceSet`] matches with, so the matchers always match `e` itself.
pub fn identity_matchers(e: &Event) -> Vec<SilenceMatcher> {
    let mut names: Vec<&str> = vec!["source"];
    names.extend(e.labels.keys().map(String::as_str));
    if !e.labels.contains_key("alertname") {
        names.push("title");
        for field in ["service", "environment"] {
            if !value(e, field).is_empty() {
                names.push(field);
            }
        }
    }
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter(|n| *n != "status")
        .map(|name| SilenceMatcher {
            name: name.to_string(),
            op: MatchOp::Eq,
            value: value(e, name).to_string(),
        })
        .collect()
}

/// A silence as callers write it: `"service=checkout"`, `"severity=~warn.*"`, or objects.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    pub matchers: Vec<MatcherSpec>,
    /// RFC 3339; default now.
    pub starts_at: Option<String>,
    /// RFC 3339; or give `duration`.
    pub ends_at: Option<String>,
    /// e.g. "90m", "1h", "2d".
    pub duration: Option<String>,
    pub author: Option<String>,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MatcherSpec {
    Text(String),
    Object {
        name: String,
        op: String,
        value: String,
    },
}

/// `"name=value"`, `"name!=value"`, `"name=~re"`, `"name!~re"`.
pub fn parse_matcher(text: &str) -> Result<SilenceMatcher, String> {
    for (sym, op) in [
        ("!~", MatchOp::NotRegex),
        ("=~", MatchOp::Regex),
        ("!=", MatchOp::NotEq),
        ("=", MatchOp::Eq),
    ] {
        if let Some((name, value)) = text.split_once(sym) {
            return Ok(SilenceMatcher {
                name: name.trim().to_string(),
                op,
                value: value.trim().trim_matches('"').to_string(),
            });
        }
    }
    Err(format!("matcher {text:?} has no operator: write name=value, name!=value, name=~regex or name!~regex"))
}

fn op_of(sym: &str) -> Result<MatchOp, String> {
    match sym {
        "=" => Ok(MatchOp::Eq),
        "!=" => Ok(MatchOp::NotEq),
        "=~" => Ok(MatchOp::Regex),
        "!~" => Ok(MatchOp::NotRegex),
        other => Err(format!("op {other:?} is not one of =, !=, =~, !~")),
    }
}

fn parse_time_ms(field: &str, text: &str) -> Result<i64, (String, String)> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|e| {
            (
                field.to_string(),
                format!("{field} {text:?} is not RFC 3339: {e}"),
            )
        })
}

/// Longest a silence may last: long enough for a maintenance window, short enough that a
/// forgotten silence does not mute an alert for good.
const MAX_SILENCE_MS: i64 = 30 * 86_400_000;

impl SilenceRequest {
    /// Validate into a silence for the store; errors name the field.
    pub fn validate(self, author: &str, now_ms: i64) -> Result<NewSilence, (String, String)> {
        if self.matchers.is_empty() {
            return Err((
                "matchers".into(),
                "a silence needs at least one matcher".into(),
            ));
        }
        let mut matchers = Vec::new();
        let mut matches_empty = true;
        for (i, m) in self.matchers.into_iter().enumerate() {
            let field = format!("matchers[{i}]");
            let m = match m {
                MatcherSpec::Text(t) => parse_matcher(&t).map_err(|e| (field.clone(), e))?,
                MatcherSpec::Object { name, op, value } => SilenceMatcher {
                    name,
                    op: op_of(&op).map_err(|e| (field.clone(), e))?,
                    value,
                },
            };
            if m.name.is_empty() {
                return Err((field, "matcher name is empty".into()));
            }
            let test =
                compile(&m).map_err(|e| (field.clone(), format!("regex does not compile: {e}")))?;
            matches_empty &= test.matches("");
            matchers.push(m);
        }
        // Like Alertmanager: a silence whose matchers all match the empty string would mute
        // nearly everything.
        if matches_empty {
            return Err((
                "matchers".into(),
                "every matcher also matches an empty value, so this would silence almost everything: add a positive matcher such as service=checkout".into(),
            ));
        }
        let starts = match &self.starts_at {
            Some(t) => parse_time_ms("starts_at", t)?,
            None => now_ms,
        };
        let ends = match (&self.ends_at, &self.duration) {
            (Some(t), None) => parse_time_ms("ends_at", t)?,
            (None, Some(d)) => {
                starts
                    + parse_duration_ms(d).map_err(|e| {
                        let m = format!("duration {d:?} is not a duration ({e}): {DURATION_HINT}");
                        ("duration".to_string(), m)
                    })?
            }
            _ => {
                return Err((
                    "duration".into(),
                    "give exactly one of ends_at or duration".into(),
                ))
            }
        };
        if ends <= starts.max(now_ms) {
            return Err(("ends_at".into(), "the silence would already be over".into()));
        }
        if ends - starts > MAX_SILENCE_MS {
            return Err((
                "duration".into(),
                "a silence may last at most 30 days".into(),
            ));
        }
        Ok(NewSilence {
            matchers,
            starts_at_ms: starts,
            ends_at_ms: ends,
            author: self.author.unwrap_or_else(|| author.to_string()),
            comment: self.comment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(service: &str, labels: &[(&str, &str)]) -> Event {
        let labels: serde_json::Map<_, _> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        let body = serde_json::json!({"title": "t", "severity": "warning", "status": "firing", "source": "am",
                                      "service": service, "labels": labels});
        sluice_core::event::parse_events(body.to_string().as_bytes())
            .unwrap()
            .remove(0)
    }

    fn set(matchers: &[&str], starts: i64, ends: i64) -> SilenceSet {
        let s = Silence {
            id: "sil_1".into(),
            matchers: matchers.iter().map(|m| parse_matcher(m).unwrap()).collect(),
            starts_at_ms: starts,
            ends_at_ms: ends,
            author: "a".into(),
            comment: String::new(),
            created_at_ms: 0,
            expired_at_ms: None,
        };
        SilenceSet::new(1, &[s])
    }

    #[test]
    fn a_preview_matches_what_the_silence_would_mute_at_any_time() {
        type Case<'a> = (&'a [&'a str], &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (&["service=checkout"], "checkout", &[]),
            (&["service=checkout"], "payments", &[]),
            (
                &["service=~check.*", "team=core"],
                "checkout",
                &[("team", "core")],
            ),
            (
                &["service=~check.*", "team=core"],
                "checkout",
                &[("team", "edge")],
            ),
            (&["team=\"\""], "checkout", &[]),
        ];
        for (matchers, service, labels) in cases {
            let e = event(service, labels);
            // Whatever the preview says, a silence in force says the same.
            let want = set(matchers, 0, i64::MAX).silenced_by(&e, 1).is_some();
            let parsed: Vec<_> = matchers.iter().map(|m| parse_matcher(m).unwrap()).collect();
            let preview = Preview::new(&parsed).unwrap();
            assert_eq!(
                preview.matches(&e),
                want,
                "{matchers:?} on {service} {labels:?}"
            );
        }
        let bad = [parse_matcher("service=~(").unwrap()];
        let err = Preview::new(&bad).err().unwrap();
        assert!(err.contains("service") && err.contains("regex"), "{err}");
    }

    #[test]
    fn matchers_follow_alertmanager() {
        type Case<'a> = (&'a [&'a str], &'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            (&["service=checkout"], "checkout", &[], true),
            (&["service=checkout"], "payments", &[], false),
            (&["service=~check.*"], "checkout", &[], true),
            (&["service=~check"], "checkout", &[], false), // anchored: whole value
            (&["service!=checkout"], "payments", &[], true),
            (
                &["service!~pay.*", "team=core"],
                "checkout",
                &[("team", "core")],
                true,
            ),
            (&["team=core"], "checkout", &[], false),
            (&["service=checkout", "team=\"\""], "checkout", &[], true), // missing label is ""
            (
                &["severity=warning", "service=checkout"],
                "checkout",
                &[],
                true,
            ),
        ];
        for (matchers, service, labels, want) in cases {
            let got = set(matchers, 0, 100)
                .silenced_by(&event(service, labels), 50)
                .is_some();
            assert_eq!(got, *want, "{matchers:?} vs {service} {labels:?}");
        }
    }

    #[test]
    fn a_silence_holds_only_between_start_and_end() {
        let s = set(&["service=checkout"], 100, 200);
        let e = event("checkout", &[]);
        assert!(s.silenced_by(&e, 99).is_none());
        assert_eq!(s.silenced_by(&e, 100), Some("sil_1"));
        assert!(s.silenced_by(&e, 200).is_none());
    }

    #[test]
    fn requests_are_validated_with_the_field_named() {
        let req = |v: serde_json::Value| {
            serde_json::from_value::<SilenceRequest>(v)
                .unwrap()
                .validate("api", 1_000)
        };
        let ok = req(serde_json::json!({"matchers": ["service=checkout"], "duration": "1h", "comment": "deploy"})).unwrap();
        assert_eq!(ok.ends_at_ms - ok.starts_at_ms, 3_600_000);
        let cases = [
            (
                serde_json::json!({"matchers": [], "duration": "1h"}),
                "matchers",
            ),
            (
                serde_json::json!({"matchers": ["service"], "duration": "1h"}),
                "matchers[0]",
            ),
            (
                serde_json::json!({"matchers": ["service=~("], "duration": "1h"}),
                "matchers[0]",
            ),
            (
                serde_json::json!({"matchers": ["team!=core"], "duration": "1h"}),
                "matchers",
            ),
            (
                serde_json::json!({"matchers": ["service=x"], "duration": "1 hour"}),
                "duration",
            ),
            (serde_json::json!({"matchers": ["service=x"]}), "duration"),
            (
                serde_json::json!({"matchers": ["service=x"], "duration": "90d"}),
                "duration",
            ),
            (
                serde_json::json!({"matchers": ["service=x"], "ends_at": "yesterday"}),
                "ends_at",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(req(body.clone()).unwrap_err().0, field, "{body}");
        }
    }

    fn parsed(body: serde_json::Value) -> Event {
        sluice_core::event::parse_events(body.to_string().as_bytes())
            .unwrap()
            .remove(0)
    }

    fn silences(matchers: Vec<SilenceMatcher>) -> SilenceSet {
        let s = Silence {
            id: "sil_card".into(),
            matchers,
            starts_at_ms: 0,
            ends_at_ms: 100,
            author: "U1".into(),
            comment: "from Slack".into(),
            created_at_ms: 0,
            expired_at_ms: None,
        };
        SilenceSet::new(1, &[s])
    }

    #[test]
    fn identity_matchers_mute_the_alert_and_not_its_neighbours() {
        let generic = serde_json::json!({"title": "Checkout p99 above 2s", "severity": "critical",
            "status": "firing", "source": "api", "service": "checkout", "labels": {"team": "web"}});
        let am = serde_json::json!({"title": "p99 is 2.31s", "severity": "critical", "status": "firing",
            "source": "alertmanager", "service": "checkout",
            "labels": {"alertname": "HighLatency", "service": "checkout", "severity": "page", "instance": "a:9100"}});
        let with = |base: &serde_json::Value, f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base.clone();
            f(&mut v);
            parsed(v)
        };
        type Case<'a> = (
            &'a str,
            &'a serde_json::Value,
            &'a dyn Fn(&mut serde_json::Value),
            bool,
        );
        let cases: &[Case] = &[
            ("the same alert again", &generic, &|_| {}, true),
            (
                "its resolve",
                &generic,
                &|v| v["status"] = "resolved".into(),
                true,
            ),
            (
                "another title",
                &generic,
                &|v| v["title"] = "Checkout down".into(),
                false,
            ),
            (
                "another service",
                &generic,
                &|v| v["service"] = "payments".into(),
                false,
            ),
            (
                "another team",
                &generic,
                &|v| v["labels"]["team"] = "core".into(),
                false,
            ),
            (
                "another source",
                &generic,
                &|v| v["source"] = "grafana".into(),
                false,
            ),
            (
                "AM: a new value in the summary",
                &am,
                &|v| v["title"] = "p99 is 2.9s".into(),
                true,
            ),
            (
                "AM: another instance",
                &am,
                &|v| v["labels"]["instance"] = "b:9100".into(),
                false,
            ),
            (
                "AM: another alertname",
                &am,
                &|v| v["labels"]["alertname"] = "Down".into(),
                false,
            ),
        ];
        for (what, base, change, muted) in cases {
            let set = silences(identity_matchers(&parsed((*base).clone())));
            let got = set.silenced_by(&with(base, *change), 50).is_some();
            assert_eq!(got, *muted, "{what}");
        }
        // The severity label is read the way matching reads it (mapped), so the silence holds.
        let m = identity_matchers(&parsed(am.clone()));
        assert!(
            m.iter()
                .any(|m| m.name == "severity" && m.value == "critical"),
            "{m:?}"
        );
        assert!(
            m.iter().all(|m| m.name != "status" && m.name != "title"),
            "{m:?}"
        );
    }
}
