//! Block Kit validation the way Slack does it: [`validate_blocks`] returns a [`BlockKitError`]
//! carrying Slack's `response_metadata.messages` lines (`[ERROR] … [json-pointer:/blocks/0/text]`).
//!
//! Written independently of Sluice's renderer on purpose: the simulator must catch what the renderer
//! gets wrong, so the two must not share code beyond the limit constants.

use std::collections::HashSet;
use std::fmt::Display;

use serde_json::Value;
use sluice_slack_wire::limits;

/// Where blocks are shown; views allow more blocks than messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Message,
    View,
}

/// Slack's `invalid_blocks` answer: one line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid_blocks: {}", messages.join("; "))]
pub struct BlockKitError {
    pub messages: Vec<String>,
}

const BLOCK_TYPES: &[&str] = &[
    "section",
    "divider",
    "header",
    "context",
    "actions",
    "image",
    "input",
    "rich_text",
    "file",
    "video",
    "markdown",
];

const ELEMENT_TYPES: &[&str] = &[
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "image",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
    "number_input",
    "overflow",
    "plain_text_input",
    "radio_buttons",
    "rich_text_input",
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "timepicker",
    "url_text_input",
    "workflow_button",
    "file_input",
];

/// Placeholder text of selects and inputs.
const PLACEHOLDER_TEXT: usize = 150;

/// Checks `blocks` (the JSON value given as `blocks`) against Slack's rules for `surface`.
pub fn validate_blocks(blocks: &Value, surface: Surface) -> Result<(), BlockKitError> {
    let mut v = Validator::default();
    v.blocks(blocks, surface);
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(BlockKitError { messages: v.errors })
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<String>,
    block_ids: HashSet<String>,
    action_ids: HashSet<String>,
}

impl Validator {
    fn err(&mut self, ptr: &str, msg: impl Display) {
        self.errors
            .push(format!("[ERROR] {msg} [json-pointer:{ptr}]"));
    }

    fn blocks(&mut self, blocks: &Value, surface: Surface) {
        let Some(list) = blocks.as_array() else {
            self.err("/blocks", "must provide an array");
            return;
        };
        let max = match surface {
            Surface::Message => limits::MESSAGE_BLOCKS,
            Surface::View => limits::VIEW_BLOCKS,
        };
        if list.len() > max {
            self.err("/blocks", format!("no more than {max} items allowed"));
        }
        for (i, block) in list.iter().enumerate() {
            self.block(block, &format!("/blocks/{i}"));
        }
    }

    fn block(&mut self, block: &Value, ptr: &str) {
        let Some(obj) = block.as_object() else {
            self.err(ptr, "must provide an object");
            return;
        };
        let Some(kind) = obj.get("type").and_then(Value::as_str) else {
            self.err(&format!("{ptr}/type"), "must provide a string");
            return;
        };
        if !BLOCK_TYPES.contains(&kind) {
            self.err(&format!("{ptr}/type"), format!("unsupported type: {kind}"));
            return;
        }
        if let Some(id) = obj.get("block_id") {
            self.unique_id(id, &format!("{ptr}/block_id"), IdKind::Block);
        }
        match kind {
            "section" => self.section(block, ptr),
            "header" => {
                self.text_required(block, "text", ptr, limits::HEADER_TEXT, true);
            }
            "context" => self.context(block, ptr),
            "actions" => self.actions(block, ptr),
            "image" => self.image(block, ptr),
            "input" => {
                self.text_required(block, "label", ptr, limits::INPUT_LABEL, true);
                self.text_optional(block, "hint", ptr, limits::INPUT_LABEL, true);
                match block.get("element") {
                    Some(e) => self.element(e, &format!("{ptr}/element")),
                    None => self.err(&format!("{ptr}/element"), "must provide an object"),
                }
            }
            // divider has nothing to check; rich_text, file, video and markdown are accepted as
            // given because Sluice does not render them.
            _ => {}
        }
    }

