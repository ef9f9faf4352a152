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
    work: impl std::future::Future<Output = Result<T, crate::run::StageFailure>>,
    after: &str,
) -> anyhow::Result<Result<T, crate::run::StageFailure>> {
    let mut interrupts =
        crate::run::count_interrupts(|_| {}).context("cannot listen for SIGINT/SIGTERM")?;
    Ok(tokio::select! {
        result = work => result,
        _ = interrupts.wait_for(|n| *n > 0) => Err(crate::run::StageFailure::new(
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

    fn progress(&mut self, progress: &crate::report::progress::Progress, at: jiff::Timestamp) {
        self.inner.progress(progress, at);
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

/// `harness test` with its output: the live events, then the report, how
/// to use a kept environment, and the GitHub step summary.
async fn run_test(
    project: &Project,
    lane: &config::Lane,
    args: &crate::cli::TestArgs,
    output: OutputFormat,
) -> anyhow::Result<Exit> {
    let run_id = crate::run::new_run_id();
    let (bus, report_task, told) = start_output_told(
        output,
        &lane.name,
        &run_id,
        Some(crate::run::events_file(project, &run_id)),
    );
    let told = |text: &str| told.lock().expect("not poisoned").iter().any(|t| t == text);
    let run = crate::run::test::run(project, lane, args, &run_id, bus, told).await?;
    let report = report_task.await.unwrap_or_default();
    if output == OutputFormat::Text {
        eprint!("\n{}", crate::report::render::text(&report));
        if run.preserve
            && let Ok(state) = crate::cluster::state::read(&project.root, &lane.name)
        {
            eprint!("{}", how_to_use(project, lane, &state));
        }
    }
    match crate::report::github::publish(&report, |k| std::env::var(k).ok()) {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => eprintln!("harness: cannot write the GitHub step summary: {e}"),
    }
    Ok(run.exit)
}

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
    for (component, url) in crate::suites::stage::endpoints(project, lane) {
        text.push_str(&format!("  {component}: {url}\n"));
    }
    text.push_str(&format!(
        "  run the suites:  harness test --lane {0}\n  why not Ready:   harness diagnose --lane {0}\n  delete it:       harness down --lane {0}\n",
        lane.name
    ));
    text
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
            // Outside every stage: main's last resort (tests/cli.rs).
            crate::panics::inject("plan");
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
            let run_id = crate::run::new_run_id();
            let (bus, output) = start_output(
                global.output,
                &lane.name,
                &run_id,
                Some(crate::run::events_file(&project, &run_id)),
            );
            if let Some(message) =
                crate::run::lifecycle::up_preserve_notice(args.preserve, |k| std::env::var(k).ok())
            {
                bus.emit(crate::report::Event::Notice { message });
            }
            let options = crate::run::up::UpOptions {
                reuse: args.reuse,
                rebuild: args.rebuild,
            };
            let deadline = tokio::time::Instant::now()
                + args.deadline.unwrap_or(crate::run::up::DEFAULT_UP_DEADLINE);
            // An interrupt stops `up` where it is (a build, a kind call, a
            // load, a wait); what it made so far stays for `harness down`.
            let mut interrupts = {
                let bus = bus.weak();
                crate::run::count_interrupts(move |n| {
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
            let work = crate::run::up::up(&project, lane, options, &run_id, deadline, &bus);
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
                    message: crate::cluster::stage::nothing_up(lane, args.gather).await,
                });
                drop(bus);
                let _ = output.await;
                return Ok(Exit::Ok);
            }
            let work = async {
                if args.gather {
                    // Gather first: the bundle is the point, and a failed
                    // gather leaves the cluster in place to try again.
                    crate::gather::stage::gather_now(&project, lane, None, None, None, &bus)
                        .await?;
                }
                crate::cluster::stage::tear_down(&project, &lane.name, &bus).await
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
                crate::gather::stage::gather_now(
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
        if let Some(failure) = cause.downcast_ref::<crate::run::StageFailure>() {
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
        || cause.is::<crate::suites::stage::UnknownSuite>()
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

/// Prints a panic that unwound out of the whole command (one that no stage
/// caught) once, with what it means; returns [`Exit::Panicked`].
pub fn report_panic(panic: &crate::panics::Panic, output: OutputFormat) -> Exit {
    let exit = Exit::Panicked;
    let help = "it happened outside the run's stages, so the report was not written and \
                gather and teardown may not have run: if `harness up` or `harness test` \
                created a cluster, `harness gather` collects it and `harness down` deletes it";
    eprint!("error: {panic}\n  = note: {help}\n");
    if output == OutputFormat::Json {
        let json = serde_json::json!({
            "error": {
                "message": panic.to_string(),
                "exit_code": exit.code(),
                "kind": exit,
                "help": help,
                "diagnostics": null,
            }
        });
        let _ = emit(&(json.to_string() + "\n"));
    }
    exit
}

mod live;

pub use live::Unreachable;

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink that remembers told errors wraps the live one: everything
    /// reaches it, progress included (without it the terminal showed no
    /// bytes, no waves and no component states).
    #[test]
    fn the_told_errors_sink_passes_progress_on() {
        use crate::report::progress::Progress;
        use crate::report::sink::Sink;
        struct Seen(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl Sink for Seen {
            fn emit(&mut self, event: &crate::report::Stamped) {
                self.0.lock().unwrap().push(format!("{:?}", event.event));
            }
            fn progress(&mut self, progress: &Progress, _: jiff::Timestamp) {
                self.0.lock().unwrap().push(format!("{progress:?}"));
            }
        }
        let seen = std::sync::Arc::default();
        let mut sink = Remember {
            inner: Box::new(Seen(std::sync::Arc::clone(&seen))),
            told: Told::default(),
        };
        sink.progress(
            &Progress::Collectors { done: 1, total: 2 },
            jiff::Timestamp::now(),
        );
        sink.emit(&crate::report::Stamped::now(crate::report::Event::Notice {
            message: "n".into(),
        }));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].starts_with("Collectors"), "{seen:?}");
    }

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
        let stage: anyhow::Error =
            crate::run::StageFailure::new(Exit::Cluster, anyhow::anyhow!("kind delete failed"))
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
