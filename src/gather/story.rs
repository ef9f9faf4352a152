//! The story of the run, in the bundle's `harness/` folder and at the top
//! of its README.
//!
//! A bundle is often all that is left of a CI run, so it carries what the
//! run itself knew when the gather began: its event stream as recorded (the
//! JSON lines of `--output json`, whatever the output mode was), the report
//! folded from it (the text the run printed, and as JSON), the
//! infrastructure timeline with the failed test cases after each incident,
//! the deploy timeline, the suites' results and their merged JUnit — and,
//! taken at gather time, the diagnosis of every component of the lane, as
//! `harness diagnose` prints it. Everything is written through the bundle's
//! redactor, like every other file. The README opens with a summary: the
//! result and exit code, verdicts, incidents, failed suites and test cases.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::BundleWriter;
use super::diagnosis::ComponentDiagnosis;
use super::layout::HARNESS_DIR;
use crate::deploy::live::LiveError;
use crate::report::bus::{Checkpoint, Recorded};
use crate::report::render::{self, case_clock, clock};
use crate::report::replay::{self, AsOf, Outcome};
use crate::report::{RunReport, VerdictRecord};

/// What the run knows about itself when the gather begins.
#[derive(Clone, Debug, Default)]
pub struct Story {
    /// Its report so far.
    pub report: RunReport,
    /// Its recorded event stream.
    pub events: Option<Recorded>,
    /// How it stands.
    pub outcome: Option<Outcome>,
    /// More files for `harness/`, by name: what the run said went wrong.
    pub files: Vec<(String, String)>,
}

impl Story {
    /// A run's story at the gather: its report and recording as they stand
    /// (`checkpoint`), and the exit code as known then.
    pub fn at_gather(checkpoint: Checkpoint, outcome: crate::exit::Exit) -> Self {
        Self {
            report: checkpoint.report,
            events: checkpoint.recorded,
            outcome: Some(Outcome::at_gather(outcome)),
            files: Vec::new(),
        }
    }

    /// The story of a finished run from its recording (`harness up`, for a
    /// `harness gather` of the environment it left); `None` when there is
    /// no recording.
    pub fn recorded(path: &Path) -> Option<Self> {
        let file = std::fs::File::open(path).ok()?;
        let bytes = file.metadata().ok()?.len();
        let (report, _) = replay::fold(std::io::BufReader::new(file.take(bytes))).ok()?;
        let outcome = report.finished.as_ref().map(|(code, result)| Outcome {
            exit_code: *code,
            result: result.clone(),
            as_of: AsOf::End,
        });
        Some(Self {
            report,
            events: Some(Recorded {
                path: path.to_owned(),
                bytes,
                error: None,
            }),
            outcome,
            files: Vec::new(),
        })
    }

    /// The report with its result, as `harness report` prints it.
    fn report_with_result(&self) -> RunReport {
        let mut report = self.report.clone();
        if report.finished.is_none()
            && let Some(o) = &self.outcome
        {
            report.finished = Some((o.exit_code, o.result.clone()));
        }
        report
    }
}

/// The diagnosis taken at gather time: per component, or why none could be
/// taken at all.
pub type Diagnosed = Result<Vec<Result<ComponentDiagnosis, (String, LiveError)>>, String>;

/// How long the gather's diagnosis of the lane may take (it runs beside
/// the collectors, well inside the gather's budget).
pub const DIAGNOSIS_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

/// Collects the cluster into `writer` and, at the same time, diagnoses every
/// component of the lane as the suites left it; then writes the diagnosis
/// and the story (see `write`).
pub async fn collect<S: super::collect::Source>(
    client: &kube::Client,
    project: &crate::config::Project,
    lane: &crate::config::Lane,
    source: &S,
    request: &super::collect::Request,
    writer: &mut BundleWriter,
    story: Option<&Story>,
) {
    let diagnosing = async {
        tokio::time::timeout(
            DIAGNOSIS_BUDGET,
            super::diagnosis::lane(client, project, lane),
        )
        .await
        .map_err(|_| format!("not finished within {}s", DIAGNOSIS_BUDGET.as_secs()))
    };
    let (diagnosed, ()) = tokio::join!(
        diagnosing,
        super::collect::collect(source, request, &mut *writer)
    );
    write(writer, &lane.name, story, &diagnosed);
}

