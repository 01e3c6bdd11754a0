//! [`classify`]: the one place that decides what the outcome of a Slack call means for the
//! outbox ([`Outcome`]), and [`backoff`], exponential backoff with full jitter.
//!
//! Nothing else in Sluice looks at status codes or Slack error strings to decide whether to
//! retry. The tables below are the whole policy; a new Slack error code is one line.

use crate::api::SlackError;
use rand::Rng;
use std::time::Duration;

/// What the outbox should do with a job after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: acknowledge the job.
    Delivered,
    /// Slack said 429: wait exactly this long, for this rate key only (other channels go on).
    RetryAfter(Duration),
    /// Transient failure: try again after [`backoff`].
    Backoff,
    /// Permanent failure: retrying the same request cannot succeed. Park it with this reason.
    DeadLetter(String),
}

/// `ok:false` errors that say "Slack had a problem, not your request": retry with backoff.
pub const TRANSIENT_ERRORS: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
    "rate_limited",
    // Workspace is being migrated into an Enterprise org; Slack says to retry later.
    "team_added_to_org",
];

/// `ok:false` errors where the request already had its effect (a retry after a lost answer):
/// treat as delivered so the job is acknowledged instead of dead-lettered.
pub const ALREADY_DONE_ERRORS: &[&str] = &["already_reacted", "already_in_channel"];

/// `ok:false` errors known to be permanent. Listed (rather than relying on the default) so the
/// dead-letter reason can say what the operator should do.
pub const PERMANENT_ERRORS: &[(&str, &str)] = &[
    (
        "channel_not_found",
        "no such channel, or a private one the app is not in: check the channel name, or /invite the app",
    ),
    (
        "not_in_channel",
        "the app is not in the channel: /invite the app, or grant chat:write.public",
    ),
    ("is_archived", "the channel is archived"),
    ("channel_is_archived", "the channel is archived"),
    ("invalid_auth", "the token is invalid: reinstall the app"),
    ("not_authed", "no token was sent"),
    (
        "account_inactive",
        "the token's user or bot was deactivated",
    ),
    ("token_revoked", "the token was revoked: reinstall the app"),
    (
        "token_expired",
        "the token expired: token rotation must refresh it",
    ),
    ("no_permission", "the token lacks permission for this"),
    (
        "missing_scope",
        "the app lacks a scope: add it and reinstall",
    ),
    (
        "not_allowed_token_type",
        "this method needs a different token type",
    ),
    (
        "ekm_access_denied",
        "administrators suspended the app's access",
    ),
    (
        "team_access_not_granted",
        "the app is not granted access to this workspace",
    ),
    (
        "org_login_required",
        "the workspace is undergoing an Enterprise migration",
    ),
    ("msg_too_long", "the message text is too long"),
    ("invalid_blocks", "Slack rejected the blocks"),
    ("invalid_blocks_format", "Slack rejected the blocks"),
    ("invalid_attachments", "Slack rejected the attachments"),
    ("too_many_attachments", "too many attachments"),
    ("no_text", "the message has no text"),
    ("invalid_metadata_format", "message metadata is malformed"),
    ("invalid_metadata_schema", "message metadata is malformed"),
    ("metadata_too_large", "message metadata is too large"),
    ("message_not_found", "the message no longer exists"),
    ("thread_not_found", "the thread no longer exists"),
    (
        "cant_update_message",
        "the bot may only update its own messages",
    ),
    (
        "cant_delete_message",
        "the bot may only delete its own messages",
    ),
    ("edit_window_closed", "the message is too old to edit"),
    ("restricted_action", "a workspace setting forbids this"),
    (
        "restricted_action_read_only_channel",
        "the channel is read-only",
    ),
    (
        "restricted_action_thread_only_channel",
        "the channel only allows thread replies",
    ),
    (
        "restricted_action_non_threadable_channel",
        "the channel does not allow threads",
    ),
    ("user_not_found", "the user does not exist"),
    ("users_not_found", "no user with that address"),
    ("user_not_in_channel", "the user is not in the channel"),
    (
        "user_is_restricted",
        "the user is a guest and cannot be added",
    ),
    ("cant_invite_self", "the bot cannot invite itself"),
    ("name_taken", "a channel with that name exists"),
    ("invalid_name", "the channel name is not allowed"),
    ("invalid_name_specials", "the channel name is not allowed"),
    ("invalid_name_maxlength", "the channel name is too long"),
    ("invalid_name_required", "the channel name is missing"),
    ("too_long", "the text is too long"),
    ("no_reaction", "the reaction is missing"),
    (
        "invalid_name_punctuation",
        "the channel name is not allowed",
    ),
    ("invalid_arguments", "the request's arguments are invalid"),
    ("invalid_arg_name", "the request's arguments are invalid"),
    ("invalid_array_arg", "the request's arguments are invalid"),
    ("invalid_charset", "the request's charset is wrong"),
    ("invalid_form_data", "the request body is malformed"),
    ("invalid_json", "the request body is malformed"),
    ("json_not_object", "the request body is malformed"),
    ("invalid_post_type", "the request content type is wrong"),
    ("missing_post_type", "the request content type is missing"),
    ("method_deprecated", "the Web API method is deprecated"),
    ("deprecated_endpoint", "the Web API method is deprecated"),
    ("unknown_method", "the Web API method does not exist"),
    ("time_in_past", "the scheduled time is in the past"),
    ("time_too_far", "the scheduled time is too far ahead"),
    ("invalid_time", "the scheduled time is invalid"),
    (
        "expired_trigger_id",
        "trigger_id expired (3 s): open the view sooner",
    ),
    ("invalid_trigger_id", "trigger_id is invalid"),
    ("exchanged_trigger_id", "trigger_id was already used"),
    ("view_too_large", "the view is too large"),
    ("not_found", "the view no longer exists"),
    (
        "hash_conflict",
        "the view changed meanwhile: re-read it before updating",
    ),
    (
        "duplicate_external_id",
        "a view with that external_id exists",
    ),
    ("no_such_subteam", "the user group does not exist"),
];

