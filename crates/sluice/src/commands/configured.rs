//! A configured `[[command]]`: who may run it here, its arguments (parsed by `sluice_domain::command`, errors with
//! the usage), then its `[[action]]` through [`run_action`].

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sluice_domain::action::context;
use sluice_domain::command::ArgValue;
use sluice_inbound::models::SlashCommand;
use sluice_inbound::{Ctx, HandlerResult, Reply};

use super::Commands;
use crate::actions::{self, Actor, ReplyTo as ActionReplyTo, Started};
use crate::alerts::Permissions;
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
    let ran = run_action(state, commands, cmd, action, &args, ctx).await?;
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

/// Runs the `[[action]]` named `action` for `cmd`, with the parsed `args` (the templates' `args.*`), on behalf of
/// the user of `ctx`, through **the** entry point for running actions (`crate::actions::run_action`): the same
/// signing, allow-list, outbox and audit as a card's button. The action's own `users` / `groups` /
/// `channel_members` apply on top of the command's; with neither listing anyone, `[actions]`' own rules do. The
/// result is posted in the command's channel (or ephemerally, as the action says) when the call ends.
pub async fn run_action(
    state: &AppState,
    commands: &Commands,
    cmd: &CommandConfig,
    action: &str,
    args: &BTreeMap<String, ArgValue>,
    ctx: &Ctx<SlashCommand>,
) -> HandlerResult<Ran> {
    let p = &ctx.payload;
    let refused = |text: String, result: &str| Ran {
        text,
        ephemeral: true,
        result: result.into(),
    };
    let Some(def) = state.config.action_defs.get(action) else {
        return Ok(refused(
            format!(
                "`{}`: its action {action:?} is no longer configured.",
                cmd.spec.name
            ),
            "refused: action not configured",
        ));
    };
    let action_lists = !def.users.is_empty() || !def.groups.is_empty() || def.channel_members;
    let may = if action_lists {
        Permissions::listed(
            def.users.clone(),
            def.groups.clone(),
            def.channel_members,
            commands.alerts.slack().clone(),
        )
        .may_act(&p.user_id, &p.channel_id)
        .await
    } else if cmd.users.is_empty() && cmd.groups.is_empty() {
        commands.alerts.may_act(&p.user_id, &p.channel_id).await
    } else {
        true
    };
    if !may {
        return Ok(refused(
            format!("You are not allowed to run {}.", def.label),
            "refused: not permitted by the action",
        ));
    }
    if def.approval.is_some() {
        return Ok(refused(
            format!(
                "{} needs an approval, which commands cannot ask for yet: run it from its button on a card.",
                def.label
            ),
            "refused: needs an approval",
        ));
    }
    let args: Map<String, Value> = args
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ArgValue::Text(t) => json!(t),
                ArgValue::Int(n) | ArgValue::Duration(n) => json!(n),
                ArgValue::Ref { id, .. } => json!(id),
            };
            (k.clone(), v)
        })
        .collect();
    let target = format!("command:{}:{}", cmd.spec.name, Value::Object(args.clone()));
    let user_name = p.user_name.clone().unwrap_or_default();
    let context = context(None, None, &p.user_id, &user_name, args);
    let actor = Actor {
        id: p.user_id.clone(),
        name: user_name,
    };
    let to = ActionReplyTo {
        channel: p.channel_id.clone(),
        ts: String::new(),
        card: Value::Null,
    };
    Ok(
        match actions::run_action(state, def, &target, &context, &actor, &to, None).await {
            Ok(Started::Running(run)) => Ran {
                text: format!("⏳ Running {}… (by <@{}>)", def.label, p.user_id),
                ephemeral: false,
                result: format!("ok: run {run}"),
            },
            Ok(Started::AlreadyRunning(_)) => refused(
                format!(
                    "{} is already running with these arguments; wait for it to finish.",
                    def.label
                ),
                "refused: already running",
            ),
            Err(reason) => Ran {
                text: format!("{} could not start: {reason}", def.label),
                ephemeral: true,
                result: format!("error: {reason}"),
            },
        },
    )
}
