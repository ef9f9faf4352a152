//! `up` as a sequence of stage calls: preflight, images, cluster (then,
//! overlapped, load and deploy: [`crate::deploy::stage::load_and_deploy`]).

use crate::cluster::{AnyProvider, Provider, state};
use crate::config::{Lane, Project};
use crate::report::Event;
use crate::report::bus::Bus;

use super::{StageFailure, UpFailure};

/// How `up` should treat what already exists.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpOptions {
    /// Reuse a running cluster of exactly the lane's cluster name.
    pub reuse: bool,
    /// Rebuild images even when their content tag exists.
    pub rebuild: bool,
}

/// What `up` brought up, for the suites, gather and teardown.
#[derive(Clone, Debug)]
pub struct Environment {
    pub state: crate::cluster::state::LaneState,
    pub provider: crate::cluster::AnyProvider,
    /// Image name → reference, for `{{image.<name>}}`.
    pub images: indexmap::IndexMap<String, String>,
    /// The engine the images are in, which the load exports them from.
    pub docker: bollard::Docker,
}

/// How long `up` waits for the lane to be Ready without `--deadline`.
pub const DEFAULT_UP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The whole of `harness up`: [`bring_up`], then the load and the deploy
/// until every component is Ready or `deadline` passes.
pub async fn up(
    project: &Project,
    lane: &Lane,
    options: UpOptions,
    run_id: &str,
    deadline: tokio::time::Instant,
    bus: &Bus,
) -> Result<Environment, StageFailure> {
    let env = bring_up(project, lane, options, run_id, bus)
        .await
        .map_err(|f| f.failure)?;
    let client = crate::cluster::stage::client_for(&env.state).await?;
    crate::deploy::stage::load_and_deploy(&client, project, lane, &env, deadline, bus).await?;
    Ok(env)
}

/// Preflight, images, cluster: everything before the load and the deploy,
/// which [`crate::deploy::stage::load_and_deploy`] overlaps. The state file
/// is written as soon as a cluster exists, so that `down` can remove it
/// even when a later step fails.
pub async fn bring_up(
    project: &Project,
    lane: &Lane,
    options: UpOptions,
    run_id: &str,
    bus: &Bus,
) -> Result<Environment, UpFailure> {
    let not_made = |failure| UpFailure {
        failure,
        cluster_exists: false,
    };
    let provider = AnyProvider::from_env(&lane.cluster)
        .map_err(|e| not_made(StageFailure::new(e.exit(), e)))?;
    // `up` again on a lane that is up reuses its cluster without --reuse,
    // and what an earlier `up` created stays this lane's to delete.
    let previous = state::read(&project.root, &lane.name)
        .ok()
        .filter(|s| s.cluster == lane.cluster.name && s.provider == provider.kind_name());
    let ours = previous.as_ref().is_some_and(|s| s.created);
    let reuse = options.reuse || previous.is_some();
    // A reused cluster holds its own host ports: not a conflict.
    let reusing = reuse && provider.exists().await.unwrap_or(false);
    if reusing && previous.is_some() {
        bus.emit(Event::Notice {
            message: reusing_notice(lane, ours),
        });
    }

    crate::preflight::stage(project, lane, reusing, bus)
        .await
        .map_err(not_made)?;
    let (docker, images) =
        crate::images::stage::run(project, lane, provider.engine(), options.rebuild, bus)
            .await
            .map_err(not_made)?;
    let planned =
        crate::cluster::stage::planned_state(lane, &provider, &images, previous.as_ref(), run_id);
    let state =
        crate::cluster::stage::ensure(project, &provider, reuse, ours, planned, bus).await?;

    Ok(Environment {
        state,
        provider,
        images: crate::images::references(&images),
        docker,
    })
}

/// What `up` says when it reuses the cluster an earlier `up` recorded.
fn reusing_notice(lane: &Lane, ours: bool) -> String {
    if ours {
        format!(
            "reusing cluster {}, which harness up created for lane {} (harness down deletes it)",
            lane.cluster.name, lane.name
        )
    } else {
        format!(
            "reusing cluster {}, which harness did not create (harness down leaves it running)",
            lane.cluster.name
        )
    }
}
