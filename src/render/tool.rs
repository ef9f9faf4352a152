//! Running a render tool (`kustomize`, `kubectl`, `helm`): found on `PATH`,
//! run with stdin closed and a timeout, its output captured, and a failure
//! told with the tool's own words, the file to fix and the command that
//! shows the same error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one render may take: kustomize and helm render a project's
/// tree in well under a second; one that takes this long is stuck (a
/// remote base that never answers).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// At most this many lines of a tool's error output are kept.
const MAX_ERROR_LINES: usize = 12;

/// Why a source could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No tool that can render it is installed.
    #[error("cannot render {what}: {needs}")]
    Missing {
        /// `kustomize directory deploy/x`.
        what: String,
        /// `neither kustomize nor kubectl is on PATH`.
        needs: String,
        /// How to install it.
        install: String,
    },
    /// The tool could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The tool failed; `message` is its own error output.
    #[error("`{command}` failed: {message}")]
    Failed {
        /// The command line.
        command: String,
        /// Its error output (the last lines), or its exit status.
        message: String,
        /// The file the user fixes (the kustomization, the chart).
        fix: PathBuf,
    },
    /// The tool did not finish within [`TIMEOUT`].
    #[error("`{command}` did not finish within {}", humantime::format_duration(*.after))]
    TimedOut {
        /// The command line.
        command: String,
        /// The time it had.
        after: Duration,
    },
    /// The tool's output is not YAML of Kubernetes objects.
    #[error("the output of `{command}` is not Kubernetes objects: {message}")]
    Output {
        /// The command line.
        command: String,
        /// What is wrong.
        message: String,
    },
}

impl RenderError {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            RenderError::Missing { install, .. } => install.clone(),
            RenderError::Spawn { .. } => "check that the tool on PATH is executable".to_owned(),
            RenderError::Failed { command, fix, .. } => format!(
                "fix {} or what it refers to (run `{command}` to see the same error)",
                fix.display()
            ),
            RenderError::TimedOut { command, .. } => format!(
                "run `{command}` by hand to see where it waits (a remote base or chart dependency that cannot be fetched?)"
            ),
            RenderError::Output { command, .. } => {
                format!("run `{command}` and check its output")
            }
        }
    }
}

/// The path of `name` on `PATH`, as a shell finds it.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A command line as it would be typed (for messages).
pub fn shown(program: &Path, args: &[OsString]) -> String {
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    std::iter::once(name)
        .chain(args.iter().map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `program args` in `dir` and returns its standard output. A failure
/// names `fix` as the file to fix.
pub fn run(
    program: &Path,
    args: &[OsString],
    dir: &Path,
    fix: &Path,
    timeout: Duration,
) -> Result<String, RenderError> {
    let command = shown(program, args);
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RenderError::Spawn {
            command: command.clone(),
            source,
        })?;
    let pid = child.id();
    // The waiting happens on a thread so that this one can give up at the
    // deadline and kill the child (std has no wait with a timeout).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(|source| RenderError::Spawn {
            command: command.clone(),
            source,
        })?,
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            // Reaped by the thread, which ends with the child.
            let _ = rx.recv();
            return Err(RenderError::TimedOut {
                command,
                after: timeout,
            });
        }
    };
    if !output.status.success() {
        return Err(RenderError::Failed {
            message: error_text(&String::from_utf8_lossy(&output.stderr), output.status),
            command,
            fix: fix.to_path_buf(),
        });
    }
    String::from_utf8(output.stdout).map_err(|e| RenderError::Output {
        command,
        message: format!("it is not UTF-8: {e}"),
    })
}

/// The tool's error output, shortened to its last lines (where kustomize
/// and helm say what is wrong), or its exit status when it said nothing.
pub fn error_text(stderr: &str, status: std::process::ExitStatus) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return format!("it exited with {status} and printed no error");
    }
    let start = lines.len().saturating_sub(MAX_ERROR_LINES);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    #[test]
    fn error_text_keeps_the_last_lines_or_says_there_were_none() {
        let status = std::process::ExitStatus::from_raw(256);
        assert_eq!(
            error_text("\n  \n", status),
            "it exited with exit status: 1 and printed no error"
        );
        let many: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let text = error_text(&many, status);
        assert!(text.starts_with("line 9\n"), "{text}");
        assert!(text.ends_with("line 20"), "{text}");
    }

    #[test]
    fn commands_are_shown_as_typed() {
        let args: Vec<OsString> = ["build", "deploy/a b", ""].map(OsString::from).to_vec();
        assert_eq!(
            shown(Path::new("/usr/bin/kustomize"), &args),
            "kustomize build 'deploy/a b' ''"
        );
    }

    #[test]
    fn a_tool_that_hangs_is_killed_at_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let err = run(
            Path::new("/bin/sh"),
            &["-c".into(), "exec sleep 30".into()],
            dir.path(),
            dir.path(),
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::TimedOut { .. }), "{err}");
        // Killed, not waited out.
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_failure_keeps_the_tools_words_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "echo noise; echo 'Error: it broke' >&2; exit 3".into(),
            ],
            dir.path(),
            Path::new("deploy/x/kustomization.yaml"),
            TIMEOUT,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("`sh -c '"), "{text}");
        assert!(text.ends_with("` failed: Error: it broke"), "{text}");
        assert!(
            err.help()
                .starts_with("fix deploy/x/kustomization.yaml or what it refers to (run `sh -c"),
            "{}",
            err.help()
        );
    }
}
