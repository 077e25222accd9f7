//! Counting during a run: per-queue interaction outcomes and per-agent time, inside the measured
//! window only.
//!
//! It is told what happened (by the runner, from the engine's facts) and never looks at the engine
//! itself. KPI meanings follow the domain reference §3: an interaction counts when it *arrived*
//! inside `[warm_up, duration)`, whenever its outcome comes; agent time counts only inside the
//! window.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hdrhistogram::Histogram;

use crate::config::{Millis, RoutingConfig, Tier};
use crate::engine::{AgentStatus, Fact};

/// Outcome counts and waits of one queue.
#[derive(Debug, Clone)]
pub struct QueueTally {
    pub id: Arc<str>,
    pub sla_ms: Millis,
    /// Arrivals routed here (rejected ones included) + overflows into it; offered is this
    /// minus `rejected`.
    pub entered: u64,
    /// Of those, how many entered by overflow from another queue.
    pub overflowed_in: u64,
    /// Entered and had to wait (`queued` decision): the empirical P(wait).
    pub queued: u64,
    pub answered: u64,
    pub answered_in_sla: u64,
    pub answered_by_tier: BTreeMap<Tier, u64>,
    /// Abandons after the short-abandon threshold.
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub overflowed: u64,
    pub rejected: u64,
    /// Waits of answered interactions (ms): ASA, mean, percentiles.
    pub wait: Histogram<u64>,
    pub wait_sum_ms: u128,
    /// Ladder steps reached inside the window, by step.
    pub steps: BTreeMap<usize, u64>,
}

impl QueueTally {
    pub fn new(id: Arc<str>, sla_ms: Millis) -> Self {
        QueueTally {
            id,
            sla_ms,
            entered: 0,
            overflowed_in: 0,
            queued: 0,
            answered: 0,
            answered_in_sla: 0,
            answered_by_tier: BTreeMap::new(),
            abandoned: 0,
            short_abandoned: 0,
            overflowed: 0,
            rejected: 0,
            wait: new_histogram(),
            wait_sum_ms: 0,
            steps: BTreeMap::new(),
        }
    }

    /// Add another queue's counts (for the overall figures).
    pub fn absorb(&mut self, other: &QueueTally) {
        self.entered += other.entered;
        self.overflowed_in += other.overflowed_in;
        self.queued += other.queued;
        self.answered += other.answered;
        self.answered_in_sla += other.answered_in_sla;
        for (t, n) in &other.answered_by_tier {
            *self.answered_by_tier.entry(*t).or_default() += n;
        }
        self.abandoned += other.abandoned;
        self.short_abandoned += other.short_abandoned;
        self.overflowed += other.overflowed;
        self.rejected += other.rejected;
        // Both histograms auto-resize, so adding never fails.
        let _ = self.wait.add(&other.wait);
        self.wait_sum_ms += other.wait_sum_ms;
        for (s, n) in &other.steps {
            *self.steps.entry(*s).or_default() += n;
        }
    }
}

/// One answer after `wait_ms`, within the target when at most `sla_ms`.
fn record_answer(q: &mut QueueTally, wait_ms: Millis, sla_ms: Millis) {
    q.answered += 1;
    if wait_ms <= sla_ms {
        q.answered_in_sla += 1;
    }
    // Auto-resizing: only a value beyond u64 range could fail, and then it saturates.
    if q.wait.record(wait_ms).is_err() {
        q.wait.saturating_record(wait_ms);
    }
    q.wait_sum_ms += u128::from(wait_ms);
}

/// Waits from 1 ms, 3 significant digits, auto-resizing as longer waits come.
fn new_histogram() -> Histogram<u64> {
    // Only sigfig > 5 is refused; 3 is a constant, not an input.
    Histogram::new(3).expect("3 significant figures is a valid histogram precision")
}

/// Time accounting of one agent (domain §3 occupancy: handling / (handling + available idle)).
#[derive(Debug, Clone)]
pub struct AgentTally {
    pub id: Arc<str>,
    pub tiers: BTreeMap<String, Tier>,
    status: AgentStatus,
    /// Slots connected or in wrap-up.
    load: u32,
    since: Millis,
    /// Time with at least one slot connected or in wrap-up.
    pub handling_ms: Millis,
    /// Handling time plus time available with nothing to handle.
    pub staffed_ms: Millis,
    pub answered: u64,
}

