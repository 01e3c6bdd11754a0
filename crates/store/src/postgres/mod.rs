//! The PostgreSQL backend, [`PgStore`]: several replicas share one database.
//!
//! Ingest is group-committed per process like SQLite's ([`crate::group`]). Concurrency rules, since many
//! processes write at once:
//! - every transaction that changes which items of a lane are pending first locks that lane's row in `lanes`
//!   (sorted, to avoid deadlocks), and only then reads or writes the lane's items. This keeps outbox ids in commit
//!   order within a lane (ingest allocates ids while holding the lock) and keeps `lanes.head_id` exact;
//! - dedup keys are serialised with transaction-scoped advisory locks, so two replicas seeing the same alert at the
//!   same moment produce one open alert and one merge, not two alerts;
//! - `claim_lanes` uses `FOR UPDATE SKIP LOCKED`, so dispatchers never wait on each other or hand out one lane twice.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Postgres, QueryBuilder, Row};

use crate::alerting::{
    alert_root, check_silence, matchers_json, new_silence_id, parse_fate, parse_matchers,
};
use crate::audit;
use crate::coord::{RateParams, RATE_IDLE_MS};
use crate::error::corrupt;
use crate::group::{spawn_writer, GroupCommit, Ingester};
use crate::grouping::{self as grp, group_state, labels_json, pg, to_pg, GroupRow};
use crate::ingest::{
    candidate_lanes, dedup_of, ingest_inhibited, needs_reads, outbox_of, ref_dead_reason, EventRow,
    IngestTx, ItemRow, OpenAlert, TouchedLanes,
};
use crate::sqlite::wall_clock_ms;
use crate::*;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "0001_init", include_str!("migrations/0001_init.sql")),
    (
        2,
        "0002_coordination",
        include_str!("migrations/0002_coordination.sql"),
    ),
    (
        3,
        "0003_alerting",
        include_str!("migrations/0003_alerting.sql"),
    ),
    (
        4,
        "0004_living_alerts",
        include_str!("migrations/0004_living_alerts.sql"),
    ),
    (
        5,
        "0005_inhibit",
        include_str!("migrations/0005_inhibit.sql"),
    ),
    (
        6,
        "0006_message_lookup",
        include_str!("migrations/0006_message_lookup.sql"),
    ),
    (7, "0007_groups", include_str!("migrations/0007_groups.sql")),
];
/// The number of the last migration.
const BINARY_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;
/// Arbitrary constant naming the "schema migration in progress" advisory lock.
const MIGRATION_LOCK: i64 = 0x5_11CE;
/// How long a request waits for a connection before it is answered `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) struct PgStore {
    pool: PgPool,
    ingester: Ingester,
}

/// Group commit on PostgreSQL too: one transaction per group means one WAL flush and one set of lane locks for many
/// events, instead of 32 transactions queueing on the same lane rows.
struct PgGroupCommit(PgPool);

impl GroupCommit for PgGroupCommit {
    fn commit<'a>(
        &'a self,
        batches: &'a [&'a [NewEvent]],
    ) -> BoxFuture<'a, Result<Ingested, StoreError>> {
        Box::pin(commit_group(&self.0, batches))
    }
}

async fn commit_group(pool: &PgPool, batches: &[&[NewEvent]]) -> Result<Ingested, StoreError> {
    let all: Vec<&NewEvent> = batches.iter().flat_map(|b| b.iter()).collect();
    let mut tx = pool.begin().await?;
    let mut keys: Vec<&str> = all
        .iter()
        .filter_map(|e| dedup_of(e))
        .flat_map(|d| {
            std::iter::once(d.key.as_str()).chain(d.groups.iter().map(|g| g.key.as_str()))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    let lanes: BTreeSet<String> = batches.iter().flat_map(|b| candidate_lanes(b)).collect();
    lock_lanes(&mut tx, &lanes).await?;
    let mut touched = TouchedLanes::new();
    let mut ingested = Ingested::default();
    let mut plain: Vec<&NewEvent> = Vec::new();
    for ev in all {
        if !needs_reads(ev) {
            plain.push(ev);
            continue;
        }
        insert_plain(&mut tx, &plain, &mut touched).await?;
        plain.clear();
        let mut itx = PgIngest { conn: &mut tx };
        if let Some(rule) = ingest_inhibited(&mut itx, ev, &mut touched).await? {
            ingested.inhibited.push((ev.id.clone(), rule));
        }
    }
    insert_plain(&mut tx, &plain, &mut touched).await?;
    set_lane_heads(&mut tx, &touched).await?;
    tx.commit().await?;
    Ok(ingested)
}

/// Lanes that gained pending items get a head; the caller holds their locks. A lane that already has a head keeps
/// it: every new item has a larger id.
async fn set_lane_heads(conn: &mut PgConnection, touched: &TouchedLanes) -> Result<(), StoreError> {
    let (names, heads): (Vec<&str>, Vec<i64>) =
        touched.iter().map(|(l, h)| (l.as_str(), *h)).unzip();
    sqlx::query(
        "UPDATE lanes SET head_id = COALESCE(lanes.head_id, t.head)
         FROM unnest($1::text[], $2::bigint[]) AS t(lane, head) WHERE lanes.lane = t.lane",
    )
    .bind(&names)
    .bind(&heads)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes events that carry no dedup request, and their items, with multi-row INSERTs.
async fn insert_plain(
    conn: &mut PgConnection,
    events: &[&NewEvent],
    touched: &mut TouchedLanes,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(events.len());
    for ev in events {
        let body = serde_json::to_string(&ev.body)
            .map_err(|e| StoreError::Other(format!("event body: {e}")))?;
        let fate =
            serde_json::to_string(&ev.fate).map_err(|e| StoreError::Other(format!("fate: {e}")))?;
        rows.push((*ev, body, fate));
    }
    for chunk in rows.chunks(500) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO events (id, received_at_ms, source, body, fate) ",
        );
        q.push_values(chunk, |mut b, (ev, body, fate)| {
            b.push_bind(ev.id.as_str())
                .push_bind(ev.received_at_ms)
                .push_bind(ev.source.as_str())
                .push_bind(body.as_str())
                .push_unseparated("::jsonb")
                .push_bind(fate.as_str())
                .push_unseparated("::jsonb");
        });
        q.build()
            .execute(&mut *conn)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(m) => {
                    StoreError::Conflict(format!("event already exists: {m}"))
                }
                other => other,
            })?;
    }
    let mut items = Vec::new();
    for ev in events {
        for item in outbox_of(ev) {
            let args = serde_json::to_string(&item.args)
                .map_err(|e| StoreError::Other(format!("outbox args: {e}")))?;
            items.push((*ev, item, args));
        }
    }
    for chunk in items.chunks(500) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO outbox (event_id, lane, team, channel, method, args, ref_post, created_at_ms, next_attempt_at_ms) ",
        );
        q.push_values(chunk, |mut b, (ev, item, args)| {
            b.push_bind(ev.id.as_str())
                .push_bind(item.lane.as_str())
                .push_bind(item.team.as_str())
                .push_bind(item.channel.as_str())
                .push_bind(item.method.as_str())
                .push_bind(args.as_str())
                .push_unseparated("::jsonb")
                .push_bind(item.ref_post)
                .push_bind(ev.received_at_ms)
                .push_bind(ev.received_at_ms);
        });
        q.push(" RETURNING id, lane");
        let inserted: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
        for (id, lane) in inserted {
            let head = touched.entry(lane).or_insert(id);
            *head = (*head).min(id);
        }
    }
    Ok(())
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let opts: PgConnectOptions = url.parse().map_err(|e| {
        StoreError::Other(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
    })?;
    Ok(opts.log_statements(tracing::log::LevelFilter::Trace))
}

