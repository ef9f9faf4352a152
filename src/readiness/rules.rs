//! Per-kind readiness rules.
//!
//! Each rule is a pure function from one object (plus, where a kind's
//! readiness depends on other objects, those: a Service's endpoints, the
//! Services a webhook calls) to a [`Status`]. The order follows kstatus
//! (cli-utils `pkg/kstatus/status/core.go`): a common prefix first (deletion
//! → Terminating, a controller that has not yet observed the latest
//! generation → InProgress), then the kind's own rule, with the corrections
//! other tools made: a Job is Ready only when Complete, a CRD needs
//! NamesAccepted, a pod in phase Failed is a failure. Which rule judges a
//! kind is [`super::kinds`]' table; what the lane file says
//! ([`super::overrides`]) comes before it. A kind without a rule and
//! without status conditions is Ready once it exists (kstatus's "Current");
//! one whose conditions say nothing of Ready is [`State::Unknown`], never
//! Ready, and its message says how the lane file can tell. Rules
//! deliberately take no clock: whether a not-yet-ready pod is *doomed*
//! depends on time and tolerance, and is [`super::classify`]'s job; a
//! status that will not change once nothing else is on its way (a webhook
//! whose Service has no endpoint) is marked [`Status::fails_when_alone`] for
//! the judge to time. Something worth knowing about a Ready object (a
//! disruption budget that refuses every eviction) is its [`Status::note`].
//! Fields are read defensively (defaults where the API server defaults, no
//! panics on absent status) because the objects may come from any
//! Kubernetes version between 1.20 and the newest; kinds whose shape
//! changed between versions (autoscalers, disruption budgets) are read as
//! JSON, whatever their version.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::fmt;

use super::conditions::{self, Condition};
use super::kinds::{self, Rule};
use super::overrides::{Overrides, ReadyWhen};

/// Where an object stands on its way to Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// The object does what it is for: the waiter may move on.
    Ready,
    /// Not there yet, but nothing says it will not get there.
    InProgress,
    /// It will not get there without a change (deadline exceeded, job failed, name conflict...).
    Failed,
    /// Being deleted.
    Terminating,
    /// The rules cannot tell (an unknown kind without conditions). Never treated as Ready.
    Unknown,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Ready => "Ready",
            State::InProgress => "InProgress",
            State::Failed => "Failed",
            State::Terminating => "Terminating",
            State::Unknown => "Unknown",
        })
    }
}

/// The readiness of one object: a state, a short CamelCase reason and a
/// human sentence saying what is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Where the object stands.
    pub state: State,
    /// A short machine-friendly reason, usually the API's own (e.g. `ProgressDeadlineExceeded`).
    pub reason: String,
    /// What is missing or what went wrong, in words.
    pub message: String,
    /// Something worth telling about an object that does not block it (a
    /// disruption budget that refuses every eviction, an autoscaler that
    /// cannot read metrics).
    pub note: Option<String>,
    /// Whether this InProgress status becomes a failure once nothing else
    /// of the component is on its way: a webhook whose Service has no ready
    /// endpoint when every workload that could serve it is Ready will not
    /// get one (the judge gives the endpoints controller a window first).
    pub fails_when_alone: bool,
}

impl Status {
    /// A status with no note.
    pub fn new(state: State, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            state,
            reason: reason.into(),
            message: message.into(),
            note: None,
            fails_when_alone: false,
        }
    }
    fn ready(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(State::Ready, reason, message)
    }
    fn in_progress(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(State::InProgress, reason, message)
    }
    fn failed(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(State::Failed, reason, message)
    }
    fn unknown(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(State::Unknown, reason, message)
    }
    fn noting(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }

    /// Whether the object is Ready.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }
}

/// Why [`evaluate`] could not apply a rule.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The object lacks `apiVersion` or `kind`, so no rule can be chosen.
    #[error("object has no apiVersion/kind; cannot choose a readiness rule")]
    MissingKind,
    /// The object claims a built-in kind but does not decode as one.
    #[error("object does not decode as {kind}")]
    Decode {
        /// The kind the object claimed to be.
        kind: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

/// What a rule needs besides the object itself: the objects its readiness
/// depends on, what the cluster provides, and what the lane file says.
#[derive(Clone, Copy, Debug, Default)]
pub struct Related<'a> {
    /// `Endpoints` objects, matched to a Service by namespace and name (a
    /// Service's own, the Services' a webhook calls), where the server
    /// serves no EndpointSlices.
    pub endpoints: &'a [Endpoints],
    /// EndpointSlices, matched to a Service by its namespace and the label
    /// `kubernetes.io/service-name`; others are ignored.
    pub endpoint_slices: &'a [EndpointSlice],
    /// The Services that webhooks call, as fetched (one missing here does
    /// not exist, as far as the caller knows).
    pub services: &'a [Service],
    /// What the cluster provides.
    pub cluster: ClusterTraits,
    /// What the lane file says Ready means for some objects.
    pub overrides: Option<&'a Overrides>,
}

/// What the cluster provides that some rules depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterTraits {
    /// Whether LoadBalancer Services get an address. A kind cluster has no
    /// cloud provider to give one (without cloud-provider-kind or MetalLB),
    /// so there a LoadBalancer Service is judged as any other.
    pub load_balancer_addresses: bool,
}

impl Default for ClusterTraits {
    /// The strictest: addresses are expected.
    fn default() -> Self {
        Self {
            load_balancer_addresses: true,
        }
    }
}

