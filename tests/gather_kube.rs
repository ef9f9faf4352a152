//! Gather through the kube adapter against a scripted API server.
//!
//! The collector and the bundle writer are tested over a `Source` fake in
//! `src/gather/`; what only shows at this level is what `KubeSource` sends
//! (paths, `container=`, `previous=true`, `sinceSeconds`) and how it copes
//! with real JSON: discovery documents, lists, logs, failures. The server
//! answers from the objects captured from a live kind cluster under
//! `tests/fixtures/k8s` — its discovery is rebuilt from the captured
//! `kubectl api-resources -o wide` — plus a Secret whose value the pods'
//! logs print, to prove it is scrubbed everywhere. The gather itself is
//! `harness::gather::stage::gather`, the code path of `harness gather`.

mod fake_api;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use fake_api::{Log, Reply, Req, fixture, list, spawn};
use serde_json::{Value, json};
use sha2::Digest as _;

const NS: &str = "fx";
const SECRET: &str = "s3cr3t-value-1234";
const BUNDLE: &str = "must-gather-l-run1";

fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap()
}

fn items(path: &str) -> Vec<Value> {
    fixture_json(path)["items"].as_array().unwrap().clone()
}

fn secret_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(SECRET)
}

/// One resource of the captured `kubectl api-resources -o wide`.
#[derive(Clone, Debug)]
struct ApiRes {
    plural: String,
    group_version: String,
    namespaced: bool,
    kind: String,
    verbs: Vec<String>,
}

impl ApiRes {
    fn collection(&self, namespace: Option<&str>) -> String {
        let root = if self.group_version.contains('/') {
            format!("/apis/{}", self.group_version)
        } else {
            format!("/api/{}", self.group_version)
        };
        match namespace {
            Some(ns) => format!("{root}/namespaces/{ns}/{}", self.plural),
            None => format!("{root}/{}", self.plural),
        }
    }
}

/// The discovery of the captured cluster (Kubernetes 1.24, kind).
fn captured_api_resources() -> Vec<ApiRes> {
    fixture("cluster/api-resources-wide.txt")
        .lines()
        .skip(1)
        .map(|line| {
            let (fields, verbs) = line.split_once('[').unwrap();
            let fields: Vec<&str> = fields.split_whitespace().collect();
            // SHORTNAMES may be empty: 4 or 5 columns before the verbs.
            let (plural, rest) = (fields[0], &fields[fields.len() - 3..]);
            ApiRes {
                plural: plural.to_owned(),
                group_version: rest[0].to_owned(),
                namespaced: rest[1] == "true",
                kind: rest[2].to_owned(),
                verbs: verbs
                    .trim_end_matches(']')
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            }
        })
        .collect()
}

fn resource_list(group_version: &str, resources: &[&ApiRes]) -> String {
    let resources: Vec<Value> = resources
        .iter()
        .map(|r| {
            json!({"name": r.plural, "singularName": "", "namespaced": r.namespaced,
                   "kind": r.kind, "verbs": r.verbs})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1",
           "groupVersion": group_version, "resources": resources})
    .to_string()
}

fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::Json(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": message, "reason": reason, "code": code})
        .to_string(),
    )
}

/// How a log request is answered.
#[derive(Clone)]
enum LogReply {
    Text(String),
    Fail(u16),
    /// A status with this code and message.
    Status(u16, String),
    /// Never answered; the waiter is told when the request arrives.
    Hold,
}

/// The scripted cluster: what every path answers.
struct Cluster {
    api: Vec<ApiRes>,
    /// Extra groups advertised under `/apis` whose discovery fails (an
    /// aggregated API that is down): group/version → status.
    broken_groups: Vec<(String, u16)>,
    /// Collection path → items.
    objects: HashMap<String, Vec<Value>>,
    /// Paths that answer 500.
    failing: Vec<String>,
    /// (pod, container, previous) → reply.
    logs: HashMap<(String, String, bool), LogReply>,
    /// Told when a held request arrives.
    held: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

fn res<'a>(api: &'a [ApiRes], group_version: &str, plural: &str) -> &'a ApiRes {
    api.iter()
        .find(|r| r.group_version == group_version && r.plural == plural)
        .unwrap_or_else(|| panic!("{group_version} {plural} not in discovery"))
}

