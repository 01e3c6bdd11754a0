//! Routing: which channels (with which template) an event goes to, decided by an ordered list
//! of rules. The principal type is [`Router`], compiled once from [`RoutingConfig`] (the
//! `[routing]` table of `sluice.toml`) and then asked [`Router::route`] for every event.
//!
//! ```toml
//! [routing]
//! default = { channels = ["alerts"], template = "auto" }   # optional
//!
//! [[routing.rule]]
//! name = "payments-critical"
//! match = { service = { regex = "^(checkout|payments)" }, severity = ["critical", "error"], "labels.team" = "payments" }
//! channels = ["payments-alerts", "incidents"]
//! template = "alert"      # default "auto"
//! continue = true         # keep evaluating later rules
//! ```
//!
//! Semantics:
//! - Rules are tried in order. A rule matches when every matcher in its `match` table matches
//!   (no `match` table: it matches everything). Matchable fields are `kind`, `severity`,
//!   `status`, `source`, `service`, `environment`, `title` and `labels.<key>` (also written as
//!   a nested table, `labels = { team = "payments" }`).
//! - A matcher is a string (exact, case-sensitive), an array (one of), `{ regex = "…" }`
//!   (unanchored, Rust `regex` syntax) or `{ not = <matcher> }`. A label the event does not
//!   carry matches nothing, so `{ not = … }` on it matches.
//! - A matching rule without `continue` ends evaluation. Channels of several matching rules
//!   are de-duplicated, first occurrence (and its template) wins.
//! - `drop = true` ends evaluation. The event is dropped ([`Decision::Drop`]) unless an earlier
//!   `continue` rule already chose channels; then it goes to those and no further rule runs.
//!   So an "audit everything" rule placed first still sees what later rules drop.
//! - When no rule chose a channel, the `default` route applies; without one the event is
//!   [`Decision::Unrouted`] (the pipeline records it; nothing is silently lost).
//!
//! Per-event work is bit tests for the enum fields (each matcher on them is turned into a
//! bit set when the router is built) and precompiled regexes for the strings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use regex::Regex;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

pub use crate::config_error::ConfigError;
use crate::event::{closest, Event, Kind, Severity, Status};
use crate::noise::{self, Noise, NoiseConfig, StormConfig};

/// The `[routing]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Where events go that no rule sent anywhere.
    #[serde(default)]
    pub default: Option<Spanned<DefaultRoute>>,
    /// `[[routing.rule]]`, in order.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<RuleConfig>>,
}

/// `default = { channels = [...], template = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultRoute {
    pub channels: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub template: Option<Spanned<String>>,
    #[serde(default)]
    pub group_by: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub group_wait: Option<Spanned<String>>,
    #[serde(default)]
    pub group_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub repeat_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub storm: Option<Spanned<StormConfig>>,
}

/// One `[[routing.rule]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: Spanned<String>,
    #[serde(default, rename = "match")]
    pub matchers: MatchTable,
    #[serde(default)]
    pub channels: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub template: Option<Spanned<String>>,
    #[serde(default)]
    pub drop: Option<Spanned<bool>>,
    #[serde(default, rename = "continue")]
    pub continue_: Option<Spanned<bool>>,
    #[serde(default)]
    pub group_by: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub group_wait: Option<Spanned<String>>,
    #[serde(default)]
    pub group_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub repeat_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub storm: Option<Spanned<StormConfig>>,
}

/// The `match` table, in the order written: field name → matcher.
#[derive(Debug, Clone, Default)]
pub struct MatchTable(pub Vec<(Spanned<String>, Spanned<MatcherConfig>)>);

/// A matcher as written in the config.
#[derive(Debug, Clone)]
pub enum MatcherConfig {
    /// `"value"`
    Exact(String),
    /// `["a", "b"]`
    OneOf(Vec<String>),
    /// `{ regex = "…" }`
    Regex(String),
    /// `{ not = <matcher> }`
    Not(Box<Spanned<MatcherConfig>>),
    /// Any other table: only meaningful under `labels` (`labels = { team = "payments" }`).
    Table(MatchTable),
}

