//! The infrastructure timeline: what the lane's pods did while suites ran.
//!
//! A watch on the lane's pods delivers successive snapshots; [`Tracker`]
//! turns them into the incidents a person debugging a cascade of failures
//! needs to see — a container that exited (OOMKilled, with its memory
//! limit, or crashed with its exit code), an eviction, a readiness flap, a
//! pod deleted. It is pure: it keeps the last snapshot per pod and compares.
//! Terminations are identified by container ID, because the kubelet writes
//! pod status in batches: a restart count can jump by two, and the same
//! termination shows first as `state.terminated` and then as
//! `lastState.terminated`; each exit must be reported exactly once.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};

use crate::config::{Lane, Project};
use crate::report::Event;
use crate::report::bus::Bus;

/// One thing the infrastructure did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Incident {
    pub pod: String,
    pub container: Option<String>,
    /// `OOMKilled`, `Crashed`, `Exited`, `Evicted`, `NotReady`, `Ready`, `Deleted`.
    pub what: &'static str,
    pub detail: String,
    /// When it happened by the kubelet's clock (the container's
    /// `finishedAt`, the Ready condition's transition), when the pod says.
    pub since: Option<jiff::Timestamp>,
    /// A container's exit code, its memory limit and restart count.
    pub exit_code: Option<i32>,
    pub limit: Option<String>,
    pub restarts: Option<i32>,
    /// Where the ended container's log is: its previous run's (`true`,
    /// it has restarted) or its current one's (it has not, yet).
    pub previous_log: bool,
}

#[derive(Default)]
struct PodMemory {
    terminations: BTreeSet<String>,
    ready: Option<bool>,
    was_ready: bool,
    evicted: bool,
    /// Created after the watch began.
    replacement: bool,
}

