//! The group flusher's decisions, with no IO: what a due group becomes ([`plan`]: a card, an update, a storm
//! digest's count, or nothing), what its card and thread say ([`group_card`], [`updates`]), when a route's storm
//! sends a digest ([`digest_phase`]) and what each digest counts ([`count_new`]). The binary's `notify.rs` runs the
//! clock: it reads the due groups and the routes' rates from the store, calls these, and commits what they return.

use std::collections::HashMap;

use serde_json::{json, Value};
use sluice_core::event::Event;
use sluice_core::noise::{DigestCounts, StormChange};
use sluice_core::render::{
    group_firing_reply, group_resolved_reply, render_group, DigestPhase, GroupAlertView, GroupView,
};
use sluice_model::{GroupState, NewOutboxItem, RouteAlert};
use sluice_slack_wire::blocks::fit_message;

use crate::clock::at;
use crate::outbox::outbox_item;
use crate::verb::show_actions;

/// What a flush does with a due group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The route is in a storm: the group is counted in the digest.
    Digest,
    /// Nothing to tell (`digested`: a storm digest stays the group's report).
    Quiet { digested: bool },
    /// The group's first card, or a new one after a long quiet.
    Post,
    /// The card is updated (unless this is only a `repeat_interval` reminder) and the thread told what changed.
    Update { repeat: bool },
}

/// What to do with the due group `g` at `now_ms`, its route `in_storm` or not. A group whose last card showed it
/// resolved longer ago than `reopen_ms` starts a new card when it fires again.
pub fn plan(g: &GroupState, in_storm: bool, now_ms: i64, reopen_ms: i64) -> Plan {
    let stale = g.notified_firing == 0 && g.notified_at_ms.is_some_and(|t| now_ms - t > reopen_ms);
    if in_storm {
        Plan::Digest
    } else if g.post_item_id.is_none()
        && g.digested_at_ms.is_some()
        && g.firing <= g.notified_firing
    {
        // A storm digest counted this group and nothing new fires since: the digest stays its report, so the end
        // of a storm does not bring the flood of cards the digest held back.
        Plan::Quiet { digested: true }
    } else if g.post_item_id.is_none() || stale {
        if g.firing == 0 {
            // Resolved before anyone was told it fired: nothing to say.
            Plan::Quiet { digested: false }
        } else {
            Plan::Post
        }
    } else {
        Plan::Update {
            repeat: g.changed_at_ms.is_none(),
        }
    }
}

/// The group's card as it stands at `now_ms`, with the decisions recorded on it (`actions`, see
/// `Store::alert_actions`), and the view its thread replies are written from.
pub fn group_card(g: &GroupState, now_ms: i64, actions: &[(String, String, i64)]) -> Value {
    let alerts = alert_views(g);
    let mut card = render_group(&view(g, &alerts, now_ms));
    show_actions(&mut card, actions);
    card["channel"] = json!(g.channel);
    fit_message(&mut card);
    card
}

fn alert_views(g: &GroupState) -> Vec<GroupAlertView> {
    g.alerts
        .iter()
        .filter_map(|a| {
            Some(GroupAlertView {
                event: serde_json::from_value(a.body.clone()).ok()?,
                count: a.count,
                first_seen: at(a.first_seen_ms),
                last_seen: at(a.last_seen_ms),
                resolved_at: a.closed_at_ms.map(at),
            })
        })
        .collect()
}

fn view<'g>(g: &'g GroupState, alerts: &'g [GroupAlertView], now_ms: i64) -> GroupView<'g> {
    GroupView {
        first_event_id: &g.first_event_id,
        route: &g.rule,
        labels: &g.labels,
        firing: u64::try_from(g.firing).unwrap_or(0),
        resolved: u64::try_from(g.resolved).unwrap_or(0),
        events: u64::try_from(g.events).unwrap_or(0),
        alerts,
        first_seen: at(g.created_at_ms),
        now: at(now_ms),
    }
}

