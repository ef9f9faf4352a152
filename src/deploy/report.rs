//! A diagnosis: the unready table, then each verdict with its evidence.
//! Built from a judgement plus fetched evidence; rendered as plain text
//! (CI logs are read long after the terminal is gone) and as JSON (the same
//! facts, for `--output json` and `diagnose`).

use std::fmt::Write as _;

use serde::Serialize;

use crate::k8s::evidence::{LogText, PodEvidence};
pub use crate::readiness::Standing;
use crate::readiness::classify::Verdict;
use crate::readiness::evidence::Which;
use crate::readiness::table::{self, UnreadyRow};

/// One verdict on one pod, with what shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The verdict; `None` for an unready pod without one (evidence only).
    pub verdict: Option<Verdict>,
    /// Without a verdict: the step the pod is in, with its container's last
    /// log line, e.g. `init container wait-for-db still running after 1m
    /// (log: waiting for db:5432)`.
    pub waiting: Option<String>,
    /// Events, terminations and logs.
    pub evidence: PodEvidence,
}

/// Why a component is not Ready.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diagnosis {
    /// The component.
    pub component: String,
    /// Where it stands (the headline of the text).
    pub standing: Standing,
    /// One row per object that is not Ready.
    pub rows: Vec<UnreadyRow>,
    /// Verdicts (most likely first) and evidence.
    pub findings: Vec<Finding>,
    /// Times its readiness did not hold, oldest first (`Ready for 2.3s, then
    /// container app restarted ...`).
    pub flaps: Vec<String>,
    /// How long readiness had held when the wait ended, if it was holding.
    pub holding: Option<String>,
    /// Watches that failed while waiting, each with its last error.
    pub watch_failures: Vec<String>,
    /// Notes on its objects that do not block it, each `Kind/namespace/name: note`.
    pub notes: Vec<String>,
}

impl Diagnosis {
    /// One line: what the first unready object is and why, and how many more.
    pub fn summary(&self) -> String {
        let first = match self.rows.first() {
            Some(r) => {
                let mut s = format!("{} is {} ({})", r.resource, r.state, r.reason);
                if let Some(w) = &r.waiting {
                    let _ = write!(s, ": waiting on {w}");
                }
                s
            }
            None => match (&self.holding, self.flaps.last()) {
                (Some(held), _) => format!("Ready, but only for {held} of its settle window"),
                (None, Some(flap)) => flap.clone(),
                (None, None) => "no unready object recorded".to_owned(),
            },
        };
        match self.rows.len() {
            0 | 1 => first,
            n => format!("{first}, and {} more unready", n - 1),
        }
    }

    /// The table and the findings as text, under a headline.
    pub fn render(&self) -> String {
        let headline = match self.standing {
            // Also `diagnose` on a live cluster, where nothing else is known.
            Standing::InProgress => "not Ready",
            other => other.describe(),
        };
        format!(
            "component {}: {headline}\n{}",
            self.component,
            self.render_details()
        )
    }

    /// As the event stream carries it: its JSON and its details as text.
    pub fn reported(&self) -> crate::report::ReportedDiagnosis {
        crate::report::ReportedDiagnosis {
            json: self.to_json(),
            text: self.render_details(),
        }
    }

