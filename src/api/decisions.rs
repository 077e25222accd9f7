//! Decisions for the PBX after the fact: long-poll (`GET /v1/decisions`) and Server-Sent Events
//! (`GET /v1/decisions/stream`). Outbound webhooks are in `subscriber`.
//!
//! Both read the engine task's decision log (bounded ring) and wait on the engine's "next seq"
//! watch channel between reads, so a waiting client costs nothing until a decision exists.
//! Both end early on shutdown. A reader behind the ring gets 410 `decisions_gone`, one past the
//! newest decision 409 `decisions_ahead`.
//!
//! Both check the reader's bearer token again before they hand out decisions they waited for:
//! a reload that took the token out (a rotation, a leaked token revoked) ends what it opened. A
//! long-poll answers 401; a stream sends `event: error` (`unauthorized`) and ends, at once even
//! when it has nothing to send (it wakes on the reload), so a revoked token holds no connection.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::watch;

use crate::daemon::decision_log::{DecisionPage, FeedError, LoggedDecision};

use super::readers::ReaderPlace;
use crate::daemon::shutdown::Shutdown;
use crate::daemon::task::{EngineHandle, SubmitError};

use super::auth::Role;
use super::error::ApiError;
use super::AppState;

/// Decisions per long-poll answer unless `limit` says fewer.
pub const DEFAULT_PAGE: usize = 1_000;
/// Largest `limit` accepted.
pub const MAX_PAGE: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    /// Return decisions with seq > after (absent: from the oldest held).
    after: Option<u64>,
    /// Wait up to this long for a decision (capped just under the request timeout).
    wait_ms: Option<u64>,
    limit: Option<usize>,
}

fn query_error(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::invalid_query(&e)
}

async fn page(
    engine: &EngineHandle,
    after: Option<u64>,
    limit: usize,
) -> Result<DecisionPage, ApiError> {
    read_page(engine, after, limit)
        .await?
        .map_err(|e| ApiError::feed(&e))
}

async fn read_page(
    engine: &EngineHandle,
    after: Option<u64>,
    limit: usize,
) -> Result<Result<DecisionPage, crate::daemon::decision_log::FeedError>, SubmitError> {
    engine
        .read_core(move |v| v.core.decisions_after(after, limit))
        .await
}

/// How long an SSE stream waits before reading again when the command queue was full.
const STREAM_BUSY_RETRY: Duration = Duration::from_millis(20);

/// The reader's credentials, kept to check them again later (only `Authorization`).
fn credentials(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        kept.insert(header::AUTHORIZATION, value.clone());
    }
    kept
}

/// Wait until a decision with seq > `after` exists; false on shutdown or when the engine stops.
async fn wait_past(seq: &mut watch::Receiver<u64>, after: u64, shutdown: &Shutdown) -> bool {
    tokio::select! {
        r = seq.wait_for(|next| *next > after.saturating_add(1)) => r.is_ok(),
        () = shutdown.wait() => false,
    }
}

fn page_body(page: &DecisionPage) -> String {
    let mut body = String::with_capacity(
        32 + page
            .decisions
            .iter()
            .map(|d| d.json.len() + 1)
            .sum::<usize>(),
    );
    body.push_str("{\"decisions\":[");
    for (i, d) in page.decisions.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&d.json);
    }
    body.push_str("],\"next\":");
    body.push_str(&page.next.to_string());
    body.push('}');
    body
}

/// `GET /v1/decisions?after=SEQ&wait_ms=N&limit=L`.
pub async fn long_poll(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PollQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    if q.limit == Some(0) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "limit=0 would never return a decision: give 1–{MAX_PAGE} (default {DEFAULT_PAGE})"
            ),
        ));
    }
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0)).min(app.long_poll_max);
    // A poll that waits holds its connection: it takes a reader's place before it waits (one
    // with decisions to return at once, or `wait_ms=0`, is a plain read).
    let mut place = None;
    let deadline = tokio::time::Instant::now() + wait;
    let mut seq = app.engine.next_seq_watch();
    let mut auth_changes = app.reloader.auth_changes();
    // Judged again now that changes are watched: a reload between the middleware's check and
    // the subscription would otherwise go unseen, and a revoked token would wait out `wait_ms`.
    app.auth().authorize(&headers, Role::Read)?;
    // False once the reloader is gone (shutting down): no more changes to wait for.
    let mut auth_live = true;
    // A long-poll client resuming like an SSE one (the header wins over `after`, as there).
    let mut after = resume_header(&headers)?.or(q.after);
    let result = loop {
        let current = page(&app.engine, after, limit).await?;
        if !current.decisions.is_empty() || tokio::time::Instant::now() >= deadline {
            break current;
        }
        after = Some(current.next);
        if place.is_none() {
            place = Some(app.feed_readers.take()?);
        }
        let waited = tokio::select! {
            w = tokio::time::timeout_at(deadline, wait_past(&mut seq, current.next, &app.shutdown)) => w,
            // A reload changed the keys: a token it took out answers 401 now, not at the end of
            // the wait (as the SSE stream ends at once).
            changed = auth_changes.changed(), if auth_live => {
                match changed {
                    Ok(()) => app.auth().authorize(&headers, Role::Read)?,
                    Err(_) => auth_live = false,
                }
                continue;
            }
        };
        match waited {
            Ok(true) => continue,
            // Timed out, shutting down or stopped: answer with what there is (nothing).
            _ => break current,
        }
    };
    // The token may have been revoked while the poll waited.
    app.auth().authorize(&headers, Role::Read)?;
    let mut response = page_body(&result).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this seq when there is no `Last-Event-ID` header.
    after: Option<u64>,
}

