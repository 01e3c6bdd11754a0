//! The [`ApprovalStore`] verbs of [`SqlStore`], written once for both backends.

use std::collections::BTreeSet;

use super::items::insert_item;
use super::{limit, parse_json, refresh_lanes, SqlStore};
use crate::approval::*;
use crate::db::{args, Arg, Backend, Conn, Row};
use crate::sql::approvals as q;
use crate::{
    ApprovalCommit, ApprovalDecision, ApprovalRecord, Created, NewApproval, NewOutboxItem, RefSent,
    StoreError,
};

fn record(r: &Row, decisions: Vec<ApprovalDecision>) -> Result<ApprovalRecord, StoreError> {
    let request: String = r.get("request")?;
    let card_state: Option<String> = r.get("card_state")?;
    let card = match card_state.as_deref() {
        Some("sent") => Some(RefSent {
            channel: r.get::<Option<String>>("sent_channel")?.unwrap_or_default(),
            ts: r.get::<Option<String>>("sent_ts")?.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(ApprovalRecord {
        id: r.get("id")?,
        idempotency_key: r.get("idempotency_key")?,
        request: parse_json("approval request", &request)?,
        requester: r.get("requester")?,
        state: r.get("state")?,
        required: u32::try_from(r.get::<i64>("required")?).unwrap_or(1),
        allow_self: r.get("allow_self")?,
        team: r.get("team")?,
        channel: r.get("channel")?,
        created_at_ms: r.get("created_at_ms")?,
        expires_at_ms: r.get("expires_at_ms")?,
        decided_at_ms: r.get("decided_at_ms")?,
        version: r.get("version")?,
        decisions,
        card_item_id: r.get("card_item_id")?,
        card,
    })
}

async fn read(c: &mut dyn Conn, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
    let Some(row) = c.opt(&q::GET, args![id]).await? else {
        return Ok(None);
    };
    let decisions = c
        .all(&q::DECISIONS, args![id])
        .await?
        .iter()
        .map(|r| {
            Ok(ApprovalDecision {
                actor: r.get(0)?,
                verdict: r.get(1)?,
                reason: r.get(2)?,
                at_ms: r.get(3)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    record(&row, decisions).map(Some)
}

#[async_trait::async_trait]
impl<B: Backend> ApprovalStore for SqlStore<B> {
    async fn create_approval(
        &self,
        a: NewApproval,
        card: NewOutboxItem,
    ) -> Result<Created, StoreError> {
        let request = serde_json::to_string(&a.request)
            .map_err(|e| StoreError::Other(format!("approval request: {e}")))?;
        let mut tx = self.backend.begin().await?;
        let lanes = BTreeSet::from([card.lane.clone()]);
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let inserted = tx
            .conn()
            .opt(
                &q::CREATE,
                args![
                    &a.id,
                    a.idempotency_key.as_deref(),
                    Arg::Json(&request),
                    &a.requester,
                    i64::from(a.required),
                    a.allow_self,
                    &a.team,
                    &a.channel,
                    a.created_at_ms,
                    a.expires_at_ms
                ],
            )
            .await?;
        if inserted.is_none() {
            // The key is stored (perhaps by a replica that committed just now): that approval is the answer.
            let key = a.idempotency_key.as_deref().unwrap_or_default();
            let id: String = tx.conn().one(&q::BY_KEY, args![key]).await?.get(0)?;
            let approval = read(tx.conn(), &id)
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("approval {id} vanished")))?;
            return Ok(Created {
                approval,
                created: false,
            });
        }
        let item = insert_item(tx.conn(), &a.id, &card, None, a.created_at_ms).await?;
        tx.conn().exec(&q::SET_CARD, args![item, &a.id]).await?;
        refresh_lanes(tx.conn(), &lanes).await?;
        let approval = read(tx.conn(), &a.id)
            .await?
            .ok_or_else(|| StoreError::Other("the approval just created cannot be read".into()))?;
        tx.commit().await?;
        Ok(Created {
            approval,
            created: true,
        })
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        read(&mut *c, id).await
    }

    async fn commit_approval(&self, c: ApprovalCommit, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.backend.begin().await?;
        let lanes: BTreeSet<String> = c.items.iter().map(|i| i.item.lane.clone()).collect();
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let changed = tx
            .conn()
            .exec(
                &q::COMMIT,
                args![&c.state, c.decided_at_ms, &c.id, c.version],
            )
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        if let Some(d) = &c.decision {
            tx.conn()
                .exec(
                    &q::ADD_DECISION,
                    args![&c.id, &d.actor, &d.verdict, d.reason.as_deref(), d.at_ms],
                )
                .await?;
        }
        if let Some(r) = &c.run {
            // Only the one commit that moves this version on gets here, so the run starts once.
            super::actions::insert_run(tx.conn(), r).await?;
        }
        let row = tx.conn().one(&q::GET, args![&c.id]).await?;
        // The card's item, if it is still stored: a card pruned long after it was decided cannot be updated, and an
        // update linked to a missing item would wait for it forever.
        let card: Option<i64> = match row.get::<Option<String>>("card_state")? {
            Some(_) => row.get("card_item_id")?,
            None => None,
        };
        // The run's refreshes of its target's cards (an alert's, when a button asked for the approval) are linked as
        // a run's are.
        let (refresh, items): (Vec<_>, Vec<_>) = c
            .items
            .iter()
            .partition(|i| !i.on_card && i.item.ref_post && c.run.is_some());
        if let Some(r) = &c.run {
            let refresh: Vec<_> = refresh.into_iter().map(|i| i.item.clone()).collect();
            super::actions::insert_items(tx.conn(), &r.id, &r.target, &refresh, now_ms).await?;
        }
        for i in items {
            match (i.on_card, card) {
                (false, _) => insert_item(tx.conn(), &c.id, &i.item, None, now_ms).await?,
                (true, Some(card)) => {
                    insert_item(tx.conn(), &c.id, &i.item, Some(card), now_ms).await?
                }
                (true, None) => continue,
            };
        }
        refresh_lanes(tx.conn(), &lanes).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn due_approvals(&self, now_ms: i64, max: usize) -> Result<Vec<String>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::DUE, args![now_ms, limit(max)])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}
