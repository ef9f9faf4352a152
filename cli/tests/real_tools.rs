//! Preflight against the real tools: a running Docker daemon and the real
//! kind CLI, as `scripts/test` (and so CI) provides them.
//!
//! Where they are missing these tests fail when HARNESS_REQUIRE_ENGINE=1
//! (set by scripts/test) and are skipped with a notice otherwise, so a
//! developer without Docker can still run the rest.

use std::path::Path;
use std::process::Command;

// Only its engine check is used here (it allows its own dead code).
#[path = "../../tests/support/node.rs"]
mod node;

/// The engine (see support/node.rs) and the real kind CLI.
fn engine_available() -> bool {
    if !node::engine_available() {
        return false;
    }
    let kind = Command::new("kind")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        kind || std::env::var("HARNESS_REQUIRE_ENGINE").as_deref() != Ok("1"),
        "kind is required (HARNESS_REQUIRE_ENGINE=1): run scripts/install-deps"
    );
    kind
}

fn lane_file(dir: &Path, min_kind: &str) {
    let port = std::net::TcpListener::bind(("0.0.0.0", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("kind.yaml"),
        format!("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 30080\n    hostPort: {port}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("harness.yaml"),
        format!("cluster:\n  kind: {{ min_version: {min_kind} }}\npreflight: {{ min_free_disk: 1MiB }}\ncomponents:\n  app: {{ manifests: [app.yaml] }}\nlanes:\n  main:\n    cluster: {{ kind: {{ config: kind.yaml }} }}\n    components: [app]\n"),
    )
    .unwrap();
}

fn preflight(dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(dir)
        .args(["preflight", "--output", "json"])
        .env_remove("DOCKER_HOST")
        .env_remove("HARNESS_CONFIG")
        .env_remove("HARNESS_LANE")
        .output()
        .unwrap()
}

#[test]
fn preflight_passes_against_the_real_engine_and_kind() {
    if !engine_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    lane_file(dir.path(), "0.20.0");
    let out = preflight(dir.path());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checks = report["checks"].as_array().unwrap();
    let summary = |name: &str| {
        checks.iter().find(|c| c["name"] == name).unwrap()["summary"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The engine check negotiated an API version with the real daemon.
    let engine = summary("engine");
    let server = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    let server = String::from_utf8_lossy(&server.stdout).trim().to_owned();
    assert!(
        engine.starts_with(&format!(
            "docker {server} at unix:///var/run/docker.sock (default), API "
        )),
        "{engine}"
    );
    // kind's own version output was read.
    let kind = Command::new("kind").arg("version").output().unwrap();
    let kind = String::from_utf8_lossy(&kind.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_start_matches('v')
        .to_owned();
    assert_eq!(
        summary("kind"),
        format!("kind {kind} (need 0.20.0 or newer)")
    );
    assert!(summary("ports").ends_with("/TCP free"));
}

#[test]
fn preflight_rejects_a_kind_older_than_required() {
    if !engine_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    lane_file(dir.path(), "99.0.0");
    let out = preflight(dir.path());
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let kind = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kind")
        .unwrap();
    assert_eq!(kind["status"], "fail");
    assert!(
        kind["summary"]
            .as_str()
            .unwrap()
            .ends_with("is older than the required 99.0.0"),
        "{kind}"
    );
    assert!(
        kind["fix"]
            .as_str()
            .unwrap()
            .starts_with("upgrade kind to 99.0.0 or newer"),
        "{kind}"
    );
    // The other checks still ran and passed: one failure does not hide another.
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["kind"]);
}
