//! The deploy stage against a scripted fake API server: what is sent
//! (server-side apply, discovery, watches, log and event queries) and what
//! comes out (Ready on the event that makes it so, a verdict with evidence,
//! the unready table at a deadline).

mod fake_api;

use std::time::Duration;

use fake_api::{Reply, fixture, list, not_found, resources, spawn};
use harness::deploy::apply::Applier;
use harness::deploy::judge::Outcome;
use harness::deploy::wait::{WaitSpec, wait_ready};
use harness::readiness::classify::Tolerance;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use tokio::time::Instant;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn object(text: &str) -> DynamicObject {
    let docs = harness::deploy::manifests::parse_documents(text).unwrap();
    docs.into_iter().next().unwrap()
}

#[tokio::test]
async fn server_side_apply_sends_one_forced_field_manager() {
    let created = fixture("server-side-apply/kubectl-apply-create.response.json");
    let (client, log) = spawn(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/apis/apps/v1") => Reply::Json(
            200,
            resources("apps/v1", &[("deployments", "Deployment", true)]),
        ),
        ("PATCH", "/apis/apps/v1/namespaces/fx/deployments/ssa-web") => {
            Reply::Json(200, created.clone())
        }
        _ => not_found(&req.path),
    });
    let applier = Applier::new(client);
    // The captured manifest names its namespace; strip it to check defaulting.
    let mut manifest = object(&fixture("server-side-apply/manifest.yaml"));
    manifest.metadata.namespace = None;
    let applied = applier.apply(manifest, "fx").await.unwrap();
    assert_eq!(applied.namespace.as_deref(), Some("fx"));
    assert_eq!(applied.kind, "Deployment");
    assert!(applied.uid.is_some());

    let requests = log.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].path, "/apis/apps/v1");
    let patch = &requests[1];
    // requests.txt: PATCH /apis/apps/v1/namespaces/fx/deployments/ssa-web?fieldManager=harness
    // (Content-Type: application/apply-patch+yaml), plus force.
    let captured = fixture("server-side-apply/requests.txt");
    assert!(captured.contains(&format!("PATCH {}?fieldManager=harness", patch.path)));
    assert_eq!(patch.param("fieldManager").as_deref(), Some("harness"));
    assert_eq!(patch.param("force").as_deref(), Some("true"));
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    let body = json(&patch.body);
    assert_eq!(body["metadata"]["namespace"], "fx");
    assert_eq!(body["kind"], "Deployment");
}

#[tokio::test]
async fn discovery_is_asked_again_once_for_a_kind_it_did_not_know() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let (client, _log) = spawn(move |req| match req.path.as_str() {
        "/apis/example.com/v1" => {
            // First answer: only Gizmo; then the Widget CRD is Established.
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let mut kinds = vec![("gizmos", "Gizmo", true)];
            if n > 0 {
                kinds.push(("widgets", "Widget", true));
            }
            Reply::Json(200, resources("example.com/v1", &kinds))
        }
        _ => not_found(&req.path),
    });
    let applier = Applier::new(client);
    let (gizmo, _) = applier.resolve("example.com/v1", "Gizmo").await.unwrap();
    assert_eq!(gizmo.plural, "gizmos");
    let (widget, caps) = applier.resolve("example.com/v1", "Widget").await.unwrap();
    assert_eq!(widget.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    // A kind still unknown after the refresh is an error that says where to look.
    let err = applier
        .resolve("example.com/v1", "Doohickey")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CRD"), "{err}");
    assert_eq!(asked.load(Ordering::SeqCst), 3, "refreshed once, not more");
}

/// The pod lines of a captured watch stream, in order.
fn stream_lines(file: &str, pod: &str) -> Vec<String> {
    fixture(file)
        .lines()
        .filter(|l| {
            let e = json(l);
            e["type"] == "BOOKMARK" || e["object"]["metadata"]["name"] == pod
        })
        .map(str::to_owned)
        .collect()
}

