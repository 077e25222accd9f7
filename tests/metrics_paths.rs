//! The less travelled paths: overflows, rejections, agent escalations and transfers, reloads
//! (a queue drained into another, facts judged by the config they happened under, the gauges a
//! removed queue leaves), a not-ready reason change, unrouted arrivals, a restart over a recovered
//! engine, the daemon's helper series, and the `/metrics` listener itself.

mod metrics_support;

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_support::sample;
use tierline::config::daemon::MetricsConfig;
use tierline::config::{AgentConfig, Channel, Overflow, QueueConfig, RoutingConfig, Tier};
use tierline::engine::{Activity, Engine, Event, RequestedState};
use tierline::metrics::{self, DeliveryResult, Metrics, Telemetry};

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

/// Agent `id` serving each of `queues` at its tier.
fn agent_in(id: &str, queues: &[(&str, Tier)]) -> AgentConfig {
    AgentConfig {
        tiers: queues.iter().map(|(q, t)| (q.to_string(), *t)).collect(),
        ..agent(id, "", 1)
    }
}

/// An unrouted arrival (no queue named, no rule) whose `category` is `complaint`.
fn complaint(id: &str) -> Event {
    let category = BTreeMap::from([("category".to_string(), "complaint".to_string())]);
    arrive_with(id, None, category)
}

fn arrive(id: &str, queue: Option<&str>) -> Event {
    arrive_with(id, queue, BTreeMap::new())
}

fn arrive_with(id: &str, queue: Option<&str>, attributes: BTreeMap<String, String>) -> Event {
    Event::InteractionArrived {
        interaction: id.into(),
        channel: Channel::Voice,
        queue: queue.map(Into::into),
        priority: None,
        skills: vec![],
        customer: None,
        attributes,
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

/// A login that creates agent `a` (not in the roster) at L1 in queue `q`.
fn login_outside_roster(a: &str) -> Event {
    Event::AgentLogin {
        agent: a.into(),
        address: Some(format!("sip:{a}@pbx")),
        tiers: Some(BTreeMap::from([("q".to_string(), 1)])),
        skills: None,
        capacity: None,
    }
}

/// A caller whose call rings an agent still waits: the wallboard counts it as ringing and its
/// wait in the oldest wait (before, both read 0 while it rang, for as long as it was re-offered),
/// until it is answered. The stats endpoint says the same.
#[test]
fn a_ringing_call_counts_as_ringing_and_in_the_oldest_wait_until_answered() {
    let mut rig = Rig::new(desk());
    rig.at(0, login("a"));
    rig.at(2 * S, arrive("c1", Some("q")));
    assert_eq!(
        rig.engine.interaction("c1").unwrap().state,
        tierline::engine::InteractionState::Offered
    );
    let text = rig.text(7 * S);
    let lbl = [("queue", "q"), ("channel", "voice")];
    assert_eq!(sample(&text, "tierline_queue_waiting", &lbl), 0.0);
    assert_eq!(sample(&text, "tierline_queue_ringing", &lbl), 1.0);
    assert_eq!(
        sample(
            &text,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "q")]
        ),
        5.0
    );
    let stats = rig.telemetry.queue_stats("q", 60 * S, 7 * S).unwrap();
    assert_eq!(
        (stats.waiting, stats.ringing, stats.longest_wait_s),
        (0, 1, 5.0)
    );
    let view = rig.engine.queue("q").unwrap();
    assert_eq!(
        (view.waiting, view.ringing, view.oldest_entered_at),
        (0, 1, Some(2 * S))
    );
    rig.at(8 * S, accept("c1", "a"));
    let text = rig.text(9 * S);
    assert_eq!(sample(&text, "tierline_queue_ringing", &lbl), 0.0);
    assert_eq!(
        sample(
            &text,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "q")]
        ),
        0.0
    );
}

/// Queue `q` with agent `a` at L1.
fn desk() -> RoutingConfig {
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("q"));
    cfg.agents = vec![agent("a", "q", 1)];
    cfg
}

