//! Incidents as a pure state machine: [`decide`] takes an incident's [`State`], an [`Input`] (a status update, a role
//! given, a severity change, a note, the resolve, the reminder clock) and the time, and returns the new state and the
//! [`Effect`]s the handler carries out (timeline lines, the pinned card and the announcement redrawn, a message in
//! the war room, the summary). No IO: who may do what is asked by the handler before.
//!
//! Rules: a resolved incident takes nothing more; a change to what it already is (the same status, severity or role
//! holder) is refused and changes nothing; every accepted update moves the reminder to `now` + the severity's
//! reminder minutes (none configured: no reminder).
//!
//! Also here, with no IO: the war room's name ([`channel_name`], [`slug`]), the card, the announcement and the
//! summary ([`card`], [`announcement`], [`summary`]), and what counts as a decision or an action item ([`marked`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sluice_model::{IncidentRecord, NewTimelineEntry, TimelineEntry};
use sluice_slack_wire::blocks::{escape_mrkdwn, truncate_mrkdwn};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Investigating,
    Identified,
    Mitigated,
    Resolved,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Investigating,
        Status::Identified,
        Status::Mitigated,
        Status::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Mitigated => "mitigated",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The severities people may give: 1 (worst) to 4.
pub const SEVERITIES: std::ops::RangeInclusive<u8> = 1..=4;

/// An incident as [`decide`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub sev: u8,
    pub roles: BTreeMap<String, String>,
    pub remind_at_ms: Option<i64>,
}

impl State {
    pub fn of(r: &IncidentRecord) -> State {
        State {
            status: Status::parse(&r.status).unwrap_or(Status::Investigating),
            sev: r.sev,
            roles: r.roles.clone(),
            remind_at_ms: r.remind_at_ms,
        }
    }
}

/// What happens to an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Status {
        to: Status,
        text: String,
    },
    Role {
        role: String,
        user: String,
    },
    Severity {
        sev: u8,
    },
    /// `pinned`: a message marked with the note reaction (it counts as a decision in the summary).
    Note {
        text: String,
        pinned: bool,
    },
    Resolve {
        text: String,
    },
    /// The reminder's time came (the timer asks only when `remind_at_ms` is due).
    Remind,
}

/// What the handler carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Timeline(NewTimelineEntry),
    /// Redraw the pinned card and the announcement.
    Refresh,
    /// A message in the war room.
    Say(String),
    /// Post the summary in the war room and the announcement channel (and archive if configured).
    Summarize,
    /// Nothing changed; tell the person why.
    Refused(String),
}

/// Reminder minutes per severity (`[[incident_type]] reminders`).
pub type Reminders = BTreeMap<u8, i64>;

fn remind_at(reminders: &Reminders, sev: u8, now_ms: i64) -> Option<i64> {
    reminders.get(&sev).map(|m| now_ms + m * 60_000)
}