/// The common kstatus prefix: deletion first, then a controller that has not
/// observed the latest spec yet (its status describes an older generation).
fn prefix(meta: &ObjectMeta, observed_generation: Option<i64>) -> Option<Status> {
    if meta.deletion_timestamp.is_some() {
        return Some(Status::new(
            State::Terminating,
            "Terminating",
            "object is being deleted",
        ));
    }
    match (meta.generation, observed_generation) {
        (Some(generation), Some(observed)) if generation != observed => Some(Status::in_progress(
            "ObservedGenerationMismatch",
            format!("controller has observed generation {observed}, latest is {generation}"),
        )),
        _ => None,
    }
}

/// The prefix for objects whose controller reports `observedGeneration`:
/// without it the status is the API server's empty default (all counts 0),
/// which would make a just-created DaemonSet look "0 of 0 ready".
fn controller_prefix(meta: &ObjectMeta, observed_generation: Option<i64>) -> Option<Status> {
    prefix(meta, observed_generation).or_else(|| {
        observed_generation.is_none().then(|| {
            Status::in_progress(
                "NotObserved",
                "its controller has not reported a status yet",
            )
        })
    })
}

fn count(value: Option<i32>) -> i32 {
    value.unwrap_or(0)
}

/// Deployment: Failed on `ProgressDeadlineExceeded`, any `Progressing=False`
/// (kapp) or `ReplicaFailure=True`; Ready only when every desired replica is
/// updated, available and ready, no old replica is left, and `Available=True`.
/// Helm 3's `replicas - maxUnavailable` shortcut is deliberately not used: it
/// passes with fewer pods than asked for.
pub fn deployment(d: &Deployment) -> Status {
    let status = d.status.clone().unwrap_or_default();
    if let Some(s) = controller_prefix(&d.metadata, status.observed_generation) {
        return s;
    }
    let conds = status.conditions.as_deref();
    if let Some(c) = conditions::find(conds, "Progressing")
        && (c.reason() == "ProgressDeadlineExceeded" || c.status() == "False")
    {
        return Status::failed(non_empty(c.reason(), "NotProgressing"), c.message());
    }
    if let Some(c) = conditions::find(conds, "ReplicaFailure")
        && c.status() == "True"
    {
        return Status::failed(non_empty(c.reason(), "ReplicaFailure"), c.message());
    }
    let spec = d.spec.clone().unwrap_or_default();
    if spec.paused == Some(true) {
        return Status::in_progress("Paused", "deployment is paused; it will not roll out");
    }
    // The API server defaults spec.replicas to 1.
    let desired = spec.replicas.unwrap_or(1);
    let updated = count(status.updated_replicas);
    let total = count(status.replicas);
    let available = count(status.available_replicas);
    let ready = count(status.ready_replicas);
    if updated < desired {
        return Status::in_progress(
            "RollingOut",
            format!("{updated} of {desired} replicas updated"),
        );
    }
    if total > updated {
        return Status::in_progress(
            "OldReplicasPending",
            format!("{} old replicas pending termination", total - updated),
        );
    }
    if available < desired {
        return Status::in_progress(
            "ReplicasUnavailable",
            format!("{available} of {desired} replicas available"),
        );
    }
    if ready < desired {
        return Status::in_progress(
            "ReplicasNotReady",
            format!("{ready} of {desired} replicas ready"),
        );
    }
    if !conditions::is_true(conds, "Available") {
        let message = conditions::find(conds, "Available")
            .map(|c| c.message().to_owned())
            .unwrap_or_else(|| "no Available condition yet".to_owned());
        return Status::in_progress("NotAvailable", message);
    }
    Status::ready(
        "Available",
        format!("{ready} of {desired} replicas ready and available"),
    )
}

/// ReplicaSet: `ReplicaFailure=True` (quota exceeded, admission webhook
/// refused the pods) is a failure carrying the controller's message;
/// otherwise every desired replica must be ready and available.
pub fn replica_set(rs: &ReplicaSet) -> Status {
    let status = rs.status.clone().unwrap_or_default();
    if let Some(s) = controller_prefix(&rs.metadata, status.observed_generation) {
        return s;
    }
    if let Some(c) = conditions::find(status.conditions.as_deref(), "ReplicaFailure")
        && c.status() == "True"
    {
        return Status::failed(non_empty(c.reason(), "ReplicaFailure"), c.message());
    }
    let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = count(status.ready_replicas);
    let available = count(status.available_replicas);
    if ready < desired || available < desired {
        return Status::in_progress(
            "ReplicasNotReady",
            format!("{ready} of {desired} replicas ready, {available} available"),
        );
    }
    Status::ready("Available", format!("{ready} of {desired} replicas ready"))
}

