//! Read-only views of engine state, for the read API, tests and snapshots of wallboards.
//!
//! Views are copies: holding one never blocks the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Channel, Millis, Tier};
use crate::engine::decision::{AgentStatus, RejectReason, RevokeReason};
use crate::engine::event::DeclineReason;

/// Where an interaction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionState {
    Waiting,
    Offered,
    Connected,
    WrapUp,
    Done,
    Abandoned,
    Overflowed,
    Rejected,
}

impl InteractionState {
    pub fn as_str(self) -> &'static str {
        match self {
            InteractionState::Waiting => "waiting",
            InteractionState::Offered => "offered",
            InteractionState::Connected => "connected",
            InteractionState::WrapUp => "wrap_up",
            InteractionState::Done => "done",
            InteractionState::Abandoned => "abandoned",
            InteractionState::Overflowed => "overflowed",
            InteractionState::Rejected => "rejected",
        }
    }

    /// Finished interactions own nothing and are never routed again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            InteractionState::Done
                | InteractionState::Abandoned
                | InteractionState::Overflowed
                | InteractionState::Rejected
        )
    }
}

/// Who is responsible for an interaction right now: exactly one queue or one agent, or nobody
/// once it is finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Owner {
    Queue(Arc<str>),
    Agent(Arc<str>),
    None,
}

/// Why a transition happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Why {
    Arrived {
        queue: Arc<str>,
        /// Index of the routing rule that matched, if routed by rules.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<usize>,
    },
    Offered {
        agent: Arc<str>,
        offer: Arc<str>,
    },
    Accepted {
        agent: Arc<str>,
    },
    Declined {
        agent: Arc<str>,
        reason: DeclineReason,
    },
    Revoked {
        agent: Arc<str>,
        reason: RevokeReason,
    },
    Abandoned,
    Ended {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolved: Option<bool>,
    },
    WrapUpEnded,
    StepReached {
        queue: Arc<str>,
        step: usize,
    },
    /// Exactly one of `queue` (moved inside tierline) and `target` (handed to the PBX) is set.
    /// `queue` is written even when absent (`null`): snapshots are MessagePack arrays, where
    /// only trailing fields may be left out (a skipped `queue` made `target` read back as it).
    Overflow {
        #[serde(default)]
        queue: Option<Arc<str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<Arc<str>>,
    },
    /// `target`: where the PBX was told to send it (a closed queue's `closed_target`), as the
    /// `rejected` decision said. Trailing, so older snapshots without it read as `None`.
    Rejected {
        reason: RejectReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<Arc<str>>,
    },
    Transferred {
        by: Arc<str>,
        queue: Arc<str>,
    },
    EscalatedByAgent {
        by: Arc<str>,
        min_tier: Tier,
    },
    /// A live reload removed the queue; the interaction moved to its `drain_to`.
    Drained {
        queue: Arc<str>,
    },
    /// A live reload changed the queue's ladder so that the interaction now stands at an earlier
    /// `step` than it had reached (with that step's priority): the steps after it are entered,
    /// announced and boosted again when their new deadlines come.
    StepMovedBack {
        queue: Arc<str>,
        step: usize,
    },
    /// The agent answered it outside a pending offer to it (`interaction.answered`): a phone
    /// that rang on after tierline let go of its offer, or a call the PBX connected itself.
    /// Last, so snapshots written before it read as they did.
    AnsweredOutsideOffer {
        agent: Arc<str>,
    },
}

/// One entry of an interaction's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    #[serde(with = "crate::engine::decision::rfc3339_ms")]
    pub at: Millis,
    pub from: Option<InteractionState>,
    pub to: InteractionState,
    pub why: Why,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionView {
    pub id: Arc<str>,
    pub channel: Channel,
    pub state: InteractionState,
    pub owner: Owner,
    /// The queue it is in (or was last in).
    pub queue: Option<Arc<str>>,
    /// Ladder step index while it is in a queue's ladder.
    pub step: Option<usize>,
    /// Set when an agent escalated it: only tiers ≥ this are eligible.
    pub min_tier: Option<Tier>,
    pub priority: i32,
    #[serde(with = "crate::engine::decision::rfc3339_ms")]
    pub arrived_at: Millis,
    #[serde(with = "crate::engine::decision::rfc3339_ms")]
    pub entered_queue_at: Millis,
    pub skills: Vec<Arc<str>>,
    pub customer: Option<Arc<str>>,
    pub attributes: BTreeMap<Arc<str>, Arc<str>>,
    pub rating: Option<u8>,
    pub resolved: Option<bool>,
    pub history: Vec<Transition>,
    /// History entries dropped because of `limits.max_history`.
    pub history_dropped: u32,
}

