//! The SQLite backend, [`SqliteStore`]: one process, WAL, and group commit for ingest.
//!
//! All writes go through a write pool of exactly one connection, so SQLite never has to arbitrate between writers
//! (no `SQLITE_BUSY` storms); reads use a separate pool and, thanks to WAL, never wait for the writer.
//! `ingest` calls do not take the write connection themselves: they are funnelled into one writer task
//! ([`crate::group`]) that commits everything waiting in a single transaction and answers each caller. One fsync
//! then acknowledges many events, which is what makes one-event-per-request ingest fast.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite};

use crate::alerting::{
    alert_root, check_silence, matchers_json, new_silence_id, parse_fate, parse_matchers,
};
use crate::audit;
use crate::coord::{RateParams, RATE_IDLE_MS};
use crate::error::corrupt;
use crate::group::{spawn_writer, GroupCommit, Ingester};
use crate::grouping::{self as grp, group_state, labels_json, GroupRow};
use crate::ingest::{
    ingest_inhibited, needs_reads, outbox_of, ref_dead_reason, EventRow, IngestTx, ItemRow,
    OpenAlert, TouchedLanes,
};
use crate::*;

/// Migrations of this backend, in order; the schema version is the number of the last one applied.
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

pub(crate) struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    ingester: Ingester,
}

fn connect_options(url: &str, durability: Durability) -> Result<SqliteConnectOptions, StoreError> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid SQLite URL {url}: {e}")))?
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(false)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        });
    Ok(if is_memory(url) {
        opts
    } else {
        opts.journal_mode(SqliteJournalMode::Wal)
    })
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

async fn single_connection_pool(opts: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    // An in-memory database lives as long as its connection: keep the one connection forever.
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await?)
}

pub(crate) async fn migrate_url(url: &str) -> Result<MigrationReport, StoreError> {
    let pool = single_connection_pool(connect_options(url, Durability::Full)?).await?;
    let mut conn = pool.acquire().await?;
    let report = apply_migrations(&mut conn).await;
    drop(conn);
    pool.close().await;
    report
}

fn schema_version(conn: &mut SqliteConnection) -> crate::BoxFuture<'_, Result<i64, StoreError>> {
    // Boxed as Send here, where lifetimes are concrete (see `crate::open`).
    Box::pin(async move {
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sluice_schema_migrations'",
        )
        .fetch_one(&mut *conn)
        .await?;
        if exists == 0 {
            return Ok(0);
        }
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM sluice_schema_migrations")
                .fetch_one(&mut *conn)
                .await?,
        )
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
    conn: &mut SqliteConnection,
) -> crate::BoxFuture<'_, Result<MigrationReport, StoreError>> {
    // Boxed as Send here, where lifetimes are concrete (see `crate::open`).
    Box::pin(async move {
        // IMMEDIATE: two processes migrating at once serialise here instead of both applying.
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::Executor::execute(
            &mut *tx,
            "CREATE TABLE IF NOT EXISTS sluice_schema_migrations (
                 version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
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
            sqlx::query(
                "INSERT INTO sluice_schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)",
            )
            .bind(version)
            .bind(name)
            .bind(wall_clock_ms())
            .execute(&mut *tx)
            .await?;
            applied.push(name.to_string());
        }
        tx.commit().await?;
        Ok(MigrationReport {
            backend: "sqlite",
            from,
            to: BINARY_VERSION,
            applied,
        })
    })
}

/// Only for the migration record; everything else takes the caller's clock.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SqliteStore {
    pub(crate) async fn open(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let connect = connect_options(url, opts.durability)?;
        let write = single_connection_pool(connect.clone()).await?;
        {
            let mut conn = write.acquire().await?;
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
        }
        let read = if is_memory(url) {
            // Every connection to `:memory:` would be a separate database: read through the one writer.
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(connect)
                .await?
        };
        let ingester = spawn_writer(SqliteGroupCommit(write.clone()));
        Ok(SqliteStore {
            read,
            write,
            ingester,
        })
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }
}

