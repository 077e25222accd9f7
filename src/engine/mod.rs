//! The routing engine: events and an explicit clock in, numbered decisions out.
//!
//! It owns every queue, agent, offer and timer. It never reads a clock, sleeps, spawns, does I/O
//! or uses unseeded randomness: the daemon, the simulator and journal replay all drive this same
//! code, and the same config plus the same (time, event) sequence gives byte-identical decisions.
//!
//! Driving it: before `handle(now, event)`, fire due timers with `advance(now)`; after handling,
//! sleep until `next_deadline()` (or the next event) and call `advance` again.

mod agents;
mod census;
pub mod decision;
mod dispatch;
pub mod error;
pub mod event;
mod flows;
mod handlers;
mod ids;
mod index;
mod model;
mod offers;
mod reconfigure;
mod runs;
mod shared;
mod skills;
mod snapshot;
mod timers;
pub mod view;
mod views;
mod warm;

pub use census::{Census, QueueLoad};
pub use decision::{
    AgentStatus, Decision, DecisionKind, Fact, OfferResult, RejectReason, RevokeReason,
};
pub use error::{EngineError, ErrorClass, ReconfigureError, StateProblem};
pub use event::{DeclineReason, Event, RequestedState};
pub use snapshot::{EngineCapture, SnapshotError};
pub use view::{
    Activity, AgentPresence, AgentView, Counts, InteractionState, InteractionView, Owner,
    QueueView, SlotPhase, SlotView, Transition, Why,
};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Millis, RoutingConfig};
use model::{Agent, Interaction, QKey, QueueRt, SkillSetId};
use shared::SharedVec;
use timers::{AKey, IKey, Timer, TimerKey, Timers};

type Map<K, V> = HashMap<K, V, ahash::RandomState>;

/// The routing engine. See the module docs. A snapshot is taken with `capture` (the primary
/// state, interactions and agents shared), not by cloning it.
pub struct Engine {
    config: RoutingConfig,
    now: Millis,
    /// The seq of the next decision.
    seq: u64,
    queues: Vec<QueueRt>,
    queue_ids: Map<Arc<str>, QKey>,
    /// Queues whose load changed since `take_changed_queues` (each flagged `QueueRt::changed`).
    changed_queues: Vec<QKey>,
    /// Agents of the whole centre by activity (indexed like `Activity::ALL`), each counted once,
    /// kept with the queue censuses (whose sum counts an agent once per queue it serves).
    centre: [u32; 6],
    /// Shared with a snapshot capture until written (`shared`).
    agents: SharedVec<Agent>,
    agent_ids: Map<Arc<str>, AKey>,
    /// Slab of interactions; `None` marks a free slot (listed in `free_ikeys`). Each one is
    /// behind an `Arc` so a snapshot capture shares them instead of copying them (`capture`):
    /// the copy of a slab of ~250-byte records was a fresh allocation the kernel had to fault in
    /// page by page, ≈ 60 ms on the engine task at 100,000 interactions. `ix_mut` copies one on
    /// write only while a capture still holds it, and most are finished and never written again.
    interactions: Vec<Option<Arc<Interaction>>>,
    free_ikeys: Vec<IKey>,
    interaction_ids: ids::InteractionIds,
    /// Finished interactions in the order they finished (evicted from the front).
    finished: VecDeque<IKey>,
    skills: skills::SkillTable,
    timers: Timers,
    rng: ChaCha8Rng,
    next_order: u64,
    next_offer: u64,
    next_slot: u64,
    counts: Counts,
    /// Live (not finished) interactions.
    live: usize,
    out: Vec<Decision>,
    facts: Vec<Fact>,
    record_facts: bool,
}

impl Engine {
    /// A fresh engine at time `now`. Roster agents start offline.
    pub fn new(config: RoutingConfig, now: Millis) -> Engine {
        let mut engine = Engine {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config: RoutingConfig::empty(),
            now,
            seq: 1,
            queues: Vec::new(),
            queue_ids: Map::default(),
            changed_queues: Vec::new(),
            centre: [0; 6],
            agents: SharedVec::default(),
            agent_ids: Map::default(),
            interactions: Vec::new(),
            free_ikeys: Vec::new(),
            interaction_ids: ids::InteractionIds::default(),
            finished: VecDeque::new(),
            skills: skills::SkillTable::default(),
            timers: Timers::default(),
            next_order: 0,
            next_offer: 1,
            next_slot: 1,
            counts: Counts::default(),
            live: 0,
            out: Vec::new(),
            facts: Vec::new(),
            record_facts: false,
        };
        engine.install_config(config, reconfigure::Scope::Whole);
        engine
    }

