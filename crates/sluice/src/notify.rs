//! The group flusher: noise control's clock (see `sluice_core::noise`).
//!
//! Ingest only records that an alert joined a group and when the group is due (`group_wait`, `group_interval`,
//! `repeat_interval`, kept on the group's row). One leader across replicas runs [`Notifier::tick`] a few times a
//! second: it asks the store for the due groups and turns each into Slack calls — the group's card the first time,
//! then `chat.update`s of it and thread replies (resolved, firing again, still firing) — committed with the group's
//! new state in one transaction, so a crash never loses or repeats a flush.
//!
//! The storm guard of a route sits in front: while the route gets more than `storm.above` events per `storm.per`,
//! due groups are *digested* instead (counted, no card), and one digest message per `storm.digest_every` gives the
//! counts per service and severity. The first digest says the storm started; the last one, when the rate has fallen
//! to half the limit, says it is over. Everything is decided from the time passed in, so tests drive it with their
//! own clock. The decisions themselves — what a due group becomes, what its card and thread say, when a digest is
//! due and what it counts — are `sluice_domain::flush`'s pure functions; this module runs the clock, reads and
//! commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_core::noise::{Storm, StormChange, StormGuard};
use sluice_core::render::{render_digest, DigestPhase, DigestView, GROUP_CARD_ALERTS};
use sluice_core::route::{NoiseRoute, Router};
use sluice_slack_wire::blocks::fit_message;
use sluice_store::{
    EventBody, Fate, GroupFlush, GroupState, NewEvent, NewOutboxItem, Store, StoreError,
};
use tokio::sync::{watch, Notify};

use sluice_domain::clock::at;
use sluice_domain::flush::{count_new, digest_phase, group_card, plan, updates, Plan};
use sluice_domain::outbox::outbox_item;

/// The leader role for flushing groups.
pub const NOTIFY_ROLE: &str = "notify";
/// How often the leader looks for due groups.
pub const TICK: Duration = Duration::from_millis(250);
/// Groups read per store call.
const BATCH: usize = 200;
/// Store calls per tick at most.
const MAX_BATCHES: usize = 20;

/// A route's storm: the guard, and what the digests have covered so far.
#[derive(Default)]
struct StormState {
    guard: StormGuard,
    /// The start of the period the next digest covers.
    from_ms: i64,
    /// Events per alert already counted in a digest of this storm, so each digest counts what is new.
    counted: HashMap<i64, u32>,
}

/// What one tick did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Groups that got a new card.
    pub posted: usize,
    /// Groups whose card was updated (or that got a thread reply).
    pub updated: usize,
    /// Groups counted in a storm digest instead.
    pub digested: usize,
    /// Groups flushed with nothing to say (resolved before their first card).
    pub quiet: usize,
    /// Digest messages enqueued.
    pub digests: usize,
}

pub struct Notifier {
    store: Arc<dyn Store>,
    /// The routes with a storm guard, each with its guard's settings.
    stormy: Arc<[(NoiseRoute, Storm)]>,
    team: String,
    /// A group whose last card showed it resolved longer ago than this starts a new card when it fires again.
    reopen_ms: i64,
    storms: BTreeMap<String, StormState>,
}

impl Notifier {
    pub fn new(store: Arc<dyn Store>, router: &Router, team: &str, reopen_ms: i64) -> Self {
        Notifier {
            store,
            stormy: router
                .noise_routes()
                .into_iter()
                .filter_map(|r| r.noise.storm.clone().map(|s| (r, s)))
                .collect(),
            team: team.to_string(),
            reopen_ms,
            storms: BTreeMap::new(),
        }
    }

    /// Whether the route `rule` is in a storm now.
    pub fn in_storm(&self, rule: &str) -> bool {
        self.storms
            .get(rule)
            .is_some_and(|s| s.guard.since_ms().is_some())
    }

