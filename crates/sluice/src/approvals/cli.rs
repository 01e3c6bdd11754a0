//! `sluice approval request … --wait`: asks a running Sluice for an approval and, with `--wait`, blocks until it is
//! decided. Exit codes: 0 approved, 1 rejected, 2 expired or cancelled, 3 on error. A pipeline step survives a
//! Sluice restart while it waits: the request carries an idempotency key (a retried request returns the same
//! approval) and the wait reconnects until the approval's expiry has passed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The arguments of `sluice approval request`.
#[derive(clap::Args, Debug)]
pub struct RequestArgs {
    #[arg(long)]
    pub title: String,
    #[arg(long, default_value = "")]
    pub text: String,
    /// A channel (name or id), or a user id for a direct message.
    #[arg(long)]
    pub channel: String,
    /// A user (U…/W…) or user group (S…) who may decide; repeatable.
    #[arg(long = "approver")]
    pub approvers: Vec<String>,
    /// Members of the channel may decide too.
    #[arg(long)]
    pub channel_members: bool,
    /// How many distinct people must approve.
    #[arg(long, default_value_t = 1)]
    pub required: u32,
    /// `30m`, `2h`, …
    #[arg(long, default_value = "1h")]
    pub expires_in: String,
    /// The Slack user id of who asks (they cannot approve their own request unless --allow-self).
    #[arg(long)]
    pub requester: Option<String>,
    #[arg(long)]
    pub allow_self: bool,
    /// Approve asks the approver for a comment (in a modal) before it is recorded.
    #[arg(long)]
    pub approve_comment: bool,
    /// `name=value`, shown on the card; repeatable.
    #[arg(long = "field")]
    pub fields: Vec<String>,
    /// `text=url`, shown on the card; repeatable.
    #[arg(long = "link")]
    pub links: Vec<String>,
    #[arg(long)]
    pub callback_url: Option<String>,
    /// Makes a retried request return the same approval (default: a new key for this run).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Block until decided.
    #[arg(long)]
    pub wait: bool,
}

/// Exit codes.
pub const APPROVED: u8 = 0;
pub const REJECTED: u8 = 1;
pub const NOT_DECIDED: u8 = 2;
pub const ERROR: u8 = 3;

fn body(a: &RequestArgs) -> Result<Value, String> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for ap in &a.approvers {
        match ap.chars().next() {
            Some('U' | 'W') => users.push(ap.clone()),
            Some('S') => groups.push(ap.clone()),
            _ => {
                return Err(format!(
                    "--approver {ap:?} is neither a user (U…) nor a user group (S…)"
                ))
            }
        }
    }
    let mut fields = serde_json::Map::new();
    for f in &a.fields {
        let (k, v) = f
            .split_once('=')
            .ok_or(format!("--field {f:?} is not name=value"))?;
        fields.insert(k.to_string(), json!(v));
    }
    let mut links = Vec::new();
    for l in &a.links {
        let (t, u) = l
            .split_once('=')
            .ok_or(format!("--link {l:?} is not text=url"))?;
        links.push(json!({ "text": t, "url": u }));
    }
    let key = a
        .idempotency_key
        .clone()
        .unwrap_or_else(|| format!("cli-{}", uuid::Uuid::now_v7().simple()));
    let mut b = json!({
        "title": a.title, "text": a.text, "channel": a.channel, "fields": fields, "links": links,
        "approvers": { "users": users, "groups": groups, "channel_members": a.channel_members },
        "required": a.required, "allow_self": a.allow_self, "expires_in": a.expires_in, "idempotency_key": key,
        "approve_comment": a.approve_comment,
    });
    if let Some(r) = &a.requester {
        b["requester"] = json!(r);
    }
    if let Some(u) = &a.callback_url {
        b["callback_url"] = json!(u);
    }
    Ok(b)
}

