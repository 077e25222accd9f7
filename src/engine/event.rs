//! Inputs to the engine: what the PBX, chat platform or an admin says happened.
//!
//! These are the `type`-tagged JSON objects of `POST /v1/events` minus the envelope `id` (the
//! idempotency key belongs to the daemon, not the engine). Unknown fields are refused so a typo
//! never passes silently.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Channel, Tier};

/// Why an agent declined an offer. Each reason has its own back-off delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The agent pressed "reject" (`reject_delay_s`).
    Rejected,
    /// The agent's device was busy (`busy_delay_s`).
    Busy,
    /// Nobody answered (`no_answer_delay_s`, counts towards `max_no_answer`).
    NoAnswer,
}

/// The states an agent (or an admin) can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestedState {
    Available,
    NotReady,
    Offline,
}

/// One input event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Event {
    /// A call or chat has arrived and wants an agent.
    #[serde(rename = "interaction.arrived")]
    InteractionArrived {
        interaction: String,
        channel: Channel,
        /// Names the queue directly (routing rules are skipped).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<i32>,
        /// An agent must have all of these.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skills: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        attributes: BTreeMap<String, String>,
    },
    /// The customer hung up or left the chat before it ended normally.
    #[serde(rename = "interaction.abandoned")]
    InteractionAbandoned { interaction: String },
    /// A connected interaction ended; wrap-up starts on the agent's slot.
    #[serde(rename = "interaction.ended")]
    InteractionEnded {
        interaction: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolved: Option<bool>,
    },
    /// A satisfaction score (1–5) for an interaction that was connected.
    #[serde(rename = "interaction.rated")]
    InteractionRated { interaction: String, score: u8 },
    /// The agent moved a connected interaction to another queue.
    #[serde(rename = "interaction.transferred")]
    InteractionTransferred { interaction: String, queue: String },
    /// The agent sends a connected interaction back to its queue for tiers ≥ `min_tier`.
    #[serde(rename = "interaction.escalated")]
    InteractionEscalated { interaction: String, min_tier: Tier },
    #[serde(rename = "offer.accepted")]
    OfferAccepted { interaction: String, agent: String },
    #[serde(rename = "offer.declined")]
    OfferDeclined {
        interaction: String,
        agent: String,
        reason: DeclineReason,
    },
    /// An agent logs in (becomes available). Fields given here override the roster.
    #[serde(rename = "agent.login")]
    AgentLogin {
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tiers: Option<BTreeMap<String, Tier>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skills: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capacity: Option<BTreeMap<Channel, u32>>,
    },
    #[serde(rename = "agent.state")]
    AgentState {
        agent: String,
        state: RequestedState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    #[serde(rename = "agent.logout")]
    AgentLogout { agent: String },
    /// The agent finished wrap-up early (all of its wrap-up slots end now).
    #[serde(rename = "agent.wrapup_done")]
    AgentWrapupDone { agent: String },
}

impl Event {
    /// The event's `type` string, as on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::InteractionArrived { .. } => "interaction.arrived",
            Event::InteractionAbandoned { .. } => "interaction.abandoned",
            Event::InteractionEnded { .. } => "interaction.ended",
            Event::InteractionRated { .. } => "interaction.rated",
            Event::InteractionTransferred { .. } => "interaction.transferred",
            Event::InteractionEscalated { .. } => "interaction.escalated",
            Event::OfferAccepted { .. } => "offer.accepted",
            Event::OfferDeclined { .. } => "offer.declined",
            Event::AgentLogin { .. } => "agent.login",
            Event::AgentState { .. } => "agent.state",
            Event::AgentLogout { .. } => "agent.logout",
            Event::AgentWrapupDone { .. } => "agent.wrapup_done",
        }
    }
}