/// StatefulSet: every desired replica ready (and available where the server
/// reports it); for `RollingUpdate` the rollout must be finished: with a
/// partition, the pods at or above it updated; without, `currentRevision ==
/// updateRevision`. `OnDelete` never rolls out by itself, so revisions are
/// not compared (kstatus), but the replicas must still be ready.
pub fn stateful_set(s: &StatefulSet) -> Status {
    let status = s.status.clone().unwrap_or_default();
    if let Some(st) = controller_prefix(&s.metadata, status.observed_generation) {
        return st;
    }
    let spec = s.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let ready = count(status.ready_replicas);
    if status.replicas < desired {
        return Status::in_progress(
            "ReplicasPending",
            format!("{} of {desired} replicas created", status.replicas),
        );
    }
    if ready < desired {
        return Status::in_progress(
            "ReplicasNotReady",
            format!("{ready} of {desired} replicas ready"),
        );
    }
    // availableReplicas is absent before 1.22-ish servers; only judge it when reported.
    if let Some(available) = status.available_replicas
        && available < desired
    {
        return Status::in_progress(
            "ReplicasUnavailable",
            format!("{available} of {desired} replicas available"),
        );
    }
    let strategy = spec.update_strategy.unwrap_or_default();
    if strategy.type_.as_deref() == Some("OnDelete") {
        return Status::ready(
            "OnDelete",
            format!("{ready} of {desired} replicas ready (OnDelete: rollout is manual)"),
        );
    }
    let partition = strategy
        .rolling_update
        .and_then(|r| r.partition)
        .unwrap_or(0);
    if partition > 0 {
        let expected = (desired - partition).max(0);
        let updated = count(status.updated_replicas);
        if updated < expected {
            return Status::in_progress(
                "PartitionRollingOut",
                format!("{updated} of {expected} replicas above partition {partition} updated"),
            );
        }
        return Status::ready(
            "PartitionRolledOut",
            format!("{ready} of {desired} replicas ready; partition {partition} rolled out"),
        );
    }
    let current = status.current_revision.as_deref().unwrap_or_default();
    let update = status.update_revision.as_deref().unwrap_or_default();
    if current != update {
        return Status::in_progress(
            "RollingOut",
            format!("revision {update} rolling out (current {current})"),
        );
    }
    let current_replicas = count(status.current_replicas);
    if current_replicas < desired {
        return Status::in_progress(
            "RollingOut",
            format!("{current_replicas} of {desired} replicas at revision {current}"),
        );
    }
    Status::ready("Ready", format!("{ready} of {desired} replicas ready"))
}

/// DaemonSet: every node that should run a pod runs one that is current,
/// updated (unless `OnDelete`), available and ready.
pub fn daemon_set(d: &DaemonSet) -> Status {
    let status = d.status.clone().unwrap_or_default();
    if let Some(s) = controller_prefix(&d.metadata, status.observed_generation) {
        return s;
    }
    let desired = status.desired_number_scheduled;
    let on_delete = d
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete");
    if status.current_number_scheduled < desired {
        return Status::in_progress(
            "PodsNotScheduled",
            format!(
                "{} of {desired} nodes run a pod",
                status.current_number_scheduled
            ),
        );
    }
    let updated = count(status.updated_number_scheduled);
    if !on_delete && updated < desired {
        return Status::in_progress("RollingOut", format!("{updated} of {desired} pods updated"));
    }
    let available = count(status.number_available);
    if available < desired {
        return Status::in_progress(
            "PodsUnavailable",
            format!("{available} of {desired} pods available"),
        );
    }
    if status.number_ready < desired {
        return Status::in_progress(
            "PodsNotReady",
            format!("{} of {desired} pods ready", status.number_ready),
        );
    }
    Status::ready(
        "Ready",
        format!("{} of {desired} pods ready", status.number_ready),
    )
}

/// Job: only `Complete=True` is Ready (kstatus calls a running Job done;
/// Flux and Helm 4 fixed that). `Failed=True`, and `FailureTarget=True` which
/// newer servers set while the failed Job's pods are being terminated, are
/// failures carrying the controller's reason (e.g. `BackoffLimitExceeded`).
pub fn job(j: &Job) -> Status {
    // Jobs report no observedGeneration; the prefix still catches deletion.
    if let Some(s) = prefix(&j.metadata, None) {
        return s;
    }
    let status = j.status.clone().unwrap_or_default();
    let conds = status.conditions.as_deref();
    for failing in ["Failed", "FailureTarget"] {
        if let Some(c) = conditions::find(conds, failing)
            && c.status() == "True"
        {
            return Status::failed(
                non_empty(c.reason(), "JobFailed"),
                non_empty(c.message(), "job failed"),
            );
        }
    }
    if conditions::is_true(conds, "Complete") {
        return Status::ready(
            "Complete",
            format!("{} pods succeeded", count(status.succeeded)),
        );
    }
    if conditions::is_true(conds, "Suspended") {
        return Status::in_progress("Suspended", "job is suspended");
    }
    Status::in_progress(
        "Running",
        format!(
            "{} active, {} succeeded, {} failed",
            count(status.active),
            count(status.succeeded),
            count(status.failed)
        ),
    )
}

/// CRD: usable only when `Established=True` and `NamesAccepted=True` (kapp);
/// `NamesAccepted=False` is a naming conflict that will not resolve itself.
pub fn crd(c: &CustomResourceDefinition) -> Status {
    if let Some(s) = prefix(&c.metadata, None) {
        return s;
    }
    let conds = c.status.as_ref().and_then(|s| s.conditions.as_deref());
    if let Some(names) = conditions::find(conds, "NamesAccepted")
        && names.status() == "False"
    {
        return Status::failed(
            non_empty(names.reason(), "NamesNotAccepted"),
            names.message(),
        );
    }
    let names = conditions::is_true(conds, "NamesAccepted");
    let established = conditions::is_true(conds, "Established");
    match (names, established) {
        (true, true) => Status::ready("Established", "names accepted and established"),
        (false, _) => Status::in_progress("NamesNotAccepted", "names not accepted yet"),
        (true, false) => Status::in_progress("NotEstablished", "not established yet"),
    }
}

/// Whether the pod is controlled by a Job: such pods are *meant* to finish,
/// so `Succeeded` is their Ready and they are never "unready pods".
pub fn is_job_pod(pod: &Pod) -> bool {
    pod.metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|o| o.kind == "Job" && o.controller == Some(true))
}

