//! Series whose value moves with the clock between engine batches: the oldest wait per queue and
//! the agent-seconds per state.
//!
//! The engine task publishes what it knows after each batch (who is waiting since when, how many
//! agents are in each state since when); a scrape completes the values up to its own clock. So
//! the wallboard's longest wait keeps growing while the engine sleeps, and rates of
//! `tierline_agent_state_seconds_total` are smooth, without any timer or polling. Never touches
//! the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use metrics::{Counter, Gauge};

use crate::config::Millis;
use crate::engine::Activity;

/// Everything clock-dependent, per queue. Lives behind the one mutex in `Metrics`.
#[derive(Default)]
pub struct Board {
    queues: BTreeMap<Arc<str>, LiveQueue>,
}

/// The series handles one queue's clock-dependent values are written to.
pub(crate) struct LiveSeries {
    pub oldest_wait: Gauge,
    /// `tierline_agent_state_seconds_total{queue,state}`, indexed like `Activity::ALL`.
    pub state_seconds: [Counter; 6],
}

struct LiveQueue {
    series: LiveSeries,
    oldest_entered_at: Option<Millis>,
    /// Agents of the queue per state, constant since `since`.
    counts: [u64; 6],
    /// Agent-milliseconds per state accumulated up to `since`.
    accumulated_ms: [u64; 6],
    since: Millis,
    /// Whole seconds last written to each counter (counters never go down).
    published_s: [u64; 6],
}

impl Board {
    pub(crate) fn contains(&self, queue: &str) -> bool {
        self.queues.contains_key(queue)
    }

    /// Start tracking `queue` from `now` (no-op if tracked).
    pub(crate) fn track(&mut self, queue: Arc<str>, series: LiveSeries, now: Millis) {
        self.queues.entry(queue).or_insert(LiveQueue {
            series,
            oldest_entered_at: None,
            counts: [0; 6],
            accumulated_ms: [0; 6],
            since: now,
            published_s: [0; 6],
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
            q.integrate(now);
            q.counts = counts;
            q.oldest_entered_at = oldest_entered_at;
            q.publish(now);
        }
    }

    /// Bring every queue's clock-dependent series to time `now` (a scrape).
    pub fn publish(&mut self, now: Millis) {
        for q in self.queues.values_mut() {
            q.publish(now);
        }
    }

    /// Agent-seconds per state for `queue` up to `now`, unrounded (for stats and tests).
    pub fn state_seconds(&self, queue: &str, now: Millis) -> Option<[f64; 6]> {
        let q = self.queues.get(queue)?;
        let mut out = [0.0; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = q.total_ms(i, now) as f64 / 1000.0;
        }
        Some(out)
    }
}

impl LiveQueue {
    fn integrate(&mut self, now: Millis) {
        if now > self.since {
            let dt = now - self.since;
            for (acc, count) in self.accumulated_ms.iter_mut().zip(self.counts) {
                *acc = acc.saturating_add(count.saturating_mul(dt));
            }
            self.since = now;
        }
    }

    fn total_ms(&self, state: usize, now: Millis) -> u64 {
        let dt = now.saturating_sub(self.since);
        self.accumulated_ms[state].saturating_add(self.counts[state].saturating_mul(dt))
    }

    fn publish(&mut self, now: Millis) {
        let oldest = match self.oldest_entered_at {
            Some(at) => now.saturating_sub(at) as f64 / 1000.0,
            None => 0.0,
        };
        self.series.oldest_wait.set(oldest);
        for state in 0..Activity::ALL.len() {
            let whole_s = self.total_ms(state, now) / 1000;
            if whole_s > self.published_s[state] {
                self.published_s[state] = whole_s;
                self.series.state_seconds[state].absolute(whole_s);
            }
        }
    }
}
