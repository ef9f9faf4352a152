//! Where harness keeps its files, said in one place.
//!
//! Everything harness writes for a project lives under `.harness/` beside
//! the lane file:
//!
//! ```text
//! .harness/state/<lane>.json             what `up` made ([`crate::cluster::state`])
//! .harness/runs/<run>/                   one run: events.jsonl, junit.xml, suites/, hooks/, gather/
//! .harness/logs/images/<image>.log       image build logs
//! .harness/logs/host-builds/<name>.log   host build logs
//! .harness/host-builds/<name>.json       host build stamps (inputs of the last success)
//! .harness/gather/                       bundles of `harness gather`
//! ```
//!
//! and a kind cluster's kubeconfig goes to `~/.kube/<cluster>-config`.
//! Every path is made here from the project root; nothing else joins
//! `.harness` onto a path.

use std::path::{Path, PathBuf};

/// The directory under the project root that holds everything harness writes.
pub const DIR: &str = ".harness";

/// The files of one project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the project whose lane file is in `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The project root (the lane file's directory).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.harness/`.
    pub fn dir(&self) -> PathBuf {
        self.root.join(DIR)
    }

    /// `.harness/state/`.
    pub fn state_dir(&self) -> PathBuf {
        self.dir().join("state")
    }

    /// `.harness/state/<lane>.json`: what `up` made for the lane.
    pub fn state_file(&self, lane: &str) -> PathBuf {
        self.state_dir().join(format!("{lane}.json"))
    }

    /// `.harness/runs/<run>/`: where a run keeps its files.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.dir().join("runs").join(run_id)
    }

    /// Where each suite of attempt `attempt` keeps its log and artifacts
    /// (`<dir>/<suite>/output.log`, `<dir>/<suite>/artifacts/`):
    /// `.harness/runs/<run>/suites/` for the first run,
    /// `.harness/runs/<run>/retries/<attempt>/` for each retry.
    pub fn suites_dir(&self, run_id: &str, attempt: u32) -> PathBuf {
        match attempt {
            0 | 1 => self.run_dir(run_id).join("suites"),
            n => self.run_dir(run_id).join("retries").join(n.to_string()),
        }
    }

    /// `.harness/runs/<run>/events.jsonl`: where a run records its events.
    pub fn events_file(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("events.jsonl")
    }

    /// `.harness/logs/images/`: image build logs.
    pub fn image_logs(&self) -> PathBuf {
        self.dir().join("logs").join("images")
    }

    /// `.harness/logs/host-builds/`: host build logs.
    pub fn host_build_logs(&self) -> PathBuf {
        self.dir().join("logs").join("host-builds")
    }

    /// `.harness/host-builds/`: host build stamps.
    pub fn host_build_stamps(&self) -> PathBuf {
        self.dir().join("host-builds")
    }

    /// `.harness/gather/`: where `harness gather` writes its bundles.
    pub fn gather_dir(&self) -> PathBuf {
        self.dir().join("gather")
    }

    /// `.harness/kind/<lane>.yaml`: the lane's kind config with the host
    /// ports moved that clash with lanes run beside it (`crate::lanes`).
    pub fn kind_config_copy(&self, lane: &str) -> PathBuf {
        self.dir().join("kind").join(format!("{lane}.yaml"))
    }

    /// Where free disk is measured before anything is written: `.harness/`
    /// once it exists, the project root before.
    pub fn disk_to_check(&self) -> PathBuf {
        let dir = self.dir();
        if dir.is_dir() { dir } else { self.root.clone() }
    }
}

/// `<home>/.kube/<cluster>-config`: where `up` writes a kind cluster's
/// kubeconfig (and where a developer finds it).
pub fn kind_kubeconfig(home: &Path, cluster: &str) -> PathBuf {
    home.join(".kube").join(format!("{cluster}-config"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_the_projects_harness_dir() {
        let layout = Layout::new("/p");
        assert_eq!(
            layout.state_file("audit"),
            Path::new("/p/.harness/state/audit.json")
        );
        assert_eq!(
            layout.events_file("r-1a2b3c4d"),
            Path::new("/p/.harness/runs/r-1a2b3c4d/events.jsonl")
        );
        assert_eq!(
            layout.host_build_logs(),
            Path::new("/p/.harness/logs/host-builds")
        );
        assert_eq!(layout.gather_dir(), Path::new("/p/.harness/gather"));
        assert_eq!(
            kind_kubeconfig(Path::new("/home/me"), "audit-e2e"),
            Path::new("/home/me/.kube/audit-e2e-config")
        );
    }

    #[test]
    fn disk_is_checked_where_harness_will_write() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        assert_eq!(layout.disk_to_check(), dir.path());
        std::fs::create_dir(dir.path().join(DIR)).unwrap();
        assert_eq!(layout.disk_to_check(), dir.path().join(DIR));
    }
}
