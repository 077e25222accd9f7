//! `POST /v1/events`: the webhook intake.
//!
//! Order of checks: content type (415) → body size (413) → signature (401) → JSON syntax (400,
//! with line and column) → each event's envelope and fields (422, naming the field) → the engine
//! (409/422/503). A body is one event object or an array of them; an array is applied in order
//! in one command, and each element gets its own result, so one bad element never blocks the
//! others. A single rejected event answers with the error status itself.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::daemon::core::{Input, Outcome};
use crate::engine::{Decision, Event};

use super::auth::SIGNATURE_HEADER;
use super::error::{ApiError, ErrorBody};
use super::{read_body, require_content_type, AppState};

/// Longest accepted event id.
pub const MAX_EVENT_ID_LEN: usize = 256;

/// One event's result.
#[derive(Debug, Serialize)]
pub struct EventResult {
    pub id: String,
    /// `applied`, `duplicate` or `rejected`.
    pub status: &'static str,
    /// Decisions this event caused (timer decisions go to the decision feed only).
    pub decisions: Vec<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Serialize)]
pub struct EventsResponse {
    pub results: Vec<EventResult>,
}

pub async fn post_events(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_content_type(&headers, &["application/json"])?;
    let bytes = read_body(body, &headers, app.body_limit).await?;
    let signature = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    app.auth()
        .verify_signature(signature, &bytes, app.clock.now_s())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::malformed_json(&e))?;
    match value {
        Value::Array(items) => post_batch(&app, items).await,
        Value::Object(map) => post_single(&app, map).await,
        _ => Err(ApiError::bad_request(
            "invalid_body",
            "the body must be one event object or an array of event objects",
        )),
    }
}

async fn post_single(app: &AppState, map: Map<String, Value>) -> Result<Response, ApiError> {
    let (id, event) = parse_envelope(Value::Object(map), None)?;
    let mut outcomes = app
        .engine
        .apply(vec![Input::Event {
            id: id.clone(),
            event,
        }])
        .await?;
    let outcome = outcomes.pop().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the engine returned no outcome",
        )
    })?;
    let result = match outcome {
        Outcome::Rejected(e) => return Err(ApiError::from_engine(&e, Some(&id))),
        other => result_of(id, other),
    };
    Ok(Json(EventsResponse {
        results: vec![result],
    })
    .into_response())
}

async fn post_batch(app: &AppState, items: Vec<Value>) -> Result<Response, ApiError> {
    if items.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_batch",
            "the event array is empty",
        ));
    }
    // Parse every element; send the valid ones in one command, keep the failures in place.
    let mut slots: Vec<Result<String, EventResult>> = Vec::with_capacity(items.len());
    let mut inputs = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let id_hint = item
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_default();
        match parse_envelope(item, Some(index)) {
            Ok((id, event)) => {
                slots.push(Ok(id.clone()));
                inputs.push(Input::Event { id, event });
            }
            Err(e) => slots.push(Err(EventResult {
                id: id_hint,
                status: "rejected",
                decisions: Vec::new(),
                error: Some(e.body),
            })),
        }
    }
    let mut outcomes = if inputs.is_empty() {
        Vec::new()
    } else {
        app.engine.apply(inputs).await?
    }
    .into_iter();
    let mut results = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Err(result) => results.push(result),
            Ok(id) => match outcomes.next() {
                Some(outcome) => results.push(result_of(id, outcome)),
                None => {
                    return Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "the engine returned fewer outcomes than events",
                    ))
                }
            },
        }
    }
    Ok(Json(EventsResponse { results }).into_response())
}

fn result_of(id: String, outcome: Outcome) -> EventResult {
    match outcome {
        Outcome::Applied(decisions) => EventResult {
            id,
            status: "applied",
            decisions,
            error: None,
        },
        Outcome::Duplicate => EventResult {
            id,
            status: "duplicate",
            decisions: Vec::new(),
            error: None,
        },
        Outcome::Rejected(e) => {
            let body = ApiError::from_engine(&e, Some(&id)).body;
            EventResult {
                id,
                status: "rejected",
                decisions: Vec::new(),
                error: Some(body),
            }
        }
        Outcome::ConfigRefused(problems) => EventResult {
            id,
            status: "rejected",
            decisions: Vec::new(),
            error: Some(ApiError::invalid_config(problems).body),
        },
    }
}

/// Split an event object into its envelope id and the engine `Event` (422 on any problem).
pub fn parse_envelope(value: Value, index: Option<usize>) -> Result<(String, Event), ApiError> {
    let at = match index {
        Some(i) => format!("event [{i}]"),
        None => "the event".to_string(),
    };
    let Value::Object(mut map) = value else {
        return Err(ApiError::unprocessable(
            "invalid_event",
            format!("{at} is not a JSON object"),
        ));
    };
    let id = match map.remove("id") {
        None => {
            return Err(ApiError::unprocessable(
                "missing_id",
                format!("{at} has no `id` (every event needs a unique id, the idempotency key)"),
            ))
        }
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_EVENT_ID_LEN => s,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_id",
                format!(
                    "{at}: `id` must be a non-empty string of at most {MAX_EVENT_ID_LEN} bytes"
                ),
            ))
        }
    };
    let event: Event = serde_json::from_value(Value::Object(map)).map_err(|e| {
        let message = e.to_string();
        let code = if message.starts_with("unknown field") {
            "unknown_field"
        } else if message.starts_with("unknown variant") {
            "unknown_type"
        } else if message.starts_with("missing field") {
            "missing_field"
        } else {
            "invalid_field"
        };
        ApiError::unprocessable(code, format!("event `{id}`: {message}"))
    })?;
    Ok((id, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_envelope_id_is_split_from_the_event() {
        let (id, event) = parse_envelope(
            json!({"id": "e1", "type": "agent.logout", "agent": "a1"}),
            None,
        )
        .unwrap();
        assert_eq!(id, "e1");
        assert_eq!(event, Event::AgentLogout { agent: "a1".into() });
    }

    #[test]
    fn a_typo_in_a_field_is_a_422_naming_the_field() {
        let err = parse_envelope(
            json!({"id": "e1", "type": "agent.logout", "agent": "a1", "agnet": "x"}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.body.code, "unknown_field");
        assert!(err.body.message.contains("`agnet`"), "{}", err.body.message);
        assert!(err.body.message.starts_with("event `e1`:"));
    }

    #[test]
    fn an_unknown_type_and_a_missing_field_have_their_own_codes() {
        let err = parse_envelope(json!({"id": "e1", "type": "agent.dance"}), None).unwrap_err();
        assert_eq!(err.body.code, "unknown_type");
        let err = parse_envelope(json!({"id": "e1", "type": "agent.logout"}), None).unwrap_err();
        assert_eq!(err.body.code, "missing_field");
        assert!(err.body.message.contains("`agent`"));
        let err = parse_envelope(
            json!({"id": "e1", "type": "interaction.rated", "interaction": "c", "score": "five"}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.body.code, "invalid_field");
    }

    #[test]
    fn an_event_without_a_usable_id_is_refused() {
        let err =
            parse_envelope(json!({"type": "agent.logout", "agent": "a1"}), Some(3)).unwrap_err();
        assert_eq!(err.body.code, "missing_id");
        assert!(err.body.message.starts_with("event [3]"));
        let err = parse_envelope(
            json!({"id": 7, "type": "agent.logout", "agent": "a1"}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.body.code, "invalid_id");
        let err = parse_envelope(json!("agent.logout"), None).unwrap_err();
        assert_eq!(err.body.code, "invalid_event");
    }
}
