//! `[[incident_type]]`: how incidents of a kind are declared (a command, an alert card's button, a reaction on a
//! message in a watched channel), where their war room is made (a channel name template, private or not), who is
//! invited, what is looked up, who may declare and resolve, and when to remind. Checked into [`IncidentsConfig`],
//! each problem with its line and fix like the rest of the file.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sluice_core::duration::parse_duration_ms;
use sluice_domain::incident::{channel_name, Reminders, SEVERITIES};
use toml::Spanned;

use super::actions::Actions;
use super::{ChatopsConfig, Report};

/// `[[incident_type]]` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawIncidentType {
    pub name: String,
    /// Where incidents are announced (and their summary posted).
    pub announce_channel: Option<String>,
    /// The war room's name, a minijinja template over `date`, `slug`, `title`, `sev`, `type`, `id`.
    #[serde(default = "default_channel")]
    pub channel: String,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub invite_users: Vec<String>,
    /// User groups whose members are invited (the on-call group).
    #[serde(default)]
    pub invite_groups: Vec<String>,
    /// A `[[rotation]]` whose current on-call is invited.
    pub rotation: Option<String>,
    /// Reacting with it on a message in one of `watch_channels` declares an incident of this type.
    pub reaction: Option<String>,
    #[serde(default)]
    pub watch_channels: Vec<String>,
    /// An `[[action]]` answering `{customer, tier, account_manager}` for the originating message.
    pub lookup: Option<String>,
    /// The roles `/ops incident role` gives.
    pub roles: Option<Vec<String>>,
    /// Reacting with it on a message in the war room puts the message on the timeline.
    pub note_reaction: Option<String>,
    /// Who may declare (users, user groups); all empty: anyone who can run the command.
    #[serde(default)]
    pub declare_users: Vec<String>,
    #[serde(default)]
    pub declare_groups: Vec<String>,
    /// Who may resolve, give roles and change the severity; all empty: anyone.
    #[serde(default)]
    pub resolve_users: Vec<String>,
    #[serde(default)]
    pub resolve_groups: Vec<String>,
    /// Minutes without an update before a reminder, per severity: `{ sev1 = 15, sev2 = 30 }`.
    #[serde(default)]
    pub reminders: BTreeMap<String, i64>,
    /// The severity an incident starts at when none is given (default 3).
    pub default_sev: Option<u8>,
    /// Archive the war room this long after the resolve (`2h`, `1d`).
    pub archive_after: Option<String>,
}

fn default_channel() -> String {
    "inc-{{ date }}-{{ slug }}".into()
}

/// One `[[incident_type]]`, checked.
#[derive(Debug, Clone)]
pub struct IncidentType {
    pub name: String,
    pub announce_channel: Option<String>,
    pub channel: String,
    pub private: bool,
    pub invite_users: Vec<String>,
    pub invite_groups: Vec<String>,
    pub rotation: Option<String>,
    pub reaction: Option<String>,
    pub watch_channels: Vec<String>,
    pub lookup: Option<String>,
    pub roles: Vec<String>,
    pub note_reaction: String,
    pub declare_users: Vec<String>,
    pub declare_groups: Vec<String>,
    pub resolve_users: Vec<String>,
    pub resolve_groups: Vec<String>,
    pub reminders: Reminders,
    pub default_sev: u8,
    pub archive_after_ms: Option<i64>,
}

impl IncidentType {
    /// The war room's name for an incident: the template rendered, made a valid channel name.
    pub fn channel_name(&self, vars: &serde_json::Value) -> Result<String, String> {
        let env = minijinja::Environment::new();
        let rendered = env
            .render_str(&self.channel, vars)
            .map_err(|e| format!("the channel template failed: {e}"))?;
        channel_name(&rendered).ok_or_else(|| {
            format!("the channel template made {rendered:?}, which is no channel name")
        })
    }
}

/// The `[[action]]`-style name of the *Declare incident* button on firing alerts' cards (`sluice_run:` + it).
pub const DECLARE_BUTTON: &str = "sluice_declare_incident";

/// The incident part of the configuration, checked.
#[derive(Debug, Clone, Default)]
pub struct IncidentsConfig {
    pub types: Vec<IncidentType>,
}

