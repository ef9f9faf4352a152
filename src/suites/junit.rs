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
//! The failed test cases of the suites' own reports are also read out
//! ([`failed_cases`]), each placed on the run's clock, so that the report can
//! say which failures came after an infrastructure incident. How a case's
//! start is placed, best first:
//!
//! 1. its own `timestamp`, when the report gives one with a UTC offset;
//! 2. the first `> Enter [...] ... @ 01/02/06 15:04:05.000` line of the spec
//!    timeline Ginkgo v2 writes into every test case's `system-err` (and
//!    its failure description): the time the spec's first node began;
//! 3. an estimate: the start of its test suite (the suite's `timestamp`,
//!    else the start of the suite's process) plus the `time` of every test
//!    case before it in report order — Ginkgo lists specs in the order they
//!    ran — divided by the suite's `procs` when it ran them in parallel.
//!    The gaps between cases are not counted, so for a suite that runs its
//!    cases one after another the estimate is never later than the truth:
//!    a case said to start after an incident did.
//!
//! Ginkgo writes local time without an offset (`2006-01-02T15:04:05`, and
//! `01/02/06 15:04:05.999` in timelines). Suites run as child processes of
//! the harness, on this machine and with its environment, so these are read
//! in this machine's time zone (`TZ`, else `/etc/localtime`); a time that
//! then falls outside the window in which the suite's process ran (a suite
//! that ran Ginkgo in a container with another zone, say) is not trusted
//! and the next way is used.
//!
//! Reading files is kept apart from [`assemble`] and [`failed_cases`], which
//! are pure.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use quick_junit::{
    DeserializeErrorKind, NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun,
    TestSuite,
};

use crate::report::Placed;

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

/// A JUnit report that cannot be written is harness's own trouble (70).
impl crate::failure::Failure for JunitError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            JunitError::Serialize(_) | JunitError::Write { .. } => crate::exit::Exit::Internal,
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            // The message says to check the directory.
            JunitError::Serialize(_) | JunitError::Write { .. } => None,
        }
    }
}

/// What [`assemble`] knows about one suite.
#[derive(Debug, Clone)]
pub struct SuiteReports {
    /// The suite's result.
    pub result: SuiteResult,
    /// Its own JUnit reports.
    pub own: Vec<OwnReport>,
    /// The last lines of its log.
    pub log_tail: String,
}

/// One JUnit report a suite wrote itself.
#[derive(Debug, Clone)]
pub struct OwnReport {
    pub path: PathBuf,
    /// The parsed report, or why it could not be read.
    pub report: Result<Report, String>,
    /// The `timestamp` of each `<testsuite>`, in document order, as written
    /// when it has no UTC offset (which [`parse_junit`] drops): Ginkgo's
    /// local start of the suite.
    pub local_starts: Vec<Option<DateTime>>,
}

impl OwnReport {
    pub fn parse(path: PathBuf, xml: &str) -> Self {
        Self {
            path,
            report: parse_junit(xml),
            local_starts: local_suite_starts(xml),
        }
    }
}

/// Reads each suite's own JUnit reports and its log tail.
pub fn read_suites(summary: &RunSummary) -> Vec<SuiteReports> {
    summary
        .results
        .iter()
        .map(|result| SuiteReports {
            result: result.clone(),
            own: read_own_reports(&result.artifacts_dir),
            log_tail: log_tail(&result.log_path, LOG_TAIL_LINES).unwrap_or_default(),
        })
        .collect()
}

/// Reads each suite's own JUnit reports and log tail, then assembles the
/// run's report named `run_name`.
pub fn build_report(run_name: &str, summary: &RunSummary) -> Report {
    report_of(run_name, summary, &read_suites(summary))
}

