//! The live progress frames that README.md and docs/commands.md show, as
//! the binary draws them on a terminal: `harness` runs on a pseudo-terminal
//! 100 columns wide (`tests/support/terminal.rs` plays what it writes on a
//! small terminal model and reads the frame off the screen after every
//! write), against the fake API server (`tests/fake_api/world.rs`) whose
//! pods the test moves from one captured state to the next. A frame is
//! taken when it shows the states the test set up — so its content is
//! decided by the test, and only its clocks, byte counts and spinner differ
//! between runs (`tests/support/shown.rs` normalizes those) — and is
//! snapshotted for `documented_output.rs` to hold the docs to.

#[path = "../../tests/fake_api/mod.rs"]
mod fake_api;
#[path = "../../tests/support/node.rs"]
mod node;
#[path = "../../tests/support/scratch.rs"]
mod scratch;
#[path = "../../tests/support/shown.rs"]
mod shown;
#[path = "../../tests/support/terminal.rs"]
mod terminal;

use std::process::Command;
use std::time::Duration;

use fake_api::world::{World, available, captured_pod, deployment, fresh, manifest, unavailable};
use scratch::Project;
use serde_json::{Value, json};
use terminal::Terminal;

const COLUMNS: u16 = 100;

/// The line of `component` in a deploy frame.
fn line<'a>(frame: &'a str, component: &str) -> &'a str {
    frame
        .lines()
        .find(|l| l.starts_with(&format!("  {component} ")))
        .unwrap_or("")
}

/// Puts captured objects into the world with their times made recent.
fn put_fresh(world: &World, objects: Vec<Value>) {
    for object in fresh(objects, jiff::Timestamp::now()) {
        world.put(object);
    }
}

/// A CustomResourceDefinition, as a user writes it.
fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "remediationrequests.demo.harness.dev"},
        "spec": {"group": "demo.harness.dev", "scope": "Namespaced",
                 "names": {"plural": "remediationrequests", "singular": "remediationrequest", "kind": "RemediationRequest"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    })
}

/// docs/commands.md ("Output") and README.md: the deploy phase while its
/// first wave comes up — a pod being created, one Ready and settling, one
/// whose init container waits, a CRD being applied — and then as one of
/// its components turns out doomed (the captured OOMKilled pod) while
/// another has become Ready.
#[test]
fn the_deploy_frame_shows_each_component_as_it_comes_up_and_a_doomed_one_at_once() {
    let world = World::new();
    let ns = "harness-demo";
    let project = Project::on_cluster(
        &world.kubeconfig(),
        ns,
        "components:\n  postgresql: { manifests: [postgresql.yaml] }\n  redis: { manifests: [redis.yaml] }\n  datastorage: { manifests: [datastorage.yaml] }\n  crds: { manifests: [crds.yaml] }\n  migrations: { manifests: [migrations.yaml], depends_on: [postgresql] }\n  controller: { manifests: [controller.yaml], depends_on: [crds, datastorage, migrations, redis] }\nlanes:\n  audit:\n    components: [controller]\n",
        &[
            (
                "postgresql.yaml",
                &manifest(&deployment("postgresql", None)),
            ),
            ("redis.yaml", &manifest(&deployment("redis", None))),
            (
                "datastorage.yaml",
                &manifest(&deployment("datastorage", Some("wait-for-db"))),
            ),
            ("crds.yaml", &manifest(&crd())),
            (
                "migrations.yaml",
                &manifest(&deployment("migrations", None)),
            ),
            (
                "controller.yaml",
                &manifest(&deployment("controller", None)),
            ),
        ],
    );
    world.on_apply("Deployment", Some(ns), "postgresql", unavailable());
    world.on_apply("Deployment", Some(ns), "redis", available());
    world.on_apply("Deployment", Some(ns), "datastorage", unavailable());
    world.hold_apply(
        "CustomResourceDefinition",
        None,
        "remediationrequests.demo.harness.dev",
    );
    let postgresql = "postgresql-5d8f7c9b6-qj2xw";
    let (creating, _) = captured_pod(
        "pod-oomkilled",
        "pod.oom.state-Pending_waiting-ContainerCreating.json",
        ns,
        postgresql,
        "postgresql",
    );
    let (redis, _) = captured_pod(
        "deploy-healthy",
        "pod.web-57f64b4f4d-5bqnc.json",
        ns,
        "redis-7b4f9d8c5-m4n8t",
        "redis",
    );
    let (waiting, _) = captured_pod(
        "pod-init-stuck",
        "pod.init-stuck.json",
        ns,
        "datastorage-6c9c5c6d46-v4vhh",
        "datastorage",
    );
    put_fresh(&world, vec![creating]);
    put_fresh(&world, vec![redis]);
    put_fresh(&world, vec![waiting]);

    let mut command = project.command(&["up"]);
    command.env_remove("CI");
    let terminal = Terminal::spawn(&mut command, COLUMNS, 40);
    let coming_up = terminal.frame("the first wave coming up", |f| {
        f.contains(" deploy   wave 1 of 3: ")
            && line(f, "postgresql").contains("0/1  ContainerCreating")
            && line(f, "redis").contains("1/1  Ready, settling: ")
            && line(f, "datastorage").contains("0/1  waiting on init container wait-for-db")
            && line(f, "crds").ends_with("applying")
    });
    insta::assert_snapshot!("deploy_waiting", shown::taken(&coming_up));

    // Redis holds Ready for its settle window; then PostgreSQL's container
    // is OOMKilled again and again (the captured pod).
    terminal.frame("redis Ready", |f| {
        line(f, "redis").contains("✓ Ready after")
    });
    let (oomkilled, events) = captured_pod(
        "pod-oomkilled",
        "pod.oom.json",
        ns,
        postgresql,
        "postgresql",
    );
    let mut objects = vec![oomkilled];
    objects.extend(events);
    put_fresh(&world, objects);
    let doomed = terminal.frame("postgresql doomed", |f| {
        line(f, "postgresql").contains("✗ OOMKilled")
            && line(f, "redis").contains("✓ Ready after")
            && line(f, "datastorage").contains("waiting on init container wait-for-db")
            && line(f, "crds").ends_with("applying")
    });
    insta::assert_snapshot!("deploy_doomed", shown::taken(&doomed));
    // The CRD's apply is answered; it is not Established when the wave's
    // window ends.
    world.release_applies();

    // The wave's others get their short window, then the run says why.
    let (code, screen) = terminal.finish(Duration::from_secs(90));
    assert_eq!(code, Some(6), "{screen}");
    assert!(screen.contains("error: "), "{screen}");
    assert!(screen.contains("postgresql"), "{screen}");
}

