//! `sluice manifest`: the Slack app manifest a configuration needs — exactly the bot scopes, events, slash command,
//! interactivity and Socket Mode setting it uses, and nothing more.
//!
//! Each bot scope comes from a config area's function in [`AREAS`], with the reason it is asked for; a new area
//! (incidents, forms…) adds its function there and nothing else. The reasons are printed above the manifest, so
//! whoever installs the app can see why each permission is asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::config::{Config, Env, Problem};

/// One bot scope a config area needs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub name: &'static str,
    pub why: String,
}

fn scope(name: &'static str, why: impl Into<String>) -> Scope {
    Scope {
        name,
        why: why.into(),
    }
}

/// The config areas that need bot scopes. Each looks at the config and says which scopes its features use.
pub const AREAS: &[fn(&Config) -> Vec<Scope>] = &[
    messages,
    finding_posts,
    who_may_act,
    slack_requests,
    direct_messages,
    incidents,
    digests,
];

/// The bot scopes `cfg` uses.
pub fn scopes(cfg: &Config) -> BTreeSet<&'static str> {
    justified(cfg).into_keys().collect()
}

/// The bot scopes `cfg` uses, each with every reason it is asked for.
pub fn justified(cfg: &Config) -> BTreeMap<&'static str, Vec<String>> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for area in AREAS {
        for s in area(cfg) {
            let reasons = out.entry(s.name).or_default();
            if !reasons.contains(&s.why) {
                reasons.push(s.why);
            }
        }
    }
    out
}

/// Whether Sluice answers Slack's requests (button clicks, the slash command, events): it does when it has the
/// signing secret to check them with, or over Socket Mode. `server::start` decides the same way.
pub fn receives_slack(cfg: &Config) -> bool {
    cfg.signing_secret.is_some() || cfg.slack.socket_mode.is_some()
}

/// Every route, hook, approval card, escalation and reply is a message Sluice posts or updates.
fn messages(_: &Config) -> Vec<Scope> {
    vec![
        scope(
            "chat:write",
            "post and update alert cards, hook messages, approval cards and replies (chat.postMessage, chat.update, chat.postEphemeral)",
        ),
        scope(
            "chat:write.public",
            "post to the channels the routes name without inviting the bot to each first (otherwise Slack answers not_in_channel)",
        ),
    ]
}

/// No post twice (dispatch/recover.rs): a post whose answer was lost is looked for in its channel before it is sent
/// again, and a channel configured by name is looked up to find its id, which Slack's history reads need.
fn finding_posts(_: &Config) -> Vec<Scope> {
    let history = "look for a post whose answer was lost before sending it again, so nothing is posted twice (conversations.history, conversations.replies)";
    let list = "find the id of a channel configured by name when looking for such a post (conversations.list)";
    vec![
        scope("channels:history", history),
        scope("groups:history", format!("{history}, in private channels")),
        scope("channels:read", list),
        scope("groups:read", format!("{list}, for private channels")),
    ]
}

/// Who may act is asked of Slack: members of user groups, members of a card's channel.
fn who_may_act(cfg: &Config) -> Vec<Scope> {
    let mut out = Vec::new();
    let mut groups = Vec::new();
    if !cfg.actions.groups.is_empty() {
        groups.push("[actions] groups");
    }
    if cfg.chatops.commands.iter().any(|c| !c.groups.is_empty()) {
        groups.push("a [[command]]'s groups");
    }
    if cfg.action_defs.iter().any(|a| {
        !a.groups.is_empty()
            || a.approval
                .as_ref()
                .is_some_and(|n| !n.approvers.groups.is_empty())
    }) {
        groups.push("an [[action]]'s groups or approvers");
    }
    if cfg
        .api_keys
        .iter()
        .any(|k| k.scopes.contains("approvals:write") || k.scopes.contains("admin"))
    {
        groups.push("approval requests (an api key may ask for approvals, whose approvers may be user groups)");
    }
    if !groups.is_empty() {
        out.push(scope(
            "usergroups:read",
            format!(
                "read the members of user groups allowed to act (usergroups.users.list): {}",
                groups.join("; ")
            ),
        ));
    }
    if cfg.actions.channel_members
        || cfg.action_defs.iter().any(|a| {
            a.channel_members
                || a.approval
                    .as_ref()
                    .is_some_and(|n| n.approvers.channel_members)
        })
    {
        let why = "read the members of a card's channel when channel_members = true (conversations.members)";
        out.push(scope("channels:read", why));
        out.push(scope("groups:read", format!("{why}, in private channels")));
    }
    out
}

