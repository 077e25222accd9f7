//! The engine task's side of metrics: engine facts and views in, series and KPI windows out.
//!
//! Owned by the engine task alone (`&mut self`, no locks); the only shared state it touches is
//! the `Metrics` handle (atomic series, and the clock-dependent board once per batch that changed
//! a queue). Work per batch is O(facts) + O(queues the batch changed × their tiers) + O(agents the
//! batch touched), never O(interactions) nor a walk over every queue's agents: the engine keeps
//! each queue's agent census incrementally and lists the queues whose load changed
//! ([`Engine::take_changed_queues`], [`Engine::queue_load`]). Must never call the engine's
//! mutating methods other than `take_facts` and `take_changed_queues` (through
//! [`Telemetry::observe`] / [`Telemetry::refresh`]) and never read a clock.

use std::collections::HashMap;
use std::sync::Arc;

use super::catalog::{self as c, seconds};
use super::live::{CentreSeries, LiveSeries};
use super::series::{AgentSeries, QueueSeries, UnroutedSeries};
use super::since_start::QueueTally;
use super::stats::{AgentLedger, AgentStats, Mark, QueueNow, QueueStats, Span, StatsError};
use super::Metrics;
use crate::config::{Channel, Millis, QueueConfig, RoutingConfig, Tier};
use crate::engine::{
    Activity, AgentPresence, AgentStatus, DeclineReason, Engine, Fact, OfferResult, QueueLoad,
};

/// What telemetry reads from the engine after a batch. Implemented by [`Engine`]; a trait so the
/// simulator or a test double can stand in.
pub trait RoutingState {
    /// The queues whose load (waiting, oldest wait, agents by tier and activity) changed since
    /// the last call.
    fn take_changed_queues(&mut self) -> Vec<Arc<str>>;
    /// One queue's load now, without a walk over its agents.
    fn queue_load(&self, id: &str) -> Option<QueueLoad<'_>>;
    fn agent_presence(&self, id: &str) -> Option<AgentPresence>;
    /// Every agent the engine knows (roster or logged in by an event).
    fn agent_ids(&self) -> Vec<Arc<str>>;
    /// Agents of the whole centre per activity (indexed like `Activity::ALL`), each once.
    fn centre_agents(&self) -> [u32; 6];
}

impl RoutingState for Engine {
    fn take_changed_queues(&mut self) -> Vec<Arc<str>> {
        Engine::take_changed_queues(self)
    }
    fn queue_load(&self, id: &str) -> Option<QueueLoad<'_>> {
        Engine::queue_load(self, id)
    }
    fn agent_presence(&self, id: &str) -> Option<AgentPresence> {
        Engine::agent_presence(self, id)
    }
    fn agent_ids(&self) -> Vec<Arc<str>> {
        Engine::agent_ids(self).cloned().collect()
    }
    fn centre_agents(&self) -> [u32; 6] {
        Engine::centre_agents(self)
    }
}

/// Facts and views → Prometheus series and KPI windows. See the module docs.
pub struct Telemetry {
    metrics: Metrics,
    /// Latest engine time seen (facts or refresh).
    last_now: Millis,
    /// Configured queues, in config order (refreshed every batch).
    queue_order: Vec<Arc<str>>,
    queues: HashMap<Arc<str>, QueueSeries>,
    agents: HashMap<Arc<str>, AgentTrack>,
    /// Every agent a roster has named since the start, each with when it first joined one (the
    /// start, or the config change that added it): where its stats begin if no fact about it
    /// came since. Never shrinks: the engine keeps an agent a later roster leaves out.
    roster: HashMap<Arc<str>, Millis>,
    touched: Vec<Arc<str>>,
    unrouted: [UnroutedSeries; 4],
    /// The next refresh reads every configured queue, not only the changed ones (at start, when
    /// the engine may already have state, and after a new config).
    refresh_all: bool,
    /// The centre's agents per activity as last published (`None`: not yet).
    centre: Option<[u32; 6]>,
    /// `tierline_decision_seq`, set after every batch.
    decision_seq: metrics::Gauge,
}