/// Everything counted in a run.
#[derive(Debug)]
pub struct Tally {
    /// Absolute engine times of the measured window `[from, to)`.
    pub window: (Millis, Millis),
    pub queues: Vec<QueueTally>,
    queue_index: HashMap<Arc<str>, usize>,
    /// Counted arrivals (the overall "offered").
    pub arrivals: u64,
    /// Rejected before reaching any queue (`no_route`).
    pub unrouted_rejected: u64,
    /// Counted interactions that waited at least once (the overall "queued": an interaction
    /// that waits in two queues, after an overflow, is queued in each but waited once).
    pub queued_once: u64,
    /// The overall answers, timed from the arrival (the wait in every queue an overflow moved the
    /// interaction through) and judged against the `sla_s` of the queue it arrived in: the
    /// customer's wait. `waits` holds the counted interactions not yet answered.
    pub overall: QueueTally,
    waits: HashMap<Arc<str>, (Millis, Millis)>,
    pub agents: Vec<AgentTally>,
    agent_index: HashMap<Arc<str>, usize>,
}

impl Tally {
    pub fn new(config: &RoutingConfig, window: (Millis, Millis)) -> Self {
        let queues: Vec<QueueTally> = config
            .queues
            .iter()
            .map(|q| QueueTally::new(Arc::from(q.id.as_str()), q.sla_ms))
            .collect();
        let queue_index = queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.id.clone(), i))
            .collect();
        Tally {
            window,
            queues,
            queue_index,
            arrivals: 0,
            unrouted_rejected: 0,
            queued_once: 0,
            overall: QueueTally::new("overall".into(), 0),
            waits: HashMap::new(),
            agents: Vec::new(),
            agent_index: HashMap::new(),
        }
    }

    /// Register an agent before it logs in (so it is reported even if it never works).
    pub fn add_agent(&mut self, id: Arc<str>, tiers: BTreeMap<String, Tier>, now: Millis) {
        if self.agent_index.contains_key(&id) {
            return;
        }
        self.agent_index.insert(id.clone(), self.agents.len());
        self.agents.push(AgentTally {
            id,
            tiers,
            status: AgentStatus::Offline,
            load: 0,
            since: now,
            handling_ms: 0,
            staffed_ms: 0,
            answered: 0,
        });
    }

    /// Count a queue that appears after the start (a live reload added it while replaying a
    /// journal); a queue already counted keeps its figures.
    pub fn ensure_queue(&mut self, id: &str, sla_ms: Millis) {
        if !self.queue_index.contains_key(id) {
            let id: Arc<str> = Arc::from(id);
            self.queue_index.insert(id.clone(), self.queues.len());
            self.queues.push(QueueTally::new(id, sla_ms));
        }
    }

    /// Whether the agent is registered.
    pub fn has_agent(&self, id: &str) -> bool {
        self.agent_index.contains_key(id)
    }

    /// Count one engine fact. `counted` says whether an interaction arrived inside the window.
    /// Returns the interaction the fact finished for good (it will never be routed again), so
    /// the caller can forget it.
    pub fn count_fact(&mut self, fact: Fact, counted: impl Fn(&str) -> bool) -> Option<Arc<str>> {
        let finished = self.count_one(fact, counted);
        if let Some(interaction) = &finished {
            self.waits.remove(interaction);
        }
        finished
    }

    fn count_one(&mut self, fact: Fact, counted: impl Fn(&str) -> bool) -> Option<Arc<str>> {
        match fact {
            Fact::Arrived {
                interaction,
                queue,
                at,
                ..
            } => {
                if counted(&interaction) {
                    self.arrived(queue.as_deref());
                    if let Some(sla_ms) = queue
                        .as_deref()
                        .and_then(|q| self.queue(q))
                        .map(|q| q.sla_ms)
                    {
                        self.waits.insert(interaction, (at, sla_ms));
                    }
                }
                None
            }
            Fact::Answered {
                interaction,
                queue,
                agent,
                tier,
                wait_ms,
                at,
                ..
            } => {
                let counted = counted(&interaction);
                if counted {
                    self.answered(&queue, tier, wait_ms);
                    // From the arrival, against the first queue's target (an interaction that
                    // arrived before the recording's start has only this queue's wait).
                    let (wait, sla_ms) = match self.waits.remove(&interaction) {
                        Some((arrived, sla_ms)) => (at.saturating_sub(arrived), sla_ms),
                        None => (wait_ms, self.queue(&queue).map_or(0, |q| q.sla_ms)),
                    };
                    record_answer(&mut self.overall, wait, sla_ms);
                }
                self.agent_took(&agent, at, counted);
                None
            }
            Fact::Abandoned {
                interaction,
                queue,
                short,
                ..
            } => {
                if counted(&interaction) {
                    self.abandoned(&queue, short);
                }
                Some(interaction)
            }
            Fact::Overflowed {
                interaction,
                queue,
                to_queue,
                ..
            } => {
                if counted(&interaction) {
                    self.overflowed(&queue, to_queue.as_deref());
                }
                to_queue.is_none().then_some(interaction)
            }
            Fact::Rejected {
                interaction, queue, ..
            } => {
                if counted(&interaction) {
                    self.rejected(queue.as_deref());
                }
                Some(interaction)
            }
            Fact::StepReached { queue, step, at } => {
                self.step_reached(&queue, step, at);
                None
            }
            Fact::WrapUpEnded { agent, at, .. } => {
                self.agent_freed(&agent, at);
                None
            }
            Fact::AgentStatusChanged { agent, to, at, .. } => {
                self.agent_status(&agent, to, at);
                None
            }
            Fact::Offered { .. }
            | Fact::OfferEnded { .. }
            | Fact::EscalatedByAgent { .. }
            | Fact::Transferred { .. }
            | Fact::Drained { .. }
            | Fact::Ended { .. }
            | Fact::Rated { .. } => None,
        }
    }

    fn queue(&mut self, id: &str) -> Option<&mut QueueTally> {
        let i = *self.queue_index.get(id)?;
        self.queues.get_mut(i)
    }

    pub fn arrived(&mut self, queue: Option<&str>) {
        self.arrivals += 1;
        if let Some(q) = queue.and_then(|q| self.queue(q)) {
            q.entered += 1;
        }
    }

    /// A counted interaction was queued in `queue`; `first`: the first time it waited anywhere.
    pub fn queued(&mut self, queue: &str, first: bool) {
        if let Some(q) = self.queue(queue) {
            q.queued += 1;
        }
        self.queued_once += u64::from(first);
    }

    pub fn answered(&mut self, queue: &str, tier: Option<Tier>, wait_ms: Millis) {
        if let Some(q) = self.queue(queue) {
            let sla_ms = q.sla_ms;
            record_answer(q, wait_ms, sla_ms);
            if let Some(t) = tier {
                *q.answered_by_tier.entry(t).or_default() += 1;
            }
        }
    }

    pub fn abandoned(&mut self, queue: &str, short: bool) {
        if let Some(q) = self.queue(queue) {
            if short {
                q.short_abandoned += 1;
            } else {
                q.abandoned += 1;
            }
        }
    }

    pub fn overflowed(&mut self, queue: &str, to_queue: Option<&str>) {
        if let Some(q) = self.queue(queue) {
            q.overflowed += 1;
        }
        if let Some(q) = to_queue.and_then(|q| self.queue(q)) {
            q.entered += 1;
            q.overflowed_in += 1;
        }
    }

    pub fn rejected(&mut self, queue: Option<&str>) {
        match queue.and_then(|q| self.queue(q)) {
            Some(q) => q.rejected += 1,
            None => self.unrouted_rejected += 1,
        }
    }

    /// A ladder step was reached at `at` (counted only inside the window).
    pub fn step_reached(&mut self, queue: &str, step: usize, at: Millis) {
        let (from, to) = self.window;
        if (from..to).contains(&at) {
            if let Some(q) = self.queue(queue) {
                *q.steps.entry(step).or_default() += 1;
            }
        }
    }

    fn agent(&mut self, id: &str, at: Millis) -> Option<&mut AgentTally> {
        let i = *self.agent_index.get(id)?;
        let window = self.window;
        let a = self.agents.get_mut(i)?;
        a.accrue(at, window);
        Some(a)
    }

    pub fn agent_status(&mut self, id: &str, to: AgentStatus, at: Millis) {
        if let Some(a) = self.agent(id, at) {
            a.status = to;
        }
    }

    pub fn agent_took(&mut self, id: &str, at: Millis, counted: bool) {
        if let Some(a) = self.agent(id, at) {
            a.load += 1;
            if counted {
                a.answered += 1;
            }
        }
    }

    pub fn agent_freed(&mut self, id: &str, at: Millis) {
        if let Some(a) = self.agent(id, at) {
            a.load = a.load.saturating_sub(1);
        }
    }

    /// Close every agent's books at the end of the window.
    pub fn finish(&mut self) {
        let window = self.window;
        for a in &mut self.agents {
            a.accrue(window.1, window);
        }
    }
}

