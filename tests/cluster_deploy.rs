//! The deploy stage on a real cluster: one small failing workload per
//! verdict, applied with server-side apply into a fresh suite namespace and
//! waited on until the verdict comes. Needs `$KUBECONFIG` pointing at a
//! cluster with `fixtures/app:v1` loaded (see tests/fixtures/k8s/README.md):
//! `cargo nextest run --run-ignored only --test cluster_deploy`.

use std::time::Duration;

use harness::deploy::Applier;
use harness::deploy::judge::Outcome;
use harness::deploy::wait::{WaitSpec, wait_ready};
use harness::k8s::{ClusterAccess, KubeNamespaces};
use harness::readiness::classify::Tolerance;
use harness::suites::{NamespaceProvisioner, OsRandom, namespace::namespace_name};

async fn client() -> kube::Client {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG must point at a test cluster");
    harness::k8s::connect(&ClusterAccess {
        kubeconfig: path.into(),
        context: None,
    })
    .await
    .expect("a client for $KUBECONFIG")
}

/// Applies the case's manifest in a new namespace and returns the names of
/// the verdicts the waiter ended with.
async fn verdicts_of(case: &str, timeout: Duration) -> Vec<String> {
    let client = client().await;
    let namespaces = KubeNamespaces::new(client.clone(), "cluster-test");
    let ns = namespace_name("verdict", 1, &mut OsRandom).unwrap();
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
        applied.push(applier.apply(object, &ns).await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let end = wait_ready(&client, &applied, WaitSpec::new(Tolerance::default()), deadline, |_| {}).await;
    // Deletion runs in the background: the verdict is the result.
    let cleanup = namespaces.clone();
    tokio::spawn(async move { cleanup.delete(&ns).await });
    assert_eq!(
        end.judgement.outcome,
        Outcome::Failed,
        "{:?}",
        end.judgement.rows
    );
    end.judgement
        .verdicts
        .iter()
        .map(|v| v.verdict.kind.name().to_owned())
        .collect()
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn err_image_never_pull() {
    let v = verdicts_of("pod-err-image-never-pull", Duration::from_secs(60)).await;
    assert_eq!(v[0], "ErrImageNeverPull");
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn oom_killed() {
    let v = verdicts_of("pod-oomkilled", Duration::from_secs(120)).await;
    assert_eq!(v[0], "OOMKilled");
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn unschedulable() {
    // The schedule window (15 s) must pass before the pod is called doomed.
    let v = verdicts_of("pod-unschedulable-resources", Duration::from_secs(60)).await;
    assert_eq!(v[0], "Unschedulable");
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn missing_secret_key() {
    let v = verdicts_of("pod-create-container-config-error", Duration::from_secs(60)).await;
    assert_eq!(v[0], "CreateContainerConfigError");
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn crash_loop() {
    let v = verdicts_of("pod-crashloop", Duration::from_secs(120)).await;
    assert!(v.iter().any(|n| n == "CrashLoopBackOff"), "{v:?}");
}
