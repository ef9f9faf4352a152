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
use crate::cluster::{AnyProvider, Provider as _};
use crate::config::{ClusterProvider, Lane};
use crate::exit::Exit;
use crate::failure::Failure;

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

impl Failure for NoCluster {
    fn exit(&self) -> Exit {
        Exit::NotUp
    }

    fn fix(&self) -> Option<String> {
        Some(self.help())
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

impl Failure for NotUp {
    fn exit(&self) -> Exit {
        Exit::NotUp
    }

    fn fix(&self) -> Option<String> {
        Some(self.help())
    }
}

/// Resolves the cluster of `lane`. `flag` is `--kubeconfig`, `env` is
/// `$KUBECONFIG` (its first path), `home` the user's home directory.
/// Returns where the cluster was found, and whether `up` recorded it.
pub fn resolve(
    root: &Path,
    lane: &Lane,
    flag: Option<&Path>,
    env: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<Resolved, NoCluster> {
    let mut tried = Vec::new();
    // The provider says where its kubeconfig is and which context to use.
    let provider = AnyProvider::from_spec(&lane.cluster, home.as_deref()).ok();
    let context = provider
        .as_ref()
        .and_then(|p| p.context().map(str::to_owned));
    if let Some(path) = flag {
        return Ok(Resolved {
            access: ClusterAccess {
                kubeconfig: path.to_path_buf(),
                context,
            },
            found_in: "--kubeconfig".into(),
            recorded: true,
        });
    }
    let state = crate::layout::Layout::new(root).state_file(&lane.name);
    match crate::cluster::state::read(root, &lane.name) {
        Ok(recorded) => {
            return Ok(Resolved {
                access: ClusterAccess {
                    kubeconfig: recorded.kubeconfig,
                    context: recorded.context,
                },
                found_in: format!("state file {}", state.display()),
                recorded: true,
            });
        }
        Err(_) => tried.push(format!("state file {}", state.display())),
    }
    let mut candidates: Vec<(PathBuf, String)> = Vec::new();
    match &lane.cluster.provider {
        // The lane file names it, or the provider falls back to $KUBECONFIG
        // itself: only a kubeconfig the lane file gives is the lane's own.
        ClusterProvider::Existing(e) => {
            if let Some(k) = &e.kubeconfig {
                candidates.push((k.clone(), "the lane's existing.kubeconfig".into()));
            }
        }
        ClusterProvider::Kind(_) => {
            if let Some(p) = &provider {
                candidates.push((p.kubeconfig().to_path_buf(), "kind kubeconfig".into()));
            }
        }
    }
    if let Some(env) = env {
        candidates.push((env, "$KUBECONFIG".into()));
    }
    for (path, what) in candidates {
        if path.is_file() {
            return Ok(Resolved {
                access: ClusterAccess {
                    kubeconfig: path.clone(),
                    context,
                },
                found_in: format!("{what} {}", path.display()),
                recorded: false,
            });
        }
        tried.push(format!("{what} {}", path.display()));
    }
    Err(NoCluster {
        lane: lane.name.clone(),
        tried,
    })
}

/// The cluster a command talks to, and where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub access: ClusterAccess,
    /// `state file …`, `--kubeconfig`, `kind kubeconfig …`, `$KUBECONFIG …`.
    pub found_in: String,
    /// `up` recorded it (or `--kubeconfig` named it): a cluster that does
    /// not answer is then a cluster problem, not "nothing is up".
    pub recorded: bool,
}
