//! Sluice's state as plain data, beneath the store and the domain: the types that cross the store's trait
//! ([`NewEvent`], [`Dedup`], [`AlertCard`], [`Silence`], …) and the alert lifecycle over them ([`alert::decide`]).
//!
//! Pure: serde only, no IO, no clock (time is passed in). The store's ingest transaction loads an alert's state,
//! calls [`alert::decide`] and writes what it says; the binary's action handlers call the same function for a
//! decision taken in Slack. Neither the store nor the domain owns the rules, so neither depends on the other.

pub mod action;
pub mod alert;
mod approval;
mod chatops;
mod console;
mod incident;
mod model;

pub use action::{ActionRunRecord, NewActionRun};
pub use approval::*;
pub use chatops::*;
pub use console::*;
pub use incident::*;
pub use model::*;
