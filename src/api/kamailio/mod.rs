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
//! Chats, emails and callbacks from other integrations share the interaction id space, so a
//! Call-ID can name one of them (a predictable `chat-123`). The adapter acts only on voice
//! interactions: `/route` refuses such a Call-ID (409 `call_id_in_use`) and `/report` applies
//! nothing to it (`ignored`, reason `call_id_in_use`), so a caller can neither ring the agent
//! offered someone's chat nor abandon, accept or end that chat.
//!
//! `/route` answers, by HTTP status (the status *is* the SIP status Kamailio replies with, except
//! 200/202/410):
//! - 200 + rtjson: ring `routes[0].uri` — an agent (with `agent`, `offer`, and `fr_inv_timer` =
//!   the rest of the offer's time minus a guard) or an overflow / closed-hours target (no `agent`).
//! - 202 `{"status":"waiting","interaction":"<call_id>"}`: still no agent after the hold time;
//!   ask again.
//! - 410 `call_gone`: the call ended in tierline (abandoned); Kamailio replies 487.
//! - 486 `queue_full`, 480 `closed` (no closed target), 404 `no_route` / `channel_not_served`,
//!   409 `already_connected`, 409 `call_id_in_use` (the Call-ID is a non-voice interaction's id),
//!   503 when the engine is busy, at capacity or stopping.

mod decide;
mod wire;

pub use decide::*;
pub use wire::*;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use tokio::sync::Notify;

use crate::config::{Channel, Millis};
use crate::daemon::core::{Input, Outcome};
use crate::engine::{EngineError, Event};

use super::auth::{Role, Schemes};
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
/// Longest accepted Call-ID or offer id (they become parts of event ids). An agent id may be as
/// long as the engine allows (`engine::event::MAX_ID_LEN`): `/route` answers it.
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
    let Query(q) = query.map_err(|e| ApiError::invalid_query(&e))?;
    let req: RouteRequest = read_json_object(&app, &headers, body).await?;
    let hold = Duration::from_millis(q.hold_ms.unwrap_or(DEFAULT_HOLD_MS)).min(app.long_poll_max);
    let deadline = tokio::time::Instant::now() + hold;
    let mut seq = app.engine.next_seq_watch();

    // A new call enters tierline; a repeated /route (after a failed agent, or a retransmission)
    // finds it there. The event id makes a racing duplicate harmless. An interaction of another
    // channel found (or racing) under this id is not the call: `decide` refuses it from the
    // snapshot, which carries the channel, before anything is rung.
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
    // Only a voice interaction can be this call: an outcome for a Call-ID that is a chat's
    // (email's, callback's) id is not applied to it, nor is a late answer's withdraw.
    let call = req.call_id.clone();
    let foreign = app
        .engine
        .read_core(move |v| {
            v.core
                .engine()
                .interaction(&call)
                .map(|i| i.channel)
                .filter(|c| *c != Channel::Voice)
        })
        .await?;
    if let Some(channel) = foreign {
        let mut body = serde_json::json!({
            "id": id, "status": "ignored", "reason": CALL_ID_IN_USE,
            "message": call_id_in_use(&req.call_id, channel)
        });
        if req.event == SipOutcome::Accepted {
            body["connected"] = serde_json::Value::Bool(false);
            body["withdrawn"] = serde_json::Value::Bool(false);
        }
        return Ok(json_line(StatusCode::OK, body.to_string()));
    }
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
        // The adapter's answer is the status alone: the first delivery's decisions it carries
        // are not needed here (the route long-poll reads the call's state).
        Some(Outcome::Duplicate(_)) => ("duplicate", None),
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
        // A 2xx from a phone whose offer tierline no longer holds (revoked, expired) connected
        // the caller all the same, and no `/route` follows. tierline follows the phone: the
        // call is connected to that agent (`interaction.answered`; an offer of it ringing
        // another agent is revoked). Should the engine refuse that (the agent holds another
        // call, the call is connected elsewhere or gone), a call still queued or offered would
        // be a ghost, offered to agents nobody rings: it is let go of, as for a caller who
        // hung up.
        Some(e) if req.event == SipOutcome::Accepted => {
            let agent = req.agent.clone().unwrap_or_default();
            let mut message = e.to_string();
            let offer = req.offer.clone().unwrap_or_default();
            // Only a ring tierline made: a report naming an offer never made to this agent for
            // this call (a stray or forged report) connects and withdraws nothing.
            if !rang(&app, &req.call_id, &agent, &offer).await? {
                message.push_str(&format!(
                    "; offer `{offer}` was never made to agent `{agent}` for this call, so \
                     nothing was changed"
                ));
                let body = serde_json::json!({
                    "id": id, "status": status, "reason": e.code(), "message": message,
                    "connected": false, "withdrawn": false
                });
                return Ok(json_line(StatusCode::OK, body.to_string()));
            }
            let answered_id = format!("kamailio:{}:{offer}:answered", req.call_id);
            match answer_late(&app, &reported, &req.call_id, &answered_id, &agent).await? {
                Some(Outcome::Applied(_)) => {
                    message.push_str(&format!(
                        ": the phone answered anyway, so the call was connected to agent `{agent}` \
                         (interaction.answered, event id `{answered_id}`)"
                    ));
                    serde_json::json!({
                        "id": id, "status": "applied", "reason": e.code(), "message": message,
                        "connected": true, "withdrawn": false, "answered_id": answered_id
                    })
                }
                Some(Outcome::Duplicate(_)) => serde_json::json!({
                    "id": id, "status": "duplicate", "connected": true, "withdrawn": false,
                    "answered_id": answered_id
                }),
                refused => {
                    let withdrawn = withdraw(&app, &reported, &req.call_id).await?;
                    if let Some(Outcome::Rejected(why)) = refused {
                        message.push_str(&format!(
                            "; the phone answered anyway, and it cannot be connected to agent \
                             `{agent}`: {why}"
                        ));
                    }
                    if withdrawn {
                        message.push_str(
                            ": the call was taken out of tierline (interaction.abandoned)",
                        );
                    }
                    serde_json::json!({
                        "id": id, "status": status, "reason": e.code(), "message": message,
                        "connected": false, "withdrawn": withdrawn
                    })
                }
            }
        }
        Some(e) => serde_json::json!({
            "id": id, "status": status, "reason": e.code(), "message": e.to_string()
        }),
    };
    Ok(json_line(StatusCode::OK, body.to_string()))
}

