//! The infrastructure timeline against a fake API server replaying a real
//! watch stream: a pod that crash-loops while suites run shows up on the
//! timeline, attributed to its component, and the report places it before
//! the suite failures that followed.

mod fake_api;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_api::{Reply, fixture, list, not_found, spawn};
use harness::report::sink::Sink;
use harness::report::{Event, RunReport, Stamped};
use serde_json::Value;

struct Collect(Arc<Mutex<Vec<Stamped>>>);
impl Sink for Collect {
    fn emit(&mut self, e: &Stamped) {
        self.0.lock().unwrap().push(e.clone());
    }
    fn progress(
        &mut self,
        _: &harness::report::progress::Progress,
        _: harness::readiness::Timestamp,
    ) {
    }
}

#[tokio::test]
async fn a_crash_looping_pod_lands_on_the_timeline_before_later_failures() {
    let lines: Vec<String> = fixture("watch/crashloop.watch.ndjson")
        .lines()
        .map(str::to_owned)
        .collect();
    let first: Value = serde_json::from_str::<Value>(&lines[0]).unwrap()["object"].clone();
    let rest = lines[1..].join("\n") + "\n";
    let mut watched = false;
    let (client, _log) = spawn(move |req| match req.path.as_str() {
        "/api/v1/namespaces/fx/pods" if req.is_watch() => {
            if watched {
                Reply::Hold
            } else {
                watched = true;
                Reply::Json(200, rest.clone())
            }
        }
        "/api/v1/namespaces/fx/pods" => {
            Reply::Json(200, list("PodList", std::slice::from_ref(&first)))
        }
        _ => not_found(&req.path),
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (bus, task) = harness::report::bus::start(
        Box::new(Collect(seen.clone())),
        RunReport::new("audit", "r-1"),
    );
    let workloads = BTreeMap::from([("watch-crash".to_string(), "crashy".to_string())]);
    let watcher =
        harness::timeline::watch_infrastructure(client, vec!["fx".into()], workloads, bus.clone());
    // Watch for the condition with a deadline, never a fixed sleep.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let count = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e.event, Event::Infra { .. }))
            .count();
        if count >= 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {count} incidents arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    // A suite that fails after the incidents.
    bus.emit(Event::SuiteFinished {
        suite: "audit".into(),
        passed: false,
        outcome: "exited with status 1".into(),
        seconds: 1.0,
        log: "audit.log".into(),
    });
    drop(bus);
    let report = task.await.unwrap();
    assert_eq!(report.infra.len(), 5, "{:#?}", report.infra);
    assert!(
        report
            .infra
            .iter()
            .all(|i| i.component == "crashy" && i.what == "Crashed"),
        "{:#?}",
        report.infra
    );
    assert!(
        report.infra[0]
            .detail
            .starts_with("container app: exit code 1 (Error)"),
        "{}",
        report.infra[0].detail
    );
    let correlations = report.correlate();
    assert!(correlations.iter().all(|c| c.failures_after == ["audit"]));
}
