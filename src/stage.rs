//! What every stage of a run shares: the context it is entered with, the
//! run's id and budgets, and the environment `up` brought up.
//!
//! Each stage's glue lives beside the stage (`preflight::stage`,
//! `images::stage`, `cluster::stage`, `deploy::stage`, `suites::stage`,
//! `gather::stage`, `hooks::stage`, `timeline::stage`) and is entered the same
//! way: with a [`Ctx`], and what that stage alone needs. It tells what
//! happens on the context's bus and fails with a
//! [`StageFailure`](crate::failure::StageFailure). [`crate::run`] puts the
//! stages in order; nothing here knows that order, so the stages and the
//! run both stand on this module and never on each other.

use std::time::Duration;

use crate::config::{Lane, Project};
use crate::failure::StageFailure;
use crate::layout::Layout;
use crate::report::bus::Bus;

/// The most gather may take, whatever else happened: the run's own budget
/// for it, which no suite timeout or interrupt eats.
pub const GATHER_BUDGET: Duration = Duration::from_secs(5 * 60);

/// The most teardown may take.
pub const TEARDOWN_BUDGET: Duration = Duration::from_secs(120);

/// How long `up` waits for the lane to be Ready without `--deadline`.
pub const UP_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// What a stage is entered with: the lane it acts on, where its files go,
/// the run it belongs to and where it tells what happens.
#[derive(Clone, Debug)]
pub struct Ctx<'a> {
    pub project: &'a Project,
    pub lane: &'a Lane,
    pub layout: Layout,
    /// The run's id (`r-` and 8 hex digits); commands that are not a run
    /// (`down`, `gather`) have one of their own.
    pub run_id: String,
    pub bus: Bus,
}

impl<'a> Ctx<'a> {
    /// The context of one lane of `project` in the run `run_id`.
    pub fn new(project: &'a Project, lane: &'a Lane, run_id: impl Into<String>, bus: Bus) -> Self {
        Self {
            project,
            lane,
            layout: Layout::new(&project.root),
            run_id: run_id.into(),
            bus,
        }
    }

    /// `.harness/runs/<run>/`.
    pub fn run_dir(&self) -> std::path::PathBuf {
        self.layout.run_dir(&self.run_id)
    }
}

/// A fresh run id: `r-` and 8 random hex digits.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 4];
    // Without randomness, the time still makes a usable id.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    format!(
        "r-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// `up` failed; `cluster_exists` says whether there is anything to gather
/// from and tear down (a build failure leaves no cluster).
#[derive(Debug)]
pub struct UpFailure {
    pub failure: StageFailure,
    pub cluster_exists: bool,
}

impl UpFailure {
    /// `up` failed before any cluster existed.
    pub fn before_cluster(failure: StageFailure) -> Self {
        Self {
            failure,
            cluster_exists: false,
        }
    }

    /// `up` failed with the cluster there.
    pub fn with_cluster(failure: StageFailure) -> Self {
        Self {
            failure,
            cluster_exists: true,
        }
    }
}

/// What `up` brought up, for the load, the deploy, the suites, gather and
/// teardown.
#[derive(Clone, Debug)]
pub struct Environment {
    pub state: crate::cluster::state::LaneState,
    pub provider: crate::cluster::AnyProvider,
    /// Image name → reference, for `{{image.<name>}}`.
    pub images: indexmap::IndexMap<String, String>,
    /// The engine the images are in, which the load exports them from.
    pub docker: bollard::Docker,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_r_and_eight_hex_digits_and_differ() {
        let a = new_run_id();
        let b = new_run_id();
        assert_eq!(a.len(), 10, "{a}");
        assert!(a.starts_with("r-") && a[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
