//! The `RemediationRequest` object and its life cycle, as pure data.
//!
//! [`next`] decides the one transition to make from what the object says;
//! the controller only carries it out (audit event, then status). Each
//! transition's audit event has an id derived from the object's uid and the
//! target phase, so a retried reconcile re-posts the same event and
//! DataStorage stores it once.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// API group of the CRD (manifests/crds/remediationrequests.yaml).
pub const GROUP: &str = "demo.harness.dev";
/// Served and stored version of the CRD.
pub const VERSION: &str = "v1alpha1";
/// The `actor` of every audit event the controller writes.
pub const ACTOR: &str = "remediation-controller";

/// A `RemediationRequest` (written out rather than derived, so the demo
/// needs no JSON-schema generator: the CRD's schema lives in its manifest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemediationRequest {
    pub metadata: ObjectMeta,
    pub spec: Spec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    #[serde(default)]
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl kube::Resource for RemediationRequest {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;
    fn kind(_: &()) -> Cow<'_, str> {
        "RemediationRequest".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "remediationrequests".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The phases of the CRD's `status.phase` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Processing => "Processing",
            Phase::Completed => "Completed",
            Phase::Failed => "Failed",
        }
    }

    /// The audit event type of entering this phase.
    pub fn event_type(self) -> &'static str {
        match self {
            Phase::Pending => "remediation.pending",
            Phase::Processing => "remediation.processing",
            Phase::Completed => "remediation.completed",
            Phase::Failed => "remediation.failed",
        }
    }
}

/// The status conditions of an object entering `phase`, as kstatus reads
/// them: `Ready=True` once Completed (so a RemediationRequest a lane
/// applies counts as Ready then), `Stalled=True` once Failed (a final
/// failure, not something to wait on), `Ready=False` on the way.
pub fn conditions(phase: Phase, message: &str) -> serde_json::Value {
    let (ready, stalled) = match phase {
        Phase::Completed => ("True", None),
        Phase::Failed => ("False", Some("True")),
        Phase::Pending | Phase::Processing => ("False", None),
    };
    let mut conditions = vec![json!({
        "type": "Ready", "status": ready, "reason": phase.as_str(), "message": message,
    })];
    if let Some(stalled) = stalled {
        conditions.push(json!({
            "type": "Stalled", "status": stalled, "reason": phase.as_str(), "message": message,
        }));
    }
    serde_json::Value::Array(conditions)
}

/// One step of the life cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Option<Phase>,
    pub to: Phase,
    pub message: String,
}

/// The next transition of an object with `spec` in phase `current`, or
/// `None` when it has reached a final phase.
pub fn next(spec: &Spec, current: Option<Phase>) -> Option<Transition> {
    let (to, message) = match current {
        None if spec.target.trim().is_empty() => (
            Phase::Failed,
            "spec.target is empty: name what to remediate".to_owned(),
        ),
        None => (
            Phase::Pending,
            format!("accepted remediation of {}", spec.target),
        ),
        Some(Phase::Pending) => (Phase::Processing, format!("remediating {}", spec.target)),
        Some(Phase::Processing) => (
            Phase::Completed,
            format!(
                "applied {} to {}",
                spec.action.as_deref().unwrap_or("the default action"),
                spec.target
            ),
        ),
        Some(Phase::Completed | Phase::Failed) => return None,
    };
    Some(Transition {
        from: current,
        to,
        message,
    })
}

