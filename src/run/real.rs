//! The stages of `harness test` over a real environment: the [`super::Stages`]
//! that [`super::run`] puts in order, each a call of its stage's module.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Lane, Project};
use crate::exit::Exit;
use crate::report::Event;
use crate::report::bus::Bus;
use crate::report::phase::phase;
use crate::suites::CancelToken;
use crate::suites::stage::{SuiteSelection, run_suites, suite_specs};

use crate::cluster::stage::{client_for, tear_down};
use crate::deploy::stage::load_and_deploy;
use crate::gather::stage::gather;
use crate::hooks::{hook_context, run_hooks};
use crate::timeline::{watch_infrastructure, workloads};

use super::StageFailure;
use super::run_dir;
use super::up::{Environment, UpOptions, bring_up};

/// The stages of `harness test` over a real environment.
pub struct RealStages<'a> {
    pub project: &'a Project,
    pub lane: &'a Lane,
    pub up: UpOptions,
    pub selection: SuiteSelection,
    pub run_id: String,
    pub run_dir: PathBuf,
    pub bus: Bus,
    /// The environment was already up (`harness up` earlier): use it, and
    /// never tear it down.
    pub existing: Option<crate::cluster::state::LaneState>,
    pub deadline: tokio::time::Instant,
    env: Option<Environment>,
    client: Option<kube::Client>,
    suite_namespaces: Vec<String>,
    failure_notes: Vec<String>,
    /// `Some(passed)` once the suites ran, for the hooks' `HARNESS_SUITES`.
    suites_passed: Option<bool>,
}

impl<'a> RealStages<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        project: &'a Project,
        lane: &'a Lane,
        up: UpOptions,
        selection: SuiteSelection,
        run_id: String,
        bus: Bus,
        existing: Option<crate::cluster::state::LaneState>,
        deadline: tokio::time::Instant,
    ) -> Self {
        let run_dir = run_dir(project, &run_id);
        Self {
            project,
            lane,
            up,
            selection,
            run_id,
            run_dir,
            bus,
            existing,
            deadline,
            env: None,
            client: None,
            suite_namespaces: Vec::new(),
            failure_notes: Vec::new(),
            suites_passed: None,
        }
    }

    /// Deletes the suites' namespaces without blocking for long: each has
    /// the provisioner's own deletion timeout; stuck ones are reported.
    pub async fn delete_suite_namespaces(&self) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let namespaces = crate::k8s::KubeNamespaces::new(client, self.run_id.clone());
        let deletions = self.suite_namespaces.iter().map(|ns| {
            let namespaces = &namespaces;
            async move { (ns.clone(), namespaces.delete(ns).await) }
        });
        for (ns, result) in futures_util::future::join_all(deletions).await {
            let message = match result {
                Ok(()) => format!("deleted suite namespace {ns}"),
                Err(e) => format!("suite namespace {ns} was not deleted: {e}"),
            };
            self.bus.emit(Event::Notice { message });
        }
    }

    /// Whether a cluster exists (this run's, or one `up` left): the state
    /// file is written before kind starts creating one.
    fn any_cluster(&self) -> bool {
        self.env.is_some()
            || self.existing.is_some()
            || crate::cluster::state::read(&self.project.root, &self.lane.name).is_ok()
    }

    /// Whether the closing teardown may delete the cluster: only one this run made.
    pub fn owns_cluster(&self) -> bool {
        self.existing.is_none() && self.env.as_ref().is_some_and(|e| e.state.created)
    }
}

