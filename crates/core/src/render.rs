//! Rendering: an [`Event`] becomes the arguments of a `chat.postMessage` call
//! (`{"channel", "text", "blocks", "metadata"}`). The principal type is [`Renderer`], built
//! once from the user templates in the config and asked [`Renderer::render`] per delivery.
//!
//! **Built-in templates.** `alert` (severity emoji and title, the text, service/environment/
//! source/severity/status and labels as fields, links as buttons, Acknowledge/Resolve buttons
//! while firing, a context line `event <id> · source · time`; a resolved alert shows a green
//! check and "Resolved"), `deployment` (outcome from severity: `critical`/`error` failed,
//! `warning` succeeded with warnings, `info`/`ok` succeeded), `generic` (text and fields, links
//! in a context line) and `auto`, which picks by [`Kind`]: alert → `alert`, deployment →
//! `deployment`, message → `generic`.
//!
//! **Safety.** Every string that came from the event (title, text, fields, labels, link
//! titles, service, …) is mrkdwn-escaped (`&`, `<`, `>`), so `<!channel>` in a title is shown
//! as text and pings nobody. Everything is cut to Slack's limits ([`sluice_slack_wire::limits`])
//! with an ellipsis, never in the middle of an escape. The message always has a plain `text`
//! fallback (`[CRITICAL] checkout: DB down`) and `metadata` tagging it with the event id.
//!
//! **User templates** are [minijinja](https://docs.rs/minijinja) templates that produce JSON:
//! either a blocks array or an object `{"text": …, "blocks": […]}` (either key may be left
//! out; a missing `text` gets the built-in fallback). Output is auto-escaped **as JSON**:
//! `{{ expr }}` prints the JSON encoding of the value, quotes included, so write
//! `"text": {{ event.title }}`, not `"text": "{{ event.title }}"`; build strings inside the
//! expression: `{{ "*" ~ event.title ~ "*" }}`. Because of this no event value can break out
//! of a JSON string (`|safe` turns the protection off; don't use it on event data). The
//! context is `event` (all strings already mrkdwn-escaped; `labels` a map, `fields` and
//! `links` lists of `{title, value}` / `{title, url}`, `occurred_at` RFC 3339 or none),
//! `event_id`, `channel`, `template`, `count`, `now` (RFC 3339), `emoji` (for the severity)
//! and `fallback_text`. Printing an undefined value is an error (test with `{% if %}` or use
//! `|default`). Syntax errors are reported by [`Renderer::new`]; [`Renderer::check`]
//! renders every user template against a sample event and reports what fails.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{json, Map, Value};
use sluice_slack_wire::blocks::escape_mrkdwn as escape;
/// Cuts text to a limit, ending in `…`, never inside an escape or a link: the one truncate, `sluice-slack-wire`'s.
use sluice_slack_wire::blocks::truncate_mrkdwn as fit;
use sluice_slack_wire::limits;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::config_error::ConfigError;
use crate::event::{Event, Field, Kind, Link, Severity, Status};

/// The templates every [`Renderer`] knows.
pub const BUILTIN_TEMPLATES: [&str; 4] = ["auto", "alert", "deployment", "generic"];
/// `metadata.event_type` of every message Sluice posts.
pub const METADATA_EVENT_TYPE: &str = "sluice_event";
/// `action_id` of the Acknowledge button on a firing alert (its `value` is the event id).
pub const ACTION_ACK: &str = "sluice_ack";
/// `action_id` of the Resolve button on a firing alert (its `value` is the event id).
pub const ACTION_RESOLVE: &str = "sluice_resolve";
/// `action_id` of the Escalate button on a firing alert (its `value` is the event id); offered only when the
/// renderer was told escalation has somewhere to go ([`Renderer::offer_escalate`]).
pub const ACTION_ESCALATE: &str = "sluice_escalate";
/// `action_id` of the "Silence 1 h" button on a firing alert (its `value` is the event id).
pub const ACTION_SILENCE: &str = "sluice_silence";
/// `block_id` of the block holding the alert action buttons.
pub const ACTIONS_BLOCK_ID: &str = "sluice_actions";
/// The block of `[[action]]` buttons ([`ActionButton`]), apart from the alert's own so that a decision recorded on
/// the alert never removes one.
pub const RUN_BLOCK_ID: &str = "sluice_run";
/// The `action_id` prefix of an `[[action]]` button: `sluice_run:<action name>`.
pub const RUN_ACTION_PREFIX: &str = "sluice_run:";

