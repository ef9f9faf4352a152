//! Table tests of the readiness rules for the kinds every operator project
//! ships besides its workloads — disruption budgets, autoscalers, ingresses,
//! quotas, LoadBalancer Services, APIServices, admission webhooks, CRs with
//! and without conditions — on objects captured from the Kubernetes 1.20
//! test cluster (`tests/fixtures/k8s/{pdb,hpa,...}`, see its README), plus
//! the few hand-written variants for fields 1.20 lacks
//! (`*.handwritten.json`: `policy/v1` conditions, `autoscaling/v2`).

use std::path::PathBuf;

use harness::readiness::State;
use harness::readiness::overrides::{Override, Overrides, ReadyWhen, Selector};
use harness::readiness::rules::{self, ClusterTraits, Related, Status};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

fn json_of(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/k8s")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("fixture decodes")
}

/// The items of a captured list, as v1 EndpointSlices (1.20 serves them as
/// `v1beta1`, whose fields readiness reads are the same).
fn slices(rel: &str) -> Vec<EndpointSlice> {
    json_of(rel)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s["apiVersion"] = json!("discovery.k8s.io/v1");
            s["kind"] = json!("EndpointSlice");
            typed(s)
        })
        .collect()
}

fn evaluate(rel: &str, related: &Related<'_>) -> Status {
    rules::evaluate(&json_of(rel), related).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn none() -> Related<'static> {
    Related::default()
}

#[track_caller]
fn expect(s: &Status, state: State, reason: &str, note: Option<&str>) {
    assert_eq!((s.state, s.reason.as_str()), (state, reason), "{s:?}");
    match note {
        Some(n) => assert!(
            s.note.as_deref().is_some_and(|have| have.contains(n)),
            "note {:?} lacks {n:?}",
            s.note
        ),
        None => assert_eq!(s.note, None, "{s:?}"),
    }
}

#[test]
fn disruption_budgets_exist_and_say_what_blocks_evictions() {
    let cases: [(&str, Option<&str>); 5] = [
        ("pdb/poddisruptionbudget.web.json", None),
        (
            "pdb/poddisruptionbudget.strict.json",
            Some("1 of 2 desired healthy pods: every eviction is refused"),
        ),
        (
            "pdb/poddisruptionbudget.nothing.json",
            Some("selects no pods: it guards nothing"),
        ),
        (
            "pdb/poddisruptionbudget.strict.v1.handwritten.json",
            Some("1 of 2 desired healthy pods"),
        ),
        (
            "pdb/poddisruptionbudget.orphans.v1.handwritten.json",
            Some(
                "its controller cannot compute it (SyncFailed: found no controllers for pod \"orphan\")",
            ),
        ),
    ];
    for (file, note) in cases {
        let s = evaluate(file, &none());
        expect(&s, State::Ready, "Exists", note);
    }
    let web = evaluate("pdb/poddisruptionbudget.web.json", &none());
    assert_eq!(web.message, "1 healthy of 1 desired; 0 disruptions allowed");
    // As the apply answers it (all counts 0): its controller has not
    // counted yet, and a note made of those zeros would be wrong.
    let fresh = evaluate("pdb/poddisruptionbudget.web.apply-response.json", &none());
    expect(&fresh, State::InProgress, "NotObserved", None);
}

