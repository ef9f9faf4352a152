//! `harness report`: a run's report again, from its must-gather bundle.
//!
//! A bundle carries the run's event stream as it was recorded
//! (`harness/events.jsonl`, the JSON lines of `--output json`) up to the
//! moment the gather began, and `harness/summary.json` with how the run
//! stood then. Folding the events gives back the [`RunReport`] the run
//! folded, so the text is the text the run printed — except for what had
//! not happened yet when the bundle was written: the gather's own duration,
//! the post-suite hooks and the teardown (all after the gather), the
//! bundle's own path, and the final result, for which the result as of the
//! gather stands (the same, unless hooks or teardown changed it).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{RunReport, Stamped};

/// Where the bundle keeps the event stream and the summary.
pub const EVENTS_FILE: &str = "harness/events.jsonl";
pub const SUMMARY_FILE: &str = "harness/summary.json";

/// How a run stood when its bundle was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub exit_code: u8,
    pub result: String,
    /// `gather`: as known when the gather began (what followed — hooks,
    /// teardown — may still have changed it); `end`: how the run ended.
    pub as_of: AsOf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOf {
    Gather,
    End,
}

impl Outcome {
    pub fn at_gather(exit: crate::exit::Exit) -> Self {
        Self {
            exit_code: exit.code(),
            result: exit.meaning().to_owned(),
            as_of: AsOf::Gather,
        }
    }
}

/// The summary a bundle carries as `harness/summary.json`, and what
/// `harness report --output json` prints: the folded report, each incident
/// with the failures after it, and how the run stood.
pub fn summary_json(report: &RunReport, outcome: Option<&Outcome>) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "outcome".into(),
            serde_json::to_value(outcome).unwrap_or_default(),
        );
        object.insert(
            "incidents".into(),
            serde_json::to_value(report.correlate()).unwrap_or_default(),
        );
    }
    value
}

/// A bundle that could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "{} is not a harness bundle: it has no {EVENTS_FILE} (give the bundle's directory or its .tar.gz; bundles gathered before harness recorded its events cannot be replayed)",
        .path.display()
    )]
    NotABundle { path: PathBuf },
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {what} is not valid JSON", .path.display())]
    Json {
        path: PathBuf,
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A bundle that cannot be read back is the user's to point elsewhere (2).
impl crate::failure::Failure for ReplayError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            ReplayError::NotABundle { .. }
            | ReplayError::Read { .. }
            | ReplayError::Json { .. } => crate::exit::Exit::Usage,
        }
    }

    /// Each message says what the bundle lacks or where it is broken.
    fn fix(&self) -> Option<String> {
        None
    }
}

/// A run's report, folded back from its bundle.
#[derive(Clone, Debug)]
pub struct Replayed {
    pub report: RunReport,
    /// From the bundle's summary (absent in a bundle without one).
    pub outcome: Option<Outcome>,
    /// Lines of the event stream that are not events this harness knows
    /// (written by a newer one), left out of the report.
    pub skipped: usize,
}

/// Folds recorded JSON lines into a report; returns it and how many lines
/// were not events this harness can read.
pub fn fold(lines: impl BufRead) -> std::io::Result<(RunReport, usize)> {
    let mut report = RunReport::default();
    let mut skipped = 0;
    for line in lines.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Stamped>(&line) {
            Ok(event) => report.record(&event),
            Err(_) => skipped += 1,
        }
    }
    Ok((report, skipped))
}

