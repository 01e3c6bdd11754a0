//! `[[step]]`: an `[[action]]` offered to Workflow Builder as a custom step (`sluice manifest` declares it under
//! `functions:`, callback_id = the action's name). Checked into [`Steps`], each problem with its line and fix: an
//! unknown action, a second step for the same action, unknown parameter types, duplicate parameter names, an
//! output's `from` that is neither a JSON pointer nor a template that compiles.
//!
//! ```toml
//! [[step]]
//! action = "deploy"                          # the [[action]] the step runs; its name is the step's callback_id
//! title = "Deploy a service"
//! description = "Deploys through the deployer" # optional
//! inputs = [
//!   { name = "service", type = "string", title = "Service" },             # required unless required = false
//!   { name = "by", type = "user_id", title = "Requested by", required = false },
//! ]
//! outputs = [
//!   { name = "version", type = "string", title = "Version", from = "/version" },       # a JSON pointer
//!   { name = "summary", type = "string", title = "Summary", from = "{{ body.env }} {{ status }}", required = false },
//! ]
//! ```
//!
//! The action's templates see the inputs as `inputs.<name>` (and as `args.<name>`, as a command's arguments);
//! `user` is the first `user_id` input given. Input and output types: string, integer, boolean, user_id,
//! channel_id.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_domain::step::{output_value, Param, ParamType, TYPES};
use toml::Spanned;

use super::actions::Actions;
use super::Report;

/// `[[step]]` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub action: Spanned<String>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub inputs: Vec<Spanned<RawParam>>,
    #[serde(default)]
    pub outputs: Vec<Spanned<RawParam>>,
}

/// One input or output as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default true.
    #[serde(default)]
    pub required: Option<bool>,
    /// Outputs only: a JSON pointer into the answer (`/version`) or a minijinja template over `status`, `body`,
    /// `text`.
    #[serde(default)]
    pub from: Option<String>,
}

/// Where an output's value comes from.
#[derive(Debug, Clone)]
pub enum From {
    /// A JSON pointer into the answer's body.
    Pointer(String),
    /// A template (its name in [`Steps`]' environment).
    Template(String),
}

/// One `[[step]]`, checked.
#[derive(Debug, Clone)]
pub struct Step {
    /// The action's name: the step's callback_id.
    pub action: String,
    pub title: String,
    pub description: String,
    pub inputs: Vec<(Param, String)>,
    pub outputs: Vec<(Param, String, From)>,
}

impl Step {
    pub fn input_params(&self) -> Vec<Param> {
        self.inputs.iter().map(|(p, _)| p.clone()).collect()
    }
}

/// Every `[[step]]`, by action name.
#[derive(Debug, Default)]
pub struct Steps {
    by_action: BTreeMap<String, Step>,
    templates: Environment<'static>,
}

