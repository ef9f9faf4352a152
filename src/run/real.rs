//! The stages of `harness test` over a real environment: the [`super::Stages`]
//! that [`super::run`] puts in order, each a call of its stage's module.

use std::path::PathBuf;
use std::sync::Arc;

use crate::exit::Exit;
use crate::failure::StageFailure;
use crate::report::phase::phase;
use crate::report::{Event, Notice};
use crate::stage::{Ctx, Environment, UpFailure};
use crate::suites::CancelToken;
use crate::suites::stage::{SuiteSelection, run_suites, suite_specs};

use crate::cluster::stage::{client_for, tear_down};
use crate::deploy::stage::load_and_deploy;
use crate::gather::stage::{Request, gather};
use crate::hooks::{hook_context, run_hooks};
use crate::timeline::{watch_infrastructure, workloads};

use super::RunError;
use super::up::{UpOptions, bring_up};

/// The stages of `harness test` over a real environment.
pub struct RealStages<'a> {
    pub ctx: Ctx<'a>,
    pub up: UpOptions,
    pub selection: SuiteSelection,
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
    pub fn new(
        ctx: Ctx<'a>,
        up: UpOptions,
        selection: SuiteSelection,
        existing: Option<crate::cluster::state::LaneState>,
        deadline: tokio::time::Instant,
    ) -> Self {
        Self {
            ctx,
            up,
            selection,
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
        let namespaces = crate::k8s::KubeNamespaces::new(client, self.ctx.run_id.clone());
        let deletions = self.suite_namespaces.iter().map(|ns| {
            let namespaces = &namespaces;
            async move { (ns.clone(), namespaces.delete(ns).await) }
        });
        for (namespace, result) in futures_util::future::join_all(deletions).await {
            self.ctx.bus.notice(Notice::SuiteNamespaceDeleted {
                namespace,
                error: result.err().map(|e| e.to_string()),
            });
        }
    }

    /// Whether a cluster exists (this run's, or one `up` left): the state
    /// file is written before kind starts creating one.
    fn any_cluster(&self) -> bool {
        self.env.is_some()
            || self.existing.is_some()
            || crate::cluster::state::read(&self.ctx.project.root, &self.ctx.lane.name).is_ok()
    }

    /// Whether the closing teardown may delete the cluster: only one this run made.
    pub fn owns_cluster(&self) -> bool {
        self.existing.is_none() && self.env.as_ref().is_some_and(|e| e.state.created)
    }
}

impl crate::run::Stages for RealStages<'_> {
    async fn up(&mut self, cancel: CancelToken) -> Result<(), UpFailure> {
        if let Some(state) = self.existing.clone() {
            let client = client_for(&state)
                .await
                .map_err(UpFailure::before_cluster)?;
            self.client = Some(client);
            self.ctx.bus.notice(Notice::EnvironmentUsed {
                lane: state.lane,
                cluster: state.cluster,
            });
            return Ok(());
        }
        let work = async {
            let env = bring_up(&self.ctx, self.up).await?;
            let client = client_for(&env.state)
                .await
                .map_err(UpFailure::with_cluster)?;
            self.env = Some(env);
            self.client = Some(client.clone());
            let env = self.env.as_ref().expect("set above");
            load_and_deploy(&self.ctx, &client, env, self.deadline)
                .await
                .map(drop)
                .map_err(|failure| {
                    // The bundle's deploy-failure.txt: the error, then every
                    // failed component's table and evidence.
                    let mut note = failure.to_string();
                    if let Some(evidence) = failure.evidence() {
                        note.push_str("\n\n");
                        note.push_str(&evidence);
                    }
                    self.failure_notes.push(note);
                    UpFailure::with_cluster(failure)
                })
        };
        tokio::select! {
            result = work => result,
            // The interrupt announced itself: this failure is told.
            () = cancel.cancelled() => Err(UpFailure {
                failure: StageFailure::from(RunError::InterruptedUp).mark_told(),
                cluster_exists: self.any_cluster(),
            }),
        }
    }

    async fn suites(&mut self, cancel: CancelToken) -> Result<bool, StageFailure> {
        let specs = suite_specs(self.ctx.lane, &self.selection)?;
        let client = self.client.clone().ok_or(RunError::NoClient)?;
        let kubeconfig = match (&self.env, &self.existing) {
            (Some(env), _) => env.state.kubeconfig.clone(),
            (None, Some(state)) => state.kubeconfig.clone(),
            (None, None) => return Err(RunError::NoEnvironment.into()),
        };
        let provisioner = Arc::new(crate::k8s::KubeNamespaces::new(
            client.clone(),
            self.ctx.run_id.clone(),
        ));
        let (project, lane) = (self.ctx.project, self.ctx.lane);
        let lane_namespaces = crate::plan::plan(project, Some(&lane.name))
            .map(|p| p.lanes[0].namespaces.clone())
            .unwrap_or_default();
        let watcher = watch_infrastructure(
            client,
            lane_namespaces,
            workloads(project, lane),
            self.ctx.bus.clone(),
        );
        let result = phase(&self.ctx.bus, crate::report::Phase::Suites, async {
            let (passed, summary) = run_suites(
                &self.ctx,
                &specs,
                &kubeconfig,
                self.selection.jobs,
                provisioner,
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
            && let Ok(state) =
                crate::cluster::state::read(&self.ctx.project.root, &self.ctx.lane.name)
        {
            self.client = client_for(&state).await.ok();
        }
        let client = self.client.clone().ok_or_else(|| RunError::NeverReached {
            cluster: self.ctx.lane.cluster.name.clone(),
        })?;
        let notes = self.failure_notes.join("\n\n");
        let out = self.ctx.run_dir().join("gather");
        let bus = self.ctx.bus.clone();
        let bundle = phase(&self.ctx.bus, crate::report::Phase::Gather, async {
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
            let request = Request {
                out,
                extra_namespaces: self.suite_namespaces.clone(),
                story: story.as_ref(),
                ..Request::default()
            };
            gather(&self.ctx, &client, request).await
        })
        .await?;
        self.ctx.bus.emit(Event::Artifact {
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
                crate::cluster::state::read(&self.ctx.project.root, &self.ctx.lane.name)?.kubeconfig
            }
        };
        let suites = match self.suites_passed {
            Some(true) => crate::hooks::SuitesOutcome::Passed,
            Some(false) => crate::hooks::SuitesOutcome::Failed,
            None => crate::hooks::SuitesOutcome::NotRun,
        };
        let context = hook_context(&self.ctx, kubeconfig, suites);
        run_hooks(&self.ctx, &context).await
    }

    async fn teardown(&mut self) -> Result<(), StageFailure> {
        if self.existing.is_some() {
            self.ctx.bus.notice(Notice::EnvironmentKept {
                lane: self.ctx.lane.name.clone(),
            });
            return Ok(());
        }
        // This run brought the lane up: forget it, and delete the cluster
        // only if this run created it (tear_down checks).
        tear_down(&self.ctx).await
    }

    fn cluster_exists(&self) -> bool {
        self.any_cluster()
    }
}