/// Reads a bundle: its directory (or a directory holding exactly one
/// bundle, as unpacking its archive makes) or its `.tar.gz`.
pub fn open(path: &Path) -> Result<Replayed, ReplayError> {
    let read = |source| ReplayError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    let (folded, summary) = if meta.is_dir() {
        let root = bundle_root(path).ok_or_else(|| ReplayError::NotABundle {
            path: path.to_owned(),
        })?;
        let events = std::fs::File::open(root.join(EVENTS_FILE)).map_err(read)?;
        let folded = fold(BufReader::new(events)).map_err(read)?;
        let summary = match std::fs::read(root.join(SUMMARY_FILE)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(read(e)),
        };
        (folded, summary)
    } else {
        let file = std::fs::File::open(path).map_err(read)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut folded = None;
        let mut summary = None;
        for entry in archive.entries().map_err(read)? {
            let entry = entry.map_err(read)?;
            let name = entry.path().map_err(read)?.into_owned();
            // `<bundle>/harness/events.jsonl`: one directory above `harness/`.
            let inside: PathBuf = name.components().skip(1).collect();
            if inside == Path::new(EVENTS_FILE) {
                folded = Some(fold(BufReader::new(entry)).map_err(read)?);
            } else if inside == Path::new(SUMMARY_FILE) {
                let mut bytes = Vec::new();
                BufReader::new(entry)
                    .read_to_end(&mut bytes)
                    .map_err(read)?;
                summary = Some(bytes);
            }
        }
        let folded = folded.ok_or_else(|| ReplayError::NotABundle {
            path: path.to_owned(),
        })?;
        (folded, summary)
    };
    let outcome = match summary {
        None => None,
        Some(bytes) => {
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|source| ReplayError::Json {
                    path: path.to_owned(),
                    what: SUMMARY_FILE.into(),
                    source,
                })?;
            serde_json::from_value(value["outcome"].clone()).unwrap_or(None)
        }
    };
    let (report, skipped) = folded;
    Ok(Replayed {
        report,
        outcome,
        skipped,
    })
}

