//! The load and deploy stages inside a run, overlapped: each component is
//! applied once its dependencies are Ready and its images are in every
//! node, and the deploy's progress and verdicts are told on the bus.

use tokio::sync::mpsc;

use crate::config::{Lane, Project};
use crate::failure::StageFailure;
use crate::report::phase::phase;
use crate::report::{Event, Notice};
use crate::stage::{Ctx, Environment};

/// Loads the lane's images into the cluster and deploys the lane, the two
/// overlapped. A component is applied once its dependencies are Ready (the
/// wave order, as always) and every image it runs is in every node: at
/// once for components without images (CRDs) and for images the nodes
/// already held, which the load reports before it streams anything; when
/// the load has finished for the rest. The deploy phase starts when its
/// first component can. A failed load stops the deploy (and exits as an
/// image failure), a failed deploy the load.
pub async fn load_and_deploy(
    ctx: &Ctx<'_>,
    client: &kube::Client,
    env: &Environment,
    deadline: tokio::time::Instant,
) -> Result<crate::deploy::DeployReport, StageFailure> {
    use crate::cluster::{Arrivals, ImageRef, LoadOutcome, LoadProgress, Provider};
    let (project, lane, bus) = (ctx.project, ctx.lane, &ctx.bus);
    let refs: Vec<ImageRef> = env
        .images
        .iter()
        .map(|(name, reference)| ImageRef {
            name: name.clone(),
            reference: reference.clone(),
        })
        .collect();
    // The nodes the load reports on. Not knowing them only holds every
    // image-running component until the load has finished.
    let nodes = match refs.is_empty() {
        true => Vec::new(),
        false => env.provider.nodes(&env.docker).await.unwrap_or_default(),
    };
    let (arrived, arrivals) =
        tokio::sync::watch::channel(Arrivals::new(nodes.into_iter().map(|n| n.name)));
    let progress = |told: LoadProgress<'_>| {
        let load = match told {
            LoadProgress::Line(load) => load,
            LoadProgress::Sending(s) => {
                bus.progress(crate::report::progress::Progress::LoadSending {
                    node: s.node.clone(),
                    images: s.images.clone(),
                    sent: s.sent,
                    total: s.total,
                });
                return;
            }
            LoadProgress::SentWhole(w) => {
                bus.notice(Notice::LoadSentWhole {
                    node: w.node.clone(),
                    images: w.images.clone(),
                    why: w.why.clone(),
                });
                return;
            }
        };
        let (skipped, bytes, seconds) = match load.outcome {
            LoadOutcome::Loaded { bytes, seconds } => (false, bytes, seconds),
            LoadOutcome::Skipped | LoadOutcome::Tagged | LoadOutcome::NotDelivered => {
                (true, 0, 0.0)
            }
        };
        bus.emit(Event::Load {
            image: load.image.clone(),
            node: load.node.clone(),
            skipped,
            bytes,
            seconds,
        });
        arrived.send_modify(|a| a.heard(load));
    };
    let load = async {
        phase(
            bus,
            crate::report::Phase::Load,
            env.provider.deliver(&env.docker, &refs, &progress),
        )
        .await?;
        arrived.send_modify(Arrivals::finish);
        Ok::<_, StageFailure>(())
    };
    let can_start = |images: &[String]| {
        let mut arrivals = arrivals.clone();
        let images = images.to_vec();
        async move {
            // The sender outlives both halves; should it go, wait forever
            // rather than deploy without the images.
            if arrivals
                .wait_for(|a| a.has_all(images.iter()))
                .await
                .is_err()
            {
                std::future::pending::<()>().await;
            }
        }
    };
    let deploy = async {
        // The deploy phase opens when its first component can start.
        let components = crate::plan::closure(project, &lane.components);
        let first_wave = crate::plan::waves(project, &components)
            .into_iter()
            .next()
            .unwrap_or_default();
        let _ = arrivals
            .clone()
            .wait_for(|a| {
                first_wave.is_empty()
                    || first_wave
                        .iter()
                        .any(|c| a.has_all(project.components[c.as_str()].images.iter()))
            })
            .await;
        deploy(ctx, client, env, deadline, |c| can_start(&c.images)).await
    };
    let ((), report) = tokio::try_join!(load, deploy)?;
    Ok(report)
}