/// What Slack sends Sluice: the slash command, mentions and reactions.
fn slack_requests(cfg: &Config) -> Vec<Scope> {
    if !receives_slack(cfg) {
        return Vec::new();
    }
    let mut out = vec![
        scope(
            "commands",
            format!(
                "the slash command {} ([actions] command)",
                cfg.actions.command
            ),
        ),
        scope(
            "app_mentions:read",
            "answer @-mentions of the bot with how to use it (app_mention event)",
        ),
    ];
    if let Some(r) = &cfg.actions.ack_reaction {
        out.push(scope(
            "reactions:read",
            format!("acknowledge an alert when someone reacts :{r}: on its card ([actions] ack_reaction; reaction_added event)"),
        ));
    }
    out
}

/// An approval asked of one person (`channel` a user id) goes to their direct messages: Sluice opens the DM first
/// (conversations.open), and without the scope falls back to posting to the user id.
fn direct_messages(cfg: &Config) -> Vec<Scope> {
    let approvals = cfg
        .api_keys
        .iter()
        .any(|k| k.scopes.contains("approvals:write") || k.scopes.contains("admin"));
    if !approvals {
        return Vec::new();
    }
    vec![scope(
        "im:write",
        "post an approval asked of one person in their direct messages (conversations.open)",
    )]
}

/// `[[incident_type]]`: war rooms made, set up, pinned, read for the summary and archived (`config/incidents.rs`).
fn incidents(cfg: &Config) -> Vec<Scope> {
    cfg.incidents
        .scopes()
        .into_iter()
        .map(|name| {
            let why = match name {
                "channels:manage" => "create, set up and archive incident war rooms (conversations.create, invite, setTopic, setPurpose, archive)",
                "groups:write" => "create and set up private war rooms for incident types with private = true",
                "channels:history" => "read a war room's decisions and action items for the incident summary (conversations.history)",
                "groups:history" => "read a private war room's decisions and action items for the incident summary",
                "channels:read" => "find channels by name for incident announcements and watched channels (conversations.list)",
                "groups:read" => "find private war rooms and watched private channels",
                "pins:write" => "pin the incident card in its war room (pins.add)",
                "reactions:read" => "declare an incident by a reaction in a watched channel, mark timeline notes by reaction (reaction_added)",
                "usergroups:read" => "invite the members of an incident type's invite_groups (usergroups.users.list)",
                "chat:write" => "post the incident card, announcement, reminders and summary",
                other => other,
            };
            scope(name, why)
        })
        .collect()
}

/// `[[schedule]]`s with `digest_channels` read those channels' history for the decisions digest.
fn digests(cfg: &Config) -> Vec<Scope> {
    if !cfg
        .chatops
        .schedules
        .iter()
        .any(|s| !s.digest_channels.is_empty())
    {
        return Vec::new();
    }
    let why = "read the channels a [[schedule]]'s digest_channels names for its digest of decisions and action items (conversations.history)";
    vec![
        scope("channels:history", why),
        scope(
            "channels:read",
            "find the digest's channels by name (conversations.list)",
        ),
    ]
}

/// The bot events the config's handlers answer.
pub fn bot_events(cfg: &Config) -> Vec<&'static str> {
    if !receives_slack(cfg) {
        return Vec::new();
    }
    let mut events = vec!["app_mention"];
    if cfg.actions.ack_reaction.is_some() {
        events.push("reaction_added");
    }
    for e in cfg.incidents.events() {
        if !events.contains(&e) {
            events.push(e);
        }
    }
    if !cfg.steps.is_empty() {
        events.push("function_executed");
    }
    events
}

