//! Inhibition rules: while an alert matching a rule's `source` fires, events matching its
//! `target` with the same values of the `equal` fields are muted (Alertmanager's semantics).
//! The principal type is [`Inhibitor`], compiled once from the `[[inhibit]]` tables of
//! `sluice.toml`; [`Inhibitor::keys`] says what one event means to inhibition.
//!
//! ```toml
//! [[inhibit]]
//! name = "critical-mutes-warnings"
//! source = { severity = "critical" }
//! target = { severity = "warning" }
//! equal = ["service"]            # event fields or "labels.<key>"; may be empty
//! ```
//!
//! This module only computes *keys*; whether a key is held by a firing alert is decided by the
//! store inside the ingest transaction, so every replica sees the same answer:
//! - An alert (an event with a `dedup_key`) that fires and matches a rule's source *provides*
//!   the key `rule + the values of the equal fields`. A field the event lacks (a missing label)
//!   counts as empty, as in Alertmanager. Only alerts provide: only they have a firing/resolved
//!   life that ends the inhibition.
//! - An event that matches a rule's target *checks* the same key; it is muted while an open
//!   alert holds it.
//! - Matchers are the routing matchers ([`crate::route`]): exact, one-of, regex, not; fields
//!   `kind`, `severity`, `status`, `source`, `service`, `environment`, `title`, `labels.<key>`.
//! - An alert does not inhibit itself, and, as in Alertmanager, when a target also matches the
//!   rule's source, providers that also match the rule's target do not mute it (two alerts that
//!   each match both sides do not mute each other). Keys carry that as `both_sides`.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::config_error::ConfigError;
use crate::event::{closest, Event, Status};
use crate::route::{MatchTable, Matchers, MATCH_FIELDS};

/// One `[[inhibit]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    pub name: Spanned<String>,
    /// What a firing alert must match to inhibit.
    pub source: Spanned<MatchTable>,
    /// What an event must match to be inhibited.
    pub target: Spanned<MatchTable>,
    /// Fields whose values source and target must share. Empty: any firing source mutes every
    /// target.
    #[serde(default)]
    pub equal: Vec<Spanned<String>>,
}

/// One inhibition key of one event: the rule it comes from, the key itself (the rule name and
/// the values of its `equal` fields, encoded so that no two different lists give the same
/// string), and whether the event matches both sides of the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InhibitKey {
    pub rule: String,
    pub key: String,
    /// The event matches the rule's source *and* its target.
    pub both_sides: bool,
}

/// What one event means to inhibition (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InhibitKeys {
    /// Keys this event's alert holds while it fires.
    pub provides: Vec<InhibitKey>,
    /// Keys that mute this event while a firing alert holds one.
    pub checks: Vec<InhibitKey>,
}

/// Compiled inhibition rules. Build once with [`Inhibitor::new`]; [`Inhibitor::keys`] is cheap.
#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    span: Range<usize>,
    source: Matchers,
    target: Matchers,
    equal: Vec<EqualField>,
}

/// A field named in `equal`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EqualField {
    Kind,
    Severity,
    Status,
    Source,
    Service,
    Environment,
    Title,
    Label(String),
}

impl EqualField {
    fn parse(name: &str) -> Option<EqualField> {
        Some(match name {
            "kind" => EqualField::Kind,
            "severity" => EqualField::Severity,
            "status" => EqualField::Status,
            "source" => EqualField::Source,
            "service" => EqualField::Service,
            "environment" => EqualField::Environment,
            "title" => EqualField::Title,
            _ => match name.strip_prefix("labels.") {
                Some(label) if !label.is_empty() => EqualField::Label(label.to_owned()),
                _ => return None,
            },
        })
    }

    fn name(&self) -> String {
        match self {
            EqualField::Kind => "kind".into(),
            EqualField::Severity => "severity".into(),
            EqualField::Status => "status".into(),
            EqualField::Source => "source".into(),
            EqualField::Service => "service".into(),
            EqualField::Environment => "environment".into(),
            EqualField::Title => "title".into(),
            EqualField::Label(k) => format!("labels.{k}"),
        }
    }

    /// The event's value; a label it does not carry is empty, as in Alertmanager.
    fn value<'e>(&self, e: &'e Event) -> &'e str {
        match self {
            EqualField::Kind => e.kind.as_str(),
            EqualField::Severity => e.severity.as_str(),
            EqualField::Status => e.status.as_str(),
            EqualField::Source => &e.source,
            EqualField::Service => &e.service,
            EqualField::Environment => &e.environment,
            EqualField::Title => &e.title,
            EqualField::Label(k) => e.labels.get(k).map_or("", String::as_str),
        }
    }
}

