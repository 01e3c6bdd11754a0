//! Who may act on alert cards.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sluice_slack::api::Client;

use crate::config::ActionsConfig;

/// Who may act on alert cards: listed users, members of listed user groups, and — with `channel_members` — members
/// of the channel the card is in (memberships are asked of Slack and remembered for a minute). With none of these
/// configured, everyone in the workspace may act.
pub struct Permissions {
    users: Vec<String>,
    groups: Vec<String>,
    channel_members: bool,
    pub(super) slack: Client,
    /// `"group:S…"` / `"channel:C…"` → when read, members.
    members: Mutex<BTreeMap<String, (Instant, Vec<String>)>>,
}

const MEMBERS_CACHE: Duration = Duration::from_secs(60);

impl Permissions {
    pub fn new(cfg: &ActionsConfig, slack: Client) -> Self {
        Permissions {
            users: cfg.users.clone(),
            groups: cfg.groups.clone(),
            channel_members: cfg.channel_members,
            slack,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// Permissions for a list of its own (an approval's approvers), asked of Slack like `[actions]`.
    pub fn listed(
        users: Vec<String>,
        groups: Vec<String>,
        channel_members: bool,
        slack: Client,
    ) -> Self {
        Permissions {
            users,
            groups,
            channel_members,
            slack,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// The client memberships are read with.
    pub fn slack(&self) -> &Client {
        &self.slack
    }

    /// May `user` act on a card in `channel`?
    pub async fn may_act(&self, user: &str, channel: &str) -> bool {
        if self.users.is_empty() && self.groups.is_empty() && !self.channel_members {
            return true;
        }
        if self.users.iter().any(|u| u == user) {
            return true;
        }
        for group in &self.groups {
            if self.is_member(&format!("group:{group}"), user).await {
                return true;
            }
        }
        self.channel_members && self.is_member(&format!("channel:{channel}"), user).await
    }

    async fn is_member(&self, key: &str, user: &str) -> bool {
        let cached = self.members.lock().ok().and_then(|m| {
            m.get(key)
                .filter(|(at, _)| at.elapsed() < MEMBERS_CACHE)
                .map(|(_, users)| users.clone())
        });
        let users = match cached {
            Some(users) => users,
            None => {
                let read = match key.split_once(':') {
                    Some(("group", id)) => self.slack.usergroups_users_list(id).await,
                    Some((_, id)) => self.slack.conversations_members(id).await,
                    None => return false,
                };
                match read {
                    Ok(users) => {
                        if let Ok(mut m) = self.members.lock() {
                            m.insert(key.to_string(), (Instant::now(), users.clone()));
                        }
                        users
                    }
                    Err(e) => {
                        // Fail closed: an unknown membership is not a permission.
                        tracing::warn!(%key, error = %e, "could not read members");
                        return false;
                    }
                }
            }
        };
        users.iter().any(|u| u == user)
    }
}
