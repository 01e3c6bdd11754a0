//! Approvals as a pure state machine: [`decide`] takes an approval's [`State`], an [`Input`] (a click, a reason
//! given in the modal, a cancellation, the clock passing the expiry) and the time, and returns the new state and
//! the [`Effect`]s the handler carries out (record the decision, redraw the card, reply in its thread, call back,
//! tell someone why not). No IO: who may approve is asked by the handler and passed in (`permitted`).
//!
//! Rules: N of M *distinct* people approve (the same person twice counts once); one rejection by a permitted
//! approver rejects; the requester may not decide their own request unless `allow_self`; once the state is final
//! (approved, rejected, expired, cancelled) every further input is refused and changes nothing; an approval past
//! its expiry expires on the next input, whatever that input was.

pub mod card;
pub mod request;

use serde::Serialize;
use sluice_model::{ApprovalDecision, ApprovalRecord};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Expired,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Approved,
            Status::Rejected,
            Status::Expired,
            Status::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

/// An approval as [`decide`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub requester: String,
    pub required: u32,
    pub allow_self: bool,
    pub expires_at_ms: i64,
    /// Every decision that counted, oldest first.
    pub decisions: Vec<ApprovalDecision>,
    pub decided_at_ms: Option<i64>,
}

impl State {
    /// A new pending approval.
    pub fn new(requester: &str, required: u32, allow_self: bool, expires_at_ms: i64) -> State {
        State {
            status: Status::Pending,
            requester: requester.to_string(),
            required: required.max(1),
            allow_self,
            expires_at_ms,
            decisions: Vec::new(),
            decided_at_ms: None,
        }
    }

    /// The state a stored approval is in.
    pub fn of(r: &ApprovalRecord) -> State {
        State {
            status: Status::parse(&r.state).unwrap_or(Status::Pending),
            requester: r.requester.clone(),
            required: r.required.max(1),
            allow_self: r.allow_self,
            expires_at_ms: r.expires_at_ms,
            decisions: r.decisions.clone(),
            decided_at_ms: r.decided_at_ms,
        }
    }

    /// The distinct people who approved, in order.
    pub fn approvers(&self) -> Vec<&str> {
        self.decisions
            .iter()
            .filter(|d| d.verdict == "approve")
            .map(|d| d.actor.as_str())
            .collect()
    }

    /// The decision that made the state final, if it is.
    pub fn final_decision(&self) -> Option<&ApprovalDecision> {
        if self.status.is_final() {
            self.decisions.last()
        } else {
            None
        }
    }
}

/// What happened to an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `by` clicked Approve; `permitted` is whether they are one of its approvers (the handler asks).
    Approve {
        by: String,
        permitted: bool,
        comment: Option<String>,
    },
    /// `by` rejected, with the reason they typed.
    Reject {
        by: String,
        permitted: bool,
        reason: String,
    },
    /// The requester (or an operator) withdrew it.
    Cancel { by: String, reason: Option<String> },
    /// The expiry timer looked at it.
    Expire,
}

/// Why an input changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of the approvers.
    NotApprover,
    /// The requester may not decide their own request.
    OwnRequest,
    /// Already final.
    AlreadyFinal(Status),
    /// This person's approval already counts; still waiting for others.
    AlreadyApproved { have: u32, need: u32 },
    /// A rejection needs a reason.
    NoReason,
}

impl Refusal {
    /// The audit log's `result` for it.
    pub fn audit(&self) -> String {
        match self {
            Refusal::NotApprover => "refused: not an approver".into(),
            Refusal::OwnRequest => "refused: own request".into(),
            Refusal::AlreadyFinal(s) => format!("refused: already {}", s.as_str()),
            Refusal::AlreadyApproved { .. } => "refused: already approved by them".into(),
            Refusal::NoReason => "refused: no reason".into(),
        }
    }

