//! What README.md and docs/ show the binary printing, printed by the binary:
//! each test runs `harness` as a person would — against the repository's
//! lane file, a scratch project, the fake API server over HTTP
//! (`tests/fake_api/world.rs`), a fake engine, the real engine, or the real
//! 1.20 test cluster — asserts what matters about the run, and snapshots
//! what it printed (normalized, `tests/support/shown.rs`). The docs mark
//! each block with the snapshot's name (`<!-- output: shown__NAME -->`) and
//! `documented_output.rs` holds them to it.
//!
//! Output is taken as a terminal shows it: stdout and stderr through one
//! pipe, in the order they were written (plain lines, `CI=true`, so no
//! frames: `frames.rs` takes those on a pseudo-terminal).

#[path = "../../tests/support/cluster.rs"]
mod cluster;
#[path = "../../tests/fake_api/mod.rs"]
mod fake_api;
#[path = "../../tests/support/node.rs"]
mod node;
#[path = "../../tests/support/scratch.rs"]
mod scratch;
#[path = "../../tests/support/shown.rs"]
mod shown;

use std::path::{Path, PathBuf};
use std::process::Command;

use fake_api::world::{
    World, available, captured_pod, deployment, fresh, manifest, merge, unavailable,
};
use fake_api::{Reply, fixture, not_found};
use scratch::{Printed, Project, Running, repo};
use serde_json::{Value, json};

// ------------------------------------------------------------------ plan and lane files

/// docs/commands.md, "`harness plan`".
#[test]
fn plan_of_the_audit_lane() {
    let args = ["plan", "--lane", "audit"];
    // In the repository, on its own lane file.
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    command
        .current_dir(repo())
        .args(args)
        .env_remove("HARNESS_CONFIG")
        .env_remove("HARNESS_LANE");
    let out = Printed::of(command);
    assert_eq!(out.code, Some(0), "{}", out.text);
    assert!(
        out.text
            .starts_with("lane audit  (cluster audit-e2e, kind (docker))\n"),
        "{}",
        out.text
    );
    assert!(out.text.contains("dependency matrix"), "{}", out.text);
    insta::assert_snapshot!(
        "plan_audit",
        shown::taken(&shown::session(&args, &out.text))
    );
}

/// docs/commands.md, "Shared host ports": one lane of a lane file whose
/// nine lanes share host ports.
#[test]
fn plan_of_a_lane_that_shares_host_ports() {
    let project = Project::copy_of(&repo().join("tests/fixtures/lanefiles/shared-ports"));
    let args = ["plan", "--lane", "gateway"];
    let out = project.run(&args);
    assert_eq!(out.code, Some(0), "{}", out.text);
    assert!(out.text.contains("shared host ports"), "{}", out.text);
    assert!(
        out.text
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("note: 2 host ports are shared"),
        "{}",
        out.text
    );
    insta::assert_snapshot!(
        "plan_shared_ports",
        shown::taken(&shown::session(&args, &out.text))
    );
}