    /// The routing config in force, without its agent roster: the engine keeps agents as state
    /// (`agents()`), not a second copy of the roster (the daemon keeps the config it loaded).
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Engine time: the latest `now` it was given.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The `seq` the next decision will carry.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// Fire every timer due at or before `now`, each at its own deadline, in deadline order.
    /// A `now` earlier than engine time is treated as engine time.
    pub fn advance(&mut self, now: Millis) -> Vec<Decision> {
        let now = now.max(self.now);
        while let Some((key, timer)) = self.timers.pop_due(now) {
            if !self.timer_is_live(key, timer) {
                self.timers.dropped_cancelled();
                continue;
            }
            self.now = key.0.max(self.now);
            self.fire(timer);
        }
        self.now = now;
        self.end_step();
        std::mem::take(&mut self.out)
    }

    /// Apply one event at `now`. Timers due at or before `now` must have fired (`advance`),
    /// otherwise `TimersPending`. On error the state is unchanged and no decision is made.
    pub fn handle(&mut self, now: Millis, event: &Event) -> Result<Vec<Decision>, EngineError> {
        self.handle_as(now, event, false)
    }

    /// An administrator's forced state (`PUT /v1/agents/{id}/state`, journaled as such): applied
    /// as the agent's own `agent.state` would be, and announced first with an `agent_state`
    /// decision, since the PBX did not send it and must update the phone's presence. Refused,
    /// changing nothing, as that event would be.
    pub fn force_state(
        &mut self,
        now: Millis,
        agent: &str,
        state: event::RequestedState,
        reason: Option<&str>,
    ) -> Result<Vec<Decision>, EngineError> {
        let event = Event::AgentState {
            agent: agent.to_string(),
            state,
            reason: reason.map(str::to_string),
        };
        self.handle_as(now, &event, true)
    }

    /// `handle`; `forced`: an agent state set by an administrator (`force_state`).
    fn handle_as(
        &mut self,
        now: Millis,
        event: &Event,
        forced: bool,
    ) -> Result<Vec<Decision>, EngineError> {
        let now = now.max(self.now);
        if let Some(due_at) = self.timers.next_deadline() {
            if due_at <= now {
                return Err(EngineError::TimersPending { due_at, now });
            }
        }
        let facts_before = self.facts.len();
        let time_before = self.now;
        self.now = now;
        match self.apply(event, forced) {
            Ok(()) => {
                self.end_step();
                Ok(std::mem::take(&mut self.out))
            }
            Err(e) => {
                debug_assert!(
                    self.out.is_empty(),
                    "a refused event must not decide anything"
                );
                self.out.clear();
                self.facts.truncate(facts_before);
                // Changes nothing at all, engine time included.
                self.now = time_before;
                Err(e)
            }
        }
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

    /// When the engine next needs `advance` (the earliest pending timer).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.next_deadline()
    }

    /// Entries in the timer map, cancelled ones not yet dropped included (memory accounting).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Turn fact recording on or off (off by default; metrics and the simulator turn it on).
    pub fn set_record_facts(&mut self, on: bool) {
        self.record_facts = on;
        if !on {
            self.facts.clear();
        }
    }