    /// One pass at `now_ms`: the storm guards, then every due group.
    pub async fn tick(&mut self, now_ms: i64) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        self.watch_storms(now_ms, &mut report).await?;
        // Bounded, so a backlog (or groups that keep failing) cannot hold the tick forever; the rest is due
        // at the next one.
        for _ in 0..MAX_BATCHES {
            let due = self
                .store
                .due_groups(now_ms, BATCH, GROUP_CARD_ALERTS)
                .await?;
            let n = due.len();
            let mut failed = 0;
            for g in due {
                let id = g.id;
                if let Err(e) = self.flush(g, now_ms, &mut report).await {
                    // One bad group must not stop the others: it stays due and is tried again next tick.
                    tracing::warn!(group = id, error = %e, "group flush failed");
                    failed += 1;
                }
            }
            if n < BATCH || failed == n {
                break;
            }
        }
        Ok(report)
    }

    async fn watch_storms(
        &mut self,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let stormy = self.stormy.clone();
        for (route, storm) in stormy.iter() {
            let rate = self
                .store
                .route_rate(&route.rule, now_ms - storm.window_ms)
                .await?;
            let state = self.storms.entry(route.rule.clone()).or_default();
            let change = state.guard.observe(storm, now_ms, rate);
            match change {
                StormChange::Started => {
                    state.from_ms = now_ms - storm.window_ms;
                    state.counted.clear();
                    tracing::warn!(route = %route.rule, rate = state.guard.rate(), "alert storm: switching to digests");
                    metrics::gauge!("sluice_storm_active", "route" => route.rule.clone()).set(1.0);
                }
                StormChange::Ended => {
                    let absorbed = self.store.absorb_groups(&route.rule, now_ms).await?;
                    tracing::info!(route = %route.rule, absorbed, "alert storm over: back to cards");
                    metrics::gauge!("sluice_storm_active", "route" => route.rule.clone()).set(0.0);
                }
                StormChange::Steady => {}
            }
            let state = self.storms.entry(route.rule.clone()).or_default();
            let since = state.guard.since_ms();
            if let Some(phase) = digest_phase(change, since, state.from_ms, storm.digest_ms, now_ms)
            {
                self.digest(route, storm, phase, now_ms).await?;
                report.digests += 1;
            }
        }
        Ok(())
    }

    /// Enqueues one digest of `route` for the period since the last one, in each of its channels.
    async fn digest(
        &mut self,
        route: &NoiseRoute,
        storm: &Storm,
        phase: DigestPhase,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let state = self.storms.entry(route.rule.clone()).or_default();
        let from_ms = state.from_ms;
        let counts = count_new(
            &mut state.counted,
            self.store.route_alerts(&route.rule, from_ms).await?,
        );
        let storm_since = state.guard.since_ms().unwrap_or(from_ms);
        let mut args = render_digest(&DigestView {
            route: &route.rule,
            phase,
            storm,
            rate: state.guard.rate(),
            storm_since: at(storm_since),
            from: at(from_ms),
            now: at(now_ms),
            counts: &counts,
        });
        fit_message(&mut args);
        state.from_ms = now_ms;
        if phase == DigestPhase::Ended {
            state.counted.clear();
        }
        let outbox: Vec<NewOutboxItem> = route
            .channels
            .iter()
            .map(|c| {
                let mut a = args.clone();
                a["channel"] = json!(c.trim_start_matches('#'));
                outbox_item(&self.team, c, "chat.postMessage", a)
            })
            .collect();
        let phase_name = match phase {
            DigestPhase::Started => "started",
            DigestPhase::Ongoing => "ongoing",
            DigestPhase::Ended => "ended",
        };
        let event = NewEvent {
            id: format!("dig_{}", uuid::Uuid::now_v7().simple()),
            received_at_ms: now_ms,
            source: "sluice".into(),
            body: EventBody::of(&json!({
                "digest": route.rule, "phase": phase_name, "from_ms": from_ms, "to_ms": now_ms,
                "alerts": counts.alerts(), "events": counts.events(),
                "by": counts.by.iter().map(|((service, severity), (alerts, events))| json!({
                    "service": service, "severity": severity, "alerts": alerts, "events": events,
                })).collect::<Vec<_>>(),
            })),
            fate: Fate::Queued {
                rules: vec![format!("storm:{}", route.rule)],
            },
            outbox,
            dedup: None,
            inhibit: Default::default(),
            follow_up: None,
        };
        self.store.ingest(vec![event]).await?;
        metrics::counter!("sluice_storm_digests_total", "route" => route.rule.clone()).increment(1);
        Ok(())
    }

    async fn flush(
        &mut self,
        g: GroupState,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let mut flush = GroupFlush {
            group_id: g.id,
            version: g.version,
            post: None,
            updates: Vec::new(),
            notified_firing: g.firing,
            next_due_ms: (g.firing > 0).then_some(now_ms + g.repeat_ms),
            digested: false,
        };
        let plan = plan(&g, self.in_storm(&g.rule), now_ms, self.reopen_ms);
        let outcome = match plan {
            Plan::Digest => {
                flush.digested = true;
                report.digested += 1;
                "digested"
            }
            Plan::Quiet { digested } => {
                flush.digested = digested;
                report.quiet += 1;
                "quiet"
            }
            Plan::Post | Plan::Update { .. } => {
                let actions = self.store.alert_actions(&g.first_event_id).await?;
                let card = group_card(&g, now_ms, &actions);
                if let Plan::Update { repeat } = plan {
                    flush.updates = updates(&g, card, repeat, now_ms);
                    report.updated += 1;
                    "updated"
                } else {
                    flush.post = Some(outbox_item(&g.team, &g.channel, "chat.postMessage", card));
                    report.posted += 1;
                    "posted"
                }
            }
        };
        metrics::counter!("sluice_group_flushes_total", "outcome" => outcome).increment(1);
        self.store.flush_group(flush, now_ms).await
    }
}

/// Runs the flusher while this process leads the `notify` role (one leader across replicas), until `stop`.
pub async fn run(
    mut notifier: Notifier,
    owner: String,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let lease_ms = 10 * TICK.as_millis() as i64;
    let mut leading = false;
    let mut last_lease = 0;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(TICK) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if stopping {
            if leading {
                let _ = notifier.store.resign(NOTIFY_ROLE, &owner).await;
            }
            return;
        }
        let now = crate::state::now_ms();
        if !leading || now - last_lease > lease_ms / 3 {
            match notifier
                .store
                .try_lead(NOTIFY_ROLE, &owner, now, lease_ms)
                .await
            {
                Ok(l) => {
                    if l && !leading {
                        tracing::info!("leading the group flusher");
                    }
                    leading = l;
                    last_lease = now;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "flusher leadership check failed");
                    leading = false;
                }
            }
        }
        if !leading {
            continue;
        }
        match notifier.tick(now).await {
            Ok(r) => {
                if r != TickReport::default() {
                    tracing::debug!(?r, "flushed groups");
                    wake.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "group flush failed"),
        }
    }
}
