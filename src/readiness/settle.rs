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
