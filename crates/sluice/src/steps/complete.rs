//! What ends a step's execution once its action's call ended: `functions.completeSuccess` with the outputs read
//! from the answer, or `functions.completeError` with a readable reason. Pure (an outbox row from the run, the
//! config and how the call ended), so `crate::actions::call_ended` can add it without depending on the handler.

use serde_json::{json, Map};
use sluice_domain::action::{failure_text, CallEnd};
use sluice_domain::outbox::outbox_item;
use sluice_store::{ActionRunRecord, NewOutboxItem};

use crate::config::steps::Steps;

/// The lane step completions go through.
const LANE: &str = "functions";
/// `functions.completeError` for execution `id` with `error`, sent with the execution's `token` when Slack gave one.
pub(crate) fn complete_error(team: &str, id: &str, token: &str, error: &str) -> NewOutboxItem {
    let mut args = json!({ "function_execution_id": id, "error": error });
    if !token.is_empty() {
        args["token"] = json!(token);
    }
    outbox_item(team, LANE, "functions.completeError", args)
}

/// The step completion a step run's end adds (none for a run that is not a step's): `functions.completeSuccess` with
/// the outputs read from a 2xx answer, or `functions.completeError` saying why (the answer lacked an output, the
/// call failed).
pub fn completion(
    run: &ActionRunRecord,
    steps: &Steps,
    label: &str,
    timeout_ms: u64,
    end: &CallEnd,
) -> Option<NewOutboxItem> {
    let step_ref = run.card.get("step")?;
    let id = step_ref["execution_id"].as_str()?;
    let token = step_ref["token"].as_str().unwrap_or_default();
    let outputs = match (end, steps.get(&run.action)) {
        (CallEnd::Answered { status, body }, Some(step)) => steps
            .outputs(step, *status, body)
            .map_err(|why| format!("{label} answered HTTP {status}, but {why}")),
        (CallEnd::Answered { .. }, None) => Ok(Map::new()),
        _ => Err(failure_text(label, end, timeout_ms)),
    };
    Some(match outputs {
        Ok(outputs) => {
            let mut args = json!({ "function_execution_id": id, "outputs": outputs });
            if !token.is_empty() {
                args["token"] = json!(token);
            }
            outbox_item(&run.team, LANE, "functions.completeSuccess", args)
        }
        Err(why) => complete_error(&run.team, id, token, &why),
    })
}
