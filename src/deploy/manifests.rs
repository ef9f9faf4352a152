//! A component's manifests as the objects to apply: its sources rendered
//! ([`crate::config::manifests::render_component`]: plain files read and
//! filled, kustomize and Helm output as rendered at load, exclusions and
//! image rewrites applied), multi-document YAML split, `List` wrappers
//! flattened, CRDs first.
//!
//! Pure apart from reading the plain files, so the order and the filling
//! are tested on text.

use indexmap::IndexMap;
use kube::api::DynamicObject;

use crate::config::{Component, Lane};

pub use crate::config::manifests::{ManifestError, Rendered, Values};
pub use crate::render::parse_documents;

/// Whether `object` is a CustomResourceDefinition.
pub fn is_crd(object: &DynamicObject) -> bool {
    object.types.as_ref().is_some_and(|t| {
        t.kind == "CustomResourceDefinition" && t.api_version.starts_with("apiextensions.k8s.io/")
    })
}

/// Splits objects into (CRDs, the rest), each keeping its order: CRDs must
/// be Established before objects of their kinds can be applied.
pub fn crds_first(objects: Vec<DynamicObject>) -> (Vec<DynamicObject>, Vec<DynamicObject>) {
    objects.into_iter().partition(is_crd)
}

/// Every object `component` applies in `lane`, in order; `images` maps
/// image names to the references loaded into the cluster.
pub fn render(
    component: &Component,
    lane: &Lane,
    images: &IndexMap<String, String>,
) -> Result<Vec<DynamicObject>, ManifestError> {
    crate::config::manifests::render_component(component, lane, images).map(|r| r.objects)
}

/// Every object the lane deploys, with its component, rendered as deploy
/// renders them: placeholders filled (image references stand in), so names
/// like `app-{{lane}}` come out as deployed and a manifest with an unquoted
/// `{{image.x}}` still parses. A component whose manifests cannot be
/// rendered is left out (deploy reports that).
pub fn rendered_objects(
    project: &crate::config::Project,
    lane: &Lane,
) -> Vec<(String, kube::api::DynamicObject)> {
    let mut out = Vec::new();
    for name in crate::plan::closure(project, &lane.components) {
        let component = &project.components[name.as_str()];
        let images: indexmap::IndexMap<String, String> = component
            .images
            .iter()
            .map(|i| (i.clone(), format!("image-{i}")))
            .collect();
        if let Ok(objects) = render(component, lane, &images) {
            out.extend(objects.into_iter().map(|o| (name.clone(), o)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::manifests;

    #[test]
    fn documents_are_split_flattened_and_crds_go_first() {
        let text = "\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
";
        let objects = parse_documents(text).unwrap();
        let names: Vec<_> = objects
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["w", "widgets.example.com", "a", "b"]);
        let (crds, rest) = crds_first(objects);
        assert_eq!(crds.len(), 1);
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0].metadata.name.as_deref(), Some("w"));
    }

    #[test]
    fn a_document_without_kind_is_an_error() {
        let err = parse_documents("metadata: {name: x}\n").unwrap_err();
        assert!(err.contains("apiVersion"), "{err}");
    }

    #[test]
    fn placeholders_are_filled() {
        let images = IndexMap::from([("app".to_owned(), "harness/app:abc123".to_owned())]);
        let values = Values {
            namespace: "audit",
            lane: "l",
            cluster: "c",
            images: &images,
        };
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: \"{{namespace}}\"}\nspec: {containers: [{name: a, image: \"{{image.app}}\"}]}\n";
        let filled = manifests::fill(text, |n| values.get(n));
        let objects = parse_documents(&filled).unwrap();
        assert_eq!(objects[0].metadata.namespace.as_deref(), Some("audit"));
        assert_eq!(
            objects[0].data["spec"]["containers"][0]["image"],
            "harness/app:abc123"
        );
    }
}
