//! [`SqlStore`]: the [`Store`] verbs, written once over a [`Backend`]'s connections.
//!
//! Every verb runs the statements of [`crate::sql`] through [`Conn`]; what differs between SQLite and PostgreSQL is
//! asked of the [`Backend`]: where a read or a write connection comes from, how a write transaction starts, and what
//! it must lock first (PostgreSQL locks lane rows before any change to which items of a lane are pending, and takes
//! advisory locks on dedup and group keys; SQLite has a single writer and locks nothing).

mod actions;
mod approvals;
mod chatops;
mod console;
mod incidents;
mod items;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::alerting::{
    alert_root, check_silence, matchers_json, new_silence_id, parse_fate, parse_matchers,
};
use crate::audit;
use crate::coord::{RateParams, RATE_IDLE_MS};
use crate::db::{args, Arg, Backend, Conn, Dialect, Row, TxWork};
use crate::error::corrupt;
use crate::group::{spawn_writer, Batch, Batches, Encoded, GroupCommit, Ingester};
use crate::grouping::{self as grp, group_state};
use crate::ingest::{
    candidate_lanes, checks_of, dedup_of, ingest_inhibited, needs_reads, outbox_of,
    ref_dead_reason, root_of, to_json, IngestTx, SqlIngest, TouchedLanes,
};
use crate::sql::{self, alerts, coordination, groups, outbox, retention, silences};
use crate::*;

/// A [`Store`] on a backend, with its group-commit writer for ingest.
pub struct SqlStore<B: Backend> {
    backend: std::sync::Arc<B>,
    ingester: Ingester,
}

impl<B: Backend> SqlStore<B> {
    /// The store over `backend`; spawns the ingest writer task (call from within a Tokio runtime).
    pub fn new(backend: B) -> Self {
        let backend = std::sync::Arc::new(backend);
        let ingester = spawn_writer(Committer(backend.clone()));
        SqlStore { backend, ingester }
    }
}

struct Committer<B>(std::sync::Arc<B>);

impl<B: Backend> GroupCommit for Committer<B> {
    fn commit(&self, batches: Batches) -> BoxFuture<'_, Result<Ingested, StoreError>> {
        self.0.run_tx(Box::new(GroupWork {
            backend: self.0.clone(),
            batches,
        }))
    }
}

/// One group commit's writes, for [`Backend::run_tx`] to run in one transaction: one fsync, and on PostgreSQL one
/// set of locks.
struct GroupWork<B> {
    backend: std::sync::Arc<B>,
    batches: Batches,
}

impl<B: Backend> TxWork for GroupWork<B> {
    fn run<'c>(
        self: Box<Self>,
        c: &'c mut dyn Conn,
    ) -> BoxFuture<'c, Result<Ingested, StoreError>> {
        Box::pin(async move { commit_group(&*self.backend, &self.batches, c).await })
    }
}

