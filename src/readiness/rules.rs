//! Per-kind readiness rules.
//!
//! Each rule is a pure function from one object (plus, for a Service, its
//! endpoints) to a [`Status`]. The order follows kstatus (cli-utils
//! `pkg/kstatus/status/core.go`): a common prefix first (deletion →
//! Terminating, a controller that has not yet observed the latest generation
//! → InProgress), then the kind's own rule, with the corrections other tools
//! made: a Job is Ready only when Complete, a CRD needs NamesAccepted, a pod
//! in phase Failed is a failure, and an unknown kind without conditions is
//! [`State::Unknown`], never Ready. Rules deliberately take no clock: whether
//! a not-yet-ready pod is *doomed* depends on time and tolerance, and is
//! [`super::classify`]'s job. Fields are read defensively (defaults where the
//! API server defaults, no panics on absent status) because the objects may
//! come from any Kubernetes version between 1.24 and the newest.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::fmt;

use super::conditions::{self, Condition};

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
}

impl Status {
    fn new(state: State, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            state,
            reason: reason.into(),
            message: message.into(),
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

/// Objects a rule needs besides the object itself. Only Services need any:
/// their readiness is that of their endpoints.
#[derive(Clone, Copy, Debug, Default)]
pub struct Related<'a> {
    /// The Service's `Endpoints` object (same name), if fetched.
    pub endpoints: Option<&'a Endpoints>,
    /// EndpointSlices of the namespace (or of the Service); those not labelled
    /// `kubernetes.io/service-name=<service>` are ignored.
    pub endpoint_slices: &'a [EndpointSlice],
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
/// Ready as created; a LoadBalancer needs an ingress address (on kind only
/// with a cloud-provider shim); otherwise at least one *ready* endpoint,
/// from EndpointSlices (nil `ready` means ready, per the API) or the
/// Endpoints object. Headless Services with `publishNotReadyAddresses`
/// publish unready pods too, so any endpoint counts for them.
pub fn service(s: &Service, related: &Related<'_>) -> Status {
    if let Some(st) = prefix(&s.metadata, None) {
        return st;
    }
    let spec = s.spec.clone().unwrap_or_default();
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if type_ == "ExternalName" {
        return Status::ready("ExternalName", "external name needs no endpoints");
    }
    if type_ == "LoadBalancer" {
        let has_address = s
            .status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .is_some_and(|i| !i.is_empty());
        if !has_address {
            return Status::in_progress(
                "NoLoadBalancerAddress",
                "load balancer has no ingress address yet (kind needs cloud-provider-kind or MetalLB)",
            );
        }
    }
    if spec.selector.as_ref().is_none_or(|sel| sel.is_empty()) {
        return Status::ready(
            "NoSelector",
            "endpoints are managed outside the cluster's controllers",
        );
    }
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let name = s.metadata.name.as_deref().unwrap_or_default();
    let (ready, not_ready) = count_endpoints(name, related);
    if ready > 0 || (publish_not_ready && not_ready > 0) {
        return Status::ready("EndpointsReady", format!("{ready} ready endpoints"));
    }
    if not_ready > 0 {
        return Status::in_progress(
            "EndpointsNotReady",
            format!("{not_ready} endpoints, none ready: the selected pods are not Ready"),
        );
    }
    Status::in_progress("NoEndpoints", "no pod matches the selector yet")
}

/// Ready and not-ready endpoint addresses of the Service `name`. Slices are
/// preferred (Endpoints is deprecated since 1.33 and truncated at 1000
/// addresses); the Endpoints object is the fallback.
fn count_endpoints(name: &str, related: &Related<'_>) -> (usize, usize) {
    let slices: Vec<&EndpointSlice> = related
        .endpoint_slices
        .iter()
        .filter(|sl| {
            sl.metadata
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
        .filter(|e| e.metadata.name.as_deref() == Some(name))
        .and_then(|e| e.subsets.as_deref())
        .unwrap_or_default();
    subsets.iter().fold((0, 0), |(r, n), sub| {
        (
            r + sub.addresses.as_ref().map_or(0, Vec::len),
            n + sub.not_ready_addresses.as_ref().map_or(0, Vec::len),
        )
    })
}

/// Built-in kinds without a status: they do their job as soon as they exist.
const ALWAYS_READY: &[&str] = &[
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "NetworkPolicy",
    "LimitRange",
    "PriorityClass",
    "StorageClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];

/// Readiness of any object as returned by the API server, dispatching on
/// `apiVersion`/`kind` to the typed rules above and falling back to
/// [`generic`] for kinds the harness does not know (the project's CRs).
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
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Ok(match (group, kind) {
        ("apps", "Deployment") => deployment(&typed(object, kind)?),
        ("apps", "ReplicaSet") => replica_set(&typed(object, kind)?),
        ("apps", "StatefulSet") => stateful_set(&typed(object, kind)?),
        ("apps", "DaemonSet") => daemon_set(&typed(object, kind)?),
        ("batch", "Job") => job(&typed(object, kind)?),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(&typed(object, kind)?),
        ("", "Pod") => pod(&typed(object, kind)?),
        ("", "PersistentVolumeClaim") => pvc(&typed(object, kind)?),
        ("", "Service") => service(&typed(object, kind)?, related),
        ("", "Namespace") => namespace(object),
        (_, k) if is_builtin_group(group) && ALWAYS_READY.contains(&k) => {
            match generic_prefix(object) {
                Some(s) => s,
                None => Status::ready("Exists", format!("{kind} has no status; it exists")),
            }
        }
        _ => generic(object),
    })
}

fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || group.ends_with(".k8s.io") || !group.contains('.')
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

fn json_condition<'a>(object: &'a Value, type_: &str) -> Option<JsonCondition<'a>> {
    let conds = object.pointer("/status/conditions")?.as_array()?;
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

/// The rule for kinds the harness has no typed rule for (the project's own
/// CRs): kstatus's generic rule (`Reconciling=True` → InProgress,
/// `Stalled=True` → Failed, then `Ready` decides) except that an object
/// without a `Ready` condition is [`State::Unknown`], not Ready: nothing says
/// its controller has even seen it. Use a per-CRD rule where one is known.
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
            let has_conditions = object
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            let message = if has_conditions {
                "no Ready condition among the reported conditions; no rule says what Ready means for this kind"
            } else {
                "no status conditions; no rule says what Ready means for this kind"
            };
            Status::unknown("NoReadyCondition", message)
        }
    }
}

fn non_empty(value: &str, fallback: &str) -> String {
    if value.is_empty() {
        fallback.to_owned()
    } else {
        value.to_owned()
    }
}
