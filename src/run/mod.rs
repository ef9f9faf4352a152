//! The run of `harness test`: up → suites → gather → hooks → teardown, and
//! what interrupts and deadlines do to it.
//!
//! The stages themselves (build, cluster, deploy, suites, gather, teardown)
//! are behind the [`Stages`] trait; this module owns only their order and
//! their budgets ([`sequence`]: up and the suites under a [`Canceller`],
//! then each closing step within its budget), so the rules that matter most
//! are tested with a scripted fake. Gather never receives the run's cancellation: it runs after the
//! suites were stopped, with its own time budget, and only a second
//! interrupt (or its budget) ends it early — then it leaves no partial
//! bundle, because the bundle writer publishes only complete bundles. A
//! preserved cluster is gathered but never disturbed. A stage that panics
//! has failed, with [`Exit::Panicked`]: the steps after it run as after any
//! failure (see [`crate::panics`]), so a bug in deploy still leaves a
//! bundle and no cluster behind.
//!
//! The submodules carry the order out: [`lifecycle`] holds its pure
//! decisions (which closing steps run, what each interrupt does), [`up`]
//! brings a lane up as a sequence of stage calls, [`real`] is the
//! [`Stages`] of `harness test` over a real environment, and [`test`](self::test) is
//! the whole of `harness test` around them. Each stage's own glue (running
//! it inside a run, telling its events) lives beside the stage:
//! `preflight::stage`, `images::stage`, `cluster::stage`,
//! `deploy::stage`, `suites::stage`, `gather::stage`, `hooks::run_hooks`,
//! `timeline::watch_infrastructure`, each entered with a
//! [`crate::stage::Ctx`].

pub mod lifecycle;
pub mod real;
pub mod test;
pub mod up;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::exit::Exit;
use crate::failure::Failure;
use crate::suites::{CancelToken, cancellation};
use lifecycle::{OnInterrupt, Step};

pub use crate::failure::StageFailure;
pub use crate::stage::UpFailure;
pub use lifecycle::GatherWhen;

/// What went wrong in the run itself, beside its stages' own failures.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A stage panicked.
    #[error("{stage} stopped by a panic")]
    Panicked {
        stage: &'static str,
        #[source]
        panic: crate::panics::Panic,
    },
    /// `up` panicked before a cluster existed.
    #[error(
        "gather and teardown not run: harness panicked before a cluster existed, so there is nothing to collect or delete"
    )]
    NothingToGather,
    /// An interrupt stopped the run before the hooks.
    #[error("hooks skipped: the run was interrupted")]
    HooksSkipped,
    /// An interrupt ended a closing step early.
    #[error("{} cut short by an interrupt", .step.name())]
    CutShort { step: Step },
    /// A third interrupt left the run at once.
    #[error("abandoned by a third interrupt")]
    Abandoned,
    /// A closing step ran past its budget.
    #[error("{} did not finish within {}s", .step.name(), .budget.as_secs())]
    OverBudget { step: Step, budget: Duration },
    /// An interrupt stopped `up`.
    #[error("interrupted while bringing the lane up")]
    InterruptedUp,
    /// An interrupt stopped a command (`down`, `gather`): what that leaves.
    #[error("interrupted: {after}")]
    Interrupted { after: String },
    /// The suites were asked to run with no cluster to run them on.
    #[error("no cluster client")]
    NoClient,
    /// The suites or hooks were asked to run with nothing up.
    #[error("no environment")]
    NoEnvironment,
    /// Gather found no cluster to read.
    #[error("no cluster to gather from: cluster {cluster} was never reached")]
    NeverReached { cluster: String },
}

/// SIGINT and SIGTERM cannot be listened for: without that, an interrupt
/// would kill the run before it gathers and tears down, so none starts.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for SIGINT/SIGTERM")]
pub struct SignalError {
    #[source]
    pub source: std::io::Error,
}

impl Failure for SignalError {
    fn exit(&self) -> Exit {
        Exit::Internal
    }

    fn fix(&self) -> Option<String> {
        None
    }
}

