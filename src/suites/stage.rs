//! The suites stage inside a run: the lane's suites selected and specified
//! for the runner, their events told on the bus, the run's `junit.xml`
//! written, and each failed test case placed in time.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{Lane, Project};
use crate::exit::Exit;
use crate::failure::{Failure, StageFailure};
use crate::report::{Event, Notice};
use crate::stage::Ctx;
use crate::suites::verdict::FlakyResult;
use crate::suites::{
    CancelToken, NamespaceProvisioner, OsRandom, RunConfig, RunSummary, Shard, SuiteEvent,
    SuiteSpec,
};

/// Which of the lane's suites to run, and how many at once.
#[derive(Clone, Debug, Default)]
pub struct SuiteSelection {
    /// By name; empty for all.
    pub names: Vec<String>,
    pub shard: Option<Shard>,
    pub jobs: Option<u32>,
    /// How failed suites are run again.
    pub retry: RetryPolicy,
}

/// A suite named on the command line that the lane does not have.
#[derive(Debug, thiserror::Error)]
#[error("lane `{lane}` has no suite `{name}`{}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct UnknownSuite {
    pub lane: String,
    pub name: String,
    pub suggestion: Option<String>,
    pub suites: Vec<String>,
}

/// A suite that is not there is a usage error (2), with the suites there are.
impl Failure for UnknownSuite {
    fn exit(&self) -> Exit {
        Exit::Usage
    }

    fn fix(&self) -> Option<String> {
        Some(format!(
            "suites of lane {}: {}",
            self.lane,
            self.suites.join(", ")
        ))
    }
}

