//! Doomed-pod classification: which pods will not become Ready by waiting,
//! and the named reason why.
//!
//! [`classify_pod`] looks at one pod, the events about it, the current time
//! and the component's [`Tolerance`], and returns one [`Verdict`] per problem
//! found (a pod can have several: a sidecar whose image is missing and an app
//! container that crash-loops), most likely root cause first. An empty list
//! means "not doomed (yet)": healthy, still starting, or failing in a way
//! that is transient (eviction, preemption, a kubelet cache not yet synced).
//! The rules follow Skaffold's and Krane's classifiers with the additions
//! those lack: OOMKilled with the memory limit, the kind-specific causes of
//! image pull failures read from the pod *spec* (the status reports whatever
//! name the runtime knows the image by), parsed scheduler messages, the
//! readiness probe's target, and a tolerance so that controllers restarting
//! while their database starts are not failed early.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, Event, Pod, Probe,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::conditions::{self, Condition};
use super::rules::{is_job_pod, is_replaced};

/// How long the scheduler may fail to place a pod before it is called
/// Unschedulable: kstatus's `ScheduleWindow`. Shorter would race the
/// scheduler's own retries on a freshly created cluster.
pub const SCHEDULE_WINDOW: Duration = Duration::from_secs(15);

/// How long an init container may run before it is called stuck, when the
/// component's grace is shorter: init containers that wait for a dependency
/// legitimately run for a while.
pub const INIT_RUNNING_WINDOW: Duration = Duration::from_secs(60);

/// How long a pod may keep failing to get a sandbox before it is doomed:
/// a single failure (e.g. a reserved sandbox name) is retried by the kubelet.
pub const SANDBOX_WINDOW: Duration = Duration::from_secs(15);

/// How long a container must stay up after an OOM kill before it is trusted
/// again: the kubelet resets its crash back-off after 10 minutes of running.
pub const CRASH_BACKOFF_RESET: Duration = Duration::from_secs(600);

/// What a component may do while starting before it is called doomed.
///
/// A container that has restarted at most `restarts` times *and* whose pod
/// started less than `grace` ago is not doomed yet; past either bound it is.
/// The default (no grace, no restarts) is kstatus's: the first crash is a
/// failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tolerance {
    /// Time after the pod started during which crashes are forgiven.
    pub grace: Duration,
    /// Restarts forgiven within the grace period.
    pub restarts: u32,
}

/// Which container a verdict is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerRef {
    /// The container's name.
    pub name: String,
    /// Whether it is an init container.
    pub init: bool,
}

impl ContainerRef {
    /// The `involvedObject.fieldPath` the kubelet gives this container's
    /// events, e.g. `spec.initContainers{migrate}`.
    pub fn field_path(&self) -> String {
        if self.init {
            format!("spec.initContainers{{{}}}", self.name)
        } else {
            format!("spec.containers{{{}}}", self.name)
        }
    }
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.init {
            write!(f, "init container {}", self.name)
        } else {
            write!(f, "container {}", self.name)
        }
    }
}

/// The likely cause of an image pull failure on a kind cluster, read from
/// the container's spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullCause {
    /// `IfNotPresent` and the pull failed: the image is not on the node.
    NotLoaded,
    /// A `:latest` (or untagged) image defaults `imagePullPolicy` to
    /// `Always`, so the node goes to the registry even if the image is loaded.
    LatestTag,
    /// An explicit `imagePullPolicy: Always`.
    PullAlways,
    /// The reference is not a valid image name.
    InvalidName,
}

/// The kind of object a missing configuration reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// A Secret.
    Secret,
    /// A ConfigMap.
    ConfigMap,
}

impl fmt::Display for RefKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefKind::Secret => "Secret",
            RefKind::ConfigMap => "ConfigMap",
        })
    }
}

/// A Secret or ConfigMap (and possibly key) that a container needs but that
/// does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRef {
    /// Secret or ConfigMap.
    pub kind: RefKind,
    /// `namespace/name` when the kubelet gave the namespace, else the name.
    pub name: String,
    /// The missing key, when the object exists but lacks it (or the key the
    /// spec asks of an object that does not exist).
    pub key: Option<String>,
    /// Whether the object itself exists (only the key is missing).
    pub object_exists: bool,
}

impl fmt::Display for MissingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, self.object_exists) {
            (Some(key), true) => write!(f, "key `{key}` missing in {} {}", self.kind, self.name),
            (Some(key), false) => write!(
                f,
                "{} {} not found (key `{key}` wanted)",
                self.kind, self.name
            ),
            (None, _) => write!(f, "{} {} not found", self.kind, self.name),
        }
    }
}

/// One reason the scheduler gave for not placing a pod, parsed from the
/// `PodScheduled` condition's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchedulingCause {
    /// `Insufficient cpu` on this many nodes.
    InsufficientCpu(u32),
    /// `Insufficient memory` on this many nodes.
    InsufficientMemory(u32),
    /// `Insufficient <resource>` for another resource (GPUs, pods, ephemeral storage).
    Insufficient {
        /// The resource name.
        resource: String,
        /// How many nodes lack it.
        nodes: u32,
    },
    /// Nodes with a taint the pod does not tolerate (the taint as printed).
    UntoleratedTaint {
        /// The taint, e.g. `{node-role.kubernetes.io/master: }`.
        taint: String,
        /// How many nodes carry it.
        nodes: u32,
    },
    /// Nodes not matching the pod's node selector or node affinity.
    NodeSelectorOrAffinity(u32),
    /// The pod uses a PersistentVolumeClaim that is not bound.
    UnboundPvc,
    /// Nodes without the host ports the pod asks for.
    NoFreePorts(u32),
    /// A reason this parser does not know, kept verbatim.
    Other(String),
}