struct AgentTrack {
    ledger: AgentLedger,
    status: AgentStatus,
    reason: Option<Arc<str>>,
    offered: u32,
    connected: u32,
    wrap_up: u32,
    last_fact_at: Millis,
    touched: bool,
    series: Option<AgentSeries>,
}

impl Telemetry {
    /// Start at engine time `now` with `routing` in force. Every configured queue's series, and
    /// the unrouted (`queue=""`) ones of every channel, exist (at 0) from the start, so
    /// `increase()` sees the first event.
    pub fn new(metrics: Metrics, routing: &RoutingConfig, now: Millis) -> Telemetry {
        let unrouted = Channel::ALL.map(|ch| UnroutedSeries::new(&metrics, ch));
        let decision_seq = metrics.gauge(super::catalog::DECISION_SEQ, &[]);
        let mut t = Telemetry {
            metrics,
            last_now: now,
            queue_order: Vec::new(),
            queues: HashMap::new(),
            agents: HashMap::new(),
            roster: HashMap::new(),
            touched: Vec::new(),
            unrouted,
            refresh_all: true,
            centre: None,
            decision_seq,
        };
        {
            let m = &t.metrics;
            let mut board = m.board();
            if !board.tracks_centre() {
                let series = CentreSeries {
                    agents: Activity::ALL
                        .map(|a| m.gauge(c::CENTRE_AGENTS, &[("state", a.as_str())])),
                    state_seconds: Activity::ALL.map(|a| {
                        m.counter(c::CENTRE_AGENT_STATE_SECONDS, &[("state", a.as_str())])
                    }),
                };
                board.track_centre(series, now);
            }
        }
        t.on_config(routing);
        t
    }

    /// Take the engine's state as it is now (after journal recovery it may hold waiting calls
    /// and busy agents): every agent it knows is tracked from `now` in its current activity,
    /// and every queue's gauges are published. Call once, before the first batch, so neither a
    /// scrape nor an agent's stats wait for the next event to tell the truth.
    pub fn start(&mut self, state: &mut impl RoutingState, now: Millis) {
        for id in state.agent_ids() {
            self.agent(&id, now);
        }
        self.refresh(state, now);
    }

    /// The metrics handle this telemetry records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Record the facts of the last batch and refresh the gauges: call after every batch of
    /// `advance`/`handle` with the batch's engine time. Needs `engine.set_record_facts(true)`.
    pub fn observe(&mut self, engine: &mut Engine, now: Millis) {
        let facts = engine.take_facts();
        self.on_facts(&facts);
        self.refresh(engine, now);
        self.newest_decision(engine.next_seq());
    }

    /// `tierline_decision_seq`: the engine will number its next decision `next_seq`.
    pub fn newest_decision(&self, next_seq: u64) {
        self.decision_seq.set(next_seq.saturating_sub(1) as f64);
    }

