//! What the benches that run the release binary on kind clusters share:
//! the repository, the binary (built first), the clusters that must not be
//! up, and the median of their rounds.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The release binary `build` makes.
pub fn binary() -> PathBuf {
    root().join("target/release/harness")
}

/// Builds the release binary; panics when it cannot.
pub fn build() {
    let built = Command::new("cargo")
        .args(["build", "--release", "-p", "harness-cli", "--quiet"])
        .current_dir(root())
        .status()
        .expect("cargo runs");
    assert!(built.success(), "cannot build the release binary");
}

/// Panics, saying how to take them down, when any of `clusters` is up:
/// the bench makes its own.
pub fn none_up(clusters: &[&str]) {
    let out = Command::new("kind")
        .args(["get", "clusters"])
        .output()
        .expect("kind runs");
    let up: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| clusters.contains(l))
        .map(str::to_owned)
        .collect();
    assert!(
        up.is_empty(),
        "kind clusters {up:?} are up: the bench makes its own (`harness down --lane …`)"
    );
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
