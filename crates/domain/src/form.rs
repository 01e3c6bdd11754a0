//! `[[form]]` modals, the pure side: a form as configured ([`Form`], its [`Input`]s), the modal Slack is asked to
//! open ([`view`]), the server-side check of a submission ([`validate`]: required fields, numbers and their range,
//! choices among the configured options, dates) and the options an external select shows for what was typed
//! ([`filter_options`]). No IO: the handler reads the submission into [`Submitted`] values and carries out what
//! these return.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sluice_slack_wire::limits;

/// The `callback_id` of every form's modal starts with this, then the form's name.
pub const CALLBACK_PREFIX: &str = "sluice_form:";
/// The `action_id` of a button that opens a form starts with this, then the form's name.
pub const OPEN_PREFIX: &str = "sluice_form_open:";
/// The `action_id` of an external select starts with this, then `<form>:<input>`.
pub const OPTIONS_PREFIX: &str = "sluice_form_opt:";

/// What an input asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// One line of text.
    Text,
    /// Several lines.
    Multiline,
    /// A number, whole unless `decimal`, within `min..=max` when given.
    Number {
        min: Option<f64>,
        max: Option<f64>,
        decimal: bool,
    },
    /// One of these values.
    Select(Vec<String>),
    /// One value among what an HTTP endpoint offers for what was typed (loaded through `/slack/options`).
    External { min_query_length: u32 },
    /// `YYYY-MM-DD`.
    Date,
    /// A Slack user.
    User,
    /// Any of these values.
    Checkboxes(Vec<String>),
}

/// One input of a form.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Its name: the block id, and `form.<name>` in the action's templates.
    pub name: String,
    pub label: String,
    pub kind: Kind,
    pub required: bool,
    pub placeholder: Option<String>,
    /// The initial value (for checkboxes: the values checked, comma-separated).
    pub initial: Option<String>,
}

/// A form as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub name: String,
    pub title: String,
    pub submit: String,
    pub inputs: Vec<Input>,
}

/// What a submission holds for one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Nothing entered or chosen.
    Nothing,
    /// A text, a number as typed, the value of a chosen option, a date, a user id.
    One(String),
    /// The values of the checked boxes.
    Many(Vec<String>),
}

fn plain(text: &str, max: usize) -> Value {
    json!({"type": "plain_text", "text": sluice_slack_wire::blocks::truncate(text, max)})
}

fn option(v: &str) -> Value {
    json!({"text": plain(v, limits::OPTION_TEXT), "value": v})
}

/// Why a value is not one a form can start with: `None` when it is fine. Config checks use it.
pub fn initial_problem(kind: &Kind, initial: &str) -> Option<String> {
    match kind {
        Kind::Text | Kind::Multiline | Kind::External { .. } => None,
        Kind::Number { .. } => number(kind, initial).err(),
        Kind::Select(options) => (!options.iter().any(|o| o == initial))
            .then(|| format!("{initial:?} is not one of its options")),
        Kind::Checkboxes(options) => initial
            .split(',')
            .map(str::trim)
            .find(|v| !options.iter().any(|o| o == v))
            .map(|v| format!("{v:?} is not one of its options")),
        Kind::Date => date(initial).err(),
        Kind::User => (!initial.starts_with('U') && !initial.starts_with('W'))
            .then(|| format!("{initial:?} is not a Slack user id")),
    }
}

