//! Simulator figures worked out by hand (deterministic traffic through the public `Traffic` API),
//! and scenario limits.

use tierline::config::{Channel, Overflow, QueueConfig, RoutingConfig};
use tierline::sim::report::Report;
use tierline::sim::traffic::Recorded;
use tierline::sim::{run, scenario, simulate, Arrival, Options};

fn routing(queues: Vec<QueueConfig>) -> RoutingConfig {
    let mut c = RoutingConfig::empty();
    c.queues = queues;
    c
}

fn arrival(at_s: f64, handle_s: f64, wrap_up_s: Option<f64>) -> Arrival {
    Arrival {
        at: (at_s * 1000.0) as u64,
        channel: Channel::Voice,
        queue: Some("support".into()),
        attributes: Default::default(),
        priority: None,
        skills: Vec::new(),
        handle_ms: (handle_s * 1000.0) as u64,
        wrap_up_ms: wrap_up_s.map(|w| (w * 1000.0) as u64),
        patience_ms: None,
        responses: Vec::new(),
    }
}

/// One agent `solo`, the run lasts `duration_s`, arrivals replaced by `arrivals`.
fn run_fixed(config: RoutingConfig, duration_s: u64, arrivals: Vec<Arrival>) -> Report {
    let text = format!(
        r#"
        duration_s = {duration_s}
        drain_s = 3600
        [[arrivals]]
        queue = "support"
        rate_per_hour = 1
        handle = {{ dist = "fixed", s = 1 }}
        [[agents]]
        id = "solo"
        tiers = {{ support = 1 }}
        "#
    );
    let plan = scenario::parse(&text, "t.toml", &config).expect("valid");
    run::run(config, &plan, Recorded::new(arrivals), 1, true).expect("runs")
}

/// Hand-computed: three calls at 0, 10, 20 s, 30 s each, one agent, no wrap-up, sla 20 s.
/// Waits 0, 20, 40 → SL 2/3 (≤ 20 s), ASA 20 s; busy 0..90 s of a 100 s window → 0.9.
#[test]
fn hand_computed_kpis() {
    let mut q = QueueConfig::with_defaults("support");
    q.wrap_up_ms = 0;
    q.sla_ms = 20_000;
    let r = run_fixed(
        routing(vec![q]),
        100,
        vec![
            arrival(0.0, 30.0, None),
            arrival(10.0, 30.0, None),
            arrival(20.0, 30.0, None),
        ],
    );
    let f = &r.queues[0].figures;
    assert_eq!((f.offered, f.answered, f.queued), (3, 3, 2));
    assert_eq!(f.service_level, Some(2.0 / 3.0));
    assert_eq!(f.asa_s, Some(20.0));
    assert_eq!(r.queues[0].occupancy_by_tier[&1], Some(0.9));
}

/// A wrap-up "done" that comes after the queue's wrap-up already ended (stream wrap_up longer
/// than wrap_up_s) ends the wrap-up of the agent's NEXT interaction, which has no early done.
/// A at 0 s (handle 10 s, done 60 s after its end = 70 s), queue wrap-up 30 s: agent free at
/// 40 s. B arrives at 1 s, answered at 40 s, handle 20 s, ends 60 s, queue wrap-up until 90 s.
/// C arrives at 61 s: must wait until 90 s (29 s). A's stale done at 70 s frees the agent early.
#[test]
fn a_late_wrapup_done_does_not_cut_the_next_interactions_wrap_up() {
    let mut q = QueueConfig::with_defaults("support");
    q.wrap_up_ms = 30_000;
    q.sla_ms = 20_000;
    let r = run_fixed(
        routing(vec![q]),
        200,
        vec![
            arrival(0.0, 10.0, Some(60.0)),
            arrival(1.0, 20.0, None),
            arrival(61.0, 5.0, None),
        ],
    );
    let f = &r.queues[0].figures;
    assert_eq!(f.answered, 3);
    // waits: A 0 s, B 39 s, C 29 s → ASA 68/3 s
    assert_eq!(f.asa_s, Some(68.0 / 3.0), "{f:?}");
}

