//! A run's parts before it is committed: who runs it ([`Actor`]), where its result and status go ([`ReplyTo`]), and
//! [`prepare_run`], which renders the request and builds the rows. Beneath both the actions handler and the
//! approvals workflow (an approved request's `action` commits its run with the decision).

use serde_json::{json, Value};
use sluice_domain::action::{status_line, with_status, RunState};
use sluice_domain::living::event_card_marker;
use sluice_domain::outbox::outbox_item;
use sluice_domain::outgoing::http_item;
use sluice_store::{NewActionRun, NewOutboxItem};

use crate::config::actions::Action;
use crate::state::{now_ms, AppState};

/// Who runs an action.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Slack user id.
    pub id: String,
    /// Their name as Slack gave it (may be empty).
    pub name: String,
}

/// Where a run's result and status go.
#[derive(Debug, Clone, Default)]
pub struct ReplyTo {
    /// The channel of the card (or of the command).
    pub channel: String,
    /// The card's ts; empty when there is no card to show the run on.
    pub ts: String,
    /// How the run's status reaches its card: for a deduplicated alert's card `{"living": [<card refresh>…]}`, the
    /// living refreshes of its cards; for another event's card `{"render": {"event_id", "template"}}`, its redraw
    /// (both rendered at send time from the store, so the count, the decisions and the other runs stay); else the
    /// card as Slack shows it (`{"text", "blocks"}`), redrawn with the run's status line; `Null` without a card.
    pub card: Value,
}

/// What [`run_action`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The run is committed with its call: its id (the `Idempotency-Key`).
    Running(String),
    /// A run of the same action on the same target is still running (its id): nothing was started.
    AlreadyRunning(String),
}

/// A run ready to commit: its row and its outbox rows (the signed call, the card's "Running …" line).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub run: NewActionRun,
    pub items: Vec<NewOutboxItem>,
}

/// Renders `action`'s request for `context` and builds its run (see [`run_action`]) without committing it: for a
/// workflow that commits the run with a decision of its own (an approval's `action`, committed with the approval).
pub fn prepare_run(
    state: &AppState,
    action: &Action,
    target: &str,
    context: &Value,
    actor: &Actor,
    reply_to: &ReplyTo,
    run_id: Option<String>,
) -> Result<Prepared, String> {
    let id = run_id.unwrap_or_else(|| format!("run_{}", uuid::Uuid::now_v7().simple()));
    let request = state.config.action_defs.request(action, context)?;
    let purpose = format!("action.{}", action.name);
    let mut call = http_item(&request.url, request.body, &id, &purpose, action.timeout_ms)?;
    call.args["method"] = json!(action.method);
    call.args["action"] = json!(action.name);
    call.args["run_id"] = json!(id);
    let team = state.config.slack.team_id.clone();
    let mut items = vec![call];
    let now = now_ms();
    items.extend(card_items(
        &team,
        reply_to,
        &action.name,
        &status_line(&action.label, RunState::Running, &actor.id, now, ""),
    ));
    let run = NewActionRun {
        id,
        action: action.name.clone(),
        target: target.to_string(),
        actor: actor.id.clone(),
        team,
        channel: reply_to.channel.clone(),
        ts: reply_to.ts.clone(),
        reply: action.result.as_str().to_string(),
        card: reply_to.card.clone(),
        started_at_ms: now,
    };
    Ok(Prepared { run, items })
}

/// The writes that show action `name`'s status `line` on the run's card (see [`ReplyTo::card`]): the living
/// refreshes of a deduplicated alert's cards or an event card's redraw (both drawn from the store at send time, every
/// run on them included), or the card's `chat.update` with the line set; none without a card.
pub(super) fn card_items(team: &str, to: &ReplyTo, name: &str, line: &str) -> Vec<NewOutboxItem> {
    if let Some(living) = to.card.get("living") {
        return serde_json::from_value(living.clone()).unwrap_or_default();
    }
    let render = &to.card["render"];
    if let Some(event_id) = render["event_id"].as_str() {
        // The card's place: the spec's (an approval's run redraws the card of the event the approval was asked
        // on), else where the run was started.
        let channel = render["channel"].as_str().unwrap_or(&to.channel);
        let ts = render["ts"].as_str().unwrap_or(&to.ts);
        if ts.is_empty() {
            return Vec::new();
        }
        let template = render["template"].as_str().unwrap_or("auto");
        let marker = event_card_marker(channel, ts, event_id, template);
        return vec![outbox_item(team, channel, "chat.update", marker)];
    }
    if to.ts.is_empty() || !to.card["blocks"].is_array() {
        return Vec::new();
    }
    // The card keeps its text (its notification and search text); only its blocks show the run.
    let text = to.card["text"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or(line);
    vec![outbox_item(
        team,
        &to.channel,
        "chat.update",
        json!({
            "channel": to.channel,
            "ts": to.ts,
            "blocks": with_status(&to.card["blocks"], name, line),
            "text": text,
        }),
    )]
}
