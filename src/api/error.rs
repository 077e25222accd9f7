//! The API's error answers: every error is `{"error":{"code":"…","message":"…"}}` with the right
//! status, and config problems add `"problems":[{line, column, field, message}]`.
//!
//! Messages say what was wrong and where (event id, field, line and column) but never echo a
//! secret or say which part of a signature failed beyond a coarse reason.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::daemon::decision_log::FeedError;
use crate::daemon::task::SubmitError;
use crate::engine::event::{Named, Printable, MAX_ID_LEN};
use crate::engine::{EngineError, ErrorClass};

/// Seconds a client should wait after a 503 before retrying.
pub const RETRY_AFTER_S: u64 = 1;

/// The `error` object of an error body (also used inside per-event results).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub code: Cow<'static, str>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<ConfigError>>,
    /// 410 `decisions_gone` and 409 `decisions_ahead`: the `after` to resume the feed from, so
    /// a reader that resumes by itself need not parse the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<u64>,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    pub retry_after_s: Option<u64>,
    /// A 401 on a token-protected endpoint: the schemes it takes, for its `WWW-Authenticate`
    /// challenge (`Schemes::challenge`).
    pub challenge: Option<crate::api::auth::Schemes>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> ApiError {
        let message = message.into();
        // Whatever the request carried, the answer stays small: a quoted echo of it longer than
        // any id is cut to its length and start (`cut_echoes`), wherever the message quotes it.
        let message = if message.len() > MAX_ID_LEN {
            cut_echoes(&message)
        } else {
            message
        };
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message,
                problems: None,
                resume_after: None,
            },
            retry_after_s: None,
            challenge: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        e.retry_after_s = Some(RETRY_AFTER_S);
        e
    }

    /// A JSON body with nothing in it but white space (`strict_json::from_slice` says so before
    /// parsing: serde_json would put its end at column 0, where every other message counts
    /// from 1).
    pub fn empty_json() -> ApiError {
        ApiError::bad_request(
            "malformed_json",
            "malformed JSON: the body is empty (expected a JSON value)",
        )
    }

    /// Malformed JSON, with line and column.
    pub fn malformed_json(e: &serde_json::Error) -> ApiError {
        if e.to_string().starts_with("recursion limit exceeded") {
            // serde_json's reader stops at 128 levels: valid JSON, but not a body tierline takes.
            return ApiError::bad_request(
                "too_deeply_nested",
                format!(
                    "the JSON nests arrays and objects more than {depth} levels deep (at line \
                     {}, column {}): no tierline body nests more than a few levels, and the \
                     reader stops at {depth}",
                    e.line(),
                    e.column(),
                    depth = crate::api::events::MAX_JSON_DEPTH,
                ),
            );
        }
        ApiError::bad_request(
            "malformed_json",
            format!(
                "malformed JSON at line {}, column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ),
        )
    }

    /// A query string that does not fit the endpoint's parameters: 400 `invalid_query`, naming
    /// the parameter and saying what it takes instead of the query parser's own wording
    /// (`after: invalid digit found in string`).
    pub fn invalid_query(e: &axum::extract::rejection::QueryRejection) -> ApiError {
        ApiError::bad_request("invalid_query", query_message(&e.body_text()))
    }

    /// A config that failed to parse, validate or apply.
    pub fn invalid_config(problems: Vec<ConfigError>) -> ApiError {
        let summary = match problems.as_slice() {
            [one] => one.to_string(),
            many => format!(
                "{} problems in the config; the first: {}",
                many.len(),
                many.first().map(|p| p.to_string()).unwrap_or_default()
            ),
        };
        let mut e = ApiError::unprocessable("invalid_config", summary);
        e.body.problems = Some(problems);
        e
    }

    /// The engine refused an event: 422 (invalid), 409 (conflict) or 503 (limit).
    pub fn from_engine(e: &EngineError, event_id: Option<&str>) -> ApiError {
        let message = match event_id {
            Some(id) => format!("event `{id}`: {e}"),
            None => e.to_string(),
        };
        match e.class() {
            ErrorClass::Invalid => ApiError::unprocessable(e.code(), message),
            ErrorClass::Conflict => ApiError::new(StatusCode::CONFLICT, e.code(), message),
            ErrorClass::Limit => {
                let mut err = ApiError::unavailable("at_capacity", message);
                err.body.code = e.code().into();
                err
            }
        }
    }

    /// 410 `decisions_gone` (behind the kept decisions) or 409 `decisions_ahead` (past the newest).
    pub fn feed(e: &FeedError) -> ApiError {
        let (mut err, resume_after) = match e {
            FeedError::Gone(gone) => (
                ApiError::new(StatusCode::GONE, "decisions_gone", e.to_string()),
                gone.resume_after,
            ),
            FeedError::Ahead(ahead) => (
                ApiError::new(StatusCode::CONFLICT, "decisions_ahead", e.to_string()),
                ahead.newest,
            ),
        };
        err.body.resume_after = Some(resume_after);
        err
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        match e {
            SubmitError::Busy { .. } => ApiError::unavailable("overloaded", e.to_string()),
            SubmitError::Stopped => ApiError::unavailable("shutting_down", e.to_string()),
            SubmitError::Journal(_) => ApiError::unavailable("journal_unavailable", e.to_string()),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Envelope { error: &self.body }).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"unserializable error"}}"#.to_vec()
        });
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge.challenge()),
            );
        }
        response
    }
}

