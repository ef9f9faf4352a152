//! The event bus: stages emit, one task shows and records.
//!
//! Emitting never blocks a stage and never fails: if the output task is gone
//! the event is dropped (the run matters more than its narration). The task
//! feeds the live sink, folds every event into the [`RunReport`] it returns
//! when the last [`Bus`] handle is dropped, and — for a run — appends it to
//! a file as the same JSON line `--output json` prints, whatever the output
//! mode, so the run's whole story can go into its must-gather bundle.
//! [`Bus::checkpoint`] asks the task where it stands: everything emitted
//! before the call is in the report and the file it answers with.

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::progress::Progress;
use super::sink::Sink;
use super::{Event, RunReport, Stamped};

enum Message {
    Event(Stamped),
    Progress(Progress, jiff::Timestamp),
    Checkpoint(oneshot::Sender<Checkpoint>),
}

/// A cheap, cloneable handle for emitting events.
#[derive(Clone, Debug)]
pub struct Bus {
    tx: mpsc::UnboundedSender<Message>,
}

/// Where the run stands: its report so far and its recorded events.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub report: RunReport,
    /// The recording, when the run has one.
    pub recorded: Option<Recorded>,
}

/// The events recorded so far: the first `bytes` bytes of `path` are every
/// event emitted before the checkpoint, as complete JSON lines.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: PathBuf,
    pub bytes: u64,
    /// Why the recording stopped (or never started), if it did: the file
    /// then holds only what came before.
    pub error: Option<String>,
}

impl Bus {
    pub fn emit(&self, event: Event) {
        let _ = self.tx.send(Message::Event(Stamped::now(event)));
    }

    /// Tells a [`super::Notice`].
    pub fn notice(&self, notice: super::Notice) {
        self.emit(Event::Notice { notice });
    }

    /// Says how far along a stage is: for the live sink only (never
    /// recorded, reported or printed as a line; see [`super::progress`]).
    pub fn progress(&self, progress: Progress) {
        let _ = self
            .tx
            .send(Message::Progress(progress, jiff::Timestamp::now()));
    }

    /// The report and the recording as they stand once every event emitted
    /// before this call has been handled; `None` when the output task is gone.
    pub async fn checkpoint(&self) -> Option<Checkpoint> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Message::Checkpoint(tx)).ok()?;
        rx.await.ok()
    }

    /// Returns once every event emitted before the call has reached the
    /// sink (at once when the output task is gone).
    pub async fn flush(&self) {
        let _ = self.checkpoint().await;
    }

    /// A handle that does not keep the output task waiting: for emitters
    /// that live as long as the process (the signal listener), whose events
    /// are dropped once every [`Bus`] is gone and the report is final.
    pub fn weak(&self) -> WeakBus {
        WeakBus {
            tx: self.tx.downgrade(),
        }
    }

    /// A bus whose events go nowhere, for callers that do not report.
    pub fn discard() -> Self {
        let (tx, _) = mpsc::unbounded_channel();
        Self { tx }
    }
}

/// See [`Bus::weak`].
#[derive(Clone, Debug)]
pub struct WeakBus {
    tx: mpsc::WeakUnboundedSender<Message>,
}

impl WeakBus {
    pub fn emit(&self, event: Event) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Message::Event(Stamped::now(event)));
        }
    }

    /// Tells a [`super::Notice`].
    pub fn notice(&self, notice: super::Notice) {
        self.emit(Event::Notice { notice });
    }
}

/// Appends events to a file as JSON lines; stops at the first error, which
/// it keeps to say so.
struct Recorder {
    path: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    bytes: u64,
    error: Option<String>,
}

impl Recorder {
    fn open(path: PathBuf) -> Self {
        let opened = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(&path));
        let (out, error) = match opened {
            Ok(file) => (Some(std::io::BufWriter::new(file)), None),
            Err(e) => (None, Some(format!("cannot create {}: {e}", path.display()))),
        };
        Self {
            path,
            out,
            bytes: 0,
            error,
        }
    }

    fn record(&mut self, event: &Stamped) {
        let Some(out) = &mut self.out else { return };
        let Ok(mut line) = serde_json::to_vec(event) else {
            return;
        };
        line.push(b'\n');
        match out.write_all(&line) {
            Ok(()) => self.bytes += line.len() as u64,
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        self.error = Some(format!("cannot write {}: {e}", self.path.display()));
        self.out = None;
    }

    /// Flushes, so that the first `bytes` bytes are on disk.
    fn recorded(&mut self) -> Recorded {
        if let Some(Err(e)) = self.out.as_mut().map(|o| o.flush()) {
            self.fail(e);
        }
        Recorded {
            path: self.path.clone(),
            bytes: self.bytes,
            error: self.error.clone(),
        }
    }
}

/// What the report says when the live sink panicked and was dropped.
fn live_output_stopped() -> Stamped {
    Stamped::now(Event::Notice {
        notice: super::Notice::LiveOutputStopped,
    })
}

