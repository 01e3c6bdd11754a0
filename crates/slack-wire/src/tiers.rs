//! Slack Web API rate classes per method: the one table of them in the code.
//!
//! Limits are per app, per workspace, per method, except `chat.postMessage`, which Slack limits
//! per *channel* (about one message per second, short bursts allowed) with a workspace-wide
//! ceiling on top. Our dispatcher spaces calls by these numbers so that Slack never has to
//! answer 429; the simulator enforces the same numbers.

use std::time::Duration;

/// How Slack rate-limits one Web API method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// Tier 1..=4: a per-minute budget for the method in one workspace.
    Tier(u8),
    /// One message per second per channel (chat.postMessage), plus a workspace-wide ceiling.
    PerChannel,
    /// Incoming webhooks: about one per second per webhook URL.
    Webhook,
    /// Methods Slack documents as "special" with a high limit (auth.test).
    Special,
}

/// A sustained rate with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed per `period`.
    pub calls: u32,
    /// The window `calls` are counted over.
    pub period: Duration,
    /// Calls that may go out back to back before spacing applies.
    pub burst: u32,
}

impl Rate {
    /// The time between two calls at the sustained rate.
    pub fn interval(&self) -> Duration {
        self.period / self.calls.max(1)
    }
}

/// Method → rate class. Unknown methods are treated as Tier 3, Slack's most common tier.
pub const METHODS: &[(&str, RateClass)] = &[
    ("chat.postMessage", RateClass::PerChannel),
    ("chat.update", RateClass::Tier(3)),
    ("chat.delete", RateClass::Tier(3)),
    ("chat.postEphemeral", RateClass::Tier(4)),
    ("chat.scheduleMessage", RateClass::Tier(3)),
    ("chat.getPermalink", RateClass::Special),
    ("reactions.add", RateClass::Tier(3)),
    ("conversations.create", RateClass::Tier(2)),
    ("conversations.invite", RateClass::Tier(3)),
    ("conversations.info", RateClass::Tier(3)),
    ("conversations.list", RateClass::Tier(2)),
    ("conversations.setTopic", RateClass::Tier(2)),
    ("conversations.history", RateClass::Tier(3)),
    ("conversations.members", RateClass::Tier(4)),
    ("conversations.open", RateClass::Tier(3)),
    ("users.info", RateClass::Tier(4)),
    ("users.lookupByEmail", RateClass::Tier(3)),
    ("usergroups.users.list", RateClass::Tier(2)),
    ("views.open", RateClass::Tier(4)),
    ("views.update", RateClass::Tier(4)),
    ("views.push", RateClass::Tier(4)),
    ("views.publish", RateClass::Tier(4)),
    ("apps.connections.open", RateClass::Tier(1)),
    ("auth.test", RateClass::Special),
];

/// The rate class of a Web API method.
pub fn rate_class(method: &str) -> RateClass {
    METHODS
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, c)| *c)
        .unwrap_or(RateClass::Tier(3))
}

/// Slack's published limit for a rate class (what the simulator enforces).
pub fn slack_limit(class: RateClass) -> Rate {
    let minute = Duration::from_secs(60);
    match class {
        // "1+ per minute, bursts tolerated": a Socket Mode app opening its connections, one
        // refresh and one reconnect within seconds is within what Slack accepts.
        RateClass::Tier(1) => Rate {
            calls: 1,
            period: minute,
            burst: 5,
        },
        RateClass::Tier(2) => Rate {
            calls: 20,
            period: minute,
            burst: 5,
        },
        RateClass::Tier(3) => Rate {
            calls: 50,
            period: minute,
            burst: 10,
        },
        RateClass::Tier(_) => Rate {
            calls: 100,
            period: minute,
            burst: 20,
        },
        RateClass::PerChannel | RateClass::Webhook => Rate {
            calls: 1,
            period: Duration::from_secs(1),
            burst: 4,
        },
        RateClass::Special => Rate {
            calls: 600,
            period: minute,
            burst: 100,
        },
    }
}

/// The rate Sluice itself keeps to: the same sustained rate with a smaller burst, so that
/// clock skew and network jitter between us and Slack never add up to a 429.
pub fn our_limit(class: RateClass) -> Rate {
    let slack = slack_limit(class);
    Rate {
        calls: slack.calls,
        period: slack.period,
        burst: (slack.burst / 2).max(1),
    }
}

/// Workspace-wide ceiling on chat.postMessage across all channels (per minute).
pub const POST_MESSAGE_WORKSPACE_PER_MINUTE: u32 = 600;

/// The workspace-wide chat.postMessage ceiling Sluice keeps to, on top of the per-channel rate.
pub fn our_post_message_workspace_limit() -> Rate {
    Rate {
        calls: POST_MESSAGE_WORKSPACE_PER_MINUTE,
        period: Duration::from_secs(60),
        burst: 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_message_is_limited_per_channel_not_per_workspace() {
        assert_eq!(rate_class("chat.postMessage"), RateClass::PerChannel);
    }

    #[test]
    fn our_limit_never_exceeds_slacks() {
        for (method, class) in METHODS {
            let (ours, slack) = (our_limit(*class), slack_limit(*class));
            assert!(ours.burst <= slack.burst, "{method}");
            assert!(ours.interval() >= slack.interval(), "{method}");
        }
    }

    #[test]
    fn unknown_methods_default_to_tier_3() {
        assert_eq!(rate_class("pins.add"), RateClass::Tier(3));
    }
}
