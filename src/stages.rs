//! The real stages of a run, over the modules that do the work.
//!
//! [`crate::pipeline`] decides the order; this module turns a lane of the
//! lane file into calls of the suites runner (and, as they land, the image,
//! cluster, deploy and gather modules), translating their events into the
//! run's [`Event`] stream.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{Lane, Project};
use crate::exit::Exit;
use crate::pipeline::StageFailure;
use crate::report::Event;
use crate::report::bus::Bus;
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
            message: format!(
                "stopping suite {suite} ({reason:?}): SIGTERM sent to its process group"
            ),
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

/// Where a run keeps its files: `.harness/runs/<run id>/` beside the lane file.
pub fn run_dir(project: &Project, run_id: &str) -> PathBuf {
    project.root.join(".harness").join("runs").join(run_id)
}

/// Runs the selected suites of a lane; writes `junit.xml` into `run_dir`.
/// `Ok(true)` when every suite passed.
#[allow(clippy::too_many_arguments)]
pub async fn run_suites<P: NamespaceProvisioner + 'static>(
    project: &Project,
    lane: &Lane,
    specs: &[SuiteSpec],
    run_id: &str,
    run_dir: &Path,
    kubeconfig: &Path,
    jobs: Option<u32>,
    provisioner: Arc<P>,
    bus: &Bus,
    cancel: CancelToken,
) -> Result<(bool, RunSummary), StageFailure> {
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
    let summary = crate::suites::run_suites(specs, &config, provisioner, &mut random, tx, cancel)
        .await
        .map_err(|e| StageFailure::new(Exit::Usage, e))?;
    let windows = forward.await.unwrap_or_default();
    let junit = run_dir.join("junit.xml");
    let suites = crate::suites::junit::read_suites(&summary);
    let report =
        crate::suites::junit::report_of(&format!("harness {}", lane.name), &summary, &suites);
    crate::suites::junit::write_report(&report, &junit)
        .map_err(|e| StageFailure::new(Exit::Internal, e))?;
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
        let run = dir.path().join("run");
        let (passed, summary) = run_suites(
            &p,
            lane,
            &specs,
            "r-test",
            &run,
            Path::new("/nonexistent/kubeconfig"),
            Some(2),
            Arc::new(crate::suites::NoNamespaces),
            &bus,
            CancelToken::never(),
        )
        .await
        .unwrap();
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

// ------------------------------------------------------------------ up

/// How `up` should treat what already exists.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpOptions {
    /// Reuse a running cluster of exactly the lane's cluster name.
    pub reuse: bool,
    /// Rebuild images even when their content tag exists.
    pub rebuild: bool,
}

/// What `up` brought up, for the suites, gather and teardown.
#[derive(Clone, Debug)]
pub struct Environment {
    pub state: crate::cluster::state::LaneState,
    pub provider: crate::cluster::AnyProvider,
    /// Image name → reference, for `{{image.<name>}}`.
    pub images: indexmap::IndexMap<String, String>,
    /// The engine the images are in, which the load exports them from.
    pub docker: bollard::Docker,
}

/// Runs one phase with its start/finish events. A phase dropped half-way
/// (an interrupt cancels `up`) still reports that it finished, failed and
/// why, so a reader of the event stream never sees a phase left open. A
/// failure carries its whole cause chain and its fix, worded as
/// [`crate::failure`] words them everywhere else.
async fn phase<T, E: std::error::Error + 'static>(
    bus: &Bus,
    phase: crate::report::Phase,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    struct Open<'a> {
        bus: &'a Bus,
        phase: crate::report::Phase,
        started: std::time::Instant,
        outcome: Option<Option<(String, Option<String>)>>,
    }
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            let error = match self.outcome.take() {
                Some(error) => error,
                None => Some(("interrupted".to_owned(), None)),
            };
            let (error, fix) = match error {
                Some((error, fix)) => (Some(error), fix),
                None => (None, None),
            };
            self.bus.emit(Event::PhaseFinished {
                phase: self.phase,
                seconds: self.started.elapsed().as_secs_f64(),
                ok: error.is_none(),
                error,
                fix,
            });
        }
    }
    bus.emit(Event::PhaseStarted { phase });
    let mut open = Open {
        bus,
        phase,
        started: std::time::Instant::now(),
        outcome: None,
    };
    let result = work.await;
    open.outcome = Some(result.as_ref().err().map(|e| {
        let causes = crate::failure::causes_of(e);
        (crate::failure::text(&causes), crate::failure::fix(&causes))
    }));
    drop(open);
    result
}