struct SqliteGroupCommit(SqlitePool);

impl GroupCommit for SqliteGroupCommit {
    fn commit<'a>(
        &'a self,
        batches: &'a [&'a [NewEvent]],
    ) -> BoxFuture<'a, Result<Ingested, StoreError>> {
        Box::pin(commit_group(&self.0, batches))
    }
}

async fn commit_group(pool: &SqlitePool, batches: &[&[NewEvent]]) -> Result<Ingested, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut touched = TouchedLanes::new();
    let mut ingested = Ingested::default();
    // Events without dedup need no reads: they are written with multi-row INSERTs (few statements per group instead
    // of several per event). Dedup events go one by one, after flushing what precedes them, so order is kept.
    let mut plain: Vec<&NewEvent> = Vec::new();
    for ev in batches.iter().flat_map(|b| b.iter()) {
        if !needs_reads(ev) {
            plain.push(ev);
            continue;
        }
        insert_plain(&mut tx, &plain, &mut touched).await?;
        plain.clear();
        let mut itx = SqliteIngest { conn: &mut tx };
        if let Some(rule) = ingest_inhibited(&mut itx, ev, &mut touched).await? {
            ingested.inhibited.push((ev.id.clone(), rule));
        }
    }
    insert_plain(&mut tx, &plain, &mut touched).await?;
    set_lane_heads(&mut tx, &touched).await?;
    tx.commit().await?;
    Ok(ingested)
}

