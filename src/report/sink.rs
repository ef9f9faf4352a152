//! Live output: the same events as plain lines, JSON lines or live progress.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::progress::{LiveView, Progress, frame};
use super::render::clock;
use super::{Event, Stamped};

/// Consumes the event stream as it happens.
pub trait Sink: Send {
    fn emit(&mut self, event: &Stamped);
    /// How far along a stage is; only the terminal shows it (the plain and
    /// JSON sinks ignore it, so their output does not depend on it). No
    /// default: a sink that wraps another must pass it on, and once a
    /// wrapper that did not left the terminal without any progress.
    fn progress(&mut self, progress: &Progress, at: jiff::Timestamp);
    /// Called once at the end (clears bars, flushes).
    fn finish(&mut self) {}
}

/// The one-line text of an event, without the time; `None` for events that
/// only matter to the report.
pub fn line(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted { lane, run_id } => format!("run       {run_id} (lane {lane})"),
        Event::TestCaseFailed {
            suite,
            case,
            started,
            placed,
            ..
        } => format!(
            "suites    {suite}: test case failed: {case} (started {})",
            super::render::case_clock(started, *placed)
        ),
        Event::PhaseStarted { phase } => format!("{:<9} started", phase.name()),
        // The error (and its fix) is told once, at the end (`error:` or the
        // report's phases); an interrupted phase says so here.
        Event::PhaseFinished {
            phase,
            seconds,
            ok,
            error,
            ..
        } => match (ok, error.as_deref()) {
            (true, _) => format!("{:<9} done in {seconds:.1}s", phase.name()),
            (false, Some("interrupted")) => {
                format!("{:<9} interrupted after {seconds:.1}s", phase.name())
            }
            (false, _) => format!("{:<9} FAILED after {seconds:.1}s", phase.name()),
        },
        Event::Image {
            image,
            outcome,
            seconds,
        } => format!("images    {image}: {outcome} ({seconds:.1}s)"),
        Event::Load {
            image,
            node,
            skipped: true,
            ..
        } => format!("load      {image} → {node}: already present, skipped"),
        Event::Load {
            image,
            node,
            bytes,
            seconds,
            ..
        } => {
            format!(
                "load      {image} → {node}: loaded {} in {seconds:.1}s",
                bytesize::ByteSize::b(*bytes).display().iec()
            )
        }
        Event::ComponentReady {
            component,
            seconds,
            ready_seconds,
            lag,
        } => {
            let ready = super::ready_text(*seconds, *ready_seconds, lag.as_ref(), |s| {
                format!("{s:.1}s")
            });
            format!("deploy    {component} {ready}")
        }
        Event::PodTimeline { .. } => return None,
        Event::Verdict {
            component,
            standing: crate::readiness::Standing::Ready,
            summary,
            ..
        } => format!("deploy    {component}: {summary}"),
        Event::Verdict {
            summary, diagnosis, ..
        } => {
            let mut text = format!("deploy    {summary}");
            if let Some(d) = diagnosis {
                text.push('\n');
                text.push_str(super::render::indented(&d.text, "  ").trim_end());
            }
            text
        }
        Event::Infra {
            component,
            pod,
            what,
            detail,
            ..
        } => format!("infra     {component} {what} ({pod}; {detail})"),
        Event::Retry { attempt, suites } => format!(
            "suites    attempt {attempt}: {} again, each in a fresh namespace",
            suites.join(", ")
        ),
        Event::Recovery {
            ok: true, seconds, ..
        } => format!("suites    every component Ready and settled again after {seconds:.1}s"),
        Event::Recovery {
            ok: false,
            seconds,
            error,
        } => format!(
            "suites    not retried: the components were not Ready again after {seconds:.1}s: {}",
            error.as_deref().unwrap_or("no reason given")
        ),
        Event::TestVerdict(v) => format!(
            "verdict   {}: {}: {} ({})",
            v.verdict,
            v.suite,
            v.case,
            v.attempts_text()
        ),
        Event::SuiteStarted {
            suite,
            namespace: Some(ns),
        } => format!("suites    {suite} started in namespace {ns}"),
        Event::SuiteStarted {
            suite,
            namespace: None,
        } => format!("suites    {suite} started"),
        Event::SuiteOutput { suite, line } => format!("[{suite}] {line}"),
        Event::SuiteFinished {
            suite,
            outcome,
            seconds,
            ..
        } => format!("suites    {suite}: {outcome} ({seconds:.1}s)"),
        Event::HookStarted { hook, log } => {
            format!("hooks     {hook} started (log {})", log.display())
        }
        Event::HookOutput { hook, line } => format!("[hook {hook}] {line}"),
        Event::HookFinished {
            hook,
            outcome,
            seconds,
            ..
        } => format!("hooks     {hook}: {outcome} ({seconds:.1}s)"),
        Event::Artifact { what, path } => format!("artifact  {what}: {}", path.display()),
        Event::Notice { notice } => format!("notice    {notice}"),
        Event::Finished { exit_code, result } => {
            format!("finished  {result} (exit {exit_code})")
        }
    })
}

