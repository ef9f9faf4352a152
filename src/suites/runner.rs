//! Runs one suite command as a child process, hygienically.
//!
//! The child gets its own process group, so that a timeout or a cancellation
//! can signal everything it started (Ginkgo's `-p` workers, a `go test`
//! binary, a background port-forward) and not just the immediate child. It
//! is stopped with SIGTERM to the group, a grace period, then SIGKILL to the
//! group. Once the suite's main process has exited, whatever is left in its
//! group is killed: such leftovers would hold the output pipes open (the log
//! would never end) and leak into the next suite.
//!
//! Output is read line by line from both pipes; each line goes to the
//! suite's log file first and is then sent as a [`SuiteEvent::Output`], so
//! the log is complete even if the consumer of events goes away. The runner
//! prints nothing itself.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::cancel::CancelToken;
use super::namespace::NamespaceError;

/// Everything needed to run one suite.
#[derive(Debug, Clone)]
pub struct SuiteCommand {
    /// The suite's name, carried on every event.
    pub name: String,
    /// The program to run (looked up on `PATH` when it has no slash).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Variables added to the inherited environment.
    pub env: BTreeMap<String, OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// How long the suite may run before it is stopped.
    pub timeout: Duration,
    /// How long it has between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// File receiving the suite's stdout and stderr (created, truncated).
    pub log_path: PathBuf,
    /// Directory where the suite may write its own reports.
    pub artifacts_dir: PathBuf,
    /// The 1-based parallel slot it runs in.
    pub process: usize,
    /// Its namespace, if the harness created one.
    pub namespace: Option<String>,
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a suite's process ended, when it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this non-zero code.
    Code(i32),
    /// It was killed by this signal number.
    Signal(i32),
}

/// Why the harness stopped a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// It ran past its timeout.
    Timeout,
    /// The run was cancelled (e.g. SIGINT).
    Cancelled,
}

/// Why a suite could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The directory of its log or artifacts could not be created.
    #[error("failed to create directory {path}: check that the artifacts directory is writable")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The log file could not be created.
    #[error("failed to create log file {path}: check that the artifacts directory is writable")]
    CreateLog {
        /// The log file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The program could not be started.
    #[error(
        "failed to start {program:?}: check that it is installed and on PATH, or give its path"
    )]
    Spawn {
        /// The program.
        program: OsString,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Waiting for the process failed (should not happen on Linux).
    #[error("failed to wait for the suite's process")]
    Wait(#[source] io::Error),
    /// Its namespace could not be named or created.
    #[error("failed to prepare the suite's namespace")]
    Namespace(#[source] NamespaceError),
    /// The task running the suite panicked: a bug in the harness.
    #[error("the harness's runner for this suite crashed ({0}): this is a bug, please report it")]
    Panicked(String),
}

/// The result of one suite.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Exited with status 0.
    Passed,
    /// Exited non-zero or was killed by a signal not sent by the harness.
    Failed(Exit),
    /// Stopped by the harness after running past its timeout.
    TimedOut {
        /// The timeout it exceeded.
        timeout: Duration,
    },
    /// Stopped by the harness because the run was cancelled.
    Interrupted,
    /// Never started: the run was cancelled before its turn.
    Skipped,
    /// Could not be started.
    Errored(Arc<StartError>),
}

impl Outcome {
    /// Whether this outcome fails the run. Skipped suites do: a run that did
    /// not run everything is not a pass.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Passed)
    }

    /// A one-line description, e.g. for a JUnit failure message.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Passed => "passed".into(),
            Outcome::Failed(Exit::Code(code)) => format!("exited with status {code}"),
            Outcome::Failed(Exit::Signal(sig)) => format!("killed by {}", signal_name(*sig)),
            Outcome::TimedOut { timeout } => {
                format!("timed out after {}", humantime::format_duration(*timeout))
            }
            Outcome::Interrupted => "interrupted: the run was cancelled".into(),
            Outcome::Skipped => "not run: the run was cancelled before it started".into(),
            Outcome::Errored(err) => crate::failure::chain_text(err.as_ref()),
        }
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

/// What happened to one suite.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    /// The suite's name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// From start of its process (or of its preparation) to its end.
    pub duration: Duration,
    /// Its log file (may not exist if it never started).
    pub log_path: PathBuf,
    /// Its artifacts directory.
    pub artifacts_dir: PathBuf,
    /// Its namespace, if one was created.
    pub namespace: Option<String>,
}