/// The outcome of one Slack call, for the outbox.
///
/// Errors that are neither transient nor known (an `ok:false` code not in the tables above)
/// are dead-lettered: an `ok:false` answer means Slack received, parsed and refused this exact
/// request, so sending it again unchanged is overwhelmingly likely to be refused again.
/// Retrying would hold the channel's queue (later messages wait behind it) and hide the problem
/// in a retry loop; a dead letter is visible, carries Slack's code, and can be replayed once
/// the cause is fixed. Slack's transient codes are few and documented; they are listed above.
pub fn classify<T>(result: &Result<T, SlackError>) -> Outcome {
    let err = match result {
        Ok(_) => return Outcome::Delivered,
        Err(e) => e,
    };
    match err {
        SlackError::RateLimited { retry_after, .. } => Outcome::RetryAfter(*retry_after),
        SlackError::Api { error, method, .. } => classify_api_error(method, error),
        SlackError::Http { status, method } => match status {
            // 408 Request Timeout and 425 Too Early say "try again"; 5xx is Slack's trouble
            // (503 during incidents).
            408 | 425 | 500..=599 => Outcome::Backoff,
            _ => Outcome::DeadLetter(format!(
                "{method}: HTTP {status} from Slack (wrong base URL or method name?)"
            )),
        },
        // The request may or may not have reached Slack. Retrying risks a duplicate post, which
        // is the price of at-least-once delivery; losing an alert would be worse.
        SlackError::Timeout { .. } | SlackError::Transport { .. } => Outcome::Backoff,
        // Slack answered, but with something we cannot read. The request most likely took
        // effect, so a retry would post twice, and our parser will not change between attempts.
        SlackError::Decode { method, detail } => {
            Outcome::DeadLetter(format!("{method}: unreadable answer from Slack: {detail}"))
        }
        SlackError::Config(detail) => Outcome::DeadLetter(format!("configuration: {detail}")),
    }
}

fn classify_api_error(method: &str, error: &str) -> Outcome {
    if TRANSIENT_ERRORS.contains(&error) {
        return Outcome::Backoff;
    }
    if ALREADY_DONE_ERRORS.contains(&error) {
        return Outcome::Delivered;
    }
    match PERMANENT_ERRORS.iter().find(|(code, _)| *code == error) {
        Some((_, why)) => Outcome::DeadLetter(format!("{method}: {error}: {why}")),
        None => Outcome::DeadLetter(format!(
            "{method}: {error} (not a known transient Slack error)"
        )),
    }
}

