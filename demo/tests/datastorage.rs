//! DataStorage against a real PostgreSQL (scripts/test-postgres starts one
//! and scripts/test exports its URL as HARNESS_TEST_DATABASE_URL).
//!
//! Each test gets its own database with the schema taken from the
//! migrations ConfigMap of manifests/migrations-job.yaml, so the tests run
//! against exactly what the cluster's migrations Job creates. Without a
//! database these tests fail when HARNESS_REQUIRE_ENGINE=1 (CI) and are
//! skipped with a notice otherwise.

use std::collections::HashSet;
use std::future::IntoFuture;
use std::process::Command;
use std::time::Duration;

use harness_demo::event::Page;
use harness_demo::store::Store;
use harness_demo::writer::Writer;
use serde_json::{Value, json};

fn admin_url() -> Option<String> {
    match std::env::var("HARNESS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("HARNESS_REQUIRE_ENGINE").as_deref() != Ok("1"),
                "a PostgreSQL is required (HARNESS_REQUIRE_ENGINE=1): export HARNESS_TEST_DATABASE_URL=$(scripts/test-postgres)"
            );
            eprintln!(
                "skipped: HARNESS_TEST_DATABASE_URL is not set (export HARNESS_TEST_DATABASE_URL=$(scripts/test-postgres))"
            );
            None
        }
    }
}

/// The SQL files of the `audit-schema` ConfigMap, in name order.
fn schema_sql() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../manifests/migrations-job.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "audit-schema")
        .expect("the audit-schema ConfigMap");
    let mut files: Vec<(&String, &Value)> = cm["data"].as_object().unwrap().iter().collect();
    files.sort_by_key(|(name, _)| *name);
    files
        .into_iter()
        .map(|(_, sql)| sql.as_str().unwrap().to_owned())
        .collect()
}

async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// A fresh database of its own, with or without the schema.
async fn fresh_db(admin: &str, schema: bool) -> tokio_postgres::Config {
    let admin: tokio_postgres::Config = admin.parse().unwrap();
    let name = format!("audit_{}", uuid::Uuid::new_v4().simple());
    connect(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut config = admin.clone();
    config.dbname(&name);
    if schema {
        apply_schema(&config).await;
    }
    config
}

async fn apply_schema(config: &tokio_postgres::Config) {
    let client = connect(config).await;
    for sql in schema_sql() {
        client.batch_execute(&sql).await.unwrap();
    }
}

/// Serves DataStorage on a free loopback port; returns its base URL.
async fn serve(
    config: &tokio_postgres::Config,
    flush_events: usize,
    flush_interval: Duration,
) -> String {
    let store = Store::new(config.clone()).unwrap();
    let (writer, _task) = Writer::spawn(
        store.clone(),
        flush_events,
        flush_interval,
        Box::new(|_, _| {}),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, harness_demo::api::router(store, writer)).into_future());
    format!("http://{addr}")
}

fn event(correlation: &str, kind: &str, n: usize) -> Value {
    json!({"correlation_id": correlation, "event_type": kind, "actor": "test", "payload": {"n": n}})
}

