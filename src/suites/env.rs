//! The environment contract between the harness and a suite.
//!
//! Every suite gets the same variables, whatever framework it uses, so a
//! suite can find the cluster, its namespace and the services under test
//! without knowing how the harness set them up. Building the map is a pure
//! function; the runner only applies it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// Path of the kubeconfig of the lane's cluster.
pub const KUBECONFIG: &str = "KUBECONFIG";
/// The unique namespace created for this suite run.
pub const HARNESS_NAMESPACE: &str = "HARNESS_NAMESPACE";
/// Identifies the harness run; the same for every suite of a run.
pub const HARNESS_RUN_ID: &str = "HARNESS_RUN_ID";
/// The 1-based index of the parallel slot running the suite (Ginkgo's
/// "process"), also part of the namespace name.
pub const HARNESS_PROCESS: &str = "HARNESS_PROCESS";
/// A directory the suite may write reports into (e.g. `junit.xml`).
pub const HARNESS_ARTIFACTS: &str = "HARNESS_ARTIFACTS";
/// Prefix of the per-component endpoint variables.
pub const HARNESS_ENDPOINT_PREFIX: &str = "HARNESS_ENDPOINT_";

/// Everything a suite is told about its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteEnv {
    /// Path of the cluster's kubeconfig.
    pub kubeconfig: PathBuf,
    /// The suite's namespace.
    pub namespace: String,
    /// The run's identifier.
    pub run_id: String,
    /// 1-based parallel slot.
    pub process: usize,
    /// Directory for the suite's own reports.
    pub artifacts: PathBuf,
    /// Component name → endpoint (URL or host:port).
    pub endpoints: BTreeMap<String, String>,
}

/// Two components whose endpoint variables would have the same name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "components {first:?} and {second:?} both map to the environment variable {variable}: rename one of them"
)]
pub struct EndpointCollision {
    /// The component met first (in name order).
    pub first: String,
    /// The component that collided with it.
    pub second: String,
    /// The shared variable name.
    pub variable: String,
}

/// The variable carrying `component`'s endpoint: `HARNESS_ENDPOINT_` and the
/// name upper-cased with every character that is not an ASCII letter or
/// digit replaced by `_` (`data-storage` → `HARNESS_ENDPOINT_DATA_STORAGE`),
/// because shells only accept those in variable names.
pub fn endpoint_variable(component: &str) -> String {
    let mut var = String::from(HARNESS_ENDPOINT_PREFIX);
    var.extend(component.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    var
}

/// The variables to set for a suite.
///
/// Fails when two components map to one variable, since one endpoint would
/// silently hide the other.
pub fn suite_env(env: &SuiteEnv) -> Result<BTreeMap<String, OsString>, EndpointCollision> {
    let mut vars = BTreeMap::from([
        (
            KUBECONFIG.to_owned(),
            env.kubeconfig.clone().into_os_string(),
        ),
        (HARNESS_NAMESPACE.to_owned(), env.namespace.clone().into()),
        (HARNESS_RUN_ID.to_owned(), env.run_id.clone().into()),
        (HARNESS_PROCESS.to_owned(), env.process.to_string().into()),
        (
            HARNESS_ARTIFACTS.to_owned(),
            env.artifacts.clone().into_os_string(),
        ),
    ]);
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for (component, endpoint) in &env.endpoints {
        let variable = endpoint_variable(component);
        if let Some(first) = owner.insert(variable.clone(), component) {
            return Err(EndpointCollision {
                first: first.to_owned(),
                second: component.clone(),
                variable,
            });
        }
        vars.insert(variable, endpoint.into());
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SuiteEnv {
        SuiteEnv {
            kubeconfig: "/home/ci/.kube/gateway-e2e-config".into(),
            namespace: "gw-p2-0011aabb".into(),
            run_id: "run-1234".into(),
            process: 2,
            artifacts: "/tmp/art/gateway".into(),
            endpoints: BTreeMap::from([
                ("datastorage".into(), "http://localhost:28090".into()),
                ("data-storage.v2".into(), "http://localhost:28091".into()),
                ("redis".into(), "localhost:26379".into()),
            ]),
        }
    }

    #[test]
    fn endpoint_variable_table() {
        let table = [
            ("datastorage", "HARNESS_ENDPOINT_DATASTORAGE"),
            ("data-storage", "HARNESS_ENDPOINT_DATA_STORAGE"),
            ("data.storage_v2", "HARNESS_ENDPOINT_DATA_STORAGE_V2"),
            ("Redis", "HARNESS_ENDPOINT_REDIS"),
            ("é", "HARNESS_ENDPOINT__"),
        ];
        for (component, var) in table {
            assert_eq!(endpoint_variable(component), var, "{component}");
        }
    }

    #[test]
    fn every_contract_variable_is_set() {
        let vars = suite_env(&base()).unwrap();
        let expected: BTreeMap<String, OsString> = [
            ("KUBECONFIG", "/home/ci/.kube/gateway-e2e-config"),
            ("HARNESS_NAMESPACE", "gw-p2-0011aabb"),
            ("HARNESS_RUN_ID", "run-1234"),
            ("HARNESS_PROCESS", "2"),
            ("HARNESS_ARTIFACTS", "/tmp/art/gateway"),
            ("HARNESS_ENDPOINT_DATASTORAGE", "http://localhost:28090"),
            ("HARNESS_ENDPOINT_DATA_STORAGE_V2", "http://localhost:28091"),
            ("HARNESS_ENDPOINT_REDIS", "localhost:26379"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
        assert_eq!(vars, expected);
    }

    #[test]
    fn colliding_components_are_an_error() {
        let mut env = base();
        env.endpoints.insert("data_storage.v2".into(), "x".into());
        let err = suite_env(&env).unwrap_err();
        assert_eq!(err.variable, "HARNESS_ENDPOINT_DATA_STORAGE_V2");
        // BTreeMap order: '-' sorts before '_'.
        assert_eq!(
            (err.first.as_str(), err.second.as_str()),
            ("data-storage.v2", "data_storage.v2")
        );
        assert!(err.to_string().contains("rename one"), "{err}");
    }
}