/// Deploys the lane into the environment, each component once `ready`
/// says so, forwarding progress to the bus.
async fn deploy<F: std::future::Future<Output = ()>>(
    ctx: &Ctx<'_>,
    client: &kube::Client,
    env: &Environment,
    deadline: tokio::time::Instant,
    ready: impl Fn(&crate::config::Component) -> F,
) -> Result<crate::deploy::DeployReport, StageFailure> {
    use crate::deploy::DeployEvent;
    let (project, lane, bus) = (ctx.project, ctx.lane, &ctx.bus);
    use crate::report::progress::Progress;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let waves = crate::plan::waves(project, &crate::plan::closure(project, &lane.components)).len();
    let forward = {
        let bus = bus.clone();
        tokio::spawn(async move {
            // A task whose panic nobody sees: its handle's error is dropped.
            crate::panics::inject("deploy-events");
            while let Some(event) = rx.recv().await {
                let secs =
                    |t: Option<jiff::Timestamp>, from: Option<jiff::Timestamp>| match (t, from) {
                        (Some(t), Some(f)) => Some(t.duration_since(f).as_secs_f64()),
                        _ => None,
                    };
                let event = match event {
                    DeployEvent::ComponentReady {
                        component,
                        elapsed,
                        ready,
                        lag,
                    } => Event::ComponentReady {
                        component,
                        seconds: elapsed.as_secs_f64(),
                        ready_seconds: Some(ready.as_secs_f64()),
                        lag: lag.map(|l| crate::report::Lag {
                            at_least: l.at_least.as_secs_f64(),
                            at_most: l.at_most.as_secs_f64(),
                        }),
                    },
                    DeployEvent::PodTimeline {
                        component,
                        pod,
                        timeline,
                    } => Event::PodTimeline {
                        component,
                        pod,
                        scheduled: secs(timeline.scheduled, timeline.created),
                        initialized: secs(timeline.initialized, timeline.created),
                        ready: secs(timeline.ready, timeline.created),
                    },
                    DeployEvent::WaveStarted { wave, components } => {
                        bus.progress(Progress::DeployWave {
                            wave,
                            waves,
                            components: components.clone(),
                        });
                        Event::Notice {
                            notice: Notice::WaveStarted { wave, components },
                        }
                    }
                    DeployEvent::Healthy { component, url } => Event::Notice {
                        notice: Notice::Healthy { component, url },
                    },
                    DeployEvent::Unsettled { component, what } => Event::Notice {
                        notice: Notice::Unsettled { component, what },
                    },
                    DeployEvent::WatchFailing { component, message } => Event::Notice {
                        notice: Notice::WatchFailing { component, message },
                    },
                    DeployEvent::LeftOut { component, object } => Event::Notice {
                        notice: Notice::LeftOut { component, object },
                    },
                    DeployEvent::Noted {
                        component,
                        object,
                        note,
                    } => Event::Notice {
                        notice: Notice::Noted {
                            component,
                            object,
                            note,
                        },
                    },
                    DeployEvent::Verdict {
                        component,
                        standing,
                        summary,
                        diagnosis,
                    } => Event::Verdict {
                        component,
                        standing,
                        summary,
                        diagnosis: diagnosis.map(|d| Box::new(d.reported())),
                    },
                    DeployEvent::Live { component, state } => {
                        bus.progress(Progress::DeployLive { component, state });
                        continue;
                    }
                    DeployEvent::Applied { .. } | DeployEvent::Waiting { .. } => continue,
                };
                bus.emit(event);
            }
        })
    };
    let result = phase(bus, crate::report::Phase::Deploy, async {
        crate::panics::inject("deploy");
        if !env.state.created {
            record_created(client, project, lane, env).await;
        }
        crate::deploy::deploy_lane_when(client, project, lane, &env.images, tx, deadline, ready)
            .await
    })
    .await;
    let _ = forward.await;
    result
}

/// On a cluster `up` did not create: records in the state file, before
/// anything is applied, which of the lane's objects and namespaces do not
/// exist yet, so that teardown removes what this run creates and nothing
/// that was there before (see [`crate::cluster::created`]).
async fn record_created(client: &kube::Client, project: &Project, lane: &Lane, env: &Environment) {
    use crate::cluster::{created, state};
    let mut objects: Vec<(kube::api::DynamicObject, String)> = Vec::new();
    let namespaces = crate::plan::plan(project, Some(&lane.name))
        .map(|p| p.lanes[0].namespaces.clone())
        .unwrap_or_default();
    objects.extend(created::namespaces(&namespaces));
    for name in crate::plan::closure(project, &lane.components) {
        let component = &project.components[name.as_str()];
        let namespace = lane.namespace_of(component).to_owned();
        // A manifest that cannot be rendered is deploy's to report.
        let Ok(rendered) = crate::deploy::manifests::render(component, lane, &env.images) else {
            continue;
        };
        let (crds, rest) = crate::deploy::manifests::crds_first(rendered);
        objects.extend(crds.into_iter().chain(rest).map(|o| (o, namespace.clone())));
    }
    let found = created::not_there(client, objects).await;
    let mut recorded = state::read(&project.root, &lane.name).unwrap_or_else(|_| env.state.clone());
    recorded.created_objects = created::merge(&recorded.created_objects, found);
    // Best effort: without it, teardown leaves the run's objects behind,
    // which is what happened before this record existed.
    let _ = state::write(&project.root, &recorded);
}
