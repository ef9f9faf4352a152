//! Rendering a component's manifests from what a real project keeps: plain
//! YAML, kustomize directories and Helm charts; then the two edits the
//! harness makes to what they render — objects left out by kind
//! ([`exclude`]) and images rewritten by name ([`images`]).
//!
//! The design follows Skaffold's: the project's deploy tree is used as it
//! is, rendered by the project's own tools (`kustomize build`, or `kubectl
//! kustomize` where only kubectl is installed, and `helm template`), and
//! the harness only edits the rendered objects. Rendering runs when the
//! lane file is loaded — before anything is built or started — so that
//! `harness plan` can show what each source renders, what is excluded and
//! which image references are rewritten, and a broken kustomization is a
//! lane-file error with its file and its fix, not a failure halfway
//! through a deploy. The tools run as child processes ([`tool`]) with a
//! timeout; everything that decides (which tool, its arguments, which
//! objects are left out, which image a container gets) is a pure function
//! of plain data, tested with tables and captured objects. This module
//! knows nothing of the lane file: `config` calls it with paths and
//! patterns, and `deploy::manifests` puts the pieces together per
//! component.

pub mod exclude;
pub mod helm;
pub mod images;
pub mod kustomize;
pub mod tool;

use kube::api::DynamicObject;
use serde_json::Value;

pub use exclude::KindPattern;
pub use tool::RenderError;

/// Parses manifest text into objects, in document order. `List` kinds are
/// flattened into their items; empty documents are skipped.
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

/// `Kind/namespace/name` (or `Kind/name`), as the plan and the unready
/// table name objects.
pub fn object_ref(object: &DynamicObject) -> String {
    let kind = object.types.as_ref().map_or("?", |t| t.kind.as_str());
    let name = object.metadata.name.as_deref().unwrap_or("?");
    match object.metadata.namespace.as_deref() {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// The API group of an `apiVersion`: `apps` for `apps/v1`, empty for `v1`.
pub fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}
