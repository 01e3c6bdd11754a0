//! The simulated workspace: [`State`] holds channels, messages, users, views, recorded calls, rate
//! buckets and faults. Every operation takes `now` from the caller, so the HTTP layer owns the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::bucket::Limiter;
use crate::model::{Call, ChannelInfo, Faults, Message, User, Usergroup, View};
use crate::SimConfig;

/// The bot user every API and webhook post is authored by.
pub const BOT_USER_ID: &str = "U0BOT";
/// The bot's id (`bot_id` on its messages).
pub const BOT_ID: &str = "B0BOT";

/// The simulator's clock: monotonic, and movable forward by tests (`skew`) so that rate limits and
/// outages can be crossed without sleeping.
#[derive(Debug, Clone)]
pub struct Clock {
    start: Instant,
    skew: Duration,
    /// Unix time in microseconds at `start`; message `ts` values count on from it.
    wall_start_micros: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1_700_000_000_000_000);
        Self {
            start: Instant::now(),
            skew: Duration::ZERO,
            wall_start_micros: wall,
        }
    }

    pub fn now(&self) -> Instant {
        Instant::now() + self.skew
    }

    pub fn advance(&mut self, by: Duration) {
        self.skew += by;
    }

    pub fn since_start(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    /// Unix time in microseconds on the simulator's clock.
    pub fn unix_micros(&self, now: Instant) -> u64 {
        self.wall_start_micros + self.since_start(now).as_micros() as u64
    }
}

/// One channel (public, private or a DM) and its messages in post order.
#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub created: u64,
    pub topic: String,
    pub is_private: bool,
    pub is_im: bool,
    pub members: BTreeSet<String>,
    pub messages: Vec<Message>,
    pub purpose: String,
    pub is_archived: bool,
    /// The `ts` of pinned messages, in pin order.
    pub pins: Vec<String>,
}

impl Channel {
    pub fn info_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "created": self.created,
            "is_channel": !self.is_im && !self.is_private, "is_group": self.is_private,
            "is_im": self.is_im, "is_private": self.is_private, "is_archived": self.is_archived,
            "is_member": self.members.contains(BOT_USER_ID), "num_members": self.members.len(),
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        })
    }

    pub fn find(&self, ts: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.ts == ts)
    }

    pub fn find_mut(&mut self, ts: &str) -> Option<&mut Message> {
        self.messages.iter_mut().find(|m| m.ts == ts)
    }
}

/// An ephemeral message: seen by one user, never part of the channel history.
#[derive(Debug, Clone, Serialize)]
pub struct Ephemeral {
    pub channel: String,
    pub user: String,
    pub ts: String,
    pub text: String,
    pub blocks: Value,
    /// How it was sent: `chat.postEphemeral`, `response_url` or `command_response` (the body of
    /// the app's answer to a slash command).
    pub via: String,
}

/// A `response_url` handed out with an interaction or slash command: usable
/// [`RESPONSE_URL_MAX_USES`] times within [`RESPONSE_URL_TTL`].
#[derive(Debug, Clone, Serialize)]
pub struct ResponseUrl {
    pub id: String,
    #[serde(skip)]
    pub created: Instant,
    pub uses: u32,
    /// The user who clicked or typed the command: ephemeral replies go to them.
    pub user: String,
    /// Channel id the interaction happened in.
    pub channel: Option<String>,
    /// The message a button was clicked on (`replace_original` / `delete_original` act on it).
    pub message_ts: Option<String>,
}

/// Slack: a response_url may be used five times within thirty minutes.
pub const RESPONSE_URL_MAX_USES: u32 = 5;
pub const RESPONSE_URL_TTL: Duration = Duration::from_secs(30 * 60);
/// Slack: a trigger_id must be exchanged (views.open) within three seconds.
pub const TRIGGER_TTL: Duration = Duration::from_secs(3);

/// A trigger_id handed out with an interaction or command.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub issued: Instant,
    pub used: bool,
    /// Who clicked or typed: a modal opened with this trigger is theirs.
    pub user: Option<String>,
}