/// Follows pods through watch events; see the module doc.
#[derive(Default)]
pub struct Tracker {
    pods: BTreeMap<String, PodMemory>,
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn termination_id(t: &ContainerStateTerminated) -> String {
    t.container_id.clone().unwrap_or_else(|| {
        format!(
            "{:?}-{:?}",
            t.started_at.as_ref().map(|s| s.0),
            t.finished_at.as_ref().map(|s| s.0)
        )
    })
}

fn memory_limit(pod: &Pod, container: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == container)?
        .resources
        .as_ref()?
        .limits
        .as_ref()?
        .get("memory")
        .map(|q| q.0.clone())
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A pod was added or modified: the incidents since its last snapshot.
    pub fn observe(&mut self, pod: &Pod) -> Vec<Incident> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let memory = self.pods.entry(key(pod)).or_default();
        let mut incidents = Vec::new();
        let Some(status) = &pod.status else {
            return incidents;
        };
        let job_pod = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Job");
        let statuses = status
            .init_container_statuses
            .iter()
            .flatten()
            .map(|s| (s, true))
            .chain(
                status
                    .container_statuses
                    .iter()
                    .flatten()
                    .map(|s| (s, false)),
            );
        for (cs, init) in statuses {
            let terminated = [
                cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
                cs.state.as_ref().and_then(|s| s.terminated.as_ref()),
            ];
            for (t, previous_log) in terminated.into_iter().zip([true, false]) {
                let Some(t) = t else { continue };
                if !memory.terminations.insert(termination_id(t)) {
                    continue;
                }
                let reason = t.reason.as_deref().unwrap_or("Unknown");
                // A finished init container, or a Job's pod completing, is
                // the plan working, not an incident.
                if t.exit_code == 0 && (init || job_pod) {
                    continue;
                }
                let (what, detail) = if reason == "OOMKilled"
                    || (t.exit_code == 137 && memory_limit(pod, &cs.name).is_some())
                {
                    let limit = memory_limit(pod, &cs.name)
                        .map_or_else(|| "no memory limit".to_string(), |l| format!("limit {l}"));
                    (
                        "OOMKilled",
                        format!("{limit}; restarts {}", cs.restart_count),
                    )
                } else if t.exit_code == 0 {
                    (
                        "Exited",
                        format!("exit code 0 ({reason}); restarts {}", cs.restart_count),
                    )
                } else {
                    (
                        "Crashed",
                        format!(
                            "exit code {} ({reason}); restarts {}",
                            t.exit_code, cs.restart_count
                        ),
                    )
                };
                incidents.push(Incident {
                    pod: name.clone(),
                    container: Some(cs.name.clone()),
                    what,
                    detail,
                    since: t.finished_at.as_ref().map(|f| f.0),
                    exit_code: Some(t.exit_code),
                    limit: memory_limit(pod, &cs.name),
                    restarts: Some(cs.restart_count),
                    previous_log,
                });
            }
        }
        if status.reason.as_deref() == Some("Evicted") && !memory.evicted {
            memory.evicted = true;
            incidents.push(Incident {
                pod: name.clone(),
                what: "Evicted",
                detail: status.message.clone().unwrap_or_default(),
                ..Incident::default()
            });
        }
        let condition = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        let ready = condition.map(|c| c.status == "True");
        let since = condition
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0);
        if let Some(now) = ready {
            // Becoming Ready the first time is the rollout, not an incident;
            // losing it, and regaining it after that, are.
            match (memory.ready, now) {
                (Some(true), false) => {
                    let why = status
                        .conditions
                        .iter()
                        .flatten()
                        .find(|c| c.type_ == "Ready")
                        .and_then(|c| c.message.clone().or(c.reason.clone()))
                        .unwrap_or_default();
                    incidents.push(Incident {
                        pod: name.clone(),
                        what: "NotReady",
                        detail: why,
                        since,
                        ..Incident::default()
                    });
                }
                // Ready again, or a pod that replaced one: either way the
                // component is back (the pods listed when the watch began
                // were Ready or on their way, and are the rollout).
                (Some(false), true) | (None, true) if memory.was_ready || memory.replacement => {
                    incidents.push(Incident {
                        pod: name.clone(),
                        what: "Ready",
                        detail: if memory.was_ready {
                            "ready again".into()
                        } else {
                            "a new pod is Ready".into()
                        },
                        since,
                        ..Incident::default()
                    });
                }
                _ => {}
            }
            memory.was_ready |= now;
            memory.ready = Some(now);
        }
        incidents
    }

    /// A pod was deleted.
    pub fn deleted(&mut self, pod: &Pod) -> Incident {
        self.pods.remove(&key(pod));
        Incident {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            what: "Deleted",
            detail: "the pod was deleted".into(),
            ..Incident::default()
        }
    }

    /// Whether the pod was seen before.
    pub fn knows(&self, pod: &Pod) -> bool {
        self.pods.contains_key(&key(pod))
    }

    /// A pod first seen after the watch began (a replacement): its first
    /// Ready is a recovery, not the rollout.
    pub fn observe_new(&mut self, pod: &Pod) -> Vec<Incident> {
        self.pods.entry(key(pod)).or_default().replacement = true;
        self.observe(pod)
    }
}

// ------------------------------------------------------------------ in a run

/// Workload name → component, from the objects that have pods (as
/// [`crate::readiness::kinds`]' table says) in each component's rendered
/// manifests.
pub fn workloads(project: &Project, lane: &Lane) -> BTreeMap<String, String> {
    crate::deploy::manifests::rendered_objects(project, lane)
        .into_iter()
        .filter(|(_, object)| {
            object.types.as_ref().is_some_and(|t| {
                crate::readiness::kinds::of(&t.api_version, &t.kind)
                    .is_some_and(|k| k.pods != crate::readiness::kinds::Pods::None)
            })
        })
        .filter_map(|(component, object)| Some((object.metadata.name?, component)))
        .collect()
}

/// The component a pod belongs to: through its owner (a ReplicaSet's name
/// is its Deployment's plus a hash, or its own for a ReplicaSet of the
/// manifests), else its own name.
pub fn component_of(
    pod: &k8s_openapi::api::core::v1::Pod,
    workloads: &BTreeMap<String, String>,
) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let candidates: Vec<String> = match owner {
        Some(o) if o.kind == "ReplicaSet" => vec![
            o.name
                .rsplit_once('-')
                .map_or(o.name.clone(), |(d, _)| d.to_owned()),
            o.name.clone(),
        ],
        Some(o) => vec![o.name.clone()],
        None => vec![pod.metadata.name.clone().unwrap_or_default()],
    };
    candidates
        .into_iter()
        .find_map(|c| workloads.get(&c).cloned())
}