/// Whether tierline offered `call_id` to `agent` as `offer` (its history says so; a history
/// trimmed by `[limits] max_history` cannot tell, and the report is believed, as for a call no
/// longer held).
async fn rang(app: &AppState, call_id: &str, agent: &str, offer: &str) -> Result<bool, ApiError> {
    let (call, agent, offer) = (call_id.to_string(), agent.to_string(), offer.to_string());
    Ok(app
        .engine
        .read_core(move |v| {
            // A call tierline no longer holds: nothing to protect, and the engine refuses both
            // the answer and the withdraw.
            v.core.engine().interaction(&call).is_none_or(|i| {
                i.history_dropped > 0
                    || i.history.iter().any(|t| {
                        matches!(&t.why, crate::engine::Why::Offered { agent: a, offer: o }
                            if **a == *agent && **o == *offer)
                    })
            })
        })
        .await?)
}

/// Connect a call to the agent whose phone answered it outside tierline's offers
/// (`interaction.answered`, one event id per ring, `kamailio:<call-id>:<offer>:answered`: a
/// retransmitted 2xx is a duplicate, and a late answer of another ring, another agent's or the
/// same agent's after the call came back, is its own event).
async fn answer_late(
    app: &AppState,
    reported: &Reported,
    call_id: &str,
    id: &str,
    agent: &str,
) -> Result<Option<Outcome>, ApiError> {
    let event = Event::InteractionAnswered {
        interaction: call_id.to_string(),
        agent: agent.to_string(),
    };
    apply_one(app, reported, id.to_string(), event).await
}

/// Take a call connected outside tierline's offers out of its queue (the caller's abandon, under
/// the same event id, so a later CANCEL report is a duplicate). The engine refuses it unless the
/// call is still waiting or offered; whether it applied is the answer.
async fn withdraw(app: &AppState, reported: &Reported, call_id: &str) -> Result<bool, ApiError> {
    let event = Event::InteractionAbandoned {
        interaction: call_id.to_string(),
    };
    let id = format!("kamailio:{call_id}:abandoned");
    let outcome = apply_one(app, reported, id, event).await?;
    Ok(matches!(outcome, Some(Outcome::Applied(_))))
}

/// Apply one event the adapter makes itself; a held `/route` of the call hears of it if it
/// applied.
async fn apply_one(
    app: &AppState,
    reported: &Reported,
    id: String,
    event: Event,
) -> Result<Option<Outcome>, ApiError> {
    let outcome = app
        .engine
        .apply(vec![Input::Event { id, event }])
        .await?
        .pop();
    if matches!(outcome, Some(Outcome::Applied(_))) {
        reported.0.notify_waiters();
    }
    Ok(outcome)
}

/// Bearer or Basic credentials (`Schemes::BearerOrBasic`: Kamailio can send only the latter);
/// the token needs the admin role (routing calls changes state) when tokens are configured.
async fn require_adapter_auth(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let auth = app.auth();
    // Kamailio cannot sign its requests, so without a token the adapter would be a way around
    // the signatures `POST /v1/events` requires: refuse until an admin token is configured.
    if auth.signatures_required() && !auth.tokens_required() {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "inbound events must be signed ([auth] webhook_secrets_*) and the Kamailio adapter \
             cannot sign: configure an admin token ([auth] admin_tokens_env or \
             admin_tokens_file) and give it to Kamailio as the password in the connection URL",
        );
        e.challenge = Some(Schemes::BearerOrBasic);
        return e.into_response();
    }
    match auth.authorize_with(request.headers(), Role::Admin, Schemes::BearerOrBasic) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}