    /// A new routing config is in force (after a successful reload). Series of removed queues
    /// stay (counters keep their totals; state gauges drop to 0, the sla and max-wait gauges keep
    /// their last value); their figures since start are reset.
    pub fn on_config(&mut self, routing: &RoutingConfig) {
        self.refresh_all = true;
        let removed: Vec<Arc<str>> = self
            .queue_order
            .iter()
            .filter(|id| routing.queue(id).is_none())
            .cloned()
            .collect();
        self.queue_order = routing
            .queues
            .iter()
            .map(|q| Arc::from(q.id.as_str()))
            .collect();
        for q in &routing.queues {
            let mut tiers: Vec<Tier> = q
                .steps
                .iter()
                .flat_map(|s| s.tiers.iter().copied())
                .collect();
            tiers.extend(
                routing
                    .agents
                    .iter()
                    .filter_map(|a| a.tiers.get(&q.id).copied()),
            );
            self.configure_queue(q, &tiers);
            let sla_s = seconds(q.sla_ms);
            if !self.metrics.wait_buckets().contains(&sla_s) {
                tracing::warn!(
                    queue = %q.id,
                    sla_s,
                    "sla_s is not a bucket bound of tierline_wait_seconds (buckets are fixed at \
                     startup); use tierline_answered_within_sla_total for this queue until restart"
                );
            }
        }
        let now = self.last_now;
        let mut board = self.metrics.board();
        for id in removed {
            if let Some(q) = self.queues.get_mut(&id) {
                q.waiting = 0;
                q.ringing = 0;
                q.oldest_entered_at = None;
                q.since_start = QueueTally::default();
                for ch in q.channels.iter().flatten() {
                    ch.waiting.set(0.0);
                    ch.ringing.set(0.0);
                }
                for gauges in q.tiers.values() {
                    gauges.iter().for_each(|g| g.set(0.0));
                }
            }
            board.update(&id, now, None, [0; 6]);
            board.set_hours(&id, None, now);
        }
        drop(board);
        // Agents stay known once known (the engine keeps an agent a roster drops): a dropped
        // one keeps its join time, and one added back keeps its first.
        let now = self.last_now;
        for a in &routing.agents {
            self.roster.entry(Arc::from(a.id.as_str())).or_insert(now);
        }
    }

    fn configure_queue(&mut self, q: &QueueConfig, tiers: &[Tier]) {
        let id: Arc<str> = Arc::from(q.id.as_str());
        let m = self.metrics.clone();
        let now = self.last_now;
        let series = self
            .queues
            .entry(id.clone())
            .or_insert_with(|| QueueSeries::new(&m, id.clone(), now));
        series.sla_ms = q.sla_ms;
        series.sla.set(seconds(q.sla_ms));
        match q.max_wait_ms {
            Some(ms) => series
                .max_wait
                .get_or_insert_with(|| m.gauge(c::QUEUE_MAX_WAIT, &[("queue", &id)]))
                .set(seconds(ms)),
            None => {
                if let Some(g) = &series.max_wait {
                    g.set(0.0);
                }
            }
        }
        for ch in &q.channels {
            series.channel(&m, *ch);
        }
        for step in 1..q.steps.len() {
            series.step(&m, step);
        }
        for tier in tiers {
            series.tier(&m, *tier);
        }
        let mut board = m.board();
        if !board.contains(&id) {
            let live = LiveSeries {
                oldest_wait: m.gauge(c::QUEUE_OLDEST_WAIT, &[("queue", &id)]),
                open: m.gauge(c::QUEUE_OPEN, &[("queue", &id)]),
                state_seconds: Activity::ALL.map(|a| {
                    m.counter(
                        c::AGENT_STATE_SECONDS,
                        &[("queue", &id), ("state", a.as_str())],
                    )
                }),
            };
            board.track(id.clone(), live, self.last_now);
        }
        board.set_hours(&id, Some(q.schedule.clone()), self.last_now);
    }

    fn queue(&mut self, id: &Arc<str>) -> &mut QueueSeries {
        let m = &self.metrics;
        let now = self.last_now;
        self.queues
            .entry(id.clone())
            .or_insert_with(|| QueueSeries::new(m, id.clone(), now))
    }

    fn agent(&mut self, id: &Arc<str>, at: Millis) -> &mut AgentTrack {
        let per_agent = self.metrics.per_agent();
        let m = &self.metrics;
        // A roster agent is known (offline) from when it joined the roster; one that a login
        // made, from its first fact: no offline time from before it existed.
        let known_from = self.roster.get(id).copied().unwrap_or(at);
        let track = self.agents.entry(id.clone()).or_insert_with(|| AgentTrack {
            ledger: AgentLedger::new(known_from),
            status: AgentStatus::Offline,
            reason: None,
            offered: 0,
            connected: 0,
            wrap_up: 0,
            last_fact_at: at,
            touched: false,
            series: per_agent.then(|| AgentSeries::new(m, id, Activity::Offline)),
        });
        if !track.touched {
            track.touched = true;
            self.touched.push(id.clone());
        }
        track.last_fact_at = track.last_fact_at.max(at);
        track
    }

