//! Cards for noise control (see [`crate::noise`]): one card per group of alerts, and the storm digest.

use serde_json::{json, Value};
use sluice_slack_wire::limits;
use time::OffsetDateTime;

use super::{
    context, esc_fit, escape, header, hh_mm, human_duration, plain, section, severity_emoji,
    ACTIONS_BLOCK_ID, ACTION_ACK, METADATA_EVENT_TYPE,
};
use crate::event::Event;
use crate::noise::{DigestCounts, Storm};

/// How many alerts a group card lists before it summarises the rest.
pub const GROUP_CARD_ALERTS: usize = 10;

/// One alert of a group, as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAlertView {
    pub event: Event,
    pub count: u32,
    pub first_seen: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    /// `None` while it fires.
    pub resolved_at: Option<OffsetDateTime>,
}

/// A group of alerts on one route and channel, as its card shows it.
#[derive(Debug, Clone)]
pub struct GroupView<'a> {
    /// The group's first event: the value of its buttons, in its metadata.
    pub first_event_id: &'a str,
    pub route: &'a str,
    /// The `group_by` labels and their values (empty: the whole route).
    pub labels: &'a [(String, String)],
    /// How many alerts fire and how many resolved, in all (the list may be shorter).
    pub firing: u64,
    pub resolved: u64,
    /// Events the group stands for, duplicates included.
    pub events: u64,
    /// Firing first, then the most recent.
    pub alerts: &'a [GroupAlertView],
    pub first_seen: OffsetDateTime,
    pub now: OffsetDateTime,
}

fn labels_text(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return "all alerts".to_owned();
    }
    labels
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                format!("{k}=\"\"")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lines joined, as many as fit a section; lines are cut whole, since a half line would break its mrkdwn.
fn whole_lines(lines: Vec<String>) -> String {
    let mut body = String::new();
    for line in lines {
        if body.chars().count() + line.chars().count() + 1 > limits::SECTION_TEXT {
            break;
        }
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&line);
    }
    body
}

fn alert_line(a: &GroupAlertView) -> String {
    let e = &a.event;
    let service = if e.service.is_empty() {
        String::new()
    } else {
        format!(" · {}", esc_fit(&e.service, 80))
    };
    let count = if a.count > 1 {
        format!(" ×{}", a.count)
    } else {
        String::new()
    };
    match a.resolved_at {
        None => format!(
            "{} *{}*{service} · {}{count} · since {}",
            severity_emoji(e.severity),
            esc_fit(&e.title, 150),
            e.severity.as_str(),
            hh_mm(a.first_seen)
        ),
        Some(at) => format!(
            ":white_check_mark: ~{}~{service}{count} · resolved {} after {}",
            esc_fit(&e.title, 150),
            hh_mm(at),
            human_duration(at - a.first_seen)
        ),
    }
}

/// The card of a group: how many alerts fire, the alerts (up to [`GROUP_CARD_ALERTS`]), and an Acknowledge button
/// while any fires.
pub fn render_group(g: &GroupView) -> Value {
    let group = labels_text(g.labels);
    let what = escape(&group);
    let (head, tag) = if g.firing > 0 {
        let worst = g
            .alerts
            .iter()
            .filter(|a| a.resolved_at.is_none())
            .map(|a| a.event.severity)
            .min_by_key(|s| super::severity_rank(*s));
        (
            format!(
                "{} {} firing · {}",
                worst.map_or(":warning:", severity_emoji),
                g.firing,
                group
            ),
            format!("[FIRING:{}]", g.firing),
        )
    } else {
        (
            format!(":white_check_mark: Resolved · {group}"),
            "[RESOLVED]".to_owned(),
        )
    };
    let mut lines: Vec<String> = g
        .alerts
        .iter()
        .take(GROUP_CARD_ALERTS)
        .map(alert_line)
        .collect();
    let shown = lines.len() as u64;
    let total = g.firing + g.resolved;
    if total > shown {
        lines.push(format!(
            "…and {} more ({} firing, {} resolved in all)",
            total - shown,
            g.firing,
            g.resolved
        ));
    }
    let body = whole_lines(lines);
    let mut blocks = vec![header(head), section(body)];
    if g.firing > 0 {
        blocks.push(json!({
            "type": "actions",
            "block_id": ACTIONS_BLOCK_ID,
            "elements": [
                {"type": "button", "style": "primary", "text": plain("Acknowledge".into()), "action_id": ACTION_ACK,
                 "value": super::fit(g.first_event_id, limits::BUTTON_VALUE)},
            ],
        }));
    }
    blocks.push(context(vec![format!(
        "group `{what}` · route `{}` · {} {} since {} · updated {}",
        esc_fit(g.route, 100),
        g.events,
        if g.events == 1 { "event" } else { "events" },
        hh_mm(g.first_seen),
        hh_mm(g.now)
    )]));
    let titles: Vec<String> = g
        .alerts
        .iter()
        .filter(|a| g.firing == 0 || a.resolved_at.is_none())
        .take(3)
        .map(|a| a.event.title.clone())
        .collect();
    json!({
        "text": super::fit(&format!("{tag} {what}: {}", escape(&titles.join(", "))), limits::MESSAGE_TEXT_SOFT),
        "blocks": blocks,
        "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {"event_id": g.first_event_id, "group": group}},
    })
}

