//! The top of the program: runs a parsed command line and turns every
//! outcome, good or bad, into a message and an [`Exit`].
//!
//! This is the only place that prints; the modules below return data and
//! typed errors.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::{Cli, Command, NamespaceCommand, OutputFormat};
use crate::config::{self, ConfigError, Project};
use crate::exit::Exit;
use crate::plan::{self, UnknownLane};
use crate::preflight::{self, PreflightFailed};

/// Runs `work` until it ends or SIGINT/SIGTERM arrives; an interrupt drops
/// it (which kills what it runs and removes an unfinished bundle) and ends
/// in exit 130, with `after` saying what state that leaves.
async fn until_interrupted<T>(
    work: impl std::future::Future<Output = Result<T, crate::pipeline::StageFailure>>,
    after: &str,
) -> anyhow::Result<Result<T, crate::pipeline::StageFailure>> {
    let mut interrupts =
        crate::pipeline::count_interrupts(|_| {}).context("cannot listen for SIGINT/SIGTERM")?;
    Ok(tokio::select! {
        result = work => result,
        _ = interrupts.wait_for(|n| *n > 0) => Err(crate::pipeline::StageFailure::new(
            Exit::Interrupted,
            anyhow::anyhow!("interrupted: {after}"),
        )),
    })
}

/// Starts the live output for a command and the task that folds its report.
/// A run (`up`, `test`) also records its events in `record` and opens its
/// stream with [`crate::report::Event::RunStarted`].
fn start_output(
    output: OutputFormat,
    lane: &str,
    run_id: &str,
    record: Option<PathBuf>,
) -> (
    crate::report::bus::Bus,
    tokio::task::JoinHandle<crate::report::RunReport>,
) {
    let (bus, task, _) = start_output_told(output, lane, run_id, record);
    (bus, task)
}

/// The errors phases have already reported (`PhaseFinished`), as they
/// were worded: an error is told once, so the run does not repeat them.
type Told = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A sink that remembers which errors the phases told, then passes every
/// event on.
struct Remember {
    inner: Box<dyn crate::report::sink::Sink>,
    told: Told,
}

impl crate::report::sink::Sink for Remember {
    fn emit(&mut self, event: &crate::report::Stamped) {
        if let crate::report::Event::PhaseFinished {
            error: Some(error), ..
        } = &event.event
        {
            self.told.lock().expect("not poisoned").push(error.clone());
        }
        self.inner.emit(event);
    }

    fn finish(&mut self) {
        self.inner.finish();
    }
}

/// [`start_output`], with the record of what the phases told.
fn start_output_told(
    output: OutputFormat,
    lane: &str,
    run_id: &str,
    record: Option<PathBuf>,
) -> (
    crate::report::bus::Bus,
    tokio::task::JoinHandle<crate::report::RunReport>,
    Told,
) {
    use std::io::IsTerminal as _;
    let ci = crate::report::is_ci(|k| std::env::var(k).ok());
    let mode = crate::report::OutputMode::choose(
        output == OutputFormat::Json,
        std::io::stderr().is_terminal(),
        ci,
    );
    let sink: Box<dyn crate::report::sink::Sink> = match mode {
        crate::report::OutputMode::Json => {
            Box::new(crate::report::sink::JsonSink::new(std::io::stdout()))
        }
        crate::report::OutputMode::Plain => {
            Box::new(crate::report::sink::PlainSink::new(std::io::stderr()))
        }
        crate::report::OutputMode::Progress => Box::new(crate::report::sink::ProgressSink::new()),
    };
    let told = Told::default();
    let sink = Box::new(Remember {
        inner: sink,
        told: told.clone(),
    });
    let run = record.is_some();
    let (bus, task) = crate::report::bus::start_recording(
        sink,
        crate::report::RunReport::new(lane, run_id),
        record,
    );
    if run {
        bus.emit(crate::report::Event::RunStarted {
            lane: lane.to_owned(),
            run_id: run_id.to_owned(),
        });
    }
    (bus, task, told)
}

/// Where a run records its events: `.harness/runs/<run>/events.jsonl`.
fn events_file(project: &Project, run_id: &str) -> PathBuf {
    crate::stages::run_dir(project, run_id).join("events.jsonl")
}

