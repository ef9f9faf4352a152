//! The [`Source`] gather reads from a live cluster through kube.
//!
//! Discovery runs once per gather; every namespaced kind that can be listed
//! is listed (Secrets and Events have their own calls). Logs are streamed
//! chunk by chunk from the API server into the bundle.

use std::time::Duration;

use bytes::Bytes;
use futures_util::io::AsyncBufReadExt;
use futures_util::stream;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::{Client, Resource};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::collect::{LogStream, Source};

/// Reads a live cluster.
pub struct KubeSource {
    client: Client,
    /// CRDs to keep (the project's), by name; every other CRD is left out.
    crds: Vec<String>,
    discovery: OnceCell<Result<Discovery, String>>,
}

impl KubeSource {
    pub fn new(client: Client, crds: Vec<String>) -> Self {
        Self {
            client,
            crds,
            discovery: OnceCell::new(),
        }
    }

    async fn discovery(&self) -> Result<&Discovery, String> {
        self.discovery
            .get_or_init(|| async {
                Discovery::new(self.client.clone())
                    .run()
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A typed object as JSON with its apiVersion and kind (lists omit them).
fn with_type<K: Resource<DynamicType = ()> + serde::Serialize>(object: &K) -> Value {
    let mut v = serde_json::to_value(object).unwrap_or(Value::Null);
    v["apiVersion"] = K::api_version(&()).into();
    v["kind"] = K::kind(&()).into();
    v
}

impl Source for KubeSource {
    async fn objects(&self, namespace: &str) -> Result<Vec<Value>, String> {
        let discovery = self.discovery().await?;
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                let skip =
                    matches!(ar.kind.as_str(), "Secret" | "Event") || ar.plural.contains('/');
                if skip || caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::LIST)
                {
                    continue;
                }
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), namespace, &ar);
                match api.list(&ListParams::default()).await {
                    Ok(list) => out.extend(list.items.into_iter().map(|o| {
                        let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
                        v["apiVersion"] = ar.api_version.clone().into();
                        v["kind"] = ar.kind.clone().into();
                        v
                    })),
                    Err(e) => errors.push(format!("{}: {e}", ar.plural)),
                }
            }
        }
        // Some kinds may be forbidden or broken (an aggregated API that is
        // down); keep what was read and say what was not.
        if out.is_empty() && !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(out)
    }

    async fn secrets(&self, namespace: &str) -> Result<Vec<Value>, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok(list.items.iter().map(with_type).collect())
    }

    async fn events(&self, namespace: &str) -> Result<Value, String> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut items: Vec<Value> = list.items.iter().map(with_type).collect();
        // Oldest first, the order a person reads a story in.
        items.sort_by_key(|e| {
            e.get("lastTimestamp")
                .or_else(|| e.get("eventTime"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        Ok(serde_json::json!({"apiVersion": "v1", "kind": "EventList", "items": items}))
    }

    async fn pods(&self, namespace: &str) -> Result<Vec<Pod>, String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items)
    }

    async fn cluster_objects(&self) -> Result<Vec<Value>, String> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let mut out: Vec<Value> = nodes
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .map(with_type)
            .collect();
        if !self.crds.is_empty() {
            let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
            let list = crds
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            out.extend(
                list.items
                    .iter()
                    .filter(|c| {
                        c.metadata
                            .name
                            .as_ref()
                            .is_some_and(|n| self.crds.contains(n))
                    })
                    .map(with_type),
            );
        }
        Ok(out)
    }

    async fn log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        since: Option<Duration>,
    ) -> Result<LogStream, String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(container.to_owned()),
            previous,
            since_seconds: since.map(|s| s.as_secs().max(1) as i64),
            ..LogParams::default()
        };
        let reader = Box::pin(
            api.log_stream(pod, &params)
                .await
                .map_err(|e| e.to_string())?,
        );
        Ok(Box::pin(stream::unfold(reader, |mut reader| async move {
            let chunk = match reader.fill_buf().await {
                Ok([]) => return None,
                Ok(buf) => Bytes::copy_from_slice(buf),
                Err(e) => return Some((Err(e), reader)),
            };
            reader.consume_unpin(chunk.len());
            Some((Ok(chunk), reader))
        })))
    }
}