/// The writes of many callers' batches inside the group commit's transaction `c`.
async fn commit_group(
    backend: &dyn Backend,
    batches: &[Batch],
    c: &mut dyn Conn,
) -> Result<Ingested, StoreError> {
    let all: Vec<(&NewEvent, &Encoded)> = batches
        .iter()
        .flat_map(|b| b.events.iter().zip(&b.encoded))
        .collect();
    // Dedup and group keys first, then lanes, each in a fixed order: two replicas never wait on each other in a
    // cycle, and two seeing the same alert at once make one open alert and one merge.
    let mut keys: Vec<&str> = all
        .iter()
        .filter_map(|(e, _)| dedup_of(e))
        .flat_map(|d| {
            std::iter::once(d.key.as_str()).chain(d.groups.iter().map(|g| g.key.as_str()))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    backend.lock_keys(c, &keys).await?;
    let lanes: BTreeSet<String> = batches
        .iter()
        .flat_map(|b| candidate_lanes(&b.events))
        .collect();
    backend.lock_lanes(c, &lanes).await?;
    let mut touched = TouchedLanes::new();
    let mut ingested = Ingested::default();
    // Events without dedup, and alerts that can only be new (see `new_alerts`), are written with multi-row INSERTs
    // (a few statements per group commit instead of several per event). Other dedup events go one by one, after
    // writing what precedes them, so order is kept.
    let events: Vec<&NewEvent> = all.iter().map(|(ev, _)| *ev).collect();
    let bulk = new_alerts(c, &events).await?;
    let mut plain: Vec<(&NewEvent, &Encoded)> = Vec::new();
    for (ev, enc) in all {
        if !needs_reads(ev) || bulk.contains(ev.id.as_str()) {
            plain.push((ev, enc));
            continue;
        }
        insert_plain(c, &plain, &mut touched).await?;
        plain.clear();
        let mut itx = SqlIngest { c: &mut *c };
        if let Some(rule) = ingest_inhibited(&mut itx, ev, &mut touched).await? {
            ingested.inhibited.push((ev.id.clone(), rule));
        }
    }
    insert_plain(c, &plain, &mut touched).await?;
    set_lane_heads(c, &touched).await?;
    Ok(ingested)
}

/// Rows per multi-row INSERT of events (5 values each), items (9), alerts (7), alert posts (3), group members (2) and
/// lane heads (2), and keys per lookup: powers of two (see [`sql::shaped`]), well under both databases' limits on
/// bound values per statement.
const EVENTS_PER_INSERT: usize = 64;
const ITEMS_PER_INSERT: usize = 64;
const ALERTS_PER_INSERT: usize = 64;
const POSTS_PER_INSERT: usize = 128;
const MEMBERS_PER_INSERT: usize = 128;
const HEADS_PER_INSERT: usize = 128;
const KEYS_PER_LOOKUP: usize = 256;

/// The events of a group commit that can only open a new alert, with nothing else to read or decide: a dedup key no
/// other event of the commit has, no open alert with it and none closed within the event's reopen window; not a
/// resolve, no inhibition key to check or hold. Two lookups for the whole commit tell which; they are then written
/// in bulk with their alerts, cards and group joins ([`insert_plain`], [`join_groups`]), as
/// [`crate::ingest::ingest_event`] would have written them one by one.
async fn new_alerts<'e>(
    c: &mut dyn Conn,
    all: &[&'e NewEvent],
) -> Result<HashSet<&'e str>, StoreError> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for d in all.iter().filter_map(|e| dedup_of(e)) {
        *uses.entry(d.key.as_str()).or_default() += 1;
    }
    let candidates: Vec<(&'e NewEvent, &'e Dedup)> = all
        .iter()
        .filter_map(|ev| Some((*ev, dedup_of(ev)?)))
        .filter(|(ev, d)| {
            !d.resolves
                && checks_of(ev).is_empty()
                && ev.inhibit.provides.is_empty()
                && uses.get(d.key.as_str()) == Some(&1)
        })
        .collect();
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let keys: Vec<&str> = candidates.iter().map(|(_, d)| d.key.as_str()).collect();
    let mut open: HashSet<String> = HashSet::new();
    for chunk in sql::shaped(&keys, KEYS_PER_LOOKUP) {
        let sql = format!("{}{})", alerts::OPEN_KEYS, sql::in_list(chunk.len(), 1));
        let args: Vec<Arg<'_>> = chunk.iter().map(|k| Arg::from(*k)).collect();
        for r in c.all(&sql, &args).await? {
            open.insert(r.get(0)?);
        }
    }
    // Closed recently enough to be reopened by one of the events: the latest close of each key.
    let mut closed: HashMap<String, i64> = HashMap::new();
    let since = candidates
        .iter()
        .filter(|(_, d)| d.reopen_window_ms > 0)
        .map(|(ev, d)| ev.received_at_ms - d.reopen_window_ms)
        .min();
    if let Some(since) = since {
        for chunk in sql::shaped(&keys, KEYS_PER_LOOKUP) {
            let sql = format!(
                "{}{}{}",
                alerts::CLOSED_KEYS,
                sql::in_list(chunk.len(), 2),
                alerts::CLOSED_KEYS_END
            );
            let mut args: Vec<Arg<'_>> = vec![since.into()];
            args.extend(chunk.iter().map(|k| Arg::from(*k)));
            for r in c.all(&sql, &args).await? {
                closed.insert(r.get(0)?, r.get(1)?);
            }
        }
    }
    Ok(candidates
        .into_iter()
        .filter(|(ev, d)| {
            !open.contains(&d.key)
                && !closed
                    .get(&d.key)
                    .is_some_and(|at| alert::reopens(*at, ev.received_at_ms, d.reopen_window_ms))
        })
        .map(|(ev, _)| ev.id.as_str())
        .collect())
}

/// Writes events that need no reads, and their items, with multi-row INSERTs: events without dedup, and alerts that
/// can only be new (see [`new_alerts`]) with their alert rows, cards and group joins.
async fn insert_plain(
    c: &mut dyn Conn,
    rows: &[(&NewEvent, &Encoded)],
    touched: &mut TouchedLanes,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    for chunk in sql::shaped(rows, EVENTS_PER_INSERT) {
        let sql = format!(
            "{}{}",
            sql::bulk_insert(c.dialect(), outbox::INSERT_EVENTS),
            sql::values_list(chunk.len(), 5, 1)
        );
        let args: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|(ev, enc)| {
                [
                    Arg::from(&ev.id),
                    ev.received_at_ms.into(),
                    (&ev.source).into(),
                    Arg::Json(ev.body.as_str()),
                    Arg::Json(&enc.fate),
                ]
            })
            .collect();
        c.exec(&sql, &args).await.map_err(|e| match e {
            StoreError::Conflict(m) => StoreError::Conflict(format!("event already exists: {m}")),
            other => other,
        })?;
    }
    // First non-reply item per (event, lane): a new alert's card there.
    let mut cards: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut items = Vec::new();
    for (ev, enc) in rows {
        for (item, args) in outbox_of(ev).iter().zip(&enc.items) {
            items.push((*ev, item, args.as_str()));
        }
    }
    for chunk in sql::shaped(&items, ITEMS_PER_INSERT) {
        let sql = format!(
            "{}{}{}",
            sql::bulk_insert(c.dialect(), outbox::INSERT_ITEMS),
            sql::values_list(chunk.len(), 9, 1),
            outbox::INSERT_ITEMS_END
        );
        let args: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|(ev, item, args)| {
                [
                    Arg::from(&ev.id),
                    (&item.lane).into(),
                    (&item.team).into(),
                    (&item.channel).into(),
                    (&item.method).into(),
                    Arg::Json(args),
                    item.ref_post.into(),
                    ev.received_at_ms.into(),
                    ev.received_at_ms.into(),
                ]
            })
            .collect();
        for r in c.all(&sql, &args).await? {
            let (id, lane, event_id, ref_post): (i64, String, String, bool) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            if !ref_post {
                // The alert's card in this lane: its first post there.
                let first = cards.entry((event_id, lane.clone())).or_insert(id);
                *first = (*first).min(id);
            }
            let head = touched.entry(lane).or_insert(id);
            *head = (*head).min(id);
        }
    }
    let news: Vec<(&NewEvent, &Dedup)> = rows
        .iter()
        .filter_map(|(ev, _)| Some((*ev, dedup_of(ev)?)))
        .collect();
    let mut alert_ids: HashMap<String, i64> = HashMap::new();
    for chunk in sql::shaped(&news, ALERTS_PER_INSERT) {
        let sql = format!(
            "{}{}{}",
            sql::bulk_insert(c.dialect(), alerts::INSERT_ALERTS),
            sql::values_list(chunk.len(), 7, 1),
            alerts::INSERT_ALERTS_END
        );
        let args: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|(ev, d)| {
                [
                    Arg::from(&d.key),
                    (&ev.id).into(),
                    1i64.into(),
                    ev.received_at_ms.into(),
                    ev.received_at_ms.into(),
                    d.occurred_at_ms.into(),
                    d.occurred_at_ms.into(),
                ]
            })
            .collect();
        for r in c.all(&sql, &args).await? {
            alert_ids.insert(r.get(1)?, r.get(0)?);
        }
    }
    let posts: Vec<(i64, &str, i64)> = cards
        .iter()
        .filter_map(|((event_id, lane), item)| {
            Some((*alert_ids.get(event_id)?, lane.as_str(), *item))
        })
        .collect();
    for chunk in sql::shaped(&posts, POSTS_PER_INSERT) {
        let sql = format!(
            "{}{}",
            sql::bulk_insert(c.dialect(), alerts::INSERT_ALERT_POSTS),
            sql::values_list(chunk.len(), 3, 1)
        );
        let args: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|(alert, lane, item)| [Arg::from(*alert), (*lane).into(), (*item).into()])
            .collect();
        c.exec(&sql, &args).await?;
    }
    join_groups(c, &news, &alert_ids).await
}

