//! The deploy stage on a real cluster: one small failing workload per
//! verdict, applied with server-side apply into a fresh suite namespace and
//! waited on until the verdict comes. Needs `$HARNESS_TEST_KUBECONFIG`
//! pointing at a cluster with `fixtures/app:v1` loaded (see
//! tests/fixtures/k8s/README.md); without it each test is skipped with a
//! message, or fails under `HARNESS_REQUIRE_CLUSTER=1`.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use harness::deploy::Applier;
use harness::deploy::judge::Outcome;
use harness::deploy::wait::{WaitSpec, wait_ready};
use harness::k8s::KubeNamespaces;
use harness::readiness::classify::Tolerance;
use harness::suites::NamespaceProvisioner;

/// Applies the case's manifest in a new namespace and returns the names of
/// the verdicts the waiter ended with; `None` when there is no test cluster.
async fn verdicts_of(case: &str, timeout: Duration) -> Option<Vec<String>> {
    let kubeconfig = cluster::kubeconfig()?;
    let client = cluster::client(&kubeconfig).await;
    let namespaces = KubeNamespaces::new(client.clone(), "cluster-test");
    let ns = cluster::namespace("verdict");
    namespaces.create(&ns).await.unwrap();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/k8s")
            .join(case)
            .join("manifest.yaml"),
    )
    .unwrap();
    let applier = Applier::new(client.clone());
    let mut applied = Vec::new();
    for mut object in harness::deploy::manifests::parse_documents(&text).unwrap() {
        object.metadata.namespace = None;
        match applier.apply(object, &ns).await {
            Ok(a) => applied.push(a),
            Err(e) => {
                cluster::delete_namespace(&client, &ns).await;
                panic!("{case}: {e:?}");
            }
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let end = wait_ready(
        &client,
        &applied,
        WaitSpec::new(Tolerance::default()),
        deadline,
        |_| {},
    )
    .await;
    // The namespace is deleted server-side; the verdict is the result.
    cluster::delete_namespace(&client, &ns).await;
    assert_eq!(
        end.judgement.outcome,
        Outcome::Failed,
        "{case}: ended {:?}: {:?}",
        end.ended,
        end.judgement.rows
    );
    Some(
        end.judgement
            .verdicts
            .iter()
            .map(|v| v.verdict.kind.name().to_owned())
            .collect(),
    )
}

#[tokio::test]
async fn err_image_never_pull() {
    let Some(v) = verdicts_of("pod-err-image-never-pull", Duration::from_secs(60)).await else {
        return;
    };
    assert_eq!(v[0], "ErrImageNeverPull");
}

#[tokio::test]
async fn oom_killed() {
    let Some(v) = verdicts_of("pod-oomkilled", Duration::from_secs(120)).await else {
        return;
    };
    assert_eq!(v[0], "OOMKilled");
}

#[tokio::test]
async fn unschedulable() {
    // The schedule window (15 s) must pass before the pod is called doomed.
    let Some(v) = verdicts_of("pod-unschedulable-resources", Duration::from_secs(60)).await else {
        return;
    };
    assert_eq!(v[0], "Unschedulable");
}

#[tokio::test]
async fn missing_secret_key() {
    let Some(v) = verdicts_of("pod-create-container-config-error", Duration::from_secs(60)).await
    else {
        return;
    };
    assert_eq!(v[0], "CreateContainerConfigError");
}

#[tokio::test]
async fn crash_loop() {
    let Some(v) = verdicts_of("pod-crashloop", Duration::from_secs(120)).await else {
        return;
    };
    assert!(v.iter().any(|n| n == "CrashLoopBackOff"), "{v:?}");
}