/// What each means for the run's exit: a panic outranks everything (71),
/// an interrupt is 130, a closing step past its budget fails as its step
/// fails, and a run with no environment to act on is harness's own bug.
impl Failure for RunError {
    fn exit(&self) -> Exit {
        match self {
            RunError::Panicked { .. } | RunError::NothingToGather => Exit::Panicked,
            RunError::HooksSkipped
            | RunError::CutShort { .. }
            | RunError::Abandoned
            | RunError::InterruptedUp
            | RunError::Interrupted { .. } => Exit::Interrupted,
            RunError::OverBudget { step, .. } => match step {
                Step::Gather => Exit::Gather,
                // The user's own commands, like a suite past its timeout.
                Step::Hooks => Exit::SuitesFailed,
                Step::Teardown => Exit::Cluster,
            },
            RunError::NoClient | RunError::NoEnvironment => Exit::Internal,
            RunError::NeverReached { .. } => Exit::Gather,
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            RunError::OverBudget {
                step: Step::Teardown,
                ..
            }
            | RunError::CutShort {
                step: Step::Teardown,
            }
            | RunError::Abandoned => {
                Some("run `harness down` to delete what the run left".to_owned())
            }
            RunError::Panicked { .. }
            | RunError::NothingToGather
            | RunError::HooksSkipped
            | RunError::CutShort { .. }
            | RunError::OverBudget { .. }
            | RunError::InterruptedUp
            | RunError::Interrupted { .. }
            | RunError::NoClient
            | RunError::NoEnvironment
            | RunError::NeverReached { .. } => None,
        }
    }
}

/// The stages of a run. `up` and `suites` must stop promptly when their
/// token is cancelled; `gather`, `hooks` and `teardown` get no token.
pub trait Stages {
    /// Build, create the cluster, load, deploy and wait until Ready.
    /// Returns whether a cluster exists afterwards (to gather from and tear down).
    fn up(&mut self, cancel: CancelToken) -> impl Future<Output = Result<(), UpFailure>>;
    /// Runs the suites; `Ok(true)` when every one passed.
    fn suites(&mut self, cancel: CancelToken) -> impl Future<Output = Result<bool, StageFailure>>;
    /// Writes the must-gather bundle; returns its path. `so_far` is the
    /// exit code as known when the gather begins, for the bundle's summary.
    fn gather(&mut self, so_far: Exit) -> impl Future<Output = Result<PathBuf, StageFailure>>;
    /// Post-suite hooks that disturb the cluster (coverage collection…).
    fn hooks(&mut self) -> impl Future<Output = Result<(), StageFailure>>;
    /// Deletes what `up` created.
    fn teardown(&mut self) -> impl Future<Output = Result<(), StageFailure>>;
    /// Whether there is a cluster to gather from and tear down, asked only
    /// when `up` panicked (a failure that returns says so itself).
    fn cluster_exists(&self) -> bool {
        true
    }
}

/// `work`, with a panic that unwinds out of it turned into the failure of
/// `stage` (the stage's state is whatever the panic left: the steps after
/// it only need to find out what exists).
async fn guarded<T>(
    stage: &'static str,
    work: impl Future<Output = Result<T, StageFailure>>,
) -> Result<T, StageFailure> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(panicked(stage, payload.as_ref())))
}

fn panicked(stage: &'static str, payload: &(dyn std::any::Any + Send)) -> StageFailure {
    RunError::Panicked {
        stage,
        panic: crate::panics::caught(payload),
    }
    .into()
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub preserve: bool,
    pub gather: GatherWhen,
    pub has_hooks: bool,
    /// The most the hooks may take together ([`crate::hooks::budget`]).
    pub hooks_budget: Duration,
    /// `--deadline`: the whole run, gather and teardown included, ends by then.
    pub deadline: Option<Instant>,
    pub gather_budget: Duration,
    pub teardown_budget: Duration,
    /// Whether harness has panicked anywhere so far, tasks that no stage
    /// awaits included ([`crate::panics::any`]): such a run is gathered,
    /// and ends with [`Exit::Panicked`].
    pub panicked: fn() -> bool,
}

/// What happened, for the report and the exit code.
#[derive(Debug)]
pub struct RunResult {
    pub exit: Exit,
    /// The steps that ran, in order (for the report, and for tests).
    pub ran: Vec<&'static str>,
    pub bundle: Option<PathBuf>,
    pub interrupted: bool,
    pub timed_out: bool,
    pub errors: Vec<(&'static str, StageFailure)>,
}

/// Why `up`/`suites` were cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Interrupt,
    Deadline,
}

/// Completes with the count and the reaction once there are more than
/// `seen` interrupts.
async fn next_interrupt(interrupts: &mut watch::Receiver<u32>, seen: u32) -> (u32, OnInterrupt) {
    match interrupts.wait_for(|n| *n > seen).await {
        Ok(n) => (*n, lifecycle::on_interrupt(*n)),
        // Nobody can interrupt any more.
        Err(_) => std::future::pending().await,
    }
}

/// Runs the whole sequence: up and the suites (cancelled by the first
/// interrupt or the deadline), then the closing steps, each within its own
/// budget. `interrupts` counts SIGINT/SIGTERM received.
pub async fn sequence<S: Stages>(
    stages: &mut S,
    options: &RunOptions,
    interrupts: watch::Receiver<u32>,
) -> RunResult {
    let mut run = Sequence {
        options,
        interrupts,
        result: RunResult {
            exit: Exit::Ok,
            ran: Vec::new(),
            bundle: None,
            interrupted: false,
            timed_out: false,
            errors: Vec::new(),
        },
        panicked: false,
    };
    let opened = run.open(stages).await;
    run.close(stages, opened).await
}