/// The audit event (the JSON body of `POST /api/v1/audit/events`) that
/// records `t` for the object with `uid` (its correlation id).
pub fn audit_event(
    uid: &str,
    namespace: &str,
    name: &str,
    spec: &Spec,
    t: &Transition,
) -> serde_json::Value {
    let event_id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{GROUP}/{uid}/{}", t.to.as_str()).as_bytes(),
    );
    json!({
        "event_id": event_id,
        "correlation_id": uid,
        "event_type": t.to.event_type(),
        "actor": ACTOR,
        "payload": {
            "namespace": namespace,
            "name": name,
            "target": spec.target,
            "action": spec.action,
            "from": t.from.map(Phase::as_str),
            "to": t.to.as_str(),
            "message": t.message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(target: &str) -> Spec {
        Spec {
            target: target.into(),
            action: Some("restart".into()),
        }
    }

    #[test]
    fn transitions() {
        use Phase::*;
        // (target, current phase) -> next phase
        let table: [(&str, Option<Phase>, Option<Phase>); 7] = [
            ("deploy/api", None, Some(Pending)),
            ("deploy/api", Some(Pending), Some(Processing)),
            ("deploy/api", Some(Processing), Some(Completed)),
            ("deploy/api", Some(Completed), None),
            ("deploy/api", Some(Failed), None),
            ("", None, Some(Failed)),
            ("  ", None, Some(Failed)),
        ];
        for (target, current, want) in table {
            let got = next(&spec(target), current);
            assert_eq!(got.as_ref().map(|t| t.to), want, "{target:?} {current:?}");
            if let Some(t) = got {
                assert_eq!(t.from, current);
            }
        }
    }

    #[test]
    fn a_full_life_is_three_transitions() {
        let s = spec("deploy/api");
        let mut phase = None;
        let mut seen = vec![];
        while let Some(t) = next(&s, phase) {
            seen.push(t.to.event_type());
            phase = Some(t.to);
        }
        assert_eq!(
            seen,
            [
                "remediation.pending",
                "remediation.processing",
                "remediation.completed"
            ]
        );
    }

    #[test]
    fn audit_events_are_idempotent_per_transition() {
        let s = spec("deploy/api");
        let t = next(&s, Some(Phase::Pending)).unwrap();
        let a = audit_event("uid-1", "ns", "rr", &s, &t);
        assert_eq!(
            a,
            audit_event("uid-1", "ns", "rr", &s, &t),
            "same transition, same event id"
        );
        let other = audit_event("uid-2", "ns", "rr", &s, &t);
        assert_ne!(a["event_id"], other["event_id"]);
        assert_eq!(a["correlation_id"], "uid-1");
        assert_eq!(a["event_type"], "remediation.processing");
        assert_eq!(a["payload"]["from"], "Pending");
        assert_eq!(a["payload"]["to"], "Processing");
        // The body is what DataStorage accepts.
        let parsed: crate::event::NewEvent = serde_json::from_value(a).unwrap();
        assert!(parsed.validate().is_ok());
    }

    #[test]
    fn objects_deserialize_as_the_api_server_sends_them() {
        let rr: RemediationRequest = serde_json::from_value(json!({
            "apiVersion": "demo.harness.dev/v1alpha1", "kind": "RemediationRequest",
            "metadata": {"name": "rr", "namespace": "ns", "uid": "u"},
            "spec": {"target": "deploy/api"},
            "status": {"phase": "Processing"}
        }))
        .unwrap();
        assert_eq!(rr.status.and_then(|s| s.phase), Some(Phase::Processing));
        assert_eq!(
            <RemediationRequest as kube::Resource>::url_path(&(), Some("ns")),
            "/apis/demo.harness.dev/v1alpha1/namespaces/ns/remediationrequests"
        );
    }

    #[test]
    fn conditions_say_ready_when_completed_and_stalled_when_failed() {
        let table = [
            (Phase::Pending, "False", false),
            (Phase::Processing, "False", false),
            (Phase::Completed, "True", false),
            (Phase::Failed, "False", true),
        ];
        for (phase, ready, stalled) in table {
            let c = conditions(phase, "m");
            assert_eq!(c[0]["type"], "Ready");
            assert_eq!(c[0]["status"], ready, "{phase:?}");
            assert_eq!(c[0]["reason"], phase.as_str());
            assert_eq!(c.as_array().unwrap().len() == 2, stalled, "{phase:?}");
        }
    }
}
