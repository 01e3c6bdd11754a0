//! Making an adapter's [`Event`] fit the limits `sluice_core::event` enforces: [`fit`].
//!
//! A source cannot be asked to resend a smaller payload, so instead of refusing a giant
//! alert we cut it down: long strings end in "…", surplus labels and fields are dropped with
//! a field saying how many, links that are not absolute http(s) URLs (or are too long) are
//! left out, and an over-long dedup key keeps a readable prefix plus a hash of the whole so
//! it stays unique and stable.

use sha2::{Digest, Sha256};
use sluice_core::event::{
    MAX_DEDUP_KEY, MAX_FIELDS, MAX_FIELD_TITLE, MAX_FIELD_VALUE, MAX_LABELS, MAX_LABEL_KEY,
    MAX_LABEL_VALUE, MAX_LINKS, MAX_LINK_TITLE, MAX_NAME, MAX_TEXT, MAX_TITLE, MAX_URL,
};
use sluice_core::{Event, Field, Link};

/// `s` cut to at most `max` characters, ending in "…" when it was cut: the one `truncate`, Slack's wire crate's.
pub use sluice_slack_wire::blocks::truncate;

/// The event, changed as little as possible so that it passes Sluice's event validation.
pub fn fit(mut e: Event) -> Event {
    e.title = truncate(e.title.trim(), MAX_TITLE);
    if e.title.is_empty() {
        e.title = format!("Event from {}", e.source);
    }
    e.text = truncate(&e.text, MAX_TEXT);
    e.source = truncate(&e.source, MAX_NAME);
    e.service = truncate(&e.service, MAX_NAME);
    e.environment = truncate(&e.environment, MAX_NAME);

    let mut notes = Vec::new();
    let labels = std::mem::take(&mut e.labels);
    let total = labels.len();
    for (k, v) in labels {
        let k = truncate(k.trim(), MAX_LABEL_KEY);
        if k.is_empty() || e.labels.contains_key(&k) {
            continue;
        }
        if e.labels.len() == MAX_LABELS {
            break;
        }
        e.labels.insert(k, truncate(&v, MAX_LABEL_VALUE));
    }
    if total > e.labels.len() {
        notes.push(Field {
            title: "Labels not kept".into(),
            value: format!(
                "{} of {total} labels (at most {MAX_LABELS} are kept)",
                total - e.labels.len()
            ),
        });
    }

    let mut fields: Vec<Field> = std::mem::take(&mut e.fields)
        .into_iter()
        .filter(|f| !f.title.trim().is_empty())
        .map(|f| Field {
            title: truncate(f.title.trim(), MAX_FIELD_TITLE),
            value: truncate(&f.value, MAX_FIELD_VALUE),
        })
        .collect();
    fields.extend(notes);
    if fields.len() > MAX_FIELDS {
        let dropped = fields.len() - (MAX_FIELDS - 1);
        fields.truncate(MAX_FIELDS - 1);
        fields.push(Field {
            title: "More".into(),
            value: format!("{dropped} more fields not shown"),
        });
    }
    e.fields = fields;

    let mut links: Vec<Link> = Vec::new();
    for link in std::mem::take(&mut e.links) {
        let Some(url) = http_url(&link.url) else {
            continue;
        };
        if links.iter().any(|l| l.url == url) || links.len() == MAX_LINKS {
            continue;
        }
        let title = match link.title.trim() {
            "" => truncate(&url, MAX_LINK_TITLE),
            t => truncate(t, MAX_LINK_TITLE),
        };
        links.push(Link { title, url });
    }
    e.links = links;

    e.dedup_key = e
        .dedup_key
        .filter(|k| !k.trim().is_empty())
        .map(|k| short_key(&k));
    e
}

/// The URL in the normalised form core keeps (spaces and `<>` percent-encoded), if it is an
/// absolute http(s) URL that fits a Slack button.
fn http_url(raw: &str) -> Option<String> {
    let parsed = url::Url::parse(raw.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return None;
    }
    let s = parsed.to_string();
    (s.chars().count() <= MAX_URL).then_some(s)
}

/// A dedup key that fits: unchanged when short, else a prefix plus a hash of the whole key.
fn short_key(key: &str) -> String {
    if key.chars().count() <= MAX_DEDUP_KEY {
        return key.to_owned();
    }
    let hash = hex::encode(&Sha256::digest(key.as_bytes())[..16]);
    let prefix: String = key.chars().take(MAX_DEDUP_KEY - hash.len() - 1).collect();
    format!("{prefix}#{hash}")
}