/// What makes a node unfit for the lane's pods: not Ready, or under a
/// pressure condition. Pure.
pub fn node_trouble(node: &k8s_openapi::api::core::v1::Node) -> Vec<String> {
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    conditions
        .iter()
        .filter(|c| match c.type_.as_str() {
            "Ready" => c.status != "True",
            "MemoryPressure" | "DiskPressure" | "PIDPressure" | "NetworkUnavailable" => {
                c.status == "True"
            }
            _ => false,
        })
        .map(|c| {
            let why = c.message.as_deref().or(c.reason.as_deref()).unwrap_or("");
            if c.type_ == "Ready" {
                format!("not Ready ({}): {why}", c.status)
            } else {
                format!("{}: {why}", c.type_)
            }
        })
        .collect()
}

/// Follows nodes: a node that turns unfit, and fit again.
#[derive(Default)]
pub struct NodeTracker {
    trouble: BTreeMap<String, Vec<String>>,
}

impl NodeTracker {
    /// A node was added or modified: `NodeCondition` when it turns unfit
    /// (or its trouble changes), `NodeRecovered` when it is fit again. The
    /// nodes as first listed are the baseline, like pods.
    pub fn observe(
        &mut self,
        node: &k8s_openapi::api::core::v1::Node,
        baseline: bool,
    ) -> Option<Incident> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let now = node_trouble(node);
        let before = self
            .trouble
            .insert(name.clone(), now.clone())
            .unwrap_or_default();
        if baseline || now == before {
            return None;
        }
        Some(if now.is_empty() {
            Incident {
                pod: name,
                what: "NodeRecovered",
                detail: "the node is fit again".into(),
                ..Incident::default()
            }
        } else {
            Incident {
                pod: name,
                what: "NodeCondition",
                detail: now.join("; "),
                ..Incident::default()
            }
        })
    }
}

/// Whether a failed watch means the API server could not be reached (a
/// connection refused or broken, a timeout), as opposed to a refusal it
/// answered; the reason when it does. Pure.
pub fn unreachable(error: &kube::runtime::watcher::Error) -> Option<String> {
    use kube::runtime::watcher::Error as W;
    match error {
        W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => match e {
            kube::Error::Api(_) => None,
            other => Some(crate::failure::chain_text(other)),
        },
        W::WatchError(_) | W::NoResourceVersion => None,
    }
}

/// What the watch delivers, from the pods' watches and the nodes'.
// Both variants are large and of similar size; each value is moved once
// from its stream into the match, so boxing would only add an allocation
// per event.
#[allow(clippy::large_enum_variant)]
enum Seen {
    Pod(kube::runtime::watcher::Event<Pod>),
    Node(kube::runtime::watcher::Event<k8s_openapi::api::core::v1::Node>),
}