#[test]
fn autoscalers_are_judged_by_their_conditions_wherever_the_version_keeps_them() {
    let no_metrics = Some("cannot read its metrics (FailedGetResourceMetric: ");
    let cases: [(&str, State, &str, Option<&str>); 10] = [
        (
            "hpa/horizontalpodautoscaler.web.v2beta2.json",
            State::Ready,
            "Exists",
            no_metrics,
        ),
        // autoscaling/v1 keeps the same conditions in an annotation.
        (
            "hpa/horizontalpodautoscaler.web.v1.json",
            State::Ready,
            "Exists",
            no_metrics,
        ),
        (
            "hpa/horizontalpodautoscaler.missing-target.v2beta2.json",
            State::Failed,
            "FailedGetScale",
            None,
        ),
        (
            "hpa/horizontalpodautoscaler.missing-target.v1.json",
            State::Failed,
            "FailedGetScale",
            None,
        ),
        (
            "hpa/horizontalpodautoscaler.idle.v2beta2.json",
            State::Ready,
            "ScalingDisabled",
            None,
        ),
        (
            "hpa/horizontalpodautoscaler.idle.v1.json",
            State::Ready,
            "ScalingDisabled",
            None,
        ),
        // Before the controller's first sync (`conditions: null`).
        (
            "hpa/horizontalpodautoscaler.missing-target.apply-response.json",
            State::Ready,
            "Exists",
            None,
        ),
        // The autoscaler's own fault is a verdict even where metrics exist.
        (
            "hpa/horizontalpodautoscaler.web.v2.no-requests.handwritten.json",
            State::Failed,
            "FailedGetResourceMetric",
            None,
        ),
        (
            "hpa/horizontalpodautoscaler.bad-selector.v2.handwritten.json",
            State::Failed,
            "InvalidSelector",
            None,
        ),
        (
            "hpa/horizontalpodautoscaler.web.v2beta2.json",
            State::Ready,
            "Exists",
            no_metrics,
        ),
    ];
    for (file, state, reason, note) in cases {
        let s = evaluate(file, &none());
        expect(&s, state, reason, note);
    }
    let failed = evaluate(
        "hpa/horizontalpodautoscaler.missing-target.v1.json",
        &none(),
    );
    assert!(
        failed
            .message
            .contains("deployments/scale.apps \"no-such-deployment\" not found"),
        "{failed:?}"
    );
    let web = evaluate("hpa/horizontalpodautoscaler.web.v1.json", &none());
    assert!(
        web.note.as_deref().unwrap().ends_with(
            "Deployment/web keeps its replicas; a cluster without metrics-server (kind) never scales it"
        ),
        "{web:?}"
    );
    // An annotation that is not JSON is no condition at all.
    let mut garbled = json_of("hpa/horizontalpodautoscaler.missing-target.v1.json");
    garbled["metadata"]["annotations"][rules::HPA_CONDITIONS_ANNOTATION] = json!("[{");
    assert!(rules::evaluate(&garbled, &none()).unwrap().is_ready());
}

#[test]
fn ingresses_quotas_and_other_kinds_without_conditions_are_ready_once_they_exist() {
    for file in [
        "ingress/ingress.web.json",
        "ingress/ingress.web.v1beta1.json",
        "quota/limitrange.limits.json",
        "cronjob-networkpolicy/cronjob.nightly.json",
        "cronjob-networkpolicy/networkpolicy.web.json",
    ] {
        let s = evaluate(file, &none());
        expect(&s, State::Ready, "Exists", None);
    }
    let ingress = evaluate("ingress/ingress.web.json", &none());
    assert!(ingress.message.contains("none is required"), "{ingress:?}");
    let quota = evaluate("quota/resourcequota.quota.json", &none());
    expect(
        &quota,
        State::Ready,
        "Exists",
        Some("used up: configmaps 1 of 1; the next object that asks for more is refused"),
    );
    let mut fresh = json_of("quota/resourcequota.quota.json");
    fresh["status"] = json!({});
    let fresh = rules::evaluate(&fresh, &none()).unwrap();
    expect(&fresh, State::InProgress, "NotObserved", None);
    // Being deleted is never Ready, whatever the kind.
    let mut deleting = json_of("ingress/ingress.web.json");
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-07T06:20:00Z");
    assert_eq!(
        rules::evaluate(&deleting, &none()).unwrap().state,
        State::Terminating
    );
}

#[test]
fn quantities_compare_as_numbers() {
    for (text, value) in [
        ("1", 1.0),
        ("500m", 0.5),
        ("2Gi", 2.0 * 1024.0 * 1024.0 * 1024.0),
        ("1k", 1000.0),
        ("1e3", 1000.0),
        ("1.5", 1.5),
    ] {
        assert_eq!(rules::quantity(text), Some(value), "{text}");
    }
    for bad in ["", "Gi", "1Qi", "one"] {
        assert_eq!(rules::quantity(bad), None, "{bad}");
    }
}

#[test]
fn a_load_balancer_service_needs_an_address_only_where_the_cluster_gives_one() {
    let lb_slices = slices("service-loadbalancer/endpointslices.web-lb.json");
    let cloud = Related {
        endpoint_slices: &lb_slices,
        ..Related::default()
    };
    let kind = Related {
        cluster: ClusterTraits {
            load_balancer_addresses: false,
        },
        ..cloud
    };
    let file = "service-loadbalancer/service.web-lb.json";
    expect(
        &evaluate(file, &cloud),
        State::InProgress,
        "NoLoadBalancerAddress",
        None,
    );
    expect(
        &evaluate(file, &kind),
        State::Ready,
        "EndpointsReady",
        Some("LoadBalancer Service without an address"),
    );
    // On kind it still needs its endpoints, as any Service.
    let bare = Related {
        endpoint_slices: &[],
        ..kind
    };
    expect(
        &evaluate(file, &bare),
        State::InProgress,
        "NoEndpoints",
        None,
    );
}

