//! The webhook's TLS as the cluster gets it: the certificate made by the
//! openssl lines of the webhook-certs Job (deploy/webhook-certs/job.yaml,
//! run here with Debian's openssl), served by the controller's TLS
//! listener (rustls, aws-lc-rs), and a client that trusts only the Job's
//! CA and checks the Service's name — as the API server does — gets the
//! webhook's answers.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use harness_demo::webhook;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const NAMESPACE: &str = "harness-demo-system";

/// The Job's script up to (not including) the line that stores the
/// Secret, run in `dir` as the Job runs it in /certs.
fn make_certificate(dir: &Path) {
    let job = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/webhook-certs/job.yaml"),
    )
    .unwrap();
    let job: serde_json::Value = serde_saphyr::from_str(&job).unwrap();
    let script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    let script: String = script
        .lines()
        .filter(|l| !l.starts_with("exec controller"))
        .map(|l| l.replace("cd /certs", &format!("cd {}", dir.display())))
        .collect::<Vec<_>>()
        .join("\n");
    let out = Command::new("sh")
        .args(["-ec", &script])
        .env("POD_NAMESPACE", NAMESPACE)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "the Job's openssl lines failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn post(
    addr: std::net::SocketAddr,
    ca: &[u8],
    server_name: &str,
    path: &str,
    body: &str,
) -> Result<String, std::io::Error> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let method = if body.is_empty() { "GET" } else { "POST" };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {server_name}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn the_jobs_certificate_serves_the_webhook_to_a_client_that_trusts_only_its_ca() {
    if Command::new("openssl").arg("version").output().is_err() {
        panic!("openssl is not installed (Debian's openssl package)");
    }
    let dir = tempfile::tempdir().unwrap();
    make_certificate(dir.path());
    let config = webhook::tls_config(dir.path()).expect("rustls takes openssl's certificate");
    let listener = webhook::TlsListener::bind(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(axum::serve(listener, webhook::router(ready.clone())).into_future());
    let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
    let service = format!("remediation-webhook.{NAMESPACE}.svc");

    // Not ready until the CA is in the webhook configuration.
    let health = post(addr, &ca, &service, "/healthz", "").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    ready.store(true, Ordering::SeqCst);
    let health = post(addr, &ca, &service, "/healthz", "").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "object": {"spec": {"target": "deployment/api", "action": "explode"}}}
    });
    let answer = post(
        addr,
        &ca,
        &service,
        "/validate-remediationrequest",
        &review.to_string(),
    )
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""allowed":false"#), "{answer}");
    assert!(
        answer.contains("spec.action `explode` is not one of"),
        "{answer}"
    );

    // The certificate names the Service: any other name is refused, as the
    // API server would refuse it.
    let wrong = post(addr, &ca, "remediation-webhook.default.svc", "/healthz", "").await;
    assert!(wrong.is_err(), "{wrong:?}");
}

use std::future::IntoFuture as _;