/// The group joins of new alerts (what [`IngestTx::join_group`] does for one), in event order and set-based: one
/// upsert per group for all the alerts that join it (the first of them creates it or marks it changed, as one by
/// one), the members with multi-row INSERTs, one count per route and second.
async fn join_groups(
    c: &mut dyn Conn,
    news: &[(&NewEvent, &Dedup)],
    alert_ids: &HashMap<String, i64>,
) -> Result<(), StoreError> {
    struct Join<'e> {
        group: &'e GroupJoin,
        first_event_id: &'e str,
        at_ms: i64,
        alerts: Vec<i64>,
    }
    let mut joins: Vec<Join<'_>> = Vec::new();
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    let mut counts: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    for (ev, d) in news {
        let Some(&alert_id) = alert_ids.get(&ev.id) else {
            continue;
        };
        let now = ev.received_at_ms;
        for g in &d.groups {
            match by_key.get(g.key.as_str()) {
                Some(&i) => joins[i].alerts.push(alert_id),
                None => {
                    by_key.insert(&g.key, joins.len());
                    joins.push(Join {
                        group: g,
                        first_event_id: &ev.id,
                        at_ms: now,
                        alerts: vec![alert_id],
                    });
                }
            }
            *counts
                .entry((g.rule.as_str(), now - now.rem_euclid(1000)))
                .or_default() += 1;
        }
    }
    let mut members: Vec<(i64, i64)> = Vec::new();
    for j in &joins {
        let g = j.group;
        let labels = to_json("group labels", &g.labels)?;
        let group_id: i64 = c
            .one(
                &groups::JOIN_GROUP_MANY,
                args![
                    &g.key,
                    &g.rule,
                    &g.lane,
                    &g.team,
                    &g.channel,
                    &g.template,
                    &labels,
                    j.first_event_id,
                    g.wait_ms,
                    g.interval_ms,
                    g.repeat_ms,
                    j.at_ms,
                    limit(j.alerts.len())
                ],
            )
            .await?
            .get(0)?;
        members.extend(j.alerts.iter().map(|a| (group_id, *a)));
    }
    for chunk in sql::shaped(&members, MEMBERS_PER_INSERT) {
        let sql = format!(
            "{}{}{}",
            groups::ADD_MEMBERS,
            sql::values_list(chunk.len(), 2, 1),
            groups::ADD_MEMBERS_END
        );
        let args: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|(group, alert)| [Arg::from(*group), Arg::from(*alert)])
            .collect();
        c.exec(&sql, &args).await?;
    }
    for ((rule, second), n) in counts {
        c.exec(&groups::COUNT_ROUTE_EVENTS, args![rule, second, n])
            .await?;
    }
    Ok(())
}

/// Lanes that gained pending items get a head (on PostgreSQL the caller holds their locks). A lane that already has
/// one keeps it: every new item has a larger id.
async fn set_lane_heads(c: &mut dyn Conn, touched: &TouchedLanes) -> Result<(), StoreError> {
    let lanes: Vec<(&String, &i64)> = touched.iter().collect();
    for chunk in sql::shaped(&lanes, HEADS_PER_INSERT) {
        let sql = format!(
            "{}{}{}",
            outbox::SET_LANE_HEADS,
            sql::values_list(chunk.len(), 2, 1),
            outbox::SET_LANE_HEADS_END
        );
        let args: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|(lane, head)| [Arg::from(*lane), Arg::from(**head)])
            .collect();
        c.exec(&sql, &args).await?;
    }
    Ok(())
}

/// Recomputes lane heads after items left (or re-entered) the pending state.
async fn refresh_lanes(c: &mut dyn Conn, lanes: &BTreeSet<String>) -> Result<(), StoreError> {
    for lane in lanes {
        c.exec(&outbox::REFRESH_LANE, args![lane]).await?;
    }
    Ok(())
}

