//! The readiness rules over any object, and the deploy judge over a
//! snapshot of them: every object (typed kinds the harness knows, CRs,
//! nonsense) gets a status or a `RuleError`, never a panic; a Service is
//! judged with the EndpointSlices and Endpoints found beside it.
//!
//! Input: like `pod_classifier` (one object, a list, or a watch stream).

#![no_main]

use harness::deploy::judge::{Snapshot, Tracked, judge};
use harness::readiness::{Timestamp, Tolerance, rules, table};
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let objects = harness_fuzz::objects(text);
    let typed = |kind: &'static str| {
        objects
            .iter()
            .filter(move |o| harness_fuzz::kind_of(o) == Some(kind))
            .cloned()
    };
    let slices: Vec<EndpointSlice> = typed("EndpointSlice")
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect();
    let endpoints: Vec<Endpoints> = typed("Endpoints")
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect();
    let pods: Vec<Pod> = typed("Pod")
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect();
    let events: Vec<Event> = typed("Event")
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect();
    let services: Vec<Service> = typed("Service")
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect();
    // Both cluster traits: a LoadBalancer Service is read either way.
    let lb = data.first().is_some_and(|b| b & 1 == 1);
    let related = rules::Related {
        endpoints: &endpoints,
        endpoint_slices: &slices,
        services: &services,
        cluster: rules::ClusterTraits {
            load_balancer_addresses: lb,
        },
        overrides: None,
    };
    let mut tracked = Vec::new();
    for object in &objects {
        match rules::evaluate(object, &related) {
            Ok(status) => assert!(!status.reason.is_empty(), "a status without a reason"),
            Err(_) => {}
        }
        let _ = rules::generic(object);
        let field = |p: &str| {
            object
                .pointer(p)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        tracked.push(Tracked {
            resource: table::ResourceRef {
                kind: field("/kind").unwrap_or_default(),
                namespace: field("/metadata/namespace"),
                name: field("/metadata/name").unwrap_or_default(),
            },
            object: Some(object.clone()),
            pods: pods.clone(),
        });
    }
    tracked.push(Tracked {
        resource: table::ResourceRef {
            kind: "Deployment".into(),
            namespace: None,
            name: "gone".into(),
        },
        object: None,
        pods: Vec::new(),
    });
    let snapshot = Snapshot {
        objects: tracked,
        events,
        endpoint_slices: slices,
        endpoints,
        services,
        related_pending: false,
        watched_since: Some(Timestamp::UNIX_EPOCH),
    };
    for now in [Timestamp::UNIX_EPOCH, Timestamp::MAX, Timestamp::MIN] {
        let judgement = judge(&snapshot, now, &Tolerance::default());
        assert_eq!(judgement.statuses.len(), snapshot.objects.len());
        let _ = table::render(&judgement.rows);
    }
});