/// Queues `old` (which drains into `new` when a reload removes it) and `new`, no agents.
fn draining_desk() -> RoutingConfig {
    let mut old = QueueConfig::with_defaults("old");
    old.drain_to = Some("new".into());
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(old);
    cfg.queues.push(QueueConfig::with_defaults("new"));
    cfg
}

/// `cfg` without its first queue (`old` of `draining_desk`).
fn without_first_queue(cfg: &RoutingConfig) -> RoutingConfig {
    let mut next = cfg.clone();
    next.queues.remove(0);
    next
}

/// The daemon's restart over `engine` (recovered without facts, as `durable::recover` does):
/// a fresh telemetry started at `at`, as `EngineTask::new` does.
fn restarted(engine: &mut Engine, cfg: &RoutingConfig, at: u64) -> Telemetry {
    engine.set_record_facts(true);
    let metrics = Metrics::unserved(&MetricsConfig::default(), cfg).unwrap();
    let mut t = Telemetry::new(metrics, cfg, at);
    t.start(engine, at);
    t
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

    /// Let the clock run to `now`, firing every timer at its deadline.
    fn tick(&mut self, now: u64) {
        while let Some(d) = self.engine.next_deadline().filter(|d| *d <= now) {
            self.engine.advance(d);
            self.telemetry.observe(&mut self.engine, d);
        }
    }

    /// As the daemon does: facts so far, then the reload, then the new config and its facts.
    fn reload(&mut self, now: u64, next: RoutingConfig) {
        self.telemetry.observe(&mut self.engine, now);
        self.engine.reconfigure(now, next.clone()).unwrap();
        self.telemetry.on_config(&next);
        self.telemetry.observe(&mut self.engine, now);
    }

    fn text(&self, now: u64) -> String {
        self.telemetry.metrics().render_at(now)
    }
}

#[test]
fn an_interaction_that_waits_max_wait_overflows_and_is_counted_once() {
    let mut q = QueueConfig::with_defaults("sales");
    q.max_wait_ms = Some(60 * S);
    q.overflow = Some(Overflow::Target("voicemail".into()));
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(q);
    let mut rig = Rig::new(cfg);
    rig.at(0, arrive("c1", Some("sales")));
    rig.at(10 * S, arrive("c2", Some("sales")));
    let text = rig.text(30 * S);
    let lbl = [("queue", "sales"), ("channel", "voice")];
    assert_eq!(sample(&text, "tierline_queue_waiting", &lbl), 2.0);
    assert_eq!(
        sample(
            &text,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "sales")]
        ),
        30.0
    );
    rig.at(65 * S, arrive("c3", Some("sales")));
    let text = rig.text(65 * S);
    assert_eq!(
        sample(&text, "tierline_interactions_overflowed_total", &lbl),
        1.0
    );
    assert_eq!(sample(&text, "tierline_queue_waiting", &lbl), 2.0);
    assert_eq!(
        sample(
            &text,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "sales")]
        ),
        55.0,
        "c2 is now the oldest"
    );
    let stats = rig
        .telemetry
        .queue_stats("sales", 60 * 60 * S, 65 * S)
        .unwrap();
    assert_eq!((stats.counts.overflowed, stats.offered), (1, 3));
    assert_eq!(
        stats.service_level, None,
        "nothing answered or abandoned yet"
    );
}

/// After hours is not a full queue: a closed queue's refusals count under `reason="closed"`, so
/// an alert on `queue_full` does not fire every night.
#[test]
fn a_closed_queue_s_rejections_are_told_from_a_full_one_s() {
    let mut q = QueueConfig::with_defaults("night");
    // Open on no weekday.
    q.schedule = Some(tierline::config::Schedule {
        tz: chrono_tz::Europe::Berlin,
        open: Default::default(),
    });
    q.closed_target = Some("sip:voicemail@pbx".into());
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(q);
    let mut rig = Rig::new(cfg);
    rig.at(0, arrive("c1", Some("night")));
    rig.at(S, arrive("c2", Some("night")));
    let text = rig.text(S);
    let rejected = |r| {
        sample(
            &text,
            "tierline_interactions_rejected_total",
            &[("queue", "night"), ("channel", "voice"), ("reason", r)],
        )
    };
    assert_eq!((rejected("closed"), rejected("queue_full")), (2.0, 0.0));
}

