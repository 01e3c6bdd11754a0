//! The Web API methods, as plain functions over [`State`]: [`dispatch`] runs one method on parsed
//! arguments and answers Slack's JSON or an [`ApiError`] (Slack's `ok:false` error string).
//! Authentication, faults and rate limits are checked before, by the HTTP layer.

use std::time::Instant;

use serde_json::{json, Value};

use crate::args::{bool_arg, Reply};
pub use crate::args::{str_arg, ApiError, Args};
use sluice_slack_wire::limits;

use crate::blockkit::{validate_blocks, BlockKitError, Surface};
use crate::model::{Message, View};
use crate::state::{State, BOT_ID, BOT_USER_ID};

/// Every method the simulator answers, with the bot scope it needs (None: no scope needed).
pub const METHODS: &[(&str, Option<&str>)] = &[
    ("auth.test", None),
    ("chat.postMessage", Some("chat:write")),
    ("chat.update", Some("chat:write")),
    ("chat.delete", Some("chat:write")),
    ("chat.postEphemeral", Some("chat:write")),
    ("chat.scheduleMessage", Some("chat:write")),
    ("chat.scheduledMessages.list", None),
    ("chat.deleteScheduledMessage", Some("chat:write")),
    ("chat.getPermalink", None),
    ("conversations.info", Some("channels:read")),
    ("conversations.list", Some("channels:read")),
    ("conversations.create", Some("channels:manage")),
    ("conversations.invite", Some("channels:manage")),
    ("conversations.setTopic", Some("channels:manage")),
    ("conversations.setPurpose", Some("channels:manage")),
    ("conversations.archive", Some("channels:manage")),
    ("pins.add", Some("pins:write")),
    ("conversations.history", Some("channels:history")),
    ("conversations.replies", Some("channels:history")),
    ("conversations.members", Some("channels:read")),
    ("conversations.open", Some("im:write")),
    ("users.info", Some("users:read")),
    ("users.lookupByEmail", Some("users:read.email")),
    ("usergroups.users.list", Some("usergroups:read")),
    ("reactions.add", Some("reactions:write")),
    ("views.open", None),
    ("views.update", None),
    ("views.push", None),
    ("views.publish", None),
    ("functions.completeSuccess", None),
    ("functions.completeError", None),
    // Needs an app-level token (xapp-…), checked by the HTTP gate.
    ("apps.connections.open", None),
];

/// How far ahead `chat.scheduleMessage` accepts `post_at` (Slack: 120 days).
const SCHEDULE_MAX_AHEAD_SECS: u64 = 120 * 24 * 3600;
/// Longest channel topic Slack accepts.
const TOPIC_MAX: usize = 250;
/// Modals stacked at most (views.push beyond answers push_limit_reached).
pub(crate) const VIEW_STACK_MAX: usize = 3;

/// Slack explains rejected blocks and views in `response_metadata.messages`.
fn explained(error: &str, e: BlockKitError) -> ApiError {
    ApiError::new(error).with("response_metadata", json!({ "messages": e.messages }))
}

/// The scope a method needs, or `None` for an unknown method.
pub fn method_scope(method: &str) -> Option<Option<&'static str>> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, s)| *s)
}

/// A JSON argument, which form bodies carry as a JSON string.
fn json_arg(args: &Args, key: &str, bad: &str) -> Result<Option<Value>, ApiError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|_| ApiError::new(bad)),
        Some(v) => Ok(Some(v.clone())),
    }
}

/// The content of a message being posted or updated, checked the way Slack checks it.
#[derive(Debug, Clone)]
pub struct Content {
    pub text: String,
    pub blocks: Value,
    pub attachments: Option<Value>,
    pub metadata: Option<Value>,
}

