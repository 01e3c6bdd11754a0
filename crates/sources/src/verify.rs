//! The checks that prove a delivery came from the configured sender: GitHub's HMAC signature
//! ([`github_signature`]) and GitLab's shared token ([`gitlab_token`]). Both run over the raw
//! bytes before any parsing, and compare in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sluice_slack_wire::Secret;
use subtle::ConstantTimeEq;

use crate::SourceError;

fn configured<'a>(secret: Option<&'a Secret>, source: &str) -> Result<&'a Secret, SourceError> {
    secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        SourceError::Unauthorized(format!(
            "no secret is configured for the {source} source, so no delivery can be verified; \
             set the same secret in Sluice's config and in the webhook's settings"
        ))
    })
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
pub(crate) fn github_signature(
    secret: Option<&Secret>,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SourceError> {
    let secret = configured(secret, "github")?;
    let header = header.ok_or_else(|| {
        SourceError::Unauthorized(
            "the X-Hub-Signature-256 header is missing; give the GitHub webhook a secret".into(),
        )
    })?;
    let bad =
        || SourceError::Unauthorized("the X-Hub-Signature-256 signature does not match".into());
    let hex_sig = header.strip_prefix("sha256=").ok_or_else(|| {
        SourceError::Unauthorized(
            "the X-Hub-Signature-256 header does not start with \"sha256=\"".into(),
        )
    })?;
    let sig = hex::decode(hex_sig).map_err(|_| bad())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| bad())?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&sig).map_err(|_| bad())
}

/// Checks that `X-Gitlab-Token` equals the configured token.
pub(crate) fn gitlab_token(
    secret: Option<&Secret>,
    header: Option<&str>,
) -> Result<(), SourceError> {
    let secret = configured(secret, "gitlab")?;
    let given = header.ok_or_else(|| {
        SourceError::Unauthorized(
            "the X-Gitlab-Token header is missing; set the webhook's secret token in GitLab".into(),
        )
    })?;
    // Comparing digests keeps the comparison constant-time even when the lengths differ.
    let want = Sha256::digest(secret.expose().as_bytes());
    let got = Sha256::digest(given.as_bytes());
    if bool::from(want.as_slice().ct_eq(got.as_slice())) {
        Ok(())
    } else {
        Err(SourceError::Unauthorized(
            "the X-Gitlab-Token header does not match the configured token".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented example.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_documented_example_verifies() {
        let s = Secret::new(SECRET);
        assert_eq!(github_signature(Some(&s), Some(SIG), BODY), Ok(()));
    }

    /// (case, secret, signature header, body, a fragment of the refusal)
    type Case<'a> = (
        &'a str,
        Option<&'a Secret>,
        Option<&'a str>,
        &'a [u8],
        &'a str,
    );

    #[test]
    fn github_refuses_what_does_not_match() {
        let s = Secret::new(SECRET);
        let other = Secret::new("another secret");
        let upper = SIG.to_uppercase().replace("SHA256=", "sha256=");
        let cases: [Case; 7] = [
            ("missing header", Some(&s), None, BODY, "header is missing"),
            (
                "sha1 form",
                Some(&s),
                Some("sha1=0123"),
                BODY,
                "does not start with",
            ),
            (
                "not hex",
                Some(&s),
                Some("sha256=zz"),
                BODY,
                "does not match",
            ),
            (
                "body changed",
                Some(&s),
                Some(SIG),
                b"Hello, World?",
                "does not match",
            ),
            (
                "other secret",
                Some(&other),
                Some(SIG),
                BODY,
                "does not match",
            ),
            (
                "truncated",
                Some(&s),
                Some(&SIG[..40]),
                BODY,
                "does not match",
            ),
            (
                "no secret",
                None,
                Some(SIG),
                BODY,
                "no secret is configured",
            ),
        ];
        for (name, secret, header, body, fragment) in cases {
            match github_signature(secret, header, body) {
                Err(SourceError::Unauthorized(m)) => assert!(m.contains(fragment), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        // Hex case does not matter to GitHub's spec; accept upper-case digits too.
        assert_eq!(github_signature(Some(&s), Some(&upper), BODY), Ok(()));
    }

    #[test]
    fn gitlab_token_must_match_exactly() {
        let s = Secret::new("tok-123");
        assert_eq!(gitlab_token(Some(&s), Some("tok-123")), Ok(()));
        for given in [
            Some("tok-12"),
            Some("tok-1234"),
            Some("TOK-123"),
            Some(""),
            None,
        ] {
            assert!(
                matches!(
                    gitlab_token(Some(&s), given),
                    Err(SourceError::Unauthorized(_))
                ),
                "{given:?}"
            );
        }
        assert!(matches!(
            gitlab_token(None, Some("tok-123")),
            Err(SourceError::Unauthorized(m)) if m.contains("no secret is configured")
        ));
    }
}
