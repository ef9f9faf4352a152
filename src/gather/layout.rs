//! Where things go in a bundle.
//!
//! Objects follow crust-gather: `namespaces/<ns>/<apiVersion>/<kind>/<name>.yaml`
//! and `cluster/<apiVersion>/<kind>/<name>.yaml` for cluster-scoped ones
//! (`apps/v1` becomes two directories, the kind is lower-cased). Logs follow
//! `oc adm inspect`: `namespaces/<ns>/pods/<pod>/<container>/<container>/logs/{current,previous}.log`.
//! Names are Kubernetes names (DNS subdomains), but a bundle is read on other
//! machines, so anything outside `[A-Za-z0-9._-]` is replaced to keep every
//! path a plain relative path.

use std::path::PathBuf;

/// One path component made safe: no separators, no `..`, never empty.
pub fn component(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}_"),
        _ => cleaned,
    }
}

/// The file of one object.
pub fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> PathBuf {
    let mut path = match namespace {
        Some(ns) => PathBuf::from("namespaces").join(component(ns)),
        None => PathBuf::from("cluster"),
    };
    for part in api_version.split('/') {
        path.push(component(part));
    }
    path.push(component(&kind.to_ascii_lowercase()));
    path.push(format!("{}.yaml", component(name)));
    path
}

/// The log file of one container; `previous` is the last terminated instance.
pub fn log(namespace: &str, pod: &str, container: &str, previous: bool) -> PathBuf {
    let container = component(container);
    PathBuf::from("namespaces")
        .join(component(namespace))
        .join("pods")
        .join(component(pod))
        .join(&container)
        .join(&container)
        .join("logs")
        .join(if previous {
            "previous.log"
        } else {
            "current.log"
        })
}

/// The events of a namespace, oldest first.
pub fn events(namespace: &str) -> PathBuf {
    PathBuf::from("namespaces")
        .join(component(namespace))
        .join("events.yaml")
}

/// Where the harness's own records go.
pub const HARNESS_DIR: &str = "harness";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths() {
        assert_eq!(
            object("apps/v1", "Deployment", Some("fx"), "web"),
            PathBuf::from("namespaces/fx/apps/v1/deployment/web.yaml")
        );
        assert_eq!(
            object("v1", "Pod", Some("fx"), "web-1"),
            PathBuf::from("namespaces/fx/v1/pod/web-1.yaml")
        );
        assert_eq!(
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.example.com"
            ),
            PathBuf::from(
                "cluster/apiextensions.k8s.io/v1/customresourcedefinition/widgets.example.com.yaml"
            )
        );
    }

    #[test]
    fn log_paths_follow_oc_adm_inspect() {
        assert_eq!(
            log("fx", "crashloop", "app", true),
            PathBuf::from("namespaces/fx/pods/crashloop/app/app/logs/previous.log")
        );
    }

    #[test]
    fn hostile_names_stay_inside_the_bundle() {
        assert_eq!(component("../../etc"), ".._.._etc");
        assert_eq!(component(".."), "_.._");
        assert_eq!(component(""), "__");
        assert_eq!(component("a/b"), "a_b");
        let p = object("v1", "Pod", Some(".."), "x");
        assert!(p.components().all(|c| c.as_os_str() != ".."), "{p:?}");
    }
}
