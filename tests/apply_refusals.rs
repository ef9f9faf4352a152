//! What a person reads when the API server refuses an apply: the object,
//! the field or kind it does not know, the server's version — once, with
//! no `Debug` dump — and a fix for version skew. Against a fake API server
//! answering with the responses captured from the Kubernetes 1.20 test
//! cluster (`tests/fixtures/k8s/apply-refusals/`), then, when one is given,
//! against that real cluster.

mod fake_api;

use fake_api::{Reply, fixture, not_found, resources, spawn};
use harness::deploy::ApplyError;
use harness::deploy::apply::Applier;
use kube::api::DynamicObject;

fn object(file: &str) -> DynamicObject {
    serde_json::from_str(&fixture(&format!("apply-refusals/{file}"))).unwrap()
}

/// The fake 1.20 server: discovery of the groups the fixtures use, the
/// captured `/version` and `/apis`, and the captured refusal for every apply.
fn server_1_20(req: &fake_api::Req) -> Reply {
    let captured = |file: &str, code| Reply::Json(code, fixture(&format!("apply-refusals/{file}")));
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/version") => captured("version.json", 200),
        ("GET", "/apis") => captured("apis.json", 200),
        ("GET", "/apis/apiextensions.k8s.io/v1") => fake_api::crd_discovery(),
        ("GET", "/apis/apps/v1") => Reply::Json(
            200,
            resources("apps/v1", &[("deployments", "Deployment", true)]),
        ),
        ("GET", "/api/v1") => Reply::Json(200, resources("v1", &[("services", "Service", true)])),
        // As the real server answers a group-version it does not serve.
        ("GET", "/apis/discovery.k8s.io/v1") => Reply::Text(404, "404 page not found\n".into()),
        ("PATCH", path)
            if path.ends_with("/customresourcedefinitions/widgets.adopt.example.com") =>
        {
            captured("crd-selectablefields.response.json", 500)
        }
        ("PATCH", path) if path.ends_with("/deployments/skew") => {
            captured("deployment-resizepolicy.response.json", 500)
        }
        ("PATCH", path) if path.ends_with("/deployments/bad") => {
            captured("deployment-invalid.response.json", 422)
        }
        _ => not_found(&req.path),
    }
}

/// The error as `harness` prints it (its cause chain, once).
fn printed(error: &ApplyError) -> String {
    harness::failure::text(&harness::failure::causes_of(error))
}

#[tokio::test]
async fn a_field_the_server_does_not_know_reads_as_version_skew() {
    let (client, log) = spawn(server_1_20);
    let applier = Applier::new(client);
    let err = applier
        .apply(object("crd-selectablefields.json"), "default")
        .await
        .unwrap_err();
    assert_eq!(
        printed(&err),
        "the cluster (Kubernetes v1.20.2) refused CustomResourceDefinition widgets.adopt.example.com: its schema has no field .spec.versions[0].selectableFields"
    );
    assert!(err.help().unwrap().contains("HARNESS_KIND_NODE_IMAGE"));
    // The version was asked once, after the refusal.
    let asked: Vec<String> = log.lock().unwrap().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        asked.iter().filter(|p| *p == "/version").count(),
        1,
        "{asked:?}"
    );
    assert_eq!(asked.last().map(String::as_str), Some("/version"));

    let err = applier
        .apply(object("deployment-resizepolicy.json"), "default")
        .await
        .unwrap_err();
    assert_eq!(
        printed(&err),
        "the cluster (Kubernetes v1.20.2) refused Deployment default/skew: its schema has no field .spec.template.spec.containers[name=\"app\"].resizePolicy"
    );
    let asked = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/version")
        .count();
    assert_eq!(asked, 1, "the version is asked once per run");
}

#[tokio::test]
async fn an_invalid_object_keeps_the_servers_words_once() {
    let (client, _log) = spawn(server_1_20);
    let err = Applier::new(client)
        .apply(object("deployment-invalid.json"), "default")
        .await
        .unwrap_err();
    let text = printed(&err);
    assert!(
        text.starts_with("the cluster (Kubernetes v1.20.2) refused Deployment default/bad: Deployment.apps \"bad\" is invalid"),
        "{text}"
    );
    assert_eq!(text.matches("does not match template").count(), 1, "{text}");
    assert!(
        !text.contains("Status {") && !text.contains("ApiError"),
        "{text}"
    );
    assert!(text.ends_with("(HTTP 422 Invalid)"), "{text}");
}

#[tokio::test]
async fn a_kind_the_server_does_not_serve_names_the_versions_it_does() {
    let (client, _log) = spawn(server_1_20);
    let slice: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [],
    }))
    .unwrap();
    let err = Applier::new(client)
        .apply(slice, "default")
        .await
        .unwrap_err();
    assert_eq!(
        printed(&err),
        "the cluster (Kubernetes v1.20.2) does not serve EndpointSlice in discovery.k8s.io/v1: its API group is served only as discovery.k8s.io/v1beta1 here"
    );
    assert!(err.help().unwrap().starts_with(
        "write the manifest for a version the cluster serves (discovery.k8s.io/v1beta1)"
    ));
}

/// The same refusals from the real 1.20 cluster, when one is given.
#[tokio::test]
async fn the_real_cluster_refuses_the_same_way() {
    let Some(kubeconfig) = cluster_kubeconfig() else {
        return;
    };
    let client = harness::k8s::connect(&harness::k8s::ClusterAccess {
        kubeconfig: kubeconfig.into(),
        context: None,
    })
    .await
    .unwrap();
    let applier = Applier::new(client);
    let err = applier
        .apply(object("crd-selectablefields.json"), "default")
        .await
        .unwrap_err();
    let text = printed(&err);
    assert!(
        text.starts_with("the cluster (Kubernetes v1.")
            && text.ends_with(
                "refused CustomResourceDefinition widgets.adopt.example.com: its schema has no field .spec.versions[0].selectableFields"
            ),
        "{text}"
    );
    let slice: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [],
    }))
    .unwrap();
    match applier.apply(slice, "default").await {
        // 1.21 and later serve it; this test is about older servers.
        Ok(_) => panic!("the test cluster served discovery.k8s.io/v1: use the 1.20 one"),
        Err(e) => assert!(
            printed(&e).contains("its API group is served only as discovery.k8s.io/v1beta1"),
            "{}",
            printed(&e)
        ),
    }
}

/// `$HARNESS_TEST_KUBECONFIG`, or a skip (a failure when
/// `HARNESS_REQUIRE_CLUSTER=1`).
fn cluster_kubeconfig() -> Option<String> {
    match std::env::var("HARNESS_TEST_KUBECONFIG") {
        Ok(k) if !k.is_empty() => Some(k),
        _ => {
            assert!(
                std::env::var("HARNESS_REQUIRE_CLUSTER").as_deref() != Ok("1"),
                "HARNESS_TEST_KUBECONFIG is not set but HARNESS_REQUIRE_CLUSTER=1"
            );
            eprintln!("skipped: HARNESS_TEST_KUBECONFIG is not set (no test cluster)");
            None
        }
    }
}
