//! The alert lifecycle as one pure state machine: [`decide`] takes where an alert stands ([`State`]), what just
//! happened to it ([`Input`]: an event with its dedup key fired or resolved, or someone decided on its card in
//! Slack) and returns where it stands now and what to do about it ([`Effect`]s). It is the one place that decides
//! fire, merge, re-notification, resolve, reopen, acknowledge, escalate, silence and resolve-from-Slack.
//!
//! Who calls it, and the shape other workflows copy (load → decide → commit → enqueue):
//! - the store's ingest transaction (`sluice-store-core`, `ingest.rs`) loads the alert of an event's dedup key,
//!   calls [`decide`] with [`Input::Fired`] or [`Input::Resolved`], and writes the effects in the same transaction;
//! - the binary's action handler (`crates/sluice/src/alerts/actions.rs`) loads the decisions recorded on the alert,
//!   calls [`decide`] with [`Input::Decided`], records the decision and carries out the effects through the outbox.
//!
//! Nothing here reads a clock, a database or Slack: every time is milliseconds since the epoch, passed in.

use serde::{Deserialize, Serialize};

use crate::{AlertAction, Fate};

/// How long "Silence 1 h" silences.
pub const SILENCE_MS: i64 = 3_600_000;

/// A decision people take on an alert's card, once per alert each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    Ack,
    Escalate,
    Silence,
    Resolve,
}

impl Verb {
    pub const ALL: [Verb; 4] = [Verb::Ack, Verb::Escalate, Verb::Silence, Verb::Resolve];

    /// As recorded in the store and the audit log (`alert.<verb>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Ack => "ack",
            Verb::Escalate => "escalate",
            Verb::Silence => "silence",
            Verb::Resolve => "resolve",
        }
    }

    pub fn parse(s: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn infinitive(self) -> &'static str {
        match self {
            Verb::Ack => "acknowledge",
            Verb::Escalate => "escalate",
            Verb::Silence => "silence",
            Verb::Resolve => "resolve",
        }
    }

    pub fn past(self) -> &'static str {
        match self {
            Verb::Ack => "acknowledged",
            Verb::Escalate => "escalated",
            Verb::Silence => "silenced",
            Verb::Resolve => "resolved",
        }
    }
}

/// One alert as the store keeps it (a row of `alerts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The store's id of the alert; [`Alert::UNSTORED`] for one [`decide`] just opened.
    pub id: i64,
    /// The event that opened it: its cards carry this id, merges and resolves point to it.
    pub first_event_id: String,
    /// How many occurrences it stands for.
    pub count: i64,
    pub last_seen_ms: i64,
    /// When the source says the latest occurrence started (Alertmanager's `startsAt`), if it said.
    pub started_at_ms: Option<i64>,
}

impl Alert {
    /// The id of an alert that [`Effect::Open`] creates: the store gives it its id when it writes it.
    pub const UNSTORED: i64 = 0;

    fn opened_by(first_event_id: &str, at_ms: i64, started_at_ms: Option<i64>) -> Alert {
        Alert {
            id: Alert::UNSTORED,
            first_event_id: first_event_id.to_string(),
            count: 1,
            last_seen_ms: at_ms,
            started_at_ms,
        }
    }
}

/// Where the alert of one dedup key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Life {
    /// No alert with the key: never seen (or pruned).
    None,
    Open(Alert),
    /// Resolved, or over because it went quiet, at `closed_at_ms`.
    Closed {
        alert: Alert,
        closed_at_ms: i64,
    },
}

/// An alert's state: its life and the decisions recorded on its card.
///
/// The store's ingest loads `life` only: no event input reads `decisions` (what an event does to an alert does not
/// depend on who acknowledged it; a table test holds [`decide`] to that). The action handler loads `decisions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub life: Life,
    /// Decisions taken in Slack on the alert, oldest first.
    pub decisions: Vec<AlertAction>,
}

impl State {
    /// The state ingest loads: the alert's life (an event's input reads nothing else).
    pub fn of(life: Life) -> State {
        State {
            life,
            decisions: Vec::new(),
        }
    }

    /// The state an action handler loads: the decisions on the alert (a decision reads nothing else, so its life
    /// is not loaded and stands as [`Life::None`]).
    pub fn deciding(decisions: Vec<AlertAction>) -> State {
        State {
            life: Life::None,
            decisions,
        }
    }
}

