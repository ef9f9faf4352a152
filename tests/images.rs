//! Images against the real Docker daemon: builds, the content-tag cache,
//! failures, timeouts, and third-party images present or unreachable.
//!
//! Every image is built FROM `harness/busybox:1` (made offline by
//! scripts/base-images) from a context in a temporary directory. Each
//! context carries a random nonce file so that its tags are new to the
//! engine on every run; the images are removed at the end. Without an
//! engine these tests fail when HARNESS_REQUIRE_ENGINE=1 (scripts/test sets
//! it) and are skipped with a notice otherwise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use harness::config::{EngineKind, Image, ImageSource, PreflightSettings, Project};
use harness::failure::Failure as _;
use harness::images::{
    self, BuildOptions, ImageError, ImageEvent, ImageOutcome, LABEL_BUILT_BY, LABEL_INPUTS,
    Obtained,
};
use indexmap::IndexMap;
use tokio::sync::mpsc;

const BASE: &str = "harness/busybox:1";

async fn engine() -> Option<Docker> {
    let endpoint = harness::engine::endpoint_from_env(EngineKind::Docker);
    let required = std::env::var("HARNESS_REQUIRE_ENGINE").as_deref() == Ok("1");
    match harness::engine::connect(&endpoint, Duration::from_secs(10)).await {
        Ok((docker, _)) => {
            if docker.inspect_image(BASE).await.is_err() {
                assert!(!required, "{BASE} is missing: run scripts/base-images");
                eprintln!("skipped: no {BASE} image (scripts/base-images makes it)");
                return None;
            }
            Some(docker)
        }
        Err(e) => {
            assert!(
                !required,
                "a Docker daemon is required (HARNESS_REQUIRE_ENGINE=1): {e}"
            );
            eprintln!("skipped: no Docker daemon here ({e})");
            None
        }
    }
}

fn nonce() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

struct Scene {
    dir: tempfile::TempDir,
    project: Project,
    opts: BuildOptions,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let project = Project {
            file: root.join("harness.yaml"),
            root: root.clone(),
            preflight: PreflightSettings {
                min_free_disk: 0,
                memory_per_lane: 0,
            },
            host_builds: IndexMap::new(),
            images: IndexMap::new(),
            components: IndexMap::new(),
            lanes: IndexMap::new(),
            shared_ports: Vec::new(),
            readiness: Default::default(),
        };
        let opts = BuildOptions::for_project(&project);
        Scene { dir, project, opts }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A build image with its context in `<root>/<name>/`.
    fn build_image(&mut self, name: &str, dockerfile: &str, args: &[(&str, &str)]) -> PathBuf {
        let ctx = self.root().join(name);
        write(&ctx, "Dockerfile", dockerfile);
        write(&ctx, "nonce", &nonce());
        self.set(name, ctx.join("Dockerfile"), ctx.clone(), args, None);
        ctx
    }

    fn set(
        &mut self,
        name: &str,
        dockerfile: PathBuf,
        context: PathBuf,
        args: &[(&str, &str)],
        target: Option<&str>,
    ) {
        self.project.images.insert(
            name.to_owned(),
            Image {
                name: name.to_owned(),
                source: ImageSource::Build {
                    dockerfile,
                    context,
                    build_args: args
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    target: target.map(str::to_owned),
                    timeout: Duration::from_secs(120),
                },
                host_builds: Vec::new(),
                replaces: Vec::new(),
            },
        );
    }

    fn set_timeout(&mut self, name: &str, t: Duration) {
        if let ImageSource::Build { timeout, .. } = &mut self.project.images[name].source {
            *timeout = t;
        }
    }

    fn pull_image(&mut self, name: &str, reference: &str) {
        self.project.images.insert(
            name.to_owned(),
            Image {
                name: name.to_owned(),
                source: ImageSource::Pull {
                    reference: reference.to_owned(),
                },
                host_builds: Vec::new(),
                replaces: Vec::new(),
            },
        );
    }

