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
//! row ([`crate::readiness::waiting`]). Objects whose readiness depends on
//! a Service they call (webhooks, APIServices) and that
//! [`Status::fails_when_alone`] fail once everything else of the component
//! is Ready and they still are not, [`ALONE_WINDOW`] later: nothing else is
//! on its way to serve them, so waiting for the deadline would only hide
//! the verdict. Notes on objects that do not block ([`Status::note`]) are
//! collected for the caller to tell.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use crate::readiness::classify::{
    ContainerRef, Tolerance, Verdict, VerdictKind, classify_pod_restarted,
};
use crate::readiness::kinds;
use crate::readiness::overrides::Overrides;
use crate::readiness::rules::{self, ClusterTraits, Related, State, Status};
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
    /// Services the component's objects call (a webhook's), as fetched;
    /// those among the tracked objects need not be repeated here.
    pub services: Vec<Service>,
    /// Whether Services, Endpoints or EndpointSlices the objects depend on
    /// are still being listed: until they are, what is missing is not
    /// known to be missing, and nothing is judged alone.
    pub related_pending: bool,
    /// Since when the objects are watched (the waiter's start): a status
    /// that [`Status::fails_when_alone`] fails no sooner than
    /// [`ALONE_WINDOW`] after it (an object re-applied long after it was
    /// created gets its window too). `None` for a single read.
    pub watched_since: Option<Timestamp>,
}

impl Tracked {
    /// Whether its pods are meant to finish (a Job's).
    pub fn pods_finish(&self) -> bool {
        match self.object.as_ref() {
            Some(object) => kinds::of_value(object).is_some_and(|k| k.pods_finish),
            // Gone: its kind's name is all that is left.
            None => kinds::KINDS
                .iter()
                .any(|k| k.kind == self.resource.kind && k.pods_finish),
        }
    }
}

impl Snapshot {
    /// The pods of every tracked object whose pods do not finish (a Job's
    /// do, by design): those whose readiness must hold.
    pub fn workload_pods(&self) -> impl Iterator<Item = &Pod> {
        self.objects
            .iter()
            .filter(|t| !t.pods_finish())
            .flat_map(|t| &t.pods)
    }

    /// Every Service known: those fetched for callers and those tracked.
    fn all_services(&self) -> Vec<Service> {
        let mut services = self.services.clone();
        for t in &self.objects {
            if t.resource.kind == "Service"
                && let Some(svc) = t
                    .object
                    .as_ref()
                    .and_then(|o| serde_json::from_value::<Service>(o.clone()).ok())
                && !services
                    .iter()
                    .any(|s| s.metadata.uid == svc.metadata.uid && svc.metadata.uid.is_some())
            {
                services.push(svc);
            }
        }
        services
    }
}

/// How a component's objects are read besides their kinds' rules: what the
/// lane file says Ready means for some of them, and what the cluster
/// provides.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// The lane file's `readiness:` entries that apply to the component.
    pub overrides: Overrides,
    /// What the cluster provides.
    pub cluster: ClusterTraits,
}

/// How long a status that [`Status::fails_when_alone`] may last after the
/// rest of the component is Ready (and the Services it calls and their pods
/// were created or became Ready) before it is a verdict: the endpoints
/// controller publishes a Ready pod within a second or two, even on a
/// loaded CI machine.
pub const ALONE_WINDOW: Duration = Duration::from_secs(10);

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
    /// Notes on objects, blocking or not (a disruption budget that refuses
    /// every eviction): the object's index in the snapshot, and the note.
    pub notes: Vec<(usize, String)>,
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

/// The notes of a judgement, each `Kind/namespace/name: note`.
pub fn notes(judgement: &Judgement, snapshot: &Snapshot) -> Vec<String> {
    judgement
        .notes
        .iter()
        .filter_map(|(i, note)| Some(format!("{}: {note}", snapshot.objects.get(*i)?.resource)))
        .collect()
}

/// Whether a verdict on a pod of an object (whose pods finish, or not)
/// dooms the component.
fn dooms(pods_finish: bool, pod: &Pod, verdict: &Verdict) -> bool {
    let job_retry = pods_finish
        && is_job_pod(pod)
        && matches!(
            verdict.kind,
            VerdictKind::Exited { .. } | VerdictKind::CrashLoop { .. }
        );
    !job_retry
}

/// Judges a snapshot at `now` with the component's tolerance and the
/// built-in rules.
pub fn judge(snapshot: &Snapshot, now: Timestamp, tolerance: &Tolerance) -> Judgement {
    judge_by(snapshot, now, tolerance, &Rules::default())
}

/// [`judge`], reading the objects by `rules`.
pub fn judge_by(
    snapshot: &Snapshot,
    now: Timestamp,
    tolerance: &Tolerance,
    rules: &Rules,
) -> Judgement {
    judge_restarted(snapshot, now, tolerance, rules, &Restarted::new())
}

