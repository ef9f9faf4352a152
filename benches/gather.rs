//! Gather of a namespace with many pods against a scripted source whose
//! logs arrive in delayed chunks (an API server streaming them): collection
//! with 8 collectors at once vs one at a time, ratio printed; and peak
//! memory as the pod count grows (logs are streamed into files, never held
//! whole, so the peak stays flat while the bytes written grow).
//!
//! `cargo bench --bench gather`; never part of the test run.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use harness::gather::BundleWriter;
use harness::gather::collect::{LogStream, Request, Source, collect};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

struct Scripted {
    pods: Vec<Pod>,
    chunk: usize,
    chunks: usize,
    delay: Duration,
}

impl Scripted {
    fn new(count: usize, chunks: usize, delay: Duration) -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/k8s/pod-crashloop/pod.crashloop.json"
        );
        let template: Pod = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let pods = (0..count)
            .map(|i| {
                let mut p = template.clone();
                p.metadata.name = Some(format!("pod-{i}"));
                p
            })
            .collect();
        Self {
            pods,
            chunk: 64 * 1024,
            chunks,
            delay,
        }
    }
}

impl Source for Scripted {
    async fn objects(&self, _: &str) -> Result<Vec<Value>, String> {
        Ok(Vec::new())
    }
    async fn secrets(&self, _: &str) -> Result<Vec<Value>, String> {
        Ok(Vec::new())
    }
    async fn events(&self, _: &str) -> Result<Value, String> {
        Ok(serde_json::json!({"items": []}))
    }
    async fn pods(&self, _: &str) -> Result<Vec<Pod>, String> {
        Ok(self.pods.clone())
    }
    async fn cluster_objects(&self) -> Result<Vec<Value>, String> {
        Ok(Vec::new())
    }
    async fn log(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: bool,
        _: Option<Duration>,
    ) -> Result<LogStream, String> {
        let (chunk, delay) = (self.chunk, self.delay);
        Ok(Box::pin(stream::unfold(
            self.chunks,
            move |left| async move {
                if left == 0 {
                    return None;
                }
                tokio::time::sleep(delay).await;
                Some((Ok(Bytes::from(vec![b'x'; chunk])), left - 1))
            },
        )))
    }
}

async fn gather(source: &Scripted, concurrency: usize) -> (Duration, u64) {
    let out = tempfile::tempdir().unwrap();
    let mut writer = BundleWriter::create(out.path(), "bench", vec![]).unwrap();
    let request = Request {
        namespaces: vec!["fx".into()],
        since: None,
        concurrency,
        harness_files: vec![],
    };
    let started = Instant::now();
    collect(source, &request, &mut writer).await;
    let bundle = writer.finish(None).unwrap();
    (started.elapsed(), bundle.bytes)
}

/// Peak resident memory of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let source = Scripted::new(40, 4, Duration::from_millis(5));
    let (one, bytes) = gather(&source, 1).await;
    let (eight, _) = gather(&source, 8).await;
    println!(
        "40 pods, 80 logs of 256 KiB in delayed chunks ({} MiB): one at a time {one:.2?}, 8 at once {eight:.2?}, ratio {:.2}",
        bytes / (1024 * 1024),
        eight.as_secs_f64() / one.as_secs_f64()
    );
    for count in [50, 400] {
        let source = Scripted::new(count, 16, Duration::ZERO);
        let (time, bytes) = gather(&source, 8).await;
        println!(
            "{count} pods: {} MiB written in {time:.2?}; peak RSS so far {} MiB",
            bytes / (1024 * 1024),
            peak_rss_kib() / 1024
        );
    }
}
