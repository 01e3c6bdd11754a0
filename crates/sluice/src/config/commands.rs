//! ChatOps configuration: `[[command]]` (commands under the `[actions] command` slash command), `[[rotation]]`
//! (on-call rotations `oncall` answers from) and `[[schedule]]` (reports posted on a cron schedule). Checked into
//! [`ChatopsConfig`], each problem reported with its line and fix like the rest of the file.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use sluice_domain::command::{parse_value, ArgSpec, ArgType, CommandSpec};
use sluice_domain::outgoing::Origin;
use sluice_domain::rotation::{parse_time_in, Handoff, Override, Rotation};
use sluice_domain::schedule::{CronIn, Missed};
use toml::Spanned;

use super::{ApprovalsConfig, Report};

/// The commands Sluice answers itself; a `[[command]]` may not take these names.
pub const BUILT_INS: [&str; 7] = [
    "help", "status", "oncall", "silence", "ack", "remind", "incident",
];

/// `[[command]]` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    pub name: String,
    /// `deploy <service> <env>`; made from the arguments when left out.
    pub usage: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub args: Vec<RawArg>,
    /// Who may run it: user ids, user group ids, channels (ids or names). All empty: everyone, everywhere.
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    /// The `[[action]]` it runs.
    pub action: Option<String>,
    /// The `[[form]]` it opens instead (whose `action` runs on submission).
    pub form: Option<String>,
    /// Ask Run / Cancel before running the action, even when the action has no `confirm` of its own.
    #[serde(default)]
    pub confirm: bool,
    /// `"ephemeral"` (the default) or `"channel"`.
    pub reply: Option<String>,
}

/// One argument of a `[[command]]`, as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawArg {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub values: Vec<String>,
    pub default: Option<toml::Value>,
    pub required: Option<bool>,
    /// A last `string` argument that takes the rest of the text.
    #[serde(default)]
    pub rest: bool,
}

/// `[[rotation]]` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRotation {
    pub name: String,
    pub members: Vec<String>,
    pub handoff: String,
    pub handoff_day: Option<String>,
    #[serde(default = "default_handoff_time")]
    pub handoff_time: String,
    #[serde(default = "default_zone")]
    pub time_zone: String,
    pub start: String,
    #[serde(default)]
    pub overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawOverride {
    pub user: String,
    pub from: String,
    pub to: String,
}

/// `[[schedule]]` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub name: String,
    pub cron: String,
    #[serde(default = "default_zone")]
    pub time_zone: String,
    pub channel: String,
    /// `"stats"`: Sluice's own statistics for the period.
    pub report: Option<String>,
    /// An HTTP JSON endpoint whose answer the template sees as `data`.
    pub url: Option<String>,
    pub timeout_ms: Option<u64>,
    /// What the statistics cover, back from the run (default 24h).
    pub period: Option<String>,
    pub template: Option<String>,
    /// `"run_once"` (the default) or `"skip"`.
    pub missed: Option<String>,
    /// Channels (ids or names) whose decisions and action items of the period the report digests (`digest`).
    #[serde(default)]
    pub digest_channels: Vec<String>,
    /// An OpenAI-compatible chat-completions URL that summarises the digest; allow-listed like `url`. Nothing is
    /// sent to it unless it is set.
    pub llm_url: Option<String>,
    /// The environment variable holding its API key (sent as a bearer token).
    pub llm_key_env: Option<String>,
    pub llm_model: Option<String>,
}

fn default_handoff_time() -> String {
    "09:00".into()
}

fn default_zone() -> String {
    "UTC".into()
}

/// Where a command's answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    Ephemeral,
    Channel,
}

/// One `[[command]]`, checked.
#[derive(Debug, Clone)]
pub struct CommandConfig {
    pub spec: CommandSpec,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub channels: Vec<String>,
    /// The `[[action]]` it runs, by name.
    pub action: Option<String>,
    /// The `[[form]]` it opens, by name (then `action` is `None`).
    pub form: Option<String>,
    /// Run / Cancel first (also when the action has a `confirm`).
    pub confirm: bool,
    pub reply: ReplyTo,
}

