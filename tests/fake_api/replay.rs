//! Replays captured watch streams through a fake API server, with their
//! original timing.
//!
//! A capture (`tests/fixtures/k8s-1.28/<case>/watch.*.jsonl`) holds the
//! events the API server streamed for pods, deployments, replicasets and
//! events. They are merged in `resourceVersion` order (one etcd revision
//! counter orders them all) and each is given its time: the latest
//! `managedFields[].time` of the object (events: their last timestamp),
//! never earlier than the one before, relative to `applied-at.txt`. A
//! LIST answers empty at the first revision; a WATCH answers with a body
//! that yields each matching event at `origin + its offset` and then stays
//! open. Under tokio's paused clock the gaps cost nothing, and the harness
//! sees the events in the order and at the spacing the cluster sent them.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::{self, BoxStream};
use http::{Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use serde_json::Value;
use tokio::time::Instant;

use super::{Log, Reply, Req};

/// One captured watch event.
#[derive(Clone, Debug)]
pub struct Item {
    /// `pods`, `deployments`, `replicasets` or `events`.
    pub resource: String,
    /// When it came, after the apply.
    pub offset: Duration,
    /// Its resourceVersion (0 for bookmarks, which follow their neighbours).
    pub rv: u64,
    /// The watch event as the server sent it.
    pub line: String,
    /// Its object.
    pub object: Value,
}

/// A capture: what was applied, when, and every watch event after.
#[derive(Clone, Debug)]
pub struct Capture {
    pub dir: PathBuf,
    pub namespace: String,
    pub applied_at: Timestamp,
    pub items: Vec<Item>,
}

fn time_of(object: &Value) -> Option<Timestamp> {
    let managed = object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["time"].as_str()?.parse().ok())
        .max();
    managed.or_else(|| {
        ["lastTimestamp", "eventTime", "firstTimestamp"]
            .iter()
            .find_map(|k| object[*k].as_str()?.parse().ok())
    })
}

impl Capture {
    /// Loads `tests/fixtures/<case>`.
    pub fn load(case: &str) -> Self {
        let dir = super::fixtures_dir().join(case);
        let applied_at: Timestamp = std::fs::read_to_string(dir.join("applied-at.txt"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut items = Vec::new();
        let mut namespace = String::new();
        for resource in ["pods", "deployments", "replicasets", "events"] {
            let text =
                std::fs::read_to_string(dir.join(format!("watch.{resource}.jsonl"))).unwrap();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let event: Value = serde_json::from_str(line).unwrap();
                let object = event["object"].clone();
                let rv = object["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if let Some(ns) = object["metadata"]["namespace"].as_str() {
                    namespace = ns.to_owned();
                }
                items.push(Item {
                    resource: resource.to_owned(),
                    offset: Duration::ZERO,
                    rv: if event["type"] == "BOOKMARK" { 0 } else { rv },
                    line: line.to_owned(),
                    object,
                });
            }
        }
        // Bookmarks carry the latest revision: keep them after what they follow.
        items.retain(|i| i.rv > 0);
        items.sort_by_key(|i| i.rv);
        let mut capture = Self {
            dir,
            namespace,
            applied_at,
            items,
        };
        capture.time();
        capture
    }

    /// One captured watch stream of `resource` (`tests/fixtures/<path>`),
    /// timed from its first event.
    pub fn from_watch(path: &str, resource: &str) -> Self {
        let file = super::fixtures_dir().join(path);
        let text = std::fs::read_to_string(&file).unwrap();
        let mut items: Vec<Item> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let event: Value = serde_json::from_str(line).unwrap();
                let object = event["object"].clone();
                let rv = object["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Item {
                    resource: resource.to_owned(),
                    offset: Duration::ZERO,
                    rv: if event["type"] == "BOOKMARK" { 0 } else { rv },
                    line: line.to_owned(),
                    object,
                }
            })
            .filter(|i| i.rv > 0)
            .collect();
        items.sort_by_key(|i| i.rv);
        let applied_at = items
            .iter()
            .filter_map(|i| time_of(&i.object))
            .min()
            .unwrap();
        let namespace = items[0].object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut capture = Self {
            dir: file.parent().unwrap().to_owned(),
            namespace,
            applied_at,
            items,
        };
        capture.time();
        capture
    }

    fn time(&mut self) {
        let mut latest = self.applied_at;
        for item in &mut self.items {
            let t = time_of(&item.object).unwrap_or(latest).max(latest);
            latest = t;
            item.offset =
                Duration::try_from(t.duration_since(self.applied_at)).unwrap_or(Duration::ZERO);
        }
    }

    /// The first object of `resource` (its ADDED state).
    pub fn first(&self, resource: &str) -> Value {
        self.items
            .iter()
            .find(|i| i.resource == resource)
            .map(|i| i.object.clone())
            .unwrap()
    }

    /// A file of the capture.
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    fn matching<'a>(&'a self, resource: &'a str, req: &'a Req) -> impl Iterator<Item = &'a Item> {
        let fields = req.param("fieldSelector");
        let labels = req.param("labelSelector");
        self.items.iter().filter(move |i| {
            i.resource == resource
                && fields
                    .as_deref()
                    .is_none_or(|f| selects(&i.object, f, false))
                && labels
                    .as_deref()
                    .is_none_or(|l| selects(&i.object, l, true))
        })
    }
}