impl Cluster {
    /// The captured cluster: pods in every interesting state, a Secret with
    /// a known value that a pod reads through `secretKeyRef` and prints.
    fn captured() -> Self {
        let api = captured_api_resources();
        let mut objects = HashMap::new();
        let mut put = |gv: &str, plural: &str, namespaced: bool, items: Vec<Value>| {
            let path = res(&api, gv, plural).collection(namespaced.then_some(NS));
            objects.entry(path).or_insert_with(Vec::new).extend(items);
        };

        // The captured Secret, with one more key: a value long enough to be
        // scrubbed (the captured "value" is below the scrub threshold).
        let mut secret = fixture_json("pod-create-container-config-error/secret.app-secret.json");
        secret["data"]["password"] = secret_b64().into();
        put("v1", "secrets", true, vec![secret]);

        // The crash-looping pod reads it from the Secret, like the config
        // error pod (captured with the same `secretKeyRef` shape).
        let mut crashloop = fixture_json("pod-crashloop/pod.crashloop.json");
        crashloop["spec"]["containers"][0]["env"] = json!([{"name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}}]);
        let pods = vec![
            crashloop,
            fixture_json("pod-init-crashloop/pod.init-crash.json"),
            fixture_json("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json"),
            fixture_json("pod-create-container-config-error/pod.config-error-missing-key.json"),
        ];
        put("v1", "pods", true, pods);
        // Someone pasted the Secret's manifest into a ConfigMap: the encoded
        // value leaks there.
        put(
            "v1",
            "configmaps",
            true,
            vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "pasted", "namespace": NS},
                "data": {"secret.yaml": format!("data:\n  password: {}\n", secret_b64())}})],
        );
        put(
            "v1",
            "services",
            true,
            vec![fixture_json("deploy-healthy/service.web.json")],
        );
        // Served newest first, to see the bundle put them in reading order,
        // with one more written through events.k8s.io as newer schedulers
        // do: no lastTimestamp, a microsecond eventTime.
        let mut events = items("cluster/events.fx.json");
        events.push(scheduler_event(&events));
        events.reverse();
        put("v1", "events", true, events);
        // A server-side-apply response: it carries managedFields.
        put(
            "apps/v1",
            "deployments",
            true,
            vec![
                fixture_json("deploy-healthy/deployment.web.json"),
                fixture_json("server-side-apply/raw-patch-same-manager.response.json"),
            ],
        );
        put(
            "apps/v1",
            "replicasets",
            true,
            vec![fixture_json(
                "deploy-healthy/replicaset.web-57f64b4f4d.json",
            )],
        );
        put(
            "batch/v1",
            "jobs",
            true,
            vec![fixture_json("job-failed/job.job-fail.json")],
        );
        // No Widget was captured; this one follows the captured CRD's schema.
        put(
            "example.com/v1",
            "widgets",
            true,
            vec![json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "small", "namespace": NS, "uid": "0c1e0d6e-5b7a-4c1e-9a57-1f2f0f6b7c01"},
                "spec": {"size": 1}})],
        );
        put("v1", "nodes", false, items("cluster/nodes.json"));
        // Cluster-scoped objects the lane applied: its namespace and a
        // ClusterRole (none was captured; this one is the minimal shape).
        put(
            "v1",
            "namespaces",
            false,
            vec![fixture_json("cluster/namespace.fx.json")],
        );
        put(
            "rbac.authorization.k8s.io/v1",
            "clusterroles",
            false,
            vec![
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "app-reader", "uid": "5d0c2a64-0a8e-4d6c-9a0e-3f1d8f7a6b21"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
            ],
        );
        put(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            false,
            ["widgets", "gizmos", "doohickeys"]
                .iter()
                .map(|n| fixture_json(&format!("crd/crd.{n}.example.com.json")))
                .collect(),
        );

        let echo = format!("connecting to db with password {SECRET}\n");
        let mut logs = HashMap::new();
        let mut log = |pod: &str, container: &str, previous: bool, text: String| {
            logs.insert(
                (pod.to_owned(), container.to_owned(), previous),
                LogReply::Text(text),
            );
        };
        log(
            "crashloop",
            "app",
            false,
            // Two real runs, told apart by their first line (14:19:44 now,
            // 14:18:14 before).
            fixture("pod-crashloop/logs.current.while-terminated.txt") + &echo,
        );
        log(
            "crashloop",
            "app",
            true,
            fixture("pod-crashloop/logs.previous.txt") + &echo,
        );
        log(
            "init-crash",
            "migrate",
            false,
            fixture("pod-init-crashloop/logs.init-migrate.current.txt"),
        );
        log(
            "init-crash",
            "migrate",
            true,
            fixture("pod-init-crashloop/logs.init-migrate.previous.txt"),
        );
        log("web-57f64b4f4d-5bqnc", "web", false, access_log(20));
        Cluster {
            api,
            broken_groups: Vec::new(),
            objects,
            failing: Vec::new(),
            logs,
            held: None,
        }
    }

    fn answer(&self, req: &Req) -> Reply {
        if req.method != "GET" {
            return status(405, "MethodNotAllowed", "the fake is read-only");
        }
        if self.failing.contains(&req.path) {
            return status(500, "InternalError", "etcdserver: request timed out");
        }
        let path = req.path.as_str();
        if let Some(pod) = path
            .strip_prefix(&format!("/api/v1/namespaces/{NS}/pods/"))
            .and_then(|rest| rest.strip_suffix("/log"))
        {
            return self.log(req, pod);
        }
        if path == "/api" {
            return Reply::Json(
                200,
                json!({"kind": "APIVersions", "versions": ["v1"],
                       "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "172.18.0.3:6443"}]})
                .to_string(),
            );
        }
        if path == "/apis" {
            return Reply::Json(200, self.groups());
        }
        if let Some(gv) = path
            .strip_prefix("/api/")
            .or_else(|| path.strip_prefix("/apis/"))
        {
            if let Some((_, code)) = self.broken_groups.iter().find(|(g, _)| g == gv) {
                return status(
                    *code,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                );
            }
            let of_gv: Vec<&ApiRes> = self.api.iter().filter(|r| r.group_version == gv).collect();
            if !of_gv.is_empty() {
                return Reply::Json(200, resource_list(gv, &of_gv));
            }
        }
        // One cluster-scoped object by name.
        for r in self.api.iter().filter(|r| !r.namespaced) {
            if let Some(name) = path
                .strip_prefix(&r.collection(None))
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|name| !name.contains('/'))
            {
                let found = self.objects.get(&r.collection(None)).and_then(|items| {
                    items
                        .iter()
                        .find(|o| o["metadata"]["name"] == name)
                        .cloned()
                });
                return match found {
                    Some(object) => Reply::Json(200, object.to_string()),
                    None => fake_api::not_found(path),
                };
            }
        }
        // Other namespaces (a suite's) exist and are empty.
        let other_ns = path
            .split_once("/namespaces/")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(ns, _)| ns);
        for r in &self.api {
            for ns in [Some(NS), other_ns, None] {
                if r.collection(ns) == path && r.namespaced == ns.is_some() {
                    assert!(
                        r.verbs.iter().any(|v| v == "list"),
                        "{path} is not listable"
                    );
                    let items = self.objects.get(path).cloned().unwrap_or_default();
                    return Reply::Json(200, list(&format!("{}List", r.kind), &items));
                }
            }
        }
        fake_api::not_found(path)
    }

    fn groups(&self) -> String {
        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let broken = self.broken_groups.iter().map(|(gv, _)| gv);
        for gv in self.api.iter().map(|r| &r.group_version).chain(broken) {
            if let Some((group, version)) = gv.split_once('/') {
                let v = versions.entry(group.to_owned()).or_default();
                if !v.contains(&version.to_owned()) {
                    v.push(version.to_owned());
                }
            }
        }
        let groups: Vec<Value> = versions
            .iter()
            .map(|(group, versions)| {
                let vs: Vec<Value> = versions
                    .iter()
                    .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                    .collect();
                json!({"name": group, "versions": vs, "preferredVersion": vs[0]})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}).to_string()
    }

    fn log(&self, req: &Req, pod: &str) -> Reply {
        let container = req.param("container").unwrap_or_default();
        let previous = req.param("previous").as_deref() == Some("true");
        match self
            .logs
            .get(&(pod.to_owned(), container.clone(), previous))
        {
            Some(LogReply::Text(text)) => Reply::Text(200, text.clone()),
            Some(LogReply::Fail(code)) => {
                status(*code, "InternalError", "unable to retrieve container logs")
            }
            Some(LogReply::Status(code, message)) => status(*code, "BadRequest", message),
            Some(LogReply::Hold) => {
                if let Some(tx) = &self.held {
                    let _ = tx.send(format!("{pod}/{container}/{previous}"));
                }
                Reply::Hold
            }
            None => status(
                400,
                "BadRequest",
                &format!(
                    "container \"{container}\" in pod \"{pod}\" is waiting to start: PodInitializing"
                ),
            ),
        }
    }

    fn serve(self) -> (kube::Client, Log) {
        let cluster = Arc::new(Mutex::new(self));
        spawn(move |req| cluster.lock().unwrap().answer(req))
    }
}