pub fn content(args: &Args) -> Result<Content, ApiError> {
    let text = str_arg(args, "text").unwrap_or_default();
    let blocks = json_arg(args, "blocks", "invalid_blocks_format")?;
    let attachments = json_arg(args, "attachments", "invalid_attachments")?;
    let metadata = json_arg(args, "metadata", "invalid_metadata_format")?;
    let has_blocks = blocks
        .as_ref()
        .is_some_and(|b| !b.as_array().is_some_and(Vec::is_empty));
    if text.is_empty() && !has_blocks && attachments.is_none() {
        return Err(ApiError::new("no_text"));
    }
    if text.chars().count() > limits::MESSAGE_TEXT_HARD {
        return Err(ApiError::new("msg_too_long"));
    }
    match attachments.as_ref().map(Value::as_array) {
        Some(None) => return Err(ApiError::new("invalid_attachments")),
        Some(Some(a)) if a.len() > limits::MESSAGE_ATTACHMENTS => {
            return Err(ApiError::new("too_many_attachments"))
        }
        _ => {}
    }
    if let Some(b) = &blocks {
        validate_blocks(b, Surface::Message).map_err(|e| explained("invalid_blocks", e))?;
    }
    if let Some(m) = &metadata {
        let ok = m.get("event_type").is_some_and(Value::is_string)
            && m.get("event_payload").is_some_and(Value::is_object);
        if !ok {
            return Err(ApiError::new("invalid_metadata_format"));
        }
    }
    Ok(Content {
        text,
        blocks: blocks.unwrap_or(Value::Null),
        attachments,
        metadata,
    })
}

/// A message as Slack's Web API returns it; `team` is the workspace it was posted in.
pub fn message_json(m: &Message, team: &str) -> Value {
    let mut v = json!({
        "type": "message", "user": m.user, "text": m.text, "ts": m.ts,
        "team": team,
    });
    let o = v
        .as_object_mut()
        .expect("a json! object literal is an object");
    // Only the app's own messages carry its bot id; a person's do not.
    if m.user == BOT_USER_ID {
        o.insert("bot_id".into(), json!(BOT_ID));
    }
    if !m.blocks.is_null() {
        o.insert("blocks".into(), m.blocks.clone());
    }
    if let Some(a) = &m.attachments {
        o.insert("attachments".into(), a.clone());
    }
    if let Some(t) = &m.thread_ts {
        o.insert("thread_ts".into(), json!(t));
    }
    if let Some(md) = &m.metadata {
        o.insert("metadata".into(), md.clone());
    }
    if m.edits > 0 {
        o.insert("edited".into(), json!({"user": BOT_USER_ID, "ts": m.ts}));
    }
    if !m.reactions.is_empty() {
        let r: Vec<Value> = m
            .reactions
            .iter()
            .map(|(name, users)| json!({"name": name, "users": users, "count": users.len()}))
            .collect();
        o.insert("reactions".into(), Value::Array(r));
    }
    v
}

/// Whether the bot may post in channel `ch`, as Slack decides it: always in a DM or a channel it
/// is a member of; a private channel it is not in does not exist for it (`channel_not_found`); a
/// public one needs `chat:write.public` (`not_in_channel`).
fn bot_may_post(state: &State, ch: usize) -> Result<(), ApiError> {
    crate::channels_admin::check_not_archived(state, ch)?;
    let c = &state.channels[ch];
    if c.is_im || c.members.contains(BOT_USER_ID) {
        return Ok(());
    }
    if c.is_private {
        return Err(ApiError::new("channel_not_found"));
    }
    match &state.cfg.scopes {
        Some(granted) if !granted.iter().any(|s| s == "chat:write.public") => {
            Err(ApiError::new("not_in_channel"))
        }
        _ => Ok(()),
    }
}

/// The `channel` of a method that takes a name as well as an id (`chat.postEphemeral`, `chat.scheduleMessage`:
/// Slack's oldest methods).
fn channel_arg(state: &State, args: &Args) -> Result<usize, ApiError> {
    let key = str_arg(args, "channel").ok_or_else(|| ApiError::new("channel_not_found"))?;
    state
        .channel_index(&key)
        .ok_or_else(|| ApiError::new("channel_not_found"))
}

