//! Run / Cancel before a command's action: [`ask`] answers the slash command ephemerally with what will run and
//! with which arguments, a Run button (carrying the action's own `confirm` dialog, when it has one) and a Cancel
//! button. The buttons carry the pending command (its id, name, text, who typed it and when), so any replica can
//! act on a click; the decision is taken once through the store's once-keys (`command.confirm:<id>`): a double click,
//! Slack's retry, a Run on one replica and a Cancel on another — the first wins, the others are told it is decided.
//! Run checks everything again (who may run it, the arguments, the action's own permissions), starts the action with
//! the confirmation's id as its run id (the call's `Idempotency-Key`), and replaces the message with "running…"; the
//! result follows where the action's results go. Cancel replaces it and nothing runs. Only the person who typed the
//! command may click, and a confirmation is good for [`GOOD_FOR_MS`]. Every click is audited as `command.<name>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_domain::command::ArgValue;
use sluice_inbound::{ActionPayload, Ctx, HandlerError, HandlerResult, Registry, Reply};
use sluice_slack_wire::blocks::escape_mrkdwn;

use super::gate::{admit, said, start, Caller, Commands};
use crate::config::actions::Action;
use crate::config::commands::CommandConfig;
use crate::outbox::audit;
use crate::state::{now_ms, AppState};

/// The Run button's `action_id`.
pub const RUN: &str = "sluice_cmd_run";
/// The Cancel button's `action_id`.
pub const CANCEL: &str = "sluice_cmd_cancel";
/// How long a confirmation may be clicked.
pub const GOOD_FOR_MS: i64 = 15 * 60_000;
/// How long a decision is remembered (well past [`GOOD_FOR_MS`], so a late click is still refused).
const REMEMBERED_MS: i64 = 24 * 3_600_000;
/// Slack's longest button `value`.
const VALUE_MAX: usize = 2000;

/// A command waiting for Run or Cancel, carried by both buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    /// The `[[command]]`'s name.
    pub cmd: String,
    /// Its arguments as typed.
    pub text: String,
    /// Who typed it.
    pub user: String,
    /// When (ms since the epoch).
    pub at: i64,
}

/// The confirmation for `cmd` (its action `def`, its parsed `args`, typed by `caller` as `rest`).
pub fn ask(
    cmd: &CommandConfig,
    def: &Action,
    args: &BTreeMap<String, ArgValue>,
    caller: &Caller,
    rest: &str,
) -> (Reply, String) {
    let pending = Pending {
        id: uuid::Uuid::now_v7().simple().to_string(),
        cmd: cmd.spec.name.clone(),
        text: rest.trim().to_string(),
        user: caller.user_id.clone(),
        at: now_ms(),
    };
    let value = serde_json::to_string(&pending).unwrap_or_default();
    if value.len() > VALUE_MAX {
        return (
            Reply::ephemeral(format!(
                "`{}` is too long to confirm: shorten its arguments.",
                said(&caller.slash, &cmd.spec.name, rest)
            )),
            "refused: too long to confirm".into(),
        );
    }
    let (text, blocks) = blocks(cmd, def, args, caller, rest, &value);
    (
        Reply::ephemeral(text).with_blocks(blocks),
        format!("confirmation asked: {}", pending.id),
    )
}

/// The confirmation message: what runs with which arguments, Run and Cancel.
fn blocks(
    cmd: &CommandConfig,
    def: &Action,
    args: &BTreeMap<String, ArgValue>,
    caller: &Caller,
    rest: &str,
    value: &str,
) -> (String, Value) {
    let typed = said(&caller.slash, &cmd.spec.name, rest);
    let text = format!("Run {} with `{typed}`?", def.label);
    let mut lines = vec![format!(
        "*Run {}?*  `{}`",
        escape_mrkdwn(&def.label),
        escape_mrkdwn(&typed)
    )];
    for (name, v) in args {
        let shown = match v {
            ArgValue::Text(t) => t.clone(),
            ArgValue::Int(n) | ArgValue::Duration(n) => n.to_string(),
            ArgValue::Ref { id, .. } => id.clone(),
        };
        lines.push(format!(
            "• {}: `{}`",
            escape_mrkdwn(name),
            escape_mrkdwn(&shown)
        ));
    }
    let mut run = json!({
        "type": "button", "action_id": RUN, "style": "primary", "value": value,
        "text": {"type": "plain_text", "text": "Run"},
    });
    if let Some(c) = &def.confirm {
        run["confirm"] = c.clone();
    }
    let cancel = json!({
        "type": "button", "action_id": CANCEL, "value": value,
        "text": {"type": "plain_text", "text": "Cancel"},
    });
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": sluice_slack_wire::blocks::truncate(&lines.join("\n"), 2900)}},
        {"type": "actions", "block_id": "sluice_cmd_confirm", "elements": [run, cancel]},
    ]);
    (text, blocks)
}

