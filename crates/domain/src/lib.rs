//! Sluice's domain decisions, with no IO: what an accepted event becomes ([`pipeline::Pipeline`]: fate, outbox
//! rows, dedup and inhibition keys), the silences it is matched against ([`silence::SilenceSet`]), the decisions
//! people take on an alert ([`verb::Verb`]) and how an alert's card is drawn from the alert as it stands
//! ([`alert::card`], which the living refresh [`living::render`] and the handlers both use).
//!
//! Approvals are the first workflow on one shape: [`approval::decide`], a pure state machine (state + input + clock
//! → new state + effects), and [`outgoing`], internal calls as outbox rows.
//!
//! ChatOps: [`command`] (the grammar of configured commands), [`rotation`] (who is on call) and [`schedule`]
//! (which cron minute is due, and what a missed run becomes).
//!
//! Everything here is a plain function of its arguments: time is passed in, nothing reads the store or calls
//! Slack. The results are the store's model types, committed by the caller in one `Store::ingest`. The binary's
//! handlers load, call these, and commit.

pub mod action;
pub mod alert;
pub mod approval;
pub mod budget;
pub mod clock;
pub mod command;
pub mod flush;
pub mod form;
pub mod incident;
pub mod living;
pub mod outbox;
pub mod outgoing;
pub mod pipeline;
pub mod remind;
pub mod rotation;
pub mod schedule;
pub mod silence;
pub mod step;
pub mod verb;
