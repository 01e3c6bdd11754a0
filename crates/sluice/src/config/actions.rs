//! `[[action]]`: named calls to internal systems (a deploy, a rollback, a restart), shown as buttons on the cards
//! their `on` table matches and run through the outbox, signed, to allow-listed destinations only. Checked into
//! [`Actions`], each problem reported with its line and fix: unknown keys, duplicate names, URLs that are not http(s)
//! or whose scheme, host or port is templated, templates that do not compile, header values written inline,
//! durations that do not read.
//!
//! ```toml
//! [[action]]
//! name = "rollback"
//! label = "Rollback"
//! method = "POST"                                  # default POST
//! url = "https://deployer.internal:8443/rollback/{{ event.service }}"
//! headers = { Authorization = { env = "DEPLOYER_TOKEN", prefix = "Bearer " } }   # or { file = "path" }
//! body = '{"service": "{{ event.service }}", "by": "{{ user.id }}"}'
//! timeout = "10s"
//! users = ["U0001"]                                # who may run it, as [actions]
//! on = { kind = "deployment", severity = "error" } # the cards that get the button
//! confirm = { title = "Roll back?", text = "This redeploys the last release.", ok = "Roll back", deny = "Cancel" }
//! approval = { approvers = { users = ["U0002"] }, required = 1, expires_in = "30m" }
//! result = "thread"                                # or "ephemeral"
//! result_template = "Rolled back to {{ body.version }} (HTTP {{ status }})"
//! ```
//!
//! Templates are minijinja over the context `sluice_domain::action::context` describes (`event`, `approval`,
//! `labels`, `fields`, `user.id`, `user.name`, `args`). In `body`, every `{{ … }}` is written JSON-string-escaped,
//! so a value with a quote in it cannot change the body's shape: put it inside quotes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_core::render::ActionButton;
use sluice_core::route::{MatchTable, Matchers};
use sluice_domain::approval::request::Approvers;
use sluice_domain::outgoing::{is_metadata_address, Origin};
use sluice_slack_wire::secret::Secret;
use toml::Spanned;

use super::{read_secret_file, Env, Report};

/// `[[action]]` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    pub name: Spanned<String>,
    pub label: Option<Spanned<String>>,
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    pub url: Spanned<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<HeaderValue>>,
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub channel_members: bool,
    #[serde(default)]
    pub confirm: Option<Spanned<RawConfirm>>,
    #[serde(default)]
    pub approval: Option<Spanned<RawApproval>>,
    #[serde(default)]
    pub on: Option<Spanned<MatchTable>>,
    #[serde(default)]
    pub result: Option<Spanned<String>>,
    #[serde(default)]
    pub result_template: Option<Spanned<String>>,
}

/// A header's value: from an environment variable or a file (a secret), or written inline (only for a header that
/// carries no secret).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum HeaderValue {
    Inline(String),
    From(HeaderFrom),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HeaderFrom {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Put before the value: `"Bearer "`.
    #[serde(default)]
    pub prefix: String,
}

/// Slack's confirmation dialog on the button.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawConfirm {
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub ok: Option<String>,
    #[serde(default)]
    pub deny: Option<String>,
}

/// The approval an action needs before it runs.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    pub approvers: Approvers,
    #[serde(default)]
    pub required: Option<u32>,
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// Where a run's result goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultTo {
    /// A reply in the card's thread (the default).
    Thread,
    /// An ephemeral message to the person who ran it.
    Ephemeral,
}

impl ResultTo {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultTo::Thread => "thread",
            ResultTo::Ephemeral => "ephemeral",
        }
    }
}

/// The approval an action needs, checked.
#[derive(Debug, Clone)]
pub struct NeedsApproval {
    pub approvers: Approvers,
    pub required: u32,
    /// As written (`"30m"`), validated like the API's.
    pub expires_in: String,
}

