//! Making any message valid before it is queued: [`fit_message`] repairs a `chat.postMessage`
//! payload so that it satisfies every limit in [`crate::limits`], [`escape_mrkdwn`] keeps text
//! from outside from pinging a channel, and [`check_message`] lists what is still wrong (the
//! tests hold `fit_message`'s output to it).
//!
//! The policy is "send something useful rather than nothing": texts are cut with an ellipsis,
//! surplus fields, elements, options and blocks are dropped (with a visible "N more blocks
//! omitted" line), duplicate ids are renamed, and only what Slack would refuse outright (a
//! block of unknown type, a section with no text, a button without a label) is removed. Each
//! change is reported as a short note for logs and metrics. Objects are reduced to the keys
//! Slack documents for them, because Slack refuses a whole message over one unknown property.
//!
//! Supported block types: section, header, divider, context, actions, image, input,
//! rich_text (passed through), markdown. Others (file, video, call) are removed: Sluice does
//! not produce them, and we cannot vouch for their shape.
//!
//! Lengths are counted in Unicode scalar values (`char`s), as the limits table states them.

use crate::limits as lim;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

/// Escapes `&`, `<` and `>` so text from outside (an alert title, a commit message) shows as
/// written: `"<!channel>"` becomes `"&lt;!channel&gt;"` and cannot ping anyone, `"<http://x|y>"`
/// cannot disguise a link.
pub fn escape_mrkdwn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts `s` to at most `max_chars` characters; when something was cut the result ends in `…`
/// (which counts toward `max_chars`). Never splits a character.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.char_indices().nth(max_chars).is_none() {
        return s.to_owned();
    }
    if max_chars == 0 {
        return String::new();
    }
    let cut = s
        .char_indices()
        .nth(max_chars - 1)
        .map_or(s.len(), |(i, _)| i);
    format!("{}…", &s[..cut])
}

/// Like [`truncate`] for mrkdwn: also backs off so the cut does not leave half a `<link|label>`
/// or half an `&amp;` entity, which Slack would show as raw markup.
pub fn truncate_mrkdwn(s: &str, max_chars: usize) -> String {
    if chars(s) <= max_chars {
        return s.to_owned();
    }
    let cut = truncate(s, max_chars);
    let Some(mut kept) = cut.strip_suffix('…') else {
        return cut;
    };
    if let Some(lt) = kept.rfind('<') {
        if !kept[lt..].contains('>') {
            kept = &kept[..lt];
        }
    }
    if let Some(amp) = kept.rfind('&') {
        // Entities Slack uses are short (&amp; &lt; &gt;); a lone '&' far back is just text.
        if !kept[amp..].contains(';') && kept.len() - amp <= 5 {
            kept = &kept[..amp];
        }
    }
    format!("{kept}…")
}

