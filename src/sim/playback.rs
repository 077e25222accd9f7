//! The "old" column of a replay: the journal's own inputs run through the daemon's `Core` with the
//! journal's own config (the snapshot's, then every journaled reload), exactly as recovery would.
//! While it runs it counts the figures with the simulator's `Tally` and writes down what the
//! recording shows about the traffic and the people: per interaction its arrival, handle time,
//! wrap-up and outcome; per agent the presence events and how they answered offers.
//!
//! It never routes anything itself and never looks at the new config; it only watches the
//! decisions and facts of the recorded run.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::{Channel, LoadedConfig, Millis, RoutingConfig, Tier};
use crate::daemon::core::{Core, Input, Outcome, TimedInput};
use crate::engine::{
    AgentStatus, Decision, DecisionKind, DeclineReason, Event, Fact, RequestedState, RevokeReason,
};
use crate::sim::report::{self, Report, RunFigures, RunInfo};
use crate::sim::tally::Tally;
use crate::sim::traffic::{Answer, RecordedResponse};

/// How a recorded interaction left (or had not yet left) the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedOutcome {
    /// Accepted by an agent this long after arriving.
    Answered { wait_ms: Millis },
    /// The customer left this long after arriving: an exact patience.
    Abandoned { wait_ms: Millis },
    /// Handed to a PBX target at `max_wait_s`, this long after arriving.
    Overflowed { wait_ms: Millis },
    /// Refused at arrival (queue full, closed, no route).
    Rejected,
    /// Still waiting when the recording ends, this long after arriving.
    Unfinished { waited_ms: Millis },
}

/// One interaction as recorded.
#[derive(Debug, Clone)]
pub struct RecordedInteraction {
    pub id: Arc<str>,
    /// Engine time of arrival.
    pub at: Millis,
    pub channel: Channel,
    /// As the PBX sent them (a `queue` skips the rules; attributes are matched by them).
    pub queue: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub priority: Option<i32>,
    pub skills: Vec<String>,
    /// The queue the recorded routing put it in (`None`: rejected unrouted).
    pub routed_to: Option<Arc<str>>,
    pub answered_at: Option<Millis>,
    /// First accept → `interaction.ended` (through any transfers).
    pub handle_ms: Option<Millis>,
    pub ended_at: Option<Millis>,
    /// `interaction.ended` → the agent's `agent.wrapup_done`; `None`: the queue's wrap-up timer
    /// ended it (or it never ended).
    pub wrap_up_ms: Option<Millis>,
    /// How each offer of it was answered, oldest first.
    pub responses: Vec<RecordedResponse>,
    abandoned_at: Option<Millis>,
    overflowed_at: Option<Millis>,
    rejected: bool,
    queued_in: Option<Arc<str>>,
}

impl RecordedInteraction {
    /// The outcome, judged at `end` (the last recorded time).
    pub fn outcome(&self, end: Millis) -> RecordedOutcome {
        let since = |t: Millis| t.saturating_sub(self.at);
        if self.rejected {
            RecordedOutcome::Rejected
        } else if let Some(t) = self.abandoned_at {
            RecordedOutcome::Abandoned { wait_ms: since(t) }
        } else if let Some(t) = self.overflowed_at {
            RecordedOutcome::Overflowed { wait_ms: since(t) }
        } else if let Some(t) = self.answered_at {
            RecordedOutcome::Answered { wait_ms: since(t) }
        } else {
            RecordedOutcome::Unfinished {
                waited_ms: since(end),
            }
        }
    }
}

/// One agent as recorded.
#[derive(Debug, Clone, Default)]
pub struct RecordedAgent {
    pub id: String,
    /// Presence events that took effect, as sent (logins, logouts, state changes), with times.
    pub timeline: Vec<(Millis, Event)>,
    /// The login as the engine resolved it the last time (address, tiers, skills, capacity in
    /// force), for a new config whose roster no longer knows the agent.
    pub resolved_login: Option<Event>,
    /// Tiers in force when last seen.
    pub tiers: BTreeMap<String, Tier>,
    pub offers: u64,
    pub accepted: u64,
    /// Declined with reason `rejected` or `busy`.
    pub declined: u64,
    /// Offers that expired, or were declined with reason `no_answer`.
    pub no_answers: u64,
    /// Offer → accept or decline, in ms.
    pub answer_delays_ms: Vec<Millis>,
}

