//! Server-side apply through discovery.
//!
//! Each object's `apiVersion`/`kind` is resolved to its REST resource by
//! asking the API server for that one group-version (`/api/v1`,
//! `/apis/apps/v1`: kube's `pinned_group`), cached per run. A kind the cache
//! does not know is looked up again once before it is called unknown,
//! because a CRD applied earlier in the same run only becomes servable once
//! Established. Namespaced objects without a namespace get the component's;
//! every object is applied with one field manager, `harness`, and `force`:
//! the harness owns what it deploys, and a conflict with a field another
//! manager set (say, `kubectl edit` during debugging) must not wedge the next
//! `up`.

use std::collections::HashMap;

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

/// Why an object could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The cluster does not serve this kind.
    #[error(
        "the cluster does not serve {kind} ({api_version}); if a CRD defines it, put the CRD in this component or one it depends on"
    )]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
        /// What discovery answered.
        #[source]
        source: Option<kube::Error>,
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
    /// The API server refused the apply.
    #[error("server-side apply of {kind} {name} was refused")]
    Patch {
        /// The object's kind.
        kind: String,
        /// `namespace/name` or `name`.
        name: String,
        /// kube's error (the server's Status message).
        #[source]
        source: kube::Error,
    },
    /// The object has no apiVersion/kind.
    #[error("an object has no apiVersion/kind")]
    Untyped,
}

type Resolved = (ApiResource, ApiCapabilities);

/// Applies objects, resolving their kinds through a per-run discovery cache.
pub struct Applier {
    client: Client,
    cache: Mutex<HashMap<String, Vec<Resolved>>>,
}

impl Applier {
    /// An applier with an empty discovery cache.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn query(&self, gvk: &GroupVersionKind) -> Result<Vec<Resolved>, kube::Error> {
        let gv = kube::core::GroupVersion::gv(&gvk.group, &gvk.version);
        let group = discovery::pinned_group(&self.client, &gv).await?;
        Ok(group.versioned_resources(&gvk.version))
    }

    /// Resolves `apiVersion`/`kind`, asking the server again once when the
    /// cached answer does not know the kind.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved, ApplyError> {
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
        let unknown = |source| ApplyError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            source,
        };
        let list = match self.query(&gvk).await {
            Ok(list) => list,
            // A group that does not exist (yet) answers 404.
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Err(unknown(Some(kube::Error::Api(s))));
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
        found.ok_or_else(|| unknown(None))
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
        super::defaults::fill(&types.kind, &mut object.data);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = api
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|source| ApplyError::Patch {
                kind: types.kind.clone(),
                name: match &ns {
                    Some(ns) => format!("{ns}/{name}"),
                    None => name.clone(),
                },
                source,
            })?;
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