/// The `channel` of a method that takes only an id, as every newer Slack method does (`chat.update`,
/// `chat.delete`, `reactions.add`, `chat.getPermalink`, the `conversations.*` reads and writes): a channel's name
/// there is `channel_not_found`, even when a channel of that name exists.
fn channel_id_arg(state: &State, args: &Args) -> Result<usize, ApiError> {
    let key = str_arg(args, "channel").ok_or_else(|| ApiError::new("channel_not_found"))?;
    state
        .channels
        .iter()
        .position(|c| c.id == key)
        .ok_or_else(|| ApiError::new("channel_not_found"))
}

/// Where a reply goes: the parent's `ts`, which must exist (a reply's `ts` means its parent).
fn thread_parent(
    state: &State,
    ch: usize,
    thread_ts: Option<String>,
) -> Result<Option<String>, ApiError> {
    let Some(t) = thread_ts else { return Ok(None) };
    let parent = state.channels[ch]
        .find(&t)
        .ok_or_else(|| ApiError::new("thread_not_found"))?;
    Ok(Some(parent.thread_ts.clone().unwrap_or(t)))
}

/// Appends a message to channel `ch` (used by chat.postMessage and incoming webhooks).
pub fn post(
    state: &mut State,
    ch: usize,
    c: Content,
    thread_ts: Option<String>,
    reply_broadcast: bool,
    now: Instant,
) -> Result<Message, ApiError> {
    let thread_ts = thread_parent(state, ch, thread_ts)?;
    let ts = state.next_ts(now);
    let msg = Message {
        channel: state.channels[ch].id.clone(),
        ts,
        reply_broadcast: reply_broadcast && thread_ts.is_some(),
        thread_ts,
        text: c.text,
        blocks: c.blocks,
        metadata: c.metadata,
        edits: 0,
        reactions: Vec::new(),
        user: BOT_USER_ID.into(),
        attachments: c.attachments,
    };
    state.channels[ch].messages.push(msg.clone());
    Ok(msg)
}

/// Runs one Web API method. The caller has checked the token, scopes, faults and rate limits.
pub fn dispatch(state: &mut State, method: &str, args: &Args, now: Instant) -> Reply {
    match method {
        "auth.test" => Ok(json!({
            "url": "https://sluice-sim.slack.com/", "team": "Sluice Simulator", "user": "sluice",
            "team_id": state.cfg.team_id, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
            "is_enterprise_install": false,
        })),
        "chat.postMessage" => post_message(state, args, now),
        "chat.update" => update(state, args),
        "chat.delete" => delete(state, args),
        "chat.postEphemeral" => post_ephemeral(state, args, now),
        "chat.scheduleMessage" => schedule(state, args, now),
        "chat.scheduledMessages.list" => crate::scheduled::list(state, args, now),
        "chat.deleteScheduledMessage" => crate::scheduled::delete(state, args, now),
        "chat.getPermalink" => permalink(state, args),
        "conversations.info" => {
            let ch = channel_id_arg(state, args)?;
            Ok(json!({"channel": state.channels[ch].info_json()}))
        }
        "conversations.list" => list_channels(state, args),
        "conversations.create" => crate::channels_admin::create(state, args, now),
        "conversations.setPurpose" => crate::channels_admin::set_purpose(state, args),
        "conversations.archive" => crate::channels_admin::archive(state, args),
        "pins.add" => crate::channels_admin::pin(state, args),
        "conversations.invite" => invite(state, args),
        "conversations.setTopic" => set_topic(state, args),
        "conversations.history" => history(state, args),
        "conversations.replies" => replies(state, args),
        "conversations.members" => members(state, args),
        "conversations.open" => crate::dm::open(state, args, now),
        "users.info" => {
            let id = str_arg(args, "user").unwrap_or_default();
            let u = state
                .users
                .iter()
                .find(|u| u.id == id)
                .ok_or_else(|| ApiError::new("user_not_found"))?;
            Ok(json!({"user": user_json(u, &state.cfg.team_id)}))
        }
        "users.lookupByEmail" => {
            let email = str_arg(args, "email").unwrap_or_default();
            let u = state
                .users
                .iter()
                .find(|u| u.email.eq_ignore_ascii_case(&email))
                .ok_or_else(|| ApiError::new("users_not_found"))?;
            Ok(json!({"user": user_json(u, &state.cfg.team_id)}))
        }
        "usergroups.users.list" => {
            let id = str_arg(args, "usergroup").unwrap_or_default();
            let g = state
                .usergroups
                .iter()
                .find(|g| g.id == id)
                .ok_or_else(|| ApiError::new("no_such_subteam"))?;
            Ok(json!({"users": g.users}))
        }
        "reactions.add" => react(state, args),
        "views.open" => views_open(state, args, false, now),
        "views.push" => views_open(state, args, true, now),
        "views.update" => views_update(state, args, now),
        "views.publish" => views_publish(state, args, now),
        "functions.completeSuccess" => crate::functions::complete_success(state, args),
        "functions.completeError" => crate::functions::complete_error(state, args),
        _ => Err(ApiError::new("unknown_method")),
    }
}

