//! Slack's wire formats, with no IO: the rate-tier table ([`tiers`]), Block Kit limits ([`limits`]) and making
//! messages fit them ([`blocks`], with mrkdwn escaping), request signatures ([`signature`]) and [`Secret`].
//!
//! This crate sits under both the pure core (`sluice-core`, which renders Block Kit and must not pull in an HTTP
//! client) and the Web API client (`sluice-slack`). Nothing here opens a socket, reads the clock or spawns a task:
//! `signature::verify` is given the time.

pub mod blocks;
pub mod limits;
pub mod secret;
pub mod signature;
pub mod tiers;

pub use secret::Secret;
