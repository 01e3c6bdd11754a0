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
//! own clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_core::event::Event;
use sluice_core::noise::{DigestCounts, Storm, StormChange, StormGuard};
use sluice_core::render::{
    group_firing_reply, group_resolved_reply, render_digest, render_group, DigestPhase, DigestView,
    GroupAlertView, GroupView, GROUP_CARD_ALERTS,
};
use sluice_core::route::{NoiseRoute, Router};
use sluice_slack_wire::blocks::fit_message;
use sluice_store::{Fate, GroupFlush, GroupState, NewEvent, NewOutboxItem, Store, StoreError};
use tokio::sync::{watch, Notify};

use sluice_domain::clock::at;
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
            let phase = match state.guard.observe(storm, now_ms, rate) {
                StormChange::Started => {
                    state.from_ms = now_ms - storm.window_ms;
                    state.counted.clear();
                    tracing::warn!(route = %route.rule, rate = state.guard.rate(), "alert storm: switching to digests");
                    metrics::gauge!("sluice_storm_active", "route" => route.rule.clone()).set(1.0);
                    Some(DigestPhase::Started)
                }
                StormChange::Ended => {
                    let absorbed = self.store.absorb_groups(&route.rule, now_ms).await?;
                    tracing::info!(route = %route.rule, absorbed, "alert storm over: back to cards");
                    metrics::gauge!("sluice_storm_active", "route" => route.rule.clone()).set(0.0);
                    Some(DigestPhase::Ended)
                }
                StormChange::Steady
                    if state.guard.since_ms().is_some()
                        && now_ms - state.from_ms >= storm.digest_ms =>
                {
                    Some(DigestPhase::Ongoing)
                }
                StormChange::Steady => None,
            };
            if let Some(phase) = phase {
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
        let mut counts = DigestCounts::default();
        for a in self.store.route_alerts(&route.rule, from_ms).await? {
            let before = state.counted.insert(a.alert_id, a.count).unwrap_or(0);
            let new = a.count.saturating_sub(before);
            if new == 0 {
                continue;
            }
            let (service, severity) = match serde_json::from_value::<Event>(a.body) {
                Ok(e) => (e.service, e.severity.as_str().to_owned()),
                Err(_) => (String::new(), "unknown".to_owned()),
            };
            counts.add(&service, &severity, u64::from(new));
        }
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
            body: json!({
                "digest": route.rule, "phase": phase_name, "from_ms": from_ms, "to_ms": now_ms,
                "alerts": counts.alerts(), "events": counts.events(),
                "by": counts.by.iter().map(|((service, severity), (alerts, events))| json!({
                    "service": service, "severity": severity, "alerts": alerts, "events": events,
                })).collect::<Vec<_>>(),
            }),
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
        mut g: GroupState,
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
        let stale = g.notified_firing == 0
            && g.notified_at_ms
                .is_some_and(|t| now_ms - t > self.reopen_ms);
        let plan = if self.in_storm(&g.rule) {
            Plan::Digest
        } else if g.post_item_id.is_none()
            && g.digested_at_ms.is_some()
            && g.firing <= g.notified_firing
        {
            // A storm digest counted this group and nothing new fires since: the digest stays its report, so the
            // end of a storm does not bring the flood of cards the digest held back.
            Plan::Quiet { digested: true }
        } else if g.post_item_id.is_none() || stale {
            if g.firing == 0 {
                // Resolved before anyone was told it fired: nothing to say.
                Plan::Quiet { digested: false }
            } else {
                Plan::Post
            }
        } else {
            Plan::Update {
                repeat: g.changed_at_ms.is_none(),
            }
        };
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
                let alerts: Vec<GroupAlertView> = std::mem::take(&mut g.alerts)
                    .into_iter()
                    .filter_map(|a| {
                        Some(GroupAlertView {
                            event: serde_json::from_value(a.body).ok()?,
                            count: a.count,
                            first_seen: at(a.first_seen_ms),
                            last_seen: at(a.last_seen_ms),
                            resolved_at: a.closed_at_ms.map(at),
                        })
                    })
                    .collect();
                let view = GroupView {
                    first_event_id: &g.first_event_id,
                    route: &g.rule,
                    labels: &g.labels,
                    firing: u64::try_from(g.firing).unwrap_or(0),
                    resolved: u64::try_from(g.resolved).unwrap_or(0),
                    events: u64::try_from(g.events).unwrap_or(0),
                    alerts: &alerts,
                    first_seen: at(g.created_at_ms),
                    now: at(now_ms),
                };
                let actions = self.store.alert_actions(&g.first_event_id).await?;
                let mut card = render_group(&view);
                sluice_domain::verb::show_actions(&mut card, &actions);
                card["channel"] = json!(g.channel);
                fit_message(&mut card);
                if let Plan::Update { repeat } = plan {
                    // Linked to the card: the dispatcher adds its ts (`chat.update`) or makes the message a
                    // thread reply.
                    let item = |method: &str, args: serde_json::Value| NewOutboxItem {
                        ref_post: true,
                        ..outbox_item(&g.team, &g.channel, method, args)
                    };
                    let reply = |text: String| {
                        item(
                            "chat.postMessage",
                            json!({ "channel": g.channel, "text": text }),
                        )
                    };
                    if !repeat {
                        flush.updates.push(item("chat.update", card));
                    }
                    match (g.notified_firing > 0, g.firing > 0) {
                        (true, false) => flush.updates.push(reply(group_resolved_reply(&view))),
                        (false, true) => flush.updates.push(reply(group_firing_reply(&view, true))),
                        (true, true) if repeat => {
                            flush.updates.push(reply(group_firing_reply(&view, false)))
                        }
                        _ => {}
                    }
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

/// What a flush does with a due group.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// The route is in a storm: the group is counted in the digest.
    Digest,
    /// Nothing to tell (`digested`: a storm digest stays the group's report).
    Quiet { digested: bool },
    /// The group's first card, or a new one after a long quiet.
    Post,
    /// The card is updated (unless this is only a `repeat_interval` reminder) and the thread told what changed.
    Update { repeat: bool },
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
