//! Workflow Builder custom steps (`[[step]]`, `config/steps.rs`), the thin handler. Slack runs a step by sending
//! `function_executed` (`event.function.callback_id` = the action's name, `event.inputs`,
//! `event.function_execution_id`, and a `bot_access_token` for this execution alone). [`executed`] acts once per
//! execution (a once-key in the store, so a redelivery — with the same or another event id, to any replica — does
//! nothing), checks the inputs against the step (`sluice_domain::step::validate_inputs`) and who runs it (the first
//! `user_id` input, permitted as for the action's button), and runs the action
//! through [`crate::actions::run_action`] like any other run: signed, through the outbox, its run id
//! `run_<function_execution_id>` (the call's `Idempotency-Key`). The run's `card` holds `{"step": {execution_id,
//! token}}` instead of a card, so when the call ends `crate::actions::call_ended` adds `complete::completion`:
//! `functions.completeSuccess` with the outputs read from the answer, or `functions.completeError` with the reason
//! (the HTTP status and tries, a timeout, a refusal). Both are outbox rows in the `functions` lane, sent with the
//! execution's token. Every step run, refused input and failed start is audited (`step.run`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_domain::action::context;
use sluice_domain::step::{validate_inputs, ParamType};
use sluice_inbound::models::EventCallback;
use sluice_inbound::{Ctx, HandlerError, HandlerResult, Registry};

pub mod complete;

use crate::actions::{run_action, Actor, ReplyTo, Started};
use crate::alerts::Permissions;
use crate::config::steps::Steps;
use crate::outbox::audit;
use crate::state::{now_ms, AppState};
use complete::complete_error;

/// How long an execution is remembered (Slack gives up on a step long before).
const ONCE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Adds the `function_executed` handler.
pub fn register(r: &mut Registry, state: Arc<AppState>, permissions: Arc<Permissions>) {
    r.event("function_executed", move |ctx: Ctx<EventCallback>| {
        let (s, p) = (state.clone(), permissions.clone());
        async move { executed(&s, &p, ctx).await }
    });
}

async fn executed(
    state: &AppState,
    permissions: &Permissions,
    ctx: Ctx<EventCallback>,
) -> HandlerResult<()> {
    let raw = ctx
        .payload
        .event
        .as_ref()
        .map(|e| e.raw.clone())
        .unwrap_or(Value::Null);
    let Some(id) = raw["function_execution_id"]
        .as_str()
        .filter(|s| !s.is_empty())
    else {
        return Err(HandlerError::new(
            "function_executed without a function_execution_id",
        ));
    };
    let callback_id = raw["function"]["callback_id"].as_str().unwrap_or_default();
    let token = raw["bot_access_token"].as_str().unwrap_or_default();
    let first = state
        .store
        .first_time(
            &format!("function_execution:{id}"),
            now_ms(),
            ONCE_TTL.as_millis() as i64,
        )
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?;
    if !first {
        tracing::info!(execution = %id, step = %callback_id, "function_executed again: already handled");
        return Ok(());
    }
    let team = state.config.slack.team_id.clone();
    let steps: &Steps = &state.config.steps;
    let detail = json!({ "step": callback_id, "execution": id });
    let refuse = |why: String| async move {
        audit(
            state,
            "workflow",
            "step.run",
            id,
            &format!("refused: {why}"),
            detail.clone(),
        )
        .await;
        crate::outbox::enqueue(
            state,
            "step.complete",
            json!({ "step": callback_id, "execution": id }),
            vec![complete_error(&team, id, token, &why)],
            None,
        )
        .await
    };
    let (Some(step), Some(action)) = (
        steps.get(callback_id),
        state.config.action_defs.get(callback_id),
    ) else {
        return refuse(format!(
            "the step {callback_id:?} is not configured in Sluice"
        ))
        .await;
    };
    let inputs = match validate_inputs(&step.input_params(), &raw["inputs"]) {
        Ok(i) => i,
        Err(why) => return refuse(why).await,
    };
    // Who runs it: the first user id among the inputs, as Workflow Builder passes "the person who clicked".
    let user = step
        .inputs
        .iter()
        .filter(|(p, _)| p.ty == ParamType::UserId)
        .find_map(|(p, _)| inputs.get(&p.name).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    // Who may run it, as for its button: its own users and groups, else `[actions]`' (a step runs in no channel).
    let may = crate::actions::may_run(permissions, action, &user, "").await;
    if !may {
        let who = if user.is_empty() {
            "a workflow without a user_id input".to_string()
        } else {
            format!("<@{user}>")
        };
        return refuse(format!("{who} is not allowed to run {}", action.label)).await;
    }
    let mut ctx_value = context(None, None, &user, "", inputs.clone());
    ctx_value["inputs"] = Value::Object(inputs);
    let actor = Actor {
        id: user.clone(),
        name: String::new(),
    };
    let to = ReplyTo {
        channel: String::new(),
        ts: String::new(),
        card: json!({ "step": { "execution_id": id, "token": token } }),
    };
    let run_id = format!("run_{id}");
    let started = run_action(state, action, id, &ctx_value, &actor, &to, Some(run_id)).await;
    let actor_id = if user.is_empty() {
        "workflow"
    } else {
        user.as_str()
    };
    match started {
        Ok(Started::Running(run)) => {
            audit(
                state,
                actor_id,
                "step.run",
                id,
                "ok",
                json!({ "step": callback_id, "run": run }),
            )
            .await;
            Ok(())
        }
        Ok(Started::AlreadyRunning(run)) => {
            audit(
                state,
                actor_id,
                "step.run",
                id,
                "refused: already running",
                json!({ "step": callback_id, "run": run }),
            )
            .await;
            Ok(())
        }
        Err(why) => refuse(format!("{} could not start: {why}", action.label)).await,
    }
}
