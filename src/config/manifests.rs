//! Component manifests: finding the files, filling placeholders, and turning
//! a component's sources into the objects a lane applies.
//!
//! Plain manifests are Kubernetes YAML (multi-document files, directories of
//! them, CRDs) with `{{namespace}}`, `{{lane}}`, `{{cluster}}` and
//! `{{image.<name>}}` placeholders. Placeholders are filled textually before
//! the YAML is parsed, in plain files and in what kustomize renders, exactly
//! as the deploy step will, so validation sees the same documents the
//! cluster will get. [`render_component`] is that one path for every
//! consumer (validation and the plan with stand-in image references,
//! deploy, `diagnose`, gather and the timeline with the real ones): sources
//! in order, placeholders filled, documents parsed, `exclude:` applied,
//! images rewritten by `replaces:`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;

use super::diag::{Diagnostic, SourceLoc};
use super::model::{Component, Lane, ManifestSource};
use crate::render::images::Rewrite;

/// One `{{ ... }}` in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    /// The trimmed name between the braces, e.g. `image.datastorage`.
    pub name: String,
    /// Byte range of the whole `{{ ... }}` in the text.
    pub range: std::ops::Range<usize>,
    pub line: u64,
    pub column: u64,
}

/// Finds every placeholder in `text`, in order.
pub fn placeholders(text: &str) -> Vec<Placeholder> {
    let mut found = Vec::new();
    let mut search_from = 0;
    while let Some(start) = text[search_from..].find("{{").map(|i| i + search_from) {
        let Some(end) = text[start + 2..].find("}}").map(|i| i + start + 2) else {
            break;
        };
        let before = &text[..start];
        let line = before.matches('\n').count() as u64 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..start].chars().count() as u64 + 1;
        found.push(Placeholder {
            name: text[start + 2..end].trim().to_owned(),
            range: start..end + 2,
            line,
            column,
        });
        search_from = end + 2;
    }
    found
}

/// Replaces every placeholder with `value(name)`; `None` leaves it as is.
pub fn fill(text: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in placeholders(text) {
        out.push_str(&text[last..p.range.start]);
        match value(&p.name) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&text[p.range.clone()]),
        }
        last = p.range.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Whether a placeholder name is one the harness fills.
pub fn is_known_placeholder(name: &str, images: &[&str]) -> bool {
    match name.split_once('.') {
        Some(("image", image)) => images.contains(&image),
        _ => matches!(name, "namespace" | "lane" | "cluster"),
    }
}