/// Pod: Running with `Ready=True` is Ready. Phase Failed is a failure
/// (kstatus wrongly calls it done), except eviction and preemption, which the
/// owning controller replaces (Krane). `Succeeded` is done only for Job pods:
/// any other pod that exited serves nothing and will not come back.
pub fn pod(p: &Pod) -> Status {
    if let Some(s) = prefix(&p.metadata, None) {
        return s;
    }
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let pod_reason = status.reason.as_deref().unwrap_or_default();
    let conds = status.conditions.as_deref();
    match phase {
        "Failed" if is_replaced(pod_reason) => Status::in_progress(
            pod_reason,
            non_empty(
                status.message.as_deref().unwrap_or_default(),
                "pod was evicted; its controller will replace it",
            ),
        ),
        "Failed" => Status::failed(
            non_empty(pod_reason, "PodFailed"),
            non_empty(
                status.message.as_deref().unwrap_or_default(),
                "all containers terminated and at least one failed",
            ),
        ),
        "Succeeded" if is_job_pod(p) => Status::ready("Completed", "job pod completed"),
        "Succeeded" => Status::failed(
            "Completed",
            "pod ran to completion and will not restart; it serves nothing",
        ),
        _ => {
            if let Some(c) = conditions::find(conds, "PodScheduled")
                && c.status() == "False"
            {
                return Status::in_progress(non_empty(c.reason(), "NotScheduled"), c.message());
            }
            if phase == "Running" && conditions::is_true(conds, "Ready") {
                return Status::ready("Ready", "pod is running and ready");
            }
            // Prefer the most specific cause the pod shows.
            if let Some(c) = conditions::find(conds, "Initialized")
                && c.status() == "False"
            {
                return Status::in_progress(non_empty(c.reason(), "NotInitialized"), c.message());
            }
            if let Some(c) = conditions::find(conds, "Ready") {
                return Status::in_progress(non_empty(c.reason(), "NotReady"), c.message());
            }
            Status::in_progress(phase, format!("pod is {phase}"))
        }
    }
}

/// Pod failure reasons after which the owning controller creates a
/// replacement: transient for the component, not a verdict on it.
pub(crate) fn is_replaced(pod_reason: &str) -> bool {
    matches!(
        pod_reason,
        "Evicted" | "Preempting" | "Terminated" | "Shutdown" | "NodeShutdown"
    )
}

/// PersistentVolumeClaim: Bound is Ready, Lost is a failure. Pending is in
/// progress; on kind's default `standard` class (`WaitForFirstConsumer`) a
/// claim stays Pending until a pod using it is scheduled, so the message
/// says so rather than declaring the claim broken.
pub fn pvc(p: &PersistentVolumeClaim) -> Status {
    if let Some(s) = prefix(&p.metadata, None) {
        return s;
    }
    match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Bound") => Status::ready("Bound", "claim is bound"),
        Some("Lost") => Status::failed("Lost", "the bound volume no longer exists"),
        phase => Status::in_progress(
            phase.unwrap_or("Pending"),
            "claim is not bound (with WaitForFirstConsumer it binds when a pod using it is scheduled)",
        ),
    }
}

/// Service: Ready when traffic can reach it. ExternalName needs nothing; a
/// selector-less Service has endpoints managed by someone else, so it is
/// Ready as created; a LoadBalancer needs an ingress address where the
/// cluster gives one ([`ClusterTraits`]; a kind cluster does not, and there
/// it is judged as any other Service, its missing address a note);
/// otherwise at least one *ready* endpoint, from EndpointSlices (nil
/// `ready` means ready, per the API) or the Endpoints object. Headless
/// Services with `publishNotReadyAddresses` publish unready pods too, so
/// any endpoint counts for them.
pub fn service(s: &Service, related: &Related<'_>) -> Status {
    if let Some(st) = prefix(&s.metadata, None) {
        return st;
    }
    let spec = s.spec.clone().unwrap_or_default();
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if type_ == "ExternalName" {
        return Status::ready("ExternalName", "external name needs no endpoints");
    }
    let mut note = None;
    if type_ == "LoadBalancer" {
        let has_address = s
            .status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .is_some_and(|i| !i.is_empty());
        if !has_address {
            if related.cluster.load_balancer_addresses {
                return Status::in_progress(
                    "NoLoadBalancerAddress",
                    "load balancer has no ingress address yet",
                );
            }
            note = Some(
                "LoadBalancer Service without an address: this cluster gives none (kind needs cloud-provider-kind or MetalLB); reach it by its cluster IP or a NodePort".to_owned(),
            );
        }
    }
    if spec.selector.as_ref().is_none_or(|sel| sel.is_empty()) {
        return Status::ready(
            "NoSelector",
            "endpoints are managed outside the cluster's controllers",
        )
        .noting(note);
    }
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let name = s.metadata.name.as_deref().unwrap_or_default();
    let (ready, not_ready) = count_endpoints(s.metadata.namespace.as_deref(), name, related);
    if ready > 0 || (publish_not_ready && not_ready > 0) {
        return Status::ready("EndpointsReady", format!("{ready} ready endpoints")).noting(note);
    }
    if not_ready > 0 {
        return Status::in_progress(
            "EndpointsNotReady",
            format!("{not_ready} endpoints, none ready: the selected pods are not Ready"),
        );
    }
    Status::in_progress("NoEndpoints", "no pod matches the selector yet")
}