/// Overall, a wait is the customer's: from the arrival, through the queue it overflowed from,
/// judged against the target of the queue it arrived in. A call waits 30 s in billing (nobody
/// serves it), overflows to support and is answered at once: support's row says 0 s and 100 %,
/// the overall row 30 s against billing's 20 s target. A second call is answered at once in
/// support. Overall: waits 30 and 0 → ASA 15 s, SL 1/2 (support alone: ASA 0, SL 1).
#[test]
fn overall_waits_count_the_queue_an_interaction_overflowed_from() {
    let mut billing = QueueConfig::with_defaults("billing");
    billing.sla_ms = 20_000;
    billing.max_wait_ms = Some(30_000);
    billing.overflow = Some(Overflow::Queue("support".into()));
    let mut support = QueueConfig::with_defaults("support");
    support.wrap_up_ms = 0;
    support.sla_ms = 20_000;
    let mut overflowing = arrival(0.0, 10.0, None);
    overflowing.queue = Some("billing".into());
    let r = run_fixed(
        routing(vec![billing, support]),
        100,
        vec![overflowing, arrival(50.0, 10.0, None)],
    );
    let support = &r.queues[1].figures;
    assert_eq!(
        (support.answered, support.asa_s),
        (2, Some(0.0)),
        "{support:?}"
    );
    assert_eq!(support.service_level, Some(1.0));
    let o = &r.overall;
    assert_eq!(o.answered, 2, "{o:?}");
    assert_eq!(o.asa_s, Some(15.0), "{o:?}");
    // HDR histogram, 3 significant digits.
    assert!(
        o.wait_s.max.is_some_and(|m| (m - 30.0).abs() < 0.1),
        "{o:?}"
    );
    assert_eq!(o.service_level, Some(0.5), "{o:?}");
}

/// Overall `queued_share` is "the probability of waiting" (queued / offered, overall offered =
/// every arrival). An interaction that waits in billing and then in support is one customer.
#[test]
fn overall_queued_share_is_a_probability() {
    let mut billing = QueueConfig::with_defaults("billing");
    billing.wrap_up_ms = 0;
    billing.max_wait_ms = Some(30_000);
    billing.overflow = Some(Overflow::Queue("support".into()));
    let mut support = QueueConfig::with_defaults("support");
    support.wrap_up_ms = 0;
    let config = routing(vec![billing, support]);
    let text = r#"
        duration_s = 7200
        [[arrivals]]
        queue = "billing"
        rate_per_hour = 60
        handle = { dist = "fixed", s = 600 }
        [[agents]]
        count = 1
        tiers = { support = 1 }
    "#;
    let plan = scenario::parse(text, "t.toml", &config).expect("valid");
    let r = simulate(config, &plan, &Options::default()).expect("runs");
    let o = &r.overall;
    assert!(
        o.queued <= o.offered,
        "overall queued {} > offered {}",
        o.queued,
        o.offered
    );
    assert!(
        o.queued_share.unwrap() <= 1.0,
        "queued_share {:?}",
        o.queued_share
    );
}

/// Times beyond a year (a typo) are refused with the field, never overflow into "at once".
#[test]
fn times_beyond_a_year_are_refused_with_their_field() {
    let config = routing(vec![QueueConfig::with_defaults("support")]);
    let cases = [
        (
            r#"patience = { dist = "fixed", s = 1e17 }"#,
            "",
            "arrivals[0].patience",
        ),
        (
            "",
            "breaks = [ { at_s = 1e17, duration_s = 60 } ]",
            "agents[0].breaks[0].at_s",
        ),
        (
            r#"handle = { dist = "exponential", mean_s = 1e12 }"#,
            "",
            "arrivals[0].handle",
        ),
    ];
    for (stream_extra, agent_extra, field) in cases {
        let handle = if stream_extra.starts_with("handle") {
            ""
        } else {
            r#"handle = { dist = "fixed", s = 30 }"#
        };
        let text = format!(
            "duration_s = 3600\n[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 60\n{handle}\n\
             {stream_extra}\n[[agents]]\ncount = 1\ntiers = {{ support = 1 }}\n{agent_extra}\n"
        );
        let e = scenario::parse(&text, "t.toml", &config)
            .err()
            .unwrap_or_else(|| panic!("{field}: accepted {text}"));
        assert!(
            e.0.iter()
                .any(|p| p.field == field && p.message.contains("year")),
            "{field}: {e}"
        );
    }
}

/// An absurd rate (a typo) is refused, not run for ever: the gaps between arrivals would vanish
/// in floating point. So is a stream expected to make more than 100 million arrivals.
#[test]
fn an_absurd_arrival_rate_is_refused() {
    let config = routing(vec![QueueConfig::with_defaults("support")]);
    for (rate, duration_s, field, says) in [
        (
            "1e300",
            1,
            "arrivals[0].rate_per_hour",
            "a million a second",
        ),
        ("3.6e9", 3600, "arrivals[0]", "arrivals"),
    ] {
        let text = format!(
            "duration_s = {duration_s}\n[[arrivals]]\nqueue = \"support\"\nrate_per_hour = {rate}\n\
             handle = {{ dist = \"fixed\", s = 0 }}\n[[agents]]\ncount = 1\ntiers = {{ support = 1 }}\n"
        );
        let e = scenario::parse(&text, "t.toml", &config)
            .err()
            .unwrap_or_else(|| panic!("rate {rate} for {duration_s} s was accepted"));
        assert!(
            e.0.iter()
                .any(|p| p.field == field && p.message.contains(says)),
            "{rate}: {e}"
        );
    }
}

