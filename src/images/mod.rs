//! Images: build the lane's own images and make sure its third-party images
//! are in the engine, so that the loader can put them into the nodes.
//!
//! A built image is named by what goes into it. The build context is read
//! once the way `docker build` would send it ([`context::scan`], honouring
//! `.dockerignore`), and every file sent (path, mode, content), the
//! Dockerfile, the build arguments, the target and the engine's IDs of the
//! base images (`FROM`, [`dockerfile::base_images`]) are hashed; the image's
//! tag is that hash ([`reference::built`]). If the engine already has the
//! tag, carrying the harness's label with the same full hash, nothing is
//! built: same inputs, same tag, no build, and so nothing reloaded either.
//! Otherwise the context is sent as a tar through the engine's classic
//! build API, the daemon's output goes to a per-image log file and, line by
//! line, to [`ImageEvent`]s (nothing here prints), under a per-image
//! timeout, several images at once up to a bound. Every image the harness
//! builds carries [`LABEL_BUILT_BY`], so nothing else ever counts as its
//! own to remove. Third-party images are used when present and pulled
//! otherwise. What happened to each image comes back as an
//! [`ImageOutcome`] for the report; a failure is an [`ImageError`] that
//! names the failing step and the log.

pub mod context;
pub mod dockerfile;
mod engine;
pub mod host;
pub mod ignore;
pub mod reference;
pub mod stage;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{ImageSource, Lane, Project};

pub use context::ContextError;

/// Set to `harness` on every image the harness builds.
pub const LABEL_BUILT_BY: &str = "dev.harness.built-by";
/// The full input hash of a built image (its tag is the first 16 hex).
pub const LABEL_INPUTS: &str = "dev.harness.inputs";

/// Whether an image with these labels was built by the harness; images it
/// did not build are never removed by it.
pub fn built_by_harness(labels: &HashMap<String, String>) -> bool {
    labels.get(LABEL_BUILT_BY).map(String::as_str) == Some("harness")
}

/// How to build and fetch.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Build even when the tag exists, without the engine's layer cache.
    pub rebuild: bool,
    /// At most this many images are built or pulled at once.
    pub parallel: usize,
    /// Where each image's build log goes (`<dir>/<image>.log`).
    pub log_dir: PathBuf,
    /// Absolute paths never sent in a build context whatever
    /// `.dockerignore` says: the harness's own state and log directories,
    /// which change on every run and would change every tag.
    pub skip: Vec<PathBuf>,
    /// Deadline of one pull of a third-party image.
    pub pull_timeout: Duration,
}

impl BuildOptions {
    /// Defaults for a project: logs under `.harness/logs/images`, and the
    /// `.harness` directory never part of a context.
    pub fn for_project(project: &Project) -> BuildOptions {
        let layout = crate::layout::Layout::new(&project.root);
        BuildOptions {
            rebuild: false,
            parallel: 2,
            log_dir: layout.image_logs(),
            skip: vec![layout.dir()],
            pull_timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// What happened to one image, for the progress line and the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageOutcome {
    /// The lane file's name.
    pub image: String,
    /// What manifests use (`{{image.<name>}}`) and the loader loads.
    pub reference: String,
    /// The engine's image ID (`sha256:…`).
    pub id: String,
    pub obtained: Obtained,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Obtained {
    /// Built now.
    Built { seconds: f64 },
    /// Built before: the content tag was already in the engine.
    Cached,
    /// A third-party image that was already in the engine.
    Present,
    /// A third-party image pulled now.
    Pulled { seconds: f64 },
}

/// Progress, as it happens. Lines may be dropped when the receiver lags
/// (the log file has them all); the other events are always delivered
/// while the receiver lives.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageEvent {
    Building {
        image: String,
        reference: String,
    },
    Pulling {
        image: String,
        reference: String,
    },
    /// A build reached a step: `Step 5/9 : RUN make` (also a `Line`).
    Step {
        image: String,
        step: String,
    },
    /// One line of the engine's output.
    Line {
        image: String,
        line: String,
    },
    Done(ImageOutcome),
}

/// Why an image could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no image named `{image}` in the lane file")]
    Unknown { image: String },
    #[error("cannot read the build context of image `{image}`")]
    Context {
        image: String,
        #[source]
        source: ContextError,
    },
    #[error(
        "image `{image}` failed to build{}: {message} (full output in {})",
        step_text(.step),
        .log.display()
    )]
    Build {
        image: String,
        /// The last `Step N/M : …` line before the failure.
        step: Option<String>,
        /// What the engine said.
        message: String,
        log: PathBuf,
    },
    #[error(
        "image `{image}` did not build within {}{} (full output in {})",
        humantime::format_duration(*.timeout),
        step_text(.step),
        .log.display()
    )]
    Timeout {
        image: String,
        timeout: Duration,
        step: Option<String>,
        log: PathBuf,
    },
    #[error(
        "image `{image}` ({reference}) is not in the engine and could not be pulled: {message}"
    )]
    Pull {
        image: String,
        reference: String,
        message: String,
    },
    #[error("image `{image}` ({reference}) was not pulled within {}", humantime::format_duration(*.timeout))]
    PullTimeout {
        image: String,
        reference: String,
        timeout: Duration,
    },
    #[error("cannot write the build log {}", .path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the engine failed to {what} for image `{image}`")]
    Engine {
        image: String,
        what: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
}