    fn section(&mut self, block: &Value, ptr: &str) {
        let has_text = block.get("text").is_some();
        let fields = block.get("fields");
        if !has_text && fields.is_none() {
            self.err(ptr, "must provide either text or fields");
        }
        self.text_optional(block, "text", ptr, limits::SECTION_TEXT, false);
        if let Some(fields) = fields {
            let fptr = format!("{ptr}/fields");
            match fields.as_array() {
                None => self.err(&fptr, "must provide an array"),
                Some(list) => {
                    if list.is_empty() {
                        self.err(&fptr, "must provide at least 1 item");
                    }
                    if list.len() > limits::SECTION_FIELDS {
                        self.err(
                            &fptr,
                            format!("no more than {} items allowed", limits::SECTION_FIELDS),
                        );
                    }
                    for (i, f) in list.iter().enumerate() {
                        self.text_object(
                            f,
                            &format!("{fptr}/{i}"),
                            limits::SECTION_FIELD_TEXT,
                            false,
                        );
                    }
                }
            }
        }
        if let Some(acc) = block.get("accessory") {
            self.element(acc, &format!("{ptr}/accessory"));
        }
    }

    fn context(&mut self, block: &Value, ptr: &str) {
        let eptr = format!("{ptr}/elements");
        let Some(list) = block.get("elements").and_then(Value::as_array) else {
            self.err(&eptr, "must provide an array");
            return;
        };
        if list.is_empty() {
            self.err(&eptr, "must provide at least 1 item");
        }
        if list.len() > limits::CONTEXT_ELEMENTS {
            self.err(
                &eptr,
                format!("no more than {} items allowed", limits::CONTEXT_ELEMENTS),
            );
        }
        for (i, e) in list.iter().enumerate() {
            let p = format!("{eptr}/{i}");
            match e.get("type").and_then(Value::as_str) {
                Some("image") => self.image_element(e, &p),
                Some("plain_text" | "mrkdwn") => {
                    self.text_object(e, &p, limits::CONTEXT_TEXT, false)
                }
                _ => self.err(
                    &format!("{p}/type"),
                    "must be one of image, plain_text, mrkdwn",
                ),
            }
        }
    }

    fn actions(&mut self, block: &Value, ptr: &str) {
        let eptr = format!("{ptr}/elements");
        let Some(list) = block.get("elements").and_then(Value::as_array) else {
            self.err(&eptr, "must provide an array");
            return;
        };
        if list.is_empty() {
            self.err(&eptr, "must provide at least 1 item");
        }
        if list.len() > limits::ACTIONS_ELEMENTS {
            self.err(
                &eptr,
                format!("no more than {} items allowed", limits::ACTIONS_ELEMENTS),
            );
        }
        for (i, e) in list.iter().enumerate() {
            self.element(e, &format!("{eptr}/{i}"));
        }
    }

    fn image(&mut self, block: &Value, ptr: &str) {
        self.image_element(block, ptr);
        self.text_optional(block, "title", ptr, limits::IMAGE_ALT_TEXT, true);
    }

    fn image_element(&mut self, e: &Value, ptr: &str) {
        match (e.get("image_url"), e.get("slack_file")) {
            (Some(url), _) => {
                self.string(url, &format!("{ptr}/image_url"), limits::BUTTON_URL, true)
            }
            (None, Some(_)) => {}
            (None, None) => self.err(&format!("{ptr}/image_url"), "must provide a string"),
        }
        match e.get("alt_text") {
            Some(alt) => self.string(
                alt,
                &format!("{ptr}/alt_text"),
                limits::IMAGE_ALT_TEXT,
                true,
            ),
            None => self.err(&format!("{ptr}/alt_text"), "must provide a string"),
        }
    }

