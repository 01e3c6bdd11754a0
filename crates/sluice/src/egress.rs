//! The one way out to internal systems: every outgoing HTTP call (the outbox's action and callback calls in
//! `dispatch/http_call.rs`, external selects' options in `forms/`, schedules' `url` and `llm_url` in
//! `commands/schedule.rs`) gets its client here. The destination's host is resolved once, every address it resolves
//! to is checked against link-local and cloud metadata addresses (unless `[actions] allow_link_local` lists it),
//! and the client is pinned to the addresses checked, so a second resolution cannot lead elsewhere. Redirects are
//! never followed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sluice_domain::outgoing::{is_metadata_address, Origin};

/// Why there is no client for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoClient {
    /// It can never be called: a link-local or metadata address, or no client could be built.
    Refused(String),
    /// Not now: the name does not resolve.
    Unreachable(String),
}

impl std::fmt::Display for NoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoClient::Refused(why) | NoClient::Unreachable(why) => f.write_str(why),
        }
    }
}

/// A client for `url` (whose origin is `origin`) that reaches only the addresses checked here, follows no redirect,
/// and gives up after `timeout`.
pub async fn client_for(
    url: &str,
    origin: &Origin,
    allow_link_local: &[IpAddr],
    timeout: Duration,
) -> Result<reqwest::Client, NoClient> {
    let addrs: Vec<SocketAddr> = match origin.ip() {
        Some(ip) => vec![SocketAddr::new(ip, origin.port)],
        None => tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| NoClient::Unreachable(format!("cannot resolve {}: {e}", origin.host)))?
            .collect(),
    };
    if let Some(bad) = addrs
        .iter()
        .map(SocketAddr::ip)
        .find(|ip| is_metadata_address(*ip) && !allow_link_local.contains(ip))
    {
        return Err(NoClient::Refused(format!(
            "refused: {url} is {bad}, a link-local or cloud metadata address; list it in [actions] allow_link_local if calling it is intended"
        )));
    }
    if addrs.is_empty() {
        return Err(NoClient::Unreachable(format!(
            "{} resolves to no address",
            origin.host
        )));
    }
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout);
    if origin.ip().is_none() {
        client = client.resolve_to_addrs(&origin.host, &addrs);
    }
    client
        .build()
        .map_err(|e| NoClient::Refused(format!("cannot build an HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn client(url: &str, allow: &[IpAddr]) -> Result<reqwest::Client, NoClient> {
        let origin = Origin::of(url).unwrap();
        client_for(url, &origin, allow, Duration::from_secs(1)).await
    }

    #[tokio::test]
    async fn link_local_and_metadata_addresses_are_refused_unless_listed() {
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://169.254.10.1:8080/x",
            "http://[fe80::1]/x",
            "http://[fd00:ec2::254]/x",
        ] {
            match client(url, &[]).await {
                Err(NoClient::Refused(why)) => {
                    assert!(why.contains("allow_link_local"), "{url}: {why}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        let listed: IpAddr = "169.254.169.254".parse().unwrap();
        assert!(client("http://169.254.169.254/x", &[listed]).await.is_ok());
        // An ordinary address, and a name that resolves to loopback.
        assert!(client("http://127.0.0.1:9/x", &[]).await.is_ok());
        assert!(client("http://localhost:9/x", &[]).await.is_ok());
    }
}