/// docs/commands.md, "Errors point at the line": two problems in two
/// files, each with its line, column and fix, in one run.
#[test]
fn lane_file_errors_point_at_the_line() {
    let twice = std::fs::read_to_string(
        repo().join("tests/fixtures/lanefiles/port-mapped-twice/kind.yaml"),
    )
    .unwrap();
    let project = Project::new(&[
        (
            "harness.yaml",
            "components:\n  datastorage: { manifests: [app.yaml] }\n  gateway:\n    manifests: [app.yaml]\n    depends_on: [datastorge]\nlanes:\n  gateway:\n    cluster: { kind: { config: kind.yaml } }\n    components: [gateway]\n",
        ),
        (
            "app.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
        ),
        ("kind.yaml", &twice),
    ]);
    let args = ["plan"];
    let out = project.run(&args);
    assert_eq!(out.code, Some(2), "{}", out.text);
    assert!(out.text.contains("error: harness.yaml:5:"), "{}", out.text);
    assert!(
        out.text.contains("did you mean `datastorage`?"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("error: kind.yaml:7:15: host port 8080/TCP is mapped twice"),
        "{}",
        out.text
    );
    insta::assert_snapshot!(
        "lane_file_errors",
        shown::taken(&shown::session(&args, &out.text))
    );
}

/// A service kept as operator projects keep it (kubernaut's
/// `deploy/<service>/`): a kustomize base with its own namespace, its
/// registry image and a ServiceMonitor, and a kind overlay.
fn kustomize_project() -> Project {
    Project::new(&[
        (
            "harness.yaml",
            "namespace: lane-ns\nimages:\n  app: { dockerfile: Dockerfile, replaces: [quay.io/example/app] }\ncomponents:\n  app: { manifests: [deploy/app/overlays/kind] }\nlanes:\n  kind: { components: [app], exclude: [ServiceMonitor] }\n",
        ),
        ("Dockerfile", "FROM scratch\n"),
        (
            "deploy/app/base/kustomization.yaml",
            "namespace: app-system\nresources: [deployment.yaml, config.yaml, monitor.yaml]\nimages:\n- {name: quay.io/example/app, newTag: v1.2}\n",
        ),
        (
            "deploy/app/base/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec:\n      containers:\n      - {name: app, image: 'quay.io/example/app:latest', imagePullPolicy: Always}\n",
        ),
        (
            "deploy/app/base/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {db: 'postgresql.{{namespace}}.svc'}\n",
        ),
        (
            "deploy/app/base/monitor.yaml",
            "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: app}\nspec: {endpoints: [{port: http}]}\n",
        ),
        (
            "deploy/app/overlays/kind/kustomization.yaml",
            "resources: [../../base]\n",
        ),
    ])
}

/// Whether `kustomize` is on PATH (scripts/install-deps installs it; every
/// command needs it to load a lane file with kustomize directories).
fn kustomize_installed() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("kustomize").is_file()));
    if !found {
        assert!(
            std::env::var("HARNESS_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "kustomize is not on PATH (HARNESS_REQUIRE_TOOLS=1): run scripts/install-deps"
        );
        eprintln!("skipped: kustomize is not on PATH");
    }
    found
}

/// docs/lane-file.md, "Manifests from kustomize and Helm": the plan says
/// what a kustomize overlay renders, what is excluded and which registry
/// image is replaced by the one the harness builds.
#[test]
fn plan_of_a_kustomize_overlay() {
    if !kustomize_installed() {
        return;
    }
    let project = kustomize_project();
    let args = ["plan", "--lane", "kind"];
    let out = project.run(&args);
    assert_eq!(out.code, Some(0), "{}", out.text);
    assert!(
        out.text.contains(
            "  component app  kustomize deploy/app/overlays/kind (3 objects)\n    excluded: ServiceMonitor/app-system/app\n    image quay.io/example/app:v1.2 → app  (Deployment/app-system/app app)\n"
        ),
        "{}",
        out.text
    );
    insta::assert_snapshot!(
        "plan_kustomize",
        shown::taken(&shown::session(&args, &out.text))
    );
}

/// docs/lane-file.md: a kustomization that does not render is a lane-file
/// error at the entry that names it, in kustomize's own words, with the
/// file to fix and the command that shows the same error.
#[test]
fn a_kustomization_that_does_not_render_is_a_lane_file_error() {
    if !kustomize_installed() {
        return;
    }
    let project = kustomize_project();
    project.write(
        "deploy/app/base/kustomization.yaml",
        "namespace: app-system\nresources: [deployment.yaml, gone.yaml]\n",
    );
    let args = ["plan"];
    let out = project.run(&args);
    assert_eq!(out.code, Some(2), "{}", out.text);
    let told = shown::told_error(&out.text);
    assert!(
        told.starts_with("error: harness.yaml:5:22: component `app`: `kustomize build deploy/app/overlays/kind` failed: Error: "),
        "{told}"
    );
    assert!(told.contains("gone.yaml"), "{told}");
    assert!(
        told.contains("help: fix deploy/app/overlays/kind/kustomization.yaml or what it refers to (run `kustomize build deploy/app/overlays/kind` to see the same error)"),
        "{told}"
    );
    // kustomize names the files by their absolute path: the scratch
    // project's, which the docs show as a checkout's.
    let told = told.replace(&project.root().display().to_string(), "[project]");
    insta::assert_snapshot!(
        "kustomize_error",
        shown::taken(&shown::session(&args, &told))
    );
}