    async fn ensure(
        &self,
        docker: &Docker,
        names: &[&str],
    ) -> (Result<Vec<ImageOutcome>, ImageError>, Vec<ImageEvent>) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let (tx, mut rx) = mpsc::channel(10_000);
        let result = images::ensure(docker, &self.project, &names, &self.opts, &tx).await;
        drop(tx);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (result, events)
    }
}

/// Removes the images a test built (they are the harness's own), by
/// reference and by ID (a forced rebuild leaves the old ID untagged).
async fn remove(docker: &Docker, outcomes: &[&ImageOutcome]) {
    for o in outcomes {
        for name in [&o.reference, &o.id] {
            let _ = docker
                .remove_image(
                    name,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
        }
    }
}

fn building(events: &[ImageEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ImageEvent::Building { image, .. } => Some(image.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lane_needs_the_images_of_its_components_and_their_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = harness::config::load(&root.join("harness.yaml")).unwrap();
    let lane = |name: &str| images::lane_images(&project, &project.lanes[name]);
    // Wave order, each image once (migrations reuses postgres; the
    // webhook-certs Job of the first wave runs the controller's image, for
    // its openssl, so that image comes before datastorage's).
    let ordered = ["postgres", "redis", "controller", "datastorage"];
    // The audit lane's samples are validated by the controller's webhook,
    // so it deploys the controller too.
    assert_eq!(lane("audit"), ordered);
    assert_eq!(lane("controller"), ordered);
}

/// No more than `parallel` images are built at a time: with one slot, the
/// second build starts after the first is done.
#[tokio::test]
async fn builds_take_turns_for_the_slots_while_checks_do_not() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    s.opts.parallel = 1;
    s.build_image(
        "one",
        &format!("FROM {BASE}\nCOPY nonce /\nRUN echo one\n"),
        &[],
    );
    s.build_image(
        "two",
        &format!("FROM {BASE}\nCOPY nonce /\nRUN echo two\n"),
        &[],
    );
    let (built, events) = s.ensure(&docker, &["one", "two"]).await;
    built.expect("both build");
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ImageEvent::Building { image, .. } => Some(format!("building {image}")),
            ImageEvent::Done(o) => Some(format!("done {}", o.image)),
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 4, "{order:?}");
    assert!(
        order[0].starts_with("building") && order[1].starts_with("done"),
        "{order:?}"
    );
    assert_eq!(order[0][9..], order[1][5..], "{order:?}");
}

#[tokio::test]
async fn build_cache_hit_ignored_change_and_one_byte_change() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    let ctx = s.build_image(
        "app",
        &format!("FROM {BASE}\nCOPY a.txt nonce /\nRUN echo building app\n"),
        &[],
    );
    write(&ctx, "a.txt", "1");
    write(&ctx, ".dockerignore", "notes.md\n");
    write(&ctx, "notes.md", "first");
    s.build_image("other", &format!("FROM {BASE}\nCOPY nonce /\n"), &[]);

    // First run: both built, in parallel, in the order asked for.
    let (first, events) = s.ensure(&docker, &["app", "other"]).await;
    let first = first.expect("first build");
    assert_eq!(
        first.iter().map(|o| o.image.as_str()).collect::<Vec<_>>(),
        ["app", "other"]
    );
    for o in &first {
        assert!(matches!(o.obtained, Obtained::Built { .. }), "{o:?}");
        assert!(
            o.reference
                .starts_with(&format!("localhost/harness/{}:", o.image))
        );
        assert!(o.id.starts_with("sha256:"), "{o:?}");
    }
    let mut built = building(&events);
    built.sort();
    assert_eq!(built, ["app", "other"]);
    assert!(
        events.iter().any(
            |e| matches!(e, ImageEvent::Line { image, line } if image == "app" && line == "building app")
        ),
        "the RUN output reaches the events"
    );
    // Each step is told as it starts, for the live display.
    let steps: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ImageEvent::Step { image, step } if image == "app" => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert!(steps.len() >= 3, "{steps:?}");
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("Step 3/") && s.ends_with(" : RUN echo building app")),
        "{steps:?}"
    );
    let log = std::fs::read_to_string(s.opts.log_dir.join("app.log")).unwrap();
    assert!(log.contains(" : RUN echo building app\n"), "{log}");

    // Resolving without building names the same references.
    let resolved = images::resolve(
        &docker,
        &s.project,
        &["app".into(), "other".into()],
        &s.opts,
    )
    .await
    .unwrap();
    for (r, o) in resolved.iter().zip(&first) {
        assert_eq!((&r.image, &r.reference), (&o.image, &o.reference));
    }
    assert_eq!(
        images::references(&first)["app"],
        first[0].reference,
        "placeholder values"
    );

    // The image carries the harness's labels.
    let app = &first[0];
    let info = docker.inspect_image(&app.reference).await.unwrap();
    let labels = info.config.unwrap().labels.unwrap();
    assert_eq!(labels[LABEL_BUILT_BY], "harness");
    assert!(images::built_by_harness(&labels));
    let hash = &labels[LABEL_INPUTS];
    assert!(
        app.reference.ends_with(&hash[..16]),
        "{} vs {hash}",
        app.reference
    );

    // Nothing changed: no build, same reference and image ID.
    let (again, events) = s.ensure(&docker, &["app", "other"]).await;
    let again = again.expect("cached");
    assert!(building(&events).is_empty(), "{events:?}");
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(b.obtained, Obtained::Cached, "{b:?}");
        assert_eq!((&a.reference, &a.id), (&b.reference, &b.id));
    }

    // A change in an ignored file changes nothing.
    write(&ctx, "notes.md", "second");
    let (ignored, _) = s.ensure(&docker, &["app"]).await;
    let ignored = ignored.unwrap();
    assert_eq!(ignored[0].obtained, Obtained::Cached);
    assert_eq!(ignored[0].reference, app.reference);

    // One byte of a file that is sent: a new tag, built.
    write(&ctx, "a.txt", "2");
    let (changed, _) = s.ensure(&docker, &["app"]).await;
    let changed = changed.unwrap();
    assert!(matches!(changed[0].obtained, Obtained::Built { .. }));
    assert_ne!(changed[0].reference, app.reference);
    assert_ne!(changed[0].id, app.id);

    // --rebuild builds even though the tag exists.
    s.opts.rebuild = true;
    let (forced, events) = s.ensure(&docker, &["app"]).await;
    let forced = forced.unwrap();
    assert!(matches!(forced[0].obtained, Obtained::Built { .. }));
    assert_eq!(forced[0].reference, changed[0].reference);
    assert_eq!(building(&events), ["app"]);

    remove(&docker, &[&first[0], &first[1], &changed[0], &forced[0]]).await;
}

