//! A phase of a run as the event stream tells it: its start, then its
//! finish with how long it took and, when it failed, why and the fix.

use super::Event;
use super::bus::Bus;
use crate::failure::StageFailure;

/// Runs one phase with its start/finish events. A phase dropped half-way
/// (an interrupt cancels `up`) still reports that it finished, failed and
/// why, so a reader of the event stream never sees a phase left open. A
/// failure carries its whole cause chain and its fix, worded as
/// [`crate::failure`] words them everywhere else, and comes back marked
/// told, so that the run does not tell it again.
pub async fn phase<T, E: Into<StageFailure>>(
    bus: &Bus,
    phase: crate::report::Phase,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, StageFailure> {
    struct Open<'a> {
        bus: &'a Bus,
        phase: crate::report::Phase,
        started: std::time::Instant,
        outcome: Option<Option<(String, Option<String>)>>,
    }
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            let error = match self.outcome.take() {
                Some(error) => error,
                // Dropped half-way: by a panic unwinding through it, or by
                // an interrupt cancelling the future.
                None if std::thread::panicking() => Some(("panicked".to_owned(), None)),
                None => Some(("interrupted".to_owned(), None)),
            };
            let (error, fix) = match error {
                Some((error, fix)) => (Some(error), fix),
                None => (None, None),
            };
            self.bus.emit(Event::PhaseFinished {
                phase: self.phase,
                seconds: self.started.elapsed().as_secs_f64(),
                ok: error.is_none(),
                error,
                fix,
            });
        }
    }
    bus.emit(Event::PhaseStarted { phase });
    let mut open = Open {
        bus,
        phase,
        started: std::time::Instant::now(),
        outcome: None,
    };
    let result = work.await.map_err(Into::into);
    open.outcome = Some(result.as_ref().err().map(|e| (e.text(), e.fix())));
    drop(open);
    result.map_err(StageFailure::mark_told)
}
