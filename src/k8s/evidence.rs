//! Fetching the evidence a verdict is shown with: the I/O half of
//! [`crate::readiness::evidence`].
//!
//! Events are listed by field selector `involvedObject.uid=<uid>` (exact, and
//! unlike a name selector it never returns another kind's events of the same
//! name); logs are fetched for exactly the containers
//! [`crate::readiness::evidence::log_requests`] names, current *and* previous, init
//! containers included, each as a short tail. A log that cannot be fetched
//! is kept as the API server's answer rather than dropped: "the previous
//! container's log is gone" is itself evidence. But it is said as such: a
//! previous log never asked for (the container has not restarted) and one
//! the kubelet no longer keeps (it answers with its own error text, even
//! with a 200) are [`LogText::Missing`], never shown as log lines.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{ListParams, LogParams};

use crate::readiness::classify::{ContainerRef, Verdict};
use crate::readiness::evidence::{self, Evidence, LogRequest, missing_log};

/// Lines of each log kept.
pub const LOG_TAIL_LINES: i64 = 20;
/// Warning events kept per verdict.
pub const MAX_EVENTS: usize = 8;

/// Why a container has no previous log.
pub const NOT_RESTARTED: &str = "the container has not restarted";

/// One fetched log tail.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogTail {
    /// The container's name.
    pub container: String,
    /// Whether it is an init container.
    pub init: bool,
    /// The previous run's log (`--previous`).
    pub previous: bool,
    /// The text, or why there is none.
    pub text: LogText,
}

/// What a log call gave.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogText {
    /// The tail of the log.
    Text(String),
    /// There is no such log, and why: `the container has not restarted`,
    /// `not kept by the kubelet`.
    Missing(String),
    /// The API server refused or failed: its error.
    Failed(String),
}

impl LogText {
    /// What an answer of the API server means: the kubelet's "unable to
    /// retrieve container logs" body (sent with a 200) and its "previous
    /// terminated container not found" refusal are missing logs, not text
    /// or failures.
    pub fn from_answer(answer: Result<String, String>) -> Self {
        match answer {
            Ok(text) => match missing_log(&text) {
                Some(why) => LogText::Missing(why.to_owned()),
                None => LogText::Text(text),
            },
            Err(error) => match missing_log(&error) {
                Some(why) => LogText::Missing(why.to_owned()),
                None => LogText::Failed(error),
            },
        }
    }

    /// The text, when there is one.
    pub fn text(&self) -> Option<&str> {
        match self {
            LogText::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// Evidence about one pod: the pure selection plus the fetched logs.
#[derive(Clone, Debug, PartialEq)]
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
                text: LogText::Failed(format!("cannot list events: {e}")),
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
        let answer = api
            .logs(&name, &log_params(request))
            .await
            .map_err(|e| e.to_string());
        logs.push(LogTail {
            container: request.container.name.clone(),
            init: request.container.init,
            previous: request.previous,
            text: LogText::from_answer(answer),
        });
        // No previous run: say so, rather than leave the reader to wonder
        // whether it was forgotten.
        let has_previous = evidence
            .logs
            .iter()
            .any(|r| r.previous && r.container == request.container);
        if !request.previous && !has_previous {
            logs.push(LogTail {
                container: request.container.name.clone(),
                init: request.container.init,
                previous: true,
                text: LogText::Missing(NOT_RESTARTED.to_owned()),
            });
        }
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

    #[test]
    fn a_log_the_kubelet_no_longer_keeps_is_missing_not_text() {
        let fixture = |p: &str| {
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/k8s")
                    .join(p),
            )
            .unwrap()
        };
        // The body kubectl printed for `--previous` once the older container was gone.
        let body = fixture("pod-crashloop/logs.previous.while-terminated.txt");
        assert_eq!(
            LogText::from_answer(Ok(body)),
            LogText::Missing("not kept by the kubelet".into())
        );
        let refused = "ApiError: previous terminated container \"app\" in pod \"web-1\" not found: BadRequest (ErrorResponse { status: \"Failure\", message: \"previous terminated container \\\"app\\\" in pod \\\"web-1\\\" not found\", reason: \"BadRequest\", code: 400 })";
        assert_eq!(
            LogText::from_answer(Err(refused.into())),
            LogText::Missing("not kept by the kubelet".into())
        );
        let text = fixture("pod-crashloop/logs.previous.txt");
        assert_eq!(LogText::from_answer(Ok(text.clone())), LogText::Text(text));
        assert!(matches!(
            LogText::from_answer(Err("connection refused".into())),
            LogText::Failed(_)
        ));
    }
}