/// A stable short hash of name/value pairs (order-independent: they are sorted first), for
/// dedup keys when a sender gives no id of its own.
pub(crate) fn hash_pairs<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort();
    let mut h = Sha256::new();
    for (k, v) in pairs {
        // NUL cannot occur in a label name, so the encoding is unambiguous.
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// Seconds as a short human duration: `45s`, `3m 12s`, `1h 04m`.
pub(crate) fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The first 7 characters of a commit id, as the forges show it.
pub(crate) fn short_sha(sha: &str) -> String {
    sha.chars().take(7).collect()
}

/// Adds a field when the payload had a value for it.
pub(crate) fn push_field(e: &mut Event, title: &str, value: Option<impl Into<String>>) {
    if let Some(v) = value {
        e.fields.push(Field {
            title: title.into(),
            value: v.into(),
        });
    }
}

/// Adds a link when the payload had a URL for it.
pub(crate) fn push_link(e: &mut Event, title: &str, url: Option<&str>) {
    if let Some(url) = url {
        e.links.push(Link {
            title: title.into(),
            url: url.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::assert_valid;
    use sluice_core::{Kind, Severity, Status};
    use std::collections::BTreeMap;

    fn event() -> Event {
        Event {
            title: "t".into(),
            text: String::new(),
            severity: Severity::Error,
            status: Status::Firing,
            kind: Kind::Alert,
            source: "test".into(),
            service: String::new(),
            environment: String::new(),
            labels: BTreeMap::new(),
            fields: Vec::new(),
            links: Vec::new(),
            dedup_key: None,
            occurred_at: None,
        }
    }

    #[test]
    fn truncate_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4), "ééé…");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn a_giant_event_is_cut_to_a_valid_one() {
        let mut e = event();
        e.title = "T".repeat(5000);
        e.text = "x".repeat(100_000);
        e.service = "s".repeat(500);
        e.labels = (0..150)
            .map(|i| (format!("{i:03}{}", "k".repeat(200)), "v".repeat(5000)))
            .collect();
        e.labels.insert("  ".into(), "blank key".into());
        e.fields = (0..80)
            .map(|i| Field {
                title: format!("f{i}"),
                value: "v".repeat(3000),
            })
            .collect();
        e.fields.push(Field {
            title: " ".into(),
            value: "untitled".into(),
        });
        e.links = (0..30)
            .map(|i| Link {
                title: String::new(),
                url: format!("https://example.com/{i}?q=<a b>"),
            })
            .collect();
        e.links.insert(
            0,
            Link {
                title: "js".into(),
                url: "javascript:alert(1)".into(),
            },
        );
        e.links.insert(
            0,
            Link {
                title: "relative".into(),
                url: "/runs/1".into(),
            },
        );
        e.dedup_key = Some("k".repeat(2000));
        let fitted = fit(e);
        assert_valid(std::slice::from_ref(&fitted));
        assert!(fitted.title.ends_with('…'));
        assert_eq!(fitted.labels.len(), MAX_LABELS);
        assert_eq!(fitted.fields.len(), MAX_FIELDS);
        assert_eq!(
            fitted.fields.last().map(|f| f.value.as_str()),
            Some("32 more fields not shown")
        );
        assert_eq!(fitted.links.len(), MAX_LINKS);
        assert_eq!(fitted.links[0].url, "https://example.com/0?q=%3Ca%20b%3E");
        let key = fitted.dedup_key.unwrap_or_default();
        assert_eq!(key.chars().count(), MAX_DEDUP_KEY);
        // The cut key is stable: the same long key gives the same short one.
        assert_eq!(
            Some(key),
            fit(Event {
                dedup_key: Some("k".repeat(2000)),
                ..event()
            })
            .dedup_key
        );
    }

    #[test]
    fn an_empty_title_gets_one() {
        let e = fit(Event {
            title: "  ".into(),
            ..event()
        });
        assert_eq!(e.title, "Event from test");
    }

    #[test]
    fn pair_hash_ignores_order() {
        let a: BTreeMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let b: Vec<(String, String)> = vec![("b".into(), "2".into()), ("a".into(), "1".into())];
        assert_eq!(hash_pairs(&a), hash_pairs(b.iter().map(|(k, v)| (k, v))));
        let c: BTreeMap<String, String> = [("a".into(), "12".into())].into();
        let d: BTreeMap<String, String> = [("a1".into(), "2".into())].into();
        assert_ne!(hash_pairs(&c), hash_pairs(&d));
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(duration(45.2), "45s");
        assert_eq!(duration(192.0), "3m 12s");
        assert_eq!(duration(3840.0), "1h 04m");
        assert_eq!(duration(-1.0), "0s");
    }
}
