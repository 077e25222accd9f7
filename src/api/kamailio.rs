//! The Kamailio adapter: `POST /v1/adapters/kamailio/route` and `POST /v1/adapters/kamailio/report`.
//!
//! Kamailio cannot speak tierline's event API comfortably (no HMAC, no decision stream), so this
//! adapter meets it where it is: `/route` takes what `kamailio.cfg` sends for an INVITE (call id,
//! From, the request-URI user) and answers one line of rtjson naming where to ring, holding the
//! request open while the call waits for an agent; `/report` turns SIP outcomes into the normal
//! events. See `integrations/kamailio/kamailio.cfg` and `docs/integrations.md`.
//!
//! It owns no routing state: the interaction id is the SIP Call-ID, every answer is computed from
//! the engine's interaction view at that moment, and what Kamailio already rang travels back in
//! the request (`previous_offer`), so a daemon restart or a second Kamailio loses nothing. It must
//! never hold a request beyond its hold time (Kamailio's HTTP timeout must exceed it) and never
//! report a SIP outcome the engine no longer expects as an error (retransmissions and late
//! reports are normal in SIP).
//!
//! `/route` answers, by HTTP status (the status *is* the SIP status Kamailio replies with, except
//! 200/202/410):
//! - 200 + rtjson: ring `routes[0].uri` — an agent (with `agent`, `offer`, and `fr_inv_timer` =
//!   the rest of the offer's time minus a guard) or an overflow / closed-hours target (no `agent`).
//! - 202 `{"status":"waiting"}`: still no agent after the hold time; ask again.
//! - 410 `call_gone`: the call ended in tierline (abandoned); Kamailio replies 487.
//! - 486 `queue_full`, 480 `closed` (no closed target), 404 `no_route` / `channel_not_served`,
//!   409 `already_connected`, 503 when the engine is busy, at capacity or stopping.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::{Channel, Millis, Overflow};
use crate::daemon::core::{Input, Outcome};
use crate::engine::{
    DeclineReason, EngineError, Event, InteractionState, InteractionView, RejectReason, Why,
};

use super::auth::Role;
use super::error::ApiError;
use super::{read_json_object, AppState};

/// How long `/route` holds a request when the URL gives no `hold_ms`.
pub const DEFAULT_HOLD_MS: Millis = 20_000;
/// Kamailio gives up ringing this long before the engine's offer expires, so its no-answer report
/// always reaches the engine while the offer is still the agent's (an accept can never race the
/// engine's own expiry and re-offer).
pub const RING_GUARD_MS: Millis = 500;
/// Less ring time than this left on an offer is not worth ringing: wait for the engine's expiry
/// and re-offer instead.
pub const MIN_RING_MS: Millis = 250;
/// Longest accepted Call-ID, agent id or offer id (they become parts of event ids).
pub const MAX_ID_LEN: usize = 200;

/// The routes, with the auth check (merged into the API router by `api::router`).
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/adapters/kamailio/route", post(route))
        .route("/v1/adapters/kamailio/report", post(report))
        .route_layer(middleware::from_fn_with_state(state, require_adapter_auth))
        .layer(Extension(Reported::default()))
}

/// Wakes held `/route` requests after a report was applied. Decisions wake them too, but one
/// change `/route` cares about makes no decision: a caller abandoning while waiting.
#[derive(Clone, Default)]
pub struct Reported(Arc<Notify>);

// ----- wire types -----

/// What `kamailio.cfg` sends to `/route` (unknown fields such as `tindex` are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RouteRequest {
    /// The SIP Call-ID: the interaction id.
    pub call_id: String,
    /// The request-URI user: a queue id, or an attribute (`dialed`) for routing rules.
    #[serde(default)]
    pub queue: Option<String>,
    /// The From URI (attribute `from`; also the `customer`).
    #[serde(default)]
    pub from: Option<String>,
    /// The To URI (attribute `to`).
    #[serde(default)]
    pub to: Option<String>,
    /// The offer Kamailio rang last and that failed: do not answer it again.
    #[serde(default)]
    pub previous_offer: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteQuery {
    /// How long to hold the request waiting for an agent (capped by the request timeout).
    pub hold_ms: Option<Millis>,
}

