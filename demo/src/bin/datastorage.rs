//! DataStorage: the audit-event service of the demo stack.
//!
//! Exits 2 on bad configuration, 1 when PostgreSQL cannot be reached within
//! `DATASTORAGE_DB_CONNECT_TIMEOUT` or the schema is missing, each with a
//! message that says what to fix.

use std::process::ExitCode;
use std::time::Duration;

use harness_demo::config::Config;
use harness_demo::store::{Store, StoreError};
use harness_demo::writer::{Writer, error_chain};
use tokio::time::Instant;

fn main() -> ExitCode {
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("datastorage: error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("datastorage: error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let db = &config.db;
    let store = Store::new(db.pg_config()).map_err(|e| error_chain(&e))?;
    // PostgreSQL may still be starting: retry the first connection until the
    // deadline. A missing schema will not fix itself, so it ends at once.
    let deadline = Instant::now() + config.connect_timeout;
    loop {
        match store.check().await {
            Ok(()) => break,
            Err(e @ StoreError::SchemaMissing { .. }) => return Err(e.to_string()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "cannot reach PostgreSQL at {}:{} (database {:?}, user {:?}) within {}: {}; check DATASTORAGE_DB_* and that the postgresql component is ready",
                    db.host,
                    db.port,
                    db.name,
                    db.user,
                    humantime::format_duration(config.connect_timeout),
                    error_chain(&e)
                ));
            }
            Err(e) => {
                eprintln!("datastorage: waiting for PostgreSQL: {}", error_chain(&e));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    let (writer, writer_task) = Writer::spawn(
        store.clone(),
        config.flush_events,
        config.flush_interval,
        Box::new(|e, n| {
            eprintln!(
                "datastorage: flushing {n} events failed (kept, will retry): {}",
                error_chain(e)
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; set DATASTORAGE_LISTEN",
                config.listen
            )
        })?;
    eprintln!(
        "datastorage: listening on {} (flush at {} events or {})",
        config.listen,
        config.flush_events,
        humantime::format_duration(config.flush_interval)
    );
    axum::serve(listener, harness_demo::api::router(store, writer))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| format!("serving HTTP failed: {e}"))?;
    // The router (and its writer handles) is gone: the writer flushes and ends.
    writer_task
        .await
        .map_err(|e| format!("the write buffer task failed: {e}"))?;
    eprintln!("datastorage: stopped");
    Ok(())
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