/// Decides what `input` by `by` at `now_ms` does to an incident in `state`.
pub fn decide(
    state: &State,
    input: &Input,
    by: &str,
    reminders: &Reminders,
    now_ms: i64,
) -> (State, Vec<Effect>) {
    let refuse = |why: String| (state.clone(), vec![Effect::Refused(why)]);
    if state.status == Status::Resolved {
        return refuse("this incident is resolved".into());
    }
    let line = |kind: &str, text: String| {
        Effect::Timeline(NewTimelineEntry {
            at_ms: now_ms,
            author: by.to_string(),
            kind: kind.to_string(),
            text,
        })
    };
    let mut next = state.clone();
    next.remind_at_ms = remind_at(reminders, state.sev, now_ms);
    let effects = match input {
        Input::Status {
            to: Status::Resolved,
            text,
        }
        | Input::Resolve { text } => {
            next.status = Status::Resolved;
            next.remind_at_ms = None;
            let text = if text.is_empty() {
                "resolved".to_string()
            } else {
                format!("resolved: {text}")
            };
            vec![line("resolved", text), Effect::Refresh, Effect::Summarize]
        }
        Input::Status { to, text } => {
            if *to == state.status {
                return refuse(format!("the incident is already {}", to.as_str()));
            }
            next.status = *to;
            let text = if text.is_empty() {
                to.as_str().to_string()
            } else {
                format!("{}: {text}", to.as_str())
            };
            vec![line("status", text), Effect::Refresh]
        }
        Input::Role { role, user } => {
            if state.roles.get(role) == Some(user) {
                return refuse(format!("<@{user}> is already the {role}"));
            }
            next.roles.insert(role.clone(), user.clone());
            vec![
                line("role", format!("{role}: <@{user}>")),
                Effect::Refresh,
                Effect::Say(format!("<@{user}> is now the {role}.")),
            ]
        }
        Input::Severity { sev } => {
            if !SEVERITIES.contains(sev) {
                return refuse(format!("severity {sev} is not between 1 and 4"));
            }
            if *sev == state.sev {
                return refuse(format!("the incident is already SEV{sev}"));
            }
            next.sev = *sev;
            next.remind_at_ms = remind_at(reminders, *sev, now_ms);
            vec![
                line("severity", format!("SEV{} → SEV{sev}", state.sev)),
                Effect::Refresh,
            ]
        }
        Input::Note { text, pinned } => {
            if text.trim().is_empty() {
                return refuse("a note needs some text".into());
            }
            let kind = if *pinned { "pinned" } else { "note" };
            vec![line(kind, text.trim().to_string()), Effect::Refresh]
        }
        Input::Remind => {
            if state.remind_at_ms.is_none_or(|at| at > now_ms) {
                return (state.clone(), vec![]);
            }
            vec![
                line("reminder", "no update posted; reminder sent".into()),
                Effect::Say(format!(
                    "Reminder: no update on this SEV{} incident for a while. Post one with `/ops incident status <investigating|identified|mitigated|resolved> \"…\"` or `/ops incident note …`.",
                    state.sev
                )),
            ]
        }
    };
    (next, effects)
}

/// Text people wrote, escaped for mrkdwn, with its user and channel mentions (`<@U…>`, `<#C…>`, `<@U…|name>`)
/// kept as mentions.
pub fn show(text: &str) -> String {
    static MENTION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"&lt;([@#][UWC][A-Z0-9]+)(\|[^&<>|]*)?&gt;").expect("a valid regex")
    });
    MENTION
        .replace_all(&escape_mrkdwn(text), "<$1$2>")
        .into_owned()
}

/// A title as a channel name part: lower-case ASCII letters and digits, runs of anything else one `-`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_matches('-')
        .chars()
        .take(40)
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

/// The longest channel name Slack accepts.
pub const CHANNEL_MAX: usize = 80;
/// Room kept for a `-N` suffix when the name is taken.
const SUFFIX_ROOM: usize = 4;

/// A rendered template as a valid channel name: lower case, `a-z 0-9 - _` only, no doubled or edge dashes, at most
/// 76 characters (room for a `-N` suffix). `None` when nothing is left.
pub fn channel_name(rendered: &str) -> Option<String> {
    let mut out = String::new();
    for c in rendered.trim().trim_start_matches('#').chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let cut: String = out.chars().take(CHANNEL_MAX - SUFFIX_ROOM).collect();
    let cut = cut.trim_matches('-').to_string();
    (!cut.is_empty()).then_some(cut)
}

/// The name to try after `name` was taken for the `attempt`th time (1, 2, …): `name-2`, `name-3`, …
pub fn next_name(name: &str, attempt: u32) -> String {
    let base: String = name.chars().take(CHANNEL_MAX - SUFFIX_ROOM).collect();
    format!("{base}-{}", attempt + 1)
}

/// A line people mark as a decision or an action item: `Decision: …`, `TODO: …`, `AI: …` (any case).
pub fn marked(text: &str) -> Option<(&'static str, String)> {
    let t = text.trim();
    for (prefix, kind) in [
        ("decision:", "decision"),
        ("todo:", "action"),
        ("ai:", "action"),
    ] {
        // `get`, not slicing: people's messages are not ASCII, and a prefix's length may fall inside a character.
        if let Some(rest) = t
            .get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .and_then(|_| t.get(prefix.len()..))
        {
            return Some((kind, rest.trim().to_string()));
        }
    }
    None
}