/// `tierline_queue_open` follows the queue's schedule at each scrape, with no event in between:
/// open on Mondays only (Berlin), closed on the Thursday of engine time 0, open the Monday after;
/// a queue without a schedule is open; a queue a reload removed reads 0.
#[test]
fn the_open_gauge_follows_the_schedule_at_each_scrape() {
    const DAY: u64 = 86_400 * S;
    let mut mondays = QueueConfig::with_defaults("mondays");
    let mut open: [Vec<(u16, u16)>; 7] = Default::default();
    open[0] = vec![(0, 24 * 60)];
    mondays.schedule = Some(tierline::config::Schedule {
        tz: chrono_tz::Europe::Berlin,
        open,
    });
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(mondays);
    cfg.queues.push(QueueConfig::with_defaults("always"));
    let mut rig = Rig::new(cfg.clone());
    let open_at = |rig: &Rig, queue: &str, now: u64| {
        sample(&rig.text(now), "tierline_queue_open", &[("queue", queue)])
    };
    // 1970-01-01 was a Thursday; Monday the 5th, 12:00 in Berlin, is 11:00 UTC.
    let monday_noon = 4 * DAY + 11 * 3_600 * S;
    assert_eq!(open_at(&rig, "mondays", 0), 0.0);
    assert_eq!(open_at(&rig, "mondays", monday_noon), 1.0);
    assert_eq!(open_at(&rig, "always", monday_noon), 1.0);
    assert_eq!(open_at(&rig, "mondays", monday_noon + DAY), 0.0, "Tuesday");
    let mut without = cfg.clone();
    without.queues.remove(1);
    rig.reload(monday_noon + DAY, without);
    assert_eq!(open_at(&rig, "always", monday_noon + DAY), 0.0, "removed");
}

#[test]
fn rejections_are_counted_for_full_queues_and_unrouted_arrivals() {
    let mut q = QueueConfig::with_defaults("sales");
    q.max_waiting = Some(1);
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(q);
    let mut rig = Rig::new(cfg);
    rig.at(0, arrive("c1", Some("sales")));
    rig.at(S, arrive("c2", Some("sales")));
    rig.at(2 * S, arrive("c3", None));
    let text = rig.text(2 * S);
    let lbl = [("queue", "sales"), ("channel", "voice")];
    assert_eq!(
        sample(&text, "tierline_interactions_arrived_total", &lbl),
        2.0
    );
    let reason = |r| [("queue", "sales"), ("channel", "voice"), ("reason", r)];
    let rejected = |r| sample(&text, "tierline_interactions_rejected_total", &reason(r));
    assert_eq!((rejected("queue_full"), rejected("closed")), (1.0, 0.0));
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_rejected_total",
            &[("queue", ""), ("channel", "voice"), ("reason", "no_route")]
        ),
        1.0
    );
    let stats = rig.telemetry.queue_stats("sales", 60 * S, 2 * S).unwrap();
    assert_eq!(
        (stats.counts.arrived, stats.counts.rejected, stats.offered),
        (2, 1, 1)
    );
}

