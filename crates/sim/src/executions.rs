//! Workflow Builder step executions as the simulator keeps them (`State::functions`): plain data, used by the
//! `functions.*` methods (`functions.rs`) and by the test-facing `Simulator::fire_function` (`inbound/functions.rs`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

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
    pub(crate) token: String,
    pub(crate) event: Value,
}

/// Every execution, and the outputs the test declared each step requires.
#[derive(Debug, Clone, Default)]
pub struct Functions {
    pub(crate) executions: BTreeMap<String, Execution>,
    pub(crate) required_outputs: BTreeMap<String, Vec<String>>,
}

impl Functions {
    /// A running execution's token counts as a bot token.
    pub fn token_valid(&self, token: &str) -> bool {
        self.executions
            .values()
            .any(|e| e.token == token && e.outcome == Outcome::Running)
    }
}