    /// What the person is told (ephemerally).
    pub fn tell(&self) -> String {
        match self {
            Refusal::NotApprover => "You are not one of the approvers of this request.".into(),
            Refusal::OwnRequest => "You cannot approve or reject your own request.".into(),
            Refusal::AlreadyFinal(s) => format!("This request is already {}.", s.as_str()),
            Refusal::AlreadyApproved { have, need } => {
                format!("Your approval is counted ({have} of {need}); waiting for others.")
            }
            Refusal::NoReason => "Say why you reject this request.".into(),
        }
    }
}

/// What the handler carries out after committing the new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A decision that counts: store it with the new state.
    Record(ApprovalDecision),
    /// Tell the person who acted why nothing changed (and audit it).
    Refuse { by: String, why: Refusal },
    /// Redraw the card: the progress, or the final state without buttons.
    UpdateCard,
    /// Reply in the card's thread.
    Reply(String),
    /// The state became final: call `callback_url` back and audit the outcome.
    Finished(Status),
}

/// The one function that decides what an input does to an approval.
pub fn decide(state: &State, input: Input, now_ms: i64) -> (State, Vec<Effect>) {
    let mut next = state.clone();
    let mut effects = Vec::new();
    if state.status.is_final() {
        if let Some(by) = actor(&input) {
            effects.push(Effect::Refuse {
                by,
                why: Refusal::AlreadyFinal(state.status),
            });
        }
        return (next, effects);
    }
    // Past its expiry, nothing counts any more: whatever came in, it expires now.
    if now_ms >= state.expires_at_ms {
        finish(
            &mut next,
            &mut effects,
            Status::Expired,
            decision("sluice", "expire", None, now_ms),
            "Expired: nobody decided in time.".to_string(),
        );
        if let Some(by) = actor(&input) {
            effects.push(Effect::Refuse {
                by,
                why: Refusal::AlreadyFinal(Status::Expired),
            });
        }
        return (next, effects);
    }
    match input {
        Input::Expire => {}
        Input::Cancel { by, reason } => {
            let said = match &reason {
                Some(r) => format!("Cancelled by {} ({r}).", who(&by)),
                None => format!("Cancelled by {}.", who(&by)),
            };
            finish(
                &mut next,
                &mut effects,
                Status::Cancelled,
                decision(&by, "cancel", reason, now_ms),
                said,
            );
        }
        Input::Approve {
            by,
            permitted,
            comment,
        } => {
            if let Some(why) = refused(state, &by, permitted) {
                effects.push(Effect::Refuse { by, why });
                return (next, effects);
            }
            let have = state.approvers().len() as u32;
            if state.approvers().contains(&by.as_str()) {
                effects.push(Effect::Refuse {
                    by,
                    why: Refusal::AlreadyApproved {
                        have,
                        need: state.required,
                    },
                });
                return (next, effects);
            }
            let d = decision(&by, "approve", comment, now_ms);
            if have + 1 >= state.required {
                let said = match state.required {
                    1 => format!("Approved by {}.", who(&by)),
                    n => format!("Approved by {} ({n} of {n}).", who(&by)),
                };
                finish(&mut next, &mut effects, Status::Approved, d, said);
            } else {
                next.decisions.push(d.clone());
                effects.push(Effect::Record(d));
                effects.push(Effect::UpdateCard);
            }
        }
        Input::Reject {
            by,
            permitted,
            reason,
        } => {
            if let Some(why) = refused(state, &by, permitted) {
                effects.push(Effect::Refuse { by, why });
                return (next, effects);
            }
            let reason = reason.trim().to_string();
            if reason.is_empty() {
                effects.push(Effect::Refuse {
                    by,
                    why: Refusal::NoReason,
                });
                return (next, effects);
            }
            let said = format!("Rejected by {}: {reason}", who(&by));
            finish(
                &mut next,
                &mut effects,
                Status::Rejected,
                decision(&by, "reject", Some(reason), now_ms),
                said,
            );
        }
    }
    (next, effects)
}

fn actor(input: &Input) -> Option<String> {
    match input {
        Input::Approve { by, .. } | Input::Reject { by, .. } | Input::Cancel { by, .. } => {
            Some(by.clone())
        }
        Input::Expire => None,
    }
}

