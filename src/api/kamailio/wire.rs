//! What Kamailio sends: the `/route` and `/report` bodies, checked, and turned into tierline
//! events. Pure functions of the request; nothing here reads the engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Channel, Millis};
use crate::engine::{DeclineReason, Event};

use super::MAX_ID_LEN;
use crate::engine::event::{MAX_ATTRIBUTE_LEN, MAX_ID_LEN as ENGINE_ID_LEN};

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

impl SipOutcome {
    /// The name `kamailio.cfg` sends.
    pub fn as_str(self) -> &'static str {
        match self {
            SipOutcome::Accepted => "accepted",
            SipOutcome::Declined => "declined",
            SipOutcome::NoAnswer => "no_answer",
            SipOutcome::Failed => "failed",
            SipOutcome::Ended => "ended",
            SipOutcome::Abandoned => "abandoned",
        }
    }
}

/// What `kamailio.cfg` sends to `/report` (a misspelt field is refused, not ignored: a lost
/// `offer` would make a decline look like a retransmission).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub call_id: String,
    pub event: SipOutcome,
    /// The agent whose leg this is (`accepted`, `declined`, `no_answer`, `failed`).
    #[serde(default)]
    pub agent: Option<String>,
    /// The offer id `/route` answered with; required with `agent` (an agent leg's outcome).
    /// The engine applies the outcome to that offer only, and it makes repeated declines of one
    /// call by one agent distinct.
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

/// Why a request from Kamailio is unusable (422 with the field named).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    #[error("`{field}` is empty")]
    Empty { field: &'static str },
    #[error("`{field}` is {len} bytes long; at most {max} are accepted")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{} `{event}` report needs `agent` (whose phone it was)",
        a_or_an(event)
    )]
    MissingAgent { event: &'static str },
    #[error(
        "{} `{event}` report needs `offer`, the offer id `/route` answered with: without it a \
         late report could be taken for the agent's current offer, and a second decline of the \
         call by the same agent for a retransmission",
        a_or_an(event)
    )]
    MissingOffer { event: &'static str },
    #[error("`{field}` holds a control character (U+{code:04X} at byte {at})")]
    ControlCharacter {
        field: &'static str,
        code: u32,
        at: usize,
    },
}

/// The article before an outcome's name: "an `accepted` report", "a `declined` report". The
/// names are plain English words, so a vowel letter means a vowel sound.
fn a_or_an(word: &str) -> &'static str {
    match word.bytes().next() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    }
}

impl AdapterError {
    pub fn code(&self) -> &'static str {
        match self {
            AdapterError::Empty { .. } => "missing_field",
            AdapterError::TooLong { .. } => "field_too_long",
            AdapterError::MissingAgent { .. } => "missing_agent",
            AdapterError::MissingOffer { .. } => "missing_offer",
            AdapterError::ControlCharacter { .. } => "invalid_field",
        }
    }
}

/// A Call-ID or offer id: at most `MAX_ID_LEN` bytes, as they become parts of event ids.
pub(super) fn check_id(field: &'static str, value: &str) -> Result<(), AdapterError> {
    check_len(field, value, MAX_ID_LEN)
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), AdapterError> {
    if value.trim().is_empty() {
        return Err(AdapterError::Empty { field });
    }
    if value.len() > max {
        return Err(AdapterError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    // An id the engine keeps (a Call-ID becomes the interaction's): told here in the adapter's
    // words, not as the engine's `invalid_value` for a field the request does not have.
    if let Some((at, c)) = crate::engine::event::first_control(value) {
        return Err(AdapterError::ControlCharacter {
            field,
            code: c as u32,
            at,
        });
    }
    Ok(())
}

/// `value` trimmed, unless empty or longer than `max`, or for an `id` holding a control
/// character (then logged and left out).
fn kept<'a>(
    call_id: &str,
    value: Option<&'a str>,
    max: usize,
    field: &str,
    id: bool,
) -> Option<&'a str> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    if value.len() > max {
        tracing::warn!(
            call_id,
            field,
            bytes = value.len(),
            max,
            "kamailio /route: value too long to keep, left out"
        );
        return None;
    }
    // An id (the From as customer id) may hold no control character; an attribute value may.
    if id && crate::engine::event::first_control(value).is_some() {
        tracing::warn!(
            call_id,
            field,
            "kamailio /route: value holds a control character, left out"
        );
        return None;
    }
    Some(value)
}

