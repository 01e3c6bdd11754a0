//! `/ops incident …`: declare, and — in the war room, where the incident is found from the channel — status, role,
//! sev, note, timeline and resolve. Each answer is `(reply, what the audit log records)`; every step and every
//! refusal is also audited as `incident.<verb>`.

use serde_json::json;
use sluice_domain::command::{parse_value, words, ArgType, ArgValue};
use sluice_domain::incident::{self, decide, Effect, Input, Status, SEVERITIES};
use sluice_domain::outbox::outbox_item;
use sluice_inbound::models::SlashCommand;
use sluice_inbound::{HandlerError, HandlerResult, Reply};
use sluice_slack::api::Client;
use sluice_slack_wire::blocks::escape_mrkdwn;
use sluice_store::{IncidentCommit, IncidentItem, IncidentRecord};

use super::{
    applied, commit_with, declare, may_declare, may_resolve, plain, refresh_items, room_messages,
    store_error, with_lines, Origin,
};
use crate::commands::clock::now_ms;
use crate::outbox::audit;
use crate::state::AppState;

type Answer = (Reply, String);

fn usage(slash: &str) -> String {
    format!(
        "*Incidents*\n• `{slash} incident declare <title> [sev]` — open a war room\n\
         In the war room:\n• `{slash} incident status <investigating|identified|mitigated|resolved> \"…\"`\n\
         • `{slash} incident role <role> @person`\n• `{slash} incident sev <1-4>`\n\
         • `{slash} incident note <text>`\n• `{slash} incident timeline`\n• `{slash} incident resolve [text]`"
    )
}

fn refused(text: impl Into<String>, why: &str) -> Answer {
    (Reply::ephemeral(text.into()), format!("refused: {why}"))
}

/// `declare Checkout errors 2` → ("Checkout errors", Some(2)); `sev2` and `SEV2` count too.
fn title_and_sev(rest: &str) -> (String, Option<u8>) {
    let rest = rest.trim();
    if let Some((head, last)) = rest.rsplit_once(char::is_whitespace) {
        let n = last.to_ascii_lowercase();
        // `sev7` is a wrong severity (refused); a bare `7` is part of the title ("Disk 7").
        let (prefixed, n) = match n.strip_prefix("sev") {
            Some(rest) => (true, rest.to_string()),
            None => (false, n.clone()),
        };
        if let Ok(sev) = n.parse::<u8>() {
            if prefixed || SEVERITIES.contains(&sev) {
                return (head.trim().trim_matches('"').to_string(), Some(sev));
            }
        }
    }
    (rest.trim_matches('"').to_string(), None)
}

/// Everything after the first word, unquoted when it is one quoted string.
fn text_after(rest: &str) -> String {
    let t = rest.trim();
    match words(t) {
        Ok(w) if w.len() == 1 => w[0].1.clone(),
        _ => t.to_string(),
    }
}

