//! Image references in rendered objects, and rewriting them by name, as
//! Skaffold does.
//!
//! A project's manifests name its images the way its registry does
//! (`quay.io/org/datastorage:v1.2`, or `:latest`, or a digest). An image of
//! the lane file declares the repositories it stands in for (`replaces:
//! [quay.io/org/datastorage]`); every container and init container whose
//! image is in such a repository — any tag, any digest — gets the image the
//! harness built (its content tag) or pulled instead. Repositories are
//! compared the way Docker resolves them, so `postgres`,
//! `library/postgres` and `docker.io/library/postgres` are one repository.
//! Which kinds carry a pod template, and where, is [`POD_SPECS`].

use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

/// Where the pod spec is in each kind that carries one: `(API group, kind,
/// path)`. Any version of the group: `batch/v1beta1` CronJobs (Kubernetes
/// 1.20) as well as `batch/v1` ones.
pub const POD_SPECS: &[(&str, &str, &[&str])] = &[
    ("", "Pod", &["spec"]),
    ("", "ReplicationController", &["spec", "template", "spec"]),
    ("apps", "Deployment", &["spec", "template", "spec"]),
    ("apps", "StatefulSet", &["spec", "template", "spec"]),
    ("apps", "DaemonSet", &["spec", "template", "spec"]),
    ("apps", "ReplicaSet", &["spec", "template", "spec"]),
    ("batch", "Job", &["spec", "template", "spec"]),
    (
        "batch",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
];

/// The container lists of a pod spec that name images.
const CONTAINER_LISTS: [&str; 2] = ["initContainers", "containers"];

/// An image reference split into its repository (normalized as Docker
/// resolves it) and what selects one image in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io/library/postgres`, `quay.io/org/datastorage`.
    pub repository: String,
    /// `16`, `v0.1`, `latest`; `None` when not written.
    pub tag: Option<String>,
    /// `sha256:...`.
    pub digest: Option<String>,
}

/// Parses an image reference. `None` for text that is not one (empty,
/// whitespace, an unfilled `{{placeholder}}`).
pub fn parse(reference: &str) -> Option<Reference> {
    let reference = reference.trim();
    if reference.is_empty() || reference.contains(char::is_whitespace) || reference.contains("{{") {
        return None;
    }
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest.to_owned())),
        None => (reference, None),
    };
    // A tag follows the last ':' after the last '/' (a ':' before it is a
    // registry's port: localhost:5000/app).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (
            &name[..last_slash + i],
            Some(name[last_slash + i + 1..].to_owned()),
        ),
        None => (name, None),
    };
    if name.is_empty() || name.ends_with('/') || tag.as_deref() == Some("") {
        return None;
    }
    Some(Reference {
        repository: normalize(name),
        tag,
        digest,
    })
}

/// A repository as Docker resolves it: a first component without `.` or
/// `:` (and not `localhost`) is a Docker Hub path, and a Docker Hub name
/// without a `/` is an official image under `library/`.
pub fn normalize(name: &str) -> String {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    if domain == "docker.io" && !path.contains('/') {
        format!("docker.io/library/{path}")
    } else {
        format!("{domain}/{path}")
    }
}

/// One repository an image of the lane file replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The repository as written in the lane file (`quay.io/org/datastorage`).
    pub replaces: String,
    /// The lane file's image that stands in for it.
    pub image: String,
}

impl Rule {
    fn matches(&self, reference: &Reference) -> bool {
        normalize(&self.replaces) == reference.repository
    }
}

/// The image of the first rule that matches `image`, if any.
pub fn replacing<'r>(rules: &'r [Rule], image: &str) -> Option<&'r Rule> {
    let reference = parse(image)?;
    rules.iter().find(|r| r.matches(&reference))
}

/// One container whose image was rewritten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// `Deployment/audit/datastorage`.
    pub object: String,
    /// The container (`init:` before an init container's name).
    pub container: String,
    /// The image as the manifests wrote it.
    pub from: String,
    /// The lane file's image that replaced it.
    pub image: String,
    /// The reference the container now runs.
    pub to: String,
    /// Whether `imagePullPolicy: Always` became `IfNotPresent` (an image
    /// the harness loaded into the nodes can never be pulled).
    pub pull_policy_changed: bool,
}