impl RouteRequest {
    /// The `interaction.arrived` for this call. The request-URI user names the queue when such a
    /// queue exists; otherwise the routing rules decide, seeing it as attribute `dialed`.
    pub fn arrival(&self, queue_exists: impl Fn(&str) -> bool) -> Result<Event, AdapterError> {
        check_id("call_id", &self.call_id)?;
        // A SIP header longer than the engine keeps for a customer or an attribute is left
        // out rather than refused: the call is still routed (by the rules, without it).
        let usable = |value, max, field| kept(&self.call_id, value, max, field, false);
        let mut attributes = BTreeMap::new();
        let dialed = usable(self.queue.as_deref(), MAX_ATTRIBUTE_LEN, "queue");
        if let Some(d) = dialed {
            attributes.insert("dialed".to_string(), d.to_string());
        }
        let from = usable(self.from.as_deref(), MAX_ATTRIBUTE_LEN, "from");
        if let Some(f) = from {
            attributes.insert("from".to_string(), f.to_string());
        }
        if let Some(t) = usable(self.to.as_deref(), MAX_ATTRIBUTE_LEN, "to") {
            attributes.insert("to".to_string(), t.to_string());
        }
        Ok(Event::InteractionArrived {
            interaction: self.call_id.clone(),
            channel: Channel::Voice,
            queue: dialed.filter(|q| queue_exists(q)).map(str::to_string),
            priority: None,
            skills: Vec::new(),
            customer: kept(&self.call_id, from, ENGINE_ID_LEN, "from as customer", true)
                .map(str::to_string),
            attributes,
        })
    }
}

impl ReportRequest {
    /// The engine event this SIP outcome means.
    pub fn event(&self) -> Result<Event, AdapterError> {
        check_id("call_id", &self.call_id)?;
        let interaction = self.call_id.clone();
        // An agent leg's outcome: whose phone, and which offer it rang.
        let leg = |event: &'static str| -> Result<(String, String), AdapterError> {
            let a = self
                .agent
                .clone()
                .ok_or(AdapterError::MissingAgent { event })?;
            // Any id the config or a login can give an agent (the engine's limit): `/route`
            // answers it, so its reports must be taken.
            check_len("agent", &a, ENGINE_ID_LEN)?;
            let o = self
                .offer
                .clone()
                .ok_or(AdapterError::MissingOffer { event })?;
            check_id("offer", &o)?;
            Ok((a, o))
        };
        Ok(match self.event {
            SipOutcome::Accepted => {
                let (agent, offer) = leg("accepted")?;
                Event::OfferAccepted {
                    interaction,
                    agent,
                    offer: Some(offer),
                }
            }
            SipOutcome::Declined | SipOutcome::NoAnswer | SipOutcome::Failed => {
                let (agent, offer) = leg(self.event.as_str())?;
                Event::OfferDeclined {
                    interaction,
                    agent,
                    reason: decline_reason(self.event, self.sip_status),
                    offer: Some(offer),
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A From with a control character (a tab in a display name) is left out as the customer
    /// id, which may hold none, and kept as the `from` attribute: the call is routed, not
    /// refused. A Call-ID with one is refused in the adapter's words.
    #[test]
    fn a_control_character_leaves_the_customer_out_and_refuses_a_call_id() {
        let mut req = route_req("support");
        req.from = Some("\"Alice\tSmith\" <sip:alice@x>".into());
        let Ok(Event::InteractionArrived {
            customer,
            attributes,
            ..
        }) = req.arrival(|q| q == "support")
        else {
            panic!("expected an arrival");
        };
        assert_eq!(customer, None);
        assert_eq!(
            attributes.get("from").map(String::as_str),
            Some("\"Alice\tSmith\" <sip:alice@x>")
        );
        req.call_id = "k\n5".into();
        let refused = req.arrival(|_| true).err();
        assert_eq!(
            refused,
            Some(AdapterError::ControlCharacter {
                field: "call_id",
                code: 0x0A,
                at: 1
            })
        );
        assert_eq!(refused.map(|e| e.code()), Some("invalid_field"));
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
                agent: "a1".into(),
                offer: Some("o1".into()),
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
                reason: DeclineReason::Busy,
                offer: Some("o1".into()),
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
            Err(AdapterError::MissingAgent { event: "no_answer" })
        );
        let r = report(r#"{"call_id":"c","event":"accepted","agent":"a1"}"#);
        assert_eq!(
            r.event(),
            Err(AdapterError::MissingOffer { event: "accepted" })
        );
    }

    #[test]
    fn a_report_is_an_accepted_one_or_a_declined_one() {
        let accepted = AdapterError::MissingOffer { event: "accepted" }.to_string();
        assert!(
            accepted.starts_with("an `accepted` report needs `offer`"),
            "{accepted}"
        );
        let declined = AdapterError::MissingAgent { event: "declined" }.to_string();
        assert!(
            declined.starts_with("a `declined` report needs `agent`"),
            "{declined}"
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
}
