//! Audit events as the API sees them, and the pure checks on them.
//!
//! Validation happens before an event enters the write buffer, so that a
//! `202 Accepted` always means "this event will be stored": the buffer never
//! holds an event the database would reject for its shape.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest accepted `correlation_id`, `event_type` or `actor`.
pub const MAX_FIELD_LEN: usize = 256;
/// Most events accepted in one batch request.
pub const MAX_BATCH: usize = 1000;
/// Default page size of a query.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size of a query.
pub const MAX_LIMIT: i64 = 1000;

/// An event as posted by a client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// Client-chosen id, making retries idempotent; generated when absent.
    pub event_id: Option<Uuid>,
    pub correlation_id: String,
    pub event_type: String,
    pub actor: Option<String>,
    pub payload: Option<serde_json::Value>,
}

/// A validated event, ready for the buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    pub correlation_id: String,
    pub event_type: String,
    pub actor: Option<String>,
    pub payload: serde_json::Value,
}

/// An event as stored and returned by a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event_id: Uuid,
    pub correlation_id: String,
    pub event_type: String,
    pub actor: Option<String>,
    pub payload: serde_json::Value,
    pub occurred_at: String,
}

/// Why an event or a query was rejected (a 400 with this message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    #[error("`{0}` is longer than {MAX_FIELD_LEN} characters")]
    TooLong(&'static str),
    #[error("`{0}` must not contain a NUL character")]
    Nul(&'static str),
    #[error("`payload` must be a JSON object")]
    Payload,
    #[error("a batch holds 1 to {MAX_BATCH} events, not {0}")]
    BatchSize(usize),
    #[error("`limit` must be between 1 and {MAX_LIMIT}, not {0}")]
    Limit(i64),
    #[error("`offset` must not be negative, not {0}")]
    Offset(i64),
}

fn field(name: &'static str, value: String) -> Result<String, Invalid> {
    if value.trim().is_empty() {
        Err(Invalid::Empty(name))
    } else if value.contains('\0') {
        Err(Invalid::Nul(name))
    } else if value.chars().count() > MAX_FIELD_LEN {
        Err(Invalid::TooLong(name))
    } else {
        Ok(value)
    }
}

fn has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

impl NewEvent {
    /// Validates the event and fills in its id.
    pub fn validate(self) -> Result<Event, Invalid> {
        let payload = match self.payload {
            None => serde_json::Value::Object(Default::default()),
            Some(p @ serde_json::Value::Object(_)) => p,
            Some(_) => return Err(Invalid::Payload),
        };
        // PostgreSQL stores no NUL in text nor in jsonb strings: refuse it
        // here, or one such event would fail the flush of a whole buffer.
        if has_nul(&payload) {
            return Err(Invalid::Nul("payload"));
        }
        Ok(Event {
            event_id: self.event_id.unwrap_or_else(Uuid::new_v4),
            correlation_id: field("correlation_id", self.correlation_id)?,
            event_type: field("event_type", self.event_type)?,
            actor: self.actor.map(|a| field("actor", a)).transpose()?,
            payload,
        })
    }
}

/// Validates a batch: all of it or none of it is accepted.
pub fn validate_batch(events: Vec<NewEvent>) -> Result<Vec<Event>, Invalid> {
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(Invalid::BatchSize(events.len()));
    }
    events.into_iter().map(NewEvent::validate).collect()
}

/// The query string of `GET /api/v1/audit/events`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    pub correlation_id: Option<String>,
    pub event_type: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A validated query: filters (empty ones dropped) and a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub correlation_id: Option<String>,
    pub event_type: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

impl QueryParams {
    pub fn validate(self) -> Result<Query, Invalid> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Invalid::Limit(limit));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            return Err(Invalid::Offset(offset));
        }
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(Query {
            correlation_id: nonempty(self.correlation_id),
            event_type: nonempty(self.event_type),
            limit,
            offset,
        })
    }
}

/// The pagination block of a query's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// Events matching the filters, over all pages.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

