//! The component's verdict from a snapshot of what the cluster shows: pure.
//!
//! The waiter (watch streams), `harness diagnose` and `harness status`
//! (one read of the live cluster) all build a [`Snapshot`] and ask
//! [`judge`], so "why is it not Ready" has one answer whichever way it was
//! asked. Each tracked object is judged by [`crate::readiness::rules::evaluate`];
//! the pods of every object that is not Ready yet are classified by
//! [`crate::readiness::classify::classify_pod`] with the component's tolerance. A
//! failed object or a doomed pod fails the component at once; a Job's pod
//! that merely exited does not (the Job retries until its backoff limit, and
//! the Job rule says when it gave up). Containers seen to restart since the
//! component was Ready ([`crate::readiness::settle`]) are classified even
//! when their object still reports Ready, so a restart the tolerance no
//! longer forgives dooms the component however briefly it was down. An
//! unready object without a verdict gets the step its pods wait on in its
//! row ([`crate::readiness::waiting`]).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Endpoints, Event, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use crate::readiness::classify::{
    ContainerRef, Tolerance, Verdict, VerdictKind, classify_pod_restarted,
};
use crate::readiness::rules::{self, Related, State, Status};
use crate::readiness::table::{ResourceRef, UnreadyRow, unready_row};
use crate::readiness::waiting::waiting_on;
use crate::readiness::{Timestamp, rules::is_job_pod};

/// Containers that restarted since the component was Ready: `(pod uid,
/// container)`.
pub type Restarted = BTreeSet<(String, ContainerRef)>;

/// One object the component is waiting on, with its pods.
#[derive(Clone, Debug)]
pub struct Tracked {
    /// Which object.
    pub resource: ResourceRef,
    /// The latest version seen, with `apiVersion` and `kind`; `None` when
    /// it does not exist (deleted, or never applied).
    pub object: Option<Value>,
    /// Its pods (the workload's selector), or the pod itself for a Pod.
    pub pods: Vec<Pod>,
}

/// What the cluster shows about one component.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The objects, in apply order.
    pub objects: Vec<Tracked>,
    /// Events about the pods (any events: classification filters by uid).
    pub events: Vec<Event>,
    /// EndpointSlices of the component's Services.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// The Services' Endpoints objects, where the server serves no
    /// EndpointSlices.
    pub endpoints: Vec<Endpoints>,
}

impl Snapshot {
    /// The pods of every tracked object that is not a Job (a Job's pods
    /// finish by design): those whose readiness must hold.
    pub fn workload_pods(&self) -> impl Iterator<Item = &Pod> {
        self.objects
            .iter()
            .filter(|t| t.resource.kind != "Job")
            .flat_map(|t| &t.pods)
    }
}

/// A verdict on one pod of one tracked object.
#[derive(Clone, Debug)]
pub struct PodVerdict {
    /// Index of the owning object in [`Snapshot::objects`].
    pub owner: usize,
    /// The pod.
    pub pod: Pod,
    /// What is wrong with it.
    pub verdict: Verdict,
}

/// The state of each object and the verdicts on its pods.
#[derive(Clone, Debug)]
pub struct Judgement {
    /// Per object, its status (same order as the snapshot).
    pub statuses: Vec<Status>,
    /// Verdicts on pods of objects that are not Ready, most likely first.
    pub verdicts: Vec<PodVerdict>,
    /// The unready table: one row per object that is not Ready.
    pub rows: Vec<UnreadyRow>,
    /// The overall outcome.
    pub outcome: Outcome,
}

/// Where the component stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every object is Ready.
    Ready,
    /// Not yet, and nothing says it will not get there.
    Pending,
    /// An object failed or a pod is doomed: waiting will not help.
    Failed,
}

/// Whether a verdict on a pod owned by `owner` dooms the component.
fn dooms(owner_kind: &str, pod: &Pod, verdict: &Verdict) -> bool {
    let job_retry = owner_kind == "Job"
        && is_job_pod(pod)
        && matches!(
            verdict.kind,
            VerdictKind::Exited { .. } | VerdictKind::CrashLoop { .. }
        );
    !job_retry
}

/// Judges a snapshot at `now` with the component's tolerance.
pub fn judge(snapshot: &Snapshot, now: Timestamp, tolerance: &Tolerance) -> Judgement {
    judge_restarted(snapshot, now, tolerance, &Restarted::new())
}

