//! What every way of running a `[[command]]`'s action shares — the slash command itself (`configured.rs`), its
//! Run / Cancel confirmation (`confirm.rs`) and a `[[form]]`'s submission (`crate::forms`): who may run which
//! command ([`Commands`]), who asked ([`Caller`]), the checks before anything runs ([`admit`]), and starting the
//! action through `crate::actions::run_action` ([`start`], [`start_with`]). It depends on none of those callers, so
//! they all depend on it and not on each other.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use sluice_domain::action::context;
use sluice_domain::command::ArgValue;
use sluice_inbound::models::SlashCommand;
use sluice_inbound::Reply;
use sluice_slack::api::Client;

use crate::actions::{self, Actor, ReplyTo as ActionReplyTo, Started};
use crate::alerts::Permissions;
use crate::config::actions::Action;
use crate::config::commands::{CommandConfig, ReplyTo};
use crate::state::AppState;

/// What the slash command needs besides the state: who may act on alerts (`[actions]`, for `silence` and `ack`)
/// and who may run each configured command (memberships read from Slack and cached).
pub struct Commands {
    pub alerts: Arc<Permissions>,
    /// One per `[[command]]`, in config order.
    runners: Vec<Permissions>,
}

impl Commands {
    pub fn new(state: &AppState, alerts: Arc<Permissions>, slack: Client) -> Self {
        let runners = state
            .config
            .chatops
            .commands
            .iter()
            .map(|c| Permissions::listed(c.users.clone(), c.groups.clone(), false, slack.clone()))
            .collect();
        Commands { alerts, runners }
    }

    /// May `user` run `cmd` (the `i`th `[[command]]`) in `channel` (id and name)?
    pub(crate) async fn may_run(
        &self,
        i: usize,
        cmd: &CommandConfig,
        user: &str,
        channel: (&str, &str),
    ) -> bool {
        let here = cmd.channels.is_empty()
            || cmd
                .channels
                .iter()
                .any(|c| c == channel.0 || c == channel.1);
        here && self.runners[i].may_act(user, channel.0).await
    }
}

/// Who ran a command, and where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub channel_name: String,
    /// The slash command, `/ops`.
    pub slash: String,
}

impl Caller {
    pub fn of(p: &SlashCommand) -> Self {
        Caller {
            user_id: p.user_id.clone(),
            user_name: p.user_name.clone().unwrap_or_default(),
            channel_id: p.channel_id.clone(),
            channel_name: p.channel_name.clone().unwrap_or_default(),
            slash: p.command.clone(),
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            id: self.user_id.clone(),
            name: self.user_name.clone(),
        }
    }
}

/// A refusal: what the user sees and what the audit log records.
pub type Refused = (Reply, String);

/// The command as typed: `/ops deploy checkout staging`.
pub fn said(slash: &str, name: &str, rest: &str) -> String {
    if rest.trim().is_empty() {
        format!("{slash} {name}")
    } else {
        format!("{slash} {name} {}", rest.trim())
    }
}

/// How a run's answer is shown, as the command's `reply` says.
pub fn reply_of(cmd: &CommandConfig, ran: &Ran) -> Reply {
    match (cmd.reply, ran.ephemeral) {
        (ReplyTo::Channel, false) => Reply::in_channel(ran.text.clone()),
        _ => Reply::ephemeral(ran.text.clone()),
    }
}