/// An `[[action]]`'s button, shown on every card whose event its `on` table matches. Its value is the event id,
/// which is how a click finds the event the action runs on.
#[derive(Debug, Clone)]
pub struct ActionButton {
    pub name: String,
    pub label: String,
    pub on: crate::route::Matchers,
    /// Slack's `confirm` object for the button, when the action asks for a confirmation.
    pub confirm: Option<Value>,
}

/// Per-delivery facts the event itself does not carry.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// Sluice's id for the event; shown on the card and put in `metadata` and button values.
    pub event_id: &'a str,
    pub channel: &'a str,
    /// A name from [`Renderer::template_names`].
    pub template: &'a str,
    /// How many events this message stands for (≥ 1; more when duplicates were merged).
    pub count: u32,
    /// Used when the event has no `occurred_at`.
    pub now: OffsetDateTime,
}

/// Where a deduplicated alert stands, for its living card and thread replies ([`Renderer::render_alert`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLife {
    /// How many events the alert stands for, the first included.
    pub count: u32,
    pub first_seen: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    /// `None` while it fires.
    pub resolved_at: Option<OffsetDateTime>,
}

/// `10:42 UTC`.
pub fn hh_mm(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!("{:02}:{:02} UTC", t.hour(), t.minute())
}

/// `45s`, `12m`, `12m 5s`, `3h 4m`, `2d 1h`: how long an alert lasted, to the precision a reader cares about.
pub fn human_duration(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (days, hours, mins, secs) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, 0) => format!("{m}m"),
        (0, 0, m, s) => format!("{m}m {s}s"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d {h}h"),
    }
}

fn life_line(life: &AlertLife) -> String {
    match life.resolved_at {
        None => format!("×{} · last {}", life.count, hh_mm(life.last_seen)),
        Some(at) => format!(
            "Resolved {} · lasted {} · ×{}",
            hh_mm(at),
            human_duration(at - life.first_seen),
            life.count
        ),
    }
}

/// The thread reply when an alert resolves: `✅ Resolved at 10:52 UTC after 12m (×14 events)`.
pub fn resolved_reply(e: &Event, life: &AlertLife) -> String {
    let at = life.resolved_at.unwrap_or(life.last_seen);
    format!(
        ":white_check_mark: *Resolved* at {} after {} (×{} {}): {}",
        hh_mm(at),
        human_duration(at - life.first_seen),
        life.count,
        if life.count == 1 { "event" } else { "events" },
        esc_fit(&e.title, 1000)
    )
}

/// The thread reply when a resolved alert fires again within the dedup window.
pub fn refire_reply(e: &Event, life: &AlertLife) -> String {
    format!(
        "{} *Firing again* at {} (×{} in all): {}",
        severity_emoji(e.severity),
        hh_mm(life.last_seen),
        life.count,
        esc_fit(&e.title, 1000)
    )
}

/// Why an event could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unknown template \"{name}\"; known templates are {known}")]
    UnknownTemplate { name: String, known: String },
    #[error("template \"{name}\" failed: {message}")]
    Template { name: String, message: String },
    #[error("template \"{name}\" did not produce valid JSON: {error}")]
    InvalidJson { name: String, error: String },
    #[error("template \"{name}\" produced {found}; expected a blocks array or an object with \"text\" and/or \"blocks\" (an array)")]
    Shape { name: String, found: String },
}