/// Whether two namespaces may be the same object's: equal, or one unknown
/// (an object read without its namespace).
fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Ready and not-ready endpoint addresses of the Service `name` in
/// `namespace`. Slices are preferred (Endpoints is deprecated since 1.33 and
/// truncated at 1000 addresses); the Endpoints object is the fallback.
fn count_endpoints(namespace: Option<&str>, name: &str, related: &Related<'_>) -> (usize, usize) {
    let slices: Vec<&EndpointSlice> = related
        .endpoint_slices
        .iter()
        .filter(|sl| {
            same_namespace(sl.metadata.namespace.as_deref(), namespace)
                && sl
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    .is_some_and(|n| n == name)
        })
        .collect();
    if !slices.is_empty() {
        let (mut ready, mut not_ready) = (0, 0);
        for ep in slices.iter().flat_map(|sl| sl.endpoints.iter()) {
            let is_ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if is_ready {
                ready += 1;
            } else {
                not_ready += 1;
            }
        }
        return (ready, not_ready);
    }
    // Endpoints share the Service's name; another Service's object must not count.
    let subsets = related
        .endpoints
        .iter()
        .find(|e| {
            e.metadata.name.as_deref() == Some(name)
                && same_namespace(e.metadata.namespace.as_deref(), namespace)
        })
        .and_then(|e| e.subsets.as_deref())
        .unwrap_or_default();
    subsets.iter().fold((0, 0), |(r, n), sub| {
        (
            r + sub.addresses.as_ref().map_or(0, Vec::len),
            n + sub.not_ready_addresses.as_ref().map_or(0, Vec::len),
        )
    })
}

/// Readiness of any object as returned by the API server: what the lane
/// file says for it first ([`Related::overrides`]), then the rule
/// [`kinds`]' table names for its kind, then [`generic`] for kinds the
/// harness does not know (the project's CRs).
pub fn evaluate(object: &Value, related: &Related<'_>) -> Result<Status, RuleError> {
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Err(RuleError::MissingKind);
    };
    fn typed<T: serde::de::DeserializeOwned>(object: &Value, kind: &str) -> Result<T, RuleError> {
        T::deserialize(object).map_err(|source| RuleError::Decode {
            kind: kind.to_owned(),
            source,
        })
    }
    let group = kinds::group_of(api_version);
    if let Some(o) = related.overrides.and_then(|overrides| {
        let meta = |field: &str| {
            object
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
        };
        overrides.find(
            group,
            kind,
            meta("namespace"),
            meta("name").unwrap_or_default(),
        )
    }) {
        return Ok(overridden(object, &o.ready_when, &o.from));
    }
    let Some(row) = kinds::lookup(group, kind) else {
        return Ok(generic(object));
    };
    Ok(match row.rule {
        Rule::Deployment => deployment(&typed(object, kind)?),
        Rule::ReplicaSet => replica_set(&typed(object, kind)?),
        Rule::StatefulSet => stateful_set(&typed(object, kind)?),
        Rule::DaemonSet => daemon_set(&typed(object, kind)?),
        Rule::ReplicationController => replication_controller(object),
        Rule::Job => job(&typed(object, kind)?),
        Rule::CustomResourceDefinition => crd(&typed(object, kind)?),
        Rule::Pod => pod(&typed(object, kind)?),
        Rule::PersistentVolumeClaim => pvc(&typed(object, kind)?),
        Rule::Service => service(&typed(object, kind)?, related),
        Rule::Namespace => namespace(object),
        Rule::HorizontalPodAutoscaler => autoscaler(object),
        Rule::PodDisruptionBudget => disruption_budget(object),
        Rule::Ingress => ingress(object),
        Rule::ResourceQuota => resource_quota(object),
        Rule::ApiService => api_service(object),
        Rule::Webhook => webhook(object, related),
        Rule::Exists => exists(object, &format!("{kind} has no status; it exists")),
    })
}

/// Ready once it exists and is not being deleted.
fn exists(object: &Value, message: &str) -> Status {
    generic_prefix(object).unwrap_or_else(|| Status::ready("Exists", message))
}

/// What the lane file says Ready means for this object (`from` is where).
fn overridden(object: &Value, when: &ReadyWhen, from: &str) -> Status {
    match when {
        ReadyWhen::Exists => {
            let deleting = object
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null());
            if deleting {
                Status::new(State::Terminating, "Terminating", "object is being deleted")
            } else {
                Status::ready(
                    "Exists",
                    format!("it exists, and the lane file says that is Ready ({from})"),
                )
            }
        }
        ReadyWhen::Condition(type_) => {
            if let Some(s) = generic_prefix(object) {
                return s;
            }
            match json_condition(object, type_) {
                Some(c) if c.status == "True" => Status::ready(
                    non_empty(c.reason, type_),
                    format!("{type_} is True, which the lane file says is Ready ({from})"),
                ),
                Some(c) => Status::in_progress(
                    non_empty(c.reason, &format!("Not{type_}")),
                    non_empty(
                        c.message,
                        &format!("{type_} is {}", non_empty(c.status, "unset")),
                    ),
                ),
                None => Status::in_progress(
                    format!("No{type_}Condition"),
                    format!(
                        "no {type_} condition yet; the lane file says it is Ready when {type_} is True ({from})"
                    ),
                ),
            }
        }
    }
}

fn namespace(object: &Value) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    match object.pointer("/status/phase").and_then(Value::as_str) {
        Some("Terminating") => Status::new(
            State::Terminating,
            "Terminating",
            "namespace is being deleted",
        ),
        _ => Status::ready("Active", "namespace is active"),
    }
}

fn generic_prefix(object: &Value) -> Option<Status> {
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return Some(Status::new(
            State::Terminating,
            "Terminating",
            "object is being deleted",
        ));
    }
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let observed = object
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if let (Some(generation), Some(observed)) = (generation, observed)
        && generation != observed
    {
        return Some(Status::in_progress(
            "ObservedGenerationMismatch",
            format!("controller has observed generation {observed}, latest is {generation}"),
        ));
    }
    None
}

/// A condition read from untyped JSON, tolerating missing fields.
struct JsonCondition<'a> {
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