impl Pagination {
    pub fn new(total: i64, query: &Query) -> Self {
        Pagination {
            total,
            limit: query.limit,
            offset: query.offset,
            has_more: query.offset.saturating_add(query.limit) < total,
        }
    }
}

/// The answer of a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub data: Vec<StoredEvent>,
    pub pagination: Pagination,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new(v: serde_json::Value) -> Result<Event, Invalid> {
        serde_json::from_value::<NewEvent>(v).unwrap().validate()
    }

    #[test]
    fn events_are_validated() {
        let ok = json!({"correlation_id": "c", "event_type": "t"});
        let e = new(ok).unwrap();
        assert_eq!(e.payload, json!({}));
        assert_eq!(e.event_id.get_version_num(), 4);
        let id = "5f0c6c1e-8f7e-4c59-9d43-2b1c1f0a9e11";
        let e = new(
            json!({"event_id": id, "correlation_id": "c", "event_type": "t", "actor": "me",
            "payload": {"k": 1}}),
        )
        .unwrap();
        assert_eq!(e.event_id.to_string(), id);
        assert_eq!(e.actor.as_deref(), Some("me"));

        let cases = [
            (
                json!({"correlation_id": " ", "event_type": "t"}),
                Invalid::Empty("correlation_id"),
            ),
            (
                json!({"correlation_id": "c", "event_type": ""}),
                Invalid::Empty("event_type"),
            ),
            (
                json!({"correlation_id": "c", "event_type": "t", "actor": ""}),
                Invalid::Empty("actor"),
            ),
            (
                json!({"correlation_id": "x".repeat(257), "event_type": "t"}),
                Invalid::TooLong("correlation_id"),
            ),
            (
                json!({"correlation_id": "c", "event_type": "t", "payload": [1]}),
                Invalid::Payload,
            ),
            (
                json!({"correlation_id": "c\0", "event_type": "t"}),
                Invalid::Nul("correlation_id"),
            ),
            (
                json!({"correlation_id": "c", "event_type": "t", "payload": {"k": ["a\0"]}}),
                Invalid::Nul("payload"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(new(input.clone()), Err(want), "{input}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r = serde_json::from_value::<NewEvent>(
            json!({"correlation_id": "c", "event_type": "t", "correlation": "x"}),
        );
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("unknown field `correlation`")
        );
    }

    #[test]
    fn batches_are_all_or_nothing() {
        let ev = |c: &str| {
            serde_json::from_value::<NewEvent>(json!({"correlation_id": c, "event_type": "t"}))
                .unwrap()
        };
        assert_eq!(validate_batch(vec![]), Err(Invalid::BatchSize(0)));
        assert_eq!(
            validate_batch(vec![ev("a"), ev("")]),
            Err(Invalid::Empty("correlation_id"))
        );
        assert_eq!(
            validate_batch(vec![ev("a"); 1001]),
            Err(Invalid::BatchSize(1001))
        );
        assert_eq!(validate_batch(vec![ev("a"), ev("b")]).unwrap().len(), 2);
    }

    #[test]
    fn queries_and_pagination() {
        let q = |limit, offset| {
            QueryParams {
                limit,
                offset,
                ..Default::default()
            }
            .validate()
        };
        assert_eq!(
            q(None, None).map(|q| (q.limit, q.offset)),
            Ok((DEFAULT_LIMIT, 0))
        );
        assert_eq!(q(Some(0), None), Err(Invalid::Limit(0)));
        assert_eq!(q(Some(1001), None), Err(Invalid::Limit(1001)));
        assert_eq!(q(None, Some(-1)), Err(Invalid::Offset(-1)));
        let empty = QueryParams {
            correlation_id: Some(String::new()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(empty.correlation_id, None);
        // (total, limit, offset) -> has_more
        for (total, limit, offset, more) in [
            (75, 20, 0, true),
            (75, 20, 60, false),
            (75, 25, 50, false),
            (0, 50, 0, false),
            (76, 25, 50, true),
        ] {
            let query = q(Some(limit), Some(offset)).unwrap();
            assert_eq!(
                Pagination::new(total, &query).has_more,
                more,
                "{total} {limit} {offset}"
            );
        }
    }
}
