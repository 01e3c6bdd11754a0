//! How an approval looks in Slack: its card ([`card`]: Approve / Reject while pending; who decided, when and why
//! once final, without buttons), the reject modal ([`reject_view`]) and the JSON the API and the callback send
//! ([`to_json`]).

use serde_json::{json, Value};
use sluice_model::ApprovalRecord;
use sluice_slack_wire::blocks::{escape_mrkdwn, fit_message, truncate};

use super::{who, State, Status};
use crate::clock::clock;

pub const ACTION_APPROVE: &str = "sluice_approval_approve";
/// Approve on a request that asks for a comment: it opens [`approve_view`].
pub const ACTION_APPROVE_COMMENT: &str = "sluice_approval_approve_comment";
/// The approve modal's `callback_id`; its `private_metadata` is the approval's id.
pub const APPROVE_VIEW: &str = "sluice_approval_approve";
/// The comment input's block and action id.
pub const COMMENT: &str = "comment";
pub const ACTION_REJECT: &str = "sluice_approval_reject";
/// The reject modal's `callback_id`; its `private_metadata` is the approval's id.
pub const REJECT_VIEW: &str = "sluice_approval_reject";
/// The reason input's block and action id.
pub const REASON: &str = "reason";
pub const ACTIONS_BLOCK: &str = "sluice_approval";

fn verdict_line(verdict: &str) -> &'static str {
    match verdict {
        "approve" => "Approved",
        "reject" => "Rejected",
        "cancel" => "Cancelled",
        _ => "Expired",
    }
}

/// The card's `chat.postMessage` (or, with `ts` added by the dispatcher, `chat.update`) arguments.
pub fn card(r: &ApprovalRecord) -> Value {
    let state = State::of(r);
    let req = &r.request;
    let title = req["title"].as_str().unwrap_or("Approval requested");
    let icon = match state.status {
        Status::Pending => "🔐",
        Status::Approved => "✅",
        Status::Rejected => "⛔",
        Status::Expired => "⌛",
        Status::Cancelled => "🚫",
    };
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&format!("{icon} {title}"), 150)},
    })];
    if let Some(text) = req["text"].as_str().filter(|t| !t.is_empty()) {
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": escape_mrkdwn(text)}}),
        );
    }
    if let Some(fields) = req["fields"].as_object().filter(|f| !f.is_empty()) {
        let fields: Vec<Value> = fields
            .iter()
            .take(10)
            .map(|(k, v)| {
                let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                json!({"type": "mrkdwn", "text": format!("*{}*\n{}", escape_mrkdwn(k), escape_mrkdwn(&v))})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if let Some(links) = req["links"].as_array().filter(|l| !l.is_empty()) {
        let text = links
            .iter()
            .filter_map(|l| {
                let (text, url) = (l["text"].as_str()?, l["url"].as_str()?);
                Some(format!(
                    "<{}|{}>",
                    url.replace(['|', '>', '<'], ""),
                    escape_mrkdwn(text).replace('|', "")
                ))
            })
            .collect::<Vec<_>>()
            .join(" · ");
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    let approvers = state.approvers();
    let mut context = format!(
        "Requested by {} · needs {} approval{}",
        who(&r.requester),
        r.required,
        if r.required == 1 { "" } else { "s" }
    );
    if state.status == Status::Pending {
        context.push_str(&format!(" · expires {}", clock(r.expires_at_ms)));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    let mut lines: Vec<String> = r
        .decisions
        .iter()
        .map(|d| {
            let by = if d.verdict == "expire" {
                String::new()
            } else {
                format!(" by {}", who(&d.actor))
            };
            let why = d
                .reason
                .as_deref()
                .map(|r| format!(": {}", escape_mrkdwn(r)))
                .unwrap_or_default();
            format!(
                "*{}*{by} at {}{why}",
                verdict_line(&d.verdict),
                clock(d.at_ms)
            )
        })
        .collect();
    if state.status == Status::Pending && !approvers.is_empty() {
        lines.push(format!(
            "{} of {} approvals so far",
            approvers.len(),
            r.required
        ));
    }
    if !lines.is_empty() {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}}));
    }
    if state.status == Status::Pending {
        let approve = if asks_comment(r) {
            ACTION_APPROVE_COMMENT
        } else {
            ACTION_APPROVE
        };
        blocks.push(json!({
            "type": "actions",
            "block_id": ACTIONS_BLOCK,
            "elements": [
                {"type": "button", "action_id": approve, "style": "primary", "value": r.id,
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": ACTION_REJECT, "style": "danger", "value": r.id,
                 "text": {"type": "plain_text", "text": "Reject"}},
            ],
        }));
    }
    let text = match state.status {
        Status::Pending => format!("Approval requested: {title}"),
        s => format!("{title}: {}", s.as_str()),
    };
    let mut msg = json!({
        "channel": r.channel,
        "text": escape_mrkdwn(&text),
        "blocks": blocks,
        "metadata": {"event_type": "sluice_approval", "event_payload": {"approval_id": r.id}},
    });
    fit_message(&mut msg);
    msg
}

