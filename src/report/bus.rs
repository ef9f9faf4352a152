//! The event bus: stages emit, one task shows and records.
//!
//! Emitting never blocks a stage and never fails: if the output task is gone
//! the event is dropped (the run matters more than its narration). The task
//! feeds the live sink and folds every event into the [`RunReport`] it
//! returns when the last [`Bus`] handle is dropped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::sink::Sink;
use super::{Event, RunReport, Stamped};

/// A cheap, cloneable handle for emitting events.
#[derive(Clone, Debug)]
pub struct Bus {
    tx: mpsc::UnboundedSender<Stamped>,
}

impl Bus {
    pub fn emit(&self, event: Event) {
        let _ = self.tx.send(Stamped::now(event));
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
    tx: mpsc::WeakUnboundedSender<Stamped>,
}

impl WeakBus {
    pub fn emit(&self, event: Event) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Stamped::now(event));
        }
    }
}

/// Starts the output task; await the handle after dropping every `Bus` for the report.
pub fn start(sink: Box<dyn Sink>, report: RunReport) -> (Bus, JoinHandle<RunReport>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Stamped>();
    let task = tokio::spawn(async move {
        let mut report = report;
        // A sink that panics (a bug in how one event is drawn) loses the
        // live output, not the report: it is dropped, and the report says so.
        let mut live = Some(sink);
        while let Some(event) = rx.recv().await {
            if let Some(sink) = live.as_mut()
                && catch_unwind(AssertUnwindSafe(|| sink.emit(&event))).is_err()
            {
                live = None;
                report.record(&Stamped::now(Event::Notice {
                    message: "the live output stopped after a panic (a bug in harness); \
                              the report below is complete"
                        .into(),
                }));
            }
            report.record(&event);
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
    }

    #[tokio::test]
    async fn a_weak_handle_reports_while_the_bus_lives_and_never_holds_it_open() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (bus, task) = start(Box::new(Shared(seen.clone())), RunReport::new("l", "r"));
        let weak = bus.weak();
        weak.emit(Event::Notice {
            message: "heard".into(),
        });
        drop(bus);
        // The task ends although `weak` is alive; later events go nowhere.
        task.await.unwrap();
        weak.emit(Event::Notice {
            message: "too late".into(),
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(matches!(&seen[0].event, Event::Notice { message } if message == "heard"));
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
            message: "x".into(),
        });
        let (bus, task) = start(Box::new(JsonSink::new(Vec::new())), RunReport::default());
        drop(bus);
        assert!(task.await.unwrap().notices.is_empty());
    }
}
