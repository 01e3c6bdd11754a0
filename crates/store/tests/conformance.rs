//! One conformance story for every `Store` backend: each test below runs on SQLite always and on PostgreSQL when
//! `SLUICE_TEST_POSTGRES_URL` is set (each PostgreSQL test in a fresh database, dropped afterwards).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use sluice_store::*;

const T0: i64 = 1_700_000_000_000;
const LEASE: i64 = 30_000;
const WINDOW: i64 = 60_000;

// ---------------------------------------------------------------------------------------------------------------
// Harness

/// The PostgreSQL server URL and the test databases created on it (dropped at the end of the test).
type PgServer = std::sync::Mutex<(String, Vec<String>)>;

#[derive(Clone)]
struct Ctx {
    url: String,
    store: Arc<dyn Store>,
    backend: &'static str,
    /// SQLite: the temp dir holding the files. PostgreSQL: the server URL and the databases to drop.
    dir: Option<Arc<tempfile::TempDir>>,
    pg: Option<Arc<PgServer>>,
}

impl Ctx {
    async fn sqlite() -> Ctx {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let url = format!("sqlite://{}", dir.path().join("sluice.db").display());
        let store = open(&url, &StoreOptions::default())
            .await
            .expect("open sqlite");
        Ctx {
            url,
            store,
            backend: "sqlite",
            dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres() -> Option<Ctx> {
        let Ok(server) = std::env::var("SLUICE_TEST_POSTGRES_URL") else {
            {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED postgres conformance: SLUICE_TEST_POSTGRES_URL not set"
                );
            }
            return None;
        };
        let pg = Arc::new(std::sync::Mutex::new((server, Vec::new())));
        let url = create_pg_database(&pg).await;
        let store = open(&url, &StoreOptions::default())
            .await
            .expect("open postgres");
        Some(Ctx {
            url,
            store,
            backend: "postgres",
            dir: None,
            pg: Some(pg),
        })
    }

    /// A URL of an empty database of the same backend.
    async fn fresh_url(&self) -> String {
        match (&self.dir, &self.pg) {
            (Some(dir), _) => {
                format!(
                    "sqlite://{}",
                    dir.path()
                        .join(format!("fresh-{}.db", rand::random::<u32>()))
                        .display()
                )
            }
            (_, Some(pg)) => create_pg_database(pg).await,
            _ => unreachable!("a context is sqlite or postgres"),
        }
    }

    /// Runs raw SQL against the test database, behind the store's back (to fake a newer schema).
    async fn exec(&self, sql: &str) {
        self.exec_on(&self.url, sql).await
    }

    /// Runs raw SQL against the database at `url` (of this context's backend).
    async fn exec_on(&self, url: &str, sql: &str) {
        if self.backend == "sqlite" {
            let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
            sqlx::raw_sql(sql).execute(&pool).await.expect("exec");
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            sqlx::raw_sql(sql).execute(&pool).await.expect("exec");
            pool.close().await;
        }
    }

    /// Counts rows with raw SQL (`SELECT COUNT(*) …`), behind the store's back.
    async fn count(&self, sql: &str) -> i64 {
        if self.backend == "sqlite" {
            let pool = sqlx::SqlitePool::connect(&self.url).await.expect("connect");
            let n = sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("count");
            pool.close().await;
            n
        } else {
            let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
            let n = sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("count");
            pool.close().await;
            n
        }
    }

    /// Another handle on the same database, as a second replica would have (its own pool, its own writer).
    async fn replica(&self) -> Arc<dyn Store> {
        open(&self.url, &StoreOptions::default())
            .await
            .expect("open replica")
    }

    async fn cleanup(&self) {
        if let Some(pg) = &self.pg {
            let (server, dbs) = pg.lock().expect("lock").clone();
            let pool = sqlx::PgPool::connect(&server)
                .await
                .expect("connect to server");
            for db in dbs {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(&pool)
                    .await;
            }
            pool.close().await;
        }
    }
}

async fn create_pg_database(pg: &PgServer) -> String {
    let server = pg.lock().expect("lock").0.clone();
    let name = format!("sluice_test_{:016x}", rand::random::<u64>());
    let pool = sqlx::PgPool::connect(&server)
        .await
        .expect("connect to SLUICE_TEST_POSTGRES_URL");
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    pg.lock().expect("lock").1.push(name.clone());
    let mut url = url::Url::parse(&server).expect("postgres URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn run<F, Fut>(ctx: Ctx, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(test(ctx.clone())).await;
    ctx.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Ctx::sqlite().await, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(ctx) = super::Ctx::postgres().await else { return };
                    super::run(ctx, super::$name).await;
                }
            )*
        }
    };
}

conformance!(
    ingest_then_event_shows_fate_and_deliveries,
    batch_is_all_or_nothing,
    fourteen_duplicates_make_one_alert_with_count_14,
    duplicates_within_one_batch_merge,
    window_expiry_opens_a_new_alert,
    resolve_links_update_to_the_post_in_the_same_lane,
    two_owners_never_hold_one_lane,
    expired_lease_is_taken_over_and_release_frees_a_lane,
    a_gone_holders_leases_end_at_once_and_a_started_post_reads_back_as_maybe_sent,
    concurrent_claims_never_overlap,
    lane_items_come_out_in_ingest_order,
    mark_sent_retry_and_dead_are_visible_in_event,
    marks_on_items_that_are_not_pending_conflict,
    dead_post_takes_its_updates_with_it,
    dead_letters_and_replay_one_and_all,
    outbox_stats_count_what_operators_graph,
    prune_keeps_what_is_still_needed,
    schema_mismatch_is_refused_with_the_fix,
    a_fresh_open_reads_what_an_earlier_open_wrote,
    concurrent_ingest_loses_nothing,
    a_bad_batch_does_not_fail_its_neighbours,
    rate_limit_allows_a_burst_then_one_per_interval,
    block_rate_blocks_only_its_key_and_never_shortens,
    three_replicas_together_never_exceed_the_rate,
    leader_lease_fails_over_after_ttl,
    one_of_many_racing_owners_leads,
    first_time_is_true_exactly_once_per_key,
    audit_chain_links_records_and_pages,
    concurrent_audit_appends_never_fork_the_chain,
    audit_tampering_is_found_at_the_tampered_id,
    prune_removes_expired_coordination_rows_but_never_audit,
    a_version_1_database_is_refused_then_upgraded_in_place,
    a_version_2_database_is_upgraded_by_0003_with_its_data,
    a_database_migrated_by_the_old_runner_opens_and_migrates_on,
    silences_list_pending_active_and_expired_and_bump_the_version,
    silences_that_mute_everything_or_nothing_are_refused,
    prune_removes_old_silences_and_actions_of_pruned_events,
    suppressed_events_keep_their_fate_and_post_nothing,
    one_click_wins_across_replicas,
    alert_actions_are_shared_by_the_alert_and_its_duplicates,
    message_of_finds_the_cards_of_an_event_and_of_its_alert,
    duplicates_coalesce_into_one_refresh_that_reads_the_alert_at_send_time,
    a_resolve_refreshes_and_replies_and_a_refire_reopens_the_alert,
    event_of_message_finds_the_event_a_card_belongs_to,
    a_follow_up_refreshes_the_alert_card_under_the_coalescing_rule,
    groups_come_due_after_group_wait_then_group_interval,
    a_change_racing_a_flush_keeps_the_group_due,
    a_resolved_group_goes_quiet_and_starts_over_with_group_wait,
    route_rates_and_alerts_feed_the_storm_guard,
    touching_a_group_makes_it_due_now,
    alerts_joining_a_group_in_one_commit_count_as_if_one_by_one,
    the_end_of_a_storm_absorbs_uncarded_groups_and_refreshes_carded_ones,
    prune_keeps_firing_groups_and_their_cards,
    inhibit_mutes_targets_while_the_source_fires,
    inhibit_releases_when_the_source_resolves,
    inhibit_releases_when_the_source_goes_quiet_beyond_its_window,
    inhibit_an_alert_matching_both_sides_does_not_inhibit_itself,
    inhibit_a_batch_with_the_source_then_the_target_mutes_the_target,
    inhibit_keys_go_with_their_alert_and_prune,
    regression_alertmanager_resends_of_the_same_alert_are_not_new_occurrences,
    regression_a_failed_deployment_card_shows_its_final_state,
    an_idempotency_key_makes_one_approval_and_one_card,
    two_commits_on_one_version_make_one_decision,
    due_approvals_are_the_pending_ones_past_their_expiry,
    prune_keeps_the_card_of_a_pending_approval,
    one_run_of_an_action_on_a_target_runs_at_a_time_and_ends_once,
    a_replayed_run_runs_again_and_a_target_shows_its_latest_runs,
    console_views_show_rates_lanes_leases_events_open_alerts_and_the_audit_tail,
    console_sessions_are_shared_expire_and_end_at_logout,
    console_shows_inhibitions_in_force_and_calls_per_channel_and_method,
    console_lists_incidents_open_first_schedule_runs_and_step_runs,
    login_failures_are_counted_across_replicas_and_cleared_per_address,
    a_scheduled_minute_is_claimed_once_across_replicas,
    open_alerts_are_found_by_key_id_or_event_and_periods_are_counted,
    declaring_twice_makes_one_incident_across_replicas,
    incident_commits_are_ordered_versioned_and_link_to_the_card,
    an_incident_whose_room_was_made_but_not_recorded_is_found_stalled,
);

// ---------------------------------------------------------------------------------------------------------------
// Builders

fn item(channel: &str, method: &str, seq: u32) -> NewOutboxItem {
    NewOutboxItem {
        lane: format!("T1:{channel}"),
        team: "T1".into(),
        channel: channel.into(),
        method: method.into(),
        args: json!({ "channel": channel, "seq": seq }),
        ref_post: false,
    }
}

fn update(channel: &str) -> NewOutboxItem {
    NewOutboxItem {
        ref_post: true,
        ..item(channel, "chat.update", 0)
    }
}

fn event(id: &str, at: i64, outbox: Vec<NewOutboxItem>) -> NewEvent {
    NewEvent {
        id: id.into(),
        received_at_ms: at,
        source: "api".into(),
        body: EventBody::of(&json!({ "title": format!("event {id}") })),
        fate: Fate::Queued {
            rules: vec!["default".into()],
        },
        outbox,
        dedup: None,
        inhibit: Inhibit::default(),
        follow_up: None,
    }
}

/// An alert event: posts to `channels` when new; when a duplicate or a resolve, enqueues an update per channel.
fn alert(id: &str, at: i64, key: &str, resolves: bool, channels: &[&str]) -> NewEvent {
    NewEvent {
        dedup: Some(Dedup {
            key: key.into(),
            window_ms: WINDOW,
            resolves,
            on_open: channels.iter().map(|c| update(c)).collect(),
            refresh: vec![],
            reopen_window_ms: 0,
            on_reopen: vec![],
            groups: vec![],
            occurred_at_ms: None,
        }),
        ..event(
            id,
            at,
            channels
                .iter()
                .map(|c| item(c, "chat.postMessage", 0))
                .collect(),
        )
    }
}

async fn status(store: &Arc<dyn Store>, id: &str) -> EventStatus {
    store
        .event(id)
        .await
        .expect("event()")
        .unwrap_or_else(|| panic!("event {id} not found"))
}

async fn head(store: &Arc<dyn Store>, lane: &str) -> OutboxItem {
    store
        .lane_items(lane, 1)
        .await
        .expect("lane_items")
        .into_iter()
        .next()
        .expect("lane has a pending item")
}

// ---------------------------------------------------------------------------------------------------------------
// The story

async fn ingest_then_event_shows_fate_and_deliveries(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(s.backend(), ctx.backend);
    s.ping().await.expect("ping");
    s.ingest(vec![
        event(
            "e1",
            T0,
            vec![
                item("C1", "chat.postMessage", 1),
                item("C2", "chat.postMessage", 2),
            ],
        ),
        NewEvent {
            fate: Fate::Dropped {
                rule: "quiet-hours".into(),
            },
            ..event("e2", T0, vec![])
        },
        NewEvent {
            fate: Fate::Unrouted,
            ..event("e3", T0, vec![])
        },
    ])
    .await
    .expect("ingest");

    let e1 = status(s, "e1").await;
    assert_eq!(
        e1.fate,
        Fate::Queued {
            rules: vec!["default".into()]
        }
    );
    assert_eq!(e1.received_at_ms, T0);
    assert_eq!(e1.source, "api");
    assert_eq!(e1.body, json!({ "title": "event e1" }));
    let chans: Vec<_> = e1
        .deliveries
        .iter()
        .map(|d| (d.channel.as_str(), &d.state, d.attempts))
        .collect();
    assert_eq!(
        chans,
        [
            ("C1", &DeliveryState::Pending, 0),
            ("C2", &DeliveryState::Pending, 0)
        ]
    );
    assert_eq!(
        status(s, "e2").await.fate,
        Fate::Dropped {
            rule: "quiet-hours".into()
        }
    );
    assert_eq!(status(s, "e3").await.fate, Fate::Unrouted);
    assert!(status(s, "e2").await.deliveries.is_empty());
    assert_eq!(s.event("nope").await.expect("event()"), None);

    let items = s.lane_items("T1:C1", 10).await.expect("lane_items");
    assert_eq!(items.len(), 1);
    let it = &items[0];
    assert_eq!(
        (it.event_id.as_deref(), it.team.as_str(), it.method.as_str()),
        (Some("e1"), "T1", "chat.postMessage")
    );
    assert_eq!(it.args, json!({ "channel": "C1", "seq": 1 }));
    assert_eq!(
        (it.created_at_ms, it.next_attempt_at_ms, it.attempts),
        (T0, T0, 0)
    );
    assert_eq!((&it.ref_sent, it.ref_pending), (&None, false));
}

async fn batch_is_all_or_nothing(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![event(
        "dup",
        T0,
        vec![item("C1", "chat.postMessage", 1)],
    )])
    .await
    .expect("ingest");
    let err = s
        .ingest(vec![
            event("fresh", T0, vec![item("C1", "chat.postMessage", 2)]),
            event("dup", T0, vec![]),
        ])
        .await
        .expect_err("a batch with a duplicate id must fail");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        s.event("fresh").await.expect("event()"),
        None,
        "the good half of a failed batch must not land"
    );
    assert_eq!(
        s.lane_items("T1:C1", 10).await.expect("lane_items").len(),
        1
    );
    // The store is still usable afterwards.
    s.ingest(vec![event("fresh", T0, vec![])])
        .await
        .expect("ingest after failure");
}

async fn fourteen_duplicates_make_one_alert_with_count_14(ctx: Ctx) {
    let s = &ctx.store;
    for i in 0..14 {
        s.ingest(vec![alert(
            &format!("a{i}"),
            T0 + i * 1000,
            "disk-full@db1",
            false,
            &["C1"],
        )])
        .await
        .expect("ingest");
    }
    assert_eq!(
        status(s, "a0").await.fate,
        Fate::Queued {
            rules: vec!["default".into()]
        }
    );
    for i in 1..14u32 {
        let st = status(s, &format!("a{i}")).await;
        assert_eq!(
            st.fate,
            Fate::Merged {
                into: "a0".into(),
                count: i + 1
            }
        );
        // Each duplicate enqueued its on_open update (and not its own post).
        assert_eq!(
            st.deliveries
                .iter()
                .map(|d| d.method.as_str())
                .collect::<Vec<_>>(),
            ["chat.update"]
        );
    }
    let items = s.lane_items("T1:C1", 100).await.expect("lane_items");
    assert_eq!(
        items
            .iter()
            .filter(|i| i.method == "chat.postMessage")
            .count(),
        1,
        "one post for one alert"
    );
    assert_eq!(items.len(), 14);
    let post_id = items[0].id;
    assert!(items[1..]
        .iter()
        .all(|i| i.ref_pending && i.ref_sent.is_none()));

    s.mark_sent(post_id, "C1", "1700000000.000100", T0 + 20_000)
        .await
        .expect("mark_sent");
    let items = s.lane_items("T1:C1", 100).await.expect("lane_items");
    assert_eq!(items.len(), 13);
    assert!(items.iter().all(|i| !i.ref_pending
        && i.ref_sent
            == Some(RefSent {
                channel: "C1".into(),
                ts: "1700000000.000100".into()
            })));
}

async fn duplicates_within_one_batch_merge(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(
        (0..3)
            .map(|i| alert(&format!("b{i}"), T0 + i, "k", false, &["C1"]))
            .collect(),
    )
    .await
    .expect("ingest");
    assert_eq!(
        status(s, "b1").await.fate,
        Fate::Merged {
            into: "b0".into(),
            count: 2
        }
    );
    assert_eq!(
        status(s, "b2").await.fate,
        Fate::Merged {
            into: "b0".into(),
            count: 3
        }
    );
    // Also across concurrent single-event calls folded into one group commit.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.ingest(vec![alert(
                &format!("c{i}"),
                T0 + 100,
                "k2",
                false,
                &["C2"],
            )])
            .await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("ingest");
    }
    let mut counts = Vec::new();
    let mut firsts = 0;
    for i in 0..10 {
        match status(s, &format!("c{i}")).await.fate {
            Fate::Merged { count, .. } => counts.push(count),
            Fate::Queued { .. } => firsts += 1,
            other => panic!("unexpected fate {other:?}"),
        }
    }
    counts.sort();
    assert_eq!(firsts, 1, "exactly one event opens the alert");
    assert_eq!(counts, (2..=10).collect::<Vec<u32>>());
}

async fn window_expiry_opens_a_new_alert(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![alert("w0", T0, "k", false, &["C1"])])
        .await
        .expect("ingest");
    s.ingest(vec![alert("w1", T0 + WINDOW, "k", false, &["C1"])])
        .await
        .expect("ingest");
    assert_eq!(
        status(s, "w1").await.fate,
        Fate::Merged {
            into: "w0".into(),
            count: 2
        }
    );
    // The window counts from the last duplicate seen, not from the first.
    s.ingest(vec![alert("w2", T0 + 2 * WINDOW, "k", false, &["C1"])])
        .await
        .expect("ingest");
    assert_eq!(
        status(s, "w2").await.fate,
        Fate::Merged {
            into: "w0".into(),
            count: 3
        }
    );
    s.ingest(vec![alert("w3", T0 + 3 * WINDOW + 1, "k", false, &["C1"])])
        .await
        .expect("ingest");
    let w3 = status(s, "w3").await;
    assert_eq!(
        w3.fate,
        Fate::Queued {
            rules: vec!["default".into()]
        },
        "quiet past the window: a new alert"
    );
    assert_eq!(w3.deliveries[0].method, "chat.postMessage");
    s.ingest(vec![alert("w4", T0 + 3 * WINDOW + 2, "k", false, &["C1"])])
        .await
        .expect("ingest");
    assert_eq!(
        status(s, "w4").await.fate,
        Fate::Merged {
            into: "w3".into(),
            count: 2
        }
    );
}

async fn resolve_links_update_to_the_post_in_the_same_lane(ctx: Ctx) {
    let s = &ctx.store;
    // A resolve for something never seen is stored as given.
    s.ingest(vec![NewEvent {
        fate: Fate::Unrouted,
        ..alert("r-", T0, "k", true, &["C1"])
    }])
    .await
    .expect("ingest");
    assert_eq!(status(s, "r-").await.fate, Fate::Unrouted);
    s.mark_sent(head(s, "T1:C1").await.id, "C1", "0.1", T0)
        .await
        .expect("mark_sent");

    s.ingest(vec![alert("r0", T0, "k", false, &["C1", "C2"])])
        .await
        .expect("ingest");
    let mut resolve = alert("r1", T0 + 5, "k", true, &["C2", "C3"]);
    resolve
        .dedup
        .as_mut()
        .expect("dedup")
        .on_open
        .push(item("C2", "reactions.add", 9));
    s.ingest(vec![resolve]).await.expect("ingest");
    let r1 = status(s, "r1").await;
    assert_eq!(r1.fate, Fate::Resolved { into: "r0".into() });
    assert_eq!(r1.deliveries.len(), 3);

    let c2 = s.lane_items("T1:C2", 10).await.expect("lane_items");
    let methods: Vec<_> = c2
        .iter()
        .map(|i| (i.method.as_str(), i.ref_pending))
        .collect();
    assert_eq!(
        methods,
        [
            ("chat.postMessage", false),
            ("chat.update", true),
            ("reactions.add", false)
        ]
    );
    // C3 had no post: the update is not linked to anything (and so not waiting).
    let c3 = s.lane_items("T1:C3", 10).await.expect("lane_items");
    assert_eq!(
        (c3.len(), &c3[0].ref_sent, c3[0].ref_pending),
        (1, &None, false)
    );

    s.mark_sent(c2[0].id, "C2", "1700000000.000200", T0 + 6)
        .await
        .expect("mark_sent");
    let upd = head(s, "T1:C2").await;
    assert_eq!(
        upd.ref_sent,
        Some(RefSent {
            channel: "C2".into(),
            ts: "1700000000.000200".into()
        })
    );
    assert!(!upd.ref_pending);

    // The alert is closed: the same key opens a new one.
    s.ingest(vec![alert("r2", T0 + 10, "k", false, &["C1"])])
        .await
        .expect("ingest");
    assert_eq!(
        status(s, "r2").await.fate,
        Fate::Queued {
            rules: vec!["default".into()]
        }
    );
}

async fn two_owners_never_hold_one_lane(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![event(
        "e1",
        T0,
        vec![
            item("A", "chat.postMessage", 1),
            item("B", "chat.postMessage", 2),
        ],
    )])
    .await
    .expect("ingest");
    assert_eq!(
        s.claim_lanes("one", T0 - 1, LEASE, 10)
            .await
            .expect("claim"),
        Vec::<String>::new(),
        "not due yet"
    );
    let mut got = s.claim_lanes("one", T0, LEASE, 1).await.expect("claim");
    assert_eq!(got.len(), 1, "max is respected");
    got.extend(s.claim_lanes("one", T0, LEASE, 10).await.expect("claim"));
    let got: BTreeSet<_> = got.into_iter().collect();
    assert_eq!(
        got,
        BTreeSet::from(["T1:A".to_string(), "T1:B".to_string()])
    );
    assert!(
        s.claim_lanes("two", T0 + 1, LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "held by a live owner"
    );
    let renewed = s
        .renew_leases(
            "one",
            &["T1:A".into(), "T1:B".into(), "T1:Z".into()],
            T0 + 10_000,
            LEASE,
        )
        .await;
    assert_eq!(renewed.expect("renew").len(), 2);
    assert!(
        s.claim_lanes("two", T0 + LEASE + 1, LEASE, 10)
            .await
            .expect("claim")
            .is_empty(),
        "renewed lease holds"
    );

    // A lane with nothing due is not claimable, and neither is one whose head waits for a retry.
    let a = head(s, "T1:A").await;
    s.mark_retry(a.id, T0 + 60_000, "429 ratelimited")
        .await
        .expect("retry");
    s.release_lane("one", "T1:A").await.expect("release");
    s.release_lane("one", "T1:B").await.expect("release");
    assert_eq!(
        s.claim_lanes("two", T0 + 50_000, LEASE, 10)
            .await
            .expect("claim"),
        ["T1:B"]
    );
    assert_eq!(
        s.claim_lanes("one", T0 + 60_000, LEASE, 10)
            .await
            .expect("claim"),
        ["T1:A"]
    );
}

