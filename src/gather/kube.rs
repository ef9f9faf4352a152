//! The [`Source`] gather reads from a live cluster through kube.
//!
//! Discovery runs once per gather, group by group: a group whose discovery
//! fails (an aggregated API such as metrics.k8s.io whose server is down
//! answers 503) is recorded and the other groups are still listed, where
//! kube's `Discovery::run` would fail as a whole. Every namespaced kind that
//! can be listed is listed (Secrets and Events have their own calls), at the
//! group's preferred version; a kind whose list fails is recorded, the
//! others are kept. Logs are streamed chunk by chunk from the API server
//! into the bundle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::io::AsyncBufReadExt;
use futures_util::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResource, APIResourceList};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams};
use kube::{Client, Resource};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::collect::{Listed, LogStream, Source};
use crate::readiness::classify::event_time;

/// Lists at once within one namespace, and discovery requests at once.
const LISTS_AT_ONCE: usize = 8;

/// What discovery found: the namespaced kinds to list, the cluster-scoped
/// kinds (to read what the lane applied), and the group-versions whose
/// discovery failed.
#[derive(Debug)]
struct Discovered {
    resources: Vec<ApiResource>,
    cluster: Vec<ApiResource>,
    failed: Vec<(String, String)>,
}

/// An object the lane's manifests declare (or a namespace gather covers),
/// by type and name. Those that discovery says are cluster-scoped are read
/// one by one into `cluster/`; namespaced ones are already listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// Reads a live cluster.
pub struct KubeSource {
    client: Client,
    /// CRDs to keep (the project's), by name; every other CRD is left out.
    crds: Vec<String>,
    /// Objects the lane applied, read when they are cluster-scoped.
    declared: Vec<Declared>,
    discovery: OnceCell<Result<Discovered, String>>,
    /// Discovery failures are recorded once, with the first namespace listed.
    discovery_reported: AtomicBool,
}

impl KubeSource {
    pub fn new(client: Client, crds: Vec<String>) -> Self {
        Self {
            client,
            crds,
            declared: Vec::new(),
            discovery: OnceCell::new(),
            discovery_reported: AtomicBool::new(false),
        }
    }

    /// Also reads these objects into `cluster/` when they are cluster-scoped
    /// (ClusterRoles, Namespaces, cluster-scoped custom resources…).
    pub fn with_declared(mut self, declared: Vec<Declared>) -> Self {
        self.declared = declared;
        self
    }