/// Renders events with the built-in cards and the user's templates.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    user: BTreeSet<String>,
    /// Alert cards carry an Escalate button.
    escalate: bool,
    /// `[[action]]` buttons, in the order configured.
    buttons: Vec<ActionButton>,
}

impl Renderer {
    /// Compiles the user templates (name → minijinja source). Names may not reuse a
    /// built-in name; every syntax error is reported, with its line.
    pub fn new(user_templates: &BTreeMap<String, String>) -> Result<Renderer, Vec<ConfigError>> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        let mut errors = Vec::new();
        for (name, source) in user_templates {
            if BUILTIN_TEMPLATES.contains(&name.as_str()) {
                errors.push(ConfigError {
                    span: None,
                    message: format!("template name \"{name}\" is the name of a built-in template"),
                    fix: format!(
                        "choose another name; {} are built in",
                        BUILTIN_TEMPLATES.join(", ")
                    ),
                });
                continue;
            }
            if name.trim().is_empty() {
                errors.push(ConfigError {
                    span: None,
                    message: "a template has an empty name".to_owned(),
                    fix: "give every template a name, e.g. [templates] oncall = '''…'''".to_owned(),
                });
                continue;
            }
            if let Err(e) = env.add_template_owned(name.clone(), source.clone()) {
                let line = e
                    .line()
                    .map(|l| format!(" on line {l}"))
                    .unwrap_or_default();
                errors.push(ConfigError {
                    span: None,
                    message: format!(
                        "template \"{name}\" has a syntax error{line}: {}",
                        e.detail().unwrap_or("invalid syntax")
                    ),
                    fix: "correct the template (minijinja/Jinja2 syntax)".to_owned(),
                });
            }
        }
        if errors.is_empty() {
            Ok(Renderer {
                env,
                user: user_templates.keys().cloned().collect(),
                escalate: false,
                buttons: Vec::new(),
            })
        } else {
            Err(errors)
        }
    }

    /// Alert cards offer an Escalate button (off by default: escalating needs a user group or channel to go to).
    pub fn offer_escalate(mut self, yes: bool) -> Renderer {
        self.escalate = yes;
        self
    }

    /// Cards whose event an `[[action]]`'s `on` table matches carry its button.
    pub fn with_action_buttons(mut self, buttons: Vec<ActionButton>) -> Renderer {
        self.buttons = buttons;
        self
    }

    /// The `[[action]]` buttons for event `e` (its id `event_id`), as one actions block, if any applies.
    pub fn action_block(&self, e: &Event, event_id: &str) -> Option<Value> {
        let value = fit(event_id, limits::BUTTON_VALUE);
        let elements: Vec<Value> = self
            .buttons
            .iter()
            .filter(|b| b.on.matches(e))
            .take(limits::ACTIONS_ELEMENTS)
            .map(|b| {
                let mut button = json!({
                    "type": "button",
                    "text": plain(fit(&b.label, limits::BUTTON_TEXT)),
                    "action_id": format!("{RUN_ACTION_PREFIX}{}", b.name),
                    "value": value,
                });
                if let Some(c) = &b.confirm {
                    button["confirm"] = c.clone();
                }
                button
            })
            .collect();
        (!elements.is_empty())
            .then(|| json!({"type": "actions", "block_id": RUN_BLOCK_ID, "elements": elements}))
    }

    /// The built-in names and the user templates' names: what routing rules may refer to.
    pub fn template_names(&self) -> BTreeSet<String> {
        BUILTIN_TEMPLATES
            .iter()
            .map(|s| s.to_string())
            .chain(self.user.iter().cloned())
            .collect()
    }

    /// Warnings: each user template that fails, or produces something that is not a message,
    /// when rendered for a sample event with every field set.
    pub fn check(&self) -> Vec<ConfigError> {
        let sample = sample_event();
        let now = OffsetDateTime::UNIX_EPOCH;
        self.user
            .iter()
            .filter_map(|name| {
                let ctx = RenderContext {
                    event_id: "sample",
                    channel: "sample",
                    template: name,
                    count: 1,
                    now,
                };
                self.render(&sample, &ctx).err().map(|e| ConfigError {
                    span: None,
                    message: format!("for a sample event, {e}"),
                    fix: "correct the template; see the template context in the docs".to_owned(),
                })
            })
            .collect()
    }

    /// The `chat.postMessage` arguments for `e`: `{"channel", "text", "blocks", "metadata"}`.
    pub fn render(&self, e: &Event, ctx: &RenderContext) -> Result<Value, RenderError> {
        let card = match ctx.template {
            "auto" => match e.kind {
                Kind::Alert => alert(e, ctx, self.escalate),
                Kind::Deployment => deployment(e, ctx),
                Kind::Message => generic(e, ctx),
            },
            "alert" => alert(e, ctx, self.escalate),
            "deployment" => deployment(e, ctx),
            "generic" => generic(e, ctx),
            name if self.user.contains(name) => self.user_template(name, e, ctx)?,
            name => {
                return Err(RenderError::UnknownTemplate {
                    name: name.to_owned(),
                    known: self
                        .template_names()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        };
        let mut card = card;
        if let Some(block) = self.action_block(e, ctx.event_id) {
            // Before the context line of a built-in card, at the end of a user template's.
            let at = match card.blocks.last() {
                Some(b) if b["type"] == "context" => card.blocks.len() - 1,
                _ => card.blocks.len(),
            };
            card.blocks.insert(at, block);
        }
        Ok(json!({
            "channel": ctx.channel,
            "text": fit(&card.text, limits::MESSAGE_TEXT_SOFT),
            "blocks": card.blocks,
            "metadata": metadata(e, ctx),
        }))
    }

    /// The card of a deduplicated alert as it stands now — the *living* message: [`Renderer::render`] with the
    /// alert's count (the event shown resolved once the alert is), plus a context line saying how it lives:
    /// `×14 · last 10:42 UTC` while it fires, `Resolved 10:52 UTC · lasted 12m · ×14` once resolved.
    /// Pure: the dispatcher calls it at send time with what the store holds then.
    pub fn render_alert(
        &self,
        e: &Event,
        ctx: &RenderContext,
        life: &AlertLife,
    ) -> Result<Value, RenderError> {
        let mut e = e.clone();
        if life.resolved_at.is_some() {
            e.status = Status::Resolved;
        }
        let ctx = RenderContext {
            count: life.count.max(1),
            ..*ctx
        };
        let mut args = self.render(&e, &ctx)?;
        if let Some(blocks) = args["blocks"].as_array_mut() {
            blocks.push(context(vec![life_line(life)]));
        }
        Ok(args)
    }

    fn user_template(
        &self,
        name: &str,
        e: &Event,
        ctx: &RenderContext,
    ) -> Result<Card, RenderError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|err| RenderError::Template {
                name: name.to_owned(),
                message: err.to_string(),
            })?;
        let out =
            template
                .render(template_context(e, ctx))
                .map_err(|err| RenderError::Template {
                    name: name.to_owned(),
                    message: describe(&err),
                })?;
        let value: Value = serde_json::from_str(&out).map_err(|err| RenderError::InvalidJson {
            name: name.to_owned(),
            error: err.to_string(),
        })?;
        let shape = |found: &str| RenderError::Shape {
            name: name.to_owned(),
            found: found.to_owned(),
        };
        let (text, blocks) = match value {
            Value::Array(blocks) => (None, blocks),
            Value::Object(mut obj) => {
                if let Some(k) = obj.keys().find(|k| *k != "text" && *k != "blocks") {
                    return Err(shape(&format!("an object with the key \"{k}\"")));
                }
                let text = match obj.remove("text") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s),
                    Some(_) => return Err(shape("a \"text\" that is not a string")),
                };
                let blocks = match obj.remove("blocks") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(b)) => b,
                    Some(_) => return Err(shape("\"blocks\" that is not an array")),
                };
                if text.is_none() && blocks.is_empty() {
                    return Err(shape("an object with neither \"text\" nor \"blocks\""));
                }
                (text, blocks)
            }
            other => return Err(shape(json_type(&other))),
        };
        let mut blocks = blocks;
        blocks.truncate(limits::MESSAGE_BLOCKS);
        Ok(Card {
            text: text.unwrap_or_else(|| fallback_text(e, ctx)),
            blocks,
        })
    }
}

