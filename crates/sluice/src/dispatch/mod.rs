//! The dispatcher: the only place that sends from the outbox (Slack calls, and outgoing calls to internal systems in `http_call.rs`).
//!
//! Work is split into *lanes*, one per (workspace, channel). [`Dispatcher::run`] claims lanes
//! from the store with a lease and starts one worker per lane. A worker sends that lane's items
//! strictly in order, one at a time, after the client-side [`Limiter`] says the call fits Slack's
//! rate for its key (per channel for chat.postMessage, per method tier otherwise), so one slow
//! or rate-limited channel never holds up another. Every outcome is classified by
//! [`sluice_slack::retry::classify`]: delivered, wait exactly Retry-After (for that key only),
//! back off with full jitter, or dead-letter with the reason. An item is marked in the store
//! before the worker moves on, so a crash loses nothing: the lease expires and the lane is
//! worked again (the one in-flight call may then be sent twice).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod gate;
mod http_call;
pub mod recover;
pub use gate::RateGate;
pub use http_call::{classify as classify_http, Attempt, Outgoing};

use serde_json::Value;
use sluice_core::render::Renderer;
use sluice_slack::api::{Client, SlackError};
use sluice_slack::ratelimit::RateKey;
use sluice_slack::retry::{backoff, classify, Outcome};
use sluice_store::{OutboxItem, Store, StoreError};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn, Instrument};

use crate::config::DispatchConfig;
use crate::state::{now, now_ms};
use sluice_domain::living;

