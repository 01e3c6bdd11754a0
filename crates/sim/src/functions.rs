//! Workflow Builder custom steps, as strict as Slack: [`Simulator::fire_function`] sends `function_executed` for a
//! step (with a `function_execution_id` and a `bot_access_token` that is valid for that execution only, while it
//! runs), and `functions.completeSuccess` / `functions.completeError` finish it. Errors as Slack's:
//! `invalid_arguments` (no `function_execution_id`, `outputs` not an object, an empty `error`),
//! `function_execution_not_found`, `execution_not_in_running_state` (completed already), `access_denied` (another
//! execution's token), `parameter_validation_failed` (a required output missing, when the test declared them with
//! [`Simulator::declare_function_outputs`]). Tests read the outcome with [`Simulator::function_execution`].

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::args::{str_arg, ApiError, Args};
use crate::inbound::{Delivered, SimError};
use crate::state::State;
use crate::Simulator;

/// Where an execution stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Running,
    Completed { outputs: Map<String, Value> },
    Failed { error: String },
}

/// One execution of a custom step.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: String,
    pub callback_id: String,
    pub inputs: Value,
    pub outcome: Outcome,
    /// Completion calls that reached the method (accepted or refused).
    pub completion_calls: u32,
    /// Whether the accepted completion was sent with the execution's own token (else the app's bot token).
    pub completed_with_execution_token: Option<bool>,
    token: String,
    event: Value,
}

/// Every execution, and the outputs the test declared each step requires.
#[derive(Debug, Clone, Default)]
pub struct Functions {
    executions: BTreeMap<String, Execution>,
    required_outputs: BTreeMap<String, Vec<String>>,
}

impl Functions {
    /// A running execution's token counts as a bot token.
    pub fn token_valid(&self, token: &str) -> bool {
        self.executions
            .values()
            .any(|e| e.token == token && e.outcome == Outcome::Running)
    }
}

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
        return Err(ApiError::new("parameter_validation_failed").with_pub(
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

impl ApiError {
    fn with_pub(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }
}

/// A fired execution: its id, the event's id (for `resend_event`) and how the app answered.
#[derive(Debug, Clone)]
pub struct Fired {
    pub execution_id: String,
    pub event_id: String,
    pub delivered: Delivered,
}

impl Simulator {
    /// Says which outputs step `callback_id` requires, as its manifest would: a completion without one of them is
    /// refused with `parameter_validation_failed`.
    pub fn declare_function_outputs(&self, callback_id: &str, required: &[&str]) {
        self.lock().functions.required_outputs.insert(
            callback_id.to_string(),
            required.iter().map(|s| s.to_string()).collect(),
        );
    }

    /// Workflow Builder runs step `callback_id` with `inputs`: a new execution, sent as `function_executed`.
    pub async fn fire_function(&self, callback_id: &str, inputs: Value) -> Result<Fired, SimError> {
        let event = {
            let mut state = self.lock();
            let n = state.next_id();
            let id = format!("Fx{n:06}{:06X}", rand::random::<u32>() & 0xFF_FFFF);
            let token = format!("xwfp-{n}-{:016x}", rand::random::<u64>());
            let now = state.clock.now();
            let created = state.unix_secs(now);
            let event = json!({
                "type": "function_executed",
                "function": {
                    "id": format!("Fn{n:06}"), "callback_id": callback_id, "title": callback_id,
                    "description": "", "type": "app", "input_parameters": [], "output_parameters": [],
                    "app_id": state.cfg.app_id, "date_created": created, "date_updated": created,
                    "date_deleted": 0,
                },
                "inputs": inputs,
                "function_execution_id": id,
                "workflow_execution_id": format!("Wx{n:06}"),
                "bot_access_token": token,
            });
            state.functions.executions.insert(
                id.clone(),
                Execution {
                    id,
                    callback_id: callback_id.to_string(),
                    inputs,
                    outcome: Outcome::Running,
                    completion_calls: 0,
                    completed_with_execution_token: None,
                    token,
                    event: event.clone(),
                },
            );
            event
        };
        let execution_id = event["function_execution_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.send_fired(execution_id, event).await
    }

    /// Sends execution `id`'s `function_executed` again under a new event id (a duplicate delivery that Slack's
    /// event-id retries would not catch).
    pub async fn refire_function(&self, id: &str) -> Result<Fired, SimError> {
        let event = self
            .lock()
            .functions
            .executions
            .get(id)
            .map(|e| e.event.clone())
            .ok_or_else(|| SimError::UnknownEvent(id.to_string()))?;
        self.send_fired(id.to_string(), event).await
    }

    async fn send_fired(&self, execution_id: String, event: Value) -> Result<Fired, SimError> {
        let before: Vec<String> = self.lock().events_sent.keys().cloned().collect();
        let delivered = self.send_event(event).await?;
        let event_id = self
            .lock()
            .events_sent
            .keys()
            .find(|k| !before.contains(k))
            .cloned()
            .unwrap_or_default();
        Ok(Fired {
            execution_id,
            event_id,
            delivered,
        })
    }

    /// Execution `id` as it stands.
    pub fn function_execution(&self, id: &str) -> Option<Execution> {
        self.lock().functions.executions.get(id).cloned()
    }
}
