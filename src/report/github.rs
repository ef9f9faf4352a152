//! GitHub Actions: a markdown step summary and `::error` annotations.
//!
//! Written only when `GITHUB_ACTIONS=true`: the summary is appended to the
//! file `$GITHUB_STEP_SUMMARY` names; annotations are workflow commands on
//! stdout. Their data and properties are escaped as the runner requires, or
//! a message with a newline or `::` would be cut or misread.

use std::fmt::Write as _;

use super::RunReport;
use super::render::{case_clock, clock};

/// Escapes the message part of a workflow command.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (`title=...`) of a workflow command.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One `::error` line per failed suite and per verdict.
pub fn annotations(report: &RunReport) -> Vec<String> {
    let mut lines = Vec::new();
    for v in report.unready() {
        let mut message = v.summary.clone();
        if let Some(hint) = v.hint() {
            let _ = write!(message, "\nhint: {hint}");
        }
        lines.push(format!(
            "::error title={}::{}",
            escape_property(&format!("{}: {}", v.component, v.title())),
            escape_data(&message)
        ));
    }
    let correlations = report.correlate();
    for s in report.failed_suites() {
        let mut message = format!(
            "{} after {:.0}s; log: {}",
            s.outcome,
            s.seconds,
            s.log.display()
        );
        let own_cases = report.cases_of(&s.suite).count();
        for c in correlations
            .iter()
            .filter(|c| c.failures_after.contains(&s.suite))
        {
            let _ = write!(
                message,
                "\nafter {} {} at {} ({})",
                c.component,
                c.what,
                clock(&c.at),
                c.detail
            );
            if own_cases > 0 {
                let after = c.cases_after.iter().filter(|k| k.suite == s.suite).count();
                let _ = write!(
                    message,
                    ": {after} of its {own_cases} failed test cases started after it"
                );
            }
        }
        lines.push(format!(
            "::error title={}::{}",
            escape_property(&format!("suite {} failed", s.suite)),
            escape_data(&message)
        ));
    }
    for h in report.failed_hooks() {
        lines.push(format!(
            "::error title={}::{}",
            escape_property(&format!("post-suite hook {} failed", h.hook)),
            escape_data(&format!(
                "{} after {:.0}s; log: {}",
                h.outcome,
                h.seconds,
                h.log.display()
            ))
        ));
    }
    lines
}

/// The step summary in markdown.
pub fn summary(report: &RunReport) -> String {
    let failed = report.failed_suites().count();
    let icon = if failed == 0
        && report.failed_hooks().count() == 0
        && report.unready().next().is_none()
        && report.phases.iter().all(|p| p.ok)
    {
        "✅"
    } else {
        "❌"
    };
    let mut md = format!(
        "## {icon} harness: lane `{}` (run `{}`)\n\n",
        report.lane, report.run_id
    );
    let suites = report
        .suites
        .iter()
        .map(|s| (s.suite.as_str(), s.passed, s.outcome.as_str(), s.seconds));
    results_table(&mut md, "suite", suites);
    let hooks = report
        .hooks
        .iter()
        .map(|h| (h.hook.as_str(), h.ok, h.outcome.as_str(), h.seconds));
    results_table(&mut md, "post-suite hook", hooks);
    if !report.verdicts.is_empty() {
        md.push_str("### Readiness verdicts\n\n");
        for v in &report.verdicts {
            if v.ready() {
                let _ = writeln!(md, "- **{}**: ✅ {}", v.component, v.summary);
                continue;
            }
            let _ = writeln!(
                md,
                "- **{}**: ❌ {} — {}",
                v.component,
                v.title(),
                v.summary
            );
            if let Some(hint) = v.hint() {
                let _ = writeln!(md, "  _hint_: {hint}");
            }
            if let Some(d) = &v.diagnosis {
                // The evidence, folded: events, terminations, log tails.
                let _ = writeln!(
                    md,
                    "\n  <details><summary>evidence</summary>\n\n  ```text\n{}  ```\n\n  </details>\n",
                    super::render::indented(&d.text.replace("```", "'''"), "  ")
                );
            }
        }
        md.push('\n');
    }
    let correlations = report.correlate();
    if !correlations.is_empty() {
        md.push_str("### Infrastructure timeline\n\n");
        for c in &correlations {
            let (after, total) = c.failures();
            let _ = writeln!(
                md,
                "- **{}** {} {} ({}) — {after} of {total} failure{} after it",
                c.component,
                c.what,
                clock(&c.at),
                c.detail,
                if total == 1 { "" } else { "s" },
            );
            for case in &c.cases_after {
                let _ = writeln!(
                    md,
                    "  - {} `{}`: {}",
                    case_clock(&case.started, case.placed),
                    case.suite,
                    case.case
                );
            }
            for suite in &c.suites_after {
                let _ = writeln!(md, "  - suite `{suite}` (no test cases reported)");
            }
        }
        md.push('\n');
    }
    if !report.cases.is_empty() {
        let _ = writeln!(md, "### Failed test cases ({})\n", report.cases.len());
        let mut cases: Vec<_> = report.cases.iter().collect();
        cases.sort_by_key(|c| c.started);
        for case in cases {
            let _ = writeln!(
                md,
                "- {} `{}`: {}{}",
                case_clock(&case.started, case.placed),
                case.suite,
                case.case,
                case.message
                    .as_deref()
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default()
            );
        }
        md.push('\n');
    }
    if !report.phases.is_empty() {
        md.push_str("<details><summary>Phases</summary>\n\n| phase | time | |\n|---|---:|---|\n");
        for p in &report.phases {
            let _ = writeln!(
                md,
                "| {} | {:.1}s | {} |",
                p.phase.name(),
                p.seconds,
                if p.ok { "ok" } else { "failed" }
            );
        }
        md.push_str("\n</details>\n\n");
    }
    if !report.artifacts.is_empty() {
        md.push_str("Artifacts:\n");
        for (what, path) in &report.artifacts {
            let _ = writeln!(md, "- {what}: `{}`", path.display());
        }
    }
    md
}

