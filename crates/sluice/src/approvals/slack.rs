//! The approval card's buttons and their modals. Approve decides at once, or — on a request that asks for a comment
//! (`approve_comment`) — opens a modal for it and decides on its submission; Reject opens a modal that requires a
//! reason (an empty one keeps the modal open with the error under the field). Who may decide is asked of Slack
//! (the approval's users, its user groups' members, the card's channel members); the requester is refused unless
//! `allow_self`. Every attempt is audited (`approval.approve`, `approval.reject`), refusals included, and a refused
//! person is told why, ephemerally.

use std::sync::Arc;

use serde_json::json;
use sluice_domain::approval::card::{
    approve_view, reject_view, ACTION_APPROVE, ACTION_APPROVE_COMMENT, ACTION_REJECT, APPROVE_VIEW,
    COMMENT, REASON, REJECT_VIEW,
};
use sluice_domain::approval::request::Approvers;
use sluice_domain::approval::{decide, Effect, Input, Refusal, State};
use sluice_inbound::models::ViewSubmission;
use sluice_inbound::{
    ActionPayload, Ctx, HandlerError, HandlerResult, Registry, Reply, ViewResponse,
};
use sluice_slack::api::Client;
use sluice_store::ApprovalRecord;

use super::apply;
use crate::alerts::Permissions;
use crate::outbox::audit;
use crate::state::{now_ms, AppState};

/// Adds the approval handlers to the registry.
pub fn register(r: &mut Registry, state: Arc<AppState>, slack: Client) {
    let (s, c) = (state.clone(), slack.clone());
    r.action(ACTION_APPROVE, move |ctx: Ctx<ActionPayload>| {
        let (s, c) = (s.clone(), c.clone());
        async move { approve(&s, &c, ctx).await }
    });
    let (s, c) = (state.clone(), slack.clone());
    // Reject opens a modal: closing it and clicking again must open it again, so each click counts (a retry of
    // one click by Slack still acts once).
    r.keyed_per_click(ACTION_REJECT);
    r.action(ACTION_REJECT, move |ctx: Ctx<ActionPayload>| {
        let (s, c) = (s.clone(), c.clone());
        async move { open_reject(&s, &c, ctx).await }
    });
    let (s, c) = (state.clone(), slack.clone());
    r.view_submission(REJECT_VIEW, move |ctx: Ctx<ViewSubmission>| {
        let (s, c) = (s.clone(), c.clone());
        async move { submit_reject(&s, &c, ctx).await }
    });
    // Approve with a comment opens a modal too: each click counts, as Reject's.
    let (s, c) = (state.clone(), slack.clone());
    r.keyed_per_click(ACTION_APPROVE_COMMENT);
    r.action(ACTION_APPROVE_COMMENT, move |ctx: Ctx<ActionPayload>| {
        let (s, c) = (s.clone(), c.clone());
        async move { open_approve(&s, &c, ctx).await }
    });
    let (s, c) = (state, slack);
    r.view_submission(APPROVE_VIEW, move |ctx: Ctx<ViewSubmission>| {
        let (s, c) = (s.clone(), c.clone());
        async move { submit_approve(&s, &c, ctx).await }
    });
}

/// May `user` decide approval `r`, looking at it in `channel`?
async fn permitted(slack: &Client, r: &ApprovalRecord, user: &str, channel: &str) -> bool {
    let a: Approvers = serde_json::from_value(r.request["approvers"].clone()).unwrap_or_default();
    if a.users.is_empty() && a.groups.is_empty() && !a.channel_members {
        // Never "everyone": a request without approvers is refused when it is made.
        return false;
    }
    Permissions::listed(a.users, a.groups, a.channel_members, slack.clone())
        .may_act(user, channel)
        .await
}

fn clicked(ctx: &Ctx<ActionPayload>) -> HandlerResult<(String, String, String)> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the click came without a user"))?;
    let id = ctx
        .payload
        .action
        .value
        .clone()
        .ok_or_else(|| HandlerError::new("this button carries no approval id"))?;
    let channel = ctx.payload.body.channel_id().unwrap_or_default();
    Ok((user, id, channel))
}

async fn load(state: &AppState, id: &str) -> HandlerResult<ApprovalRecord> {
    state
        .store
        .approval(id)
        .await
        .map_err(|e| HandlerError::new(e.to_string()))?
        .ok_or_else(|| HandlerError::new(format!("approval {id} is no longer stored")))
}

async fn approve(state: &AppState, slack: &Client, ctx: Ctx<ActionPayload>) -> HandlerResult<()> {
    let (user, id, channel) = clicked(&ctx)?;
    let record = load(state, &id).await?;
    let may = permitted(slack, &record, &user, &channel).await;
    let detail = json!({ "channel": channel, "via": "button" });
    let applied = apply(state, &id, |_| Input::Approve {
        by: user.clone(),
        permitted: may,
        comment: None,
    })
    .await;
    if let Some(why) = audited(state, &user, "approval.approve", &id, detail, applied).await? {
        ctx.reply(Reply::ephemeral(why.tell())).await?;
    }
    Ok(())
}

/// Audits what [`apply`] made of a person's decision (done, refused, failed) and hands back the refusal.
async fn audited(
    state: &AppState,
    user: &str,
    action: &str,
    id: &str,
    mut detail: serde_json::Value,
    applied: Result<Option<super::Applied>, sluice_store::StoreError>,
) -> HandlerResult<Option<Refusal>> {
    match applied {
        Ok(Some(a)) => {
            let result = a
                .refused
                .as_ref()
                .map(Refusal::audit)
                .unwrap_or_else(|| "ok".into());
            detail["state"] = json!(a.approval.state);
            audit(state, user, action, id, &result, detail).await;
            Ok(a.refused)
        }
        Ok(None) => Err(HandlerError::new(format!(
            "approval {id} is no longer stored"
        ))),
        Err(e) => {
            audit(state, user, action, id, &format!("error: {e}"), detail).await;
            Err(HandlerError::new(e.to_string()))
        }
    }
}

