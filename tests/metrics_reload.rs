//! Metrics across live reloads and unrouted arrivals: what a queue drained by a reload counts in
//! the queue it drains into, complaints that no rule routed, the gauges a removed queue leaves,
//! and the warning for a reload-added `sla_s` that the wait histogram cannot answer exactly.

mod metrics_support;

use std::collections::BTreeMap;

use metrics_support::{has_series, sample};
use tierline::config::daemon::MetricsConfig;
use tierline::config::{AgentConfig, Channel, QueueConfig, RoutingConfig, Tier};
use tierline::engine::{Engine, Event};
use tierline::metrics::{Metrics, Telemetry};

const S: u64 = 1000;

fn agent_in(id: &str, queues: &[(&str, Tier)]) -> AgentConfig {
    AgentConfig {
        id: id.into(),
        address: format!("sip:{id}@pbx"),
        tiers: queues.iter().map(|(q, t)| (q.to_string(), *t)).collect(),
        skills: vec![],
        capacity: BTreeMap::new(),
    }
}

fn arrive(id: &str, queue: Option<&str>, category: Option<&str>) -> Event {
    Event::InteractionArrived {
        interaction: id.into(),
        channel: Channel::Voice,
        queue: queue.map(Into::into),
        priority: None,
        skills: vec![],
        customer: None,
        attributes: category
            .map(|c| BTreeMap::from([("category".to_string(), c.to_string())]))
            .unwrap_or_default(),
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

    /// As the daemon does: facts so far, then the reload, then on_config + facts + refresh.
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

/// A reload removes `old` (drain_to = "new") while one call is connected to an agent and another
/// waits. The waiting one enters `new` to wait there, so `new` counts it as offered; the connected
/// one was answered in `old` and never waits in `new`: it is not offered there again. When it
/// ends, it ends in `new`, the queue it now belongs to.
#[test]
fn a_reload_drain_offers_the_target_only_what_still_waits() {
    let mut old = QueueConfig::with_defaults("old");
    old.drain_to = Some("new".into());
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(old);
    cfg.queues.push(QueueConfig::with_defaults("new"));
    cfg.agents = vec![agent_in("a", &[("old", 1), ("new", 1)])];
    let mut rig = Rig::new(cfg.clone());
    rig.at(0, login("a"));
    rig.at(S, arrive("c1", Some("old"), None));
    rig.at(2 * S, accept("c1", "a"));
    rig.at(2 * S, arrive("c2", Some("old"), None));
    let mut next = cfg.clone();
    next.queues.remove(0);
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
    rig.at(S, arrive("c1", None, Some("complaint")));
    let text = rig.text(S);
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_arrived_total",
            &[("queue", ""), ("channel", "voice")]
        ),
        1.0
    );
    assert!(
        has_series(&text, "tierline_complaints_total")
            && text.contains("tierline_complaints_total{queue=\"\",channel=\"voice\"} 1"),
        "unrouted complaint missing from tierline_complaints_total:\n{}",
        text.lines()
            .filter(|l| l.contains("complaints") || l.contains("arrived"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A removed queue keeps its series: the state gauges drop to 0 (nothing waits there any more,
/// whatever the clock says at scrape time); the configuration gauges keep the last configured
/// value, so SLA ratios over a window spanning the removal stay defined.
#[test]
fn a_removed_queue_s_state_gauges_drop_to_zero_and_its_sla_stays() {
    let mut old = QueueConfig::with_defaults("old");
    old.drain_to = Some("new".into());
    old.sla_ms = 20_000;
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(old);
    cfg.queues.push(QueueConfig::with_defaults("new"));
    let mut rig = Rig::new(cfg.clone());
    rig.at(S, arrive("c1", Some("old"), None));
    let before = rig.text(5 * S);
    assert_eq!(
        sample(
            &before,
            "tierline_queue_oldest_wait_seconds",
            &[("queue", "old")]
        ),
        4.0
    );
    let mut next = cfg.clone();
    next.queues.remove(0);
    rig.reload(6 * S, next);
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
            "tierline_interactions_rejected_total",
            "tierline_complaints_total",
        ] {
            assert_eq!(sample(&text, name, &l), 0.0, "{name} {l:?}");
        }
    }
}
