//! Host builds: commands that must run on the host before images are built
//! (`cargo build --release`, `go build`, `make dist`), because the images
//! copy what they make.
//!
//! A lane's host builds are the ones it names under `host_builds:` and the
//! ones its images name, each once, in that order. Each runs like a suite
//! or a hook — its own process group, stdin closed, its output in a log
//! file (`.harness/logs/host-builds/<name>.log`), a timeout followed by
//! SIGTERM, a grace and SIGKILL, and killed with its group when the run is
//! interrupted — and one after the other, since build tools parallelise
//! themselves and share caches. A build is skipped when nothing it depends
//! on changed: its declared `inputs` (files and directories, read by
//! content: path, executable bit and bytes, `.harness/` never), its
//! command, environment and working directory hash to what the stamp of
//! its last success (`.harness/host-builds/<name>.json`) recorded, and
//! every declared `output` exists. A build without `inputs` runs every
//! time (the build tool decides what to redo). What decides — the list, the
//! hash, skip or run — is plain functions; the process runs through the
//! suites runner.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::{HostBuild, Lane, Project};
use crate::exit::Exit;
use crate::suites::{CancelToken, Outcome, SuiteCommand, SuiteEvent};

/// Time a host build has between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);

/// The host builds a lane needs, in the order they run: the lane's own,
/// then its images' (in the order the images are needed), each once.
pub fn lane_builds(project: &Project, lane: &Lane) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let from_images = super::lane_images(project, lane)
        .into_iter()
        .filter_map(|i| project.images.get(&i))
        .flat_map(|i| i.host_builds.clone());
    for name in lane.host_builds.iter().cloned().chain(from_images) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Why a host build failed.
#[derive(Debug, thiserror::Error)]
pub enum HostBuildError {
    #[error("host build `{name}` (`{command}`) {outcome} (full output in {}){}", .log.display(), tail_text(.tail))]
    Failed {
        name: String,
        command: String,
        /// How it ended (`exited with status 101`).
        outcome: String,
        /// The last lines it printed.
        tail: Vec<String>,
        log: PathBuf,
        timed_out: bool,
    },
    #[error("host build `{name}` succeeded but did not make {}", .path.display())]
    MissingOutput { name: String, path: PathBuf },
    #[error("cannot read the inputs of host build `{name}`")]
    Inputs {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the stamp of host build `{name}` ({})", .path.display())]
    Stamp {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = tail.iter().map(|l| format!("  {l}")).collect();
        format!("; its last lines:\n{}", lines.join("\n"))
    }
}

/// A build past its timeout is a deadline (7), any other failure an image
/// failure (4): what it makes goes into an image.
impl crate::failure::Failure for HostBuildError {
    fn exit(&self) -> Exit {
        match self {
            HostBuildError::Failed {
                timed_out: true, ..
            } => Exit::Timeout,
            HostBuildError::Failed { .. }
            | HostBuildError::MissingOutput { .. }
            | HostBuildError::Inputs { .. }
            | HostBuildError::Stamp { .. } => Exit::ImageBuild,
        }
    }

    fn fix(&self) -> Option<String> {
        Some(self.help())
    }
}

impl HostBuildError {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            HostBuildError::Failed {
                name,
                timed_out: true,
                ..
            } => format!(
                "find what hangs (the log ends with it), or raise `host_builds.{name}.timeout` in the lane file"
            ),
            HostBuildError::Failed { name, .. } => format!(
                "fix what it reports (run the command by hand to iterate), or fix `host_builds.{name}.command`"
            ),
            HostBuildError::MissingOutput { name, .. } => format!(
                "make the command write it, or fix `host_builds.{name}.outputs` in the lane file"
            ),
            HostBuildError::Inputs { name, .. } => {
                format!("check that the paths under `host_builds.{name}.inputs` are readable")
            }
            HostBuildError::Stamp { .. } => "check that .harness/ is writable".to_owned(),
        }
    }
}

