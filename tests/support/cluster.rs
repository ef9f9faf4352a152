//! The real test cluster, for the tests that need one: `scripts/test`
//! creates it from the offline node image (`scripts/test-cluster`) and sets
//! `HARNESS_TEST_KUBECONFIG` (a shared cluster with `fixtures/app:v1`
//! loaded), `HARNESS_KIND_NODE_IMAGE` (for tests whose harness run creates
//! its own kind cluster) and `HARNESS_REQUIRE_CLUSTER=1`. Elsewhere these
//! tests say they were skipped, unless the cluster is required, where a
//! missing one fails them: CI never passes a cluster test it did not run.
#![allow(dead_code)]

use std::path::PathBuf;

fn required() -> bool {
    std::env::var("HARNESS_REQUIRE_CLUSTER").as_deref() == Ok("1")
}

fn var(name: &str, what: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                !required(),
                "{name} is not set but HARNESS_REQUIRE_CLUSTER=1: {what} (scripts/test sets it)"
            );
            eprintln!("skipped: {name} is not set ({what}; scripts/test sets it)");
            None
        }
    }
}

/// The shared test cluster's kubeconfig, or `None` (skip) where there is none.
pub fn kubeconfig() -> Option<PathBuf> {
    var(
        "HARNESS_TEST_KUBECONFIG",
        "the kubeconfig of a running test cluster",
    )
    .map(PathBuf::from)
}

/// The node image for kind clusters the test makes itself, or `None` (skip).
pub fn node_image() -> Option<String> {
    var(
        "HARNESS_KIND_NODE_IMAGE",
        "a kind node image the engine has",
    )
}

/// A client of the shared test cluster.
pub async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    harness::k8s::connect(&harness::k8s::ClusterAccess {
        kubeconfig: kubeconfig.to_owned(),
        context: None,
    })
    .await
    .expect("a client for the test cluster")
}

/// Asks for `namespace` to be deleted without waiting for it to go: a
/// test's pods may take their whole termination grace period to stop.
pub async fn delete_namespace(client: &kube::Client, namespace: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    match api
        .delete(namespace, &kube::api::DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => panic!("cannot delete test namespace {namespace}: {e}"),
    }
}
