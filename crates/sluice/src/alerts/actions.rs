//! The alert actions from Slack: a click on a card's button or the acknowledging reaction becomes an [`Act`], and
//! [`take`] checks it, asks the alert lifecycle (`alert::decide`) what it means, records the decision, carries out
//! the effects through the context's outbox port and audits it: load → decide → commit → enqueue, the shape every
//! workflow's handler follows.

use serde_json::{json, Value};
use sluice_core::event::{Event, Kind};
use sluice_core::render::RenderContext;
use sluice_core::route::Decision;
use sluice_domain::alert::{
    self, decide, escalation, resolved_reply, Effect, EscalateTo, Input, OnCard, State,
};
use sluice_domain::living::{self, Part};
use sluice_domain::outbox::outbox_item;
use sluice_domain::pipeline::card_template;
use sluice_domain::silence::identity_matchers;
use sluice_domain::verb::{decided, Verb};
use sluice_inbound::models::{EventCallback, SlashCommand};
use sluice_inbound::{ActionPayload, Ctx, HandlerError, HandlerResult, Outbox, Reply, Writes};
use sluice_slack_wire::blocks::fit_message;
use sluice_store::{AckOutcome, AlertAction, FollowUp, NewOutboxItem, NewSilence};

use super::Permissions;
use crate::outbox::audit;
use crate::state::{now, now_ms, AppState};

/// Someone acting on a card, however they did it.
struct Act {
    verb: Verb,
    user: String,
    /// Any event of the alert (the card's buttons carry its first event's id).
    event_id: String,
    /// The card: channel id and ts.
    channel: String,
    ts: String,
    /// `"button"` or `"reaction"`, for the audit log.
    via: &'static str,
    /// The alert's event, when the handler already read it (a reaction checks it is an alert's card).
    event: Option<Event>,
}

/// How the person who acted hears back.
enum Answer<'a> {
    /// Through the click's `response_url`.
    Click(&'a Ctx<ActionPayload>),
    /// A reaction has no `response_url`: `chat.postEphemeral` through the outbox. Only refusals are said; a
    /// reaction on an alert someone already acknowledged is just a reaction.
    Reaction(&'a Ctx<EventCallback>),
    /// `/ops ack <alert>`: answered through the command's `response_url`, success included (there is no click to
    /// see the card change under).
    Command(&'a Ctx<SlashCommand>),
}

impl Answer<'_> {
    /// The handler context's outbox port: every write of an action goes through it.
    fn outbox(&self) -> &dyn Outbox {
        match self {
            Answer::Click(ctx) => &*ctx.outbox,
            Answer::Reaction(ctx) => &*ctx.outbox,
            Answer::Command(ctx) => &*ctx.outbox,
        }
    }
}

pub async fn clicked(
    state: &AppState,
    permissions: &Permissions,
    verb: Verb,
    ctx: Ctx<ActionPayload>,
) -> HandlerResult<()> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the click came without a user"))?;
    let event_id = ctx
        .payload
        .action
        .value
        .clone()
        .ok_or_else(|| HandlerError::new("this button carries no alert id"))?;
    let body = &ctx.payload.body;
    let channel = body
        .channel_id()
        .ok_or_else(|| HandlerError::new("the click came without a channel"))?;
    let ts = body
        .message_ts()
        .ok_or_else(|| HandlerError::new("the click came without a message"))?;
    let act = Act {
        verb,
        user,
        event_id,
        channel,
        ts,
        via: "button",
        event: None,
    };
    take(state, permissions, act, Answer::Click(&ctx)).await
}

/// `reaction_added`: the configured emoji on one of our alert cards acknowledges the alert, exactly like the
/// button. Any other reaction, or one on a message that is not an alert card, is none of our business.
pub async fn reacted(
    state: &AppState,
    permissions: &Permissions,
    ctx: Ctx<EventCallback>,
) -> HandlerResult<()> {
    let Some(wanted) = state.config.actions.ack_reaction.as_deref() else {
        return Ok(());
    };
    let Some(event) = ctx.payload.event.as_ref() else {
        return Ok(());
    };
    // Skin tones arrive as "thumbsup::skin-tone-2".
    let reaction = event.raw["reaction"].as_str().unwrap_or_default();
    if reaction.split("::").next() != Some(wanted) {
        return Ok(());
    }
    let item = &event.raw["item"];
    let (Some("message"), Some(channel), Some(ts), Some(user)) = (
        item["type"].as_str(),
        item["channel"].as_str(),
        item["ts"].as_str(),
        event.user.as_deref(),
    ) else {
        return Ok(());
    };
    let Some(event_id) = state
        .store
        .event_of_message(channel, ts)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
    else {
        return Ok(());
    };
    let Some(event) = state
        .store
        .event(&event_id)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
        .and_then(|s| serde_json::from_value::<Event>(s.body).ok())
        .filter(|e| e.kind == Kind::Alert)
    else {
        return Ok(());
    };
    let act = Act {
        verb: Verb::Ack,
        user: user.to_string(),
        event_id,
        channel: channel.to_string(),
        ts: ts.to_string(),
        via: "reaction",
        event: Some(event),
    };
    take(state, permissions, act, Answer::Reaction(&ctx)).await
}