    async fn discovery(&self) -> Result<&Discovered, String> {
        self.discovery
            .get_or_init(|| discover(&self.client))
            .await
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Whether gather lists this resource of a discovery document: namespaced,
/// listable, not a subresource (`pods/log`), and not a Secret or an Event
/// (collected by their own calls; `events.k8s.io` serves the same events).
fn listable(resource: &APIResource) -> bool {
    resource.namespaced
        && !resource.name.contains('/')
        && resource.verbs.iter().any(|v| v == "list")
        && !matches!(resource.kind.as_str(), "Secret" | "Event")
}

/// Whether a cluster-scoped object of this resource can be read by name.
fn readable_cluster_scoped(resource: &APIResource) -> bool {
    !resource.namespaced
        && !resource.name.contains('/')
        && resource.verbs.iter().any(|v| v == "get")
}

/// The resources of a group-version's discovery document that `keep` keeps.
fn resources_where(
    group: &str,
    version: &str,
    list: &APIResourceList,
    keep: fn(&APIResource) -> bool,
) -> Vec<ApiResource> {
    list.resources
        .iter()
        .filter(|r| keep(r))
        .map(|r| ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: list.group_version.clone(),
            kind: r.kind.clone(),
            plural: r.name.clone(),
        })
        .collect()
}

/// Discovery, group by group, at each group's preferred version. Fails only
/// when neither the core API nor the group list could be read.
async fn discover(client: &Client) -> Result<Discovered, String> {
    let mut failed = Vec::new();
    // (group, version) to ask for.
    let mut versions: Vec<(String, String)> = Vec::new();
    match client.list_core_api_versions().await {
        // The core group has one version, v1; take the first listed as kube does.
        Ok(core) => versions.extend(core.versions.first().map(|v| (String::new(), v.clone()))),
        Err(e) => failed.push(("discovery of the core API (/api)".to_owned(), e.to_string())),
    }
    match client.list_api_groups().await {
        Ok(groups) => versions.extend(groups.groups.into_iter().filter_map(|g| {
            let preferred = g
                .preferred_version
                .or_else(|| g.versions.into_iter().next())?;
            Some((g.name, preferred.version))
        })),
        Err(e) => failed.push(("discovery of API groups (/apis)".to_owned(), e.to_string())),
    }
    if versions.is_empty() {
        let why: Vec<String> = failed.iter().map(|(w, e)| format!("{w}: {e}")).collect();
        return Err(why.join("; "));
    }
    let documents = stream::iter(versions)
        .map(|(group, version)| async move {
            let list = if group.is_empty() {
                client.list_core_api_resources(&version).await
            } else {
                client
                    .list_api_group_resources(&format!("{group}/{version}"))
                    .await
            };
            (group, version, list)
        })
        .buffered(LISTS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut resources = Vec::new();
    let mut cluster = Vec::new();
    for (group, version, list) in documents {
        match list {
            Ok(list) => {
                resources.extend(resources_where(&group, &version, &list, listable));
                cluster.extend(resources_where(
                    &group,
                    &version,
                    &list,
                    readable_cluster_scoped,
                ));
            }
            Err(e) => {
                let gv = if group.is_empty() {
                    version
                } else {
                    format!("{group}/{version}")
                };
                failed.push((format!("discovery of {gv}"), e.to_string()));
            }
        }
    }
    Ok(Discovered {
        resources,
        cluster,
        failed,
    })
}

impl KubeSource {
    /// The declared objects that are cluster-scoped, read by name, and the
    /// project's cluster-scoped custom resources, listed.
    async fn cluster_scoped(&self, discovered: &Discovered) -> (Vec<Value>, Vec<(String, String)>) {
        let mut objects = Vec::new();
        let mut failed = Vec::new();
        let typed = |o: DynamicObject, ar: &ApiResource| {
            let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
            v["apiVersion"] = ar.api_version.clone().into();
            v["kind"] = ar.kind.clone().into();
            v
        };
        for ar in discovered
            .cluster
            .iter()
            .filter(|ar| self.crds.contains(&resource_name(ar)))
        {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), ar);
            match api.list(&ListParams::default()).await {
                Ok(list) => objects.extend(list.items.into_iter().map(|o| typed(o, ar))),
                Err(e) => failed.push((resource_name(ar), e.to_string())),
            }
        }
        let reads = cluster_scoped_reads(&self.declared, &discovered.cluster);
        let got = stream::iter(reads)
            .map(|(declared, ar)| {
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
                async move {
                    let got = api.get_opt(&declared.name).await;
                    (declared, ar, got)
                }
            })
            .buffered(LISTS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        for (declared, ar, got) in got {
            let what = format!("{}/{}", resource_name(&ar), declared.name);
            match got {
                Ok(Some(o)) => objects.push(typed(o, &ar)),
                Ok(None) => failed.push((
                    what,
                    "not found, although the lane's manifests declare it".into(),
                )),
                Err(e) => failed.push((what, e.to_string())),
            }
        }
        (objects, failed)
    }
}

/// Which declared objects to read by name, with the resource each is
/// served by: cluster-scoped ones only (namespaced ones are listed with
/// their namespace), matched by group and kind at the version discovery
/// prefers, each once. CRDs and the project's CRs are collected whole
/// elsewhere; a kind discovery does not know is left out.
fn cluster_scoped_reads(
    declared: &[Declared],
    cluster: &[ApiResource],
) -> Vec<(Declared, ApiResource)> {
    let mut reads: Vec<(Declared, ApiResource)> = Vec::new();
    for d in declared {
        let group = d.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let Some(ar) = cluster
            .iter()
            .find(|ar| ar.group == group && ar.kind == d.kind)
        else {
            continue;
        };
        let seen = reads
            .iter()
            .any(|(r, a)| a.plural == ar.plural && a.group == ar.group && r.name == d.name);
        if ar.kind != "CustomResourceDefinition" && !seen {
            reads.push((d.clone(), ar.clone()));
        }
    }
    reads
}

/// A resource's name as kubectl writes it: `configmaps`, `deployments.apps`.
fn resource_name(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
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
    async fn objects(&self, namespace: &str) -> Result<Listed, String> {
        let discovered = self.discovery().await?;
        let mut listed = Listed::default();
        if !self.discovery_reported.swap(true, Ordering::SeqCst) {
            listed.failed.extend(discovered.failed.iter().cloned());
        }
        // Owned items: a stream of borrowed ones trips the compiler's
        // higher-ranked lifetime check on the Send future of this method.
        let lists = stream::iter(discovered.resources.clone())
            .map(|ar| {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), namespace, &ar);
                async move {
                    let list = api.list(&ListParams::default()).await;
                    (ar, list)
                }
            })
            .buffered(LISTS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        for (ar, list) in lists {
            match list {
                Ok(list) => listed.objects.extend(list.items.into_iter().map(|o| {
                    let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
                    v["apiVersion"] = ar.api_version.clone().into();
                    v["kind"] = ar.kind.clone().into();
                    v
                })),
                // Forbidden, or served by an API that is down: say so, keep the rest.
                Err(e) => listed.failed.push((
                    format!("{} in {namespace}", resource_name(&ar)),
                    e.to_string(),
                )),
            }
        }
        Ok(listed)
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
        let mut events = list.items;
        // Oldest first, the order a person reads a story in. Compared as
        // times, not strings: events written through events.k8s.io have no
        // lastTimestamp but a microsecond eventTime, and "…:38.5Z" sorts
        // before "…:38Z" as text.
        events.sort_by_key(event_time);
        let items: Vec<Value> = events.iter().map(with_type).collect();
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

    async fn cluster_objects(&self) -> Result<Listed, String> {
        let mut listed = Listed::default();
        let nodes: Api<Node> = Api::all(self.client.clone());
        match nodes.list(&ListParams::default()).await {
            Ok(list) => listed.objects.extend(list.items.iter().map(with_type)),
            Err(e) => listed.failed.push(("nodes".into(), e.to_string())),
        }
        if !self.crds.is_empty() {
            let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
            match crds.list(&ListParams::default()).await {
                Ok(list) => listed.objects.extend(
                    list.items
                        .iter()
                        .filter(|c| {
                            c.metadata
                                .name
                                .as_ref()
                                .is_some_and(|n| self.crds.contains(n))
                        })
                        .map(with_type),
                ),
                Err(e) => listed
                    .failed
                    .push(("customresourcedefinitions".into(), e.to_string())),
            }
        }
        // What the lane applied outside any namespace, and every instance
        // of the project's cluster-scoped custom resources.
        match self.discovery().await {
            Ok(discovered) => {
                let (objects, failed) = self.cluster_scoped(discovered).await;
                listed.objects.extend(objects);
                listed.failed.extend(failed);
            }
            Err(e) => listed.failed.push(("discovery".into(), e)),
        }
        Ok(listed)
    }

    async fn log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        since: Option<Duration>,
    ) -> Result<Option<LogStream>, String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(container.to_owned()),
            previous,
            since_seconds: since.map(|s| s.as_secs().max(1) as i64),
            ..LogParams::default()
        };
        let mut reader = Box::pin(match api.log_stream(pod, &params).await {
            Ok(reader) => reader,
            Err(kube::Error::Api(status)) if previous && previous_not_kept(&status) => {
                return Ok(None);
            }
            Err(e) => return Err(e.to_string()),
        });
        // The first chunk, to see whether it is the kubelet's note that the
        // previous instance is gone, which some kubelets send as the log.
        let first = match reader.fill_buf().await {
            Ok(buf) => Bytes::copy_from_slice(buf),
            Err(e) => return Err(e.to_string()),
        };
        reader.consume_unpin(first.len());
        if previous && is_previous_gone_note(&first) {
            return Ok(None);
        }
        let first = stream::iter((!first.is_empty()).then_some(Ok(first)));
        let rest = stream::unfold(reader, |mut reader| async move {
            let chunk = match reader.fill_buf().await {
                Ok([]) => return None,
                Ok(buf) => Bytes::copy_from_slice(buf),
                Err(e) => return Some((Err(e), reader)),
            };
            reader.consume_unpin(chunk.len());
            Some((Ok(chunk), reader))
        });
        Ok(Some(Box::pin(first.chain(rest))))
    }
}

