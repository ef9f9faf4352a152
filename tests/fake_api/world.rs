//! A small API server with a store, for tests that run the binary against
//! workloads in a chosen state: what is applied is kept (with the status
//! and server-made fields the test gave for it), lists and gets answer from
//! the store with label and field selectors, and a watch is answered the
//! moment the test changes an object it covers ([`World::put`]), so a test
//! moves a pod from one captured state to the next when it chooses. Served
//! over HTTP by [`super::serve`]; objects are addressed by their REST path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::serve::{Server, serve};
use super::{Reply, Req, list, not_found, resources};

/// The kinds the world serves: kind, group/version, plural, namespaced.
const KINDS: &[(&str, &str, &str, bool)] = &[
    ("Namespace", "v1", "namespaces", false),
    ("Node", "v1", "nodes", false),
    ("Pod", "v1", "pods", true),
    ("Service", "v1", "services", true),
    ("Endpoints", "v1", "endpoints", true),
    ("ConfigMap", "v1", "configmaps", true),
    ("Secret", "v1", "secrets", true),
    ("ServiceAccount", "v1", "serviceaccounts", true),
    ("Event", "v1", "events", true),
    (
        "PersistentVolumeClaim",
        "v1",
        "persistentvolumeclaims",
        true,
    ),
    ("Deployment", "apps/v1", "deployments", true),
    ("ReplicaSet", "apps/v1", "replicasets", true),
    ("StatefulSet", "apps/v1", "statefulsets", true),
    ("DaemonSet", "apps/v1", "daemonsets", true),
    ("Job", "batch/v1", "jobs", true),
    (
        "CustomResourceDefinition",
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        false,
    ),
];

fn prefix(group_version: &str) -> String {
    match group_version {
        "v1" => "/api/v1".into(),
        gv => format!("/apis/{gv}"),
    }
}

/// The REST path of `object`.
pub fn path_of(object: &Value) -> String {
    let kind = object["kind"].as_str().expect("an object has a kind");
    let (_, gv, plural, namespaced) = KINDS
        .iter()
        .find(|(k, ..)| *k == kind)
        .unwrap_or_else(|| panic!("the world does not serve {kind}"));
    let name = object["metadata"]["name"].as_str().unwrap();
    match (namespaced, object["metadata"]["namespace"].as_str()) {
        (true, Some(ns)) => format!("{}/namespaces/{ns}/{plural}/{name}", prefix(gv)),
        (true, None) => panic!("{kind} {name} needs a namespace"),
        (false, _) => format!("{}/{plural}/{name}", prefix(gv)),
    }
}

/// A path split into (prefix, namespace, plural, name): `/api/v1/pods`,
/// `/api/v1/namespaces/fx/pods/web-1`, `/api/v1/namespaces/fx`…
fn parts(path: &str) -> Option<(String, Option<String>, String, Option<String>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (prefix, rest) = match *segments.first()? {
        "api" => (format!("/api/{}", segments.get(1)?), &segments[2..]),
        "apis" => (
            format!("/apis/{}/{}", segments.get(1)?, segments.get(2)?),
            &segments[3..],
        ),
        _ => return None,
    };
    Some(match rest {
        [plural] => (prefix, None, plural.to_string(), None),
        ["namespaces", ns, plural] => (prefix, Some(ns.to_string()), plural.to_string(), None),
        ["namespaces", ns, plural, name] => (
            prefix,
            Some(ns.to_string()),
            plural.to_string(),
            Some(name.to_string()),
        ),
        [plural, name] => (prefix, None, plural.to_string(), Some(name.to_string())),
        _ => return None,
    })
}

/// Whether `object` (at `path`) is in the collection `collection`.
fn in_collection(collection: &str, path: &str) -> bool {
    let (Some((cp, cns, cplural, None)), Some((p, ns, plural, Some(_)))) =
        (parts(collection), parts(path))
    else {
        return false;
    };
    cp == p && cplural == plural && (cns.is_none() || cns == ns)
}

/// `a=b,c=d` and `key` selectors, over a map of labels.
fn labels_match(selector: &str, labels: &Value) -> bool {
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once("!=") {
            Some((k, v)) => labels[k].as_str() != Some(v),
            None => match term.split_once('=') {
                Some((k, v)) => labels[k.trim_end_matches('=')].as_str() == Some(v),
                None => labels.get(term).is_some(),
            },
        })
}

