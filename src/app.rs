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

/// A command that exists but does not do its work yet.
#[derive(Debug, thiserror::Error)]
#[error("`harness {command}` is not implemented yet: {missing}")]
pub struct NotImplemented {
    pub command: &'static str,
    pub missing: &'static str,
}

/// Starts the live output for a command and the task that folds its report.
fn start_output(
    output: OutputFormat,
    lane: &str,
    run_id: &str,
) -> (
    crate::report::bus::Bus,
    tokio::task::JoinHandle<crate::report::RunReport>,
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
    crate::report::bus::start(sink, crate::report::RunReport::new(lane, run_id))
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
                OutputFormat::Text => emit(&plan::render_text(&plan, &project))?,
                OutputFormat::Json => emit(&(serde_json::to_string_pretty(&plan)? + "\n"))?,
            }
            Ok(Exit::Ok)
        }
        Command::Preflight => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            run_preflight(&project, global.lane.as_deref(), global.output).await?;
            Ok(Exit::Ok)
        }
        Command::Up(_) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            run_preflight(&project, global.lane.as_deref(), global.output).await?;
            Err(NotImplemented {
                command: "up",
                missing: "preflight passed, but building images, creating the cluster, loading and deploying are not written yet",
            }
            .into())
        }
        Command::Test(_) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            run_preflight(&project, global.lane.as_deref(), global.output).await?;
            Err(NotImplemented {
                command: "test",
                missing: "preflight passed, but bringing the lane up and running suites are not written yet",
            }
            .into())
        }
        Command::Down(args) => {
            let project = load(global.config.as_deref(), &cwd, global.verbose)?;
            let lane = one_lane(&project, global.lane.as_deref())?;
            if args.gather {
                return Err(NotImplemented {
                    command: "down --gather",
                    missing: "the cluster collectors of must-gather are not written yet; nothing was deleted",
                }
                .into());
            }
            let (bus, output) = start_output(global.output, &lane.name, "down");
            let result = crate::stages::tear_down(&project, &lane.name, &bus).await;
            drop(bus);
            let _ = output.await;
            result?;
            Ok(Exit::Ok)
        }
        Command::Gather(_) => not_implemented(
            global,
            &cwd,
            "gather",
            "the must-gather collector is not written yet",
        ),
        Command::Diagnose(_) => not_implemented(
            global,
            &cwd,
            "diagnose",
            "the readiness engine is not written yet",
        ),
        Command::Status => not_implemented(
            global,
            &cwd,
            "status",
            "reading the cluster's components is not written yet",
        ),
        Command::Namespace(NamespaceCommand::Create { .. }) => not_implemented(
            global,
            &cwd,
            "namespace create",
            "creating namespaces in the cluster is not written yet",
        ),
    }
}

/// Validates the lane file first (so a broken file is still reported as
/// such), then says the command is not there yet.
fn not_implemented(
    global: &crate::cli::Global,
    cwd: &Path,
    command: &'static str,
    missing: &'static str,
) -> anyhow::Result<Exit> {
    let project = load(global.config.as_deref(), cwd, global.verbose)?;
    if let Some(lane) = global.lane.as_deref() {
        plan::select(&project, Some(lane))?;
    }
    Err(NotImplemented { command, missing }.into())
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
    for cause in error.chain() {
        if cause.is::<ConfigError>() || cause.is::<UnknownLane>() || cause.is::<LaneRequired>() {
            return Exit::Usage;
        }
        if cause.is::<PreflightFailed>() {
            return Exit::Preflight;
        }
        if cause.is::<NotImplemented>() {
            return Exit::NotImplemented;
        }
        if let Some(failure) = cause.downcast_ref::<crate::pipeline::StageFailure>() {
            return failure.exit;
        }
        if let Some(e) = cause.downcast_ref::<crate::cluster::state::StateError>() {
            return match e {
                crate::cluster::state::StateError::Missing { .. } => Exit::Usage,
                _ => Exit::Internal,
            };
        }
    }
    Exit::Internal
}

/// How to fix it, when the error knows.
fn help_for(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<ConfigError>() {
            e.help()
        } else if let Some(e) = cause.downcast_ref::<UnknownLane>() {
            Some(e.help())
        } else {
            cause
                .downcast_ref::<LaneRequired>()
                .map(|e| format!("lanes defined: {}", e.lanes.join(", ")))
        }
    })
}

/// Prints an error once, as a chain, with its fix; returns the exit code.
pub fn report_error(error: &anyhow::Error, output: OutputFormat) -> Exit {
    let exit = exit_for(error);
    let mut text = String::new();
    let config = error.chain().find_map(|c| c.downcast_ref::<ConfigError>());
    if let Some(rendered) = config.and_then(ConfigError::rendered) {
        text.push_str(&rendered);
        text.push_str(&format!("\nharness: {error}; nothing was started\n"));
    } else {
        let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
        text.push_str(&format!("error: {}\n", chain.join(": ")));
        if let Some(help) = help_for(error) {
            text.push_str(&format!("  = help: {help}\n"));
        }
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
                "message": error.chain().map(ToString::to_string).collect::<Vec<_>>().join(": "),
                "exit_code": exit.code(),
                "kind": exit,
                "help": help_for(error),
                "diagnostics": diagnostics,
            }
        });
        let _ = emit(&(json.to_string() + "\n"));
    }
    exit
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
        let ni: anyhow::Error = NotImplemented {
            command: "gather",
            missing: "x",
        }
        .into();
        assert_eq!(exit_for(&ni), Exit::NotImplemented);
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
