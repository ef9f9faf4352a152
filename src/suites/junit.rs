//! One JUnit XML report for the run, built with `quick-junit`.
//!
//! A suite that wrote its own JUnit report (`junit*.xml` in its artifacts
//! directory, e.g. Ginkgo's `--junit-report`) is merged in as is: its test
//! suites and test cases are what CI pages should show. A suite without one
//! becomes a single test case whose failure message is its exit status or
//! timeout and whose system-out is the tail of its log. A suite whose own
//! report is all green but whose process failed (it crashed after writing
//! it, or was killed) also gets that test case, so the report never shows a
//! failed run as green.
//!
//! Reading files is kept apart from [`assemble`], which is pure.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::executor::RunSummary;
use super::runner::{Exit, Outcome, SuiteResult};

/// How many lines of a suite's log go into its system-out.
pub const LOG_TAIL_LINES: usize = 200;

/// At most this many bytes are read from the end of a log to find its tail,
/// so that a suite that logged gigabytes does not stall the report.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// Property added to every merged test suite, naming the harness suite it
/// came from.
pub const SUITE_PROPERTY: &str = "harness.suite";

/// Writing the report failed.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    /// The report could not be serialized.
    #[error("failed to serialize the junit report")]
    Serialize(#[from] quick_junit::SerializeError),
    /// The report could not be written.
    #[error("failed to write the junit report to {path}: check that its directory is writable")]
    Write {
        /// The report's path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// What [`assemble`] knows about one suite.
#[derive(Debug, Clone)]
pub struct SuiteReports {
    /// The suite's result.
    pub result: SuiteResult,
    /// Its own JUnit reports: path and parsed report, or why it could not be
    /// read.
    pub own: Vec<(PathBuf, Result<Report, String>)>,
    /// The last lines of its log.
    pub log_tail: String,
}

/// Reads each suite's own JUnit reports and log tail, then assembles the
/// run's report named `run_name`.
pub fn build_report(run_name: &str, summary: &RunSummary) -> Report {
    let suites: Vec<SuiteReports> = summary
        .results
        .iter()
        .map(|result| SuiteReports {
            result: result.clone(),
            own: read_own_reports(&result.artifacts_dir),
            log_tail: log_tail(&result.log_path, LOG_TAIL_LINES).unwrap_or_default(),
        })
        .collect();
    let mut report = assemble(run_name, &suites);
    report.set_time(summary.duration);
    report
}

/// Serializes `report` to `path`, through a temporary file renamed into
/// place so that a reader never sees half a report.
pub fn write_report(report: &Report, path: &Path) -> Result<(), JunitError> {
    let xml = report.to_string()?;
    let write_err = |source| JunitError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("xml.tmp");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    std::fs::write(&tmp, xml).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

/// The run's report, from what is known of each suite. Pure.
pub fn assemble(run_name: &str, suites: &[SuiteReports]) -> Report {
    let mut report = Report::new(run_name);
    for suite in suites {
        let merged: Vec<TestSuite> = suite
            .own
            .iter()
            .filter_map(|(_, parsed)| parsed.as_ref().ok())
            .flat_map(|own| own.test_suites.iter().cloned())
            .map(|mut own| {
                own.add_property(Property::new(SUITE_PROPERTY, suite.result.name.as_str()));
                own
            })
            .collect();
        let any_own_failure = merged
            .iter()
            .flat_map(|s| &s.test_cases)
            .any(|case| matches!(case.status, TestCaseStatus::NonSuccess { .. }));
        let unreadable: Vec<String> = suite
            .own
            .iter()
            .filter_map(|(path, parsed)| {
                parsed
                    .as_ref()
                    .err()
                    .map(|err| format!("could not read junit report {}: {err}", path.display()))
            })
            .collect();
        let merged_any = !merged.is_empty();
        report.add_test_suites(merged);
        // The suite's own report speaks for it, unless it hides a failure of
        // the process itself.
        if !merged_any || (suite.result.outcome.is_failure() && !any_own_failure) {
            report.add_test_suite(process_suite(suite, &unreadable));
        }
    }
    report
}

/// A test suite with one test case standing for the suite's process.
fn process_suite(suite: &SuiteReports, unreadable: &[String]) -> TestSuite {
    let result = &suite.result;
    let status = match &result.outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Skipped => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(result.outcome.describe());
            status
        }
        outcome => {
            let kind = match outcome {
                Outcome::Errored(_) => NonSuccessKind::Error,
                _ => NonSuccessKind::Failure,
            };
            let mut status = TestCaseStatus::non_success(kind);
            status
                .set_message(outcome.describe())
                .set_type(failure_type(outcome));
            status
        }
    };
    let mut case = TestCase::new(result.name.as_str(), status);
    case.set_classname("harness").set_time(result.duration);
    if !suite.log_tail.is_empty() {
        case.set_system_out(suite.log_tail.as_str());
    }
    if !unreadable.is_empty() {
        case.set_system_err(unreadable.join("\n"));
    }
    let mut test_suite = TestSuite::new(result.name.as_str());
    test_suite
        .set_time(result.duration)
        .add_property(Property::new(SUITE_PROPERTY, result.name.as_str()))
        .add_test_case(case);
    if let Some(namespace) = &result.namespace {
        test_suite.add_property(Property::new("harness.namespace", namespace.as_str()));
    }
    test_suite
}

fn failure_type(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Failed(Exit::Code(_)) => "exit",
        Outcome::Failed(Exit::Signal(_)) => "signal",
        Outcome::TimedOut { .. } => "timeout",
        Outcome::Interrupted => "interrupted",
        Outcome::Errored(_) => "error",
        Outcome::Passed | Outcome::Skipped => "",
    }
}

/// The suite's own reports: `junit*.xml` directly in its artifacts
/// directory, in name order. A missing directory means no reports.
pub fn read_own_reports(artifacts_dir: &Path) -> Vec<(PathBuf, Result<Report, String>)> {
    let Ok(entries) = std::fs::read_dir(artifacts_dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|name| name.starts_with("junit") && name.ends_with(".xml"))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|xml| parse_junit(&xml));
            (path, parsed)
        })
        .collect()
}

/// Parses a JUnit document. Besides the usual `<testsuites>` root, accepts a
/// lone `<testsuite>` root (what `go-junit-report` and many Java tools
/// write), which `quick-junit` rejects, by wrapping it.
pub fn parse_junit(xml: &str) -> Result<Report, String> {
    match Report::deserialize_from_str(xml) {
        Ok(report) => Ok(report),
        Err(first) => {
            let body = strip_prolog(xml);
            if body.trim_start().starts_with("<testsuite") && !body.contains("<testsuites") {
                Report::deserialize_from_str(&format!("<testsuites>{body}</testsuites>"))
                    .map_err(|e| e.to_string())
            } else {
                Err(first.to_string())
            }
        }
    }
}

/// `xml` without its `<?xml ...?>` declaration and leading comments, which
/// may only appear before the root element.
fn strip_prolog(xml: &str) -> &str {
    let mut rest = xml.trim_start();
    loop {
        let end = if rest.starts_with("<?") {
            rest.find("?>").map(|i| i + 2)
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + 3)
        } else {
            None
        };
        match end {
            Some(end) => rest = rest[end..].trim_start(),
            None => return rest,
        }
    }
}

/// The last `lines` lines of the file at `path`, lossily decoded.
pub fn log_tail(path: &Path, lines: usize) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        // The first line was cut by the byte window.
        all.remove(0);
    }
    let tail = &all[all.len().saturating_sub(lines)..];
    Ok(tail.join("\n"))
}
