//! `up` as a sequence of stage calls: preflight, images, cluster (then,
//! overlapped, load and deploy: [`crate::deploy::stage::load_and_deploy`]).

use crate::cluster::{AnyProvider, Provider, state};
use crate::failure::StageFailure;
use crate::report::Notice;
use crate::stage::{Ctx, Environment, UpFailure};

/// How `up` should treat what already exists.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpOptions {
    /// Reuse a running cluster of exactly the lane's cluster name.
    pub reuse: bool,
    /// Rebuild images even when their content tag exists.
    pub rebuild: bool,
}

pub use crate::stage::UP_DEADLINE as DEFAULT_UP_DEADLINE;

/// The whole of `harness up`: [`bring_up`], then the load and the deploy
/// until every component is Ready or `deadline` passes.
pub async fn up(
    ctx: &Ctx<'_>,
    options: UpOptions,
    deadline: tokio::time::Instant,
) -> Result<Environment, StageFailure> {
    let env = bring_up(ctx, options).await.map_err(|f| f.failure)?;
    let client = crate::cluster::stage::client_for(&env.state).await?;
    crate::deploy::stage::load_and_deploy(ctx, &client, &env, deadline).await?;
    Ok(env)
}

/// `harness up` as a command: [`up`], until it ends or an interrupt stops
/// it where it is (a build, a kind call, a load, a wait); what it made so
/// far stays for `harness down`. The interrupt is announced at once, and
/// the failure it ends in is told.
pub async fn until_up(
    ctx: &Ctx<'_>,
    options: UpOptions,
    deadline: tokio::time::Instant,
) -> Result<Environment, StageFailure> {
    let mut interrupts = {
        let bus = ctx.bus.weak();
        super::count_interrupts(move |n| {
            if n == 1 {
                bus.notice(Notice::UpInterrupted);
            }
        })
        .map_err(|source| super::SignalError { source })?
    };
    tokio::select! {
        result = up(ctx, options, deadline) => result,
        _ = interrupts.wait_for(|n| *n > 0) => {
            Err(StageFailure::from(super::RunError::InterruptedUp).mark_told())
        }
    }
}

/// Preflight, images, cluster: everything before the load and the deploy,
/// which [`crate::deploy::stage::load_and_deploy`] overlaps. The state file
/// is written as soon as a cluster exists, so that `down` can remove it
/// even when a later step fails.
pub async fn bring_up(ctx: &Ctx<'_>, options: UpOptions) -> Result<Environment, UpFailure> {
    let (project, lane) = (ctx.project, ctx.lane);
    let provider =
        AnyProvider::from_env(&lane.cluster).map_err(|e| UpFailure::before_cluster(e.into()))?;
    // `up` again on a lane that is up reuses its cluster without --reuse,
    // and what an earlier `up` created stays this lane's to delete.
    let previous = state::read(&project.root, &lane.name)
        .ok()
        .filter(|s| s.cluster == lane.cluster.name && s.provider == provider.kind_name());
    let ours = previous.as_ref().is_some_and(|s| s.created);
    let reuse = options.reuse || previous.is_some();
    // A reused cluster holds its own host ports: not a conflict.
    let reusing = reuse
        && match previous.is_some() {
            true => provider.recorded_exists().await,
            false => provider.exists().await,
        }
        .unwrap_or(false);
    if reusing
        && let Ok(docker) = crate::engine::client(&crate::engine::endpoint_from_env(
            provider
                .engine()
                .unwrap_or(crate::config::EngineKind::Docker),
        ))
    {
        // What the nodes hold, and whether the kubeconfig still answers,
        // are asked while preflight, the images and the cluster phase run:
        // the load and the cluster phase then take the answers.
        provider.look_ahead(docker);
    }
    if reusing && previous.is_some() {
        ctx.bus.notice(Notice::ClusterReused {
            cluster: lane.cluster.name.clone(),
            lane: lane.name.clone(),
            ours,
        });
    }

    let connected = crate::preflight::stage(ctx, reusing)
        .await
        .map_err(UpFailure::before_cluster)?;
    let (docker, images) =
        crate::images::stage::run(ctx, provider.engine(), connected, options.rebuild)
            .await
            .map_err(UpFailure::before_cluster)?;
    let planned = crate::cluster::stage::planned_state(
        lane,
        &provider,
        &images,
        previous.as_ref(),
        &ctx.run_id,
    );
    let recorded = previous.is_some();
    let state =
        crate::cluster::stage::ensure(ctx, &provider, reuse, ours, recorded, planned).await?;

    Ok(Environment {
        state,
        provider,
        images: crate::images::references(&images),
        docker,
    })
}
