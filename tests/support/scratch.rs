//! A scratch project for tests that run the `harness` binary: its files, a
//! `bin/` first on PATH for stand-in tools, its own HOME, and the binary
//! run in it — to the end, its stdout and stderr read as one stream in the
//! order they were written (what a terminal shows), or line by line while
//! it runs.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch project: files, a `bin/` first on PATH for stand-in tools,
/// and its own HOME.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new(files: &[(&str, &str)]) -> Project {
        let project = Project {
            dir: tempfile::tempdir().unwrap(),
        };
        for (path, text) in files {
            project.write(path, text);
        }
        std::fs::create_dir_all(project.root().join("bin")).unwrap();
        project
    }

    /// A copy of a directory of the repository.
    pub fn copy_of(from: &Path) -> Project {
        let project = Project::new(&[]);
        copy(from, project.root());
        project
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, text: &str) {
        let path = self.root().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A stand-in tool on the project's PATH.
    pub fn tool(&self, name: &str, script: &str) {
        let path = self.root().join("bin").join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }

    /// `harness <args>` in the project, in CI mode (plain lines).
    pub fn command(&self, args: &[&str]) -> Command {
        let path = format!(
            "{}:{}",
            self.root().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
        command
            .current_dir(self.root())
            .args(args)
            .env("PATH", path)
            .env("HOME", self.root().join("home"))
            .env("CI", "true")
            .env("TZ", "UTC");
        for var in [
            "HARNESS_CONFIG",
            "HARNESS_LANE",
            "HARNESS_KIND_NODE_IMAGE",
            "KUBECONFIG",
            "DOCKER_HOST",
            "GITHUB_ACTIONS",
            "GITHUB_STEP_SUMMARY",
            "KEEP_CLUSTER",
            "PRESERVE_E2E_CLUSTER",
            "SKIP_CLEANUP",
        ] {
            command.env_remove(var);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Printed {
        Printed::of(self.command(args))
    }

    /// A project whose lanes run on an existing cluster reached through
    /// `kubeconfig` (written beside the lane file): `body` is the rest of
    /// the lane file (components and lanes).
    pub fn on_cluster(
        kubeconfig: &str,
        namespace: &str,
        body: &str,
        files: &[(&str, &str)],
    ) -> Project {
        let project = Project::new(files);
        project.write("kubeconfig.yaml", kubeconfig);
        project.write(
            "harness.yaml",
            &format!(
                "namespace: {namespace}\ncluster:\n  provider: existing\n  name: ci\n  existing: {{ kubeconfig: kubeconfig.yaml }}\npreflight: {{ min_free_disk: 1MiB }}\n{body}"
            ),
        );
        project
    }
}

pub fn copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What a command printed, stdout and stderr as one stream.
pub struct Printed {
    pub code: Option<i32>,
    pub text: String,
}

impl Printed {
    pub fn of(mut command: Command) -> Printed {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .spawn()
            .expect("run harness");
        // Only the process may hold the writing end: EOF when it exits.
        drop(command);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        let code = child.wait().unwrap().code();
        Printed { code, text }
    }
}

/// The lines read so far and whether the output has ended, with the
/// condition a reader waits on for the next.
type Lines = Arc<(Mutex<(Vec<String>, bool)>, Condvar)>;

/// A `harness` process whose output is read line by line while it runs.
pub struct Running {
    child: Child,
    lines: Lines,
}

impl Running {
    pub fn start(mut command: Command) -> Running {
        let (reader, writer) = std::io::pipe().unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .spawn()
            .expect("run harness");
        drop(command);
        let lines: Lines = Arc::new((Mutex::new((Vec::new(), false)), Condvar::new()));
        let shared = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                shared.0.lock().unwrap().0.push(line);
                shared.1.notify_all();
            }
            shared.0.lock().unwrap().1 = true;
            shared.1.notify_all();
        });
        Running { child, lines }
    }

    /// Waits (within a minute) for a line that `want` accepts.
    pub fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut state = self.lines.0.lock().unwrap();
        loop {
            if state.0.iter().any(|l| want(l)) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !state.1,
                "{what}: not printed; so far:\n{}",
                state.0.join("\n")
            );
            state = self.lines.1.wait_timeout(state, left).unwrap().0;
        }
    }

    pub fn finish(mut self) -> Printed {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "harness did not exit:\n{}",
                    self.lines.0.lock().unwrap().0.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut state = self.lines.0.lock().unwrap();
        while !state.1 {
            state = self.lines.1.wait(state).unwrap();
        }
        Printed {
            code: status.code(),
            text: state.0.join("\n") + "\n",
        }
    }
}

/// A test that fails while the process runs (a line never printed) must not
/// leave it behind: an orphaned `harness test` keeps running against the
/// cluster and holds whatever its test inherited (the machine lock's file).
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
