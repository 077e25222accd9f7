//! Shared test support for the engine tests: config builders, a driver that keeps the engine
//! clock honest (`advance(t)` before every `handle(t, …)`), event constructors and decision finders.
//!
//! It talks to the engine only through its public API and never parses TOML, so the engine tests
//! do not depend on the config parser. It must never hide an engine error: `Driver::at` panics on
//! a refused event, and tests that expect a refusal use `Driver::try_at`.

#![allow(dead_code)]

/// `ensure!(cond, "what went wrong {x}")`: return `Err(String)` from an oracle.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

pub mod oracle;

use std::collections::BTreeMap;

use tierline::config::{
    AgentConfig, Channel, Millis, Overflow, QueueConfig, RoutingConfig, Rule, Schedule, Step,
    Strategy, Tier,
};
use tierline::engine::{
    Decision, DecisionKind, DeclineReason, Engine, EngineError, Event, InteractionView,
    RequestedState, RevokeReason,
};

/// Proptest cases per property: `PROPTEST_CASES` from the environment, else `default`.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Seconds to engine milliseconds.
pub const fn secs(s: u64) -> Millis {
    s * 1000
}

// ---------------------------------------------------------------------------------------------
// Config builders
// ---------------------------------------------------------------------------------------------

/// A ladder step: `after_s` seconds, these tiers.
pub fn step(after_s: u64, tiers: &[Tier]) -> Step {
    Step::new(secs(after_s), tiers)
}

/// A queue with the documented defaults (voice, longest-idle, 15 s offers, 10 s wrap-up) and
/// the given ladder.
pub fn queue(id: &str, steps: Vec<Step>) -> QueueConfig {
    let mut q = QueueConfig::with_defaults(id);
    q.steps = steps;
    q
}

/// The classic support ladder: L1 at once, L1+L2 after 30 s, everyone after 60 s.
pub fn support_ladder() -> Vec<Step> {
    vec![step(0, &[1]), step(30, &[1, 2]), step(60, &[1, 2, 3])]
}

/// A queue with the given channels.
pub fn with_channels(mut q: QueueConfig, channels: &[Channel]) -> QueueConfig {
    q.channels = channels.to_vec();
    q
}

pub fn with_strategy(mut q: QueueConfig, strategy: Strategy) -> QueueConfig {
    q.strategy = strategy;
    q
}

/// An agent dialled at `sip:<id>@pbx` with a tier per queue.
pub fn agent(id: &str, tiers: &[(&str, Tier)]) -> AgentConfig {
    AgentConfig {
        id: id.to_string(),
        address: address_of(id),
        tiers: tiers.iter().map(|(q, t)| (q.to_string(), *t)).collect(),
        skills: Vec::new(),
        capacity: BTreeMap::new(),
    }
}

/// The address `agent()` gives an agent.
pub fn address_of(id: &str) -> String {
    format!("sip:{id}@pbx")
}

pub fn with_skills(mut a: AgentConfig, skills: &[&str]) -> AgentConfig {
    a.skills = skills.iter().map(|s| s.to_string()).collect();
    a
}

pub fn with_capacity(mut a: AgentConfig, channel: Channel, capacity: u32) -> AgentConfig {
    a.capacity.insert(channel, capacity);
    a
}

/// A routing config of these queues and roster, default channels and limits.
pub fn config(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>) -> RoutingConfig {
    let mut c = RoutingConfig::empty();
    c.queues = queues;
    c.agents = agents;
    c
}

pub fn rule(when: &[(&str, &str)], queue: &str, priority: Option<i32>) -> Rule {
    Rule {
        when: when
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        queue: queue.to_string(),
        priority,
    }
}

pub fn overflow_to_queue(mut q: QueueConfig, max_wait_s: u64, to: &str) -> QueueConfig {
    q.max_wait_ms = Some(secs(max_wait_s));
    q.overflow = Some(Overflow::Queue(to.to_string()));
    q
}

