//! `[[form]]`: modals a `[[command]]` (`form = "name"`) or a button (`action_id = "sluice_form_open:<name>"`) opens,
//! whose submission feeds an `[[action]]` (the values are `form.<input>` in its templates). Checked into [`Forms`],
//! each problem with its line and fix: unknown input types, a select without options, a number whose `min` is above
//! its `max`, an initial value that does not fit, an external select whose `url` is not http(s), an unknown action.
//!
//! ```toml
//! [[form]]
//! name = "deploy"
//! title = "Deploy a service"          # at most 24 characters (Slack's limit)
//! submit = "Deploy"                   # default "Submit"
//! action = "deploy"                   # the [[action]] a valid submission runs
//! inputs = [
//!   { name = "service", label = "Service", type = "text", placeholder = "checkout" },
//!   { name = "env", type = "select", options = ["staging", "production"], initial = "staging" },
//!   { name = "replicas", type = "number", min = 1, max = 10, required = false },
//!   { name = "team", type = "external_select", url = "https://teams.internal/options" },
//!   { name = "notes", type = "multiline", required = false },
//!   { name = "when", type = "date", required = false },
//!   { name = "owner", type = "user", required = false },
//!   { name = "flags", type = "checkboxes", options = ["canary", "dry-run"], required = false },
//! ]
//! ```
//!
//! `next = "other"` instead of `action`: a valid submission pushes that form (at most three deep); the chain's last
//! form's action runs with every step's values.
//!
//! An external select's `url` is called (POST, signed like every outgoing call, allow-listed like an action's URL)
//! with `{"form", "input", "value", "user"}` and answers `{"options": ["a", {"text": "B", "value": "b"}]}` (or a
//! bare list); Sluice narrows it to what was typed.

use std::collections::BTreeSet;

use serde::Deserialize;
use sluice_domain::form::{initial_problem, Form, Input, Kind};
use sluice_domain::outgoing::Origin;
use sluice_slack_wire::limits;
use toml::Spanned;

use super::Report;

/// `[[form]]` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawForm {
    pub name: String,
    pub title: String,
    pub submit: Option<String>,
    /// The `[[action]]` a valid submission runs; or
    pub action: Option<String>,
    /// the `[[form]]` pushed next (`views.push`), whose chain ends in a form with an action; that action sees every
    /// step's values.
    pub next: Option<String>,
    #[serde(default)]
    pub inputs: Vec<Spanned<RawInput>>,
}

/// One input of a `[[form]]`, as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub name: String,
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub ty: String,
    /// Default true.
    pub required: Option<bool>,
    pub placeholder: Option<String>,
    pub initial: Option<toml::Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[serde(default)]
    pub decimal: bool,
    #[serde(default)]
    pub options: Vec<String>,
    /// external_select: the endpoint that answers its options.
    pub url: Option<String>,
    /// external_select: how many characters before options are asked for (default 0).
    pub min_query_length: Option<u32>,
}

/// A form, checked: what the modal shows, and what it runs.
#[derive(Debug, Clone)]
pub struct FormConfig {
    pub form: Form,
    /// The `[[action]]` a valid submission of the last step runs (this form's, or its `next` chain's last).
    pub action: String,
    /// The form pushed after this one, if any.
    pub next: Option<String>,
    /// External selects' endpoints, by input name.
    pub option_urls: Vec<(String, String)>,
}

/// Every `[[form]]`.
#[derive(Debug, Clone, Default)]
pub struct Forms {
    pub forms: Vec<FormConfig>,
}

impl Forms {
    pub fn get(&self, name: &str) -> Option<&FormConfig> {
        self.forms.iter().find(|f| f.form.name == name)
    }

    /// Every external select endpoint's destination (added to the allow-list).
    pub fn origins(&self) -> Vec<Origin> {
        self.forms
            .iter()
            .flat_map(|f| f.option_urls.iter())
            .filter_map(|(_, url)| Origin::of(url).ok())
            .collect()
    }
}

const TYPES: &str = "text, multiline, number, select, external_select, date, user, checkboxes";

fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_input(
    form: &str,
    spanned: &Spanned<RawInput>,
    p: &mut Report<'_>,
) -> Option<(Input, Option<String>)> {
    let span = Some(spanned.span());
    let i = spanned.get_ref();
    let owner = format!("form {form:?}: input {:?}", i.name);
    let mut ok = true;
    if !plain_name(&i.name) {
        p(
            span.clone(),
            format!("form {form:?}: input name {:?} is not a plain name", i.name),
            "use letters, digits, '-' or '_', e.g. name = \"service\"",
        );
        ok = false;
    }
    let needs_options = |p: &mut Report<'_>, max: usize| {
        if i.options.is_empty() {
            p(
                span.clone(),
                format!("{owner} is a {} without options", i.ty),
                "list its choices: options = [\"staging\", \"production\"]",
            );
            false
        } else if i.options.len() > max {
            p(
                span.clone(),
                format!(
                    "{owner} has {} options; Slack shows at most {max}",
                    i.options.len()
                ),
                "keep fewer options, or use type = \"external_select\" with a url",
            );
            false
        } else if let Some(o) = i
            .options
            .iter()
            .find(|o| o.trim().is_empty() || o.len() > limits::OPTION_VALUE)
        {
            p(
                span.clone(),
                format!(
                    "{owner}: option {o:?} is empty or longer than {} characters",
                    limits::OPTION_VALUE
                ),
                "give every option a short value",
            );
            false
        } else {
            true
        }
    };
    let kind = match i.ty.as_str() {
        "text" => Some(Kind::Text),
        "multiline" => Some(Kind::Multiline),
        "number" => {
            if let (Some(lo), Some(hi)) = (i.min, i.max) {
                if lo > hi {
                    p(
                        span.clone(),
                        format!("{owner}: min {lo} is above max {hi}"),
                        "swap them, or remove one",
                    );
                    ok = false;
                }
            }
            Some(Kind::Number {
                min: i.min,
                max: i.max,
                decimal: i.decimal,
            })
        }
        "select" => {
            needs_options(p, limits::SELECT_OPTIONS).then(|| Kind::Select(i.options.clone()))
        }
        "checkboxes" => {
            needs_options(p, limits::CHECKBOX_OPTIONS).then(|| Kind::Checkboxes(i.options.clone()))
        }
        "external_select" => match i.url.as_deref().map(Origin::of) {
            Some(Ok(_)) => Some(Kind::External {
                min_query_length: i.min_query_length.unwrap_or(0),
            }),
            Some(Err(e)) => {
                p(
                    span.clone(),
                    format!("{owner}: url: {e}"),
                    "give the http(s) URL of the endpoint that answers its options",
                );
                None
            }
            None => {
                p(
                    span.clone(),
                    format!("{owner} is an external_select without a url"),
                    "add url = \"https://…\", the endpoint that answers its options",
                );
                None
            }
        },
        "date" => Some(Kind::Date),
        "user" => Some(Kind::User),
        other => {
            p(
                span.clone(),
                format!("{owner} has an unknown type {other:?}"),
                &format!("use one of {TYPES}"),
            );
            None
        }
    };
    let kind = kind?;
    if i.url.is_some() && !matches!(kind, Kind::External { .. }) {
        p(
            span.clone(),
            format!("{owner}: only an external_select has a url"),
            "remove url, or make it type = \"external_select\"",
        );
        ok = false;
    }
    let initial = i.initial.as_ref().map(|v| match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    });
    if let Some(why) = initial.as_deref().and_then(|v| initial_problem(&kind, v)) {
        p(
            span.clone(),
            format!("{owner}: initial value {why}"),
            "give an initial value the input accepts, or leave it out",
        );
        ok = false;
    }
    if i.placeholder
        .as_deref()
        .is_some_and(|t| t.chars().count() > limits::PLACEHOLDER_TEXT)
    {
        p(
            span.clone(),
            format!(
                "{owner}: the placeholder is longer than {} characters",
                limits::PLACEHOLDER_TEXT
            ),
            "shorten it",
        );
        ok = false;
    }
    let url = i
        .url
        .clone()
        .filter(|_| matches!(kind, Kind::External { .. }));
    ok.then(|| {
        (
            Input {
                name: i.name.clone(),
                label: i.label.clone().unwrap_or_else(|| i.name.clone()),
                kind,
                required: i.required.unwrap_or(true),
                placeholder: i.placeholder.clone(),
                initial,
            },
            url,
        )
    })
}

