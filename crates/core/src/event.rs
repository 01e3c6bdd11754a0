//! Sluice's own event model ([`Event`]) and the validation of what sources send us
//! ([`parse_events`]).
//!
//! Every source adapter (HTTP API, Alertmanager, GitHub, …) ends in an [`Event`]; nothing
//! downstream sees a source's wire format. [`parse_events`] is the strict front door for the
//! native JSON API: it accepts one object or a batch (an array of 1..=[`MAX_BATCH`] objects)
//! and answers the first problem it finds as an [`EventError`] whose `field` is a JSON path
//! (`"[3].severity"`, `"labels.team"`) and whose message says both what is wrong and what is
//! accepted. Unknown keys are rejected rather than ignored, so a typo such as `"servce"`
//! cannot silently lose data.
//!
//! Validation is done by hand over an order-preserving JSON tree instead of `#[derive]`
//! so that the error messages can name the path and the accepted values, `fields` given as an
//! object keep the order the sender wrote, and duplicate keys are refused.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Most events accepted in one request.
pub const MAX_BATCH: usize = 1000;
/// Longest `title`, in characters.
pub const MAX_TITLE: usize = 1000;
/// Longest `text`, in characters (Slack's hard cap on a message's text).
pub const MAX_TEXT: usize = 40_000;
/// Longest `source`, `service` or `environment`, in characters.
pub const MAX_NAME: usize = 200;
/// Most labels on one event.
pub const MAX_LABELS: usize = 100;
/// Longest label key, in characters.
pub const MAX_LABEL_KEY: usize = 100;
/// Longest label value, in characters.
pub const MAX_LABEL_VALUE: usize = 1000;
/// Most `fields` on one event.
pub const MAX_FIELDS: usize = 50;
/// Longest field title, in characters.
pub const MAX_FIELD_TITLE: usize = 200;
/// Longest field value, in characters (Slack's limit for one section field).
pub const MAX_FIELD_VALUE: usize = 2000;
/// Most links on one event.
pub const MAX_LINKS: usize = 20;
/// Longest link title, in characters.
pub const MAX_LINK_TITLE: usize = 200;
/// Longest link URL, in characters (Slack's limit for a button URL).
pub const MAX_URL: usize = 3000;
/// Longest `dedup_key`, in characters.
pub const MAX_DEDUP_KEY: usize = 500;

/// How bad it is. Ordered by urgency: `Ok < Info < Warning < Error < Critical`, so the most
/// urgent of a group is its `max()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
    Ok,
}

impl Severity {
    /// All severities, most urgent first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Info,
        Severity::Ok,
    ];

    /// The wire name (`"critical"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Ok => "ok",
        }
    }

    /// 4 for critical down to 0 for ok.
    pub fn urgency(self) -> u8 {
        match self {
            Severity::Critical => 4,
            Severity::Error => 3,
            Severity::Warning => 2,
            Severity::Info => 1,
            Severity::Ok => 0,
        }
    }
}

impl PartialOrd for Severity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Severity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.urgency().cmp(&other.urgency())
    }
}

/// Whether the condition is happening or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    /// All statuses.
    pub const ALL: [Status; 2] = [Status::Firing, Status::Resolved];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// What sort of thing happened; picks the card the `auto` template renders.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Alert,
    Deployment,
    Message,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 3] = [Kind::Alert, Kind::Deployment, Kind::Message];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Deployment => "deployment",
            Kind::Message => "message",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Severity, Status, Kind);

/// A link shown on the card (as a button where there is room).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub title: String,
    /// Always `http` or `https`.
    pub url: String,
}

/// An extra key/value shown on the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub title: String,
    pub value: String,
}

/// One thing that happened, in Sluice's own terms. Strings are raw (not escaped): escaping
/// is the renderer's job, at the edge where the text becomes Slack mrkdwn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub title: String,
    #[serde(default)]
    pub text: String,
    pub severity: Severity,
    pub status: Status,
    #[serde(default)]
    pub kind: Kind,
    pub source: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub environment: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub fields: Vec<Field>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// When it happened, as the source says (RFC 3339 on the wire).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub occurred_at: Option<OffsetDateTime>,
}

