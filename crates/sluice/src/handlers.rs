//! Slack's way in: the handlers Sluice registers with the inbound registry (sluice-inbound), one folder per
//! workflow (`alerts/`, `approvals/`, `commands/`), and the once-keys that keep every request from Slack acting once.

use std::sync::Arc;
use std::time::Duration;

use sluice_domain::verb::{action_id, Verb};
use sluice_inbound::models::{EventCallback, SlashCommand};
use sluice_inbound::{ActionPayload, Ctx, OnceStore, Registry};
use sluice_store::Store;

use crate::alerts::{self, Permissions};
use crate::commands;
use crate::state::{now_ms, AppState};

/// Once-keys for inbound requests, kept in the store so that a retry after a restart, or on
/// another replica, is still recognised.
pub struct StoreOnce(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl OnceStore for StoreOnce {
    async fn first_time(&self, key: &str, ttl: Duration) -> Result<bool, String> {
        self.0
            .first_time(key, now_ms(), ttl.as_millis() as i64)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The handlers Sluice answers Slack with.
pub fn registry(state: Arc<AppState>, permissions: Arc<Permissions>, command: &str) -> Registry {
    let mut r = Registry::new();
    let permissions_slack = permissions.slack().clone();
    let commands = Arc::new(commands::Commands::new(
        &state,
        permissions.clone(),
        permissions_slack.clone(),
    ));
    for verb in Verb::ALL {
        let (state, permissions) = (state.clone(), permissions.clone());
        r.action(action_id(verb), move |ctx: Ctx<ActionPayload>| {
            let (state, permissions) = (state.clone(), permissions.clone());
            async move { alerts::clicked(&state, &permissions, verb, ctx).await }
        });
    }
    let (s, p) = (state.clone(), permissions.clone());
    r.event("reaction_added", move |ctx: Ctx<EventCallback>| {
        let (s, p) = (s.clone(), p.clone());
        async move {
            // An incident's reaction (a note in a war room, an escalation in a watched channel) is the incident's.
            if crate::incidents::reacted(&s, p.slack(), &ctx).await? {
                return Ok(());
            }
            alerts::reacted(&s, &p, ctx).await
        }
    });
    crate::incidents::register(&mut r, state.clone(), permissions_slack.clone());
    crate::approvals::register(&mut r, state.clone(), permissions_slack);
    crate::actions::register(&mut r, state.clone(), permissions.clone());
    commands::register_confirmations(&mut r, state.clone(), commands.clone());
    crate::forms::register(&mut r, state.clone(), commands.clone());
    crate::steps::register(&mut r, state.clone(), permissions.clone());
    let s = state.clone();
    r.command(command, move |ctx: Ctx<SlashCommand>| {
        let (s, c) = (s.clone(), commands.clone());
        async move { commands::slash_command(&s, &c, ctx).await }
    });
    let s = state;
    r.event("app_mention", move |ctx: Ctx<EventCallback>| {
        let s = s.clone();
        async move { commands::mention(&s, ctx).await }
    });
    r
}
