//! The final report a person reads at the end of a run.

use std::fmt::Write as _;

use super::{Event, Placed, RunReport};

/// Every line of `text` with `prefix` in front.
pub fn indented(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("{prefix}{l}\n")
            }
        })
        .collect()
}

/// `14:22:40` in UTC.
pub fn clock(at: &jiff::Timestamp) -> String {
    at.strftime("%H:%M:%S").to_string()
}

fn secs(s: f64) -> String {
    if s >= 60.0 {
        format!(
            "{}m{:02}s",
            (s / 60.0).floor() as u64,
            (s % 60.0).round() as u64
        )
    } else {
        format!("{s:.1}s")
    }
}

/// A failed test case's start: `14:22:41`, or `~14:22:41` when estimated.
pub fn case_clock(at: &jiff::Timestamp, placed: Placed) -> String {
    match placed {
        Placed::Estimated => format!("~{}", clock(at)),
        Placed::Timestamp | Placed::Timeline => clock(at),
    }
}

/// The human summary: phases, images, the deploy timeline, verdicts, the
/// infrastructure timeline next to the failures after it, suites with their
/// failed test cases, hooks, artifacts, and how the run ended. Each section
/// is its own function, so the bundle can carry them as files.
pub fn text(report: &RunReport) -> String {
    let mut out = format!("harness run {} (lane {})\n", report.run_id, report.lane);
    out.push_str(&phases(report));
    out.push_str(&images(report));
    out.push_str(&deploy_timeline(report));
    out.push_str(&verdicts(report));
    out.push_str(&infrastructure(report));
    out.push_str(&suites(report));
    out.push_str(&test_verdicts(report));
    out.push_str(&hooks(report));
    out.push_str(&artifacts(report));
    out.push_str(&result(report));
    out
}

/// Per phase, its duration and outcome.
pub fn phases(report: &RunReport) -> String {
    let mut out = String::new();
    if !report.phases.is_empty() {
        out.push_str("\nphases\n");
        for p in &report.phases {
            let state = if p.ok { "ok" } else { "FAILED" };
            let _ = writeln!(
                out,
                "  {:<10} {:>8}  {state}",
                p.phase.name(),
                secs(p.seconds)
            );
            if let Some(e) = &p.error {
                let _ = writeln!(out, "  {:<10} {e}", "");
            }
            if let Some(fix) = &p.fix {
                let _ = writeln!(out, "  {:<10} fix: {fix}", "");
            }
        }
    }
    out
}

/// Images built, cached or pulled.
pub fn images(report: &RunReport) -> String {
    let mut out = String::new();
    if !report.images.is_empty() {
        out.push_str("\nimages\n");
        for (image, outcome, s) in &report.images {
            let _ = writeln!(out, "  {image:<20} {outcome} ({})", secs(*s));
        }
    }
    out
}

/// Per pod Scheduled → Initialized → Ready, and when each component was Ready.
pub fn deploy_timeline(report: &RunReport) -> String {
    let mut out = String::new();
    if !report.pods.is_empty() {
        out.push_str(
            "\ndeploy timeline (seconds after creation: scheduled / initialized / ready)\n",
        );
        let opt = |s: &Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.1}"));
        for p in &report.pods {
            match &p.event {
                Event::ComponentReady {
                    component,
                    seconds,
                    ready_seconds,
                    lag,
                } => {
                    let ready = super::ready_text(*seconds, *ready_seconds, lag.as_ref(), secs);
                    let _ = writeln!(out, "  {component:<20} {ready}");
                }
                Event::PodTimeline {
                    component,
                    pod,
                    scheduled,
                    initialized,
                    ready,
                } => {
                    let _ = writeln!(
                        out,
                        "    {pod} ({component}): {} / {} / {}",
                        opt(scheduled),
                        opt(initialized),
                        opt(ready)
                    );
                }
                _ => {}
            }
        }
    }
    out
}

/// Readiness verdicts, each with its hint.
pub fn verdicts(report: &RunReport) -> String {
    let mut out = String::new();
    if !report.verdicts.is_empty() {
        out.push_str("\nverdicts (every component of the wave that failed)\n");
        for v in &report.verdicts {
            if v.ready() {
                let _ = writeln!(out, "  {}: {}", v.component, v.summary);
                continue;
            }
            let _ = writeln!(out, "  {}", v.summary);
            if let Some(d) = &v.diagnosis {
                out.push_str(&indented(&d.text, "  "));
            }
        }
    }
    out
}

