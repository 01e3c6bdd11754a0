//! Sluice, the operations gateway between an organisation's systems and Slack.
//!
//! This crate is the binary's library, and holds only wiring: configuration ([`config`]), the HTTP surface
//! ([`http`]), the handlers for what comes from Slack ([`handlers`], one folder per workflow: [`alerts`],
//! [`approvals`], [`commands`]) and their way out ([`outbox`]), the dispatcher that sends from the durable outbox ([`dispatch`]),
//! the group flusher ([`notify`]), the operator console ([`console`]), and [`server::start`], which wires them together for `sluice serve`,
//! `sluice demo` and the end-to-end tests. The decisions live below it: the pipeline, silences and alert decisions
//! in `sluice-domain`, routing and rendering in `sluice-core`, storage in `sluice-store`, Slack's wire formats in
//! `sluice-slack-wire` and its HTTP client in `sluice-slack`.

pub mod actions;
pub mod alerts;
pub mod approvals;
pub mod commands;
pub mod config;
pub mod console;
pub mod demo;
pub mod dispatch;
pub mod egress;
pub mod forms;
pub mod handlers;
pub mod http;
pub mod incidents;
pub mod leader;
pub mod listen;
pub mod manifest;
pub mod notify;
pub mod outbox;
pub mod preview;
pub mod reload;
pub mod server;
pub mod state;
pub mod steps;