#[test]
fn api_services_follow_the_aggregators_available_condition() {
    let local = evaluate("apiservice/apiservice.v1.apps.json", &none());
    expect(&local, State::Ready, "Local", None);
    for (file, reason) in [
        (
            "apiservice/apiservice.v1alpha1.missing.harness.dev.json",
            "ServiceNotFound",
        ),
        (
            "apiservice/apiservice.v1alpha1.noeps.harness.dev.json",
            "MissingEndpoints",
        ),
    ] {
        let s = evaluate(file, &none());
        expect(&s, State::InProgress, reason, None);
        assert!(
            s.fails_when_alone,
            "{file}: nothing else will give it a backend"
        );
    }
}

/// The webhook case's Services, Endpoints and EndpointSlices.
struct Webhooks {
    services: Vec<Service>,
    endpoints: Vec<Endpoints>,
    slices: Vec<EndpointSlice>,
}

impl Webhooks {
    fn captured() -> Self {
        Self {
            services: ["hook", "nohook"]
                .map(|n| typed(json_of(&format!("webhook/service.{n}.json"))))
                .to_vec(),
            endpoints: ["hook", "nohook"]
                .map(|n| typed(json_of(&format!("webhook/endpoints.{n}.json"))))
                .to_vec(),
            slices: slices("webhook/endpointslices.r22.json"),
        }
    }
    fn with_slices(&self) -> Related<'_> {
        Related {
            services: &self.services,
            endpoint_slices: &self.slices,
            ..Related::default()
        }
    }
    fn with_endpoints(&self) -> Related<'_> {
        Related {
            services: &self.services,
            endpoints: &self.endpoints,
            ..Related::default()
        }
    }
}

#[test]
fn a_webhook_is_ready_when_every_service_it_calls_has_a_ready_endpoint() {
    let w = Webhooks::captured();
    let served = "webhook/validatingwebhookconfiguration.r22-served.json";
    for (name, related) in [
        ("slices", w.with_slices()),
        ("endpoints", w.with_endpoints()),
    ] {
        let s = evaluate(served, &related);
        expect(&s, State::Ready, "ServiceAvailable", None);
        assert_eq!(
            s.message, "every service it calls has ready endpoints: r22/hook:443",
            "{name}"
        );
        // The same object as the deprecated v1beta1 serves it.
        let old = evaluate(
            "webhook/validatingwebhookconfiguration.r22-served.v1beta1.json",
            &related,
        );
        expect(&old, State::Ready, "ServiceAvailable", None);
    }
    // Nothing fetched yet: the Service does not exist as far as anyone knows.
    let unknown = evaluate(served, &none());
    expect(
        &unknown,
        State::InProgress,
        "WebhookServiceUnavailable",
        None,
    );
    assert!(
        unknown
            .message
            .starts_with("service r22/hook:443 does not exist;"),
        "{unknown:?}"
    );
    assert!(unknown.fails_when_alone);
    // Another namespace's slices for a Service of the same name do not count.
    let mut elsewhere = w.slices.clone();
    for s in &mut elsewhere {
        s.metadata.namespace = Some("other".into());
    }
    let other_ns = Related {
        services: &w.services,
        endpoint_slices: &elsewhere,
        ..Related::default()
    };
    expect(
        &evaluate(served, &other_ns),
        State::InProgress,
        "WebhookServiceUnavailable",
        None,
    );
}

