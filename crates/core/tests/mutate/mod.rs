//! Shared by the property tests of several crates (`#[path]`-included): strategies for
//! arbitrary JSON and for structure-preserving mutations of a valid document (a fixture), so
//! parsers are driven past their first "not JSON" check into the field-by-field code.
#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Strings that parsers tend to treat specially: empty, blank, numeric-looking, dates out of
/// range, URLs without a host, template syntax, control and wide characters, very long text.
pub const INTERESTING: &[&str] = &[
    "",
    " ",
    "\n\t",
    "0",
    "-1",
    "1e309",
    "NaN",
    "-0",
    "18446744073709551616",
    "true",
    "null",
    "[]",
    "{}",
    "firing",
    "resolved",
    "critical",
    "warning",
    "info",
    "success",
    "failure",
    "failed",
    "completed",
    "alerting",
    "ok",
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999Z",
    "+10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "2024-02-30T25:61:60Z",
    "2024-01-01T00:00:00+25:00",
    "2024-01-01 00:00:00 UTC",
    "http://",
    "https://",
    "https://example.com/a?b=c#d",
    "javascript:alert(1)",
    "ftp://example.com",
    "//example.com",
    "{{ event.title }}",
    "{% if %}",
    "}}{{",
    "<!channel>",
    "<@U123|x>",
    "&<>*_~`",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "é",
    "👍🏽",
    "𝔘𝔫𝔦",
    "a\u{301}\u{301}\u{301}",
];

fn long_string() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["a", "é", "👍", " ", "<", "&", "\n", "x y"]),
        1usize..6000,
    )
        .prop_map(|(s, n)| s.repeat(n))
}

/// Any string, biased towards the interesting ones.
pub fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,24}",
        3 => prop::sample::select(INTERESTING).prop_map(str::to_owned),
        1 => long_string(),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-3i64..3).prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop::sample::select(vec![
            0.5,
            -0.0,
            1e300,
            -1e300,
            1.7976931348623157e308,
            5e-324,
            1e19,
            9.223_372_036_854_776e18
        ])
        .prop_map(|f| json!(f)),
    ]
}

pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => number(),
        4 => any_string().prop_map(Value::String),
    ]
}

pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z_]{1,10}",
        1 => any_string(),
    ]
}

/// Arbitrary JSON, a few levels deep.
pub fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One edit of a JSON document, applied at a node chosen by `path` (each step picks a child,
/// modulo the number of children).
#[derive(Debug, Clone)]
pub enum Op {
    Replace(Value),
    Remove,
    Rename(String),
    Insert(String, Value),
    Duplicate,
    Stringify,
    Empty,
    Nest,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => value().prop_map(Op::Replace),
        3 => leaf().prop_map(Op::Replace),
        3 => Just(Op::Remove),
        1 => key().prop_map(Op::Rename),
        1 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        1 => Just(Op::Duplicate),
        2 => Just(Op::Stringify),
        2 => Just(Op::Empty),
        1 => Just(Op::Nest),
    ]
}

/// A list of (path, edit) pairs.
pub fn edits(max: usize) -> impl Strategy<Value = Vec<(Vec<usize>, Op)>> {
    prop::collection::vec((prop::collection::vec(any::<usize>(), 0..8), op()), 1..=max)
}

fn empty_like(v: &Value) -> Value {
    match v {
        Value::Null => json!(false),
        Value::Bool(_) => Value::Null,
        Value::Number(_) => json!(0),
        Value::String(_) => json!(""),
        Value::Array(_) => json!([]),
        Value::Object(_) => json!({}),
    }
}

/// Applies one edit to `doc`: walks down `path` while the node has children, then edits the
/// child that the last step picked (or the root, for an empty path).
pub fn apply(doc: &mut Value, path: &[usize], op: &Op) {
    let Some((&last, walk)) = path.split_last() else {
        edit_value(doc, op);
        return;
    };
    let mut node = doc;
    for &step in walk {
        let len = match &*node {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        };
        if len == 0 {
            break;
        }
        node = match node {
            Value::Array(a) => &mut a[step % len],
            Value::Object(o) => o.values_mut().nth(step % len).unwrap(),
            _ => unreachable!(),
        };
    }
    match node {
        Value::Array(a) if !a.is_empty() => {
            let i = last % a.len();
            match op {
                Op::Remove => {
                    a.remove(i);
                }
                Op::Duplicate | Op::Rename(_) => {
                    let v = a[i].clone();
                    a.push(v);
                }
                Op::Insert(_, v) => a.insert(i, v.clone()),
                _ => edit_value(&mut a[i], op),
            }
        }
        Value::Object(o) if !o.is_empty() => {
            let k = o.keys().nth(last % o.len()).unwrap().clone();
            match op {
                Op::Remove => {
                    o.remove(&k);
                }
                Op::Rename(new) => {
                    let v = o.remove(&k).unwrap();
                    o.insert(new.clone(), v);
                }
                Op::Duplicate => {
                    let v = o[&k].clone();
                    o.insert(format!("{k}_"), v);
                }
                Op::Insert(nk, v) => {
                    o.insert(nk.clone(), v.clone());
                }
                _ => edit_value(o.get_mut(&k).unwrap(), op),
            }
        }
        other => edit_value(other, op),
    }
}

