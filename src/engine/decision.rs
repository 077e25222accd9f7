//! Outputs of the engine: what the PBX must do, plus facts for metrics and the simulator.
//!
//! A `Decision` is an instruction or notice for the PBX (offer, revoke, overflow…), numbered with a
//! gap-free `seq`. A `Fact` is an observation for metrics, statistics and the simulator (an answer
//! with its wait, an abandon…); facts never reach the PBX and carry no sequence number.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Channel, Millis, Tier};
use crate::engine::event::DeclineReason;

/// Why an offer was taken back from an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The agent did not accept within the queue's `offer_timeout_s`.
    Expired,
    /// The customer left while the agent's phone was ringing.
    Abandoned,
    /// The agent went offline (logout or `agent.state` offline).
    AgentOffline,
    /// A live reload moved the interaction away from the agent's queue, or a login's `tiers`
    /// took that queue away from the agent.
    Reconfigured,
    /// Another agent answered the interaction outside tierline's offers
    /// (`interaction.answered`: a phone that rang on after its own offer ended). Not the
    /// ringing agent's doing: no back-off, no no-answer counted.
    AnsweredElsewhere,
    /// The agent answered another, exclusive interaction outside tierline's offers
    /// (`interaction.answered`): its phone is busy with that one. No back-off, no no-answer.
    AgentAnsweredOther,
}

/// Why an interaction was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The queue already has `max_waiting` interactions waiting.
    QueueFull,
    /// The queue's schedule says it is closed (see `target`).
    Closed,
    /// No queue named, no rule matched, and no default queue.
    NoRoute,
}

/// Agent status as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Offline,
    Available,
    NotReady,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Offline => "offline",
            AgentStatus::Available => "available",
            AgentStatus::NotReady => "not_ready",
        }
    }
}

/// One decision, numbered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Gap-free, strictly increasing across the engine's life (continues across restarts).
    pub seq: u64,
    /// When it was made (engine time). Serialized as RFC 3339 with milliseconds.
    #[serde(with = "rfc3339_ms")]
    pub at: Millis,
    #[serde(flatten)]
    pub kind: DecisionKind,
}

/// What was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DecisionKind {
    /// Ring / deliver this interaction to this agent's address.
    Offer {
        interaction: Arc<str>,
        agent: Arc<str>,
        address: Arc<str>,
        queue: Arc<str>,
        /// The interaction's channel, so a PBX and a chat platform sharing a queue each know the
        /// offers that are theirs. `None` only in offers logged before it was added (read back
        /// from an older snapshot's decision log).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<crate::config::Channel>,
        offer: Arc<str>,
        #[serde(with = "rfc3339_ms")]
        expires_at: Millis,
    },
    /// No agent is free: the interaction waits in `queue` at `position` (1 = next). Also made
    /// when an offer of it ended (declined, expired, taken back) and it waits again, with no
    /// `position`: it is back in its original place, ahead of those of its priority that came
    /// after it, and that place is not counted (an O(log n) count covers only the newest).
    Queued {
        interaction: Arc<str>,
        queue: Arc<str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<u64>,
    },
    /// Stop ringing this agent.
    OfferRevoked {
        interaction: Arc<str>,
        agent: Arc<str>,
        offer: Arc<str>,
        reason: RevokeReason,
    },
    /// Waited `max_wait_s`: moved to `queue` (inside tierline) or handed to `target` (PBX).
    Overflow {
        interaction: Arc<str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<Arc<str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<Arc<str>>,
    },
    /// Refused; the PBX should send it to `target` if given (closed queues), else fail the call.
    Rejected {
        interaction: Arc<str>,
        reason: RejectReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<Arc<str>>,
    },
    /// The interaction reached ladder step `step` (timer), or an agent escalated it (`by`).
    Escalated {
        interaction: Arc<str>,
        queue: Arc<str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Arc<str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_tier: Option<Tier>,
    },
    /// An agent's status changed without the PBX saying so: the engine's own doing
    /// (`max_no_answer` reached) or an administrator's forced state (`Engine::force_state`).
    AgentState {
        agent: Arc<str>,
        state: AgentStatus,
        reason: Option<Arc<str>>,
    },
}

impl DecisionKind {
    /// Every `type_name`, as a subscriber's `types` may list them.
    pub const TYPE_NAMES: [&'static str; 7] = [
        "offer",
        "queued",
        "offer_revoked",
        "overflow",
        "rejected",
        "escalated",
        "agent_state",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            DecisionKind::Offer { .. } => "offer",
            DecisionKind::Queued { .. } => "queued",
            DecisionKind::OfferRevoked { .. } => "offer_revoked",
            DecisionKind::Overflow { .. } => "overflow",
            DecisionKind::Rejected { .. } => "rejected",
            DecisionKind::Escalated { .. } => "escalated",
            DecisionKind::AgentState { .. } => "agent_state",
        }
    }
}

/// How an offer ended, for `tierline_offers_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferResult {
    Accepted,
    Declined(DeclineReason),
    TimedOut,
    Revoked,
}