/// The first `max_chars` characters, without an ellipsis: for values and ids, which are
/// matched by code rather than read.
fn cut(s: &str, max_chars: usize) -> &str {
    s.char_indices().nth(max_chars).map_or(s, |(i, _)| &s[..i])
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Text used when a message has neither `text` nor any block to derive it from.
pub const EMPTY_MESSAGE_TEXT: &str = "New message";

/// Repairs a `chat.postMessage` payload (`{channel, text, blocks, ...}`) in place so Slack will
/// accept it and show it whole. Returns one note per change; empty when nothing was needed.
/// Never panics, whatever the JSON.
pub fn fit_message(msg: &mut Value) -> Vec<String> {
    fit_with(msg, lim::MESSAGE_TEXT_SOFT)
}

/// [`fit_message`] for a message someone else wrote and posts through Sluice (`/v1/messages`, the
/// Slack-compatible hooks): its top-level `text` is kept up to Slack's own limit
/// ([`lim::MESSAGE_TEXT_HARD`]) rather than cut where our cards aim to stay.
pub fn fit_foreign_message(msg: &mut Value) -> Vec<String> {
    fit_with(msg, lim::MESSAGE_TEXT_HARD)
}

fn fit_with(msg: &mut Value, text_limit: usize) -> Vec<String> {
    let mut f = Fitter {
        text_limit,
        ..Fitter::default()
    };
    if !msg.is_object() {
        f.note(format!(
            "message was {}, not a JSON object: replaced",
            kind_of(msg)
        ));
        *msg = Value::Object(Map::new());
    }
    let Some(obj) = msg.as_object_mut() else {
        return f.notes;
    };
    f.blocks(obj);
    f.top_level_text(obj);
    f.notes
}

/// Everything in `msg` that breaks a limit in [`crate::limits`] or that Slack would refuse.
/// Empty means the message is fine to send. Independent of [`fit_message`]'s code, so each
/// checks the other.
pub fn check_message(msg: &Value) -> Vec<String> {
    let mut c = Checker::default();
    c.message(msg);
    c.problems
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TextKind {
    /// `plain_text` only (headers, labels, button text).
    Plain,
    /// `plain_text` or `mrkdwn`.
    Any,
}

const BLOCK_KEYS: &[(&str, &[&str])] = &[
    (
        "section",
        &["type", "block_id", "text", "fields", "accessory", "expand"],
    ),
    ("header", &["type", "block_id", "text"]),
    ("divider", &["type", "block_id"]),
    ("context", &["type", "block_id", "elements"]),
    ("actions", &["type", "block_id", "elements"]),
    (
        "image",
        &[
            "type",
            "block_id",
            "image_url",
            "slack_file",
            "alt_text",
            "title",
        ],
    ),
    (
        "input",
        &[
            "type",
            "block_id",
            "label",
            "element",
            "hint",
            "optional",
            "dispatch_action",
        ],
    ),
    ("rich_text", &["type", "block_id", "elements"]),
    ("markdown", &["type", "block_id", "text"]),
];

const SELECT_KEYS: &[&str] = &[
    "type",
    "action_id",
    "placeholder",
    "confirm",
    "focus_on_load",
];
const MULTI_KEYS: &[&str] = &["max_selected_items"];

/// Element type → keys Slack documents for it (beyond [`SELECT_KEYS`] where marked).
const ELEMENT_KEYS: &[(&str, &[&str])] = &[
    (
        "button",
        &[
            "type",
            "text",
            "action_id",
            "url",
            "value",
            "style",
            "confirm",
            "accessibility_label",
        ],
    ),
    (
        "workflow_button",
        &[
            "type",
            "text",
            "workflow",
            "action_id",
            "style",
            "accessibility_label",
        ],
    ),
    ("image", &["type", "image_url", "slack_file", "alt_text"]),
    ("overflow", &["type", "action_id", "options", "confirm"]),
    (
        "checkboxes",
        &[
            "type",
            "action_id",
            "options",
            "initial_options",
            "confirm",
            "focus_on_load",
        ],
    ),
    (
        "radio_buttons",
        &[
            "type",
            "action_id",
            "options",
            "initial_option",
            "confirm",
            "focus_on_load",
        ],
    ),
    (
        "static_select",
        &["options", "option_groups", "initial_option"],
    ),
    (
        "multi_static_select",
        &["options", "option_groups", "initial_options"],
    ),
    ("external_select", &["initial_option", "min_query_length"]),
    (
        "multi_external_select",
        &["initial_options", "min_query_length"],
    ),
    ("users_select", &["initial_user"]),
    ("multi_users_select", &["initial_users"]),
    (
        "conversations_select",
        &[
            "initial_conversation",
            "default_to_current_conversation",
            "response_url_enabled",
            "filter",
        ],
    ),
    (
        "multi_conversations_select",
        &[
            "initial_conversations",
            "default_to_current_conversation",
            "filter",
        ],
    ),
    (
        "channels_select",
        &["initial_channel", "response_url_enabled"],
    ),
    ("multi_channels_select", &["initial_channels"]),
    ("datepicker", &["initial_date"]),
    ("timepicker", &["initial_time", "timezone"]),
    ("datetimepicker", &["initial_date_time"]),
    (
        "plain_text_input",
        &[
            "initial_value",
            "multiline",
            "min_length",
            "max_length",
            "dispatch_action_config",
        ],
    ),
    (
        "email_text_input",
        &["initial_value", "dispatch_action_config"],
    ),
    (
        "url_text_input",
        &["initial_value", "dispatch_action_config"],
    ),
    (
        "number_input",
        &[
            "is_decimal_allowed",
            "initial_value",
            "min_value",
            "max_value",
            "dispatch_action_config",
        ],
    ),
    (
        "rich_text_input",
        &["initial_value", "dispatch_action_config"],
    ),
];

/// Elements whose key list is [`SELECT_KEYS`] plus their own entry (and [`MULTI_KEYS`] for multi-).
fn uses_select_keys(ty: &str) -> bool {
    !matches!(
        ty,
        "button" | "workflow_button" | "image" | "overflow" | "checkboxes" | "radio_buttons"
    )
}

const SELECTS: &[&str] = &[
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
];

/// Elements allowed in an actions block.
fn in_actions(ty: &str) -> bool {
    SELECTS.contains(&ty)
        || matches!(
            ty,
            "button"
                | "workflow_button"
                | "overflow"
                | "checkboxes"
                | "radio_buttons"
                | "datepicker"
                | "timepicker"
                | "datetimepicker"
                | "rich_text_input"
        )
}

/// Elements allowed as a section's accessory.
fn in_accessory(ty: &str) -> bool {
    SELECTS.contains(&ty)
        || matches!(
            ty,
            "button"
                | "workflow_button"
                | "overflow"
                | "checkboxes"
                | "radio_buttons"
                | "datepicker"
                | "timepicker"
                | "image"
        )
}

/// Elements allowed in an input block.
fn in_input(ty: &str) -> bool {
    SELECTS.contains(&ty)
        || matches!(
            ty,
            "plain_text_input"
                | "email_text_input"
                | "url_text_input"
                | "number_input"
                | "rich_text_input"
                | "checkboxes"
                | "radio_buttons"
                | "datepicker"
                | "timepicker"
                | "datetimepicker"
        )
}

fn element_keys(ty: &str) -> Option<Vec<&'static str>> {
    let own = ELEMENT_KEYS.iter().find(|(t, _)| *t == ty)?.1;
    let mut keys = own.to_vec();
    if uses_select_keys(ty) {
        keys.extend_from_slice(SELECT_KEYS);
        if ty.starts_with("multi_") {
            keys.extend_from_slice(MULTI_KEYS);
        }
    }
    Some(keys)
}

#[derive(Default)]
struct Fitter {
    notes: Vec<String>,
    block_ids: HashSet<String>,
    action_ids: HashSet<String>,
    /// Per (is_block, id): the next suffix to try, so renaming many duplicates of one id
    /// stays linear.
    next_suffix: HashMap<(bool, String), u64>,
    markdown_used: usize,
    /// Where the top-level `text` is cut.
    text_limit: usize,
}

impl Fitter {
    fn note(&mut self, s: String) {
        self.notes.push(s);
    }

    /// Removes keys Slack does not document for this object.
    fn retain_keys(&mut self, obj: &mut Map<String, Value>, allowed: &[&str], path: &str) {
        let unknown: Vec<String> = obj
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            obj.remove(&k);
            self.note(format!("{path}: removed unknown property {k:?}"));
        }
    }

    /// Keeps `obj[key]` only if it is a boolean.
    fn bool_or_remove(&mut self, obj: &mut Map<String, Value>, key: &str, path: &str) {
        if obj.get(key).is_some_and(|v| !v.is_boolean()) {
            obj.remove(key);
            self.note(format!("{path}.{key}: not a boolean, removed"));
        }
    }

    /// Fits a text object in place. False when it is unusable (the caller removes it).
    fn text(&mut self, v: &mut Value, kind: TextKind, max: usize, path: &str) -> bool {
        let Some(obj) = v.as_object_mut() else {
            self.note(format!(
                "{path}: {} is not a text object, removed",
                kind_of(v)
            ));
            return false;
        };
        let mrkdwn = match (obj.get("type").and_then(Value::as_str), kind) {
            (Some("plain_text"), _) => false,
            (Some("mrkdwn"), TextKind::Any) => true,
            (Some("mrkdwn"), TextKind::Plain) => {
                obj.insert("type".into(), json!("plain_text"));
                self.note(format!(
                    "{path}: mrkdwn is not allowed here, made plain_text"
                ));
                false
            }
            _ => {
                self.note(format!("{path}: text object without a valid type, removed"));
                return false;
            }
        };
        let text = match obj.get("text").and_then(Value::as_str) {
            Some(t) if !t.trim().is_empty() => t,
            _ => {
                self.note(format!("{path}: empty text, removed"));
                return false;
            }
        };
        if chars(text) > max {
            let fitted = if mrkdwn {
                truncate_mrkdwn(text, max)
            } else {
                truncate(text, max)
            };
            obj.insert("text".into(), json!(fitted));
            self.note(format!("{path}: text cut to {max} characters"));
        }
        let allowed: &[&str] = if mrkdwn {
            &["type", "text", "verbatim"]
        } else {
            &["type", "text", "emoji"]
        };
        self.retain_keys(obj, allowed, path);
        self.bool_or_remove(obj, "verbatim", path);
        self.bool_or_remove(obj, "emoji", path);
        true
    }

    /// Fits `obj[key]` if present as a text object; removes it when unusable. True when a
    /// usable text remains.
    fn opt_text(
        &mut self,
        obj: &mut Map<String, Value>,
        key: &str,
        kind: TextKind,
        max: usize,
        path: &str,
    ) -> bool {
        let Some(v) = obj.get_mut(key) else {
            return false;
        };
        if self.text(v, kind, max, &format!("{path}.{key}")) {
            true
        } else {
            obj.remove(key);
            false
        }
    }

    /// Fits a plain string field: cut without ellipsis (values, ids), or removed when `drop_if_long`
    /// (URLs: a cut URL is a broken link).
    fn opt_string(
        &mut self,
        obj: &mut Map<String, Value>,
        key: &str,
        max: usize,
        drop_if_long: bool,
        path: &str,
    ) {
        let Some(v) = obj.get(key) else {
            return;
        };
        let Some(s) = v.as_str() else {
            obj.remove(key);
            self.note(format!("{path}.{key}: not a string, removed"));
            return;
        };
        if s.is_empty() {
            obj.remove(key);
            self.note(format!("{path}.{key}: empty, removed"));
        } else if chars(s) > max {
            if drop_if_long {
                obj.remove(key);
                self.note(format!(
                    "{path}.{key}: longer than {max} characters, removed"
                ));
            } else {
                let c = cut(s, max).to_owned();
                obj.insert(key.into(), json!(c));
                self.note(format!("{path}.{key}: cut to {max} characters"));
            }
        }
    }

    /// Makes `obj[key]` a unique id of at most [`lim::ID`] characters, or removes it (Slack
    /// then generates one).
    fn id(&mut self, obj: &mut Map<String, Value>, key: &str, block: bool, path: &str) {
        let Some(v) = obj.get(key) else {
            return;
        };
        let Some(s) = v.as_str().filter(|s| !s.is_empty()) else {
            obj.remove(key);
            self.note(format!("{path}.{key}: not a non-empty string, removed"));
            return;
        };
        let base = cut(s, lim::ID).to_owned();
        let seen = if block {
            &mut self.block_ids
        } else {
            &mut self.action_ids
        };
        let mut id = base.clone();
        if seen.contains(&id) {
            let next = self.next_suffix.entry((block, base.clone())).or_insert(2);
            loop {
                let suffix = format!("~{next}");
                *next += 1;
                id = format!("{}{suffix}", cut(&base, lim::ID - suffix.len()));
                if !seen.contains(&id) {
                    break;
                }
            }
        }
        seen.insert(id.clone());
        if id != s {
            let why = if chars(s) > lim::ID && id == base {
                "cut to 255 characters"
            } else {
                "duplicate, renamed"
            };
            self.note(format!("{path}.{key}: {why} ({id:?})"));
            obj.insert(key.into(), json!(id));
        }
    }

    fn blocks(&mut self, msg: &mut Map<String, Value>) {
        // Slack also takes blocks as a JSON-encoded string; normalise it to an array.
        if let Some(Value::String(s)) = msg.get("blocks") {
            match serde_json::from_str::<Value>(s) {
                Ok(parsed @ Value::Array(_)) => {
                    msg.insert("blocks".into(), parsed);
                }
                _ => {
                    msg.remove("blocks");
                    self.note("blocks: a string that is not a JSON array, removed".into());
                }
            }
        }
        let blocks = match msg.get_mut("blocks") {
            None => return,
            Some(Value::Array(bs)) => bs,
            Some(other) => {
                let k = kind_of(other);
                msg.remove("blocks");
                self.note(format!("blocks: {k}, not an array, removed"));
                return;
            }
        };
        let taken = std::mem::take(blocks);
        let mut kept = Vec::with_capacity(taken.len().min(lim::MESSAGE_BLOCKS));
        for (i, mut b) in taken.into_iter().enumerate() {
            if self.block(&mut b, &format!("blocks[{i}]")) {
                kept.push(b);
            }
        }
        if kept.len() > lim::MESSAGE_BLOCKS {
            let omitted = kept.len() - (lim::MESSAGE_BLOCKS - 1);
            kept.truncate(lim::MESSAGE_BLOCKS - 1);
            kept.push(json!({
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": format!("… {omitted} more blocks omitted") }],
            }));
            self.note(format!(
                "blocks: {omitted} blocks over the limit of {} omitted",
                lim::MESSAGE_BLOCKS
            ));
        }
        if kept.is_empty() {
            msg.remove("blocks");
            self.note("blocks: none left, removed".into());
        } else {
            msg.insert("blocks".into(), Value::Array(kept));
        }
    }

    /// Fits one block; false when it must be removed.
    fn block(&mut self, b: &mut Value, path: &str) -> bool {
        let Some(obj) = b.as_object_mut() else {
            self.note(format!("{path}: {}, not a block, removed", kind_of(b)));
            return false;
        };
        let ty = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some((_, keys)) = BLOCK_KEYS.iter().find(|(t, _)| *t == ty) else {
            self.note(format!("{path}: unsupported block type {ty:?}, removed"));
            return false;
        };
        self.retain_keys(obj, keys, path);
        let keep = match ty.as_str() {
            "section" => self.section(obj, path),
            "header" => self.required_text(obj, "text", TextKind::Plain, lim::HEADER_TEXT, path),
            "divider" => true,
            "context" => self.context(obj, path),
            "actions" => self.actions(obj, path),
            "image" => self.image(obj, path),
            "input" => self.input(obj, path),
            "rich_text" => obj.get("elements").is_some_and(Value::is_array),
            "markdown" => self.markdown(obj, path),
            _ => false,
        };
        if keep {
            self.id(obj, "block_id", true, path);
        } else {
            self.note(format!(
                "{path}: {ty} block with nothing Slack would accept, removed"
            ));
        }
        keep
    }

    fn required_text(
        &mut self,
        obj: &mut Map<String, Value>,
        key: &str,
        kind: TextKind,
        max: usize,
        path: &str,
    ) -> bool {
        if !obj.contains_key(key) {
            self.note(format!("{path}.{key}: missing"));
            return false;
        }
        self.opt_text(obj, key, kind, max, path)
    }

    fn section(&mut self, obj: &mut Map<String, Value>, path: &str) -> bool {
        let has_text = self.opt_text(obj, "text", TextKind::Any, lim::SECTION_TEXT, path);
        let has_fields = self.list(obj, "fields", lim::SECTION_FIELDS, path, |f, v, p| {
            f.text(v, TextKind::Any, lim::SECTION_FIELD_TEXT, p)
        });
        if let Some(acc) = obj.get_mut("accessory") {
            if !self.element(acc, in_accessory, &format!("{path}.accessory")) {
                obj.remove("accessory");
            }
        }
        self.bool_or_remove(obj, "expand", path);
        has_text || has_fields
    }

    /// Fits the array `obj[key]` item by item (dropping items `item` rejects) and caps it at
    /// `max`. Removes the key when nothing is left; true when something is.
    fn list(
        &mut self,
        obj: &mut Map<String, Value>,
        key: &str,
        max: usize,
        path: &str,
        mut item: impl FnMut(&mut Self, &mut Value, &str) -> bool,
    ) -> bool {
        let items = match obj.get_mut(key) {
            None => return false,
            Some(Value::Array(items)) => std::mem::take(items),
            Some(other) => {
                let k = kind_of(other);
                obj.remove(key);
                self.note(format!("{path}.{key}: {k}, not an array, removed"));
                return false;
            }
        };
        let mut kept = Vec::with_capacity(items.len().min(max));
        for (i, mut v) in items.into_iter().enumerate() {
            if item(self, &mut v, &format!("{path}.{key}[{i}]")) {
                kept.push(v);
            }
        }
        if kept.len() > max {
            self.note(format!(
                "{path}.{key}: {} over the limit of {max} dropped",
                kept.len() - max
            ));
            kept.truncate(max);
        }
        if kept.is_empty() {
            obj.remove(key);
            false
        } else {
            obj.insert(key.into(), Value::Array(kept));
            true
        }
    }

    fn context(&mut self, obj: &mut Map<String, Value>, path: &str) -> bool {
        self.list(obj, "elements", lim::CONTEXT_ELEMENTS, path, |f, v, p| {
            if v.get("type").and_then(Value::as_str) == Some("image") {
                f.element(v, |t| t == "image", p)
            } else {
                f.text(v, TextKind::Any, lim::CONTEXT_TEXT, p)
            }
        })
    }

    fn actions(&mut self, obj: &mut Map<String, Value>, path: &str) -> bool {
        self.list(obj, "elements", lim::ACTIONS_ELEMENTS, path, |f, v, p| {
            f.element(v, in_actions, p)
        })
    }

    fn image(&mut self, obj: &mut Map<String, Value>, path: &str) -> bool {
        let ok = self.image_source(obj, path);
        self.opt_text(obj, "title", TextKind::Plain, lim::IMAGE_TITLE, path);
        ok
    }

    /// The parts an image block and an image element share: a source and alt text.
    fn image_source(&mut self, obj: &mut Map<String, Value>, path: &str) -> bool {
        self.opt_string(obj, "image_url", lim::URL, true, path);
        if obj.get("slack_file").is_some_and(|v| !v.is_object()) {
            obj.remove("slack_file");
            self.note(format!("{path}.slack_file: not an object, removed"));
        }
        let has_source = obj.contains_key("image_url") || obj.contains_key("slack_file");
        let alt = match obj.get("alt_text").and_then(Value::as_str) {
            Some(a) if !a.trim().is_empty() => a,
            _ => {
                self.note(format!("{path}.alt_text: missing"));
                return false;
            }
        };
        if chars(alt) > lim::IMAGE_ALT_TEXT {
            let t = truncate(alt, lim::IMAGE_ALT_TEXT);
            obj.insert("alt_text".into(), json!(t));
            self.note(format!(
                "{path}.alt_text: cut to {} characters",
                lim::IMAGE_ALT_TEXT
            ));
        }
        if !has_source {
            self.note(format!("{path}: image without image_url or slack_file"));
        }
        has_source
    }

    fn input(&mut self, obj: &mut Map<String, Value>, path: &str) -> bool {
        let label = self.required_text(obj, "label", TextKind::Plain, lim::INPUT_LABEL, path);
        let element = match obj.get_mut("element") {
            Some(e) => self.element(e, in_input, &format!("{path}.element")),
            None => false,
        };
        self.opt_text(obj, "hint", TextKind::Plain, lim::INPUT_LABEL, path);
        self.bool_or_remove(obj, "optional", path);
        self.bool_or_remove(obj, "dispatch_action", path);
        label && element
    }

    fn markdown(&mut self, obj: &mut Map<String, Value>, path: &str) -> bool {
        let Some(text) = obj
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        else {
            return false;
        };
        let budget = lim::MARKDOWN_BLOCKS_TEXT.saturating_sub(self.markdown_used);
        if budget == 0 {
            self.note(format!(
                "{path}: markdown text budget of {} used up",
                lim::MARKDOWN_BLOCKS_TEXT
            ));
            return false;
        }
        let n = chars(text);
        if n > budget {
            let t = truncate(text, budget);
            obj.insert("text".into(), json!(t));
            self.note(format!(
                "{path}.text: cut to {budget} characters (markdown total)"
            ));
            self.markdown_used += budget;
        } else {
            self.markdown_used += n;
        }
        true
    }

    /// Fits an interactive or image element; false when it must be removed.
    fn element(&mut self, v: &mut Value, allowed: fn(&str) -> bool, path: &str) -> bool {
        let Some(obj) = v.as_object_mut() else {
            self.note(format!("{path}: {}, not an element, removed", kind_of(v)));
            return false;
        };
        let ty = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let keys = match element_keys(&ty) {
            Some(keys) if allowed(&ty) => keys,
            _ => {
                self.note(format!(
                    "{path}: element type {ty:?} not allowed here, removed"
                ));
                return false;
            }
        };
        self.retain_keys(obj, &keys, path);
        let ok = match ty.as_str() {
            "button" => {
                let ok = self.required_text(obj, "text", TextKind::Plain, lim::BUTTON_TEXT, path);
                self.opt_string(obj, "value", lim::BUTTON_VALUE, false, path);
                self.opt_string(obj, "url", lim::BUTTON_URL, true, path);
                self.opt_string(obj, "accessibility_label", lim::BUTTON_TEXT, false, path);
                self.style(obj, path);
                ok
            }
            "workflow_button" => {
                let ok = self.required_text(obj, "text", TextKind::Plain, lim::BUTTON_TEXT, path);
                self.opt_string(obj, "accessibility_label", lim::BUTTON_TEXT, false, path);
                self.style(obj, path);
                ok && obj.get("workflow").is_some_and(Value::is_object)
            }
            "image" => self.image_source(obj, path),
            "overflow" => {
                self.options(obj, "options", TextKind::Plain, lim::OVERFLOW_OPTIONS, path) >= 2
            }
            "checkboxes" | "radio_buttons" => {
                self.options(obj, "options", TextKind::Any, lim::CHECKBOX_OPTIONS, path) >= 1
            }
            "static_select" | "multi_static_select" => {
                let n = self.options(obj, "options", TextKind::Plain, lim::SELECT_OPTIONS, path);
                if n > 0 {
                    if obj.remove("option_groups").is_some() {
                        self.note(format!("{path}.option_groups: removed, options given too"));
                    }
                    true
                } else {
                    self.option_groups(obj, path)
                }
            }
            _ => true,
        };
        if !ok {
            self.note(format!("{path}: {ty} without what Slack requires, removed"));
            return false;
        }
        self.opt_text(
            obj,
            "placeholder",
            TextKind::Plain,
            lim::PLACEHOLDER_TEXT,
            path,
        );
        let kind = if matches!(ty.as_str(), "checkboxes" | "radio_buttons") {
            TextKind::Any
        } else {
            TextKind::Plain
        };
        if let Some(o) = obj.get_mut("initial_option") {
            if !self.option(o, kind, &format!("{path}.initial_option")) {
                obj.remove("initial_option");
            }
        }
        if obj.contains_key("initial_options") {
            self.options(obj, "initial_options", kind, lim::SELECT_OPTIONS, path);
        }
        if obj.contains_key("confirm") {
            self.confirm(obj, path);
        }
        self.id(obj, "action_id", false, path);
        true
    }

    fn style(&mut self, obj: &mut Map<String, Value>, path: &str) {
        if let Some(s) = obj.get("style") {
            if !matches!(s.as_str(), Some("primary" | "danger")) {
                obj.remove("style");
                self.note(format!("{path}.style: not primary or danger, removed"));
            }
        }
    }

    /// Fits the options array `obj[key]`; returns how many remain.
    fn options(
        &mut self,
        obj: &mut Map<String, Value>,
        key: &str,
        kind: TextKind,
        max: usize,
        path: &str,
    ) -> usize {
        self.list(obj, key, max, path, |f, v, p| f.option(v, kind, p));
        obj.get(key).and_then(Value::as_array).map_or(0, Vec::len)
    }

    fn option(&mut self, v: &mut Value, kind: TextKind, path: &str) -> bool {
        let Some(obj) = v.as_object_mut() else {
            self.note(format!("{path}: {}, not an option, removed", kind_of(v)));
            return false;
        };
        self.retain_keys(obj, &["text", "value", "description", "url"], path);
        let text = self.required_text(obj, "text", kind, lim::OPTION_TEXT, path);
        self.opt_string(obj, "value", lim::OPTION_VALUE, false, path);
        self.opt_text(obj, "description", kind, lim::OPTION_DESCRIPTION, path);
        self.opt_string(obj, "url", lim::URL, true, path);
        let ok = text && obj.contains_key("value");
        if !ok {
            self.note(format!("{path}: option without text or value, removed"));
        }
        ok
    }

    fn option_groups(&mut self, obj: &mut Map<String, Value>, path: &str) -> bool {
        self.list(obj, "option_groups", lim::OPTION_GROUPS, path, |f, v, p| {
            let Some(g) = v.as_object_mut() else {
                return false;
            };
            f.retain_keys(g, &["label", "options"], p);
            let label = f.required_text(g, "label", TextKind::Plain, lim::OPTION_GROUP_LABEL, p);
            let n = f.options(g, "options", TextKind::Plain, lim::SELECT_OPTIONS, p);
            label && n > 0
        })
    }

    /// Repairs a confirmation dialog rather than removing it: a destructive button must not
    /// lose its "are you sure?" because one label was too long or missing.
    fn confirm(&mut self, obj: &mut Map<String, Value>, path: &str) {
        let path = format!("{path}.confirm");
        let Some(c) = obj.get_mut("confirm") else {
            return;
        };
        if !c.is_object() {
            self.note(format!(
                "{path}: {}, replaced with a default dialog",
                kind_of(c)
            ));
            *c = json!({});
        }
        let Some(c) = c.as_object_mut() else {
            return;
        };
        self.retain_keys(c, &["title", "text", "confirm", "deny", "style"], &path);
        let parts = [
            (
                "title",
                TextKind::Plain,
                lim::CONFIRM_TITLE,
                "Are you sure?",
            ),
            ("text", TextKind::Any, lim::CONFIRM_TEXT, "Are you sure?"),
            ("confirm", TextKind::Plain, lim::CONFIRM_BUTTON_TEXT, "Yes"),
            ("deny", TextKind::Plain, lim::CONFIRM_BUTTON_TEXT, "Cancel"),
        ];
        for (key, kind, max, default) in parts {
            if !self.opt_text(c, key, kind, max, &path) {
                c.insert(key.into(), json!({ "type": "plain_text", "text": default }));
                self.note(format!("{path}.{key}: missing, set to {default:?}"));
            }
        }
        self.style(c, &path);
    }

    fn top_level_text(&mut self, msg: &mut Map<String, Value>) {
        let current = msg
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty());
        let has_attachments = msg
            .get("attachments")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let text = match current {
            Some(t) if chars(t) <= self.text_limit => return,
            Some(t) => {
                self.note(format!("text: cut to {} characters", self.text_limit));
                truncate_mrkdwn(t, self.text_limit)
            }
            // Slack takes attachments without text and shows no extra line; inventing one would show one.
            None if has_attachments && msg.get("blocks").is_none() => return,
            None => {
                let derived = fallback_text(msg.get("blocks"));
                self.note("text: missing, derived from the blocks".into());
                if derived.trim().is_empty() {
                    EMPTY_MESSAGE_TEXT.to_owned()
                } else {
                    truncate_mrkdwn(&derived, self.text_limit)
                }
            }
        };
        msg.insert("text".into(), json!(text));
    }
}

