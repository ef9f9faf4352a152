//! A real `harness test` process interrupted with SIGINT or SIGTERM in each
//! phase, against a stand-in cluster: a stand-in `kind` on PATH (it records
//! every call, writes a kubeconfig pointing at the fake API server, and
//! blocks where a test asks it to) and the scenario fake of the API server
//! served over real HTTP, answering with objects captured from a live
//! cluster. Each test holds the harness inside one phase — a kind call that
//! blocks, a build step that sleeps, an apply the API server never answers,
//! a suite that runs on — until it can see the harness is there, then
//! signals it and checks what followed: gather before teardown, a complete
//! bundle, what was stopped, and the exit code 130.
//!
//! The same stand-ins prove that a panic is no worse than an interrupt: the
//! binary is made to panic at a named point (`HARNESS_TEST_PANIC`, which only
//! builds with debug assertions honour) in deploy, in a task nobody awaits,
//! in gather and in teardown, and must still report, gather a complete
//! bundle, tear down (or say how to), and exit 71.
//!
//! Tests that build images or look for node containers need the Docker
//! daemon; they fail under HARNESS_REQUIRE_ENGINE=1 (CI) when there is none.

#[path = "../../tests/support/bundle.rs"]
mod bundle;
#[path = "../../tests/fake_api/mod.rs"]
mod fake_api;
#[path = "../../tests/support/node.rs"]
mod node;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use fake_api::serve::{Server, serve};
use fake_api::{Reply, Req, fixture, list, resources};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const LANE_NAMESPACE: &str = "fx";
/// What every log request answers (a line a reader would recognise).
const LOG_LINE: &str = "standin log line\n";

// ------------------------------------------------------------------ the stand-in kind

/// kind 0.27's answers, and a block wherever the file `block-<verb>` exists
/// in `$STANDIN_KIND_DIR`: the call writes `blocked-<verb>` with its pid and
/// then waits, as a kind stuck on a slow engine would, until it is killed.
/// `delete cluster` records how many bundles were published when it ran, so
/// a test can tell gather finished before teardown began.
const KIND: &str = r#"#!/bin/sh
dir="$STANDIN_KIND_DIR"
echo "$*" >> "$dir/calls"
verb="$1"
case "$1" in get|create|delete|export) verb="$1-$2" ;; esac
if [ -e "$dir/block-$verb" ]; then
  echo $$ > "$dir/blocked-$verb.tmp" && mv "$dir/blocked-$verb.tmp" "$dir/blocked-$verb"
  exec sleep 3600