/// Watches the lane's pods and the cluster's nodes and reports what the
/// infrastructure does, as [`Event::Infra`], until aborted: container exits
/// (with the last lines the container logged), evictions, readiness lost
/// and regained, pods deleted, nodes that turn unfit, and the API server
/// not answering the watch. The pods and nodes as they are when the watch
/// starts are the baseline: only what happens afterwards is reported.
pub fn watch_infrastructure(
    client: kube::Client,
    namespaces: Vec<String>,
    workloads: BTreeMap<String, String>,
    bus: Bus,
) -> tokio::task::JoinHandle<()> {
    use futures_util::StreamExt as _;
    use k8s_openapi::api::core::v1::Node;
    use kube::runtime::{WatchStreamExt as _, watcher};
    tokio::spawn(async move {
        let pods = namespaces.into_iter().map(|ns| {
            let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &ns);
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map(|e| e.map(Seen::Pod))
                .boxed()
        });
        let nodes: kube::Api<Node> = kube::Api::all(client.clone());
        let nodes = watcher::watcher(nodes, watcher::Config::default())
            .default_backoff()
            .map(|e| e.map(Seen::Node))
            .boxed();
        let mut events = futures_util::stream::select_all(pods.chain(std::iter::once(nodes)));
        let mut tracker = Tracker::new();
        let mut node_tracker = NodeTracker::default();
        let mut unreachable_since: Option<String> = None;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    // The watcher retries by itself (backing off); what the
                    // timeline needs is that the cluster did not answer.
                    if let Some(why) = unreachable(&e)
                        && unreachable_since.is_none()
                    {
                        emit(
                            &bus,
                            "api-server",
                            Incident {
                                pod: "api-server".into(),
                                what: "Unreachable",
                                detail: why.clone(),
                                ..Incident::default()
                            },
                            None,
                        );
                        unreachable_since = Some(why);
                    }
                    continue;
                }
            };
            if unreachable_since.take().is_some() {
                emit(
                    &bus,
                    "api-server",
                    Incident {
                        pod: "api-server".into(),
                        what: "Reachable",
                        detail: "the API server answers again".into(),
                        ..Incident::default()
                    },
                    None,
                );
            }
            let incidents = match event {
                Seen::Pod(watcher::Event::InitApply(pod)) => {
                    tracker.observe(&pod);
                    continue;
                }
                Seen::Pod(watcher::Event::Apply(pod)) => {
                    let found = if tracker.knows(&pod) {
                        tracker.observe(&pod)
                    } else {
                        tracker.observe_new(&pod)
                    };
                    found
                        .into_iter()
                        .map(|i| (i, pod.clone()))
                        .collect::<Vec<_>>()
                }
                Seen::Pod(watcher::Event::Delete(pod)) => vec![(tracker.deleted(&pod), pod)],
                Seen::Node(watcher::Event::InitApply(node)) => {
                    node_tracker.observe(&node, true);
                    continue;
                }
                Seen::Node(watcher::Event::Apply(node)) => {
                    if let Some(incident) = node_tracker.observe(&node, false) {
                        emit(&bus, "node", incident, None);
                    }
                    continue;
                }
                Seen::Pod(_) | Seen::Node(_) => continue,
            };
            for (incident, pod) in incidents {
                let component = component_of(&pod, &workloads).unwrap_or_else(|| "-".into());
                // The last lines of a container that ended: what it said
                // before it was killed (bounded, so the watch keeps up).
                let log_tail = match (&incident.container, incident.exit_code) {
                    (Some(container), Some(_)) => {
                        let fetch = last_lines(&client, &pod, container, incident.previous_log);
                        tokio::time::timeout(LOG_TAIL_BUDGET, fetch)
                            .await
                            .ok()
                            .flatten()
                    }
                    _ => None,
                };
                emit(&bus, &component, incident, log_tail);
            }
        }
    })
}

/// How long the watch waits for an ended container's log.
const LOG_TAIL_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// How many of an ended container's last log lines an incident carries.
const INCIDENT_LOG_LINES: i64 = 10;

async fn last_lines(
    client: &kube::Client,
    pod: &Pod,
    container: &str,
    previous: bool,
) -> Option<String> {
    let namespace = pod.metadata.namespace.as_deref()?;
    let name = pod.metadata.name.as_deref()?;
    let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let params = kube::api::LogParams {
        container: Some(container.to_owned()),
        previous,
        tail_lines: Some(INCIDENT_LOG_LINES),
        ..kube::api::LogParams::default()
    };
    let answer = api.logs(name, &params).await.map_err(|e| e.to_string());
    crate::k8s::evidence::LogText::from_answer(answer)
        .text()
        .map(|t| t.trim_end().to_owned())
        .filter(|t| !t.is_empty())
}

