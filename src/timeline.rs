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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub pod: String,
    pub container: Option<String>,
    /// `OOMKilled`, `Crashed`, `Exited`, `Evicted`, `NotReady`, `Ready`, `Deleted`.
    pub what: &'static str,
    pub detail: String,
}

#[derive(Default)]
struct PodMemory {
    terminations: BTreeSet<String>,
    ready: Option<bool>,
    was_ready: bool,
    evicted: bool,
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
            for t in terminated.into_iter().flatten() {
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
                });
            }
        }
        if status.reason.as_deref() == Some("Evicted") && !memory.evicted {
            memory.evicted = true;
            incidents.push(Incident {
                pod: name.clone(),
                container: None,
                what: "Evicted",
                detail: status.message.clone().unwrap_or_default(),
            });
        }
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status == "True");
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
                        container: None,
                        what: "NotReady",
                        detail: why,
                    });
                }
                (Some(false), true) if memory.was_ready => {
                    incidents.push(Incident {
                        pod: name.clone(),
                        container: None,
                        what: "Ready",
                        detail: "ready again".into(),
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
            container: None,
            what: "Deleted",
            detail: "the pod was deleted".into(),
        }
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

/// Watches the lane's pods and reports what the infrastructure does, as
/// [`Event::Infra`], until aborted. The pods as they are when the watch
/// starts are the baseline: only what happens afterwards is reported.
pub fn watch_infrastructure(
    client: kube::Client,
    namespaces: Vec<String>,
    workloads: BTreeMap<String, String>,
    bus: Bus,
) -> tokio::task::JoinHandle<()> {
    use futures_util::StreamExt as _;
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::watcher;
    tokio::spawn(async move {
        let streams = namespaces.into_iter().map(|ns| {
            let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &ns);
            watcher::watcher(api, watcher::Config::default()).boxed()
        });
        let mut events = futures_util::stream::select_all(streams);
        let mut tracker = crate::timeline::Tracker::new();
        while let Some(event) = events.next().await {
            let incidents = match event {
                Ok(watcher::Event::InitApply(pod)) => {
                    tracker.observe(&pod);
                    continue;
                }
                Ok(watcher::Event::Apply(pod)) => tracker
                    .observe(&pod)
                    .into_iter()
                    .map(|i| (i, pod.clone()))
                    .collect::<Vec<_>>(),
                Ok(watcher::Event::Delete(pod)) => vec![(tracker.deleted(&pod), pod)],
                Ok(_) => continue,
                // The watcher retries by itself; a gap in the timeline is
                // not worth failing the run for.
                Err(_) => continue,
            };
            for (incident, pod) in incidents {
                let component = component_of(&pod, &workloads).unwrap_or_else(|| "-".into());
                let detail = match &incident.container {
                    Some(c) => format!("container {c}: {}", incident.detail),
                    None => incident.detail.clone(),
                };
                bus.emit(Event::Infra {
                    component,
                    pod: incident.pod,
                    what: incident.what.to_string(),
                    detail,
                });
            }
        }
    })
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