/// A captured FailedScheduling event as events.k8s.io writes it (no
/// lastTimestamp, a microsecond eventTime), half a second after the newest
/// captured event: as text, "…:38.500000Z" would sort before "…:38Z".
fn scheduler_event(captured: &[Value]) -> Value {
    let newest = captured
        .iter()
        .filter_map(|e| e["lastTimestamp"].as_str())
        .max()
        .unwrap();
    let mut e = captured
        .iter()
        .find(|e| e["reason"] == "FailedScheduling")
        .unwrap()
        .clone();
    e["metadata"]["name"] = "too-big.scheduler-event".into();
    e["lastTimestamp"] = Value::Null;
    e["firstTimestamp"] = Value::Null;
    e["eventTime"] = newest.replace('Z', ".500000Z").into();
    e["reportingComponent"] = "default-scheduler".into();
    e["action"] = "Scheduling".into();
    e
}

/// An event's time as the bundle should order it.
fn event_time(e: &Value) -> k8s_openapi::jiff::Timestamp {
    e["lastTimestamp"]
        .as_str()
        .or(e["eventTime"].as_str())
        .unwrap()
        .parse()
        .unwrap()
}

/// A healthy web server's access log, `kib` KiB of it.
fn access_log(kib: usize) -> String {
    let line = "10.245.1.1 - - [22/Nov/2026:14:20:01 +0000] \"GET /healthz HTTP/1.1\" 200 2\n";
    line.repeat(kib * 1024 / line.len() + 1)
}

/// A lane over the existing cluster, namespace `fx`, whose components
/// apply the captured CRD `widgets.example.com`.
fn project(dir: &Path) -> harness::config::Project {
    if dir.join("harness.yaml").exists() {
        return harness::config::load(&dir.join("harness.yaml")).unwrap();
    }
    std::fs::write(dir.join("kubeconfig"), "apiVersion: v1\nkind: Config\n").unwrap();
    std::fs::create_dir(dir.join("crds")).unwrap();
    std::fs::write(dir.join("crds/widgets.yaml"), fixture("crd/manifest.yaml")).unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {image: \"{{image.app}}\"}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: app-reader}\nrules: []\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("harness.yaml"),
        "\
namespace: fx
cluster:
  provider: existing
  existing: {kubeconfig: kubeconfig}
images:
  app: {pull: example.com/app:v1}
components:
  crds: {manifests: [crds/]}
  app: {manifests: [app.yaml], images: [app], depends_on: [crds]}
lanes:
  l: {components: [app]}
",
    )
    .unwrap();
    harness::config::load(&dir.join("harness.yaml")).unwrap()
}

struct Gather {
    /// Namespaces beyond the lane's (the suites').
    extra: Vec<String>,
    since: Option<Duration>,
    cap: Option<u64>,
    run_id: &'static str,
    /// What the run knew about itself.
    story: Option<harness::gather::story::Story>,
}

impl Default for Gather {
    fn default() -> Self {
        Gather {
            extra: Vec::new(),
            since: None,
            cap: None,
            run_id: "run1",
            story: None,
        }
    }
}

/// `harness gather` over `client`, into `<dir>/out`.
async fn gather(
    client: &kube::Client,
    dir: &Path,
    how: Gather,
) -> Result<harness::gather::Bundle, harness::run::StageFailure> {
    let project = project(dir);
    let lane = &project.lanes["l"];
    // The harness's own diagnosis quotes the value too (an env dump).
    let diagnosis = format!("crashloop: CrashLoopBackOff; env DB_PASSWORD={SECRET}\n");
    let ctx = harness::stage::Ctx::new(
        &project,
        lane,
        how.run_id,
        harness::report::bus::Bus::discard(),
    );
    let request = harness::gather::stage::Request {
        out: dir.join("out"),
        extra_namespaces: how.extra,
        harness_files: vec![("deploy-failure.txt".into(), diagnosis)],
        story: how.story.as_ref(),
        since: how.since,
        max_size: how.cap,
    };
    harness::gather::stage::gather(&ctx, client, request).await
}

/// Every file below `root`, by relative path (`/`-separated).
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Every file in a `.tar.gz`, by path inside it.
fn archive_files(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap());
    let mut tar = tar::Archive::new(gz);
    let mut out = BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(path, data);
        }
    }
    out
}

fn text(files: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    let bytes = files
        .get(path)
        .unwrap_or_else(|| panic!("{path} missing; have {:#?}", files.keys()));
    String::from_utf8(bytes.clone()).unwrap()
}