fn user_json(u: &crate::model::User, team: &str) -> Value {
    json!({
        "id": u.id, "team_id": team, "name": u.name, "real_name": u.real_name, "deleted": false,
        "is_bot": false, "tz": "Europe/Amsterdam",
        "profile": {"email": u.email, "real_name": u.real_name, "display_name": u.name},
    })
}

fn post_message(state: &mut State, args: &Args, now: Instant) -> Reply {
    let key = str_arg(args, "channel").ok_or_else(|| ApiError::new("channel_not_found"))?;
    let c = content(args)?;
    let ch = state
        .resolve_for_post(&key, now)
        .ok_or_else(|| ApiError::new("channel_not_found"))?;
    bot_may_post(state, ch)?;
    let msg = post(
        state,
        ch,
        c,
        str_arg(args, "thread_ts"),
        bool_arg(args, "reply_broadcast"),
        now,
    )?;
    Ok(
        json!({"channel": msg.channel, "ts": msg.ts, "message": message_json(&msg, &state.cfg.team_id)}),
    )
}

fn update(state: &mut State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let ts = str_arg(args, "ts").ok_or_else(|| ApiError::new("message_not_found"))?;
    let c = content(args)?;
    let channel = &mut state.channels[ch];
    let msg = channel
        .find_mut(&ts)
        .ok_or_else(|| ApiError::new("message_not_found"))?;
    msg.text = c.text;
    // Slack keeps what an update does not mention.
    if !c.blocks.is_null() {
        msg.blocks = c.blocks;
    }
    if c.attachments.is_some() {
        msg.attachments = c.attachments;
    }
    if c.metadata.is_some() {
        msg.metadata = c.metadata;
    }
    msg.edits += 1;
    let msg = msg.clone();
    Ok(
        json!({"channel": msg.channel, "ts": msg.ts, "text": msg.text, "message": message_json(&msg, &state.cfg.team_id)}),
    )
}

fn delete(state: &mut State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let ts = str_arg(args, "ts").ok_or_else(|| ApiError::new("message_not_found"))?;
    let channel = &mut state.channels[ch];
    let before = channel.messages.len();
    channel.messages.retain(|m| m.ts != ts);
    if channel.messages.len() == before {
        return Err(ApiError::new("message_not_found"));
    }
    Ok(json!({"channel": channel.id, "ts": ts}))
}

fn post_ephemeral(state: &mut State, args: &Args, now: Instant) -> Reply {
    let ch = channel_arg(state, args)?;
    bot_may_post(state, ch)?;
    let user = str_arg(args, "user").unwrap_or_default();
    if !state.users.iter().any(|u| u.id == user) {
        return Err(ApiError::new("user_not_found"));
    }
    // Slack shows an ephemeral only to a member of the channel.
    if !state.channels[ch].members.contains(&user) {
        return Err(ApiError::new("user_not_in_channel"));
    }
    let c = content(args)?;
    let ts = state.next_ts(now);
    state.ephemerals.push(crate::state::Ephemeral {
        channel: state.channels[ch].id.clone(),
        user,
        ts: ts.clone(),
        text: c.text,
        blocks: c.blocks,
        via: "chat.postEphemeral".into(),
    });
    Ok(json!({"message_ts": ts}))
}

