//! Keeping progress events cheap: at most one per interval, changes only.
//!
//! Live progress (bytes streamed into a node, collectors done, the state of
//! a component being deployed) changes far more often than anyone can read.
//! The core says so through these two gates, with the time passed in, so
//! that what they let through is tested with an injected clock and no
//! sleeps: [`Throttle`] lets a value through at most once per interval (the
//! last one always goes: callers [`Throttle::flush`] at the end), and
//! [`Changes`] lets a value through only when it differs from the last one
//! let through, urgent ones at once and the others at most once per
//! interval (a later call sends what was held back).

use std::time::{Duration, Instant};

/// How often a stream of progress may be reported: four times a second is
/// more than a person reads, and little enough to cost nothing.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Lets a call through at most once per `interval`.
#[derive(Clone, Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    /// Whether a call was held back since the last one let through.
    held: bool,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            held: false,
        }
    }

    /// Whether to report now: the first call, and then once `interval` has
    /// passed since the last one that was.
    pub fn ready(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            self.last = Some(now);
            self.held = false;
        } else {
            self.held = true;
        }
        due
    }

    /// Whether a call was held back since the last report: the caller then
    /// reports its final value once more at the end.
    pub fn flush(&mut self) -> bool {
        std::mem::take(&mut self.held)
    }
}

/// Lets a value through when it changed: at once when it is urgent,
/// otherwise at most once per interval. A change held back goes with the
/// next call after the interval (callers call often: the deploy's waiter
/// judges at least once a second).
#[derive(Clone, Debug)]
pub struct Changes<T> {
    last: Option<T>,
    throttle: Throttle,
}

impl<T: Clone + PartialEq> Changes<T> {
    pub fn new(interval: Duration) -> Self {
        Self {
            last: None,
            throttle: Throttle::new(interval),
        }
    }

    /// `Some(value)` when it should be reported now.
    pub fn offer(&mut self, value: T, urgent: bool, now: Instant) -> Option<T> {
        if self.last.as_ref() == Some(&value) {
            return None;
        }
        if urgent {
            // Counts as a report: what follows soon after waits its turn.
            self.throttle.last = Some(now);
        } else if !self.throttle.ready(now) {
            return None;
        }
        self.last = Some(value.clone());
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> impl Fn(u64) -> Instant {
        let origin = Instant::now();
        move |ms| origin + Duration::from_millis(ms)
    }

    #[test]
    fn a_throttle_lets_one_call_through_per_interval_and_says_what_it_held() {
        let at = clock();
        let mut t = Throttle::new(Duration::from_millis(250));
        let passed: Vec<u64> = [0, 10, 100, 249, 250, 251, 499, 500, 900]
            .into_iter()
            .filter(|&ms| t.ready(at(ms)))
            .collect();
        assert_eq!(passed, [0, 250, 500, 900]);
        assert!(!t.flush(), "900 was let through: nothing held");
        assert!(!t.ready(at(1000)));
        assert!(t.flush(), "1000 was held back");
        assert!(!t.flush(), "said once");
    }

    #[test]
    fn changes_pass_once_urgent_ones_at_once_and_held_ones_later() {
        let at = clock();
        let mut c = Changes::new(Duration::from_millis(250));
        assert_eq!(c.offer("a", false, at(0)), Some("a"));
        assert_eq!(c.offer("a", false, at(500)), None, "unchanged");
        assert_eq!(c.offer("b", false, at(600)), Some("b"));
        assert_eq!(c.offer("c", false, at(700)), None, "too soon");
        assert_eq!(c.offer("c", false, at(849)), None, "still too soon");
        assert_eq!(c.offer("c", false, at(850)), Some("c"), "held, sent later");
        assert_eq!(c.offer("doomed", true, at(860)), Some("doomed"), "urgent");
        assert_eq!(c.offer("d", false, at(900)), None, "after an urgent one");
        assert_eq!(c.offer("d", false, at(1110)), Some("d"));
        // Back to a value seen before is a change too.
        assert_eq!(c.offer("a", true, at(1111)), Some("a"));
    }
}