pub(crate) async fn migrate_url(url: &str) -> Result<MigrationReport, StoreError> {
    let mut conn = PgConnection::connect_with(&connect_options(url)?).await?;
    let report = apply_migrations(&mut conn).await;
    let _ = conn.close().await;
    report
}

fn schema_version(conn: &mut PgConnection) -> crate::BoxFuture<'_, Result<i64, StoreError>> {
    // Boxed as Send here, where lifetimes are concrete (see `crate::open`).
    Box::pin(async move {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('sluice_schema_migrations') IS NOT NULL")
                .fetch_one(&mut *conn)
                .await?;
        if !exists {
            return Ok(0);
        }
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM sluice_schema_migrations",
        )
        .fetch_one(&mut *conn)
        .await?)
    })
}

fn too_new(db: i64) -> StoreError {
    StoreError::SchemaMismatch {
        db,
        binary: BINARY_VERSION,
        fix: "this binary is older than the database: upgrade sluice".into(),
    }
}

fn apply_migrations(
    conn: &mut PgConnection,
) -> crate::BoxFuture<'_, Result<MigrationReport, StoreError>> {
    // Boxed as Send here, where lifetimes are concrete (see `crate::open`).
    Box::pin(async move {
        let mut tx = conn.begin().await?;
        // Replicas starting together: one migrates, the others wait and then find nothing to do.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::Executor::execute(
            &mut *tx,
            "CREATE TABLE IF NOT EXISTS sluice_schema_migrations (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
        )
        .await?;
        let from = schema_version(&mut tx).await?;
        if from > BINARY_VERSION {
            return Err(too_new(from));
        }
        let mut applied = Vec::new();
        // Collected first: a filtering closure held across `.await` trips rustc's higher-ranked Send check.
        let pending: Vec<(i64, &'static str, &'static str)> =
            MIGRATIONS.iter().copied().filter(|m| m.0 > from).collect();
        for (version, name, sql) in pending {
            sqlx::Executor::execute(&mut *tx, sql).await?;
            sqlx::query("INSERT INTO sluice_schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)")
                .bind(version)
                .bind(name)
                .bind(wall_clock_ms())
                .execute(&mut *tx)
                .await?;
            applied.push(name.to_string());
        }
        tx.commit().await?;
        Ok(MigrationReport {
            backend: "postgres",
            from,
            to: BINARY_VERSION,
            applied,
        })
    })
}

impl PgStore {
    pub(crate) async fn open(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        // A short acquire timeout turns an outage into a quick `Unavailable` (503) instead of requests hanging;
        // testing connections before handing them out lets the pool drop the ones a restart or
        // pg_terminate_backend killed, and reconnect by itself once the server is back.
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect_with(connect_options(url)?)
            .await?;
        let mut conn = pool.acquire().await?;
        if opts.migrate {
            apply_migrations(&mut conn).await?;
        } else {
            let db = schema_version(&mut conn).await?;
            if db > BINARY_VERSION {
                return Err(too_new(db));
            }
            if db < BINARY_VERSION {
                return Err(StoreError::SchemaMismatch {
                    db,
                    binary: BINARY_VERSION,
                    fix: "run `sluice migrate`".into(),
                });
            }
        }
        drop(conn);
        let ingester = spawn_writer(PgGroupCommit(pool.clone()));
        Ok(PgStore { pool, ingester })
    }
}

