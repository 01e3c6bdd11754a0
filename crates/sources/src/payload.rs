//! Reading a webhook's JSON by path: [`At`] is a position in the body that knows its JSON
//! path (`alerts[2].labels`), so every type error names where it happened and what was
//! expected.
//!
//! Adapters read only the keys they use, so fields a sender adds (enterprise editions, newer
//! versions) are ignored. JSON `null` counts as absent everywhere, because the senders write
//! `null` for "not set" as freely as they leave keys out.

use std::collections::BTreeMap;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::SourceError;

/// Parses the body, answering a body that is not JSON with a `BadPayload` for the whole body.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, SourceError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SourceError::bad(
            "",
            "the body is empty; expected a JSON object",
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| SourceError::bad("", format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(SourceError::bad(
            "",
            format!("expected a JSON object, got {}", type_name(&value)),
        ));
    }
    Ok(value)
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A position in the body: the value there (if any) and its path.
#[derive(Clone, Debug)]
pub(crate) struct At<'a> {
    value: Option<&'a Value>,
    path: String,
    /// Set when an ancestor exists but is not an object or array, so reading below it is a
    /// type error at that ancestor rather than a confusing "missing" further down.
    broken: Option<(String, &'static str)>,
}

impl<'a> At<'a> {
    pub(crate) fn root(value: &'a Value) -> Self {
        At {
            value: Some(value),
            path: String::new(),
            broken: None,
        }
    }

    pub(crate) fn bad(&self, message: impl Into<String>) -> SourceError {
        SourceError::bad(self.path.clone(), message)
    }

