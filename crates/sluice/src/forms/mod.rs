//! `[[form]]` modals, the thin handler (the pure side is `sluice_domain::form`):
//! - [`open_for_command`]: a `[[command]]` with `form = "…"` checks who may run it (the command's and the form's
//!   action's permissions) and opens the modal with the command's trigger (`views.open` within its 3 seconds). A
//!   button whose `action_id` is `sluice_form_open:<form>` opens it too.
//! - the submission (`view_submission`, callback `sluice_form:<form>`) is checked server-side
//!   (`sluice_domain::form::validate`): a wrong field answers `response_action: errors` with its message, and the
//!   modal stays open. A valid one is taken once (`form.submit:<view id>` in the store's once-keys, so Slack's retries
//!   and a second replica run nothing more), checked for permission again, and starts the form's `[[action]]` with the
//!   values as `form.<input>` (the command's arguments as `args`), its result posted where the action's results go
//!   in the channel it was opened from; or, when the action needs an approval, asks for it (`approvals`).
//! - `block_suggestion` for an external select (`sluice_form_opt:<form>:<input>`): the input's endpoint is called
//!   (signed, allow-listed, no redirects, 2 s) and its options narrowed to what was typed; a failure answers an empty
//!   list and is logged, never an error to Slack.
//!
//! Every opening refused, every submission (invalid, repeated, run, refused) is audited as `form.<name>`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sluice_domain::form::{self, Submitted, CALLBACK_PREFIX, OPEN_PREFIX, OPTIONS_PREFIX};
use sluice_domain::outgoing::{sign, Origin};
use sluice_inbound::models::{
    BlockSuggestion, InputValue, SelectOption, SlashCommand, ViewSubmission,
};
use sluice_inbound::{
    ActionPayload, Ctx, HandlerError, HandlerResult, OptionsResponse, Registry, Reply, ViewResponse,
};

use crate::commands::gate::{admit, args_json, said, start_with, Caller, Commands};
use crate::config::forms::FormConfig;
use crate::outbox::audit;
use crate::state::{now_ms, AppState};

/// How long a submitted modal is remembered (Slack retries within seconds).
const SUBMITTED_FOR_MS: i64 = 24 * 3_600_000;
/// How long an external select's endpoint may take: Slack waits 3 s for the options.
const OPTIONS_TIMEOUT: Duration = Duration::from_millis(2_000);

/// Where a form was opened, by whom, and for which command: the modal's `private_metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Opened {
    /// The channel the result goes to (empty: none, e.g. a button in a modal).
    ch: String,
    /// Who opened it.
    u: String,
    /// The `[[command]]` that opened it, if one did, and its arguments as typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cmd: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    text: String,
    /// The values of the steps before this one (a `next` chain).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    values: Map<String, Value>,
}

/// Opens form `name` for the `i`th `[[command]]`. `None` when the modal opened (nothing to say), else the refusal.
pub async fn open_for_command(
    state: &AppState,
    commands: &Commands,
    i: usize,
    name: &str,
    ctx: &Ctx<SlashCommand>,
    rest: &str,
) -> (Option<Reply>, String) {
    let caller = Caller::of(&ctx.payload);
    let Some(f) = state.config.forms.get(name) else {
        return (
            Some(Reply::ephemeral(format!(
                "The form {name:?} is no longer configured."
            ))),
            "refused: form not configured".into(),
        );
    };
    if let Err((reply, result)) = admit(state, commands, i, &f.action, &caller, rest).await {
        return (Some(reply), result);
    }
    let opened = Opened {
        ch: caller.channel_id.clone(),
        u: caller.user_id.clone(),
        cmd: Some(state.config.chatops.commands[i].spec.name.clone()),
        text: rest.trim().to_string(),
        values: Map::new(),
    };
    match open(
        ctx.open_view(&form::view(&f.form, &metadata(&opened)))
            .await,
    ) {
        Ok(()) => (None, format!("form opened: {name}")),
        Err(e) => (
            Some(Reply::ephemeral(format!(
                "The form could not open: {e}. Try again."
            ))),
            format!("error: {e}"),
        ),
    }
}

fn metadata(o: &Opened) -> String {
    serde_json::to_string(o).unwrap_or_default()
}

