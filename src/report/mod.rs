//! One event stream, several sinks.
//!
//! Every stage reports what happens as an [`Event`]; nothing below `app`
//! prints. The same stream feeds the live output (progress bars on a
//! terminal, plain timestamped lines in CI, JSON lines for tools — chosen by
//! [`OutputMode::choose`]), and is folded into a [`RunReport`] for the final
//! summary, the GitHub Actions step summary and its `::error` annotations.
//! The infrastructure timeline is part of the report: a component that
//! restarts or is OOMKilled while suites run is shown next to the failures
//! that came after it — the failed test cases read from the suites' own
//! JUnit reports, each placed at the time it started (see
//! [`crate::suites::junit::failed_cases`] for how), and the failed suites
//! that reported no test cases of their own.
//!
//! The stream is also recorded, as the same JSON lines `--output json`
//! prints, in the run's directory (see [`bus::start_recording`]); the
//! must-gather bundle carries it, and `harness report` folds it back into
//! this report ([`replay`]).

pub mod bus;
pub mod github;
pub mod notice;
pub mod phase;
pub mod progress;
pub mod render;
pub mod replay;
pub mod sink;

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::readiness::Standing;
pub use notice::Notice;

/// A stage of the pipeline, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Preflight,
    Images,
    Cluster,
    Load,
    Deploy,
    Suites,
    Gather,
    /// Post-suite hooks (`after_suites:`), after gather, before teardown.
    Hooks,
    Teardown,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Images => "images",
            Phase::Cluster => "cluster",
            Phase::Load => "load",
            Phase::Deploy => "deploy",
            Phase::Suites => "suites",
            Phase::Gather => "gather",
            Phase::Hooks => "hooks",
            Phase::Teardown => "teardown",
        }
    }
}

/// How a failed test case's start was placed on the run's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placed {
    /// The test case's own `timestamp` in the JUnit report.
    Timestamp,
    /// The first `> Enter [...] ... @ <time>` line of the spec's timeline,
    /// which Ginkgo v2 writes into each test case's `system-err`.
    Timeline,
    /// The start of its test suite plus the times of the test cases before
    /// it in report order (divided by the suite's `procs` when it ran them
    /// in parallel): an estimate, shown with `~`.
    Estimated,
}

/// How late the harness saw a component's pods Ready, in seconds: bounds,
/// since the pods' transition times and the server's clock are to the
/// second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub at_least: f64,
    pub at_most: f64,
}

impl Lag {
    /// `0.0–1.3s`, or `0.05s` when both bounds read alike: in hundredths
    /// when the lag was under a second, else in tenths.
    pub fn text(&self) -> String {
        let hundredths = self.at_most < 1.0;
        let show = |s: f64| {
            if hundredths {
                format!("{s:.2}")
            } else {
                format!("{s:.1}")
            }
        };
        let (low, high) = (show(self.at_least), show(self.at_most));
        if low == high {
            format!("{high}s")
        } else {
            format!("{low}–{high}s")
        }
    }
}

/// How a component's `component_ready` reads: `Ready after 6.5s, settled
/// at 11.5s; seen 0.0–1.1s after its pods turned Ready` (the parts it has;
/// `settled at` when it reads apart from Ready), each time written by
/// `secs`.
pub fn ready_text(
    seconds: f64,
    ready_seconds: Option<f64>,
    lag: Option<&Lag>,
    secs: impl Fn(f64) -> String,
) -> String {
    // Without a window to wait out (no pods, a Job, credited in full),
    // settled is Ready.
    let mut text = match ready_seconds.filter(|ready| secs(*ready) != secs(seconds)) {
        Some(ready) => format!("Ready after {}, settled at {}", secs(ready), secs(seconds)),
        None => format!("Ready after {}", secs(seconds)),
    };
    if let Some(lag) = lag {
        text.push_str(&format!(
            "; seen {} after its pods turned Ready",
            lag.text()
        ));
    }
    text
}

