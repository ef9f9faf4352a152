//! The whole demo stack on a real kind cluster, from a fresh clone, in one
//! command: `harness test --lane audit` (the host build of the demo
//! binaries, images, cluster, deploy, readiness, the audit and load
//! suites). Needs kind with a node image it can use, so it is ignored
//! here; run it with `cargo test --test demo_stack -- --ignored` (see the
//! README).

use std::path::PathBuf;
use std::process::Command;

#[test]
#[ignore = "needs cluster"]
fn audit_lane_passes_on_kind() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Nothing before it: the lane file's host build makes the binaries
    // the images package.
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