/// A minijinja error with its line and the chain of causes, in one line.
fn describe(err: &minijinja::Error) -> String {
    let mut s = match (err.detail(), err.line()) {
        (Some(d), Some(l)) => format!("{} on line {l}: {d}", err.kind()),
        (Some(d), None) => format!("{}: {d}", err.kind()),
        (None, _) => err.to_string(),
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A rendered message before the envelope (channel, metadata) is added.
struct Card {
    text: String,
    blocks: Vec<Value>,
}

/// Escapes then fits.
fn esc_fit(s: &str, max: usize) -> String {
    fit(&escape(s), max)
}

fn plain(text: String) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn header(text: String) -> Value {
    json!({"type": "header", "text": plain(fit(&text, limits::HEADER_TEXT))})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": mrkdwn(fit(&text, limits::SECTION_TEXT))})
}

fn context(elements: Vec<String>) -> Value {
    let elements: Vec<Value> = elements
        .into_iter()
        .take(limits::CONTEXT_ELEMENTS)
        .map(|t| mrkdwn(fit(&t, limits::CONTEXT_TEXT)))
        .collect();
    json!({"type": "context", "elements": elements})
}

/// One section field: `*title*` over the value, both escaped, cut to the field limit.
fn field_text(title: &str, value: &str) -> String {
    let title = format!("*{}*\n", esc_fit(title, 200));
    let room = limits::SECTION_FIELD_TEXT - title.chars().count();
    let value = if value.is_empty() {
        "–".to_owned()
    } else {
        esc_fit(value, room)
    };
    format!("{title}{value}")
}

fn fields_section(fields: Vec<String>) -> Value {
    let fields: Vec<Value> = fields.into_iter().map(mrkdwn).collect();
    json!({"type": "section", "fields": fields})
}

/// How many sections of event fields and labels a card shows before summarising the rest.
const EXTRA_FIELD_SECTIONS: usize = 2;

/// The event's own fields, then its labels, as field sections of up to ten, and a context
/// line counting what did not fit.
fn extra_fields(fields: &[Field], labels: &BTreeMap<String, String>, blocks: &mut Vec<Value>) {
    let all: Vec<String> = fields
        .iter()
        .map(|f| field_text(&f.title, &f.value))
        .chain(labels.iter().map(|(k, v)| field_text(k, v)))
        .collect();
    let shown = limits::SECTION_FIELDS * EXTRA_FIELD_SECTIONS;
    for chunk in all
        .chunks(limits::SECTION_FIELDS)
        .take(EXTRA_FIELD_SECTIONS)
    {
        blocks.push(fields_section(chunk.to_vec()));
    }
    if all.len() > shown {
        blocks.push(context(vec![format!(
            "…and {} more fields and labels not shown",
            all.len() - shown
        )]));
    }
}

fn link_buttons(links: &[Link]) -> Option<Value> {
    if links.is_empty() {
        return None;
    }
    let elements: Vec<Value> = links
        .iter()
        .take(limits::ACTIONS_ELEMENTS)
        .enumerate()
        .map(|(i, l)| {
            json!({
                "type": "button",
                "text": plain(esc_fit(&l.title, limits::BUTTON_TEXT)),
                "url": l.url,
                "action_id": format!("sluice_link_{i}"),
            })
        })
        .collect();
    Some(json!({"type": "actions", "block_id": "sluice_links", "elements": elements}))
}

/// Links as one mrkdwn context line, as many as fit.
fn link_line(links: &[Link]) -> Option<String> {
    let mut line = String::new();
    for l in links {
        // `|` and `>` end the URL part of a mrkdwn link; URLs were normalised on the way in
        // (so `>` is already encoded), `|` may remain in a query.
        let link = format!(
            "<{}|{}>",
            l.url.replace('|', "%7C"),
            esc_fit(&l.title, limits::BUTTON_TEXT)
        );
        let sep = if line.is_empty() { "" } else { " · " };
        if line.chars().count() + sep.len() + link.chars().count() > limits::CONTEXT_TEXT {
            break;
        }
        line.push_str(sep);
        line.push_str(&link);
    }
    (!line.is_empty()).then_some(line)
}

/// 0 for the most severe.
fn severity_rank(s: Severity) -> usize {
    Severity::ALL
        .iter()
        .position(|x| *x == s)
        .unwrap_or(usize::MAX)
}

fn severity_emoji(s: Severity) -> &'static str {
    match s {
        Severity::Critical => ":rotating_light:",
        Severity::Error => ":red_circle:",
        Severity::Warning => ":warning:",
        Severity::Info => ":information_source:",
        Severity::Ok => ":white_check_mark:",
    }
}

fn emoji(e: &Event) -> &'static str {
    match (e.kind, e.status) {
        (Kind::Deployment, _) => deploy_outcome(e).0,
        (_, Status::Resolved) => ":white_check_mark:",
        (_, Status::Firing) => severity_emoji(e.severity),
    }
}