#[test]
fn an_agent_escalation_counts_for_the_queue_and_the_agent() {
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("tech"));
    cfg.agents = vec![agent("l1", "tech", 1), agent("l2", "tech", 2)];
    let mut rig = Rig::new(cfg);
    rig.at(0, login("l1"));
    rig.at(0, login("l2"));
    rig.at(S, arrive("c1", Some("tech")));
    rig.at(
        2 * S,
        Event::OfferAccepted {
            interaction: "c1".into(),
            agent: "l1".into(),
            offer: None,
        },
    );
    rig.at(
        20 * S,
        Event::InteractionEscalated {
            interaction: "c1".into(),
            min_tier: 2,
        },
    );
    rig.at(
        25 * S,
        Event::OfferAccepted {
            interaction: "c1".into(),
            agent: "l2".into(),
            offer: None,
        },
    );
    rig.tick(40 * S);
    let text = rig.text(40 * S);
    assert_eq!(
        sample(
            &text,
            "tierline_escalations_total",
            &[("queue", "tech"), ("step", "agent")]
        ),
        1.0
    );
    let l1 = rig.telemetry.agent_stats("l1", 0, 40 * S).unwrap();
    assert_eq!(l1.escalations, 1);
    // l1's slot went to wrap-up (10 s) at 20 s and freed at 30 s: 18 s connected + 10 s wrap-up.
    assert_eq!(l1.handled_total, 1);
    assert_eq!(l1.aht_s, Some(28.0));
    let stats = rig.telemetry.queue_stats("tech", 60 * S, 40 * S).unwrap();
    assert_eq!(
        (stats.offered, stats.counts.answered),
        (2, 2),
        "the escalation re-entered the queue"
    );
}

#[test]
fn a_reload_that_removes_a_queue_zeroes_its_gauges_but_keeps_its_totals() {
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("old"));
    cfg.queues.push(QueueConfig::with_defaults("new"));
    cfg.agents = vec![agent("a", "old", 1)];
    let mut rig = Rig::new(cfg.clone());
    rig.at(0, login("a"));
    rig.at(S, arrive("c1", Some("old")));
    rig.at(
        S,
        Event::OfferAccepted {
            interaction: "c1".into(),
            agent: "a".into(),
            offer: None,
        },
    );
    let mut next = cfg.clone();
    next.queues.remove(0);
    next.agents = vec![agent("a", "new", 1)];
    // Nothing waits in `old` (c1 is connected), so the engine allows the removal.
    rig.engine.reconfigure(2 * S, next.clone()).unwrap();
    rig.telemetry.on_config(&next);
    rig.telemetry.metrics().config_reload(true);
    rig.telemetry.observe(&mut rig.engine, 2 * S);
    let text = rig.text(2 * S);
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_arrived_total",
            &[("queue", "old"), ("channel", "voice")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_agents",
            &[("queue", "old"), ("tier", "1"), ("state", "busy")]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_agents",
            &[("queue", "new"), ("tier", "1"), ("state", "busy")]
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "tierline_config_reloads_total", &[("result", "ok")]),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_config_reloads_total",
            &[("result", "rejected")]
        ),
        0.0
    );
}

