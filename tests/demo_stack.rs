//! The whole demo stack on a real kind cluster: build the demo binaries,
//! then `harness test --lane audit` (images, cluster, deploy, readiness,
//! the audit and load suites). Needs kind with a pullable node image, so it
//! is ignored here; run it with
//! `cargo test --test demo_stack -- --ignored` (see the README).

use std::path::PathBuf;
use std::process::Command;

#[test]
#[ignore = "needs cluster"]
fn audit_lane_passes_on_kind() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The images package host-built binaries from target/release/ (the
    // build context is the repository), whatever CARGO_TARGET_DIR says.
    let build = Command::new(env!("CARGO"))
        .current_dir(&repo)
        .args(["build", "--release", "-p", "harness-demo"])
        .env("CARGO_TARGET_DIR", repo.join("target"))
        .status()
        .unwrap();
    assert!(
        build.success(),
        "cargo build --release -p harness-demo failed"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(&repo)
        .args(["test", "--lane", "audit"])
        .env_remove("HARNESS_CONFIG")
        .env_remove("HARNESS_LANE")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "harness test --lane audit\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