/// What the card, its thread and the callback say when an approved request's `[[action]]` (`label`) could not start
/// (`reason`: it is no longer configured, its templates failed): "⚠️ Approved, but Restart could not start: …".
pub fn not_started(label: &str, reason: &str) -> String {
    format!(
        "⚠️ Approved, but {} could not start: {}",
        escape_mrkdwn(label),
        truncate(&escape_mrkdwn(reason), 500)
    )
}

/// `card` (the arguments [`card`] returns) with `line` under what it shows.
pub fn with_line(mut card: Value, line: &str) -> Value {
    if let Some(blocks) = card["blocks"].as_array_mut() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": line}}));
    }
    fit_message(&mut card);
    card
}

/// Whether Approve asks for a comment first (the request's `approve_comment`).
pub fn asks_comment(r: &ApprovalRecord) -> bool {
    r.request["approve_comment"] == true
}

/// The modal Approve opens when the request asks for a comment: the comment, optional, recorded with the approval.
pub fn approve_view(r: &ApprovalRecord) -> Value {
    decision_view(r, APPROVE_VIEW, "Approve", COMMENT, "Comment")
}

/// The modal Reject opens: one reason field, required (checked on submission so the error shows under it).
pub fn reject_view(r: &ApprovalRecord) -> Value {
    decision_view(r, REJECT_VIEW, "Reject", REASON, "Reason")
}

/// A decision's modal: "<verb> *<title>*?" and one multi-line text field (`field` its block and action id).
fn decision_view(
    r: &ApprovalRecord,
    callback_id: &str,
    verb: &str,
    field: &str,
    label: &str,
) -> Value {
    let title = r.request["title"].as_str().unwrap_or("this request");
    json!({
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": r.id,
        "title": {"type": "plain_text", "text": format!("{verb} request")},
        "submit": {"type": "plain_text", "text": verb},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{verb} *{}*?", escape_mrkdwn(&truncate(title, 200)))}},
            {"type": "input", "block_id": field, "optional": true,
             "label": {"type": "plain_text", "text": label},
             "element": {"type": "plain_text_input", "action_id": field, "multiline": true}},
        ],
    })
}