/// A SIP outcome as `kamailio.cfg` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SipOutcome {
    /// The agent's phone answered (2xx).
    Accepted,
    /// The agent's phone refused (486 busy, 600/603 decline).
    Declined,
    /// Ring time ran out (408, 480 or the ring timer).
    NoAnswer,
    /// Any other failure of the agent's leg (unreachable phone, 5xx…): treated as no answer.
    Failed,
    /// BYE from either side.
    Ended,
    /// CANCEL from the caller while waiting or ringing.
    Abandoned,
}

/// What `kamailio.cfg` sends to `/report`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReportRequest {
    pub call_id: String,
    pub event: SipOutcome,
    /// The agent whose leg this is (`accepted`, `declined`, `no_answer`, `failed`).
    #[serde(default)]
    pub agent: Option<String>,
    /// The offer id `/route` answered with (makes repeated declines of one call distinct).
    #[serde(default)]
    pub offer: Option<String>,
    /// The final SIP status of the agent's leg.
    #[serde(default)]
    pub sip_status: Option<u16>,
}

/// One rtjson route (the fields Kamailio's rtjson module reads, plus ours it ignores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtjsonRoute {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fr_timer: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fr_inv_timer: Option<Millis>,
}

/// The `/route` answer body: an rtjson document with one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rtjson {
    pub version: String,
    pub routing: String,
    pub routes: Vec<RtjsonRoute>,
    pub interaction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
}

// ----- pure logic -----

/// Why a request from Kamailio is unusable (422 with the field named).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    #[error("`{field}` is empty")]
    Empty { field: &'static str },
    #[error("`{field}` is {len} bytes long; at most {MAX_ID_LEN} are accepted")]
    TooLong { field: &'static str, len: usize },
    #[error("a `{event}` report needs `agent` (whose phone it was)")]
    MissingAgent { event: &'static str },
}

impl AdapterError {
    pub fn code(&self) -> &'static str {
        match self {
            AdapterError::Empty { .. } => "missing_field",
            AdapterError::TooLong { .. } => "field_too_long",
            AdapterError::MissingAgent { .. } => "missing_agent",
        }
    }
}

fn check_id(field: &'static str, value: &str) -> Result<(), AdapterError> {
    if value.trim().is_empty() {
        return Err(AdapterError::Empty { field });
    }
    if value.len() > MAX_ID_LEN {
        return Err(AdapterError::TooLong {
            field,
            len: value.len(),
        });
    }
    Ok(())
}

impl RouteRequest {
    /// The `interaction.arrived` for this call. The request-URI user names the queue when such a
    /// queue exists; otherwise the routing rules decide, seeing it as attribute `dialed`.
    pub fn arrival(&self, queue_exists: impl Fn(&str) -> bool) -> Result<Event, AdapterError> {
        check_id("call_id", &self.call_id)?;
        let mut attributes = BTreeMap::new();
        let dialed = self
            .queue
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        if let Some(d) = dialed {
            attributes.insert("dialed".to_string(), d.to_string());
        }
        if let Some(f) = self.from.as_deref().filter(|f| !f.is_empty()) {
            attributes.insert("from".to_string(), f.to_string());
        }
        if let Some(t) = self.to.as_deref().filter(|t| !t.is_empty()) {
            attributes.insert("to".to_string(), t.to_string());
        }
        Ok(Event::InteractionArrived {
            interaction: self.call_id.clone(),
            channel: Channel::Voice,
            queue: dialed.filter(|q| queue_exists(q)).map(str::to_string),
            priority: None,
            skills: Vec::new(),
            customer: self.from.clone().filter(|f| !f.is_empty()),
            attributes,
        })
    }
}

impl ReportRequest {
    /// The engine event this SIP outcome means.
    pub fn event(&self) -> Result<Event, AdapterError> {
        check_id("call_id", &self.call_id)?;
        let interaction = self.call_id.clone();
        let agent = |event: &'static str| -> Result<String, AdapterError> {
            let a = self
                .agent
                .clone()
                .ok_or(AdapterError::MissingAgent { event })?;
            check_id("agent", &a)?;
            Ok(a)
        };
        Ok(match self.event {
            SipOutcome::Accepted => Event::OfferAccepted {
                interaction,
                agent: agent("accepted")?,
            },
            SipOutcome::Declined | SipOutcome::NoAnswer | SipOutcome::Failed => {
                Event::OfferDeclined {
                    interaction,
                    agent: agent("declined")?,
                    reason: decline_reason(self.event, self.sip_status),
                }
            }
            SipOutcome::Ended => Event::InteractionEnded {
                interaction,
                resolved: None,
            },
            SipOutcome::Abandoned => Event::InteractionAbandoned { interaction },
        })
    }

    /// The idempotency id: a retransmitted report is a duplicate, a second decline of the same
    /// call by the same agent (a later offer) is not.
    pub fn event_id(&self) -> Result<String, AdapterError> {
        if let Some(o) = &self.offer {
            check_id("offer", o)?;
        }
        let leg = self
            .offer
            .as_deref()
            .or(self.agent.as_deref())
            .unwrap_or("-");
        let kind = match self.event {
            SipOutcome::Accepted => "accepted",
            SipOutcome::Declined | SipOutcome::NoAnswer | SipOutcome::Failed => "declined",
            SipOutcome::Ended => return Ok(format!("kamailio:{}:ended", self.call_id)),
            SipOutcome::Abandoned => return Ok(format!("kamailio:{}:abandoned", self.call_id)),
        };
        Ok(format!("kamailio:{}:{leg}:{kind}", self.call_id))
    }
}

