//! The kinds the harness knows, in one table.
//!
//! Every fact the harness keeps about a built-in kind lives in [`KINDS`]:
//! which readiness rule judges it, whether and how it has pods (a workload
//! selects them with `spec.selector`; a Pod is its own), whether those pods
//! finish (a Job's), where its pod template sits (server-side apply fills
//! port protocols there), how many pods it wants (for the live progress
//! line), and what the waiter must watch besides the object (a Service's
//! endpoints, the Services a webhook calls, a status that arrives after the
//! apply). The waiter, the live progress, the infrastructure timeline and
//! the apply defaults all read this table, so a kind is taught to the
//! harness in one row. Kinds are matched by API group and kind, never by
//! version: the same rule reads `policy/v1beta1` and `policy/v1`
//! PodDisruptionBudgets, and `autoscaling/v1` and `v2` autoscalers. A kind
//! not in the table is judged by the generic rule ([`super::rules::generic`])
//! or by what the lane file says ([`super::overrides`]).

/// Which rule of [`super::rules`] judges a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ReplicationController,
    Job,
    CustomResourceDefinition,
    Pod,
    PersistentVolumeClaim,
    Service,
    Namespace,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    Ingress,
    ResourceQuota,
    ApiService,
    /// Validating and mutating admission webhook configurations.
    Webhook,
    /// No status worth reading: Ready once it exists.
    Exists,
}

/// How a kind's pods are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pods {
    /// It has none.
    None,
    /// Those its `spec.selector` (a label selector) selects.
    Selector,
    /// Those its `spec.selector` selects, written as a plain map of labels
    /// (ReplicationController).
    MapSelector,
    /// The object is a pod.
    Itself,
}

/// How many pods a workload wants, for the live progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Not counted (no pods, or pods that finish).
    Nothing,
    /// `spec.replicas` (1 when unset, as the API server defaults it).
    Replicas,
    /// `status.desiredNumberScheduled` (a DaemonSet: one per eligible node).
    DesiredScheduled,
    /// One: the pod itself.
    One,
}

/// What the waiter watches besides the object, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// The object until it is Ready (not at all when its apply response is).
    UntilReady,
    /// The object's endpoints (a Service).
    Endpoints,
    /// The Services it calls and their endpoints (a webhook configuration).
    CalledServices,
    /// The object even when its apply response is Ready: its controller
    /// writes a status afterwards that may carry a verdict or a note (an
    /// autoscaler that cannot scale, a disruption budget that blocks every
    /// eviction).
    Status,
}

/// Everything the harness knows about one kind.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// The API group (`""` for the core group).
    pub group: &'static str,
    pub kind: &'static str,
    pub rule: Rule,
    pub pods: Pods,
    /// Whether its pods are meant to finish (a Job's): they are never
    /// "unready pods", and their readiness need not hold.
    pub pods_finish: bool,
    /// Where the pod spec sits in the object, for kinds that carry one.
    pub pod_spec: Option<&'static [&'static str]>,
    pub wanted: Wanted,
    pub watch: Watch,
}

const TEMPLATE: &[&str] = &["spec", "template", "spec"];

const fn kind(group: &'static str, kind: &'static str, rule: Rule) -> Kind {
    Kind {
        group,
        kind,
        rule,
        pods: Pods::None,
        pods_finish: false,
        pod_spec: None,
        wanted: Wanted::Nothing,
        watch: Watch::UntilReady,
    }
}

const fn exists(group: &'static str, name: &'static str) -> Kind {
    kind(group, name, Rule::Exists)
}

const fn workload(group: &'static str, name: &'static str, rule: Rule, wanted: Wanted) -> Kind {
    Kind {
        pods: Pods::Selector,
        pod_spec: Some(TEMPLATE),
        wanted,
        ..kind(group, name, rule)
    }
}

const fn watched(k: Kind, watch: Watch) -> Kind {
    Kind { watch, ..k }
}

