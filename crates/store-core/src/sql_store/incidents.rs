//! The [`IncidentStore`] verbs of [`SqlStore`], written once for both backends.

use std::collections::BTreeSet;

use super::items::insert_item;
use super::{limit, parse_json, refresh_lanes, SqlStore};
use crate::db::{args, Backend, Conn, Row};
use crate::incident::IncidentStore;
use crate::sql::incidents as q;
use crate::{
    Declared, IncidentCommit, IncidentItem, IncidentPost, IncidentRecord, NewIncident,
    NewTimelineEntry, RefSent, StoreError, TimelineEntry,
};

fn json_text(what: &str, v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(format!("{what}: {e}")))
}

fn sent(r: &Row, state: &str, channel: &str, ts: &str) -> Result<Option<RefSent>, StoreError> {
    Ok(match r.get::<Option<String>>(state)?.as_deref() {
        Some("sent") => Some(RefSent {
            channel: r.get::<Option<String>>(channel)?.unwrap_or_default(),
            ts: r.get::<Option<String>>(ts)?.unwrap_or_default(),
        }),
        _ => None,
    })
}

pub(super) fn record(r: &Row) -> Result<IncidentRecord, StoreError> {
    let roles: String = r.get("roles")?;
    let origin: String = r.get("origin")?;
    let context: String = r.get("context")?;
    Ok(IncidentRecord {
        id: r.get("id")?,
        declare_key: r.get("declare_key")?,
        kind: r.get("kind")?,
        title: r.get("title")?,
        sev: u8::try_from(r.get::<i64>("sev")?).unwrap_or(0),
        status: r.get("status")?,
        channel_name: r.get("channel_name")?,
        channel_id: r.get("channel_id")?,
        declarer: r.get("declarer")?,
        roles: serde_json::from_str(&roles)
            .map_err(|e| crate::error::corrupt("incident roles", e))?,
        origin: parse_json("incident origin", &origin)?,
        context: parse_json("incident context", &context)?,
        created_at_ms: r.get("created_at_ms")?,
        resolved_at_ms: r.get("resolved_at_ms")?,
        remind_at_ms: r.get("remind_at_ms")?,
        version: r.get("version")?,
        card_item_id: r.get("card_item_id")?,
        card: sent(r, "card_state", "card_channel", "card_ts")?,
        announcement_item_id: r.get("announcement_item_id")?,
        announcement: sent(r, "ann_state", "ann_channel", "ann_ts")?,
    })
}

async fn read(c: &mut dyn Conn, id: &str) -> Result<Option<IncidentRecord>, StoreError> {
    match c.opt(&q::GET, args![id]).await? {
        Some(row) => record(&row).map(Some),
        None => Ok(None),
    }
}

async fn add_lines(
    c: &mut dyn Conn,
    id: &str,
    lines: &[NewTimelineEntry],
) -> Result<(), StoreError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut seq: i64 = c.one(&q::NEXT_SEQ, args![id]).await?.get(0)?;
    for l in lines {
        c.exec(
            &q::ADD_LINE,
            args![id, seq, l.at_ms, &l.author, &l.kind, &l.text],
        )
        .await?;
        seq += 1;
    }
    Ok(())
}

