//! The cluster stage inside a run: the cluster made or reused and recorded
//! in the lane's state file, a client for it, and at the end its teardown.

use crate::config::{Lane, Project};
use crate::exit::Exit;
use crate::report::Event;
use crate::report::bus::Bus;
use crate::report::phase::phase;
use crate::run::StageFailure;

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
/// returns the state file's record of it, written. Before kind starts
/// creating one, the state file already says this run creates it: an
/// interrupt that kills kind half-way then still leads to teardown deleting
/// what kind made (kind cleans up after its own failures, not after being
/// killed). `ours`: an earlier `up` created it, so it stays this lane's to
/// delete.
pub async fn ensure(
    project: &Project,
    provider: &AnyProvider,
    reuse: bool,
    ours: bool,
    mut planned: state::LaneState,
    bus: &Bus,
) -> Result<state::LaneState, crate::run::UpFailure> {
    let not_made = |failure| crate::run::UpFailure {
        failure,
        cluster_exists: false,
    };
    let ensured = phase(bus, crate::report::Phase::Cluster, async {
        let cluster = |e: super::ClusterError| StageFailure::new(e.exit(), e);
        let creates = matches!(provider, AnyProvider::Kind(_))
            && !provider.exists().await.map_err(cluster)?;
        if creates {
            state::write(&project.root, &planned)
                .map_err(|e| StageFailure::new(Exit::Internal, e))?;
        }
        let ensured = provider.ensure(reuse).await;
        if ensured.is_err() && creates {
            // kind removed its half-made cluster itself; forget it too.
            let _ = state::remove(&project.root, &planned.lane);
        }
        ensured.map_err(cluster)
    })
    .await
    .map_err(not_made)?;
    planned.kubeconfig = ensured.kubeconfig.clone();
    planned.context = ensured.context.clone();
    planned.created = ensured.created || ours;
    state::write(&project.root, &planned).map_err(|e| crate::run::UpFailure {
        failure: StageFailure::new(Exit::Internal, e),
        cluster_exists: true,
    })?;
    planned.created_at = state::LaneState::now();
    Ok(planned)
}

/// A kube client for an environment `up` made.
pub async fn client_for(state: &state::LaneState) -> Result<kube::Client, StageFailure> {
    let access = crate::k8s::ClusterAccess {
        kubeconfig: state.kubeconfig.clone(),
        context: state.context.clone(),
    };
    crate::k8s::connect(&access)
        .await
        .map_err(|e| StageFailure::new(Exit::Cluster, e))
}

/// Deletes what `up` created: the cluster when `up` made it (a reused or
/// existing cluster is left alone), then the state file.
pub async fn tear_down(project: &Project, lane: &str, bus: &Bus) -> Result<(), StageFailure> {
    let recorded =
        state::read(&project.root, lane).map_err(|e| StageFailure::new(Exit::Usage, e))?;
    let lane_spec = project.lanes.get(lane).ok_or_else(|| {
        StageFailure::new(
            Exit::Usage,
            anyhow::anyhow!("lane `{lane}` is no longer in the lane file"),
        )
    })?;
    phase(bus, crate::report::Phase::Teardown, async {
        crate::panics::inject("teardown");
        if recorded.created {
            let provider = AnyProvider::from_env(&lane_spec.cluster)
                .map_err(|e| StageFailure::new(e.exit(), e))?;
            provider
                .delete()
                .await
                .map_err(|e| StageFailure::new(e.exit(), e))?;
        } else {
            remove_created(&recorded, bus).await?;
        }
        state::remove(&project.root, lane).map_err(|e| StageFailure::new(Exit::Internal, e))
    })
    .await
}

/// In a cluster `up` did not create: deletes what the run created there
/// (the state file's record) and leaves the cluster and everything that
/// was there before. A failure keeps the state, so `harness down` can try
/// again.
async fn remove_created(recorded: &state::LaneState, bus: &Bus) -> Result<(), StageFailure> {
    let mut message = format!(
        "cluster {} was not created by harness; leaving it running",
        recorded.cluster
    );
    if recorded.created_objects.is_empty() {
        bus.emit(Event::Notice { message });
        return Ok(());
    }
    let client = client_for(recorded).await?;
    let removed = created::remove(&client, &recorded.created_objects, &recorded.run_id).await;
    if !removed.deleted.is_empty() {
        let names: Vec<String> = removed.deleted.iter().map(ToString::to_string).collect();
        message.push_str(&format!(
            ", and deleted what the run created in it: {}",
            names.join(", ")
        ));
    }
    bus.emit(Event::Notice { message });
    if removed.failed.is_empty() {
        return Ok(());
    }
    let failed: Vec<String> = removed
        .failed
        .iter()
        .map(|(r, why)| format!("{r} ({why})"))
        .collect();
    Err(StageFailure::new(
        Exit::Cluster,
        anyhow::anyhow!(
            "could not delete what the run created in cluster {}: {}; run `harness down --lane {}` to try again",
            recorded.cluster,
            failed.join("; "),
            recorded.lane
        ),
    ))
}

/// What `down` says when nothing is up for the lane; it names a kind
/// cluster of the lane's name that exists anyway (made by hand, or by a
/// `up` whose state was lost), without touching it.
pub async fn nothing_up(lane: &Lane, gather: bool) -> String {
    let what = if gather {
        "nothing to gather or tear down"
    } else {
        "nothing to tear down"
    };
    let mut message = format!(
        "nothing is up for lane {} (no state file): {what}",
        lane.name
    );
    if let Ok(provider @ AnyProvider::Kind(_)) = AnyProvider::from_env(&lane.cluster)
        && let Ok(Ok(true)) =
            tokio::time::timeout(std::time::Duration::from_secs(20), provider.exists()).await
    {
        message.push_str(&format!(
            "; a kind cluster named {0} exists, but harness up did not record making it: `kind delete cluster --name {0}` deletes it if it is yours",
            lane.cluster.name
        ));
    }
    message
}