// ------------------------------------------------------------------ images, load, suites, gather

/// kind's answers for a cluster whose kubeconfig points at the world.
const KIND: &str = r#"#!/bin/sh
dir="$STANDIN_KIND_DIR"
echo "$*" >> "$dir/calls"
arg_after() { want="$1"; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
case "$1 $2" in
  "version "*) echo "kind v0.27.0 go1.24.4 linux/amd64" ;;
  "get clusters") if [ -s "$dir/clusters" ]; then cat "$dir/clusters"; else echo "No kind clusters found." >&2; fi ;;
  "create cluster")
    name=$(arg_after --name "$@"); kubeconfig=$(arg_after --kubeconfig "$@")
    echo "Creating cluster \"$name\" ..." >&2
    cp "$dir/kubeconfig" "$kubeconfig"
    echo "$name" >> "$dir/clusters" ;;
  "get kubeconfig") cat "$dir/kubeconfig" ;;
  "delete cluster")
    name=$(arg_after --name "$@")
    grep -vx "$name" "$dir/clusters" > "$dir/clusters.new"; mv "$dir/clusters.new" "$dir/clusters" ;;
  "export logs") mkdir -p "$3" ;;
  *) echo "ERROR: unknown command \"$1\" for \"kind\"" >&2; exit 1 ;;
esac
"#;

/// A `ctr` in front of the node's real one that feeds an import about
/// 10 MiB a second, as a node across a slow link would take it: long
/// enough for the load to be seen streaming.
const SLOW_CTR: &str = r#"#!/bin/sh
case " $* " in
  *" import "*)
    { while dd of=/tmp/chunk bs=65536 count=16 iflag=fullblock status=none && [ -s /tmp/chunk ]; do
        cat /tmp/chunk; sleep 0.1
      done; } | /usr/bin/ctr "$@" ;;
  *) exec /usr/bin/ctr "$@" ;;
esac
"#;

/// The cluster name of the run below, and so its node's container name:
/// fixed, because the frame shows it.
const CLUSTER: &str = "harness-docs";

/// A suite that runs until the test says `go`.
const SUITE: &str = "#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.05; done\necho done\n";