impl SchedulingCause {
    /// Whether the cause explains why the pod fits *nowhere*, as opposed to
    /// the control-plane taint that every multi-node kind cluster reports.
    fn is_taint(&self) -> bool {
        matches!(self, SchedulingCause::UntoleratedTaint { .. })
    }
}

impl fmt::Display for SchedulingCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedulingCause::InsufficientCpu(n) => write!(f, "insufficient cpu on {n} node(s)"),
            SchedulingCause::InsufficientMemory(n) => {
                write!(f, "insufficient memory on {n} node(s)")
            }
            SchedulingCause::Insufficient { resource, nodes } => {
                write!(f, "insufficient {resource} on {nodes} node(s)")
            }
            SchedulingCause::UntoleratedTaint { taint, nodes } => {
                write!(f, "untolerated taint {taint} on {nodes} node(s)")
            }
            SchedulingCause::NodeSelectorOrAffinity(n) => {
                write!(f, "node selector/affinity matches none of {n} node(s)")
            }
            SchedulingCause::UnboundPvc => f.write_str("unbound PersistentVolumeClaim"),
            SchedulingCause::NoFreePorts(n) => write!(f, "host port taken on {n} node(s)"),
            SchedulingCause::Other(s) => f.write_str(s),
        }
    }
}

/// The named reason a pod is doomed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerdictKind {
    /// `ErrImagePull` / `ImagePullBackOff` / `InvalidImageName`.
    ImagePull {
        /// The image as written in the spec.
        image: String,
        /// The likely cause.
        cause: PullCause,
    },
    /// `ErrImageNeverPull`: `imagePullPolicy: Never` and the image is not on the node.
    ImageNeverPull {
        /// The image as written in the spec.
        image: String,
    },
    /// The container keeps exiting: `CrashLoopBackOff`, `RunContainerError`,
    /// `StartError`, `ContainerCannotRun`, or a non-zero exit.
    CrashLoop {
        /// The kubelet's reason (`CrashLoopBackOff`, `Error`, ...).
        reason: String,
        /// The last exit code, when known.
        exit_code: Option<i32>,
    },
    /// A container of a pod that will not restart it exited non-zero (phase
    /// Failed). For a Job's pod this is evidence, not the Job's doom: the Job
    /// retries with new pods until its `backoffLimit`, and
    /// [`rules::job`](super::rules::job) says when it gave up.
    Exited {
        /// The exit code.
        exit_code: i32,
    },
    /// The container was killed for exceeding its memory limit.
    OomKilled {
        /// The container's `resources.limits.memory` as written (e.g. `32Mi`).
        memory_limit: Option<String>,
    },
    /// `CreateContainerConfigError`: usually a missing Secret/ConfigMap or key.
    ConfigError {
        /// What is missing, when the message names it.
        missing: Option<MissingRef>,
    },
    /// The scheduler cannot place the pod.
    Unschedulable {
        /// The parsed reasons, in the scheduler's order.
        causes: Vec<SchedulingCause>,
    },
    /// Running but never Ready: the readiness probe keeps failing.
    ReadinessProbeFailing {
        /// What the probe checks: `GET http://…`, `exec [...]`, `tcp :port`.
        target: String,
    },
    /// An init container blocks the pod: crash-looping or running too long.
    InitContainerStuck {
        /// Its state in words.
        state: String,
    },
    /// The runtime cannot create the pod sandbox (network setup, typically CNI).
    SandboxCreateFailed,
}

impl VerdictKind {
    /// The verdict's name as printed.
    pub fn name(&self) -> &'static str {
        match self {
            VerdictKind::ImagePull { .. } => "ImagePull",
            VerdictKind::ImageNeverPull { .. } => "ErrImageNeverPull",
            VerdictKind::CrashLoop { .. } => "CrashLoopBackOff",
            VerdictKind::Exited { .. } => "Exited",
            VerdictKind::OomKilled { .. } => "OOMKilled",
            VerdictKind::ConfigError { .. } => "CreateContainerConfigError",
            VerdictKind::Unschedulable { .. } => "Unschedulable",
            VerdictKind::ReadinessProbeFailing { .. } => "ReadinessProbeFailing",
            VerdictKind::InitContainerStuck { .. } => "InitContainerStuck",
            VerdictKind::SandboxCreateFailed => "SandboxCreateFailed",
        }
    }

    /// How likely this is the root cause, lower first. Definite
    /// configuration errors (a missing Secret key, an image that is not
    /// there) come first; OOMKilled before CrashLoop because it is the more
    /// specific explanation of the same restarts; a failing readiness probe
    /// last, because it is often a symptom of a dependency being down.
    pub fn rank(&self) -> u8 {
        match self {
            VerdictKind::ConfigError { .. } => 0,
            VerdictKind::ImageNeverPull { .. } => 1,
            VerdictKind::ImagePull { .. } => 2,
            VerdictKind::Unschedulable { .. } => 3,
            VerdictKind::SandboxCreateFailed => 4,
            VerdictKind::OomKilled { .. } => 5,
            VerdictKind::InitContainerStuck { .. } => 6,
            VerdictKind::Exited { .. } => 7,
            VerdictKind::CrashLoop { .. } => 8,
            VerdictKind::ReadinessProbeFailing { .. } => 9,
        }
    }
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a pod is doomed: a named kind, the container concerned (none for
/// pod-level causes such as scheduling), the facts in one line, and a
/// one-line hint saying what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The named reason.
    pub kind: VerdictKind,
    /// The container concerned, if the cause is a container's.
    pub container: Option<ContainerRef>,
    /// The facts, e.g. `container app was OOMKilled (exit 137) 4 times; memory limit 32Mi`.
    pub message: String,
    /// What to do about it, in one line.
    pub hint: String,
}

