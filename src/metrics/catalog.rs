//! The catalogue of every series tierline exports: names, help texts, label sets and histogram
//! bucket bounds.
//!
//! Names follow Prometheus practice (prefix `tierline_`, base units, `_seconds`, `_total` on
//! counters) and are part of the public contract: the Grafana wallboard, the recording and
//! alerting rules and `scripts/e2e-prometheus.sh` all name them. Renaming one is a breaking
//! change. Nothing here records a value; this module only describes.

use crate::config::{Millis, RoutingConfig};

/// `{queue,channel}` gauge: interactions waiting for an agent.
pub const QUEUE_WAITING: &str = "tierline_queue_waiting";
/// `{queue,channel}` gauge: interactions being offered (ringing an agent), not yet answered.
pub const QUEUE_RINGING: &str = "tierline_queue_ringing";
/// `{queue}` gauge: age of the oldest unanswered interaction, waiting or ringing (0 when none).
pub const QUEUE_OLDEST_WAIT: &str = "tierline_queue_oldest_wait_seconds";
pub const QUEUE_OPEN: &str = "tierline_queue_open";
/// `{queue}` gauge: the queue's service-level threshold `sla_s` (for thresholds and rules).
pub const QUEUE_SLA: &str = "tierline_queue_sla_seconds";
/// `{queue}` gauge: the queue's `max_wait_s`, only for queues that overflow.
pub const QUEUE_MAX_WAIT: &str = "tierline_queue_max_wait_seconds";
/// `{queue,tier,state}` gauge: agents serving the queue, each counted once per queue.
pub const AGENTS: &str = "tierline_agents";
/// `{queue,state}` counter: agent-seconds spent in each state by the queue's agents.
pub const AGENT_STATE_SECONDS: &str = "tierline_agent_state_seconds_total";
/// `{state}` gauge: agents of the whole centre, each counted once (the "all queues" headcount).
pub const CENTRE_AGENTS: &str = "tierline_centre_agents";
/// `{state}` counter: agent-seconds in each state, each agent counted once.
pub const CENTRE_AGENT_STATE_SECONDS: &str = "tierline_centre_agent_state_seconds_total";

pub const ARRIVED: &str = "tierline_interactions_arrived_total";
pub const ANSWERED: &str = "tierline_interactions_answered_total";
pub const ABANDONED: &str = "tierline_interactions_abandoned_total";
pub const SHORT_ABANDONED: &str = "tierline_interactions_short_abandoned_total";
pub const OVERFLOWED: &str = "tierline_interactions_overflowed_total";
pub const REJECTED: &str = "tierline_interactions_rejected_total";
pub const ANSWERED_WITHIN_SLA: &str = "tierline_answered_within_sla_total";
/// `{queue,channel}` counter: arrivals whose `category` attribute is `complaint`.
pub const COMPLAINTS: &str = "tierline_complaints_total";
pub const RESOLVED: &str = "tierline_interactions_resolved_total";
pub const ENDED: &str = "tierline_interactions_ended_total";
pub const RATINGS: &str = "tierline_ratings_total";
pub const ESCALATIONS: &str = "tierline_escalations_total";
pub const OFFERS: &str = "tierline_offers_total";

/// `{queue,outcome}` histogram: queue wait of answered and (non-short) abandoned interactions.
pub const WAIT: &str = "tierline_wait_seconds";
/// `{queue,channel}` histogram: connected + wrap-up time.
pub const HANDLE: &str = "tierline_handle_seconds";

pub const DECISION: &str = "tierline_decision_seconds";
pub const TIMER_LATENESS: &str = "tierline_timer_lateness_seconds";
pub const JOURNAL_SYNC: &str = "tierline_journal_sync_seconds";
pub const JOURNAL_APPEND_FAILURES: &str = "tierline_journal_append_failures_total";
pub const HTTP_REQUESTS: &str = "tierline_http_requests_total";
pub const HTTP_REQUEST_SECONDS: &str = "tierline_http_request_seconds";
pub const EVENT_QUEUE_DEPTH: &str = "tierline_event_queue_depth";
pub const HTTP_CONNECTIONS: &str = "tierline_http_connections";
pub const HTTP_CONNECTIONS_MAX: &str = "tierline_http_connections_max";
pub const FEED_READERS: &str = "tierline_feed_readers";
pub const FEED_READERS_MAX: &str = "tierline_feed_readers_max";
pub const SUBSCRIBER_DELIVERIES: &str = "tierline_subscriber_deliveries_total";
pub const SUBSCRIBER_ACKED_SEQ: &str = "tierline_subscriber_acked_seq";
pub const DECISION_SEQ: &str = "tierline_decision_seq";
pub const CONFIG_RELOADS: &str = "tierline_config_reloads_total";
pub const EVENTS_REFUSED: &str = "tierline_events_refused_total";
pub const BUILD_INFO: &str = "tierline_build_info";
pub const TLS_NOT_AFTER: &str = "tierline_tls_certificate_not_after_seconds";