/// The log requests the server saw: (pod, container, previous, sinceSeconds).
fn log_requests(log: &Log) -> Vec<(String, String, bool, Option<String>)> {
    let prefix = format!("/api/v1/namespaces/{NS}/pods/");
    let mut out: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let pod = r.path.strip_prefix(&prefix)?.strip_suffix("/log")?;
            Some((
                pod.to_owned(),
                r.param("container").unwrap_or_default(),
                match r.param("previous").as_deref() {
                    None => false,
                    Some("true") => true,
                    Some(other) => panic!("previous={other}"),
                },
                r.param("sinceSeconds"),
            ))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_bundle_is_laid_out_like_oc_adm_inspect_and_crust_gather() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = Cluster::captured().serve();
    let bundle = gather(&client, dir.path(), Gather::default())
        .await
        .unwrap();
    assert!(bundle.failures.is_empty(), "{:?}", bundle.failures);
    assert_eq!(bundle.dir, dir.path().join("out").join(BUNDLE));
    let files = files(&bundle.dir);

    // Objects: crust-gather's namespaces/<ns>/<apiVersion>/<kind>/<name>.yaml,
    // built-in kinds and the project's custom resource alike.
    for path in [
        "namespaces/fx/v1/pod/crashloop.yaml",
        "namespaces/fx/v1/pod/init-crash.yaml",
        "namespaces/fx/v1/pod/web-57f64b4f4d-5bqnc.yaml",
        "namespaces/fx/v1/pod/config-error-missing-key.yaml",
        "namespaces/fx/v1/secret/app-secret.yaml",
        "namespaces/fx/v1/configmap/pasted.yaml",
        "namespaces/fx/v1/service/web.yaml",
        "namespaces/fx/apps/v1/deployment/web.yaml",
        "namespaces/fx/apps/v1/deployment/ssa-web.yaml",
        "namespaces/fx/apps/v1/replicaset/web-57f64b4f4d.yaml",
        "namespaces/fx/batch/v1/job/job-fail.yaml",
        "namespaces/fx/example.com/v1/widget/small.yaml",
        "cluster/v1/node/fixtures-control-plane.yaml",
        "cluster/v1/node/fixtures-worker.yaml",
        "cluster/apiextensions.k8s.io/v1/customresourcedefinition/widgets.example.com.yaml",
        // What the lane applied outside a namespace, and the namespace itself.
        "cluster/rbac.authorization.k8s.io/v1/clusterrole/app-reader.yaml",
        "cluster/v1/namespace/fx.yaml",
        "namespaces/fx/events.yaml",
        "harness/deploy-failure.txt",
        "README.md",
        "SHA256SUMS",
    ] {
        assert!(
            files.contains_key(path),
            "{path} missing: {:#?}",
            files.keys()
        );
    }
    // Each object file is the object, typed: the list items carried no
    // apiVersion/kind, the adapter put them back.
    let deployment: Value = serde_saphyr::from_str(&text(
        &files,
        "namespaces/fx/apps/v1/deployment/ssa-web.yaml",
    ))
    .unwrap();
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["kind"], "Deployment");
    let served = fixture_json("server-side-apply/raw-patch-same-manager.response.json");
    assert_eq!(deployment["spec"], served["spec"]);
    let widget: Value = serde_saphyr::from_str(&text(
        &files,
        "namespaces/fx/example.com/v1/widget/small.yaml",
    ))
    .unwrap();
    assert_eq!(widget["spec"]["size"], 1);

    // Logs: oc adm inspect's pods/<pod>/<c>/<c>/logs/{current,previous}.log,
    // the init container's included, previous ones for restarted containers.
    let logs: Vec<&String> = files.keys().filter(|p| p.ends_with(".log")).collect();
    assert_eq!(
        logs,
        [
            "namespaces/fx/pods/crashloop/app/app/logs/current.log",
            "namespaces/fx/pods/crashloop/app/app/logs/previous.log",
            "namespaces/fx/pods/init-crash/migrate/migrate/logs/current.log",
            "namespaces/fx/pods/init-crash/migrate/migrate/logs/previous.log",
            "namespaces/fx/pods/web-57f64b4f4d-5bqnc/web/web/logs/current.log",
        ]
    );
    assert_eq!(
        text(
            &files,
            "namespaces/fx/pods/init-crash/migrate/migrate/logs/previous.log"
        ),
        fixture("pod-init-crashloop/logs.init-migrate.previous.txt")
    );
    // Each file holds the run it names.
    let crash = |f: &str| {
        text(
            &files,
            &format!("namespaces/fx/pods/crashloop/app/app/logs/{f}"),
        )
    };
    assert!(crash("previous.log").starts_with("app starting at 14:18:14\n"));
    assert!(crash("current.log").starts_with("app starting at 14:19:44\n"));

    // Only the project's CRD; the other two captured ones are left out.
    let crds: Vec<&String> = files
        .keys()
        .filter(|p| p.contains("customresourcedefinition"))
        .collect();
    assert_eq!(crds.len(), 1, "{crds:?}");

    // managedFields stripped everywhere (the SSA response had two entries).
    assert!(
        fixture("server-side-apply/raw-patch-same-manager.response.json").contains("managedFields")
    );
    for (path, bytes) in files.iter().filter(|(p, _)| *p != "README.md") {
        assert!(
            !String::from_utf8_lossy(bytes).contains("managedFields"),
            "{path} kept managedFields"
        );
    }

    // Events in reading order (served newest first), all of them.
    let events: Value = serde_saphyr::from_str(&text(&files, "namespaces/fx/events.yaml")).unwrap();
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), items("cluster/events.fx.json").len() + 1);
    let times: Vec<_> = events.iter().map(event_time).collect();
    assert!(times.is_sorted(), "events not oldest first");
    assert_ne!(times.first(), times.last());
    assert_eq!(
        events.last().unwrap()["metadata"]["name"],
        "too-big.scheduler-event"
    );

    // The README says what is where, with the same sections.
    let readme = text(&files, "README.md");
    for section in ["`namespaces/fx/`", "`cluster/`", "`harness/`"] {
        assert!(readme.contains(section), "{section} not in {readme}");
    }
    assert!(!readme.contains("Collectors that failed"), "{readme}");
}

#[tokio::test]
async fn logs_are_asked_per_container_with_previous_only_where_it_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let (client, log) = Cluster::captured().serve();
    let bundle = gather(&client, dir.path(), Gather::default())
        .await
        .unwrap();
    assert!(bundle.failures.is_empty(), "{:?}", bundle.failures);
    let asked = log_requests(&log);
    let s = |p: &str, c: &str, prev: bool| (p.to_owned(), c.to_owned(), prev, None);
    // crashloop/app restarted 4 times and init-crash/migrate too: both logs.
    // init-crash/app never started (PodInitializing) and the config-error
    // pod's container was never created: no request the server would refuse.
    // The healthy web pod never restarted: current only.
    assert_eq!(
        asked,
        [
            s("crashloop", "app", false),
            s("crashloop", "app", true),
            s("init-crash", "migrate", false),
            s("init-crash", "migrate", true),
            s("web-57f64b4f4d-5bqnc", "web", false),
        ]
    );
    // Every request names its container: a pod with an init container has
    // two, and the server would refuse a request without one.
    let raw = log.lock().unwrap().clone();
    assert!(
        raw.iter()
            .filter(|r| r.path.ends_with("/log"))
            .all(|r| r.query.contains("container=") && !r.query.contains("follow")),
        "{raw:?}"
    );
}