/// Preflight, images, cluster: everything before the load and the deploy,
/// which [`load_and_deploy`] overlaps. The state file is written as soon
/// as a cluster exists, so that `down` can remove it even when a later
/// step fails.
pub async fn bring_up(
    project: &Project,
    lane: &Lane,
    options: UpOptions,
    run_id: &str,
    bus: &Bus,
) -> Result<Environment, crate::pipeline::UpFailure> {
    use crate::cluster::{AnyProvider, Provider, state};
    use crate::pipeline::UpFailure;
    use crate::report::Phase;
    let fail = |exit: Exit, error: anyhow::Error, cluster_exists: bool| UpFailure {
        failure: StageFailure::new(exit, error),
        cluster_exists,
    };
    let provider =
        AnyProvider::from_env(&lane.cluster).map_err(|e| fail(e.exit(), e.into(), false))?;

    // `up` again on a lane that is up reuses its cluster without --reuse,
    // and what an earlier `up` created stays this lane's to delete.
    let previous = state::read(&project.root, &lane.name)
        .ok()
        .filter(|s| s.cluster == lane.cluster.name && s.provider == provider.kind_name());
    let ours = previous.as_ref().is_some_and(|s| s.created);
    let reuse = options.reuse || previous.is_some();
    // Preflight. A reused cluster holds its own host ports: not a conflict.
    let reusing = reuse && provider.exists().await.unwrap_or(false);
    if reusing && previous.is_some() {
        bus.emit(Event::Notice {
            message: if ours {
                format!(
                    "reusing cluster {}, which harness up created for lane {} (harness down deletes it)",
                    lane.cluster.name, lane.name
                )
            } else {
                format!(
                    "reusing cluster {}, which harness did not create (harness down leaves it running)",
                    lane.cluster.name
                )
            },
        });
    }
    let state_dir = project.root.clone();
    phase(bus, Phase::Preflight, async {
        let mut report = crate::preflight::run(project, lane, &state_dir).await;
        if reusing {
            for check in report.checks.iter_mut().filter(|c| c.name == "ports") {
                check.status = crate::preflight::Status::Skip;
                check.summary = format!("reusing cluster {}, which holds them", lane.cluster.name);
                check.fix = None;
            }
        }
        // Each check once, a failure with its fix (the error that ends
        // `up` only names the checks).
        for check in &report.checks {
            bus.emit(Event::Notice {
                message: check.line(),
            });
        }
        if report.passed() {
            Ok(())
        } else {
            Err(crate::preflight::PreflightFailed(report))
        }
    })
    .await
    .map_err(|e| fail(Exit::Preflight, e.into(), false))?;

    // Images, through the engine the lane's kind drives (docker by default).
    let engine_kind = provider
        .engine()
        .unwrap_or(crate::config::EngineKind::Docker);
    let wanted = crate::images::lane_images(project, lane);
    let docker_and_images = phase(bus, Phase::Images, async {
        let endpoint = crate::engine::endpoint_from_env(engine_kind);
        // A lane with no images on an existing cluster needs no engine at
        // all: make the client without dialling (bollard connects lazily).
        let needs_engine = !wanted.is_empty() || provider.engine().is_some();
        let docker = if needs_engine {
            crate::engine::connect(&endpoint, Duration::from_secs(10))
                .await
                .map_err(|e| StageFailure::new(Exit::Preflight, e))?
                .0
        } else {
            bollard::Docker::connect_with_host(&endpoint.host)
                .map_err(|e| StageFailure::new(Exit::Preflight, e))?
        };
        // What the images copy from the host is built first.
        host_builds(project, lane, options.rebuild, bus).await?;
        let mut build = crate::images::BuildOptions::for_project(project);
        build.rebuild = options.rebuild;
        let (tx, mut rx) = mpsc::channel(64);
        let forward = {
            let bus = bus.clone();
            tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    use crate::images::ImageEvent;
                    use crate::report::progress::Progress;
                    match &event {
                        ImageEvent::Building { image, .. } | ImageEvent::Pulling { image, .. } => {
                            bus.progress(Progress::ImageStarted {
                                image: image.clone(),
                                pulling: matches!(event, ImageEvent::Pulling { .. }),
                            });
                        }
                        ImageEvent::Step { image, step } => bus.progress(Progress::ImageStep {
                            image: image.clone(),
                            step: step.clone(),
                        }),
                        ImageEvent::Line { .. } | ImageEvent::Done(_) => {}
                    }
                    if let crate::images::ImageEvent::Done(o) = event {
                        let (outcome, seconds) = match o.obtained {
                            crate::images::Obtained::Built { seconds } => {
                                ("built".to_string(), seconds)
                            }
                            crate::images::Obtained::Pulled { seconds } => {
                                ("pulled".to_string(), seconds)
                            }
                            crate::images::Obtained::Cached => {
                                ("cached (content tag present)".to_string(), 0.0)
                            }
                            crate::images::Obtained::Present => {
                                ("present in the engine".to_string(), 0.0)
                            }
                        };
                        bus.emit(Event::Image {
                            image: format!("{} ({})", o.image, o.reference),
                            outcome,
                            seconds,
                        });
                    }
                }
            })
        };
        let outcomes = crate::images::ensure(&docker, project, &wanted, &build, &tx).await;
        drop(tx);
        let _ = forward.await;
        // The fix is the error's own (`crate::failure::fix` finds it).
        let outcomes = outcomes.map_err(|e| StageFailure::new(e.exit(), e))?;
        Ok::<_, StageFailure>((docker, outcomes))
    })
    .await
    .map_err(|f| UpFailure {
        failure: f,
        cluster_exists: false,
    })?;
    let (docker, outcomes) = docker_and_images;
    let references = crate::images::references(&outcomes);

    // Cluster. Before kind starts creating one, the state file already says
    // this run creates it: an interrupt that kills kind half-way then still
    // leads to teardown deleting what kind made (kind cleans up after its
    // own failures, not after being killed).
    let mut lane_state = state::LaneState {
        lane: lane.name.clone(),
        cluster: lane.cluster.name.clone(),
        provider: provider.kind_name().to_owned(),
        engine: provider.engine().map(|e| e.as_str().to_owned()),
        kubeconfig: provider.kubeconfig().to_path_buf(),
        context: provider.context().map(str::to_owned),
        created: true,
        images: outcomes
            .iter()
            .map(|o| {
                (
                    o.image.clone(),
                    state::StateImage {
                        reference: o.reference.clone(),
                        built: matches!(
                            o.obtained,
                            crate::images::Obtained::Built { .. } | crate::images::Obtained::Cached
                        ),
                    },
                )
            })
            .collect(),
        // What an earlier `up` created in a cluster it did not make is
        // still to be removed by `down`.
        created_objects: previous
            .as_ref()
            .map(|p| p.created_objects.clone())
            .unwrap_or_default(),
        run_id: run_id.to_owned(),
        created_at: state::LaneState::now(),
    };
    let ensured = phase(bus, Phase::Cluster, async {
        let cluster = |e: crate::cluster::ClusterError| StageFailure::new(e.exit(), e);
        let creates = matches!(provider, AnyProvider::Kind(_))
            && !provider.exists().await.map_err(cluster)?;
        if creates {
            state::write(&project.root, &lane_state)
                .map_err(|e| StageFailure::new(Exit::Internal, e))?;
        }
        let ensured = provider.ensure(reuse).await;
        if ensured.is_err() && creates {
            // kind removed its half-made cluster itself; forget it too.
            let _ = state::remove(&project.root, &lane.name);
        }
        ensured.map_err(cluster)
    })
    .await
    .map_err(|failure| UpFailure {
        failure,
        cluster_exists: false,
    })?;
    lane_state.kubeconfig = ensured.kubeconfig.clone();
    lane_state.context = ensured.context.clone();
    lane_state.created = ensured.created || ours;
    state::write(&project.root, &lane_state).map_err(|e| fail(Exit::Internal, e.into(), true))?;

    lane_state.created_at = state::LaneState::now();
    Ok(Environment {
        state: lane_state,
        provider,
        images: references,
        docker,
    })
}

