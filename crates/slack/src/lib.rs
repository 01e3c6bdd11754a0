//! Slack's Web API over HTTP: the client ([`api::Client`]), retry classification ([`retry`]) and the client-side
//! rate limiter ([`ratelimit::Limiter`]). The wire formats these build on (rate tiers, Block Kit limits, mrkdwn
//! escaping, signatures, [`Secret`]) have no IO and live below this crate, in `sluice-slack-wire`. Nothing else
//! in Sluice parses or builds Slack JSON by hand.

pub mod api;
pub mod ratelimit;
pub mod retry;

pub use api::{Client, SlackError};
pub use sluice_slack_wire::Secret;
