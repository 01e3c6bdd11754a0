//! `[[action]]` runs, the thin handler: [`run_action`] is **the** way to run an action (a card's button, or a
//! slash command with its `args`; an approved request's `action` uses its first half, [`prepare_run`], to commit
//! the run with the approval's decision): it renders the request, and commits the run
//! (`action_runs`, state `running`), its signed outgoing call (an `http.request` outbox row whose `Idempotency-Key`
//! is the run id) and the card's "Running …" line in one transaction. The dispatcher sends the call, retries it,
//! dead-letters it, and tells [`call_ended`], which finishes the run once (`sluice_domain::action::finish`) and
//! commits its result (in the card's thread, or ephemerally) and the card's done / failed line.
//!
//! A button click ([`clicked`]) checks who may run the action (its `users`, `groups`, `channel_members`; with none
//! listed, `[actions]`' own), refuses ephemerally and audits a refusal; an action that needs an approval asks for
//! one instead (`approval = {…}`), and runs when it is approved. Buttons are de-duplicated per click (a Slack retry
//! of a click acts once), and at most one run of an action on a target is running at a time: a second click while
//! it runs is told so; once it finished, the action may be run again.

pub mod run;

use std::sync::Arc;

use serde_json::{json, Map, Value};
use sluice_core::event::Event;
use sluice_core::render::RUN_ACTION_PREFIX;
use sluice_domain::action::{
    context, default_result, failure_reason, failure_text, finish, status_line, CallEnd, RunShown,
    RunState,
};
use sluice_domain::outbox::outbox_item;
use sluice_inbound::{ActionPayload, Ctx, HandlerError, HandlerResult, Registry, Reply};
use sluice_store::{Store, StoreError};

use run::card_items;
pub use run::{prepare_run, Actor, Prepared, ReplyTo, Started};

use crate::alerts::Permissions;
use crate::config::actions::{Action, Actions, ResultTo};
use crate::config::steps::Steps;
use crate::outbox::audit;
use crate::state::{now_ms, AppState};

/// May `user` run `def` in `channel`? Its own `users` / `groups` / `channel_members` when it lists any, else the
/// `[actions]` rules (`permissions`). A card's button, a command, a form and a Workflow step all ask this.
pub async fn may_run(permissions: &Permissions, def: &Action, user: &str, channel: &str) -> bool {
    if def.users.is_empty() && def.groups.is_empty() && !def.channel_members {
        permissions.may_act(user, channel).await
    } else {
        Permissions::listed(
            def.users.clone(),
            def.groups.clone(),
            def.channel_members,
            permissions.slack().clone(),
        )
        .may_act(user, channel)
        .await
    }
}

/// Runs `action` on `target` (an event id, an approval id) for `actor`, its templates rendered over `context`
/// (`sluice_domain::action::context`), its result to `reply_to`: **the** entry point for running an action. `run_id`
/// is the run's id and the call's `Idempotency-Key` (a fresh `run_…` when `None`). `Err` says why nothing could be
/// started (a template that failed, the store). The attempt is audited (`action.run`).
pub async fn run_action(
    state: &AppState,
    action: &Action,
    target: &str,
    context: &Value,
    actor: &Actor,
    reply_to: &ReplyTo,
    run_id: Option<String>,
) -> Result<Started, String> {
    let mut detail = json!({ "action": action.name, "channel": reply_to.channel });
    let prepared = match prepare_run(state, action, target, context, actor, reply_to, run_id) {
        Ok(p) => p,
        Err(reason) => {
            audit(
                state,
                &actor.id,
                "action.run",
                target,
                &format!("error: {reason}"),
                detail,
            )
            .await;
            return Err(reason);
        }
    };
    let id = prepared.run.id.clone();
    detail["run"] = json!(id);
    match state
        .store
        .start_action_run(prepared.run, prepared.items)
        .await
    {
        Ok(Ok(())) => {
            state.wake.notify_one();
            audit(state, &actor.id, "action.run", target, "ok", detail).await;
            Ok(Started::Running(id))
        }
        Ok(Err(running)) => {
            audit(
                state,
                &actor.id,
                "action.run",
                target,
                "refused: already running",
                detail,
            )
            .await;
            Ok(Started::AlreadyRunning(running))
        }
        Err(e) => {
            audit(
                state,
                &actor.id,
                "action.run",
                target,
                &format!("error: {e}"),
                detail,
            )
            .await;
            Err(e.to_string())
        }
    }
}

