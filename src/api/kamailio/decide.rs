//! What `/route` answers: a pure function of the engine's view of the call at that moment
//! (`CallSnapshot`) and what Kamailio rang last, so that a restart or a second Kamailio loses
//! nothing.

use crate::config::{Channel, Millis, Overflow};
use crate::engine::{EngineError, InteractionState, InteractionView, RejectReason, Why};

use super::wire::{Rtjson, RtjsonRoute};
use super::{MIN_RING_MS, RING_GUARD_MS};
use crate::api::error::ApiError;

/// What the engine says about a call, reduced to what `/route` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSnapshot {
    /// The interaction's channel: the adapter acts on voice interactions only (see `decide`).
    pub channel: Channel,
    pub state: InteractionState,
    /// The current offer while offered: (agent, offer id, agent address, expires at).
    pub offer: Option<(String, String, String, Millis)>,
    /// Where it went when it overflowed to a PBX target.
    pub overflow_target: Option<String>,
    /// Why it was rejected, and the queue's closed-hours target.
    pub rejected: Option<(RejectReason, Option<String>)>,
    /// The queue it is (or was last) in, for the messages.
    pub queue: Option<String>,
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
                // The target the `rejected` decision named, recorded with it: a retried
                // `/route` answers the same after a reload changed or removed the queue.
                Why::Rejected { reason, target } if view.state == InteractionState::Rejected => {
                    rejected = Some((*reason, target.as_deref().map(str::to_string)));
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
            queue: view.queue.as_deref().map(str::to_string),
            channel: view.channel,
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
    // The Call-ID shares the interaction id space with every other integration: an id that is a
    // chat's (email's, callback's) is not this call, whatever state that interaction is in.
    if snap.channel != Channel::Voice {
        return RouteAnswer::Refuse {
            status: 409,
            code: CALL_ID_IN_USE,
            message: call_id_in_use(call_id, snap.channel),
        };
    }
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
                message: format!(
                    "{} is closed by its schedule and has no closed_target to send call \
                     `{call_id}` to",
                    queue_of(snap)
                ),
            },
            Some((RejectReason::QueueFull, _)) => RouteAnswer::Refuse {
                status: 486,
                code: "queue_full",
                message: format!(
                    "{} is full (its max_waiting calls wait) and no agent is free for call \
                     `{call_id}`",
                    queue_of(snap)
                ),
            },
            Some((RejectReason::NoRoute, _)) | None => RouteAnswer::Refuse {
                status: 404,
                code: "no_route",
                message: format!("no queue or routing rule takes call `{call_id}`"),
            },
        },
    }
}

/// "queue `support`", or "its queue" when the snapshot has none.
fn queue_of(snap: &CallSnapshot) -> String {
    match &snap.queue {
        Some(q) => format!("queue `{q}`"),
        None => "its queue".to_string(),
    }
}

/// The code for a Call-ID that is the id of an interaction of another channel.
pub const CALL_ID_IN_USE: &str = "call_id_in_use";

/// Why the adapter will not act on `call_id`: it names a `channel` interaction, which came from
/// another integration (the adapter creates voice interactions only).
pub fn call_id_in_use(call_id: &str, channel: Channel) -> String {
    format!(
        "Call-ID `{call_id}` is the id of {} {} interaction not routed through this adapter",
        if channel == Channel::Email { "an" } else { "a" },
        channel.as_str()
    )
}

/// The SIP-facing status for an engine refusal of an arrival.
pub(super) fn arrival_refusal(e: &EngineError) -> ApiError {
    match e {
        EngineError::ChannelNotServed { .. } | EngineError::UnknownQueue { .. } => {
            ApiError::not_found(e.code(), e.to_string())
        }
        other => ApiError::from_engine(other, None),
    }
}

/// Engine refusals of a report that only mean "this report came late" (a retransmission, a
/// report for an offer the engine already expired, a BYE after the call was abandoned…).
pub(super) fn is_late_report(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::NoSuchOffer { .. }
            | EngineError::StaleOffer { .. }
            | EngineError::InvalidTransition { .. }
            | EngineError::UnknownInteraction { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(agent: &str, offer: &str, expires_at: Millis) -> CallSnapshot {
        CallSnapshot {
            channel: Channel::Voice,
            state: InteractionState::Offered,
            offer: Some((
                agent.into(),
                offer.into(),
                format!("sip:{agent}@127.0.0.1:5071"),
                expires_at,
            )),
            overflow_target: None,
            rejected: None,
            queue: None,
        }
    }

    fn state(state: InteractionState) -> CallSnapshot {
        CallSnapshot {
            channel: Channel::Voice,
            state,
            offer: None,
            overflow_target: None,
            rejected: None,
            queue: None,
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
        // The message names the queue and why it is closed.
        closed.queue = Some("night".into());
        match decide("k2", &closed, None, 0) {
            RouteAnswer::Refuse { message, .. } => assert_eq!(
                message,
                "queue `night` is closed by its schedule and has no closed_target to send call \
                 `k2` to"
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let mut unrouted = state(InteractionState::Rejected);
        unrouted.rejected = Some((RejectReason::NoRoute, None));
        assert_eq!(status(&unrouted), (404, "no_route"));
    }

    #[test]
    fn an_interaction_of_another_channel_is_never_taken_for_the_call() {
        for channel in [Channel::Chat, Channel::Email, Channel::Callback] {
            let mut snap = offered("a1", "o7", 20_000);
            snap.channel = channel;
            let RouteAnswer::Refuse {
                status,
                code,
                message,
            } = decide("chat-1", &snap, None, 5_000)
            else {
                panic!("a {} interaction must not be rung", channel.as_str());
            };
            assert_eq!((status, code), (409, CALL_ID_IN_USE));
            assert!(message.contains(channel.as_str()), "{message}");
            let mut done = state(InteractionState::Done);
            done.channel = channel;
            assert!(matches!(
                decide("chat-1", &done, None, 0),
                RouteAnswer::Refuse {
                    code: CALL_ID_IN_USE,
                    ..
                }
            ));
        }
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

    #[test]
    fn late_reports_are_recognised() {
        assert!(is_late_report(&EngineError::NoSuchOffer {
            interaction: "c".into(),
            agent: "a".into(),
            now: "it is waiting in queue `q`".into(),
        }));
        assert!(!is_late_report(&EngineError::UnknownAgent {
            agent: "a".into()
        }));
    }
}
