//! Where a component stands while it deploys, for a live progress line.
//!
//! The waiter judges every change it sees ([`super::judge`]); this folds
//! that judgement (and the snapshot it was made on) into what a person
//! watching needs: pods ready of wanted, and why not yet in a few words
//! ([`crate::readiness::brief`]), the settle window once it is Ready, or the
//! verdict the moment it is doomed. It is not a second judge: doomed is the
//! judgement's own outcome and verdict. The state carries times, not
//! elapsed seconds, so it changes only when the component does; the waiter
//! sends it through a [`crate::throttle::Changes`] gate.

use serde_json::Value;

use super::judge::{Judgement, Outcome, Snapshot};
use crate::readiness::Timestamp;
use crate::readiness::brief::brief;
use crate::readiness::kinds::{self, Wanted};
use crate::readiness::rules::State;

pub use crate::readiness::{LiveState, Stand};

/// How many pods a workload wants, as [`kinds`]' table says to count
/// them: its replicas (1 when unset), a DaemonSet's desired number; `None`
/// for kinds whose pods finish (Jobs) or that have none.
fn wanted(object: &Value) -> Option<usize> {
    let count = |v: &Value| v.as_u64().map(|n| n as usize);
    match kinds::of_value(object)?.wanted {
        Wanted::Replicas => Some(count(&object["spec"]["replicas"]).unwrap_or(1)),
        Wanted::DesiredScheduled => {
            Some(count(&object["status"]["desiredNumberScheduled"]).unwrap_or(0))
        }
        Wanted::One => Some(1),
        Wanted::Nothing => None,
    }
}