/// The calls of an [`Plan::Update`] flush, linked to the group's card (the dispatcher adds its ts to the
/// `chat.update`, or makes a message a thread reply): the card redrawn unless this is only a reminder, and a reply
/// saying what changed — resolved, firing again, or (a reminder) still firing.
pub fn updates(g: &GroupState, card: Value, repeat: bool, now_ms: i64) -> Vec<NewOutboxItem> {
    let alerts = alert_views(g);
    let view = view(g, &alerts, now_ms);
    let item = |method: &str, args: Value| NewOutboxItem {
        ref_post: true,
        ..outbox_item(&g.team, &g.channel, method, args)
    };
    let reply = |text: String| {
        item(
            "chat.postMessage",
            json!({ "channel": g.channel, "text": text }),
        )
    };
    let mut out = Vec::new();
    if !repeat {
        out.push(item("chat.update", card));
    }
    match (g.notified_firing > 0, g.firing > 0) {
        (true, false) => out.push(reply(group_resolved_reply(&view))),
        (false, true) => out.push(reply(group_firing_reply(&view, true))),
        (true, true) if repeat => out.push(reply(group_firing_reply(&view, false))),
        _ => {}
    }
    out
}

/// Whether a route's storm guard calls for a digest now: when the storm starts, when it ends, and every
/// `digest_ms` while it lasts (`storm_since_ms`: the storm's start, `None` outside one; `from_ms`: the start of the
/// period the next digest covers).
pub fn digest_phase(
    change: StormChange,
    storm_since_ms: Option<i64>,
    from_ms: i64,
    digest_ms: i64,
    now_ms: i64,
) -> Option<DigestPhase> {
    match change {
        StormChange::Started => Some(DigestPhase::Started),
        StormChange::Ended => Some(DigestPhase::Ended),
        StormChange::Steady if storm_since_ms.is_some() && now_ms - from_ms >= digest_ms => {
            Some(DigestPhase::Ongoing)
        }
        StormChange::Steady => None,
    }
}