/// A scenario serving one pod from a captured watch stream: the LIST
/// returns its first (ADDED) state, the first WATCH the rest, and events
/// and later watches stay quiet.
fn pod_scenario(
    file: &'static str,
    pod: &'static str,
    mut extra: impl FnMut(&fake_api::Req) -> Option<Reply> + Send + 'static,
) -> impl FnMut(&fake_api::Req) -> Reply + Send + 'static {
    let lines = stream_lines(file, pod);
    let first = json(&lines[0])["object"].clone();
    let rest = lines[1..].join("\n") + "\n";
    let mut watched = false;
    move |req| {
        if let Some(r) = extra(req) {
            return r;
        }
        match req.path.as_str() {
            "/api/v1/namespaces/fx/pods" if req.is_watch() => {
                assert_eq!(
                    req.param("fieldSelector").as_deref(),
                    Some(format!("metadata.name={pod}").as_str())
                );
                if watched {
                    Reply::Hold
                } else {
                    watched = true;
                    Reply::Json(200, rest.clone())
                }
            }
            "/api/v1/namespaces/fx/pods" => {
                Reply::Json(200, list("PodList", std::slice::from_ref(&first)))
            }
            "/api/v1/namespaces/fx/events" if req.is_watch() => Reply::Hold,
            "/api/v1/namespaces/fx/events" => Reply::Json(200, list("EventList", &[])),
            _ => not_found(&req.path),
        }
    }
}

fn applied_pod(file: &str, pod: &str) -> harness::deploy::AppliedObject {
    let first = json(&stream_lines(file, pod)[0])["object"].clone();
    harness::deploy::AppliedObject {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: Some("fx".into()),
        name: pod.into(),
        uid: first["metadata"]["uid"].as_str().map(str::to_owned),
        resource: kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
        object: serde_json::from_value(first).unwrap(),
    }
}

#[tokio::test]
async fn a_wait_resolves_on_the_modified_event_that_makes_the_pod_ready() {
    let pod = "watch-web-594d8c6bd6-56d5s";
    let (client, log) = spawn(pod_scenario("watch/deployment.watch.ndjson", pod, |_| None));
    let applied = [applied_pod("watch/deployment.watch.ndjson", pod)];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    // No settle window: Ready on the event itself (tests/replay.rs times the window).
    let spec = WaitSpec::new(Tolerance::default()).settle(Duration::ZERO);
    let end = wait_ready(&client, &applied, spec, deadline, |j| seen.push(j.outcome)).await;
    assert!(!end.deadline(), "{:?}", end.judgement.rows);
    assert_eq!(end.judgement.outcome, Outcome::Ready);
    // Ready came from the captured MODIFIED event (resourceVersion 974), not the ADDED one.
    let rv =
        end.snapshot.objects[0].object.as_ref().unwrap()["metadata"]["resourceVersion"].clone();
    assert_eq!(rv, "974");
    assert!(seen.contains(&Outcome::Pending));
    let watches: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.is_watch())
        .cloned()
        .collect();
    assert!(!watches.is_empty());
}