fn step_text(step: &Option<String>) -> String {
    step.as_ref()
        .map(|s| format!(" at `{s}`"))
        .unwrap_or_default()
}

/// A build or pull past its timeout is a deadline (7), any other failure
/// an image failure (4).
impl crate::failure::Failure for ImageError {
    fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            ImageError::Timeout { .. } | ImageError::PullTimeout { .. } => Exit::Timeout,
            ImageError::Unknown { .. }
            | ImageError::Context { .. }
            | ImageError::Build { .. }
            | ImageError::Pull { .. }
            | ImageError::Log { .. }
            | ImageError::Engine { .. } => Exit::ImageBuild,
        }
    }

    fn fix(&self) -> Option<String> {
        self.help()
    }
}

impl ImageError {
    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            ImageError::Unknown { .. } => return None,
            ImageError::Context { .. } => {
                "check the image's `context:` and `.dockerignore`".to_owned()
            }
            // The log is named in the message already.
            ImageError::Build { .. } => {
                "fix that step of the Dockerfile (or the files it uses), then run again".to_owned()
            }
            ImageError::Timeout { image, .. } => format!(
                "find the step that hangs (the log ends with it), or raise `images.{image}.timeout` in the lane file"
            ),
            ImageError::Pull { reference, .. } | ImageError::PullTimeout { reference, .. } => {
                format!(
                    "put the image into the engine yourself: on a machine that can reach the registry run \
                     `docker pull {reference} && docker save -o image.tar {reference}`, then `docker load -i image.tar` \
                     here (scripts/base-images shows how to make base images on an air-gapped machine)"
                )
            }
            ImageError::Log { .. } => "check that the log directory is writable".to_owned(),
            ImageError::Engine { .. } => {
                "check that the engine is running (`harness preflight`)".to_owned()
            }
        })
    }
}

/// The images a lane needs: those of its components and of their
/// dependencies, in deploy order, each once.
pub fn lane_images(project: &Project, lane: &Lane) -> Vec<String> {
    let components = crate::plan::closure(project, &lane.components);
    let mut images: Vec<String> = Vec::new();
    for wave in crate::plan::waves(project, &components) {
        for component in wave {
            for image in &project.components[component.as_str()].images {
                if !images.contains(image) {
                    images.push(image.clone());
                }
            }
        }
    }
    images
}

/// An image and the reference it will have, found without the engine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedImage {
    pub image: String,
    pub reference: String,
    /// The full input hash of a built image; `None` for a third-party one.
    pub inputs: Option<String>,
}

/// The final references of `images` (for `{{image.<name>}}` and for
/// loading), hashing build contexts; the engine is only asked for the IDs
/// of base images. Builds nothing.
pub async fn resolve(
    docker: &Docker,
    project: &Project,
    images: &[String],
    opts: &BuildOptions,
) -> Result<Vec<ResolvedImage>, ImageError> {
    let mut out = Vec::new();
    for name in images {
        out.push(resolve_one(docker, project, name, opts).await?.0);
    }
    Ok(out)
}

