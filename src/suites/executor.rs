//! Runs a lane's suites: bounded parallelism, serial suites last, one event
//! stream, one summary.
//!
//! The executor keeps a pool of `jobs` slots numbered from 1; a suite takes
//! a free slot, and the slot number is its "process" (in its namespace name
//! and `HARNESS_PROCESS`), like Ginkgo's parallel process index. Namespace
//! names are drawn here, in the one task that owns the random source; the
//! namespace itself is created inside the suite's task so that a slow API
//! server delays only that suite.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::cancel::CancelToken;
use super::env::{EndpointCollision, SuiteEnv, suite_env};
use super::namespace::{NamespaceProvisioner, RandomSource, namespace_name};
use super::runner::{Outcome, StartError, SuiteCommand, SuiteEvent, SuiteResult, run_suite};
use super::schedule::{Schedulable, schedule};

/// One suite as the executor needs it.
#[derive(Debug, Clone)]
pub struct SuiteSpec {
    /// Unique name; also the name of its directory under the artifacts root.
    pub name: String,
    /// Program and arguments, placeholders already filled.
    pub command: Vec<OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// How long it may run.
    pub timeout: Duration,
    /// Whether it runs alone, after all non-serial suites.
    pub serial: bool,
    /// Prefix of its namespace name.
    pub namespace_prefix: String,
    /// The suite's own variables (the lane file's `env:`); the harness's
    /// contract variables win over them.
    pub env: BTreeMap<String, OsString>,
}

impl Schedulable for SuiteSpec {
    fn name(&self) -> &str {
        &self.name
    }
    fn serial(&self) -> bool {
        self.serial
    }
}

/// Settings shared by every suite of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Identifies the run (`HARNESS_RUN_ID`).
    pub run_id: String,
    /// The cluster's kubeconfig.
    pub kubeconfig: PathBuf,
    /// Each suite gets `<root>/<suite>/output.log` and
    /// `<root>/<suite>/artifacts/`.
    pub artifacts_root: PathBuf,
    /// Component name → endpoint, passed to every suite.
    pub endpoints: BTreeMap<String, String>,
    /// How many non-serial suites may run at once.
    pub jobs: NonZeroUsize,
    /// Time between SIGTERM and SIGKILL when a suite is stopped.
    pub grace: Duration,
}

impl RunConfig {
    /// The log file of suite `name`.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.artifacts_root.join(name).join("output.log")
    }

    /// The artifacts directory of suite `name`.
    pub fn artifacts_dir(&self, name: &str) -> PathBuf {
        self.artifacts_root.join(name).join("artifacts")
    }
}

/// A set of suites that cannot be run at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RunError {
    /// A suite name that cannot be a directory name.
    #[error(
        "invalid suite name {0:?}: use letters, digits, '-', '_' and '.', not starting with '.'"
    )]
    InvalidName(String),
    /// Two suites with one name.
    #[error("two suites are named {0:?}: suite names must be unique")]
    DuplicateName(String),
    /// A suite without a command.
    #[error("suite {0:?} has an empty command: give at least the program to run")]
    EmptyCommand(String),
    /// Endpoints that cannot all be passed.
    #[error(transparent)]
    Endpoints(#[from] EndpointCollision),
}

/// Suites that cannot be run as declared are a usage error (2): the
/// message says what to change.
impl crate::failure::Failure for RunError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            RunError::InvalidName(_)
            | RunError::DuplicateName(_)
            | RunError::EmptyCommand(_)
            | RunError::Endpoints(_) => crate::exit::Exit::Usage,
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            // Each message says what to change.
            RunError::InvalidName(_)
            | RunError::DuplicateName(_)
            | RunError::EmptyCommand(_)
            | RunError::Endpoints(_) => None,
        }
    }
}

/// The results of a run, in the order the suites were given.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// One result per suite.
    pub results: Vec<SuiteResult>,
    /// Wall time of the whole run.
    pub duration: Duration,
}

impl RunSummary {
    /// Whether every suite passed. Any failed, timed-out, interrupted,
    /// errored or skipped suite fails the run.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| !r.outcome.is_failure())
    }

    /// The suites that failed the run.
    pub fn failures(&self) -> impl Iterator<Item = &SuiteResult> {
        self.results.iter().filter(|r| r.outcome.is_failure())
    }
}

fn validate(suites: &[SuiteSpec], config: &RunConfig) -> Result<(), RunError> {
    let mut seen = BTreeSet::new();
    for suite in suites {
        let name = suite.name.as_str();
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(RunError::InvalidName(name.to_owned()));
        }
        if !seen.insert(name) {
            return Err(RunError::DuplicateName(name.to_owned()));
        }
        if suite.command.is_empty() {
            return Err(RunError::EmptyCommand(name.to_owned()));
        }
    }
    // Checked once here rather than failing every suite the same way.
    suite_env(&SuiteEnv {
        kubeconfig: PathBuf::new(),
        namespace: String::new(),
        run_id: String::new(),
        process: 0,
        artifacts: PathBuf::new(),
        endpoints: config.endpoints.clone(),
    })?;
    Ok(())
}

