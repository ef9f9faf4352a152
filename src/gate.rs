//! One at a time, and once, for work that lanes running together share.
//!
//! Lanes run at once (`harness test --lane a --lane b`) ask for the same
//! images and host builds. Each lane brings itself up on its own, so
//! without a gate both would build the same content tag at the same time,
//! and `--rebuild` would rebuild it once per lane. [`enter`] hands out one
//! pass per key at a time, process-wide; the pass says whether the work
//! was done by another holder while this one waited for it, which is what
//! lets the second lane of a `--rebuild` take the first one's build.
//! Asked again later (not while it was being done), the work is done again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
struct Gate {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// How many times the work was done.
    done: AtomicU64,
}

static GATES: LazyLock<Mutex<HashMap<String, Arc<Gate>>>> = LazyLock::new(Default::default);

/// The right to do one key's work until dropped.
pub struct Pass {
    gate: Arc<Gate>,
    _held: OwnedMutexGuard<()>,
    /// Another holder did the work while this one waited.
    pub done_while_waiting: bool,
}

impl Pass {
    /// Says the work is done, for those waiting now.
    pub fn done(&self) {
        self.gate.done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits until no one else holds `key`, then holds it until the pass is
/// dropped.
pub async fn enter(key: &str) -> Pass {
    let gate = {
        let mut gates = GATES.lock().unwrap_or_else(|p| p.into_inner());
        gates.entry(key.to_owned()).or_default().clone()
    };
    let before = gate.done.load(Ordering::SeqCst);
    let held = gate.lock.clone().lock_owned().await;
    let done_while_waiting = gate.done.load(Ordering::SeqCst) > before;
    Pass {
        gate,
        _held: held,
        done_while_waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_holder_that_waited_sees_the_work_done_and_a_later_one_does_not() {
        let first = enter("gate-test:a").await;
        assert!(!first.done_while_waiting);
        let second = tokio::spawn(async { enter("gate-test:a").await.done_while_waiting });
        // Another key is not held up by this one.
        assert!(!enter("gate-test:b").await.done_while_waiting);
        tokio::task::yield_now().await;
        assert!(
            !second.is_finished(),
            "the second holder waits for the first"
        );
        first.done();
        drop(first);
        assert!(second.await.unwrap(), "it waited while the work was done");
        // Asked again afterwards: nobody did it meanwhile.
        assert!(!enter("gate-test:a").await.done_while_waiting);
    }

    #[tokio::test]
    async fn a_holder_that_waited_on_work_that_failed_does_it_itself() {
        let first = enter("gate-test:c").await;
        let second = tokio::spawn(async { enter("gate-test:c").await.done_while_waiting });
        tokio::task::yield_now().await;
        drop(first); // failed: never said done
        assert!(!second.await.unwrap());
    }
}