/// Gathers the lane's environment now (the cluster `up` recorded).
async fn gather_now(
    project: &Project,
    lane: &config::Lane,
    out: Option<PathBuf>,
    since: Option<std::time::Duration>,
    max_size: Option<u64>,
    bus: &crate::report::bus::Bus,
) -> Result<crate::gather::Bundle, crate::pipeline::StageFailure> {
    use crate::pipeline::StageFailure;
    let state = crate::cluster::state::read(&project.root, &lane.name).map_err(|e| {
        let exit = match &e {
            crate::cluster::state::StateError::Missing { .. } => Exit::NotUp,
            _ => Exit::Internal,
        };
        StageFailure::new(exit, e)
    })?;
    let client = crate::stages::client_for(&state).await?;
    let out = out.unwrap_or_else(|| project.root.join(".harness").join("gather"));
    // The story of the `harness up` that brought the environment up, when
    // it was recorded: its deploy timeline and verdicts belong in the bundle.
    let story = crate::gather::story::Story::recorded(&events_file(project, &state.run_id));
    let bundle = tokio::time::timeout(
        crate::lifecycle::GATHER_BUDGET,
        crate::stages::gather(
            &client,
            project,
            lane,
            &out,
            &crate::stages::new_run_id(),
            Vec::new(),
            Vec::new(),
            story.as_ref(),
            since,
            max_size,
            bus,
        ),
    )
    .await
    .map_err(|_| {
        StageFailure::new(
            Exit::Gather,
            anyhow::anyhow!(
                "gather did not finish within {}s; no bundle was written",
                crate::lifecycle::GATHER_BUDGET.as_secs()
            ),
        )
    })??;
    bus.emit(crate::report::Event::Artifact {
        what: "bundle".into(),
        path: bundle.archive.clone(),
    });
    Ok(bundle)
}

/// How long `up` waits for the lane to be Ready without `--deadline`.
const DEFAULT_UP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// What a person needs to use an environment that is up.
fn how_to_use(
    project: &Project,
    lane: &config::Lane,
    state: &crate::cluster::state::LaneState,
) -> String {
    let mut text = format!(
        "\nlane {} is up on cluster {} (run {})\n  export KUBECONFIG={}\n",
        lane.name,
        state.cluster,
        state.run_id,
        state.kubeconfig.display()
    );
    for (component, url) in crate::stages::endpoints(project, lane) {
        text.push_str(&format!("  {component}: {url}\n"));
    }
    text.push_str(&format!(
        "  run the suites:  harness test --lane {0}\n  why not Ready:   harness diagnose --lane {0}\n  delete it:       harness down --lane {0}\n",
        lane.name
    ));
    text
}