fi
arg_after() { want="$1"; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
case "$verb" in
  version) echo "kind v0.27.0 go1.24.4 linux/amd64" ;;
  get-clusters)
    if [ -s "$dir/clusters" ]; then cat "$dir/clusters"; else echo "No kind clusters found." >&2; fi ;;
  create-cluster)
    name=$(arg_after --name "$@"); kubeconfig=$(arg_after --kubeconfig "$@")
    echo "Creating cluster \"$name\" ..." >&2
    cp "$dir/kubeconfig" "$kubeconfig"
    echo "$name" >> "$dir/clusters" ;;
  get-kubeconfig) cat "$dir/kubeconfig" ;;
  delete-cluster)
    name=$(arg_after --name "$@")
    bundles=$(ls "$STANDIN_PROJECT"/.harness/runs/*/gather/*.tar.gz "$STANDIN_PROJECT"/.harness/gather/*.tar.gz 2>/dev/null | wc -l)
    echo "deleted $name with $bundles bundle(s) published" >> "$dir/deletions"
    echo "Deleting cluster \"$name\" ..." >&2
    grep -vx "$name" "$dir/clusters" > "$dir/clusters.new"; mv "$dir/clusters.new" "$dir/clusters" ;;
  export-logs)
    mkdir -p "$3" && echo "standin node journal" > "$3/kind-version.txt" ;;
  *) echo "ERROR: unknown command \"$verb\" for \"kind\"" >&2; exit 1 ;;
esac
"#;

// ------------------------------------------------------------------ the fake API server

/// How the API server behaves for one test.
#[derive(Default)]
struct Api {
    /// Never answer server-side apply (a dead or overloaded API server).
    hold_apply: bool,
    /// Hold the first log request until the test sends the reply.
    held_log: Option<oneshot::Receiver<(u16, String)>>,
    /// Answer the first watch of the lane's pods (the infrastructure
    /// watcher's) when the test sends a watch event.
    pod_watch: Option<oneshot::Receiver<(u16, String)>>,
}

fn meta_object(mut object: Value) -> Value {
    object["metadata"]["uid"] = json!("0b1c2d3e-0000-4000-8000-000000000001");
    object["metadata"]["resourceVersion"] = json!("1");
    object["metadata"]["creationTimestamp"] = json!("2026-11-22T10:00:00Z");
    if object["kind"] == "Namespace" {
        object["status"] = json!({"phase": "Active"});
    }
    object
}

fn discovery(req: &Req) -> Option<Reply> {
    let body = match req.path.as_str() {
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"]}).to_string(),
        "/apis" => json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }],
        })
        .to_string(),
        "/api/v1" => resources(
            "v1",
            &[
                ("configmaps", "ConfigMap", true),
                ("events", "Event", true),
                ("namespaces", "Namespace", false),
                ("nodes", "Node", false),
                ("pods", "Pod", true),
                ("pods/log", "Pod", true),
                ("secrets", "Secret", true),
                ("serviceaccounts", "ServiceAccount", true),
            ],
        ),
        "/apis/apps/v1" => resources("apps/v1", &[("deployments", "Deployment", true)]),
        _ => return None,
    };
    Some(Reply::Json(200, body))
}

impl Api {
    /// A small API server over captured objects: discovery, apply (echoed),
    /// lists (a crash-looping pod in every namespace, the captured nodes),
    /// logs, and namespaces that become Active at once.
    fn answer(&mut self, req: &Req) -> Reply {
        if let Some(reply) = discovery(req) {
            return reply;
        }
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        if req.method == "PATCH" {
            if self.hold_apply {
                return Reply::Hold;
            }
            let object: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
            return Reply::Json(200, meta_object(object).to_string());
        }
        if req.method == "POST" && req.path == "/api/v1/namespaces" {
            let object: Value = serde_json::from_str(&req.body).unwrap();
            return Reply::Json(201, meta_object(object).to_string());
        }
        if req.method == "DELETE" {
            return Reply::Json(
                200,
                json!({"kind": "Status", "status": "Success"}).to_string(),
            );
        }
        if req.is_watch() {
            let lane_pods = format!("/api/v1/namespaces/{LANE_NAMESPACE}/pods");
            if req.path == lane_pods
                && req.param("labelSelector").is_none()
                && let Some(rx) = self.pod_watch.take()
            {
                return Reply::Later(rx);
            }
            return Reply::Hold;
        }
        match parts.as_slice() {
            ["api", "v1", "nodes"] => {
                let nodes: Value = serde_json::from_str(&fixture("cluster/nodes.json")).unwrap();
                Reply::Json(200, nodes.to_string())
            }
            ["api", "v1", "namespaces"] => {
                // A watch for one namespace by name: it is Active.
                let name = req
                    .param("fieldSelector")
                    .and_then(|f| f.strip_prefix("metadata.name=").map(str::to_owned))
                    .unwrap_or_default();
                let ns = meta_object(json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                }));
                Reply::Json(200, list("NamespaceList", &[ns]))
            }
            ["api", "v1", "namespaces", name] => {
                let ns = meta_object(json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                }));
                Reply::Json(200, ns.to_string())
            }
            ["api", "v1", "namespaces", ns, "serviceaccounts"] => {
                let sa = meta_object(json!({
                    "apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": ns},
                }));
                Reply::Json(200, list("ServiceAccountList", &[sa]))
            }
            ["api", "v1", "namespaces", ns, "pods"] => {
                let mut pod: Value =
                    serde_json::from_str(&fixture("pod-crashloop/pod.crashloop.json")).unwrap();
                pod["metadata"]["namespace"] = json!(ns);
                Reply::Json(200, list("PodList", &[pod]))
            }
            ["api", "v1", "namespaces", _, "pods", _, "log"] => match self.held_log.take() {
                Some(rx) => Reply::Later(rx),
                None => Reply::Text(200, LOG_LINE.into()),
            },
            ["api", "v1", "namespaces", _, kind] => {
                Reply::Json(200, list(&format!("{kind}List"), &[]))
            }
            ["apis", "apps", "v1", "namespaces", _, "deployments"] => {
                Reply::Json(200, list("DeploymentList", &[]))
            }
            _ => fake_api::not_found(&req.path),
        }
    }
}

// ------------------------------------------------------------------ the project and the process

struct StandIn {
    /// The cluster's name, unique to the test (node containers are found by it).
    cluster: String,
    project: tempfile::TempDir,
    kind_dir: PathBuf,
    bin: PathBuf,
    server: Server,
}

impl StandIn {
    /// A kind lane of one ConfigMap component, with `images` and `suites`
    /// (YAML bodies), against an API server behaving as `api` says.
    fn new(api: Api, images: &str, component_images: &str, suites: &str) -> StandIn {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let cluster = format!(
            "standin-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        let kind_dir = root.join("standin-kind");
        let bin = root.join("standin-bin");
        std::fs::create_dir_all(&kind_dir).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let kind = bin.join("kind");
        std::fs::write(&kind, KIND).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&kind).unwrap().permissions(),
            0o755,
        );
        std::fs::set_permissions(&kind, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let api = Arc::new(Mutex::new(api));
        let server = serve(move |req| api.lock().unwrap().answer(req));
        std::fs::write(
            kind_dir.join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: kind-{cluster}\n  cluster: {{server: \"{}\"}}\nusers:\n- name: kind-{cluster}\n  user: {{token: standin}}\ncontexts:\n- name: kind-{cluster}\n  context: {{cluster: kind-{cluster}, user: kind-{cluster}}}\ncurrent-context: kind-{cluster}\n",
                server.url
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("app.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {mode: standin}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("harness.yaml"),
            format!(
                "namespace: {LANE_NAMESPACE}\ncluster:\n  provider: kind\n  name: {cluster}\n  kind: {{ engine: docker, min_version: 0.20.0 }}\npreflight: {{ min_free_disk: 1MiB }}\nimages:\n{images}components:\n  app: {{ manifests: [app.yaml]{component_images} }}\nlanes:\n  main:\n    components: [app]\n    suites:\n{suites}"
            ),
        )
        .unwrap();
        StandIn {
            cluster,
            project,
            kind_dir,
            bin,
            server,
        }
    }

    /// A lane whose suite fails (so gather runs) and whose first log
    /// request waits for `held`.
    fn failing_with_held_log(held: oneshot::Receiver<(u16, String)>) -> StandIn {
        StandIn::new(
            Api {
                held_log: Some(held),
                ..Api::default()
            },
            NO_IMAGES,
            "",
            "      failing: { command: [\"false\"] }\n",
        )
    }

    /// An environment `harness up` brought up, whose first log request
    /// (a later gather's) waits for `held`.
    fn up_with_held_log(held: oneshot::Receiver<(u16, String)>) -> StandIn {
        let standin = StandIn::new(
            Api {
                held_log: Some(held),
                ..Api::default()
            },
            NO_IMAGES,
            "",
            ONE_SUITE,
        );
        let up = standin.harness(&["up"]).finish();
        assert_eq!(up.code, Some(0), "{}", up.stderr);
        standin
    }

    fn root(&self) -> &Path {
        self.project.path()
    }

    /// Makes the stand-in kind block on `verb` (`version`, `create-cluster`…).
    fn block(&self, verb: &str) {
        std::fs::write(self.kind_dir.join(format!("block-{verb}")), "").unwrap();
    }

    /// The pid of a kind call blocked on `verb`, once it is there.
    fn blocked(&self, verb: &str) -> Pid {
        let path = self.kind_dir.join(format!("blocked-{verb}"));
        let text = wait_until("kind to block on {verb}", || {
            std::fs::read_to_string(&path).ok()
        });
        Pid::from_raw(text.trim().parse().unwrap())
    }

    fn kind_calls(&self) -> Vec<String> {
        read_lines(&self.kind_dir.join("calls"))
    }

    /// What the stand-in kind records for deleting this cluster.
    fn deleted_with(&self, bundles: usize) -> String {
        format!(
            "deleted {} with {bundles} bundle(s) published",
            self.cluster
        )
    }

    fn deletions(&self) -> Vec<String> {
        read_lines(&self.kind_dir.join("deletions"))
    }

    /// `Some` once gather has asked for a log.
    fn log_asked(&self) -> Option<()> {
        self.requests()
            .iter()
            .any(|r| r.path.ends_with("/log"))
            .then_some(())
    }

    fn requests(&self) -> Vec<Req> {
        self.server.log.lock().unwrap().clone()
    }

    /// `harness test --output json <extra>`.
    fn start(&self, extra: &[&str]) -> Run {
        let mut args = vec!["test"];
        args.extend_from_slice(extra);
        self.harness(&args)
    }

    /// `harness --output json <args>`.
    fn harness(&self, args: &[&str]) -> Run {
        self.harness_env(args, &[])
    }

    /// `harness --output json <args>` with more environment variables.
    fn harness_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command();
        command
            .args(["--output", "json"])
            .args(args)
            .envs(env.iter().copied());
        Run::spawn(&mut command)
    }

    /// `harness <args>` with its text output, and `TZ` set to `tz`.
    fn harness_text(&self, args: &[&str], tz: &str) -> TextRun {
        let mut command = self.command();
        command.args(args).env("TZ", tz);
        TextRun::spawn(&mut command)
    }

    /// The harness, in the project, with the stand-in kind first on PATH.
    fn command(&self) -> Command {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let home = self.root().join("home");
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
        command
            .current_dir(self.root())
            .env("PATH", path)
            .env("HOME", &home)
            .env("STANDIN_KIND_DIR", &self.kind_dir)
            .env("STANDIN_PROJECT", self.root())
            .env_remove("HARNESS_TEST_PANIC");
        command
    }

    /// Published bundles (`*.tar.gz`) and staging dirs left behind.
    fn bundles(&self) -> (Vec<PathBuf>, Vec<String>) {
        let mut published = Vec::new();
        let mut partial = Vec::new();
        let runs = self.root().join(".harness/runs");
        for run in std::fs::read_dir(runs).into_iter().flatten().flatten() {
            for entry in std::fs::read_dir(run.path().join("gather"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".tar.gz") {
                    published.push(entry.path());
                } else if name.ends_with(".partial") {
                    partial.push(name);
                }
            }
        }
        (published, partial)
    }
}

struct Run {
    child: Child,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Run {
    /// Starts the harness with `--output json` read event by event.
    fn spawn(command: &mut Command) -> Run {
        let mut child = command
            .env_remove("HARNESS_CONFIG")
            .env_remove("HARNESS_LANE")
            .env_remove("KUBECONFIG")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Run {
            child,
            events: rx,
            seen: Vec::new(),
        }
    }

    /// Waits (with a deadline) for the JSON event that matches.
    fn wait_for(&mut self, what: &str, want: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(event) = self.events.recv_timeout(left) else {
                panic!("{what}: not seen; events so far: {:#?}", self.seen);
            };
            let hit = want(&event);
            self.seen.push(event);
            if hit {
                return;
            }
        }
    }

    /// Like [`wait_until`], but a failure shows what the harness did.
    fn wait_until<T>(&mut self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = probe() {
                return v;
            }
            self.seen.extend(self.events.try_iter());
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:#?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_phase(&mut self, phase: &str) {
        self.wait_for(&format!("phase {phase} started"), |e| {
            e["event"] == "phase_started" && e["phase"] == phase
        });
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Signals, then waits for the harness to announce the interrupt: it has
    /// received it when this returns.
    fn interrupt(&mut self, signal: Signal) {
        self.signal(signal);
        self.wait_for("the interrupt notice", |e| {
            e["event"] == "notice"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("interrupted"))
        });
    }

    /// Waits for the exit (with a deadline); the exit code and stderr.
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("harness did not exit; events: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends at EOF: everything printed is in the channel.
        self.seen.extend(self.events.iter());
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        Finished {
            code: status.code(),
            stderr,
            events: self.seen,
        }
    }
}

/// A harness run with its text output: plain lines on stderr (it is not
/// a terminal), read line by line, then the report.
struct TextRun {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl TextRun {
    fn spawn(command: &mut Command) -> TextRun {
        let mut child = command
            .env_remove("HARNESS_CONFIG")
            .env_remove("HARNESS_LANE")
            .env_remove("KUBECONFIG")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        TextRun {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits (with a deadline) for a line of stderr that matches.
    fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!("{what}: not seen; stderr so far:\n{}", self.seen.join("\n"));
            };
            let hit = want(&line);
            self.seen.push(line);
            if hit {
                return;
            }
        }
    }

    /// Like [`wait_until`], but a failure shows what the harness printed.
    fn wait_until<T>(&mut self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = probe() {
                return v;
            }
            self.seen.extend(self.lines.try_iter());
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; stderr:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit; the exit code, stdout and all of stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("harness did not exit; stderr:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends at EOF: everything printed is in the channel.
        self.seen.extend(self.lines.iter());
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let mut stderr = self.seen.join("\n");
        stderr.push('\n');
        (status.code(), stdout, stderr)
    }
}

struct Finished {
    code: Option<i32>,
    stderr: String,
    events: Vec<Value>,
}

impl Finished {
    /// Phases in the order they started.
    fn phases(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "phase_started")
            .map(|e| e["phase"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Each phase's outcome: `ok`, or its error.
    fn outcomes(&self) -> BTreeMap<String, String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "phase_finished")
            .map(|e| {
                let outcome = if e["ok"] == true {
                    "ok".to_owned()
                } else {
                    e["error"].as_str().unwrap_or("failed").to_owned()
                };
                (e["phase"].as_str().unwrap().to_owned(), outcome)
            })
            .collect()
    }

    fn assert_interrupted(&self) {
        assert_eq!(
            self.code,
            Some(130),
            "exit code; stderr:\n{}\nevents: {:#?}",
            self.stderr,
            self.events
        );
        // The stream ends by saying how the run ended.
        let last = self.events.last().expect("events");
        assert_eq!(last["event"], "finished", "{last}");
        assert_eq!(last["exit_code"], 130);
        assert_eq!(last["result"], "interrupted by SIGINT/SIGTERM");
        // Every phase that started also finished: nothing is left open.
        let started = self.phases();
        let finished = self.outcomes();
        for phase in &started {
            assert!(finished.contains_key(phase), "{phase} never finished");
        }
    }
}

impl Finished {
    /// Exit 71, the stream ending by saying so, and no phase left open.
    fn assert_panicked(&self) {
        assert_eq!(
            self.code,
            Some(71),
            "exit code; stderr:\n{}\nevents: {:#?}",
            self.stderr,
            self.events
        );
        let last = self.events.last().expect("events");
        assert_eq!(last["event"], "finished", "{last}");
        assert_eq!(last["exit_code"], 71);
        assert!(
            last["result"]
                .as_str()
                .unwrap()
                .starts_with("harness panicked"),
            "{last}"
        );
        let finished = self.outcomes();
        for phase in self.phases() {
            assert!(finished.contains_key(&phase), "{phase} never finished");
        }
        // The hook said it at once, with where it happened: every injection
        // point is in the glue of a stage (`src/<stage>/stage.rs`).
        let at = self
            .stderr
            .split("harness panicked at ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_default();
        assert!(
            at.starts_with("src/") && at.ends_with("/stage.rs"),
            "{at}: {}",
            self.stderr
        );
    }

    /// The notices of the report, one per line.
    fn notices(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e["event"] == "notice")
            .filter_map(|e| e["message"].as_str())
            .collect()
    }
}

/// The names in `dir`; none when it does not exist.
fn entries(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls `probe` until it yields, within a deadline.
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: Pid) -> bool {
    // Signal 0 checks existence; a zombie counts as gone.
    kill(pid, None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

/// Every file of the run's story that a bundle of `harness test` carries
/// under `harness/`, with the README's summary first; returns the bundle's
/// root (inside `unpacked`).
fn assert_story(unpacked: &Path) -> PathBuf {
    let root = std::fs::read_dir(unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let files = bundle::files_under(&root);
    for want in [
        "harness/events.jsonl",
        "harness/summary.json",
        "harness/report.txt",
        "harness/diagnosis.txt",
        "harness/diagnosis.json",
        "harness/infrastructure-timeline.txt",
        "harness/deploy-timeline.txt",
        "harness/suites.txt",
        "harness/junit.xml",
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} missing from {files:#?}"
        );
    }
    // Only real collector errors: every collector of the stand-in answered.
    assert!(
        !files.iter().any(|f| f.ends_with("collector-errors.txt")),
        "{}",
        std::fs::read_to_string(root.join("harness/collector-errors.txt")).unwrap_or_default()
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.starts_with("# harness must-gather bundle\n\n## Summary\n\n- **result**: "),
        "{readme}"
    );
    let diagnosis: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("harness/diagnosis.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(diagnosis["lane"], "main");
    assert_eq!(diagnosis["components"][0]["component"], "app");
    root
}

/// The recorded events of a bundle, one JSON value per line.
fn recorded_events(root: &Path) -> Vec<Value> {
    std::fs::read_to_string(root.join("harness/events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const NO_IMAGES: &str = "  {}\n";
const ONE_SUITE: &str = "      s: { command: [\"true\"] }\n";

// ------------------------------------------------------------------ phase by phase

#[test]
fn sigint_during_preflight_stops_before_anything_is_created() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(Api::default(), NO_IMAGES, "", ONE_SUITE);
    standin.block("version");
    let mut run = standin.start(&[]);
    run.wait_phase("preflight");
    let kind = standin.blocked("version");
    run.interrupt(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    assert_eq!(done.phases(), ["preflight"]);
    assert_eq!(done.outcomes()["preflight"], "interrupted");
    wait_until("the blocked kind to be killed", || {
        (!alive(kind)).then_some(())
    });
    // No cluster was asked for, so there is nothing to gather or delete.
    assert!(
        !standin.kind_calls().iter().any(|c| c.starts_with("create")),
        "{:?}",
        standin.kind_calls()
    );
    assert_eq!(standin.bundles(), (vec![], vec![]));
    assert!(!standin.root().join(".harness/state/main.json").exists());
}

#[test]
fn sigterm_during_an_image_build_stops_the_build() {
    if !node::engine_available() {
        return;
    }
    // A build step that runs until stopped; the nonce finds its container.
    let nonce = format!("standin-build-{}", std::process::id());
    let standin = StandIn::new(
        Api::default(),
        "  app: { dockerfile: Dockerfile, context: . }\n",
        ", images: [app]",
        ONE_SUITE,
    );
    std::fs::write(
        standin.root().join("Dockerfile"),
        format!("FROM harness/busybox:1\nRUN echo {nonce} && sleep 3600\n"),
    )
    .unwrap();
    let building = || {
        let out = Command::new("docker")
            .args(["ps", "--no-trunc", "--format", "{{.Command}}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&nonce)
    };
    let mut run = standin.start(&[]);
    run.wait_phase("images");
    wait_until("the build step to run", || building().then_some(()));
    run.interrupt(Signal::SIGTERM);
    let done = run.finish();
    done.assert_interrupted();
    assert_eq!(done.phases(), ["preflight", "images"]);
    assert_eq!(done.outcomes()["images"], "interrupted");
    // The engine stops the build once the harness hangs up.
    wait_until("the build container to stop", || {
        (!building()).then_some(())
    });
    assert!(
        !standin.kind_calls().iter().any(|c| c.starts_with("create")),
        "{:?}",
        standin.kind_calls()
    );
    assert_eq!(standin.bundles(), (vec![], vec![]));
}

#[test]
fn sigint_while_kind_creates_the_cluster_kills_it_and_deletes_what_it_made() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(Api::default(), NO_IMAGES, "", ONE_SUITE);
    standin.block("create-cluster");
    let mut run = standin.start(&[]);
    run.wait_phase("cluster");
    let kind = standin.blocked("create-cluster");
    run.interrupt(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    wait_until("kind create to be killed", || (!alive(kind)).then_some(()));
    assert_eq!(done.outcomes()["cluster"], "interrupted");
    // kind leaves its node containers behind when it is killed: teardown
    // deletes the half-made cluster. There was nothing to gather from.
    assert_eq!(standin.deletions(), [standin.deleted_with(0)]);
    let phases = done.phases();
    assert_eq!(
        phases.last().map(String::as_str),
        Some("teardown"),
        "{phases:?}"
    );
    assert!(!standin.root().join(".harness/state/main.json").exists());
}

#[test]
fn sigint_while_kind_creates_a_preserved_cluster_keeps_it_for_harness_down() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(Api::default(), NO_IMAGES, "", ONE_SUITE);
    standin.block("create-cluster");
    let mut run = standin.start(&["--preserve"]);
    run.wait_phase("cluster");
    standin.blocked("create-cluster");
    run.interrupt(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    assert!(standin.deletions().is_empty());
    // The state file remembers it, so `harness down` can delete it later.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(standin.root().join(".harness/state/main.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["created"], true);
    assert_eq!(state["cluster"], standin.cluster.as_str());
}

#[test]
fn sigint_during_up_keeps_what_it_made_for_harness_down() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(Api::default(), NO_IMAGES, "", ONE_SUITE);
    standin.block("create-cluster");
    let mut run = standin.harness(&["up"]);
    run.wait_phase("cluster");
    let kind = standin.blocked("create-cluster");
    run.interrupt(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    wait_until("kind create to be killed", || (!alive(kind)).then_some(()));
    assert!(standin.deletions().is_empty(), "up deletes nothing");
    assert!(standin.root().join(".harness/state/main.json").is_file());
    // `down` removes the half-made cluster `up` left.
    let down = standin.harness(&["down"]).finish();
    assert_eq!(down.code, Some(0), "{}", down.stderr);
    assert_eq!(standin.deletions(), [standin.deleted_with(0)]);
    assert!(!standin.root().join(".harness/state/main.json").exists());
}

#[test]
fn sigint_during_harness_gather_leaves_nothing_and_the_next_gather_publishes() {
    if !node::engine_available() {
        return;
    }
    let (_never, held) = oneshot::channel::<(u16, String)>();
    let standin = StandIn::up_with_held_log(held);
    let out = standin.root().join("bundles");
    let out_arg = out.display().to_string();
    let mut run = standin.harness(&["gather", "--out", &out_arg]);
    run.wait_until("gather to ask for a log", || standin.log_asked());
    run.signal(Signal::SIGINT);
    let done = run.finish();
    assert_eq!(done.code, Some(130), "{}", done.stderr);
    let left = entries(&out);
    assert!(left.is_empty(), "{left:?}");
    // The next gather (its log answers now) publishes a whole bundle.
    let again = standin.harness(&["gather", "--out", &out_arg]).finish();
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    let archives: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(archives.len(), 1);
    let unpacked = bundle::assert_complete(&archives[0]);
    // Gathered outside a run, the bundle carries the story of the `harness
    // up` that made the environment: its recorded events, how it ended.
    let root = bundle::top(&unpacked);
    let recorded = recorded_events(&root);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(standin.root().join(".harness/state/main.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(recorded[0]["event"], "run_started");
    assert_eq!(recorded[0]["run_id"], state["run_id"]);
    assert_eq!(recorded.last().unwrap()["event"], "finished");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(
            "## Summary\n\n- **result**: success (exit code 0)\n- **verdicts**: none\n- **suites**: none ran\n"
        ),
        "{readme}"
    );
    assert!(root.join("harness/diagnosis.txt").is_file());
}

#[test]
fn sigint_during_down_gather_keeps_the_cluster_for_the_next_down() {
    if !node::engine_available() {
        return;
    }
    let (_never, held) = oneshot::channel::<(u16, String)>();
    let standin = StandIn::up_with_held_log(held);
    let mut run = standin.harness(&["down", "--gather"]);
    run.wait_until("gather to ask for a log", || standin.log_asked());
    run.signal(Signal::SIGINT);
    let done = run.finish();
    assert_eq!(done.code, Some(130), "{}", done.stderr);
    assert!(
        done.stderr.contains("run `harness down` again"),
        "{}",
        done.stderr
    );
    // Neither a bundle (not even a hidden partial one) nor a deletion.
    let gathered = standin.root().join(".harness/gather");
    let left = entries(&gathered);
    assert!(left.is_empty(), "{left:?}");
    assert!(standin.deletions().is_empty());
    assert!(standin.root().join(".harness/state/main.json").is_file());
    // The next `down` (its gather now answered) finishes the job: the
    // bundle first, then the deletion.
    let again = standin.harness(&["down", "--gather"]).finish();
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(standin.deletions(), [standin.deleted_with(1)]);
    assert!(!standin.root().join(".harness/state/main.json").exists());
}

/// A node of the stand-in cluster whose `ctr images import` never ends:
/// a busybox container labelled as kind labels its nodes.
struct Node(String);

impl Node {
    fn start(cluster: &str) -> Node {
        let script = "printf '%s\\n' '#!/bin/sh' \
            'case \"$*\" in *\" import \"*) echo $$ > /import.pid; exec sleep 3600 ;; *\" ls\"*) echo \"REF TYPE DIGEST SIZE PLATFORMS LABELS\" ;; esac' \
            > /bin/ctr && chmod +x /bin/ctr && touch /ready && exec sleep 3600";
        let name = format!("{cluster}-control-plane");
        let out = Command::new("docker")
            .args(["run", "-d", "--rm", "--name", &name])
            .args(["--label", &format!("io.x-k8s.kind.cluster={cluster}")])
            .args(["--label", "io.x-k8s.kind.role=control-plane"])
            .args(["harness/busybox:1", "sh", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let node = Node(name);
        wait_until("the stand-in node to be ready", || {
            node.exec(&["test", "-e", "/ready"]).then_some(())
        });
        node
    }

    fn exec(&self, args: &[&str]) -> bool {
        Command::new("docker")
            .args(["exec", &self.0])
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn sigint_during_load_gathers_a_complete_bundle_then_tears_down() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(
        Api::default(),
        "  app: { dockerfile: Dockerfile, context: . }\n",
        ", images: [app]",
        ONE_SUITE,
    );
    std::fs::write(
        standin.root().join("Dockerfile"),
        "FROM harness/busybox:1\nLABEL purpose=standin-load\n",
    )
    .unwrap();
    let node = Node::start(&standin.cluster);
    let mut run = standin.start(&[]);
    run.wait_phase("load");
    run.wait_until("ctr import to start in the node", || {
        node.exec(&["test", "-e", "/import.pid"]).then_some(())
    });
    run.interrupt(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    assert_eq!(
        done.phases(),
        [
            "preflight",
            "images",
            "cluster",
            "load",
            "gather",
            "teardown"
        ]
    );
    assert_eq!(done.outcomes()["load"], "interrupted");
    assert_eq!(done.outcomes()["gather"], "ok");
    let (published, partial) = standin.bundles();
    assert_eq!(published.len(), 1, "{partial:?}");
    assert!(partial.is_empty(), "{partial:?}");
    bundle::assert_complete(&published[0]);
    // Teardown came after the bundle was published.
    assert_eq!(standin.deletions(), [standin.deleted_with(1)]);
}

#[test]
fn components_needing_no_loading_deploy_while_the_load_runs() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(
        Api::default(),
        "  app: { dockerfile: Dockerfile, context: . }\n",
        ", images: [app]",
        ONE_SUITE,
    );
    std::fs::write(
        standin.root().join("Dockerfile"),
        "FROM harness/busybox:1\nLABEL purpose=standin-overlap\n",
    )
    .unwrap();
    // Beside `app` (wave 1, its image being loaded): `settings` (wave 1,
    // no image) and `later` (no image, but wave 2: it depends on `app`).
    let lane_file = standin.root().join("harness.yaml");
    let text = std::fs::read_to_string(&lane_file).unwrap();
    let text = text
        .replace(
            "components:\n  app:",
            "components:\n  settings: { manifests: [settings.yaml] }\n  later: { manifests: [later.yaml], depends_on: [app] }\n  app:",
        )
        .replace("components: [app]", "components: [later, settings]");
    std::fs::write(&lane_file, text).unwrap();
    for name in ["settings", "later"] {
        std::fs::write(
            standin.root().join(format!("{name}.yaml")),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: v}}\n"
            ),
        )
        .unwrap();
    }
    let node = Node::start(&standin.cluster);
    let mut run = standin.start(&[]);
    run.wait_phase("load");
    // The import never ends; meanwhile `settings` is applied...
    run.wait_until("ctr import to start in the node", || {
        node.exec(&["test", "-e", "/import.pid"]).then_some(())
    });
    let applied = |name: &str| {
        standin
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with(&format!("/configmaps/{name}")))
    };
    run.wait_until("settings to be applied during the load", || {
        applied("settings").then_some(())
    });
    // ...and neither `app`, whose image is not in, nor `later`, which
    // waits for `app` to be Ready.
    assert!(
        node.exec(&["test", "-e", "/import.pid"]),
        "the import still runs"
    );
    assert!(!applied("app"), "app was applied before its image was in");
    assert!(!applied("later"), "later was applied before app was Ready");
    run.interrupt(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    assert_eq!(
        done.phases(),
        [
            "preflight",
            "images",
            "cluster",
            "load",
            "deploy",
            "gather",
            "teardown"
        ]
    );
    assert_eq!(done.outcomes()["load"], "interrupted");
    assert_eq!(done.outcomes()["deploy"], "interrupted");
    assert!(!applied("app") && !applied("later"));
}

#[test]
fn sigint_during_deploy_gathers_a_complete_bundle_then_tears_down() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(
        Api {
            hold_apply: true,
            ..Api::default()
        },
        NO_IMAGES,
        "",
        ONE_SUITE,
    );
    let mut run = standin.start(&[]);
    run.wait_phase("deploy");
    wait_until("the apply to reach the API server", || {
        standin
            .requests()
            .iter()
            .any(|r| r.method == "PATCH")
            .then_some(())
    });
    run.interrupt(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    assert_eq!(
        done.phases(),
        [
            "preflight",
            "images",
            "cluster",
            "load",
            "deploy",
            "gather",
            "teardown"
        ]
    );
    assert_eq!(done.outcomes()["gather"], "ok");
    let (published, partial) = standin.bundles();
    assert_eq!(published.len(), 1, "{partial:?}");
    let unpacked = bundle::assert_complete(&published[0]);
    let files = bundle::files_under(unpacked.path());
    // The lane's namespace, with the crash-looping pod's current and
    // previous logs, and the stand-in node's journal from `kind export logs`.
    for want in [
        "namespaces/fx/v1/pod/crashloop.yaml",
        "namespaces/fx/pods/crashloop/app/app/logs/current.log",
        "namespaces/fx/pods/crashloop/app/app/logs/previous.log",
        "kind/kind-version.txt",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(want)),
            "{want} missing from {files:#?}"
        );
    }
    // Every collector answered: nothing is missing from the bundle.
    assert!(
        !files.iter().any(|f| f.ends_with("collector-errors.txt")),
        "{files:#?}"
    );
    let previous_asked = standin
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/log") && r.param("previous").as_deref() == Some("true"));
    assert!(previous_asked);
    assert_eq!(standin.deletions(), [standin.deleted_with(1)]);
}

#[test]
fn sigterm_during_the_suites_stops_them_gathers_and_tears_down() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(
        Api::default(),
        NO_IMAGES,
        "",
        "      long: { command: [\"sh\", \"-c\", \"echo $$ > suite.pid; exec sleep 3600\"] }\n",
    );
    let mut run = standin.start(&[]);
    run.wait_phase("suites");
    let pid_file = standin.root().join("suite.pid");
    let suite = wait_until("the suite to start", || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
    });
    run.interrupt(Signal::SIGTERM);
    let done = run.finish();
    done.assert_interrupted();
    assert!(!alive(Pid::from_raw(suite)), "the suite still runs");
    assert_eq!(
        done.phases(),
        [
            "preflight",
            "images",
            "cluster",
            "load",
            "deploy",
            "suites",
            "gather",
            "teardown"
        ]
    );
    assert_eq!(done.outcomes()["gather"], "ok");
    let (published, _) = standin.bundles();
    assert_eq!(published.len(), 1);
    let unpacked = bundle::assert_complete(&published[0]);
    // The suite's own namespace was gathered too.
    let files = bundle::files_under(unpacked.path());
    assert!(
        files
            .iter()
            .any(|f| f.contains("namespaces/long") && f.ends_with("v1/pod/crashloop.yaml")),
        "{files:#?}"
    );
    assert_eq!(standin.deletions(), [standin.deleted_with(1)]);

    // The run's story is in the bundle: its whole event stream up to the
    // gather, exactly as --output json printed it, the interrupt included.
    let root = assert_story(unpacked.path());
    let recorded = recorded_events(&root);
    let gather_at = done
        .events
        .iter()
        .position(|e| e["event"] == "phase_started" && e["phase"] == "gather")
        .unwrap();
    assert_eq!(recorded, done.events[..=gather_at]);
    assert_eq!(recorded[0]["event"], "run_started");
    assert!(recorded.iter().any(|e| {
        e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("interrupted"))
    }));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(
            "- **result**: interrupted by SIGINT/SIGTERM (exit code 130, as of the gather)\n"
        ),
        "{readme}"
    );
    assert!(readme.contains("- **failed suites**: long\n"), "{readme}");
    let suites = std::fs::read_to_string(root.join("harness/suites.txt")).unwrap();
    assert!(suites.contains("FAIL long"), "{suites}");
    assert!(suites.contains("interrupted"), "{suites}");
    let junit = std::fs::read_to_string(root.join("harness/junit.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"long\""), "{junit}");
}

/// Lanes run at once all hear an interrupt: each stops its suite, gathers
/// and tears down its own cluster, and a lane still waiting for a slot
/// never starts. The run says so in its summary and exits 130.
#[test]
fn sigterm_reaches_every_lane_running_and_starts_no_more() {
    if !node::engine_available() {
        return;
    }
    let long = "      long: { command: [\"sh\", \"-c\", \"echo $$ > suite-$HARNESS_NAMESPACE.pid; exec sleep 3600\"] }\n";
    let standin = StandIn::new(Api::default(), NO_IMAGES, "", long);
    // Two more lanes, each on a cluster of its own name.
    let lane_file = standin.root().join("harness.yaml");
    let mut text = std::fs::read_to_string(&lane_file).unwrap();
    for lane in ["second", "third"] {
        text.push_str(&format!(
            "  {lane}:\n    cluster: {{ name: {}-{lane} }}\n    components: [app]\n    suites:\n{long}",
            standin.cluster
        ));
    }
    std::fs::write(&lane_file, text).unwrap();
    let mut run = standin.start(&[
        "--lane",
        "main",
        "--lane",
        "second",
        "--lane",
        "third",
        "--lanes-at-once",
        "2",
    ]);
    let suites = run.wait_until("both running lanes' suites to start", || {
        let pids: Vec<i32> = std::fs::read_dir(standin.root())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("suite-"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
            .collect();
        (pids.len() == 2).then_some(pids)
    });
    run.interrupt(Signal::SIGTERM);
    let done = run.finish();
    assert_eq!(done.code, Some(130), "{}", done.stderr);
    for pid in suites {
        assert!(!alive(Pid::from_raw(pid)), "a suite still runs");
    }
    // Each running lane was gathered, then its own cluster deleted.
    let mut deleted = standin.deletions();
    deleted.sort();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(deleted[0].starts_with(&format!("deleted {} with", standin.cluster)));
    assert!(deleted[1].starts_with(&format!("deleted {}-second with", standin.cluster)));
    let (published, partial) = standin.bundles();
    assert_eq!((published.len(), partial.len()), (2, 0), "{published:?}");
    for lane in ["main", "second"] {
        let finished = done
            .events
            .iter()
            .find(|e| e["event"] == "finished" && e["lane"] == lane)
            .unwrap_or_else(|| panic!("lane {lane} did not finish: {:#?}", done.events));
        assert_eq!(finished["exit_code"], 130);
    }
    assert!(
        !done.events.iter().any(|e| e["lane"] == "third"),
        "third started"
    );
    let last = done.events.last().unwrap();
    assert_eq!(last["event"], "lanes_finished", "{last}");
    assert_eq!(last["lanes"][2]["lane"], "third");
    assert_eq!(last["lanes"][2]["result"], "not started: interrupted");
    assert_eq!(last["lanes"][2]["run_id"], Value::Null);
}

#[test]
fn sigint_during_gather_lets_it_finish_then_tears_down() {
    if !node::engine_available() {
        return;
    }
    let (release, held) = oneshot::channel();
    let standin = StandIn::failing_with_held_log(held);
    let mut run = standin.start(&[]);
    run.wait_phase("gather");
    wait_until("gather to ask for a log", || standin.log_asked());
    run.interrupt(Signal::SIGINT);
    // The harness has the interrupt; gather still waits on this log.
    release.send((200, LOG_LINE.to_owned())).unwrap();
    let done = run.finish();
    done.assert_interrupted();
    assert_eq!(done.outcomes()["gather"], "ok");
    let (published, _) = standin.bundles();
    assert_eq!(published.len(), 1);
    bundle::assert_complete(&published[0]);
    assert_eq!(standin.deletions(), [standin.deleted_with(1)]);
}

#[test]
fn the_deadline_stops_the_suites_in_time_to_gather_and_tear_down() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(
        Api::default(),
        NO_IMAGES,
        "",
        "      long: { command: [\"sh\", \"-c\", \"echo $$ > suite.pid; exec sleep 3600\"] }\n",
    );
    // Gather keeps its 5 minutes and teardown 2: with 7m05s left, the
    // suites get about 5 seconds.
    let started = Instant::now();
    let run = standin.start(&["--deadline", "7m5s"]);
    let done = run.finish();
    assert_eq!(done.code, Some(7), "{}\n{:#?}", done.stderr, done.events);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the suites were not stopped at their share of the deadline"
    );
    let suite: i32 = std::fs::read_to_string(standin.root().join("suite.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(Pid::from_raw(suite)), "the suite still runs");
    assert_eq!(
        done.phases(),
        [
            "preflight",
            "images",
            "cluster",
            "load",
            "deploy",
            "suites",
            "gather",
            "teardown"
        ]
    );
    assert_eq!(done.outcomes()["gather"], "ok");
    let (published, _) = standin.bundles();
    assert_eq!(published.len(), 1);
    bundle::assert_complete(&published[0]);
    assert_eq!(standin.deletions(), [standin.deleted_with(1)]);
}

/// A suite in the shape of a Ginkgo run: one spec fails before an
/// infrastructure incident and two after it, and it writes its JUnit report
/// as Ginkgo v2's `--junit-report` does — local times without an offset, a
/// spec timeline in each test case's `system-err`. It waits for the file
/// `go` (the test creates it once the harness has reported the incident).
const GINKGO_SUITE: &str = r#"#!/bin/sh
clock() { date '+%m/%d/%y %H:%M:%S.%3N'; }
suite_start=$(date '+%Y-%m-%dT%H:%M:%S')
before=$(clock)
touch started
i=0
while [ ! -e go ]; do
  i=$((i + 1)); [ "$i" -gt 1200 ] && { echo "never told to go on" >&2; exit 3; }
  sleep 0.05
done
after=$(clock)
spec() { # name line enter
  cat <<XML
          <testcase name="[It] Audit $1 [audit]" classname="Audit E2E Suite" status="failed" time="0.2">
              <failure message="Post &#34;http://localhost:28090/api/v1/audit/events&#34;: connection refused" type="failed">[FAILED] Post &#34;http://localhost:28090/api/v1/audit/events&#34;: connection refused&#xA;In [It] at: /work/test/e2e/audit/audit_test.go:$2 @ $3&#xA;</failure>
              <system-err>&gt; Enter [It] $1 - /work/test/e2e/audit/audit_test.go:$2 @ $3&#xA;[FAILED] Post &#34;http://localhost:28090/api/v1/audit/events&#34;: connection refused&#xA;&lt; Exit [It] $1 - /work/test/e2e/audit/audit_test.go:$2 @ $3 (200ms)&#xA;</system-err>
          </testcase>
XML
}
{
  echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo '  <testsuites tests="3" disabled="0" errors="0" failures="3" time="0.6">'
  echo "      <testsuite name=\"Audit E2E Suite\" package=\"/work/test/e2e/audit\" tests=\"3\" disabled=\"0\" skipped=\"0\" errors=\"0\" failures=\"3\" time=\"0.6\" timestamp=\"$suite_start\">"
  echo '          <properties>'
  echo '              <property name="SuiteSucceeded" value="false"></property>'
  echo '              <property name="ParallelTotal" value="1"></property>'
  echo '          </properties>'
  spec "stores an event before the crash" 30 "$before"
  spec "stores a batch after the crash" 42 "$after"
  spec "pages through events after the crash" 54 "$after"
  echo '      </testsuite>'
  echo '  </testsuites>'
} > "$HARNESS_ARTIFACTS/junit-audit.xml"
echo "0 passed, 3 failed"
exit 1
"#;

/// The Ginkgo timeline time of the spec named `name` in `junit`, written in
/// the zone UTC+05:30 (the `TZ` of the run), as a UTC timestamp.
fn enter_time(junit: &str, name: &str) -> String {
    let marker = format!("&gt; Enter [It] {name} - ");
    let at = junit.find(&marker).unwrap() + marker.len();
    let rest = &junit[at..];
    let when = &rest[rest.find(" @ ").unwrap() + 3..][..21];
    let local = jiff::civil::DateTime::strptime("%m/%d/%y %H:%M:%S%.f", when).unwrap();
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 1800).unwrap());
    zone.to_timestamp(local).unwrap().to_string()
}

#[test]
fn a_failed_run_tells_its_story_and_harness_report_prints_its_report_again() {
    if !node::engine_available() {
        return;
    }
    let (send_watch_event, pod_watch) = oneshot::channel();
    let standin = StandIn::new(
        Api {
            pod_watch: Some(pod_watch),
            ..Api::default()
        },
        NO_IMAGES,
        "",
        "      audit: { command: [sh, ginkgo-suite.sh] }\n",
    );
    std::fs::write(standin.root().join("ginkgo-suite.sh"), GINKGO_SUITE).unwrap();
    // Local times a long way from UTC, to see them read in the right zone.
    let mut run = standin.harness_text(&["test"], "XST-5:30");
    run.wait_until("the suite's first spec", || {
        standin.root().join("started").exists().then_some(())
    });
    run.wait_until("the pod watch of the suites' phase", || {
        standin
            .requests()
            .iter()
            .any(|r| r.is_watch() && r.path == "/api/v1/namespaces/fx/pods")
            .then_some(())
    });
    // A pod is OOMKilled while the suite runs.
    let mut pod: Value =
        serde_json::from_str(&fake_api::fixture("pod-oomkilled/pod.oom.json")).unwrap();
    pod["metadata"]["resourceVersion"] = json!("7");
    let event = json!({"type": "MODIFIED", "object": pod}).to_string() + "\n";
    send_watch_event.send((200, event)).unwrap();
    run.wait_for("the incident", |l| {
        l.contains("infra     - OOMKilled (oom;")
    });
    std::fs::write(standin.root().join("go"), "").unwrap();
    let (code, stdout, stderr) = run.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    let printed = &stderr[stderr.rfind("\nharness run ").expect("the report") + 1..];

    let (published, _) = standin.bundles();
    assert_eq!(published.len(), 1);
    let unpacked = bundle::assert_complete(&published[0]);
    let root = assert_story(unpacked.path());
    // The test cases were read from the suite's own JUnit, placed by their
    // Ginkgo timelines read in the run's zone, and attributed to the incident.
    let junit = std::fs::read_to_string(root.join("harness/junit.xml")).unwrap();
    let cases: Vec<Value> = recorded_events(&root)
        .into_iter()
        .filter(|e| e["event"] == "test_case_failed")
        .collect();
    let placed: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|c| {
            (
                c["case"].as_str().unwrap(),
                c["placed"].as_str().unwrap(),
                c["started"].as_str().unwrap(),
            )
        })
        .collect();
    let before = enter_time(&junit, "stores an event before the crash");
    let after = enter_time(&junit, "stores a batch after the crash");
    assert_eq!(
        placed,
        [
            (
                "[It] Audit stores an event before the crash [audit]",
                "timeline",
                before.as_str()
            ),
            (
                "[It] Audit stores a batch after the crash [audit]",
                "timeline",
                after.as_str()
            ),
            (
                "[It] Audit pages through events after the crash [audit]",
                "timeline",
                after.as_str()
            ),
        ]
    );
    let timeline =
        std::fs::read_to_string(root.join("harness/infrastructure-timeline.txt")).unwrap();
    assert!(
        timeline.contains("    2 of 3 failed test cases started after this incident:\n")
            && timeline.contains("audit: [It] Audit stores a batch after the crash [audit]\n")
            && timeline
                .contains("audit: [It] Audit pages through events after the crash [audit]\n")
            && !timeline.contains("before the crash"),
        "{timeline}"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for want in [
        "- **result**: one or more suites (or post-suite hooks) failed or timed out (exit code 1, as of the gather)\n",
        " — 2 of 3 failures after it\n",
        "- **failed suites**: audit\n",
        "- **failed test cases** (3):\n",
        "`audit`: [It] Audit stores an event before the crash [audit]\n",
    ] {
        assert!(readme.contains(want), "{want:?} not in {readme}");
    }

    // `harness report` over the bundle prints what the run printed, except
    // what came after the gather began: the gather and teardown phases, the
    // bundle's own path, and a note that says so.
    let report = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("report")
        .arg(&published[0])
        .env_remove("HARNESS_CONFIG")
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let reprinted = String::from_utf8(report.stdout).unwrap();
    let known: String = printed
        .lines()
        .filter(|l| {
            !l.starts_with("  gather ")
                && !l.starts_with("  teardown ")
                && !l.starts_with("  bundle ")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let note = "(as of the gather: the gather itself, post-suite hooks and teardown came after it and are not in the bundle)\n";
    assert_eq!(
        reprinted,
        format!("{known}{note}"),
        "printed by the run:\n{printed}"
    );
    assert!(printed.contains("\n  bundle "), "{printed}");
    assert!(
        printed.contains("    2 of 3 failed test cases started after this incident:\n"),
        "{printed}"
    );
    // The same as JSON, from the unpacked bundle.
    let json = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["report", "--output", "json"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(json.status.success());
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        json["outcome"],
        json!({"exit_code": 1, "result": "one or more suites (or post-suite hooks) failed or timed out", "as_of": "gather"})
    );
    assert_eq!(json["incidents"][0]["what"], "OOMKilled");
    assert_eq!(
        json["incidents"][0]["cases_after"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(json["cases"].as_array().unwrap().len(), 3);
}

// ------------------------------------------------------------------ twice

#[test]
fn a_second_sigint_during_gather_skips_to_teardown_and_publishes_nothing() {
    if !node::engine_available() {
        return;
    }
    // The log request is never answered: gather would wait its whole budget.
    let (_never, held) = oneshot::channel::<(u16, String)>();
    let standin = StandIn::failing_with_held_log(held);
    let mut run = standin.start(&[]);
    run.wait_phase("gather");
    wait_until("gather to ask for a log", || standin.log_asked());
    run.interrupt(Signal::SIGINT);
    run.signal(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    assert_eq!(done.outcomes()["gather"], "interrupted");
    // Nothing at all: the cut-short gather removed its staging directory.
    assert_eq!(standin.bundles(), (vec![], vec![]));
    assert_eq!(standin.deletions(), [standin.deleted_with(0)]);
}

/// The case that needs no engine: an existing cluster whose API server
/// accepts connections and never answers.
#[test]
fn sigint_twice_against_a_silent_api_server_exits_130_without_a_bundle() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kubeconfig.yaml"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: silent\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: silent\n  context: {{cluster: silent, user: u}}\ncurrent-context: silent\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("harness.yaml"),
        "cluster:\n  provider: existing\n  existing: { kubeconfig: kubeconfig.yaml }\npreflight: { min_free_disk: 1MiB }\ncomponents:\n  app: { manifests: [app.yaml] }\nlanes:\n  main:\n    components: [app]\n    suites:\n      s: { command: [\"true\"] }\n",
    )
    .unwrap();
    let mut run = Run::spawn(
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .current_dir(dir.path())
            .args(["test", "--output", "json"]),
    );
    run.wait_phase("deploy");
    run.interrupt(Signal::SIGINT);
    run.wait_phase("gather");
    run.interrupt(Signal::SIGINT);
    let done = run.finish();
    done.assert_interrupted();
    assert_eq!(
        done.phases(),
        [
            "preflight",
            "images",
            "cluster",
            "load",
            "deploy",
            "gather",
            "teardown"
        ]
    );
    assert_eq!(done.outcomes()["gather"], "interrupted");
    let runs = dir.path().join(".harness/runs");
    for run in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
        let left = entries(&run.path().join("gather"));
        assert!(
            left.is_empty(),
            "gather was cut short, yet {left:?} is left"
        );
    }
    // The run brought the lane up, so its state is forgotten (the existing
    // cluster itself is never deleted).
    assert!(!dir.path().join(".harness/state/main.json").exists());
}

// ------------------------------------------------------------------ panics

const PANIC: &str = "HARNESS_TEST_PANIC";

/// The bundle's record of the run's panics.
fn panics_in(bundle: &Path) -> String {
    let dir = bundle::assert_complete(bundle);
    let file = bundle::files_under(dir.path())
        .into_iter()
        .find(|f| f.ends_with("harness/panics.txt"))
        .unwrap_or_else(|| {
            panic!(
                "no harness/panics.txt in {:?}",
                bundle::files_under(dir.path())
            )
        });
    std::fs::read_to_string(dir.path().join(file)).unwrap()
}

#[test]
fn a_panic_during_deploy_still_gathers_a_complete_bundle_then_tears_down() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(Api::default(), NO_IMAGES, "", ONE_SUITE);
    let done = standin
        .harness_env(&["test"], &[(PANIC, "deploy")])
        .finish();
    done.assert_panicked();
    assert_eq!(
        done.phases(),
        [
            "preflight",
            "images",
            "cluster",
            "load",
            "deploy",
            "gather",
            "teardown"
        ]
    );
    assert_eq!(done.outcomes()["deploy"], "panicked");
    assert_eq!(done.outcomes()["gather"], "ok");
    assert!(
        done.notices().iter().any(|n| n
            .starts_with("up: up stopped by a panic: harness panicked at src/deploy/stage.rs:")
            && n.contains("injected panic at `deploy`")),
        "{:?}",
        done.notices()
    );
    let (published, partial) = standin.bundles();
    assert_eq!(published.len(), 1, "{partial:?}");
    assert!(partial.is_empty(), "{partial:?}");
    assert!(panics_in(&published[0]).contains("injected panic at `deploy`"));
    // Teardown came after the bundle was published.
    assert_eq!(standin.deletions(), [standin.deleted_with(1)]);
    assert!(!standin.root().join(".harness/state/main.json").exists());
}

#[test]
fn a_panic_in_a_task_nobody_awaits_fails_a_green_run_and_is_gathered() {
    if !node::engine_available() {
        return;
    }
    // The task forwarding deploy's progress dies; deploy and the suites
    // do not notice, the record does.
    let standin = StandIn::new(Api::default(), NO_IMAGES, "", ONE_SUITE);
    let done = standin
        .harness_env(&["test"], &[(PANIC, "deploy-events")])
        .finish();
    done.assert_panicked();
    let outcomes = done.outcomes();
    assert_eq!(outcomes["deploy"], "ok");
    assert_eq!(outcomes["suites"], "ok");
    assert_eq!(outcomes["gather"], "ok", "a run with a panic is gathered");
    assert!(
        done.notices()
            .iter()
            .any(|n| n.contains("injected panic at `deploy-events`")
                && n.ends_with("the run went on without that task")),
        "{:?}",
        done.notices()
    );
    let (published, _) = standin.bundles();
    assert_eq!(published.len(), 1);
    assert!(panics_in(&published[0]).contains("injected panic at `deploy-events`"));
    assert_eq!(standin.deletions(), [standin.deleted_with(1)]);
}

#[test]
fn a_panic_in_gather_leaves_no_partial_bundle_and_still_tears_down() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(
        Api::default(),
        NO_IMAGES,
        "",
        "      failing: { command: [\"false\"] }\n",
    );
    let done = standin
        .harness_env(&["test"], &[(PANIC, "gather")])
        .finish();
    done.assert_panicked();
    assert_eq!(done.outcomes()["gather"], "panicked");
    assert_eq!(done.phases().last().map(String::as_str), Some("teardown"));
    // A bundle is there whole or not at all.
    assert_eq!(standin.bundles(), (vec![], vec![]));
    assert_eq!(standin.deletions(), [standin.deleted_with(0)]);
}

#[test]
fn a_panic_in_teardown_says_the_cluster_is_left_and_down_deletes_it() {
    if !node::engine_available() {
        return;
    }
    let standin = StandIn::new(Api::default(), NO_IMAGES, "", ONE_SUITE);
    let done = standin
        .harness_env(&["test"], &[(PANIC, "teardown")])
        .finish();
    done.assert_panicked();
    assert_eq!(done.outcomes()["teardown"], "panicked");
    assert!(standin.deletions().is_empty());
    assert!(
        done.notices().iter().any(|n| n.starts_with(&format!(
            "cluster {} may still exist (teardown panicked",
            standin.cluster
        )) && n.ends_with("`harness down --lane main` deletes it")),
        "{:?}",
        done.notices()
    );
    // The state file still knows the cluster: `down` finishes the job.
    assert!(standin.root().join(".harness/state/main.json").is_file());
    let down = standin.harness(&["down"]).finish();
    assert_eq!(down.code, Some(0), "{}", down.stderr);
    assert_eq!(standin.deletions(), [standin.deleted_with(0)]);
}
