//! The top of the program: runs a parsed command line and turns every
//! outcome, good or bad, into a message and an [`Exit`].
//!
//! This is the only place that prints. The library returns data and typed
//! failures; a failure carries its own exit code and fix
//! ([`harness::failure::Failure`]), so telling it is the same few lines for
//! every command: its cause chain once, its fix, and what it shows beyond
//! them (a deploy's unready table and evidence, a lane file's annotated
//! lines).

use std::io::Write as _;
use std::path::Path;

use harness::config::{self, ConfigError, Project};
use harness::exit::Exit;
use harness::failure::{Failure, StageFailure};
use harness::plan;
use harness::preflight::{self, PreflightFailed};
use harness::report::{self, Event};
use harness::stage::Ctx;

use crate::cli::{Cli, Command, NamespaceCommand, OutputFormat};

mod live;
mod several;

/// What the program itself could not do (read its directory, write its
/// output): harness's own trouble (70).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot read the current directory")]
    Cwd(#[source] std::io::Error),
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),
    #[error("`--lane {0}` and `--{1}` both choose the lanes to test")]
    LaneAndAffected(String, &'static str),
    #[error("`--lane` names {0} lanes; only `harness test` runs several")]
    SeveralLanes(usize),
}

impl Failure for AppError {
    fn exit(&self) -> Exit {
        match self {
            AppError::Cwd(_) | AppError::Stdout(_) => Exit::Internal,
            AppError::LaneAndAffected(..) | AppError::SeveralLanes(_) => Exit::Usage,
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            AppError::Cwd(_) | AppError::Stdout(_) => None,
            AppError::LaneAndAffected(_, flag) => Some(format!(
                "drop `--lane` (and unset HARNESS_LANE) to test the lanes `--{flag}` chooses, or drop `--{flag}`"
            )),
            AppError::SeveralLanes(_) => Some(
                "give one `--lane` (HARNESS_LANE names one); `harness test --lane a --lane b` runs several at once"
                    .into(),
            ),
        }
    }
}

/// The live output of a command and the task that folds its report. A run
/// (`up`, `test`) also records its events in the run's directory and opens
/// its stream with [`Event::RunStarted`].
struct Output {
    bus: report::bus::Bus,
    report: tokio::task::JoinHandle<report::RunReport>,
}

impl Output {
    /// `several`: lanes run at once share the terminal, so each line says
    /// its lane (`audit | 14:22:40 …`, `{"lane":"audit",…}`) and nothing is
    /// redrawn.
    fn start(
        format: OutputFormat,
        lane: &str,
        run_id: &str,
        record: Option<&Path>,
        several: bool,
    ) -> Self {
        use report::sink::{JsonSink, LinePrefix, PlainSink, ProgressSink};
        use std::io::IsTerminal as _;
        let ci = report::is_ci(|k| std::env::var(k).ok());
        let mode = report::OutputMode::choose(
            format == OutputFormat::Json,
            std::io::stderr().is_terminal() && !several,
            ci || several,
        );
        let sink: Box<dyn report::sink::Sink> = match (mode, several) {
            (report::OutputMode::Json, false) => Box::new(JsonSink::new(std::io::stdout())),
            (report::OutputMode::Json, true) => Box::new(JsonSink::tagged(std::io::stdout(), lane)),
            (_, true) => Box::new(PlainSink::new(LinePrefix::new(
                format!("{lane} | "),
                std::io::stderr(),
            ))),
            (report::OutputMode::Plain, false) => Box::new(PlainSink::new(std::io::stderr())),
            (report::OutputMode::Progress, false) => Box::new(ProgressSink::new()),
        };
        let (bus, report) = report::bus::start_recording(
            sink,
            report::RunReport::new(lane, run_id),
            record.map(Path::to_path_buf),
        );
        if record.is_some() {
            bus.emit(Event::RunStarted {
                lane: lane.to_owned(),
                run_id: run_id.to_owned(),
            });
        }
        Self { bus, report }
    }

    /// Waits until every event is shown and folded; the report.
    async fn finish(self) -> report::RunReport {
        drop(self.bus);
        self.report.await.unwrap_or_default()
    }
}

