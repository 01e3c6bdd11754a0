//! Grafana unified alerting's webhook contact point: [`Grafana`].
//!
//! The payload is Alertmanager's with extras, so each entry of `alerts[]` goes through the
//! shared mapping in the crate's `alerts` module and then gains what Grafana adds per alert: the
//! `silenceURL`, `dashboardURL`, `panelURL` and `imageURL` links, and the query values
//! (`values`, or the older `valueString`) as fields. Dedup keys are `grafana:` + fingerprint.
//! The top-level `title`/`message` summarise the whole group and are not used: Sluice groups
//! on its own terms.
//!
//! Legacy (pre-unified) Grafana alerting sent a single rule (`ruleName`, `evalMatches`) with
//! no `alerts` array; that shape is refused as `Unsupported` with a pointer to the fix.

use serde_json::Value;
use sluice_core::{Field, Link};

use crate::alerts::{alert_event, group_status};
use crate::payload::{parse_json, type_name, At};
use crate::shape::fit;
use crate::{Headers, Parsed, Source, SourceError};

#[cfg(test)]
mod tests;

/// The source's configured name and each event's `source`.
pub const NAME: &str = "grafana";

/// The Grafana alerting webhook adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grafana;

impl Source for Grafana {
    fn name(&self) -> &'static str {
        NAME
    }

    fn parse(&self, _headers: &Headers, body: &[u8]) -> Result<Parsed, SourceError> {
        let value = parse_json(body)?;
        let root = At::root(&value);
        if root.get("alerts").is_absent() && !root.get("ruleName").is_absent() {
            return Err(SourceError::Unsupported(
                "this is legacy Grafana alerting's payload (ruleName, evalMatches); \
                 Sluice reads unified alerting's webhook contact point"
                    .into(),
            ));
        }
        let group = group_status(&root)?;
        let alerts = root.get("alerts").items()?;
        if alerts.is_empty() {
            return Ok(Parsed::ignored("the notification has no alerts"));
        }
        let mut events = Vec::with_capacity(alerts.len());
        for alert in &alerts {
            let mut e = alert_event(alert, group, NAME, "grafana")?;
            for (key, title) in [
                ("dashboardURL", "Dashboard"),
                ("panelURL", "Panel"),
                ("imageURL", "Image"),
                ("silenceURL", "Silence"),
            ] {
                // Silencing an alert that is over helps nobody.
                if key == "silenceURL" && e.status == sluice_core::Status::Resolved {
                    continue;
                }
                if let Some(url) = alert.get(key).text()? {
                    e.links.push(Link {
                        title: title.into(),
                        url: url.to_owned(),
                    });
                }
            }
            e.fields.extend(values(alert)?);
            events.push(fit(e));
        }
        Ok(Parsed::events(events))
    }
}

/// The query results that made the rule fire: `values` (`{"B": 44.2, "C": 1}`, by query
/// ref id), or `valueString` from Grafana versions before `values` existed.
fn values(alert: &At<'_>) -> Result<Vec<Field>, SourceError> {
    let at = alert.get("values");
    let mut out = Vec::new();
    if let Some(v) = at.raw()? {
        let Value::Object(map) = v else {
            return Err(at.bad(format!(
                "expected an object of query values like {{\"B\": 44.2}}, got {}",
                type_name(v)
            )));
        };
        for (ref_id, v) in map {
            let value = match v {
                Value::Number(n) => n.as_f64().map(number).unwrap_or_else(|| n.to_string()),
                Value::Null => "no data".into(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push(Field {
                title: format!("Value {ref_id}"),
                value,
            });
        }
    }
    if out.is_empty() {
        if let Some(s) = alert.get("valueString").text()? {
            out.push(Field {
                title: "Values".into(),
                value: s.to_owned(),
            });
        }
    }
    Ok(out)
}

/// A query value as a person reads it: integers without a fraction, others to 4 places.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}
