//! GitHub webhooks: [`GitHub`]. Every delivery must carry `X-Hub-Signature-256` made with
//! the configured secret; it is checked over the raw body before anything is read. Both of GitHub's content types
//! are accepted: `application/json`, and its default `application/x-www-form-urlencoded` (the JSON in `payload`).
//! `X-GitHub-Event` picks the mapping:
//!
//! | event | becomes |
//! |---|---|
//! | `workflow_run` (`completed`, or any action once it concluded `action_required`) | success → `ok`/resolved; failure, timed_out, startup_failure → `error`/firing; action_required → `warning`/firing; no conclusion → nothing |
//! | `check_run` (`completed`) | same conclusions as `workflow_run` |
//! | `deployment_status` | success → `ok`; failure, error → `error`; pending, queued, in_progress → `info`. Terminal states are resolved. Kind `deployment` |
//! | `ping` | nothing (answered 2xx) |
//! | anything else | nothing, with `ignored` saying which event it was |
//!
//! Runs that are still going, and conclusions that say nothing about whether the code works
//! (cancelled, skipped, neutral, stale), produce no event: posting them would bury the
//! failures, and a cancelled re-run must not close a failure card.
//!
//! **Dedup keys** are chosen so one card follows one thing: a workflow on a branch
//! (`gh:{repo}:{workflow file}:{branch}`), a check on a branch (`gh:{repo}:check:{name}:{branch}`),
//! a deployment (`gh:{repo}:deployment:{id}`). A failed run and the green re-run (or the next
//! green push) share a key, and the green one is `resolved`, so the failure card turns green
//! instead of a second message appearing.
//!
//! **Kind** of a run is `deployment` when the workflow's name contains "deploy" (any case),
//! so deploy pipelines get the deployment card; every other workflow is an `alert`, because
//! a failing CI workflow is a condition that a later success resolves. `deployment_status`
//! is always `deployment`; `check_run` is always `alert`.

use sluice_core::{Event, Kind, Severity, Status};
use sluice_slack_wire::Secret;

use crate::payload::{parse_json, At};
use crate::shape::{fit, push_field, push_link, short_sha};
use crate::verify::github_signature;
use crate::{Headers, Parsed, Source, SourceError};

#[cfg(test)]
mod tests;

/// The source's configured name and each event's `source`.
pub const NAME: &str = "github";

/// The header that names the event type.
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// The header that carries the body's HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The GitHub webhook adapter, holding the webhook secret.
#[derive(Debug, Clone)]
pub struct GitHub {
    secret: Option<Secret>,
}

impl GitHub {
    /// An adapter that verifies deliveries with `secret`. Without one, every delivery is
    /// refused as unauthorized.
    pub fn new(secret: Option<Secret>) -> Self {
        GitHub { secret }
    }
}

impl Source for GitHub {
    fn name(&self) -> &'static str {
        NAME
    }

    fn parse(&self, headers: &Headers, body: &[u8]) -> Result<Parsed, SourceError> {
        github_signature(self.secret.as_ref(), headers.get(SIGNATURE_HEADER), body)?;
        let event = headers
            .get(EVENT_HEADER)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                SourceError::bad(
                    EVENT_HEADER,
                    "the header is missing; GitHub sends it with every delivery",
                )
            })?;
        let value = parse_json(json_body(headers, body)?.as_ref())?;
        let root = At::root(&value);
        match event {
            "ping" => Ok(Parsed::ignored(format!(
                "ping from GitHub (hook {})",
                root.get("hook_id").id_opt()?.unwrap_or_else(|| "?".into())
            ))),
            "workflow_run" => workflow_run(&root),
            "check_run" => check_run(&root),
            "deployment_status" => deployment_status(&root),
            other => Ok(Parsed::ignored(format!("ignored event type \"{other}\""))),
        }
    }
}

/// The JSON of a delivery. GitHub's default content type is `application/x-www-form-urlencoded`, with the JSON in
/// the form's `payload` field; the signature covers the raw body either way, so it was checked before this.
fn json_body<'a>(
    headers: &Headers,
    body: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, SourceError> {
    let form = headers
        .get("content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| std::borrow::Cow::Owned(v.into_owned().into_bytes()))
        .ok_or_else(|| {
            SourceError::bad(
                "payload",
                "a form-encoded delivery carries its JSON in a `payload` field, and this one has none",
            )
        })
}

/// How a finished run or check reads on a card; `None` for conclusions that are not news.
fn conclusion(c: &str) -> Option<(Severity, Status, &'static str)> {
    Some(match c {
        "success" => (Severity::Ok, Status::Resolved, "succeeded"),
        "failure" => (Severity::Error, Status::Firing, "failed"),
        "timed_out" => (Severity::Error, Status::Firing, "timed out"),
        "startup_failure" => (Severity::Error, Status::Firing, "failed to start"),
        "action_required" => (Severity::Warning, Status::Firing, "needs action"),
        _ => return None,
    })
}

/// The repository's `full_name` (required: every key and title needs it) and web address.
fn repository<'a>(root: &At<'a>) -> Result<(&'a str, Option<&'a str>), SourceError> {
    let repo = root.get("repository");
    repo.require_object("the repository")?;
    Ok((
        repo.get("full_name").str_req()?,
        repo.get("html_url").text()?,
    ))
}

