//! The thin shell over the engine's image API: inspect, build, pull.
//!
//! Builds use the classic builder (`version=1` of `POST /build`), which
//! every Docker since API 1.24 and Podman's compatible API accept, with no
//! session or BuildKit gRPC; bollard sends only parameters API 1.41 (Docker
//! 20.10) knows. The context tar is written to an unnamed temporary file
//! and streamed from there, so a large context never sits in memory.

use std::collections::HashMap;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use bytes::Bytes;
use futures_util::StreamExt;
use indexmap::IndexMap;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::context::{self, Context};
use super::{ImageError, ImageEvent, LABEL_BUILT_BY, LABEL_INPUTS, reference};

/// One build to run.
pub(super) struct Build<'a> {
    pub image: &'a str,
    pub reference: &'a str,
    pub inputs: &'a str,
    pub context: Context,
    pub build_args: &'a IndexMap<String, String>,
    pub target: Option<&'a str>,
    pub timeout: Duration,
    pub nocache: bool,
    pub log: PathBuf,
}

fn not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The ID of the image built before from the same inputs, if the engine
/// has it: the tag exists and carries our label with the same full hash
/// (a tag someone else made by hand does not count).
pub(super) async fn built_image(
    docker: &Docker,
    build: &Build<'_>,
) -> Result<Option<String>, ImageError> {
    match docker.inspect_image(build.reference).await {
        Ok(info) => {
            let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
            let ours = super::built_by_harness(&labels)
                && labels.get(LABEL_INPUTS).map(String::as_str) == Some(build.inputs);
            Ok(ours.then(|| info.id.unwrap_or_default()))
        }
        Err(e) if not_found(&e) => Ok(None),
        Err(source) => Err(ImageError::Engine {
            image: build.image.to_owned(),
            what: "inspect the image",
            source,
        }),
    }
}

/// The ID of a third-party image the engine already has.
pub(super) async fn present(
    docker: &Docker,
    image: &str,
    reference: &str,
) -> Result<Option<String>, ImageError> {
    match docker.inspect_image(reference).await {
        Ok(info) => Ok(Some(info.id.unwrap_or_default())),
        Err(e) if not_found(&e) => Ok(None),
        Err(source) => Err(ImageError::Engine {
            image: image.to_owned(),
            what: "inspect the image",
            source,
        }),
    }
}

/// Splits the engine's output into lines and remembers the step it is at.
#[derive(Debug, Default)]
pub(super) struct Progress {
    partial: String,
    /// The last `Step N/M : …` line.
    pub step: Option<String>,
}

impl Progress {
    /// Takes a chunk of output; returns the lines it completes.
    pub fn feed(&mut self, chunk: &str) -> Vec<String> {
        self.partial.push_str(chunk);
        let mut lines = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            let line = line.trim_end_matches(['\n', '\r']).to_owned();
            if is_step(&line) {
                self.step = Some(line.clone());
            }
            lines.push(line);
        }
        lines
    }

    /// The unterminated rest, at the end of the output.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        let rest = rest.trim_end_matches('\r');
        if rest.is_empty() {
            return None;
        }
        if is_step(rest) {
            self.step = Some(rest.to_owned());
        }
        Some(rest.to_owned())
    }
}

/// The classic builder announces each instruction as `Step 3/5 : RUN make`.
fn is_step(line: &str) -> bool {
    line.strip_prefix("Step ")
        .and_then(|rest| rest.split_once(" : "))
        .is_some_and(|(n, _)| {
            n.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            })
        })
}

struct Log {
    path: PathBuf,
    file: std::fs::File,
}

