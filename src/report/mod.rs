//! One event stream, several sinks.
//!
//! Every stage reports what happens as an [`Event`]; nothing below `app`
//! prints. The same stream feeds the live output (progress bars on a
//! terminal, plain timestamped lines in CI, JSON lines for tools — chosen by
//! [`OutputMode::choose`]), and is folded into a [`RunReport`] for the final
//! summary, the GitHub Actions step summary and its `::error` annotations.
//! The infrastructure timeline is part of the report: a component that
//! restarts or is OOMKilled while suites run is shown next to the failures
//! that came after it.

pub mod bus;
pub mod github;
pub mod render;
pub mod sink;

use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;

/// A stage of the pipeline, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

/// Something that happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
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
    /// A component became Ready.
    ComponentReady {
        component: String,
        seconds: f64,
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
        standing: crate::deploy::Standing,
        /// One line: the verdict, deadline or error (or `Ready after 3.2s`).
        summary: String,
        /// The unready table and each verdict with its evidence.
        #[serde(skip_serializing_if = "Option::is_none")]
        diagnosis: Option<Box<crate::deploy::Diagnosis>>,
    },
    /// Something the infrastructure did while suites ran: a restart, an
    /// OOM kill, an eviction, a readiness flap.
    Infra {
        component: String,
        pod: String,
        what: String,
        detail: String,
    },
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
    Notice {
        message: String,
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
    pub hooks: Vec<HookRecord>,
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
    pub standing: crate::deploy::Standing,
    pub summary: String,
    pub diagnosis: Option<Box<crate::deploy::Diagnosis>>,
}

impl VerdictRecord {
    /// Whether the component was Ready (listed for completeness).
    pub fn ready(&self) -> bool {
        self.standing == crate::deploy::Standing::Ready
    }

    /// The name of its top verdict (`OOMKilled`), else its standing in words.
    pub fn title(&self) -> String {
        self.diagnosis
            .as_ref()
            .and_then(|d| d.findings.iter().find_map(|f| f.verdict.as_ref()))
            .map(|v| v.kind.name().to_owned())
            .or_else(|| {
                self.diagnosis
                    .as_ref()
                    .and_then(|d| d.rows.first())
                    .map(|r| r.reason.clone())
            })
            .unwrap_or_else(|| self.standing.describe().to_owned())
    }

    /// The hint of its top verdict, if it has one.
    pub fn hint(&self) -> Option<&str> {
        self.diagnosis
            .as_ref()
            .and_then(|d| d.findings.iter().find_map(|f| f.verdict.as_ref()))
            .map(|v| v.hint.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InfraRecord {
    pub at: Timestamp,
    pub component: String,
    pub pod: String,
    pub what: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SuiteRecord {
    pub suite: String,
    pub passed: bool,
    pub outcome: String,
    pub seconds: f64,
    pub log: PathBuf,
    pub finished: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HookRecord {
    pub hook: String,
    pub ok: bool,
    pub outcome: String,
    pub seconds: f64,
    pub log: PathBuf,
}

/// An infrastructure event and the suite failures that followed it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Correlation {
    pub at: Timestamp,
    pub component: String,
    pub pod: String,
    pub what: String,
    pub detail: String,
    /// Failed suites that finished after it, in finishing order.
    pub failures_after: Vec<String>,
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
            } => self.infra.push(InfraRecord {
                at: stamped.at,
                component: component.clone(),
                pod: pod.clone(),
                what: what.clone(),
                detail: detail.clone(),
            }),
            Event::SuiteFinished {
                suite,
                passed,
                outcome,
                seconds,
                log,
            } => self.suites.push(SuiteRecord {
                suite: suite.clone(),
                passed: *passed,
                outcome: outcome.clone(),
                seconds: *seconds,
                log: log.clone(),
                finished: stamped.at,
            }),
            Event::Artifact { what, path } => self.artifacts.push((what.clone(), path.clone())),
            Event::Notice { message } => self.notices.push(message.clone()),
            Event::Finished { exit_code, result } => {
                self.finished = Some((*exit_code, result.clone()));
            }
        }
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

    /// Each infrastructure event with the failed suites that finished after
    /// it: "datastorage OOMKilled at 14:22:40; 15 failures after this point".
    pub fn correlate(&self) -> Vec<Correlation> {
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
            },
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["event"], "infra");
        assert_eq!(json["at"], "2026-11-22T14:22:40Z");
        assert_eq!(json["detail"], "limit 512Mi");
    }
}
