//! The alert lifecycle as tables: each row is a state, an input, and what must come of it.

use super::*;

const W: i64 = 300_000; // dedup window
const T: i64 = 1_000_000;

fn alert(count: i64, last_seen_ms: i64, started_at_ms: Option<i64>) -> Alert {
    Alert {
        id: 7,
        first_event_id: "ev1".into(),
        count,
        last_seen_ms,
        started_at_ms,
    }
}

fn open(count: i64, last_seen_ms: i64, started_at_ms: Option<i64>) -> Life {
    Life::Open(alert(count, last_seen_ms, started_at_ms))
}

fn closed(count: i64, closed_at_ms: i64) -> Life {
    Life::Closed {
        alert: alert(count, closed_at_ms, None),
        closed_at_ms,
    }
}

fn fired(at_ms: i64, reopen_window_ms: i64, started_at_ms: Option<i64>) -> Input<'static> {
    Input::Fired {
        event_id: "ev9",
        at_ms,
        window_ms: W,
        reopen_window_ms,
        started_at_ms,
    }
}

fn resolved(at_ms: i64) -> Input<'static> {
    Input::Resolved {
        event_id: "ev9",
        at_ms,
    }
}

fn merged(count: u32) -> Effect {
    Effect::Fate(Fate::Merged {
        into: "ev1".into(),
        count,
    })
}

fn update(count: i64, last_seen_ms: i64, started_at_ms: Option<i64>, reopen: bool) -> Effect {
    Effect::Update {
        id: 7,
        count,
        last_seen_ms,
        started_at_ms,
        reopen,
    }
}

fn opens(started_at_ms: Option<i64>, closed_at_ms: Option<i64>) -> Effect {
    Effect::Open {
        started_at_ms,
        closed_at_ms,
    }
}

/// Fire, merge, re-notification, new occurrence, resolve, repeated resolve, reopen: what each event does.
#[test]
fn what_an_event_does_to_its_alert() {
    use Effect::*;
    let resolved_into = Fate(crate::Fate::Resolved { into: "ev1".into() });
    let cases: Vec<(&str, Life, Input, Vec<Effect>)> = vec![
        (
            "first firing: a new alert and its card",
            Life::None,
            fired(T, 0, None),
            vec![Send(self::Send::Own), opens(None, None)],
        ),
        (
            "a duplicate within the window merges: count + 1, the card is refreshed",
            open(2, T - 1_000, None),
            fired(T, 0, None),
            vec![
                update(3, T, None, false),
                merged(3),
                Send(self::Send::Updates),
                RefreshCards,
                Belongs { id: 7 },
            ],
        ),
        (
            "a duplicate after the window: the old alert went quiet, a new occurrence opens",
            open(2, T - W - 1, None),
            fired(T, 0, None),
            vec![
                Close { id: 7, at_ms: T },
                Send(self::Send::Own),
                opens(None, None),
            ],
        ),
        (
            "the same startsAt again is a re-send, not an occurrence: the count stays",
            open(1, T - 60_000, Some(5)),
            fired(T, 0, Some(5)),
            vec![
                update(1, T, Some(5), false),
                merged(1),
                Send(self::Send::Updates),
                RefreshCards,
                Belongs { id: 7 },
            ],
        ),
        (
            "a re-send of the same occurrence continues it even after the window",
            open(1, T - W - 1, Some(5)),
            fired(T, 0, Some(5)),
            vec![
                update(1, T, Some(5), false),
                merged(1),
                Send(self::Send::Updates),
                RefreshCards,
                Belongs { id: 7 },
            ],
        ),
        (
            "a new startsAt within the window is a new occurrence of the same alert",
            open(1, T - 1_000, Some(5)),
            fired(T, 0, Some(6)),
            vec![
                update(2, T, Some(6), false),
                merged(2),
                Send(self::Send::Updates),
                RefreshCards,
                Belongs { id: 7 },
            ],
        ),
        (
            "a resolve closes the open alert and says so on its card",
            open(3, T - 1_000, None),
            resolved(T),
            vec![
                Close { id: 7, at_ms: T },
                resolved_into.clone(),
                Send(self::Send::Updates),
                RefreshCards,
                Belongs { id: 7 },
            ],
        ),
        (
            "a repeated resolve is not news: nothing is sent",
            closed(3, T - 1_000),
            resolved(T),
            vec![resolved_into.clone()],
        ),
        (
            "a resolve for an alert never seen: its own card, an alert born closed",
            Life::None,
            resolved(T),
            vec![Send(self::Send::Own), opens(None, Some(T))],
        ),
        (
            "firing again within the reopen window reopens: same card, a reply in its thread",
            closed(2, T - 1_000),
            fired(T, W, None),
            vec![
                update(3, T, None, true),
                merged(3),
                Send(self::Send::Reopened),
                RefreshCards,
                Belongs { id: 7 },
            ],
        ),
        (
            "firing after the reopen window: a new alert",
            closed(2, T - W - 1),
            fired(T, W, None),
            vec![Send(self::Send::Own), opens(None, None)],
        ),
        (
            "without a reopen window a closed alert is over",
            closed(2, T - 1),
            fired(T, 0, Some(4)),
            vec![Send(self::Send::Own), opens(Some(4), None)],
        ),
    ];
    for (what, life, input, want) in cases {
        let (_, effects) = decide(&State::of(life.clone()), &input);
        assert_eq!(effects, want, "{what}");
        // What an event does never depends on who decided what on the card.
        let decided = State {
            life,
            decisions: vec![AlertAction {
                action: "ack".into(),
                actor: "U1".into(),
                at_ms: 1,
            }],
        };
        assert_eq!(decide(&decided, &input).1, want, "{what}, acknowledged");
    }
}

