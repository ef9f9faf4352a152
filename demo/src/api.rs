//! DataStorage's HTTP API (axum): `/health`, the audit-event endpoints and
//! the list of event types stored.
//!
//! Handlers only translate: validate with [`crate::event`], hand writes to
//! the [`Writer`], flush-then-read for queries. Every error answer is JSON
//! `{"error": "..."}` with a message that says what to change.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::event::{self, Invalid, NewEvent, QueryParams};
use crate::store::Store;
use crate::writer::{FlushError, Writer, error_chain};

#[derive(Clone)]
struct AppState {
    store: Store,
    writer: Writer,
}

/// The service's routes over `store`, writing through `writer`.
pub fn router(store: Store, writer: Writer) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/audit/events", get(query).post(post_one))
        .route(
            "/api/v1/audit/events/batch",
            axum::routing::post(post_batch),
        )
        .route("/api/v1/audit/event-types", get(event_types))
        .with_state(AppState { store, writer })
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn bad_request(e: Invalid) -> Response {
    error(StatusCode::BAD_REQUEST, e.to_string())
}

fn unavailable(e: &dyn std::error::Error) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, error_chain(e))
}

/// 200 when PostgreSQL answers and the schema is there; 503 with the reason
/// otherwise, so the readiness probe (and the harness) can say why.
async fn health(State(s): State<AppState>) -> Response {
    match s.store.check().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": error_chain(&e)})),
        )
            .into_response(),
    }
}

async fn post_one(
    State(s): State<AppState>,
    body: Result<Json<NewEvent>, JsonRejection>,
) -> Response {
    let Json(new) = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), e.body_text()),
    };
    let event = match new.validate() {
        Ok(e) => e,
        Err(e) => return bad_request(e),
    };
    let id = event.event_id;
    match s.writer.write(vec![event]).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({"event_id": id, "status": "accepted"})),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn post_batch(
    State(s): State<AppState>,
    body: Result<Json<Vec<NewEvent>>, JsonRejection>,
) -> Response {
    let Json(batch) = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), e.body_text()),
    };
    let events = match event::validate_batch(batch) {
        Ok(e) => e,
        Err(e) => return bad_request(e),
    };
    let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
    match s.writer.write(events).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({"accepted": ids.len(), "event_ids": ids})),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

/// The event types stored so far (`{"event_types": [...]}`). A summary
/// for dashboards: it does not flush the write buffer, so a type whose
/// first events were acknowledged a moment ago may not be listed yet.
async fn event_types(State(s): State<AppState>) -> Response {
    match s.store.event_types().await {
        Ok(types) => Json(json!({"event_types": types})).into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn query(
    State(s): State<AppState>,
    params: Result<Query<QueryParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => return error(e.status(), e.body_text()),
    };
    let query = match params.validate() {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    // Read-your-writes: store everything acknowledged before this query.
    if let Err(e) = s.writer.flush().await {
        return match e {
            FlushError::Closed(c) => unavailable(&c),
            FlushError::Store(msg) => error(StatusCode::SERVICE_UNAVAILABLE, msg),
        };
    }
    match s.store.query(&query).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => unavailable(&e),
    }
}
