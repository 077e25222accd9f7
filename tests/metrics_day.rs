//! The day in miniature (see `metrics_support/day.rs`) driven through a real engine: every
//! Prometheus series and every KPI is checked against the numbers worked out by hand from the
//! script.

mod metrics_support;

use metrics_support::day::{Day, DAY_END};
use metrics_support::{has_series, sample};
use tierline::config::daemon::MetricsConfig;
use tierline::metrics::Metrics;

/// A minute boundary, so minute windows are easy to reason about.
const START: u64 = 28_333_333 * 60_000;
const S: u64 = 1000;

fn run_day(per_agent: bool) -> Day {
    let cfg = MetricsConfig {
        per_agent,
        ..MetricsConfig::default()
    };
    let metrics = Metrics::unserved(&cfg, &metrics_support::day::config(S)).unwrap();
    let mut day = Day::new(metrics, START, S);
    let end = day.at(DAY_END);
    let refused = day.run_until(end);
    assert!(refused.is_empty(), "the script is valid: {refused:?}");
    day
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn the_day_counts_arrivals_answers_abandons_per_queue_and_channel() {
    let day = run_day(false);
    let text = day.telemetry.metrics().render_at(day.at(DAY_END));
    let v = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    let bv = [("queue", "billing"), ("channel", "voice")];
    let bc = [("queue", "billing"), ("channel", "chat")];
    let sv = [("queue", "support"), ("channel", "voice")];
    assert_eq!(v("tierline_interactions_arrived_total", &bv), 3.0);
    assert_eq!(v("tierline_interactions_arrived_total", &bc), 2.0);
    assert_eq!(v("tierline_interactions_arrived_total", &sv), 5.0);
    assert_eq!(v("tierline_interactions_answered_total", &bv), 3.0);
    assert_eq!(v("tierline_interactions_answered_total", &bc), 0.0);
    assert_eq!(v("tierline_interactions_answered_total", &sv), 3.0);
    assert_eq!(v("tierline_answered_within_sla_total", &bv), 2.0);
    assert_eq!(v("tierline_answered_within_sla_total", &sv), 3.0);
    assert_eq!(v("tierline_interactions_abandoned_total", &bc), 1.0);
    assert_eq!(v("tierline_interactions_short_abandoned_total", &bc), 1.0);
    assert_eq!(v("tierline_interactions_abandoned_total", &sv), 1.0);
    assert_eq!(v("tierline_interactions_short_abandoned_total", &sv), 0.0);
    assert_eq!(v("tierline_interactions_overflowed_total", &sv), 0.0);
    for reason in ["queue_full", "closed"] {
        let l = [
            ("queue", "support"),
            ("channel", "voice"),
            ("reason", reason),
        ];
        assert_eq!(v("tierline_interactions_rejected_total", &l), 0.0);
    }
    assert_eq!(v("tierline_complaints_total", &bv), 1.0);
    assert_eq!(
        v("tierline_interactions_ended_total", &[("queue", "billing")]),
        3.0
    );
    assert_eq!(
        v(
            "tierline_interactions_resolved_total",
            &[("queue", "billing")]
        ),
        2.0
    );
    assert_eq!(
        v("tierline_interactions_ended_total", &[("queue", "support")]),
        2.0
    );
    assert_eq!(
        v(
            "tierline_interactions_resolved_total",
            &[("queue", "support")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "tierline_ratings_total",
            &[("queue", "billing"), ("score", "5")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "tierline_ratings_total",
            &[("queue", "billing"), ("score", "3")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "tierline_ratings_total",
            &[("queue", "support"), ("score", "4")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "tierline_ratings_total",
            &[("queue", "support"), ("score", "1")]
        ),
        0.0
    );
}

#[test]
fn offers_and_escalations_are_counted_by_result_and_step() {
    let day = run_day(false);
    let text = day.telemetry.metrics().render_at(day.at(DAY_END));
    let offers = |q, r| {
        sample(
            &text,
            "tierline_offers_total",
            &[("queue", q), ("result", r)],
        )
    };
    assert_eq!(offers("billing", "accepted"), 3.0);
    assert_eq!(offers("billing", "declined"), 1.0);
    assert_eq!(offers("billing", "timed_out"), 0.0);
    assert_eq!(offers("support", "accepted"), 3.0);
    assert_eq!(offers("support", "timed_out"), 1.0);
    let esc = |q, s| {
        sample(
            &text,
            "tierline_escalations_total",
            &[("queue", q), ("step", s)],
        )
    };
    assert_eq!(esc("billing", "1"), 1.0, "b2 reached L2 at 42 s");
    assert_eq!(
        esc("support", "1"),
        3.0,
        "s1 at 220 s, s4 at 360 s, s5 at 370 s"
    );
    assert_eq!(esc("support", "agent"), 0.0);
}

#[test]
fn wait_histograms_have_the_sla_as_a_bucket_so_service_level_is_exact() {
    let day = run_day(false);
    let text = day.telemetry.metrics().render_at(day.at(DAY_END));
    let bucket = |q, outcome, le| {
        sample(
            &text,
            "tierline_wait_seconds_bucket",
            &[("queue", q), ("outcome", outcome), ("le", le)],
        )
    };
    // billing answered waits 4, 33, 10 s; SLA 20 s.
    assert_eq!(bucket("billing", "answered", "20"), 2.0);
    assert_eq!(bucket("billing", "answered", "+Inf"), 3.0);
    assert_eq!(
        bucket("billing", "abandoned", "+Inf"),
        1.0,
        "the short abandon is not a wait sample"
    );
    let sum = sample(
        &text,
        "tierline_wait_seconds_sum",
        &[("queue", "billing"), ("outcome", "answered")],
    );
    assert!(approx(sum, 47.0));
    // Service level from buckets equals the exact counter-based one: 2 / (3 + 1).
    let sl = bucket("billing", "answered", "20")
        / (bucket("billing", "answered", "+Inf") + bucket("billing", "abandoned", "+Inf"));
    assert!(approx(sl, 0.5));
    // support: waits 25, 2, 1 answered; 30 abandoned; SLA 30 s (a bound: ≤ counts).
    assert_eq!(bucket("support", "answered", "30"), 3.0);
    assert_eq!(bucket("support", "abandoned", "30"), 1.0);
    // Handle time = connected + wrap-up: billing 56, 70, 20 s; support 40, 23 s.
    let hs = |q| {
        sample(
            &text,
            "tierline_handle_seconds_sum",
            &[("queue", q), ("channel", "voice")],
        )
    };
    let hc = |q| {
        sample(
            &text,
            "tierline_handle_seconds_count",
            &[("queue", q), ("channel", "voice")],
        )
    };
    assert_eq!((hs("billing"), hc("billing")), (146.0, 3.0));
    assert_eq!((hs("support"), hc("support")), (63.0, 2.0));
    assert!(sample(&text, "tierline_decision_seconds_count", &[]) > 30.0);
}

#[test]
fn gauges_show_who_waits_and_which_agents_are_in_which_state() {
    let day = run_day(false);
    let text = day.telemetry.metrics().render_at(day.at(DAY_END));
    let v = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    assert_eq!(
        v(
            "tierline_queue_waiting",
            &[("queue", "support"), ("channel", "voice")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "tierline_queue_waiting",
            &[("queue", "billing"), ("channel", "chat")]
        ),
        0.0,
        "a gauge back at 0 stays a series"
    );
    assert_eq!(
        v(
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "support")]
        ),
        60.0,
        "s4 since 340 s"
    );
    assert_eq!(
        v(
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "billing")]
        ),
        0.0
    );
    assert_eq!(
        v("tierline_queue_sla_seconds", &[("queue", "billing")]),
        20.0
    );
    assert_eq!(
        v("tierline_queue_max_wait_seconds", &[("queue", "support")]),
        120.0
    );
    let agents = |q, t, s| {
        v(
            "tierline_agents",
            &[("queue", q), ("tier", t), ("state", s)],
        )
    };
    assert_eq!(agents("billing", "1", "available"), 1.0);
    assert_eq!(agents("billing", "2", "available"), 1.0);
    assert_eq!(agents("billing", "1", "busy"), 0.0);
    assert_eq!(agents("support", "1", "busy"), 1.0, "cat on s3");
    assert_eq!(agents("support", "1", "not_ready"), 1.0, "eve");
    assert_eq!(agents("support", "2", "not_ready"), 1.0, "dan");
    assert_eq!(agents("support", "2", "available"), 0.0);
    assert!(
        !has_series(&text, "tierline_agent_activity"),
        "no per-agent series unless opted in"
    );
}

#[test]
fn agent_state_seconds_integrate_the_agents_gauge_and_keep_growing_between_batches() {
    let day = run_day(false);
    let m = day.telemetry.metrics();
    let text = m.render_at(day.at(DAY_END));
    let st = |text: &str, q, s| {
        sample(
            text,
            "tierline_agent_state_seconds_total",
            &[("queue", q), ("state", s)],
        )
    };
    // Worked out per agent in the script (each agent counted once per queue it serves).
    assert_eq!(st(&text, "billing", "available"), 642.0);
    assert_eq!(st(&text, "billing", "offered"), 12.0);
    assert_eq!(st(&text, "billing", "busy"), 116.0);
    assert_eq!(st(&text, "billing", "wrap_up"), 30.0);
    assert_eq!(st(&text, "support", "available"), 525.0);
    assert_eq!(st(&text, "support", "offered"), 23.0);
    assert_eq!(st(&text, "support", "busy"), 122.0);
    assert_eq!(st(&text, "support", "wrap_up"), 10.0);
    assert_eq!(st(&text, "support", "not_ready"), 520.0);
    assert_eq!(st(&text, "support", "offline"), 0.0);
    // 30 s later with no engine batch: the scrape completes the values from the clock.
    let later = m.render_at(day.at(DAY_END + 30));
    assert_eq!(st(&later, "support", "not_ready"), 580.0);
    assert_eq!(st(&later, "support", "busy"), 152.0);
    assert_eq!(
        sample(
            &later,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "support")]
        ),
        90.0
    );
    // A scrape with an older clock never makes a counter go down.
    let earlier = m.render_at(day.at(DAY_END));
    assert_eq!(st(&earlier, "support", "not_ready"), 580.0);
}

