//! What a run created in a cluster it did not create, so that teardown
//! removes exactly that.
//!
//! On a cluster harness made, teardown deletes the whole cluster. On one it
//! did not (`provider: existing`, or a kind cluster picked up with
//! `--reuse`), the cluster stays, and so would everything the run applied:
//! the lane's namespace with every component running in it, the CRDs and
//! ClusterRoles it brought. So before deploying, every object the lane
//! will apply (and every namespace it deploys into) is looked up; the ones
//! that do not exist yet are recorded in the lane's state file, and
//! teardown deletes those — after gather, unless the cluster is preserved —
//! and nothing else: what existed before the run is never touched, even if
//! the run changed it. Objects inside a namespace the run created go with
//! the namespace; the others are deleted one by one, custom resources
//! before their CRDs, namespaces last (each waited for, with a timeout,
//! like suite namespaces).

use kube::Client;
use kube::api::{DeleteParams, DynamicObject};

use crate::deploy::{Applier, ApplyError};

pub use super::state::ObjectRef;

/// The namespace objects for `names`, to survey with the objects.
pub fn namespaces(names: &[String]) -> Vec<(DynamicObject, String)> {
    names
        .iter()
        .map(|n| {
            let object = ObjectRef {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: n.clone(),
            }
            .object();
            (object, n.clone())
        })
        .collect()
}

/// Which of `objects` (each with the namespace it defaults into) do not
/// exist yet: the ones this run will create. An object whose kind the
/// cluster does not serve yet (a custom resource of a CRD the run brings)
/// cannot exist; one that cannot be looked up for another reason is left
/// out, so that it is never deleted.
pub async fn not_there(client: &Client, objects: Vec<(DynamicObject, String)>) -> Vec<ObjectRef> {
    let applier = Applier::new(client.clone());
    let mut out: Vec<ObjectRef> = Vec::new();
    for (object, namespace) in objects {
        let Some(types) = object.types.clone() else {
            continue;
        };
        let name = object.metadata.name.clone().unwrap_or_default();
        let declared_ns = object.metadata.namespace.clone();
        let found = match applier.locate(object, &namespace).await {
            Ok(located) => match located.api(client).get_opt(&located.name).await {
                Ok(None) => Some(ObjectRef {
                    api_version: types.api_version,
                    kind: types.kind,
                    namespace: located.namespace,
                    name,
                }),
                Ok(Some(_)) | Err(_) => None,
            },
            Err(ApplyError::UnknownKind { .. }) => Some(ObjectRef {
                api_version: types.api_version,
                kind: types.kind,
                namespace: declared_ns.or(Some(namespace)),
                name,
            }),
            Err(_) => None,
        };
        if let Some(r) = found
            && !out.contains(&r)
        {
            out.push(r);
        }
    }
    out
}

/// `earlier` and then what `later` adds (a second `up` finds the first
/// one's objects already there, and must not forget them).
pub fn merge(earlier: &[ObjectRef], later: Vec<ObjectRef>) -> Vec<ObjectRef> {
    let mut out = earlier.to_vec();
    for r in later {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// The order teardown deletes `created` in: objects outside the
/// namespaces the run created, latest first, custom resources before the
/// CRDs that define them; then the namespaces (which take their content
/// with them).
pub fn deletion_order(created: &[ObjectRef]) -> Vec<ObjectRef> {
    let namespaces: Vec<&ObjectRef> = created.iter().filter(|r| r.is_namespace()).collect();
    let inside = |r: &ObjectRef| {
        r.namespace
            .as_ref()
            .is_some_and(|ns| namespaces.iter().any(|n| &n.name == ns))
    };
    let mut order: Vec<ObjectRef> = created
        .iter()
        .rev()
        .filter(|r| !r.is_namespace() && !r.is_crd() && !inside(r))
        .cloned()
        .collect();
    order.extend(created.iter().rev().filter(|r| r.is_crd()).cloned());
    order.extend(namespaces.into_iter().cloned());
    order
}

/// What deleting the recorded objects did.
#[derive(Debug, Default)]
pub struct Removed {
    /// Deleted (or already gone).
    pub deleted: Vec<ObjectRef>,
    /// Not deleted, and why.
    pub failed: Vec<(ObjectRef, String)>,
}

/// Deletes `created` in [`deletion_order`]. A namespace is waited for
/// (within the provisioner's deletion timeout; one stuck on finalizers is
/// reported); other objects are deleted in the background.
pub async fn remove(client: &Client, created: &[ObjectRef], run_id: &str) -> Removed {
    let applier = Applier::new(client.clone());
    let namespaces = crate::k8s::KubeNamespaces::new(client.clone(), run_id.to_owned());
    let mut removed = Removed::default();
    for r in deletion_order(created) {
        let result = if r.is_namespace() {
            namespaces.delete(&r.name).await.map_err(|e| e.to_string())
        } else {
            delete_one(&applier, client, &r).await
        };
        match result {
            Ok(()) => removed.deleted.push(r),
            Err(why) => removed.failed.push((r, why)),
        }
    }
    removed
}

async fn delete_one(applier: &Applier, client: &Client, r: &ObjectRef) -> Result<(), String> {
    let namespace = r.namespace.clone().unwrap_or_default();
    let located = match applier.locate(r.object(), &namespace).await {
        Ok(l) => l,
        // Its CRD is gone already (deleted, or never made): so is it.
        Err(ApplyError::UnknownKind { .. }) => return Ok(()),
        Err(e) => return Err(crate::failure::text(&crate::failure::causes_of(&e))),
    };
    match located
        .api(client)
        .delete(&located.name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(crate::failure::text(&crate::failure::causes_of(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        }
    }

    #[test]
    fn namespaces_go_last_and_take_their_content_with_them() {
        let created = vec![
            r(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.x.io",
            ),
            r("v1", "Namespace", None, "lane-ns"),
            r("v1", "ConfigMap", Some("lane-ns"), "app"),
            r(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                None,
                "app-reader",
            ),
            r("x.io/v1", "Widget", Some("default"), "w1"),
            r("v1", "ConfigMap", Some("shared"), "app-config"),
        ];
        let order: Vec<String> = deletion_order(&created)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            order,
            [
                "ConfigMap shared/app-config",
                "Widget default/w1",
                "ClusterRole app-reader",
                "CustomResourceDefinition widgets.x.io",
                "Namespace lane-ns",
            ]
        );
    }

    #[test]
    fn a_second_up_keeps_what_the_first_created() {
        let first = vec![r("v1", "Namespace", None, "a")];
        let merged = merge(
            &first,
            vec![r("v1", "ConfigMap", Some("b"), "c"), first[0].clone()],
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0], first[0]);
    }

    #[test]
    fn refs_round_trip_through_the_state_file() {
        let one = r("v1", "ConfigMap", Some("ns"), "app");
        let json = serde_json::to_string(&one).unwrap();
        assert_eq!(
            json,
            r#"{"api_version":"v1","kind":"ConfigMap","namespace":"ns","name":"app"}"#
        );
        assert_eq!(serde_json::from_str::<ObjectRef>(&json).unwrap(), one);
        let cluster = r("rbac.authorization.k8s.io/v1", "ClusterRole", None, "x");
        assert!(
            !serde_json::to_string(&cluster)
                .unwrap()
                .contains("namespace")
        );
    }
}
