//! Whether readiness held: what a component's pods looked like when it
//! became Ready, and what changed since.
//!
//! A Deployment whose container crashes three seconds after it starts is
//! `Available=True` for those three seconds, then `False`, then `True` again
//! after the restart: the first `True` proves nothing. So the waiter takes a
//! [`Baseline`] of the pods when the component's objects are first Ready and
//! every pod is, and counts the component Ready only when its settle window
//! passes with [`Baseline::changes`] empty. The comparison is against the
//! baseline, not the previous event, because the kubelet may report a
//! restart and the container's new Ready in one status update (or a watch
//! reconnect may skip the NotReady in between): a restart count or a
//! `lastState.terminated` that differs from the baseline is a restart
//! whatever the events in between said. The same baseline, taken again when
//! the window ends, is what the waiter keeps watching until the suites
//! start.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

use super::classify::ContainerRef;
use super::conditions::{self, Condition};
use super::rules::is_job_pod;

/// A pod that counts for readiness: not being deleted, not finished
/// (a Job's pods and evicted pods end in Succeeded/Failed and stay listed).
pub fn is_live(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() || is_job_pod(pod) {
        return false;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether the pod's `Ready` condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    let conds = pod.status.as_ref().and_then(|s| s.conditions.as_deref());
    conditions::find(conds, "Ready").is_some_and(|c| c.status() == "True")
}

/// Whether every live pod is Ready: with the objects' own status (which
/// lags behind the pods by one controller round trip), the condition for a
/// settle window to start.
pub fn all_ready<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> bool {
    pods.into_iter().filter(|p| is_live(p)).all(pod_ready)
}

/// Since when the pods' readiness has held by their own record: the latest
/// `Ready` transition among the live pods, when every one of them is Ready
/// with a transition time and none of their containers ended or started
/// again after its pod's transition. `None` when there are no live pods or
/// any of them says otherwise: then nothing is credited, and the settle
/// window is waited out whole. Times are the API server's, to the second.
pub fn held_since<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Option<Timestamp> {
    let mut latest: Option<Timestamp> = None;
    for pod in pods.into_iter().filter(|p| is_live(p)) {
        let conds = pod.status.as_ref()?.conditions.as_deref();
        let ready = conditions::find(conds, "Ready")?;
        if ready.status() != "True" {
            return None;
        }
        let since = ready.last_transition()?;
        for (init, cs) in statuses(pod) {
            if init {
                continue;
            }
            let state = cs.state.as_ref();
            if state.is_some_and(|s| s.terminated.is_some() || s.waiting.is_some()) {
                return None;
            }
            let started = state
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref())
                .map(|t| t.0);
            let ended = cs
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.finished_at.as_ref())
                .map(|t| t.0);
            if started.is_some_and(|t| t > since) || ended.is_some_and(|t| t > since) {
                return None;
            }
        }
        latest = Some(latest.map_or(since, |l| l.max(since)));
    }
    latest
}

/// One container as it was when readiness started.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ContainerSeen {
    restarts: i32,
    /// `lastState.terminated`, identified by its container ID or finish time.
    last_terminated: Option<(Option<String>, Option<Timestamp>)>,
    terminated_now: bool,
}

/// One pod as it was when readiness started.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PodSeen {
    name: String,
    ready: bool,
    containers: BTreeMap<(bool, String), ContainerSeen>,
}

/// The pods of a component at the moment its readiness started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baseline {
    pods: BTreeMap<String, PodSeen>,
}

/// What changed since the baseline: a reason the readiness did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disturbance {
    /// The pod's uid.
    pub pod_uid: String,
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The container, when the change is a container's.
    pub container: Option<ContainerRef>,
    /// Whether the container restarted (its restart count or last
    /// termination changed): what the doomed classification looks at.
    pub restarted: bool,
    /// The change in words, e.g. `container app restarted (restarts 1 → 2;
    /// last exit 3, Error)`.
    pub what: String,
}

fn pod_key(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_else(|| pod_name(pod))
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn statuses(pod: &Pod) -> impl Iterator<Item = (bool, &ContainerStatus)> {
    let status = pod.status.as_ref();
    let init = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|c| (true, c));
    let app = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|c| (false, c));
    init.chain(app)
}

fn seen(cs: &ContainerStatus) -> ContainerSeen {
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    ContainerSeen {
        restarts: cs.restart_count,
        last_terminated: last
            .map(|t| (t.container_id.clone(), t.finished_at.as_ref().map(|f| f.0))),
        terminated_now: cs.state.as_ref().is_some_and(|s| s.terminated.is_some()),
    }
}

impl Baseline {
    /// The live pods among `pods` as they are now.
    pub fn of<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Self {
        let pods = pods
            .into_iter()
            .filter(|p| is_live(p))
            .map(|pod| {
                let containers = statuses(pod)
                    .map(|(init, cs)| ((init, cs.name.clone()), seen(cs)))
                    .collect();
                (
                    pod_key(pod),
                    PodSeen {
                        name: pod_name(pod),
                        ready: pod_ready(pod),
                        containers,
                    },
                )
            })
            .collect();
        Self { pods }
    }