/// A message waiting for its `post_at`.
#[derive(Debug, Clone, Serialize)]
pub struct Scheduled {
    pub id: String,
    pub channel: String,
    pub post_at: u64,
    pub text: String,
    pub blocks: Value,
    pub thread_ts: Option<String>,
}

/// What is known about the currently injected faults, beyond the public [`Faults`].
#[derive(Debug, Clone, Default)]
pub struct FaultState {
    pub faults: Faults,
    /// When the faults were set: a storm lasts from here.
    pub set_at: Option<Instant>,
}

impl FaultState {
    pub fn storm_retry_after(&self, now: Instant) -> Option<u64> {
        let (dur, retry) = self.faults.storm?;
        let start = self.set_at?;
        (now < start + dur).then_some(retry.max(1))
    }
}

#[derive(Debug)]
pub struct State {
    pub cfg: SimConfig,
    pub clock: Clock,
    pub channels: Vec<Channel>,
    next_channel: u64,
    pub users: Vec<User>,
    pub usergroups: Vec<Usergroup>,
    pub views: BTreeMap<String, View>,
    next_view: u64,
    /// Modals the user has closed (Cancel, an empty or `clear` answer to a submission): the page no longer shows
    /// them. They stay in `views`, as Slack's ids stay valid for `views.update` a while.
    pub closed_views: BTreeSet<String>,
    /// The app's `response_action: errors` for a modal (block_id → message), shown under the fields until the
    /// next submission.
    pub view_errors: BTreeMap<String, Map<String, Value>>,
    pub ephemerals: Vec<Ephemeral>,
    pub scheduled: Vec<Scheduled>,
    next_scheduled: u64,
    pub calls: Vec<Call>,
    next_seq: u64,
    last_ts_micros: u64,
    pub limiter: Limiter,
    pub faults: FaultState,
    pub response_urls: BTreeMap<String, ResponseUrl>,
    pub triggers: BTreeMap<String, Trigger>,
    /// Event bodies sent, by `event_id`, so that a redelivery sends the same bytes.
    pub events_sent: BTreeMap<String, Value>,
    /// Requests the simulator sent to the app, oldest first.
    pub deliveries: Vec<crate::model::Delivery>,
    next_id: u64,
    /// `http://host:port` the simulator is served on, once known (response_url and socket URLs).
    pub self_url: Option<String>,
    pub socket: crate::socket::SocketState,
    /// Workflow Builder step executions (`functions.rs`).
    pub functions: crate::executions::Functions,
}

/// Channel names Slack accepts: lowercase letters, digits, `-` and `_`, at most 80.
pub fn is_valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn seed_users() -> Vec<User> {
    [
        ("U0001", "alice", "Alice Archer"),
        ("U0002", "bob", "Bob Baker"),
        ("U0003", "carol", "Carol Chen"),
        ("U0004", "dave", "Dave Diaz"),
    ]
    .into_iter()
    .map(|(id, name, real)| User {
        id: id.into(),
        name: name.into(),
        real_name: real.into(),
        email: format!("{name}@example.com"),
    })
    .collect()
}

impl State {
    pub fn new(cfg: SimConfig) -> Self {
        let mut s = Self {
            cfg,
            clock: Clock::new(),
            channels: Vec::new(),
            next_channel: 1,
            users: seed_users(),
            usergroups: vec![Usergroup {
                id: "S0001".into(),
                handle: "oncall".into(),
                users: vec!["U0001".into(), "U0002".into()],
            }],
            views: BTreeMap::new(),
            closed_views: BTreeSet::new(),
            view_errors: BTreeMap::new(),
            next_view: 1,
            ephemerals: Vec::new(),
            scheduled: Vec::new(),
            next_scheduled: 1,
            calls: Vec::new(),
            next_seq: 1,
            last_ts_micros: 0,
            limiter: Limiter::default(),
            faults: FaultState::default(),
            response_urls: BTreeMap::new(),
            triggers: BTreeMap::new(),
            events_sent: BTreeMap::new(),
            deliveries: Vec::new(),
            next_id: 1,
            self_url: None,
            socket: crate::socket::SocketState::default(),
            functions: Default::default(),
        };
        s.seed_channels();
        s
    }

