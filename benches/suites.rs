//! Ten short suites with `--jobs 1` and `--jobs 4`, measured in one run,
//! and the harness's own overhead per suite (spawn, log, events, teardown
//! of the process group) from suites that do nothing.
//!
//! `cargo bench --bench suites`; never part of the test run.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::suites::{CancelToken, NoNamespaces, OsRandom, RunConfig, SuiteSpec, run_suites};

fn suites(n: usize, script: &str) -> Vec<SuiteSpec> {
    (0..n)
        .map(|i| SuiteSpec {
            name: format!("s{i}"),
            command: vec!["sh".into(), "-c".into(), OsString::from(script)],
            cwd: std::env::temp_dir(),
            timeout: Duration::from_secs(60),
            serial: false,
            namespace_prefix: "bench".into(),
            env: Default::default(),
        })
        .collect()
}

async fn run(specs: &[SuiteSpec], jobs: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let config = RunConfig {
        run_id: "bench".into(),
        kubeconfig: "/dev/null".into(),
        artifacts_root: dir.path().to_path_buf(),
        endpoints: BTreeMap::new(),
        jobs: NonZeroUsize::new(jobs).unwrap(),
        grace: Duration::from_secs(5),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let started = Instant::now();
    let summary = run_suites(
        specs,
        &config,
        Arc::new(NoNamespaces),
        &mut OsRandom,
        tx,
        CancelToken::never(),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    drain.await.unwrap();
    assert!(summary.passed());
    elapsed
}

#[tokio::main]
async fn main() {
    let ten = suites(10, "sleep 0.3; echo done");
    let serial = run(&ten, 1).await;
    let parallel = run(&ten, 4).await;
    println!(
        "10 suites of 0.3 s: --jobs 1 {serial:.2?}, --jobs 4 {parallel:.2?}, ratio {:.2}",
        parallel.as_secs_f64() / serial.as_secs_f64()
    );
    let empty = suites(50, "true");
    let overhead = run(&empty, 1).await;
    println!(
        "overhead per suite (spawn, log, events, group cleanup): {:.1} ms",
        overhead.as_secs_f64() * 1000.0 / 50.0
    );
}