/// The decline reason for a failed agent leg: 486 = busy, 600/603 = rejected, everything else
/// (408, 480, ring timer, unreachable) = no answer, which counts towards `max_no_answer`.
pub fn decline_reason(outcome: SipOutcome, sip_status: Option<u16>) -> DeclineReason {
    match (outcome, sip_status) {
        (SipOutcome::Declined, Some(486)) => DeclineReason::Busy,
        (SipOutcome::Declined, _) => DeclineReason::Rejected,
        _ => DeclineReason::NoAnswer,
    }
}

/// What the engine says about a call, reduced to what `/route` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSnapshot {
    pub state: InteractionState,
    /// The current offer while offered: (agent, offer id, agent address, expires at).
    pub offer: Option<(String, String, String, Millis)>,
    /// Where it went when it overflowed to a PBX target.
    pub overflow_target: Option<String>,
    /// Why it was rejected, and the queue's closed-hours target.
    pub rejected: Option<(RejectReason, Option<String>)>,
}

impl CallSnapshot {
    /// Read the snapshot from the engine (runs on the engine task).
    pub fn read(engine: &crate::engine::Engine, call_id: &str) -> Option<CallSnapshot> {
        let view = engine.interaction(call_id)?;
        let offer = if view.state == InteractionState::Offered {
            last_offer(&view).and_then(|(agent, offer)| {
                let a = engine.agent(&agent)?;
                let expires = a
                    .slots
                    .iter()
                    .find(|s| s.offer.as_deref() == Some(offer.as_str()))
                    .and_then(|s| s.until)?;
                Some((agent, offer, a.address.to_string(), expires))
            })
        } else {
            None
        };
        let mut overflow_target = None;
        let mut rejected = None;
        for t in view.history.iter().rev() {
            match &t.why {
                Why::Overflow {
                    target: Some(target),
                    ..
                } if view.state == InteractionState::Overflowed => {
                    overflow_target = Some(target.to_string());
                    break;
                }
                Why::Rejected { reason } if view.state == InteractionState::Rejected => {
                    let closed_target = view
                        .queue
                        .as_deref()
                        .and_then(|q| engine.config().queue(q))
                        .and_then(|q| q.closed_target.clone());
                    rejected = Some((*reason, closed_target));
                    break;
                }
                _ => {}
            }
        }
        // An overflow whose target came from the config (history trimmed): fall back to it.
        if view.state == InteractionState::Overflowed && overflow_target.is_none() {
            overflow_target = view
                .queue
                .as_deref()
                .and_then(|q| engine.config().queue(q))
                .and_then(|q| match &q.overflow {
                    Some(Overflow::Target(t)) => Some(t.clone()),
                    _ => None,
                });
        }
        Some(CallSnapshot {
            state: view.state,
            offer,
            overflow_target,
            rejected,
        })
    }
}

