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
/// Top-level `text` we aim for: longer text is truncated by Slack's clients, so we cut it ourselves.
pub const MESSAGE_TEXT_SOFT: usize = 4000;
/// Image block `alt_text`.
pub const IMAGE_ALT_TEXT: usize = 2000;
/// Text of a context block element.
pub const CONTEXT_TEXT: usize = 2000;