    /// Facts recorded since the last call, in order.
    pub fn take_facts(&mut self) -> Vec<Fact> {
        std::mem::take(&mut self.facts)
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    // ----- small shared helpers used by the other engine modules -----

    fn emit(&mut self, kind: DecisionKind) {
        let seq = self.seq;
        self.seq += 1;
        self.out.push(Decision {
            seq,
            at: self.now,
            kind,
        });
    }

    fn fact(&mut self, make: impl FnOnce() -> Fact) {
        if self.record_facts {
            self.facts.push(make());
        }
    }

    fn ix(&self, ik: IKey) -> &Interaction {
        match self.interactions.get(ik as usize) {
            Some(Some(i)) => i,
            _ => unreachable!("interaction key {ik} is not live"),
        }
    }

    fn ix_mut(&mut self, ik: IKey) -> &mut Interaction {
        match self.interactions.get_mut(ik as usize) {
            Some(Some(i)) => Arc::make_mut(i),
            _ => unreachable!("interaction key {ik} is not live"),
        }
    }

    fn lookup_interaction(&self, id: &str) -> Result<IKey, EngineError> {
        self.interaction_ids
            .get(&self.interactions, id)
            .ok_or_else(|| EngineError::UnknownInteraction {
                interaction: id.to_string(),
            })
    }

    fn lookup_agent(&self, id: &str) -> Result<AKey, EngineError> {
        self.agent_ids
            .get(id)
            .copied()
            .ok_or_else(|| EngineError::UnknownAgent {
                agent: id.to_string(),
            })
    }

    /// The queue an event about `interaction` names; the refusal names both.
    fn lookup_queue_for(&self, interaction: &str, id: &str) -> Result<QKey, EngineError> {
        self.queue_ids
            .get(id)
            .copied()
            .ok_or_else(|| EngineError::UnknownQueue {
                queue: id.to_string(),
                interaction: interaction.to_string(),
            })
    }

    fn queue_key(&self, id: &str) -> Option<QKey> {
        self.queue_ids.get(id).copied()
    }

    /// Give agent `ak` these skills (interned), letting go of the ones it had.
    fn set_agent_skills(&mut self, ak: AKey, names: &[impl AsRef<str>]) {
        let ids = self.skills.ids_of(names);
        self.skills.hold_names(&ids);
        let old = std::mem::replace(&mut self.agents[ak as usize].skills, ids);
        self.skills.release_names(&old);
    }

    /// Whether `have` (sorted) contains every id of skill set `set`.
    fn has_skills(&self, have: &[u32], set: SkillSetId) -> bool {
        let need = self.skills.set(set);
        if need.is_empty() {
            return true;
        }
        let mut it = have.iter();
        'outer: for n in need {
            for h in it.by_ref() {
                if h == n {
                    continue 'outer;
                }
                if h > n {
                    return false;
                }
            }
            return false;
        }
        true
    }

    /// Whether an entity still owns this timer (cancelling is lazy, see `timers.rs`).
    fn timer_is_live(&self, key: TimerKey, timer: Timer) -> bool {
        let ix = |ik: IKey| match self.interactions.get(ik as usize) {
            Some(Some(i)) => Some(i),
            _ => None,
        };
        let slot_has = |ak: AKey, slot: u64| {
            self.agents
                .get(ak as usize)
                .is_some_and(|a| a.slots.iter().any(|s| s.id == slot && s.timer == Some(key)))
        };
        match timer {
            Timer::Step(ik) => ix(ik).is_some_and(|i| i.step_timer == Some(key)),
            Timer::MaxWait(ik) => ix(ik).is_some_and(|i| i.wait_timer == Some(key)),
            Timer::OfferExpiry(ik) => ix(ik)
                .and_then(|i| Some((i.agent?, i.slot?)))
                .is_some_and(|(ak, slot)| slot_has(ak, slot)),
            Timer::WrapUp(ak, slot) => slot_has(ak, slot),
            Timer::Backoff(ak) => self
                .agents
                .get(ak as usize)
                .is_some_and(|a| a.backoff_timer == Some(key)),
        }
    }

    /// The end of every `handle`, `advance` and `reconfigure`: evict what retention no longer
    /// keeps, drop cancelled timers.
    fn end_step(&mut self) {
        self.evict_finished();
        self.tidy_timers();
    }

    /// Drop cancelled entries from the front of the timer map (so `next_deadline` is exact) and
    /// compact it when cancelled entries dominate. Called before returning to the caller.
    fn tidy_timers(&mut self) {
        while let Some((key, timer)) = self.timers.first() {
            if self.timer_is_live(key, timer) {
                break;
            }
            self.timers.drop_first_cancelled();
        }
        if self.timers.wants_compaction() {
            let mut timers = std::mem::take(&mut self.timers);
            timers.compact(|key, timer| self.timer_is_live(key, timer));
            self.timers = timers;
        }
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Step(ik) => self.on_step_timer(ik),
            Timer::MaxWait(ik) => self.on_max_wait(ik),
            Timer::OfferExpiry(ik) => self.on_offer_expired(ik),
            Timer::WrapUp(ak, slot) => self.on_wrap_up_end(ak, slot),
            Timer::Backoff(ak) => self.on_backoff_end(ak),
        }
    }
}