/// Checks every `[[form]]` against the `[[action]]`s.
pub(super) fn check(
    raw: &[Spanned<RawForm>],
    actions: &super::actions::Actions,
    p: &mut Report<'_>,
) -> Forms {
    let mut out = Forms::default();
    let mut steps = Vec::new();
    let mut names = BTreeSet::new();
    for spanned in raw {
        let span = Some(spanned.span());
        let f = spanned.get_ref();
        let name = f.name.trim().to_string();
        let mut ok = true;
        if !plain_name(&name) {
            p(
                span.clone(),
                format!("form name {:?} is not a plain name", f.name),
                "use letters, digits, '-' or '_', e.g. name = \"deploy\"",
            );
            ok = false;
        }
        if !names.insert(name.clone()) {
            p(
                span.clone(),
                format!("form {name:?} is defined twice"),
                "give every [[form]] its own name",
            );
            ok = false;
        }
        let submit = f.submit.clone().unwrap_or_else(|| "Submit".into());
        for (what, text) in [("title", &f.title), ("submit", &submit)] {
            let n = text.trim().chars().count();
            if n == 0 || n > limits::VIEW_TITLE {
                p(
                    span.clone(),
                    format!(
                        "form {name:?}: {what} {text:?} is empty or longer than {} characters",
                        limits::VIEW_TITLE
                    ),
                    "Slack shows at most 24 characters there: shorten it",
                );
                ok = false;
            }
        }
        match (&f.action, &f.next) {
            (Some(a), None) if actions.get(a).is_none() => {
                p(
                    span.clone(),
                    format!("form {name:?} runs the action {a:?}, which no [[action]] defines"),
                    "add an [[action]] with that name, or name one that exists",
                );
                ok = false;
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                p(
                    span.clone(),
                    format!("form {name:?} needs exactly one of action and next"),
                    "name the [[action]] it runs (action = \"deploy\"), or the [[form]] that follows it (next = \"…\")",
                );
                ok = false;
            }
        }
        if f.inputs.is_empty() || f.inputs.len() > limits::VIEW_BLOCKS {
            p(
                span.clone(),
                format!("form {name:?} has {} inputs", f.inputs.len()),
                "give it between 1 and 100 inputs: inputs = [{ name = \"service\", type = \"text\" }]",
            );
            ok = false;
        }
        let mut inputs = Vec::new();
        let mut urls = Vec::new();
        let mut seen = BTreeSet::new();
        for i in &f.inputs {
            if !seen.insert(i.get_ref().name.clone()) {
                p(
                    Some(i.span()),
                    format!(
                        "form {name:?}: input {:?} is listed twice",
                        i.get_ref().name
                    ),
                    "give every input its own name",
                );
                ok = false;
                continue;
            }
            match check_input(&name, i, p) {
                Some((input, url)) => {
                    if let Some(url) = url {
                        urls.push((input.name.clone(), url));
                    }
                    inputs.push(input);
                }
                None => ok = false,
            }
        }
        if ok {
            steps.push((
                span,
                FormConfig {
                    form: Form {
                        name,
                        title: f.title.trim().to_string(),
                        submit,
                        inputs,
                    },
                    action: f.action.clone().unwrap_or_default(),
                    next: f.next.clone(),
                    option_urls: urls,
                },
            ));
        }
    }
    // A chain of `next` forms ends in a form with an action within Slack's stack of three modals.
    for (span, f) in &steps {
        let mut seen = vec![f.form.name.clone()];
        let mut at = f;
        let resolved = loop {
            let Some(next) = &at.next else {
                break Ok(at.action.clone());
            };
            match steps.iter().find(|(_, g)| g.form.name == *next) {
                None => break Err(format!("its next form {next:?} is not a valid [[form]]")),
                Some(_) if seen.contains(next) => {
                    break Err(format!("its next forms loop back to {next:?}"))
                }
                Some(_) if seen.len() >= 3 => {
                    break Err(
                        "its chain of next forms is longer than 3, Slack's stack of modals"
                            .to_string(),
                    )
                }
                Some((_, g)) => {
                    seen.push(next.clone());
                    at = g;
                }
            }
        };
        match resolved {
            Ok(action) => out.forms.push(FormConfig {
                action,
                ..f.clone()
            }),
            Err(why) => p(
                span.clone(),
                format!("form {:?}: {why}", f.form.name),
                "end the chain within three forms in a form with an action",
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_reported, parse};

    const BASE: &str = "[actions]\noutgoing_secret_env = \"OUT\"\n[[action]]\nname = \"deploy\"\nurl = \"https://d.internal/deploy\"\n";

    #[test]
    fn a_form_with_every_input_type_parses() {
        let text = format!(
            r#"{BASE}
[[form]]
name = "deploy"
title = "Deploy a service"
submit = "Deploy"
action = "deploy"
inputs = [
  {{ name = "service", label = "Service", type = "text", placeholder = "checkout" }},
  {{ name = "env", type = "select", options = ["staging", "production"], initial = "staging" }},
  {{ name = "replicas", type = "number", min = 1, max = 10, required = false }},
  {{ name = "team", type = "external_select", url = "https://teams.internal/options" }},
  {{ name = "notes", type = "multiline", required = false }},
  {{ name = "when", type = "date", required = false }},
  {{ name = "owner", type = "user", required = false }},
  {{ name = "flags", type = "checkboxes", options = ["canary", "dry-run"], required = false }},
]
"#
        );
        let cfg = parse(&text).unwrap_or_else(|p| panic!("{p:#?}"));
        let f = cfg.forms.get("deploy").expect("the form");
        assert_eq!(f.form.inputs.len(), 8);
        assert_eq!(
            f.option_urls,
            [(
                "team".to_string(),
                "https://teams.internal/options".to_string()
            )]
        );
        assert!(
            cfg.approvals
                .allowed()
                .iter()
                .any(|o| o.to_string() == "https://teams.internal:443"),
            "an external select's endpoint is allow-listed"
        );
    }

    #[test]
    fn form_problems_are_refused_with_their_line() {
        let cases = [
            (
                "inputs = [{ name = \"a\", type = \"colour\" }]",
                "unknown type \"colour\"",
                "use one of text",
            ),
            (
                "inputs = [{ name = \"a\", type = \"select\" }]",
                "select without options",
                "options = ",
            ),
            (
                "inputs = [{ name = \"a\", type = \"number\", min = 5, max = 1 }]",
                "min 5 is above max 1",
                "swap",
            ),
            (
                "inputs = [{ name = \"a\", type = \"external_select\" }]",
                "without a url",
                "url = ",
            ),
            (
                "inputs = [{ name = \"a\", type = \"select\", options = [\"x\"], initial = \"y\" }]",
                "not one of its options",
                "initial value",
            ),
        ];
        let texts: Vec<(String, usize, &str, &str)> = cases
            .iter()
            .map(|(inputs, says, fix)| {
                let text = format!(
                    "{BASE}[[form]]\nname = \"f\"\ntitle = \"F\"\naction = \"deploy\"\n{inputs}\n"
                );
                (text, 10, *says, *fix)
            })
            .chain([
                (
                    format!("{BASE}[[form]]\nname = \"f\"\ntitle = \"F\"\naction = \"nope\"\ninputs = [{{ name = \"a\", type = \"text\" }}]\n"),
                    6,
                    "no [[action]] defines",
                    "add an [[action]]",
                ),
                (
                    format!("{BASE}[[form]]\nname = \"f\"\ntitle = \"F\"\nnext = \"g\"\ninputs = [{{ name = \"a\", type = \"text\" }}]\n[[form]]\nname = \"g\"\ntitle = \"G\"\nnext = \"f\"\ninputs = [{{ name = \"b\", type = \"text\" }}]\n"),
                    6,
                    "loop back to \"f\"",
                    "end the chain",
                ),
                (
                    format!("{BASE}[[form]]\nname = \"f\"\ntitle = \"F\"\naction = \"deploy\"\nnext = \"g\"\ninputs = [{{ name = \"a\", type = \"text\" }}]\n"),
                    6,
                    "exactly one of action and next",
                    "next = ",
                ),
                (
                    format!("{BASE}[[command]]\nname = \"x\"\nform = \"missing\"\n"),
                    6,
                    "opens the form \"missing\"",
                    "[[form]]",
                ),
            ])
            .collect();
        let table: Vec<(&str, usize, &str, &str)> = texts
            .iter()
            .map(|(t, l, m, f)| (t.as_str(), *l, *m, *f))
            .collect();
        assert_reported(&table);
    }
}
