//! `kind load docker-image` against the harness's loader, side by side, in
//! one run on the same node, and the ratios.
//!
//! The node is a real kind node when one can be made: a fresh cluster
//! `load-bench-<hex>` from `$HARNESS_KIND_NODE_IMAGE` (this machine:
//! `harness/kind-node:v1.20.2-…` with test-cluster/bin first on PATH, since
//! kind's `--privileged` needs that wrapper here); otherwise the containerd
//! stand-in node of tests/support/node.rs, which kind finds by the same
//! label. The images: three built FROM debian:bookworm-slim — the base the
//! test cluster's own images (etcd, kube-proxy) are built from, so its node
//! holds that layer, as a user's node holds the base of the images it ran
//! before — each with a 24 MiB top layer of its own (or
//! `$HARNESS_BENCH_IMAGES`, references the engine has, e.g. the demo's
//! images). For each case — the shared set, and one image alone — each
//! tool does a first load into a node that lacks the images (removed from
//! its containerd between loads, garbage collected synchronously, so what
//! the node holds is only what it held when it was made), then a second
//! load of the same, unchanged images. The tools alternate which goes
//! first, round by round (`$HARNESS_BENCH_ROUNDS`, default 3), after one
//! unmeasured export warms the page cache; the medians are compared, with
//! the bytes each tool sent the node (kind: the `docker save` archive of
//! the images; the harness: what its loader reported sending). Everything
//! the bench made (cluster, images, temp files) is removed at the end,
//! pass or fail.
//!
//! `cargo bench --profile dev --bench load`. Not part of the test run.

#[path = "../tests/support/node.rs"]
mod node;

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use harness::cluster::nodes::{self, CtrInventory, NodeContainer};
use harness::cluster::{ImageRef, LoadOutcome, LoadReport, no_progress};
use harness::config::EngineKind;

const TOP_LAYER: usize = 24 << 20;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn hex8() -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A kind cluster the bench made; deleted when dropped.
struct KindCluster {
    name: String,
    _dir: tempfile::TempDir,
}

