//! What an unready pod is waiting on, in words: the other half of a
//! deadline report.
//!
//! A verdict ([`super::classify`]) says a pod will not become Ready. When
//! the deadline comes without one, the pod is still on its way, and "timed
//! out" is not an answer: the report names the step it is stuck in, e.g.
//! `init container wait-for-db still running after 1m`, `container app
//! running for 40s but not Ready (readiness probe GET http://:8080/ready)`,
//! or `not scheduled yet: 0/1 nodes are available: ...`. Pure: the pod and
//! the time are all it needs (the caller adds the container's last log line).

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, Probe};
use k8s_openapi::jiff::Timestamp;

use super::classify::{ContainerRef, describe_probe, elapsed};
use super::conditions::{self, Condition};
use super::human;

/// The step an unready pod is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    /// The container it waits on, if the step is a container's.
    pub container: Option<ContainerRef>,
    /// The step in words.
    pub what: String,
}

fn ran_for(since: Option<Timestamp>, now: Timestamp) -> String {
    since.map_or_else(String::new, |t| {
        format!(" after {}", human(elapsed(t, now)))
    })
}

fn container_wait(
    cs: &ContainerStatus,
    init: bool,
    probe: Option<&Probe>,
    now: Timestamp,
) -> Option<Wait> {
    let cref = ContainerRef {
        name: cs.name.clone(),
        init,
    };
    let state = cs.state.clone().unwrap_or_default();
    let what = if let Some(t) = &state.terminated {
        if init && t.exit_code == 0 {
            return None;
        }
        format!(
            "{cref} terminated (exit {}, {})",
            t.exit_code,
            t.reason.as_deref().unwrap_or("Error")
        )
    } else if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or("waiting");
        match w.message.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => format!("{cref} waiting: {reason} ({m})"),
            _ => format!("{cref} waiting: {reason}"),
        }
    } else if let Some(r) = &state.running {
        let since = r.started_at.as_ref().map(|t| t.0);
        if init {
            format!("{cref} still running{}", ran_for(since, now))
        } else if cs.ready {
            return None;
        } else {
            let probe = probe.map(describe_probe).map_or_else(
                || " (it has no readiness probe)".to_owned(),
                |p| format!(" (readiness probe {p})"),
            );
            let running =
                since.map_or_else(String::new, |t| format!(" for {}", human(elapsed(t, now))));
            format!("{cref} running{running} but not Ready{probe}")
        }
    } else if cs.ready {
        return None;
    } else {
        format!("{cref} not started yet")
    };
    Some(Wait {
        container: Some(cref),
        what,
    })
}

/// What `pod` waits on at `now`; `None` when it is Ready or finished.
pub fn waiting_on(pod: &Pod, now: Timestamp) -> Option<Wait> {
    let pod_level = |what: String| {
        Some(Wait {
            container: None,
            what,
        })
    };
    if let Some(t) = &pod.metadata.deletion_timestamp {
        return pod_level(format!("pod is being deleted{}", ran_for(Some(t.0), now)));
    }
    let Some(status) = pod.status.as_ref() else {
        return pod_level("pod has no status yet".to_owned());
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if phase == "Succeeded" {
        return None;
    }
    let conds = status.conditions.as_deref();
    match conditions::find(conds, "PodScheduled") {
        Some(c) if c.status() != "True" => {
            let why = match c.message() {
                "" => c.reason().to_owned(),
                m => m.to_owned(),
            };
            return pod_level(format!(
                "pod not scheduled{}: {why}",
                ran_for(c.last_transition(), now)
            ));
        }
        None if status.container_statuses.is_none() => {
            return pod_level("pod not scheduled yet".to_owned());
        }
        _ => {}
    }
    let spec = pod.spec.as_ref();
    let init_specs = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    for cs in status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default()
    {
        // A restartable init container (a native sidecar) runs all along.
        let sidecar = init_specs
            .iter()
            .any(|c| c.name == cs.name && c.restart_policy.as_deref() == Some("Always"));
        if sidecar {
            continue;
        }
        if let Some(w) = container_wait(cs, true, None, now) {
            return Some(w);
        }
    }
    let probe = |name: &str| {
        spec.and_then(|s| s.containers.iter().find(|c| c.name == name))
            .and_then(|c| c.readiness_probe.as_ref())
    };
    for cs in status.container_statuses.as_deref().unwrap_or_default() {
        if let Some(w) = container_wait(cs, false, probe(&cs.name), now) {
            return Some(w);
        }
    }
    match conditions::find(conds, "Ready") {
        Some(c) if c.status() == "True" => None,
        Some(c) => pod_level(
            format!("pod not Ready: {} {}", c.reason(), c.message())
                .trim_end()
                .to_owned(),
        ),
        None => pod_level(format!("pod {phase}, not Ready yet")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(path: &str) -> Pod {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/k8s")
            .join(path);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn at(pod: &Pod, after: i64) -> Timestamp {
        let start = pod.status.as_ref().unwrap().start_time.as_ref().unwrap().0;
        start + k8s_openapi::jiff::SignedDuration::from_secs(after)
    }

    #[test]
    fn each_unready_pod_names_the_step_it_is_in() {
        let cases = [
            (
                "pod-init-stuck/pod.init-stuck.json",
                // The init container started 9 s after the pod.
                69,
                "init container wait-for-db still running after 1m",
            ),
            (
                "pod-readiness-failing/pod.readiness-http.json",
                40,
                "container app running for ",
            ),
            (
                "pod-unschedulable-resources/pod.too-big.json",
                20,
                "pod not scheduled after ",
            ),
            (
                "pod-image-pull-backoff/pod.pull-missing.json",
                5,
                "container app waiting: ",
            ),
        ];
        for (path, after, want) in cases {
            let p = pod(path);
            let now = p
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map_or_else(
                    || p.metadata.creation_timestamp.as_ref().unwrap().0,
                    |_| at(&p, after),
                );
            let wait = waiting_on(&p, now).unwrap_or_else(|| panic!("{path}: no wait"));
            assert!(wait.what.starts_with(want), "{path}: {}", wait.what);
        }
        let ready = pod("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json");
        assert_eq!(waiting_on(&ready, Timestamp::now()), None);
    }
}