fn pod_spec_mut(object: &mut DynamicObject) -> Option<&mut Value> {
    let types = object.types.as_ref()?;
    let group = super::group_of(&types.api_version);
    let (_, _, path) = POD_SPECS
        .iter()
        .find(|(g, k, _)| *g == group && *k == types.kind)?;
    path.iter()
        .try_fold(&mut object.data, |v, key| v.get_mut(*key))
}

/// Every `(container, image)` of an object's pod spec, init containers
/// first (named `init:<name>`); none for kinds without one.
pub fn container_images(object: &DynamicObject) -> Vec<(String, String)> {
    let mut object = object.clone();
    let Some(spec) = pod_spec_mut(&mut object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for list in CONTAINER_LISTS {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(image) = c.get("image").and_then(Value::as_str) {
                out.push((container_name(list, c), image.to_owned()));
            }
        }
    }
    out
}

fn container_name(list: &str, container: &Value) -> String {
    let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
    if list == "initContainers" {
        format!("init:{name}")
    } else {
        name.to_owned()
    }
}

/// Rewrites every container image of `object` that a rule replaces to
/// `reference(rule.image)`; a rule whose image has no reference is left
/// alone. Returns what was rewritten.
pub fn rewrite(
    object: &mut DynamicObject,
    rules: &[Rule],
    reference: impl Fn(&str) -> Option<String>,
) -> Vec<Rewrite> {
    if rules.is_empty() {
        return Vec::new();
    }
    let shown = super::object_ref(object);
    let Some(spec) = pod_spec_mut(object) else {
        return Vec::new();
    };
    let mut done = Vec::new();
    for list in CONTAINER_LISTS {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let Some(from) = c.get("image").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            let Some(rule) = replacing(rules, &from) else {
                continue;
            };
            let Some(to) = reference(&rule.image) else {
                continue;
            };
            c["image"] = Value::String(to.clone());
            let always = c.get("imagePullPolicy").and_then(Value::as_str) == Some("Always");
            if always {
                c["imagePullPolicy"] = Value::String("IfNotPresent".into());
            }
            done.push(Rewrite {
                object: shown.clone(),
                container: container_name(list, c),
                from,
                image: rule.image.clone(),
                to,
                pull_policy_changed: always,
            });
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_docker_reads_them() {
        let table: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            ("postgres", "docker.io/library/postgres", None, None),
            (
                "postgres:16",
                "docker.io/library/postgres",
                Some("16"),
                None,
            ),
            (
                "library/postgres:16",
                "docker.io/library/postgres",
                Some("16"),
                None,
            ),
            (
                "docker.io/library/postgres:16",
                "docker.io/library/postgres",
                Some("16"),
                None,
            ),
            (
                "index.docker.io/library/postgres",
                "docker.io/library/postgres",
                None,
                None,
            ),
            (
                "bitnami/redis:7",
                "docker.io/bitnami/redis",
                Some("7"),
                None,
            ),
            ("quay.io/org/ds:v0.1", "quay.io/org/ds", Some("v0.1"), None),
            ("localhost:5000/app", "localhost:5000/app", None, None),
            (
                "localhost:5000/app:1",
                "localhost:5000/app",
                Some("1"),
                None,
            ),
            ("localhost/app:1", "localhost/app", Some("1"), None),
            (
                "quay.io/org/ds@sha256:abcd",
                "quay.io/org/ds",
                None,
                Some("sha256:abcd"),
            ),
            (
                "quay.io/org/ds:v1@sha256:abcd",
                "quay.io/org/ds",
                Some("v1"),
                Some("sha256:abcd"),
            ),
            (
                "harness/datastorage:1a2b",
                "docker.io/harness/datastorage",
                Some("1a2b"),
                None,
            ),
        ];
        for (text, repository, tag, digest) in table {
            let r = parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(r.repository, *repository, "{text}");
            assert_eq!(r.tag.as_deref(), *tag, "{text}");
            assert_eq!(r.digest.as_deref(), *digest, "{text}");
        }
        for bad in ["", " ", "a b", "{{image.x}}", "quay.io/org/", "app:"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    fn rules() -> Vec<Rule> {
        vec![
            Rule {
                replaces: "quay.io/harness-demo/datastorage".into(),
                image: "datastorage".into(),
            },
            Rule {
                replaces: "postgres".into(),
                image: "postgres".into(),
            },
        ]
    }

    #[test]
    fn a_rule_matches_its_repository_with_any_tag_or_digest_and_nothing_else() {
        let rules = rules();
        let table = [
            ("quay.io/harness-demo/datastorage:v0.1", Some("datastorage")),
            ("quay.io/harness-demo/datastorage", Some("datastorage")),
            (
                "quay.io/harness-demo/datastorage:latest",
                Some("datastorage"),
            ),
            (
                "quay.io/harness-demo/datastorage@sha256:00ff",
                Some("datastorage"),
            ),
            ("quay.io/harness-demo/datastorage-migrate:v0.1", None),
            ("quay.io/other/datastorage:v0.1", None),
            ("docker.io/library/postgres:16-bookworm", Some("postgres")),
            ("postgres:15", Some("postgres")),
            ("bitnami/postgres:15", None),
            ("{{image.datastorage}}", None),
        ];
        for (image, want) in table {
            assert_eq!(
                replacing(&rules, image).map(|r| r.image.as_str()),
                want,
                "{image}"
            );
        }
    }

    /// One object of every kind that carries a pod template, each with an
    /// init container and a container in a replaced repository, and one
    /// container that is not.
    fn every_pod_template_kind() -> Vec<DynamicObject> {
        let pod = serde_json::json!({
            "initContainers": [{"name": "migrate", "image": "postgres:16", "imagePullPolicy": "Always"}],
            "containers": [
                {"name": "app", "image": "quay.io/harness-demo/datastorage:v0.1"},
                {"name": "sidecar", "image": "quay.io/other/proxy:1"}
            ]
        });
        let template = serde_json::json!({"template": {"spec": pod}});
        let docs = [
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod}),
            serde_json::json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"}, "spec": template}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a"}, "spec": template}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"}, "spec": template}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"}, "spec": template}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"}, "spec": template}),
            serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": template}),
            serde_json::json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"}, "spec": {"jobTemplate": {"spec": template}}}),
            serde_json::json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "cj1"}, "spec": {"jobTemplate": {"spec": template}}}),
        ];
        docs.into_iter()
            .map(|d| serde_json::from_value(d).unwrap())
            .collect()
    }

    #[test]
    fn every_pod_template_kind_is_rewritten_init_containers_included() {
        let refs = |image: &str| Some(format!("harness/{image}:c0ffee"));
        for mut object in every_pod_template_kind() {
            let shown = crate::render::object_ref(&object);
            let done = rewrite(&mut object, &rules(), refs);
            assert_eq!(done.len(), 2, "{shown}: {done:?}");
            assert_eq!(done[0].container, "init:migrate");
            assert_eq!(done[0].to, "harness/postgres:c0ffee");
            assert!(done[0].pull_policy_changed, "{shown}");
            assert_eq!(done[1].container, "app");
            assert_eq!(done[1].from, "quay.io/harness-demo/datastorage:v0.1");
            assert_eq!(done[1].image, "datastorage");
            assert!(!done[1].pull_policy_changed);
            assert_eq!(done[1].object, shown);
            let images: Vec<String> = container_images(&object)
                .into_iter()
                .map(|(_, i)| i)
                .collect();
            assert_eq!(
                images,
                [
                    "harness/postgres:c0ffee",
                    "harness/datastorage:c0ffee",
                    "quay.io/other/proxy:1"
                ],
                "{shown}"
            );
            let pull: Vec<String> = object
                .data
                .to_string()
                .matches("\"Always\"")
                .map(str::to_owned)
                .collect();
            assert!(pull.is_empty(), "{shown}: Always left in {}", object.data);
        }
    }

    #[test]
    fn objects_without_a_pod_template_and_images_without_a_reference_are_left_alone() {
        let mut cm: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"image": "postgres:16"}
        }))
        .unwrap();
        let before = cm.clone();
        assert!(rewrite(&mut cm, &rules(), |_| Some("x".into())).is_empty());
        assert_eq!(cm.data, before.data);
        // A Deployment in a group that is not apps (a CRD's) has no known pod spec.
        let mut other: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "example.com/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "postgres"}]}}}
        }))
        .unwrap();
        assert!(rewrite(&mut other, &rules(), |_| Some("x".into())).is_empty());
        let mut objects = every_pod_template_kind();
        let done = rewrite(&mut objects[0], &rules(), |image| {
            (image == "datastorage").then(|| "harness/datastorage:1".to_owned())
        });
        assert_eq!(done.len(), 1, "postgres has no reference: left as written");
        assert_eq!(container_images(&objects[0])[0].1, "postgres:16");
    }
}
