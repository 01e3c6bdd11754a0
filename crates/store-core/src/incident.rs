//! Incidents as the store keeps them: its verbs ([`IncidentStore`]; the types are `sluice-model`'s). What an update
//! means is decided elsewhere (`sluice_domain::incident::decide`); the store keeps the state and the append-only
//! timeline, declares once per key, and commits a decision with its timeline lines and outbox rows in one
//! transaction, guarded by the incident's `version` so two replicas (or a double click) produce one change.

use crate::{
    Declared, IncidentCommit, IncidentItem, IncidentRecord, NewIncident, NewTimelineEntry,
    StoreError, TimelineEntry,
};

/// The incident verbs. Every [`crate::Store`] has them.
#[async_trait::async_trait]
pub trait IncidentStore: Send + Sync {
    /// Stores a new incident, its first timeline line and `items` (the war room's creation, a lookup) in one
    /// transaction. With a declare key that is stored, writes nothing and returns that incident (`created: false`),
    /// atomically across replicas.
    async fn declare_incident(
        &self,
        i: NewIncident,
        first: NewTimelineEntry,
        items: Vec<IncidentItem>,
    ) -> Result<Declared, StoreError>;

    /// The incident, `None` if unknown.
    async fn incident(&self, id: &str) -> Result<Option<IncidentRecord>, StoreError>;

    /// The latest incident whose war room is `channel_id`.
    async fn incident_in_channel(
        &self,
        channel_id: &str,
    ) -> Result<Option<IncidentRecord>, StoreError>;

    /// Commits a decision taken on [`IncidentCommit::version`]: the new state, the timeline lines (numbered after
    /// the last) and the outbox rows. `false` (nothing written) when the incident moved on since it was read: read
    /// it again and decide again. Resolving sets the declare key aside, so the title may be declared again.
    async fn commit_incident(&self, c: IncidentCommit, now_ms: i64) -> Result<bool, StoreError>;

    /// The timeline, in order.
    async fn incident_timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError>;

    /// Incidents without a war room whose latest call (the lookup, or the channel's creation) ended before
    /// `before_ms` without the incident taking note (a crash in between): `(incident id, method, "sent" | "dead",
    /// the sent channel)`, so the timer finishes what the dispatcher's hook did not.
    async fn stalled_incidents(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, String, String, Option<String>)>, StoreError>;

    /// Incidents whose timer (`remind_at_ms`: an open one's reminder, a resolved one's archive time) is due at
    /// `now_ms`, earliest first, at most `limit`.
    async fn due_incident_reminders(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
}
