//! Channel administration as Slack does it, for incident war rooms: `conversations.create` (with Slack's name
//! errors), `conversations.setPurpose`, `conversations.archive` and `pins.add`; and, for tests, a person posting a
//! message ([`Simulator::post_as_user`]). An archived channel takes no posts (`is_archived`).

use std::time::Instant;

use serde_json::{json, Value};

use crate::args::{str_arg, ApiError, Args};
use crate::model::Message;
use crate::state::{State, BOT_USER_ID};
use crate::Simulator;

type Reply = Result<Value, ApiError>;

/// Longest channel name and purpose Slack accepts.
const NAME_MAX: usize = 80;
const PURPOSE_MAX: usize = 250;

/// The channel an id names, as the bot sees it: a private channel it is not in does not exist for it.
fn by_id(state: &State, args: &Args) -> Result<usize, ApiError> {
    let key = str_arg(args, "channel").ok_or_else(|| ApiError::new("channel_not_found"))?;
    let i = state
        .channels
        .iter()
        .position(|c| c.id == key)
        .ok_or_else(|| ApiError::new("channel_not_found"))?;
    let c = &state.channels[i];
    if c.is_private && !c.members.contains(BOT_USER_ID) {
        return Err(ApiError::new("channel_not_found"));
    }
    Ok(i)
}

fn member(state: &State, i: usize) -> Result<(), ApiError> {
    if state.channels[i].members.contains(BOT_USER_ID) {
        Ok(())
    } else {
        Err(ApiError::new("not_in_channel"))
    }
}

