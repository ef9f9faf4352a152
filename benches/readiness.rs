//! How quickly the harness acts on what the API server says, measured in
//! one run against the scripted fake API server of the tests:
//!
//! 1. latency from the watch event that makes a pod Ready (or doomed) to
//!    `wait_ready` returning its judgement, compared with the one-second
//!    re-judging clock: a ratio far below 1 shows the verdict comes from the
//!    event, not from the clock;
//! 2. classification throughput over a few thousand captured pods.
//!
//! Run with `cargo bench --bench readiness`.

#[path = "../tests/fake_api/mod.rs"]
mod fake_api;

use std::path::Path;
use std::time::{Duration, Instant};

use fake_api::{Reply, fixture, list, not_found, spawn};
use harness::deploy::judge::Outcome;
use harness::deploy::wait::{CLOCK, WaitSpec, wait_ready};
use harness::readiness::classify::Tolerance;
use harness::readiness::{Timestamp, classify_pod};
use k8s_openapi::api::core::v1::{Event, Pod};
use serde_json::Value;

const ROUNDS: usize = 40;

fn lines(file: &str, pod: &str) -> Vec<Value> {
    fixture(file)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["object"]["metadata"]["name"] == pod)
        .collect()
}

/// One round: the pod is listed in its first state, the watch is held
/// open, and the decisive event is released at a measured instant.
async fn round(file: &str, pod: &'static str, decisive: Value, want: Outcome) -> Duration {
    let all = lines(file, pod);
    let first = all[0]["object"].clone();
    let (watching_tx, mut watching_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut release = Some(tokio::sync::oneshot::channel::<(u16, String)>());
    let (client, _log) = spawn(move |req| match req.path.as_str() {
        "/api/v1/namespaces/fx/pods" if req.is_watch() => match release.take() {
            Some((tx, rx)) => {
                let _ = watching_tx.send(tx);
                Reply::Later(rx)
            }
            None => Reply::Hold,
        },
        "/api/v1/namespaces/fx/pods" => {
            Reply::Json(200, list("PodList", std::slice::from_ref(&first)))
        }
        "/api/v1/namespaces/fx/events" if req.is_watch() => Reply::Hold,
        "/api/v1/namespaces/fx/events" => Reply::Json(200, list("EventList", &[])),
        _ => not_found(&req.path),
    });
    let object = all[0]["object"].clone();
    let applied = [harness::deploy::AppliedObject {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: Some("fx".into()),
        name: pod.into(),
        uid: None,
        resource: kube::api::ApiResource::erase::<Pod>(&()),
        object: serde_json::from_value(object).unwrap(),
    }];
    let waiter = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        // From the event to the judgement, without the settle window.
        let spec = WaitSpec::new(Tolerance::default()).settle(Duration::ZERO);
        let end = wait_ready(&client, &applied, spec, deadline, |_| {}).await;
        (Instant::now(), end.judgement.outcome)
    });
    let tx = watching_rx.recv().await.unwrap();
    let sent = Instant::now();
    tx.send((200, decisive.to_string() + "\n")).unwrap();
    let (done, outcome) = waiter.await.unwrap();
    assert_eq!(outcome, want);
    done - sent
}

fn summary(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 95 / 100])
}

fn fixture_pods() -> (Vec<Pod>, Vec<Event>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s");
    let mut pods = Vec::new();
    let mut events = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                dirs.push(path);
            } else if name.starts_with("pod.") && name.ends_with(".json") {
                let text = std::fs::read_to_string(&path).unwrap();
                pods.push(serde_json::from_str(&text).unwrap());
            } else if name.starts_with("events.pod.") {
                let text = std::fs::read_to_string(&path).unwrap();
                let list: Value = serde_json::from_str(&text).unwrap();
                for e in list["items"].as_array().unwrap() {
                    events.push(serde_json::from_value(e.clone()).unwrap());
                }
            } else if name.ends_with(".watch.ndjson") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    let e: Value = serde_json::from_str(line).unwrap();
                    if e["type"] != "BOOKMARK" {
                        pods.push(serde_json::from_value(e["object"].clone()).unwrap());
                    }
                }
            }
        }
    }
    (pods, events)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ready_event = lines(
        "watch/deployment.watch.ndjson",
        "watch-web-594d8c6bd6-56d5s",
    )
    .pop()
    .unwrap();
    let doomed_event = lines("watch/crashloop.watch.ndjson", "watch-crash")[3].clone();
    let mut ready = Vec::new();
    let mut doomed = Vec::new();
    rt.block_on(async {
        for _ in 0..ROUNDS {
            ready.push(
                round(
                    "watch/deployment.watch.ndjson",
                    "watch-web-594d8c6bd6-56d5s",
                    ready_event.clone(),
                    Outcome::Ready,
                )
                .await,
            );
            doomed.push(
                round(
                    "watch/crashloop.watch.ndjson",
                    "watch-crash",
                    doomed_event.clone(),
                    Outcome::Failed,
                )
                .await,
            );
        }
    });
    let (r50, r95) = summary(ready);
    let (d50, d95) = summary(doomed);
    println!("watch event -> judgement ({ROUNDS} rounds each, fake API server)");
    println!("  Ready:  median {r50:?}, p95 {r95:?}");
    println!("  doomed: median {d50:?}, p95 {d95:?}");
    println!(
        "  p95 / re-judging clock ({CLOCK:?}): Ready {:.4}, doomed {:.4}",
        r95.as_secs_f64() / CLOCK.as_secs_f64(),
        d95.as_secs_f64() / CLOCK.as_secs_f64()
    );

    let (captured, events) = fixture_pods();
    let target = 3000;
    let pods: Vec<&Pod> = captured.iter().cycle().take(target).collect();
    let now = Timestamp::now();
    let tolerance = Tolerance::default();
    let start = Instant::now();
    let mut verdicts = 0usize;
    for pod in &pods {
        verdicts += classify_pod(pod, &events, now, &tolerance).len();
    }
    let took = start.elapsed();
    println!(
        "classification: {} pods ({} captured, cycled) against {} events in {took:?}: {:.0} pods/s, {verdicts} verdicts",
        pods.len(),
        captured.len(),
        events.len(),
        pods.len() as f64 / took.as_secs_f64()
    );
}
