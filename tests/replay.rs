//! Watch streams captured on real clusters, replayed through the real
//! waiter with their original timing (tokio's paused clock, so the minute a
//! capture spans costs nothing).
//!
//! The `*-after-3s` captures (Kubernetes 1.28) are the failure the settle
//! window exists for: a container that crashes, or is OOMKilled, three
//! seconds after it starts, so that its Deployment is `Available=True` for
//! those three seconds after every restart. They must end in a
//! CrashLoopBackOff / OOMKilled verdict (exit 6), never in Ready; a healthy
//! capture must still become Ready, one settle window after its last pod did.

mod fake_api;

use std::sync::Arc;
use std::time::Duration;

use fake_api::replay::{Capture, serve};
use fake_api::{Reply, Req, resources};
use harness::deploy::progress::{LiveState, Stand};
use harness::deploy::wait::{Clock, CutOff, Ended, WaitProgress, WaitSpec, Waiter};
use harness::deploy::{AppliedObject, DeployError, DeployEvent, Standing};
use harness::readiness::classify::{Tolerance, VerdictKind};
use serde_json::{Value, json};
use tokio::time::Instant;

/// The tolerance a component gets when its lane file says nothing.
fn lane_default() -> Tolerance {
    Tolerance {
        restarts: 1,
        grace: Duration::from_secs(15),
    }
}

fn applied_deployment(object: Value) -> AppliedObject {
    AppliedObject {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: object["metadata"]["namespace"].as_str().map(str::to_owned),
        name: object["metadata"]["name"].as_str().unwrap().to_owned(),
        uid: object["metadata"]["uid"].as_str().map(str::to_owned),
        resource: kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        object: serde_json::from_value(object).unwrap(),
    }
}

/// What a replayed wait ended with, and what it reported on the way.
struct Replayed {
    end: harness::deploy::wait::WaitEnd,
    /// From the apply to the end, in the capture's time.
    took: Duration,
    flaps: Vec<String>,
    /// Whether any judgement along the way said Ready (the old waiter
    /// stopped at the first one).
    judged_ready: bool,
    /// The live states reported, each change once.
    live: Vec<LiveState>,
}

async fn replay(case: &str, tolerance: Tolerance, settle: Duration) -> Replayed {
    let capture = Arc::new(Capture::load(case));
    let origin = Instant::now();
    let (client, _log) = serve(capture.clone(), origin, |_| None);
    let spec = WaitSpec {
        clock: Clock::starting_at(capture.applied_at),
        ..WaitSpec::new(tolerance).settle(settle)
    };
    let applied = [applied_deployment(capture.first("deployments"))];
    let mut waiter = Waiter::start(&client, &applied, spec);
    let mut flaps = Vec::new();
    let mut judged_ready = false;
    let mut live: Vec<LiveState> = Vec::new();
    let end = waiter
        .until_ready(
            origin + Duration::from_secs(120),
            &mut CutOff::never(),
            |p| match p {
                WaitProgress::Judged(j) => {
                    judged_ready |= j.outcome == harness::deploy::Outcome::Ready;
                }
                WaitProgress::Flapped(f) => flaps.push(f.describe()),
                WaitProgress::WatchFailing(w) => panic!("{}", w.describe()),
                WaitProgress::Live(l) => {
                    if live.last() != Some(l) {
                        live.push(l.clone());
                    }
                }
            },
        )
        .await;
    Replayed {
        took: origin.elapsed(),
        end,
        flaps,
        judged_ready,
        live,
    }
}

fn top_verdict(r: &Replayed) -> &harness::readiness::Verdict {
    &r.end
        .judgement
        .verdicts
        .first()
        .unwrap_or_else(|| panic!("no verdict: {:?} {:?}", r.end.ended, r.end.judgement.rows))
        .verdict
}