fn edit_value(v: &mut Value, op: &Op) {
    match op {
        Op::Replace(new) => *v = new.clone(),
        Op::Remove | Op::Empty => *v = empty_like(v),
        Op::Stringify => {
            let new = match &*v {
                Value::String(s) => s.parse::<f64>().map(|f| json!(f)).unwrap_or(json!([s])),
                other => Value::String(other.to_string()),
            };
            *v = new;
        }
        Op::Nest | Op::Duplicate | Op::Rename(_) => *v = json!([v.clone()]),
        Op::Insert(k, new) => match v {
            Value::Object(o) => {
                o.insert(k.clone(), new.clone());
            }
            Value::Array(a) => a.push(new.clone()),
            other => *other = json!({ k.clone(): new.clone() }),
        },
    }
}

/// `seed` with the edits applied.
pub fn mutated(seed: &Value, edits: &[(Vec<usize>, Op)]) -> Value {
    let mut doc = seed.clone();
    for (path, op) in edits {
        apply(&mut doc, path, op);
    }
    doc
}

/// Byte-level damage to a serialized document: truncation, flipped bytes, inserted bytes.
pub fn byte_edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), 0u8..3, any::<u8>()), 1..6)
}

pub fn damage(bytes: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for &(at, kind, byte) in edits {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let i = at % b.len();
        match kind {
            0 => b.truncate(i),
            1 => b[i] = byte,
            _ => b.insert(i, byte),
        }
    }
    b
}

fn sometimes_valid(valid: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::sample::select(valid).prop_map(|s| json!(s)),
        1 => leaf(),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => any_string(),
        1 => (1usize..=max + 2).prop_map(|n| "é".repeat(n)),
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "https?://[a-z]{1,10}\\.example/[a-z0-9/?=&%#]{0,30}",
        1 => any_string(),
        1 => (0usize..3100).prop_map(|n| format!("https://example.com/{}", "a".repeat(n))),
    ]
}

/// A native-API event object: mostly valid values, sometimes wrong ones, optional keys
/// present or not, sometimes an unknown key.
pub fn event_json() -> impl Strategy<Value = Value> {
    let labels = prop::collection::btree_map(key(), text(1000), 0..6);
    let fields = prop::collection::vec((text(200), text(2000)), 0..6);
    let links = prop::collection::vec((text(200), url()), 0..4);
    (
        (
            text(1000),
            prop::option::of(text(40_000)),
            sometimes_valid(&["critical", "error", "warning", "info", "ok"]),
            sometimes_valid(&["firing", "resolved"]),
            prop::option::of(sometimes_valid(&["alert", "deployment", "message"])),
            text(200),
        ),
        (
            prop::option::of(text(200)),
            prop::option::of(text(200)),
            prop::option::of(labels),
            prop::option::of(fields),
            prop::option::of(links),
            prop::option::of(text(500)),
            prop::option::of(prop_oneof![
                "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?(Z|[+-][0-2][0-9]:[0-5][0-9])",
                any_string(),
            ]),
            prop::option::of((key(), leaf())),
        ),
    )
        .prop_map(
            |((title, text, severity, status, kind, source), (service, env, labels, fields, links, dedup, at, extra))| {
                let mut o = Map::new();
                o.insert("title".into(), json!(title));
                o.insert("severity".into(), severity);
                o.insert("status".into(), status);
                o.insert("source".into(), json!(source));
                let opt = |o: &mut Map<String, Value>, k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        o.insert(k.into(), v);
                    }
                };
                opt(&mut o, "text", text.map(Value::String));
                opt(&mut o, "kind", kind);
                opt(&mut o, "service", service.map(Value::String));
                opt(&mut o, "environment", env.map(Value::String));
                opt(&mut o, "labels", labels.map(|l| json!(l)));
                opt(
                    &mut o,
                    "fields",
                    fields.map(|f| f.into_iter().map(|(t, v)| json!({"title": t, "value": v})).collect()),
                );
                opt(
                    &mut o,
                    "links",
                    links.map(|l| l.into_iter().map(|(t, u)| json!({"title": t, "url": u})).collect()),
                );
                opt(&mut o, "dedup_key", dedup.map(Value::String));
                opt(&mut o, "occurred_at", at.map(Value::String));
                if let Some((k, v)) = extra {
                    o.insert(k, v);
                }
                Value::Object(o)
            },
        )
}

/// A valid event with every key set, to mutate.
pub fn full_event() -> Value {
    json!({
        "title": "checkout: DB down",
        "text": "p99 latency *above* 2s <!channel> & friends",
        "severity": "critical",
        "status": "firing",
        "kind": "alert",
        "source": "prometheus",
        "service": "checkout",
        "environment": "prod",
        "labels": {"team": "payments", "region": "eu-west-1"},
        "fields": [{"title": "Runbook", "value": "step 1"}],
        "links": [{"title": "Dashboard", "url": "https://grafana.example/d/1"}],
        "dedup_key": "checkout-db",
        "occurred_at": "2024-05-01T10:42:00Z"
    })
}