#[test]
fn the_daemon_helpers_record_requests_deliveries_and_build_info() {
    let cfg = RoutingConfig::empty();
    let m = Metrics::unserved(&MetricsConfig::default(), &cfg).unwrap();
    m.http_request("/v1/events", 202, Duration::from_micros(300));
    m.http_request("/v1/events", 202, Duration::from_micros(700));
    m.http_request("/v1/events", 422, Duration::from_millis(2));
    m.event_queue_depth(7);
    m.subscriber_delivery("pbx", DeliveryResult::Delivered);
    m.subscriber_delivery("pbx", DeliveryResult::Failed);
    m.timer_lateness(Duration::from_millis(3));
    m.journal_sync(Duration::from_micros(800));
    m.journal_sync(Duration::from_millis(30));
    let text = m.render_at(0);
    let req = |s| {
        sample(
            &text,
            "tierline_http_requests_total",
            &[("route", "/v1/events"), ("status", s)],
        )
    };
    assert_eq!((req("202"), req("422")), (2.0, 1.0));
    assert_eq!(
        sample(
            &text,
            "tierline_http_request_seconds_count",
            &[("route", "/v1/events")]
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_http_request_seconds_bucket",
            &[("route", "/v1/events"), ("le", "0.0005")]
        ),
        1.0
    );
    assert_eq!(sample(&text, "tierline_event_queue_depth", &[]), 7.0);
    assert_eq!(
        sample(
            &text,
            "tierline_subscriber_deliveries_total",
            &[("subscriber", "pbx"), ("result", "failed")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_timer_lateness_seconds_bucket",
            &[("le", "0.005")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_journal_sync_seconds_bucket",
            &[("le", "0.001")]
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "tierline_journal_sync_seconds_count", &[]),
        2.0
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        sample(&text, "tierline_build_info", &[("version", version)]),
        1.0
    );
    assert!(text.contains("# HELP tierline_http_requests_total "));
    assert!(
        text.contains("# TYPE tierline_wait_seconds histogram")
            || !text.contains("tierline_wait_seconds")
    );
}

#[test]
fn stats_windows_are_parsed_and_bounded() {
    use tierline::metrics::stats::parse_window;
    assert_eq!(parse_window("15m").unwrap(), 15 * 60 * S);
    assert_eq!(parse_window("2h").unwrap(), 2 * 3600 * S);
    assert_eq!(parse_window("120s").unwrap(), 120 * S);
    for bad in ["", "15", "m", "0m", "25h", "90s", "15 m", "-1m", "15d"] {
        let e = parse_window(bad).unwrap_err();
        assert_eq!(e.code(), "invalid_window", "{bad}");
        assert_eq!(e.http_status(), 422);
    }
}

/// not_ready "lunch" → not_ready "training": the time from the change on is billed to the new
/// reason, as the engine (and GET /v1/agents) shows it.
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

/// After a restart over an engine with agents logged in and busy, their stats follow the
/// engine's state from the restart on, not only from their next fact.
#[test]
fn after_a_restart_agent_stats_follow_the_recovered_engine_state() {
    let cfg = desk();
    let mut engine = Engine::new(cfg.clone(), 0);
    engine.handle(0, &login("a")).unwrap();
    engine.handle(0, &login_outside_roster("x")).unwrap();
    engine.handle(0, &arrive("c1", Some("q"))).unwrap();
    let who = match engine.interaction("c1").unwrap().owner {
        tierline::engine::view::Owner::Agent(a) => a.to_string(),
        other => panic!("c1 not offered: {other:?}"),
    };
    engine.handle(S, &accept("c1", &who)).unwrap();
    let restart = 100 * S;
    engine.advance(restart);
    let mut t = restarted(&mut engine, &cfg, restart);
    // First batch after the restart: someone else's event, nothing about the agents.
    engine.handle(restart, &arrive("c2", Some("q"))).unwrap();
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

/// After a restart, the gauges show what the recovered engine holds before any batch.
#[test]
fn gauges_reflect_the_recovered_engine_before_the_first_batch() {
    let cfg = desk();
    let mut engine = Engine::new(cfg.clone(), 0);
    engine.handle(0, &login("a")).unwrap();
    engine.handle(0, &arrive("c1", Some("q"))).unwrap();
    engine.handle(S, &accept("c1", "a")).unwrap();
    engine.handle(2 * S, &arrive("c2", Some("q"))).unwrap();
    let restart = 100 * S;
    let t = restarted(&mut engine, &cfg, restart);
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

/// Interactions a reload drains into another queue (`drain_to`) count as offered there, where
/// they are answered.
#[test]
fn interactions_drained_by_a_reload_are_offered_in_the_target() {
    let mut cfg = draining_desk();
    cfg.agents = vec![agent("a", "new", 1)];
    let mut rig = Rig::new(cfg.clone());
    rig.at(0, arrive("c1", Some("old")));
    rig.reload(S, without_first_queue(&cfg));
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

/// An agent logged in outside the roster before a restart has stats after it (the engine
/// knows it: GET /v1/agents/x is 200).
#[test]
fn after_a_restart_a_known_non_roster_agent_has_stats() {
    let cfg = desk();
    let mut engine = Engine::new(cfg.clone(), 0);
    engine.handle(0, &login_outside_roster("x")).unwrap();
    let restart = 100 * S;
    engine.advance(restart);
    let t = restarted(&mut engine, &cfg, restart);
    assert!(engine.agent("x").is_some());
    let s = t.agent_stats("x", restart, restart + 60 * S);
    assert!(
        s.as_ref().is_ok_and(|s| s.logged_in_s == 60.0),
        "engine: x available since before the restart; stats: {s:?}"
    );
}

/// Logged-in time adds its available and not-ready milliseconds before turning them into
/// seconds: 60.1 s + 0.508 s reads 60.608, not 60.608000000000004.
#[test]
fn logged_in_seconds_are_exact_milliseconds() {
    let mut rig = Rig::new(desk());
    rig.at(0, login("a"));
    rig.at(60_100, state("a", RequestedState::NotReady, Some("break")));
    rig.at(60_608, state("a", RequestedState::Offline, None));
    let s = rig.telemetry.agent_stats("a", 0, 70 * S).unwrap();
    assert_eq!(s.status_s["available"], 60.1);
    assert_eq!(s.status_s["not_ready"], 0.508);
    assert_eq!(s.logged_in_s.to_string(), "60.608");
}

#[tokio::test]
async fn install_serves_metrics_and_tolerates_a_second_daemon_in_the_process() {
    let mut cfg = RoutingConfig::empty();
    let mut q = QueueConfig::with_defaults("sales");
    q.sla_ms = 12_500;
    cfg.queues.push(q);
    let listen = MetricsConfig {
        listen: "127.0.0.1:0".into(),
        per_agent: false,
    };
    let first = metrics::install(&listen, &cfg).unwrap();
    let second = metrics::install(&listen, &cfg).unwrap();
    assert!(first.is_global() && !second.is_global());
    let mut telemetry = Telemetry::new(second.clone(), &cfg, 0);
    telemetry.on_facts(&[]);
    second.http_request("/v1/events", 202, Duration::from_millis(1));

    let get = |addr: std::net::SocketAddr, path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let body = get(second.local_addr().unwrap(), "/metrics").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("text/plain; version=0.0.4"));
    assert!(body.contains("tierline_http_requests_total{route=\"/v1/events\",status=\"202\"} 1"));
    assert!(body.contains("tierline_queue_sla_seconds{queue=\"sales\"} 12.5"));
    let other = get(first.local_addr().unwrap(), "/metrics").await;
    assert!(
        !other.contains("tierline_http_requests_total{"),
        "each daemon has its own recorder"
    );
    let missing = get(second.local_addr().unwrap(), "/nope").await;
    assert!(missing.starts_with("HTTP/1.1 404"));
    assert!(
        missing.contains(r#"{"error":{"code":"not_found","message":"#),
        "{missing}"
    );

    let taken = MetricsConfig {
        listen: second.local_addr().unwrap().to_string(),
        per_agent: false,
    };
    let err = metrics::install(&taken, &cfg)
        .err()
        .expect("the port is taken");
    assert!(
        err.to_string().contains("cannot listen for /metrics on"),
        "{err}"
    );
    let bad = MetricsConfig {
        listen: "localhost".into(),
        per_agent: false,
    };
    assert!(metrics::install(&bad, &cfg)
        .err()
        .unwrap()
        .to_string()
        .contains("not a socket address"));
}

/// A reload removes `old` (drain_to = "new") while one call is connected to an agent and another
/// waits. The waiting one enters `new` to wait there, so `new` counts it as offered; the connected
/// one was answered in `old` and never waits in `new`: it is not offered there again. When it
/// ends, it ends in `new`, the queue it now belongs to.
#[test]
fn a_reload_drain_offers_the_target_only_what_still_waits() {
    let mut cfg = draining_desk();
    cfg.agents = vec![agent_in("a", &[("old", 1), ("new", 1)])];
    let mut rig = Rig::new(cfg.clone());
    rig.at(0, login("a"));
    rig.at(S, arrive("c1", Some("old")));
    rig.at(2 * S, accept("c1", "a"));
    rig.at(2 * S, arrive("c2", Some("old")));
    let mut next = without_first_queue(&cfg);
    next.agents = vec![agent_in("a", &[("new", 1)])];
    rig.reload(3 * S, next);
    let s = rig.telemetry.queue_stats("new", 60 * S, 3 * S).unwrap();
    assert_eq!(
        (s.offered, s.counts.arrived, s.counts.answered, s.waiting),
        (1, 0, 0, 1),
        "only c2 (waiting) is offered in `new`"
    );
    rig.at(
        4 * S,
        Event::InteractionEnded {
            interaction: "c1".into(),
            resolved: Some(true),
        },
    );
    let text = rig.text(4 * S);
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_ended_total",
            &[("queue", "new")]
        ),
        1.0
    );
}

/// An unrouted arrival (queue "") with category = complaint counts in
/// tierline_interactions_arrived_total{queue=""}, the denominator of the wallboard's complaint
/// share with queue = All, so it counts as a complaint there too.
#[test]
fn an_unrouted_complaint_is_counted_as_a_complaint() {
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("sales"));
    let mut rig = Rig::new(cfg);
    rig.at(S, complaint("c1"));
    let text = rig.text(S);
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_arrived_total",
            &[("queue", ""), ("channel", "voice")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_complaints_total",
            &[("queue", ""), ("channel", "voice")]
        ),
        1.0
    );
}

/// A removed queue keeps its series: the state gauges drop to 0 (nothing waits there any more,
/// whatever the clock says at scrape time); the configuration gauges keep the last configured
/// value, so SLA ratios over a window spanning the removal stay defined.
#[test]
fn a_removed_queue_s_state_gauges_drop_to_zero_and_its_sla_stays() {
    let mut cfg = draining_desk();
    cfg.queues[0].sla_ms = 20_000;
    let mut rig = Rig::new(cfg.clone());
    rig.at(S, arrive("c1", Some("old")));
    let before = rig.text(5 * S);
    assert_eq!(
        sample(
            &before,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "old")]
        ),
        4.0
    );
    rig.reload(6 * S, without_first_queue(&cfg));
    let text = rig.text(10 * S);
    let waiting = sample(
        &text,
        "tierline_queue_waiting",
        &[("queue", "old"), ("channel", "voice")],
    );
    let oldest = sample(
        &text,
        "tierline_queue_oldest_wait_seconds",
        &[("queue", "old")],
    );
    let sla = sample(&text, "tierline_queue_sla_seconds", &[("queue", "old")]);
    assert_eq!((waiting, oldest, sla), (0.0, 0.0, 20.0));
    assert_eq!(
        sample(
            &text,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "new")]
        ),
        9.0,
        "c1 waits in `new` now, since it arrived"
    );
}