/// Why a request body was refused: where (a JSON path such as `"[3].severity"`, `"title"`,
/// or `""` for the whole body) and what is wrong and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", if .field.is_empty() { .message.clone() } else { format!("{}: {}", .field, .message) })]
pub struct EventError {
    pub field: String,
    pub message: String,
}

/// The top-level keys an event may have, in the order they are listed in errors.
pub const EVENT_KEYS: [&str; 13] = [
    "title",
    "text",
    "severity",
    "status",
    "kind",
    "source",
    "service",
    "environment",
    "labels",
    "fields",
    "links",
    "dedup_key",
    "occurred_at",
];

/// Parses and validates a request body: one event object, or an array of 1..=[`MAX_BATCH`]
/// of them. The first problem found is returned; nothing is accepted from a body with an error.
pub fn parse_events(body: &[u8]) -> Result<Vec<Event>, EventError> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Eof if body.iter().all(u8::is_ascii_whitespace) => {
                "the body is empty; send an event object or an array of them".to_owned()
            }
            _ => format!("the body is not valid JSON: {e}"),
        };
        err("", message)
    })?;
    match raw {
        Raw::Object(obj) => Ok(vec![event_from(&obj, &ROOT)?]),
        Raw::Array(items) => {
            if items.is_empty() {
                return Err(err(
                    "",
                    "the batch is empty; send between 1 and 1000 events".to_owned(),
                ));
            }
            if items.len() > MAX_BATCH {
                return Err(err(
                    "",
                    format!(
                        "the batch has {} events; at most {MAX_BATCH} are accepted per request, split it",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = ROOT.index(i);
                    match item {
                        Raw::Object(obj) => event_from(obj, &path),
                        other => Err(path.error(format!(
                            "expected an event object, got {}",
                            other.type_name()
                        ))),
                    }
                })
                .collect()
        }
        other => Err(err(
            "",
            format!(
                "expected an event object or an array of event objects, got {}",
                other.type_name()
            ),
        )),
    }
}

fn err(field: &str, message: String) -> EventError {
    EventError {
        field: field.to_owned(),
        message,
    }
}

/// A JSON path being built up as validation descends, e.g. `[3].links[0].url`: a chain of borrowed steps, written
/// out only when an error names it (valid events, nearly all of them, never pay for the text).
#[derive(Clone, Copy)]
enum Path<'a> {
    /// The whole body.
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn key(&'a self, k: &'a str) -> Path<'a> {
        Path::Key(self, k)
    }
    fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }
    fn write(&self, out: &mut String) {
        match *self {
            Path::Root => {}
            Path::Key(parent, k) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Path::Index(parent, i) => {
                parent.write(out);
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    fn error(&self, message: String) -> EventError {
        let mut field = String::new();
        self.write(&mut field);
        EventError { field, message }
    }
}

static ROOT: Path<'static> = Path::Root;

/// A JSON value that keeps object keys in the order they were written (and all of them, so
/// duplicates can be refused). `serde_json::Value` sorts keys unless a workspace-wide feature
/// is turned on, which would change behaviour for every other crate.
///
/// Strings without escapes borrow from the request body rather than each being copied out of it.
enum Raw<'de> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'de, str>),
    Array(Vec<Raw<'de>>),
    Object(Vec<(Cow<'de, str>, Raw<'de>)>),
}

impl Raw<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Bool(_) => "a boolean",
            Raw::Number(_) => "a number",
            Raw::String(_) => "a string",
            Raw::Array(_) => "an array",
            Raw::Object(_) => "an object",
        }
    }
}