fn harness(name: &str) -> PathBuf {
    Path::new(HARNESS_DIR).join(name)
}

/// Writes the story and the diagnosis under `harness/` and sets the
/// README's summary. Call after the collection, once the redactor knows
/// the Secrets. What cannot be written is recorded as a failed collector.
pub fn write(writer: &mut BundleWriter, lane: &str, story: Option<&Story>, diagnosed: &Diagnosed) {
    writer.set_summary(summary(story, diagnosed));
    let writer: &BundleWriter = writer;
    let text = |name: &str, content: &str| {
        if let Err(e) = writer.write_text(&harness(name), content) {
            writer.record_failure(format!("harness/{name}"), e);
        }
    };
    match diagnosed {
        Ok(components) => {
            text(
                "diagnosis.txt",
                &format!(
                    "# harness diagnose --lane {lane}, at {}\n\n{}",
                    jiff::Timestamp::now(),
                    super::diagnosis::text(components)
                ),
            );
            let json = super::diagnosis::json(lane, components);
            text(
                "diagnosis.json",
                &(serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"),
            );
            for (name, e) in components.iter().filter_map(|c| c.as_ref().err()) {
                writer.record_failure(format!("diagnosis of {name}"), e);
            }
        }
        Err(e) => writer.record_failure("diagnosis of the lane", e),
    }
    let Some(story) = story else {
        return;
    };
    for (name, content) in &story.files {
        text(name, content);
    }
    if let Some(events) = &story.events {
        let copied = std::fs::File::open(&events.path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                writer
                    .write_stream(&harness("events.jsonl"), f.take(events.bytes))
                    .map_err(|e| e.to_string())
            });
        match (copied, &events.error) {
            (Err(e), _) => writer.record_failure("harness/events.jsonl", e),
            (Ok(_), Some(e)) => writer.record_failure(
                "harness/events.jsonl",
                format!("the recording stopped early ({e}); what came before is kept"),
            ),
            (Ok(_), None) => {}
        }
    }
    let report = story.report_with_result();
    text(
        "summary.json",
        &(serde_json::to_string_pretty(&replay::summary_json(
            &story.report,
            story.outcome.as_ref(),
        ))
        .unwrap_or_default()
            + "\n"),
    );
    let mut whole = render::text(&report);
    if story
        .outcome
        .as_ref()
        .is_some_and(|o| o.as_of == AsOf::Gather)
    {
        whole.push_str(
            "(as of the gather: the gather itself, post-suite hooks and teardown came after it and are not in the bundle)\n",
        );
    }
    text("report.txt", &whole);
    let or = |section: String, none: &str| {
        if section.is_empty() {
            format!("{none}\n")
        } else {
            section.trim_start().to_owned()
        }
    };
    text(
        "infrastructure-timeline.txt",
        &or(
            render::infrastructure(&report),
            "infrastructure timeline: no incident while the suites ran (no container exit, eviction, readiness lost or pod deleted)",
        ),
    );
    text(
        "deploy-timeline.txt",
        &or(
            render::deploy_timeline(&report),
            "deploy timeline: no pod was followed to Ready in this run",
        ),
    );
    text(
        "suites.txt",
        &or(render::suites(&report), "suites: none ran"),
    );
    text(
        "verdicts.txt",
        &or(
            render::test_verdicts(&report),
            "test verdicts: no test case failed",
        ),
    );
    if let Some((_, junit)) = report.artifacts.iter().find(|(what, _)| what == "junit") {
        let copied = std::fs::File::open(junit)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                writer
                    .write_stream(&harness("junit.xml"), f)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = copied {
            writer.record_failure(format!("harness/junit.xml (from {})", junit.display()), e);
        }
    }
}