impl Steps {
    pub fn get(&self, action: &str) -> Option<&Step> {
        self.by_action.get(action)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Step> {
        self.by_action.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_action.is_empty()
    }

    /// The step's outputs read from the call's answer (`status`, `body` as written), or why they cannot be.
    pub fn outputs(
        &self,
        step: &Step,
        status: u16,
        body: &str,
    ) -> Result<Map<String, Value>, String> {
        let parsed: Value =
            serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
        let ctx = serde_json::json!({"status": status, "body": parsed, "text": body});
        let mut out = Map::new();
        for (p, _, from) in &step.outputs {
            let found = match from {
                From::Pointer(ptr) => parsed.pointer(ptr).cloned(),
                From::Template(name) => {
                    let text = self
                        .templates
                        .get_template(name)
                        .and_then(|t| t.render(&ctx))
                        .map_err(|e| format!("output {:?}: its template failed: {e}", p.name))?;
                    (!text.is_empty()).then_some(Value::String(text))
                }
            };
            if let Some(v) = output_value(p, found.as_ref())? {
                out.insert(p.name.clone(), v);
            }
        }
        Ok(out)
    }
}

fn plain_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks every `[[step]]` against the actions.
pub(super) fn check(raw: &[Spanned<RawStep>], actions: &Actions, p: &mut Report<'_>) -> Steps {
    let mut steps = Steps {
        by_action: BTreeMap::new(),
        templates: Environment::new(),
    };
    steps
        .templates
        .set_undefined_behavior(UndefinedBehavior::Lenient);
    for spanned in raw {
        let s = spanned.get_ref();
        let action = s.action.get_ref().clone();
        let owner = format!("[[step]] {action:?}");
        let mut ok = true;
        if actions.get(&action).is_none() {
            let known: Vec<_> = actions.iter().map(|a| a.name.as_str()).collect();
            p(
                Some(s.action.span()),
                format!("{owner}: no [[action]] is named {action:?}"),
                &format!("name one of the actions: {}", known.join(", ")),
            );
            ok = false;
        } else if let Some(a) = actions
            .get(&action)
            .filter(|a| a.approval.is_some() || a.channel_members)
        {
            let (what, fix) = if a.approval.is_some() {
                (
                    "needs an approval, which a workflow step cannot wait for",
                    "offer an action without `approval` as a step",
                )
            } else {
                (
                    "is for channel_members, and a step runs in no channel",
                    "list its users or groups instead",
                )
            };
            p(
                Some(s.action.span()),
                format!("{owner}: the action {what}"),
                fix,
            );
            ok = false;
        } else if !plain_name(&action) {
            p(
                Some(s.action.span()),
                format!("{owner}: a step's callback_id (its action's name) may hold only letters, digits and _"),
                "rename the action (Slack refuses other characters in a function's callback_id)",
            );
            ok = false;
        }
        if steps.by_action.contains_key(&action) {
            p(
                Some(s.action.span()),
                format!("{owner}: a second [[step]] for the same action"),
                "keep one [[step]] per action",
            );
            ok = false;
        }
        if s.title.trim().is_empty() {
            p(
                Some(spanned.span()),
                format!("{owner}: title is empty"),
                "give the step a title Workflow Builder shows",
            );
            ok = false;
        }
        let inputs = read_params(&owner, &s.inputs, "input", p, &mut ok);
        let outputs_raw = read_params(&owner, &s.outputs, "output", p, &mut ok);
        let mut inputs_checked = Vec::new();
        for (param, desc, from, span) in inputs {
            if from.is_some() {
                p(
                    span,
                    format!("{owner}: input {:?} has a `from`", param.name),
                    "only outputs read `from` the answer; remove it",
                );
                ok = false;
            }
            inputs_checked.push((param, desc));
        }
        let mut outputs = Vec::new();
        for (param, desc, from, span) in outputs_raw {
            let from = match from.as_deref() {
                None => From::Pointer(format!("/{}", param.name)),
                Some(f) if f.is_empty() || f.starts_with('/') => From::Pointer(f.to_string()),
                Some(f) => {
                    let name = format!("{action}:{}", param.name);
                    if let Err(e) = steps
                        .templates
                        .add_template_owned(name.clone(), f.to_string())
                    {
                        p(span, format!("{owner}: output {:?}: its from template does not compile: {e}", param.name), "write a JSON pointer (/version) or a minijinja template ({{ body.version }})");
                        ok = false;
                        continue;
                    }
                    From::Template(name)
                }
            };
            outputs.push((param, desc, from));
        }
        if ok {
            steps.by_action.insert(
                action.clone(),
                Step {
                    action,
                    title: s.title.clone(),
                    description: s.description.clone().unwrap_or_default(),
                    inputs: inputs_checked,
                    outputs,
                },
            );
        }
    }
    steps
}

type Read = (
    Param,
    String,
    Option<String>,
    Option<std::ops::Range<usize>>,
);

/// A step's inputs or outputs as written, each checked (plain, distinct names; known types).
fn read_params(
    owner: &str,
    params: &[Spanned<RawParam>],
    kind: &str,
    p: &mut Report<'_>,
    ok: &mut bool,
) -> Vec<Read> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for rp in params {
        let r = rp.get_ref();
        let span = Some(rp.span());
        if !plain_name(&r.name) {
            p(
                span.clone(),
                format!("{owner}: {kind} name {:?} is not a plain name", r.name),
                "use letters, digits and _",
            );
            *ok = false;
        }
        if !seen.insert(r.name.clone()) {
            p(
                span.clone(),
                format!("{owner}: two {kind}s are named {:?}", r.name),
                &format!("give each {kind} its own name"),
            );
            *ok = false;
        }
        let Some(ty) = ParamType::parse(&r.ty) else {
            p(
                span,
                format!(
                    "{owner}: {kind} {:?} has the unknown type {:?}",
                    r.name, r.ty
                ),
                &format!("use one of: {TYPES}"),
            );
            *ok = false;
            continue;
        };
        let param = Param {
            name: r.name.clone(),
            ty,
            title: r.title.clone().unwrap_or_else(|| r.name.clone()),
            required: r.required.unwrap_or(true),
        };
        out.push((
            param,
            r.description.clone().unwrap_or_default(),
            r.from.clone(),
            span,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_reported, parse};

    const BASE: &str = "[actions]\noutgoing_secret_env = \"OUT\"\n[[action]]\nname = \"deploy\"\nurl = \"https://d.internal/x\"\n";

    #[test]
    fn each_bad_step_is_refused_with_its_line_and_fix() {
        let rows: Vec<(String, usize, &str, &str)> = vec![
            (
                "[[step]]\naction = \"nope\"\ntitle = \"T\"\n".into(),
                7,
                "no [[action]] is named \"nope\"",
                "deploy",
            ),
            (
                "[[step]]\naction = \"deploy\"\ntitle = \"T\"\ninputs = [{ name = \"n\", type = \"float\" }]\n".into(),
                9,
                "unknown type \"float\"",
                "user_id",
            ),
            (
                "[[step]]\naction = \"deploy\"\ntitle = \"T\"\ninputs = [\n{ name = \"n\", type = \"string\" },\n{ name = \"n\", type = \"integer\" },\n]\n".into(),
                11,
                "two inputs are named \"n\"",
                "its own name",
            ),
            (
                "[[action]]\nname = \"gated\"\nurl = \"https://d.internal/y\"\napproval = { approvers = { users = [\"U1\"] } }\n[[step]]\naction = \"gated\"\ntitle = \"T\"\n".into(),
                11,
                "needs an approval",
                "without `approval`",
            ),
            (
                "[[step]]\naction = \"deploy\"\ntitle = \"T\"\n[[step]]\naction = \"deploy\"\ntitle = \"U\"\n".into(),
                10,
                "a second [[step]]",
                "one [[step]] per action",
            ),
            (
                "[[step]]\naction = \"deploy\"\ntitle = \"T\"\noutputs = [{ name = \"v\", type = \"string\", from = \"{% if %}\" }]\n".into(),
                9,
                "does not compile",
                "JSON pointer",
            ),
        ];
        let texts: Vec<(String, usize, &str, &str)> = rows
            .into_iter()
            .map(|(t, l, m, f)| (format!("{BASE}{t}"), l, m, f))
            .collect();
        let table: Vec<(&str, usize, &str, &str)> = texts
            .iter()
            .map(|(t, l, m, f)| (t.as_str(), *l, *m, *f))
            .collect();
        assert_reported(&table);
    }

    #[test]
    fn outputs_come_from_a_pointer_or_a_template() {
        let text = format!(
            "{BASE}[[step]]\naction = \"deploy\"\ntitle = \"T\"\noutputs = [\n{{ name = \"version\", type = \"string\" }},\n{{ name = \"n\", type = \"integer\", from = \"/deployed/count\" }},\n{{ name = \"line\", type = \"string\", from = \"{{{{ body.version }}}} ({{{{ status }}}})\" }},\n]\n"
        );
        let cfg = parse(&text).unwrap_or_else(|p| panic!("{p:?}"));
        let step = cfg.steps.get("deploy").expect("the step");
        let out = cfg
            .steps
            .outputs(
                step,
                200,
                r#"{"version": "1.2", "deployed": {"count": "4"}}"#,
            )
            .unwrap();
        assert_eq!(
            serde_json::Value::Object(out),
            serde_json::json!({"version": "1.2", "n": 4, "line": "1.2 (200)"})
        );
        let missing = cfg
            .steps
            .outputs(step, 200, r#"{"deployed": {"count": 1}}"#)
            .unwrap_err();
        assert!(missing.contains("\"version\""), "{missing}");
    }

    /// The README's example under "Workflow Builder steps" parses as written, with an action named deploy.
    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../../../README.md");
        let section = &readme[readme
            .find("### Workflow Builder steps")
            .expect("the section")..];
        let start = section.find("```toml\n").expect("its example") + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").expect("its end")];
        let cfg = parse(&format!("{BASE}{example}")).unwrap_or_else(|p| panic!("{p:?}"));
        let step = cfg.steps.get("deploy").expect("the step");
        assert_eq!((step.inputs.len(), step.outputs.len()), (2, 2));
    }
}