/// The status of each tracked object, by its rule.
fn statuses(snapshot: &Snapshot, rules: &Rules) -> Vec<Status> {
    let services = snapshot.all_services();
    let related = Related {
        endpoints: &snapshot.endpoints,
        endpoint_slices: &snapshot.endpoint_slices,
        services: &services,
        cluster: rules.cluster,
        overrides: Some(&rules.overrides),
    };
    snapshot
        .objects
        .iter()
        .map(|tracked| match &tracked.object {
            None => Status::new(
                State::InProgress,
                "NotFound",
                "the object does not exist in the cluster",
            ),
            Some(object) => rules::evaluate(object, &related)
                .unwrap_or_else(|e| Status::new(State::Unknown, "RuleError", e.to_string())),
        })
        .collect()
}

/// Fails the statuses that [`Status::fails_when_alone`] and have been
/// alone for [`ALONE_WINDOW`] at `now`: every other object of the
/// component is Ready (or is a Service they call, or alone too), and the
/// window has passed since the last thing that could have changed them —
/// their own creation, the creation of the Services they call, a pod of
/// the component becoming Ready.
fn fail_the_lonely(snapshot: &Snapshot, statuses: &mut [Status], now: Timestamp) {
    let lonely: Vec<usize> = (0..statuses.len())
        .filter(|&i| statuses[i].fails_when_alone && statuses[i].state == State::InProgress)
        .collect();
    if lonely.is_empty() || snapshot.related_pending {
        return;
    }
    let called: BTreeSet<(String, String)> = lonely
        .iter()
        .filter_map(|&i| snapshot.objects[i].object.as_ref())
        .flat_map(rules::called_services)
        .map(|c| (c.namespace, c.name))
        .collect();
    let is_called = |t: &Tracked| {
        t.resource.kind == "Service"
            && t.resource
                .namespace
                .as_ref()
                .is_some_and(|ns| called.contains(&(ns.clone(), t.resource.name.clone())))
    };
    let others_ready = snapshot.objects.iter().zip(statuses.iter()).all(|(t, s)| {
        s.is_ready() || (s.fails_when_alone && s.state == State::InProgress) || is_called(t)
    });
    if !others_ready {
        return;
    }
    let created = |object: &serde_json::Value| {
        object
            .pointer("/metadata/creationTimestamp")
            .and_then(serde_json::Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let services = snapshot.all_services();
    let mut since: Vec<Timestamp> = snapshot.watched_since.into_iter().collect();
    since.extend(services.iter().filter_map(|s| {
        let key = (s.metadata.namespace.clone()?, s.metadata.name.clone()?);
        called
            .contains(&key)
            .then(|| s.metadata.creation_timestamp.as_ref().map(|t| t.0))?
    }));
    since.extend(snapshot.workload_pods().filter_map(|p| {
        p.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == "True")?
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
    }));
    for &i in &lonely {
        let Some(own) = snapshot.objects[i].object.as_ref().and_then(created) else {
            continue;
        };
        let latest = since.iter().copied().fold(own, Timestamp::max);
        let alone_for = now.duration_since(latest);
        if alone_for
            >= k8s_openapi::jiff::SignedDuration::try_from(ALONE_WINDOW).unwrap_or_default()
        {
            let s = &mut statuses[i];
            s.state = State::Failed;
            s.message = format!(
                "{} (still so {} after the rest of the component was Ready)",
                s.message,
                crate::readiness::human(ALONE_WINDOW)
            );
        }
    }
}

/// [`judge`], reading the objects by `rules` and knowing which containers
/// restarted since the component was Ready.
pub fn judge_restarted(
    snapshot: &Snapshot,
    now: Timestamp,
    tolerance: &Tolerance,
    rules: &Rules,
    restarted: &Restarted,
) -> Judgement {
    let mut verdicts = Vec::new();
    let mut rows = Vec::new();
    let mut failed = false;
    let mut statuses = statuses(snapshot, rules);
    fail_the_lonely(snapshot, &mut statuses, now);
    let notes = statuses
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.note.clone()?)))
        .collect();
    for (index, (tracked, status)) in snapshot.objects.iter().zip(&statuses).enumerate() {
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
            if status.is_ready() && (restarted.is_empty() || tracked.pods_finish()) {
                continue;
            }
            for verdict in classify_pod_restarted(pod, &snapshot.events, now, tolerance, &restarted)
            {
                if dooms(tracked.pods_finish(), pod, &verdict) {
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
            let mut row = unready_row(&tracked.resource, status, &own);
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
    }
    verdicts.sort_by_key(|v| v.verdict.rank());
    // What failed leads the table (and the summary); the rest keep the
    // apply order.
    rows.sort_by_key(|r| r.state != State::Failed);
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
        notes,
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

    /// The captured webhook that calls `r22/hook`, with that Service and
    /// no endpoint at all (as when its selector matches nothing).
    fn lonely_webhook() -> Vec<Tracked> {
        let webhook = fixture("webhook/validatingwebhookconfiguration.r22-served.json");
        let service = fixture("webhook/service.hook.json");
        let track = |object: Value, ns: Option<&str>| Tracked {
            resource: ResourceRef {
                kind: object["kind"].as_str().unwrap().into(),
                namespace: ns.map(Into::into),
                name: object["metadata"]["name"].as_str().unwrap().into(),
            },
            pods: Vec::new(),
            object: Some(object),
        };
        vec![track(service, Some("r22")), track(webhook, None)]
    }

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn a_webhook_whose_service_gets_no_endpoint_fails_once_nothing_else_is_on_its_way() {
        // Both were created at 06:12:23.
        let snapshot = Snapshot {
            objects: lonely_webhook(),
            ..Snapshot::default()
        };
        let tolerance = Tolerance::default();
        let early = judge(&snapshot, at("2026-12-07T06:12:30Z"), &tolerance);
        assert_eq!(early.outcome, Outcome::Pending, "{:?}", early.rows);
        let late = judge(&snapshot, at("2026-12-07T06:12:34Z"), &tolerance);
        assert_eq!(late.outcome, Outcome::Failed, "{:?}", late.rows);
        // The verdict leads the table: the Service's own row only says why.
        assert_eq!(
            late.rows[0].resource,
            "ValidatingWebhookConfiguration/r22-served"
        );
        assert_eq!(late.rows[0].reason, "WebhookServiceUnavailable");
        assert!(
            late.rows[0]
                .evidence
                .contains("(still so 10s after the rest of the component was Ready)"),
            "{:?}",
            late.rows
        );
        assert_eq!(late.rows[1].reason, "NoEndpoints");
        // While the Services and their endpoints are still being listed,
        // "none" is not known yet.
        let listing = Snapshot {
            related_pending: true,
            ..snapshot.clone()
        };
        let j = judge(&listing, at("2026-12-07T07:00:00Z"), &tolerance);
        assert_eq!(j.outcome, Outcome::Pending, "{:?}", j.rows);
        // Re-applied an hour later: the window counts from the watch's start.
        let again = Snapshot {
            watched_since: Some(at("2026-12-07T07:12:23Z")),
            ..snapshot
        };
        let j = judge(&again, at("2026-12-07T07:12:30Z"), &tolerance);
        assert_eq!(j.outcome, Outcome::Pending, "{:?}", j.rows);
        let j = judge(&again, at("2026-12-07T07:12:33Z"), &tolerance);
        assert_eq!(j.outcome, Outcome::Failed, "{:?}", j.rows);
    }

    #[test]
    fn a_webhook_waits_while_a_workload_of_its_component_is_on_its_way() {
        let mut deployment = fixture("deploy-healthy/deployment.web.json");
        deployment["status"]["readyReplicas"] = Value::from(0);
        deployment["status"]["availableReplicas"] = Value::from(0);
        let mut objects = lonely_webhook();
        objects.push(tracked(deployment, vec![]));
        let snapshot = Snapshot {
            objects,
            ..Snapshot::default()
        };
        let j = judge(&snapshot, at("2026-12-07T07:00:00Z"), &Tolerance::default());
        assert_eq!(j.outcome, Outcome::Pending, "{:?}", j.rows);
    }

    #[test]
    fn the_window_starts_again_when_a_pod_of_the_component_becomes_ready() {
        // A pod Ready at 14:16:47 (a capture of another day), the webhook
        // created long before: the window counts from the pod.
        let mut objects = lonely_webhook();
        objects[1].object.as_mut().unwrap()["metadata"]["creationTimestamp"] =
            Value::from("2026-11-22T14:00:00Z");
        objects[0].object.as_mut().unwrap()["metadata"]["creationTimestamp"] =
            Value::from("2026-11-22T14:00:00Z");
        objects.push(tracked(
            fixture("deploy-healthy/deployment.web.json"),
            vec![fixture("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json")],
        ));
        let snapshot = Snapshot {
            objects,
            ..Snapshot::default()
        };
        let tolerance = Tolerance::default();
        let soon = judge(&snapshot, at("2026-11-22T14:16:55Z"), &tolerance);
        assert_eq!(soon.outcome, Outcome::Pending, "{:?}", soon.rows);
        let later = judge(&snapshot, at("2026-11-22T14:16:58Z"), &tolerance);
        assert_eq!(later.outcome, Outcome::Failed, "{:?}", later.rows);
    }

    #[test]
    fn notes_of_objects_that_do_not_block_are_collected() {
        let pdb = fixture("pdb/poddisruptionbudget.strict.json");
        let snapshot = Snapshot {
            objects: vec![Tracked {
                resource: ResourceRef {
                    kind: "PodDisruptionBudget".into(),
                    namespace: Some("r22".into()),
                    name: "strict".into(),
                },
                object: Some(pdb),
                pods: vec![],
            }],
            ..Snapshot::default()
        };
        let j = judge(&snapshot, now(), &Tolerance::default());
        assert_eq!(j.outcome, Outcome::Ready);
        assert_eq!(
            notes(&j, &snapshot),
            [
                "PodDisruptionBudget/r22/strict: 1 of 2 desired healthy pods: every eviction is refused (a node drain would block)"
            ]
        );
    }
}