async fn page(http: &reqwest::Client, base: &str, query: &str) -> Page {
    let r = http
        .get(format!("{base}/api/v1/audit/events?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{query}: {}", r.text().await.unwrap());
    r.json().await.unwrap()
}

async fn count_rows(config: &tokio_postgres::Config) -> i64 {
    connect(config)
        .await
        .query_one("SELECT count(*) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn seventy_five_events_posted_seventy_five_found() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, true).await;
    // The production threshold (100 events) and an interval no test outlives:
    // every acknowledged event is still in the buffer when the query comes,
    // so only the flush-before-read makes them visible.
    let base = serve(&db, 100, Duration::from_secs(3600)).await;
    let http = reqwest::Client::new();
    let mut posted = Vec::new();
    for n in 0..75 {
        let r = http
            .post(format!("{base}/api/v1/audit/events"))
            .json(&event("rr-75", "t", n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let body: Value = r.json().await.unwrap();
        posted.push(body["event_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        count_rows(&db).await,
        0,
        "nothing is flushed before the query"
    );
    let mut seen = Vec::new();
    for offset in (0..100).step_by(20) {
        let p = page(
            &http,
            &base,
            &format!("correlation_id=rr-75&limit=20&offset={offset}"),
        )
        .await;
        assert_eq!(p.pagination.total, 75, "offset {offset}");
        assert_eq!(p.pagination.has_more, offset + 20 < 75, "offset {offset}");
        assert_eq!(p.data.len(), 20.min(75usize.saturating_sub(offset)));
        seen.extend(p.data.iter().map(|e| e.event_id.to_string()));
    }
    assert_eq!(
        seen, posted,
        "every event exactly once, in the order posted"
    );
    assert_eq!(count_rows(&db).await, 75);
}

#[tokio::test]
async fn a_batch_is_stored_whole_and_in_order() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, true).await;
    let base = serve(&db, 100, Duration::from_secs(3600)).await;
    let http = reqwest::Client::new();
    let batch: Vec<Value> = (0..250).map(|n| event("batch", "t", n)).collect();
    let r = http
        .post(format!("{base}/api/v1/audit/events/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 250);
    let p = page(&http, &base, "correlation_id=batch&limit=1000").await;
    let ids: Vec<String> = p.data.iter().map(|e| e.event_id.to_string()).collect();
    let want: Vec<String> = body["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, want);
    let ns: Vec<i64> = p
        .data
        .iter()
        .map(|e| e.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, (0..250).collect::<Vec<_>>());
    // A batch with one bad event is refused whole.
    let bad = json!([event("batch", "t", 1), {"correlation_id": "", "event_type": "t"}]);
    let r = http
        .post(format!("{base}/api/v1/audit/events/batch"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "`correlation_id` must not be empty");
    assert_eq!(
        page(&http, &base, "correlation_id=batch&limit=1")
            .await
            .pagination
            .total,
        250
    );
}

#[tokio::test]
async fn reposting_an_event_id_stores_it_once() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, true).await;
    let base = serve(&db, 100, Duration::from_secs(3600)).await;
    let http = reqwest::Client::new();
    let mut e = event("retry", "t", 0);
    e["event_id"] = json!("5f0c6c1e-8f7e-4c59-9d43-2b1c1f0a9e11");
    for _ in 0..3 {
        let r = http
            .post(format!("{base}/api/v1/audit/events"))
            .json(&e)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    assert_eq!(
        page(&http, &base, "correlation_id=retry")
            .await
            .pagination
            .total,
        1
    );
}

#[tokio::test]
async fn filters_and_pagination_totals() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, true).await;
    let base = serve(&db, 100, Duration::from_secs(3600)).await;
    let http = reqwest::Client::new();
    // a: 7 created + 3 deleted; b: 5 created.
    let mut batch = Vec::new();
    batch.extend((0..7).map(|n| event("a", "created", n)));
    batch.extend((0..3).map(|n| event("a", "deleted", n)));
    batch.extend((0..5).map(|n| event("b", "created", n)));
    let r = http
        .post(format!("{base}/api/v1/audit/events/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    for (query, total, len, more) in [
        ("", 15, 15, false),
        ("limit=4", 15, 4, true),
        ("correlation_id=a", 10, 10, false),
        ("correlation_id=a&event_type=deleted", 3, 3, false),
        ("event_type=created", 12, 12, false),
        ("event_type=created&limit=5&offset=10", 12, 2, false),
        ("correlation_id=b&offset=5", 5, 0, false),
        ("correlation_id=nobody", 0, 0, false),
        ("correlation_id=&event_type=deleted", 3, 3, false),
    ] {
        let p = page(&http, &base, query).await;
        assert_eq!(
            (p.pagination.total, p.data.len(), p.pagination.has_more),
            (total, len, more),
            "{query}"
        );
    }
    let p = page(&http, &base, "correlation_id=a&event_type=deleted").await;
    assert!(
        p.data
            .iter()
            .all(|e| e.correlation_id == "a" && e.event_type == "deleted")
    );
    for (query, message) in [
        ("limit=0", "`limit` must be between 1 and 1000, not 0"),
        ("offset=-1", "`offset` must not be negative, not -1"),
    ] {
        let r = http
            .get(format!("{base}/api/v1/audit/events?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], message);
    }
    let r = http
        .get(format!("{base}/api/v1/audit/events?limit=many"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn health_fails_while_the_schema_is_missing() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, false).await;
    let base = serve(&db, 100, Duration::from_secs(1)).await;
    let http = reqwest::Client::new();
    let r = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("table audit_events does not exist in database \"audit_"),
        "{error}"
    );
    assert!(error.contains("run the migrations first"), "{error}");
    apply_schema(&db).await;
    let r = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

fn datastorage(db: &tokio_postgres::Config, extra: &[(&str, &str)]) -> Command {
    let host = match &db.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("HARNESS_TEST_DATABASE_URL must name a TCP host, not {other:?}"),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_datastorage"));
    cmd.env_clear()
        .env("DATASTORAGE_LISTEN", "127.0.0.1:0")
        .env("DATASTORAGE_DB_HOST", host)
        .env("DATASTORAGE_DB_PORT", db.get_ports()[0].to_string())
        .env("DATASTORAGE_DB_USER", db.get_user().unwrap())
        .env("DATASTORAGE_DB_PASSWORD", "unused-trust-auth")
        .env("DATASTORAGE_DB_NAME", db.get_dbname().unwrap())
        .envs(extra.iter().copied());
    cmd
}

#[tokio::test]
async fn startup_crashes_with_a_clear_message_without_the_schema() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, false).await;
    let out = datastorage(&db, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("datastorage: error: table audit_events does not exist in database")
            && stderr.contains("run the migrations first (the audit-migrations Job of manifests/migrations-job.yaml)"),
        "{stderr}"
    );
    // An unreachable database: retried until the deadline, then a clear error.
    let out = datastorage(
        &db,
        &[
            ("DATASTORAGE_DB_PORT", "1"),
            ("DATASTORAGE_DB_CONNECT_TIMEOUT", "1s"),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("datastorage: error: cannot reach PostgreSQL at 127.0.0.1:1"),
        "{stderr}"
    );
    // Bad configuration: exit 2, naming the variable.
    let out = datastorage(&db, &[("DATASTORAGE_FLUSH_EVENTS", "none")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("DATASTORAGE_FLUSH_EVENTS=\"none\" is invalid")
    );
}

#[tokio::test]
async fn many_concurrent_writers_lose_nothing() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, true).await;
    // A short interval, so size and time flushes race with the queries.
    let base = serve(&db, 100, Duration::from_millis(20)).await;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..40 {
                let r = http
                    .post(format!("{base}/api/v1/audit/events"))
                    .json(&event("load", "t", w * 100 + n))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                ids.push(
                    r.json::<Value>().await.unwrap()["event_id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
                // Each writer reads its own writes at once.
                let p = page(&http, &base, "correlation_id=load&limit=1000").await;
                let stored: HashSet<String> =
                    p.data.iter().map(|e| e.event_id.to_string()).collect();
                assert!(
                    ids.iter().all(|id| stored.contains(id)),
                    "writer {w} lost an acknowledged event"
                );
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), 320);
    assert_eq!(
        page(&http, &base, "correlation_id=load&limit=1")
            .await
            .pagination
            .total,
        320
    );
}

#[tokio::test]
async fn sigterm_stores_the_buffered_events_before_exiting() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, true).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::from(datastorage(
        &db,
        &[
            ("DATASTORAGE_LISTEN", listen.as_str()),
            ("DATASTORAGE_FLUSH_INTERVAL", "1h"),
        ],
    ))
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "datastorage did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 0..3 {
        let r = http
            .post(format!("{base}/api/v1/audit/events"))
            .json(&event("term", "t", n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    assert_eq!(count_rows(&db).await, 0, "still buffered");
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        count_rows(&db).await,
        3,
        "acknowledged events are stored on shutdown"
    );
}

/// The event types are read from what is stored: a type whose only event
/// is still in the write buffer is not listed until a flush (a query of the
/// events flushes first). The demo's `types` suite races this on purpose.
#[tokio::test]
async fn event_types_list_what_is_stored_not_what_is_buffered() {
    let Some(admin) = admin_url() else { return };
    let db = fresh_db(&admin, true).await;
    let base = serve(&db, 100, Duration::from_secs(3600)).await;
    let http = reqwest::Client::new();
    let types = |http: reqwest::Client, base: String| async move {
        let r = http
            .get(format!("{base}/api/v1/audit/event-types"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["event_types"].clone()
    };
    let r = http
        .post(format!("{base}/api/v1/audit/events"))
        .json(&event("types-1", "demo.race", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        types(http.clone(), base.clone()).await,
        json!([]),
        "buffered, not stored"
    );
    page(&http, &base, "correlation_id=types-1").await;
    assert_eq!(
        types(http.clone(), base.clone()).await,
        json!(["demo.race"])
    );
}
