//! Every kind a real operator project ships, deployed on a real cluster
//! through the real deploy stage (`deploy_lane`): each component is Ready
//! (or gets a named verdict) when its rule says so — never by running into
//! its deadline. A webhook whose Service has no ready endpoint is a named
//! verdict, and the component that depends on it is never applied.
//!
//! Needs `$HARNESS_TEST_KUBECONFIG` pointing at a cluster with
//! `fixtures/app:v1` loaded (the 1.20 test cluster: PodDisruptionBudgets in
//! `policy/v1beta1`, autoscalers in `autoscaling/v2beta2`, CronJobs in
//! `batch/v1beta1`); without it each test is skipped with a message, or
//! fails under `HARNESS_REQUIRE_CLUSTER=1`. Cluster-scoped objects are named
//! after the test's namespace and deleted by the test; the webhooks match
//! only a resource no cluster serves, so they never stand in the way of
//! another test's apply.

#[path = "../../tests/support/cluster.rs"]
mod cluster;
#[path = "../../tests/support/shown.rs"]
mod shown;

use std::time::Duration;

use harness::deploy::{DeployError, DeployEvent};

/// A Deployment of the fixture's web server (Ready through its probe).
fn web(name: &str) -> String {
    format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{port: 80, targetPort: 8080, protocol: TCP}}]\n",
        cluster::deployment(name, "", cluster::HEALTHY)
    )
}

fn notes(events: &[DeployEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            DeployEvent::Noted {
                component,
                object,
                note,
            } => Some(format!("{component}: {object}: {note}")),
            _ => None,
        })
        .collect()
}

fn applied_by(events: &[DeployEvent], component: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            DeployEvent::Applied {
                component: c,
                object,
            } if c == component => Some(object.clone()),
            _ => None,
        })
        .collect()
}

/// The error with its causes (what the server said), then its diagnoses.
fn render(e: &DeployError) -> String {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    format!(
        "{chain}\n{}",
        e.diagnoses().iter().map(|d| d.render()).collect::<String>()
    )
}

/// Deletes cluster-scoped objects a test made (`kind/name` for kubectl's
/// resource names), whatever happened.
async fn delete_cluster_scoped(kubeconfig: &std::path::Path, objects: &[(&str, &str, String)]) {
    let client = cluster::client(kubeconfig).await;
    for (api_version, plural, name) in objects {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = kube::api::ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: (*api_version).into(),
            kind: String::new(),
            plural: (*plural).into(),
        };
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::all_with(client.clone(), &resource);
        match api
            .delete(name, &kube::api::DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => panic!("cannot delete {plural}/{name}: {e}"),
        }
    }
}

const LANE: &str = "namespace: {ns}
cluster:
  provider: kind           # a kind cluster: LoadBalancer Services get no address
  name: harness-tests
components:
  web:    { manifests: [web.yaml], settle: 2s, timeout: 90s }
  pdb:    { manifests: [pdb.yaml], depends_on: [web], timeout: 90s }
  hpa:    { manifests: [hpa.yaml], settle: 2s, timeout: 90s }
  ingress: { manifests: [ingress.yaml], depends_on: [web], timeout: 90s }
  quota:  { manifests: [quota.yaml], timeout: 90s }
  lb:     { manifests: [lb.yaml], depends_on: [web], timeout: 90s }
  other:  { manifests: [other.yaml], timeout: 90s }
  crs:
    manifests: [crs.yaml]
    timeout: 90s
    readiness: { Gadget.kinds.harness.dev/synced: { condition: Synced } }
  webhook: { manifests: [webhook.yaml], settle: 2s, timeout: 90s }
lanes:
  l: { components: [pdb, hpa, ingress, quota, lb, other, crs, webhook] }
";

const PDB: &str = "apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {name: web}
spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
---
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {name: strict}
spec: {minAvailable: 2, selector: {matchLabels: {app: web}}}
";

const HPA: &str = "apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata: {name: scaled}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: scaled}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
";

const INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.example.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web, port: {number: 80}}}
";

