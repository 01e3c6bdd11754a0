//! Rules shared by both backends for the alert-handling verbs: silences ([`check_silence`], ids, matcher JSON) and
//! which alert an event belongs to ([`alert_root`]), the key for acknowledgements and card look-ups.

use crate::error::corrupt;
use crate::{Fate, NewSilence, SilenceMatcher, StoreError};

/// `"sil_"` + UUID v7 (simple form) stamped with the caller's clock, so ids sort like creation times.
pub(crate) fn new_silence_id(now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        ms / 1000,
        u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    );
    format!("sil_{}", uuid::Uuid::new_v7(ts).simple())
}

/// Refuses silences that cannot mean what their author wanted. Regular expressions are the caller's business.
pub(crate) fn check_silence(s: &NewSilence) -> Result<(), StoreError> {
    if s.matchers.is_empty() {
        return Err(StoreError::Other(
            "a silence needs at least one matcher: without one it would mute every event".into(),
        ));
    }
    if s.ends_at_ms <= s.starts_at_ms {
        return Err(StoreError::Other(format!(
            "a silence must end after it starts (starts_at_ms {}, ends_at_ms {})",
            s.starts_at_ms, s.ends_at_ms
        )));
    }
    Ok(())
}

pub(crate) fn matchers_json(m: &[SilenceMatcher]) -> Result<String, StoreError> {
    serde_json::to_string(m)
        .map_err(|e| StoreError::Other(format!("cannot serialise silence matchers: {e}")))
}

pub(crate) fn parse_matchers(s: &str) -> Result<Vec<SilenceMatcher>, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("silence matchers", e))
}

pub(crate) fn parse_fate(s: &str) -> Result<Fate, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("event fate", e))
}

/// The event that stands for the alert `event_id` belongs to: the alert's first event for a merged or resolving
/// event (it holds the cards), else the event itself.
pub(crate) fn alert_root<'a>(event_id: &'a str, fate: &'a Fate) -> &'a str {
    match fate {
        Fate::Merged { into, .. } | Fate::Resolved { into } => into,
        _ => event_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MatchOp;

    #[test]
    fn silence_ids_are_prefixed_unique_and_sort_by_creation_time() {
        let a = new_silence_id(1_700_000_000_000);
        let b = new_silence_id(1_700_000_000_000);
        let later = new_silence_id(1_700_000_000_001);
        assert!(a.starts_with("sil_") && a.len() == 4 + 32, "{a}");
        assert_ne!(a, b);
        assert!(a < later && b < later);
    }

    #[test]
    fn silences_that_mute_everything_or_nothing_are_refused() {
        let ok = NewSilence {
            matchers: vec![SilenceMatcher {
                name: "service".into(),
                op: MatchOp::Eq,
                value: "db".into(),
            }],
            starts_at_ms: 10,
            ends_at_ms: 20,
            author: "U1".into(),
            comment: "maintenance".into(),
        };
        let cases = [
            (ok.clone(), None),
            (
                NewSilence {
                    matchers: vec![],
                    ..ok.clone()
                },
                Some("at least one matcher"),
            ),
            (
                NewSilence {
                    ends_at_ms: 10,
                    ..ok.clone()
                },
                Some("end after it starts"),
            ),
        ];
        for (s, want) in cases {
            match (check_silence(&s), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{e}"),
                (got, want) => panic!("{s:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn merged_and_resolving_events_belong_to_their_alerts_first_event() {
        let table = [
            (Fate::Queued { rules: vec![] }, "e2"),
            (
                Fate::Merged {
                    into: "e1".into(),
                    count: 2,
                },
                "e1",
            ),
            (Fate::Resolved { into: "e1".into() }, "e1"),
            (
                Fate::Suppressed {
                    by: "silence:sil_1".into(),
                },
                "e2",
            ),
        ];
        for (fate, root) in table {
            assert_eq!(alert_root("e2", &fate), root, "{fate:?}");
        }
    }
}