// ------------------------------------------------------------------ preflight

/// A Docker engine's API as preflight asks it: the version to negotiate,
/// its facts, the containers that publish ports (none).
fn fake_engine() -> fake_api::serve::Server {
    fake_api::serve::serve(|req| {
        // `/v1.45/info` and `/info` alike.
        let path = req.path.trim_start_matches('/');
        let bare = match path.strip_prefix("v1.") {
            Some(rest) => rest.split_once('/').map_or("", |(_, p)| p),
            None => path,
        };
        match bare {
            "_ping" => Reply::Text(200, "OK".into()),
            "version" => Reply::Json(
                200,
                json!({"Version": "26.1.5+dfsg1", "ApiVersion": "1.45", "MinAPIVersion": "1.24",
                       "Os": "linux", "Arch": "amd64"})
                .to_string(),
            ),
            "info" => Reply::Json(
                200,
                json!({"ServerVersion": "26.1.5+dfsg1", "Driver": "overlay2", "OperatingSystem": "Debian GNU/Linux 12 (bookworm)"})
                    .to_string(),
            ),
            "containers/json" => Reply::Json(200, "[]".into()),
            _ => not_found(&req.path),
        }
    })
}

const KIND_VERSION: &str = "#!/bin/sh\n[ \"$1\" = version ] && echo 'kind v0.27.0 go1.24.4 linux/amd64' && exit 0\necho \"ERROR: unknown command \\\"$1\\\" for \\\"kind\\\"\" >&2\nexit 1\n";

/// docs/commands.md, "`harness preflight`": a kind lane with two host
/// ports, the engine a fake Docker API on DOCKER_HOST, kind a stand-in
/// that answers `kind version` as kind 0.27 does.
#[test]
fn preflight_of_a_kind_lane() {
    let engine = fake_engine();
    let project = Project::new(&[
        (
            "harness.yaml",
            "namespace: harness-demo\ncluster:\n  provider: kind\n  kind: { engine: docker, min_version: 0.20.0 }\npreflight: { min_free_disk: 1GiB }\ncomponents:\n  datastorage: { manifests: [app.yaml] }\nlanes:\n  audit:\n    cluster: { name: audit-e2e, kind: { config: kind.yaml } }\n    components: [datastorage]\n",
        ),
        (
            "app.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
        ),
        (
            "kind.yaml",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 30090\n    hostPort: 28391\n  - containerPort: 30432\n    hostPort: 25733\n",
        ),
    ]);
    project.tool("kind", KIND_VERSION);
    // A project that has run before: free space is measured in `.harness/`.
    std::fs::create_dir_all(project.root().join(".harness")).unwrap();
    let args = ["preflight", "--lane", "audit"];
    let host = engine.url.replace("http://", "tcp://");
    let mut command = project.command(&args);
    command.env("DOCKER_HOST", &host);
    let out = Printed::of(command);
    assert_eq!(out.code, Some(0), "{}", out.text);
    assert!(
        out.text.contains(&format!(
            "ok    engine  docker 26.1.5+dfsg1 at {host} (DOCKER_HOST)"
        )),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("ok    kind    kind 0.27.0 (need 0.20.0 or newer)"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("28391/TCP, 25733/TCP free"),
        "{}",
        out.text
    );
    insta::assert_snapshot!("preflight", shown::taken(&shown::session(&args, &out.text)));
}

// ------------------------------------------------------------------ on the fake API server

/// docs/cluster.md: `harness diagnose` of a component whose container is
/// OOMKilled (the captured pod), with its events and both logs.
#[test]
fn diagnose_of_an_oomkilled_component() {
    let world = World::new();
    let project = Project::on_cluster(
        &world.kubeconfig(),
        "harness-demo",
        "components:\n  datastorage: { manifests: [datastorage.yaml] }\nlanes:\n  audit:\n    components: [datastorage]\n",
        &[(
            "datastorage.yaml",
            &manifest(&deployment("datastorage", None)),
        )],
    );
    let pod_name = "datastorage-7c9f8b6d5-x2x4q";
    let (pod, events) = captured_pod(
        "pod-oomkilled",
        "pod.oom.json",
        "harness-demo",
        pod_name,
        "datastorage",
    );
    let mut deployment = deployment("datastorage", None);
    deployment["metadata"]["namespace"] = json!("harness-demo");
    merge(&mut deployment, &unavailable());
    let mut objects = vec![deployment, pod];
    objects.extend(events);
    world.put(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "harness-demo"}}),
    );
    for object in fresh(objects, jiff::Timestamp::now()) {
        world.put(object);
    }
    let read = |f: &str| {
        std::fs::read_to_string(fake_api::fixtures_dir().join("k8s/pod-oomkilled").join(f)).unwrap()
    };
    world.log(pod_name, "app", false, &read("logs.current.txt"));
    world.log(pod_name, "app", true, &read("logs.previous.txt"));
    let args = ["diagnose", "--lane", "audit", "datastorage"];
    let out = project.run(&args);
    assert_eq!(out.code, Some(6), "{}", out.text);
    assert!(
        out.text.starts_with("component datastorage: not Ready\n"),
        "{}",
        out.text
    );
    assert!(out.text.contains("OOMKilled"), "{}", out.text);
    assert!(
        out.text.contains("log of container app (previous):"),
        "{}",
        out.text
    );
    insta::assert_snapshot!("diagnose", shown::taken(&shown::session(&args, &out.text)));
}