async fn expired_lease_is_taken_over_and_release_frees_a_lane(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![event(
        "e1",
        T0,
        vec![item("A", "chat.postMessage", 1)],
    )])
    .await
    .expect("ingest");
    assert_eq!(
        s.claim_lanes("one", T0, LEASE, 10).await.expect("claim"),
        ["T1:A"]
    );
    assert_eq!(s.outbox_stats(T0).await.expect("stats").lanes_leased, 1);
    assert_eq!(
        s.claim_lanes("two", T0 + LEASE, LEASE, 10)
            .await
            .expect("claim"),
        ["T1:A"],
        "expired: taken over"
    );
    assert!(
        s.renew_leases("one", &["T1:A".into()], T0 + LEASE, LEASE)
            .await
            .expect("renew")
            .is_empty(),
        "lost"
    );
    s.release_lane("one", "T1:A")
        .await
        .expect("release by a non-owner is a no-op");
    assert!(s
        .claim_lanes("three", T0 + LEASE + 1, LEASE, 10)
        .await
        .expect("claim")
        .is_empty());
    s.release_lane("two", "T1:A").await.expect("release");
    assert_eq!(
        s.claim_lanes("three", T0 + LEASE + 1, LEASE, 10)
            .await
            .expect("claim"),
        ["T1:A"]
    );
    // Empty lanes are not handed out.
    s.mark_sent(head(s, "T1:A").await.id, "A", "1.1", T0)
        .await
        .expect("mark_sent");
    s.release_lane("three", "T1:A").await.expect("release");
    assert!(s
        .claim_lanes("four", T0 + LEASE + 2, LEASE, 10)
        .await
        .expect("claim")
        .is_empty());
}

/// What the dispatcher needs to post nothing twice after a crash: a started post reads back as possibly sent (with
/// its first attempt's time), a lane's channel id is known from its sent items, and a gone holder's leases can be
/// ended at once without touching anyone else's.
async fn a_gone_holders_leases_end_at_once_and_a_started_post_reads_back_as_maybe_sent(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![
        event("e1", T0, vec![item("A", "chat.postMessage", 1)]),
        event("e2", T0, vec![item("A", "chat.postMessage", 2)]),
        event("e3", T0, vec![item("B", "chat.postMessage", 3)]),
    ])
    .await
    .expect("ingest");
    assert_eq!(head(s, "T1:A").await.sending_at_ms, None);
    assert_eq!(s.lane_channel_id("T1:A").await.expect("channel id"), None);
    let first = head(s, "T1:A").await.id;
    s.mark_sent(first, "C0AAA01", "1.1", T0)
        .await
        .expect("sent");
    assert_eq!(
        s.lane_channel_id("T1:A")
            .await
            .expect("channel id")
            .as_deref(),
        Some("C0AAA01")
    );
    let second = head(s, "T1:A").await.id;
    s.mark_sending(second, T0 + 10).await.expect("sending");
    s.mark_sending(second, T0 + 20)
        .await
        .expect("sending again");
    assert_eq!(
        head(s, "T1:A").await.sending_at_ms,
        Some(T0 + 10),
        "the first attempt's time is kept"
    );
    assert!(matches!(
        s.mark_sending(first, T0 + 30).await,
        Err(StoreError::Conflict(_))
    ));

    assert_eq!(
        s.claim_lanes("gone", T0, LEASE, 1)
            .await
            .expect("claim")
            .len(),
        1
    );
    assert_eq!(
        s.claim_lanes("alive", T0, LEASE, 1)
            .await
            .expect("claim")
            .len(),
        1
    );
    assert_eq!(
        s.lease_holders(T0 + 1).await.expect("holders"),
        ["alive", "gone"]
    );
    assert_eq!(s.expire_leases("gone", T0 + 1).await.expect("expire"), 1);
    assert_eq!(s.lease_holders(T0 + 1).await.expect("holders"), ["alive"]);
    assert_eq!(
        s.claim_lanes("next", T0 + 2, LEASE, 10)
            .await
            .expect("claim")
            .len(),
        1,
        "the gone holder's lane is free at once; the live one's is not"
    );
    assert_eq!(s.expire_leases("nobody", T0 + 3).await.expect("expire"), 0);
}

async fn concurrent_claims_never_overlap(ctx: Ctx) {
    let s = &ctx.store;
    let batch = (0..40).map(|i| {
        event(
            &format!("e{i}"),
            T0,
            vec![item(&format!("C{i}"), "chat.postMessage", i)],
        )
    });
    s.ingest(batch.collect()).await.expect("ingest");
    let mut tasks = Vec::new();
    for owner in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..10 {
                mine.extend(
                    s.claim_lanes(&format!("owner{owner}"), T0, LEASE, 3)
                        .await
                        .expect("claim"),
                );
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("join"));
    }
    let distinct: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "a lane was handed to two owners: {all:?}"
    );
    assert_eq!(distinct.len(), 40);
}

async fn lane_items_come_out_in_ingest_order(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![
        event(
            "e1",
            T0,
            vec![
                item("A", "chat.postMessage", 1),
                item("A", "chat.postMessage", 2),
            ],
        ),
        event("e2", T0, vec![item("A", "chat.postMessage", 3)]),
    ])
    .await
    .expect("ingest");
    for seq in 4..8 {
        s.ingest(vec![event(
            &format!("x{seq}"),
            T0,
            vec![item("A", "chat.postMessage", seq)],
        )])
        .await
        .expect("ingest");
    }
    let items = s.lane_items("T1:A", 100).await.expect("lane_items");
    let seqs: Vec<_> = items
        .iter()
        .map(|i| i.args["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    assert!(items.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(s.lane_items("T1:A", 2).await.expect("lane_items").len(), 2);
    s.mark_sent(items[0].id, "A", "1.1", T0)
        .await
        .expect("mark_sent");
    assert_eq!(head(s, "T1:A").await.args["seq"], 2);
}

async fn mark_sent_retry_and_dead_are_visible_in_event(ctx: Ctx) {
    let s = &ctx.store;
    let outbox = vec![
        item("A", "chat.postMessage", 1),
        item("B", "chat.postMessage", 2),
        item("C", "chat.postMessage", 3),
    ];
    s.ingest(vec![event("e1", T0, outbox)])
        .await
        .expect("ingest");
    let ids: Vec<i64> = status(s, "e1")
        .await
        .deliveries
        .iter()
        .map(|d| d.item_id)
        .collect();
    s.mark_sent(ids[0], "C0A", "1700000000.1", T0 + 1)
        .await
        .expect("mark_sent");
    s.mark_retry(ids[1], T0 + 5000, "ratelimited")
        .await
        .expect("retry");
    s.mark_retry(ids[1], T0 + 9000, "timeout")
        .await
        .expect("retry");
    s.mark_dead(ids[2], "channel_not_found", T0 + 2)
        .await
        .expect("dead");
    let d = status(s, "e1").await.deliveries;
    assert_eq!(
        d[0].state,
        DeliveryState::Sent {
            channel: "C0A".into(),
            ts: "1700000000.1".into(),
            at_ms: T0 + 1
        }
    );
    assert_eq!(
        (&d[1].state, d[1].attempts, d[1].last_error.as_deref()),
        (&DeliveryState::Pending, 2, Some("timeout"))
    );
    assert_eq!(
        d[2].state,
        DeliveryState::Dead {
            reason: "channel_not_found".into(),
            at_ms: T0 + 2
        }
    );
    let b = head(s, "T1:B").await;
    assert_eq!((b.attempts, b.next_attempt_at_ms), (2, T0 + 9000));
    assert!(s
        .lane_items("T1:A", 10)
        .await
        .expect("lane_items")
        .is_empty());
    assert!(s
        .lane_items("T1:C", 10)
        .await
        .expect("lane_items")
        .is_empty());
}

async fn marks_on_items_that_are_not_pending_conflict(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![event(
        "e1",
        T0,
        vec![item("A", "chat.postMessage", 1)],
    )])
    .await
    .expect("ingest");
    let id = head(s, "T1:A").await.id;
    s.mark_sent(id, "A", "1.1", T0).await.expect("mark_sent");
    for result in [
        s.mark_sent(id, "A", "1.2", T0).await,
        s.mark_retry(id, T0, "x").await,
        s.mark_dead(id, "x", T0).await,
        s.mark_sent(9_999_999, "A", "1.2", T0).await,
        s.replay(Replay::Item(id), T0).await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    }
    // The sent record is intact.
    assert!(
        matches!(&status(s, "e1").await.deliveries[0].state, DeliveryState::Sent { ts, .. } if ts == "1.1")
    );
}

async fn dead_post_takes_its_updates_with_it(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![
        alert("p0", T0, "k", false, &["C1"]),
        alert("p1", T0 + 1, "k", false, &["C1"]),
    ])
    .await
    .expect("ingest");
    let items = s.lane_items("T1:C1", 10).await.expect("lane_items");
    let (post, upd) = (items[0].id, items[1].id);
    assert!(items[1].ref_pending);
    s.mark_dead(post, "is_archived", T0 + 2)
        .await
        .expect("dead");
    assert!(s
        .lane_items("T1:C1", 10)
        .await
        .expect("lane_items")
        .is_empty());
    let p1 = status(s, "p1").await;
    match &p1.deliveries[0].state {
        DeliveryState::Dead { reason, .. } => {
            assert!(
                reason.contains("referenced post") && reason.contains("is_archived"),
                "{reason}"
            )
        }
        other => panic!("update should be dead, is {other:?}"),
    }
    // A duplicate arriving after the post died is born dead, with the same explanation.
    s.ingest(vec![alert("p2", T0 + 3, "k", false, &["C1"])])
        .await
        .expect("ingest");
    assert!(
        matches!(&status(s, "p2").await.deliveries[0].state, DeliveryState::Dead { reason, .. } if reason.contains("is_archived"))
    );
    assert_eq!(s.dead_letters(10).await.expect("dead letters").len(), 3);

    // Replaying an update replays its dead post too, and the update waits for it again.
    assert_eq!(
        s.replay(Replay::Item(upd), T0 + 10).await.expect("replay"),
        2
    );
    let items = s.lane_items("T1:C1", 10).await.expect("lane_items");
    assert_eq!(
        items
            .iter()
            .map(|i| (i.id, i.ref_pending))
            .collect::<Vec<_>>(),
        [(post, false), (upd, true)]
    );
    assert_eq!(
        s.claim_lanes("d", T0 + 10, LEASE, 10).await.expect("claim"),
        ["T1:C1"]
    );
}

async fn dead_letters_and_replay_one_and_all(ctx: Ctx) {
    let s = &ctx.store;
    let outbox = (0..3)
        .map(|i| item(&format!("C{i}"), "chat.postMessage", i))
        .collect();
    s.ingest(vec![event("e1", T0, outbox)])
        .await
        .expect("ingest");
    let ids: Vec<i64> = status(s, "e1")
        .await
        .deliveries
        .iter()
        .map(|d| d.item_id)
        .collect();
    for (n, id) in ids.iter().enumerate() {
        s.mark_retry(*id, T0, "500").await.expect("retry");
        s.mark_dead(*id, &format!("invalid_blocks #{n}"), T0 + n as i64)
            .await
            .expect("dead");
    }
    let dl = s.dead_letters(10).await.expect("dead letters");
    assert_eq!(
        dl.iter().map(|d| d.item_id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]],
        "newest first"
    );
    assert_eq!(
        dl[0],
        DeadLetter {
            item_id: ids[2],
            event_id: Some("e1".into()),
            channel: "C2".into(),
            method: "chat.postMessage".into(),
            reason: "invalid_blocks #2".into(),
            attempts: 1,
            dead_at_ms: T0 + 2,
        }
    );
    assert_eq!(s.dead_letters(1).await.expect("dead letters").len(), 1);

    assert_eq!(
        s.replay(Replay::Item(ids[0]), T0 + 100)
            .await
            .expect("replay"),
        1
    );
    let it = head(s, "T1:C0").await;
    assert_eq!(
        (it.id, it.attempts, it.next_attempt_at_ms),
        (ids[0], 0, T0 + 100)
    );
    assert_eq!(
        s.claim_lanes("d", T0 + 100, LEASE, 10)
            .await
            .expect("claim"),
        ["T1:C0"]
    );
    assert_eq!(s.replay(Replay::All, T0 + 200).await.expect("replay"), 2);
    assert!(s.dead_letters(10).await.expect("dead letters").is_empty());
    assert_eq!(s.replay(Replay::All, T0 + 200).await.expect("replay"), 0);
    assert_eq!(s.outbox_stats(T0 + 200).await.expect("stats").pending, 3);
}

async fn outbox_stats_count_what_operators_graph(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(
        s.outbox_stats(T0).await.expect("stats"),
        OutboxStats::default()
    );
    s.ingest(vec![event(
        "e1",
        T0,
        vec![
            item("A", "chat.postMessage", 1),
            item("B", "chat.postMessage", 2),
        ],
    )])
    .await
    .expect("ingest");
    s.ingest(vec![event(
        "e2",
        T0 + 500,
        vec![
            item("B", "chat.postMessage", 3),
            item("C", "chat.postMessage", 4),
        ],
    )])
    .await
    .expect("ingest");
    let c = head(s, "T1:C").await.id;
    s.mark_dead(c, "not_in_channel", T0 + 600)
        .await
        .expect("dead");
    s.claim_lanes("d", T0 + 1000, LEASE, 1)
        .await
        .expect("claim");
    let st = s.outbox_stats(T0 + 1000).await.expect("stats");
    assert_eq!(
        st,
        OutboxStats {
            pending: 3,
            oldest_pending_age_ms: Some(1000),
            dead: 1,
            lanes_leased: 1
        }
    );
    assert_eq!(
        s.outbox_stats(T0 + 1000 + LEASE)
            .await
            .expect("stats")
            .lanes_leased,
        0,
        "expired leases don't count"
    );
}

async fn prune_keeps_what_is_still_needed(ctx: Ctx) {
    let s = &ctx.store;
    // An open alert whose post is sent; a closed alert whose post is sent; a plain sent event; a dead item; a pending.
    s.ingest(vec![alert("open", T0, "k-open", false, &["A"])])
        .await
        .expect("ingest");
    s.ingest(vec![alert("closed", T0, "k-closed", false, &["B"])])
        .await
        .expect("ingest");
    s.ingest(vec![event(
        "plain",
        T0,
        vec![item("C", "chat.postMessage", 1)],
    )])
    .await
    .expect("ingest");
    s.ingest(vec![event(
        "dead",
        T0,
        vec![item("D", "chat.postMessage", 1)],
    )])
    .await
    .expect("ingest");
    s.ingest(vec![event(
        "pending",
        T0,
        vec![item("E", "chat.postMessage", 1)],
    )])
    .await
    .expect("ingest");
    s.ingest(vec![NewEvent {
        fate: Fate::Unrouted,
        ..event("unrouted", T0, vec![])
    }])
    .await
    .expect("ingest");
    for lane in ["T1:A", "T1:B", "T1:C"] {
        s.mark_sent(head(s, lane).await.id, "X", "1.1", T0 + 1)
            .await
            .expect("mark_sent");
    }
    s.mark_dead(head(s, "T1:D").await.id, "nope", T0 + 1)
        .await
        .expect("dead");
    s.ingest(vec![alert("closer", T0 + 2, "k-closed", true, &[])])
        .await
        .expect("ingest");

    assert_eq!(
        s.prune(T0).await.expect("prune"),
        0,
        "nothing is older than T0"
    );
    let removed = s.prune(T0 + 10).await.expect("prune");
    // closed alert (1) + sent items of 'closed' and 'plain' (2) + events closed, plain, unrouted, closer (4).
    assert_eq!(removed, 7);
    for gone in ["closed", "plain", "unrouted", "closer"] {
        assert_eq!(
            s.event(gone).await.expect("event()"),
            None,
            "{gone} should be pruned"
        );
    }
    for kept in ["open", "dead", "pending"] {
        assert!(
            s.event(kept).await.expect("event()").is_some(),
            "{kept} must be kept"
        );
    }
    assert_eq!(s.dead_letters(10).await.expect("dead letters").len(), 1);
    assert_eq!(s.outbox_stats(T0 + 10).await.expect("stats").pending, 1);
    // The open alert still links updates to its (kept) post.
    s.ingest(vec![alert("open2", T0 + 20, "k-open", false, &["A"])])
        .await
        .expect("ingest");
    assert!(matches!(head(s, "T1:A").await.ref_sent, Some(RefSent { ref ts, .. }) if ts == "1.1"));
}

async fn schema_mismatch_is_refused_with_the_fix(ctx: Ctx) {
    let no_migrate = StoreOptions {
        migrate: false,
        ..StoreOptions::default()
    };
    let fresh = ctx.fresh_url().await;
    match open(&fresh, &no_migrate).await {
        Err(StoreError::SchemaMismatch { db: 0, binary, fix }) => {
            assert!(binary >= 1);
            assert!(fix.contains("sluice migrate"), "{fix}");
        }
        other => panic!(
            "expected SchemaMismatch, got {:?}",
            other.map(|s| s.backend())
        ),
    }
    let report = migrate(&fresh).await.expect("migrate");
    assert_eq!(
        (report.backend, report.from, report.applied.is_empty()),
        (ctx.backend, 0, false)
    );
    let again = migrate(&fresh).await.expect("migrate twice");
    assert_eq!(
        (again.from, again.to, again.applied.len()),
        (report.to, report.to, 0)
    );
    open(&fresh, &no_migrate)
        .await
        .expect("an up-to-date schema opens");

    // A database migrated by a newer sluice.
    ctx.exec(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (999, 'future', TRUE, '', 0)",
    )
    .await;
    for opts in [no_migrate.clone(), StoreOptions::default()] {
        match open(&ctx.url, &opts).await {
            Err(StoreError::SchemaMismatch { db: 999, fix, .. }) => {
                assert!(fix.contains("upgrade sluice"), "{fix}")
            }
            other => panic!(
                "expected SchemaMismatch, got {:?}",
                other.map(|s| s.backend())
            ),
        }
    }
    assert!(matches!(
        migrate(&ctx.url).await,
        Err(StoreError::SchemaMismatch { db: 999, .. })
    ));
    assert!(matches!(
        open("mysql://x", &no_migrate).await,
        Err(StoreError::Other(_))
    ));
}

async fn a_fresh_open_reads_what_an_earlier_open_wrote(ctx: Ctx) {
    for (n, durability) in [Durability::Full, Durability::Normal]
        .into_iter()
        .enumerate()
    {
        let url = ctx.fresh_url().await;
        let opts = StoreOptions {
            durability,
            ..StoreOptions::default()
        };
        {
            let s = open(&url, &opts).await.expect("open");
            s.ingest(vec![event(
                &format!("d{n}"),
                T0,
                vec![item("A", "chat.postMessage", 1)],
            )])
            .await
            .expect("ingest");
            let id = head(&s, "T1:A").await.id;
            s.mark_retry(id, T0 + 1, "timeout").await.expect("retry");
        }
        let s = open(
            &url,
            &StoreOptions {
                migrate: false,
                ..opts
            },
        )
        .await
        .expect("reopen");
        let st = status(&s, &format!("d{n}")).await;
        assert_eq!((st.deliveries.len(), st.deliveries[0].attempts), (1, 1));
        assert_eq!(
            s.claim_lanes("d", T0 + 1, LEASE, 10).await.expect("claim"),
            ["T1:A"]
        );
    }
}

async fn concurrent_ingest_loses_nothing(ctx: Ctx) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 250;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = ctx.store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let lane = ["A", "B", "C"][i % 3];
                s.ingest(vec![event(
                    &format!("t{t}-{i}"),
                    T0,
                    vec![item(lane, "chat.postMessage", (t * PER_TASK + i) as u32)],
                )])
                .await
                .expect("ingest");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let s = &ctx.store;
    assert_eq!(
        s.outbox_stats(T0).await.expect("stats").pending,
        (TASKS * PER_TASK) as u64
    );
    for t in 0..TASKS {
        for i in (0..PER_TASK).step_by(37) {
            assert!(s
                .event(&format!("t{t}-{i}"))
                .await
                .expect("event()")
                .is_some());
        }
    }
    // Per task, its items keep their submission order within each lane.
    let a = s.lane_items("T1:A", 10_000).await.expect("lane_items");
    for t in 0..TASKS {
        let seqs: Vec<u64> = a
            .iter()
            .filter(|i| {
                i.event_id
                    .as_deref()
                    .is_some_and(|e| e.starts_with(&format!("t{t}-")))
            })
            .map(|i| i.args["seq"].as_u64().unwrap_or(0))
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "task {t} out of order"
        );
    }
}

async fn a_bad_batch_does_not_fail_its_neighbours(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![event("taken", T0, vec![])])
        .await
        .expect("ingest");
    // Concurrent callers land in the same group commit; the one reusing an id must fail alone.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        let id = if i == 7 {
            "taken".to_string()
        } else {
            format!("n{i}")
        };
        tasks.push(tokio::spawn(async move {
            (
                i,
                s.ingest(vec![event(&id, T0, vec![item("A", "chat.postMessage", i)])])
                    .await,
            )
        }));
    }
    for t in tasks {
        let (i, result) = t.await.expect("join");
        if i == 7 {
            assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
        } else {
            result.expect("a good batch must be accepted");
        }
    }
    assert_eq!(
        s.lane_items("T1:A", 100).await.expect("lane_items").len(),
        15
    );
}

