//! Suite namespaces in the cluster: the Kubernetes side of
//! [`suites::NamespaceProvisioner`](crate::suites::NamespaceProvisioner).
//!
//! A namespace is usable only when it is `Active` *and* its `default`
//! ServiceAccount exists (the ServiceAccount controller creates it a moment
//! later; pods created before are rejected) — and, on servers before 1.24,
//! holds its token Secret, which the token controller adds a moment later
//! still (until then the admission plugin rejects pods with "no API token
//! found for service account"). All are awaited with watches
//! under one deadline, never with sleeps. Every namespace is labelled with
//! the run id so that a crashed run's namespaces can be found and removed.
//! Deletion sends the DELETE and then waits, with its own timeout, for the
//! namespace to disappear; one still there at the timeout is reported with
//! what holds it (its finalizers and the controller's `Namespace*Remaining`
//! conditions), because "namespace stuck terminating" is otherwise a mystery.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};

use crate::suites::{NamespaceError, NamespaceProvisioner};

/// The label every suite namespace carries: the harness run that made it.
pub const RUN_ID_LABEL: &str = "dev.harness/run-id";

/// How long creating a namespace may take by default (Active + ServiceAccount).
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a deletion is waited for by default.
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates and deletes suite namespaces through the API server.
#[derive(Clone)]
pub struct KubeNamespaces {
    client: Client,
    run_id: String,
    create_timeout: Duration,
    delete_timeout: Duration,
    legacy_tokens: std::sync::Arc<tokio::sync::OnceCell<bool>>,
}

impl KubeNamespaces {
    /// A provisioner labelling namespaces with `run_id`.
    pub fn new(client: Client, run_id: impl Into<String>) -> Self {
        Self {
            client,
            run_id: run_id.into(),
            create_timeout: CREATE_TIMEOUT,
            delete_timeout: DELETE_TIMEOUT,
            legacy_tokens: Default::default(),
        }
    }

    /// Whether the server gives ServiceAccounts token Secrets that pods
    /// need (before 1.24), asked once. A server whose version cannot be read
    /// is taken as a current one: the wait then ends with the ServiceAccount.
    async fn legacy_tokens(&self) -> bool {
        *self
            .legacy_tokens
            .get_or_init(|| async {
                self.client
                    .apiserver_version()
                    .await
                    .is_ok_and(|v| minor_before(&v.major, &v.minor, 24))
            })
            .await
    }

    /// Overrides the creation and deletion timeouts.
    pub fn with_timeouts(mut self, create: Duration, delete: Duration) -> Self {
        self.create_timeout = create;
        self.delete_timeout = delete;
        self
    }

    /// The Namespace object created for `name`.
    pub fn namespace_object(&self, name: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([(
                    RUN_ID_LABEL.to_owned(),
                    self.run_id.clone(),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    async fn create_and_wait(&self, name: &str) -> Result<(), NamespaceError> {
        let err = |reason: String| NamespaceError::Create {
            namespace: name.to_owned(),
            reason,
        };
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .create(&PostParams::default(), &self.namespace_object(name))
            .await
            .map_err(|e| err(e.to_string()))?;
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), name);
        let active = await_condition(namespaces, name, is_active);
        let legacy = self.legacy_tokens().await;
        let account = await_condition(accounts, "default", move |sa: Option<&ServiceAccount>| {
            account_usable(sa, legacy)
        });
        let both = futures_util::future::try_join(active, account);
        match tokio::time::timeout(self.create_timeout, both).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(err(format!("watching it failed: {e}"))),
            Err(_) => Err(err(format!(
                "it was not Active with a `default` ServiceAccount within {}; is the ServiceAccount controller (kube-controller-manager) running?",
                humantime::format_duration(self.create_timeout)
            ))),
        }
    }

    /// Deletes `name` and waits (up to the deletion timeout) until it is
    /// gone. Callers that must not block spawn this; its result says whether
    /// the namespace went away or what holds it.
    pub async fn delete(&self, name: &str) -> Result<(), NamespaceError> {
        let err = |reason: String| NamespaceError::Delete {
            namespace: name.to_owned(),
            reason,
        };
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        match namespaces.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(err(e.to_string())),
        }
        let gone = await_condition(namespaces.clone(), name, |ns: Option<&Namespace>| {
            ns.is_none()
        });
        match tokio::time::timeout(self.delete_timeout, gone).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(err(format!("watching its deletion failed: {e}"))),
            Err(_) => {
                let holding = match namespaces.get_opt(name).await {
                    Ok(Some(ns)) => stuck_reason(&ns),
                    Ok(None) => return Ok(()),
                    Err(e) => format!("and it cannot be read: {e}"),
                };
                Err(err(format!(
                    "still there after {}: {holding}",
                    humantime::format_duration(self.delete_timeout)
                )))
            }
        }
    }
}

