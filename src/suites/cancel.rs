//! A small cancellation token over `tokio::sync::watch`.
//!
//! `tokio-util`'s `CancellationToken` would do, but the harness needs only
//! "has the run been cancelled" and "wait until it is", which a watch channel
//! gives without another dependency.

use tokio::sync::watch;

/// Cancels a run: every [`CancelToken`] made from it sees the cancellation.
#[derive(Debug)]
pub struct CancelHandle {
    tx: watch::Sender<bool>,
}

/// Observes a [`CancelHandle`]. Cheap to clone; one per task.
#[derive(Debug, Clone)]
pub struct CancelToken {
    rx: watch::Receiver<bool>,
}

/// A connected handle and token.
pub fn cancellation() -> (CancelHandle, CancelToken) {
    let (tx, rx) = watch::channel(false);
    (CancelHandle { tx }, CancelToken { rx })
}

impl CancelHandle {
    /// Cancels the run. Idempotent.
    pub fn cancel(&self) {
        // send_replace never fails, even when every token is gone.
        self.tx.send_replace(true);
    }

    /// A new token observing this handle.
    pub fn token(&self) -> CancelToken {
        CancelToken {
            rx: self.tx.subscribe(),
        }
    }
}

impl CancelToken {
    /// A token that is never cancelled, for callers without a cancel path.
    pub fn never() -> Self {
        let (handle, token) = cancellation();
        // Dropping the handle closes the channel; `cancelled` then waits
        // forever, which is exactly "never cancelled".
        drop(handle);
        token
    }

    /// Whether the run has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once the run is cancelled (at once if it already is).
    /// Cancel-safe, so it can sit in a `select!`.
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|cancelled| *cancelled).await.is_err() {
            // The handle was dropped without cancelling: nobody can cancel
            // any more, so never complete.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn cancel_wakes_every_token() {
        let (handle, token) = cancellation();
        let other = handle.token();
        assert!(!token.is_cancelled());
        let waiter = tokio::spawn({
            let token = token.clone();
            async move { token.cancelled().await }
        });
        handle.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("cancelled() did not complete after cancel()")
            .unwrap();
        assert!(token.is_cancelled() && other.is_cancelled());
        // Already cancelled: completes at once.
        tokio::time::timeout(Duration::from_secs(5), other.cancelled())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn never_is_never_cancelled() {
        let token = CancelToken::never();
        assert!(!token.is_cancelled());
        let waited = tokio::time::timeout(Duration::from_millis(100), token.cancelled()).await;
        assert!(waited.is_err(), "a never-token completed");
    }
}