/// The element of one input.
fn element(form: &str, i: &Input) -> Value {
    let mut e = match &i.kind {
        Kind::Text => json!({"type": "plain_text_input"}),
        Kind::Multiline => json!({"type": "plain_text_input", "multiline": true}),
        Kind::Number { min, max, decimal } => {
            let mut e = json!({"type": "number_input", "is_decimal_allowed": decimal});
            if let Some(m) = min {
                e["min_value"] = json!(m.to_string());
            }
            if let Some(m) = max {
                e["max_value"] = json!(m.to_string());
            }
            e
        }
        Kind::Select(options) => json!({"type": "static_select",
            "options": options.iter().take(limits::SELECT_OPTIONS).map(|o| option(o)).collect::<Vec<_>>()}),
        Kind::External { min_query_length } => json!({"type": "external_select",
            "min_query_length": min_query_length}),
        Kind::Date => json!({"type": "datepicker"}),
        Kind::User => json!({"type": "users_select"}),
        Kind::Checkboxes(options) => json!({"type": "checkboxes",
            "options": options.iter().take(limits::CHECKBOX_OPTIONS).map(|o| option(o)).collect::<Vec<_>>()}),
    };
    e["action_id"] = json!(match i.kind {
        Kind::External { .. } => format!("{OPTIONS_PREFIX}{form}:{}", i.name),
        _ => i.name.clone(),
    });
    if let Some(p) = &i.placeholder {
        if !matches!(i.kind, Kind::Checkboxes(_)) {
            e["placeholder"] = plain(p, limits::PLACEHOLDER_TEXT);
        }
    }
    if let Some(v) = &i.initial {
        match &i.kind {
            Kind::Text | Kind::Multiline | Kind::Number { .. } => e["initial_value"] = json!(v),
            Kind::Select(_) => e["initial_option"] = option(v),
            Kind::External { .. } => e["initial_option"] = option(v),
            Kind::Date => e["initial_date"] = json!(v),
            Kind::User => e["initial_user"] = json!(v),
            Kind::Checkboxes(_) => {
                e["initial_options"] = json!(v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(option)
                    .collect::<Vec<_>>())
            }
        }
    }
    e
}

/// The modal that opens `form`; `metadata` (where it was opened, by whom) comes back with the submission.
pub fn view(form: &Form, metadata: &str) -> Value {
    let blocks: Vec<Value> = form
        .inputs
        .iter()
        .take(limits::VIEW_BLOCKS)
        .map(|i| {
            json!({
                "type": "input",
                "block_id": i.name,
                "optional": !i.required,
                "label": plain(&i.label, limits::INPUT_LABEL),
                "element": element(&form.name, i),
            })
        })
        .collect();
    json!({
        "type": "modal",
        "callback_id": format!("{CALLBACK_PREFIX}{}", form.name),
        "title": plain(&form.title, limits::VIEW_TITLE),
        "submit": plain(&form.submit, limits::VIEW_TITLE),
        "close": plain("Cancel", limits::VIEW_TITLE),
        "private_metadata": metadata,
        "blocks": blocks,
    })
}

fn number(kind: &Kind, text: &str) -> Result<Value, String> {
    let Kind::Number { min, max, decimal } = kind else {
        return Err("not a number input".into());
    };
    let t = text.trim();
    let n: f64 = t
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("{t:?} is not a number"))?;
    if !decimal && n.fract() != 0.0 {
        return Err(format!("{t} is not a whole number"));
    }
    match (min, max) {
        (Some(lo), Some(hi)) if n < *lo || n > *hi => {
            return Err(format!("must be between {lo} and {hi}"))
        }
        (Some(lo), None) if n < *lo => return Err(format!("must be at least {lo}")),
        (None, Some(hi)) if n > *hi => return Err(format!("must be at most {hi}")),
        _ => {}
    }
    Ok(if *decimal { json!(n) } else { json!(n as i64) })
}

fn date(text: &str) -> Result<Value, String> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|_| json!(text.trim()))
        .map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD)"))
}