impl Verdict {
    /// See [`VerdictKind::rank`].
    pub fn rank(&self) -> u8 {
        self.kind.rank()
    }
}

/// Classifies one pod. `events` may be any events; only those whose
/// `involvedObject` is this pod (kind *and* uid, since event queries by name
/// also return other kinds' events of the same name) are used. Returns the
/// verdicts sorted by [`Verdict::rank`], empty when the pod is not doomed.
///
/// A list rather than an `Option`: a pod's containers fail independently
/// (a sidecar's image missing, the app crash-looping), and `diagnose` must
/// show all of them, ranked, while the waiter only needs "is it empty".
pub fn classify_pod(
    pod: &Pod,
    events: &[Event],
    now: Timestamp,
    tolerance: &Tolerance,
) -> Vec<Verdict> {
    classify_pod_restarted(pod, events, now, tolerance, &[])
}

/// [`classify_pod`], where `restarted` names containers seen to restart
/// since the component was Ready (see [`super::settle`]). Such a container
/// is judged by its last termination even when it is running and Ready
/// again: a restart the tolerance no longer forgives is a crash loop (or an
/// OOM kill) however briefly the watch saw it down.
pub fn classify_pod_restarted(
    pod: &Pod,
    events: &[Event],
    now: Timestamp,
    tolerance: &Tolerance,
    restarted: &[ContainerRef],
) -> Vec<Verdict> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if phase == "Succeeded" || is_replaced(status.reason.as_deref().unwrap_or_default()) {
        return Vec::new();
    }
    let events: Vec<&Event> = events.iter().filter(|e| is_about(e, pod)).collect();
    let ctx = Ctx {
        pod,
        events: &events,
        now,
        tolerance,
        started: pod_started(pod),
        failed: phase == "Failed",
    };
    let mut verdicts = Vec::new();
    if let Some(v) = unschedulable(&ctx) {
        verdicts.push(v);
    }
    let init_statuses = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    let was_restarted =
        |name: &str, init: bool| restarted.iter().any(|c| c.name == name && c.init == init);
    for cs in init_statuses {
        verdicts.extend(container_verdict(
            &ctx,
            cs,
            true,
            was_restarted(&cs.name, true),
        ));
    }
    for cs in status.container_statuses.as_deref().unwrap_or_default() {
        verdicts.extend(container_verdict(
            &ctx,
            cs,
            false,
            was_restarted(&cs.name, false),
        ));
    }
    if let Some(v) = sandbox(&ctx) {
        verdicts.push(v);
    }
    verdicts.sort_by_key(Verdict::rank);
    verdicts
}

/// Everything the per-container rules share.
struct Ctx<'a> {
    pod: &'a Pod,
    events: &'a [&'a Event],
    now: Timestamp,
    tolerance: &'a Tolerance,
    /// When the pod started (status.startTime, else creation).
    started: Option<Timestamp>,
    /// Phase Failed: nothing will be restarted, tolerance is moot.
    failed: bool,
}

impl Ctx<'_> {
    fn elapsed_since(&self, t: Option<Timestamp>) -> Duration {
        t.map_or(Duration::ZERO, |t| elapsed(t, self.now))
    }

    /// Whether restarts of a container are still forgiven.
    fn tolerated(&self, restart_count: i32) -> bool {
        !self.failed
            && u32::try_from(restart_count).unwrap_or(0) <= self.tolerance.restarts
            && self.elapsed_since(self.started) < self.tolerance.grace
    }
}

/// Non-negative time from `from` to `now`; a clock skew never yields a panic.
pub(crate) fn elapsed(from: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(from)).unwrap_or(Duration::ZERO)
}

fn pod_started(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
}

/// Whether an event is about this pod: kind Pod and the same uid (or, for
/// events without a uid, the same name and namespace).
pub(crate) fn is_about(event: &Event, pod: &Pod) -> bool {
    let o = &event.involved_object;
    if o.kind.as_deref() != Some("Pod") {
        return false;
    }
    match (o.uid.as_deref(), pod.metadata.uid.as_deref()) {
        (Some(a), Some(b)) => a == b,
        _ => o.name == pod.metadata.name && o.namespace == pod.metadata.namespace,
    }
}

fn spec_container<'a>(pod: &'a Pod, name: &str, init: bool) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    let list = if init {
        spec.init_containers.as_deref().unwrap_or_default()
    } else {
        &spec.containers
    };
    list.iter().find(|c| c.name == name)
}