impl crate::run::Stages for RealStages<'_> {
    async fn up(&mut self, cancel: CancelToken) -> Result<(), crate::run::UpFailure> {
        use crate::run::UpFailure;
        if let Some(state) = self.existing.clone() {
            let client = client_for(&state).await.map_err(|failure| UpFailure {
                failure,
                cluster_exists: false,
            })?;
            self.client = Some(client);
            self.bus.emit(Event::Notice {
                message: format!(
                    "using the environment harness up made for lane {} (cluster {})",
                    state.lane, state.cluster
                ),
            });
            return Ok(());
        }
        let work = async {
            let env = bring_up(self.project, self.lane, self.up, &self.run_id, &self.bus).await?;
            let exists = |failure| UpFailure {
                failure,
                cluster_exists: true,
            };
            let client = client_for(&env.state).await.map_err(exists)?;
            self.env = Some(env);
            self.client = Some(client.clone());
            let env = self.env.as_ref().expect("set above");
            load_and_deploy(
                &client,
                self.project,
                self.lane,
                env,
                self.deadline,
                &self.bus,
            )
            .await
            .map(drop)
            .map_err(|failure| {
                // The bundle's diagnosis.txt: the error, then every failed
                // component's table and evidence.
                let mut note = failure.to_string();
                if let Some(e) = failure
                    .error
                    .chain()
                    .find_map(|c| c.downcast_ref::<crate::deploy::DeployError>())
                {
                    for d in e.diagnoses() {
                        note.push_str("\n\n");
                        note.push_str(&d.render());
                    }
                }
                self.failure_notes.push(note);
                exists(failure)
            })
        };
        tokio::select! {
            result = work => result,
            () = cancel.cancelled() => Err(UpFailure {
                failure: StageFailure::new(Exit::Interrupted, anyhow::anyhow!("interrupted while bringing the lane up")),
                cluster_exists: self.any_cluster(),
            }),
        }
    }

    async fn suites(&mut self, cancel: CancelToken) -> Result<bool, StageFailure> {
        let specs = suite_specs(self.lane, &self.selection)
            .map_err(|e| StageFailure::new(Exit::Usage, e))?;
        let client = self.client.clone().ok_or_else(|| {
            StageFailure::new(Exit::Internal, anyhow::anyhow!("no cluster client"))
        })?;
        let kubeconfig = match (&self.env, &self.existing) {
            (Some(env), _) => env.state.kubeconfig.clone(),
            (None, Some(state)) => state.kubeconfig.clone(),
            (None, None) => {
                return Err(StageFailure::new(
                    Exit::Internal,
                    anyhow::anyhow!("no environment"),
                ));
            }
        };
        let provisioner = Arc::new(crate::k8s::KubeNamespaces::new(
            client.clone(),
            self.run_id.clone(),
        ));
        let lane_namespaces = crate::plan::plan(self.project, Some(&self.lane.name))
            .map(|p| p.lanes[0].namespaces.clone())
            .unwrap_or_default();
        let watcher = watch_infrastructure(
            client,
            lane_namespaces,
            workloads(self.project, self.lane),
            self.bus.clone(),
        );
        let result = phase(&self.bus, crate::report::Phase::Suites, async {
            let (passed, summary) = run_suites(
                self.project,
                self.lane,
                &specs,
                &self.run_id,
                &self.run_dir,
                &kubeconfig,
                self.selection.jobs,
                provisioner,
                &self.bus,
                cancel,
            )
            .await?;
            self.suite_namespaces = summary
                .results
                .iter()
                .filter_map(|r| r.namespace.clone())
                .collect();
            Ok::<_, StageFailure>(passed)
        })
        .await;
        watcher.abort();
        self.suites_passed = result.as_ref().ok().copied();
        result
    }

    async fn gather(&mut self, so_far: Exit) -> Result<PathBuf, StageFailure> {
        // `up` interrupted after the cluster came up but before it made a
        // client: the state file knows how to reach the cluster.
        if self.client.is_none()
            && let Ok(state) = crate::cluster::state::read(&self.project.root, &self.lane.name)
        {
            self.client = client_for(&state).await.ok();
        }
        let client = self.client.clone().ok_or_else(|| {
            StageFailure::new(
                Exit::Gather,
                anyhow::anyhow!(
                    "no cluster to gather from: cluster {} was never reached",
                    self.lane.cluster.name
                ),
            )
        })?;
        let notes = self.failure_notes.join("\n\n");
        let out = self.run_dir.join("gather");
        let bus = self.bus.clone();
        let bundle = phase(&self.bus, crate::report::Phase::Gather, async {
            // Everything the run reported up to here, the gather's start included.
            let mut story = bus
                .checkpoint()
                .await
                .map(|c| crate::gather::story::Story::at_gather(c, so_far));
            if let Some(story) = story.as_mut() {
                if !notes.is_empty() {
                    story.files.push(("deploy-failure.txt".into(), notes));
                }
                // A bundle gathered after a panic says so, and where.
                let panics = crate::panics::recorded();
                if !panics.is_empty() {
                    let text = panics
                        .iter()
                        .map(|p| format!("{p} [thread {}]\n", p.thread))
                        .collect::<String>();
                    story.files.push(("panics.txt".into(), text));
                }
            }
            gather(
                &client,
                self.project,
                self.lane,
                &out,
                &self.run_id,
                self.suite_namespaces.clone(),
                Vec::new(),
                story.as_ref(),
                None,
                None,
                &bus,
            )
            .await
        })
        .await?;
        self.bus.emit(Event::Artifact {
            what: "bundle".into(),
            path: bundle.archive.clone(),
        });
        Ok(bundle.archive)
    }

    async fn hooks(&mut self) -> Result<(), StageFailure> {
        // The cluster's kubeconfig: from this run's `up`, the environment
        // that was up before, or the state file (`up` failed after the
        // cluster existed).
        let kubeconfig = match (&self.env, &self.existing) {
            (Some(env), _) => env.state.kubeconfig.clone(),
            (None, Some(state)) => state.kubeconfig.clone(),
            (None, None) => {
                crate::cluster::state::read(&self.project.root, &self.lane.name)
                    .map_err(|e| StageFailure::new(Exit::Cluster, e))?
                    .kubeconfig
            }
        };
        let suites = match self.suites_passed {
            Some(true) => crate::hooks::SuitesOutcome::Passed,
            Some(false) => crate::hooks::SuitesOutcome::Failed,
            None => crate::hooks::SuitesOutcome::NotRun,
        };
        let context = hook_context(
            self.project,
            self.lane,
            &self.run_dir,
            &self.run_id,
            kubeconfig,
            suites,
        );
        run_hooks(&self.lane.after_suites, &context, &self.bus).await
    }

    async fn teardown(&mut self) -> Result<(), StageFailure> {
        if self.existing.is_some() {
            self.bus.emit(Event::Notice {
                message: format!(
                    "the environment of lane {} was up before this run; leaving it as it is",
                    self.lane.name
                ),
            });
            return Ok(());
        }
        // This run brought the lane up: forget it, and delete the cluster
        // only if this run created it (tear_down checks).
        tear_down(self.project, &self.lane.name, &self.bus).await
    }

    fn cluster_exists(&self) -> bool {
        self.any_cluster()
    }
}