/// The suites to run, as the executor takes them: selected by name, then
/// by shard; `{procs}` in a command replaced by the suite's `procs`.
pub fn suite_specs(
    lane: &Lane,
    selection: &SuiteSelection,
) -> Result<Vec<SuiteSpec>, UnknownSuite> {
    let names: Vec<&str> = lane.suites.iter().map(|s| s.name.as_str()).collect();
    for wanted in &selection.names {
        if !names.contains(&wanted.as_str()) {
            return Err(UnknownSuite {
                lane: lane.name.clone(),
                name: wanted.clone(),
                suggestion: crate::config::diag::did_you_mean(wanted, names.iter().copied())
                    .map(str::to_owned),
                suites: names.iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    let specs: Vec<SuiteSpec> = lane
        .suites
        .iter()
        .filter(|s| selection.names.is_empty() || selection.names.contains(&s.name))
        .map(|s| SuiteSpec {
            name: s.name.clone(),
            command: s
                .command
                .iter()
                .map(|arg| OsString::from(arg.replace("{procs}", &s.procs.to_string())))
                .collect(),
            cwd: s.workdir.clone(),
            timeout: s.timeout,
            serial: s.serial,
            namespace_prefix: s.namespace_prefix.clone(),
            env: s
                .env
                .iter()
                .map(|(k, v)| (k.clone(), OsString::from(v)))
                .collect(),
        })
        .collect();
    Ok(match selection.shard {
        Some(shard) => shard.filter(specs),
        None => specs,
    })
}

/// Component name → endpoint URL in this lane, for the suites' environment.
pub fn endpoints(project: &Project, lane: &Lane) -> BTreeMap<String, String> {
    crate::plan::closure(project, &lane.components)
        .into_iter()
        .filter_map(|name| {
            let template = project.components[name.as_str()].endpoint.as_deref()?;
            lane.resolve_url(template).ok().map(|url| (name, url))
        })
        .collect()
}

/// The run's suite events as report events.
fn translate(event: SuiteEvent) -> Event {
    match event {
        SuiteEvent::Started {
            suite, namespace, ..
        } => Event::SuiteStarted { suite, namespace },
        SuiteEvent::Output { suite, line, .. } => Event::SuiteOutput { suite, line },
        SuiteEvent::Stopping { suite, reason } => Event::Notice {
            notice: Notice::Stopping {
                what: "suite".into(),
                name: suite,
                reason: format!("{reason:?}"),
            },
        },
        SuiteEvent::Finished(result) => Event::SuiteFinished {
            passed: !result.outcome.is_failure(),
            outcome: result.outcome.describe(),
            seconds: result.duration.as_secs_f64(),
            log: result.log_path,
            suite: result.name,
        },
    }
}

/// How failed suites are tried again.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryPolicy {
    /// `--retries`: how many times every failed suite runs again, over
    /// each suite's own `retries:`.
    pub retries: Option<u32>,
    /// `--flaky-result`: whether tests that passed only on a retry pass.
    pub flaky_result: FlakyResult,
}

impl RetryPolicy {
    /// How many times `suite` may run again.
    pub fn retries_of(&self, suite: &crate::config::Suite) -> u32 {
        self.retries.unwrap_or(suite.retries)
    }
}

/// What one run of the executor left, with when each suite's process ran.
struct Round {
    attempt: u32,
    summary: RunSummary,
    suites: Vec<(
        crate::suites::junit::SuiteReports,
        crate::suites::junit::Window,
    )>,
}

/// Whether a suite that ended so is run again: one that failed or timed
/// out, or could not start; not one stopped or skipped by an interrupt.
fn retryable(outcome: &crate::suites::Outcome) -> bool {
    use crate::suites::Outcome;
    matches!(
        outcome,
        Outcome::Failed(_) | Outcome::TimedOut { .. } | Outcome::Errored(_)
    )
}

/// The names of `suite`'s test cases that failed in `round` (in report
/// order), for a retry that runs only those.
fn failed_names(round: &Round, suite: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (reports, window) in &round.suites {
        if reports.result.name != suite {
            continue;
        }
        for case in
            crate::suites::junit::failed_cases(reports, *window, 1, &jiff::tz::TimeZone::UTC)
        {
            if !names.contains(&case.name) {
                names.push(case.name);
            }
        }
    }
    names
}

/// The name a Ginkgo (or `go test -run`) focus matches a test case by: its
/// JUnit name without Ginkgo's leading `[It] ` (the node type) and trailing
/// ` [label, …]` (its labels).
fn focus_text(name: &str) -> &str {
    let mut text = name.trim();
    if let Some(rest) = text.strip_prefix('[')
        && let Some((node, after)) = rest.split_once("] ")
        && node.starts_with(|c: char| c.is_ascii_uppercase())
        && node.chars().all(|c| c.is_ascii_alphabetic())
    {
        text = after;
    }
    if text.ends_with(']')
        && let Some(at) = text.rfind(" [")
    {
        text = &text[..at];
    }
    text
}

/// `{{failed}}` of a rerun command: the failed test cases as one regular
/// expression, `a|b|c`, each name escaped (as Ginkgo's `--focus` and `go
/// test -run` take it). Pure.
pub fn failed_pattern(names: &[String]) -> String {
    names
        .iter()
        .map(|n| regex::escape(focus_text(n)))
        .collect::<Vec<_>>()
        .join("|")
}

/// The spec of a retry of `spec` (attempt `attempt`): in a fresh namespace
/// like every run; its `rerun:` command when it has one and the failed test
/// cases are known (`{{failed}}` and `{{procs}}` filled), else its own
/// command; `HARNESS_ATTEMPT` and, on a retry, `HARNESS_FAILED_CASES` (one
/// name a line) in its environment. Pure.
pub fn attempt_spec(
    spec: &SuiteSpec,
    suite: Option<&crate::config::Suite>,
    attempt: u32,
    failed: &[String],
) -> SuiteSpec {
    let mut spec = spec.clone();
    spec.env.insert(
        "HARNESS_ATTEMPT".into(),
        OsString::from(attempt.to_string()),
    );
    if attempt > 1 {
        spec.env.insert(
            "HARNESS_FAILED_CASES".into(),
            OsString::from(failed.join("\n")),
        );
        if let Some(suite) = suite
            && let Some(rerun) = &suite.rerun
            && !failed.is_empty()
        {
            let pattern = failed_pattern(failed);
            spec.command = rerun
                .iter()
                .map(|arg| {
                    OsString::from(
                        arg.replace("{{failed}}", &pattern)
                            .replace("{procs}", &suite.procs.to_string()),
                    )
                })
                .collect();
        }
    }
    spec
}

/// Runs the selected suites of a lane, then the failed ones again (as
/// `policy` and each suite's `retries:` allow), each time in fresh
/// namespaces and only after `recover` confirmed every component Ready and
/// settled again; gives every failed test case its verdict; writes
/// `junit.xml` into the run's directory. `Ok(true)` when the suites passed
/// ([`crate::suites::verdict::suites_passed`]); every round's summary.
#[allow(clippy::too_many_arguments)]
pub async fn run_suites<P: NamespaceProvisioner + 'static>(
    ctx: &Ctx<'_>,
    specs: &[SuiteSpec],
    kubeconfig: &Path,
    jobs: Option<u32>,
    provisioner: Arc<P>,
    cancel: CancelToken,
    policy: RetryPolicy,
    recover: impl AsyncFn() -> Result<(), String>,
) -> Result<(bool, Vec<RunSummary>), StageFailure> {
    let (project, lane, bus, run_dir) = (ctx.project, ctx.lane, &ctx.bus, ctx.run_dir());
    let run_id = ctx.run_id.as_str();
    let jobs = jobs
        .and_then(|j| NonZeroUsize::new(j as usize))
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN);
    let mut config = RunConfig {
        run_id: run_id.to_owned(),
        kubeconfig: kubeconfig.to_path_buf(),
        artifacts_root: ctx.layout.suites_dir(run_id, 1),
        endpoints: endpoints(project, lane),
        jobs,
        grace: Duration::from_secs(10),
    };
    let suite_of = |name: &str| lane.suites.iter().find(|s| s.name == name);
    let procs = |name: &str| suite_of(name).map(|s| s.procs);
    let tz = jiff::tz::TimeZone::system();
    bus.progress(crate::report::progress::Progress::SuitesPlanned {
        suites: specs.iter().map(|s| (s.name.clone(), s.timeout)).collect(),
    });
    let mut rounds: Vec<Round> = Vec::new();
    let mut to_run: Vec<SuiteSpec> = specs
        .iter()
        .map(|s| attempt_spec(s, suite_of(&s.name), 1, &[]))
        .collect();
    let mut attempt = 1;
    loop {
        let round = run_round(
            bus,
            &to_run,
            &config,
            Arc::clone(&provisioner),
            cancel.clone(),
            attempt,
        )
        .await?;
        for (reports, window) in &round.suites {
            let procs = procs(&reports.result.name).unwrap_or(1);
            for case in crate::suites::junit::failed_cases(reports, *window, procs, &tz) {
                bus.emit(case.into());
            }
        }
        rounds.push(round);
        let last = rounds.last().expect("pushed above");
        let again: Vec<&SuiteSpec> = specs
            .iter()
            .filter(|s| {
                last.summary
                    .results
                    .iter()
                    .any(|r| r.name == s.name && retryable(&r.outcome))
                    && suite_of(&s.name).map_or(0, |suite| policy.retries_of(suite)) >= attempt
            })
            .collect();
        if again.is_empty() || cancel.is_cancelled() {
            break;
        }
        // Only on a cluster that is whole again does a retry say anything.
        let waited = std::time::Instant::now();
        let recovered = tokio::select! {
            recovered = recover() => recovered,
            () = cancel.cancelled() => break,
        };
        let ok = recovered.is_ok();
        bus.emit(Event::Recovery {
            ok,
            seconds: waited.elapsed().as_secs_f64(),
            error: recovered.err(),
        });
        // No recovery, no retry: the failures stand, blamed on what broke.
        if !ok {
            break;
        }
        attempt += 1;
        bus.emit(Event::Retry {
            attempt,
            suites: again.iter().map(|s| s.name.clone()).collect(),
        });
        config.artifacts_root = ctx.layout.suites_dir(run_id, attempt);
        to_run = again
            .into_iter()
            .map(|s| attempt_spec(s, suite_of(&s.name), attempt, &failed_names(last, &s.name)))
            .collect();
    }
    // The verdicts, against the incidents the watch has reported so far.
    let incidents = match bus.checkpoint().await {
        Some(checkpoint) => checkpoint.report.incident_windows(),
        None => Vec::new(),
    };
    let attempts: Vec<crate::suites::junit::AttemptReports> = rounds
        .iter()
        .map(|r| crate::suites::junit::AttemptReports {
            attempt: r.attempt,
            suites: r.suites.clone(),
        })
        .collect();
    let histories = crate::suites::junit::histories(&attempts, procs, &tz);
    let verdicts = crate::suites::verdict::classify(&histories, &incidents);
    for v in &verdicts {
        bus.emit(Event::TestVerdict(Box::new(v.clone())));
    }
    let junit = run_dir.join("junit.xml");
    let per_attempt: Vec<Vec<crate::suites::junit::SuiteReports>> = rounds
        .iter()
        .map(|r| r.suites.iter().map(|(s, _)| s.clone()).collect())
        .collect();
    let mut report = crate::suites::junit::merge_attempts(
        &format!("harness {}", lane.name),
        &per_attempt,
        &verdicts,
    );
    report.set_time(rounds.iter().map(|r| r.summary.duration).sum());
    crate::suites::junit::write_report(&report, &junit)?;
    bus.emit(Event::Artifact {
        what: "junit".into(),
        path: junit,
    });
    // Each suite as it ended on its last attempt.
    let every_suite_passed = specs.iter().all(|s| {
        rounds
            .iter()
            .rev()
            .find_map(|r| r.summary.results.iter().find(|x| x.name == s.name))
            .is_some_and(|r| !r.outcome.is_failure())
    });
    let passed =
        crate::suites::verdict::suites_passed(every_suite_passed, &verdicts, policy.flaky_result);
    Ok((passed, rounds.into_iter().map(|r| r.summary).collect()))
}

/// One run of the executor over `specs`: their events told on the bus,
/// their reports read.
async fn run_round<P: NamespaceProvisioner + 'static>(
    bus: &crate::report::bus::Bus,
    specs: &[SuiteSpec],
    config: &RunConfig,
    provisioner: Arc<P>,
    cancel: CancelToken,
    attempt: u32,
) -> Result<Round, StageFailure> {
    let (tx, mut rx) = mpsc::channel(256);
    let forward = {
        let bus = bus.clone();
        tokio::spawn(async move {
            // When each suite's process ran: its failed test cases are placed in it.
            let mut windows = crate::suites::junit::Windows::default();
            while let Some(event) = rx.recv().await {
                windows.observe(&event, jiff::Timestamp::now());
                bus.emit(translate(event));
            }
            windows
        })
    };
    let mut random = OsRandom;
    let summary =
        crate::suites::run_suites(specs, config, provisioner, &mut random, tx, cancel).await?;
    let windows = forward.await.unwrap_or_default();
    let suites = crate::suites::junit::read_suites(&summary)
        .into_iter()
        .filter_map(|reports| {
            let window = windows.of(&reports.result.name)?;
            Some((reports, window))
        })
        .collect();
    Ok(Round {
        attempt,
        summary,
        suites,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{RunReport, sink::Sink};
    use std::sync::Mutex;

    fn project(dir: &Path, suites: &str) -> Project {
        std::fs::write(
            dir.join("app.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
        )
        .unwrap();
        std::fs::write(dir.join("kind.yaml"), "nodes:\n- role: control-plane\n  extraPortMappings:\n  - {containerPort: 30090, hostPort: 28090}\n").unwrap();
        std::fs::write(
            dir.join("harness.yaml"),
            format!("components:\n  datastorage: {{ manifests: [app.yaml], health: {{ url: \"http://localhost:{{{{host_port.30090}}}}/health\" }} }}\nlanes:\n  main:\n    cluster: {{ kind: {{ config: kind.yaml }} }}\n    components: [datastorage]\n    suites:\n{suites}"),
        )
        .unwrap();
        crate::config::load(&dir.join("harness.yaml"))
            .unwrap_or_else(|e| panic!("{}", e.rendered().unwrap_or_default()))
    }

    #[test]
    fn selection_by_name_shard_and_procs() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(
            dir.path(),
            "      a: { command: [ginkgo, \"--procs={procs}\"], procs: 4, env: { LABEL_FILTER: audit } }\n      b: { command: [\"true\"], serial: true }\n      c: { command: [\"true\"] }\n",
        );
        let lane = &p.lanes["main"];
        let all = suite_specs(lane, &SuiteSelection::default()).unwrap();
        // The lane file's env reaches the spec the runner starts.
        assert_eq!(
            all[0].env,
            BTreeMap::from([("LABEL_FILTER".to_owned(), OsString::from("audit"))])
        );
        assert_eq!(
            all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(
            all[0].command,
            [OsString::from("ginkgo"), OsString::from("--procs=4")]
        );
        let one = suite_specs(
            lane,
            &SuiteSelection {
                names: vec!["c".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        let err = suite_specs(
            lane,
            &SuiteSelection {
                names: vec!["bb".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("lane `main` has no suite `bb`"),
            "{err}"
        );
        let mut seen = Vec::new();
        for m in 1..=2 {
            let shard: Shard = format!("{m}/2").parse().unwrap();
            seen.extend(
                suite_specs(
                    lane,
                    &SuiteSelection {
                        shard: Some(shard),
                        ..Default::default()
                    },
                )
                .unwrap()
                .into_iter()
                .map(|s| s.name),
            );
        }
        seen.sort();
        assert_eq!(seen, ["a", "b", "c"], "every suite in exactly one shard");
    }

    struct Collect(Arc<Mutex<Vec<Event>>>);
    impl Sink for Collect {
        fn emit(&mut self, e: &crate::report::Stamped) {
            self.0.lock().unwrap().push(e.event.clone());
        }
        fn progress(&mut self, _: &crate::report::progress::Progress, _: jiff::Timestamp) {}
    }

    #[tokio::test]
    async fn suites_run_with_the_endpoint_contract_and_write_junit() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(
            dir.path(),
            "      ok: { command: [sh, -c, 'echo \"endpoint=$HARNESS_ENDPOINT_DATASTORAGE\"'] }\n      bad: { command: [sh, -c, 'echo failing >&2; exit 3'] }\n",
        );
        let lane = &p.lanes["main"];
        let specs = suite_specs(lane, &SuiteSelection::default()).unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let (bus, task) =
            crate::report::bus::start(Box::new(Collect(events.clone())), RunReport::default());
        let ctx = Ctx::new(&p, lane, "r-test", bus.clone());
        let run = ctx.run_dir();
        let (passed, summary) = run_suites(
            &ctx,
            &specs,
            Path::new("/nonexistent/kubeconfig"),
            Some(2),
            Arc::new(crate::suites::NoNamespaces),
            CancelToken::never(),
            RetryPolicy::default(),
            async || panic!("no retries: no recovery to wait for"),
        )
        .await
        .unwrap();
        drop(ctx);
        drop(bus);
        let report = task.await.unwrap();
        assert!(!passed);
        assert_eq!(summary.len(), 1, "one round");
        assert_eq!(summary[0].results.len(), 2);
        // Without retries, a failure with no incident is real.
        let verdicts: Vec<(&str, crate::suites::verdict::Verdict)> = report
            .test_verdicts
            .iter()
            .map(|v| (v.case.as_str(), v.verdict))
            .collect();
        assert_eq!(verdicts, [("bad", crate::suites::verdict::Verdict::Real)]);
        let events = events.lock().unwrap();
        assert!(
            events.iter().any(|e| matches!(e, Event::SuiteOutput { suite, line } if suite == "ok" && line == "endpoint=http://localhost:28090")),
            "{events:#?}"
        );
        assert_eq!(
            report
                .failed_suites()
                .map(|s| s.suite.as_str())
                .collect::<Vec<_>>(),
            ["bad"]
        );
        let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
        assert!(
            junit.contains("bad") && junit.contains("<failure"),
            "{junit}"
        );
        assert!(report.artifacts.iter().any(|(what, _)| what == "junit"));
    }

    /// A suite writing a JUnit report of two cases: `first` fails on the
    /// first attempt, `second` passes; a retry runs only the cases its
    /// first argument names (`{{failed}}`), and records what it was given.
    const CASES: &str = r#"#!/bin/sh
printf '%s' "$1" > "$HARNESS_ARTIFACTS/focus"
printf '%s' "$HARNESS_FAILED_CASES" > "$HARNESS_ARTIFACTS/failed-cases"
cases=""
if [ "$HARNESS_ATTEMPT" = 1 ]; then
  cases='<testcase name="[It] first case [audit]" time="0.1"><failure message="boom on attempt 1" type="failed">at cases.sh:9</failure><system-out>first attempt said this</system-out></testcase><testcase name="second" time="0.1"/>'
  status=1
else
  echo "$1" | grep -q '^first case$' && cases='<testcase name="[It] first case [audit]" time="0.1"/>'
  status=0
fi
printf '<testsuite name="cases">%s</testsuite>' "$cases" > "$HARNESS_ARTIFACTS/junit.xml"
exit $status
"#;

    #[tokio::test]
    async fn failed_suites_run_again_after_recovery_and_every_failure_gets_a_verdict() {
        use crate::suites::verdict::Verdict;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cases.sh"), CASES).unwrap();
        let p = project(
            dir.path(),
            "      flaky: { command: [sh, -c, '[ \"$HARNESS_ATTEMPT\" != 1 ]'] }\n      real: { command: [sh, -c, 'echo \"attempt $HARNESS_ATTEMPT\"; exit 3'], retries: 2 }\n      cases: { command: [sh, cases.sh, all], rerun: [sh, cases.sh, '{{failed}}'] }\n      green: { command: [\"true\"] }\n",
        );
        let lane = &p.lanes["main"];
        assert_eq!(lane.suites[1].retries, 2);
        let specs = suite_specs(lane, &SuiteSelection::default()).unwrap();
        let (bus, task) = crate::report::bus::start(
            Box::new(Collect(Arc::new(Mutex::new(Vec::new())))),
            RunReport::default(),
        );
        let ctx = Ctx::new(&p, lane, "r-retry", bus.clone());
        let recoveries = std::sync::atomic::AtomicU32::new(0);
        let policy = RetryPolicy {
            retries: Some(1),
            flaky_result: FlakyResult::Pass,
        };
        let (passed, rounds) = run_suites(
            &ctx,
            &specs,
            Path::new("/nonexistent/kubeconfig"),
            Some(4),
            Arc::new(crate::suites::NoNamespaces),
            CancelToken::never(),
            policy,
            async || {
                recoveries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            },
        )
        .await
        .unwrap();
        let layout = ctx.layout.clone();
        drop(ctx);
        drop(bus);
        let report = task.await.unwrap();
        // --retries 1 wins over `real`'s own `retries: 2`: two rounds, one
        // recovery before the second; `green` never runs again.
        assert_eq!(rounds.len(), 2);
        assert_eq!(recoveries.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(report.retries.len(), 1);
        assert_eq!(report.retries[0].suites, ["flaky", "real", "cases"]);
        assert!(report.recoveries[0].ok);
        let verdicts: Vec<(&str, &str, Verdict, Option<u32>)> = report
            .test_verdicts
            .iter()
            .map(|v| (v.suite.as_str(), v.case.as_str(), v.verdict, v.passed_on()))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("flaky", "flaky", Verdict::Flaky, Some(2)),
                ("real", "real", Verdict::Real, None),
                ("cases", "[It] first case [audit]", Verdict::Flaky, Some(2)),
            ]
        );
        // The real one fails the run whatever --flaky-result says.
        assert!(!passed);
        // The retry ran only the failed case, told by `{{failed}}` (Ginkgo's
        // node type and labels dropped) and HARNESS_FAILED_CASES (as named).
        let retry = layout
            .suites_dir("r-retry", 2)
            .join("cases")
            .join("artifacts");
        assert_eq!(
            std::fs::read_to_string(retry.join("focus")).unwrap(),
            "first case"
        );
        assert_eq!(
            std::fs::read_to_string(retry.join("failed-cases")).unwrap(),
            "[It] first case [audit]"
        );
        assert!(
            layout
                .suites_dir("r-retry", 2)
                .join("real")
                .join("output.log")
                .exists()
        );
        assert!(!layout.suites_dir("r-retry", 2).join("green").exists());
        // The run's junit.xml: each case once, its earlier failure inside.
        let junit = std::fs::read_to_string(layout.run_dir("r-retry").join("junit.xml")).unwrap();
        let back = crate::suites::junit::parse_junit(&junit).unwrap();
        let cases: Vec<&quick_junit::TestCase> = back
            .test_suites
            .iter()
            .flat_map(|s| &s.test_cases)
            .collect();
        let first = cases
            .iter()
            .find(|c| c.name.as_str() == "[It] first case [audit]")
            .unwrap();
        let quick_junit::TestCaseStatus::Success { flaky_runs } = &first.status else {
            panic!("{junit}")
        };
        assert_eq!(flaky_runs.len(), 1);
        assert_eq!(flaky_runs[0].message.as_deref(), Some("boom on attempt 1"));
        assert_eq!(flaky_runs[0].stack_trace.as_deref(), Some("at cases.sh:9"));
        assert!(
            junit.contains("<flakyFailure message=\"boom on attempt 1\" type=\"failed\">"),
            "{junit}"
        );
        assert!(
            first
                .system_err
                .as_ref()
                .unwrap()
                .as_str()
                .contains("harness verdict: flaky")
        );
        assert_eq!(
            cases.iter().filter(|c| c.name.as_str() == "second").count(),
            1
        );
        let real = cases.iter().find(|c| c.name.as_str() == "real").unwrap();
        assert!(
            matches!(&real.status, quick_junit::TestCaseStatus::NonSuccess { reruns, .. } if reruns.runs.len() == 1),
            "{junit}"
        );
        assert!(
            junit.contains("<rerunFailure message=\"exited with status 3\" type=\"exit\">"),
            "{junit}"
        );
        let flaky = cases.iter().find(|c| c.name.as_str() == "flaky").unwrap();
        assert!(
            matches!(&flaky.status, quick_junit::TestCaseStatus::Success { flaky_runs } if flaky_runs.len() == 1)
        );
        assert_eq!((back.tests, back.failures), (5, 1), "{junit}");
        // The report lists every attempt, counted by the last.
        let text = crate::report::render::suites(&report);
        assert!(text.contains("suites: 3 passed, 1 failed (on their last attempt; failed ones were run again once)"), "{text}");
        assert!(text.contains("real (attempt 2)"), "{text}");
    }

    #[test]
    fn a_retry_runs_the_rerun_command_with_the_failed_cases() {
        let spec = SuiteSpec {
            name: "e2e".into(),
            command: vec!["ginkgo".into(), "./e2e".into()],
            cwd: ".".into(),
            timeout: Duration::from_secs(60),
            serial: false,
            namespace_prefix: "e2e".into(),
            env: BTreeMap::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = project(
            dir.path(),
            "      e2e: { command: [ginkgo, ./e2e], procs: 4, rerun: [ginkgo, \"--procs={procs}\", --focus, \"{{failed}}\", ./e2e] }\n",
        );
        let suite = &p.lanes["main"].suites[0];
        let failed = vec![
            "[It] Audit stores a batch of 150 events [audit, slow]".to_owned(),
            "pages (1+1)".to_owned(),
        ];
        let first = attempt_spec(&spec, Some(suite), 1, &failed);
        assert_eq!(first.command, spec.command);
        assert_eq!(first.env["HARNESS_ATTEMPT"], "1");
        assert!(!first.env.contains_key("HARNESS_FAILED_CASES"));
        let retry = attempt_spec(&spec, Some(suite), 2, &failed);
        assert_eq!(
            retry.command,
            [
                "ginkgo",
                "--procs=4",
                "--focus",
                r"Audit stores a batch of 150 events|pages \(1\+1\)",
                "./e2e"
            ]
            .map(OsString::from)
        );
        assert_eq!(retry.env["HARNESS_ATTEMPT"], "2");
        assert_eq!(
            retry.env["HARNESS_FAILED_CASES"],
            "[It] Audit stores a batch of 150 events [audit, slow]\npages (1+1)"
        );
        // No failed case known (no JUnit): the whole suite, as declared.
        assert_eq!(
            attempt_spec(&spec, Some(suite), 2, &[]).command,
            spec.command
        );
        // Focus texts of names that are not Ginkgo's are left as they are.
        for (name, want) in [
            ("[It] a [b]", "a"),
            ("plain", "plain"),
            ("[x] y", "[x] y"),
            ("[It]", "[It]"),
            ("ends [la, bel]", "ends"),
        ] {
            assert_eq!(focus_text(name), want, "{name}");
        }
    }
}
