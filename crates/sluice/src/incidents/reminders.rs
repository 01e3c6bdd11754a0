//! The incidents' timer: one leader (the `incidents` lease) asks the database every second which incidents are due:
//! an open one that had no update for its severity's minutes gets a reminder in its war room (decided by
//! `incident::decide` with `Input::Remind`, committed on the version read, so once across replicas); a resolved one
//! whose `archive_after` passed has its war room archived.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_domain::incident::{decide, Effect, Input, State};
use sluice_domain::outbox::outbox_item;
use sluice_store::IncidentCommit;
use tokio::sync::watch;

use super::{commit_with, plain, Hooks};
use crate::commands::clock::now_ms;
use crate::outbox::audit;
use crate::state::AppState;

const TICK: Duration = Duration::from_secs(1);
const ROLE: &str = "incidents";

/// How long after its call ended an incident without a war room counts as stalled (the dispatcher's hook runs at
/// once; only a crash in between leaves it).
const STALLED_AFTER_MS: i64 = 10_000;

pub async fn run_reminders(hooks: Arc<Hooks>, owner: String, shutdown: watch::Receiver<bool>) {
    let state = hooks.state.clone();
    if state.config.incidents.is_empty() {
        return;
    }
    crate::leader::every(&state, ROLE, &owner, TICK, shutdown, || async {
        match state
            .store
            .stalled_incidents(crate::state::now_ms() - STALLED_AFTER_MS, 20)
            .await
        {
            Ok(stalled) => {
                for (id, method, outcome, channel) in stalled {
                    tracing::warn!(incident = %id, %method, %outcome, "finishing an incident's set-up a crash interrupted");
                    match (method.as_str(), outcome.as_str(), channel) {
                        ("conversations.create", _, Some(ch)) => {
                            hooks.room_created(&id, &ch, &ch).await
                        }
                        ("conversations.create", _, None) => {}
                        (_, "sent", _) => {
                            hooks
                                .lookup_ended(&id, Err("its answer was lost in a restart".into()))
                                .await
                        }
                        (_, _, _) => hooks.lookup_ended(&id, Err("it failed".into())).await,
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "incident timer: cannot read stalled incidents"),
        }
        let due = match state.store.due_incident_reminders(now_ms(), 50).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "incident timer: cannot read due incidents");
                return;
            }
        };
        for id in due {
            tick(&state, &id).await;
        }
    })
    .await
}

async fn tick(state: &AppState, id: &str) {
    let team = state.config.slack.team_id.clone();
    let now = now_ms();
    let mut what = "";
    let result = commit_with(&*state.store, id, |r| {
        let t = state.config.incidents.get(&r.kind)?;
        let room = r.channel_id.clone()?;
        let mut c = IncidentCommit::on(r);
        if r.status == "resolved" {
            // The resolved war room's archive time came.
            c.remind_at_ms = None;
            c.items.push(plain(outbox_item(
                &team,
                &room,
                "conversations.archive",
                json!({"channel": room}),
            )));
            what = "archive";
            return Some(c);
        }
        let (next, effects) = decide(&State::of(r), &Input::Remind, "sluice", &t.reminders, now);
        if effects.is_empty() {
            return None;
        }
        c.remind_at_ms = next.remind_at_ms;
        for e in effects {
            match e {
                Effect::Timeline(l) => c.timeline.push(l),
                Effect::Say(text) => c.items.push(plain(outbox_item(
                    &team,
                    &room,
                    "chat.postMessage",
                    json!({"channel": room, "text": text}),
                ))),
                _ => {}
            }
        }
        what = "reminder";
        Some(c)
    })
    .await;
    match result {
        Ok(Some(_)) => {
            state.wake.notify_one();
            audit(
                state,
                "sluice",
                &format!("incident.{what}"),
                id,
                "ok",
                json!({}),
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(incident = %id, error = %e, "incident timer: not committed"),
    }
}
