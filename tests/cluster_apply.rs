//! Server-side apply on the real test cluster (Kubernetes 1.20): manifests
//! as users write them, ports without `protocol` included, which servers
//! before 1.22 refuse unless the applier fills the default.

#[path = "support/cluster.rs"]
mod cluster;

use harness::deploy::Applier;
use harness::k8s::KubeNamespaces;
use harness::suites::{NamespaceProvisioner, OsRandom, namespace::namespace_name};
use kube::api::{Api, DynamicObject};

const MANIFEST: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: fixtures/app:v1
        ports: [{containerPort: 8080}]
"#;

#[tokio::test]
async fn ports_without_protocol_apply_and_reapply() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let client = cluster::client(&kubeconfig).await;
    let namespaces = KubeNamespaces::new(client.clone(), "cluster-apply-test");
    let ns = namespace_name("apply", 1, &mut OsRandom).unwrap();
    namespaces.create(&ns).await.unwrap();
    let applier = Applier::new(client.clone());
    // Twice: the second apply is the re-`up` of an unchanged lane, and must
    // not conflict with what the first one set.
    for round in 1..=2 {
        for object in harness::deploy::manifests::parse_documents(MANIFEST).unwrap() {
            let kind = object.types.as_ref().unwrap().kind.clone();
            if let Err(e) = applier.apply(object, &ns).await {
                panic!("round {round}: {kind} was refused: {e:?}");
            }
        }
    }
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), &ns);
    let svc = services.get("web").await.unwrap();
    let protocols: Vec<String> = svc
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .map(|p| p.protocol.unwrap_or_default())
        .collect();
    assert_eq!(protocols, ["TCP", "UDP"]);
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    );
    assert!(deployments.get_opt("web").await.unwrap().is_some());
    cluster::delete_namespace(&client, &ns).await;
}

/// The demo's CRD applies and is judged Established by the real waiter.
#[tokio::test]
async fn the_demo_crd_becomes_established() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let client = cluster::client(&kubeconfig).await;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests/crds/remediationrequests.yaml"),
    )
    .unwrap();
    let applier = Applier::new(client.clone());
    let mut applied = Vec::new();
    for object in harness::deploy::manifests::parse_documents(&text).unwrap() {
        applied.push(applier.apply(object, "default").await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let end = harness::deploy::wait::wait_ready(
        &client,
        &applied,
        harness::deploy::wait::WaitSpec::new(harness::readiness::classify::Tolerance::default()),
        deadline,
        |_| {},
    )
    .await;
    assert_eq!(
        end.judgement.outcome,
        harness::deploy::judge::Outcome::Ready,
        "{:?}",
        end.judgement.rows
    );
}

/// A suite namespace takes a pod at once: on 1.20 the `default`
/// ServiceAccount exists a moment before its token, and a pod created in
/// between is refused ("no API token found").
#[tokio::test]
async fn a_new_suite_namespace_takes_a_pod_at_once() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let client = cluster::client(&kubeconfig).await;
    let namespaces = KubeNamespaces::new(client.clone(), "cluster-apply-test");
    for process in 1..=3 {
        let ns = namespace_name("pod-at-once", process, &mut OsRandom).unwrap();
        namespaces.create(&ns).await.unwrap();
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &ns);
        let pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "first"},
            "spec": {"containers": [{"name": "c", "image": "fixtures/app:v1"}]}
        }))
        .unwrap();
        let created = pods.create(&kube::api::PostParams::default(), &pod).await;
        cluster::delete_namespace(&client, &ns).await;
        if let Err(e) = created {
            panic!("a pod in the new namespace {ns} was refused: {e}");
        }
    }
}