/// Per-agent series, only with `[metrics] per_agent = true`.
pub const AGENT_ACTIVITY: &str = "tierline_agent_activity";
pub const AGENT_HANDLED: &str = "tierline_agent_handled_total";

/// `(name, help)` for every series, so each one renders a `# HELP` line (`promtool check
/// metrics` flags series without one).
pub const HELP: &[(&str, &str)] = &[
    (
        QUEUE_WAITING,
        "Interactions waiting for an agent, by queue and channel.",
    ),
    (
        QUEUE_RINGING,
        "Interactions being offered to an agent (ringing), not yet answered, by queue and channel.",
    ),
    (
        QUEUE_OLDEST_WAIT,
        "Time since the oldest unanswered interaction of the queue, waiting or ringing, entered it \
         (0 when none); an overflow or transfer into the queue enters it anew, a drain keeps it.",
    ),
    (
        QUEUE_OPEN,
        "1 while the queue's schedule has it open (always, without a schedule), 0 while closed \
         (arrivals rejected `closed`) and once a reload removed it; judged at each scrape.",
    ),
    (QUEUE_SLA, "Service-level threshold of the queue (sla_s)."),
    (
        QUEUE_MAX_WAIT,
        "Longest wait before the queue overflows (max_wait_s).",
    ),
    (
        AGENTS,
        "Agents serving the queue by tier and state; an agent counts once per queue it serves.",
    ),
    (
        AGENT_STATE_SECONDS,
        "Agent-seconds (whole seconds) spent in each state by the agents serving the queue.",
    ),
    (
        CENTRE_AGENTS,
        "Agents of the whole centre by state, each counted once however many queues it serves.",
    ),
    (
        CENTRE_AGENT_STATE_SECONDS,
        "Agent-seconds (whole seconds) spent in each state by the agents of the whole centre, \
         each counted once.",
    ),
    (
        ARRIVED,
        "Interactions that arrived for the queue (including those then rejected).",
    ),
    (
        ANSWERED,
        "Interactions answered: accepted offers, and answers outside an offer (interaction.answered).",
    ),
    (
        ABANDONED,
        "Interactions abandoned short_abandon_s or longer after they arrived.",
    ),
    (
        SHORT_ABANDONED,
        "Interactions abandoned less than short_abandon_s after they arrived.",
    ),
    (
        OVERFLOWED,
        "Interactions that waited max_wait_s and overflowed out of the queue.",
    ),
    (
        REJECTED,
        "Interactions refused, by reason: queue_full, closed, no_route (queue is empty when unrouted).",
    ),
    (
        ANSWERED_WITHIN_SLA,
        "Interactions answered within the queue's sla_s.",
    ),
    (
        COMPLAINTS,
        "Arrivals whose category attribute is complaint.",
    ),
    (RESOLVED, "Ended interactions the agent marked resolved."),
    (ENDED, "Connected interactions that ended."),
    (RATINGS, "Satisfaction ratings received, by score (1-5)."),
    (
        ESCALATIONS,
        "Ladder steps reached (step=N) and escalations by agents (step=agent).",
    ),
    (
        OFFERS,
        "Offers that ended, by result (accepted, declined, busy, no_answer, timed_out, revoked).",
    ),
    (
        WAIT,
        "Queue wait of answered and abandoned interactions (short abandons excluded).",
    ),
    (
        HANDLE,
        "Handle time (connected + wrap-up) of finished interactions.",
    ),
    (
        DECISION,
        "Time the engine spent on one event or timer batch, in process.",
    ),
    (
        TIMER_LATENESS,
        "How late the engine task fired a timer after its deadline.",
    ),
    (
        JOURNAL_SYNC,
        "How long one fdatasync of the journal took on the sync thread (sync = batch).",
    ),
    (
        JOURNAL_APPEND_FAILURES,
        "Batches of inputs (events, due timers) the journal could not write, so none of them was applied; /readyz is 503 journal_unavailable until an append succeeds.",
    ),
    (
        HTTP_REQUESTS,
        "HTTP requests served, by route template and status code.",
    ),
    (
        HTTP_REQUEST_SECONDS,
        "HTTP request latency, by route template.",
    ),
    (
        EVENT_QUEUE_DEPTH,
        "Commands waiting in the channel into the engine task.",
    ),
    (
        HTTP_CONNECTIONS,
        "Open API connections (at most [server] max_connections).",
    ),
    (
        HTTP_CONNECTIONS_MAX,
        "[server] max_connections: at this many open connections new ones wait to be accepted.",
    ),
    (
        FEED_READERS,
        "Waiting long-polls and open SSE streams (at most [server] max_feed_readers).",
    ),
    (
        FEED_READERS_MAX,
        "The feed reader limit in force: beyond it a reader is answered 503 too_many_readers.",
    ),
    (
        SUBSCRIBER_DELIVERIES,
        "Decision deliveries to subscribers, by result.",
    ),
    (
        SUBSCRIBER_ACKED_SEQ,
        "The seq of the last decision the subscriber acknowledged (or skipped past): \
         tierline_decision_seq minus this is how far behind it is.",
    ),
    (
        DECISION_SEQ,
        "The seq of the newest decision (0 before any); it continues across restarts.",
    ),
    (CONFIG_RELOADS, "Config reloads, by result (ok, rejected)."),
    (
        EVENTS_REFUSED,
        "Events of POST /v1/events refused after their body was read, by error code (batch elements included).",
    ),
    (BUILD_INFO, "Build information; the value is always 1."),
    (
        TLS_NOT_AFTER,
        "When the TLS certificate chain in force stops being valid (earliest notAfter), in Unix seconds; NaN if its dates could not be read (alert on it minus time()).",
    ),
    (
        AGENT_ACTIVITY,
        "1 for the agent's current state, 0 for the others (per_agent only).",
    ),
    (
        AGENT_HANDLED,
        "Interactions the agent finished (wrap-up ended), by channel (per_agent only).",
    ),
];