/// Runs `suites`: the non-serial ones at most `config.jobs` at a time, then
/// the serial ones one by one. Events for every suite go to `events`;
/// cancelling `cancel` stops running suites (TERM, grace, KILL) and skips the
/// rest.
///
/// Fails only when the suites cannot be run at all; a suite that fails in
/// any way is a result, not an error.
pub async fn run_suites<P: NamespaceProvisioner + 'static>(
    suites: &[SuiteSpec],
    config: &RunConfig,
    provisioner: Arc<P>,
    random: &mut (dyn RandomSource + Send),
    events: mpsc::Sender<SuiteEvent>,
    cancel: CancelToken,
) -> Result<RunSummary, RunError> {
    validate(suites, config)?;
    let started = Instant::now();
    let plan = schedule(suites, config.jobs);
    let mut results: Vec<Option<SuiteResult>> = vec![None; suites.len()];
    let mut phase = Phase {
        suites,
        config,
        provisioner,
        random,
        events: &events,
        cancel: &cancel,
        results: &mut results,
    };
    phase.run(&plan.parallel, plan.jobs).await;
    phase.run(&plan.serial, NonZeroUsize::MIN).await;
    Ok(RunSummary {
        results: results
            .into_iter()
            .map(|r| r.expect("every scheduled suite has a result"))
            .collect(),
        duration: started.elapsed(),
    })
}

struct Phase<'a, P> {
    suites: &'a [SuiteSpec],
    config: &'a RunConfig,
    provisioner: Arc<P>,
    random: &'a mut (dyn RandomSource + Send),
    events: &'a mpsc::Sender<SuiteEvent>,
    cancel: &'a CancelToken,
    results: &'a mut Vec<Option<SuiteResult>>,
}

impl<P: NamespaceProvisioner + 'static> Phase<'_, P> {
    async fn run(&mut self, order: &[usize], jobs: NonZeroUsize) {
        // Free slots, lowest first so that a lone suite is always process 1.
        let mut free: BTreeSet<usize> = (1..=jobs.get()).collect();
        let mut running: JoinSet<SuiteResult> = JoinSet::new();
        let mut slots = HashMap::new();
        let mut queue = order.iter().copied();
        loop {
            while !self.cancel.is_cancelled() && !free.is_empty() {
                let Some(index) = queue.next() else { break };
                let slot = free.pop_first().expect("checked non-empty");
                let task = self.prepare(index, slot);
                let id = running.spawn(task).id();
                slots.insert(id, (index, slot));
            }
            let Some(joined) = running.join_next_with_id().await else {
                break;
            };
            let (index, slot, result) = match joined {
                Ok((id, result)) => {
                    let (index, slot) = slots.remove(&id).expect("spawned tasks are tracked");
                    (index, slot, result)
                }
                Err(err) => {
                    // A panic in the runner is a bug; record it against the
                    // suite instead of losing the whole run.
                    let (index, slot) = slots.remove(&err.id()).expect("spawned tasks are tracked");
                    let result = self.unstarted(
                        index,
                        Outcome::Errored(Arc::new(StartError::Panicked(err.to_string()))),
                    );
                    let _ = self.events.send(SuiteEvent::Finished(result.clone())).await;
                    (index, slot, result)
                }
            };
            free.insert(slot);
            self.results[index] = Some(result);
        }
        // Cancelled before their turn.
        for index in queue {
            let result = self.unstarted(index, Outcome::Skipped);
            let _ = self.events.send(SuiteEvent::Finished(result.clone())).await;
            self.results[index] = Some(result);
        }
    }

    fn unstarted(&self, index: usize, outcome: Outcome) -> SuiteResult {
        let name = &self.suites[index].name;
        SuiteResult {
            name: name.clone(),
            outcome,
            duration: Duration::ZERO,
            log_path: self.config.log_path(name),
            artifacts_dir: self.config.artifacts_dir(name),
            namespace: None,
        }
    }

    /// Builds the suite's command and returns the task that creates its
    /// namespace and runs it.
    fn prepare(
        &mut self,
        index: usize,
        slot: usize,
    ) -> impl Future<Output = SuiteResult> + Send + 'static {
        let spec = &self.suites[index];
        let config = self.config;
        let namespace = namespace_name(&spec.namespace_prefix, slot, self.random);
        let (program, args) = spec
            .command
            .split_first()
            .expect("validated: commands are not empty");
        let mut cmd = SuiteCommand {
            name: spec.name.clone(),
            program: program.clone(),
            args: args.to_vec(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            timeout: spec.timeout,
            grace: config.grace,
            log_path: config.log_path(&spec.name),
            artifacts_dir: config.artifacts_dir(&spec.name),
            process: slot,
            namespace: namespace.as_ref().ok().cloned(),
        };
        if let Ok(namespace) = &namespace {
            let contract = suite_env(&SuiteEnv {
                kubeconfig: config.kubeconfig.clone(),
                namespace: namespace.clone(),
                run_id: config.run_id.clone(),
                process: slot,
                artifacts: cmd.artifacts_dir.clone(),
                endpoints: config.endpoints.clone(),
            })
            .expect("validated: endpoints do not collide");
            cmd.env.extend(contract);
        }
        let provisioner = Arc::clone(&self.provisioner);
        let events = self.events.clone();
        let cancel = self.cancel.clone();
        async move {
            let started = Instant::now();
            let prepared = match namespace {
                Ok(namespace) => tokio::select! {
                    created = provisioner.create(&namespace) => created.map_err(Some),
                    () = cancel.cancelled() => Err(None),
                },
                Err(err) => Err(Some(err)),
            };
            let outcome = match prepared {
                Ok(()) => return run_suite(&cmd, &events, &cancel).await,
                Err(Some(err)) => Outcome::Errored(Arc::new(StartError::Namespace(err))),
                Err(None) => Outcome::Interrupted,
            };
            let result = SuiteResult {
                name: cmd.name,
                outcome,
                duration: started.elapsed(),
                log_path: cmd.log_path,
                artifacts_dir: cmd.artifacts_dir,
                namespace: cmd.namespace,
            };
            let _ = events.send(SuiteEvent::Finished(result.clone())).await;
            result
        }
    }
}