#[tokio::test]
async fn sqlite_in_memory_works_for_demos() {
    let s = open("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("open");
    s.ingest(vec![event(
        "m1",
        T0,
        vec![item("A", "chat.postMessage", 1)],
    )])
    .await
    .expect("ingest");
    assert_eq!(status(&s, "m1").await.deliveries.len(), 1);
    assert_eq!(
        s.claim_lanes("d", T0, LEASE, 10).await.expect("claim"),
        ["T1:A"]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Coordination: shared rate limits, leader leases, once-keys

async fn rate_limit_allows_a_burst_then_one_per_interval(ctx: Ctx) {
    let s = &ctx.store;
    // interval 100 ms, burst 3. Each row: (now offset, expected decision, as an offset of T0 for RetryAt).
    let steps: &[(i64, Option<i64>)] = &[
        (0, None),
        (0, None),
        (0, None),
        (0, Some(100)), // burst spent: the next allowance is one interval after the first
        (50, Some(100)),
        (100, None),
        (100, Some(200)),
        (1_000, None), // long idle: the bucket refilled …
        (1_000, None),
        (1_000, None),
        (1_000, Some(1_100)), // … but only up to the burst
    ];
    for (i, (at, expected)) in steps.iter().enumerate() {
        let got = s
            .take_rate("post:T1:C1", 100, 3, T0 + at)
            .await
            .expect("take_rate");
        let expected = match expected {
            None => RateDecision::Allowed,
            Some(r) => RateDecision::RetryAt(T0 + r),
        };
        assert_eq!(got, expected, "step {i} at +{at} ms");
    }
    // Keys are independent; burst 0 behaves as 1.
    assert_eq!(
        s.take_rate("post:T1:C2", 100, 0, T0)
            .await
            .expect("take_rate"),
        RateDecision::Allowed
    );
    assert_eq!(
        s.take_rate("post:T1:C2", 100, 0, T0 + 1)
            .await
            .expect("take_rate"),
        RateDecision::RetryAt(T0 + 100)
    );
}

async fn block_rate_blocks_only_its_key_and_never_shortens(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(
        s.take_rate("a", 100, 5, T0).await.expect("take"),
        RateDecision::Allowed
    );
    s.block_rate("a", T0 + 30_000).await.expect("block");
    // A shorter block (a second, older 429) must not let calls through earlier.
    s.block_rate("a", T0 + 10_000).await.expect("block");
    // Blocking a key never seen before works too.
    s.block_rate("fresh", T0 + 5_000).await.expect("block");
    assert_eq!(
        s.take_rate("a", 100, 5, T0 + 1_000).await.expect("take"),
        RateDecision::RetryAt(T0 + 30_000)
    );
    assert_eq!(
        s.take_rate("a", 100, 5, T0 + 29_999).await.expect("take"),
        RateDecision::RetryAt(T0 + 30_000)
    );
    assert_eq!(
        s.take_rate("b", 100, 5, T0 + 1_000).await.expect("take"),
        RateDecision::Allowed,
        "another key is not blocked"
    );
    assert_eq!(
        s.take_rate("fresh", 100, 5, T0 + 1_000)
            .await
            .expect("take"),
        RateDecision::RetryAt(T0 + 5_000)
    );
    assert_eq!(
        s.take_rate("a", 100, 5, T0 + 30_000).await.expect("take"),
        RateDecision::Allowed
    );
}

async fn three_replicas_together_never_exceed_the_rate(ctx: Ctx) {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    const INTERVAL: i64 = 100;
    const BURST: u32 = 5;
    const SPAN: i64 = 3_000;
    const STEP: i64 = 2;
    // One simulated clock: every call moves it on by STEP, so the three replicas interleave their "now"s.
    let clock = Arc::new(AtomicI64::new(T0));
    let allowed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let s = ctx.replica().await;
        let (clock, allowed) = (clock.clone(), allowed.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let now = clock.fetch_add(STEP, Ordering::SeqCst);
                if now > T0 + SPAN {
                    return;
                }
                match s.take_rate("post:T1:C1", INTERVAL, BURST, now).await {
                    Ok(RateDecision::Allowed) => {
                        allowed.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(RateDecision::RetryAt(at)) => assert!(at > now, "retry in the past"),
                    Err(e) => panic!("take_rate: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let total = allowed.load(Ordering::SeqCst);
    let ceiling = u64::from(BURST) + (SPAN / INTERVAL) as u64;
    assert!(
        total <= ceiling,
        "{total} allowances in {SPAN} ms, at most {ceiling} allowed"
    );
    // And the limiter is not simply refusing everything.
    assert!(total >= ceiling - 5, "only {total} allowances of {ceiling}");
}

async fn leader_lease_fails_over_after_ttl(ctx: Ctx) {
    const TTL: i64 = 10_000;
    let (a, b) = (ctx.store.clone(), ctx.replica().await);
    let lead = |s: &Arc<dyn Store>, who: &'static str, at: i64| {
        let s = s.clone();
        async move {
            s.try_lead("retention", who, T0 + at, TTL)
                .await
                .expect("try_lead")
        }
    };
    assert!(lead(&a, "A", 0).await, "vacant role is taken");
    assert!(!lead(&b, "B", 1).await, "held role is refused");
    assert!(lead(&a, "A", 5_000).await, "holder renews (until +15 s)");
    assert!(!lead(&b, "B", 14_999).await, "renewal extended the lease");
    // A stops renewing (hung, partitioned …): after the ttl B takes over, and A's late renewal fails.
    assert!(lead(&b, "B", 15_000).await, "expired lease is taken over");
    assert!(
        !lead(&a, "A", 15_001).await,
        "the old leader must learn it lost"
    );
    // Roles are independent.
    assert!(a
        .try_lead("schedules", "A", T0 + 15_001, TTL)
        .await
        .expect("try_lead"));
    // Resigning by a non-holder changes nothing; by the holder frees the role at once.
    a.resign("retention", "A").await.expect("resign");
    assert!(!lead(&a, "A", 15_002).await);
    b.resign("retention", "B").await.expect("resign");
    assert!(
        lead(&a, "A", 15_003).await,
        "resigned role is free before its ttl"
    );
}

async fn one_of_many_racing_owners_leads(ctx: Ctx) {
    let replicas = [ctx.store.clone(), ctx.replica().await, ctx.replica().await];
    for round in 0..5 {
        let role = format!("role-{round}");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = replicas[i % replicas.len()].clone();
            let role = role.clone();
            tasks.push(tokio::spawn(async move {
                s.try_lead(&role, &format!("owner-{i}"), T0, 10_000)
                    .await
                    .expect("try_lead")
            }));
        }
        let mut leaders = 0;
        for t in tasks {
            leaders += usize::from(t.await.expect("join"));
        }
        assert_eq!(leaders, 1, "round {round}: exactly one owner leads");
    }
}

async fn first_time_is_true_exactly_once_per_key(ctx: Ctx) {
    const TTL: i64 = 60_000;
    let replicas = [ctx.store.clone(), ctx.replica().await, ctx.replica().await];
    for k in 0..10 {
        let key = format!("slack:event:Ev{k}");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = replicas[i % replicas.len()].clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                s.first_time(&key, T0 + i as i64, TTL)
                    .await
                    .expect("first_time")
            }));
        }
        let mut firsts = 0;
        for t in tasks {
            firsts += usize::from(t.await.expect("join"));
        }
        assert_eq!(firsts, 1, "{key}: exactly one of 8 callers is first");
    }
    let s = &ctx.store;
    // Remembered until the ttl ends (the first call was at T0 + 0..7), then the key is new again — once.
    assert!(!s
        .first_time("slack:event:Ev0", T0 + 59_000, TTL)
        .await
        .expect("first_time"));
    let after = T0 + 7 + TTL;
    assert!(s
        .first_time("slack:event:Ev0", after, TTL)
        .await
        .expect("first_time"));
    assert!(!s
        .first_time("slack:event:Ev0", after, TTL)
        .await
        .expect("first_time"));
    assert!(s.first_time("other", T0, TTL).await.expect("first_time"));
}

// ---------------------------------------------------------------------------------------------------------------
// Audit log

fn audit_entry(n: i64, result: &str) -> NewAudit {
    NewAudit {
        at_ms: T0 + n,
        actor: "U123".into(),
        team: "T1".into(),
        action: "alert.ack".into(),
        target: format!("C1:1700000000.{n:06}"),
        result: result.into(),
        detail: json!({ "n": n, "via": "button", "nested": { "z": 1, "a": [1, 2] } }),
    }
}

async fn audit_chain_links_records_and_pages(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(
        s.verify_audit().await.expect("verify"),
        None,
        "empty chain is intact"
    );
    let mut written = Vec::new();
    for (n, result) in [
        (1, "ok"),
        (2, "refused: not a member"),
        (3, "error: slack 500"),
    ] {
        written.push(
            s.record_audit(audit_entry(n, result))
                .await
                .expect("record"),
        );
    }
    assert_eq!(written.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(written[0].prev_hash, "0".repeat(64));
    assert_eq!(written[1].prev_hash, written[0].hash);
    assert_eq!(written[2].prev_hash, written[1].hash);
    assert!(written.iter().all(|r| r.hash.len() == 64));
    assert_eq!(written[1].result, "refused: not a member");
    // What comes back is exactly what was recorded, in id order, paged by the last id seen.
    assert_eq!(s.audit(0, 100).await.expect("audit"), written);
    assert_eq!(s.audit(1, 1).await.expect("audit"), written[1..2]);
    assert_eq!(s.audit(3, 10).await.expect("audit"), []);
    assert_eq!(s.verify_audit().await.expect("verify"), None);
}

async fn concurrent_audit_appends_never_fork_the_chain(ctx: Ctx) {
    let replicas = [ctx.store.clone(), ctx.replica().await, ctx.replica().await];
    let mut tasks = Vec::new();
    for (r, s) in replicas.iter().enumerate() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                s.record_audit(audit_entry((r * 100 + i) as i64, "ok"))
                    .await
                    .expect("record");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let all = ctx.store.audit(0, 1000).await.expect("audit");
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        (1..=45).collect::<Vec<_>>()
    );
    assert!(
        all.windows(2).all(|w| w[1].prev_hash == w[0].hash),
        "one chain, no fork"
    );
    assert_eq!(ctx.store.verify_audit().await.expect("verify"), None);
}

async fn audit_tampering_is_found_at_the_tampered_id(ctx: Ctx) {
    let cases: &[(&str, Option<i64>)] = &[
        ("UPDATE audit_log SET result = 'ok' WHERE id = 2", Some(2)),
        (
            "UPDATE audit_log SET detail = '{\"n\":1}' WHERE id = 1",
            Some(1),
        ),
        ("UPDATE audit_log SET actor = 'U999' WHERE id = 4", Some(4)),
        // A deleted row breaks the chain where it was; deleting the newest ones is caught by the head.
        ("DELETE FROM audit_log WHERE id = 3", Some(3)),
        ("DELETE FROM audit_log WHERE id >= 3", Some(3)),
        // Whitespace in the stored JSON is not a change of content.
        (
            "UPDATE audit_log SET detail = ' ' || detail WHERE id = 1",
            None,
        ),
    ];
    for (sql, expected) in cases {
        let url = ctx.fresh_url().await;
        let s = open(&url, &StoreOptions::default()).await.expect("open");
        for n in 1..=4 {
            let result = if n == 2 { "refused: not allowed" } else { "ok" };
            s.record_audit(audit_entry(n, result))
                .await
                .expect("record");
        }
        assert_eq!(s.verify_audit().await.expect("verify"), None);
        ctx.exec_on(&url, sql).await;
        assert_eq!(
            s.verify_audit().await.expect("verify"),
            *expected,
            "after {sql}"
        );
    }
}

async fn prune_removes_expired_coordination_rows_but_never_audit(ctx: Ctx) {
    const HOUR: i64 = 3_600_000;
    let s = &ctx.store;
    assert!(s.first_time("once", T0, 1_000).await.expect("first_time"));
    assert_eq!(
        s.take_rate("idle", 100, 1, T0).await.expect("take"),
        RateDecision::Allowed
    );
    s.block_rate("blocked", T0 + 3 * HOUR).await.expect("block");
    assert!(s.try_lead("retention", "A", T0, 1_000).await.expect("lead"));
    s.record_audit(audit_entry(1, "ok")).await.expect("record");

    assert_eq!(
        s.prune(T0 + 500).await.expect("prune"),
        0,
        "nothing has expired yet"
    );
    assert!(!s
        .first_time("once", T0 + 600, 1_000)
        .await
        .expect("first_time"));
    // Two hours on: the once-key and the lease are long expired, the idle rate row idle for over an hour; the
    // block still runs.
    assert_eq!(s.prune(T0 + 2 * HOUR).await.expect("prune"), 3);
    assert_eq!(
        s.take_rate("blocked", 100, 1, T0 + 2 * HOUR)
            .await
            .expect("take"),
        RateDecision::RetryAt(T0 + 3 * HOUR)
    );
    assert!(s
        .first_time("once", T0 + 2 * HOUR, 1_000)
        .await
        .expect("first_time"));
    assert!(s
        .try_lead("retention", "B", T0 + 2 * HOUR, 1_000)
        .await
        .expect("lead"));
    assert_eq!(s.audit(0, 10).await.expect("audit").len(), 1);
    assert_eq!(s.verify_audit().await.expect("verify"), None);
}

// ---------------------------------------------------------------------------------------------------------------
// Crashes and outages

/// Set in the child process of [`sqlite_acknowledged_ingests_survive_a_kill`]: the database it writes to.
const KILL_CHILD_ENV: &str = "SLUICE_TEST_KILL_CHILD_DB";

/// Not a test of its own: the child half of [`sqlite_acknowledged_ingests_survive_a_kill`], which runs this test
/// binary again with only this test selected and `KILL_CHILD_ENV` set. Without the variable it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_child() {
    use std::io::Write;
    let Ok(url) = std::env::var(KILL_CHILD_ENV) else {
        return;
    };
    let s = open(&url, &StoreOptions::default())
        .await
        .expect("child open");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    // Several writers at once, so acknowledgements come out of group commits, as in the server.
    for w in 0..4 {
        let (s, tx) = (s.clone(), tx.clone());
        tokio::spawn(async move {
            for i in 0.. {
                let id = format!("w{w}-{i}");
                s.ingest(vec![event(&id, T0, vec![item("A", "chat.postMessage", i)])])
                    .await
                    .expect("child ingest");
                if tx.send(id).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    while let Some(id) = rx.recv().await {
        // Printed only after ingest returned: every id the parent reads was acknowledged.
        writeln!(out, "ACK {id}").expect("child stdout");
        out.flush().expect("child stdout");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acknowledged_ingests_survive_a_kill() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kill.db").display());
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
        .env(KILL_CHILD_ENV, &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.push(id.to_string());
                if acked.len() >= 300 {
                    break;
                }
            }
        }
        (acked, child)
    });
    let (acked, mut child) = acked.await.expect("reader");
    // SIGKILL mid-stream: no destructors, no pool close, no checkpoint; writers are still committing.
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    assert!(
        acked.len() >= 300,
        "child stopped early after {} acks",
        acked.len()
    );

    let s = open(
        &url,
        &StoreOptions {
            migrate: false,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("reopen after kill");
    for id in &acked {
        assert!(
            s.event(id).await.expect("event()").is_some(),
            "acknowledged event {id} lost by the kill"
        );
    }
    let pending = s.outbox_stats(T0).await.expect("stats").pending;
    assert!(pending >= acked.len() as u64);
    // And the database is fully usable after recovery.
    s.ingest(vec![event(
        "after",
        T0,
        vec![item("A", "chat.postMessage", 0)],
    )])
    .await
    .expect("ingest after recovery");
}

/// Kills every connection of the test database's sessions from another connection, as a PostgreSQL restart or an
/// operator's pg_terminate_backend would.
async fn terminate_backends(ctx: &Ctx) {
    let Some(pg) = &ctx.pg else { return };
    let server = pg.lock().expect("lock").0.clone();
    let db = url::Url::parse(&ctx.url)
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_string();
    let pool = sqlx::PgPool::connect(&server)
        .await
        .expect("connect to server");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .fetch_all(&pool)
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "the store had no connection to kill");
    pool.close().await;
}

fn ok_or_unavailable<T>(what: &str, r: Result<T, StoreError>) {
    match r {
        Ok(_) | Err(StoreError::Unavailable(_)) => {}
        Err(e) => {
            panic!("{what} after losing its connections: expected Ok or Unavailable, got {e:?}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_connections_answer_unavailable_then_recover() {
    let Some(ctx) = Ctx::postgres().await else {
        return;
    };
    let test = |ctx: Ctx| async move {
        use std::time::{Duration, Instant};
        let s = &ctx.store;
        s.ingest(vec![event(
            "before",
            T0,
            vec![item("A", "chat.postMessage", 0)],
        )])
        .await
        .expect("ingest");
        for round in 0..3 {
            terminate_backends(&ctx).await;
            let started = Instant::now();
            let r = s
                .ingest(vec![event(
                    &format!("r{round}-a"),
                    T0,
                    vec![item("A", "chat.postMessage", 1)],
                )])
                .await;
            ok_or_unavailable("ingest", r);
            assert!(started.elapsed() < Duration::from_secs(8), "ingest hung");
            s.ingest(vec![event(
                &format!("r{round}-b"),
                T0,
                vec![item("A", "chat.postMessage", 2)],
            )])
            .await
            .expect("the ingest after recovers");

            terminate_backends(&ctx).await;
            ok_or_unavailable("ping", s.ping().await);
            s.ping().await.expect("the ping after recovers");

            // Many callers in one group commit while connections die: each gets an answer, and the writer lives on.
            terminate_backends(&ctx).await;
            let mut tasks = Vec::new();
            for i in 0..8 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    s.ingest(vec![event(
                        &format!("r{round}-c{i}"),
                        T0,
                        vec![item("B", "chat.postMessage", i)],
                    )])
                    .await
                }));
            }
            for t in tasks {
                ok_or_unavailable("concurrent ingest", t.await.expect("join"));
            }
            s.ingest(vec![event(
                &format!("r{round}-d"),
                T0,
                vec![item("A", "chat.postMessage", 3)],
            )])
            .await
            .expect("the writer survived");
            terminate_backends(&ctx).await;
            let r = s.take_rate("k", 1, 1, T0 + round).await.map(|_| ());
            ok_or_unavailable("take_rate", r);
            assert!(s
                .first_time(&format!("k{round}"), T0, 1_000)
                .await
                .expect("first_time"));
        }
        assert!(s.event("r2-d").await.expect("event()").is_some());
    };
    run(ctx, test).await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_quickly() {
    use std::time::{Duration, Instant};
    // A port nobody listens on: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let started = Instant::now();
    let r = open(
        &format!("postgres://postgres@127.0.0.1:{port}/x"),
        &StoreOptions::default(),
    )
    .await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{:?}",
        r.map(|s| s.backend())
    );
    assert!(started.elapsed() < Duration::from_secs(8), "open hung");
}

/// A TCP proxy in front of PostgreSQL that the test can switch off (existing connections are cut, new ones are
/// accepted and dropped at once) and on again: a database outage without touching the shared server.
struct Proxy {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let mut cut = cut2.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|g| *g += 1);
    }

    fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_unavailable_fast_and_the_store_recovers() {
    let Some(ctx) = Ctx::postgres().await else {
        return;
    };
    let test = |ctx: Ctx| async move {
        use std::time::{Duration, Instant};
        let direct = url::Url::parse(&ctx.url).expect("url");
        let target = format!(
            "{}:{}",
            direct.host_str().unwrap_or("127.0.0.1"),
            direct.port().unwrap_or(5432)
        );
        let proxy = Proxy::start(target).await;
        let mut via = direct.clone();
        via.set_port(Some(proxy.port)).expect("port");
        let s = open(via.as_str(), &StoreOptions::default())
            .await
            .expect("open via proxy");
        s.ingest(vec![event(
            "before",
            T0,
            vec![item("A", "chat.postMessage", 0)],
        )])
        .await
        .expect("ingest");

        proxy.down();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.ingest(vec![event(
                    &format!("down{i}"),
                    T0,
                    vec![item("A", "chat.postMessage", i)],
                )])
                .await
            }));
        }
        for t in tasks {
            let r = t.await.expect("join");
            assert!(
                matches!(r, Err(StoreError::Unavailable(_))),
                "ingest during outage: {r:?}"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "ingest hung during the outage"
        );
        assert!(matches!(s.ping().await, Err(StoreError::Unavailable(_))));
        assert!(matches!(
            s.first_time("k", T0, 1_000).await,
            Err(StoreError::Unavailable(_))
        ));

        proxy.up();
        // The pool reconnects by itself and the group writer is still there.
        s.ping().await.expect("ping after the outage");
        s.ingest(vec![event(
            "after",
            T0,
            vec![item("A", "chat.postMessage", 9)],
        )])
        .await
        .expect("ingest after the outage");
        assert!(s.event("after").await.expect("event()").is_some());
        assert!(
            s.event("down0").await.expect("event()").is_none(),
            "a refused event was not stored"
        );
    };
    run(ctx, test).await;
}

/// Every migration after the first, newest first: its version, its name, and the statements that undo it, so a test
/// can make the database an older release left. A new migration adds its line here.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        24,
        "0024_console_login_failures",
        "DROP INDEX console_login_failures_at; DROP INDEX console_login_failures_client;
         DROP TABLE console_login_failures;",
    ),
    (
        23,
        "0023_console_sessions",
        "DROP INDEX console_sessions_expiry; DROP TABLE console_sessions;",
    ),
    (
        21,
        "0021_action_runs_target",
        "DROP INDEX action_runs_target;",
    ),
    (
        18,
        "0018_incidents",
        "DROP TABLE incident_timeline; DROP TABLE incidents;",
    ),
    (17, "0017_chatops", "DROP TABLE schedule_runs;"),
    (16, "0016_action_runs", "DROP TABLE action_runs;"),
    (
        15,
        "0015_in_flight",
        "ALTER TABLE outbox DROP COLUMN sending_at_ms;",
    ),
    (
        9,
        "0009_approvals",
        "DROP TABLE approval_decisions; DROP TABLE approvals;",
    ),
    (
        8,
        "0008_alert_source_times",
        "ALTER TABLE alerts DROP COLUMN started_at_ms; ALTER TABLE alerts DROP COLUMN first_started_at_ms;
         ALTER TABLE alerts DROP COLUMN ended_at_ms; ALTER TABLE alerts DROP COLUMN last_event_id;",
    ),
    (
        7,
        "0007_groups",
        "DROP TABLE group_alerts; DROP TABLE alert_groups; DROP TABLE route_events;",
    ),
    (6, "0006_message_lookup", "DROP INDEX outbox_sent_message;"),
    (5, "0005_inhibit", "DROP TABLE inhibit_keys;"),
    (
        4,
        "0004_living_alerts",
        "ALTER TABLE alert_posts DROP COLUMN refresh_item_id;",
    ),
    (
        3,
        "0003_alerting",
        "DROP TABLE silences; DROP TABLE silences_version; DROP TABLE alert_actions;",
    ),
    (
        2,
        "0002_coordination",
        "DROP TABLE rate_limits; DROP TABLE leaders; DROP TABLE once_keys; DROP TABLE audit_log;
         DROP TABLE audit_head;",
    ),
];

