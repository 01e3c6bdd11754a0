//! Outbound calls to internal systems as outbox rows ([`http_item`]): an approval's callback or an `[[action]]`'s
//! request is a row in the lane of its destination (`http:<scheme>://<host>:<port>`), so it is retried, dead-lettered
//! and sent once like a Slack call. Also the rules the dispatcher applies before sending one: which destinations
//! are allowed ([`Origin`], compared by scheme, host and port) and which addresses are never called unless listed
//! ([`is_metadata_address`]: link-local and cloud metadata addresses).
//!
//! The signature is Slack's scheme with our header names: `X-Sluice-Request-Timestamp: <unix seconds>` and
//! `X-Sluice-Signature: v0=<hex HMAC-SHA256(secret, "v0:<timestamp>:<raw body>")>` ([`sign`]).

use std::net::IpAddr;

use serde_json::{json, Value};
use sluice_model::NewOutboxItem;
use sluice_slack_wire::secret::Secret;

/// The outbox `method` of an outbound HTTP call (every other method is a Slack Web API call).
pub const METHOD: &str = "http.request";

/// A destination as the allow-list compares it: scheme, host and port (the scheme's default port when the URL
/// names none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an http(s) URL, or what is wrong with it.
    pub fn of(url: &str) -> Result<Origin, String> {
        let u = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let scheme = u.scheme().to_string();
        if scheme != "http" && scheme != "https" {
            return Err(format!("{url:?} is not an http or https URL"));
        }
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!(
                "{url:?} has credentials in it: give them as a header"
            ));
        }
        let port = u
            .port_or_known_default()
            .ok_or_else(|| format!("{url:?} has no port"))?;
        Ok(Origin { scheme, host, port })
    }

    /// The host as an IP address, when the URL named one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// Link-local and cloud metadata addresses: a request forged to reach one (a callback URL, a DNS name that resolves
/// there) could read the host's credentials. Never called unless the address is listed explicitly.
pub fn is_metadata_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            // 169.254.0.0/16 (link-local; AWS, GCP, Azure, OpenStack metadata at 169.254.169.254), Alibaba's
            // 100.100.100.200, Azure's WireServer 168.63.129.16.
            (o[0] == 169 && o[1] == 254) || o == [100, 100, 100, 200] || o == [168, 63, 129, 16]
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_metadata_address(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // fe80::/10 (link-local) and AWS's IPv6 metadata address fd00:ec2::254.
            (s[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// A POST of `body` (JSON) to `url`, as an outbox row in the lane of its destination. `idempotency_key` is sent as
/// `Idempotency-Key`: the id of the decision that caused the call, so a receiver can tell a retry from a new call.
/// `purpose` names the call in logs, the audit log and dead letters (`approval.callback`, `action.<name>`).
pub fn http_item(
    url: &str,
    body: Value,
    idempotency_key: &str,
    purpose: &str,
    timeout_ms: u64,
) -> Result<NewOutboxItem, String> {
    let origin = Origin::of(url)?;
    Ok(NewOutboxItem {
        lane: format!("http:{origin}"),
        team: String::new(),
        channel: origin.to_string(),
        method: METHOD.to_string(),
        args: json!({
            "method": "POST",
            "url": url,
            "body": body,
            "idempotency_key": idempotency_key,
            "purpose": purpose,
            "timeout_ms": timeout_ms,
        }),
        ref_post: false,
    })
}

/// `(timestamp, signature)` header values for a request body sent at `unix_secs`.
pub fn sign(secret: &Secret, unix_secs: i64, body: &[u8]) -> (String, String) {
    let ts = unix_secs.to_string();
    let sig = sluice_slack_wire::signature::sign(secret, &ts, body);
    (ts, sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let table = [
            (
                "https://ci.internal:8443/hook",
                Ok("https://ci.internal:8443"),
            ),
            ("https://CI.internal/hook", Ok("https://ci.internal:443")),
            ("http://127.0.0.1/x?y", Ok("http://127.0.0.1:80")),
            ("http://[::1]:9000/", Ok("http://[::1]:9000")),
            ("ftp://ci.internal/", Err("not an http or https URL")),
            ("https://user:pw@ci.internal/", Err("credentials")),
            ("not a url", Err("is not a URL")),
        ];
        for (url, want) in table {
            match (Origin::of(url), want) {
                (Ok(o), Ok(w)) => assert_eq!(o.to_string(), w, "{url}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{url}: {e}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn metadata_and_link_local_addresses_are_recognised() {
        let table = [
            ("169.254.169.254", true),
            ("169.254.1.2", true),
            ("100.100.100.200", true),
            ("168.63.129.16", true),
            ("fd00:ec2::254", true),
            ("fe80::1", true),
            ("::ffff:169.254.169.254", true),
            ("127.0.0.1", false),
            ("10.0.0.1", false),
            ("fd00:ec2::253", false),
            ("2001:db8::1", false),
        ];
        for (ip, want) in table {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(is_metadata_address(ip), want, "{ip}");
        }
    }

    #[test]
    fn a_call_is_a_row_in_its_destinations_lane() {
        let item = http_item(
            "https://ci.internal:8443/approved",
            json!({"id": "apr_1"}),
            "apr_1.approved",
            "approval.callback",
            5000,
        )
        .unwrap();
        assert_eq!(item.lane, "http:https://ci.internal:8443");
        assert_eq!(item.method, METHOD);
        assert_eq!(item.args["idempotency_key"], "apr_1.approved");
        assert!(http_item("file:///etc/passwd", json!({}), "k", "p", 1).is_err());
    }

    /// The signature is Slack's scheme, so Slack's published test vector holds for it.
    #[test]
    fn signatures_follow_slacks_scheme() {
        let secret = Secret::new("8f742231b10e8888abcd99yyyzzz85a5".to_string());
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let (ts, sig) = sign(&secret, 1531420618, body);
        assert_eq!(ts, "1531420618");
        assert_eq!(
            sig,
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }
}
