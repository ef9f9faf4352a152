//! Suite namespaces against a scripted fake API server: created with the
//! run id label, and ready only once Active with its `default`
//! ServiceAccount; deletion that reports what holds a stuck namespace.

mod fake_api;

use std::time::Duration;

use fake_api::{Reply, list, not_found, spawn};
use harness::k8s::{KubeNamespaces, RUN_ID_LABEL};
use harness::suites::{NamespaceError, NamespaceProvisioner};
use serde_json::json;

fn namespace(name: &str, phase: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "uid": "u1", "resourceVersion": "719",
                        "labels": {RUN_ID_LABEL: "run-1"}},
           "spec": {"finalizers": ["kubernetes"]},
           "status": {"phase": phase}})
}

#[tokio::test]
async fn create_waits_for_the_default_service_account() {
    let ns = "e2e-p1-0a0b0c0d";
    let mut sa_watches = 0;
    let (client, log) = spawn(move |req| {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/api/v1/namespaces") => Reply::Json(201, namespace(ns, "Active").to_string()),
            ("GET", "/api/v1/namespaces") if req.is_watch() => Reply::Hold,
            ("GET", "/api/v1/namespaces") => {
                Reply::Json(200, list("NamespaceList", &[namespace(ns, "Active")]))
            }
            ("GET", p) if p == format!("/api/v1/namespaces/{ns}/serviceaccounts") => {
                if !req.is_watch() {
                    // Not there yet when first listed.
                    return Reply::Json(200, list("ServiceAccountList", &[]));
                }
                sa_watches += 1;
                if sa_watches > 1 {
                    return Reply::Hold;
                }
                let sa = json!({"type": "ADDED", "object": {
                    "apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": ns, "uid": "u2", "resourceVersion": "720"}}});
                Reply::Json(200, sa.to_string() + "\n")
            }
            _ => not_found(&req.path),
        }
    });
    let provisioner = KubeNamespaces::new(client, "run-1")
        .with_timeouts(Duration::from_secs(10), Duration::from_secs(10));
    provisioner.create(ns).await.unwrap();
    let requests = log.lock().unwrap().clone();
    let post = requests.iter().find(|r| r.method == "POST").unwrap();
    let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["metadata"]["name"], ns);
    assert_eq!(body["metadata"]["labels"][RUN_ID_LABEL], "run-1");
    assert!(
        requests.iter().any(|r| r.path.ends_with("/serviceaccounts")
            && r.is_watch()
            && r.param("fieldSelector").as_deref() == Some("metadata.name=default")),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn create_times_out_without_the_service_account() {
    let ns = "e2e-p2-0a0b0c0d";
    let (client, _log) = spawn(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("POST", _) => Reply::Json(201, namespace(ns, "Active").to_string()),
        (_, _) if req.is_watch() => Reply::Hold,
        ("GET", "/api/v1/namespaces") => {
            Reply::Json(200, list("NamespaceList", &[namespace(ns, "Active")]))
        }
        ("GET", _) => Reply::Json(200, list("ServiceAccountList", &[])),
        _ => not_found(&req.path),
    });
    let provisioner = KubeNamespaces::new(client, "run-1")
        .with_timeouts(Duration::from_millis(300), Duration::from_secs(1));
    let err = provisioner.create(ns).await.unwrap_err();
    assert!(matches!(err, NamespaceError::Create { .. }));
    assert!(err.to_string().contains("ServiceAccount"), "{err}");
}

#[tokio::test]
async fn a_namespace_stuck_on_finalizers_is_reported() {
    let ns = "e2e-p3-0a0b0c0d";
    let mut stuck = namespace(ns, "Terminating");
    stuck["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    stuck["status"]["conditions"] = json!([{"type": "NamespaceFinalizersRemaining", "status": "True",
        "message": "Some content in the namespace has finalizers remaining: example.com/cleanup in 1 resource instances"}]);
    let (client, _log) = spawn(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("DELETE", _) => Reply::Json(200, stuck.to_string()),
        (_, _) if req.is_watch() => Reply::Hold,
        ("GET", "/api/v1/namespaces") => Reply::Json(200, list("NamespaceList", &[stuck.clone()])),
        ("GET", _) => Reply::Json(200, stuck.to_string()),
        _ => not_found(&req.path),
    });
    let provisioner = KubeNamespaces::new(client, "run-1")
        .with_timeouts(Duration::from_secs(1), Duration::from_millis(300));
    let err = provisioner.delete(ns).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("example.com/cleanup"), "{text}");
    assert!(text.contains("finalizers [kubernetes]"), "{text}");
}

/// A fake server of version `minor` whose `default` ServiceAccount appears
/// without its token Secret (as the ServiceAccount controller makes it,
/// before the token controller adds the Secret).
fn tokenless_account_server(ns: &'static str, minor: &'static str) -> kube::Client {
    let mut sa_watches = 0;
    let (client, _log) = spawn(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/version") => Reply::Json(
            200,
            json!({"major": "1", "minor": minor, "gitVersion": format!("v1.{minor}.2")})
                .to_string(),
        ),
        ("POST", "/api/v1/namespaces") => Reply::Json(201, namespace(ns, "Active").to_string()),
        ("GET", "/api/v1/namespaces") if req.is_watch() => Reply::Hold,
        ("GET", "/api/v1/namespaces") => {
            Reply::Json(200, list("NamespaceList", &[namespace(ns, "Active")]))
        }
        ("GET", p) if p.ends_with("/serviceaccounts") && !req.is_watch() => {
            Reply::Json(200, list("ServiceAccountList", &[]))
        }
        ("GET", p) if p.ends_with("/serviceaccounts") => {
            sa_watches += 1;
            if sa_watches > 1 {
                return Reply::Hold;
            }
            let sa = json!({"type": "ADDED", "object": {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": ns, "uid": "u2", "resourceVersion": "720"}}});
            Reply::Json(200, sa.to_string() + "\n")
        }
        _ => not_found(&req.path),
    });
    client
}

#[tokio::test]
async fn before_1_24_a_namespace_waits_for_its_service_account_token() {
    let ns = "e2e-p3-0a0b0c0d";
    let provisioner = KubeNamespaces::new(tokenless_account_server(ns, "20"), "run-1")
        .with_timeouts(Duration::from_millis(500), Duration::from_secs(1));
    let err = provisioner.create(ns).await.unwrap_err();
    assert!(matches!(err, NamespaceError::Create { .. }), "{err}");
}

#[tokio::test]
async fn from_1_24_the_service_account_alone_is_enough() {
    let ns = "e2e-p4-0a0b0c0d";
    let provisioner = KubeNamespaces::new(tokenless_account_server(ns, "33"), "run-1")
        .with_timeouts(Duration::from_secs(10), Duration::from_secs(1));
    provisioner.create(ns).await.unwrap();
}
