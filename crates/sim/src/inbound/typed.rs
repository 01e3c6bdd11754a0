//! What a person does in the page's message box and modals beyond clicks and commands: a plain message (or a thread
//! reply) shows in the channel and reaches the app as a `message` event ([`Simulator::user_message`]); closing a
//! modal hides it and, when the app asked with `notify_on_close`, sends `view_closed` ([`Simulator::close_view`]).

use serde_json::{json, Value};

use super::{team_json, user_json, view_payload, Delivered, Kind, Outgoing, SimError};
use crate::api::{self, Content};
use crate::Simulator;

impl Simulator {
    /// `user` types `text` in `channel` (in the thread of `thread_ts` if given): the message is posted as theirs, then
    /// the app is sent the `message` event Slack would send. `None` when the app cannot be reached: the message is
    /// there all the same, as in Slack.
    pub async fn user_message(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Result<Option<Delivered>, SimError> {
        let (event, reachable) = {
            let mut state = self.lock();
            let now = state.clock.now();
            user_json(&state, user)?;
            let ci = state
                .channel_index(channel)
                .ok_or_else(|| SimError::UnknownChannel(channel.to_string()))?;
            // As with `post_as_user`: an archived channel refuses, a private one only takes its members, a public
            // one is joined by posting.
            let ch = &mut state.channels[ci];
            if ch.is_archived {
                return Err(SimError::Refused("is_archived".into()));
            }
            if ch.is_private && !ch.members.contains(user) {
                return Err(SimError::Refused(format!(
                    "{user} is not in the private channel {}",
                    ch.name
                )));
            }
            ch.members.insert(user.to_string());
            // Slack's client escapes what was typed before it is stored or sent: `<b>` is text, not a link.
            let text = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            let content = Content {
                text,
                blocks: Value::Null,
                attachments: None,
                metadata: None,
            };
            let mut msg = api::post(
                &mut state,
                ci,
                content,
                thread_ts.map(String::from),
                false,
                now,
            )
            .map_err(|e| SimError::Refused(e.body().to_string()))?;
            let ch = &mut state.channels[ci];
            if let Some(m) = ch.find_mut(&msg.ts) {
                m.user = user.to_string();
            }
            msg.user = user.to_string();
            let channel_type = if ch.is_im {
                "im"
            } else if ch.is_private {
                "group"
            } else {
                "channel"
            };
            let mut event = json!({
                "type": "message",
                "channel": msg.channel,
                "user": user,
                "text": msg.text,
                "ts": msg.ts,
                "event_ts": msg.ts,
                "channel_type": channel_type,
                "team": state.cfg.team_id,
            });
            if let Some(parent) = &msg.thread_ts {
                event["thread_ts"] = json!(parent);
            }
            let reachable = state.cfg.app_base_url.is_some() || state.socket.open_count() > 0;
            (event, reachable)
        };
        if !reachable {
            return Ok(None);
        }
        self.send_event(event).await.map(Some)
    }

    /// `user` closes modal `view_id` (Cancel or ×). It is no longer shown; if the app set `notify_on_close`, it
    /// gets a `view_closed` with the inputs as they were.
    pub async fn close_view(
        &self,
        view_id: &str,
        user: &str,
        values: Value,
    ) -> Result<Option<Delivered>, SimError> {
        let out = {
            let mut state = self.lock();
            let user_v = user_json(&state, user)?;
            let v = state
                .views
                .get(view_id)
                .filter(|v| v.kind == "modal")
                .cloned()
                .ok_or_else(|| SimError::UnknownView(view_id.to_string()))?;
            state.closed_views.insert(v.id.clone());
            state.view_errors.remove(&v.id);
            if v.definition.get("notify_on_close").and_then(Value::as_bool) != Some(true) {
                return Ok(None);
            }
            let payload = json!({
                "type": "view_closed",
                "team": team_json(&state),
                "user": user_v,
                "api_app_id": state.cfg.app_id,
                "token": super::VERIFICATION_TOKEN,
                "view": view_payload(&state, &v, values),
                "is_cleared": false,
                "enterprise": null,
                "is_enterprise_install": false,
            });
            Outgoing::new(Kind::Interactions, payload, false)
        };
        self.deliver(out).await.map(Some)
    }
}
