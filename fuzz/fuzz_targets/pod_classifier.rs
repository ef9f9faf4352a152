//! The doomed-pod classifier, its evidence, and the infrastructure
//! timeline, fed any JSON objects: a pod, a list of pods and events, or a
//! watch stream (newline-delimited `{"type", "object"}`), as the API server
//! might send them. Objects that do not decode as a Pod or an Event are
//! what the typed client would reject too; everything that decodes must be
//! classified without a panic at any clock, skewed ones included.

#![no_main]

use std::time::Duration;

use harness::readiness::{Timestamp, Tolerance, classify_pod, evidence, rules, table, timeline};
use k8s_openapi::api::core::v1::{Event, Pod};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let objects = harness_fuzz::objects(text);
    let mut pods = Vec::new();
    let mut events = Vec::new();
    for object in objects {
        match harness_fuzz::kind_of(&object) {
            Some("Event") => events.extend(serde_json::from_value::<Event>(object).ok()),
            // Untyped objects count as pods too: a watch's objects may lack `kind`.
            Some("Pod") | None => pods.extend(serde_json::from_value::<Pod>(object).ok()),
            Some(_) => {}
        }
    }
    let tolerances = [
        Tolerance::default(),
        Tolerance {
            grace: Duration::from_secs(30),
            restarts: 3,
        },
        Tolerance {
            grace: Duration::MAX,
            restarts: u32::MAX,
        },
    ];
    let mut tracker = harness::timeline::Tracker::new();
    for pod in &pods {
        let mut nows = vec![Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH];
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .or(pod.metadata.creation_timestamp.as_ref())
            .map(|t| t.0);
        if let Some(t) = started {
            for secs in [-5i64, 0, 10, 20, 61, 700] {
                nows.extend(
                    t.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs))
                        .ok(),
                );
            }
        }
        let status = rules::pod(pod);
        for now in nows {
            for tolerance in &tolerances {
                let verdicts = classify_pod(pod, &events, now, tolerance);
                for pair in verdicts.windows(2) {
                    assert!(pair[0].rank() <= pair[1].rank(), "verdicts not ranked");
                }
                for v in &verdicts {
                    let _ = evidence::verdict_evidence(pod, &events, v, 5);
                }
                let resource = table::ResourceRef {
                    kind: "Pod".into(),
                    namespace: pod.metadata.namespace.clone(),
                    name: pod.metadata.name.clone().unwrap_or_default(),
                };
                let row = table::unready_row(&resource, &status, &verdicts);
                let _ = table::render(&[row]);
            }
        }
        let _ = evidence::pod_evidence(pod, &events, 5);
        let _ = evidence::pod_evidence(pod, &events, 0);
        let t = timeline::pod_timeline(pod);
        let _ = (t.scheduled_to_ready(), t.created_to_ready());
        let _ = tracker.observe(pod);
    }
    if let Some(last) = pods.last() {
        let _ = tracker.deleted(last);
        let _ = tracker.observe(last);
    }
});