/// Locks lane rows (creating missing ones) in a fixed order; see the module docs for why every lane change does this.
async fn lock_lanes(conn: &mut PgConnection, lanes: &BTreeSet<String>) -> Result<(), StoreError> {
    if lanes.is_empty() {
        return Ok(());
    }
    let lanes: Vec<&str> = lanes.iter().map(String::as_str).collect();
    sqlx::query("INSERT INTO lanes (lane) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT (lane) DO NOTHING")
        .bind(&lanes)
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT lane FROM lanes WHERE lane = ANY($1) ORDER BY lane FOR UPDATE")
        .bind(&lanes)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Recomputes lane heads; callers hold the lane locks, so the statement sees every committed item.
async fn refresh_lanes(
    conn: &mut PgConnection,
    lanes: &BTreeSet<String>,
) -> Result<(), StoreError> {
    for lane in lanes {
        sqlx::query(
            "UPDATE lanes SET head_id = (SELECT MIN(id) FROM outbox WHERE lane = $1 AND state = 'pending')
             WHERE lane = $1",
        )
        .bind(lane)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The lane of an item (lanes never change), or a Conflict naming the missing item.
async fn lane_of(conn: &mut PgConnection, item_id: i64) -> Result<String, StoreError> {
    sqlx::query_scalar("SELECT lane FROM outbox WHERE id = $1")
        .bind(item_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("outbox item {item_id} does not exist")))
}

async fn not_pending(conn: &mut PgConnection, item_id: i64) -> StoreError {
    match sqlx::query_scalar::<_, String>("SELECT state FROM outbox WHERE id = $1")
        .bind(item_id)
        .fetch_optional(&mut *conn)
        .await
    {
        Ok(Some(state)) => {
            StoreError::Conflict(format!("outbox item {item_id} is {state}, not pending"))
        }
        Ok(None) => StoreError::Conflict(format!("outbox item {item_id} does not exist")),
        Err(e) => e.into(),
    }
}

/// An `alerts` row selected as `id, first_event_id, count, last_seen_ms`.
fn open_alert_row(r: &sqlx::postgres::PgRow) -> Result<OpenAlert, sqlx::Error> {
    Ok(OpenAlert {
        id: r.try_get(0)?,
        first_event_id: r.try_get(1)?,
        count: r.try_get(2)?,
        last_seen_ms: r.try_get(3)?,
    })
}

struct PgIngest<'c> {
    conn: &'c mut PgConnection,
}

#[async_trait::async_trait]
impl IngestTx for PgIngest<'_> {
    async fn open_alert(&mut self, key: &str) -> Result<Option<OpenAlert>, StoreError> {
        let row = sqlx::query(
            "SELECT id, first_event_id, count, last_seen_ms FROM alerts WHERE dedup_key = $1 AND closed_at_ms IS NULL",
        )
        .bind(key)
        .fetch_optional(&mut *self.conn)
        .await?;
        row.as_ref()
            .map(open_alert_row)
            .transpose()
            .map_err(Into::into)
    }

    async fn close_alert(&mut self, alert_id: i64, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET closed_at_ms = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(alert_id)
            .execute(&mut *self.conn)
            .await?;
        // A closed alert inhibits nothing; dropping its keys keeps the lookup short.
        sqlx::query("DELETE FROM inhibit_keys WHERE alert_id = $1")
            .bind(alert_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn bump_alert(
        &mut self,
        alert_id: i64,
        count: i64,
        last_seen_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET count = $1, last_seen_ms = $2 WHERE id = $3")
            .bind(count)
            .bind(last_seen_ms)
            .bind(alert_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn create_alert(
        &mut self,
        key: &str,
        first_event_id: &str,
        at_ms: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO alerts (dedup_key, first_event_id, count, first_seen_ms, last_seen_ms)
             VALUES ($1, $2, 1, $3, $3) RETURNING id",
        )
        .bind(key)
        .bind(first_event_id)
        .bind(at_ms)
        .fetch_one(&mut *self.conn)
        .await?)
    }

    async fn alert_post(
        &mut self,
        alert_id: i64,
        lane: &str,
    ) -> Result<Option<(i64, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT p.item_id, o.state, o.dead_reason FROM alert_posts p LEFT JOIN outbox o ON o.id = p.item_id
             WHERE p.alert_id = $1 AND p.lane = $2",
        )
        .bind(alert_id)
        .bind(lane)
        .fetch_optional(&mut *self.conn)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let state: Option<String> = r.try_get(1)?;
        let dead = match state.as_deref() {
            Some("dead") => Some(r.try_get::<Option<String>, _>(2)?.unwrap_or_default()),
            _ => None,
        };
        Ok(Some((r.try_get(0)?, dead)))
    }

    async fn add_alert_post(
        &mut self,
        alert_id: i64,
        lane: &str,
        item_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO alert_posts (alert_id, lane, item_id) VALUES ($1, $2, $3)")
            .bind(alert_id)
            .bind(lane)
            .bind(item_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn closed_alert_since(
        &mut self,
        key: &str,
        since_ms: i64,
    ) -> Result<Option<OpenAlert>, StoreError> {
        let row = sqlx::query(
            "SELECT id, first_event_id, count, last_seen_ms FROM alerts
             WHERE dedup_key = $1 AND closed_at_ms IS NOT NULL AND closed_at_ms >= $2
             ORDER BY closed_at_ms DESC, id DESC LIMIT 1",
        )
        .bind(key)
        .bind(since_ms)
        .fetch_optional(&mut *self.conn)
        .await?;
        row.as_ref()
            .map(open_alert_row)
            .transpose()
            .map_err(Into::into)
    }

    async fn reopen_alert(
        &mut self,
        alert_id: i64,
        count: i64,
        last_seen_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alerts SET closed_at_ms = NULL, count = $1, last_seen_ms = $2 WHERE id = $3",
        )
        .bind(count)
        .bind(last_seen_ms)
        .bind(alert_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn refresh_pending(&mut self, alert_id: i64, lane: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT o.id FROM alert_posts p JOIN outbox o ON o.id = p.refresh_item_id
             WHERE p.alert_id = $1 AND p.lane = $2 AND o.state = 'pending'",
        )
        .bind(alert_id)
        .bind(lane)
        .fetch_optional(&mut *self.conn)
        .await?;
        Ok(found.is_some())
    }

    async fn set_refresh(
        &mut self,
        alert_id: i64,
        lane: &str,
        item_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_posts SET refresh_item_id = $1 WHERE alert_id = $2 AND lane = $3",
        )
        .bind(item_id)
        .bind(alert_id)
        .bind(lane)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn alert_of(&mut self, event_id: &str) -> Result<Option<i64>, StoreError> {
        let Some(root) = root_of(&mut *self.conn, event_id).await? else {
            return Ok(None);
        };
        Ok(sqlx::query_scalar(
            "SELECT id FROM alerts WHERE first_event_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(root)
        .fetch_optional(&mut *self.conn)
        .await?)
    }

    async fn insert_event(&mut self, row: &EventRow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (id, received_at_ms, source, body, fate) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
        )
        .bind(row.id)
        .bind(row.received_at_ms)
        .bind(row.source)
        .bind(&row.body)
        .bind(&row.fate)
        .execute(&mut *self.conn)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("event {} already exists", row.id)),
            other => other,
        })?;
        Ok(())
    }

    async fn join_group(
        &mut self,
        g: &GroupJoin,
        first_event_id: &str,
        alert_id: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let group_id: i64 = sqlx::query_scalar(pg!(grp::JOIN_GROUP))
            .bind(&g.key)
            .bind(&g.rule)
            .bind(&g.lane)
            .bind(&g.team)
            .bind(&g.channel)
            .bind(&g.template)
            .bind(labels_json(&g.labels)?)
            .bind(first_event_id)
            .bind(g.wait_ms)
            .bind(g.interval_ms)
            .bind(g.repeat_ms)
            .bind(now_ms)
            .fetch_one(&mut *self.conn)
            .await?;
        sqlx::query(pg!(grp::ADD_MEMBER))
            .bind(group_id)
            .bind(alert_id)
            .execute(&mut *self.conn)
            .await?;
        sqlx::query(pg!(grp::COUNT_ROUTE_EVENT))
            .bind(&g.rule)
            .bind(now_ms - now_ms.rem_euclid(1000))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn group_of(&mut self, group_id: i64) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(pg!(grp::GROUP_OF))
            .bind(group_id)
            .fetch_optional(&mut *self.conn)
            .await?)
    }

    async fn group_post(
        &mut self,
        group_id: i64,
    ) -> Result<Option<(i64, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(pg!(grp::GROUP_POST))
            .bind(group_id)
            .fetch_optional(&mut *self.conn)
            .await?)
    }

    async fn finish_flush(
        &mut self,
        f: &GroupFlush,
        post_id: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(pg!(grp::FINISH_FLUSH))
            .bind(f.group_id)
            .bind(f.version)
            .bind(now_ms)
            .bind(f.notified_firing)
            .bind(f.next_due_ms)
            .bind(i64::from(f.digested))
            .bind(post_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn insert_item(&mut self, row: &ItemRow<'_>) -> Result<i64, StoreError> {
        let (state, dead_at) = match row.dead_reason {
            Some(_) => ("dead", Some(row.created_at_ms)),
            None => ("pending", None),
        };
        Ok(sqlx::query_scalar(
            "INSERT INTO outbox (event_id, lane, team, channel, method, args, ref_post, ref_item_id, state,
                                 created_at_ms, next_attempt_at_ms, dead_reason, dead_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $10, $11, $12) RETURNING id",
        )
        .bind(row.event_id)
        .bind(&row.item.lane)
        .bind(&row.item.team)
        .bind(&row.item.channel)
        .bind(&row.item.method)
        .bind(&row.args)
        .bind(row.item.ref_post)
        .bind(row.ref_item_id)
        .bind(state)
        .bind(row.created_at_ms)
        .bind(&row.dead_reason)
        .bind(dead_at)
        .fetch_one(&mut *self.conn)
        .await?)
    }

    async fn key_held(
        &mut self,
        key: &InhibitKey,
        own: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM inhibit_keys k JOIN alerts a ON a.id = k.alert_id
             WHERE k.key = $1 AND a.closed_at_ms IS NULL AND a.last_seen_ms >= $2 - k.window_ms
               AND a.dedup_key IS DISTINCT FROM $3::text AND NOT (k.both_sides AND $4))",
        )
        .bind(&key.key)
        .bind(now_ms)
        .bind(own)
        .bind(key.both_sides)
        .fetch_one(&mut *self.conn)
        .await?)
    }

    async fn hold_keys(
        &mut self,
        alert_id: i64,
        keys: &[InhibitKey],
        window_ms: i64,
    ) -> Result<(), StoreError> {
        let (names, both): (Vec<&str>, Vec<bool>) =
            keys.iter().map(|k| (k.key.as_str(), k.both_sides)).unzip();
        sqlx::query(
            "INSERT INTO inhibit_keys (key, alert_id, both_sides, window_ms)
             SELECT t.key, $3, t.both_sides, $4 FROM unnest($1::text[], $2::boolean[]) AS t(key, both_sides)
             ON CONFLICT (key, alert_id) DO NOTHING",
        )
        .bind(&names)
        .bind(&both)
        .bind(alert_id)
        .bind(window_ms)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}

