//! Gather of a namespace with many pods through the kube adapter
//! (`KubeSource`, a real `kube::Client`) against a fake API server whose
//! log responses stream in delayed chunks, as a kubelet's do: collection
//! with 8 collectors at once vs one at a time, ratio printed; and peak
//! memory as the pod count grows (logs are streamed into files, never held
//! whole: what grows with the pods is the object lists, held whole as the
//! API server returns them, not the log bytes).
//!
//! The server is a `tower_test::mock::pair` under the client, as in
//! tests/fake_api, but its bodies are streams (`http_body_util::StreamBody`):
//! each log arrives chunk by chunk, a pause before each chunk.
//!
//! `cargo bench --profile dev --bench gather`; never part of the test run.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use harness::gather::BundleWriter;
use harness::gather::collect::{Request, collect};
use harness::gather::kube::KubeSource;
use http::Response;
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use kube::client::Body;
use serde_json::{Value, json};

type Reply = Response<UnsyncBoxBody<Bytes, Infallible>>;

/// What the fake server holds: `pods` crash-looping pods (each with a
/// current and a previous log) whose logs are `chunks` chunks of `chunk`
/// bytes, `delay` before each.
#[derive(Clone, Copy)]
struct Scenario {
    pods: usize,
    chunks: usize,
    chunk: usize,
    delay: Duration,
}

fn whole(status: u16, body: String) -> Reply {
    let frames = stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from(body)))]);
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(StreamBody::new(frames).boxed_unsync())
        .unwrap()
}

/// A log that arrives chunk by chunk.
fn streamed(s: Scenario) -> Reply {
    let frames = stream::unfold(s.chunks, move |left| async move {
        if left == 0 {
            return None;
        }
        tokio::time::sleep(s.delay).await;
        let data = Bytes::from(vec![b'x'; s.chunk]);
        Some((Ok::<_, Infallible>(Frame::data(data)), left - 1))
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(StreamBody::new(frames).boxed_unsync())
        .unwrap()
}

fn list(kind: &str, items: Vec<Value>) -> String {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
        .to_string()
}

fn answer(path: &str, s: Scenario, pods: &str) -> Reply {
    let resource = |name: &str, kind: &str, namespaced: bool| {
        json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
               "verbs": ["get", "list", "watch"]})
    };
    match path {
        "/api" => whole(
            200,
            json!({"kind": "APIVersions", "versions": ["v1"]}).to_string(),
        ),
        "/apis" => whole(
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}).to_string(),
        ),
        "/api/v1" => whole(
            200,
            json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                resource("pods", "Pod", true), resource("pods/log", "Pod", true),
                resource("secrets", "Secret", true), resource("events", "Event", true),
                resource("configmaps", "ConfigMap", true), resource("nodes", "Node", false),
            ]})
            .to_string(),
        ),
        "/api/v1/namespaces/fx/pods" => whole(200, pods.to_owned()),
        "/api/v1/namespaces/fx/secrets" => whole(200, list("SecretList", vec![])),
        "/api/v1/namespaces/fx/events" => whole(200, list("EventList", vec![])),
        "/api/v1/namespaces/fx/configmaps" => whole(200, list("ConfigMapList", vec![])),
        "/api/v1/nodes" => whole(200, list("NodeList", vec![])),
        p if p.starts_with("/api/v1/namespaces/fx/pods/") && p.ends_with("/log") => streamed(s),
        _ => whole(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404})
            .to_string(),
        ),
    }
}

/// A client talking to the fake server of `s`.
fn serve(s: Scenario) -> kube::Client {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/k8s/pod-crashloop/pod.crashloop.json"
    );
    let template: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pods = (0..s.pods)
        .map(|i| {
            let mut p = template.clone();
            p["metadata"]["name"] = format!("pod-{i}").into();
            p
        })
        .collect();
    let pods = list("PodList", pods);
    let (service, mut handle) = tower_test::mock::pair::<http::Request<Body>, Reply>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            // Answered at once; a log's chunks arrive as the client reads.
            send.send_response(answer(request.uri().path(), s, &pods));
        }
    });
    kube::Client::new(service, "fx")
}

async fn gather(s: Scenario, concurrency: usize) -> (Duration, u64) {
    let client = serve(s);
    let out = tempfile::tempdir().unwrap();
    let mut writer = BundleWriter::create(out.path(), "bench", vec![]).unwrap();
    let request = Request {
        namespaces: vec!["fx".into()],
        since: None,
        concurrency,
        harness_files: vec![],
        collector_timeout: None,
        progress: None,
    };
    let source = KubeSource::new(client, vec![]);
    let started = Instant::now();
    collect(&source, &request, &mut writer).await;
    let bundle = writer.finish(None).unwrap();
    assert!(bundle.failures.is_empty(), "{:?}", bundle.failures);
    let logs = s.pods as u64 * 2 * (s.chunks * s.chunk) as u64;
    assert!(bundle.bytes >= logs, "{} < {logs}", bundle.bytes);
    (started.elapsed(), bundle.bytes)
}

/// Resets the peak below (Linux: writing 5 to clear_refs resets VmHWM), so
/// each gather's peak is its own, not the largest so far.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

/// Peak resident memory of this process since the last reset, in KiB.
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
    let delayed = Scenario {
        pods: 40,
        chunks: 4,
        chunk: 64 * 1024,
        delay: Duration::from_millis(5),
    };
    let (one, bytes) = gather(delayed, 1).await;
    let (eight, _) = gather(delayed, 8).await;
    println!(
        "40 pods, 80 logs of 256 KiB in delayed chunks through KubeSource ({} MiB): one at a time {one:.2?}, 8 at once {eight:.2?}, ratio {:.2}",
        bytes / (1024 * 1024),
        eight.as_secs_f64() / one.as_secs_f64()
    );
    // (pods, chunks of 64 KiB per log): the last run has the pods without
    // their logs, to show what the object lists alone take.
    for (pods, chunks) in [(50, 16), (400, 16), (400, 0)] {
        let s = Scenario {
            pods,
            chunks,
            chunk: 64 * 1024,
            delay: Duration::ZERO,
        };
        reset_peak_rss();
        let (time, bytes) = gather(s, 8).await;
        println!(
            "{pods} pods{}: {} MiB written in {time:.2?}; peak RSS during the gather {} MiB",
            if chunks == 0 { " without logs" } else { "" },
            bytes / (1024 * 1024),
            peak_rss_kib() / 1024
        );
    }
}
