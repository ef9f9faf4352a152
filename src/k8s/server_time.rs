//! The API server's clock, read from the `Date` header of one response, so
//! that "how long has this pod been Ready" is answered on the clock that
//! stamped the pod's conditions, never the host's (a remote cluster's clock
//! may be off from the machine running the harness by any amount).

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use tokio::time::Instant;

/// A reading of the server's clock, and when (on the host's monotonic
/// clock) its answer arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTime {
    date: Timestamp,
    received: Instant,
}

impl ServerTime {
    /// The server's `Date` as it answered `/version`; `None` when it sends
    /// no such header or the request fails (then nothing is judged by it).
    pub async fn ask(client: &Client) -> Option<Self> {
        let request = http::Request::get("/version")
            .body(kube::client::Body::empty())
            .ok()?;
        let response = client.send(request).await.ok()?;
        let received = Instant::now();
        let date = response.headers().get(http::header::DATE)?.to_str().ok()?;
        Self::read(date, received)
    }

    /// A reading from a `Date` header's text (`Mon, 07 Dec 2026 12:20:00 GMT`).
    pub fn read(date: &str, received: Instant) -> Option<Self> {
        let date = k8s_openapi::jiff::fmt::rfc2822::parse(date)
            .ok()?
            .timestamp();
        Some(Self { date, received })
    }

    /// A time the server's clock has certainly reached by now: the header
    /// is truncated to the second and was stamped before its answer
    /// arrived, so the reading plus the time since it arrived is never
    /// ahead of the server.
    pub fn now_at_least(&self) -> Timestamp {
        let since = SignedDuration::try_from(self.received.elapsed()).unwrap_or_default();
        self.date.saturating_add(since).unwrap_or(self.date)
    }

    /// How long something the server stamped `at` (to the second, as API
    /// times are) has certainly lasted by now: at least zero.
    pub fn certainly_since(&self, at: Timestamp) -> Duration {
        let lasted = self.now_at_least().duration_since(at) - SignedDuration::from_secs(1);
        Duration::try_from(lasted).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reading_advances_with_the_host_and_never_runs_ahead() {
        let reading = ServerTime::read("Mon, 07 Dec 2026 12:20:00 GMT", Instant::now()).unwrap();
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        assert_eq!(reading.now_at_least(), at("2026-12-07T12:20:00Z"));
        tokio::time::advance(Duration::from_millis(2500)).await;
        assert_eq!(reading.now_at_least(), at("2026-12-07T12:20:02.5Z"));
        // Stamped 12:19:55 (any time in that second): certainly 6.5 s ago.
        assert_eq!(
            reading.certainly_since(at("2026-12-07T12:19:55Z")),
            Duration::from_millis(6500)
        );
        // Stamped after the reading's second began: nothing is certain.
        assert_eq!(
            reading.certainly_since(at("2026-12-07T12:20:03Z")),
            Duration::ZERO
        );
    }

    #[test]
    fn a_header_that_is_no_date_is_no_reading() {
        assert!(ServerTime::read("yesterday", Instant::now()).is_none());
    }
}