impl IncidentsConfig {
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The type a command or a card declares: the one named `default`, else the first.
    pub fn default_type(&self) -> Option<&IncidentType> {
        self.types
            .iter()
            .find(|t| t.name == "default")
            .or_else(|| self.types.first())
    }

    pub fn get(&self, name: &str) -> Option<&IncidentType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// The bot scopes incidents use, only when incident types are configured: create, name, invite to and archive
    /// war rooms (public and private), pin the card, read the war room's history for the summary, read the
    /// reactions that declare and mark, and read user groups to invite their members.
    pub fn scopes(&self) -> Vec<&'static str> {
        if self.types.is_empty() {
            return vec![];
        }
        let mut s = vec![
            "channels:manage",
            "channels:history",
            "channels:read",
            "chat:write",
            "pins:write",
            "reactions:read",
            "usergroups:read",
        ];
        if self.types.iter().any(|t| t.private) {
            s.extend(["groups:write", "groups:history", "groups:read"]);
        }
        s
    }

    /// The *Declare incident* button for firing alerts' cards, when incident types are configured.
    pub fn card_button(&self) -> Option<sluice_core::render::ActionButton> {
        #[derive(Deserialize)]
        struct On {
            on: sluice_core::route::MatchTable,
        }
        if self.types.is_empty() {
            return None;
        }
        let on: On = toml::from_str("on = { kind = \"alert\", status = \"firing\" }")
            .expect("a literal match table parses");
        let mut errors = Vec::new();
        let on = sluice_core::route::Matchers::compile(
            &on.on,
            "the Declare incident button",
            &mut errors,
        );
        Some(sluice_core::render::ActionButton {
            name: DECLARE_BUTTON.to_string(),
            label: "Declare incident".to_string(),
            on,
            confirm: None,
        })
    }

    /// The events incidents need Slack to send: `reaction_added` (declaring by reaction, notes by reaction).
    pub fn events(&self) -> Vec<&'static str> {
        if self.types.is_empty() {
            vec![]
        } else {
            vec!["reaction_added"]
        }
    }
}