/// Read a JSON object as `T`, or a 422 whose message names the field at fault. serde names the
/// field itself for an unknown field (`unknown_field`) and a missing one (`missing_field`); for
/// a value of the wrong type or out of range (`invalid_field`) it does not, so the field is found
/// here. `tag` is the field that selects the variant of an internally tagged enum: a bad value
/// there is `unknown_type`. `context` starts the message (e.g. "event `e1`: ").
pub fn from_object<T: DeserializeOwned>(
    map: &Map<String, Value>,
    tag: Option<&str>,
    context: &str,
) -> Result<T, ApiError> {
    let err = match T::deserialize(map) {
        Ok(v) => return Ok(v),
        Err(e) => e.to_string(),
    };
    let (code, field) = if err.starts_with("unknown field") {
        ("unknown_field", None)
    } else if err.starts_with("missing field") {
        ("missing_field", None)
    } else {
        match culprit::<T>(map, &err) {
            Some(f) if Some(f) == tag => ("unknown_type", None),
            Some(f) => ("invalid_field", Some(f)),
            None => ("invalid_field", None),
        }
    };
    // In a map (`agent.login`'s `tiers`, `capacity`) or a list (`skills`), the entry at fault.
    let entry = field.and_then(|f| entry_at_fault(map, f));
    let mut err = crate::config::file::plain_words(&cut_echoes(&err));
    // A field narrower than its type says its own range.
    let range = crate::api::events::FIELD_RANGES
        .iter()
        .find(|(name, _)| Some(*name) == field);
    // Only an integer's range: a map's bad key (an unknown channel in `capacity`) keeps its own
    // "expected one of".
    if let (Some((_, range)), Some(at)) = (range, err.find(", expected a whole number")) {
        err = format!("{}, expected {range}", &err[..at]);
    }
    let message = match field {
        Some(f) => format!("{context}{}: {err}", field_named(f, entry.as_ref())),
        None => format!("{context}{err}"),
    };
    Err(ApiError::unprocessable(code, message))
}

/// The first entry of map `field` (`agent.login`'s `tiers` and `capacity`, an arrival's
/// `attributes`) whose key or value its type refuses, or of list `skills` that is no string:
/// the one serde stopped at, as it reads entries in order. Each entry is read on its own, by
/// reference: nothing copied.
fn entry_at_fault(map: &Map<String, Value>, field: &str) -> Option<Entry> {
    use serde::Deserialize;
    if field == "skills" {
        // A list of names: the first that is not a string (`null` is the whole list's).
        let Some(Value::Array(items)) = map.get(field) else {
            return None;
        };
        return items.iter().position(|v| !v.is_string()).map(Entry::Index);
    }
    let Some(Value::Object(entries)) = map.get(field) else {
        return None;
    };
    let bad = |key: &str, value: &Value| match field {
        "tiers" => crate::config::Tier::deserialize(value).is_err(),
        "capacity" => {
            let key = serde::de::value::StrDeserializer::<serde_json::Error>::new(key);
            crate::config::Channel::deserialize(key).is_err() || u32::deserialize(value).is_err()
        }
        "attributes" => String::deserialize(value).is_err(),
        _ => false,
    };
    entries
        .iter()
        .find(|(key, value)| bad(key, value))
        .map(|(key, _)| Entry::Key(key.clone()))
}

