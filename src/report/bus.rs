//! The event bus: stages emit, one task shows and records.
//!
//! Emitting never blocks a stage and never fails: if the output task is gone
//! the event is dropped (the run matters more than its narration). The task
//! feeds the live sink and folds every event into the [`RunReport`] it
//! returns when the last [`Bus`] handle is dropped.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::sink::Sink;
use super::{Event, RunReport, Stamped};

/// What travels to the output task: an event, or a request to say when
/// every event sent before it has reached the sink.
#[derive(Debug)]
enum Msg {
    Event(Stamped),
    Flush(oneshot::Sender<()>),
}

/// A cheap, cloneable handle for emitting events.
#[derive(Clone, Debug)]
pub struct Bus {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Bus {
    pub fn emit(&self, event: Event) {
        let _ = self.tx.send(Msg::Event(Stamped::now(event)));
    }

    /// Returns once every event emitted before the call has reached the
    /// sink (at once when the output task is gone).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
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
    tx: mpsc::WeakUnboundedSender<Msg>,
}

impl WeakBus {
    pub fn emit(&self, event: Event) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Msg::Event(Stamped::now(event)));
        }
    }
}

/// Starts the output task; await the handle after dropping every `Bus` for the report.
pub fn start(mut sink: Box<dyn Sink>, report: RunReport) -> (Bus, JoinHandle<RunReport>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let task = tokio::spawn(async move {
        let mut report = report;
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Event(event) => {
                    sink.emit(&event);
                    report.record(&event);
                }
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
        sink.finish();
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
            fix: None,
        });
        drop((bus, other));
        let report = task.await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(report.suites.len(), 1);
        assert_eq!(report.phases.len(), 1);
        assert_eq!(report.lane, "audit");
    }

    #[tokio::test]
    async fn flush_returns_once_earlier_events_reached_the_sink() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (bus, task) = start(Box::new(Shared(seen.clone())), RunReport::default());
        for i in 0..100 {
            bus.emit(Event::Notice {
                message: i.to_string(),
            });
        }
        bus.flush().await;
        assert_eq!(seen.lock().unwrap().len(), 100);
        drop(bus);
        task.await.unwrap();
        // With the task gone, a flush does not wait for anything.
        Bus::discard().flush().await;
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
