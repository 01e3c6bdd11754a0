//! Outgoing calls to internal systems from the outbox (`sluice_domain::outgoing`): an approval's callback, an
//! action's request. [`Outgoing::send`] refuses what must never be called (a destination not allow-listed, an
//! address that is link-local or a cloud metadata endpoint unless `[actions] allow_link_local` lists it), signs the
//! body, pins the connection to the addresses it checked (so DNS cannot answer differently a moment later), sends
//! without following redirects and classifies the answer ([`classify`]) the way `slack::retry::classify` does for
//! Slack: delivered, retry with backoff (5xx, 408, 425, 429, timeouts, connection errors), or dead-letter with the
//! reason. The lane worker (`Dispatcher::deliver_http`) records the outcome and audits the final one.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::json;
use sluice_domain::outgoing::{sign, Origin};

use crate::egress::NoClient;
use sluice_slack::retry::Outcome;
use sluice_slack_wire::secret::Secret;
use sluice_store::{NewAudit, OutboxItem, StoreError};
use tracing::debug;

use super::Dispatcher;
use crate::config::Config;
use crate::state::now_ms;

/// What outgoing calls may do: where to, signed with what.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    allowed: Vec<Origin>,
    allow_link_local: Vec<IpAddr>,
    secret: Option<Secret>,
    timeout: Duration,
    team: String,
    /// The `[[action]]`s: their headers (secrets, never stored in the outbox) and result templates.
    pub(crate) actions: std::sync::Arc<crate::config::actions::Actions>,
    /// The `[[step]]`s: how a step run's outputs are read from its answer.
    pub(crate) steps: std::sync::Arc<crate::config::steps::Steps>,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer: status and (the start of) the body.
    Answered(u16, String),
    /// Try again later; `Some` when the receiver said how long (429 / 503 with Retry-After).
    Transient(String, Option<Duration>),
    /// Sending it again cannot help.
    Permanent(String),
}

/// The outbox's decision for an attempt.
pub fn classify(a: &Attempt) -> Outcome {
    match a {
        Attempt::Answered(..) => Outcome::Delivered,
        Attempt::Transient(_, Some(wait)) => Outcome::RetryAfter(*wait),
        Attempt::Transient(_, None) => Outcome::Backoff,
        Attempt::Permanent(reason) => Outcome::DeadLetter(reason.clone()),
    }
}

/// The longest answer body kept (for a dead letter's reason and an action's result).
const BODY_KEPT: usize = 4000;

impl Outgoing {
    pub fn new(cfg: &Config) -> Self {
        Outgoing {
            allowed: cfg.approvals.allowed(),
            allow_link_local: cfg.approvals.allow_link_local.clone(),
            secret: cfg.approvals.outgoing_secret.clone(),
            timeout: Duration::from_millis(cfg.approvals.timeout_ms),
            team: cfg.slack.team_id.clone(),
            actions: cfg.action_defs.clone(),
            steps: cfg.steps.clone(),
        }
    }

