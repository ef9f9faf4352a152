//! Uniform access to the many `*Condition` types of the Kubernetes API.
//!
//! Every workload kind has its own condition struct with the same four
//! fields; one small trait lets the rules look conditions up by type without
//! repeating the search for each of them.

use k8s_openapi::api::apps::v1::{DeploymentCondition, ReplicaSetCondition};
use k8s_openapi::api::batch::v1::JobCondition;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimCondition, PodCondition};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionCondition;
use k8s_openapi::jiff::Timestamp;

/// Read access to one status condition, whatever its concrete type.
pub(crate) trait Condition {
    fn type_(&self) -> &str;
    fn status(&self) -> &str;
    fn reason(&self) -> &str;
    fn message(&self) -> &str;
    fn last_transition(&self) -> Option<Timestamp>;
}

macro_rules! impl_condition {
    ($($t:ty),* $(,)?) => {$(
        impl Condition for $t {
            fn type_(&self) -> &str { &self.type_ }
            fn status(&self) -> &str { &self.status }
            fn reason(&self) -> &str { self.reason.as_deref().unwrap_or_default() }
            fn message(&self) -> &str { self.message.as_deref().unwrap_or_default() }
            fn last_transition(&self) -> Option<Timestamp> {
                self.last_transition_time.as_ref().map(|t| t.0)
            }
        }
    )*};
}

impl_condition!(
    DeploymentCondition,
    ReplicaSetCondition,
    JobCondition,
    PodCondition,
    PersistentVolumeClaimCondition,
    CustomResourceDefinitionCondition,
);

/// The condition of type `type_`, if the object reports one.
pub(crate) fn find<'a, C: Condition>(conditions: Option<&'a [C]>, type_: &str) -> Option<&'a C> {
    conditions?.iter().find(|c| c.type_() == type_)
}

/// Whether the condition `type_` is present with status `"True"`.
pub(crate) fn is_true<C: Condition>(conditions: Option<&[C]>, type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status() == "True")
}
