//! A contact-centre day in miniature, shared by the metrics tests and `examples/day_driver.rs`
//! (which `scripts/e2e-prometheus.sh` uses to drive the real daemon over HTTP while a real
//! Prometheus scrapes it). `config_toml` is the same routing as a config file (a test checks
//! they parse equal) and `api_events` the same events as `POST /v1/events` bodies.
//!
//! Two queues, five agents. Every time below is in scenario units: the tests run it with
//! 1 unit = 1 s, the e2e with 1 unit = 100 ms so the day lasts 40 s of wall time. Counts do not
//! depend on the unit; times scale with it.
//!
//! billing (voice + chat, SLA 20, short abandon 5, wrap-up 10, L1 at 0, L1+L2 at 30):
//!   b1 voice 10 → ann offered 10, accepts 14 (wait 4, in SLA), ends 60 resolved, wrap to 70,
//!      rated 5 at 75.
//!   b2 voice 12 → waits (ann busy, bob is L2); step 1 at 42 → bob; accepts 45 (wait 33, out of
//!      SLA); ends 105 unresolved, wrap to 115; rated 3 at 120.
//!   b3 chat 20 → waits (ann holds an exclusive voice call); abandons 23 (wait 3: short).
//!   b4 chat 30 → waits; abandons 40 (wait 10).
//!   b5 voice 130, category complaint → ann offered 130, declines (rejected) 132, back-off 5;
//!      re-offered 137, accepts 140 (wait 10, in SLA); ends 150 resolved, wrap to 160.
//! support (voice, SLA 30, wrap-up 5, L1 at 0, L1+L2 at 20, overflow after 120):
//!   eve logs in and goes not_ready (training) at 0.
//!   s1 voice 200 → cat offered 200, no answer: expires 215; step 1 at 220 → dan; accepts 225
//!      (wait 25, in SLA); ends 260 resolved, wrap to 265; rated 4 at 270.
//!   dan goes not_ready (lunch) at 280.
//!   s2 voice 300 → cat offered 300, accepts 302 (wait 2); ends 320 (no resolution), wrap to 325.
//!   s3 voice 330 → cat offered 330, accepts 331 (wait 1); still connected at the end.
//!   s4 voice 340 → waits (cat busy, eve and dan not ready); step 1 at 360; still waiting at end.
//!   s5 voice 350 → waits; step 1 at 370; abandons 380 (wait 30).
//! The day ends at 400.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use tierline::config::{AgentConfig, Channel, Millis, QueueConfig, RoutingConfig, Step};
use tierline::engine::{Decision, DeclineReason, Engine, EngineError, Event, RequestedState};
use tierline::metrics::{Metrics, Telemetry};

/// Scenario units until the day ends.
pub const DAY_END: u64 = 400;

fn step(after: u64, tiers: &[u8], unit: Millis) -> Step {
    Step::new(after * unit, tiers)
}

pub fn agent(id: &str, tiers: &[(&str, u8)]) -> AgentConfig {
    AgentConfig {
        id: id.into(),
        address: format!("sip:{id}@pbx"),
        tiers: tiers.iter().map(|(q, t)| (q.to_string(), *t)).collect(),
        skills: vec![],
        capacity: BTreeMap::new(),
    }
}

/// The day's routing config with `unit` milliseconds per scenario unit.
pub fn config(unit: Millis) -> RoutingConfig {
    let mut billing = QueueConfig::with_defaults("billing");
    billing.channels = vec![Channel::Voice, Channel::Chat];
    billing.sla_ms = 20 * unit;
    billing.short_abandon_ms = 5 * unit;
    billing.wrap_up_ms = 10 * unit;
    billing.offer_timeout_ms = 15 * unit;
    billing.reject_delay_ms = 5 * unit;
    billing.busy_delay_ms = 10 * unit;
    billing.no_answer_delay_ms = 10 * unit;
    billing.steps = vec![step(0, &[1], unit), step(30, &[1, 2], unit)];

    let mut support = QueueConfig::with_defaults("support");
    support.sla_ms = 30 * unit;
    support.short_abandon_ms = 5 * unit;
    support.wrap_up_ms = 5 * unit;
    support.offer_timeout_ms = 15 * unit;
    support.reject_delay_ms = 5 * unit;
    support.busy_delay_ms = 10 * unit;
    support.no_answer_delay_ms = 10 * unit;
    support.steps = vec![step(0, &[1], unit), step(20, &[1, 2], unit)];
    support.max_wait_ms = Some(120 * unit);
    support.overflow = Some(tierline::config::Overflow::Target("voicemail".into()));

    let mut cfg = RoutingConfig::empty();
    cfg.queues = vec![billing, support];
    cfg.agents = vec![
        agent("ann", &[("billing", 1)]),
        agent("bob", &[("billing", 2)]),
        agent("cat", &[("support", 1)]),
        agent("dan", &[("support", 2)]),
        agent("eve", &[("support", 1)]),
    ];
    cfg
}

