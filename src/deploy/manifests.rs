//! A component's manifests as the objects to apply: read in the lane
//! file's order, placeholders filled, multi-document YAML split, empty
//! documents and `List` wrappers flattened, CRDs first.
//!
//! Pure apart from reading the files, so the order and the filling are
//! tested on text.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::config::{Component, Lane, manifests};

/// A manifest that could not be turned into objects.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {} of component `{component}`", .path.display())]
    Read {
        /// The component.
        component: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The filled text is not valid YAML of Kubernetes objects.
    #[error("manifest {} of component `{component}` is not valid: {message}", .path.display())]
    Parse {
        /// The component.
        component: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A placeholder names an image the caller gave no reference for.
    #[error("component `{component}` uses image `{image}` but no reference was given for it")]
    MissingImage {
        /// The component.
        component: String,
        /// The image name.
        image: String,
    },
}

impl ManifestError {
    /// What to do about it.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            ManifestError::Read { component, .. } => {
                format!("check the path under `components.{component}.manifests` in the lane file")
            }
            ManifestError::Parse { .. } => {
                "fix the YAML of the manifest (each document one Kubernetes object)".to_owned()
            }
            ManifestError::MissingImage { image, .. } => format!(
                "define `images.{image}` in the lane file and list it under the component's `images:`"
            ),
        })
    }
}

/// What placeholders are filled with.
#[derive(Clone, Debug)]
pub struct Values<'a> {
    /// `{{namespace}}`: the component's namespace in the lane.
    pub namespace: &'a str,
    /// `{{lane}}`.
    pub lane: &'a str,
    /// `{{cluster}}`.
    pub cluster: &'a str,
    /// `{{image.<name>}}` → the reference loaded into the cluster.
    pub images: &'a IndexMap<String, String>,
}

impl Values<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match name.split_once('.') {
            Some(("image", image)) => self.images.get(image).cloned(),
            _ => match name {
                "namespace" => Some(self.namespace.to_owned()),
                "lane" => Some(self.lane.to_owned()),
                "cluster" => Some(self.cluster.to_owned()),
                _ => None,
            },
        }
    }
}

/// Parses filled manifest text into objects, in document order. `List`
/// kinds are flattened into their items; empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<DynamicObject>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            for item in doc
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                out.push(to_object(item)?);
            }
        } else {
            out.push(to_object(doc)?);
        }
    }
    Ok(out)
}

fn to_object(value: Value) -> Result<DynamicObject, String> {
    let object: DynamicObject = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if object.types.is_none() || object.metadata.name.is_none() {
        return Err("a document has no apiVersion, kind or metadata.name".into());
    }
    Ok(object)
}

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

/// Reads, fills and parses every manifest of `component`, in order.
pub fn render(
    component: &Component,
    lane: &Lane,
    images: &IndexMap<String, String>,
) -> Result<Vec<DynamicObject>, ManifestError> {
    for image in &component.images {
        if !images.contains_key(image) {
            return Err(ManifestError::MissingImage {
                component: component.name.clone(),
                image: image.clone(),
            });
        }
    }
    let values = Values {
        namespace: lane.namespace_of(component),
        lane: &lane.name,
        cluster: &lane.cluster.name,
        images,
    };
    let mut objects = Vec::new();
    for path in &component.manifests {
        objects.extend(render_file(&component.name, path, &values)?);
    }
    Ok(objects)
}

fn render_file(
    component: &str,
    path: &Path,
    values: &Values<'_>,
) -> Result<Vec<DynamicObject>, ManifestError> {
    // `Component.manifests` is already expanded; expanding again keeps this
    // correct for a directory added after validation.
    let files = manifests::expand(path).map_err(|source| ManifestError::Read {
        component: component.to_owned(),
        path: path.to_path_buf(),
        source,
    })?;
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
            component: component.to_owned(),
            path: file.clone(),
            source,
        })?;
        let filled = manifests::fill(&text, |name| values.get(name));
        objects.extend(
            parse_documents(&filled).map_err(|message| ManifestError::Parse {
                component: component.to_owned(),
                path: file.clone(),
                message,
            })?,
        );
    }
    Ok(objects)
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