/// What happened to one host build.
#[derive(Clone, Debug, PartialEq)]
pub struct HostOutcome {
    pub name: String,
    /// `false` when its inputs were unchanged and its outputs there.
    pub ran: bool,
    pub seconds: f64,
    pub log: PathBuf,
}

/// Progress, as it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum HostEvent {
    /// The command started; its output goes to `log`.
    Started {
        name: String,
        command: String,
        log: PathBuf,
    },
    Done(HostOutcome),
}

/// Where host builds keep their logs and stamps.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Run even when the stamp says nothing changed (`--rebuild`).
    pub rebuild: bool,
    /// `<dir>/<name>.log`.
    pub log_dir: PathBuf,
    /// `<dir>/<name>.json`, the stamp of the last success.
    pub stamp_dir: PathBuf,
    /// Never read as inputs (the harness's own state).
    pub skip: Vec<PathBuf>,
}

impl HostOptions {
    /// Logs under `.harness/logs/host-builds`, stamps under `.harness/host-builds`.
    pub fn for_project(project: &Project) -> HostOptions {
        let layout = crate::layout::Layout::new(&project.root);
        HostOptions {
            rebuild: false,
            log_dir: layout.host_build_logs(),
            stamp_dir: layout.host_build_stamps(),
            skip: vec![layout.dir()],
        }
    }
}

/// A command as a person would type it.
fn shown(command: &[String]) -> String {
    command.join(" ")
}

/// The hash that decides whether `build` runs again: its command,
/// environment and working directory, and every file under its inputs
/// (path relative to `root`, executable bit, content), in a stable order.
pub fn inputs_hash(build: &HostBuild, root: &Path, skip: &[PathBuf]) -> io::Result<String> {
    let mut h = Sha256::new();
    let field = |h: &mut Sha256, bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    for arg in &build.command {
        field(&mut h, arg.as_bytes());
    }
    field(&mut h, b"env");
    for (k, v) in &build.env {
        field(&mut h, k.as_bytes());
        field(&mut h, v.as_bytes());
    }
    field(&mut h, build.workdir.to_string_lossy().as_bytes());
    let mut files = Vec::new();
    for input in &build.inputs {
        collect(input, skip, &mut files)?;
    }
    files.sort();
    files.dedup();
    for file in files {
        use std::os::unix::fs::PermissionsExt as _;
        let relative = file.strip_prefix(root).unwrap_or(&file);
        field(&mut h, relative.to_string_lossy().as_bytes());
        let meta = std::fs::metadata(&file)?;
        field(&mut h, &[u8::from(meta.permissions().mode() & 0o111 != 0)]);
        let mut content = std::fs::File::open(&file)?;
        let mut hasher = Sha256::new();
        io::copy(&mut content, &mut crate::digest::HashWriter(&mut hasher))?;
        field(&mut h, crate::digest::hex(hasher).as_bytes());
    }
    Ok(crate::digest::hex(h))
}

/// Every file at or under `path`, symlinks followed, `skip` left out.
fn collect(path: &Path, skip: &[PathBuf], out: &mut Vec<PathBuf>) -> io::Result<()> {
    if skip.iter().any(|s| path.starts_with(s)) {
        return Ok(());
    }
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            collect(&entry?.path(), skip, out)?;
        }
    } else if meta.is_file() {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// The stamp of a build's last success.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    inputs: String,
}

/// Whether `build` can be skipped: it declares inputs, they hash to what
/// the stamp recorded, and every output exists.
pub fn up_to_date(build: &HostBuild, stamp: Option<&str>, hash: &str) -> bool {
    !build.inputs.is_empty()
        && stamp
            .and_then(|s| serde_json::from_str::<Stamp>(s).ok())
            .is_some_and(|s| s.inputs == hash)
        && build.outputs.iter().all(|o| o.exists())
}

