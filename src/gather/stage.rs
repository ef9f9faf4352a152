//! The gather stage: the must-gather bundle of a lane's environment, with
//! the objects the lane declares, the kind nodes' logs and, in a run, the
//! run's story.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{AnyProvider, Provider as _};
use crate::config::{Lane, Project};
use crate::exit::Exit;
use crate::failure::{Failure, StageFailure};
use crate::gather::GatherError;
use crate::stage::{Ctx, GATHER_BUDGET};

/// The names of the CRDs the lane's manifests define, and every object they
/// declare.
fn declared_objects(
    project: &Project,
    lane: &Lane,
) -> (Vec<String>, Vec<crate::gather::kube::Declared>) {
    let mut crds = Vec::new();
    let mut declared = Vec::new();
    for (_, object) in crate::deploy::manifests::rendered_objects(project, lane) {
        let (Some(types), Some(name)) = (&object.types, &object.metadata.name) else {
            continue;
        };
        if crate::deploy::manifests::is_crd(&object) {
            crds.push(name.clone());
        }
        declared.push(crate::gather::kube::Declared {
            api_version: types.api_version.clone(),
            kind: types.kind.clone(),
            name: name.clone(),
        });
    }
    (crds, declared)
}

/// What a gather collects beyond the lane's own namespaces and objects.
#[derive(Default)]
pub struct Request<'a> {
    /// The directory the bundle goes into.
    pub out: PathBuf,
    /// The suites' namespaces of the run.
    pub extra_namespaces: Vec<String>,
    /// Files for the bundle's `harness/`, as they are.
    pub harness_files: Vec<(String, String)>,
    /// How the run went, when it is a run's gather.
    pub story: Option<&'a crate::gather::story::Story>,
    /// Only logs and events newer than this.
    pub since: Option<Duration>,
    /// Cap the bundle's size.
    pub max_size: Option<u64>,
}

/// Writes the must-gather bundle of a lane's environment: what the cluster
/// holds, and — when the request has a story — how the run went.
pub async fn gather(
    ctx: &Ctx<'_>,
    client: &kube::Client,
    request: Request<'_>,
) -> Result<crate::gather::Bundle, StageFailure> {
    let (project, lane) = (ctx.project, ctx.lane);
    let plan = crate::plan::plan(project, Some(&lane.name))?;
    let mut namespaces = plan.lanes[0].namespaces.clone();
    namespaces.extend(request.extra_namespaces);
    namespaces.dedup();
    let name = format!("must-gather-{}-{}", lane.name, ctx.run_id);
    let out = &request.out;
    std::fs::create_dir_all(out).map_err(|source| GatherError::Create {
        path: out.clone(),
        source,
    })?;
    let about = vec![
        format!("lane: {}", lane.name),
        format!("cluster: {}", lane.cluster.name),
        format!("run: {}", ctx.run_id),
        format!("collected: {}", jiff::Timestamp::now()),
        format!("namespaces: {}", namespaces.join(", ")),
    ];
    let mut writer = crate::gather::BundleWriter::create(out, &name, about)?;
    // With the staging directory made: a panic must not leave it behind.
    crate::panics::inject("gather");
    let (crds, mut declared) = declared_objects(project, lane);
    // The Namespace objects themselves (phase, finalizers, conditions).
    declared.extend(namespaces.iter().map(|ns| crate::gather::kube::Declared {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        name: ns.clone(),
    }));
    let source = crate::gather::kube::KubeSource::new(client.clone(), crds).with_declared(declared);
    let collect = crate::gather::collect::Request {
        namespaces,
        since: request.since,
        concurrency: 8,
        harness_files: request.harness_files,
        // Well inside the gather budget (at least a minute), so one request
        // that never answers costs its collector, not the bundle.
        collector_timeout: Some(Duration::from_secs(30)),
        progress: Some({
            let bus = ctx.bus.clone();
            crate::gather::collect::Told(Arc::new(move |done, total| {
                bus.progress(crate::report::progress::Progress::Collectors { done, total })
            }))
        }),
    };
    crate::gather::story::collect(
        client,
        project,
        lane,
        &source,
        &collect,
        &mut writer,
        request.story,
    )
    .await;
    node_logs(lane, &writer).await;
    Ok(writer.finish(request.max_size)?)
}

/// The nodes' own logs (journal, kubelet, container runtime, pods), as the
/// provider exports them (`kind export logs`), into the bundle's `kind/`,
/// scrubbed like every other file. A provider that fails one of its own
/// collectors may still have written the rest: that is recorded, not fatal.
async fn node_logs(lane: &Lane, writer: &crate::gather::BundleWriter) {
    let provider = match AnyProvider::from_env(&lane.cluster) {
        Ok(provider) => provider,
        Err(e) => return writer.record_failure("node logs", e),
    };
    let what = format!("{} export logs", provider.kind_name());
    let dir = writer.staging_dir().join("kind");
    match tokio::time::timeout(Duration::from_secs(120), provider.export_node_logs(&dir)).await {
        Ok(Ok(true)) => {}
        // Nothing to export: nothing to scrub.
        Ok(Ok(false)) => return,
        Ok(Err(e)) => writer.record_failure(&what, e),
        Err(_) => writer.record_failure(&what, "did not finish within 120s"),
    }
    if let Err(e) = writer.scrub_tree(Path::new("kind")) {
        writer.record_failure(format!("{what} (redaction)"), e);
    }
}

/// A `harness gather` that ran out of its budget.
#[derive(Debug, thiserror::Error)]
#[error("gather did not finish within {}s; no bundle was written", .budget.as_secs())]
pub struct GatherTimeout {
    pub budget: Duration,
}

impl Failure for GatherTimeout {
    fn exit(&self) -> Exit {
        Exit::Gather
    }

    fn fix(&self) -> Option<String> {
        Some(
            "check that the cluster answers (`harness status`); `--since 30m` collects less"
                .to_owned(),
        )
    }
}

/// Gathers the lane's environment now (the cluster `up` recorded), as
/// `harness gather` and `harness down --gather` do: into `out`, or
/// `.harness/gather/`, within [`GATHER_BUDGET`].
pub async fn gather_now(
    ctx: &Ctx<'_>,
    out: Option<PathBuf>,
    since: Option<Duration>,
    max_size: Option<u64>,
) -> Result<crate::gather::Bundle, StageFailure> {
    let state = crate::cluster::state::read(&ctx.project.root, &ctx.lane.name)?;
    let client = crate::cluster::stage::client_for(&state).await?;
    // The story of the `harness up` that brought the environment up, when
    // it was recorded: its deploy timeline and verdicts belong in the bundle.
    let story = crate::gather::story::Story::recorded(&ctx.layout.events_file(&state.run_id));
    let request = Request {
        out: out.unwrap_or_else(|| ctx.layout.gather_dir()),
        story: story.as_ref(),
        since,
        max_size,
        ..Request::default()
    };
    let bundle = tokio::time::timeout(GATHER_BUDGET, gather(ctx, &client, request))
        .await
        .map_err(|_| GatherTimeout {
            budget: GATHER_BUDGET,
        })??;
    ctx.bus.emit(crate::report::Event::Artifact {
        what: "bundle".into(),
        path: bundle.archive.clone(),
    });
    Ok(bundle)
}