/// Counts about the recording itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputCounts {
    /// Records replayed.
    pub records: u64,
    /// Inputs the engine refused when they were recorded (refused again, harmlessly).
    pub refused: u64,
    /// Events whose envelope id was a duplicate.
    pub duplicates: u64,
    /// Reloads that took effect.
    pub reloads: u64,
    /// Transfers and agent escalations (not re-driven in the new run).
    pub transfers: u64,
    pub agent_escalations: u64,
    /// Interactions already in the system at the start (a replay from a later snapshot).
    pub in_flight_at_start: u64,
}

/// The recording replayed: the old figures and everything extracted.
pub struct Played {
    pub start_ms: Millis,
    pub end_ms: Millis,
    pub interactions: Vec<RecordedInteraction>,
    pub agents: Vec<RecordedAgent>,
    pub counts: InputCounts,
    pub report: Report,
    /// The routing config in force at the start and at the end.
    pub first_config: RoutingConfig,
    pub last_config: RoutingConfig,
    /// The core after the last record (for the snapshot check of a rebuilt start).
    pub core: Core,
}

/// Replays records one by one. See the module docs.
pub struct Playback {
    core: Option<Core>,
    fresh: Option<LoadedConfig>,
    start_ms: Option<Millis>,
    last_ms: Millis,
    first_config: Option<RoutingConfig>,
    tally: Tally,
    interactions: Vec<RecordedInteraction>,
    by_id: HashMap<Arc<str>, usize>,
    agents: Vec<RecordedAgent>,
    agent_ix: HashMap<String, usize>,
    /// Pending offer per interaction: (agent index, made at).
    offers: HashMap<Arc<str>, (usize, Millis)>,
    /// Per agent: interactions ended and still in wrap-up (interaction index, channel).
    wrapping: HashMap<usize, Vec<(usize, Channel)>>,
    counts: InputCounts,
    run: RunFigures,
}

impl Playback {
    /// Start from a snapshot's state.
    pub fn from_core(mut core: Core) -> Playback {
        core.engine_mut().set_record_facts(true);
        let mut p = Playback::empty();
        p.begin(core);
        p
    }

    /// Start from a fresh state with `config`, created at the first record's time.
    pub fn fresh(config: LoadedConfig) -> Playback {
        let mut p = Playback::empty();
        p.fresh = Some(config);
        p
    }

    fn empty() -> Playback {
        Playback {
            core: None,
            fresh: None,
            start_ms: None,
            last_ms: 0,
            first_config: None,
            tally: Tally::new(&RoutingConfig::empty(), (0, Millis::MAX)),
            interactions: Vec::new(),
            by_id: HashMap::new(),
            agents: Vec::new(),
            agent_ix: HashMap::new(),
            offers: HashMap::new(),
            wrapping: HashMap::new(),
            counts: InputCounts::default(),
            run: RunFigures::default(),
        }
    }

    /// Take `core` as the starting state at its engine time: agents logged in there keep their
    /// status in the new run too; interactions already in the system are counted in neither.
    fn begin(&mut self, core: Core) {
        let start = core.engine().now();
        self.start_ms = Some(start);
        self.last_ms = start;
        self.tally.window = (start, Millis::MAX);
        let config = core.engine().config().clone();
        self.add_queues(&config);
        let roster: HashMap<&str, _> = config.agents.iter().map(|a| (a.id.as_str(), a)).collect();
        for view in core.engine().agents() {
            let tiers: BTreeMap<String, Tier> = view
                .tiers
                .iter()
                .map(|(q, t)| (q.to_string(), *t))
                .collect();
            self.tally.add_agent(view.id.clone(), tiers.clone(), start);
            if view.status == AgentStatus::Offline {
                continue;
            }
            self.tally.agent_status(&view.id, view.status, start);
            for slot in &view.slots {
                if slot.phase != crate::engine::SlotPhase::Offered {
                    self.tally.agent_took(&view.id, start, false);
                }
            }
            let skills: Vec<String> = view.skills.iter().map(|s| s.to_string()).collect();
            let resolved = Event::AgentLogin {
                agent: view.id.to_string(),
                address: Some(view.address.to_string()),
                tiers: Some(tiers.clone()),
                skills: Some(skills.clone()),
                capacity: Some(view.capacity.clone()),
            };
            // Logged in with the roster's values: a new roster's values apply in the new run.
            let as_roster = roster.get(&*view.id).is_some_and(|a| {
                a.tiers == tiers && a.skills == skills && a.capacity == view.capacity
            });
            let login = if as_roster {
                Event::AgentLogin {
                    agent: view.id.to_string(),
                    address: None,
                    tiers: None,
                    skills: None,
                    capacity: None,
                }
            } else {
                resolved.clone()
            };
            let ix = self.agent(&view.id);
            let a = &mut self.agents[ix];
            a.tiers = tiers;
            a.resolved_login = Some(resolved);
            a.timeline.push((start, login));
            if view.status == AgentStatus::NotReady {
                a.timeline.push((
                    start,
                    Event::AgentState {
                        agent: view.id.to_string(),
                        state: RequestedState::NotReady,
                        reason: view.reason.as_ref().map(|r| r.to_string()),
                    },
                ));
            }
        }
        let c = core.engine().counts();
        self.counts.in_flight_at_start = c.waiting + c.offered + c.connected + c.wrap_up;
        self.first_config = Some(config);
        self.core = Some(core);
    }