#[tokio::test(start_paused = true)]
async fn crash_after_3s_is_a_crash_loop_not_ready() {
    let r = replay(
        "k8s-1.28/crash-after-3s",
        lane_default(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(r.end.ended, Ended::Failed, "{:?}", r.end.judgement.rows);
    assert!(r.judged_ready, "the Deployment was Available along the way");
    let v = top_verdict(&r);
    assert!(
        matches!(
            v.kind,
            VerdictKind::CrashLoop {
                exit_code: Some(3),
                ..
            }
        ),
        "{v:?}"
    );
    assert_eq!(v.kind.name(), "CrashLoopBackOff");
    // Each restart broke the settle window before the grace ran out.
    assert!(
        r.flaps.iter().any(|f| f.contains("container app")),
        "{:?}",
        r.flaps
    );
    // The verdict comes when the 15 s grace ends, not at the 2 m deadline.
    assert!(
        r.took >= Duration::from_secs(14) && r.took <= Duration::from_secs(25),
        "{:?}",
        r.took
    );
}

/// What the live display was told while the crash loop ran its course: the
/// pod coming up, the settle window after each start (the Deployment was
/// Available), the restarts, and the verdict last, as soon as it was one.
#[tokio::test(start_paused = true)]
async fn the_live_state_follows_the_crash_loop_to_its_verdict() {
    let r = replay(
        "k8s-1.28/crash-after-3s",
        lane_default(),
        Duration::from_secs(5),
    )
    .await;
    let whys: Vec<String> = r
        .live
        .iter()
        .map(|l| match &l.stand {
            Stand::Waiting { why, .. } => why.clone(),
            Stand::Settling { .. } => "settling".into(),
            Stand::Doomed { verdict, .. } => format!("doomed {verdict}"),
        })
        .collect();
    assert!(
        r.live
            .iter()
            .all(|l| l.pods.is_some_and(|(_, want)| want == 1)),
        "{:?}",
        r.live
    );
    assert!(whys.contains(&"settling".to_owned()), "{whys:?}");
    assert!(
        whys.iter().any(|w| w.contains("restarted 1x")),
        "the restart is said as it happens: {whys:?}"
    );
    assert_eq!(
        whys.last().map(String::as_str),
        Some("doomed CrashLoopBackOff"),
        "{whys:?}"
    );
    assert_eq!(
        whys.iter().filter(|w| w.starts_with("doomed")).count(),
        1,
        "{whys:?}"
    );
    // While settling, the window's end is ahead of the pod's Ready.
    let settling = r.live.iter().find_map(|l| match l.stand {
        Stand::Settling { until } => Some((l.pods, until)),
        _ => None,
    });
    let (pods, until) = settling.unwrap();
    assert_eq!(pods, Some((1, 1)));
    assert!(
        until
            > r.end.snapshot.objects[0].pods[0]
                .metadata
                .creation_timestamp
                .as_ref()
                .unwrap()
                .0
    );
}

#[tokio::test(start_paused = true)]
async fn crash_after_3s_without_tolerance_fails_at_the_first_exit() {
    let r = replay(
        "k8s-1.28/crash-after-3s",
        Tolerance::default(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(r.end.ended, Ended::Failed);
    let v = top_verdict(&r);
    assert_eq!(
        v.kind,
        VerdictKind::CrashLoop {
            reason: "Error".into(),
            exit_code: Some(3)
        }
    );
    // The container exits 3 s after it starts: inside the 5 s settle window.
    assert!(r.took < Duration::from_secs(5), "{:?}", r.took);
}

#[tokio::test(start_paused = true)]
async fn crash_after_3s_with_no_restart_forgiven_fails_at_the_first_restart() {
    // The first exit is within the grace; the restart that follows is one
    // too many, though the container is running and Ready again.
    let tolerance = Tolerance {
        restarts: 0,
        ..lane_default()
    };
    let r = replay("k8s-1.28/crash-after-3s", tolerance, Duration::from_secs(5)).await;
    assert_eq!(r.end.ended, Ended::Failed);
    let v = top_verdict(&r);
    assert!(
        v.message.contains("went down after the pod was Ready"),
        "{}",
        v.message
    );
    assert!(
        r.took > Duration::from_secs(3) && r.took < Duration::from_secs(6),
        "{:?}",
        r.took
    );
}

#[tokio::test(start_paused = true)]
async fn oom_after_3s_is_oomkilled_with_its_limit() {
    let r = replay(
        "k8s-1.28/oom-after-3s",
        lane_default(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(r.end.ended, Ended::Failed, "{:?}", r.end.judgement.rows);
    assert!(r.judged_ready);
    let v = top_verdict(&r);
    assert_eq!(
        v.kind,
        VerdictKind::OomKilled {
            memory_limit: Some("24Mi".into())
        },
        "{v:?}"
    );
    assert!(v.message.contains("memory limit 24Mi"), "{}", v.message);
    assert!(r.took <= Duration::from_secs(25), "{:?}", r.took);
}

#[tokio::test(start_paused = true)]
async fn the_same_containers_without_the_sleep_are_never_ready() {
    for (case, verdict) in [
        ("k8s-1.28/crash-no-probe", "CrashLoopBackOff"),
        ("k8s-1.28/oom-no-probe", "OOMKilled"),
    ] {
        let r = replay(case, lane_default(), Duration::from_secs(5)).await;
        assert_eq!(
            r.end.ended,
            Ended::Failed,
            "{case}: {:?}",
            r.end.judgement.rows
        );
        assert_eq!(top_verdict(&r).kind.name(), verdict, "{case}");
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_settle_window_the_crash_would_have_been_ready() {
    // What the harness did before: Ready at the first Available=True. The
    // capture alone is not what makes the tests above fail.
    let r = replay("k8s-1.28/crash-after-3s", lane_default(), Duration::ZERO).await;
    assert_eq!(r.end.ended, Ended::Ready);
    assert!(r.took < Duration::from_secs(2), "{:?}", r.took);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_capture_is_ready_one_settle_window_after_its_last_pod() {
    // Kubernetes 1.24: two pods of a healthy Deployment, Ready at 13 s and
    // 15 s after their creation; the stream then only bookmarks.
    let capture = Arc::new(Capture::from_watch(
        "k8s/watch/deployment.watch.ndjson",
        "pods",
    ));
    let origin = Instant::now();
    let (client, _log) = serve(capture.clone(), origin, |_| None);
    let pods: Vec<Value> = ["watch-web-594d8c6bd6-9c945", "watch-web-594d8c6bd6-56d5s"]
        .iter()
        .map(|name| {
            capture
                .items
                .iter()
                .find(|i| i.object["metadata"]["name"] == *name)
                .unwrap()
                .object
                .clone()
        })
        .collect();
    let applied: Vec<AppliedObject> = pods
        .into_iter()
        .map(|p| AppliedObject {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some("fx".into()),
            name: p["metadata"]["name"].as_str().unwrap().into(),
            uid: p["metadata"]["uid"].as_str().map(str::to_owned),
            resource: kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
            object: serde_json::from_value(p).unwrap(),
        })
        .collect();
    let spec = WaitSpec {
        clock: Clock::starting_at(capture.applied_at),
        ..WaitSpec::new(lane_default()).settle(Duration::from_secs(5))
    };
    let last_ready = capture
        .items
        .iter()
        .filter(|i| {
            i.object["status"]["conditions"]
                .as_array()
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .map(|i| i.offset)
        .max()
        .unwrap();
    let mut waiter = Waiter::start(&client, &applied, spec);
    let end = waiter
        .until_ready(
            origin + Duration::from_secs(120),
            &mut CutOff::never(),
            |_| {},
        )
        .await;
    assert_eq!(end.ended, Ended::Ready, "{:?}", end.judgement.rows);
    let took = origin.elapsed();
    assert!(
        took >= last_ready + Duration::from_secs(5) && took < last_ready + Duration::from_secs(6),
        "Ready {took:?} after the apply; last pod Ready at {last_ready:?}"
    );
    assert!(end.flaps.is_empty(), "{:?}", end.flaps);
}

/// A lane file in `dir`: `crash` (the capture's Deployment) and, in a
/// second wave, `waits` (a Deployment that never becomes Ready).
fn lane(
    dir: &std::path::Path,
    capture: &Capture,
    crash: &str,
    second_wave: bool,
) -> harness::config::Project {
    std::fs::write(dir.join("kubeconfig"), "apiVersion: v1\nkind: Config\n").unwrap();
    std::fs::write(dir.join("crash.yaml"), capture.file("manifest.yaml")).unwrap();
    std::fs::write(
        dir.join("waits.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: waits}\nspec:\n  selector: {matchLabels: {app: waits}}\n  template:\n    metadata: {labels: {app: waits}}\n    spec: {containers: [{name: app, image: fixtures/app:v1}]}\n",
    )
    .unwrap();
    let waits = if second_wave {
        "  waits: {manifests: [waits.yaml], depends_on: [crash]}\n"
    } else {
        ""
    };
    let top = if second_wave { "waits" } else { "crash" };
    std::fs::write(
        dir.join("harness.yaml"),
        format!(
            "namespace: {ns}\ncluster:\n  provider: existing\n  existing: {{kubeconfig: kubeconfig}}\ncomponents:\n  crash: {{manifests: [crash.yaml]{crash}}}\n{waits}lanes:\n  l: {{components: [{top}]}}\n",
            ns = capture.namespace
        ),
    )
    .unwrap();
    harness::config::load(&dir.join("harness.yaml")).unwrap()
}

/// The API server around a capture: discovery, server-side apply (the
/// Deployment's first state as the response), events by uid and the logs.
fn apply_and_evidence(capture: Arc<Capture>) -> impl FnMut(&Req) -> Option<Reply> + Send + 'static {
    let ns = capture.namespace.clone();
    move |req| {
        let path = req.path.as_str();
        Some(match (req.method.as_str(), path) {
            ("GET", "/api/v1") => Reply::Json(
                200,
                resources(
                    "v1",
                    &[("namespaces", "Namespace", false), ("pods", "Pod", true)],
                ),
            ),
            ("GET", "/apis/apps/v1") => Reply::Json(
                200,
                resources("apps/v1", &[("deployments", "Deployment", true)]),
            ),
            ("GET", "/apis/discovery.k8s.io/v1") => Reply::Json(
                200,
                resources(
                    "discovery.k8s.io/v1",
                    &[("endpointslices", "EndpointSlice", true)],
                ),
            ),
            ("PATCH", p) if p == format!("/api/v1/namespaces/{ns}") => Reply::Json(
                200,
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": ns, "uid": "ns-uid"}, "status": {"phase": "Active"}})
                .to_string(),
            ),
            ("PATCH", p) if p.ends_with("/deployments/waits") => {
                let mut body: Value = serde_json::from_str(&req.body).unwrap();
                body["metadata"]["uid"] = "waits-uid".into();
                body["metadata"]["generation"] = 1.into();
                body["status"] =
                    json!({"observedGeneration": 1, "replicas": 1, "unavailableReplicas": 1});
                Reply::Json(200, body.to_string())
            }
            ("PATCH", p) if p.contains("/deployments/") => {
                Reply::Json(200, capture.first("deployments").to_string())
            }
            ("GET", p)
                if p.ends_with("/events")
                    && !req.is_watch()
                    && req
                        .param("fieldSelector")
                        .is_some_and(|f| f.starts_with("involvedObject.uid=")) =>
            {
                let uid =
                    req.param("fieldSelector").unwrap()["involvedObject.uid=".len()..].to_owned();
                let mut list: Value =
                    serde_json::from_str(&capture.file("events.final.json")).unwrap();
                let items: Vec<Value> = list["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["involvedObject"]["uid"] == uid.as_str())
                    .cloned()
                    .collect();
                list["items"] = Value::Array(items);
                Reply::Json(200, list.to_string())
            }
            ("GET", p) if p.ends_with("/log") => {
                let previous = req.param("previous").as_deref() == Some("true");
                Reply::Text(
                    200,
                    capture.file(if previous {
                        "logs.previous.txt"
                    } else {
                        "logs.current.txt"
                    }),
                )
            }
            _ => return None,
        })
    }
}

async fn deploy(
    case: &str,
    crash: &str,
    second_wave: bool,
) -> (
    Result<harness::deploy::DeployReport, DeployError>,
    Vec<DeployEvent>,
    Duration,
) {
    let capture = Arc::new(Capture::load(case));
    let dir = tempfile::tempdir().unwrap();
    let project = lane(dir.path(), &capture, crash, second_wave);
    let origin = Instant::now();
    let (client, _log) = serve(capture.clone(), origin, apply_and_evidence(capture.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let result = harness::deploy::deploy_lane_at(
        &client,
        &project,
        &project.lanes["l"],
        &indexmap::IndexMap::new(),
        tx,
        origin + Duration::from_secs(300),
        Clock::starting_at(capture.applied_at),
    )
    .await;
    let took = origin.elapsed();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (result, events, took)
}

fn verdicts(
    events: &[DeployEvent],
) -> Vec<(String, Standing, Option<Box<harness::deploy::Diagnosis>>)> {
    events
        .iter()
        .filter_map(|e| match e {
            DeployEvent::Verdict {
                component,
                standing,
                diagnosis,
                ..
            } => Some((component.clone(), *standing, diagnosis.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn up_fails_on_the_crash_with_its_verdict_and_evidence() {
    let (result, events, _) = deploy("k8s-1.28/crash-after-3s", "", false).await;
    let error = result.expect_err("the crash-looping Deployment is not Ready");
    assert!(matches!(error, DeployError::Failed { .. }), "{error}");
    assert!(!error.is_timeout(), "a verdict is exit 6, not a deadline");
    assert!(error.to_string().contains("CrashLoopBackOff"), "{error}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, DeployEvent::ComponentReady { .. })),
        "never reported Ready"
    );
    let verdicts = verdicts(&events);
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    let (component, standing, diagnosis) = &verdicts[0];
    assert_eq!((component.as_str(), *standing), ("crash", Standing::Doomed));
    let text = diagnosis.as_ref().unwrap().render();
    // The same evidence `diagnose` prints: the termination, both logs, the BackOff events.
    assert!(text.contains("last terminated: exit 3 Error"), "{text}");
    assert!(text.contains("log of container app (previous):"), "{text}");
    assert!(
        text.contains("| fatal: cannot read /etc/app/config.yaml"),
        "{text}"
    );
    assert!(text.contains("BackOff"), "{text}");
    assert!(text.contains("readiness did not hold:"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_component_that_goes_down_after_ready_fails_the_next_wave() {
    // Settled after 1 s (the crash is at 3 s), nothing forgiven: Ready, then
    // doomed while `waits` deploys.
    let (result, events, took) = deploy(
        "k8s-1.28/crash-after-3s",
        ", settle: 1s, tolerate: {restarts: 0, grace: 1s}",
        true,
    )
    .await;
    let error = result.expect_err("crash went down before the lane was up");
    assert!(!error.is_timeout(), "{error}");
    assert!(
        events.iter().any(
            |e| matches!(e, DeployEvent::ComponentReady { component, .. } if component == "crash")
        ),
        "crash was Ready first"
    );
    let DeployError::Wave { failures, .. } = &error else {
        panic!("both components of the second wave's run are reported: {error}");
    };
    assert!(
        matches!(failures[0], DeployError::AfterReady { .. }),
        "{}",
        failures[0]
    );
    assert!(
        matches!(failures[1], DeployError::Stopped { .. }),
        "{}",
        failures[1]
    );
    let standings: Vec<(String, Standing)> = verdicts(&events)
        .into_iter()
        .map(|(c, s, _)| (c, s))
        .collect();
    assert_eq!(
        standings,
        [
            ("crash".to_owned(), Standing::DoomedAfterReady),
            ("waits".to_owned(), Standing::InProgress),
        ]
    );
    // Stopped when crash went down (~3 s), not at waits' 5 m timeout.
    assert!(took < Duration::from_secs(10), "{took:?}");
}