/// `harness test`: up (unless an environment is already up), suites,
/// gather, teardown, in the order and with the budgets of [`crate::pipeline`].
async fn run_test(
    project: &Project,
    lane: &config::Lane,
    args: &crate::cli::TestArgs,
    output: OutputFormat,
) -> anyhow::Result<Exit> {
    let preserve = crate::lifecycle::preserve(args.preserve, |k| std::env::var(k).ok());
    let existing = crate::cluster::state::read(&project.root, &lane.name).ok();
    let preserve_flag = preserve.preserve || existing.is_some();
    let run_id = crate::stages::new_run_id();
    let (bus, report_task, told) = start_output_told(
        output,
        &lane.name,
        &run_id,
        Some(events_file(project, &run_id)),
    );
    for notice in &preserve.notices {
        bus.emit(crate::report::Event::Notice {
            message: notice.clone(),
        });
    }
    // Each interrupt says at once what it will do, before the run acts on it.
    let interrupts = {
        let bus = bus.weak();
        crate::pipeline::count_interrupts(move |n| {
            bus.emit(crate::report::Event::Notice {
                message: crate::lifecycle::interrupt_notice(n, preserve_flag),
            });
        })
        .context("cannot listen for SIGINT/SIGTERM")?
    };
    let deadline = args.deadline.map(|d| tokio::time::Instant::now() + d);
    let selection = crate::stages::SuiteSelection {
        names: args.suites.clone(),
        shard: args.shard,
        jobs: args.jobs,
    };
    // Unknown suite names are a usage error before anything starts.
    crate::stages::suite_specs(lane, &selection)?;
    let deploy_deadline =
        deadline.unwrap_or_else(|| tokio::time::Instant::now() + DEFAULT_UP_DEADLINE);
    let mut stages = crate::stages::RealStages::new(
        project,
        lane,
        crate::stages::UpOptions {
            reuse: false,
            rebuild: args.rebuild,
        },
        selection,
        run_id.clone(),
        bus.clone(),
        existing.clone(),
        deploy_deadline,
    );
    let options = crate::pipeline::RunOptions {
        // An environment that was up before this run is never torn down by it.
        preserve: preserve_flag,
        gather: args.gather,
        has_hooks: !lane.after_suites.is_empty(),
        hooks_budget: crate::hooks::budget(&lane.after_suites, crate::stages::HOOK_GRACE),
        deadline,
        gather_budget: crate::lifecycle::GATHER_BUDGET,
        teardown_budget: std::time::Duration::from_secs(120),
    };
    let result = crate::pipeline::run(&mut stages, &options, interrupts).await;
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
        if told_already(&told, &text) || result.interrupted && is_interruption(error) {
            continue;
        }
        let message = match crate::failure::fix(&causes) {
            Some(fix) => format!("{step}: {text}; fix: {fix}"),
            None => format!("{step}: {text}"),
        };
        bus.emit(crate::report::Event::Notice { message });
    }
    bus.emit(crate::report::Event::finished(result.exit));
    drop(stages);
    drop(bus);
    let report = report_task.await.unwrap_or_default();
    if output == OutputFormat::Text {
        eprint!("\n{}", crate::report::render::text(&report));
        if preserve.preserve
            && let Ok(state) = crate::cluster::state::read(&project.root, &lane.name)
        {
            eprint!("{}", how_to_use(project, lane, &state));
        }
    }
    match crate::report::github::publish(&report, |k| std::env::var(k).ok()) {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => eprintln!("harness: cannot write the GitHub step summary: {e}"),
    }
    Ok(result.exit)
}

/// What `down` says when nothing is up for the lane; it names a kind
/// cluster of the lane's name that exists anyway (made by hand, or by a
/// `up` whose state was lost), without touching it.
async fn nothing_up(lane: &config::Lane, gather: bool) -> String {
    use crate::cluster::Provider as _;
    let what = if gather {
        "nothing to gather or tear down"
    } else {
        "nothing to tear down"
    };
    let mut message = format!(
        "nothing is up for lane {} (no state file): {what}",
        lane.name
    );
    if let Ok(provider @ crate::cluster::AnyProvider::Kind(_)) =
        crate::cluster::AnyProvider::from_env(&lane.cluster)
        && let Ok(Ok(true)) =
            tokio::time::timeout(std::time::Duration::from_secs(20), provider.exists()).await
    {
        message.push_str(&format!(
            "; a kind cluster named {0} exists, but harness up did not record making it: `kind delete cluster --name {0}` deletes it if it is yours",
            lane.cluster.name
        ));
    }
    message
}

/// Whether a phase already told this error (flush the bus first: its
/// events reach the sink on another task).
fn told_already(told: &Told, text: &str) -> bool {
    told.lock().expect("not poisoned").iter().any(|t| t == text)
}

/// The error an interrupted `up` returns: the interrupt was announced.
fn is_interruption(error: &anyhow::Error) -> bool {
    crate::failure::causes(error).iter().any(|c| {
        c.downcast_ref::<crate::pipeline::StageFailure>()
            .is_some_and(|f| f.exit == Exit::Interrupted)
    }) || error.to_string().starts_with("interrupted")
}

/// A command that acts on one lane was not told which.
#[derive(Debug, thiserror::Error)]
#[error("the lane file defines {} lanes; say which with --lane", .lanes.len())]
pub struct LaneRequired {
    pub lanes: Vec<String>,
}