/// One run of [`sequence`] as it goes.
struct Sequence<'o> {
    options: &'o RunOptions,
    interrupts: watch::Receiver<u32>,
    result: RunResult,
    /// A stage's failure was a panic.
    panicked: bool,
}

/// How up and the suites ended, for the closing steps.
struct Opened {
    cluster_exists: bool,
    failed: bool,
    stopped: Option<Stop>,
}

/// What became of one closing step.
enum Closed {
    /// It ran to its end: a bundle (gather), or its failure.
    Finished(Result<Option<PathBuf>, StageFailure>),
    /// Its budget ran out first.
    OverBudget,
    /// An interrupt ended it; the run goes on to teardown.
    CutShort,
    /// A third interrupt: the run ends at once.
    Abandoned,
}

/// Cancels up and the suites at the first interrupt or at the deadline
/// (which leaves room for gather, hooks and teardown); the stage winds
/// itself down and returns.
struct Canceller<'w> {
    watcher: std::pin::Pin<Box<dyn Future<Output = Stop> + 'w>>,
    stopped: Option<Stop>,
    handle: crate::suites::CancelHandle,
}

impl<'w> Canceller<'w> {
    fn new(
        options: &RunOptions,
        interrupts: &watch::Receiver<u32>,
        handle: crate::suites::CancelHandle,
    ) -> Self {
        let closing = options.teardown_budget
            + if options.has_hooks {
                options.hooks_budget
            } else {
                Duration::ZERO
            };
        let stop_at = options.deadline.map(|d| {
            let remaining = d.saturating_duration_since(Instant::now());
            Instant::now()
                + lifecycle::suite_budget(Some(remaining), options.gather_budget, closing)
                    .unwrap_or_default()
        });
        let mut interrupts = interrupts.clone();
        let watcher = Box::pin(async move {
            let deadline = async {
                match stop_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = next_interrupt(&mut interrupts, 0) => Stop::Interrupt,
                _ = deadline => Stop::Deadline,
            }
        });
        Self {
            watcher,
            stopped: None,
            handle,
        }
    }

    /// `work` to its end, cancelling its token when the run is stopped.
    async fn until_done<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                why = &mut self.watcher, if self.stopped.is_none() => {
                    self.stopped = Some(why);
                    self.handle.cancel();
                }
            }
        }
    }
}