fn conditions_of(object: &Value) -> &[Value] {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn find_condition<'a>(conds: &'a [Value], type_: &str) -> Option<JsonCondition<'a>> {
    let c = conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let field = |name: &str| c.get(name).and_then(Value::as_str).unwrap_or_default();
    Some(JsonCondition {
        status: field("status"),
        reason: field("reason"),
        message: field("message"),
    })
}

fn json_condition<'a>(object: &'a Value, type_: &str) -> Option<JsonCondition<'a>> {
    find_condition(conditions_of(object), type_)
}

/// The rule for kinds the harness has no rule for (the project's own CRs):
/// kstatus's generic rule. `Stalled=True` → Failed, `Reconciling=True` →
/// InProgress, then `Ready` decides; an object without status conditions is
/// Ready once it exists and its controller (if it reports
/// `observedGeneration`) has seen the latest spec — kstatus's "Current". An
/// object whose conditions say nothing of `Ready` is [`State::Unknown`]:
/// its controller reports something, and only the project knows which
/// condition means Ready; the message names the conditions and the lane
/// file's key that says it.
pub fn generic(object: &Value) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    if let Some(c) = json_condition(object, "Stalled")
        && c.status == "True"
    {
        return Status::failed(non_empty(c.reason, "Stalled"), c.message);
    }
    if let Some(c) = json_condition(object, "Reconciling")
        && c.status == "True"
    {
        return Status::in_progress(non_empty(c.reason, "Reconciling"), c.message);
    }
    match json_condition(object, "Ready") {
        Some(c) if c.status == "True" => Status::ready(non_empty(c.reason, "Ready"), c.message),
        Some(c) => Status::in_progress(
            non_empty(c.reason, "NotReady"),
            non_empty(
                c.message,
                &format!("Ready is {}", non_empty(c.status, "unset")),
            ),
        ),
        None => {
            let conds = conditions_of(object);
            let malformed = object
                .pointer("/status/conditions")
                .is_some_and(|c| !c.is_null() && !c.is_array());
            if malformed {
                return Status::unknown(
                    "MalformedConditions",
                    "its status.conditions is not a list; no rule can read it",
                );
            }
            if conds.is_empty() {
                let kind = object.get("kind").and_then(Value::as_str).unwrap_or("it");
                return Status::ready(
                    "Current",
                    format!(
                        "{kind} reports no status conditions: Ready once it exists (kstatus's Current)"
                    ),
                );
            }
            let seen: Vec<String> = conds
                .iter()
                .filter_map(|c| {
                    Some(format!(
                        "{}={}",
                        c.get("type")?.as_str()?,
                        c.get("status").and_then(Value::as_str).unwrap_or("?")
                    ))
                })
                .collect();
            let first_true = conds.iter().find_map(|c| {
                (c.get("status")?.as_str()? == "True").then(|| c.get("type")?.as_str())?
            });
            Status::unknown(
                "NoReadyCondition",
                format!(
                    "its conditions ({}) say nothing of Ready, and no rule says which means Ready for this kind: say it in the lane file, e.g. `readiness: {{{}: {{condition: {}}}}}`",
                    seen.join(", "),
                    selector_of(object),
                    first_true.unwrap_or("<Type>"),
                ),
            )
        }
    }
}

/// The lane file's key for an object's kind: `Kind.group` (`Kind` in the
/// core group).
fn selector_of(object: &Value) -> String {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("Kind");
    let group = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(kinds::group_of)
        .unwrap_or_default();
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

fn non_empty(value: &str, fallback: &str) -> String {
    if value.is_empty() {
        fallback.to_owned()
    } else {
        value.to_owned()
    }
}

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

/// ReplicationController, the ReplicaSet's predecessor (read as JSON: its
/// selector is a plain map): `ReplicaFailure=True` is a failure, otherwise
/// every desired replica must be ready and available.
pub fn replication_controller(object: &Value) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    if int(object, "/status/observedGeneration").is_none() {
        return Status::in_progress(
            "NotObserved",
            "its controller has not reported a status yet",
        );
    }
    if let Some(c) = json_condition(object, "ReplicaFailure")
        && c.status == "True"
    {
        return Status::failed(non_empty(c.reason, "ReplicaFailure"), c.message);
    }
    let desired = int(object, "/spec/replicas").unwrap_or(1);
    let ready = int(object, "/status/readyReplicas").unwrap_or(0);
    let available = int(object, "/status/availableReplicas").unwrap_or(0);
    if ready < desired || available < desired {
        return Status::in_progress(
            "ReplicasNotReady",
            format!("{ready} of {desired} replicas ready, {available} available"),
        );
    }
    Status::ready("Available", format!("{ready} of {desired} replicas ready"))
}

/// The annotation in which `autoscaling/v1` carries the conditions its
/// status has no field for (servers before 1.23 serve v1 as the preferred
/// version and keep the v2 conditions there, as a JSON string).
pub const HPA_CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";

/// An autoscaler's conditions, wherever its version keeps them.
fn autoscaler_conditions(object: &Value) -> Vec<Value> {
    let conds = conditions_of(object);
    if !conds.is_empty() {
        return conds.to_vec();
    }
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(HPA_CONDITIONS_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Vec<Value>>(text).ok())
        .unwrap_or_default()
}

/// Reasons of `ScalingActive=False` that say the cluster has no metrics to
/// give (no metrics-server on kind, no adapter for custom metrics), not that
/// the autoscaler is wrong.
const NO_METRICS: &[&str] = &[
    "FailedGetResourceMetric",
    "FailedGetContainerResourceMetric",
    "FailedGetPodsMetric",
    "FailedGetObjectMetric",
    "FailedGetExternalMetric",
];