fn open<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// Adds the forms' handlers: the open buttons, each form's submission and each external select's options.
pub fn register(r: &mut Registry, state: Arc<AppState>, commands: Arc<Commands>) {
    if state.config.forms.forms.is_empty() {
        return;
    }
    let pattern = regex::Regex::new(&format!("^{}", regex::escape(OPEN_PREFIX)))
        .expect("a literal prefix is a valid pattern");
    // Closing the modal and clicking again must open it again.
    r.keyed_per_click(OPEN_PREFIX);
    let (s, c) = (state.clone(), commands.clone());
    r.action_matching(pattern, move |ctx: Ctx<ActionPayload>| {
        let (s, c) = (s.clone(), c.clone());
        async move { open_from_button(&s, &c, ctx).await }
    });
    for f in &state.config.forms.forms {
        let name = f.form.name.clone();
        let (s, c) = (state.clone(), commands.clone());
        r.view_submission(
            &format!("{CALLBACK_PREFIX}{name}"),
            move |ctx: Ctx<ViewSubmission>| {
                let (s, c, name) = (s.clone(), c.clone(), name.clone());
                async move { submitted(&s, &c, &name, ctx).await }
            },
        );
        for (input, url) in &f.option_urls {
            let s = state.clone();
            let (form_name, input, url) = (f.form.name.clone(), input.clone(), url.clone());
            r.options(
                &format!("{OPTIONS_PREFIX}{form_name}:{input}"),
                move |ctx: Ctx<BlockSuggestion>| {
                    let s = s.clone();
                    let (form_name, input, url) = (form_name.clone(), input.clone(), url.clone());
                    async move {
                        Ok::<_, HandlerError>(
                            options(&s, &form_name, &input, &url, &ctx.payload).await,
                        )
                    }
                },
            );
        }
    }
}

/// A button `sluice_form_open:<form>`: opens the form for whoever may run its action here.
async fn open_from_button(
    state: &AppState,
    commands: &Commands,
    ctx: Ctx<ActionPayload>,
) -> HandlerResult<()> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the click came without a user"))?;
    let name = ctx
        .payload
        .action
        .action_id
        .trim_start_matches(OPEN_PREFIX)
        .to_string();
    let channel = ctx.payload.body.channel_id().unwrap_or_default();
    let detail = json!({ "channel": channel, "via": "button" });
    let action = format!("form.{name}");
    let Some(f) = state.config.forms.get(&name) else {
        audit(
            state,
            &user,
            &action,
            &name,
            "refused: form not configured",
            detail,
        )
        .await;
        ctx.reply(Reply::ephemeral(format!(
            "The form {name:?} is no longer configured."
        )))
        .await?;
        return Ok(());
    };
    let Some(def) = state.config.action_defs.get(&f.action) else {
        return Err(HandlerError::new(format!(
            "the form's action {:?} is no longer configured",
            f.action
        )));
    };
    if !crate::actions::may_run(&commands.alerts, def, &user, &channel).await {
        audit(
            state,
            &user,
            &action,
            &name,
            "refused: not permitted by the action",
            detail,
        )
        .await;
        ctx.reply(Reply::ephemeral(format!(
            "You are not allowed to run {}.",
            def.label
        )))
        .await?;
        return Ok(());
    }
    let opened = Opened {
        ch: channel,
        u: user,
        ..Opened::default()
    };
    open(
        ctx.open_view(&form::view(&f.form, &metadata(&opened)))
            .await,
    )
    .map_err(|e| HandlerError::new(format!("the form could not open: {e}")))
}

/// What a submission holds for the input in block `name`.
fn submitted_value(v: &ViewSubmission, name: &str) -> Submitted {
    let Some(block) = v.view.state.values.get(name) else {
        return Submitted::Nothing;
    };
    let Some(value): Option<&InputValue> = block.values().next() else {
        return Submitted::Nothing;
    };
    if let Some(many) = &value.selected_options {
        return Submitted::Many(many.iter().map(|o| o.value.clone()).collect());
    }
    value
        .value
        .clone()
        .or_else(|| value.selected_option.as_ref().map(|o| o.value.clone()))
        .or_else(|| value.selected_date.clone())
        .or_else(|| value.selected_user.clone())
        .or_else(|| value.selected_conversation.clone())
        .or_else(|| value.selected_channel.clone())
        .map(Submitted::One)
        .unwrap_or(Submitted::Nothing)
}