/// docs/cluster.md, "A deadline names what each unready resource waits
/// on": a component whose init container is still waiting for its
/// database when the component's `timeout` runs out.
#[test]
fn a_deadline_names_the_step_each_pod_is_in() {
    let world = World::new();
    let project = Project::on_cluster(
        &world.kubeconfig(),
        "demo",
        "components:\n  api: { manifests: [api.yaml], timeout: 3s, settle: 1s }\nlanes:\n  main:\n    components: [api]\n",
        &[(
            "api.yaml",
            &manifest(&deployment("api", Some("wait-for-db"))),
        )],
    );
    world.on_apply("Deployment", Some("demo"), "api", unavailable());
    let pod_name = "api-6c9c5c6d46-v4vhh";
    let (mut pod, events) = captured_pod(
        "pod-init-stuck",
        "pod.init-stuck.json",
        "demo",
        pod_name,
        "api",
    );
    pod["status"]["initContainerStatuses"][0]["name"] = json!("wait-for-db");
    let mut objects = vec![pod];
    objects.extend(events);
    let mut objects = fresh(objects, jiff::Timestamp::now());
    // Made, and its init container started, as `up` begins.
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string();
    objects[0]["metadata"]["creationTimestamp"] = json!(now);
    objects[0]["status"]["startTime"] = json!(now);
    objects[0]["status"]["initContainerStatuses"][0]["state"]["running"]["startedAt"] = json!(now);
    for object in objects {
        world.put(object);
    }
    world.log(
        pod_name,
        "wait-for-db",
        false,
        "waiting for db:5432\nwaiting for db:5432\n",
    );
    let out = project.run(&["up"]);
    assert_eq!(out.code, Some(7), "{}", out.text);
    let told = shown::told_error(&out.text);
    assert!(
        told.starts_with("error: component `api` was not Ready within 3s"),
        "{told}"
    );
    assert!(
        told.contains("init container wait-for-db still running after"),
        "{told}"
    );
    assert!(told.contains("(log: waiting for db:5432)"), "{told}");
    insta::assert_snapshot!("deadline", shown::taken(told));
}

/// A Ginkgo v2 suite as `--junit-report` writes it: it starts, waits for
/// the test to say `go` (after the incident), then fails three specs.
const GINKGO_SUITE: &str = r#"#!/bin/sh
clock() { date '+%m/%d/%y %H:%M:%S.%3N'; }
suite_start=$(date '+%Y-%m-%dT%H:%M:%S')
i=0
while [ ! -e go ]; do
  i=$((i + 1)); [ "$i" -gt 1200 ] && { echo "never told to go on" >&2; exit 3; }
  sleep 0.05