    /// [`Diagnosis::render`] without its headline, for a caller that has
    /// just said what the component is.
    pub fn render_details(&self) -> String {
        let mut out = String::new();
        out.push_str(&indent(&table::render(&self.rows), "  "));
        if !self.flaps.is_empty() {
            let _ = writeln!(out, "  readiness did not hold:");
            for f in &self.flaps {
                let _ = writeln!(out, "    {f}");
            }
        }
        if let Some(held) = &self.holding {
            let _ = writeln!(out, "  readiness had held for {held} of its settle window");
        }
        for e in &self.watch_failures {
            let _ = writeln!(out, "  {e}");
        }
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        for f in &self.findings {
            out.push('\n');
            match &f.verdict {
                Some(v) => {
                    let what = v
                        .container
                        .as_ref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default();
                    let _ = writeln!(out, "  pod {}{what}: {}", f.pod, v.kind.name());
                    let _ = writeln!(out, "    {}", v.message);
                    let _ = writeln!(out, "    hint: {}", v.hint);
                }
                None => match &f.waiting {
                    Some(w) => {
                        let _ = writeln!(out, "  pod {}: not Ready: waiting on {w}", f.pod);
                    }
                    None => {
                        let _ = writeln!(out, "  pod {}: not Ready", f.pod);
                    }
                },
            }
            let ev = &f.evidence.evidence;
            if !ev.events.is_empty() {
                let _ = writeln!(out, "    warning events:");
                for e in &ev.events {
                    let when = e.last_seen.map(|t| t.to_string()).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "      {when} {} (x{}) {}",
                        e.reason, e.count, e.message
                    );
                }
            }
            for t in &ev.terminations {
                let which = match t.which {
                    Which::Current => "terminated",
                    Which::Last => "last terminated",
                };
                let _ = writeln!(
                    out,
                    "    {} {which}: exit {} {}{}",
                    t.container,
                    t.exit_code,
                    t.reason.as_deref().unwrap_or_default(),
                    t.message
                        .as_deref()
                        .map(|m| format!(" ({})", m.trim()))
                        .unwrap_or_default()
                );
            }
            for log in &f.evidence.logs {
                let which = if log.previous { "previous" } else { "current" };
                if log.container.is_empty() {
                    if let LogText::Failed(e) = &log.text {
                        let _ = writeln!(out, "    {e}");
                    }
                    continue;
                }
                let container = log.container_ref();
                match &log.text {
                    LogText::Missing(why) => {
                        let _ = writeln!(out, "    log of {container} ({which}): none ({why})");
                    }
                    LogText::Text(text) if text.trim().is_empty() => {
                        let _ = writeln!(out, "    log of {container} ({which}): (empty)");
                    }
                    LogText::Text(text) => {
                        let _ = writeln!(out, "    log of {container} ({which}):");
                        for line in text.lines() {
                            let _ = writeln!(out, "      | {line}");
                        }
                    }
                    LogText::Failed(e) => {
                        let _ =
                            writeln!(out, "    log of {container} ({which}): not available: {e}");
                    }
                }
            }
        }
        out
    }
}

impl Diagnosis {
    /// The same as [`Diagnosis::render`], as JSON for tools
    /// (`harness diagnose --output json`, the `component_verdict` event).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "resource": r.resource, "state": r.state.to_string(),
                    "reason": r.reason, "evidence": r.evidence, "waiting": r.waiting,
                })
            })
            .collect();
        let findings: Vec<_> = self
            .findings
            .iter()
            .map(|f| {
                let ev = &f.evidence.evidence;
                let events: Vec<_> = ev
                    .events
                    .iter()
                    .map(|e| {
                        json!({
                            "type": e.type_, "reason": e.reason, "message": e.message,
                            "count": e.count, "last_seen": e.last_seen.map(|t| t.to_string()),
                        })
                    })
                    .collect();
                let terminations: Vec<_> = ev
                    .terminations
                    .iter()
                    .map(|t| {
                        json!({
                            "container": t.container.name, "init": t.container.init,
                            "which": match t.which { Which::Current => "current", Which::Last => "last" },
                            "exit_code": t.exit_code, "reason": t.reason, "message": t.message,
                        })
                    })
                    .collect();
                let logs: Vec<_> = f
                    .evidence
                    .logs
                    .iter()
                    .map(|l| {
                        let (text, missing, error) = match &l.text {
                            LogText::Text(t) => (Some(t.as_str()), None, None),
                            LogText::Missing(why) => (None, Some(why.as_str()), None),
                            LogText::Failed(e) => (None, None, Some(e.as_str())),
                        };
                        json!({
                            "container": l.container, "init": l.init, "previous": l.previous,
                            "text": text, "missing": missing, "error": error,
                        })
                    })
                    .collect();
                json!({
                    "pod": f.pod,
                    "verdict": f.verdict.as_ref().map(|v| json!({
                        "name": v.kind.name(),
                        "container": v.container.as_ref().map(|c| c.name.clone()),
                        "message": v.message, "hint": v.hint,
                    })),
                    "waiting": f.waiting,
                    "events": events, "terminations": terminations, "logs": logs,
                })
            })
            .collect();
        let mut out = json!({
            "component": self.component, "ready": false, "standing": self.standing,
            "summary": self.summary(), "rows": rows, "findings": findings,
            "flaps": self.flaps, "holding": self.holding,
            "watch_failures": self.watch_failures,
        });
        // Only where there are some, as `diagnose` has them for a Ready one.
        if !self.notes.is_empty() {
            out["notes"] = json!(self.notes);
        }
        out
    }
}

/// The JSON form ([`Diagnosis::to_json`]) is its serialization, so a
/// diagnosis in an event reads the same as one from `diagnose`.
impl Serialize for Diagnosis {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}