/// `harness test` with its output: the live events, then the report, how
/// to use a kept environment, and the GitHub step summary.
/// With `several`, the lane runs beside others: its lines say its lane,
/// its report comes out in one piece under its name, and it begins with
/// what running beside them changed (its moved host ports).
async fn test_command(
    project: &Project,
    lane: &config::Lane,
    run_id: &str,
    args: &crate::cli::TestArgs,
    format: OutputFormat,
    several: Option<&[harness::lanes::Moved]>,
) -> Result<Exit, StageFailure> {
    let layout = harness::layout::Layout::new(&project.root);
    let output = Output::start(
        format,
        &lane.name,
        run_id,
        Some(&layout.events_file(run_id)),
        several.is_some(),
    );
    for moved in several.unwrap_or_default() {
        if moved.lane == lane.name {
            output.bus.notice(report::Notice::Text {
                message: moved.to_string(),
            });
        }
    }
    let several = several.is_some();
    let ctx = Ctx::new(project, lane, run_id.to_owned(), output.bus.clone());
    let run = harness::run::test::test_lane(ctx, &args.options()).await;
    let report = output.finish().await;
    let run = run?;
    if format == OutputFormat::Text {
        let mut text = report::render::text(&report);
        if run.preserve
            && let Ok(state) = harness::cluster::state::read(&project.root, &lane.name)
        {
            text.push_str(&how_to_use(project, lane, &state));
        }
        match several {
            // One write: the lanes still running do not cut into it.
            true => eprint!("\n== lane {} ==\n{text}", lane.name),
            false => eprint!("\n{text}"),
        }
    }
    match report::github::publish(&report, |k| std::env::var(k).ok()) {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => eprintln!("harness: cannot write the GitHub step summary: {e}"),
    }
    Ok(run.exit)
}

/// What a person needs to use an environment that is up.
fn how_to_use(
    project: &Project,
    lane: &config::Lane,
    state: &harness::cluster::state::LaneState,
) -> String {
    let mut text = format!(
        "\nlane {} is up on cluster {} (run {})\n  export KUBECONFIG={}\n",
        lane.name,
        state.cluster,
        state.run_id,
        state.kubeconfig.display()
    );
    for (component, url) in harness::suites::stage::endpoints(project, lane) {
        text.push_str(&format!("  {component}: {url}\n"));
    }
    text.push_str(&format!(
        "  run the suites:  harness test --lane {0}\n  why not Ready:   harness diagnose --lane {0}\n  delete it:       harness down --lane {0}\n",
        lane.name
    ));
    text
}