    fn element(&mut self, e: &Value, ptr: &str) {
        let Some(kind) = e.get("type").and_then(Value::as_str) else {
            self.err(&format!("{ptr}/type"), "must provide a string");
            return;
        };
        if !ELEMENT_TYPES.contains(&kind) {
            self.err(&format!("{ptr}/type"), format!("unsupported type: {kind}"));
            return;
        }
        if let Some(id) = e.get("action_id") {
            self.unique_id(id, &format!("{ptr}/action_id"), IdKind::Action);
        }
        if let Some(confirm) = e.get("confirm") {
            let cptr = format!("{ptr}/confirm");
            self.text_required(confirm, "title", &cptr, limits::CONFIRM_TITLE, true);
            self.text_required(confirm, "text", &cptr, limits::CONFIRM_TEXT, false);
            self.text_required(confirm, "confirm", &cptr, limits::BUTTON_TEXT, true);
            self.text_required(confirm, "deny", &cptr, limits::BUTTON_TEXT, true);
        }
        self.text_optional(e, "placeholder", ptr, PLACEHOLDER_TEXT, true);
        match kind {
            "button" | "workflow_button" => {
                self.text_required(e, "text", ptr, limits::BUTTON_TEXT, true);
                if let Some(v) = e.get("value") {
                    self.string(v, &format!("{ptr}/value"), limits::BUTTON_VALUE, false);
                }
                if let Some(u) = e.get("url") {
                    self.string(u, &format!("{ptr}/url"), limits::BUTTON_URL, true);
                }
                if let Some(style) = e.get("style") {
                    if !matches!(style.as_str(), Some("primary" | "danger")) {
                        self.err(&format!("{ptr}/style"), "must be one of primary, danger");
                    }
                }
            }
            "image" => self.image_element(e, ptr),
            "static_select"
            | "multi_static_select"
            | "overflow"
            | "radio_buttons"
            | "checkboxes" => self.options(e, ptr),
            _ => {}
        }
    }

    fn options(&mut self, e: &Value, ptr: &str) {
        let mut all = Vec::new();
        if let Some(list) = e.get("options").and_then(Value::as_array) {
            all.extend(
                list.iter()
                    .enumerate()
                    .map(|(i, o)| (format!("{ptr}/options/{i}"), o)),
            );
        }
        if let Some(groups) = e.get("option_groups").and_then(Value::as_array) {
            for (g, group) in groups.iter().enumerate() {
                self.text_required(
                    group,
                    "label",
                    &format!("{ptr}/option_groups/{g}"),
                    limits::OPTION_TEXT,
                    true,
                );
                if let Some(list) = group.get("options").and_then(Value::as_array) {
                    all.extend(
                        list.iter()
                            .enumerate()
                            .map(|(i, o)| (format!("{ptr}/option_groups/{g}/options/{i}"), o)),
                    );
                }
            }
        }
        if all.len() > limits::SELECT_OPTIONS {
            self.err(
                &format!("{ptr}/options"),
                format!("no more than {} items allowed", limits::SELECT_OPTIONS),
            );
        }
        for (p, o) in all {
            self.text_required(o, "text", &p, limits::OPTION_TEXT, false);
            match o.get("value") {
                Some(v) => self.string(v, &format!("{p}/value"), limits::OPTION_VALUE, true),
                None => self.err(&format!("{p}/value"), "must provide a string"),
            }
        }
    }

    fn unique_id(&mut self, id: &Value, ptr: &str, kind: IdKind) {
        let Some(s) = id.as_str() else {
            self.err(ptr, "must be a string");
            return;
        };
        self.string(id, ptr, limits::ID, true);
        let seen = match kind {
            IdKind::Block => &mut self.block_ids,
            IdKind::Action => &mut self.action_ids,
        };
        if !seen.insert(s.to_string()) {
            let what = match kind {
                IdKind::Block => "block_id",
                IdKind::Action => "action_id",
            };
            self.err(ptr, format!("duplicate {what}: {s}"));
        }
    }

    fn text_required(
        &mut self,
        parent: &Value,
        key: &str,
        ptr: &str,
        max: usize,
        plain_only: bool,
    ) {
        match parent.get(key) {
            Some(t) => self.text_object(t, &format!("{ptr}/{key}"), max, plain_only),
            None => self.err(&format!("{ptr}/{key}"), "must provide an object"),
        }
    }