/// Runs the lane's host builds (`host_builds:`), each unless its inputs
/// are unchanged, telling the bus as image builds do.
async fn host_builds(
    project: &Project,
    lane: &Lane,
    rebuild: bool,
    bus: &Bus,
) -> Result<(), StageFailure> {
    use crate::images::host::{self, HostEvent};
    let names = host::lane_builds(project, lane);
    if names.is_empty() {
        return Ok(());
    }
    let mut opts = host::HostOptions::for_project(project);
    opts.rebuild = rebuild;
    let (tx, mut rx) = mpsc::channel(16);
    let forward = {
        let bus = bus.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                bus.emit(match event {
                    HostEvent::Started { name, command, log } => Event::Notice {
                        message: format!(
                            "host build {name}: running `{command}` (log {})",
                            log.display()
                        ),
                    },
                    HostEvent::Done(o) => Event::Image {
                        image: format!("host build {}", o.name),
                        outcome: if o.ran {
                            "ran".to_owned()
                        } else {
                            "skipped (inputs unchanged, outputs present)".to_owned()
                        },
                        seconds: o.seconds,
                    },
                });
            }
        })
    };
    let result = host::run(project, &names, &opts, &tx).await;
    drop(tx);
    let _ = forward.await;
    result.map(drop).map_err(|e| StageFailure::new(e.exit(), e))
}

/// Deletes what `up` created: the cluster when `up` made it (a reused or
/// existing cluster is left alone), then the state file.
pub async fn tear_down(project: &Project, lane: &str, bus: &Bus) -> Result<(), StageFailure> {
    use crate::cluster::{AnyProvider, Provider, state};
    let recorded =
        state::read(&project.root, lane).map_err(|e| StageFailure::new(Exit::Usage, e))?;
    let lane_spec = project.lanes.get(lane).ok_or_else(|| {
        StageFailure::new(
            Exit::Usage,
            anyhow::anyhow!("lane `{lane}` is no longer in the lane file"),
        )
    })?;
    phase(bus, crate::report::Phase::Teardown, async {
        if recorded.created {
            let provider = AnyProvider::from_env(&lane_spec.cluster)
                .map_err(|e| StageFailure::new(e.exit(), e))?;
            provider
                .delete()
                .await
                .map_err(|e| StageFailure::new(e.exit(), e))?;
        } else {
            remove_created(&recorded, bus).await?;
        }
        state::remove(&project.root, lane).map_err(|e| StageFailure::new(Exit::Internal, e))
    })
    .await
}

/// In a cluster `up` did not create: deletes what the run created there
/// (the state file's record) and leaves the cluster and everything that
/// was there before. A failure keeps the state, so `harness down` can try
/// again.
async fn remove_created(
    recorded: &crate::cluster::state::LaneState,
    bus: &Bus,
) -> Result<(), StageFailure> {
    use crate::cluster::created;
    let mut message = format!(
        "cluster {} was not created by harness; leaving it running",
        recorded.cluster
    );
    if recorded.created_objects.is_empty() {
        bus.emit(Event::Notice { message });
        return Ok(());
    }
    let client = client_for(recorded).await?;
    let removed = created::remove(&client, &recorded.created_objects, &recorded.run_id).await;
    if !removed.deleted.is_empty() {
        let names: Vec<String> = removed.deleted.iter().map(ToString::to_string).collect();
        message.push_str(&format!(
            ", and deleted what the run created in it: {}",
            names.join(", ")
        ));
    }
    bus.emit(Event::Notice { message });
    if removed.failed.is_empty() {
        return Ok(());
    }
    let failed: Vec<String> = removed
        .failed
        .iter()
        .map(|(r, why)| format!("{r} ({why})"))
        .collect();
    Err(StageFailure::new(
        Exit::Cluster,
        anyhow::anyhow!(
            "could not delete what the run created in cluster {}: {}; run `harness down --lane {}` to try again",
            recorded.cluster,
            failed.join("; "),
            recorded.lane
        ),
    ))
}

// ------------------------------------------------------------------ deploy, gather, the whole run

/// A fresh run id: `r-` and 8 random hex digits.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 4];
    // Without randomness, the time still makes a usable id.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    format!(
        "r-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A kube client for an environment `up` made.
pub async fn client_for(
    state: &crate::cluster::state::LaneState,
) -> Result<kube::Client, StageFailure> {
    let access = crate::k8s::ClusterAccess {
        kubeconfig: state.kubeconfig.clone(),
        context: state.context.clone(),
    };
    crate::k8s::connect(&access)
        .await
        .map_err(|e| StageFailure::new(Exit::Cluster, e))
}

