//! The PostgreSQL side of DataStorage: the schema check, the batched insert
//! and the paginated query. A thin adapter: every decision about what is
//! valid was made in [`crate::event`] before anything reaches here.
//!
//! The table is created by the migrations Job (manifests/migrations-job.yaml);
//! the service never creates it, so a missing migration shows as a failing
//! `/health` and a crash at startup instead of a silently different schema.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::event::{Event, Page, Pagination, Query, StoredEvent};

/// The table every event goes to.
pub const TABLE: &str = "audit_events";

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "table {TABLE} does not exist in database {database:?}: run the migrations first (the audit-migrations Job of manifests/migrations-job.yaml)"
    )]
    SchemaMissing { database: String },
    #[error("cannot get a PostgreSQL connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL query failed")]
    Db(#[from] tokio_postgres::Error),
    #[error("cannot build the connection pool")]
    Build(#[from] deadpool_postgres::BuildError),
}

/// A pool of connections to the audit database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    database: String,
}

impl Store {
    /// A pool over `config`; connects lazily (see [`Store::check`]).
    pub fn new(config: tokio_postgres::Config) -> Result<Self, StoreError> {
        let database = config.get_dbname().unwrap_or_default().to_owned();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection that broke (PostgreSQL restarted) is checked
                // and replaced before use instead of failing one request.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(8)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()?;
        Ok(Store { pool, database })
    }

    /// Connects and checks that the schema is there.
    pub async fn check(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("public.{TABLE}")],
            )
            .await?;
        if row.get::<_, bool>(0) {
            Ok(())
        } else {
            Err(StoreError::SchemaMissing {
                database: self.database.clone(),
            })
        }
    }

    /// Inserts `events` in one statement. Events whose id is already stored
    /// are skipped, so a client's retry of an acknowledged event is harmless.
    pub async fn insert(&self, events: &[Event]) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let correlation: Vec<&str> = events.iter().map(|e| e.correlation_id.as_str()).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let actors: Vec<Option<&str>> = events.iter().map(|e| e.actor.as_deref()).collect();
        let payloads: Vec<&serde_json::Value> = events.iter().map(|e| &e.payload).collect();
        let client = self.pool.get().await?;
        // WITH ORDINALITY keeps the buffer's order in the serial ids, which is
        // the order queries page in.
        let n = client
            .execute(
                "INSERT INTO audit_events (event_id, correlation_id, event_type, actor, payload)
                 SELECT e, c, t, a, p
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
                      WITH ORDINALITY AS u(e, c, t, a, p, n)
                 ORDER BY n
                 ON CONFLICT (event_id) DO NOTHING",
                &[&ids, &correlation, &types, &actors, &payloads],
            )
            .await?;
        Ok(n)
    }

    /// Every event type stored, in name order. Read from the table alone:
    /// events still in the write buffer are not stored yet (only the events
    /// query promises read-your-writes, by flushing first).
    pub async fn event_types(&self) -> Result<Vec<String>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT DISTINCT event_type FROM audit_events ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// One page of the events matching `query`, in the order they were
    /// stored, and the total over all pages (both from one snapshot).
    pub async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        const FILTER: &str =
            "($1::text IS NULL OR correlation_id = $1) AND ($2::text IS NULL OR event_type = $2)";
        let total: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM audit_events WHERE {FILTER}"),
                &[&query.correlation_id, &query.event_type],
            )
            .await?
            .get(0);
        let rows = tx
            .query(
                &format!(
                    "SELECT event_id, correlation_id, event_type, actor, payload,
                            to_json(occurred_at) #>> '{{}}'
                     FROM audit_events WHERE {FILTER} ORDER BY id LIMIT $3 OFFSET $4"
                ),
                &[
                    &query.correlation_id,
                    &query.event_type,
                    &query.limit,
                    &query.offset,
                ],
            )
            .await?;
        tx.commit().await?;
        let data = rows
            .iter()
            .map(|r| StoredEvent {
                event_id: r.get(0),
                correlation_id: r.get(1),
                event_type: r.get(2),
                actor: r.get(3),
                payload: r.get(4),
                occurred_at: r.get(5),
            })
            .collect();
        Ok(Page {
            data,
            pagination: Pagination::new(total, query),
        })
    }
}
