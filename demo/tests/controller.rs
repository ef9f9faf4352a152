//! The controller's I/O glue against a scenario: a fake API server
//! (`tower_test::mock::pair`, as in kube-rs's controller-rs) and a fake
//! DataStorage (a real HTTP server on loopback that records what it gets).
//!
//! What is checked is the order that makes the audit trail complete: the
//! audit event is posted first, then the status is patched with the
//! resourceVersion the decision was made on; when DataStorage refuses the
//! event, the status is not touched.

use std::future::IntoFuture;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::StatusCode;
use harness_demo::controller::{Context, Error, reconcile};
use harness_demo::phase::{Phase, RemediationRequest, Spec, Status};
use http::{Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::client::Body;
use serde_json::{Value, json};

type Recorded = Arc<Mutex<Vec<Value>>>;

/// A DataStorage that answers `status` to every audit post and records it.
async fn fake_datastorage(status: StatusCode) -> (String, Recorded) {
    let seen: Recorded = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/api/v1/audit/events",
        axum::routing::post(move |Json(body): Json<Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(body);
                (status, Json(json!({})))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    (url, seen)
}

fn object(phase: Option<Phase>) -> RemediationRequest {
    RemediationRequest {
        metadata: ObjectMeta {
            name: Some("rr".into()),
            namespace: Some("ns".into()),
            uid: Some("0b7c6f5e-1111-2222-3333-444455556666".into()),
            resource_version: Some("42".into()),
            ..Default::default()
        },
        spec: Spec {
            target: "deployment/api".into(),
            action: Some("restart".into()),
        },
        status: phase.map(|p| Status {
            phase: Some(p),
            message: None,
        }),
    }
}

#[tokio::test]
async fn posts_the_audit_event_then_patches_the_status() {
    let (datastorage, seen) = fake_datastorage(StatusCode::ACCEPTED).await;
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Arc::new(Context {
        client: kube::Client::new(service, "default"),
        http: reqwest::Client::new(),
        datastorage,
    });
    let seen_at_patch = seen.clone();
    let api_server = tokio::spawn(async move {
        let (request, send) = handle.next_request().await.expect("a status patch");
        // The audit event was stored before the status changed.
        assert_eq!(seen_at_patch.lock().unwrap().len(), 1);
        assert_eq!(request.method(), http::Method::PATCH);
        assert_eq!(
            request.uri().path(),
            "/apis/demo.harness.dev/v1alpha1/namespaces/ns/remediationrequests/rr/status"
        );
        assert_eq!(
            request.headers()["content-type"],
            "application/merge-patch+json"
        );
        let body: Value =
            serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(body["metadata"]["resourceVersion"], "42");
        assert_eq!(body["status"]["phase"], "Processing");
        let mut updated = serde_json::to_value(object(Some(Phase::Processing))).unwrap();
        updated["apiVersion"] = json!("demo.harness.dev/v1alpha1");
        updated["kind"] = json!("RemediationRequest");
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&updated).unwrap()))
                .unwrap(),
        );
        assert!(
            handle.next_request().await.is_none(),
            "one request per step"
        );
    });
    reconcile(Arc::new(object(Some(Phase::Pending))), ctx)
        .await
        .unwrap();
    api_server.await.unwrap();
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "remediation.processing");
    assert_eq!(
        events[0]["correlation_id"],
        "0b7c6f5e-1111-2222-3333-444455556666"
    );
}

#[tokio::test]
async fn a_refused_audit_event_leaves_the_status_alone() {
    let (datastorage, seen) = fake_datastorage(StatusCode::SERVICE_UNAVAILABLE).await;
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Arc::new(Context {
        client: kube::Client::new(service, "default"),
        http: reqwest::Client::new(),
        datastorage,
    });
    let err = reconcile(Arc::new(object(None)), ctx).await.unwrap_err();
    assert!(
        matches!(err, Error::AuditRefused { status: 503, .. }),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap()[0]["event_type"], "remediation.pending");
    // The context (and with it the only client) is gone: no request was made.
    assert!(
        handle.next_request().await.is_none(),
        "the status must not change"
    );
}

#[tokio::test]
async fn a_completed_object_needs_nothing() {
    let (datastorage, seen) = fake_datastorage(StatusCode::ACCEPTED).await;
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Arc::new(Context {
        client: kube::Client::new(service, "default"),
        http: reqwest::Client::new(),
        datastorage,
    });
    reconcile(Arc::new(object(Some(Phase::Completed))), ctx)
        .await
        .unwrap();
    assert!(seen.lock().unwrap().is_empty());
    assert!(handle.next_request().await.is_none());
}