/// Checks a submission of `form` server-side (Slack's own checks can be bypassed): `Ok` with the values the
/// action's templates see as `form.<name>` (numbers as numbers, checkboxes as a list, an optional input left empty
/// as `null`), or the message to show under each input that is wrong (by block id, which is the input's name).
pub fn validate(
    form: &Form,
    get: impl Fn(&str) -> Submitted,
) -> Result<Map<String, Value>, BTreeMap<String, String>> {
    let mut values = Map::new();
    let mut errors = BTreeMap::new();
    for i in &form.inputs {
        let got = match get(&i.name) {
            Submitted::One(s) if s.trim().is_empty() => Submitted::Nothing,
            Submitted::Many(v) if v.is_empty() => Submitted::Nothing,
            other => other,
        };
        let checked = match (&got, &i.kind) {
            (Submitted::Nothing, _) if i.required => Err("This field is required.".to_string()),
            (Submitted::Nothing, Kind::Checkboxes(_)) => Ok(json!([])),
            (Submitted::Nothing, _) => Ok(Value::Null),
            (Submitted::One(s), Kind::Number { .. }) => number(&i.kind, s),
            (Submitted::One(s), Kind::Date) => date(s),
            (Submitted::One(s), Kind::Select(options)) => {
                if options.contains(s) {
                    Ok(json!(s))
                } else {
                    Err(format!("{s:?} is not one of the choices."))
                }
            }
            (Submitted::Many(v), Kind::Checkboxes(options)) => {
                match v.iter().find(|x| !options.contains(x)) {
                    Some(x) => Err(format!("{x:?} is not one of the choices.")),
                    None => Ok(json!(v)),
                }
            }
            (Submitted::Many(_), _) => Err("Choose one value.".to_string()),
            (Submitted::One(s), Kind::Checkboxes(options)) => {
                if options.contains(s) {
                    Ok(json!([s]))
                } else {
                    Err(format!("{s:?} is not one of the choices."))
                }
            }
            (Submitted::One(s), _) => Ok(json!(s.trim())),
        };
        match checked {
            Ok(v) => {
                values.insert(i.name.clone(), v);
            }
            Err(e) => {
                errors.insert(i.name.clone(), e);
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// The options an endpoint answered (`{"options": [...]}` or a bare list; each a string or `{text, value}`),
/// narrowed to those whose text or value contains `typed` (case-insensitively), at most Slack's 100, each cut to
/// Slack's limits. Anything else in the answer is ignored.
pub fn filter_options(answer: &Value, typed: &str) -> Vec<(String, String)> {
    let list = match answer {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => o
            .get("options")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
        _ => &[],
    };
    let typed = typed.trim().to_lowercase();
    list.iter()
        .filter_map(|o| match o {
            Value::String(s) => Some((s.clone(), s.clone())),
            Value::Object(m) => {
                let value = m.get("value").and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })?;
                let text = match m.get("text") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Object(t)) => t
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or(&value)
                        .to_string(),
                    _ => value.clone(),
                };
                Some((text, value))
            }
            _ => None,
        })
        .filter(|(text, value)| {
            !value.is_empty()
                && value.len() <= limits::OPTION_VALUE
                && (typed.is_empty()
                    || text.to_lowercase().contains(&typed)
                    || value.to_lowercase().contains(&typed))
        })
        .map(|(text, value)| {
            (
                sluice_slack_wire::blocks::truncate(&text, limits::OPTION_TEXT),
                value,
            )
        })
        .take(limits::SELECT_OPTIONS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, kind: Kind, required: bool) -> Input {
        Input {
            name: name.into(),
            label: name.into(),
            kind,
            required,
            placeholder: None,
            initial: None,
        }
    }

    fn form() -> Form {
        Form {
            name: "deploy".into(),
            title: "Deploy".into(),
            submit: "Deploy".into(),
            inputs: vec![
                input("service", Kind::Text, true),
                input(
                    "replicas",
                    Kind::Number {
                        min: Some(1.0),
                        max: Some(10.0),
                        decimal: false,
                    },
                    false,
                ),
                input(
                    "env",
                    Kind::Select(vec!["staging".into(), "production".into()]),
                    true,
                ),
                input("when", Kind::Date, false),
                input(
                    "flags",
                    Kind::Checkboxes(vec!["canary".into(), "dry-run".into()]),
                    false,
                ),
            ],
        }
    }

    fn one(s: &str) -> Submitted {
        Submitted::One(s.into())
    }

    #[test]
    fn submissions_are_checked_field_by_field() {
        let f = form();
        // (service, replicas, env, when, flags) → the errors by field, or none.
        type Row<'a> = (Vec<(&'a str, Submitted)>, Vec<(&'a str, &'a str)>);
        let table: Vec<Row> = vec![
            (vec![("env", one("staging"))], vec![("service", "required")]),
            (
                vec![("service", one("   ")), ("env", one("staging"))],
                vec![("service", "required")],
            ),
            (
                vec![
                    ("service", one("checkout")),
                    ("env", one("staging")),
                    ("replicas", one("11")),
                ],
                vec![("replicas", "between 1 and 10")],
            ),
            (
                vec![
                    ("service", one("checkout")),
                    ("env", one("staging")),
                    ("replicas", one("2.5")),
                ],
                vec![("replicas", "not a whole number")],
            ),
            (
                vec![
                    ("service", one("checkout")),
                    ("env", one("staging")),
                    ("replicas", one("x")),
                ],
                vec![("replicas", "not a number")],
            ),
            (
                vec![("service", one("checkout")), ("env", one("qa"))],
                vec![("env", "not one of the choices")],
            ),
            (
                vec![
                    ("service", one("checkout")),
                    ("env", one("staging")),
                    ("when", one("2026-02-30")),
                ],
                vec![("when", "not a date")],
            ),
            (
                vec![
                    ("service", one("checkout")),
                    ("env", one("staging")),
                    ("flags", Submitted::Many(vec!["evil".into()])),
                ],
                vec![("flags", "not one of the choices")],
            ),
            (
                vec![("service", one("checkout")), ("env", one("staging"))],
                vec![],
            ),
        ];
        for (given, want) in table {
            let got = validate(&f, |name| {
                given
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Submitted::Nothing)
            });
            match (got, want.is_empty()) {
                (Ok(_), true) => {}
                (Err(errors), false) => {
                    assert_eq!(errors.len(), want.len(), "{given:?}: {errors:?}");
                    for (field, says) in &want {
                        assert!(
                            errors.get(*field).is_some_and(|e| e.contains(says)),
                            "{given:?}: {errors:?}"
                        );
                    }
                }
                (got, _) => panic!("{given:?}: {got:?}, wanted errors {want:?}"),
            }
        }
    }

    #[test]
    fn valid_values_are_typed_for_the_templates() {
        let v = validate(&form(), |name| match name {
            "service" => one(" checkout "),
            "replicas" => one("3"),
            "env" => one("production"),
            "flags" => Submitted::Many(vec!["canary".into()]),
            _ => Submitted::Nothing,
        })
        .unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"service": "checkout", "replicas": 3, "env": "production", "when": null, "flags": ["canary"]})
        );
    }

    #[test]
    fn the_modal_has_one_input_block_per_input() {
        let mut f = form();
        f.inputs.push(input(
            "team",
            Kind::External {
                min_query_length: 0,
            },
            true,
        ));
        f.inputs[0].initial = Some("checkout".into());
        let v = view(&f, "{\"c\":\"C1\"}");
        assert_eq!(v["callback_id"], "sluice_form:deploy");
        assert_eq!(v["private_metadata"], "{\"c\":\"C1\"}");
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 6);
        assert_eq!(blocks[0]["block_id"], "service");
        assert_eq!(blocks[0]["optional"], false);
        assert_eq!(blocks[0]["element"]["initial_value"], "checkout");
        assert_eq!(blocks[1]["element"]["type"], "number_input");
        assert_eq!(blocks[1]["element"]["min_value"], "1");
        assert_eq!(blocks[5]["element"]["type"], "external_select");
        assert_eq!(
            blocks[5]["element"]["action_id"],
            "sluice_form_opt:deploy:team"
        );
    }

    #[test]
    fn options_are_narrowed_to_what_was_typed() {
        let answer = json!({"options": ["payments", {"text": "Checkout team", "value": "checkout"},
                                         {"value": 7}, {"text": "no value"}, 3]});
        assert_eq!(
            filter_options(&answer, "CHECK"),
            vec![("Checkout team".into(), "checkout".into())]
        );
        assert_eq!(filter_options(&answer, "").len(), 3);
        assert_eq!(
            filter_options(&json!(["a", "b"]), "b"),
            vec![("b".into(), "b".into())]
        );
        assert!(filter_options(&json!("nope"), "").is_empty());
        let many: Vec<String> = (0..300).map(|i| format!("s{i}")).collect();
        assert_eq!(filter_options(&json!(many), "").len(), 100);
    }

    #[test]
    fn initial_values_must_fit_their_input() {
        let num = Kind::Number {
            min: Some(1.0),
            max: Some(3.0),
            decimal: false,
        };
        assert!(initial_problem(&num, "2").is_none());
        assert!(initial_problem(&num, "9").is_some());
        assert!(initial_problem(&Kind::Select(vec!["a".into()]), "b").is_some());
        assert!(initial_problem(&Kind::Date, "tomorrow").is_some());
        assert!(initial_problem(&Kind::Checkboxes(vec!["a".into(), "b".into()]), "a, b").is_none());
    }
}