/// Runs the command and returns how the program should exit.
pub async fn dispatch(cli: Cli) -> Result<Exit, StageFailure> {
    let cwd = std::env::current_dir().map_err(AppError::Cwd)?;
    let global = &cli.global;
    match &cli.command {
        Command::Plan => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            // Outside every stage: main's last resort (tests/cli.rs).
            harness::panics::inject("plan");
            let plan = plan::plan(&project, lane_flag(global)?)?;
            match global.output {
                OutputFormat::Text => {
                    emit(&plan::render_text(&plan, &project))?;
                    if let Some(warning) = plan::sharing_warning(&plan) {
                        eprintln!("note: {warning}");
                    }
                }
                OutputFormat::Json => emit(&(json_pretty(&plan) + "\n"))?,
            }
            Ok(Exit::Ok)
        }
        Command::Preflight => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = &one_lane(&project, global)?;
            let disk = harness::layout::Layout::new(&project.root).disk_to_check();
            let report = preflight::run(&project, lane, &disk).await;
            match global.output {
                OutputFormat::Text => eprint!("{}", report.render()),
                OutputFormat::Json => emit(&(json_line(&report) + "\n"))?,
            }
            if report.passed() {
                Ok(Exit::Ok)
            } else {
                Err(PreflightFailed(report).into())
            }
        }
        Command::Up(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = &one_lane(&project, global)?;
            let run_id = harness::stage::new_run_id();
            let layout = harness::layout::Layout::new(&project.root);
            let output = Output::start(
                global.output,
                &lane.name,
                &run_id,
                Some(&layout.events_file(&run_id)),
                false,
            );
            if let Some(notice) = harness::run::lifecycle::up_preserve_notice(args.preserve, |k| {
                std::env::var(k).ok()
            }) {
                output.bus.notice(notice);
            }
            let options = harness::run::up::UpOptions {
                reuse: args.reuse,
                rebuild: args.rebuild,
            };
            let deadline =
                tokio::time::Instant::now() + args.deadline.unwrap_or(harness::stage::UP_DEADLINE);
            let ctx = Ctx::new(&project, lane, run_id, output.bus.clone());
            let result = harness::run::up::until_up(&ctx, options, deadline).await;
            let exit = match &result {
                Ok(_) => Exit::Ok,
                Err(failure) => failure.exit(),
            };
            output.bus.emit(Event::finished(exit));
            drop(ctx);
            output.finish().await;
            match result {
                Ok(env) => {
                    eprint!("{}", how_to_use(&project, lane, &env.state));
                    Ok(Exit::Ok)
                }
                // The interrupt announced what it leaves; nothing to add.
                Err(failure) if failure.exit() == Exit::Interrupted => Ok(Exit::Interrupted),
                Err(failure) => Err(failure),
            }
        }
        Command::Affected(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let affected = harness::affected::find(&project, &args.base)?;
            match global.output {
                OutputFormat::Text => emit(&affected.render_text())?,
                OutputFormat::Json => emit(&(json_pretty(&affected) + "\n"))?,
            }
            Ok(Exit::Ok)
        }
        Command::Test(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let chosen = match (args.affected, args.all, global.lane.first()) {
                (true, _, Some(lane)) => {
                    return Err(AppError::LaneAndAffected(lane.clone(), "affected").into());
                }
                (_, true, Some(lane)) => {
                    return Err(AppError::LaneAndAffected(lane.clone(), "all").into());
                }
                (true, _, None) => {
                    let base = args.base.as_deref().unwrap_or("HEAD");
                    let affected = harness::affected::find(&project, base)?;
                    match global.output {
                        OutputFormat::Text => eprint!("{}", affected.render_text()),
                        OutputFormat::Json => emit(&(json_line(&affected) + "\n"))?,
                    }
                    affected.lanes
                }
                (false, true, None) => project.lanes.keys().cloned().collect(),
                (false, false, _) if global.lane.len() > 1 => global.lane.clone(),
                (false, false, _) => {
                    let lane = one_lane(&project, global)?;
                    let run_id = harness::stage::new_run_id();
                    return test_command(&project, &lane, &run_id, args, global.output, None).await;
                }
            };
            let mut lanes: Vec<&config::Lane> = Vec::new();
            for name in &chosen {
                let lane = plan::one_lane(&project, Some(name))?;
                if !lanes.iter().any(|l| l.name == lane.name) {
                    lanes.push(lane);
                }
            }
            if lanes.is_empty() {
                return Ok(Exit::Ok);
            }
            several::test_lanes(&project, &lanes, args, global.output).await
        }
        Command::Down(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = &one_lane(&project, global)?;
            let output = Output::start(global.output, &lane.name, "down", None, false);
            // Nothing up is not a failure: a CI cleanup step that always
            // runs `harness down` must pass when the job never got that far.
            if let Err(harness::cluster::state::StateError::Missing { .. }) =
                harness::cluster::state::read(&project.root, &lane.name)
            {
                output
                    .bus
                    .notice(harness::cluster::stage::nothing_up(lane, args.gather).await);
                output.finish().await;
                return Ok(Exit::Ok);
            }
            let ctx = Ctx::new(
                &project,
                lane,
                harness::stage::new_run_id(),
                output.bus.clone(),
            );
            let work = async {
                if args.gather {
                    // Gather first: the bundle is the point, and a failed
                    // gather leaves the cluster in place to try again.
                    harness::gather::stage::gather_now(&ctx, None, None, None).await?;
                }
                harness::cluster::stage::tear_down(&ctx).await
            };
            let result = harness::run::until_interrupted(
                work,
                "the lane's state is kept; run `harness down` again to finish",
            )
            .await;
            drop(ctx);
            output.finish().await;
            result?;
            Ok(Exit::Ok)
        }
        Command::Gather(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = &one_lane(&project, global)?;
            let output = Output::start(global.output, &lane.name, "gather", None, false);
            let ctx = Ctx::new(
                &project,
                lane,
                harness::stage::new_run_id(),
                output.bus.clone(),
            );
            // The unfinished bundle of an interrupted gather removes itself,
            // so nothing half-written stays behind.
            let result = harness::run::until_interrupted(
                harness::gather::stage::gather_now(
                    &ctx,
                    args.out.clone(),
                    args.since,
                    args.max_size,
                ),
                "no bundle was written",
            )
            .await;
            drop(ctx);
            output.finish().await;
            let bundle = result?;
            eprintln!(
                "bundle: {}\n        {}",
                bundle.archive.display(),
                bundle.dir.display()
            );
            Ok(Exit::Ok)
        }
        Command::Report(args) => {
            let replayed = report::replay::open(&args.bundle)?;
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

/// The one `--lane` of a command that acts on one lane, if given.
pub fn lane_flag(global: &crate::cli::Global) -> Result<Option<&str>, AppError> {
    match global.lane.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        several => Err(AppError::SeveralLanes(several.len())),
    }
}