/// Notification text from a message's header, section and context texts. Top-level `text`
/// is mrkdwn, so plain_text sources are escaped: a plain header reading `<!channel>` must not
/// become a ping in the notification.
fn fallback_text(blocks: Option<&Value>) -> String {
    let mut lines = Vec::new();
    let as_mrkdwn = |t: &Value| -> Option<String> {
        let text = t.get("text")?.as_str()?;
        match t.get("type")?.as_str()? {
            "mrkdwn" => Some(text.to_owned()),
            _ => Some(escape_mrkdwn(text)),
        }
    };
    for b in blocks.and_then(Value::as_array).into_iter().flatten() {
        match b.get("type").and_then(Value::as_str) {
            Some("header") => {
                lines.extend(b.get("text").and_then(as_mrkdwn).map(|t| format!("*{t}*")))
            }
            Some("section") => {
                lines.extend(b.get("text").and_then(as_mrkdwn));
                for f in b
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    lines.extend(as_mrkdwn(f));
                }
            }
            Some("context") => {
                for e in b
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    lines.extend(as_mrkdwn(e));
                }
            }
            _ => {}
        }
        if lines.iter().map(String::len).sum::<usize>() > lim::MESSAGE_TEXT_SOFT * 4 {
            break;
        }
    }
    lines.join("\n")
}

