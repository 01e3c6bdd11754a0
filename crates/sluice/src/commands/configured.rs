//! A configured `[[command]]`: who may run it here, its arguments (parsed by `sluice_domain::command`, errors with
//! the usage), then its `[[action]]` through [`run_action`].

use std::collections::BTreeMap;

use serde_json::json;
use sluice_domain::command::ArgValue;
use sluice_inbound::models::SlashCommand;
use sluice_inbound::{Ctx, HandlerResult, Reply};

use super::Commands;
use crate::config::commands::{CommandConfig, ReplyTo};
use crate::state::AppState;

/// Runs the `i`th `[[command]]` with `rest` as its arguments. Returns the reply and what the audit log records.
pub async fn run(
    state: &AppState,
    commands: &Commands,
    i: usize,
    ctx: &Ctx<SlashCommand>,
    rest: &str,
) -> HandlerResult<(Reply, String)> {
    let cmd = &state.config.chatops.commands[i];
    let p = &ctx.payload;
    let slash = p.command.as_str();
    let channel = (
        p.channel_id.as_str(),
        p.channel_name.as_deref().unwrap_or_default(),
    );
    if !commands.may_run(i, cmd, &p.user_id, channel).await {
        return Ok((
            Reply::ephemeral(format!(
                "You are not allowed to run `{slash} {}` here. Ask an admin to add you to its `[[command]]` in sluice.toml.",
                cmd.spec.name
            )),
            "refused: not allowed".into(),
        ));
    }
    let args = match cmd.spec.parse(slash, rest) {
        Ok(args) => args,
        Err(usage) => return Ok((Reply::ephemeral(usage), "refused: bad arguments".into())),
    };
    let Some(action) = cmd.action.as_deref() else {
        return Ok((
            Reply::ephemeral(format!("`{slash} {}` has nothing to run.", cmd.spec.name)),
            "refused: no action".into(),
        ));
    };
    let ran = run_action(state, cmd, action, &args, ctx).await?;
    let reply = match (cmd.reply, ran.ephemeral) {
        (ReplyTo::Channel, false) => Reply::in_channel(ran.text),
        _ => Reply::ephemeral(ran.text),
    };
    Ok((reply, ran.result))
}

/// What running a command's action came to.
pub struct Ran {
    /// What the user sees.
    pub text: String,
    /// Shown to the user alone whatever the command's `reply` says (a refusal, a failure).
    pub ephemeral: bool,
    /// What the audit log records: `ok`, `refused: …`, `error: …`.
    pub result: String,
}

/// Runs the `[[action]]` named `action` for `cmd`, with the parsed `args`, on behalf of the user of `ctx`.
//
// MERGE: the `[[action]]` entry point is the actions branch's (`run_action(...)`, config/actions.rs). Replace this
// body with a call to it (the action's name, `args` as the templates' `args`, the user, the channel, `ctx` for the
// response_url and outbox) and check `[[command]] action` names against the configured actions in
// config/commands.rs. Until then a command's action cannot run, and says so.
pub async fn run_action(
    _state: &AppState,
    cmd: &CommandConfig,
    action: &str,
    args: &BTreeMap<String, ArgValue>,
    _ctx: &Ctx<SlashCommand>,
) -> HandlerResult<Ran> {
    tracing::info!(command = %cmd.spec.name, %action, args = %json!(args), "command action not available in this build");
    Ok(Ran {
        text: format!(
            "`{}`: this command's action is not available in this build.",
            cmd.spec.name
        ),
        ephemeral: true,
        result: "refused: action not available in this build".into(),
    })
}
