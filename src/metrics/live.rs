//! Series whose value moves with the clock between engine batches: the oldest wait per queue,
//! the agent-seconds per state, and whether a queue's schedule has it open.
//!
//! The engine task publishes what it knows after each batch (who is waiting since when, how many
//! agents are in each state since when); a scrape completes the values up to its own clock. So
//! the wallboard's longest wait keeps growing while the engine sleeps, and rates of
//! `tierline_agent_state_seconds_total` are smooth, without any timer or polling. Never touches
//! the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use metrics::{Counter, Gauge};

use crate::config::{Millis, Schedule};
use crate::engine::Activity;

/// Everything clock-dependent, per queue and for the whole centre. Lives behind the one mutex in
/// `Metrics`.
#[derive(Default)]
pub struct Board {
    queues: BTreeMap<Arc<str>, LiveQueue>,
    /// Agents of the whole centre, each counted once (`tierline_centre_agents`).
    centre: Option<LiveCentre>,
}

/// The series handles one queue's clock-dependent values are written to.
pub(crate) struct LiveSeries {
    pub oldest_wait: Gauge,
    /// `tierline_queue_open{queue}`.
    pub open: Gauge,
    /// `tierline_agent_state_seconds_total{queue,state}`, indexed like `Activity::ALL`.
    pub state_seconds: [Counter; 6],
}

/// The series handles of the whole centre's agents.
pub(crate) struct CentreSeries {
    /// `tierline_centre_agents{state}`, indexed like `Activity::ALL`.
    pub agents: [Gauge; 6],
    /// `tierline_centre_agent_state_seconds_total{state}`.
    pub state_seconds: [Counter; 6],
}

/// Agents per state, constant since `since`, integrated into agent-seconds counters.
struct StateClock {
    counters: [Counter; 6],
    counts: [u64; 6],
    /// Agent-milliseconds per state accumulated up to `since`.
    accumulated_ms: [u64; 6],
    since: Millis,
    /// Whole seconds last written to each counter (counters never go down).
    published_s: [u64; 6],
}

struct LiveQueue {
    oldest_wait: Gauge,
    oldest_entered_at: Option<Millis>,
    agents: StateClock,
    open: Gauge,
    /// When it is open: `None` removed by a reload (0), `Some(None)` always (no schedule).
    hours: Option<Option<Schedule>>,
}

struct LiveCentre {
    gauges: [Gauge; 6],
    agents: StateClock,
}

impl Board {
    pub(crate) fn contains(&self, queue: &str) -> bool {
        self.queues.contains_key(queue)
    }

    /// Start tracking `queue` from `now` (no-op if tracked).
    pub(crate) fn track(&mut self, queue: Arc<str>, series: LiveSeries, now: Millis) {
        self.queues.entry(queue).or_insert(LiveQueue {
            oldest_wait: series.oldest_wait,
            oldest_entered_at: None,
            agents: StateClock::new(series.state_seconds, now),
            open: series.open,
            hours: Some(None),
        });
    }

    /// The queue's opening hours in force (`None`: removed, never open), published at `now`.
    pub(crate) fn set_hours(&mut self, queue: &str, hours: Option<Option<Schedule>>, now: Millis) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.hours = hours;
            q.publish(now);
        }
    }

    pub(crate) fn tracks_centre(&self) -> bool {
        self.centre.is_some()
    }

    /// Start tracking the whole centre from `now` (no-op if tracked).
    pub(crate) fn track_centre(&mut self, series: CentreSeries, now: Millis) {
        self.centre.get_or_insert(LiveCentre {
            gauges: series.agents,
            agents: StateClock::new(series.state_seconds, now),
        });
    }

    /// Record the queue's state as of engine time `now` (after a batch) and publish it.
    pub(crate) fn update(
        &mut self,
        queue: &str,
        now: Millis,
        oldest_entered_at: Option<Millis>,
        counts: [u64; 6],
    ) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.agents.set(counts, now);
            q.oldest_entered_at = oldest_entered_at;
            q.publish(now);
        }
    }

    /// Record the whole centre's agents per state as of engine time `now` and publish them
    /// (`Telemetry` calls this when they changed).
    pub(crate) fn update_centre(&mut self, now: Millis, counts: [u64; 6]) {
        if let Some(c) = &mut self.centre {
            for (gauge, n) in c.gauges.iter().zip(counts) {
                gauge.set(n as f64);
            }
            c.agents.set(counts, now);
            c.agents.publish(now);
        }
    }

    /// Bring every clock-dependent series to time `now` (a scrape).
    pub fn publish(&mut self, now: Millis) {
        for q in self.queues.values_mut() {
            q.publish(now);
        }
        if let Some(c) = &mut self.centre {
            c.agents.publish(now);
        }
    }

    /// Agent-seconds per state for `queue` up to `now`, unrounded (for stats and tests).
    pub fn state_seconds(&self, queue: &str, now: Millis) -> Option<[f64; 6]> {
        Some(self.queues.get(queue)?.agents.seconds(now))
    }

    /// Agent-seconds per state of the whole centre up to `now`, each agent counted once.
    pub fn centre_state_seconds(&self, now: Millis) -> Option<[f64; 6]> {
        Some(self.centre.as_ref()?.agents.seconds(now))
    }
}

impl StateClock {
    fn new(counters: [Counter; 6], now: Millis) -> StateClock {
        StateClock {
            counters,
            counts: [0; 6],
            accumulated_ms: [0; 6],
            since: now,
            published_s: [0; 6],
        }
    }

    /// The counts from `now` on (what was counted before is integrated up to `now` first).
    fn set(&mut self, counts: [u64; 6], now: Millis) {
        if now > self.since {
            let dt = now - self.since;
            for (acc, count) in self.accumulated_ms.iter_mut().zip(self.counts) {
                *acc = acc.saturating_add(count.saturating_mul(dt));
            }
            self.since = now;
        }
        self.counts = counts;
    }

    fn total_ms(&self, state: usize, now: Millis) -> u64 {
        let dt = now.saturating_sub(self.since);
        self.accumulated_ms[state].saturating_add(self.counts[state].saturating_mul(dt))
    }

    fn seconds(&self, now: Millis) -> [f64; 6] {
        std::array::from_fn(|state| self.total_ms(state, now) as f64 / 1000.0)
    }

    fn publish(&mut self, now: Millis) {
        for state in 0..Activity::ALL.len() {
            let whole_s = self.total_ms(state, now) / 1000;
            if whole_s > self.published_s[state] {
                self.published_s[state] = whole_s;
                self.counters[state].absolute(whole_s);
            }
        }
    }
}

impl LiveQueue {
    fn publish(&mut self, now: Millis) {
        let open = match &self.hours {
            None => false,
            Some(None) => true,
            Some(Some(schedule)) => schedule.is_open(now),
        };
        self.open.set(if open { 1.0 } else { 0.0 });
        let oldest = match self.oldest_entered_at {
            Some(at) => now.saturating_sub(at) as f64 / 1000.0,
            None => 0.0,
        };
        self.oldest_wait.set(oldest);
        self.agents.publish(now);
    }
}