/// What happened to the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// An event with the alert's dedup key reports it firing.
    Fired {
        /// The event (it becomes the first event of an alert it opens).
        event_id: &'a str,
        at_ms: i64,
        /// A duplicate seen within this long of the last one continues the alert; later, it is a new occurrence.
        window_ms: i64,
        /// Firing again at most this long after a resolve reopens the alert (`0`: never).
        reopen_window_ms: i64,
        /// When the source says this occurrence started (`occurred_at` of a firing event, Alertmanager's
        /// `startsAt`). The same start again is the same occurrence re-sent, not a new one.
        started_at_ms: Option<i64>,
    },
    /// An event with the alert's dedup key reports it resolved.
    Resolved { event_id: &'a str, at_ms: i64 },
    /// Someone decided on the alert's card in Slack (they were allowed to: permissions are the handler's).
    Decided {
        verb: Verb,
        actor: &'a str,
        at_ms: i64,
    },
}

/// Which of an event's prepared Slack calls to enqueue (see `Dedup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Send {
    /// Its own outbox: a new card.
    Own,
    /// `Dedup::on_open`: what continuing an alert sends (its updates, a resolved reply).
    Updates,
    /// `Dedup::on_reopen`: what a reopened alert sends (a thread reply on its card).
    Reopened,
}

/// What to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Store the event with this fate (without this effect, the fate the pipeline gave it).
    Fate(Fate),
    /// Enqueue these of the event's Slack calls (without this effect, none).
    Send(Send),
    /// The event belongs to alert `id`: its updates link to that alert's cards, the alert joins the event's
    /// groups and holds its inhibition keys.
    Belongs { id: i64 },
    /// Write alert `id` as `count`, last seen `last_seen_ms`, latest start `started_at_ms`, open.
    Update {
        id: i64,
        count: i64,
        last_seen_ms: i64,
        started_at_ms: Option<i64>,
        reopen: bool,
    },
    /// Close alert `id` at `at_ms` (it drops its inhibition keys).
    Close { id: i64, at_ms: i64 },
    /// Open a new alert whose first event is this one (its first post per lane becomes its card). `closed_at_ms`:
    /// born closed (a resolve for an alert never seen: a repeat of it finds this one and posts nothing).
    Open {
        started_at_ms: Option<i64>,
        closed_at_ms: Option<i64>,
    },
    /// Re-render the alert's cards from the alert as it stands (coalesced: one pending refresh per card).
    RefreshCards,
    /// Record the decision (the store keeps the first of each verb per alert).
    Record {
        verb: Verb,
        actor: String,
        at_ms: i64,
    },
    /// The decision was taken already: tell whoever asked, change nothing.
    AlreadyDecided { verb: Verb, by: String, at_ms: i64 },
    /// Mute the alert (a silence on its identity) until `until_ms`.
    Silence { until_ms: i64 },
    /// Send the escalation messages (where `[actions]` says).
    Escalate,
    /// Say in the card's thread who resolved it.
    ReplyResolved,
}

/// A closed alert fires again soon enough to be the same alert: closed at `closed_at_ms`, firing at `at_ms`.
/// The store's bulk path asks this too, to know an alert that can only be new.
pub fn reopens(closed_at_ms: i64, at_ms: i64, reopen_window_ms: i64) -> bool {
    reopen_window_ms > 0 && closed_at_ms >= at_ms - reopen_window_ms
}