/// [`judge`], knowing which containers restarted since the component was
/// Ready.
pub fn judge_restarted(
    snapshot: &Snapshot,
    now: Timestamp,
    tolerance: &Tolerance,
    restarted: &Restarted,
) -> Judgement {
    let mut statuses = Vec::new();
    let mut verdicts = Vec::new();
    let mut rows = Vec::new();
    let mut failed = false;
    for (index, tracked) in snapshot.objects.iter().enumerate() {
        let endpoints = snapshot.endpoints.iter().find(|e| {
            tracked.resource.kind == "Service"
                && e.metadata.name.as_deref() == Some(tracked.resource.name.as_str())
                && e.metadata.namespace == tracked.resource.namespace
        });
        let related = Related {
            endpoints,
            endpoint_slices: &snapshot.endpoint_slices,
        };
        let status = match &tracked.object {
            None => Status {
                state: State::InProgress,
                reason: "NotFound".into(),
                message: "the object does not exist in the cluster".into(),
            },
            Some(object) => rules::evaluate(object, &related).unwrap_or_else(|e| Status {
                state: State::Unknown,
                reason: "RuleError".into(),
                message: e.to_string(),
            }),
        };
        let mut own = Vec::new();
        for pod in &tracked.pods {
            let uid = pod.metadata.uid.as_deref().unwrap_or_default();
            let restarted: Vec<ContainerRef> = restarted
                .iter()
                .filter(|(u, _)| u == uid)
                .map(|(_, c)| c.clone())
                .collect();
            // A Ready object's pods are asked only about restarts since
            // Ready: their older history was judged before.
            if status.is_ready() && (restarted.is_empty() || tracked.resource.kind == "Job") {
                continue;
            }
            for verdict in classify_pod_restarted(pod, &snapshot.events, now, tolerance, &restarted)
            {
                if dooms(&tracked.resource.kind, pod, &verdict) {
                    failed = true;
                }
                own.push(verdict.clone());
                verdicts.push(PodVerdict {
                    owner: index,
                    pod: pod.clone(),
                    verdict,
                });
            }
        }
        if status.state == State::Failed {
            failed = true;
        }
        if !status.is_ready() || !own.is_empty() {
            let mut row = unready_row(&tracked.resource, &status, &own);
            if own.is_empty() {
                let wait = tracked
                    .pods
                    .iter()
                    .filter(|p| !rules::pod(p).is_ready() && !is_job_pod(p))
                    .find_map(|p| {
                        let w = waiting_on(p, now)?;
                        let name = p.metadata.name.as_deref().unwrap_or_default();
                        Some(if tracked.resource.kind == "Pod" {
                            w.what
                        } else {
                            format!("pod {name}: {}", w.what)
                        })
                    });
                if let Some(wait) = wait {
                    row = row.waiting_on(wait);
                }
            }
            rows.push(row);
        }
        statuses.push(status);
    }
    verdicts.sort_by_key(|v| v.verdict.rank());
    let outcome = if failed {
        Outcome::Failed
    } else if statuses.iter().all(Status::is_ready) && rows.is_empty() {
        Outcome::Ready
    } else {
        Outcome::Pending
    };
    Judgement {
        statuses,
        verdicts,
        rows,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(path: &str) -> Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/k8s")
            .join(path);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn tracked(object: Value, pods: Vec<Value>) -> Tracked {
        Tracked {
            resource: ResourceRef {
                kind: object["kind"].as_str().unwrap().into(),
                namespace: Some("fx".into()),
                name: object["metadata"]["name"].as_str().unwrap().into(),
            },
            pods: pods
                .into_iter()
                .map(|p| serde_json::from_value(p).unwrap())
                .collect(),
            object: Some(object),
        }
    }

    fn now() -> Timestamp {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn outcomes_on_captured_objects() {
        let healthy = tracked(
            fixture("deploy-healthy/deployment.web.json"),
            vec![fixture("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json")],
        );
        let oom = tracked(
            fixture("pod-oomkilled/pod.oom.json"),
            vec![fixture("pod-oomkilled/pod.oom.json")],
        );
        let job_failed = tracked(fixture("job-failed/job.job-fail.json"), vec![]);
        let table: Vec<(&str, Vec<Tracked>, Outcome)> = vec![
            ("healthy deployment", vec![healthy.clone()], Outcome::Ready),
            ("oomkilled pod", vec![healthy.clone(), oom], Outcome::Failed),
            ("failed job", vec![job_failed], Outcome::Failed),
            (
                "missing object",
                vec![Tracked {
                    object: None,
                    ..healthy.clone()
                }],
                Outcome::Pending,
            ),
        ];
        for (name, objects, want) in table {
            let snapshot = Snapshot {
                objects,
                ..Snapshot::default()
            };
            let j = judge(&snapshot, now(), &Tolerance::default());
            assert_eq!(j.outcome, want, "{name}: {:?}", j.rows);
            assert_eq!(
                j.rows.len(),
                j.statuses.iter().filter(|s| !s.is_ready()).count(),
                "{name}"
            );
        }
    }

    #[test]
    fn an_oomkilled_pod_names_its_verdict_in_the_row() {
        let oom = tracked(
            fixture("pod-oomkilled/pod.oom.json"),
            vec![fixture("pod-oomkilled/pod.oom.json")],
        );
        let j = judge(
            &Snapshot {
                objects: vec![oom],
                ..Snapshot::default()
            },
            now(),
            &Tolerance::default(),
        );
        assert_eq!(j.rows[0].reason, "OOMKilled", "{:?}", j.rows);
        assert_eq!(j.verdicts[0].owner, 0);
    }

    #[test]
    fn a_job_pod_that_exited_does_not_doom_a_running_job() {
        let mut job = fixture("job-failed/job.job-fail.json");
        // The same Job before it gave up: no Failed condition yet.
        job["status"]["conditions"] = Value::Array(vec![]);
        let pods = std::fs::read_dir(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s/job-failed"),
        )
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("pod.") && n.ends_with(".json")
        })
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect::<Vec<Value>>();
        assert!(!pods.is_empty());
        let j = judge(
            &Snapshot {
                objects: vec![tracked(job, pods)],
                ..Snapshot::default()
            },
            now(),
            &Tolerance::default(),
        );
        assert_eq!(j.outcome, Outcome::Pending, "{:?}", j.rows);
        assert!(
            !j.verdicts.is_empty(),
            "the exits are still shown as evidence"
        );
    }
}