    /// Record engine facts (in the order the engine emitted them).
    pub fn on_facts(&mut self, facts: &[Fact]) {
        for fact in facts {
            self.on_fact(fact);
        }
    }

    fn on_fact(&mut self, fact: &Fact) {
        let m = self.metrics.clone();
        match fact {
            Fact::Arrived {
                queue,
                channel,
                at,
                category,
                ..
            } => {
                self.seen(*at);
                let complaint = category.as_deref() == Some("complaint");
                match queue {
                    Some(queue) => {
                        let q = self.queue(queue);
                        q.since_start.arrived += 1;
                        let ch = q.channel(&m, *channel);
                        ch.arrived.increment(1);
                        if complaint {
                            ch.complaints.increment(1);
                        }
                        let t = q.window.at(*at);
                        t.arrived += 1;
                        t.complaints += u32::from(complaint);
                    }
                    None => {
                        let u = &self.unrouted[channel.index()];
                        u.arrived.increment(1);
                        if complaint {
                            // The wallboard's complaint share divides by every arrival,
                            // unrouted ones included, so the complaints must include them too.
                            u.complaints.increment(1);
                        }
                    }
                }
            }
            Fact::Rejected {
                queue,
                channel,
                reason,
                at,
                ..
            } => {
                self.seen(*at);
                match queue {
                    Some(queue) => {
                        let q = self.queue(queue);
                        q.since_start.rejected += 1;
                        // A routed arrival is refused `queue_full` or `closed`, never `no_route`.
                        let k = usize::from(*reason == crate::engine::RejectReason::Closed);
                        q.channel(&m, *channel).rejected[k].increment(1);
                        q.window.at(*at).rejected += 1;
                    }
                    None => self.unrouted[channel.index()].rejected.increment(1),
                }
            }
            Fact::Offered { agent, at, .. } => {
                self.seen(*at);
                let a = self.agent(agent, *at);
                a.offered += 1;
                a.ledger.mark(*at, Mark::Offered);
                a.settle(*at);
            }
            Fact::OfferEnded {
                queue,
                agent,
                result,
                at,
            } => {
                self.seen(*at);
                let idx = match result {
                    OfferResult::Accepted => 0,
                    OfferResult::Declined(DeclineReason::Rejected) => 1,
                    OfferResult::Declined(DeclineReason::Busy) => 2,
                    OfferResult::Declined(DeclineReason::NoAnswer) => 3,
                    OfferResult::TimedOut => 4,
                    OfferResult::Revoked => 5,
                };
                self.queue(queue).offers[idx].increment(1);
                let a = self.agent(agent, *at);
                a.offered = a.offered.saturating_sub(1);
                match result {
                    OfferResult::Accepted => a.connected += 1,
                    OfferResult::Declined(DeclineReason::NoAnswer) | OfferResult::TimedOut => {
                        a.ledger.mark(*at, Mark::NoAnswer)
                    }
                    OfferResult::Declined(_) => a.ledger.mark(*at, Mark::Declined),
                    OfferResult::Revoked => {}
                }
                a.settle(*at);
            }
            Fact::Answered {
                queue,
                channel,
                agent,
                wait_ms,
                at,
                ..
            } => {
                self.seen(*at);
                let q = self.queue(queue);
                let within = *wait_ms <= q.sla_ms;
                q.since_start.answered += 1;
                q.since_start.answered_within_sla += u64::from(within);
                let ch = q.channel(&m, *channel);
                ch.answered.increment(1);
                if within {
                    ch.answered_within_sla.increment(1);
                }
                q.wait_answered.record(seconds(*wait_ms));
                let t = q.window.at(*at);
                t.answered += 1;
                t.answered_within_sla += u32::from(within);
                t.answered_wait_ms += wait_ms;
                m.note_samples(1);
                self.agent(agent, *at).ledger.mark(*at, Mark::Answered);
            }
            Fact::Abandoned {
                queue,
                channel,
                wait_ms,
                short,
                at,
                ..
            } => {
                self.seen(*at);
                let q = self.queue(queue);
                if *short {
                    q.since_start.short_abandoned += 1;
                    q.channel(&m, *channel).short_abandoned.increment(1);
                    q.window.at(*at).short_abandoned += 1;
                } else {
                    q.since_start.abandoned += 1;
                    q.channel(&m, *channel).abandoned.increment(1);
                    q.wait_abandoned.record(seconds(*wait_ms));
                    q.window.at(*at).abandoned += 1;
                    m.note_samples(1);
                }
            }
            Fact::Overflowed {
                queue,
                channel,
                to_queue,
                at,
                ..
            } => {
                self.seen(*at);
                let q = self.queue(queue);
                q.since_start.overflowed += 1;
                q.channel(&m, *channel).overflowed.increment(1);
                q.window.at(*at).overflowed += 1;
                if let Some(to) = to_queue {
                    self.queue(to).window.at(*at).entered_again += 1;
                }
            }
            Fact::StepReached { queue, step, at } => {
                self.seen(*at);
                self.queue(queue).step(&m, *step).increment(1);
            }
            Fact::EscalatedByAgent {
                queue, agent, at, ..
            } => {
                self.seen(*at);
                let q = self.queue(queue);
                q.escalated_by_agent.increment(1);
                q.window.at(*at).entered_again += 1;
                let a = self.agent(agent, *at);
                a.connected = a.connected.saturating_sub(1);
                a.wrap_up += 1;
                a.ledger.mark(*at, Mark::Escalated);
                a.settle(*at);
            }
            Fact::Transferred {
                to_queue,
                agent,
                at,
                ..
            } => {
                self.seen(*at);
                self.queue(to_queue).window.at(*at).entered_again += 1;
                let a = self.agent(agent, *at);
                a.connected = a.connected.saturating_sub(1);
                a.wrap_up += 1;
                a.ledger.mark(*at, Mark::Transferred);
                a.settle(*at);
            }
            Fact::Drained {
                to_queue,
                waiting: true,
                at,
                ..
            } => {
                // Counted as offered where it now waits, like a transfer or an overflow into a
                // queue: it can be answered, abandoned or overflow there. One an agent already
                // holds (connected, wrap-up) was answered where it was; it is not offered again.
                self.seen(*at);
                self.queue(to_queue).window.at(*at).entered_again += 1;
            }
            Fact::Drained { at, .. } => self.seen(*at),
            Fact::Ended {
                queue,
                agent,
                resolved,
                at,
                ..
            } => {
                self.seen(*at);
                let q = self.queue(queue);
                let resolved = *resolved == Some(true);
                q.ended.increment(1);
                if resolved {
                    q.resolved.increment(1);
                }
                let t = q.window.at(*at);
                t.ended += 1;
                t.resolved += u32::from(resolved);
                let a = self.agent(agent, *at);
                a.connected = a.connected.saturating_sub(1);
                a.wrap_up += 1;
                a.ledger.mark(*at, Mark::Ended { resolved });
                a.settle(*at);
            }
            Fact::WrapUpEnded {
                queue,
                channel,
                agent,
                handle_ms,
                at,
            } => {
                self.seen(*at);
                let q = self.queue(queue);
                q.channel(&m, *channel).handle.record(seconds(*handle_ms));
                m.note_samples(1);
                let a = self.agent(agent, *at);
                a.wrap_up = a.wrap_up.saturating_sub(1);
                a.ledger.mark(
                    *at,
                    Mark::Finished {
                        channel: *channel,
                        handle_ms: *handle_ms,
                    },
                );
                if let Some(s) = &mut a.series {
                    s.handled[channel.index()]
                        .get_or_insert_with(|| {
                            m.counter(
                                c::AGENT_HANDLED,
                                &[("agent", agent), ("channel", channel.as_str())],
                            )
                        })
                        .increment(1);
                }
                a.settle(*at);
            }
            Fact::Rated {
                queue,
                agent,
                score,
                at,
                ..
            } => {
                self.seen(*at);
                let q = self.queue(queue);
                if (1..=5).contains(score) {
                    q.ratings[usize::from(*score) - 1].increment(1);
                    let t = q.window.at(*at);
                    t.ratings += 1;
                    t.satisfied += u32::from(*score >= 4);
                    if let Some(agent) = agent {
                        self.agent(agent, *at)
                            .ledger
                            .mark(*at, Mark::Rated { score: *score });
                    }
                }
            }
            Fact::AgentStatusChanged {
                agent,
                to,
                reason,
                at,
                ..
            } => {
                self.seen(*at);
                let a = self.agent(agent, *at);
                a.status = *to;
                a.reason = reason.clone();
                a.settle(*at);
            }
        }
    }

