//! The discrete-event loop: the real engine driven in virtual time.
//!
//! It owns a min-heap of simulator events (arrivals, agents' answers, call ends, hang-ups, shifts
//! and breaks) and merges it with `engine.next_deadline()`: whichever is earlier happens next, an
//! engine timer before a simulator event at the same millisecond (the engine's own rule). It never
//! sleeps and never reads a clock; it plays the PBX and the people on both ends, reacting to the
//! engine's decisions exactly as the daemon's peers would, and counts outcomes from the engine's
//! facts. It never reaches into engine internals: only the public API.
//!
//! An [`Observer`] can watch every input the loop gives the engine (the journal writer of
//! `sim::record` does); agents of a replay bring their recorded presence events, which are sent
//! as recorded and counted, not fatal, when the engine refuses them in the new situation.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use ahash::AHashMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Millis, RoutingConfig};
use crate::engine::{
    Decision, DecisionKind, DeclineReason, Engine, EngineError, Event, Fact, InteractionState,
    RequestedState,
};
use crate::sim::report::{self, Report, RunFigures, RunInfo};
use crate::sim::scenario::Plan;
use crate::sim::tally::Tally;
use crate::sim::traffic::{Answer, Arrival, RecordedResponse, Traffic};
use crate::sim::SimError;

/// What the simulator will do next, at `at`.
struct Scheduled {
    at: Millis,
    /// Creation order: ties at the same millisecond happen in the order they were scheduled.
    seq: u64,
    kind: Kind,
}

enum Kind {
    /// The pending arrival (`Runner::next_arrival`) comes in.
    Arrival,
    /// The agent picks up / rejects the offer (if it is still the pending one).
    Accept {
        ix: u64,
        offer: Arc<str>,
    },
    Decline {
        ix: u64,
        offer: Arc<str>,
        reason: DeclineReason,
    },
    /// The customer and agent finish talking.
    End {
        ix: u64,
    },
    /// The agent presses "wrap-up done" for interaction `ix`.
    WrapUpDone {
        agent: usize,
        ix: u64,
    },
    /// The customer's patience runs out.
    Abandon {
        ix: u64,
    },
    Login {
        agent: usize,
    },
    Logout {
        agent: usize,
    },
    BreakStart {
        agent: usize,
    },
    BreakEnd {
        agent: usize,
    },
    /// The agent's recorded presence event number `index` (a replay).
    Recorded {
        agent: usize,
        index: usize,
    },
}

/// Sees every input the runner gives the engine, in the order given (e.g. to journal a run).
pub trait Observer {
    /// The timers due by `at` fire now (`engine.advance(at)`).
    fn advance(&mut self, at: Millis);
    /// `event` is handled at `at` (whether or not the engine accepts it).
    fn event(&mut self, at: Millis, event: &Event);
}

/// How to run a plan, beside the config and the traffic.
pub struct RunOptions<'o> {
    /// Seeds the agents' behaviour stream.
    pub seed: u64,
    /// Include per-agent figures in the report.
    pub agents: bool,
    pub observer: Option<&'o mut dyn Observer>,
}

/// The fewest steps at one virtual millisecond that `drive` takes for a run that no longer
/// advances (`SimError::NoProgress`); more with many agents.
const MIN_STEPS_TO_STUCK: u64 = 1_000_000;

