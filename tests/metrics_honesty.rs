//! Metrics that must tell the truth in the less travelled paths: a restart over a recovered
//! engine (gauges and agent stats follow its state from the first moment), a not-ready reason
//! changed without a status change, a config change in the same batch as earlier facts, and
//! interactions a reload drains into another queue. Each test failed before its fix.

mod metrics_support;

use std::collections::BTreeMap;

use metrics_support::sample;
use tierline::config::daemon::MetricsConfig;
use tierline::config::{AgentConfig, Channel, QueueConfig, RoutingConfig, Tier};
use tierline::engine::{Activity, Engine, Event, RequestedState};
use tierline::metrics::{Metrics, Telemetry};

const S: u64 = 1000;

fn agent(id: &str, queue: &str, tier: Tier) -> AgentConfig {
    AgentConfig {
        id: id.into(),
        address: format!("sip:{id}@pbx"),
        tiers: BTreeMap::from([(queue.to_string(), tier)]),
        skills: vec![],
        capacity: BTreeMap::new(),
    }
}

fn arrive(id: &str, queue: &str) -> Event {
    Event::InteractionArrived {
        interaction: id.into(),
        channel: Channel::Voice,
        queue: Some(queue.into()),
        priority: None,
        skills: vec![],
        customer: None,
        attributes: BTreeMap::new(),
    }
}

fn login(a: &str) -> Event {
    Event::AgentLogin {
        agent: a.into(),
        address: None,
        tiers: None,
        skills: None,
        capacity: None,
    }
}

fn state(a: &str, s: RequestedState, reason: Option<&str>) -> Event {
    Event::AgentState {
        agent: a.into(),
        state: s,
        reason: reason.map(Into::into),
    }
}

fn accept(i: &str, a: &str) -> Event {
    Event::OfferAccepted {
        interaction: i.into(),
        agent: a.into(),
        offer: None,
    }
}

struct Rig {
    engine: Engine,
    telemetry: Telemetry,
}

impl Rig {
    fn new(cfg: RoutingConfig) -> Rig {
        let metrics = Metrics::unserved(&MetricsConfig::default(), &cfg).unwrap();
        let mut engine = Engine::new(cfg.clone(), 0);
        engine.set_record_facts(true);
        let telemetry = Telemetry::new(metrics, &cfg, 0);
        Rig { engine, telemetry }
    }
    fn at(&mut self, now: u64, event: Event) {
        while let Some(d) = self.engine.next_deadline().filter(|d| *d <= now) {
            self.engine.advance(d);
            self.telemetry.observe(&mut self.engine, d);
        }
        self.engine.handle(now, &event).unwrap();
        self.telemetry.observe(&mut self.engine, now);
    }
}

fn desk() -> RoutingConfig {
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("q"));
    cfg.agents = vec![agent("a", "q", 1)];
    cfg
}

/// not_ready "lunch" → not_ready "training": the engine takes the new reason (GET /v1/agents
/// shows it) but emits no fact, so the ledger bills the training hour to lunch.
#[test]
fn a_not_ready_reason_change_is_billed_to_the_new_reason() {
    let mut rig = Rig::new(desk());
    rig.at(0, login("a"));
    rig.at(60 * S, state("a", RequestedState::NotReady, Some("lunch")));
    rig.at(
        120 * S,
        state("a", RequestedState::NotReady, Some("training")),
    );
    assert_eq!(
        rig.engine.agent("a").unwrap().reason.as_deref(),
        Some("training"),
        "the engine has the new reason"
    );
    rig.at(180 * S, state("a", RequestedState::Available, None));
    let s = rig.telemetry.agent_stats("a", 0, 180 * S).unwrap();
    assert_eq!(
        s.not_ready_reasons_s,
        BTreeMap::from([("lunch".to_string(), 60.0), ("training".to_string(), 60.0)]),
    );
}