fn container_verdict(
    ctx: &Ctx<'_>,
    cs: &ContainerStatus,
    init: bool,
    restarted: bool,
) -> Option<Verdict> {
    let cref = ContainerRef {
        name: cs.name.clone(),
        init,
    };
    let spec = spec_container(ctx.pod, &cs.name, init);
    let state = cs.state.clone().unwrap_or_default();
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let waiting_reason = state
        .waiting
        .as_ref()
        .and_then(|w| w.reason.as_deref())
        .unwrap_or_default();
    let waiting_message = state
        .waiting
        .as_ref()
        .and_then(|w| w.message.as_deref())
        .unwrap_or_default();
    let verdict = |kind, message: String, hint: &str| {
        Some(Verdict {
            kind,
            container: Some(cref.clone()),
            message,
            hint: hint.to_owned(),
        })
    };

    // Failures of configuration: doomed at once, no tolerance applies.
    match waiting_reason {
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" => {
            return image_pull(ctx, &cref, spec, waiting_reason, waiting_message);
        }
        "ErrImageNeverPull" => {
            let image = spec.map_or(cs.image.clone(), |c| c.image.clone().unwrap_or_default());
            return verdict(
                VerdictKind::ImageNeverPull {
                    image: image.clone(),
                },
                format!("{cref}: image {image} is not on the node and imagePullPolicy is Never"),
                "load the image into the kind node (kind load docker-image, or let the harness build and load it)",
            );
        }
        "CreateContainerConfigError" => {
            // The kubelet reports this while its Secret/ConfigMap informer
            // cache is still syncing; that resolves by itself.
            if waiting_message.contains("failed to sync") && waiting_message.contains("cache") {
                return None;
            }
            let missing = parse_missing_ref(waiting_message).map(|m| fill_key_from_spec(m, spec));
            let facts = missing
                .as_ref()
                .map_or_else(|| waiting_message.to_owned(), ToString::to_string);
            return verdict(
                VerdictKind::ConfigError { missing },
                format!("{cref}: {facts}"),
                "create the Secret/ConfigMap (or key) before the component, or mark the reference optional",
            );
        }
        _ => {}
    }

    // OOM kills: current or last termination, or exit 137 with a memory limit.
    let memory_limit = spec.and_then(memory_limit);
    let current = state.terminated.as_ref();
    let oom = [current, last]
        .into_iter()
        .flatten()
        .find(|t| is_oom(t, memory_limit.is_some()));
    if let Some(t) = oom {
        let running_since = state
            .running
            .as_ref()
            .and_then(|r| r.started_at.as_ref())
            .map(|t| t.0);
        // A container that survived the kubelet's back-off reset window since
        // its last OOM kill is trusted again; one that just came back is not,
        // even if momentarily Ready: it will be killed at the next peak.
        let recovered = running_since.is_some_and(|s| elapsed(s, ctx.now) >= CRASH_BACKOFF_RESET);
        if !recovered && !ctx.tolerated(cs.restart_count) {
            let limit = memory_limit.clone().unwrap_or_else(|| "none".to_owned());
            return verdict(
                VerdictKind::OomKilled { memory_limit },
                format!(
                    "{cref} was OOMKilled (exit {}) after {} restarts; memory limit {limit}",
                    t.exit_code, cs.restart_count
                ),
                "raise resources.limits.memory or reduce the process's memory use",
            );
        }
    }
    if cs.ready || (restarted && state.running.is_some()) {
        // Back up after a restart seen since the component was Ready: the
        // restart itself is the crash, once the tolerance no longer forgives it.
        if restarted && !ctx.tolerated(cs.restart_count) {
            let reason = last
                .and_then(|t| t.reason.clone())
                .unwrap_or_else(|| "Error".to_owned());
            let exit_code = last.map(|t| t.exit_code);
            let ran = last
                .and_then(|t| {
                    Some(
                        t.finished_at
                            .as_ref()?
                            .0
                            .duration_since(t.started_at.as_ref()?.0),
                    )
                })
                .and_then(|d| Duration::try_from(d).ok())
                .map(|d| format!(" {} after it started,", super::human(d)))
                .unwrap_or_default();
            return verdict(
                VerdictKind::CrashLoop {
                    reason: reason.clone(),
                    exit_code,
                },
                format!(
                    "{cref} went down after the pod was Ready: it exited with code {} ({reason}){ran} and has restarted {} times{}",
                    exit_code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
                    cs.restart_count,
                    term_detail(last)
                ),
                "read the previous container log: it is running now, but it crashed and will again; raise the component's tolerance if it waits for a dependency",
            );
        }
        if cs.ready {
            return None;
        }
    }

    // Init containers block the pod while they run or crash.
    if init {
        return init_verdict(ctx, cs, &cref, &state, last);
    }

    // Crash loops and start failures.
    let crashing_reason = matches!(
        waiting_reason,
        "CrashLoopBackOff" | "RunContainerError" | "StartError" | "ContainerCannotRun"
    );
    let failed_exit = current.filter(|t| t.exit_code != 0);
    if crashing_reason || failed_exit.is_some() {
        let term = failed_exit.or(last);
        let exit_code = term.map(|t| t.exit_code);
        if ctx.failed {
            let code = exit_code.unwrap_or_default();
            let hint = if is_job_pod(ctx.pod) {
                "the Job retries with a new pod until its backoffLimit: read this pod's log"
            } else {
                "the pod will not be restarted: read the container's log"
            };
            return verdict(
                VerdictKind::Exited { exit_code: code },
                format!("{cref} exited with code {code}{}", term_detail(term)),
                hint,
            );
        }
        if ctx.tolerated(cs.restart_count) {
            return None;
        }
        let reason = if crashing_reason {
            waiting_reason.to_owned()
        } else {
            failed_exit
                .and_then(|t| t.reason.clone())
                .unwrap_or_else(|| "Error".to_owned())
        };
        let exit = term.map_or_else(String::new, |t| {
            format!(
                ", last exit code {} ({})",
                t.exit_code,
                t.reason.as_deref().unwrap_or("Error")
            )
        });
        let mut detail = if waiting_message.is_empty() || waiting_reason == "CrashLoopBackOff" {
            term_detail(term)
        } else {
            format!(": {waiting_message}")
        };
        // A container killed by its own liveness/startup probe crash-loops
        // with exit 137 and nothing in its log: the probe is the story.
        if let Some(probe) = failing_probe(ctx, &cs.name, &["Liveness", "Startup"]) {
            detail.push_str(&format!("; killed by its failing probe: {probe}"));
        }
        return verdict(
            VerdictKind::CrashLoop {
                reason: reason.clone(),
                exit_code,
            },
            if crashing_reason {
                format!(
                    "{cref} is in {reason} after {} restarts{exit}{detail}",
                    cs.restart_count
                )
            } else {
                format!(
                    "{cref} exited with code {} ({reason}) after {} restarts{detail}",
                    exit_code.unwrap_or_default(),
                    cs.restart_count
                )
            },
            "read the previous container log; raise the component's tolerance if it waits for a dependency",
        );
    }

    // Running but not ready: a failing readiness probe, once past grace.
    if state.running.is_some() && !ctx.failed {
        return readiness_probe(ctx, cs, &cref, spec);
    }
    None
}

