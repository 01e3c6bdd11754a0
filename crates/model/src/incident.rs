//! Incidents as plain data: what crosses the store's incident verbs (`IncidentStore`) and what the incident workflow
//! decides over (`sluice_domain::incident::decide`). The store keeps them; it does not own the rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{NewOutboxItem, RefSent};

/// An incident to declare (`IncidentStore::declare_incident`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewIncident {
    /// `"inc_"` + a UUID v7.
    pub id: String,
    /// Declaring with a key that is stored (a double click, two reactions, a Slack retry, two replicas) writes
    /// nothing and returns that incident.
    pub declare_key: String,
    /// The `[[incident_type]]` name.
    pub kind: String,
    pub title: String,
    pub sev: u8,
    /// The war room's name as planned (before a `name_taken` suffix).
    pub channel_name: String,
    /// Slack user id of who declared.
    pub declarer: String,
    /// What it was declared from: `{"via": "command"|"reaction"|"card", "channel", "ts", "text", "permalink", …}`.
    pub origin: serde_json::Value,
    pub created_at_ms: i64,
    /// When a reminder is due if nobody posts an update (`None`: no reminders for this severity).
    pub remind_at_ms: Option<i64>,
}

/// One line of an incident's timeline. `seq` orders it (1, 2, …), whatever the clocks of replicas say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub seq: i64,
    pub at_ms: i64,
    /// Slack user id, or `"sluice"`.
    pub author: String,
    /// `declared`, `status`, `role`, `severity`, `note`, `lookup`, `room`, `reminder`, `resolved`.
    pub kind: String,
    pub text: String,
}

/// A timeline line to append (its `seq` is the store's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTimelineEntry {
    pub at_ms: i64,
    pub author: String,
    pub kind: String,
    pub text: String,
}

/// An incident as it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRecord {
    pub id: String,
    pub declare_key: String,
    pub kind: String,
    pub title: String,
    pub sev: u8,
    /// `investigating`, `identified`, `mitigated` or `resolved`.
    pub status: String,
    pub channel_name: String,
    /// The war room's id once Slack created it.
    pub channel_id: Option<String>,
    pub declarer: String,
    /// Role (`commander`, `comms`, …) → Slack user id.
    pub roles: BTreeMap<String, String>,
    pub origin: serde_json::Value,
    /// What the lookup answered (`{customer, tier, account_manager}`), or `{"error": …}` when it failed; `Null`
    /// while none was made.
    pub context: serde_json::Value,
    pub created_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub remind_at_ms: Option<i64>,
    /// Bumped by every commit; [`IncidentCommit::version`] hands it back.
    pub version: i64,
    /// The pinned card and the announcement, and where they were posted once sent.
    pub card_item_id: Option<i64>,
    pub card: Option<RefSent>,
    pub announcement_item_id: Option<i64>,
    pub announcement: Option<RefSent>,
}

/// Which of an incident's posts an item refers to: it waits until that post is sent and then carries its channel and
/// ts (a `chat.update` of it, a `pins.add`, a reply in its thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentPost {
    Card,
    Announcement,
}

/// An outbox row an incident's commit writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentItem {
    pub item: NewOutboxItem,
    /// Linked to that post (left out when the incident has no such post).
    pub on: Option<IncidentPost>,
    /// This item *is* that post: its id is recorded on the incident (the card, the announcement).
    pub is: Option<IncidentPost>,
}

/// What a decision on an incident changes, committed at once (`IncidentStore::commit_incident`) on the
/// [`IncidentRecord::version`] it was taken on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentCommit {
    pub id: String,
    pub version: i64,
    pub status: String,
    pub sev: u8,
    pub roles: BTreeMap<String, String>,
    pub channel_id: Option<String>,
    pub context: serde_json::Value,
    pub resolved_at_ms: Option<i64>,
    pub remind_at_ms: Option<i64>,
    pub timeline: Vec<NewTimelineEntry>,
    pub items: Vec<IncidentItem>,
}

impl IncidentCommit {
    /// A commit that changes nothing yet, on `r` as read.
    pub fn on(r: &IncidentRecord) -> Self {
        IncidentCommit {
            id: r.id.clone(),
            version: r.version,
            status: r.status.clone(),
            sev: r.sev,
            roles: r.roles.clone(),
            channel_id: r.channel_id.clone(),
            context: r.context.clone(),
            resolved_at_ms: r.resolved_at_ms,
            remind_at_ms: r.remind_at_ms,
            timeline: Vec::new(),
            items: Vec::new(),
        }
    }
}

/// The answer of `IncidentStore::declare_incident`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Declared {
    pub incident: IncidentRecord,
    /// `false` when the declare key named an incident that already existed (nothing was written).
    pub created: bool,
}