#[tokio::test]
async fn build_args_and_target_change_the_tag_and_reach_the_build() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    let dockerfile = format!(
        "FROM {BASE} AS base\nCOPY nonce /\nARG FLAVOUR=plain\nRUN echo flavour=$FLAVOUR\nFROM base AS extra\nRUN echo extra stage\n"
    );
    let ctx = s.build_image("app", &dockerfile, &[("FLAVOUR", "one")]);
    let (one, events_one) = s.ensure(&docker, &["app"]).await;
    let one = one.unwrap();
    s.set(
        "app",
        ctx.join("Dockerfile"),
        ctx.clone(),
        &[("FLAVOUR", "two")],
        None,
    );
    let (two, events_two) = s.ensure(&docker, &["app"]).await;
    let two = two.unwrap();
    s.set(
        "app",
        ctx.join("Dockerfile"),
        ctx.clone(),
        &[("FLAVOUR", "two")],
        Some("base"),
    );
    let (base, events_base) = s.ensure(&docker, &["app"]).await;
    let base = base.unwrap();

    let refs = [&one[0].reference, &two[0].reference, &base[0].reference];
    assert_ne!(refs[0], refs[1], "build args change the tag");
    assert_ne!(refs[1], refs[2], "the target changes the tag");
    let said = |events: &[ImageEvent], text: &str| {
        events
            .iter()
            .any(|e| matches!(e, ImageEvent::Line { line, .. } if line == text))
    };
    assert!(said(&events_one, "flavour=one"));
    assert!(said(&events_two, "flavour=two"));
    assert!(said(&events_two, "extra stage"));
    assert!(
        !said(&events_base, "extra stage"),
        "the build stopped at the target"
    );
    remove(&docker, &[&one[0], &two[0], &base[0]]).await;
}

