//! The series handles of one queue and of one agent, registered once and then updated without
//! any lookup. Only `Telemetry` writes them; they never read engine state.

use std::collections::BTreeMap;
use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram};

use super::catalog as c;
use super::since_start::QueueTally;
use super::stats::QueueWindow;
use super::Metrics;
use crate::config::{Channel, Millis, Tier};
use crate::engine::Activity;

pub(crate) struct ChannelSeries {
    pub(crate) waiting: Gauge,
    pub(crate) ringing: Gauge,
    pub(crate) arrived: Counter,
    pub(crate) answered: Counter,
    pub(crate) answered_within_sla: Counter,
    pub(crate) abandoned: Counter,
    pub(crate) short_abandoned: Counter,
    pub(crate) overflowed: Counter,
    /// By `reason`: `queue_full`, `closed` (a routed arrival is never `no_route`).
    pub(crate) rejected: [Counter; 2],
    pub(crate) complaints: Counter,
    pub(crate) handle: Histogram,
}

/// The `reason` labels of a queue's rejections, in `ChannelSeries::rejected`'s order.
pub(crate) const QUEUE_REJECT_REASONS: [&str; 2] = ["queue_full", "closed"];

pub(crate) struct QueueSeries {
    pub(crate) id: Arc<str>,
    pub(crate) sla_ms: Millis,
    pub(crate) channels: [Option<ChannelSeries>; 4],
    pub(crate) wait_answered: Histogram,
    pub(crate) wait_abandoned: Histogram,
    /// One per `OFFER_RESULTS`, in its order.
    pub(crate) offers: [Counter; OFFER_RESULTS.len()],
    pub(crate) steps: BTreeMap<usize, Counter>,
    pub(crate) escalated_by_agent: Counter,
    pub(crate) ended: Counter,
    pub(crate) resolved: Counter,
    pub(crate) ratings: [Counter; 5],
    pub(crate) tiers: BTreeMap<Tier, [Gauge; 6]>,
    pub(crate) sla: Gauge,
    pub(crate) max_wait: Option<Gauge>,
    pub(crate) window: QueueWindow,
    pub(crate) waiting: u64,
    pub(crate) ringing: u64,
    pub(crate) oldest_entered_at: Option<Millis>,
    /// Service figures since start (`GET /v1/queues`); reset when a reload removes the queue.
    pub(crate) since_start: QueueTally,
}

/// The series of arrivals no rule routed (label `queue=""`) on one channel. They exist at 0 from
/// the start, like a configured queue's, so `increase()` sees the first one.
pub(crate) struct UnroutedSeries {
    pub arrived: Counter,
    pub rejected: Counter,
    pub complaints: Counter,
}

impl UnroutedSeries {
    pub(crate) fn new(m: &Metrics, channel: Channel) -> UnroutedSeries {
        let l = [("queue", ""), ("channel", channel.as_str())];
        let no_route = [
            ("queue", ""),
            ("channel", channel.as_str()),
            ("reason", "no_route"),
        ];
        UnroutedSeries {
            arrived: m.counter(c::ARRIVED, &l),
            rejected: m.counter(c::REJECTED, &no_route),
            complaints: m.counter(c::COMPLAINTS, &l),
        }
    }
}

pub(crate) struct AgentSeries {
    pub(crate) activity: [Gauge; 6],
    /// The activity `activity` shows (1 for it, 0 for the rest).
    shown: Activity,
    pub(crate) handled: [Option<Counter>; 4],
}

/// How offers ended: `declined` is the agent's refusal (`offer.declined` reason `rejected`);
/// `busy` and `no_answer` are the PBX's report (its phone was busy, or rang out before tierline's
/// own timeout, which is `timed_out`).
pub(crate) const OFFER_RESULTS: [&str; 6] = [
    "accepted",
    "declined",
    "busy",
    "no_answer",
    "timed_out",
    "revoked",
];

pub(crate) fn activity_index(a: Activity) -> usize {
    Activity::ALL.iter().position(|x| *x == a).unwrap_or(0)
}