/// Starts the output task; await the handle after dropping every `Bus` for the report.
pub fn start(sink: Box<dyn Sink>, report: RunReport) -> (Bus, JoinHandle<RunReport>) {
    start_recording(sink, report, None)
}

/// Like [`start`], and every event is also appended to `record` (created,
/// with its directory) as one JSON line.
pub fn start_recording(
    sink: Box<dyn Sink>,
    report: RunReport,
    record: Option<PathBuf>,
) -> (Bus, JoinHandle<RunReport>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let task = tokio::spawn(async move {
        let mut report = report;
        let mut recorder = record.map(Recorder::open);
        // A sink that panics (a bug in how one event is drawn) loses the
        // live output, not the report: it is dropped, and the report says so.
        let mut live = Some(sink);
        while let Some(message) = rx.recv().await {
            match message {
                Message::Event(event) => {
                    let mut events = vec![event];
                    if let Some(sink) = live.as_mut()
                        && catch_unwind(AssertUnwindSafe(|| sink.emit(&events[0]))).is_err()
                    {
                        live = None;
                        events.push(live_output_stopped());
                    }
                    for event in &events {
                        if let Some(r) = &mut recorder {
                            r.record(event);
                        }
                        report.record(event);
                    }
                }
                Message::Progress(progress, at) => {
                    // Progress is drawn, never recorded: a sink that panics
                    // on it loses the live output as on an event.
                    if let Some(sink) = live.as_mut()
                        && catch_unwind(AssertUnwindSafe(|| sink.progress(&progress, at))).is_err()
                    {
                        live = None;
                        let notice = live_output_stopped();
                        if let Some(r) = &mut recorder {
                            r.record(&notice);
                        }
                        report.record(&notice);
                    }
                }
                Message::Checkpoint(reply) => {
                    let _ = reply.send(Checkpoint {
                        report: report.clone(),
                        recorded: recorder.as_mut().map(Recorder::recorded),
                    });
                }
            }
        }
        if let Some(r) = &mut recorder {
            r.recorded();
        }
        if let Some(mut sink) = live {
            let _ = catch_unwind(AssertUnwindSafe(|| sink.finish()));
        }
        report
    });
    (Bus { tx }, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Phase;
    use crate::report::sink::JsonSink;
    use std::sync::{Arc, Mutex};

    /// A sink that shares what it got with the test.
    struct Shared(Arc<Mutex<Vec<Stamped>>>);
    impl Sink for Shared {
        fn emit(&mut self, event: &Stamped) {
            self.0.lock().unwrap().push(event.clone());
        }
        fn progress(&mut self, _: &crate::report::progress::Progress, _: jiff::Timestamp) {}
    }

    #[tokio::test]
    async fn a_weak_handle_reports_while_the_bus_lives_and_never_holds_it_open() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (bus, task) = start(Box::new(Shared(seen.clone())), RunReport::new("l", "r"));
        let weak = bus.weak();
        weak.emit(Event::Notice {
            notice: crate::report::Notice::text("heard"),
        });
        drop(bus);
        // The task ends although `weak` is alive; later events go nowhere.
        task.await.unwrap();
        weak.emit(Event::Notice {
            notice: crate::report::Notice::text("too late"),
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(
            matches!(&seen[0].event, Event::Notice { notice } if notice.to_string() == "heard")
        );
    }

    #[tokio::test]
    async fn every_event_reaches_the_sink_and_the_report_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (bus, task) = start(
            Box::new(Shared(seen.clone())),
            RunReport::new("audit", "r-1"),
        );
        let other = bus.clone();
        bus.emit(Event::PhaseStarted {
            phase: Phase::Suites,
        });
        other.emit(Event::SuiteFinished {
            suite: "a".into(),
            passed: false,
            outcome: "failed".into(),
            seconds: 1.0,
            log: "a.log".into(),
        });
        bus.emit(Event::PhaseFinished {
            phase: Phase::Suites,
            seconds: 1.0,
            ok: false,
            error: None,
            fix: None,
        });
        drop((bus, other));
        let report = task.await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(report.suites.len(), 1);
        assert_eq!(report.phases.len(), 1);
        assert_eq!(report.lane, "audit");
    }

    /// A sink that panics on its second event.
    struct Fragile(Arc<Mutex<usize>>);
    impl Sink for Fragile {
        fn emit(&mut self, _: &Stamped) {
            let count = {
                let mut n = self.0.lock().unwrap();
                *n += 1;
                *n
            };
            assert!(count < 2, "the fragile sink breaks");
        }
        fn progress(&mut self, _: &crate::report::progress::Progress, _: jiff::Timestamp) {}
    }

    /// Counts progress, to see it arrive in order with the events.
    struct Counting(Arc<Mutex<Vec<String>>>);
    impl Sink for Counting {
        fn emit(&mut self, event: &Stamped) {
            self.0.lock().unwrap().push(format!("{:?}", event.event));
        }
        fn progress(&mut self, progress: &crate::report::progress::Progress, _: jiff::Timestamp) {
            self.0.lock().unwrap().push(format!("{progress:?}"));
        }
    }

    #[tokio::test]
    async fn progress_reaches_the_live_sink_in_order_and_is_never_recorded_or_reported() {
        use crate::report::progress::Progress;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (bus, task) = start_recording(
            Box::new(Counting(seen.clone())),
            RunReport::new("audit", "r-1"),
            Some(path.clone()),
        );
        bus.emit(Event::PhaseStarted {
            phase: Phase::Gather,
        });
        bus.progress(Progress::Collectors { done: 1, total: 2 });
        bus.emit(Event::Notice {
            notice: crate::report::Notice::text("n"),
        });
        drop(bus);
        let report = task.await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(seen[1].starts_with("Collectors"), "{seen:?}");
        // The recording holds the two events only, as --output json would.
        let recorded = std::fs::read_to_string(&path).unwrap();
        assert_eq!(recorded.lines().count(), 2, "{recorded}");
        assert_eq!(report.notices, ["n"]);
        // The plain and JSON sinks print nothing for progress.
        let mut plain = crate::report::sink::PlainSink::new(Vec::new());
        let mut json = JsonSink::new(Vec::new());
        let p = Progress::Collectors { done: 1, total: 2 };
        plain.progress(&p, jiff::Timestamp::now());
        json.progress(&p, jiff::Timestamp::now());
        assert!(plain.into_inner().is_empty());
        assert!(json.into_inner().is_empty());
    }

    #[tokio::test]
    async fn a_panicking_sink_loses_the_live_output_not_the_report() {
        let seen = Arc::new(Mutex::new(0));
        let (bus, task) = start(Box::new(Fragile(seen.clone())), RunReport::new("l", "r"));
        for phase in [Phase::Deploy, Phase::Suites, Phase::Gather] {
            bus.emit(Event::PhaseFinished {
                phase,
                seconds: 1.0,
                ok: true,
                error: None,
                fix: None,
            });
        }
        drop(bus);
        let report = task.await.expect("the report task survives its sink");
        assert_eq!(
            *seen.lock().unwrap(),
            2,
            "the sink broke on its second event, then got none"
        );
        assert_eq!(report.phases.len(), 3, "every event is in the report");
        assert_eq!(report.notices.len(), 1);
        assert!(report.notices[0].contains("live output stopped"));
    }

    #[tokio::test]
    async fn a_discarded_bus_never_fails() {
        Bus::discard().emit(Event::Notice {
            notice: crate::report::Notice::text("x"),
        });
        let (bus, task) = start(Box::new(JsonSink::new(Vec::new())), RunReport::default());
        drop(bus);
        assert!(task.await.unwrap().notices.is_empty());
    }

    #[tokio::test]
    async fn a_checkpoint_sees_every_event_emitted_before_it_recorded_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/events.jsonl");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (bus, task) = start_recording(
            Box::new(Shared(seen.clone())),
            RunReport::new("audit", "r-1"),
            Some(path.clone()),
        );
        let other = bus.clone();
        bus.emit(Event::PhaseStarted {
            phase: Phase::Suites,
        });
        other.emit(Event::SuiteOutput {
            suite: "a".into(),
            line: "ok 1".into(),
        });
        let checkpoint = bus.checkpoint().await.expect("the task runs");
        // Emitted after the checkpoint: recorded, but not in what it saw.
        bus.emit(Event::Notice {
            notice: crate::report::Notice::text("later"),
        });
        let recorded = checkpoint.recorded.expect("a recording");
        assert_eq!(recorded.error, None);
        let text = std::fs::read_to_string(&path).unwrap();
        let prefix = &text[..recorded.bytes as usize];
        // Exactly what the JSON sink prints for the same events.
        let mut json = JsonSink::new(Vec::new());
        for event in seen.lock().unwrap().iter().take(2) {
            json.emit(event);
        }
        assert_eq!(prefix, String::from_utf8(json.into_inner()).unwrap());
        assert_eq!(checkpoint.report.lane, "audit");
        drop((bus, other));
        task.await.unwrap();
        let whole = std::fs::read_to_string(&path).unwrap();
        assert_eq!(whole.lines().count(), 3, "{whole}");
        assert!(whole.starts_with(prefix));
    }

    #[tokio::test]
    async fn a_recording_that_cannot_be_made_says_why_and_the_run_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the directory should be.
        std::fs::write(dir.path().join("run"), "").unwrap();
        let (bus, task) = start_recording(
            Box::new(JsonSink::new(Vec::new())),
            RunReport::default(),
            Some(dir.path().join("run/events.jsonl")),
        );
        bus.emit(Event::Notice {
            notice: crate::report::Notice::text("x"),
        });
        let recorded = bus.checkpoint().await.unwrap().recorded.unwrap();
        assert_eq!(recorded.bytes, 0);
        assert!(
            recorded
                .error
                .as_deref()
                .is_some_and(|e| e.contains("cannot create")),
            "{recorded:?}"
        );
        drop(bus);
        assert_eq!(task.await.unwrap().notices, ["x"]);
        assert!(Bus::discard().checkpoint().await.is_none());
    }
}