/// Loads the lane's images into the cluster and deploys the lane, the two
/// overlapped. A component is applied once its dependencies are Ready (the
/// wave order, as always) and every image it runs is in every node: at
/// once for components without images (CRDs) and for images the nodes
/// already held, which the load reports before it streams anything; when
/// the load has finished for the rest. The deploy phase starts when its
/// first component can. A failed load stops the deploy (and exits as an
/// image failure), a failed deploy the load.
pub async fn load_and_deploy(
    client: &kube::Client,
    project: &Project,
    lane: &Lane,
    env: &Environment,
    deadline: tokio::time::Instant,
    bus: &Bus,
) -> Result<crate::deploy::DeployReport, StageFailure> {
    use crate::cluster::{Arrivals, ImageRef, LoadOutcome, LoadProgress, Provider};
    let refs: Vec<ImageRef> = env
        .images
        .iter()
        .map(|(name, reference)| ImageRef {
            name: name.clone(),
            reference: reference.clone(),
        })
        .collect();
    // The nodes the load reports on. Not knowing them only holds every
    // image-running component until the load has finished.
    let nodes = match refs.is_empty() {
        true => Vec::new(),
        false => env.provider.nodes(&env.docker).await.unwrap_or_default(),
    };
    let (arrived, arrivals) =
        tokio::sync::watch::channel(Arrivals::new(nodes.into_iter().map(|n| n.name)));
    let progress = |told: LoadProgress<'_>| {
        let load = match told {
            LoadProgress::Line(load) => load,
            LoadProgress::Sending(s) => {
                bus.progress(crate::report::progress::Progress::LoadSending {
                    node: s.node.clone(),
                    images: s.images.clone(),
                    sent: s.sent,
                    total: s.total,
                });
                return;
            }
        };
        let (skipped, bytes, seconds) = match load.outcome {
            LoadOutcome::Loaded { bytes, seconds } => (false, bytes, seconds),
            LoadOutcome::Skipped | LoadOutcome::Tagged | LoadOutcome::NotDelivered => {
                (true, 0, 0.0)
            }
        };
        bus.emit(Event::Load {
            image: load.image.clone(),
            node: load.node.clone(),
            skipped,
            bytes,
            seconds,
        });
        arrived.send_modify(|a| a.heard(load));
    };
    let load = async {
        phase(
            bus,
            crate::report::Phase::Load,
            env.provider.deliver(&env.docker, &refs, &progress),
        )
        .await
        .map_err(|e| StageFailure::new(e.exit(), e))?;
        arrived.send_modify(Arrivals::finish);
        Ok::<_, StageFailure>(())
    };
    let can_start = |images: &[String]| {
        let mut arrivals = arrivals.clone();
        let images = images.to_vec();
        async move {
            // The sender outlives both halves; should it go, wait forever
            // rather than deploy without the images.
            if arrivals
                .wait_for(|a| a.has_all(images.iter()))
                .await
                .is_err()
            {
                std::future::pending::<()>().await;
            }
        }
    };
    let deploy = async {
        // The deploy phase opens when its first component can start.
        let components = crate::plan::closure(project, &lane.components);
        let first_wave = crate::plan::waves(project, &components)
            .into_iter()
            .next()
            .unwrap_or_default();
        let _ = arrivals
            .clone()
            .wait_for(|a| {
                first_wave.is_empty()
                    || first_wave
                        .iter()
                        .any(|c| a.has_all(project.components[c.as_str()].images.iter()))
            })
            .await;
        deploy(client, project, lane, env, deadline, bus, |c| {
            can_start(&c.images)
        })
        .await
    };
    let ((), report) = tokio::try_join!(load, deploy)?;
    Ok(report)
}

/// Deploys the lane into the environment, each component once `ready`
/// says so, forwarding progress to the bus.
async fn deploy<F: std::future::Future<Output = ()>>(
    client: &kube::Client,
    project: &Project,
    lane: &Lane,
    env: &Environment,
    deadline: tokio::time::Instant,
    bus: &Bus,
    ready: impl Fn(&crate::config::Component) -> F,
) -> Result<crate::deploy::DeployReport, StageFailure> {
    use crate::deploy::DeployEvent;
    use crate::report::progress::Progress;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let waves = crate::plan::waves(project, &crate::plan::closure(project, &lane.components)).len();
    let forward = {
        let bus = bus.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                match &event {
                    DeployEvent::WaveStarted { wave, components } => {
                        bus.progress(Progress::DeployWave {
                            wave: *wave,
                            waves,
                            components: components.clone(),
                        })
                    }
                    DeployEvent::Live { component, state } => {
                        bus.progress(Progress::DeployLive {
                            component: component.clone(),
                            state: state.clone(),
                        });
                        continue;
                    }
                    _ => {}
                }
                let secs =
                    |t: Option<jiff::Timestamp>, from: Option<jiff::Timestamp>| match (t, from) {
                        (Some(t), Some(f)) => Some(t.duration_since(f).as_secs_f64()),
                        _ => None,
                    };
                let event = match event {
                    DeployEvent::ComponentReady { component, elapsed } => Event::ComponentReady {
                        component,
                        seconds: elapsed.as_secs_f64(),
                    },
                    DeployEvent::PodTimeline {
                        component,
                        pod,
                        timeline,
                    } => Event::PodTimeline {
                        component,
                        pod,
                        scheduled: secs(timeline.scheduled, timeline.created),
                        initialized: secs(timeline.initialized, timeline.created),
                        ready: secs(timeline.ready, timeline.created),
                    },
                    DeployEvent::WaveStarted { wave, components } => Event::Notice {
                        message: format!("deploy wave {wave}: {}", components.join(", ")),
                    },
                    DeployEvent::Healthy { component, url } => Event::Notice {
                        message: format!("{component} healthy at {url}"),
                    },
                    DeployEvent::Unsettled { component, what } => Event::Notice {
                        message: format!("{component}: readiness did not hold: {what}"),
                    },
                    DeployEvent::WatchFailing { component, message } => Event::Notice {
                        message: format!("{component}: {message}"),
                    },
                    DeployEvent::Verdict {
                        component,
                        standing,
                        summary,
                        diagnosis,
                    } => Event::Verdict {
                        component,
                        standing,
                        summary,
                        diagnosis: diagnosis
                            .map(|d| Box::new(crate::report::ReportedDiagnosis::new(&d))),
                    },
                    DeployEvent::Applied { .. }
                    | DeployEvent::Waiting { .. }
                    | DeployEvent::Live { .. } => continue,
                };
                bus.emit(event);
            }
        })
    };
    let result = phase(bus, crate::report::Phase::Deploy, async {
        if !env.state.created {
            record_created(client, project, lane, env).await;
        }
        crate::deploy::deploy_lane_when(client, project, lane, &env.images, tx, deadline, ready)
            .await
            .map_err(|e| {
                let exit = if e.is_timeout() {
                    Exit::Timeout
                } else {
                    Exit::Deploy
                };
                StageFailure::new(exit, e)
            })
    })
    .await;
    let _ = forward.await;
    result
}

