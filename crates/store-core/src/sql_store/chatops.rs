//! The [`ChatopsStore`] verbs of [`SqlStore`], written once for both backends.

use std::collections::{BTreeMap, BTreeSet};

use super::items::insert_item;
use super::{limit, parse_json, refresh_lanes, SqlStore};
use crate::chatops::ChatopsStore;
use crate::db::{args, Backend, Row};
use crate::sql::chatops as q;
use crate::{Fate, NewOutboxItem, OpenAlert, PeriodStats, RecentEvent, StoreError};

/// How many events of a period the noisiest lists read at most.
const SAMPLE: usize = 50_000;

fn open_alert(r: &Row) -> Result<OpenAlert, StoreError> {
    let body: String = r.get("body")?;
    Ok(OpenAlert {
        alert_id: r.get("id")?,
        dedup_key: r.get("dedup_key")?,
        first_event_id: r.get("first_event_id")?,
        count: r.get("count")?,
        first_seen_ms: r.get("first_seen_ms")?,
        last_seen_ms: r.get("last_seen_ms")?,
        body: parse_json("event body", &body)?,
    })
}

fn top(counts: BTreeMap<String, i64>) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(5);
    v
}

#[async_trait::async_trait]
impl<B: Backend> ChatopsStore for SqlStore<B> {
    async fn claim_schedule_run(
        &self,
        schedule: &str,
        due_ms: i64,
        outcome: &str,
        owner: &str,
        now_ms: i64,
        post: Option<NewOutboxItem>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.backend.begin().await?;
        let lanes: BTreeSet<String> = post.iter().map(|p| p.lane.clone()).collect();
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let row = tx
            .conn()
            .opt(
                &q::CLAIM_RUN,
                args![schedule, due_ms, outcome, owner, now_ms],
            )
            .await?;
        if row.is_none() {
            // Claimed before (by this replica or another): nothing is written.
            return Ok(false);
        }
        if let Some(item) = &post {
            // The item's event id names the run, so dead letters and the console say which report it was.
            let run = format!("sched:{schedule}:{due_ms}");
            insert_item(tx.conn(), &run, item, None, now_ms).await?;
            refresh_lanes(tx.conn(), &lanes).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn last_schedule_run(&self, schedule: &str) -> Result<Option<i64>, StoreError> {
        let mut c = self.backend.read().await?;
        c.one(&q::LAST_RUN, args![schedule]).await?.get(0)
    }

    async fn open_alerts(&self, max: usize) -> Result<Vec<OpenAlert>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::OPEN_ALERTS, args![limit(max)])
            .await?
            .iter()
            .map(open_alert)
            .collect()
    }

    async fn find_open_alert(&self, needle: &str) -> Result<Option<OpenAlert>, StoreError> {
        let mut c = self.backend.read().await?;
        match c.opt(&q::FIND_OPEN_ALERT, args![needle]).await? {
            Some(r) => open_alert(&r).map(Some),
            None => Ok(None),
        }
    }

    async fn events_since(
        &self,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<RecentEvent>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::EVENTS_SINCE, args![since_ms, limit(max)])
            .await?
            .iter()
            .map(|r| {
                let body: String = r.get("body")?;
                let fate: String = r.get("fate")?;
                Ok(RecentEvent {
                    id: r.get("id")?,
                    received_at_ms: r.get("received_at_ms")?,
                    body: parse_json("event body", &body)?,
                    fate: parse_json("event fate", &fate)?,
                })
            })
            .collect()
    }

    async fn period_stats(&self, from_ms: i64, to_ms: i64) -> Result<PeriodStats, StoreError> {
        let mut c = self.backend.read().await?;
        let received = c
            .one(&q::COUNT_RECEIVED, args![from_ms, to_ms])
            .await?
            .get(0)?;
        let posted = c
            .one(&q::COUNT_POSTED, args![from_ms, to_ms])
            .await?
            .get(0)?;
        let dead_lettered = c.one(&q::COUNT_DEAD, args![from_ms, to_ms]).await?.get(0)?;
        let approvals = c
            .one(&q::COUNT_APPROVALS, args![from_ms, to_ms])
            .await?
            .get(0)?;
        let rows = c
            .all(&q::PERIOD_EVENTS, args![from_ms, to_ms, limit(SAMPLE)])
            .await?;
        let mut suppressed = 0;
        let mut services: BTreeMap<String, i64> = BTreeMap::new();
        let mut routes: BTreeMap<String, i64> = BTreeMap::new();
        for r in &rows {
            let body: String = r.get("body")?;
            let fate: String = r.get("fate")?;
            let body: serde_json::Value = parse_json("event body", &body)?;
            if let Some(service) = body["service"].as_str().filter(|s| !s.is_empty()) {
                *services.entry(service.to_string()).or_default() += 1;
            }
            match serde_json::from_str::<Fate>(&fate) {
                Ok(Fate::Suppressed { .. }) => suppressed += 1,
                Ok(Fate::Queued { rules }) => {
                    for rule in rules {
                        *routes.entry(rule).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        Ok(PeriodStats {
            from_ms,
            to_ms,
            received,
            posted,
            suppressed,
            dead_lettered,
            approvals,
            noisiest_services: top(services),
            noisiest_routes: top(routes),
            sampled: rows.len() >= SAMPLE,
        })
    }
}
