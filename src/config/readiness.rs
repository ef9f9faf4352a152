//! The lane file's `readiness:` maps: what Ready means for some kinds or
//! objects (the project's own CRs, or anything the built-in rules get
//! wrong), at the file's level, a lane's or a component's.
//!
//! Each key is parsed with the same grammar the judge matches with
//! ([`crate::readiness::overrides::Selector`]) and each value must be
//! `exists` or `{condition: <Type>}`; every problem names its file, line
//! and column, and a misspelt word or built-in kind gets a "did you mean".
//! The levels are merged where they are used ([`super::Project::readiness_for`]).

use std::path::Path;

use serde_saphyr::Spanned;

use super::diag::{Diagnostic, SourceLoc, did_you_mean};
use super::raw;
use crate::readiness::kinds;
use crate::readiness::overrides::{Override, Overrides, ReadyWhen, Selector};

const SHAPES: &str =
    "write `exists`, or `{condition: <Type>}` for a status condition that is True when it is Ready";

/// The entries of one `readiness:` map, or the problems in it.
pub(super) fn overrides(file: &Path, raw: &raw::Readiness) -> (Overrides, Vec<Diagnostic>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in raw {
        let selector = match selector(file, key) {
            Ok(s) => s,
            Err(d) => {
                problems.push(d);
                continue;
            }
        };
        let at = SourceLoc::of(file, &value.referenced);
        let ready_when = match &value.value {
            raw::ReadyWhen::Word(word) if word == "exists" => ReadyWhen::Exists,
            raw::ReadyWhen::Word(word) => {
                let help = match did_you_mean(word, ["exists", "condition"]) {
                    Some("condition") => format!("did you mean `{{condition: {word}}}`?"),
                    Some(s) => format!("did you mean `{s}`?"),
                    None => SHAPES.to_owned(),
                };
                problems.push(
                    Diagnostic::new(
                        at,
                        format!("`{word}` does not say when `{}` is Ready", key.value),
                    )
                    .help(help),
                );
                continue;
            }
            raw::ReadyWhen::Map(map) => match &map.condition {
                Some(c) if is_condition_type(&c.value) => ReadyWhen::Condition(c.value.clone()),
                Some(c) => {
                    problems.push(
                        Diagnostic::new(
                            SourceLoc::of(file, &c.referenced),
                            format!("`{}` is not a condition type", c.value),
                        )
                        .help("a condition type is one word, as the object's status.conditions[].type writes it (e.g. Synced)"),
                    );
                    continue;
                }
                None => {
                    problems.push(
                        Diagnostic::new(at, format!("no rule for `{}`", key.value)).help(SHAPES),
                    );
                    continue;
                }
            },
        };
        entries.push(Override {
            selector,
            ready_when,
            from: at_of(file, key),
        });
    }
    (Overrides(entries), problems)
}

fn at_of(file: &Path, key: &Spanned<String>) -> String {
    SourceLoc::of(file, &key.referenced).to_string()
}

fn is_condition_type(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// A key as a selector; a built-in kind written in another case is a typo.
fn selector(file: &Path, key: &Spanned<String>) -> Result<Selector, Diagnostic> {
    let at = SourceLoc::of(file, &key.referenced);
    let builtin = |kind: &str| kinds::names().find(|k| k.eq_ignore_ascii_case(kind));
    let selector = Selector::parse(&key.value).map_err(|e| {
        let kind = key.value.split(['/', '.']).next().unwrap_or_default();
        let help = match builtin(kind) {
            Some(k) => format!("did you mean `{k}`?"),
            None => "write Kind, Kind.group, Kind[.group]/name or Kind[.group]/namespace/name, the kind as manifests write it (`ServiceMonitor`, `Widget.example.com`)".to_owned(),
        };
        Diagnostic::new(at.clone(), format!("readiness key {e}")).help(help)
    })?;
    if let Some(k) = builtin(&selector.kind)
        && k != selector.kind
    {
        return Err(Diagnostic::new(
            at,
            format!(
                "readiness key `{}`: no kind is called `{}`",
                key.value, selector.kind
            ),
        )
        .help(format!("did you mean `{k}`?")));
    }
    Ok(selector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> (Overrides, Vec<Diagnostic>) {
        #[derive(serde::Deserialize)]
        struct Doc {
            readiness: raw::Readiness,
        }
        let doc: Doc = serde_saphyr::from_str(yaml).unwrap();
        overrides(Path::new("h.yaml"), &doc.readiness)
    }

    #[test]
    fn good_entries_become_overrides_with_where_they_were_said() {
        let (o, problems) = check(
            "readiness:\n  ServiceMonitor: exists\n  Widget.example.com: {condition: Synced}\n  Widget/ns/w1: exists\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(o.0.len(), 3);
        assert_eq!(o.0[1].ready_when, ReadyWhen::Condition("Synced".into()));
        assert_eq!(o.0[1].from, "h.yaml:3:3");
    }

    #[test]
    fn problems_are_located_with_a_suggestion() {
        let (_, problems) = check(
            "readiness:\n  ServiceMonitor: exist\n  horizontalpodautoscaler: exists\n  HorizontalPodAutoScaler: exists\n  Widget: {}\n  Gadget: {condition: \"\"}\n  W/a/b/c: exists\n",
        );
        let got: Vec<(String, Option<String>)> = problems
            .iter()
            .map(|d| (format!("{}: {}", d.at, d.message), d.help.clone()))
            .collect();
        assert_eq!(got.len(), 6, "{got:#?}");
        assert_eq!(
            got[0].0,
            "h.yaml:2:19: `exist` does not say when `ServiceMonitor` is Ready"
        );
        assert_eq!(got[0].1.as_deref(), Some("did you mean `exists`?"));
        assert!(
            got[1]
                .0
                .starts_with("h.yaml:3:3: readiness key `horizontalpodautoscaler` is not a kind"),
            "{got:?}"
        );
        assert_eq!(
            got[1].1.as_deref(),
            Some("did you mean `HorizontalPodAutoscaler`?")
        );
        assert_eq!(
            got[2].0,
            "h.yaml:4:3: readiness key `HorizontalPodAutoScaler`: no kind is called `HorizontalPodAutoScaler`"
        );
        assert_eq!(got[3].0, "h.yaml:5:11: no rule for `Widget`");
        assert!(
            got[4]
                .0
                .starts_with("h.yaml:6:23: `` is not a condition type"),
            "{got:?}"
        );
        assert!(got[5].0.contains("too many `/`"), "{got:?}");
    }
}
