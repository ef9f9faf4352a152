//! A component's health URL: the last step of its readiness.
//!
//! The URL is asked until it answers 2xx or the component's health timeout
//! runs out. This is the one place that retries on a timer: an HTTP endpoint
//! has no watch to subscribe to, and a refused connection says nothing about
//! when it will listen. The backoff starts short (Ready is noticed within
//! ~100 ms) and grows to a cap so a slow service is not hammered.

use std::time::Duration;

use tokio::time::Instant;

/// First pause between attempts.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Per-request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The pauses between attempts: doubling from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`].
pub fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_BACKOFF)
}

/// The URL did not answer 2xx in time.
#[derive(Debug, thiserror::Error)]
#[error("health URL {url} did not answer 2xx within {}: {last}", humantime::format_duration(*.timeout))]
pub struct HealthTimeout {
    /// The URL.
    pub url: String,
    /// The time allowed.
    pub timeout: Duration,
    /// The last answer or error.
    pub last: String,
}

/// Asks `url` until it answers 2xx, or until `timeout` (or `deadline`,
/// whichever comes first) passes.
pub async fn wait_healthy(
    url: &str,
    timeout: Duration,
    deadline: Instant,
) -> Result<Duration, HealthTimeout> {
    let start = Instant::now();
    let end = deadline.min(start + timeout);
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| HealthTimeout {
            url: url.to_owned(),
            timeout,
            last: e.to_string(),
        })?;
    let mut last = "no attempt made".to_owned();
    let mut attempt = 0;
    while Instant::now() < end {
        match tokio::time::timeout_at(end, client.get(url).send()).await {
            Ok(Ok(r)) if r.status().is_success() => return Ok(start.elapsed()),
            Ok(Ok(r)) => last = format!("answered {}", r.status()),
            Ok(Err(e)) => last = crate::failure::chain_text(&e),
            Err(_) => break,
        }
        tokio::time::sleep_until(end.min(Instant::now() + backoff(attempt))).await;
        attempt += 1;
    }
    Err(HealthTimeout {
        url: url.to_owned(),
        timeout,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let got: Vec<u128> = (0..7).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    /// A server that answers 503 twice, then 200.
    #[tokio::test]
    async fn waits_through_errors_until_2xx() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for status in [
                "503 Service Unavailable",
                "503 Service Unavailable",
                "200 OK",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        wait_healthy(&url, Duration::from_secs(30), deadline)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_closed_port_times_out_with_the_last_error() {
        // Bind then drop: the port is (almost certainly) closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/health");
        let deadline = Instant::now() + Duration::from_secs(30);
        let err = wait_healthy(&url, Duration::from_millis(300), deadline)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&url), "{err}");
        assert!(!err.last.is_empty());
    }
}