fn parse_json(what: &str, s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn delivery_state(r: &PgRow) -> Result<DeliveryState, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(match state.as_str() {
        "pending" => DeliveryState::Pending,
        "sent" => DeliveryState::Sent {
            channel: r
                .try_get::<Option<String>, _>("sent_channel")?
                .unwrap_or_default(),
            ts: r
                .try_get::<Option<String>, _>("sent_ts")?
                .unwrap_or_default(),
            at_ms: r
                .try_get::<Option<i64>, _>("sent_at_ms")?
                .unwrap_or_default(),
        },
        "dead" => DeliveryState::Dead {
            reason: r
                .try_get::<Option<String>, _>("dead_reason")?
                .unwrap_or_default(),
            at_ms: r
                .try_get::<Option<i64>, _>("dead_at_ms")?
                .unwrap_or_default(),
        },
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown outbox state {other:?}"
            )))
        }
    })
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Bounded as a whole: a server that accepts TCP but never answers must still fail /readyz promptly.
        match tokio::time::timeout(
            ACQUIRE_TIMEOUT * 2,
            sqlx::query("SELECT 1").execute(&self.pool),
        )
        .await
        {
            Ok(result) => {
                result?;
                Ok(())
            }
            Err(_) => Err(StoreError::Unavailable(
                "database did not answer a ping in time".into(),
            )),
        }
    }

    async fn ingest(&self, batch: Vec<NewEvent>) -> Result<Ingested, StoreError> {
        self.ingester.ingest(batch).await
    }

    async fn event(&self, id: &str) -> Result<Option<EventStatus>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(ev) = sqlx::query(
            "SELECT id, received_at_ms, source, body::text AS body, fate::text AS fate FROM events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT id, channel, method, state, attempts, last_error, sent_channel, sent_ts, sent_at_ms,
                    dead_reason, dead_at_ms
             FROM outbox WHERE event_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        let deliveries = rows
            .iter()
            .map(|r| {
                Ok(DeliveryStatus {
                    item_id: r.try_get("id")?,
                    channel: r.try_get("channel")?,
                    method: r.try_get("method")?,
                    state: delivery_state(r)?,
                    attempts: attempts(r.try_get("attempts")?),
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let fate = parse_fate(&ev.try_get::<String, _>("fate")?)?;
        let body: String = ev.try_get("body")?;
        let actions = actions_of(&mut conn, alert_root(id, &fate)).await?;
        let groups: Vec<(
            String,
            String,
            String,
            Option<String>,
            Option<i64>,
            Option<i64>,
        )> = sqlx::query_as(pg!(grp::GROUPS_OF_EVENT))
            .bind(alert_root(id, &fate))
            .fetch_all(&mut *conn)
            .await?;
        let groups = groups
            .into_iter()
            .map(
                |(key, rule, channel, ts, notified_at_ms, digested_at_ms)| GroupRef {
                    key,
                    rule,
                    channel,
                    ts,
                    notified_at_ms,
                    digested_at_ms,
                },
            )
            .collect();
        Ok(Some(EventStatus {
            id: ev.try_get("id")?,
            received_at_ms: ev.try_get("received_at_ms")?,
            source: ev.try_get("source")?,
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
        Ok(sqlx::query_scalar(
            "WITH claimable AS (
                 SELECT l.lane FROM lanes l
                 JOIN outbox h ON h.id = l.head_id
                 LEFT JOIN outbox r ON r.id = h.ref_item_id
                 WHERE (l.owner IS NULL OR l.lease_until_ms <= $2)
                   AND h.next_attempt_at_ms <= $2
                   AND (h.ref_item_id IS NULL OR r.state = 'sent')
                 ORDER BY h.next_attempt_at_ms, l.lane
                 LIMIT $4
                 FOR UPDATE OF l SKIP LOCKED)
             UPDATE lanes SET owner = $1, lease_until_ms = $2 + $3
             FROM claimable WHERE lanes.lane = claimable.lane
             RETURNING lanes.lane",
        )
        .bind(owner)
        .bind(now_ms)
        .bind(lease_ms)
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn renew_leases(
        &self,
        owner: &str,
        lanes: &[String],
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE lanes SET lease_until_ms = $1 WHERE owner = $2 AND lane = ANY($3) RETURNING lane",
        )
        .bind(now_ms + lease_ms)
        .bind(owner)
        .bind(lanes)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn release_lane(&self, owner: &str, lane: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE lanes SET owner = NULL, lease_until_ms = 0 WHERE lane = $1 AND owner = $2",
        )
        .bind(lane)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn lane_items(&self, lane: &str, max: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, o.event_id, o.lane, o.team, o.channel, o.method, o.args::text AS args, o.attempts,
                    o.created_at_ms, o.next_attempt_at_ms, o.ref_item_id, r.state AS ref_state,
                    r.sent_channel AS ref_channel, r.sent_ts AS ref_ts
             FROM outbox o LEFT JOIN outbox r ON r.id = o.ref_item_id
             WHERE o.lane = $1 AND o.state = 'pending' ORDER BY o.id LIMIT $2",
        )
        .bind(lane)
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let ref_id: Option<i64> = r.try_get("ref_item_id")?;
                let ref_state: Option<String> = r.try_get("ref_state")?;
                let ref_sent = match ref_state.as_deref() {
                    Some("sent") => Some(RefSent {
                        channel: r
                            .try_get::<Option<String>, _>("ref_channel")?
                            .unwrap_or_default(),
                        ts: r
                            .try_get::<Option<String>, _>("ref_ts")?
                            .unwrap_or_default(),
                    }),
                    _ => None,
                };
                let args: String = r.try_get("args")?;
                Ok(OutboxItem {
                    id: r.try_get("id")?,
                    event_id: r.try_get("event_id")?,
                    lane: r.try_get("lane")?,
                    team: r.try_get("team")?,
                    channel: r.try_get("channel")?,
                    method: r.try_get("method")?,
                    args: parse_json("outbox args", &args)?,
                    attempts: attempts(r.try_get("attempts")?),
                    created_at_ms: r.try_get("created_at_ms")?,
                    next_attempt_at_ms: r.try_get("next_attempt_at_ms")?,
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
        let mut tx = self.pool.begin().await?;
        let lanes = BTreeSet::from([lane_of(&mut tx, item_id).await?]);
        lock_lanes(&mut tx, &lanes).await?;
        let n = sqlx::query(
            "UPDATE outbox SET state = 'sent', sent_channel = $1, sent_ts = $2, sent_at_ms = $3
             WHERE id = $4 AND state = 'pending'",
        )
        .bind(channel)
        .bind(ts)
        .bind(now_ms)
        .bind(item_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_pending(&mut tx, item_id).await);
        }
        refresh_lanes(&mut tx, &lanes).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_retry(
        &self,
        item_id: i64,
        next_attempt_at_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let n = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_ms = $1, last_error = $2
             WHERE id = $3 AND state = 'pending'",
        )
        .bind(next_attempt_at_ms)
        .bind(error)
        .bind(item_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_pending(&mut conn, item_id).await);
        }
        Ok(())
    }

    async fn mark_dead(&self, item_id: i64, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Updates that reference this post live in the same lane: the lane lock also stops an ingest from linking a
        // new update to the post while it dies.
        let lanes = BTreeSet::from([lane_of(&mut tx, item_id).await?]);
        lock_lanes(&mut tx, &lanes).await?;
        let n = sqlx::query(
            "UPDATE outbox SET state = 'dead', dead_reason = $1, dead_at_ms = $2 WHERE id = $3 AND state = 'pending'",
        )
        .bind(reason)
        .bind(now_ms)
        .bind(item_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_pending(&mut tx, item_id).await);
        }
        sqlx::query(
            "UPDATE outbox SET state = 'dead', dead_reason = $1, dead_at_ms = $2
             WHERE ref_item_id = $3 AND state = 'pending'",
        )
        .bind(ref_dead_reason(item_id, reason))
        .bind(now_ms)
        .bind(item_id)
        .execute(&mut *tx)
        .await?;
        refresh_lanes(&mut tx, &lanes).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, channel, method, dead_reason, attempts, dead_at_ms FROM outbox
             WHERE state = 'dead' ORDER BY dead_at_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    item_id: r.try_get("id")?,
                    event_id: r.try_get("event_id")?,
                    channel: r.try_get("channel")?,
                    method: r.try_get("method")?,
                    reason: r
                        .try_get::<Option<String>, _>("dead_reason")?
                        .unwrap_or_default(),
                    attempts: attempts(r.try_get("attempts")?),
                    dead_at_ms: r
                        .try_get::<Option<i64>, _>("dead_at_ms")?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn replay(&self, which: Replay, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let candidates: Vec<(i64, String)> = match which {
            Replay::All => {
                sqlx::query_as("SELECT id, lane FROM outbox WHERE state = 'dead'")
                    .fetch_all(&mut *tx)
                    .await?
            }
            Replay::Item(id) => {
                let row = sqlx::query(
                    "SELECT o.lane, o.state, o.ref_item_id, r.state AS ref_state FROM outbox o
                     LEFT JOIN outbox r ON r.id = o.ref_item_id WHERE o.id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Err(StoreError::Conflict(format!(
                        "outbox item {id} does not exist"
                    )));
                };
                let state: String = row.try_get("state")?;
                if state != "dead" {
                    return Err(StoreError::Conflict(format!(
                        "outbox item {id} is {state}, not dead"
                    )));
                }
                let lane: String = row.try_get("lane")?;
                let mut ids = vec![(id, lane.clone())];
                let ref_id: Option<i64> = row.try_get("ref_item_id")?;
                let ref_state: Option<String> = row.try_get("ref_state")?;
                if let (Some(post), Some("dead")) = (ref_id, ref_state.as_deref()) {
                    ids.push((post, lane));
                }
                ids
            }
        };
        let lanes: BTreeSet<String> = candidates.iter().map(|(_, l)| l.clone()).collect();
        lock_lanes(&mut tx, &lanes).await?;
        let ids: Vec<i64> = candidates.iter().map(|(id, _)| *id).collect();
        let n = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at_ms = $1,
                    dead_reason = NULL, dead_at_ms = NULL
             WHERE id = ANY($2) AND state = 'dead'",
        )
        .bind(now_ms)
        .bind(&ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        refresh_lanes(&mut tx, &lanes).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn outbox_stats(&self, now_ms: i64) -> Result<OutboxStats, StoreError> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending') AS pending,
                    (SELECT MIN(h.created_at_ms) FROM lanes l JOIN outbox h ON h.id = l.head_id) AS oldest,
                    (SELECT COUNT(*) FROM outbox WHERE state = 'dead') AS dead,
                    (SELECT COUNT(*) FROM lanes WHERE owner IS NOT NULL AND lease_until_ms > $1) AS leased",
        )
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = r.try_get("oldest")?;
        Ok(OutboxStats {
            pending: r.try_get::<i64, _>("pending")? as u64,
            oldest_pending_age_ms: oldest.map(|t| (now_ms - t).max(0)),
            dead: r.try_get::<i64, _>("dead")? as u64,
            lanes_leased: r.try_get::<i64, _>("leased")? as u64,
        })
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for sql in grp::PRUNE_GROUPS {
            sqlx::query(&to_pg(sql))
                .bind(older_than_ms)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "DELETE FROM alert_posts WHERE alert_id IN
                 (SELECT id FROM alerts WHERE closed_at_ms IS NOT NULL AND closed_at_ms < $1)",
        )
        .bind(older_than_ms)
        .execute(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM alerts WHERE closed_at_ms IS NOT NULL AND closed_at_ms < $1",
            "DELETE FROM outbox o WHERE o.state = 'sent' AND o.sent_at_ms < $1
                 AND NOT EXISTS (SELECT 1 FROM alert_posts p WHERE p.item_id = o.id)
                 AND NOT EXISTS (SELECT 1 FROM alert_groups g WHERE g.post_item_id = o.id)
                 AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.ref_item_id = o.id AND f.state <> 'sent')",
            "DELETE FROM events e WHERE e.received_at_ms < $1
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = e.id)
                 AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.first_event_id = e.id AND a.closed_at_ms IS NULL)",
        ] {
            removed += sqlx::query(sql).bind(older_than_ms).execute(&mut *tx).await?.rows_affected();
        }
        // Bookkeeping too: the inhibition keys of pruned alerts (closing an alert already drops its keys).
        sqlx::query(
            "DELETE FROM inhibit_keys k WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = k.alert_id)",
        )
        .execute(&mut *tx)
        .await?;
        // After the events: an action goes only once the event it is recorded on is gone.
        let silences =
            sqlx::query("DELETE FROM silences WHERE COALESCE(expired_at_ms, ends_at_ms) < $1")
                .bind(older_than_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if silences > 0 {
            // Only ended silences went, but a cache that lists expired ones should see them go.
            bump_silences_version(&mut tx).await?;
        }
        removed += silences;
        removed += sqlx::query(
            "DELETE FROM alert_actions a WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = a.event_id)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for sql in [
            "DELETE FROM once_keys WHERE expires_at_ms < $1",
            "DELETE FROM rate_limits WHERE tat_ms < $1 - $2 AND blocked_until_ms < $1 - $2",
            "DELETE FROM leaders WHERE until_ms < $1",
        ] {
            removed += sqlx::query(sql)
                .bind(older_than_ms)
                .bind(RATE_IDLE_MS)
                .execute(&mut *tx)
                .await?
                .rows_affected();
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
        // One statement, atomic across replicas: ON CONFLICT DO UPDATE locks the key's row and evaluates the SET
        // expressions against its latest committed version, all of them against the same (old) values.
        let (tat, blocked, allowed): (i64, i64, bool) = sqlx::query_as(
            "INSERT INTO rate_limits (key, tat_ms, blocked_until_ms, last_allowed) VALUES ($1, $2 + $3, 0, TRUE)
             ON CONFLICT (key) DO UPDATE SET
                 last_allowed = (rate_limits.blocked_until_ms <= $2 AND rate_limits.tat_ms - $2 <= $4),
                 tat_ms = CASE WHEN rate_limits.blocked_until_ms <= $2 AND rate_limits.tat_ms - $2 <= $4
                               THEN GREATEST(rate_limits.tat_ms, $2) + $3 ELSE rate_limits.tat_ms END
             RETURNING tat_ms, blocked_until_ms, last_allowed",
        )
        .bind(key)
        .bind(now_ms)
        .bind(p.interval_ms)
        .bind(p.tolerance_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(p.decision(allowed, tat, blocked))
    }

    async fn block_rate(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rate_limits (key, tat_ms, blocked_until_ms, last_allowed) VALUES ($1, 0, $2, FALSE)
             ON CONFLICT (key) DO UPDATE SET
                 blocked_until_ms = GREATEST(rate_limits.blocked_until_ms, excluded.blocked_until_ms)",
        )
        .bind(key)
        .bind(until_ms)
        .execute(&self.pool)
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
        let row: Option<String> = sqlx::query_scalar(
            "INSERT INTO leaders (role, owner, until_ms) VALUES ($1, $2, $3 + $4)
             ON CONFLICT (role) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
                 WHERE leaders.owner = excluded.owner OR leaders.until_ms <= $3
             RETURNING owner",
        )
        .bind(role)
        .bind(owner)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn resign(&self, role: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leaders WHERE role = $1 AND owner = $2")
            .bind(role)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn first_time(&self, key: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        // Concurrent inserts of one key: the later ones wait for the first to commit and then take the conflict
        // path, where the unexpired row makes the WHERE false and nothing is returned.
        let row: Option<String> = sqlx::query_scalar(
            "INSERT INTO once_keys (key, expires_at_ms) VALUES ($1, $2 + $3)
             ON CONFLICT (key) DO UPDATE SET expires_at_ms = excluded.expires_at_ms
                 WHERE once_keys.expires_at_ms <= $2
             RETURNING key",
        )
        .bind(key)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn record_audit(&self, a: NewAudit) -> Result<AuditRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The head row lock serialises appends across replicas: the next append waits, then chains onto this one.
        let (last_id, last_hash): (i64, String) =
            sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE one = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let rec = audit::next_record(last_id, &last_hash, a)?;
        sqlx::query(
            "INSERT INTO audit_log (id, at_ms, actor, team, action, target, result, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(rec.id)
        .bind(rec.at_ms)
        .bind(&rec.actor)
        .bind(&rec.team)
        .bind(&rec.action)
        .bind(&rec.target)
        .bind(&rec.result)
        .bind(audit::canonical_json(&rec.detail)?)
        .bind(&rec.prev_hash)
        .bind(&rec.hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE one = 1")
            .bind(rec.id)
            .bind(&rec.hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn audit(&self, since_id: i64, max: usize) -> Result<Vec<AuditRecord>, StoreError> {
        audit_page(&self.pool, since_id, i64::MAX, max).await
    }

    async fn verify_audit(&self) -> Result<Option<i64>, StoreError> {
        // The head first: records appended while we walk have larger ids and are simply not looked at.
        let (head_id, head_hash): (i64, String) =
            sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE one = 1")
                .fetch_one(&self.pool)
                .await?;
        let mut check = audit::ChainCheck::new();
        loop {
            let page =
                audit_page(&self.pool, check.next_id() - 1, head_id, audit::VERIFY_PAGE).await?;
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO silences (id, matchers, starts_at_ms, ends_at_ms, author, comment, created_at_ms)
             VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(matchers_json(&s.matchers)?)
        .bind(s.starts_at_ms)
        .bind(s.ends_at_ms)
        .bind(&s.author)
        .bind(&s.comment)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        bump_silences_version(&mut tx).await?;
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
        let rows = sqlx::query(
            "SELECT id, matchers::text AS matchers, starts_at_ms, ends_at_ms, author, comment, created_at_ms,
                    expired_at_ms
             FROM silences WHERE $1 OR (expired_at_ms IS NULL AND ends_at_ms > $2)
             ORDER BY created_at_ms, id",
        )
        .bind(include_expired)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Silence {
                    id: r.try_get("id")?,
                    matchers: parse_matchers(&r.try_get::<String, _>("matchers")?)?,
                    starts_at_ms: r.try_get("starts_at_ms")?,
                    ends_at_ms: r.try_get("ends_at_ms")?,
                    author: r.try_get("author")?,
                    comment: r.try_get("comment")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                    expired_at_ms: r.try_get("expired_at_ms")?,
                })
            })
            .collect()
    }

    async fn expire_silence(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Two replicas expiring one silence: the row lock makes the second re-check the WHERE and find it expired.
        let n = sqlx::query(
            "UPDATE silences SET expired_at_ms = $2
             WHERE id = $1 AND expired_at_ms IS NULL AND ends_at_ms > $2",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            bump_silences_version(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn silences_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT version FROM silences_version WHERE one = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn record_alert_action(
        &self,
        event_id: &str,
        action: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<AckOutcome, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(root) = root_of(&mut conn, event_id).await? else {
            return Err(StoreError::Conflict(format!(
                "event {event_id} does not exist"
            )));
        };
        // A racing insert of the same key waits for the first to commit, then does nothing: one winner. The read
        // that follows is a new statement, so it sees that winner. Only a prune between the two statements can
        // make the winner vanish; then the next round records this click.
        for _ in 0..3 {
            let won: Option<String> = sqlx::query_scalar(
                "INSERT INTO alert_actions (event_id, action, actor, at_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (event_id, action) DO NOTHING RETURNING actor",
            )
            .bind(&root)
            .bind(action)
            .bind(actor)
            .bind(now_ms)
            .fetch_optional(&mut *conn)
            .await?;
            if won.is_some() {
                return Ok(AckOutcome::Recorded);
            }
            let winner: Option<(String, i64)> = sqlx::query_as(
                "SELECT actor, at_ms FROM alert_actions WHERE event_id = $1 AND action = $2",
            )
            .bind(&root)
            .bind(action)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some((actor, at_ms)) = winner {
                return Ok(AckOutcome::AlreadyBy { actor, at_ms });
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
        let mut conn = self.pool.acquire().await?;
        let Some(root) = root_of(&mut conn, event_id).await? else {
            return Ok(Vec::new());
        };
        Ok(actions_of(&mut conn, &root)
            .await?
            .into_iter()
            .map(|a| (a.action, a.actor, a.at_ms))
            .collect())
    }

    async fn alert_card(&self, item_id: i64) -> Result<Option<AlertCard>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Under the lane lock, like ingest: a duplicate being committed now is either seen by this read or sees
        // the refresh as no longer pending, never neither.
        let Some(lane) = sqlx::query_scalar::<_, String>("SELECT lane FROM outbox WHERE id = $1")
            .bind(item_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        lock_lanes(&mut tx, &BTreeSet::from([lane])).await?;
        let row = sqlx::query(
            "SELECT a.id, a.first_event_id, a.count, a.first_seen_ms, a.last_seen_ms, a.closed_at_ms,
                    e.body::text AS body, p.lane, p.refresh_item_id
             FROM outbox o
             JOIN alert_posts p ON p.item_id = o.ref_item_id
             JOIN alerts a ON a.id = p.alert_id
             JOIN events e ON e.id = a.first_event_id
             WHERE o.id = $1",
        )
        .bind(item_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let alert_id: i64 = r.try_get(0)?;
        let lane: String = r.try_get("lane")?;
        if r.try_get::<Option<i64>, _>("refresh_item_id")? == Some(item_id) {
            sqlx::query(
                "UPDATE alert_posts SET refresh_item_id = NULL WHERE alert_id = $1 AND lane = $2",
            )
            .bind(alert_id)
            .bind(&lane)
            .execute(&mut *tx)
            .await?;
        }
        let body: String = r.try_get("body")?;
        let card = AlertCard {
            first_event_id: r.try_get(1)?,
            body: parse_json("event body", &body)?,
            count: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(u32::MAX),
            first_seen_ms: r.try_get(3)?,
            last_seen_ms: r.try_get(4)?,
            closed_at_ms: r.try_get(5)?,
        };
        tx.commit().await?;
        Ok(Some(card))
    }

    async fn due_groups(
        &self,
        now_ms: i64,
        limit: usize,
        alerts: usize,
    ) -> Result<Vec<GroupState>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<GroupRow> = sqlx::query_as(pg!(grp::due_groups_sql()))
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut g = group_state(row)?;
            let (firing, total): (i64, i64) = sqlx::query_as(pg!(grp::GROUP_COUNTS))
                .bind(g.id)
                .fetch_one(&mut *conn)
                .await?;
            (g.firing, g.resolved) = (firing, total - firing);
            let members: Vec<(String, String, i64, i64, i64, Option<i64>)> =
                sqlx::query_as(pg!(grp::GROUP_MEMBERS))
                    .bind(g.id)
                    .bind(i64::try_from(alerts).unwrap_or(i64::MAX))
                    .fetch_all(&mut *conn)
                    .await?;
            for (first_event_id, body, count, first_seen_ms, last_seen_ms, closed_at_ms) in members
            {
                g.alerts.push(AlertCard {
                    first_event_id,
                    body: parse_json("event body", &body)?,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    first_seen_ms,
                    last_seen_ms,
                    closed_at_ms,
                });
            }
            out.push(g);
        }
        Ok(out)
    }

    async fn flush_group(&self, f: GroupFlush, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some((first_event_id, lane)) = PgIngest { conn: &mut tx }.group_of(f.group_id).await?
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
        lock_lanes(&mut tx, &lanes).await?;
        let mut touched = TouchedLanes::new();
        grp::flush_in(
            &mut PgIngest { conn: &mut tx },
            &f,
            &first_event_id,
            now_ms,
            &mut touched,
        )
        .await?;
        set_lane_heads(&mut tx, &touched).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_groups(&self, first_event_id: &str, now_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(pg!(grp::TOUCH_GROUPS))
            .bind(first_event_id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn absorb_groups(&self, rule: &str, now_ms: i64) -> Result<u64, StoreError> {
        let absorbed = sqlx::query(pg!(grp::ABSORB_GROUPS))
            .bind(rule)
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        sqlx::query(pg!(grp::REFRESH_DIGESTED_CARDS))
            .bind(rule)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(absorbed)
    }

    async fn route_rate(&self, rule: &str, since_ms: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(pg!(grp::ROUTE_RATE))
            .bind(rule)
            .bind(since_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn route_alerts(&self, rule: &str, since_ms: i64) -> Result<Vec<RouteAlert>, StoreError> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(pg!(grp::ROUTE_ALERTS))
            .bind(rule)
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(alert_id, body, count, last_seen_ms)| {
                Ok(RouteAlert {
                    alert_id,
                    body: parse_json("event body", &body)?,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    last_seen_ms,
                })
            })
            .collect()
    }

    async fn message_of(&self, event_id: &str) -> Result<Vec<RefSent>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(root) = root_of(&mut conn, event_id).await? else {
            return Ok(Vec::new());
        };
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT sent_channel, sent_ts FROM outbox
             WHERE event_id = $1 AND method = 'chat.postMessage' AND NOT ref_post AND state = 'sent'
             ORDER BY id",
        )
        .bind(&root)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(channel, ts)| RefSent {
                channel: channel.unwrap_or_default(),
                ts: ts.unwrap_or_default(),
            })
            .collect())
    }

    async fn event_of_message(
        &self,
        channel: &str,
        ts: &str,
    ) -> Result<Option<EventId>, StoreError> {
        let found: Option<Option<String>> = sqlx::query_scalar(
            "SELECT event_id FROM outbox
             WHERE sent_channel = $1 AND sent_ts = $2 AND state = 'sent' AND method = 'chat.postMessage'
                   AND NOT ref_post
             ORDER BY id LIMIT 1",
        )
        .bind(channel)
        .bind(ts)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.flatten())
    }
}

async fn bump_silences_version(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE silences_version SET version = version + 1 WHERE one = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The event standing for the alert `event_id` belongs to (see [`alert_root`]), or `None` for an unknown event.
async fn root_of(conn: &mut PgConnection, event_id: &str) -> Result<Option<String>, StoreError> {
    let fate: Option<String> = sqlx::query_scalar("SELECT fate::text FROM events WHERE id = $1")
        .bind(event_id)
        .fetch_optional(&mut *conn)
        .await?;
    fate.map(|f| Ok(alert_root(event_id, &parse_fate(&f)?).to_string()))
        .transpose()
}

async fn actions_of(conn: &mut PgConnection, root: &str) -> Result<Vec<AlertAction>, StoreError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT action, actor, at_ms FROM alert_actions WHERE event_id = $1 ORDER BY at_ms, action",
    )
    .bind(root)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(action, actor, at_ms)| AlertAction {
            action,
            actor,
            at_ms,
        })
        .collect())
}

async fn audit_page(
    pool: &PgPool,
    since_id: i64,
    through_id: i64,
    max: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at_ms, actor, team, action, target, result, detail, prev_hash, hash FROM audit_log
         WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
    )
    .bind(since_id)
    .bind(through_id)
    .bind(limit(max))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let detail: String = r.try_get("detail")?;
            Ok(AuditRecord {
                id: r.try_get("id")?,
                at_ms: r.try_get("at_ms")?,
                actor: r.try_get("actor")?,
                team: r.try_get("team")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                result: r.try_get("result")?,
                detail: parse_json("audit detail", &detail)?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        })
        .collect()
}