#[tokio::test]
async fn a_previous_log_the_kubelet_no_longer_keeps_is_no_collector_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::captured();
    // A Job pod that restarted once in place, captured on Kubernetes 1.20:
    // its kubelet answers the previous log with a note, status 200.
    let mut retried = fixture_json("job-retried/pod.flaky-76mhz.json");
    retried["metadata"]["namespace"] = NS.into();
    // The same pod once its status lost `lastState` as well: the previous
    // log is refused with 400.
    let mut forgotten = retried.clone();
    forgotten["metadata"]["name"] = "flaky-gc".into();
    forgotten["status"]["containerStatuses"][0]["lastState"] = json!({});
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    cluster
        .objects
        .get_mut(&pods)
        .unwrap()
        .extend([retried, forgotten]);
    let current = fixture("job-retried/logs.current.txt");
    for pod in ["flaky-76mhz", "flaky-gc"] {
        cluster.logs.insert(
            (pod.into(), "migrate".into(), false),
            LogReply::Text(current.clone()),
        );
    }
    cluster.logs.insert(
        ("flaky-76mhz".into(), "migrate".into(), true),
        LogReply::Text(fixture("job-retried/logs.previous.txt")),
    );
    cluster.logs.insert(
        ("flaky-gc".into(), "migrate".into(), true),
        LogReply::Status(
            400,
            "previous terminated container \"migrate\" in pod \"flaky-gc\" not found".into(),
        ),
    );
    let (client, log) = cluster.serve();
    let bundle = gather(&client, dir.path(), Gather::default())
        .await
        .unwrap();
    // Both were asked for (the pods count a restart) and neither is an error.
    let asked = log_requests(&log);
    for pod in ["flaky-76mhz", "flaky-gc"] {
        assert!(
            asked.contains(&(pod.to_owned(), "migrate".to_owned(), true, None)),
            "{asked:?}"
        );
    }
    assert!(bundle.failures.is_empty(), "{:?}", bundle.failures);
    let files = files(&bundle.dir);
    assert!(!files.contains_key("harness/collector-errors.txt"));
    for pod in ["flaky-76mhz", "flaky-gc"] {
        let logs = format!("namespaces/fx/pods/{pod}/migrate/migrate/logs");
        assert_eq!(text(&files, &format!("{logs}/current.log")), current);
        // No previous log rather than a file holding the kubelet's note.
        assert!(
            !files.contains_key(&format!("{logs}/previous.log")),
            "{pod}: {:?}",
            files
                .get(&format!("{logs}/previous.log"))
                .map(|b| String::from_utf8_lossy(b))
        );
    }
}