impl AgentTally {
    /// Add the time since the last change (clipped to the window) to the right bucket.
    fn accrue(&mut self, now: Millis, (from, to): (Millis, Millis)) {
        let start = self.since.max(from);
        let end = now.min(to);
        if end > start {
            let d = end - start;
            if self.load > 0 {
                self.handling_ms += d;
                self.staffed_ms += d;
            } else if self.status == AgentStatus::Available {
                self.staffed_ms += d;
            }
        }
        self.since = self.since.max(now);
    }

    /// handling / staffed, `None` when the agent was never staffed in the window.
    pub fn utilisation(&self) -> Option<f64> {
        (self.staffed_ms > 0).then(|| self.handling_ms as f64 / self.staffed_ms as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_counts_handling_and_idle_but_not_breaks_or_outside_the_window() {
        let mut t = Tally::new(&RoutingConfig::empty(), (1_000, 11_000));
        let id: Arc<str> = Arc::from("a");
        t.add_agent(id.clone(), BTreeMap::new(), 0);
        t.agent_status("a", AgentStatus::Available, 0); // idle 1 000..3 000 counts (2 s)
        t.agent_took("a", 3_000, true); // handling 3 000..5 000 (2 s)
        t.agent_freed("a", 5_000); // idle 5 000..6 000 (1 s)
        t.agent_status("a", AgentStatus::NotReady, 6_000); // break 6 000..8 000: not counted
        t.agent_status("a", AgentStatus::Available, 8_000); // idle 8 000..11 000 (3 s)
        t.finish();
        let a = &t.agents[0];
        assert_eq!(a.handling_ms, 2_000);
        assert_eq!(a.staffed_ms, 8_000);
        assert_eq!(a.answered, 1);
        assert_eq!(a.utilisation(), Some(0.25));
    }

    #[test]
    fn service_level_counts_answers_within_the_queue_threshold() {
        let mut config = RoutingConfig::empty();
        config
            .queues
            .push(crate::config::QueueConfig::with_defaults("support"));
        let mut t = Tally::new(&config, (0, 1));
        t.answered("support", Some(1), 30_000);
        t.answered("support", Some(2), 30_001);
        t.abandoned("support", false);
        t.abandoned("support", true);
        let q = &t.queues[0];
        assert_eq!(q.answered_in_sla, 1);
        assert_eq!((q.abandoned, q.short_abandoned), (1, 1));
        assert_eq!(q.answered_by_tier.get(&2), Some(&1));
    }

    #[test]
    fn long_waits_keep_their_percentiles() {
        let mut config = RoutingConfig::empty();
        config
            .queues
            .push(crate::config::QueueConfig::with_defaults("support"));
        let mut t = Tally::new(&config, (0, 1));
        for s in 1..=1_000 {
            t.answered("support", Some(1), s * 1_000);
        }
        let w = &t.queues[0].wait;
        let p90 = w.value_at_quantile(0.9) as f64;
        assert!((p90 - 900_000.0).abs() < 1_000.0, "p90 {p90}");
        assert!((w.max() as f64 - 1_000_000.0).abs() < 1_000.0);
    }
}