/// Runs the command and returns how the program should exit.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let global = &cli.global;
    match &cli.command {
        Command::Plan => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let plan = plan::plan(&project, global.lane.as_deref())?;
            match global.output {
                OutputFormat::Text => {
                    emit(&plan::render_text(&plan, &project))?;
                    if let Some(warning) = plan::sharing_warning(&plan) {
                        eprintln!("warning: {warning}");
                    }
                }
                OutputFormat::Json => emit(&(serde_json::to_string_pretty(&plan)? + "\n"))?,
            }
            Ok(Exit::Ok)
        }
        Command::Preflight => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            run_preflight(&project, global.lane.as_deref(), global.output).await?;
            Ok(Exit::Ok)
        }
        Command::Up(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = one_lane(&project, global.lane.as_deref())?;
            let run_id = crate::stages::new_run_id();
            let (bus, output) = start_output(
                global.output,
                &lane.name,
                &run_id,
                Some(events_file(&project, &run_id)),
            );
            if let Some(message) =
                crate::lifecycle::up_preserve_notice(args.preserve, |k| std::env::var(k).ok())
            {
                bus.emit(crate::report::Event::Notice { message });
            }
            let options = crate::stages::UpOptions {
                reuse: args.reuse,
                rebuild: args.rebuild,
            };
            let deadline =
                tokio::time::Instant::now() + args.deadline.unwrap_or(DEFAULT_UP_DEADLINE);
            // An interrupt stops `up` where it is (a build, a kind call, a
            // load, a wait); what it made so far stays for `harness down`.
            let mut interrupts = {
                let bus = bus.weak();
                crate::pipeline::count_interrupts(move |n| {
                    if n == 1 {
                        bus.emit(crate::report::Event::Notice {
                            message: "interrupted: stopping; what `up` made so far stays \
                                      (`harness down` removes it)"
                                .into(),
                        });
                    }
                })
                .context("cannot listen for SIGINT/SIGTERM")?
            };
            let work = async {
                let env = crate::stages::bring_up(&project, lane, options, &run_id, &bus)
                    .await
                    .map_err(|f| f.failure)?;
                let client = crate::stages::client_for(&env.state).await?;
                crate::stages::load_and_deploy(&client, &project, lane, &env, deadline, &bus)
                    .await?;
                Ok::<_, crate::pipeline::StageFailure>(env)
            };
            let result = tokio::select! {
                result = work => Some(result),
                _ = interrupts.wait_for(|n| *n > 0) => None,
            };
            let exit = match &result {
                None => Exit::Interrupted,
                Some(Ok(_)) => Exit::Ok,
                Some(Err(failure)) => failure.exit,
            };
            bus.emit(crate::report::Event::finished(exit));
            drop(bus);
            let _ = output.await;
            let Some(result) = result else {
                return Ok(Exit::Interrupted);
            };
            let env = result?;
            eprint!("{}", how_to_use(&project, lane, &env.state));
            Ok(Exit::Ok)
        }
        Command::Test(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = one_lane(&project, global.lane.as_deref())?;
            run_test(&project, lane, args, global.output).await
        }
        Command::Down(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = one_lane(&project, global.lane.as_deref())?;
            let (bus, output) = start_output(global.output, &lane.name, "down", None);
            // Nothing up is not a failure: a CI cleanup step that always
            // runs `harness down` must pass when the job never got that far.
            if let Err(crate::cluster::state::StateError::Missing { .. }) =
                crate::cluster::state::read(&project.root, &lane.name)
            {
                bus.emit(crate::report::Event::Notice {
                    message: nothing_up(lane, args.gather).await,
                });
                drop(bus);
                let _ = output.await;
                return Ok(Exit::Ok);
            }
            let work = async {
                if args.gather {
                    // Gather first: the bundle is the point, and a failed
                    // gather leaves the cluster in place to try again.
                    gather_now(&project, lane, None, None, None, &bus).await?;
                }
                crate::stages::tear_down(&project, &lane.name, &bus).await
            };
            let result = until_interrupted(
                work,
                "the lane's state is kept; run `harness down` again to finish",
            )
            .await?;
            drop(bus);
            let _ = output.await;
            result?;
            Ok(Exit::Ok)
        }
        Command::Gather(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = one_lane(&project, global.lane.as_deref())?;
            let (bus, output) = start_output(global.output, &lane.name, "gather", None);
            // The unfinished bundle of an interrupted gather removes itself,
            // so nothing half-written stays behind.
            let result = until_interrupted(
                gather_now(
                    &project,
                    lane,
                    args.out.clone(),
                    args.since,
                    args.max_size,
                    &bus,
                ),
                "no bundle was written",
            )
            .await?;
            drop(bus);
            let _ = output.await;
            let bundle = result?;
            eprintln!(
                "bundle: {}\n        {}",
                bundle.archive.display(),
                bundle.dir.display()
            );
            Ok(Exit::Ok)
        }
        Command::Report(args) => {
            let replayed = crate::report::replay::open(&args.bundle)?;
            match global.output {
                OutputFormat::Text => emit(&replayed.text())?,
                OutputFormat::Json => emit(&(replayed.json().to_string() + "\n"))?,
            }
            Ok(Exit::Ok)
        }
        Command::Diagnose(args) => live::diagnose(global, &cwd, &args.components).await,
        Command::Status => live::status(global, &cwd).await,
        Command::Namespace(NamespaceCommand::Create { prefix, process }) => {
            live::namespace_create(global, &cwd, prefix, *process).await
        }
    }
}