/// Where the alert stands afterwards: the state a second input would be decided on.
#[test]
fn the_next_state_is_what_the_effects_wrote() {
    let (s, _) = decide(&State::of(Life::None), &fired(T, W, Some(5)));
    let Life::Open(a) = &s.life else {
        panic!("{s:?}")
    };
    assert_eq!(
        (a.id, a.first_event_id.as_str(), a.count, a.started_at_ms),
        (Alert::UNSTORED, "ev9", 1, Some(5))
    );
    let stored = State::of(open(1, T, Some(5)));
    let (s, _) = decide(&stored, &fired(T + 10, W, Some(5)));
    assert_eq!(
        s.life,
        open(1, T + 10, Some(5)),
        "a re-send moves last seen only"
    );
    let (s, _) = decide(&s, &resolved(T + 20));
    assert!(
        matches!(s.life, Life::Closed { closed_at_ms, .. } if closed_at_ms == T + 20),
        "{s:?}"
    );
    let (s, effects) = decide(&s, &fired(T + 30, W, Some(6)));
    assert_eq!(s.life, open(2, T + 30, Some(6)), "reopened");
    assert!(effects.contains(&merged(2)));
    let (s, _) = decide(&State::of(Life::None), &resolved(T));
    assert!(
        matches!(&s.life, Life::Closed { alert, .. } if alert.count == 0),
        "born closed, it never fired: {s:?}"
    );
}

/// Acknowledge, escalate, silence and resolve from Slack: once per alert each, and what each one sets off.
#[test]
fn what_a_decision_in_slack_does() {
    use Effect::*;
    let at_ms = T;
    let decision = |verb: Verb| Input::Decided {
        verb,
        actor: "U2",
        at_ms,
    };
    let record = |verb: Verb| Record {
        verb,
        actor: "U2".into(),
        at_ms,
    };
    let cases: Vec<(Verb, Vec<Effect>)> = vec![
        (Verb::Ack, vec![record(Verb::Ack), RefreshCards]),
        (
            Verb::Escalate,
            vec![record(Verb::Escalate), Escalate, RefreshCards],
        ),
        (
            Verb::Silence,
            vec![
                record(Verb::Silence),
                Silence {
                    until_ms: T + SILENCE_MS,
                },
                RefreshCards,
            ],
        ),
        (
            Verb::Resolve,
            vec![record(Verb::Resolve), ReplyResolved, RefreshCards],
        ),
    ];
    for (verb, want) in cases {
        for life in [Life::None, open(1, T, None), closed(1, T)] {
            let (next, effects) = decide(&State::of(life.clone()), &decision(verb));
            assert_eq!(effects, want, "{verb:?} on {life:?}");
            assert_eq!(next.life, life, "a decision leaves the alert's life alone");
            assert_eq!(next.decisions.len(), 1);
            // The second time, by anyone, changes nothing and says who was first.
            let (again, effects) = decide(
                &next,
                &Input::Decided {
                    verb,
                    actor: "U3",
                    at_ms: T + 5,
                },
            );
            assert_eq!(again, next);
            assert_eq!(
                effects,
                vec![AlreadyDecided {
                    verb,
                    by: "U2".into(),
                    at_ms: T
                }]
            );
        }
    }
    // Each verb is decided once on its own: an acknowledged alert can still be resolved.
    let acked = decide(&State::of(open(1, T, None)), &decision(Verb::Ack)).0;
    let (_, effects) = decide(&acked, &decision(Verb::Resolve));
    assert_eq!(effects[0], record(Verb::Resolve));
}