/// Lanes that gained pending items get a head. A lane that already has one keeps it: every new item has a larger id.
async fn set_lane_heads(
    conn: &mut SqliteConnection,
    touched: &TouchedLanes,
) -> Result<(), StoreError> {
    let lanes: Vec<(&String, &i64)> = touched.iter().collect();
    for chunk in lanes.chunks(200) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO lanes (lane, head_id) ");
        q.push_values(chunk, |mut b, (lane, first_new)| {
            b.push_bind(lane.as_str()).push_bind(**first_new);
        });
        q.push(
            " ON CONFLICT (lane) DO UPDATE SET head_id = COALESCE(lanes.head_id, excluded.head_id)",
        );
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes events that carry no dedup request, and their items, with multi-row INSERTs.
async fn insert_plain(
    conn: &mut SqliteConnection,
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
    for chunk in rows.chunks(100) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, received_at_ms, source, body, fate) ",
        );
        q.push_values(chunk, |mut b, (ev, body, fate)| {
            b.push_bind(ev.id.as_str())
                .push_bind(ev.received_at_ms)
                .push_bind(ev.source.as_str())
                .push_bind(body.as_str())
                .push_bind(fate.as_str());
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
    for chunk in items.chunks(60) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO outbox (event_id, lane, team, channel, method, args, ref_post, created_at_ms, next_attempt_at_ms) ",
        );
        q.push_values(chunk, |mut b, (ev, item, args)| {
            b.push_bind(ev.id.as_str())
                .push_bind(item.lane.as_str())
                .push_bind(item.team.as_str())
                .push_bind(item.channel.as_str())
                .push_bind(item.method.as_str())
                .push_bind(args.as_str())
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

/// An `alerts` row selected as `id, first_event_id, count, last_seen_ms`.
fn open_alert_row(r: &SqliteRow) -> Result<OpenAlert, sqlx::Error> {
    Ok(OpenAlert {
        id: r.try_get(0)?,
        first_event_id: r.try_get(1)?,
        count: r.try_get(2)?,
        last_seen_ms: r.try_get(3)?,
    })
}

struct SqliteIngest<'c> {
    conn: &'c mut SqliteConnection,
}

#[async_trait::async_trait]
impl IngestTx for SqliteIngest<'_> {
    async fn open_alert(&mut self, key: &str) -> Result<Option<OpenAlert>, StoreError> {
        let row = sqlx::query(
            "SELECT id, first_event_id, count, last_seen_ms FROM alerts WHERE dedup_key = ? AND closed_at_ms IS NULL",
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
        sqlx::query("UPDATE alerts SET closed_at_ms = ? WHERE id = ?")
            .bind(at_ms)
            .bind(alert_id)
            .execute(&mut *self.conn)
            .await?;
        // A closed alert inhibits nothing; dropping its keys keeps the lookup short.
        sqlx::query("DELETE FROM inhibit_keys WHERE alert_id = ?")
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
        sqlx::query("UPDATE alerts SET count = ?, last_seen_ms = ? WHERE id = ?")
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
             VALUES (?, ?, 1, ?, ?) RETURNING id",
        )
        .bind(key)
        .bind(first_event_id)
        .bind(at_ms)
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
             WHERE p.alert_id = ? AND p.lane = ?",
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
        sqlx::query("INSERT INTO alert_posts (alert_id, lane, item_id) VALUES (?, ?, ?)")
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
             WHERE dedup_key = ? AND closed_at_ms IS NOT NULL AND closed_at_ms >= ?
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
            "UPDATE alerts SET closed_at_ms = NULL, count = ?, last_seen_ms = ? WHERE id = ?",
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
             WHERE p.alert_id = ? AND p.lane = ? AND o.state = 'pending'",
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
        sqlx::query("UPDATE alert_posts SET refresh_item_id = ? WHERE alert_id = ? AND lane = ?")
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
            "SELECT id FROM alerts WHERE first_event_id = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(root)
        .fetch_optional(&mut *self.conn)
        .await?)
    }

    async fn insert_event(&mut self, row: &EventRow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (id, received_at_ms, source, body, fate) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(row.id)
        .bind(row.received_at_ms)
        .bind(row.source)
        .bind(&row.body)
        .bind(&row.fate)
        .execute(&mut *self.conn)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("event {} already exists", row.id))
            }
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
        let group_id: i64 = sqlx::query_scalar(grp::JOIN_GROUP)
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
        sqlx::query(grp::ADD_MEMBER)
            .bind(group_id)
            .bind(alert_id)
            .execute(&mut *self.conn)
            .await?;
        sqlx::query(grp::COUNT_ROUTE_EVENT)
            .bind(&g.rule)
            .bind(now_ms - now_ms.rem_euclid(1000))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn group_of(&mut self, group_id: i64) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(grp::GROUP_OF)
            .bind(group_id)
            .fetch_optional(&mut *self.conn)
            .await?)
    }

    async fn group_post(
        &mut self,
        group_id: i64,
    ) -> Result<Option<(i64, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(grp::GROUP_POST)
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
        sqlx::query(grp::FINISH_FLUSH)
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
             WHERE k.key = ? AND a.closed_at_ms IS NULL AND a.last_seen_ms >= ? - k.window_ms
               AND a.dedup_key IS NOT ? AND NOT (k.both_sides AND ?))",
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
        for key in keys {
            sqlx::query(
                "INSERT INTO inhibit_keys (key, alert_id, both_sides, window_ms) VALUES (?, ?, ?, ?)
                 ON CONFLICT (key, alert_id) DO NOTHING",
            )
            .bind(&key.key)
            .bind(alert_id)
            .bind(key.both_sides)
            .bind(window_ms)
            .execute(&mut *self.conn)
            .await?;
        }
        Ok(())
    }
}