/// Seconds for a `_s` field of the config file.
fn secs(ms: Millis) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// `config(unit)` as a config file, with support's `max_wait_s` at `support_max_wait` units
/// (the day's own value is 120) and `daemon` (the `[server]`, `[metrics]`, `[[subscriber]]`
/// sections, or nothing) appended.
pub fn config_toml(unit: Millis, support_max_wait: u64, daemon: &str) -> String {
    let s = |units: u64| secs(units * unit);
    format!(
        r#"# The day in miniature (tests/metrics_support/day.rs), 1 unit = {unit} ms.
[[queue]]
id = "billing"
channels = ["voice", "chat"]
sla_s = {b_sla}
short_abandon_s = {five}
wrap_up_s = {ten}
offer_timeout_s = {fifteen}
reject_delay_s = {five}
busy_delay_s = {ten}
no_answer_delay_s = {ten}
steps = [{{ after_s = 0, tiers = [1] }}, {{ after_s = {thirty}, tiers = [1, 2] }}]

[[queue]]
id = "support"
channels = ["voice"]
sla_s = {thirty}
short_abandon_s = {five}
wrap_up_s = {five}
offer_timeout_s = {fifteen}
reject_delay_s = {five}
busy_delay_s = {ten}
no_answer_delay_s = {ten}
steps = [{{ after_s = 0, tiers = [1] }}, {{ after_s = {twenty}, tiers = [1, 2] }}]
max_wait_s = {max_wait}
overflow = {{ target = "voicemail" }}

[[agent]]
id = "ann"
address = "sip:ann@pbx"
tiers = {{ billing = 1 }}

[[agent]]
id = "bob"
address = "sip:bob@pbx"
tiers = {{ billing = 2 }}

[[agent]]
id = "cat"
address = "sip:cat@pbx"
tiers = {{ support = 1 }}

[[agent]]
id = "dan"
address = "sip:dan@pbx"
tiers = {{ support = 2 }}

[[agent]]
id = "eve"
address = "sip:eve@pbx"
tiers = {{ support = 1 }}

{daemon}"#,
        b_sla = s(20),
        five = s(5),
        ten = s(10),
        fifteen = s(15),
        twenty = s(20),
        thirty = s(30),
        max_wait = s(support_max_wait),
    )
}

