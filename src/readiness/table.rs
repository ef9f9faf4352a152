//! The "what is unready and why" table.
//!
//! A deadline is never reported as a bare "timed out": the waiter prints
//! one row per resource that is not Ready, built here from the resource's
//! [`Status`] and the verdicts of its pods. When there are verdicts the most
//! likely one (lowest rank) names the reason, because a Deployment's own
//! status ("1 of 2 replicas available") says *that* it is stuck, while a
//! verdict on its pod ("OOMKilled, limit 32Mi") says *why*.

use std::fmt;

use super::classify::Verdict;
use super::rules::{State, Status};

/// Which resource a row is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRef {
    /// The kind, e.g. `Deployment`.
    pub kind: String,
    /// The namespace, for namespaced resources.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// One row of the unready table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadyRow {
    /// `Kind/namespace/name`.
    pub resource: String,
    /// The state shown: Failed whenever a verdict says the resource is doomed.
    pub state: State,
    /// The reason: the top verdict's name, else the status reason.
    pub reason: String,
    /// One line of evidence: the top verdict's facts (and how many more
    /// verdicts there are), else the status message and what it waits on.
    pub evidence: String,
    /// Without a verdict: the step its pods are in (see
    /// [`super::waiting`]), e.g. `init container wait-for-db still running
    /// after 1m`.
    pub waiting: Option<String>,
}

impl UnreadyRow {
    /// The row with what its pods wait on added to its evidence.
    pub fn waiting_on(mut self, what: impl Into<String>) -> Self {
        let what = what.into();
        self.evidence = if self.evidence.is_empty() {
            format!("waiting on {what}")
        } else {
            format!("{}; waiting on {what}", self.evidence)
        };
        self.waiting = Some(what);
        self
    }
}

/// Builds the row for `resource`. `verdicts` are those of the resource's
/// pods (or of the pod itself), in any order.
pub fn unready_row(resource: &ResourceRef, status: &Status, verdicts: &[Verdict]) -> UnreadyRow {
    let top = verdicts.iter().min_by_key(|v| v.rank());
    let (state, reason, evidence) = match top {
        Some(v) => {
            let more = match verdicts.len() - 1 {
                0 => String::new(),
                n => format!(" (+{n} more)"),
            };
            // A verdict means waiting will not help, whatever the
            // controller's own status still says.
            let state = if matches!(status.state, State::Terminating) {
                State::Terminating
            } else {
                State::Failed
            };
            (
                state,
                v.kind.name().to_owned(),
                format!("{}{more}; hint: {}", v.message, v.hint),
            )
        }
        None => (status.state, status.reason.clone(), status.message.clone()),
    };
    UnreadyRow {
        resource: resource.to_string(),
        state,
        reason,
        evidence,
        waiting: None,
    }
}

/// Renders rows as an aligned plain-text table (no colour, no truncation:
/// CI logs are read long after the terminal is gone). Empty input renders
/// as an empty string so callers can skip the section.
pub fn render(rows: &[UnreadyRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let header = ["RESOURCE", "STATE", "REASON", "EVIDENCE"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.resource.clone(),
                r.state.to_string(),
                r.reason.clone(),
                r.evidence.clone(),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let mut out = String::new();
    let mut line = |c: [&str; 4]| {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(c[i]);
            out.push_str(&" ".repeat(w - c[i].chars().count() + 2));
        }
        out.push_str(c[3]);
        out.push('\n');
    };
    line(header);
    for c in &cells {
        line([&c[0], &c[1], &c[2], &c[3]]);
    }
    out
}