/// `/ops ack <alert>`: Acknowledge from a slash command, on the alert whose card is `channel`/`ts` (any event of the
/// alert as `event_id`), through the same path as the card's button: permissions, `alert::decide`, the card refreshed,
/// audited.
pub async fn acknowledge_from_command(
    state: &AppState,
    permissions: &Permissions,
    ctx: &Ctx<SlashCommand>,
    event_id: String,
    channel: String,
    ts: String,
) -> HandlerResult<()> {
    let act = Act {
        verb: Verb::Ack,
        user: ctx.payload.user_id.clone(),
        event_id,
        channel,
        ts,
        via: "command",
        event: None,
    };
    take(state, permissions, act, Answer::Command(ctx)).await
}

/// Tells `act.user` something only they see, in the card's channel.
async fn tell(state: &AppState, act: &Act, answer: &Answer<'_>, text: String) -> HandlerResult<()> {
    match answer {
        Answer::Click(ctx) => Ok(ctx.reply(Reply::ephemeral(text)).await?),
        Answer::Command(ctx) => Ok(ctx.reply(Reply::ephemeral(text)).await?),
        Answer::Reaction(ctx) => {
            let args = json!({ "channel": act.channel, "user": act.user, "text": text });
            let item = outbox_item(
                &state.config.slack.team_id,
                &act.channel,
                "chat.postEphemeral",
                args,
            );
            let writes = Writes {
                what: format!("alert.{}", act.verb.as_str()),
                detail: json!({ "actor": act.user }),
                items: vec![item],
                follow_up: None,
            };
            ctx.outbox.commit(writes).await.map_err(HandlerError::new)
        }
    }
}