#[tokio::test]
async fn a_crash_looping_pod_fails_fast_with_its_verdict_and_evidence() {
    let pod = "watch-crash";
    let uid = "f16274d1-480a-4f68-9ee4-8e8962c1269a";
    let events = fixture("pod-crashloop/events.pod.crashloop.json");
    let (client, log) = spawn(pod_scenario(
        "watch/crashloop.watch.ndjson",
        pod,
        move |req| match req.path.as_str() {
            "/api/v1/namespaces/fx/events"
                if req
                    .param("fieldSelector")
                    .is_some_and(|f| f.starts_with("involvedObject.uid=")) =>
            {
                Some(Reply::Json(200, events.clone()))
            }
            "/api/v1/namespaces/fx/pods/watch-crash/log" => {
                let previous = req.param("previous").as_deref() == Some("true");
                Some(Reply::Text(
                    200,
                    if previous {
                        "boom (previous)\n"
                    } else {
                        "boom\n"
                    }
                    .into(),
                ))
            }
            _ => None,
        },
    ));
    let applied = [applied_pod("watch/crashloop.watch.ndjson", pod)];
    let deadline = Instant::now() + Duration::from_secs(20);
    let started = Instant::now();
    let end = wait_ready(
        &client,
        &applied,
        WaitSpec::new(Tolerance::default()),
        deadline,
        |_| {},
    )
    .await;
    assert!(!end.deadline());
    assert_eq!(
        end.judgement.outcome,
        Outcome::Failed,
        "{:?}",
        end.judgement.rows
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let top = &end.judgement.verdicts[0].verdict;
    assert_eq!(top.kind.name(), "CrashLoopBackOff", "{top:?}");
    // Doomed on the captured event where the container first terminated
    // (resourceVersion 931), not later: the default tolerance forgives nothing.
    let rv =
        end.snapshot.objects[0].object.as_ref().unwrap()["metadata"]["resourceVersion"].clone();
    assert_eq!(rv, "931");

    let diagnosis =
        harness::deploy::diagnose(&client, "crash", &end.judgement, &end.snapshot).await;
    let text = diagnosis.render();
    assert!(text.contains("CrashLoopBackOff"), "{text}");
    assert!(text.contains("| boom"), "{text}");
    // The JSON form carries the same verdict and evidence.
    let json = diagnosis.to_json();
    assert_eq!(json["component"], "crash");
    assert_eq!(json["rows"][0]["state"], "Failed", "{json:#}");
    let finding = &json["findings"][0];
    assert_eq!(finding["verdict"]["name"], "CrashLoopBackOff", "{json:#}");
    assert_eq!(finding["verdict"]["container"], "app");
    assert!(
        finding["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"].as_str().is_some_and(|t| t.contains("boom"))),
        "{json:#}"
    );
    let requests = log.lock().unwrap().clone();
    let events_query = requests
        .iter()
        .find(|r| {
            r.path == "/api/v1/namespaces/fx/events"
                && !r.is_watch()
                && r.param("fieldSelector").is_some_and(|f| f.contains("uid"))
        })
        .expect("events listed by uid");
    assert_eq!(
        events_query.param("fieldSelector").unwrap(),
        format!("involvedObject.uid={uid}")
    );
    let logs: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/log"))
        .collect();
    assert!(
        logs.iter()
            .any(|r| r.param("container").as_deref() == Some("app")
                && r.param("tailLines").is_some()),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn evidence_of_a_restarted_container_includes_its_previous_log() {
    // The same pod later in the capture: CrashLoopBackOff after one restart.
    let lines = stream_lines("watch/crashloop.watch.ndjson", "watch-crash");
    let pod: k8s_openapi::api::core::v1::Pod =
        serde_json::from_value(json(&lines[4])["object"].clone()).unwrap();
    assert_eq!(
        pod.status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0]
            .restart_count,
        1
    );
    let (client, log) = spawn(|req| match req.path.as_str() {
        "/api/v1/namespaces/fx/events" => {
            Reply::Json(200, fixture("pod-crashloop/events.pod.crashloop.json"))
        }
        "/api/v1/namespaces/fx/pods/watch-crash/log" => Reply::Text(
            200,
            if req.param("previous").as_deref() == Some("true") {
                fixture("pod-crashloop/logs.previous.txt")
            } else {
                fixture("pod-crashloop/logs.current.txt")
            },
        ),
        _ => not_found(&req.path),
    });
    let verdicts = harness::readiness::classify_pod(
        &pod,
        &[],
        harness::readiness::Timestamp::now(),
        &Tolerance::default(),
    );
    let evidence = harness::k8s::fetch_pod_evidence(&client, &pod, verdicts.first()).await;
    let previous: Vec<_> = evidence.logs.iter().filter(|l| l.previous).collect();
    assert_eq!(previous.len(), 1, "{:?}", evidence.logs);
    assert_eq!(
        previous[0].text.text().unwrap(),
        fixture("pod-crashloop/logs.previous.txt")
    );
    let requests = log.lock().unwrap().clone();
    assert!(requests.iter().any(|r| r.path.ends_with("/log")
        && r.param("previous").as_deref() == Some("true")
        && r.param("container").as_deref() == Some("app")));
    let events = requests
        .iter()
        .find(|r| r.path.ends_with("/events"))
        .unwrap();
    assert_eq!(
        events.param("fieldSelector").unwrap(),
        "involvedObject.uid=f16274d1-480a-4f68-9ee4-8e8962c1269a"
    );
}

#[tokio::test]
async fn a_deadline_produces_the_unready_table() {
    let pod = "watch-web-594d8c6bd6-9c945";
    // Only the first two events: the pod is scheduled but never starts.
    let lines = stream_lines("watch/deployment.watch.ndjson", pod);
    let first = json(&lines[0])["object"].clone();
    let second = lines[1].clone() + "\n";
    let mut watched = false;
    let (client, _log) = spawn(move |req| match req.path.as_str() {
        "/api/v1/namespaces/fx/pods" if req.is_watch() && !watched => {
            watched = true;
            Reply::Json(200, second.clone())
        }
        "/api/v1/namespaces/fx/pods" if req.is_watch() => Reply::Hold,
        "/api/v1/namespaces/fx/pods" => {
            Reply::Json(200, list("PodList", std::slice::from_ref(&first)))
        }
        "/api/v1/namespaces/fx/events" if req.is_watch() => Reply::Hold,
        "/api/v1/namespaces/fx/events" => Reply::Json(200, list("EventList", &[])),
        p if p.ends_with("/log") => Reply::Text(200, String::new()),
        _ => not_found(&req.path),
    });
    let applied = [applied_pod("watch/deployment.watch.ndjson", pod)];
    let deadline = Instant::now() + Duration::from_millis(500);
    let end = wait_ready(
        &client,
        &applied,
        WaitSpec::new(Tolerance::default()),
        deadline,
        |_| {},
    )
    .await;
    assert!(end.deadline());
    assert_eq!(end.judgement.rows.len(), 1);
    let diagnosis = harness::deploy::diagnose(&client, "web", &end.judgement, &end.snapshot).await;
    let text = diagnosis.render();
    assert!(text.contains("RESOURCE"), "{text}");
    assert!(text.contains(&format!("Pod/fx/{pod}")), "{text}");
    assert!(text.contains("InProgress"), "{text}");
}

/// A lane with two waves: `crds` (a CRD, Established in the apply response)
/// and `app` (a ConfigMap whose value names its image), depending on it.
fn two_wave_project(dir: &std::path::Path) -> harness::config::Project {
    std::fs::write(dir.join("kubeconfig"), "apiVersion: v1\nkind: Config\n").unwrap();
    std::fs::create_dir(dir.join("crds")).unwrap();
    std::fs::write(dir.join("crds/widgets.yaml"), fixture("crd/manifest.yaml")).unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {image: \"{{image.app}}\", lane: \"{{lane}}\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("harness.yaml"),
        "\
namespace: demo
cluster:
  provider: existing
  existing: {kubeconfig: kubeconfig}
images:
  app: {pull: example.com/app:v1}
components:
  crds: {manifests: [crds/]}
  app: {manifests: [app.yaml], images: [app], depends_on: [crds]}
lanes:
  l: {components: [app]}
",
    )
    .unwrap();
    harness::config::load(&dir.join("harness.yaml")).unwrap()
}

#[tokio::test]
async fn a_lane_deploys_wave_by_wave_with_crds_first() {
    let dir = tempfile::tempdir().unwrap();
    let project = two_wave_project(dir.path());
    let crd = fixture("crd/crd.widgets.example.com.json");
    let (client, log) = spawn(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/apis/apiextensions.k8s.io/v1") => fake_api::crd_discovery(),
        ("GET", "/api/v1") => Reply::Json(
            200,
            resources(
                "v1",
                &[
                    ("namespaces", "Namespace", false),
                    ("configmaps", "ConfigMap", true),
                ],
            ),
        ),
        (
            "PATCH",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        ) => Reply::Json(200, crd.clone()),
        // The server echoes the applied object (enough for these kinds).
        ("PATCH", _) => {
            let mut body = json(&req.body);
            body["metadata"]["uid"] = "u".into();
            body["status"] = json!({"phase": "Active"});
            Reply::Json(200, body.to_string())
        }
        _ => not_found(&req.path),
    });
    let lane = &project.lanes["l"];
    let images = indexmap::IndexMap::from([("app".to_owned(), "example.com/app:v1".to_owned())]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = harness::deploy::deploy_lane(&client, &project, lane, &images, tx, deadline)
        .await
        .unwrap();
    let names: Vec<_> = report.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["crds", "app"]);

    let patches: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        patches,
        [
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
            "/api/v1/namespaces/demo",
            "/api/v1/namespaces/demo/configmaps/app",
        ]
    );
    let configmap = log
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.path.ends_with("/configmaps/app"))
        .map(|r| json(&r.body))
        .unwrap();
    assert_eq!(configmap["data"]["image"], "example.com/app:v1");
    assert_eq!(configmap["data"]["lane"], "l");

    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let waves: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            harness::deploy::DeployEvent::WaveStarted { wave, components } => {
                Some((*wave, components.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        waves,
        [(1, vec!["crds".to_owned()]), (2, vec!["app".to_owned()])]
    );
    let ready = events
        .iter()
        .filter(|e| matches!(e, harness::deploy::DeployEvent::ComponentReady { .. }))
        .count();
    assert_eq!(ready, 2);
}

#[tokio::test]
async fn a_workloads_pods_are_watched_by_its_selector_and_doom_it() {
    // A Deployment selecting the captured crash-looping pod by its label;
    // the Deployment itself never changes (its watch stays quiet).
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "crash", "namespace": "fx", "uid": "d1", "generation": 1, "resourceVersion": "718"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "watch-crash"}},
                 "template": {"metadata": {"labels": {"app": "watch-crash"}}, "spec": {"containers": []}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1},
    });
    let stream = fixture("watch/crashloop.watch.ndjson");
    let listed = deployment.clone();
    let mut pod_watches = 0;
    let (client, log) = spawn(move |req| match req.path.as_str() {
        "/apis/apps/v1/namespaces/fx/deployments" if req.is_watch() => Reply::Hold,
        "/apis/apps/v1/namespaces/fx/deployments" => {
            Reply::Json(200, list("DeploymentList", std::slice::from_ref(&listed)))
        }
        "/api/v1/namespaces/fx/pods" if req.is_watch() => {
            assert_eq!(
                req.param("labelSelector").as_deref(),
                Some("app=watch-crash")
            );
            pod_watches += 1;
            if pod_watches == 1 {
                Reply::Json(200, stream.clone())
            } else {
                Reply::Hold
            }
        }
        "/api/v1/namespaces/fx/pods" => Reply::Json(200, list("PodList", &[])),
        "/api/v1/namespaces/fx/events" if req.is_watch() => Reply::Hold,
        "/api/v1/namespaces/fx/events" => Reply::Json(200, list("EventList", &[])),
        _ => not_found(&req.path),
    });
    let applied = [harness::deploy::AppliedObject {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some("fx".into()),
        name: "crash".into(),
        uid: Some("d1".into()),
        resource: kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        object: serde_json::from_value(deployment).unwrap(),
    }];
    let deadline = Instant::now() + Duration::from_secs(20);
    let end = wait_ready(
        &client,
        &applied,
        WaitSpec::new(Tolerance::default()),
        deadline,
        |_| {},
    )
    .await;
    assert!(!end.deadline());
    assert_eq!(end.judgement.outcome, Outcome::Failed);
    assert_eq!(end.judgement.verdicts[0].owner, 0);
    assert_eq!(end.judgement.rows[0].resource, "Deployment/fx/crash");
    assert_eq!(end.judgement.rows[0].reason, "CrashLoopBackOff");
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|r| r.path == "/apis/apps/v1/namespaces/fx/deployments"
                && r.param("fieldSelector").as_deref() == Some("metadata.name=crash"))
    );
}