/// Timestamped lines, for CI logs and pipes.
pub struct PlainSink<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> PlainSink<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Sink for PlainSink<W> {
    fn emit(&mut self, event: &Stamped) {
        if let Some(text) = line(&event.event) {
            // A closed stderr must not take the run down with it.
            let _ = writeln!(self.out, "{} {text}", clock(&event.at));
        }
    }

    /// Progress is for the terminal only.
    fn progress(&mut self, _: &super::progress::Progress, _: jiff::Timestamp) {}

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

/// Lines written through it go out whole, each behind `prefix`: lanes run
/// at once share stderr, and a line of one never breaks into another's.
pub struct LinePrefix<W: Write> {
    prefix: String,
    out: W,
    line: Vec<u8>,
}

impl<W: Write> LinePrefix<W> {
    pub fn new(prefix: impl Into<String>, out: W) -> Self {
        Self {
            prefix: prefix.into(),
            out,
            line: Vec::new(),
        }
    }
}

impl<W: Write> Write for LinePrefix<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &byte in buf {
            self.line.push(byte);
            if byte == b'\n' {
                let mut whole = self.prefix.clone().into_bytes();
                whole.append(&mut self.line);
                self.out.write_all(&whole)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// One JSON object per line, every event, for tools.
pub struct JsonSink<W: Write + Send> {
    out: W,
    /// `"lane"` added to every event that lacks it (lanes run at once).
    lane: Option<String>,
}

impl<W: Write + Send> JsonSink<W> {
    pub fn new(out: W) -> Self {
        Self { out, lane: None }
    }

    /// Every event says its lane: `{"lane":"audit","at":…}`.
    pub fn tagged(out: W, lane: &str) -> Self {
        Self {
            out,
            lane: Some(lane.to_owned()),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Sink for JsonSink<W> {
    fn emit(&mut self, event: &Stamped) {
        if let Ok(json) = serde_json::to_string(event) {
            let json = match (&self.lane, &event.event) {
                (Some(lane), event) if !matches!(event, Event::RunStarted { .. }) => {
                    format!("{{\"lane\":{},{}", serde_json::json!(lane), &json[1..])
                }
                _ => json,
            };
            let _ = writeln!(self.out, "{json}");
        }
    }

    /// Progress is for the terminal only.
    fn progress(&mut self, _: &super::progress::Progress, _: jiff::Timestamp) {}

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

/// How often the live frame is redrawn: often enough for a clock that
/// counts seconds to look alive, never more than ten times a second.
pub const REDRAW: Duration = Duration::from_millis(100);

/// What every phase that runs is waiting on, redrawn under the lines of
/// what finished ([`frame`] of a [`LiveView`]). Only for a person at a
/// terminal (see `OutputMode::choose`).
///
/// The frame is one multi-line message of one indicatif bar, so every
/// redraw replaces the whole frame at once (no line of it is ever half
/// updated, nothing flickers); a ticker thread recomputes it at most every
/// [`REDRAW`], and only draws when it changed (the clocks count seconds).
/// Lines are cut to the terminal's width as it is at each redraw, so
/// indicatif never has a wrapped line to miscount.
pub struct ProgressSink {
    bar: indicatif::ProgressBar,
    view: Arc<Mutex<LiveView>>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Default for ProgressSink {
    fn default() -> Self {
        Self::new()
    }
}

/// The terminal's width, when stderr is one.
fn terminal_width() -> usize {
    console::Term::stderr()
        .size_checked()
        .map_or(80, |(_, cols)| cols as usize)
}

impl ProgressSink {
    pub fn new() -> Self {
        // Twice the ticker's rate: the ticker bounds the redraws, and a
        // line printed above is drawn at once.
        let bar = indicatif::ProgressBar::with_draw_target(
            None,
            indicatif::ProgressDrawTarget::stderr_with_hz(20),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let view = Arc::new(Mutex::new(LiveView::default()));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let ticker = {
            let (bar, view) = (bar.clone(), view.clone());
            std::thread::Builder::new()
                .name("harness-progress".into())
                .spawn(move || {
                    let mut shown = String::new();
                    // Ends when the sink says so or is gone.
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(REDRAW)
                    {
                        let drawn = {
                            let Ok(view) = view.lock() else { break };
                            // One column spare: a line exactly as wide as
                            // the terminal wraps on some of them.
                            frame(
                                &view,
                                jiff::Timestamp::now(),
                                terminal_width().saturating_sub(1),
                            )
                        };
                        if drawn != shown {
                            bar.set_message(drawn.clone());
                            shown = drawn;
                        }
                    }
                })
                .ok()
        };
        Self {
            bar,
            view,
            stop: Some(stop),
            ticker,
        }
    }
}

impl Sink for ProgressSink {
    fn emit(&mut self, event: &Stamped) {
        if let Ok(mut view) = self.view.lock() {
            view.event(event);
        }
        // What the frame shows live is not printed as a line as well.
        if matches!(event.event, Event::PhaseStarted { .. }) {
            return;
        }
        if let Some(text) = line(&event.event) {
            self.bar.println(text);
        }
    }

    fn progress(&mut self, progress: &Progress, at: jiff::Timestamp) {
        if let Ok(mut view) = self.view.lock() {
            view.progress(progress, at);
        }
    }

    fn finish(&mut self) {
        drop(self.stop.take());
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Phase;

    fn stamped(event: Event) -> Stamped {
        Stamped {
            at: "2026-11-22T14:22:40Z".parse().unwrap(),
            event,
        }
    }

    #[test]
    fn lanes_run_at_once_say_whose_each_line_is() {
        let mut sink = PlainSink::new(LinePrefix::new("[audit] ", Vec::new()));
        sink.emit(&stamped(Event::finished(crate::exit::Exit::Ok)));
        sink.emit(&stamped(Event::SuiteOutput {
            suite: "audit".into(),
            line: "ok 1".into(),
        }));
        let text = String::from_utf8(sink.into_inner().out).unwrap();
        assert_eq!(
            text,
            "[audit] 14:22:40 finished  success (exit 0)\n[audit] 14:22:40 [audit] ok 1\n"
        );
        // A line written in pieces goes out whole; an unfinished one waits.
        let mut w = LinePrefix::new("[c] ", Vec::new());
        write!(w, "a").unwrap();
        write!(w, "b\nc").unwrap();
        assert_eq!(w.out, b"[c] ab\n");
        let mut json = JsonSink::tagged(Vec::new(), "controller");
        json.emit(&stamped(Event::RunStarted {
            lane: "controller".into(),
            run_id: "r-1".into(),
        }));
        json.emit(&stamped(Event::finished(crate::exit::Exit::Ok)));
        let lines: Vec<serde_json::Value> = String::from_utf8(json.into_inner())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // Every line names the lane once: run_started has it already.
        assert!(lines.iter().all(|l| l["lane"] == "controller"), "{lines:?}");
        assert_eq!(lines[1]["event"], "finished");
    }

    #[test]
    fn plain_lines_are_timestamped_and_skip_report_only_events() {
        let mut sink = PlainSink::new(Vec::new());
        sink.emit(&stamped(Event::PhaseFinished {
            phase: Phase::Images,
            seconds: 3.25,
            ok: true,
            error: None,
            fix: None,
        }));
        sink.emit(&stamped(Event::PodTimeline {
            component: "c".into(),
            pod: "p".into(),
            scheduled: None,
            initialized: None,
            ready: None,
        }));
        sink.emit(&stamped(Event::SuiteOutput {
            suite: "audit".into(),
            line: "ok 1".into(),
        }));
        sink.emit(&stamped(Event::Load {
            image: "ds".into(),
            node: "n1".into(),
            skipped: false,
            bytes: 3 * 1024 * 1024,
            seconds: 1.5,
        }));
        sink.emit(&stamped(Event::ComponentReady {
            component: "ds".into(),
            seconds: 7.04,
            ready_seconds: Some(2.0),
            lag: Some(super::super::Lag {
                at_least: 0.05,
                at_most: 0.05,
            }),
        }));
        // A Job: nothing to settle, no pods that turn Ready.
        sink.emit(&stamped(Event::ComponentReady {
            component: "migrations".into(),
            seconds: 1.62,
            ready_seconds: Some(1.6),
            lag: None,
        }));
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            text,
            "14:22:40 images    done in 3.2s\n14:22:40 [audit] ok 1\n14:22:40 load      ds → n1: loaded 3.0 MiB in 1.5s\n\
             14:22:40 deploy    ds Ready after 2.0s, settled at 7.0s; seen 0.05s after its pods turned Ready\n\
             14:22:40 deploy    migrations Ready after 1.6s\n"
        );
    }

    #[test]
    fn a_verdict_is_shown_with_its_evidence_and_a_ready_one_in_one_line() {
        let doomed = line(&Event::Verdict {
            component: "datastorage".into(),
            standing: crate::readiness::Standing::Doomed,
            summary: "component `datastorage` will not become Ready: Deployment/harness-demo/datastorage is Failed (OOMKilled)".into(),
            diagnosis: Some(Box::new(crate::report::tests::oom_reported())),
        })
        .unwrap();
        let mut lines = doomed.lines();
        assert_eq!(
            lines.next(),
            Some(
                "deploy    component `datastorage` will not become Ready: Deployment/harness-demo/datastorage is Failed (OOMKilled)"
            )
        );
        assert_eq!(
            lines.next(),
            Some("    RESOURCE                             STATE   REASON     EVIDENCE")
        );
        assert!(
            doomed.contains(
                "\n      log of container datastorage (previous): none (not kept by the kubelet)"
            ),
            "{doomed}"
        );
        let ready = line(&Event::Verdict {
            component: "redis".into(),
            standing: crate::readiness::Standing::Ready,
            summary: "Ready after 3.2s".into(),
            diagnosis: None,
        });
        assert_eq!(ready.as_deref(), Some("deploy    redis: Ready after 3.2s"));
        // In JSON the diagnosis has the same shape as `diagnose --output json`.
        let json = serde_json::to_value(stamped(Event::Verdict {
            component: "datastorage".into(),
            standing: crate::readiness::Standing::DoomedAfterReady,
            summary: "s".into(),
            diagnosis: Some(Box::new(crate::report::tests::oom_reported())),
        }))
        .unwrap();
        assert_eq!(json["event"], "verdict");
        assert_eq!(json["standing"], "doomed_after_ready");
        assert_eq!(
            json["diagnosis"]["findings"][0]["verdict"]["name"],
            "OOMKilled"
        );
        assert_eq!(
            json["diagnosis"]["findings"][0]["logs"][1]["missing"],
            "not kept by the kubelet"
        );
    }

    #[test]
    fn hook_lines() {
        let started = line(&Event::HookStarted {
            hook: "coverage".into(),
            log: "r/hooks/coverage.log".into(),
        });
        assert_eq!(
            started.as_deref(),
            Some("hooks     coverage started (log r/hooks/coverage.log)")
        );
        let output = line(&Event::HookOutput {
            hook: "coverage".into(),
            line: "scaled to 0".into(),
        });
        assert_eq!(output.as_deref(), Some("[hook coverage] scaled to 0"));
        let finished = line(&Event::HookFinished {
            hook: "coverage".into(),
            ok: false,
            outcome: "exited with status 3".into(),
            seconds: 2.0,
            log: "r/hooks/coverage.log".into(),
        });
        assert_eq!(
            finished.as_deref(),
            Some("hooks     coverage: exited with status 3 (2.0s)")
        );
    }

    #[test]
    fn json_sink_writes_every_event() {
        let mut sink = JsonSink::new(Vec::new());
        sink.emit(&stamped(Event::PhaseStarted {
            phase: Phase::Deploy,
        }));
        sink.emit(&stamped(Event::PodTimeline {
            component: "c".into(),
            pod: "p".into(),
            scheduled: Some(0.5),
            initialized: None,
            ready: Some(3.0),
        }));
        let text = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "phase_started");
        assert_eq!(lines[0]["phase"], "deploy");
        assert_eq!(lines[1]["ready"], 3.0);
    }
}
