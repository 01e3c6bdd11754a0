//! Buttons on ephemeral messages (a confirmation a slash command answered with), as Slack has them: the user clicks
//! one ([`Simulator::click_ephemeral_button`]): a `block_actions` whose container says `is_ephemeral`, with no
//! `message` (Slack keeps no copy of an ephemeral to send back), and a response_url bound to that ephemeral, which
//! can replace or delete it ([`on_ephemeral`]) and nothing else can (ephemerals have no `chat.update`).

use serde_json::{json, Map, Value};

use super::{
    action_ts, find_action, team_json, user_json, Kind, Outgoing, SimError, VERIFICATION_TOKEN,
};
use crate::api::{self, ApiError};
use crate::state::{ResponseUrl, State};
use crate::Simulator;

impl Simulator {
    /// `user` clicks the button `action_id` on their ephemeral message `ts` (see [`Simulator::ephemerals`]).
    pub async fn click_ephemeral_button(
        &self,
        user: &str,
        ts: &str,
        action_id: &str,
    ) -> Result<super::Delivered, SimError> {
        let out = {
            let mut state = self.lock();
            let now = state.clock.now();
            let user_v = user_json(&state, user)?;
            let e = state
                .ephemerals
                .iter()
                .find(|e| e.ts == ts && e.user == user)
                .cloned()
                .ok_or_else(|| SimError::UnknownMessage {
                    channel: "(ephemeral)".into(),
                    ts: ts.to_string(),
                })?;
            let mut blocks = e.blocks.clone();
            let (block_id, element) =
                find_action(&mut blocks, action_id).ok_or_else(|| SimError::UnknownAction {
                    ts: ts.to_string(),
                    action_id: action_id.to_string(),
                })?;
            let mut action = json!({
                "action_id": action_id,
                "block_id": block_id,
                "type": element.get("type").cloned().unwrap_or(json!("button")),
                "action_ts": action_ts(&state, now),
            });
            for key in ["text", "value", "style"] {
                if let Some(v) = element.get(key) {
                    action[key] = v.clone();
                }
            }
            let channel_name = state
                .channel_index(&e.channel)
                .map(|i| state.channels[i].name.clone())
                .unwrap_or_default();
            let trigger_id = state.issue_trigger_for(Some(user), now);
            let response_url =
                state.issue_response_url(user, Some(e.channel.clone()), Some(e.ts.clone()), now);
            let payload = json!({
                "type": "block_actions",
                "user": user_v,
                "api_app_id": state.cfg.app_id,
                "token": VERIFICATION_TOKEN,
                "container": {
                    "type": "message", "message_ts": e.ts, "channel_id": e.channel,
                    "is_ephemeral": true,
                },
                "trigger_id": trigger_id,
                "team": team_json(&state),
                "enterprise": null,
                "is_enterprise_install": false,
                "channel": {"id": e.channel, "name": channel_name},
                "state": {"values": {}},
                "response_url": response_url,
                "actions": [action],
            });
            Outgoing::new(Kind::Interactions, payload, false)
        };
        self.deliver(out).await
    }
}

/// A response_url bound to an ephemeral message asked to replace or delete the original: done here. `None` when the
/// URL is not bound to an ephemeral (or the request does neither): the caller handles it as before.
pub(crate) fn on_ephemeral(
    state: &mut State,
    ru: &ResponseUrl,
    args: &Map<String, Value>,
    replace: bool,
    delete: bool,
) -> Option<Result<(), ApiError>> {
    if !replace && !delete {
        return None;
    }
    let ts = ru.message_ts.as_deref()?;
    let i = state
        .ephemerals
        .iter()
        .position(|e| e.ts == ts && e.user == ru.user)?;
    if delete {
        state.ephemerals.remove(i);
        return Some(Ok(()));
    }
    Some(api::content(args).map(|c| {
        let e = &mut state.ephemerals[i];
        e.text = c.text;
        e.blocks = if c.blocks.is_null() {
            json!([])
        } else {
            c.blocks
        };
    }))
}
