//! Fetching the evidence a verdict is shown with: the I/O half of
//! [`crate::readiness::evidence`].
//!
//! Events are listed by field selector `involvedObject.uid=<uid>` (exact, and
//! unlike a name selector it never returns another kind's events of the same
//! name); logs are fetched for exactly the containers
//! [`readiness::evidence::log_requests`] names, current *and* previous, init
//! containers included, each as a short tail. A log that cannot be fetched
//! is kept as the API server's answer rather than dropped: "the previous
//! container's log is gone" is itself evidence.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{ListParams, LogParams};

use crate::readiness::classify::{ContainerRef, Verdict};
use crate::readiness::evidence::{self, Evidence, LogRequest};

/// Lines of each log kept.
pub const LOG_TAIL_LINES: i64 = 20;
/// Warning events kept per verdict.
pub const MAX_EVENTS: usize = 8;

/// One fetched log tail.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogTail {
    /// The container's name.
    pub container: String,
    /// Whether it is an init container.
    pub init: bool,
    /// The previous run's log (`--previous`).
    pub previous: bool,
    /// The text, or why it could not be fetched.
    pub text: Result<String, String>,
}

/// Evidence about one pod: the pure selection plus the fetched logs.
#[derive(Clone, Debug)]
pub struct PodEvidence {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// Events, terminations, and which logs were asked for.
    pub evidence: Evidence,
    /// The logs.
    pub logs: Vec<LogTail>,
}

/// Lists the events about the object with `uid` in `namespace`.
pub async fn events_for(
    client: &kube::Client,
    namespace: &str,
    uid: &str,
) -> Result<Vec<Event>, kube::Error> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
    Ok(api.list(&lp).await?.items)
}

/// The parameters of one log call: a tail of the container's current or
/// previous log.
pub fn log_params(request: &LogRequest) -> LogParams {
    LogParams {
        container: Some(request.container.name.clone()),
        previous: request.previous,
        tail_lines: Some(LOG_TAIL_LINES),
        ..LogParams::default()
    }
}

/// Fetches the evidence for `pod`: for one verdict (narrowed to its
/// container) or, with `verdict = None`, for the whole pod. Event listing
/// failures degrade to "no events" (with the error kept in place of a log)
/// rather than losing the verdict: evidence is best effort, the verdict is not.
pub async fn fetch_pod_evidence(
    client: &kube::Client,
    pod: &Pod,
    verdict: Option<&Verdict>,
) -> PodEvidence {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut logs = Vec::new();
    let events = match events_for(client, &namespace, &uid).await {
        Ok(events) => events,
        Err(e) => {
            logs.push(LogTail {
                container: String::new(),
                init: false,
                previous: false,
                text: Err(format!("cannot list events: {e}")),
            });
            Vec::new()
        }
    };
    let evidence = match verdict {
        Some(v) => evidence::verdict_evidence(pod, &events, v, MAX_EVENTS),
        None => evidence::pod_evidence(pod, &events, MAX_EVENTS),
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    for request in &evidence.logs {
        let text = api
            .logs(&name, &log_params(request))
            .await
            .map_err(|e| e.to_string());
        logs.push(LogTail {
            container: request.container.name.clone(),
            init: request.container.init,
            previous: request.previous,
            text,
        });
    }
    PodEvidence {
        pod: format!("{namespace}/{name}"),
        evidence,
        logs,
    }
}

impl LogTail {
    /// The container as printed (`init container migrate`).
    pub fn container_ref(&self) -> ContainerRef {
        ContainerRef {
            name: self.container.clone(),
            init: self.init,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_logs_ask_for_previous() {
        let request = LogRequest {
            container: ContainerRef {
                name: "migrate".into(),
                init: true,
            },
            previous: true,
        };
        let lp = log_params(&request);
        assert!(lp.previous);
        assert_eq!(lp.container.as_deref(), Some("migrate"));
        assert_eq!(lp.tail_lines, Some(LOG_TAIL_LINES));
    }
}