    fn text_optional(
        &mut self,
        parent: &Value,
        key: &str,
        ptr: &str,
        max: usize,
        plain_only: bool,
    ) {
        if let Some(t) = parent.get(key) {
            self.text_object(t, &format!("{ptr}/{key}"), max, plain_only);
        }
    }

    /// A composition text object: `{"type": "plain_text"|"mrkdwn", "text": "…"}`.
    fn text_object(&mut self, t: &Value, ptr: &str, max: usize, plain_only: bool) {
        if !t.is_object() {
            self.err(ptr, "must provide an object");
            return;
        }
        match t.get("type").and_then(Value::as_str) {
            Some("plain_text") => {}
            Some("mrkdwn") if !plain_only => {}
            Some("mrkdwn") => self.err(&format!("{ptr}/type"), "must be plain_text"),
            _ => self.err(&format!("{ptr}/type"), "must be one of plain_text, mrkdwn"),
        }
        match t.get("text") {
            Some(s) => self.string(s, &format!("{ptr}/text"), max, true),
            None => self.err(&format!("{ptr}/text"), "must provide a string"),
        }
    }

    fn string(&mut self, s: &Value, ptr: &str, max: usize, non_empty: bool) {
        let Some(s) = s.as_str() else {
            self.err(ptr, "must be a string");
            return;
        };
        // Slack counts characters, not bytes.
        let len = s.chars().count();
        if non_empty && len == 0 {
            self.err(ptr, "must be more than 0 characters");
        }
        if len > max {
            self.err(ptr, format!("must be less than {} characters", max + 1));
        }
    }
}

#[derive(Clone, Copy)]
enum IdKind {
    Block,
    Action,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn long(n: usize) -> String {
        "é".repeat(n) // multi-byte on purpose: limits are in characters
    }

    #[test]
    fn a_typical_alert_message_is_valid() {
        let blocks = json!([
            {"type": "header", "text": {"type": "plain_text", "text": "Disk full"}},
            {"type": "section", "block_id": "b1", "text": {"type": "mrkdwn", "text": "*db-1* is at 99%"},
             "fields": [{"type": "mrkdwn", "text": "*Severity*\ncritical"}],
             "accessory": {"type": "button", "action_id": "open", "text": {"type": "plain_text", "text": "Open"}, "url": "https://x"}},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "from alertmanager"},
                                             {"type": "image", "image_url": "https://i", "alt_text": "logo"}]},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": "ack", "style": "primary", "value": "1", "text": {"type": "plain_text", "text": "Ack"},
                 "confirm": {"title": {"type": "plain_text", "text": "Sure?"}, "text": {"type": "mrkdwn", "text": "Really"},
                             "confirm": {"type": "plain_text", "text": "Yes"}, "deny": {"type": "plain_text", "text": "No"}}},
                {"type": "static_select", "action_id": "sev", "placeholder": {"type": "plain_text", "text": "Severity"},
                 "options": [{"text": {"type": "plain_text", "text": "high"}, "value": "high"}]}
            ]}
        ]);
        assert_eq!(validate_blocks(&blocks, Surface::Message), Ok(()));
    }

    #[test]
    fn limits_are_in_characters_at_the_exact_boundary() {
        let at = json!([{"type": "section", "text": {"type": "mrkdwn", "text": long(limits::SECTION_TEXT)}}]);
        assert!(validate_blocks(&at, Surface::Message).is_ok());
        let over = json!([{"type": "section", "text": {"type": "mrkdwn", "text": long(limits::SECTION_TEXT + 1)}}]);
        let err = validate_blocks(&over, Surface::Message).unwrap_err();
        assert_eq!(
            err.messages,
            vec![
                "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
                    .to_string()
            ]
        );
    }

    #[test]
    fn views_allow_more_blocks_than_messages() {
        let blocks = Value::Array(vec![json!({"type": "divider"}); limits::VIEW_BLOCKS]);
        assert!(validate_blocks(&blocks, Surface::View).is_ok());
        assert!(validate_blocks(&blocks, Surface::Message).is_err());
    }
}