/// The short name of `owner/name`, used as the event's service.
fn repo_name(full: &str) -> &str {
    full.rsplit('/').next().unwrap_or(full)
}

fn base(title: String, repo: &str) -> Event {
    Event {
        title,
        text: String::new(),
        severity: Severity::Info,
        status: Status::Firing,
        kind: Kind::Alert,
        source: NAME.into(),
        service: repo_name(repo).into(),
        environment: String::new(),
        labels: [("repository".to_owned(), repo.to_owned())].into(),
        fields: Vec::new(),
        links: Vec::new(),
        dedup_key: None,
        occurred_at: None,
    }
}

fn commit_link(repo_url: Option<&str>, sha: Option<&str>) -> Option<String> {
    Some(format!(
        "{}/commit/{}",
        repo_url?.trim_end_matches('/'),
        sha?
    ))
}

fn workflow_run(root: &At<'_>) -> Result<Parsed, SourceError> {
    let action = root.get("action").str_req()?;
    let run = root.get("workflow_run");
    // A run that waits for someone to approve it (a pull request from a fork, a protected environment) arrives as
    // `requested` already concluded `action_required`: that is news even though the run is not completed.
    let waiting = run.get("conclusion").text().ok().flatten() == Some("action_required");
    if action != "completed" && !waiting {
        return Ok(Parsed::ignored(format!(
            "workflow_run \"{action}\": only completed runs are posted"
        )));
    }
    run.require_object("the workflow run")?;
    let (repo, repo_url) = repository(root)?;
    let name = run
        .get("name")
        .text()?
        .or(root.get("workflow").get("name").text()?)
        .unwrap_or("workflow");
    // GitHub sends `completed` with `conclusion: null` now and then (a run whose jobs were never scheduled). It is
    // not a malformed delivery: refusing it would be recorded as a failed delivery and retried.
    let Some(c) = run.get("conclusion").text()? else {
        return Ok(Parsed::ignored(format!(
            "workflow \"{name}\" in {repo} completed without a conclusion: not posted"
        )));
    };
    let Some((severity, status, verb)) = conclusion(c) else {
        return Ok(Parsed::ignored(format!(
            "workflow \"{name}\" in {repo} concluded \"{c}\": not posted"
        )));
    };
    let branch = run.get("head_branch").text()?;
    let sha = run.get("head_sha").text()?;
    // The workflow file is stable across renames of the workflow's display name.
    let workflow_id = run.get("path").text()?.unwrap_or(name);
    let on = branch.map(|b| format!(" on {b}")).unwrap_or_default();

    let mut e = base(format!("{name} {verb}{on} in {repo}"), repo);
    e.severity = severity;
    e.status = status;
    e.kind = if name.to_ascii_lowercase().contains("deploy") {
        Kind::Deployment
    } else {
        Kind::Alert
    };
    e.text = run
        .get("display_title")
        .text()?
        .unwrap_or_default()
        .to_owned();
    e.labels.insert("workflow".into(), name.into());
    if let Some(b) = branch {
        e.labels.insert("branch".into(), b.into());
    }
    e.labels.insert("conclusion".into(), c.into());
    if let Some(ev) = run.get("event").text()? {
        e.labels.insert("trigger".into(), ev.into());
    }
    let number = run.get("run_number").id_opt()?;
    let attempt = run.get("run_attempt").id_opt()?.filter(|a| a != "1");
    push_field(
        &mut e,
        "Run",
        number.map(|n| match &attempt {
            Some(a) => format!("#{n} (attempt {a})"),
            None => format!("#{n}"),
        }),
    );
    push_field(&mut e, "Commit", sha.map(short_sha));
    let actor = run.get("triggering_actor").get("login").text()?;
    let actor = actor.or(run.get("actor").get("login").text()?);
    push_field(&mut e, "Triggered by", actor);
    push_link(&mut e, "Run", run.get("html_url").text()?);
    push_link(&mut e, "Commit", commit_link(repo_url, sha).as_deref());
    e.dedup_key = Some(format!(
        "gh:{repo}:{workflow_id}:{}",
        branch.or(sha).unwrap_or("-")
    ));
    e.occurred_at = run
        .get("updated_at")
        .time_opt()?
        .or(run.get("run_started_at").time_opt()?)
        .or(run.get("created_at").time_opt()?);
    Ok(Parsed::events(vec![fit(e)]))
}