/// Which entry of a map or list field is at fault.
pub(crate) enum Entry {
    Key(String),
    Index(usize),
}

/// How an error names field `f`, or its entry: ``field `capacity.chat` ``, ``field `skills[1]` ``,
/// and for a key longer than any id its length and start (the body may hold a 1 MB key).
pub(crate) fn field_named(f: &str, entry: Option<&Entry>) -> String {
    match entry {
        None => format!("field `{f}`"),
        Some(Entry::Index(k)) => format!("field `{f}[{k}]`"),
        Some(Entry::Key(key)) if key.len() <= MAX_ID_LEN => {
            format!("field `{f}.{}`", Printable(key))
        }
        Some(Entry::Key(key)) => format!(
            "field `{f}`, entry of {} bytes (it starts `{}`)",
            key.len(),
            Printable(crate::engine::event::start_of(key))
        ),
    }
}

/// An error with its causes, each said once (`error sending request: … connection refused`):
/// the outer error of hyper or reqwest only says that something failed, its causes what.
pub(crate) fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for err in std::iter::successors(Some(e), |err| err.source()) {
        let text = err.to_string();
        if !parts.iter().any(|said| said.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// serde's message with each text it quotes from the request (``unknown variant `…` ``,
/// `string "…"`) longer than any id cut as `Named` cuts a name, so a 900 KB `type` or `channel`
/// makes a short answer. A double-quoted text is counted as serde escaped it.
fn cut_echoes(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[open];
        let inner_start = open + 1;
        let close = if quote == b'`' {
            rest[inner_start..].find('`')
        } else {
            closing_quote(&rest[inner_start..])
        };
        let Some(len) = close else { break };
        let inner = &rest[inner_start..inner_start + len];
        out.push_str(&rest[..open]);
        if inner.len() > MAX_ID_LEN {
            out.push_str(&Named(inner).to_string());
        } else if quote == b'`' {
            // serde quotes a text between backticks as it is: its control characters escaped.
            out.push_str(&format!("`{}`", Printable(inner)));
        } else {
            out.push_str(&rest[open..=inner_start + len]);
        }
        rest = &rest[inner_start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Where the `"` that ends a Rust-escaped string (`{:?}`) is in `s`, which starts after its
/// opening `"`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// The field whose value makes reading `map` as `T` fail with `err`: the first whose removal
/// changes the error (to none, to "missing field" for it, or to the next bad field's error).
/// Only on the error path, one trial per field.
fn culprit<'m, T: DeserializeOwned>(map: &'m Map<String, Value>, err: &str) -> Option<&'m str> {
    map.keys().map(String::as_str).find(|key| {
        let mut trial = map.clone();
        trial.remove(*key);
        match T::deserialize(&trial) {
            Ok(_) => true,
            Err(e) => e.to_string() != err,
        }
    })
}

/// serde_json appends " at line L column C"; the message already says where.
pub(super) fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// The stable code for an error status that did not come from our handlers (axum rejections,
/// the timeout layer, unknown routes).
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "error",
    }
}

