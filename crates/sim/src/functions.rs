//! Workflow Builder custom steps, as strict as Slack: [`Simulator::fire_function`] sends `function_executed` for a
//! step (with a `function_execution_id` and a `bot_access_token` that is valid for that execution only, while it
//! runs), and `functions.completeSuccess` / `functions.completeError` finish it. Errors as Slack's:
//! `invalid_arguments` (no `function_execution_id`, `outputs` not an object, an empty `error`),
//! `function_execution_not_found`, `execution_not_in_running_state` (completed already), `access_denied` (another
//! execution's token), `parameter_validation_failed` (a required output missing, when the test declared them with
//! [`Simulator::declare_function_outputs`]). Tests read the outcome with [`Simulator::function_execution`].

use serde_json::{json, Value};

use crate::args::{str_arg, ApiError, Args};
pub use crate::executions::{Execution, Functions, Outcome};
use crate::state::State;

/// The caller's token, handed to the method (the HTTP gate checked it already).
pub(crate) const CALLER: &str = "_caller_token";

pub(crate) fn with_caller(args: &Args, token: &str) -> Args {
    let mut a = args.clone();
    a.insert(CALLER.into(), json!(token));
    a
}

fn running<'a>(state: &'a mut State, args: &Args) -> Result<&'a mut Execution, ApiError> {
    let id =
        str_arg(args, "function_execution_id").ok_or_else(|| ApiError::new("invalid_arguments"))?;
    let caller = str_arg(args, CALLER).unwrap_or_default();
    let bot = state.cfg.bot_tokens.contains(&caller);
    let e = state
        .functions
        .executions
        .get_mut(&id)
        .ok_or_else(|| ApiError::new("function_execution_not_found"))?;
    e.completion_calls += 1;
    if !bot && e.token != caller {
        return Err(ApiError::new("access_denied"));
    }
    if e.outcome != Outcome::Running {
        return Err(ApiError::new("execution_not_in_running_state"));
    }
    e.completed_with_execution_token = Some(!bot);
    Ok(e)
}

/// `functions.completeSuccess`.
pub fn complete_success(state: &mut State, args: &Args) -> Result<Value, ApiError> {
    let outputs = match args.get("outputs") {
        Some(Value::Object(o)) => o.clone(),
        // A form body carries it as JSON text.
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(o)) => o,
            _ => return Err(ApiError::new("invalid_arguments")),
        },
        _ => return Err(ApiError::new("invalid_arguments")),
    };
    let id = str_arg(args, "function_execution_id").unwrap_or_default();
    let callback = state
        .functions
        .executions
        .get(&id)
        .map(|e| e.callback_id.clone())
        .unwrap_or_default();
    let required = state
        .functions
        .required_outputs
        .get(&callback)
        .cloned()
        .unwrap_or_default();
    let e = running(state, args)?;
    if let Some(missing) = required.iter().find(|r| !outputs.contains_key(*r)) {
        e.completed_with_execution_token = None;
        return Err(ApiError::new("parameter_validation_failed").with(
            "errors",
            json!([format!("missing required output: {missing}")]),
        ));
    }
    e.outcome = Outcome::Completed { outputs };
    Ok(json!({}))
}

/// `functions.completeError`.
pub fn complete_error(state: &mut State, args: &Args) -> Result<Value, ApiError> {
    let error = str_arg(args, "error").ok_or_else(|| ApiError::new("invalid_arguments"))?;
    let e = running(state, args)?;
    e.outcome = Outcome::Failed { error };
    Ok(json!({}))
}