/// The dispatcher's report that run `run_id`'s call ended: finishes the run once and commits its result and the
/// card's status line. `false` when the run had already ended (or is unknown).
pub async fn call_ended(
    store: &dyn Store,
    actions: &Actions,
    steps: &Steps,
    run_id: &str,
    end: &CallEnd,
) -> Result<bool, StoreError> {
    let Some(run) = store.action_run(run_id).await? else {
        return Ok(false);
    };
    let Some(next) = RunState::parse(&run.state).and_then(|s| finish(s, end)) else {
        return Ok(false);
    };
    let action = actions.get(&run.action);
    let label = action.map_or(run.action.as_str(), |a| a.label.as_str());
    let timeout_ms = action.map_or(0, |a| a.timeout_ms);
    let (status, result, text) = match end {
        CallEnd::Answered { status, body } => {
            let parsed: Value =
                serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.clone()));
            let ctx = json!({
                "status": status, "body": parsed, "text": body,
                "action": {"name": run.action, "label": label},
                "user": {"id": run.actor},
            });
            let text = match action.and_then(|a| actions.result(a, &ctx)) {
                Some(Ok(t)) => t,
                Some(Err(e)) => format!("{}\n({e})", default_result(label, *status, body)),
                None => default_result(label, *status, body),
            };
            (Some(i64::from(*status)), body.clone(), text)
        }
        // The run keeps why it failed as its card tells it (the dead letter keeps the call's own reason).
        CallEnd::Dead { .. } | CallEnd::NotSent { .. } => (
            None,
            failure_reason(end, timeout_ms),
            format!("❌ {}", failure_text(label, end, timeout_ms)),
        ),
    };
    let mut items = Vec::new();
    let to = ReplyTo {
        channel: run.channel.clone(),
        ts: run.ts.clone(),
        card: run.card.clone(),
    };
    if !run.channel.is_empty() {
        items.push(if run.reply == ResultTo::Ephemeral.as_str() {
            outbox_item(
                &run.team,
                &run.channel,
                "chat.postEphemeral",
                json!({ "channel": run.channel, "user": run.actor, "text": text }),
            )
        } else if run.ts.is_empty() {
            outbox_item(
                &run.team,
                &run.channel,
                "chat.postMessage",
                json!({ "channel": run.channel, "text": text }),
            )
        } else {
            outbox_item(
                &run.team,
                &run.channel,
                "chat.postMessage",
                json!({ "channel": run.channel, "thread_ts": run.ts, "text": text }),
            )
        });
    }
    let note = match (next, status) {
        (RunState::Done, Some(s)) => format!("HTTP {s}"),
        (RunState::Failed, _) => result.clone(),
        _ => String::new(),
    };
    items.extend(card_items(
        &run.team,
        &to,
        &run.action,
        &status_line(label, next, &run.actor, now_ms(), &note),
    ));
    items.extend(crate::steps::complete::completion(
        &run, steps, label, timeout_ms, end,
    ));
    let excerpt = sluice_slack_wire::blocks::truncate(&result, 2000);
    store
        .finish_action_run(
            run_id,
            next.as_str(),
            status,
            Some(&excerpt),
            now_ms(),
            items,
        )
        .await
}

/// The dispatcher's report that run `run_id`'s call is about to be sent again after it was dead-lettered and
/// replayed (`/v1/dead-letters/replay`, the console, `sluice dlq replay`): a failed run runs again, its card showing
/// it running, and is finished by [`call_ended`] from the new outcome. `false` when the run is not failed (the
/// first send of its call, or it already runs again), or another run of the action on the target is running.
pub async fn call_replayed(
    store: &dyn Store,
    actions: &Actions,
    run_id: &str,
) -> Result<bool, StoreError> {
    let Some(run) = store.action_run(run_id).await? else {
        return Ok(false);
    };
    if RunState::parse(&run.state) != Some(RunState::Failed) {
        return Ok(false);
    }
    let label = actions
        .get(&run.action)
        .map_or(run.action.as_str(), |a| a.label.as_str());
    let to = ReplyTo {
        channel: run.channel.clone(),
        ts: run.ts.clone(),
        card: run.card.clone(),
    };
    let now = now_ms();
    let line = status_line(label, RunState::Running, &run.actor, now, "");
    let items = card_items(&run.team, &to, &run.action, &line);
    let reopened = store.reopen_action_run(run_id, now, items).await?;
    if reopened {
        tracing::info!(run = %run_id, action = %run.action, "a replayed call runs its failed run again");
    }
    Ok(reopened)
}

/// What a card shows of the runs on `target` (its event): the latest run of each action, labelled as configured.
pub async fn shown_runs(
    store: &dyn Store,
    actions: &Actions,
    target: &str,
) -> Result<Vec<RunShown>, StoreError> {
    Ok(store
        .action_runs_of(target)
        .await?
        .iter()
        .filter_map(|run| {
            let label = actions
                .get(&run.action)
                .map_or(run.action.as_str(), |a| a.label.as_str());
            RunShown::of(run, label)
        })
        .collect())
}