/// Observations for metrics, KPIs and the simulator. Emitted in the same order as decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fact {
    /// An interaction entered the system (routed to `queue`, or `None` when rejected unrouted).
    Arrived {
        interaction: Arc<str>,
        queue: Option<Arc<str>>,
        channel: Channel,
        at: Millis,
        /// The `category` attribute, for the complaint-share KPI.
        category: Option<Arc<str>>,
    },
    /// An offer was made.
    Offered {
        queue: Arc<str>,
        channel: Channel,
        agent: Arc<str>,
        at: Millis,
    },
    /// An agent accepted: `wait_ms` is from entering the queue to the accept.
    Answered {
        interaction: Arc<str>,
        queue: Arc<str>,
        channel: Channel,
        agent: Arc<str>,
        tier: Option<Tier>,
        wait_ms: Millis,
        at: Millis,
    },
    OfferEnded {
        queue: Arc<str>,
        agent: Arc<str>,
        result: OfferResult,
        at: Millis,
    },
    /// The customer left while waiting or ringing.
    Abandoned {
        interaction: Arc<str>,
        queue: Arc<str>,
        channel: Channel,
        wait_ms: Millis,
        short: bool,
        at: Millis,
    },
    Overflowed {
        interaction: Arc<str>,
        queue: Arc<str>,
        channel: Channel,
        wait_ms: Millis,
        to_queue: Option<Arc<str>>,
        at: Millis,
    },
    Rejected {
        interaction: Arc<str>,
        queue: Option<Arc<str>>,
        channel: Channel,
        reason: RejectReason,
        at: Millis,
    },
    /// A ladder step was reached (step ≥ 1).
    StepReached {
        queue: Arc<str>,
        step: usize,
        at: Millis,
    },
    /// An agent escalated an interaction explicitly.
    EscalatedByAgent {
        queue: Arc<str>,
        agent: Arc<str>,
        min_tier: Tier,
        at: Millis,
    },
    Transferred {
        from_queue: Arc<str>,
        to_queue: Arc<str>,
        agent: Arc<str>,
        at: Millis,
    },
    /// A config change removed `from_queue`, and its `drain_to` moved the interaction into
    /// `to_queue` (keeping its place and waiting time).
    Drained {
        interaction: Arc<str>,
        from_queue: Arc<str>,
        to_queue: Arc<str>,
        /// True if it was waiting or offered, so it now waits in `to_queue`; false if an agent
        /// owns it (connected or in wrap-up) and only the queue it belongs to changed.
        waiting: bool,
        at: Millis,
    },
    /// A connected interaction ended (wrap-up starts).
    Ended {
        interaction: Arc<str>,
        queue: Arc<str>,
        channel: Channel,
        agent: Arc<str>,
        resolved: Option<bool>,
        connected_ms: Millis,
        at: Millis,
    },
    /// An agent's slot was released after wrap-up: handle time = connected + wrap-up.
    WrapUpEnded {
        queue: Arc<str>,
        channel: Channel,
        agent: Arc<str>,
        handle_ms: Millis,
        at: Millis,
    },
    Rated {
        interaction: Arc<str>,
        queue: Arc<str>,
        agent: Option<Arc<str>>,
        score: u8,
        at: Millis,
    },
    /// An agent's status changed (login, logout, not_ready…).
    AgentStatusChanged {
        agent: Arc<str>,
        from: AgentStatus,
        to: AgentStatus,
        reason: Option<Arc<str>>,
        at: Millis,
    },
}

/// RFC 3339 with milliseconds, UTC (`2026-11-23T12:00:00.000Z`).
pub mod rfc3339_ms {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::config::Millis;

    pub fn format(ms: Millis) -> String {
        match chrono::DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64) {
            // Not `format("%Y-…")`: that parses the format string on every call, and every
            // decision and read answer formats times (≈ 1 % of the engine thread under load).
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => ms.to_string(),
        }
    }

    pub fn parse(s: &str) -> Result<Millis, String> {
        let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
            // A local time alone names no instant: say what is missing, not chrono's
            // "premature end of input".
            let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .any(|f| chrono::NaiveDateTime::parse_from_str(s, f).is_ok());
            if local {
                format!(
                    "time `{s}` has no UTC offset, so it names no instant: add one, e.g. \
                     `{s}Z` (UTC) or `{s}+01:00`"
                )
            } else {
                format!("invalid RFC 3339 time `{s}`: {e}")
            }
        })?;
        u64::try_from(t.timestamp_millis()).map_err(|_| format!("time `{s}` is before 1970"))
    }

    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339_ms;

    #[test]
    fn times_format_as_rfc3339_with_milliseconds_in_utc_and_read_back() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_435_200_007, "2026-11-23T12:00:00.007Z"),
            (1_795_435_259_999, "2026-11-23T12:00:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(rfc3339_ms::format(ms), text);
            assert_eq!(rfc3339_ms::parse(text), Ok(ms));
        }
    }
}