struct StreamState {
    app: AppState,
    /// The `Authorization` the stream was opened with, checked again before each decision and
    /// whenever a reload changes the keys.
    credentials: HeaderMap,
    auth_changes: watch::Receiver<u64>,
    seq: watch::Receiver<u64>,
    after: Option<u64>,
    pending: std::collections::VecDeque<LoggedDecision>,
    done: bool,
    /// The stream's reader place, given back when the stream ends.
    _place: ReaderPlace,
}

/// `GET /v1/decisions/stream` (SSE; `id:` = seq; resume with `Last-Event-ID`).
pub async fn stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    // Watched from here, then judged again (as the long-poll does): a reload between the
    // middleware's check and the subscription cannot leave a revoked token's stream open.
    let auth_changes = app.reloader.auth_changes();
    app.auth().authorize(&headers, Role::Read)?;
    let resume = resume_header(&headers)?;
    let from_header = resume.is_some();
    let after = resume.or(q.after);
    // Refuse up front (410) if the reader is already behind the ring. A full command queue is
    // waited out as it is mid-stream (up to the long-poll bound), not answered 503: a browser
    // `EventSource` takes a 503 at connect as fatal and stops reconnecting.
    // A place first, so that no connect beyond the bound waits out a full command queue holding
    // a connection; at the limit the cursor is still read once, so that a bad or stale one is
    // told as such (400, 409, 410) rather than retried every few seconds.
    let place = app.feed_readers.take();
    let give_up = tokio::time::Instant::now() + app.long_poll_max;
    let first = loop {
        match read_page(&app.engine, after, DEFAULT_PAGE).await {
            Ok(Ok(page)) => break page,
            Ok(Err(feed)) => {
                let mut err = ApiError::feed(&feed);
                if let (FeedError::Ahead(ahead), true) = (&feed, from_header) {
                    // The reader sent no `after`: name the cursor it did send.
                    err.body.message = format!(
                        "Last-Event-ID {} is ahead of the decision feed, whose newest decision \
                         is seq {}: the reader saw decisions the journal no longer holds, or its \
                         cursor is from another deployment; reconnect with Last-Event-ID {} (or \
                         ?after={}) and reconcile state with the read API",
                        ahead.after, ahead.newest, ahead.newest, ahead.newest
                    );
                }
                return Err(err);
            }
            Err(busy @ SubmitError::Busy { .. }) => {
                if let Err(full) = &place {
                    return Ok(reader_limit_stream(full));
                }
                if tokio::time::Instant::now() >= give_up {
                    return Err(busy.into());
                }
                if !pause_while_busy(&app.shutdown).await {
                    return Err(busy.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let place = match place {
        Ok(place) => place,
        // A browser `EventSource` takes any answer but a 200 stream at connect as fatal: a
        // stream that says why (`event: error`) and asks for a reconnect later (`retry:`) is one
        // it retries by itself. Other clients read the error event.
        Err(full) => return Ok(reader_limit_stream(&full)),
    };
    let state = StreamState {
        credentials: credentials(&headers),
        auth_changes,
        seq: app.engine.next_seq_watch(),
        after: Some(first.next),
        pending: first.decisions.into(),
        app,
        done: false,
        _place: place,
    };
    Ok(Sse::new(decision_stream(state))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn decision_stream(state: StreamState) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            if let Err(revoked) = s.app.auth().authorize(&s.credentials, Role::Read) {
                // A reload took the token out: no decision more, and the stream ends.
                s.done = true;
                return Some((Ok(error_event(&revoked)), s));
            }
            if let Some(d) = s.pending.pop_front() {
                let event = SseEvent::default()
                    .id(d.seq.to_string())
                    .event(d.kind)
                    .data(&*d.json);
                return Some((Ok(event), s));
            }
            let after = s.after.unwrap_or(0);
            tokio::select! {
                more = wait_past(&mut s.seq, after, &s.app.shutdown) => {
                    if !more {
                        return None;
                    }
                }
                // A reload changed the keys: check the token again (top of the loop).
                changed = s.auth_changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    continue;
                }
            }
            let error = match read_page(&s.app.engine, s.after, DEFAULT_PAGE).await {
                Ok(Ok(page)) => {
                    s.after = Some(page.next);
                    s.pending = page.decisions.into();
                    continue;
                }
                // The command queue is full for a moment: the decisions are still kept, so read
                // again shortly instead of ending the stream (the client would only reconnect).
                Err(SubmitError::Busy { .. }) => {
                    if pause_while_busy(&s.app.shutdown).await {
                        continue;
                    }
                    return None;
                }
                Ok(Err(feed)) => ApiError::feed(&feed),
                Err(e) => ApiError::from(e),
            };
            // Fell behind the ring (or the engine stopped): say so and end the stream.
            s.done = true;
            return Some((Ok(error_event(&error)), s));
        }
    })
}

/// How long a client refused a stream at the reader limit is asked to wait before reconnecting.
const READER_LIMIT_RETRY: Duration = Duration::from_secs(5);

/// The answer to a stream connect at `[server] max_feed_readers`: a 200 stream of one
/// `event: error` (`too_many_readers`) with `retry:`, then its end.
fn reader_limit_stream(full: &ApiError) -> Response {
    let event = error_event(full).retry(READER_LIMIT_RETRY);
    let once = futures::stream::once(async move { Ok::<_, Infallible>(event) });
    Sse::new(once).into_response()
}

/// The one `event: error` that ends a stream.
fn error_event(error: &ApiError) -> SseEvent {
    let data = serde_json::json!({ "error": error.body }).to_string();
    SseEvent::default().event("error").data(data)
}

/// Wait `STREAM_BUSY_RETRY` before reading again after a full command queue; false if the
/// daemon began shutting down meanwhile.
async fn pause_while_busy(shutdown: &Shutdown) -> bool {
    tokio::select! {
        () = tokio::time::sleep(STREAM_BUSY_RETRY) => true,
        () = shutdown.wait() => false,
    }
}

/// The seq a `Last-Event-ID` header resumes after: `None` without one, or with an empty one
/// (some SSE clients send it empty on their first connect; the standard `EventSource` sends
/// none). Given twice it is refused, as a repeated `Authorization` is: a proxy may have added
/// one, and taking either could skip or replay decisions.
fn resume_header(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let mut values = headers.get_all("last-event-id").iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "invalid_last_event_id",
            "Last-Event-ID is given more than once: send one (a proxy may have added another)",
        )),
        (Some(v), None) if v.as_bytes().iter().all(u8::is_ascii_whitespace) => Ok(None),
        (Some(v), None) => last_event_id(v.to_str().ok()).map(Some),
    }
}