pub fn overflow_to_target(mut q: QueueConfig, max_wait_s: u64, target: &str) -> QueueConfig {
    q.max_wait_ms = Some(secs(max_wait_s));
    q.overflow = Some(Overflow::Target(target.to_string()));
    q
}

/// A schedule that is never open (every weekday has no opening interval).
pub fn never_open() -> Schedule {
    Schedule {
        tz: chrono_tz::Europe::Berlin,
        open: Default::default(),
    }
}

/// A schedule that is open all week, around the clock.
pub fn always_open() -> Schedule {
    Schedule {
        tz: chrono_tz::Europe::Berlin,
        open: std::array::from_fn(|_| vec![(0, 24 * 60)]),
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// A voice call arriving in a named queue.
pub fn call(id: &str, queue: &str) -> Event {
    Arrival::new(id).queue(queue).event()
}

/// A chat arriving in a named queue.
pub fn chat(id: &str, queue: &str) -> Event {
    Arrival::new(id).channel(Channel::Chat).queue(queue).event()
}

/// Builder for `interaction.arrived` with anything beyond id, channel and queue.
#[derive(Debug, Clone)]
pub struct Arrival {
    interaction: String,
    channel: Channel,
    queue: Option<String>,
    priority: Option<i32>,
    skills: Vec<String>,
    customer: Option<String>,
    attributes: BTreeMap<String, String>,
}

impl Arrival {
    /// A voice call with no queue, priority, skills or attributes yet.
    pub fn new(id: &str) -> Self {
        Arrival {
            interaction: id.to_string(),
            channel: Channel::Voice,
            queue: None,
            priority: None,
            skills: Vec::new(),
            customer: None,
            attributes: BTreeMap::new(),
        }
    }
    pub fn channel(mut self, channel: Channel) -> Self {
        self.channel = channel;
        self
    }
    pub fn queue(mut self, queue: &str) -> Self {
        self.queue = Some(queue.to_string());
        self
    }
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }
    pub fn skills(mut self, skills: &[&str]) -> Self {
        self.skills = skills.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn customer(mut self, customer: &str) -> Self {
        self.customer = Some(customer.to_string());
        self
    }
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.attributes.insert(key.to_string(), value.to_string());
        self
    }
    pub fn event(self) -> Event {
        Event::InteractionArrived {
            interaction: self.interaction,
            channel: self.channel,
            queue: self.queue,
            priority: self.priority,
            skills: self.skills,
            customer: self.customer,
            attributes: self.attributes,
        }
    }
}

/// A roster agent logs in with its roster settings.
pub fn login(agent: &str) -> Event {
    Event::AgentLogin {
        agent: agent.to_string(),
        address: None,
        tiers: None,
        skills: None,
        capacity: None,
    }
}

pub fn logout(agent: &str) -> Event {
    Event::AgentLogout {
        agent: agent.to_string(),
    }
}

pub fn set_state(agent: &str, state: RequestedState, reason: Option<&str>) -> Event {
    Event::AgentState {
        agent: agent.to_string(),
        state,
        reason: reason.map(str::to_string),
    }
}

pub fn not_ready(agent: &str, reason: &str) -> Event {
    set_state(agent, RequestedState::NotReady, Some(reason))
}

pub fn available(agent: &str) -> Event {
    set_state(agent, RequestedState::Available, None)
}

pub fn accept(interaction: &str, agent: &str) -> Event {
    Event::OfferAccepted {
        interaction: interaction.to_string(),
        agent: agent.to_string(),
        offer: None,
    }
}

/// `agent` answered `interaction` outside its offers (a phone ringing on after its offer ended).
pub fn answered(interaction: &str, agent: &str) -> Event {
    Event::InteractionAnswered {
        interaction: interaction.to_string(),
        agent: agent.to_string(),
    }
}

pub fn decline(interaction: &str, agent: &str, reason: DeclineReason) -> Event {
    Event::OfferDeclined {
        interaction: interaction.to_string(),
        agent: agent.to_string(),
        reason,
        offer: None,
    }
}

pub fn abandon(interaction: &str) -> Event {
    Event::InteractionAbandoned {
        interaction: interaction.to_string(),
    }
}

pub fn end(interaction: &str) -> Event {
    Event::InteractionEnded {
        interaction: interaction.to_string(),
        resolved: None,
    }
}

pub fn transfer(interaction: &str, queue: &str) -> Event {
    Event::InteractionTransferred {
        interaction: interaction.to_string(),
        queue: queue.to_string(),
    }
}

pub fn escalate(interaction: &str, min_tier: Tier) -> Event {
    Event::InteractionEscalated {
        interaction: interaction.to_string(),
        min_tier,
    }
}

pub fn wrapup_done(agent: &str) -> Event {
    Event::AgentWrapupDone {
        agent: agent.to_string(),
    }
}

pub fn rate(interaction: &str, score: u8) -> Event {
    Event::InteractionRated {
        interaction: interaction.to_string(),
        score,
    }
}

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

/// Drives an engine the way the daemon does: timers due by `t` fire (`advance(t)`) before the
/// event at `t` is handled. Every decision is kept in `log`, in order.
pub struct Driver {
    pub engine: Engine,
    pub log: Vec<Decision>,
}

impl Driver {
    /// A fresh engine at time 0.
    pub fn new(config: RoutingConfig) -> Self {
        Driver {
            engine: Engine::new(config, 0),
            log: Vec::new(),
        }
    }

    /// Fire the timers due by `t`; returns their decisions.
    pub fn advance(&mut self, t: Millis) -> Vec<Decision> {
        let fired = self.engine.advance(t);
        self.log.extend(fired.iter().cloned());
        fired
    }

    /// `advance(t)` then `handle(t, event)`; returns timer decisions followed by the event's.
    /// Panics if the engine refuses the event.
    pub fn at(&mut self, t: Millis, event: Event) -> Vec<Decision> {
        let mut out = self.advance(t);
        match self.engine.handle(t, &event) {
            Ok(ds) => {
                self.log.extend(ds.iter().cloned());
                out.extend(ds);
                out
            }
            Err(e) => panic!("engine refused {event:?} at {t}: {e} ({e:?})"),
        }
    }

    /// `advance(t)` then a live config change at `t`; returns its decisions. Panics if the
    /// engine refuses the change.
    pub fn reload(&mut self, t: Millis, config: RoutingConfig) -> Vec<Decision> {
        self.advance(t);
        match self.engine.reconfigure(t, config) {
            Ok(ds) => {
                self.log.extend(ds.iter().cloned());
                ds
            }
            Err(e) => panic!("engine refused the config change at {t}: {e}"),
        }
    }

    /// `advance(t)` then `handle(t, event)`, returning the event's result (timer decisions are
    /// logged but not returned).
    pub fn try_at(&mut self, t: Millis, event: Event) -> Result<Vec<Decision>, EngineError> {
        self.advance(t);
        let result = self.engine.handle(t, &event);
        if let Ok(ds) = &result {
            self.log.extend(ds.iter().cloned());
        }
        result
    }

    pub fn interaction(&self, id: &str) -> InteractionView {
        self.engine
            .interaction(id)
            .unwrap_or_else(|| panic!("interaction `{id}` is not known to the engine"))
    }

    pub fn agent(&self, id: &str) -> tierline::engine::AgentView {
        self.engine
            .agent(id)
            .unwrap_or_else(|| panic!("agent `{id}` is not known to the engine"))
    }

    /// Ids waiting in `queue`, most urgent first, as plain strings.
    pub fn waiting(&self, queue: &str) -> Vec<String> {
        self.engine
            .waiting_in(queue)
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Everything observable through the read API, serialized: equal snapshots mean equal
    /// observable state. `interactions` names the interactions to include.
    pub fn snapshot(&self, interactions: &[&str]) -> String {
        snapshot(&self.engine, interactions)
    }
}

/// See `Driver::snapshot`.
pub fn snapshot(engine: &Engine, interactions: &[&str]) -> String {
    let queues = engine.queues();
    let waiting: Vec<_> = queues
        .iter()
        .map(|q| (q.id.clone(), engine.waiting_in(&q.id)))
        .collect();
    let views: Vec<_> = interactions
        .iter()
        .map(|id| engine.interaction(id))
        .collect();
    serde_json::json!({
        "now": engine.now(),
        "next_seq": engine.next_seq(),
        "next_deadline": engine.next_deadline(),
        "counts": engine.counts(),
        "agents": engine.agents(),
        "queues": queues,
        "waiting": waiting,
        "interactions": views,
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// Finding decisions
// ---------------------------------------------------------------------------------------------

/// The `type` of every decision, in order.
pub fn kinds(decisions: &[Decision]) -> Vec<&'static str> {
    decisions.iter().map(|d| d.kind.type_name()).collect()
}

/// Every offer as (interaction, agent), in order.
pub fn offers(decisions: &[Decision]) -> Vec<(String, String)> {
    decisions
        .iter()
        .filter_map(|d| match &d.kind {
            DecisionKind::Offer {
                interaction, agent, ..
            } => Some((interaction.to_string(), agent.to_string())),
            _ => None,
        })
        .collect()
}

/// The agent `interaction` was offered to in these decisions, if any.
pub fn offered_to(decisions: &[Decision], interaction: &str) -> Option<String> {
    offers(decisions)
        .into_iter()
        .find(|(i, _)| i == interaction)
        .map(|(_, a)| a)
}

/// The offer decision for `interaction`, if any.
pub fn offer_of<'a>(decisions: &'a [Decision], interaction: &str) -> Option<&'a Decision> {
    decisions.iter().find(
        |d| matches!(&d.kind, DecisionKind::Offer { interaction: i, .. } if &**i == interaction),
    )
}

/// The revocations as (interaction, agent, reason), in order.
pub fn revocations(decisions: &[Decision]) -> Vec<(String, String, RevokeReason)> {
    decisions
        .iter()
        .filter_map(|d| match &d.kind {
            DecisionKind::OfferRevoked {
                interaction,
                agent,
                reason,
                ..
            } => Some((interaction.to_string(), agent.to_string(), *reason)),
            _ => None,
        })
        .collect()
}

/// The ladder steps reached as (interaction, step, at), in order (explicit escalations excluded).
pub fn steps_reached(decisions: &[Decision]) -> Vec<(String, usize, Millis)> {
    decisions
        .iter()
        .filter_map(|d| match &d.kind {
            DecisionKind::Escalated {
                interaction,
                step: Some(k),
                by: None,
                ..
            } => Some((interaction.to_string(), *k, d.at)),
            _ => None,
        })
        .collect()
}

/// Decisions serialized one per line, for byte-for-byte comparisons.
pub fn to_json_lines(decisions: &[Decision]) -> String {
    decisions
        .iter()
        .map(|d| serde_json::to_string(d).expect("a decision serializes"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Queue `q` under the `random` strategy (L1 only, wrap-up 0) with `agents` at tier 1, seeded
/// with `seed`, everyone logged in at 0.
pub fn random_desk(seed: u64, agents: &[&str]) -> Driver {
    let mut q = with_strategy(queue("q", vec![step(0, &[1])]), Strategy::Random);
    q.wrap_up_ms = 0;
    let mut cfg = config(
        vec![q],
        agents.iter().map(|id| agent(id, &[("q", 1)])).collect(),
    );
    cfg.seed = seed;
    let mut d = Driver::new(cfg);
    for id in agents {
        d.at(0, login(id));
    }
    d
}