/// Checks, decides once, carries out and audits one action on an alert card.
async fn take(
    state: &AppState,
    permissions: &Permissions,
    mut act: Act,
    answer: Answer<'_>,
) -> HandlerResult<()> {
    let verb = act.verb;
    let action = format!("alert.{}", verb.as_str());
    let target = format!("{} {}:{}", act.event_id, act.channel, act.ts);
    let mut detail =
        json!({ "event_id": act.event_id, "channel": act.channel, "ts": act.ts, "via": act.via });
    let user = act.user.as_str();
    let cfg = &state.config.actions;

    if !permissions.may_act(user, &act.channel).await {
        audit(
            state,
            user,
            &action,
            &target,
            "refused: not allowed",
            detail,
        )
        .await;
        return tell(
            state,
            &act,
            &answer,
            format!(
                "You are not allowed to {} alerts here. Ask an admin to add you to `[actions]` in sluice.toml.",
                verb.infinitive()
            ),
        )
        .await;
    }
    if verb == Verb::Escalate && !cfg.can_escalate() {
        audit(
            state,
            user,
            &action,
            &target,
            "refused: not configured",
            detail,
        )
        .await;
        return tell(
            state,
            &act,
            &answer,
            "Escalation is not configured. Ask an admin to set `escalate_group` or `escalate_channel` under `[actions]` in sluice.toml.".into(),
        )
        .await;
    }
    // Whatever comes of it from here on — done, refused as already decided, or failed, even after the decision
    // was recorded — is audited once, below; a refusal is told to the user only after its audit line is written.
    let read = act.event.take();
    let outcome: Result<(String, Option<String>), Failure> = async {
        let event: Event = match read {
            Some(event) => event,
            None => {
                let stored = state
                    .store
                    .event(&act.event_id)
                    .await
                    .map_err(|e| HandlerError::new(e.to_string()))?
                    .ok_or_else(|| {
                        HandlerError::new(format!("alert {} is no longer stored", act.event_id))
                    })?;
                serde_json::from_value(stored.body).map_err(|e| {
                    HandlerError::new(format!("alert {} cannot be read: {e}", act.event_id))
                })?
            }
        };

        // Load → decide: what the decision means comes from the alert lifecycle, given the decisions already taken.
        let at_ms = now_ms();
        let decisions = state
            .store
            .alert_actions(&act.event_id)
            .await
            .map_err(|e| HandlerError::new(e.to_string()))?
            .into_iter()
            .map(|(action, actor, at_ms)| AlertAction { action, actor, at_ms })
            .collect();
        let input = Input::Decided { verb, actor: user, at_ms };
        let (_, effects) = decide(&State::deciding(decisions), &input);
        let on_card = OnCard {
            team: &state.config.slack.team_id,
            channel: &act.channel,
            ts: &act.ts,
            user,
        };
        let mut outbox = Vec::new();
        let mut follow_up = None;
        for effect in effects {
            match effect {
                Effect::AlreadyDecided { by, at_ms, .. } => {
                    return Ok(already(&act, &answer, &by, at_ms));
                }
                // Commit: the store keeps the first decision of each verb, so of two clicks at once one wins.
                Effect::Record { at_ms, .. } => match state
                    .store
                    .record_alert_action(&act.event_id, verb.as_str(), user, at_ms)
                    .await
                    .map_err(|e| HandlerError::new(e.to_string()))?
                {
                    AckOutcome::AlreadyBy { actor, at_ms } => {
                        return Ok(already(&act, &answer, &actor, at_ms));
                    }
                    AckOutcome::Recorded => {}
                },
                Effect::Silence { until_ms } => {
                    let silence = NewSilence {
                        matchers: identity_matchers(&event),
                        starts_at_ms: at_ms,
                        ends_at_ms: until_ms,
                        author: user.to_string(),
                        comment: "from Slack".into(),
                    };
                    let created = match state.store.create_silence(silence, at_ms).await {
                        Ok(s) => s,
                        Err(e) => {
                            return Err(Failure {
                                audit: format!("error: the silence could not be created: {e}"),
                                error: HandlerError::new(format!(
                                    "the alert is marked silenced but the silence could not be created ({e}); create it with POST /v1/silences"
                                )),
                            });
                        }
                    };
                    if let Err(e) = state.refresh_silences(true).await {
                        tracing::warn!(error = %e, "silences not reloaded; the next refresh will");
                    }
                    detail["silence"] = json!({ "id": created.id, "ends_at_ms": created.ends_at_ms, "matchers": created.matchers });
                }
                Effect::ReplyResolved => outbox.push(resolved_reply(&on_card, at_ms)),
                Effect::Escalate => {
                    // A read, not a write: the link goes into the escalation message.
                    let link = match permissions
                        .slack
                        .chat_get_permalink(&act.channel, &act.ts)
                        .await
                    {
                        Ok(link) => Some(link),
                        Err(e) => {
                            tracing::warn!(error = %e, "no permalink for the escalated card; naming channel and ts instead");
                            None
                        }
                    };
                    let cfg = &state.config.actions;
                    let to = EscalateTo {
                        channel: cfg.escalate_channel.as_deref(),
                        group: cfg.escalate_group.as_deref(),
                    };
                    outbox.extend(escalation(&on_card, &to, &event, link.as_deref(), at_ms));
                }
                Effect::RefreshCards => {
                    let (refresh, f) = card_refresh(state, &act, &event).await?;
                    outbox.extend(refresh);
                    follow_up = f;
                }
                other => {
                    return Err(HandlerError::new(format!(
                        "the alert lifecycle answered a decision with {other:?}"
                    ))
                    .into())
                }
            }
        }
        // Enqueue: the decision's messages and card refreshes, one commit through the context's outbox port.
        let writes = Writes {
            what: action.clone(),
            detail: json!({ "actor": user, "target": target }),
            items: outbox,
            follow_up,
        };
        answer
            .outbox()
            .commit(writes)
            .await
            .map_err(HandlerError::new)?;
        if let Answer::Command(_) = &answer {
            tell(state, &act, &answer, format!("Done: {} the alert.", verb.past())).await?;
        }
        Ok(("ok".to_string(), None))
    }
    .await;
    match outcome {
        Ok((result, said)) => {
            audit(state, user, &action, &target, &result, detail).await;
            if let Some(said) = said {
                tell(state, &act, &answer, said).await?;
            }
            Ok(())
        }
        Err(Failure {
            audit: result,
            error,
        }) => {
            audit(state, user, &action, &target, &result, detail).await;
            Err(error)
        }
    }
}

