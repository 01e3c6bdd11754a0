//! `conversations.open`: opens (or resumes) the direct message between the bot and one user, as Slack does for a
//! bot token with `im:write`. `users` names the user (a comma-separated list; the simulator opens 1:1 messages only,
//! so a list of several is refused plainly), or `channel` resumes an existing direct message by its id. The answer
//! is `{"channel": {"id"}}`, or the whole conversation with `return_im`.

use std::time::Instant;

use serde_json::{json, Value};

use crate::args::{str_arg, ApiError, Args};
use crate::state::State;

/// Slack opens at most 8 people's conversation at once.
const USERS_MAX: usize = 8;

pub fn open(state: &mut State, args: &Args, now: Instant) -> Result<Value, ApiError> {
    let at = match (str_arg(args, "users"), str_arg(args, "channel")) {
        (Some(users), _) => {
            let users: Vec<&str> = users
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect();
            match users.as_slice() {
                [] => return Err(ApiError::new("users_list_not_supplied")),
                [user] => state
                    .open_im(user, now)
                    .ok_or_else(|| ApiError::new("user_not_found"))?,
                more if more.len() > USERS_MAX => return Err(ApiError::new("too_many_users")),
                _ => {
                    // The simulator opens 1:1 direct messages only.
                    return Err(ApiError::new("sim_mpim_not_supported"));
                }
            }
        }
        (None, Some(channel)) => state
            .channels
            .iter()
            .position(|c| c.is_im && c.id == channel)
            .ok_or_else(|| ApiError::new("channel_not_found"))?,
        (None, None) => return Err(ApiError::new("users_list_not_supplied")),
    };
    let channel = &state.channels[at];
    let return_im = matches!(args.get("return_im"), Some(Value::Bool(true)))
        || str_arg(args, "return_im").as_deref() == Some("true");
    Ok(if return_im {
        json!({"channel": channel.info_json()})
    } else {
        json!({"channel": {"id": channel.id}})
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::SimConfig;

    fn args(v: Value) -> Args {
        v.as_object().cloned().unwrap()
    }

    /// One user's direct message is opened once and resumed after; what Slack refuses is refused by name.
    #[test]
    fn a_direct_message_opens_once_and_resumes_and_bad_arguments_are_refused() {
        let mut s = State::new(SimConfig::default());
        let now = s.clock.now();
        let first = open(&mut s, &args(json!({"users": "U0002"})), now).unwrap();
        let id = first["channel"]["id"].as_str().unwrap().to_string();
        assert!(id.starts_with('D'), "{first}");
        assert_eq!(first, json!({"channel": {"id": id}}));
        let again = open(
            &mut s,
            &args(json!({"users": "U0002", "return_im": true})),
            now,
        )
        .unwrap();
        assert_eq!(
            again["channel"]["id"],
            id.as_str(),
            "resumed, not a second one"
        );
        assert_eq!(again["channel"]["is_im"], true);
        let resumed = open(&mut s, &args(json!({"channel": id})), now).unwrap();
        assert_eq!(resumed["channel"]["id"], id.as_str());
        let refused = |a: Value| {
            open(&mut State::new(SimConfig::default()), &args(a), now)
                .unwrap_err()
                .error
        };
        assert_eq!(refused(json!({})), "users_list_not_supplied");
        assert_eq!(refused(json!({"users": " , "})), "users_list_not_supplied");
        assert_eq!(refused(json!({"users": "U9999"})), "user_not_found");
        assert_eq!(refused(json!({"channel": "C0000001"})), "channel_not_found");
        assert_eq!(
            refused(json!({"users": "U1,U2,U3,U4,U5,U6,U7,U8,U9"})),
            "too_many_users"
        );
    }
}
