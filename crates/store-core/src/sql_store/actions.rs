//! The [`ActionRunStore`] verbs of [`SqlStore`], written once for both backends.

use std::collections::BTreeSet;

use super::items::insert_item;
use super::{parse_json, refresh_lanes, SqlStore};
use crate::action_run::ActionRunStore;
use crate::db::{args, Backend, Conn, Row};
use crate::sql::actions as q;
use crate::{ActionRunRecord, NewActionRun, NewOutboxItem, StoreError};

fn record(r: &Row) -> Result<ActionRunRecord, StoreError> {
    let card: String = r.get("card")?;
    Ok(ActionRunRecord {
        id: r.get("id")?,
        action: r.get("action")?,
        target: r.get("target")?,
        actor: r.get("actor")?,
        team: r.get("team")?,
        channel: r.get("channel")?,
        ts: r.get("ts")?,
        reply: r.get("reply")?,
        card: parse_json("action run card", &card)?,
        state: r.get("state")?,
        status: r.get("status")?,
        result: r.get("result")?,
        started_at_ms: r.get("started_at_ms")?,
        finished_at_ms: r.get("finished_at_ms")?,
    })
}

/// Inserts run `r` as running; `false` when a run of the same action on the same target is running (or the id is
/// taken).
pub(super) async fn insert_run(c: &mut dyn Conn, r: &NewActionRun) -> Result<bool, StoreError> {
    let card = serde_json::to_string(&r.card)
        .map_err(|e| StoreError::Other(format!("action run card: {e}")))?;
    Ok(c.opt(
        &q::START,
        args![
            &r.id,
            &r.action,
            &r.target,
            &r.actor,
            &r.team,
            &r.channel,
            &r.ts,
            &r.reply,
            &card,
            r.started_at_ms
        ],
    )
    .await?
    .is_some())
}

#[async_trait::async_trait]
impl<B: Backend> ActionRunStore for SqlStore<B> {
    async fn start_action_run(
        &self,
        r: NewActionRun,
        items: Vec<NewOutboxItem>,
    ) -> Result<Result<(), String>, StoreError> {
        let mut tx = self.backend.begin().await?;
        let lanes: BTreeSet<String> = items.iter().map(|i| i.lane.clone()).collect();
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let inserted = insert_run(tx.conn(), &r).await?;
        if !inserted {
            let running = tx
                .conn()
                .opt(&q::RUNNING, args![&r.action, &r.target])
                .await?
                .map(|row| row.get::<String>(0))
                .transpose()?
                .unwrap_or_default();
            return Ok(Err(running));
        }
        for item in &items {
            insert_item(tx.conn(), &r.id, item, None, r.started_at_ms).await?;
        }
        refresh_lanes(tx.conn(), &lanes).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn finish_action_run(
        &self,
        id: &str,
        state: &str,
        status: Option<i64>,
        result: Option<&str>,
        now_ms: i64,
        items: Vec<NewOutboxItem>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.backend.begin().await?;
        let lanes: BTreeSet<String> = items.iter().map(|i| i.lane.clone()).collect();
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let changed = tx
            .conn()
            .exec(&q::FINISH, args![state, status, result, now_ms, id])
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        for item in &items {
            insert_item(tx.conn(), id, item, None, now_ms).await?;
        }
        refresh_lanes(tx.conn(), &lanes).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn action_run(&self, id: &str) -> Result<Option<ActionRunRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        c.opt(&q::GET, args![id])
            .await?
            .map(|row| record(&row))
            .transpose()
    }
}