/// How many failed test cases the README names before it points at
/// `harness/suites.txt`.
const CASES_IN_README: usize = 30;

/// The README's opening: result and exit code, verdicts, incidents, failed
/// suites and test cases, and the components at gather time. Pure.
pub fn summary(story: Option<&Story>, diagnosed: &Diagnosed) -> String {
    let mut md = String::from("## Summary\n\n");
    let report = story.map(Story::report_with_result).unwrap_or_default();
    match story.and_then(|s| s.outcome.as_ref()) {
        Some(o) => {
            let when = match o.as_of {
                AsOf::Gather => ", as of the gather",
                AsOf::End => "",
            };
            let _ = writeln!(
                md,
                "- **result**: {} (exit code {}{when})",
                o.result, o.exit_code
            );
        }
        None => md.push_str(
            "- **result**: not recorded (gathered outside a run, with no recording of the run that brought the lane up)\n",
        ),
    }
    if story.is_some() {
        verdicts(&mut md, &report.verdicts);
    }
    if story.is_some() && report.suites.is_empty() {
        md.push_str("- **suites**: none ran\n");
    } else if story.is_some() {
        incidents(&mut md, &report);
        let failed: Vec<&str> = report
            .final_suites()
            .into_iter()
            .filter(|s| !s.passed)
            .map(|s| s.suite.as_str())
            .collect();
        let _ = writeln!(
            md,
            "- **failed suites**: {}",
            if failed.is_empty() {
                "none".to_owned()
            } else {
                failed.join(", ")
            }
        );
        cases(&mut md, &report);
        test_verdicts(&mut md, &report);
    }
    components(&mut md, diagnosed);
    md.push_str(
        "\n`harness/report.txt` is the run's report as it stood at the gather; \
         `harness report <this bundle>` prints it again.\n",
    );
    md
}

fn verdicts(md: &mut String, verdicts: &[VerdictRecord]) {
    if verdicts.is_empty() {
        md.push_str("- **verdicts**: none\n");
        return;
    }
    md.push_str("- **verdicts**:\n");
    for v in verdicts {
        if v.ready() {
            let _ = writeln!(md, "  - {}: {}", v.component, v.summary);
        } else {
            let _ = writeln!(md, "  - {}: {} — {}", v.component, v.title(), v.summary);
        }
    }
}

fn incidents(md: &mut String, report: &RunReport) {
    let correlations = report.correlate();
    if correlations.is_empty() {
        md.push_str("- **incidents** while the suites ran: none\n");
        return;
    }
    md.push_str("- **incidents** while the suites ran:\n");
    for c in &correlations {
        let (after, total) = c.failures();
        let _ = write!(
            md,
            "  - {} {} {} ({})",
            c.component,
            c.what,
            clock(&c.at),
            c.detail
        );
        if total > 0 {
            let _ = write!(
                md,
                " — {after} of {total} failure{} after it",
                if total == 1 { "" } else { "s" }
            );
        }
        md.push('\n');
    }
}

fn cases(md: &mut String, report: &RunReport) {
    if report.cases.is_empty() {
        md.push_str("- **failed test cases**: none reported by the suites' JUnit\n");
        return;
    }
    let _ = writeln!(md, "- **failed test cases** ({}):", report.cases.len());
    let mut cases: Vec<_> = report.cases.iter().collect();
    cases.sort_by_key(|c| c.started);
    for c in cases.iter().take(CASES_IN_README) {
        let _ = writeln!(
            md,
            "  - {} `{}`: {}",
            case_clock(&c.started, c.placed),
            c.suite,
            c.case
        );
    }
    if cases.len() > CASES_IN_README {
        let _ = writeln!(
            md,
            "  - … and {} more (`harness/suites.txt`)",
            cases.len() - CASES_IN_README
        );
    }
}