/// Adds the `[[action]]` buttons' handler to the registry.
pub fn register(r: &mut Registry, state: Arc<AppState>, permissions: Arc<Permissions>) {
    let pattern = regex::Regex::new(&format!("^{}", regex::escape(RUN_ACTION_PREFIX)))
        .expect("a literal prefix is a valid pattern");
    // A run may be started again once it ended: each click counts (Slack's retries of one click do not).
    r.keyed_per_click(RUN_ACTION_PREFIX);
    r.action_matching(pattern, move |ctx: Ctx<ActionPayload>| {
        let (s, p) = (state.clone(), permissions.clone());
        async move { clicked(&s, &p, ctx).await }
    });
}

/// A click on an `[[action]]`'s button on a card.
async fn clicked(
    state: &AppState,
    permissions: &Permissions,
    ctx: Ctx<ActionPayload>,
) -> HandlerResult<()> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the click came without a user"))?;
    let name = ctx
        .payload
        .action
        .action_id
        .trim_start_matches(RUN_ACTION_PREFIX)
        .to_string();
    let event_id = ctx
        .payload
        .action
        .value
        .clone()
        .ok_or_else(|| HandlerError::new("this button carries no event id"))?;
    let body = &ctx.payload.body;
    let channel = body
        .channel_id()
        .ok_or_else(|| HandlerError::new("the click came without a channel"))?;
    let ts = body.message_ts().unwrap_or_default();
    let card = match body.message.as_ref() {
        Some(m) if m.blocks.as_ref().is_some_and(Value::is_array) => {
            json!({ "text": m.text.clone().unwrap_or_default(), "blocks": m.blocks })
        }
        _ => Value::Null,
    };
    let actor = Actor {
        id: user.clone(),
        name: body
            .common
            .user
            .name
            .clone()
            .or_else(|| body.common.user.username.clone())
            .unwrap_or_default(),
    };
    let Some(action) = state.config.action_defs.get(&name) else {
        ctx.reply(Reply::ephemeral(format!(
            "The action {name:?} is no longer configured."
        )))
        .await?;
        return Ok(());
    };
    let detail = json!({ "action": name, "channel": channel, "via": "button" });
    let may = may_run(permissions, action, &user, &channel).await;
    if !may {
        audit(
            state,
            &user,
            "action.run",
            &event_id,
            "refused: not permitted",
            detail,
        )
        .await;
        ctx.reply(Reply::ephemeral(format!(
            "You are not allowed to run {}.",
            action.label
        )))
        .await?;
        return Ok(());
    }
    let event: Event = state
        .store
        .event(&event_id)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
        .and_then(|s| serde_json::from_value(s.body).ok())
        .ok_or_else(|| HandlerError::new(format!("event {event_id} is no longer stored")))?;
    if let Some(needs) = &action.approval {
        let said = crate::approvals::request_for_action(
            state, action, needs, &event, &event_id, &actor, &channel,
        )
        .await;
        let detail = json!({ "action": name, "channel": channel, "via": "button", "approval": said.as_ref().ok() });
        let result = match &said {
            Ok(_) => "approval requested".to_string(),
            Err(e) => format!("error: {e}"),
        };
        audit(state, &user, "action.run", &event_id, &result, detail).await;
        let text = match said {
            Ok(_) => format!("{} needs an approval: asked in this channel.", action.label),
            Err(e) => format!("{} could not ask for its approval: {e}", action.label),
        };
        ctx.reply(Reply::ephemeral(text)).await?;
        return Ok(());
    }
    let context = context(Some(&event), None, &actor.id, &actor.name, Map::new());
    // A deduplicated alert's cards are redrawn from the store (count, decisions, runs); any other card from what
    // Slack showed.
    let card = match crate::alerts::living_refresh(state, &event) {
        Some(refresh) => json!({ "living": refresh }),
        None if card.is_object() => {
            let template = crate::alerts::template_of(state, &event, &event_id, &channel, &ts)
                .await
                .map_err(|e| HandlerError::new(e.to_string()))?;
            json!({ "render": { "event_id": event_id, "template": template } })
        }
        None => card,
    };
    let to = ReplyTo { channel, ts, card };
    match run_action(state, action, &event_id, &context, &actor, &to, None).await {
        Ok(Started::Running(_)) => Ok(()),
        Ok(Started::AlreadyRunning(_)) => {
            ctx.reply(Reply::ephemeral(format!(
                "{} is already running here; wait for it to finish.",
                action.label
            )))
            .await?;
            Ok(())
        }
        Err(reason) => {
            ctx.reply(Reply::ephemeral(format!(
                "{} could not start: {reason}",
                action.label
            )))
            .await?;
            Ok(())
        }
    }
}