done
spec() { # name line
  at=$(clock)
  cat <<XML
          <testcase name="[It] Audit $1 [audit]" classname="Audit E2E Suite" status="failed" time="0.2">
              <failure message="Post &#34;http://localhost:28090/api/v1/audit/events&#34;: connection refused" type="failed">[FAILED] connection refused&#xA;</failure>
              <system-err>&gt; Enter [It] $1 - /work/test/e2e/audit/audit_test.go:$2 @ $at&#xA;[FAILED] connection refused&#xA;</system-err>
          </testcase>
XML
  sleep 0.2
}
{
  echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo '  <testsuites tests="2" disabled="0" errors="0" failures="2" time="0.4">'
  echo "      <testsuite name=\"Audit E2E Suite\" package=\"/work/test/e2e/audit\" tests=\"2\" disabled=\"0\" skipped=\"0\" errors=\"0\" failures=\"2\" time=\"0.4\" timestamp=\"$suite_start\">"
  spec "stores a batch of 150 events" 42
  spec "pages through 75 events" 54
  echo '      </testsuite>'
  echo '  </testsuites>'
} > "$HARNESS_ARTIFACTS/junit-audit.xml"
echo "0 passed, 2 failed"
exit 1
"#;

/// A suite that fails without a JUnit report of its own.
const LOAD_SUITE: &str = "#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.05; done\necho 'load: 3 of 8 writers lost events' >&2\nexit 1\n";

/// docs/commands.md, the infrastructure timeline of `harness test`'s
/// report: DataStorage is OOMKilled while the suites run; the two failed
/// test cases that started after it, and the failed suite that finished
/// after it, are listed under the incident.
#[test]
fn the_report_lists_the_failures_after_each_incident() {
    let world = World::new();
    let project = Project::on_cluster(
        &world.kubeconfig(),
        "harness-demo",
        "components:\n  datastorage: { manifests: [datastorage.yaml], settle: 0s }\nlanes:\n  audit:\n    components: [datastorage]\n    suites:\n      audit: { command: [sh, audit.sh] }\n      load: { command: [sh, load.sh] }\n",
        &[
            (
                "datastorage.yaml",
                &manifest(&deployment("datastorage", None)),
            ),
            ("audit.sh", GINKGO_SUITE),
            ("load.sh", LOAD_SUITE),
        ],
    );
    world.on_apply(
        "Deployment",
        Some("harness-demo"),
        "datastorage",
        available(),
    );
    let pod_name = "datastorage-7d9f8c6b4-x2k7p";
    let (healthy, _) = captured_pod(
        "deploy-healthy",
        "pod.web-57f64b4f4d-5bqnc.json",
        "harness-demo",
        pod_name,
        "datastorage",
    );
    let healthy = fresh(vec![healthy], jiff::Timestamp::now()).remove(0);
    world.put(healthy.clone());
    let run = Running::start(project.command(&["test"]));
    run.wait_for("the suites", |l| l.contains("suites    audit started"));
    // DataStorage is OOMKilled (with a memory limit) and restarts.
    let mut oom = healthy;
    oom["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "512Mi"}});
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap();
    oom["status"]["containerStatuses"][0]["restartCount"] = json!(1);
    oom["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {
        "exitCode": 137, "reason": "OOMKilled", "startedAt": (now - jiff::SignedDuration::from_secs(40)).to_string(),
        "finishedAt": now.to_string()}});
    world.put(oom);
    run.wait_for("the incident", |l| {
        l.contains("infra     datastorage OOMKilled")
    });
    std::fs::write(project.root().join("go"), "").unwrap();
    let out = run.finish();
    assert_eq!(out.code, Some(1), "{}", out.text);
    let at = out
        .text
        .find("\ninfrastructure timeline\n")
        .expect("the timeline")
        + 1;
    let section = &out.text[at..];
    let section = &section[..section.find("\n\n").unwrap_or(section.len())];
    assert!(
        section.contains("2 of 2 failed test cases started after this incident:"),
        "{section}"
    );
    assert!(
        section.contains("1 of 1 failed suite without test cases finished after it: load"),
        "{section}"
    );
    insta::assert_snapshot!("infrastructure_timeline", shown::taken(section));
}