/// Every namespace of 1.20 holds one ConfigMap (`kube-root-ca.crt`): a
/// quota of one ConfigMap is used up.
/// The quota limits Leases to the one applied before it: used up by the
/// time its controller first counts. (Not ConfigMaps: whether the
/// namespace's `kube-root-ca.crt` is published before that first count is
/// a race a fresh cluster loses.)
const QUOTA: &str = "apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: held}
spec: {holderIdentity: quota-test}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota}
spec: {hard: {count/leases.coordination.k8s.io: \"1\", pods: \"20\"}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: limits}
spec:
  limits:
  - type: Container
    default: {memory: 64Mi}
";

const LB: &str = "apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
";

const OTHER: &str = "apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: \"0 3 * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: fixtures/app:v1, command: [\"true\"]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{}]
";

/// A CRD without a status subresource (so a manifest can carry a status,
/// as a controller would write it), an object without status (kstatus's
/// Current), and one whose only condition is `Synced`: Ready only through
/// the lane file's `readiness:` entry for it (an entry for the whole kind
/// would make the first wait for a `Synced` it never gets).
const CRS: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.kinds.harness.dev}
spec:
  group: kinds.harness.dev
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: kinds.harness.dev/v1
kind: Gadget
metadata: {name: plain}
spec: {size: 1}
---
apiVersion: kinds.harness.dev/v1
kind: Gadget
metadata: {name: synced}
spec: {size: 2}
status:
  conditions: [{type: Synced, status: \"True\", reason: UpToDate, message: in sync}]
";

/// A webhook served by the fixture's web server (plain HTTP: nothing calls
/// it, because its rules match a resource no cluster serves).
const WEBHOOK: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: hook}
spec:
  replicas: 1
  selector: {matchLabels: {app: hook}}
  template:
    metadata: {labels: {app: hook}}
    spec:
      containers:
      - name: app
        image: fixtures/app:v1
        ports: [{containerPort: 8080, protocol: TCP}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: hook}
spec:
  selector: {app: hook}
  ports: [{port: 443, targetPort: 8080, protocol: TCP}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: hook-{ns}}
webhooks:
- name: validate.kinds.harness.dev
  clientConfig: {service: {namespace: {ns}, name: hook, path: /validate}}
  rules:
  - {apiGroups: [nothing.harness.dev], apiVersions: [v1], operations: [CREATE], resources: [nothing]}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
";

#[tokio::test]
async fn every_kind_an_operator_ships_is_ready_when_its_rule_says() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let hpa = format!(
        "{}---\n{HPA}",
        cluster::deployment("scaled", "", cluster::HEALTHY)
    );
    let d = cluster::deploy_files(
        &kubeconfig,
        &[
            ("harness.yaml", LANE),
            ("web.yaml", &web("web")),
            ("pdb.yaml", PDB),
            ("hpa.yaml", &hpa),
            ("ingress.yaml", INGRESS),
            ("quota.yaml", QUOTA),
            ("lb.yaml", LB),
            ("other.yaml", OTHER),
            ("crs.yaml", CRS),
            ("webhook.yaml", WEBHOOK),
        ],
    )
    .await;
    delete_cluster_scoped(
        &kubeconfig,
        &[
            (
                "admissionregistration.k8s.io/v1",
                "validatingwebhookconfigurations",
                format!("hook-{}", d.namespace),
            ),
            (
                "apiextensions.k8s.io/v1",
                "customresourcedefinitions",
                "gadgets.kinds.harness.dev".to_owned(),
            ),
        ],
    )
    .await;
    let report = d.result.unwrap_or_else(|e| panic!("{}", render(&e)));
    let mut ready: Vec<(String, Duration)> = report
        .components
        .iter()
        .map(|c| (c.name.clone(), c.elapsed))
        .collect();
    ready.sort();
    let names: Vec<&str> = ready.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "crs", "hpa", "ingress", "lb", "other", "pdb", "quota", "web", "webhook"
        ]
    );
    // Kinds without pods are Ready at once; those with pods once their
    // pods are, plus the settle window. None waited for its 90 s deadline.
    for (name, elapsed) in &ready {
        assert!(
            *elapsed < Duration::from_secs(60),
            "{name} took {elapsed:?}: it waited for something no rule asks for"
        );
    }
    let notes = notes(&d.events);
    let has = |needle: &str| notes.iter().any(|n| n.contains(needle));
    assert!(
        has("pdb: PodDisruptionBudget/") && has("/strict: 1 of 2 desired healthy pods"),
        "{notes:#?}"
    );
    assert!(
        has("quota: ResourceQuota/") && has("used up: count/leases.coordination.k8s.io 1 of 1"),
        "{notes:#?}"
    );
    assert!(
        has("lb: Service/") && has("/web-lb: LoadBalancer Service without an address"),
        "{notes:#?}"
    );
    eprintln!("Ready: {ready:?}\nnotes:\n{}", notes.join("\n"));
}

