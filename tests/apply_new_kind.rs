//! A CRD's objects right after the CRD: an API server under load serves
//! the new group in discovery, and the kind's REST path, a moment after the
//! CRD reads Established (seen on the 1.20 test cluster in CI: `component
//! crs: cannot apply its manifests`). Objects of a kind whose CRD the same
//! applier applied are asked again for a bounded time; any other unknown
//! kind is still unknown at once.

mod fake_api;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fake_api::{Reply, not_found, resources, spawn};
use harness::deploy::ApplyError;
use harness::deploy::apply::{Applier, NEW_KIND_CATCH_UP};
use kube::api::DynamicObject;
use serde_json::json;

const CRD: &str = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "gadgets.kinds.harness.dev"},
 "spec": {"group": "kinds.harness.dev", "scope": "Namespaced",
  "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
  "versions": [{"name": "v1", "served": true, "storage": true,
   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}"#;

fn object(text: &str) -> DynamicObject {
    serde_json::from_str(text).unwrap()
}

fn gadget(kind: &str) -> DynamicObject {
    object(
        &json!({"apiVersion": "kinds.harness.dev/v1", "kind": kind,
                "metadata": {"name": "plain"}, "spec": {"size": 1}})
        .to_string(),
    )
}

/// A server that answers the new group's discovery with 404 `lag` times,
/// and then the kind's REST path with 404 `lag` times, before serving both.
fn lagging(lag: usize) -> (kube::Client, fake_api::Log) {
    let discovery = Arc::new(AtomicUsize::new(0));
    let patches = Arc::new(AtomicUsize::new(0));
    spawn(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/version") => Reply::Json(200, json!({"gitVersion": "v1.20.2"}).to_string()),
        ("GET", "/apis") => Reply::Json(
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}).to_string(),
        ),
        ("GET", "/apis/apiextensions.k8s.io/v1") => fake_api::crd_discovery(),
        (
            "PATCH",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.kinds.harness.dev",
        ) => Reply::Json(200, CRD.to_owned()),
        ("GET", "/apis/kinds.harness.dev/v1") => {
            if discovery.fetch_add(1, Ordering::SeqCst) < lag {
                Reply::Text(404, "404 page not found\n".into())
            } else {
                Reply::Json(
                    200,
                    resources("kinds.harness.dev/v1", &[("gadgets", "Gadget", true)]),
                )
            }
        }
        ("PATCH", "/apis/kinds.harness.dev/v1/namespaces/ns/gadgets/plain") => {
            if patches.fetch_add(1, Ordering::SeqCst) < lag {
                not_found("the server could not find the requested resource")
            } else {
                Reply::Json(200, gadget("Gadget").data_as_json())
            }
        }
        _ => not_found(&req.path),
    })
}

trait AsJson {
    fn data_as_json(&self) -> String;
}

impl AsJson for DynamicObject {
    fn data_as_json(&self) -> String {
        serde_json::to_string(self).unwrap()
    }
}

fn count(log: &fake_api::Log, method: &str, path: &str) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

// Paused time: the backoff's sleeps pass without real waiting.
#[tokio::test(start_paused = true)]
async fn objects_of_a_crd_just_applied_are_asked_again_until_it_is_served() {
    let (client, log) = lagging(3);
    let applier = Applier::new(client);
    applier
        .apply(object(CRD), "ns")
        .await
        .expect("the CRD applies");
    let applied = applier
        .apply(gadget("Gadget"), "ns")
        .await
        .unwrap_or_else(|e| panic!("applied after the lag: {e}"));
    assert_eq!(applied.name, "plain");
    assert_eq!(applied.namespace.as_deref(), Some("ns"));
    // Three 404s from discovery, then the answer; three from the path, then
    // the object.
    assert_eq!(count(&log, "GET", "/apis/kinds.harness.dev/v1"), 4);
    assert_eq!(
        count(
            &log,
            "PATCH",
            "/apis/kinds.harness.dev/v1/namespaces/ns/gadgets/plain"
        ),
        4
    );
}

#[tokio::test(start_paused = true)]
async fn a_crd_never_served_is_unknown_after_the_catch_up_and_no_longer() {
    let (client, log) = lagging(usize::MAX);
    let applier = Applier::new(client);
    applier
        .apply(object(CRD), "ns")
        .await
        .expect("the CRD applies");
    let started = tokio::time::Instant::now();
    let error = applier.apply(gadget("Gadget"), "ns").await.unwrap_err();
    assert!(matches!(error, ApplyError::UnknownKind { .. }), "{error}");
    let waited = started.elapsed();
    assert!(waited <= NEW_KIND_CATCH_UP, "{waited:?}");
    assert!(waited >= NEW_KIND_CATCH_UP / 2, "{waited:?}");
    assert!(count(&log, "GET", "/apis/kinds.harness.dev/v1") > 3);
}

#[tokio::test(start_paused = true)]
async fn a_kind_no_applied_crd_defines_is_unknown_at_once() {
    let (client, log) = lagging(usize::MAX);
    let applier = Applier::new(client);
    let started = tokio::time::Instant::now();
    let error = applier.apply(gadget("Gadget"), "ns").await.unwrap_err();
    assert!(matches!(error, ApplyError::UnknownKind { .. }), "{error}");
    assert_eq!(started.elapsed(), std::time::Duration::ZERO);
    assert_eq!(count(&log, "GET", "/apis/kinds.harness.dev/v1"), 1);
    // The same group, another kind than the CRD defines: not waited for.
    applier
        .apply(object(CRD), "ns")
        .await
        .expect("the CRD applies");
    let error = applier.apply(gadget("Widget"), "ns").await.unwrap_err();
    assert!(matches!(error, ApplyError::UnknownKind { .. }), "{error}");
    assert_eq!(started.elapsed(), std::time::Duration::ZERO);
}