/// A deployment that was canceled (its `status` or `state` label says so, as GitLab's and GitHub's adapters set
/// them): neither a success nor a failure.
fn deploy_canceled(e: &Event) -> bool {
    ["status", "state"].iter().any(|l| {
        matches!(
            e.labels.get(*l).map(String::as_str),
            Some("canceled" | "cancelled")
        )
    })
}

/// (emoji, outcome word) of a deployment, from its severity (a canceled one says so).
fn deploy_outcome(e: &Event) -> (&'static str, &'static str) {
    if deploy_canceled(e) {
        return (":no_entry_sign:", "Canceled");
    }
    match e.severity {
        Severity::Critical | Severity::Error => (":x:", "Failed"),
        Severity::Warning => (":warning:", "Succeeded with warnings"),
        Severity::Info | Severity::Ok => (":white_check_mark:", "Succeeded"),
    }
}

fn times(count: u32) -> String {
    if count > 1 {
        format!(" (×{count})")
    } else {
        String::new()
    }
}

/// The notification text: `[CRITICAL] checkout: DB down`, escaped. Messages (kind
/// `message`) have no tag: `backup: Nightly backup finished`.
fn fallback_text(e: &Event, ctx: &RenderContext) -> String {
    let tag = match (e.kind, e.status) {
        (Kind::Message, _) => String::new(),
        (Kind::Deployment, _) if deploy_canceled(e) => "[DEPLOY CANCELED] ".to_owned(),
        (Kind::Deployment, _) => match e.severity {
            Severity::Critical | Severity::Error => "[DEPLOY FAILED] ".to_owned(),
            _ => "[DEPLOYED] ".to_owned(),
        },
        (Kind::Alert, Status::Resolved) => "[RESOLVED] ".to_owned(),
        (Kind::Alert, Status::Firing) => format!("[{}] ", e.severity.as_str().to_uppercase()),
    };
    let service = if e.service.is_empty() {
        String::new()
    } else {
        format!("{}: ", escape(&e.service))
    };
    let suffix = times(ctx.count);
    let head = format!("{tag}{service}");
    let room =
        limits::MESSAGE_TEXT_SOFT.saturating_sub(head.chars().count() + suffix.chars().count());
    format!("{head}{}{suffix}", esc_fit(&e.title, room))
}