/// Queue waits, seconds. Every queue's `sla_s`, `short_abandon_s` and `max_wait_s` are added.
const WAIT_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0,
    1800.0, 3600.0,
];

const HANDLE_BUCKETS: &[f64] = &[
    5.0, 10.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0,
    3600.0, 7200.0,
];

/// The engine answers in microseconds; the top buckets catch a pathological batch.
const DECISION_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
];

/// Timer lateness and journal syncs: 0.1 ms to 5 s (both should sit in the low milliseconds).
const SHORT_DELAY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const HTTP_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Bucket bounds per histogram name, sorted and deduplicated.
pub fn histogram_buckets(routing: &RoutingConfig) -> Vec<(&'static str, Vec<f64>)> {
    let mut wait: Vec<f64> = WAIT_BUCKETS.to_vec();
    for q in &routing.queues {
        wait.push(seconds(q.sla_ms));
        wait.push(seconds(q.short_abandon_ms));
        if let Some(max) = q.max_wait_ms {
            wait.push(seconds(max));
        }
    }
    vec![
        (WAIT, sorted(wait)),
        (HANDLE, sorted(HANDLE_BUCKETS.to_vec())),
        (DECISION, sorted(DECISION_BUCKETS.to_vec())),
        (TIMER_LATENESS, sorted(SHORT_DELAY_BUCKETS.to_vec())),
        (JOURNAL_SYNC, sorted(SHORT_DELAY_BUCKETS.to_vec())),
        (HTTP_REQUEST_SECONDS, sorted(HTTP_BUCKETS.to_vec())),
    ]
}

/// Milliseconds as (exact for whole milliseconds) fractional seconds.
pub fn seconds(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.retain(|b| b.is_finite() && *b > 0.0);
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueConfig;

    #[test]
    fn every_queue_sla_is_a_wait_bucket_bound() {
        let mut routing = RoutingConfig::empty();
        let mut odd = QueueConfig::with_defaults("odd");
        odd.sla_ms = 37_500;
        odd.max_wait_ms = Some(240_000);
        routing.queues.push(odd);
        routing.queues.push(QueueConfig::with_defaults("plain"));
        let buckets = histogram_buckets(&routing);
        let wait = &buckets.iter().find(|(n, _)| *n == WAIT).unwrap().1;
        assert!(wait.contains(&37.5));
        assert!(wait.contains(&30.0));
        assert!(wait.contains(&240.0));
        assert!(
            wait.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
    }

    #[test]
    fn every_series_has_help_text_and_a_prometheus_name() {
        for (name, help) in HELP {
            assert!(name.starts_with("tierline_"));
            assert!(!help.is_empty());
            assert!(name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
        }
    }
}
