//! NUL characters in outside text. JSON can carry one (`\u0000`), serde accepts it, SQLite stores it, and
//! PostgreSQL refuses it in `text` and `jsonb` alike. Whatever the backend, such input is refused before anything
//! is stored, naming the field, so it is a 400 that a client can fix rather than an error that a retry repeats.

use serde_json::Value;

/// What a request with a NUL character is told.
pub const NUL_MESSAGE: &str =
    "contains a NUL character (\\u0000), which no text may hold; remove or replace it";

/// The path of the first string or object key in `value` that holds a NUL character (`title`, `labels.team`,
/// `blocks[2].text.text`), or `None` when there is none. A key holding one is named by its parent's path plus
/// the key as written.
pub fn nul_path(value: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut String) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(k, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.replace('\0', "\\u0000"));
                let found = k.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then_some(path)
}

/// Like [`nul_path`] for a raw JSON body, without parsing it unless it may hold one: in JSON a NUL can only be
/// written as the escape `\u0000` (a raw NUL byte inside a string is invalid JSON). A body that does not parse
/// is left to the caller's own parser, which names its error.
pub fn nul_path_in_json(body: &[u8]) -> Option<String> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !body.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    nul_path(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_nul_is_named_by_its_path() {
        let cases = [
            (json!({"title": "ok"}), None),
            (json!({"title": "a\u{0}b"}), Some("title")),
            (
                json!({"labels": {"team": "x", "svc": "\u{0}"}}),
                Some("labels.svc"),
            ),
            (
                json!([{"title": "ok"}, {"fields": [{"value": "x"}, {"value": "\u{0}"}]}]),
                Some("[1].fields[1].value"),
            ),
            (json!({"labels": {"a\u{0}": "x"}}), Some("labels.a\\u0000")),
            (
                json!({"n": 0, "b": false, "z": null, "t": "\\u0000 written out"}),
                None,
            ),
        ];
        for (value, want) in cases {
            assert_eq!(nul_path(&value).as_deref(), want, "{value}");
        }
    }

    #[test]
    fn a_raw_body_is_parsed_only_when_it_may_hold_a_nul() {
        assert_eq!(
            nul_path_in_json(br#"{"text": "a\u0000b"}"#).as_deref(),
            Some("text")
        );
        assert_eq!(nul_path_in_json(br#"{"text": "plain"}"#), None);
        // An escaped backslash followed by "u0000" is text, not a NUL.
        assert_eq!(nul_path_in_json(br#"{"text": "a\\u0000b"}"#), None);
        // Not JSON: the caller's parser reports that.
        assert_eq!(nul_path_in_json(b"\\u0000 {"), None);
    }
}
