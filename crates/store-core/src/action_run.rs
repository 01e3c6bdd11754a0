//! Runs of `[[action]]`s as the store keeps them: its verbs ([`ActionRunStore`]; the types are `sluice-model`'s).
//! What a run's end means is decided by `sluice_domain::action`; the store starts a run with its outbox rows (the
//! outgoing call, the card's "Running…") in one transaction, and ends a running run once.

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
