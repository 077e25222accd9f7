//! Per-queue service figures since the daemon started ("SLA so far" on `GET /v1/queues`).
//!
//! Fed by the engine's facts in the engine task; bounded by the number of configured queues
//! (figures of a queue removed by a reload are dropped). The windowed KPIs (last hour, per agent)
//! belong to the metrics module, not here.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Millis, RoutingConfig};
use crate::engine::Fact;

/// Counts for one queue since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueTally {
    /// Interactions routed into the queue (arrivals, overflows and transfers in are not counted
    /// twice: only `Arrived` facts).
    pub arrived: u64,
    pub answered: u64,
    /// Answered with a wait ≤ the queue's `sla_s`.
    pub answered_within_sla: u64,
    /// Abandoned after the short-abandon threshold.
    pub abandoned: u64,
    /// Abandoned within the short-abandon threshold (excluded from SL and abandon rate).
    pub short_abandoned: u64,
    pub overflowed: u64,
    pub rejected: u64,
}

impl QueueTally {
    /// answered within SLA / (answered + abandoned), short abandons excluded; `None` before any.
    pub fn service_level(&self) -> Option<f64> {
        let base = self.answered + self.abandoned;
        (base > 0).then(|| self.answered_within_sla as f64 / base as f64)
    }

    /// abandoned / (answered + abandoned), short abandons excluded; `None` before any.
    pub fn abandon_rate(&self) -> Option<f64> {
        let base = self.answered + self.abandoned;
        (base > 0).then(|| self.abandoned as f64 / base as f64)
    }
}

/// Tallies for every configured queue.
#[derive(Debug, Default)]
pub struct SlaTally {
    sla_ms: HashMap<Arc<str>, Millis>,
    queues: HashMap<Arc<str>, QueueTally>,
}

impl SlaTally {
    pub fn new(config: &RoutingConfig) -> SlaTally {
        let mut tally = SlaTally::default();
        tally.on_config(config);
        tally
    }

    /// A new config: learn the SLA thresholds, drop the figures of removed queues.
    pub fn on_config(&mut self, config: &RoutingConfig) {
        self.sla_ms = config
            .queues
            .iter()
            .map(|q| (Arc::from(q.id.as_str()), q.sla_ms))
            .collect();
        let sla = &self.sla_ms;
        self.queues.retain(|id, _| sla.contains_key(id));
    }

    pub fn on_facts(&mut self, facts: &[Fact]) {
        for fact in facts {
            match fact {
                Fact::Arrived {
                    queue: Some(queue), ..
                } => self.entry(queue).arrived += 1,
                Fact::Answered { queue, wait_ms, .. } => {
                    let within = self.sla_ms.get(queue).is_some_and(|sla| wait_ms <= sla);
                    let t = self.entry(queue);
                    t.answered += 1;
                    if within {
                        t.answered_within_sla += 1;
                    }
                }
                Fact::Abandoned { queue, short, .. } => {
                    let t = self.entry(queue);
                    if *short {
                        t.short_abandoned += 1;
                    } else {
                        t.abandoned += 1;
                    }
                }
                Fact::Overflowed { queue, .. } => self.entry(queue).overflowed += 1,
                Fact::Rejected {
                    queue: Some(queue), ..
                } => self.entry(queue).rejected += 1,
                _ => {}
            }
        }
    }

    fn entry(&mut self, queue: &Arc<str>) -> &mut QueueTally {
        self.queues.entry(queue.clone()).or_default()
    }

    /// The figures of `queue` (zero for a configured queue with no traffic yet).
    pub fn queue(&self, queue: &str) -> QueueTally {
        self.queues.get(queue).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Channel, QueueConfig};

    fn config() -> RoutingConfig {
        let mut c = RoutingConfig::empty();
        let mut q = QueueConfig::with_defaults("support");
        q.sla_ms = 20_000;
        c.queues.push(q);
        c
    }

    fn answered(wait_ms: Millis) -> Fact {
        Fact::Answered {
            interaction: "c1".into(),
            queue: "support".into(),
            channel: Channel::Voice,
            agent: "a1".into(),
            tier: Some(1),
            wait_ms,
            at: 0,
        }
    }

    fn abandoned(short: bool) -> Fact {
        Fact::Abandoned {
            interaction: "c2".into(),
            queue: "support".into(),
            channel: Channel::Voice,
            wait_ms: 1,
            short,
            at: 0,
        }
    }

    #[test]
    fn service_level_counts_answers_within_the_threshold_over_answered_plus_abandoned() {
        let mut t = SlaTally::new(&config());
        t.on_facts(&[
            answered(20_000),
            answered(20_001),
            abandoned(false),
            abandoned(true),
        ]);
        let q = t.queue("support");
        assert_eq!(q.answered, 2);
        assert_eq!(
            q.answered_within_sla, 1,
            "exactly at the threshold is within"
        );
        assert_eq!(q.abandoned, 1);
        assert_eq!(q.short_abandoned, 1);
        assert_eq!(q.service_level(), Some(1.0 / 3.0));
        assert_eq!(q.abandon_rate(), Some(1.0 / 3.0));
    }

    #[test]
    fn a_removed_queue_loses_its_figures() {
        let mut t = SlaTally::new(&config());
        t.on_facts(&[answered(1)]);
        t.on_config(&RoutingConfig::empty());
        assert_eq!(t.queue("support"), QueueTally::default());
        assert_eq!(QueueTally::default().service_level(), None);
    }
}
