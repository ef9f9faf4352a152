//! Defaults that server-side apply needs written out on older servers.
//!
//! Service ports and container ports are associative lists keyed by the
//! port *and* its protocol. API servers before 1.22 refuse an applied list
//! element that omits a key field (`associative list with keys has an
//! element that omits key field "protocol"`), although they default the
//! protocol to TCP for every other kind of write. Filling in the default the
//! server would choose anyway makes the same manifest apply on every
//! version and changes nothing in the resulting object. Only missing
//! values are filled; what the manifest says is never changed.

use serde_json::{Map, Value};

/// The protocol the API server defaults a port to.
const DEFAULT_PROTOCOL: &str = "TCP";

/// Where the pod spec of a workload kind sits in the object, as
/// [`crate::readiness::kinds`]' table says.
fn pod_spec_path(api_version: &str, kind: &str) -> Option<&'static [&'static str]> {
    crate::readiness::kinds::of(api_version, kind)?.pod_spec
}

fn get_mut<'a>(mut value: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    for key in path {
        value = value.as_object_mut()?.get_mut(*key)?;
    }
    Some(value)
}

/// Sets `protocol` on each element of the list at `ports` that has none.
fn fill_protocols(ports: Option<&mut Value>) {
    let Some(Value::Array(ports)) = ports else {
        return;
    };
    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
        if port.get("protocol").is_none_or(Value::is_null) {
            port.insert("protocol".into(), Value::String(DEFAULT_PROTOCOL.into()));
        }
    }
}

fn fill_containers(pod_spec: &mut Map<String, Value>) {
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(Value::Array(containers)) = pod_spec.get_mut(list) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                fill_protocols(container.get_mut("ports"));
            }
        }
    }
}

/// Fills the defaults server-side apply needs in `object` (a manifest as
/// JSON, of `apiVersion` and `kind`), in place.
pub fn fill(api_version: &str, kind: &str, object: &mut Value) {
    if api_version == "v1" && kind == "Service" {
        fill_protocols(get_mut(object, &["spec", "ports"]));
    }
    if let Some(path) = pod_spec_path(api_version, kind)
        && let Some(Value::Object(pod_spec)) = get_mut(object, path)
    {
        fill_containers(pod_spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_ports_get_the_servers_default_protocol() {
        let mut svc = json!({"kind": "Service", "spec": {"ports": [
            {"port": 5432, "targetPort": 5432},
            {"port": 53, "protocol": "UDP"},
            {"port": 80, "protocol": null},
        ]}});
        fill("v1", "Service", &mut svc);
        let protocols: Vec<&str> = svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["protocol"].as_str().unwrap())
            .collect();
        assert_eq!(protocols, ["TCP", "UDP", "TCP"]);
    }

    #[test]
    fn container_ports_of_every_workload_kind() {
        let pod_spec = || {
            json!({
                "initContainers": [{"name": "i", "ports": [{"containerPort": 1}]}],
                "containers": [
                    {"name": "a", "ports": [{"containerPort": 8080}, {"containerPort": 9000, "protocol": "SCTP"}]},
                    {"name": "b"}
                ]
            })
        };
        let cases = [
            ("v1", "Pod", json!({"spec": pod_spec()}), vec!["spec"]),
            (
                "apps/v1",
                "Deployment",
                json!({"spec": {"template": {"spec": pod_spec()}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"template": {"spec": pod_spec()}}}),
                vec!["spec", "template", "spec"],
            ),
            (
                "batch/v1beta1",
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec()}}}}}),
                vec!["spec", "jobTemplate", "spec", "template", "spec"],
            ),
        ];
        for (api_version, kind, mut object, path) in cases {
            fill(api_version, kind, &mut object);
            let spec = get_mut(&mut object, &path).unwrap();
            assert_eq!(
                spec["initContainers"][0]["ports"][0]["protocol"], "TCP",
                "{kind}"
            );
            assert_eq!(
                spec["containers"][0]["ports"][0]["protocol"], "TCP",
                "{kind}"
            );
            assert_eq!(
                spec["containers"][0]["ports"][1]["protocol"], "SCTP",
                "{kind}"
            );
            assert!(spec["containers"][1].get("ports").is_none(), "{kind}");
        }
    }

    #[test]
    fn other_kinds_and_odd_shapes_are_left_alone() {
        let mut cm = json!({"kind": "ConfigMap", "data": {"ports": "[{\"port\": 1}]"}});
        let before = cm.clone();
        fill("v1", "ConfigMap", &mut cm);
        assert_eq!(cm, before);
        // A manifest whose ports are not a list is the server's to refuse.
        for mut odd in [
            json!({"spec": {"ports": "80"}}),
            json!({"spec": null}),
            json!({"spec": {"ports": [1, "x", null]}}),
            json!([]),
        ] {
            let before = odd.clone();
            fill("v1", "Service", &mut odd);
            fill("apps/v1", "Deployment", &mut odd);
            assert_eq!(odd, before);
        }
    }
}
