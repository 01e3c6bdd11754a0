//! `[[action]]` runs' pure side: a run's small state machine ([`finish`]: running → done or failed, once), what a
//! card and a result say about a run ([`status_line`], [`with_status`], [`failure_text`]), and the context its
//! templates see ([`context`]). The binary's `actions/` handler starts runs and the dispatcher finishes them; both
//! ask here what that means.
//!
//! The template context is one object: `event` (the card's event: `title`, `service`, `labels`, `fields`, …) or
//! `approval` (the approval's request), `labels` and `fields` at the top for short templates, `user` (`id`, `name`)
//! and `args` (command arguments; empty until slash commands run actions).

use serde_json::{json, Map, Value};
use sluice_core::event::Event;
use sluice_core::render::RUN_BLOCK_ID;
use sluice_model::ActionRunRecord;
use sluice_slack_wire::blocks::escape_mrkdwn;

use crate::clock::clock;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Done,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Done => "done",
            RunState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        match s {
            "running" => Some(RunState::Running),
            "done" => Some(RunState::Done),
            "failed" => Some(RunState::Failed),
            _ => None,
        }
    }
}

/// How the run's outgoing call ended, as the dispatcher saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnd {
    /// A 2xx answer.
    Answered { status: u16, body: String },
    /// Dead-lettered: why, and how many attempts were made.
    Dead { reason: String, attempts: u32 },
    /// It could not even be enqueued (a template that failed, a URL that does not parse).
    NotSent { reason: String },
}

/// The state a run moves to when its call ends, or `None` when the run already ended (a second report of the same
/// call — a replayed dead letter that then succeeds, a dispatcher that lost its lease — changes nothing).
pub fn finish(state: RunState, end: &CallEnd) -> Option<RunState> {
    match (state, end) {
        (RunState::Running, CallEnd::Answered { .. }) => Some(RunState::Done),
        (RunState::Running, CallEnd::Dead { .. } | CallEnd::NotSent { .. }) => {
            Some(RunState::Failed)
        }
        (RunState::Done | RunState::Failed, _) => None,
    }
}

/// The line a card shows for a run: "⏳ Running Deploy… (by <@U1>, since 10:40 UTC)", "✅ Deploy done (by <@U1>,
/// 10:42 UTC): HTTP 200", "❌ Deploy failed (by <@U1>, 10:42 UTC): timed out after 10s (3 tries)". `at_ms` is when
/// it started (running) or ended; `note` what came of it (a done run's status, a failed run's reason), may be empty.
pub fn status_line(label: &str, state: RunState, actor: &str, at_ms: i64, note: &str) -> String {
    let by = if actor.is_empty() {
        String::new()
    } else {
        format!("by <@{actor}>, ")
    };
    let note = if note.is_empty() {
        String::new()
    } else {
        format!(
            ": {}",
            sluice_slack_wire::blocks::truncate(&escape_mrkdwn(note), 300)
        )
    };
    match state {
        RunState::Running => format!("⏳ Running {label}… ({by}since {})", clock(at_ms)),
        RunState::Done => format!("✅ {label} done ({by}{}){note}", clock(at_ms)),
        RunState::Failed => format!("❌ {label} failed ({by}{}){note}", clock(at_ms)),
    }
}

/// A run as a card shows it: the latest run of its action on the card's event (`Store::action_runs_of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunShown {
    /// The action's name (its status line's block id) and button label.
    pub action: String,
    pub label: String,
    pub state: RunState,
    pub actor: String,
    /// When it started (running) or ended (done, failed).
    pub at_ms: i64,
    /// A done run's status ("HTTP 200"), a failed run's reason.
    pub note: String,
}

