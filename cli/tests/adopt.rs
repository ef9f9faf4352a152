//! Adopting `harness` on a real multi-lane project, tried as a new user
//! would, against the real binary: a lane file whose lanes share host
//! ports runs any single lane; `up --preserve`, `up`, `up`, `down` leaves
//! no cluster behind; a failure is printed once, with kind's words and the
//! fix; host builds run before images (and are skipped when nothing
//! changed); `provider: existing` removes exactly what the run created.
//!
//! The cluster is a stand-in: a `kind` on PATH that records its calls and
//! writes a kubeconfig pointing at the scenario fake of the API server,
//! served over HTTP, which keeps what is applied and deleted in a store.
//! Kind lanes need the Docker daemon (the images phase talks to it): those
//! tests fail under HARNESS_REQUIRE_ENGINE=1 when there is none, and are
//! skipped otherwise. The `existing` tests need neither.

#[path = "../../tests/fake_api/mod.rs"]
mod fake_api;
#[path = "../../tests/support/junit.rs"]
mod junit;
#[path = "../../tests/support/node.rs"]
mod node;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use fake_api::serve::{Server, serve};
use fake_api::{Reply, Req, list, resources};
use serde_json::{Value, json};

// ------------------------------------------------------------------ the stand-in kind

/// Records each call; `create cluster` copies `$STANDIN_KIND_DIR/kubeconfig`
/// to `--kubeconfig` and lists the cluster, or, when `create-fails` exists,
/// prints kind 0.27's real output for a node image it cannot pull and
/// exits 1.
const KIND: &str = r#"#!/bin/sh
dir="$STANDIN_KIND_DIR"
echo "$*" >> "$dir/calls"
arg_after() { want="$1"; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
case "$1 $2" in
  "version "*) echo "kind v0.27.0 go1.24.4 linux/amd64" ;;
  "get clusters") if [ -s "$dir/clusters" ]; then cat "$dir/clusters"; else echo "No kind clusters found." >&2; fi ;;
  "create cluster")
    if [ -e "$dir/create-fails" ]; then cat "$dir/create-fails" >&2; exit 1; fi
    name=$(arg_after --name "$@"); kubeconfig=$(arg_after --kubeconfig "$@")
    echo "Creating cluster \"$name\" ..." >&2
    cp "$dir/kubeconfig" "$kubeconfig"
    echo "$name" >> "$dir/clusters" ;;
  "get kubeconfig") cat "$dir/kubeconfig" ;;
  "delete cluster")
    name=$(arg_after --name "$@")
    echo "Deleting cluster \"$name\" ..." >&2
    grep -vx "$name" "$dir/clusters" > "$dir/clusters.new"; mv "$dir/clusters.new" "$dir/clusters" ;;
  "export logs") mkdir -p "$3" ;;
  *) echo "ERROR: unknown command \"$1\" for \"kind\"" >&2; exit 1 ;;
esac
"#;

// ------------------------------------------------------------------ the fake API server

/// Objects by their REST path, as applied (plus what existed before).
type Store = Arc<Mutex<BTreeMap<String, Value>>>;

fn meta(mut object: Value) -> Value {
    object["metadata"]["uid"] = json!("0b1c2d3e-0000-4000-8000-000000000001");
    object["metadata"]["resourceVersion"] = json!("1");
    object["metadata"]["creationTimestamp"] = json!("2026-11-22T10:00:00Z");
    if object["kind"] == "Namespace" {
        object["status"] = json!({"phase": "Active"});
    }
    object
}

/// The collection path and name of an object path
/// (`/api/v1/namespaces/fx/configmaps/app` → (`.../configmaps`, `app`)).
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or((path, ""))
}

fn is_collection(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // /api/v1/<plural>, /api/v1/namespaces/<ns>/<plural>, /apis/<g>/<v>/... likewise.
    let rest = match parts.first() {
        Some(&"api") => &parts[2..],
        Some(&"apis") => &parts[3.min(parts.len())..],
        _ => return false,
    };
    matches!(rest.len(), 1 | 3)
}