/// How long something took, as people read it: `1h 05m`, `12m`, `40s`.
pub fn duration_text(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{sec}s")
    }
}

fn roles_text(r: &IncidentRecord) -> String {
    if r.roles.is_empty() {
        "none yet".into()
    } else {
        r.roles
            .iter()
            .map(|(role, u)| format!("{role}: <@{u}>"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn context_text(ctx: &Value) -> Option<String> {
    if ctx.is_null() {
        return None;
    }
    if let Some(e) = ctx["error"].as_str() {
        return Some(format!(
            "*Context:* the lookup failed ({})",
            escape_mrkdwn(e)
        ));
    }
    let s = |k: &str| ctx[k].as_str().map(escape_mrkdwn).unwrap_or_default();
    let mut parts = vec![];
    if !s("customer").is_empty() {
        parts.push(format!("customer *{}*", s("customer")));
    }
    if !s("tier").is_empty() {
        parts.push(format!("tier {}", s("tier")));
    }
    if let Some(am) = ctx["account_manager"].as_str() {
        parts.push(format!("account manager <@{am}>"));
    }
    Some(format!("*Context:* {}", parts.join(", ")))
}

fn origin_text(origin: &Value) -> Option<String> {
    let text = origin["text"].as_str().filter(|t| !t.is_empty())?;
    let quoted = truncate_mrkdwn(&escape_mrkdwn(text), 600);
    Some(match origin["permalink"].as_str() {
        Some(link) => format!("*From:* <{link}|the message>\n> {quoted}"),
        None => format!("*From:*\n> {quoted}"),
    })
}

/// The summary card pinned in the war room: title, severity, status, roles, the lookup's context, the originating
/// message, and the latest timeline lines.
pub fn card(r: &IncidentRecord, timeline: &[TimelineEntry]) -> Value {
    let title = escape_mrkdwn(&r.title);
    let head = format!(":rotating_light: *{title}* — SEV{} — *{}*", r.sev, r.status);
    let mut lines = vec![
        head.clone(),
        format!(
            "*Declared by* <@{}> · *Roles:* {}",
            r.declarer,
            roles_text(r)
        ),
    ];
    lines.extend(context_text(&r.context));
    lines.extend(origin_text(&r.origin));
    let recent: Vec<String> = timeline
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(|e| format!("• {} — {}", e.kind, show(&e.text)))
        .collect();
    if !recent.is_empty() {
        lines.push(format!("*Latest:*\n{}", recent.join("\n")));
    }
    let text = truncate_mrkdwn(&lines.join("\n"), 2900);
    json!({
        "text": format!("Incident: {} (SEV{}, {})", r.title, r.sev, r.status),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    })
}

/// The announcement in the incidents channel: what, how bad, where to join, where it stands.
pub fn announcement(r: &IncidentRecord) -> Value {
    let room = match &r.channel_id {
        Some(id) => format!("<#{id}>"),
        None => format!("#{}", r.channel_name),
    };
    let text = format!(
        ":rotating_light: Incident *{}* — SEV{} — *{}* — war room {room} — declared by <@{}>",
        escape_mrkdwn(&r.title),
        r.sev,
        r.status,
        r.declarer
    );
    json!({
        "text": format!("Incident: {} (SEV{}, {})", r.title, r.sev, r.status),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": truncate_mrkdwn(&text, 2900)}}],
    })
}

/// A message of the war room as the summary reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMessage {
    pub user: String,
    pub text: String,
    /// Marked with the incident type's note reaction.
    pub pinned: bool,
}

/// The summary posted when the incident is resolved: duration, people involved, decisions, action items and the
/// timeline. `messages` are the war room's messages (oldest first), read when it closed.
pub fn summary(
    r: &IncidentRecord,
    timeline: &[TimelineEntry],
    messages: &[RoomMessage],
    now_ms: i64,
) -> String {
    let ended = r.resolved_at_ms.unwrap_or(now_ms);
    let mut people: BTreeSet<String> = BTreeSet::new();
    people.insert(r.declarer.clone());
    people.extend(r.roles.values().cloned());
    people.extend(
        timeline
            .iter()
            .filter(|e| e.author.starts_with('U') || e.author.starts_with('W'))
            .map(|e| e.author.clone()),
    );
    people.extend(
        messages
            .iter()
            .map(|m| m.user.clone())
            .filter(|u| !u.is_empty() && u.starts_with('U')),
    );
    let (mut decisions, mut actions) = (Vec::new(), Vec::new());
    let mut take = |text: &str, pinned: bool| match marked(text) {
        Some(("decision", t)) => decisions.push(t),
        Some((_, t)) => actions.push(t),
        None if pinned => decisions.push(text.trim().to_string()),
        None => {}
    };
    let noted = |e: &TimelineEntry| e.kind == "note" || e.kind == "pinned";
    for e in timeline.iter().filter(|e| noted(e)) {
        take(&e.text, e.kind == "pinned");
    }
    for m in messages {
        // A message marked by reaction is on the timeline already.
        if !timeline.iter().any(|e| noted(e) && e.text == m.text.trim()) {
            take(&m.text, m.pinned);
        }
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "• none recorded".to_string()
        } else {
            items
                .iter()
                .map(|i| format!("• {}", show(i)))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let lines: Vec<String> = timeline
        .iter()
        .map(|e| {
            let at = chrono::DateTime::from_timestamp_millis(e.at_ms)
                .map(|t| t.format("%H:%M:%S").to_string())
                .unwrap_or_default();
            let who = if e.author == "sluice" {
                "Sluice".to_string()
            } else {
                format!("<@{}>", e.author)
            };
            format!("• {at} {who} {}: {}", e.kind, show(&e.text))
        })
        .collect();
    let text = format!(
        ":white_check_mark: *Resolved: {}* — SEV{}\n*Duration:* {}\n*People involved:* {}\n*Decisions:*\n{}\n*Action items:*\n{}\n*Timeline:*\n{}",
        escape_mrkdwn(&r.title),
        r.sev,
        duration_text(ended - r.created_at_ms),
        people.iter().map(|u| format!("<@{u}>")).collect::<Vec<_>>().join(", "),
        list(&decisions),
        list(&actions),
        lines.join("\n"),
    );
    truncate_mrkdwn(&text, 3900)
}

/// A message of a digested channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMessage {
    pub text: String,
    /// Marked with a pushpin.
    pub pinned: bool,
    pub replies: u32,
}

/// The extractive digest of one channel's period: its decisions (`Decision:` lines and pinned messages), its
/// action items (`TODO:`, `AI:`) and its three busiest threads. `None` when there is nothing to tell.
pub fn digest(channel: &str, messages: &[DigestMessage]) -> Option<String> {
    let (mut decisions, mut actions) = (Vec::new(), Vec::new());
    for m in messages {
        for l in m.text.lines() {
            match marked(l) {
                Some(("decision", t)) => decisions.push(t),
                Some((_, t)) => actions.push(t),
                None => {}
            }
        }
        if m.pinned && marked(&m.text).is_none() {
            decisions.push(m.text.trim().to_string());
        }
    }
    let mut busy: Vec<&DigestMessage> = messages.iter().filter(|m| m.replies > 0).collect();
    busy.sort_by_key(|m| std::cmp::Reverse(m.replies));
    if decisions.is_empty() && actions.is_empty() && busy.is_empty() {
        return None;
    }
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("• {}", show(i)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = vec![format!("*Digest of #{}*", escape_mrkdwn(channel))];
    if !decisions.is_empty() {
        out.push(format!("*Decisions:*\n{}", list(&decisions)));
    }
    if !actions.is_empty() {
        out.push(format!("*Action items:*\n{}", list(&actions)));
    }
    if !busy.is_empty() {
        let threads: Vec<String> = busy
            .iter()
            .take(3)
            .map(|m| {
                let first: String = m
                    .text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(80)
                    .collect();
                format!("• {} ({} replies)", show(&first), m.replies)
            })
            .collect();
        out.push(format!("*Busiest threads:*\n{}", threads.join("\n")));
    }
    Some(out.join("\n"))
}

#[cfg(test)]
mod tests;
