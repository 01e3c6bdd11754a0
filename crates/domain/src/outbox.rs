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