impl RunShown {
    /// `run` as its card shows it, `label` its action's button text; `None` for a state the card cannot show.
    pub fn of(run: &ActionRunRecord, label: &str) -> Option<RunShown> {
        let state = RunState::parse(&run.state)?;
        let (at_ms, note) = match state {
            RunState::Running => (run.started_at_ms, String::new()),
            RunState::Done => (
                run.finished_at_ms.unwrap_or(run.started_at_ms),
                run.status.map(|s| format!("HTTP {s}")).unwrap_or_default(),
            ),
            RunState::Failed => (
                run.finished_at_ms.unwrap_or(run.started_at_ms),
                run.result.clone().unwrap_or_default(),
            ),
        };
        Some(RunShown {
            action: run.action.clone(),
            label: label.to_string(),
            state,
            actor: run.actor.clone(),
            at_ms,
            note,
        })
    }

    pub fn line(&self) -> String {
        status_line(&self.label, self.state, &self.actor, self.at_ms, &self.note)
    }
}

/// `blocks` with the status line of each of `runs` (see [`with_status`]): every redraw of a card shows its runs.
pub fn show_runs(blocks: &Value, runs: &[RunShown]) -> Value {
    runs.iter().fold(blocks.clone(), |b, run| {
        with_status(&b, &run.action, &run.line())
    })
}

/// What the block id of an action's status line starts with.
const STATUS_BLOCK: &str = "sluice_run_status:";

/// The block id of action `name`'s status line on a card.
pub fn status_block_id(name: &str) -> String {
    format!("{STATUS_BLOCK}{name}")
}

