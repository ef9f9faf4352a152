//! Readiness: is a deployed object Ready, and if not, why.
//!
//! Everything here is a pure function of API objects the caller already
//! holds (typed `k8s-openapi` objects, or `serde_json::Value` for kinds the
//! harness does not know), plus an explicit `now` wherever time matters, so
//! that every decision is testable on objects captured from a real cluster.
//! The design splits two questions that peer tools conflate. [`rules`]
//! answers "is this object Ready?" per kind, at least as strictly as kstatus
//! (generation, replicas, revisions, conditions) and never calls something
//! Ready just because it has no conditions. [`classify`] answers "is this pod
//! doomed, and why?": it recognises the failure modes that will not fix
//! themselves (image not loaded, OOMKilled, a missing Secret key,
//! Unschedulable, ...) so the waiter can fail fast instead of running into
//! its deadline, while a per-component [`classify::Tolerance`] keeps it from
//! failing controllers that legitimately restart while their database comes
//! up. [`evidence`] picks the facts a verdict is shown with (Warning events,
//! terminations, which logs to fetch), [`table`] turns a resource into the
//! row of the "what is unready and why" table that every timeout prints, and
//! [`timeline`] derives a pod's Scheduled → Initialized → Ready times.
//! Fetching objects, events and logs is I/O and lives elsewhere.

pub mod classify;
pub mod evidence;
pub mod rules;
pub mod table;
pub mod timeline;

mod conditions;

pub use classify::{Tolerance, Verdict, VerdictKind, classify_pod};
pub use rules::{State, Status};

/// The instant type used throughout: the one `k8s-openapi` stores in
/// `meta::v1::Time`, re-exported so callers need no direct `jiff` dependency.
pub use k8s_openapi::jiff::Timestamp;
