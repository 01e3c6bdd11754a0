//! Groups of alerts (noise control): the logic both backends run, written once; the statements are in
//! [`crate::sql::groups`].

use crate::db::Row;
use crate::error::corrupt;
use crate::ingest::{ref_dead_reason, to_json, IngestTx, ItemRow, TouchedLanes};
use crate::{GroupFlush, StoreError};

/// A row of [`crate::sql::groups::DUE_GROUPS`] without its alerts and counts (the caller adds them).
pub(crate) fn group_state(r: &Row) -> Result<crate::GroupState, StoreError> {
    let labels: String = r.get("labels")?;
    let labels = serde_json::from_str(&labels).map_err(|e| corrupt("group labels", e))?;
    Ok(crate::GroupState {
        id: r.get("id")?,
        key: r.get("key")?,
        rule: r.get("rule")?,
        lane: r.get("lane")?,
        team: r.get("team")?,
        channel: r.get("channel")?,
        template: r.get("template")?,
        labels,
        version: r.get("version")?,
        first_event_id: r.get("first_event_id")?,
        created_at_ms: r.get("created_at_ms")?,
        changed_at_ms: r.get("changed_at_ms")?,
        notified_at_ms: r.get("notified_at_ms")?,
        notified_firing: r.get("notified_firing")?,
        post_item_id: r.get("post_item_id")?,
        digested_at_ms: r.get("digested_at_ms")?,
        events: r.get("events")?,
        firing: 0,
        resolved: 0,
        alerts: Vec::new(),
        wait_ms: r.get("wait_ms")?,
        interval_ms: r.get("interval_ms")?,
        repeat_ms: r.get("repeat_ms")?,
    })
}

/// The writes of [`crate::Store::flush_group`], once for both backends, inside the caller's transaction: the new card
/// (it becomes the group's post), the updates linked to the group's post (born dead if it is dead), then the group's
/// new state. `first_event_id` is the group's (see [`IngestTx::group_of`]); the items are recorded as its.
pub(crate) async fn flush_in(
    tx: &mut dyn IngestTx,
    f: &GroupFlush,
    first_event_id: &str,
    now_ms: i64,
    touched: &mut TouchedLanes,
) -> Result<(), StoreError> {
    let item_row = |item, ref_item_id, dead_reason| -> Result<ItemRow<'_>, StoreError> {
        Ok(ItemRow {
            event_id: first_event_id,
            item,
            args: to_json("outbox args", &item.args)?,
            ref_item_id,
            created_at_ms: now_ms,
            dead_reason,
        })
    };
    let mut post_id = None;
    if let Some(post) = &f.post {
        let id = tx.insert_item(&item_row(post, None, None)?).await?;
        touched.insert(post.lane.clone(), id);
        post_id = Some(id);
    }
    let current = match post_id {
        Some(id) => Some((id, None)),
        None => tx.group_post(f.group_id).await?,
    };
    for item in &f.updates {
        let Some((ref_id, dead)) = &current else {
            return Err(StoreError::Other(format!(
                "group {} has no card to update",
                f.group_id
            )));
        };
        let dead_reason = dead.as_ref().map(|r| ref_dead_reason(*ref_id, r));
        let born_dead = dead_reason.is_some();
        let id = tx
            .insert_item(&item_row(item, Some(*ref_id), dead_reason)?)
            .await?;
        if !born_dead {
            let head = touched.entry(item.lane.clone()).or_insert(id);
            *head = (*head).min(id);
        }
    }
    tx.finish_flush(f, post_id, now_ms).await
}