/// What the infrastructure did while the suites ran, each incident followed
/// by the failures that came after it: the failed test cases that started
/// after it (named, in the order they started) and the failed suites that
/// reported no test cases and finished after it.
pub fn infrastructure(report: &RunReport) -> String {
    let mut out = String::new();
    let correlations = report.correlate();
    if correlations.is_empty() {
        return out;
    }
    out.push_str("\ninfrastructure timeline\n");
    for c in &correlations {
        let _ = writeln!(
            out,
            "  {} {} {} ({}; {})",
            clock(&c.at),
            c.component,
            c.what,
            c.pod,
            c.detail
        );
        if c.cases_total > 0 {
            let _ = write!(
                out,
                "    {} of {} failed test case{} started after this incident",
                c.cases_after.len(),
                c.cases_total,
                if c.cases_total == 1 { "" } else { "s" },
            );
            if c.cases_after.is_empty() {
                out.push('\n');
            } else {
                out.push_str(":\n");
            }
            for case in &c.cases_after {
                let _ = writeln!(
                    out,
                    "      {} {}: {}",
                    case_clock(&case.started, case.placed),
                    case.suite,
                    case.case
                );
            }
        }
        if c.suites_total > 0 {
            let _ = write!(
                out,
                "    {} of {} failed suite{} without test cases finished after it",
                c.suites_after.len(),
                c.suites_total,
                if c.suites_total == 1 { "" } else { "s" },
            );
            if c.suites_after.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, ": {}", c.suites_after.join(", "));
            }
        }
    }
    out
}

/// The suites' results, each failed suite followed by its failed test
/// cases; a suite run again is listed once per attempt (attempts in order,
/// by name within one: suites run at once finish in any order), and counted
/// as it ended on its last.
pub fn suites(report: &RunReport) -> String {
    let mut out = String::new();
    let mut ran: Vec<_> = report.suites.iter().collect();
    ran.sort_by(|a, b| (a.attempt, &a.suite).cmp(&(b.attempt, &b.suite)));
    let names: Vec<String> = ran
        .iter()
        .map(|s| match s.attempt {
            1 => s.suite.clone(),
            n => format!("{} (attempt {n})", s.suite),
        })
        .collect();
    let suites = ran.iter().zip(&names).map(|(s, name)| Outcome {
        name,
        ok: s.passed,
        outcome: &s.outcome,
        seconds: s.seconds,
        log: &s.log,
        details: report
            .cases_of(&s.suite)
            .filter(|c| c.attempt == s.attempt)
            .map(|c| {
                let time = c
                    .seconds
                    .map(|t| format!(" ({})", secs(t)))
                    .unwrap_or_default();
                format!("{} {}{time}", case_clock(&c.started, c.placed), c.case)
            })
            .collect(),
    });
    let last = report.final_suites();
    let failed = last.iter().filter(|s| !s.passed).count();
    let retried = report.retries.len();
    let title = format!(
        "suites: {} passed, {failed} failed{}",
        last.len() - failed,
        match retried {
            0 => String::new(),
            1 => " (on their last attempt; failed ones were run again once)".to_owned(),
            n => format!(" (on their last attempt; failed ones were run again up to {n} times)"),
        }
    );
    results(&mut out, &title, suites);
    for r in &report.recoveries {
        match (&r.ok, &r.error) {
            (true, _) => {
                let _ = writeln!(
                    out,
                    "  before the retry: every component Ready and settled again after {}",
                    secs(r.seconds)
                );
            }
            (false, error) => {
                let _ = writeln!(
                    out,
                    "  not retried: the components were not Ready again after {}: {}",
                    secs(r.seconds),
                    error.as_deref().unwrap_or("no reason given")
                );
            }
        }
    }
    out
}

