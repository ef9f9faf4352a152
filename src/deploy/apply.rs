//! Server-side apply through discovery.
//!
//! Each object's `apiVersion`/`kind` is resolved to its REST resource by
//! asking the API server for that one group-version (`/api/v1`,
//! `/apis/apps/v1`: kube's `pinned_group`), cached per run. A kind the cache
//! does not know is looked up again once before it is called unknown,
//! because a CRD applied earlier in the same run only becomes servable once
//! Established. Even then, an API server under load serves a new CRD's
//! group in discovery (and its REST path) a moment after the CRD reads
//! Established: objects of a kind whose CRD this applier applied are asked
//! again for up to [`NEW_KIND_CATCH_UP`] before they are called unknown.
//! Namespaced objects without a namespace get the component's;
//! every object is applied with one field manager, `harness`, and `force`:
//! the harness owns what it deploys, and a conflict with a field another
//! manager set (say, `kubectl edit` during debugging) must not wedge the next
//! `up`.

use std::collections::HashMap;
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, ApiCapabilities, Scope};
use kube::{Api, Client};
use tokio::sync::Mutex;

/// The one field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "harness";

/// One object the harness applied: enough to find it again (waiting,
/// gather, the timeline) without re-reading the manifests.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AppliedObject {
    /// `apps/v1` etc.
    pub api_version: String,
    /// `Deployment` etc.
    pub kind: String,
    /// The namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
    /// The uid the server gave it.
    pub uid: Option<String>,
    /// The REST resource, for watching it.
    #[serde(skip)]
    pub resource: ApiResource,
    /// The object as the server returned it from the apply.
    #[serde(skip)]
    pub object: DynamicObject,
}

impl AppliedObject {
    /// `Kind/namespace/name`, as in the unready table.
    pub fn resource_ref(&self) -> crate::readiness::table::ResourceRef {
        crate::readiness::table::ResourceRef {
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// An API handle for this object's resource in its namespace.
    pub fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        }
    }
}

/// The cluster's Kubernetes version as messages name it: `Kubernetes
/// v1.20.2`, or nothing when it could not be asked.
fn on(server: &Option<String>) -> String {
    match server {
        Some(v) => format!(" (Kubernetes {v})"),
        None => String::new(),
    }
}