fn check_run(root: &At<'_>) -> Result<Parsed, SourceError> {
    let action = root.get("action").str_req()?;
    if action != "completed" {
        return Ok(Parsed::ignored(format!(
            "check_run \"{action}\": only completed checks are posted"
        )));
    }
    let check = root.get("check_run");
    check.require_object("the check run")?;
    let (repo, repo_url) = repository(root)?;
    let name = check.get("name").str_req()?;
    let Some(c) = check.get("conclusion").text()? else {
        return Err(check
            .get("conclusion")
            .bad("is required for a completed check (a string)"));
    };
    let Some((severity, status, verb)) = conclusion(c) else {
        return Ok(Parsed::ignored(format!(
            "check \"{name}\" in {repo} concluded \"{c}\": not posted"
        )));
    };
    // Checks on a pull request from a fork have no branch here; the commit still tells one
    // run from another.
    let branch = check.get("check_suite").get("head_branch").text()?;
    let sha = check.get("head_sha").text()?;
    let on = branch.map(|b| format!(" on {b}")).unwrap_or_default();

    let mut e = base(format!("Check {name} {verb}{on} in {repo}"), repo);
    e.severity = severity;
    e.status = status;
    e.text = check
        .get("output")
        .get("title")
        .text()?
        .unwrap_or_default()
        .to_owned();
    e.labels.insert("check".into(), name.into());
    if let Some(b) = branch {
        e.labels.insert("branch".into(), b.into());
    }
    e.labels.insert("conclusion".into(), c.into());
    push_field(&mut e, "Commit", sha.map(short_sha));
    push_field(&mut e, "App", check.get("app").get("name").text()?);
    push_field(
        &mut e,
        "Summary",
        check.get("output").get("summary").text()?,
    );
    push_link(&mut e, "Check", check.get("html_url").text()?);
    push_link(&mut e, "Details", check.get("details_url").text()?);
    push_link(&mut e, "Commit", commit_link(repo_url, sha).as_deref());
    e.dedup_key = Some(format!(
        "gh:{repo}:check:{name}:{}",
        branch.or(sha).unwrap_or("-")
    ));
    e.occurred_at = check
        .get("completed_at")
        .time_opt()?
        .or(check.get("started_at").time_opt()?);
    Ok(Parsed::events(vec![fit(e)]))
}

fn deployment_status(root: &At<'_>) -> Result<Parsed, SourceError> {
    let ds = root.get("deployment_status");
    ds.require_object("the deployment status")?;
    let deployment = root.get("deployment");
    deployment.require_object("the deployment")?;
    let (repo, repo_url) = repository(root)?;
    let state_at = ds.get("state");
    let state = state_at.str_req()?;
    let (severity, status, verb) = match state {
        "success" => (Severity::Ok, Status::Resolved, "succeeded"),
        "failure" => (Severity::Error, Status::Resolved, "failed"),
        "error" => (Severity::Error, Status::Resolved, "errored"),
        "pending" | "queued" => (Severity::Info, Status::Firing, "is queued"),
        "in_progress" => (Severity::Info, Status::Firing, "is in progress"),
        // A newer deployment replaced this one; that one has its own card.
        "inactive" => {
            return Ok(Parsed::ignored(format!(
                "deployment status \"inactive\" in {repo}: not posted"
            )))
        }
        other => {
            return Err(state_at.bad(format!(
                "\"{other}\" is not a deployment state; expected success, failure, error, \
                 pending, queued, in_progress or inactive"
            )))
        }
    };
    let environment = ds
        .get("environment")
        .text()?
        .or(deployment.get("environment").text()?)
        .unwrap_or_default();
    let git_ref = deployment.get("ref").text()?;
    let sha = deployment.get("sha").text()?;
    let id = deployment.get("id").id_opt()?;
    let to = if environment.is_empty() {
        String::new()
    } else {
        format!(" to {environment}")
    };

    let mut e = base(format!("Deployment of {repo}{to} {verb}"), repo);
    e.severity = severity;
    e.status = status;
    e.kind = Kind::Deployment;
    e.environment = environment.into();
    e.text = ds
        .get("description")
        .text()?
        .or(deployment.get("description").text()?)
        .unwrap_or_default()
        .to_owned();
    e.labels.insert("state".into(), state.into());
    if let Some(r) = git_ref {
        e.labels.insert("ref".into(), r.into());
    }
    push_field(&mut e, "Ref", git_ref);
    push_field(&mut e, "Commit", sha.map(short_sha));
    push_field(
        &mut e,
        "Task",
        deployment.get("task").text()?.filter(|t| *t != "deploy"),
    );
    let by = ds.get("creator").get("login").text()?;
    push_field(
        &mut e,
        "By",
        by.or(deployment.get("creator").get("login").text()?),
    );
    push_link(
        &mut e,
        "Logs",
        ds.get("log_url").text()?.or(ds.get("target_url").text()?),
    );
    push_link(&mut e, "Environment", ds.get("environment_url").text()?);
    push_link(&mut e, "Commit", commit_link(repo_url, sha).as_deref());
    // One card per deployment, updated as it moves from queued to its outcome.
    e.dedup_key = Some(match id {
        Some(id) => format!("gh:{repo}:deployment:{id}"),
        None => format!("gh:{repo}:deployment:{environment}:{}", sha.unwrap_or("-")),
    });
    e.occurred_at = ds
        .get("updated_at")
        .time_opt()?
        .or(ds.get("created_at").time_opt()?);
    Ok(Parsed::events(vec![fit(e)]))
}