/// Every failed test case's verdict, real failures first, then those the
/// infrastructure caused (under the incident each is blamed on, with its
/// evidence), then the flaky ones.
pub fn test_verdicts(report: &RunReport) -> String {
    use crate::suites::verdict::Verdict;
    let mut out = String::new();
    let verdicts = &report.test_verdicts;
    if verdicts.is_empty() {
        return out;
    }
    let count = |v: Verdict| verdicts.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        out,
        "\ntest verdicts: {} real, {} infrastructure, {} flaky",
        count(Verdict::Real),
        count(Verdict::Infrastructure),
        count(Verdict::Flaky)
    );
    let line = |c: &crate::suites::verdict::CaseVerdict| {
        format!(
            "{}: {} — {}{}",
            c.suite,
            c.case,
            c.attempts_text(),
            c.message().map(|m| format!(": {m}")).unwrap_or_default()
        )
    };
    for verdict in [Verdict::Real, Verdict::Infrastructure, Verdict::Flaky] {
        let cases: Vec<_> = verdicts.iter().filter(|c| c.verdict == verdict).collect();
        if cases.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {verdict} ({})", verdict.meaning());
        if verdict != Verdict::Infrastructure {
            for c in cases {
                let _ = writeln!(out, "    {}", line(c));
            }
            continue;
        }
        // Grouped by the incident each is blamed on, its evidence once.
        let mut seen: Vec<&crate::suites::verdict::Incident> = Vec::new();
        for c in &cases {
            if let Some(i) = &c.incident
                && !seen.contains(&i)
            {
                seen.push(i);
            }
        }
        for incident in seen {
            out.push_str(&indented(&incident_text(incident), "    "));
            for c in cases
                .iter()
                .filter(|c| c.incident.as_ref() == Some(incident))
            {
                let _ = writeln!(out, "      {}", line(c));
            }
        }
    }
    out
}

/// An incident as verdicts cite it: what, when, where, its evidence, when
/// it was over, and the last lines the container logged.
pub fn incident_text(i: &crate::suites::verdict::Incident) -> String {
    let mut facts = vec![i.pod.clone()];
    if let Some(c) = &i.container {
        facts.push(format!("container {c}"));
    }
    if let Some(code) = i.exit_code {
        facts.push(format!("exit code {code}"));
    }
    if let Some(limit) = &i.limit {
        facts.push(format!("memory limit {limit}"));
    }
    if let Some(n) = i.restarts {
        facts.push(format!("restarts {n}"));
    }
    if i.container.is_none() && !i.detail.is_empty() {
        facts.push(i.detail.clone());
    }
    let mut text = format!(
        "{} {} at {} ({})",
        i.component.as_deref().unwrap_or("cluster"),
        i.what,
        clock(&i.since),
        facts.join(", ")
    );
    match &i.until {
        Some(until) => {
            let _ = write!(text, ", over by {}", clock(until));
        }
        None => text.push_str(", not over when the suites ended"),
    }
    text.push('\n');
    if let Some(tail) = &i.log_tail {
        text.push_str("  its last log lines:\n");
        text.push_str(&indented(tail, "  | "));
    }
    text
}

/// The post-suite hooks' results.
pub fn hooks(report: &RunReport) -> String {
    let mut out = String::new();
    let hooks = report.hooks.iter().map(|h| Outcome {
        name: &h.hook,
        ok: h.ok,
        outcome: &h.outcome,
        seconds: h.seconds,
        log: &h.log,
        details: Vec::new(),
    });
    results(&mut out, "post-suite hooks", hooks);
    out
}

/// Where the files are: the JUnit report, the bundle.
pub fn artifacts(report: &RunReport) -> String {
    let mut out = String::new();
    if !report.artifacts.is_empty() {
        out.push_str("\nartifacts\n");
        for (what, path) in &report.artifacts {
            let _ = writeln!(out, "  {what:<12} {}", path.display());
        }
    }
    out
}

/// `result: …` once the run has ended.
pub fn result(report: &RunReport) -> String {
    match &report.finished {
        Some((code, result)) => format!("\nresult: {result} (exit {code})\n"),
        None => String::new(),
    }
}

/// One suite's or hook's result, as the report lists it.
struct Outcome<'a> {
    name: &'a str,
    ok: bool,
    outcome: &'a str,
    seconds: f64,
    log: &'a std::path::Path,
    /// Lines shown under it (a failed suite's failed test cases).
    details: Vec<String>,
}