/// The manifest files behind one `manifests:` entry: the file itself, or
/// every `.yaml`/`.yml`/`.json` file below a directory, sorted by path so the
/// apply order is stable.
pub fn expand(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?.path();
            if entry.is_dir() {
                stack.push(entry);
            } else if matches!(
                entry.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                files.push(entry);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A component's sources that could not be turned into objects.
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
        /// The file, kustomize directory or chart.
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
    /// A Helm chart was not rendered for this release namespace when the
    /// lane file was loaded.
    #[error("Helm chart {} of component `{component}` was not rendered for namespace `{namespace}`", .chart.display())]
    NotRendered {
        /// The component.
        component: String,
        /// The chart.
        chart: PathBuf,
        /// The release namespace.
        namespace: String,
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
            ManifestError::NotRendered { namespace, .. } => format!(
                "give the chart's release namespace in the lane file (`helm.namespace: {namespace}`), so it is rendered when the lane file is loaded"
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
    /// The value of one placeholder; `None` for one the harness does not fill.
    pub fn get(&self, name: &str) -> Option<String> {
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

/// What a component's sources render in a lane, edited as the harness
/// applies it.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// The objects to apply, in source and document order.
    pub objects: Vec<DynamicObject>,
    /// Objects `exclude:` left out.
    pub excluded: Vec<DynamicObject>,
    /// Containers whose image `replaces:` rewrote.
    pub rewrites: Vec<Rewrite>,
    /// How many objects each source rendered (before exclusions), in the
    /// order of `Component::sources`.
    pub per_source: Vec<usize>,
}

/// The release namespace of a Helm source in a lane.
pub fn helm_namespace<'a>(
    namespace: &'a Option<String>,
    component: &'a Component,
    lane: &'a Lane,
) -> &'a str {
    namespace
        .as_deref()
        .unwrap_or_else(|| lane.namespace_of(component))
}

/// Turns `component`'s sources into the objects `lane` applies: each
/// source in order (plain files read now, kustomize and Helm output as
/// rendered at load), placeholders filled (not in Helm output: `{{` is
/// Helm's own syntax, and a chart's text is the chart's), `exclude:` of the
/// component and the lane applied, and every container image a
/// `replaces:` names rewritten to the reference `images` gives its image.
pub fn render_component(
    component: &Component,
    lane: &Lane,
    images: &IndexMap<String, String>,
) -> Result<Rendered, ManifestError> {
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
    let name = &component.name;
    let parse = |text: &str, path: &Path| {
        crate::render::parse_documents(text).map_err(|message| ManifestError::Parse {
            component: name.clone(),
            path: path.to_path_buf(),
            message,
        })
    };
    let mut rendered = Rendered::default();
    let mut all = Vec::new();
    for source in &component.sources {
        let objects = match source {
            ManifestSource::Files { path, .. } => {
                // Expanded again: a file added to a directory since the lane
                // file was loaded is applied too, as before.
                let files = expand(path).map_err(|source| ManifestError::Read {
                    component: name.clone(),
                    path: path.clone(),
                    source,
                })?;
                let mut objects = Vec::new();
                for file in files {
                    let text =
                        std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
                            component: name.clone(),
                            path: file.clone(),
                            source,
                        })?;
                    objects.extend(parse(&fill(&text, |n| values.get(n)), &file)?);
                }
                objects
            }
            ManifestSource::Kustomize { dir, output, .. } => {
                parse(&fill(output, |n| values.get(n)), dir)?
            }
            ManifestSource::Helm {
                chart,
                namespace,
                outputs,
                ..
            } => {
                let release_ns = helm_namespace(namespace, component, lane);
                let text = outputs
                    .get(release_ns)
                    .ok_or_else(|| ManifestError::NotRendered {
                        component: name.clone(),
                        chart: chart.clone(),
                        namespace: release_ns.to_owned(),
                    })?;
                let mut objects = parse(text, chart)?;
                // As `helm install -n NS` does: what the chart places
                // nowhere goes to the release namespace (cluster-scoped
                // objects lose it again at apply).
                if namespace.is_some() {
                    for o in &mut objects {
                        o.metadata
                            .namespace
                            .get_or_insert_with(|| release_ns.to_owned());
                    }
                }
                objects
            }
        };
        rendered.per_source.push(objects.len());
        all.extend(objects);
    }
    for mut object in all {
        let types = object.types.clone().unwrap_or_default();
        let excluded = crate::render::exclude::any_matches(
            &component.exclude,
            &types.api_version,
            &types.kind,
        ) || crate::render::exclude::any_matches(
            &lane.exclude,
            &types.api_version,
            &types.kind,
        );
        if excluded {
            rendered.excluded.push(object);
            continue;
        }
        rendered.rewrites.extend(crate::render::images::rewrite(
            &mut object,
            &component.rewrites,
            |image| {
                // Only the component's own images: a lane loads exactly those.
                component
                    .images
                    .iter()
                    .any(|i| i == image)
                    .then(|| images.get(image).cloned())
                    .flatten()
            },
        ));
        rendered.objects.push(object);
    }
    Ok(rendered)
}

/// What validation learns from one manifest file.
#[derive(Debug, Default)]
pub struct ManifestFacts {
    /// Namespaces the documents create (`kind: Namespace`) or are placed in.
    pub namespaces: BTreeSet<String>,
    pub documents: usize,
}