/// The table. Order does not matter; a (group, kind) pair appears once.
pub const KINDS: &[Kind] = &[
    workload("apps", "Deployment", Rule::Deployment, Wanted::Replicas),
    workload("apps", "ReplicaSet", Rule::ReplicaSet, Wanted::Replicas),
    workload("apps", "StatefulSet", Rule::StatefulSet, Wanted::Replicas),
    workload(
        "apps",
        "DaemonSet",
        Rule::DaemonSet,
        Wanted::DesiredScheduled,
    ),
    Kind {
        pods: Pods::MapSelector,
        ..workload(
            "",
            "ReplicationController",
            Rule::ReplicationController,
            Wanted::Replicas,
        )
    },
    Kind {
        pods_finish: true,
        ..workload("batch", "Job", Rule::Job, Wanted::Nothing)
    },
    Kind {
        pod_spec: Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        ..exists("batch", "CronJob")
    },
    Kind {
        pods: Pods::Itself,
        pod_spec: Some(&["spec"]),
        wanted: Wanted::One,
        ..kind("", "Pod", Rule::Pod)
    },
    Kind {
        pod_spec: Some(&["template", "spec"]),
        ..exists("", "PodTemplate")
    },
    watched(kind("", "Service", Rule::Service), Watch::Endpoints),
    kind("", "PersistentVolumeClaim", Rule::PersistentVolumeClaim),
    kind("", "Namespace", Rule::Namespace),
    kind(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        Rule::CustomResourceDefinition,
    ),
    watched(
        kind(
            "autoscaling",
            "HorizontalPodAutoscaler",
            Rule::HorizontalPodAutoscaler,
        ),
        Watch::Status,
    ),
    watched(
        kind("policy", "PodDisruptionBudget", Rule::PodDisruptionBudget),
        Watch::Status,
    ),
    kind("networking.k8s.io", "Ingress", Rule::Ingress),
    // Ingress as servers before 1.22 also serve it.
    kind("extensions", "Ingress", Rule::Ingress),
    watched(
        kind("", "ResourceQuota", Rule::ResourceQuota),
        Watch::Status,
    ),
    kind("apiregistration.k8s.io", "APIService", Rule::ApiService),
    watched(
        kind(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            Rule::Webhook,
        ),
        Watch::CalledServices,
    ),
    watched(
        kind(
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
            Rule::Webhook,
        ),
        Watch::CalledServices,
    ),
    exists("", "ConfigMap"),
    exists("", "Secret"),
    exists("", "ServiceAccount"),
    exists("", "LimitRange"),
    exists("", "Endpoints"),
    exists("discovery.k8s.io", "EndpointSlice"),
    exists("rbac.authorization.k8s.io", "Role"),
    exists("rbac.authorization.k8s.io", "RoleBinding"),
    exists("rbac.authorization.k8s.io", "ClusterRole"),
    exists("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    exists("networking.k8s.io", "NetworkPolicy"),
    exists("networking.k8s.io", "IngressClass"),
    exists("scheduling.k8s.io", "PriorityClass"),
    exists("storage.k8s.io", "StorageClass"),
    exists("storage.k8s.io", "CSIDriver"),
    exists("policy", "PodSecurityPolicy"),
    exists("node.k8s.io", "RuntimeClass"),
    exists("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    exists(
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
];

/// The API group of an `apiVersion` (`""` for the core group's `v1`).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The row of `kind` in `group`, if the harness knows it.
pub fn lookup(group: &str, kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.group == group && k.kind == kind)
}

/// The row of an object's kind, from its `apiVersion` and `kind`.
pub fn of(api_version: &str, kind: &str) -> Option<&'static Kind> {
    lookup(group_of(api_version), kind)
}

/// The row of a JSON object's kind.
pub fn of_value(object: &serde_json::Value) -> Option<&'static Kind> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    of(api_version, kind)
}

/// Every kind name in the table (once each), for "did you mean" in the
/// lane file.
pub fn names() -> impl Iterator<Item = &'static str> {
    let mut seen = std::collections::BTreeSet::new();
    KINDS
        .iter()
        .map(|k| k.kind)
        .filter(move |k| seen.insert(*k))
}

impl Kind {
    /// Whether it has pods that run for good: their readiness must hold.
    pub fn has_lasting_pods(&self) -> bool {
        self.pods != Pods::None && !self.pods_finish
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_and_kind_appears_once() {
        let mut seen = std::collections::BTreeSet::new();
        for k in KINDS {
            assert!(
                seen.insert((k.group, k.kind)),
                "{}/{} twice",
                k.group,
                k.kind
            );
        }
    }

    #[test]
    fn kinds_are_found_by_group_whatever_the_version() {
        for (api_version, kind, rule) in [
            (
                "policy/v1beta1",
                "PodDisruptionBudget",
                Rule::PodDisruptionBudget,
            ),
            (
                "policy/v1",
                "PodDisruptionBudget",
                Rule::PodDisruptionBudget,
            ),
            (
                "autoscaling/v1",
                "HorizontalPodAutoscaler",
                Rule::HorizontalPodAutoscaler,
            ),
            (
                "autoscaling/v2beta2",
                "HorizontalPodAutoscaler",
                Rule::HorizontalPodAutoscaler,
            ),
            (
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                Rule::HorizontalPodAutoscaler,
            ),
            ("networking.k8s.io/v1", "Ingress", Rule::Ingress),
            ("extensions/v1beta1", "Ingress", Rule::Ingress),
            ("v1", "Service", Rule::Service),
            ("apps/v1", "Deployment", Rule::Deployment),
        ] {
            assert_eq!(
                of(api_version, kind).map(|k| k.rule),
                Some(rule),
                "{api_version} {kind}"
            );
        }
        // The group matters: a CR that reuses a built-in kind's name is not it.
        assert!(of("example.com/v1", "Deployment").is_none());
        assert!(of("monitoring.coreos.com/v1", "ServiceMonitor").is_none());
    }

    #[test]
    fn pods_that_finish_have_no_lasting_pods() {
        assert!(of("apps/v1", "Deployment").unwrap().has_lasting_pods());
        assert!(of("v1", "Pod").unwrap().has_lasting_pods());
        assert!(!of("batch/v1", "Job").unwrap().has_lasting_pods());
        assert!(!of("v1", "ConfigMap").unwrap().has_lasting_pods());
    }
}