/// The independent validator behind [`check_message`].
#[derive(Default)]
struct Checker {
    problems: Vec<String>,
    block_ids: HashSet<String>,
    action_ids: HashSet<String>,
}

impl Checker {
    fn bad(&mut self, s: String) {
        self.problems.push(s);
    }

    fn message(&mut self, msg: &Value) {
        let Some(obj) = msg.as_object() else {
            self.bad("message is not an object".into());
            return;
        };
        match obj.get("text").and_then(Value::as_str) {
            Some(t) if t.trim().is_empty() => self.bad("text is empty".into()),
            Some(t) if chars(t) > lim::MESSAGE_TEXT_SOFT => {
                self.bad(format!("text is {} characters", chars(t)))
            }
            Some(_) => {}
            None if obj
                .get("attachments")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
                && !obj.contains_key("blocks") => {}
            None => self.bad("text is missing".into()),
        }
        if let Some(n) = obj
            .get("attachments")
            .and_then(Value::as_array)
            .map(Vec::len)
            .filter(|n| *n > lim::MESSAGE_ATTACHMENTS)
        {
            self.bad(format!("{n} attachments"));
        }
        let Some(blocks) = obj.get("blocks") else {
            return;
        };
        let Some(blocks) = blocks.as_array() else {
            self.bad("blocks is not an array".into());
            return;
        };
        if blocks.is_empty() {
            self.bad("blocks is empty".into());
        }
        if blocks.len() > lim::MESSAGE_BLOCKS {
            self.bad(format!("{} blocks", blocks.len()));
        }
        let mut markdown = 0;
        for (i, b) in blocks.iter().enumerate() {
            let p = format!("blocks[{i}]");
            self.id(b, "block_id", true, &p);
            match b.get("type").and_then(Value::as_str) {
                Some("section") => {
                    let text = b.get("text");
                    let fields = b.get("fields").and_then(Value::as_array);
                    if text.is_none() && fields.is_none_or(|f| f.is_empty()) {
                        self.bad(format!("{p}: section without text or fields"));
                    }
                    if let Some(t) = text {
                        self.text(t, false, lim::SECTION_TEXT, &p);
                    }
                    if let Some(f) = b.get("fields") {
                        self.items(f, lim::SECTION_FIELDS, 1, &p, |c, v, p| {
                            c.text(v, false, lim::SECTION_FIELD_TEXT, p)
                        });
                    }
                    if let Some(a) = b.get("accessory") {
                        self.element(a, &p);
                    }
                }
                Some("header") => self.required_text(b, "text", true, lim::HEADER_TEXT, &p),
                Some("divider") => {}
                Some("context") => match b.get("elements") {
                    Some(e) => self.items(e, lim::CONTEXT_ELEMENTS, 1, &p, |c, v, p| {
                        if v.get("type").and_then(Value::as_str) == Some("image") {
                            c.element(v, p)
                        } else {
                            c.text(v, false, lim::CONTEXT_TEXT, p)
                        }
                    }),
                    None => self.bad(format!("{p}: context without elements")),
                },
                Some("actions") => match b.get("elements") {
                    Some(e) => {
                        self.items(e, lim::ACTIONS_ELEMENTS, 1, &p, |c, v, p| c.element(v, p))
                    }
                    None => self.bad(format!("{p}: actions without elements")),
                },
                Some("image") => {
                    self.image(b, &p);
                    if let Some(t) = b.get("title") {
                        self.text(t, true, lim::IMAGE_TITLE, &p);
                    }
                }
                Some("input") => {
                    self.required_text(b, "label", true, lim::INPUT_LABEL, &p);
                    if let Some(h) = b.get("hint") {
                        self.text(h, true, lim::INPUT_LABEL, &p);
                    }
                    match b.get("element") {
                        Some(e) => self.element(e, &p),
                        None => self.bad(format!("{p}: input without element")),
                    }
                }
                Some("rich_text") => {
                    if !b.get("elements").is_some_and(Value::is_array) {
                        self.bad(format!("{p}: rich_text without elements"));
                    }
                }
                Some("markdown") => match b.get("text").and_then(Value::as_str) {
                    Some(t) if !t.trim().is_empty() => markdown += chars(t),
                    _ => self.bad(format!("{p}: markdown without text")),
                },
                other => self.bad(format!("{p}: unsupported block type {other:?}")),
            }
        }
        if markdown > lim::MARKDOWN_BLOCKS_TEXT {
            self.bad(format!("markdown blocks total {markdown} characters"));
        }
    }

