//! ChatOps: the slash command (`[actions] command`, default `/sluice`) and `app_mention`.
//!
//! - [`slash_command`] reads the first word and answers: the built-ins (`help`, `status <service>`,
//!   `oncall [team]`, `silence <matchers> <duration> <comment>`, `ack <alert>`; `builtins.rs`; `remind …`,
//!   `remind.rs`) or a configured
//!   `[[command]]` (`configured.rs`: who may run it, its arguments parsed by `sluice_domain::command`, then its
//!   action, at once, after Run / Cancel (`confirm.rs`) or once approved; or its `[[form]]`, `crate::forms`).
//!   Answers are ephemeral unless a command says `reply = "channel"`. Every run and every refusal is
//!   audited (`command.<name>`).
//! - `schedule.rs`: `[[schedule]]`s, run by one leader on the clock of `clock.rs`.
//! - [`mention`]: a short hello in the thread, through the outbox.

mod builtins;
pub mod clock;
mod configured;
mod confirm;
pub mod gate;
mod remind;
pub mod schedule;

use serde_json::json;
use sluice_domain::outbox::outbox_item;
use sluice_inbound::models::{EventCallback, SlashCommand};
use sluice_inbound::{Ctx, HandlerError, HandlerResult, Reply, Writes};

use crate::config::ActionsConfig;
use crate::outbox::audit;
use crate::state::AppState;

pub use confirm::register as register_confirmations;
pub use gate::Commands;

/// Splits `deploy checkout staging` into the command's name and the rest as typed.
fn split_name(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim_start()),
        None => (text, ""),
    }
}

pub async fn slash_command(
    state: &AppState,
    commands: &Commands,
    ctx: Ctx<SlashCommand>,
) -> HandlerResult<Option<Reply>> {
    let cmd = &ctx.payload;
    let (name, rest) = split_name(&cmd.text);
    let user = cmd.user_id.as_str();
    let channel = (
        cmd.channel_id.as_str(),
        cmd.channel_name.as_deref().unwrap_or_default(),
    );
    let slash = cmd.command.as_str();
    let action = format!("command.{}", if name.is_empty() { "help" } else { name });
    let detail = json!({ "text": cmd.text, "channel": cmd.channel_id, "via": "slash command" });
    let (reply, result) = match name {
        "" | "help" => (
            Reply::ephemeral(help_text(state, commands, slash, user, channel).await),
            "ok".to_string(),
        ),
        "status" => builtins::status(state, slash, rest).await?,
        "oncall" => builtins::oncall(state, slash, rest),
        "incident" => crate::incidents::command(state, commands.alerts.slack(), cmd, rest).await?,
        "silence" => builtins::silence(state, commands, slash, user, channel.0, rest).await?,
        "remind" => remind::remind(commands, slash, rest, &ctx).await?,
        "ack" => match builtins::ack(state, commands, slash, rest, &ctx).await? {
            // Answered through the response_url by the alert action's path, which audits the decision itself.
            None => {
                audit(
                    state,
                    user,
                    &action,
                    rest,
                    "handled: the decision is audited as alert.ack",
                    detail,
                )
                .await;
                return Ok(None);
            }
            Some(answer) => answer,
        },
        other => match state
            .config
            .chatops
            .commands
            .iter()
            .position(|c| c.spec.name == other)
        {
            Some(i) => match configured::run(state, commands, i, &ctx, rest).await? {
                (Some(reply), result) => (reply, result),
                // A form opened: the modal is the answer.
                (None, result) => {
                    audit(state, user, &action, rest, &result, detail).await;
                    return Ok(None);
                }
            },
            None => (
                Reply::ephemeral(format!("I don't know `{other}`. Try `{slash} help`.")),
                "refused: unknown command".to_string(),
            ),
        },
    };
    audit(state, user, &action, rest, &result, detail).await;
    Ok(Some(reply))
}