/// The agent and offer id of the latest offer in the history.
fn last_offer(view: &InteractionView) -> Option<(String, String)> {
    view.history.iter().rev().find_map(|t| match &t.why {
        Why::Offered { agent, offer } => Some((agent.to_string(), offer.to_string())),
        _ => None,
    })
}

/// What `/route` does with a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAnswer {
    /// Answer 200 with this rtjson.
    Ring(Rtjson),
    /// Nothing to ring yet: keep holding (or answer 202 at the hold deadline).
    Wait,
    /// Answer with this status and error code.
    Refuse {
        status: u16,
        code: &'static str,
        message: String,
    },
}

/// Decide the `/route` answer for a call at `now`, given the offer Kamailio already rang.
pub fn decide(
    call_id: &str,
    snap: &CallSnapshot,
    previous_offer: Option<&str>,
    now: Millis,
) -> RouteAnswer {
    let ring_target = |uri: &str| {
        RouteAnswer::Ring(Rtjson {
            version: "1.0".into(),
            routing: "serial".into(),
            routes: vec![RtjsonRoute {
                uri: uri.to_string(),
                fr_timer: None,
                fr_inv_timer: None,
            }],
            interaction: call_id.to_string(),
            agent: None,
            offer: None,
        })
    };
    match snap.state {
        InteractionState::Waiting => RouteAnswer::Wait,
        InteractionState::Offered => match &snap.offer {
            Some((agent, offer, address, expires_at)) if previous_offer != Some(offer.as_str()) => {
                let ring = expires_at.saturating_sub(now).saturating_sub(RING_GUARD_MS);
                if ring < MIN_RING_MS {
                    return RouteAnswer::Wait;
                }
                RouteAnswer::Ring(Rtjson {
                    version: "1.0".into(),
                    routing: "serial".into(),
                    routes: vec![RtjsonRoute {
                        uri: address.clone(),
                        fr_timer: Some(ring),
                        fr_inv_timer: Some(ring),
                    }],
                    interaction: call_id.to_string(),
                    agent: Some(agent.clone()),
                    offer: Some(offer.clone()),
                })
            }
            // Kamailio already rang this offer (or it is unreadable): wait for the next one.
            _ => RouteAnswer::Wait,
        },
        InteractionState::Connected | InteractionState::WrapUp | InteractionState::Done => {
            RouteAnswer::Refuse {
                status: 409,
                code: "already_connected",
                message: format!("call `{call_id}` was already answered by an agent"),
            }
        }
        InteractionState::Abandoned => RouteAnswer::Refuse {
            status: 410,
            code: "call_gone",
            message: format!("call `{call_id}` was abandoned"),
        },
        InteractionState::Overflowed => match &snap.overflow_target {
            Some(target) => ring_target(target),
            None => RouteAnswer::Refuse {
                status: 480,
                code: "overflowed",
                message: format!("call `{call_id}` overflowed and no target is configured"),
            },
        },
        InteractionState::Rejected => match &snap.rejected {
            Some((RejectReason::Closed, Some(target))) => ring_target(target),
            Some((RejectReason::Closed, None)) => RouteAnswer::Refuse {
                status: 480,
                code: "closed",
                message: format!("the queue of call `{call_id}` is closed"),
            },
            Some((RejectReason::QueueFull, _)) => RouteAnswer::Refuse {
                status: 486,
                code: "queue_full",
                message: format!("the queue of call `{call_id}` is full"),
            },
            Some((RejectReason::NoRoute, _)) | None => RouteAnswer::Refuse {
                status: 404,
                code: "no_route",
                message: format!("no queue or routing rule takes call `{call_id}`"),
            },
        },
    }
}