// ------------------------------------------------------------------ images

/// A stand-in `cargo` whose build fails as rustc reports an error.
const FAILING_CARGO: &str = r#"#!/bin/sh
cat >&2 <<'END'
   Compiling harness-demo v0.1.0 (/work/project/demo)
error[E0425]: cannot find value `x` in this scope
  --> demo/src/bin/datastorage.rs:12:5
   |
12 |     x
   |     ^ not found in this scope

For more information about this error, try `rustc --explain E0425`.
error: could not compile `harness-demo` (bin "datastorage") due to 1 previous error
END
exit 101
"#;

/// docs/commands.md, "Images": a host build that fails stops `up` before
/// any image or cluster, with its last lines and its log.
#[test]
fn a_failing_host_build_says_what_it_printed_and_where_its_log_is() {
    let world = World::new();
    let project = Project::on_cluster(
        &world.kubeconfig(),
        "harness-demo",
        "host_builds:\n  demo-binaries:\n    command: [cargo, build, --release, -p, harness-demo]\n    outputs: [target/release/datastorage]\ncomponents:\n  datastorage: { manifests: [datastorage.yaml] }\nlanes:\n  audit:\n    host_builds: [demo-binaries]\n    components: [datastorage]\n",
        &[(
            "datastorage.yaml",
            &manifest(&deployment("datastorage", None)),
        )],
    );
    project.tool("cargo", FAILING_CARGO);
    let out = project.run(&["up", "--lane", "audit"]);
    assert_eq!(out.code, Some(4), "{}", out.text);
    let told = shown::told_error(&out.text);
    assert!(
        told.starts_with("error: host build `demo-binaries` (`cargo build --release -p harness-demo`) exited with status 101"),
        "{told}"
    );
    assert!(told.contains("= help: fix what it reports"), "{told}");
    assert!(
        !world
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.method == "PATCH"),
        "nothing deployed"
    );
    insta::assert_snapshot!("host_build_error", shown::taken(told));
}

/// A stand-in `cargo` inside the build: a release build that fails.
const CARGO_IN_IMAGE: &str = "#!/bin/sh\necho 'error[E0425]: cannot find value `x` in this scope' >&2\necho 'error: could not compile `datastorage` due to 1 previous error' >&2\nexit 101\n";