/// Why carrying out an action failed, and the result the audit log records for it.
struct Failure {
    audit: String,
    error: HandlerError,
}

impl From<HandlerError> for Failure {
    fn from(error: HandlerError) -> Self {
        Failure {
            audit: format!("error: {error}"),
            error,
        }
    }
}

/// The decision was taken already (by `actor` at `at_ms`): what the audit log records, and what a clicker is told
/// once it is recorded (a reaction is just a reaction: nobody is told).
fn already(act: &Act, answer: &Answer<'_>, actor: &str, at_ms: i64) -> (String, Option<String>) {
    let verb = act.verb;
    let result = format!("refused: already {} by {actor}", verb.past());
    let said = matches!(answer, Answer::Click(_) | Answer::Command(_))
        .then(|| format!("Already {} {}.", verb.past(), decided(verb, actor, at_ms)));
    (result, said)
}

/// How the card shows a new decision. A deduplicated alert's cards are refreshed through the living-message path
/// (a follow-up: rendered at send time from the alert as it stands, count and all, coalesced with refreshes that
/// are already waiting), in every channel the alert was routed to. An alert without a dedup key has no duplicates,
/// so its card is rendered now, from the event, with count 1.
async fn card_refresh(
    state: &AppState,
    act: &Act,
    event: &Event,
) -> HandlerResult<(Vec<NewOutboxItem>, Option<FollowUp>)> {
    let team = &state.config.slack.team_id;
    // A group's card (noise control) is the flusher's to render: make the group due now and it is redrawn, with
    // the decision on it, at the next tick.
    if let Err(e) = state.store.touch_groups(&act.event_id, now_ms()).await {
        tracing::warn!(error = %e, "the group card was not marked for a refresh; it shows the decision at its next change");
    }
    if let Some(refresh) = living_refresh(state, event) {
        return Ok((
            Vec::new(),
            Some(FollowUp {
                alert_of: act.event_id.clone(),
                refresh,
            }),
        ));
    }
    let update = rendered_card(state, act, event).await?;
    Ok((
        vec![outbox_item(team, &act.channel, "chat.update", update)],
        None,
    ))
}

/// The living refreshes of a deduplicated alert's cards, one per channel it was routed to (each rendered at send
/// time from the alert as it stands); `None` for an event without a dedup key, whose card is redrawn at once.
pub fn living_refresh(state: &AppState, event: &Event) -> Option<Vec<NewOutboxItem>> {
    event.dedup_key.as_ref()?;
    let Decision::Deliver { deliveries, .. } = state.config.router.route(event) else {
        return None;
    };
    let team = &state.config.slack.team_id;
    Some(
        deliveries
            .iter()
            .map(|d| living::item(team, &d.channel, "chat.update", Part::Card, &d.template))
            .collect(),
    )
}

/// The template event `event_id`'s card in `channel` at `ts` was posted with (its route's), `auto` if none is found.
pub async fn template_of(
    state: &AppState,
    event: &Event,
    event_id: &str,
    channel: &str,
    ts: &str,
) -> Result<String, sluice_store::StoreError> {
    let posts = state.store.message_of(event_id).await?;
    Ok(
        card_template(&state.config.router, event, &posts, channel, ts)
            .unwrap_or_else(|| "auto".to_string()),
    )
}

/// The card of an alert without duplicates as it should look now: rendered from its event with its route's
/// template (`alert::card`, the one card function: resolved if someone resolved it, a line per recorded decision,
/// no button for what is done, the status of its `[[action]]` runs).
async fn rendered_card(state: &AppState, act: &Act, event: &Event) -> HandlerResult<Value> {
    let actions = state
        .store
        .alert_actions(&act.event_id)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?;
    let template = template_of(state, event, &act.event_id, &act.channel, &act.ts)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?;
    let ctx = RenderContext {
        event_id: &act.event_id,
        channel: &act.channel,
        template: &template,
        count: 1,
        now: now(),
    };
    let runs = crate::actions::shown_runs(&*state.store, &state.config.action_defs, &act.event_id)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?;
    let mut args = alert::card(&state.config.renderer, event, &ctx, None, &actions, &runs)
        .map_err(|e| HandlerError::new(e.to_string()))?;
    args["channel"] = json!(act.channel);
    args["ts"] = json!(act.ts);
    fit_message(&mut args);
    Ok(args)
}