/// One `[[schedule]]`, checked.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub name: String,
    pub cron: CronIn,
    pub cron_text: String,
    pub channel: String,
    pub stats: bool,
    pub url: Option<String>,
    pub timeout_ms: u64,
    pub period_ms: i64,
    pub template: String,
    pub missed: Missed,
    /// Channels digested (`digest` in the template), empty for none.
    pub digest_channels: Vec<String>,
    /// The LLM that summarises the digest, when configured: URL, key variable, model.
    pub llm: Option<(String, Option<String>, String)>,
}

/// The ChatOps part of the configuration, checked.
#[derive(Debug, Clone, Default)]
pub struct ChatopsConfig {
    pub commands: Vec<CommandConfig>,
    pub rotations: Vec<Rotation>,
    pub schedules: Vec<ScheduleConfig>,
}

/// The template a schedule uses when it names none.
pub const DEFAULT_TEMPLATE: &str = "*{{ schedule }}*{% if stats %} — {{ stats.from }} to {{ stats.to }}
• events received: {{ stats.received }}, posted: {{ stats.posted }}, suppressed: {{ stats.suppressed }}, dead-lettered: {{ stats.dead_lettered }}
• approvals: {{ stats.approvals }}{% if stats.noisiest_services %}
• noisiest services: {% for s in stats.noisiest_services %}{{ s.name }} ({{ s.count }}){% if not loop.last %}, {% endif %}{% endfor %}{% endif %}{% if stats.noisiest_routes %}
• noisiest routes: {% for r in stats.noisiest_routes %}{{ r.name }} ({{ r.count }}){% if not loop.last %}, {% endif %}{% endfor %}{% endif %}{% endif %}{% if data %}
{{ data | tojson }}{% endif %}{% if digest %}
{{ digest }}{% endif %}";

const DEFAULT_TIMEOUT_MS: u64 = 5_000;

fn arg_type(raw: &RawArg) -> Result<ArgType, (String, &'static str)> {
    Ok(match raw.ty.as_str() {
        "string" => ArgType::String,
        "int" => ArgType::Int,
        "duration" => ArgType::Duration,
        "user" => ArgType::User,
        "channel" => ArgType::Channel,
        "enum" if raw.values.is_empty() => {
            return Err((
                format!("argument {:?} is an enum without values", raw.name),
                "list what it may be: values = [\"staging\", \"production\"]",
            ))
        }
        "enum" => ArgType::Enum(raw.values.clone()),
        other => {
            return Err((
                format!("argument {:?} has an unknown type {other:?}", raw.name),
                "use one of string, int, enum, duration, user, channel",
            ))
        }
    })
}