/// Everything that must hold before the `i`th command's action `action` may run, or be confirmed, or be asked
/// for: the user may run the command here, `rest` parses, the action is configured and lets this user run it (its
/// own `users` / `groups` / `channel_members` on top of the command's; with neither listing anyone, `[actions]`'
/// own rules). Asked again when a confirmation is clicked, so a changed configuration counts.
pub async fn admit<'a>(
    state: &'a AppState,
    commands: &Commands,
    i: usize,
    action: &str,
    caller: &Caller,
    rest: &str,
) -> Result<(&'a Action, BTreeMap<String, ArgValue>), Refused> {
    let cmd = &state.config.chatops.commands[i];
    let slash = caller.slash.as_str();
    let channel = (caller.channel_id.as_str(), caller.channel_name.as_str());
    if !commands.may_run(i, cmd, &caller.user_id, channel).await {
        return Err((
            Reply::ephemeral(format!(
                "You are not allowed to run `{slash} {}` here. Ask an admin to add you to its `[[command]]` in sluice.toml.",
                cmd.spec.name
            )),
            "refused: not allowed".into(),
        ));
    }
    let args = match cmd.spec.parse(slash, rest) {
        Ok(args) => args,
        Err(usage) => return Err((Reply::ephemeral(usage), "refused: bad arguments".into())),
    };
    let Some(def) = state.config.action_defs.get(action) else {
        return Err((
            Reply::ephemeral(format!(
                "`{slash} {}`: its action {action:?} is no longer configured.",
                cmd.spec.name
            )),
            "refused: action not configured".into(),
        ));
    };
    let action_lists = !def.users.is_empty() || !def.groups.is_empty() || def.channel_members;
    let command_lists = !cmd.users.is_empty() || !cmd.groups.is_empty();
    // A command that lists who may run it already decided, unless its action lists people too.
    let may = (command_lists && !action_lists)
        || actions::may_run(&commands.alerts, def, &caller.user_id, &caller.channel_id).await;
    if !may {
        return Err((
            Reply::ephemeral(format!("You are not allowed to run {}.", def.label)),
            "refused: not permitted by the action".into(),
        ));
    }
    Ok((def, args))
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

/// The parsed arguments as the templates' `args`.
pub fn args_json(args: &BTreeMap<String, ArgValue>) -> Map<String, Value> {
    args.iter()
        .map(|(k, v)| {
            let v = match v {
                ArgValue::Text(t) => json!(t),
                ArgValue::Int(n) | ArgValue::Duration(n) => json!(n),
                ArgValue::Ref { id, .. } => json!(id),
            };
            (k.clone(), v)
        })
        .collect()
}

/// Starts `def` for `cmd` with the parsed `args` (the templates' `args.*`) and, from a form, its values (`form.*`),
/// on behalf of `caller`, through **the** entry point for running actions (`crate::actions::run_action`): the same
/// signing, allow-list, outbox and audit as a card's button. `run_id` is the run's id (a confirmation's, so that a
/// second Run cannot start a second run). The result is posted in the command's channel (or ephemerally, as the
/// action says) when the call ends.
pub async fn start(
    state: &AppState,
    cmd: &CommandConfig,
    def: &Action,
    args: &BTreeMap<String, ArgValue>,
    form: Option<Map<String, Value>>,
    caller: &Caller,
    run_id: Option<String>,
) -> Ran {
    let args = args_json(args);
    let mut target = format!("command:{}:{}", cmd.spec.name, Value::Object(args.clone()));
    let mut context = context(None, None, &caller.user_id, &caller.user_name, args);
    if let Some(form) = form {
        target.push_str(&Value::Object(form.clone()).to_string());
        context["form"] = Value::Object(form);
    }
    start_with(state, def, &target, &context, caller, run_id).await
}

/// Starts `def` on `target` with a ready `context` (see [`start`]).
pub async fn start_with(
    state: &AppState,
    def: &Action,
    target: &str,
    context: &Value,
    caller: &Caller,
    run_id: Option<String>,
) -> Ran {
    let to = ActionReplyTo {
        channel: caller.channel_id.clone(),
        ts: String::new(),
        card: Value::Null,
    };
    match actions::run_action(state, def, target, context, &caller.actor(), &to, run_id).await {
        Ok(Started::Running(run)) => Ran {
            text: format!("⏳ Running {}… (by <@{}>)", def.label, caller.user_id),
            ephemeral: false,
            result: format!("ok: run {run}"),
        },
        Ok(Started::AlreadyRunning(_)) => Ran {
            text: format!(
                "{} is already running with these arguments; wait for it to finish.",
                def.label
            ),
            ephemeral: true,
            result: "refused: already running".into(),
        },
        Err(reason) => Ran {
            text: format!("{} could not start: {reason}", def.label),
            ephemeral: true,
            result: format!("error: {reason}"),
        },
    }
}