/// Each `[[step]]` as a custom step in Slack's manifest shape: callback_id (its action's name) → title,
/// description, input and output parameters (`properties` and the `required` names).
fn functions(cfg: &Config) -> BTreeMap<String, Function> {
    let params = |list: &mut dyn Iterator<Item = (&sluice_domain::step::Param, &String)>| {
        let mut out = Parameters::default();
        for (p, description) in list {
            out.properties.insert(
                p.name.clone(),
                Parameter {
                    ty: p.ty.manifest_type(),
                    title: p.title.clone(),
                    description: (!description.is_empty()).then(|| description.clone()),
                },
            );
            if p.required {
                out.required.push(p.name.clone());
            }
        }
        out
    };
    cfg.steps
        .iter()
        .map(|s| {
            let description = if s.description.is_empty() {
                s.title.clone()
            } else {
                s.description.clone()
            };
            let function = Function {
                title: s.title.clone(),
                description,
                input_parameters: params(&mut s.inputs.iter().map(|(p, d)| (p, d))),
                output_parameters: params(&mut s.outputs.iter().map(|(p, d, _)| (p, d))),
            };
            (s.action.clone(), function)
        })
        .collect()
}

/// Where Slack reaches Sluice when it is not told (`--url`): the manifest says to replace it.
pub const PLACEHOLDER_URL: &str = "https://sluice.example.com";

#[derive(Serialize)]
struct Manifest {
    display_information: Display,
    features: Features,
    oauth_config: OAuth,
    settings: Settings,
    /// Workflow Builder custom steps (`[[step]]`), by callback_id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    functions: BTreeMap<String, Function>,
}

#[derive(Serialize)]
struct Function {
    title: String,
    description: String,
    input_parameters: Parameters,
    output_parameters: Parameters,
}

#[derive(Serialize, Default)]
struct Parameters {
    properties: BTreeMap<String, Parameter>,
    required: Vec<String>,
}

#[derive(Serialize)]
struct Parameter {
    #[serde(rename = "type")]
    ty: &'static str,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Serialize)]
struct Display {
    name: String,
    description: String,
}

#[derive(Serialize)]
struct Features {
    bot_user: BotUser,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slash_commands: Vec<SlashCommand>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shortcuts: Vec<ManifestShortcut>,
}

/// A global or message shortcut (Slack's manifest `features.shortcuts`).
#[derive(Serialize)]
struct ManifestShortcut {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    callback_id: &'static str,
    description: String,
}

#[derive(Serialize)]
struct BotUser {
    display_name: String,
    always_online: bool,
}

#[derive(Serialize)]
struct SlashCommand {
    command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    description: String,
    usage_hint: String,
    /// Mentions arrive as `<@U…|name>` and `<#C…|name>`, which is what `user` and `channel` arguments read.
    should_escape: bool,
}

#[derive(Serialize)]
struct OAuth {
    scopes: BotScopes,
}

#[derive(Serialize)]
struct BotScopes {
    bot: Vec<&'static str>,
}

#[derive(Serialize)]
struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_subscriptions: Option<EventSubscriptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interactivity: Option<Interactivity>,
    org_deploy_enabled: bool,
    socket_mode_enabled: bool,
    /// `remote` when the app has custom steps: Sluice runs them, not Slack's hosting.
    #[serde(skip_serializing_if = "Option::is_none")]
    function_runtime: Option<&'static str>,
    token_rotation_enabled: bool,
}

#[derive(Serialize)]
struct EventSubscriptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    request_url: Option<String>,
    bot_events: Vec<&'static str>,
}

#[derive(Serialize)]
struct Interactivity {
    is_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_url: Option<String>,
    /// Where external selects load their options (`[[form]]` inputs of type `external_select`).
    #[serde(skip_serializing_if = "Option::is_none")]
    message_menu_options_url: Option<String>,
}

/// Slack's limits on a slash command's texts in a manifest.
const DESCRIPTION_MAX: usize = 2000;
const USAGE_HINT_MAX: usize = 1000;

