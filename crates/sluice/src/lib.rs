//! Sluice, the operations gateway between an organisation's systems and Slack.
//!
//! This crate is the binary's library: configuration ([`config`]), the HTTP surface ([`http`]),
//! the pipeline that turns events into Slack calls ([`pipeline`]), the dispatcher that sends
//! them from the durable outbox ([`dispatch`]), and [`server::start`], which wires them together
//! for `sluice serve`, `sluice demo` and the end-to-end tests. The pure core lives in
//! `sluice-core`, storage in `sluice-store`, Slack's wire formats in `sluice-slack`.

pub mod actions;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod http;
pub mod listen;
pub mod living;
pub mod notify;
pub mod pipeline;
pub mod server;
pub mod silence;
pub mod state;
