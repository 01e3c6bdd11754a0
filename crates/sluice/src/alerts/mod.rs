//! The alert workflow's handlers: what people do on an alert card in Slack, and what Sluice does about it.
//!
//! - **Alert actions** (`Verb`: Acknowledge, Escalate, Silence 1 h and Resolve) on an alert card, and
//!   Acknowledge by reacting with the configured emoji (`reaction_added`). Who may act is configured
//!   ([`Permissions`]: users, user groups, members of the card's channel); the first decision of each kind per
//!   alert wins across clicks, reactions and replicas (`Store::record_alert_action`); the card is refreshed
//!   through the living-message path (`NewEvent::follow_up`: rendered at send time from the alert as it stands,
//!   so a deduplicated alert keeps its count); every attempt, allowed or refused, is audited.
//!
//! The decisions themselves (verbs, how a card shows them, the living card) are pure and live in `sluice-domain`.

mod actions;
mod permissions;

pub use actions::{acknowledge_from_command, clicked, living_refresh, reacted, template_of};
pub use permissions::Permissions;