/// `blocks` (a card's blocks as Slack has them) with action `name`'s status line set to `line`: replaced if the
/// card shows one, else put right after the action buttons and the other actions' lines (or at the end).
pub fn with_status(blocks: &Value, name: &str, line: &str) -> Value {
    let id = status_block_id(name);
    let block =
        json!({"type": "context", "block_id": id, "elements": [{"type": "mrkdwn", "text": line}]});
    let mut blocks: Vec<Value> = blocks.as_array().cloned().unwrap_or_default();
    if let Some(b) = blocks.iter_mut().find(|b| b["block_id"] == id.as_str()) {
        *b = block;
    } else if let Some(at) = blocks.iter().position(|b| b["block_id"] == RUN_BLOCK_ID) {
        // After the buttons and the other actions' lines.
        let after = blocks[at + 1..]
            .iter()
            .take_while(|b| {
                b["block_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(STATUS_BLOCK))
            })
            .count();
        blocks.insert(at + 1 + after, block);
    } else {
        blocks.push(block);
    }
    Value::Array(blocks)
}

/// Why a call failed, as the messages about it tell it.
enum Why<'a> {
    Answered(u16),
    NotSent(&'a str),
    /// After how long, and how many tries.
    TimedOut(String, String),
    Refused(&'a str),
    /// The status the internal system answered, and how many tries.
    Status(u16, String),
    Other(&'a str, String),
}

fn why(end: &CallEnd, timeout_ms: u64) -> Why<'_> {
    let (reason, attempts) = match end {
        CallEnd::Answered { status, .. } => return Why::Answered(*status),
        CallEnd::Dead { reason, attempts } => (reason.as_str(), *attempts),
        CallEnd::NotSent { reason } => return Why::NotSent(reason),
    };
    let tries = if attempts == 1 {
        "1 try".to_string()
    } else {
        format!("{attempts} tries")
    };
    if reason.contains("no answer within") {
        return Why::TimedOut(seconds(timeout_ms), tries);
    }
    // The dispatcher's refusals (a redirect, a destination not allowed, a metadata address) say so first.
    if reason.starts_with("refused") {
        return Why::Refused(reason);
    }
    match answered_status(reason) {
        Some(status) => Why::Status(status, tries),
        None => Why::Other(reason, tries),
    }
}

/// What a failed run says, plainly: "Rollback failed: the internal system answered HTTP 500 after 3 tries",
/// "Rollback timed out after 10s (3 tries)", "Rollback was refused: …".
pub fn failure_text(label: &str, end: &CallEnd, timeout_ms: u64) -> String {
    match why(end, timeout_ms) {
        Why::Answered(status) => format!("{label} answered HTTP {status}"),
        Why::NotSent(reason) => format!("{label} failed: {reason}"),
        Why::TimedOut(after, tries) => format!("{label} timed out after {after} ({tries})"),
        Why::Refused(reason) => format!("{label} was refused: {reason}"),
        Why::Status(status, tries) => {
            format!("{label} failed: the internal system answered HTTP {status} after {tries}")
        }
        Why::Other(reason, tries) => format!("{label} failed after {tries}: {reason}"),
    }
}

/// The same without the action's label, for its line on the card ("❌ Rollback failed (…): <reason>"): "timed out
/// after 10s (3 tries)", "the internal system answered HTTP 500 after 3 tries", "refused: …".
pub fn failure_reason(end: &CallEnd, timeout_ms: u64) -> String {
    match why(end, timeout_ms) {
        Why::Answered(status) => format!("answered HTTP {status}"),
        Why::NotSent(reason) | Why::Refused(reason) => reason.to_string(),
        Why::TimedOut(after, tries) => format!("timed out after {after} ({tries})"),
        Why::Status(status, tries) => {
            format!("the internal system answered HTTP {status} after {tries}")
        }
        Why::Other(reason, tries) => format!("{reason} ({tries})"),
    }
}

/// "10s", "1.5s", "500ms".
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// The last "answered HTTP <status>" in a dead letter's reason.
fn answered_status(reason: &str) -> Option<u16> {
    let at = reason.rfind("answered HTTP ")?;
    reason[at + "answered HTTP ".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The default result when an action configures no result template: "✅ Deploy: HTTP 200" and the answer's start.
pub fn default_result(label: &str, status: u16, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        format!("✅ {label}: HTTP {status}")
    } else {
        let body = sluice_slack_wire::blocks::truncate(body, 2500);
        format!("✅ {label}: HTTP {status}\n```{body}```")
    }
}

/// The context an action's templates are rendered over (see the module's documentation).
pub fn context(
    event: Option<&Event>,
    approval: Option<&Value>,
    user_id: &str,
    user_name: &str,
    args: Map<String, Value>,
) -> Value {
    // `event` and `approval` are always objects, so `{{ event.service }}` in an action an approval runs (no event)
    // renders empty instead of failing.
    let mut c = json!({
        "user": {"id": user_id, "name": user_name},
        "args": args,
        "labels": {},
        "fields": {},
        "event": {},
        "approval": {},
    });
    if let Some(e) = event {
        let mut ev = serde_json::to_value(e).unwrap_or(Value::Null);
        // Fields by title (`fields.version`), as templates read them.
        let fields: Map<String, Value> = e
            .fields
            .iter()
            .map(|f| (f.title.clone(), json!(f.value)))
            .collect();
        ev["fields"] = Value::Object(fields);
        c["labels"] = ev["labels"].clone();
        c["fields"] = ev["fields"].clone();
        c["event"] = ev;
    }
    if let Some(a) = approval {
        c["fields"] = a["fields"].clone();
        c["approval"] = a.clone();
    }
    c
}

/// The context of a template checked at start-up: every key present, so a typo in a name is found by rendering
/// against it only where minijinja is strict; sample values otherwise.
pub fn sample_context() -> Value {
    let mut args = Map::new();
    args.insert("service".into(), json!("checkout"));
    args.insert("env".into(), json!("staging"));
    context(None, None, "U0000", "sample", args)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_714_559_400_000; // 10:30 UTC

    #[test]
    fn a_run_ends_once_done_or_failed() {
        let ok = CallEnd::Answered {
            status: 200,
            body: "{}".into(),
        };
        let dead = CallEnd::Dead {
            reason: "x answered HTTP 500".into(),
            attempts: 3,
        };
        let not_sent = CallEnd::NotSent {
            reason: "bad".into(),
        };
        let table = [
            (RunState::Running, &ok, Some(RunState::Done)),
            (RunState::Running, &dead, Some(RunState::Failed)),
            (RunState::Running, &not_sent, Some(RunState::Failed)),
            (RunState::Done, &ok, None),
            (RunState::Done, &dead, None),
            (RunState::Failed, &ok, None),
            (RunState::Failed, &dead, None),
        ];
        for (state, end, want) in table {
            assert_eq!(finish(state, end), want, "{state:?} + {end:?}");
        }
        for s in [RunState::Running, RunState::Done, RunState::Failed] {
            assert_eq!(RunState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn failures_say_plainly_what_happened() {
        let table = [
            (
                CallEnd::Dead {
                    reason: "gave up after 3 attempts over 31s: http://d/x answered HTTP 500".into(),
                    attempts: 3,
                },
                "Rollback failed: the internal system answered HTTP 500 after 3 tries",
            ),
            (
                CallEnd::Dead {
                    reason: "gave up after 2 attempts over 20s: http://d/x: no answer within 10000 ms".into(),
                    attempts: 2,
                },
                "Rollback timed out after 10s (2 tries)",
            ),
            (
                CallEnd::Dead {
                    reason: "refused: http://d/x answered HTTP 302 redirecting to http://evil/".into(),
                    attempts: 1,
                },
                "Rollback was refused: refused: http://d/x answered HTTP 302 redirecting to http://evil/",
            ),
            (
                CallEnd::Dead {
                    reason: "connection refused".into(),
                    attempts: 1,
                },
                "Rollback failed after 1 try: connection refused",
            ),
            (
                CallEnd::Dead {
                    reason: "http://d/x answered HTTP 404: nope".into(),
                    attempts: 1,
                },
                "Rollback failed: the internal system answered HTTP 404 after 1 try",
            ),
            (
                CallEnd::NotSent {
                    reason: "the body template failed".into(),
                },
                "Rollback failed: the body template failed",
            ),
        ];
        for (end, want) in table {
            assert_eq!(failure_text("Rollback", &end, 10_000), want);
        }
    }

    /// What a card shows of a run, from the run as stored: running since it started, done with its status, failed
    /// with its reason; each action's line under the buttons, a redraw replacing it.
    #[test]
    fn a_card_shows_each_actions_latest_run_from_the_store() {
        let stored = |action: &str, state: &str, status: Option<i64>, result: Option<&str>| {
            ActionRunRecord {
                id: "run_1".into(),
                action: action.into(),
                target: "evt_1".into(),
                actor: "U1".into(),
                team: "T1".into(),
                channel: "C1".into(),
                ts: "1.1".into(),
                reply: "thread".into(),
                card: Value::Null,
                state: state.into(),
                status,
                result: result.map(str::to_string),
                started_at_ms: T,
                finished_at_ms: (state != "running").then_some(T + 120_000),
            }
        };
        let table = [
            (
                stored("deploy", "running", None, None),
                Some("⏳ Running Deploy… (by <@U1>, since 10:30 UTC)"),
            ),
            (
                stored("deploy", "done", Some(200), Some("{\"ok\":true}")),
                Some("✅ Deploy done (by <@U1>, 10:32 UTC): HTTP 200"),
            ),
            (
                stored("deploy", "failed", None, Some("timed out after 10s (2 tries)")),
                Some("❌ Deploy failed (by <@U1>, 10:32 UTC): timed out after 10s (2 tries)"),
            ),
            (
                stored("deploy", "failed", None, Some("http://x/<y> answered & refused")),
                Some("❌ Deploy failed (by <@U1>, 10:32 UTC): http://x/&lt;y&gt; answered &amp; refused"),
            ),
            (stored("deploy", "weird", None, None), None),
        ];
        for (run, want) in table {
            assert_eq!(
                RunShown::of(&run, "Deploy").map(|r| r.line()),
                want.map(str::to_string),
                "{run:?}"
            );
        }
        let blocks = json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": "card"}},
            {"type": "actions", "block_id": RUN_BLOCK_ID, "elements": []},
        ]);
        let runs = [
            RunShown::of(&stored("deploy", "done", Some(200), None), "Deploy").unwrap(),
            RunShown::of(&stored("rollback", "running", None, None), "Rollback").unwrap(),
        ];
        let shown = show_runs(&blocks, &runs);
        assert_eq!(shown.as_array().unwrap().len(), 4, "{shown}");
        assert_eq!(shown[2]["block_id"], "sluice_run_status:deploy");
        assert_eq!(shown[3]["block_id"], "sluice_run_status:rollback");
        assert_eq!(
            show_runs(&shown, &runs),
            shown,
            "a redraw replaces the lines"
        );
        assert_eq!(show_runs(&blocks, &[]), blocks);
    }

    #[test]
    fn a_failures_reason_on_the_card_is_its_text_without_the_label() {
        let table = [
            (
                CallEnd::Dead {
                    reason: "gave up after 3 attempts over 31s: http://d/x answered HTTP 500"
                        .into(),
                    attempts: 3,
                },
                "the internal system answered HTTP 500 after 3 tries",
            ),
            (
                CallEnd::Dead {
                    reason: "http://d/x: no answer within 500 ms".into(),
                    attempts: 2,
                },
                "timed out after 500ms (2 tries)",
            ),
            (
                CallEnd::Dead {
                    reason: "refused: http://d/x is 169.254.169.254".into(),
                    attempts: 1,
                },
                "refused: http://d/x is 169.254.169.254",
            ),
            (
                CallEnd::Dead {
                    reason: "connection refused".into(),
                    attempts: 1,
                },
                "connection refused (1 try)",
            ),
            (
                CallEnd::NotSent {
                    reason: "the body template failed".into(),
                },
                "the body template failed",
            ),
        ];
        for (end, want) in table {
            assert_eq!(failure_reason(&end, 500), want, "{end:?}");
        }
    }

    #[test]
    fn the_status_line_replaces_the_last_one_and_sits_under_the_buttons() {
        let blocks = json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": "card"}},
            {"type": "actions", "block_id": RUN_BLOCK_ID, "elements": []},
            {"type": "context", "elements": []},
        ]);
        let running = with_status(
            &blocks,
            "deploy",
            &status_line("Deploy", RunState::Running, "U1", T, ""),
        );
        assert_eq!(running[2]["block_id"], "sluice_run_status:deploy");
        assert_eq!(
            running[2]["elements"][0]["text"],
            "⏳ Running Deploy… (by <@U1>, since 10:30 UTC)"
        );
        let done = with_status(
            &running,
            "deploy",
            &status_line("Deploy", RunState::Done, "U1", T, ""),
        );
        assert_eq!(done.as_array().unwrap().len(), 4);
        assert_eq!(
            done[2]["elements"][0]["text"],
            "✅ Deploy done (by <@U1>, 10:30 UTC)"
        );
        let other = with_status(&json!([]), "rollback", "x");
        assert_eq!(other[0]["block_id"], "sluice_run_status:rollback");
    }

    #[test]
    fn the_context_has_the_event_its_labels_the_user_and_args() {
        let e: Event = serde_json::from_value(json!({
            "title": "Checkout down", "severity": "critical", "status": "firing", "source": "prometheus",
            "service": "checkout", "labels": {"team": "payments"},
            "fields": [{"title": "version", "value": "1.2.3"}]
        }))
        .unwrap();
        let mut args = Map::new();
        args.insert("env".into(), json!("prod"));
        let c = context(Some(&e), None, "U1", "ana", args);
        assert_eq!(c["event"]["title"], "Checkout down");
        assert_eq!(c["labels"]["team"], "payments");
        assert_eq!(c["fields"]["version"], "1.2.3");
        assert_eq!(c["event"]["fields"]["version"], "1.2.3");
        assert_eq!(c["user"]["id"], "U1");
        assert_eq!(c["args"]["env"], "prod");
        let a = json!({"title": "Deploy", "fields": {"version": "1.2.3"}});
        let c = context(None, Some(&a), "U2", "", Map::new());
        assert_eq!(c["approval"]["title"], "Deploy");
        assert_eq!(
            c["event"],
            json!({}),
            "an approval's action has no event, and templates naming it still render"
        );
        assert_eq!(c["fields"]["version"], "1.2.3");
        assert_eq!(default_result("Deploy", 200, ""), "✅ Deploy: HTTP 200");
    }
}