fn term_detail(term: Option<&ContainerStateTerminated>) -> String {
    match term.and_then(|t| t.message.as_deref()).map(str::trim) {
        Some(m) if !m.is_empty() => format!(": {}", first_line(m)),
        _ => String::new(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn is_oom(t: &ContainerStateTerminated, has_memory_limit: bool) -> bool {
    t.reason.as_deref() == Some("OOMKilled") || (t.exit_code == 137 && has_memory_limit)
}

fn memory_limit(c: &Container) -> Option<String> {
    c.resources
        .as_ref()?
        .limits
        .as_ref()?
        .get("memory")
        .map(|q| q.0.clone())
}

fn init_verdict(
    ctx: &Ctx<'_>,
    cs: &ContainerStatus,
    cref: &ContainerRef,
    state: &ContainerState,
    last: Option<&ContainerStateTerminated>,
) -> Option<Verdict> {
    let waiting_reason = state
        .waiting
        .as_ref()
        .and_then(|w| w.reason.as_deref())
        .unwrap_or_default();
    let failed_exit = state.terminated.as_ref().filter(|t| t.exit_code != 0);
    let crashing = matches!(
        waiting_reason,
        "CrashLoopBackOff" | "RunContainerError" | "StartError" | "ContainerCannotRun"
    ) || failed_exit.is_some();
    let described = if crashing {
        if ctx.tolerated(cs.restart_count) {
            return None;
        }
        let term = failed_exit.or(last);
        let exit = term.map_or_else(String::new, |t| {
            format!(
                ", last exit code {} ({})",
                t.exit_code,
                t.reason.as_deref().unwrap_or("Error")
            )
        });
        let reason = if waiting_reason.is_empty() {
            "Error"
        } else {
            waiting_reason
        };
        format!("{reason} after {} restarts{exit}", cs.restart_count)
    } else if let Some(running) = state.running.as_ref() {
        // A restartable init container (a native sidecar, 1.29+) runs for
        // the pod's whole life by design.
        let sidecar = spec_container(ctx.pod, &cs.name, true)
            .is_some_and(|c| c.restart_policy.as_deref() == Some("Always"));
        if sidecar {
            return None;
        }
        let since = running.started_at.as_ref().map(|t| t.0);
        let ran = ctx.elapsed_since(since);
        if ran < ctx.tolerance.grace.max(INIT_RUNNING_WINDOW) {
            return None;
        }
        format!("running for {}s without completing", ran.as_secs())
    } else {
        return None;
    };
    Some(Verdict {
        kind: VerdictKind::InitContainerStuck {
            state: described.clone(),
        },
        container: Some(cref.clone()),
        message: format!("{cref} blocks the pod: {described}"),
        hint: "the app containers start only after every init container succeeds: read its log"
            .to_owned(),
    })
}

/// Pull errors that retrying will not fix: the registry answered (or the
/// name did not resolve) and said no.
const DEFINITIVE_PULL_ERRORS: &[&str] = &[
    "not found",
    "manifest unknown",
    "pull access denied",
    "unauthorized",
    "no such host",
    "repository does not exist",
    "toomanyrequests",
    "denied",
];

fn image_pull(
    ctx: &Ctx<'_>,
    cref: &ContainerRef,
    spec: Option<&Container>,
    reason: &str,
    message: &str,
) -> Option<Verdict> {
    // `ImagePullBackOff` only says "Back-off pulling image"; the kubelet's
    // Failed event carries the registry's actual answer.
    let pull_error = container_events(ctx, cref)
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("Failed to pull image"))
        })
        .max_by_key(|e| event_time(e))
        .and_then(|e| e.message.as_deref());
    let error = pull_error.unwrap_or(message);
    let image = spec.and_then(|c| c.image.clone()).unwrap_or_default();
    let policy = spec
        .and_then(|c| c.image_pull_policy.clone())
        .unwrap_or_else(|| default_pull_policy(&image).to_owned());
    let cause = if reason == "InvalidImageName" {
        PullCause::InvalidName
    } else if policy == "Always" && is_latest(&image) {
        PullCause::LatestTag
    } else if policy == "Always" {
        PullCause::PullAlways
    } else {
        PullCause::NotLoaded
    };
    let (facts, hint) = match cause {
        PullCause::InvalidName => (
            format!("image reference {image:?} is invalid"),
            "fix the image reference in the manifest",
        ),
        PullCause::LatestTag => (
            format!(
                "image {image} uses the :latest tag, which defaults imagePullPolicy to Always, so the node pulls from the registry even when the image is loaded"
            ),
            "use a fixed tag (the harness's content tag) or set imagePullPolicy: IfNotPresent",
        ),
        PullCause::PullAlways => (
            format!(
                "image {image} has imagePullPolicy: Always, so the node pulls from the registry even when the image is loaded"
            ),
            "set imagePullPolicy: IfNotPresent for images loaded into kind",
        ),
        PullCause::NotLoaded => (
            format!("image {image} is not on the node and cannot be pulled"),
            "load the image into the kind node (declare it in the lane's images so the harness loads it)",
        ),
    };
    // Timeouts and resets may pass; a definite "no" from the registry, a
    // kind-specific cause or a bad name will not. Transient-looking errors
    // get the component's grace.
    let definitive =
        cause != PullCause::NotLoaded || DEFINITIVE_PULL_ERRORS.iter().any(|d| error.contains(d));
    if !definitive && ctx.elapsed_since(ctx.started) < ctx.tolerance.grace {
        return None;
    }
    let detail = if error.is_empty() {
        String::new()
    } else {
        format!(" ({reason}: {})", first_line(error))
    };
    Some(Verdict {
        kind: VerdictKind::ImagePull { image, cause },
        container: Some(cref.clone()),
        message: format!("{cref}: {facts}{detail}"),
        hint: hint.to_owned(),
    })
}