/// What a decided approval means for the exit code, and the line that says who decided.
pub fn outcome(a: &Value) -> Option<(u8, String)> {
    let decisions = a["decisions"].as_array().cloned().unwrap_or_default();
    let by = |verdict: &str| -> Vec<String> {
        decisions
            .iter()
            .filter(|d| d["verdict"] == verdict)
            .map(|d| d["actor"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    let last_reason = decisions
        .last()
        .and_then(|d| d["reason"].as_str())
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match a["state"].as_str()? {
        "approved" => Some((
            APPROVED,
            format!("approved by {}", by("approve").join(", ")),
        )),
        "rejected" => Some((
            REJECTED,
            format!("rejected by {}{last_reason}", by("reject").join(", ")),
        )),
        "expired" => Some((NOT_DECIDED, "expired: nobody decided in time".into())),
        "cancelled" => Some((
            NOT_DECIDED,
            format!("cancelled by {}{last_reason}", by("cancel").join(", ")),
        )),
        _ => None,
    }
}

/// Runs `sluice approval request`.
pub async fn request(base: &str, api_key: &str, args: RequestArgs) -> ExitCode {
    match run(base, api_key, args).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(ERROR)
        }
    }
}

async fn run(base: &str, api_key: &str, args: RequestArgs) -> Result<u8, String> {
    let base = base.trim_end_matches('/');
    let body = body(&args)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| e.to_string())?;
    // Creating is retried while Sluice is unreachable (restarting): the idempotency key makes it one approval.
    let started = Instant::now();
    let mut said_unreachable = false;
    let created: Value = loop {
        let sent = http
            .post(format!("{base}/v1/approvals"))
            .bearer_auth(api_key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => break r.json().await.map_err(|e| e.to_string())?,
            Ok(r)
                if r.status().is_server_error() && started.elapsed() < Duration::from_secs(120) => {
            }
            Ok(r) => {
                let status = r.status();
                return Err(format!("{status}: {}", r.text().await.unwrap_or_default()));
            }
            Err(e) if started.elapsed() < Duration::from_secs(120) => {
                if !said_unreachable {
                    eprintln!("sluice unreachable ({e}); retrying for up to 2 minutes");
                    said_unreachable = true;
                }
            }
            Err(e) => return Err(format!("POST {base}/v1/approvals: {e}")),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let id = created["id"]
        .as_str()
        .ok_or("the answer has no id")?
        .to_string();
    println!("approval {id} requested");
    if !args.wait {
        return Ok(APPROVED);
    }
    // Wait past the expiry for Sluice to say so; a restart in between is ridden out.
    let mut give_up: Option<Instant> = None;
    loop {
        let got = http
            .get(format!("{base}/v1/approvals/{id}?wait=60s"))
            .bearer_auth(api_key)
            .send()
            .await;
        match got {
            Ok(r) if r.status().is_success() => {
                said_unreachable = false;
                let a: Value = r.json().await.map_err(|e| e.to_string())?;
                if let Some((code, said)) = outcome(&a) {
                    println!("{said}");
                    return Ok(code);
                }
                if give_up.is_none() {
                    let left = a["expires_at_ms"].as_i64().unwrap_or(0) - crate::state::now_ms();
                    give_up =
                        Some(Instant::now() + Duration::from_millis(left.max(0) as u64 + 300_000));
                }
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                return Err(format!("{status}: {}", r.text().await.unwrap_or_default()));
            }
            Ok(r) => eprintln!("sluice answered {}; waiting on", r.status()),
            Err(e) => {
                if !said_unreachable {
                    eprintln!("sluice unreachable ({e}); waiting on");
                    said_unreachable = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if give_up.is_some_and(|g| Instant::now() > g) {
            return Err(format!(
                "approval {id} was not decided and sluice did not say it expired"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        request: RequestArgs,
    }

    #[test]
    fn approve_comment_is_asked_for_only_with_its_flag() {
        let asked = |extra: &[&str]| {
            let args = [
                "sluice",
                "--title",
                "Deploy",
                "--channel",
                "deploys",
                "--approver",
                "U1",
            ];
            let cli = Cli::try_parse_from(args.iter().chain(extra)).unwrap();
            body(&cli.request).unwrap()["approve_comment"].clone()
        };
        assert_eq!(asked(&["--approve-comment"]), json!(true));
        assert_eq!(asked(&[]), json!(false));
    }
}