#[test]
fn queue_stats_follow_the_kpi_definitions() {
    let day = run_day(false);
    let now = day.at(DAY_END);
    let b = day
        .telemetry
        .queue_stats("billing", 15 * 60 * S, now)
        .unwrap();
    assert_eq!(
        (
            b.offered,
            b.counts.arrived,
            b.counts.answered,
            b.counts.abandoned,
            b.counts.short_abandoned
        ),
        (5, 5, 3, 1, 1)
    );
    assert_eq!(
        b.service_level,
        Some(0.5),
        "2 in SLA / (3 answered + 1 abandoned)"
    );
    assert!(approx(b.asa_s.unwrap(), 47.0 / 3.0));
    assert_eq!(b.abandon_rate, Some(0.25));
    assert!(approx(b.resolution_rate.unwrap(), 2.0 / 3.0));
    assert_eq!(b.satisfaction, Some(0.5), "one 5 and one 3");
    assert_eq!(b.complaint_share, Some(0.2));
    assert_eq!((b.waiting, b.longest_wait_s), (0, 0.0));
    let s = day
        .telemetry
        .queue_stats("support", 15 * 60 * S, now)
        .unwrap();
    assert_eq!(
        (s.offered, s.counts.answered, s.counts.abandoned),
        (5, 3, 1)
    );
    assert_eq!(s.service_level, Some(0.75));
    assert!(approx(s.asa_s.unwrap(), 28.0 / 3.0));
    assert_eq!(
        s.resolution_rate,
        Some(0.5),
        "an end without `resolved` is not a resolution"
    );
    assert_eq!(s.satisfaction, Some(1.0));
    assert_eq!((s.waiting, s.longest_wait_s), (1, 60.0));
    // The last minute only ([360 s, 420 s)): s5's abandon at 380 s, nothing answered.
    let last = day.telemetry.queue_stats("support", 60 * S, now).unwrap();
    assert_eq!((last.counts.answered, last.counts.abandoned), (0, 1));
    assert_eq!(last.service_level, Some(0.0));
    assert_eq!(last.asa_s, None, "no answer, no ASA");
    assert_eq!(last.from, START + 360 * S);
    let err = day.telemetry.queue_stats("nope", 60 * S, now).unwrap_err();
    assert_eq!(err.code(), "unknown_queue");
}