/// Bucket bounds are fixed when the recorder is built: a queue added by a reload whose `sla_s` is
/// not one of them is logged as a warning.
#[test]
fn a_queue_added_by_a_reload_with_a_new_sla_is_warned_about() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("sales")); // sla 30 s (a default bucket)
    let metrics = Metrics::unserved(&MetricsConfig::default(), &cfg).unwrap();
    let mut telemetry = Telemetry::new(metrics.clone(), &cfg, 0);
    let mut next = cfg.clone();
    let mut odd = QueueConfig::with_defaults("odd");
    odd.sla_ms = 37_500; // not a bucket bound of the recorder built at startup
    next.queues.push(odd);
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!("capture-probe");
        telemetry.on_config(&next)
    });
    let text = metrics.render_at(0);
    assert!(
        !text.contains("le=\"37.5\""),
        "precondition: 37.5 is not a bucket bound"
    );
    let logged = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("capture-probe"), "log capture works");
    assert!(
        logged.contains("sla_s is not a bucket bound"),
        "no warning for queue `odd` (sla_s 37.5 not a bucket); log: {logged:?}"
    );
}

/// The unrouted series (queue "") exist at 0 before the first unrouted arrival, on every channel,
/// like a configured queue's: `increase()` over a window sees the first no-route refusal.
#[test]
fn unrouted_series_exist_at_zero_from_the_start() {
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(QueueConfig::with_defaults("sales"));
    let rig = Rig::new(cfg);
    let text = rig.text(0);
    for channel in ["voice", "chat", "email", "callback"] {
        let l = [("queue", ""), ("channel", channel)];
        for name in [
            "tierline_interactions_arrived_total",
            "tierline_complaints_total",
        ] {
            assert_eq!(sample(&text, name, &l), 0.0, "{name} {l:?}");
        }
        let no_route = [("queue", ""), ("channel", channel), ("reason", "no_route")];
        assert_eq!(
            sample(&text, "tierline_interactions_rejected_total", &no_route),
            0.0
        );
    }
}