    fn id(&mut self, v: &Value, key: &str, block: bool, p: &str) {
        let Some(id) = v.get(key) else {
            return;
        };
        let Some(id) = id.as_str().filter(|s| !s.is_empty() && chars(s) <= lim::ID) else {
            self.bad(format!(
                "{p}.{key}: not a string of 1 to {} characters",
                lim::ID
            ));
            return;
        };
        let seen = if block {
            &mut self.block_ids
        } else {
            &mut self.action_ids
        };
        if !seen.insert(id.to_owned()) {
            self.bad(format!("{p}.{key}: duplicate {id:?}"));
        }
    }

    fn items(
        &mut self,
        v: &Value,
        max: usize,
        min: usize,
        p: &str,
        mut each: impl FnMut(&mut Self, &Value, &str),
    ) {
        let Some(items) = v.as_array() else {
            self.bad(format!("{p}: not an array"));
            return;
        };
        if items.len() > max || items.len() < min {
            self.bad(format!(
                "{p}: {} items, allowed {min} to {max}",
                items.len()
            ));
        }
        for (i, item) in items.iter().enumerate() {
            each(self, item, &format!("{p}[{i}]"));
        }
    }

    fn text(&mut self, v: &Value, plain_only: bool, max: usize, p: &str) {
        let ty = v.get("type").and_then(Value::as_str);
        let ok_type = match ty {
            Some("plain_text") => true,
            Some("mrkdwn") => !plain_only,
            _ => false,
        };
        if !ok_type {
            self.bad(format!("{p}: text type {ty:?}"));
        }
        match v.get("text").and_then(Value::as_str) {
            Some(t) if t.trim().is_empty() => self.bad(format!("{p}: empty text")),
            Some(t) if chars(t) > max => {
                self.bad(format!("{p}: {} characters, limit {max}", chars(t)))
            }
            Some(_) => {}
            None => self.bad(format!("{p}: no text")),
        }
    }