/// A run's recorded events, one JSON line each, as `--output json` prints
/// them: a verdict and a suite's output that quote the Secret's value (the
/// second as a JSON string escapes it), an OOM kill, the failed suite and
/// the test case that started after the kill.
fn recorded_run(dir: &Path) -> (PathBuf, String) {
    use harness::report::{Event, Phase, Placed, Stamped};
    let junit = dir.join("run-junit.xml");
    std::fs::write(
        &junit,
        format!("<testsuites><testsuite name=\"audit\"><testcase name=\"posts\"><failure message=\"password {SECRET} refused\"/></testcase></testsuite></testsuites>\n"),
    )
    .unwrap();
    let at = |t: &str| t.parse::<k8s_openapi::jiff::Timestamp>().unwrap();
    let events = [
        (
            "2026-11-22T14:20:00Z",
            Event::RunStarted {
                lane: "l".into(),
                run_id: "run1".into(),
            },
        ),
        (
            "2026-11-22T14:20:30Z",
            Event::PhaseFinished {
                phase: Phase::Deploy,
                seconds: 30.0,
                ok: true,
                error: None,
                fix: None,
            },
        ),
        (
            "2026-11-22T14:20:30Z",
            Event::PodTimeline {
                component: "app".into(),
                pod: "fx/web-57f64b4f4d-5bqnc".into(),
                scheduled: Some(0.1),
                initialized: Some(0.9),
                ready: Some(4.5),
            },
        ),
        (
            "2026-11-22T14:20:31Z",
            Event::Verdict {
                component: "app".into(),
                standing: harness::deploy::Standing::Doomed,
                summary: format!(
                    "component `app` will not become Ready: Pod/fx/crashloop is Failed (CrashLoopBackOff): env DB_PASSWORD={SECRET}"
                ),
                diagnosis: Some(Box::new(harness::report::ReportedDiagnosis {
                    json: serde_json::json!({"findings": [{"pod": "fx/crashloop", "verdict": {
                        "name": "CrashLoopBackOff",
                        "message": format!("env DB_PASSWORD={SECRET}"),
                        "hint": "look",
                    }}]}),
                    text: format!("crashloop: CrashLoopBackOff: env DB_PASSWORD={SECRET}\n"),
                })),
            },
        ),
        (
            "2026-11-22T14:21:00Z",
            Event::PhaseStarted {
                phase: Phase::Suites,
            },
        ),
        (
            "2026-11-22T14:21:05Z",
            Event::SuiteOutput {
                suite: "audit".into(),
                line: format!("config {{\"password\": \"{SECRET}\"}}"),
            },
        ),
        (
            "2026-11-22T14:22:40Z",
            Event::Infra {
                component: "app".into(),
                pod: "crashloop".into(),
                what: "OOMKilled".into(),
                detail: "container app: limit 32Mi; restarts 5".into(),
            },
        ),
        (
            "2026-11-22T14:23:00Z",
            Event::SuiteFinished {
                suite: "audit".into(),
                passed: false,
                outcome: "failed (exit code 1)".into(),
                seconds: 120.0,
                log: "audit.log".into(),
            },
        ),
        (
            "2026-11-22T14:23:00Z",
            Event::TestCaseFailed {
                suite: "audit".into(),
                case: "posts".into(),
                classname: None,
                started: at("2026-11-22T14:22:41Z"),
                placed: Placed::Estimated,
                seconds: None,
                message: Some(format!("password {SECRET} refused")),
            },
        ),
        (
            "2026-11-22T14:23:00Z",
            Event::Artifact {
                what: "junit".into(),
                path: junit.clone(),
            },
        ),
        (
            "2026-11-22T14:23:01Z",
            Event::PhaseFinished {
                phase: Phase::Suites,
                seconds: 121.0,
                ok: true,
                error: None,
                fix: None,
            },
        ),
        (
            "2026-11-22T14:23:01Z",
            Event::PhaseStarted {
                phase: Phase::Gather,
            },
        ),
    ];
    let mut text = String::new();
    for (t, event) in events {
        text.push_str(&serde_json::to_string(&Stamped { at: at(t), event }).unwrap());
        text.push('\n');
    }
    let path = dir.join("events.jsonl");
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

#[tokio::test]
async fn the_harness_folder_tells_the_runs_story_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let (events, text_written) = recorded_run(dir.path());
    // What the run's own recording holds once a line more was written
    // after the gather began: only the part before it is the run's story.
    std::fs::write(
        &events,
        format!("{text_written}{{\"at\":\"2026-11-22T14:23:30Z\",\"event\":\"notice\",\"message\":\"after\"}}\n"),
    )
    .unwrap();
    let (report, _) = harness::report::replay::fold(text_written.as_bytes()).unwrap();
    let story = harness::gather::story::Story {
        report,
        events: Some(harness::report::bus::Recorded {
            path: events.clone(),
            bytes: text_written.len() as u64,
            error: None,
        }),
        outcome: Some(harness::report::replay::Outcome::at_gather(
            harness::exit::Exit::SuitesFailed,
        )),
        files: vec![("deploy-failure.txt".into(), "nothing failed".into())],
    };
    let (client, _) = Cluster::captured().serve();
    let how = Gather {
        story: Some(story),
        ..Gather::default()
    };
    let bundle = gather(&client, dir.path(), how).await.unwrap();
    assert!(bundle.failures.is_empty(), "{:?}", bundle.failures);
    let files = files(&bundle.dir);
    for (path, bytes) in &files {
        assert!(
            !String::from_utf8_lossy(bytes).contains(SECRET),
            "{path} holds the secret"
        );
    }
    // The event stream up to the gather, scrubbed, as it was recorded.
    let escaped = serde_json::to_string(SECRET).unwrap();
    assert_eq!(
        text(&files, "harness/events.jsonl"),
        text_written
            .replace(&escaped[1..escaped.len() - 1], "<redacted>")
            .replace(SECRET, "<redacted>")
    );
    assert!(
        text(&files, "harness/events.jsonl").contains(r#"config {\"password\": \"<redacted>\"}"#)
    );
    // The README opens with how the run went.
    let readme = text(&files, "README.md");
    assert!(
        readme.starts_with(
            "# harness must-gather bundle\n\n## Summary\n\n- **result**: one or more suites (or post-suite hooks) failed or timed out (exit code 1, as of the gather)\n- **verdicts**:\n  - app: CrashLoopBackOff — component `app` will not become Ready: Pod/fx/crashloop is Failed (CrashLoopBackOff): env DB_PASSWORD=<redacted>\n- **incidents** while the suites ran:\n  - app OOMKilled 14:22:40 (container app: limit 32Mi; restarts 5) — 1 of 1 failure after it\n- **failed suites**: audit\n- **failed test cases** (1):\n  - ~14:22:41 `audit`: posts\n- **components at gather time**: crds Ready, app "
        ),
        "{readme}"
    );
    // Its timelines, results, JUnit and report, each where a reader looks.
    assert_eq!(
        text(&files, "harness/infrastructure-timeline.txt"),
        "infrastructure timeline\n  14:22:40 app OOMKilled (crashloop; container app: limit 32Mi; restarts 5)\n    1 of 1 failed test case started after this incident:\n      ~14:22:41 audit: posts\n"
    );
    assert_eq!(
        text(&files, "harness/deploy-timeline.txt"),
        "deploy timeline (seconds after creation: scheduled / initialized / ready)\n    fx/web-57f64b4f4d-5bqnc (app): 0.1 / 0.9 / 4.5\n"
    );
    assert!(
        text(&files, "harness/suites.txt").starts_with("suites: 0 passed, 1 failed\n  FAIL audit")
    );
    assert!(text(&files, "harness/junit.xml").contains("password <redacted> refused"));
    assert_eq!(text(&files, "harness/deploy-failure.txt"), "nothing failed");
    let summary: Value = serde_json::from_str(&text(&files, "harness/summary.json")).unwrap();
    assert_eq!(summary["outcome"]["exit_code"], 1);
    assert_eq!(summary["outcome"]["as_of"], "gather");
    assert_eq!(summary["incidents"][0]["cases_after"][0]["case"], "posts");
    // The diagnosis at gather time, as `harness diagnose` prints it.
    let diagnosis = text(&files, "harness/diagnosis.txt");
    assert!(
        diagnosis.starts_with("# harness diagnose --lane l, at "),
        "{diagnosis}"
    );
    assert!(diagnosis.contains("component crds: Ready\n"), "{diagnosis}");
    assert!(
        diagnosis.contains("component app: not Ready\n"),
        "{diagnosis}"
    );
    let json: Value = serde_json::from_str(&text(&files, "harness/diagnosis.json")).unwrap();
    assert_eq!(json["lane"], "l");
    let names: Vec<&str> = json["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["crds", "app"]);

    // `harness report` over the bundle, unpacked or archived, prints the
    // report the bundle carries.
    let report = text(&files, "harness/report.txt");
    assert!(report.contains("\nresult: one or more suites (or post-suite hooks) failed or timed out (exit 1)\n(as of the gather:"), "{report}");
    for path in [&bundle.dir, &bundle.archive, &dir.path().join("out")] {
        let replayed = harness::report::replay::open(path).unwrap();
        assert_eq!(replayed.text(), report, "{}", path.display());
    }
}

#[tokio::test]
async fn since_is_sent_as_since_seconds_on_every_log_request() {
    let dir = tempfile::tempdir().unwrap();
    let (client, log) = Cluster::captured().serve();
    let how = Gather {
        since: Some(Duration::from_secs(15 * 60)),
        ..Gather::default()
    };
    gather(&client, dir.path(), how).await.unwrap();
    let asked = log_requests(&log);
    assert_eq!(asked.len(), 5);
    for (pod, container, previous, since) in asked {
        assert_eq!(
            since.as_deref(),
            Some("900"),
            "{pod}/{container} previous={previous}"
        );
    }
}

#[tokio::test]
async fn the_secret_value_appears_nowhere_in_the_bundle_or_its_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = Cluster::captured().serve();
    let bundle = gather(&client, dir.path(), Gather::default())
        .await
        .unwrap();
    let files = files(&bundle.dir);
    let archived = archive_files(&bundle.archive);
    assert!(archived.len() > 20, "{:?}", archived.keys());
    for (path, bytes) in files.iter().chain(&archived) {
        let content = String::from_utf8_lossy(bytes);
        for leak in [SECRET.to_owned(), secret_b64()] {
            assert!(!content.contains(&leak), "{leak} leaked into {path}");
        }
    }
    // The Secret keeps its keys, not its values (nor the last-applied copy).
    let secret: Value =
        serde_saphyr::from_str(&text(&files, "namespaces/fx/v1/secret/app-secret.yaml")).unwrap();
    assert_eq!(secret["data"]["password"], "<redacted>");
    assert_eq!(secret["data"]["present"], "<redacted>");
    assert_eq!(
        secret["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "<redacted>"
    );
    // Where the value was, the marker is: the log line is still readable.
    for path in [
        "namespaces/fx/pods/crashloop/app/app/logs/current.log",
        "namespaces/fx/pods/crashloop/app/app/logs/previous.log",
    ] {
        assert!(
            text(&files, path).contains("connecting to db with password <redacted>\n"),
            "{path}"
        );
    }
    assert!(
        text(&files, "namespaces/fx/v1/configmap/pasted.yaml").contains("password: <redacted>")
    );
    assert!(text(&files, "harness/deploy-failure.txt").contains("DB_PASSWORD=<redacted>"));
    // The pod keeps the reference (not a value): it says where the value came from.
    let pod = text(&files, "namespaces/fx/v1/pod/crashloop.yaml");
    assert!(pod.contains("secretKeyRef"), "{pod}");
}

#[tokio::test]
async fn sha256sums_verify_and_the_archive_holds_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = Cluster::captured().serve();
    let bundle = gather(&client, dir.path(), Gather::default())
        .await
        .unwrap();
    let files = files(&bundle.dir);
    let sums = text(&files, "SHA256SUMS");
    let mut listed = Vec::new();
    for line in sums.lines() {
        let (digest, path) = line.split_once("  ").unwrap();
        let actual: String = sha2::Sha256::digest(&files[path])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, actual, "{path}");
        listed.push(path.to_owned());
    }
    let mut expected: Vec<String> = files
        .keys()
        .filter(|p| *p != "SHA256SUMS")
        .cloned()
        .collect();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected, "SHA256SUMS must cover every other file");
    assert_eq!(bundle.files, files.len());

    let archived = archive_files(&bundle.archive);
    let inside: BTreeMap<String, Vec<u8>> = archived
        .into_iter()
        .map(|(p, b)| {
            let rel = p
                .strip_prefix(&format!("{BUNDLE}/"))
                .unwrap_or_else(|| panic!("{p} outside {BUNDLE}/"))
                .to_owned();
            (rel, b)
        })
        .collect();
    assert_eq!(inside, files, "the archive differs from the directory");
    // Nothing else was left beside the bundle: no staging directory.
    let mut out: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    assert_eq!(out, [BUNDLE.to_owned(), format!("{BUNDLE}.tar.gz")]);
}