/// Something that happened.
///
/// Events are written and read back (`harness report` folds a bundle's
/// recorded stream): a field added later must be optional or defaulted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run began: the first event of `harness up` and `harness test`.
    RunStarted {
        lane: String,
        run_id: String,
    },
    PhaseStarted {
        phase: Phase,
    },
    PhaseFinished {
        phase: Phase,
        seconds: f64,
        ok: bool,
        /// What went wrong: the whole cause chain, once.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// How to fix it, when the error knows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fix: Option<String>,
    },
    /// An image was built, found cached, found present or pulled.
    Image {
        image: String,
        outcome: String,
        seconds: f64,
    },
    /// An image was loaded into a node, or skipped because it had it.
    Load {
        image: String,
        node: String,
        skipped: bool,
        bytes: u64,
        seconds: f64,
    },
    /// A component became Ready, and that held for its settle window.
    ComponentReady {
        component: String,
        /// From its first apply to settled.
        seconds: f64,
        /// From its first apply to Ready: when what depends on it started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ready_seconds: Option<f64>,
        /// How late the harness saw its pods Ready.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lag: Option<Lag>,
    },
    /// A pod's Scheduled → Initialized → Ready, in seconds after creation.
    PodTimeline {
        component: String,
        pod: String,
        scheduled: Option<f64>,
        initialized: Option<f64>,
        ready: Option<f64>,
    },
    /// The deploy failed: where one component of the failed wave (or one
    /// that went down after Ready) stands, with the same evidence as
    /// `harness diagnose`. Every component of that wave gets one.
    Verdict {
        component: String,
        standing: Standing,
        /// One line: the verdict, deadline or error (or `Ready after 3.2s`).
        summary: String,
        /// The unready table and each verdict with its evidence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diagnosis: Option<Box<ReportedDiagnosis>>,
    },
    /// Something the infrastructure did while suites ran: a restart, an
    /// OOM kill, an eviction, a readiness flap (and `Ready` again), a node
    /// that turned unfit, the API server not answering.
    Infra {
        component: String,
        pod: String,
        what: String,
        detail: String,
        /// What the cluster says about it: when it happened by the
        /// kubelet's clock, exit code, memory limit, the last log lines.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<Box<InfraEvidence>>,
    },
    /// Failed suites are run again, each in a fresh namespace: attempt
    /// `attempt` (2 for the first retry) of `suites`. The suite and test
    /// case events that follow belong to it.
    Retry {
        attempt: u32,
        suites: Vec<String>,
    },
    /// The wait, before a retry, for every component of the lane to be
    /// Ready and settled again: how it ended. When it did not, the failed
    /// tests are not retried and their incidents stay open.
    Recovery {
        ok: bool,
        seconds: f64,
        /// Why not: the component, its verdict, its evidence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A failed test case's verdict (`infrastructure`, `flaky`, `real`),
    /// once the suites and their retries are over.
    TestVerdict(Box<crate::suites::verdict::CaseVerdict>),
    SuiteStarted {
        suite: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// One line of a suite's output (shown live with a prefix).
    SuiteOutput {
        suite: String,
        line: String,
    },
    SuiteFinished {
        suite: String,
        passed: bool,
        outcome: String,
        seconds: f64,
        log: PathBuf,
    },
    /// A failed test case, read from a suite's own JUnit report when the
    /// suites are over.
    TestCaseFailed {
        /// The harness suite whose report it is in.
        suite: String,
        /// The test case's name (`[It] Gateway audits a signal [audit]`).
        case: String,
        /// Its `classname`, when the report gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        classname: Option<String>,
        /// When it started, placed as `placed` says.
        started: Timestamp,
        placed: Placed,
        /// Its `time`, when the report gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<f64>,
        /// The first line of its failure message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A post-suite hook started; its output goes to `log`.
    HookStarted {
        hook: String,
        log: PathBuf,
    },
    /// One line of a hook's output (shown live with a prefix).
    HookOutput {
        hook: String,
        line: String,
    },
    HookFinished {
        hook: String,
        ok: bool,
        outcome: String,
        seconds: f64,
        log: PathBuf,
    },
    /// A file the user will want: the JUnit report, the bundle, a log.
    Artifact {
        what: String,
        path: PathBuf,
    },
    /// Something worth saying that is none of the above (see [`Notice`]):
    /// written with its fields under `notice` and its words under `message`.
    Notice {
        #[serde(flatten, with = "notice::wire")]
        notice: Notice,
    },
    /// How the run ended: the last event of `harness test`.
    Finished {
        exit_code: u8,
        result: String,
    },
}

impl Event {
    /// The last event of a run: how it ended.
    pub fn finished(exit: crate::exit::Exit) -> Event {
        Event::Finished {
            exit_code: exit.code(),
            result: exit.meaning().to_owned(),
        }
    }
}

/// An event with the time it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    pub at: Timestamp,
    #[serde(flatten)]
    pub event: Event,
}

impl Stamped {
    pub fn now(event: Event) -> Self {
        Self {
            at: Timestamp::now(),
            event,
        }
    }
}

/// How live output is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// Progress bars: an interactive terminal, not CI.
    Progress,
    /// Plain timestamped lines: CI logs, pipes, files.
    Plain,
    /// One JSON object per event on stdout.
    Json,
}