/// docs/commands.md ("Output") and README.md: the images, load, suites and
/// gather frames of one `harness test` of a kind lane — the build of a
/// real image on the engine, its load into a node running a real
/// containerd (labelled as a kind node; a stand-in `kind` points the lane
/// at the fake API server), two suites running, and gather while a pod's
/// log is on its way.
#[test]
fn the_frames_of_images_load_suites_and_gather_in_one_run() {
    if !node::engine_available() {
        return;
    }
    let world = World::new();
    let ns = "harness-demo";
    // A content no earlier run built an image from: this run builds it.
    let nonce = format!(
        "{:?} {}\n",
        std::time::SystemTime::now(),
        std::process::id()
    );
    let project = Project::new(&[
        (
            "harness.yaml",
            &format!(
                "namespace: {ns}\ncluster:\n  provider: kind\n  name: {CLUSTER}\n  kind: {{ engine: docker }}\npreflight: {{ min_free_disk: 1MiB }}\nimages:\n  datastorage: {{ dockerfile: datastorage.Dockerfile, context: . }}\ncomponents:\n  datastorage: {{ manifests: [datastorage.yaml], images: [datastorage], settle: 0s }}\nlanes:\n  audit:\n    components: [datastorage]\n    suites:\n      audit: {{ command: [sh, suite.sh], timeout: 18m }}\n      storage: {{ command: [sh, suite.sh], timeout: 5m }}\n"
            ),
        ),
        (
            "datastorage.yaml",
            &manifest(&deployment("datastorage", None)),
        ),
        (
            "datastorage.Dockerfile",
            "FROM harness/busybox:1\nCOPY build-id /build-id\nRUN dd if=/dev/urandom of=/datastorage bs=1048576 count=24 2>/dev/null\n",
        ),
        ("build-id", &nonce),
        (".dockerignore", "*\n!build-id\n"),
        ("suite.sh", SUITE),
    ]);
    project.tool("kind", KIND);
    let kind_dir = project.root().join("standin-kind");
    std::fs::create_dir_all(&kind_dir).unwrap();
    std::fs::write(kind_dir.join("kubeconfig"), world.kubeconfig()).unwrap();
    world.on_apply("Deployment", Some(ns), "datastorage", available());
    let pod = "datastorage-7d9f8c6b4-x2k7p";
    let (ready, _) = captured_pod(
        "deploy-healthy",
        "pod.web-57f64b4f4d-5bqnc.json",
        ns,
        pod,
        "datastorage",
    );
    put_fresh(&world, vec![ready]);
    // Gather's one log request waits until the test has seen the frame.
    let logs = world.hold_logs();

    let node = Node::start();
    let mut command = project.command(&["test", "--gather", "always"]);
    command.env_remove("CI").env("STANDIN_KIND_DIR", &kind_dir);
    // Wide enough that no line of these frames is cut: where the cut falls
    // in the load's line would depend on how wide its rate prints.
    let terminal = Terminal::spawn(&mut command, 120, 40);
    let images = terminal.frame("the build's step", |f| {
        f.contains(" images ") && f.contains("  datastorage  building") && f.contains(" : RUN dd ")
    });
    let load = terminal.frame("the load streaming", |f| {
        f.contains(" load ")
            && f.lines().any(|l| {
                // Its rate measured, and the time left.
                l.starts_with(&format!("  {CLUSTER}-control-plane: datastorage  ["))
                    && l.contains(" of ~")
                    && l.contains("/s, ~")
                    && l.ends_with(" left")
            })
    });
    let suites = terminal.frame("both suites running", |f| {
        f.contains(" suites ") && f.contains("2 running") && f.contains("  storage ")
    });
    std::fs::write(project.root().join("go"), "").unwrap();
    let gather = terminal.frame("gather waiting on the log", |f| {
        f.contains(" gather ") && collectors(f).is_some_and(|(done, of)| done + 1 == of)
    });
    logs.release();
    let (code, screen) = terminal.finish(Duration::from_secs(120));
    drop(node);
    let _ = Command::new("docker")
        .args(["rmi", "-f"])
        .args(built_images(&screen))
        .output();
    assert_eq!(code, Some(0), "{screen}");
    insta::assert_snapshot!("images", shown::taken(&images));
    insta::assert_snapshot!("load", shown::taken(&load));
    insta::assert_snapshot!("suites", shown::taken(&suites));
    insta::assert_snapshot!("gather", shown::taken(&gather));
}

/// `12 of 40 collectors` in a gather frame.
fn collectors(frame: &str) -> Option<(usize, usize)> {
    let words: Vec<&str> = frame.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "collectors")?;
    Some((
        words.get(at - 3)?.parse().ok()?,
        words.get(at - 1)?.parse().ok()?,
    ))
}

/// The images this run built (`localhost/harness/datastorage:<tag>`).
fn built_images(screen: &str) -> Vec<String> {
    screen
        .split_whitespace()
        .filter(|w| w.starts_with("(localhost/harness/datastorage:"))
        .map(|w| {
            w.trim_start_matches('(')
                .trim_end_matches([')', ':'])
                .to_owned()
        })
        .collect()
}

/// The node of the cluster [`CLUSTER`]: a real containerd in a container
/// labelled as kind labels its nodes (`tests/support/node.rs`), named as
/// kind names a control plane, with [`SLOW_CTR`] in front of its `ctr`.
struct Node(String);

impl Node {
    fn start() -> Node {
        node::ensure_node_image();
        let name = format!("{CLUSTER}-control-plane");
        // Only this test makes this container; one left by a run of it
        // that was killed would stop this one.
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        let out = Command::new("docker")
            .args(["run", "-d", "--name", &name])
            .args(["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE"])
            .args(["--security-opt", "systempaths=unconfined"])
            .args(["--label", &format!("io.x-k8s.kind.cluster={CLUSTER}")])
            .args(["--label", "io.x-k8s.kind.role=control-plane"])
            .args([node::NODE_IMAGE, "containerd"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let node = Node(name);
        let script =
            format!("cat > /usr/local/bin/ctr <<'EOF'\n{SLOW_CTR}EOF\nchmod +x /usr/local/bin/ctr");
        assert!(node.exec(&["sh", "-c", &script]));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !node.exec(&["/usr/bin/ctr", "version"]) {
            assert!(
                std::time::Instant::now() < deadline,
                "containerd did not start in {}",
                node.0
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    fn exec(&self, args: &[&str]) -> bool {
        Command::new("docker")
            .args(["exec", &self.0])
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}