/// A string as written, borrowed where it has no escapes: an object key.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Raw<'de>, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw<'de>, E> {
                Ok(Raw::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw<'de>, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw<'de>, E> {
                Ok(Raw::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw<'de>, E> {
                Ok(Raw::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw<'de>, E> {
                serde_json::Number::from_f64(v)
                    .map(Raw::Number)
                    .ok_or_else(|| E::custom("a number that is not finite"))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Raw<'de>, E> {
                Ok(Raw::String(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw<'de>, E> {
                Ok(Raw::String(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw<'de>, E> {
                Ok(Raw::String(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key_seed(Key)? {
                    entries.push((k, map.next_value()?));
                }
                Ok(Raw::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Looks up keys of one JSON object, refusing duplicates and unknown keys up front.
struct Obj<'a, 'de> {
    entries: &'a [(Cow<'de, str>, Raw<'de>)],
    path: Path<'a>,
}

impl<'a, 'de> Obj<'a, 'de> {
    fn new(
        entries: &'a [(Cow<'de, str>, Raw<'de>)],
        path: &'a Path<'a>,
        allowed: &[&str],
        what: &str,
    ) -> Result<Self, EventError> {
        for (i, (k, _)) in entries.iter().enumerate() {
            if !allowed.contains(&&**k) {
                let hint = closest(k, allowed)
                    .map(|c| format!(" (did you mean \"{c}\"?)"))
                    .unwrap_or_default();
                return Err(path.key(k).error(format!(
                    "unknown key \"{k}\" in {what}{hint}; accepted keys are {}",
                    allowed.join(", ")
                )));
            }
            if entries[..i].iter().any(|(seen, _)| seen == k) {
                return Err(path
                    .key(k)
                    .error(format!("\"{k}\" is given more than once; give it once")));
            }
        }
        Ok(Obj {
            entries,
            path: *path,
        })
    }

    /// The value under `key`, with JSON `null` treated as absent.
    fn get(&self, key: &str) -> Option<&'a Raw<'de>> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Raw::Null))
    }

    fn required(&self, key: &str) -> Result<&'a Raw<'de>, EventError> {
        self.get(key)
            .ok_or_else(|| self.path.key(key).error("is required".to_owned()))
    }
}

/// The accepted key nearest to a typo, if one is close enough to be a likely meaning.
pub fn closest<'a>(typo: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(typo, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn string(v: &Raw<'_>, path: &Path<'_>, max: usize) -> Result<String, EventError> {
    match v {
        Raw::String(s) => {
            let n = s.chars().count();
            if n > max {
                Err(path.error(format!(
                    "is {n} characters long; at most {max} are accepted"
                )))
            } else {
                Ok(String::from(&**s))
            }
        }
        other => Err(path.error(format!("expected a string, got {}", other.type_name()))),
    }
}

fn non_empty(v: &Raw<'_>, path: &Path<'_>, max: usize) -> Result<String, EventError> {
    let s = string(v, path, max)?;
    if s.trim().is_empty() {
        return Err(path.error("must not be empty".to_owned()));
    }
    Ok(s)
}

/// Label and field values: strings, or numbers and booleans (written as JSON writes them),
/// because senders routinely put `"port": 8080` in labels.
fn scalar(v: &Raw<'_>, path: &Path<'_>, max: usize) -> Result<String, EventError> {
    match v {
        Raw::Number(n) => Ok(n.to_string()),
        Raw::Bool(b) => Ok(b.to_string()),
        Raw::String(_) => string(v, path, max),
        other => Err(path.error(format!(
            "expected a string (or a number or boolean), got {}",
            other.type_name()
        ))),
    }
}

fn one_of<T: Copy>(
    v: &Raw<'_>,
    path: &Path<'_>,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, EventError> {
    let accepted = || all.iter().map(|t| name(*t)).collect::<Vec<_>>().join(", ");
    match v {
        Raw::String(s) => all
            .iter()
            .copied()
            .find(|t| name(*t).eq_ignore_ascii_case(s))
            .ok_or_else(|| path.error(format!("\"{s}\" is not one of {}", accepted()))),
        other => Err(path.error(format!(
            "expected a string, one of {}; got {}",
            accepted(),
            other.type_name()
        ))),
    }
}

fn event_from(entries: &[(Cow<'_, str>, Raw<'_>)], path: &Path<'_>) -> Result<Event, EventError> {
    let o = Obj::new(entries, path, &EVENT_KEYS, "an event")?;
    let title = non_empty(o.required("title")?, &path.key("title"), MAX_TITLE)?;
    let severity = one_of(
        o.required("severity")?,
        &path.key("severity"),
        &Severity::ALL,
        Severity::as_str,
    )?;
    let status = one_of(
        o.required("status")?,
        &path.key("status"),
        &Status::ALL,
        Status::as_str,
    )?;
    let source = non_empty(o.required("source")?, &path.key("source"), MAX_NAME)?;
    let text = o
        .get("text")
        .map(|v| string(v, &path.key("text"), MAX_TEXT))
        .transpose()?
        .unwrap_or_default();
    let kind = o
        .get("kind")
        .map(|v| one_of(v, &path.key("kind"), &Kind::ALL, Kind::as_str))
        .transpose()?
        .unwrap_or_default();
    let service = o
        .get("service")
        .map(|v| string(v, &path.key("service"), MAX_NAME))
        .transpose()?
        .unwrap_or_default();
    let environment = o
        .get("environment")
        .map(|v| string(v, &path.key("environment"), MAX_NAME))
        .transpose()?
        .unwrap_or_default();
    let labels = o
        .get("labels")
        .map(|v| labels_from(v, &path.key("labels")))
        .transpose()?
        .unwrap_or_default();
    let fields = o
        .get("fields")
        .map(|v| fields_from(v, &path.key("fields")))
        .transpose()?
        .unwrap_or_default();
    let links = o
        .get("links")
        .map(|v| links_from(v, &path.key("links")))
        .transpose()?
        .unwrap_or_default();
    let dedup_key = o
        .get("dedup_key")
        .map(|v| non_empty(v, &path.key("dedup_key"), MAX_DEDUP_KEY))
        .transpose()?;
    let occurred_at = o
        .get("occurred_at")
        .map(|v| timestamp(v, &path.key("occurred_at")))
        .transpose()?;

    Ok(Event {
        title,
        text,
        severity,
        status,
        kind,
        source,
        service,
        environment,
        labels,
        fields,
        links,
        dedup_key,
        occurred_at,
    })
}

fn labels_from(v: &Raw<'_>, path: &Path<'_>) -> Result<BTreeMap<String, String>, EventError> {
    let Raw::Object(entries) = v else {
        return Err(path.error(format!(
            "expected an object of string values like {{\"team\": \"payments\"}}, got {}",
            v.type_name()
        )));
    };
    if entries.len() > MAX_LABELS {
        return Err(path.error(format!(
            "has {} labels; at most {MAX_LABELS} are accepted",
            entries.len()
        )));
    }
    let mut labels = BTreeMap::new();
    for (k, v) in entries {
        let kp = path.key(k);
        if k.trim().is_empty() {
            return Err(path.error("a label key is empty; keys must be non-empty".to_owned()));
        }
        if k.chars().count() > MAX_LABEL_KEY {
            return Err(kp.error(format!("the key is longer than {MAX_LABEL_KEY} characters")));
        }
        let value = scalar(v, &kp, MAX_LABEL_VALUE)?;
        if labels.insert(String::from(&**k), value).is_some() {
            return Err(kp.error(format!("\"{k}\" is given more than once; give it once")));
        }
    }
    Ok(labels)
}

fn fields_from(v: &Raw<'_>, path: &Path<'_>) -> Result<Vec<Field>, EventError> {
    let count = match v {
        Raw::Object(e) => e.len(),
        Raw::Array(a) => a.len(),
        _ => 0,
    };
    if count > MAX_FIELDS {
        return Err(path.error(format!(
            "has {count} fields; at most {MAX_FIELDS} are accepted"
        )));
    }
    match v {
        Raw::Object(entries) => {
            let mut fields = Vec::with_capacity(entries.len());
            for (i, (k, v)) in entries.iter().enumerate() {
                let kp = path.key(k);
                if k.trim().is_empty() {
                    return Err(path.error("a field name is empty; names must be non-empty".to_owned()));
                }
                if k.chars().count() > MAX_FIELD_TITLE {
                    return Err(kp.error(format!(
                        "the name is longer than {MAX_FIELD_TITLE} characters"
                    )));
                }
                if entries[..i].iter().any(|(seen, _)| seen == k) {
                    return Err(kp.error(format!("\"{k}\" is given more than once; give it once")));
                }
                fields.push(Field {
                    title: String::from(&**k),
                    value: scalar(v, &kp, MAX_FIELD_VALUE)?,
                });
            }
            Ok(fields)
        }
        Raw::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let ip = path.index(i);
                let Raw::Object(entries) = item else {
                    return Err(ip.error(format!(
                        "expected an object {{\"title\": …, \"value\": …}}, got {}",
                        item.type_name()
                    )));
                };
                let o = Obj::new(entries, &ip, &["title", "value"], "a field")?;
                Ok(Field {
                    title: non_empty(o.required("title")?, &ip.key("title"), MAX_FIELD_TITLE)?,
                    value: scalar(o.required("value")?, &ip.key("value"), MAX_FIELD_VALUE)?,
                })
            })
            .collect(),
        other => Err(path.error(format!(
            "expected an object like {{\"Region\": \"eu-west-1\"}} or an array of {{\"title\": …, \"value\": …}}, got {}",
            other.type_name()
        ))),
    }
}

fn links_from(v: &Raw<'_>, path: &Path<'_>) -> Result<Vec<Link>, EventError> {
    let Raw::Array(items) = v else {
        return Err(path.error(format!(
            "expected an array of {{\"title\": …, \"url\": …}}, got {}",
            v.type_name()
        )));
    };
    if items.len() > MAX_LINKS {
        return Err(path.error(format!(
            "has {} links; at most {MAX_LINKS} are accepted",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let ip = path.index(i);
            let Raw::Object(entries) = item else {
                return Err(ip.error(format!(
                    "expected an object {{\"title\": …, \"url\": …}}, got {}",
                    item.type_name()
                )));
            };
            let o = Obj::new(entries, &ip, &["title", "url"], "a link")?;
            let url = link_url(o.required("url")?, &ip.key("url"))?;
            // A link without a title is still useful: show its address.
            let title = o
                .get("title")
                .map(|t| non_empty(t, &ip.key("title"), MAX_LINK_TITLE))
                .transpose()?
                .unwrap_or_else(|| url.clone());
            Ok(Link { title, url })
        })
        .collect()
}

fn link_url(v: &Raw<'_>, path: &Path<'_>) -> Result<String, EventError> {
    let s = string(v, path, MAX_URL)?;
    let parsed = url::Url::parse(&s).map_err(|e| {
        path.error(format!(
            "\"{s}\" is not a valid URL ({e}); give an absolute http:// or https:// URL"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(path.error(format!(
            "\"{s}\" is not an http(s) URL; only absolute http:// and https:// URLs are accepted"
        )));
    }
    // The normalised form percent-encodes spaces, `<` and `>`, which would otherwise
    // break out of a mrkdwn link.
    let normalised = parsed.to_string();
    if normalised.chars().count() > MAX_URL {
        return Err(path.error(format!("is longer than {MAX_URL} characters once encoded")));
    }
    Ok(normalised)
}

fn timestamp(v: &Raw<'_>, path: &Path<'_>) -> Result<OffsetDateTime, EventError> {
    match v {
        Raw::String(s) => OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            path.error(format!(
                "\"{s}\" is not an RFC 3339 timestamp; give one like \"2024-05-01T12:00:00Z\""
            ))
        }),
        other => Err(path.error(format!(
            "expected an RFC 3339 timestamp string like \"2024-05-01T12:00:00Z\", got {}",
            other.type_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "title": "DB down",
            "severity": "critical",
            "status": "firing",
            "source": "prometheus",
        })
    }

    fn parse(v: &serde_json::Value) -> Result<Vec<Event>, EventError> {
        parse_events(v.to_string().as_bytes())
    }

    #[test]
    fn minimal_event_gets_defaults() {
        let events = parse(&minimal()).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.title, "DB down");
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.status, Status::Firing);
        assert_eq!(e.kind, Kind::Alert);
        assert_eq!(e.text, "");
        assert_eq!(e.service, "");
        assert_eq!(e.environment, "");
        assert!(e.labels.is_empty() && e.fields.is_empty() && e.links.is_empty());
        assert_eq!(e.dedup_key, None);
        assert_eq!(e.occurred_at, None);
    }

    #[test]
    fn full_event_is_parsed() {
        let body = br#"{
            "title": "Deploy of checkout", "text": "v1.2.3", "severity": "OK", "status": "resolved",
            "kind": "deployment", "source": "github", "service": "checkout", "environment": "prod",
            "labels": {"team": "payments", "port": 8080, "canary": true},
            "fields": {"Zeta": "1", "Alpha": "2"},
            "links": [{"title": "Run", "url": "https://ci.example.com/run/1?x=<a>"}, {"url": "http://x.example"}],
            "dedup_key": "checkout-deploy", "occurred_at": "2024-05-01T12:00:00+02:00"
        }"#;
        let e = &parse_events(body).unwrap()[0];
        assert_eq!(e.severity, Severity::Ok);
        assert_eq!(e.kind, Kind::Deployment);
        assert_eq!(e.labels["port"], "8080");
        assert_eq!(e.labels["canary"], "true");
        // Object fields keep the order the sender wrote them in.
        assert_eq!(
            e.fields
                .iter()
                .map(|f| f.title.as_str())
                .collect::<Vec<_>>(),
            ["Zeta", "Alpha"]
        );
        assert_eq!(e.links[0].url, "https://ci.example.com/run/1?x=%3Ca%3E");
        assert_eq!(e.links[1].title, "http://x.example/");
        assert_eq!(e.dedup_key.as_deref(), Some("checkout-deploy"));
        assert_eq!(
            e.occurred_at.map(|t| t.unix_timestamp()),
            Some(1_714_557_600)
        );
    }

    #[test]
    fn fields_as_array_and_batch() {
        let mut a = minimal();
        a["fields"] =
            serde_json::json!([{"title": "Region", "value": "eu"}, {"title": "N", "value": 3}]);
        let b = minimal();
        let events = parse(&serde_json::json!([a, b])).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].fields,
            vec![
                Field {
                    title: "Region".into(),
                    value: "eu".into()
                },
                Field {
                    title: "N".into(),
                    value: "3".into()
                }
            ]
        );
    }

    /// (name, mutation of the minimal event, expected field, a fragment the message must contain)
    type Case = (
        &'static str,
        fn(&mut serde_json::Value),
        &'static str,
        &'static str,
    );

    #[test]
    fn invalid_events_are_refused_with_path_and_hint() {
        use serde_json::json;
        let cases: Vec<Case> = vec![
            ("missing title", |v| { v.as_object_mut().unwrap().remove("title"); }, "title", "is required"),
            ("missing severity", |v| { v.as_object_mut().unwrap().remove("severity"); }, "severity", "is required"),
            ("missing status", |v| { v.as_object_mut().unwrap().remove("status"); }, "status", "is required"),
            ("missing source", |v| { v.as_object_mut().unwrap().remove("source"); }, "source", "is required"),
            ("null title", |v| v["title"] = json!(null), "title", "is required"),
            ("empty title", |v| v["title"] = json!("  "), "title", "must not be empty"),
            ("title number", |v| v["title"] = json!(5), "title", "expected a string, got a number"),
            ("text array", |v| v["text"] = json!([]), "text", "expected a string, got an array"),
            ("source bool", |v| v["source"] = json!(true), "source", "expected a string, got a boolean"),
            ("service object", |v| v["service"] = json!({}), "service", "expected a string, got an object"),
            ("severity number", |v| v["severity"] = json!(1), "severity", "expected a string, one of critical, error, warning, info, ok"),
            ("bad severity", |v| v["severity"] = json!("urgent"), "severity", "\"urgent\" is not one of critical, error, warning, info, ok"),
            ("bad status", |v| v["status"] = json!("open"), "status", "\"open\" is not one of firing, resolved"),
            ("bad kind", |v| v["kind"] = json!("deploy"), "kind", "\"deploy\" is not one of alert, deployment, message"),
            ("title too long", |v| v["title"] = json!("x".repeat(1001)), "title", "is 1001 characters long; at most 1000"),
            ("text too long", |v| v["text"] = json!("x".repeat(40_001)), "text", "at most 40000"),
            ("labels array", |v| v["labels"] = json!(["a"]), "labels", "expected an object of string values"),
            ("label value object", |v| v["labels"] = json!({"team": {}}), "labels.team", "expected a string (or a number or boolean), got an object"),
            ("too many labels", |v| v["labels"] = serde_json::Value::Object((0..101).map(|i| (format!("k{i}"), json!("v"))).collect()), "labels", "at most 100"),
            ("fields string", |v| v["fields"] = json!("x"), "fields", "expected an object like"),
            ("field missing value", |v| v["fields"] = json!([{"title": "a"}]), "fields[0].value", "is required"),
            ("field unknown key", |v| v["fields"] = json!([{"title": "a", "value": "b", "short": true}]), "fields[0].short", "accepted keys are title, value"),
            ("links object", |v| v["links"] = json!({"a": "b"}), "links", "expected an array"),
            ("link not object", |v| v["links"] = json!(["https://x"]), "links[0]", "expected an object"),
            ("link missing url", |v| v["links"] = json!([{"title": "a"}]), "links[0].url", "is required"),
            ("link javascript url", |v| v["links"] = json!([{"title": "a", "url": "javascript:alert(1)"}]), "links[0].url", "only absolute http:// and https://"),
            ("link relative url", |v| v["links"] = json!([{"title": "a", "url": "/runs/1"}]), "links[0].url", "not a valid URL"),
            ("link ftp url", |v| v["links"] = json!([{"title": "a", "url": "ftp://x.example/f"}]), "links[0].url", "not an http(s) URL"),
            ("bad timestamp", |v| v["occurred_at"] = json!("yesterday"), "occurred_at", "not an RFC 3339 timestamp"),
            ("timestamp number", |v| v["occurred_at"] = json!(1714557600), "occurred_at", "expected an RFC 3339 timestamp string"),
            ("empty dedup key", |v| v["dedup_key"] = json!(""), "dedup_key", "must not be empty"),
            ("unknown key", |v| v["servce"] = json!("checkout"), "servce", "unknown key \"servce\" in an event (did you mean \"service\"?); accepted keys are title, text, severity"),
            ("unknown unrelated key", |v| v["zzzzzzzz"] = json!(1), "zzzzzzzz", "accepted keys are title, text, severity, status, kind, source, service, environment, labels, fields, links, dedup_key, occurred_at"),
        ];
        for (name, mutate, field, fragment) in cases {
            let mut v = minimal();
            mutate(&mut v);
            let e = parse(&v).expect_err(name);
            assert_eq!(e.field, field, "{name}: {e}");
            assert!(
                e.message.contains(fragment),
                "{name}: {:?} lacks {fragment:?}",
                e.message
            );
            // In a batch, the same problem is reported under the item's index.
            let batch = serde_json::json!([minimal(), minimal(), minimal(), v]);
            let e = parse(&batch).expect_err(name);
            assert_eq!(e.field, format!("[3].{field}"), "{name} in batch");
        }
    }

    #[test]
    fn body_level_errors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "the body is empty"),
            (b"[]", "the batch is empty"),
            (
                b"42",
                "expected an event object or an array of event objects, got a number",
            ),
            (b"[1]", "expected an event object, got a number"),
            (
                b"{\"title\": \"x\",\n  \"severity\": }",
                "not valid JSON: expected value at line 2 column 15",
            ),
            (
                b"{\"title\": \"a\", \"title\": \"b\"}",
                "\"title\" is given more than once",
            ),
            (b"[{\"title\": ", "line 1 column 11"),
        ];
        for (body, fragment) in cases {
            let e = parse_events(body).expect_err(fragment);
            assert!(
                e.message.contains(fragment),
                "{:?} lacks {fragment:?}",
                e.message
            );
        }
        let e = parse_events(b"[1]").unwrap_err();
        assert_eq!(e.field, "[0]");
    }

    #[test]
    fn batch_size_is_capped() {
        let ok = serde_json::Value::Array(vec![minimal(); MAX_BATCH]);
        assert_eq!(parse(&ok).unwrap().len(), MAX_BATCH);
        let too_many = serde_json::Value::Array(vec![minimal(); MAX_BATCH + 1]);
        let e = parse(&too_many).unwrap_err();
        assert!(e.message.contains("1001 events; at most 1000"), "{e}");
    }

    #[test]
    fn severity_orders_by_urgency() {
        assert!(Severity::Critical > Severity::Error);
        assert!(Severity::Info > Severity::Ok);
        assert_eq!(
            [Severity::Warning, Severity::Critical, Severity::Ok]
                .iter()
                .max(),
            Some(&Severity::Critical)
        );
    }

    #[test]
    fn event_round_trips_through_serde() {
        let e = &parse_events(
            br#"{"title":"t","severity":"warning","status":"firing","source":"s","occurred_at":"2024-05-01T12:00:00Z","labels":{"a":"b"}}"#,
        )
        .unwrap()[0];
        let json = serde_json::to_string(e).unwrap();
        assert!(json.contains("\"severity\":\"warning\""), "{json}");
        assert!(
            json.contains("\"occurred_at\":\"2024-05-01T12:00:00Z\""),
            "{json}"
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, e);
    }
}
