//! The demo controller: moves every `RemediationRequest` through Pending →
//! Processing → Completed and writes an audit event to DataStorage for each
//! step. Configured by `DATASTORAGE_URL`; finds the cluster the usual way
//! (in-cluster service account, or KUBECONFIG).

use std::process::ExitCode;
use std::time::Duration;

use harness_demo::controller::{Context, run};

#[tokio::main]
async fn main() -> ExitCode {
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