/// A markdown table of (name, passed, outcome, seconds); nothing when empty.
fn results_table<'a>(
    md: &mut String,
    first_column: &str,
    rows: impl ExactSizeIterator<Item = (&'a str, bool, &'a str, f64)>,
) {
    if rows.len() == 0 {
        return;
    }
    let _ = writeln!(md, "| {first_column} | result | time |\n|---|---|---:|");
    for (name, ok, outcome, seconds) in rows {
        let mark = if ok { "✅" } else { "❌" };
        let _ = writeln!(md, "| `{name}` | {mark} {outcome} | {seconds:.0}s |");
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;
    use crate::report::{Event, Stamped, tests::at};

    #[test]
    fn escaping_follows_the_workflow_command_rules() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }

    #[test]
    fn annotations_for_verdicts_and_failed_suites() {
        let mut r = sample();
        r.record(&Stamped {
            at: at("2026-11-22T14:21:30Z"),
            event: Event::Verdict {
                component: "datastorage".into(),
                standing: crate::readiness::Standing::Doomed,
                summary: "component `datastorage` will not become Ready: Deployment/harness-demo/datastorage is Failed (OOMKilled)".into(),
                diagnosis: Some(Box::new(crate::report::tests::oom_reported())),
            },
        });
        // A Ready component of the same wave is listed, not annotated.
        r.record(&Stamped {
            at: at("2026-11-22T14:21:30Z"),
            event: Event::Verdict {
                component: "redis".into(),
                standing: crate::readiness::Standing::Ready,
                summary: "Ready after 3.2s".into(),
                diagnosis: None,
            },
        });
        let lines = annotations(&r);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(
            lines[0],
            "::error title=datastorage%3A OOMKilled::component `datastorage` will not become Ready: Deployment/harness-demo/datastorage is Failed (OOMKilled)%0Ahint: raise resources.limits.memory"
        );
        let md = summary(&r);
        assert!(md.contains("- **redis**: ✅ Ready after 3.2s"), "{md}");
        assert!(md.contains("<details><summary>evidence</summary>"), "{md}");
        assert!(
            md.contains("log of container datastorage (previous): none (not kept by the kubelet)"),
            "{md}"
        );
        assert!(
            lines[2]
                .starts_with("::error title=suite audit failed::failed (exit code 1) after 90s"),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].contains("%0Aafter datastorage OOMKilled at 14:22:40 (limit 512Mi)"),
            "{}",
            lines[2]
        );
        assert!(
            !lines[1].contains("OOMKilled"),
            "`early` failed before the OOM kill: {}",
            lines[1]
        );
    }

    #[test]
    fn failed_hooks_are_annotated_and_summarised() {
        let mut r = crate::report::RunReport::new("audit", "r-1");
        for (hook, ok, outcome) in [
            ("coverage", false, "timed out after 5m"),
            ("export", true, "passed"),
        ] {
            r.record(&Stamped {
                at: at("2026-11-22T14:30:00Z"),
                event: Event::HookFinished {
                    hook: hook.into(),
                    ok,
                    outcome: outcome.into(),
                    seconds: 300.0,
                    log: format!("hooks/{hook}.log").into(),
                },
            });
        }
        assert_eq!(
            annotations(&r),
            [
                "::error title=post-suite hook coverage failed::timed out after 5m after 300s; log: hooks/coverage.log"
            ]
        );
        let md = summary(&r);
        assert!(md.starts_with("## ❌ harness"), "{md}");
        assert!(
            md.contains(
                "| `coverage` | ❌ timed out after 5m | 300s |\n| `export` | ✅ passed | 300s |"
            ),
            "{md}"
        );
    }

    #[test]
    fn summary_snapshot() {
        insta::assert_snapshot!(summary(&sample()));
    }
}

/// Under GitHub Actions: appends the summary to `$GITHUB_STEP_SUMMARY` and
/// returns the annotation lines to print on stdout. Elsewhere, nothing.
pub fn publish(
    report: &RunReport,
    env: impl Fn(&str) -> Option<String>,
) -> std::io::Result<Vec<String>> {
    if env("GITHUB_ACTIONS").as_deref() != Some("true") {
        return Ok(Vec::new());
    }
    if let Some(path) = env("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        file.write_all(summary(report).as_bytes())?;
    }
    Ok(annotations(report))
}

#[cfg(test)]
mod publish_tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn publishes_only_under_github_actions() {
        let dir = tempfile::tempdir().unwrap();
        let summary_file = dir.path().join("summary.md");
        let path = summary_file.to_str().unwrap().to_owned();
        let none = publish(&sample(), |_| None).unwrap();
        assert!(none.is_empty() && !summary_file.exists());
        let env = move |k: &str| match k {
            "GITHUB_ACTIONS" => Some("true".to_string()),
            "GITHUB_STEP_SUMMARY" => Some(path.clone()),
            _ => None,
        };
        let lines = publish(&sample(), &env).unwrap();
        assert_eq!(lines.len(), 3, "three failed suites");
        publish(&sample(), &env).unwrap();
        let written = std::fs::read_to_string(&summary_file).unwrap();
        assert_eq!(
            written.matches("## ❌ harness").count(),
            2,
            "appended, never overwritten"
        );
    }
}