/// `event <id> · source · <time>`; the time is Slack's date markup, shown in the reader's
/// time zone, with a UTC fallback.
fn context_line(e: &Event, ctx: &RenderContext) -> Value {
    let at = e.occurred_at.unwrap_or(ctx.now).to_offset(UtcOffset::UTC);
    let fallback = at
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    let when = format!(
        "<!date^{}^{{date_short_pretty}} at {{time}}|{fallback}>",
        at.unix_timestamp()
    );
    let mut parts = vec![format!(
        "event `{}` · {} · {when}",
        esc_fit(ctx.event_id, 100),
        esc_fit(&e.source, 200)
    )];
    if ctx.count > 1 {
        parts.push(format!("×{} occurrences", ctx.count));
    }
    context(parts)
}

fn title_header(prefix: &str, e: &Event, ctx: &RenderContext) -> Value {
    let suffix = times(ctx.count);
    let room = limits::HEADER_TEXT - prefix.chars().count() - suffix.chars().count();
    header(format!("{prefix}{}{suffix}", esc_fit(&e.title, room)))
}

fn alert(e: &Event, ctx: &RenderContext, escalate: bool) -> Card {
    let resolved = e.status == Status::Resolved;
    let prefix = if resolved {
        ":white_check_mark: Resolved: ".to_owned()
    } else {
        format!("{} ", severity_emoji(e.severity))
    };
    let mut blocks = vec![title_header(&prefix, e, ctx)];
    if !e.text.is_empty() {
        blocks.push(section(esc_fit(&e.text, limits::SECTION_TEXT)));
    }
    let mut core = Vec::new();
    if !e.service.is_empty() {
        core.push(field_text("Service", &e.service));
    }
    if !e.environment.is_empty() {
        core.push(field_text("Environment", &e.environment));
    }
    core.push(field_text("Source", &e.source));
    core.push(field_text("Severity", e.severity.as_str()));
    core.push(field_text(
        "Status",
        if resolved { "Resolved" } else { "Firing" },
    ));
    blocks.push(fields_section(core));
    extra_fields(&e.fields, &e.labels, &mut blocks);
    blocks.extend(link_buttons(&e.links));
    if !resolved {
        let value = fit(ctx.event_id, limits::BUTTON_VALUE);
        let button = |label: &str, action_id: &str| json!({"type": "button", "text": plain(label.into()), "action_id": action_id, "value": value});
        let mut elements = vec![button("Acknowledge", ACTION_ACK)];
        elements[0]["style"] = json!("primary");
        if escalate {
            elements.push(button("Escalate", ACTION_ESCALATE));
        }
        elements.push(button("Silence 1 h", ACTION_SILENCE));
        elements.push(button("Resolve", ACTION_RESOLVE));
        blocks.push(json!({
            "type": "actions",
            "block_id": ACTIONS_BLOCK_ID,
            "elements": elements,
        }));
    }
    blocks.push(context_line(e, ctx));
    Card {
        text: fallback_text(e, ctx),
        blocks,
    }
}