fn load(explicit: Option<&Path>, cwd: &Path, verbose: u8) -> Result<Project, ConfigError> {
    let path = config::discover(explicit, cwd)?;
    if verbose > 0 {
        eprintln!(
            "harness: using lane file {}",
            config::diag::display_path(&path)
        );
    }
    config::load(&path)
}

/// The one lane a command acts on: `--lane`, or the only one.
fn one_lane<'p>(project: &'p Project, lane: Option<&str>) -> anyhow::Result<&'p config::Lane> {
    match lane {
        Some(_) => Ok(plan::select(project, lane)?.remove(0)),
        None if project.lanes.len() == 1 => Ok(&project.lanes[0]),
        None => Err(LaneRequired {
            lanes: project.lanes.keys().cloned().collect(),
        }
        .into()),
    }
}

async fn run_preflight(
    project: &Project,
    lane: Option<&str>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let lane = one_lane(project, lane)?;
    let state_dir = state_dir(project);
    let report = preflight::run(project, lane, &state_dir).await;
    match output {
        OutputFormat::Text => eprint!("{}", report.render()),
        OutputFormat::Json => emit(&(serde_json::to_string(&report)? + "\n"))?,
    }
    if report.passed() {
        Ok(())
    } else {
        Err(PreflightFailed(report).into())
    }
}

/// Where the harness keeps its state, logs and bundles: `.harness/` beside
/// the lane file, or the lane file's directory itself before it exists.
fn state_dir(project: &Project) -> PathBuf {
    let dir = project.root.join(".harness");
    if dir.is_dir() {
        dir
    } else {
        project.root.clone()
    }
}

/// Writes to stdout; a closed pipe (`harness plan | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// The exit code for an error: the first error in the chain we know.
pub fn exit_for(error: &anyhow::Error) -> Exit {
    // A stage failure knows its exit code: it wins over what is inside it.
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<crate::pipeline::StageFailure>() {
            return failure.exit;
        }
        if let Some(exit) = exit_of(cause) {
            return exit;
        }
    }
    Exit::Internal
}