/// One `[[action]]`, checked.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub label: String,
    pub method: String,
    /// Where its calls may go: the scheme, host and port of its `url`.
    pub origin: Origin,
    /// Header name → value (secrets read at start-up, held as [`Secret`]s, never stored in the outbox).
    pub headers: Vec<(String, Secret)>,
    pub timeout_ms: u64,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub channel_members: bool,
    pub approval: Option<NeedsApproval>,
    /// Slack's confirmation dialog object (`title`, `text`, `confirm`, `deny`), when the action asks for one.
    pub confirm: Option<Value>,
    pub result: ResultTo,
    has_body: bool,
    has_result_template: bool,
}

/// Every `[[action]]`, by name, with their compiled templates.
#[derive(Debug, Default)]
pub struct Actions {
    by_name: BTreeMap<String, Action>,
    /// `url:<name>`, `result:<name>`: plain text.
    text: Environment<'static>,
    /// `body:<name>`: every value JSON-string-escaped.
    body: Environment<'static>,
}

/// What rendering an action's request for a context gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub body: Value,
}

impl Actions {
    pub fn get(&self, name: &str) -> Option<&Action> {
        self.by_name.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Action> {
        self.by_name.values()
    }

    /// Every destination an action may call.
    pub fn origins(&self) -> Vec<Origin> {
        self.by_name.values().map(|a| a.origin.clone()).collect()
    }

    /// The URL and JSON body of action `a`'s call for `context`, or what went wrong (a template failing, a body that
    /// is not JSON, a URL whose destination is not the configured one).
    pub fn request(&self, a: &Action, context: &Value) -> Result<Request, String> {
        let url = self
            .text
            .get_template(&format!("url:{}", a.name))
            .and_then(|t| t.render(context))
            .map_err(|e| format!("action {:?}: its url template failed: {e}", a.name))?;
        match Origin::of(&url) {
            Ok(o) if o == a.origin => {}
            _ => {
                return Err(format!(
                    "action {:?}: its url rendered as {url:?}, which is not on {}",
                    a.name, a.origin
                ))
            }
        }
        let body = if a.has_body {
            let text = self
                .body
                .get_template(&format!("body:{}", a.name))
                .and_then(|t| t.render(context))
                .map_err(|e| format!("action {:?}: its body template failed: {e}", a.name))?;
            serde_json::from_str(&text).map_err(|e| {
                format!(
                    "action {:?}: its body did not render as JSON ({e}): {text}",
                    a.name
                )
            })?
        } else {
            json!({})
        };
        Ok(Request { url, body })
    }

    /// The run's result as the action's `result_template` says it, or `None` when it has none. `context` holds
    /// `status`, `body` (the answer as JSON, or its text), `text`, `action` and `user`.
    pub fn result(&self, a: &Action, context: &Value) -> Option<Result<String, String>> {
        if !a.has_result_template {
            return None;
        }
        Some(
            self.text
                .get_template(&format!("result:{}", a.name))
                .and_then(|t| t.render(context))
                .map_err(|e| format!("action {:?}: its result template failed: {e}", a.name)),
        )
    }

    /// The cards' buttons: one per action with an `on` table.
    fn buttons(&self, on: &BTreeMap<String, (Matchers, Option<Value>)>) -> Vec<ActionButton> {
        self.by_name
            .values()
            .filter_map(|a| {
                on.get(&a.name).map(|(m, confirm)| ActionButton {
                    name: a.name.clone(),
                    label: a.label.clone(),
                    on: m.clone(),
                    confirm: confirm.clone(),
                })
            })
            .collect()
    }
}

/// Header names whose values are secrets, so never written inline.
fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "key",
        "password",
        "auth",
    ]
    .iter()
    .any(|s| n.contains(s))
}

const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "GET"];

fn environment(json_values: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    if json_values {
        env.set_formatter(|out, _state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            let s = serde_json::to_string(&value.to_string()).unwrap_or_default();
            out.write_str(s.get(1..s.len().saturating_sub(1)).unwrap_or_default())
                .map_err(minijinja::Error::from)
        });
    }
    env
}