impl Log {
    fn create(path: &Path) -> Result<Log, ImageError> {
        let err = |source| ImageError::Log {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = std::fs::File::create(path).map_err(err)?;
        Ok(Log {
            path: path.to_owned(),
            file,
        })
    }

    /// Unbuffered, so the log is complete whenever the build stops, even
    /// when a timeout drops it midway.
    fn line(&mut self, line: &str) -> Result<(), ImageError> {
        writeln!(self.file, "{line}").map_err(|source| ImageError::Log {
            path: self.path.clone(),
            source,
        })
    }
}

fn emit_line(events: &mpsc::Sender<ImageEvent>, image: &str, line: String) {
    // A lagging consumer loses progress lines, never the build: the log
    // file has them all.
    let _ = events.try_send(ImageEvent::Line {
        image: image.to_owned(),
        line,
    });
}

/// Builds the image; returns its ID.
pub(super) async fn build(
    docker: &Docker,
    build: Build<'_>,
    events: &mpsc::Sender<ImageEvent>,
) -> Result<String, ImageError> {
    let mut log = Log::create(&build.log)?;
    let mut progress = Progress::default();
    let run = run_build(docker, &build, &mut log, &mut progress, events);
    match tokio::time::timeout(build.timeout, run).await {
        Ok(result) => result,
        Err(_) => {
            let _ = log.line(&format!(
                "harness: the build did not finish within {}; stopped",
                humantime::format_duration(build.timeout)
            ));
            Err(ImageError::Timeout {
                image: build.image.to_owned(),
                timeout: build.timeout,
                step: progress.step,
                log: build.log.clone(),
            })
        }
    }
}

async fn run_build(
    docker: &Docker,
    build: &Build<'_>,
    log: &mut Log,
    progress: &mut Progress,
    events: &mpsc::Sender<ImageEvent>,
) -> Result<String, ImageError> {
    let body = context_body(build).await?;
    let args: HashMap<&str, &str> = build
        .build_args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Two labels only: the classic builder adds a step for each.
    let labels: HashMap<&str, &str> =
        [(LABEL_BUILT_BY, "harness"), (LABEL_INPUTS, build.inputs)].into();
    let options = BuildImageOptionsBuilder::default()
        .dockerfile(&build.context.dockerfile_in_tar)
        .t(build.reference)
        .buildargs(&args)
        .labels(&labels)
        .target(build.target.unwrap_or(""))
        .nocache(build.nocache)
        .rm(true)
        // Remove intermediate containers of failed steps too.
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_try_stream(body)));
    let mut id = None;
    let fail = |progress: &mut Progress, message: String| ImageError::Build {
        image: build.image.to_owned(),
        step: progress.step.take(),
        message,
        log: build.log.clone(),
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                let text = info.stream.or(info.status);
                if let Some(text) = text {
                    for line in progress.feed(&text) {
                        log.line(&line)?;
                        if is_step(&line) {
                            // Never dropped, unlike output lines: the live
                            // display shows the step the build is in.
                            let _ = events
                                .send(ImageEvent::Step {
                                    image: build.image.to_owned(),
                                    step: line.clone(),
                                })
                                .await;
                        }
                        emit_line(events, build.image, line);
                    }
                }
                if let Some(aux_id) = info.aux.and_then(|a| a.id) {
                    id = Some(aux_id);
                }
            }
            Err(e) => {
                if let Some(rest) = progress.finish() {
                    log.line(&rest)?;
                }
                let message = match e {
                    BollardError::DockerStreamError { error } => error,
                    BollardError::DockerResponseServerError { message, .. } => message,
                    other => {
                        return Err(ImageError::Engine {
                            image: build.image.to_owned(),
                            what: "build the image",
                            source: other,
                        });
                    }
                };
                let message = message.trim().to_owned();
                log.line(&format!("ERROR: {message}"))?;
                return Err(fail(progress, message));
            }
        }
    }
    if let Some(rest) = progress.finish() {
        log.line(&rest)?;
        emit_line(events, build.image, rest);
    }
    match id {
        Some(id) => Ok(id),
        // Engines that send no `aux` ID: ask for the tag we just made.
        None => match docker.inspect_image(build.reference).await {
            Ok(info) => Ok(info.id.unwrap_or_default()),
            Err(e) => Err(fail(
                progress,
                format!(
                    "the engine reported no error but has no image {}: {e}",
                    build.reference
                ),
            )),
        },
    }
}