/// A submission of form `name`.
async fn submitted(
    state: &AppState,
    commands: &Commands,
    name: &str,
    ctx: Ctx<ViewSubmission>,
) -> HandlerResult<ViewResponse> {
    let user = ctx
        .user_id
        .clone()
        .ok_or_else(|| HandlerError::new("the submission came without a user"))?;
    let Some(f) = state.config.forms.get(name) else {
        return Ok(ViewResponse::error(
            "-",
            format!("The form {name:?} is no longer configured."),
        ));
    };
    let view = &ctx.payload.view;
    let opened: Opened = serde_json::from_str(&view.private_metadata).unwrap_or_default();
    let action = format!("form.{name}");
    let mut detail = json!({ "channel": opened.ch, "view": view.id, "via": "modal" });
    let values = match form::validate(&f.form, |input| submitted_value(&ctx.payload, input)) {
        Ok(v) => v,
        Err(errors) => {
            detail["errors"] = json!(errors);
            audit(state, &user, &action, &view.id, "refused: invalid", detail).await;
            return Ok(ViewResponse::Errors(errors.into_iter().collect()));
        }
    };
    detail["values"] = Value::Object(values.clone());
    let mut all = opened.values.clone();
    all.extend(values);
    if let Some(next) = &f.next {
        return Ok(next_step(state, f, next, &opened, all, &user, &view.id, detail).await);
    }
    let values = all;
    let first = state
        .store
        .first_time(
            &format!("form.submit:{}", view.id),
            now_ms(),
            SUBMITTED_FOR_MS,
        )
        .await
        .map_err(|e| HandlerError::new(format!("could not record the submission: {e}")))?;
    if !first {
        audit(
            state,
            &user,
            &action,
            &view.id,
            "refused: already submitted",
            detail,
        )
        .await;
        return Ok(ViewResponse::None);
    }
    let (result, tell) = run(state, commands, f, &opened, &user, values, &view.id).await;
    audit(state, &user, &action, &view.id, &result, detail).await;
    if let Some(text) = tell.filter(|_| !opened.ch.is_empty()) {
        let args = json!({ "channel": opened.ch, "user": user, "text": text });
        if let Err(e) = ctx.outbox.enqueue("chat.postEphemeral", args).await {
            tracing::warn!(form = %name, error = %e, "the submitter could not be told");
        }
    }
    Ok(ViewResponse::None)
}

/// A valid step with a `next` form: the next form is pushed, carrying every value so far in its metadata (the last
/// step's submission runs the action with all of them).
#[allow(clippy::too_many_arguments)]
async fn next_step(
    state: &AppState,
    f: &FormConfig,
    next: &str,
    opened: &Opened,
    values: Map<String, Value>,
    user: &str,
    view_id: &str,
    detail: Value,
) -> ViewResponse {
    let action = format!("form.{}", f.form.name);
    let first_input = f
        .form
        .inputs
        .first()
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let Some(n) = state.config.forms.get(next) else {
        audit(
            state,
            user,
            &action,
            view_id,
            "error: next form not configured",
            detail,
        )
        .await;
        return ViewResponse::error(
            first_input,
            format!("The next form {next:?} is no longer configured."),
        );
    };
    let carried = metadata(&Opened {
        values,
        ..opened.clone()
    });
    if carried.len() > sluice_slack_wire::limits::VIEW_PRIVATE_METADATA {
        audit(
            state,
            user,
            &action,
            view_id,
            "refused: too much to carry",
            detail,
        )
        .await;
        return ViewResponse::error(
            first_input,
            "These values are too long to carry to the next step: shorten them.",
        );
    }
    audit(
        state,
        user,
        &action,
        view_id,
        &format!("ok: next step {next}"),
        detail,
    )
    .await;
    ViewResponse::Push(form::view(&n.form, &carried))
}