/// HorizontalPodAutoscaler, any version (`autoscaling/v1` keeps its
/// conditions in an annotation, `v2beta2` and `v2` in its status). It
/// exists and scales its target's replicas around what its manifest
/// applied, so the workload's own rule judges the pods; the autoscaler
/// itself is Ready unless its controller says it is broken:
/// `AbleToScale=False` (its target does not exist or cannot be scaled) is a
/// failure with the controller's reason, and so is `ScalingActive=False`
/// for a reason that is the autoscaler's own (an invalid selector or
/// metric, containers without the resource request its metric divides
/// by). `ScalingActive=False` because the cluster serves no metrics is a
/// note, not a block: the target keeps its replicas. No conditions yet
/// (the controller syncs every 15 s) is fine.
pub fn autoscaler(object: &Value) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    let conds = autoscaler_conditions(object);
    if let Some(c) = find_condition(&conds, "AbleToScale")
        && c.status == "False"
    {
        return Status::failed(non_empty(c.reason, "UnableToScale"), c.message);
    }
    let target = || {
        let kind = object
            .pointer("/spec/scaleTargetRef/kind")
            .and_then(Value::as_str);
        let name = object
            .pointer("/spec/scaleTargetRef/name")
            .and_then(Value::as_str);
        match (kind, name) {
            (Some(k), Some(n)) => format!("{k}/{n}"),
            _ => "its target".to_owned(),
        }
    };
    if let Some(c) = find_condition(&conds, "ScalingActive")
        && c.status == "False"
    {
        if c.reason == "ScalingDisabled" {
            return Status::ready(
                "ScalingDisabled",
                non_empty(c.message, "scaling is disabled (the target has 0 replicas)"),
            );
        }
        let own_fault = c.message.contains("missing request for");
        if NO_METRICS.contains(&c.reason) && !own_fault {
            return Status::ready(
                "Exists",
                format!("scales {}; it cannot read its metrics", target()),
            )
            .noting(Some(format!(
                "cannot read its metrics ({}: {}): {} keeps its replicas; a cluster without metrics-server (kind) never scales it",
                c.reason,
                c.message,
                target()
            )));
        }
        return Status::failed(non_empty(c.reason, "ScalingInactive"), c.message);
    }
    let message = match find_condition(&conds, "AbleToScale") {
        Some(c) if !c.message.is_empty() => format!("scales {}: {}", target(), c.message),
        _ => format!("scales {}", target()),
    };
    Status::ready("Exists", message)
}

/// PodDisruptionBudget, `policy/v1beta1` or `v1`: Ready once its
/// controller has counted its pods (`status.observedGeneration`, within a
/// second of the apply) — a budget guards evictions, it never stops
/// anything from running, but what it counts is worth telling, as a note:
/// fewer healthy pods than it wants means every eviction is refused (a node
/// drain blocks), and a budget that selects no pod guards nothing.
pub fn disruption_budget(object: &Value) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    if int(object, "/status/observedGeneration").is_none() {
        return Status::in_progress("NotObserved", "its controller has not counted its pods yet");
    }
    let current = int(object, "/status/currentHealthy");
    let desired = int(object, "/status/desiredHealthy");
    let expected = int(object, "/status/expectedPods");
    let allowed = int(object, "/status/disruptionsAllowed");
    let sync_failed = json_condition(object, "DisruptionAllowed")
        .filter(|c| c.status == "False" && c.reason == "SyncFailed");
    let note = if let Some(c) = sync_failed {
        Some(format!(
            "its controller cannot compute it (SyncFailed: {})",
            c.message
        ))
    } else if expected == Some(0) {
        Some("selects no pods: it guards nothing".to_owned())
    } else if let (Some(current), Some(desired)) = (current, desired)
        && current < desired
    {
        Some(format!(
            "{current} of {desired} desired healthy pods: every eviction is refused (a node drain would block)"
        ))
    } else {
        None
    };
    let message = match (current, desired, allowed) {
        (Some(c), Some(d), Some(a)) => {
            format!("{c} healthy of {d} desired; {a} disruptions allowed")
        }
        _ => "it exists".to_owned(),
    };
    Status::ready("Exists", message).noting(note)
}

/// Ingress, `networking.k8s.io` or `extensions`: Ready once it exists. An
/// address comes from an ingress controller, which a kind cluster runs only
/// when installed, so none is required; the message says whether one came.
pub fn ingress(object: &Value) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    let addresses: Vec<&str> = object
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    i.get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                })
                .collect()
        })
        .unwrap_or_default();
    if addresses.is_empty() {
        Status::ready(
            "Exists",
            "it exists; no ingress controller has given it an address (none is required)",
        )
    } else {
        Status::ready("Exists", format!("address {}", addresses.join(", ")))
    }
}

/// ResourceQuota: Ready once its controller has counted what it limits
/// (`status.hard` and `status.used`, within a second of the apply). A
/// resource used up to its limit is a note: the next object that asks for
/// it is refused.
pub fn resource_quota(object: &Value) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    let hard = object.pointer("/status/hard").and_then(Value::as_object);
    let used = object.pointer("/status/used").and_then(Value::as_object);
    let (Some(hard), Some(used)) = (hard, used) else {
        return Status::in_progress("NotObserved", "its controller has not counted yet");
    };
    let full: Vec<String> = hard
        .iter()
        .filter_map(|(resource, limit)| {
            let limit_text = limit.as_str()?;
            let used_text = used.get(resource)?.as_str()?;
            let (l, u) = (quantity(limit_text)?, quantity(used_text)?);
            (l > 0.0 && u >= l).then(|| format!("{resource} {used_text} of {limit_text}"))
        })
        .collect();
    let note = (!full.is_empty()).then(|| {
        format!(
            "used up: {}; the next object that asks for more is refused",
            full.join(", ")
        )
    });
    Status::ready("Exists", format!("{} resources limited", hard.len())).noting(note)
}