fn deployment(e: &Event, ctx: &RenderContext) -> Card {
    let (icon, outcome) = deploy_outcome(e);
    let mut blocks = vec![title_header(&format!("{icon} "), e, ctx)];
    let mut core = Vec::new();
    if !e.service.is_empty() {
        core.push(field_text("Service", &e.service));
    }
    if !e.environment.is_empty() {
        core.push(field_text("Environment", &e.environment));
    }
    core.push(field_text("Outcome", outcome));
    core.push(field_text("Source", &e.source));
    blocks.push(fields_section(core));
    if !e.text.is_empty() {
        blocks.push(section(esc_fit(&e.text, limits::SECTION_TEXT)));
    }
    extra_fields(&e.fields, &e.labels, &mut blocks);
    blocks.extend(link_buttons(&e.links));
    blocks.push(context_line(e, ctx));
    Card {
        text: fallback_text(e, ctx),
        blocks,
    }
}

fn generic(e: &Event, ctx: &RenderContext) -> Card {
    let title = format!("*{}*{}", esc_fit(&e.title, 1000), times(ctx.count));
    let body = if e.text.is_empty() {
        title
    } else {
        let room = limits::SECTION_TEXT - title.chars().count() - 1;
        format!("{title}\n{}", esc_fit(&e.text, room))
    };
    let mut blocks = vec![section(body)];
    extra_fields(&e.fields, &e.labels, &mut blocks);
    if let Some(line) = link_line(&e.links) {
        blocks.push(context(vec![line]));
    }
    blocks.push(context_line(e, ctx));
    Card {
        text: fallback_text(e, ctx),
        blocks,
    }
}

