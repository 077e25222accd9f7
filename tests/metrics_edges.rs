//! Metric edge cases found in review, each against docs/METRICS.md: an agent offline since start
//! shows `offline` = 1 (not 0 in every state), and a config reload does not count again a ladder
//! step an interaction had reached by `skip_if_no_agents`.

mod metrics_support;

use std::collections::BTreeMap;

use metrics_support::day::agent;
use metrics_support::sample;
use tierline::config::daemon::MetricsConfig;
use tierline::config::{Channel, QueueConfig, RoutingConfig, Step};
use tierline::engine::{Engine, Event};
use tierline::metrics::{Metrics, Telemetry};

const S: u64 = 1000;
const STATES: [&str; 6] = [
    "available",
    "offered",
    "busy",
    "wrap_up",
    "not_ready",
    "offline",
];

/// An engine recording facts and its telemetry, started as `EngineTask::new` starts them.
fn rig(cfg: &RoutingConfig, per_agent: bool) -> (Engine, Telemetry) {
    let mc = MetricsConfig {
        per_agent,
        ..MetricsConfig::default()
    };
    let metrics = Metrics::unserved(&mc, cfg).unwrap();
    let mut engine = Engine::new(cfg.clone(), 0);
    engine.set_record_facts(true);
    let mut telemetry = Telemetry::new(metrics, cfg, 0);
    telemetry.start(&mut engine, 0);
    (engine, telemetry)
}

/// docs/METRICS.md: `tierline_agent_activity` is "1 for the current state".
#[test]
fn an_agent_offline_since_start_shows_1_for_offline_and_0_for_the_rest() {
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("q"));
    cfg.agents = vec![agent("a", &[("q", 1)]), agent("b", &[("q", 1)])];
    let (mut engine, mut telemetry) = rig(&cfg, true);
    let login = Event::AgentLogin {
        agent: "b".into(),
        address: None,
        tiers: None,
        skills: None,
        capacity: None,
    };
    engine.handle(S, &login).unwrap();
    telemetry.observe(&mut engine, S);
    let text = telemetry.metrics().render_at(S);
    let shown = |agent: &str| -> Vec<f64> {
        STATES
            .iter()
            .map(|s| {
                sample(
                    &text,
                    "tierline_agent_activity",
                    &[("agent", agent), ("state", s)],
                )
            })
            .collect()
    };
    assert_eq!(
        shown("a"),
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        "a never logged in"
    );
    assert_eq!(shown("b"), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0], "b logged in");
}

/// c1 skips straight to step 1 (no L1 logged in, `skip_if_no_agents`). A reload that only
/// retimes step 1 (60 s → 90 s) leaves it on step 1: `tierline_escalations_total{step="1"}`
/// stays 1 and no second `escalated` decision goes out.
#[test]
fn a_reload_does_not_count_again_a_step_reached_by_skipping() {
    let mut q = QueueConfig::with_defaults("q");
    let mut first = Step::new(0, &[1]);
    first.skip_if_no_agents = true;
    q.steps = vec![first, Step::new(60 * S, &[1, 2])];
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(q);
    cfg.agents = vec![agent("l1", &[("q", 1)]), agent("l2", &[("q", 2)])];
    let (mut engine, mut telemetry) = rig(&cfg, false);
    let arrival = Event::InteractionArrived {
        interaction: "c1".into(),
        channel: Channel::Voice,
        queue: Some("q".into()),
        priority: None,
        skills: vec![],
        customer: None,
        attributes: BTreeMap::new(),
    };
    engine.handle(0, &arrival).unwrap();
    telemetry.observe(&mut engine, 0);
    let step1 = |t: &Telemetry, now| {
        sample(
            &t.metrics().render_at(now),
            "tierline_escalations_total",
            &[("queue", "q"), ("step", "1")],
        )
    };
    assert_eq!(step1(&telemetry, 0), 1.0);
    assert_eq!(engine.interaction("c1").unwrap().step, Some(1));

    // The daemon's reload: facts so far, the change, the new config, its facts.
    let mut next = cfg.clone();
    next.queues[0].steps[1].after_ms = 90 * S;
    telemetry.observe(&mut engine, 10 * S);
    let decisions = engine.reconfigure(10 * S, next.clone()).unwrap();
    telemetry.on_config(&next);
    telemetry.observe(&mut engine, 10 * S);

    assert!(decisions.is_empty(), "the reload decided {decisions:?}");
    assert_eq!(
        engine.interaction("c1").unwrap().step,
        Some(1),
        "still on step 1"
    );
    assert_eq!(step1(&telemetry, 10 * S), 1.0, "c1 reached step 1 once");
}

/// `tierline_offers_total{result}` tells the agent's refusal (`declined`) from the PBX's busy
/// phone (`busy`) and a phone that rang out (`no_answer`, as the Kamailio adapter reports every
/// ring timeout): all three were `declined`, so the wallboard's no-answers showed as refusals.
#[test]
fn offer_results_tell_a_refusal_from_a_busy_phone_and_a_ring_out() {
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("q"));
    let names = ["a", "b", "c"];
    cfg.agents = names.iter().map(|n| agent(n, &[("q", 1)])).collect();
    let (mut engine, mut telemetry) = rig(&cfg, false);
    let mut now = S;
    for (n, reason) in names.iter().zip([
        tierline::engine::DeclineReason::Rejected,
        tierline::engine::DeclineReason::Busy,
        tierline::engine::DeclineReason::NoAnswer,
    ]) {
        let login = Event::AgentLogin {
            agent: n.to_string(),
            address: None,
            tiers: None,
            skills: None,
            capacity: None,
        };
        engine.handle(now, &login).unwrap();
        let call = format!("call-{n}");
        let arrival = Event::InteractionArrived {
            interaction: call.clone(),
            channel: Channel::Voice,
            queue: Some("q".into()),
            priority: None,
            skills: Vec::new(),
            customer: None,
            attributes: Default::default(),
        };
        engine.handle(now, &arrival).unwrap();
        let declined = Event::OfferDeclined {
            interaction: call.clone(),
            agent: n.to_string(),
            reason,
            offer: None,
        };
        engine.handle(now, &declined).unwrap();
        // Gone, so the next agent's offer is the next call.
        let gone = Event::InteractionAbandoned { interaction: call };
        engine.handle(now, &gone).unwrap();
        telemetry.observe(&mut engine, now);
        now += S;
    }
    let text = telemetry.metrics().render_at(now);
    let offers = |result| {
        sample(
            &text,
            "tierline_offers_total",
            &[("queue", "q"), ("result", result)],
        )
    };
    assert_eq!(
        ["declined", "busy", "no_answer", "timed_out"].map(offers),
        [1.0, 1.0, 1.0, 0.0]
    );
}