fn exit_of(cause: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if cause.is::<ConfigError>()
        || cause.is::<UnknownLane>()
        || cause.is::<LaneRequired>()
        || cause.is::<crate::stages::UnknownSuite>()
        || cause.is::<live::UnknownComponent>()
        || cause.is::<crate::report::replay::ReplayError>()
    {
        return Some(Exit::Usage);
    }
    if cause.is::<PreflightFailed>() {
        return Some(Exit::Preflight);
    }
    if let Some(e) = cause.downcast_ref::<crate::cluster::state::StateError>() {
        return Some(match e {
            crate::cluster::state::StateError::Missing { .. } => Exit::NotUp,
            _ => Exit::Internal,
        });
    }
    if cause.is::<crate::k8s::access::NoCluster>() || cause.is::<crate::k8s::access::NotUp>() {
        return Some(Exit::NotUp);
    }
    if let Some(e) = cause.downcast_ref::<crate::deploy::DeployError>() {
        return Some(if e.is_timeout() {
            Exit::Timeout
        } else {
            Exit::Deploy
        });
    }
    if cause.is::<live::Doomed>() {
        return Some(Exit::Deploy);
    }
    if cause.is::<crate::k8s::ClientError>()
        || cause.is::<crate::deploy::live::LiveError>()
        || cause.is::<live::Unreachable>()
    {
        return Some(Exit::Cluster);
    }
    if let Some(e) = cause.downcast_ref::<crate::suites::NamespaceError>() {
        return Some(match e {
            crate::suites::NamespaceError::InvalidPrefix { .. } => Exit::Usage,
            _ => Exit::Cluster,
        });
    }
    None
}

/// How to fix it, when an error in the chain knows.
#[cfg(test)]
fn help_for(error: &anyhow::Error) -> Option<String> {
    crate::failure::fix(&crate::failure::causes(error))
}

/// Prints an error once, as a chain, with its fix; returns the exit code.
pub fn report_error(error: &anyhow::Error, output: OutputFormat) -> Exit {
    let exit = exit_for(error);
    let causes = crate::failure::causes(error);
    let message = crate::failure::text(&causes);
    let help = crate::failure::fix(&causes);
    let mut text = String::new();
    let config = causes.iter().find_map(|c| c.downcast_ref::<ConfigError>());
    if let Some(rendered) = config.and_then(ConfigError::rendered) {
        text.push_str(&rendered);
        text.push_str(&format!("\nharness: {error}; nothing was started\n"));
    } else {
        text.push_str(&format!("error: {message}\n"));
        if let Some(help) = &help {
            text.push_str(&format!("  = help: {help}\n"));
        }
    }
    if let Some(d) = causes
        .iter()
        .find_map(|c| c.downcast_ref::<crate::deploy::DeployError>())
        .and_then(crate::deploy::DeployError::diagnosis)
    {
        // A failure or a deadline is never shown without its table and evidence.
        text.push('\n');
        text.push_str(&d.render());
    }
    eprint!("{text}");
    if output == OutputFormat::Json {
        let diagnostics = match config {
            Some(ConfigError::Invalid { diagnostics, .. }) => {
                serde_json::to_value(diagnostics).ok()
            }
            _ => None,
        };
        let json = serde_json::json!({
            "error": {
                "message": message,
                "exit_code": exit.code(),
                "kind": exit,
                "help": help,
                "diagnostics": diagnostics,
            }
        });
        let _ = emit(&(json.to_string() + "\n"));
    }
    exit
}

pub use live::Unreachable;

/// `diagnose`, `status` and `namespace create`: the commands that act on
/// the lane's running cluster.
mod live {
    use std::path::Path;

    use anyhow::Context as _;

    use super::{emit, load, one_lane};
    use crate::cli::{Global, OutputFormat};
    use crate::deploy::{Applier, live::component_state};
    use crate::exit::Exit;
    use crate::k8s::{self, access};
    use crate::suites::{NamespaceProvisioner, OsRandom, namespace::namespace_name};

    /// `diagnose` found a component that will not become Ready.
    #[derive(Debug, thiserror::Error)]
    #[error("{} will not become Ready", .0.join(", "))]
    pub struct Doomed(pub Vec<String>);

    /// A component named on the command line is not in the lane.
    #[derive(Debug, thiserror::Error)]
    #[error("lane `{lane}` has no component `{name}` (it deploys: {})", .known.join(", "))]
    pub struct UnknownComponent {
        pub lane: String,
        pub name: String,
        pub known: Vec<String>,
    }

