//! ChatOps command grammar: how the text after `/ops deploy` becomes typed arguments, with errors that show the
//! usage. [`CommandSpec`] is one `[[command]]` as checked; [`CommandSpec::parse`] reads what someone typed;
//! [`parse_value`] reads one value of an [`ArgType`] (the config check uses it for defaults too). Pure: no IO, no
//! clock.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_slack_wire::blocks::escape_mrkdwn;

/// The type of one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgType {
    String,
    Int,
    /// One of the listed values.
    Enum(Vec<String>),
    /// `90s`, `1h30m` (read by `sluice_core::duration`).
    Duration,
    /// A user as Slack escapes a mention: `<@U123|name>` or `<@U123>`.
    User,
    /// A channel as Slack escapes it: `<#C123|name>` or `<#C123>`.
    Channel,
}

impl ArgType {
    /// The type's name as written in `sluice.toml`.
    pub fn name(&self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Int => "int",
            ArgType::Enum(_) => "enum",
            ArgType::Duration => "duration",
            ArgType::User => "user",
            ArgType::Channel => "channel",
        }
    }

    /// The type names `sluice.toml` accepts.
    pub const NAMES: [&'static str; 6] = ["string", "int", "enum", "duration", "user", "channel"];
}

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgSpec {
    pub name: String,
    pub ty: ArgType,
    /// The value used when the argument is not given, as written (checked to parse when the config is read).
    pub default: Option<String>,
    /// The last `string` argument may take the rest of the text, spaces and all.
    pub rest: bool,
}

/// A parsed argument value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ArgValue {
    Text(String),
    Int(i64),
    /// Milliseconds.
    Duration(i64),
    /// A user or channel: its id and, when Slack sent it, its name.
    Ref {
        id: String,
        name: Option<String>,
    },
}

/// One configured command, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: String,
    /// `deploy <service> <env>` (without the slash command).
    pub usage: String,
    pub description: String,
    pub args: Vec<ArgSpec>,
}

/// Splits text into words; `"…"` is one word (quotes removed). Each word comes with the byte offset where it
/// starts, so the rest of the text can be taken as typed. An unclosed quote is an error.
pub fn words(text: &str) -> Result<Vec<(usize, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        let mut quoted = false;
        while let Some(&(_, c)) = chars.peek() {
            if c == '"' {
                chars.next();
                quoted = true;
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    word.push(c);
                }
                if !closed {
                    return Err("a quote (\") is not closed".into());
                }
            } else if c.is_whitespace() {
                break;
            } else {
                word.push(c);
                chars.next();
            }
        }
        if !word.is_empty() || quoted {
            out.push((start, word));
        }
    }
    Ok(out)
}

/// `<@U123|name>` / `<#C123|name>` (with `sigil` `@` or `#`): the id and the name.
fn slack_ref(text: &str, sigil: char) -> Option<(String, Option<String>)> {
    let inner = text
        .strip_prefix('<')?
        .strip_suffix('>')?
        .strip_prefix(sigil)?;
    let (id, name) = match inner.split_once('|') {
        Some((id, name)) => (id, Some(name.to_string()).filter(|n| !n.is_empty())),
        None => (inner, None),
    };
    let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| (id.to_string(), name))
}

/// Reads one value of type `ty`; the error says what was expected.
pub fn parse_value(ty: &ArgType, text: &str) -> Result<ArgValue, String> {
    match ty {
        ArgType::String => Ok(ArgValue::Text(text.to_string())),
        ArgType::Int => text
            .parse::<i64>()
            .map(ArgValue::Int)
            .map_err(|_| format!("{text:?} is not a whole number")),
        ArgType::Enum(values) => {
            if values.iter().any(|v| v == text) {
                Ok(ArgValue::Text(text.to_string()))
            } else {
                Err(format!("{text:?} is not one of {}", values.join(", ")))
            }
        }
        ArgType::Duration => sluice_core::duration::parse_duration_ms(text)
            .map(ArgValue::Duration)
            .map_err(|e| format!("{text:?} is not a duration ({e})")),
        ArgType::User => slack_ref(text, '@')
            .map(|(id, name)| ArgValue::Ref { id, name })
            .ok_or_else(|| format!("{text:?} is not a user: mention one, like @name")),
        ArgType::Channel => slack_ref(text, '#')
            .map(|(id, name)| ArgValue::Ref { id, name })
            .ok_or_else(|| format!("{text:?} is not a channel: name one, like #ops")),
    }
}