/// Each failed test case's verdict, real first, with what it is blamed on.
fn test_verdicts(md: &mut String, report: &RunReport) {
    use crate::suites::verdict::Verdict;
    let verdicts = &report.test_verdicts;
    if verdicts.is_empty() {
        return;
    }
    let count = |v: Verdict| verdicts.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        md,
        "- **test verdicts**: {} real, {} infrastructure, {} flaky (`harness/verdicts.txt`):",
        count(Verdict::Real),
        count(Verdict::Infrastructure),
        count(Verdict::Flaky)
    );
    let mut sorted: Vec<_> = verdicts.iter().collect();
    sorted.sort_by_key(|c| c.verdict);
    for c in sorted.iter().take(CASES_IN_README) {
        let blamed = c
            .incident
            .as_ref()
            .map(|i| {
                format!(
                    " — after {} {} at {}",
                    i.component.as_deref().unwrap_or("cluster"),
                    i.what,
                    clock(&i.since)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "  - {} `{}`: {} ({}){blamed}",
            c.verdict,
            c.suite,
            c.case,
            c.attempts_text()
        );
    }
    if sorted.len() > CASES_IN_README {
        let _ = writeln!(
            md,
            "  - … and {} more (`harness/verdicts.txt`)",
            sorted.len() - CASES_IN_README
        );
    }
}

fn components(md: &mut String, diagnosed: &Diagnosed) {
    match diagnosed {
        Err(e) => {
            let _ = writeln!(md, "- **components at gather time**: not diagnosed ({e})");
        }
        Ok(components) => {
            let parts: Vec<String> = components
                .iter()
                .map(|c| match c {
                    Ok(d) => match &d.verdict {
                        Some(v) => format!("{} {} ({v})", d.name, d.state),
                        None => format!("{} {}", d.name, d.state),
                    },
                    Err((name, _)) => format!("{name} (could not be read)"),
                })
                .collect();
            let _ = writeln!(
                md,
                "- **components at gather time**: {} (`harness/diagnosis.txt`)",
                if parts.is_empty() {
                    "none".to_owned()
                } else {
                    parts.join(", ")
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_a_recorded_run_says_so_and_what_it_could_not_diagnose() {
        let md = summary(None, &Err("not finished within 60s".into()));
        assert_eq!(
            md,
            "## Summary\n\n\
             - **result**: not recorded (gathered outside a run, with no recording of the run that brought the lane up)\n\
             - **components at gather time**: not diagnosed (not finished within 60s)\n\
             \n`harness/report.txt` is the run's report as it stood at the gather; `harness report <this bundle>` prints it again.\n"
        );
    }

    #[test]
    fn many_failed_test_cases_are_counted_and_the_rest_pointed_at() {
        use crate::report::{Event, Placed, Stamped};
        let mut report = RunReport::new("audit", "r-1");
        report.record(&Stamped {
            at: "2026-11-22T14:30:00Z".parse().unwrap(),
            event: Event::SuiteFinished {
                suite: "audit".into(),
                passed: false,
                outcome: "failed".into(),
                seconds: 1.0,
                log: "audit.log".into(),
            },
        });
        for i in 0..(CASES_IN_README + 5) {
            report.record(&Stamped {
                at: "2026-11-22T14:30:00Z".parse().unwrap(),
                event: Event::TestCaseFailed {
                    suite: "audit".into(),
                    case: format!("case {i:02}"),
                    classname: None,
                    started: jiff::Timestamp::from_second(1_795_000_000 + i as i64).unwrap(),
                    placed: Placed::Timeline,
                    seconds: None,
                    message: None,
                },
            });
        }
        let story = Story {
            report,
            ..Story::default()
        };
        let md = summary(Some(&story), &Ok(Vec::new()));
        assert!(md.contains("- **failed test cases** (35):\n"), "{md}");
        assert!(
            md.contains("`audit`: case 29\n") && !md.contains("case 30"),
            "{md}"
        );
        assert!(
            md.contains("  - … and 5 more (`harness/suites.txt`)\n"),
            "{md}"
        );
        assert!(md.contains("- **result**: not recorded"), "{md}");
    }
}