fn with_patience(mut a: Arrival, p: f64) -> Arrival {
    a.patience_ms = Some((p * 1000.0) as u64);
    a
}

/// A 0 s (handle 100 s), B 1 s patience 3 s (short, short_abandon 5 s), C 2 s patience 50 s,
/// D 3 s no patience → answered at 100 s. SL(20) = 1 / (2 + 1); abandon rate 1/3; ASA 48.5.
#[test]
fn hand_computed_abandons() {
    let mut q = QueueConfig::with_defaults("support");
    q.wrap_up_ms = 0;
    q.sla_ms = 20_000;
    q.short_abandon_ms = 5_000;
    let r = run_fixed(
        routing(vec![q]),
        300,
        vec![
            arrival(0.0, 100.0, None),
            with_patience(arrival(1.0, 10.0, None), 3.0),
            with_patience(arrival(2.0, 10.0, None), 50.0),
            arrival(3.0, 10.0, None),
        ],
    );
    let f = &r.queues[0].figures;
    assert_eq!(
        (f.answered, f.abandoned, f.short_abandoned),
        (2, 1, 1),
        "{f:?}"
    );
    assert_eq!(f.service_level, Some(1.0 / 3.0));
    assert_eq!(f.abandon_rate, Some(1.0 / 3.0));
    assert_eq!(f.asa_s, Some(48.5));
}

/// docs/METRICS.md: a queue's offered is "arrivals routed to it and not rejected" (the daemon's
/// stats agree). A at 0 s is answered at once, B at 1 s waits (max_waiting 1), C at 2 s finds the
/// queue full and is rejected: offered 2, queued 1 → P(wait) 1/2. Overall still counts every
/// arrival (SIMULATOR.md).
#[test]
fn a_rejected_arrival_is_not_offered_to_the_queue() {
    let mut q = QueueConfig::with_defaults("support");
    q.wrap_up_ms = 0;
    q.max_waiting = Some(1);
    let r = run_fixed(
        routing(vec![q]),
        100,
        vec![
            arrival(0.0, 50.0, None),
            arrival(1.0, 10.0, None),
            arrival(2.0, 10.0, None),
        ],
    );
    let f = &r.queues[0].figures;
    assert_eq!((f.offered, f.queued, f.rejected), (2, 1, 1), "{f:?}");
    assert_eq!(f.queued_share, Some(0.5));
    assert_eq!((r.overall.offered, r.overall.rejected), (3, 1));
}

/// Agents who decline every offer at once, in a queue with no back-off and no `max_no_answer`:
/// the engine offers the call straight back (ROUTING.md: a freed agent takes the most urgent
/// waiting interaction, which may be the one declined), for ever, at one virtual millisecond.
/// The run says so and stops instead of hanging.
#[test]
fn a_run_that_stops_advancing_fails_saying_why_instead_of_hanging() {
    let mut q = QueueConfig::with_defaults("q");
    q.reject_delay_ms = 0;
    q.max_no_answer = 0;
    let config = routing(vec![q]);
    let text = r#"
        duration_s = 600
        [behaviour]
        answer_delay = { dist = "fixed", s = 0 }
        decline_prob = 1
        [[arrivals]]
        queue = "q"
        rate_per_hour = 60
        handle = { dist = "fixed", s = 10 }
        [[agents]]
        count = 2
        tiers = { q = 1 }
    "#;
    let mut plan = scenario::parse(text, "t.toml", &config).expect("valid");
    // The default bound is a million steps (seconds in a debug build); the same stop, sooner.
    plan.stuck_after = Some(10_000);
    match simulate(config, &plan, &Options::default()) {
        Err(tierline::sim::SimError::NoProgress { steps, at_s }) => {
            assert_eq!(steps, 10_001);
            // The first call arrives within the first minutes and is declined for ever there.
            assert!(at_s < 600.0, "{at_s}");
        }
        Err(other) => panic!("expected NoProgress, got {other}"),
        Ok(r) => panic!("the run ended: {:?}", r.run),
    }
}
