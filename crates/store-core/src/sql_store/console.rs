//! The [`ConsoleStore`] verbs of [`SqlStore`], written once for both backends.

use super::{audit_page, limit, parse_json, SqlStore};
use crate::console::ConsoleStore;
use crate::db::{args, Backend, Row};
use crate::sql::console as q;
use crate::{
    ActionRunRecord, ApprovalSummary, AuditRecord, CallCount, ConsoleSession, EventSummary,
    HeldInhibition, IncidentRecord, LaneView, LeaderView, LoginFailures, RecentCounts, ScheduleRun,
    StoreError,
};

fn json_col(r: &Row, col: &str) -> Result<serde_json::Value, StoreError> {
    let text: String = r.get(col)?;
    parse_json(col, &text)
}

#[async_trait::async_trait]
impl<B: Backend> ConsoleStore for SqlStore<B> {
    async fn recent_counts(&self, since_ms: i64) -> Result<RecentCounts, StoreError> {
        let mut c = self.backend.read().await?;
        let r = c.one(&q::RECENT_COUNTS, args![since_ms]).await?;
        Ok(RecentCounts {
            events_in: r.get::<i64>("events_in")?.max(0) as u64,
            calls_out: r.get::<i64>("calls_out")?.max(0) as u64,
        })
    }