/// The schema version this binary expects.
const LATEST: i64 = MIGRATIONS[0].0;

/// The newest migration at or below `version`.
fn version_at(version: i64) -> i64 {
    MIGRATIONS
        .iter()
        .map(|m| m.0)
        .find(|v| *v <= version)
        .unwrap_or(1)
}

/// The SQL that takes a database back to `version`: every later migration undone and forgotten by `table`.
fn back_to(version: i64, table: &str) -> String {
    let mut sql: String = MIGRATIONS
        .iter()
        .filter(|m| m.0 > version)
        .map(|m| m.2)
        .collect::<Vec<_>>()
        .join("\n");
    sql.push_str(&format!("\nDELETE FROM {table} WHERE version > {version}"));
    sql
}

/// The names of the migrations after `version`, oldest first.
fn names_after(version: i64) -> Vec<String> {
    let mut names: Vec<String> = MIGRATIONS
        .iter()
        .filter(|m| m.0 > version)
        .map(|m| m.1.to_string())
        .collect();
    names.reverse();
    names
}

async fn a_version_1_database_is_refused_then_upgraded_in_place(ctx: Ctx) {
    let no_migrate = StoreOptions {
        migrate: false,
        ..StoreOptions::default()
    };
    // What the previous release left: schema version 1 with data in it.
    ctx.store
        .ingest(vec![event(
            "old",
            T0,
            vec![item("A", "chat.postMessage", 1)],
        )])
        .await
        .expect("ingest");
    ctx.exec(&back_to(1, "_sqlx_migrations")).await;
    match open(&ctx.url, &no_migrate).await {
        Err(StoreError::SchemaMismatch {
            db: 1,
            binary: LATEST,
            fix,
        }) => {
            assert!(fix.contains("sluice migrate"), "{fix}")
        }
        other => panic!(
            "expected SchemaMismatch, got {:?}",
            other.map(|s| s.backend())
        ),
    }
    let report = migrate(&ctx.url).await.expect("migrate");
    assert_eq!((report.from, report.to), (1, LATEST));
    assert_eq!(report.applied, names_after(1));
    let s = open(&ctx.url, &no_migrate).await.expect("open upgraded");
    assert!(
        s.event("old").await.expect("event()").is_some(),
        "data survives the upgrade"
    );
    assert!(s.first_time("k", T0, 1_000).await.expect("first_time"));
    assert_eq!(
        s.record_audit(audit_entry(1, "ok"))
            .await
            .expect("record")
            .id,
        1
    );
    assert_eq!(s.silences_version().await.expect("version"), 0);
    assert!(matches!(
        s.record_alert_action("old", "ack", "U1", T0).await,
        Ok(AckOutcome::Recorded)
    ));
    assert_eq!(status(&s, "old").await.actions.len(), 1);
}

/// Releases before sqlx ran the migrations recorded the schema version in `sluice_schema_migrations`. Such a database
/// opens as it did when it is up to date, is refused with the fix when it is behind, and `sluice migrate` carries it
/// on (its versions move into `_sqlx_migrations`).
async fn a_database_migrated_by_the_old_runner_opens_and_migrates_on(ctx: Ctx) {
    let no_migrate = StoreOptions {
        migrate: false,
        ..StoreOptions::default()
    };
    ctx.store
        .ingest(vec![event(
            "old-runner",
            T0,
            vec![item("A", "chat.postMessage", 1)],
        )])
        .await
        .expect("ingest");
    // What the old runner left: its own table with every version, no `_sqlx_migrations`.
    ctx.exec(
        "CREATE TABLE sluice_schema_migrations (
             version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL);
         INSERT INTO sluice_schema_migrations (version, name, applied_at_ms)
             SELECT version, description, 0 FROM _sqlx_migrations;
         DROP TABLE _sqlx_migrations",
    )
    .await;
    let s = open(&ctx.url, &no_migrate)
        .await
        .expect("an up-to-date database of the old runner opens");
    assert!(s.event("old-runner").await.expect("event()").is_some());
    drop(s);
    // One migration behind (the newest not applied), as the old runner would have left it.
    let previous = version_at(LATEST - 1);
    ctx.exec(&back_to(previous, "sluice_schema_migrations"))
        .await;
    match open(&ctx.url, &no_migrate).await {
        Err(StoreError::SchemaMismatch { db, binary, fix }) => {
            assert_eq!((db, binary), (previous, LATEST));
            assert!(fix.contains("sluice migrate"), "{fix}")
        }
        other => panic!(
            "expected SchemaMismatch, got {:?}",
            other.map(|s| s.backend())
        ),
    }
    let report = migrate(&ctx.url).await.expect("migrate");
    assert_eq!(
        (report.from, report.to, report.applied),
        (previous, LATEST, names_after(previous))
    );
    assert_eq!(
        ctx.count("SELECT COUNT(*) FROM _sqlx_migrations").await,
        MIGRATIONS.len() as i64 + 1
    );
    let s = open(&ctx.url, &no_migrate).await.expect("open migrated");
    assert!(s.event("old-runner").await.expect("event()").is_some());
    let again = migrate(&ctx.url).await.expect("migrate twice");
    assert_eq!((again.from, again.applied.len()), (LATEST, 0));
}

