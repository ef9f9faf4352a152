//! The images stage inside a run: the lane's host builds, then its images
//! built, pulled or found, each told on the bus as it is done.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::EngineKind;
use crate::failure::StageFailure;
use crate::report::phase::phase;
use crate::report::{Event, Notice, Phase};
use crate::stage::Ctx;

/// The images phase: connects to the engine (`engine`, docker when the lane
/// names none) unless preflight did (`connected`), runs the host builds,
/// then obtains every image the lane runs. Returns the engine client, which
/// the load exports from, and what became of each image. A lane with no images on an existing cluster
/// needs no engine at all (`needs_engine` false): the client is made
/// without dialling.
pub async fn run(
    ctx: &Ctx<'_>,
    engine: Option<EngineKind>,
    connected: Option<bollard::Docker>,
    rebuild: bool,
) -> Result<(bollard::Docker, Vec<super::ImageOutcome>), StageFailure> {
    let (project, bus) = (ctx.project, &ctx.bus);
    let wanted = super::lane_images(project, ctx.lane);
    phase(bus, Phase::Images, async {
        let endpoint = crate::engine::endpoint_from_env(engine.unwrap_or(EngineKind::Docker));
        // bollard connects lazily.
        let needs_engine = !wanted.is_empty() || engine.is_some();
        let docker = if let Some(docker) = connected {
            docker
        } else if needs_engine {
            crate::engine::connect(&endpoint, Duration::from_secs(10))
                .await?
                .0
        } else {
            crate::engine::client(&endpoint)?
        };
        // What the images copy from the host is built first.
        host_builds(ctx, rebuild).await?;
        let mut build = super::BuildOptions::for_project(project);
        build.rebuild = rebuild;
        let (tx, mut rx) = mpsc::channel(64);
        let forward = {
            let bus = bus.clone();
            tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    use super::ImageEvent;
                    use crate::report::progress::Progress;
                    match event {
                        ImageEvent::Building { image, .. } => {
                            bus.progress(Progress::ImageStarted {
                                image,
                                pulling: false,
                            });
                        }
                        ImageEvent::Pulling { image, .. } => {
                            bus.progress(Progress::ImageStarted {
                                image,
                                pulling: true,
                            });
                        }
                        ImageEvent::Step { image, step } => {
                            bus.progress(Progress::ImageStep { image, step })
                        }
                        ImageEvent::Line { .. } => {}
                        ImageEvent::Done(o) => {
                            let (outcome, seconds) = match o.obtained {
                                super::Obtained::Built { seconds } => {
                                    ("built".to_string(), seconds)
                                }
                                super::Obtained::Pulled { seconds } => {
                                    ("pulled".to_string(), seconds)
                                }
                                super::Obtained::Cached => {
                                    ("cached (content tag present)".to_string(), 0.0)
                                }
                                super::Obtained::Present => {
                                    ("present in the engine".to_string(), 0.0)
                                }
                            };
                            bus.emit(Event::Image {
                                image: format!("{} ({})", o.image, o.reference),
                                outcome,
                                seconds,
                            });
                        }
                    }
                }
            })
        };
        let outcomes = super::ensure(&docker, project, &wanted, &build, &tx).await;
        drop(tx);
        let _ = forward.await;
        Ok::<_, StageFailure>((docker, outcomes?))
    })
    .await
}

/// Runs the lane's host builds (`host_builds:`), each unless its inputs
/// are unchanged, telling the bus as image builds do.
async fn host_builds(ctx: &Ctx<'_>, rebuild: bool) -> Result<(), StageFailure> {
    use super::host::{self, HostEvent};
    let (project, bus) = (ctx.project, &ctx.bus);
    let names = host::lane_builds(project, ctx.lane);
    if names.is_empty() {
        return Ok(());
    }
    let mut opts = host::HostOptions::for_project(project);
    opts.rebuild = rebuild;
    let (tx, mut rx) = mpsc::channel(16);
    let forward = {
        let bus = bus.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                bus.emit(match event {
                    HostEvent::Started { name, command, log } => Event::Notice {
                        notice: Notice::HostBuildStarted { name, command, log },
                    },
                    HostEvent::Done(o) => Event::Image {
                        image: format!("host build {}", o.name),
                        outcome: if o.ran {
                            "ran".to_owned()
                        } else {
                            "skipped (inputs unchanged, outputs present)".to_owned()
                        },
                        seconds: o.seconds,
                    },
                });
            }
        })
    };
    let result = host::run(project, &names, &opts, &tx).await;
    drop(tx);
    let _ = forward.await;
    result.map(drop).map_err(StageFailure::from)
}
