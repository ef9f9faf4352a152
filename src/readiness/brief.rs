//! What an unready pod is doing, in a few words, for a live progress line.
//!
//! [`super::waiting`] names the step a pod is stuck in for a report, in a
//! sentence; a progress line has room for a few words and a clock:
//! `ContainerCreating 4s`, `pulling harness/datastorage:7f3a`, `readiness
//! probe failing 3x`, `waiting on init container migrate`, `restarted 1x`.
//! The clock is not in the words: [`Brief::since`] says when the step began
//! and the renderer counts, so the brief of a pod that sits still does not
//! change, and only changes are sent. Pure: the pod, its events and `now`.

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};

use super::Timestamp;
use super::classify::{event_time, is_about};
use super::conditions::{self, Condition};

/// A pod's step in a few words, and when it began (if known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brief {
    pub what: String,
    pub since: Option<Timestamp>,
}

impl Brief {
    fn new(what: impl Into<String>, since: Option<Timestamp>) -> Self {
        Self {
            what: what.into(),
            since,
        }
    }
}

/// The last of the `Pulling`/`Pulled` events about the pod, when it is a
/// `Pulling` one: the image still coming (`Pulling image "x"`), and since when.
fn pulling(pod: &Pod, events: &[Event]) -> Option<(String, Option<Timestamp>)> {
    let last = events
        .iter()
        .filter(|e| is_about(e, pod))
        .filter(|e| matches!(e.reason.as_deref(), Some("Pulling" | "Pulled")))
        .max_by_key(|e| event_time(e))?;
    if last.reason.as_deref() != Some("Pulling") {
        return None;
    }
    let image = last
        .message
        .as_deref()
        .and_then(|m| m.split('"').nth(1))
        .map_or_else(String::new, |i| format!(" {i}"));
    Some((format!("pulling{image}"), event_time(last)))
}

/// How many times the pod's readiness probes failed, from the kubelet's
/// `Unhealthy` events (counted ones add up; newer servers may leave the
/// count out, which is one).
fn probe_failures(pod: &Pod, container: &str, events: &[Event]) -> i32 {
    let path = format!("spec.containers{{{container}}}");
    events
        .iter()
        .filter(|e| {
            is_about(e, pod)
                && e.reason.as_deref() == Some("Unhealthy")
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("Readiness probe failed"))
                && e.involved_object
                    .field_path
                    .as_deref()
                    .is_none_or(|p| p == path)
        })
        .map(|e| e.count.unwrap_or(1).max(1))
        .sum()
}

fn waiting_reason(cs: &ContainerStatus) -> Option<&str> {
    cs.state.as_ref()?.waiting.as_ref().map(|w| {
        w.reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or("waiting")
    })
}

