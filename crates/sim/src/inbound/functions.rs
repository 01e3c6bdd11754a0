//! The test's side of Workflow Builder custom steps: [`Simulator::fire_function`] delivers `function_executed`,
//! [`Simulator::function_execution`] reads how the app completed it (the methods are `crate::functions`).

use serde_json::{json, Value};

use super::{Delivered, SimError};
use crate::executions::{Execution, Outcome};
use crate::Simulator;

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