/// Wait before attempt `attempt + 1` (`attempt` counts from 0): uniform in
/// `[0, min(cap, base * 2^attempt)]` ("full jitter"), so many jobs failing at once spread out
/// instead of retrying in lockstep.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, rng: &mut impl Rng) -> Duration {
    let ceiling = 2u32
        .checked_pow(attempt)
        .and_then(|factor| base.checked_mul(factor))
        .map_or(cap, |d| d.min(cap));
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn api(error: &str) -> Result<(), SlackError> {
        Err(SlackError::Api {
            method: "chat.postMessage".into(),
            error: error.into(),
            warnings: vec![],
        })
    }

    fn http(status: u16) -> Result<(), SlackError> {
        Err(SlackError::Http {
            method: "chat.postMessage".into(),
            status,
        })
    }

    #[derive(Debug)]
    enum Want {
        Delivered,
        RetryAfter(u64),
        Backoff,
        DeadLetter(&'static str),
    }

    #[test]
    fn every_error_class() {
        let m = || "chat.postMessage".to_string();
        let cases: Vec<(&str, Result<(), SlackError>, Want)> = vec![
            ("ok", Ok(()), Want::Delivered),
            (
                "429",
                Err(SlackError::RateLimited {
                    method: m(),
                    retry_after: Duration::from_secs(7),
                }),
                Want::RetryAfter(7),
            ),
            ("500", http(500), Want::Backoff),
            ("502", http(502), Want::Backoff),
            ("503 outage", http(503), Want::Backoff),
            ("504", http(504), Want::Backoff),
            ("408", http(408), Want::Backoff),
            ("404 wrong method", http(404), Want::DeadLetter("HTTP 404")),
            ("400", http(400), Want::DeadLetter("HTTP 400")),
            ("401", http(401), Want::DeadLetter("HTTP 401")),
            ("413", http(413), Want::DeadLetter("HTTP 413")),
            (
                "timeout",
                Err(SlackError::Timeout { method: m() }),
                Want::Backoff,
            ),
            (
                "connection refused",
                Err(SlackError::Transport {
                    method: m(),
                    detail: "refused".into(),
                }),
                Want::Backoff,
            ),
            (
                "garbage body",
                Err(SlackError::Decode {
                    method: m(),
                    detail: "not json".into(),
                }),
                Want::DeadLetter("unreadable"),
            ),
            (
                "config",
                Err(SlackError::Config("bad url".into())),
                Want::DeadLetter("configuration"),
            ),
            ("internal_error", api("internal_error"), Want::Backoff),
            ("fatal_error", api("fatal_error"), Want::Backoff),
            (
                "service_unavailable",
                api("service_unavailable"),
                Want::Backoff,
            ),
            ("request_timeout", api("request_timeout"), Want::Backoff),
            ("ratelimited in body", api("ratelimited"), Want::Backoff),
            ("already_reacted", api("already_reacted"), Want::Delivered),
            (
                "channel_not_found",
                api("channel_not_found"),
                Want::DeadLetter("channel_not_found"),
            ),
            (
                "not_in_channel",
                api("not_in_channel"),
                Want::DeadLetter("/invite the app"),
            ),
            (
                "is_archived",
                api("is_archived"),
                Want::DeadLetter("archived"),
            ),
            (
                "invalid_auth",
                api("invalid_auth"),
                Want::DeadLetter("invalid_auth"),
            ),
            (
                "account_inactive",
                api("account_inactive"),
                Want::DeadLetter("account_inactive"),
            ),
            (
                "token_revoked",
                api("token_revoked"),
                Want::DeadLetter("reinstall"),
            ),
            (
                "msg_too_long",
                api("msg_too_long"),
                Want::DeadLetter("msg_too_long"),
            ),
            (
                "invalid_blocks",
                api("invalid_blocks"),
                Want::DeadLetter("invalid_blocks"),
            ),
            ("no_text", api("no_text"), Want::DeadLetter("no_text")),
            (
                "missing_scope",
                api("missing_scope"),
                Want::DeadLetter("scope"),
            ),
            (
                "message_not_found",
                api("message_not_found"),
                Want::DeadLetter("message_not_found"),
            ),
            (
                "cant_update_message",
                api("cant_update_message"),
                Want::DeadLetter("cant_update_message"),
            ),
            (
                "unknown code",
                api("brand_new_error"),
                Want::DeadLetter("brand_new_error"),
            ),
        ];
        for (name, result, want) in cases {
            let got = classify(&result);
            let ok = match (&want, &got) {
                (Want::Delivered, Outcome::Delivered) | (Want::Backoff, Outcome::Backoff) => true,
                (Want::RetryAfter(s), Outcome::RetryAfter(d)) => *d == Duration::from_secs(*s),
                (Want::DeadLetter(needle), Outcome::DeadLetter(reason)) => reason.contains(needle),
                _ => false,
            };
            assert!(ok, "{name}: want {want:?}, got {got:?}");
        }
    }

    #[test]
    fn tables_do_not_contradict_each_other() {
        for code in TRANSIENT_ERRORS.iter().chain(ALREADY_DONE_ERRORS) {
            assert!(!PERMANENT_ERRORS.iter().any(|(c, _)| c == code), "{code}");
        }
    }

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(10);
        for attempt in 0..8u32 {
            let ceiling = (base * 2u32.pow(attempt)).min(cap);
            let samples: Vec<Duration> = (0..500)
                .map(|_| backoff(attempt, base, cap, &mut rng))
                .collect();
            assert!(samples.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            // Full jitter: the spread covers the range, not just the top of it.
            assert!(
                samples.iter().any(|d| *d < ceiling / 4),
                "attempt {attempt}"
            );
            assert!(
                samples.iter().any(|d| *d > ceiling * 3 / 4),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn backoff_never_overflows() {
        let mut rng = StdRng::seed_from_u64(1);
        let cap = Duration::from_secs(300);
        for attempt in [31, 32, 64, u32::MAX] {
            assert!(backoff(attempt, Duration::from_secs(1), cap, &mut rng) <= cap);
        }
        assert!(backoff(1000, Duration::MAX, Duration::MAX, &mut rng) <= Duration::MAX);
        assert_eq!(backoff(3, Duration::ZERO, cap, &mut rng), Duration::ZERO);
    }
}