fn check_command(c: &Spanned<RawCommand>, p: &mut Report<'_>) -> Option<CommandConfig> {
    let span = Some(c.span());
    let raw = c.get_ref();
    let name = raw.name.trim();
    let mut ok = true;
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        p(
            span.clone(),
            format!("command name {:?} is not one word", raw.name),
            "name it with one word, e.g. name = \"deploy\"",
        );
        ok = false;
    }
    if BUILT_INS.contains(&name) {
        p(
            span.clone(),
            format!("command {name:?} has the name of a built-in command"),
            &format!(
                "choose another name: {} are Sluice's own",
                BUILT_INS.join(", ")
            ),
        );
        ok = false;
    }
    let mut args = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, a) in raw.args.iter().enumerate() {
        if !seen.insert(a.name.as_str()) {
            p(
                span.clone(),
                format!("command {name:?}: argument {:?} is listed twice", a.name),
                "give every argument its own name",
            );
            ok = false;
        }
        let ty = match arg_type(a) {
            Ok(t) => t,
            Err((m, fix)) => {
                p(span.clone(), format!("command {name:?}: {m}"), fix);
                ok = false;
                continue;
            }
        };
        if a.rest && (i + 1 != raw.args.len() || ty != ArgType::String) {
            p(
                span.clone(),
                format!(
                    "command {name:?}: argument {:?} takes the rest of the text but is not the last string argument",
                    a.name
                ),
                "only the last argument, of type string, may have rest = true",
            );
            ok = false;
        }
        let default = a.default.as_ref().map(|d| match d {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        if let Some(d) = &default {
            if let Err(e) = parse_value(&ty, d) {
                p(
                    span.clone(),
                    format!("command {name:?}: the default of {:?}: {e}", a.name),
                    "give a default of the argument's type, or leave it out to make the argument required",
                );
                ok = false;
            }
        }
        if a.required == Some(false) && default.is_none() {
            p(
                span.clone(),
                format!(
                    "command {name:?}: argument {:?} is optional without a default",
                    a.name
                ),
                "give it a default, or leave `required` out",
            );
            ok = false;
        }
        args.push(ArgSpec {
            name: a.name.clone(),
            ty,
            default,
            rest: a.rest,
        });
    }
    let has = |v: &Option<String>| v.as_deref().is_some_and(|a| !a.trim().is_empty());
    match (has(&raw.action), has(&raw.form)) {
        (false, false) => {
            p(
                span.clone(),
                format!("command {name:?} has no action"),
                "name the [[action]] it runs: action = \"deploy\" (or the [[form]] it opens: form = \"deploy\")",
            );
            ok = false;
        }
        (true, true) => {
            p(
                span.clone(),
                format!("command {name:?} has both an action and a form"),
                "keep one: a form runs its own action when it is submitted",
            );
            ok = false;
        }
        _ => {}
    }
    let reply = match raw.reply.as_deref() {
        None | Some("ephemeral") => ReplyTo::Ephemeral,
        Some("channel") => ReplyTo::Channel,
        Some(other) => {
            p(
                span.clone(),
                format!("command {name:?}: reply {other:?} is not \"channel\" or \"ephemeral\""),
                "use reply = \"channel\" (everyone in the channel sees the answer) or \"ephemeral\" (the default)",
            );
            ok = false;
            ReplyTo::Ephemeral
        }
    };
    let usage = raw.usage.clone().unwrap_or_else(|| {
        let mut u = name.to_string();
        for a in &args {
            if a.default.is_some() {
                u.push_str(&format!(" [{}]", a.name));
            } else {
                u.push_str(&format!(" <{}>", a.name));
            }
        }
        u
    });
    ok.then(|| CommandConfig {
        spec: CommandSpec {
            name: name.to_string(),
            usage,
            description: raw.description.clone(),
            args,
        },
        users: raw.users.clone(),
        groups: raw.groups.clone(),
        channels: raw
            .channels
            .iter()
            .map(|c| c.trim_start_matches('#').to_string())
            .collect(),
        action: raw.action.clone().filter(|a| !a.trim().is_empty()),
        form: raw.form.clone().filter(|f| !f.trim().is_empty()),
        confirm: raw.confirm,
        reply,
    })
}

fn zone(text: &str) -> Result<Tz, String> {
    Tz::from_str(text).map_err(|_| format!("time_zone {text:?} is not a time zone"))
}

const ZONE_FIX: &str =
    "use an IANA zone name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"";

fn check_rotation(r: &Spanned<RawRotation>, p: &mut Report<'_>) -> Option<Rotation> {
    let span = Some(r.span());
    let raw = r.get_ref();
    let name = &raw.name;
    let mut ok = true;
    let tz = zone(&raw.time_zone)
        .map_err(|e| p(span.clone(), format!("rotation {name:?}: {e}"), ZONE_FIX))
        .ok();
    if raw.members.is_empty() {
        p(
            span.clone(),
            format!("rotation {name:?} has no members"),
            "list the user ids in turn order: members = [\"U0123\", \"U0456\"]",
        );
        ok = false;
    }
    let handoff = match (raw.handoff.as_str(), &raw.handoff_day) {
        ("daily", None) => Some(Handoff::Daily),
        ("daily", Some(_)) => {
            p(
                span.clone(),
                format!("rotation {name:?}: handoff_day is set on a daily rotation"),
                "remove handoff_day, or set handoff = \"weekly\"",
            );
            None
        }
        ("weekly", Some(day)) => match Weekday::from_str(day) {
            Ok(d) => Some(Handoff::Weekly(d)),
            Err(_) => {
                p(
                    span.clone(),
                    format!("rotation {name:?}: handoff_day {day:?} is not a weekday"),
                    "use monday … sunday (or mon … sun)",
                );
                None
            }
        },
        ("weekly", None) => {
            p(
                span.clone(),
                format!("rotation {name:?} is weekly without a handoff_day"),
                "add handoff_day = \"monday\" (or the day your hand-off is)",
            );
            None
        }
        (other, _) => {
            p(
                span.clone(),
                format!("rotation {name:?}: handoff {other:?} is not daily or weekly"),
                "use handoff = \"weekly\" (with handoff_day) or \"daily\"",
            );
            None
        }
    };
    let time = NaiveTime::parse_from_str(&raw.handoff_time, "%H:%M")
        .map_err(|_| {
            p(
                span.clone(),
                format!(
                    "rotation {name:?}: handoff_time {:?} is not HH:MM",
                    raw.handoff_time
                ),
                "write the hand-off time as 24-hour HH:MM, e.g. \"09:00\"",
            )
        })
        .ok();
    let start = NaiveDate::parse_from_str(&raw.start, "%Y-%m-%d")
        .map_err(|_| {
            p(
                span.clone(),
                format!("rotation {name:?}: start {:?} is not a date", raw.start),
                "write the day the first member's turn starts as YYYY-MM-DD",
            )
        })
        .ok();
    let mut overrides = Vec::new();
    if let Some(tz) = tz {
        for o in &raw.overrides {
            match (parse_time_in(tz, &o.from), parse_time_in(tz, &o.to)) {
                (Ok(from), Ok(to)) if from < to => overrides.push(Override {
                    user: o.user.clone(),
                    from,
                    to,
                }),
                (Ok(_), Ok(_)) => {
                    p(
                        span.clone(),
                        format!(
                            "rotation {name:?}: the override for {} ends before it starts",
                            o.user
                        ),
                        "make `to` later than `from`",
                    );
                    ok = false;
                }
                (Err(e), _) | (_, Err(e)) => {
                    p(
                        span.clone(),
                        format!("rotation {name:?}: override for {}: {e}", o.user),
                        "write from/to as \"2026-03-29 09:00\" (in the rotation's time zone) or RFC 3339",
                    );
                    ok = false;
                }
            }
        }
    }
    match (tz, handoff, time, start, ok) {
        (Some(time_zone), Some(handoff), Some(handoff_time), Some(start), true) => Some(Rotation {
            name: name.clone(),
            members: raw.members.clone(),
            handoff,
            handoff_time,
            time_zone,
            start,
            overrides,
        }),
        _ => None,
    }
}

fn check_schedule(
    s: &Spanned<RawSchedule>,
    approvals: &ApprovalsConfig,
    p: &mut Report<'_>,
) -> Option<ScheduleConfig> {
    let span = Some(s.span());
    let raw = s.get_ref();
    let name = &raw.name;
    let mut ok = true;
    let tz = zone(&raw.time_zone)
        .map_err(|e| p(span.clone(), format!("schedule {name:?}: {e}"), ZONE_FIX))
        .ok();
    let cron = tz.and_then(|tz| {
        CronIn::parse(&raw.cron, tz)
            .map_err(|e| {
                p(
                    span.clone(),
                    format!("schedule {name:?}: cron {e}"),
                    "write five fields, minute hour day-of-month month day-of-week, e.g. \"0 9 * * 1-5\" (09:00 on weekdays)",
                )
            })
            .ok()
    });
    let stats = match raw.report.as_deref() {
        None => false,
        Some("stats") => true,
        Some(other) => {
            p(
                span.clone(),
                format!("schedule {name:?}: report {other:?} is not a report Sluice has"),
                "use report = \"stats\" (events received, posted, suppressed and dead-lettered, approvals, the noisiest services and routes)",
            );
            ok = false;
            false
        }
    };
    if let Some(url) = &raw.url {
        match Origin::of(url) {
            Ok(o) if approvals.allowed().contains(&o) => {}
            Ok(o) => {
                p(
                    span.clone(),
                    format!("schedule {name:?}: url {url:?} goes to {o}, which is not allow-listed"),
                    &format!("add \"{o}\" to [approvals] callback_hosts, the destinations Sluice may call"),
                );
                ok = false;
            }
            Err(e) => {
                p(
                    span.clone(),
                    format!("schedule {name:?}: url: {e}"),
                    "give the http(s) URL of a JSON endpoint",
                );
                ok = false;
            }
        }
    }
    if let Some(url) = &raw.llm_url {
        match Origin::of(url) {
            Ok(o) if approvals.allowed().contains(&o) => {}
            Ok(o) => {
                p(
                    span.clone(),
                    format!("schedule {name:?}: llm_url {url:?} goes to {o}, which is not allow-listed"),
                    &format!("add \"{o}\" to [approvals] callback_hosts, the destinations Sluice may call"),
                );
                ok = false;
            }
            Err(e) => {
                p(
                    span.clone(),
                    format!("schedule {name:?}: llm_url: {e}"),
                    "give the http(s) URL of an OpenAI-compatible /v1/chat/completions endpoint",
                );
                ok = false;
            }
        }
        if raw.digest_channels.is_empty() {
            p(
                span.clone(),
                format!("schedule {name:?} has an llm_url but no digest_channels"),
                "list the channels to digest: digest_channels = [\"eng\"]",
            );
            ok = false;
        }
    }
    if !stats && raw.url.is_none() && raw.template.is_none() && raw.digest_channels.is_empty() {
        p(
            span.clone(),
            format!("schedule {name:?} has nothing to report"),
            "set report = \"stats\", a url to fetch, or a template (a reminder)",
        );
        ok = false;
    }
    let template = raw
        .template
        .clone()
        .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
    if let Err(e) = minijinja::Environment::new().template_from_str(&template) {
        p(
            span.clone(),
            format!("schedule {name:?}: the template does not compile: {e}"),
            "fix the minijinja template (it sees schedule, stats and data)",
        );
        ok = false;
    }
    let missed = match raw.missed.as_deref() {
        None | Some("run_once") => Missed::RunOnce,
        Some("skip") => Missed::Skip,
        Some(other) => {
            p(
                span.clone(),
                format!("schedule {name:?}: missed {other:?} is not run_once or skip"),
                "use missed = \"run_once\" (a run missed while Sluice was down runs once at start) or \"skip\"",
            );
            ok = false;
            Missed::RunOnce
        }
    };
    let period_ms = match raw.period.as_deref() {
        None => 86_400_000,
        Some(text) => match sluice_core::duration::parse_duration_ms(text) {
            Ok(ms) if ms > 0 => ms,
            _ => {
                p(
                    span.clone(),
                    format!("schedule {name:?}: period {text:?} is not a duration"),
                    sluice_core::duration::DURATION_HINT,
                );
                ok = false;
                0
            }
        },
    };
    let channel = raw.channel.trim().trim_start_matches('#').to_string();
    if channel.is_empty() {
        p(
            span.clone(),
            format!("schedule {name:?} has no channel"),
            "name the channel to post in, e.g. channel = \"ops\"",
        );
        ok = false;
    }
    match (cron, ok) {
        (Some(cron), true) => Some(ScheduleConfig {
            name: name.clone(),
            cron,
            cron_text: raw.cron.clone(),
            channel,
            stats,
            url: raw.url.clone(),
            timeout_ms: raw
                .timeout_ms
                .unwrap_or(DEFAULT_TIMEOUT_MS)
                .clamp(100, 60_000),
            period_ms,
            template,
            missed,
            digest_channels: raw
                .digest_channels
                .iter()
                .map(|c| c.trim_start_matches('#').to_string())
                .collect(),
            llm: raw.llm_url.clone().map(|u| {
                (
                    u,
                    raw.llm_key_env.clone(),
                    raw.llm_model
                        .clone()
                        .unwrap_or_else(|| "gpt-4o-mini".into()),
                )
            }),
        }),
        _ => None,
    }
}

/// Checks the `[[command]]`, `[[rotation]]` and `[[schedule]]` tables.
pub(super) fn check(
    commands: &[Spanned<RawCommand>],
    rotations: &[Spanned<RawRotation>],
    schedules: &[Spanned<RawSchedule>],
    approvals: &ApprovalsConfig,
    actions: &super::actions::Actions,
    forms: &super::forms::Forms,
    p: &mut Report<'_>,
) -> ChatopsConfig {
    let mut out = ChatopsConfig::default();
    let mut names = BTreeSet::new();
    for c in commands {
        if !names.insert(c.get_ref().name.trim().to_string()) {
            p(
                Some(c.span()),
                format!("command {:?} is defined twice", c.get_ref().name),
                "give every [[command]] its own name",
            );
            continue;
        }
        let Some(cmd) = check_command(c, p) else {
            continue;
        };
        if let Some(a) = cmd.action.as_deref().filter(|a| actions.get(a).is_none()) {
            p(
                Some(c.span()),
                format!(
                    "command {:?} runs the action {a:?}, which no [[action]] defines",
                    cmd.spec.name
                ),
                "add an [[action]] with that name, or name one that exists",
            );
            continue;
        }
        if let Some(f) = cmd.form.as_deref().filter(|f| forms.get(f).is_none()) {
            p(
                Some(c.span()),
                format!(
                    "command {:?} opens the form {f:?}, which no [[form]] defines",
                    cmd.spec.name
                ),
                "add a [[form]] with that name, or name one that exists",
            );
            continue;
        }
        out.commands.push(cmd);
    }
    let mut names = BTreeSet::new();
    for r in rotations {
        if !names.insert(r.get_ref().name.clone()) {
            p(
                Some(r.span()),
                format!("rotation {:?} is defined twice", r.get_ref().name),
                "give every [[rotation]] its own name",
            );
            continue;
        }
        if let Some(rot) = check_rotation(r, p) {
            out.rotations.push(rot);
        }
    }
    let mut names = BTreeSet::new();
    for s in schedules {
        if !names.insert(s.get_ref().name.clone()) {
            p(
                Some(s.span()),
                format!("schedule {:?} is defined twice", s.get_ref().name),
                "give every [[schedule]] its own name",
            );
            continue;
        }
        if let Some(sched) = check_schedule(s, approvals, p) {
            out.schedules.push(sched);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_reported, parse};

    #[test]
    fn the_issue_example_parses_as_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("outgoing-secret"),
            "outgoing-secret-0123456789",
        )
        .unwrap();
        let text = format!(
            r#"
[actions]
command = "/ops"
outgoing_secret_file = "{}/outgoing-secret"   # signs every call to internal systems

[[action]]
name = "deploy"
label = "Deploy"
method = "POST"
url = "https://deployer.internal:8443/deploy"        # also the allow-listed destination
body = '{{"service": "{{{{ args.service }}}}", "env": "{{{{ args.env }}}}", "by": "{{{{ user.id }}}}"}}'
users = ["U0001", "U0002"]

[[command]]
name = "deploy"
usage = "deploy <service> <env>"
args = [{{ name = "service", type = "string" }}, {{ name = "env", type = "enum", values = ["staging", "production"] }}]
action = "deploy"
"#,
            dir.path().display()
        );
        let cfg = parse(&text).unwrap_or_else(|p| panic!("{p:#?}"));
        let c = &cfg.chatops.commands[0];
        assert_eq!(c.spec.name, "deploy");
        assert_eq!(c.action.as_deref(), Some("deploy"));
        assert_eq!(cfg.actions.command, "/ops");
        assert!(c.spec.parse("/ops", "checkout staging").is_ok());
    }

    #[test]
    fn chatops_tables_are_checked_with_their_line_and_fix() {
        let table = [
            // (config, line, message contains, fix contains)
            ("[[command]]\nname = \"a\"\n[[command]]\nname = \"a\"\n", 3, "defined twice", "own name"),
            ("[[command]]\nname = \"status\"\n", 1, "built-in", "help, status"),
            ("[[command]]\nname = \"x\"\nargs = [{ name = \"n\", type = \"float\" }]\n", 1, "unknown type \"float\"", "string, int, enum"),
            ("[[command]]\nname = \"x\"\nargs = [{ name = \"n\", type = \"int\", default = \"many\" }]\n", 1, "the default of \"n\"", "of the argument's type"),
            ("[[command]]\nname = \"x\"\nargs = [{ name = \"e\", type = \"enum\" }]\n", 1, "enum without values", "values = ["),
            ("[[command]]\nname = \"x\"\naction = \"a\"\nreply = \"thread\"\n", 1, "reply \"thread\"", "channel"),
            ("[[command]]\nname = \"x\"\n", 1, "has no action", "action = "),
            ("\n[[rotation]]\nname = \"r\"\nmembers = [\"U1\"]\nhandoff = \"weekly\"\nstart = \"2026-01-05\"\n", 2, "without a handoff_day", "handoff_day"),
            ("[[rotation]]\nname = \"r\"\nmembers = [\"U1\"]\nhandoff = \"daily\"\ntime_zone = \"Mars/Base\"\nstart = \"2026-01-05\"\n", 1, "not a time zone", "Europe/Berlin"),
            ("[[rotation]]\nname = \"r\"\nmembers = []\nhandoff = \"daily\"\nstart = \"2026-01-05\"\n", 1, "no members", "turn order"),
            ("[[rotation]]\nname = \"r\"\nmembers = [\"U1\"]\nhandoff = \"daily\"\nhandoff_time = \"9am\"\nstart = \"2026-01-05\"\n", 1, "not HH:MM", "09:00"),
            ("[[schedule]]\nname = \"s\"\ncron = \"0 9 * *\"\nchannel = \"ops\"\nreport = \"stats\"\n", 1, "cron", "five fields"),
            ("[[schedule]]\nname = \"s\"\ncron = \"0 9 * * *\"\nchannel = \"ops\"\nreport = \"weather\"\n", 1, "not a report", "stats"),
            ("[[schedule]]\nname = \"s\"\ncron = \"0 9 * * *\"\nchannel = \"ops\"\nurl = \"https://metrics.internal/daily\"\n", 1, "not allow-listed", "callback_hosts"),
            ("[[schedule]]\nname = \"s\"\ncron = \"0 9 * * *\"\nchannel = \"ops\"\nreport = \"stats\"\nmissed = \"later\"\n", 1, "missed \"later\"", "run_once"),
        ];
        assert_reported(&table);
    }

    #[test]
    fn a_valid_rotation_and_schedule() {
        let cfg = parse(
            "[actions]\noutgoing_secret_env = \"OUT\"\n[approvals]\ncallback_hosts = [\"http://127.0.0.1:9000\"]\n\
             [[rotation]]\nname = \"payments\"\nmembers = [\"U1\", \"U2\"]\nhandoff = \"weekly\"\nhandoff_day = \"monday\"\n\
             time_zone = \"Europe/Berlin\"\nstart = \"2026-03-02\"\noverrides = [{ user = \"U3\", from = \"2026-03-10 12:00\", to = \"2026-03-11 12:00\" }]\n\
             [[schedule]]\nname = \"daily\"\ncron = \"0 9 * * 1-5\"\ntime_zone = \"Europe/Berlin\"\nchannel = \"#ops\"\nreport = \"stats\"\n\
             url = \"http://127.0.0.1:9000/numbers\"\nmissed = \"skip\"\n",
        )
        .unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(cfg.chatops.rotations[0].overrides.len(), 1);
        let s = &cfg.chatops.schedules[0];
        assert_eq!((s.channel.as_str(), s.stats), ("ops", true));
        assert_eq!(s.missed, sluice_domain::schedule::Missed::Skip);
    }
}