    fn seed_channels(&mut self) {
        let now = self.clock.now();
        let mut names: Vec<String> = self.cfg.channels.clone();
        // A webhook's channel exists from the start, the way installing a webhook picks one.
        names.extend(self.cfg.webhooks.iter().map(|(_, ch)| ch.clone()));
        for name in names {
            let name = name.trim_start_matches('#').to_string();
            if self.channel_index(&name).is_none() {
                self.create_channel(&name, false, now);
            }
        }
    }

    /// Forgets everything that happened, keeping the config, the clock and the ts sequence (so
    /// that no `ts` or call `seq` is ever handed out twice).
    pub fn reset(&mut self) {
        let mut fresh = State::new(self.cfg.clone());
        fresh.clock = self.clock.clone();
        fresh.last_ts_micros = self.last_ts_micros;
        fresh.next_seq = self.next_seq;
        fresh.next_id = self.next_id;
        fresh.self_url = self.self_url.take();
        // The app stays connected across a reset, as it would to Slack; only the counters restart.
        fresh.socket = std::mem::take(&mut self.socket);
        fresh.socket.reset_counters();
        *self = fresh;
    }

    pub fn create_channel(&mut self, name: &str, is_private: bool, now: Instant) -> usize {
        let id = format!("C{:06}", self.next_channel);
        self.next_channel += 1;
        self.channels.push(Channel {
            id,
            name: name.to_string(),
            created: self.clock.unix_micros(now) / 1_000_000,
            topic: String::new(),
            is_private,
            is_im: false,
            members: [BOT_USER_ID.to_string()].into_iter().collect(),
            messages: Vec::new(),
            purpose: String::new(),
            is_archived: false,
            pins: Vec::new(),
        });
        self.channels.len() - 1
    }

    /// Creates a channel the way a person would in Slack's client: with the members they chose,
    /// the bot among them only if `with_bot`.
    pub fn create_user_channel(
        &mut self,
        name: &str,
        is_private: bool,
        members: &[String],
        with_bot: bool,
        now: Instant,
    ) -> Result<usize, String> {
        let name = name.trim_start_matches('#');
        if !is_valid_channel_name(name) {
            return Err(format!("`{name}` is not a valid channel name"));
        }
        if self.channel_index(name).is_some() {
            return Err(format!("a channel named `{name}` exists"));
        }
        if let Some(u) = members
            .iter()
            .find(|m| !self.users.iter().any(|u| &u.id == *m))
        {
            return Err(format!("no user `{u}` in the workspace"));
        }
        let i = self.create_channel(name, is_private, now);
        let c = &mut self.channels[i];
        c.members.extend(members.iter().cloned());
        if !with_bot {
            c.members.remove(BOT_USER_ID);
        }
        Ok(i)
    }

    /// Finds a channel by id ("C000001"), name ("alerts") or "#alerts".
    pub fn channel_index(&self, key: &str) -> Option<usize> {
        if let Some(i) = self.channels.iter().position(|c| c.id == key) {
            return Some(i);
        }
        let name = key.strip_prefix('#').unwrap_or(key);
        self.channels.iter().position(|c| c.name == name)
    }

    /// Resolves the `channel` argument of a post: a known channel, a user id (their DM, opened on
    /// first use), or a new channel when `auto_create_channels` is on and `key` is a valid name.
    pub fn resolve_for_post(&mut self, key: &str, now: Instant) -> Option<usize> {
        if let Some(i) = self.channel_index(key) {
            return Some(i);
        }
        if let Some(i) = self.open_im(key, now) {
            return Some(i);
        }
        let name = key.strip_prefix('#').unwrap_or(key);
        if self.cfg.auto_create_channels && is_valid_channel_name(name) {
            return Some(self.create_channel(name, false, now));
        }
        None
    }