/// The bundle directory at or just below `path`.
fn bundle_root(path: &Path) -> Option<PathBuf> {
    if path.join(EVENTS_FILE).is_file() {
        return Some(path.to_owned());
    }
    let mut below = std::fs::read_dir(path)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(EVENTS_FILE).is_file());
    match (below.next(), below.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

impl Replayed {
    /// The report with the run's result: the one it ended with when the
    /// stream has it, else the one the bundle recorded at gather time.
    pub fn report(&self) -> RunReport {
        let mut report = self.report.clone();
        if report.finished.is_none()
            && let Some(o) = &self.outcome
        {
            report.finished = Some((o.exit_code, o.result.clone()));
        }
        report
    }

    /// The text the run printed, with a last line saying what the bundle
    /// cannot know.
    pub fn text(&self) -> String {
        let mut text = super::render::text(&self.report());
        if self.report.finished.is_none() {
            text.push_str(match &self.outcome {
                Some(_) => {
                    "(as of the gather: the gather itself, post-suite hooks and teardown came after it and are not in the bundle)\n"
                }
                None => "(the bundle does not say how the run ended)\n",
            });
        }
        if self.skipped > 0 {
            text.push_str(&format!(
                "({} recorded events are of kinds this harness does not know and were left out)\n",
                self.skipped
            ));
        }
        text
    }

    /// `harness report --output json`.
    pub fn json(&self) -> serde_json::Value {
        let outcome = match (&self.report.finished, &self.outcome) {
            (Some((code, result)), _) => Some(Outcome {
                exit_code: *code,
                result: result.clone(),
                as_of: AsOf::End,
            }),
            (None, outcome) => outcome.clone(),
        };
        summary_json(&self.report, outcome.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Event, Phase, Placed};

    fn line(at: &str, event: Event) -> String {
        serde_json::to_string(&Stamped {
            at: at.parse().unwrap(),
            event,
        })
        .unwrap()
    }

    #[test]
    fn every_event_kind_reads_back_as_it_was_written() {
        let events = [
            Event::RunStarted {
                lane: "audit".into(),
                run_id: "r-1".into(),
            },
            Event::PhaseStarted {
                phase: Phase::Deploy,
            },
            Event::PhaseFinished {
                phase: Phase::Deploy,
                seconds: 40.0,
                ok: false,
                error: Some("boom".into()),
                fix: None,
            },
            Event::Image {
                image: "ds".into(),
                outcome: "built".into(),
                seconds: 1.5,
            },
            Event::Load {
                image: "ds".into(),
                node: "n".into(),
                skipped: false,
                bytes: 1 << 40,
                seconds: 2.0,
            },
            Event::ComponentReady {
                component: "ds".into(),
                seconds: 3.0,
                ready_seconds: Some(1.0),
                lag: Some(crate::report::Lag {
                    at_least: 0.25,
                    at_most: 1.5,
                }),
            },
            Event::PodTimeline {
                component: "ds".into(),
                pod: "p".into(),
                scheduled: Some(0.5),
                initialized: None,
                ready: Some(3.0),
            },
            Event::Verdict {
                component: "ds".into(),
                standing: crate::readiness::Standing::Doomed,
                summary: "component ds will not become Ready: OOMKilled".into(),
                diagnosis: Some(Box::new(crate::report::tests::oom_reported())),
            },
            Event::Infra {
                component: "ds".into(),
                pod: "p".into(),
                what: "OOMKilled".into(),
                detail: "limit 32Mi".into(),
                evidence: None,
            },
            Event::SuiteStarted {
                suite: "s".into(),
                namespace: None,
            },
            Event::SuiteOutput {
                suite: "s".into(),
                line: "{\"not\": \"an event\"}".into(),
            },
            Event::SuiteFinished {
                suite: "s".into(),
                passed: false,
                outcome: "failed".into(),
                seconds: 9.0,
                log: "s.log".into(),
            },
            Event::TestCaseFailed {
                suite: "s".into(),
                case: "[It] x".into(),
                classname: None,
                started: "2026-11-22T14:22:41.25Z".parse().unwrap(),
                placed: Placed::Timeline,
                seconds: Some(8.045),
                message: Some("Expected".into()),
            },
            Event::HookStarted {
                hook: "h".into(),
                log: "h.log".into(),
            },
            Event::HookOutput {
                hook: "h".into(),
                line: "l".into(),
            },
            Event::HookFinished {
                hook: "h".into(),
                ok: true,
                outcome: "passed".into(),
                seconds: 1.0,
                log: "h.log".into(),
            },
            Event::Artifact {
                what: "junit".into(),
                path: "j.xml".into(),
            },
            Event::Notice {
                notice: crate::report::Notice::text("n"),
            },
            Event::finished(crate::exit::Exit::Interrupted),
        ];
        for event in events {
            let stamped = Stamped {
                at: "2026-11-22T14:20:00Z".parse().unwrap(),
                event,
            };
            let json = serde_json::to_string(&stamped).unwrap();
            let back: Stamped = serde_json::from_str(&json).unwrap();
            assert_eq!(back, stamped, "{json}");
        }
    }

    #[test]
    fn fold_rebuilds_the_report_and_counts_what_it_cannot_read() {
        let text = [
            line(
                "2026-11-22T14:20:00Z",
                Event::RunStarted {
                    lane: "audit".into(),
                    run_id: "r-9".into(),
                },
            ),
            line(
                "2026-11-22T14:21:00Z",
                Event::SuiteFinished {
                    suite: "s".into(),
                    passed: false,
                    outcome: "failed".into(),
                    seconds: 9.0,
                    log: "s.log".into(),
                },
            ),
            r#"{"at":"2026-11-22T14:21:00Z","event":"from_the_future","x":1}"#.to_owned(),
            String::new(),
        ]
        .join("\n");
        let (report, skipped) = fold(text.as_bytes()).unwrap();
        assert_eq!(
            (report.lane.as_str(), report.run_id.as_str()),
            ("audit", "r-9")
        );
        assert_eq!(report.suites.len(), 1);
        assert_eq!(skipped, 1);
    }

    #[test]
    fn a_directory_without_events_is_not_a_bundle_and_says_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(matches!(err, ReplayError::NotABundle { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("give the bundle's directory or its .tar.gz")
        );
        let missing = open(&dir.path().join("nope.tar.gz")).unwrap_err();
        assert!(matches!(missing, ReplayError::Read { .. }), "{missing}");
    }
}