/// Checks every `[[action]]`; returns them and their buttons for the renderer.
pub(super) fn check(
    raw: &[Spanned<RawAction>],
    base: &Path,
    env: &dyn Env,
    signed: bool,
    allow_link_local: &[std::net::IpAddr],
    p: &mut Report<'_>,
) -> (Arc<Actions>, Vec<ActionButton>) {
    let mut actions = Actions {
        by_name: BTreeMap::new(),
        text: environment(false),
        body: environment(true),
    };
    let mut on_tables = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for spanned in raw {
        let a = spanned.get_ref();
        let name = a.name.get_ref().trim().to_string();
        let owner = format!("action {name:?}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            p(
                Some(a.name.span()),
                format!("action name {:?} is not a plain name", a.name.get_ref()),
                "use letters, digits, '-', '_' or '.', e.g. name = \"rollback\"",
            );
            continue;
        }
        if !seen.insert(name.clone()) {
            p(
                Some(a.name.span()),
                format!("action name {name:?} is used twice"),
                "give every [[action]] its own name; buttons and commands find actions by it",
            );
            continue;
        }
        let mut ok = true;
        let label = match &a.label {
            Some(l) if !l.get_ref().trim().is_empty() => l.get_ref().trim().to_string(),
            Some(l) => {
                p(
                    Some(l.span()),
                    format!("{owner}: label is empty"),
                    "write the button's text, e.g. label = \"Rollback\"",
                );
                ok = false;
                String::new()
            }
            None => name.clone(),
        };
        let method = match &a.method {
            None => "POST".to_string(),
            Some(m) => {
                let up = m.get_ref().to_ascii_uppercase();
                if !METHODS.contains(&up.as_str()) {
                    p(
                        Some(m.span()),
                        format!("{owner}: method {:?} is not supported", m.get_ref()),
                        &format!("use one of {}", METHODS.join(", ")),
                    );
                    ok = false;
                }
                up
            }
        };
        let url = a.url.get_ref();
        // The destination is what the allow-list compares, so it is fixed: only the path and query may vary.
        let origin = match url.find("{{").or_else(|| url.find("{%")) {
            Some(at)
                if !url[..at]
                    .split("://")
                    .nth(1)
                    .is_some_and(|rest| rest.contains('/')) =>
            {
                p(
                    Some(a.url.span()),
                    format!("{owner}: the scheme, host or port of its url {url:?} is templated"),
                    "write the destination out (e.g. \"https://deployer.internal:8443/…\"); only the path and query may use {{ … }}",
                );
                None
            }
            _ => match Origin::of(&url.replace("{{", "x").replace("}}", "x")) {
                Ok(o) => Some(o),
                Err(e) => {
                    p(
                        Some(a.url.span()),
                        format!("{owner}: url: {e}"),
                        "write an http or https URL, e.g. \"https://deployer.internal:8443/deploy\"",
                    );
                    None
                }
            },
        };
        // A forged or mistaken destination must not reach the cloud's metadata service: refused here as at call
        // time (where a name that resolves there is refused too), unless listed.
        if let Some(ip) = origin
            .as_ref()
            .and_then(Origin::ip)
            .filter(|ip| is_metadata_address(*ip) && !allow_link_local.contains(ip))
        {
            p(
                Some(a.url.span()),
                format!("{owner}: its url {url:?} is {ip}, a link-local or cloud metadata address"),
                "point it at the internal system's own address; list the address in [actions] allow_link_local only if calling it is truly intended",
            );
            ok = false;
        }
        if let Err(e) = actions
            .text
            .add_template_owned(format!("url:{name}"), url.clone())
        {
            p(
                Some(a.url.span()),
                format!("{owner}: url template: {e}"),
                "correct the template (minijinja/Jinja2 syntax)",
            );
            ok = false;
        }
        if let Some(body) = &a.body {
            if let Err(e) = actions
                .body
                .add_template_owned(format!("body:{name}"), body.get_ref().clone())
            {
                p(
                    Some(body.span()),
                    format!("{owner}: body template: {e}"),
                    "correct the template (minijinja/Jinja2 syntax); the body is JSON with {{ … }} inside its strings",
                );
                ok = false;
            }
        }
        if let Some(t) = &a.result_template {
            if let Err(e) = actions
                .text
                .add_template_owned(format!("result:{name}"), t.get_ref().clone())
            {
                p(
                    Some(t.span()),
                    format!("{owner}: result_template: {e}"),
                    "correct the template (minijinja/Jinja2 syntax); it sees status, body, text, action and user",
                );
                ok = false;
            }
        }
        let mut headers = Vec::new();
        for (h, v) in &a.headers {
            if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                p(
                    Some(v.span()),
                    format!("{owner}: {h:?} is not a header name"),
                    "use a header name such as Authorization or X-Request-Source",
                );
                ok = false;
                continue;
            }
            let value = match v.get_ref() {
                HeaderValue::Inline(_) if is_secret_header(h) => {
                    p(
                        Some(v.span()),
                        format!("{owner}: header {h} is written inline: secrets in config files end up in git"),
                        &format!("take it from the environment or a file: {h} = {{ env = \"DEPLOYER_TOKEN\" }} or {{ file = \"/etc/sluice/deployer-token\" }}"),
                    );
                    None
                }
                HeaderValue::Inline(s) => Some(Secret::new(s.clone())),
                HeaderValue::From(from) => {
                    match (&from.env, &from.file) {
                        (Some(var), None) => match env.var(var) {
                            Some(s) if !s.trim().is_empty() => {
                                Some(Secret::new(format!("{}{}", from.prefix, s.trim())))
                            }
                            _ => {
                                p(
                                    Some(v.span()),
                                    format!("{owner}: header {h} names ${var}, which is not set"),
                                    "export the variable before starting sluice",
                                );
                                None
                            }
                        },
                        (None, Some(file)) => match read_secret_file(base, file) {
                            Ok(s) => Some(Secret::new(format!("{}{}", from.prefix, s.expose()))),
                            Err(e) => {
                                p(
                                Some(v.span()),
                                format!("{owner}: header {h}: {e}"),
                                "check the path (relative to the config file) and its permissions",
                            );
                                None
                            }
                        },
                        _ => {
                            p(
                            Some(v.span()),
                            format!("{owner}: header {h} needs exactly one of env or file"),
                            &format!("write {h} = {{ env = \"VAR\" }} or {h} = {{ file = \"path\" }}"),
                        );
                            None
                        }
                    }
                }
            };
            match value {
                Some(s) if reqwest::header::HeaderValue::from_str(s.expose()).is_ok() => {
                    headers.push((h.clone(), s))
                }
                Some(_) => {
                    p(
                        Some(v.span()),
                        format!("{owner}: the value of header {h} cannot be sent in a header"),
                        "remove line breaks and control characters from it",
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        let timeout_ms = match &a.timeout {
            None => super::approvals::DEFAULT_TIMEOUT_MS,
            Some(t) => match sluice_core::duration::parse_duration(t.get_ref()) {
                Ok(d) if d.as_millis() >= 100 && d.as_secs() <= 120 => d.as_millis() as u64,
                Ok(_) => {
                    p(
                        Some(t.span()),
                        format!("{owner}: timeout {:?} is out of range", t.get_ref()),
                        "use between 100ms and 120s, e.g. timeout = \"10s\"",
                    );
                    ok = false;
                    0
                }
                Err(e) => {
                    p(
                        Some(t.span()),
                        format!("{owner}: timeout {:?}: {e}", t.get_ref()),
                        "write a duration such as \"10s\" or \"1m30s\"",
                    );
                    ok = false;
                    0
                }
            },
        };
        let result = match a.result.as_ref().map(|r| (r, r.get_ref().as_str())) {
            None | Some((_, "thread")) => ResultTo::Thread,
            Some((_, "ephemeral")) => ResultTo::Ephemeral,
            Some((r, other)) => {
                p(
                    Some(r.span()),
                    format!("{owner}: result {other:?} is not a place"),
                    "use result = \"thread\" (a reply under the card) or \"ephemeral\" (only the person who ran it)",
                );
                ok = false;
                ResultTo::Thread
            }
        };
        let confirm = a.confirm.as_ref().map(|c| {
            let c = c.get_ref();
            let plain = |t: &str| json!({"type": "plain_text", "text": t});
            json!({
                "title": plain(&c.title),
                "text": plain(&c.text),
                "confirm": plain(c.ok.as_deref().unwrap_or("Run")),
                "deny": plain(c.deny.as_deref().unwrap_or("Cancel")),
            })
        });
        let approval = match &a.approval {
            None => None,
            Some(ap) => {
                let r = ap.get_ref();
                let expires_in = r.expires_in.clone().unwrap_or_else(|| "30m".into());
                if r.approvers.users.is_empty()
                    && r.approvers.groups.is_empty()
                    && !r.approvers.channel_members
                {
                    p(
                        Some(ap.span()),
                        format!("{owner}: approval names no approvers"),
                        "list approvers = { users = [\"U…\"], groups = [\"S…\"] } or channel_members = true",
                    );
                    ok = false;
                }
                if !sluice_core::duration::parse_duration_ms(&expires_in)
                    .is_ok_and(|ms| ms > 0 && ms <= sluice_domain::approval::request::MAX_EXPIRY_MS)
                {
                    p(
                        Some(ap.span()),
                        format!("{owner}: approval.expires_in {expires_in:?} is not a duration between 1s and 7d"),
                        sluice_core::duration::DURATION_HINT,
                    );
                    ok = false;
                }
                if r.required == Some(0) {
                    p(
                        Some(ap.span()),
                        format!("{owner}: approval.required is 0"),
                        "require at least 1 approval",
                    );
                    ok = false;
                }
                Some(NeedsApproval {
                    approvers: r.approvers.clone(),
                    required: r.required.unwrap_or(1).max(1),
                    expires_in,
                })
            }
        };
        if let Some(on) = &a.on {
            let mut errors = Vec::new();
            let m = Matchers::compile(on.get_ref(), &owner, &mut errors);
            for e in errors {
                p(e.span.or(Some(on.span())), e.message, &e.fix);
                ok = false;
            }
            on_tables.insert(name.clone(), (m, confirm.clone()));
        }
        if !signed {
            p(
                Some(a.url.span()),
                format!("{owner}: outgoing calls have no secret to be signed with"),
                "set [actions] outgoing_secret_env (or outgoing_secret_file) to a secret the internal system shares; see README \"Signed outgoing calls\"",
            );
        }
        let (Some(origin), true) = (origin, ok) else {
            continue;
        };
        actions.by_name.insert(
            name.clone(),
            Action {
                name,
                label,
                method,
                origin,
                headers,
                timeout_ms,
                users: a.users.clone(),
                groups: a.groups.clone(),
                channel_members: a.channel_members,
                approval,
                confirm,
                result,
                has_body: a.body.is_some(),
                has_result_template: a.result_template.is_some(),
            },
        );
    }
    let buttons = actions.buttons(&on_tables);
    (Arc::new(actions), buttons)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{errors, parse};

    const SIGNED: &str = "[actions]\noutgoing_secret_env = \"OUT\"\n";

    /// The example of issue 12, as written (its secret file aside: the test reads the secret from the environment).
    #[test]
    fn the_issue_12_example_parses_as_written() {
        let text = r#"
[actions]
command = "/ops"
outgoing_secret_env = "OUT"
[[action]]
name = "deploy"
label = "Deploy"
method = "POST"
url = "https://deployer.internal:8443/deploy"
body = '{"service": "{{ args.service }}", "env": "{{ args.env }}", "by": "{{ user.id }}"}'
users = ["U0001", "U0002"]
"#;
        let cfg = parse(text).unwrap_or_else(|p| panic!("{p:?}"));
        let a = cfg.action_defs.get("deploy").expect("the deploy action");
        assert_eq!((a.label.as_str(), a.method.as_str()), ("Deploy", "POST"));
        assert_eq!(a.origin.to_string(), "https://deployer.internal:8443");
        assert_eq!(a.users, ["U0001", "U0002"]);
        let ctx =
            json!({"args": {"service": "checkout", "env": "st\"aging"}, "user": {"id": "U0001"}});
        let r = cfg.action_defs.request(a, &ctx).unwrap();
        assert_eq!(
            r.body,
            json!({"service": "checkout", "env": "st\"aging", "by": "U0001"}),
            "a quote in a value stays inside its string"
        );
    }

    /// The README's example under "Internal actions" parses as written (its secret file aside).
    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../../../README.md");
        let section = &readme[readme.find("### Internal actions").expect("the section")..];
        let start = section.find("```toml\n").expect("its example") + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").expect("its end")];
        let text = example.replace(
            "outgoing_secret_file = \"/etc/sluice/outgoing-secret\"",
            "outgoing_secret_env = \"OUT\"",
        );
        let cfg = parse(&text).unwrap_or_else(|p| panic!("{p:#?}"));
        let rollback = cfg.action_defs.get("rollback").expect("rollback");
        assert_eq!(rollback.timeout_ms, 10_000);
        assert_eq!(rollback.groups, ["S0DEPLOYERS"]);
        assert!(cfg.action_defs.get("deploy").is_some());
    }

    #[test]
    fn three_problems_are_reported_at_once_each_with_its_line() {
        let text = format!(
            "{SIGNED}\
[[action]]
name = \"deploy\"
url = \"https://deployer.internal/deploy\"
body = '{{\"service\": \"{{{{ args.service \"}}'
[[action]]
name = \"deploy\"
url = \"https://deployer.internal/again\"
[[action]]
name = \"restart\"
url = \"ftp://ops.internal/restart\"
"
        );
        let found = errors(&text);
        let want = [
            (6, "body template", "minijinja"),
            (8, "used twice", "own name"),
            (12, "not an http or https URL", "http or https"),
        ];
        for (line, message, fix) in want {
            assert!(
                found
                    .iter()
                    .any(|(l, m, f)| *l == Some(line) && m.contains(message) && f.contains(fix)),
                "line {line} {message:?}: {found:#?}"
            );
        }
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn each_bad_field_is_refused_with_its_line_and_fix() {
        let table = [
            // (the [[action]] table after its name line, line, message contains, fix contains)
            ("url = \"https://{{ event.service }}.internal/x\"\n", 5, "is templated", "only the path"),
            ("url = \"https://d.internal/x\"\nheaders = { Authorization = \"Bearer abc\" }\n", 6, "inline", "env ="),
            ("url = \"https://d.internal/x\"\nheaders = { Authorization = { env = \"NOPE\" } }\n", 6, "not set", "export"),
            ("url = \"https://d.internal/x\"\ntimeout = \"ten seconds\"\n", 6, "timeout", "10s"),
            ("url = \"https://d.internal/x\"\nresult = \"channel\"\n", 6, "not a place", "ephemeral"),
            ("url = \"https://d.internal/x\"\nmethod = \"BREW\"\n", 6, "not supported", "POST"),
            ("url = \"https://d.internal/x\"\non = { severity = \"dire\" }\n", 6, "dire", ""),
            ("url = \"https://d.internal/x\"\nresult_template = \"{% if %}\"\n", 6, "result_template", "minijinja"),
            ("url = \"https://d.internal/x\"\napproval = { approvers = {} }\n", 6, "no approvers", "users"),
        ];
        for (rest, line, message, fix) in table {
            let text = format!("{SIGNED}[[action]]\nname = \"a\"\n{rest}");
            let found = errors(&text);
            assert!(
                found
                    .iter()
                    .any(|(l, m, f)| *l == Some(line) && m.contains(message) && f.contains(fix)),
                "{rest:?}: {found:#?}"
            );
        }
        // Unknown keys are refused by name.
        let found = errors(&format!(
            "{SIGNED}[[action]]\nname = \"a\"\nurl = \"https://d.internal/\"\nlables = \"x\"\n"
        ));
        assert!(
            found.iter().any(|(_, m, _)| m.contains("lables")),
            "{found:#?}"
        );
        // Without a signing secret, an action cannot call anything.
        let found = errors("[[action]]\nname = \"a\"\nurl = \"https://d.internal/x\"\n");
        assert!(
            found
                .iter()
                .any(|(l, m, _)| *l == Some(3) && m.contains("no secret")),
            "{found:#?}"
        );
    }

    #[test]
    fn headers_come_from_the_environment_and_buttons_from_on() {
        let text = format!(
            "{SIGNED}[[action]]\nname = \"rollback\"\nlabel = \"Rollback\"\nurl = \"https://deployer.internal:8443/rollback/{{{{ event.service }}}}\"\n\
             headers = {{ Authorization = {{ env = \"DEPLOYER_TOKEN\", prefix = \"Bearer \" }}, X-Source = \"sluice\" }}\n\
             on = {{ kind = \"deployment\" }}\nconfirm = {{ title = \"Roll back?\", text = \"Sure?\" }}\ntimeout = \"2s\"\nresult = \"ephemeral\"\n"
        );
        let cfg = parse(&text).unwrap_or_else(|p| panic!("{p:?}"));
        let a = cfg.action_defs.get("rollback").unwrap();
        let headers: Vec<(&str, &str)> = a
            .headers
            .iter()
            .map(|(h, v)| (h.as_str(), v.expose()))
            .collect();
        assert_eq!(
            headers,
            [("Authorization", "Bearer tok-123"), ("X-Source", "sluice")]
        );
        assert_eq!(a.timeout_ms, 2000);
        assert_eq!(a.result, super::ResultTo::Ephemeral);
        let r = cfg
            .action_defs
            .request(a, &json!({"event": {"service": "checkout"}}))
            .unwrap();
        assert_eq!(r.url, "https://deployer.internal:8443/rollback/checkout");
        assert!(cfg
            .approvals
            .allowed()
            .iter()
            .any(|o| o.to_string() == "https://deployer.internal:8443"));
    }

    /// An action's url on a link-local or cloud metadata address is refused at start with its line, however the
    /// address is written, unless `[actions] allow_link_local` lists it.
    #[test]
    fn an_action_on_a_metadata_or_link_local_address_is_refused_unless_listed() {
        for host in [
            "169.254.169.254",
            "169.254.10.1",
            "[fe80::1]",
            "[::ffff:169.254.169.254]",
            "[fd00:ec2::254]",
        ] {
            let text = format!(
                "{SIGNED}[[action]]\nname = \"creds\"\nurl = \"http://{host}/latest/meta-data\"\n"
            );
            let errs = errors(&text);
            assert_eq!(errs.len(), 1, "{host}: {errs:?}");
            let (line, message, fix) = &errs[0];
            assert_eq!(*line, Some(5), "{host}: {message}");
            assert!(
                message.contains("link-local or cloud metadata address"),
                "{host}: {message}"
            );
            assert!(fix.contains("allow_link_local"), "{fix}");
        }
        // Listed: intended, accepted; a private address is not link-local.
        let listed = format!(
            "{SIGNED}allow_link_local = [\"169.254.169.254\"]\n[[action]]\nname = \"creds\"\nurl = \"http://169.254.169.254/x\"\n"
        );
        assert_eq!(errors(&listed), vec![]);
        let private =
            format!("{SIGNED}[[action]]\nname = \"ok\"\nurl = \"http://10.0.0.7:8080/x\"\n");
        assert_eq!(errors(&private), vec![]);
    }
}