impl KindCluster {
    fn create(image: &str) -> Option<KindCluster> {
        let name = format!("load-bench-{}", hex8());
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        println!("creating kind cluster {name} from {image} ...");
        let t = Instant::now();
        let out = Command::new("kind")
            .args(["create", "cluster", "--name", &name, "--image", image])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()
            .ok()?;
        let cluster = KindCluster { name, _dir: dir };
        if !out.status.success() {
            eprintln!(
                "kind create cluster failed, using the stand-in node: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        println!("  created in {:.1}s", t.elapsed().as_secs_f64());
        Some(cluster)
    }
}

impl Drop for KindCluster {
    fn drop(&mut self) {
        let _ = Command::new("kind")
            .args(["delete", "cluster", "--name", &self.name])
            .output();
    }
}

/// Where the loads go: a real kind node, or the stand-in.
enum Target {
    Kind(KindCluster),
    StandIn(node::Node),
}

impl Target {
    fn cluster(&self) -> &str {
        match self {
            Target::Kind(k) => &k.name,
            Target::StandIn(n) => &n.cluster,
        }
    }
    fn describe(&self) -> String {
        match self {
            Target::Kind(k) => format!("real kind node of cluster {}", k.name),
            Target::StandIn(n) => format!("containerd stand-in node {}", n.name),
        }
    }
}

fn refs(references: &[String]) -> Vec<ImageRef> {
    references
        .iter()
        .enumerate()
        .map(|(i, r)| ImageRef {
            name: format!("image{i}"),
            reference: r.clone(),
        })
        .collect()
}

async fn engine_ids(docker: &bollard::Docker, references: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for r in references {
        ids.push(nodes::engine_image_id(docker, r).await.unwrap());
    }
    ids
}

/// Removes every name of these images (by content) from the node, and
/// waits for containerd's garbage collection, so the next load starts from
/// a node that lacks them.
async fn forget(docker: &bollard::Docker, node: &NodeContainer, ids: &[String]) {
    use harness::cluster::nodes::InventorySource as _;
    let inventory = CtrInventory.inventory(docker, node).await.unwrap();
    let mut names = Vec::new();
    for image in &inventory.images {
        if image.id.as_ref().is_some_and(|id| ids.contains(id)) {
            names.extend(image.names.iter().cloned());
            names.extend(image.id.iter().cloned());
        }
    }
    if !names.is_empty() {
        let mut cmd = vec!["ctr", "--namespace=k8s.io", "images", "rm", "--sync"];
        cmd.extend(names.iter().map(String::as_str));
        let out = nodes::exec(docker, &node.name, &cmd).await.unwrap();
        assert_eq!(out.exit_code, 0, "{}", out.stderr);
    }
    let left = CtrInventory.inventory(docker, node).await.unwrap();
    assert!(
        left.images
            .iter()
            .all(|i| !i.id.as_ref().is_some_and(|id| ids.contains(id))),
        "images still in the node after removal"
    );
}

fn kind_load(cluster: &str, references: &[String]) -> Duration {
    let t = Instant::now();
    run(Command::new("kind")
        .args(["load", "docker-image", "--name", cluster])
        .args(references));
    t.elapsed()
}

async fn harness_load(
    docker: &bollard::Docker,
    node: &NodeContainer,
    images: &[ImageRef],
) -> (Duration, LoadReport) {
    let t = Instant::now();
    let report = nodes::load_into_nodes(
        docker,
        std::slice::from_ref(node),
        images,
        &CtrInventory,
        &no_progress,
    )
    .await
    .unwrap();
    (t.elapsed(), report)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[derive(Default)]
struct Times {
    kind_first: Vec<f64>,
    kind_second: Vec<f64>,
    harness_first: Vec<f64>,
    harness_second: Vec<f64>,
    /// What kind sends each node: the engine's archive of the images.
    kind_bytes: u64,
    /// What the harness's first loads sent the node.
    harness_bytes: Vec<u64>,
}

/// Bytes of the engine's export of `references`, together in one archive
/// (what `kind load docker-image` saves and streams into each node).
async fn export_len(docker: &bollard::Docker, references: &[String]) -> u64 {
    let names: Vec<&str> = references.iter().map(String::as_str).collect();
    let mut stream = std::pin::pin!(docker.export_images(&names));
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        n += chunk.unwrap().len() as u64;
    }
    n
}

/// Rounds of first + second load by each tool into the same node.
async fn measure(
    docker: &bollard::Docker,
    target: &Target,
    node: &NodeContainer,
    references: &[String],
    rounds: usize,
) -> Times {
    let images = refs(references);
    let ids = engine_ids(docker, references).await;
    let mut times = Times {
        kind_bytes: export_len(docker, references).await,
        ..Times::default()
    };
    forget(docker, node, &ids).await;
    for round in 0..rounds {
        let kind_first = round % 2 == 0;
        for tool in if kind_first { [0, 1] } else { [1, 0] } {
            if tool == 0 {
                let first = kind_load(target.cluster(), references);
                let second = kind_load(target.cluster(), references);
                println!(
                    "  round {round}  kind     first {:>7.3}s  second {:>7.3}s",
                    first.as_secs_f64(),
                    second.as_secs_f64()
                );
                times.kind_first.push(first.as_secs_f64());
                times.kind_second.push(second.as_secs_f64());
            } else {
                let (first, report) = harness_load(docker, node, &images).await;
                assert!(
                    report
                        .loads
                        .iter()
                        .all(|l| matches!(l.outcome, LoadOutcome::Loaded { .. })),
                    "the first load loads: {report:?}"
                );
                let (second, again) = harness_load(docker, node, &images).await;
                assert!(
                    again
                        .loads
                        .iter()
                        .all(|l| l.outcome == LoadOutcome::Skipped),
                    "the second load skips: {again:?}"
                );
                println!(
                    "  round {round}  harness  first {:>7.3}s  second {:>7.3}s  ({} streamed)",
                    first.as_secs_f64(),
                    second.as_secs_f64(),
                    bytesize::ByteSize::b(report.bytes_loaded()).display().iec()
                );
                times.harness_first.push(first.as_secs_f64());
                times.harness_second.push(second.as_secs_f64());
                times.harness_bytes.push(report.bytes_loaded());
            }
            forget(docker, node, &ids).await;
        }
    }
    times
}

/// Prints the medians and ratios; returns (first, second) speed-ups.
fn summarize(case: &str, times: Times) -> (f64, f64) {
    let kf = median(times.kind_first);
    let ks = median(times.kind_second);
    let hf = median(times.harness_first);
    let hs = median(times.harness_second);
    let mib = |b: u64| bytesize::ByteSize::b(b).display().iec().to_string();
    let sent = times
        .harness_bytes
        .iter()
        .map(|b| mib(*b))
        .collect::<Vec<_>>()
        .join(", ");
    println!("{case}: median of each");
    println!(
        "  bytes sent   kind {} each load  harness {sent}",
        mib(times.kind_bytes)
    );
    println!(
        "  first load   kind {kf:>7.3}s  harness {hf:>7.3}s  → harness {:.2}x faster",
        kf / hf
    );
    println!(
        "  second load  kind {ks:>7.3}s  harness {hs:>7.3}s  → harness {:.1}x faster",
        ks / hs
    );
    (kf / hf, ks / hs)
}

async fn warm(docker: &bollard::Docker, references: &[String]) {
    let names: Vec<&str> = references.iter().map(String::as_str).collect();
    let mut stream = std::pin::pin!(docker.export_images(&names));
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
    }
}

#[tokio::main]
async fn main() {
    if !node::engine_available() {
        return;
    }
    let ep = harness::engine::endpoint_from_env(EngineKind::Docker);
    let (docker, _) = harness::engine::connect(&ep, Duration::from_secs(10))
        .await
        .unwrap();
    let rounds: usize = std::env::var("HARNESS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);

    // The images first: a build failure should not leave a cluster behind.
    // `_built` removes the images the bench built when it goes.
    let (references, _built): (Vec<String>, Vec<node::Derived>) =
        match std::env::var("HARNESS_BENCH_IMAGES") {
            Ok(list) if !list.trim().is_empty() => {
                let r: Vec<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
                (r, Vec::new())
            }
            _ => {
                let built: Vec<node::Derived> = (0..3)
                    .map(|_| node::Derived::build("debian:bookworm-slim", TOP_LAYER))
                    .collect();
                let r = built.iter().map(|d| d.0.clone()).collect();
                (r, built)
            }
        };

    let target = match std::env::var("HARNESS_KIND_NODE_IMAGE") {
        Ok(image) if !image.is_empty() => KindCluster::create(&image).map(Target::Kind),
        _ => {
            eprintln!("HARNESS_KIND_NODE_IMAGE is not set: using the containerd stand-in node");
            None
        }
    }
    .unwrap_or_else(|| Target::StandIn(node::Node::start()));
    let node = nodes::kind_nodes(&docker, target.cluster())
        .await
        .unwrap()
        .remove(0);

    let sizes: Vec<String> = {
        let mut s = Vec::new();
        for r in &references {
            let i = docker.inspect_image(r).await.unwrap();
            s.push(format!(
                "{r} ({})",
                bytesize::ByteSize::b(i.size.unwrap_or_default() as u64)
                    .display()
                    .iec()
            ));
        }
        s
    };
    println!("node:   {}", target.describe());
    println!(
        "kind:   {}",
        String::from_utf8_lossy(&run(Command::new("kind").arg("version")).stdout).trim()
    );
    println!("images: {}", sizes.join(", "));
    println!("rounds: {rounds}, the tools alternating which goes first");
    warm(&docker, &references).await;

    println!("images sharing a base ({}):", references.len());
    let shared = measure(&docker, &target, &node, &references, rounds).await;
    println!("a single image:");
    let single = measure(&docker, &target, &node, &references[..1], rounds).await;

    println!();
    let (shared_first, shared_second) = summarize("shared base", shared);
    let (single_first, single_second) = summarize("single image", single);
    println!();
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goal: first load of images sharing the node's base >= 2x faster than kind: {shared_first:.2}x ({})",
        verdict(shared_first >= 2.0)
    );
    println!(
        "goal: first load of a single image >= 1.3x faster than kind: {single_first:.2}x ({})",
        verdict(single_first >= 1.3)
    );
    println!(
        "goal: second load >= 20x faster than kind's: {shared_second:.1}x shared, {single_second:.1}x single ({})",
        verdict(shared_second >= 20.0 && single_second >= 20.0)
    );
    drop(target);
}
