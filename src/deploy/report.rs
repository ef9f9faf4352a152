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

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}