    fn seen(&mut self, at: Millis) {
        self.last_now = self.last_now.max(at);
    }

    /// Bring the gauges up to the engine's state at `now`: waiting per queue and channel, oldest
    /// wait, agents per queue, tier and state, for the queues whose load changed since the last
    /// refresh (every configured queue at the first refresh and after `on_config`); and reconcile
    /// the agents the batch touched with the engine's own view of them. O(changed queues × their
    /// tiers + touched agents), never a walk over every queue's agents.
    pub fn refresh(&mut self, state: &mut impl RoutingState, now: Millis) {
        self.seen(now);
        let changed = state.take_changed_queues();
        let ids = if std::mem::take(&mut self.refresh_all) {
            self.queue_order.clone()
        } else {
            changed
        };
        let mut updates = Vec::with_capacity(ids.len());
        for id in ids {
            let (Some(load), Some(q)) = (state.queue_load(&id), self.queues.get_mut(&id)) else {
                continue;
            };
            // A channel's series is created when something first waits on it.
            for channel in Channel::ALL {
                let waiting = load.waiting_on(channel) as f64;
                let ringing = load.ringing_on(channel) as f64;
                if q.channels[channel.index()].is_none() && waiting + ringing > 0.0 {
                    q.channel(&self.metrics, channel);
                }
                if let Some(ch) = &q.channels[channel.index()] {
                    ch.waiting.set(waiting);
                    ch.ringing.set(ringing);
                }
            }
            let mut counts = [0u64; 6];
            for (tier, _) in load.agents.tiers() {
                q.tier(&self.metrics, tier);
            }
            for (tier, gauges) in &q.tiers {
                for (i, activity) in Activity::ALL.iter().enumerate() {
                    let n = load.agents.count(*tier, *activity);
                    gauges[i].set(f64::from(n));
                    counts[i] += u64::from(n);
                }
            }
            q.waiting = load.waiting as u64;
            q.ringing = load.ringing() as u64;
            q.oldest_entered_at = load.oldest_entered_at;
            updates.push((id, load.oldest_entered_at, counts));
        }
        let centre = state.centre_agents();
        let centre_changed = self.centre != Some(centre);
        if !updates.is_empty() || centre_changed {
            let mut board = self.metrics.board();
            for (id, oldest, counts) in updates {
                board.update(&id, now, oldest, counts);
            }
            if centre_changed {
                board.update_centre(now, centre.map(u64::from));
                self.centre = Some(centre);
            }
        }
        for id in std::mem::take(&mut self.touched) {
            let view = state.agent_presence(&id);
            if let Some(a) = self.agents.get_mut(&id) {
                a.touched = false;
                if let Some(view) = view {
                    a.reconcile(&view);
                }
            }
        }
    }

