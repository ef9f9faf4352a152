//! A diagnosis: the unready table, then each verdict with its evidence.
//! Built from a judgement plus fetched evidence; rendered as plain text
//! (CI logs are read long after the terminal is gone).

use std::fmt::Write as _;

use crate::k8s::evidence::PodEvidence;
use crate::readiness::classify::Verdict;
use crate::readiness::evidence::Which;
use crate::readiness::table::{self, UnreadyRow};

/// One verdict on one pod, with what shows it.
#[derive(Clone, Debug)]
pub struct Finding {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The verdict; `None` for an unready pod without one (evidence only).
    pub verdict: Option<Verdict>,
    /// Events, terminations and logs.
    pub evidence: PodEvidence,
}

/// Why a component is not Ready.
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    /// The component.
    pub component: String,
    /// One row per object that is not Ready.
    pub rows: Vec<UnreadyRow>,
    /// Verdicts (most likely first) and evidence.
    pub findings: Vec<Finding>,
    /// A watch error seen while waiting, if any.
    pub watch_error: Option<String>,
}

impl Diagnosis {
    /// The table and the findings as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "component {}: not Ready", self.component);
        out.push_str(&indent(&table::render(&self.rows), "  "));
        if let Some(e) = &self.watch_error {
            let _ = writeln!(out, "  (watching failed at some point: {e})");
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
                None => {
                    let _ = writeln!(out, "  pod {}: not Ready", f.pod);
                }
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
                    if let Err(e) = &log.text {
                        let _ = writeln!(out, "    {e}");
                    }
                    continue;
                }
                let _ = writeln!(out, "    log of {} ({which}):", log.container_ref());
                match &log.text {
                    Ok(text) if text.trim().is_empty() => {
                        let _ = writeln!(out, "      (empty)");
                    }
                    Ok(text) => {
                        for line in text.lines() {
                            let _ = writeln!(out, "      | {line}");
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(out, "      (not available: {e})");
                    }
                }
            }
        }
        out
    }
}

impl Diagnosis {
    /// The same as [`Diagnosis::render`], as JSON for tools
    /// (`harness diagnose --output json`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "resource": r.resource, "state": r.state.to_string(),
                    "reason": r.reason, "evidence": r.evidence,
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
                        let (text, error) = match &l.text {
                            Ok(t) => (Some(t.as_str()), None),
                            Err(e) => (None, Some(e.as_str())),
                        };
                        json!({
                            "container": l.container, "init": l.init, "previous": l.previous,
                            "text": text, "error": error,
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
                    "events": events, "terminations": terminations, "logs": logs,
                })
            })
            .collect();
        json!({
            "component": self.component, "ready": false, "rows": rows,
            "findings": findings, "watch_error": self.watch_error,
        })
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}
