//! `harness test` as a whole: the environment `up` left or a new one, the
//! run's order over [`super::real::RealStages`], then what the report must
//! still say (errors no phase told, panics no stage saw) and the suites'
//! namespaces in a cluster that outlives the run.

use std::path::Path;
use std::time::Duration;

use crate::config::Lane;
use crate::exit::Exit;
use crate::failure::StageFailure;
use crate::report::{Event, Notice};
use crate::stage::Ctx;
use crate::suites::Shard;

use super::lifecycle::GatherWhen;

/// What `harness test` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// Suites to run, by name; empty for all of the lane's.
    pub suites: Vec<String>,
    /// Suites run at once.
    pub jobs: Option<u32>,
    /// The m-th of n slices of the suites.
    pub shard: Option<Shard>,
    pub gather: GatherWhen,
    /// `--preserve`: keep the cluster afterwards.
    pub preserve: bool,
    /// Finish everything, gather included, within this time.
    pub deadline: Option<Duration>,
    /// Rebuild images even when their content tag exists.
    pub rebuild: bool,
    /// `--retries`: how many times every failed suite runs again, over
    /// each suite's `retries:`.
    pub retries: Option<u32>,
    /// `--flaky-result`: whether tests that passed only on a retry pass.
    pub flaky_result: crate::suites::verdict::FlakyResult,
}

impl TestOptions {
    /// Which of a lane's suites run, and how.
    pub fn selection(&self) -> crate::suites::stage::SuiteSelection {
        crate::suites::stage::SuiteSelection {
            names: self.suites.clone(),
            shard: self.shard,
            jobs: self.jobs,
            retry: crate::suites::stage::RetryPolicy {
                retries: self.retries,
                flaky_result: self.flaky_result,
            },
        }
    }

    /// Whether `lane` has every suite named: a usage error (exit 2) that
    /// names the lane and its suites when not.
    pub fn check_suites(&self, lane: &Lane) -> Result<(), StageFailure> {
        crate::suites::stage::suite_specs(lane, &self.selection())?;
        Ok(())
    }
}

/// How a `harness test` ended.
#[derive(Clone, Copy, Debug)]
pub struct TestRun {
    pub exit: Exit,
    /// The environment was kept (`--preserve` or an alias).
    pub preserve: bool,
}

/// `harness test`: up (unless an environment is already up), suites,
/// gather, teardown, in the order and with the budgets of [`super::sequence`].
/// Every event goes to the context's bus, the last one `finished`; an
/// error a phase already told (with its fix) is not told again.
pub async fn test_lane(ctx: Ctx<'_>, options: &TestOptions) -> Result<TestRun, StageFailure> {
    let (project, lane, bus) = (ctx.project, ctx.lane, ctx.bus.clone());
    let preserve = super::lifecycle::preserve(options.preserve, |k| std::env::var(k).ok());
    let existing = crate::cluster::state::read(&project.root, &lane.name).ok();
    let preserve_flag = preserve.preserve || existing.is_some();
    for notice in &preserve.notices {
        bus.notice(notice.clone());
    }
    // Each interrupt says at once what it will do, before the run acts on it.
    let interrupts = {
        let bus = bus.weak();
        super::count_interrupts(move |n| {
            bus.notice(super::lifecycle::interrupt_notice(n, preserve_flag));
        })
        .map_err(|source| super::SignalError { source })?
    };
    let deadline = options.deadline.map(|d| tokio::time::Instant::now() + d);
    // Unknown suite names are a usage error before anything starts.
    options.check_suites(lane)?;
    let selection = options.selection();
    let deploy_deadline =
        deadline.unwrap_or_else(|| tokio::time::Instant::now() + crate::stage::UP_DEADLINE);
    let mut stages = super::real::RealStages::new(
        ctx,
        super::up::UpOptions {
            reuse: false,
            rebuild: options.rebuild,
        },
        selection,
        existing.clone(),
        deploy_deadline,
    );
    let run_options = super::RunOptions {
        // An environment that was up before this run is never torn down by it.
        preserve: preserve_flag,
        gather: options.gather,
        has_hooks: !lane.after_suites.is_empty(),
        hooks_budget: crate::hooks::budget(&lane.after_suites, crate::hooks::HOOK_GRACE),
        deadline,
        gather_budget: crate::stage::GATHER_BUDGET,
        teardown_budget: crate::stage::TEARDOWN_BUDGET,
        panicked: crate::panics::any,
    };
    let result = super::sequence(&mut stages, &run_options, interrupts).await;
    // Hooks never disturb a cluster that is kept (SPEC §6): say so.
    if run_options.has_hooks && run_options.preserve {
        bus.notice(crate::hooks::skipped_notice(
            &lane.after_suites,
            existing.is_some(),
        ));
    }
    // Suite namespaces in a cluster that outlives the run are removed (after
    // gather read them), unless the user asked to keep everything.
    let cluster_remains = !result.ran.contains(&"teardown") || !stages.owns_cluster();
    if cluster_remains && !preserve.preserve && result.exit != Exit::Interrupted {
        stages.delete_suite_namespaces().await;
    }
    // Errors a phase already told (with their fix) are not told again;
    // the others (a step past its budget, hooks skipped) are.
    for (step, failure) in &result.errors {
        if failure.told() {
            continue;
        }
        bus.notice(Notice::StepFailed {
            step: (*step).to_owned(),
            error: failure.text(),
            fix: failure.fix(),
        });
    }
    for notice in panic_notices(&result, lane, &project.root) {
        bus.notice(notice);
    }
    bus.emit(Event::finished(result.exit));
    drop(stages);
    Ok(TestRun {
        exit: result.exit,
        preserve: preserve.preserve,
    })
}

/// What the report must say about panics beyond the stages' own errors:
/// those in tasks no stage awaited (the run went on without them), and a
/// cluster that a panicking teardown left behind.
fn panic_notices(result: &super::RunResult, lane: &Lane, root: &Path) -> Vec<Notice> {
    let mut notices: Vec<Notice> = crate::panics::unreported()
        .iter()
        .map(|p| Notice::Panicked {
            panic: p.to_string(),
            thread: p.thread.clone(),
        })
        .collect();
    let teardown_panicked = result
        .errors
        .iter()
        .any(|(step, e)| *step == "teardown" && e.exit() == Exit::Panicked);
    if teardown_panicked && crate::cluster::state::read(root, &lane.name).is_ok() {
        notices.push(Notice::ClusterMayRemain {
            cluster: lane.cluster.name.clone(),
            lane: lane.name.clone(),
        });
    }
    notices
}