/// Writes `items`: each linked to the incident's post it refers to (left out when there is none), and the card or
/// announcement recorded on the incident when an item is one.
async fn add_items(
    c: &mut dyn Conn,
    id: &str,
    items: &[IncidentItem],
    now_ms: i64,
) -> Result<(), StoreError> {
    for i in items {
        let row = c.one(&q::GET, args![id]).await?;
        // A post that is still stored: one pruned long ago cannot be updated, and an item linked to a missing item
        // would wait for it forever.
        let post = |item: &str, state: &str| -> Result<Option<i64>, StoreError> {
            Ok(match row.get::<Option<String>>(state)? {
                Some(_) => row.get(item)?,
                None => None,
            })
        };
        let link = match i.on {
            None => None,
            Some(IncidentPost::Card) => match post("card_item_id", "card_state")? {
                Some(p) => Some(p),
                None => continue,
            },
            Some(IncidentPost::Announcement) => match post("announcement_item_id", "ann_state")? {
                Some(p) => Some(p),
                None => continue,
            },
        };
        let item = insert_item(c, id, &i.item, link, now_ms).await?;
        match i.is {
            Some(IncidentPost::Card) => {
                c.exec(&q::SET_CARD, args![item, id]).await?;
            }
            Some(IncidentPost::Announcement) => {
                c.exec(&q::SET_ANNOUNCEMENT, args![item, id]).await?;
            }
            None => {}
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl<B: Backend> IncidentStore for SqlStore<B> {
    async fn declare_incident(
        &self,
        i: NewIncident,
        first: NewTimelineEntry,
        items: Vec<IncidentItem>,
    ) -> Result<Declared, StoreError> {
        let mut tx = self.backend.begin().await?;
        let lanes: BTreeSet<String> = items.iter().map(|i| i.item.lane.clone()).collect();
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let origin = json_text("incident origin", &i.origin)?;
        let inserted = tx
            .conn()
            .opt(
                &q::DECLARE,
                args![
                    &i.id,
                    &i.declare_key,
                    &i.kind,
                    &i.title,
                    i64::from(i.sev),
                    "investigating",
                    &i.channel_name,
                    &i.declarer,
                    "{}",
                    origin.as_str(),
                    "null",
                    i.created_at_ms,
                    i.remind_at_ms
                ],
            )
            .await?;
        if inserted.is_none() {
            // Declared before (perhaps by a replica that committed just now): that incident is the answer.
            let id: String = tx
                .conn()
                .one(&q::BY_KEY, args![&i.declare_key])
                .await?
                .get(0)?;
            let incident = read(tx.conn(), &id)
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("incident {id} vanished")))?;
            return Ok(Declared {
                incident,
                created: false,
            });
        }
        add_lines(tx.conn(), &i.id, std::slice::from_ref(&first)).await?;
        add_items(tx.conn(), &i.id, &items, i.created_at_ms).await?;
        refresh_lanes(tx.conn(), &lanes).await?;
        let incident = read(tx.conn(), &i.id)
            .await?
            .ok_or_else(|| StoreError::Other("the incident just declared cannot be read".into()))?;
        tx.commit().await?;
        Ok(Declared {
            incident,
            created: true,
        })
    }

    async fn incident(&self, id: &str) -> Result<Option<IncidentRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        read(&mut *c, id).await
    }

    async fn incident_in_channel(
        &self,
        channel_id: &str,
    ) -> Result<Option<IncidentRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        match c.opt(&q::BY_CHANNEL, args![channel_id]).await? {
            Some(row) => record(&row).map(Some),
            None => Ok(None),
        }
    }

    async fn commit_incident(&self, c: IncidentCommit, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.backend.begin().await?;
        let lanes: BTreeSet<String> = c.items.iter().map(|i| i.item.lane.clone()).collect();
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let roles = json_text("incident roles", &c.roles)?;
        let context = json_text("incident context", &c.context)?;
        let changed = tx
            .conn()
            .exec(
                &q::COMMIT,
                args![
                    &c.status,
                    i64::from(c.sev),
                    roles.as_str(),
                    c.channel_id.as_deref(),
                    context.as_str(),
                    c.resolved_at_ms,
                    c.remind_at_ms,
                    &c.id,
                    c.version
                ],
            )
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        if c.status == "resolved" {
            let key: String = tx
                .conn()
                .one(&q::GET, args![&c.id])
                .await?
                .get("declare_key")?;
            if !key.ends_with(&format!("#{}", c.id)) {
                tx.conn().exec(&q::RETIRE_KEY, args![&c.id]).await?;
            }
        }
        add_lines(tx.conn(), &c.id, &c.timeline).await?;
        add_items(tx.conn(), &c.id, &c.items, now_ms).await?;
        refresh_lanes(tx.conn(), &lanes).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn incident_timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::TIMELINE, args![id])
            .await?
            .iter()
            .map(|r| {
                Ok(TimelineEntry {
                    seq: r.get(0)?,
                    at_ms: r.get(1)?,
                    author: r.get(2)?,
                    kind: r.get(3)?,
                    text: r.get(4)?,
                })
            })
            .collect()
    }

    async fn stalled_incidents(
        &self,
        before_ms: i64,
        max: usize,
    ) -> Result<Vec<(String, String, String, Option<String>)>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::STALLED, args![before_ms, limit(max)])
            .await?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .collect()
    }

    async fn due_incident_reminders(
        &self,
        now_ms: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::DUE_REMINDERS, args![now_ms, limit(max)])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}