/// Recomputes a lane's head after items left (or re-entered) the pending state.
async fn refresh_lanes(
    conn: &mut SqliteConnection,
    lanes: &BTreeSet<String>,
) -> Result<(), StoreError> {
    for lane in lanes {
        sqlx::query(
            "INSERT INTO lanes (lane, head_id)
             VALUES (?1, (SELECT MIN(id) FROM outbox WHERE lane = ?1 AND state = 'pending'))
             ON CONFLICT (lane) DO UPDATE SET head_id = excluded.head_id",
        )
        .bind(lane)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn parse_json(what: &str, s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn delivery_state(r: &SqliteRow) -> Result<DeliveryState, StoreError> {
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

/// Why an item could not be marked: it does not exist, or it is no longer pending.
async fn not_pending(conn: &mut SqliteConnection, item_id: i64) -> StoreError {
    match sqlx::query_scalar::<_, String>("SELECT state FROM outbox WHERE id = ?")
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

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn ingest(&self, batch: Vec<NewEvent>) -> Result<Ingested, StoreError> {
        self.ingester.ingest(batch).await
    }

    async fn event(&self, id: &str) -> Result<Option<EventStatus>, StoreError> {
        let mut conn = self.read.acquire().await?;
        let Some(ev) =
            sqlx::query("SELECT id, received_at_ms, source, body, fate FROM events WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT id, channel, method, state, attempts, last_error, sent_channel, sent_ts, sent_at_ms,
                    dead_reason, dead_at_ms
             FROM outbox WHERE event_id = ? ORDER BY id",
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
        )> = sqlx::query_as(grp::GROUPS_OF_EVENT)
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
        let mut tx = self.begin_write().await?;
        let lanes = sqlx::query_scalar(
            "UPDATE lanes SET owner = ?1, lease_until_ms = ?2 + ?3
             WHERE lane IN (
                 SELECT l.lane FROM lanes l
                 JOIN outbox h ON h.id = l.head_id
                 LEFT JOIN outbox r ON r.id = h.ref_item_id
                 WHERE (l.owner IS NULL OR l.lease_until_ms <= ?2)
                   AND h.next_attempt_at_ms <= ?2
                   AND (h.ref_item_id IS NULL OR r.state = 'sent')
                 ORDER BY h.next_attempt_at_ms, l.lane
                 LIMIT ?4)
             RETURNING lane",
        )
        .bind(owner)
        .bind(now_ms)
        .bind(lease_ms)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(lanes)
    }

    async fn renew_leases(
        &self,
        owner: &str,
        lanes: &[String],
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut held = Vec::new();
        for lane in lanes {
            let n = sqlx::query("UPDATE lanes SET lease_until_ms = ? WHERE lane = ? AND owner = ?")
                .bind(now_ms + lease_ms)
                .bind(lane)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                held.push(lane.clone());
            }
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn release_lane(&self, owner: &str, lane: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE lanes SET owner = NULL, lease_until_ms = 0 WHERE lane = ? AND owner = ?",
        )
        .bind(lane)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lane_items(&self, lane: &str, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, o.event_id, o.lane, o.team, o.channel, o.method, o.args, o.attempts, o.created_at_ms,
                    o.next_attempt_at_ms, o.ref_item_id, r.state AS ref_state, r.sent_channel AS ref_channel,
                    r.sent_ts AS ref_ts
             FROM outbox o LEFT JOIN outbox r ON r.id = o.ref_item_id
             WHERE o.lane = ? AND o.state = 'pending' ORDER BY o.id LIMIT ?",
        )
        .bind(lane)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
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
        let mut tx = self.begin_write().await?;
        let lane: Option<String> = sqlx::query_scalar(
            "UPDATE outbox SET state = 'sent', sent_channel = ?, sent_ts = ?, sent_at_ms = ?
             WHERE id = ? AND state = 'pending' RETURNING lane",
        )
        .bind(channel)
        .bind(ts)
        .bind(now_ms)
        .bind(item_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(lane) = lane else {
            return Err(not_pending(&mut tx, item_id).await);
        };
        refresh_lanes(&mut tx, &BTreeSet::from([lane])).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_retry(
        &self,
        item_id: i64,
        next_attempt_at_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_ms = ?, last_error = ?
             WHERE id = ? AND state = 'pending'",
        )
        .bind(next_attempt_at_ms)
        .bind(error)
        .bind(item_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_pending(&mut tx, item_id).await);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_dead(&self, item_id: i64, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let lane: Option<String> = sqlx::query_scalar(
            "UPDATE outbox SET state = 'dead', dead_reason = ?, dead_at_ms = ?
             WHERE id = ? AND state = 'pending' RETURNING lane",
        )
        .bind(reason)
        .bind(now_ms)
        .bind(item_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(lane) = lane else {
            return Err(not_pending(&mut tx, item_id).await);
        };
        let mut lanes = BTreeSet::from([lane]);
        let followers: Vec<String> = sqlx::query_scalar(
            "UPDATE outbox SET state = 'dead', dead_reason = ?, dead_at_ms = ?
             WHERE ref_item_id = ? AND state = 'pending' RETURNING lane",
        )
        .bind(ref_dead_reason(item_id, reason))
        .bind(now_ms)
        .bind(item_id)
        .fetch_all(&mut *tx)
        .await?;
        lanes.extend(followers);
        refresh_lanes(&mut tx, &lanes).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, channel, method, dead_reason, attempts, dead_at_ms FROM outbox
             WHERE state = 'dead' ORDER BY dead_at_ms DESC, id DESC LIMIT ?",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
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
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = match which {
            Replay::All => {
                sqlx::query_scalar("SELECT id FROM outbox WHERE state = 'dead'")
                    .fetch_all(&mut *tx)
                    .await?
            }
            Replay::Item(id) => {
                let row = sqlx::query(
                    "SELECT o.state, o.ref_item_id, r.state AS ref_state FROM outbox o
                     LEFT JOIN outbox r ON r.id = o.ref_item_id WHERE o.id = ?",
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
                let mut ids = vec![id];
                if let (Some(post), Some("dead")) = (
                    row.try_get::<Option<i64>, _>("ref_item_id")?,
                    row.try_get::<Option<String>, _>("ref_state")?.as_deref(),
                ) {
                    ids.push(post);
                }
                ids
            }
        };
        let mut lanes = BTreeSet::new();
        for id in &ids {
            let lane: Option<String> = sqlx::query_scalar(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at_ms = ?,
                        dead_reason = NULL, dead_at_ms = NULL
                 WHERE id = ? AND state = 'dead' RETURNING lane",
            )
            .bind(now_ms)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            lanes.extend(lane);
        }
        refresh_lanes(&mut tx, &lanes).await?;
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    async fn outbox_stats(&self, now_ms: i64) -> Result<OutboxStats, StoreError> {
        // The oldest pending item is always some lane's head (ids grow with time within a lane).
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending') AS pending,
                    (SELECT MIN(h.created_at_ms) FROM lanes l JOIN outbox h ON h.id = l.head_id) AS oldest,
                    (SELECT COUNT(*) FROM outbox WHERE state = 'dead') AS dead,
                    (SELECT COUNT(*) FROM lanes WHERE owner IS NOT NULL AND lease_until_ms > ?) AS leased",
        )
        .bind(now_ms)
        .fetch_one(&self.read)
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
        let mut tx = self.begin_write().await?;
        let mut removed = 0;
        for sql in grp::PRUNE_GROUPS {
            sqlx::query(sql)
                .bind(older_than_ms)
                .execute(&mut *tx)
                .await?;
        }
        for sql in [
            "DELETE FROM alert_posts WHERE alert_id IN
                 (SELECT id FROM alerts WHERE closed_at_ms IS NOT NULL AND closed_at_ms < ?1)",
            "DELETE FROM alerts WHERE closed_at_ms IS NOT NULL AND closed_at_ms < ?1",
            "DELETE FROM outbox WHERE state = 'sent' AND sent_at_ms < ?1
                 AND id NOT IN (SELECT item_id FROM alert_posts)
                 AND id NOT IN (SELECT post_item_id FROM alert_groups WHERE post_item_id IS NOT NULL)
                 AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.ref_item_id = outbox.id AND f.state <> 'sent')",
            "DELETE FROM events WHERE received_at_ms < ?1
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = events.id)
                 AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.first_event_id = events.id AND a.closed_at_ms IS NULL)",
        ] {
            let n = sqlx::query(sql).bind(older_than_ms).execute(&mut *tx).await?.rows_affected();
            // alert_posts rows are bookkeeping, not something the operator retained.
            if !sql.starts_with("DELETE FROM alert_posts") {
                removed += n;
            }
        }
        // Bookkeeping too: the inhibition keys of pruned alerts (closing an alert already drops its keys).
        sqlx::query("DELETE FROM inhibit_keys WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = inhibit_keys.alert_id)")
            .execute(&mut *tx)
            .await?;
        // After the events: an action goes only once the event it is recorded on is gone.
        let silences =
            sqlx::query("DELETE FROM silences WHERE COALESCE(expired_at_ms, ends_at_ms) < ?")
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
            "DELETE FROM alert_actions WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = alert_actions.event_id)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM lanes WHERE head_id IS NULL AND owner IS NULL")
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM once_keys WHERE expires_at_ms < ?1",
            "DELETE FROM rate_limits WHERE tat_ms < ?1 - ?2 AND blocked_until_ms < ?1 - ?2",
            "DELETE FROM leaders WHERE until_ms < ?1",
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
        // One statement: the SET expressions all see the row as it was, so the decision and the new tat agree.
        let (tat, blocked, allowed): (i64, i64, bool) = sqlx::query_as(
            "INSERT INTO rate_limits (key, tat_ms, blocked_until_ms, last_allowed) VALUES (?1, ?2 + ?3, 0, 1)
             ON CONFLICT (key) DO UPDATE SET
                 last_allowed = (rate_limits.blocked_until_ms <= ?2 AND rate_limits.tat_ms - ?2 <= ?4),
                 tat_ms = CASE WHEN rate_limits.blocked_until_ms <= ?2 AND rate_limits.tat_ms - ?2 <= ?4
                               THEN MAX(rate_limits.tat_ms, ?2) + ?3 ELSE rate_limits.tat_ms END
             RETURNING tat_ms, blocked_until_ms, last_allowed",
        )
        .bind(key)
        .bind(now_ms)
        .bind(p.interval_ms)
        .bind(p.tolerance_ms)
        .fetch_one(&self.write)
        .await?;
        Ok(p.decision(allowed, tat, blocked))
    }

    async fn block_rate(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rate_limits (key, tat_ms, blocked_until_ms, last_allowed) VALUES (?1, 0, ?2, 0)
             ON CONFLICT (key) DO UPDATE SET
                 blocked_until_ms = MAX(rate_limits.blocked_until_ms, excluded.blocked_until_ms)",
        )
        .bind(key)
        .bind(until_ms)
        .execute(&self.write)
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
            "INSERT INTO leaders (role, owner, until_ms) VALUES (?1, ?2, ?3 + ?4)
             ON CONFLICT (role) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
                 WHERE leaders.owner = excluded.owner OR leaders.until_ms <= ?3
             RETURNING owner",
        )
        .bind(role)
        .bind(owner)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.is_some())
    }

    async fn resign(&self, role: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leaders WHERE role = ?1 AND owner = ?2")
            .bind(role)
            .bind(owner)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn first_time(&self, key: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        let row: Option<String> = sqlx::query_scalar(
            "INSERT INTO once_keys (key, expires_at_ms) VALUES (?1, ?2 + ?3)
             ON CONFLICT (key) DO UPDATE SET expires_at_ms = excluded.expires_at_ms
                 WHERE once_keys.expires_at_ms <= ?2
             RETURNING key",
        )
        .bind(key)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.is_some())
    }

    async fn record_audit(&self, a: NewAudit) -> Result<AuditRecord, StoreError> {
        // The single write connection plus BEGIN IMMEDIATE already serialise appends; the head row is what the
        // next append chains onto.
        let mut tx = self.begin_write().await?;
        let (last_id, last_hash): (i64, String) =
            sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE one = 1")
                .fetch_one(&mut *tx)
                .await?;
        let rec = audit::next_record(last_id, &last_hash, a)?;
        sqlx::query(
            "INSERT INTO audit_log (id, at_ms, actor, team, action, target, result, detail, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        sqlx::query("UPDATE audit_head SET last_id = ?, last_hash = ? WHERE one = 1")
            .bind(rec.id)
            .bind(&rec.hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn audit(&self, since_id: i64, max: usize) -> Result<Vec<AuditRecord>, StoreError> {
        audit_page(&self.read, since_id, i64::MAX, max).await
    }

    async fn verify_audit(&self) -> Result<Option<i64>, StoreError> {
        // The head first: records appended while we walk have larger ids and are simply not looked at.
        let (head_id, head_hash): (i64, String) =
            sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE one = 1")
                .fetch_one(&self.read)
                .await?;
        let mut check = audit::ChainCheck::new();
        loop {
            let page =
                audit_page(&self.read, check.next_id() - 1, head_id, audit::VERIFY_PAGE).await?;
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
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO silences (id, matchers, starts_at_ms, ends_at_ms, author, comment, created_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
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
            "SELECT id, matchers, starts_at_ms, ends_at_ms, author, comment, created_at_ms, expired_at_ms
             FROM silences WHERE ?1 OR (expired_at_ms IS NULL AND ends_at_ms > ?2)
             ORDER BY created_at_ms, id",
        )
        .bind(include_expired)
        .bind(now_ms)
        .fetch_all(&self.read)
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
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE silences SET expired_at_ms = ?2
             WHERE id = ?1 AND expired_at_ms IS NULL AND ends_at_ms > ?2",
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
                .fetch_one(&self.read)
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
        // The single write connection and BEGIN IMMEDIATE serialise racing clicks; the primary key decides.
        let mut tx = self.begin_write().await?;
        let Some(root) = root_of(&mut tx, event_id).await? else {
            return Err(StoreError::Conflict(format!(
                "event {event_id} does not exist"
            )));
        };
        let inserted = sqlx::query(
            "INSERT INTO alert_actions (event_id, action, actor, at_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (event_id, action) DO NOTHING",
        )
        .bind(&root)
        .bind(action)
        .bind(actor)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if inserted > 0 {
            AckOutcome::Recorded
        } else {
            let (actor, at_ms): (String, i64) = sqlx::query_as(
                "SELECT actor, at_ms FROM alert_actions WHERE event_id = ? AND action = ?",
            )
            .bind(&root)
            .bind(action)
            .fetch_one(&mut *tx)
            .await?;
            AckOutcome::AlreadyBy { actor, at_ms }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn alert_actions(
        &self,
        event_id: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut conn = self.read.acquire().await?;
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
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT a.id, a.first_event_id, a.count, a.first_seen_ms, a.last_seen_ms, a.closed_at_ms,
                    e.body AS body, p.lane, p.refresh_item_id
             FROM outbox o
             JOIN alert_posts p ON p.item_id = o.ref_item_id
             JOIN alerts a ON a.id = p.alert_id
             JOIN events e ON e.id = a.first_event_id
             WHERE o.id = ?",
        )
        .bind(item_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let alert_id: i64 = r.try_get(0)?;
        let lane: String = r.try_get("lane")?;
        if r.try_get::<Option<i64>, _>("refresh_item_id")? == Some(item_id) {
            sqlx::query(
                "UPDATE alert_posts SET refresh_item_id = NULL WHERE alert_id = ? AND lane = ?",
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
        let mut conn = self.read.acquire().await?;
        let rows: Vec<GroupRow> = sqlx::query_as(&grp::due_groups_sql())
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut g = group_state(row)?;
            let (firing, total): (i64, i64) = sqlx::query_as(grp::GROUP_COUNTS)
                .bind(g.id)
                .fetch_one(&mut *conn)
                .await?;
            (g.firing, g.resolved) = (firing, total - firing);
            let members: Vec<(String, String, i64, i64, i64, Option<i64>)> =
                sqlx::query_as(grp::GROUP_MEMBERS)
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
        let mut tx = self.begin_write().await?;
        let mut itx = SqliteIngest { conn: &mut tx };
        let Some((first_event_id, _)) = itx.group_of(f.group_id).await? else {
            return Err(StoreError::Conflict(format!(
                "group {} is not stored",
                f.group_id
            )));
        };
        let mut touched = TouchedLanes::new();
        grp::flush_in(&mut itx, &f, &first_event_id, now_ms, &mut touched).await?;
        set_lane_heads(&mut tx, &touched).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_groups(&self, first_event_id: &str, now_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(grp::TOUCH_GROUPS)
            .bind(first_event_id)
            .bind(now_ms)
            .execute(&self.write)
            .await?
            .rows_affected())
    }

    async fn absorb_groups(&self, rule: &str, now_ms: i64) -> Result<u64, StoreError> {
        let absorbed = sqlx::query(grp::ABSORB_GROUPS)
            .bind(rule)
            .bind(now_ms)
            .execute(&self.write)
            .await?
            .rows_affected();
        sqlx::query(grp::REFRESH_DIGESTED_CARDS)
            .bind(rule)
            .bind(now_ms)
            .execute(&self.write)
            .await?;
        Ok(absorbed)
    }

    async fn route_rate(&self, rule: &str, since_ms: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(grp::ROUTE_RATE)
            .bind(rule)
            .bind(since_ms)
            .fetch_one(&self.read)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn route_alerts(&self, rule: &str, since_ms: i64) -> Result<Vec<RouteAlert>, StoreError> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(grp::ROUTE_ALERTS)
            .bind(rule)
            .bind(since_ms)
            .fetch_all(&self.read)
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
        let mut conn = self.read.acquire().await?;
        let Some(root) = root_of(&mut conn, event_id).await? else {
            return Ok(Vec::new());
        };
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT sent_channel, sent_ts FROM outbox
             WHERE event_id = ? AND method = 'chat.postMessage' AND ref_post = 0 AND state = 'sent'
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
             WHERE sent_channel = ? AND sent_ts = ? AND state = 'sent' AND method = 'chat.postMessage'
                   AND ref_post = 0
             ORDER BY id LIMIT 1",
        )
        .bind(channel)
        .bind(ts)
        .fetch_optional(&self.read)
        .await?;
        Ok(found.flatten())
    }
}

async fn bump_silences_version(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE silences_version SET version = version + 1 WHERE one = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The event standing for the alert `event_id` belongs to (see [`alert_root`]), or `None` for an unknown event.
async fn root_of(
    conn: &mut SqliteConnection,
    event_id: &str,
) -> Result<Option<String>, StoreError> {
    let fate: Option<String> = sqlx::query_scalar("SELECT fate FROM events WHERE id = ?")
        .bind(event_id)
        .fetch_optional(&mut *conn)
        .await?;
    fate.map(|f| Ok(alert_root(event_id, &parse_fate(&f)?).to_string()))
        .transpose()
}

async fn actions_of(
    conn: &mut SqliteConnection,
    root: &str,
) -> Result<Vec<AlertAction>, StoreError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT action, actor, at_ms FROM alert_actions WHERE event_id = ? ORDER BY at_ms, action",
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
    pool: &SqlitePool,
    since_id: i64,
    through_id: i64,
    max: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at_ms, actor, team, action, target, result, detail, prev_hash, hash FROM audit_log
         WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
    )
    .bind(since_id)
    .bind(through_id)
    .bind(i64::try_from(max).unwrap_or(i64::MAX))
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