async fn a_version_2_database_is_upgraded_by_0003_with_its_data(ctx: Ctx) {
    ctx.store
        .ingest(vec![event(
            "v2",
            T0,
            vec![item("A", "chat.postMessage", 1)],
        )])
        .await
        .expect("ingest");
    ctx.store
        .record_audit(audit_entry(1, "ok"))
        .await
        .expect("record");
    ctx.exec(&back_to(2, "_sqlx_migrations")).await;
    let report = migrate(&ctx.url).await.expect("migrate");
    assert_eq!(
        (report.from, report.to, report.applied),
        (2, LATEST, names_after(2))
    );
    let s = ctx.replica().await;
    let old = status(&s, "v2").await;
    assert_eq!((old.deliveries.len(), old.actions.len()), (1, 0));
    assert_eq!(s.verify_audit().await.expect("verify"), None);
    assert_eq!(s.silences_version().await.expect("version"), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Silences, suppression, alert actions

fn matcher(name: &str, op: MatchOp, value: &str) -> SilenceMatcher {
    SilenceMatcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

fn silence(starts_at_ms: i64, ends_at_ms: i64, comment: &str) -> NewSilence {
    NewSilence {
        matchers: vec![
            matcher("service", MatchOp::Eq, "db"),
            matcher("environment", MatchOp::NotEq, "dev"),
            matcher("team", MatchOp::Regex, "sre|dba"),
            matcher("severity", MatchOp::NotRegex, "info|debug"),
        ],
        starts_at_ms,
        ends_at_ms,
        author: "U_ANN".into(),
        comment: comment.into(),
    }
}

async fn comments(s: &Arc<dyn Store>, include_expired: bool, now: i64) -> Vec<String> {
    s.silences(include_expired, now)
        .await
        .expect("silences")
        .into_iter()
        .map(|s| s.comment)
        .collect()
}

async fn silences_list_pending_active_and_expired_and_bump_the_version(ctx: Ctx) {
    let s = &ctx.store;
    let other = ctx.replica().await;
    let v0 = s.silences_version().await.expect("version");
    let active = s
        .create_silence(silence(T0 - 1_000, T0 + 10_000, "active"), T0)
        .await
        .expect("create");
    let pending = s
        .create_silence(silence(T0 + 5_000, T0 + 20_000, "pending"), T0 + 1)
        .await
        .expect("create");
    let short = s
        .create_silence(silence(T0 - 1_000, T0 + 1_000, "short"), T0 + 2)
        .await
        .expect("create");
    assert_eq!(
        other.silences_version().await.expect("version"),
        v0 + 3,
        "every create bumps the version, seen by every replica"
    );
    assert!(
        active.id.starts_with("sil_") && active.id.len() == 36,
        "{}",
        active.id
    );
    assert_eq!(
        BTreeSet::from([&active.id, &pending.id, &short.id]).len(),
        3,
        "ids are unique"
    );
    assert_eq!(
        (
            active.created_at_ms,
            active.expired_at_ms,
            active.author.as_str()
        ),
        (T0, None, "U_ANN")
    );

    // What a replica reads back is exactly what was created, matchers and all.
    let listed = other.silences(false, T0).await.expect("silences");
    assert_eq!(listed, [active.clone(), pending.clone(), short.clone()]);
    let states: Vec<_> = listed.iter().map(|x| x.state(T0)).collect();
    assert_eq!(
        states,
        [
            SilenceState::Active,
            SilenceState::Pending,
            SilenceState::Active
        ]
    );

    // Time passing ends `short` without any write: it leaves the default listing, the version stays.
    let table = [
        (T0 + 999, false, vec!["active", "pending", "short"]),
        (T0 + 1_000, false, vec!["active", "pending"]),
        (T0 + 1_000, true, vec!["active", "pending", "short"]),
        (T0 + 10_000, false, vec!["pending"]),
        (T0 + 20_000, false, vec![]),
        (T0 + 20_000, true, vec!["active", "pending", "short"]),
    ];
    for (now, include_expired, want) in table {
        assert_eq!(
            comments(s, include_expired, now).await,
            want,
            "at T0+{}, include_expired={include_expired}",
            now - T0
        );
    }
    assert_eq!(s.silences_version().await.expect("version"), v0 + 3);

    // Expiring early: once, from any replica; unknown or already-ended silences are refused.
    let now = T0 + 3_000;
    assert!(other.expire_silence(&active.id, now).await.expect("expire"));
    assert_eq!(s.silences_version().await.expect("version"), v0 + 4);
    assert!(!s.expire_silence(&active.id, now + 1).await.expect("expire"));
    assert!(!s.expire_silence(&short.id, now).await.expect("expire"));
    assert!(!s.expire_silence("sil_nope", now).await.expect("expire"));
    assert_eq!(
        s.silences_version().await.expect("version"),
        v0 + 4,
        "refused expiries change nothing"
    );
    // A pending silence can be called off before it starts.
    assert!(s.expire_silence(&pending.id, now).await.expect("expire"));
    assert_eq!(s.silences_version().await.expect("version"), v0 + 5);

    assert_eq!(comments(s, false, now).await, Vec::<String>::new());
    let all = s.silences(true, now).await.expect("silences");
    let expired: Vec<_> = all
        .iter()
        .map(|x| (x.comment.as_str(), x.expired_at_ms, x.state(now)))
        .collect();
    assert_eq!(
        expired,
        [
            ("active", Some(now), SilenceState::Expired),
            ("pending", Some(now), SilenceState::Expired),
            ("short", None, SilenceState::Expired),
        ]
    );
}

async fn silences_that_mute_everything_or_nothing_are_refused(ctx: Ctx) {
    let s = &ctx.store;
    let v0 = s.silences_version().await.expect("version");
    let cases = [
        (
            NewSilence {
                matchers: vec![],
                ..silence(T0, T0 + 1_000, "no matchers")
            },
            "at least one matcher",
        ),
        (silence(T0, T0, "empty window"), "end after it starts"),
        (silence(T0 + 1_000, T0, "backwards"), "end after it starts"),
    ];
    for (bad, why) in cases {
        let comment = bad.comment.clone();
        match s.create_silence(bad, T0).await {
            Err(StoreError::Other(m)) => assert!(m.contains(why), "{comment}: {m}"),
            other => panic!("{comment}: expected a refusal, got {other:?}"),
        }
    }
    assert!(s.silences(true, T0).await.expect("silences").is_empty());
    assert_eq!(s.silences_version().await.expect("version"), v0);
}

async fn prune_removes_old_silences_and_actions_of_pruned_events(ctx: Ctx) {
    let s = &ctx.store;
    let ended = s
        .create_silence(silence(T0, T0 + 1_000, "ended"), T0)
        .await
        .expect("create");
    let expired = s
        .create_silence(silence(T0, T0 + 100_000, "expired early"), T0 + 1)
        .await
        .expect("create");
    s.create_silence(silence(T0, T0 + 100_000, "running"), T0 + 2)
        .await
        .expect("create");
    assert!(s
        .expire_silence(&expired.id, T0 + 3_000)
        .await
        .expect("expire"));
    // An event with nothing to send (pruned with its action) and an open alert (kept with its action).
    s.ingest(vec![
        NewEvent {
            fate: Fate::Unrouted,
            ..event("gone", T0, vec![])
        },
        alert("open", T0, "k-open", false, &["A"]),
    ])
    .await
    .expect("ingest");
    for id in ["gone", "open"] {
        assert_eq!(
            s.record_alert_action(id, "ack", "U1", T0)
                .await
                .expect("ack"),
            AckOutcome::Recorded
        );
    }
    let v = s.silences_version().await.expect("version");

    // The event `gone` and its action go as soon as the cut-off passes them; `ended` ended exactly at it: kept.
    assert_eq!(s.prune(T0 + 1_000).await.expect("prune"), 2);
    assert_eq!(s.event("gone").await.expect("event()"), None);
    assert_eq!(s.alert_actions("gone").await.expect("actions"), []);
    assert_eq!(
        s.alert_actions("open").await.expect("actions"),
        [("ack".to_string(), "U1".to_string(), T0)],
        "an event that is kept keeps its actions"
    );
    assert_eq!(
        comments(s, true, T0).await,
        ["ended", "expired early", "running"]
    );
    assert_eq!(s.silences_version().await.expect("version"), v);
    assert_eq!(s.prune(T0 + 1_001).await.expect("prune"), 1);
    assert_eq!(comments(s, true, T0).await, ["expired early", "running"]);
    assert!(
        s.silences_version().await.expect("version") > v,
        "a cache sees the listing changed"
    );
    // Expired early at T0+3s: pruned by that time, not by its planned end.
    assert_eq!(s.prune(T0 + 3_001).await.expect("prune"), 1);
    assert_eq!(comments(s, true, T0).await, ["running"]);
    assert_eq!(ended.comment, "ended");
}

async fn suppressed_events_keep_their_fate_and_post_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let muted = |id: &str, at: i64, by: &str| NewEvent {
        fate: Fate::Suppressed { by: by.into() },
        ..alert(id, at, "k-db", false, &["A"])
    };
    s.ingest(vec![alert("first", T0, "k-db", false, &["A"])])
        .await
        .expect("ingest");
    // A suppressed duplicate, and a suppressed plain event that still carries items (via the multi-row path):
    // neither posts, neither merges.
    s.ingest(vec![
        muted("quiet", T0 + 1, "silence:sil_0123"),
        NewEvent {
            fate: Fate::Suppressed {
                by: "inhibit:db-down".into(),
            },
            ..event("inhibited", T0 + 1, vec![item("B", "chat.postMessage", 1)])
        },
    ])
    .await
    .expect("ingest");
    for (id, by) in [
        ("quiet", "silence:sil_0123"),
        ("inhibited", "inhibit:db-down"),
    ] {
        let st = status(s, id).await;
        assert_eq!(st.fate, Fate::Suppressed { by: by.into() }, "{id}");
        assert!(st.deliveries.is_empty(), "{id} enqueued nothing");
    }
    assert!(s
        .lane_items("T1:B", 10)
        .await
        .expect("lane_items")
        .is_empty());
    assert_eq!(s.lane_items("T1:A", 10).await.expect("lane_items").len(), 1);
    // The alert did not count the muted duplicate: the next real one is the second.
    s.ingest(vec![alert("second", T0 + 2, "k-db", false, &["A"])])
        .await
        .expect("ingest");
    assert_eq!(
        status(s, "second").await.fate,
        Fate::Merged {
            into: "first".into(),
            count: 2
        }
    );
    // A suppressed resolve does not close the alert either.
    s.ingest(vec![NewEvent {
        fate: Fate::Suppressed {
            by: "silence:sil_0123".into(),
        },
        ..alert("muted-resolve", T0 + 3, "k-db", true, &["A"])
    }])
    .await
    .expect("ingest");
    s.ingest(vec![alert("third", T0 + 4, "k-db", false, &["A"])])
        .await
        .expect("ingest");
    assert!(matches!(
        status(s, "third").await.fate,
        Fate::Merged { count: 3, .. }
    ));
}

async fn one_click_wins_across_replicas(ctx: Ctx) {
    ctx.store
        .ingest(vec![alert("a", T0, "k-a", false, &["A"])])
        .await
        .expect("ingest");
    let replicas = [ctx.store.clone(), ctx.replica().await, ctx.replica().await];
    for action in ["ack", "resolve"] {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = replicas[i % replicas.len()].clone();
            tasks.push(tokio::spawn(async move {
                let actor = format!("U{i}");
                let outcome = s
                    .record_alert_action("a", action, &actor, T0 + i as i64)
                    .await
                    .expect("record_alert_action");
                (actor, T0 + i as i64, outcome)
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.expect("join"));
        }
        let winners: Vec<_> = outcomes
            .iter()
            .filter(|(_, _, o)| *o == AckOutcome::Recorded)
            .map(|(actor, at, _)| (actor.clone(), *at))
            .collect();
        assert_eq!(winners.len(), 1, "{action}: exactly one click is recorded");
        let (winner, won_at) = winners[0].clone();
        for (actor, _, o) in &outcomes {
            if *actor != winner {
                assert_eq!(
                    *o,
                    AckOutcome::AlreadyBy {
                        actor: winner.clone(),
                        at_ms: won_at
                    },
                    "{action}: {actor} learns who won"
                );
            }
        }
        let recorded = ctx.store.alert_actions("a").await.expect("actions");
        assert!(
            recorded.contains(&(action.to_string(), winner.clone(), won_at)),
            "{recorded:?}"
        );
    }
    assert_eq!(
        ctx.store.alert_actions("a").await.expect("actions").len(),
        2
    );
    // Clicking again later, even by the winner, changes nothing.
    let again = ctx
        .store
        .record_alert_action("a", "ack", "U_LATE", T0 + 60_000)
        .await
        .expect("record");
    assert!(matches!(again, AckOutcome::AlreadyBy { at_ms, .. } if at_ms < T0 + 8));
}

async fn alert_actions_are_shared_by_the_alert_and_its_duplicates(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![
        alert("root", T0, "k-r", false, &["A"]),
        alert("dup", T0 + 1, "k-r", false, &["A"]),
        event("plain", T0, vec![]),
    ])
    .await
    .expect("ingest");
    assert!(status(s, "root").await.actions.is_empty());
    assert_eq!(
        s.record_alert_action("dup", "ack", "U_BOB", T0 + 10)
            .await
            .expect("ack"),
        AckOutcome::Recorded,
        "an ack from the card of a duplicate acks the alert"
    );
    assert_eq!(
        s.record_alert_action("root", "ack", "U_ANN", T0 + 11)
            .await
            .expect("ack"),
        AckOutcome::AlreadyBy {
            actor: "U_BOB".into(),
            at_ms: T0 + 10
        }
    );
    s.ingest(vec![alert("fixed", T0 + 20, "k-r", true, &["A"])])
        .await
        .expect("ingest");
    assert_eq!(
        s.record_alert_action("fixed", "resolve", "U_ANN", T0 + 30)
            .await
            .expect("resolve"),
        AckOutcome::Recorded
    );
    let want = vec![
        AlertAction {
            action: "ack".into(),
            actor: "U_BOB".into(),
            at_ms: T0 + 10,
        },
        AlertAction {
            action: "resolve".into(),
            actor: "U_ANN".into(),
            at_ms: T0 + 30,
        },
    ];
    for id in ["root", "dup", "fixed"] {
        assert_eq!(status(s, id).await.actions, want, "event({id})");
        assert_eq!(
            s.alert_actions(id).await.expect("actions"),
            [
                ("ack".to_string(), "U_BOB".to_string(), T0 + 10),
                ("resolve".to_string(), "U_ANN".to_string(), T0 + 30)
            ],
            "alert_actions({id})"
        );
    }
    // A plain event is its own alert; an unknown one cannot be acted on.
    assert!(status(s, "plain").await.actions.is_empty());
    assert!(matches!(
        s.record_alert_action("ghost", "ack", "U1", T0).await,
        Err(StoreError::Conflict(m)) if m.contains("ghost")
    ));
    assert!(s.alert_actions("ghost").await.expect("actions").is_empty());
    let json = serde_json::to_value(status(s, "dup").await).expect("serialise");
    assert_eq!(
        json["actions"][0],
        json!({ "action": "ack", "actor": "U_BOB", "at_ms": T0 + 10 })
    );
}

async fn message_of_finds_the_cards_of_an_event_and_of_its_alert(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![alert("m1", T0, "k-m", false, &["A", "B"])])
        .await
        .expect("ingest");
    assert!(
        s.message_of("m1").await.expect("message_of").is_empty(),
        "nothing sent yet"
    );
    s.mark_sent(head(s, "T1:A").await.id, "CA", "100.1", T0 + 1)
        .await
        .expect("mark_sent");
    let card_a = RefSent {
        channel: "CA".into(),
        ts: "100.1".into(),
    };
    assert_eq!(
        s.message_of("m1").await.expect("message_of"),
        std::slice::from_ref(&card_a)
    );
    s.mark_sent(head(s, "T1:B").await.id, "CB", "200.2", T0 + 2)
        .await
        .expect("mark_sent");
    let card_b = RefSent {
        channel: "CB".into(),
        ts: "200.2".into(),
    };
    assert_eq!(
        s.message_of("m1").await.expect("message_of"),
        [card_a.clone(), card_b.clone()]
    );

    // A duplicate's own items are updates of those cards: asking about it answers with the alert's cards, and its
    // sent updates (and threaded replies) are not cards.
    let mut dup = alert("m2", T0 + 3, "k-m", false, &["A"]);
    if let Some(d) = dup.dedup.as_mut() {
        d.on_open.push(NewOutboxItem {
            ref_post: true,
            ..item("A", "chat.postMessage", 9)
        });
    }
    s.ingest(vec![dup]).await.expect("ingest");
    for _ in 0..2 {
        s.mark_sent(head(s, "T1:A").await.id, "CA", "100.9", T0 + 4)
            .await
            .expect("mark_sent");
    }
    assert_eq!(status(s, "m2").await.deliveries.len(), 2);
    assert_eq!(
        s.message_of("m2").await.expect("message_of"),
        [card_a.clone(), card_b.clone()]
    );
    assert_eq!(
        s.message_of("m1").await.expect("message_of"),
        [card_a, card_b]
    );

    // A plain event: only its posts, not its other calls; a dead post is no card.
    s.ingest(vec![event(
        "p",
        T0,
        vec![
            item("C", "chat.postMessage", 1),
            item("C", "reactions.add", 2),
            item("D", "chat.postMessage", 3),
        ],
    )])
    .await
    .expect("ingest");
    for _ in 0..2 {
        s.mark_sent(head(s, "T1:C").await.id, "CC", "300.3", T0 + 5)
            .await
            .expect("mark_sent");
    }
    s.mark_dead(head(s, "T1:D").await.id, "channel_not_found", T0 + 5)
        .await
        .expect("mark_dead");
    assert_eq!(
        s.message_of("p").await.expect("message_of"),
        [RefSent {
            channel: "CC".into(),
            ts: "300.3".into()
        }]
    );
    assert!(s.message_of("ghost").await.expect("message_of").is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Living alert messages

fn reply(channel: &str) -> NewOutboxItem {
    NewOutboxItem {
        ref_post: true,
        ..item(channel, "chat.postMessage", 7)
    }
}

/// An alert event as the pipeline makes it for living messages: a coalesced card refresh, a thread reply on
/// resolve and on re-fire, reopening within the window.
fn living(id: &str, at: i64, resolves: bool) -> NewEvent {
    let mut e = alert(id, at, "living", resolves, &["C1"]);
    if let Some(d) = e.dedup.as_mut() {
        d.on_open = if resolves { vec![reply("C1")] } else { vec![] };
        d.refresh = vec![update("C1")];
        d.reopen_window_ms = WINDOW;
        d.on_reopen = vec![reply("C1")];
    }
    e
}

/// Issue 15, defect 4: Alertmanager re-sends every firing alert at each repeat interval and when its group changes,
/// with the same `startsAt`. A re-send is not a new occurrence (the count stays), even after the dedup window; a new
/// `startsAt` is. The card's duration is the source's: from the first `startsAt` to the resolve's `endsAt`.
async fn regression_alertmanager_resends_of_the_same_alert_are_not_new_occurrences(ctx: Ctx) {
    let s = &ctx.store;
    let am = |id: &str, at: i64, occurred: i64, resolves: bool| {
        let mut e = living(id, at, resolves);
        if let Some(d) = e.dedup.as_mut() {
            d.occurred_at_ms = Some(occurred);
        }
        e
    };
    let starts = T0 - 840_000; // fired 14 minutes before Sluice first heard of it
    s.ingest(vec![am("r0", T0, starts, false)])
        .await
        .expect("ingest");
    s.ingest(vec![am("r1", T0 + 1_000, starts, false)])
        .await
        .expect("ingest");
    // Past the dedup window: still the same occurrence, re-sent at the repeat interval.
    s.ingest(vec![am("r2", T0 + 1_000 + WINDOW + 1, starts, false)])
        .await
        .expect("ingest");
    for id in ["r1", "r2"] {
        assert_eq!(
            status(s, id).await.fate,
            Fate::Merged {
                into: "r0".into(),
                count: 1
            },
            "{id} is a re-send"
        );
    }
    // It resolved and fired again (a new startsAt): a second occurrence of the same alert, on the same card.
    let again = T0 + 2 * WINDOW;
    s.ingest(vec![am("r3", again, again - 5_000, false)])
        .await
        .expect("ingest");
    assert_eq!(
        status(s, "r3").await.fate,
        Fate::Merged {
            into: "r0".into(),
            count: 2
        }
    );
    let ends = again + 30_000;
    s.ingest(vec![am("r4", again + 60_000, ends, true)])
        .await
        .expect("ingest");
    let post = head(s, "T1:C1").await;
    s.mark_sent(post.id, "C1", "1.1", again + 61_000)
        .await
        .expect("mark_sent");
    let c = card(s, head(s, "T1:C1").await.id).await;
    assert_eq!(c.count, 2);
    assert_eq!(
        (c.started_at_ms, c.ended_at_ms, c.closed_at_ms),
        (Some(starts), Some(ends), Some(again + 60_000)),
        "the source's start and end are kept for the card's duration"
    );
}

/// Issue 15, defect 1: a deployment reported running and then failed (GitLab `running` → `failed`, GitHub
/// `in_progress` → `failure`) is one card; when it is redrawn it must read the final state, so the store hands the
/// card the latest event of the alert along with its first.
async fn regression_a_failed_deployment_card_shows_its_final_state(ctx: Ctx) {
    let s = &ctx.store;
    let deploy = |id: &str, at: i64, state: &str, resolves: bool| {
        let mut e = alert(id, at, "deploy-42", resolves, &["C1"]);
        e.body =
            EventBody::of(&json!({ "title": format!("Deployment {state}"), "kind": "deployment" }));
        if let Some(d) = e.dedup.as_mut() {
            d.on_open = vec![];
            d.refresh = vec![update("C1")];
        }
        e
    };
    s.ingest(vec![deploy("d0", T0, "running", false)])
        .await
        .expect("ingest");
    s.mark_sent(head(s, "T1:C1").await.id, "C1", "1.1", T0 + 1)
        .await
        .expect("mark_sent");
    s.ingest(vec![deploy("d1", T0 + 60_000, "failed", true)])
        .await
        .expect("ingest");
    let c = card(s, head(s, "T1:C1").await.id).await;
    assert_eq!(
        c.body["title"], "Deployment running",
        "the first event stays the alert's"
    );
    assert_eq!(
        c.latest.as_ref().map(|b| b["title"].clone()),
        Some(json!("Deployment failed")),
        "the card is given the final state"
    );
    assert_eq!(c.closed_at_ms, Some(T0 + 60_000));
}

fn methods(st: &EventStatus) -> Vec<&str> {
    st.deliveries.iter().map(|d| d.method.as_str()).collect()
}

async fn card(s: &Arc<dyn Store>, item_id: i64) -> AlertCard {
    s.alert_card(item_id)
        .await
        .expect("alert_card")
        .expect("the item belongs to an alert")
}

async fn duplicates_coalesce_into_one_refresh_that_reads_the_alert_at_send_time(ctx: Ctx) {
    let s = &ctx.store;
    for i in 0..14 {
        s.ingest(vec![living(&format!("l{i}"), T0 + i, false)])
            .await
            .expect("ingest");
    }
    assert_eq!(
        status(s, "l13").await.fate,
        Fate::Merged {
            into: "l0".into(),
            count: 14
        }
    );
    assert_eq!(methods(&status(s, "l1").await), ["chat.update"]);
    assert!(
        methods(&status(s, "l2").await).is_empty(),
        "coalesced into l1's refresh"
    );
    let items = s.lane_items("T1:C1", 100).await.expect("lane_items");
    assert_eq!(
        items.iter().map(|i| i.method.as_str()).collect::<Vec<_>>(),
        ["chat.postMessage", "chat.update"],
        "14 duplicates, one card and one pending refresh"
    );
    // The first card, drawn while it is sent, reads the alert as it stands; the refresh stays pending.
    assert_eq!(card(s, items[0].id).await.count, 14);
    s.ingest(vec![living("l13b", T0 + 14, false)])
        .await
        .expect("ingest");
    assert!(
        methods(&status(s, "l13b").await).is_empty(),
        "still coalesced into l1's refresh after the post was read"
    );
    s.mark_sent(items[0].id, "C1", "1.1", T0 + 20)
        .await
        .expect("mark_sent");
    let refresh = head(s, "T1:C1").await;
    let c = card(s, refresh.id).await;
    assert_eq!(
        (
            c.first_event_id.as_str(),
            c.count,
            c.first_seen_ms,
            c.last_seen_ms,
            c.closed_at_ms
        ),
        ("l0", 15, T0, T0 + 14, None)
    );
    assert_eq!(c.body["title"], "event l0");

    // Once the dispatcher has read the alert for it, a new duplicate needs a refresh of its own; the next ones
    // coalesce into that.
    for (id, at) in [("l14", T0 + 30), ("l15", T0 + 31)] {
        s.ingest(vec![living(id, at, false)]).await.expect("ingest");
    }
    assert_eq!(methods(&status(s, "l14").await), ["chat.update"]);
    assert!(methods(&status(s, "l15").await).is_empty());
    s.mark_sent(refresh.id, "C1", "1.1", T0 + 40)
        .await
        .expect("mark_sent");
    let second = head(s, "T1:C1").await;
    assert_eq!(card(s, second.id).await.count, 17);
    // Reading again (a retry) changes nothing.
    assert_eq!(card(s, second.id).await.count, 17);

    // The reference survives a fresh open of the database (a restart).
    let again = ctx.replica().await;
    assert_eq!(card(&again, second.id).await.count, 17);
}

async fn a_resolve_refreshes_and_replies_and_a_refire_reopens_the_alert(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![living("f0", T0, false), living("f1", T0 + 1, false)])
        .await
        .expect("ingest");
    for i in s.lane_items("T1:C1", 10).await.expect("lane_items") {
        s.mark_sent(i.id, "C1", "9.9", T0 + 2)
            .await
            .expect("mark_sent");
    }
    s.ingest(vec![living("f2", T0 + 60_000, true)])
        .await
        .expect("ingest");
    let f2 = status(s, "f2").await;
    assert_eq!(f2.fate, Fate::Resolved { into: "f0".into() });
    assert_eq!(methods(&f2), ["chat.postMessage", "chat.update"]);
    let items = s.lane_items("T1:C1", 10).await.expect("lane_items");
    let ts = Some(RefSent {
        channel: "C1".into(),
        ts: "9.9".into(),
    });
    assert!(
        items.iter().all(|i| i.ref_sent == ts),
        "reply and refresh refer to the card"
    );
    let c = card(s, items[0].id).await;
    assert_eq!((c.count, c.closed_at_ms), (2, Some(T0 + 60_000)));
    for i in items {
        s.mark_sent(i.id, "C1", "9.10", T0 + 60_001)
            .await
            .expect("mark_sent");
    }

    // Firing again within the window: the same alert, reopened, its thread told.
    s.ingest(vec![living("f3", T0 + 90_000, false)])
        .await
        .expect("ingest");
    let f3 = status(s, "f3").await;
    assert_eq!(
        f3.fate,
        Fate::Merged {
            into: "f0".into(),
            count: 3
        }
    );
    assert_eq!(methods(&f3), ["chat.postMessage", "chat.update"]);
    let items = s.lane_items("T1:C1", 10).await.expect("lane_items");
    let c = card(s, items[1].id).await;
    assert_eq!(
        (c.count, c.closed_at_ms, c.last_seen_ms),
        (3, None, T0 + 90_000)
    );
    for i in items {
        s.mark_sent(i.id, "C1", "9.11", T0 + 90_001)
            .await
            .expect("mark_sent");
    }

    // Resolved, then quiet for longer than the window: a new firing is a new alert with a card of its own.
    s.ingest(vec![living("f4", T0 + 100_000, true)])
        .await
        .expect("ingest");
    s.ingest(vec![living("f5", T0 + 100_000 + WINDOW + 1, false)])
        .await
        .expect("ingest");
    let f5 = status(s, "f5").await;
    assert_eq!(
        (f5.fate.clone(), methods(&f5)),
        (
            Fate::Queued {
                rules: vec!["default".into()]
            },
            vec!["chat.postMessage"]
        )
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Actions from Slack: which card a message is, and card refreshes that are not duplicates

async fn event_of_message_finds_the_event_a_card_belongs_to(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![alert("c1", T0, "k-c", false, &["A", "B"])])
        .await
        .expect("ingest");
    assert_eq!(
        s.event_of_message("CA", "100.1").await.expect("lookup"),
        None,
        "nothing sent yet"
    );
    s.mark_sent(head(s, "T1:A").await.id, "CA", "100.1", T0 + 1)
        .await
        .expect("mark_sent");
    s.mark_sent(head(s, "T1:B").await.id, "CB", "200.2", T0 + 1)
        .await
        .expect("mark_sent");
    for (channel, ts) in [("CA", "100.1"), ("CB", "200.2")] {
        assert_eq!(
            s.event_of_message(channel, ts).await.expect("lookup"),
            Some("c1".to_string()),
            "{channel}:{ts}"
        );
    }
    // The same ts in another channel is another message.
    assert_eq!(
        s.event_of_message("CB", "100.1").await.expect("lookup"),
        None
    );

    // A duplicate's update keeps the card's ts, and its thread reply has a ts of its own: the card is still the
    // first event's, and the reply is nobody's card.
    let mut dup = alert("c2", T0 + 2, "k-c", false, &["A"]);
    if let Some(d) = dup.dedup.as_mut() {
        d.on_open.push(reply("A"));
    }
    s.ingest(vec![dup]).await.expect("ingest");
    s.mark_sent(head(s, "T1:A").await.id, "CA", "100.1", T0 + 3)
        .await
        .expect("mark_sent update");
    s.mark_sent(head(s, "T1:A").await.id, "CA", "100.5", T0 + 3)
        .await
        .expect("mark_sent reply");
    assert_eq!(
        s.event_of_message("CA", "100.1").await.expect("lookup"),
        Some("c1".to_string())
    );
    assert_eq!(
        s.event_of_message("CA", "100.5").await.expect("lookup"),
        None
    );

    // A post that died never became a card.
    s.ingest(vec![event("d", T0, vec![item("D", "chat.postMessage", 1)])])
        .await
        .expect("ingest");
    s.mark_dead(head(s, "T1:D").await.id, "channel_not_found", T0 + 4)
        .await
        .expect("mark_dead");
    assert_eq!(s.event_of_message("D", "").await.expect("lookup"), None);

    // It survives a fresh open (a reaction after a restart).
    let again = ctx.replica().await;
    assert_eq!(
        again.event_of_message("CB", "200.2").await.expect("lookup"),
        Some("c1".to_string())
    );
}

/// What an action from Slack enqueues: its own calls (here a thread reply) and a coalesced card refresh.
fn follow_up(id: &str, at: i64, alert_of: &str, channels: &[&str]) -> NewEvent {
    NewEvent {
        source: "slack".into(),
        follow_up: Some(FollowUp {
            alert_of: alert_of.into(),
            refresh: channels.iter().map(|c| update(c)).collect(),
        }),
        ..event(id, at, vec![])
    }
}

async fn a_follow_up_refreshes_the_alert_card_under_the_coalescing_rule(ctx: Ctx) {
    let s = &ctx.store;
    // An alert merged 14 times whose card and refresh went out.
    for i in 0..14 {
        s.ingest(vec![living(&format!("a{i}"), T0 + i, false)])
            .await
            .expect("ingest");
    }
    for i in s.lane_items("T1:C1", 10).await.expect("lane_items") {
        if i.method == "chat.update" {
            card(s, i.id).await;
        }
        s.mark_sent(i.id, "C1", "5.5", T0 + 20)
            .await
            .expect("mark_sent");
    }

    // An acknowledgement on the card, named by a duplicate's id: its refresh refers to the card and reads the
    // whole alert; a lane where the alert has no card gets nothing.
    s.ingest(vec![follow_up("act1", T0 + 30, "a7", &["C1", "C9"])])
        .await
        .expect("ingest");
    let act1 = status(s, "act1").await;
    assert_eq!(methods(&act1), ["chat.update"], "no refresh for lane C9");
    assert_eq!(
        act1.fate,
        Fate::Queued {
            rules: vec!["default".into()]
        }
    );
    let refresh = head(s, "T1:C1").await;
    assert_eq!(
        refresh.ref_sent,
        Some(RefSent {
            channel: "C1".into(),
            ts: "5.5".into()
        })
    );
    assert!(s
        .lane_items("T1:C9", 10)
        .await
        .expect("lane_items")
        .is_empty());

    // While it waits unread, another action and a duplicate coalesce into it…
    s.ingest(vec![follow_up("act2", T0 + 31, "a0", &["C1"])])
        .await
        .expect("ingest");
    s.ingest(vec![living("a14", T0 + 32, false)])
        .await
        .expect("ingest");
    assert!(methods(&status(s, "act2").await).is_empty());
    assert!(methods(&status(s, "a14").await).is_empty());
    assert_eq!(
        s.lane_items("T1:C1", 10).await.expect("lane_items").len(),
        1,
        "one pending refresh for the card"
    );
    // …and it shows them all when it is read.
    let c = card(s, refresh.id).await;
    assert_eq!((c.first_event_id.as_str(), c.count), ("a0", 15));

    // Once read, the next action needs a refresh of its own, and a duplicate then coalesces into that one.
    s.ingest(vec![follow_up("act3", T0 + 40, "a0", &["C1"])])
        .await
        .expect("ingest");
    assert_eq!(methods(&status(s, "act3").await), ["chat.update"]);
    s.ingest(vec![living("a15", T0 + 41, false)])
        .await
        .expect("ingest");
    assert!(methods(&status(s, "a15").await).is_empty());

    // An alert that is not (or no longer) stored: the event is kept as given, nothing is enqueued.
    s.ingest(vec![follow_up("act4", T0 + 50, "ghost", &["C1"])])
        .await
        .expect("ingest");
    let act4 = status(s, "act4").await;
    assert!(act4.deliveries.is_empty());
    // A follow-up in one batch with other events, plain and deduplicated, keeps batch order and loses nothing.
    s.ingest(vec![
        event("p1", T0 + 60, vec![item("C2", "chat.postMessage", 1)]),
        follow_up("act5", T0 + 60, "a0", &["C1"]),
        living("a16", T0 + 61, false),
    ])
    .await
    .expect("ingest");
    assert_eq!(methods(&status(s, "p1").await), ["chat.postMessage"]);
    assert!(
        methods(&status(s, "act5").await).is_empty(),
        "act3's refresh is still unread"
    );
    assert_eq!(
        status(s, "a16").await.fate,
        Fate::Merged {
            into: "a0".into(),
            count: 17
        }
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Groups of alerts (noise control)

const WAIT: i64 = 30_000;
const INTERVAL: i64 = 60_000;
const REPEAT: i64 = 3_600_000;

fn join(rule: &str, service: &str) -> GroupJoin {
    GroupJoin {
        key: format!("{rule}|T1:alerts|service={service}"),
        rule: rule.into(),
        lane: "T1:alerts".into(),
        team: "T1".into(),
        channel: "alerts".into(),
        template: "auto".into(),
        labels: vec![("service".into(), service.into())],
        wait_ms: WAIT,
        interval_ms: INTERVAL,
        repeat_ms: REPEAT,
    }
}

/// An alert of `service` on a grouped route: it posts nothing itself.
fn grouped(id: &str, at: i64, key: &str, resolves: bool, service: &str) -> NewEvent {
    NewEvent {
        body: EventBody::of(
            &json!({ "title": format!("alert {key}"), "service": service, "severity": "critical",
                      "status": if resolves { "resolved" } else { "firing" }, "source": "am" }),
        ),
        dedup: Some(Dedup {
            key: key.into(),
            window_ms: WINDOW,
            resolves,
            on_open: vec![],
            refresh: vec![],
            reopen_window_ms: 0,
            on_reopen: vec![],
            groups: vec![join("alerts", service)],
            occurred_at_ms: None,
        }),
        ..event(id, at, vec![])
    }
}

fn due_ids(groups: &[GroupState]) -> Vec<String> {
    groups.iter().map(|g| g.key.clone()).collect()
}

fn flush_of(
    g: &GroupState,
    post: Option<NewOutboxItem>,
    updates: Vec<NewOutboxItem>,
    now: i64,
) -> GroupFlush {
    GroupFlush {
        group_id: g.id,
        version: g.version,
        post,
        updates,
        notified_firing: g.firing,
        next_due_ms: (g.firing > 0).then_some(now + g.repeat_ms),
        digested: false,
    }
}

async fn groups_come_due_after_group_wait_then_group_interval(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![
        grouped("g1", T0, "k1", false, "db"),
        grouped("g2", T0 + 10, "k2", false, "db"),
        grouped("g3", T0 + 20, "k3", false, "api"),
    ])
    .await
    .unwrap();
    let db = join("alerts", "db").key;
    let api = join("alerts", "api").key;
    assert!(
        s.due_groups(T0 + WAIT - 1, 10, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing before group_wait"
    );
    assert_eq!(
        due_ids(&s.due_groups(T0 + WAIT, 10, 10).await.unwrap()),
        vec![db.clone()]
    );
    let due = s.due_groups(T0 + WAIT + 20, 10, 10).await.unwrap();
    assert_eq!(
        due_ids(&due),
        vec![db.clone(), api.clone()],
        "each group waits from its own start"
    );
    let g = &due[0];
    assert_eq!((g.firing, g.resolved, g.events), (2, 0, 2));
    assert_eq!(g.first_event_id, "g1");
    assert_eq!(g.labels, vec![("service".to_string(), "db".to_string())]);
    assert_eq!(g.alerts.len(), 2);
    assert_eq!(g.alerts[0].first_event_id, "g2", "most recently seen first");
    assert_eq!(status(s, "g2").await.groups.len(), 1);
    assert_eq!(
        status(s, "g2").await.groups[0].notified_at_ms,
        None,
        "waiting for group_wait"
    );
    assert!(
        status(s, "g2").await.deliveries.is_empty(),
        "a grouped alert posts nothing itself"
    );

    let now = T0 + WAIT + 20;
    s.flush_group(
        flush_of(g, Some(item("alerts", "chat.postMessage", 1)), vec![], now),
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        due_ids(&s.due_groups(now, 10, 10).await.unwrap()),
        vec![api.clone()]
    );
    let post = head(s, "T1:alerts").await;
    assert_eq!(
        post.event_id.as_deref(),
        Some("g1"),
        "the card belongs to the group's first event"
    );
    s.mark_sent(post.id, "C1", "111.1", now).await.unwrap();
    let st = status(s, "g2").await;
    assert_eq!(st.groups[0].ts.as_deref(), Some("111.1"));
    assert_eq!(st.groups[0].notified_at_ms, Some(now));

    // A duplicate is a change: shown group_interval after the flush, not before.
    s.ingest(vec![grouped("g4", now + 5_000, "k1", false, "db")])
        .await
        .unwrap();
    assert!(!due_ids(&s.due_groups(now + INTERVAL - 1, 10, 10).await.unwrap()).contains(&db));
    let due = s.due_groups(now + INTERVAL, 10, 10).await.unwrap();
    let g = due
        .iter()
        .find(|g| g.key == db)
        .expect("db due at group_interval");
    assert_eq!((g.firing, g.events), (2, 3));
    assert_eq!(
        g.alerts
            .iter()
            .find(|a| a.first_event_id == "g1")
            .unwrap()
            .count,
        2
    );
    let later = now + INTERVAL;
    s.flush_group(flush_of(g, None, vec![update("alerts")], later), later)
        .await
        .unwrap();
    let upd = head(s, "T1:alerts").await;
    assert_eq!(upd.method, "chat.update");
    assert_eq!(
        upd.ref_sent.as_ref().map(|r| r.ts.as_str()),
        Some("111.1"),
        "linked to the card"
    );
    // Nothing changed since: due again only to repeat itself.
    assert!(!due_ids(&s.due_groups(later + REPEAT - 1, 10, 10).await.unwrap()).contains(&db));
    let due = s.due_groups(later + REPEAT, 10, 10).await.unwrap();
    let g = due.iter().find(|g| g.key == db).expect("repeat");
    assert_eq!(g.changed_at_ms, None, "a repeat, not a change");
}

async fn a_change_racing_a_flush_keeps_the_group_due(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![grouped("r1", T0, "k1", false, "db")])
        .await
        .unwrap();
    let now = T0 + WAIT;
    let read = s.due_groups(now, 10, 10).await.unwrap().remove(0);
    // Comes in between the read and the flush.
    s.ingest(vec![grouped("r2", now + 1, "k2", false, "db")])
        .await
        .unwrap();
    s.flush_group(
        flush_of(
            &read,
            Some(item("alerts", "chat.postMessage", 1)),
            vec![],
            now + 2,
        ),
        now + 2,
    )
    .await
    .unwrap();
    assert!(s
        .due_groups(now + 2 + INTERVAL - 1, 10, 10)
        .await
        .unwrap()
        .is_empty());
    let g = s
        .due_groups(now + 2 + INTERVAL, 10, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(g.firing, 2, "the racing alert is shown at the next flush");
    assert!(g.changed_at_ms.is_some());
}

async fn a_resolved_group_goes_quiet_and_starts_over_with_group_wait(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![grouped("q1", T0, "k1", false, "db")])
        .await
        .unwrap();
    let now = T0 + WAIT;
    let g = s.due_groups(now, 10, 10).await.unwrap().remove(0);
    s.flush_group(
        flush_of(&g, Some(item("alerts", "chat.postMessage", 1)), vec![], now),
        now,
    )
    .await
    .unwrap();
    s.ingest(vec![grouped("q2", now + 1_000, "k1", true, "db")])
        .await
        .unwrap();
    assert_eq!(
        status(s, "q2").await.fate,
        Fate::Resolved { into: "q1".into() }
    );
    let then = now + INTERVAL;
    let g = s.due_groups(then, 10, 10).await.unwrap().remove(0);
    assert_eq!((g.firing, g.resolved), (0, 1));
    assert_eq!(g.alerts[0].closed_at_ms, Some(now + 1_000));
    s.flush_group(flush_of(&g, None, vec![update("alerts")], then), then)
        .await
        .unwrap();
    assert!(
        s.due_groups(then + 10 * REPEAT, 10, 10)
            .await
            .unwrap()
            .is_empty(),
        "resolved: nothing to repeat"
    );
    // Fires again much later: a fresh start, group_wait from now.
    let again = then + 2 * REPEAT;
    s.ingest(vec![grouped("q3", again, "k1", false, "db")])
        .await
        .unwrap();
    assert!(s
        .due_groups(again + WAIT - 1, 10, 10)
        .await
        .unwrap()
        .is_empty());
    let g = s.due_groups(again + WAIT, 10, 10).await.unwrap().remove(0);
    assert_eq!((g.firing, g.resolved, g.notified_firing), (1, 1, 0));
}

async fn route_rates_and_alerts_feed_the_storm_guard(ctx: Ctx) {
    let s = &ctx.store;
    let mut batch = Vec::new();
    for i in 0..30 {
        batch.push(grouped(
            &format!("s{i}"),
            T0 + i * 100,
            &format!("k{}", i % 10),
            false,
            ["db", "api", "web"][i as usize % 3],
        ));
    }
    s.ingest(batch).await.unwrap();
    let mut other = grouped("o1", T0, "other", false, "db");
    other.dedup.as_mut().unwrap().groups = vec![join("deploys", "db")];
    s.ingest(vec![other]).await.unwrap();
    // Thirty events over three seconds, counted per second.
    assert_eq!(s.route_rate("alerts", T0 - 1).await.unwrap(), 30);
    assert_eq!(s.route_rate("alerts", T0 + 999).await.unwrap(), 20);
    assert_eq!(s.route_rate("alerts", T0 + 2_000).await.unwrap(), 0);
    assert_eq!(s.route_rate("deploys", T0 - 1).await.unwrap(), 1);
    assert_eq!(s.route_rate("nothing", T0 - 1).await.unwrap(), 0);
    // Another replica counts into the same seconds.
    ctx.replica()
        .await
        .ingest(vec![grouped("late", T0 + 2_500, "k0", false, "db")])
        .await
        .unwrap();
    assert_eq!(s.route_rate("alerts", T0 + 999).await.unwrap(), 21);
    let alerts = s.route_alerts("alerts", T0).await.unwrap();
    assert_eq!(alerts.len(), 10, "ten distinct alerts");
    assert_eq!(
        alerts.iter().map(|a| a.count).sum::<u32>(),
        31,
        "every event counted once"
    );
    assert!(alerts.iter().all(|a| a.body["service"].is_string()));
    assert!(s
        .route_alerts("alerts", T0 + 3_000)
        .await
        .unwrap()
        .is_empty());
}

/// New alerts of one group commit join their group set-based (one upsert for all of a group's joins): the group
/// must come out exactly as if they had joined one call at a time, both when the commit creates it and when it
/// already exists and was flushed.
async fn alerts_joining_a_group_in_one_commit_count_as_if_one_by_one(ctx: Ctx) {
    let s = &ctx.store;
    let ids = |p: &str, n: std::ops::Range<i64>| -> Vec<(String, i64)> {
        n.map(|i| (format!("{p}{i}"), i)).collect()
    };
    // "db" in one commit, "api" one call per alert, at the same times.
    let at = |i: i64| T0 + 10 * i;
    s.ingest(
        ids("b", 1..4)
            .iter()
            .map(|(id, i)| grouped(id, at(*i), id, false, "db"))
            .collect(),
    )
    .await
    .unwrap();
    for (id, i) in ids("o", 1..4) {
        s.ingest(vec![grouped(&id, at(i), &id, false, "api")])
            .await
            .unwrap();
    }
    let (db, api) = (join("alerts", "db").key, join("alerts", "api").key);
    let pick = |groups: &[GroupState], key: &str| -> GroupState {
        groups
            .iter()
            .find(|g| g.key == key)
            .cloned()
            .unwrap_or_else(|| panic!("group {key} is not due: {groups:?}"))
    };
    let same = |a: &GroupState, b: &GroupState, first: (&str, &str)| {
        assert_eq!(
            (a.version, a.events, a.firing, a.alerts.len()),
            (b.version, b.events, b.firing, b.alerts.len()),
            "batch {a:?} vs one by one {b:?}"
        );
        assert_eq!(
            (a.created_at_ms, a.changed_at_ms, a.notified_at_ms),
            (b.created_at_ms, b.changed_at_ms, b.notified_at_ms)
        );
        assert_eq!(
            (a.first_event_id.as_str(), b.first_event_id.as_str()),
            first
        );
    };
    assert!(s
        .due_groups(at(1) + WAIT - 1, 10, 10)
        .await
        .unwrap()
        .is_empty());
    let due = s.due_groups(at(1) + WAIT, 10, 10).await.unwrap();
    let (b, o) = (pick(&due, &db), pick(&due, &api));
    same(&b, &o, ("b1", "o1"));
    assert_eq!((b.version, b.events, b.firing), (3, 3, 3));

    // Flushed, then two more alerts each: the existing groups wait for group_interval from the flush.
    let now = at(1) + WAIT;
    for g in [&b, &o] {
        s.flush_group(
            flush_of(g, Some(item("alerts", "chat.postMessage", 1)), vec![], now),
            now,
        )
        .await
        .unwrap();
    }
    s.ingest(
        ids("b", 4..6)
            .iter()
            .map(|(id, i)| grouped(id, now + at(*i) - T0, id, false, "db"))
            .collect(),
    )
    .await
    .unwrap();
    for (id, i) in ids("o", 4..6) {
        s.ingest(vec![grouped(&id, now + at(i) - T0, &id, false, "api")])
            .await
            .unwrap();
    }
    assert!(s
        .due_groups(now + INTERVAL - 1, 10, 10)
        .await
        .unwrap()
        .is_empty());
    let due = s.due_groups(now + INTERVAL, 10, 10).await.unwrap();
    let (b, o) = (pick(&due, &db), pick(&due, &api));
    same(&b, &o, ("b1", "o1"));
    assert_eq!((b.events, b.firing), (5, 5));
    assert_eq!(
        s.route_rate("alerts", T0 - 1000).await.unwrap(),
        10,
        "every join counted"
    );
}

async fn touching_a_group_makes_it_due_now(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![grouped("t1", T0, "k1", false, "db")])
        .await
        .unwrap();
    let now = T0 + WAIT;
    let g = s.due_groups(now, 10, 10).await.unwrap().remove(0);
    s.flush_group(
        flush_of(&g, Some(item("alerts", "chat.postMessage", 1)), vec![], now),
        now,
    )
    .await
    .unwrap();
    assert_eq!(s.touch_groups("nobody", now + 5).await.unwrap(), 0);
    assert_eq!(s.touch_groups("t1", now + 5).await.unwrap(), 1);
    let g = s.due_groups(now + 5, 10, 10).await.unwrap().remove(0);
    assert!(
        g.changed_at_ms.is_some(),
        "re-rendered as a change, not a repeat"
    );
}

async fn prune_keeps_firing_groups_and_their_cards(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![
        grouped("p1", T0, "k1", false, "db"),
        grouped("p2", T0, "k2", false, "api"),
    ])
    .await
    .unwrap();
    let now = T0 + WAIT;
    assert_eq!(s.due_groups(now, 10, 10).await.unwrap().len(), 2);
    for g in s.due_groups(now, 10, 10).await.unwrap() {
        s.flush_group(
            flush_of(&g, Some(item("alerts", "chat.postMessage", 1)), vec![], now),
            now,
        )
        .await
        .unwrap();
    }
    for it in s.lane_items("T1:alerts", 10).await.unwrap() {
        s.mark_sent(it.id, "C1", &format!("{}.0", it.id), now)
            .await
            .unwrap();
    }
    // api resolves and is flushed; db keeps firing.
    s.ingest(vec![grouped("p3", now + 1, "k2", true, "api")])
        .await
        .unwrap();
    let g = s
        .due_groups(now + INTERVAL, 10, 10)
        .await
        .unwrap()
        .remove(0);
    s.flush_group(flush_of(&g, None, vec![], now + INTERVAL), now + INTERVAL)
        .await
        .unwrap();
    s.prune(now + 10 * REPEAT).await.unwrap();
    let db = status(s, "p1").await;
    assert_eq!(db.groups.len(), 1, "a firing group stays");
    assert!(
        db.groups[0].ts.is_some(),
        "with its card, which later updates refer to"
    );
    assert!(
        s.event("p2").await.unwrap().is_none(),
        "the resolved alert's events go"
    );
    assert_eq!(
        due_ids(&s.due_groups(now + 100 * REPEAT, 10, 10).await.unwrap()),
        vec![join("alerts", "db").key],
        "and so does its group"
    );
    assert_eq!(
        s.route_rate("alerts", 0).await.unwrap(),
        0,
        "old per-second counts go"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Inhibition

/// The key of rule `rule` for the equal value `value` (the store treats keys as opaque strings).
fn ikey(rule: &str, value: &str, both_sides: bool) -> InhibitKey {
    InhibitKey {
        rule: rule.into(),
        key: format!("{rule}/{value}"),
        both_sides,
    }
}

/// A critical alert for `service`: the source of rule "crit" (key per service).
fn critical(id: &str, at: i64, service: &str, resolves: bool) -> NewEvent {
    NewEvent {
        inhibit: Inhibit {
            provides: if resolves {
                vec![]
            } else {
                vec![ikey("crit", service, false)]
            },
            checks: vec![],
        },
        ..alert(id, at, &format!("{service}-critical"), resolves, &["C1"])
    }
}

/// A warning alert for `service`, its dedup key its id: a target of rule "crit".
fn warning(id: &str, at: i64, service: &str) -> NewEvent {
    warning_keyed(id, at, service, id)
}

fn warning_keyed(id: &str, at: i64, service: &str, dedup_key: &str) -> NewEvent {
    NewEvent {
        inhibit: Inhibit {
            provides: vec![],
            checks: vec![ikey("crit", service, false)],
        },
        ..alert(id, at, dedup_key, false, &["C1"])
    }
}

fn inhibited(rule: &str) -> Fate {
    Fate::Suppressed {
        by: format!("inhibit:{rule}"),
    }
}

/// The event is queued (not muted, not merged) and enqueued its post.
async fn assert_posted(s: &Arc<dyn Store>, id: &str) {
    let st = status(s, id).await;
    assert!(
        matches!(st.fate, Fate::Queued { .. }),
        "{id} should post: {:?}",
        st.fate
    );
    assert_eq!(st.deliveries.len(), 1, "{id} enqueued its post");
}

async fn assert_inhibited(s: &Arc<dyn Store>, id: &str, rule: &str) {
    let st = status(s, id).await;
    assert_eq!(st.fate, inhibited(rule), "{id}");
    assert!(st.deliveries.is_empty(), "{id} enqueued nothing");
}

async fn inhibit_mutes_targets_while_the_source_fires(ctx: Ctx) {
    let s = &ctx.store;
    let ingested = s
        .ingest(vec![critical("db-crit", T0, "db", false)])
        .await
        .expect("ingest");
    assert!(ingested.inhibited.is_empty());
    assert_posted(s, "db-crit").await;

    // The warning for db is muted, and ingest says so (for the metrics).
    let ingested = s
        .ingest(vec![warning("db-warn", T0 + 1, "db")])
        .await
        .expect("ingest");
    assert_eq!(
        ingested.inhibited,
        vec![("db-warn".to_string(), "crit".to_string())]
    );
    assert_inhibited(s, "db-warn", "crit").await;
    // Another equal value is not muted.
    s.ingest(vec![warning("api-warn", T0 + 2, "api")])
        .await
        .expect("ingest");
    assert_posted(s, "api-warn").await;
    // An event without a dedup key can be a target too.
    s.ingest(vec![NewEvent {
        inhibit: Inhibit {
            provides: vec![],
            checks: vec![ikey("crit", "db", false)],
        },
        ..event("db-note", T0 + 3, vec![item("C1", "chat.postMessage", 1)])
    }])
    .await
    .expect("ingest");
    assert_inhibited(s, "db-note", "crit").await;
    // Only an event that would post is muted: a dropped one keeps the rule that dropped it.
    s.ingest(vec![NewEvent {
        fate: Fate::Dropped {
            rule: "quiet".into(),
        },
        outbox: vec![],
        dedup: None,
        ..warning("db-dropped", T0 + 4, "db")
    }])
    .await
    .expect("ingest");
    assert_eq!(
        status(s, "db-dropped").await.fate,
        Fate::Dropped {
            rule: "quiet".into()
        }
    );
    // A replica sees the same held key: the decision is the database's, not a cache's.
    let other = ctx.replica().await;
    other
        .ingest(vec![warning("db-warn-2", T0 + 5, "db")])
        .await
        .expect("ingest on a replica");
    assert_inhibited(s, "db-warn-2", "crit").await;
    // Muted warnings opened no alert: nothing of theirs is pending, only the two posts.
    assert_eq!(
        s.lane_items("T1:C1", 10).await.expect("lane_items").len(),
        2
    );
}

async fn inhibit_releases_when_the_source_resolves(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![
        critical("crit", T0, "db", false),
        warning("warn-1", T0 + 1, "db"),
    ])
    .await
    .expect("ingest");
    assert_inhibited(s, "warn-1", "crit").await;
    s.ingest(vec![critical("crit-resolved", T0 + 2, "db", true)])
        .await
        .expect("ingest");
    assert!(matches!(
        status(s, "crit-resolved").await.fate,
        Fate::Resolved { .. }
    ));
    // Delivery is restored, and as a new alert: the muted one never opened one.
    s.ingest(vec![warning_keyed("warn-2", T0 + 3, "db", "warn-1")])
        .await
        .expect("ingest");
    assert_posted(s, "warn-2").await;
    // It fires again: muting resumes for new targets...
    s.ingest(vec![
        critical("crit-again", T0 + 4, "db", false),
        warning("other-warn", T0 + 5, "db"),
    ])
    .await
    .expect("ingest");
    assert_inhibited(s, "other-warn", "crit").await;
    // ...but an alert whose card is already out keeps its life: its duplicate merges and its resolve resolves.
    s.ingest(vec![
        warning_keyed("warn-2-dup", T0 + 6, "db", "warn-1"),
        NewEvent {
            inhibit: Inhibit {
                provides: vec![],
                checks: vec![ikey("crit", "db", false)],
            },
            ..alert("warn-2-resolved", T0 + 7, "warn-1", true, &["C1"])
        },
    ])
    .await
    .expect("ingest");
    assert!(matches!(
        status(s, "warn-2-dup").await.fate,
        Fate::Merged { count: 2, .. }
    ));
    assert!(matches!(
        status(s, "warn-2-resolved").await.fate,
        Fate::Resolved { .. }
    ));
}

async fn inhibit_releases_when_the_source_goes_quiet_beyond_its_window(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![critical("crit", T0, "db", false)])
        .await
        .expect("ingest");
    // A duplicate of the source keeps it firing: the window counts from its last sighting.
    s.ingest(vec![critical("crit-dup", T0 + 1_000, "db", false)])
        .await
        .expect("ingest");
    s.ingest(vec![warning("at-the-edge", T0 + 1_000 + WINDOW, "db")])
        .await
        .expect("ingest");
    assert_inhibited(s, "at-the-edge", "crit").await;
    s.ingest(vec![warning("beyond", T0 + 1_001 + WINDOW, "db")])
        .await
        .expect("ingest");
    assert_posted(s, "beyond").await;
}

async fn inhibit_an_alert_matching_both_sides_does_not_inhibit_itself(ctx: Ctx) {
    let s = &ctx.store;
    // Rule "outage": source and target overlap, so this alert provides and checks the same key.
    let both = |id: &str, at: i64, key: &str| NewEvent {
        inhibit: Inhibit {
            provides: vec![ikey("outage", "", true)],
            checks: vec![ikey("outage", "", true)],
        },
        ..alert(id, at, key, false, &["C1"])
    };
    s.ingest(vec![both("site-down", T0, "site-down")])
        .await
        .expect("ingest");
    assert_posted(s, "site-down").await;
    // Its own duplicate is not muted by it.
    s.ingest(vec![both("site-down-dup", T0 + 1, "site-down")])
        .await
        .expect("ingest");
    assert!(matches!(
        status(s, "site-down-dup").await.fate,
        Fate::Merged { count: 2, .. }
    ));
    // Nor its resolve, which checks the key without matching the source any more (its own dedup key).
    s.ingest(vec![NewEvent {
        inhibit: Inhibit {
            provides: vec![],
            checks: vec![ikey("outage", "", false)],
        },
        ..alert("site-down-late", T0 + 2, "site-down", true, &["C1"])
    }])
    .await
    .expect("ingest");
    assert!(matches!(
        status(s, "site-down-late").await.fate,
        Fate::Resolved { .. }
    ));
    s.ingest(vec![both("site-down-2", T0 + 3, "site-down")])
        .await
        .expect("ingest");
    // As in Alertmanager, another alert that also matches both sides is not muted by it...
    s.ingest(vec![both("dc-down", T0 + 4, "dc-down")])
        .await
        .expect("ingest");
    assert_posted(s, "dc-down").await;
    // ...while a target that is not also a source is.
    s.ingest(vec![NewEvent {
        inhibit: Inhibit {
            provides: vec![],
            checks: vec![ikey("outage", "", false)],
        },
        ..alert("web-slow", T0 + 5, "web-slow", false, &["C1"])
    }])
    .await
    .expect("ingest");
    assert_inhibited(s, "web-slow", "outage").await;
}

async fn inhibit_a_batch_with_the_source_then_the_target_mutes_the_target(ctx: Ctx) {
    let s = &ctx.store;
    let ingested = s
        .ingest(vec![
            warning("early-warn", T0, "db"),
            critical("crit", T0, "db", false),
            warning("late-warn", T0, "db"),
            warning("api-warn", T0, "api"),
        ])
        .await
        .expect("ingest");
    // In batch order: the warning before its source posts, the one after it is muted.
    assert_posted(s, "early-warn").await;
    assert_inhibited(s, "late-warn", "crit").await;
    assert_posted(s, "api-warn").await;
    assert_eq!(
        ingested.inhibited,
        vec![("late-warn".to_string(), "crit".to_string())]
    );
    // Two callers committed in one group each hear only of their own muted events.
    let (a, b) = tokio::join!(
        s.ingest(vec![warning("mine", T0 + 1, "db")]),
        s.ingest(vec![warning("theirs", T0 + 1, "api")]),
    );
    assert_eq!(
        a.expect("ingest").inhibited,
        vec![("mine".to_string(), "crit".to_string())]
    );
    assert!(b.expect("ingest").inhibited.is_empty());
}

async fn inhibit_keys_go_with_their_alert_and_prune(ctx: Ctx) {
    let s = &ctx.store;
    const KEYS: &str = "SELECT COUNT(*) FROM inhibit_keys";
    s.ingest(vec![
        critical("crit", T0, "db", false),
        critical("crit-dup", T0 + 1, "db", false),
    ])
    .await
    .expect("ingest");
    assert_eq!(ctx.count(KEYS).await, 1, "a duplicate holds no second copy");
    s.ingest(vec![critical("crit-resolved", T0 + 2, "db", true)])
        .await
        .expect("ingest");
    assert_eq!(ctx.count(KEYS).await, 0, "a closed alert holds nothing");
    // A reopened alert holds its keys again.
    s.ingest(vec![NewEvent {
        dedup: Some(Dedup {
            reopen_window_ms: WINDOW,
            ..critical("x", 0, "db", false).dedup.expect("dedup")
        }),
        ..critical("crit-refire", T0 + 3, "db", false)
    }])
    .await
    .expect("ingest");
    assert!(matches!(
        status(s, "crit-refire").await.fate,
        Fate::Merged { .. }
    ));
    s.ingest(vec![warning("warn", T0 + 4, "db")])
        .await
        .expect("ingest");
    assert_inhibited(s, "warn", "crit").await;
    // Keys left behind by an alert (written behind the store's back here) are pruned with it.
    s.ingest(vec![critical("crit-resolved-2", T0 + 5, "db", true)])
        .await
        .expect("ingest");
    ctx.exec("INSERT INTO inhibit_keys (key, alert_id, both_sides, window_ms) SELECT 'crit/stale', id, false, 1 FROM alerts")
        .await;
    assert_eq!(ctx.count(KEYS).await, 1);
    s.prune(T0 + 10).await.expect("prune");
    assert_eq!(ctx.count("SELECT COUNT(*) FROM alerts").await, 0);
    assert_eq!(ctx.count(KEYS).await, 0);
}

async fn the_end_of_a_storm_absorbs_uncarded_groups_and_refreshes_carded_ones(ctx: Ctx) {
    let s = &ctx.store;
    // db got its card before the storm; api only appeared during it.
    s.ingest(vec![grouped("b1", T0, "k1", false, "db")])
        .await
        .unwrap();
    let now = T0 + WAIT;
    let g = s.due_groups(now, 10, 10).await.unwrap().remove(0);
    s.flush_group(
        flush_of(&g, Some(item("alerts", "chat.postMessage", 1)), vec![], now),
        now,
    )
    .await
    .unwrap();
    // The storm: both change, and the flusher only digests them.
    s.ingest(vec![
        grouped("b2", now + 1_000, "k2", false, "db"),
        grouped("b3", now + 1_000, "k3", false, "api"),
    ])
    .await
    .unwrap();
    let later = now + WAIT + INTERVAL;
    for g in s.due_groups(later, 10, 10).await.unwrap() {
        let f = GroupFlush {
            digested: true,
            ..flush_of(&g, None, vec![], later)
        };
        s.flush_group(f, later).await.unwrap();
    }
    s.ingest(vec![grouped("b4", later + 1, "k4", false, "api")])
        .await
        .unwrap();
    // Storm over.
    let end = later + 10_000;
    assert_eq!(
        s.absorb_groups("alerts", end).await.unwrap(),
        1,
        "api's last change is the digest's"
    );
    let due = s.due_groups(end, 10, 10).await.unwrap();
    assert_eq!(
        due_ids(&due),
        vec![join("alerts", "db").key],
        "only db's card is brought up to date"
    );
    assert!(due[0].changed_at_ms.is_some() && due[0].post_item_id.is_some());
    assert_eq!(due[0].firing, 2);
    assert!(status(s, "b4").await.groups[0].digested_at_ms.is_some());
}

// ---------------------------------------------------------------------------------------------------------------
// Approvals

fn new_approval(id: &str, key: Option<&str>, expires_at_ms: i64) -> NewApproval {
    NewApproval {
        id: id.into(),
        idempotency_key: key.map(str::to_string),
        request: json!({ "title": format!("approve {id}"), "approvers": { "users": ["U1", "U2"] } }),
        requester: "U0".into(),
        required: 2,
        allow_self: false,
        team: "T1".into(),
        channel: "deploys".into(),
        created_at_ms: T0,
        expires_at_ms,
    }
}

fn approval_commit(id: &str, version: i64, actor: &str, state: &str) -> ApprovalCommit {
    ApprovalCommit {
        id: id.into(),
        version,
        state: state.into(),
        decided_at_ms: (state != "pending").then_some(T0 + 10),
        decision: Some(ApprovalDecision {
            actor: actor.into(),
            verdict: "approve".into(),
            reason: None,
            at_ms: T0 + 10,
        }),
        items: vec![ApprovalItem {
            item: item("deploys", "chat.update", 1),
            on_card: true,
        }],
        run: None,
    }
}

async fn an_idempotency_key_makes_one_approval_and_one_card(ctx: Ctx) {
    let s = &ctx.store;
    let first = s
        .create_approval(
            new_approval("apr_a", Some("k1"), T0 + 60_000),
            item("deploys", "chat.postMessage", 0),
        )
        .await
        .expect("create");
    assert!(first.created);
    assert_eq!(
        (first.approval.state.as_str(), first.approval.version),
        ("pending", 0)
    );
    assert!(first.approval.card_item_id.is_some() && first.approval.card.is_none());
    let again = s
        .create_approval(
            new_approval("apr_b", Some("k1"), T0 + 60_000),
            item("deploys", "chat.postMessage", 0),
        )
        .await
        .expect("create again");
    assert!(!again.created);
    assert_eq!(again.approval.id, "apr_a");
    assert!(s.approval("apr_b").await.expect("read").is_none());
    let items = s.lane_items("T1:deploys", 10).await.expect("lane");
    assert_eq!(items.len(), 1, "one card: {items:?}");
    assert_eq!(items[0].event_id.as_deref(), Some("apr_a"));
    // Without a key, every request is its own approval.
    for id in ["apr_c", "apr_d"] {
        let c = s
            .create_approval(
                new_approval(id, None, T0 + 60_000),
                item("deploys", "chat.postMessage", 0),
            )
            .await
            .expect("create without key");
        assert!(c.created);
    }
    assert_eq!(s.lane_items("T1:deploys", 10).await.expect("lane").len(), 3);
}

async fn two_commits_on_one_version_make_one_decision(ctx: Ctx) {
    let s = ctx.store.clone();
    s.create_approval(
        new_approval("apr_r", None, T0 + 60_000),
        item("deploys", "chat.postMessage", 0),
    )
    .await
    .expect("create");
    let tries: Vec<_> = (0..6)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.commit_approval(
                    approval_commit("apr_r", 0, &format!("U{i}"), "pending"),
                    T0 + 10,
                )
                .await
                .expect("commit")
            })
        })
        .collect();
    let mut won = 0;
    for t in tries {
        won += usize::from(t.await.expect("join"));
    }
    assert_eq!(won, 1, "exactly one commit on version 0 wins");
    let a = s.approval("apr_r").await.expect("read").expect("stored");
    assert_eq!((a.version, a.decisions.len()), (1, 1));
    // The winner's update is linked to the card: it waits for the card, then carries the card's channel and ts.
    let items = s.lane_items("T1:deploys", 10).await.expect("lane");
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[1].ref_pending);
    s.mark_sent(items[0].id, "C0DEPLOYS", "111.222", T0 + 20)
        .await
        .expect("card sent");
    let items = s.lane_items("T1:deploys", 10).await.expect("lane");
    assert_eq!(
        items[0].ref_sent,
        Some(RefSent {
            channel: "C0DEPLOYS".into(),
            ts: "111.222".into()
        })
    );
    let a = s.approval("apr_r").await.expect("read").expect("stored");
    assert_eq!(a.card.map(|c| c.ts), Some("111.222".into()));
    // A commit on the version it was read at moves on; a stale one changes nothing.
    assert!(s
        .commit_approval(approval_commit("apr_r", 1, "U9", "approved"), T0 + 30)
        .await
        .expect("commit v1"));
    assert!(!s
        .commit_approval(approval_commit("apr_r", 1, "U8", "approved"), T0 + 40)
        .await
        .expect("stale commit"));
    let a = s.approval("apr_r").await.expect("read").expect("stored");
    assert_eq!(
        (a.state.as_str(), a.decided_at_ms, a.decisions.len()),
        ("approved", Some(T0 + 10), 2)
    );
}