    fn add_queues(&mut self, config: &RoutingConfig) {
        for q in &config.queues {
            self.tally.ensure_queue(&q.id, q.sla_ms);
        }
    }

    fn agent(&mut self, id: &str) -> usize {
        if let Some(&ix) = self.agent_ix.get(id) {
            return ix;
        }
        self.agents.push(RecordedAgent {
            id: id.to_string(),
            ..RecordedAgent::default()
        });
        self.agent_ix.insert(id.to_string(), self.agents.len() - 1);
        self.agents.len() - 1
    }

    /// The core as of the last record replayed (`None` before the first of a fresh start).
    pub fn core(&self) -> Option<&Core> {
        self.core.as_ref()
    }

    /// Replay one journaled input.
    pub fn input(&mut self, timed: TimedInput) {
        let TimedInput { at, input } = timed;
        if self.core.is_none() {
            if let Some(config) = self.fresh.take() {
                let mut core = Core::new(config, at);
                core.engine_mut().set_record_facts(true);
                self.begin(core);
            }
        }
        let Some(core) = self.core.as_mut() else {
            return;
        };
        self.counts.records += 1;
        self.last_ms = self.last_ms.max(at);
        // Timers due by `at` first (what `Core::apply` does anyway), so their facts are told
        // apart from the input's.
        let fired = core.apply(&Input::Advance, at).fired;
        if !fired.is_empty() {
            self.run.timer_firings += 1;
        }
        self.after(fired);
        if matches!(input, Input::Advance) {
            return;
        }
        self.run.events += 1;
        if let Input::Event {
            event: Event::AgentWrapupDone { agent },
            ..
        } = &input
        {
            // Everything the agent is wrapping up ends now: an early "wrap-up done".
            if let Some(&ix) = self.agent_ix.get(agent.as_str()) {
                for &(i, _) in self.wrapping.get(&ix).into_iter().flatten() {
                    let r = &mut self.interactions[i];
                    r.wrap_up_ms = r.ended_at.map(|e| at.saturating_sub(e));
                }
            }
        }
        let Some(core) = self.core.as_mut() else {
            return;
        };
        let applied = core.apply(&input, at);
        let decisions = match applied.outcome {
            Outcome::Applied(d) => d,
            Outcome::Duplicate(_) => {
                self.counts.duplicates += 1;
                return;
            }
            Outcome::Rejected(_) | Outcome::ConfigRefused(_) => {
                self.counts.refused += 1;
                return;
            }
        };
        self.took_effect(at, &input);
        self.after(decisions);
    }