fn cut(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// The slash command with the built-ins and the configured `[[command]]`s in its usage hint and description.
fn slash_command(cfg: &Config, url: Option<String>) -> SlashCommand {
    let mut usage = vec![
        "help".to_string(),
        "status [service]".into(),
        "oncall [team]".into(),
        "silence <matchers> <duration> <comment>".into(),
        "ack <alert>".into(),
        "remind #channel in <delay> <text>".into(),
    ];
    if !cfg.incidents.types.is_empty() {
        usage.push("incident declare <title> [sev]".into());
    }
    let mut described = Vec::new();
    for c in &cfg.chatops.commands {
        usage.push(c.spec.usage.clone());
        if c.spec.description.is_empty() {
            described.push(c.spec.name.clone());
        } else {
            described.push(format!("{} ({})", c.spec.name, c.spec.description));
        }
    }
    let mut description =
        "Sluice: alert status, on-call, silences and acknowledgements".to_string();
    if !described.is_empty() {
        description.push_str("; also ");
        description.push_str(&described.join(", "));
    }
    SlashCommand {
        command: cfg.actions.command.clone(),
        url,
        description: cut(description, DESCRIPTION_MAX),
        usage_hint: cut(usage.join(" | "), USAGE_HINT_MAX),
        should_escape: true,
    }
}

/// The manifest for `cfg` as YAML, with the reasons for each scope above it as comments. `url` is where Slack
/// reaches Sluice (`None`: a placeholder the output says to replace); it is not used with Socket Mode.
pub fn render(cfg: &Config, config_name: &str, url: Option<&str>) -> Result<String, String> {
    let socket = cfg.slack.socket_mode.is_some();
    let base = url.unwrap_or(PLACEHOLDER_URL).trim_end_matches('/');
    if let Some(u) = url {
        match url::Url::parse(u) {
            Ok(parsed) if parsed.scheme() == "https" && parsed.host().is_some() => {}
            _ => {
                return Err(format!(
                    "--url {u:?} is not an https:// URL: Slack sends requests only to HTTPS URLs (use Socket Mode, [slack.socket_mode], if Sluice has no public URL)"
                ))
            }
        }
    }
    let at = |path: &str| (!socket).then(|| format!("{base}{path}"));
    let receives = receives_slack(cfg);
    let justified = justified(cfg);
    let events = bot_events(cfg);
    let has_steps = receives && !cfg.steps.is_empty();
    let manifest = Manifest {
        display_information: Display {
            name: "Sluice".into(),
            description: "Operations gateway between your systems and Slack".into(),
        },
        features: Features {
            bot_user: BotUser {
                display_name: "Sluice".into(),
                always_online: true,
            },
            slash_commands: if receives {
                vec![slash_command(cfg, at("/slack/commands"))]
            } else {
                Vec::new()
            },
            // `[[incident_type]]`s: *Declare incident* in every message's menu (`incidents::shortcut`).
            shortcuts: if receives && !cfg.incidents.is_empty() {
                vec![ManifestShortcut {
                    name: "Declare incident".into(),
                    kind: "message",
                    callback_id: crate::incidents::DECLARE_SHORTCUT,
                    description: "Open an incident war room about this message".into(),
                }]
            } else {
                Vec::new()
            },
        },
        oauth_config: OAuth {
            scopes: BotScopes {
                bot: justified.keys().copied().collect(),
            },
        },
        settings: Settings {
            event_subscriptions: (!events.is_empty()).then(|| EventSubscriptions {
                request_url: at("/slack/events"),
                bot_events: events,
            }),
            interactivity: receives.then(|| Interactivity {
                is_enabled: true,
                request_url: at("/slack/interactions"),
                message_menu_options_url: if cfg
                    .forms
                    .forms
                    .iter()
                    .any(|f| !f.option_urls.is_empty())
                {
                    at("/slack/options")
                } else {
                    None
                },
            }),
            // Slack offers custom steps only from org-ready apps.
            org_deploy_enabled: has_steps,
            socket_mode_enabled: socket,
            function_runtime: has_steps.then_some("remote"),
            token_rotation_enabled: false,
        },
        functions: if has_steps {
            functions(cfg)
        } else {
            BTreeMap::new()
        },
    };
    let yaml = yaml_serde::to_string(&manifest).map_err(|e| e.to_string())?;
    let mut out = vec![
        format!("# Slack app manifest for {config_name}, made by `sluice manifest`."),
        "# Create the app from it: api.slack.com/apps → Create New App → From a manifest.".into(),
    ];
    if socket {
        out.push("# Socket Mode: Slack needs no URL for Sluice. Create an app-level token with connections:write".into());
        out.push(
            "# (Basic Information → App-Level Tokens) for [slack.socket_mode] app_token_env."
                .into(),
        );
    } else if receives && url.is_none() {
        out.push(format!(
            "# REPLACE {PLACEHOLDER_URL} below with the HTTPS URL Slack reaches Sluice at (or pass --url)."
        ));
    }
    if !receives {
        out.push("# Sluice only posts with this config: no signing secret ([slack] signing_secret_env or".into());
        out.push(
            "# signing_secret_file) and no Socket Mode, so no buttons, slash command or events."
                .into(),
        );
    }
    out.push("# Bot scopes, and what in the config needs each:".into());
    for (name, reasons) in &justified {
        for (i, why) in reasons.iter().enumerate() {
            let label = if i == 0 { *name } else { "" };
            out.push(format!("#   {label:<18} {why}"));
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    text.push_str(&yaml);
    Ok(text)
}

/// Reads `path` for the manifest. The Slack app's own secrets cannot exist before the app does: a signing secret
/// or app-level token the file names (`signing_secret_env`, `socket_mode.app_token_env`) but the environment does
/// not hold is stood in for, so the manifest can be made first. Everything else is checked as `sluice check` does.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, Vec<Problem>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path.parent().unwrap_or(Path::new(".")), env),
        // Config::load says what is wrong with the path.
        Err(_) => Config::load(path, env),
    }
}

/// [`load`]'s reading of config text.
pub fn parse(text: &str, base: &Path, env: &dyn Env) -> Result<Config, Vec<Problem>> {
    let table: toml::Table = text.parse().unwrap_or_default();
    let slack = table.get("slack").and_then(|s| s.as_table());
    let named = |t: Option<&toml::Table>, key: &str| {
        t.and_then(|t| t.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let mut stand_ins = BTreeMap::new();
    if let Some(var) = named(slack, "signing_secret_env") {
        stand_ins.insert(var, "signing-secret-of-the-app-to-be".to_string());
    }
    let socket = slack
        .and_then(|s| s.get("socket_mode"))
        .and_then(|s| s.as_table());
    if let Some(var) = named(socket, "app_token_env") {
        stand_ins.insert(var, "xapp-token-of-the-app-to-be".to_string());
    }
    Config::parse(text, base, &BeforeTheApp { env, stand_ins })
}

struct BeforeTheApp<'a> {
    env: &'a dyn Env,
    stand_ins: BTreeMap<String, String>,
}

impl Env for BeforeTheApp<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.env
            .var(name)
            .or_else(|| self.stand_ins.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config as `sluice manifest` reads it, with only the outgoing calls' secret in the environment.
    fn config(text: &str) -> Config {
        let env = BTreeMap::from([("OUT".to_string(), "outgoing-secret-0123456789".to_string())]);
        parse(text, Path::new("."), &env).unwrap_or_else(|p| panic!("{p:#?}"))
    }

    /// Only posting: no signing secret and no Socket Mode, so no command, events or interactivity.
    const ALERTS_ONLY: &str = r#"
[routing]
default = { channels = ["alerts"] }
"#;

    const SOCKET_MODE: &str = r#"
[slack]
signing_secret_env = "SIGNING"
[slack.socket_mode]
app_token_env = "APP_TOKEN"
[actions]
groups = ["S0SRE"]
ack_reaction = "eyes"
[routing]
default = { channels = ["alerts"] }
"#;

    const COMMANDS: &str = r#"
[slack]
signing_secret_env = "SIGNING"
[actions]
command = "/ops"
channel_members = true
ack_reaction = ""
outgoing_secret_env = "OUT"
[[action]]
name = "deploy"
url = "https://deployer.internal/deploy"
[[command]]
name = "deploy"
description = "Deploy a service"
action = "deploy"
args = [{ name = "service", type = "string" }, { name = "env", type = "enum", values = ["staging", "production"] }]
[[action]]
name = "page"
url = "https://pager.internal/page"
[[command]]
name = "page"
usage = "page <user>"
action = "page"
args = [{ name = "who", type = "user" }]
groups = ["S0LEADS"]
[routing]
default = { channels = ["alerts"] }
"#;

    #[test]
    fn alerts_only_asks_to_post_and_to_find_posts_again_and_nothing_more() {
        let cfg = config(ALERTS_ONLY);
        assert_eq!(
            scopes(&cfg).into_iter().collect::<Vec<_>>(),
            [
                "channels:history",
                "channels:read",
                "chat:write",
                "chat:write.public",
                "groups:history",
                "groups:read"
            ]
        );
        let text = render(&cfg, "sluice.toml", None).unwrap();
        assert!(!text.contains("slash_commands"), "{text}");
        assert!(!text.contains("interactivity"), "{text}");
        insta::assert_snapshot!("alerts_only", text);
    }

    #[test]
    fn socket_mode_has_no_urls_and_asks_for_reactions_and_groups() {
        let cfg = config(SOCKET_MODE);
        let s = scopes(&cfg);
        for needed in [
            "commands",
            "app_mentions:read",
            "reactions:read",
            "usergroups:read",
        ] {
            assert!(s.contains(needed), "{needed} missing: {s:?}");
        }
        let text = render(&cfg, "sluice.toml", Some("https://ignored.example.org")).unwrap();
        assert!(text.contains("socket_mode_enabled: true"), "{text}");
        assert!(
            !text.contains("request_url") && !text.contains("url:"),
            "{text}"
        );
        insta::assert_snapshot!("socket_mode", text);
    }

    #[test]
    fn commands_are_in_the_slash_commands_usage_and_description() {
        let cfg = config(COMMANDS);
        let s = scopes(&cfg);
        assert!(!s.contains("reactions:read"), "ack_reaction is off: {s:?}");
        assert!(
            s.contains("usergroups:read"),
            "a command allows a group: {s:?}"
        );
        let text = render(&cfg, "sluice.toml", Some("https://sluice.corp.example/")).unwrap();
        for want in [
            "command: /ops",
            "url: https://sluice.corp.example/slack/commands",
            "request_url: https://sluice.corp.example/slack/interactions",
            "request_url: https://sluice.corp.example/slack/events",
            "deploy <service> <env>",
            "page <user>",
            "deploy (Deploy a service)",
        ] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
        assert!(!text.contains("reaction_added"), "{text}");
        insta::assert_snapshot!("commands", text);
    }

    #[test]
    fn a_url_slack_cannot_call_is_refused() {
        let cfg = config(COMMANDS);
        for bad in [
            "http://sluice.corp.example",
            "sluice.corp.example",
            "https://",
        ] {
            let e = render(&cfg, "sluice.toml", Some(bad)).unwrap_err();
            assert!(e.contains("https://"), "{bad}: {e}");
        }
        let placeholder = render(&cfg, "sluice.toml", None).unwrap();
        assert!(
            placeholder.contains(&format!("REPLACE {PLACEHOLDER_URL}")),
            "{placeholder}"
        );
    }

    /// Every method Sluice's client calls that needs a scope is covered by some area, by the simulator's table of
    /// the scope each method needs (which follows Slack's).
    #[test]
    fn every_scope_the_calls_need_is_asked_for() {
        let everything = config(
            SOCKET_MODE
                .replace(
                    "groups = [\"S0SRE\"]",
                    "groups = [\"S0SRE\"]\nchannel_members = true",
                )
                .as_str(),
        );
        let granted = scopes(&everything);
        for method in [
            "chat.postMessage",
            "chat.update",
            "chat.postEphemeral",
            "chat.getPermalink",
            "conversations.history",
            "conversations.replies",
            "conversations.list",
            "conversations.members",
            "usergroups.users.list",
            "views.open",
            "views.update",
            "views.push",
        ] {
            let needed = sluice_sim::api::method_scope(method).expect("the simulator knows it");
            if let Some(needed) = needed {
                assert!(
                    granted.contains(needed),
                    "{method} needs {needed}: {granted:?}"
                );
            }
        }
    }

    /// The workflows: incidents (a private type with a lookup), a form with an external select, approvals by API and a
    /// digest. Every Web API method these features call is covered, the reaction event is subscribed, and Slack is
    /// told where external selects load their options.
    const WORKFLOWS: &str = r#"
[slack]
signing_secret_env = "SIGNING"
[actions]
command = "/ops"
ack_reaction = ""
outgoing_secret_env = "OUT"
[[api_key]]
name = "ci"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
scopes = ["approvals:write"]
[[action]]
name = "crm"
url = "https://crm.internal/lookup"
[[incident_type]]
name = "support"
channel = "esc-{{ slug }}"
private = true
reaction = "rotating_light"
watch_channels = ["support"]
lookup = "crm"
[[form]]
name = "pick"
title = "Pick a team"
action = "crm"
inputs = [{ name = "team", type = "external_select", url = "https://crm.internal/options" }]
[[command]]
name = "pick"
form = "pick"
[[schedule]]
name = "decisions"
cron = "0 17 * * 1-5"
channel = "eng-digest"
digest_channels = ["eng"]
[routing]
default = { channels = ["alerts"] }
"#;

    #[test]
    fn the_workflows_scopes_events_and_options_url_are_in_the_manifest() {
        let cfg = config(WORKFLOWS);
        let granted = scopes(&cfg);
        for method in [
            "conversations.create",
            "conversations.invite",
            "conversations.setTopic",
            "conversations.setPurpose",
            "conversations.archive",
            "pins.add",
            "conversations.open",
            "conversations.history",
            "chat.scheduleMessage",
            "chat.deleteScheduledMessage",
            "usergroups.users.list",
        ] {
            let needed = sluice_sim::api::method_scope(method).expect("the simulator knows it");
            if let Some(needed) = needed {
                assert!(
                    granted.contains(needed),
                    "{method} needs {needed}: {granted:?}"
                );
            }
        }
        // Private war rooms need the private-channel twins.
        for private in ["groups:write", "groups:history", "groups:read"] {
            assert!(granted.contains(private), "{private}: {granted:?}");
        }
        let yaml =
            render(&cfg, "sluice.toml", Some("https://sluice.example.org")).expect("renders");
        assert!(yaml.contains("- reaction_added"), "{yaml}");
        assert!(
            yaml.contains("callback_id: sluice_declare_incident") && yaml.contains("type: message"),
            "{yaml}"
        );
        assert!(
            yaml.contains("message_menu_options_url: https://sluice.example.org/slack/options"),
            "{yaml}"
        );
        // Without incident types, forms, approvals or digests none of it is asked for.
        let plain = scopes(&config(COMMANDS));
        for extra in ["channels:manage", "pins:write", "groups:write", "im:write"] {
            assert!(
                !plain.contains(extra),
                "{extra} without a feature that needs it: {plain:?}"
            );
        }
        let yaml = render(
            &config(COMMANDS),
            "sluice.toml",
            Some("https://sluice.example.org"),
        )
        .expect("renders");
        assert!(!yaml.contains("message_menu_options_url"), "{yaml}");
        assert!(!yaml.contains("shortcuts"), "{yaml}");
    }

    /// Each `[[step]]` is a custom step under `functions:` in Slack's shape (callback_id = the action's name), and the
    /// app asks for what steps need: the `function_executed` event, the remote function runtime, org-ready deploys.
    #[test]
    fn steps_are_declared_as_functions_with_their_parameters() {
        let text = COMMANDS.to_string()
            + r#"
[[step]]
action = "deploy"
title = "Deploy a service"
description = "Deploys through the deployer"
inputs = [
  { name = "service", type = "string", title = "Service" },
  { name = "by", type = "user_id", title = "Requested by", required = false },
]
outputs = [{ name = "version", type = "string", title = "Version", from = "/version" }]
"#;
        let yaml = render(
            &config(&text),
            "sluice.toml",
            Some("https://sluice.example.org"),
        )
        .expect("renders");
        let manifest: yaml_serde::Value = yaml_serde::from_str(
            &yaml
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .expect("YAML");
        let want: yaml_serde::Value = yaml_serde::from_str(
            r#"
deploy:
  title: Deploy a service
  description: Deploys through the deployer
  input_parameters:
    properties:
      by: { type: "slack#/types/user_id", title: Requested by }
      service: { type: string, title: Service }
    required: [service]
  output_parameters:
    properties:
      version: { type: string, title: Version }
    required: [version]
"#,
        )
        .unwrap();
        assert_eq!(manifest["functions"], want, "{yaml}");
        assert_eq!(manifest["settings"]["function_runtime"], "remote", "{yaml}");
        assert_eq!(manifest["settings"]["org_deploy_enabled"], true, "{yaml}");
        let events = manifest["settings"]["event_subscriptions"]["bot_events"]
            .as_sequence()
            .expect("bot events");
        assert!(events.iter().any(|e| e == "function_executed"), "{yaml}");
        // Without a step, none of it.
        let plain = render(&config(COMMANDS), "sluice.toml", None).expect("renders");
        for absent in [
            "functions:",
            "function_runtime",
            "function_executed",
            "org_deploy_enabled: true",
        ] {
            assert!(!plain.contains(absent), "{absent}: {plain}");
        }
    }
}