    async fn connect(
        global: &Global,
        cwd: &Path,
    ) -> anyhow::Result<(crate::config::Project, String, kube::Client)> {
        let project = load(global.config.as_deref(), cwd, global.verbose)?;
        let lane = one_lane(&project, global.lane.as_deref())?.name.clone();
        let env = std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next());
        let home = std::env::var_os("HOME").map(Into::into);
        let (access, source) = access::resolve(
            &project.root,
            &project.lanes[lane.as_str()],
            global.kubeconfig.as_deref(),
            env,
            home,
        )?;
        if global.verbose > 0 {
            eprintln!("harness: cluster from {source}");
        }
        let client = k8s::connect(&access).await?;
        // Ask the cluster before anything else: a kubeconfig left behind by
        // an old cluster (kind's, $KUBECONFIG) is not an environment that
        // is up, and one `up` recorded that does not answer is a cluster
        // problem, not a manifest one.
        let recorded =
            global.kubeconfig.is_some() || access::state_file(&project.root, &lane).is_file();
        let answer = tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await;
        let silent = match answer {
            Ok(Ok(_)) | Ok(Err(kube::Error::Api(_))) => None,
            Ok(Err(e)) => Some(crate::failure::text(&crate::failure::causes_of(&e))),
            Err(_) => Some(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
        };
        match silent {
            None => Ok((project, lane, client)),
            Some(detail) if recorded => Err(Unreachable {
                lane,
                found_in: source,
                detail,
            }
            .into()),
            Some(detail) => Err(access::NotUp {
                detail: format!(
                    "harness up recorded none, and the cluster in the {source} does not answer ({detail})"
                ),
                lane,
            }
            .into()),
        }
    }

    /// How long the first request may take before the cluster counts as silent.
    const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    /// The cluster `up` recorded (or `--kubeconfig` named) does not answer.
    #[derive(Debug, thiserror::Error)]
    #[error("the cluster of lane {lane} ({found_in}) does not answer: {detail}")]
    pub struct Unreachable {
        pub lane: String,
        /// Where its kubeconfig came from.
        pub found_in: String,
        pub detail: String,
    }

    impl Unreachable {
        pub fn help(&self) -> String {
            format!(
                "check that it still runs (`kind get clusters`, `docker ps`); `harness down --lane {0}` removes what is left, `harness up --lane {0}` brings the lane up again",
                self.lane
            )
        }
    }

    pub async fn diagnose(global: &Global, cwd: &Path, names: &[String]) -> anyhow::Result<Exit> {
        let (project, lane_name, client) = connect(global, cwd).await?;
        let lane = &project.lanes[lane_name.as_str()];
        let deployed = crate::plan::closure(&project, &lane.components);
        for name in names {
            if !deployed.contains(name) {
                return Err(UnknownComponent {
                    lane: lane_name.clone(),
                    name: name.clone(),
                    known: deployed.clone(),
                }
                .into());
            }
        }
        let chosen: Vec<&String> = deployed
            .iter()
            .filter(|c| names.is_empty() || names.contains(c))
            .collect();
        let applier = Applier::new(client.clone());
        let mut doomed = Vec::new();
        let mut out = String::new();
        let mut json = Vec::new();
        // The same diagnosis a bundle carries in harness/diagnosis.{txt,json}.
        for name in chosen {
            let diagnosed =
                crate::gather::diagnosis::component(&client, &applier, &project, lane, name)
                    .await?;
            if diagnosed.doomed {
                doomed.push(name.clone());
            }
            out.push_str(&diagnosed.text);
            json.push(diagnosed.json);
        }
        match global.output {
            OutputFormat::Text => emit(&out)?,
            OutputFormat::Json => emit(&format!(
                "{}\n",
                serde_json::json!({"lane": lane_name, "components": json})
            ))?,
        }
        if doomed.is_empty() {
            Ok(Exit::Ok)
        } else {
            Err(Doomed(doomed).into())
        }
    }