impl QueueSeries {
    /// The series of queue `id`, first seen at engine time `now`.
    pub(crate) fn new(m: &Metrics, id: Arc<str>, now: Millis) -> QueueSeries {
        let q: &str = &id;
        let wait = |outcome| m.histogram(c::WAIT, &[("queue", q), ("outcome", outcome)]);
        QueueSeries {
            sla_ms: 30_000,
            channels: Default::default(),
            wait_answered: wait("answered"),
            wait_abandoned: wait("abandoned"),
            offers: OFFER_RESULTS.map(|r| m.counter(c::OFFERS, &[("queue", q), ("result", r)])),
            steps: BTreeMap::new(),
            escalated_by_agent: m.counter(c::ESCALATIONS, &[("queue", q), ("step", "agent")]),
            ended: m.counter(c::ENDED, &[("queue", q)]),
            resolved: m.counter(c::RESOLVED, &[("queue", q)]),
            ratings: ["1", "2", "3", "4", "5"]
                .map(|s| m.counter(c::RATINGS, &[("queue", q), ("score", s)])),
            tiers: BTreeMap::new(),
            sla: m.gauge(c::QUEUE_SLA, &[("queue", q)]),
            max_wait: None,
            window: QueueWindow::known_from(now),
            waiting: 0,
            ringing: 0,
            oldest_entered_at: None,
            since_start: QueueTally::default(),
            id,
        }
    }

    pub(crate) fn channel(&mut self, m: &Metrics, channel: Channel) -> &mut ChannelSeries {
        let id: &str = &self.id;
        self.channels[channel.index()].get_or_insert_with(|| {
            let l = [("queue", id), ("channel", channel.as_str())];
            ChannelSeries {
                waiting: m.gauge(c::QUEUE_WAITING, &l),
                ringing: m.gauge(c::QUEUE_RINGING, &l),
                arrived: m.counter(c::ARRIVED, &l),
                answered: m.counter(c::ANSWERED, &l),
                answered_within_sla: m.counter(c::ANSWERED_WITHIN_SLA, &l),
                abandoned: m.counter(c::ABANDONED, &l),
                short_abandoned: m.counter(c::SHORT_ABANDONED, &l),
                overflowed: m.counter(c::OVERFLOWED, &l),
                rejected: QUEUE_REJECT_REASONS.map(|reason| {
                    m.counter(
                        c::REJECTED,
                        &[
                            ("queue", id),
                            ("channel", channel.as_str()),
                            ("reason", reason),
                        ],
                    )
                }),
                complaints: m.counter(c::COMPLAINTS, &l),
                handle: m.histogram(c::HANDLE, &l),
            }
        })
    }

    pub(crate) fn step(&mut self, m: &Metrics, step: usize) -> &Counter {
        let id: &str = &self.id;
        self.steps.entry(step).or_insert_with(|| {
            m.counter(
                c::ESCALATIONS,
                &[("queue", id), ("step", &step.to_string())],
            )
        })
    }

    pub(crate) fn tier(&mut self, m: &Metrics, tier: Tier) {
        let id: &str = &self.id;
        self.tiers.entry(tier).or_insert_with(|| {
            let t = tier.to_string();
            Activity::ALL.map(|a| {
                m.gauge(
                    c::AGENTS,
                    &[("queue", id), ("tier", &t), ("state", a.as_str())],
                )
            })
        });
    }
}

impl AgentSeries {
    /// The agent's series, showing `activity` (its ledger's first span) from the start: a series
    /// set that is 0 in every state would say the agent is nowhere.
    pub(crate) fn new(m: &Metrics, agent: &str, activity: Activity) -> AgentSeries {
        let series = AgentSeries {
            activity: Activity::ALL.map(|a| {
                m.gauge(
                    c::AGENT_ACTIVITY,
                    &[("agent", agent), ("state", a.as_str())],
                )
            }),
            shown: activity,
            handled: Default::default(),
        };
        series.publish();
        series
    }

    /// Show `activity`, if it is not what the series already show.
    pub(crate) fn show(&mut self, activity: Activity) {
        if self.shown != activity {
            self.shown = activity;
            self.publish();
        }
    }

    fn publish(&self) {
        let shown = activity_index(self.shown);
        for (i, g) in self.activity.iter().enumerate() {
            g.set(if i == shown { 1.0 } else { 0.0 });
        }
    }
}
