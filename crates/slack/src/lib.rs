//! Everything that knows Slack's wire formats: the Web API client ([`api::Client`]), the
//! rate-tier table ([`tiers`]), Block Kit limits ([`limits`]) and making messages fit them
//! ([`blocks`]), mrkdwn escaping, retry classification ([`retry`]) and request signatures
//! ([`signature`]). Nothing else in Sluice parses or builds Slack JSON by hand.

pub mod limits;
pub mod tiers;