    pub async fn status(global: &Global, cwd: &Path) -> anyhow::Result<Exit> {
        let (project, lane_name, client) = connect(global, cwd).await?;
        let lane = &project.lanes[lane_name.as_str()];
        let applier = Applier::new(client.clone());
        let now = crate::readiness::Timestamp::now();
        let mut rows = vec![["COMPONENT", "STATE", "READY", "RESTARTS", "AGE"].map(String::from)];
        let mut json = Vec::new();
        for name in crate::plan::closure(&project, &lane.components) {
            let state =
                component_state(&client, &applier, lane, &project.components[name.as_str()])
                    .await?;
            let ready = state
                .judgement
                .statuses
                .iter()
                .filter(|s| s.is_ready())
                .count();
            let age = state
                .age(now)
                .map(|d| {
                    humantime::format_duration(std::time::Duration::from_secs(d.as_secs()))
                        .to_string()
                })
                .unwrap_or_else(|| "-".into());
            json.push(serde_json::json!({
                "component": name,
                "state": state.state(),
                "ready": ready,
                "pods": state.judgement.statuses.len(),
                "restarts": state.restarts(),
                "age_seconds": state.age(now).map(|d| d.as_secs()),
            }));
            rows.push([
                name.clone(),
                state.state().to_owned(),
                format!("{ready}/{}", state.judgement.statuses.len()),
                state.restarts().to_string(),
                age,
            ]);
        }
        if global.output == OutputFormat::Json {
            emit(&format!(
                "{}\n",
                serde_json::json!({"lane": lane_name, "components": json})
            ))?;
            return Ok(Exit::Ok);
        }
        let widths: Vec<usize> = (0..5)
            .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        let mut out = format!("lane {lane_name}\n");
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        emit(&out)?;
        Ok(Exit::Ok)
    }

    pub async fn namespace_create(
        global: &Global,
        cwd: &Path,
        prefix: &str,
        process: u32,
    ) -> anyhow::Result<Exit> {
        let (_, _, client) = connect(global, cwd).await?;
        let name = namespace_name(prefix, process as usize, &mut OsRandom)?;
        let run_id = std::env::var(crate::suites::env::HARNESS_RUN_ID)
            .unwrap_or_else(|_| "manual".to_owned());
        k8s::KubeNamespaces::new(client, run_id)
            .create(&name)
            .await
            .with_context(|| format!("namespace create --prefix {prefix}"))?;
        emit(&format!("{name}\n"))?;
        Ok(Exit::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_error_chain() {
        let config: anyhow::Error = ConfigError::NotFound { start: "/x".into() }.into();
        assert_eq!(exit_for(&config), Exit::Usage);
        let wrapped = config.context("while planning");
        assert_eq!(exit_for(&wrapped), Exit::Usage);
        let pf: anyhow::Error = PreflightFailed(preflight::Report {
            lane: "a".into(),
            checks: vec![],
        })
        .into();
        assert_eq!(exit_for(&pf), Exit::Preflight);
        let lane: anyhow::Error = LaneRequired {
            lanes: vec!["a".into(), "b".into()],
        }
        .into();
        assert_eq!(exit_for(&lane), Exit::Usage);
        assert_eq!(exit_for(&anyhow::anyhow!("disk on fire")), Exit::Internal);
        let stage: anyhow::Error = crate::pipeline::StageFailure::new(
            Exit::Cluster,
            anyhow::anyhow!("kind delete failed"),
        )
        .into();
        assert_eq!(exit_for(&stage), Exit::Cluster);
        assert_eq!(stage.to_string(), "kind delete failed");
        let diagnosis = Box::new(crate::deploy::Diagnosis::default());
        let doomed: anyhow::Error = crate::deploy::DeployError::Failed {
            component: "db".into(),
            diagnosis: diagnosis.clone(),
        }
        .into();
        assert_eq!(exit_for(&doomed), Exit::Deploy);
        let late: anyhow::Error = crate::deploy::DeployError::Deadline {
            component: "db".into(),
            after: std::time::Duration::from_secs(300),
            diagnosis,
        }
        .into();
        assert_eq!(exit_for(&late), Exit::Timeout);
        let ns: anyhow::Error =
            crate::suites::NamespaceError::InvalidPrefix { prefix: "X".into() }.into();
        assert_eq!(exit_for(&ns), Exit::Usage);
    }

    #[test]
    fn help_comes_from_the_typed_error() {
        let e: anyhow::Error = LaneRequired {
            lanes: vec!["a".into(), "b".into()],
        }
        .into();
        assert_eq!(help_for(&e).as_deref(), Some("lanes defined: a, b"));
        assert_eq!(help_for(&anyhow::anyhow!("x")), None);
    }
}
