//! A pod's way to Ready, from its conditions.
//!
//! The final report shows per pod how long scheduling, initialisation and
//! readiness took. The API keeps only each condition's last transition, so
//! the times are those of the *latest* transition to True: a pod that was
//! Ready, lost readiness and regained it reports the regained time.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::conditions::{self, Condition};

/// When a pod reached each step; `None` for a step not (currently) reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodTimeline {
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
    /// `PodScheduled=True`.
    pub scheduled: Option<Timestamp>,
    /// `Initialized=True`: every init container succeeded.
    pub initialized: Option<Timestamp>,
    /// `Ready=True`.
    pub ready: Option<Timestamp>,
}

impl PodTimeline {
    /// Time from scheduling to Ready, when both happened.
    pub fn scheduled_to_ready(&self) -> Option<SignedDuration> {
        Some(self.ready?.duration_since(self.scheduled?))
    }

    /// Time from creation to Ready, when both happened.
    pub fn created_to_ready(&self) -> Option<SignedDuration> {
        Some(self.ready?.duration_since(self.created?))
    }
}

/// The timeline of `pod`.
pub fn pod_timeline(pod: &Pod) -> PodTimeline {
    let conds = pod.status.as_ref().and_then(|s| s.conditions.as_deref());
    let at = |type_: &str| {
        conditions::find(conds, type_)
            .filter(|c| c.status() == "True")
            .and_then(Condition::last_transition)
    };
    PodTimeline {
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        scheduled: at("PodScheduled"),
        initialized: at("Initialized"),
        ready: at("Ready"),
    }
}
