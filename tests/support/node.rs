//! A stand-in kind node for tests and benchmarks: a container running a
//! real containerd (Debian's package), labelled as a node of a kind cluster,
//! so the loading path runs against the real `ctr` without a Kubernetes
//! cluster (none can run on this machine). Shared by tests/cluster_nodes.rs
//! and benches/load.rs through `#[path]`.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// The node image, cached under a fixed tag so reruns are quick.
pub const NODE_IMAGE: &str = "harness-test/containerd-node:1";

const DOCKERFILE: &str = "FROM debian:bookworm-slim
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends containerd \\
 && rm -rf /var/lib/apt/lists/*
";

/// Whether Docker answers. Fails the test when HARNESS_REQUIRE_ENGINE=1
/// (CI), else reports a skip.
pub fn engine_available() -> bool {
    let up = Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        assert!(
            std::env::var("HARNESS_REQUIRE_ENGINE").as_deref() != Ok("1"),
            "a Docker daemon is required (HARNESS_REQUIRE_ENGINE=1): run scripts/install-deps"
        );
        eprintln!("skipped: no Docker daemon here (scripts/install-deps provides one)");
    }
    up
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

fn must(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Builds the node image unless it is there (FROM debian:bookworm-slim,
/// which scripts/base-images makes).
pub fn ensure_node_image() {
    if docker(&["image", "inspect", NODE_IMAGE]).status.success() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    must(&[
        "build",
        "-q",
        "-t",
        NODE_IMAGE,
        dir.path().to_str().unwrap(),
    ]);
}

fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{}-{hex}", std::process::id())
}

/// A running node container; removed when dropped, pass or fail.
pub struct Node {
    pub name: String,
    pub cluster: String,
}

impl Node {
    /// Starts a node of a new, uniquely named cluster.
    pub fn start() -> Node {
        Node::start_in(&unique("harness-test-cluster"))
    }

    /// Starts another node of `cluster`.
    pub fn start_in(cluster: &str) -> Node {
        ensure_node_image();
        let name = unique("harness-test-node");
        let node = Node {
            name: name.clone(),
            cluster: cluster.to_owned(),
        };
        // Not --privileged (it fails here, and nothing may depend on it):
        // all capabilities and unmasked /proc and /sys are what containerd's
        // overlayfs snapshotter needs.
        must(&[
            "run",
            "-d",
            "--name",
            &name,
            "--cap-add",
            "ALL",
            "--cap-drop",
            "SYS_RESOURCE",
            "--security-opt",
            "systempaths=unconfined",
            "--label",
            &format!("io.x-k8s.kind.cluster={cluster}"),
            "--label",
            "io.x-k8s.kind.role=worker",
            NODE_IMAGE,
            "containerd",
        ]);
        node.wait_ready(Duration::from_secs(30));
        node
    }

    /// Waits until containerd answers, with a deadline.
    fn wait_ready(&self, deadline: Duration) {
        let until = Instant::now() + deadline;
        loop {
            if docker(&["exec", &self.name, "ctr", "version"])
                .status
                .success()
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "containerd in {} did not answer within {deadline:?}: {}",
                self.name,
                String::from_utf8_lossy(&docker(&["logs", "--tail", "20", &self.name]).stderr)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr -n k8s.io images ls -q` in the node.
    pub fn image_refs(&self) -> Vec<String> {
        must(&[
            "exec", &self.name, "ctr", "-n", "k8s.io", "images", "ls", "-q",
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.name]);
    }
}

/// A tag the test adds to an existing image; removed (the tag only) when dropped.
pub struct Alias(pub String);

impl Alias {
    pub fn of(image: &str) -> Alias {
        let alias = format!("{}:1", unique("harness-test/alias"));
        must(&["tag", image, &alias]);
        Alias(alias)
    }
}

impl Drop for Alias {
    fn drop(&mut self) {
        let _ = docker(&["rmi", &self.0]);
    }
}

/// An image the test builds FROM `base` with a top layer of its own
/// (`size` random bytes, so no two share it); removed when dropped.
pub struct Derived(pub String);

impl Derived {
    pub fn build(base: &str, size: usize) -> Derived {
        let tag = format!("{}:1", unique("harness-test/derived"));
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![0u8; size];
        getrandom::fill(&mut data).unwrap();
        std::fs::write(dir.path().join("blob"), data).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!("FROM {base}\nCOPY blob /blob\n"),
        )
        .unwrap();
        must(&["build", "-q", "-t", &tag, dir.path().to_str().unwrap()]);
        Derived(tag)
    }
}

impl Drop for Derived {
    fn drop(&mut self) {
        let _ = docker(&["rmi", &self.0]);
    }
}

impl Node {
    /// From now on, every `ctr` call in the node is recorded (its
    /// arguments, one line each) before the real `ctr` runs.
    pub fn record_ctr_calls(&self) {
        must(&[
            "exec",
            &self.name,
            "sh",
            "-c",
            "mv /usr/bin/ctr /usr/bin/ctr.real && \
             printf '#!/bin/sh\\necho \"$*\" >> /ctr-calls\\nexec /usr/bin/ctr.real \"$@\"\\n' > /usr/bin/ctr && \
             chmod +x /usr/bin/ctr && : > /ctr-calls",
        ]);
    }

    /// The `ctr` calls recorded since [`Node::record_ctr_calls`].
    pub fn ctr_calls(&self) -> Vec<String> {
        must(&["exec", &self.name, "cat", "/ctr-calls"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `ctr images check` of one image: whether all its content is in the
    /// store (`complete`) and unpacked, by the name containerd gives it.
    pub fn image_complete(&self, name: &str) -> bool {
        let out = must(&[
            "exec",
            &self.name,
            "ctr",
            "-n",
            "k8s.io",
            "images",
            "check",
            &format!("name=={name}"),
        ]);
        out.lines().any(|l| {
            l.starts_with(name) && l.contains(" complete ") && l.trim_end().ends_with("true")
        })
    }
}