/// The SIP-facing status for an engine refusal of an arrival.
fn arrival_refusal(e: &EngineError) -> ApiError {
    match e {
        EngineError::ChannelNotServed { .. } | EngineError::UnknownQueue { .. } => {
            ApiError::not_found(e.code(), e.to_string())
        }
        other => ApiError::from_engine(other, None),
    }
}

/// Engine refusals of a report that only mean "this report came late" (a retransmission, a
/// report for an offer the engine already expired, a BYE after the call was abandoned…).
fn is_late_report(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::NoSuchOffer { .. }
            | EngineError::InvalidTransition { .. }
            | EngineError::UnknownInteraction { .. }
    )
}

// ----- handlers -----

fn json_line(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn invalid(e: AdapterError) -> ApiError {
    ApiError::unprocessable(e.code(), e.to_string())
}

/// `POST /v1/adapters/kamailio/route[?hold_ms=N]`.
pub async fn route(
    State(app): State<AppState>,
    Extension(reported): Extension<Reported>,
    query: Result<Query<RouteQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let req: RouteRequest = read_json_object(&app, &headers, body).await?;
    let hold = Duration::from_millis(q.hold_ms.unwrap_or(DEFAULT_HOLD_MS)).min(app.long_poll_max);
    let deadline = tokio::time::Instant::now() + hold;
    let mut seq = app.engine.next_seq_watch();

    // A new call enters tierline; a repeated /route (after a failed agent, or a retransmission)
    // finds it there. The event id makes a racing duplicate harmless.
    let call = req.call_id.clone();
    seq.borrow_and_update();
    let known = app
        .engine
        .read(move |v| v.core.engine().interaction(&call).is_some())
        .await?;
    if !known {
        let arrival = {
            let names: Vec<String> = app
                .engine
                .read(|v| {
                    v.core
                        .config()
                        .routing
                        .queues
                        .iter()
                        .map(|q| q.id.clone())
                        .collect()
                })
                .await?;
            req.arrival(|q| names.iter().any(|n| n == q))
                .map_err(invalid)?
        };
        let id = format!("kamailio:{}:arrived", req.call_id);
        let outcome = app
            .engine
            .apply(vec![Input::Event { id, event: arrival }])
            .await?
            .pop();
        if let Some(Outcome::Rejected(e)) = outcome {
            if !matches!(e, EngineError::DuplicateInteraction { .. }) {
                return Err(arrival_refusal(&e));
            }
        }
    } else {
        check_id("call_id", &req.call_id).map_err(invalid)?;
    }

    loop {
        let call = req.call_id.clone();
        // Listen before reading, so a change between the read and the wait is not missed.
        let report_applied = reported.0.notified();
        tokio::pin!(report_applied);
        report_applied.as_mut().enable();
        seq.borrow_and_update();
        let (snap, now) = app
            .engine
            .read(move |v| (CallSnapshot::read(v.core.engine(), &call), v.now))
            .await?;
        let Some(snap) = snap else {
            // Finished and no longer retained: nothing to ring.
            return Err(ApiError::new(
                StatusCode::GONE,
                "call_gone",
                format!("call `{}` is no longer known", req.call_id),
            ));
        };
        match decide(&req.call_id, &snap, req.previous_offer.as_deref(), now) {
            RouteAnswer::Ring(doc) => {
                let line = serde_json::to_string(&doc).map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                })?;
                return Ok(json_line(StatusCode::OK, line));
            }
            RouteAnswer::Refuse {
                status,
                code,
                message,
            } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CONFLICT);
                return Err(ApiError::new(status, code, message));
            }
            RouteAnswer::Wait => {}
        }
        // Sleep until the engine decides anything, a report lands, or the hold ends; nothing polls.
        tokio::select! {
            () = &mut report_applied => continue,
            changed = tokio::time::timeout_at(deadline, seq.changed()) => match changed {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(ApiError::unavailable("shutting_down", "the engine is stopping")),
                Err(_) => {
                    return Ok(json_line(
                        StatusCode::ACCEPTED,
                        format!(
                            "{{\"status\":\"waiting\",\"interaction\":{}}}",
                            serde_json::Value::String(req.call_id.clone())
                        ),
                    ))
                }
            },
            () = app.shutdown.wait() => {
                return Err(ApiError::unavailable("shutting_down", "the daemon is shutting down"));
            }
        }
    }
}