fn is_ready(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Pods Ready of wanted, over the component's workloads.
fn pod_counts(snapshot: &Snapshot) -> Option<(usize, usize)> {
    let mut any = false;
    let (mut ready, mut want) = (0, 0);
    for tracked in &snapshot.objects {
        let Some(w) = tracked.object.as_ref().and_then(wanted) else {
            continue;
        };
        any = true;
        want += w;
        ready += tracked.pods.iter().filter(|p| is_ready(p)).count().min(w);
    }
    any.then_some((ready, want))
}

/// The live state of a component from its latest judgement; `settling`
/// is when its settle window ends, while one runs.
pub fn live_state(
    snapshot: &Snapshot,
    judgement: &Judgement,
    settling: Option<Timestamp>,
) -> LiveState {
    let pods = pod_counts(snapshot);
    let stand = match (judgement.outcome, settling) {
        (Outcome::Failed, _) => match (judgement.verdicts.first(), judgement.rows.first()) {
            (Some(v), _) => Stand::Doomed {
                verdict: v.verdict.kind.name().to_owned(),
                message: v.verdict.message.clone(),
            },
            (None, Some(row)) => Stand::Doomed {
                verdict: row.reason.clone(),
                message: row.evidence.clone(),
            },
            (None, None) => Stand::Doomed {
                verdict: "Failed".into(),
                message: String::new(),
            },
        },
        (_, Some(until)) => Stand::Settling { until },
        _ => waiting(snapshot, judgement),
    };
    LiveState { pods, stand }
}

/// The first thing not Ready: a pod's step, else the object's reason.
fn waiting(snapshot: &Snapshot, judgement: &Judgement) -> Stand {
    let unready = snapshot
        .objects
        .iter()
        .zip(&judgement.statuses)
        .filter(|(_, s)| s.state != State::Ready);
    let mut first_object = None;
    for (tracked, status) in unready {
        first_object.get_or_insert((tracked, status));
        if let Some(b) = tracked.pods.iter().find_map(|p| brief(p, &snapshot.events)) {
            return Stand::Waiting {
                why: b.what,
                since: b.since,
            };
        }
    }
    // No object said why, or every object is Ready and a pod is not yet.
    if let Some(b) = snapshot
        .workload_pods()
        .find_map(|p| brief(p, &snapshot.events))
    {
        return Stand::Waiting {
            why: b.what,
            since: b.since,
        };
    }
    let why = match first_object {
        Some((tracked, status)) => {
            let reason = match status.reason.as_str() {
                "" => status.state.to_string(),
                r => r.to_owned(),
            };
            format!(
                "{} {}: {reason}",
                tracked.resource.kind, tracked.resource.name
            )
        }
        None => "Ready, checking its pods".to_owned(),
    };
    Stand::Waiting { why, since: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::judge::{Tracked, judge};
    use crate::readiness::classify::Tolerance;
    use crate::readiness::table::ResourceRef;
    use std::path::Path;

    fn fixture(path: &str) -> Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/k8s")
            .join(path);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn snapshot(object: Value, pods: &[&str], events: &[&str]) -> Snapshot {
        Snapshot {
            objects: vec![Tracked {
                resource: ResourceRef {
                    kind: object["kind"].as_str().unwrap().into(),
                    namespace: Some("fx".into()),
                    name: object["metadata"]["name"].as_str().unwrap().into(),
                },
                pods: pods
                    .iter()
                    .map(|p| serde_json::from_value(fixture(p)).unwrap())
                    .collect(),
                object: Some(object),
            }],
            events: events
                .iter()
                .flat_map(|e| {
                    serde_json::from_value::<Vec<_>>(fixture(e)["items"].clone()).unwrap()
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    fn judged(s: &Snapshot, now: &str) -> Judgement {
        judge(s, now.parse().unwrap(), &Tolerance::default())
    }

    /// A Deployment of one replica rolling out (its pod is a captured one).
    fn deployment_of(_pod: &str) -> Value {
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "app", "namespace": "fx", "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                       "unavailableReplicas": 1}
        })
    }

    #[test]
    fn a_healthy_deployment_has_all_its_pods_and_nothing_to_wait_on() {
        let s = snapshot(
            fixture("deploy-healthy/deployment.web.json"),
            &[
                "deploy-healthy/pod.web-57f64b4f4d-5bqnc.json",
                "deploy-healthy/pod.web-57f64b4f4d-l64xc.json",
            ],
            &[],
        );
        let j = judged(&s, "2030-01-01T00:00:00Z");
        let until: Timestamp = "2030-01-01T00:00:05Z".parse().unwrap();
        let live = live_state(&s, &j, Some(until));
        assert_eq!(live.pods, Some((2, 2)));
        assert_eq!(live.stand, Stand::Settling { until });
        assert!(live.urgent());
    }

    #[test]
    fn a_doomed_component_carries_the_judgement_s_own_verdict() {
        let pod = "pod-oomkilled/pod.oom.json";
        let s = snapshot(deployment_of(pod), &[pod], &[]);
        let j = judged(&s, "2030-01-01T00:00:00Z");
        assert_eq!(j.outcome, Outcome::Failed);
        let live = live_state(&s, &j, None);
        let Stand::Doomed { verdict, message } = &live.stand else {
            panic!("{live:?}")
        };
        assert_eq!(verdict, "OOMKilled");
        assert_eq!(message, &j.verdicts[0].verdict.message);
        assert_eq!(live.pods, Some((0, 1)));
        assert!(live.urgent());
    }

    #[test]
    fn a_pending_component_names_its_pod_s_step() {
        let pod = "pod-readiness-failing/pod.readiness-http.json";
        let s = snapshot(
            deployment_of(pod),
            &[pod],
            &["pod-readiness-failing/events.pod.readiness-http.json"],
        );
        // Within the tolerance's grace the failing probe is no verdict yet.
        let started = s.objects[0].pods[0]
            .status
            .as_ref()
            .unwrap()
            .start_time
            .as_ref()
            .unwrap()
            .0;
        let patient = Tolerance {
            grace: std::time::Duration::from_secs(3600),
            ..Tolerance::default()
        };
        let j = judge(&s, started, &patient);
        assert_eq!(j.outcome, Outcome::Pending, "{:?}", j.rows);
        let live = live_state(&s, &j, None);
        assert_eq!(live.pods, Some((0, 1)));
        let Stand::Waiting { why, since } = &live.stand else {
            panic!("{live:?}")
        };
        assert!(why.starts_with("readiness probe failing "), "{why}");
        assert!(since.is_some());
        assert!(!live.urgent());
    }

    #[test]
    fn an_object_without_pods_says_its_own_reason() {
        let crd = fixture("crd/crd.widgets.example.com.json");
        let mut pending = crd.clone();
        pending["status"] = serde_json::json!({});
        let s = snapshot(pending, &[], &[]);
        let j = judged(&s, "2030-01-01T00:00:00Z");
        let live = live_state(&s, &j, None);
        assert_eq!(live.pods, None);
        let Stand::Waiting { why, since: None } = &live.stand else {
            panic!("{live:?}")
        };
        assert!(why.starts_with("CustomResourceDefinition "), "{why}");
    }
}
