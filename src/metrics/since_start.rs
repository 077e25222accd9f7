//! Per-queue service figures since the daemon started ("SLA so far" on `GET /v1/queues`).
//!
//! Kept by [`Telemetry`](super::Telemetry) beside each queue's series and counted from the same
//! facts, in the same place, as the `tierline_*_total` counters (one tally, not two). Bounded by
//! the number of configured queues: the figures of a queue removed by a reload start again from
//! zero. The windowed KPIs (last hour, per agent) are `QueueWindow` and `AgentLedger`.

use serde::Serialize;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Channel, Millis, QueueConfig, RoutingConfig};
    use crate::engine::Fact;
    use crate::metrics::{Metrics, Telemetry};

    fn config() -> RoutingConfig {
        let mut c = RoutingConfig::empty();
        let mut q = QueueConfig::with_defaults("support");
        q.sla_ms = 20_000;
        c.queues.push(q);
        c
    }

    fn telemetry(config: &RoutingConfig) -> Telemetry {
        let metrics = Metrics::unserved(&Default::default(), config).expect("metrics");
        Telemetry::new(metrics, config, 0)
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
        let mut t = telemetry(&config());
        t.on_facts(&[
            Fact::Arrived {
                interaction: "c1".into(),
                queue: Some("support".into()),
                channel: Channel::Voice,
                category: None,
                at: 0,
            },
            answered(20_000),
            answered(20_001),
            abandoned(false),
            abandoned(true),
            Fact::Overflowed {
                interaction: "c3".into(),
                queue: "support".into(),
                channel: Channel::Voice,
                wait_ms: 5,
                to_queue: None,
                at: 0,
            },
            Fact::Rejected {
                interaction: "c4".into(),
                queue: Some("support".into()),
                channel: Channel::Voice,
                reason: crate::engine::RejectReason::QueueFull,
                at: 0,
            },
        ]);
        let q = t.queue_tally("support");
        assert_eq!(
            q,
            QueueTally {
                arrived: 1,
                answered: 2,
                answered_within_sla: 1,
                abandoned: 1,
                short_abandoned: 1,
                overflowed: 1,
                rejected: 1,
            },
            "exactly at the threshold is within"
        );
        assert_eq!(q.service_level(), Some(1.0 / 3.0));
        assert_eq!(q.abandon_rate(), Some(1.0 / 3.0));
    }

    #[test]
    fn a_removed_queue_loses_its_figures() {
        let mut t = telemetry(&config());
        t.on_facts(&[answered(1)]);
        assert_eq!(t.queue_tally("support").answered, 1);
        t.on_config(&RoutingConfig::empty());
        assert_eq!(t.queue_tally("support"), QueueTally::default());
        t.on_config(&config());
        assert_eq!(t.queue_tally("support"), QueueTally::default());
        assert_eq!(QueueTally::default().service_level(), None);
    }
}