async fn due_approvals_are_the_pending_ones_past_their_expiry(ctx: Ctx) {
    let s = &ctx.store;
    for (id, expires) in [
        ("apr_1", T0 + 1_000),
        ("apr_2", T0 + 2_000),
        ("apr_3", T0 + 9_000),
    ] {
        s.create_approval(
            new_approval(id, None, expires),
            item("deploys", "chat.postMessage", 0),
        )
        .await
        .expect("create");
    }
    assert!(s.due_approvals(T0 + 999, 10).await.expect("due").is_empty());
    assert_eq!(
        s.due_approvals(T0 + 2_000, 10).await.expect("due"),
        ["apr_1", "apr_2"]
    );
    assert!(s
        .commit_approval(approval_commit("apr_1", 0, "U1", "approved"), T0 + 1_500)
        .await
        .expect("decide"));
    assert_eq!(
        s.due_approvals(T0 + 10_000, 10).await.expect("due"),
        ["apr_2", "apr_3"]
    );
    assert_eq!(
        s.due_approvals(T0 + 10_000, 1).await.expect("due"),
        ["apr_2"]
    );
}

async fn prune_keeps_the_card_of_a_pending_approval(ctx: Ctx) {
    let s = &ctx.store;
    for id in ["apr_p", "apr_d"] {
        s.create_approval(
            new_approval(id, None, T0 + 60_000),
            item(id, "chat.postMessage", 0),
        )
        .await
        .expect("create");
        let card = s.lane_items(&format!("T1:{id}"), 1).await.expect("lane")[0].id;
        s.mark_sent(card, id, "1.1", T0).await.expect("sent");
    }
    assert!(s
        .commit_approval(
            ApprovalCommit {
                items: vec![],
                ..approval_commit("apr_d", 0, "U1", "approved")
            },
            T0 + 10
        )
        .await
        .expect("decide"));
    s.prune(T0 + 3_600_000).await.expect("prune");
    let pending = s.approval("apr_p").await.expect("read").expect("stored");
    assert_eq!(
        pending.card.map(|c| c.ts),
        Some("1.1".into()),
        "a pending approval keeps its card"
    );
    let decided = s.approval("apr_d").await.expect("read").expect("stored");
    assert!(
        decided.card.is_none(),
        "a decided approval's old card may go"
    );
}

