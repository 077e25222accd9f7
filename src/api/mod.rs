//! The HTTP API (axum on hyper 1.x): event intake, decision delivery (long-poll, SSE, outbound
//! webhooks), the read and admin endpoints, auth and TLS.
//!
//! Handlers own no routing state: they parse and check requests, then talk to the engine task
//! through `EngineHandle` (bounded channel + oneshot). They never hold a lock across `.await`.
//! Every error answer is `{"error":{"code","message"}}` (see `error`). `docs/API.md` documents
//! every endpoint. Every answer counts in `tierline_http_requests_total{route,status}` and
//! `tierline_http_request_seconds{route}` under its route template (never the raw path: ids in
//! labels would make the series count grow with traffic).

pub mod admin;
pub mod auth;
pub mod connections;
pub mod decisions;
pub mod edge;
pub mod error;
pub mod events;
pub mod kamailio;
pub mod read;
pub mod readers;
pub mod secret;
pub mod stats;
pub mod strict_json;
pub mod subscriber;
pub mod tls;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::daemon::clock::Clock;
use crate::daemon::reload::Reloader;
use crate::daemon::shutdown::Shutdown;
use crate::daemon::task::{EngineHandle, SubmitError};
use crate::metrics::Metrics;

use auth::{AuthCell, AuthKeys, Role};
use error::ApiError;

/// What every handler can reach.
pub struct Shared {
    pub engine: EngineHandle,
    pub clock: Clock,
    pub auth: AuthCell,
    /// `[server] body_limit_bytes`.
    pub body_limit: usize,
    /// Longest a long-poll may wait (just under the request timeout).
    pub long_poll_max: Duration,
    pub shutdown: Shutdown,
    pub reloader: Arc<Reloader>,
    pub metrics: Metrics,
    /// Places for waiting long-polls and SSE streams (`[server] max_feed_readers`).
    pub feed_readers: Arc<readers::FeedReaders>,
}

/// Cheap-to-clone handler state.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The auth keys in force (a snapshot; reloads swap the cell).
    pub fn auth(&self) -> Arc<AuthKeys> {
        match self.auth.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The whole API router with its layers.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let read = Router::new()
        .route("/v1/decisions", get(decisions::long_poll))
        .route("/v1/decisions/stream", get(decisions::stream))
        .route("/v1/queues", get(read::queues))
        .route("/v1/queues/{id}", get(read::queue))
        .route("/v1/queues/{id}/stats", get(stats::queue_stats))
        .route("/v1/agents", get(read::agents))
        .route("/v1/agents/{id}", get(read::agent))
        .route("/v1/agents/{id}/stats", get(stats::agent_stats))
        .route("/v1/interactions/{id}", get(read::interaction))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_read));
    // The config text is admin material: a subscriber URL may carry credentials, and it names
    // every listener, file and limit.
    let admin = Router::new()
        .route("/v1/config", get(admin::get_config).put(admin::put_config))
        .route("/v1/config/validate", post(admin::validate_config))
        .route("/v1/config/preview", post(admin::preview_config))
        .route("/v1/agents/{id}/state", put(admin::force_agent_state))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/events", post(events::post_events))
        .merge(read)
        .merge(admin)
        .merge(kamailio::router(state.clone()))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(request_timeout, time_limit))
        .layer(edge::EdgeLayer::new(metrics))
}

/// `[server] request_timeout_ms`: a request (its body included) not answered within it gets
/// 408 `request_timeout`, with a message that names the limit. The timeout drops only the
/// answer: a command already handed to the engine task (an event, a config change) is applied
/// all the same, so the message says how to find out instead of reading as "nothing happened".
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request was not answered within [server] request_timeout_ms = {} ms (a body \
                 sent too slowly, or the engine and its journal slower than that under load). Events or a config change the request \
                 carried may have been applied all the same: send an event again under the same \
                 event id (a duplicate is answered with what its first delivery decided), or \
                 read the state (GET /v1/config, /v1/interactions/{{id}}) before changing it again",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

/// The `route` label of requests no route matched (404s of the fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

async fn require_read(State(app): State<AppState>, request: Request, next: Next) -> Response {
    match app.auth().authorize(request.headers(), Role::Read) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn require_admin(State(app): State<AppState>, request: Request, next: Next) -> Response {
    match app.auth().authorize(request.headers(), Role::Admin) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready = config loaded, engine task answering, journal writable, not shutting down.
async fn readyz(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if app.shutdown.is_triggered() {
        return Err(ApiError::unavailable(
            "shutting_down",
            "the daemon is shutting down",
        ));
    }
    match app
        .engine
        .read_core(|v| {
            (
                v.core.config().routing.queues.len(),
                v.core.next_seq(),
                v.journal_failure.is_some(),
            )
        })
        .await
    {
        // Every event would be refused 503 `journal_unavailable`: not ready. The probe is
        // unauthenticated, so the write error (a path on the server) stays in the log and in
        // the answers to events, which are signed.
        Ok((_, _, true)) => Err(ApiError::unavailable(
            "journal_unavailable",
            format!(
                "the journal cannot be written (the daemon's log says why): every event is \
                 refused until an append succeeds (tried again every {} ms)",
                crate::daemon::task::JOURNAL_RETRY_MS
            ),
        )),
        Ok((queues, next_seq, false)) => Ok(Json(serde_json::json!({
            "status": "ready",
            "queues": queues,
            "next_seq": next_seq,
        }))),
        // A full command queue is load, not unreadiness: a probe that flapped to 503 would take
        // the daemon out of its load balancer exactly when it is busiest. The engine is running
        // (it made this seq); the queue count needs the engine task, so it is left out.
        Err(SubmitError::Busy { .. }) => Ok(Json(serde_json::json!({
            "status": "ready",
            "busy": true,
            "next_seq": *app.engine.next_seq_watch().borrow(),
        }))),
        Err(e) => Err(e.into()),
    }
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!(
            "no endpoint {} {} (see docs/API.md)",
            plain_echo(request.method().as_str(), "a method"),
            plain_echo(request.uri().path(), "a path")
        ),
    )
}

/// A known path asked with a method it does not take. The router adds the `Allow` header.
async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; the `Allow` header lists the methods it takes",
            plain_echo(request.method().as_str(), "a method"),
            plain_echo(request.uri().path(), "a path")
        ),
    )
}