/// The lane of an item (lanes never change), or a Conflict naming the missing item.
async fn lane_of(c: &mut dyn Conn, item_id: i64) -> Result<String, StoreError> {
    c.opt(&outbox::ITEM_LANE, args![item_id])
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("outbox item {item_id} does not exist")))?
        .get(0)
}

/// Why an item could not be marked: it does not exist, or it is no longer pending.
async fn not_pending(c: &mut dyn Conn, item_id: i64) -> StoreError {
    match c.opt(&outbox::ITEM_STATE, args![item_id]).await {
        Ok(Some(r)) => match r.get::<String>(0) {
            Ok(state) => {
                StoreError::Conflict(format!("outbox item {item_id} is {state}, not pending"))
            }
            Err(e) => e,
        },
        Ok(None) => StoreError::Conflict(format!("outbox item {item_id} does not exist")),
        Err(e) => e,
    }
}

fn parse_json(what: &str, s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn delivery_state(r: &Row) -> Result<DeliveryState, StoreError> {
    let state: String = r.get("state")?;
    Ok(match state.as_str() {
        "pending" => DeliveryState::Pending,
        "sent" => DeliveryState::Sent {
            channel: r.get::<Option<String>>("sent_channel")?.unwrap_or_default(),
            ts: r.get::<Option<String>>("sent_ts")?.unwrap_or_default(),
            at_ms: r.get::<Option<i64>>("sent_at_ms")?.unwrap_or_default(),
        },
        "dead" => DeliveryState::Dead {
            reason: r.get::<Option<String>>("dead_reason")?.unwrap_or_default(),
            at_ms: r.get::<Option<i64>>("dead_at_ms")?.unwrap_or_default(),
        },
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown outbox state {other:?}"
            )))
        }
    })
}

/// An alert as its card shows it, from `first_event_id, body, count, first_seen_ms, last_seen_ms, closed_at_ms` at
/// the given columns.
fn alert_card(r: &Row, cols: [usize; 6]) -> Result<AlertCard, StoreError> {
    let body: String = r.get(cols[1])?;
    Ok(AlertCard {
        first_event_id: r.get(cols[0])?,
        body: parse_json("event body", &body)?,
        count: count(r.get(cols[2])?),
        first_seen_ms: r.get(cols[3])?,
        last_seen_ms: r.get(cols[4])?,
        closed_at_ms: r.get(cols[5])?,
        started_at_ms: None,
        ended_at_ms: None,
        latest: None,
    })
}

async fn actions_of(c: &mut dyn Conn, root: &str) -> Result<Vec<AlertAction>, StoreError> {
    c.all(&alerts::ACTIONS_OF, args![root])
        .await?
        .iter()
        .map(|r| {
            Ok(AlertAction {
                action: r.get(0)?,
                actor: r.get(1)?,
                at_ms: r.get(2)?,
            })
        })
        .collect()
}