fn new_run(id: &str, target: &str) -> NewActionRun {
    NewActionRun {
        id: id.into(),
        action: "restart".into(),
        target: target.into(),
        actor: "U1".into(),
        team: "T1".into(),
        channel: "ops".into(),
        ts: "1.000100".into(),
        reply: "thread".into(),
        card: json!({"text": "card", "blocks": []}),
        started_at_ms: T0,
    }
}

async fn one_run_of_an_action_on_a_target_runs_at_a_time_and_ends_once(ctx: Ctx) {
    let s = &ctx.store;
    let started = s
        .start_action_run(
            new_run("run_a", "evt_1"),
            vec![item("ops", "chat.update", 1)],
        )
        .await
        .expect("start");
    assert_eq!(started, Ok(()));
    // While it runs, a second run of the same action on the same target is refused and writes nothing; another
    // target runs.
    let second = s
        .start_action_run(
            new_run("run_b", "evt_1"),
            vec![item("ops", "chat.update", 2)],
        )
        .await
        .expect("start again");
    assert_eq!(second, Err("run_a".to_string()));
    assert!(s.action_run("run_b").await.expect("read").is_none());
    assert_eq!(s.lane_items("T1:ops", 10).await.expect("lane").len(), 1);
    let other = s
        .start_action_run(new_run("run_c", "evt_2"), vec![])
        .await
        .expect("other target");
    assert_eq!(other, Ok(()));
    // It ends once, with its outbox rows; a second end changes nothing.
    let ended = s
        .finish_action_run(
            "run_a",
            "done",
            Some(200),
            Some("{}"),
            T0 + 5,
            vec![item("ops", "chat.postMessage", 3)],
        )
        .await
        .expect("finish");
    assert!(ended);
    let again = s
        .finish_action_run(
            "run_a",
            "failed",
            None,
            Some("late"),
            T0 + 6,
            vec![item("ops", "chat.postMessage", 4)],
        )
        .await
        .expect("finish again");
    assert!(!again);
    let run = s.action_run("run_a").await.expect("read").expect("stored");
    assert_eq!(
        (
            run.state.as_str(),
            run.status,
            run.result.as_deref(),
            run.finished_at_ms
        ),
        ("done", Some(200), Some("{}"), Some(T0 + 5))
    );
    assert_eq!(run.card["text"], "card");
    let items = s.lane_items("T1:ops", 10).await.expect("lane");
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items.iter().all(|i| i.event_id.as_deref() == Some("run_a")));
    // Once ended, the action may run again on the same target; the same id never starts twice.
    let rerun = s
        .start_action_run(new_run("run_d", "evt_1"), vec![])
        .await
        .expect("rerun");
    assert_eq!(rerun, Ok(()));
    let same_id = s
        .start_action_run(new_run("run_a", "evt_9"), vec![])
        .await
        .expect("same id");
    assert!(same_id.is_err());
    // A run committed with an approval's decision starts with it, in the same transaction.
    s.create_approval(
        new_approval("apr_run", None, T0 + 60_000),
        item("deploys", "chat.postMessage", 0),
    )
    .await
    .expect("create");
    let committed = s
        .commit_approval(
            ApprovalCommit {
                run: Some(new_run("apr_run.action", "apr_run")),
                ..approval_commit("apr_run", 0, "U1", "approved")
            },
            T0 + 10,
        )
        .await
        .expect("decide");
    assert!(committed);
    let run = s
        .action_run("apr_run.action")
        .await
        .expect("read")
        .expect("started");
    assert_eq!(run.state, "running");
}

/// A run's card refreshes link to its alert's card, a failed run whose call was replayed runs again (once, and not
/// beside another running run of the same action), and a target's latest run of each action is what a card shows.
async fn a_replayed_run_runs_again_and_a_target_shows_its_latest_runs(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![alert("evt_a", T0, "k-run", false, &["C1"])])
        .await
        .expect("ingest");
    let post = head(s, "T1:C1").await;
    s.mark_sent(post.id, "C1", "1.000100", T0)
        .await
        .expect("mark_sent");
    // The run's "Running" refresh is linked to the alert's card; the other action's run has none.
    s.start_action_run(
        NewActionRun {
            started_at_ms: T0 + 1,
            ..new_run("run_1", "evt_a")
        },
        vec![update("C1")],
    )
    .await
    .expect("start")
    .expect("started");
    let refresh = head(s, "T1:C1").await;
    assert_eq!(
        (
            refresh.method.as_str(),
            refresh.ref_sent.as_ref().map(|r| r.ts.as_str())
        ),
        ("chat.update", Some("1.000100"))
    );
    assert_eq!(refresh.event_id.as_deref(), Some("run_1"));
    // A refresh already waiting stands for the next one.
    s.start_action_run(
        NewActionRun {
            action: "rollback".into(),
            started_at_ms: T0 + 2,
            ..new_run("run_2", "evt_a")
        },
        vec![update("C1")],
    )
    .await
    .expect("start")
    .expect("started");
    assert_eq!(s.lane_items("T1:C1", 10).await.expect("lane").len(), 1);
    s.mark_sent(refresh.id, "C1", "1.000100", T0 + 3)
        .await
        .expect("mark_sent");

    let ran = |runs: Vec<ActionRunRecord>| -> Vec<(String, String, String)> {
        runs.into_iter()
            .map(|r| (r.action, r.id, r.state))
            .collect()
    };
    let own = |a: &str, id: &str, st: &str| (a.to_string(), id.to_string(), st.to_string());
    assert!(s
        .finish_action_run(
            "run_1",
            "failed",
            None,
            Some("HTTP 500"),
            T0 + 4,
            vec![update("C1")]
        )
        .await
        .expect("finish"));
    assert_eq!(
        s.lane_items("T1:C1", 10).await.expect("lane").len(),
        1,
        "the failed line's refresh"
    );
    assert_eq!(
        ran(s.action_runs_of("evt_a").await.expect("runs")),
        [
            own("restart", "run_1", "failed"),
            own("rollback", "run_2", "running")
        ]
    );
    // Replayed: running again, from the replay's time; a second replay while it runs changes nothing.
    assert!(s
        .reopen_action_run("run_1", T0 + 10, vec![])
        .await
        .expect("reopen"));
    assert!(!s
        .reopen_action_run("run_1", T0 + 11, vec![])
        .await
        .expect("again"));
    assert!(!s
        .reopen_action_run("run_2", T0 + 11, vec![])
        .await
        .expect("running"));
    assert!(!s
        .reopen_action_run("nope", T0 + 11, vec![])
        .await
        .expect("unknown"));
    let run = s.action_run("run_1").await.expect("read").expect("stored");
    assert_eq!(
        (
            run.state.as_str(),
            run.started_at_ms,
            run.finished_at_ms,
            run.result
        ),
        ("running", T0 + 10, None, None)
    );
    assert!(s
        .finish_action_run("run_1", "done", Some(200), Some("{}"), T0 + 12, vec![])
        .await
        .expect("finish"));
    // A new run of the same action is the one shown; a failed run does not run again beside a running one.
    s.start_action_run(
        NewActionRun {
            started_at_ms: T0 + 20,
            ..new_run("run_3", "evt_a")
        },
        vec![],
    )
    .await
    .expect("start")
    .expect("started");
    assert!(s
        .finish_action_run("run_3", "failed", None, Some("no"), T0 + 21, vec![])
        .await
        .expect("finish"));
    s.start_action_run(
        NewActionRun {
            started_at_ms: T0 + 30,
            ..new_run("run_4", "evt_a")
        },
        vec![],
    )
    .await
    .expect("start")
    .expect("started");
    assert!(!s
        .reopen_action_run("run_3", T0 + 31, vec![])
        .await
        .expect("beside"));
    assert_eq!(
        ran(s.action_runs_of("evt_a").await.expect("runs")),
        [
            own("restart", "run_4", "running"),
            own("rollback", "run_2", "running")
        ]
    );
    assert!(s.action_runs_of("evt_none").await.expect("runs").is_empty());

    // An approval's run on the alert (a button asked for it) links its refresh to the alert's card too.
    s.create_approval(
        new_approval("apr_a", None, T0 + 60_000),
        item("deploys", "chat.postMessage", 0),
    )
    .await
    .expect("create");
    s.finish_action_run("run_4", "done", Some(200), None, T0 + 40, vec![])
        .await
        .expect("finish");
    // (The failed line's refresh, sent: else the refresh waiting stands for this one.)
    let waiting = head(s, "T1:C1").await;
    s.mark_sent(waiting.id, "C1", "1.000100", T0 + 45)
        .await
        .expect("mark_sent");
    let before = s.lane_items("T1:C1", 10).await.expect("lane").len();
    let committed = s
        .commit_approval(
            ApprovalCommit {
                run: Some(NewActionRun {
                    started_at_ms: T0 + 50,
                    ..new_run("apr_a.action", "evt_a")
                }),
                items: vec![ApprovalItem {
                    item: update("C1"),
                    on_card: false,
                }],
                ..approval_commit("apr_a", 0, "U1", "approved")
            },
            T0 + 50,
        )
        .await
        .expect("decide");
    assert!(committed);
    let lane = s.lane_items("T1:C1", 10).await.expect("lane");
    assert_eq!(lane.len(), before + 1, "{lane:?}");
    let linked = lane.last().expect("the refresh");
    assert_eq!(
        (
            linked.method.as_str(),
            linked.ref_sent.as_ref().map(|r| r.ts.as_str())
        ),
        ("chat.update", Some("1.000100"))
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The operator console's views

async fn console_shows_inhibitions_in_force_and_calls_per_channel_and_method(ctx: Ctx) {
    let s = &ctx.store;
    assert!(s.held_inhibitions(T0, 10).await.expect("held").is_empty());
    s.ingest(vec![critical("db-crit", T0, "db", false)])
        .await
        .expect("ingest");
    s.ingest(vec![critical("api-crit", T0 + 10, "api", false)])
        .await
        .expect("ingest");
    let held = s.held_inhibitions(T0 + 20, 10).await.expect("held");
    let keys: Vec<(&str, &str)> = held
        .iter()
        .map(|h| (h.key.as_str(), h.first_event_id.as_str()))
        .collect();
    assert_eq!(keys, vec![("crit/api", "api-crit"), ("crit/db", "db-crit")]);
    assert_eq!(held[1].dedup_key, "db-critical");
    assert_eq!(held[1].window_ms, WINDOW);
    assert_eq!(held[1].last_seen_ms, T0);
    // A resolved source holds nothing; one unseen for longer than its window neither.
    s.ingest(vec![critical("api-ok", T0 + 30, "api", true)])
        .await
        .expect("ingest");
    let held = s.held_inhibitions(T0 + 40, 10).await.expect("held");
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].key, "crit/db");
    assert!(s
        .held_inhibitions(T0 + WINDOW + 1, 10)
        .await
        .expect("held")
        .is_empty());

    // Calls per channel and method, counting only what was sent in the window.
    s.ingest(vec![event(
        "calls",
        T0 + 100,
        vec![
            item("X", "chat.postMessage", 1),
            item("X", "chat.postMessage", 2),
            item("Y", "chat.postMessage", 3),
            item("Y", "reactions.add", 4),
        ],
    )])
    .await
    .expect("ingest");
    for lane in ["T1:X", "T1:X", "T1:Y", "T1:Y"] {
        let h = head(s, lane).await.id;
        s.mark_sent(h, lane, "1.0", T0 + 200).await.expect("sent");
    }
    let counts = s.calls_by_channel(T0 + 150, 10).await.expect("counts");
    let got: Vec<(&str, &str, u64)> = counts
        .iter()
        .filter(|c| c.channel == "X" || c.channel == "Y")
        .map(|c| (c.channel.as_str(), c.method.as_str(), c.calls))
        .collect();
    assert_eq!(
        got,
        vec![
            ("X", "chat.postMessage", 2),
            ("Y", "chat.postMessage", 1),
            ("Y", "reactions.add", 1)
        ]
    );
    assert!(s
        .calls_by_channel(T0 + 201, 10)
        .await
        .expect("counts")
        .is_empty());
}

