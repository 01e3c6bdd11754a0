//! A configured `[[command]]`: who may run it here, its arguments (parsed by `sluice_domain::command`, errors with
//! the usage), then its `[[action]]`: at once, after a Run / Cancel confirmation (`confirm.rs`: the action has a
//! `confirm`, or the command says `confirm = true`), or once an approval is in (the action has an `approval`: the
//! approvals workflow's card, exactly as a card's button asks for it). A command with `form = "…"` opens its
//! `[[form]]` instead (`forms/`).

use sluice_inbound::models::SlashCommand;
use sluice_inbound::{Ctx, HandlerResult, Reply};

use super::gate::{admit, args_json, reply_of, said, start, Caller, Commands};
use crate::state::AppState;

/// Runs the `i`th `[[command]]` with `rest` as its arguments. Returns the reply (none when a form opened) and what
/// the audit log records.
pub async fn run(
    state: &AppState,
    commands: &Commands,
    i: usize,
    ctx: &Ctx<SlashCommand>,
    rest: &str,
) -> HandlerResult<(Option<Reply>, String)> {
    let cmd = &state.config.chatops.commands[i];
    let caller = Caller::of(&ctx.payload);
    if let Some(form) = cmd.form.as_deref() {
        return Ok(crate::forms::open_for_command(state, commands, i, form, ctx, rest).await);
    }
    let (reply, result) = run_action(state, commands, i, &caller, rest).await;
    Ok((Some(reply), result))
}

/// The `i`th command's action: at once, after a confirmation, or once approved.
async fn run_action(
    state: &AppState,
    commands: &Commands,
    i: usize,
    caller: &Caller,
    rest: &str,
) -> (Reply, String) {
    let cmd = &state.config.chatops.commands[i];
    let caller = caller.clone();
    let action = cmd.action.as_deref().unwrap_or_default();
    let (def, args) = match admit(state, commands, i, action, &caller, rest).await {
        Ok(ok) => ok,
        Err(refused) => return refused,
    };
    let said = said(&caller.slash, &cmd.spec.name, rest);
    if let Some(needs) = &def.approval {
        let asked = crate::approvals::request_for_command(
            state,
            def,
            needs,
            &said,
            args_json(&args),
            None,
            &caller.actor(),
            &caller.channel_id,
        )
        .await;
        return match asked {
            Ok(id) => (
                Reply::ephemeral(format!(
                    "{} needs an approval: I asked for it in this channel. It runs with `{said}` once approved; \
                     you will be told if it is rejected or expires.",
                    def.label
                )),
                format!("approval requested: {id}"),
            ),
            Err(e) => (
                Reply::ephemeral(format!("{} could not ask for its approval: {e}", def.label)),
                format!("error: {e}"),
            ),
        };
    }
    if cmd.confirm || def.confirm.is_some() {
        return super::confirm::ask(cmd, def, &args, &caller, rest);
    }
    let ran = start(state, cmd, def, &args, None, &caller, None).await;
    (reply_of(cmd, &ran), ran.result)
}
