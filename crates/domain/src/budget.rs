//! Slack budget use, as the operator console's overview shows it: Slack calls sent in the last minute against what
//! Slack allows for them (`sluice_slack_wire::tiers`), per channel for `chat.postMessage` (Slack limits it per
//! channel, with a workspace-wide ceiling on top) and per method for the tiered methods (limited per workspace).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sluice_model::CallCount;
use sluice_slack_wire::tiers::{rate_class, slack_limit, Rate, RateClass};

/// One budget: calls in the last minute against the allowance a minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetUse {
    /// `"channel"` (one channel's `chat.postMessage`) or `"workspace"` (a method across all channels).
    pub scope: &'static str,
    /// The channel, for a channel's budget.
    pub channel: Option<String>,
    pub method: String,
    /// The channels the calls went to, for a workspace budget.
    pub channels: Vec<String>,
    pub calls: u64,
    pub allowance_per_minute: u64,
    /// `calls / allowance`, 1.0 meaning the budget is used up.
    pub used: f64,
    /// 429s Slack answered for this method (this replica, since it started); on workspace budgets only.
    pub rate_limited: Option<u64>,
}

fn per_minute(rate: Rate) -> u64 {
    (f64::from(rate.calls) * 60.0 / rate.period.as_secs_f64()).round() as u64
}

fn entry(
    scope: &'static str,
    channel: Option<String>,
    method: &str,
    channels: Vec<String>,
    calls: u64,
    allowance: u64,
    rate_limited: Option<u64>,
) -> BudgetUse {
    BudgetUse {
        scope,
        channel,
        method: method.to_string(),
        channels,
        calls,
        allowance_per_minute: allowance,
        used: calls as f64 / allowance.max(1) as f64,
        rate_limited,
    }
}

/// The budgets `counts` (calls of the last minute per channel and method) use, busiest first. `rate_limited` is
/// 429s per method; `post_message_per_minute` the workspace ceiling Sluice keeps to for `chat.postMessage`.
pub fn budget_use(
    counts: &[CallCount],
    rate_limited: &BTreeMap<String, u64>,
    post_message_per_minute: u32,
) -> Vec<BudgetUse> {
    let mut out = Vec::new();
    let mut by_method: BTreeMap<&str, (u64, BTreeSet<&str>)> = BTreeMap::new();
    for c in counts {
        let m = by_method.entry(c.method.as_str()).or_default();
        m.0 += c.calls;
        m.1.insert(c.channel.as_str());
        if rate_class(&c.method) == RateClass::PerChannel {
            let allowance = per_minute(slack_limit(RateClass::PerChannel));
            out.push(entry(
                "channel",
                Some(c.channel.clone()),
                &c.method,
                Vec::new(),
                c.calls,
                allowance,
                None,
            ));
        }
    }
    // Methods that were rate-limited but sent nothing in the minute still show their 429s.
    for method in rate_limited.keys() {
        by_method.entry(method.as_str()).or_default();
    }
    for (method, (calls, channels)) in by_method {
        let allowance = match rate_class(method) {
            RateClass::PerChannel => u64::from(post_message_per_minute),
            class => per_minute(slack_limit(class)),
        };
        out.push(entry(
            "workspace",
            None,
            method,
            channels.into_iter().map(str::to_string).collect(),
            calls,
            allowance,
            Some(rate_limited.get(method).copied().unwrap_or(0)),
        ));
    }
    out.sort_by(|a, b| {
        b.used
            .total_cmp(&a.used)
            .then_with(|| a.method.cmp(&b.method))
            .then_with(|| a.channel.cmp(&b.channel))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(channel: &str, method: &str, calls: u64) -> CallCount {
        CallCount {
            channel: channel.into(),
            method: method.into(),
            calls,
        }
    }

    #[test]
    fn post_message_per_channel_and_tiers_per_workspace() {
        let counts = [
            count("C1", "chat.postMessage", 30),
            count("C2", "chat.postMessage", 6),
            count("C1", "chat.update", 25),
            count("C2", "chat.update", 5),
            count("C1", "conversations.create", 2),
        ];
        let limited = BTreeMap::from([
            ("chat.update".to_string(), 3),
            ("views.open".to_string(), 1),
        ]);
        let rows = budget_use(&counts, &limited, 600);
        type Row<'a> = (&'a str, Option<&'a str>, &'a str, u64, u64, Option<u64>);
        let got: Vec<Row> = rows
            .iter()
            .map(|r| {
                (
                    r.scope,
                    r.channel.as_deref(),
                    r.method.as_str(),
                    r.calls,
                    r.allowance_per_minute,
                    r.rate_limited,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                // Tier 3: 50 a minute in the workspace, 30 used.
                ("workspace", None, "chat.update", 30, 50, Some(3)),
                // One message a second per channel: 60 a minute.
                ("channel", Some("C1"), "chat.postMessage", 30, 60, None),
                // Equally used (a tenth) in method order. Tier 2: 20 a minute.
                ("channel", Some("C2"), "chat.postMessage", 6, 60, None),
                ("workspace", None, "conversations.create", 2, 20, Some(0)),
                // The workspace ceiling on chat.postMessage, as configured.
                ("workspace", None, "chat.postMessage", 36, 600, Some(0)),
                ("workspace", None, "views.open", 0, 100, Some(1)),
            ]
        );
        assert_eq!(rows[0].channels, vec!["C1", "C2"]);
        assert!((rows[0].used - 0.6).abs() < 1e-9);
    }
}