/// On a cluster `up` did not create: records in the state file, before
/// anything is applied, which of the lane's objects and namespaces do not
/// exist yet, so that teardown removes what this run creates and nothing
/// that was there before (see [`crate::cluster::created`]).
async fn record_created(client: &kube::Client, project: &Project, lane: &Lane, env: &Environment) {
    use crate::cluster::{created, state};
    let mut objects: Vec<(kube::api::DynamicObject, String)> = Vec::new();
    let namespaces = crate::plan::plan(project, Some(&lane.name))
        .map(|p| p.lanes[0].namespaces.clone())
        .unwrap_or_default();
    objects.extend(created::namespaces(&namespaces));
    for name in crate::plan::closure(project, &lane.components) {
        let component = &project.components[name.as_str()];
        let namespace = lane.namespace_of(component).to_owned();
        // A manifest that cannot be rendered is deploy's to report.
        let Ok(rendered) = crate::deploy::manifests::render(component, lane, &env.images) else {
            continue;
        };
        let (crds, rest) = crate::deploy::manifests::crds_first(rendered);
        objects.extend(crds.into_iter().chain(rest).map(|o| (o, namespace.clone())));
    }
    let found = created::not_there(client, objects).await;
    let mut recorded = state::read(&project.root, &lane.name).unwrap_or_else(|_| env.state.clone());
    recorded.created_objects = created::merge(&recorded.created_objects, found);
    // Best effort: without it, teardown leaves the run's objects behind,
    // which is what happened before this record existed.
    let _ = state::write(&project.root, &recorded);
}

/// Every object the lane deploys, with its component, rendered as deploy
/// renders them: placeholders filled (image references stand in), so names
/// like `app-{{lane}}` come out as deployed and a manifest with an unquoted
/// `{{image.x}}` still parses. A component whose manifests cannot be
/// rendered is left out (deploy reports that).
fn rendered_objects(project: &Project, lane: &Lane) -> Vec<(String, kube::api::DynamicObject)> {
    let mut out = Vec::new();
    for name in crate::plan::closure(project, &lane.components) {
        let component = &project.components[name.as_str()];
        let images: indexmap::IndexMap<String, String> = component
            .images
            .iter()
            .map(|i| (i.clone(), format!("image-{i}")))
            .collect();
        if let Ok(objects) = crate::deploy::manifests::render(component, lane, &images) {
            out.extend(objects.into_iter().map(|o| (name.clone(), o)));
        }
    }
    out
}

/// The names of the CRDs the lane's manifests define, and every object they
/// declare.
fn declared_objects(
    project: &Project,
    lane: &Lane,
) -> (Vec<String>, Vec<crate::gather::kube::Declared>) {
    let mut crds = Vec::new();
    let mut declared = Vec::new();
    for (_, object) in rendered_objects(project, lane) {
        let (Some(types), Some(name)) = (&object.types, &object.metadata.name) else {
            continue;
        };
        if crate::deploy::manifests::is_crd(&object) {
            crds.push(name.clone());
        }
        declared.push(crate::gather::kube::Declared {
            api_version: types.api_version.clone(),
            kind: types.kind.clone(),
            name: name.clone(),
        });
    }
    (crds, declared)
}

/// Writes the must-gather bundle of a lane's environment: what the cluster
/// holds, and — when `story` is given — how the run went.
#[allow(clippy::too_many_arguments)]
pub async fn gather(
    client: &kube::Client,
    project: &Project,
    lane: &Lane,
    out: &Path,
    run_id: &str,
    extra_namespaces: Vec<String>,
    harness_files: Vec<(String, String)>,
    story: Option<&crate::gather::story::Story>,
    since: Option<Duration>,
    max_size: Option<u64>,
    bus: &Bus,
) -> Result<crate::gather::Bundle, StageFailure> {
    let plan = crate::plan::plan(project, Some(&lane.name))
        .map_err(|e| StageFailure::new(Exit::Usage, e))?;
    let mut namespaces = plan.lanes[0].namespaces.clone();
    namespaces.extend(extra_namespaces);
    namespaces.dedup();
    let name = format!("must-gather-{}-{run_id}", lane.name);
    std::fs::create_dir_all(out).map_err(|e| StageFailure::new(Exit::Gather, e))?;
    let about = vec![
        format!("lane: {}", lane.name),
        format!("cluster: {}", lane.cluster.name),
        format!("run: {run_id}"),
        format!("collected: {}", jiff::Timestamp::now()),
        format!("namespaces: {}", namespaces.join(", ")),
    ];
    let mut writer = crate::gather::BundleWriter::create(out, &name, about)
        .map_err(|e| StageFailure::new(Exit::Gather, e))?;
    let (crds, mut declared) = declared_objects(project, lane);
    // The Namespace objects themselves (phase, finalizers, conditions).
    declared.extend(namespaces.iter().map(|ns| crate::gather::kube::Declared {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        name: ns.clone(),
    }));
    let source = crate::gather::kube::KubeSource::new(client.clone(), crds).with_declared(declared);
    let request = crate::gather::collect::Request {
        namespaces,
        since,
        concurrency: 8,
        harness_files,
        // Well inside the gather budget (at least a minute), so one request
        // that never answers costs its collector, not the bundle.
        collector_timeout: Some(Duration::from_secs(30)),
        progress: Some({
            let bus = bus.clone();
            crate::gather::collect::Told(Arc::new(move |done, total| {
                bus.progress(crate::report::progress::Progress::Collectors { done, total })
            }))
        }),
    };
    crate::gather::story::collect(client, project, lane, &source, &request, &mut writer, story)
        .await;
    if let crate::config::ClusterProvider::Kind(kind) = &lane.cluster.provider {
        kind_node_logs(kind.engine, &lane.cluster.name, &writer).await;
    }
    writer
        .finish(max_size)
        .map_err(|e| StageFailure::new(Exit::Gather, e))
}