impl OutputMode {
    /// Bars only when a person is watching a terminal: never in CI (logs
    /// full of redraws are unreadable), never into a pipe.
    pub fn choose(json: bool, stderr_is_terminal: bool, ci: bool) -> Self {
        match (json, stderr_is_terminal && !ci) {
            (true, _) => OutputMode::Json,
            (false, true) => OutputMode::Progress,
            (false, false) => OutputMode::Plain,
        }
    }
}

/// Whether we run in CI, from the variables CI systems set.
pub fn is_ci(env: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    [
        "CI",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "BUILDKITE",
        "JENKINS_URL",
        "TF_BUILD",
    ]
    .iter()
    .any(|v| set(v))
}

/// Everything a run did, folded from its events.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    pub lane: String,
    pub run_id: String,
    pub phases: Vec<PhaseRecord>,
    pub images: Vec<(String, String, f64)>,
    pub loads: Vec<(String, String, bool, u64, f64)>,
    pub pods: Vec<Stamped>,
    pub verdicts: Vec<VerdictRecord>,
    pub infra: Vec<InfraRecord>,
    pub suites: Vec<SuiteRecord>,
    /// Failed test cases from the suites' own JUnit reports, in the order
    /// they were reported.
    pub cases: Vec<CaseRecord>,
    pub hooks: Vec<HookRecord>,
    /// Retry rounds, in order.
    pub retries: Vec<RetryRecord>,
    /// The waits for recovery before them.
    pub recoveries: Vec<RecoveryRecord>,
    /// Every failed test case's verdict, in the order reported.
    pub test_verdicts: Vec<crate::suites::verdict::CaseVerdict>,
    pub artifacts: Vec<(String, PathBuf)>,
    pub notices: Vec<String>,
    /// The exit code and what it means, once the run has ended.
    pub finished: Option<(u8, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseRecord {
    pub phase: Phase,
    pub seconds: f64,
    pub ok: bool,
    pub error: Option<String>,
    pub fix: Option<String>,
}

/// Where a component stood when the deploy failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerdictRecord {
    pub at: Timestamp,
    pub component: String,
    pub standing: Standing,
    pub summary: String,
    pub diagnosis: Option<Box<ReportedDiagnosis>>,
}

impl VerdictRecord {
    /// Whether the component was Ready (listed for completeness).
    pub fn ready(&self) -> bool {
        self.standing == Standing::Ready
    }

    /// The name of its top verdict (`OOMKilled`), else its standing in words.
    pub fn title(&self) -> String {
        self.diagnosis
            .as_ref()
            .and_then(|d| d.title())
            .unwrap_or_else(|| self.standing.describe().to_owned())
    }

    /// The hint of its top verdict, if it has one.
    pub fn hint(&self) -> Option<&str> {
        self.diagnosis.as_ref().and_then(|d| d.hint())
    }
}

/// A diagnosis as events carry it: the JSON form `harness diagnose --output
/// json` prints, and its table and evidence as the text the report shows
/// (in JSON, one more member: `text`). The deploy makes both from its
/// diagnosis when it reports it, so a bundle's recorded events replay the
/// same report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedDiagnosis {
    /// The diagnosis as `harness diagnose --output json` prints it.
    pub json: serde_json::Value,
    /// Its unready table and each verdict with its evidence, as text.
    pub text: String,
}

impl ReportedDiagnosis {
    fn top_verdict(&self) -> Option<&serde_json::Value> {
        self.json["findings"]
            .as_array()?
            .iter()
            .map(|f| &f["verdict"])
            .find(|v| v.is_object())
    }

    /// The name of the top verdict (`OOMKilled`), else the first unready
    /// row's reason.
    pub fn title(&self) -> Option<String> {
        self.top_verdict()
            .and_then(|v| v["name"].as_str())
            .or_else(|| self.json["rows"][0]["reason"].as_str())
            .map(str::to_owned)
    }

    /// The top verdict's hint.
    pub fn hint(&self) -> Option<&str> {
        self.top_verdict()?["hint"].as_str()
    }
}