/// Everything the suites runner reports, in order per suite.
#[derive(Debug, Clone)]
pub enum SuiteEvent {
    /// The suite's process has started.
    Started {
        /// The suite.
        suite: String,
        /// Its parallel slot.
        process: usize,
        /// Its namespace.
        namespace: Option<String>,
        /// Where its output is logged.
        log_path: PathBuf,
    },
    /// One line of output (without its line ending).
    Output {
        /// The suite.
        suite: String,
        /// Which pipe it came from.
        stream: Stream,
        /// The line, lossily decoded as UTF-8 (the log keeps the raw bytes).
        line: String,
    },
    /// The harness is stopping the suite: SIGTERM has been sent to its group.
    Stopping {
        /// The suite.
        suite: String,
        /// Why.
        reason: StopReason,
    },
    /// The suite is over.
    Finished(SuiteResult),
}

/// Runs `cmd` to completion, timeout or cancellation, and reports a
/// [`SuiteEvent::Finished`] with the result it returns.
///
/// Never fails: a suite that cannot start is an [`Outcome::Errored`], so
/// that one bad suite does not hide the results of the others.
pub async fn run_suite(
    cmd: &SuiteCommand,
    events: &mpsc::Sender<SuiteEvent>,
    cancel: &CancelToken,
) -> SuiteResult {
    let started = Instant::now();
    let outcome = run_process(cmd, events, cancel)
        .await
        .unwrap_or_else(|e| Outcome::Errored(Arc::new(e)));
    let result = SuiteResult {
        name: cmd.name.clone(),
        outcome,
        duration: started.elapsed(),
        log_path: cmd.log_path.clone(),
        artifacts_dir: cmd.artifacts_dir.clone(),
        namespace: cmd.namespace.clone(),
    };
    // A consumer that went away does not change the result.
    let _ = events.send(SuiteEvent::Finished(result.clone())).await;
    result
}

async fn create_dir(path: &Path) -> Result<(), StartError> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|source| StartError::CreateDir {
            path: path.to_owned(),
            source,
        })
}

async fn run_process(
    cmd: &SuiteCommand,
    events: &mpsc::Sender<SuiteEvent>,
    cancel: &CancelToken,
) -> Result<Outcome, StartError> {
    // Cancelled between being scheduled and starting: do not start a
    // process only to stop it again.
    if cancel.is_cancelled() {
        return Ok(Outcome::Skipped);
    }
    if let Some(parent) = cmd.log_path.parent() {
        create_dir(parent).await?;
    }
    create_dir(&cmd.artifacts_dir).await?;
    let log = tokio::fs::File::create(&cmd.log_path)
        .await
        .map_err(|source| StartError::CreateLog {
            path: cmd.log_path.clone(),
            source,
        })?;

    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .envs(&cmd.env)
        .current_dir(&cmd.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Group id = the child's pid, so killpg reaches everything it starts.
        .process_group(0)
        // Backstop if this future is dropped mid-run; the group guard below
        // takes care of the rest of the group.
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StartError::Spawn {
            program: cmd.program.clone(),
            source,
        })?;
    let pid = child.id().expect("a child that was just spawned has a pid");
    let group = GroupGuard(Some(Pid::from_raw(
        i32::try_from(pid).expect("Linux pids fit in i32"),
    )));

    let _ = events
        .send(SuiteEvent::Started {
            suite: cmd.name.clone(),
            process: cmd.process,
            namespace: cmd.namespace.clone(),
            log_path: cmd.log_path.clone(),
        })
        .await;

    let mut output = Output::start(&mut child, log, cmd.name.clone(), events.clone());
    // A timeout too large to add to now (Duration::MAX as "no timeout")
    // simply never fires.
    let deadline = tokio::time::Instant::now().checked_add(cmd.timeout);
    let timed_out = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    let stopped = tokio::select! {
        status = child.wait() => Ok(status),
        () = timed_out => Err(StopReason::Timeout),
        () = cancel.cancelled() => Err(StopReason::Cancelled),
    };
    let outcome = match stopped {
        Ok(status) => exit_outcome(status.map_err(StartError::Wait)?),
        Err(reason) => {
            let _ = events
                .send(SuiteEvent::Stopping {
                    suite: cmd.name.clone(),
                    reason,
                })
                .await;
            stop_group(&mut child, &group, cmd.grace, &mut output)
                .await
                .map_err(StartError::Wait)?;
            match reason {
                StopReason::Timeout => Outcome::TimedOut {
                    timeout: cmd.timeout,
                },
                StopReason::Cancelled => Outcome::Interrupted,
            }
        }
    };
    // The main process is gone: whatever is left of its group is an orphan.
    // (Its group id cannot have been reused yet while members remain; if
    // none remain the id is free, and reuse within microseconds by a new
    // group leader is as unlikely as pid wrap-around allows.)
    group.signal(Signal::SIGKILL);
    // Processes that left the group (setsid) may still hold the pipes; give
    // them the grace period, then stop reading rather than hang.
    output.finish(cmd.grace).await;
    group.disarm();
    Ok(outcome)
}