/// `conversations.create`: `invalid_name_required`, `invalid_name_maxlength` (over 80), `invalid_name_specials`
/// (anything but lower-case letters, digits, `-` and `_`), `name_taken` (archived channels keep their names).
pub fn create(state: &mut State, args: &Args, now: Instant) -> Reply {
    let name = str_arg(args, "name").ok_or_else(|| ApiError::new("invalid_name_required"))?;
    if name.chars().count() > NAME_MAX {
        return Err(ApiError::new("invalid_name_maxlength"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(ApiError::new("invalid_name_specials"));
    }
    if state.channels.iter().any(|c| c.name == name) {
        return Err(ApiError::new("name_taken"));
    }
    let private = matches!(str_arg(args, "is_private").as_deref(), Some("true" | "1"));
    let i = state.create_channel(&name, private, now);
    Ok(json!({"channel": state.channels[i].info_json()}))
}

/// `conversations.setPurpose`.
pub fn set_purpose(state: &mut State, args: &Args) -> Reply {
    let i = by_id(state, args)?;
    member(state, i)?;
    if state.channels[i].is_archived {
        return Err(ApiError::new("is_archived"));
    }
    let purpose = str_arg(args, "purpose").unwrap_or_default();
    if purpose.chars().count() > PURPOSE_MAX {
        return Err(ApiError::new("too_long"));
    }
    state.channels[i].purpose = purpose.clone();
    Ok(json!({"purpose": purpose}))
}

/// `conversations.archive`: `already_archived` the second time.
pub fn archive(state: &mut State, args: &Args) -> Reply {
    let i = by_id(state, args)?;
    if state.channels[i].is_archived {
        return Err(ApiError::new("already_archived"));
    }
    member(state, i)?;
    state.channels[i].is_archived = true;
    Ok(json!({}))
}

/// `pins.add`: a message by `timestamp`; `no_item_specified` without one, `message_not_found`, `already_pinned`.
pub fn pin(state: &mut State, args: &Args) -> Reply {
    let i = by_id(state, args)?;
    let Some(ts) = str_arg(args, "timestamp") else {
        return Err(ApiError::new("no_item_specified"));
    };
    member(state, i)?;
    let c = &mut state.channels[i];
    if c.is_archived {
        return Err(ApiError::new("is_archived"));
    }
    if c.find(&ts).is_none() {
        return Err(ApiError::new("message_not_found"));
    }
    if c.pins.contains(&ts) {
        return Err(ApiError::new("already_pinned"));
    }
    c.pins.push(ts);
    Ok(json!({}))
}

/// Posting to an archived channel: Slack answers `is_archived`.
pub fn check_not_archived(state: &State, i: usize) -> Result<(), ApiError> {
    if state.channels[i].is_archived {
        Err(ApiError::new("is_archived"))
    } else {
        Ok(())
    }
}

impl Simulator {
    /// `user` posts `text` in `channel` (id or name) from Slack's client; its `ts`. The user joins a public channel
    /// by posting; a private one they are not in refuses.
    pub fn post_as_user(&self, channel: &str, user: &str, text: &str) -> Result<String, String> {
        let mut state = self.lock();
        let now = state.clock.now();
        if !state.users.iter().any(|u| u.id == user) {
            return Err(format!("no user {user}"));
        }
        let i = state
            .channel_index(channel)
            .ok_or_else(|| format!("no channel {channel}"))?;
        if state.channels[i].is_archived {
            return Err("is_archived".into());
        }
        if state.channels[i].is_private && !state.channels[i].members.contains(user) {
            return Err(format!("{user} is not in the private channel {channel}"));
        }
        state.channels[i].members.insert(user.to_string());
        let ts = state.next_ts(now);
        let msg = Message {
            channel: state.channels[i].id.clone(),
            ts: ts.clone(),
            thread_ts: None,
            text: text.to_string(),
            blocks: Value::Null,
            metadata: None,
            edits: 0,
            reactions: Vec::new(),
            user: user.to_string(),
            reply_broadcast: false,
            attachments: None,
        };
        state.channels[i].messages.push(msg);
        Ok(ts)
    }

    /// The channel's state as tests read it: members, topic, purpose, pins, archived.
    pub fn channel(&self, channel: &str) -> Option<crate::state::Channel> {
        let state = self.lock();
        state
            .channel_index(channel)
            .map(|i| state.channels[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    fn args(v: Value) -> Args {
        v.as_object().cloned().unwrap_or_default()
    }

    fn error(r: Reply) -> String {
        r.err().map(|e| e.error).unwrap_or_else(|| "ok".into())
    }

    #[test]
    fn war_room_administration_answers_as_slack_does() {
        let mut s = State::new(SimConfig::default());
        let now = s.clock.now();
        let create =
            |s: &mut State, name: &str| error(create(s, &args(json!({"name": name})), now));
        assert_eq!(create(&mut s, ""), "invalid_name_required");
        assert_eq!(create(&mut s, &"a".repeat(81)), "invalid_name_maxlength");
        assert_eq!(create(&mut s, "Inc Room"), "invalid_name_specials");
        let made = super::create(
            &mut s,
            &args(json!({"name": "inc-a", "is_private": true})),
            now,
        )
        .unwrap();
        assert_eq!(made["channel"]["is_private"], true);
        assert_eq!(create(&mut s, "inc-a"), "name_taken");
        let id = made["channel"]["id"].as_str().unwrap().to_string();
        let ch = json!({"channel": id});

        assert_eq!(
            error(set_purpose(
                &mut s,
                &args(json!({"channel": id, "purpose": "p".repeat(251)}))
            )),
            "too_long"
        );
        set_purpose(&mut s, &args(json!({"channel": id, "purpose": "why"}))).unwrap();
        assert_eq!(s.channels[0].info_json()["purpose"]["value"], "why");

        assert_eq!(error(pin(&mut s, &args(ch.clone()))), "no_item_specified");
        assert_eq!(
            error(pin(
                &mut s,
                &args(json!({"channel": id, "timestamp": "1.000001"}))
            )),
            "message_not_found"
        );
        let ts = {
            let ts = s.next_ts(now);
            s.channels[0].messages.push(Message {
                channel: id.clone(),
                ts: ts.clone(),
                thread_ts: None,
                text: "card".into(),
                blocks: Value::Null,
                metadata: None,
                edits: 0,
                reactions: vec![],
                user: BOT_USER_ID.into(),
                reply_broadcast: false,
                attachments: None,
            });
            ts
        };
        let at = json!({"channel": id, "timestamp": ts});
        pin(&mut s, &args(at.clone())).unwrap();
        assert_eq!(error(pin(&mut s, &args(at))), "already_pinned");
        assert_eq!(
            error(pin(
                &mut s,
                &args(json!({"channel": "C404", "timestamp": ts}))
            )),
            "channel_not_found"
        );

        archive(&mut s, &args(ch.clone())).unwrap();
        assert_eq!(
            error(archive(&mut s, &args(ch.clone()))),
            "already_archived"
        );
        assert_eq!(s.channels[0].info_json()["is_archived"], true);
        assert_eq!(
            error(check_not_archived(&s, 0).map(|_| json!({}))),
            "is_archived"
        );
        assert_eq!(
            error(set_purpose(
                &mut s,
                &args(json!({"channel": id, "purpose": "x"}))
            )),
            "is_archived"
        );
    }
}