/// A lane with one wave of three components: `doomed` (a Pod whose image is
/// not on the node), `config` (a ConfigMap) and `slow` (a Deployment that
/// never becomes Ready).
fn one_wave_project(dir: &std::path::Path) -> harness::config::Project {
    std::fs::write(dir.join("kubeconfig"), "apiVersion: v1\nkind: Config\n").unwrap();
    std::fs::write(
        dir.join("doomed.yaml"),
        fixture("pod-err-image-never-pull/manifest.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\ndata: {a: b}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("slow.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: slow}\nspec:\n  selector: {matchLabels: {app: slow}}\n  template:\n    metadata: {labels: {app: slow}}\n    spec: {containers: [{name: app, image: fixtures/app:v1}]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("harness.yaml"),
        "\
namespace: fx
cluster:
  provider: existing
  existing: {kubeconfig: kubeconfig}
components:
  doomed: {manifests: [doomed.yaml]}
  config: {manifests: [config.yaml]}
  slow: {manifests: [slow.yaml]}
lanes:
  l: {components: [doomed, config, slow]}
",
    )
    .unwrap();
    harness::config::load(&dir.join("harness.yaml")).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failed_wave_reports_every_component_with_its_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let project = one_wave_project(dir.path());
    let doomed = json(&fixture(
        "pod-err-image-never-pull/pod.never-pull.state-Pending_waiting-ErrImageNeverPull.json",
    ));
    let events = fixture("pod-err-image-never-pull/events.pod.never-pull.json");
    let (client, _log) = spawn(move |req| {
        let path = req.path.as_str();
        match (req.method.as_str(), path) {
            ("GET", "/api/v1") => Reply::Json(
                200,
                resources(
                    "v1",
                    &[
                        ("namespaces", "Namespace", false),
                        ("pods", "Pod", true),
                        ("configmaps", "ConfigMap", true),
                    ],
                ),
            ),
            ("GET", "/apis/apps/v1") => Reply::Json(
                200,
                resources("apps/v1", &[("deployments", "Deployment", true)]),
            ),
            ("PATCH", "/api/v1/namespaces/fx/pods/never-pull") => Reply::Json(
                200,
                fixture(
                    "pod-err-image-never-pull/pod.never-pull.state-Pending_waiting-ContainerCreating.json",
                ),
            ),
            ("PATCH", p) if p.ends_with("/deployments/slow") => {
                let mut body = json(&req.body);
                body["metadata"]["uid"] = "slow-uid".into();
                body["metadata"]["generation"] = 1.into();
                body["status"] =
                    json!({"observedGeneration": 1, "replicas": 1, "unavailableReplicas": 1});
                Reply::Json(200, body.to_string())
            }
            ("PATCH", _) => {
                let mut body = json(&req.body);
                body["metadata"]["uid"] = "u".into();
                body["status"] = json!({"phase": "Active"});
                Reply::Json(200, body.to_string())
            }
            // The namespace's default account exists.
            ("GET", "/api/v1/namespaces/fx/serviceaccounts") if req.is_watch() => Reply::Hold,
            ("GET", "/api/v1/namespaces/fx/serviceaccounts") => Reply::Json(
                200,
                list(
                    "ServiceAccountList",
                    &[json!({"metadata": {"name": "default", "namespace": "fx", "uid": "sa"}})],
                ),
            ),
            ("GET", "/api/v1/namespaces") if req.is_watch() => Reply::Hold,
            ("GET", "/api/v1/namespaces") => Reply::Json(
                200,
                list(
                    "NamespaceList",
                    &[
                        json!({"metadata": {"name": "fx", "uid": "ns"}, "status": {"phase": "Active"}}),
                    ],
                ),
            ),
            ("GET", "/api/v1/namespaces/fx/pods") if req.is_watch() => Reply::Hold,
            ("GET", "/api/v1/namespaces/fx/pods")
                if req.param("fieldSelector").as_deref() == Some("metadata.name=never-pull") =>
            {
                Reply::Json(200, list("PodList", std::slice::from_ref(&doomed)))
            }
            ("GET", "/api/v1/namespaces/fx/pods") => Reply::Json(200, list("PodList", &[])),
            ("GET", "/api/v1/namespaces/fx/events")
                if !req.is_watch()
                    && req
                        .param("fieldSelector")
                        .is_some_and(|f| f.starts_with("involvedObject.uid=")) =>
            {
                Reply::Json(200, events.clone())
            }
            ("GET", "/api/v1/namespaces/fx/events") if req.is_watch() => Reply::Hold,
            ("GET", "/api/v1/namespaces/fx/events") => Reply::Json(200, list("EventList", &[])),
            ("GET", "/apis/apps/v1/namespaces/fx/deployments") if req.is_watch() => Reply::Hold,
            ("GET", "/apis/apps/v1/namespaces/fx/deployments") => {
                Reply::Json(200, list("DeploymentList", &[]))
            }
            _ => not_found(path),
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let error = harness::deploy::deploy_lane(
        &client,
        &project,
        &project.lanes["l"],
        &indexmap::IndexMap::new(),
        tx,
        start + Duration::from_secs(600),
    )
    .await
    .expect_err("one component is doomed");
    // The others had the verdict window, not their 5 m timeouts.
    let took = start.elapsed();
    assert!(
        took >= harness::deploy::VERDICT_WINDOW && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert!(
        !error.is_timeout(),
        "a verdict in the wave is exit 6: {error}"
    );
    let message = error.to_string();
    assert!(
        message
            .starts_with("wave 1: 2 components failed (1 Ready): doomed (ErrImageNeverPull), slow"),
        "{message}"
    );
    let mut verdicts = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let harness::deploy::DeployEvent::Verdict {
            component,
            standing,
            diagnosis,
            ..
        } = e
        {
            verdicts.push((component, standing, diagnosis));
        }
    }
    let standings: Vec<(&str, harness::deploy::Standing)> =
        verdicts.iter().map(|(c, s, _)| (c.as_str(), *s)).collect();
    use harness::deploy::Standing::*;
    assert_eq!(
        standings,
        [("doomed", Doomed), ("config", Ready), ("slow", InProgress)]
    );
    let doomed_text = verdicts[0].2.as_ref().unwrap().render();
    assert!(doomed_text.contains("ErrImageNeverPull"), "{doomed_text}");
    assert!(doomed_text.contains("warning events:"), "{doomed_text}");
    let slow = verdicts[2].2.as_ref().unwrap();
    assert_eq!(slow.rows[0].resource, "Deployment/fx/slow", "{slow:?}");
}

fn applied_service() -> harness::deploy::AppliedObject {
    let service = json(&fixture("deploy-healthy/service.web.json"));
    harness::deploy::AppliedObject {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespace: Some("fx".into()),
        name: "web".into(),
        uid: service["metadata"]["uid"].as_str().map(str::to_owned),
        resource: kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
        object: serde_json::from_value(service).unwrap(),
    }
}

/// The `web` EndpointSlice as a 1.20 server serves it: `discovery.k8s.io/v1beta1`.
fn v1beta1_web_slice() -> Value {
    let slices = json(&fixture("endpoints/endpointslices.fx.json"));
    let mut web = slices["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["name"] == "web-bssmq")
        .unwrap()
        .clone();
    web["apiVersion"] = "discovery.k8s.io/v1beta1".into();
    web
}

#[tokio::test]
async fn a_server_without_v1_endpointslices_is_read_through_v1beta1() {
    let web = v1beta1_web_slice();
    let (client, log) = spawn(move |req| match req.path.as_str() {
        // Kubernetes 1.20: only v1beta1.
        "/apis/discovery.k8s.io/v1beta1" => Reply::Json(
            200,
            resources(
                "discovery.k8s.io/v1beta1",
                &[("endpointslices", "EndpointSlice", true)],
            ),
        ),
        "/apis/discovery.k8s.io/v1beta1/namespaces/fx/endpointslices" if req.is_watch() => {
            Reply::Hold
        }
        "/apis/discovery.k8s.io/v1beta1/namespaces/fx/endpointslices" => {
            assert_eq!(
                req.param("labelSelector").as_deref(),
                Some("kubernetes.io/service-name=web")
            );
            Reply::Json(200, list("EndpointSliceList", std::slice::from_ref(&web)))
        }
        "/api/v1/namespaces/fx/services" if req.is_watch() => Reply::Hold,
        "/api/v1/namespaces/fx/services" => Reply::Json(200, list("ServiceList", &[])),
        _ => not_found(&req.path),
    });
    let source = harness::deploy::wait::EndpointSource::discover(&client).await;
    assert_eq!(source, harness::deploy::wait::EndpointSource::SlicesV1beta1);
    let spec = WaitSpec {
        endpoints: source,
        ..WaitSpec::new(Tolerance::default())
    };
    let end = wait_ready(
        &client,
        &[applied_service()],
        spec,
        Instant::now() + Duration::from_secs(20),
        |_| {},
    )
    .await;
    assert_eq!(
        end.judgement.outcome,
        Outcome::Ready,
        "{:?}",
        end.judgement.rows
    );
    assert!(end.watch_failures.is_empty(), "{:?}", end.watch_failures);
    assert!(
        !log.lock()
            .unwrap()
            .iter()
            .any(|r| r.path.starts_with("/apis/discovery.k8s.io/v1/")),
        "v1 is never watched where it is not served"
    );
}

#[tokio::test(start_paused = true)]
async fn a_watch_that_keeps_failing_is_reported_and_in_the_diagnosis() {
    // The EndpointSlice watch of a server that refuses it (as 1.20 refused
    // v1): said while waiting, and kept for the deadline's diagnosis.
    let (client, _log) = spawn(move |req| match req.path.as_str() {
        "/api/v1/namespaces/fx/services" if req.is_watch() => Reply::Hold,
        "/api/v1/namespaces/fx/services" => Reply::Json(200, list("ServiceList", &[])),
        _ => not_found(&req.path),
    });
    let mut reported = Vec::new();
    let mut waiter = harness::deploy::wait::Waiter::start(
        &client,
        &[applied_service()],
        WaitSpec::new(Tolerance::default()),
    );
    let end = waiter
        .until_ready(
            Instant::now() + Duration::from_secs(60),
            &mut harness::deploy::wait::CutOff::never(),
            |p| {
                if let harness::deploy::wait::WaitProgress::WatchFailing(w) = p {
                    reported.push(w.describe());
                }
            },
        )
        .await;
    assert!(end.deadline());
    assert!(
        reported.first().is_some_and(|r| r.starts_with(
            "watch of EndpointSlices (discovery.k8s.io/v1) of Service fx/web failed 3 times"
        )),
        "{reported:?}"
    );
    assert_eq!(
        reported.len(),
        1,
        "said once while the error stays the same"
    );
    let diagnosis =
        harness::deploy::diagnose_end(&client, "web", &end, harness::deploy::Standing::TimedOut)
            .await;
    let text = diagnosis.render();
    assert!(
        text.contains("watch of EndpointSlices (discovery.k8s.io/v1) of Service fx/web failed"),
        "{text}"
    );
    assert!(text.contains("404"), "{text}");
}