    /// The direct message between the bot and user `user_id` (opened on first use), or `None` for an unknown user.
    pub fn open_im(&mut self, user_id: &str, now: Instant) -> Option<usize> {
        if let Some(i) = self
            .channels
            .iter()
            .position(|c| c.is_im && c.name == user_id)
        {
            return Some(i);
        }
        if let Some(user) = self.users.iter().find(|u| u.id == user_id).cloned() {
            let id = format!("D{:06}", self.next_channel);
            self.next_channel += 1;
            self.channels.push(Channel {
                id,
                name: user.id.clone(),
                created: self.clock.unix_micros(now) / 1_000_000,
                topic: String::new(),
                is_private: false,
                is_im: true,
                members: [BOT_USER_ID.to_string(), user.id].into_iter().collect(),
                messages: Vec::new(),
                purpose: String::new(),
                is_archived: false,
                pins: Vec::new(),
            });
            return Some(self.channels.len() - 1);
        }
        None
    }

    /// A fresh message `ts`: Unix time with microseconds, strictly increasing across the whole
    /// workspace (and so per channel), even for posts within the same microsecond.
    pub fn next_ts(&mut self, now: Instant) -> String {
        let micros = self.clock.unix_micros(now).max(self.last_ts_micros + 1);
        self.last_ts_micros = micros;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }

    pub fn unix_secs(&self, now: Instant) -> u64 {
        self.clock.unix_micros(now) / 1_000_000
    }

    pub fn next_view_id(&mut self) -> String {
        let id = format!("V{:06}", self.next_view);
        self.next_view += 1;
        id
    }

    /// A number never handed out before in this simulator (ids of events, envelopes, URLs).
    pub fn next_id(&mut self) -> u64 {
        let n = self.next_id;
        self.next_id += 1;
        n
    }

    /// A fresh trigger_id in Slack's shape (`digits.digits.hex`), valid for [`TRIGGER_TTL`].
    pub fn issue_trigger(&mut self, now: Instant) -> String {
        self.issue_trigger_for(None, now)
    }

    /// A trigger_id handed to `user`: the modal it opens shows on their screen.
    pub fn issue_trigger_for(&mut self, user: Option<&str>, now: Instant) -> String {
        let n = self.next_id();
        let id = format!(
            "{}.{}.{:032x}",
            self.unix_secs(now) * 1000 + n,
            47_445_629_121u64,
            rand::random::<u128>()
        );
        self.triggers.insert(
            id.clone(),
            Trigger {
                issued: now,
                used: false,
                user: user.map(String::from),
            },
        );
        id
    }