/// The day's events as `POST /v1/events` bodies, `(time in scenario units, body)`; ids are
/// `day-1`, `day-2`… in order.
pub fn api_events() -> Vec<(u64, serde_json::Value)> {
    events()
        .into_iter()
        .enumerate()
        .map(|(i, (t, event))| {
            let mut body = serde_json::to_value(&event).expect("events serialize");
            body["id"] = serde_json::Value::String(format!("day-{}", i + 1));
            (t, body)
        })
        .collect()
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

fn not_ready(a: &str, reason: &str) -> Event {
    Event::AgentState {
        agent: a.into(),
        state: RequestedState::NotReady,
        reason: Some(reason.into()),
    }
}

fn arrive(id: &str, queue: &str, channel: Channel, category: Option<&str>) -> Event {
    Event::InteractionArrived {
        interaction: id.into(),
        channel,
        queue: Some(queue.into()),
        priority: None,
        skills: vec![],
        customer: None,
        attributes: category
            .map(|c| BTreeMap::from([("category".to_string(), c.to_string())]))
            .unwrap_or_default(),
    }
}

fn accept(i: &str, a: &str) -> Event {
    Event::OfferAccepted {
        interaction: i.into(),
        agent: a.into(),
        offer: None,
    }
}

fn end(i: &str, resolved: Option<bool>) -> Event {
    Event::InteractionEnded {
        interaction: i.into(),
        resolved,
    }
}

fn abandon(i: &str) -> Event {
    Event::InteractionAbandoned {
        interaction: i.into(),
    }
}

fn rate(i: &str, score: u8) -> Event {
    Event::InteractionRated {
        interaction: i.into(),
        score,
    }
}

/// The day's events, `(time in scenario units, event)`, in time order.
pub fn events() -> Vec<(u64, Event)> {
    use Channel::{Chat, Voice};
    vec![
        (0, login("ann")),
        (0, login("bob")),
        (0, login("cat")),
        (0, login("dan")),
        (0, login("eve")),
        (0, not_ready("eve", "training")),
        (10, arrive("b1", "billing", Voice, None)),
        (12, arrive("b2", "billing", Voice, None)),
        (14, accept("b1", "ann")),
        (20, arrive("b3", "billing", Chat, None)),
        (23, abandon("b3")),
        (30, arrive("b4", "billing", Chat, None)),
        (40, abandon("b4")),
        (45, accept("b2", "bob")),
        (60, end("b1", Some(true))),
        (75, rate("b1", 5)),
        (105, end("b2", Some(false))),
        (120, rate("b2", 3)),
        (130, arrive("b5", "billing", Voice, Some("complaint"))),
        (
            132,
            Event::OfferDeclined {
                interaction: "b5".into(),
                agent: "ann".into(),
                reason: DeclineReason::Rejected,
                offer: None,
            },
        ),
        (140, accept("b5", "ann")),
        (150, end("b5", Some(true))),
        (200, arrive("s1", "support", Voice, None)),
        (225, accept("s1", "dan")),
        (260, end("s1", Some(true))),
        (270, rate("s1", 4)),
        (280, not_ready("dan", "lunch")),
        (300, arrive("s2", "support", Voice, None)),
        (302, accept("s2", "cat")),
        (320, end("s2", None)),
        (330, arrive("s3", "support", Voice, None)),
        (331, accept("s3", "cat")),
        (340, arrive("s4", "support", Voice, None)),
        (350, arrive("s5", "support", Voice, None)),
        (380, abandon("s5")),
    ]
}

/// Drives the day through a real engine and telemetry, firing every timer at its own deadline
/// and observing after every batch, as the daemon's engine task does.
pub struct Day {
    pub engine: Engine,
    pub telemetry: Telemetry,
    pub start: Millis,
    pub unit: Millis,
    events: VecDeque<(Millis, Event)>,
    pub decisions: Vec<Decision>,
}

impl Day {
    pub fn new(metrics: Metrics, start: Millis, unit: Millis) -> Day {
        let cfg = config(unit);
        let mut engine = Engine::new(cfg.clone(), start);
        engine.set_record_facts(true);
        let telemetry = Telemetry::new(metrics, &cfg, start);
        let events = events()
            .into_iter()
            .map(|(t, e)| (start + t * unit, e))
            .collect();
        Day {
            engine,
            telemetry,
            start,
            unit,
            events,
            decisions: Vec::new(),
        }
    }

    /// Engine time of scenario time `t`.
    pub fn at(&self, t: u64) -> Millis {
        self.start + t * self.unit
    }

    /// The next moment something happens (an event or a timer).
    pub fn next_time(&self) -> Option<Millis> {
        let event = self.events.front().map(|(t, _)| *t);
        match (event, self.engine.next_deadline()) {
            (Some(e), Some(d)) => Some(e.min(d)),
            (e, d) => e.or(d),
        }
    }

    /// Process every timer and event due at or before `until`, in time order. Returns the
    /// refusals (the daemon would answer them 409/422).
    pub fn run_until(&mut self, until: Millis) -> Vec<EngineError> {
        let mut refused = Vec::new();
        while let Some(t) = self.next_time().filter(|t| *t <= until) {
            if self.engine.next_deadline().is_some_and(|d| d <= t) {
                let started = std::time::Instant::now();
                let fired = self.engine.advance(t);
                self.telemetry.metrics().decision_time(started.elapsed());
                self.decisions.extend(fired);
                self.telemetry.observe(&mut self.engine, t);
                continue;
            }
            let Some((at, event)) = self.events.pop_front() else {
                break;
            };
            let started = std::time::Instant::now();
            let result = self.engine.handle(at, &event);
            self.telemetry.metrics().decision_time(started.elapsed());
            match result {
                Ok(d) => self.decisions.extend(d),
                Err(e) => refused.push(e),
            }
            self.telemetry.observe(&mut self.engine, at);
        }
        refused
    }
}