/// docs/commands.md, "Images": a Dockerfile step that fails, told with its
/// step, the daemon's words and the log (the real engine).
#[test]
fn a_failing_image_build_names_its_step() {
    if !node::engine_available() {
        return;
    }
    let world = World::new();
    let project = Project::on_cluster(
        &world.kubeconfig(),
        "harness-demo",
        "images:\n  datastorage: { dockerfile: datastorage.Dockerfile, context: . }\ncomponents:\n  datastorage: { manifests: [datastorage.yaml], images: [datastorage] }\nlanes:\n  audit:\n    components: [datastorage]\n",
        &[
            (
                "datastorage.yaml",
                &manifest(&deployment("datastorage", None)),
            ),
            (
                "datastorage.Dockerfile",
                "FROM harness/busybox:1 AS build\nWORKDIR /src\nCOPY cargo /bin/cargo\nCOPY Cargo.toml ./\nRUN cargo build --release\n",
            ),
            ("cargo", CARGO_IN_IMAGE),
            (
                "Cargo.toml",
                "[package]\nname = \"datastorage\"\nversion = \"0.1.0\"\n",
            ),
            (".dockerignore", "*\n!cargo\n!Cargo.toml\n"),
        ],
    );
    std::fs::set_permissions(
        project.root().join("cargo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = project.run(&["up", "--lane", "audit"]);
    assert_eq!(out.code, Some(4), "{}", out.text);
    let told = shown::told_error(&out.text);
    assert!(
        told.starts_with("error: image `datastorage` failed to build at `Step 5/")
            && told.contains(" : RUN cargo build --release`: "),
        "{told}"
    );
    assert!(told.contains("returned a non-zero code: 101"), "{told}");
    insta::assert_snapshot!("image_build_error", shown::taken(told));
}

// ------------------------------------------------------------------ the real 1.20 cluster

/// A project on the real test cluster, in a namespace of its own: one
/// component of `manifest`.
fn on_the_test_cluster(
    kubeconfig: &Path,
    namespace: &str,
    component: &str,
    manifest: &str,
) -> Project {
    Project::new(&[
        (
            "harness.yaml",
            &format!(
                "namespace: {namespace}\ncluster:\n  provider: existing\n  name: test-cluster\n  existing: {{ kubeconfig: {} }}\npreflight: {{ min_free_disk: 1MiB }}\ncomponents:\n  {component}: {{ manifests: [{component}.yaml] }}\nlanes:\n  main:\n    components: [{component}]\n",
                kubeconfig.display()
            ),
        ),
        (&format!("{component}.yaml"), manifest),
    ])
}

/// `harness up` of `manifest` on the test cluster, refused: the failure as
/// printed, after `harness down` removed what `up` created (a namespace).
async fn refused(
    kubeconfig: PathBuf,
    component: &'static str,
    manifest: String,
) -> (Printed, String) {
    let namespace = cluster::namespace("refusal");
    let (up, down) = {
        let (kubeconfig, namespace) = (kubeconfig.clone(), namespace.clone());
        tokio::task::spawn_blocking(move || {
            let project = on_the_test_cluster(&kubeconfig, &namespace, component, &manifest);
            (project.run(&["up"]), project.run(&["down"]))
        })
        .await
        .unwrap()
    };
    // Whatever `down` did, nothing of this test stays.
    let client = cluster::client(&kubeconfig).await;
    cluster::delete_namespace(&client, &namespace).await;
    assert_eq!(down.code, Some(0), "{}", down.text);
    let told = shown::told_error(&up.text).to_owned();
    (up, told)
}

/// docs/cluster.md: a CRD whose schema uses a field newer than the
/// cluster, refused by the real 1.20 API server in a real `harness up`;
/// the fix is told (issue #21: it once was lost on the way).
#[tokio::test(flavor = "multi_thread")]
async fn the_test_cluster_refuses_a_crd_newer_than_itself_with_the_fix() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let crd: Value =
        serde_json::from_str(&fixture("apply-refusals/crd-selectablefields.json")).unwrap();
    let (up, told) = refused(kubeconfig, "crds", manifest(&crd)).await;
    assert_eq!(up.code, Some(6), "{}", up.text);
    assert!(
        told.starts_with("error: component `crds`: cannot apply its manifests: the cluster (Kubernetes v1.20.2) refused CustomResourceDefinition widgets.adopt.example.com: its schema has no field .spec.versions[0].selectableFields\n"),
        "{told}"
    );
    assert!(
        told.contains("\n  = help: .spec.versions[0].selectableFields is newer than the cluster's Kubernetes: use a node image of a newer Kubernetes"),
        "{told}"
    );
    insta::assert_snapshot!("refused_crd", shown::taken(&told));
}

/// docs/cluster.md: an EndpointSlice of `discovery.k8s.io/v1`, which 1.20
/// serves only as `v1beta1`, in a real `harness up` on the test cluster.
#[tokio::test(flavor = "multi_thread")]
async fn the_test_cluster_refuses_a_version_it_does_not_serve_with_the_fix() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "endpoints": [],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    });
    let (up, told) = refused(kubeconfig, "web", manifest(&slice)).await;
    assert_eq!(up.code, Some(6), "{}", up.text);
    assert!(
        told.starts_with("error: component `web`: cannot apply its manifests: the cluster (Kubernetes v1.20.2) does not serve EndpointSlice in discovery.k8s.io/v1: its API group is served only as discovery.k8s.io/v1beta1 here\n"),
        "{told}"
    );
    assert!(
        told.contains("\n  = help: write the manifest for a version the cluster serves (discovery.k8s.io/v1beta1)"),
        "{told}"
    );
    insta::assert_snapshot!("refused_endpointslice", shown::taken(&told));
}