fn emit(bus: &Bus, component: &str, incident: Incident, log_tail: Option<String>) {
    let detail = match &incident.container {
        Some(c) => format!("container {c}: {}", incident.detail),
        None => incident.detail.clone(),
    };
    let evidence = crate::report::InfraEvidence {
        since: incident.since,
        container: incident.container,
        exit_code: incident.exit_code,
        limit: incident.limit,
        restarts: incident.restarts,
        log_tail,
    };
    bus.emit(Event::Infra {
        component: component.to_owned(),
        pod: incident.pod,
        what: incident.what.to_string(),
        detail,
        evidence: (!evidence.is_empty()).then(|| Box::new(evidence)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/k8s")
                .join(path),
        )
        .unwrap()
    }

    /// Replays a captured watch stream through a tracker.
    fn replay(stream: &str) -> Vec<Incident> {
        let mut tracker = Tracker::new();
        let mut out = Vec::new();
        for line in fixture(stream).lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            let kind = event["type"].as_str().unwrap();
            if kind == "BOOKMARK" {
                continue;
            }
            let pod: Pod = serde_json::from_value(event["object"].clone()).unwrap();
            match kind {
                "DELETED" => out.push(tracker.deleted(&pod)),
                _ => out.extend(tracker.observe(&pod)),
            }
        }
        out
    }

    #[test]
    fn crash_loop_watch_reports_every_exit_once() {
        let incidents = replay("watch/crashloop.watch.ndjson");
        // Five distinct container IDs exit with code 1 in the capture,
        // although the restart count only reaches 4 and the same exits
        // reappear as lastState in later snapshots.
        assert_eq!(incidents.len(), 5, "{incidents:#?}");
        assert!(
            incidents
                .iter()
                .all(|i| i.what == "Crashed" && i.detail.starts_with("exit code 1 (Error)"))
        );
        assert_eq!(
            incidents.last().unwrap().detail,
            "exit code 1 (Error); restarts 4"
        );
    }

    #[test]
    fn a_rollout_becoming_ready_is_not_an_incident() {
        assert_eq!(replay("watch/deployment.watch.ndjson"), vec![]);
    }

    #[test]
    fn oom_kill_reports_the_memory_limit() {
        let pod: Pod = serde_json::from_str(&fixture("pod-oomkilled/pod.oom.json")).unwrap();
        let incidents = Tracker::new().observe(&pod);
        let oom: Vec<&Incident> = incidents.iter().filter(|i| i.what == "OOMKilled").collect();
        assert_eq!(oom.len(), 1, "{incidents:#?}");
        assert!(oom[0].detail.starts_with("limit 32Mi"), "{}", oom[0].detail);
    }

    #[test]
    fn readiness_flap_and_recovery_are_incidents() {
        let ready: Pod =
            serde_json::from_str(&fixture("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json")).unwrap();
        let mut not_ready = ready.clone();
        for c in not_ready
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()
        {
            if c.type_ == "Ready" {
                c.status = "False".into();
                c.message = Some("containers with unready status: [web]".into());
            }
        }
        let mut t = Tracker::new();
        assert!(t.observe(&ready).is_empty());
        let flap = t.observe(&not_ready);
        assert_eq!(flap.len(), 1);
        assert_eq!(flap[0].what, "NotReady");
        assert_eq!(flap[0].detail, "containers with unready status: [web]");
        assert_eq!(t.observe(&ready)[0].what, "Ready");
        assert!(t.observe(&ready).is_empty(), "no change, no incident");
        assert_eq!(t.deleted(&ready).what, "Deleted");
    }

    #[test]
    fn an_oom_kill_carries_when_it_happened_its_exit_code_and_limit() {
        let pod: Pod = serde_json::from_str(&fixture("pod-oomkilled/pod.oom.json")).unwrap();
        let incidents = Tracker::new().observe(&pod);
        let oom = incidents.iter().find(|i| i.what == "OOMKilled").unwrap();
        assert_eq!(oom.exit_code, Some(137));
        assert_eq!(oom.limit.as_deref(), Some("32Mi"));
        assert!(oom.since.is_some(), "the kubelet's finishedAt");
        assert!(oom.restarts.is_some());
    }

    #[test]
    fn a_replacement_pod_becoming_ready_is_a_recovery() {
        let ready: Pod =
            serde_json::from_str(&fixture("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json")).unwrap();
        let mut t = Tracker::new();
        // Listed when the watch began: the rollout.
        assert!(t.observe(&ready).is_empty());
        assert!(t.knows(&ready));
        let mut new = ready.clone();
        new.metadata.name = Some("web-57f64b4f4d-new".into());
        assert!(!t.knows(&new));
        let back = t.observe_new(&new);
        assert_eq!(back.len(), 1, "{back:#?}");
        assert_eq!(
            (back[0].what, back[0].detail.as_str()),
            ("Ready", "a new pod is Ready")
        );
        assert!(t.observe(&new).is_empty(), "once");
    }

    #[test]
    fn unfit_nodes_and_their_recovery_are_incidents() {
        let node = |conditions: serde_json::Value| -> k8s_openapi::api::core::v1::Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "audit-e2e-worker"},
                "status": {"conditions": conditions},
            }))
            .unwrap()
        };
        let fit = node(serde_json::json!([
            {"type": "Ready", "status": "True"},
            {"type": "MemoryPressure", "status": "False"},
        ]));
        let pressed = node(serde_json::json!([
            {"type": "Ready", "status": "True"},
            {"type": "MemoryPressure", "status": "True", "message": "kubelet has insufficient memory available"},
        ]));
        let lost = node(
            serde_json::json!([{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]),
        );
        assert!(node_trouble(&fit).is_empty());
        assert_eq!(
            node_trouble(&pressed),
            ["MemoryPressure: kubelet has insufficient memory available"]
        );
        assert_eq!(
            node_trouble(&lost),
            ["not Ready (Unknown): NodeStatusUnknown"]
        );
        let mut t = NodeTracker::default();
        // The baseline is not an incident, even an unfit one.
        assert_eq!(t.observe(&pressed, true), None);
        let back = t.observe(&fit, false).unwrap();
        assert_eq!(
            (back.what, back.pod.as_str()),
            ("NodeRecovered", "audit-e2e-worker")
        );
        assert_eq!(t.observe(&fit, false), None, "no change, no incident");
        assert_eq!(t.observe(&lost, false).unwrap().what, "NodeCondition");
    }

    #[test]
    fn only_a_cluster_that_does_not_answer_is_unreachable() {
        use kube::runtime::watcher::Error as W;
        let refused = || {
            kube::Error::Service(Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            )))
        };
        assert!(
            unreachable(&W::WatchFailed(refused()))
                .is_some_and(|w| w.contains("connection refused"))
        );
        assert!(unreachable(&W::InitialListFailed(refused())).is_some());
        let forbidden = kube::Error::Api(
            kube::core::Status::failure("pods is forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        );
        assert_eq!(unreachable(&W::WatchStartFailed(forbidden)), None);
        assert_eq!(unreachable(&W::NoResourceVersion), None);
    }

    #[test]
    fn completed_job_pods_and_init_containers_are_not_incidents() {
        let job_pod: Pod =
            serde_json::from_str(&fixture("job-complete/pod.job-ok-sf7rk.json")).unwrap();
        assert_eq!(Tracker::new().observe(&job_pod), vec![]);
    }
}

