//! `remind`: one-off reminders through Slack's own scheduled messages. `remind #chan in 2h "…"` enqueues a
//! `chat.scheduleMessage` (through the outbox, like every write); `remind list` reads `chat.scheduledMessages.list`
//! (the reminders, with their ids and times); `remind cancel <id>` enqueues `chat.deleteScheduledMessage` for a
//! reminder that list shows. Needs `[actions]` permission, like `silence`; audited as `command.remind`.

use serde_json::{json, Value};
use sluice_domain::remind::{parse, Remind};
use sluice_inbound::models::SlashCommand;
use sluice_inbound::{Ctx, HandlerResult, Reply};
use sluice_slack_wire::blocks::escape_mrkdwn;

use super::gate::Commands;
use crate::state::now_ms;

/// Every reminder's text starts with this, so `list` and `cancel` see reminders only.
const MARK: &str = "⏰ Reminder from ";

/// A channel as a message shows it: a link for an id, `#name` for a name as typed.
fn shown(channel: &str) -> String {
    let is_id = channel.len() > 1
        && channel.starts_with(['C', 'G'])
        && channel
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if is_id {
        format!("<#{channel}>")
    } else {
        format!("#{channel}")
    }
}

fn answer(text: String, result: &str) -> (Reply, String) {
    (Reply::ephemeral(text), result.to_string())
}

/// The reminders Slack has pending: (id, channel id, post_at, text).
async fn pending(commands: &Commands) -> Result<Vec<(String, String, i64, String)>, String> {
    let v: Value = commands
        .alerts
        .slack()
        .call("chat.scheduledMessages.list", &json!({ "limit": 100 }))
        .await
        .map_err(|e| e.to_string())?;
    Ok(v["scheduled_messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|m| m["text"].as_str().is_some_and(|t| t.starts_with(MARK)))
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_string(),
                m["channel_id"].as_str().unwrap_or_default().to_string(),
                m["post_at"].as_i64().unwrap_or_default(),
                m["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

pub async fn remind(
    commands: &Commands,
    slash: &str,
    rest: &str,
    ctx: &Ctx<SlashCommand>,
) -> HandlerResult<(Reply, String)> {
    let p = &ctx.payload;
    if !commands.alerts.may_act(&p.user_id, &p.channel_id).await {
        return Ok(answer(
            "You are not allowed to set reminders here. Ask an admin to add you to `[actions]` in sluice.toml.".into(),
            "refused: not allowed",
        ));
    }
    let what = match parse(slash, rest) {
        Ok(w) => w,
        Err(e) => return Ok(answer(e, "refused: bad arguments")),
    };
    Ok(match what {
        Remind::Set {
            channel,
            after_ms,
            text,
        } => {
            let post_at = (now_ms() + after_ms) / 1000;
            let args = json!({
                "channel": channel,
                "post_at": post_at,
                "text": format!("{MARK}<@{}>: {}", p.user_id, escape_mrkdwn(&text)),
            });
            match ctx.outbox.enqueue("chat.scheduleMessage", args).await {
                Ok(()) => answer(
                    format!(
                        "⏰ I'll post it in {} at <!date^{post_at}^{{date_short_pretty}} {{time}}|{post_at}>. \
                         `{slash} remind list` shows it with its id.",
                        shown(&channel)
                    ),
                    &format!("ok: scheduled for {post_at} in {channel}"),
                ),
                Err(e) => answer(
                    format!("The reminder could not be scheduled: {e}"),
                    &format!("error: {e}"),
                ),
            }
        }
        Remind::List => match pending(commands).await {
            Ok(list) if list.is_empty() => answer("No reminders are pending.".into(), "ok"),
            Ok(list) => {
                let mut lines = vec![format!("*Reminders* ({})", list.len())];
                for (id, channel, post_at, text) in list {
                    lines.push(format!(
                        "• `{id}` in <#{channel}> at <!date^{post_at}^{{date_short_pretty}} {{time}}|{post_at}>: {}",
                        text.trim_start_matches(MARK)
                    ));
                }
                lines.push(format!(
                    "Cancel one with `{slash} remind cancel &lt;id&gt;`."
                ));
                answer(lines.join("\n"), "ok")
            }
            Err(e) => answer(
                format!("Slack did not list the reminders: {e}"),
                &format!("error: {e}"),
            ),
        },
        Remind::Cancel(id) => match pending(commands).await {
            Ok(list) => match list.into_iter().find(|(i, ..)| *i == id) {
                Some((id, channel, ..)) => {
                    let args = json!({ "channel": channel, "scheduled_message_id": id });
                    match ctx
                        .outbox
                        .enqueue("chat.deleteScheduledMessage", args)
                        .await
                    {
                        Ok(()) => answer(
                            format!("Cancelled reminder `{id}` in <#{channel}>."),
                            &format!("ok: cancelled {id}"),
                        ),
                        Err(e) => answer(
                            format!("The reminder could not be cancelled: {e}"),
                            &format!("error: {e}"),
                        ),
                    }
                }
                None => answer(
                    format!("No pending reminder `{id}`: `{slash} remind list` shows them."),
                    "refused: unknown reminder",
                ),
            },
            Err(e) => answer(
                format!("Slack did not list the reminders: {e}"),
                &format!("error: {e}"),
            ),
        },
    })
}