/// The one decision of the alert lifecycle: where the alert stands after `input`, and what to do.
pub fn decide(state: &State, input: &Input) -> (State, Vec<Effect>) {
    use Effect::*;
    let with_life = |life: Life| State {
        life,
        decisions: state.decisions.clone(),
    };
    match (input, &state.life) {
        (Input::Decided { verb, actor, at_ms }, _) => {
            if let Some(d) = state.decisions.iter().find(|d| d.action == verb.as_str()) {
                let already = AlreadyDecided {
                    verb: *verb,
                    by: d.actor.clone(),
                    at_ms: d.at_ms,
                };
                return (state.clone(), vec![already]);
            }
            let mut next = state.clone();
            next.decisions.push(AlertAction {
                action: verb.as_str().to_string(),
                actor: actor.to_string(),
                at_ms: *at_ms,
            });
            let mut effects = vec![Record {
                verb: *verb,
                actor: actor.to_string(),
                at_ms: *at_ms,
            }];
            effects.extend(match verb {
                Verb::Ack => None,
                Verb::Escalate => Some(Escalate),
                Verb::Silence => Some(Silence {
                    until_ms: at_ms.saturating_add(SILENCE_MS),
                }),
                Verb::Resolve => Some(ReplyResolved),
            });
            effects.push(RefreshCards);
            (next, effects)
        }

        (Input::Resolved { at_ms, .. }, Life::Open(a)) => (
            with_life(Life::Closed {
                alert: a.clone(),
                closed_at_ms: *at_ms,
            }),
            vec![
                Close {
                    id: a.id,
                    at_ms: *at_ms,
                },
                Fate(crate::Fate::Resolved {
                    into: a.first_event_id.clone(),
                }),
                Send(self::Send::Updates),
                RefreshCards,
                Belongs { id: a.id },
            ],
        ),
        // Resolved already: a redelivery, the other half of an HA pair, the next green run. Not news, and a second
        // card would say the opposite of nothing.
        (Input::Resolved { .. }, Life::Closed { alert, .. }) => (
            state.clone(),
            vec![Fate(crate::Fate::Resolved {
                into: alert.first_event_id.clone(),
            })],
        ),
        // A resolve for an alert never seen: its card is the alert's, closed at birth, so a repeat finds it.
        (Input::Resolved { event_id, at_ms }, Life::None) => (
            with_life(Life::Closed {
                alert: Alert {
                    // It never fired: if it fires again within the reopen window, that is its first occurrence.
                    count: 0,
                    ..Alert::opened_by(event_id, *at_ms, None)
                },
                closed_at_ms: *at_ms,
            }),
            vec![
                Send(self::Send::Own),
                Open {
                    started_at_ms: None,
                    closed_at_ms: Some(*at_ms),
                },
            ],
        ),

        (
            Input::Fired {
                event_id,
                at_ms,
                window_ms,
                started_at_ms,
                ..
            },
            Life::Open(a),
        ) => {
            // The same occurrence re-sent (Alertmanager re-sends every firing alert at each repeat interval and
            // when its group changes): the alert goes on, its count does not.
            let resent = started_at_ms.is_some() && *started_at_ms == a.started_at_ms;
            if !resent && at_ms - a.last_seen_ms > *window_ms {
                // The old alert went quiet for longer than the window: it is over, this is a new occurrence.
                return (
                    with_life(Life::Open(Alert::opened_by(
                        event_id,
                        *at_ms,
                        *started_at_ms,
                    ))),
                    vec![
                        Close {
                            id: a.id,
                            at_ms: *at_ms,
                        },
                        Send(self::Send::Own),
                        Open {
                            started_at_ms: *started_at_ms,
                            closed_at_ms: None,
                        },
                    ],
                );
            }
            let count = if resent { a.count } else { a.count + 1 };
            continued(state, a, count, *at_ms, *started_at_ms, self::Send::Updates)
        }
        (
            Input::Fired {
                at_ms,
                reopen_window_ms,
                started_at_ms,
                ..
            },
            Life::Closed {
                alert: a,
                closed_at_ms,
            },
        ) if reopens(*closed_at_ms, *at_ms, *reopen_window_ms) => {
            // Fired again soon after it was resolved: the same alert, so its card and thread carry on.
            let count = a.count + 1;
            continued(
                state,
                a,
                count,
                *at_ms,
                *started_at_ms,
                self::Send::Reopened,
            )
        }
        (
            Input::Fired {
                event_id,
                at_ms,
                started_at_ms,
                ..
            },
            Life::None | Life::Closed { .. },
        ) => (
            with_life(Life::Open(Alert::opened_by(
                event_id,
                *at_ms,
                *started_at_ms,
            ))),
            vec![
                Send(self::Send::Own),
                Open {
                    started_at_ms: *started_at_ms,
                    closed_at_ms: None,
                },
            ],
        ),
    }
}

/// The alert `a` goes on (open) with `count` occurrences after a firing at `at_ms`: a merge, a re-send or a reopen
/// (`send` says which of the event's calls go out).
fn continued(
    state: &State,
    a: &Alert,
    count: i64,
    at_ms: i64,
    started_at_ms: Option<i64>,
    send: Send,
) -> (State, Vec<Effect>) {
    let next = Alert {
        count,
        last_seen_ms: at_ms.max(a.last_seen_ms),
        started_at_ms: started_at_ms.or(a.started_at_ms),
        ..a.clone()
    };
    let effects = vec![
        Effect::Update {
            id: a.id,
            count,
            last_seen_ms: next.last_seen_ms,
            started_at_ms: next.started_at_ms,
            reopen: matches!(state.life, Life::Closed { .. }),
        },
        Effect::Fate(Fate::Merged {
            into: a.first_event_id.clone(),
            count: u32::try_from(count).unwrap_or(u32::MAX),
        }),
        Effect::Send(send),
        Effect::RefreshCards,
        Effect::Belongs { id: a.id },
    ];
    let next = State {
        life: Life::Open(next),
        decisions: state.decisions.clone(),
    };
    (next, effects)
}

#[cfg(test)]
mod tests;