/// How often idle dispatchers look for work nobody rang them about (other replicas' events,
/// retries coming due).
const POLL: Duration = Duration::from_millis(50);
/// How often a lane worker retries the store while the database is unreachable.
const STORE_RETRY: Duration = Duration::from_millis(500);
/// Items fetched per lane per round trip to the store.
const LANE_BATCH: usize = 32;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    client: Client,
    gate: RateGate,
    owner: String,
    cfg: DispatchConfig,
    wake: Arc<Notify>,
    /// Renders living alert items (see `sluice_domain::living`) at send time, with the templates in force then
    /// (a reload may change them).
    renderer: Box<dyn Fn() -> Arc<Renderer> + Send + Sync>,
    /// Outgoing calls to internal systems (`http.request` items): where they may go, their signing secret.
    outgoing: Box<dyn Fn() -> Outgoing + Send + Sync>,
    /// Lanes this process works now, each with a flag set when its lease was lost.
    active: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Told when a call an incident waits on ended (its war room's creation, its lookup).
    incidents: std::sync::OnceLock<Arc<crate::incidents::Hooks>>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        client: Client,
        gate: RateGate,
        cfg: DispatchConfig,
        wake: Arc<Notify>,
        renderer: impl Fn() -> Arc<Renderer> + Send + Sync + 'static,
        outgoing: impl Fn() -> Outgoing + Send + Sync + 'static,
    ) -> Arc<Self> {
        let owner = format!(
            "{}/{}-{}",
            recover::host(),
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        Arc::new(Dispatcher {
            store,
            client,
            gate,
            owner,
            cfg,
            wake,
            renderer: Box::new(renderer),
            outgoing: Box::new(outgoing),
            active: Mutex::new(HashMap::new()),
            incidents: std::sync::OnceLock::new(),
        })
    }

    /// Tells incidents when their war room was created or their lookup answered (`server::start`).
    pub fn follow_incidents(&self, hooks: Arc<crate::incidents::Hooks>) {
        let _ = self.incidents.set(hooks);
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn lease_ms(&self) -> i64 {
        self.cfg.lease_ms as i64
    }

    fn active_lanes(&self) -> Vec<String> {
        self.active
            .lock()
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Claim and work lanes until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        info!(owner = %self.owner, "dispatcher started");
        self.take_back_dead_leases().await;
        let renewer = tokio::spawn(self.clone().renew_leases(shutdown.clone()));
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = self
                .cfg
                .max_lanes
                .saturating_sub(self.active.lock().map(|a| a.len()).unwrap_or(0));
            if free > 0 {
                match self
                    .store
                    .claim_lanes(&self.owner, now_ms(), self.lease_ms(), free)
                    .await
                {
                    Ok(lanes) => {
                        for lane in lanes {
                            self.start_lane(lane);
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "claiming lanes failed; will retry");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
        renewer.abort();
        // Give in-flight calls a moment, then hand the lanes back so another replica (or our
        // successor) need not wait for the leases to expire.
        for lane in self.active_lanes() {
            let _ = self.store.release_lane(&self.owner, &lane).await;
        }
        info!(owner = %self.owner, "dispatcher stopped");
    }

    /// Ends the leases of this host's earlier runs that are gone (a crash, a SIGKILL), so their lanes are worked now
    /// rather than when the leases run out. Their heads read back as possibly sent, and are looked for in Slack.
    async fn take_back_dead_leases(&self) {
        let holders = match self.store.lease_holders(now_ms()).await {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "could not read who holds leases; waiting for them to expire");
                return;
            }
        };
        for holder in holders.iter().filter(|h| recover::is_dead_local_owner(h)) {
            match self.store.expire_leases(holder, now_ms()).await {
                Ok(n) => {
                    info!(previous = %holder, lanes = n, "took back the leases of an earlier run")
                }
                Err(e) => warn!(previous = %holder, error = %e, "could not take back leases"),
            }
        }
    }

    fn start_lane(self: &Arc<Self>, lane: String) {
        let lost = Arc::new(AtomicBool::new(false));
        {
            let Ok(mut active) = self.active.lock() else {
                return;
            };
            if active.contains_key(&lane) {
                return;
            }
            active.insert(lane.clone(), lost.clone());
        }
        let me = self.clone();
        let span = tracing::info_span!("lane", lane = %lane);
        tokio::spawn(
            async move {
                let result = me.work_lane(&lane, &lost).await;
                if let Err(e) = result {
                    warn!(error = %e, "lane worker stopped on a store error; the lease will expire and the lane be retried");
                }
                if let Ok(mut active) = me.active.lock() {
                    active.remove(&lane);
                }
                if !lost.load(Ordering::Relaxed) {
                    let _ = me.store.release_lane(&me.owner, &lane).await;
                }
                // Work may have arrived while we were finishing: look again now.
                me.wake.notify_one();
            }
            .instrument(span),
        );
    }

    /// Keep our leases alive; a lane whose lease was lost (we stalled, another replica took
    /// it) is flagged so its worker stops before sending anything more.
    async fn renew_leases(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let every = Duration::from_millis((self.cfg.lease_ms / 3).max(100));
        loop {
            tokio::time::sleep(every).await;
            if *shutdown.borrow() {
                return;
            }
            let lanes = self.active_lanes();
            if lanes.is_empty() {
                continue;
            }
            match self
                .store
                .renew_leases(&self.owner, &lanes, now_ms(), self.lease_ms())
                .await
            {
                Ok(held) => {
                    if let Ok(active) = self.active.lock() {
                        for (lane, lost) in active.iter() {
                            if !held.contains(lane) {
                                warn!(%lane, "lease lost; stopping this lane");
                                lost.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
                Err(e) => warn!(error = %e, "renewing leases failed"),
            }
        }
    }

    /// Run a store operation until it succeeds, riding out a database outage for as long as
    /// we hold the lane (a failover or restart of PostgreSQL takes seconds). Other errors, and
    /// a lost lease, end the attempt.
    async fn persist<T, F, Fut>(&self, lost: &AtomicBool, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        loop {
            match op().await {
                Err(StoreError::Unavailable(detail)) if !lost.load(Ordering::Relaxed) => {
                    debug!(%detail, "store unavailable; retrying");
                    tokio::time::sleep(STORE_RETRY).await;
                }
                other => return other,
            }
        }
    }

    async fn work_lane(&self, lane: &str, lost: &AtomicBool) -> Result<(), StoreError> {
        loop {
            let items = self
                .persist(lost, || self.store.lane_items(lane, LANE_BATCH))
                .await?;
            if items.is_empty() {
                return Ok(());
            }
            for item in items {
                if lost.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if item.ref_pending {
                    // Waits for a post that is not sent yet; the store offers the lane again
                    // once it is.
                    return Ok(());
                }
                self.deliver(item, lost).await?;
            }
        }
    }

    /// Send one item until it is delivered or dead-lettered (or the lease is lost).
    async fn deliver(&self, mut item: OutboxItem, lost: &AtomicBool) -> Result<(), StoreError> {
        if item.method == sluice_domain::outgoing::METHOD {
            return self.deliver_http(item, lost).await;
        }
        let mut key = RateKey::for_call(&item.team, &item.method, Some(&item.channel));
        let mut args = item.args.clone();
        // Set once an ephemeral is re-sent as a direct message: `args` then holds the DM.
        let mut as_dm = false;
        // A look for an earlier post that Slack could not answer: it stands in for this attempt's outcome.
        let mut lookup_failed: Option<SlackError> = None;
        // How many names a channel's creation tried after `name_taken`.
        let mut renamed = 0u32;
        loop {
            let wait_ms = item.next_attempt_at_ms - now_ms();
            if wait_ms > 0 {
                tokio::time::sleep(Duration::from_millis(wait_ms as u64)).await;
            }
            // Space calls before Slack has to say 429.
            self.persist(lost, || self.gate.acquire(&key)).await?;
            if lost.load(Ordering::Relaxed) {
                return Ok(());
            }
            if living::is_living(&item.args) {
                // An alert's first card, a refresh or a reply: rendered now, after the rate gate, so it shows
                // every duplicate that came in while it waited (the store stops coalescing into a refresh as we
                // read).
                let rendered = match self
                    .persist(lost, || self.store.alert_card(item.id))
                    .await?
                {
                    Some(card) => {
                        let actions = self
                            .persist(lost, || self.store.alert_actions(&card.first_event_id))
                            .await?;
                        let outgoing = (self.outgoing)();
                        let runs = self
                            .persist(lost, || {
                                crate::actions::shown_runs(
                                    &*self.store,
                                    &outgoing.actions,
                                    &card.first_event_id,
                                )
                            })
                            .await?;
                        living::render(
                            &(self.renderer)(),
                            &item.args,
                            &card,
                            &actions,
                            &runs,
                            now(),
                        )
                    }
                    None => Err("the alert this update belongs to is no longer stored".to_string()),
                };
                match rendered {
                    Ok(a) => args = a,
                    Err(reason) => return self.dead_letter(&item, &reason, now_ms(), lost).await,
                }
            }
            if let Some(event_id) = living::event_card_of(&item.args) {
                // The first card of an event without a dedup key, or its redraw (an `[[action]]` run's status):
                // drawn now from the event, its decisions and its runs as they stand.
                match self.event_card(&item.args, event_id, lost).await? {
                    Ok(a) => args = a,
                    Err(reason) => return self.dead_letter(&item, &reason, now_ms(), lost).await,
                }
            }
            if let Some(r) = item.ref_sent.as_ref().filter(|_| !as_dm) {
                args["channel"] = Value::String(r.channel.clone());
                // A message posted with a reference is a reply in the referenced message's thread; a pin names
                // its message by `timestamp`. A referenced call that answered with a channel and no ts (a
                // channel's creation) gives only its channel.
                let at = match item.method.as_str() {
                    "chat.postMessage" => "thread_ts",
                    "pins.add" | "pins.remove" => "timestamp",
                    _ => "ts",
                };
                if !r.ts.is_empty() {
                    args[at] = Value::String(r.ts.clone());
                }
            }
            // A post to a person (an approval asked of someone directly, an ephemeral sent as a direct message) goes
            // to the direct message `conversations.open` opens (or resumes) with them.
            if item.method == "chat.postMessage" && lookup_failed.is_none() {
                if let Some(user) = args["channel"].as_str().filter(|c| recover::is_user_id(c)) {
                    let user = user.to_string();
                    match self.open_dm(&item, &user, lost).await? {
                        Ok(channel) => args["channel"] = Value::String(channel),
                        // An app installed before it asked for `im:write`: Slack still takes a post to the user
                        // id, as Sluice sent it before.
                        Err(SlackError::Api { error, .. }) if error == "missing_scope" => {
                            warn!(item = item.id, "conversations.open needs the im:write scope; posting to the user id");
                        }
                        Err(e) => lookup_failed = Some(e),
                    }
                }
            }
            // A post is not idempotent: it carries its item id, and when an earlier attempt may have reached
            // Slack (a crash, a timeout, a lost lease), Slack is asked before posting again.
            if item.method == "chat.postMessage" && !as_dm {
                recover::tag(&mut args, item.id);
                if let Some(since) = item.sending_at_ms {
                    match self.earlier_post(&item, &args, since, lost).await? {
                        Ok(Some((channel, ts))) => {
                            info!(item = item.id, %channel, %ts, "an earlier attempt posted it; not posting again");
                            metrics::counter!("sluice_posts_found_after_retry_total").increment(1);
                            self.persist(lost, || {
                                self.store.mark_sent(item.id, &channel, &ts, now_ms())
                            })
                            .await?;
                            return Ok(());
                        }
                        Ok(None) => {}
                        // Slack could not answer now (an outage): this attempt fails as a post would.
                        Err(e) => lookup_failed = Some(e),
                    }
                }
                if lookup_failed.is_none() {
                    let at = now_ms();
                    self.persist(lost, || self.store.mark_sending(item.id, at))
                        .await?;
                    item.sending_at_ms.get_or_insert(at);
                }
            }
            let started = Instant::now();
            let result = match lookup_failed.take() {
                Some(e) => Err(e),
                // A Workflow Builder step's completion carries its execution's own token: sent as the bearer,
                // never as an argument.
                None => match args
                    .as_object_mut()
                    .filter(|_| item.method.starts_with("functions."))
                    .and_then(|a| a.remove("token"))
                {
                    Some(Value::String(token)) => {
                        let token = sluice_slack_wire::secret::Secret::new(token);
                        self.client
                            .call_with_token(&item.method, &args, &token)
                            .await
                    }
                    _ => self.client.call(&item.method, &args).await,
                },
            };
            let outcome = classify(&result);
            metrics::histogram!("sluice_slack_call_seconds", "method" => item.method.clone())
                .record(started.elapsed().as_secs_f64());
            let label = match &outcome {
                Outcome::Delivered => "ok",
                Outcome::RetryAfter(_) => "ratelimited",
                Outcome::Backoff => "retry",
                Outcome::DeadLetter(_) => "dead",
            };
            metrics::counter!("sluice_slack_calls_total", "method" => item.method.clone(), "outcome" => label)
                .increment(1);
            // Slack shows an ephemeral only to a member of the channel; someone who acted in a
            // channel they never joined is told in a direct message instead.
            let dm = match &outcome {
                Outcome::DeadLetter(_) if is_dm_fallback(&item.method, &result) => {
                    sluice_domain::outbox::ephemeral_as_dm(&args)
                }
                _ => None,
            };
            // A war room's name taken already (by a person, or an earlier incident of the same title): the next
            // suffix is tried, `-2`, `-3`, …
            if matches!(&outcome, Outcome::DeadLetter(_)) && is_name_taken(&item.method, &result) {
                renamed += 1;
                if renamed < 20 {
                    let base = item.args["name"].as_str().unwrap_or_default();
                    args["name"] = Value::String(sluice_domain::incident::next_name(base, renamed));
                    continue;
                }
            }
            if let Some(dm) = dm {
                debug!(
                    item = item.id,
                    "user_not_in_channel: sending as a direct message"
                );
                item.method = "chat.postMessage".into();
                as_dm = true;
                key = RateKey::for_call(&item.team, &item.method, dm["channel"].as_str());
                args = dm;
                continue;
            }
            let now = now_ms();
            match outcome {
                Outcome::Delivered => {
                    let reply = result.unwrap_or(Value::Null);
                    // A channel's creation answers with the channel as an object: its id is what later calls need.
                    let channel = reply["channel"]
                        .as_str()
                        .or(reply["channel"]["id"].as_str())
                        .unwrap_or(&item.channel);
                    let ts = reply["ts"].as_str().unwrap_or("");
                    // Slack has it: record that, however long the database takes, and never
                    // send it again because the record failed.
                    self.persist(lost, || self.store.mark_sent(item.id, channel, ts, now))
                        .await?;
                    metrics::histogram!("sluice_delivery_latency_seconds")
                        .record((now - item.created_at_ms).max(0) as f64 / 1000.0);
                    debug!(item = item.id, event_id = ?item.event_id, %channel, %ts, "delivered");
                    self.incident_room(&item, &reply).await;
                    return Ok(());
                }
                Outcome::DeadLetter(reason) => {
                    self.dead_letter(&item, &reason, now, lost).await?;
                    if item.method == "conversations.create" {
                        if let (Some(hooks), Some(id)) =
                            (self.incidents.get(), item.event_id.as_deref())
                        {
                            hooks.room_failed(id, &reason).await;
                        }
                    }
                    return Ok(());
                }
                Outcome::RetryAfter(wait) => {
                    // Slack said exactly how long: nothing for this key before then, other keys
                    // carry on.
                    metrics::counter!("sluice_slack_ratelimited_total", "method" => item.method.clone())
                        .increment(1);
                    self.persist(lost, || self.gate.penalize(&key, wait))
                        .await?;
                    self.schedule(&mut item, now, wait, "ratelimited", lost)
                        .await?;
                }
                Outcome::Backoff => {
                    let error = match &result {
                        Err(e) => e.to_string(),
                        Ok(_) => "transient failure".to_string(),
                    };
                    match self.retry_wait(&item, now, &error) {
                        Ok(wait) => self.schedule(&mut item, now, wait, &error, lost).await?,
                        Err(reason) => return self.dead_letter(&item, &reason, now, lost).await,
                    }
                }
            }
        }
    }

    /// The channel id and `ts` of a post of `item` made by an earlier attempt, if Slack has one. A rate limit is
    /// waited out; an error that may pass (an outage, a timeout) is returned, and the attempt retried later; a
    /// refusal that will not pass (a missing `channels:history` scope, say) is logged and answered "none": the post
    /// is then sent, and may show twice, which is better than not at all.
    async fn earlier_post(
        &self,
        item: &OutboxItem,
        args: &Value,
        since_ms: i64,
        lost: &AtomicBool,
    ) -> Result<Result<Option<(String, String)>, SlackError>, StoreError> {
        let named = args["channel"]
            .as_str()
            .unwrap_or(&item.channel)
            .to_string();
        // Slack's history reads take only ids; a lane named by channel name finds its id in its sent items, or,
        // when this post was its first, in the workspace's channel list.
        let known = if recover::is_channel_id(&named) {
            Some(named.clone())
        } else {
            self.persist(lost, || self.store.lane_channel_id(&item.lane))
                .await?
        };
        let channel = match known {
            Some(id) => id,
            None => {
                let key = RateKey::for_call(&item.team, "conversations.list", None);
                self.persist(lost, || self.gate.acquire(&key)).await?;
                let found = recover::channel_id(&self.client, &named).await;
                match (classify(&found), found) {
                    (_, Ok(Some(id))) => id,
                    (_, Ok(None)) => {
                        warn!(item = item.id, channel = %named, "no channel of that name to look in; posting");
                        return Ok(Ok(None));
                    }
                    (_, Err(e @ SlackError::RateLimited { .. })) => {
                        if let SlackError::RateLimited { retry_after, .. } = &e {
                            let wait = *retry_after;
                            self.persist(lost, || self.gate.penalize(&key, wait))
                                .await?;
                        }
                        return Ok(Err(e));
                    }
                    (Outcome::Backoff, Err(e)) => return Ok(Err(e)),
                    (_, Err(e)) => {
                        warn!(item = item.id, error = %e, "could not find the channel's id to look for an earlier post; posting, it may show twice");
                        return Ok(Ok(None));
                    }
                }
            }
        };
        let thread = args["thread_ts"].as_str();
        let method = if thread.is_some() {
            "conversations.replies"
        } else {
            "conversations.history"
        };
        let key = RateKey::for_call(&item.team, method, Some(&channel));
        for _ in 0..5 {
            self.persist(lost, || self.gate.acquire(&key)).await?;
            let found = recover::find_post(&self.client, &channel, thread, item.id, since_ms).await;
            match (classify(&found), found) {
                (_, Ok(found)) => return Ok(Ok(found.map(|ts| (channel, ts)))),
                (_, Err(SlackError::RateLimited { retry_after, .. })) => {
                    self.persist(lost, || self.gate.penalize(&key, retry_after))
                        .await?;
                }
                (Outcome::Backoff, Err(e)) => return Ok(Err(e)),
                (_, Err(e)) => {
                    warn!(item = item.id, error = %e, "could not look for an earlier post; posting, it may show twice");
                    return Ok(Ok(None));
                }
            }
        }
        warn!(
            item = item.id,
            "still rate-limited looking for an earlier post; posting, it may show twice"
        );
        Ok(Ok(None))
    }

    /// The args of an event card's marker (`sluice_domain::living::event_card_marker`) as the card should look
    /// now, or why it cannot be drawn.
    async fn event_card(
        &self,
        args: &Value,
        event_id: &str,
        lost: &AtomicBool,
    ) -> Result<Result<Value, String>, StoreError> {
        let Some(stored) = self.persist(lost, || self.store.event(event_id)).await? else {
            return Ok(Err(format!(
                "the event {event_id} of this card is no longer stored"
            )));
        };
        let event: sluice_core::event::Event = match serde_json::from_value(stored.body) {
            Ok(e) => e,
            Err(e) => return Ok(Err(format!("the event {event_id} cannot be read: {e}"))),
        };
        let actions = self
            .persist(lost, || self.store.alert_actions(event_id))
            .await?;
        let outgoing = (self.outgoing)();
        let runs = self
            .persist(lost, || {
                crate::actions::shown_runs(&*self.store, &outgoing.actions, event_id)
            })
            .await?;
        Ok(living::render_event_card(
            &(self.renderer)(),
            args,
            &event,
            &actions,
            &runs,
            now(),
        ))
    }

    /// The id of the direct message with `user`, through `conversations.open` (under the rate gate). A refusal or
    /// an outage is returned as the attempt's outcome.
    async fn open_dm(
        &self,
        item: &OutboxItem,
        user: &str,
        lost: &AtomicBool,
    ) -> Result<Result<String, SlackError>, StoreError> {
        let key = RateKey::for_call(&item.team, "conversations.open", None);
        self.persist(lost, || self.gate.acquire(&key)).await?;
        let opened = self
            .client
            .call("conversations.open", &serde_json::json!({ "users": user }))
            .await;
        if let Err(SlackError::RateLimited { retry_after, .. }) = &opened {
            let wait = *retry_after;
            self.persist(lost, || self.gate.penalize(&key, wait))
                .await?;
        }
        Ok(opened.and_then(|reply| {
            reply["channel"]["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| SlackError::Decode {
                    method: "conversations.open".into(),
                    detail: "no channel id in the answer".into(),
                })
        }))
    }

    /// How long to wait before the next attempt after a transient failure (`error`), or — once the item is older
    /// than `max_age_secs` — the reason it is given up.
    fn retry_wait(&self, item: &OutboxItem, now: i64, error: &str) -> Result<Duration, String> {
        let age = Duration::from_millis((now - item.created_at_ms).max(0) as u64);
        if age >= Duration::from_secs(self.cfg.max_age_secs) {
            return Err(format!(
                "gave up after {} attempts over {}s: {error}",
                item.attempts + 1,
                age.as_secs()
            ));
        }
        Ok(backoff(
            item.attempts,
            Duration::from_millis(self.cfg.backoff_base_ms),
            Duration::from_millis(self.cfg.backoff_max_ms),
            &mut rand::rng(),
        ))
    }

    /// Ends an item as dead, with the reason an operator reads in `sluice dlq list`.
    async fn dead_letter(
        &self,
        item: &OutboxItem,
        reason: &str,
        now: i64,
        lost: &AtomicBool,
    ) -> Result<(), StoreError> {
        warn!(item = item.id, method = %item.method, event_id = ?item.event_id, %reason, "dead-lettered");
        metrics::counter!("sluice_dead_letters_total").increment(1);
        self.persist(lost, || self.store.mark_dead(item.id, reason, now))
            .await
    }

    /// Record the next attempt in the store (so a restart honours it) and in `item`.
    async fn schedule(
        &self,
        item: &mut OutboxItem,
        now: i64,
        wait: Duration,
        error: &str,
        lost: &AtomicBool,
    ) -> Result<(), StoreError> {
        metrics::histogram!("sluice_retry_delay_seconds").record(wait.as_secs_f64());
        let at = now + wait.as_millis() as i64;
        debug!(item = item.id, wait_ms = wait.as_millis() as u64, %error, "retry scheduled");
        self.persist(lost, || self.store.mark_retry(item.id, at, error))
            .await?;
        item.attempts += 1;
        item.next_attempt_at_ms = at;
        Ok(())
    }
}

impl Dispatcher {
    /// An incident's war room was created: the incident commits what needed the channel's id.
    async fn incident_room(&self, item: &OutboxItem, reply: &Value) {
        if item.method != "conversations.create" {
            return;
        }
        let (Some(hooks), Some(id), Some(channel)) = (
            self.incidents.get(),
            item.event_id.as_deref(),
            reply["channel"]["id"].as_str(),
        ) else {
            return;
        };
        let name = reply["channel"]["name"].as_str().unwrap_or_default();
        hooks.room_created(id, channel, name).await;
        self.wake.notify_one();
    }
}

/// Whether a channel's creation was refused because the name is taken.
fn is_name_taken(method: &str, result: &Result<Value, SlackError>) -> bool {
    method == "conversations.create"
        && matches!(result, Err(SlackError::Api { error, .. }) if error == "name_taken")
}

/// Whether a refused call is an ephemeral whose user is not in the channel, which is sent again as
/// a direct message ([`sluice_domain::outbox::ephemeral_as_dm`]).
fn is_dm_fallback(method: &str, result: &Result<Value, SlackError>) -> bool {
    method == "chat.postEphemeral"
        && matches!(result, Err(SlackError::Api { error, .. }) if error == "user_not_in_channel")
}
