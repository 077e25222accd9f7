//! What the simulator does with shifts, breaks, agent behaviour, warm-up, overflow and rules, and
//! that its reports are reproducible. Small runs with fixed seeds.

use tierline::config::{Overflow, QueueConfig, RoutingConfig, Rule};
use tierline::sim::report::Report;
use tierline::sim::{scenario, simulate, Options, Synthetic, Traffic};

fn support(wrap_up_s: u64) -> QueueConfig {
    let mut q = QueueConfig::with_defaults("support");
    q.wrap_up_ms = wrap_up_s * 1000;
    q
}

fn routing(queues: Vec<QueueConfig>) -> RoutingConfig {
    let mut c = RoutingConfig::empty();
    c.queues = queues;
    c
}

fn run_with(config: RoutingConfig, text: &str, options: Options) -> Report {
    let plan = scenario::parse(text, "test.toml", &config).expect("valid scenario");
    simulate(config, &plan, &options).expect("simulation runs")
}

fn run(config: RoutingConfig, text: &str) -> Report {
    run_with(
        config,
        text,
        Options {
            seed: None,
            agents: true,
        },
    )
}

const SMALL_DAY: &str = r#"
duration_s = 14400
warm_up_s = 1800
[behaviour]
answer_delay = { dist = "lognormal", mean_s = 3, sd_s = 1 }
decline_prob = 0.05
[[arrivals]]
queue = "support"
rate_per_hour = 100
handle = { dist = "lognormal", mean_s = 150, sd_s = 90 }
patience = { dist = "exponential", mean_s = 60 }
[[agents]]
count = 4
tiers = { support = 1 }
"#;

#[test]
fn the_same_seed_gives_the_same_report_and_another_seed_does_not() {
    let a = run(routing(vec![support(10)]), SMALL_DAY).to_json();
    let b = run(routing(vec![support(10)]), SMALL_DAY).to_json();
    assert_eq!(a, b);
    let other = run_with(
        routing(vec![support(10)]),
        SMALL_DAY,
        Options {
            seed: Some(99),
            agents: true,
        },
    );
    assert_ne!(a, other.to_json());
    assert_eq!(other.seed, 99);
}

#[test]
fn every_counted_interaction_has_exactly_one_outcome() {
    let r = run(routing(vec![support(10)]), SMALL_DAY);
    let f = &r.overall;
    assert!(f.answered > 0 && f.abandoned > 0, "{f:?}");
    assert_eq!(
        f.answered + f.abandoned + f.short_abandoned + f.overflowed + f.rejected + r.run.unfinished,
        f.offered
    );
    assert_eq!(r.run.unfinished, 0, "the drain hour lets everyone finish");
    // Four agents: the four tallies add up to the queue's answers.
    let agents = r.agents.as_ref().expect("asked for agents");
    assert_eq!(agents.len(), 4);
    assert_eq!(agents.iter().map(|a| a.answered).sum::<u64>(), f.answered);
}

#[test]
fn interactions_arriving_during_the_warm_up_are_not_counted() {
    let config = routing(vec![support(10)]);
    let plan = scenario::parse(SMALL_DAY, "test.toml", &config).expect("valid");
    let mut traffic = Synthetic::new(&plan, plan.seed);
    let (mut total, mut in_window) = (0, 0);
    while let Some(a) = traffic.next_arrival() {
        total += 1;
        if a.at >= plan.warm_up_ms {
            in_window += 1;
        }
    }
    let r = run(config, SMALL_DAY);
    assert_eq!(r.run.arrivals, total);
    assert_eq!(r.overall.offered, in_window);
    assert!(in_window < total);
    assert_eq!(r.measured_s, 12_600.0);
}

#[test]
fn an_agent_who_never_answers_is_made_not_ready_and_the_calls_go_to_the_other() {
    // max_no_answer is 3 by default: after three offers ring out, the engine parks the agent.
    let r = run(
        routing(vec![support(0)]),
        r#"
        duration_s = 7200
        [[arrivals]]
        queue = "support"
        rate_per_hour = 30
        handle = { dist = "fixed", s = 60 }
        [[agents]]
        id = "sleepy"
        tiers = { support = 1 }
        behaviour = { no_answer_prob = 1.0 }
        [[agents]]
        id = "awake"
        tiers = { support = 1 }
        "#,
    );
    let agents = r.agents.as_ref().expect("agents");
    let sleepy = agents.iter().find(|a| a.agent == "sleepy").expect("sleepy");
    let awake = agents.iter().find(|a| a.agent == "awake").expect("awake");
    assert_eq!(sleepy.answered, 0);
    assert_eq!(awake.answered, r.overall.answered);
    assert_eq!(r.overall.answered, r.overall.offered);
    // Sleepy was staffed only until its third missed offer, well under the two hours.
    assert!(sleepy.staffed_s < 3_600.0, "{}", sleepy.staffed_s);
    assert_eq!(sleepy.handling_s, 0.0);
}