/// Image name → reference, the way the manifest placeholders want it.
pub fn references<'a>(
    images: impl IntoIterator<Item = &'a ImageOutcome>,
) -> IndexMap<String, String> {
    images
        .into_iter()
        .map(|o| (o.image.clone(), o.reference.clone()))
        .collect()
}

async fn resolve_one(
    docker: &Docker,
    project: &Project,
    name: &str,
    opts: &BuildOptions,
) -> Result<(ResolvedImage, Option<(context::Context, String)>), ImageError> {
    let image = project
        .images
        .get(name)
        .ok_or_else(|| ImageError::Unknown {
            image: name.to_owned(),
        })?;
    match &image.source {
        ImageSource::Pull { reference } => Ok((
            ResolvedImage {
                image: name.to_owned(),
                reference: reference.clone(),
                inputs: None,
            },
            None,
        )),
        ImageSource::Build {
            dockerfile,
            context,
            build_args,
            target,
            ..
        } => {
            let context_err = |source| ImageError::Context {
                image: name.to_owned(),
                source,
            };
            let text = tokio::fs::read_to_string(dockerfile)
                .await
                .map_err(|source| {
                    context_err(ContextError::Io {
                        path: dockerfile.clone(),
                        source,
                    })
                })?;
            let mut bases = Vec::new();
            for base in dockerfile::base_images(&text, build_args) {
                let id = engine::present(docker, name, &base).await?;
                bases.push((base, id));
            }
            let (dockerfile, root, args, target, skip) = (
                dockerfile.clone(),
                context.clone(),
                build_args.clone(),
                target.clone(),
                opts.skip.clone(),
            );
            let scanned = tokio::task::spawn_blocking(move || {
                let ctx = context::scan(&root, &dockerfile, &skip)?;
                let hash = context::hash(&ctx, &args, target.as_deref(), &bases)?;
                Ok::<_, ContextError>((ctx, hash))
            })
            .await
            .expect("hashing a build context does not panic");
            let (ctx, hash) = scanned.map_err(context_err)?;
            Ok((
                ResolvedImage {
                    image: name.to_owned(),
                    reference: reference::built(name, &hash),
                    inputs: Some(hash.clone()),
                },
                Some((ctx, hash)),
            ))
        }
    }
}

/// Makes every image in `images` available in the engine: builds the ones
/// the harness builds (unless their content tag is there), pulls the
/// third-party ones that are missing. Checks them all at once, and builds
/// or pulls up to `opts.parallel` at once;
/// the first failure cancels the others (dropping a build's connection
/// stops it in the daemon) and is returned. Outcomes come back in the
/// order of `images`. `events` must be drained while this runs (or its
/// receiver dropped): a full channel holds back the `Building`, `Pulling`
/// and `Done` events, and with them the work.
pub async fn ensure(
    docker: &Docker,
    project: &Project,
    images: &[String],
    opts: &BuildOptions,
    events: &mpsc::Sender<ImageEvent>,
) -> Result<Vec<ImageOutcome>, ImageError> {
    // Every image is checked at once (hashing its context, asking the
    // engine for its tag); only the builds and pulls wait for one of
    // `opts.parallel` slots.
    let slots = tokio::sync::Semaphore::new(opts.parallel.max(1));
    let slots = &slots;
    let mut outcomes: Vec<(usize, ImageOutcome)> =
        futures_util::stream::iter(images.iter().enumerate())
            .map(|(i, name)| async move {
                let outcome = ensure_one(docker, project, name, opts, slots, events).await?;
                let _ = events.send(ImageEvent::Done(outcome.clone())).await;
                Ok::<_, ImageError>((i, outcome))
            })
            .buffer_unordered(images.len().max(1))
            .try_collect()
            .await?;
    outcomes.sort_by_key(|(i, _)| *i);
    Ok(outcomes.into_iter().map(|(_, o)| o).collect())
}