/// When the pod was scheduled, else created: when container creation began.
fn scheduled(pod: &Pod) -> Option<Timestamp> {
    let conds = pod.status.as_ref()?.conditions.as_deref();
    conditions::find(conds, "PodScheduled")
        .filter(|c| c.status() == "True")
        .and_then(|c| c.last_transition())
        .or(pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// What `pod` is doing while it is not Ready; `None` when it is Ready or
/// finished.
pub fn brief(pod: &Pod, events: &[Event]) -> Option<Brief> {
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if let Some(t) = &pod.metadata.deletion_timestamp {
        return Some(Brief::new("terminating", Some(t.0)));
    }
    let Some(status) = pod.status.as_ref() else {
        return Some(Brief::new("pending", created));
    };
    if status.phase.as_deref() == Some("Succeeded") {
        return None;
    }
    let conds = status.conditions.as_deref();
    let statuses = status.container_statuses.as_deref().unwrap_or_default();
    if conditions::find(conds, "PodScheduled").is_none() && statuses.is_empty() {
        return Some(Brief::new("pending", created));
    }
    if let Some(c) = conditions::find(conds, "PodScheduled").filter(|c| c.status() != "True") {
        let why = match c.reason() {
            "" => "not scheduled".to_owned(),
            r => format!("not scheduled ({r})"),
        };
        return Some(Brief::new(why, c.last_transition().or(created)));
    }
    if conditions::is_true(conds, "Ready") {
        return None;
    }
    // Init containers run one after the other: the first unfinished one is
    // what the pod waits on.
    let inits = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let init_statuses = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    for init in inits {
        let cs = init_statuses.iter().find(|c| c.name == init.name);
        let state = cs.and_then(|c| c.state.as_ref());
        if state
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0)
        {
            continue;
        }
        let name = &init.name;
        let restarts = cs.map_or(0, |c| c.restart_count);
        let what = match (state, cs.and_then(waiting_reason)) {
            (_, Some(reason)) if reason != "PodInitializing" => {
                format!("init container {name}: {reason}")
            }
            _ => format!("waiting on init container {name}"),
        };
        let since = state
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .map(|t| t.0)
            .or_else(|| scheduled(pod));
        return Some(Brief::new(with_restarts(what, restarts), since));
    }
    if statuses.is_empty() {
        if let Some((what, since)) = pulling(pod, events) {
            return Some(Brief::new(what, since));
        }
        return Some(Brief::new("ContainerCreating", scheduled(pod)));
    }
    let cs = statuses.iter().find(|c| !c.ready)?;
    let state = cs.state.clone().unwrap_or_default();
    let brief = if let Some(reason) = waiting_reason(cs) {
        match (reason, pulling(pod, events)) {
            ("ContainerCreating", Some((what, since))) => Brief::new(what, since),
            ("ContainerCreating", None) => Brief::new(reason, scheduled(pod)),
            _ => Brief::new(reason, None),
        }
    } else if let Some(r) = &state.running {
        let since = r.started_at.as_ref().map(|t| t.0);
        match probe_failures(pod, &cs.name, events) {
            0 => Brief::new("starting", since),
            n => Brief::new(format!("readiness probe failing {n}x"), since),
        }
    } else if let Some(t) = &state.terminated {
        Brief::new(
            format!(
                "exited {} ({})",
                t.exit_code,
                t.reason.as_deref().unwrap_or("Error")
            ),
            t.finished_at.as_ref().map(|t| t.0),
        )
    } else {
        Brief::new("ContainerCreating", scheduled(pod))
    };
    Some(Brief {
        what: with_restarts(brief.what, cs.restart_count),
        ..brief
    })
}

fn with_restarts(what: String, restarts: i32) -> String {
    match restarts {
        0 => what,
        n => format!("{what}, restarted {n}x"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(path: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/k8s")
                .join(path),
        )
        .unwrap()
    }

    fn pod(path: &str) -> Pod {
        serde_json::from_str(&read(path)).unwrap()
    }

    fn events(path: &str) -> Vec<Event> {
        let list: serde_json::Value = serde_json::from_str(&read(path)).unwrap();
        serde_json::from_value(list["items"].clone()).unwrap()
    }

    fn what(pod: &Pod, events: &[Event]) -> Option<String> {
        brief(pod, events).map(|b| b.what)
    }

    /// A Deployment's pod as the watch saw it come up, step by step.
    #[test]
    fn a_pod_coming_up_is_pending_then_creating_then_starting_then_done() {
        let lines = read("watch/deployment.watch.ndjson");
        let seen: Vec<Option<String>> = lines
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| {
                e["object"]["kind"] == "Pod"
                    && e["object"]["metadata"]["name"] == "watch-web-594d8c6bd6-9c945"
            })
            .map(|e| what(&serde_json::from_value(e["object"].clone()).unwrap(), &[]))
            .collect();
        let seen: Vec<Option<&str>> = seen.iter().map(Option::as_deref).collect();
        assert_eq!(
            seen,
            [
                Some("pending"),
                Some("ContainerCreating"),
                Some("ContainerCreating"),
                Some("starting"),
                None
            ]
        );
    }

    #[test]
    fn captured_pods_say_what_they_wait_on_in_a_few_words() {
        let init = pod("pod-init-stuck/pod.init-stuck.json");
        let b = brief(&init, &events("pod-init-stuck/events.pod.init-stuck.json")).unwrap();
        assert_eq!(b.what, "waiting on init container wait-for-db");
        assert!(b.since.is_some(), "the init container's start");

        let probe = pod("pod-readiness-failing/pod.readiness-http.json");
        let probe_events = events("pod-readiness-failing/events.pod.readiness-http.json");
        let w = what(&probe, &probe_events).unwrap();
        assert!(
            w.starts_with("readiness probe failing ") && w.ends_with('x'),
            "{w}"
        );
        assert_eq!(
            what(&probe, &[]).as_deref(),
            Some("starting"),
            "without its events, nothing says the probe fails"
        );

        let crash = pod("pod-crashloop/pod.crashloop.json");
        let w = what(&crash, &[]).unwrap();
        assert!(w.contains(", restarted ") && w.ends_with('x'), "{w}");

        let creating =
            pod("pod-crashloop/pod.crashloop.state-Pending_waiting-ContainerCreating.json");
        assert_eq!(what(&creating, &[]).as_deref(), Some("ContainerCreating"));
        let backoff =
            pod("pod-crashloop/pod.crashloop.state-Running_waiting-CrashLoopBackOff.json");
        let w = what(&backoff, &[]).unwrap();
        assert!(w.starts_with("CrashLoopBackOff, restarted "), "{w}");

        let pull = pod("pod-image-pull-backoff/pod.pull-missing.json");
        let w = what(&pull, &[]).unwrap();
        assert!(w == "ErrImagePull" || w == "ImagePullBackOff", "{w}");

        let big = pod("pod-unschedulable-resources/pod.too-big.json");
        assert_eq!(
            what(&big, &[]).as_deref(),
            Some("not scheduled (Unschedulable)")
        );

        let ready = pod("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json");
        assert_eq!(brief(&ready, &[]), None);
    }

    #[test]
    fn a_pulling_event_says_which_image_until_it_is_pulled() {
        let mut creating: Pod =
            serde_json::from_str(&read("pod-readiness-failing/pod.readiness-http.json")).unwrap();
        let status = creating.status.as_mut().unwrap();
        status.container_statuses = None;
        status
            .conditions
            .as_mut()
            .unwrap()
            .retain(|c| c.type_ == "PodScheduled");
        let uid = creating.metadata.uid.clone();
        let event = |reason: &str, message: &str, at: &str| -> Event {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("e-{reason}"), "namespace": "fx"},
                "involvedObject": {"kind": "Pod", "name": "readiness-http", "namespace": "fx", "uid": uid},
                "reason": reason, "message": message, "type": "Normal",
                "lastTimestamp": at,
            }))
            .unwrap()
        };
        let pulling = event(
            "Pulling",
            "Pulling image \"harness/app:1\"",
            "2026-11-22T14:16:30Z",
        );
        let b = brief(&creating, std::slice::from_ref(&pulling)).unwrap();
        assert_eq!(b.what, "pulling harness/app:1");
        assert_eq!(b.since, Some("2026-11-22T14:16:30Z".parse().unwrap()));
        let pulled = event("Pulled", "Successfully pulled", "2026-11-22T14:16:34Z");
        assert_eq!(
            what(&creating, &[pulling, pulled]).as_deref(),
            Some("ContainerCreating")
        );
    }
}