/// `help`: the built-ins, and the configured commands this user may run in this channel, with their usages and
/// what alert cards offer with this configuration.
async fn help_text(
    state: &AppState,
    commands: &Commands,
    slash: &str,
    user: &str,
    channel: (&str, &str),
) -> String {
    let mut lines = vec![format!("*{slash}* — Sluice, the operations gateway")];
    lines.push(format!(
        "• `{slash} status &lt;service&gt;` — open alerts, silences and recent events of a service"
    ));
    lines.push(format!(
        "• `{slash} oncall [team]` — who is on call now, who is next and when"
    ));
    lines.push(format!(
        "• `{slash} silence &lt;matchers&gt; &lt;duration&gt; &lt;comment&gt;` — e.g. `{slash} silence service=checkout 2h deploying`"
    ));
    lines.push(format!(
        "• `{slash} ack &lt;alert&gt;` — acknowledge an alert by its dedup key or id"
    ));
    lines.push(format!(
        "• `{slash} remind #channel in 2h \"text\"` — a one-off reminder (`remind list`, `remind cancel &lt;id&gt;`)"
    ));
    if !state.config.incidents.types.is_empty() {
        lines.push(format!(
            "• `{slash} incident declare &lt;title&gt; [sev]` — open a war room; in it: `incident status|role|sev|note|timeline|resolve`"
        ));
    }
    for (i, c) in state.config.chatops.commands.iter().enumerate() {
        if commands.may_run(i, c, user, channel).await {
            let description = if c.spec.description.is_empty() {
                String::new()
            } else {
                format!(" — {}", c.spec.description)
            };
            lines.push(format!("• {}{description}", c.spec.usage_line(slash)));
        }
    }
    lines.push(format!("• `{slash} help` — this message"));
    lines.push(cards_text(&state.config.actions));
    lines.join("\n")
}

/// What alert cards offer with this configuration.
fn cards_text(cfg: &ActionsConfig) -> String {
    let escalate = if cfg.can_escalate() {
        "*Escalate* (calls in on-call), "
    } else {
        ""
    };
    let reaction = cfg
        .ack_reaction
        .as_deref()
        .map(|r| format!("; react with :{r}: on a card to acknowledge it"))
        .unwrap_or_default();
    format!(
        "Alert cards have *Acknowledge*, {escalate}*Silence 1 h* (mutes that alert for an hour) and *Resolve* \
         buttons{reaction}. Each is taken once per alert, and the card shows who did what."
    )
}

pub async fn mention(state: &AppState, ctx: Ctx<EventCallback>) -> HandlerResult<()> {
    let Some(event) = ctx.payload.event.as_ref() else {
        return Ok(());
    };
    let (Some(channel), Some(ts)) = (event.channel.clone(), event.ts.clone()) else {
        return Ok(());
    };
    let user = event.user.clone().unwrap_or_default();
    let reply = json!({
        "channel": channel,
        "thread_ts": event.thread_ts.clone().unwrap_or(ts),
        "text": format!("Hi <@{user}>: I route alerts and deploys here. Try `{} help`.", state.config.actions.command),
    });
    let item = outbox_item(
        &state.config.slack.team_id,
        &channel,
        "chat.postMessage",
        reply,
    );
    let writes = Writes {
        what: "mention".into(),
        detail: json!({ "actor": user, "event_id": ctx.payload.event_id }),
        items: vec![item],
        follow_up: None,
    };
    ctx.outbox.commit(writes).await.map_err(HandlerError::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_text_names_what_the_cards_offer_here() {
        let plain = cards_text(&ActionsConfig::default());
        assert!(plain.contains("*Acknowledge*, *Silence 1 h*"), "{plain}");
        assert!(plain.contains("react with :eyes:"), "{plain}");
        let cfg = ActionsConfig {
            escalate_group: Some("S1".into()),
            ack_reaction: None,
            ..ActionsConfig::default()
        };
        let t = cards_text(&cfg);
        assert!(t.contains("*Escalate*"), "{t}");
        assert!(!t.contains("react with"), "{t}");
    }

    #[test]
    fn the_name_is_the_first_word() {
        assert_eq!(
            split_name("  deploy  checkout staging "),
            ("deploy", "checkout staging")
        );
        assert_eq!(split_name("help"), ("help", ""));
        assert_eq!(split_name(""), ("", ""));
    }
}