const BROKEN_LANE: &str = "namespace: {ns}
cluster: {provider: existing, existing: {kubeconfig: {kubeconfig}}}
components:
  webhook: { manifests: [webhook.yaml], timeout: 90s }
  user:    { manifests: [user.yaml], depends_on: [webhook] }
lanes:
  l: { components: [user] }
";

/// The Service selects no pod: no endpoint will ever come.
const BROKEN_WEBHOOK: &str = "apiVersion: v1
kind: Service
metadata: {name: hook}
spec:
  selector: {app: no-such-pod}
  ports: [{port: 443, targetPort: 8443, protocol: TCP}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: readiness-test-broken}
webhooks:
- name: validate.kinds.harness.dev
  clientConfig: {service: {namespace: {ns}, name: hook}}
  rules:
  - {apiGroups: [nothing.harness.dev], apiVersions: [v1], operations: [CREATE], resources: [nothing]}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
";

#[tokio::test]
async fn a_webhook_whose_service_has_no_ready_endpoint_stops_the_deploy_before_its_dependents() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    // What `harness diagnose` says of it, on the cluster as the deploy left it.
    let mut diagnosed = None;
    let d = cluster::deploy_files_then(
        &kubeconfig,
        &[
            ("harness.yaml", BROKEN_LANE),
            ("webhook.yaml", BROKEN_WEBHOOK),
            (
                "user.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: user}\n",
            ),
        ],
        |dir, _| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
                .current_dir(dir)
                .args(["diagnose", "--lane", "l", "webhook", "--kubeconfig"])
                .arg(&kubeconfig)
                .env_remove("KUBECONFIG")
                .output()
                .expect("run harness diagnose");
            diagnosed = Some(out);
        },
    )
    .await;
    delete_cluster_scoped(
        &kubeconfig,
        &[(
            "admissionregistration.k8s.io/v1",
            "validatingwebhookconfigurations",
            "readiness-test-broken".to_owned(),
        )],
    )
    .await;
    let error = d.result.expect_err("a webhook nothing serves is not Ready");
    assert!(
        matches!(error, DeployError::Failed { .. }) && !error.is_timeout(),
        "a verdict (exit 6), not the deadline: {}",
        render(&error)
    );
    let message = error.to_string();
    assert!(
        message.starts_with(
            "component `webhook` will not become Ready: ValidatingWebhookConfiguration/readiness-test-broken is Failed (WebhookServiceUnavailable)"
        ),
        "{message}"
    );
    let text = render(&error);
    assert!(
        text.contains(&format!(
            "service {}/hook:443 has no endpoints: no Ready pod matches its selector app=no-such-pod",
            d.namespace
        )),
        "{text}"
    );
    assert_eq!(applied_by(&d.events, "user"), Vec::<String>::new());
    assert!(
        d.took < Duration::from_secs(60),
        "the verdict came {:?} after the start, long before the 90 s deadline",
        d.took
    );
    eprintln!("{text}\nafter {:?}", d.took);
    // `harness diagnose` judges it the same (exit 6); docs/cluster.md shows
    // this snapshot (documented_output.rs checks it), the namespace's random
    // part aside.
    let out = diagnosed.unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout).replace(&d.namespace, DOC_NAMESPACE);
    insta::assert_snapshot!(
        "webhook_diagnose",
        shown::taken(&shown::session(
            &["diagnose", "--lane", "l", "webhook"],
            &shown
        ))
    );
}

/// The namespace docs/cluster.md shows in place of the test's random one.
const DOC_NAMESPACE: &str = "kinds-p1-5f3e2a1c";