    /// Write down what an input that took effect says about the traffic and the agents.
    fn took_effect(&mut self, at: Millis, input: &Input) {
        let event = match input {
            Input::Event { event, .. } => event.clone(),
            Input::AgentState {
                agent,
                state,
                reason,
            } => Event::AgentState {
                agent: agent.clone(),
                state: *state,
                reason: reason
                    .clone()
                    .or_else(|| (*state != RequestedState::Available).then(|| "admin".to_string())),
            },
            Input::Reconfigure { .. } => {
                self.counts.reloads += 1;
                if let Some(core) = &self.core {
                    let config = core.engine().config().clone();
                    self.add_queues(&config);
                }
                return;
            }
            Input::Advance => return,
        };
        match event {
            Event::InteractionArrived {
                interaction,
                channel,
                queue,
                priority,
                skills,
                attributes,
                ..
            } => {
                let id: Arc<str> = Arc::from(interaction.as_str());
                self.by_id.insert(id.clone(), self.interactions.len());
                self.run.arrivals += 1;
                self.interactions.push(RecordedInteraction {
                    id,
                    at,
                    channel,
                    queue,
                    attributes,
                    priority,
                    skills,
                    routed_to: None,
                    answered_at: None,
                    handle_ms: None,
                    ended_at: None,
                    wrap_up_ms: None,
                    responses: Vec::new(),
                    abandoned_at: None,
                    overflowed_at: None,
                    rejected: false,
                    queued_in: None,
                });
            }
            Event::OfferAccepted { interaction, .. } => self.accepted(&interaction, at),
            Event::OfferDeclined {
                interaction,
                reason,
                ..
            } => {
                if let Some((ix, offered_at)) = self.offers.remove(interaction.as_str()) {
                    let delay = at.saturating_sub(offered_at);
                    let a = &mut self.agents[ix];
                    if reason == DeclineReason::NoAnswer {
                        a.no_answers += 1;
                    } else {
                        a.declined += 1;
                        a.answer_delays_ms.push(delay);
                    }
                    self.respond(&interaction, ix, delay, Answer::Decline(reason));
                }
            }
            Event::AgentLogin { ref agent, .. }
            | Event::AgentLogout { ref agent }
            | Event::AgentState { ref agent, .. } => {
                let id = agent.clone();
                let view = self.core.as_ref().and_then(|c| c.engine().agent(&id));
                let is_login = matches!(event, Event::AgentLogin { .. });
                let ix = self.agent(&id);
                let a = &mut self.agents[ix];
                if let Some(view) = view {
                    a.tiers = view
                        .tiers
                        .iter()
                        .map(|(q, t)| (q.to_string(), *t))
                        .collect();
                    if is_login {
                        a.resolved_login = Some(Event::AgentLogin {
                            agent: id.clone(),
                            address: Some(view.address.to_string()),
                            tiers: Some(a.tiers.clone()),
                            skills: Some(view.skills.iter().map(|s| s.to_string()).collect()),
                            capacity: Some(view.capacity.clone()),
                        });
                    }
                }
                a.timeline.push((at, event));
            }
            Event::InteractionTransferred { .. } => self.counts.transfers += 1,
            Event::InteractionEscalated { .. } => self.counts.agent_escalations += 1,
            // An answer by the agent the interaction is ringing (a PBX reporting the answer
            // rather than accepting the offer) is that offer accepted: the new run accepts it
            // after the same delay. A late answer's offer was counted when it expired or was
            // revoked; that answer is not re-driven (docs/SIMULATOR.md, Limits).
            Event::InteractionAnswered { interaction, agent } => {
                let ringing_it = self
                    .offers
                    .get(interaction.as_str())
                    .is_some_and(|&(ix, _)| self.agents[ix].id == *agent);
                if ringing_it {
                    self.accepted(&interaction, at);
                }
            }
            Event::InteractionAbandoned { .. }
            | Event::InteractionEnded { .. }
            | Event::InteractionRated { .. }
            | Event::AgentWrapupDone { .. } => {}
        }
    }