/// Waits (by watch, up to `timeout`) until namespace `name` accepts pods:
/// Active, with its `default` ServiceAccount (and, before 1.24, that
/// account's token). For namespaces the harness did not make as suite
/// namespaces: the deploy stage applies bare Pods only once this holds.
pub async fn wait_usable(client: &Client, name: &str, timeout: Duration) -> Result<(), String> {
    let legacy = client
        .apiserver_version()
        .await
        .is_ok_and(|v| minor_before(&v.major, &v.minor, 24));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let active = await_condition(namespaces, name, is_active);
    let account = await_condition(accounts, "default", move |sa: Option<&ServiceAccount>| {
        account_usable(sa, legacy)
    });
    match tokio::time::timeout(timeout, futures_util::future::try_join(active, account)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("watching it failed: {e}")),
        Err(_) => Err(format!(
            "namespace {name} was not Active with a usable `default` ServiceAccount within {}",
            humantime::format_duration(timeout)
        )),
    }
}

/// Whether pods can use the ServiceAccount: it exists, and where the server
/// mounts token Secrets (`legacy_tokens`), its token is there.
fn account_usable(sa: Option<&ServiceAccount>, legacy_tokens: bool) -> bool {
    sa.is_some_and(|sa| !legacy_tokens || sa.secrets.as_ref().is_some_and(|s| !s.is_empty()))
}

/// Whether `major.minor` (as `/version` gives them: `"1"`, `"20+"`) is
/// before `1.before`.
fn minor_before(major: &str, minor: &str, before: u32) -> bool {
    let number = |s: &str| {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    };
    matches!((number(major), number(minor)), (Some(1), Some(m)) if m < before)
}

fn is_active(ns: Option<&Namespace>) -> bool {
    ns.and_then(|n| n.status.as_ref())
        .and_then(|s| s.phase.as_deref())
        == Some("Active")
}

/// What keeps a terminating namespace alive, in words: its finalizers and
/// the namespace controller's conditions that are True (e.g.
/// `NamespaceFinalizersRemaining: Some content in the namespace has
/// finalizers remaining: example.com/cleanup in 1 resource instances`).
pub fn stuck_reason(ns: &Namespace) -> String {
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    let mut parts = Vec::new();
    if !finalizers.is_empty() {
        parts.push(format!("finalizers [{}]", finalizers.join(", ")));
    }
    for c in ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
    {
        if c.status == "True" {
            parts.push(format!(
                "{}: {}",
                c.type_,
                c.message.as_deref().unwrap_or_default()
            ));
        }
    }
    if parts.is_empty() {
        "stuck terminating with no finalizer or condition reported".to_owned()
    } else {
        format!("stuck on {}", parts.join("; "))
    }
}

impl NamespaceProvisioner for KubeNamespaces {
    async fn create(&self, namespace: &str) -> Result<(), NamespaceError> {
        self.create_and_wait(namespace).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_reason_names_finalizers_and_conditions() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Terminating", "conditions": [
                {"type": "NamespaceDeletionDiscoveryFailure", "status": "False"},
                {"type": "NamespaceFinalizersRemaining", "status": "True",
                 "message": "Some content in the namespace has finalizers remaining: example.com/cleanup in 1 resource instances"}
            ]}
        }))
        .unwrap();
        let reason = stuck_reason(&ns);
        assert!(reason.contains("finalizers [kubernetes]"), "{reason}");
        assert!(reason.contains("example.com/cleanup"), "{reason}");
        assert!(!reason.contains("DiscoveryFailure"), "{reason}");
    }

    #[test]
    fn a_service_account_is_usable_with_its_token_where_the_server_needs_one() {
        let bare: ServiceAccount =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}})).unwrap();
        let with_token: ServiceAccount = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "default"},
            "secrets": [{"name": "default-token-x2v9q"}]
        }))
        .unwrap();
        assert!(!account_usable(None, false));
        assert!(account_usable(Some(&bare), false));
        assert!(!account_usable(Some(&bare), true), "1.20: no token yet");
        assert!(account_usable(Some(&with_token), true));
    }

    #[test]
    fn server_versions_before_1_24() {
        assert!(minor_before("1", "20", 24));
        assert!(minor_before("1", "23+", 24), "GKE and EKS append a +");
        assert!(!minor_before("1", "24", 24));
        assert!(!minor_before("1", "33", 24));
        assert!(!minor_before("2", "0", 24));
        assert!(
            !minor_before("", "", 24),
            "an unreadable version is a current one"
        );
    }
}