#[test]
fn a_webhook_names_each_service_that_cannot_take_its_calls() {
    let w = Webhooks::captured();
    let s = evaluate(
        "webhook/mutatingwebhookconfiguration.r22-unserved.json",
        &w.with_slices(),
    );
    expect(&s, State::InProgress, "WebhookServiceUnavailable", None);
    assert_eq!(
        s.message,
        "service r22/nohook:443 has no endpoints: no Ready pod matches its selector app=no-such-pod; \
         service r22/hook:8443 has no port 8443 (its ports: 443); \
         until it has a ready endpoint the API server fails every request the webhook matches"
    );
    // A URL is not checked: it exists, so it is Ready.
    let url = evaluate(
        "webhook/validatingwebhookconfiguration.r22-url.json",
        &none(),
    );
    expect(&url, State::Ready, "Exists", None);
    assert_eq!(url.message, "its webhooks call URLs, which are not checked");
    assert_eq!(
        rules::called_services(&json_of(
            "webhook/mutatingwebhookconfiguration.r22-unserved.json"
        ))
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>(),
        ["r22/nohook:443", "r22/hook:8443"]
    );
}

#[test]
fn a_webhooks_service_with_endpoints_none_ready_says_so() {
    let w = Webhooks::captured();
    let mut not_ready = w.slices.clone();
    for s in &mut not_ready {
        for e in &mut s.endpoints {
            e.conditions.get_or_insert_with(Default::default).ready = Some(false);
        }
    }
    let related = Related {
        services: &w.services,
        endpoint_slices: &not_ready,
        ..Related::default()
    };
    let s = evaluate(
        "webhook/validatingwebhookconfiguration.r22-served.json",
        &related,
    );
    assert!(
        s.message.starts_with(
            "service r22/hook:443 has 1 endpoints, none ready: the pods it selects are not Ready"
        ),
        "{s:?}"
    );
}

fn overrides(entries: &[(&str, ReadyWhen)]) -> Overrides {
    Overrides(
        entries
            .iter()
            .map(|(key, when)| Override {
                selector: Selector::parse(key).unwrap(),
                ready_when: when.clone(),
                from: "harness.yaml:9:5".into(),
            })
            .collect(),
    )
}

#[test]
fn custom_resources_without_a_rule_and_what_the_lane_file_says_of_them() {
    let plain = evaluate("cr-conditions/gadget.plain.json", &none());
    expect(&plain, State::Ready, "Current", None);
    let synced = evaluate("cr-conditions/gadget.synced.json", &none());
    expect(&synced, State::Unknown, "NoReadyCondition", None);
    assert_eq!(
        synced.message,
        "its conditions (Synced=True) say nothing of Ready, and no rule says which means Ready for this kind: \
         say it in the lane file, e.g. `readiness: {Gadget.kinds.harness.dev: {condition: Synced}}`"
    );
    let by = |o: &Overrides, file: &str| {
        rules::evaluate(
            &json_of(file),
            &Related {
                overrides: Some(o),
                ..Related::default()
            },
        )
        .unwrap()
    };
    let condition = overrides(&[(
        "Gadget.kinds.harness.dev",
        ReadyWhen::Condition("Synced".into()),
    )]);
    let s = by(&condition, "cr-conditions/gadget.synced.json");
    expect(&s, State::Ready, "UpToDate", None);
    assert_eq!(
        s.message,
        "Synced is True, which the lane file says is Ready (harness.yaml:9:5)"
    );
    // The same rule on an object without the condition waits, and says why.
    let s = by(&condition, "cr-conditions/gadget.plain.json");
    expect(&s, State::InProgress, "NoSyncedCondition", None);
    // Another group, or another object, is not selected.
    let elsewhere = overrides(&[
        ("Gadget.other.io", ReadyWhen::Exists),
        ("Gadget/not-this-one", ReadyWhen::Exists),
    ]);
    expect(
        &by(&elsewhere, "cr-conditions/gadget.synced.json"),
        State::Unknown,
        "NoReadyCondition",
        None,
    );
    // An object's own entry wins over its kind's.
    let specific = overrides(&[
        ("Gadget", ReadyWhen::Condition("Ready".into())),
        ("Gadget/r22/synced", ReadyWhen::Exists),
    ]);
    expect(
        &by(&specific, "cr-conditions/gadget.synced.json"),
        State::Ready,
        "Exists",
        None,
    );
    expect(
        &by(&specific, "cr-conditions/gadget.plain.json"),
        State::InProgress,
        "NoReadyCondition",
        None,
    );
    // A built-in kind can be overridden too: a LoadBalancer Service nobody
    // gives an address.
    let lb = overrides(&[("Service/web-lb", ReadyWhen::Exists)]);
    expect(
        &by(&lb, "service-loadbalancer/service.web-lb.json"),
        State::Ready,
        "Exists",
        None,
    );
}
