//! The controller's validating admission webhook, served over TLS.
//!
//! The API server calls `POST /validate-remediationrequest` with an
//! `AdmissionReview` for every RemediationRequest created or updated; the
//! answer allows it unless `spec.action` is not one the controller knows
//! ([`check`], pure). The certificate is made in the cluster, the way real
//! operators do without cert-manager: a Job runs Debian's openssl (a CA and
//! a serving certificate for the webhook's Service) and `controller
//! webhook-certs` stores them in a Secret ([`store_certificate`]); the
//! controller mounts that Secret, patches the CA into the
//! ValidatingWebhookConfiguration's `caBundle` itself ([`patch_ca_bundle`],
//! as its own field manager, so the harness's server-side apply never
//! takes it back) and only then reports ready on `/healthz`. TLS is rustls
//! with the aws-lc-rs provider, the one crypto provider of the workspace.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The actions a RemediationRequest may ask for.
pub const ACTIONS: &[&str] = &["restart", "rollback", "scale-up", "scale-down"];
/// The ValidatingWebhookConfiguration the controller patches its CA into.
pub const WEBHOOK_CONFIGURATION: &str = "remediation-validation";
/// The field manager of that patch.
pub const FIELD_MANAGER: &str = "remediation-controller";

/// Whether a RemediationRequest's spec is acceptable; the refusal says why.
pub fn check(spec: &Value) -> Result<(), String> {
    match spec.get("action") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => Ok(()),
        Some(Value::String(a)) => Err(format!(
            "spec.action `{a}` is not one of {}",
            ACTIONS.join(", ")
        )),
        Some(other) => Err(format!("spec.action must be a string, not {other}")),
    }
}

/// The `AdmissionReview` answering `review` (admission.k8s.io/v1).
pub fn answer(review: &Value) -> Value {
    let request = &review["request"];
    let verdict = check(&request["object"]["spec"]);
    let mut response = json!({
        "uid": request["uid"],
        "allowed": verdict.is_ok(),
    });
    if let Err(message) = verdict {
        response["status"] = json!({"code": 422, "message": message});
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

/// The webhook's routes; `/healthz` answers 200 once `ready` is set.
pub fn router(ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route(
            "/validate-remediationrequest",
            post(|Json(review): Json<Value>| async move { Json(answer(&review)) }),
        )
        .route(
            "/healthz",
            get(|State(ready): State<Arc<AtomicBool>>| async move {
                if ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "caBundle not patched yet")
                }
            }),
        )
        .with_state(ready)
}

/// Why the webhook cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no {what}")]
    Pem { path: String, what: &'static str },
    #[error("the certificate and key are not usable")]
    Tls(#[from] rustls::Error),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the Kubernetes API refused")]
    Kube(#[from] kube::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}

/// A rustls server configuration (aws-lc-rs) from `tls.crt` and `tls.key`
/// in `dir`.
pub fn tls_config(dir: &Path) -> Result<rustls::ServerConfig, Error> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&cert_path)?)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(Error::Pem {
            path: cert_path.display().to_string(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?).map_err(|_| Error::Pem {
        path: key_path.display().to_string(),
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?)
}

/// A TCP listener whose connections are TLS: what axum serves over.
pub struct TlsListener {
    tcp: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl TlsListener {
    pub async fn bind(addr: SocketAddr, config: rustls::ServerConfig) -> Result<Self, Error> {
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        Ok(Self {
            tcp,
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that fails the handshake (a probe, a scanner) costs
            // its own connection, not the server.
            if let Ok(tls) = self.tls.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Sets `caBundle` of every webhook of [`WEBHOOK_CONFIGURATION`] to the CA
/// in `ca_pem`, as the controller's own field manager (a strategic merge
/// keyed by webhook name: the harness's server-side apply does not own the
/// field, so a later `up` keeps it).
pub async fn patch_ca_bundle(client: &kube::Client, ca_pem: &[u8]) -> Result<(), Error> {
    let api: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
        Api::all(client.clone());
    let current = api.get(WEBHOOK_CONFIGURATION).await?;
    // ByteString serializes as the base64 the field holds.
    let bundle =
        serde_json::to_value(k8s_openapi::ByteString(ca_pem.to_vec())).expect("bytes serialize");
    let webhooks: Vec<Value> = current
        .webhooks
        .unwrap_or_default()
        .iter()
        .map(|w| json!({"name": w.name, "clientConfig": {"caBundle": bundle}}))
        .collect();
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch(
        WEBHOOK_CONFIGURATION,
        &params,
        &Patch::Strategic(json!({"webhooks": webhooks})),
    )
    .await?;
    Ok(())
}

/// Stores `tls.crt`, `tls.key` and `ca.crt` of `dir` as the Secret `name`
/// in `namespace`; one that exists already is kept (a Job run again must
/// not change the certificate the controller serves). Returns whether it
/// was created.
pub async fn store_certificate(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    dir: &Path,
) -> Result<bool, Error> {
    use k8s_openapi::ByteString;
    let mut data = std::collections::BTreeMap::new();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        data.insert(file.to_owned(), ByteString(read(&dir.join(file))?));
    }
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), namespace);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_the_controller_knows_are_allowed_others_refused() {
        let table = [
            (
                json!({"target": "deployment/api", "action": "restart"}),
                Ok(()),
            ),
            (json!({"target": "deployment/api"}), Ok(())),
            (json!({"target": "x", "action": null}), Ok(())),
            (
                json!({"target": "x", "action": "explode"}),
                Err(
                    "spec.action `explode` is not one of restart, rollback, scale-up, scale-down"
                        .to_owned(),
                ),
            ),
            (
                json!({"target": "x", "action": 3}),
                Err("spec.action must be a string, not 3".to_owned()),
            ),
        ];
        for (spec, want) in table {
            assert_eq!(check(&spec), want, "{spec}");
        }
    }

    #[test]
    fn the_answer_carries_the_requests_uid_and_the_refusal() {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "operation": "CREATE",
                        "object": {"spec": {"target": "x", "action": "explode"}}}
        });
        let a = answer(&review);
        assert_eq!(a["kind"], "AdmissionReview");
        assert_eq!(a["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(a["response"]["allowed"], false);
        assert_eq!(a["response"]["status"]["code"], 422);
        let mut ok = review.clone();
        ok["request"]["object"]["spec"]["action"] = json!("rollback");
        let a = answer(&ok);
        assert_eq!(a["response"]["allowed"], true);
        assert!(a["response"].get("status").is_none());
    }
}
