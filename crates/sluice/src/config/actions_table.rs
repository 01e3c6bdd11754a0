//! `[actions]` (the table, not `[[action]]`): who may act on alert cards, where Escalate goes, the reaction that
//! acknowledges, the slash command's name, and the outgoing calls' secret and allowed addresses (those two are
//! checked with `[approvals]`, in `approvals.rs`). Checked into [`ActionsConfig`], each problem with its line and
//! fix.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::Report;

/// `[actions]` as written: who may act on alert cards, where escalations go, the acknowledging reaction and the
/// slash command's name. Checked into [`ActionsConfig`].
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawActions {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub channel_members: bool,
    pub escalate_group: Option<Spanned<String>>,
    pub escalate_channel: Option<Spanned<String>>,
    pub ack_reaction: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    /// Signing and destinations of outgoing calls, checked in `config/approvals.rs`.
    pub outgoing_secret_env: Option<Spanned<String>>,
    pub outgoing_secret_file: Option<Spanned<PathBuf>>,
    pub outgoing_secret: Option<Spanned<String>>,
    pub allow_link_local: Vec<Spanned<String>>,
}

/// Who may act on alert cards, where escalations go, and the slash command's name (`[actions]`, checked).
#[derive(Debug, Clone)]
pub struct ActionsConfig {
    /// Slack user ids allowed to act.
    pub users: Vec<String>,
    /// Slack user group ids (`S…`) whose members may act.
    pub groups: Vec<String>,
    /// Members of the channel a card is in may act on it. With `users` and `groups` empty and this off,
    /// everyone may act.
    pub channel_members: bool,
    /// The on-call user group (`S…`) that Escalate mentions.
    pub escalate_group: Option<String>,
    /// The channel (name or id) that Escalate posts to, with a link to the card.
    pub escalate_channel: Option<String>,
    /// The emoji (name without colons) that acknowledges an alert when someone reacts with it on its card;
    /// `None` when set to "" (reactions then do nothing).
    pub ack_reaction: Option<String>,
    /// The slash command Sluice answers.
    pub command: String,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            users: Vec::new(),
            groups: Vec::new(),
            channel_members: false,
            escalate_group: None,
            escalate_channel: None,
            ack_reaction: Some(DEFAULT_ACK_REACTION.into()),
            command: "/sluice".into(),
        }
    }
}

/// The reaction that acknowledges when `[actions] ack_reaction` is not set.
pub const DEFAULT_ACK_REACTION: &str = "eyes";

impl ActionsConfig {
    /// Escalate has somewhere to go (so cards offer the button).
    pub fn can_escalate(&self) -> bool {
        self.escalate_group.is_some() || self.escalate_channel.is_some()
    }
}

/// Checks `[actions]`, reporting each problem with its line and fix.
pub(super) fn check(raw: &RawActions, p: &mut Report<'_>) -> ActionsConfig {
    let defaults = ActionsConfig::default();
    let command = match &raw.command {
        Some(c) if !c.get_ref().starts_with('/') || c.get_ref().len() < 2 => {
            p(
                Some(c.span()),
                format!("actions.command {:?} must start with /", c.get_ref()),
                "for example \"/sluice\"",
            );
            defaults.command.clone()
        }
        Some(c) => c.get_ref().clone(),
        None => defaults.command.clone(),
    };
    let escalate_group = raw.escalate_group.as_ref().and_then(|g| {
        let id = g.get_ref().trim();
        let looks_like_id = id.len() > 1
            && id.starts_with('S')
            && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if looks_like_id {
            Some(id.to_string())
        } else {
            p(
                Some(g.span()),
                format!("actions.escalate_group {:?} is not a user group id", g.get_ref()),
                "use the group's id, which starts with S (in Slack: People → User groups → the group → ⋯ → Copy group ID), not its @handle",
            );
            None
        }
    });
    let escalate_channel = raw.escalate_channel.as_ref().and_then(|c| {
        let name = c.get_ref().trim().trim_start_matches('#');
        let valid = !name.is_empty()
            && name.chars().count() <= 80
            && name
                .chars()
                .all(|ch| ch.is_alphanumeric() || ch == '-' || ch == '_');
        if valid {
            Some(name.to_string())
        } else {
            p(
                Some(c.span()),
                format!("actions.escalate_channel {:?} is not a channel name or id", c.get_ref()),
                "use the channel's name (\"incidents\") or id (\"C0123ABCD\"); Sluice must be a member of it",
            );
            None
        }
    });
    let ack_reaction = match &raw.ack_reaction {
        None => defaults.ack_reaction.clone(),
        Some(r) => {
            let name = r.get_ref().trim().trim_matches(':');
            if name.is_empty() {
                None
            } else if name
                .chars()
                .all(|ch| ch.is_alphanumeric() || "_-+'".contains(ch))
            {
                Some(name.to_string())
            } else {
                p(
                    Some(r.span()),
                    format!("actions.ack_reaction {:?} is not an emoji name", r.get_ref()),
                    "use the emoji's name as Slack shows it, e.g. \"eyes\" or \":white_check_mark:\"; \"\" turns acknowledging by reaction off",
                );
                None
            }
        }
    };
    ActionsConfig {
        users: raw.users.clone(),
        groups: raw.groups.clone(),
        channel_members: raw.channel_members,
        escalate_group,
        escalate_channel,
        ack_reaction,
        command,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{parse, problems};

    #[test]
    fn actions_targets_are_checked_with_their_line_and_fix() {
        let p = problems(
            "[actions]\nescalate_group = \"@oncall\"\nescalate_channel = \"inc idents\"\nack_reaction = \"eyes please\"\ncommand = \"sluice\"\n",
        );
        let lines: Vec<Option<usize>> = p.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(5), Some(2), Some(3), Some(4)], "{p:#?}");
        assert!(p[1].fix.contains("starts with S"), "{}", p[1].fix);
        assert!(p[2].fix.contains("incidents"), "{}", p[2].fix);
        assert!(
            p[3].fix.contains("turns acknowledging by reaction off"),
            "{}",
            p[3].fix
        );
    }

    #[test]
    fn actions_defaults_and_a_valid_table() {
        let parse = |text: &str| parse(text).map_err(|p| format!("{p:?}")).unwrap();
        let cfg = parse("");
        assert_eq!(cfg.actions.ack_reaction.as_deref(), Some("eyes"));
        assert!(!cfg.actions.can_escalate() && !cfg.actions.channel_members);
        let cfg = parse(
            "[actions]\nescalate_group = \"S0ONCALL\"\nescalate_channel = \"#incidents\"\nack_reaction = \":white_check_mark:\"\nchannel_members = true\n",
        );
        let a = &cfg.actions;
        assert_eq!(
            (
                a.escalate_group.as_deref(),
                a.escalate_channel.as_deref(),
                a.ack_reaction.as_deref(),
                a.channel_members
            ),
            (
                Some("S0ONCALL"),
                Some("incidents"),
                Some("white_check_mark"),
                true
            )
        );
        assert_eq!(
            parse("[actions]\nack_reaction = \"\"\n")
                .actions
                .ack_reaction,
            None
        );
    }
}