async fn console_sessions_are_shared_expire_and_end_at_logout(ctx: Ctx) {
    let s = &ctx.store;
    s.open_console_session("hash-a", "ops-admin", T0, T0 + 1000)
        .await
        .expect("open");
    s.open_console_session("hash-b", "other", T0, T0 + 10)
        .await
        .expect("open");
    let a = s.console_session("hash-a", T0 + 5).await.expect("read");
    assert_eq!(
        a,
        Some(ConsoleSession {
            operator: "ops-admin".into(),
            created_at_ms: T0,
            expires_at_ms: T0 + 1000
        })
    );
    assert!(s
        .console_session("hash-b", T0 + 5)
        .await
        .expect("read")
        .is_some());
    // Past its expiry a session is not honoured, and the next login forgets it.
    assert_eq!(
        s.console_session("hash-b", T0 + 10).await.expect("read"),
        None
    );
    s.open_console_session("hash-c", "ops-admin", T0 + 20, T0 + 2000)
        .await
        .expect("open");
    assert!(
        !s.close_console_session("hash-b").await.expect("close"),
        "already forgotten"
    );
    // Only the hash finds it.
    assert_eq!(
        s.console_session("ops-admin", T0 + 5).await.expect("read"),
        None
    );
    assert!(s.close_console_session("hash-a").await.expect("close"));
    assert_eq!(
        s.console_session("hash-a", T0 + 30).await.expect("read"),
        None
    );
    assert!(s
        .console_session("hash-c", T0 + 30)
        .await
        .expect("read")
        .is_some());
}

async fn console_views_show_rates_lanes_leases_events_open_alerts_and_the_audit_tail(ctx: Ctx) {
    let s = &ctx.store;
    s.ingest(vec![event(
        "e1",
        T0,
        vec![
            item("A", "chat.postMessage", 1),
            item("B", "chat.postMessage", 2),
        ],
    )])
    .await
    .expect("ingest");
    s.ingest(vec![alert("a1", T0 + 100, "k1", false, &["A"])])
        .await
        .expect("ingest");
    let b = head(s, "T1:B").await.id;
    s.mark_sent(b, "CB", "1.000001", T0 + 150)
        .await
        .expect("sent");

    assert_eq!(
        s.recent_counts(T0 + 50).await.expect("counts"),
        RecentCounts {
            events_in: 1,
            calls_out: 1
        }
    );
    assert_eq!(
        s.recent_counts(T0).await.expect("counts"),
        RecentCounts {
            events_in: 2,
            calls_out: 1
        }
    );

    let claimed = s
        .claim_lanes("replica-1", T0 + 200, LEASE, 8)
        .await
        .expect("claim");
    assert_eq!(claimed, vec!["T1:A".to_string()], "B has nothing pending");
    let lanes = s.lanes(T0 + 200, 10).await.expect("lanes");
    assert_eq!(
        lanes,
        vec![LaneView {
            lane: "T1:A".into(),
            pending: 2,
            oldest_pending_at_ms: Some(T0),
            owner: Some("replica-1".into()),
            lease_until_ms: Some(T0 + 200 + LEASE),
        }]
    );
    let later = s.lanes(T0 + 200 + LEASE, 10).await.expect("lanes");
    assert_eq!(
        (later[0].owner.as_deref(), later[0].pending),
        (None, 2),
        "a lapsed lease is no one's"
    );

    assert!(s
        .try_lead("notify", "replica-2", T0, LEASE)
        .await
        .expect("lead"));
    let leaders = s.leaders(T0 + 1).await.expect("leaders");
    assert_eq!(
        leaders,
        vec![LeaderView {
            role: "notify".into(),
            owner: "replica-2".into(),
            until_ms: T0 + LEASE,
            held: true
        }]
    );
    assert!(!s.leaders(T0 + LEASE).await.expect("leaders")[0].held);

    let ids = |v: Vec<EventSummary>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.recent_events(None, 10).await.expect("events")),
        ["a1", "e1"]
    );
    assert_eq!(
        ids(s.recent_events(Some("api"), 1).await.expect("events")),
        ["a1"]
    );
    assert!(s
        .recent_events(Some("github"), 10)
        .await
        .expect("events")
        .is_empty());
    let e1 = &s.recent_events(None, 10).await.expect("events")[1];
    assert_eq!(
        (e1.body["title"].as_str(), e1.fate["kind"].as_str()),
        (Some("event e1"), Some("queued"))
    );

    let open = s.open_alerts(10).await.expect("open alerts");
    assert_eq!(open.len(), 1);
    assert_eq!(
        (
            open[0].dedup_key.as_str(),
            open[0].first_event_id.as_str(),
            open[0].count
        ),
        ("k1", "a1", 1)
    );
    assert_eq!(open[0].body["title"], "event a1");

    for n in 1..=3 {
        s.record_audit(audit_entry(n, "ok")).await.expect("audit");
    }
    let tail: Vec<i64> = s
        .audit_tail(2)
        .await
        .expect("tail")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(tail, [3, 2], "newest first");
    assert_eq!(s.audit_tail(10).await.expect("tail").len(), 3);
    assert!(s.approvals(10).await.expect("approvals").is_empty());
}

async fn a_scheduled_minute_is_claimed_once_across_replicas(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(s.last_schedule_run("morning").await.expect("last"), None);
    let other = ctx.replica().await;
    let post = || Some(item("ops", "chat.postMessage", 1));
    let (a, b) = tokio::join!(
        s.claim_schedule_run("morning", T0, "run", "r1", T0 + 5, post()),
        other.claim_schedule_run("morning", T0, "run", "r2", T0 + 6, post()),
    );
    let won = [a.expect("claim"), b.expect("claim")];
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    // The winner's report is in the outbox, once; the loser wrote nothing.
    assert_eq!(s.lane_items("T1:ops", 10).await.expect("items").len(), 1);
    // Another minute, another schedule: each its own; a skipped minute posts nothing.
    assert!(s
        .claim_schedule_run("morning", T0 + 60_000, "skipped", "r1", T0 + 60_001, None)
        .await
        .expect("claim"));
    assert!(s
        .claim_schedule_run("evening", T0, "run", "r1", T0, post())
        .await
        .expect("claim"));
    assert!(!other
        .claim_schedule_run("morning", T0 + 60_000, "run", "r2", T0 + 60_002, post())
        .await
        .expect("claim"));
    assert_eq!(s.lane_items("T1:ops", 10).await.expect("items").len(), 2);
    assert_eq!(
        s.last_schedule_run("morning").await.expect("last"),
        Some(T0 + 60_000)
    );
}

async fn open_alerts_are_found_by_key_id_or_event_and_periods_are_counted(ctx: Ctx) {
    let s = &ctx.store;
    let mut a = alert("ev_a", T0, "checkout-p99", false, &["alerts"]);
    a.body = EventBody::of(&json!({ "title": "p99", "service": "checkout" }));
    let mut b = alert("ev_b", T0 + 10, "db-disk", false, &["alerts"]);
    b.body = EventBody::of(&json!({ "title": "disk", "service": "db" }));
    let mut muted = event("ev_c", T0 + 20, vec![]);
    muted.body = EventBody::of(&json!({ "title": "muted", "service": "checkout" }));
    muted.fate = Fate::Suppressed {
        by: "silence:sil_1".into(),
    };
    s.ingest(vec![a, b, muted]).await.expect("ingest");

    let open = s.open_alerts(10).await.expect("open");
    assert_eq!(
        open.iter()
            .map(|o| o.dedup_key.as_str())
            .collect::<Vec<_>>(),
        ["db-disk", "checkout-p99"]
    );
    let by_key = s
        .find_open_alert("checkout-p99")
        .await
        .expect("find")
        .expect("by key");
    assert_eq!(
        (
            by_key.first_event_id.as_str(),
            by_key.body["service"].as_str()
        ),
        ("ev_a", Some("checkout"))
    );
    let by_id = s
        .find_open_alert(&by_key.alert_id.to_string())
        .await
        .expect("find")
        .expect("by id");
    assert_eq!(by_id.dedup_key, "checkout-p99");
    assert_eq!(
        s.find_open_alert("ev_b")
            .await
            .expect("find")
            .expect("by event")
            .dedup_key,
        "db-disk"
    );
    assert!(s.find_open_alert("nothing").await.expect("find").is_none());

    let recent = s.events_since(T0 + 5, 10).await.expect("recent");
    assert_eq!(
        recent.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["ev_c", "ev_b"]
    );
    assert_eq!(recent[0].fate["kind"], "suppressed");

    let st = s.period_stats(T0, T0 + 1_000).await.expect("stats");
    assert_eq!(
        (
            st.received,
            st.suppressed,
            st.posted,
            st.dead_lettered,
            st.approvals
        ),
        (3, 1, 0, 0, 0)
    );
    assert_eq!(
        st.noisiest_services,
        [("checkout".to_string(), 2), ("db".to_string(), 1)]
    );
    assert_eq!(st.noisiest_routes, [("default".to_string(), 2)]);
    assert_eq!(
        s.period_stats(T0 + 1_000, T0 + 2_000)
            .await
            .expect("stats")
            .received,
        0
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Incidents

fn new_incident(id: &str, key: &str) -> NewIncident {
    NewIncident {
        id: id.into(),
        declare_key: key.into(),
        kind: "default".into(),
        title: "Checkout errors".into(),
        sev: 2,
        channel_name: "inc-checkout-errors".into(),
        declarer: "U1".into(),
        origin: json!({"via": "command", "channel": "C9"}),
        created_at_ms: T0,
        remind_at_ms: Some(T0 + 60_000),
    }
}

fn line(at: i64, kind: &str, text: &str) -> NewTimelineEntry {
    NewTimelineEntry {
        at_ms: at,
        author: "U1".into(),
        kind: kind.into(),
        text: text.into(),
    }
}

fn plain(item: NewOutboxItem) -> IncidentItem {
    IncidentItem {
        item,
        on: None,
        is: None,
    }
}

async fn declaring_twice_makes_one_incident_across_replicas(ctx: Ctx) {
    let s = &ctx.store;
    let other = ctx.replica().await;
    let create = || vec![plain(item("inc-a", "conversations.create", 1))];
    let (a, b) = tokio::join!(
        s.declare_incident(
            new_incident("inc_a", "default:k"),
            line(T0, "declared", "a"),
            create()
        ),
        other.declare_incident(
            new_incident("inc_b", "default:k"),
            line(T0, "declared", "b"),
            create()
        ),
    );
    let (a, b) = (a.expect("declare"), b.expect("declare"));
    assert_eq!(
        [a.created, b.created].iter().filter(|c| **c).count(),
        1,
        "one of two racing declares creates"
    );
    assert_eq!(a.incident.id, b.incident.id, "both name the same incident");
    let id = a.incident.id.clone();
    assert_eq!(a.incident.status, "investigating");
    assert_eq!(a.incident.context, serde_json::Value::Null);
    assert_eq!(s.lane_items("T1:inc-a", 10).await.expect("items").len(), 1);
    assert_eq!(s.incident_timeline(&id).await.expect("timeline").len(), 1);
    // A third declare with the key finds it and writes nothing.
    let again = s
        .declare_incident(
            new_incident("inc_c", "default:k"),
            line(T0, "declared", "c"),
            create(),
        )
        .await
        .expect("declare");
    assert!(!again.created);
    assert_eq!(again.incident.id, id);
    assert_eq!(s.lane_items("T1:inc-a", 10).await.expect("items").len(), 1);
    // Resolved, its key is set aside: the same key declares a new incident.
    let r = s.incident(&id).await.expect("read").expect("found");
    let mut c = IncidentCommit::on(&r);
    c.status = "resolved".into();
    c.resolved_at_ms = Some(T0 + 10);
    assert!(s.commit_incident(c, T0 + 10).await.expect("commit"));
    let next = s
        .declare_incident(
            new_incident("inc_d", "default:k"),
            line(T0, "declared", "d"),
            vec![],
        )
        .await
        .expect("declare");
    assert!(next.created);
    assert_eq!(next.incident.id, "inc_d");
}

async fn incident_commits_are_ordered_versioned_and_link_to_the_card(ctx: Ctx) {
    let s = &ctx.store;
    let d = s
        .declare_incident(
            new_incident("inc_1", "default:x"),
            line(T0, "declared", "one"),
            vec![],
        )
        .await
        .expect("declare");
    let r = d.incident;
    assert_eq!(s.incident_in_channel("C42").await.expect("read"), None);
    // The war room: its channel, the card, the pin linked to the card, a line.
    let mut c = IncidentCommit::on(&r);
    c.channel_id = Some("C42".into());
    c.roles.insert("commander".into(), "U2".into());
    c.context = json!({"customer": "Acme"});
    c.timeline.push(line(T0 + 1, "room", "two"));
    c.items.push(IncidentItem {
        item: item("C42", "chat.postMessage", 1),
        on: None,
        is: Some(IncidentPost::Card),
    });
    c.items.push(IncidentItem {
        item: item("C42", "pins.add", 2),
        on: Some(IncidentPost::Card),
        is: None,
    });
    // An update of an announcement that does not exist is left out.
    c.items.push(IncidentItem {
        item: item("incidents", "chat.update", 3),
        on: Some(IncidentPost::Announcement),
        is: None,
    });
    let stale = IncidentCommit::on(&r);
    assert!(s.commit_incident(c, T0 + 1).await.expect("commit"));
    // A commit on the version read before loses, and writes nothing.
    let mut lost = stale;
    lost.timeline.push(line(T0 + 2, "note", "lost"));
    assert!(!s.commit_incident(lost, T0 + 2).await.expect("commit"));
    let r = s
        .incident_in_channel("C42")
        .await
        .expect("read")
        .expect("found by its war room");
    assert_eq!(r.id, "inc_1");
    assert_eq!(r.roles["commander"], "U2");
    assert_eq!(r.context["customer"], "Acme");
    assert!(r.card_item_id.is_some() && r.card.is_none(), "{r:?}");
    assert!(s
        .lane_items("T1:incidents", 10)
        .await
        .expect("items")
        .is_empty());
    let items = s.lane_items("T1:C42", 10).await.expect("items");
    assert_eq!(items.len(), 2);
    assert!(items[1].ref_pending, "the pin waits for the card");
    s.mark_sent(items[0].id, "C42", "111.000100", T0 + 3)
        .await
        .expect("sent");
    let pin = head(s, "T1:C42").await;
    assert_eq!(
        pin.ref_sent,
        Some(RefSent {
            channel: "C42".into(),
            ts: "111.000100".into()
        })
    );
    let r = s.incident("inc_1").await.expect("read").expect("found");
    assert_eq!(r.card.as_ref().map(|c| c.ts.as_str()), Some("111.000100"));
    // More lines, from another replica: numbered after the last, in order.
    let other = ctx.replica().await;
    let mut c = IncidentCommit::on(&r);
    c.timeline.push(line(T0 - 5, "note", "three"));
    c.timeline.push(line(T0 + 9, "note", "four"));
    assert!(other.commit_incident(c, T0 + 9).await.expect("commit"));
    let t = s.incident_timeline("inc_1").await.expect("timeline");
    let got: Vec<(i64, &str)> = t.iter().map(|e| (e.seq, e.text.as_str())).collect();
    assert_eq!(got, [(1, "one"), (2, "two"), (3, "three"), (4, "four")]);
    // The reminder comes due at its time only.
    assert!(s
        .due_incident_reminders(T0 + 59_999, 10)
        .await
        .expect("due")
        .is_empty());
    assert_eq!(
        s.due_incident_reminders(T0 + 60_000, 10)
            .await
            .expect("due"),
        ["inc_1"]
    );
}

async fn an_incident_whose_room_was_made_but_not_recorded_is_found_stalled(ctx: Ctx) {
    let s = &ctx.store;
    let create = vec![plain(item("inc-a", "conversations.create", 1))];
    s.declare_incident(
        new_incident("inc_s", "default:s"),
        line(T0, "declared", "s"),
        create,
    )
    .await
    .expect("declare");
    assert!(
        s.stalled_incidents(T0 + 100_000, 10)
            .await
            .expect("read")
            .is_empty(),
        "still pending"
    );
    let id = head(s, "T1:inc-a").await.id;
    s.mark_sent(id, "C77", "", T0 + 10).await.expect("sent");
    assert!(
        s.stalled_incidents(T0 + 10, 10)
            .await
            .expect("read")
            .is_empty(),
        "not yet"
    );
    assert_eq!(
        s.stalled_incidents(T0 + 11, 10).await.expect("read"),
        [(
            "inc_s".to_string(),
            "conversations.create".to_string(),
            "sent".to_string(),
            Some("C77".to_string())
        )]
    );
    // Once the incident records its war room (with its next rows), it is no longer stalled.
    let r = s.incident("inc_s").await.expect("read").expect("found");
    let mut c = IncidentCommit::on(&r);
    c.channel_id = Some("C77".into());
    c.items.push(plain(item("C77", "conversations.invite", 2)));
    assert!(s.commit_incident(c, T0 + 12).await.expect("commit"));
    assert!(s
        .stalled_incidents(T0 + 100_000, 10)
        .await
        .expect("read")
        .is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// The console's incidents, schedules and steps pages, and its login throttle

async fn console_lists_incidents_open_first_schedule_runs_and_step_runs(ctx: Ctx) {
    let s = &ctx.store;
    for (n, id) in ["inc_old", "inc_mid", "inc_new"].iter().enumerate() {
        let mut i = new_incident(id, &format!("default:{id}"));
        i.created_at_ms = T0 + n as i64;
        s.declare_incident(i, line(T0, "declared", id), vec![])
            .await
            .expect("declare");
    }
    // The newest is resolved: open incidents come first, newest first, then resolved ones.
    let r = s.incident("inc_new").await.expect("read").expect("found");
    let mut c = IncidentCommit::on(&r);
    c.status = "resolved".into();
    c.resolved_at_ms = Some(T0 + 10);
    assert!(s.commit_incident(c, T0 + 10).await.expect("commit"));
    let listed: Vec<_> = s
        .incidents(10)
        .await
        .expect("incidents")
        .into_iter()
        .map(|i| (i.id, i.status))
        .collect();
    assert_eq!(
        listed,
        [
            ("inc_mid".to_string(), "investigating".to_string()),
            ("inc_old".into(), "investigating".into()),
            ("inc_new".into(), "resolved".into()),
        ]
    );
    assert_eq!(s.incidents(1).await.expect("incidents").len(), 1);

    for (due, outcome) in [(T0, "run"), (T0 + 60_000, "skipped"), (T0 + 120_000, "run")] {
        assert!(s
            .claim_schedule_run("morning", due, outcome, "r1", due + 5, None)
            .await
            .expect("claim"));
    }
    s.claim_schedule_run("evening", T0, "run", "r2", T0 + 5, None)
        .await
        .expect("claim");
    let runs = s.schedule_runs("morning", 2).await.expect("runs");
    assert_eq!(
        runs.iter()
            .map(|r| (r.due_ms, r.outcome.as_str(), r.claimed_by.as_str()))
            .collect::<Vec<_>>(),
        [(T0 + 120_000, "run", "r1"), (T0 + 60_000, "skipped", "r1")],
        "newest first, this schedule's only"
    );
    assert!(s.schedule_runs("never", 5).await.expect("runs").is_empty());

    // A step's run carries {"step": …} instead of a card; a button's run is not a step run.
    let mut step = new_run("run_exec1", "exec1");
    step.card = json!({"step": {"execution_id": "exec1", "token": "xwfp-1"}});
    step.started_at_ms = T0 + 1;
    s.start_action_run(step, vec![])
        .await
        .expect("start")
        .expect("started");
    s.start_action_run(new_run("run_button", "evt_1"), vec![])
        .await
        .expect("start")
        .expect("started");
    let steps = s.step_runs(10).await.expect("step runs");
    assert_eq!(
        steps.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["run_exec1"]
    );
    assert_eq!(steps[0].state, "running");
}

async fn login_failures_are_counted_across_replicas_and_cleared_per_address(ctx: Ctx) {
    let s = &ctx.store;
    let other = ctx.replica().await;
    let window = 60_000;
    let a = s
        .note_login_attempt("10.0.0.1", T0, T0 - window)
        .await
        .expect("note");
    assert_eq!((a.client, a.total), (1, 1));
    assert_eq!(a.client_oldest_ms, Some(T0));
    // Another replica sees it, and adds its own.
    let b = other
        .note_login_attempt("10.0.0.1", T0 + 10, T0 + 10 - window)
        .await
        .expect("note");
    assert_eq!((b.client, b.total), (2, 2));
    assert_eq!(b.client_oldest_ms, Some(T0));
    let c = s
        .note_login_attempt("10.0.0.2", T0 + 20, T0 + 20 - window)
        .await
        .expect("note");
    assert_eq!((c.client, c.total), (1, 3));
    assert_eq!(
        (c.client_oldest_ms, c.total_oldest_ms),
        (Some(T0 + 20), Some(T0))
    );
    // A refused attempt is forgotten: it does not push the wait further.
    s.forget_login_attempt(c.attempt_id).await.expect("forget");
    // Concurrent attempts each count the other.
    let (x, y) = tokio::join!(
        s.note_login_attempt("10.0.0.3", T0 + 30, T0 + 30 - window),
        other.note_login_attempt("10.0.0.3", T0 + 30, T0 + 30 - window),
    );
    let (x, y) = (x.expect("note"), y.expect("note"));
    assert_eq!(
        x.client.max(y.client),
        2,
        "the later of two racing attempts sees both"
    );
    assert_ne!(x.attempt_id, y.attempt_id);
    // A success clears that address only.
    assert_eq!(
        other.clear_login_failures("10.0.0.1").await.expect("clear"),
        2
    );
    let d = s
        .note_login_attempt("10.0.0.3", T0 + 40, T0 + 40 - window)
        .await
        .expect("note");
    assert_eq!((d.client, d.total), (3, 3));
    // Failures that left the window are not counted (and are forgotten): one made at the window's start has left.
    let e = s
        .note_login_attempt("10.0.0.3", T0 + 30 + window, T0 + 30)
        .await
        .expect("note");
    assert_eq!((e.client, e.total), (2, 2));
    let f = s
        .note_login_attempt("10.0.0.3", T0 + 31 + window, T0 + 31)
        .await
        .expect("note");
    assert_eq!((f.client, f.total), (3, 3));
    assert_eq!(f.client_oldest_ms, Some(T0 + 40));
    assert_eq!(
        ctx.count("SELECT COUNT(*) FROM console_login_failures")
            .await,
        3
    );
}
