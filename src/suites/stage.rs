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

/// Runs the selected suites of a lane; writes `junit.xml` into the run's
/// directory. `Ok(true)` when every suite passed.
pub async fn run_suites<P: NamespaceProvisioner + 'static>(
    ctx: &Ctx<'_>,
    specs: &[SuiteSpec],
    kubeconfig: &Path,
    jobs: Option<u32>,
    provisioner: Arc<P>,
    cancel: CancelToken,
) -> Result<(bool, RunSummary), StageFailure> {
    let (project, lane, bus, run_dir) = (ctx.project, ctx.lane, &ctx.bus, ctx.run_dir());
    let run_id = ctx.run_id.as_str();
    let jobs = jobs
        .and_then(|j| NonZeroUsize::new(j as usize))
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN);
    let config = RunConfig {
        run_id: run_id.to_owned(),
        kubeconfig: kubeconfig.to_path_buf(),
        artifacts_root: run_dir.join("suites"),
        endpoints: endpoints(project, lane),
        jobs,
        grace: Duration::from_secs(10),
    };
    bus.progress(crate::report::progress::Progress::SuitesPlanned {
        suites: specs.iter().map(|s| (s.name.clone(), s.timeout)).collect(),
    });
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
        crate::suites::run_suites(specs, &config, provisioner, &mut random, tx, cancel).await?;
    let windows = forward.await.unwrap_or_default();
    let junit = run_dir.join("junit.xml");
    let suites = crate::suites::junit::read_suites(&summary);
    let report =
        crate::suites::junit::report_of(&format!("harness {}", lane.name), &summary, &suites);
    crate::suites::junit::write_report(&report, &junit)?;
    let procs = |suite: &str| {
        lane.suites
            .iter()
            .find(|s| s.name == suite)
            .map(|s| s.procs)
    };
    for case in windows.failed_cases(&suites, procs, &jiff::tz::TimeZone::system()) {
        bus.emit(case.into());
    }
    bus.emit(Event::Artifact {
        what: "junit".into(),
        path: junit,
    });
    Ok((summary.passed(), summary))
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
        )
        .await
        .unwrap();
        drop(ctx);
        drop(bus);
        let report = task.await.unwrap();
        assert!(!passed);
        assert_eq!(summary.results.len(), 2);
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
}
