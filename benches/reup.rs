//! What the settle window costs the demo lane, measured in one run through
//! the real binary on a kind cluster of the 1.20 test node image:
//!
//! 1. the first `harness up --lane audit`, from nothing but the cached
//!    images and node image (the cluster is made, the images loaded);
//! 2. `harness up --lane audit` again while the lane is up, unchanged
//!    (`$HARNESS_BENCH_ROUNDS` times, default 3): the median, and the first
//!    `up` over it (issue #23's goal: ≤ 0.5 s and ≥ 100×);
//! 3. the deploy phase of `up` into fresh namespaces (the lane's namespaces
//!    deleted before each round), with the lane file's windows and with
//!    `settle: 0s` on every component, the two alternating which goes first:
//!    the medians and their ratio (the goal: ≤ 1.15×).
//!
//! The lane is taken down at the end, pass or fail. It uses the demo lane's
//! cluster `audit-e2e` and its host ports: nothing else may hold them.
//! Needs the engine, kind, `$HARNESS_KIND_NODE_IMAGE` and, where
//! `--privileged` is refused, test-cluster/bin first on PATH — all of which
//! `eval "$(scripts/test-cluster env)"` sets. Builds the release binary
//! first (the demo lane's host build too, on its first `up`).
//!
//! `cargo bench --profile dev --bench reup`. Not part of the test run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/release.rs"]
mod release;

use release::{binary, median, root};

const LANE: &str = "audit";

/// The lane file with no settle windows (ignored by git; removed at the end).
const NO_WINDOW_FILE: &str = "harness.bench-settle-0s.yaml";

/// One `harness <args>` with `--output json`: how long it took and the
/// events it printed. Panics, with its output, when it fails.
fn harness(args: &[&str]) -> (Duration, Vec<serde_json::Value>) {
    let start = Instant::now();
    let out = Command::new(binary())
        .args(args)
        .args(["--lane", LANE, "--output", "json"])
        .current_dir(root())
        .env_remove("CI")
        .output()
        .expect("the harness binary runs");
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "harness {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let events = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (took, events)
}

/// The seconds the deploy phase took, from the run's events.
fn deploy_phase(events: &[serde_json::Value]) -> f64 {
    events
        .iter()
        .find(|e| e["event"] == "phase_finished" && e["phase"] == "deploy")
        .and_then(|e| e["seconds"].as_f64())
        .expect("the run reports its deploy phase")
}

/// The lane file with `settle: 0s` on every component: a copy beside it
/// (the lane file's paths are relative to its directory), removed when
/// dropped.
struct NoWindow(PathBuf);

impl NoWindow {
    fn write() -> Self {
        let text = std::fs::read_to_string(root().join("harness.yaml")).unwrap();
        let mut out = String::new();
        let mut in_components = false;
        for line in text.lines() {
            out.push_str(line);
            out.push('\n');
            if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
                in_components = line.trim_end() == "components:";
                continue;
            }
            // `  name:` directly under `components:` opens a component.
            let component = line.len() > 2
                && line.starts_with("  ")
                && !line[2..].starts_with([' ', '#'])
                && line.trim_end().ends_with(':');
            if in_components && component {
                out.push_str("    settle: 0s\n");
            }
        }
        // Beside harness.yaml: its paths resolve from its directory.
        let path = root().join(NO_WINDOW_FILE);
        std::fs::write(&path, out).unwrap();
        Self(path)
    }
}

impl Drop for NoWindow {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Takes the lane down when dropped, pass or fail.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(binary())
            .args(["down", "--lane", LANE])
            .current_dir(root())
            .status();
    }
}

/// Deletes the lane's namespaces and waits until they are gone, so the
/// next `up` deploys everything anew.
fn delete_namespaces(kubeconfig: &Path, namespaces: &[String]) {
    let status = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["delete", "namespace", "--wait=true", "--timeout=180s"])
        .args(namespaces)
        .status()
        .expect("kubectl runs");
    assert!(status.success(), "cannot delete {namespaces:?}");
}

fn main() {
    let rounds: usize = std::env::var("HARNESS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    release::build();
    release::none_up(&["audit-e2e"]);
    let _down = Down;

    let (first, events) = harness(&["up"]);
    let first_deploy = deploy_phase(&events);
    println!(
        "first up: {:.1}s (deploy phase {first_deploy:.1}s)",
        first.as_secs_f64()
    );
    let reups: Vec<f64> = (0..rounds)
        .map(|_| harness(&["up"]).0.as_secs_f64())
        .collect();
    let reup = median(reups.clone());
    println!(
        "re-up (lane up, unchanged): {} → median {reup:.2}s; first up / re-up {:.0}×  (goal: ≤ 0.5 s and ≥ 100×)",
        reups
            .iter()
            .map(|s| format!("{s:.2}s"))
            .collect::<Vec<_>>()
            .join(" "),
        first.as_secs_f64() / reup
    );

    let kubeconfig = lane_kubeconfig();
    let namespaces = lane_namespaces();
    let no_window = NoWindow::write();
    let config = no_window.0.display().to_string();
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order: [bool; 2] = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for windowed in order {
            delete_namespaces(&kubeconfig, &namespaces);
            let args: Vec<&str> = if windowed {
                vec!["up"]
            } else {
                vec!["--config", &config, "up"]
            };
            let (_, events) = harness(&args);
            let seconds = deploy_phase(&events);
            if windowed { &mut with } else { &mut without }.push(seconds);
        }
    }
    let show = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{s:.1}s"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (w, wo) = (median(with.clone()), median(without.clone()));
    println!(
        "deploy phase, fresh namespaces: default window {} (median {w:.1}s), settle: 0s {} (median {wo:.1}s): {:.2}×  (goal: ≤ 1.15×)",
        show(&with),
        show(&without),
        w / wo
    );
}

/// The kubeconfig `up` wrote for the lane's cluster, from its state file.
fn lane_kubeconfig() -> PathBuf {
    let state = std::fs::read_to_string(root().join(".harness/state/audit.json"))
        .expect("the lane's state file after up");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    PathBuf::from(
        state["kubeconfig"]
            .as_str()
            .expect("the state file names the kubeconfig"),
    )
}

/// The lane's namespaces, as `harness plan` prints them.
fn lane_namespaces() -> Vec<String> {
    let out = Command::new(binary())
        .args(["plan", "--lane", LANE, "--output", "json"])
        .current_dir(root())
        .output()
        .expect("harness plan runs");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan's JSON");
    plan["lanes"][0]["namespaces"]
        .as_array()
        .expect("the plan names the lane's namespaces")
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}