    /// Count the facts, then note offers and queueing from the decisions (facts first, as the
    /// simulator does).
    fn after(&mut self, decisions: Vec<Decision>) {
        self.run.decisions += decisions.len() as u64;
        let facts = match self.core.as_mut() {
            Some(core) => core.engine_mut().take_facts(),
            None => Vec::new(),
        };
        for fact in facts {
            self.note(&fact);
            let by_id = &self.by_id;
            self.tally.count_fact(fact, |id| by_id.contains_key(id));
        }
        for d in decisions {
            match d.kind {
                DecisionKind::Offer {
                    interaction, agent, ..
                } => {
                    let ix = self.agent(&agent);
                    self.agents[ix].offers += 1;
                    self.offers.insert(interaction, (ix, d.at));
                }
                DecisionKind::OfferRevoked {
                    interaction,
                    reason,
                    ..
                } => {
                    if let Some((ix, offered_at)) = self.offers.remove(&interaction) {
                        if reason == RevokeReason::Expired {
                            self.agents[ix].no_answers += 1;
                        }
                        let delay = d.at.saturating_sub(offered_at);
                        self.respond(&interaction, ix, delay, Answer::Ring);
                    }
                }
                DecisionKind::Queued {
                    interaction, queue, ..
                } => {
                    if let Some(&i) = self.by_id.get(&interaction) {
                        let r = &mut self.interactions[i];
                        if r.queued_in.as_deref() != Some(&*queue) {
                            let first = r.queued_in.is_none();
                            r.queued_in = Some(queue.clone());
                            self.tally.queued(&queue, first);
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

    /// The offer ringing `interaction` was accepted at `at`: counted, and recorded for the new run.
    fn accepted(&mut self, interaction: &str, at: Millis) {
        if let Some((ix, offered_at)) = self.offers.remove(interaction) {
            let delay = at.saturating_sub(offered_at);
            let a = &mut self.agents[ix];
            a.accepted += 1;
            a.answer_delays_ms.push(delay);
            self.respond(interaction, ix, delay, Answer::Accept);
        }
    }

    fn respond(&mut self, interaction: &str, agent: usize, delay_ms: Millis, answer: Answer) {
        if let Some(&i) = self.by_id.get(interaction) {
            let agent: Arc<str> = Arc::from(self.agents[agent].id.as_str());
            self.interactions[i].responses.push(RecordedResponse {
                agent,
                delay_ms,
                answer,
            });
        }
    }

    /// What a fact says about one interaction or agent.
    fn note(&mut self, fact: &Fact) {
        let find = |id: &str| self.by_id.get(id).copied();
        match fact {
            Fact::Arrived {
                interaction, queue, ..
            } => {
                if let Some(i) = find(interaction) {
                    self.interactions[i].routed_to = queue.clone();
                }
            }
            Fact::Answered {
                interaction, at, ..
            } => {
                if let Some(i) = find(interaction) {
                    let r = &mut self.interactions[i];
                    r.answered_at.get_or_insert(*at);
                }
            }
            Fact::Ended {
                interaction,
                agent,
                channel,
                at,
                ..
            } => {
                if let Some(i) = find(interaction) {
                    let r = &mut self.interactions[i];
                    r.handle_ms = r.answered_at.map(|a| at.saturating_sub(a));
                    r.ended_at = Some(*at);
                    let ix = self.agent(agent);
                    self.wrapping.entry(ix).or_default().push((i, *channel));
                }
            }
            Fact::WrapUpEnded { agent, channel, .. } => {
                if let Some(&ix) = self.agent_ix.get(&**agent) {
                    if let Some(list) = self.wrapping.get_mut(&ix) {
                        if let Some(k) = list.iter().position(|(_, c)| c == channel) {
                            list.remove(k);
                        }
                    }
                }
            }
            Fact::Abandoned {
                interaction, at, ..
            } => {
                if let Some(i) = find(interaction) {
                    self.interactions[i].abandoned_at = Some(*at);
                }
            }
            Fact::Overflowed {
                interaction,
                to_queue: None,
                at,
                ..
            } => {
                if let Some(i) = find(interaction) {
                    self.interactions[i].overflowed_at = Some(*at);
                }
            }
            Fact::Rejected { interaction, .. } => {
                if let Some(i) = find(interaction) {
                    self.interactions[i].rejected = true;
                }
            }
            Fact::AgentStatusChanged { agent, .. } if !self.tally.has_agent(agent) => {
                let tiers = self
                    .core
                    .as_ref()
                    .and_then(|c| c.engine().agent(agent))
                    .map(|v| v.tiers.iter().map(|(q, t)| (q.to_string(), *t)).collect())
                    .unwrap_or_default();
                let since = self.start_ms.unwrap_or(0);
                self.tally.add_agent(agent.clone(), tiers, since);
            }
            _ => {}
        }
    }

    /// Close the books at the last recorded time. `None` when no record was replayed from a
    /// fresh start (there is nothing to report).
    pub fn finish(mut self, seed: u64, agents: bool) -> Option<Played> {
        let core = self.core.take()?;
        let start = self.start_ms.unwrap_or(0);
        let end = self.last_ms;
        // Offers still ringing when the recording ends were never answered in it: the agent
        // lets them ring, so a new run offering the same interaction to the same agent does not
        // have it answered (at once, as a response drawn from nothing did) where the recording
        // shows no answer.
        let ringing: Vec<(Arc<str>, usize, Millis)> = self
            .offers
            .iter()
            .map(|(i, &(ix, offered_at))| (i.clone(), ix, offered_at))
            .collect();
        for (interaction, ix, offered_at) in ringing {
            self.respond(
                &interaction,
                ix,
                end.saturating_sub(offered_at),
                Answer::Ring,
            );
        }
        self.tally.window = (start, end + 1);
        self.tally.finish();
        self.run.unfinished = self
            .interactions
            .iter()
            .filter(|r| matches!(r.outcome(end), RecordedOutcome::Unfinished { .. }))
            .count() as u64;
        self.run.ended_at_s = (end - start) as f64 / 1000.0;
        let info = RunInfo {
            seed,
            start_ms: start,
            duration_ms: end + 1 - start,
            warm_up_ms: 0,
            run: self.run.clone(),
        };
        let report = report::build(&self.tally, info, agents);
        let last_config = core.engine().config().clone();
        Some(Played {
            start_ms: start,
            end_ms: end,
            interactions: self.interactions,
            agents: self.agents,
            counts: self.counts,
            report,
            first_config: self.first_config.unwrap_or_else(|| last_config.clone()),
            last_config,
            core,
        })
    }
}