async fn ensure_one(
    docker: &Docker,
    project: &Project,
    name: &str,
    opts: &BuildOptions,
    slots: &tokio::sync::Semaphore,
    events: &mpsc::Sender<ImageEvent>,
) -> Result<ImageOutcome, ImageError> {
    let (resolved, scanned) = resolve_one(docker, project, name, opts).await?;
    // `scanned` is `Some` exactly for built images.
    match (&project.images[name].source, scanned) {
        (
            ImageSource::Build {
                build_args,
                target,
                timeout,
                ..
            },
            Some((ctx, inputs)),
        ) => {
            let build = engine::Build {
                image: name,
                reference: &resolved.reference,
                inputs: &inputs,
                context: ctx,
                build_args,
                target: target.as_deref(),
                timeout: *timeout,
                nocache: opts.rebuild,
                log: opts.log_dir.join(format!("{name}.log")),
            };
            // Lanes run at once build one content tag once (crate::gate).
            let pass = crate::gate::enter(&format!("image:{}", resolved.reference)).await;
            if (!opts.rebuild || pass.done_while_waiting)
                && let Some(id) = engine::built_image(docker, &build).await?
            {
                return Ok(ImageOutcome {
                    image: name.to_owned(),
                    reference: resolved.reference,
                    id,
                    obtained: Obtained::Cached,
                });
            }
            let _slot = slots.acquire().await.expect("the slots are never closed");
            let _ = events
                .send(ImageEvent::Building {
                    image: name.to_owned(),
                    reference: resolved.reference.clone(),
                })
                .await;
            let started = std::time::Instant::now();
            let id = engine::build(docker, build, events).await?;
            pass.done();
            Ok(ImageOutcome {
                image: name.to_owned(),
                reference: resolved.reference,
                id,
                obtained: Obtained::Built {
                    seconds: started.elapsed().as_secs_f64(),
                },
            })
        }
        (_, _) => {
            let reference = resolved.reference;
            if let Some(id) = engine::present(docker, name, &reference).await? {
                return Ok(ImageOutcome {
                    image: name.to_owned(),
                    reference,
                    id,
                    obtained: Obtained::Present,
                });
            }
            let _slot = slots.acquire().await.expect("the slots are never closed");
            let _ = events
                .send(ImageEvent::Pulling {
                    image: name.to_owned(),
                    reference: reference.clone(),
                })
                .await;
            let started = std::time::Instant::now();
            let id = engine::pull(docker, name, &reference, opts.pull_timeout, events).await?;
            Ok(ImageOutcome {
                image: name.to_owned(),
                reference,
                id,
                obtained: Obtained::Pulled {
                    seconds: started.elapsed().as_secs_f64(),
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;
    use crate::failure::Failure as _;

    #[test]
    fn only_images_labelled_by_the_harness_are_its_own() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(built_by_harness(&labels(&[(LABEL_BUILT_BY, "harness")])));
        assert!(!built_by_harness(&labels(&[])));
        assert!(!built_by_harness(&labels(&[(LABEL_BUILT_BY, "someone")])));
        assert!(!built_by_harness(&labels(&[(LABEL_INPUTS, "abc")])));
    }

    #[test]
    fn errors_name_the_step_and_the_log_and_map_to_exit_codes() {
        let e = ImageError::Build {
            image: "ds".into(),
            step: Some("Step 3/5 : RUN make".into()),
            message: "The command '/bin/sh -c make' returned a non-zero code: 2".into(),
            log: PathBuf::from(".harness/logs/images/ds.log"),
        };
        assert_eq!(
            e.to_string(),
            "image `ds` failed to build at `Step 3/5 : RUN make`: The command '/bin/sh -c make' \
             returned a non-zero code: 2 (full output in .harness/logs/images/ds.log)"
        );
        assert_eq!(e.exit(), Exit::ImageBuild);
        let t = ImageError::Timeout {
            image: "ds".into(),
            timeout: Duration::from_secs(900),
            step: None,
            log: PathBuf::from("x.log"),
        };
        assert_eq!(
            t.to_string(),
            "image `ds` did not build within 15m (full output in x.log)"
        );
        assert_eq!(t.exit(), Exit::Timeout);
        assert!(t.help().unwrap().contains("images.ds.timeout"));
    }
}
