//! Noise control per route: grouping like Alertmanager's, and the storm guard.
//!
//! ```toml
//! [[routing.rule]]
//! name = "alerts"
//! match = { kind = "alert" }
//! channels = ["alerts"]
//! group_by = ["service"]        # "..." groups each alert on its own; [] puts every alert of the route in one group
//! group_wait = "30s"            # how long a new group waits for more alerts before its first message
//! group_interval = "5m"         # how long after a message the group's card is updated again with what changed
//! repeat_interval = "4h"        # how often a group that still fires says so again (in its thread)
//! storm = { above = 300, per = "1m", digest_every = "5m" }
//! ```
//!
//! Only alerts (events with a `dedup_key`) are grouped; other events on the route are delivered as they come.
//!
//! The storm guard watches how many events reach the route: above `above` events per `per`, the route switches to
//! a periodic digest (counts per service and severity, one message every `digest_every`) instead of a card per
//! group, and switches back when the rate has fallen to half of `above` (the hysteresis keeps it from flapping at
//! the threshold). [`StormGuard`] is that state machine; it is fed totals and a clock by the caller.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config_error::ConfigError;
use crate::event::Event;

/// `group_by = ["..."]`: every alert is a group of its own.
pub const EACH_ALERT: &str = "...";

/// A route's compiled noise control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noise {
    pub group_by: GroupBy,
    pub wait_ms: i64,
    pub interval_ms: i64,
    pub repeat_ms: i64,
    pub storm: Option<Storm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// The named fields and labels (possibly none: one group for the whole route).
    Labels(Vec<String>),
    /// Each alert (by its dedup key) on its own.
    EachAlert,
}

/// The storm guard of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storm {
    /// A storm is more than this many events within `window_ms`.
    pub above: u64,
    pub window_ms: i64,
    /// One digest per this period while the storm lasts.
    pub digest_ms: i64,
}

/// `storm = { above = 300, per = "1m", digest_every = "5m" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormConfig {
    pub above: u64,
    #[serde(default)]
    pub per: Option<String>,
    #[serde(default)]
    pub digest_every: Option<String>,
}

/// The noise-control keys of a route as written (part of `[[routing.rule]]` and `default`).
#[derive(Debug, Clone, Default)]
pub struct NoiseConfig<'a> {
    pub group_by: Option<&'a Spanned<Vec<String>>>,
    pub group_wait: Option<&'a Spanned<String>>,
    pub group_interval: Option<&'a Spanned<String>>,
    pub repeat_interval: Option<&'a Spanned<String>>,
    pub storm: Option<&'a Spanned<StormConfig>>,
}

const DEFAULT_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);
const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);
const DEFAULT_STORM_WINDOW: Duration = Duration::from_secs(60);
const DEFAULT_DIGEST: Duration = Duration::from_secs(5 * 60);

fn duration(
    v: Option<&Spanned<String>>,
    default: Duration,
    key: &str,
    route: &str,
    errors: &mut Vec<ConfigError>,
) -> i64 {
    let Some(v) = v else {
        return default.as_millis() as i64;
    };
    match crate::duration::parse_duration(v.get_ref()) {
        Ok(d) if !d.is_zero() || key == "group_wait" => d.as_millis().min(i64::MAX as u128) as i64,
        Ok(_) => {
            errors.push(err(
                v.span(),
                format!("{route}: `{key}` must be longer than zero"),
                format!(
                    "write a duration such as {key} = \"{}\"",
                    humantime::format_duration(default)
                ),
            ));
            0
        }
        Err(e) => {
            errors.push(err(
                v.span(),
                format!(
                    "{route}: `{key}` = \"{}\" is not a duration ({e})",
                    v.get_ref()
                ),
                "write a number and a unit: \"500ms\", \"30s\", \"5m\", \"4h\", \"1h30m\"",
            ));
            0
        }
    }
}

fn err(span: Range<usize>, message: String, fix: impl Into<String>) -> ConfigError {
    ConfigError {
        span: Some(span),
        message,
        fix: fix.into(),
    }
}

