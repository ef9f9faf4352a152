//! Which cluster a command talks to, and why that one.
//!
//! `up` records the cluster it made in `.harness/state/<lane>.json`; the
//! commands that act on a running lane (`diagnose`, `status`, `namespace
//! create`) take its kubeconfig from there. The order is: `--kubeconfig`,
//! the state file, the lane's `existing.kubeconfig`, kind's
//! `~/.kube/<cluster>-config` (where `up` writes it), and `$KUBECONFIG`
//! last, so a developer's ambient `$KUBECONFIG` never silently wins over
//! the lane's own cluster. When none exists the error lists what was tried.

use std::path::{Path, PathBuf};

use super::client::ClusterAccess;
use crate::config::{ClusterProvider, Lane};

/// No kubeconfig could be found for the lane: nothing is up.
#[derive(Debug, thiserror::Error)]
#[error("no environment is up for lane {lane}: no kubeconfig found (tried {})", .tried.join(", "))]
pub struct NoCluster {
    /// The lane.
    pub lane: String,
    /// What was looked at, in order.
    pub tried: Vec<String>,
}

impl NoCluster {
    /// How to fix it.
    pub fn help(&self) -> String {
        format!(
            "bring it up with `harness up --lane {}`, or pass --kubeconfig PATH for a cluster harness did not make",
            self.lane
        )
    }
}

/// No environment is up for the lane: `up` recorded none, and the cluster
/// a leftover kubeconfig points at does not answer.
#[derive(Debug, thiserror::Error)]
#[error("no environment is up for lane {lane}: {detail}")]
pub struct NotUp {
    /// The lane.
    pub lane: String,
    /// What was found instead.
    pub detail: String,
}

impl NotUp {
    /// How to fix it.
    pub fn help(&self) -> String {
        format!("bring it up with `harness up --lane {}`", self.lane)
    }
}

/// Where the state file of `lane` is.
pub fn state_file(root: &Path, lane: &str) -> PathBuf {
    root.join(".harness")
        .join("state")
        .join(format!("{lane}.json"))
}

/// Reads `kubeconfig` and `context` from a state file, at the top level or
/// under `cluster` (the file is written by `up`; reading it loosely keeps
/// this working while its other fields evolve).
pub fn from_state(text: &str) -> Option<ClusterAccess> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let field = |key: &str| {
        v.get(key)
            .or_else(|| v.get("cluster").and_then(|c| c.get(key)))
            .and_then(|x| x.as_str())
            .map(str::to_owned)
    };
    Some(ClusterAccess {
        kubeconfig: field("kubeconfig")?.into(),
        context: field("context"),
    })
}

/// Resolves the cluster of `lane`. `flag` is `--kubeconfig`, `env` is
/// `$KUBECONFIG` (its first path), `home` the user's home directory.
pub fn resolve(
    root: &Path,
    lane: &Lane,
    flag: Option<&Path>,
    env: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<(ClusterAccess, String), NoCluster> {
    let mut tried = Vec::new();
    let context = match &lane.cluster.provider {
        ClusterProvider::Existing(e) => e.context.clone(),
        ClusterProvider::Kind(_) => None,
    };
    if let Some(path) = flag {
        return Ok((
            ClusterAccess {
                kubeconfig: path.to_path_buf(),
                context,
            },
            "--kubeconfig".into(),
        ));
    }
    let state = state_file(root, &lane.name);
    match std::fs::read_to_string(&state)
        .ok()
        .and_then(|t| from_state(&t))
    {
        Some(access) => return Ok((access, format!("state file {}", state.display()))),
        None => tried.push(format!("state file {}", state.display())),
    }
    let mut candidates: Vec<(PathBuf, String)> = Vec::new();
    match &lane.cluster.provider {
        ClusterProvider::Existing(e) => {
            if let Some(k) = &e.kubeconfig {
                candidates.push((k.clone(), "the lane's existing.kubeconfig".into()));
            }
        }
        ClusterProvider::Kind(_) => {
            if let Some(home) = &home {
                let path = home
                    .join(".kube")
                    .join(format!("{}-config", lane.cluster.name));
                candidates.push((path, "kind kubeconfig".into()));
            }
        }
    }
    if let Some(env) = env {
        candidates.push((env, "$KUBECONFIG".into()));
    }
    for (path, what) in candidates {
        if path.is_file() {
            return Ok((
                ClusterAccess {
                    kubeconfig: path.clone(),
                    context,
                },
                format!("{what} {}", path.display()),
            ));
        }
        tried.push(format!("{what} {}", path.display()));
    }
    Err(NoCluster {
        lane: lane.name.clone(),
        tried,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_are_read_loosely() {
        let table = [
            (r#"{"kubeconfig": "/k"}"#, Some(("/k", None))),
            (
                r#"{"cluster": {"kubeconfig": "/k", "context": "kind-x"}}"#,
                Some(("/k", Some("kind-x"))),
            ),
            (r#"{"cluster": {}}"#, None),
            ("not json", None),
        ];
        for (text, want) in table {
            let got = from_state(text);
            let want = want.map(|(k, c)| ClusterAccess {
                kubeconfig: k.into(),
                context: c.map(str::to_owned),
            });
            assert_eq!(got, want, "{text}");
        }
    }
}