fn one_word(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

/// Checks every `[[incident_type]]`.
pub fn check(
    raw: &[Spanned<RawIncidentType>],
    actions: &Actions,
    chatops: &ChatopsConfig,
    p: &mut Report<'_>,
) -> IncidentsConfig {
    let mut types = Vec::new();
    let mut names = BTreeSet::new();
    let mut reactions: BTreeMap<String, String> = BTreeMap::new();
    for spanned in raw {
        let span = Some(spanned.span());
        let r = spanned.get_ref();
        let name = r.name.trim().to_string();
        let mut ok = true;
        let mut bad = |m: String, fix: &str| {
            p(span.clone(), m, fix);
            ok = false;
        };
        if !one_word(&name) {
            bad(
                format!("incident_type name {:?} is not one word", r.name),
                "name it with one word, e.g. name = \"default\"",
            );
        } else if !names.insert(name.clone()) {
            bad(
                format!("incident_type {name:?} is defined twice"),
                "give every [[incident_type]] its own name",
            );
        }
        let t = IncidentType {
            name: name.clone(),
            announce_channel: r
                .announce_channel
                .as_ref()
                .map(|c| c.trim_start_matches('#').to_string()),
            channel: r.channel.clone(),
            private: r.private,
            invite_users: r.invite_users.clone(),
            invite_groups: r.invite_groups.clone(),
            rotation: r.rotation.clone(),
            reaction: r.reaction.as_ref().map(|s| s.trim_matches(':').to_string()),
            watch_channels: r
                .watch_channels
                .iter()
                .map(|c| c.trim_start_matches('#').to_string())
                .collect(),
            lookup: r.lookup.clone(),
            roles: r
                .roles
                .clone()
                .unwrap_or_else(|| vec!["commander".into(), "comms".into()]),
            note_reaction: r
                .note_reaction
                .as_deref()
                .unwrap_or("pushpin")
                .trim_matches(':')
                .to_string(),
            declare_users: r.declare_users.clone(),
            declare_groups: r.declare_groups.clone(),
            resolve_users: r.resolve_users.clone(),
            resolve_groups: r.resolve_groups.clone(),
            reminders: Reminders::new(),
            default_sev: r.default_sev.unwrap_or(3),
            archive_after_ms: None,
        };
        let sample = serde_json::json!({
            "date": "2026-12-02", "slug": "checkout-errors", "title": "Checkout errors", "sev": 2,
            "type": name, "id": "inc_0123",
        });
        if let Err(e) = t.channel_name(&sample) {
            bad(
                format!("incident_type {name:?}: {e}"),
                "write a template that makes a channel name, e.g. channel = \"inc-{{ date }}-{{ slug }}\"",
            );
        }
        match (&t.reaction, t.watch_channels.is_empty()) {
            (Some(_), true) => bad(
                format!("incident_type {name:?} has a reaction but no watch_channels"),
                "list where reacting declares: watch_channels = [\"support\"]",
            ),
            (None, false) => bad(
                format!("incident_type {name:?} has watch_channels but no reaction"),
                "name the reaction that declares: reaction = \"rotating_light\"",
            ),
            _ => {}
        }
        if let Some(reaction) = &t.reaction {
            if reaction == &t.note_reaction {
                bad(
                    format!(
                        "incident_type {name:?}: reaction {reaction:?} is also its note_reaction"
                    ),
                    "use different reactions to declare and to mark notes",
                );
            }
            if let Some(other) = reactions.insert(reaction.clone(), name.clone()) {
                bad(
                    format!("incident_types {other:?} and {name:?} both declare with :{reaction}:"),
                    "give each type its own reaction",
                );
            }
        }
        if let Some(lookup) = &t.lookup {
            if actions.get(lookup).is_none() {
                bad(
                    format!("incident_type {name:?}: lookup {lookup:?} is no [[action]]"),
                    "define an [[action]] with that name (it answers {customer, tier, account_manager}), or fix the name",
                );
            }
        }
        if let Some(rot) = &t.rotation {
            if !chatops.rotations.iter().any(|r| &r.name == rot) {
                bad(
                    format!("incident_type {name:?}: rotation {rot:?} is no [[rotation]]"),
                    "name a [[rotation]] defined in this file, or leave rotation out",
                );
            }
        }
        if let Some(r) = t.roles.iter().find(|r| !one_word(r)) {
            bad(
                format!("incident_type {name:?}: role {r:?} is not one word"),
                "name roles with one word, e.g. roles = [\"commander\", \"comms\"]",
            );
        }
        if !SEVERITIES.contains(&t.default_sev) {
            bad(
                format!(
                    "incident_type {name:?}: default_sev {} is not 1 to 4",
                    t.default_sev
                ),
                "use a severity from 1 (worst) to 4",
            );
        }
        let mut reminders = Reminders::new();
        for (key, minutes) in &r.reminders {
            let sev = key
                .strip_prefix("sev")
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| SEVERITIES.contains(n));
            match sev {
                Some(sev) if *minutes > 0 => {
                    reminders.insert(sev, *minutes);
                }
                Some(_) => bad(
                    format!("incident_type {name:?}: reminders.{key} = {minutes} is not a number of minutes"),
                    "give minutes above 0, e.g. reminders = { sev1 = 15 }",
                ),
                None => bad(
                    format!("incident_type {name:?}: reminders has {key:?}, which is no severity"),
                    "key reminders by sev1 to sev4, e.g. reminders = { sev1 = 15, sev2 = 30 }",
                ),
            }
        }
        let archive_after_ms = match r.archive_after.as_deref().map(parse_duration_ms) {
            None => None,
            Some(Ok(ms)) => Some(ms),
            Some(Err(e)) => {
                bad(
                    format!("incident_type {name:?}: archive_after: {e}"),
                    "write a duration like archive_after = \"2h\", or leave it out to keep the war room",
                );
                None
            }
        };
        if ok {
            types.push(IncidentType {
                reminders,
                archive_after_ms,
                ..t
            });
        }
    }
    IncidentsConfig { types }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_reported, parse};

    const ISSUE_EXAMPLE: &str = r#"
[actions]
outgoing_secret_env = "OUT"

[[action]]
name = "crm"
url = "http://127.0.0.1:9/crm"

[[incident_type]]
name = "default"
announce_channel = "incidents"
channel = "inc-{{ date }}-{{ slug }}"
invite_groups = ["S0001"]                 # the on-call user group

