//! `[routing]` and `[[inhibit]]`: where events go, and which firing alerts mute which others. Both are checked by
//! the core ([`Router::new`], [`Inhibitor::new`]), each problem with its span; their non-fatal findings
//! (unreachable rules, unrouted events) become warnings here.

use sluice_core::config_error::ConfigError;
use sluice_core::inhibit::{InhibitRuleConfig, Inhibitor};
use sluice_core::route::{Router, RoutingConfig};
use std::collections::BTreeSet;
use toml::Spanned;

use super::{line_of, Problem, Report};

/// The router, whose routes may name only `templates` (the renderer's), or why it cannot be built.
pub(super) fn check_routing(
    raw: &RoutingConfig,
    templates: &BTreeSet<String>,
    p: &mut Report<'_>,
) -> Option<Router> {
    reported(Router::new(raw, templates), p)
}

/// The inhibitor, or why it cannot be built.
pub(super) fn check_inhibit(
    raw: &[Spanned<InhibitRuleConfig>],
    p: &mut Report<'_>,
) -> Option<Inhibitor> {
    reported(Inhibitor::new(raw), p)
}

/// What the core built, or `None` with each of its problems reported.
fn reported<T>(built: Result<T, Vec<ConfigError>>, p: &mut Report<'_>) -> Option<T> {
    match built {
        Ok(t) => Some(t),
        Err(errs) => {
            for e in errs {
                p(e.span, e.message, &e.fix);
            }
            None
        }
    }
}

/// The router's and the inhibitor's warnings, each on its line of `text`.
pub(super) fn warnings(
    router: Option<&Router>,
    inhibitor: Option<&Inhibitor>,
    text: &str,
) -> Vec<Problem> {
    router
        .map(Router::check)
        .into_iter()
        .chain(inhibitor.map(Inhibitor::check))
        .flatten()
        .map(|e| Problem {
            line: e.span.map(|s| line_of(text, s.start)),
            message: e.message,
            fix: e.fix,
            warning: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{parse, problems};

    /// (config, line, words of the message, words of the fix).
    #[test]
    fn broken_inhibit_rules_are_refused_with_their_line_and_fix() {
        const OK: &str = "[[inhibit]]\nname = \"crit\"\nsource = { severity = \"critical\" }\ntarget = { severity = \"warning\" }\nequal = [\"service\"]\n\n";
        let cases = [
            (
                "[[inhibit]]\nname = \"a\"\nsource = { severity = \"critical\" }\ntarget = { servce = \"db\" }\n",
                4,
                "unknown match field `servce` (did you mean `service`?)",
                "match on one of",
            ),
            (
                "[[inhibit]]\nname = \"a\"\nsource = { \"labels.team\" = { regex = \"[\" } }\ntarget = {}\n",
                3,
                "does not compile",
                "correct the regular expression",
            ),
            (
                "[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\nequal = [\"cluster\"]\n",
                5,
                "unknown field `cluster` in `equal`",
                "labels.<key>",
            ),
            (
                "[[inhibit]]\nname = \"a\"\nsource = {}\ntarget = {}\nequals = []\n",
                5,
                "unknown field `equals`",
                "correct the TOML",
            ),
            (
                "[[inhibit]]\nname = \"a\"\nsource = {}\n",
                1,
                "missing field `target`",
                "correct the TOML",
            ),
        ];
        for (src, line, message, fix) in cases {
            let p = problems(src);
            assert_eq!(p.len(), 1, "{src}\n{p:?}");
            assert_eq!(p[0].line, Some(line), "{src}\n{p:?}");
            assert!(p[0].message.contains(message), "{src}\n{p:?}");
            assert!(p[0].fix.contains(fix), "{src}\n{p:?}");
        }
        let twice = format!("{OK}{}", OK.replace("critical\"", "error\""));
        let p = problems(&twice);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(8), "{p:?}");
        assert!(
            p[0].message
                .contains("duplicate inhibit rule name \"crit\""),
            "{p:?}"
        );
        assert!(problems(OK).is_empty());
        assert!(
            problems(&OK.replace("[\"service\"]", "[]")).is_empty(),
            "empty equal is allowed"
        );
    }

    #[test]
    fn a_route_naming_an_unknown_template_is_refused_and_an_unrouted_config_warns() {
        let p = problems("[routing]\ndefault = { channels = [\"ops\"], template = \"nope\" }\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(2), "{p:?}");
        assert!(p[0].message.contains("nope"), "{p:?}");
        let cfg = parse("").map_err(|p| format!("{p:?}")).unwrap();
        assert!(cfg.warnings.iter().all(|w| w.warning), "{:?}", cfg.warnings);
    }
}