/// Runs the named host builds in order, each unless it is up to date;
/// stops at the first failure. Dropping the future kills the running
/// command's process group.
pub async fn run(
    project: &Project,
    names: &[String],
    opts: &HostOptions,
    events: &mpsc::Sender<HostEvent>,
) -> Result<Vec<HostOutcome>, HostBuildError> {
    let mut outcomes = Vec::new();
    for name in names {
        let Some(build) = project.host_builds.get(name) else {
            continue; // validation makes every reference resolve
        };
        let outcome = run_one(project, build, opts, events).await?;
        let _ = events.send(HostEvent::Done(outcome.clone())).await;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn run_one(
    project: &Project,
    build: &HostBuild,
    opts: &HostOptions,
    events: &mpsc::Sender<HostEvent>,
) -> Result<HostOutcome, HostBuildError> {
    let name = build.name.clone();
    let log = opts.log_dir.join(format!("{name}.log"));
    let stamp_path = opts.stamp_dir.join(format!("{name}.json"));
    let hash = {
        let (build, root, skip) = (build.clone(), project.root.clone(), opts.skip.clone());
        tokio::task::spawn_blocking(move || inputs_hash(&build, &root, &skip))
            .await
            .expect("hashing inputs does not panic")
            .map_err(|source| HostBuildError::Inputs {
                name: name.clone(),
                source,
            })?
    };
    // Lanes run at once run one host build once (crate::gate).
    let pass = crate::gate::enter(&format!("host-build:{}:{name}", project.root.display())).await;
    let stamp = std::fs::read_to_string(&stamp_path).ok();
    if (!opts.rebuild || pass.done_while_waiting) && up_to_date(build, stamp.as_deref(), &hash) {
        return Ok(HostOutcome {
            name,
            ran: false,
            seconds: 0.0,
            log,
        });
    }
    // A stale stamp must not survive a failed run.
    let _ = std::fs::remove_file(&stamp_path);
    let (program, args) = build
        .command
        .split_first()
        .expect("validation rejects an empty command");
    let command = SuiteCommand {
        name: name.clone(),
        program: program.into(),
        args: args.iter().map(Into::into).collect(),
        env: build
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.into()))
            .collect(),
        cwd: build.workdir.clone(),
        timeout: build.timeout,
        grace: GRACE,
        log_path: log.clone(),
        artifacts_dir: opts.log_dir.clone(),
        process: 1,
        namespace: None,
    };
    let _ = events
        .send(HostEvent::Started {
            name: name.clone(),
            command: shown(&build.command),
            log: log.clone(),
        })
        .await;
    // The runner reports every line; only the last ones matter here (the
    // log has them all).
    let (tx, mut rx) = mpsc::channel(256);
    let tail = tokio::spawn(async move {
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        while let Some(event) = rx.recv().await {
            if let SuiteEvent::Output { line, .. } = event {
                if line.trim().is_empty() {
                    continue;
                }
                if tail.len() == 5 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
        Vec::from(tail)
    });
    let started = Instant::now();
    let result = crate::suites::runner::run_suite(&command, &tx, &CancelToken::never()).await;
    drop(tx);
    let tail = tail.await.unwrap_or_default();
    if !matches!(result.outcome, Outcome::Passed) {
        return Err(HostBuildError::Failed {
            name,
            command: shown(&build.command),
            timed_out: matches!(result.outcome, Outcome::TimedOut { .. }),
            outcome: result.outcome.describe(),
            tail,
            log,
        });
    }
    if let Some(missing) = build.outputs.iter().find(|o| !o.exists()) {
        return Err(HostBuildError::MissingOutput {
            name,
            path: missing.clone(),
        });
    }
    let stamp = serde_json::to_string(&Stamp { inputs: hash }).expect("a stamp serializes");
    std::fs::create_dir_all(&opts.stamp_dir)
        .and_then(|()| std::fs::write(&stamp_path, stamp))
        .map_err(|source| HostBuildError::Stamp {
            name: name.clone(),
            path: stamp_path,
            source,
        })?;
    pass.done();
    Ok(HostOutcome {
        name,
        ran: true,
        seconds: started.elapsed().as_secs_f64(),
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure as _;
    use indexmap::IndexMap;

    fn build(root: &Path, inputs: &[&str], outputs: &[&str]) -> HostBuild {
        HostBuild {
            name: "bin".into(),
            command: vec!["sh".into(), "-c".into(), "true".into()],
            inputs: inputs.iter().map(|i| root.join(i)).collect(),
            outputs: outputs.iter().map(|o| root.join(o)).collect(),
            timeout: Duration::from_secs(60),
            env: IndexMap::new(),
            workdir: root.to_path_buf(),
        }
    }

    #[test]
    fn the_hash_follows_content_and_command_not_times() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/nested")).unwrap();
        std::fs::write(root.join("src/a.rs"), "fn a() {}").unwrap();
        std::fs::write(root.join("src/nested/b.rs"), "fn b() {}").unwrap();
        std::fs::write(root.join("Cargo.toml"), "[package]").unwrap();
        std::fs::create_dir_all(root.join(".harness/logs")).unwrap();
        let skip = vec![root.join(".harness")];
        let b = build(root, &["Cargo.toml", "src", "."], &[]);
        let first = inputs_hash(&b, root, &skip).unwrap();
        // Touching changes nothing; the harness's own files never count.
        std::fs::write(root.join("src/a.rs"), "fn a() {}").unwrap();
        std::fs::write(root.join(".harness/logs/x.log"), "noise").unwrap();
        assert_eq!(inputs_hash(&b, root, &skip).unwrap(), first);
        // One byte of a nested file does.
        std::fs::write(root.join("src/nested/b.rs"), "fn b() { }").unwrap();
        let second = inputs_hash(&b, root, &skip).unwrap();
        assert_ne!(second, first);
        // So does the command, or its environment.
        let mut other = b.clone();
        other.command.push("--release".into());
        assert_ne!(inputs_hash(&other, root, &skip).unwrap(), second);
        let mut other = b.clone();
        other.env.insert("RUSTFLAGS".into(), "-g".into());
        assert_ne!(inputs_hash(&other, root, &skip).unwrap(), second);
        // A missing input is an error, not an empty hash.
        let gone = build(root, &["nope"], &[]);
        assert!(inputs_hash(&gone, root, &skip).is_err());
    }

    #[test]
    fn skip_needs_inputs_the_same_stamp_and_every_output() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("in"), "x").unwrap();
        let stamp = serde_json::to_string(&Stamp {
            inputs: "h1".into(),
        })
        .unwrap();
        let b = build(root, &["in"], &["out"]);
        assert!(!up_to_date(&b, Some(&stamp), "h1"), "the output is missing");
        std::fs::write(root.join("out"), "made").unwrap();
        assert!(up_to_date(&b, Some(&stamp), "h1"));
        assert!(!up_to_date(&b, Some(&stamp), "h2"), "inputs changed");
        assert!(!up_to_date(&b, None, "h1"), "never ran");
        assert!(!up_to_date(&b, Some("garbage"), "h1"));
        let no_inputs = build(root, &[], &["out"]);
        assert!(
            !up_to_date(&no_inputs, Some(&stamp), "h1"),
            "runs every time"
        );
    }

    #[test]
    fn failures_say_how_they_ended_then_where_the_log_is() {
        let e = HostBuildError::Failed {
            name: "demo-binaries".into(),
            command: "cargo build --release -p harness-demo".into(),
            outcome: "exited with status 101".into(),
            tail: vec!["error[E0425]: cannot find value `x` in this scope".into()],
            log: ".harness/logs/host-builds/demo-binaries.log".into(),
            timed_out: false,
        };
        assert_eq!(
            e.to_string(),
            "host build `demo-binaries` (`cargo build --release -p harness-demo`) exited with status 101 (full output in .harness/logs/host-builds/demo-binaries.log); its last lines:\n  error[E0425]: cannot find value `x` in this scope"
        );
        assert_eq!(e.exit(), Exit::ImageBuild);
        assert!(!e.help().contains(".log"), "the log is named once");
    }
}