    fn required_text(&mut self, v: &Value, key: &str, plain_only: bool, max: usize, p: &str) {
        match v.get(key) {
            Some(t) => self.text(t, plain_only, max, &format!("{p}.{key}")),
            None => self.bad(format!("{p}.{key}: missing")),
        }
    }

    fn string(&mut self, v: &Value, key: &str, max: usize, p: &str) {
        if let Some(s) = v.get(key) {
            match s.as_str() {
                Some(s) if chars(s) <= max => {}
                _ => self.bad(format!(
                    "{p}.{key}: not a string of at most {max} characters"
                )),
            }
        }
    }

    fn image(&mut self, v: &Value, p: &str) {
        if v.get("image_url").is_none() && v.get("slack_file").is_none() {
            self.bad(format!("{p}: image without a source"));
        }
        self.string(v, "image_url", lim::URL, p);
        match v.get("alt_text").and_then(Value::as_str) {
            Some(a) if !a.trim().is_empty() && chars(a) <= lim::IMAGE_ALT_TEXT => {}
            _ => self.bad(format!("{p}: alt_text missing or too long")),
        }
    }

    fn element(&mut self, e: &Value, p: &str) {
        let ty = e.get("type").and_then(Value::as_str).unwrap_or_default();
        if element_keys(ty).is_none() {
            self.bad(format!("{p}: unknown element type {ty:?}"));
        }
        self.id(e, "action_id", false, p);
        match ty {
            "button" | "workflow_button" => {
                self.required_text(e, "text", true, lim::BUTTON_TEXT, p);
                self.string(e, "value", lim::BUTTON_VALUE, p);
                self.string(e, "url", lim::BUTTON_URL, p);
            }
            "image" => self.image(e, p),
            _ => {}
        }
        let max_options = match ty {
            "overflow" => lim::OVERFLOW_OPTIONS,
            "checkboxes" | "radio_buttons" => lim::CHECKBOX_OPTIONS,
            _ => lim::SELECT_OPTIONS,
        };
        let min_options = if ty == "overflow" { 2 } else { 1 };
        if let Some(o) = e.get("options") {
            self.items(
                o,
                max_options,
                min_options,
                &format!("{p}.options"),
                |c, v, p| c.option(v, p),
            );
        } else if matches!(ty, "overflow" | "checkboxes" | "radio_buttons")
            || (matches!(ty, "static_select" | "multi_static_select")
                && e.get("option_groups").is_none())
        {
            self.bad(format!("{p}: {ty} without options"));
        }
        if let Some(g) = e.get("option_groups") {
            self.items(
                g,
                lim::OPTION_GROUPS,
                1,
                &format!("{p}.option_groups"),
                |c, v, p| {
                    c.required_text(v, "label", true, lim::OPTION_GROUP_LABEL, p);
                    match v.get("options") {
                        Some(o) => c.items(
                            o,
                            lim::SELECT_OPTIONS,
                            1,
                            &format!("{p}.options"),
                            |c, v, p| c.option(v, p),
                        ),
                        None => c.bad(format!("{p}: option group without options")),
                    }
                },
            );
        }
        if let Some(t) = e.get("placeholder") {
            self.text(t, true, lim::PLACEHOLDER_TEXT, &format!("{p}.placeholder"));
        }
        if let Some(c) = e.get("confirm") {
            let p = format!("{p}.confirm");
            self.required_text(c, "title", true, lim::CONFIRM_TITLE, &p);
            self.required_text(c, "text", false, lim::CONFIRM_TEXT, &p);
            self.required_text(c, "confirm", true, lim::CONFIRM_BUTTON_TEXT, &p);
            self.required_text(c, "deny", true, lim::CONFIRM_BUTTON_TEXT, &p);
        }
    }

    fn option(&mut self, o: &Value, p: &str) {
        self.required_text(o, "text", false, lim::OPTION_TEXT, p);
        match o.get("value").and_then(Value::as_str) {
            Some(v) if !v.is_empty() && chars(v) <= lim::OPTION_VALUE => {}
            _ => self.bad(format!(
                "{p}.value: missing or longer than {}",
                lim::OPTION_VALUE
            )),
        }
    }
}

#[cfg(test)]
mod tests;