#[test]
fn a_break_is_not_staffed_time() {
    let r = run(
        routing(vec![support(0)]),
        r#"
        duration_s = 14400
        [[arrivals]]
        queue = "support"
        rate_per_hour = 0.5
        handle = { dist = "fixed", s = 1 }
        [[agents]]
        id = "solo"
        tiers = { support = 1 }
        shifts = [ { login_s = 0, logout_s = 12600 } ]
        breaks = [ { at_s = 3600, duration_s = 3600 } ]
        "#,
    );
    let solo = &r.agents.as_ref().expect("agents")[0];
    // Logged in 3.5 h, one hour of it on break; a call at the break's start may add a second.
    assert!(
        (9_000.0..9_002.0).contains(&solo.staffed_s),
        "staffed {} s",
        solo.staffed_s
    );
    assert_eq!(solo.handling_s, solo.answered as f64);
}

#[test]
fn callers_nobody_is_there_for_overflow_to_voicemail_at_max_wait() {
    let mut q = support(0);
    q.max_wait_ms = Some(60_000);
    q.overflow = Some(Overflow::Target("sip:voicemail@pbx".into()));
    let r = run(
        routing(vec![q]),
        r#"
        duration_s = 3600
        [[arrivals]]
        queue = "support"
        rate_per_hour = 120
        handle = { dist = "fixed", s = 60 }
        [[agents]]
        count = 2
        tiers = { support = 1 }
        shifts = [ { login_s = 7200, logout_s = 9000 } ]
        "#,
    );
    let f = &r.overall;
    assert!(f.offered > 50);
    assert_eq!(f.answered, 0);
    assert_eq!(f.overflowed, f.offered);
    assert_eq!(f.queued, f.offered);
    assert_eq!(f.service_level, None);
    assert_eq!(r.queues[0].occupancy_by_tier[&1], None, "never staffed");
}

#[test]
fn an_overflow_between_queues_counts_in_both_but_once_overall() {
    let mut billing = QueueConfig::with_defaults("billing");
    billing.wrap_up_ms = 0;
    billing.max_wait_ms = Some(30_000);
    billing.overflow = Some(Overflow::Queue("support".into()));
    let r = run(
        routing(vec![billing, support(0)]),
        r#"
        duration_s = 7200
        [[arrivals]]
        queue = "billing"
        rate_per_hour = 60
        handle = { dist = "fixed", s = 30 }
        [[agents]]
        count = 2
        tiers = { support = 1 }
        "#,
    );
    let (billing, support) = (&r.queues[0].figures, &r.queues[1].figures);
    assert_eq!(billing.answered, 0);
    assert_eq!(billing.overflowed, billing.offered);
    assert_eq!(support.offered, billing.offered);
    assert_eq!(support.answered, support.offered);
    assert_eq!(r.overall.offered, billing.offered);
    assert_eq!(r.overall.overflowed, 0);
    assert_eq!(r.overall.answered, r.overall.offered);
}

#[test]
fn arrivals_without_a_queue_follow_the_routing_rules() {
    let mut config = routing(vec![support(0), QueueConfig::with_defaults("complaints")]);
    config.rules = vec![Rule {
        when: [("category".to_string(), "complaint".to_string())].into(),
        queue: "complaints".into(),
        priority: None,
    }];
    config.default_queue = Some("support".into());
    let r = run(
        config,
        r#"
        duration_s = 3600
        [[arrivals]]
        attributes = { category = "complaint" }
        rate_per_hour = 30
        handle = { dist = "fixed", s = 30 }
        [[agents]]
        count = 1
        tiers = { complaints = 1 }
        "#,
    );
    assert_eq!(r.queues[0].figures.offered, 0);
    assert!(r.queues[1].figures.offered > 0);
    assert_eq!(r.queues[1].figures.offered, r.overall.offered);
}

#[test]
fn per_agent_figures_come_only_when_asked_for_and_the_table_names_every_queue() {
    let r = run_with(
        routing(vec![support(10)]),
        SMALL_DAY,
        Options {
            seed: None,
            agents: false,
        },
    );
    assert!(r.agents.is_none());
    assert!(!r.to_json().contains("\"agents\""));
    let table = r.to_table();
    assert!(
        table.contains("support") && table.contains("overall"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
    assert_eq!(json["queues"][0]["queue"], "support");
    assert!(json["queues"][0]["service_level"].is_number());
    assert!(json["overall"]["wait_s"]["p90"].is_number());
}