pub async fn command(
    state: &AppState,
    slack: &Client,
    cmd: &SlashCommand,
    rest: &str,
) -> HandlerResult<Answer> {
    let slash = cmd.command.as_str();
    let user = cmd.user_id.as_str();
    let channel = cmd.channel_id.as_str();
    if state.config.incidents.is_empty() {
        return Ok(refused(
            "No incident types are configured here: add an `[[incident_type]]` to sluice.toml.",
            "no incident types",
        ));
    }
    let rest = rest.trim();
    let (verb, args) = match rest.split_once(char::is_whitespace) {
        Some((v, a)) => (v, a.trim()),
        None => (rest, ""),
    };
    if verb == "declare" {
        return declare_command(state, slash, slack, cmd, args).await;
    }
    if matches!(verb, "" | "help") {
        return Ok((Reply::ephemeral(usage(slash)), "ok".into()));
    }
    let Some(r) = state
        .store
        .incident_in_channel(channel)
        .await
        .map_err(store_error)?
    else {
        return Ok(refused(
            format!(
                "This channel is no incident's war room. Run `{slash} incident {verb}` in the war room."
            ),
            "not a war room",
        ));
    };
    let input = match verb {
        "timeline" => {
            let timeline = state
                .store
                .incident_timeline(&r.id)
                .await
                .map_err(store_error)?;
            let mut lines = vec![format!("*Timeline of {}*", escape_mrkdwn(&r.title))];
            for e in &timeline {
                let at = chrono::DateTime::from_timestamp_millis(e.at_ms)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                let who = if e.author == "sluice" {
                    "Sluice".to_string()
                } else {
                    format!("<@{}>", e.author)
                };
                lines.push(format!(
                    "{}. {at} {who} {}: {}",
                    e.seq,
                    e.kind,
                    incident::show(&e.text)
                ));
            }
            return Ok((Reply::ephemeral(lines.join("\n")), "ok".into()));
        }
        "note" => Input::Note {
            text: args.to_string(),
            pinned: false,
        },
        "status" => {
            let (st, text) = match args.split_once(char::is_whitespace) {
                Some((s, t)) => (s, text_after(t)),
                None => (args, String::new()),
            };
            match Status::parse(&st.to_ascii_lowercase()) {
                Some(to) => Input::Status { to, text },
                None => {
                    return Ok(refused(
                        format!("Usage: `{slash} incident status &lt;investigating|identified|mitigated|resolved&gt; \"…\"`"),
                        "bad status",
                    ))
                }
            }
        }
        "sev" | "severity" => {
            let n = args.trim().to_ascii_lowercase();
            match n.strip_prefix("sev").unwrap_or(&n).parse::<u8>() {
                Ok(sev) if SEVERITIES.contains(&sev) => Input::Severity { sev },
                _ => {
                    return Ok(refused(
                        format!("Usage: `{slash} incident sev <1-4>` (1 is the worst)"),
                        "bad severity",
                    ))
                }
            }
        }
        "role" => {
            let w = words(args).unwrap_or_default();
            let t = state.config.incidents.get(&r.kind);
            let roles = t.map(|t| t.roles.clone()).unwrap_or_default();
            let parsed = match w.as_slice() {
                [(_, role), (_, who)] => {
                    parse_value(&ArgType::User, who).ok().and_then(|v| match v {
                        ArgValue::Ref { id, .. } => Some((role.clone(), id)),
                        _ => None,
                    })
                }
                _ => None,
            };
            match parsed {
                Some((role, id)) if roles.contains(&role) => Input::Role { role, user: id },
                Some((role, _)) => {
                    return Ok(refused(
                        format!(
                            "There is no role {role:?} here; roles: {}.",
                            roles.join(", ")
                        ),
                        "unknown role",
                    ))
                }
                None => {
                    return Ok(refused(
                        format!(
                            "Usage: `{slash} incident role <{}> @person`",
                            roles.join("|")
                        ),
                        "bad role",
                    ))
                }
            }
        }
        "resolve" => Input::Resolve {
            text: text_after(args),
        },
        other => {
            return Ok(refused(
                format!("I don't know `incident {other}`.\n{}", usage(slash)),
                "unknown incident command",
            ))
        }
    };
    apply(state, slack, &r, user, input, "command").await
}

async fn declare_command(
    state: &AppState,
    slash: &str,
    slack: &Client,
    cmd: &SlashCommand,
    args: &str,
) -> HandlerResult<Answer> {
    let Some(t) = state.config.incidents.default_type() else {
        return Ok(refused(
            "No incident types are configured.",
            "no incident types",
        ));
    };
    let (title, sev) = title_and_sev(args);
    if title.is_empty() {
        return Ok(refused(
            format!("Usage: `{slash} incident declare &lt;title&gt; [sev]`, e.g. `{slash} incident declare Checkout errors 2`"),
            "no title",
        ));
    }
    let sev = sev.unwrap_or(t.default_sev);
    if !SEVERITIES.contains(&sev) {
        return Ok(refused(
            format!("Severity {sev} is not between 1 (worst) and 4."),
            "bad severity",
        ));
    }
    let user = cmd.user_id.as_str();
    if !may_declare(slack, t, user, &cmd.channel_id).await {
        audit(
            state,
            user,
            "incident.declare",
            &title,
            "refused: not permitted to declare",
            json!({"type": t.name, "via": "command"}),
        )
        .await;
        return Ok(refused(
            format!("You may not declare {} incidents.", t.name),
            "not permitted to declare",
        ));
    }
    let origin = Origin {
        via: "command",
        channel: cmd.channel_id.clone(),
        ts: None,
        text: None,
        permalink: None,
    };
    // The same title twice while the first is open is the same incident (a double submit, a retry).
    let key = format!("title:{}", incident::slug(&title));
    let declared = declare(state, t, &key, &title, sev, user, &origin)
        .await
        .map_err(HandlerError::new)?;
    let id = declared.incident.id.clone();
    let result = if declared.created {
        format!("ok: {id}")
    } else {
        format!("already declared: {id}")
    };
    Ok((Reply::ephemeral(super::declared_text(&declared)), result))
}

fn verb_of(input: &Input) -> &'static str {
    match input {
        Input::Status {
            to: Status::Resolved,
            ..
        }
        | Input::Resolve { .. } => "resolve",
        Input::Status { .. } => "status",
        Input::Role { .. } => "role",
        Input::Severity { .. } => "severity",
        Input::Note { .. } => "note",
        Input::Remind => "reminder",
    }
}

