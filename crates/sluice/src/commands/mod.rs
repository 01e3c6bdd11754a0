//! ChatOps commands and mentions: `/sluice` (name configurable: `help`, `status`) and `app_mention` (a short hello
//! in the thread, through the outbox).

use serde_json::json;
use sluice_domain::outbox::outbox_item;
use sluice_inbound::models::{EventCallback, SlashCommand};
use sluice_inbound::{Ctx, HandlerError, HandlerResult, Reply, Writes};

use crate::config::ActionsConfig;
use crate::state::{now_ms, AppState};

pub async fn slash_command(
    state: &AppState,
    ctx: Ctx<SlashCommand>,
) -> HandlerResult<Option<Reply>> {
    let cmd = &ctx.payload;
    let word = cmd.text.split_whitespace().next().unwrap_or("help");
    let reply = match word {
        "status" => {
            let stats = state
                .store
                .outbox_stats(now_ms())
                .await
                .map_err(|e| HandlerError::new(e.to_string()))?;
            let silences = state
                .store
                .silences(false, now_ms())
                .await
                .map_err(|e| HandlerError::new(e.to_string()))?;
            format!(
                "*Sluice status*\n• outbox: {} pending{}\n• dead letters: {}\n• silences: {}",
                stats.pending,
                stats
                    .oldest_pending_age_ms
                    .map(|ms| format!(" (oldest {}s)", ms / 1000))
                    .unwrap_or_default(),
                stats.dead,
                silences.len()
            )
        }
        "help" | "" => help_text(&cmd.command, &state.config.actions),
        other => format!("I don't know `{other}`. Try `{} help`.", cmd.command),
    };
    Ok(Some(Reply::ephemeral(reply)))
}

/// `/sluice help`: the commands, and what alert cards offer with this configuration.
fn help_text(command: &str, cfg: &ActionsConfig) -> String {
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
        "*{command}* — Sluice, the operations gateway\n\
         • `{command} status` — outbox, dead letters and silences\n\
         • `{command} help` — this message\n\
         Alert cards have *Acknowledge*, {escalate}*Silence 1 h* (mutes that alert for an hour) and *Resolve* \
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
        "text": format!("Hi <@{user}>: I route alerts and deploys here. Try `/sluice help`."),
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
    fn help_names_what_the_cards_offer_here() {
        let plain = help_text("/sluice", &ActionsConfig::default());
        assert!(plain.contains("*Acknowledge*, *Silence 1 h*"), "{plain}");
        assert!(plain.contains("react with :eyes:"), "{plain}");
        let cfg = ActionsConfig {
            escalate_group: Some("S1".into()),
            ack_reaction: None,
            ..ActionsConfig::default()
        };
        let t = help_text("/ops", &cfg);
        assert!(
            t.contains("`/ops status`") && t.contains("*Escalate*"),
            "{t}"
        );
        assert!(!t.contains("react with"), "{t}");
    }
}