/// The API server's answer when a pod's status still counts restarts but
/// the kubelet has no terminated instance left to read: 400 `previous
/// terminated container "migrate" in pod "audit-migrations-x" not found`
/// (after the kubelet removed the dead container of a completed pod).
/// There is no previous log to collect, which is not a failure.
fn previous_not_kept(status: &kube::core::Status) -> bool {
    status.code == 400
        && status.message.contains("previous terminated container")
        && status.message.ends_with("not found")
}

/// What a Kubernetes 1.20 kubelet sends, with status 200, as the previous
/// log of a container whose dead instance it has removed:
/// `unable to retrieve container logs for containerd://<id>` — the same
/// note the diagnosis's evidence reads as "not kept by the kubelet".
fn is_previous_gone_note(first: &[u8]) -> bool {
    first.len() < 512
        && crate::readiness::evidence::missing_log(&String::from_utf8_lossy(first)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(name: &str, kind: &str, namespaced: bool, verbs: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..APIResource::default()
        }
    }

    #[test]
    fn only_namespaced_listable_kinds_without_their_own_call_are_listed() {
        let all = [
            "create", "delete", "get", "list", "patch", "update", "watch",
        ];
        let cases = [
            (resource("configmaps", "ConfigMap", true, &all), true),
            (resource("pods", "Pod", true, &all), true),
            // A subresource shares its parent's kind.
            (resource("pods/log", "Pod", true, &["get"]), false),
            (resource("pods/status", "Pod", true, &all), false),
            // Create-only kinds (bindings, access reviews) cannot be listed.
            (resource("bindings", "Binding", true, &["create"]), false),
            (resource("nodes", "Node", false, &all), false),
            (resource("secrets", "Secret", true, &all), false),
            (resource("events", "Event", true, &all), false),
        ];
        for (r, want) in cases {
            assert_eq!(listable(&r), want, "{}", r.name);
        }
    }

    #[test]
    fn resources_carry_the_group_version_they_were_discovered_at() {
        let list = APIResourceList {
            group_version: "apps/v1".into(),
            resources: vec![
                resource("deployments", "Deployment", true, &["get", "list"]),
                resource("deployments/scale", "Scale", true, &["get"]),
            ],
        };
        let found = resources_where("apps", "v1", &list, listable);
        assert_eq!(found.len(), 1);
        let ar = &found[0];
        assert_eq!(
            (&*ar.group, &*ar.version, &*ar.api_version, &*ar.kind),
            ("apps", "v1", "apps/v1", "Deployment")
        );
        assert_eq!(resource_name(ar), "deployments.apps");
    }

    fn ar(api_version: &str, kind: &str, plural: &str) -> ApiResource {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    fn declared(api_version: &str, kind: &str, name: &str) -> Declared {
        Declared {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn cluster_scoped_declared_objects_are_read_once_at_the_preferred_version() {
        let cluster = [
            ar("v1", "Namespace", "namespaces"),
            ar(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "clusterroles",
            ),
            ar(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
            ),
        ];
        let reads = cluster_scoped_reads(
            &[
                declared("v1", "Namespace", "fx"),
                // Declared at an older version: read at the one served.
                declared("rbac.authorization.k8s.io/v1beta1", "ClusterRole", "reader"),
                declared("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
                // Namespaced: listed with its namespace, not read here.
                declared("v1", "ConfigMap", "app"),
                // Collected whole elsewhere.
                declared(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    "widgets.example.com",
                ),
                // A kind this cluster does not serve.
                declared("example.com/v1", "Gadget", "g"),
            ],
            &cluster,
        );
        let got: Vec<(String, &str)> = reads
            .iter()
            .map(|(d, a)| (resource_name(a), d.name.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("namespaces".to_string(), "fx"),
                (
                    "clusterroles.rbac.authorization.k8s.io".to_string(),
                    "reader"
                ),
            ]
        );
    }

    #[test]
    fn cluster_scoped_means_readable_by_name_and_not_a_subresource() {
        let all = ["get", "list"];
        assert!(readable_cluster_scoped(&resource(
            "nodes", "Node", false, &all
        )));
        assert!(!readable_cluster_scoped(&resource(
            "pods", "Pod", true, &all
        )));
        assert!(!readable_cluster_scoped(&resource(
            "nodes/proxy",
            "NodeProxyOptions",
            false,
            &["get"]
        )));
        assert!(!readable_cluster_scoped(&resource(
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
            &["create"]
        )));
    }

    #[test]
    fn a_previous_log_the_kubelet_no_longer_keeps_is_told_apart_from_a_failure() {
        let status = |code: u16, message: &str| kube::core::Status {
            code,
            message: message.into(),
            ..kube::core::Status::default()
        };
        // Kubelet wording (pkg/kubelet/kubelet_pods.go, validateContainerLogStatus).
        assert!(previous_not_kept(&status(
            400,
            "previous terminated container \"migrate\" in pod \"audit-migrations-2x7fq\" not found"
        )));
        for other in [
            status(
                400,
                "container \"app\" in pod \"web\" is waiting to start: PodInitializing",
            ),
            status(404, "pods \"web\" not found"),
            status(
                500,
                "previous terminated container \"a\" in pod \"b\" not found",
            ),
        ] {
            assert!(!previous_not_kept(&other), "{}", other.message);
        }
        // As a 1.20 kubelet answered on the test cluster, for a Job pod whose
        // first attempt failed and whose second completed.
        assert!(is_previous_gone_note(
            b"unable to retrieve container logs for containerd://1e98a9ae75219ff66807c790b19b5479d1e8f9858e30fed34f37c90f543d56d7"
        ));
        assert!(!is_previous_gone_note(
            b"unable to retrieve container logs for x\nbut then a real log line\n"
        ));
        assert!(!is_previous_gone_note(b"app starting at 14:18:14\n"));
        assert!(!is_previous_gone_note(b""));
    }
}
