//! The demo controller: moves every `RemediationRequest` through Pending →
//! Processing → Completed and writes an audit event to DataStorage for each
//! step. Configured by `DATASTORAGE_URL`; finds the cluster the usual way
//! (in-cluster service account, or KUBECONFIG). With `WEBHOOK_TLS_DIR` set
//! it also serves its validating webhook over TLS on port 9443, after
//! patching the CA of that directory into the webhook configuration.
//!
//! `controller webhook-certs DIR SECRET` (the certificate Job, after
//! openssl) stores DIR's tls.crt, tls.key and ca.crt as the Secret SECRET of
//! the pod's namespace (`POD_NAMESPACE`).

use std::process::ExitCode;
use std::time::Duration;

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use harness_demo::controller::{Context, run};
use harness_demo::webhook;

/// `webhook-certs DIR SECRET`: stores the certificate openssl made.
async fn webhook_certs(args: &[String]) -> ExitCode {
    let [dir, secret] = args else {
        eprintln!("controller: usage: controller webhook-certs DIR SECRET");
        return ExitCode::from(2);
    };
    let Some(namespace) = std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
    else {
        eprintln!(
            "controller: error: POD_NAMESPACE is not set: give it the pod's namespace (downward API)"
        );
        return ExitCode::from(2);
    };
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "controller: error: cannot configure a Kubernetes client: {}",
                harness_demo::writer::error_chain(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    match webhook::store_certificate(&client, &namespace, secret, std::path::Path::new(dir)).await {
        Ok(true) => {
            eprintln!("controller: stored the webhook certificate as Secret {namespace}/{secret}")
        }
        Ok(false) => eprintln!("controller: Secret {namespace}/{secret} exists: kept"),
        Err(e) => {
            eprintln!(
                "controller: error: cannot store the certificate: {}",
                harness_demo::writer::error_chain(&e)
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("webhook-certs") {
        return webhook_certs(&args[1..]).await;
    }
    let Some(datastorage) = std::env::var("DATASTORAGE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "controller: error: DATASTORAGE_URL is not set: set it to DataStorage's base URL, e.g. http://datastorage:8080"
        );
        return ExitCode::from(2);
    };
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "controller: error: cannot configure a Kubernetes client: {}",
                harness_demo::writer::error_chain(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    if let Some(dir) = std::env::var_os("WEBHOOK_TLS_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let config = match webhook::tls_config(&dir) {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "controller: error: cannot serve the webhook: {}",
                    harness_demo::writer::error_chain(&e)
                );
                return ExitCode::FAILURE;
            }
        };
        let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 9443));
        let listener = match webhook::TlsListener::bind(addr, config).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "controller: error: {}",
                    harness_demo::writer::error_chain(&e)
                );
                return ExitCode::FAILURE;
            }
        };
        let ready = Arc::new(AtomicBool::new(false));
        tokio::spawn(axum::serve(listener, webhook::router(ready.clone())).into_future());
        eprintln!("controller: serving the webhook on https://{addr}");
        let client = client.clone();
        tokio::spawn(async move {
            // The webhook configuration is applied with this Deployment:
            // ask until it is there.
            let ca = std::fs::read(dir.join("ca.crt")).unwrap_or_default();
            loop {
                match webhook::patch_ca_bundle(&client, &ca).await {
                    Ok(()) => {
                        eprintln!(
                            "controller: patched the CA into {}",
                            webhook::WEBHOOK_CONFIGURATION
                        );
                        ready.store(true, Ordering::SeqCst);
                        break;
                    }
                    Err(e) => eprintln!(
                        "controller: cannot patch the CA yet: {}",
                        harness_demo::writer::error_chain(&e)
                    ),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
    }
    eprintln!("controller: watching RemediationRequests, auditing to {datastorage}");
    let datastorage = datastorage.trim_end_matches('/').to_owned();
    run(
        Context {
            client,
            http,
            datastorage,
        },
        |line| eprintln!("controller: {line}"),
    )
    .await;
    eprintln!("controller: stopped");
    ExitCode::SUCCESS
}
