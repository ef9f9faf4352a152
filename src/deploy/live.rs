//! `harness diagnose` and `harness status`: the same judge, once, on the
//! live cluster.
//!
//! The objects a component deployed are found from its manifests (kinds,
//! names and namespaces do not depend on the image references, so image
//! placeholders are filled with a stand-in), each is read once, the
//! workloads' pods and the namespace's pod events are listed, and
//! [`super::judge::judge_by`] decides with the component's tolerance and
//! what the lane file says Ready means for its objects.

use std::time::Duration;

use indexmap::IndexMap;
use kube::Client;

use super::judge::{Judgement, Outcome, Snapshot, judge_by};
use super::report::Diagnosis;
use super::{Applier, DeployError, manifests, tolerance, wait};
use crate::config::{Component, Lane, Project};
use crate::readiness::Timestamp;

/// The state of one component on the live cluster.
#[derive(Debug)]
pub struct ComponentState {
    /// The component.
    pub name: String,
    /// The judgement.
    pub judgement: Judgement,
    /// What was read.
    pub snapshot: Snapshot,
}

/// Why the live state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The manifests could not be read.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The API server could not be asked.
    #[error("cannot read component `{component}` from the cluster")]
    Read {
        /// The component.
        component: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// A cluster that cannot be asked is a cluster failure (5); manifests that
/// cannot be read fail as in a deploy.
impl crate::failure::Failure for LiveError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            LiveError::Deploy(e) => e.exit(),
            LiveError::Read { .. } => crate::exit::Exit::Cluster,
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            LiveError::Deploy(e) => e.fix(),
            LiveError::Read { .. } => None,
        }
    }
}

/// Reads and judges `component` now.
pub async fn component_state(
    client: &Client,
    applier: &Applier,
    project: &Project,
    lane: &Lane,
    component: &Component,
) -> Result<ComponentState, LiveError> {
    let images: IndexMap<String, String> = component
        .images
        .iter()
        .map(|i| (i.clone(), format!("image-{i}")))
        .collect();
    let objects = manifests::render(component, lane, &images).map_err(DeployError::from)?;
    let namespace = lane.namespace_of(component);
    let mut located = Vec::new();
    for object in objects {
        let types = object.types.clone().unwrap_or_default();
        let a = match applier.locate(object, namespace).await {
            Ok(a) => a,
            // Left out at deploy too: the cluster does not serve this version.
            Err(super::ApplyError::UnknownKind { .. })
                if crate::render::exclude::any_matches(
                    &component.exclude_unserved,
                    &types.api_version,
                    &types.kind,
                ) =>
            {
                continue;
            }
            Err(source) => {
                return Err(DeployError::Apply {
                    component: component.name.clone(),
                    source: Box::new(source),
                }
                .into());
            }
        };
        located.push(a);
    }
    let endpoints = wait::EndpointSource::discover(client).await;
    let snapshot = wait::snapshot_once(client, &located, endpoints)
        .await
        .map_err(|source| LiveError::Read {
            component: component.name.clone(),
            source,
        })?;
    let judgement = judge_by(
        &snapshot,
        Timestamp::now(),
        &tolerance(component),
        &super::rules_for(project, lane, component),
    );
    Ok(ComponentState {
        name: component.name.clone(),
        judgement,
        snapshot,
    })
}

impl ComponentState {
    /// The state word of `harness status`.
    pub fn state(&self) -> &'static str {
        let missing = self.snapshot.objects.iter().all(|o| o.object.is_none());
        match self.judgement.outcome {
            _ if missing => "NotDeployed",
            Outcome::Ready => "Ready",
            Outcome::Pending => "InProgress",
            Outcome::Failed => "Failed",
        }
    }

    /// The notes on its objects, each `Kind/namespace/name: note`.
    pub fn notes(&self) -> Vec<String> {
        super::judge::notes(&self.judgement, &self.snapshot)
    }

    /// Container restarts over all of its pods.
    pub fn restarts(&self) -> i64 {
        self.snapshot
            .objects
            .iter()
            .flat_map(|o| &o.pods)
            .filter_map(|p| p.status.as_ref())
            .flat_map(|s| {
                s.container_statuses
                    .iter()
                    .flatten()
                    .chain(s.init_container_statuses.iter().flatten())
            })
            .map(|c| i64::from(c.restart_count))
            .sum()
    }

    /// Time since its oldest object was created.
    pub fn age(&self, now: Timestamp) -> Option<Duration> {
        let oldest = self
            .snapshot
            .objects
            .iter()
            .filter_map(|o| o.object.as_ref())
            .filter_map(|v| {
                v.pointer("/metadata/creationTimestamp")?
                    .as_str()?
                    .parse::<Timestamp>()
                    .ok()
            })
            .min()?;
        let d = now.duration_since(oldest);
        Duration::try_from(d).ok()
    }

    /// Fetches evidence and builds the diagnosis (verdicts ranked most
    /// likely first).
    pub async fn diagnosis(&self, client: &Client) -> Diagnosis {
        super::diagnose(client, &self.name, &self.judgement, &self.snapshot).await
    }
}