    /// The service figures of `queue` since start (zero for a queue with no traffic yet, or one
    /// a reload removed).
    pub fn queue_tally(&self, queue: &str) -> QueueTally {
        self.queues
            .get(queue)
            .map(|q| q.since_start)
            .unwrap_or_default()
    }

    /// KPIs of `queue` over the last `window_ms` (whole minutes, 1 m to 24 h) up to `now`.
    /// Whether the stats know queue `id` (any queue the config has, or had while running).
    pub fn has_queue(&self, id: &str) -> bool {
        self.queues.contains_key(id)
    }

    /// Whether the stats know agent `id` (in the roster, or seen in an event).
    pub fn has_agent(&self, id: &str) -> bool {
        self.agents.contains_key(id) || self.roster.contains_key(id)
    }

    pub fn queue_stats(
        &self,
        queue: &str,
        window_ms: Millis,
        now: Millis,
    ) -> Result<QueueStats, StatsError> {
        let q = self
            .queues
            .get(queue)
            .ok_or_else(|| StatsError::UnknownQueue {
                queue: queue.to_string(),
            })?;
        let current = QueueNow {
            id: &q.id,
            sla_ms: q.sla_ms,
            waiting: q.waiting,
            ringing: q.ringing,
            oldest_entered_at: q.oldest_entered_at,
        };
        q.window.report(current, window_ms, now)
    }

