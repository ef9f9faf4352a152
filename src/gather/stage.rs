//! The gather stage: the must-gather bundle of a lane's environment, with
//! the objects the lane declares, the kind nodes' logs and, in a run, the
//! run's story.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use crate::config::{Lane, Project};
use crate::exit::Exit;
use crate::report::bus::Bus;
use crate::run::StageFailure;

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

/// Writes the must-gather bundle of a lane's environment: what the cluster
/// holds, and — when `story` is given — how the run went.
#[allow(clippy::too_many_arguments)]
pub async fn gather(
    client: &kube::Client,
    project: &Project,
    lane: &Lane,
    out: &Path,
    run_id: &str,
    extra_namespaces: Vec<String>,
    harness_files: Vec<(String, String)>,
    story: Option<&crate::gather::story::Story>,
    since: Option<Duration>,
    max_size: Option<u64>,
    bus: &Bus,
) -> Result<crate::gather::Bundle, StageFailure> {
    let plan = crate::plan::plan(project, Some(&lane.name))
        .map_err(|e| StageFailure::new(Exit::Usage, e))?;
    let mut namespaces = plan.lanes[0].namespaces.clone();
    namespaces.extend(extra_namespaces);
    namespaces.dedup();
    let name = format!("must-gather-{}-{run_id}", lane.name);
    std::fs::create_dir_all(out).map_err(|e| StageFailure::new(Exit::Gather, e))?;
    let about = vec![
        format!("lane: {}", lane.name),
        format!("cluster: {}", lane.cluster.name),
        format!("run: {run_id}"),
        format!("collected: {}", jiff::Timestamp::now()),
        format!("namespaces: {}", namespaces.join(", ")),
    ];
    let mut writer = crate::gather::BundleWriter::create(out, &name, about)
        .map_err(|e| StageFailure::new(Exit::Gather, e))?;
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
    let request = crate::gather::collect::Request {
        namespaces,
        since,
        concurrency: 8,
        harness_files,
        // Well inside the gather budget (at least a minute), so one request
        // that never answers costs its collector, not the bundle.
        collector_timeout: Some(Duration::from_secs(30)),
        progress: Some({
            let bus = bus.clone();
            crate::gather::collect::Told(Arc::new(move |done, total| {
                bus.progress(crate::report::progress::Progress::Collectors { done, total })
            }))
        }),
    };
    crate::gather::story::collect(client, project, lane, &source, &request, &mut writer, story)
        .await;
    if let crate::config::ClusterProvider::Kind(kind) = &lane.cluster.provider {
        kind_node_logs(kind.engine, &lane.cluster.name, &writer).await;
    }
    writer
        .finish(max_size)
        .map_err(|e| StageFailure::new(Exit::Gather, e))
}

/// The kind node logs (journal, kubelet, containerd, pods), as `kind export
/// logs` collects them, into the bundle's `kind/`, scrubbed like every other
/// file. kind exits 1 when one of its own collectors fails although it wrote
/// the rest (no `crictl` in some node images): that is recorded, not fatal.
async fn kind_node_logs(
    engine: crate::config::EngineKind,
    cluster: &str,
    writer: &crate::gather::BundleWriter,
) {
    let dir = writer.staging_dir().join("kind");
    let cli = crate::cluster::KindCli::new(engine);
    let args = vec![
        "export".to_string(),
        "logs".into(),
        dir.display().to_string(),
        "--name".into(),
        cluster.to_owned(),
    ];
    match tokio::time::timeout(Duration::from_secs(120), cli.run(&args, cluster)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => writer.record_failure("kind export logs", e),
        Err(_) => writer.record_failure("kind export logs", "did not finish within 120s"),
    }
    if let Err(e) = writer.scrub_tree(Path::new("kind")) {
        writer.record_failure("kind export logs (redaction)", e);
    }
}

/// Gathers the lane's environment now (the cluster `up` recorded).
pub async fn gather_now(
    project: &Project,
    lane: &Lane,
    out: Option<PathBuf>,
    since: Option<std::time::Duration>,
    max_size: Option<u64>,
    bus: &crate::report::bus::Bus,
) -> Result<crate::gather::Bundle, StageFailure> {
    let state = crate::cluster::state::read(&project.root, &lane.name).map_err(|e| {
        let exit = match &e {
            crate::cluster::state::StateError::Missing { .. } => Exit::NotUp,
            _ => Exit::Internal,
        };
        StageFailure::new(exit, e)
    })?;
    let client = crate::cluster::stage::client_for(&state).await?;
    let out = out.unwrap_or_else(|| project.root.join(".harness").join("gather"));
    // The story of the `harness up` that brought the environment up, when
    // it was recorded: its deploy timeline and verdicts belong in the bundle.
    let story =
        crate::gather::story::Story::recorded(&crate::run::events_file(project, &state.run_id));
    let bundle = tokio::time::timeout(
        crate::run::lifecycle::GATHER_BUDGET,
        gather(
            &client,
            project,
            lane,
            &out,
            &crate::run::new_run_id(),
            Vec::new(),
            Vec::new(),
            story.as_ref(),
            since,
            max_size,
            bus,
        ),
    )
    .await
    .map_err(|_| {
        StageFailure::new(
            Exit::Gather,
            anyhow::anyhow!(
                "gather did not finish within {}s; no bundle was written",
                crate::run::lifecycle::GATHER_BUDGET.as_secs()
            ),
        )
    })??;
    bus.emit(crate::report::Event::Artifact {
        what: "bundle".into(),
        path: bundle.archive.clone(),
    });
    Ok(bundle)
}
