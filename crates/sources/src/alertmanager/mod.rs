//! Prometheus Alertmanager's webhook receiver (payload version 4): [`Alertmanager`].
//!
//! One event per entry of `alerts[]`, firing and resolved alike (Alertmanager groups them;
//! Sluice's own grouping decides what becomes one message). The mapping is in
//! the crate's `alerts` module; what is Alertmanager's own is the dedup prefix `am:`, the silence link
//! built from `externalURL`, and the `truncatedAlerts` note.
//!
//! Bearer or basic auth configured in Alertmanager's `http_config` is checked by the binary
//! before the body reaches this adapter.

use sluice_core::{Event, Field, Link, Status};

use crate::alerts::{alert_event, group_status};
use crate::payload::{parse_json, At};
use crate::shape::fit;
use crate::{Headers, Parsed, Source, SourceError};

#[cfg(test)]
mod tests;

/// The source's configured name and each event's `source`.
pub const NAME: &str = "alertmanager";

/// The Alertmanager webhook adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alertmanager;

impl Source for Alertmanager {
    fn name(&self) -> &'static str {
        NAME
    }

    fn parse(&self, _headers: &Headers, body: &[u8]) -> Result<Parsed, SourceError> {
        let value = parse_json(body)?;
        let root = At::root(&value);
        // Version 4 has been the only shape since Alertmanager 0.x; anything else is a shape
        // we have never seen, and guessing at it could post nonsense.
        if let Some(v) = root.get("version").id_opt()? {
            if v != "4" {
                return Err(SourceError::Unsupported(format!(
                    "Alertmanager webhook version \"{v}\"; Sluice reads version \"4\""
                )));
            }
        }
        let group = group_status(&root)?;
        let external = root.get("externalURL").text()?;
        let truncated = root.get("truncatedAlerts").f64_opt()?.unwrap_or(0.0);
        let alerts = root.get("alerts").items()?;
        if alerts.is_empty() {
            return Ok(Parsed::ignored("the alert group has no alerts"));
        }
        let mut events = Vec::with_capacity(alerts.len());
        for alert in &alerts {
            let mut e = alert_event(alert, group, NAME, "am")?;
            if let (Status::Firing, Some(base)) = (e.status, external) {
                e.links.push(Link {
                    title: "Silence".into(),
                    url: silence_url(base, &e),
                });
            }
            if truncated >= 1.0 {
                e.fields.push(Field {
                    title: "Truncated".into(),
                    value: format!(
                        "Alertmanager left {truncated} more alerts of this group out of the notification (max_alerts)"
                    ),
                });
            }
            events.push(fit(e));
        }
        Ok(Parsed::events(events))
    }
}

/// A link to Alertmanager's "new silence" form, pre-filled with matchers for every label of
/// the alert, so one click silences exactly this alert.
fn silence_url(external: &str, e: &Event) -> String {
    let matchers: Vec<String> = e
        .labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    let filter = format!("{{{}}}", matchers.join(","));
    // byte_serialize writes a space as '+', which the UI reads literally in a fragment; a
    // literal '+' has already become %2B, so swapping is safe.
    let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!(
        "{}/#/silences/new?filter={encoded}",
        external.trim().trim_end_matches('/')
    )
}