/// Why an object could not be applied. Refusals of the API server carry
/// its own message (never kube's `Debug` dump of the Status), the object
/// and the server's version, so version skew — a field or a kind newer
/// than the cluster — reads as such and gets its own fix.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The cluster does not serve this kind in this API version.
    #[error("the cluster{} does not serve {kind} in {api_version}: {}", on(.server), unserved(.api_version, .served))]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
        /// The versions of the object's API group the cluster does serve
        /// (`discovery.k8s.io/v1beta1`); empty when it serves none.
        served: Vec<String>,
        /// The cluster's version (`v1.20.2`), when known.
        server: Option<String>,
    },
    /// Discovery failed for another reason (unreachable, forbidden...).
    #[error("cannot discover {api_version} on the cluster")]
    Discovery {
        /// The apiVersion asked for.
        api_version: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// The API server refused the apply; `message` is its own words.
    #[error("the cluster{} refused {kind} {name}: {}", on(.server), refusal(.message, .unknown_field.as_deref(), *.code, .reason))]
    Refused {
        /// The object's kind.
        kind: String,
        /// `namespace/name` or `name`.
        name: String,
        /// The server's message.
        message: String,
        /// The HTTP status.
        code: u16,
        /// The Status reason (`Invalid`, `Forbidden`...), may be empty.
        reason: String,
        /// A field the server's schema does not have (`.spec.versions[0].selectableFields`).
        unknown_field: Option<String>,
        /// The cluster's version (`v1.20.2`), when known.
        server: Option<String>,
    },
    /// The apply request itself failed (the server never answered it).
    #[error("cannot apply {kind} {name}")]
    Patch {
        /// The object's kind.
        kind: String,
        /// `namespace/name` or `name`.
        name: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// The object has no apiVersion/kind.
    #[error("an object has no apiVersion/kind")]
    Untyped,
}

fn unserved(_api_version: &str, served: &[String]) -> String {
    match served {
        [] => "neither a built-in API nor an established CRD defines it".to_owned(),
        _ => format!("its API group is served only as {} here", served.join(", ")),
    }
}

fn refusal(message: &str, unknown_field: Option<&str>, code: u16, reason: &str) -> String {
    match unknown_field {
        Some(field) => format!("its schema has no field {field}"),
        None => {
            let status = match (code, reason) {
                (0, "") => String::new(),
                (code, "") => format!(" (HTTP {code})"),
                (code, reason) => format!(" (HTTP {code} {reason})"),
            };
            format!("{}{status}", message.trim())
        }
    }
}

/// How long an apply refused because an admission webhook could not be
/// reached is asked again (see [`webhook_unreachable`]).
pub const WEBHOOK_CATCH_UP: Duration = Duration::from_secs(30);

/// How long an object of a kind whose CRD the same applier applied is
/// asked again while the cluster does not serve it yet (see [`Applier`]).
pub const NEW_KIND_CATCH_UP: Duration = Duration::from_secs(20);

/// Exponential backoff for an answer that passes by itself: each pause
/// twice the last, up to a longest one, while the time since the first
/// ask plus the next pause stays within a limit.
struct Backoff {
    asked: tokio::time::Instant,
    pause: Duration,
}

impl Backoff {
    fn new(first: Duration) -> Self {
        Self {
            asked: tokio::time::Instant::now(),
            pause: first,
        }
    }

    /// Waits the next pause and says true, or says false at once when it
    /// would go past `limit`.
    async fn again(&mut self, limit: Duration, most: Duration) -> bool {
        if self.asked.elapsed() + self.pause > limit {
            return false;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(most);
        true
    }
}

/// `(group, kind)` a CustomResourceDefinition defines; `None` for any
/// other object.
fn crd_defines(types: &kube::api::TypeMeta, data: &serde_json::Value) -> Option<(String, String)> {
    if types.kind != "CustomResourceDefinition"
        || !types.api_version.starts_with("apiextensions.k8s.io/")
    {
        return None;
    }
    let spec = data.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let kind = spec.get("names")?.get("kind")?.as_str()?;
    Some((group.to_owned(), kind.to_owned()))
}

/// Whether the API server refused because it could not reach an admission
/// webhook's endpoint (`failed calling webhook ...: connect: connection
/// refused`, `no endpoints available for service`, a timeout): a state that
/// passes once the Service's address is programmed. A webhook that answers
/// and denies is a real refusal and never matches.
pub fn webhook_unreachable(message: &str) -> bool {
    message.contains("failed calling webhook")
        && [
            "connection refused",
            "no endpoints available",
            "i/o timeout",
            "context deadline exceeded",
            "connection reset by peer",
            ": EOF",
        ]
        .iter()
        .any(|m| message.contains(m))
}

/// The field a server-side apply names as missing from the server's
/// schema: `.spec.versions[0].selectableFields` in `failed to create typed
/// patch object (...): .spec.versions[0].selectableFields: field not
/// declared in schema`. `None` for any other refusal.
pub fn unknown_field(message: &str) -> Option<String> {
    let head = message.split(": field not declared in schema").next()?;
    if head.len() == message.len() {
        return None;
    }
    let field = head.rsplit(": ").next()?.trim();
    field.starts_with('.').then(|| field.to_owned())
}

impl ApplyError {
    /// What to do about it.
    pub fn help(&self) -> Option<String> {
        const NEWER: &str = "a node image of a newer Kubernetes (cluster.kind.node_image, or HARNESS_KIND_NODE_IMAGE for every kind lane)";
        Some(match self {
            ApplyError::UnknownKind { served, kind, .. } if !served.is_empty() => format!(
                "write the manifest for a version the cluster serves ({}), or use {NEWER}; manifests that carry {kind} in one version per Kubernetes generation can say `exclude_unserved: [{kind}]` on the component",
                served.join(", ")
            ),
            ApplyError::UnknownKind { kind, .. } => format!(
                "if a CRD defines it, put the CRD in this component or in one it depends on; if this cluster is not meant to run it (a ServiceMonitor without prometheus-operator, an OpenShift object on kind), leave it out with `exclude: [{kind}]` on the component or the lane; if newer Kubernetes has it built in, use {NEWER}"
            ),
            ApplyError::Refused {
                unknown_field: Some(field),
                ..
            } => format!(
                "{field} is newer than the cluster's Kubernetes: use {NEWER}, or leave the field out of the manifest"
            ),
            ApplyError::Refused { message, .. }
                if message.contains("omits key field \"protocol\"") =>
            {
                "give every port a `protocol` (e.g. `protocol: TCP`): servers before Kubernetes 1.22 need it for server-side apply".to_owned()
            }
            ApplyError::Refused { code: 403, .. } => {
                "give the kubeconfig's user the right to apply this object (RBAC), or use a kubeconfig that has it".to_owned()
            }
            ApplyError::Refused { code: 422, .. } => {
                "fix the object in the component's manifests: the server names what it rejects".to_owned()
            }
            ApplyError::Refused { .. } => return None,
            ApplyError::Discovery { .. } | ApplyError::Patch { .. } => {
                "check that the cluster answers (`harness status` shows whether it does)".to_owned()
            }
            ApplyError::Untyped => {
                "give every object in the manifests an `apiVersion` and a `kind`".to_owned()
            }
        })
    }
}

type Resolved = (ApiResource, ApiCapabilities);

/// Applies objects, resolving their kinds through a per-run discovery cache.
pub struct Applier {
    client: Client,
    cache: Mutex<HashMap<String, Vec<Resolved>>>,
    /// `(group, kind)` of every CRD this applier applied: their objects
    /// may be unknown for a moment after the CRD is Established.
    defined: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// The server's version, asked for the first time an error needs it.
    server: tokio::sync::OnceCell<Option<String>>,
}

impl Applier {
    /// An applier with an empty discovery cache.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
            defined: std::sync::Mutex::default(),
            server: tokio::sync::OnceCell::new(),
        }
    }

    /// The cluster's `gitVersion` (`v1.20.2`), asked once; `None` when the
    /// server does not say. Only errors ask: a run that succeeds never does.
    async fn server_version(&self) -> Option<String> {
        self.server
            .get_or_init(|| async {
                self.client
                    .apiserver_version()
                    .await
                    .ok()
                    .map(|info| info.git_version)
                    .filter(|v| !v.is_empty())
            })
            .await
            .clone()
    }

    /// The versions of `group` the cluster serves (`group/version`), for
    /// telling "not served in this version" from "not served at all".
    async fn served_versions(&self, group: &str) -> Vec<String> {
        if group.is_empty() {
            return vec!["v1".to_owned()];
        }
        match self.client.list_api_groups().await {
            Ok(list) => list
                .groups
                .into_iter()
                .filter(|g| g.name == group)
                .flat_map(|g| g.versions.into_iter().map(|v| v.group_version))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// [`ApplyError::UnknownKind`] with what the cluster serves instead.
    async fn unknown_kind(&self, api_version: &str, group: &str, kind: &str) -> ApplyError {
        let served = self
            .served_versions(group)
            .await
            .into_iter()
            .filter(|v| v != api_version)
            .collect();
        ApplyError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            served,
            server: self.server_version().await,
        }
    }

    async fn query(&self, gvk: &GroupVersionKind) -> Result<Vec<Resolved>, kube::Error> {
        let gv = kube::core::GroupVersion::gv(&gvk.group, &gvk.version);
        let group = discovery::pinned_group(&self.client, &gv).await?;
        Ok(group.versioned_resources(&gvk.version))
    }

    /// Whether this applier applied the CRD that defines `kind` in `group`.
    fn defines(&self, group: &str, kind: &str) -> bool {
        self.defined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(group.to_owned(), kind.to_owned()))
    }

    /// Resolves `apiVersion`/`kind`, asking the server again once when the
    /// cached answer does not know the kind — and, for a kind whose CRD
    /// this applier applied, again with backoff for up to
    /// [`NEW_KIND_CATCH_UP`].
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved, ApplyError> {
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        let mut backoff = Backoff::new(Duration::from_millis(100));
        loop {
            let resolved = self.resolve_once(api_version, kind).await;
            let unknown_new = matches!(resolved, Err(ApplyError::UnknownKind { .. }))
                && self.defines(group, kind);
            if !(unknown_new
                && backoff
                    .again(NEW_KIND_CATCH_UP, Duration::from_secs(1))
                    .await)
            {
                return resolved;
            }
        }
    }

    async fn resolve_once(&self, api_version: &str, kind: &str) -> Result<Resolved, ApplyError> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let find = |list: &[Resolved]| list.iter().find(|(ar, _)| ar.kind == kind).cloned();
        if let Some(found) = self
            .cache
            .lock()
            .await
            .get(api_version)
            .and_then(|l| find(l))
        {
            return Ok(found);
        }
        let list = match self.query(&gvk).await {
            Ok(list) => list,
            // A group that does not exist (yet) answers 404.
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Err(self.unknown_kind(api_version, group, kind).await);
            }
            Err(source) => {
                return Err(ApplyError::Discovery {
                    api_version: api_version.to_owned(),
                    source,
                });
            }
        };
        let found = find(&list);
        self.cache.lock().await.insert(api_version.to_owned(), list);
        match found {
            Some(found) => Ok(found),
            None => Err(self.unknown_kind(api_version, group, kind).await),
        }
    }

    /// Where `object` would be applied, without applying it: its resource
    /// and (defaulted) namespace. `diagnose` and `status` use this to find
    /// what `up` deployed from the same manifests.
    pub async fn locate(
        &self,
        mut object: DynamicObject,
        namespace: &str,
    ) -> Result<AppliedObject, ApplyError> {
        let types = object.types.clone().ok_or(ApplyError::Untyped)?;
        let (resource, caps) = self.resolve(&types.api_version, &types.kind).await?;
        if caps.scope == Scope::Namespaced {
            object
                .metadata
                .namespace
                .get_or_insert_with(|| namespace.to_owned());
        } else {
            object.metadata.namespace = None;
        }
        Ok(AppliedObject {
            api_version: types.api_version,
            kind: types.kind,
            namespace: object.metadata.namespace.clone(),
            name: object.metadata.name.clone().unwrap_or_default(),
            uid: None,
            resource,
            object,
        })
    }

    /// Applies `object`, defaulting its namespace to `namespace` when the
    /// kind is namespaced and the object names none.
    pub async fn apply(
        &self,
        mut object: DynamicObject,
        namespace: &str,
    ) -> Result<AppliedObject, ApplyError> {
        let types = object.types.clone().ok_or(ApplyError::Untyped)?;
        let (resource, caps) = self.resolve(&types.api_version, &types.kind).await?;
        let name = object.metadata.name.clone().unwrap_or_default();
        let namespaced = caps.scope == Scope::Namespaced;
        if namespaced && object.metadata.namespace.is_none() {
            object.metadata.namespace = Some(namespace.to_owned());
        }
        if !namespaced {
            object.metadata.namespace = None;
        }
        let ns = object.metadata.namespace.clone();
        let api: Api<DynamicObject> = match &ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        // Managed fields are the server's bookkeeping; sending them back
        // would be rejected.
        object.metadata.managed_fields = None;
        object.metadata.resource_version = None;
        super::defaults::fill(&types.api_version, &types.kind, &mut object.data);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let shown = match &ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.clone(),
        };
        // An admission webhook whose Service just got a ready endpoint can
        // still be refused for a moment: kube-proxy programs the Service's
        // address after the endpoint is published, and until then the API
        // server's call is refused. Such a refusal is asked again, with
        // backoff, for at most WEBHOOK_CATCH_UP; any other answer is final.
        // Likewise a kind whose CRD this applier just applied: its REST
        // path can answer 404 for a moment after the CRD is Established.
        let group = types.api_version.split_once('/').map_or("", |(g, _)| g);
        let new_kind = self.defines(group, &types.kind);
        let mut backoff = Backoff::new(Duration::from_millis(250));
        let applied = loop {
            let applied = api.patch(&name, &params, &Patch::Apply(&object)).await;
            // (how long such an answer is asked again, the longest pause)
            let again = match &applied {
                Err(kube::Error::Api(status)) if webhook_unreachable(&status.message) => {
                    Some((WEBHOOK_CATCH_UP, Duration::from_secs(2)))
                }
                Err(kube::Error::Api(status)) if status.code == 404 && new_kind => {
                    Some((NEW_KIND_CATCH_UP, Duration::from_secs(1)))
                }
                _ => None,
            };
            match again {
                Some((limit, most)) if backoff.again(limit, most).await => {}
                _ => break applied,
            }
        };
        if let Ok(applied) = &applied
            && let Some(defined) = crd_defines(&types, &applied.data)
        {
            self.defined
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(defined);
        }
        let applied = match applied {
            Ok(applied) => applied,
            Err(kube::Error::Api(status)) => {
                return Err(ApplyError::Refused {
                    kind: types.kind.clone(),
                    name: shown,
                    unknown_field: unknown_field(&status.message),
                    message: status.message,
                    code: status.code,
                    reason: status.reason,
                    server: self.server_version().await,
                });
            }
            Err(source) => {
                return Err(ApplyError::Patch {
                    kind: types.kind.clone(),
                    name: shown,
                    source,
                });
            }
        };
        Ok(AppliedObject {
            api_version: types.api_version,
            kind: types.kind,
            namespace: ns,
            name,
            uid: applied.metadata.uid.clone(),
            resource,
            object: applied,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_nobody_reaches_yet_is_asked_again_a_denial_is_not() {
        // As the 1.20 test cluster's API server said it while kube-proxy had
        // not yet programmed the webhook Service's new endpoint.
        let refused = r#"Internal error occurred: failed calling webhook "remediationrequest.validate.demo.harness.dev": Post "https://remediation-webhook.harness-demo-system.svc:443/validate-remediationrequest?timeout=5s": dial tcp 10.96.236.41:443: connect: connection refused"#;
        let no_endpoints = r#"Internal error occurred: failed calling webhook "v.example.com": Post "https://hook.ns.svc:443/validate?timeout=10s": no endpoints available for service "hook""#;
        let timeout = r#"Internal error occurred: failed calling webhook "v.example.com": Post "https://hook.ns.svc:443/validate?timeout=10s": context deadline exceeded"#;
        let denied = r#"admission webhook "remediationrequest.validate.demo.harness.dev" denied the request: spec.action "reboot" is not one of restart, scale"#;
        let invalid =
            "RemediationRequest.demo.harness.dev \"x\" is invalid: spec.action: Required value";
        let unrelated_refusal = "dial tcp 10.0.0.1:443: connect: connection refused";
        for (message, again) in [
            (refused, true),
            (no_endpoints, true),
            (timeout, true),
            (denied, false),
            (invalid, false),
            (unrelated_refusal, false),
        ] {
            assert_eq!(webhook_unreachable(message), again, "{message}");
        }
    }

    /// The message of a Status captured from the 1.20 test cluster.
    fn message(file: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/k8s/apply-refusals")
            .join(file);
        let status: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        status["message"].as_str().unwrap().to_owned()
    }

    #[test]
    fn the_unknown_field_is_read_from_the_servers_message() {
        assert_eq!(
            unknown_field(&message("crd-selectablefields.response.json")).as_deref(),
            Some(".spec.versions[0].selectableFields")
        );
        assert_eq!(
            unknown_field(&message("deployment-resizepolicy.response.json")).as_deref(),
            Some(".spec.template.spec.containers[name=\"app\"].resizePolicy")
        );
        // Newer servers name the type in parentheses before the path.
        assert_eq!(
            unknown_field("failed to create typed patch object (apiextensions.k8s.io/v1, Kind=CustomResourceDefinition): .spec.versions[0].selectableFields: field not declared in schema").as_deref(),
            Some(".spec.versions[0].selectableFields")
        );
        assert_eq!(
            unknown_field(&message("deployment-invalid.response.json")),
            None
        );
        assert_eq!(
            unknown_field(&message("service-port-protocol.response.json")),
            None
        );
    }

    fn refused(file: &str, kind: &str, name: &str, code: u16, reason: &str) -> ApplyError {
        let message = message(file);
        ApplyError::Refused {
            kind: kind.into(),
            name: name.into(),
            unknown_field: unknown_field(&message),
            message,
            code,
            reason: reason.into(),
            server: Some("v1.20.2".into()),
        }
    }

    #[test]
    fn version_skew_names_object_field_and_version_once_with_its_own_fix() {
        let e = refused(
            "crd-selectablefields.response.json",
            "CustomResourceDefinition",
            "widgets.adopt.example.com",
            500,
            "",
        );
        let text = e.to_string();
        assert_eq!(
            text,
            "the cluster (Kubernetes v1.20.2) refused CustomResourceDefinition widgets.adopt.example.com: its schema has no field .spec.versions[0].selectableFields"
        );
        assert_eq!(text.matches("selectableFields").count(), 1);
        let help = e.help().unwrap();
        assert!(help.contains("cluster.kind.node_image"), "{help}");
        assert!(help.contains("HARNESS_KIND_NODE_IMAGE"), "{help}");
    }

    #[test]
    fn other_refusals_keep_the_servers_words_and_status() {
        let e = refused(
            "deployment-invalid.response.json",
            "Deployment",
            "default/bad",
            422,
            "Invalid",
        );
        let text = e.to_string();
        assert!(
            text.starts_with("the cluster (Kubernetes v1.20.2) refused Deployment default/bad: Deployment.apps \"bad\" is invalid: ["),
            "{text}"
        );
        assert!(text.ends_with("(HTTP 422 Invalid)"), "{text}");
        assert!(e.help().unwrap().starts_with("fix the object"));
        let e = refused(
            "service-port-protocol.response.json",
            "Service",
            "default/noproto",
            500,
            "",
        );
        assert!(
            e.help().unwrap().contains("protocol: TCP"),
            "{:?}",
            e.help()
        );
    }

    #[test]
    fn a_kind_not_served_says_what_is() {
        let e = ApplyError::UnknownKind {
            api_version: "discovery.k8s.io/v1".into(),
            kind: "EndpointSlice".into(),
            served: vec!["discovery.k8s.io/v1beta1".into()],
            server: Some("v1.20.2".into()),
        };
        assert_eq!(
            e.to_string(),
            "the cluster (Kubernetes v1.20.2) does not serve EndpointSlice in discovery.k8s.io/v1: its API group is served only as discovery.k8s.io/v1beta1 here"
        );
        assert!(e.help().unwrap().starts_with(
            "write the manifest for a version the cluster serves (discovery.k8s.io/v1beta1)"
        ));
        let crd = ApplyError::UnknownKind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into(),
            served: vec![],
            server: None,
        };
        assert_eq!(
            crd.to_string(),
            "the cluster does not serve Widget in example.com/v1: neither a built-in API nor an established CRD defines it"
        );
        assert!(crd.help().unwrap().starts_with("if a CRD defines it"));
        // A kind this cluster is not meant to run: the fix names `exclude`.
        assert!(
            crd.help()
                .unwrap()
                .contains("leave it out with `exclude: [Widget]` on the component or the lane"),
            "{:?}",
            crd.help()
        );
        assert!(
            e.help()
                .unwrap()
                .contains("`exclude_unserved: [EndpointSlice]`")
        );
    }
}
