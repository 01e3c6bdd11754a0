//! The mapping shared by the Prometheus-style alert senders (Alertmanager, and Grafana whose
//! webhook is Alertmanager's shape plus extras): one [`Event`] per entry of `alerts[]`, built
//! by [`alert_event`]. Label and annotation conventions come from the Prometheus world:
//! `severity`, `service`/`job`/`app`, `env`/`environment`/`cluster`, and the `summary`,
//! `description` and `runbook_url` annotations.

use std::collections::BTreeMap;

use sluice_core::{Event, Field, Kind, Link, Severity, Status};
use time::OffsetDateTime;

use crate::payload::At;
use crate::shape::hash_pairs;
use crate::SourceError;

/// The annotations [`alert_event`] shows in its own places rather than as fields.
const USED_ANNOTATIONS: [&str; 4] = ["summary", "description", "message", "runbook_url"];

/// Maps a `severity` label. Unknown values become `Warning` plus a field that says so, so
/// an alert is never lost to a spelling and the reader sees why the colour may be off.
pub(crate) fn severity(label: Option<&str>) -> (Severity, Option<Field>) {
    let Some(raw) = label.map(str::trim).filter(|s| !s.is_empty()) else {
        return (Severity::Warning, None);
    };
    let severity = match raw.to_ascii_lowercase().as_str() {
        "critical" | "page" => Severity::Critical,
        "error" | "high" => Severity::Error,
        "warning" | "warn" | "medium" => Severity::Warning,
        "info" | "low" | "none" => Severity::Info,
        _ => {
            return (
                Severity::Warning,
                Some(Field {
                    title: "Severity".into(),
                    value: format!("\"{raw}\" is not a known severity; shown as warning"),
                }),
            )
        }
    };
    (severity, None)
}

fn alert_status(at: &At<'_>, group: Option<Status>) -> Result<Status, SourceError> {
    match at.str_opt()? {
        Some(s) if s.eq_ignore_ascii_case("firing") => Ok(Status::Firing),
        Some(s) if s.eq_ignore_ascii_case("resolved") => Ok(Status::Resolved),
        Some(s) => Err(at.bad(format!(
            "\"{s}\" is not an alert status; expected \"firing\" or \"resolved\""
        ))),
        None => group.ok_or_else(|| at.bad("is required (\"firing\" or \"resolved\")")),
    }
}

/// The payload's top-level `status`, used for alerts that lack their own.
pub(crate) fn group_status(root: &At<'_>) -> Result<Option<Status>, SourceError> {
    let at = root.get("status");
    if at.is_absent() {
        return Ok(None);
    }
    alert_status(&at, None).map(Some)
}

fn first<'m>(map: &'m BTreeMap<String, String>, keys: &[&str]) -> Option<&'m str> {
    keys.iter()
        .filter_map(|k| map.get(*k))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

/// One alert of `alerts[]` as an event, with what both senders share. `source` names the
/// event's source and prefixes its dedup key (`am:` / `grafana:`).
pub(crate) fn alert_event(
    alert: &At<'_>,
    group: Option<Status>,
    source: &str,
    key_prefix: &str,
) -> Result<Event, SourceError> {
    alert.require_object("an alert")?;
    let status = alert_status(&alert.get("status"), group)?;
    let labels_at = alert.get("labels");
    labels_at.require_object("the alert's labels")?;
    let labels = labels_at.str_map()?;
    let annotations = alert.get("annotations").str_map()?;
    let starts_at = alert.get("startsAt").time_opt()?;
    let ends_at = alert.get("endsAt").time_opt()?;

    let (severity, note) = severity(labels.get("severity").map(String::as_str));
    let title = first(&annotations, &["summary"])
        .or_else(|| first(&labels, &["alertname"]))
        .unwrap_or("Alert")
        .to_owned();
    let text = first(&annotations, &["description", "message"])
        .unwrap_or_default()
        .to_owned();

    let mut fields: Vec<Field> = note.into_iter().collect();
    // Other annotations are what the rule's author wanted on-call to see. Keys starting with
    // "__" are Grafana's internal bookkeeping.
    fields.extend(
        annotations
            .iter()
            .filter(|(k, v)| {
                !USED_ANNOTATIONS.contains(&k.as_str())
                    && !k.starts_with("__")
                    && !v.trim().is_empty()
            })
            .map(|(k, v)| Field {
                title: k.clone(),
                value: v.clone(),
            }),
    );

    let mut links = Vec::new();
    if let Some(url) = alert.get("generatorURL").text()? {
        links.push(Link {
            title: "Source".into(),
            url: url.to_owned(),
        });
    }
    if let Some(url) = first(&annotations, &["runbook_url"]) {
        links.push(Link {
            title: "Runbook".into(),
            url: url.to_owned(),
        });
    }

    let fingerprint = alert.get("fingerprint").text()?;
    let dedup_key = match fingerprint {
        Some(f) => format!("{key_prefix}:{}", f.trim()),
        None => format!("{key_prefix}:{}", hash_pairs(&labels)),
    };
    let occurred_at: Option<OffsetDateTime> = match status {
        Status::Resolved => ends_at.or(starts_at),
        Status::Firing => starts_at,
    };

    Ok(Event {
        title,
        text,
        severity,
        status,
        kind: Kind::Alert,
        source: source.to_owned(),
        service: first(&labels, &["service", "job", "app"])
            .unwrap_or_default()
            .to_owned(),
        environment: first(&labels, &["env", "environment", "cluster"])
            .unwrap_or_default()
            .to_owned(),
        labels,
        fields,
        links,
        dedup_key: Some(dedup_key),
        occurred_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_labels_map_to_sluice_severities() {
        let cases = [
            (Some("critical"), Severity::Critical, false),
            (Some("PAGE"), Severity::Critical, false),
            (Some("error"), Severity::Error, false),
            (Some("high"), Severity::Error, false),
            (Some("warning"), Severity::Warning, false),
            (Some("warn"), Severity::Warning, false),
            (Some("Medium"), Severity::Warning, false),
            (Some("info"), Severity::Info, false),
            (Some("low"), Severity::Info, false),
            (Some("none"), Severity::Info, false),
            (Some(" critical "), Severity::Critical, false),
            (None, Severity::Warning, false),
            (Some(""), Severity::Warning, false),
            (Some("p1"), Severity::Warning, true),
            (Some("disaster"), Severity::Warning, true),
        ];
        for (label, want, noted) in cases {
            let (got, note) = severity(label);
            assert_eq!(got, want, "{label:?}");
            assert_eq!(note.is_some(), noted, "{label:?}");
        }
        let (_, note) = severity(Some("p1"));
        assert_eq!(
            note.map(|f| f.value),
            Some("\"p1\" is not a known severity; shown as warning".to_owned())
        );
    }
}