const MATCHER_EXPECTING: &str =
    "a matcher: a string, an array of strings, { regex = \"...\" } or { not = <matcher> }";

impl<'de> Deserialize<'de> for MatchTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatchTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of field = matcher")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MatchTable, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(MatchTable(entries))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for MatcherConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatcherConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(MATCHER_EXPECTING)
            }
            fn visit_str<E>(self, v: &str) -> Result<MatcherConfig, E> {
                Ok(MatcherConfig::Exact(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MatcherConfig, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<String>()? {
                    values.push(v);
                }
                Ok(MatcherConfig::OneOf(values))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MatcherConfig, A::Error> {
                let mut table: Vec<(Spanned<String>, Spanned<MatcherConfig>)> = Vec::new();
                let mut special: Option<MatcherConfig> = None;
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.get_ref().as_str() {
                        "regex" => special = Some(MatcherConfig::Regex(map.next_value()?)),
                        "not" => special = Some(MatcherConfig::Not(Box::new(map.next_value()?))),
                        _ => table.push((key, map.next_value()?)),
                    }
                    if special.is_some() && !table.is_empty() {
                        return Err(de::Error::custom(
                            "a matcher table has exactly one key, `regex` or `not`",
                        ));
                    }
                }
                Ok(special.unwrap_or(MatcherConfig::Table(MatchTable(table))))
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields a `match` table may name (`labels.<key>` stands for any label).
pub const MATCH_FIELDS: [&str; 8] = [
    "kind",
    "severity",
    "status",
    "source",
    "service",
    "environment",
    "title",
    "labels.<key>",
];

/// What the router decided for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Post to these channels. `matched` names the rules that matched, in order (`"default"`
    /// when the default route applied).
    Deliver {
        deliveries: Vec<Delivery>,
        matched: Vec<String>,
    },
    /// Discarded on purpose by the named rule.
    Drop { rule: String },
    /// No rule and no default route: the caller must record it as unrouted.
    Unrouted,
}

/// One message to post: where, with which template, because of which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub channel: String,
    pub template: String,
    pub rule: String,
    /// The route's grouping and storm guard, if it has them.
    pub noise: Option<Arc<Noise>>,
}

/// A route with noise control ([`Router::noise_routes`]).
#[derive(Debug, Clone)]
pub struct NoiseRoute {
    pub rule: String,
    pub channels: Vec<String>,
    pub noise: Arc<Noise>,
}

/// The name used in [`Delivery::rule`] and `matched` for the default route.
pub const DEFAULT_RULE: &str = "default";

/// Compiled routing rules. Build once with [`Router::new`]; [`Router::route`] is cheap.
#[derive(Debug, Clone)]
pub struct Router {
    rules: Vec<Rule>,
    default: Option<Vec<Delivery>>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    span: Range<usize>,
    matchers: Matchers,
    /// `None` for a drop rule.
    deliveries: Option<Vec<Delivery>>,
    continues: bool,
}

/// A compiled `match` table: it matches an event when every matcher in it does. Routing rules
/// and inhibition rules ([`crate::inhibit`]) share it, so both speak the same matcher language; so do the
/// `on` tables of `[[action]]` buttons ([`crate::render::ActionButton`]).
#[derive(Debug, Clone)]
pub struct Matchers {
    kind: u8,
    severity: u8,
    status: u8,
    strings: Vec<(StrField, Test)>,
    /// Why it can never match, when that is evident from the table alone.
    never: Option<String>,
}

impl Matchers {
    /// Compiles a `match` table; `owner` names it in messages (`rule "db"`). Problems are
    /// pushed to `errors`, and what compiled is kept, so every problem is reported at once.
    pub fn compile(table: &MatchTable, owner: &str, errors: &mut Vec<ConfigError>) -> Matchers {
        let mut m = Matchers {
            kind: all_bits(Kind::ALL.len()),
            severity: all_bits(Severity::ALL.len()),
            status: all_bits(Status::ALL.len()),
            strings: Vec::new(),
            never: None,
        };
        let mut fields_seen: Vec<String> = Vec::new();
        for (key, matcher) in &table.0 {
            compile_matcher(&mut m, owner, key, matcher, &mut fields_seen, errors);
        }
        m
    }

    /// Why it can never match, when that is evident from the table alone.
    pub fn never(&self) -> Option<&str> {
        self.never.as_deref()
    }

    /// Every matcher matches `e`.
    pub fn matches(&self, e: &Event) -> bool {
        self.matches_bits(EventBits::of(e), e)
    }

    fn matches_bits(&self, bits: EventBits, e: &Event) -> bool {
        self.kind & bits.kind != 0
            && self.severity & bits.severity != 0
            && self.status & bits.status != 0
            && self.strings.iter().all(|(f, t)| t.matches(f.get(e)))
    }
}

/// An event's kind, severity and status as one bit each, to test against [`Matchers`] masks.
#[derive(Clone, Copy)]
struct EventBits {
    kind: u8,
    severity: u8,
    status: u8,
}

impl EventBits {
    fn of(e: &Event) -> EventBits {
        EventBits {
            kind: 1u8 << kind_index(e.kind),
            severity: 1u8 << severity_index(e.severity),
            status: 1u8 << status_index(e.status),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StrField {
    Source,
    Service,
    Environment,
    Title,
    Label(String),
}

impl StrField {
    fn get<'e>(&self, e: &'e Event) -> Option<&'e str> {
        match self {
            StrField::Source => Some(&e.source),
            StrField::Service => Some(&e.service),
            StrField::Environment => Some(&e.environment),
            StrField::Title => Some(&e.title),
            StrField::Label(k) => e.labels.get(k).map(String::as_str),
        }
    }
}

#[derive(Debug, Clone)]
enum Test {
    Exact(String),
    OneOf(Vec<String>),
    Regex(Regex),
    Not(Box<Test>),
}

impl Test {
    fn matches(&self, v: Option<&str>) -> bool {
        match self {
            Test::Exact(x) => v == Some(x.as_str()),
            Test::OneOf(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
            Test::Regex(r) => v.is_some_and(|v| r.is_match(v)),
            Test::Not(t) => !t.matches(v),
        }
    }

    /// Every value `narrow` matches, `self` matches too (answered conservatively: `false`
    /// when unsure, so shadowing warnings are never wrong).
    fn covers(&self, narrow: &Test) -> bool {
        let values: Option<&[String]> = match narrow {
            Test::Exact(x) => Some(std::slice::from_ref(x)),
            Test::OneOf(xs) => Some(xs),
            _ => None,
        };
        if let Some(values) = values {
            return values.iter().all(|v| self.matches(Some(v)));
        }
        match (self, narrow) {
            (Test::Regex(a), Test::Regex(b)) => a.as_str() == b.as_str(),
            (Test::Not(a), Test::Not(b)) => b.covers(a),
            _ => false,
        }
    }

    fn never_matches(&self) -> bool {
        matches!(self, Test::OneOf(xs) if xs.is_empty())
    }
}

fn all_bits(n: usize) -> u8 {
    (1u8 << n) - 1
}

impl Router {
    /// Compiles and validates the rules. `templates` is the set of template names the
    /// renderer knows (built-ins and user templates). All problems are returned at once.
    pub fn new(
        cfg: &RoutingConfig,
        templates: &BTreeSet<String>,
    ) -> Result<Router, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut seen: BTreeMap<&str, Range<usize>> = BTreeMap::new();
        let mut rules = Vec::with_capacity(cfg.rules.len());
        for rule in &cfg.rules {
            let name = rule.get_ref().name.get_ref();
            if let Some(first) = seen.get(name.as_str()) {
                errors.push(ConfigError::new(
                    Some(rule.get_ref().name.span()),
                    format!(
                        "duplicate rule name \"{name}\" (first used at byte {})",
                        first.start
                    ),
                    "give every rule a unique name; decisions and metrics refer to rules by name",
                ));
            } else {
                seen.insert(name, rule.get_ref().name.span());
            }
            if let Some(r) = compile_rule(rule, templates, &mut errors) {
                rules.push(r);
            }
        }
        let default = cfg.default.as_ref().and_then(|d| {
            let template = template_name(d.get_ref().template.as_ref(), templates, &mut errors)?;
            let channels = channel_list(&d.get_ref().channels, &mut errors, "the default route")?;
            let d = d.get_ref();
            let noise = compile_noise(
                NoiseConfig {
                    group_by: d.group_by.as_ref(),
                    group_wait: d.group_wait.as_ref(),
                    group_interval: d.group_interval.as_ref(),
                    repeat_interval: d.repeat_interval.as_ref(),
                    storm: d.storm.as_ref(),
                },
                "the default route",
                &mut errors,
            );
            Some(deliveries(&channels, &template, DEFAULT_RULE, noise))
        });
        if errors.is_empty() {
            Ok(Router { rules, default })
        } else {
            Err(errors)
        }
    }

    /// The routes with noise control (see [`crate::noise`]), with their channels, in rule order.
    pub fn noise_routes(&self) -> Vec<NoiseRoute> {
        let mut out = Vec::new();
        for ds in self
            .rules
            .iter()
            .filter_map(|r| r.deliveries.as_ref())
            .chain(self.default.as_ref())
        {
            if let Some(noise) = ds.first().and_then(|d| d.noise.clone()) {
                out.push(NoiseRoute {
                    rule: ds[0].rule.clone(),
                    channels: ds.iter().map(|d| d.channel.clone()).collect(),
                    noise,
                });
            }
        }
        out
    }

    /// Decides where `e` goes. See the module doc for the semantics.
    pub fn route(&self, e: &Event) -> Decision {
        let bits = EventBits::of(e);
        let mut out: Vec<Delivery> = Vec::new();
        let mut matched: Vec<String> = Vec::new();
        for rule in &self.rules {
            if !rule.matchers.matches_bits(bits, e) {
                continue;
            }
            matched.push(rule.name.clone());
            let Some(ds) = &rule.deliveries else {
                if out.is_empty() {
                    return Decision::Drop {
                        rule: rule.name.clone(),
                    };
                }
                break;
            };
            for d in ds {
                if !out.iter().any(|o| o.channel == d.channel) {
                    out.push(d.clone());
                }
            }
            if !rule.continues {
                break;
            }
        }
        if out.is_empty() {
            match &self.default {
                Some(ds) => {
                    matched.push(DEFAULT_RULE.to_owned());
                    out = ds.clone();
                }
                None => return Decision::Unrouted,
            }
        }
        Decision::Deliver {
            deliveries: out,
            matched,
        }
    }

    /// Warnings about a configuration that compiles but probably does not do what was meant:
    /// rules that can never match (empty one-of, a matcher no value satisfies, or shadowed by
    /// an earlier rule that stops evaluation and matches everything this one would), and,
    /// without a default route, the kind × severity × status combinations no rule is certain
    /// to route.
    pub fn check(&self) -> Vec<ConfigError> {
        let mut warnings = Vec::new();
        for (j, b) in self.rules.iter().enumerate() {
            if let Some(why) = &b.matchers.never {
                warnings.push(ConfigError::new(
                    Some(b.span.clone()),
                    format!("rule \"{}\" can never match: {why}", b.name),
                    "correct the matcher or remove the rule",
                ));
                continue;
            }
            let shadow = self.rules[..j].iter().find(|a| {
                (!a.continues || a.deliveries.is_none())
                    && a.matchers.never.is_none()
                    && covers(&a.matchers, &b.matchers)
            });
            if let Some(a) = shadow {
                warnings.push(ConfigError::new(
                    Some(b.span.clone()),
                    format!(
                        "rule \"{}\" can never match: the earlier rule \"{}\" matches every event it would and stops evaluation",
                        b.name, a.name
                    ),
                    format!(
                        "move \"{}\" above \"{}\", narrow \"{}\", or add `continue = true` to \"{}\"",
                        b.name, a.name, a.name, a.name
                    ),
                ));
            }
        }
        if self.default.is_none() {
            let mut uncovered = Vec::new();
            for (ki, k) in Kind::ALL.iter().enumerate() {
                for (si, s) in Severity::ALL.iter().enumerate() {
                    for (ti, t) in Status::ALL.iter().enumerate() {
                        let routed = self.rules.iter().any(|r| {
                            let m = &r.matchers;
                            m.strings.is_empty()
                                && m.kind & (1 << ki) != 0
                                && m.severity & (1 << si) != 0
                                && m.status & (1 << ti) != 0
                        });
                        if !routed {
                            uncovered.push(format!("{k}/{s}/{t}"));
                        }
                    }
                }
            }
            if !uncovered.is_empty() {
                warnings.push(ConfigError::new(
                    None,
                    format!(
                        "there is no default route and {} of the {} kind/severity/status combinations can match no rule (depending on service, source, labels…): {}",
                        uncovered.len(),
                        Kind::ALL.len() * Severity::ALL.len() * Status::ALL.len(),
                        uncovered.join(", ")
                    ),
                    "add `default = { channels = [\"...\"] }` under [routing], or a last rule without `match`; unrouted events are recorded but posted nowhere",
                ));
            }
        }
        warnings
    }
}

/// `a` matches every event `b` matches.
fn covers(a: &Matchers, b: &Matchers) -> bool {
    a.kind & b.kind == b.kind
        && a.severity & b.severity == b.severity
        && a.status & b.status == b.status
        && a.strings
            .iter()
            .all(|(fa, ta)| b.strings.iter().any(|(fb, tb)| fa == fb && ta.covers(tb)))
}

fn kind_index(k: Kind) -> usize {
    Kind::ALL.iter().position(|x| *x == k).unwrap_or(0)
}
fn severity_index(s: Severity) -> usize {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(0)
}
fn status_index(s: Status) -> usize {
    Status::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

fn compile_noise(
    cfg: NoiseConfig,
    route: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Arc<Noise>> {
    noise::compile(&cfg, route, errors).map(Arc::new)
}

fn deliveries(
    channels: &[String],
    template: &str,
    rule: &str,
    noise: Option<Arc<Noise>>,
) -> Vec<Delivery> {
    channels
        .iter()
        .map(|c| Delivery {
            channel: c.clone(),
            template: template.to_owned(),
            rule: rule.to_owned(),
            noise: noise.clone(),
        })
        .collect()
}

fn template_name(
    t: Option<&Spanned<String>>,
    templates: &BTreeSet<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let Some(t) = t else {
        return Some("auto".to_owned());
    };
    if templates.contains(t.get_ref()) {
        return Some(t.get_ref().clone());
    }
    errors.push(ConfigError::new(
        Some(t.span()),
        format!("unknown template \"{}\"", t.get_ref()),
        format!(
            "use one of {} or define it under [templates]",
            templates
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    None
}

fn channel_list(
    channels: &Spanned<Vec<Spanned<String>>>,
    errors: &mut Vec<ConfigError>,
    what: &str,
) -> Option<Vec<String>> {
    if channels.get_ref().is_empty() {
        errors.push(ConfigError::new(
            Some(channels.span()),
            format!("{what} has an empty `channels` list"),
            "list at least one channel, or use `drop = true` to discard on purpose",
        ));
        return None;
    }
    let mut ok = true;
    for c in channels.get_ref() {
        if c.get_ref().trim().is_empty() {
            errors.push(ConfigError::new(
                Some(c.span()),
                format!("{what} has an empty channel name"),
                "write a channel name or ID, e.g. \"alerts\" or \"C0123456\"",
            ));
            ok = false;
        }
    }
    ok.then(|| {
        channels
            .get_ref()
            .iter()
            .map(|c| c.get_ref().clone())
            .collect()
    })
}

fn compile_rule(
    spanned: &Spanned<RuleConfig>,
    templates: &BTreeSet<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<Rule> {
    let cfg = spanned.get_ref();
    let span = spanned.span();
    let name = cfg.name.get_ref().clone();
    let before = errors.len();
    if name.trim().is_empty() {
        errors.push(ConfigError::new(
            Some(cfg.name.span()),
            "a rule has an empty name",
            "give the rule a short unique name, e.g. name = \"payments-critical\"",
        ));
    }
    let drop = cfg.drop.as_ref().is_some_and(|d| *d.get_ref());
    let continues = cfg.continue_.as_ref().is_some_and(|c| *c.get_ref());
    let mut deliveries_out = None;
    match (&cfg.channels, drop) {
        (None, false) => errors.push(ConfigError::new(
            Some(span.clone()),
            format!("rule \"{name}\" has neither `channels` nor `drop = true`"),
            "add `channels = [\"...\"]` to deliver matching events, or `drop = true` to discard them",
        )),
        (Some(ch), true) => errors.push(ConfigError::new(
            Some(ch.span()),
            format!("rule \"{name}\" has both `drop = true` and `channels`"),
            "remove `channels` to discard matching events, or remove `drop` to deliver them",
        )),
        (Some(ch), false) => {
            let what = format!("rule \"{name}\"");
            let template = template_name(cfg.template.as_ref(), templates, errors);
            if let (Some(channels), Some(template)) = (channel_list(ch, errors, &what), template) {
                let noise = compile_noise(
                    NoiseConfig {
                        group_by: cfg.group_by.as_ref(),
                        group_wait: cfg.group_wait.as_ref(),
                        group_interval: cfg.group_interval.as_ref(),
                        repeat_interval: cfg.repeat_interval.as_ref(),
                        storm: cfg.storm.as_ref(),
                    },
                    &what,
                    errors,
                );
                deliveries_out = Some(deliveries(&channels, &template, &name, noise));
            }
        }
        (None, true) => {
            if let Some(t) = &cfg.template {
                errors.push(ConfigError::new(
                    Some(t.span()),
                    format!("rule \"{name}\" drops events, so its `template` is never used"),
                    "remove `template`",
                ));
            }
            if let Some(c) = cfg.continue_.as_ref().filter(|c| *c.get_ref()) {
                errors.push(ConfigError::new(
                    Some(c.span()),
                    format!("rule \"{name}\" drops events, which ends evaluation, so `continue = true` has no effect"),
                    "remove `continue`, or remove `drop` and give the rule channels",
                ));
            }
        }
    }

    let matchers = Matchers::compile(&cfg.matchers, &format!("rule \"{name}\""), errors);
    (errors.len() == before).then_some(Rule {
        name,
        span,
        matchers,
        deliveries: deliveries_out,
        continues,
    })
}

fn compile_matcher(
    rule: &mut Matchers,
    owner: &str,
    key: &Spanned<String>,
    matcher: &Spanned<MatcherConfig>,
    fields_seen: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) {
    let field = key.get_ref().as_str();
    if field == "labels" {
        // `labels = { team = "payments" }` is the nested spelling of `"labels.team" = "payments"`.
        let MatcherConfig::Table(table) = matcher.get_ref() else {
            errors.push(ConfigError::new(
                Some(matcher.span()),
                "`labels` must be a table of label = matcher",
                "write labels = { team = \"payments\" } or \"labels.team\" = \"payments\"",
            ));
            return;
        };
        for (k, m) in &table.0 {
            let full = Spanned::new(k.span(), format!("labels.{}", k.get_ref()));
            compile_matcher(rule, owner, &full, m, fields_seen, errors);
        }
        return;
    }
    if fields_seen.iter().any(|f| f == field) {
        errors.push(ConfigError::new(
            Some(key.span()),
            format!("{owner} matches `{field}` twice"),
            "combine the two into one matcher (an array for one-of)",
        ));
        return;
    }
    fields_seen.push(field.to_owned());

    let test = match compile_test(matcher) {
        Ok(t) => t,
        Err(e) => {
            errors.push(e);
            return;
        }
    };
    let enum_field: Option<(&[&'static str], &mut u8)> = match field {
        "kind" => Some((&["alert", "deployment", "message"], &mut rule.kind)),
        "severity" => Some((
            &["critical", "error", "warning", "info", "ok"],
            &mut rule.severity,
        )),
        "status" => Some((&["firing", "resolved"], &mut rule.status)),
        _ => None,
    };
    if let Some((names, mask)) = enum_field {
        let mut bad = Vec::new();
        literal_values(&test, &mut |v| {
            if !names.contains(&v) {
                bad.push(v.to_owned());
            }
        });
        if !bad.is_empty() {
            errors.push(ConfigError::new(
                Some(matcher.span()),
                format!(
                    "{field} \"{}\" is not one of {}",
                    bad.join("\", \""),
                    names.join(", ")
                ),
                format!("use one of {}", names.join(", ")),
            ));
            return;
        }
        *mask = names
            .iter()
            .enumerate()
            .filter(|(_, n)| test.matches(Some(n)))
            .fold(0, |m, (i, _)| m | 1 << i);
        if *mask == 0 && rule.never.is_none() {
            rule.never = Some(format!("no {field} satisfies its `{field}` matcher"));
        }
        return;
    }
    let str_field = match field {
        "source" => StrField::Source,
        "service" => StrField::Service,
        "environment" => StrField::Environment,
        "title" => StrField::Title,
        _ => match field.strip_prefix("labels.") {
            Some(label) if !label.is_empty() => StrField::Label(label.to_owned()),
            _ => {
                let hint = closest(field, &MATCH_FIELDS)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                errors.push(ConfigError::new(
                    Some(key.span()),
                    format!("unknown match field `{field}`{hint}"),
                    format!("match on one of {}", MATCH_FIELDS.join(", ")),
                ));
                return;
            }
        },
    };
    if test.never_matches() && rule.never.is_none() {
        rule.never = Some(format!("its `{field}` matcher is an empty list"));
    }
    rule.strings.push((str_field, test));
}

fn compile_test(m: &Spanned<MatcherConfig>) -> Result<Test, ConfigError> {
    Ok(match m.get_ref() {
        MatcherConfig::Exact(s) => Test::Exact(s.clone()),
        MatcherConfig::OneOf(xs) => Test::OneOf(xs.clone()),
        MatcherConfig::Regex(src) => Test::Regex(Regex::new(src).map_err(|e| {
            ConfigError::new(
                Some(m.span()),
                format!("regex \"{src}\" does not compile: {e}"),
                "correct the regular expression (Rust regex syntax; no look-around or back-references)",
            )
        })?),
        MatcherConfig::Not(inner) => Test::Not(Box::new(compile_test(inner)?)),
        MatcherConfig::Table(_) => {
            return Err(ConfigError::new(
                Some(m.span()),
                "this table is not a matcher",
                format!("write {MATCHER_EXPECTING}"),
            ))
        }
    })
}

/// Calls `f` with every literal value in a test (exact and one-of), for validating enum names.
fn literal_values<'t>(t: &'t Test, f: &mut impl FnMut(&'t str)) {
    match t {
        Test::Exact(x) => f(x),
        Test::OneOf(xs) => xs.iter().for_each(|x| f(x)),
        Test::Regex(_) => {}
        Test::Not(inner) => literal_values(inner, f),
    }
}

#[cfg(test)]
mod tests;
