//! Runs of `[[action]]`s as the store keeps them: its verbs ([`ActionRunStore`]; the types are `sluice-model`'s).
//! What a run's end means is decided by `sluice_domain::action`; the store starts a run with its outbox rows (the
//! outgoing call, the card's "Running…") in one transaction, and ends a running run once.
//!
//! An item of a run with `ref_post` set is a refresh of the card of the alert the run's target belongs to (a living
//! `chat.update` marker, rendered at send time): it is linked to that alert's card in its lane as an action's
//! follow-up is, and skipped when the alert has no live card there or a refresh is already waiting.

use crate::{ActionRunRecord, NewActionRun, NewOutboxItem, StoreError};

/// The action-run verbs. Every [`crate::Store`] has them.
#[async_trait::async_trait]
pub trait ActionRunStore: Send + Sync {
    /// Records run `r` as running, with `items` (its outgoing call and card update) in one transaction. `Err`
    /// holds the id of the run of the same action on the same target that is still running: nothing is written.
    async fn start_action_run(
        &self,
        r: NewActionRun,
        items: Vec<NewOutboxItem>,
    ) -> Result<Result<(), String>, StoreError>;

    /// Runs failed run `id` again, from `now_ms`, when its dead-lettered call was replayed: `running` once more,
    /// with `items` (the card's "Running…") in the same transaction. `false` (nothing written) when the run is not
    /// failed, is unknown, or another run of the same action on the same target is running.
    async fn reopen_action_run(
        &self,
        id: &str,
        now_ms: i64,
        items: Vec<NewOutboxItem>,
    ) -> Result<bool, StoreError>;

    /// The latest run of each action on `target` (an event id, an approval id), in action name order: what a card
    /// shows about the runs on it.
    async fn action_runs_of(&self, target: &str) -> Result<Vec<ActionRunRecord>, StoreError>;

    /// Ends running run `id` as `state` (`done`, `failed`) with the call's status and result, and enqueues `items`
    /// (its result, the card's status) in the same transaction. `false` (nothing written) when the run had already
    /// ended or is unknown.
    #[allow(clippy::too_many_arguments)]
    async fn finish_action_run(
        &self,
        id: &str,
        state: &str,
        status: Option<i64>,
        result: Option<&str>,
        now_ms: i64,
        items: Vec<NewOutboxItem>,
    ) -> Result<bool, StoreError>;

    /// The run, `None` if unknown.
    async fn action_run(&self, id: &str) -> Result<Option<ActionRunRecord>, StoreError>;
}