fn schedule(state: &mut State, args: &Args, now: Instant) -> Reply {
    let ch = channel_arg(state, args)?;
    bot_may_post(state, ch)?;
    let post_at: u64 = str_arg(args, "post_at")
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| t as u64)
        .ok_or_else(|| ApiError::new("invalid_time"))?;
    let unix = state.unix_secs(now);
    if post_at <= unix {
        return Err(ApiError::new("time_in_past"));
    }
    if post_at > unix + SCHEDULE_MAX_AHEAD_SECS {
        return Err(ApiError::new("time_too_far"));
    }
    let c = content(args)?;
    let thread_ts = thread_parent(state, ch, str_arg(args, "thread_ts"))?;
    let id = state.next_scheduled_id();
    let channel = state.channels[ch].id.clone();
    let message = json!({"type": "message", "text": c.text, "blocks": c.blocks, "user": BOT_USER_ID,
                         "bot_id": BOT_ID, "team": state.cfg.team_id});
    state.scheduled.push(crate::state::Scheduled {
        id: id.clone(),
        channel: channel.clone(),
        post_at,
        text: c.text,
        blocks: c.blocks,
        thread_ts,
    });
    Ok(
        json!({"channel": channel, "scheduled_message_id": id, "post_at": post_at, "message": message}),
    )
}