    /// One attempt at the call an outbox item describes.
    pub async fn send(&self, item: &OutboxItem) -> Attempt {
        let args = &item.args;
        let Some(url) = args["url"].as_str() else {
            return Attempt::Permanent("the call has no url".into());
        };
        let origin = match Origin::of(url) {
            Ok(o) => o,
            Err(e) => return Attempt::Permanent(e),
        };
        if !self.allowed.contains(&origin) {
            return Attempt::Permanent(format!(
                "{origin} is not an allowed destination: list it in [approvals] callback_hosts (or as an [[action]] url)"
            ));
        }
        let Some(secret) = &self.secret else {
            return Attempt::Permanent(
                "outgoing calls are signed and no secret is configured: set [actions] outgoing_secret_env".into(),
            );
        };
        let timeout = args["timeout_ms"]
            .as_u64()
            .map(Duration::from_millis)
            .unwrap_or(self.timeout);
        let client =
            match crate::egress::client_for(url, &origin, &self.allow_link_local, timeout).await {
                Ok(c) => c,
                Err(NoClient::Refused(why)) => return Attempt::Permanent(why),
                Err(NoClient::Unreachable(why)) => return Attempt::Transient(why, None),
            };
        let method = args["method"].as_str().unwrap_or("POST");
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
        // A GET carries no body; its signature is over the empty body.
        let body = if method == reqwest::Method::GET {
            Vec::new()
        } else {
            serde_json::to_vec(&args["body"]).unwrap_or_default()
        };
        let (ts, sig) = sign(secret, now_ms() / 1000, &body);
        let mut req = client.request(method, url);
        // An action's headers, read from the environment or files at start-up.
        if let Some(action) = args["action"].as_str().and_then(|a| self.actions.get(a)) {
            for (name, value) in &action.headers {
                req = req.header(name.as_str(), value.expose());
            }
        }
        let mut req = req
            .header("content-type", "application/json")
            .header("x-sluice-request-timestamp", ts)
            .header("x-sluice-signature", sig)
            .header("user-agent", concat!("sluice/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = args["idempotency_key"].as_str() {
            req = req.header("idempotency-key", key);
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Attempt::Transient(
                    format!("{url}: no answer within {} ms", timeout.as_millis()),
                    None,
                )
            }
            Err(e) => return Attempt::Transient(format!("{url}: {}", error_chain(&e)), None),
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header("location");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(3600)));
        let text = match tokio::time::timeout(timeout, resp.text()).await {
            Ok(Ok(t)) => sluice_slack_wire::blocks::truncate(&t, BODY_KEPT),
            _ => String::new(),
        };
        match status {
            200..=299 => Attempt::Answered(status, text),
            300..=399 => Attempt::Permanent(format!(
                "refused: {url} answered HTTP {status} redirecting to {}; redirects are not followed",
                location.as_deref().unwrap_or("nowhere")
            )),
            408 | 425 | 429 | 500..=599 => Attempt::Transient(
                format!("{url} answered HTTP {status}"),
                retry_after.filter(|_| status == 429 || status == 503),
            ),
            _ => Attempt::Permanent(format!(
                "{url} answered HTTP {status}: {}",
                sluice_slack_wire::blocks::truncate(&text, 300)
            )),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Tries an incident's lookup gets before it counts as failed: a person waits for the war room it holds back.
const LOOKUP_TRIES: u32 = 3;

/// `Err` (the reason) once an incident's lookup (`args.incident_id`) failed [`LOOKUP_TRIES`] times: the war room is
/// then made without its context rather than after the outbox's `max_age_secs`.
fn lookup_wait(item: &OutboxItem, error: &str) -> Result<(), String> {
    if item.args["incident_id"].is_string() && item.attempts + 1 >= LOOKUP_TRIES {
        Err(format!(
            "gave up after {} attempts: {error}",
            item.attempts + 1
        ))
    } else {
        Ok(())
    }
}

impl Dispatcher {
    /// Sends one outgoing call until it is answered or dead-lettered (or the lease is lost), then audits the
    /// outcome (`approval.callback`, `action.<name>`).
    pub(super) async fn deliver_http(
        &self,
        mut item: OutboxItem,
        lost: &AtomicBool,
    ) -> Result<(), StoreError> {
        let purpose = item.args["purpose"].as_str().unwrap_or("http").to_string();
        self.call_replayed(&item).await;
        loop {
            let wait_ms = item.next_attempt_at_ms - now_ms();
            if wait_ms > 0 {
                tokio::time::sleep(Duration::from_millis(wait_ms as u64)).await;
            }
            if lost.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            let attempt = (self.outgoing)().send(&item).await;
            let outcome = classify(&attempt);
            let label = match &outcome {
                Outcome::Delivered => "ok",
                Outcome::DeadLetter(_) => "dead",
                _ => "retry",
            };
            metrics::counter!("sluice_outgoing_calls_total", "purpose" => purpose.clone(), "outcome" => label)
                .increment(1);
            let now = now_ms();
            let (result, error) = match &attempt {
                Attempt::Transient(e, _) => (None, e.clone()),
                Attempt::Answered(status, _) => (Some(format!("ok: HTTP {status}")), String::new()),
                Attempt::Permanent(reason) => (Some(format!("error: {reason}")), String::new()),
            };
            match outcome {
                Outcome::Delivered => {
                    let status = match &attempt {
                        Attempt::Answered(s, _) => s.to_string(),
                        _ => String::new(),
                    };
                    self.persist(lost, || {
                        self.store.mark_sent(item.id, &item.channel, &status, now)
                    })
                    .await?;
                    debug!(item = item.id, %purpose, %status, "outgoing call answered");
                }
                Outcome::DeadLetter(reason) => self.dead_letter(&item, &reason, now, lost).await?,
                Outcome::RetryAfter(wait) => {
                    self.schedule(&mut item, now, wait, &error, lost).await?;
                    continue;
                }
                Outcome::Backoff => match self
                    .retry_wait(&item, now, &error)
                    .and_then(|wait| lookup_wait(&item, &error).map(|_| wait))
                {
                    Ok(wait) => {
                        self.schedule(&mut item, now, wait, &error, lost).await?;
                        continue;
                    }
                    Err(reason) => {
                        self.dead_letter(&item, &reason, now, lost).await?;
                        self.audit_call(&item, &purpose, &format!("error: {reason}"))
                            .await;
                        self.call_ended(&item, &Attempt::Permanent(reason)).await;
                        return Ok(());
                    }
                },
            }
            if let Some(result) = result {
                self.audit_call(&item, &purpose, &result).await;
            }
            self.call_ended(&item, &attempt).await;
            return Ok(());
        }
    }

    /// Tells the workflow that caused a call that it ended (answered, or dead-lettered after `item.attempts + 1`
    /// attempts): an `[[action]]` run (`args.run_id`) is finished by `crate::actions::call_ended`, which commits its
    /// result and card status through the outbox.
    async fn call_ended(&self, item: &OutboxItem, attempt: &Attempt) {
        if let (Some(id), Some(hooks)) = (item.args["incident_id"].as_str(), self.incidents.get()) {
            let answer = match attempt {
                Attempt::Answered(_, body) => Ok(body.as_str()),
                Attempt::Permanent(reason) | Attempt::Transient(reason, _) => Err(reason.clone()),
            };
            hooks.lookup_ended(id, answer).await;
            self.wake.notify_one();
            return;
        }
        let Some(run_id) = item.args["run_id"].as_str() else {
            return;
        };
        let end = match attempt {
            Attempt::Answered(status, body) => sluice_domain::action::CallEnd::Answered {
                status: *status,
                body: body.clone(),
            },
            Attempt::Permanent(reason) | Attempt::Transient(reason, _) => {
                sluice_domain::action::CallEnd::Dead {
                    reason: reason.clone(),
                    attempts: item.attempts + 1,
                }
            }
        };
        let outgoing = (self.outgoing)();
        match crate::actions::call_ended(
            &*self.store,
            &outgoing.actions,
            &outgoing.steps,
            run_id,
            &end,
        )
        .await
        {
            Ok(true) => self.wake.notify_one(),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(run = %run_id, error = %e, "the action run could not be finished")
            }
        }
    }

    /// An `[[action]]` run's call about to be sent while its run is failed was dead-lettered and replayed: the run
    /// runs again (`crate::actions::call_replayed`), and its card shows it.
    async fn call_replayed(&self, item: &OutboxItem) {
        let Some(run_id) = item.args["run_id"].as_str() else {
            return;
        };
        let outgoing = (self.outgoing)();
        match crate::actions::call_replayed(&*self.store, &outgoing.actions, run_id).await {
            Ok(true) => self.wake.notify_one(),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(run = %run_id, error = %e, "the replayed action run could not be marked running")
            }
        }
    }

