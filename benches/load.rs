//! Loading images into a node, measured in one run against a real
//! containerd node (tests/support/node.rs) and the real Docker engine:
//!
//! 1. the skip path: the same image set loaded twice into one node; the
//!    second load's time as a fraction of the first;
//! 2. streaming: the engine's export piped straight into `ctr images import`
//!    vs saving it to a temp file first and importing that (what
//!    `kind load docker-image` does), each into a fresh node.
//!
//! `cargo bench --bench load`. Not part of the test run.

#[path = "../tests/support/node.rs"]
mod node;

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use harness::cluster::nodes::{self, CtrInventory, NodeContainer};
use harness::cluster::{ImageRef, LoadOutcome, no_progress};
use harness::config::EngineKind;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const IMAGES: [&str; 2] = ["harness/busybox:1", "debian:bookworm-slim"];

fn refs() -> Vec<ImageRef> {
    IMAGES
        .iter()
        .map(|r| ImageRef {
            name: r.split([':', '/']).next().unwrap().to_owned(),
            reference: (*r).to_owned(),
        })
        .collect()
}

async fn find(docker: &bollard::Docker, n: &node::Node) -> NodeContainer {
    nodes::kind_nodes(docker, &n.cluster)
        .await
        .unwrap()
        .remove(0)
}

/// Saves `reference` to a file, then streams the file into the node.
async fn via_temp_file(
    docker: &bollard::Docker,
    node: &NodeContainer,
    reference: &str,
    snapshotter: &str,
) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let mut file = tokio::fs::File::create(&path).await.unwrap();
    let mut export = std::pin::pin!(docker.export_image(reference));
    while let Some(chunk) = export.next().await {
        file.write_all(&chunk.unwrap()).await.unwrap();
    }
    file.sync_all().await.unwrap();
    drop(file);
    let file = tokio::fs::File::open(&path).await.unwrap();
    let chunks = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let cmd = nodes::import_command(snapshotter);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = nodes::exec_with_stdin(docker, &node.name, &cmd, Some(chunks))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    out.stdin_bytes
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
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
    let images = refs();
    println!("images: {}", IMAGES.join(", "));

    // 1. Skip path.
    let a = node::Node::start();
    let a_node = find(&docker, &a).await;
    let t = Instant::now();
    let first = nodes::load_into_nodes(
        &docker,
        std::slice::from_ref(&a_node),
        &images,
        &CtrInventory,
        &no_progress,
    )
    .await
    .unwrap();
    let first_time = t.elapsed();
    let t = Instant::now();
    let second = nodes::load_into_nodes(
        &docker,
        std::slice::from_ref(&a_node),
        &images,
        &CtrInventory,
        &no_progress,
    )
    .await
    .unwrap();
    let second_time = t.elapsed();
    assert!(
        second
            .loads
            .iter()
            .all(|l| l.outcome == LoadOutcome::Skipped)
    );
    println!(
        "first load   {:>8.3}s  ({} bytes)",
        secs(first_time),
        first.bytes_loaded()
    );
    println!("second load  {:>8.3}s  (all skipped)", secs(second_time));
    println!(
        "skip ratio: second/first = {:.3}",
        secs(second_time) / secs(first_time)
    );
    drop(a);

    // 2. Streamed vs temp file, each into a fresh node.
    let b = node::Node::start();
    let b_node = find(&docker, &b).await;
    let snapshotter = nodes::node_snapshotter(&docker, &b_node).await.unwrap();
    let t = Instant::now();
    let mut temp_bytes = 0;
    for r in IMAGES {
        temp_bytes += via_temp_file(&docker, &b_node, r, &snapshotter).await;
    }
    let temp_time = t.elapsed();
    drop(b);

    let c = node::Node::start();
    let c_node = find(&docker, &c).await;
    let t = Instant::now();
    let mut streamed_bytes = 0;
    for r in IMAGES {
        match nodes::stream_into_node(&docker, &c_node, r, &snapshotter)
            .await
            .unwrap()
        {
            LoadOutcome::Loaded { bytes, .. } => streamed_bytes += bytes,
            other => panic!("{other:?}"),
        }
    }
    let streamed_time = t.elapsed();
    drop(c);
    assert_eq!(
        streamed_bytes, temp_bytes,
        "both paths move the same archive"
    );

    println!(
        "temp file    {:>8.3}s  ({temp_bytes} bytes)",
        secs(temp_time)
    );
    println!(
        "streamed     {:>8.3}s  ({streamed_bytes} bytes)",
        secs(streamed_time)
    );
    println!(
        "stream ratio: streamed/temp-file = {:.3} (speed-up {:.2}x)",
        secs(streamed_time) / secs(temp_time),
        secs(temp_time) / secs(streamed_time)
    );
}
