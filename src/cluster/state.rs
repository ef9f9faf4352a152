//! The lane state file: what `up` created, so that `down`, `status`,
//! `gather` and `diagnose` find it without guessing.
//!
//! One JSON file per lane, `.harness/state/<lane>.json` under the project
//! root, written atomically (a temp file in the same directory, synced, then
//! renamed over the old one) so a crash mid-write never leaves half a state.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// An object by its identity, as the state file keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub(crate) fn is_namespace(&self) -> bool {
        self.kind == "Namespace" && self.api_version == "v1"
    }

    pub(crate) fn is_crd(&self) -> bool {
        self.kind == "CustomResourceDefinition"
            && self.api_version.starts_with("apiextensions.k8s.io/")
    }

    /// A bare object of this identity, for resolving it again.
    pub(crate) fn object(&self) -> kube::api::DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
        }))
        .expect("an identity is a valid object")
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) if !self.is_namespace() => write!(f, "{} {ns}/{}", self.kind, self.name),
            _ => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// An image `up` put into the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateImage {
    pub reference: String,
    /// Built by the harness (so teardown may remove it); pulled images never are.
    pub built: bool,
}

/// What `up` made for a lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneState {
    pub lane: String,
    pub cluster: String,
    /// `kind` or `existing`.
    pub provider: String,
    /// The engine kind was pinned to, for kind clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    pub kubeconfig: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The kind config the cluster was made with: a copy with moved host
    /// ports when it ran beside other lanes (`crate::lanes`), whose ports
    /// later commands on this cluster use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_config: Option<PathBuf>,
    /// Whether `up` created the cluster (and so `down` may delete it).
    pub created: bool,
    pub images: IndexMap<String, StateImage>,
    /// In a cluster `up` did not create: the objects it created there (and
    /// that did not exist before), which teardown deletes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created_objects: Vec<ObjectRef>,
    pub run_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

impl LaneState {
    /// `created_at` for now.
    pub fn now() -> String {
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
    }
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no environment is up for lane {lane} (no state file {})", .path.display())]
    Missing { lane: String, path: PathBuf },
    #[error("cannot read the state file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state file {} is not valid", .path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the state file {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Nothing up is its own exit (9); a state file that cannot be read or
/// written is harness's own trouble (70).
impl crate::failure::Failure for StateError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            StateError::Missing { .. } => crate::exit::Exit::NotUp,
            StateError::Read { .. } | StateError::Invalid { .. } | StateError::Write { .. } => {
                crate::exit::Exit::Internal
            }
        }
    }

    fn fix(&self) -> Option<String> {
        Some(self.help())
    }
}

impl StateError {
    pub fn help(&self) -> String {
        match self {
            StateError::Missing { lane, .. } => {
                format!("bring it up with `harness up --lane {lane}`")
            }
            StateError::Read { path, .. } | StateError::Write { path, .. } => format!(
                "check the permissions of {}",
                path.parent().unwrap_or(Path::new(".")).display()
            ),
            StateError::Invalid { path, .. } => format!(
                "delete {} and run harness up again (the cluster itself may still exist: kind get clusters)",
                path.display()
            ),
        }
    }
}

/// `<root>/.harness/state/<lane>.json` ([`crate::layout`]).
pub fn path(root: &Path, lane: &str) -> PathBuf {
    crate::layout::Layout::new(root).state_file(lane)
}

/// Reads a lane's state.
pub fn read(root: &Path, lane: &str) -> Result<LaneState, StateError> {
    let path = path(root, lane);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::Missing {
                lane: lane.to_owned(),
                path,
            });
        }
        Err(source) => return Err(StateError::Read { path, source }),
    };
    serde_json::from_slice(&text).map_err(|source| StateError::Invalid { path, source })
}

/// Writes a lane's state atomically; returns where.
pub fn write(root: &Path, state: &LaneState) -> Result<PathBuf, StateError> {
    use std::io::Write as _;
    let path = path(root, &state.lane);
    let err = |source| StateError::Write {
        path: path.clone(),
        source,
    };
    let dir = path.parent().expect("state path has a parent");
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut json = serde_json::to_vec_pretty(state).expect("state serializes");
    json.push(b'\n');
    let tmp = dir.join(format!(".{}.json.tmp{}", state.lane, std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)?;
    Ok(path)
}

/// Removes a lane's state (after `down`); a missing file is fine.
pub fn remove(root: &Path, lane: &str) -> Result<(), StateError> {
    let path = path(root, lane);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StateError::Write { path, source: e })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LaneState {
        LaneState {
            lane: "audit".into(),
            cluster: "audit-e2e".into(),
            provider: "kind".into(),
            engine: Some("docker".into()),
            kubeconfig: "/home/me/.kube/audit-e2e-config".into(),
            context: None,
            kind_config: None,
            created: true,
            images: IndexMap::from([
                (
                    "datastorage".to_owned(),
                    StateImage {
                        reference: "harness/datastorage:3f2a".into(),
                        built: true,
                    },
                ),
                (
                    "postgres".to_owned(),
                    StateImage {
                        reference: "docker.io/library/postgres:16".into(),
                        built: false,
                    },
                ),
            ]),
            created_objects: vec![],
            run_id: "r-1234".into(),
            created_at: "2026-11-22T15:00:00Z".into(),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let written = write(dir.path(), &sample()).unwrap();
        assert_eq!(written, dir.path().join(".harness/state/audit.json"));
        assert_eq!(read(dir.path(), "audit").unwrap(), sample());
        // Rewriting replaces, and leaves no temp file behind.
        let mut next = sample();
        next.run_id = "r-5678".into();
        write(dir.path(), &next).unwrap();
        assert_eq!(read(dir.path(), "audit").unwrap().run_id, "r-5678");
        let names: Vec<String> = std::fs::read_dir(dir.path().join(".harness/state"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["audit.json"]);
        remove(dir.path(), "audit").unwrap();
        remove(dir.path(), "audit").unwrap();
        assert!(matches!(
            read(dir.path(), "audit"),
            Err(StateError::Missing { .. })
        ));
    }

    #[test]
    fn missing_state_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path(), "gateway").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no environment is up for lane gateway (no state file {})",
                dir.path().join(".harness/state/gateway.json").display()
            )
        );
        assert_eq!(err.help(), "bring it up with `harness up --lane gateway`");
    }

    #[test]
    fn a_failed_write_keeps_the_old_state() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample()).unwrap();
        let state_dir = dir.path().join(".harness/state");
        // A directory where the temp file would go makes the write fail.
        std::fs::create_dir(state_dir.join(format!(".audit.json.tmp{}", std::process::id())))
            .unwrap();
        let mut next = sample();
        next.run_id = "r-new".into();
        assert!(matches!(
            write(dir.path(), &next),
            Err(StateError::Write { .. })
        ));
        assert_eq!(read(dir.path(), "audit").unwrap(), sample());
    }

    #[test]
    fn a_corrupt_state_is_invalid_not_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "audit");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{\"lane\": ").unwrap();
        let err = read(dir.path(), "audit").unwrap_err();
        assert!(matches!(err, StateError::Invalid { .. }), "{err:?}");
        assert!(err.help().contains("delete"));
    }

    #[test]
    fn created_at_is_rfc3339() {
        let now = LaneState::now();
        assert!(humantime::parse_rfc3339(&now).is_ok(), "{now}");
    }
}