/// `metadata.name=x,involvedObject.kind=Pod` over the object's fields.
fn fields_match(selector: &str, object: &Value) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let Some((field, want)) = term.split_once('=') else {
            return true;
        };
        let pointer = format!("/{}", field.trim_end_matches('=').replace('.', "/"));
        object.pointer(&pointer).and_then(Value::as_str) == Some(want)
    })
}

struct Watch {
    collection: String,
    labels: Option<String>,
    fields: Option<String>,
    reply: oneshot::Sender<(u16, String)>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    /// Merged into an object when it is applied: its status, the fields
    /// the server fills in (a Job's selector).
    made: BTreeMap<String, Value>,
    /// Applies of these paths wait for [`World::release_applies`].
    held: Vec<String>,
    /// The applies waiting: their reply, path and body.
    waiting_applies: Vec<(Answer, String, String)>,
    watches: Vec<Watch>,
    /// (pod, container, previous) → its log.
    logs: BTreeMap<(String, String, bool), String>,
    /// While set, log requests wait here for [`HeldLogs::release`].
    held_logs: Option<Vec<(Answer, String)>>,
    version: u64,
}

/// Where a held request's answer goes: its status and body.
type Answer = oneshot::Sender<(u16, String)>;

/// The store and its server.
#[derive(Clone)]
pub struct World {
    state: Arc<Mutex<State>>,
    pub url: String,
    pub log: super::Log,
}

/// Deep merge of `from` into `into` (objects merged, the rest replaced).
pub fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                merge(into.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (into, from) => *into = from.clone(),
    }
}

impl World {
    /// A world with nothing in it but namespace `default`.
    pub fn new() -> World {
        let state = Arc::new(Mutex::new(State::default()));
        let Server { url, log } = {
            let state = state.clone();
            serve(move |req| answer(&state, req))
        };
        let world = World { state, url, log };
        world
            .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}));
        world
    }

    /// Puts `object` in the store as it is (with the bookkeeping fields the
    /// server adds), and answers every watch waiting on it.
    pub fn put(&self, object: Value) {
        let mut state = self.state.lock().unwrap();
        let path = path_of(&object);
        let object = stored(&mut state, object, None);
        state.objects.insert(path.clone(), object.clone());
        fire(&mut state, &path, &object);
    }

    /// What the server makes of `object` when it is applied: merged into
    /// what the apply sends (its status, a Job's selector…).
    pub fn on_apply(&self, kind: &str, namespace: Option<&str>, name: &str, made: Value) {
        let path =
            path_of(&json!({"kind": kind, "metadata": {"name": name, "namespace": namespace}}));
        self.state.lock().unwrap().made.insert(path, made);
    }

    /// Holds the apply of this object until [`World::release_applies`] (an
    /// API server that takes its time).
    pub fn hold_apply(&self, kind: &str, namespace: Option<&str>, name: &str) {
        let path =
            path_of(&json!({"kind": kind, "metadata": {"name": name, "namespace": namespace}}));
        self.state.lock().unwrap().held.push(path);
    }

    /// Answers the held applies (and holds no more).
    pub fn release_applies(&self) {
        let mut state = self.state.lock().unwrap();
        state.held.clear();
        for (reply, path, body) in std::mem::take(&mut state.waiting_applies) {
            let Ok(object) = serde_json::from_str::<Value>(&body) else {
                continue;
            };
            let made = state.made.get(&path).cloned();
            let object = stored(&mut state, object, made.as_ref());
            state.objects.insert(path.clone(), object.clone());
            fire(&mut state, &path, &object);
            let _ = reply.send((200, object.to_string()));
        }
    }

    /// The log of a container of `pod`: its current one, or the one
    /// before its last restart (`previous`).
    pub fn log(&self, pod: &str, container: &str, previous: bool, text: &str) {
        self.state.lock().unwrap().logs.insert(
            (pod.to_owned(), container.to_owned(), previous),
            text.to_owned(),
        );
    }

    /// Makes every log request wait until the returned guard is released.
    pub fn hold_logs(&self) -> HeldLogs {
        self.state.lock().unwrap().held_logs = Some(Vec::new());
        HeldLogs {
            state: self.state.clone(),
        }
    }

    /// The object at `path`, if the store has it.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    /// Every path in the store.
    pub fn paths(&self) -> Vec<String> {
        self.state.lock().unwrap().objects.keys().cloned().collect()
    }

    /// A kubeconfig for this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: world\n  cluster: {{server: \"{}\"}}\nusers:\n- name: world\n  user: {{token: world}}\ncontexts:\n- name: world\n  context: {{cluster: world, user: world}}\ncurrent-context: world\n",
            self.url
        )
    }
}