/// Whether `object` matches a `k=v,k2=v2` selector (labels, or the fields
/// the harness selects on).
fn selects(object: &Value, selector: &str, labels: bool) -> bool {
    selector.split(',').all(|term| {
        let Some((key, value)) = term.split_once('=') else {
            return true;
        };
        let actual = if labels {
            object["metadata"]["labels"][key].as_str()
        } else {
            match key {
                "metadata.name" => object["metadata"]["name"].as_str(),
                "involvedObject.kind" => object["involvedObject"]["kind"].as_str(),
                "involvedObject.uid" => object["involvedObject"]["uid"].as_str(),
                _ => None,
            }
        };
        actual == Some(value)
    })
}

type Chunks = BoxStream<'static, Result<Frame<Bytes>, Infallible>>;
pub type ReplayBody = StreamBody<Chunks>;

fn body(text: String) -> ReplayBody {
    StreamBody::new(stream::once(async move { Ok(Frame::data(Bytes::from(text))) }).boxed())
}

/// The resource of a namespaced collection path: `/api/v1/namespaces/ns/pods` → `pods`.
fn collection(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/api/v1/namespaces/")
        .or_else(|| path.strip_prefix("/apis/apps/v1/namespaces/"))?;
    let mut parts = rest.split('/');
    let _ns = parts.next()?;
    let resource = parts.next()?;
    parts.next().is_none().then_some(resource)
}

/// Serves `capture`: watches of its resources replay it from `origin`;
/// anything else goes to `extra` (404 when it has no answer).
pub fn serve(
    capture: Arc<Capture>,
    origin: Instant,
    mut extra: impl FnMut(&Req) -> Option<Reply> + Send + 'static,
) -> (kube::Client, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<ReplayBody>>();
    let log: Log = Arc::default();
    let recorded = log.clone();
    tokio::spawn(async move {
        let watched = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
        while let Some((request, send)) = handle.next_request().await {
            let (parts, b) = request.into_parts();
            let b = b.collect_bytes().await.unwrap_or_default();
            let req = Req::new(&parts, &b);
            recorded.lock().unwrap().push(req.clone());
            let json = |status: u16, text: String| {
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(body(text))
                    .unwrap()
            };
            let answer = extra(&req);
            let captured = collection(&req.path)
                .filter(|r| ["pods", "deployments", "replicasets", "events"].contains(r))
                .filter(|_| req.method == "GET" && answer.is_none());
            match captured {
                Some(resource) if req.is_watch() => {
                    // One replay per watch; a reconnect sees nothing new.
                    let key = format!(
                        "{}?{}",
                        req.path,
                        req.param("labelSelector").unwrap_or_default()
                    ) + &req.param("fieldSelector").unwrap_or_default();
                    let first = watched.lock().unwrap().insert(key);
                    let lines: Vec<(Duration, String)> = if first {
                        capture
                            .matching(resource, &req)
                            .map(|i| (i.offset, format!("{}\n", i.line)))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let timed = stream::iter(lines)
                        .then(move |(offset, line)| async move {
                            tokio::time::sleep_until(origin + offset).await;
                            Ok(Frame::data(Bytes::from(line)))
                        })
                        .chain(stream::pending());
                    send.send_response(
                        Response::builder()
                            .status(200)
                            .header("content-type", "application/json")
                            .body(StreamBody::new(timed.boxed()))
                            .unwrap(),
                    );
                }
                Some(resource) => {
                    let kind = match resource {
                        "pods" => "PodList",
                        "deployments" => "DeploymentList",
                        "replicasets" => "ReplicaSetList",
                        _ => "EventList",
                    };
                    let first_rv = capture.items.first().map_or(1, |i| i.rv - 1);
                    let list = serde_json::json!({
                        "kind": kind, "apiVersion": "v1",
                        "metadata": {"resourceVersion": first_rv.to_string()},
                        "items": [],
                    });
                    send.send_response(json(200, list.to_string()));
                }
                None => match answer {
                    Some(Reply::Json(status, text)) => send.send_response(json(status, text)),
                    Some(Reply::Text(status, text)) => send.send_response(
                        Response::builder()
                            .status(status)
                            .header("content-type", "text/plain")
                            .body(body(text))
                            .unwrap(),
                    ),
                    Some(Reply::Hold) => {
                        let held = stream::pending().boxed();
                        send.send_response(
                            Response::builder()
                                .status(200)
                                .header("content-type", "application/json")
                                .body(StreamBody::new(held))
                                .unwrap(),
                        );
                    }
                    Some(Reply::Later(_)) => unimplemented!("not used by replays"),
                    None => send.send_response(json(
                        404,
                        serde_json::json!({
                            "kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": format!("{} not found", req.path),
                            "reason": "NotFound", "code": 404,
                        })
                        .to_string(),
                    )),
                },
            }
        }
    });
    (kube::Client::new(service, "default"), log)
}
