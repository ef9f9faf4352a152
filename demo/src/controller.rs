//! The controller's I/O: a kube-runtime [`Controller`] over every
//! `RemediationRequest`, carrying out the transition [`phase::next`] decides.
//!
//! Order matters: the audit event is written first, then the status. If the
//! status update fails, the retry posts the same event again (same id,
//! stored once) — so every phase an object shows has its audit event. The
//! status patch carries the resourceVersion the decision was made on, so a
//! stale copy of the object is refused (409) instead of skipping a phase.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::phase::{self, RemediationRequest};

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object has no {0}")]
    Meta(&'static str),
    #[error("posting the audit event to DataStorage failed")]
    Audit(#[from] reqwest::Error),
    #[error("DataStorage refused the audit event: {status} {body}")]
    AuditRefused { status: u16, body: String },
    #[error("updating the status failed")]
    Kube(#[from] kube::Error),
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub http: reqwest::Client,
    /// Base URL of DataStorage, e.g. `http://datastorage:8080`.
    pub datastorage: String,
}

/// Makes the one next transition of `rr`, if any.
pub async fn reconcile(rr: Arc<RemediationRequest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let current = rr.status.as_ref().and_then(|s| s.phase);
    let Some(t) = phase::next(&rr.spec, current) else {
        return Ok(Action::await_change());
    };
    let uid = rr.metadata.uid.as_deref().ok_or(Error::Meta("uid"))?;
    let namespace = rr.namespace().ok_or(Error::Meta("namespace"))?;
    let name = rr.name_any();
    let event = phase::audit_event(uid, &namespace, &name, &rr.spec, &t);
    let response = ctx
        .http
        .post(format!("{}/api/v1/audit/events", ctx.datastorage))
        .json(&event)
        .send()
        .await?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        return Err(Error::AuditRefused { status, body });
    }
    let api: Api<RemediationRequest> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = json!({
        "metadata": {"resourceVersion": rr.metadata.resource_version},
        "status": {
            "phase": t.to.as_str(),
            "message": t.message,
            "conditions": phase::conditions(t.to, &t.message),
        },
    });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    // The status change comes back through the watch and triggers the next step.
    Ok(Action::await_change())
}

fn error_policy(_: Arc<RemediationRequest>, _: &Error, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(2))
}

/// Runs the controller until SIGTERM/Ctrl-C, reporting each reconcile.
pub async fn run(ctx: Context, report: impl Fn(String)) {
    let api: Api<RemediationRequest> = Api::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, Arc::new(ctx))
        .for_each(|result| {
            report(match result {
                Ok((obj, _)) => format!("reconciled {obj}"),
                Err(e) => format!("reconcile failed: {}", crate::writer::error_chain(&e)),
            });
            futures::future::ready(())
        })
        .await;
}
