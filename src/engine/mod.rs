//! The routing engine: events and an explicit clock in, numbered decisions out.
//!
//! It owns every queue, agent, offer and timer. It never reads a clock, sleeps, spawns, does I/O
//! or uses unseeded randomness: the daemon, the simulator and journal replay all drive this same
//! code, and the same config plus the same (time, event) sequence gives byte-identical decisions.
//!
//! Driving it: before `handle(now, event)`, fire due timers with `advance(now)`; after handling,
//! sleep until `next_deadline()` (or the next event) and call `advance` again.

pub mod decision;
pub mod error;
pub mod event;
pub mod view;

pub use decision::{
    AgentStatus, Decision, DecisionKind, Fact, OfferResult, RejectReason, RevokeReason,
};
pub use error::{EngineError, ErrorClass, ReconfigureError};
pub use event::{DeclineReason, Event, RequestedState};
pub use view::{
    Activity, AgentView, Counts, InteractionState, InteractionView, Owner, QueueView, SlotPhase,
    SlotView, Transition, Why,
};

use std::sync::Arc;

use crate::config::{Millis, RoutingConfig};

/// The routing engine. See the module docs.
pub struct Engine {
    _todo: (),
}

impl Engine {
    /// A fresh engine at time `now`. Roster agents start offline.
    pub fn new(config: RoutingConfig, now: Millis) -> Engine {
        let _ = (config, now);
        todo!()
    }

    /// The routing config in force.
    pub fn config(&self) -> &RoutingConfig {
        todo!()
    }

    /// Engine time: the latest `now` it was given.
    pub fn now(&self) -> Millis {
        todo!()
    }

    /// The `seq` the next decision will carry.
    pub fn next_seq(&self) -> u64 {
        todo!()
    }

    /// Fire every timer due at or before `now`, each at its own deadline, in deadline order.
    /// A `now` earlier than engine time is treated as engine time.
    pub fn advance(&mut self, now: Millis) -> Vec<Decision> {
        let _ = now;
        todo!()
    }

    /// Apply one event at `now`. Timers due at or before `now` must have fired (`advance`),
    /// otherwise `TimersPending`. On error the state is unchanged and no decision is made.
    pub fn handle(&mut self, now: Millis, event: &Event) -> Result<Vec<Decision>, EngineError> {
        let _ = (now, event);
        todo!()
    }

    /// Convenience: `advance(now)` then `handle(now, event)`; timer decisions come first.
    pub fn step(
        &mut self,
        now: Millis,
        event: &Event,
    ) -> (Vec<Decision>, Result<Vec<Decision>, EngineError>) {
        let fired = self.advance(now);
        let result = self.handle(now, event);
        (fired, result)
    }

    /// Apply a new routing config live. Never drops a waiting interaction or logs an agent out;
    /// keeps every interaction's place and waiting time; ladder and timers of waiting interactions
    /// are re-derived from their `entered_queue_at` under the new config; eligibility is
    /// re-evaluated at once (decisions returned). Removing a queue with waiting interactions is
    /// refused unless the old queue names `drain_to`. Roster agents are added/updated (tiers,
    /// skills, address, capacity); agents missing from the new roster keep their state.
    pub fn reconfigure(
        &mut self,
        now: Millis,
        config: RoutingConfig,
    ) -> Result<Vec<Decision>, ReconfigureError> {
        let _ = (now, config);
        todo!()
    }

    /// When the engine next needs `advance` (the earliest pending timer).
    pub fn next_deadline(&self) -> Option<Millis> {
        todo!()
    }

    /// Turn fact recording on or off (off by default; metrics and the simulator turn it on).
    pub fn set_record_facts(&mut self, on: bool) {
        let _ = on;
        todo!()
    }

    /// Facts recorded since the last call, in order.
    pub fn take_facts(&mut self) -> Vec<Fact> {
        todo!()
    }

    pub fn interaction(&self, id: &str) -> Option<InteractionView> {
        let _ = id;
        todo!()
    }

    pub fn agent(&self, id: &str) -> Option<AgentView> {
        let _ = id;
        todo!()
    }

    /// All agents, sorted by id.
    pub fn agents(&self) -> Vec<AgentView> {
        todo!()
    }

    pub fn queue(&self, id: &str) -> Option<QueueView> {
        let _ = id;
        todo!()
    }

    /// All queues of the current config, in config order.
    pub fn queues(&self) -> Vec<QueueView> {
        todo!()
    }

    /// Ids waiting in `queue`, most urgent first.
    pub fn waiting_in(&self, queue: &str) -> Vec<Arc<str>> {
        let _ = queue;
        todo!()
    }

    pub fn counts(&self) -> Counts {
        todo!()
    }

    /// Check every internal index against the primary state; `Err` describes the first mismatch.
    /// For tests (O(n)).
    pub fn check_consistency(&self) -> Result<(), String> {
        todo!()
    }
}
