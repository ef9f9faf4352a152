//! How a failure is told: what went wrong, once, then the fix, once.
//!
//! Errors are typed below `app` and travel up as cause chains. This module
//! turns a chain into the one line a person reads (`a: b: c`) and finds the
//! fix for it, so that the live output, the final report and `error:` all
//! say the same thing the same way. Two things make a naive chain read
//! badly, and both are handled here rather than at every call site: a
//! [`StageFailure`] already displays its whole inner chain (so the chain is
//! followed *into* it rather than printed twice), and kube's
//! `Error::Api` displays the server's message inside a `Debug` dump of the
//! Status and then again as its source (so a refusal is shown by the
//! server's message alone). The fix comes from the outermost error in the
//! chain whose type knows one; errors that carry their own evidence (a
//! preflight report, a deploy diagnosis) print it themselves.

use std::error::Error;

use crate::run::StageFailure;

type Cause<'a> = &'a (dyn Error + 'static);

/// A typed error told as everywhere else: [`text`] of its [`causes_of`].
pub fn chain_text(error: Cause<'_>) -> String {
    text(&causes_of(error))
}

/// Every cause of `error`, outermost first, looking through
/// [`StageFailure`]s (which stand for their inner error).
pub fn causes(error: &anyhow::Error) -> Vec<Cause<'_>> {
    let mut out = Vec::new();
    for cause in error.chain() {
        push(cause, &mut out);
    }
    out
}

/// [`causes`] for a typed error.
pub fn causes_of<'a>(error: Cause<'a>) -> Vec<Cause<'a>> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        push(cause, &mut out);
        next = cause.source();
    }
    out
}

fn push<'a>(cause: Cause<'a>, out: &mut Vec<Cause<'a>>) {
    match cause.downcast_ref::<StageFailure>() {
        Some(failure) => {
            for inner in failure.error.chain() {
                push(inner, out);
            }
        }
        None => out.push(cause),
    }
}