/// The kind node logs (journal, kubelet, containerd, pods), as `kind export
/// logs` collects them, into the bundle's `kind/`, scrubbed like every other
/// file. kind exits 1 when one of its own collectors fails although it wrote
/// the rest (no `crictl` in some node images): that is recorded, not fatal.
async fn kind_node_logs(
    engine: crate::config::EngineKind,
    cluster: &str,
    writer: &crate::gather::BundleWriter,
) {
    let dir = writer.staging_dir().join("kind");
    let cli = crate::cluster::KindCli::new(engine);
    let args = vec![
        "export".to_string(),
        "logs".into(),
        dir.display().to_string(),
        "--name".into(),
        cluster.to_owned(),
    ];
    match tokio::time::timeout(Duration::from_secs(120), cli.run(&args, cluster)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => writer.record_failure("kind export logs", e),
        Err(_) => writer.record_failure("kind export logs", "did not finish within 120s"),
    }
    if let Err(e) = writer.scrub_tree(Path::new("kind")) {
        writer.record_failure("kind export logs (redaction)", e);
    }
}

/// The stages of `harness test` over a real environment.
pub struct RealStages<'a> {
    pub project: &'a Project,
    pub lane: &'a Lane,
    pub up: UpOptions,
    pub selection: SuiteSelection,
    pub run_id: String,
    pub run_dir: PathBuf,
    pub bus: Bus,
    /// The environment was already up (`harness up` earlier): use it, and
    /// never tear it down.
    pub existing: Option<crate::cluster::state::LaneState>,
    pub deadline: tokio::time::Instant,
    env: Option<Environment>,
    client: Option<kube::Client>,
    suite_namespaces: Vec<String>,
    failure_notes: Vec<String>,
    /// `Some(passed)` once the suites ran, for the hooks' `HARNESS_SUITES`.
    suites_passed: Option<bool>,
}

impl<'a> RealStages<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        project: &'a Project,
        lane: &'a Lane,
        up: UpOptions,
        selection: SuiteSelection,
        run_id: String,
        bus: Bus,
        existing: Option<crate::cluster::state::LaneState>,
        deadline: tokio::time::Instant,
    ) -> Self {
        let run_dir = run_dir(project, &run_id);
        Self {
            project,
            lane,
            up,
            selection,
            run_id,
            run_dir,
            bus,
            existing,
            deadline,
            env: None,
            client: None,
            suite_namespaces: Vec::new(),
            failure_notes: Vec::new(),
            suites_passed: None,
        }
    }

    /// Deletes the suites' namespaces without blocking for long: each has
    /// the provisioner's own deletion timeout; stuck ones are reported.
    pub async fn delete_suite_namespaces(&self) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let namespaces = crate::k8s::KubeNamespaces::new(client, self.run_id.clone());
        let deletions = self.suite_namespaces.iter().map(|ns| {
            let namespaces = &namespaces;
            async move { (ns.clone(), namespaces.delete(ns).await) }
        });
        for (ns, result) in futures_util::future::join_all(deletions).await {
            let message = match result {
                Ok(()) => format!("deleted suite namespace {ns}"),
                Err(e) => format!("suite namespace {ns} was not deleted: {e}"),
            };
            self.bus.emit(Event::Notice { message });
        }
    }

    /// Whether the closing teardown may delete the cluster: only one this run made.
    pub fn owns_cluster(&self) -> bool {
        self.existing.is_none() && self.env.as_ref().is_some_and(|e| e.state.created)
    }
}

