//! The pure core of Sluice: the [`event::Event`] model and its validation, routing
//! ([`route::Router`]) and rendering to Block Kit ([`render::Renderer`]).
//!
//! Nothing here does IO, reads the clock or spawns tasks: time is passed in, so every
//! decision is a plain function that tests call directly.

pub mod event;
pub mod route;

pub use route::ConfigError;
pub mod render;