/// An agent who signs off during a call keeps it: its time is busy, then wrap-up, until they
/// end, and only then offline, in its stats, the wallboard's headcount and the centre's agent
/// seconds alike (occupancy counts the handling).
#[test]
fn an_agent_signed_off_during_a_call_is_busy_then_wrap_up_until_they_end() {
    let mut cfg = desk();
    cfg.queues[0].wrap_up_ms = 2 * S;
    let mut rig = Rig::new(cfg);
    rig.at(0, login("a"));
    rig.at(0, arrive("c1", Some("q")));
    rig.at(S, accept("c1", "a"));
    rig.at(3 * S, Event::AgentLogout { agent: "a".into() });
    let agents = |rig: &Rig, now, state| {
        sample(
            &rig.text(now),
            "tierline_agents",
            &[("queue", "q"), ("tier", "1"), ("state", state)],
        )
    };
    assert_eq!(agents(&rig, 5 * S, "busy"), 1.0);
    assert_eq!(agents(&rig, 5 * S, "offline"), 0.0);
    rig.at(
        7 * S,
        Event::InteractionEnded {
            interaction: "c1".into(),
            resolved: Some(true),
        },
    );
    assert_eq!(agents(&rig, 8 * S, "wrap_up"), 1.0);
    rig.tick(10 * S);
    assert_eq!(agents(&rig, 10 * S, "offline"), 1.0);
    let s = rig.telemetry.agent_stats("a", 0, 12 * S).unwrap();
    let secs = |state: &str| s.activity_s.get(state).copied().unwrap_or(0.0);
    assert_eq!(
        (
            secs("offered"),
            secs("busy"),
            secs("wrap_up"),
            secs("offline")
        ),
        (1.0, 6.0, 2.0, 3.0),
        "{:?}",
        s.activity_s
    );
    let centre = |state: &str| {
        sample(
            &rig.text(12 * S),
            "tierline_centre_agent_state_seconds_total",
            &[("state", state)],
        )
    };
    assert_eq!((centre("busy"), centre("wrap_up")), (6.0, 2.0));
}