/// The `Last-Event-ID` header's seq, or why it is not one: a number too large for a seq is
/// told as such, as `?after=` tells it.
fn last_event_id(value: Option<&str>) -> Result<u64, ApiError> {
    let text = value.map(str::trim).unwrap_or("");
    text.parse::<u64>().map_err(|e| {
        let why = if *e.kind() == std::num::IntErrorKind::PosOverflow {
            format!(
                "too large a number (a decision seq is at most {})",
                u64::MAX
            )
        } else {
            "it must be a decision seq (an unsigned integer)".to_string()
        };
        ApiError::bad_request(
            "invalid_last_event_id",
            format!("Last-Event-ID {text:?} is not a decision seq: {why}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_event_id_too_large_for_a_seq_is_told_as_such() {
        assert_eq!(last_event_id(Some(" 42 ")).ok(), Some(42));
        let too_large = last_event_id(Some("99999999999999999999999")).err();
        let message = too_large.map(|e| (e.body.code.to_string(), e.body.message));
        let (code, message) = message.unwrap_or_default();
        assert_eq!(code, "invalid_last_event_id");
        assert!(message.contains("too large a number"), "{message}");
        assert!(message.contains("99999999999999999999999"), "{message}");
        for bad in [Some("x"), Some("-1"), None] {
            let e = last_event_id(bad).err().map(|e| e.body.message);
            let message = e.unwrap_or_default();
            assert!(
                message.contains("an unsigned integer"),
                "{bad:?}: {message}"
            );
        }
    }
}