/// The lane a one-lane command acts on, as its cluster was made: with the
/// host ports it really has when it ran beside other lanes and was kept.
pub fn one_lane(
    project: &Project,
    global: &crate::cli::Global,
) -> Result<config::Lane, StageFailure> {
    let lane = plan::one_lane(project, lane_flag(global)?)?;
    let state = harness::cluster::state::read(&project.root, &lane.name).ok();
    Ok(harness::lanes::as_made(lane, state.as_ref()))
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

/// JSON of plain data the library made serializable (only maps with
/// non-string keys can fail to serialize, and it has none).
fn json_line(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

/// [`json_line`], indented for people.
fn json_pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("plain data serializes")
}

/// Writes to stdout; a closed pipe (`harness plan | head`) is not an error.
fn emit(text: &str) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(AppError::Stdout),
    }
}

/// How a failure is told: one block on stderr (and, with `--output json`,
/// one object on stdout), the same for every command.
fn told(failure: &StageFailure) -> String {
    if let Some(whole) = failure.told_whole() {
        return whole.text;
    }
    let mut text = format!("error: {}\n", failure.text());
    if let Some(fix) = failure.fix() {
        text.push_str(&format!("  = help: {fix}\n"));
    }
    if let Some(evidence) = failure.evidence() {
        text.push('\n');
        text.push_str(&evidence);
    }
    text
}

/// Prints a failure once, as a chain, with its fix; returns its exit code.
pub fn report_error(failure: &StageFailure, output: OutputFormat) -> Exit {
    let exit = failure.exit();
    eprint!("{}", told(failure));
    if output == OutputFormat::Json {
        let json = serde_json::json!({
            "error": {
                "message": failure.text(),
                "exit_code": exit.code(),
                "kind": exit,
                "help": failure.fix(),
                "diagnostics": failure.told_whole().and_then(|w| w.json),
            }
        });
        let _ = emit(&(json.to_string() + "\n"));
    }
    exit
}

/// Prints a panic that unwound out of the whole command (one that no stage
/// caught) once, with what it means; returns [`Exit::Panicked`].
pub fn report_panic(panic: &harness::panics::Panic, output: OutputFormat) -> Exit {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn told_of(failure: impl Failure) -> (Exit, String) {
        let failure = StageFailure::from(failure);
        (failure.exit(), told(&failure))
    }

    #[test]
    fn a_failure_is_told_by_its_type() {
        let (exit, text) = told_of(ConfigError::NotFound { start: "/x".into() });
        assert_eq!(exit, Exit::Usage);
        assert!(
            text.contains("= help: run harness from your project"),
            "{text}"
        );
        let (exit, _) = told_of(PreflightFailed(preflight::Report {
            lane: "a".into(),
            checks: vec![],
        }));
        assert_eq!(exit, Exit::Preflight);
        let (exit, text) = told_of(plan::LaneRequired {
            lanes: vec!["a".into(), "b".into()],
        });
        assert_eq!(exit, Exit::Usage);
        assert!(text.ends_with("  = help: lanes defined: a, b\n"), "{text}");
        let diagnosis = Box::new(harness::deploy::Diagnosis::default());
        let (exit, _) = told_of(harness::deploy::DeployError::Failed {
            component: "db".into(),
            diagnosis: diagnosis.clone(),
        });
        assert_eq!(exit, Exit::Deploy);
        let (exit, _) = told_of(harness::deploy::DeployError::Deadline {
            component: "db".into(),
            after: std::time::Duration::from_secs(300),
            diagnosis,
        });
        assert_eq!(exit, Exit::Timeout);
        let (exit, _) =
            told_of(harness::suites::NamespaceError::InvalidPrefix { prefix: "X".into() });
        assert_eq!(exit, Exit::Usage);
    }

    /// The bug that started the work on failures: a refused apply's fix was
    /// lost on its way to the terminal.
    #[test]
    fn a_refused_apply_is_told_with_its_fix() {
        let refused = harness::deploy::ApplyError::Refused {
            kind: "CustomResourceDefinition".into(),
            name: "widgets.adopt.example.com".into(),
            message: "failed to create typed patch object: .spec.versions[0].selectableFields: field not declared in schema".into(),
            code: 500,
            reason: String::new(),
            unknown_field: Some(".spec.versions[0].selectableFields".into()),
            server: Some("v1.20.2".into()),
        };
        let (exit, text) = told_of(harness::deploy::DeployError::Apply {
            component: "crds".into(),
            source: Box::new(refused),
        });
        assert_eq!(exit, Exit::Deploy);
        assert!(
            text.contains("  = help: .spec.versions[0].selectableFields is newer than the cluster's Kubernetes"),
            "{text}"
        );
    }
}