fn answer(store: &Store, req: &Req) -> Reply {
    let discovery = match req.path.as_str() {
        "/version" => Some(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1"}).to_string()),
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"]}).to_string()),
        "/apis" => Some(
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "rbac.authorization.k8s.io", "versions": [{"groupVersion": "rbac.authorization.k8s.io/v1", "version": "v1"}]},
            ]})
            .to_string(),
        ),
        "/api/v1" => Some(resources(
            "v1",
            &[
                ("configmaps", "ConfigMap", true),
                ("events", "Event", true),
                ("namespaces", "Namespace", false),
                ("nodes", "Node", false),
                ("pods", "Pod", true),
                ("secrets", "Secret", true),
                ("serviceaccounts", "ServiceAccount", true),
            ],
        )),
        "/apis/rbac.authorization.k8s.io/v1" => Some(resources(
            "rbac.authorization.k8s.io/v1",
            &[("clusterroles", "ClusterRole", false)],
        )),
        _ => None,
    };
    if let Some(body) = discovery {
        return Reply::Json(200, body);
    }
    if req.is_watch() {
        return Reply::Hold;
    }
    let mut store = store.lock().unwrap();
    match req.method.as_str() {
        "PATCH" => {
            let object = meta(serde_json::from_str(&req.body).unwrap());
            store.insert(req.path.clone(), object.clone());
            Reply::Json(200, object.to_string())
        }
        "POST" => {
            let object = meta(serde_json::from_str(&req.body).unwrap());
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            store.insert(format!("{}/{name}", req.path), object.clone());
            Reply::Json(201, object.to_string())
        }
        "DELETE" => match store.remove(&req.path) {
            Some(_) => {
                // A namespace takes what is in it, as the real one does.
                if let Some(ns) = req.path.strip_prefix("/api/v1/namespaces/") {
                    let inside = format!("/namespaces/{ns}/");
                    store.retain(|path, _| !path.contains(&inside));
                }
                Reply::Json(
                    200,
                    json!({"kind": "Status", "status": "Success"}).to_string(),
                )
            }
            None => fake_api::not_found(&req.path),
        },
        _ if req.path.ends_with("/serviceaccounts") => {
            let ns = req.path.split('/').nth(4).unwrap_or_default();
            let sa = meta(
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}),
            );
            Reply::Json(200, list("ServiceAccountList", &[sa]))
        }
        _ if is_collection(&req.path) => {
            let wanted = req
                .param("fieldSelector")
                .and_then(|f| f.strip_prefix("metadata.name=").map(str::to_owned));
            let items: Vec<Value> = store
                .iter()
                .filter(|(path, _)| {
                    let (collection, name) = split(path);
                    collection == req.path && wanted.as_deref().is_none_or(|w| w == name)
                })
                .map(|(_, o)| o.clone())
                .collect();
            Reply::Json(200, list("List", &items))
        }
        _ => match store.get(&req.path) {
            Some(object) => Reply::Json(200, object.to_string()),
            None => fake_api::not_found(&req.path),
        },
    }
}

// ------------------------------------------------------------------ the project and the process

struct StandIn {
    project: tempfile::TempDir,
    kind_dir: PathBuf,
    bin: PathBuf,
    server: Server,
    store: Store,
}

impl StandIn {
    /// `harness.yaml` (and files) in a fresh project, against a fresh API server.
    fn new(files: &[(&str, &str)]) -> StandIn {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let kind_dir = root.join("standin-kind");
        let bin = root.join("standin-bin");
        std::fs::create_dir_all(&kind_dir).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("kind"), KIND).unwrap();
        std::fs::set_permissions(
            bin.join("kind"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let store = Store::default();
        let server = {
            let store = store.clone();
            serve(move |req| answer(&store, req))
        };
        std::fs::write(kind_dir.join("kubeconfig"), kubeconfig(&server.url)).unwrap();
        StandIn {
            project,
            kind_dir,
            bin,
            server,
            store,
        }
    }

    /// A copy of a fixture lane file directory (state goes into the copy).
    fn copy_of(fixture: &str) -> StandIn {
        let from = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .join("tests/fixtures/lanefiles")
            .join(fixture);
        let mut files = Vec::new();
        collect(&from, &from, &mut files);
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        StandIn::new(&files)
    }

    fn root(&self) -> &Path {
        self.project.path()
    }

    fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// `harness <args>` with the stand-in kind first on PATH, plain output.
    fn harness(&self, args: &[&str]) -> Output {
        self.harness_env(args, &[])
    }

    fn harness_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
        command
            .current_dir(self.root())
            .args(args)
            .env("PATH", path)
            .env("HOME", self.home())
            .env("CI", "true")
            .env("STANDIN_KIND_DIR", &self.kind_dir);
        for var in [
            "HARNESS_CONFIG",
            "HARNESS_LANE",
            "KUBECONFIG",
            "GITHUB_ACTIONS",
            "GITHUB_STEP_SUMMARY",
            "HARNESS_KIND_NODE_IMAGE",
            "KEEP_CLUSTER",
            "PRESERVE_E2E_CLUSTER",
            "SKIP_CLEANUP",
        ] {
            command.env_remove(var);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().expect("run harness")
    }

    fn kind_calls(&self) -> Vec<String> {
        lines(&self.kind_dir.join("calls"))
    }

    /// The clusters the stand-in kind has now.
    fn clusters(&self) -> Vec<String> {
        lines(&self.kind_dir.join("clusters"))
    }

    fn state(&self, lane: &str) -> Option<Value> {
        std::fs::read_to_string(self.root().join(format!(".harness/state/{lane}.json")))
            .ok()
            .map(|t| serde_json::from_str(&t).unwrap())
    }

    fn requests(&self) -> Vec<Req> {
        self.server.log.lock().unwrap().clone()
    }
}

fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: standin\n  user: {{token: standin}}\ncontexts:\n- name: standin\n  context: {{cluster: standin, user: standin}}\ncurrent-context: standin\n"
    )
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            out.push((
                path.strip_prefix(root).unwrap().display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const APP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {mode: standin}\n";

/// One kind lane of one ConfigMap, no images, no host ports.
fn kind_lane(extra: &str) -> String {
    format!(
        "namespace: fx\ncluster:\n  provider: kind\n  name: adopt-main\n  kind: {{ engine: docker }}\npreflight: {{ min_free_disk: 1MiB }}\n{extra}components:\n  app: {{ manifests: [app.yaml] }}\nlanes:\n  main:\n    components: [app]\n    suites:\n      s: {{ command: [\"true\"] }}\n"
    )
}

// ------------------------------------------------------------------ shared host ports

/// Any single lane of a lane file whose lanes share host ports runs.
#[test]
fn one_lane_of_a_project_whose_lanes_share_ports_runs() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::copy_of("shared-ports");
    let out = standin.harness(&["test", "--lane", "gateway"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("[e2e] datastorage at http://localhost:38090"),
        "{err}"
    );
    assert!(
        err.contains("preflight ports: ok: 38080/TCP, 38090/TCP, 35432/TCP free"),
        "{err}"
    );
    // It made and deleted its own cluster, and nothing else.
    let calls = standin.kind_calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("create cluster --name gateway-e2e")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("delete cluster --name gateway-e2e")),
        "{calls:?}"
    );
    assert!(standin.clusters().is_empty(), "{:?}", standin.clusters());
}