impl Serialize for ReportedDiagnosis {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut json = self.json.clone();
        if let Some(object) = json.as_object_mut() {
            object.insert("text".into(), serde_json::Value::String(self.text.clone()));
        }
        json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ReportedDiagnosis {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut json = serde_json::Value::deserialize(deserializer)?;
        let text = json
            .as_object_mut()
            .and_then(|o| o.remove("text"))
            .and_then(|t| t.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(Self { json, text })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InfraRecord {
    pub at: Timestamp,
    pub component: String,
    pub pod: String,
    pub what: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Box<InfraEvidence>>,
}

/// What the cluster says about an incident, as far as it says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraEvidence {
    /// When it happened by the kubelet's clock (a container's
    /// `finishedAt`, a condition's transition): the watch sees it later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The container's memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<i32>,
    /// The last lines the container logged before it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

impl InfraEvidence {
    pub fn is_empty(&self) -> bool {
        *self == InfraEvidence::default()
    }
}

/// The wait for every component to be Ready again before a retry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecoveryRecord {
    pub at: Timestamp,
    pub ok: bool,
    pub seconds: f64,
    pub error: Option<String>,
}

/// A retry round: which suites ran again, as which attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryRecord {
    pub attempt: u32,
    pub suites: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SuiteRecord {
    /// 1, or the retry it was (2 for the first).
    pub attempt: u32,
    pub suite: String,
    pub passed: bool,
    pub outcome: String,
    pub seconds: f64,
    pub log: PathBuf,
    pub finished: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseRecord {
    /// 1, or the retry it failed in.
    pub attempt: u32,
    pub suite: String,
    pub case: String,
    pub classname: Option<String>,
    pub started: Timestamp,
    pub placed: Placed,
    pub seconds: Option<f64>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HookRecord {
    pub hook: String,
    pub ok: bool,
    pub outcome: String,
    pub seconds: f64,
    pub log: PathBuf,
}

/// An infrastructure event and the failures that followed it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Correlation {
    pub at: Timestamp,
    pub component: String,
    pub pod: String,
    pub what: String,
    pub detail: String,
    /// Failed suites that finished after it, in finishing order.
    pub failures_after: Vec<String>,
    /// Failed test cases that started after it, in the order they started.
    pub cases_after: Vec<CaseRecord>,
    /// Every failed test case of the run: the "of M" in "N of M".
    pub cases_total: usize,
    /// Failed suites without a failed test case of their own (no JUnit
    /// report, or one that hides the failure of the process) that finished
    /// after it.
    pub suites_after: Vec<String>,
    /// Every such suite of the run.
    pub suites_total: usize,
}

impl Correlation {
    /// Failures after it (test cases, and suites that reported none) and
    /// failures in all: "15 of 15 failures after it".
    pub fn failures(&self) -> (usize, usize) {
        (
            self.cases_after.len() + self.suites_after.len(),
            self.cases_total + self.suites_total,
        )
    }
}

impl RunReport {
    pub fn new(lane: impl Into<String>, run_id: impl Into<String>) -> Self {
        Self {
            lane: lane.into(),
            run_id: run_id.into(),
            ..Self::default()
        }
    }

    /// Adds one event. Output lines are not kept: they are in the suites' logs.
    pub fn record(&mut self, stamped: &Stamped) {
        match &stamped.event {
            Event::RunStarted { lane, run_id } => {
                self.lane = lane.clone();
                self.run_id = run_id.clone();
            }
            Event::TestCaseFailed {
                suite,
                case,
                classname,
                started,
                placed,
                seconds,
                message,
            } => self.cases.push(CaseRecord {
                attempt: self.attempt(),
                suite: suite.clone(),
                case: case.clone(),
                classname: classname.clone(),
                started: *started,
                placed: *placed,
                seconds: *seconds,
                message: message.clone(),
            }),
            Event::PhaseStarted { .. }
            | Event::SuiteStarted { .. }
            | Event::SuiteOutput { .. }
            | Event::HookStarted { .. }
            | Event::HookOutput { .. } => {}
            Event::HookFinished {
                hook,
                ok,
                outcome,
                seconds,
                log,
            } => self.hooks.push(HookRecord {
                hook: hook.clone(),
                ok: *ok,
                outcome: outcome.clone(),
                seconds: *seconds,
                log: log.clone(),
            }),
            Event::PhaseFinished {
                phase,
                seconds,
                ok,
                error,
                fix,
            } => self.phases.push(PhaseRecord {
                phase: *phase,
                seconds: *seconds,
                ok: *ok,
                error: error.clone(),
                fix: fix.clone(),
            }),
            Event::Image {
                image,
                outcome,
                seconds,
            } => self.images.push((image.clone(), outcome.clone(), *seconds)),
            Event::Load {
                image,
                node,
                skipped,
                bytes,
                seconds,
            } => self
                .loads
                .push((image.clone(), node.clone(), *skipped, *bytes, *seconds)),
            Event::ComponentReady { .. } | Event::PodTimeline { .. } => {
                self.pods.push(stamped.clone())
            }
            Event::Verdict {
                component,
                standing,
                summary,
                diagnosis,
            } => self.verdicts.push(VerdictRecord {
                at: stamped.at,
                component: component.clone(),
                standing: *standing,
                summary: summary.clone(),
                diagnosis: diagnosis.clone(),
            }),
            Event::Infra {
                component,
                pod,
                what,
                detail,
                evidence,
            } => self.infra.push(InfraRecord {
                at: stamped.at,
                component: component.clone(),
                pod: pod.clone(),
                what: what.clone(),
                detail: detail.clone(),
                evidence: evidence.clone(),
            }),
            Event::Retry { attempt, suites } => self.retries.push(RetryRecord {
                attempt: *attempt,
                suites: suites.clone(),
            }),
            Event::Recovery { ok, seconds, error } => self.recoveries.push(RecoveryRecord {
                at: stamped.at,
                ok: *ok,
                seconds: *seconds,
                error: error.clone(),
            }),
            Event::TestVerdict(verdict) => self.test_verdicts.push((**verdict).clone()),
            Event::SuiteFinished {
                suite,
                passed,
                outcome,
                seconds,
                log,
            } => self.suites.push(SuiteRecord {
                attempt: self.attempt(),
                suite: suite.clone(),
                passed: *passed,
                outcome: outcome.clone(),
                seconds: *seconds,
                log: log.clone(),
                finished: stamped.at,
            }),
            Event::Artifact { what, path } => self.artifacts.push((what.clone(), path.clone())),
            Event::Notice { notice } => self.notices.push(notice.to_string()),
            Event::Finished { exit_code, result } => {
                self.finished = Some((*exit_code, result.clone()));
            }
        }
    }

    /// The attempt the suite events now arriving belong to.
    fn attempt(&self) -> u32 {
        self.retries.last().map_or(1, |r| r.attempt)
    }

    /// Each suite's last attempt, in the order they first finished.
    pub fn final_suites(&self) -> Vec<&SuiteRecord> {
        let mut last: Vec<&SuiteRecord> = Vec::new();
        for s in &self.suites {
            match last.iter_mut().find(|l| l.suite == s.suite) {
                Some(l) => *l = s,
                None => last.push(s),
            }
        }
        last
    }

    /// The incidents of the timeline with their windows, as verdicts see
    /// them ([`crate::suites::verdict::windows`]).
    pub fn incident_windows(&self) -> Vec<crate::suites::verdict::Incident> {
        let timeline: Vec<crate::suites::verdict::Observed> = self
            .infra
            .iter()
            .map(|i| {
                let e = i.evidence.as_deref().cloned().unwrap_or_default();
                crate::suites::verdict::Observed {
                    at: i.at,
                    component: i.component.clone(),
                    pod: i.pod.clone(),
                    what: i.what.clone(),
                    detail: i.detail.clone(),
                    since: e.since,
                    container: e.container,
                    exit_code: e.exit_code,
                    limit: e.limit,
                    restarts: e.restarts,
                    log_tail: e.log_tail,
                }
            })
            .collect();
        let settled: Vec<Timestamp> = self
            .recoveries
            .iter()
            .filter(|r| r.ok)
            .map(|r| r.at)
            .collect();
        crate::suites::verdict::windows(&timeline, &settled)
    }

    pub fn failed_hooks(&self) -> impl Iterator<Item = &HookRecord> {
        self.hooks.iter().filter(|h| !h.ok)
    }

    /// The components that were not Ready when the deploy failed.
    pub fn unready(&self) -> impl Iterator<Item = &VerdictRecord> {
        self.verdicts.iter().filter(|v| !v.ready())
    }

    pub fn failed_suites(&self) -> impl Iterator<Item = &SuiteRecord> {
        self.suites.iter().filter(|s| !s.passed)
    }

    /// The failed test cases of one suite, in report order.
    pub fn cases_of<'a>(&'a self, suite: &'a str) -> impl Iterator<Item = &'a CaseRecord> {
        self.cases.iter().filter(move |c| c.suite == suite)
    }

    /// Failed suites that reported no failed test case of their own: each
    /// counts as one failure of its own.
    pub fn caseless_failed_suites(&self) -> impl Iterator<Item = &SuiteRecord> {
        self.failed_suites()
            .filter(|s| self.cases_of(&s.suite).next().is_none())
    }

    /// Each infrastructure event with the failures that followed it: the
    /// failed test cases that *started* after it ("15 of 15 failed test
    /// cases started after this incident"), and the failed suites without
    /// test cases that *finished* after it. A case that started before the
    /// incident is not counted, even if it failed after it: it was already
    /// running, and may have failed for its own reasons.
    pub fn correlate(&self) -> Vec<Correlation> {
        let mut cases: Vec<&CaseRecord> = self.cases.iter().collect();
        cases.sort_by_key(|c| c.started);
        let caseless: Vec<&SuiteRecord> = self.caseless_failed_suites().collect();
        self.infra
            .iter()
            .map(|i| Correlation {
                at: i.at,
                component: i.component.clone(),
                pod: i.pod.clone(),
                what: i.what.clone(),
                detail: i.detail.clone(),
                failures_after: self
                    .failed_suites()
                    .filter(|f| f.finished >= i.at)
                    .map(|f| f.suite.clone())
                    .collect(),
                cases_after: cases
                    .iter()
                    .filter(|c| c.started >= i.at)
                    .map(|c| (*c).clone())
                    .collect(),
                cases_total: cases.len(),
                suites_after: caseless
                    .iter()
                    .filter(|s| s.finished >= i.at)
                    .map(|s| s.suite.clone())
                    .collect(),
                suites_total: caseless.len(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn output_mode_table() {
        use OutputMode::*;
        // (json, terminal, ci) -> mode
        let cases = [
            ((false, true, false), Progress),
            ((false, true, true), Plain),
            ((false, false, false), Plain),
            ((false, false, true), Plain),
            ((true, true, false), Json),
            ((true, false, true), Json),
        ];
        for ((json, tty, ci), want) in cases {
            assert_eq!(OutputMode::choose(json, tty, ci), want, "{json} {tty} {ci}");
        }
    }

    #[test]
    fn ci_detection() {
        let env = |vars: &[(&str, &str)]| {
            let m: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| m.get(k).cloned()
        };
        assert!(is_ci(env(&[("CI", "true")])));
        assert!(is_ci(env(&[("GITHUB_ACTIONS", "true")])));
        assert!(!is_ci(env(&[("CI", "false")])));
        assert!(!is_ci(env(&[("CI", "")])));
        assert!(!is_ci(env(&[])));
    }

    pub(crate) fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A doomed component's diagnosis, as the deploy stage reports it.
    pub(crate) fn oom_reported() -> ReportedDiagnosis {
        oom_diagnosis().reported()
    }

    pub(crate) fn oom_diagnosis() -> crate::deploy::Diagnosis {
        use crate::deploy::{Diagnosis, Finding, Standing};
        use crate::k8s::evidence::{LogTail, LogText, PodEvidence};
        use crate::readiness::classify::{ContainerRef, Verdict, VerdictKind};
        use crate::readiness::evidence::Evidence;
        use crate::readiness::table::UnreadyRow;
        let verdict = Verdict {
            kind: VerdictKind::OomKilled {
                memory_limit: Some("512Mi".into()),
            },
            container: Some(ContainerRef {
                name: "datastorage".into(),
                init: false,
            }),
            message: "container datastorage was OOMKilled (exit 137) after 2 restarts; memory limit 512Mi".into(),
            hint: "raise resources.limits.memory".into(),
        };
        let log = |previous: bool, text: LogText| LogTail {
            container: "datastorage".into(),
            init: false,
            previous,
            text,
        };
        Diagnosis {
            component: "datastorage".into(),
            standing: Standing::Doomed,
            rows: vec![UnreadyRow {
                resource: "Deployment/harness-demo/datastorage".into(),
                state: crate::readiness::State::Failed,
                reason: "OOMKilled".into(),
                evidence: verdict.message.clone(),
                waiting: None,
            }],
            findings: vec![Finding {
                pod: "harness-demo/datastorage-7d9f-x2".into(),
                verdict: Some(verdict),
                waiting: None,
                evidence: PodEvidence {
                    pod: "harness-demo/datastorage-7d9f-x2".into(),
                    evidence: Evidence {
                        events: vec![],
                        terminations: vec![],
                        logs: vec![],
                    },
                    logs: vec![
                        log(false, LogText::Text("starting\n".into())),
                        log(true, LogText::Missing("not kept by the kubelet".into())),
                    ],
                },
            }],
            flaps: vec!["Ready for 2.1s, then container datastorage restarted (restarts 0 → 1; last exit 137, OOMKilled)".into()],
            ..Diagnosis::default()
        }
    }

    pub(crate) fn sample() -> RunReport {
        let mut r = RunReport::new("audit", "r-1a2b3c4d");
        let events = [
            (
                "2026-11-22T14:20:00Z",
                Event::PhaseFinished {
                    phase: Phase::Images,
                    seconds: 12.5,
                    ok: true,
                    error: None,
                    fix: None,
                },
            ),
            (
                "2026-11-22T14:20:00Z",
                Event::Image {
                    image: "datastorage".into(),
                    outcome: "built".into(),
                    seconds: 12.5,
                },
            ),
            (
                "2026-11-22T14:21:00Z",
                Event::PhaseFinished {
                    phase: Phase::Deploy,
                    seconds: 40.0,
                    ok: true,
                    error: None,
                    fix: None,
                },
            ),
            (
                "2026-11-22T14:22:10Z",
                Event::SuiteFinished {
                    suite: "early".into(),
                    passed: false,
                    outcome: "failed (exit code 1)".into(),
                    seconds: 60.0,
                    log: "logs/early.log".into(),
                },
            ),
            (
                "2026-11-22T14:22:40Z",
                Event::Infra {
                    component: "datastorage".into(),
                    pod: "datastorage-7d9f-x2".into(),
                    what: "OOMKilled".into(),
                    detail: "limit 512Mi".into(),
                    evidence: None,
                },
            ),
            (
                "2026-11-22T14:23:00Z",
                Event::SuiteFinished {
                    suite: "audit".into(),
                    passed: false,
                    outcome: "failed (exit code 1)".into(),
                    seconds: 90.0,
                    log: "logs/audit.log".into(),
                },
            ),
            // Read from audit's JUnit once the suites were over: one case
            // that started before the OOM kill, two after.
            (
                "2026-11-22T14:24:01Z",
                Event::TestCaseFailed {
                    suite: "audit".into(),
                    case: "[It] Audit pages through 75 events [audit]".into(),
                    classname: Some("Audit E2E Suite".into()),
                    started: at("2026-11-22T14:22:30Z"),
                    placed: Placed::Timeline,
                    seconds: Some(12.0),
                    message: Some("Expected 75, got 74".into()),
                },
            ),
            (
                "2026-11-22T14:24:01Z",
                Event::TestCaseFailed {
                    suite: "audit".into(),
                    case: "[It] Audit stores a batch [audit]".into(),
                    classname: Some("Audit E2E Suite".into()),
                    started: at("2026-11-22T14:22:45Z"),
                    placed: Placed::Timeline,
                    seconds: Some(2.0),
                    message: Some("connection refused".into()),
                },
            ),
            (
                "2026-11-22T14:24:01Z",
                Event::TestCaseFailed {
                    suite: "audit".into(),
                    case: "[It] Audit filters by type [audit]".into(),
                    classname: None,
                    started: at("2026-11-22T14:22:50Z"),
                    placed: Placed::Estimated,
                    seconds: None,
                    message: None,
                },
            ),
            (
                "2026-11-22T14:23:05Z",
                Event::SuiteFinished {
                    suite: "trail".into(),
                    passed: true,
                    outcome: "passed".into(),
                    seconds: 95.0,
                    log: "logs/trail.log".into(),
                },
            ),
            (
                "2026-11-22T14:24:00Z",
                Event::SuiteFinished {
                    suite: "load".into(),
                    passed: false,
                    outcome: "timed out after 15m".into(),
                    seconds: 900.0,
                    log: "logs/load.log".into(),
                },
            ),
        ];
        for (t, e) in events {
            r.record(&Stamped {
                at: at(t),
                event: e,
            });
        }
        r
    }

    #[test]
    fn infra_events_are_placed_before_the_failures_that_follow() {
        let r = sample();
        let c = r.correlate();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].what, "OOMKilled");
        // `early` failed before the OOM kill; `trail` passed.
        assert_eq!(
            c[0].failures_after,
            vec!["audit".to_string(), "load".to_string()]
        );
        // audit's failed test cases speak for it: two of its three started
        // after the kill; `load` reported none and finished after it.
        let names: Vec<&str> = c[0].cases_after.iter().map(|c| c.case.as_str()).collect();
        assert_eq!(
            names,
            [
                "[It] Audit stores a batch [audit]",
                "[It] Audit filters by type [audit]"
            ]
        );
        assert_eq!(c[0].cases_total, 3);
        assert_eq!(c[0].suites_after, ["load"]);
        assert_eq!(c[0].suites_total, 2, "early and load");
        assert_eq!(c[0].failures(), (3, 5));
    }

    /// The incident this feature exists for: a high-load spec crashed
    /// DataStorage, and the 15 specs after it failed. Read from a Ginkgo v2
    /// JUnit report as `--junit-report` writes it.
    #[test]
    fn a_cascade_is_attributed_per_test_case_from_a_ginkgo_junit_report() {
        use crate::suites::junit::{OwnReport, SuiteReports, Window, failed_cases};
        use crate::suites::runner::{Exit, Outcome, SuiteResult};
        let xml = include_str!("../../tests/fixtures/junit/ginkgo-cascade.xml");
        let suite = SuiteReports {
            result: SuiteResult {
                name: "audit".into(),
                outcome: Outcome::Failed(Exit::Code(1)),
                duration: std::time::Duration::from_secs(242),
                log_path: "logs/audit.log".into(),
                artifacts_dir: "artifacts/audit".into(),
                namespace: None,
            },
            own: vec![OwnReport::parse("junit-audit.xml".into(), xml)],
            log_tail: String::new(),
        };
        let window = Window {
            start: at("2026-11-22T14:19:58Z"),
            end: at("2026-11-22T14:24:00Z"),
        };
        let mut r = RunReport::new("audit", "r-1a2b3c4d");
        let mut record = |t: &str, event: Event| r.record(&Stamped { at: at(t), event });
        record(
            "2026-11-22T14:22:40Z",
            Event::Infra {
                component: "datastorage".into(),
                pod: "datastorage-7d9f-x2".into(),
                what: "OOMKilled".into(),
                detail: "container app: limit 512Mi; restarts 1".into(),
                evidence: None,
            },
        );
        record(
            "2026-11-22T14:24:00Z",
            Event::SuiteFinished {
                suite: "audit".into(),
                passed: false,
                outcome: "failed (exit code 1)".into(),
                seconds: 242.0,
                log: "logs/audit.log".into(),
            },
        );
        for case in failed_cases(&suite, window, 1, &jiff::tz::TimeZone::UTC) {
            record("2026-11-22T14:24:00Z", case.into());
        }
        let c = r.correlate();
        assert_eq!((c[0].cases_after.len(), c[0].cases_total), (15, 15));
        assert_eq!(c[0].suites_total, 0, "audit reported its failures itself");
        let text = render::text(&r);
        assert!(
            text.contains(
                "  14:22:40 datastorage OOMKilled (datastorage-7d9f-x2; container app: limit 512Mi; restarts 1)\n    15 of 15 failed test cases started after this incident:\n      14:22:41 audit: [It] Audit stores a batch of 150 events [audit]\n      14:22:43 audit: [It] Audit pages through 75 events [audit]\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "      14:23:13 audit: [It] Audit stores events of two controllers [audit]\n"
            ),
            "{text}"
        );
        let md = github::summary(&r);
        assert!(
            md.contains(
                "- **datastorage** OOMKilled 14:22:40 (container app: limit 512Mi; restarts 1) — 15 of 15 failures after it\n  - 14:22:41 `audit`: [It] Audit stores a batch of 150 events [audit]\n"
            ),
            "{md}"
        );
    }

    #[test]
    fn a_verdict_reads_back_from_its_json_line_as_it_was_emitted() {
        let diagnosis = oom_reported();
        assert_eq!(diagnosis.title().as_deref(), Some("OOMKilled"));
        assert!(diagnosis.hint().is_some_and(|h| !h.is_empty()));
        let event = Stamped {
            at: at("2026-11-22T14:22:40Z"),
            event: Event::Verdict {
                component: "datastorage".into(),
                standing: Standing::Doomed,
                summary: "component `datastorage` will not become Ready".into(),
                diagnosis: Some(Box::new(diagnosis.clone())),
            },
        };
        let line = serde_json::to_string(&event).unwrap();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        // `diagnose --output json`'s shape, and the text the report shows.
        assert_eq!(
            json["diagnosis"]["findings"][0]["verdict"]["name"],
            "OOMKilled"
        );
        assert_eq!(json["diagnosis"]["text"], diagnosis.text.as_str());
        let back: Stamped = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn events_serialize_as_tagged_json_lines() {
        let s = Stamped {
            at: at("2026-11-22T14:22:40Z"),
            event: Event::Infra {
                component: "datastorage".into(),
                pod: "p".into(),
                what: "OOMKilled".into(),
                detail: "limit 512Mi".into(),
                evidence: None,
            },
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["event"], "infra");
        assert_eq!(json["at"], "2026-11-22T14:22:40Z");
        assert_eq!(json["detail"], "limit 512Mi");
    }
}
