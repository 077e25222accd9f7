//! Why the engine refused an event. A refused event leaves the engine's state exactly as it was.

use thiserror::Error;

use super::event::Named;
use crate::config::{Channel, Millis};

/// How a caller should classify a refusal (the daemon maps it to 409 or 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The event names something that does not exist or carries a bad value (HTTP 422).
    Invalid,
    /// The event is well-formed but not allowed in the current state (HTTP 409).
    Conflict,
    /// The engine is at an explicit limit (HTTP 503).
    Limit,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    #[error("unknown agent {}", Named(agent))]
    UnknownAgent { agent: String },
    #[error("unknown interaction {}", Named(interaction))]
    UnknownInteraction { interaction: String },
    #[error("unknown queue {} (interaction {})", Named(queue), Named(interaction))]
    UnknownQueue { queue: String, interaction: String },
    #[error("interaction {} already exists (state {state})", Named(interaction))]
    DuplicateInteraction {
        interaction: String,
        state: &'static str,
    },
    #[error("queue `{queue}` does not serve channel {channel} (interaction `{interaction}`)")]
    ChannelNotServed {
        queue: String,
        channel: Channel,
        interaction: String,
    },
    #[error(
        "interaction {} has no pending offer to agent {}: {now}",
        Named(interaction),
        Named(agent)
    )]
    NoSuchOffer {
        interaction: String,
        agent: String,
        /// Where the interaction is instead (connected to that agent already, offered to
        /// another, waiting after the offer expired…), so a PBX can tell a repeated accept from
        /// a caller it must drop.
        now: String,
    },
    #[error(
        "offer {} of interaction {} to agent {} is not the one pending (an earlier offer of \
         it, or an id never made): an answer to any other offer changes nothing",
        Named(offer),
        Named(interaction),
        Named(agent)
    )]
    StaleOffer {
        interaction: String,
        agent: String,
        offer: String,
    },
    #[error("interaction `{interaction}` is in state `{state}`; `{event}` needs it {expected}")]
    InvalidTransition {
        interaction: String,
        event: &'static str,
        state: &'static str,
        expected: &'static str,
    },
    #[error(
        "agent {} has no room for interaction {}: {holds}; it cannot have answered it as well",
        Named(agent),
        Named(interaction)
    )]
    AgentBusy {
        agent: String,
        interaction: String,
        /// What the agent holds that leaves no room (an exclusive call, its capacity…).
        holds: String,
    },
    #[error("agent `{agent}` is not known and the login carries no address")]
    AgentNeedsAddress { agent: String },
    #[error(
        "agent {} names unknown queue {} in its tiers",
        Named(agent),
        Named(queue)
    )]
    AgentUnknownQueue { agent: String, queue: String },
    #[error("invalid value for `{field}`: {message}")]
    InvalidValue {
        field: &'static str,
        message: String,
    },
    #[error(
        "queue `{queue}` is full ({max_waiting} waiting) and no agent other than the one \
         handing interaction `{interaction}` over is free to take it: it may not enter the queue \
         now"
    )]
    QueueFull {
        queue: String,
        max_waiting: usize,
        interaction: String,
    },
    #[error(
        "queue `{queue}` is closed by its schedule{}",
        closed_target.as_deref().map(|t| format!(": send interaction `{interaction}` to its closed_target `{t}` instead")).unwrap_or_else(|| format!(" (interaction `{interaction}`)"))
    )]
    QueueClosed {
        queue: String,
        closed_target: Option<String>,
        interaction: String,
    },
    #[error(
        "queue `{queue}` was removed by a config change: interaction `{interaction}` cannot go \
         back into it; transfer it to a queue that exists"
    )]
    QueueRemoved { queue: String, interaction: String },
    #[error(
        "the engine is at its limit of {limit} live interactions \
         (`limits.max_live_interactions`); arrival `{interaction}` refused"
    )]
    AtCapacity { interaction: String, limit: usize },
    #[error(
        "the engine holds its limit of {limit} agents (`limits.max_agents`): agent `{agent}` is \
         not known and cannot be added"
    )]
    TooManyAgents { agent: String, limit: usize },
    #[error("timers due at {due_at} must fire first: call advance({now}) before handle()")]
    TimersPending { due_at: Millis, now: Millis },
    #[error(
        "interaction `{interaction}` was already rated {score}: each interaction counts once in \
         satisfaction, so a different score is refused (the same score again changes nothing)"
    )]
    AlreadyRated { interaction: String, score: u8 },
}

impl EngineError {
    /// A stable machine-readable code for the error body (`{"error":{"code":…}}`).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnknownAgent { .. } => "unknown_agent",
            EngineError::UnknownInteraction { .. } => "unknown_interaction",
            EngineError::UnknownQueue { .. } => "unknown_queue",
            EngineError::DuplicateInteraction { .. } => "duplicate_interaction",
            EngineError::ChannelNotServed { .. } => "channel_not_served",
            EngineError::NoSuchOffer { .. } | EngineError::StaleOffer { .. } => "no_such_offer",
            EngineError::InvalidTransition { .. } => "invalid_transition",
            EngineError::AgentBusy { .. } => "agent_busy",
            EngineError::AgentNeedsAddress { .. } => "agent_needs_address",
            EngineError::AgentUnknownQueue { .. } => "unknown_queue",
            EngineError::InvalidValue { .. } => "invalid_value",
            EngineError::QueueFull { .. } => "queue_full",
            EngineError::QueueClosed { .. } => "queue_closed",
            EngineError::QueueRemoved { .. } => "queue_removed",
            EngineError::AtCapacity { .. } => "at_capacity",
            EngineError::TooManyAgents { .. } => "too_many_agents",
            EngineError::TimersPending { .. } => "timers_pending",
            EngineError::AlreadyRated { .. } => "already_rated",
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            EngineError::UnknownAgent { .. }
            | EngineError::UnknownInteraction { .. }
            | EngineError::UnknownQueue { .. }
            | EngineError::ChannelNotServed { .. }
            | EngineError::AgentNeedsAddress { .. }
            | EngineError::AgentUnknownQueue { .. }
            | EngineError::InvalidValue { .. }
            // Agents are never dropped, so retrying cannot help: not a 503.
            | EngineError::TooManyAgents { .. } => ErrorClass::Invalid,
            EngineError::DuplicateInteraction { .. }
            | EngineError::NoSuchOffer { .. }
            | EngineError::StaleOffer { .. }
            | EngineError::InvalidTransition { .. }
            | EngineError::AgentBusy { .. }
            | EngineError::QueueFull { .. }
            | EngineError::QueueClosed { .. }
            | EngineError::QueueRemoved { .. }
            | EngineError::TimersPending { .. }
            | EngineError::AlreadyRated { .. } => ErrorClass::Conflict,
            EngineError::AtCapacity { .. } => ErrorClass::Limit,
        }
    }
}

/// Why a live config change was refused. The old config stays in force.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("config change refused: {}", problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
pub struct ReconfigureError {
    /// Every reason, e.g. "queue `x` is removed but 3 interactions wait in it and it has no drain_to".
    pub problems: Vec<StateProblem>,
}

/// One reason the live state refuses a config: the field of the new config it concerns (as a
/// config error names it, e.g. `queue[2].channels`; `queue` for a queue the config no longer
/// has) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateProblem {
    pub field: String,
    pub message: String,
}

impl StateProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> StateProblem {
        StateProblem {
            field: field.into(),
            message: message.into(),
        }
    }
}
