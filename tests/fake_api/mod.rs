//! A scripted fake of the Kubernetes API server for testing the I/O glue,
//! after kube-rs/controller-rs `src/fixtures.rs`: `tower_test::mock::pair`
//! stands in for the HTTP connection under a real `kube::Client`, and a
//! scenario function answers each request. Every request is recorded so
//! tests can check exactly what the harness sent.
#![allow(dead_code)]

pub mod replay;
pub mod serve;
pub mod world;

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use tokio::sync::oneshot;

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub body: String,
}

impl Req {
    /// The request as recorded, from its head and its collected body.
    pub fn new(parts: &http::request::Parts, body: &[u8]) -> Self {
        Self {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned()),
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }

    pub fn is_watch(&self) -> bool {
        self.query.contains("watch=true") || self.query.contains("watch=1")
    }
    /// The query parameter `key`, percent-decoded.
    pub fn param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| decode(v))
        })
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// How the scenario answers a request.
pub enum Reply {
    /// A JSON body with this status.
    Json(u16, String),
    /// A plain-text body (logs).
    Text(u16, String),
    /// Never answer (a watch that stays open with nothing to say).
    Hold,
    /// Answer when the test sends the reply (a watch event at a chosen time).
    Later(oneshot::Receiver<(u16, String)>),
}

/// The recorded requests.
pub type Log = Arc<Mutex<Vec<Req>>>;

/// Starts the fake: a client talking to `scenario`, and the request log.
pub fn spawn(mut scenario: impl FnMut(&Req) -> Reply + Send + 'static) -> (kube::Client, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let recorded = log.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await.unwrap_or_default();
            let req = Req::new(&parts, &body);
            recorded.lock().unwrap().push(req.clone());
            let respond = |send: tower_test::mock::SendResponse<Response<Body>>,
                           status: u16,
                           text: String,
                           json: bool| {
                let ct = if json {
                    "application/json"
                } else {
                    "text/plain"
                };
                send.send_response(
                    Response::builder()
                        .status(status)
                        .header("content-type", ct)
                        .body(Body::from(text.into_bytes()))
                        .unwrap(),
                );
            };
            match scenario(&req) {
                Reply::Json(status, text) => respond(send, status, text, true),
                Reply::Text(status, text) => respond(send, status, text, false),
                Reply::Hold => held.push(send),
                Reply::Later(rx) => {
                    tokio::spawn(async move {
                        if let Ok((status, text)) = rx.await {
                            respond(send, status, text, true);
                        }
                    });
                }
            }
        }
    });
    (kube::Client::new(service, "default"), log)
}

/// The repository's `tests/fixtures`, from whichever package's tests
/// include this module (the library's, or the binary's under `cli/`).
pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("tests/fixtures"))
        .find(|dir| dir.is_dir())
        .expect("tests/fixtures above the package")
}

/// Reads a fixture under tests/fixtures/k8s.
pub fn fixture(path: &str) -> String {
    let p = fixtures_dir().join("k8s").join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A list response of `kind` with `items`.
pub fn list(kind: &str, items: &[serde_json::Value]) -> String {
    serde_json::json!({
        "kind": kind, "apiVersion": "v1",
        "metadata": {"resourceVersion": "718"},
        "items": items,
    })
    .to_string()
}

/// A discovery document for one group-version.
pub fn resources(group_version: &str, resources: &[(&str, &str, bool)]) -> String {
    let resources: Vec<_> = resources
        .iter()
        .map(|(name, kind, namespaced)| {
            serde_json::json!({
                "name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            })
        })
        .collect();
    serde_json::json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": group_version, "resources": resources,
    })
    .to_string()
}

/// The discovery document of `apiextensions.k8s.io/v1`, for servers that
/// are applied a CRD.
pub fn crd_discovery() -> Reply {
    Reply::Json(
        200,
        resources(
            "apiextensions.k8s.io/v1",
            &[(
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            )],
        ),
    )
}

/// A 404 Status.
pub fn not_found(what: &str) -> Reply {
    Reply::Json(
        404,
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("{what} not found"), "reason": "NotFound", "code": 404,
        })
        .to_string(),
    )
}