#[cfg(test)]
mod watch_tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn workload_names_are_read_as_deployed_placeholders_filled() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("web.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web-{{lane}}}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: {{image.web}}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("harness.yaml"),
            "images:\n  web: {pull: example.com/web:1}\ncomponents:\n  web: {manifests: [web.yaml], images: [web]}\nlanes:\n  audit: {components: [web]}\n",
        )
        .unwrap();
        let project = crate::config::load(&dir.path().join("harness.yaml"))
            .unwrap_or_else(|e| panic!("{}", e.rendered().unwrap_or_default()));
        let map = workloads(&project, &project.lanes["audit"]);
        assert_eq!(
            map,
            BTreeMap::from([("web-audit".to_owned(), "web".to_owned())])
        );
    }

    #[test]
    fn pods_map_to_components_through_their_owners() {
        let project =
            crate::config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("harness.yaml"))
                .unwrap();
        let lane = &project.lanes["audit"];
        let map = workloads(&project, lane);
        assert_eq!(
            map.get("datastorage").map(String::as_str),
            Some("datastorage")
        );
        assert_eq!(
            map.get("audit-migrations").map(String::as_str),
            Some("migrations")
        );
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "datastorage-7d9f8c-x2x", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "datastorage-7d9f8c", "uid": "u", "controller": true}
            ]}
        }))
        .unwrap();
        assert_eq!(component_of(&pod, &map).as_deref(), Some("datastorage"));
        let job_pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "audit-migrations-abcde", "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "audit-migrations", "uid": "u", "controller": true}
            ]}
        }))
        .unwrap();
        assert_eq!(component_of(&job_pod, &map).as_deref(), Some("migrations"));
        let stray: k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "debug"}})).unwrap();
        assert_eq!(component_of(&stray, &map), None);
    }
}