/// Checks one manifest file: its placeholders are known, and once filled it
/// is YAML whose documents each have `apiVersion`, `kind` and `metadata.name`.
pub fn check(
    file: &Path,
    text: &str,
    namespace: &str,
    images: &[&str],
) -> Result<ManifestFacts, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    for p in placeholders(text) {
        if !is_known_placeholder(&p.name, images) {
            let known_images = images
                .iter()
                .map(|i| format!("image.{i}"))
                .collect::<Vec<_>>();
            let candidates = ["namespace", "lane", "cluster"]
                .into_iter()
                .map(String::from)
                .chain(known_images.iter().cloned())
                .collect::<Vec<_>>();
            let mut d = Diagnostic::new(
                SourceLoc::new(file, p.line, p.column),
                format!("unknown placeholder `{{{{{}}}}}`", p.name),
            );
            d = match super::diag::did_you_mean(&p.name, candidates.iter().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{{{{{s}}}}}`?")),
                None if p.name.starts_with("image.") => d.help(
                    "an image placeholder must name an image of this component (its `images:` list)",
                ),
                None => d.help(format!("known placeholders: {}", candidates.join(", "))),
            };
            problems.push(d);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Fill with stand-ins of the right shape; only the structure matters here.
    let filled = fill(text, |name| {
        Some(match name {
            "namespace" => namespace.to_owned(),
            other => format!("placeholder-{}", other.replace('.', "-")),
        })
    });
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&filled).map_err(|e| {
        let at = e
            .location()
            .map_or_else(|| SourceLoc::new(file, 1, 1), |l| SourceLoc::of(file, &l));
        vec![Diagnostic::new(
            at,
            format!("invalid manifest: {}", super::parse_message(&e)),
        )]
    })?;
    let mut facts = ManifestFacts::default();
    // Deploy applies a List's items one by one: each must be an object too.
    let objects = documents.iter().enumerate().flat_map(|(index, doc)| {
        let items = match doc.get("kind").and_then(|k| k.as_str()) {
            Some("List") => doc
                .get("items")
                .and_then(|i| i.as_array())
                .map(|items| items.iter().collect())
                .unwrap_or_default(),
            _ => vec![doc],
        };
        items.into_iter().map(move |item| (index, item))
    });
    for (index, doc) in objects {
        if doc.is_null() {
            continue; // an empty document between `---` separators
        }
        facts.documents += 1;
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(doc, |v, key| v.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let (Some(kind), Some(_), Some(name)) = (
            field(&["kind"]),
            field(&["apiVersion"]),
            field(&["metadata", "name"]),
        ) else {
            problems.push(
                Diagnostic::new(
                    SourceLoc::new(file, 1, 1),
                    format!(
                        "document {} has no apiVersion, kind or metadata.name",
                        index + 1
                    ),
                )
                .help("every document in a manifest must be a Kubernetes object"),
            );
            continue;
        };
        // Deploy decodes `metadata` as Kubernetes does: labels and
        // annotations are maps of strings, and so on.
        if let Err(e) = serde_json::from_value::<ObjectMeta>(doc["metadata"].clone()) {
            problems.push(
                Diagnostic::new(
                    SourceLoc::new(file, 1, 1),
                    format!("document {} (`{kind}` `{name}`) has invalid metadata: {e}", index + 1),
                )
                .help("label and annotation values are strings: quote numbers, booleans and empty values (\"1\", \"true\", \"\")"),
            );
            continue;
        }
        if kind == "Namespace" {
            facts.namespaces.insert(name);
        } else if let Some(ns) = field(&["metadata", "namespace"]) {
            facts.namespaces.insert(ns);
        }
    }
    if problems.is_empty() {
        Ok(facts)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_with_positions() {
        let text = "a: \"{{namespace}}\"\nimage: \"{{ image.ds }}\"\n";
        let found = placeholders(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "namespace");
        assert_eq!((found[0].line, found[0].column), (1, 5));
        assert_eq!(found[1].name, "image.ds");
        assert_eq!((found[1].line, found[1].column), (2, 9));
        assert_eq!(&text[found[1].range.clone()], "{{ image.ds }}");
    }

    #[test]
    fn fill_replaces_known_and_keeps_unknown() {
        let out = fill("ns: {{namespace}} x: {{other}} {{", |n| {
            (n == "namespace").then(|| "prod".into())
        });
        assert_eq!(out, "ns: prod x: {{other}} {{");
    }

    #[test]
    fn check_rejects_unknown_placeholders_with_a_suggestion() {
        let err = check(
            Path::new("m.yaml"),
            "image: \"{{image.datastorag}}\"\n",
            "ns",
            &["datastorage"],
        )
        .unwrap_err();
        assert_eq!((err[0].at.line, err[0].at.column), (1, 9));
        assert_eq!(
            err[0].help.as_deref(),
            Some("did you mean `{{image.datastorage}}`?")
        );
    }

    #[test]
    fn check_reads_namespaces_and_counts_documents() {
        let text = "\
apiVersion: v1
kind: Namespace
metadata: {name: audit}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: \"{{namespace}}\"}
---
";
        let facts = check(Path::new("m.yaml"), text, "kubernaut-system", &[]).unwrap();
        assert_eq!(facts.documents, 2);
        assert_eq!(
            facts.namespaces.into_iter().collect::<Vec<_>>(),
            vec!["audit".to_string(), "kubernaut-system".to_string()]
        );
    }

    #[test]
    fn check_reports_yaml_errors_and_non_objects() {
        let err = check(Path::new("m.yaml"), "a: [1,\n", "ns", &[]).unwrap_err();
        assert!(err[0].message.starts_with("invalid manifest"));
        let err = check(Path::new("m.yaml"), "just: a map\n", "ns", &[]).unwrap_err();
        assert!(err[0].message.contains("no apiVersion"));
    }

    /// Found by fuzzing (the `manifest` target): validation read a
    /// document as any YAML while deploy decodes its metadata, so a label
    /// that is not a string passed `harness plan` and failed at deploy.
    #[test]
    fn check_rejects_metadata_that_deploy_cannot_decode() {
        // The minimized input: a flow mapping that ends up with a key and
        // no value, i.e. a null label.
        let fuzzed = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck-rollout\n  labels: {app============{{ image.app }}uck-rollout}\n";
        let err = check(Path::new("m.yaml"), fuzzed, "fx", &["app"]).unwrap_err();
        assert!(
            err[0].message.starts_with("document 1 (`Deployment` `stuck-rollout`) has invalid metadata: invalid type: null, expected a string"),
            "{}",
            err[0].message
        );
        // The everyday form of the same mistake.
        let number = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {version: 1}}\n";
        let err = check(Path::new("m.yaml"), number, "fx", &[]).unwrap_err();
        assert!(
            err[0]
                .message
                .contains("invalid type: integer `1`, expected a string")
        );
        assert!(err[0].help.as_deref().unwrap().contains("quote numbers"));
        // Quoted, it is fine, and deploy agrees.
        let quoted = number.replace("version: 1", "version: \"1\"");
        check(Path::new("m.yaml"), &quoted, "fx", &[]).unwrap();
        crate::deploy::manifests::parse_documents(&quoted).unwrap();
        crate::deploy::manifests::parse_documents(number).unwrap_err();
    }

    /// Deploy applies a List's items: each is checked like a document.
    #[test]
    fn check_looks_inside_lists() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: lists}}\n- {apiVersion: v1, kind: ConfigMap}\n";
        let err = check(Path::new("m.yaml"), text, "fx", &[]).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0]
                .message
                .contains("has no apiVersion, kind or metadata.name")
        );
        let ok = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: lists}}\n";
        let facts = check(Path::new("m.yaml"), ok, "fx", &[]).unwrap();
        assert_eq!(facts.documents, 1);
        assert!(facts.namespaces.contains("lists"));
    }

    #[test]
    fn captured_fixture_manifests_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s");
        for case in ["deploy-healthy", "crd", "job-failed", "pod-oomkilled"] {
            let path = root.join(case).join("manifest.yaml");
            let text = std::fs::read_to_string(&path).unwrap();
            let facts = check(&path, &text, "fx", &[]).unwrap();
            assert!(facts.documents >= 1, "{case}");
        }
    }
}
