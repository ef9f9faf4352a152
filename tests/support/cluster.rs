//! The real test cluster, for the tests that need one: `scripts/test`
//! creates it from the offline node image (`scripts/test-cluster`) and sets
//! `HARNESS_TEST_KUBECONFIG` (a shared cluster with `fixtures/app:v1`
//! loaded), `HARNESS_KIND_NODE_IMAGE` (for tests whose harness run creates
//! its own kind cluster) and `HARNESS_REQUIRE_CLUSTER=1`. Elsewhere these
//! tests say they were skipped, unless the cluster is required, where a
//! missing one fails them: CI never passes a cluster test it did not run.
//! [`deploy`] runs the real deploy stage (`deploy_lane`) of a one-lane
//! project made from a manifest, in a namespace of its own that is deleted
//! afterwards.
#![allow(dead_code)]

use std::path::PathBuf;

use std::time::Duration;

use harness::deploy::{DeployError, DeployEvent, DeployReport};
use harness::suites::{OsRandom, namespace::namespace_name};
use tokio::time::Instant;

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

/// A fresh namespace name, `<prefix>-p1-<8 hex>`.
pub fn namespace(prefix: &str) -> String {
    namespace_name(prefix, 1, &mut OsRandom).unwrap()
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

/// What one deploy did.
pub struct Deployed {
    pub result: Result<DeployReport, DeployError>,
    pub events: Vec<DeployEvent>,
    /// From the start of the deploy to its end.
    pub took: Duration,
    pub namespace: String,
}

/// The project [`deploy`] deploys: lane `l` of one component `c` made of
/// `manifest` (`c: {manifests: [c.yaml]<extra>}`) into `ns` on the test
/// cluster, in a directory that lives as long as the returned guard.
pub fn one_component(
    kubeconfig: &std::path::Path,
    ns: &str,
    manifest: &str,
    extra: &str,
) -> (tempfile::TempDir, harness::config::Project) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), manifest).unwrap();
    std::fs::write(
        dir.path().join("harness.yaml"),
        format!(
            "namespace: {ns}\ncluster:\n  provider: existing\n  existing: {{kubeconfig: {}}}\n\
             components:\n  c: {{manifests: [c.yaml]{extra}}}\nlanes:\n  l: {{components: [c]}}\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    let project = harness::config::load(&dir.path().join("harness.yaml")).unwrap();
    (dir, project)
}

/// Deploys one component made of `manifest` (its `component` line in the
/// lane file is `component: {manifests: [c.yaml]<extra>}`) into a new
/// namespace of the test cluster, through the real deploy stage, then
/// deletes the namespace.
pub async fn deploy(kubeconfig: &std::path::Path, manifest: &str, extra: &str) -> Deployed {
    let client = client(kubeconfig).await;
    let ns = namespace("ready");
    let (_dir, project) = one_component(kubeconfig, &ns, manifest, extra);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let result = harness::deploy::deploy_lane(
        &client,
        &project,
        &project.lanes["l"],
        &indexmap::IndexMap::new(),
        tx,
        start + Duration::from_secs(240),
    )
    .await;
    let took = start.elapsed();
    delete_namespace(&client, &ns).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    Deployed {
        result,
        events,
        took,
        namespace: ns,
    }
}

/// A Deployment of `fixtures/app:v1` (a static busybox) named `name`, with
/// `container` the YAML of its one container after `image:` (indented six
/// spaces), and `init` its init containers (same indentation, may be empty).
pub fn deployment(name: &str, init: &str, container: &str) -> String {
    let init = if init.is_empty() {
        String::new()
    } else {
        format!("      initContainers:\n{init}")
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{init}      containers:\n      - name: app\n        image: fixtures/app:v1\n{container}"
    )
}

/// The container that crashes 3 s after it starts (the 1.28 capture's).
pub const CRASH_AFTER_3S: &str = "        command: [sh, -c, \"echo starting up; sleep 3; echo fatal: cannot read /etc/app/config.yaml >&2; exit 3\"]\n";

/// The container OOMKilled 3 s after it starts (the 1.28 capture's).
pub const OOM_AFTER_3S: &str = "        command: [sh, -c, \"echo allocating; sleep 3; x=$(head -c 200000000 /dev/zero | tr '\\\\0' a); echo done; sleep 3600\"]\n        resources: {limits: {memory: 24Mi}}\n";

/// A healthy web server with a readiness probe (the image's default command).
pub const HEALTHY: &str = "        ports: [{containerPort: 8080, protocol: TCP}]\n        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}\n";

/// Deploys the lane `l` of a project made of `files` (name and text; the
/// lane file `harness.yaml` among them) into a new namespace of the test
/// cluster, through the real deploy stage, then deletes the namespace. In
/// every file `{ns}` stands for the namespace and `{kubeconfig}` for the
/// test cluster's kubeconfig. Cluster-scoped objects are the caller's to
/// delete (name them after the namespace).
pub async fn deploy_files(kubeconfig: &std::path::Path, files: &[(&str, &str)]) -> Deployed {
    deploy_files_then(kubeconfig, files, |_, _| {}).await
}

/// [`deploy_files`], calling `then(project directory, namespace)` after
/// the deploy, before the namespace is deleted (to run the binary on what
/// was deployed).
pub async fn deploy_files_then(
    kubeconfig: &std::path::Path,
    files: &[(&str, &str)],
    then: impl FnOnce(&std::path::Path, &str),
) -> Deployed {
    let client = client(kubeconfig).await;
    let ns = namespace("kinds");
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let text = text
            .replace("{ns}", &ns)
            .replace("{kubeconfig}", &kubeconfig.display().to_string());
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let project = harness::config::load(&dir.path().join("harness.yaml")).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let result = harness::deploy::deploy_lane(
        &client,
        &project,
        &project.lanes["l"],
        &indexmap::IndexMap::new(),
        tx,
        start + Duration::from_secs(240),
    )
    .await;
    let took = start.elapsed();
    then(dir.path(), &ns);
    delete_namespace(&client, &ns).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    Deployed {
        result,
        events,
        took,
        namespace: ns,
    }
}
