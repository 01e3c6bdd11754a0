//! No post twice: finding a post in Slack that an earlier attempt may have made.
//!
//! `chat.postMessage` is not idempotent, and a crash, a timeout or a lost lease between Slack accepting a post and the
//! store recording it would otherwise send it again. Every post carries its outbox item id in its message metadata
//! ([`tag`]); before an item that may have been sent is sent again (`OutboxItem::sending_at_ms`), the dispatcher reads
//! the channel (or the thread) from just before the first attempt and looks for that id ([`find_post`]).

use serde_json::{json, Value};
use sluice_slack::api::{Client, SlackError};

/// The metadata key that carries the outbox item id of a post.
pub const ITEM_KEY: &str = "sluice_item";
/// The `event_type` of the metadata added to a post that has none of its own.
const EVENT_TYPE: &str = "sluice_delivery";
/// Messages read per page, and pages read at most: a channel sees few posts of ours between the attempt and the
/// look (its lane was stuck on this item), so anything further away is someone else's chatter.
const PAGE: u32 = 200;
const MAX_PAGES: usize = 3;
/// How far before the first attempt to read, for clocks that disagree a little.
const SLACK_CLOCK_MARGIN_MS: i64 = 5_000;

/// Puts the item id into the post's metadata (keeping the caller's own event_type and payload).
pub fn tag(args: &mut Value, item_id: i64) {
    let Some(o) = args.as_object_mut() else {
        return;
    };
    let metadata = o
        .entry("metadata")
        .or_insert_with(|| json!({"event_type": EVENT_TYPE, "event_payload": {}}));
    if !metadata.is_object() {
        *metadata = json!({"event_type": EVENT_TYPE, "event_payload": {}});
    }
    if !metadata["event_payload"].is_object() {
        metadata["event_payload"] = json!({});
    }
    metadata["event_payload"][ITEM_KEY] = json!(item_id);
}

/// The `ts` of a post tagged with `item_id` in `channel` (in the thread `thread_ts` if given), posted no earlier than
/// `since_ms`, if Slack has it. `channel` must be an id: Slack's history reads do not take names.
pub async fn find_post(
    client: &Client,
    channel: &str,
    thread_ts: Option<&str>,
    item_id: i64,
    since_ms: i64,
) -> Result<Option<String>, SlackError> {
    let oldest = (since_ms - SLACK_CLOCK_MARGIN_MS).max(0);
    let oldest = format!("{}.{:06}", oldest / 1000, (oldest % 1000) * 1000);
    let (method, mut args) = match thread_ts {
        Some(ts) => (
            "conversations.replies",
            json!({"channel": channel, "ts": ts, "oldest": oldest, "limit": PAGE,
                   "include_all_metadata": true}),
        ),
        None => (
            "conversations.history",
            json!({"channel": channel, "oldest": oldest, "limit": PAGE,
                   "include_all_metadata": true}),
        ),
    };
    for _ in 0..MAX_PAGES {
        let page = client.call(method, &args).await?;
        if let Some(ts) = tagged(&page, item_id) {
            return Ok(Some(ts));
        }
        match page["response_metadata"]["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => args["cursor"] = json!(next),
            _ => break,
        }
    }
    Ok(None)
}

/// Pages of `conversations.list` read at most when looking a channel up by name (1,000 channels a page).
const LIST_PAGES: usize = 50;