/// The run's report from suites already read.
pub fn report_of(run_name: &str, summary: &RunSummary, suites: &[SuiteReports]) -> Report {
    let mut report = assemble(run_name, suites);
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
            .filter_map(|own| own.report.as_ref().ok())
            .flat_map(|own| own.test_suites.iter().cloned())
            .map(|mut own| {
                drop_colliding(&mut own.extra, SUITE_ATTRIBUTES);
                for case in &mut own.test_cases {
                    drop_colliding(&mut case.extra, CASE_ATTRIBUTES);
                }
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
            .filter_map(|own| {
                own.report
                    .as_ref()
                    .err()
                    .map(|err| format!("could not read junit report {}: {err}", own.path.display()))
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

/// The attributes `quick-junit` writes itself on a `<testsuite>` and a
/// `<testcase>`.
const SUITE_ATTRIBUTES: &[&str] = &[
    "name",
    "tests",
    "skipped",
    "errors",
    "failures",
    "disabled",
    "timestamp",
    "time",
];
const CASE_ATTRIBUTES: &[&str] = &["name", "classname", "assertions", "timestamp", "time"];

/// Drops the unknown attributes kept from a suite's own report that would
/// make the merged report unreadable: those written twice (`quick-junit`
/// strips control characters from names, so `skipped\u{4}` would come out
/// as a second `skipped`) and those whose name is no XML name (the reader
/// lets `dis&abled` through; the writer writes it as it is). CI would reject
/// the whole report.
fn drop_colliding(
    extra: &mut indexmap::IndexMap<quick_junit::XmlString, quick_junit::XmlString>,
    written: &[&str],
) {
    extra.retain(|name, _| is_xml_name(name.as_str()) && !written.contains(&name.as_str()));
}

/// An XML name, in its ASCII subset (what JUnit writers use).
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
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
    case.set_classname(PROCESS_CLASSNAME)
        .set_time(result.duration);
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
pub fn read_own_reports(artifacts_dir: &Path) -> Vec<OwnReport> {
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
        .map(|path| match std::fs::read_to_string(&path) {
            Ok(xml) => OwnReport::parse(path, &xml),
            Err(e) => OwnReport {
                path,
                report: Err(e.to_string()),
                local_starts: Vec::new(),
            },
        })
        .collect()
}

/// When a suite's process ran, by the harness's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    /// Whether a case's own time falls in the window. Its start is read a
    /// second early: the runner notes a suite started after spawning its
    /// process (a case can stamp itself first), and JUnit timestamps are
    /// often whole seconds (a case begun in the suite's first second reads
    /// as before it). Either way the case's own time is the better one.
    fn contains(&self, at: Timestamp) -> bool {
        let start = self
            .start
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap_or(self.start);
        start <= at && at <= self.end
    }
}

/// When each suite's process ran, from the runner's events as they come.
#[derive(Clone, Debug, Default)]
pub struct Windows(std::collections::BTreeMap<String, Window>);

impl Windows {
    /// Notes a suite starting or finishing at `now`.
    pub fn observe(&mut self, event: &super::SuiteEvent, now: Timestamp) {
        match event {
            super::SuiteEvent::Started { suite, .. } => {
                self.0.insert(
                    suite.clone(),
                    Window {
                        start: now,
                        end: now,
                    },
                );
            }
            super::SuiteEvent::Finished(result) => {
                self.0
                    .entry(result.name.clone())
                    .or_insert(Window {
                        start: now,
                        end: now,
                    })
                    .end = now;
            }
            _ => {}
        }
    }

    /// When suite `name`'s process ran, once it finished.
    pub fn of(&self, name: &str) -> Option<Window> {
        self.0.get(name).copied()
    }

    /// The failed test cases of every suite that ran, each in its window;
    /// `procs` is how many specs a suite ran at once (`None`: one).
    pub fn failed_cases(
        &self,
        suites: &[SuiteReports],
        procs: impl Fn(&str) -> Option<u32>,
        tz: &TimeZone,
    ) -> Vec<FailedCase> {
        suites
            .iter()
            .filter_map(|suite| {
                let window = self.0.get(&suite.result.name)?;
                let procs = procs(&suite.result.name).unwrap_or(1);
                Some(failed_cases(suite, *window, procs, tz))
            })
            .flatten()
            .collect()
    }
}

/// A failed test case of a suite's own report, placed on the run's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedCase {
    /// The harness suite whose report it is in.
    pub suite: String,
    pub name: String,
    pub classname: Option<String>,
    pub started: Timestamp,
    pub placed: Placed,
    pub seconds: Option<f64>,
    /// The first line of the failure message.
    pub message: Option<String>,
}

impl From<FailedCase> for crate::report::Event {
    fn from(case: FailedCase) -> Self {
        crate::report::Event::TestCaseFailed {
            suite: case.suite,
            case: case.name,
            classname: case.classname,
            started: case.started,
            placed: case.placed,
            seconds: case.seconds,
            message: case.message,
        }
    }
}

/// A quick-junit (chrono) timestamp as a jiff one, without naming chrono.
macro_rules! instant {
    ($t:expr) => {
        Timestamp::new($t.timestamp(), $t.timestamp_subsec_nanos() as i32).ok()
    };
}

/// The failed (and errored) test cases of `suite`'s own reports, in report
/// order, each placed as the module doc says. `window` is when the suite's
/// process ran, `procs` how many specs it ran at once, `tz` the zone its
/// local times are read in. The test case the harness adds for a failed
/// process is not one of them: it stands for the suite, not a test.
pub fn failed_cases(
    suite: &SuiteReports,
    window: Window,
    procs: u32,
    tz: &TimeZone,
) -> Vec<FailedCase> {
    placed_cases(suite, window, procs, tz)
        .into_iter()
        .filter(|c| c.status == CaseStatus::Failed)
        .map(|c| c.case)
        .collect()
}

/// How a test case of a suite's own report ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseStatus {
    Passed,
    Failed,
    Skipped,
}

/// A test case of a suite's own report, placed, with how it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedCase {
    pub case: FailedCase,
    pub status: CaseStatus,
}

/// Every test case of `suite`'s own reports, in report order, placed as
/// [`failed_cases`] places the failed ones.
pub fn placed_cases(
    suite: &SuiteReports,
    window: Window,
    procs: u32,
    tz: &TimeZone,
) -> Vec<PlacedCase> {
    let mut out = Vec::new();
    for own in &suite.own {
        let Ok(report) = &own.report else { continue };
        // The local starts line up with the suites only if every one was seen.
        let aligned = own.local_starts.len() == report.test_suites.len();
        for (index, test_suite) in report.test_suites.iter().enumerate() {
            let local_start = own
                .local_starts
                .get(index)
                .copied()
                .flatten()
                .filter(|_| aligned)
                .and_then(|dt| tz.to_ambiguous_timestamp(dt).compatible().ok());
            let suite_start = test_suite
                .timestamp
                .and_then(|t| instant!(t))
                .or(local_start)
                .filter(|t| window.contains(*t))
                .unwrap_or(window.start);
            let mut before = std::time::Duration::ZERO;
            for case in &test_suite.test_cases {
                let estimated = suite_start
                    .checked_add(before / procs.max(1))
                    .unwrap_or(suite_start)
                    .clamp(window.start, window.end);
                before += case.time.unwrap_or_default();
                let (status, message, description) = match &case.status {
                    TestCaseStatus::NonSuccess {
                        message,
                        description,
                        ..
                    } => (CaseStatus::Failed, message.as_ref(), description.as_ref()),
                    TestCaseStatus::Success { .. } => (CaseStatus::Passed, None, None),
                    TestCaseStatus::Skipped { .. } => (CaseStatus::Skipped, None, None),
                };
                let own_timestamp = case
                    .timestamp
                    .and_then(|t| instant!(t))
                    .filter(|t| window.contains(*t));
                let timeline = || {
                    [&case.system_err, &case.system_out]
                        .into_iter()
                        .flatten()
                        .map(|t| t.as_str())
                        .chain(description.map(|d| d.as_str()))
                        .find_map(ginkgo_enter_time)
                        .and_then(|dt| tz.to_ambiguous_timestamp(dt).compatible().ok())
                        .filter(|t| window.contains(*t))
                };
                let (started, placed) = match own_timestamp {
                    Some(t) => (t, Placed::Timestamp),
                    None => match timeline() {
                        Some(t) => (t, Placed::Timeline),
                        None => (estimated, Placed::Estimated),
                    },
                };
                out.push(PlacedCase {
                    status,
                    case: FailedCase {
                        suite: suite.result.name.clone(),
                        name: case.name.as_str().to_owned(),
                        classname: case.classname.as_ref().map(|c| c.as_str().to_owned()),
                        started,
                        placed,
                        seconds: case.time.map(|t| t.as_secs_f64()),
                        message: message
                            .and_then(|m| m.as_str().lines().map(str::trim).find(|l| !l.is_empty()))
                            .map(|l| truncate(l, 200)),
                    },
                });
            }
        }
    }
    out
}

/// What one attempt of the suites left: each suite's result and reports,
/// and when its process ran.
#[derive(Clone, Debug)]
pub struct AttemptReports {
    /// 1 for the first run, 2 for the first retry…
    pub attempt: u32,
    pub suites: Vec<(SuiteReports, Window)>,
}

/// The history of every test case over the attempts, in the order first
/// seen: from the suites' own reports, and for a suite whose process failed
/// without a failed test case of its own (no report, or one that hides the
/// failure), the suite itself as one case. An attempt that was interrupted
/// or never started is no attempt of its cases. Pure.
pub fn histories(
    attempts: &[AttemptReports],
    procs: impl Fn(&str) -> Option<u32>,
    tz: &TimeZone,
) -> Vec<crate::suites::verdict::History> {
    use crate::suites::verdict::{Attempt, History};
    let mut out: Vec<History> = Vec::new();
    let mut add = |suite: &str, case: &str, classname: Option<String>, attempt: Attempt| match out
        .iter_mut()
        .find(|h| h.suite == suite && h.case == case && h.classname == classname)
    {
        Some(h) => h.attempts.push(attempt),
        None => out.push(History {
            suite: suite.to_owned(),
            case: case.to_owned(),
            classname,
            attempts: vec![attempt],
        }),
    };
    // Suites that stand for themselves, once they did.
    let mut caseless: Vec<String> = Vec::new();
    for run in attempts {
        for (suite, window) in &run.suites {
            if matches!(
                suite.result.outcome,
                Outcome::Interrupted | Outcome::Skipped
            ) {
                continue;
            }
            let name = suite.result.name.as_str();
            let cases = placed_cases(suite, *window, procs(name).unwrap_or(1), tz);
            for c in &cases {
                if c.status == CaseStatus::Skipped {
                    continue;
                }
                let started = c.case.started;
                let ended = c
                    .case
                    .seconds
                    .and_then(|s| jiff::SignedDuration::try_from_secs_f64(s).ok())
                    .and_then(|d| started.checked_add(d).ok())
                    .unwrap_or(started);
                add(
                    name,
                    &c.case.name,
                    c.case.classname.clone(),
                    Attempt {
                        attempt: run.attempt,
                        passed: c.status == CaseStatus::Passed,
                        started,
                        ended,
                        message: c.case.message.clone(),
                    },
                );
            }
            let failed = suite.result.outcome.is_failure();
            let own_failure = cases.iter().any(|c| c.status == CaseStatus::Failed);
            if failed && !own_failure && !caseless.iter().any(|c| c == name) {
                caseless.push(name.to_owned());
            }
            if caseless.iter().any(|c| c == name) {
                add(
                    name,
                    name,
                    Some(PROCESS_CLASSNAME.to_owned()),
                    Attempt {
                        attempt: run.attempt,
                        // A failure reported by its own test cases is told there.
                        passed: !failed || own_failure,
                        started: window.start,
                        ended: window.end,
                        message: failed.then(|| suite.result.outcome.describe()),
                    },
                );
            }
        }
    }
    out
}

/// The `classname` of the test case the harness adds for a suite's process.
pub const PROCESS_CLASSNAME: &str = "harness";

/// The run's report over every attempt: each test case once, as it ended on
/// its last attempt, with its earlier failures inside it as the Surefire
/// (and nextest) convention has them — `<flakyFailure>`/`<flakyError>` in a
/// case that passed on a retry, `<rerunFailure>`/`<rerunError>` in one that
/// failed again — and each failed case's verdict appended to its
/// `system-err`. Pure.
pub fn merge_attempts(
    run_name: &str,
    attempts: &[Vec<SuiteReports>],
    verdicts: &[crate::suites::verdict::CaseVerdict],
) -> Report {
    let mut report = Report::new(run_name);
    let mut suites: Vec<TestSuite> = Vec::new();
    for (index, attempt) in attempts.iter().enumerate() {
        let assembled = assemble(run_name, attempt);
        for test_suite in assembled.test_suites {
            let owner = harness_suite(&test_suite).map(str::to_owned);
            let existing = suites
                .iter_mut()
                .find(|s| s.name == test_suite.name && harness_suite(s) == owner.as_deref());
            let Some(existing) = existing else {
                suites.push(test_suite);
                continue;
            };
            for case in test_suite.test_cases {
                let earlier = existing
                    .test_cases
                    .iter_mut()
                    .find(|c| c.name == case.name && c.classname == case.classname);
                match earlier {
                    Some(earlier) if index > 0 => {
                        let previous = std::mem::replace(earlier, case);
                        carry_reruns(previous, earlier);
                    }
                    Some(earlier) => *earlier = case,
                    None => existing.test_cases.push(case),
                }
            }
        }
        // A suite that stood for itself (its process failed with no failed
        // test case of its own) and passed this time passed on a retry.
        for passed in attempt
            .iter()
            .filter(|s| index > 0 && !s.result.outcome.is_failure())
        {
            let name = passed.result.name.as_str();
            let case = suites
                .iter_mut()
                .filter(|s| harness_suite(s) == Some(name))
                .flat_map(|s| s.test_cases.iter_mut())
                .find(|c| {
                    c.name.as_str() == name
                        && c.classname.as_ref().map(|x| x.as_str()) == Some(PROCESS_CLASSNAME)
                        && matches!(c.status, TestCaseStatus::NonSuccess { .. })
                });
            if let Some(case) = case {
                let mut now = TestCase::new(name, TestCaseStatus::success());
                now.set_classname(PROCESS_CLASSNAME)
                    .set_time(passed.result.duration);
                let previous = std::mem::replace(case, now);
                carry_reruns(previous, case);
            }
        }
    }
    for v in verdicts {
        let found = suites
            .iter_mut()
            .filter(|s| harness_suite(s) == Some(v.suite.as_str()))
            .flat_map(|s| s.test_cases.iter_mut())
            .find(|c| {
                c.name.as_str() == v.case
                    && c.classname.as_ref().map(|x| x.as_str()) == v.classname.as_deref()
            });
        if let Some(case) = found {
            let text = verdict_text(v);
            let err = match &case.system_err {
                Some(e) if !e.as_str().is_empty() => format!("{}\n{text}", e.as_str()),
                _ => text,
            };
            case.set_system_err(err);
        }
    }
    for suite in &mut suites {
        recount(suite);
    }
    report.add_test_suites(suites);
    report
}

/// The harness suite a merged test suite came from.
fn harness_suite(suite: &TestSuite) -> Option<&str> {
    suite
        .properties
        .iter()
        .find(|p| p.name.as_str() == SUITE_PROPERTY)
        .map(|p| p.value.as_str())
}

/// Moves the earlier attempt's failures (its own, and those it carried)
/// into `later`, as flaky runs when `later` passed, reruns when it failed.
fn carry_reruns(previous: TestCase, later: &mut TestCase) {
    let mut runs: Vec<TestRerun> = match previous.status {
        TestCaseStatus::Success { flaky_runs } => flaky_runs,
        TestCaseStatus::Skipped { .. } => Vec::new(),
        TestCaseStatus::NonSuccess {
            kind,
            message,
            ty,
            description,
            reruns,
        } => {
            let mut runs = reruns.runs;
            let mut own = TestRerun::new(kind);
            // The Surefire schema wants a `type` and a `stackTrace` on each,
            // and no text of their own: the description goes in the trace.
            own.message = message;
            own.ty = Some(ty.unwrap_or_else(|| "failure".into()));
            own.stack_trace = Some(description.unwrap_or_else(|| "".into()));
            own.system_out = previous.system_out.map(|o| clip(o.as_str()).into());
            own.system_err = previous.system_err.map(|e| clip(e.as_str()).into());
            runs.push(own);
            runs
        }
    };
    if runs.is_empty() {
        return;
    }
    match &mut later.status {
        TestCaseStatus::Success { flaky_runs } => {
            runs.append(flaky_runs);
            *flaky_runs = runs;
        }
        TestCaseStatus::NonSuccess { reruns, .. } => {
            runs.append(&mut reruns.runs);
            reruns.runs = runs;
        }
        // Skipped on the retry: its earlier failure stands.
        TestCaseStatus::Skipped { .. } => {}
    }
}

/// At most the last 4 KiB of an earlier attempt's output: the last attempt
/// keeps its own whole, and every earlier one repeats the same setup.
fn clip(text: &str) -> String {
    const KEEP: usize = 4096;
    if text.len() <= KEEP {
        return text.to_owned();
    }
    let mut cut = text.len() - KEEP;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("…{}", &text[cut..])
}

/// Counts a merged suite's cases again (statuses changed in place).
fn recount(suite: &mut TestSuite) {
    suite.tests = suite.test_cases.len();
    suite.failures = 0;
    suite.errors = 0;
    suite.skipped = 0;
    for case in &suite.test_cases {
        match &case.status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                ..
            } => suite.failures += 1,
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                ..
            } => suite.errors += 1,
            TestCaseStatus::Skipped { .. } => suite.skipped += 1,
            TestCaseStatus::Success { .. } => {}
        }
    }
}