impl CommandSpec {
    /// The usage line as mrkdwn: `` `/ops deploy &lt;service&gt; &lt;env&gt;` ``, which Slack shows as
    /// `/ops deploy <service> <env>` (unescaped, Slack would read `<service>` as a link and drop it).
    pub fn usage_line(&self, slash: &str) -> String {
        escape_mrkdwn(&format!("`{slash} {}`", self.usage))
    }

    /// Reads `text` (what follows the command's name) into the arguments by name. The error is the message shown
    /// to the user, with the usage, as mrkdwn: escaped whole, since it quotes what they typed.
    pub fn parse(&self, slash: &str, text: &str) -> Result<BTreeMap<String, ArgValue>, String> {
        self.parse_plain(slash, text).map_err(|e| escape_mrkdwn(&e))
    }

    fn parse_plain(&self, slash: &str, text: &str) -> Result<BTreeMap<String, ArgValue>, String> {
        let usage = format!("`{slash} {}`", self.usage);
        let this = format!("`{slash} {}`", self.name);
        let words = words(text).map_err(|e| format!("{this}: {e}. Usage: {usage}"))?;
        let mut out = BTreeMap::new();
        let mut i = 0;
        for arg in &self.args {
            let given = if arg.rest && i < words.len() {
                let (start, first) = &words[i];
                let raw = text[*start..].trim();
                let one_word = i + 1 == words.len();
                i = words.len();
                // A rest that is one quoted word loses its quotes; otherwise it is taken as typed.
                Some(if raw.starts_with('"') && one_word {
                    first.clone()
                } else {
                    raw.to_string()
                })
            } else if i < words.len() {
                i += 1;
                Some(words[i - 1].1.clone())
            } else {
                None
            };
            let value = match (given, &arg.default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    return Err(format!("{this}: missing <{}>. Usage: {usage}", arg.name))
                }
            };
            let parsed = parse_value(&arg.ty, &value)
                .map_err(|e| format!("{this}: <{}>: {e}. Usage: {usage}", arg.name))?;
            out.insert(arg.name.clone(), parsed);
        }
        if i < words.len() {
            let extra: Vec<&str> = words[i..].iter().map(|(_, w)| w.as_str()).collect();
            return Err(format!(
                "{this}: unexpected {:?}. Usage: {usage}",
                extra.join(" ")
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, ty: ArgType) -> ArgSpec {
        ArgSpec {
            name: name.into(),
            ty,
            default: None,
            rest: false,
        }
    }

    fn deploy() -> CommandSpec {
        CommandSpec {
            name: "deploy".into(),
            usage: "deploy <service> <env>".into(),
            description: String::new(),
            args: vec![
                arg("service", ArgType::String),
                arg(
                    "env",
                    ArgType::Enum(vec!["staging".into(), "production".into()]),
                ),
            ],
        }
    }

    fn text(v: &str) -> ArgValue {
        ArgValue::Text(v.into())
    }

    #[test]
    fn words_keep_quoted_text_together() {
        let table: [(&str, Result<Vec<&str>, ()>); 6] = [
            ("a b  c", Ok(vec!["a", "b", "c"])),
            ("  ", Ok(vec![])),
            (
                "say \"hello world\" now",
                Ok(vec!["say", "hello world", "now"]),
            ),
            ("k=\"a b\"", Ok(vec!["k=a b"])),
            ("\"\"", Ok(vec![""])),
            ("\"open", Err(())),
        ];
        for (input, want) in table {
            let got = words(input)
                .map(|w| w.into_iter().map(|(_, w)| w).collect::<Vec<_>>())
                .map_err(|_| ());
            let want = want.map(|w| w.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn values_of_each_type() {
        let e = ArgType::Enum(vec!["a".into(), "b".into()]);
        let table: [(ArgType, &str, Result<ArgValue, &str>); 12] = [
            (ArgType::String, "x y", Ok(text("x y"))),
            (ArgType::Int, "-42", Ok(ArgValue::Int(-42))),
            (ArgType::Int, "4.2", Err("not a whole number")),
            (e.clone(), "b", Ok(text("b"))),
            (e, "c", Err("is not one of a, b")),
            (
                ArgType::Duration,
                "1h30m",
                Ok(ArgValue::Duration(5_400_000)),
            ),
            (ArgType::Duration, "soon", Err("not a duration")),
            (
                ArgType::User,
                "<@U123|ana>",
                Ok(ArgValue::Ref {
                    id: "U123".into(),
                    name: Some("ana".into()),
                }),
            ),
            (
                ArgType::User,
                "<@U123>",
                Ok(ArgValue::Ref {
                    id: "U123".into(),
                    name: None,
                }),
            ),
            (ArgType::User, "@ana", Err("not a user")),
            (
                ArgType::Channel,
                "<#C9|ops>",
                Ok(ArgValue::Ref {
                    id: "C9".into(),
                    name: Some("ops".into()),
                }),
            ),
            (ArgType::Channel, "<@U1>", Err("not a channel")),
        ];
        for (ty, input, want) in table {
            match (parse_value(&ty, input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{input:?}: {got}"),
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn parse_reports_with_the_usage() {
        let cmd = deploy();
        type Want = Result<Vec<(&'static str, ArgValue)>, &'static str>;
        let table: [(&str, Want); 6] = [
            (
                "checkout staging",
                Ok(vec![("env", text("staging")), ("service", text("checkout"))]),
            ),
            (
                "checkout",
                Err("`/ops deploy`: missing &lt;env&gt;. Usage: `/ops deploy &lt;service&gt; &lt;env&gt;`"),
            ),
            (
                "checkout prod",
                Err("`/ops deploy`: &lt;env&gt;: \"prod\" is not one of staging, production. Usage: `/ops deploy &lt;service&gt; &lt;env&gt;`"),
            ),
            // What they typed is quoted back as text: it cannot ping the channel.
            (
                "checkout staging <!channel>",
                Err("`/ops deploy`: unexpected \"&lt;!channel&gt;\". Usage: `/ops deploy &lt;service&gt; &lt;env&gt;`"),
            ),
            (
                "checkout staging now",
                Err("`/ops deploy`: unexpected \"now\". Usage: `/ops deploy &lt;service&gt; &lt;env&gt;`"),
            ),
            ("\"check", Err("quote")),
        ];
        for (input, want) in table {
            match (cmd.parse("/ops", input), want) {
                (Ok(got), Ok(want)) => {
                    let want: BTreeMap<String, ArgValue> =
                        want.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                    assert_eq!(got, want, "{input:?}");
                }
                (Err(got), Err(want)) => assert!(got.contains(want), "{input:?}: {got}"),
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn defaults_and_the_rest_of_the_text() {
        let cmd = CommandSpec {
            name: "note".into(),
            usage: "note <count> [for] <text…>".into(),
            description: String::new(),
            args: vec![
                arg("count", ArgType::Int),
                ArgSpec {
                    default: Some("1h".into()),
                    ..arg("for", ArgType::Duration)
                },
                ArgSpec {
                    rest: true,
                    default: Some("-".into()),
                    ..arg("text", ArgType::String)
                },
            ],
        };
        let got = cmd.parse("/ops", "3 2h the db is  slow").unwrap();
        assert_eq!(got["count"], ArgValue::Int(3));
        assert_eq!(got["for"], ArgValue::Duration(7_200_000));
        assert_eq!(got["text"], text("the db is  slow"));
        let got = cmd.parse("/ops", "3").unwrap();
        assert_eq!(got["for"], ArgValue::Duration(3_600_000));
        assert_eq!(got["text"], text("-"));
        let got = cmd.parse("/ops", "3 5m \"quoted all\"").unwrap();
        assert_eq!(got["text"], text("quoted all"));
    }
}