/// A titled list of results with its passed/failed count; nothing when empty.
fn results<'a>(out: &mut String, title: &str, rows: impl Iterator<Item = Outcome<'a>>) {
    let rows: Vec<Outcome> = rows.collect();
    if rows.is_empty() {
        return;
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    if title.contains(':') {
        let _ = writeln!(out, "\n{title}");
    } else {
        let _ = writeln!(
            out,
            "\n{title}: {} passed, {failed} failed",
            rows.len() - failed
        );
    }
    for r in &rows {
        let mark = if r.ok { "ok  " } else { "FAIL" };
        let _ = writeln!(
            out,
            "  {mark} {:<20} {:>8}  {}  {}",
            r.name,
            secs(r.seconds),
            r.outcome,
            r.log.display()
        );
        for detail in &r.details {
            let _ = writeln!(out, "         {detail}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn human_report_snapshot() {
        let mut r = sample();
        for event in [
            Event::PodTimeline {
                component: "datastorage".into(),
                pod: "harness-demo/datastorage-7d9f-x2".into(),
                scheduled: Some(0.2),
                initialized: Some(1.5),
                ready: Some(6.25),
            },
            Event::ComponentReady {
                component: "datastorage".into(),
                seconds: 11.5,
                ready_seconds: Some(6.5),
                lag: Some(crate::report::Lag {
                    at_least: 0.0,
                    at_most: 1.14,
                }),
            },
        ] {
            r.record(&crate::report::Stamped {
                at: crate::report::tests::at("2026-11-22T14:21:00Z"),
                event,
            });
        }
        r.artifacts.push(("junit".into(), "out/junit.xml".into()));
        insta::assert_snapshot!(text(&r));
    }

    #[test]
    fn a_failed_wave_is_reported_component_by_component_with_evidence() {
        let mut r = crate::report::RunReport::new("audit", "r-1a2b3c4d");
        for event in [
            Event::Verdict {
                component: "datastorage".into(),
                standing: crate::readiness::Standing::Doomed,
                summary: "component `datastorage` will not become Ready: Deployment/harness-demo/datastorage is Failed (OOMKilled)".into(),
                diagnosis: Some(Box::new(crate::report::tests::oom_reported())),
            },
            Event::Verdict {
                component: "redis".into(),
                standing: crate::readiness::Standing::Ready,
                summary: "Ready after 3.2s".into(),
                diagnosis: None,
            },
            Event::finished(crate::exit::Exit::Deploy),
        ] {
            r.record(&crate::report::Stamped {
                at: crate::report::tests::at("2026-11-22T14:21:00Z"),
                event,
            });
        }
        insta::assert_snapshot!(text(&r));
    }

    #[test]
    fn the_report_ends_with_how_the_run_ended() {
        let mut r = crate::report::RunReport::new("audit", "r-1");
        assert!(!text(&r).contains("result:"));
        r.record(&crate::report::Stamped {
            at: crate::report::tests::at("2026-11-22T14:30:00Z"),
            event: Event::finished(crate::exit::Exit::Interrupted),
        });
        assert!(
            text(&r).ends_with("\nresult: interrupted by SIGINT/SIGTERM (exit 130)\n"),
            "{}",
            text(&r)
        );
    }

    #[test]
    fn hooks_are_listed_after_the_suites() {
        let mut r = crate::report::RunReport::new("audit", "r-1");
        for (hook, ok, outcome) in [
            ("coverage", true, "passed"),
            ("export", false, "exited with status 3"),
        ] {
            r.record(&crate::report::Stamped {
                at: crate::report::tests::at("2026-11-22T14:30:00Z"),
                event: Event::HookFinished {
                    hook: hook.into(),
                    ok,
                    outcome: outcome.into(),
                    seconds: 4.0,
                    log: format!("hooks/{hook}.log").into(),
                },
            });
        }
        let text = text(&r);
        assert!(
            text.ends_with(
                "\npost-suite hooks: 1 passed, 1 failed\n  ok   coverage                 4.0s  passed  hooks/coverage.log\n  FAIL export                   4.0s  exited with status 3  hooks/export.log\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs(12.34), "12.3s");
        assert_eq!(secs(900.0), "15m00s");
        assert_eq!(secs(95.0), "1m35s");
    }
}
