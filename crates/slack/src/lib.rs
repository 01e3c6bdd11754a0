//! Everything that knows Slack's wire formats: the Web API client ([`api::Client`]), the
//! rate-tier table ([`tiers`]), Block Kit limits ([`limits`]) and making messages fit them
//! ([`blocks`]), mrkdwn escaping, retry classification ([`retry`]), the client-side rate
//! limiter ([`ratelimit::Limiter`]) and request signatures ([`signature`]). Nothing else in
//! Sluice parses or builds Slack JSON by hand.

pub mod api;
pub mod blocks;
pub mod limits;
pub mod ratelimit;
pub mod retry;
pub mod secret;
pub mod signature;
pub mod tiers;

pub use api::{Client, SlackError};
pub use secret::Secret;
