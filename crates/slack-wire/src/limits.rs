//! Block Kit and message limits: the one table of them in the code.
//!
//! Slack rejects (or silently truncates) messages that break these limits. The renderer uses
//! them to make every outgoing message valid before it is queued; the simulator uses them to
//! reject invalid messages the way Slack does. Where Slack's live documentation disagrees
//! with a number here, Slack wins: change it here and nowhere else.

/// Blocks in one message.
pub const MESSAGE_BLOCKS: usize = 50;
/// Blocks in a modal or home tab view.
pub const VIEW_BLOCKS: usize = 100;
/// `text` of a section block (mrkdwn or plain_text).
pub const SECTION_TEXT: usize = 3000;
/// Number of `fields` in a section block.
pub const SECTION_FIELDS: usize = 10;
/// Length of each section field.
pub const SECTION_FIELD_TEXT: usize = 2000;
/// Header block text (plain_text only).
pub const HEADER_TEXT: usize = 150;
/// Elements in an actions block.
pub const ACTIONS_ELEMENTS: usize = 25;
/// Elements in a context block.
pub const CONTEXT_ELEMENTS: usize = 10;
/// Button label.
pub const BUTTON_TEXT: usize = 75;
/// Button `value`.
pub const BUTTON_VALUE: usize = 2000;
/// Button `url`.
pub const BUTTON_URL: usize = 3000;
/// `action_id`, `block_id` and a view's `callback_id`.
pub const ID: usize = 255;
/// Option text.
pub const OPTION_TEXT: usize = 75;
/// Option value.
pub const OPTION_VALUE: usize = 150;
/// Options in one select menu.
pub const SELECT_OPTIONS: usize = 100;
/// Confirmation dialog title.
pub const CONFIRM_TITLE: usize = 100;
/// Confirmation dialog text.
pub const CONFIRM_TEXT: usize = 300;
/// A view's title.
pub const VIEW_TITLE: usize = 24;
/// A view's `private_metadata`.
pub const VIEW_PRIVATE_METADATA: usize = 3000;
/// An input block's label and hint.
pub const INPUT_LABEL: usize = 2000;
/// Top-level `text`: Slack refuses longer messages with `msg_too_long`.
pub const MESSAGE_TEXT_HARD: usize = 40_000;
/// Legacy attachments on one message: Slack refuses more with `too_many_attachments`.
pub const MESSAGE_ATTACHMENTS: usize = 100;
/// Top-level `text` we aim for: longer text is truncated by Slack's clients, so we cut it ourselves.
pub const MESSAGE_TEXT_SOFT: usize = 4000;
/// Image block `alt_text`.
pub const IMAGE_ALT_TEXT: usize = 2000;
/// Text of a context block element.
pub const CONTEXT_TEXT: usize = 2000;
/// Placeholder text of a select, date picker or text input.
pub const PLACEHOLDER_TEXT: usize = 150;
/// The confirm and deny button labels of a confirmation dialog.
pub const CONFIRM_BUTTON_TEXT: usize = 30;
/// Options in an overflow menu (at least 2).
pub const OVERFLOW_OPTIONS: usize = 5;
/// Options in a checkbox group or radio button group.
pub const CHECKBOX_OPTIONS: usize = 10;
/// Option groups in one select menu.
pub const OPTION_GROUPS: usize = 100;
/// Label of an option group.
pub const OPTION_GROUP_LABEL: usize = 75;
/// Option `description` (checkboxes, radio buttons).
pub const OPTION_DESCRIPTION: usize = 75;
/// An image's `image_url`, and an overflow option's `url`.
pub const URL: usize = 3000;
/// Image block `title`.
pub const IMAGE_TITLE: usize = 2000;
/// Total text of all `markdown` blocks in one message.
pub const MARKDOWN_BLOCKS_TEXT: usize = 12_000;
