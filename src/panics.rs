//! Panics: a bug in harness must not cost the run its report, its
//! must-gather bundle or its teardown.
//!
//! Three layers, from the inside out:
//!
//! - The **hook** ([`install`], called first thing by `main`) records every
//!   panic — its message, where it happened, which thread — before the
//!   unwinding starts, whatever task or thread it is on, and says it on
//!   stderr at once (the one line left if the process then hangs).
//! - The **pipeline** catches a panic that unwinds out of a stage
//!   ([`caught`]) and treats it as that stage failing with
//!   [`crate::exit::Exit::Panicked`]: a panic while deploying still leads to gather and
//!   teardown, one in gather to teardown. Panics that never reach a stage
//!   (a spawned task whose handle nobody awaits, such as the pod watcher
//!   during the suites) are still in the record, so the run still gathers
//!   and ends with [`crate::exit::Exit::Panicked`]: a run in which harness panicked never
//!   exits as if nothing happened.
//! - `main` catches whatever unwinds out of everything, says plainly what
//!   could not be done, and exits with [`crate::exit::Exit::Panicked`].
//!
//! All of it needs unwinding: with `panic = "abort"` the process would die
//! inside the hook, so such a build is refused at compile time (the fuzz
//! build, which aborts on purpose so libFuzzer sees the crash, excepted).
//!
//! Tests prove it end to end by making the harness binary panic on purpose
//! ([`inject`], `HARNESS_TEST_PANIC=<point>`). Only builds with debug
//! assertions (the dev and test profiles) honour that variable; in a
//! release build [`inject`] is empty, so no environment can make it panic.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::Mutex;

#[cfg(all(panic = "abort", not(fuzzing)))]
compile_error!(
    "harness catches panics to still gather and tear down; build it with panic = \"unwind\""
);

/// One panic, as the hook saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panic {
    /// The panic's message (`"called `Option::unwrap()` on a `None` value"`).
    pub message: String,
    /// `src/deploy/wait.rs:120:17`, when known.
    pub location: Option<String>,
    /// The thread it happened on (tokio's workers are `tokio-runtime-worker`).
    pub thread: String,
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(at) => write!(f, "harness panicked at {at}: {}", self.message)?,
            None => write!(f, "harness panicked: {}", self.message)?,
        }
        f.write_str(" (a bug in harness: please report it with this output)")
    }
}

impl std::error::Error for Panic {}

/// harness itself is broken: that outranks whatever else happened (71).
impl crate::failure::Failure for Panic {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Panicked
    }

    /// The message says to report it; there is nothing to fix by hand.
    fn fix(&self) -> Option<String> {
        None
    }
}

impl Panic {
    fn from_payload(payload: &(dyn Any + Send)) -> Panic {
        Panic {
            message: payload_message(payload),
            location: None,
            thread: thread_name(),
        }
    }
}

/// The message a panic was raised with: `panic!("…")` carries a `&str` or a
/// `String`; anything else (`panic_any`) has none we can show.
pub fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed thread")
        .to_owned()
}

/// Every panic of this process, in order, and whether a stage's failure
/// already reports it.
#[derive(Debug, Default)]
struct Record {
    panics: Vec<(Panic, bool)>,
}

static RECORD: Mutex<Record> = Mutex::new(Record { panics: Vec::new() });

thread_local! {
    /// The last panic on this thread and its index in [`RECORD`]: the
    /// catcher of an unwinding panic runs on the thread that panicked.
    static LAST: RefCell<Option<(Panic, usize)>> = const { RefCell::new(None) };
}

fn record() -> std::sync::MutexGuard<'static, Record> {
    // A panic while the lock was held must not make every later panic
    // (or the final exit code) panic too.
    RECORD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Installs the hook. `main` calls it before anything else; library tests
/// never do, so their deliberate panics stay out of the record.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let panic = Panic {
            message: payload_message(info.payload()),
            location: info.location().map(ToString::to_string),
            thread: thread_name(),
        };
        let index = {
            let mut record = record();
            record.panics.push((panic.clone(), false));
            record.panics.len() - 1
        };
        // The one thing printed from here: if the process hangs or dies
        // after this, it is all there is. `RUST_BACKTRACE=1` adds the stack.
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
            _ => String::new(),
        };
        eprintln!("{panic} [thread {}]{backtrace}", panic.thread);
        LAST.with(|last| *last.borrow_mut() = Some((panic, index)));
    }));
}

/// The panic behind a payload caught on this thread, marked as reported
/// (the caller makes it a stage's failure). Without the hook, only the
/// payload's message is known.
pub fn caught(payload: &(dyn Any + Send)) -> Panic {
    match LAST.with(|last| last.borrow_mut().take()) {
        Some((panic, index)) if panic.message == payload_message(payload) => {
            if let Some(entry) = record().panics.get_mut(index) {
                entry.1 = true;
            }
            panic
        }
        _ => Panic::from_payload(payload),
    }
}

/// Whether harness has panicked anywhere in this process.
pub fn any() -> bool {
    !record().panics.is_empty()
}

/// Every panic so far, in order.
pub fn recorded() -> Vec<Panic> {
    record().panics.iter().map(|(p, _)| p.clone()).collect()
}

/// The panics no stage's failure reports: those in tasks and threads whose
/// panic was swallowed, for the report to name.
pub fn unreported() -> Vec<Panic> {
    record()
        .panics
        .iter()
        .filter(|(_, reported)| !reported)
        .map(|(p, _)| p.clone())
        .collect()
}

/// The variable that makes a test build panic at a named point.
pub const INJECT_VARIABLE: &str = "HARNESS_TEST_PANIC";

/// Panics when `$HARNESS_TEST_PANIC` names `point`, in builds with debug
/// assertions only: the end-to-end tests use it to prove that a panic in
/// each place still produces a report, a bundle and a teardown. A release
/// build compiles this to nothing. The panic is reported at the caller.
#[track_caller]
pub fn inject(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(INJECT_VARIABLE).is_some_and(|v| v == point) {
        panic!("injected panic at `{point}` ({INJECT_VARIABLE}={point})");
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_message_is_its_text_or_says_it_has_none() {
        let text: Box<dyn Any + Send> = Box::new("boom");
        assert_eq!(payload_message(text.as_ref()), "boom");
        let owned: Box<dyn Any + Send> = Box::new(String::from("index 3 out of range"));
        assert_eq!(payload_message(owned.as_ref()), "index 3 out of range");
        let other: Box<dyn Any + Send> = Box::new(42u8);
        assert_eq!(payload_message(other.as_ref()), "a panic without a message");
    }

    #[test]
    fn a_panic_says_where_and_that_it_is_a_bug() {
        let panic = Panic {
            message: "boom".into(),
            location: Some("src/deploy/wait.rs:12:5".into()),
            thread: "tokio-runtime-worker".into(),
        };
        assert_eq!(
            panic.to_string(),
            "harness panicked at src/deploy/wait.rs:12:5: boom (a bug in harness: please report it with this output)"
        );
    }

    #[test]
    fn without_the_hook_a_caught_panic_keeps_its_message() {
        // No hook in library tests: the thread-local is empty.
        let payload = std::panic::catch_unwind(|| panic!("no hook here")).unwrap_err();
        let panic = caught(payload.as_ref());
        assert_eq!(panic.message, "no hook here");
        assert_eq!(panic.location, None);
    }
}