/// A method or path a message shows unquoted: in full up to the longest id, else `what` with
/// its length and start as `Named` shows a long name (`a path of 60000 bytes (it starts …)`),
/// so a 60 KB path makes a short answer.
pub(crate) fn plain_echo<'a>(text: &'a str, what: &str) -> std::borrow::Cow<'a, str> {
    if text.len() <= crate::engine::event::MAX_ID_LEN {
        text.into()
    } else {
        format!("{what} {}", crate::engine::event::Named(text)).into()
    }
}

/// Read a request body up to `limit` bytes (413 beyond it, checked against `Content-Length`
/// first so a huge upload is refused before it is read).
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes (server.body_limit_bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let e: &(dyn std::error::Error + 'static) = &e;
            if std::iter::successors(Some(e), |err| err.source())
                .any(|err| err.is::<http_body_util::LengthLimitError>())
            {
                return Err(too_large());
            }
            // hyper's cause says what was wrong with the body ("end of file before message
            // length reached", "invalid chunk size line"), the outer error only that reading
            // failed.
            let cut_short = declared.map_or(String::new(), |n| {
                format!(" (Content-Length said {n} bytes: was the body sent whole?)")
            });
            Err(ApiError::bad_request(
                "unreadable_body",
                format!(
                    "could not read the request body: {}{cut_short}",
                    error::with_causes(e)
                ),
            ))
        }
    }
}

/// A JSON object body read as `T`: 415 unless JSON, 413 over the body limit, 400 unless JSON
/// syntax and an object, 422 naming the field `T` refuses (`error::from_object`).
pub async fn read_json_object<T: serde::de::DeserializeOwned>(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    require_content_type(headers, &["application/json"])?;
    let bytes = read_body(body, headers, app.body_limit).await?;
    let value = strict_json::from_slice(&bytes)?;
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        ));
    };
    error::from_object(&map, None, "")
}

/// 415 if the `Content-Type` value `content_type` declares a `charset` other than UTF-8 (or
/// US-ASCII, a subset): JSON and TOML are UTF-8 by definition (RFC 8259, TOML 1.0), so a body
/// declared in another charset would be read as something its sender did not mean.
fn utf8_charset(content_type: &str) -> Result<(), ApiError> {
    let charset = content_type.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    });
    match charset {
        Some(c) if !matches!(c.as_str(), "utf-8" | "utf8" | "us-ascii") => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "charset `{c}` is not supported: the body must be UTF-8 (charset=utf-8, or no \
                 charset)"
            ),
        )),
        _ => Ok(()),
    }
}

/// 415 unless the `Content-Type` is `expected` (parameters allowed; a `charset` must be UTF-8)
/// and the body is not encoded (`Content-Encoding` absent or `identity`).
pub fn require_content_type(headers: &HeaderMap, expected: &[&str]) -> Result<(), ApiError> {
    let mut types = headers.get_all(header::CONTENT_TYPE).iter();
    let first = types.next().and_then(|v| v.to_str().ok());
    let given = first.map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    // A compressed body would be read as garbage (or, with a plain body under a false
    // `Content-Encoding`, as something the sender did not mean): say what is accepted. Every
    // line of the header counts (RFC 9110 §5.3: `identity` then `gzip` is a gzip body).
    for encoding in headers.get_all(header::CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("?").to_ascii_lowercase();
        let coding = encoding
            .split(',')
            .map(str::trim)
            .find(|c| !c.is_empty() && *c != "identity");
        if let Some(coding) = coding {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!(
                    "Content-Encoding `{coding}` is not supported: send the body uncompressed \
                     (no Content-Encoding, or `identity`)"
                ),
            ));
        }
    }
    // Two types leave the body's type to whichever line a reader takes.
    if types.next().is_some() {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type is given more than once: send it once, as {}",
                expected.join(" or ")
            ),
        ));
    }
    match given {
        Some(ct) if expected.contains(&ct.as_str()) => utf8_charset(first.unwrap_or("")),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type must be {} (the request's: {})",
                expected.join(" or "),
                other.map_or("none".to_string(), |c| format!("the type `{c}`"))
            ),
        )),
    }
}
