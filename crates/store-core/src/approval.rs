//! Approvals as the store keeps them: its verbs ([`ApprovalStore`]; the types are `sluice-model`'s). What a click or an expiry
//! means is decided elsewhere (`sluice_domain::approval::decide`); the store keeps the state, the counted decisions,
//! and commits a decision with the outbox rows it causes in one transaction, guarded by the approval's `version` so
//! that two replicas (or a double click) deciding at once produce one decision.

use crate::{ApprovalCommit, ApprovalRecord, Created, NewApproval, NewOutboxItem, StoreError};

/// The approval verbs. Every [`crate::Store`] has them.
#[async_trait::async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Stores a new approval and its card (`card`, a `chat.postMessage`) in one transaction. With an idempotency key
    /// that is already stored, writes nothing and returns that approval (`created: false`), atomically across
    /// replicas.
    async fn create_approval(
        &self,
        a: NewApproval,
        card: NewOutboxItem,
    ) -> Result<Created, StoreError>;

    /// The approval with its decisions and card, `None` if unknown.
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError>;

    /// Commits a decision taken on [`ApprovalCommit::version`]: the new state, the decision, the outbox rows, and
    /// the `[[action]]` run an approved `action` starts ([`ApprovalCommit::run`]). `false`
    /// (nothing written) when the approval moved on since it was read — another click or replica decided first; read
    /// it again and decide again.
    async fn commit_approval(&self, c: ApprovalCommit, now_ms: i64) -> Result<bool, StoreError>;

    /// Pending approvals whose expiry is at or before `now_ms`, earliest first, at most `limit`.
    async fn due_approvals(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError>;
}