/// `POST /v1/adapters/kamailio/report`.
pub async fn report(
    State(app): State<AppState>,
    Extension(reported): Extension<Reported>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: ReportRequest = read_json_object(&app, &headers, body).await?;
    let event = req.event().map_err(invalid)?;
    let id = req.event_id().map_err(invalid)?;
    let outcome = app
        .engine
        .apply(vec![Input::Event {
            id: id.clone(),
            event,
        }])
        .await?
        .pop();
    let (status, reason) = match outcome {
        Some(Outcome::Applied(_)) => {
            reported.0.notify_waiters();
            ("applied", None)
        }
        Some(Outcome::Duplicate) => ("duplicate", None),
        Some(Outcome::Rejected(e)) if is_late_report(&e) => ("ignored", Some(e)),
        Some(Outcome::Rejected(e)) => return Err(ApiError::from_engine(&e, Some(&id))),
        Some(Outcome::ConfigRefused(p)) => return Err(ApiError::invalid_config(p)),
        None => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the engine returned no outcome",
            ))
        }
    };
    let body = match reason {
        None => serde_json::json!({ "id": id, "status": status }),
        Some(e) => serde_json::json!({
            "id": id, "status": status, "reason": e.code(), "message": e.to_string()
        }),
    };
    Ok(json_line(StatusCode::OK, body.to_string()))
}