/// Adds the Run and Cancel handlers to the registry.
pub fn register(r: &mut Registry, state: Arc<AppState>, commands: Arc<Commands>) {
    for (id, run) in [(RUN, true), (CANCEL, false)] {
        let (s, c) = (state.clone(), commands.clone());
        r.action(id, move |ctx: Ctx<ActionPayload>| {
            let (s, c) = (s.clone(), c.clone());
            async move { clicked(&s, &c, ctx, run).await }
        });
    }
}

/// A click on Run (`run`) or Cancel.
async fn clicked(
    state: &AppState,
    commands: &Commands,
    ctx: Ctx<ActionPayload>,
    run: bool,
) -> HandlerResult<()> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the click came without a user"))?;
    let pending: Pending = ctx
        .payload
        .action
        .value
        .as_deref()
        .and_then(|v| serde_json::from_str(v).ok())
        .ok_or_else(|| HandlerError::new("this button carries no command to confirm"))?;
    let body = &ctx.payload.body;
    let caller = Caller {
        user_id: user.clone(),
        user_name: body
            .common
            .user
            .name
            .clone()
            .or_else(|| body.common.user.username.clone())
            .unwrap_or_default(),
        channel_id: body.channel_id().unwrap_or_default(),
        channel_name: body
            .channel
            .as_ref()
            .and_then(|c| c.name.clone())
            .unwrap_or_default(),
        slash: state.config.actions.command.clone(),
    };
    let typed = said(&caller.slash, &pending.cmd, &pending.text);
    let action = format!("command.{}", pending.cmd);
    let detail = json!({ "text": pending.text, "channel": caller.channel_id, "via": "confirmation",
                         "confirmation": pending.id, "clicked": if run { "run" } else { "cancel" } });
    macro_rules! tell {
        ($result:expr) => {
            audit(
                state,
                &user,
                &action,
                &pending.text,
                $result,
                detail.clone(),
            )
        };
    }
    if user != pending.user {
        tell!("refused: not the person who ran it").await;
        ctx.reply(Reply::ephemeral(format!(
            "Only <@{}>, who typed `{typed}`, can run or cancel it.",
            pending.user
        )))
        .await?;
        return Ok(());
    }
    if now_ms() - pending.at > GOOD_FOR_MS {
        tell!("refused: confirmation expired").await;
        ctx.reply(Reply::replace(format!(
            "This confirmation of `{typed}` expired; nothing ran. Type the command again."
        )))
        .await?;
        return Ok(());
    }
    let key = format!("command.confirm:{}", pending.id);
    let first = state
        .store
        .first_time(&key, now_ms(), REMEMBERED_MS)
        .await
        .map_err(|e| HandlerError::new(format!("could not record the decision: {e}")))?;
    if !first {
        tell!("refused: already decided").await;
        ctx.reply(Reply::ephemeral(format!(
            "`{typed}` was already run or cancelled."
        )))
        .await?;
        return Ok(());
    }
    if !run {
        tell!("cancelled").await;
        ctx.reply(Reply::replace(format!("Cancelled `{typed}`: nothing ran.")))
            .await?;
        return Ok(());
    }
    let Some(i) = state
        .config
        .chatops
        .commands
        .iter()
        .position(|c| c.spec.name == pending.cmd)
    else {
        tell!("refused: unknown command").await;
        ctx.reply(Reply::replace(format!(
            "`{typed}` is no longer configured; nothing ran."
        )))
        .await?;
        return Ok(());
    };
    let cmd = &state.config.chatops.commands[i];
    let name = cmd.action.as_deref().unwrap_or_default();
    let (def, args) = match admit(state, commands, i, name, &caller, &pending.text).await {
        Ok(ok) => ok,
        Err((reply, result)) => {
            tell!(&result).await;
            ctx.reply(Reply {
                replace_original: true,
                ..reply
            })
            .await?;
            return Ok(());
        }
    };
    let ran = start(
        state,
        cmd,
        def,
        &args,
        None,
        &caller,
        Some(format!("run_{}", pending.id)),
    )
    .await;
    tell!(&format!("confirmed: {}", ran.result)).await;
    // The confirmation (seen by this user alone) becomes the running line; the result follows where the action's
    // results go.
    ctx.reply(Reply::replace(ran.text)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_command_reads_back_from_its_button() {
        let p = Pending {
            id: "0190".into(),
            cmd: "deploy".into(),
            text: "checkout \"staging\"".into(),
            user: "U0001".into(),
            at: 1,
        };
        let v = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Pending>(&v).unwrap(), p);
    }
}
