//! The pure core of Sluice: the [`Event`] model and its validation ([`parse_events`]),
//! routing ([`Router`]), inhibition ([`Inhibitor`]) and rendering to Block Kit ([`Renderer`]).
//!
//! Nothing here does IO, reads the clock or spawns tasks: time is passed in
//! ([`RenderContext::now`]), so every decision is a plain function that tests call directly.
//! Configuration problems from every module are [`ConfigError`]s carrying a byte span into
//! `sluice.toml` where one is known, so `sluice check` can name the line and the fix.

pub mod config_error;
pub mod duration;
pub mod event;
pub mod inhibit;
pub mod noise;
pub mod nul;
pub mod render;
pub mod route;

pub use config_error::ConfigError;
pub use event::{parse_events, Event, EventError, Field, Kind, Link, Severity, Status};
pub use inhibit::{InhibitKey, InhibitKeys, Inhibitor};
pub use render::{RenderContext, RenderError, Renderer};
pub use route::{Decision, Delivery, Router, RoutingConfig};

#[cfg(test)]
mod tests {
    /// The server shares one router and one renderer across request tasks.
    #[test]
    fn router_and_renderer_can_be_shared_between_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<super::Router>();
        shared::<super::Renderer>();
    }
}