/// The verdict as a test case's `system-err` ends with it.
fn verdict_text(v: &crate::suites::verdict::CaseVerdict) -> String {
    let mut text = format!(
        "harness verdict: {} — {} ({})",
        v.verdict,
        v.attempts_text(),
        v.verdict.meaning()
    );
    if let Some(i) = &v.incident {
        text.push_str(&format!(
            "\n  {} {} at {} ({}; {})",
            i.component.as_deref().unwrap_or("cluster"),
            i.what,
            i.since.strftime("%H:%M:%S"),
            i.pod,
            i.detail
        ));
        if let Some(tail) = &i.log_tail {
            text.push_str("\n  its last log lines:");
            for line in tail.lines() {
                text.push_str("\n    ");
                text.push_str(line);
            }
        }
    }
    text
}

fn truncate(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// The time of the first `> Enter [Node] text - file:line @ 01/02/06
/// 15:04:05.000` line: Ginkgo's default time format in spec timelines.
fn ginkgo_enter_time(text: &str) -> Option<DateTime> {
    static ENTER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?m)^\s*> Enter \[[^\]]+\].* @ (\d{2})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?",
        )
        .expect("a valid pattern")
    });
    let c = ENTER.captures(text)?;
    let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<i16>().ok());
    let nanos = c.get(7).map_or(0, |m| {
        let digits = m.as_str();
        digits.parse::<i32>().unwrap_or(0) * 10i32.pow(9 - digits.len() as u32)
    });
    let date = jiff::civil::Date::new(2000 + n(3)?, n(1)? as i8, n(2)? as i8).ok()?;
    let time = jiff::civil::Time::new(n(4)? as i8, n(5)? as i8, n(6)? as i8, nanos).ok()?;
    Some(date.to_datetime(time))
}