fn metadata(e: &Event, ctx: &RenderContext) -> Value {
    let mut payload = Map::new();
    payload.insert("event_id".into(), ctx.event_id.into());
    payload.insert("kind".into(), e.kind.as_str().into());
    payload.insert("severity".into(), e.severity.as_str().into());
    payload.insert("status".into(), e.status.as_str().into());
    payload.insert("source".into(), e.source.as_str().into());
    payload.insert("service".into(), e.service.as_str().into());
    payload.insert("environment".into(), e.environment.as_str().into());
    payload.insert("template".into(), ctx.template.into());
    payload.insert("count".into(), ctx.count.into());
    if let Some(k) = &e.dedup_key {
        payload.insert("dedup_key".into(), k.as_str().into());
    }
    json!({"event_type": METADATA_EVENT_TYPE, "event_payload": payload})
}

/// What a user template sees; every event string escaped.
fn template_context(e: &Event, ctx: &RenderContext) -> Value {
    let rfc = |t: OffsetDateTime| t.format(&Rfc3339).ok();
    json!({
        "event": {
            "title": escape(&e.title),
            "text": escape(&e.text),
            "severity": e.severity.as_str(),
            "status": e.status.as_str(),
            "kind": e.kind.as_str(),
            "source": escape(&e.source),
            "service": escape(&e.service),
            "environment": escape(&e.environment),
            "labels": e.labels.iter().map(|(k, v)| (escape(k), Value::String(escape(v)))).collect::<Map<_, _>>(),
            "fields": e.fields.iter().map(|f| json!({"title": escape(&f.title), "value": escape(&f.value)})).collect::<Vec<_>>(),
            "links": e.links.iter().map(|l| json!({"title": escape(&l.title), "url": l.url})).collect::<Vec<_>>(),
            "dedup_key": e.dedup_key.as_deref().map(escape),
            "occurred_at": e.occurred_at.and_then(rfc),
        },
        "event_id": ctx.event_id,
        "channel": ctx.channel,
        "template": ctx.template,
        "count": ctx.count,
        "now": rfc(ctx.now),
        "emoji": emoji(e),
        "fallback_text": fallback_text(e, ctx),
    })
}

fn sample_event() -> Event {
    Event {
        title: "Sample: error rate above 5%".into(),
        text: "Checkout error rate is 7.2% over 5 minutes".into(),
        severity: Severity::Error,
        status: Status::Firing,
        kind: Kind::Alert,
        source: "prometheus".into(),
        service: "checkout".into(),
        environment: "production".into(),
        labels: [("team", "payments"), ("region", "eu-west-1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        fields: vec![Field {
            title: "Error rate".into(),
            value: "7.2%".into(),
        }],
        links: vec![Link {
            title: "Dashboard".into(),
            url: "https://grafana.example.com/d/checkout".into(),
        }],
        dedup_key: Some("checkout-error-rate".into()),
        occurred_at: Some(OffsetDateTime::UNIX_EPOCH),
    }
}

mod group;
pub use group::{
    group_firing_reply, group_resolved_reply, render_digest, render_group, DigestPhase, DigestView,
    GroupAlertView, GroupView, DIGEST_SERVICES, GROUP_CARD_ALERTS,
};

#[cfg(test)]
mod tests;
