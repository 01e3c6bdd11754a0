//! GitLab webhooks: [`GitLab`]. Every delivery must carry `X-Gitlab-Token` equal to the
//! configured token (compared in constant time) before anything is read. `X-Gitlab-Event`
//! picks the mapping:
//!
//! | event | becomes |
//! |---|---|
//! | `Pipeline Hook` | success → `ok`/resolved; failed → `error`/firing. Canceled, skipped and still-running pipelines produce nothing |
//! | `Deployment Hook` | running/created → `info`/firing; success → `ok`, failed → `error`, canceled → `warning`, all resolved. Kind `deployment` |
//! | anything else | nothing, with `ignored` saying which event it was |
//!
//! Dedup keys follow the GitHub adapter's idea: one card per pipeline and ref
//! (`gl:{project}:{pipeline name or "pipeline"}:{ref}`), so the green pipeline after a red one
//! resolves its card; one card per deployment (`gl:{project}:deployment:{id}`), updated from
//! running to its outcome. A pipeline is kind `deployment` when its name contains "deploy",
//! else `alert`.

use sluice_core::{Event, Kind, Severity, Status};
use sluice_slack_wire::Secret;

use crate::payload::{parse_json, At};
use crate::shape::{duration, fit, push_field, push_link, short_sha};
use crate::verify::gitlab_token;
use crate::{Headers, Parsed, Source, SourceError};

#[cfg(test)]
mod tests;

/// The source's configured name and each event's `source`.
pub const NAME: &str = "gitlab";

/// The header that names the event type.
pub const EVENT_HEADER: &str = "X-Gitlab-Event";
/// The header that carries the webhook's secret token.
pub const TOKEN_HEADER: &str = "X-Gitlab-Token";

/// The GitLab webhook adapter, holding the secret token.
#[derive(Debug, Clone)]
pub struct GitLab {
    secret: Option<Secret>,
}

impl GitLab {
    /// An adapter that accepts deliveries carrying `secret` as their token. Without one,
    /// every delivery is refused as unauthorized.
    pub fn new(secret: Option<Secret>) -> Self {
        GitLab { secret }
    }
}

impl Source for GitLab {
    fn name(&self) -> &'static str {
        NAME
    }

    fn parse(&self, headers: &Headers, body: &[u8]) -> Result<Parsed, SourceError> {
        gitlab_token(self.secret.as_ref(), headers.get(TOKEN_HEADER))?;
        let event = headers
            .get(EVENT_HEADER)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                SourceError::bad(
                    EVENT_HEADER,
                    "the header is missing; GitLab sends it with every delivery",
                )
            })?;
        match event {
            "Pipeline Hook" => pipeline(&At::root(&parse_json(body)?)),
            "Deployment Hook" => deployment(&At::root(&parse_json(body)?)),
            other => Ok(Parsed::ignored(format!("ignored event type \"{other}\""))),
        }
    }
}

/// The project's `path_with_namespace` (required: keys and titles need it) and web address.
fn project<'a>(root: &At<'a>) -> Result<(&'a str, Option<&'a str>), SourceError> {
    let p = root.get("project");
    p.require_object("the project")?;
    Ok((
        p.get("path_with_namespace").str_req()?,
        p.get("web_url").text()?,
    ))
}

fn base(title: String, project: &str) -> Event {
    Event {
        title,
        text: String::new(),
        severity: Severity::Info,
        status: Status::Firing,
        kind: Kind::Alert,
        source: NAME.into(),
        service: project.rsplit('/').next().unwrap_or(project).into(),
        environment: String::new(),
        labels: [("project".to_owned(), project.to_owned())].into(),
        fields: Vec::new(),
        links: Vec::new(),
        dedup_key: None,
        occurred_at: None,
    }
}