/// The offset-less `timestamp` of every `<testsuite>` element, in document
/// order (`None` for one without, or with an offset, which quick-junit reads).
fn local_suite_starts(xml: &str) -> Vec<Option<DateTime>> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<testsuite") {
        rest = &rest[at + "<testsuite".len()..];
        // `<testsuites` is the wrapper, not a suite.
        if !rest.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            continue;
        }
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        out.push(attribute(tag, "timestamp").and_then(|t| t.parse::<DateTime>().ok()));
    }
    out
}

/// The value of `name="..."` (or `'...'`) in a start tag's attributes.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().last();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let quote = value.chars().next()?;
        if quote != '"' && quote != '\'' {
            continue;
        }
        let value = &value[1..];
        return value.find(quote).map(|end| &value[..end]);
    }
    None
}

/// Parses a JUnit document, tolerating what common writers produce but
/// `quick-junit` rejects:
/// - a lone `<testsuite>` root (`go-junit-report`, many Java tools), which
///   is wrapped in `<testsuites>`;
/// - numeric character references such as `&#xA;` in text, which Go's
///   `encoding/xml` (hence Ginkgo) writes for every newline in a failure
///   message, and which are decoded to the characters they stand for;
/// - `<property ...></property>` (Go's `encoding/xml` never self-closes),
///   which `quick-junit` silently drops, so it is rewritten as
///   `<property .../>`;
/// - timestamps without a UTC offset (Ginkgo writes local time as
///   `2006-01-02T15:04:05`), which are dropped rather than guessed: the
///   harness's own timing of the suite is exact anyway.
pub fn parse_junit(xml: &str) -> Result<Report, String> {
    let mut xml = self_close_properties(xml);
    // Each round fixes one problem; a bounded number of rounds keeps a
    // pathological document from looping.
    for _ in 0..64 {
        let err = match Report::deserialize_from_str(&xml) {
            Ok(report) => return Ok(report),
            Err(err) => err,
        };
        match err.kind() {
            DeserializeErrorKind::ParseTimestampError(bad) => {
                let before = xml.len();
                for quote in ['"', '\''] {
                    xml = xml.replace(&format!("timestamp={quote}{bad}{quote}"), "");
                }
                if xml.len() == before {
                    return Err(err.to_string());
                }
            }
            DeserializeErrorKind::InvalidStructure(what)
                if what.contains("unrecognized entity: #") =>
            {
                let decoded = decode_char_refs(&xml);
                if decoded == xml {
                    return Err(err.to_string());
                }
                xml = decoded;
            }
            DeserializeErrorKind::InvalidStructure(_) => {
                let body = strip_prolog(&xml);
                if body.starts_with("<testsuite") && !body.starts_with("<testsuites") {
                    xml = format!("<testsuites>{body}</testsuites>");
                } else {
                    return Err(err.to_string());
                }
            }
            _ => return Err(err.to_string()),
        }
    }
    Err("too many unreadable attributes".into())
}

