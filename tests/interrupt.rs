//! A real `harness test` process interrupted while it deploys: the first
//! SIGINT stops `up` and gather still starts (with a live budget, not the
//! cancelled context); the second skips what is left of gather and goes to
//! teardown; the process exits 130 and leaves no bundle under a final name.
//!
//! The "cluster" is an existing-provider lane whose API server accepts
//! connections and never answers, so deploy and gather hang exactly where a
//! dead or overloaded API server would leave them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn project(dir: &Path, port: u16) {
    std::fs::write(
        dir.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("kubeconfig.yaml"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: silent\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: silent\n  context: {{cluster: silent, user: u}}\ncurrent-context: silent\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("harness.yaml"),
        "cluster:\n  provider: existing\n  existing: { kubeconfig: kubeconfig.yaml }\npreflight: { min_free_disk: 1MiB }\ncomponents:\n  app: { manifests: [app.yaml] }\nlanes:\n  main:\n    components: [app]\n    suites:\n      s: { command: [\"true\"] }\n",
    )
    .unwrap();
}

/// Waits (with a deadline) for the JSON event that matches.
fn wait_for(
    lines: &mpsc::Receiver<serde_json::Value>,
    seen: &mut Vec<serde_json::Value>,
    want: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("event not seen; got {seen:#?}"));
        let hit = want(&event);
        seen.push(event);
        if hit {
            return;
        }
    }
}

#[test]
fn sigint_during_deploy_gathers_then_a_second_skips_to_teardown() {
    // An API server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), port);
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(dir.path())
        .args(["test", "--output", "json"])
        .env_remove("HARNESS_CONFIG")
        .env_remove("HARNESS_LANE")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let pid = Pid::from_raw(child.id() as i32);
    let mut seen = Vec::new();
    let phase_started = |name: &'static str| {
        move |e: &serde_json::Value| e["event"] == "phase_started" && e["phase"] == name
    };
    wait_for(&rx, &mut seen, phase_started("deploy"));
    kill(pid, Signal::SIGINT).unwrap();
    wait_for(&rx, &mut seen, phase_started("gather"));
    kill(pid, Signal::SIGINT).unwrap();
    wait_for(&rx, &mut seen, |e| {
        e["event"] == "phase_finished" && e["phase"] == "teardown"
    });
    // Exit within a deadline, with the interrupted code.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "harness did not exit after teardown"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let phases: Vec<&str> = seen
        .iter()
        .filter(|e| e["event"] == "phase_started")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "preflight",
            "images",
            "cluster",
            "load",
            "deploy",
            "gather",
            "teardown"
        ],
        "{seen:#?}"
    );
    // Gather was cut short: nothing under a final bundle name.
    let runs = dir.path().join(".harness/runs");
    for run in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
        for entry in std::fs::read_dir(run.path().join("gather"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                name.starts_with('.') && name.ends_with(".partial"),
                "a bundle was published: {name}"
            );
        }
    }
    // The run brought the lane up, so its state is forgotten (the existing
    // cluster itself is never deleted).
    assert!(!dir.path().join(".harness/state/main.json").exists());
}
