//! Evidence for a verdict: the pure part.
//!
//! A verdict is only believable with its facts next to it: the last Warning
//! events of the object, how each container last terminated, and its logs,
//! current *and* previous, init containers included (the previous log is the
//! one that explains a crash loop, and the one peer tools forget). This
//! module selects and shapes those facts from objects already fetched;
//! fetching the logs themselves is I/O, so it only says which to fetch.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Event, Pod};
use k8s_openapi::jiff::Timestamp;

use super::classify::{ContainerRef, Verdict, event_time};

/// The object an event must be about: events are listed by name, which
/// also matches other kinds of the same name (a Deployment, its Service and
/// its Endpoints are all called `web`), so kind and uid are both checked.
#[derive(Clone, Copy, Debug)]
pub struct Involved<'a> {
    /// The object's kind, e.g. `Pod`.
    pub kind: &'a str,
    /// The object's uid.
    pub uid: &'a str,
}

/// One event, reduced to what a report shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSummary {
    /// `Warning` or `Normal`.
    pub type_: String,
    /// The event's reason, e.g. `BackOff`.
    pub reason: String,
    /// The event's message.
    pub message: String,
    /// How many times it was seen (aggregated by the server).
    pub count: i32,
    /// When it was last seen.
    pub last_seen: Option<Timestamp>,
    /// `spec.containers{app}` and the like, when the event is about one container.
    pub field_path: Option<String>,
}

/// The last `n` Warning events about `involved`, oldest first so they read
/// as a story.
pub fn warning_events(events: &[Event], involved: Involved<'_>, n: usize) -> Vec<EventSummary> {
    let mut warnings: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.involved_object.kind.as_deref() == Some(involved.kind)
                && e.involved_object.uid.as_deref() == Some(involved.uid)
        })
        .collect();
    warnings.sort_by_key(|e| event_time(e));
    let skip = warnings.len().saturating_sub(n);
    warnings
        .into_iter()
        .skip(skip)
        .map(|e| EventSummary {
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            count: e.count.unwrap_or(1),
            last_seen: event_time(e),
            field_path: e.involved_object.field_path.clone(),
        })
        .collect()
}

/// Which termination of a container a [`Termination`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// `state.terminated`: the container is stopped now.
    Current,
    /// `lastState.terminated`: the run before the current one.
    Last,
}

/// How a container ended a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    /// The container.
    pub container: ContainerRef,
    /// Current state or last state.
    pub which: Which,
    /// The exit code (137 = SIGKILL, often the OOM killer).
    pub exit_code: i32,
    /// The kubelet's reason (`Error`, `OOMKilled`, `Completed`...).
    pub reason: Option<String>,
    /// The termination message (`terminationMessagePath` or log tail).
    pub message: Option<String>,
    /// The signal, if the runtime reports one.
    pub signal: Option<i32>,
    /// When the run started.
    pub started_at: Option<Timestamp>,
    /// When the run ended.
    pub finished_at: Option<Timestamp>,
}

fn statuses(pod: &Pod) -> impl Iterator<Item = (&ContainerStatus, bool)> {
    let status = pod.status.as_ref();
    let init = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|cs| (cs, true));
    let app = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|cs| (cs, false));
    init.chain(app)
}

/// Every recorded termination of the pod's containers, init containers
/// first, current state before last state.
pub fn terminations(pod: &Pod) -> Vec<Termination> {
    let mut out = Vec::new();
    for (cs, init) in statuses(pod) {
        let current = cs.state.as_ref().and_then(|s| s.terminated.as_ref());
        let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        for (which, t) in [(Which::Current, current), (Which::Last, last)] {
            if let Some(t) = t {
                out.push(termination(cs, init, which, t));
            }
        }
    }
    out
}

fn termination(
    cs: &ContainerStatus,
    init: bool,
    which: Which,
    t: &ContainerStateTerminated,
) -> Termination {
    Termination {
        container: ContainerRef {
            name: cs.name.clone(),
            init,
        },
        which,
        exit_code: t.exit_code,
        reason: t.reason.clone(),
        message: t.message.clone(),
        signal: t.signal,
        started_at: t.started_at.as_ref().map(|x| x.0),
        finished_at: t.finished_at.as_ref().map(|x| x.0),
    }
}

