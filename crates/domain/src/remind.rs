//! One-off reminders (`/ops remind #chan in 2h "…"`, `remind list`, `remind cancel <id>`): [`parse`] reads what was
//! typed into a [`Remind`], or the message (with the usage) shown to the user. No IO: the handler schedules the
//! message with `chat.scheduleMessage` through the outbox, lists with `chat.scheduledMessages.list` and cancels with
//! `chat.deleteScheduledMessage`.

use crate::command::{parse_value, words, ArgType, ArgValue};

/// The shortest and longest delay: Slack posts a scheduled message at most 120 days ahead.
pub const MIN_MS: i64 = 60_000;
pub const MAX_MS: i64 = 120 * 86_400_000;

/// What `remind …` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remind {
    /// Post `text` in `channel` (an id, or a name as typed without `#`) `after_ms` from now.
    Set {
        channel: String,
        after_ms: i64,
        text: String,
    },
    List,
    Cancel(String),
}

/// The usage, as every mistake shows it.
pub fn usage(slash: &str) -> String {
    format!(
        "Usage: `{slash} remind #channel in 2h \"text\"`, `{slash} remind list`, `{slash} remind cancel <id>`"
    )
}

/// Reads the text after `remind`.
pub fn parse(slash: &str, rest: &str) -> Result<Remind, String> {
    let bad = |why: String| format!("{why}. {}", usage(slash));
    let w: Vec<String> = words(rest)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["list"] => Ok(Remind::List),
        ["cancel", id] => {
            if id.chars().all(|c| c.is_ascii_alphanumeric()) {
                Ok(Remind::Cancel(id.to_string()))
            } else {
                Err(bad(format!(
                    "{id:?} is not a reminder id (see `{slash} remind list`)"
                )))
            }
        }
        ["cancel"] => Err(bad("say which reminder to cancel".into())),
        [channel, "in", delay, text @ ..] if !text.is_empty() => {
            let channel = match parse_value(&ArgType::Channel, channel) {
                Ok(ArgValue::Ref { id, .. }) => id,
                _ => match channel.strip_prefix('#') {
                    Some(name)
                        if !name.is_empty()
                            && name.chars().all(|c| {
                                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                            }) =>
                    {
                        name.to_string()
                    }
                    _ => {
                        return Err(bad(format!(
                            "{channel:?} is not a channel: name one, like #ops"
                        )))
                    }
                },
            };
            let after_ms = sluice_core::duration::parse_duration_ms(delay)
                .map_err(|e| bad(format!("{delay:?}: {e}")))?;
            if !(MIN_MS..=MAX_MS).contains(&after_ms) {
                return Err(bad(format!("{delay} is not between 1m and 120d")));
            }
            let text = text.join(" ");
            if text.trim().is_empty() {
                return Err(bad("say what to remind of".into()));
            }
            Ok(Remind::Set {
                channel,
                after_ms,
                text,
            })
        }
        _ => Err(bad("I did not understand that".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_read_as_typed() {
        let ok = [
            (
                "#ops in 2h \"rotate the keys\"",
                Remind::Set {
                    channel: "ops".into(),
                    after_ms: 7_200_000,
                    text: "rotate the keys".into(),
                },
            ),
            (
                "<#C0123|ops> in 90m check the canary",
                Remind::Set {
                    channel: "C0123".into(),
                    after_ms: 5_400_000,
                    text: "check the canary".into(),
                },
            ),
            ("list", Remind::List),
            ("cancel Q000001", Remind::Cancel("Q000001".into())),
        ];
        for (text, want) in ok {
            assert_eq!(parse("/ops", text), Ok(want), "{text}");
        }
        let bad = [
            ("#ops in 30s hi", "not between 1m and 120d"),
            ("#ops in 200d hi", "not between 1m and 120d"),
            ("#ops in soon hi", "\"soon\""),
            ("ops in 2h hi", "not a channel"),
            ("#ops in 2h", "did not understand"),
            ("#ops in 2h \"unclosed", "not closed"),
            ("cancel", "say which"),
            ("cancel ../x", "not a reminder id"),
            ("", "did not understand"),
        ];
        for (text, says) in bad {
            let e = parse("/ops", text).unwrap_err();
            assert!(
                e.contains(says) && e.contains("Usage: `/ops remind"),
                "{text}: {e}"
            );
        }
    }
}
