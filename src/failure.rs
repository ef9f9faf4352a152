//! What a failure means, by its type: the exit code it ends in and how to
//! fix it.
//!
//! Every error that can end a command implements [`Failure`]: its exit code
//! and its fix, each an exhaustive match over the type's own variants, so a
//! new variant cannot compile without both, and a new error type cannot
//! reach the top without implementing them (a stage returns a
//! [`StageFailure`], made only from a [`Failure`]). The run, the report and
//! the top of the program read a failure through the trait: nothing
//! downcasts, and nothing matches on message text.
//!
//! This module also words a failure the one way every output tells it: its
//! cause chain once (`what: why: the root cause`), then its fix. kube's
//! `Error::Api` displays the server's message inside a `Debug` dump of the
//! Status and then again as its source, so a refusal is told by the
//! server's message alone; a cause that only repeats the one before it is
//! dropped.

use std::error::Error;

use crate::exit::Exit;

/// An error that knows what it means.
pub trait Failure: Error + Send + Sync + 'static {
    /// The documented exit code it ends in.
    fn exit(&self) -> Exit;

    /// How the user can fix it, when there is something to say.
    fn fix(&self) -> Option<String>;

    /// What it shows beyond its one line and its fix: the unready table and
    /// evidence of a deploy that failed. Most failures have none.
    fn evidence(&self) -> Option<String> {
        None
    }

    /// A failure that tells itself whole, instead of one line and a fix:
    /// the lane file's diagnostics, each with the lines it points at.
    fn told_whole(&self) -> Option<Whole> {
        None
    }
}

/// A failure's own full text, and its details for `--output json`.
#[derive(Clone, Debug)]
pub struct Whole {
    pub text: String,
    pub json: Option<serde_json::Value>,
}

/// A failed stage, or a failed command: any [`Failure`], boxed.
///
/// Its message, source chain, exit code and fix are those of the failure
/// it holds. `told` says whether the event stream already told it (a phase
/// that failed reports its error when it finishes), so that a run does not
/// tell it twice.
#[derive(Debug)]
pub struct StageFailure {
    failure: Box<dyn Failure>,
    told: bool,
}

impl<F: Failure> From<F> for StageFailure {
    fn from(failure: F) -> Self {
        Self {
            failure: Box::new(failure),
            told: false,
        }
    }
}

impl StageFailure {
    /// The exit code the failure means.
    pub fn exit(&self) -> Exit {
        self.failure.exit()
    }

    /// How to fix it.
    pub fn fix(&self) -> Option<String> {
        self.failure.fix()
    }

    /// What it shows beyond its line (see [`Failure::evidence`]).
    pub fn evidence(&self) -> Option<String> {
        self.failure.evidence()
    }

    /// See [`Failure::told_whole`].
    pub fn told_whole(&self) -> Option<Whole> {
        self.failure.told_whole()
    }

    /// The failure as an error, for its message and causes.
    pub fn error(&self) -> &(dyn Error + 'static) {
        &*self.failure
    }

    /// The whole cause chain as one line, as every output tells it.
    pub fn text(&self) -> String {
        chain_text(self.error())
    }

    /// Whether the event stream told it already.
    pub fn told(&self) -> bool {
        self.told
    }

    /// Marks it told (the phase that failed reported it).
    pub fn mark_told(mut self) -> Self {
        self.told = true;
        self
    }
}

impl std::fmt::Display for StageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.failure.fmt(f)
    }
}

/// A stage failure stands for the failure it holds: its source is that
/// failure's source, so a chain reads through it.
impl Error for StageFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.failure.source()
    }
}

type Cause<'a> = &'a (dyn Error + 'static);

/// A typed error told as everywhere else: [`text`] of its [`causes_of`].
pub fn chain_text(error: Cause<'_>) -> String {
    text(&causes_of(error))
}

/// Every cause of `error`, outermost first.
pub fn causes_of<'a>(error: Cause<'a>) -> Vec<Cause<'a>> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        out.push(cause);
        next = cause.source();
    }
    out
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

    impl Failure for Outer {
        fn exit(&self) -> Exit {
            Exit::Deploy
        }
        fn fix(&self) -> Option<String> {
            Some("use a newer node image".into())
        }
    }

    #[test]
    fn a_refusal_reads_as_the_servers_message_once() {
        let message = "failed to create typed patch object: .spec.versions[0].selectableFields: field not declared in schema";
        let error = Outer(refused(message, "", 500));
        let line = chain_text(&error);
        assert_eq!(
            line,
            format!("component `crds`: cannot apply its manifests: {message} (HTTP 500)")
        );
        assert_eq!(line.matches("selectableFields").count(), 1, "{line}");
        assert!(!line.contains("Status {"), "{line}");
    }

    #[test]
    fn a_stage_failure_stands_for_the_failure_it_holds() {
        let failure = StageFailure::from(Outer(refused("no", "Invalid", 422)));
        assert_eq!(failure.exit(), Exit::Deploy);
        assert_eq!(failure.fix().as_deref(), Some("use a newer node image"));
        assert_eq!(
            failure.text(),
            "component `crds`: cannot apply its manifests: no (HTTP 422 Invalid)"
        );
        assert!(!failure.told());
        assert!(failure.mark_told().told());
    }

    #[test]
    fn a_source_its_parent_already_printed_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error: Connection refused (os error 111)")]
        struct Root;
        #[derive(Debug, thiserror::Error)]
        #[error("ServiceError: client error (Connect): {0}")]
        struct Service(#[source] Root);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot discover v1 on the cluster")]
        struct Discover(#[source] Service);
        assert_eq!(
            chain_text(&Discover(Service(Root))),
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
}