/// The approval as `GET /v1/approvals/{id}` and the callback give it.
pub fn to_json(r: &ApprovalRecord) -> Value {
    json!({
        "id": r.id,
        "state": r.state,
        "title": r.request["title"],
        "requester": r.requester,
        "required": r.required,
        "allow_self": r.allow_self,
        "approvers": r.request["approvers"],
        "created_at_ms": r.created_at_ms,
        "expires_at_ms": r.expires_at_ms,
        "decided_at_ms": r.decided_at_ms,
        "decisions": r.decisions,
        "channel": r.card.as_ref().map(|c| c.channel.clone()),
        "ts": r.card.as_ref().map(|c| c.ts.clone()),
        "request": r.request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::ApprovalDecision;

    fn record(state: &str, decisions: Vec<ApprovalDecision>) -> ApprovalRecord {
        ApprovalRecord {
            id: "apr_1".into(),
            idempotency_key: None,
            request: json!({"title": "Deploy <!channel>", "text": "v1.2 to prod", "fields": {"env": "prod"},
                            "links": [{"text": "run", "url": "https://ci.internal/run/1"}]}),
            requester: "U0REQ".into(),
            state: state.into(),
            required: 2,
            allow_self: false,
            team: "T1".into(),
            channel: "C1".into(),
            created_at_ms: 0,
            expires_at_ms: 3_600_000,
            decided_at_ms: None,
            version: 0,
            decisions,
            card_item_id: Some(1),
            card: None,
        }
    }

    fn d(actor: &str, verdict: &str, reason: Option<&str>) -> ApprovalDecision {
        ApprovalDecision {
            actor: actor.into(),
            verdict: verdict.into(),
            reason: reason.map(str::to_string),
            at_ms: 60_000,
        }
    }

    #[test]
    fn a_pending_card_has_both_buttons_and_escapes_outside_text() {
        let c = card(&record("pending", vec![d("U1", "approve", None)]));
        let s = c.to_string();
        assert!(
            s.contains(ACTION_APPROVE) && s.contains(ACTION_REJECT),
            "{s}"
        );
        // Only the header holds the title as it came, and a header is plain_text, which Slack never parses.
        assert_eq!(s.matches("<!channel>").count(), 1, "{s}");
        assert_eq!(c["blocks"][0]["text"]["type"], "plain_text");
        assert!(c["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
        assert!(s.contains("1 of 2 approvals so far"), "{s}");
        let problems = sluice_slack_wire::blocks::check_message(&c);
        assert!(problems.is_empty(), "{problems:?}");
    }

    /// A request that asks for a comment: its Approve opens the comment modal; the comment shows once approved.
    #[test]
    fn approve_asks_for_a_comment_when_the_request_says_so() {
        let mut r = record("pending", vec![]);
        assert_eq!(
            card(&r)["blocks"]
                .to_string()
                .matches(ACTION_APPROVE_COMMENT)
                .count(),
            0
        );
        r.request["approve_comment"] = json!(true);
        let c = card(&r);
        let buttons = &c["blocks"].as_array().unwrap().last().unwrap()["elements"];
        assert_eq!(buttons[0]["action_id"], ACTION_APPROVE_COMMENT);
        assert_eq!(buttons[1]["action_id"], ACTION_REJECT);
        let v = approve_view(&r);
        assert_eq!(
            (v["callback_id"].as_str(), v["private_metadata"].as_str()),
            (Some(APPROVE_VIEW), Some("apr_1"))
        );
        assert_eq!(v["blocks"][1]["block_id"], COMMENT);
        assert_eq!(v["blocks"][1]["optional"], true);
        assert_eq!(v["submit"]["text"], "Approve");
        assert_eq!(reject_view(&r)["submit"]["text"], "Reject");
        let approved = card(&record(
            "approved",
            vec![d("U1", "approve", Some("ship it"))],
        ));
        assert!(approved.to_string().contains("ship it"), "{approved}");
    }

    #[test]
    fn a_final_card_has_no_buttons_and_says_who_when_and_why() {
        let c = card(&record(
            "rejected",
            vec![
                d("U1", "approve", None),
                d("U2", "reject", Some("tests are red")),
            ],
        ));
        let s = c.to_string();
        assert!(
            !s.contains(ACTION_APPROVE) && !s.contains(ACTION_REJECT),
            "{s}"
        );
        assert!(
            s.contains("*Rejected* by <@U2> at 00:01 UTC: tests are red"),
            "{s}"
        );
        assert!(s.contains("*Approved* by <@U1>"), "{s}");
    }
}