/// Rewrites empty `<property ...></property>` elements as `<property .../>`.
/// A property with content is left alone.
fn self_close_properties(xml: &str) -> String {
    const OPEN: &str = "<property ";
    const CLOSE: &str = "</property>";
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find(OPEN) {
        let Some(gt) = rest[start..].find('>').map(|i| start + i) else {
            break;
        };
        let tag = &rest[..gt];
        if !tag.ends_with('/') && rest[gt + 1..].starts_with(CLOSE) {
            out.push_str(tag);
            out.push_str("/>");
            rest = &rest[gt + 1 + CLOSE.len()..];
        } else {
            out.push_str(&rest[..=gt]);
            rest = &rest[gt + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Replaces numeric character references (`&#xA;`, `&#10;`) by their
/// characters, except markup characters, which become the named entities
/// every XML reader knows.
fn decode_char_refs(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("&#") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let decoded = after.find(';').and_then(|end| {
            let digits = &after[..end];
            let code = match digits.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => digits.parse().ok(),
            };
            code.and_then(char::from_u32).map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '&' => out.push_str("&amp;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&apos;"),
                    c => out.push(c),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("&#");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::suites::runner::StartError;

    const GINKGO: &str = include_str!("../../tests/fixtures/junit/ginkgo-report.xml");

    fn result(name: &str, outcome: Outcome) -> SuiteResult {
        SuiteResult {
            name: name.into(),
            outcome,
            duration: Duration::from_millis(1500),
            log_path: PathBuf::from("/nonexistent/output.log"),
            artifacts_dir: PathBuf::from("/nonexistent/artifacts"),
            namespace: Some(format!("{name}-p1-00000000")),
        }
    }

    fn plain(name: &str, outcome: Outcome) -> SuiteReports {
        SuiteReports {
            result: result(name, outcome),
            own: Vec::new(),
            log_tail: format!("last words of {name}"),
        }
    }

    fn with_own(name: &str, outcome: Outcome, xml: &str) -> SuiteReports {
        SuiteReports {
            own: vec![OwnReport::parse(PathBuf::from("junit.xml"), xml)],
            ..plain(name, outcome)
        }
    }

    const GREEN: &str = r#"<testsuites><testsuite name="green" tests="1"><testcase name="ok"/></testsuite></testsuites>"#;

    /// Found by fuzzing (the `junit` target): an attribute name with a
    /// control character survived the reading but was written as a second
    /// `skipped`, so the run's junit.xml was not XML any more.
    #[test]
    fn an_own_attribute_never_repeats_one_the_writer_writes() {
        let own = "<testsuites><testsuite name=\"s\" tests=\"1\" skipped\u{4}=\"1\" package=\"p\">\
                   <testcase name=\"c\" time\u{1b}=\"2\" file=\"f.go\"/></testsuite></testsuites>";
        let report = assemble("run", &[with_own("s", Outcome::Passed, own)]);
        let written = report.to_string().unwrap();
        let back = parse_junit(&written).unwrap_or_else(|e| panic!("{e}\n{written}"));
        let suite = &back.test_suites[0];
        assert_eq!(suite.test_cases.len(), 1);
        // Found again by the rerun: a name that is no XML name.
        let amp = own.replace("package=", "dis&abled=\"0\" package=");
        let amp_written = assemble("run", &[with_own("s", Outcome::Passed, &amp)])
            .to_string()
            .unwrap();
        parse_junit(&amp_written).unwrap_or_else(|e| panic!("{e}\n{amp_written}"));
        // The attributes nobody else writes are kept.
        assert!(
            written.contains("package=\"p\"") && written.contains("file=\"f.go\""),
            "{written}"
        );
    }

    #[test]
    fn parse_junit_accepts_what_common_writers_produce() {
        let ginkgo = parse_junit(GINKGO).unwrap();
        assert_eq!(ginkgo.test_suites.len(), 1);
        let suite = &ginkgo.test_suites[0];
        assert_eq!(suite.name.as_str(), "Gateway E2E Suite");
        assert_eq!(suite.test_cases.len(), 4);
        assert_eq!(
            suite.properties.len(),
            17,
            "empty <property></property> dropped"
        );
        assert!(matches!(
            suite.test_cases[2].status,
            TestCaseStatus::Skipped { .. }
        ));
        // Go writes newlines in the failure message as &#xA;.
        let (message, _) = message(&suite.test_cases[3].status);
        assert!(
            message.starts_with("Expected\n    <int>: 0\nto equal"),
            "{message:?}"
        );
        // The offset-less timestamp is dropped, not guessed.
        assert_eq!(suite.timestamp, None);

        let lone = r#"<?xml version="1.0"?>
<!-- written by go-junit-report -->
<testsuite name="pkg" tests="1"><testcase name="t" classname="pkg"/></testsuite>"#;
        let report = parse_junit(lone).unwrap();
        assert_eq!(report.test_suites[0].name.as_str(), "pkg");
        assert_eq!(report.test_suites[0].test_cases[0].name.as_str(), "t");

        let single_quoted = "<testsuites><testsuite name='s' timestamp='2026-01-01T00:00:00'><testcase name='c'/></testsuite></testsuites>";
        assert!(parse_junit(single_quoted).is_ok());

        for bad in ["", "not xml", "<html></html>", "<testsuites><testsuite>"] {
            assert!(parse_junit(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn char_refs_are_decoded_but_markup_stays_escaped() {
        let table = [
            ("a&#xA;b", "a\nb"),
            ("a&#10;b&#x9;c", "a\nb\tc"),
            ("&#x3C;tag&#62; &#38;", "&lt;tag&gt; &amp;"),
            ("&lt; &amp; untouched", "&lt; &amp; untouched"),
            ("broken &#xZZ; and &# end", "broken &#xZZ; and &# end"),
            ("é&#xE9;", "éé"),
        ];
        for (input, expected) in table {
            assert_eq!(decode_char_refs(input), expected, "{input:?}");
        }
    }

    #[test]
    fn empty_properties_are_self_closed() {
        let table = [
            (
                r#"<properties><property name="a" value="1"></property><property name="b" value=">"></property></properties>"#,
                r#"<properties><property name="a" value="1"/><property name="b" value=">"></property></properties>"#,
            ),
            (
                r#"<property name="a" value="1"/>"#,
                r#"<property name="a" value="1"/>"#,
            ),
            (
                r#"<property name="a">text</property>"#,
                r#"<property name="a">text</property>"#,
            ),
            ("<property ", "<property "),
        ];
        for (input, expected) in table {
            assert_eq!(self_close_properties(input), expected, "{input:?}");
        }
    }

    fn case_status<'a>(report: &'a Report, suite: &str) -> &'a TestCaseStatus {
        let suite = report
            .test_suites
            .iter()
            .find(|s| s.name.as_str() == suite)
            .unwrap_or_else(|| panic!("no test suite {suite}"));
        assert_eq!(suite.test_cases.len(), 1);
        &suite.test_cases[0].status
    }

    fn message(status: &TestCaseStatus) -> (&str, &str) {
        match status {
            TestCaseStatus::NonSuccess { message, ty, .. }
            | TestCaseStatus::Skipped { message, ty, .. } => (
                message.as_ref().map_or("", |m| m.as_str()),
                ty.as_ref().map_or("", |t| t.as_str()),
            ),
            TestCaseStatus::Success { .. } => ("", ""),
        }
    }

    #[test]
    fn suites_without_a_report_become_one_test_case_each() {
        let spawn = StartError::Spawn {
            program: "ginkgo".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let suites = [
            plain("ok", Outcome::Passed),
            plain("three", Outcome::Failed(Exit::Code(3))),
            plain(
                "slow",
                Outcome::TimedOut {
                    timeout: Duration::from_secs(90),
                },
            ),
            plain("stopped", Outcome::Interrupted),
            plain("later", Outcome::Skipped),
            plain("broken", Outcome::Errored(Arc::new(spawn))),
        ];
        let report = assemble("gateway", &suites);
        assert_eq!(report.name.as_ref().map(|n| n.as_str()), Some("gateway"));
        assert_eq!(
            (report.tests, report.failures, report.errors, report.skipped),
            (6, 3, 1, 1)
        );

        assert!(matches!(
            case_status(&report, "ok"),
            TestCaseStatus::Success { .. }
        ));
        let table = [
            (
                "three",
                NonSuccessKind::Failure,
                "exited with status 3",
                "exit",
            ),
            (
                "slow",
                NonSuccessKind::Failure,
                "timed out after 1m 30s",
                "timeout",
            ),
            (
                "stopped",
                NonSuccessKind::Failure,
                "interrupted: the run was cancelled",
                "interrupted",
            ),
        ];
        for (name, want_kind, want_message, want_type) in table {
            let status = case_status(&report, name);
            assert!(
                matches!(status, TestCaseStatus::NonSuccess { kind, .. } if *kind == want_kind),
                "{name}"
            );
            assert_eq!(message(status), (want_message, want_type), "{name}");
        }
        let broken = case_status(&report, "broken");
        assert!(matches!(
            broken,
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                ..
            }
        ));
        assert!(
            message(broken).0.contains("failed to start \"ginkgo\""),
            "{:?}",
            message(broken)
        );
        assert!(matches!(
            case_status(&report, "later"),
            TestCaseStatus::Skipped { .. }
        ));

        // The log tail is the test case's system-out.
        let three = report
            .test_suites
            .iter()
            .find(|s| s.name.as_str() == "three")
            .unwrap();
        assert_eq!(
            three.test_cases[0].system_out.as_ref().unwrap().as_str(),
            "last words of three"
        );
        assert!(
            three
                .properties
                .iter()
                .any(|p| p.name.as_str() == SUITE_PROPERTY && p.value.as_str() == "three")
        );
    }

    #[test]
    fn a_suites_own_report_is_merged() {
        let suites = [
            with_own("gateway", Outcome::Failed(Exit::Code(1)), GINKGO),
            with_own("green", Outcome::Passed, GREEN),
        ];
        let report = assemble("run", &suites);
        let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
        // Ginkgo reported the failure itself: no extra test case for the
        // process, and none for a passing suite with its own report.
        assert_eq!(names, ["Gateway E2E Suite", "green"]);
        let ginkgo = &report.test_suites[0];
        assert_eq!(ginkgo.test_cases.len(), 4);
        assert_eq!(ginkgo.failures, 1);
        assert!(
            ginkgo
                .properties
                .iter()
                .any(|p| p.name.as_str() == "RandomSeed")
        );
        assert!(
            ginkgo
                .properties
                .iter()
                .any(|p| p.name.as_str() == SUITE_PROPERTY && p.value.as_str() == "gateway")
        );
        assert_eq!((report.tests, report.failures, report.skipped), (5, 1, 1));
    }

    #[test]
    fn a_green_own_report_does_not_hide_a_failed_process() {
        let suites = [with_own(
            "green",
            Outcome::TimedOut {
                timeout: Duration::from_secs(5),
            },
            GREEN,
        )];
        let report = assemble("run", &suites);
        assert_eq!(report.test_suites.len(), 2, "{:#?}", report.test_suites);
        // The suite's own (green) report is kept as it is...
        let own = &report.test_suites[0];
        assert_eq!(own.test_cases[0].name.as_str(), "ok");
        assert!(matches!(
            own.test_cases[0].status,
            TestCaseStatus::Success { .. }
        ));
        // ...and followed by a failed test case for the process.
        let process = &report.test_suites[1];
        assert_eq!(process.test_cases[0].name.as_str(), "green");
        assert_eq!(
            message(&process.test_cases[0].status),
            ("timed out after 5s", "timeout")
        );
        assert_eq!(report.failures, 1);
    }

    #[test]
    fn an_unreadable_own_report_falls_back_and_says_why() {
        let suites = [with_own(
            "garbled",
            Outcome::Passed,
            "<testsuites><testsuite",
        )];
        let report = assemble("run", &suites);
        assert_eq!(report.test_suites.len(), 1);
        let case = &report.test_suites[0].test_cases[0];
        assert!(matches!(case.status, TestCaseStatus::Success { .. }));
        let err = case.system_err.as_ref().unwrap().as_str();
        assert!(
            err.starts_with("could not read junit report junit.xml"),
            "{err}"
        );
    }

    #[test]
    fn the_report_serializes_to_xml_that_parses_back() {
        let suites = [
            with_own("gateway", Outcome::Failed(Exit::Code(1)), GINKGO),
            plain("three", Outcome::Failed(Exit::Signal(9))),
        ];
        let report = assemble("run", &suites);
        let xml = report.to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites.len(), 2);
        assert_eq!(back.failures, 2);
        assert!(
            xml.contains(r#"<failure message="killed by SIGKILL" type="signal"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (1..=500).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path, 3).unwrap();
        assert_eq!(tail, "line 498\nline 499\nline 500");

        // A log larger than the byte window: the cut first line is dropped.
        let long: String = (0..20_000).map(|i| format!("{i:08}\n")).collect();
        std::fs::write(&path, long).unwrap();
        let tail = log_tail(&path, usize::MAX).unwrap();
        let lines: Vec<&str> = tail.lines().collect();
        assert!(
            lines.iter().all(|l| l.len() == 8),
            "a partial line survived"
        );
        assert_eq!(lines.last(), Some(&"00019999"));
        assert!(tail.len() as u64 <= LOG_TAIL_BYTES);

        assert!(log_tail(&dir.path().join("missing"), 3).is_err());
    }

    const CASCADE: &str = include_str!("../../tests/fixtures/junit/ginkgo-cascade.xml");

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The audit suite of the cascade fixture, its process run from
    /// 14:19:58 to 14:24:00 UTC.
    fn cascade(xml: &str) -> (SuiteReports, Window) {
        let suite = with_own("audit", Outcome::Failed(Exit::Code(1)), xml);
        let window = Window {
            start: at("2026-11-22T14:19:58Z"),
            end: at("2026-11-22T14:24:00Z"),
        };
        (suite, window)
    }

    #[test]
    fn failed_ginkgo_specs_are_placed_by_their_timeline() {
        let (suite, window) = cascade(CASCADE);
        let cases = failed_cases(&suite, window, 1, &TimeZone::UTC);
        assert_eq!(cases.len(), 15, "{cases:#?}");
        assert!(cases.iter().all(|c| c.placed == Placed::Timeline));
        assert!(cases.iter().all(|c| c.suite == "audit"));
        let first = &cases[0];
        assert_eq!(
            first.name,
            "[It] Audit stores a batch of 150 events [audit]"
        );
        assert_eq!(first.classname.as_deref(), Some("Audit E2E Suite"));
        assert_eq!(first.started, at("2026-11-22T14:22:41.002Z"));
        assert_eq!(first.seconds, Some(2.0));
        assert_eq!(
            first.message.as_deref(),
            Some(
                "Post \"http://localhost:28090/api/v1/audit/events\": dial tcp 127.0.0.1:28090: connect: connection refused"
            )
        );
        assert_eq!(
            cases[14].name,
            "[It] Audit stores events of two controllers [audit]"
        );
        assert!(cases.windows(2).all(|w| w[0].started < w[1].started));
    }

    #[test]
    fn without_a_timeline_the_start_is_estimated_never_later_than_it_was() {
        let (suite, window) = cascade(CASCADE);
        let placed = failed_cases(&suite, window, 1, &TimeZone::UTC);
        // The same report without Ginkgo's timelines (OmitTimelinesForSpecState)
        // nor failure descriptions.
        let timelines = regex::Regex::new(r"(?s)<system-err>.*?</system-err>").unwrap();
        let descriptions = regex::Regex::new(r"(?s)(<failure [^>]*>).*?</failure>").unwrap();
        let bare = timelines.replace_all(CASCADE, "");
        let bare = descriptions.replace_all(&bare, "${1}</failure>");
        let (suite, _) = cascade(&bare);
        let estimated = failed_cases(&suite, window, 1, &TimeZone::UTC);
        assert_eq!(estimated.len(), 15);
        for (e, p) in estimated.iter().zip(&placed) {
            assert_eq!(e.placed, Placed::Estimated);
            assert!(
                e.started <= p.started,
                "{} > {} for {}",
                e.started,
                p.started,
                e.name
            );
        }
        // The suite's own start (14:20:00) and the four specs before it:
        // 3.2 + 1.104 + 0.873 + 155 seconds.
        assert_eq!(estimated[0].started, at("2026-11-22T14:22:40.177Z"));
        // Run with four processes, the earlier specs shared them.
        let parallel = failed_cases(&suite, window, 4, &TimeZone::UTC);
        assert_eq!(parallel[0].started, at("2026-11-22T14:20:40.04425Z"));
    }

    #[test]
    fn local_times_are_read_in_the_zone_the_suite_ran_in_and_checked_against_its_process() {
        let (suite, _) = cascade(CASCADE);
        let plus_one = TimeZone::fixed(jiff::tz::offset(1));
        // Written at 14:22:41 local time, one hour ahead of UTC.
        let window = Window {
            start: at("2026-11-22T13:19:58Z"),
            end: at("2026-11-22T13:24:00Z"),
        };
        let cases = failed_cases(&suite, window, 1, &plus_one);
        assert_eq!(cases[0].started, at("2026-11-22T13:22:41.002Z"));
        assert_eq!(cases[0].placed, Placed::Timeline);
        // Read in the wrong zone the times fall outside the process's run:
        // not trusted; the estimate starts from the process's own start.
        let cases = failed_cases(&suite, window, 1, &TimeZone::UTC);
        assert!(cases.iter().all(|c| c.placed == Placed::Estimated));
        assert_eq!(
            cases[0].started,
            window
                .start
                .checked_add(jiff::SignedDuration::from_millis(160_177))
                .unwrap()
        );
        assert!(cases.iter().all(|c| window.contains(c.started)));
    }

    #[test]
    fn a_case_with_its_own_timestamp_is_placed_by_it() {
        let xml = r#"<testsuites><testsuite name="pkg" timestamp="2026-11-22T14:00:00Z">
<testcase name="first" time="1.5"/>
<testcase name="second" time="2" timestamp="2026-11-22T15:00:05+01:00"><error message="boom"/></testcase>
<testcase name="third" time="1"><failure message="&#xA;  expected 1&#xA;got 2"/></testcase>
</testsuite></testsuites>"#;
        let suite = with_own("unit", Outcome::Failed(Exit::Code(1)), xml);
        let window = Window {
            start: at("2026-11-22T13:59:00Z"),
            end: at("2026-11-22T14:10:00Z"),
        };
        let cases = failed_cases(&suite, window, 1, &TimeZone::UTC);
        let got: Vec<(&str, Timestamp, Placed, Option<&str>)> = cases
            .iter()
            .map(|c| (c.name.as_str(), c.started, c.placed, c.message.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "second",
                    at("2026-11-22T14:00:05Z"),
                    Placed::Timestamp,
                    Some("boom")
                ),
                // The suite's offset timestamp, plus 1.5 s and 2 s.
                (
                    "third",
                    at("2026-11-22T14:00:03.5Z"),
                    Placed::Estimated,
                    Some("expected 1")
                ),
            ]
        );
        // The test case the harness adds for a failed process is not a test case.
        let processes = [plain("crashed", Outcome::Failed(Exit::Signal(9)))];
        assert!(failed_cases(&processes[0], window, 1, &TimeZone::UTC).is_empty());
    }

    #[test]
    fn ginkgo_enter_lines_and_suite_timestamps_are_read_as_written() {
        let table = [
            (
                "> Enter [It] x - a.go:1 @ 11/22/26 14:22:41.002",
                Some("2026-11-22T14:22:41.002"),
            ),
            (
                "noise\n  > Enter [BeforeEach] y - a.go:2 @ 01/02/06 15:04:05\n> Enter [It] z @ 01/02/06 16:00:00",
                Some("2006-01-02T15:04:05"),
            ),
            (
                "> Enter [It] x - a.go:1 @ 11/22/26 14:22:41.5",
                Some("2026-11-22T14:22:41.5"),
            ),
            ("< Exit [It] x - a.go:1 @ 11/22/26 14:22:41.002 (1s)", None),
            ("> Enter [It] x - a.go:1 @ 13/40/26 14:22:41", None),
            ("STEP: y @ 11/22/26 14:22:41", None),
        ];
        for (text, want) in table {
            let want = want.map(|w| w.parse::<DateTime>().unwrap());
            assert_eq!(ginkgo_enter_time(text), want, "{text:?}");
        }
        let starts = local_suite_starts(
            r#"<testsuites timestamp="2026-01-01T00:00:00"><testsuite name="a" timestamp="2026-11-22T14:00:00"><testcase name="t"/></testsuite>
<testsuite name='b' timestamp='2026-11-22T14:00:00Z'/><testsuite name="c"></testsuite><testsuite mytimestamp="2026-11-22T15:00:00" name="d"/></testsuites>"#,
        );
        assert_eq!(
            starts,
            [
                Some("2026-11-22T14:00:00".parse().unwrap()),
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn each_suite_is_placed_in_the_window_its_process_ran_in() {
        let mut windows = Windows::default();
        let started = crate::suites::SuiteEvent::Started {
            suite: "audit".into(),
            process: 1,
            namespace: None,
            log_path: "audit.log".into(),
        };
        windows.observe(&started, at("2026-11-22T14:19:58Z"));
        let (audit, _) = cascade(CASCADE);
        windows.observe(
            &crate::suites::SuiteEvent::Finished(audit.result.clone()),
            at("2026-11-22T14:24:00Z"),
        );
        // A suite that never started (its namespace could not be made) has
        // no window, and nothing of it is placed.
        let (mut never, _) = cascade(CASCADE);
        never.result.name = "never".into();
        let cases = windows.failed_cases(&[audit, never], |_| None, &TimeZone::UTC);
        assert_eq!(cases.len(), 15);
        assert!(
            cases
                .iter()
                .all(|c| c.suite == "audit" && c.placed == Placed::Timeline)
        );
        let event: crate::report::Event = cases[0].clone().into();
        assert!(matches!(
            event,
            crate::report::Event::TestCaseFailed { ref case, placed: Placed::Timeline, .. }
                if case == "[It] Audit stores a batch of 150 events [audit]"
        ));
    }
}
