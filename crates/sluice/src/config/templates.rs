//! `[templates]`: named minijinja templates for alert cards, inline or `{ file = "path" }`, compiled into the
//! [`Renderer`]. Checked: files that cannot be read and templates that do not compile, each on its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_core::render::Renderer;
use toml::Spanned;

use super::Report;

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum TemplateSource {
    Inline(String),
    File { file: PathBuf },
}

/// Reads every template and compiles them into a renderer, or reports why it cannot be built.
pub(super) fn check(
    raw: &BTreeMap<String, Spanned<TemplateSource>>,
    base: &Path,
    p: &mut Report<'_>,
) -> Option<Renderer> {
    let mut template_sources = BTreeMap::new();
    for (name, spanned) in raw {
        match spanned.get_ref() {
            TemplateSource::Inline(src) => {
                template_sources.insert(name.clone(), src.clone());
            }
            TemplateSource::File { file } => match std::fs::read_to_string(base.join(file)) {
                Ok(src) => {
                    template_sources.insert(name.clone(), src);
                }
                Err(e) => p(
                    Some(spanned.span()),
                    format!("template {name:?}: cannot read {}: {e}", file.display()),
                    "check the path (relative to the config file)",
                ),
            },
        }
    }
    match Renderer::new(&template_sources) {
        Ok(r) => Some(r),
        Err(errs) => {
            for e in errs {
                let span = raw
                    .iter()
                    .find(|(n, _)| e.message.contains(n.as_str()))
                    .map(|(_, s)| s.span());
                p(span.or(e.span), e.message, &e.fix);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{parse, problems};

    #[test]
    fn a_missing_template_file_is_reported_on_its_line() {
        let p = problems(
            "[templates]\nfine = \"{{ title }}\"\ncard = { file = \"no/such/file.j2\" }\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(3), "{p:?}");
        assert!(
            p[0].message.contains("template \"card\": cannot read"),
            "{p:?}"
        );
        assert!(p[0].fix.contains("relative to the config file"), "{p:?}");
    }

    #[test]
    fn a_template_that_does_not_compile_is_reported_on_its_line_and_a_good_one_is_named() {
        let p = problems("[templates]\nfine = \"{{ title }}\"\nbroken = \"{{ title \"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(3), "{p:?}");
        let cfg = parse("[templates]\nfine = \"{{ title }}\"\n")
            .map_err(|p| format!("{p:?}"))
            .unwrap();
        assert!(cfg.renderer.template_names().contains("fine"));
    }
}
