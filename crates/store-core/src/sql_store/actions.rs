//! The [`ActionRunStore`] verbs of [`SqlStore`], written once for both backends.

use std::collections::{BTreeMap, BTreeSet};

use super::items::insert_item;
use super::{parse_json, refresh_lanes, SqlStore};
use crate::action_run::ActionRunStore;
use crate::db::{args, Arg, Backend, Conn, Row};
use crate::ingest::{refresh_cards, IngestTx, SqlIngest, TouchedLanes};
use crate::sql::actions as q;
use crate::sql::Stmt;
use crate::{ActionRunRecord, NewActionRun, NewOutboxItem, StoreError};

pub(super) fn record(r: &Row) -> Result<ActionRunRecord, StoreError> {
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

/// Writes a run's `items` for owner `id`: plain rows as they are, card refreshes (`ref_post`) linked to the cards of
/// the alert of `target` (see [`ActionRunStore`]).
pub(super) async fn insert_items(
    c: &mut dyn Conn,
    id: &str,
    target: &str,
    items: &[NewOutboxItem],
    now_ms: i64,
) -> Result<(), StoreError> {
    let (cards, plain): (Vec<NewOutboxItem>, Vec<NewOutboxItem>) =
        items.iter().cloned().partition(|i| i.ref_post);
    for item in &plain {
        insert_item(c, id, item, None, now_ms).await?;
    }
    if !cards.is_empty() {
        let mut tx = SqlIngest { c };
        if let Some(alert_id) = tx.alert_of(target).await? {
            let mut touched = TouchedLanes::new();
            refresh_cards(&mut tx, alert_id, id, &cards, now_ms, &mut touched).await?;
        }
    }
    Ok(())
}

impl<B: Backend> SqlStore<B> {
    /// Runs `stmt`, an update of run `id` that returns its target (no row: nothing changed), and writes `items`
    /// with it in one transaction. `false` when nothing changed.
    async fn change_run(
        &self,
        stmt: &Stmt,
        a: &[Arg<'_>],
        id: &str,
        items: &[NewOutboxItem],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.backend.begin().await?;
        let lanes: BTreeSet<String> = items.iter().map(|i| i.lane.clone()).collect();
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let Some(row) = tx.conn().opt(stmt, a).await? else {
            return Ok(false);
        };
        let target: String = row.get(0)?;
        insert_items(tx.conn(), id, &target, items, now_ms).await?;
        refresh_lanes(tx.conn(), &lanes).await?;
        tx.commit().await?;
        Ok(true)
    }
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
        insert_items(tx.conn(), &r.id, &r.target, &items, r.started_at_ms).await?;
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
        self.change_run(
            &q::FINISH,
            args![state, status, result, now_ms, id],
            id,
            &items,
            now_ms,
        )
        .await
    }

    async fn reopen_action_run(
        &self,
        id: &str,
        now_ms: i64,
        items: Vec<NewOutboxItem>,
    ) -> Result<bool, StoreError> {
        self.change_run(&q::REOPEN, args![id, now_ms], id, &items, now_ms)
            .await
    }

    async fn action_runs_of(&self, target: &str) -> Result<Vec<ActionRunRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        let mut latest: BTreeMap<String, ActionRunRecord> = BTreeMap::new();
        for row in c.all(&q::OF_TARGET, args![target]).await? {
            let run = record(&row)?;
            latest.insert(run.action.clone(), run);
        }
        Ok(latest.into_values().collect())
    }

    async fn action_run(&self, id: &str) -> Result<Option<ActionRunRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        c.opt(&q::GET, args![id])
            .await?
            .map(|row| record(&row))
            .transpose()
    }
}