/// The tag part of an image reference, if any (digest and registry port
/// are not mistaken for tags).
fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

fn is_latest(image: &str) -> bool {
    !image.contains('@') && image_tag(image).is_none_or(|t| t == "latest")
}

/// The API server's default: `Always` for `:latest` or untagged images,
/// `IfNotPresent` otherwise.
fn default_pull_policy(image: &str) -> &'static str {
    if is_latest(image) {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// Parses the kubelet's CreateContainerConfigError messages:
/// `couldn't find key K in Secret NS/NAME`, `secret "NAME" not found`,
/// and their ConfigMap twins.
pub fn parse_missing_ref(message: &str) -> Option<MissingRef> {
    let message = message.strip_prefix("Error: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("couldn't find key ") {
        let (key, rest) = rest.split_once(" in ")?;
        let (kind, name) = rest.split_once(' ')?;
        return Some(MissingRef {
            kind: ref_kind(kind)?,
            name: name.trim().to_owned(),
            key: Some(key.to_owned()),
            object_exists: true,
        });
    }
    let (kind, rest) = message.split_once(" \"")?;
    let (name, tail) = rest.split_once('"')?;
    if tail.trim() != "not found" {
        return None;
    }
    Some(MissingRef {
        kind: ref_kind(kind)?,
        name: name.to_owned(),
        key: None,
        object_exists: false,
    })
}

fn ref_kind(word: &str) -> Option<RefKind> {
    match word.to_ascii_lowercase().as_str() {
        "secret" => Some(RefKind::Secret),
        "configmap" => Some(RefKind::ConfigMap),
        _ => None,
    }
}

/// When the whole object is missing the kubelet does not say which key was
/// wanted; the spec does.
fn fill_key_from_spec(mut missing: MissingRef, spec: Option<&Container>) -> MissingRef {
    if missing.key.is_some() {
        return missing;
    }
    let env = spec.and_then(|c| c.env.as_deref()).unwrap_or_default();
    missing.key = env.iter().find_map(|e| {
        let from = e.value_from.as_ref()?;
        match missing.kind {
            RefKind::Secret => from
                .secret_key_ref
                .as_ref()
                .filter(|r| r.name == missing.name)
                .map(|r| r.key.clone()),
            RefKind::ConfigMap => from
                .config_map_key_ref
                .as_ref()
                .filter(|r| r.name == missing.name)
                .map(|r| r.key.clone()),
        }
    });
    missing
}

fn unschedulable(ctx: &Ctx<'_>) -> Option<Verdict> {
    let conds = ctx.pod.status.as_ref()?.conditions.as_deref();
    let c = conditions::find(conds, "PodScheduled")?;
    if c.status() != "False" || c.reason() != "Unschedulable" {
        return None;
    }
    // A nominated node means the scheduler is preempting lower-priority
    // pods to make room: the pod will be placed once they are gone.
    if ctx
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
    {
        return None;
    }
    if ctx.elapsed_since(c.last_transition()) < SCHEDULE_WINDOW {
        return None;
    }
    let causes = parse_scheduling_message(c.message());
    let primary = causes.iter().find(|c| !c.is_taint()).or(causes.first());
    let hint = match primary {
        Some(SchedulingCause::InsufficientCpu(_) | SchedulingCause::InsufficientMemory(_))
        | Some(SchedulingCause::Insufficient { .. }) => {
            "lower the pod's resource requests, or give the kind nodes more resources"
        }
        Some(SchedulingCause::NodeSelectorOrAffinity(_)) => {
            "no node has the labels the pod's nodeSelector/affinity asks for: label a node in the kind config or drop the selector"
        }
        Some(SchedulingCause::UntoleratedTaint { .. }) => {
            "add a toleration for the taint, or schedule onto untainted worker nodes"
        }
        Some(SchedulingCause::UnboundPvc) => {
            "the pod's PersistentVolumeClaim is not bound: check its storageClassName and ProvisioningFailed events"
        }
        Some(SchedulingCause::NoFreePorts(_)) => "another pod uses the same hostPort on every node",
        _ => "read the scheduler's message",
    };
    let summary = primary.map_or_else(|| c.message().to_owned(), ToString::to_string);
    Some(Verdict {
        kind: VerdictKind::Unschedulable { causes },
        container: None,
        message: format!("pod cannot be scheduled: {summary} ({})", c.message()),
        hint: hint.to_owned(),
    })
}

/// Parses `0/2 nodes are available: 1 Insufficient memory, 1 node(s) had
/// taint {…}, that the pod didn't tolerate.` into causes. Newer schedulers
/// append ` preemption: …`, which restates the same nodes and is dropped.
pub fn parse_scheduling_message(message: &str) -> Vec<SchedulingCause> {
    let body = message.split(" preemption:").next().unwrap_or(message);
    let body = body.split_once("available:").map_or(body, |(_, b)| b);
    let mut causes = Vec::new();
    for clause in split_top_level(body) {
        let clause = clause.trim().trim_end_matches('.');
        if clause.is_empty() {
            continue;
        }
        // "that the pod didn't tolerate" belongs to the preceding taint clause.
        if clause.starts_with("that the pod didn't tolerate") {
            continue;
        }
        let (nodes, text) = match clause.split_once(' ') {
            Some((n, rest)) if n.parse::<u32>().is_ok() => (n.parse().unwrap_or(0), rest),
            _ => (0, clause),
        };
        let cause = if let Some(resource) = text.strip_prefix("Insufficient ") {
            match resource {
                "cpu" => SchedulingCause::InsufficientCpu(nodes),
                "memory" => SchedulingCause::InsufficientMemory(nodes),
                other => SchedulingCause::Insufficient {
                    resource: other.to_owned(),
                    nodes,
                },
            }
        } else if text.contains("taint") {
            let taint = text
                .find('{')
                .and_then(|start| {
                    text[start..]
                        .find('}')
                        .map(|end| &text[start..=start + end])
                })
                .unwrap_or(text);
            SchedulingCause::UntoleratedTaint {
                taint: taint.to_owned(),
                nodes,
            }
        } else if text.contains("node affinity/selector") || text.contains("node selector") {
            SchedulingCause::NodeSelectorOrAffinity(nodes)
        } else if text.contains("unbound immediate PersistentVolumeClaims")
            || text.contains("unbound PersistentVolumeClaim")
        {
            SchedulingCause::UnboundPvc
        } else if text.contains("free ports") {
            SchedulingCause::NoFreePorts(nodes)
        } else {
            SchedulingCause::Other(clause.to_owned())
        };
        causes.push(cause);
    }
    if causes.is_empty() && !message.is_empty() {
        causes.push(SchedulingCause::Other(message.to_owned()));
    }
    causes
}

/// Splits on commas outside `{…}` (taints print as `{key: value}`).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, ch) in s.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Events about one container: the kubelet names it in `fieldPath`.
fn container_events<'a>(ctx: &Ctx<'a>, c: &ContainerRef) -> impl Iterator<Item = &'a Event> {
    let path = c.field_path();
    ctx.events
        .iter()
        .copied()
        .filter(move |e| e.involved_object.field_path.as_deref() == Some(path.as_str()))
}