/// The id of the channel called `name` (`alerts` or `#alerts`), from `conversations.list`. Needed when a post to a
/// channel configured by name may have reached Slack but Sluice never learnt the channel's id (the post was the
/// lane's first, and its answer was lost): Slack's history reads take only ids, never names.
pub async fn channel_id(client: &Client, name: &str) -> Result<Option<String>, SlackError> {
    let name = name.trim_start_matches('#');
    let mut args = json!({"types": "public_channel,private_channel", "exclude_archived": true,
                          "limit": 1000});
    for _ in 0..LIST_PAGES {
        let page = client.call("conversations.list", &args).await?;
        let found = page["channels"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"].as_str() == Some(name))
            .and_then(|c| c["id"].as_str());
        if let Some(id) = found {
            return Ok(Some(id.to_string()));
        }
        match page["response_metadata"]["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => args["cursor"] = json!(next),
            _ => break,
        }
    }
    Ok(None)
}

/// Whether `s` is a conversation id (`C…`, `G…`, `D…`) rather than a name (Slack's names are lower case).
/// A user id (`U…`, or `W…` on Enterprise Grid): a post to it goes to the direct message with them. Channel names
/// are lower case, so no name reads as one.
pub fn is_user_id(s: &str) -> bool {
    s.len() >= 3
        && s.starts_with(['U', 'W'])
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

pub fn is_channel_id(s: &str) -> bool {
    s.len() >= 7
        && s.starts_with(['C', 'G', 'D'])
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// This host's name, as dispatcher owners carry it (`host/pid-run`).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a lease owner (`host/pid-run`) is an earlier run on this host whose process is gone. Only Linux can
/// tell (`/proc`); elsewhere no owner is taken for dead, and its leases run out as usual.
pub fn is_dead_local_owner(owner: &str) -> bool {
    let Some((owner_host, rest)) = owner.split_once('/') else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    owner_host == host()
        && pid != std::process::id()
        && cfg!(target_os = "linux")
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The `ts` of the message in a history page whose metadata carries `item_id`.
fn tagged(page: &Value, item_id: i64) -> Option<String> {
    page["messages"].as_array()?.iter().find_map(|m| {
        (m["metadata"]["event_payload"][ITEM_KEY].as_i64() == Some(item_id))
            .then(|| m["ts"].as_str().map(String::from))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_without_metadata_gets_ours_and_one_with_metadata_keeps_its_own() {
        let mut plain = json!({"channel": "C1", "text": "hi"});
        tag(&mut plain, 7);
        assert_eq!(
            plain["metadata"],
            json!({"event_type": "sluice_delivery", "event_payload": {"sluice_item": 7}})
        );
        let mut alert = json!({"channel": "C1", "metadata":
            {"event_type": "sluice_alert", "event_payload": {"event_id": "evt_1"}}});
        tag(&mut alert, 8);
        assert_eq!(
            alert["metadata"],
            json!({"event_type": "sluice_alert", "event_payload": {"event_id": "evt_1", "sluice_item": 8}})
        );
        let mut odd = json!({"channel": "C1", "metadata": "not an object"});
        tag(&mut odd, 9);
        assert_eq!(odd["metadata"]["event_payload"]["sluice_item"], 9);
    }

    #[test]
    fn ids_are_told_from_names() {
        for (s, id) in [
            ("C000001", true),
            ("C0123ABCDEF", true),
            ("D0001234", true),
            ("alerts", false),
            ("#alerts", false),
            ("c000001", false),
            ("C1", false),
        ] {
            assert_eq!(is_channel_id(s), id, "{s}");
        }
        for (s, user) in [
            ("U0002", true),
            ("U024BE7LH", true),
            ("W0123ABCD", true),
            ("C0123ABCD", false),
            ("u0002", false),
            ("users", false),
            ("U", false),
        ] {
            assert_eq!(is_user_id(s), user, "{s}");
        }
    }

    #[test]
    fn only_a_gone_process_of_this_host_is_an_owner_taken_for_dead() {
        let me = format!("{}/{}-abc", host(), std::process::id());
        assert!(!is_dead_local_owner(&me), "this process is alive");
        // Pids stay far below this on Linux (pid_max is at most 2^22).
        let gone = format!("{}/{}-abc", host(), 999_999_999u32);
        assert_eq!(is_dead_local_owner(&gone), cfg!(target_os = "linux"));
        assert!(!is_dead_local_owner("another-host/999999999-abc"));
        assert!(
            !is_dead_local_owner("12345-abc"),
            "an owner of the old form"
        );
    }

    #[test]
    fn only_the_message_tagged_with_the_item_is_found() {
        let page = json!({"messages": [
            {"ts": "1.1", "text": "someone else"},
            {"ts": "1.2", "metadata": {"event_payload": {"sluice_item": 41}}},
            {"ts": "1.3", "metadata": {"event_payload": {"sluice_item": 42}}},
        ]});
        assert_eq!(tagged(&page, 42).as_deref(), Some("1.3"));
        assert_eq!(tagged(&page, 43), None);
        assert_eq!(tagged(&json!({"ok": true}), 42), None);
    }
}