/// One `kubectl logs`-equivalent call to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRequest {
    /// The container.
    pub container: ContainerRef,
    /// `--previous`: the log of the run before the current one.
    pub previous: bool,
}

/// The logs to fetch for a pod: for every container, init containers
/// first, the current log, and the previous one when there was a previous
/// run (`restartCount > 0` or a `lastState.terminated`). Containers that
/// have never started are skipped: the API server refuses their logs
/// (`container "app" in pod "init-crash" is waiting to start: PodInitializing`).
pub fn log_requests(pod: &Pod) -> Vec<LogRequest> {
    let mut out = Vec::new();
    for (cs, init) in statuses(pod) {
        let state = cs.state.clone().unwrap_or_default();
        let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        let has_run = cs.container_id.is_some()
            || state.running.is_some()
            || state.terminated.is_some()
            || last.is_some();
        if !has_run {
            continue;
        }
        let container = ContainerRef {
            name: cs.name.clone(),
            init,
        };
        out.push(LogRequest {
            container: container.clone(),
            previous: false,
        });
        if cs.restart_count > 0 || last.is_some() {
            out.push(LogRequest {
                container,
                previous: true,
            });
        }
    }
    out
}

/// The evidence for one pod, ready to render next to its verdicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The last Warning events about the pod.
    pub events: Vec<EventSummary>,
    /// How its containers last terminated.
    pub terminations: Vec<Termination>,
    /// The logs to fetch.
    pub logs: Vec<LogRequest>,
}

/// Gathers the evidence about `pod` from `events` (any events: filtered by
/// kind and uid), keeping the last `max_events` Warnings.
pub fn pod_evidence(pod: &Pod, events: &[Event], max_events: usize) -> Evidence {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    Evidence {
        events: warning_events(events, Involved { kind: "Pod", uid }, max_events),
        terminations: terminations(pod),
        logs: log_requests(pod),
    }
}

/// The evidence for one verdict: like [`pod_evidence`], narrowed to the
/// verdict's container when it has one (its events and pod-level events,
/// its terminations, its logs), so that a crash-looping app is not shown
/// with its healthy sidecar's history. Pod-level verdicts (scheduling,
/// sandbox) get the whole pod's evidence.
pub fn verdict_evidence(
    pod: &Pod,
    events: &[Event],
    verdict: &Verdict,
    max_events: usize,
) -> Evidence {
    let Some(container) = verdict.container.as_ref() else {
        return pod_evidence(pod, events, max_events);
    };
    let path = container.field_path();
    let relevant: Vec<Event> = events
        .iter()
        .filter(|e| {
            e.involved_object
                .field_path
                .as_deref()
                .is_none_or(|p| p == path)
        })
        .cloned()
        .collect();
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    Evidence {
        events: warning_events(&relevant, Involved { kind: "Pod", uid }, max_events),
        terminations: terminations(pod)
            .into_iter()
            .filter(|t| &t.container == container)
            .collect(),
        logs: log_requests(pod)
            .into_iter()
            .filter(|l| &l.container == container)
            .collect(),
    }
}

/// Whether a log answer (a body, or the API server's error) says there is
/// no such log rather than being one, and why. The kubelet answers a
/// `--previous` call for a container it no longer keeps with the text
/// `unable to retrieve container logs for containerd://<id>` (as the body
/// of a 200), or refuses it with `previous terminated container "app" in
/// pod "p" not found`; a container that has not started is `waiting to
/// start`.
pub fn missing_log(answer: &str) -> Option<&'static str> {
    let answer = answer.trim();
    let single_line = !answer.contains('\n');
    if single_line && answer.starts_with("unable to retrieve container logs for ") {
        return Some("not kept by the kubelet");
    }
    if answer.contains("previous terminated container") && answer.contains("not found") {
        return Some("not kept by the kubelet");
    }
    if answer.contains("is waiting to start") {
        return Some("the container has not started");
    }
    None
}