impl crate::pipeline::Stages for RealStages<'_> {
    async fn up(&mut self, cancel: CancelToken) -> Result<(), crate::pipeline::UpFailure> {
        use crate::pipeline::UpFailure;
        if let Some(state) = self.existing.clone() {
            let client = client_for(&state).await.map_err(|failure| UpFailure {
                failure,
                cluster_exists: false,
            })?;
            self.client = Some(client);
            self.bus.emit(Event::Notice {
                message: format!(
                    "using the environment harness up made for lane {} (cluster {})",
                    state.lane, state.cluster
                ),
            });
            return Ok(());
        }
        let work = async {
            let env = bring_up(self.project, self.lane, self.up, &self.run_id, &self.bus).await?;
            let exists = |failure| UpFailure {
                failure,
                cluster_exists: true,
            };
            let client = client_for(&env.state).await.map_err(exists)?;
            self.env = Some(env);
            self.client = Some(client.clone());
            let env = self.env.as_ref().expect("set above");
            load_and_deploy(
                &client,
                self.project,
                self.lane,
                env,
                self.deadline,
                &self.bus,
            )
            .await
            .map(drop)
            .map_err(|failure| {
                // The bundle's diagnosis.txt: the error, then every failed
                // component's table and evidence.
                let mut note = failure.to_string();
                if let Some(e) = failure
                    .error
                    .chain()
                    .find_map(|c| c.downcast_ref::<crate::deploy::DeployError>())
                {
                    for d in e.diagnoses() {
                        note.push_str("\n\n");
                        note.push_str(&d.render());
                    }
                }
                self.failure_notes.push(note);
                exists(failure)
            })
        };
        tokio::select! {
            result = work => result,
            () = cancel.cancelled() => Err(UpFailure {
                failure: StageFailure::new(Exit::Interrupted, anyhow::anyhow!("interrupted while bringing the lane up")),
                cluster_exists: self.env.is_some() || crate::cluster::state::read(&self.project.root, &self.lane.name).is_ok(),
            }),
        }
    }

    async fn suites(&mut self, cancel: CancelToken) -> Result<bool, StageFailure> {
        let specs = suite_specs(self.lane, &self.selection)
            .map_err(|e| StageFailure::new(Exit::Usage, e))?;
        let client = self.client.clone().ok_or_else(|| {
            StageFailure::new(Exit::Internal, anyhow::anyhow!("no cluster client"))
        })?;
        let kubeconfig = match (&self.env, &self.existing) {
            (Some(env), _) => env.state.kubeconfig.clone(),
            (None, Some(state)) => state.kubeconfig.clone(),
            (None, None) => {
                return Err(StageFailure::new(
                    Exit::Internal,
                    anyhow::anyhow!("no environment"),
                ));
            }
        };
        let provisioner = Arc::new(crate::k8s::KubeNamespaces::new(
            client.clone(),
            self.run_id.clone(),
        ));
        let lane_namespaces = crate::plan::plan(self.project, Some(&self.lane.name))
            .map(|p| p.lanes[0].namespaces.clone())
            .unwrap_or_default();
        let watcher = watch_infrastructure(
            client,
            lane_namespaces,
            workloads(self.project, self.lane),
            self.bus.clone(),
        );
        let result = phase(&self.bus, crate::report::Phase::Suites, async {
            let (passed, summary) = run_suites(
                self.project,
                self.lane,
                &specs,
                &self.run_id,
                &self.run_dir,
                &kubeconfig,
                self.selection.jobs,
                provisioner,
                &self.bus,
                cancel,
            )
            .await?;
            self.suite_namespaces = summary
                .results
                .iter()
                .filter_map(|r| r.namespace.clone())
                .collect();
            Ok::<_, StageFailure>(passed)
        })
        .await;
        watcher.abort();
        self.suites_passed = result.as_ref().ok().copied();
        result
    }

    async fn gather(&mut self, so_far: Exit) -> Result<PathBuf, StageFailure> {
        // `up` interrupted after the cluster came up but before it made a
        // client: the state file knows how to reach the cluster.
        if self.client.is_none()
            && let Ok(state) = crate::cluster::state::read(&self.project.root, &self.lane.name)
        {
            self.client = client_for(&state).await.ok();
        }
        let client = self.client.clone().ok_or_else(|| {
            StageFailure::new(
                Exit::Gather,
                anyhow::anyhow!(
                    "no cluster to gather from: cluster {} was never reached",
                    self.lane.cluster.name
                ),
            )
        })?;
        let notes = self.failure_notes.join("\n\n");
        let out = self.run_dir.join("gather");
        let bus = self.bus.clone();
        let bundle = phase(&self.bus, crate::report::Phase::Gather, async {
            // Everything the run reported up to here, the gather's start included.
            let mut story = bus
                .checkpoint()
                .await
                .map(|c| crate::gather::story::Story::at_gather(c, so_far));
            if let Some(story) = story.as_mut().filter(|_| !notes.is_empty()) {
                story.files.push(("deploy-failure.txt".into(), notes));
            }
            gather(
                &client,
                self.project,
                self.lane,
                &out,
                &self.run_id,
                self.suite_namespaces.clone(),
                Vec::new(),
                story.as_ref(),
                None,
                None,
                &bus,
            )
            .await
        })
        .await?;
        self.bus.emit(Event::Artifact {
            what: "bundle".into(),
            path: bundle.archive.clone(),
        });
        Ok(bundle.archive)
    }

    async fn hooks(&mut self) -> Result<(), StageFailure> {
        // The cluster's kubeconfig: from this run's `up`, the environment
        // that was up before, or the state file (`up` failed after the
        // cluster existed).
        let kubeconfig = match (&self.env, &self.existing) {
            (Some(env), _) => env.state.kubeconfig.clone(),
            (None, Some(state)) => state.kubeconfig.clone(),
            (None, None) => {
                crate::cluster::state::read(&self.project.root, &self.lane.name)
                    .map_err(|e| StageFailure::new(Exit::Cluster, e))?
                    .kubeconfig
            }
        };
        let suites = match self.suites_passed {
            Some(true) => crate::hooks::SuitesOutcome::Passed,
            Some(false) => crate::hooks::SuitesOutcome::Failed,
            None => crate::hooks::SuitesOutcome::NotRun,
        };
        let context = hook_context(
            self.project,
            self.lane,
            &self.run_dir,
            &self.run_id,
            kubeconfig,
            suites,
        );
        run_hooks(&self.lane.after_suites, &context, &self.bus).await
    }

    async fn teardown(&mut self) -> Result<(), StageFailure> {
        if self.existing.is_some() {
            self.bus.emit(Event::Notice {
                message: format!(
                    "the environment of lane {} was up before this run; leaving it as it is",
                    self.lane.name
                ),
            });
            return Ok(());
        }
        // This run brought the lane up: forget it, and delete the cluster
        // only if this run created it (tear_down checks).
        tear_down(self.project, &self.lane.name, &self.bus).await
    }
}

// ------------------------------------------------------------------ post-suite hooks

/// Time a hook has between SIGTERM and SIGKILL, as suites have.
pub const HOOK_GRACE: Duration = Duration::from_secs(10);

/// What the lane's hooks are told in this run; their files go to
/// `<run_dir>/hooks/`.
pub fn hook_context(
    project: &Project,
    lane: &Lane,
    run_dir: &Path,
    run_id: &str,
    kubeconfig: PathBuf,
    suites: crate::hooks::SuitesOutcome,
) -> crate::hooks::HookContext {
    crate::hooks::HookContext {
        lane: lane.name.clone(),
        run_id: run_id.to_owned(),
        config_file: project.file.clone(),
        kubeconfig,
        endpoints: endpoints(project, lane),
        suites,
        dir: run_dir.join("hooks"),
        grace: HOOK_GRACE,
    }
}

