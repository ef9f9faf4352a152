//! The write buffer: acknowledged events are collected and inserted in one
//! statement when the buffer holds `flush_events` events or its oldest
//! event has waited `flush_interval`.
//!
//! Read-your-writes: one task owns the buffer and takes commands from one
//! FIFO channel. A write is acknowledged once its command is in the channel;
//! a query first sends a flush command and waits for its answer. Since the
//! flush is behind every write acknowledged before it, the query sees them
//! all — the "75 events posted, 74 found" race cannot happen.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::event::Event;
use crate::store::{Store, StoreError};

/// Commands queued before this many are taken make writers wait (back pressure).
const CHANNEL: usize = 1024;

enum Command {
    Write(Vec<Event>),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// The writer stopped (the service is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the write buffer is closed: the service is shutting down")]
pub struct Closed;

/// A flush failed: the events stay buffered and are retried.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error(transparent)]
    Closed(#[from] Closed),
    #[error("flushing buffered events failed: {0}")]
    Store(String),
}

/// The handle the HTTP handlers use.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

/// What the writer reports when it fails to flush (the binary logs it).
pub type OnError = Box<dyn Fn(&StoreError, usize) + Send + Sync>;

impl Writer {
    /// Starts the writer task. Dropping every [`Writer`] handle makes it
    /// flush what it holds and end; await the handle to wait for that.
    pub fn spawn(
        store: Store,
        flush_events: usize,
        flush_interval: Duration,
        on_error: OnError,
    ) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let task = tokio::spawn(run(store, rx, flush_events, flush_interval, on_error));
        (Writer { tx }, task)
    }

    /// Buffers `events`. Once this returns they are acknowledged: every
    /// later [`Writer::flush`] stores them first.
    pub async fn write(&self, events: Vec<Event>) -> Result<(), Closed> {
        self.tx
            .send(Command::Write(events))
            .await
            .map_err(|_| Closed)
    }

    /// Stores every event acknowledged so far.
    pub async fn flush(&self) -> Result<(), FlushError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Flush(reply))
            .await
            .map_err(|_| Closed)?;
        answer.await.map_err(|_| Closed)?.map_err(FlushError::Store)
    }
}

struct Buffer {
    events: Vec<Event>,
    /// When to flush even if the buffer is not full.
    deadline: Option<Instant>,
}

async fn flush(
    store: &Store,
    buf: &mut Buffer,
    interval: Duration,
    on_error: &OnError,
) -> Result<(), String> {
    if buf.events.is_empty() {
        return Ok(());
    }
    match store.insert(&buf.events).await {
        Ok(_) => {
            buf.events.clear();
            buf.deadline = None;
            Ok(())
        }
        Err(e) => {
            on_error(&e, buf.events.len());
            // Keep the events and try again after another interval.
            buf.deadline = Some(Instant::now() + interval);
            Err(error_chain(&e))
        }
    }
}

/// `e` and its causes, joined by ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Command>,
    flush_events: usize,
    interval: Duration,
    on_error: OnError,
) {
    let mut buf = Buffer {
        events: Vec::new(),
        deadline: None,
    };
    loop {
        let deadline = buf.deadline;
        tokio::select! {
            command = rx.recv() => match command {
                Some(Command::Write(events)) => {
                    buf.deadline.get_or_insert_with(|| Instant::now() + interval);
                    buf.events.extend(events);
                    if buf.events.len() >= flush_events {
                        let _ = flush(&store, &mut buf, interval, &on_error).await;
                    }
                }
                Some(Command::Flush(reply)) => {
                    let _ = reply.send(flush(&store, &mut buf, interval, &on_error).await);
                }
                None => {
                    // Shutting down: one last try for what was acknowledged.
                    let _ = flush(&store, &mut buf, interval, &on_error).await;
                    return;
                }
            },
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let _ = flush(&store, &mut buf, interval, &on_error).await;
            }
        }
    }
}
