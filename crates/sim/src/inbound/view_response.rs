//! What Slack does with the app's answer to a `view_submission`: `response_action: push` stacks the given view on
//! the submitted one (validated like `views.push`, at most three deep: `push_limit_reached`), `update` replaces the
//! submitted view's definition (validated, new hash). An invalid view is refused as Slack refuses it (the user sees
//! an error in the modal), here as [`SimError::Refused`]. For the page, `errors` are kept to show under the fields,
//! an empty answer closes the submitted view and `clear` the whole stack.

use std::time::Instant;

use serde_json::{Map, Value};

use super::SimError;
use crate::api::{check_view, new_hash, VIEW_STACK_MAX};
use crate::model::View;
use crate::state::State;

pub(super) fn apply(
    state: &mut State,
    submitted: &str,
    body: &str,
    now: Instant,
) -> Result<(), SimError> {
    state.view_errors.remove(submitted);
    let answer = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(answer)) => answer,
        _ => Map::new(),
    };
    let action = answer.get("response_action").and_then(Value::as_str);
    match action {
        Some("push" | "update") => {}
        Some("errors") => {
            if let Some(Value::Object(errors)) = answer.get("errors") {
                state
                    .view_errors
                    .insert(submitted.to_string(), errors.clone());
            }
            return Ok(());
        }
        Some("clear") => {
            let root = state.views.get(submitted).map(|v| v.root_view_id.clone());
            let stack: Vec<String> = state
                .views
                .values()
                .filter(|v| Some(&v.root_view_id) == root.as_ref())
                .map(|v| v.id.clone())
                .collect();
            state.closed_views.extend(stack);
            return Ok(());
        }
        _ => {
            state.closed_views.insert(submitted.to_string());
            return Ok(());
        }
    }
    let mut args = Map::new();
    args.insert(
        "view".into(),
        answer.get("view").cloned().unwrap_or(Value::Null),
    );
    let def = check_view(&args, "modal").map_err(|e| {
        SimError::Refused(format!(
            "response_action {}: {}",
            action.unwrap_or_default(),
            e.body()
        ))
    })?;
    let top = state
        .views
        .get(submitted)
        .cloned()
        .ok_or_else(|| SimError::UnknownView(submitted.to_string()))?;
    let hash = new_hash(state, now);
    let callback_id = def
        .get("callback_id")
        .and_then(Value::as_str)
        .map(String::from);
    let external_id = def
        .get("external_id")
        .and_then(Value::as_str)
        .map(String::from);
    if action == Some("update") {
        if let Some(v) = state.views.get_mut(submitted) {
            v.definition = def;
            v.hash = hash;
            v.callback_id = callback_id;
            v.external_id = external_id;
        }
        return Ok(());
    }
    let depth = state
        .views
        .values()
        .filter(|v| v.root_view_id == top.root_view_id)
        .count();
    if depth >= VIEW_STACK_MAX {
        return Err(SimError::Refused("push_limit_reached".into()));
    }
    let id = state.next_view_id();
    state.views.insert(
        id.clone(),
        View {
            id,
            kind: "modal".into(),
            user: top.user.clone(),
            hash,
            root_view_id: top.root_view_id.clone(),
            previous_view_id: Some(top.id.clone()),
            external_id,
            callback_id,
            trigger_id: None,
            definition: def,
        },
    );
    Ok(())
}
