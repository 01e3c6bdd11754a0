//! Slack request signatures: [`verify`] checks `X-Slack-Signature` over the raw body, [`sign`]
//! produces one (for the simulator and tests).
//!
//! Signature = `"v0=" + hex(HMAC_SHA256(signing_secret, "v0:" + timestamp + ":" + raw_body))`.
//! The comparison is constant-time so an attacker cannot learn the signature byte by byte from
//! response times, and timestamps more than [`MAX_SKEW_SECS`] away from now are refused so a
//! captured request cannot be replayed later.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Largest accepted distance between the request timestamp and our clock, either direction.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request from Slack was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    #[error("missing X-Slack-Signature header")]
    MissingSignature,
    #[error("X-Slack-Request-Timestamp is not a unix timestamp")]
    BadTimestamp,
    #[error("request timestamp is {skew_secs} s away from now (more than {MAX_SKEW_SECS} s): possible replay, or our clock is wrong")]
    Stale { skew_secs: i64 },
    #[error("signature does not match: wrong signing secret, or the body was altered")]
    Mismatch,
}

/// The `X-Slack-Signature` value Slack would send for this body.
pub fn sign(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &Secret, timestamp: &str, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so new_from_slice cannot fail; the fallback exists
    // only to avoid an unwrap and would never verify anything.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return Vec::new();
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a request from Slack. `timestamp` and `signature` are the raw header values,
/// `body` the raw bytes before any parsing, `now_unix` our clock in unix seconds.
pub fn verify(
    secret: &Secret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp
        .map(str::trim)
        .ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::MissingSignature)?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew_secs = now_unix.saturating_sub(ts);
    if skew_secs.unsigned_abs() > MAX_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale { skew_secs });
    }
    let expected = sign(secret, timestamp, body);
    // `ct_eq` on slices of different lengths is false without an early exit on content.
    if bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const NOW: i64 = 1531420618;

    #[test]
    fn slacks_published_test_vector() {
        let secret = Secret::new(SECRET);
        assert_eq!(sign(&secret, TS, BODY.as_bytes()), SIG);
        assert_eq!(
            verify(&secret, Some(TS), Some(SIG), BODY.as_bytes(), NOW),
            Ok(())
        );
    }

    #[test]
    fn refusals() {
        let secret = Secret::new(SECRET);
        let tampered = BODY.replace("text=", "text=rm+-rf");
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a [u8],
            i64,
            SignatureError,
        );
        let cases: &[Case] = &[
            (
                "tampered body",
                Some(TS),
                Some(SIG),
                tampered.as_bytes(),
                NOW,
                SignatureError::Mismatch,
            ),
            (
                "stale",
                Some(TS),
                Some(SIG),
                BODY.as_bytes(),
                NOW + 301,
                SignatureError::Stale { skew_secs: 301 },
            ),
            (
                "from the future",
                Some(TS),
                Some(SIG),
                BODY.as_bytes(),
                NOW - 301,
                SignatureError::Stale { skew_secs: -301 },
            ),
            (
                "no timestamp",
                None,
                Some(SIG),
                BODY.as_bytes(),
                NOW,
                SignatureError::MissingTimestamp,
            ),
            (
                "no signature",
                Some(TS),
                None,
                BODY.as_bytes(),
                NOW,
                SignatureError::MissingSignature,
            ),
            (
                "empty signature",
                Some(TS),
                Some(""),
                BODY.as_bytes(),
                NOW,
                SignatureError::MissingSignature,
            ),
            (
                "garbled timestamp",
                Some("12ab"),
                Some(SIG),
                BODY.as_bytes(),
                NOW,
                SignatureError::BadTimestamp,
            ),
            (
                "truncated signature",
                Some(TS),
                Some(&SIG[..20]),
                BODY.as_bytes(),
                NOW,
                SignatureError::Mismatch,
            ),
            (
                "timestamp swapped",
                Some("1531420619"),
                Some(SIG),
                BODY.as_bytes(),
                NOW,
                SignatureError::Mismatch,
            ),
            (
                "huge timestamp",
                Some("9223372036854775807"),
                Some(SIG),
                BODY.as_bytes(),
                i64::MIN,
                SignatureError::Stale {
                    skew_secs: i64::MIN,
                },
            ),
        ];
        for (name, ts, sig, body, now, want) in cases {
            assert_eq!(
                verify(&secret, *ts, *sig, body, *now).as_ref(),
                Err(want),
                "{name}"
            );
        }
        let wrong = Secret::new("not-the-secret");
        assert_eq!(
            verify(&wrong, Some(TS), Some(SIG), BODY.as_bytes(), NOW),
            Err(SignatureError::Mismatch),
            "wrong secret"
        );
    }

    #[test]
    fn edge_of_the_window_is_accepted() {
        let secret = Secret::new(SECRET);
        for now in [NOW - 300, NOW + 300] {
            assert_eq!(
                verify(&secret, Some(TS), Some(SIG), BODY.as_bytes(), now),
                Ok(())
            );
        }
    }
}