/// Cursors are opaque to callers; here they are an offset.
fn page<T: Clone>(items: &[T], args: &Args, default_limit: usize) -> (Vec<T>, String) {
    let start: usize = str_arg(args, "cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit = str_arg(args, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(default_limit);
    let end = (start + limit).min(items.len());
    let slice = items.get(start.min(end)..end).unwrap_or_default().to_vec();
    let next = if end < items.len() {
        end.to_string()
    } else {
        String::new()
    };
    (slice, next)
}

fn list_channels(state: &State, args: &Args) -> Reply {
    let types = str_arg(args, "types").unwrap_or_else(|| "public_channel".into());
    let wanted: Vec<&str> = types.split(',').map(str::trim).collect();
    let all: Vec<Value> = state
        .channels
        .iter()
        .filter(|c| {
            let kind = if c.is_im {
                "im"
            } else if c.is_private {
                "private_channel"
            } else {
                "public_channel"
            };
            wanted.contains(&kind)
        })
        .map(|c| c.info_json())
        .collect();
    let (channels, next) = page(&all, args, 100);
    Ok(json!({"channels": channels, "response_metadata": {"next_cursor": next}}))
}

fn invite(state: &mut State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let users: Vec<String> = str_arg(args, "users")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if users.is_empty() {
        return Err(ApiError::new("no_user"));
    }
    if users.iter().any(|u| u == BOT_USER_ID) {
        return Err(ApiError::new("cant_invite_self"));
    }
    let (known, unknown): (Vec<String>, Vec<String>) = users
        .into_iter()
        .partition(|u| state.users.iter().any(|x| &x.id == u));
    let errors: Vec<Value> = unknown
        .iter()
        .map(|u| json!({"user": u, "ok": false, "error": "user_not_found"}))
        .collect();
    // Without `force` one id Slack cannot invite fails the whole call; with it the valid ones are invited and the
    // others listed in `errors` (unless none is valid).
    if !errors.is_empty() && (!bool_arg(args, "force") || known.is_empty()) {
        return Err(ApiError::new("user_not_found").with("errors", json!(errors)));
    }
    let channel = &mut state.channels[ch];
    if known.iter().all(|u| channel.members.contains(u)) {
        return Err(ApiError::new("already_in_channel"));
    }
    channel.members.extend(known);
    let mut out = json!({"channel": channel.info_json()});
    if !errors.is_empty() {
        out["errors"] = json!(errors);
    }
    Ok(out)
}

fn set_topic(state: &mut State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let topic = str_arg(args, "topic").unwrap_or_default();
    if topic.chars().count() > TOPIC_MAX {
        return Err(ApiError::new("too_long"));
    }
    state.channels[ch].topic = topic;
    Ok(json!({"channel": state.channels[ch].info_json()}))
}

fn with_thread_info(channel: &crate::state::Channel, m: &Message, team: &str) -> Value {
    let mut v = message_json(m, team);
    let replies: Vec<&Message> = channel
        .messages
        .iter()
        .filter(|r| r.thread_ts.as_deref() == Some(m.ts.as_str()))
        .collect();
    if let (Some(last), Some(o)) = (replies.last(), v.as_object_mut()) {
        o.insert("thread_ts".into(), json!(m.ts));
        o.insert("reply_count".into(), json!(replies.len()));
        o.insert("latest_reply".into(), json!(last.ts));
    }
    v
}

fn history(state: &State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let channel = &state.channels[ch];
    let oldest = str_arg(args, "oldest");
    let latest = str_arg(args, "latest");
    let inclusive = bool_arg(args, "inclusive");
    // Slack compares ts values numerically; they all have six decimals, so as strings of equal
    // length compare the same. Compare as f64 to accept "1700000000" too.
    let num = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    let newest_first: Vec<Value> = channel
        .messages
        .iter()
        .rev()
        .filter(|m| m.thread_ts.is_none() || m.reply_broadcast)
        .filter(|m| match &oldest {
            Some(o) if inclusive => num(&m.ts) >= num(o),
            Some(o) => num(&m.ts) > num(o),
            None => true,
        })
        .filter(|m| match &latest {
            Some(l) if inclusive => num(&m.ts) <= num(l),
            Some(l) => num(&m.ts) < num(l),
            None => true,
        })
        .map(|m| with_thread_info(channel, m, &state.cfg.team_id))
        .collect();
    let (messages, next) = page(&newest_first, args, 100);
    Ok(
        json!({"messages": messages, "has_more": !next.is_empty(), "response_metadata": {"next_cursor": next}}),
    )
}

fn replies(state: &State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let channel = &state.channels[ch];
    let ts = str_arg(args, "ts").ok_or_else(|| ApiError::new("thread_not_found"))?;
    let parent = channel
        .find(&ts)
        .ok_or_else(|| ApiError::new("thread_not_found"))?;
    let root = parent.thread_ts.clone().unwrap_or(ts);
    let all: Vec<Value> = channel
        .messages
        .iter()
        .filter(|m| m.ts == root || m.thread_ts.as_deref() == Some(root.as_str()))
        .map(|m| with_thread_info(channel, m, &state.cfg.team_id))
        .collect();
    let (messages, next) = page(&all, args, 1000);
    Ok(
        json!({"messages": messages, "has_more": !next.is_empty(), "response_metadata": {"next_cursor": next}}),
    )
}

/// Slack's permalink shape: `…/archives/<channel>/p<ts without the dot>`, with `thread_ts` and `cid` for a reply.
fn permalink(state: &State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let channel = &state.channels[ch];
    let ts = str_arg(args, "message_ts").ok_or_else(|| ApiError::new("message_not_found"))?;
    let msg = channel
        .find(&ts)
        .ok_or_else(|| ApiError::new("message_not_found"))?;
    let mut link = format!(
        "https://sluice-sim.slack.com/archives/{}/p{}",
        channel.id,
        ts.replace('.', "")
    );
    if let Some(parent) = &msg.thread_ts {
        link.push_str(&format!("?thread_ts={parent}&cid={}", channel.id));
    }
    Ok(json!({"channel": channel.id, "permalink": link}))
}

/// Members of a conversation, paged like Slack's (`cursor`, `limit`, `response_metadata.next_cursor`).
fn members(state: &State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let all: Vec<String> = state.channels[ch].members.iter().cloned().collect();
    let (members, next) = page(&all, args, 100);
    Ok(json!({"members": members, "response_metadata": {"next_cursor": next}}))
}

fn react(state: &mut State, args: &Args) -> Reply {
    let ch = channel_id_arg(state, args)?;
    let ts = str_arg(args, "timestamp").ok_or_else(|| ApiError::new("no_item_specified"))?;
    let name = str_arg(args, "name")
        .map(|n| n.trim_matches(':').to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::new("invalid_name"))?;
    let msg = state.channels[ch]
        .find_mut(&ts)
        .ok_or_else(|| ApiError::new("message_not_found"))?;
    match msg.reactions.iter_mut().find(|(n, _)| *n == name) {
        Some((_, users)) if users.iter().any(|u| u == BOT_USER_ID) => {
            return Err(ApiError::new("already_reacted"))
        }
        Some((_, users)) => users.push(BOT_USER_ID.into()),
        None => msg.reactions.push((name, vec![BOT_USER_ID.into()])),
    }
    Ok(json!({}))
}

/// Checks a view definition; `kind` is the `type` it must have.
pub(crate) fn check_view(args: &Args, kind: &str) -> Result<Value, ApiError> {
    let view = json_arg(args, "view", "invalid_arguments")?
        .filter(Value::is_object)
        .ok_or_else(|| {
            ApiError::new("invalid_arguments").with(
                "response_metadata",
                json!({"messages": ["[ERROR] missing required field: view"]}),
            )
        })?;
    let mut messages = Vec::new();
    if view.get("type").and_then(Value::as_str) != Some(kind) {
        messages.push(format!("[ERROR] must be {kind} [json-pointer:/view/type]"));
    }
    let text_len = |key: &str| {
        view.get(key)
            .and_then(|t| t.get("text"))
            .and_then(Value::as_str)
            .map(|s| s.chars().count())
    };
    if kind == "modal" {
        match text_len("title") {
            None => {
                messages.push("[ERROR] must provide an object [json-pointer:/view/title]".into())
            }
            Some(n) if n > limits::VIEW_TITLE => messages.push(format!(
                "[ERROR] must be less than {} characters [json-pointer:/view/title/text]",
                limits::VIEW_TITLE + 1
            )),
            Some(_) => {}
        }
        for key in ["submit", "close"] {
            if text_len(key).is_some_and(|n| n > limits::VIEW_TITLE) {
                messages.push(format!(
                    "[ERROR] must be less than {} characters [json-pointer:/view/{key}/text]",
                    limits::VIEW_TITLE + 1
                ));
            }
        }
    }
    let str_len = |key: &str| {
        view.get(key)
            .and_then(Value::as_str)
            .map(|s| s.chars().count())
    };
    if str_len("callback_id").is_some_and(|n| n > limits::ID) {
        messages.push(format!(
            "[ERROR] must be less than {} characters [json-pointer:/view/callback_id]",
            limits::ID + 1
        ));
    }
    if str_len("private_metadata").is_some_and(|n| n > limits::VIEW_PRIVATE_METADATA) {
        messages.push(format!(
            "[ERROR] must be less than {} characters [json-pointer:/view/private_metadata]",
            limits::VIEW_PRIVATE_METADATA + 1
        ));
    }
    match view.get("blocks") {
        Some(b) => {
            if let Err(e) = validate_blocks(b, Surface::View) {
                messages.extend(
                    e.messages
                        .into_iter()
                        .map(|m| m.replace("[json-pointer:/", "[json-pointer:/view/")),
                );
            }
        }
        None => messages.push("[ERROR] must provide an array [json-pointer:/view/blocks]".into()),
    }
    if messages.is_empty() {
        Ok(view)
    } else {
        Err(explained("invalid_arguments", BlockKitError { messages }))
    }
}

fn view_json(state: &State, v: &View) -> Value {
    let mut out = v.definition.clone();
    if let Some(o) = out.as_object_mut() {
        o.insert("id".into(), json!(v.id));
        o.insert("team_id".into(), json!(state.cfg.team_id));
        o.insert("hash".into(), json!(v.hash));
        o.insert("root_view_id".into(), json!(v.root_view_id));
        o.insert("previous_view_id".into(), json!(v.previous_view_id));
        o.insert("bot_id".into(), json!(BOT_ID));
        o.insert("state".into(), json!({"values": {}}));
    }
    json!({"view": out})
}

pub(crate) fn new_hash(state: &mut State, now: Instant) -> String {
    // Any value that changes on every write does; a ts is already unique.
    state.next_ts(now).replace('.', "")
}

fn views_open(state: &mut State, args: &Args, push: bool, now: Instant) -> Reply {
    let trigger = str_arg(args, "trigger_id").ok_or_else(|| ApiError::new("invalid_trigger_id"))?;
    let def = check_view(args, "modal")?;
    // Checked after the view so a rejected view does not burn the trigger, as with Slack.
    state.use_trigger(&trigger, now).map_err(ApiError::new)?;
    let opened_for = state.triggers.get(&trigger).and_then(|t| t.user.clone());
    let id = state.next_view_id();
    let (root, previous) = if push {
        // A push stacks onto the most recent modal.
        let top = state
            .views
            .values()
            .filter(|v| v.kind == "modal")
            .max_by_key(|v| v.id.clone())
            .cloned()
            .ok_or_else(|| ApiError::new("not_found"))?;
        let depth = state
            .views
            .values()
            .filter(|v| v.root_view_id == top.root_view_id)
            .count();
        if depth >= VIEW_STACK_MAX {
            return Err(ApiError::new("push_limit_reached"));
        }
        (top.root_view_id.clone(), Some(top.id.clone()))
    } else {
        (id.clone(), None)
    };
    let view = View {
        id: id.clone(),
        kind: "modal".into(),
        user: opened_for,
        hash: new_hash(state, now),
        root_view_id: root,
        previous_view_id: previous,
        external_id: def
            .get("external_id")
            .and_then(Value::as_str)
            .map(String::from),
        callback_id: def
            .get("callback_id")
            .and_then(Value::as_str)
            .map(String::from),
        trigger_id: str_arg(args, "trigger_id"),
        definition: def,
    };
    state.views.insert(id.clone(), view.clone());
    Ok(view_json(state, &view))
}

fn views_update(state: &mut State, args: &Args, now: Instant) -> Reply {
    let id = match (str_arg(args, "view_id"), str_arg(args, "external_id")) {
        (Some(id), _) => id,
        (None, Some(ext)) => state
            .views
            .values()
            .find(|v| v.external_id.as_deref() == Some(ext.as_str()))
            .map(|v| v.id.clone())
            .ok_or_else(|| ApiError::new("not_found"))?,
        (None, None) => return Err(ApiError::new("not_found")),
    };
    let kind = state
        .views
        .get(&id)
        .map(|v| v.kind.clone())
        .ok_or_else(|| ApiError::new("not_found"))?;
    let def = check_view(args, &kind)?;
    let hash = new_hash(state, now);
    let view = state
        .views
        .get_mut(&id)
        .ok_or_else(|| ApiError::new("not_found"))?;
    if let Some(h) = str_arg(args, "hash") {
        if h != view.hash {
            return Err(ApiError::new("hash_conflict"));
        }
    }
    view.callback_id = def
        .get("callback_id")
        .and_then(Value::as_str)
        .map(String::from);
    view.definition = def;
    view.hash = hash;
    let view = view.clone();
    Ok(view_json(state, &view))
}

fn views_publish(state: &mut State, args: &Args, now: Instant) -> Reply {
    let user = str_arg(args, "user_id").unwrap_or_default();
    if !state.users.iter().any(|u| u.id == user) {
        return Err(ApiError::new("not_found"));
    }
    let def = check_view(args, "home")?;
    let existing = state
        .views
        .values()
        .find(|v| v.kind == "home" && v.user.as_deref() == Some(user.as_str()))
        .cloned();
    if let (Some(h), Some(v)) = (str_arg(args, "hash"), &existing) {
        if h != v.hash {
            return Err(ApiError::new("hash_conflict"));
        }
    }
    let id = match &existing {
        Some(v) => v.id.clone(),
        None => state.next_view_id(),
    };
    let view = View {
        id: id.clone(),
        kind: "home".into(),
        user: Some(user),
        hash: new_hash(state, now),
        root_view_id: id.clone(),
        previous_view_id: None,
        external_id: def
            .get("external_id")
            .and_then(Value::as_str)
            .map(String::from),
        callback_id: def
            .get("callback_id")
            .and_then(Value::as_str)
            .map(String::from),
        trigger_id: None,
        definition: def,
    };
    state.views.insert(id, view.clone());
    Ok(view_json(state, &view))
}