/// What a digest counts: the events of each alert not counted by an earlier digest of this storm (`counted`, per
/// alert, is updated), per service and severity.
pub fn count_new(counted: &mut HashMap<i64, u32>, alerts: Vec<RouteAlert>) -> DigestCounts {
    let mut counts = DigestCounts::default();
    for a in alerts {
        let before = counted.insert(a.alert_id, a.count).unwrap_or(0);
        let new = a.count.saturating_sub(before);
        if new == 0 {
            continue;
        }
        let (service, severity) = match serde_json::from_value::<Event>(a.body) {
            Ok(e) => (e.service, e.severity.as_str().to_owned()),
            Err(_) => (String::new(), "unknown".to_owned()),
        };
        counts.add(&service, &severity, u64::from(new));
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_000_000;

    fn group(firing: i64, notified_firing: i64) -> GroupState {
        GroupState {
            id: 1,
            key: "k".into(),
            rule: "alerts".into(),
            lane: "T1:C1".into(),
            team: "T1".into(),
            channel: "C1".into(),
            template: "auto".into(),
            labels: vec![("service".into(), "db".into())],
            version: 1,
            first_event_id: "ev1".into(),
            created_at_ms: T - 60_000,
            changed_at_ms: Some(T - 1_000),
            notified_at_ms: None,
            notified_firing,
            post_item_id: None,
            digested_at_ms: None,
            events: 3,
            firing,
            resolved: 0,
            alerts: vec![],
            wait_ms: 0,
            interval_ms: 0,
            repeat_ms: 0,
        }
    }

    /// Every way a due group can stand, and what the flush makes of it.
    #[test]
    fn what_a_due_group_becomes() {
        let posted = |g: GroupState| GroupState {
            post_item_id: Some(9),
            notified_at_ms: Some(T - 10_000),
            ..g
        };
        let cases: Vec<(&str, GroupState, bool, Plan)> = vec![
            ("first flush: its card", group(2, 0), false, Plan::Post),
            (
                "in a storm: counted in the digest",
                group(2, 0),
                true,
                Plan::Digest,
            ),
            (
                "resolved before its first card: nothing to say",
                group(0, 0),
                false,
                Plan::Quiet { digested: false },
            ),
            (
                "a digest counted it and nothing new fires: the digest stays its report",
                GroupState {
                    digested_at_ms: Some(T - 5_000),
                    ..group(2, 2)
                },
                false,
                Plan::Quiet { digested: true },
            ),
            (
                "changed since its card: an update",
                posted(group(3, 2)),
                false,
                Plan::Update { repeat: false },
            ),
            (
                "unchanged, due for repeat_interval: a reminder",
                GroupState {
                    changed_at_ms: None,
                    ..posted(group(2, 2))
                },
                false,
                Plan::Update { repeat: true },
            ),
            (
                "resolved long ago and firing again: a new card",
                GroupState {
                    notified_at_ms: Some(T - 3_600_001),
                    ..posted(group(1, 0))
                },
                false,
                Plan::Post,
            ),
        ];
        for (what, g, storm, want) in cases {
            assert_eq!(plan(&g, storm, T, 3_600_000), want, "{what}");
        }
    }

    #[test]
    fn an_update_says_in_the_thread_what_changed() {
        let texts = |items: Vec<NewOutboxItem>| -> Vec<String> {
            items
                .iter()
                .map(|i| format!("{} {}", i.method, i.args["text"].as_str().unwrap_or("")))
                .collect()
        };
        let card = json!({"channel": "C1"});
        let resolved = texts(updates(&group(0, 2), card.clone(), false, T));
        assert_eq!(resolved.len(), 2, "{resolved:?}");
        assert!(resolved[0].starts_with("chat.update"));
        let refired = texts(updates(&group(1, 0), card.clone(), false, T));
        assert_eq!(refired.len(), 2, "{refired:?}");
        assert_ne!(resolved[1], refired[1]);
        let reminder = texts(updates(&group(2, 2), card.clone(), true, T));
        assert_eq!(
            reminder.len(),
            1,
            "a reminder does not redraw the card: {reminder:?}"
        );
        assert!(reminder[0].starts_with("chat.postMessage"));
        assert!(texts(updates(&group(2, 2), card, false, T)).len() == 1);
        assert!(updates(&group(2, 2), json!({}), false, T)
            .iter()
            .all(|i| i.ref_post));
    }

    #[test]
    fn a_storm_sends_a_digest_when_it_starts_ends_and_every_digest_period() {
        let every = 300_000;
        let cases = [
            (StormChange::Started, None, T, Some(DigestPhase::Started)),
            (StormChange::Ended, None, T, Some(DigestPhase::Ended)),
            (
                StormChange::Steady,
                Some(T - every),
                T - every,
                Some(DigestPhase::Ongoing),
            ),
            (StormChange::Steady, Some(T - every), T - every + 1, None),
            (StormChange::Steady, None, T - every, None),
        ];
        for (change, since, from, want) in cases {
            assert_eq!(
                digest_phase(change, since, from, every, T),
                want,
                "{change:?} {since:?} {from}"
            );
        }
    }

    #[test]
    fn each_digest_counts_only_what_is_new_since_the_last() {
        let alert = |id: i64, count: u32| RouteAlert {
            alert_id: id,
            body: json!({"title": "x", "severity": "critical", "status": "firing", "source": "am",
                         "service": "db"}),
            count,
            last_seen_ms: T,
        };
        let mut counted = HashMap::new();
        let first = count_new(&mut counted, vec![alert(1, 3), alert(2, 1)]);
        assert_eq!((first.alerts(), first.events()), (2, 4));
        let second = count_new(&mut counted, vec![alert(1, 5), alert(2, 1)]);
        assert_eq!((second.alerts(), second.events()), (1, 2));
    }
}