/// Kamailio's http_client cannot add an `Authorization: Bearer` header to `http_connect`, but it
/// can send Basic credentials from the connection URL (`http://kamailio:TOKEN@host/...`). Accept
/// either; the token needs the admin role (routing calls changes state) when tokens are configured.
async fn require_adapter_auth(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut headers = request.headers().clone();
    if let Some(token) = basic_password(&headers) {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
            headers.insert(header::AUTHORIZATION, v);
        }
    }
    match app.auth().authorize(&headers, Role::Admin) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// The password of `Authorization: Basic base64(user:password)`.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(agent: &str, offer: &str, expires_at: Millis) -> CallSnapshot {
        CallSnapshot {
            state: InteractionState::Offered,
            offer: Some((
                agent.into(),
                offer.into(),
                format!("sip:{agent}@127.0.0.1:5071"),
                expires_at,
            )),
            overflow_target: None,
            rejected: None,
        }
    }

    fn state(state: InteractionState) -> CallSnapshot {
        CallSnapshot {
            state,
            offer: None,
            overflow_target: None,
            rejected: None,
        }
    }

    #[test]
    fn a_new_offer_rings_the_agent_until_just_before_the_offer_expires() {
        let answer = decide("c1", &offered("a1", "o7", 20_000), None, 5_000);
        let RouteAnswer::Ring(doc) = answer else {
            panic!("expected a route, got {answer:?}");
        };
        assert_eq!(doc.routes[0].uri, "sip:a1@127.0.0.1:5071");
        assert_eq!(doc.routes[0].fr_inv_timer, Some(15_000 - RING_GUARD_MS));
        assert_eq!(doc.agent.as_deref(), Some("a1"));
        assert_eq!(doc.offer.as_deref(), Some("o7"));
        let line = serde_json::to_string(&doc).unwrap();
        assert!(!line.contains('\n'), "Kamailio keeps only the first line");
        assert!(line.contains(r#""routing":"serial""#));
    }

    #[test]
    fn the_offer_kamailio_already_rang_is_not_answered_again() {
        let snap = offered("a1", "o7", 20_000);
        assert_eq!(decide("c1", &snap, Some("o7"), 5_000), RouteAnswer::Wait);
        assert!(matches!(
            decide("c1", &snap, Some("o6"), 5_000),
            RouteAnswer::Ring(_)
        ));
    }

    #[test]
    fn an_offer_about_to_expire_is_left_to_the_engine() {
        let snap = offered("a1", "o7", 5_000 + RING_GUARD_MS + MIN_RING_MS - 1);
        assert_eq!(decide("c1", &snap, None, 5_000), RouteAnswer::Wait);
    }

    #[test]
    fn a_waiting_call_keeps_waiting() {
        assert_eq!(
            decide("c1", &state(InteractionState::Waiting), None, 0),
            RouteAnswer::Wait
        );
    }

    #[test]
    fn each_final_state_has_its_own_sip_answer() {
        let status = |snap: &CallSnapshot| match decide("c1", snap, None, 0) {
            RouteAnswer::Refuse { status, code, .. } => (status, code),
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(
            status(&state(InteractionState::Abandoned)),
            (410, "call_gone")
        );
        assert_eq!(
            status(&state(InteractionState::Connected)),
            (409, "already_connected")
        );
        let mut full = state(InteractionState::Rejected);
        full.rejected = Some((RejectReason::QueueFull, None));
        assert_eq!(status(&full), (486, "queue_full"));
        let mut closed = state(InteractionState::Rejected);
        closed.rejected = Some((RejectReason::Closed, None));
        assert_eq!(status(&closed), (480, "closed"));
        let mut unrouted = state(InteractionState::Rejected);
        unrouted.rejected = Some((RejectReason::NoRoute, None));
        assert_eq!(status(&unrouted), (404, "no_route"));
    }

    #[test]
    fn overflow_and_closed_targets_are_rung_without_an_agent() {
        let mut over = state(InteractionState::Overflowed);
        over.overflow_target = Some("sip:voicemail@127.0.0.1".into());
        let RouteAnswer::Ring(doc) = decide("c1", &over, None, 0) else {
            panic!("expected a route");
        };
        assert_eq!(doc.routes[0].uri, "sip:voicemail@127.0.0.1");
        assert_eq!(doc.agent, None);
        assert_eq!(doc.routes[0].fr_inv_timer, None);

        let mut closed = state(InteractionState::Rejected);
        closed.rejected = Some((RejectReason::Closed, Some("sip:closed@127.0.0.1".into())));
        let RouteAnswer::Ring(doc) = decide("c1", &closed, None, 0) else {
            panic!("expected a route");
        };
        assert_eq!(doc.routes[0].uri, "sip:closed@127.0.0.1");
    }

    fn route_req(queue: &str) -> RouteRequest {
        serde_json::from_str(&format!(
            r#"{{"call_id":"abc@h","from":"sip:alice@h","queue":"{queue}","tindex":1,"tlabel":2}}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_dialed_user_names_the_queue_when_that_queue_exists() {
        let Event::InteractionArrived {
            interaction,
            queue,
            channel,
            attributes,
            customer,
            ..
        } = route_req("support").arrival(|q| q == "support").unwrap()
        else {
            panic!("expected an arrival");
        };
        assert_eq!(interaction, "abc@h");
        assert_eq!(queue.as_deref(), Some("support"));
        assert_eq!(channel, Channel::Voice);
        assert_eq!(
            attributes.get("dialed").map(String::as_str),
            Some("support")
        );
        assert_eq!(customer.as_deref(), Some("sip:alice@h"));
    }

    #[test]
    fn an_unknown_dialed_user_is_left_to_the_routing_rules() {
        let Event::InteractionArrived {
            queue, attributes, ..
        } = route_req("0800123").arrival(|q| q == "support").unwrap()
        else {
            panic!("expected an arrival");
        };
        assert_eq!(queue, None);
        assert_eq!(
            attributes.get("dialed").map(String::as_str),
            Some("0800123")
        );
    }

    #[test]
    fn a_call_without_a_call_id_is_refused() {
        let mut req = route_req("support");
        req.call_id = " ".into();
        assert_eq!(
            req.arrival(|_| true),
            Err(AdapterError::Empty { field: "call_id" })
        );
    }

    fn report(json: &str) -> ReportRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn sip_failures_map_to_decline_reasons() {
        assert_eq!(
            decline_reason(SipOutcome::Declined, Some(486)),
            DeclineReason::Busy
        );
        assert_eq!(
            decline_reason(SipOutcome::Declined, Some(603)),
            DeclineReason::Rejected
        );
        assert_eq!(
            decline_reason(SipOutcome::NoAnswer, Some(408)),
            DeclineReason::NoAnswer
        );
        assert_eq!(
            decline_reason(SipOutcome::Failed, Some(503)),
            DeclineReason::NoAnswer
        );
    }

    #[test]
    fn reports_become_engine_events() {
        let accepted = report(r#"{"call_id":"c","event":"accepted","agent":"a1","offer":"o1"}"#);
        assert_eq!(
            accepted.event().unwrap(),
            Event::OfferAccepted {
                interaction: "c".into(),
                agent: "a1".into()
            }
        );
        let busy = report(
            r#"{"call_id":"c","event":"declined","agent":"a1","offer":"o1","sip_status":486}"#,
        );
        assert_eq!(
            busy.event().unwrap(),
            Event::OfferDeclined {
                interaction: "c".into(),
                agent: "a1".into(),
                reason: DeclineReason::Busy
            }
        );
        assert_eq!(
            report(r#"{"call_id":"c","event":"ended"}"#)
                .event()
                .unwrap(),
            Event::InteractionEnded {
                interaction: "c".into(),
                resolved: None
            }
        );
        assert_eq!(
            report(r#"{"call_id":"c","event":"abandoned"}"#)
                .event()
                .unwrap(),
            Event::InteractionAbandoned {
                interaction: "c".into()
            }
        );
    }

    #[test]
    fn an_agent_report_without_the_agent_is_refused() {
        let r = report(r#"{"call_id":"c","event":"no_answer"}"#);
        assert_eq!(
            r.event(),
            Err(AdapterError::MissingAgent { event: "declined" })
        );
    }

    #[test]
    fn a_retransmitted_report_has_the_same_id_and_a_later_decline_a_new_one() {
        let first = report(r#"{"call_id":"c","event":"declined","agent":"a1","offer":"o1"}"#);
        let again = report(r#"{"call_id":"c","event":"declined","agent":"a1","offer":"o1"}"#);
        let later = report(r#"{"call_id":"c","event":"declined","agent":"a1","offer":"o9"}"#);
        assert_eq!(first.event_id().unwrap(), again.event_id().unwrap());
        assert_ne!(first.event_id().unwrap(), later.event_id().unwrap());
        assert_eq!(
            report(r#"{"call_id":"c","event":"ended"}"#)
                .event_id()
                .unwrap(),
            "kamailio:c:ended"
        );
    }

    #[test]
    fn late_reports_are_recognised() {
        assert!(is_late_report(&EngineError::NoSuchOffer {
            interaction: "c".into(),
            agent: "a".into()
        }));
        assert!(!is_late_report(&EngineError::UnknownAgent {
            agent: "a".into()
        }));
    }

    #[test]
    fn basic_credentials_carry_the_token_as_the_password() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("kamailio:s3cret");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(basic_password(&headers).as_deref(), Some("s3cret"));
    }
}