#[tokio::test]
async fn a_changed_base_image_changes_the_tag() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    let base = format!("localhost/harness-test/base-{}", nonce());
    let tag = |image: &str| {
        let docker = docker.clone();
        let image = image.to_owned();
        let base = base.clone();
        async move {
            docker
                .tag_image(
                    &image,
                    Some(
                        bollard::query_parameters::TagImageOptionsBuilder::default()
                            .repo(&base)
                            .tag("1")
                            .build(),
                    ),
                )
                .await
                .unwrap()
        }
    };
    tag(BASE).await;
    s.build_image("app", &format!("FROM {base}:1\nCOPY nonce /\n"), &[]);
    let (first, _) = s.ensure(&docker, &["app"]).await;
    let first = first.unwrap();
    // The same base name now points at another image (the one just built).
    tag(&first[0].id).await;
    let (second, _) = s.ensure(&docker, &["app"]).await;
    let second = second.unwrap();
    assert!(
        matches!(second[0].obtained, Obtained::Built { .. }),
        "{second:?}"
    );
    assert_ne!(first[0].reference, second[0].reference);
    let _ = docker
        .remove_image(
            &format!("{base}:1"),
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
    remove(&docker, &[&second[0], &first[0]]).await;
}

#[tokio::test]
async fn a_failing_run_names_the_step_and_the_log() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    s.build_image(
        "broken",
        &format!("FROM {BASE}\nCOPY nonce /\nRUN echo about to fail && exit 3\nRUN echo never\n"),
        &[],
    );
    let (result, _) = s.ensure(&docker, &["broken"]).await;
    let err = result.unwrap_err();
    let log = s.opts.log_dir.join("broken.log");
    match &err {
        ImageError::Build {
            image,
            step,
            message,
            log: path,
        } => {
            assert_eq!(image, "broken");
            // The classic builder counts the harness's labels as steps too.
            let step = step.as_deref().unwrap();
            assert!(step.starts_with("Step 3/"), "{step}");
            assert!(
                step.ends_with(" : RUN echo about to fail && exit 3"),
                "{step}"
            );
            assert!(message.contains("non-zero code: 3"), "{message}");
            assert_eq!(path, &log);
        }
        other => panic!("expected a build failure, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(" : RUN echo about to fail && exit 3`"),
        "{text}"
    );
    assert!(text.contains(&log.display().to_string()), "{text}");
    assert_eq!(err.exit(), harness::exit::Exit::ImageBuild);
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.contains("about to fail"), "{written}");
    assert!(written.contains("non-zero code: 3"), "{written}");
    assert!(!written.contains("RUN echo never"), "{written}");
}

#[tokio::test]
async fn a_build_past_its_timeout_fails_with_a_timeout() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    // The marker finds this build's container among the engine's.
    let marker = format!("sleeping-{}", nonce());
    s.build_image(
        "slow",
        &format!("FROM {BASE}\nCOPY nonce /\nRUN echo {marker} && sleep 60\n"),
        &[],
    );
    // Long enough for the RUN step to be running when the deadline hits.
    s.set_timeout("slow", Duration::from_secs(10));
    let started = std::time::Instant::now();
    let (result, _) = s.ensure(&docker, &["slow"]).await;
    let elapsed = started.elapsed();
    let err = result.unwrap_err();
    match &err {
        ImageError::Timeout {
            image, step, log, ..
        } => {
            assert_eq!(image, "slow");
            let step = step.as_deref().unwrap();
            assert!(step.starts_with("Step 3/"), "{step}");
            assert!(
                step.ends_with(&format!(" : RUN echo {marker} && sleep 60")),
                "{step}"
            );
            let text = std::fs::read_to_string(log).unwrap();
            assert!(text.contains("did not finish within 10s"), "{text}");
            // The RUN container had started: its output is in the log.
            assert!(text.contains(&format!("\n{marker}\n")), "{text}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(err.exit(), harness::exit::Exit::Timeout);
    // The build was abandoned at its deadline, not waited out.
    assert!(elapsed < Duration::from_secs(50), "{elapsed:?}");
    // And the daemon stopped it: its RUN container goes away long before
    // the `sleep 60` would have ended.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let containers = docker
            .list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::default()
                    .all(true)
                    .build(),
            ))
            .await
            .unwrap();
        let running = containers.iter().any(|c| {
            c.command
                .as_deref()
                .is_some_and(|cmd| cmd.contains(&marker))
        });
        if !running {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the timed-out build's container is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_dockerfile_outside_the_context_is_sent_under_a_private_name() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    let ctx = s.root().join("ctx");
    write(&ctx, "nonce", &nonce());
    write(&ctx, "hello.txt", "hello\n");
    let dockerfile = s.root().join("docker/app.Dockerfile");
    write(
        dockerfile.parent().unwrap(),
        "app.Dockerfile",
        &format!("FROM {BASE}\nCOPY nonce hello.txt /\nRUN cat /hello.txt\n"),
    );
    s.set("app", dockerfile, ctx, &[], None);
    let (result, events) = s.ensure(&docker, &["app"]).await;
    let out = result.expect("build with an outside Dockerfile");
    assert!(matches!(out[0].obtained, Obtained::Built { .. }));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ImageEvent::Line { line, .. } if line == "hello"))
    );
    remove(&docker, &[&out[0]]).await;
}

#[tokio::test]
async fn a_third_party_image_present_locally_is_used_as_is() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    s.pull_image("busybox", BASE);
    let (result, events) = s.ensure(&docker, &["busybox"]).await;
    let out = result.unwrap();
    assert_eq!(out[0].obtained, Obtained::Present);
    assert_eq!(out[0].reference, BASE);
    let id = docker.inspect_image(BASE).await.unwrap().id.unwrap();
    assert_eq!(out[0].id, id);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ImageEvent::Pulling { .. }))
    );
}

#[tokio::test]
async fn an_absent_image_from_an_unreachable_registry_says_how_to_provide_it() {
    let Some(docker) = engine().await else { return };
    let mut s = Scene::new();
    // Nothing listens on the discard port: the registry is unreachable.
    let reference = format!("127.0.0.1:9/harness/absent-{}:1", nonce());
    s.pull_image("absent", &reference);
    let (result, events) = s.ensure(&docker, &["absent"]).await;
    let err = result.unwrap_err();
    match &err {
        ImageError::Pull {
            image,
            reference: r,
            message,
        } => {
            assert_eq!(image, "absent");
            assert_eq!(r, &reference);
            assert!(!message.is_empty());
        }
        other => panic!("expected a pull failure, got {other:?}"),
    }
    assert!(err.to_string().contains(&reference), "{err}");
    let help = err.help().unwrap();
    assert!(help.contains("docker load"), "{help}");
    assert!(help.contains("scripts/base-images"), "{help}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ImageEvent::Pulling { image, .. } if image == "absent"))
    );
}