/// A report plus what only a replay needs to know.
pub struct RunOutcome {
    pub report: Report,
    /// Recorded presence events the engine refused in the new run (e.g. a logout of an agent
    /// that a different routing left in a state where the engine refuses it).
    pub refused_recorded: u64,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed, so `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A live interaction, as the simulated customer and agent see it.
struct Live {
    /// Arrived inside the measured window.
    counted: bool,
    handle_ms: Millis,
    wrap_up_ms: Option<Millis>,
    /// Set once the agent accepted; then patience no longer applies.
    agent: Option<usize>,
    /// The queue it was last counted as `queued` in (counted once per queue entered).
    queued_in: Option<Arc<str>>,
    /// Recorded answers still unused (a replay).
    responses: Vec<RecordedResponse>,
}

/// The pending offer of an interaction.
struct Pending {
    offer: Arc<str>,
    agent: usize,
}

/// A simulated agent's presence.
struct AgentState {
    id: Arc<str>,
    logged_in: bool,
    on_break: bool,
}

struct Runner<'p, T: Traffic> {
    engine: Engine,
    observer: Option<&'p mut dyn Observer>,
    refused_recorded: u64,
    plan: &'p Plan,
    traffic: T,
    next_arrival: Option<Arrival>,
    heap: BinaryHeap<Scheduled>,
    seq: u64,
    next_ix: u64,
    live: AHashMap<u64, Live>,
    offers: AHashMap<u64, Pending>,
    agents: Vec<AgentState>,
    agent_index: AHashMap<Arc<str>, usize>,
    /// Agents' answer delays and decisions; separate from the traffic's streams.
    behaviour_rng: ChaCha8Rng,
    tally: Tally,
    run: RunFigures,
    last_at: Millis,
}

/// Run `plan` against `config` with arrivals from `traffic`.
pub fn run<T: Traffic>(
    config: RoutingConfig,
    plan: &Plan,
    traffic: T,
    seed: u64,
    with_agents: bool,
) -> Result<Report, SimError> {
    let options = RunOptions {
        seed,
        agents: with_agents,
        observer: None,
    };
    run_with(config, plan, traffic, options).map(|o| o.report)
}

/// [`run`] with an observer, returning what a replay needs beside the report.
pub fn run_with<'a, T: Traffic>(
    config: RoutingConfig,
    plan: &'a Plan,
    traffic: T,
    options: RunOptions<'a>,
) -> Result<RunOutcome, SimError> {
    let RunOptions {
        seed,
        agents: with_agents,
        observer,
    } = options;
    let start = plan.start_ms;
    let window = (start + plan.warm_up_ms, start + plan.duration_ms);
    let mut tally = Tally::new(&config, window);
    let mut engine = Engine::new(config, start);
    engine.set_record_facts(true);

    let mut behaviour_rng = ChaCha8Rng::seed_from_u64(seed);
    behaviour_rng.set_stream(0);
    let mut runner = Runner {
        engine,
        observer,
        refused_recorded: 0,
        plan,
        traffic,
        next_arrival: None,
        heap: BinaryHeap::new(),
        seq: 0,
        next_ix: 0,
        live: AHashMap::new(),
        offers: AHashMap::new(),
        agents: Vec::with_capacity(plan.agents.len()),
        agent_index: AHashMap::with_capacity(plan.agents.len()),
        behaviour_rng,
        tally: Tally::new(&RoutingConfig::empty(), window),
        run: RunFigures::default(),
        last_at: start,
    };

    for (i, a) in plan.agents.iter().enumerate() {
        let id: Arc<str> = Arc::from(a.id.as_str());
        tally.add_agent(id.clone(), a.effective_tiers.clone(), start);
        runner.agent_index.insert(id.clone(), i);
        runner.agents.push(AgentState {
            id,
            logged_in: false,
            on_break: false,
        });
        for &(login, logout) in &a.shifts {
            runner.schedule(start + login, Kind::Login { agent: i });
            if let Some(out) = logout {
                runner.schedule(start + out, Kind::Logout { agent: i });
            }
        }
        for &(from, to) in &a.breaks {
            runner.schedule(start + from, Kind::BreakStart { agent: i });
            runner.schedule(start + to, Kind::BreakEnd { agent: i });
        }
        for (index, (at, _)) in a.recorded.iter().enumerate() {
            runner.schedule(start + at, Kind::Recorded { agent: i, index });
        }
    }
    runner.tally = tally;
    runner.pull_arrival();
    runner.drive()?;

    runner.tally.finish();
    runner.run.unfinished = runner.live.values().filter(|l| l.counted).count() as u64;
    runner.run.ended_at_s = (runner.last_at - start) as f64 / 1000.0;
    let info = RunInfo {
        seed,
        start_ms: start,
        duration_ms: plan.duration_ms,
        warm_up_ms: plan.warm_up_ms,
        run: runner.run.clone(),
    };
    Ok(RunOutcome {
        report: report::build(&runner.tally, info, with_agents),
        refused_recorded: runner.refused_recorded,
    })
}

impl<T: Traffic> Runner<'_, T> {
    fn schedule(&mut self, at: Millis, kind: Kind) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            kind,
        });
    }

    /// Fetch the next arrival from the source and schedule it.
    fn pull_arrival(&mut self) {
        self.next_arrival = self.traffic.next_arrival();
        if let Some(a) = &self.next_arrival {
            let at = self.plan.start_ms + a.at;
            self.schedule(at, Kind::Arrival);
        }
    }

    fn drive(&mut self) -> Result<(), SimError> {
        let arrivals_end = self.plan.start_ms + self.plan.duration_ms;
        let hard_stop = arrivals_end.saturating_add(self.plan.drain_ms);
        // Steps at one millisecond beyond which the run is stuck rather than busy: every agent
        // logging in and taking calls at once is a few steps each.
        let stuck_after = self.plan.stuck_after.unwrap_or_else(|| {
            (self.plan.agents.len() as u64)
                .saturating_mul(20)
                .max(MIN_STEPS_TO_STUCK)
        });
        let (mut at, mut steps) = (u64::MAX, 0u64);
        loop {
            let event_at = self.heap.peek().map(|e| e.at);
            let deadline = self.engine.next_deadline();
            let timer_first = match (deadline, event_at) {
                (Some(d), Some(e)) => d <= e,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return Ok(()),
            };
            let now = if timer_first { deadline } else { event_at }.unwrap_or(hard_stop);
            if now >= hard_stop
                || (now >= arrivals_end && self.next_arrival.is_none() && self.live.is_empty())
            {
                return Ok(());
            }
            self.last_at = now;
            if now == at {
                steps += 1;
                if steps > stuck_after {
                    return Err(SimError::NoProgress {
                        at_s: now.saturating_sub(self.plan.start_ms) as f64 / 1000.0,
                        steps,
                    });
                }
            } else {
                (at, steps) = (now, 1);
            }
            if timer_first {
                if let Some(o) = self.observer.as_mut() {
                    o.advance(now);
                }
                let decisions = self.engine.advance(now);
                self.run.timer_firings += 1;
                self.react(decisions);
            } else if let Some(event) = self.heap.pop() {
                self.run.events += 1;
                self.happen(event)?;
            }
        }
    }

    /// Send one event to the engine and react to what it says.
    fn send(&mut self, now: Millis, event: Event, subject: &str) -> Result<(), SimError> {
        if let Some(o) = self.observer.as_mut() {
            o.event(now, &event);
        }
        match self.engine.handle(now, &event) {
            Ok(decisions) => {
                self.react(decisions);
                Ok(())
            }
            Err(source) => Err(SimError::EngineRefused {
                event: event.type_name(),
                subject: subject.to_string(),
                at_s: (now - self.plan.start_ms) as f64 / 1000.0,
                source: Box::new(source),
            }),
        }
    }

    fn happen(&mut self, event: Scheduled) -> Result<(), SimError> {
        let now = event.at;
        match event.kind {
            Kind::Arrival => {
                if let Some(a) = self.next_arrival.take() {
                    self.arrive(now, a)?;
                }
                self.pull_arrival();
            }
            Kind::Accept { ix, offer } => {
                if let Some(p) = self.take_offer(ix, &offer) {
                    let agent = self.agents[p.agent].id.to_string();
                    let handle = self.live.get_mut(&ix).map(|l| {
                        l.agent = Some(p.agent);
                        l.handle_ms
                    });
                    self.send(
                        now,
                        Event::OfferAccepted {
                            interaction: ix.to_string(),
                            agent,
                            offer: Some(offer.to_string()),
                        },
                        &ix.to_string(),
                    )?;
                    if let Some(h) = handle {
                        self.schedule(now.saturating_add(h), Kind::End { ix });
                    }
                }
            }
            Kind::Decline { ix, offer, reason } => {
                if let Some(p) = self.take_offer(ix, &offer) {
                    let agent = self.agents[p.agent].id.to_string();
                    self.send(
                        now,
                        Event::OfferDeclined {
                            interaction: ix.to_string(),
                            agent,
                            reason,
                            offer: Some(offer.to_string()),
                        },
                        &ix.to_string(),
                    )?;
                }
            }
            Kind::End { ix } => {
                if let Some(l) = self.live.remove(&ix) {
                    self.send(
                        now,
                        Event::InteractionEnded {
                            interaction: ix.to_string(),
                            resolved: None,
                        },
                        &ix.to_string(),
                    )?;
                    if let (Some(w), Some(agent)) = (l.wrap_up_ms, l.agent) {
                        self.schedule(now.saturating_add(w), Kind::WrapUpDone { agent, ix });
                    }
                }
            }
            Kind::WrapUpDone { agent, ix } => {
                // Only while that interaction is still in wrap-up: once the queue's `wrap_up_s`
                // ended it, the agent may be wrapping up its next call, which an early "done"
                // meant for this one must not cut short.
                let wrapping = self
                    .engine
                    .interaction(&ix.to_string())
                    .is_some_and(|v| v.state == InteractionState::WrapUp);
                if wrapping {
                    let id = self.agents[agent].id.to_string();
                    self.send(now, Event::AgentWrapupDone { agent: id.clone() }, &id)?;
                }
            }
            Kind::Abandon { ix } => {
                if self.live.get(&ix).is_some_and(|l| l.agent.is_none()) {
                    self.offers.remove(&ix);
                    self.send(
                        now,
                        Event::InteractionAbandoned {
                            interaction: ix.to_string(),
                        },
                        &ix.to_string(),
                    )?;
                }
            }
            Kind::Login { agent } => {
                self.agents[agent].logged_in = true;
                let plan = &self.plan.agents[agent];
                let id = plan.id.clone();
                let login = Event::AgentLogin {
                    agent: id.clone(),
                    address: plan.address.clone(),
                    tiers: plan.tiers.clone(),
                    skills: plan.skills.clone(),
                    capacity: plan.capacity.clone(),
                };
                self.send(now, login, &id)?;
                if self.agents[agent].on_break {
                    self.set_state(now, agent, RequestedState::NotReady)?;
                }
            }
            Kind::Logout { agent } => {
                self.agents[agent].logged_in = false;
                let id = self.agents[agent].id.to_string();
                self.send(now, Event::AgentLogout { agent: id.clone() }, &id)?;
            }
            Kind::BreakStart { agent } => {
                self.agents[agent].on_break = true;
                if self.agents[agent].logged_in {
                    self.set_state(now, agent, RequestedState::NotReady)?;
                }
            }
            Kind::BreakEnd { agent } => {
                self.agents[agent].on_break = false;
                if self.agents[agent].logged_in {
                    self.set_state(now, agent, RequestedState::Available)?;
                }
            }
            Kind::Recorded { agent, index } => {
                let Some((_, event)) = self.plan.agents[agent].recorded.get(index) else {
                    return Ok(());
                };
                let event = event.clone();
                if let Some(o) = self.observer.as_mut() {
                    o.event(now, &event);
                }
                match self.engine.handle(now, &event) {
                    Ok(decisions) => self.react(decisions),
                    // What was valid in the recording may not be in the new run: count it.
                    Err(_) => self.refused_recorded += 1,
                }
            }
        }
        Ok(())
    }

    fn set_state(
        &mut self,
        now: Millis,
        agent: usize,
        state: RequestedState,
    ) -> Result<(), SimError> {
        let id = self.agents[agent].id.to_string();
        let reason = (state == RequestedState::NotReady).then(|| "break".to_string());
        self.send(
            now,
            Event::AgentState {
                agent: id.clone(),
                state,
                reason,
            },
            &id,
        )
    }

    fn arrive(&mut self, now: Millis, a: Arrival) -> Result<(), SimError> {
        let ix = self.next_ix;
        self.next_ix += 1;
        self.run.arrivals += 1;
        let (from, to) = self.tally.window;
        self.live.insert(
            ix,
            Live {
                counted: (from..to).contains(&now),
                handle_ms: a.handle_ms,
                wrap_up_ms: a.wrap_up_ms,
                agent: None,
                queued_in: None,
                responses: a.responses,
            },
        );
        if let Some(p) = a.patience_ms {
            self.schedule(now.saturating_add(p), Kind::Abandon { ix });
        }
        let id = ix.to_string();
        let arrival = Event::InteractionArrived {
            interaction: id.clone(),
            channel: a.channel,
            queue: a.queue,
            priority: a.priority,
            skills: a.skills,
            customer: None,
            attributes: a.attributes,
        };
        match self.send(now, arrival, &id) {
            // Recorded traffic under a new config's rules: counted, as the daemon would have
            // answered it 422 (its pending abandon finds it gone).
            Err(SimError::EngineRefused { source, .. })
                if matches!(*source, EngineError::ChannelNotServed { .. }) =>
            {
                self.live.remove(&ix);
                self.run.refused += 1;
                Ok(())
            }
            other => other,
        }
    }

    /// Remove and return the pending offer of `ix` if it is still `offer`.
    fn take_offer(&mut self, ix: u64, offer: &Arc<str>) -> Option<Pending> {
        match self.offers.get(&ix) {
            Some(p) if p.offer == *offer => self.offers.remove(&ix),
            _ => None,
        }
    }

    /// Count the facts, then act on the decisions (facts first: they still find the interaction).
    fn react(&mut self, decisions: Vec<Decision>) {
        self.run.decisions += decisions.len() as u64;
        for fact in self.engine.take_facts() {
            self.count(fact);
        }
        for d in decisions {
            self.act(d);
        }
    }

    fn count(&mut self, fact: Fact) {
        let live = &self.live;
        let counted = |interaction: &str| {
            interaction
                .parse::<u64>()
                .ok()
                .and_then(|ix| live.get(&ix))
                .is_some_and(|l| l.counted)
        };
        if let Some(finished) = self.tally.count_fact(fact, counted) {
            self.forget(&finished);
        }
    }

    fn forget(&mut self, interaction: &str) {
        if let Ok(ix) = interaction.parse::<u64>() {
            self.live.remove(&ix);
            self.offers.remove(&ix);
        }
    }

    fn act(&mut self, d: Decision) {
        match d.kind {
            DecisionKind::Offer {
                interaction,
                agent,
                offer,
                ..
            } => {
                let Ok(ix) = interaction.parse::<u64>() else {
                    return;
                };
                let recorded = self.live.get_mut(&ix).and_then(|l| {
                    let k = l.responses.iter().position(|r| r.agent == agent)?;
                    Some(l.responses.remove(k))
                });
                let agent = self.agent_index.get(&*agent).copied();
                let behaviour = agent.map_or(0, |a| self.plan.agents[a].behaviour);
                let Some(agent) = agent else { return };
                if let Some(r) = recorded {
                    // This agent answered this interaction in the recording: do it again.
                    self.offers.insert(
                        ix,
                        Pending {
                            offer: offer.clone(),
                            agent,
                        },
                    );
                    let kind = match r.answer {
                        Answer::Accept => Kind::Accept { ix, offer },
                        Answer::Decline(reason) => Kind::Decline { ix, offer, reason },
                        Answer::Ring => return,
                    };
                    self.schedule(d.at.saturating_add(r.delay_ms), kind);
                    return;
                }
                let b = &self.plan.behaviours[behaviour];
                let u: f64 = if b.no_answer_prob > 0.0 || b.decline_prob > 0.0 {
                    self.behaviour_rng.gen()
                } else {
                    1.0
                };
                self.offers.insert(
                    ix,
                    Pending {
                        offer: offer.clone(),
                        agent,
                    },
                );
                if u < b.no_answer_prob {
                    // The phone rings until the engine's offer timeout revokes it.
                    return;
                }
                let delay = b.answer_delay.sample(&mut self.behaviour_rng).unwrap_or(0);
                let kind = if u < b.no_answer_prob + b.decline_prob {
                    Kind::Decline {
                        ix,
                        offer,
                        reason: DeclineReason::Rejected,
                    }
                } else {
                    Kind::Accept { ix, offer }
                };
                self.schedule(d.at.saturating_add(delay), kind);
            }
            DecisionKind::Queued {
                interaction, queue, ..
            } => {
                let Ok(ix) = interaction.parse::<u64>() else {
                    return;
                };
                if let Some(l) = self.live.get_mut(&ix) {
                    if l.queued_in.as_deref() != Some(&*queue) {
                        let first = l.queued_in.is_none();
                        l.queued_in = Some(queue.clone());
                        if l.counted {
                            self.tally.queued(&queue, first);
                        }
                    }
                }
            }
            DecisionKind::OfferRevoked {
                interaction, offer, ..
            } => {
                if let Ok(ix) = interaction.parse::<u64>() {
                    if self.offers.get(&ix).is_some_and(|p| p.offer == offer) {
                        self.offers.remove(&ix);
                    }
                }
            }
            DecisionKind::Overflow { .. }
            | DecisionKind::Rejected { .. }
            | DecisionKind::Escalated { .. }
            | DecisionKind::AgentState { .. } => {}
        }
    }
}