fn exit_outcome(status: ExitStatus) -> Outcome {
    match (status.code(), status.signal()) {
        (Some(0), _) => Outcome::Passed,
        (Some(code), _) => Outcome::Failed(Exit::Code(code)),
        (None, Some(sig)) => Outcome::Failed(Exit::Signal(sig)),
        // Neither code nor signal does not happen for a waited-for child.
        (None, None) => Outcome::Failed(Exit::Code(-1)),
    }
}

/// SIGTERM to the group; once the main process has exited and the output
/// pipes are closed (every member that shared them is gone), or the grace
/// period is over, SIGKILL to the group.
async fn stop_group(
    child: &mut Child,
    group: &GroupGuard,
    grace: Duration,
    output: &mut Output,
) -> io::Result<ExitStatus> {
    group.signal(Signal::SIGTERM);
    let graceful = tokio::time::timeout(grace, async {
        let status = child.wait().await;
        output.closed().await;
        status
    })
    .await;
    match graceful {
        Ok(status) => status,
        Err(_) => {
            group.signal(Signal::SIGKILL);
            child.wait().await
        }
    }
}

/// The suite's process group, SIGKILLed on drop unless disarmed, so that no
/// path out of the runner (an error, a dropped future) leaves it running.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn signal(&self, signal: Signal) {
        if let Some(group) = self.0 {
            // ESRCH means the group is already empty, which is the goal;
            // EPERM would mean a member changed credentials (setuid), and
            // there is nothing more the harness could do about it.
            let _ = killpg(group, signal);
        }
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// The tasks reading the two pipes and writing the log.
struct Output {
    readers: [JoinHandle<()>; 2],
    writer: Option<JoinHandle<()>>,
}

impl Output {
    fn start(
        child: &mut Child,
        log: tokio::fs::File,
        suite: String,
        events: mpsc::Sender<SuiteEvent>,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Stream, Vec<u8>)>(256);
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let readers = [
            tokio::spawn(read_lines(stdout, Stream::Stdout, tx.clone())),
            tokio::spawn(read_lines(stderr, Stream::Stderr, tx)),
        ];
        let writer = tokio::spawn(async move {
            let mut log = BufWriter::new(log);
            let mut log_ok = true;
            while let Some((stream, mut line)) = rx.recv().await {
                if log_ok {
                    line.push(b'\n');
                    // A full disk must not stop the suite nor the events;
                    // the log simply ends there.
                    log_ok = log.write_all(&line).await.is_ok();
                    line.pop();
                }
                let line = String::from_utf8_lossy(&line).into_owned();
                let _ = events
                    .send(SuiteEvent::Output {
                        suite: suite.clone(),
                        stream,
                        line,
                    })
                    .await;
            }
            let _ = log.flush().await;
        });
        Self {
            readers,
            writer: Some(writer),
        }
    }

    /// Completes when both pipes are at end of file and every line has been
    /// logged. Cancel-safe.
    async fn closed(&mut self) {
        if let Some(writer) = &mut self.writer {
            let _ = writer.await;
            self.writer = None;
        }
    }

    /// Waits up to `grace` for the pipes to close, then stops reading.
    async fn finish(mut self, grace: Duration) {
        if tokio::time::timeout(grace, self.closed()).await.is_err() {
            for reader in &self.readers {
                reader.abort();
            }
            // With the readers gone the channel closes and the writer ends
            // once it has logged what it already received, unless the
            // consumer of events is stuck too: then give up on the rest.
            if tokio::time::timeout(grace, self.closed()).await.is_err()
                && let Some(writer) = self.writer.take()
            {
                writer.abort();
            }
        }
    }
}

async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    stream: Stream,
    tx: mpsc::Sender<(Stream, Vec<u8>)>,
) {
    let mut reader = BufReader::new(pipe);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                if tx.send((stream, line)).await.is_err() {
                    break;
                }
            }
        }
    }
}