#[test]
fn agent_stats_give_attendance_occupancy_and_handling() {
    let day = run_day(false);
    let now = day.at(DAY_END);
    let ann = day.telemetry.agent_stats("ann", START, now).unwrap();
    assert_eq!(ann.logged_in_s, 400.0);
    assert_eq!(ann.activity_s["available"], 315.0);
    assert_eq!(ann.activity_s["offered"], 9.0);
    assert_eq!(ann.activity_s["busy"], 56.0);
    assert_eq!(ann.activity_s["wrap_up"], 20.0);
    assert_eq!(ann.occupancy, Some(76.0 / 400.0));
    assert_eq!(ann.handled_total, 2);
    assert_eq!(ann.aht_s, Some(38.0));
    assert_eq!(
        (ann.offers, ann.answered, ann.declines, ann.no_answers),
        (3, 2, 1, 0)
    );
    assert_eq!(ann.resolution_rate, Some(1.0));
    assert_eq!(ann.average_rating, Some(5.0));

    let cat = day.telemetry.agent_stats("cat", START, now).unwrap();
    assert_eq!(cat.no_answers, 1, "the offer that expired at 215 s");
    assert_eq!(cat.activity_s["busy"], 87.0);
    assert_eq!(cat.activity_s["offered"], 18.0);
    assert_eq!(cat.aht_s, Some(23.0));

    let dan = day.telemetry.agent_stats("dan", START, now).unwrap();
    assert_eq!(dan.status_s["not_ready"], 120.0);
    assert_eq!(dan.not_ready_reasons_s["lunch"], 120.0);
    assert_eq!(dan.logged_in_s, 400.0);

    let eve = day.telemetry.agent_stats("eve", START, now).unwrap();
    assert_eq!(eve.not_ready_reasons_s["training"], 400.0);
    assert_eq!(eve.occupancy, None, "never available, never handling");

    // Since 300 s: ann was available the whole time.
    let late = day
        .telemetry
        .agent_stats("ann", START + 300 * S, now)
        .unwrap();
    assert_eq!(late.activity_s["available"], 100.0);
    assert_eq!(late.handled_total, 0);
    assert_eq!(
        day.telemetry
            .agent_stats("zed", START, now)
            .unwrap_err()
            .code(),
        "unknown_agent"
    );
    assert_eq!(
        day.telemetry
            .agent_stats("ann", now + 1, now)
            .unwrap_err()
            .code(),
        "invalid_since"
    );
}