impl Sequence<'_> {
    /// Records a failure of `step` and what it means for the exit code:
    /// up's and the suites' failures are the run's headline, a closing
    /// step's only when nothing failed before it.
    fn failed(&mut self, step: &'static str, failure: StageFailure, headline: bool) {
        self.panicked |= failure.exit() == Exit::Panicked;
        if headline || self.result.exit == Exit::Ok {
            self.result.exit = failure.exit();
        }
        self.result.errors.push((step, failure));
    }

    /// Up, then the suites; both cancelled by the first interrupt or the
    /// deadline.
    async fn open<S: Stages>(&mut self, stages: &mut S) -> Opened {
        let (handle, token) = cancellation();
        let mut cancel = Canceller::new(self.options, &self.interrupts, handle);
        self.result.ran.push("up");
        let mut opened = Opened {
            cluster_exists: true,
            failed: false,
            stopped: None,
        };
        let up = cancel
            .until_done(AssertUnwindSafe(stages.up(token.clone())).catch_unwind())
            .await
            .unwrap_or_else(|payload| {
                let cluster_exists = stages.cluster_exists();
                if !cluster_exists {
                    self.result
                        .errors
                        .push(("gather", RunError::NothingToGather.into()));
                }
                Err(UpFailure {
                    failure: panicked("up", payload.as_ref()),
                    cluster_exists,
                })
            });
        if let Err(UpFailure {
            failure,
            cluster_exists,
        }) = up
        {
            opened.cluster_exists = cluster_exists;
            opened.failed = true;
            // An interrupted up's own failure is not the headline: the
            // interrupt is (a panic still is).
            let headline = cancel.stopped.is_none() || failure.exit() == Exit::Panicked;
            self.failed("up", failure, headline);
        }
        if !opened.failed && cancel.stopped.is_none() {
            self.result.ran.push("suites");
            match cancel
                .until_done(guarded("suites", stages.suites(token.clone())))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    opened.failed = true;
                    self.result.exit = Exit::SuitesFailed;
                }
                Err(failure) => {
                    opened.failed = true;
                    self.failed("suites", failure, true);
                }
            }
        }
        opened.stopped = cancel.stopped;
        self.result.interrupted = opened.stopped == Some(Stop::Interrupt);
        self.result.timed_out = opened.stopped == Some(Stop::Deadline);
        opened
    }

    /// The closing steps in their fixed order: no cancellation token, each
    /// within its own budget; interrupts escalate as
    /// [`lifecycle::on_interrupt`] says.
    async fn close<S: Stages>(mut self, stages: &mut S, opened: Opened) -> RunResult {
        let options = self.options;
        // A panic anywhere (a task nobody awaits included) is a failure to gather.
        let failed = opened.failed || (options.panicked)();
        let gather = opened.cluster_exists
            && lifecycle::should_gather(options.gather, failed, opened.stopped.is_some());
        let mut seen = *self.interrupts.borrow();
        // Interrupts already pressed while the suites wound down count too.
        let mut skip_to_teardown = match lifecycle::on_interrupt(seen) {
            OnInterrupt::Abandon if seen > 0 => {
                self.result.exit = Exit::Interrupted;
                self.result.interrupted = true;
                return self.abandoned();
            }
            OnInterrupt::SkipToTeardown => {
                self.result.interrupted = true;
                true
            }
            _ => false,
        };
        for step in lifecycle::closing_steps(gather, options.preserve, options.has_hooks) {
            // Without a cluster, hooks have nothing to act on and teardown
            // nothing to delete.
            if matches!(step, Step::Hooks | Step::Teardown) && !opened.cluster_exists {
                continue;
            }
            if skip_to_teardown && step != Step::Teardown {
                continue;
            }
            // An interrupt asks for gather and teardown, not for the hooks.
            if step == Step::Hooks && *self.interrupts.borrow() > 0 {
                self.result
                    .errors
                    .push(("hooks", RunError::HooksSkipped.into()));
                continue;
            }
            let name = step.name();
            self.result.ran.push(name);
            match self.close_step(stages, step, &mut seen).await {
                Closed::Finished(Ok(bundle)) => {
                    if bundle.is_some() {
                        self.result.bundle = bundle;
                    }
                }
                Closed::Finished(Err(failure)) => self.failed(name, failure, false),
                Closed::OverBudget => {
                    let budget = self.budget(step);
                    self.failed(name, RunError::OverBudget { step, budget }.into(), false);
                }
                Closed::CutShort => {
                    skip_to_teardown = true;
                    self.result
                        .errors
                        .push((name, RunError::CutShort { step }.into()));
                }
                Closed::Abandoned => {
                    self.result.exit = Exit::Interrupted;
                    self.result.errors.push((name, RunError::Abandoned.into()));
                    return self.abandoned();
                }
            }
        }
        // An interrupt that came as the last step finished still counts.
        if *self.interrupts.borrow() > 0 {
            self.result.interrupted = true;
        }
        let mut result = self.result;
        if self.panicked || (options.panicked)() {
            // Whatever else the exit code would say, harness itself is broken.
            result.exit = Exit::Panicked;
        } else if result.interrupted {
            result.exit = Exit::Interrupted;
        } else if result.timed_out {
            result.exit = Exit::Timeout;
        }
        result
    }

    fn budget(&self, step: Step) -> Duration {
        match step {
            Step::Gather => self.options.gather_budget,
            Step::Hooks => self.options.hooks_budget,
            Step::Teardown => self.options.teardown_budget,
        }
    }

    /// Runs one closing step within its budget, reacting to the interrupts
    /// after the `seen`-th.
    async fn close_step<S: Stages>(
        &mut self,
        stages: &mut S,
        step: Step,
        seen: &mut u32,
    ) -> Closed {
        // The bundle is told how the run stands as the gather begins.
        let so_far = if self.result.interrupted {
            Exit::Interrupted
        } else if self.result.timed_out {
            Exit::Timeout
        } else {
            self.result.exit
        };
        let work = guarded(step.name(), async {
            match step {
                Step::Gather => stages.gather(so_far).await.map(Some),
                Step::Hooks => stages.hooks().await.map(|()| None),
                Step::Teardown => stages.teardown().await.map(|()| None),
            }
        });
        let work = tokio::time::timeout(self.budget(step), work);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => {
                    return match out {
                        Ok(finished) => Closed::Finished(finished),
                        Err(_elapsed) => Closed::OverBudget,
                    };
                }
                (count, reaction) = next_interrupt(&mut self.interrupts, *seen) => {
                    *seen = count;
                    self.result.interrupted = true;
                    match reaction {
                        // The user's own hooks are not part of what an
                        // interrupt asks for: stop them, go to teardown.
                        OnInterrupt::Wind if step == Step::Hooks => return Closed::CutShort,
                        // During gather or teardown, the first interrupt
                        // changes nothing: they are what it asks for anyway.
                        OnInterrupt::Wind => continue,
                        // Teardown is where a second interrupt points to.
                        OnInterrupt::SkipToTeardown if step == Step::Teardown => continue,
                        // Second interrupt: what is left of gather/hooks is skipped.
                        OnInterrupt::SkipToTeardown => return Closed::CutShort,
                        OnInterrupt::Abandon => return Closed::Abandoned,
                    }
                }
            }
        }
    }

    /// A run left at once by a third interrupt: 130, unless harness panicked.
    fn abandoned(self) -> RunResult {
        let mut result = self.result;
        if self.panicked || (self.options.panicked)() {
            result.exit = Exit::Panicked;
        }
        result
    }
}