/// The context as a request body: written to an unnamed temporary file by
/// a blocking task, then streamed from it.
async fn context_body(
    build: &Build<'_>,
) -> Result<impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static, ImageError> {
    let ctx = build.context.clone();
    let image = build.image.to_owned();
    let written = tokio::task::spawn_blocking(move || {
        let io = |source| context::ContextError::Io {
            path: ctx.root.clone(),
            source,
        };
        let mut file = tempfile::tempfile().map_err(io)?;
        let mut out = std::io::BufWriter::new(&mut file);
        context::write_tar(&ctx, &mut out)?;
        drop(out);
        file.rewind().map_err(io)?;
        Ok::<_, context::ContextError>(file)
    })
    .await
    .expect("writing a build context does not panic")
    .map_err(|source| ImageError::Context { image, source })?;
    let file = tokio::fs::File::from_std(written);
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(chunks)
}

/// Pulls a third-party image; returns its ID.
pub(super) async fn pull(
    docker: &Docker,
    image: &str,
    reference: &str,
    timeout: Duration,
    events: &mpsc::Sender<ImageEvent>,
) -> Result<String, ImageError> {
    let (from_image, tag) = reference::split_for_pull(reference);
    let options = CreateImageOptionsBuilder::default()
        .from_image(from_image)
        .tag(tag)
        .build();
    let pull_err = |message: String| ImageError::Pull {
        image: image.to_owned(),
        reference: reference.to_owned(),
        message: message.trim().to_owned(),
    };
    let run = async {
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status {
                        emit_line(events, image, status);
                    }
                    if let Some(error) = info.error_detail.and_then(|d| d.message) {
                        return Err(pull_err(error));
                    }
                }
                Err(BollardError::DockerStreamError { error }) => return Err(pull_err(error)),
                Err(BollardError::DockerResponseServerError { message, .. }) => {
                    return Err(pull_err(message));
                }
                Err(source) => {
                    return Err(ImageError::Engine {
                        image: image.to_owned(),
                        what: "pull the image",
                        source,
                    });
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| ImageError::PullTimeout {
            image: image.to_owned(),
            reference: reference.to_owned(),
            timeout,
        })??;
    present(docker, image, reference)
        .await?
        .ok_or_else(|| pull_err("the engine reported success but does not have the image".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_recognised() {
        for (line, step) in [
            ("Step 3/5 : RUN make", true),
            ("Step 10/12 : COPY . /src", true),
            ("Step 1/1 : FROM harness/busybox:1", true),
            (" ---> Running in 5f3c", false),
            ("Step x/5 : RUN", false),
            ("Step 3/ : RUN", false),
            ("Stepping 3/5 : RUN", false),
            ("Step 3/5: RUN", false),
        ] {
            assert_eq!(is_step(line), step, "{line}");
        }
    }

    #[test]
    fn output_is_split_into_lines_across_chunks() {
        let mut p = Progress::default();
        assert_eq!(p.feed("Step 1/2 : FROM x\n ---> ab"), ["Step 1/2 : FROM x"]);
        assert_eq!(p.feed("c\nStep 2/2 : RUN f"), [" ---> abc"]);
        assert_eq!(p.step.as_deref(), Some("Step 1/2 : FROM x"));
        assert_eq!(p.feed("alse\r\n"), ["Step 2/2 : RUN false"]);
        assert_eq!(p.step.as_deref(), Some("Step 2/2 : RUN false"));
        assert_eq!(p.feed("no newline"), Vec::<String>::new());
        assert_eq!(p.finish().as_deref(), Some("no newline"));
        assert_eq!(p.finish(), None);
    }
}
