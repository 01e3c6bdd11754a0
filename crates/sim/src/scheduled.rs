//! `chat.scheduledMessages.list` and `chat.deleteScheduledMessage`, as strict as Slack: the list holds the messages
//! still to be posted (optionally for one channel id, `invalid_channel` for any other value), each with `id`,
//! `channel_id`, `post_at`, `date_created` and `text`; a delete needs the channel id the message posts to and an id
//! that is still pending (`invalid_scheduled_message_id` for an unknown, already posted or already deleted one).
//! Scheduled messages are posted by `State::deliver_scheduled` when their time comes.

use std::time::Instant;

use serde_json::{json, Value};

use crate::args::{str_arg, ApiError, Args};
use crate::state::State;

pub fn list(state: &mut State, args: &Args, now: Instant) -> Result<Value, ApiError> {
    state.deliver_scheduled(now);
    let channel = match str_arg(args, "channel") {
        None => None,
        Some(c) if state.channels.iter().any(|ch| ch.id == c) => Some(c),
        Some(_) => return Err(ApiError::new("invalid_channel")),
    };
    let created = state.unix_secs(now);
    let mut items: Vec<Value> = state
        .scheduled
        .iter()
        .filter(|s| channel.as_deref().is_none_or(|c| s.channel == c))
        .map(|s| {
            json!({"id": s.id, "channel_id": s.channel, "post_at": s.post_at,
                   "date_created": created, "text": s.text})
        })
        .collect();
    items.sort_by_key(|v| v["post_at"].as_u64());
    Ok(json!({"scheduled_messages": items, "response_metadata": {"next_cursor": ""}}))
}

pub fn delete(state: &mut State, args: &Args, now: Instant) -> Result<Value, ApiError> {
    state.deliver_scheduled(now);
    let channel = str_arg(args, "channel").ok_or_else(|| ApiError::new("channel_not_found"))?;
    if !state.channels.iter().any(|c| c.id == channel) {
        return Err(ApiError::new("channel_not_found"));
    }
    let id = str_arg(args, "scheduled_message_id")
        .ok_or_else(|| ApiError::new("invalid_scheduled_message_id"))?;
    let before = state.scheduled.len();
    state
        .scheduled
        .retain(|s| !(s.id == id && s.channel == channel));
    if state.scheduled.len() == before {
        return Err(ApiError::new("invalid_scheduled_message_id"));
    }
    Ok(json!({}))
}