/// What an agent's slot is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotPhase {
    Offered,
    Connected,
    WrapUp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotView {
    pub channel: Channel,
    pub phase: SlotPhase,
    /// `None` for a wrap-up after a transfer or escalation (the interaction moved on).
    pub interaction: Option<Arc<str>>,
    pub queue: Arc<str>,
    pub offer: Option<Arc<str>>,
    /// When the slot entered its current phase.
    #[serde(with = "crate::engine::decision::rfc3339_ms")]
    pub since: Millis,
    /// Offer expiry or wrap-up end.
    pub until: Option<Millis>,
}

/// The wallboard state of an agent, derived from status and slots (each agent in exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Available,
    Offered,
    Busy,
    WrapUp,
    NotReady,
    Offline,
}

impl Activity {
    pub const ALL: [Activity; 6] = [
        Activity::Available,
        Activity::Offered,
        Activity::Busy,
        Activity::WrapUp,
        Activity::NotReady,
        Activity::Offline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Available => "available",
            Activity::Offered => "offered",
            Activity::Busy => "busy",
            Activity::WrapUp => "wrap_up",
            Activity::NotReady => "not_ready",
            Activity::Offline => "offline",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub id: Arc<str>,
    pub address: Arc<str>,
    pub status: AgentStatus,
    pub reason: Option<Arc<str>>,
    pub activity: Activity,
    pub status_since: Millis,
    pub logged_in_since: Option<Millis>,
    pub tiers: BTreeMap<Arc<str>, Tier>,
    pub skills: Vec<Arc<str>>,
    pub capacity: BTreeMap<Channel, u32>,
    pub load: BTreeMap<Channel, u32>,
    pub slots: Vec<SlotView>,
    /// Last moment the agent became free (login/available, or a wrap-up ended).
    pub idle_since: Millis,
    pub accepted_since_login: u64,
    pub consecutive_missed_offers: u32,
    /// No offers before this time (decline / no-answer / busy back-off).
    pub backoff_until: Option<Millis>,
}

/// An agent's status and how many of its slots are in each phase: what telemetry reconciles
/// after a batch (`Engine::agent_presence`), without building a whole `AgentView` (its maps of
/// tiers, capacity and load, and a view of every slot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPresence {
    pub status: AgentStatus,
    pub reason: Option<Arc<str>>,
    pub activity: Activity,
    pub offered: u32,
    pub connected: u32,
    pub wrap_up: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub id: Arc<str>,
    pub waiting: usize,
    pub waiting_by_channel: BTreeMap<Channel, usize>,
    /// Being offered to an agent (ringing), not answered yet.
    #[serde(default)]
    pub ringing: usize,
    /// Entry time of the unanswered interaction (waiting or ringing) that has waited longest.
    pub oldest_entered_at: Option<Millis>,
    /// Agents serving this queue, by tier and activity.
    pub agents: BTreeMap<Tier, BTreeMap<Activity, usize>>,
    pub sla_ms: Millis,
    pub open: bool,
}

/// Interactions by state; `arrived` equals the sum of the others at every moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub arrived: u64,
    pub waiting: u64,
    pub offered: u64,
    pub connected: u64,
    pub wrap_up: u64,
    pub done: u64,
    pub abandoned: u64,
    pub overflowed: u64,
    pub rejected: u64,
}

impl Counts {
    pub fn sum_of_states(&self) -> u64 {
        self.waiting
            + self.offered
            + self.connected
            + self.wrap_up
            + self.done
            + self.abandoned
            + self.overflowed
            + self.rejected
    }
}