fn refused(state: &State, by: &str, permitted: bool) -> Option<Refusal> {
    if by == state.requester && !state.allow_self {
        Some(Refusal::OwnRequest)
    } else if !permitted {
        Some(Refusal::NotApprover)
    } else {
        None
    }
}

fn decision(actor: &str, verdict: &str, reason: Option<String>, at_ms: i64) -> ApprovalDecision {
    ApprovalDecision {
        actor: actor.to_string(),
        verdict: verdict.to_string(),
        reason,
        at_ms,
    }
}

fn finish(
    next: &mut State,
    effects: &mut Vec<Effect>,
    status: Status,
    d: ApprovalDecision,
    reply: String,
) {
    next.status = status;
    next.decided_at_ms = Some(d.at_ms);
    next.decisions.push(d.clone());
    effects.push(Effect::Record(d));
    effects.push(Effect::UpdateCard);
    effects.push(Effect::Reply(reply));
    effects.push(Effect::Finished(status));
}

/// A person as a card names them: a Slack user id becomes a mention, anything else (an API key name) stays text.
pub fn who(actor: &str) -> String {
    let is_user = actor.len() > 1
        && matches!(actor.as_bytes()[0], b'U' | b'W')
        && actor[1..].chars().all(|c| c.is_ascii_alphanumeric());
    if is_user {
        format!("<@{actor}>")
    } else {
        sluice_slack_wire::blocks::escape_mrkdwn(actor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000_000;
    const EXPIRES: i64 = T0 + 60_000;

    fn approve(by: &str, permitted: bool) -> Input {
        Input::Approve {
            by: by.into(),
            permitted,
            comment: None,
        }
    }

    fn reject(by: &str, reason: &str) -> Input {
        Input::Reject {
            by: by.into(),
            permitted: true,
            reason: reason.into(),
        }
    }

    fn refusals(effects: &[Effect]) -> Vec<Refusal> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Refuse { why, .. } => Some(why.clone()),
                _ => None,
            })
            .collect()
    }

    fn finished(effects: &[Effect]) -> Option<Status> {
        effects.iter().find_map(|e| match e {
            Effect::Finished(s) => Some(*s),
            _ => None,
        })
    }

    /// Runs `inputs` in order (each a millisecond after the last) from a new 2-of-N approval by U0REQ.
    fn run(required: u32, allow_self: bool, inputs: Vec<Input>) -> (State, Vec<Vec<Effect>>) {
        let mut s = State::new("U0REQ", required, allow_self, EXPIRES);
        let mut all = Vec::new();
        for (i, input) in inputs.into_iter().enumerate() {
            let (next, effects) = decide(&s, input, T0 + i as i64);
            s = next;
            all.push(effects);
        }
        (s, all)
    }

    #[test]
    fn two_of_three_needs_two_distinct_people() {
        let table: Vec<(Vec<Input>, Status, usize)> = vec![
            (vec![approve("U1", true)], Status::Pending, 1),
            (
                vec![approve("U1", true), approve("U1", true)],
                Status::Pending,
                1,
            ),
            (
                vec![
                    approve("U1", true),
                    approve("U1", true),
                    approve("U2", true),
                ],
                Status::Approved,
                2,
            ),
            (
                vec![approve("U1", true), reject("U2", "not now")],
                Status::Rejected,
                2,
            ),
        ];
        for (inputs, want, decisions) in table {
            let (s, _) = run(2, false, inputs.clone());
            assert_eq!(s.status, want, "{inputs:?}");
            assert_eq!(s.decisions.len(), decisions, "{inputs:?}");
        }
    }

    #[test]
    fn the_same_person_twice_is_told_their_approval_counts_and_nothing_changes() {
        let (s, effects) = run(2, false, vec![approve("U1", true), approve("U1", true)]);
        assert_eq!(
            refusals(&effects[1]),
            vec![Refusal::AlreadyApproved { have: 1, need: 2 }]
        );
        assert!(!effects[1].iter().any(|e| matches!(e, Effect::Record(_))));
        assert_eq!(s.approvers(), vec!["U1"]);
    }

    #[test]
    fn the_final_approval_updates_the_card_replies_and_finishes_once() {
        let (_, effects) = run(2, false, vec![approve("U1", true), approve("U2", true)]);
        assert_eq!(
            effects[0].len(),
            2,
            "progress: record + card: {:?}",
            effects[0]
        );
        assert!(effects[0].contains(&Effect::UpdateCard));
        assert_eq!(finished(&effects[0]), None);
        assert_eq!(finished(&effects[1]), Some(Status::Approved));
        assert!(effects[1].contains(&Effect::UpdateCard));
        assert!(effects[1]
            .iter()
            .any(|e| matches!(e, Effect::Reply(r) if r.contains("<@U2>") && r.contains("2 of 2"))));
    }

    #[test]
    fn who_may_decide() {
        let table = [
            // (by, permitted, allow_self, refusal)
            ("U0REQ", true, false, Some(Refusal::OwnRequest)),
            ("U0REQ", true, true, None),
            ("U0REQ", false, true, Some(Refusal::NotApprover)),
            ("U9", false, false, Some(Refusal::NotApprover)),
            ("U1", true, false, None),
        ];
        for (by, permitted, allow_self, want) in table {
            let (s, effects) = run(1, allow_self, vec![approve(by, permitted)]);
            assert_eq!(
                refusals(&effects[0]).first().cloned(),
                want,
                "{by} permitted={permitted} allow_self={allow_self}"
            );
            let status = if want.is_some() {
                Status::Pending
            } else {
                Status::Approved
            };
            assert_eq!(s.status, status, "{by}");
        }
    }

    #[test]
    fn a_rejection_needs_a_reason() {
        let (s, effects) = run(1, false, vec![reject("U1", "   ")]);
        assert_eq!(refusals(&effects[0]), vec![Refusal::NoReason]);
        assert_eq!(s.status, Status::Pending);
        let (s, _) = run(1, false, vec![reject("U1", " tests are red ")]);
        assert_eq!(s.status, Status::Rejected);
        assert_eq!(s.decisions[0].reason.as_deref(), Some("tests are red"));
    }

    #[test]
    fn nothing_counts_after_a_final_state() {
        for first in [
            approve("U1", true),
            reject("U1", "no"),
            Input::Cancel {
                by: "ci".into(),
                reason: None,
            },
        ] {
            let (s, effects) = run(
                1,
                false,
                vec![first.clone(), approve("U2", true), reject("U3", "late")],
            );
            assert_eq!(s.decisions.len(), 1, "{first:?}");
            for later in &effects[1..] {
                assert!(matches!(
                    refusals(later).as_slice(),
                    [Refusal::AlreadyFinal(_)]
                ));
                assert_eq!(later.len(), 1, "{later:?}");
            }
        }
    }

    #[test]
    fn expiry_comes_from_the_clock_whatever_the_input() {
        let s = State::new("U0REQ", 1, false, EXPIRES);
        // Before the expiry the timer changes nothing.
        let (same, effects) = decide(&s, Input::Expire, EXPIRES - 1);
        assert_eq!((same.status, effects.len()), (Status::Pending, 0));
        // At it, the timer expires it: card, thread reply, callback.
        let (expired, effects) = decide(&s, Input::Expire, EXPIRES);
        assert_eq!(expired.status, Status::Expired);
        assert_eq!(finished(&effects), Some(Status::Expired));
        // A click that arrives late (the timer had not run yet) expires it too, and is refused.
        let (expired, effects) = decide(&s, approve("U1", true), EXPIRES + 5);
        assert_eq!(expired.status, Status::Expired);
        assert_eq!(
            refusals(&effects),
            vec![Refusal::AlreadyFinal(Status::Expired)]
        );
        // Once expired, the timer does nothing more.
        let (again, effects) = decide(&expired, Input::Expire, EXPIRES + 10);
        assert_eq!((again.status, effects.len()), (Status::Expired, 0));
    }

    #[test]
    fn names_on_the_card_are_mentions_for_users_and_escaped_text_otherwise() {
        assert_eq!(who("U012AB"), "<@U012AB>");
        assert_eq!(who("W9"), "<@W9>");
        assert_eq!(who("ci <!channel>"), "ci &lt;!channel&gt;");
    }
}