/// Log requests held by [`World::hold_logs`].
pub struct HeldLogs {
    state: Arc<Mutex<State>>,
}

impl HeldLogs {
    /// How many log requests wait.
    pub fn waiting(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .held_logs
            .as_ref()
            .map_or(0, Vec::len)
    }

    /// Answers every held log request, and holds no more.
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for HeldLogs {
    fn drop(&mut self) {
        let held = self.state.lock().unwrap().held_logs.take();
        for (reply, text) in held.into_iter().flatten() {
            let _ = reply.send((200, text));
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

fn stored(state: &mut State, mut object: Value, made: Option<&Value>) -> Value {
    state.version += 1;
    if let Some(made) = made {
        merge(&mut object, made);
    }
    let meta = &mut object["metadata"];
    if meta["uid"].is_null() {
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", state.version));
    }
    if meta["creationTimestamp"].is_null() {
        meta["creationTimestamp"] = json!(
            jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap()
                .to_string()
        );
    }
    if meta["generation"].is_null() {
        meta["generation"] = json!(1);
    }
    meta["resourceVersion"] = json!(state.version.to_string());
    if object["kind"] == "Namespace" && object["status"].is_null() {
        object["status"] = json!({"phase": "Active"});
    }
    object
}

/// Answers (and forgets) every waiting watch that covers `object`.
fn fire(state: &mut State, path: &str, object: &Value) {
    let (hit, kept): (Vec<Watch>, Vec<Watch>) = std::mem::take(&mut state.watches)
        .into_iter()
        .partition(|w| {
            in_collection(&w.collection, path)
                && w.labels
                    .as_deref()
                    .is_none_or(|s| labels_match(s, &object["metadata"]["labels"]))
                && w.fields.as_deref().is_none_or(|s| fields_match(s, object))
        });
    state.watches = kept;
    let event = json!({"type": "MODIFIED", "object": object}).to_string() + "\n";
    for watch in hit {
        let _ = watch.reply.send((200, event.clone()));
    }
}

fn discovery(path: &str) -> Option<String> {
    let groups: Vec<&str> = {
        let mut g: Vec<&str> = KINDS.iter().map(|k| k.1).filter(|gv| *gv != "v1").collect();
        g.dedup();
        g
    };
    match path {
        "/version" => Some(
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1", "platform": "linux/amd64"})
                .to_string(),
        ),
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"]}).to_string()),
        "/apis" => Some(
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups.iter().map(|gv| {
                let (group, version) = gv.split_once('/').unwrap();
                json!({"name": group, "versions": [{"groupVersion": gv, "version": version}],
                       "preferredVersion": {"groupVersion": gv, "version": version}})
            }).collect::<Vec<_>>()})
            .to_string(),
        ),
        _ => {
            let gv = path
                .strip_prefix("/api/")
                .or_else(|| path.strip_prefix("/apis/"))?;
            let served: Vec<(&str, &str, bool)> = KINDS
                .iter()
                .filter(|k| k.1 == gv)
                .map(|(kind, _, plural, namespaced)| (*plural, *kind, *namespaced))
                .collect();
            (!served.is_empty()).then(|| resources(gv, &served))
        }
    }
}

fn answer(state: &Arc<Mutex<State>>, req: &Req) -> Reply {
    if req.method == "GET"
        && let Some(body) = discovery(&req.path)
    {
        return Reply::Json(200, body);
    }
    let mut state = state.lock().unwrap();
    if let Some(pod) = req
        .path
        .strip_suffix("/log")
        .and_then(|p| p.rsplit_once("/pods/"))
        .map(|(_, pod)| pod.to_owned())
    {
        let container = req.param("container").unwrap_or_default();
        let previous = req.param("previous").as_deref() == Some("true");
        let text = state
            .logs
            .get(&(pod.clone(), container.clone(), previous))
            .cloned();
        if let Some(held) = state.held_logs.as_mut() {
            let (reply, rx) = oneshot::channel();
            held.push((reply, text.unwrap_or_default()));
            return Reply::Later(rx);
        }
        return match text {
            Some(text) => Reply::Text(200, text),
            // As the kubelet answers for a container that never restarted.
            None if previous => Reply::Json(
                400,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400,
                       "reason": "BadRequest",
                       "message": format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")})
                .to_string(),
            ),
            None => Reply::Text(200, String::new()),
        };
    }
    match req.method.as_str() {
        "PATCH" | "PUT" => {
            if state.held.contains(&req.path) {
                let (reply, rx) = oneshot::channel();
                state
                    .waiting_applies
                    .push((reply, req.path.clone(), req.body.clone()));
                return Reply::Later(rx);
            }
            let Ok(object) = serde_json::from_str::<Value>(&req.body) else {
                return Reply::Json(400, json!({"kind": "Status", "code": 400}).to_string());
            };
            let made = state.made.get(&req.path).cloned();
            let object = stored(&mut state, object, made.as_ref());
            state.objects.insert(req.path.clone(), object.clone());
            fire(&mut state, &req.path, &object);
            Reply::Json(200, object.to_string())
        }
        "POST" => {
            let Ok(object) = serde_json::from_str::<Value>(&req.body) else {
                return Reply::Json(400, json!({"kind": "Status", "code": 400}).to_string());
            };
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let path = format!("{}/{name}", req.path);
            let object = stored(&mut state, object, None);
            state.objects.insert(path.clone(), object.clone());
            fire(&mut state, &path, &object);
            Reply::Json(201, object.to_string())
        }
        "DELETE" => match state.objects.remove(&req.path) {
            Some(_) => {
                if let Some(ns) = req.path.strip_prefix("/api/v1/namespaces/") {
                    let inside = format!("/namespaces/{ns}/");
                    state.objects.retain(|path, _| !path.contains(&inside));
                }
                Reply::Json(
                    200,
                    json!({"kind": "Status", "status": "Success"}).to_string(),
                )
            }
            None => not_found(&req.path),
        },
        _ if req.is_watch() => {
            let (reply, rx) = oneshot::channel();
            state.watches.push(Watch {
                collection: req.path.clone(),
                labels: req.param("labelSelector"),
                fields: req.param("fieldSelector"),
                reply,
            });
            Reply::Later(rx)
        }
        _ if req.path.ends_with("/serviceaccounts") => {
            // Every namespace has its `default` ServiceAccount at once.
            let ns = req.path.split('/').nth(4).unwrap_or_default();
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": ns, "uid": "sa", "resourceVersion": "1"}});
            Reply::Json(200, list("ServiceAccountList", &[sa]))
        }
        _ => match parts(&req.path) {
            Some((_, _, _, None)) => {
                let labels = req.param("labelSelector");
                let fields = req.param("fieldSelector");
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(path, object)| {
                        in_collection(&req.path, path)
                            && labels
                                .as_deref()
                                .is_none_or(|s| labels_match(s, &object["metadata"]["labels"]))
                            && fields.as_deref().is_none_or(|s| fields_match(s, object))
                    })
                    .map(|(_, o)| o.clone())
                    .collect();
                let mut body: Value = serde_json::from_str(&list("List", &items)).unwrap();
                body["metadata"]["resourceVersion"] = json!(state.version.to_string());
                Reply::Json(200, body.to_string())
            }
            _ => match state.objects.get(&req.path) {
                Some(object) => Reply::Json(200, object.to_string()),
                None => not_found(&req.path),
            },
        },
    }
}

/// Captured objects with every timestamp moved by the same amount, so that
/// the latest of them all is `now`: as if they were captured now.
pub fn fresh(objects: Vec<Value>, now: jiff::Timestamp) -> Vec<Value> {
    let mut all = Value::Array(objects);
    all = fresh_one(all, now);
    match all {
        Value::Array(objects) => objects,
        _ => unreachable!(),
    }
}

fn fresh_one(mut object: Value, now: jiff::Timestamp) -> Value {
    fn stamps(v: &Value, out: &mut Vec<jiff::Timestamp>) {
        match v {
            Value::String(s) => {
                out.extend(s.parse::<jiff::Timestamp>().ok().filter(|_| s.len() >= 20))
            }
            Value::Array(a) => a.iter().for_each(|v| stamps(v, out)),
            Value::Object(o) => o.values().for_each(|v| stamps(v, out)),
            _ => {}
        }
    }
    fn shift(v: &mut Value, by: jiff::SignedDuration) {
        match v {
            Value::String(s) if s.len() >= 20 => {
                if let Ok(t) = s.parse::<jiff::Timestamp>() {
                    *s = (t + by).round(jiff::Unit::Second).unwrap().to_string();
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| shift(v, by)),
            Value::Object(o) => o.values_mut().for_each(|v| shift(v, by)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    stamps(&object, &mut all);
    if let Some(latest) = all.into_iter().max() {
        shift(&mut object, now.duration_since(latest));
    }
    object
}

// ------------------------------------------------------------------ objects

/// A captured object moved to namespace `ns` and named `name`, with the
/// words that name it (`fx/oom`, `oom_fx(`) following.
pub fn moved(object: Value, ns: &str, name: &str) -> Value {
    let (old_ns, old_name) = (
        object["metadata"]["namespace"].as_str().unwrap().to_owned(),
        object["metadata"]["name"].as_str().unwrap().to_owned(),
    );
    let text = object
        .to_string()
        .replace(&format!("{old_ns}/{old_name}"), &format!("{ns}/{name}"))
        .replace(&format!("{old_name}_{old_ns}("), &format!("{name}_{ns}("));
    let mut object: Value = serde_json::from_str(&text).unwrap();
    object["metadata"]["namespace"] = json!(ns);
    object["metadata"]["name"] = json!(name);
    object
}

/// A captured pod as `name` in `ns`, labelled `app: <app>`, with its events.
pub fn captured_pod(
    case: &str,
    file: &str,
    ns: &str,
    name: &str,
    app: &str,
) -> (Value, Vec<Value>) {
    let pod: Value = serde_json::from_str(&super::fixture(&format!("{case}/{file}"))).unwrap();
    let old_name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    let mut pod = moved(pod, ns, name);
    pod["metadata"]["labels"] = json!({"app": app});
    // Owned by its Deployment's ReplicaSet, named as the pod's name says.
    pod["metadata"]["ownerReferences"] = match name.rsplit_once('-') {
        Some((replicaset, _)) if replicaset.contains('-') => json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replicaset,
            "uid": "00000000-0000-4000-8000-0000000000aa", "controller": true,
        }]),
        _ => json!([]),
    };
    // The container of a one-container pod is `app`, as in the manifests
    // the tests write.
    if pod["spec"]["containers"]
        .as_array()
        .is_some_and(|c| c.len() == 1)
    {
        pod["spec"]["containers"][0]["name"] = json!("app");
        if pod["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|c| c.len() == 1)
        {
            pod["status"]["containerStatuses"][0]["name"] = json!("app");
        }
    }
    let events: Value = std::fs::read_dir(super::fixtures_dir().join("k8s").join(case))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy() == format!("events.pod.{old_name}.json"))
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap())
        .unwrap_or(json!({"items": []}));
    let events = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let suffix = e["metadata"]["name"]
                .as_str()
                .unwrap()
                .rsplit('.')
                .next()
                .unwrap()
                .to_owned();
            let mut e = moved(e.clone(), ns, &format!("{name}.{suffix}"));
            e["involvedObject"]["name"] = json!(name);
            e["involvedObject"]["namespace"] = json!(ns);
            e
        })
        .collect();
    (pod, events)
}

/// A Deployment of one replica, as a user writes it (JSON is YAML too),
/// with an init container `init` that waits for a database.
pub fn deployment(name: &str, init: Option<&str>) -> Value {
    let mut spec = json!({
        "containers": [{"name": "app", "image": format!("localhost/harness/{name}:3f2a9c41d0b7e8a2"),
                        "resources": {"limits": {"memory": "32Mi"}}}],
    });
    if let Some(init) = init {
        spec["initContainers"] = json!([{"name": init, "image": "busybox:1.36",
            "command": ["sh", "-c", "until nc -z db 5432; do echo waiting for db:5432; sleep 2; done"]}]);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    })
}

pub fn manifest(object: &Value) -> String {
    serde_json::to_string_pretty(object).unwrap() + "\n"
}

/// A Deployment's status while its one pod is not available.
pub fn unavailable() -> Value {
    json!({"status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
             "message": "ReplicaSet is progressing."}]}})
}

/// A Deployment's status once its one pod is Ready.
pub fn available() -> Value {
    json!({"status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": "ReplicaSet has successfully progressed."}]}})
}
