//! The cluster stage inside a run: the cluster made or reused and recorded
//! in the lane's state file, a client for it, and at the end its teardown.

use crate::config::Lane;
use crate::exit::Exit;
use crate::failure::{Failure, StageFailure};
use crate::report::Notice;
use crate::report::bus::Bus;
use crate::report::phase::phase;
use crate::stage::{Ctx, UpFailure};

use super::{AnyProvider, Provider, created, state};

/// What the state file will say once the cluster exists: this run creates
/// it (until `ensure` learns otherwise), with the images `up` obtained, and
/// what an earlier `up` created in a cluster it did not make, which is
/// still `down`'s to remove.
pub fn planned_state(
    lane: &Lane,
    provider: &AnyProvider,
    images: &[crate::images::ImageOutcome],
    previous: Option<&state::LaneState>,
    run_id: &str,
) -> state::LaneState {
    state::LaneState {
        lane: lane.name.clone(),
        cluster: lane.cluster.name.clone(),
        provider: provider.kind_name().to_owned(),
        engine: provider.engine().map(|e| e.as_str().to_owned()),
        kubeconfig: provider.kubeconfig().to_path_buf(),
        context: provider.context().map(str::to_owned),
        kind_config: match &lane.cluster.provider {
            crate::config::ClusterProvider::Kind(spec) => spec.config.clone(),
            crate::config::ClusterProvider::Existing(_) => None,
        },
        created: true,
        images: images
            .iter()
            .map(|o| {
                (
                    o.image.clone(),
                    state::StateImage {
                        reference: o.reference.clone(),
                        built: matches!(
                            o.obtained,
                            crate::images::Obtained::Built { .. } | crate::images::Obtained::Cached
                        ),
                    },
                )
            })
            .collect(),
        created_objects: previous
            .map(|p| p.created_objects.clone())
            .unwrap_or_default(),
        run_id: run_id.to_owned(),
        created_at: state::LaneState::now(),
    }
}

/// The cluster phase: makes the lane's cluster (or reuses it, `reuse`) and
/// returns the state file's record of it, written. Before the provider
/// starts creating one, the state file already says this run creates it:
/// an interrupt that kills kind half-way then still leads to teardown
/// deleting what kind made (kind cleans up after its own failures, not
/// after being killed). `ours`: an earlier `up` created it, so it stays
/// this lane's to delete; `recorded`: an earlier `up` recorded it.
pub async fn ensure(
    ctx: &Ctx<'_>,
    provider: &AnyProvider,
    reuse: bool,
    ours: bool,
    recorded: bool,
    mut planned: state::LaneState,
) -> Result<state::LaneState, UpFailure> {
    let root = &ctx.project.root;
    let ensured = phase(&ctx.bus, crate::report::Phase::Cluster, async {
        let exists = match recorded {
            true => provider.recorded_exists().await?,
            false => provider.exists().await?,
        };
        let creates = provider.creates_clusters() && !exists;
        if creates {
            state::write(root, &planned)?;
        }
        let ensured = provider.ensure_known(reuse, exists).await;
        if ensured.is_err() && creates {
            // The provider removed its half-made cluster itself; forget it too.
            let _ = state::remove(root, &planned.lane);
        }
        Ok::<_, StageFailure>(ensured?)
    })
    .await
    .map_err(UpFailure::before_cluster)?;
    planned.kubeconfig = ensured.kubeconfig.clone();
    planned.context = ensured.context.clone();
    planned.created = ensured.created || ours;
    state::write(root, &planned).map_err(|e| UpFailure::with_cluster(e.into()))?;
    planned.created_at = state::LaneState::now();
    Ok(planned)
}

/// A kube client for an environment `up` made.
pub async fn client_for(state: &state::LaneState) -> Result<kube::Client, StageFailure> {
    let access = crate::k8s::ClusterAccess {
        kubeconfig: state.kubeconfig.clone(),
        context: state.context.clone(),
    };
    Ok(crate::k8s::connect(&access).await?)
}

/// What a run created in a cluster it did not make, and could not delete.
#[derive(Debug, thiserror::Error)]
#[error("could not delete what the run created in cluster {cluster}: {}", .failed.join("; "))]
pub struct Leftovers {
    pub cluster: String,
    pub lane: String,
    /// Each object that is left, and why.
    pub failed: Vec<String>,
}

/// What could not be deleted from a cluster is a cluster failure (5).
impl Failure for Leftovers {
    fn exit(&self) -> Exit {
        Exit::Cluster
    }

    fn fix(&self) -> Option<String> {
        Some(format!(
            "run `harness down --lane {}` to try again",
            self.lane
        ))
    }
}

/// Deletes what `up` created: the cluster when `up` made it (a reused or
/// existing cluster is left alone), then the state file.
pub async fn tear_down(ctx: &Ctx<'_>) -> Result<(), StageFailure> {
    let (root, lane) = (&ctx.project.root, ctx.lane);
    let recorded = state::read(root, &lane.name)?;
    phase(&ctx.bus, crate::report::Phase::Teardown, async {
        crate::panics::inject("teardown");
        if recorded.created {
            AnyProvider::from_env(&lane.cluster)?.delete().await?;
        } else {
            remove_created(&recorded, &ctx.bus).await?;
        }
        Ok::<_, StageFailure>(state::remove(root, &lane.name)?)
    })
    .await
}

/// In a cluster `up` did not create: deletes what the run created there
/// (the state file's record) and leaves the cluster and everything that
/// was there before. A failure keeps the state, so `harness down` can try
/// again.
async fn remove_created(recorded: &state::LaneState, bus: &Bus) -> Result<(), StageFailure> {
    let left_running = |deleted| Notice::ClusterLeftRunning {
        cluster: recorded.cluster.clone(),
        deleted,
    };
    if recorded.created_objects.is_empty() {
        bus.notice(left_running(Vec::new()));
        return Ok(());
    }
    let client = client_for(recorded).await?;
    let removed = created::remove(&client, &recorded.created_objects, &recorded.run_id).await;
    bus.notice(left_running(
        removed.deleted.iter().map(ToString::to_string).collect(),
    ));
    if removed.failed.is_empty() {
        return Ok(());
    }
    Err(Leftovers {
        cluster: recorded.cluster.clone(),
        lane: recorded.lane.clone(),
        failed: removed
            .failed
            .iter()
            .map(|(r, why)| format!("{r} ({why})"))
            .collect(),
    }
    .into())
}

/// What `down` says when nothing is up for the lane; it names a cluster of
/// the lane's name that exists anyway (made by hand, or by an `up` whose
/// state was lost), without touching it.
pub async fn nothing_up(lane: &Lane, gather: bool) -> Notice {
    let mut stray_kind_cluster = None;
    if let Ok(provider) = AnyProvider::from_env(&lane.cluster)
        && provider.creates_clusters()
        && let Ok(Ok(true)) =
            tokio::time::timeout(std::time::Duration::from_secs(20), provider.exists()).await
    {
        stray_kind_cluster = Some(lane.cluster.name.clone());
    }
    Notice::NothingUp {
        lane: lane.name.clone(),
        gather,
        stray_kind_cluster,
    }
}