#[tokio::test]
async fn failing_collectors_are_recorded_and_the_rest_is_collected() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::captured();
    // One kind's list fails, one log fails, and an aggregated API that is
    // down fails its discovery.
    cluster
        .failing
        .push(format!("/api/v1/namespaces/{NS}/configmaps"));
    cluster.logs.insert(
        ("crashloop".into(), "app".into(), true),
        LogReply::Fail(500),
    );
    cluster
        .broken_groups
        .push(("metrics.k8s.io/v1beta1".into(), 503));
    // Someone deleted the ClusterRole the lane applied.
    cluster
        .objects
        .remove("/apis/rbac.authorization.k8s.io/v1/clusterroles");
    let (client, _) = cluster.serve();
    let bundle = gather(&client, dir.path(), Gather::default())
        .await
        .unwrap();
    let mut failed: Vec<&str> = bundle
        .failures
        .iter()
        .map(|f| f.collector.as_str())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "clusterroles.rbac.authorization.k8s.io/app-reader",
            "configmaps in fx",
            "discovery of metrics.k8s.io/v1beta1",
            "previous log of fx/crashloop/app",
        ],
        "{:?}",
        bundle.failures
    );
    let files = files(&bundle.dir);
    // The failures are in the bundle, where the person reading it looks.
    let readme = text(&files, "README.md");
    assert!(readme.contains("## Collectors that failed"), "{readme}");
    assert!(readme.contains("etcdserver: request timed out"), "{readme}");
    assert!(
        text(&files, "harness/collector-errors.txt").contains("previous log of fx/crashloop/app")
    );
    // Everything else is still there: the other kinds of the same
    // namespace, the other logs, the cluster-scoped objects.
    for path in [
        "namespaces/fx/v1/pod/crashloop.yaml",
        "namespaces/fx/apps/v1/deployment/web.yaml",
        "namespaces/fx/example.com/v1/widget/small.yaml",
        "namespaces/fx/pods/crashloop/app/app/logs/current.log",
        "namespaces/fx/pods/init-crash/migrate/migrate/logs/previous.log",
        "cluster/v1/node/fixtures-worker.yaml",
        "namespaces/fx/events.yaml",
    ] {
        assert!(files.contains_key(path), "{path} missing");
    }
    assert!(!files.contains_key("namespaces/fx/v1/configmap/pasted.yaml"));
    assert!(!files.contains_key("namespaces/fx/pods/crashloop/app/app/logs/previous.log"));
}