    async fn audit_call(&self, item: &OutboxItem, purpose: &str, result: &str) {
        let record = NewAudit {
            at_ms: now_ms(),
            actor: "sluice".into(),
            team: (self.outgoing)().team,
            action: purpose.to_string(),
            target: item.event_id.clone().unwrap_or_default(),
            result: result.to_string(),
            detail: json!({
                "url": item.args["url"],
                "idempotency_key": item.args["idempotency_key"],
                "attempts": item.attempts + 1,
                "item_id": item.id,
            }),
        };
        if let Err(e) = self.store.record_audit(record).await {
            tracing::error!(error = %e, %purpose, "audit record could not be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_store::OutboxItem;

    use super::*;
    use crate::config::testing::parse;

    fn call(url: &str) -> OutboxItem {
        OutboxItem {
            id: 1,
            event_id: Some("run_1".into()),
            lane: "http:x".into(),
            team: "T1".into(),
            channel: String::new(),
            method: sluice_domain::outgoing::METHOD.into(),
            args: json!({"url": url, "body": {}, "timeout_ms": 300, "purpose": "action.x"}),
            attempts: 0,
            created_at_ms: 0,
            next_attempt_at_ms: 0,
            sending_at_ms: None,
            ref_sent: None,
            ref_pending: false,
        }
    }

    /// At call time, an allowed destination on a link-local or metadata address is still refused (dead-lettered with
    /// the reason) unless `[actions] allow_link_local` lists it; nothing is sent.
    #[tokio::test]
    async fn a_call_to_a_link_local_or_metadata_address_is_refused_unless_listed() {
        let text = |listed: &str| {
            format!(
                "[actions]\noutgoing_secret_env = \"OUT\"\nallow_link_local = [{listed}]\n\
                 [approvals]\ncallback_hosts = [\"http://169.254.169.254\", \"http://[fe80::1]:9\", \"http://[::ffff:169.254.10.1]:9\"]\n"
            )
        };
        let cfg = parse(&text("")).unwrap_or_else(|p| panic!("{p:?}"));
        let out = Outgoing::new(&cfg);
        for url in [
            "http://169.254.169.254/latest/meta-data/iam",
            "http://[fe80::1]:9/x",
            "http://[::ffff:169.254.10.1]:9/x",
        ] {
            match out.send(&call(url)).await {
                Attempt::Permanent(reason) => {
                    assert!(reason.starts_with("refused:"), "{url}: {reason}");
                    assert!(reason.contains("allow_link_local"), "{url}: {reason}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        // Listed: the address is called (here nothing answers it: a transient failure, not a refusal).
        let cfg = parse(&text("\"fe80::1\"")).unwrap_or_else(|p| panic!("{p:?}"));
        match Outgoing::new(&cfg)
            .send(&call("http://[fe80::1]:9/x"))
            .await
        {
            Attempt::Permanent(reason) => {
                assert!(!reason.contains("link-local"), "{reason}")
            }
            Attempt::Transient(..) | Attempt::Answered(..) => {}
        }
    }
}