/// Compiles a route's noise control; `Ok(None)` when the route has none (every alert gets its own card at once).
/// `route` names the route in messages (`rule "alerts"`).
pub fn compile(cfg: &NoiseConfig, route: &str, errors: &mut Vec<ConfigError>) -> Option<Noise> {
    let Some(group_by) = cfg.group_by else {
        let stray = [
            ("group_wait", cfg.group_wait.map(Spanned::span)),
            ("group_interval", cfg.group_interval.map(Spanned::span)),
            ("repeat_interval", cfg.repeat_interval.map(Spanned::span)),
            ("storm", cfg.storm.map(Spanned::span)),
        ];
        for (key, span) in stray {
            if let Some(span) = span {
                errors.push(err(
                    span,
                    format!("{route}: `{key}` works on groups of alerts, but the route has no `group_by`"),
                    "add `group_by = [\"service\"]` (or [\"...\"] to keep each alert on its own)",
                ));
            }
        }
        return None;
    };
    let names = group_by.get_ref();
    let by = if names.iter().any(|n| n == EACH_ALERT) {
        if names.len() > 1 {
            errors.push(err(
                group_by.span(),
                format!("{route}: `group_by` mixes \"...\" with label names"),
                "use either [\"...\"] (each alert on its own) or a list of labels",
            ));
        }
        GroupBy::EachAlert
    } else {
        for n in names {
            if n.trim().is_empty() {
                errors.push(err(
                    group_by.span(),
                    format!("{route}: `group_by` has an empty label name"),
                    "name fields (service, severity, environment, title, source) or labels (team, labels.team)",
                ));
            }
        }
        GroupBy::Labels(names.clone())
    };
    let before = errors.len();
    let wait_ms = duration(cfg.group_wait, DEFAULT_WAIT, "group_wait", route, errors);
    let interval_ms = duration(
        cfg.group_interval,
        DEFAULT_INTERVAL,
        "group_interval",
        route,
        errors,
    );
    let repeat_ms = duration(
        cfg.repeat_interval,
        DEFAULT_REPEAT,
        "repeat_interval",
        route,
        errors,
    );
    let storm = cfg.storm.map(|s| {
        let sc = s.get_ref();
        if sc.above == 0 {
            errors.push(err(
                s.span(),
                format!("{route}: `storm.above` must be at least 1"),
                "set the number of events per `per` above which the route switches to a digest, e.g. above = 300",
            ));
        }
        let spanned = |v: &Option<String>| v.clone().map(|v| Spanned::new(s.span(), v));
        Storm {
            above: sc.above,
            window_ms: duration(spanned(&sc.per).as_ref(), DEFAULT_STORM_WINDOW, "storm.per", route, errors),
            digest_ms: duration(
                spanned(&sc.digest_every).as_ref(),
                DEFAULT_DIGEST,
                "storm.digest_every",
                route,
                errors,
            ),
        }
    });
    (errors.len() == before).then_some(Noise {
        group_by: by,
        wait_ms,
        interval_ms,
        repeat_ms,
        storm,
    })
}

/// The value of a field or label named in `group_by`: the fields `service`, `severity`, `environment`, `title`
/// (also `alertname`), `source` and `kind`, else the label (`labels.team` or plain `team`). Missing is empty, as in
/// Alertmanager.
pub fn field_value(e: &Event, name: &str) -> String {
    match name {
        "service" => e.service.clone(),
        "severity" => e.severity.as_str().to_owned(),
        "environment" => e.environment.clone(),
        "title" => e.title.clone(),
        "source" => e.source.clone(),
        "kind" => e.kind.as_str().to_owned(),
        "alertname" => e
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| e.title.clone()),
        other => {
            let label = other.strip_prefix("labels.").unwrap_or(other);
            e.labels.get(label).cloned().unwrap_or_default()
        }
    }
}

impl Noise {
    /// The group `e` belongs to on this route: its labels, in `group_by` order. `None` for an event that is not an
    /// alert (no dedup key): it is delivered on its own.
    pub fn group_of(&self, e: &Event) -> Option<Vec<(String, String)>> {
        let key = e.dedup_key.as_ref()?;
        Some(match &self.group_by {
            GroupBy::EachAlert => vec![("alert".to_owned(), key.clone())],
            GroupBy::Labels(names) => names
                .iter()
                .map(|n| (n.clone(), field_value(e, n)))
                .collect(),
        })
    }
}

/// What the storm guard decided on one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormChange {
    /// Nothing changed.
    Steady,
    /// The rate went above the limit: switch to the digest.
    Started,
    /// The rate fell to half the limit: back to cards.
    Ended,
}

/// The storm guard of one route: fed the route's rate (events in the last window, as the store counts them) and the
/// time, it says when a storm starts and ends.
#[derive(Debug, Clone, Default)]
pub struct StormGuard {
    rate: u64,
    since_ms: Option<i64>,
}

impl StormGuard {
    /// Events in the last window, as of the latest observation.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// When the current storm started, `None` when calm.
    pub fn since_ms(&self) -> Option<i64> {
        self.since_ms
    }

    pub fn observe(&mut self, storm: &Storm, now_ms: i64, rate: u64) -> StormChange {
        self.rate = rate;
        match self.since_ms {
            None if rate > storm.above => {
                self.since_ms = Some(now_ms);
                StormChange::Started
            }
            Some(_) if rate <= storm.above / 2 => {
                self.since_ms = None;
                StormChange::Ended
            }
            _ => StormChange::Steady,
        }
    }
}

/// Counts for a digest: per (service, severity), how many alerts and how many events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestCounts {
    pub by: BTreeMap<(String, String), (u64, u64)>,
}

impl DigestCounts {
    pub fn add(&mut self, service: &str, severity: &str, events: u64) {
        let e = self
            .by
            .entry((service.to_owned(), severity.to_owned()))
            .or_default();
        e.0 += 1;
        e.1 += events;
    }

    pub fn alerts(&self) -> u64 {
        self.by.values().map(|v| v.0).sum()
    }

    pub fn events(&self) -> u64 {
        self.by.values().map(|v| v.1).sum()
    }
}

#[cfg(test)]
mod tests;