#[tokio::test(start_paused = true)]
async fn a_log_that_never_answers_is_recorded_and_the_bundle_still_published() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::captured();
    cluster
        .logs
        .insert(("crashloop".into(), "app".into(), true), LogReply::Hold);
    let (client, _) = cluster.serve();
    // Paused time runs ahead to the collector's limit once only the held
    // log is left.
    let started = tokio::time::Instant::now();
    let bundle = tokio::time::timeout(
        Duration::from_secs(120),
        gather(&client, dir.path(), Gather::default()),
    )
    .await
    .expect("the gather waited for the log for ever")
    .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(31),
        "{took:?}"
    );
    assert_eq!(bundle.failures.len(), 1, "{:?}", bundle.failures);
    assert_eq!(
        bundle.failures[0].collector,
        "previous log of fx/crashloop/app"
    );
    assert_eq!(
        bundle.failures[0].error,
        "not finished within 30s; what arrived is kept"
    );
    let files = files(&bundle.dir);
    assert!(files.contains_key("namespaces/fx/pods/crashloop/app/app/logs/current.log"));
    assert!(!files.contains_key("namespaces/fx/pods/crashloop/app/app/logs/previous.log"));
    assert!(text(&files, "README.md").contains(
        "previous log of fx/crashloop/app: not finished within 30s; what arrived is kept"
    ));
}

#[tokio::test]
async fn a_down_api_group_is_recorded_once_however_many_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::captured();
    cluster
        .broken_groups
        .push(("metrics.k8s.io/v1beta1".into(), 503));
    let suites = ["fx-p1-0a1b2c3d", "fx-p2-4e5f6a7b"].map(String::from);
    // The suites' namespaces exist (and are empty).
    for ns in &suites {
        let mut namespace = fixture_json("cluster/namespace.fx.json");
        namespace["metadata"]["name"] = json!(ns);
        cluster
            .objects
            .get_mut("/api/v1/namespaces")
            .unwrap()
            .push(namespace);
    }
    let (client, log) = cluster.serve();
    let how = Gather {
        extra: suites.to_vec(),
        ..Gather::default()
    };
    let bundle = gather(&client, dir.path(), how).await.unwrap();
    let failed: Vec<&str> = bundle
        .failures
        .iter()
        .map(|f| f.collector.as_str())
        .collect();
    assert_eq!(failed, ["discovery of metrics.k8s.io/v1beta1"]);
    // Discovery ran once for the whole gather; every namespace was listed.
    let requests = log.lock().unwrap().clone();
    let asked = |path: &str| requests.iter().filter(|r| r.path == path).count();
    assert_eq!(asked("/apis"), 1);
    assert_eq!(asked("/apis/apps/v1"), 1);
    for ns in [NS]
        .iter()
        .copied()
        .chain(suites.iter().map(String::as_str))
    {
        assert_eq!(
            asked(&format!("/apis/apps/v1/namespaces/{ns}/deployments")),
            1,
            "{ns}"
        );
        assert_eq!(
            asked(&format!("/api/v1/namespaces/{ns}/secrets")),
            1,
            "{ns}"
        );
    }
}

#[tokio::test]
async fn the_size_cap_trims_healthy_pods_logs_first() {
    // The healthy pod logs more than the failing ones (they usually do).
    let big = |cluster: &mut Cluster| {
        cluster.logs.insert(
            ("web-57f64b4f4d-5bqnc".into(), "web".into(), false),
            LogReply::Text(access_log(64)),
        );
        let crash = format!(
            "{}{}",
            fixture("pod-crashloop/logs.previous.txt"),
            access_log(16)
        );
        cluster.logs.insert(
            ("crashloop".into(), "app".into(), true),
            LogReply::Text(crash),
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::captured();
    big(&mut cluster);
    let (client, _) = cluster.serve();
    let whole = gather(&client, dir.path(), Gather::default())
        .await
        .unwrap();
    assert!(whole.trimmed.is_empty());

    let mut cluster = Cluster::captured();
    big(&mut cluster);
    let (client, _) = cluster.serve();
    let cap = whole.bytes - 32 * 1024;
    let how = Gather {
        cap: Some(cap),
        run_id: "run2",
        ..Gather::default()
    };
    let capped = gather(&client, dir.path(), how).await.unwrap();
    let web = PathBuf::from("namespaces/fx/pods/web-57f64b4f4d-5bqnc/web/web/logs/current.log");
    let trimmed: Vec<&PathBuf> = capped.trimmed.iter().map(|(p, _)| p).collect();
    assert_eq!(trimmed, [&web], "only the healthy pod's log is cut");
    // The cap holds for the whole bundle, its README and SHA256SUMS included.
    let files = files(&capped.dir);
    let on_disk: u64 = files.values().map(|b| b.len() as u64).sum();
    assert_eq!(on_disk, capped.bytes);
    assert!(on_disk <= cap, "{on_disk} > {cap}");
    assert!(capped.bytes < whole.bytes - 16 * 1024);
    let kept = text(&files, &web.to_string_lossy());
    assert!(kept.starts_with(harness::gather::bundle::TRIM_MARKER));
    // The failing pod's logs are whole.
    let previous = text(
        &files,
        "namespaces/fx/pods/crashloop/app/app/logs/previous.log",
    );
    assert!(previous.starts_with(&fixture("pod-crashloop/logs.previous.txt")));
    assert!(text(&files, "README.md").contains("## Size cap"));
}

#[tokio::test(start_paused = true)]
async fn a_gather_cancelled_while_a_log_hangs_leaves_no_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::captured();
    cluster
        .logs
        .insert(("crashloop".into(), "app".into(), true), LogReply::Hold);
    let (tx, mut held) = tokio::sync::mpsc::unbounded_channel();
    cluster.held = Some(tx);
    let (client, _) = cluster.serve();
    // Time is paused: the deadline passes only once every task is waiting,
    // i.e. the gather is stuck on the log that never answers. It comes
    // before the collector's own limit (30 s): a gather cut off by the
    // run's budget or an interrupt.
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        gather(&client, dir.path(), Gather::default()),
    )
    .await;
    assert!(result.is_err(), "the gather finished although a log hung");
    assert_eq!(held.try_recv().unwrap(), "crashloop/app/true");
    // Nothing at all: no bundle under the final name, and the cancelled
    // gather removed its staging directory.
    let out = dir.path().join("out");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    assert!(!out.join(BUNDLE).exists());
    assert!(!out.join(format!("{BUNDLE}.tar.gz")).exists());

    // The next gather of the same name starts over and publishes a whole bundle.
    let (client, _) = Cluster::captured().serve();
    let bundle = gather(&client, dir.path(), Gather::default())
        .await
        .unwrap();
    assert!(bundle.failures.is_empty(), "{:?}", bundle.failures);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");
}