#[test]
fn per_agent_series_appear_only_when_opted_in() {
    let day = run_day(true);
    let text = day.telemetry.metrics().render_at(day.at(DAY_END));
    let act = |a, s| {
        sample(
            &text,
            "tierline_agent_activity",
            &[("agent", a), ("state", s)],
        )
    };
    assert_eq!(act("cat", "busy"), 1.0);
    assert_eq!(act("cat", "available"), 0.0);
    assert_eq!(act("dan", "not_ready"), 1.0);
    assert_eq!(
        sample(
            &text,
            "tierline_agent_handled_total",
            &[("agent", "ann"), ("channel", "voice")]
        ),
        2.0
    );
}

#[test]
fn stats_serialize_as_the_api_documents() {
    let day = run_day(false);
    let now = day.at(DAY_END);
    let q = serde_json::to_value(
        day.telemetry
            .queue_stats("support", 15 * 60 * S, now)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(q["service_level"], 0.75);
    assert_eq!(q["waiting"], 1);
    let empty =
        serde_json::to_value(day.telemetry.queue_stats("billing", 60 * S, now).unwrap()).unwrap();
    assert!(
        empty["service_level"].is_null(),
        "no data is null, not 0: {empty}"
    );
    let a = serde_json::to_value(day.telemetry.agent_stats("ann", START, now).unwrap()).unwrap();
    assert_eq!(a["handled"]["voice"], 2);
    assert_eq!(a["status_s"]["available"], 400.0);
    assert_eq!(a["activity_s"]["wrap_up"], 20.0);
    assert!(a.get("handle_s_total").is_none());
}

#[test]
fn the_days_config_file_is_the_days_routing_config() {
    use metrics_support::day::{config, config_toml};
    for unit in [100, 1000] {
        let text = config_toml(unit, 120, "");
        let loaded = tierline::config::parse(&text, "day.toml").expect("the day's TOML parses");
        assert_eq!(loaded.routing, config(unit), "unit {unit} ms");
    }
}

#[test]
fn the_days_api_events_are_what_the_daemon_accepts() {
    let bodies = metrics_support::day::api_events();
    assert_eq!(bodies.len(), metrics_support::day::events().len());
    for (i, (_, body)) in bodies.iter().enumerate() {
        assert_eq!(body["id"], format!("day-{}", i + 1));
        let event: tierline::engine::Event =
            serde_json::from_value(body.as_object().map_or(body.clone(), |o| {
                let mut o = o.clone();
                o.remove("id");
                serde_json::Value::Object(o)
            }))
            .expect("round-trips");
        assert_eq!(event, metrics_support::day::events()[i].1);
    }
}