    /// What changed in `pods` since the baseline: restarts, new terminations,
    /// pods that lost Ready or went away. Pods that appeared since are not
    /// changes by themselves ([`all_ready`] says whether they are Ready).
    pub fn changes<'a>(&self, pods: impl IntoIterator<Item = &'a Pod>) -> Vec<Disturbance> {
        let now: BTreeMap<String, &Pod> = pods.into_iter().map(|p| (pod_key(p), p)).collect();
        let mut out = Vec::new();
        for (uid, before) in &self.pods {
            let disturbance =
                |container: Option<ContainerRef>, restarted: bool, what: String| Disturbance {
                    pod_uid: uid.clone(),
                    pod: before.name.clone(),
                    container,
                    restarted,
                    what,
                };
            let Some(pod) = now.get(uid).filter(|p| is_live(p)) else {
                let why = match now.get(uid) {
                    Some(p) if p.metadata.deletion_timestamp.is_some() => "is being deleted",
                    Some(_) => "ended",
                    None => "went away",
                };
                out.push(disturbance(
                    None,
                    false,
                    format!("pod {} {why}", before.name),
                ));
                continue;
            };
            let mut restarted_any = false;
            for (init, cs) in statuses(pod) {
                let Some(was) = before.containers.get(&(init, cs.name.clone())) else {
                    continue;
                };
                let is = seen(cs);
                let cref = ContainerRef {
                    name: cs.name.clone(),
                    init,
                };
                let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                let exit = |t: Option<&k8s_openapi::api::core::v1::ContainerStateTerminated>| {
                    t.map(|t| {
                        format!(
                            "exit {}, {}",
                            t.exit_code,
                            t.reason.as_deref().unwrap_or("Error")
                        )
                    })
                };
                if is.restarts != was.restarts || is.last_terminated != was.last_terminated {
                    restarted_any = true;
                    let last = exit(last)
                        .map(|e| format!("; last {e}"))
                        .unwrap_or_default();
                    out.push(disturbance(
                        Some(cref),
                        true,
                        format!(
                            "{} restarted (restarts {} → {}{last})",
                            ContainerRef {
                                name: cs.name.clone(),
                                init,
                            },
                            was.restarts,
                            is.restarts
                        ),
                    ));
                } else if is.terminated_now && !was.terminated_now {
                    restarted_any = true;
                    let current = cs.state.as_ref().and_then(|s| s.terminated.as_ref());
                    let how = exit(current).unwrap_or_default();
                    out.push(disturbance(
                        Some(cref),
                        true,
                        format!(
                            "{} terminated ({how})",
                            ContainerRef {
                                name: cs.name.clone(),
                                init,
                            }
                        ),
                    ));
                }
            }
            if before.ready && !pod_ready(pod) && !restarted_any {
                out.push(disturbance(
                    None,
                    false,
                    format!("pod {} lost Ready", before.name),
                ));
            }
        }
        out
    }
}

/// The containers that restarted among `changes`, as `(pod uid, container)`:
/// what the doomed classification is asked about even while they are Ready
/// again.
pub fn restarted(changes: &[Disturbance]) -> BTreeSet<(String, ContainerRef)> {
    changes
        .iter()
        .filter(|d| d.restarted)
        .filter_map(|d| Some((d.pod_uid.clone(), d.container.clone()?)))
        .collect()
}

#[cfg(test)]
mod held_tests {
    use super::*;

    fn pod(path: &str) -> Pod {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/k8s")
            .join(path);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn healthy() -> Pod {
        pod("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn with(pod: &Pod, edit: impl FnOnce(&mut serde_json::Value)) -> Pod {
        let mut v = serde_json::to_value(pod).unwrap();
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_ready_pod_has_held_since_its_ready_transition() {
        // Captured on the 1.20 test cluster: started 14:16:45, Ready 14:16:47.
        assert_eq!(held_since([&healthy()]), Some(at("2026-11-22T14:16:47Z")));
    }

    #[test]
    fn several_pods_have_held_since_the_latest_of_them_became_ready() {
        let later = with(&healthy(), |v| {
            v["metadata"]["uid"] = "other".into();
            v["status"]["conditions"][1]["lastTransitionTime"] = "2026-11-22T14:17:30Z".into();
        });
        assert_eq!(
            held_since([&healthy(), &later]),
            Some(at("2026-11-22T14:17:30Z"))
        );
    }

    #[test]
    fn nothing_is_credited_where_a_pod_says_otherwise() {
        // Not Ready (the captured crash loop), and no pods at all.
        assert_eq!(held_since([&pod("pod-crashloop/pod.crashloop.json")]), None);
        assert_eq!(held_since(std::iter::empty::<&Pod>()), None);
        // A container that ended after the pod's Ready transition (a status
        // caught between the crash and the kubelet's NotReady).
        let crashed_since = with(&healthy(), |v| {
            v["status"]["containerStatuses"][0]["restartCount"] = 1.into();
            v["status"]["containerStatuses"][0]["lastState"] = serde_json::json!({
                "terminated": {"exitCode": 3, "reason": "Error",
                               "startedAt": "2026-11-22T14:16:45Z",
                               "finishedAt": "2026-11-22T14:16:50Z"}});
        });
        assert_eq!(held_since([&crashed_since]), None);
        // One that started again after it.
        let restarted = with(&healthy(), |v| {
            v["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] =
                "2026-11-22T14:16:52Z".into();
        });
        assert_eq!(held_since([&restarted]), None);
        // Ready without a transition time: nothing to count from.
        let untimed = with(&healthy(), |v| {
            v["status"]["conditions"][1]
                .as_object_mut()
                .unwrap()
                .remove("lastTransitionTime");
        });
        assert_eq!(held_since([&untimed]), None);
    }

    #[test]
    fn a_restart_before_the_ready_transition_is_history() {
        // Crashed once at 14:16:40, Ready again since 14:16:47.
        let recovered = with(&healthy(), |v| {
            v["status"]["containerStatuses"][0]["restartCount"] = 1.into();
            v["status"]["containerStatuses"][0]["lastState"] = serde_json::json!({
                "terminated": {"exitCode": 3, "reason": "Error",
                               "startedAt": "2026-11-22T14:16:38Z",
                               "finishedAt": "2026-11-22T14:16:40Z"}});
        });
        assert_eq!(held_since([&recovered]), Some(at("2026-11-22T14:16:47Z")));
    }
}