/// Runs (or asks approval for) `f`'s action with a valid submission's `values`. What the audit log records, and what
/// the submitter is told.
async fn run(
    state: &AppState,
    commands: &Commands,
    f: &FormConfig,
    opened: &Opened,
    user: &str,
    values: Map<String, Value>,
    view_id: &str,
) -> (String, Option<String>) {
    let caller = Caller {
        user_id: user.to_string(),
        user_name: String::new(),
        channel_id: opened.ch.clone(),
        channel_name: String::new(),
        slash: state.config.actions.command.clone(),
    };
    // Checked again: the person who submits may not be who opened it, and the configuration may have changed.
    let checked = match opened.cmd.as_deref().and_then(|c| {
        state
            .config
            .chatops
            .commands
            .iter()
            .position(|x| x.spec.name == c)
    }) {
        Some(i) => admit(state, commands, i, &f.action, &caller, &opened.text)
            .await
            .map(|(def, args)| (def, args_json(&args))),
        None => match state.config.action_defs.get(&f.action) {
            Some(def) if crate::actions::may_run(&commands.alerts, def, user, &opened.ch).await => {
                Ok((def, Map::new()))
            }
            Some(def) => Err((
                Reply::ephemeral(format!("You are not allowed to run {}.", def.label)),
                "refused: not permitted by the action".to_string(),
            )),
            None => Err((
                Reply::ephemeral(format!(
                    "The action {:?} is no longer configured.",
                    f.action
                )),
                "refused: action not configured".to_string(),
            )),
        },
    };
    let (def, args) = match checked {
        Ok(ok) => ok,
        Err((reply, result)) => return (result, Some(reply.text)),
    };
    if let Some(needs) = &def.approval {
        let what = match &opened.cmd {
            Some(c) => said(&caller.slash, c, &opened.text),
            None => format!("the form {}", f.form.title),
        };
        return match crate::approvals::request_for_command(
            state,
            def,
            needs,
            &what,
            args,
            Some(values),
            &caller.actor(),
            &opened.ch,
        )
        .await
        {
            Ok(id) => (
                format!("approval requested: {id}"),
                Some(format!(
                    "{} needs an approval: I asked for it in this channel.",
                    def.label
                )),
            ),
            Err(e) => (
                format!("error: {e}"),
                Some(format!("{} could not ask for its approval: {e}", def.label)),
            ),
        };
    }
    let mut context = sluice_domain::action::context(None, None, user, "", args);
    context["form"] = Value::Object(values);
    let target = format!("form:{}:{view_id}", f.form.name);
    let ran = start_with(
        state,
        def,
        &target,
        &context,
        &caller,
        Some(format!("run_form_{view_id}")),
    )
    .await;
    (ran.result, Some(ran.text))
}

/// Options for external select `input` of form `form_name`: its endpoint's answer narrowed to what was typed; an
/// empty list (and a log line) when the endpoint cannot be asked or does not answer well.
async fn options(
    state: &AppState,
    form_name: &str,
    input: &str,
    url: &str,
    p: &BlockSuggestion,
) -> OptionsResponse {
    let body =
        json!({ "form": form_name, "input": input, "value": p.value, "user": p.common.user.id });
    match fetch_options(state, url, &body).await {
        Ok(answer) => {
            let found = form::filter_options(&answer, &p.value);
            if found.is_empty() {
                OptionsResponse::Empty
            } else {
                OptionsResponse::Options(
                    found
                        .into_iter()
                        .map(|(text, value)| SelectOption::new(text, value))
                        .collect(),
                )
            }
        }
        Err(e) => {
            metrics::counter!("sluice_form_options_failures_total").increment(1);
            tracing::warn!(form = %form_name, input = %input, error = %e, "external select options failed; the menu shows none");
            OptionsResponse::Empty
        }
    }
}

/// POSTs `body`, signed, to an allow-listed endpoint (never a link-local or metadata address unless listed), no
/// redirects, within [`OPTIONS_TIMEOUT`].
async fn fetch_options(state: &AppState, url: &str, body: &Value) -> Result<Value, String> {
    let origin = Origin::of(url)?;
    let cfg = &state.config.approvals;
    if !cfg.allowed().contains(&origin) {
        return Err(format!("{origin} is not allow-listed"));
    }
    let secret = cfg
        .outgoing_secret
        .as_ref()
        .ok_or("outgoing calls are signed and no secret is configured")?;
    let client = crate::egress::client_for(url, &origin, &cfg.allow_link_local, OPTIONS_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let (ts, sig) = sign(secret, now_ms() / 1000, &bytes);
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-sluice-request-timestamp", ts)
        .header("x-sluice-signature", sig)
        .body(bytes)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!(
                    "{url} did not answer within {} ms",
                    OPTIONS_TIMEOUT.as_millis()
                )
            } else {
                format!("{url} could not be reached")
            }
        })?;
    if !r.status().is_success() {
        return Err(format!("{url} answered {}", r.status()));
    }
    r.json::<Value>()
        .await
        .map_err(|_| format!("{url} did not answer with JSON"))
}