/// The chain as one line: `what: why: the root cause`. A refusal of the
/// API server reads as its message (and HTTP status), never as kube's
/// `Debug` dump; a cause that only repeats the one before it is dropped.
pub fn text(causes: &[Cause<'_>]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut skip_status = false;
    for cause in causes {
        // kube's Api error has the boxed Status as its source.
        if skip_status
            && (cause.is::<kube::core::Status>() || cause.is::<Box<kube::core::Status>>())
        {
            skip_status = false;
            continue;
        }
        skip_status = false;
        let part = match cause.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) => {
                skip_status = true;
                status_text(status)
            }
            _ => cause.to_string(),
        };
        // Many errors (kube's, hyper's) print their source in their own
        // message and return it as their source too: say it once.
        let repeats = parts
            .last()
            .is_some_and(|last| last.contains(part.as_str()));
        if !part.is_empty() && !repeats {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// The server's own words for a refused request: its message, then the
/// HTTP status and reason (`... (HTTP 422 Invalid)`).
pub fn status_text(status: &kube::core::Status) -> String {
    let mut text = status.message.trim().to_owned();
    let code = match (status.code, status.reason.as_str()) {
        (0, "") => String::new(),
        (0, reason) => reason.to_owned(),
        (code, "") => format!("HTTP {code}"),
        (code, reason) => format!("HTTP {code} {reason}"),
    };
    if text.is_empty() {
        return if code.is_empty() {
            "the API server refused the request".into()
        } else {
            format!("the API server refused the request ({code})")
        };
    }
    if !code.is_empty() {
        text.push_str(&format!(" ({code})"));
    }
    text
}

/// How to fix it: from the outermost error in the chain that knows.
pub fn fix(causes: &[Cause<'_>]) -> Option<String> {
    causes.iter().find_map(|cause| fix_of(*cause))
}

fn fix_of(cause: Cause<'_>) -> Option<String> {
    use crate::config::ConfigError;
    if let Some(e) = cause.downcast_ref::<ConfigError>() {
        return e.help();
    }
    if let Some(e) = cause.downcast_ref::<crate::plan::UnknownLane>() {
        return Some(e.help());
    }
    if let Some(e) = cause.downcast_ref::<crate::app::LaneRequired>() {
        return Some(format!("lanes defined: {}", e.lanes.join(", ")));
    }
    if let Some(e) = cause.downcast_ref::<crate::suites::stage::UnknownSuite>() {
        return Some(format!(
            "suites of lane {}: {}",
            e.lane,
            e.suites.join(", ")
        ));
    }
    if let Some(e) = cause.downcast_ref::<crate::k8s::access::NoCluster>() {
        return Some(e.help());
    }
    if let Some(e) = cause.downcast_ref::<crate::k8s::access::NotUp>() {
        return Some(e.help());
    }
    if let Some(e) = cause.downcast_ref::<crate::cluster::state::StateError>() {
        return Some(e.help());
    }
    if let Some(e) = cause.downcast_ref::<crate::cluster::ClusterError>() {
        return Some(e.help());
    }
    if let Some(e) = cause.downcast_ref::<crate::images::ImageError>() {
        return e.help();
    }
    if let Some(e) = cause.downcast_ref::<crate::images::host::HostBuildError>() {
        return Some(e.help());
    }
    if let Some(e) = cause.downcast_ref::<crate::deploy::ApplyError>() {
        return e.help();
    }
    if let Some(e) = cause.downcast_ref::<crate::app::Unreachable>() {
        return Some(e.help());
    }
    if let Some(e) = cause.downcast_ref::<crate::engine::EngineError>() {
        return Some(e.help(e.engine_kind()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(message: &str, reason: &str, code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            status: Some(kube::core::response::StatusSummary::Failure),
            code,
            message: message.into(),
            reason: reason.into(),
            ..Default::default()
        }))
    }

    #[derive(Debug, thiserror::Error)]
    #[error("component `crds`: cannot apply its manifests")]
    struct Outer(#[source] kube::Error);

    #[test]
    fn a_refusal_reads_as_the_servers_message_once() {
        let message = "failed to create typed patch object: .spec.versions[0].selectableFields: field not declared in schema";
        let error = anyhow::Error::new(Outer(refused(message, "", 500)));
        let line = text(&causes(&error));
        assert_eq!(
            line,
            format!("component `crds`: cannot apply its manifests: {message} (HTTP 500)")
        );
        assert_eq!(line.matches("selectableFields").count(), 1, "{line}");
        assert!(!line.contains("Status {"), "{line}");
    }

    #[test]
    fn a_stage_failure_is_followed_into_not_printed_twice() {
        let inner = anyhow::Error::new(crate::cluster::ClusterError::AlreadyExists {
            name: "audit-e2e".into(),
        })
        .context("cluster stage");
        let error = anyhow::Error::new(StageFailure::new(crate::exit::Exit::Cluster, inner))
            .context("harness up");
        let causes = causes(&error);
        assert_eq!(
            text(&causes),
            "harness up: cluster stage: a kind cluster named `audit-e2e` already exists"
        );
        // The typed error inside the stage failure still gives its fix.
        assert_eq!(
            fix(&causes).as_deref(),
            Some(
                "reuse it (harness up --reuse) or delete it first: kind delete cluster --name audit-e2e"
            )
        );
    }

    #[test]
    fn a_source_its_parent_already_printed_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error: Connection refused (os error 111)")]
        struct Root;
        #[derive(Debug, thiserror::Error)]
        #[error("ServiceError: client error (Connect): {0}")]
        struct Service(#[source] Root);
        let error = anyhow::Error::new(Service(Root)).context("cannot discover v1 on the cluster");
        assert_eq!(
            text(&causes(&error)),
            "cannot discover v1 on the cluster: ServiceError: client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn status_text_forms() {
        let s = |message: &str, reason: &str, code| kube::core::Status {
            message: message.into(),
            reason: reason.into(),
            code,
            ..Default::default()
        };
        assert_eq!(
            status_text(&s("x is invalid", "Invalid", 422)),
            "x is invalid (HTTP 422 Invalid)"
        );
        assert_eq!(
            status_text(&s("", "", 0)),
            "the API server refused the request"
        );
        assert_eq!(
            status_text(&s("", "NotFound", 404)),
            "the API server refused the request (HTTP 404 NotFound)"
        );
    }

    #[test]
    fn an_error_without_a_known_type_has_no_fix() {
        let error = anyhow::anyhow!("disk on fire");
        assert_eq!(fix(&causes(&error)), None);
        assert_eq!(text(&causes(&error)), "disk on fire");
    }
}