/// A sibling lane's cluster that holds a shared port stops this lane in
/// preflight, naming that cluster, that lane and what to do.
#[test]
fn a_port_held_by_a_sibling_lanes_cluster_is_named_in_preflight() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::copy_of("shared-ports");
    // A container labelled as the gateway lane's kind node, publishing the
    // DataStorage port the lanes share.
    let name = format!("adopt-holder-{}", std::process::id());
    let run = Command::new("docker")
        .args([
            "run",
            "-d",
            "--rm",
            "--name",
            &name,
            "--label",
            "io.x-k8s.kind.cluster=gateway-e2e",
            "-p",
            "127.0.0.1:38090:8080",
            "harness/busybox:1",
            "sleep",
            "300",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = standin.harness(&["preflight", "--lane", "notification"]);
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "38090/TCP (test/infrastructure/kind-notification-config.yaml:9:15) is held by kind cluster gateway-e2e of lane gateway (container {name}); lanes gateway, datastorage, aianalysis, holmesgpt-api, workflowexecution, remediationorchestrator, signalprocessing share this port"
        )),
        "{err}"
    );
    assert!(
        err.contains("fix: tear that lane down first (`harness down --lane gateway`)"),
        "{err}"
    );
    // The lane that shares nothing is not stopped by it.
    let out = standin.harness(&["preflight", "--lane", "authwebhook", "--output", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ports = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ports")
        .unwrap()
        .clone();
    assert_eq!(ports["status"], "pass", "{ports}");
}

// ------------------------------------------------------------------ up, up, down

/// `up --preserve`, `up`, `up`, `down`: one cluster is made, reused, and
/// deleted at the end, because every `up` keeps the record that harness
/// created it.
#[test]
fn up_preserve_then_up_twice_then_down_leaves_no_cluster() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(&[("harness.yaml", &kind_lane("")), ("app.yaml", APP)]);
    let out = standin.harness(&["up", "--preserve"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        err.matches("--preserve changes nothing for `harness up`: up always keeps the cluster (`harness down` deletes it)").count(),
        1,
        "{err}"
    );
    for _ in 0..2 {
        let out = standin.harness(&["up"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(
            err.contains("reusing cluster adopt-main, which harness up created for lane main (harness down deletes it)"),
            "{err}"
        );
        assert_eq!(standin.state("main").unwrap()["created"], true);
    }
    let creates = standin
        .kind_calls()
        .iter()
        .filter(|c| c.starts_with("create cluster"))
        .count();
    assert_eq!(creates, 1, "{:?}", standin.kind_calls());
    assert_eq!(standin.clusters(), ["adopt-main"]);
    let out = standin.harness(&["down"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(standin.clusters().is_empty(), "{:?}", standin.clusters());
    assert!(standin.state("main").is_none());
    // Status on a lane that is not up says so, with its own exit code.
    let out = standin.harness(&["status"]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no environment is up for lane main"),
        "{}",
        stderr(&out)
    );
}

/// `--reuse` of a cluster harness did not make stays "not ours" through
/// every later `up`: `down` leaves it running.
#[test]
fn a_reused_foreign_cluster_is_never_deleted() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(&[("harness.yaml", &kind_lane("")), ("app.yaml", APP)]);
    std::fs::write(standin.kind_dir.join("clusters"), "adopt-main\n").unwrap();
    let out = standin.harness(&["up"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "without --reuse: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("help: reuse it (harness up --reuse)"),
        "{}",
        stderr(&out)
    );
    for args in [&["up", "--reuse"][..], &["up"]] {
        let out = standin.harness(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(standin.state("main").unwrap()["created"], false);
    }
    let out = standin.harness(&["down"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cluster adopt-main was not created by harness; leaving it running"),
        "{}",
        stderr(&out)
    );
    assert_eq!(standin.clusters(), ["adopt-main"]);
    assert!(
        !standin
            .kind_calls()
            .iter()
            .any(|c| c.starts_with("create") || c.starts_with("delete"))
    );
}

// ------------------------------------------------------------------ failures, once

/// A node image kind cannot pull: kind's own words once (from its
/// `ERROR:` line), the fix once, and no second copy on the progress line.
#[test]
fn a_node_image_that_cannot_be_pulled_is_told_once_with_the_fix() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(&[("harness.yaml", &kind_lane("")), ("app.yaml", APP)]);
    let captured = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("tests/fixtures/k8s/kind-cli/create-cluster-pull-failed.stderr.txt");
    std::fs::copy(captured, standin.kind_dir.join("create-fails")).unwrap();
    let out = standin.harness(&["up"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert_eq!(err.matches("failed to pull image").count(), 1, "{err}");
    assert_eq!(err.matches("no such host").count(), 1, "{err}");
    assert!(!err.contains("Ensuring node image"), "{err}");
    assert!(err.contains("cluster   FAILED after"), "{err}");
    let error_at = err.find("error: `kind create cluster").expect("the error");
    let help_at = err
        .find("= help: kindest/node:v1.33.1 cannot be pulled here: load it into the docker engine")
        .expect("the fix");
    assert!(error_at < help_at, "what went wrong first: {err}");
    assert!(
        err.contains("cluster.kind.node_image / HARNESS_KIND_NODE_IMAGE"),
        "{err}"
    );
    // Kind removed its half-made cluster; nothing is recorded as up.
    assert!(standin.state("main").is_none());
    // `test` tells it once too: in the report, with the fix under it.
    let out = standin.harness(&["test"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert_eq!(err.matches("failed to pull image").count(), 1, "{err}");
    assert_eq!(err.matches("cannot be pulled here").count(), 1, "{err}");
    assert!(
        err.contains("fix: kindest/node:v1.33.1 cannot be pulled here"),
        "{err}"
    );
}

// ------------------------------------------------------------------ host builds

const HOST_BUILT: &str = "\
host_builds:
  binaries:
    command: [sh, build.sh]
    inputs: [src/]
    outputs: [out/app]
    timeout: 1m
images:
  app:
    dockerfile: app.Dockerfile
    host_builds: [binaries]
";

/// A lane on an existing cluster (the fake API server) whose one image,
/// built on the engine, packages what a host build makes; images reach the
/// cluster through a load command that swallows them.
fn host_built_lane(standin: &StandIn) -> String {
    let kubeconfig = standin.root().join("ci-kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text(standin)).unwrap();
    format!(
        "namespace: fx\ncluster:\n  provider: existing\n  name: ci\n  existing: {{ kubeconfig: {}, load_command: [sh, -c, 'cat > /dev/null'] }}\npreflight: {{ min_free_disk: 1MiB }}\n{HOST_BUILT}components:\n  app: {{ manifests: [app.yaml], images: [app] }}\nlanes:\n  main:\n    components: [app]\n",
        kubeconfig.display()
    )
}

/// A fresh project runs its host build, then builds the image from what
/// it made; a second `up` skips the build (its inputs did not change) and
/// finds the image cached; changing an input runs it again.
#[test]
fn host_builds_run_before_images_and_only_when_their_inputs_change() {
    if !node::engine_available() {
        return;
    }
    // A content no earlier run built an image from.
    let nonce = format!(
        "version 1 of run {} at {:?}\n",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let standin = StandIn::new(&[
        ("app.yaml", APP),
        ("src/main.txt", &nonce),
        (
            "build.sh",
            "echo building >&2; echo run >> runs; mkdir -p out; cp src/main.txt out/app\n",
        ),
        (
            "app.Dockerfile",
            "FROM harness/busybox:1\nCOPY out/app /app\n",
        ),
        (".dockerignore", "*\n!out/app\n!app.Dockerfile\n"),
    ]);
    std::fs::write(
        standin.root().join("harness.yaml"),
        host_built_lane(&standin),
    )
    .unwrap();
    let out = standin.harness(&["up"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("host build binaries: running `sh build.sh` (log "),
        "{err}"
    );
    assert!(err.contains("images    host build binaries: ran"), "{err}");
    let log = standin
        .root()
        .join(".harness/logs/host-builds/binaries.log");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "building\n");
    let built_at = err.find("host build binaries: ran").unwrap();
    let image_at = err
        .find("images    app (localhost/harness/app:")
        .expect("the image line");
    assert!(built_at < image_at, "the host build runs first: {err}");
    // Again: nothing changed, nothing runs, the image is the same.
    let out = standin.harness(&["up"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("host build binaries: skipped (inputs unchanged, outputs present)"),
        "{err}"
    );
    assert!(err.contains("cached (content tag present)"), "{err}");
    assert_eq!(lines(&standin.root().join("runs")).len(), 1);
    // One input changes: it runs again, and the image is rebuilt.
    std::fs::write(
        standin.root().join("src/main.txt"),
        format!("{nonce}version 2\n"),
    )
    .unwrap();
    let out = standin.harness(&["up"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("host build binaries: ran"), "{err}");
    assert!(
        err.contains("app (localhost/harness/app:") && err.contains(": built"),
        "{err}"
    );
    assert_eq!(lines(&standin.root().join("runs")).len(), 2);
    let out = standin.harness(&["down"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A host build that fails stops `up` before any image or cluster, with
/// its last lines, its log and the fix, each once.
#[test]
fn a_failing_host_build_stops_up_with_its_output_and_log() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(&[
        ("app.yaml", APP),
        ("src/main.txt", "x\n"),
        (
            "build.sh",
            "echo 'error[E0425]: cannot find value `x`' >&2; exit 101\n",
        ),
        (
            "app.Dockerfile",
            "FROM harness/busybox:1\nCOPY out/app /app\n",
        ),
    ]);
    std::fs::write(
        standin.root().join("harness.yaml"),
        host_built_lane(&standin),
    )
    .unwrap();
    let out = standin.harness(&["up"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(
            "error: host build `binaries` (`sh build.sh`) exited with status 101 (full output in "
        ),
        "{err}"
    );
    // The error names the log once (the start notice told where it goes).
    let error = &err[err.find("error: host build").unwrap()..];
    assert_eq!(error.matches("binaries.log").count(), 1, "{err}");
    assert_eq!(err.matches("cannot find value").count(), 1, "{err}");
    assert!(err.contains("= help: fix what it reports"), "{err}");
    assert!(
        !standin.requests().iter().any(|r| r.method == "PATCH"),
        "nothing was deployed"
    );
    assert!(
        !standin
            .root()
            .join(".harness/host-builds/binaries.json")
            .exists(),
        "no stamp for a failure"
    );
}

// ------------------------------------------------------------------ provider: existing

/// An `existing` lane: a namespace that does not exist, one that does, a
/// ClusterRole that exists and one that does not.
fn existing_lane(kubeconfig: &Path) -> String {
    format!(
        "namespace: adopt-new\ncluster:\n  provider: existing\n  name: shared-ci\n  existing: {{ kubeconfig: {} }}\npreflight: {{ min_free_disk: 1MiB }}\ncomponents:\n  app: {{ manifests: [app.yaml, rbac.yaml] }}\n  shared: {{ manifests: [app.yaml], namespace: adopt-old }}\nlanes:\n  main:\n    components: [app, shared]\n    suites:\n      s: {{ command: [\"true\"] }}\n",
        kubeconfig.display()
    )
}

const RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: adopt-old-role}\nrules: []\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: adopt-new-role}\nrules: []\n";

/// `harness test` on an existing cluster removes, after gather, exactly what
/// the run created there: the namespace it created (not the one that was
/// there), the ClusterRole it created (not the one that was there), the
/// objects it created in the namespace that was there.
#[test]
fn an_existing_cluster_loses_what_the_run_created_and_nothing_else() {
    let standin = StandIn::new(&[]);
    let kubeconfig = standin.root().join("ci-kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text(&standin)).unwrap();
    std::fs::write(
        standin.root().join("harness.yaml"),
        existing_lane(&kubeconfig),
    )
    .unwrap();
    std::fs::write(standin.root().join("app.yaml"), APP).unwrap();
    std::fs::write(standin.root().join("rbac.yaml"), RBAC).unwrap();
    {
        let mut store = standin.store.lock().unwrap();
        store.insert(
            "/api/v1/namespaces/adopt-old".into(),
            meta(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "adopt-old"}}),
            ),
        );
        store.insert(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/adopt-old-role".into(),
            meta(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "adopt-old-role"}})),
        );
    }
    let out = standin.harness(&["test", "--gather", "always"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("cluster shared-ci was not created by harness; leaving it running, and deleted what the run created in it: "),
        "{err}"
    );
    let deletes: Vec<String> = standin
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.clone())
        .collect();
    // Suite namespaces are deleted separately, by name pattern s-p1-<hex>.
    let deletes: Vec<&String> = deletes
        .iter()
        .filter(|p| !p.contains("/namespaces/s-p"))
        .collect();
    assert_eq!(
        deletes,
        [
            "/api/v1/namespaces/adopt-old/configmaps/app",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/adopt-new-role",
            "/api/v1/namespaces/adopt-new",
        ],
        "{err}"
    );
    // Gather came first: the bundle was published before any delete.
    let requests = standin.requests();
    let first_delete = requests.iter().position(|r| r.method == "DELETE").unwrap();
    let last_log_list = requests
        .iter()
        .rposition(|r| r.path.ends_with("/events") && !r.is_watch())
        .unwrap();
    assert!(last_log_list < first_delete, "gather before teardown");
    let store = standin.store.lock().unwrap();
    assert!(store.contains_key("/api/v1/namespaces/adopt-old"));
    assert!(store.contains_key("/apis/rbac.authorization.k8s.io/v1/clusterroles/adopt-old-role"));
    assert!(
        !store.keys().any(|k| k.contains("adopt-new")),
        "{:?}",
        store.keys()
    );
    drop(store);
    assert!(standin.state("main").is_none());
}

/// `up` then `down` on an existing cluster: the record survives in the
/// state file, so `down` removes what `up` created; `--preserve` keeps it.
#[test]
fn down_removes_what_up_created_on_an_existing_cluster() {
    let standin = StandIn::new(&[]);
    let kubeconfig = standin.root().join("ci-kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text(&standin)).unwrap();
    std::fs::write(
        standin.root().join("harness.yaml"),
        existing_lane(&kubeconfig),
    )
    .unwrap();
    std::fs::write(standin.root().join("app.yaml"), APP).unwrap();
    std::fs::write(standin.root().join("rbac.yaml"), RBAC).unwrap();
    standin.store.lock().unwrap().insert(
        "/api/v1/namespaces/adopt-old".into(),
        meta(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "adopt-old"}})),
    );
    let out = standin.harness(&["up"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recorded: Vec<String> = standin.state("main").unwrap()["created_objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            "Namespace adopt-new",
            "ConfigMap app",
            "ClusterRole adopt-old-role",
            "ClusterRole adopt-new-role",
            "ConfigMap app"
        ],
        "what did not exist before `up`"
    );
    // A second `up` finds them all there, and forgets none of them.
    let out = standin.harness(&["up"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        standin.state("main").unwrap()["created_objects"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // `test` on the environment `up` left never tears it down.
    let out = standin.harness(&["test", "--preserve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        standin
            .requests()
            .iter()
            .all(|r| r.method != "DELETE" || r.path.contains("/namespaces/s-p"))
    );
    let out = standin.harness(&["down"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let store = standin.store.lock().unwrap();
    assert!(store.contains_key("/api/v1/namespaces/adopt-old"));
    assert!(
        !store.keys().any(|k| k.contains("adopt-new")
            || k.ends_with("/configmaps/app")
            || k.contains("clusterroles")),
        "{:?}",
        store.keys()
    );
}

fn kubeconfig_text(standin: &StandIn) -> String {
    kubeconfig(&standin.server.url)
}

// ------------------------------------------------------------------ retries and verdicts

/// A suite of two test cases whose second fails on the first attempt only;
/// a retry runs only what `{{failed}}` (its first argument) names.
const PAGES: &str = r#"#!/bin/sh
at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
counts="<testcase name=\"counts 75 events\" timestamp=\"$at\" time=\"0.100\"/>"
if [ "$HARNESS_ATTEMPT" = 1 ]; then
  pages="<testcase name=\"pages through 75 events\" timestamp=\"$at\" time=\"0.200\"><failure message=\"found 74 of 75 events\" type=\"assertion\">pages.sh:6</failure></testcase>"
  status=1
else
  [ "$1" = "pages through 75 events" ] && counts=""
  pages="<testcase name=\"pages through 75 events\" timestamp=\"$at\" time=\"0.200\"/>"
  status=0
fi
printf '<testsuite name="pages">%s%s</testsuite>' "$counts" "$pages" > "$HARNESS_ARTIFACTS/junit.xml"
exit $status
"#;

/// A suite whose one test case expects what is wrong: it fails every time.
const BATCH: &str = r#"#!/bin/sh
at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
printf '<testsuite name="batch"><testcase name="a batch of 150 accepts 151" timestamp="%s" time="0.300"><failure message="accepted 150, expected 151" type="assertion">batch.sh:3</failure></testcase></testsuite>' "$at" > "$HARNESS_ARTIFACTS/junit.xml"
exit 1
"#;

fn retry_lane(kubeconfig: &Path) -> String {
    format!(
        "namespace: verdicts\ncluster:\n  provider: existing\n  name: shared-ci\n  existing: {{ kubeconfig: {} }}\npreflight: {{ min_free_disk: 1MiB }}\ncomponents:\n  app: {{ manifests: [app.yaml] }}\nlanes:\n  main:\n    components: [app]\n    suites:\n      pages: {{ command: [sh, pages.sh], rerun: [sh, pages.sh, \"{{{{failed}}}}\"] }}\n      batch: {{ command: [sh, batch.sh] }}\n",
        kubeconfig.display()
    )
}

/// Times, durations, run ids and the project's directory, made stable.
fn redacted(text: &str, root: &Path) -> String {
    let text = text.replace(&root.display().to_string(), "<project>");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let digit = |i: usize| chars.get(i).is_some_and(|c| c.is_ascii_digit());
    while i < chars.len() {
        // hh:mm:ss
        if (0..8).all(|k| {
            if k == 2 || k == 5 {
                chars.get(i + k) == Some(&':')
            } else {
                digit(i + k)
            }
        }) {
            out.push_str("HH:MM:SS");
            i += 8;
        } else if chars[i..].starts_with(&['r', '-'])
            && (2..10).all(|k| chars.get(i + k).is_some_and(|c| c.is_ascii_hexdigit()))
        {
            out.push_str("r-RUNID");
            i += 10;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The section of the report from the line starting with `title` to the
/// next blank line.
fn section(report: &str, title: &str) -> String {
    let start = report
        .find(&format!("\n{title}"))
        .unwrap_or_else(|| panic!("no section {title:?} in:\n{report}"));
    let rest = &report[start + 1..];
    let end = rest.find("\n\n").map_or(rest.len(), |e| e + 1);
    rest[..end].to_owned()
}

/// Retries as a CI job uses them: `--retries 1` runs each failed suite
/// again (only its failed test case, through `rerun:`), after the lane's
/// components were confirmed Ready again; the test that passed on its retry
/// is `flaky`, the one that failed twice `real` (and fails the run);
/// `--flaky-result` decides a run whose only failure is flaky; the JUnit
/// report carries both as Surefire has them; `harness report` over the
/// bundle prints the verdicts again.
#[test]
fn failed_suites_run_again_and_each_failure_gets_its_verdict() {
    let standin = StandIn::new(&[("app.yaml", APP), ("pages.sh", PAGES), ("batch.sh", BATCH)]);
    let kubeconfig = standin.root().join("ci-kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text(&standin)).unwrap();
    std::fs::write(standin.root().join("harness.yaml"), retry_lane(&kubeconfig)).unwrap();

    let out = standin.harness(&["test", "--retries", "1"]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a real failure fails the run: {err}"
    );
    assert!(
        err.contains("suites    attempt 2: pages, batch again, each in a fresh namespace"),
        "{err}"
    );
    assert!(
        err.contains("suites    every component Ready and settled again after"),
        "{err}"
    );
    let verdicts = section(&err, "test verdicts:");
    insta::assert_snapshot!("test_verdicts", redacted(&verdicts, standin.root()));
    let suites = section(&err, "suites:");
    insta::assert_snapshot!("suites_with_retries", redacted(&suites, standin.root()));

    // The run's JUnit: the flaky case passed with its first failure inside,
    // the real one failed with its first failure inside; both as Surefire
    // has them.
    let runs: Vec<PathBuf> = std::fs::read_dir(standin.root().join(".harness/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1);
    let junit = std::fs::read_to_string(runs[0].join("junit.xml")).unwrap();
    assert!(
        junit.contains("<flakyFailure message=\"found 74 of 75 events\" type=\"assertion\">"),
        "{junit}"
    );
    assert!(
        junit.contains("<rerunFailure message=\"accepted 150, expected 151\" type=\"assertion\">"),
        "{junit}"
    );
    assert!(junit.contains("harness verdict: real"), "{junit}");
    let checked = junit::validate_reruns(&junit);
    assert!(
        checked == usize::MAX || checked == 2,
        "{checked} elements checked"
    );

    // The bundle tells the same verdicts again, with no cluster.
    let bundle = std::fs::read_dir(runs[0].join("gather"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a failed run is gathered");
    let replayed = standin.harness(&["report", bundle.to_str().unwrap()]);
    assert_eq!(replayed.status.code(), Some(0), "{}", stderr(&replayed));
    let again = String::from_utf8_lossy(&replayed.stdout).into_owned();
    assert_eq!(section(&again, "test verdicts:"), verdicts, "{again}");
    let json = standin.harness(&["report", bundle.to_str().unwrap(), "--output", "json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let kinds: Vec<&str> = json["test_verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["flaky", "real"]);

    // A run whose only failure is flaky: --flaky-result decides.
    let out = standin.harness(&["test", "pages", "--retries", "1", "--flaky-result", "fail"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("test verdicts: 0 real, 0 infrastructure, 1 flaky"));
    let out = standin.harness(&["test", "pages", "--retries", "1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "flaky passes by default: {}",
        stderr(&out)
    );
    // Without retries, nothing is retried and the failure is real.
    let out = standin.harness(&["test", "pages"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("test verdicts: 1 real, 0 infrastructure, 0 flaky"),
        "{}",
        stderr(&out)
    );
}

// ------------------------------------------------------------------ the real cluster

/// `$name` when set, or a skip (a failure when `HARNESS_REQUIRE_CLUSTER=1`).
fn cluster_var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("HARNESS_REQUIRE_CLUSTER").as_deref() != Ok("1"),
                "{name} is not set but HARNESS_REQUIRE_CLUSTER=1"
            );
            eprintln!("skipped: {name} is not set (no test cluster)");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{:x}{:05x}", std::process::id(), nanos & 0xfffff)
}

/// `harness test` on the real test cluster through `provider: existing`:
/// afterwards its namespace, its ClusterRole and the ConfigMap it put into
/// `default` are gone; `default` and the ClusterRole that was there before
/// are not.
#[tokio::test(flavor = "multi_thread")]
async fn an_existing_real_cluster_loses_what_the_run_created_and_nothing_else() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use kube::api::{Api, DeleteParams, PostParams};
    let Some(kubeconfig) = cluster_var("HARNESS_TEST_KUBECONFIG") else {
        return;
    };
    let client = harness::k8s::connect(&harness::k8s::ClusterAccess {
        kubeconfig: kubeconfig.clone().into(),
        context: None,
    })
    .await
    .unwrap();
    let id = unique("adopt-e");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let before: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": format!("{id}-old"), "labels": {"dev.harness/test": "adopt"}}, "rules": []
    }))
    .unwrap();
    roles.create(&PostParams::default(), &before).await.unwrap();
    let standin = StandIn::new(&[
        ("app.yaml", APP),
        (
            "rbac.yaml",
            &format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {id}-old}}\nrules: []\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {id}-new}}\nrules: []\n"
            ),
        ),
        (
            "shared.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {id}-cm}}\ndata: {{a: b}}\n"
            ),
        ),
        (
            "harness.yaml",
            &format!(
                "namespace: {id}\ncluster:\n  provider: existing\n  name: tc\n  existing: {{ kubeconfig: {kubeconfig} }}\npreflight: {{ min_free_disk: 1MiB }}\ncomponents:\n  app: {{ manifests: [app.yaml, rbac.yaml] }}\n  shared: {{ manifests: [shared.yaml], namespace: default }}\nlanes:\n  main:\n    components: [app, shared]\n    suites:\n      s: {{ command: [\"true\"] }}\n"
            ),
        ),
    ]);
    let out = standin.harness(&["test"]);
    let err = stderr(&out);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let new_role = roles.get_opt(&format!("{id}-new")).await.unwrap();
    let old_role = roles.get_opt(&format!("{id}-old")).await.unwrap();
    let namespace = namespaces.get_opt(&id).await.unwrap();
    let configmap = configmaps.get_opt(&format!("{id}-cm")).await.unwrap();
    // Clean up whatever is left before judging.
    let _ = roles
        .delete(&format!("{id}-old"), &DeleteParams::default())
        .await;
    let _ = roles
        .delete(&format!("{id}-new"), &DeleteParams::default())
        .await;
    let _ = configmaps
        .delete(&format!("{id}-cm"), &DeleteParams::default())
        .await;
    let _ = namespaces.delete(&id, &DeleteParams::default()).await;
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("deleted what the run created in it"), "{err}");
    assert!(new_role.is_none(), "the run's ClusterRole is left: {err}");
    assert!(
        configmap.is_none(),
        "the run's ConfigMap in default is left: {err}"
    );
    assert!(namespace.is_none(), "the run's namespace is left: {err}");
    assert!(
        old_role.is_some(),
        "a ClusterRole that was there before was deleted: {err}"
    );
    assert!(namespaces.get_opt("default").await.unwrap().is_some());
}

/// `up --preserve`, `up`, `up`, `down` on a real kind cluster: one cluster
/// made, reused twice, deleted at the end.
#[test]
fn up_up_up_down_leaves_no_real_kind_cluster() {
    let Some(node_image) = cluster_var("HARNESS_KIND_NODE_IMAGE") else {
        return;
    };
    if !node::engine_available() {
        return;
    }
    let cluster = unique("adopt-reup");
    let kind_config = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 30091\n    hostPort: 38991\n";
    let lane = format!(
        "namespace: fx\ncluster:\n  provider: kind\n  name: {cluster}\n  kind: {{ engine: docker, config: kind.yaml }}\npreflight: {{ min_free_disk: 1MiB }}\ncomponents:\n  app: {{ manifests: [app.yaml] }}\nlanes:\n  main:\n    components: [app]\n"
    );
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in [
        ("harness.yaml", lane.as_str()),
        ("app.yaml", APP),
        ("kind.yaml", kind_config),
    ] {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .current_dir(dir.path())
            .args(args)
            .env("CI", "true")
            .env("HARNESS_KIND_NODE_IMAGE", &node_image)
            .env("HOME", dir.path())
            .env_remove("HARNESS_CONFIG")
            .env_remove("HARNESS_LANE")
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let clusters = || {
        let out = Command::new("kind")
            .args(["get", "clusters"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == cluster)
    };
    let mut outputs = Vec::new();
    for args in [&["up", "--preserve"][..], &["up"], &["up"], &["down"]] {
        let out = run(args);
        let ok = out.status.success();
        outputs.push(format!("harness {}:\n{}", args.join(" "), stderr(&out)));
        if !ok {
            let _ = Command::new("kind")
                .args(["delete", "cluster", "--name", &cluster])
                .output();
            panic!("{}", outputs.join("\n"));
        }
        if args[0] == "up" {
            assert!(clusters(), "{}", outputs.join("\n"));
        }
    }
    assert!(
        !clusters(),
        "a cluster was left behind:\n{}",
        outputs.join("\n")
    );
    let all = outputs.join("\n");
    assert_eq!(
        all.matches("which harness up created for lane main (harness down deletes it)")
            .count(),
        2,
        "{all}"
    );
    assert!(
        all.contains("--preserve changes nothing for `harness up`"),
        "{all}"
    );
}