    /// Attendance and KPIs of `agent` from `since` to `now` (at most the last 24 hours).
    pub fn agent_stats(
        &self,
        agent: &str,
        since: Millis,
        now: Millis,
    ) -> Result<AgentStats, StatsError> {
        match self.agents.get(agent) {
            Some(a) => a.ledger.report(agent, since, now),
            None => match self.roster.get(agent) {
                Some(&joined) => AgentLedger::new(joined).report(agent, since, now),
                None => Err(StatsError::UnknownAgent {
                    agent: agent.to_string(),
                }),
            },
        }
    }
}

impl AgentTrack {
    /// The state the agent is in according to the facts seen so far.
    fn activity(&self) -> Activity {
        // The engine's precedence (`AgentView::activity`): busy, offered, wrap-up, then the
        // status (an agent signed off during a call it kept is busy until it ends).
        match self.status {
            _ if self.connected > 0 => Activity::Busy,
            _ if self.offered > 0 => Activity::Offered,
            _ if self.wrap_up > 0 => Activity::WrapUp,
            AgentStatus::Offline => Activity::Offline,
            AgentStatus::NotReady => Activity::NotReady,
            AgentStatus::Available => Activity::Available,
        }
    }

    /// Record the (possibly new) state from `at` on.
    fn settle(&mut self, at: Millis) {
        let activity = self.activity();
        self.enter(at, activity);
    }

    fn enter(&mut self, at: Millis, activity: Activity) {
        self.ledger.enter(Span {
            start: at,
            activity,
            status: self.status,
            reason: self.reason.clone(),
        });
        if let (Some(s), Some(now)) = (&mut self.series, self.ledger.current().map(|s| s.activity))
        {
            s.show(now);
        }
    }

    /// Align with the engine's view after a batch: the engine is the authority on slots and
    /// state; facts only give the exact moments. A difference is applied from the agent's last
    /// fact of the batch.
    fn reconcile(&mut self, view: &AgentPresence) {
        self.status = view.status;
        self.reason = view.reason.clone();
        self.offered = view.offered;
        self.connected = view.connected;
        self.wrap_up = view.wrap_up;
        let at = self.last_fact_at;
        self.enter(at, view.activity);
    }
}
