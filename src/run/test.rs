//! `harness test` as a whole: the environment `up` left or a new one, the
//! run's order over [`super::real::RealStages`], then what the report must
//! still say (errors no phase told, panics no stage saw) and the suites'
//! namespaces in a cluster that outlives the run.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::TestArgs;
use crate::config::{Lane, Project};
use crate::exit::Exit;
use crate::report::bus::Bus;

/// How a `harness test` ended.
#[derive(Clone, Copy, Debug)]
pub struct TestRun {
    pub exit: Exit,
    /// The environment was kept (`--preserve` or an alias).
    pub preserve: bool,
}

/// `harness test`: up (unless an environment is already up), suites,
/// gather, teardown, in the order and with the budgets of [`super::run`].
/// Every event goes to `bus`, the last one `finished`; `told` says whether
/// a phase already told an error as it is worded (it is not told again).
pub async fn run(
    project: &Project,
    lane: &Lane,
    args: &TestArgs,
    run_id: &str,
    bus: Bus,
    told: impl Fn(&str) -> bool,
) -> anyhow::Result<TestRun> {
    let preserve = super::lifecycle::preserve(args.preserve, |k| std::env::var(k).ok());
    let existing = crate::cluster::state::read(&project.root, &lane.name).ok();
    let preserve_flag = preserve.preserve || existing.is_some();
    for notice in &preserve.notices {
        bus.emit(crate::report::Event::Notice {
            message: notice.clone(),
        });
    }
    // Each interrupt says at once what it will do, before the run acts on it.
    let interrupts = {
        let bus = bus.weak();
        super::count_interrupts(move |n| {
            bus.emit(crate::report::Event::Notice {
                message: super::lifecycle::interrupt_notice(n, preserve_flag),
            });
        })
        .context("cannot listen for SIGINT/SIGTERM")?
    };
    let deadline = args.deadline.map(|d| tokio::time::Instant::now() + d);
    let selection = crate::suites::stage::SuiteSelection {
        names: args.suites.clone(),
        shard: args.shard,
        jobs: args.jobs,
    };
    // Unknown suite names are a usage error before anything starts.
    crate::suites::stage::suite_specs(lane, &selection)?;
    let deploy_deadline =
        deadline.unwrap_or_else(|| tokio::time::Instant::now() + super::up::DEFAULT_UP_DEADLINE);
    let mut stages = super::real::RealStages::new(
        project,
        lane,
        super::up::UpOptions {
            reuse: false,
            rebuild: args.rebuild,
        },
        selection,
        run_id.to_owned(),
        bus.clone(),
        existing.clone(),
        deploy_deadline,
    );
    let options = super::RunOptions {
        // An environment that was up before this run is never torn down by it.
        preserve: preserve_flag,
        gather: args.gather,
        has_hooks: !lane.after_suites.is_empty(),
        hooks_budget: crate::hooks::budget(&lane.after_suites, crate::hooks::HOOK_GRACE),
        deadline,
        gather_budget: super::lifecycle::GATHER_BUDGET,
        teardown_budget: std::time::Duration::from_secs(120),
        panicked: crate::panics::any,
    };
    let result = super::run(&mut stages, &options, interrupts).await;
    // Hooks never disturb a cluster that is kept (SPEC §6): say so.
    if options.has_hooks && options.preserve {
        bus.emit(crate::report::Event::Notice {
            message: crate::hooks::skipped_notice(&lane.after_suites, existing.is_some()),
        });
    }
    // Suite namespaces in a cluster that outlives the run are removed (after
    // gather read them), unless the user asked to keep everything.
    let cluster_remains = !result.ran.contains(&"teardown") || !stages.owns_cluster();
    if cluster_remains && !preserve.preserve && result.exit != Exit::Interrupted {
        stages.delete_suite_namespaces().await;
    }
    // Errors a phase already told (with their fix) are not told again;
    // the others (a step past its budget, hooks skipped) are.
    bus.flush().await;
    for (step, error) in &result.errors {
        let causes = crate::failure::causes(error);
        let text = crate::failure::text(&causes);
        if told(&text) || result.interrupted && is_interruption(error) {
            continue;
        }
        let message = match crate::failure::fix(&causes) {
            Some(fix) => format!("{step}: {text}; fix: {fix}"),
            None => format!("{step}: {text}"),
        };
        bus.emit(crate::report::Event::Notice { message });
    }
    for message in panic_notices(&result, lane, &project.root) {
        bus.emit(crate::report::Event::Notice { message });
    }
    bus.emit(crate::report::Event::finished(result.exit));
    drop(stages);
    drop(bus);
    Ok(TestRun {
        exit: result.exit,
        preserve: preserve.preserve,
    })
}

/// What the report must say about panics beyond the stages' own errors:
/// those in tasks no stage awaited (the run went on without them), and a
/// cluster that a panicking teardown left behind.
fn panic_notices(result: &super::RunResult, lane: &Lane, root: &Path) -> Vec<String> {
    let mut notices: Vec<String> = crate::panics::unreported()
        .iter()
        .map(|p| {
            format!(
                "{p} [thread {}]; the run went on without that task",
                p.thread
            )
        })
        .collect();
    let teardown_panicked = result
        .errors
        .iter()
        .any(|(step, e)| *step == "teardown" && e.chain().any(|c| c.is::<crate::panics::Panic>()));
    if teardown_panicked && crate::cluster::state::read(root, &lane.name).is_ok() {
        notices.push(format!(
            "cluster {} may still exist (teardown panicked before it finished): `harness down --lane {}` deletes it",
            lane.cluster.name, lane.name
        ));
    }
    notices
}

/// The error an interrupted `up` returns: the interrupt was announced.
fn is_interruption(error: &anyhow::Error) -> bool {
    crate::failure::causes(error).iter().any(|c| {
        c.downcast_ref::<super::StageFailure>()
            .is_some_and(|f| f.exit == Exit::Interrupted)
    }) || error.to_string().starts_with("interrupted")
}