/// The kubelet's `Unhealthy` Warning events for one container's probes of
/// the given kinds (`Readiness`, `Liveness`, `Startup`).
fn probe_failures<'a>(ctx: &Ctx<'a>, container: &str, kinds: &[&str]) -> Vec<&'a Event> {
    let field_path = format!("spec.containers{{{container}}}");
    ctx.events
        .iter()
        .copied()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some("Unhealthy")
                && e.message.as_deref().is_some_and(|m| {
                    kinds
                        .iter()
                        .any(|k| m.starts_with(&format!("{k} probe failed")))
                })
                && e.involved_object
                    .field_path
                    .as_deref()
                    .is_none_or(|p| p == field_path)
        })
        .collect()
}

fn failing_probe(ctx: &Ctx<'_>, container: &str, kinds: &[&str]) -> Option<String> {
    probe_failures(ctx, container, kinds)
        .into_iter()
        .max_by_key(|e| event_time(e))
        .and_then(|e| e.message.clone())
}

fn readiness_probe(
    ctx: &Ctx<'_>,
    cs: &ContainerStatus,
    cref: &ContainerRef,
    spec: Option<&Container>,
) -> Option<Verdict> {
    let failures = probe_failures(ctx, &cs.name, &["Readiness"]);
    let latest = failures.iter().max_by_key(|e| event_time(e))?;
    // Probes fail while the app warms up; only past grace is it a verdict.
    if ctx.elapsed_since(ctx.started) < ctx.tolerance.grace {
        return None;
    }
    let count: i32 = failures.iter().map(|e| e.count.unwrap_or(1)).sum();
    let message = latest.message.as_deref().unwrap_or_default();
    let output = message
        .strip_prefix("Readiness probe failed:")
        .unwrap_or(message)
        .trim();
    let target = probe_target(spec.and_then(|c| c.readiness_probe.as_ref()), output);
    let output = if output.is_empty() {
        "(no output)".to_owned()
    } else {
        output.to_owned()
    };
    Some(Verdict {
        kind: VerdictKind::ReadinessProbeFailing {
            target: target.clone(),
        },
        container: Some(cref.clone()),
        message: format!("{cref} is running but its readiness probe {target} failed {count} times: {output}"),
        hint: "check that the probe's port/path or command match what the app serves, and that its dependencies are up"
            .to_owned(),
    })
}

