//! The waiter and a webhook configuration, against a scripted fake API
//! server serving the objects captured on the 1.20 test cluster
//! (`tests/fixtures/k8s/webhook/`): the Services a webhook calls and their
//! EndpointSlices (in the `v1beta1` the server serves) are watched, so the
//! webhook is Ready on the watch event that gives its Service a ready
//! endpoint — listed once, never asked again.

mod fake_api;

use std::time::Duration;

use fake_api::{Reply, fixture, list, not_found, spawn};
use harness::deploy::judge::Outcome;
use harness::deploy::wait::{EndpointSource, WaitSpec, wait_ready};
use harness::readiness::classify::Tolerance;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn applied_webhook() -> harness::deploy::AppliedObject {
    let object = json(&fixture(
        "webhook/validatingwebhookconfiguration.r22-served.json",
    ));
    harness::deploy::AppliedObject {
        api_version: "admissionregistration.k8s.io/v1".into(),
        kind: "ValidatingWebhookConfiguration".into(),
        namespace: None,
        name: "r22-served".into(),
        uid: object["metadata"]["uid"].as_str().map(str::to_owned),
        resource: kube::api::ApiResource {
            group: "admissionregistration.k8s.io".into(),
            version: "v1".into(),
            api_version: "admissionregistration.k8s.io/v1".into(),
            kind: "ValidatingWebhookConfiguration".into(),
            plural: "validatingwebhookconfigurations".into(),
        },
        object: serde_json::from_value(object).unwrap(),
    }
}

// Paused time: the event comes 3 s in, with no real waiting.
#[tokio::test(start_paused = true)]
async fn a_webhook_is_ready_on_the_watch_event_that_gives_its_service_an_endpoint() {
    let webhook = json(&fixture(
        "webhook/validatingwebhookconfiguration.r22-served.json",
    ));
    let service = json(&fixture("webhook/service.hook.json"));
    let slices = json(&fixture("webhook/endpointslices.r22.json"));
    let ready_slice = slices["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "hook")
        .unwrap()
        .clone();
    // Before: the slice exists, its one endpoint not ready yet.
    let mut unready_slice = ready_slice.clone();
    unready_slice["endpoints"][0]["conditions"]["ready"] = json!(false);
    unready_slice["metadata"]["resourceVersion"] = json!("1");
    let (send_ready, ready_event) = oneshot::channel::<(u16, String)>();
    let mut ready_event = Some(ready_event);
    let (client, log) = spawn(move |req| {
        let watch = req.is_watch();
        match req.path.as_str() {
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations" if watch => {
                Reply::Hold
            }
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations" => Reply::Json(
                200,
                list(
                    "ValidatingWebhookConfigurationList",
                    std::slice::from_ref(&webhook),
                ),
            ),
            "/api/v1/namespaces/r22/services" if watch => Reply::Hold,
            "/api/v1/namespaces/r22/services" => {
                assert_eq!(
                    req.param("fieldSelector").as_deref(),
                    Some("metadata.name=hook")
                );
                Reply::Json(200, list("ServiceList", std::slice::from_ref(&service)))
            }
            "/apis/discovery.k8s.io/v1beta1/namespaces/r22/endpointslices" => {
                assert_eq!(
                    req.param("labelSelector").as_deref(),
                    Some("kubernetes.io/service-name=hook")
                );
                if !watch {
                    return Reply::Json(200, list("EndpointSliceList", &[unready_slice.clone()]));
                }
                match ready_event.take() {
                    Some(event) => Reply::Later(event),
                    None => Reply::Hold,
                }
            }
            _ => not_found(&req.path),
        }
    });
    let applied = [applied_webhook()];
    let spec = WaitSpec {
        endpoints: EndpointSource::SlicesV1beta1,
        ..WaitSpec::new(Tolerance::default())
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let ready_at = start + Duration::from_secs(3);
    let mut judged = Vec::new();
    let wait = wait_ready(&client, &applied, spec, deadline, |j| {
        judged.push((j.outcome, j.rows.first().map(|r| r.reason.clone())));
    });
    let send = async move {
        tokio::time::sleep_until(ready_at).await;
        let event = json!({"type": "MODIFIED", "object": ready_slice});
        send_ready.send((200, format!("{event}\n"))).unwrap();
    };
    let (end, ()) = tokio::join!(wait, send);
    assert_eq!(
        end.judgement.outcome,
        Outcome::Ready,
        "{:?}",
        end.judgement.rows
    );
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "not before the event"
    );
    assert!(
        judged.contains(&(Outcome::Pending, Some("WebhookServiceUnavailable".into()))),
        "{judged:?}"
    );
    // Watched, never polled: each related object listed once.
    let requests = log.lock().unwrap().clone();
    let lists = |path: &str| {
        requests
            .iter()
            .filter(|r| r.path == path && !r.is_watch())
            .count()
    };
    assert_eq!(
        lists("/apis/discovery.k8s.io/v1beta1/namespaces/r22/endpointslices"),
        1
    );
    assert_eq!(lists("/api/v1/namespaces/r22/services"), 1);
}