/// Runs post-suite hooks in order as the `hooks` phase, reporting each on
/// the bus. A hook that fails, times out or cannot start fails the step
/// with exit 1 (like a suite: the user's own command failed), after every
/// hook has run; the pipeline still tears down, and keeps an earlier
/// failure's exit code.
pub async fn run_hooks(
    hooks: &[crate::config::Hook],
    context: &crate::hooks::HookContext,
    bus: &Bus,
) -> Result<(), StageFailure> {
    let (tx, mut rx) = mpsc::channel(256);
    let forward = {
        let bus = bus.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let event = match event {
                    SuiteEvent::Started {
                        suite, log_path, ..
                    } => Event::HookStarted {
                        hook: suite,
                        log: log_path,
                    },
                    SuiteEvent::Output { suite, line, .. } => {
                        Event::HookOutput { hook: suite, line }
                    }
                    SuiteEvent::Stopping { suite, reason } => Event::Notice {
                        message: format!(
                            "stopping hook {suite} ({reason:?}): SIGTERM sent to its process group"
                        ),
                    },
                    SuiteEvent::Finished(result) => Event::HookFinished {
                        ok: !result.outcome.is_failure(),
                        outcome: result.outcome.describe(),
                        seconds: result.duration.as_secs_f64(),
                        log: result.log_path,
                        hook: result.name,
                    },
                };
                bus.emit(event);
            }
        })
    };
    let result = phase(bus, crate::report::Phase::Hooks, async {
        let results = crate::hooks::run(hooks, context, tx)
            .await
            .map_err(|e| StageFailure::new(Exit::Usage, e))?;
        crate::hooks::verdict(&results).map_err(|e| StageFailure::new(Exit::SuitesFailed, e))
    })
    .await;
    let _ = forward.await;
    result
}

// ------------------------------------------------------------------ the infrastructure timeline

/// Workload name → component, from the kinds of objects that own pods in
/// each component's rendered manifests.
pub fn workloads(project: &Project, lane: &Lane) -> BTreeMap<String, String> {
    rendered_objects(project, lane)
        .into_iter()
        .filter(|(_, object)| {
            object.types.as_ref().is_some_and(|t| {
                matches!(
                    t.kind.as_str(),
                    "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "Pod"
                )
            })
        })
        .filter_map(|(component, object)| Some((object.metadata.name?, component)))
        .collect()
}

/// The component a pod belongs to: through its owner (a ReplicaSet's name
/// is its Deployment's plus a hash), else its own name.
pub fn component_of(
    pod: &k8s_openapi::api::core::v1::Pod,
    workloads: &BTreeMap<String, String>,
) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let candidates: Vec<String> = match owner {
        Some(o) if o.kind == "ReplicaSet" => vec![
            o.name
                .rsplit_once('-')
                .map_or(o.name.clone(), |(d, _)| d.to_owned()),
        ],
        Some(o) => vec![o.name.clone()],
        None => vec![pod.metadata.name.clone().unwrap_or_default()],
    };
    candidates
        .into_iter()
        .find_map(|c| workloads.get(&c).cloned())
}

/// Watches the lane's pods and reports what the infrastructure does, as
/// [`Event::Infra`], until aborted. The pods as they are when the watch
/// starts are the baseline: only what happens afterwards is reported.
pub fn watch_infrastructure(
    client: kube::Client,
    namespaces: Vec<String>,
    workloads: BTreeMap<String, String>,
    bus: Bus,
) -> tokio::task::JoinHandle<()> {
    use futures_util::StreamExt as _;
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::watcher;
    tokio::spawn(async move {
        let streams = namespaces.into_iter().map(|ns| {
            let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &ns);
            watcher::watcher(api, watcher::Config::default()).boxed()
        });
        let mut events = futures_util::stream::select_all(streams);
        let mut tracker = crate::timeline::Tracker::new();
        while let Some(event) = events.next().await {
            let incidents = match event {
                Ok(watcher::Event::InitApply(pod)) => {
                    tracker.observe(&pod);
                    continue;
                }
                Ok(watcher::Event::Apply(pod)) => tracker
                    .observe(&pod)
                    .into_iter()
                    .map(|i| (i, pod.clone()))
                    .collect::<Vec<_>>(),
                Ok(watcher::Event::Delete(pod)) => vec![(tracker.deleted(&pod), pod)],
                Ok(_) => continue,
                // The watcher retries by itself; a gap in the timeline is
                // not worth failing the run for.
                Err(_) => continue,
            };
            for (incident, pod) in incidents {
                let component = component_of(&pod, &workloads).unwrap_or_else(|| "-".into());
                let detail = match &incident.container {
                    Some(c) => format!("container {c}: {}", incident.detail),
                    None => incident.detail.clone(),
                };
                bus.emit(Event::Infra {
                    component,
                    pod: incident.pod,
                    what: incident.what.to_string(),
                    detail,
                });
            }
        }
    })
}

#[cfg(test)]
mod timeline_tests {
    use super::*;

    #[test]
    fn workload_names_are_read_as_deployed_placeholders_filled() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("web.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web-{{lane}}}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: {{image.web}}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("harness.yaml"),
            "images:\n  web: {pull: example.com/web:1}\ncomponents:\n  web: {manifests: [web.yaml], images: [web]}\nlanes:\n  audit: {components: [web]}\n",
        )
        .unwrap();
        let project = crate::config::load(&dir.path().join("harness.yaml"))
            .unwrap_or_else(|e| panic!("{}", e.rendered().unwrap_or_default()));
        let map = workloads(&project, &project.lanes["audit"]);
        assert_eq!(
            map,
            BTreeMap::from([("web-audit".to_owned(), "web".to_owned())])
        );
    }

    #[test]
    fn pods_map_to_components_through_their_owners() {
        let project =
            crate::config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("harness.yaml"))
                .unwrap();
        let lane = &project.lanes["audit"];
        let map = workloads(&project, lane);
        assert_eq!(
            map.get("datastorage").map(String::as_str),
            Some("datastorage")
        );
        assert_eq!(
            map.get("audit-migrations").map(String::as_str),
            Some("migrations")
        );
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "datastorage-7d9f8c-x2x", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "datastorage-7d9f8c", "uid": "u", "controller": true}
            ]}
        }))
        .unwrap();
        assert_eq!(component_of(&pod, &map).as_deref(), Some("datastorage"));
        let job_pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "audit-migrations-abcde", "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "audit-migrations", "uid": "u", "controller": true}
            ]}
        }))
        .unwrap();
        assert_eq!(component_of(&job_pod, &map).as_deref(), Some("migrations"));
        let stray: k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "debug"}})).unwrap();
        assert_eq!(component_of(&stray, &map), None);
    }
}