fn pipeline(root: &At<'_>) -> Result<Parsed, SourceError> {
    let attrs = root.get("object_attributes");
    attrs.require_object("the pipeline's attributes")?;
    let (project, project_url) = project(root)?;
    let status = attrs.get("status").str_req()?;
    let id = attrs.get("id").id_opt()?;
    let (severity, state, verb) = match status {
        "success" => (Severity::Ok, Status::Resolved, "passed"),
        "failed" => (Severity::Error, Status::Firing, "failed"),
        // Canceled and skipped pipelines say nothing about the code, and a canceled pipeline
        // must not close a failure card; the rest are still on their way to an outcome.
        other => {
            return Ok(Parsed::ignored(format!(
                "pipeline {} in {project} is \"{other}\": only success and failed are posted",
                id.as_deref().unwrap_or("?")
            )))
        }
    };
    let git_ref = attrs.get("ref").text()?;
    let name = attrs.get("name").text()?;
    let sha = attrs.get("sha").text()?;
    let label = match (name, &id) {
        (Some(n), _) => n.to_owned(),
        (None, Some(id)) => format!("Pipeline #{id}"),
        (None, None) => "Pipeline".to_owned(),
    };
    let on = git_ref.map(|r| format!(" on {r}")).unwrap_or_default();

    let mut e = base(format!("{label} {verb}{on} in {project}"), project);
    e.severity = severity;
    e.status = state;
    e.kind = if name.is_some_and(|n| n.to_ascii_lowercase().contains("deploy")) {
        Kind::Deployment
    } else {
        Kind::Alert
    };
    let commit = root.get("commit");
    e.text = commit.get("title").text()?.unwrap_or_default().to_owned();
    if let Some(r) = git_ref {
        e.labels.insert("ref".into(), r.into());
    }
    e.labels.insert("status".into(), status.into());
    if let Some(s) = attrs.get("source").text()? {
        e.labels.insert("trigger".into(), s.into());
    }
    if let Some(n) = name {
        e.labels.insert("pipeline".into(), n.into());
    }
    push_field(&mut e, "Pipeline", id.as_ref().map(|i| format!("#{i}")));
    push_field(&mut e, "Commit", sha.map(short_sha));
    push_field(&mut e, "Triggered by", root.get("user").get("name").text()?);
    push_field(
        &mut e,
        "Duration",
        attrs.get("duration").f64_opt()?.map(duration),
    );
    let mut failed = Vec::new();
    for job in root.get("builds").items_opt()? {
        // A job allowed to fail does not fail the pipeline; naming it would mislead.
        let allowed = matches!(
            job.get("allow_failure").raw()?,
            Some(serde_json::Value::Bool(true))
        );
        if job.get("status").text()? == Some("failed") && !allowed {
            let name = job.get("name").text()?.unwrap_or("?");
            failed.push(match job.get("stage").text()? {
                Some(stage) => format!("{stage}: {name}"),
                None => name.to_owned(),
            });
        }
    }
    if !failed.is_empty() {
        failed.sort();
        push_field(&mut e, "Failed jobs", Some(failed.join(", ")));
    }
    let pipeline_url = attrs.get("url").text()?.map(str::to_owned).or_else(|| {
        Some(format!(
            "{}/-/pipelines/{}",
            project_url?.trim_end_matches('/'),
            id.as_deref()?
        ))
    });
    push_link(&mut e, "Pipeline", pipeline_url.as_deref());
    push_link(&mut e, "Commit", commit.get("url").text()?);
    e.dedup_key = Some(format!(
        "gl:{project}:{}:{}",
        name.unwrap_or("pipeline"),
        git_ref.or(sha).unwrap_or("-")
    ));
    e.occurred_at = attrs
        .get("finished_at")
        .time_opt()?
        .or(attrs.get("created_at").time_opt()?);
    Ok(Parsed::events(vec![fit(e)]))
}

fn deployment(root: &At<'_>) -> Result<Parsed, SourceError> {
    let (project, _) = project(root)?;
    let status_at = root.get("status");
    let status = status_at.str_req()?;
    let (severity, state, verb) = match status {
        "success" => (Severity::Ok, Status::Resolved, "succeeded"),
        "failed" => (Severity::Error, Status::Resolved, "failed"),
        "canceled" => (Severity::Warning, Status::Resolved, "was canceled"),
        "running" => (Severity::Info, Status::Firing, "is running"),
        "created" | "blocked" => (Severity::Info, Status::Firing, "is waiting"),
        other => {
            return Err(status_at.bad(format!(
                "\"{other}\" is not a deployment status; expected created, running, success, \
                 failed, canceled or blocked"
            )))
        }
    };
    let environment = root.get("environment").text()?.unwrap_or_default();
    let id = root.get("deployment_id").id_opt()?;
    let git_ref = root.get("ref").text()?;
    let sha = root.get("short_sha").text()?;
    let to = if environment.is_empty() {
        String::new()
    } else {
        format!(" to {environment}")
    };

    let mut e = base(format!("Deployment of {project}{to} {verb}"), project);
    e.severity = severity;
    e.status = state;
    e.kind = Kind::Deployment;
    e.environment = environment.into();
    e.text = root
        .get("commit_title")
        .text()?
        .unwrap_or_default()
        .to_owned();
    e.labels.insert("status".into(), status.into());
    if let Some(tier) = root.get("environment_tier").text()? {
        e.labels.insert("tier".into(), tier.into());
    }
    if let Some(r) = git_ref {
        e.labels.insert("ref".into(), r.into());
    }
    push_field(&mut e, "Ref", git_ref);
    push_field(&mut e, "Commit", sha);
    push_field(&mut e, "By", root.get("user").get("name").text()?);
    push_link(&mut e, "Job", root.get("deployable_url").text()?);
    push_link(
        &mut e,
        "Environment",
        root.get("environment_external_url").text()?,
    );
    push_link(&mut e, "Commit", root.get("commit_url").text()?);
    e.dedup_key = Some(match id {
        Some(id) => format!("gl:{project}:deployment:{id}"),
        None => format!(
            "gl:{project}:deployment:{environment}:{}",
            sha.unwrap_or("-")
        ),
    });
    e.occurred_at = root.get("status_changed_at").time_opt()?;
    Ok(Parsed::events(vec![fit(e)]))
}