/// A Kubernetes quantity (`500m`, `2Gi`, `1e3`, `4`) as a number, for
/// comparing two of them; `None` for anything else.
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp => 10f64.powi(exp.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some(number * factor)
}

/// Reasons of `Available=False` that come from the Service an APIService
/// points at, which nothing else in the component will fix once it is
/// otherwise Ready.
const API_SERVICE_NO_BACKEND: &[&str] = &["ServiceNotFound", "MissingEndpoints"];

/// APIService: Ready when the aggregator says it is `Available` (a local
/// one at once; one served by a Service once that Service answers
/// discovery). Until then every client's discovery of the whole cluster is
/// incomplete. A Service that does not exist or has no endpoints is
/// [`Status::fails_when_alone`].
pub fn api_service(object: &Value) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    match json_condition(object, "Available") {
        Some(c) if c.status == "True" => Status::ready(
            non_empty(c.reason, "Available"),
            non_empty(c.message, "available"),
        ),
        Some(c) => Status {
            fails_when_alone: API_SERVICE_NO_BACKEND.contains(&c.reason),
            ..Status::in_progress(
                non_empty(c.reason, "NotAvailable"),
                non_empty(c.message, "not available"),
            )
        },
        None => Status::in_progress("NotObserved", "the aggregator has not checked it yet"),
    }
}

/// A Service a webhook calls: `clientConfig.service`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CalledService {
    pub namespace: String,
    pub name: String,
    /// The Service port it calls (443 when unset, as the API server defaults it).
    pub port: i64,
}

impl fmt::Display for CalledService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
    }
}

/// The Services a webhook configuration's webhooks call, each once, in
/// order; webhooks that call a URL have none.
pub fn called_services(object: &Value) -> Vec<CalledService> {
    let mut out: Vec<CalledService> = Vec::new();
    for hook in object
        .get("webhooks")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let Some(svc) = hook.pointer("/clientConfig/service") else {
            continue;
        };
        let field = |name: &str| svc.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(namespace), Some(name)) = (field("namespace"), field("name")) else {
            continue;
        };
        let called = CalledService {
            namespace,
            name,
            port: svc.get("port").and_then(Value::as_i64).unwrap_or(443),
        };
        if !out.contains(&called) {
            out.push(called);
        }
    }
    out
}

/// Why a called Service cannot take calls, or `None` when it can.
fn unavailable(called: &CalledService, related: &Related<'_>) -> Option<String> {
    let Some(svc) = related.services.iter().find(|s| {
        s.metadata.name.as_deref() == Some(called.name.as_str())
            && s.metadata.namespace.as_deref() == Some(called.namespace.as_str())
    }) else {
        return Some("does not exist".to_owned());
    };
    let spec = svc.spec.clone().unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let ports: Vec<i32> = spec.ports.iter().flatten().map(|p| p.port).collect();
    if !ports.iter().any(|p| i64::from(*p) == called.port) {
        let listed: Vec<String> = ports.iter().map(i32::to_string).collect();
        return Some(format!(
            "has no port {} (its ports: {})",
            called.port,
            if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join(", ")
            }
        ));
    }
    let (ready, not_ready) = count_endpoints(Some(&called.namespace), &called.name, related);
    if ready > 0 {
        return None;
    }
    let selector = spec.selector.filter(|s| !s.is_empty()).map(|s| {
        s.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    Some(match (not_ready, selector) {
        (n, _) if n > 0 => {
            format!("has {n} endpoints, none ready: the pods it selects are not Ready")
        }
        (_, Some(sel)) => format!("has no endpoints: no Ready pod matches its selector {sel}"),
        (_, None) => {
            "has no endpoints (it has no selector: its Endpoints are written by someone else)"
                .to_owned()
        }
    })
}

/// Validating and mutating webhook configurations, any version: Ready only
/// when every Service its webhooks call has a ready endpoint on the called
/// port — until then the API server fails every request the webhooks match
/// (`failed calling webhook`), so a later apply in the run would fail.
/// Webhooks that call a `url:` are not checked (the harness cannot know
/// what answers there). A called Service without one is
/// [`Status::fails_when_alone`]: once the component is otherwise Ready,
/// nothing is on its way to serve it.
pub fn webhook(object: &Value, related: &Related<'_>) -> Status {
    if let Some(s) = generic_prefix(object) {
        return s;
    }
    let called = called_services(object);
    let hooks = object
        .get("webhooks")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if called.is_empty() {
        return Status::ready(
            "Exists",
            if hooks == 0 {
                "it has no webhooks".to_owned()
            } else {
                "its webhooks call URLs, which are not checked".to_owned()
            },
        );
    }
    let down: Vec<String> = called
        .iter()
        .filter_map(|c| unavailable(c, related).map(|why| format!("service {c} {why}")))
        .collect();
    if down.is_empty() {
        let list: Vec<String> = called.iter().map(ToString::to_string).collect();
        return Status::ready(
            "ServiceAvailable",
            format!(
                "every service it calls has ready endpoints: {}",
                list.join(", ")
            ),
        );
    }
    Status {
        fails_when_alone: true,
        ..Status::in_progress(
            "WebhookServiceUnavailable",
            format!(
                "{}; until it has a ready endpoint the API server fails every request the webhook matches",
                down.join("; ")
            ),
        )
    }
}