/// The daemon builds `Telemetry` after journal recovery over an engine that already has
/// agents logged in and busy. Their ledgers start "offline" and stay so until their next fact.
#[test]
fn after_a_restart_agent_stats_follow_the_recovered_engine_state() {
    let cfg = desk();
    // Recovered state (replayed without facts, as durable::recover does).
    let mut engine = Engine::new(cfg.clone(), 0);
    engine.handle(0, &login("a")).unwrap();
    engine
        .handle(
            0,
            &Event::AgentLogin {
                agent: "x".into(),
                address: Some("sip:x@pbx".into()),
                tiers: Some(BTreeMap::from([("q".to_string(), 1)])),
                skills: None,
                capacity: None,
            },
        )
        .unwrap();
    engine.handle(0, &arrive("c1", "q")).unwrap();
    let who = match engine.interaction("c1").unwrap().owner {
        tierline::engine::view::Owner::Agent(a) => a.to_string(),
        other => panic!("c1 not offered: {other:?}"),
    };
    engine.handle(S, &accept("c1", &who)).unwrap();
    // Restart at 100 s: telemetry starts over the recovered engine (EngineTask::new).
    let restart = 100 * S;
    engine.advance(restart);
    engine.set_record_facts(true);
    let metrics = Metrics::unserved(&MetricsConfig::default(), &cfg).unwrap();
    let mut t = Telemetry::new(metrics, &cfg, restart);
    t.start(&mut engine, restart);
    // First batch after the restart: someone else's event, nothing about the agents.
    engine.handle(restart, &arrive("c2", "q")).unwrap();
    t.observe(&mut engine, restart);
    let now = restart + 60 * S;
    assert_eq!(engine.agent(&who).unwrap().activity, Activity::Busy);
    let s = t
        .agent_stats(&who, restart, now)
        .expect("the engine knows this agent");
    assert_eq!(
        (s.logged_in_s, s.activity_s["busy"]),
        (60.0, 60.0),
        "engine says {who} has been busy since the restart; stats say {:?}",
        s.activity_s
    );
}

/// Before the first batch after a (re)start the gauges read 0 even though the recovered engine
/// has interactions waiting and agents logged in.
#[test]
fn gauges_reflect_the_recovered_engine_before_the_first_batch() {
    let cfg = desk();
    let mut engine = Engine::new(cfg.clone(), 0);
    engine.handle(0, &login("a")).unwrap();
    engine.handle(0, &arrive("c1", "q")).unwrap();
    engine.handle(S, &accept("c1", "a")).unwrap();
    engine.handle(2 * S, &arrive("c2", "q")).unwrap();
    let restart = 100 * S;
    engine.set_record_facts(true);
    let metrics = Metrics::unserved(&MetricsConfig::default(), &cfg).unwrap();
    let mut t = Telemetry::new(metrics, &cfg, restart);
    t.start(&mut engine, restart);
    let text = t.metrics().render_at(restart);
    assert_eq!(engine.queue("q").unwrap().waiting, 1);
    assert_eq!(
        sample(
            &text,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "q")]
        ),
        98.0,
        "{text}"
    );
}

/// A reload that removes a queue with `drain_to` moves its waiting interactions into the target
/// without any fact: the target answers them but never counted them as offered.
#[test]
fn interactions_drained_by_a_reload_are_offered_in_the_target() {
    let mut old = QueueConfig::with_defaults("old");
    old.drain_to = Some("new".into());
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(old);
    cfg.queues.push(QueueConfig::with_defaults("new"));
    cfg.agents = vec![agent("a", "new", 1)];
    let mut rig = Rig::new(cfg.clone());
    rig.at(0, arrive("c1", "old"));
    let mut next = cfg.clone();
    next.queues.remove(0);
    rig.engine.reconfigure(S, next.clone()).unwrap();
    rig.telemetry.on_config(&next);
    rig.telemetry.observe(&mut rig.engine, S);
    rig.at(2 * S, login("a"));
    rig.at(3 * S, accept("c1", "a"));
    let s = rig.telemetry.queue_stats("new", 60 * S, 3 * S).unwrap();
    assert_eq!(s.counts.answered, 1);
    assert!(
        s.offered >= s.counts.answered,
        "offered {} < answered {}",
        s.offered,
        s.counts.answered
    );
}

/// An agent who logged in with an address (not in the roster) before a restart: the engine
/// knows it (GET /v1/agents/x is 200) but its stats are 404 until its next fact.
#[test]
fn after_a_restart_a_known_non_roster_agent_has_stats() {
    let cfg = desk();
    let mut engine = Engine::new(cfg.clone(), 0);
    engine
        .handle(
            0,
            &Event::AgentLogin {
                agent: "x".into(),
                address: Some("sip:x@pbx".into()),
                tiers: Some(BTreeMap::from([("q".to_string(), 1)])),
                skills: None,
                capacity: None,
            },
        )
        .unwrap();
    let restart = 100 * S;
    engine.advance(restart);
    engine.set_record_facts(true);
    let metrics = Metrics::unserved(&MetricsConfig::default(), &cfg).unwrap();
    let mut t = Telemetry::new(metrics, &cfg, restart);
    t.start(&mut engine, restart);
    assert!(engine.agent("x").is_some());
    let s = t.agent_stats("x", restart, restart + 60 * S);
    assert!(
        s.as_ref().is_ok_and(|s| s.logged_in_s == 60.0),
        "engine: x available since before the restart; stats: {s:?}"
    );
}