[[incident_type]]
name = "support"
channel = "esc-{{ slug }}"
private = true
reaction = "rotating_light"               # reacting with it on a message in a watched channel escalates
watch_channels = ["support"]
invite_users = ["U0003"]                  # the Tier-2 lead
lookup = "crm"                            # an [[action]] answering {customer, tier, account_manager}
"#;

    #[test]
    fn the_issue_example_loads_and_names_its_scopes() {
        let cfg = parse(ISSUE_EXAMPLE).unwrap_or_else(|p| panic!("{p:?}"));
        let inc = &cfg.incidents;
        assert_eq!(inc.types.len(), 2);
        assert_eq!(inc.default_type().unwrap().name, "default");
        let support = inc.get("support").unwrap();
        assert!(support.private);
        assert_eq!(support.reaction.as_deref(), Some("rotating_light"));
        assert_eq!(support.note_reaction, "pushpin");
        assert_eq!(support.roles, ["commander", "comms"]);
        let name = support
            .channel_name(&serde_json::json!({"slug": "acme-123"}))
            .unwrap();
        assert_eq!(name, "esc-acme-123");
        for s in [
            "channels:manage",
            "groups:write",
            "pins:write",
            "channels:history",
            "reactions:read",
        ] {
            assert!(inc.scopes().contains(&s), "{s}");
        }
        assert_eq!(inc.events(), ["reaction_added"]);
        let none = parse("").unwrap();
        assert!(none.incidents.scopes().is_empty() && none.incidents.events().is_empty());
    }

    /// Also the digests' `[[schedule]]` fields (issue 13, step 6), checked in `config/commands.rs`.
    #[test]
    fn wrong_incident_types_are_refused_with_line_and_fix() {
        let t = |body: &str| format!("[[incident_type]]\nname = \"x\"\n{body}\n");
        let cases = [
            (
                t("reaction = \"rotating_light\""),
                1,
                "has a reaction but no watch_channels",
                "watch_channels = ",
            ),
            (
                t("watch_channels = [\"support\"]"),
                1,
                "has watch_channels but no reaction",
                "reaction = ",
            ),
            (
                t("lookup = \"crm\""),
                1,
                "lookup \"crm\" is no [[action]]",
                "define an [[action]]",
            ),
            (
                t("rotation = \"primary\""),
                1,
                "rotation \"primary\" is no [[rotation]]",
                "[[rotation]]",
            ),
            (
                t("channel = \"{{ \""),
                1,
                "the channel template failed",
                "channel = ",
            ),
            (
                t("channel = \"!!!\""),
                1,
                "which is no channel name",
                "channel = ",
            ),
            (
                t("reminders = { p1 = 5 }"),
                1,
                "which is no severity",
                "sev1 to sev4",
            ),
            (
                t("reminders = { sev1 = 0 }"),
                1,
                "is not a number of minutes",
                "above 0",
            ),
            (
                t("archive_after = \"2 hours\""),
                1,
                "archive_after",
                "archive_after = \"2h\"",
            ),
            (t("default_sev = 9"), 1, "default_sev 9", "1 (worst) to 4"),
            (
                t("roles = [\"incident commander\"]"),
                1,
                "is not one word",
                "roles = ",
            ),
            (
                "[[incident_type]]\nname = \"a\"\n\n[[incident_type]]\nname = \"a\"\n".to_string(),
                4,
                "defined twice",
                "its own name",
            ),
            (
                t("reaction = \"pushpin\"\nwatch_channels = [\"s\"]"),
                1,
                "is also its note_reaction",
                "different reactions",
            ),
        ];
        let digest = |extra: &str| {
            format!("[[schedule]]\nname = \"d\"\ncron = \"0 9 * * *\"\nchannel = \"digests\"\n{extra}\n")
        };
        let cases: Vec<(String, usize, &str, &str)> = cases
            .into_iter()
            .chain([
                (
                    digest("digest_channels = [\"eng\"]\nllm_url = \"http://127.0.0.1:9/v1/chat/completions\""),
                    1,
                    "which is not allow-listed",
                    "[approvals] callback_hosts",
                ),
                (
                    digest("llm_url = \"http://127.0.0.1:9/v1\""),
                    1,
                    "has an llm_url but no digest_channels",
                    "digest_channels = ",
                ),
            ])
            .collect();
        let table: Vec<(&str, usize, &str, &str)> = cases
            .iter()
            .map(|(text, line, m, f)| (text.as_str(), *line, *m, *f))
            .collect();
        assert_reported(&table);
    }
}