/// Describes what a readiness probe checks: the URL from the kubelet's
/// message when it names one (it has the pod IP filled in), else the spec.
fn probe_target(probe: Option<&Probe>, output: &str) -> String {
    if let Some(url) = quoted_url(output) {
        return format!("GET {url}");
    }
    let Some(probe) = probe else {
        return "(no probe in spec)".to_owned();
    };
    if let Some(h) = &probe.http_get {
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let host = h.host.as_deref().unwrap_or("<pod-ip>");
        return format!(
            "GET {scheme}://{host}:{}{}",
            port(&h.port),
            h.path.as_deref().unwrap_or("/")
        );
    }
    // exec, tcp and grpc probes are said as everywhere else.
    describe_probe(probe)
}

/// A readiness probe in a few words: `GET :8080/ready`, `exec [cat /tmp/ok]`,
/// `tcp :5432`.
pub fn describe_probe(probe: &Probe) -> String {
    if let Some(h) = &probe.http_get {
        return format!("GET :{}{}", port(&h.port), h.path.as_deref().unwrap_or("/"));
    }
    if let Some(e) = &probe.exec {
        return format!("exec {:?}", e.command.as_deref().unwrap_or_default());
    }
    if let Some(t) = &probe.tcp_socket {
        return format!("tcp :{}", port(&t.port));
    }
    if let Some(g) = &probe.grpc {
        return format!("grpc :{}", g.port);
    }
    "(unknown probe)".to_owned()
}

fn port(p: &IntOrString) -> String {
    match p {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `Get "http://10.0.0.1:9999/healthz": dial tcp …` → the URL.
fn quoted_url(output: &str) -> Option<&str> {
    let start = output.find("\"http")? + 1;
    let len = output[start..].find('"')?;
    Some(&output[start..start + len])
}

/// An event's most recent time: `lastTimestamp`, else `eventTime`, else
/// `firstTimestamp`, else its creation (servers fill different fields).
pub(crate) fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn sandbox(ctx: &Ctx<'_>) -> Option<Verdict> {
    let status = ctx.pod.status.as_ref()?;
    // Only while some container still waits to be created: once the sandbox
    // exists, old FailedCreatePodSandBox events are history.
    let creating = status
        .container_statuses
        .iter()
        .chain(status.init_container_statuses.iter())
        .flatten()
        .any(|cs| {
            cs.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("ContainerCreating")
        });
    if !creating {
        return None;
    }
    let failures: Vec<&&Event> = ctx
        .events
        .iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some("FailedCreatePodSandBox")
        })
        .collect();
    let first = failures
        .iter()
        .filter_map(|e| {
            e.first_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| event_time(e))
        })
        .min()?;
    if ctx.elapsed_since(Some(first)) < SANDBOX_WINDOW.max(ctx.tolerance.grace) {
        return None;
    }
    // "failed to reserve sandbox name" is a consequence of the previous
    // attempt; the root cause is in the other messages.
    let root = failures
        .iter()
        .filter(|e| {
            !e.message
                .as_deref()
                .unwrap_or_default()
                .contains("failed to reserve sandbox name")
        })
        .max_by_key(|e| event_time(e))
        .or_else(|| failures.iter().max_by_key(|e| event_time(e)))?;
    let count: i32 = failures.iter().map(|e| e.count.unwrap_or(1)).sum();
    let message = root.message.as_deref().unwrap_or_default();
    let hint = if message.contains("failed to setup network") || message.contains("cni") {
        "the node's CNI cannot set up pod networking: recreate the kind cluster (a stale cni0 bridge survives node restarts)"
    } else {
        "the container runtime cannot create the pod sandbox: read the kubelet/containerd logs of the node"
    };
    Some(Verdict {
        kind: VerdictKind::SandboxCreateFailed,
        container: None,
        message: format!("pod sandbox creation failed {count} times: {message}"),
        hint: hint.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduling_messages_parse_into_causes() {
        let cases: &[(&str, &[SchedulingCause])] = &[
            (
                "0/3 nodes are available: 3 Insufficient cpu.",
                &[SchedulingCause::InsufficientCpu(3)],
            ),
            (
                "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
                &[SchedulingCause::NoFreePorts(2)],
            ),
            (
                "0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 3 Insufficient nvidia.com/gpu.",
                &[
                    SchedulingCause::UntoleratedTaint {
                        taint: "{node-role.kubernetes.io/control-plane: }".to_owned(),
                        nodes: 1,
                    },
                    SchedulingCause::Insufficient {
                        resource: "nvidia.com/gpu".to_owned(),
                        nodes: 3,
                    },
                ],
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(parse_scheduling_message(message), *expected, "{message}");
        }
    }

    #[test]
    fn missing_refs_parse_for_configmaps_too() {
        let m = parse_missing_ref("couldn't find key level in ConfigMap ns/app-config").unwrap();
        assert_eq!(m.kind, RefKind::ConfigMap);
        assert_eq!(m.name, "ns/app-config");
        assert_eq!(m.key.as_deref(), Some("level"));
        let m = parse_missing_ref("configmap \"settings\" not found").unwrap();
        assert_eq!(
            (m.kind, m.name.as_str(), m.object_exists),
            (RefKind::ConfigMap, "settings", false)
        );
        assert_eq!(
            parse_missing_ref("container has runAsNonRoot and image will run as root"),
            None
        );
    }

    #[test]
    fn latest_is_recognised_without_mistaking_ports_or_digests() {
        for (image, latest) in [
            ("app", true),
            ("app:latest", true),
            ("localhost:5000/app", true),
            ("localhost:5000/app:v1", false),
            ("app@sha256:abc", false),
            ("fixtures/app:v1", false),
        ] {
            assert_eq!(is_latest(image), latest, "{image}");
        }
    }
}