/// Reject: a person who could not reject is told now (and it is audited); anyone else gets the reason modal.
async fn open_reject(
    state: &AppState,
    slack: &Client,
    ctx: Ctx<ActionPayload>,
) -> HandlerResult<()> {
    open_modal(state, slack, ctx, "approval.reject", |by, permitted| {
        Input::Reject {
            by,
            permitted,
            reason: "?".into(),
        }
    })
    .await
}

/// Approve on a request that asks for a comment: a person who could not approve is told now (and it is audited);
/// anyone else gets the comment modal.
async fn open_approve(
    state: &AppState,
    slack: &Client,
    ctx: Ctx<ActionPayload>,
) -> HandlerResult<()> {
    open_modal(state, slack, ctx, "approval.approve", |by, permitted| {
        Input::Approve {
            by,
            permitted,
            comment: None,
        }
    })
    .await
}

/// A decision that asks for words first: decided as a probe (`probe(user, permitted)`) to refuse now whoever could
/// not take it (told ephemerally, audited as `action`); anyone else gets its modal.
async fn open_modal(
    state: &AppState,
    slack: &Client,
    ctx: Ctx<ActionPayload>,
    action: &str,
    probe: impl Fn(String, bool) -> Input,
) -> HandlerResult<()> {
    let (user, id, channel) = clicked(&ctx)?;
    let record = load(state, &id).await?;
    let may = permitted(slack, &record, &user, &channel).await;
    let (_, effects) = decide(&State::of(&record), probe(user.clone(), may), now_ms());
    let refused = effects.iter().find_map(|e| match e {
        Effect::Refuse { why, .. } => Some(why.clone()),
        _ => None,
    });
    if let Some(why) = refused {
        let detail = json!({ "channel": channel, "via": "button" });
        audit(state, &user, action, &id, &why.audit(), detail).await;
        ctx.reply(Reply::ephemeral(why.tell())).await?;
        return Ok(());
    }
    let view = if action == "approval.reject" {
        reject_view(&record)
    } else {
        approve_view(&record)
    };
    ctx.open_view(&view).await?;
    Ok(())
}

async fn submit_reject(
    state: &AppState,
    slack: &Client,
    ctx: Ctx<ViewSubmission>,
) -> HandlerResult<ViewResponse> {
    let (user, id, reason) = submission(&ctx, REASON)?;
    if reason.is_empty() {
        // Not a decision and nothing to audit yet: the modal stays open until a reason is given or it is closed.
        return Ok(ViewResponse::error(REASON, Refusal::NoReason.tell()));
    }
    let detail = json!({ "reason": reason });
    decide_in_modal(
        state,
        slack,
        &user,
        &id,
        "approval.reject",
        REASON,
        detail,
        |may| Input::Reject {
            by: user.clone(),
            permitted: may,
            reason: reason.clone(),
        },
    )
    .await
}

/// The comment modal's submission: the approval recorded with the comment (none when left empty).
async fn submit_approve(
    state: &AppState,
    slack: &Client,
    ctx: Ctx<ViewSubmission>,
) -> HandlerResult<ViewResponse> {
    let (user, id, comment) = submission(&ctx, COMMENT)?;
    let comment = Some(comment).filter(|c| !c.is_empty());
    let detail = json!({ "comment": comment });
    decide_in_modal(
        state,
        slack,
        &user,
        &id,
        "approval.approve",
        COMMENT,
        detail,
        |may| Input::Approve {
            by: user.clone(),
            permitted: may,
            comment: comment.clone(),
        },
    )
    .await
}

/// A decision's modal as submitted: who, on which approval, and its one field's text (`field`, trimmed).
fn submission(ctx: &Ctx<ViewSubmission>, field: &str) -> HandlerResult<(String, String, String)> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the submission came without a user"))?;
    let id = ctx.payload.view.private_metadata.clone();
    let text = ctx
        .payload
        .view
        .state
        .get(field, field)
        .and_then(|v| v.value.clone())
        .unwrap_or_default();
    Ok((user, id, text.trim().to_string()))
}

/// Decides `input(permitted)` on approval `id` for `user`, who submitted its modal; audits it as `action` (with
/// `detail`) and answers the modal: closed, or the refusal under `field`.
#[allow(clippy::too_many_arguments)]
async fn decide_in_modal(
    state: &AppState,
    slack: &Client,
    user: &str,
    id: &str,
    action: &str,
    field: &str,
    mut detail: serde_json::Value,
    input: impl Fn(bool) -> Input,
) -> HandlerResult<ViewResponse> {
    let record = load(state, id).await?;
    // The card's channel, for channel_members.
    let channel = record
        .card
        .as_ref()
        .map(|c| c.channel.clone())
        .unwrap_or_else(|| record.channel.clone());
    let may = permitted(slack, &record, user, &channel).await;
    detail["channel"] = json!(channel);
    detail["via"] = json!("modal");
    let applied = apply(state, id, |_| input(may)).await;
    Ok(
        match audited(state, user, action, id, detail, applied).await? {
            Some(why) => ViewResponse::error(field, why.tell()),
            None => ViewResponse::None,
        },
    )
}