    fn present(&self) -> Result<Option<&'a Value>, SourceError> {
        if let Some((path, got)) = &self.broken {
            return Err(SourceError::bad(
                path.clone(),
                format!("expected an object, got {got}"),
            ));
        }
        Ok(self.value.filter(|v| !v.is_null()))
    }

    fn child(&self, path: String, pick: impl FnOnce(&'a Value) -> Option<&'a Value>) -> At<'a> {
        let broken = self.broken.clone().or_else(|| match self.value {
            Some(v) if !v.is_null() && !v.is_object() && !v.is_array() => {
                Some((self.path.clone(), type_name(v)))
            }
            _ => None,
        });
        At {
            value: self.value.and_then(pick),
            path,
            broken,
        }
    }

    /// The value under `key` (absent if this is not an object or lacks the key).
    pub(crate) fn get(&self, key: &str) -> At<'a> {
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        self.child(path, |v| v.get(key))
    }

    fn index(&self, i: usize) -> At<'a> {
        self.child(format!("{}[{i}]", self.path), |v| v.get(i))
    }

    /// The JSON here, `None` when absent, for the rare value an adapter formats itself.
    pub(crate) fn raw(&self) -> Result<Option<&'a Value>, SourceError> {
        self.present()
    }

    /// True when the key is missing or `null`.
    pub(crate) fn is_absent(&self) -> bool {
        self.value.is_none_or(Value::is_null)
    }

    /// A string, or `None` when absent. Any other type is an error.
    pub(crate) fn str_opt(&self) -> Result<Option<&'a str>, SourceError> {
        match self.present()? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.bad(format!("expected a string, got {}", type_name(other)))),
        }
    }

    /// A string that is present and not blank.
    pub(crate) fn str_req(&self) -> Result<&'a str, SourceError> {
        match self.str_opt()? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(self.bad("must not be empty")),
            None => Err(self.bad("is required (a string)")),
        }
    }

    /// A non-blank string, or `None` when absent or blank (senders write `""` for "unset").
    pub(crate) fn text(&self) -> Result<Option<&'a str>, SourceError> {
        Ok(self.str_opt()?.filter(|s| !s.trim().is_empty()))
    }

    /// An id that senders write as a number or a string (`"id": 42`), as text.
    pub(crate) fn id_opt(&self) -> Result<Option<String>, SourceError> {
        match self.present()? {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.bad(format!(
                "expected a number or a string, got {}",
                type_name(other)
            ))),
        }
    }

    /// A number, or `None` when absent.
    pub(crate) fn f64_opt(&self) -> Result<Option<f64>, SourceError> {
        match self.present()? {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(self.bad(format!("expected a number, got {}", type_name(other)))),
        }
    }

    /// The elements of a required array.
    pub(crate) fn items(&self) -> Result<Vec<At<'a>>, SourceError> {
        match self.present()? {
            Some(Value::Array(a)) => Ok((0..a.len()).map(|i| self.index(i)).collect()),
            Some(other) => Err(self.bad(format!("expected an array, got {}", type_name(other)))),
            None => Err(self.bad("is required (an array)")),
        }
    }

    /// The elements of an optional array (empty when absent).
    pub(crate) fn items_opt(&self) -> Result<Vec<At<'a>>, SourceError> {
        if self.present()?.is_none() {
            return Ok(Vec::new());
        }
        self.items()
    }

    /// Requires an object here (present, of the right type); `what` names it in the error.
    pub(crate) fn require_object(&self, what: &str) -> Result<(), SourceError> {
        match self.present()? {
            Some(Value::Object(_)) => Ok(()),
            Some(other) => Err(self.bad(format!(
                "expected {what} (an object), got {}",
                type_name(other)
            ))),
            None => Err(self.bad(format!("is required ({what}, an object)"))),
        }
    }

    /// An object of scalar values (labels, annotations) as strings; empty when absent.
    /// Numbers and booleans are written as JSON writes them; nested values are an error.
    pub(crate) fn str_map(&self) -> Result<BTreeMap<String, String>, SourceError> {
        match self.present()? {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            return Err(self
                                .get(k)
                                .bad(format!("expected a string, got {}", type_name(other))))
                        }
                    };
                    Ok((k.clone(), value))
                })
                .collect(),
            Some(other) => Err(self.bad(format!(
                "expected an object of strings like {{\"alertname\": \"HighLatency\"}}, got {}",
                type_name(other)
            ))),
        }
    }

    /// A timestamp, or `None` when absent, blank or Go's zero time (`0001-01-01T00:00:00Z`,
    /// which Alertmanager and Grafana send for "not ended"). Accepts RFC 3339 and the two
    /// forms GitLab writes (`2024-05-01 12:00:00 UTC`, `2024-05-01 14:00:00 +0200`).
    pub(crate) fn time_opt(&self) -> Result<Option<OffsetDateTime>, SourceError> {
        let Some(s) = self.text()? else {
            return Ok(None);
        };
        let t = parse_time(s).ok_or_else(|| {
            self.bad(format!(
                "\"{s}\" is not a timestamp; expected RFC 3339 like \"2024-05-01T12:00:00Z\""
            ))
        })?;
        Ok((t.year() > 1).then_some(t))
    }
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    if let Some(naive) = s.strip_suffix(" UTC") {
        let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        return PrimitiveDateTime::parse(naive, f)
            .ok()
            .map(PrimitiveDateTime::assume_utc);
    }
    let f = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(s, f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_where_a_type_is_wrong() {
        let v = json!({"alerts": [{"labels": {"a": "b"}}, {"labels": "x"}], "repo": "r"});
        let root = At::root(&v);
        let alerts = root.get("alerts").items().unwrap();
        assert_eq!(alerts[0].get("labels").str_map().unwrap()["a"], "b");
        let e = alerts[1].get("labels").str_map().unwrap_err();
        assert_eq!(
            e,
            SourceError::bad(
                "alerts[1].labels",
                "expected an object of strings like {\"alertname\": \"HighLatency\"}, got a string"
            )
        );
        // Reading below a scalar blames the scalar, not the missing child.
        let e = root.get("repo").get("full_name").str_opt().unwrap_err();
        assert_eq!(
            e,
            SourceError::bad("repo", "expected an object, got a string")
        );
        let e = root.get("missing").items().unwrap_err();
        assert_eq!(e, SourceError::bad("missing", "is required (an array)"));
        let nested = json!({"l": {"k": {"deep": 1}}});
        let e = At::root(&nested).get("l").str_map().unwrap_err();
        assert_eq!(
            e,
            SourceError::bad("l.k", "expected a string, got an object")
        );
    }

    #[test]
    fn timestamps_in_every_form_the_senders_use() {
        let cases = [
            ("2024-05-01T12:00:00Z", Some(1_714_564_800)),
            ("2024-05-01T14:00:00.123456789+02:00", Some(1_714_564_800)),
            ("2024-05-01 12:00:00 UTC", Some(1_714_564_800)),
            ("2024-05-01 14:00:00 +0200", Some(1_714_564_800)),
            ("0001-01-01T00:00:00Z", None),
            ("", None),
        ];
        for (s, want) in cases {
            let v = json!({ "t": s });
            let got = At::root(&v).get("t").time_opt().unwrap();
            assert_eq!(got.map(|t| t.unix_timestamp()), want, "{s}");
        }
        let v = json!({"t": "yesterday"});
        let e = At::root(&v).get("t").time_opt().unwrap_err();
        assert!(matches!(e, SourceError::BadPayload { ref field, .. } if field == "t"));
    }

    #[test]
    fn bodies_that_are_not_objects() {
        for (body, fragment) in [
            (&b""[..], "the body is empty"),
            (b"  \n", "the body is empty"),
            (b"{\"a\":", "not valid JSON"),
            (b"[1]", "expected a JSON object, got an array"),
        ] {
            let e = parse_json(body).unwrap_err();
            assert!(e.to_string().contains(fragment), "{e}");
        }
    }
}