/// Counts SIGINT and SIGTERM from now on. `announce` hears of each (with
/// its 1-based number) before anyone waiting on the count does, so what it
/// says always precedes what the run does about it.
pub fn count_interrupts(
    announce: impl Fn(u32) + Send + 'static,
) -> std::io::Result<watch::Receiver<u32>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = int.recv() => {}
                Some(()) = term.recv() => {}
                else => break,
            }
            announce(*tx.borrow() + 1);
            tx.send_modify(|n| *n += 1);
        }
    });
    Ok(rx)
}

pub use crate::stage::new_run_id;

/// Runs `work` until it ends or SIGINT/SIGTERM arrives: an interrupt drops
/// it (which kills what it runs and removes an unfinished bundle) and ends
/// in exit 130, with `after` saying what state that leaves.
pub async fn until_interrupted<T>(
    work: impl Future<Output = Result<T, StageFailure>>,
    after: &str,
) -> Result<T, StageFailure> {
    let mut interrupts = count_interrupts(|_| {}).map_err(|source| SignalError { source })?;
    tokio::select! {
        result = work => result,
        _ = interrupts.wait_for(|n| *n > 0) => Err(RunError::Interrupted {
            after: after.to_owned(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What each fake stage does.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Act {
        Ok,
        Fail,
        /// Runs until cancelled (a suite that hangs); then returns.
        UntilCancelled,
        /// Never returns on its own (a gather stuck on a dead API server).
        Hang,
        /// Finishes only after an interrupt arrived (a gather the user
        /// interrupts half-way).
        AfterInterrupt,
        /// A bug: the stage panics.
        Panic,
    }

    struct Fake {
        up: Act,
        suites: Act,
        gather: Act,
        teardown: Act,
        log: Arc<Mutex<Vec<String>>>,
        /// The exit code each gather was told the run stood at.
        gathered_as: Arc<Mutex<Vec<Exit>>>,
        interrupts: Option<watch::Sender<u32>>,
        /// Send this many interrupts when the stage of this name starts.
        interrupt_at: Option<(&'static str, u32)>,
        /// Whether a cluster exists after `up` failed (or panicked).
        cluster_after_up: bool,
    }

    /// A stage's failure that means `exit`.
    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom(Exit);

    impl Failure for Boom {
        fn exit(&self) -> Exit {
            self.0
        }
        fn fix(&self) -> Option<String> {
            None
        }
    }

    impl Fake {
        fn new(up: Act, suites: Act, gather: Act) -> Self {
            Self {
                up,
                suites,
                gather,
                teardown: Act::Ok,
                log: Arc::default(),
                gathered_as: Arc::default(),
                interrupts: None,
                interrupt_at: None,
                cluster_after_up: true,
            }
        }

        fn enter(&self, stage: &'static str) {
            self.log.lock().unwrap().push(stage.to_string());
            if let (Some((at, n)), Some(tx)) = (self.interrupt_at, &self.interrupts)
                && at == stage
            {
                tx.send_modify(|c| *c += n);
            }
        }

        async fn act(
            &self,
            act: Act,
            cancel: Option<CancelToken>,
            exit: Exit,
        ) -> Result<(), StageFailure> {
            match act {
                Act::Ok => Ok(()),
                Act::Fail => Err(Boom(exit).into()),
                Act::UntilCancelled => {
                    cancel.expect("cancellable stage").cancelled().await;
                    self.log.lock().unwrap().push("cancelled".into());
                    Ok(())
                }
                Act::Hang => std::future::pending().await,
                Act::Panic => panic!("the fake {exit:?} stage panicked"),
                Act::AfterInterrupt => {
                    let mut rx = self.interrupts.as_ref().expect("interrupts").subscribe();
                    rx.wait_for(|n| *n > 0).await.expect("sender alive");
                    self.log
                        .lock()
                        .unwrap()
                        .push("finished after the interrupt".into());
                    Ok(())
                }
            }
        }
    }

    impl Stages for Fake {
        async fn up(&mut self, cancel: CancelToken) -> Result<(), UpFailure> {
            self.enter("up");
            self.act(self.up, Some(cancel), Exit::Deploy)
                .await
                .map_err(|failure| UpFailure {
                    failure,
                    cluster_exists: self.cluster_after_up,
                })
        }
        async fn suites(&mut self, cancel: CancelToken) -> Result<bool, StageFailure> {
            self.enter("suites");
            match self.suites {
                Act::Fail => Ok(false),
                other => self
                    .act(other, Some(cancel), Exit::SuitesFailed)
                    .await
                    .map(|()| true),
            }
        }
        async fn gather(&mut self, so_far: Exit) -> Result<PathBuf, StageFailure> {
            self.enter("gather");
            self.gathered_as.lock().unwrap().push(so_far);
            self.act(self.gather, None, Exit::Gather)
                .await
                .map(|()| PathBuf::from("bundle.tar.gz"))
        }
        async fn hooks(&mut self) -> Result<(), StageFailure> {
            self.enter("hooks");
            Ok(())
        }
        async fn teardown(&mut self) -> Result<(), StageFailure> {
            self.enter("teardown");
            self.act(self.teardown, None, Exit::Cluster).await
        }
        fn cluster_exists(&self) -> bool {
            self.cluster_after_up
        }
    }

    fn options(preserve: bool, gather: GatherWhen) -> RunOptions {
        RunOptions {
            preserve,
            gather,
            has_hooks: true,
            hooks_budget: Duration::from_secs(60),
            deadline: None,
            gather_budget: Duration::from_secs(300),
            teardown_budget: Duration::from_secs(120),
            panicked: || false,
        }
    }

    /// The error a step recorded, as one line.
    fn error_of(r: &RunResult, step: &str) -> String {
        r.errors
            .iter()
            .filter(|(s, _)| *s == step)
            .map(|(_, e)| e.text())
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn go(fake: &mut Fake, opts: &RunOptions) -> (RunResult, Vec<String>) {
        go_within(fake, opts, Duration::from_secs(30)).await
    }

    /// With paused time (`start_paused`) the clock jumps to the next timer,
    /// so the guard must outlast every budget of the run.
    async fn go_paused(fake: &mut Fake, opts: &RunOptions) -> (RunResult, Vec<String>) {
        go_within(fake, opts, Duration::from_secs(24 * 3600)).await
    }

    async fn go_within(
        fake: &mut Fake,
        opts: &RunOptions,
        guard: Duration,
    ) -> (RunResult, Vec<String>) {
        let (tx, rx) = watch::channel(0);
        fake.interrupts = Some(tx);
        let result = tokio::time::timeout(guard, sequence(fake, opts, rx))
            .await
            .expect("the run must finish");
        let log = fake.log.lock().unwrap().clone();
        (result, log)
    }

    #[tokio::test]
    async fn green_run_tears_down_without_gathering() {
        let mut f = Fake::new(Act::Ok, Act::Ok, Act::Ok);
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "hooks", "teardown"]);
        assert_eq!(r.exit, Exit::Ok);
        assert!(r.bundle.is_none());
    }

    #[tokio::test]
    async fn failed_suites_are_gathered_before_anything_disturbs_the_cluster() {
        let mut f = Fake::new(Act::Ok, Act::Fail, Act::Ok);
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "gather", "hooks", "teardown"]);
        assert_eq!(r.exit, Exit::SuitesFailed);
        assert_eq!(r.bundle, Some(PathBuf::from("bundle.tar.gz")));
        assert_eq!(*f.gathered_as.lock().unwrap(), [Exit::SuitesFailed]);
    }

    #[tokio::test]
    async fn failed_up_is_gathered_and_keeps_its_exit_code() {
        let mut f = Fake::new(Act::Fail, Act::Ok, Act::Ok);
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "gather", "hooks", "teardown"]);
        assert_eq!(r.exit, Exit::Deploy);
    }

    #[tokio::test]
    async fn a_failed_up_that_made_no_cluster_runs_no_hooks() {
        // A failed build: nothing to gather, no cluster for the hooks.
        let mut f = Fake::new(Act::Fail, Act::Ok, Act::Ok);
        f.cluster_after_up = false;
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up"]);
        assert_eq!(r.exit, Exit::Deploy);
    }

    #[tokio::test]
    async fn preserved_cluster_is_gathered_but_never_disturbed() {
        let mut f = Fake::new(Act::Ok, Act::Fail, Act::Ok);
        let (r, log) = go(&mut f, &options(true, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "gather"]);
        assert_eq!(r.exit, Exit::SuitesFailed);
    }

    #[tokio::test]
    async fn interrupt_during_suites_stops_them_then_gathers_with_a_live_budget() {
        let mut f = Fake::new(Act::Ok, Act::UntilCancelled, Act::Ok);
        f.interrupt_at = Some(("suites", 1));
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        // The suites saw the cancellation; gather still ran (not cancelled)
        // and produced a bundle; the hooks are skipped.
        assert_eq!(log, ["up", "suites", "cancelled", "gather", "teardown"]);
        assert_eq!(r.exit, Exit::Interrupted);
        assert_eq!(r.bundle, Some(PathBuf::from("bundle.tar.gz")));
        // The bundle is told the run was interrupted, before teardown says so.
        assert_eq!(*f.gathered_as.lock().unwrap(), [Exit::Interrupted]);
    }

    #[tokio::test]
    async fn interrupt_during_up_skips_suites_but_gathers() {
        let mut f = Fake::new(Act::UntilCancelled, Act::Ok, Act::Ok);
        f.interrupt_at = Some(("up", 1));
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "cancelled", "gather", "teardown"]);
        assert_eq!(r.exit, Exit::Interrupted);
        assert!(
            r.errors
                .iter()
                .any(|(step, e)| *step == "hooks" && e.to_string().contains("interrupted"))
        );
    }

    #[tokio::test]
    async fn second_interrupt_during_gather_skips_to_teardown() {
        let mut f = Fake::new(Act::Ok, Act::Fail, Act::Hang);
        f.interrupt_at = Some(("gather", 2));
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(
            log,
            ["up", "suites", "gather", "teardown"],
            "hooks are skipped, teardown is not"
        );
        assert_eq!(r.exit, Exit::Interrupted);
        assert!(r.bundle.is_none());
    }

    #[tokio::test]
    async fn first_interrupt_during_gather_lets_it_finish_then_tears_down() {
        let mut f = Fake::new(Act::Ok, Act::Fail, Act::AfterInterrupt);
        f.interrupt_at = Some(("gather", 1));
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(
            log,
            [
                "up",
                "suites",
                "gather",
                "finished after the interrupt",
                "teardown"
            ]
        );
        assert_eq!(
            r.bundle.as_deref(),
            Some(std::path::Path::new("bundle.tar.gz"))
        );
        assert_eq!(r.exit, Exit::Interrupted);
    }

    #[tokio::test]
    async fn second_interrupt_during_teardown_does_not_stop_it() {
        let mut f = Fake::new(Act::Ok, Act::Ok, Act::Ok);
        f.teardown = Act::AfterInterrupt;
        f.interrupt_at = Some(("teardown", 2));
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(
            log,
            [
                "up",
                "suites",
                "hooks",
                "teardown",
                "finished after the interrupt"
            ]
        );
        assert_eq!(r.exit, Exit::Interrupted);
    }

    #[tokio::test]
    async fn two_interrupts_during_suites_skip_gather() {
        let mut f = Fake::new(Act::Ok, Act::UntilCancelled, Act::Ok);
        f.interrupt_at = Some(("suites", 2));
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "cancelled", "teardown"]);
        assert_eq!(r.exit, Exit::Interrupted);
    }

    #[tokio::test]
    async fn third_interrupt_abandons_at_once() {
        let mut f = Fake::new(Act::Ok, Act::Fail, Act::Hang);
        f.interrupt_at = Some(("gather", 3));
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "gather"]);
        assert_eq!(r.exit, Exit::Interrupted);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_gather_is_bounded_by_its_own_budget() {
        let mut f = Fake::new(Act::Ok, Act::Fail, Act::Hang);
        let mut opts = options(false, GatherWhen::OnFailure);
        opts.gather_budget = Duration::from_secs(60);
        let (r, log) = go_paused(&mut f, &opts).await;
        assert_eq!(log, ["up", "suites", "gather", "hooks", "teardown"]);
        assert_eq!(
            r.exit,
            Exit::SuitesFailed,
            "the suites' failure is the headline"
        );
        assert!(
            r.errors
                .iter()
                .any(|(s, e)| *s == "gather" && e.to_string().contains("within 60s"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_stops_suites_early_enough_to_gather() {
        let mut f = Fake::new(Act::Ok, Act::UntilCancelled, Act::Ok);
        let mut opts = options(false, GatherWhen::OnFailure);
        opts.deadline = Some(Instant::now() + Duration::from_secs(55 * 60));
        let started = Instant::now();
        let (r, log) = go_paused(&mut f, &opts).await;
        assert_eq!(
            log,
            ["up", "suites", "cancelled", "gather", "hooks", "teardown"]
        );
        assert_eq!(r.exit, Exit::Timeout);
        assert!(r.timed_out);
        assert_eq!(*f.gathered_as.lock().unwrap(), [Exit::Timeout]);
        // Cancelled at 55m less the gather (5m), hooks (1m) and teardown (2m) budgets.
        assert_eq!(started.elapsed().as_secs() / 60, 47);
    }

    #[tokio::test(start_paused = true)]
    async fn without_hooks_the_deadline_keeps_no_room_for_them() {
        let mut f = Fake::new(Act::Ok, Act::UntilCancelled, Act::Ok);
        let mut opts = options(false, GatherWhen::OnFailure);
        opts.has_hooks = false;
        opts.deadline = Some(Instant::now() + Duration::from_secs(55 * 60));
        let started = Instant::now();
        let (r, log) = go_paused(&mut f, &opts).await;
        assert_eq!(log, ["up", "suites", "cancelled", "gather", "teardown"]);
        assert_eq!(r.exit, Exit::Timeout);
        assert_eq!(started.elapsed().as_secs() / 60, 48);
    }

    #[tokio::test]
    async fn gather_never_skips_gathering_a_green_run_when_always() {
        let mut f = Fake::new(Act::Ok, Act::Ok, Act::Fail);
        let (r, log) = go(&mut f, &options(false, GatherWhen::Always)).await;
        assert_eq!(log, ["up", "suites", "gather", "hooks", "teardown"]);
        assert_eq!(
            r.exit,
            Exit::Gather,
            "a green run whose bundle failed says so"
        );
    }

    #[tokio::test]
    async fn a_panic_in_up_is_its_failure_and_is_still_gathered_and_torn_down() {
        let mut f = Fake::new(Act::Panic, Act::Ok, Act::Ok);
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "gather", "hooks", "teardown"]);
        assert_eq!(r.exit, Exit::Panicked);
        assert_eq!(r.bundle, Some(PathBuf::from("bundle.tar.gz")));
        let up = error_of(&r, "up");
        assert!(
            up.starts_with("up stopped by a panic: harness panicked")
                && up.contains("the fake Deploy stage panicked"),
            "{up}"
        );
    }

    #[tokio::test]
    async fn a_panic_before_any_cluster_says_there_is_nothing_to_gather() {
        let mut f = Fake::new(Act::Panic, Act::Ok, Act::Ok);
        f.cluster_after_up = false;
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up"]);
        assert_eq!(r.exit, Exit::Panicked);
        assert!(
            error_of(&r, "gather").contains("before a cluster existed"),
            "{:?}",
            r.errors
        );
    }

    #[tokio::test]
    async fn a_panic_in_the_suites_is_gathered_then_torn_down() {
        let mut f = Fake::new(Act::Ok, Act::Panic, Act::Ok);
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "gather", "hooks", "teardown"]);
        assert_eq!(r.exit, Exit::Panicked);
        assert!(error_of(&r, "suites").contains("suites stopped by a panic"));
    }

    #[tokio::test]
    async fn a_panic_in_gather_still_tears_down_and_outranks_failed_suites() {
        let mut f = Fake::new(Act::Ok, Act::Fail, Act::Panic);
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "gather", "hooks", "teardown"]);
        assert_eq!(r.exit, Exit::Panicked);
        assert!(r.bundle.is_none());
        assert!(error_of(&r, "gather").contains("gather stopped by a panic"));
    }

    #[tokio::test]
    async fn a_panic_in_teardown_is_reported() {
        let mut f = Fake::new(Act::Ok, Act::Ok, Act::Ok);
        f.teardown = Act::Panic;
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "hooks", "teardown"]);
        assert_eq!(r.exit, Exit::Panicked);
        assert!(error_of(&r, "teardown").contains("teardown stopped by a panic"));
    }

    #[tokio::test]
    async fn a_panic_no_stage_saw_still_gathers_a_green_run_and_fails_it() {
        // A spawned task (the pod watcher) panicked; the suites passed.
        let mut f = Fake::new(Act::Ok, Act::Ok, Act::Ok);
        let mut opts = options(false, GatherWhen::OnFailure);
        opts.panicked = || true;
        let (r, log) = go(&mut f, &opts).await;
        assert_eq!(log, ["up", "suites", "gather", "hooks", "teardown"]);
        assert_eq!(r.exit, Exit::Panicked);
    }

    #[tokio::test]
    async fn a_panic_outranks_an_interrupt() {
        let mut f = Fake::new(Act::Ok, Act::UntilCancelled, Act::Panic);
        f.interrupt_at = Some(("suites", 1));
        let (r, log) = go(&mut f, &options(false, GatherWhen::OnFailure)).await;
        assert_eq!(log, ["up", "suites", "cancelled", "gather", "teardown"]);
        assert!(r.interrupted);
        assert_eq!(r.exit, Exit::Panicked);
    }
}
