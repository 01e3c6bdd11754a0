//! What `POST /v1/approvals` (and `sluice approval request`) asks for, and its validation: [`ApprovalRequest`] →
//! [`Valid`], or the field that is wrong and why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::outgoing::Origin;
use sluice_core::duration::parse_duration_ms;

/// Who may decide: listed users, members of listed user groups, members of the card's channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Approvers {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub channel_members: bool,
}

impl Approvers {
    /// How many people are named (`M` of N-of-M), when that can be known without asking Slack.
    pub fn named(&self) -> Option<usize> {
        (self.groups.is_empty() && !self.channel_members).then_some(self.users.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub text: String,
    pub url: String,
}

/// The body of `POST /v1/approvals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    pub title: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub links: Vec<Link>,
    /// Slack user id of who asks (their own request they may not approve unless `allow_self`); defaults to the API
    /// key's name.
    #[serde(default)]
    pub requester: Option<String>,
    /// A channel (id or name), or a user id for a direct message.
    pub channel: String,
    pub approvers: Approvers,
    #[serde(default)]
    pub required: Option<u32>,
    #[serde(default)]
    pub allow_self: bool,
    /// `30m`, `2h`, `1d`.
    #[serde(default)]
    pub expires_in: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// An `[[action]]` to run (once) when the request is approved. The binary checks that it is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Approve opens a modal asking for a comment before the approval is recorded (also `[approvals]
    /// approve_comment` for every request).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve_comment: bool,
    /// The event an action's button asked this approval for: the action runs on it. Set by Sluice, never read from
    /// a request.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The arguments of the slash command (or the values of the form) that asked for this approval: the action's
    /// templates see them as `args` (and `form`) when it runs. Set by Sluice, never read from a request.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub form: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    pub request: ApprovalRequest,
    pub requester: String,
    pub required: u32,
    pub expires_at_ms: i64,
}

/// Default and largest `expires_in`.
pub const DEFAULT_EXPIRY_MS: i64 = 3_600_000;
pub const MAX_EXPIRY_MS: i64 = 7 * 24 * 3_600_000;

fn is_id(s: &str, prefixes: &[u8]) -> bool {
    s.len() > 1
        && prefixes.contains(&s.as_bytes()[0])
        && s[1..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl ApprovalRequest {
    /// Checks every field; `Err((field, message))` names the first one that is wrong. `callback_hosts` are the
    /// origins `[approvals] callback_hosts` allows.
    pub fn validate(
        self,
        caller: &str,
        callback_hosts: &[Origin],
        now_ms: i64,
    ) -> Result<Valid, (&'static str, String)> {
        if self.title.trim().is_empty() {
            return Err(("title", "give the request a title".into()));
        }
        let channel = self.channel.trim().trim_start_matches('#');
        if channel.is_empty() || channel.contains(char::is_whitespace) {
            return Err((
                "channel",
                "give a channel (name or id) or a user id for a direct message".into(),
            ));
        }
        let a = &self.approvers;
        if a.users.is_empty() && a.groups.is_empty() && !a.channel_members {
            return Err((
                "approvers",
                "name who may decide: approvers.users (U…), approvers.groups (S…) or approvers.channel_members"
                    .into(),
            ));
        }
        if let Some(u) = a.users.iter().find(|u| !is_id(u, b"UW")) {
            return Err((
                "approvers.users",
                format!("{u:?} is not a Slack user id (U… or W…)"),
            ));
        }
        if let Some(g) = a.groups.iter().find(|g| !is_id(g, b"S")) {
            return Err((
                "approvers.groups",
                format!("{g:?} is not a Slack user group id (S…)"),
            ));
        }
        let required = self.required.unwrap_or(1);
        if required == 0 || required > 50 {
            return Err(("required", "required must be between 1 and 50".into()));
        }
        if let Some(m) = a.named() {
            // The requester cannot count towards their own request unless allowed to.
            let eligible = a
                .users
                .iter()
                .filter(|u| self.allow_self || Some(u.as_str()) != self.requester.as_deref())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            if (required as usize) > m.min(eligible) {
                return Err((
                    "required",
                    format!(
                        "required is {required} but only {eligible} distinct approvers could approve"
                    ),
                ));
            }
        }
        let expires_in = match &self.expires_in {
            None => DEFAULT_EXPIRY_MS,
            Some(s) => match parse_duration_ms(s) {
                Ok(ms) if ms > 0 && ms <= MAX_EXPIRY_MS => ms,
                _ => {
                    return Err((
                        "expires_in",
                        format!("{s:?} is not a duration between 1s and 7d (e.g. \"30m\", \"2h\")"),
                    ))
                }
            },
        };
        if let Some(url) = &self.callback_url {
            let origin = Origin::of(url).map_err(|e| ("callback_url", e))?;
            if !callback_hosts.contains(&origin) {
                return Err((
                    "callback_url",
                    format!(
                        "{origin} is not allowed: list it in [approvals] callback_hosts in sluice.toml"
                    ),
                ));
            }
        }
        if let Some(l) = self.links.iter().find(|l| Origin::of(&l.url).is_err()) {
            return Err(("links", format!("{:?} is not an http(s) URL", l.url)));
        }
        if self.fields.len() > 10 {
            return Err(("fields", "at most 10 fields fit on a card".into()));
        }
        if self
            .idempotency_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 200)
        {
            return Err((
                "idempotency_key",
                "an idempotency key is 1 to 200 characters".into(),
            ));
        }
        if self
            .action
            .as_ref()
            .is_some_and(|a| a.trim().is_empty() || a.len() > 100)
        {
            return Err(("action", "name an [[action]] of sluice.toml".into()));
        }
        let requester = self
            .requester
            .clone()
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| caller.to_string());
        Ok(Valid {
            request: ApprovalRequest {
                channel: channel.to_string(),
                ..self
            },
            requester,
            required,
            expires_at_ms: now_ms + expires_in,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(extra: serde_json::Value) -> ApprovalRequest {
        let mut v = json!({"title": "Deploy checkout", "channel": "C0DEPLOY", "requester": "U0REQ",
                           "approvers": {"users": ["U1", "U2", "U3"]}});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let hosts = [Origin::of("https://ci.internal:8443").unwrap()];
        let table = [
            (json!({}), None),
            (json!({"required": 3}), None),
            (json!({"title": " "}), Some("title")),
            (json!({"channel": "a b"}), Some("channel")),
            (json!({"approvers": {}}), Some("approvers")),
            (
                json!({"approvers": {"users": ["bob"]}}),
                Some("approvers.users"),
            ),
            (
                json!({"approvers": {"groups": ["U1"]}}),
                Some("approvers.groups"),
            ),
            (json!({"required": 0}), Some("required")),
            (json!({"required": 4}), Some("required")),
            // The requester is one of the three: without allow_self only two can approve.
            (
                json!({"required": 3, "approvers": {"users": ["U0REQ", "U1", "U2"]}}),
                Some("required"),
            ),
            (
                json!({"required": 3, "allow_self": true, "approvers": {"users": ["U0REQ", "U1", "U2"]}}),
                None,
            ),
            (
                json!({"required": 5, "approvers": {"groups": ["S1"]}}),
                None,
            ),
            (json!({"expires_in": "30m"}), None),
            // Read as every other duration in Sluice is (config, silences, CLI).
            (json!({"expires_in": "1h30m"}), None),
            (json!({"expires_in": "1 h"}), Some("expires_in")),
            (json!({"expires_in": "0s"}), Some("expires_in")),
            (json!({"expires_in": "soon"}), Some("expires_in")),
            (json!({"expires_in": "8d"}), Some("expires_in")),
            (
                json!({"callback_url": "https://ci.internal:8443/done"}),
                None,
            ),
            (
                json!({"callback_url": "https://ci.internal/done"}),
                Some("callback_url"),
            ),
            (
                json!({"callback_url": "http://169.254.169.254/latest"}),
                Some("callback_url"),
            ),
            (
                json!({"links": [{"text": "run", "url": "javascript:alert(1)"}]}),
                Some("links"),
            ),
            (json!({"idempotency_key": ""}), Some("idempotency_key")),
        ];
        for (extra, want) in table {
            let got = req(extra.clone()).validate("ci", &hosts, 1000);
            match (got, want) {
                (Ok(_), None) => {}
                (Err((field, _)), Some(w)) => assert_eq!(field, w, "{extra}"),
                (got, want) => panic!("{extra}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn defaults_one_approver_an_hour_and_the_callers_name() {
        let mut r = req(json!({}));
        r.requester = None;
        let v = r.validate("ci", &[], 1000).unwrap();
        assert_eq!((v.required, v.expires_at_ms), (1, 1000 + DEFAULT_EXPIRY_MS));
        assert_eq!(v.requester, "ci");
    }
}