/// Thread reply when every alert of a group has resolved.
pub fn group_resolved_reply(g: &GroupView) -> String {
    format!(
        ":white_check_mark: *All {} resolved* at {} after {}",
        if g.resolved == 1 {
            "1 alert".to_owned()
        } else {
            format!("{} alerts", g.resolved)
        },
        hh_mm(g.now),
        human_duration(g.now - g.first_seen)
    )
}

/// Thread reply when a resolved group fires again, or when it still fires after `repeat_interval`.
pub fn group_firing_reply(g: &GroupView, again: bool) -> String {
    format!(
        "{} *{}*: {} firing ({} events since {})",
        if again { ":fire:" } else { ":repeat:" },
        if again {
            "Firing again"
        } else {
            "Still firing"
        },
        g.firing,
        g.events,
        hh_mm(g.first_seen)
    )
}

/// Where a storm stands when a digest is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestPhase {
    /// The first digest: the route has just switched.
    Started,
    /// A periodic digest while the storm lasts.
    Ongoing,
    /// The storm is over: the route is back to cards.
    Ended,
}

/// A storm digest of a route.
#[derive(Debug, Clone)]
pub struct DigestView<'a> {
    pub route: &'a str,
    pub phase: DigestPhase,
    pub storm: &'a Storm,
    /// Events in the last window when the digest was made.
    pub rate: u64,
    pub storm_since: OffsetDateTime,
    /// The period this digest covers.
    pub from: OffsetDateTime,
    pub now: OffsetDateTime,
    /// Alerts and events per (service, severity) that came in during the period.
    pub counts: &'a DigestCounts,
}

/// A service in a digest: its name, its events, and its alerts per severity.
type ServiceLine = (String, u64, Vec<(String, u64)>);

/// How many services a digest lists before it summarises the rest.
pub const DIGEST_SERVICES: usize = 15;

/// The digest message: counts per service and severity, most events first.
pub fn render_digest(d: &DigestView) -> Value {
    let window = human_duration(time::Duration::milliseconds(d.storm.window_ms));
    let every = human_duration(time::Duration::milliseconds(d.storm.digest_ms));
    let route = esc_fit(d.route, 100);
    let head = match d.phase {
        DigestPhase::Started => format!(":ocean: Alert storm on {}: digest mode", d.route),
        DigestPhase::Ongoing => format!(":ocean: Alert storm on {}: digest", d.route),
        DigestPhase::Ended => format!(":white_check_mark: Alert storm on {} is over", d.route),
    };
    let intro = match d.phase {
        DigestPhase::Started => format!(
            "{} events in the last {window} (more than {}). Cards for route `{route}` are paused; a digest follows every {every} until the rate falls to {}.",
            d.rate,
            d.storm.above,
            d.storm.above / 2
        ),
        DigestPhase::Ongoing => format!(
            "Storm since {} ({} events in the last {window}). From {} to {}:",
            hh_mm(d.storm_since),
            d.rate,
            hh_mm(d.from),
            hh_mm(d.now)
        ),
        DigestPhase::Ended => format!(
            "It lasted {}; route `{route}` is back to cards. From {} to {}:",
            human_duration(d.now - d.storm_since),
            hh_mm(d.from),
            hh_mm(d.now)
        ),
    };
    // Per service: events, then the alerts per severity.
    let mut services: Vec<ServiceLine> = Vec::new();
    for ((service, severity), (alerts, events)) in &d.counts.by {
        match services.iter_mut().find(|s| &s.0 == service) {
            Some(s) => {
                s.1 += events;
                s.2.push((severity.clone(), *alerts));
            }
            None => services.push((service.clone(), *events, vec![(severity.clone(), *alerts)])),
        }
    }
    services.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut lines: Vec<String> = services
        .iter()
        .take(DIGEST_SERVICES)
        .map(|(service, events, sev)| {
            let sev: Vec<String> = sev.iter().map(|(s, n)| format!("{n} {s}")).collect();
            let name = if service.is_empty() {
                "(no service)".to_owned()
            } else {
                esc_fit(service, 80)
            };
            format!("• *{name}*: {} ({events} events)", sev.join(", "))
        })
        .collect();
    if services.len() > DIGEST_SERVICES {
        let rest: u64 = services[DIGEST_SERVICES..].iter().map(|s| s.1).sum();
        lines.push(format!(
            "…and {} more services ({rest} events)",
            services.len() - DIGEST_SERVICES
        ));
    }
    if lines.is_empty() {
        lines.push("No new alerts in this period.".to_owned());
    }
    let body = whole_lines(lines);
    let blocks = vec![
        header(head.clone()),
        section(intro),
        section(body),
        context(vec![format!(
            "{} alerts · {} events in this digest · storm guard of route `{route}`",
            d.counts.alerts(),
            d.counts.events()
        )]),
    ];
    json!({
        "text": super::fit(&format!("{} ({} alerts, {} events)", escape(&head), d.counts.alerts(), d.counts.events()), limits::MESSAGE_TEXT_SOFT),
        "blocks": blocks,
    })
}