/// Carries out `input` by `user` on incident `r`: permission, `decide`, commit (state, timeline, card and
/// announcement updates, messages, the summary) on the version read, audit.
pub async fn apply(
    state: &AppState,
    slack: &Client,
    r: &IncidentRecord,
    user: &str,
    input: Input,
    via: &str,
) -> HandlerResult<Answer> {
    let verb = verb_of(&input);
    let action = format!("incident.{verb}");
    let Some(t) = state.config.incidents.get(&r.kind).cloned() else {
        return Ok(refused(
            "This incident's type is no longer configured.",
            "unknown type",
        ));
    };
    let room = r.channel_id.clone().unwrap_or_default();
    let guarded = matches!(verb, "resolve" | "role" | "severity");
    if guarded && !may_resolve(slack, &t, user, &room).await {
        let why = format!("not permitted to {verb}");
        audit(
            state,
            user,
            &action,
            &r.id,
            &format!("refused: {why}"),
            json!({"via": via}),
        )
        .await;
        let what = match verb {
            "role" => "give roles in",
            "severity" => "change the severity of",
            other => other,
        };
        return Ok(refused(
            format!("You may not {what} {} incidents.", t.name),
            &why,
        ));
    }
    // The war room's messages are read before the commit, for a summary.
    let resolving = verb == "resolve";
    let messages = if resolving && !room.is_empty() {
        room_messages(slack, &room, &t.note_reaction).await
    } else {
        vec![]
    };
    let timeline = state
        .store
        .incident_timeline(&r.id)
        .await
        .map_err(store_error)?;
    let team = state.config.slack.team_id.clone();
    let now = now_ms();
    let mut refusal: Option<String> = None;
    let committed = commit_with(&*state.store, &r.id, |r| {
        let (next, effects) = decide(&incident::State::of(r), &input, user, &t.reminders, now);
        if let Some(Effect::Refused(why)) = effects.first() {
            refusal = Some(why.clone());
            return None;
        }
        let mut c = IncidentCommit::on(r);
        c.status = next.status.as_str().to_string();
        c.sev = next.sev;
        c.roles = next.roles.clone();
        c.remind_at_ms = next.remind_at_ms;
        if next.status == Status::Resolved {
            c.resolved_at_ms = Some(now);
            c.remind_at_ms = t.archive_after_ms.map(|a| now + a);
        }
        for e in &effects {
            if let Effect::Timeline(l) = e {
                c.timeline.push(l.clone());
            }
        }
        let after = applied(r, &c);
        let lines = with_lines(&timeline, &c);
        for e in &effects {
            match e {
                Effect::Refresh => c.items.extend(refresh_items(state, &after, &lines)),
                Effect::Say(text) if !room.is_empty() => c.items.push(plain(outbox_item(
                    &team,
                    &room,
                    "chat.postMessage",
                    json!({"channel": room, "text": text}),
                ))),
                Effect::Summarize => {
                    let text = incident::summary(&after, &lines, &messages, now);
                    if !room.is_empty() {
                        c.items.push(plain(outbox_item(
                            &team,
                            &room,
                            "chat.postMessage",
                            json!({"channel": room, "text": text}),
                        )));
                    }
                    if let Some(ch) = &t.announce_channel {
                        c.items.push(IncidentItem {
                            item: outbox_item(
                                &team,
                                ch,
                                "chat.postMessage",
                                json!({"channel": ch, "text": text}),
                            ),
                            on: Some(sluice_store::IncidentPost::Announcement),
                            is: None,
                        });
                    }
                }
                _ => {}
            }
        }
        Some(c)
    })
    .await
    .map_err(HandlerError::new)?;
    if let Some(why) = refusal {
        audit(
            state,
            user,
            &action,
            &r.id,
            &format!("refused: {why}"),
            json!({"via": via}),
        )
        .await;
        return Ok(refused(format!("Not changed: {why}."), &why));
    }
    if committed.is_none() {
        return Ok(refused("The incident is gone.", "unknown incident"));
    }
    state.wake.notify_one();
    audit(
        state,
        user,
        &action,
        &r.id,
        "ok",
        json!({"via": via, "input": format!("{input:?}")}),
    )
    .await;
    let said = match verb {
        "resolve" => {
            "Resolved: the summary is posted here and in the announcement channel.".to_string()
        }
        "note" => "Noted on the timeline.".to_string(),
        other => format!("Updated ({other})."),
    };
    Ok((Reply::ephemeral(said), "ok".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_number_is_the_severity() {
        assert_eq!(
            title_and_sev("Checkout errors 2"),
            ("Checkout errors".into(), Some(2))
        );
        assert_eq!(
            title_and_sev("Checkout errors SEV1"),
            ("Checkout errors".into(), Some(1))
        );
        assert_eq!(
            title_and_sev("Checkout errors"),
            ("Checkout errors".into(), None)
        );
        assert_eq!(
            title_and_sev("\"Disk full\" 3"),
            ("Disk full".into(), Some(3))
        );
        assert_eq!(title_and_sev(""), (String::new(), None));
        assert_eq!(title_and_sev("Disk 7"), ("Disk 7".into(), None));
        assert_eq!(title_and_sev("Disk sev7"), ("Disk".into(), Some(7)));
    }
}