impl Inhibitor {
    /// Compiles and validates the rules. All problems are returned at once.
    pub fn new(rules: &[Spanned<InhibitRuleConfig>]) -> Result<Inhibitor, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut out = Vec::with_capacity(rules.len());
        for spanned in rules {
            let cfg = spanned.get_ref();
            let name = cfg.name.get_ref();
            let before = errors.len();
            if name.trim().is_empty() {
                errors.push(ConfigError::new(
                    Some(cfg.name.span()),
                    "an inhibit rule has an empty name",
                    "give the rule a short unique name, e.g. name = \"critical-mutes-warnings\"",
                ));
            } else if let Some(first) = seen.get(name.as_str()) {
                errors.push(ConfigError::new(
                    Some(cfg.name.span()),
                    format!("duplicate inhibit rule name \"{name}\" (first used at byte {first})"),
                    "give every inhibit rule a unique name; suppressed events name the rule that muted them",
                ));
            } else {
                seen.insert(name, cfg.name.span().start);
            }
            let owner = format!("inhibit rule \"{name}\"");
            let source = Matchers::compile(
                cfg.source.get_ref(),
                &format!("{owner} source"),
                &mut errors,
            );
            let target = Matchers::compile(
                cfg.target.get_ref(),
                &format!("{owner} target"),
                &mut errors,
            );
            let mut equal: Vec<EqualField> = Vec::with_capacity(cfg.equal.len());
            for field in &cfg.equal {
                let Some(f) = EqualField::parse(field.get_ref()) else {
                    let hint = closest(field.get_ref(), &MATCH_FIELDS)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    errors.push(ConfigError::new(
                        Some(field.span()),
                        format!(
                            "{owner}: unknown field `{}` in `equal`{hint}",
                            field.get_ref()
                        ),
                        format!(
                            "name event fields or labels: one of {}",
                            MATCH_FIELDS.join(", ")
                        ),
                    ));
                    continue;
                };
                if equal.contains(&f) {
                    errors.push(ConfigError::new(
                        Some(field.span()),
                        format!("{owner} lists `{}` twice in `equal`", field.get_ref()),
                        "list each field once",
                    ));
                    continue;
                }
                equal.push(f);
            }
            if errors.len() == before {
                out.push(Rule {
                    name: name.clone(),
                    span: spanned.span(),
                    source,
                    target,
                    equal,
                });
            }
        }
        if errors.is_empty() {
            Ok(Inhibitor { rules: out })
        } else {
            Err(errors)
        }
    }

    /// No rules: every event's keys are empty.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The keys `e` provides (a firing alert matching a rule's source) and checks (matching a
    /// rule's target), in rule order.
    pub fn keys(&self, e: &Event) -> InhibitKeys {
        let mut keys = InhibitKeys::default();
        let can_provide = e.dedup_key.is_some() && e.status == Status::Firing;
        for rule in &self.rules {
            let source = rule.source.matches(e);
            let target = rule.target.matches(e);
            if !source && !target {
                continue;
            }
            let key = InhibitKey {
                rule: rule.name.clone(),
                key: rule.key(e),
                both_sides: source && target,
            };
            if source && can_provide {
                keys.provides.push(key.clone());
            }
            if target {
                keys.checks.push(key);
            }
        }
        keys
    }

    /// Warnings about rules that compile but can never act: a source or target no event
    /// satisfies.
    pub fn check(&self) -> Vec<ConfigError> {
        let mut warnings = Vec::new();
        for rule in &self.rules {
            for (side, m) in [("source", &rule.source), ("target", &rule.target)] {
                if let Some(why) = m.never() {
                    warnings.push(ConfigError::new(
                        Some(rule.span.clone()),
                        format!(
                            "inhibit rule \"{}\" can never act: its {side} can never match ({why})",
                            rule.name
                        ),
                        format!("correct the {side} matchers or remove the rule"),
                    ));
                }
            }
        }
        warnings
    }
}

impl Rule {
    /// `["<rule>",[["<field>","<value>"],…]]`: JSON, so no two rules or value lists collide.
    fn key(&self, e: &Event) -> String {
        let values: Vec<(String, &str)> =
            self.equal.iter().map(|f| (f.name(), f.value(e))).collect();
        // Serialising strings cannot fail.
        serde_json::to_string(&(&self.name, values)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