async fn audit_page(
    c: &mut dyn Conn,
    since_id: i64,
    through_id: i64,
    max: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    c.all(&sql::audit::PAGE, args![since_id, through_id, limit(max)])
        .await?
        .iter()
        .map(|r| {
            let detail: String = r.get("detail")?;
            Ok(AuditRecord {
                id: r.get("id")?,
                at_ms: r.get("at_ms")?,
                actor: r.get("actor")?,
                team: r.get("team")?,
                action: r.get("action")?,
                target: r.get("target")?,
                result: r.get("result")?,
                detail: parse_json("audit detail", &detail)?,
                prev_hash: r.get("prev_hash")?,
                hash: r.get("hash")?,
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let ping = async {
            let mut c = self.backend.read().await?;
            c.exec("SELECT 1", &[]).await?;
            Ok::<(), StoreError>(())
        };
        match self.backend.ping_timeout() {
            None => ping.await,
            // Bounded as a whole: a server that accepts TCP but never answers must still fail /readyz promptly.
            Some(limit) => match tokio::time::timeout(limit, ping).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unavailable(
                    "database did not answer a ping in time".into(),
                )),
            },
        }
    }

    async fn ingest(&self, batch: Vec<NewEvent>) -> Result<Ingested, StoreError> {
        self.ingester.ingest(batch).await
    }

    async fn event(&self, id: &str) -> Result<Option<EventStatus>, StoreError> {
        let mut c = self.backend.read().await?;
        let Some(ev) = c.opt(&outbox::EVENT, args![id]).await? else {
            return Ok(None);
        };
        let deliveries = c
            .all(&outbox::EVENT_ITEMS, args![id])
            .await?
            .iter()
            .map(|r| {
                Ok(DeliveryStatus {
                    item_id: r.get("id")?,
                    channel: r.get("channel")?,
                    method: r.get("method")?,
                    state: delivery_state(r)?,
                    attempts: attempts(r.get("attempts")?),
                    last_error: r.get("last_error")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let fate = parse_fate(&ev.get::<String>("fate")?)?;
        let body: String = ev.get("body")?;
        let root = alert_root(id, &fate);
        let actions = actions_of(&mut *c, root).await?;
        let groups = c
            .all(&groups::GROUPS_OF_EVENT, args![root])
            .await?
            .iter()
            .map(|r| {
                Ok(GroupRef {
                    key: r.get(0)?,
                    rule: r.get(1)?,
                    channel: r.get(2)?,
                    ts: r.get(3)?,
                    notified_at_ms: r.get(4)?,
                    digested_at_ms: r.get(5)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(EventStatus {
            id: ev.get("id")?,
            received_at_ms: ev.get("received_at_ms")?,
            source: ev.get("source")?,
            fate,
            body: parse_json("event body", &body)?,
            deliveries,
            actions,
            groups,
        }))
    }

    async fn claim_lanes(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.backend.write().await?;
        c.all(
            &coordination::CLAIM_LANES,
            args![owner, now_ms, lease_ms, limit(max)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    async fn renew_leases(
        &self,
        owner: &str,
        lanes: &[String],
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.backend.write().await?;
        let mut held = BTreeSet::new();
        for chunk in sql::shaped(lanes, KEYS_PER_LOOKUP) {
            let sql = format!(
                "{}{}) RETURNING lane",
                coordination::RENEW_LEASES,
                sql::in_list(chunk.len(), 3)
            );
            let mut args: Vec<Arg<'_>> = vec![(now_ms + lease_ms).into(), owner.into()];
            args.extend(chunk.iter().map(Arg::from));
            for r in c.all(&sql, &args).await? {
                held.insert(r.get::<String>(0)?);
            }
        }
        // In the order asked.
        Ok(lanes
            .iter()
            .filter(|l| held.contains(*l))
            .cloned()
            .collect())
    }

    async fn release_lane(&self, owner: &str, lane: &str) -> Result<(), StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&coordination::RELEASE_LANE, args![lane, owner])
            .await?;
        Ok(())
    }

    async fn lease_holders(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&coordination::LEASE_HOLDERS, args![now_ms])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn expire_leases(&self, owner: &str, now_ms: i64) -> Result<u64, StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&coordination::EXPIRE_LEASES, args![owner, now_ms])
            .await
    }

    async fn mark_sending(&self, item_id: i64, now_ms: i64) -> Result<(), StoreError> {
        let mut c = self.backend.write().await?;
        let n = c
            .exec(&outbox::MARK_SENDING, args![now_ms, item_id])
            .await?;
        if n == 0 {
            return Err(not_pending(&mut *c, item_id).await);
        }
        Ok(())
    }

    async fn lane_channel_id(&self, lane: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.backend.read().await?;
        c.opt(&outbox::LANE_CHANNEL_ID, args![lane])
            .await?
            .map(|r| r.get(0))
            .transpose()
    }

    async fn lane_items(&self, lane: &str, max: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&outbox::LANE_ITEMS, args![lane, limit(max)])
            .await?
            .iter()
            .map(|r| {
                let ref_id: Option<i64> = r.get("ref_item_id")?;
                let ref_state: Option<String> = r.get("ref_state")?;
                let ref_sent = match ref_state.as_deref() {
                    Some("sent") => Some(RefSent {
                        channel: r.get::<Option<String>>("ref_channel")?.unwrap_or_default(),
                        ts: r.get::<Option<String>>("ref_ts")?.unwrap_or_default(),
                    }),
                    _ => None,
                };
                let args: String = r.get("args")?;
                Ok(OutboxItem {
                    id: r.get("id")?,
                    event_id: r.get("event_id")?,
                    lane: r.get("lane")?,
                    team: r.get("team")?,
                    channel: r.get("channel")?,
                    method: r.get("method")?,
                    args: parse_json("outbox args", &args)?,
                    attempts: attempts(r.get("attempts")?),
                    created_at_ms: r.get("created_at_ms")?,
                    next_attempt_at_ms: r.get("next_attempt_at_ms")?,
                    sending_at_ms: r.get("sending_at_ms")?,
                    ref_pending: ref_id.is_some() && ref_sent.is_none(),
                    ref_sent,
                })
            })
            .collect()
    }

    async fn mark_sent(
        &self,
        item_id: i64,
        channel: &str,
        ts: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.backend.begin().await?;
        let lanes = BTreeSet::from([lane_of(tx.conn(), item_id).await?]);
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let sent = tx
            .conn()
            .opt(&outbox::MARK_SENT, args![channel, ts, now_ms, item_id])
            .await?;
        if sent.is_none() {
            return Err(not_pending(tx.conn(), item_id).await);
        }
        refresh_lanes(tx.conn(), &lanes).await?;
        tx.commit().await
    }

    async fn mark_retry(
        &self,
        item_id: i64,
        next_attempt_at_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut c = self.backend.write().await?;
        let n = c
            .exec(
                &outbox::MARK_RETRY,
                args![next_attempt_at_ms, error, item_id],
            )
            .await?;
        if n == 0 {
            return Err(not_pending(&mut *c, item_id).await);
        }
        Ok(())
    }

    async fn mark_dead(&self, item_id: i64, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.backend.begin().await?;
        // Updates that reference this post live in the same lane: the lane lock also stops an ingest from linking a
        // new update to the post while it dies.
        let mut lanes = BTreeSet::from([lane_of(tx.conn(), item_id).await?]);
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let dead = tx
            .conn()
            .opt(&outbox::MARK_DEAD, args![reason, now_ms, item_id])
            .await?;
        if dead.is_none() {
            return Err(not_pending(tx.conn(), item_id).await);
        }
        let reason = ref_dead_reason(item_id, reason);
        for r in tx
            .conn()
            .all(
                &outbox::MARK_FOLLOWERS_DEAD,
                args![&reason, now_ms, item_id],
            )
            .await?
        {
            lanes.insert(r.get(0)?);
        }
        refresh_lanes(tx.conn(), &lanes).await?;
        tx.commit().await
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&outbox::DEAD_LETTERS, args![limit(max)])
            .await?
            .iter()
            .map(|r| {
                Ok(DeadLetter {
                    item_id: r.get("id")?,
                    event_id: r.get("event_id")?,
                    channel: r.get("channel")?,
                    method: r.get("method")?,
                    reason: r.get::<Option<String>>("dead_reason")?.unwrap_or_default(),
                    attempts: attempts(r.get("attempts")?),
                    dead_at_ms: r.get::<Option<i64>>("dead_at_ms")?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn replay(&self, which: Replay, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.backend.begin().await?;
        let candidates: Vec<(i64, String)> = match which {
            Replay::All => tx
                .conn()
                .all(&outbox::ALL_DEAD, &[])
                .await?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<Result<_, StoreError>>()?,
            Replay::Item(id) => {
                let Some(row) = tx.conn().opt(&outbox::REPLAY_CANDIDATE, args![id]).await? else {
                    return Err(StoreError::Conflict(format!(
                        "outbox item {id} does not exist"
                    )));
                };
                let state: String = row.get("state")?;
                if state != "dead" {
                    return Err(StoreError::Conflict(format!(
                        "outbox item {id} is {state}, not dead"
                    )));
                }
                let lane: String = row.get("lane")?;
                let mut ids = vec![(id, lane.clone())];
                let ref_id: Option<i64> = row.get("ref_item_id")?;
                let ref_state: Option<String> = row.get("ref_state")?;
                if let (Some(post), Some("dead")) = (ref_id, ref_state.as_deref()) {
                    ids.push((post, lane));
                }
                ids
            }
        };
        let lanes: BTreeSet<String> = candidates.iter().map(|(_, l)| l.clone()).collect();
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let mut replayed = 0;
        for chunk in sql::shaped(&candidates, KEYS_PER_LOOKUP) {
            let sql = format!("{}{})", outbox::REPLAY, sql::in_list(chunk.len(), 2));
            let mut args: Vec<Arg<'_>> = vec![now_ms.into()];
            args.extend(chunk.iter().map(|(id, _)| Arg::from(*id)));
            replayed += tx.conn().exec(&sql, &args).await?;
        }
        refresh_lanes(tx.conn(), &lanes).await?;
        tx.commit().await?;
        Ok(replayed)
    }

    async fn outbox_stats(&self, now_ms: i64) -> Result<OutboxStats, StoreError> {
        let mut c = self.backend.read().await?;
        let r = c.one(&outbox::STATS, args![now_ms]).await?;
        let oldest: Option<i64> = r.get("oldest")?;
        Ok(OutboxStats {
            pending: r.get::<i64>("pending")? as u64,
            oldest_pending_age_ms: oldest.map(|t| (now_ms - t).max(0)),
            dead: r.get::<i64>("dead")? as u64,
            lanes_leased: r.get::<i64>("leased")? as u64,
        })
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.backend.begin().await?;
        let c = tx.conn();
        let cut = args![older_than_ms];
        let mut removed = 0;
        for s in &groups::PRUNE_GROUPS {
            c.exec(s, cut).await?;
        }
        // alert_posts rows are bookkeeping, not something the operator retained.
        c.exec(&retention::ALERT_POSTS, cut).await?;
        for s in &retention::COUNTED {
            removed += c.exec(s, cut).await?;
        }
        c.exec(&retention::INHIBIT_KEYS, &[]).await?;
        let silences = c.exec(&retention::SILENCES, cut).await?;
        if silences > 0 {
            // Only ended silences went, but a cache that lists expired ones should see them go.
            c.exec(&silences::BUMP_VERSION, &[]).await?;
        }
        removed += silences;
        removed += c.exec(&retention::ALERT_ACTIONS, &[]).await?;
        if c.dialect() == Dialect::Sqlite {
            c.exec(&retention::IDLE_LANES, &[]).await?;
        }
        for s in &retention::COORDINATION {
            removed += c.exec(s, args![older_than_ms, RATE_IDLE_MS]).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn take_rate(
        &self,
        key: &str,
        interval_ms: i64,
        burst: u32,
        now_ms: i64,
    ) -> Result<RateDecision, StoreError> {
        let p = RateParams::new(interval_ms, burst);
        let mut c = self.backend.write().await?;
        let r = c
            .one(
                &coordination::TAKE_RATE,
                args![key, now_ms, p.interval_ms, p.tolerance_ms],
            )
            .await?;
        let (tat, blocked, allowed): (i64, i64, bool) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(p.decision(allowed, tat, blocked))
    }

    async fn block_rate(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&coordination::BLOCK_RATE, args![key, until_ms])
            .await?;
        Ok(())
    }

    async fn try_lead(
        &self,
        role: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut c = self.backend.write().await?;
        Ok(
            c.opt(&coordination::TRY_LEAD, args![role, owner, now_ms, ttl_ms])
                .await?
                .is_some(),
        )
    }

    async fn resign(&self, role: &str, owner: &str) -> Result<(), StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&coordination::RESIGN, args![role, owner]).await?;
        Ok(())
    }

    async fn first_time(&self, key: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        let mut c = self.backend.write().await?;
        Ok(c.opt(&coordination::FIRST_TIME, args![key, now_ms, ttl_ms])
            .await?
            .is_some())
    }

    async fn record_audit(&self, a: NewAudit) -> Result<AuditRecord, StoreError> {
        let mut tx = self.backend.begin().await?;
        let head = tx.conn().one(&sql::audit::HEAD_FOR_APPEND, &[]).await?;
        let (last_id, last_hash): (i64, String) = (head.get(0)?, head.get(1)?);
        let rec = audit::next_record(last_id, &last_hash, a)?;
        let detail = audit::canonical_json(&rec.detail)?;
        tx.conn()
            .exec(
                &sql::audit::APPEND,
                args![
                    rec.id,
                    rec.at_ms,
                    &rec.actor,
                    &rec.team,
                    &rec.action,
                    &rec.target,
                    &rec.result,
                    &detail,
                    &rec.prev_hash,
                    &rec.hash
                ],
            )
            .await?;
        tx.conn()
            .exec(&sql::audit::MOVE_HEAD, args![rec.id, &rec.hash])
            .await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn audit(&self, since_id: i64, max: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let mut c = self.backend.read().await?;
        audit_page(&mut *c, since_id, i64::MAX, max).await
    }

    async fn verify_audit(&self) -> Result<Option<i64>, StoreError> {
        let mut c = self.backend.read().await?;
        // The head first: records appended while we walk have larger ids and are simply not looked at.
        let head = c.one(&sql::audit::HEAD, &[]).await?;
        let (head_id, head_hash): (i64, String) = (head.get(0)?, head.get(1)?);
        let mut check = audit::ChainCheck::new();
        loop {
            let page =
                audit_page(&mut *c, check.next_id() - 1, head_id, audit::VERIFY_PAGE).await?;
            for r in &page {
                if let Some(broken) = check.check(r)? {
                    return Ok(Some(broken));
                }
            }
            if page.len() < audit::VERIFY_PAGE {
                return Ok(check.finish(head_id, &head_hash));
            }
        }
    }

    async fn create_silence(&self, s: NewSilence, now_ms: i64) -> Result<Silence, StoreError> {
        check_silence(&s)?;
        let id = new_silence_id(now_ms);
        let matchers = matchers_json(&s.matchers)?;
        let mut tx = self.backend.begin().await?;
        tx.conn()
            .exec(
                &silences::CREATE,
                &[
                    (&id).into(),
                    Arg::Json(&matchers),
                    s.starts_at_ms.into(),
                    s.ends_at_ms.into(),
                    (&s.author).into(),
                    (&s.comment).into(),
                    now_ms.into(),
                ],
            )
            .await?;
        tx.conn().exec(&silences::BUMP_VERSION, &[]).await?;
        tx.commit().await?;
        Ok(Silence {
            id,
            matchers: s.matchers,
            starts_at_ms: s.starts_at_ms,
            ends_at_ms: s.ends_at_ms,
            author: s.author,
            comment: s.comment,
            created_at_ms: now_ms,
            expired_at_ms: None,
        })
    }

    async fn silences(
        &self,
        include_expired: bool,
        now_ms: i64,
    ) -> Result<Vec<Silence>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&silences::LIST, args![include_expired, now_ms])
            .await?
            .iter()
            .map(|r| {
                Ok(Silence {
                    id: r.get("id")?,
                    matchers: parse_matchers(&r.get::<String>("matchers")?)?,
                    starts_at_ms: r.get("starts_at_ms")?,
                    ends_at_ms: r.get("ends_at_ms")?,
                    author: r.get("author")?,
                    comment: r.get("comment")?,
                    created_at_ms: r.get("created_at_ms")?,
                    expired_at_ms: r.get("expired_at_ms")?,
                })
            })
            .collect()
    }

    async fn expire_silence(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.backend.begin().await?;
        // Two replicas expiring one silence: the row lock makes the second re-check the WHERE and find it expired.
        let n = tx.conn().exec(&silences::EXPIRE, args![id, now_ms]).await?;
        if n > 0 {
            tx.conn().exec(&silences::BUMP_VERSION, &[]).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn silences_version(&self) -> Result<i64, StoreError> {
        let mut c = self.backend.read().await?;
        c.one(&silences::VERSION, &[]).await?.get(0)
    }

    async fn record_alert_action(
        &self,
        event_id: &str,
        action: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<AckOutcome, StoreError> {
        let mut tx = self.backend.begin().await?;
        let Some(root) = root_of(tx.conn(), event_id).await? else {
            return Err(StoreError::Conflict(format!(
                "event {event_id} does not exist"
            )));
        };
        // The primary key decides. A racing insert of the same key (another replica) waits for the first to commit,
        // then does nothing: one winner. The read that follows is a new statement, so it sees that winner. Only a
        // prune between the two statements can make the winner vanish; then the next round records this click.
        for _ in 0..3 {
            let won = tx
                .conn()
                .opt(&alerts::RECORD_ACTION, args![&root, action, actor, now_ms])
                .await?;
            if won.is_some() {
                tx.commit().await?;
                return Ok(AckOutcome::Recorded);
            }
            if let Some(r) = tx
                .conn()
                .opt(&alerts::ACTION_WINNER, args![&root, action])
                .await?
            {
                let outcome = AckOutcome::AlreadyBy {
                    actor: r.get(0)?,
                    at_ms: r.get(1)?,
                };
                tx.commit().await?;
                return Ok(outcome);
            }
        }
        Err(StoreError::Conflict(format!(
            "the {action} of event {event_id} keeps changing under us; try again"
        )))
    }

    async fn alert_actions(
        &self,
        event_id: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut c = self.backend.read().await?;
        let Some(root) = root_of(&mut *c, event_id).await? else {
            return Ok(Vec::new());
        };
        Ok(actions_of(&mut *c, &root)
            .await?
            .into_iter()
            .map(|a| (a.action, a.actor, a.at_ms))
            .collect())
    }

    async fn alert_card(&self, item_id: i64) -> Result<Option<AlertCard>, StoreError> {
        let mut tx = self.backend.begin().await?;
        // Under the lane lock, like ingest: a duplicate being committed now is either seen by this read or sees
        // the refresh as no longer pending, never neither.
        let Some(lane) = tx.conn().opt(&outbox::ITEM_LANE, args![item_id]).await? else {
            return Ok(None);
        };
        let lane: String = lane.get(0)?;
        self.backend
            .lock_lanes(tx.conn(), &BTreeSet::from([lane]))
            .await?;
        let Some(r) = tx.conn().opt(&alerts::ALERT_CARD, args![item_id]).await? else {
            return Ok(None);
        };
        let alert_id: i64 = r.get(0)?;
        let lane: String = r.get("lane")?;
        if r.get::<Option<i64>>("refresh_item_id")? == Some(item_id) {
            tx.conn()
                .exec(&alerts::CLEAR_REFRESH, args![alert_id, &lane])
                .await?;
        }
        let latest: Option<String> = r.get("latest")?;
        let card = AlertCard {
            started_at_ms: r.get("first_started_at_ms")?,
            ended_at_ms: r.get("ended_at_ms")?,
            latest: latest.map(|b| parse_json("event body", &b)).transpose()?,
            ..alert_card(&r, [1, 6, 2, 3, 4, 5])?
        };
        tx.commit().await?;
        Ok(Some(card))
    }

    async fn due_groups(
        &self,
        now_ms: i64,
        limit_groups: usize,
        members: usize,
    ) -> Result<Vec<GroupState>, StoreError> {
        let mut c = self.backend.read().await?;
        let rows = c
            .all(&groups::DUE_GROUPS, args![now_ms, limit(limit_groups)])
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut g = group_state(&row)?;
            let counts = c.one(&groups::GROUP_COUNTS, args![g.id]).await?;
            let (firing, total): (i64, i64) = (counts.get(0)?, counts.get(1)?);
            (g.firing, g.resolved) = (firing, total - firing);
            for r in c
                .all(&groups::GROUP_MEMBERS, args![g.id, limit(members)])
                .await?
            {
                g.alerts.push(alert_card(&r, [0, 1, 2, 3, 4, 5])?);
            }
            out.push(g);
        }
        Ok(out)
    }

    async fn flush_group(&self, f: GroupFlush, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.backend.begin().await?;
        let Some((first_event_id, lane)) = SqlIngest { c: tx.conn() }.group_of(f.group_id).await?
        else {
            return Err(StoreError::Conflict(format!(
                "group {} is not stored",
                f.group_id
            )));
        };
        let mut lanes: BTreeSet<String> = f
            .updates
            .iter()
            .chain(&f.post)
            .map(|i| i.lane.clone())
            .collect();
        lanes.insert(lane);
        self.backend.lock_lanes(tx.conn(), &lanes).await?;
        let mut touched = TouchedLanes::new();
        grp::flush_in(
            &mut SqlIngest { c: tx.conn() },
            &f,
            &first_event_id,
            now_ms,
            &mut touched,
        )
        .await?;
        set_lane_heads(tx.conn(), &touched).await?;
        tx.commit().await
    }

    async fn touch_groups(&self, first_event_id: &str, now_ms: i64) -> Result<u64, StoreError> {
        let mut c = self.backend.write().await?;
        c.exec(&groups::TOUCH_GROUPS, args![first_event_id, now_ms])
            .await
    }

    async fn absorb_groups(&self, rule: &str, now_ms: i64) -> Result<u64, StoreError> {
        let mut c = self.backend.write().await?;
        let absorbed = c.exec(&groups::ABSORB_GROUPS, args![rule, now_ms]).await?;
        c.exec(&groups::REFRESH_DIGESTED_CARDS, args![rule, now_ms])
            .await?;
        Ok(absorbed)
    }

    async fn route_rate(&self, rule: &str, since_ms: i64) -> Result<u64, StoreError> {
        let mut c = self.backend.read().await?;
        let n: i64 = c
            .one(&groups::ROUTE_RATE, args![rule, since_ms])
            .await?
            .get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn route_alerts(&self, rule: &str, since_ms: i64) -> Result<Vec<RouteAlert>, StoreError> {
        let mut c = self.backend.read().await?;
        c.all(&groups::ROUTE_ALERTS, args![rule, since_ms])
            .await?
            .iter()
            .map(|r| {
                let body: String = r.get(1)?;
                Ok(RouteAlert {
                    alert_id: r.get(0)?,
                    body: parse_json("event body", &body)?,
                    count: count(r.get(2)?),
                    last_seen_ms: r.get(3)?,
                })
            })
            .collect()
    }

    async fn message_of(&self, event_id: &str) -> Result<Vec<RefSent>, StoreError> {
        let mut c = self.backend.read().await?;
        let Some(root) = root_of(&mut *c, event_id).await? else {
            return Ok(Vec::new());
        };
        c.all(&outbox::MESSAGES_OF, args![&root])
            .await?
            .iter()
            .map(|r| {
                Ok(RefSent {
                    channel: r.get::<Option<String>>(0)?.unwrap_or_default(),
                    ts: r.get::<Option<String>>(1)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn event_of_message(
        &self,
        channel: &str,
        ts: &str,
    ) -> Result<Option<EventId>, StoreError> {
        let mut c = self.backend.read().await?;
        Ok(c.opt(&outbox::EVENT_OF_MESSAGE, args![channel, ts])
            .await?
            .map(|r| r.get::<Option<String>>(0))
            .transpose()?
            .flatten())
    }
}
