//! Outbox rows as the domain writes them: [`outbox_item`] puts one Slack call into the lane of its channel.
//!
//! Nothing here sends. The rows are committed by the caller's one `Store::ingest`, and the dispatcher is the only
//! code that turns them into calls.

use sluice_model::NewOutboxItem;

/// The lane of a channel: one channel in one workspace, worked in order by one dispatcher.
pub fn lane(team: &str, channel: &str) -> String {
    format!("{team}:{}", channel.trim_start_matches('#'))
}

/// A chat.postMessage (or chat.update, …) into `channel`.
pub fn outbox_item(
    team: &str,
    channel: &str,
    method: &str,
    args: serde_json::Value,
) -> NewOutboxItem {
    let channel = channel.trim_start_matches('#').to_string();
    NewOutboxItem {
        lane: lane(team, &channel),
        team: team.to_string(),
        channel,
        method: method.to_string(),
        args,
        ref_post: false,
    }
}

/// What an ephemeral becomes when Slack refuses it because its user is not in the channel
/// (`user_not_in_channel`: someone who reacted or clicked in a public channel they never joined):
/// the same message as a direct message from the app, saying which channel it is about, so the
/// refusal or answer still reaches them. `None` when `args` is not an ephemeral to a user.
pub fn ephemeral_as_dm(args: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::{json, Value};
    let user = args.get("user")?.as_str()?.to_string();
    let channel = args.get("channel")?.as_str()?.trim_start_matches('#');
    let mut dm = args.as_object()?.clone();
    dm.remove("user");
    // A thread in the channel means nothing in the DM.
    dm.remove("thread_ts");
    let place = format!("In <#{channel}>");
    let text = dm.get("text").and_then(Value::as_str).unwrap_or_default();
    let text = if text.is_empty() {
        place.clone()
    } else {
        format!("{place}: {text}")
    };
    dm.insert("text".into(), Value::String(text));
    if let Some(Value::Array(blocks)) = dm.get_mut("blocks") {
        if blocks.len() < sluice_slack_wire::limits::MESSAGE_BLOCKS {
            let context =
                json!({"type": "context", "elements": [{"type": "mrkdwn", "text": place}]});
            blocks.insert(0, context);
        }
    }
    dm.insert("channel".into(), Value::String(user));
    Some(Value::Object(dm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_ephemeral_refused_for_a_non_member_becomes_a_dm_naming_the_channel() {
        let dm = ephemeral_as_dm(&json!({
            "channel": "C0001", "user": "U0003", "thread_ts": "1.2",
            "text": "You are not allowed to acknowledge this alert.",
        }))
        .unwrap();
        assert_eq!(
            dm,
            json!({"channel": "U0003",
                   "text": "In <#C0001>: You are not allowed to acknowledge this alert."})
        );
    }

    #[test]
    fn the_dm_keeps_the_blocks_under_a_line_naming_the_channel() {
        let section = json!({"type": "section", "text": {"type": "mrkdwn", "text": "Done"}});
        let dm = ephemeral_as_dm(
            &json!({"channel": "#ops", "user": "U1", "text": "Done", "blocks": [section]}),
        )
        .unwrap();
        assert_eq!(dm["blocks"][0]["elements"][0]["text"], "In <#ops>");
        assert_eq!(dm["blocks"][1], section);
        let full: Vec<_> = (0..sluice_slack_wire::limits::MESSAGE_BLOCKS)
            .map(|_| section.clone())
            .collect();
        let dm = ephemeral_as_dm(&json!({"channel": "C1", "user": "U1", "blocks": full})).unwrap();
        assert_eq!(
            dm["blocks"].as_array().unwrap().len(),
            sluice_slack_wire::limits::MESSAGE_BLOCKS,
            "a full message stays within Slack's block limit"
        );
    }

    #[test]
    fn a_call_without_a_user_is_not_turned_into_a_dm() {
        assert_eq!(
            ephemeral_as_dm(&json!({"channel": "C1", "text": "x"})),
            None
        );
        assert_eq!(ephemeral_as_dm(&json!("text")), None);
    }
}
