//! Requests from Slack: verified, acknowledged at once, handled exactly once, over HTTP or
//! Socket Mode. The principal type is [`Inbound`]: built from an [`InboundConfig`], a
//! [`Registry`] of handlers, an [`OnceStore`], the integrator's [`Outbox`] (every Slack write handlers make) and
//! the Slack Web API client (for `views.open` alone), then served by
//! [`routes`] (HTTP) or [`run_socket_mode`] (Socket Mode).
//!
//! Code map:
//! - [`http`]: [`Verified<T>`] (signature over the raw body, then parse) and the endpoints.
//! - [`socket`]: the Socket Mode client (acks, refresh hand-over, reconnect with backoff).
//! - [`inbound`]: dedupe, middleware, spawned handlers, synchronous answers.
//! - [`registry`]: handler traits, [`Ctx`], [`Registry`], [`Middleware`].
//! - [`respond`]: [`ResponseUrl`] (host allow-list, 5-use limit), [`Reply`], [`Trigger`].
//! - [`models`]: tolerant payload models.
//! - [`once`]: [`OnceStore`] and the test-only [`MemoryOnce`].
//! - [`outbox`]: [`Outbox`], the port for Slack writes.
//!
//! Invariants: no handler sees an unverified request; the acknowledgement never waits for a
//! handler beyond the synchronous-answer budget; a failed or panicking handler always tells
//! the user; `response_url` is only ever POSTed to allowed hosts.

pub mod http;
pub mod inbound;
pub mod models;
pub mod once;
pub mod outbox;
pub mod registry;
pub mod respond;
pub mod socket;
pub mod stats;

pub use http::{routes, Verified};
pub use inbound::{Ack, Delivery, Inbound, InboundConfig, Incoming};
pub use once::{MemoryOnce, OnceStore};
pub use outbox::{NoOutbox, Outbox, Writes};
pub use registry::{
    ActionHandler, ActionPayload, CommandHandler, Ctx, Decision, EventHandler, HandlerError,
    HandlerResult, Kind, Middleware, OptionsHandler, OptionsResponse, Registry, RequestInfo,
    Responder, ShortcutHandler, ViewClosedHandler, ViewHandler, ViewResponse,
};
pub use respond::{Reply, RespondError, ResponseType, ResponseUrl, Trigger};
pub use socket::{run_socket_mode, run_socket_mode_with, Liveness};
pub use stats::StatsSnapshot;