    /// Exchanges a trigger_id the way views.open does: once, within three seconds.
    pub fn use_trigger(&mut self, id: &str, now: Instant) -> Result<(), &'static str> {
        let t = self.triggers.get_mut(id).ok_or("invalid_trigger_id")?;
        if now > t.issued + TRIGGER_TTL {
            return Err("expired_trigger_id");
        }
        if t.used {
            return Err("exchanged_trigger_id");
        }
        t.used = true;
        Ok(())
    }

    /// A fresh response_url for an interaction by `user`.
    pub fn issue_response_url(
        &mut self,
        user: &str,
        channel: Option<String>,
        message_ts: Option<String>,
        now: Instant,
    ) -> String {
        let id = format!("{}{:016x}", self.next_id(), rand::random::<u64>());
        self.response_urls.insert(
            id.clone(),
            ResponseUrl {
                id: id.clone(),
                created: now,
                uses: 0,
                user: user.to_string(),
                channel,
                message_ts,
            },
        );
        format!("{}/sim/response/{id}", self.base_url())
    }

    /// Where the simulator is reachable; before `serve` a placeholder that still names the path.
    pub fn base_url(&self) -> String {
        self.self_url
            .clone()
            .unwrap_or_else(|| "http://sim.localhost".into())
    }

    pub fn next_scheduled_id(&mut self) -> String {
        let id = format!("Q{:06}", self.next_scheduled);
        self.next_scheduled += 1;
        id
    }

    /// Posts every scheduled message whose time has come, in `post_at` order.
    pub fn deliver_scheduled(&mut self, now: Instant) {
        let unix = self.unix_secs(now);
        if !self.scheduled.iter().any(|s| s.post_at <= unix) {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.scheduled)
            .into_iter()
            .partition(|s| s.post_at <= unix);
        self.scheduled = later;
        let mut due = due;
        due.sort_by_key(|s| s.post_at);
        for s in due {
            if let Some(i) = self.channel_index(&s.channel) {
                let ts = self.next_ts(now);
                let channel = self.channels[i].id.clone();
                self.channels[i].messages.push(Message {
                    channel,
                    ts,
                    thread_ts: s.thread_ts,
                    text: s.text,
                    blocks: s.blocks,
                    metadata: None,
                    edits: 0,
                    reactions: Vec::new(),
                    user: BOT_USER_ID.into(),
                    reply_broadcast: false,
                    attachments: None,
                });
            }
        }
    }

    pub fn record(&mut self, now: Instant, mut call: Call) -> u64 {
        call.seq = self.next_seq;
        self.next_seq += 1;
        call.at_ms = self.clock.since_start(now).as_millis() as u64;
        let seq = call.seq;
        self.calls.push(call);
        seq
    }

    pub fn record_delivery(&mut self, now: Instant, mut d: crate::model::Delivery) {
        d.seq = self.next_seq;
        self.next_seq += 1;
        d.at_ms = self.clock.since_start(now).as_millis() as u64;
        self.deliveries.push(d);
    }

    pub fn channel_infos(&self) -> Vec<ChannelInfo> {
        self.channels
            .iter()
            .map(|c| ChannelInfo {
                id: c.id.clone(),
                name: c.name.clone(),
                messages: c.messages.len(),
            })
            .collect()
    }

    /// Everything, for `GET /sim/state` and the page at `/`.
    pub fn snapshot(&self) -> Value {
        json!({
            "team_id": self.cfg.team_id,
            "bot_user_id": BOT_USER_ID,
            "channels": self.channels,
            "users": self.users,
            "usergroups": self.usergroups,
            "views": self.views.values().collect::<Vec<_>>(),
            "ephemerals": self.ephemerals,
            "scheduled": self.scheduled,
            "calls": self.calls.len(),
            "count_429": self.count_429(),
            "app_base_url": self.cfg.app_base_url,
            "socket_connections": self.socket.open_count(),
        })
    }

    pub fn count_429(&self) -> usize {
        self.calls.iter().filter(|c| c.status == 429).count()
    }

    pub fn stats(&self) -> Value {
        let mut by_method: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &self.calls {
            *by_method.entry(c.method.as_str()).or_default() += 1;
        }
        json!({
            "calls": self.calls.len(),
            "by_method": by_method,
            "count_429": self.count_429(),
            "messages": self.channels.iter().map(|c| c.messages.len()).sum::<usize>(),
            "deliveries": self.deliveries.len(),
            "socket": self.socket.stats(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_is_strictly_increasing_even_within_one_instant() {
        let mut s = State::new(SimConfig::default());
        let now = s.clock.now();
        let a = s.next_ts(now);
        let b = s.next_ts(now);
        assert!(b > a, "{a} then {b}");
        let (secs, micros) = a.split_once('.').unwrap();
        assert_eq!(secs.len(), 10);
        assert_eq!(micros.len(), 6);
    }

    #[test]
    fn channels_resolve_by_id_name_and_hash_name() {
        let cfg = SimConfig {
            channels: vec!["alerts".into()],
            ..SimConfig::default()
        };
        let s = State::new(cfg);
        let id = s.channels[0].id.clone();
        for key in [id.as_str(), "alerts", "#alerts"] {
            assert_eq!(s.channel_index(key), Some(0), "{key}");
        }
        assert_eq!(s.channel_index("nope"), None);
    }

    #[test]
    fn channel_name_rules() {
        for (name, ok) in [
            ("alerts", true),
            ("ops-db_2", true),
            ("Alerts", false),
            ("", false),
            ("a b", false),
            ("C0FFEE", false),
        ] {
            assert_eq!(is_valid_channel_name(name), ok, "{name}");
        }
    }
}