/// An agent's stats begin when tierline first knew it: a login outside the roster at its
/// login, a roster agent added by a config change at that change; neither gets offline time
/// from before it existed. A roster agent of the start is known (offline) from the start.
#[test]
fn an_agents_stats_begin_when_it_first_existed() {
    let mut rig = Rig::new(desk());
    rig.at(9 * S, login_outside_roster("zz"));
    let s = rig.telemetry.agent_stats("zz", 0, 20 * S).unwrap();
    let secs = |s: &tierline::metrics::stats::AgentStats, state: &str| {
        s.status_s.get(state).copied().unwrap_or(0.0)
    };
    assert_eq!(s.from, 9 * S);
    assert_eq!((secs(&s, "offline"), secs(&s, "available")), (0.0, 11.0));
    let mut more = desk();
    more.agents.push(agent("b", "q", 1));
    rig.reload(12 * S, more);
    let s = rig.telemetry.agent_stats("b", 0, 20 * S).unwrap();
    assert_eq!((s.from, secs(&s, "offline")), (12 * S, 8.0));
    // Left out of the roster, b stays known (as in the engine); added back, it keeps its start.
    rig.reload(21 * S, desk());
    let s = rig.telemetry.agent_stats("b", 0, 22 * S).unwrap();
    assert_eq!((s.from, secs(&s, "offline")), (12 * S, 10.0));
    let mut again = desk();
    again.agents.push(agent("b", "q", 1));
    rig.reload(23 * S, again);
    let s = rig.telemetry.agent_stats("b", 0, 24 * S).unwrap();
    assert_eq!((s.from, secs(&s, "offline")), (12 * S, 12.0));
    let s = rig.telemetry.agent_stats("a", 0, 20 * S).unwrap();
    assert_eq!((s.from, secs(&s, "offline")), (0, 20.0));
}