/// Turn an error answer that is not already our JSON error body (an axum rejection, a timeout,
/// a 404/405 from the router) into one, so clients parse one shape; any other answer is returned
/// as it is. Called by the edge layer (`super::edge`) for every 4xx/5xx.
pub async fn into_json_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        text
    };
    let mut error = ApiError::new(status, code_for(status), message);
    error.retry_after_s = parts
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut out = error.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// `text` (axum's "Failed to deserialize query string: after: invalid digit found in string")
/// as "query parameter `after`: …". Every numeric query parameter is a whole number ≥ 0.
fn query_message(text: &str) -> String {
    let rest = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(text);
    let (field, problem) = match rest.split_once(": ") {
        Some((field, problem)) if !field.contains(' ') => (Some(field), problem),
        _ => (None, rest),
    };
    let problem = match problem {
        "invalid digit found in string" => "not a whole number ≥ 0".to_string(),
        "cannot parse integer from empty string" => {
            "empty: give a whole number ≥ 0, or leave the parameter out".to_string()
        }
        "number too large to fit in target type" => "too large a number".to_string(),
        // serde quotes an unknown parameter's name as sent: control characters escaped.
        other => cut_echoes(other),
    };
    match field {
        Some(field) => format!("query parameter `{}`: {problem}", Printable(field)),
        None => format!("query string: {problem}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_an_echoed_name_or_key_are_escaped() {
        assert_eq!(
            cut_echoes("unknown variant `voi\nce`, expected `voice`"),
            "unknown variant `voi\\nce`, expected `voice`"
        );
        assert_eq!(
            field_named("tiers", Some(&Entry::Key("sa\u{7}les".into()))),
            "field `tiers.sa\\u{7}les`"
        );
        assert_eq!(
            query_message(
                "Failed to deserialize query string: unknown field `af\nter`, expected `after`"
            ),
            "query string: unknown field `af\\nter`, expected `after`"
        );
    }

    #[test]
    fn a_long_text_serde_quotes_is_cut_and_a_short_one_kept() {
        let long = "z".repeat(300);
        let message = format!(
            "unknown variant `{long}`, expected one of `voice`, `chat`; string \"{long}\\\"\""
        );
        assert_eq!(
            cut_echoes(&message),
            format!(
                "unknown variant of 300 bytes (it starts `{z32}`), expected one of `voice`, \
                 `chat`; string of 302 bytes (it starts `{z32}`)",
                z32 = "z".repeat(32)
            )
        );
        let short = "unknown field `queu`, expected `queue`; string \"a\\\"b\" and `";
        assert_eq!(cut_echoes(short), short);
    }

    #[test]
    fn json_nested_past_the_readers_limit_is_too_deeply_nested_not_malformed() {
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        let err = serde_json::from_str::<serde_json::Value>(&deep).unwrap_err();
        let api = ApiError::malformed_json(&err);
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
        assert_eq!(api.body.code, "too_deeply_nested");
        assert!(
            api.body
                .message
                .contains("more than 127 levels deep (at line 1, column 128)"),
            "{}",
            api.body.message
        );
        let ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(serde_json::from_str::<serde_json::Value>(&ok).is_ok());
    }

    #[test]
    fn a_malformed_json_message_names_line_and_column_once() {
        let err = serde_json::from_str::<serde_json::Value>("{\n  \"id\": ,\n}").unwrap_err();
        let api = ApiError::malformed_json(&err);
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
        assert_eq!(api.body.code, "malformed_json");
        assert!(
            api.body
                .message
                .starts_with("malformed JSON at line 2, column 9:"),
            "{}",
            api.body.message
        );
        assert_eq!(api.body.message.matches("line").count(), 1);
    }

    #[test]
    fn query_errors_name_the_parameter_and_what_it_takes() {
        let prefix = "Failed to deserialize query string: ";
        assert_eq!(
            query_message(&format!("{prefix}after: invalid digit found in string")),
            "query parameter `after`: not a whole number ≥ 0"
        );
        assert_eq!(
            query_message(&format!(
                "{prefix}after: cannot parse integer from empty string"
            )),
            "query parameter `after`: empty: give a whole number ≥ 0, or leave the parameter out"
        );
        assert_eq!(
            query_message(&format!(
                "{prefix}wait_ms: number too large to fit in target type"
            )),
            "query parameter `wait_ms`: too large a number"
        );
        assert_eq!(
            query_message(&format!(
                "{prefix}unknown field `x`, expected one of `after`, `wait_ms`, `limit`"
            )),
            "query string: unknown field `x`, expected one of `after`, `wait_ms`, `limit`"
        );
    }

    #[test]
    fn engine_refusals_map_to_422_409_and_503() {
        let unknown = EngineError::UnknownAgent { agent: "a9".into() };
        let api = ApiError::from_engine(&unknown, Some("e7"));
        assert_eq!(api.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(api.body.code, "unknown_agent");
        assert_eq!(api.body.message, "event `e7`: unknown agent `a9`");

        let conflict = EngineError::NoSuchOffer {
            interaction: "c1".into(),
            agent: "a1".into(),
            now: "it is waiting in queue `q`".into(),
        };
        assert_eq!(
            ApiError::from_engine(&conflict, None).status,
            StatusCode::CONFLICT
        );

        let limit = EngineError::AtCapacity {
            interaction: "c1".into(),
            limit: 10,
        };
        let api = ApiError::from_engine(&limit, None);
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.retry_after_s, Some(RETRY_AFTER_S));
        assert_eq!(api.body.code, "at_capacity");
    }
}