    async fn lanes(&self, now_ms: i64, max: usize) -> Result<Vec<LaneView>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::LANES, args![now_ms, limit(max)])
            .await?
            .iter()
            .map(|r| {
                Ok(LaneView {
                    lane: r.get("lane")?,
                    pending: r.get::<i64>("pending")?.max(0) as u64,
                    oldest_pending_at_ms: r.get("oldest")?,
                    owner: r.get("owner")?,
                    lease_until_ms: r.get("lease_until_ms")?,
                })
            })
            .collect()
    }

    async fn leaders(&self, now_ms: i64) -> Result<Vec<LeaderView>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::LEADERS, &[])
            .await?
            .iter()
            .map(|r| {
                let until_ms: i64 = r.get("until_ms")?;
                Ok(LeaderView {
                    role: r.get("role")?,
                    owner: r.get("owner")?,
                    until_ms,
                    held: until_ms > now_ms,
                })
            })
            .collect()
    }

    async fn recent_events(
        &self,
        source: Option<&str>,
        max: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(
            &q::RECENT_EVENTS,
            args![source.unwrap_or_default(), limit(max)],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(EventSummary {
                id: r.get("id")?,
                received_at_ms: r.get("received_at_ms")?,
                source: r.get("source")?,
                body: json_col(r, "body")?,
                fate: json_col(r, "fate")?,
            })
        })
        .collect()
    }

    async fn audit_tail(&self, max: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        let head = c.one(&crate::sql::audit::HEAD, &[]).await?;
        let last_id: i64 = head.get(0)?;
        // Ids run 1, 2, 3, … without gaps, so the tail starts `max` before the head.
        let since = last_id.saturating_sub(limit(max)).max(0);
        let mut page = audit_page(&mut *c, since, last_id, max).await?;
        page.reverse();
        Ok(page)
    }

    async fn approvals(&self, max: usize) -> Result<Vec<ApprovalSummary>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::APPROVALS, args![limit(max)])
            .await?
            .iter()
            .map(|r| {
                Ok(ApprovalSummary {
                    id: r.get("id")?,
                    requester: r.get("requester")?,
                    state: r.get("state")?,
                    channel: r.get("channel")?,
                    required: u32::try_from(r.get::<i64>("required")?).unwrap_or(1),
                    created_at_ms: r.get("created_at_ms")?,
                    expires_at_ms: r.get("expires_at_ms")?,
                    decided_at_ms: r.get("decided_at_ms")?,
                    request: json_col(r, "request")?,
                })
            })
            .collect()
    }

    async fn open_console_session(
        &self,
        token_hash: &str,
        operator: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&q::DROP_EXPIRED_SESSIONS, args![now_ms]).await?;
        c.exec(
            &q::OPEN_SESSION,
            args![token_hash, operator, now_ms, expires_at_ms],
        )
        .await?;
        Ok(())
    }

    async fn console_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let mut c = self.backend.read().await?;
        c.opt(&q::SESSION, args![token_hash, now_ms])
            .await?
            .map(|r| {
                Ok(ConsoleSession {
                    operator: r.get("operator")?,
                    created_at_ms: r.get("created_at_ms")?,
                    expires_at_ms: r.get("expires_at_ms")?,
                })
            })
            .transpose()
    }

    async fn close_console_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let mut c = self.backend.write().await?;
        Ok(c.exec(&q::CLOSE_SESSION, args![token_hash]).await? > 0)
    }

    async fn held_inhibitions(
        &self,
        now_ms: i64,
        max: usize,
    ) -> Result<Vec<HeldInhibition>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::HELD_INHIBITIONS, args![now_ms, limit(max)])
            .await?
            .iter()
            .map(|r| {
                Ok(HeldInhibition {
                    key: r.get("key")?,
                    window_ms: r.get("window_ms")?,
                    alert_id: r.get("alert_id")?,
                    dedup_key: r.get("dedup_key")?,
                    first_event_id: r.get("first_event_id")?,
                    last_seen_ms: r.get("last_seen_ms")?,
                    body: json_col(r, "body")?,
                })
            })
            .collect()
    }

    async fn calls_by_channel(
        &self,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<CallCount>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::CALLS_BY_CHANNEL, args![since_ms, limit(max)])
            .await?
            .iter()
            .map(|r| {
                Ok(CallCount {
                    channel: r.get("channel")?,
                    method: r.get("method")?,
                    calls: r.get::<i64>("calls")?.max(0) as u64,
                })
            })
            .collect()
    }

    async fn incidents(&self, max: usize) -> Result<Vec<IncidentRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::INCIDENTS, args![limit(max)])
            .await?
            .iter()
            .map(super::incidents::record)
            .collect()
    }

    async fn schedule_runs(
        &self,
        schedule: &str,
        max: usize,
    ) -> Result<Vec<ScheduleRun>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::SCHEDULE_RUNS, args![schedule, limit(max)])
            .await?
            .iter()
            .map(|r| {
                Ok(ScheduleRun {
                    due_ms: r.get("due_ms")?,
                    outcome: r.get("outcome")?,
                    claimed_by: r.get("claimed_by")?,
                    claimed_at_ms: r.get("claimed_at_ms")?,
                })
            })
            .collect()
    }

    async fn step_runs(&self, max: usize) -> Result<Vec<ActionRunRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&q::STEP_RUNS, args![limit(max)])
            .await?
            .iter()
            .map(super::actions::record)
            .collect()
    }

    async fn note_login_attempt(
        &self,
        client: &str,
        now_ms: i64,
        since_ms: i64,
    ) -> Result<LoginFailures, StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&q::DROP_OLD_LOGIN_FAILURES, args![since_ms]).await?;
        // Committed on its own before the count: an attempt on another replica counted after this one sees it.
        let id: i64 = c
            .one(&q::NOTE_LOGIN_ATTEMPT, args![client, now_ms])
            .await?
            .get("id")?;
        let r = c.one(&q::LOGIN_FAILURES, args![client, since_ms]).await?;
        Ok(LoginFailures {
            attempt_id: id,
            client: r.get::<i64>("client_count")?.max(0) as u64,
            client_oldest_ms: r.get("client_oldest")?,
            total: r.get::<i64>("total_count")?.max(0) as u64,
            total_oldest_ms: r.get("total_oldest")?,
        })
    }

    async fn forget_login_attempt(&self, attempt_id: i64) -> Result<(), StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&q::FORGET_LOGIN_ATTEMPT, args![attempt_id]).await?;
        Ok(())
    }

    async fn clear_login_failures(&self, client: &str) -> Result<u64, StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&q::CLEAR_LOGIN_FAILURES, args![client]).await
    }
}
