//! The view-derived gauges follow the engine exactly, whatever happens.
//!
//! Random floors (2–3 queues, voice and chat, agents with random tiers, wrap-up or none) and
//! random event sequences (arrivals, offers accepted, declined or left to expire, ends, wrap-up,
//! transfers, abandons, logins with new tiers, logouts, not-ready, reloads that change tiers or
//! remove a queue) are driven through an `Engine` and a `Telemetry`, with `Telemetry::observe`
//! after every batch, as the daemon does. After every step, the exported gauges in the rendered
//! page (`tierline_queue_waiting`, `tierline_queue_oldest_wait_seconds`, `tierline_agents`,
//! `tierline_centre_agents`) must equal a brute-force recount from the engine's full views
//! (`Engine::queues()` and `Engine::agents()`, which walk every agent). Telemetry itself only reads the queues the engine reports as changed, and their
//! incrementally kept census: this test is what says that is enough.

#[macro_use]
mod support;
mod metrics_support;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use tierline::config::daemon::MetricsConfig;
use tierline::config::{Channel, Millis, RoutingConfig, Tier};
use tierline::engine::{Activity, DeclineReason, Engine, Event, SlotPhase};
use tierline::metrics::{Metrics, Telemetry};

use support::*;

const QUEUES: [&str; 3] = ["q0", "q1", "q2"];
const AGENTS: [&str; 5] = ["a0", "a1", "a2", "a3", "a4"];

#[derive(Debug, Clone)]
struct Plan {
    queues: usize,
    /// Per agent, tier per queue (0 = does not serve it).
    tiers: Vec<[u8; 3]>,
    /// Per queue: serves chat too.
    chat: [bool; 3],
    wrap_up_s: [u64; 3],
}

#[derive(Debug, Clone)]
enum Action {
    Arrive(usize, bool),
    Accept(usize),
    Decline(usize),
    Abandon(usize),
    End(usize),
    Transfer(usize, usize),
    WrapupDone(usize),
    Login(usize),
    /// The `dyn` agent logs in with these tiers (0 = none).
    LoginWithTiers([u8; 3]),
    Logout(usize),
    NotReady(usize),
    Available(usize),
    /// Reload: agent `.0` gets tiers `.1`; the last queue is removed if `.2` (and nothing waits
    /// in it).
    Reload(usize, [u8; 3], bool),
    Wait(Millis),
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        2usize..=3,
        prop::collection::vec(prop::array::uniform3(0u8..=3), 1..=AGENTS.len()),
        prop::array::uniform3(any::<bool>()),
        prop::array::uniform3(prop_oneof![Just(0u64), Just(5u64)]),
    )
        .prop_map(|(queues, tiers, chat, wrap_up_s)| Plan {
            queues,
            tiers,
            chat,
            wrap_up_s,
        })
}

fn action() -> impl Strategy<Value = Action> {
    let k = 0usize..8;
    prop_oneof![
        6 => (k.clone(), any::<bool>()).prop_map(|(q, chat)| Action::Arrive(q, chat)),
        5 => k.clone().prop_map(Action::Accept),
        1 => k.clone().prop_map(Action::Decline),
        2 => k.clone().prop_map(Action::Abandon),
        3 => k.clone().prop_map(Action::End),
        1 => (k.clone(), k.clone()).prop_map(|(i, q)| Action::Transfer(i, q)),
        1 => k.clone().prop_map(Action::WrapupDone),
        3 => k.clone().prop_map(Action::Login),
        1 => prop::array::uniform3(0u8..=3).prop_map(Action::LoginWithTiers),
        1 => k.clone().prop_map(Action::Logout),
        1 => k.clone().prop_map(Action::NotReady),
        2 => k.clone().prop_map(Action::Available),
        1 => (k.clone(), prop::array::uniform3(0u8..=3), any::<bool>())
            .prop_map(|(a, t, drop)| Action::Reload(a, t, drop)),
        3 => (1u64..20_000).prop_map(Action::Wait),
    ]
}

fn tiers_of(row: &[u8; 3], queues: &[String]) -> Vec<(String, Tier)> {
    queues
        .iter()
        .zip(row)
        .filter(|(_, t)| **t > 0)
        .map(|(q, t)| (q.clone(), *t))
        .collect()
}

fn build(plan: &Plan, agent_tiers: &[[u8; 3]], queues: usize) -> RoutingConfig {
    let ids: Vec<String> = QUEUES[..queues].iter().map(|q| q.to_string()).collect();
    let qs = (0..queues)
        .map(|n| {
            let mut channels = vec![Channel::Voice];
            if plan.chat[n] {
                channels.push(Channel::Chat);
            }
            let mut q = with_channels(queue(&ids[n], vec![step(0, &[1, 2, 3])]), &channels);
            q.wrap_up_ms = secs(plan.wrap_up_s[n]);
            q.offer_timeout_ms = secs(10);
            q
        })
        .collect();
    let agents = agent_tiers
        .iter()
        .enumerate()
        .map(|(n, row)| {
            let tiers = tiers_of(row, &ids);
            let tiers: Vec<(&str, Tier)> = tiers.iter().map(|(q, t)| (q.as_str(), *t)).collect();
            with_capacity(agent(AGENTS[n], &tiers), Channel::Chat, 2)
        })
        .collect();
    config(qs, agents)
}

struct Rig {
    engine: Engine,
    telemetry: Telemetry,
    config: RoutingConfig,
    plan: Plan,
    agent_tiers: Vec<[u8; 3]>,
    next_id: usize,
}

impl Rig {
    fn new(plan: Plan) -> Rig {
        let agent_tiers = plan.tiers.clone();
        let config = build(&plan, &agent_tiers, plan.queues);
        let metrics = Metrics::unserved(&MetricsConfig::default(), &config).expect("metrics");
        let mut engine = Engine::new(config.clone(), 0);
        engine.set_record_facts(true);
        let mut telemetry = Telemetry::new(metrics, &config, 0);
        telemetry.observe(&mut engine, 0);
        Rig {
            engine,
            telemetry,
            config,
            plan,
            agent_tiers,
            next_id: 0,
        }
    }

    fn queue_ids(&self) -> Vec<String> {
        self.config.queues.iter().map(|q| q.id.clone()).collect()
    }

    fn agent_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.config.agents.iter().map(|a| a.id.clone()).collect();
        ids.push("dyn".into());
        ids
    }

    /// Offered or connected (interaction, agent) pairs, from the agents' views.
    fn held(&self, phase: SlotPhase) -> Vec<(String, String)> {
        self.engine
            .agents()
            .iter()
            .flat_map(|a| {
                a.slots
                    .iter()
                    .filter(|s| s.phase == phase)
                    .filter_map(|s| Some((s.interaction.as_ref()?.to_string(), a.id.to_string())))
            })
            .collect()
    }

    fn waiting(&self) -> Vec<String> {
        self.queue_ids()
            .iter()
            .flat_map(|q| self.engine.waiting_in(q))
            .map(|i| i.to_string())
            .collect()
    }

    /// The event for `action` in the current state (`None` when there is nothing to act on).
    fn event(&mut self, action: &Action) -> Option<Event> {
        let queues = self.queue_ids();
        let agents = self.agent_ids();
        let pick = |v: Vec<(String, String)>, k: usize| v.get(k % v.len().max(1)).cloned();
        Some(match action {
            Action::Arrive(q, chat) => {
                self.next_id += 1;
                let q = &self.config.queues[q % self.config.queues.len()];
                let channel = if *chat && q.channels.contains(&Channel::Chat) {
                    Channel::Chat
                } else {
                    Channel::Voice
                };
                Arrival::new(&format!("c{}", self.next_id))
                    .queue(&q.id)
                    .channel(channel)
                    .event()
            }
            Action::Accept(k) => {
                let (i, a) = pick(self.held(SlotPhase::Offered), *k)?;
                accept(&i, &a)
            }
            Action::Decline(k) => {
                let (i, a) = pick(self.held(SlotPhase::Offered), *k)?;
                decline(&i, &a, DeclineReason::Busy)
            }
            Action::Abandon(k) => {
                let w = self.waiting();
                abandon(w.get(k % w.len().max(1))?)
            }
            Action::End(k) => end(&pick(self.held(SlotPhase::Connected), *k)?.0),
            Action::Transfer(k, q) => transfer(
                &pick(self.held(SlotPhase::Connected), *k)?.0,
                &queues[q % queues.len()],
            ),
            Action::WrapupDone(k) => wrapup_done(&agents[k % agents.len()]),
            Action::Login(k) => {
                let id = &agents[k % agents.len()];
                if id == "dyn" {
                    return self.event(&Action::LoginWithTiers([1, 2, 3]));
                }
                login(id)
            }
            Action::LoginWithTiers(row) => Event::AgentLogin {
                agent: "dyn".into(),
                address: Some(address_of("dyn")),
                tiers: Some(tiers_of(row, &queues).into_iter().collect()),
                skills: None,
                capacity: None,
            },
            Action::Logout(k) => logout(&agents[k % agents.len()]),
            Action::NotReady(k) => not_ready(&agents[k % agents.len()], "break"),
            Action::Available(k) => available(&agents[k % agents.len()]),
            Action::Reload(..) | Action::Wait(_) => return None,
        })
    }

    /// Run timers up to `t`, observing after each batch as the daemon does.
    fn advance(&mut self, t: Millis) {
        while let Some(d) = self.engine.next_deadline().filter(|d| *d <= t) {
            self.engine.advance(d);
            self.telemetry.observe(&mut self.engine, d);
        }
        self.engine.advance(t);
        self.telemetry.observe(&mut self.engine, t);
    }

    fn step(&mut self, action: &Action) {
        let now = self.engine.now();
        match action {
            Action::Wait(ms) => self.advance(now + ms),
            Action::Reload(a, row, drop_last) => {
                let mut tiers = self.agent_tiers.clone();
                if let Some(t) = tiers.get_mut(a % self.agent_tiers.len()) {
                    *t = *row;
                }
                let keep = if *drop_last && self.config.queues.len() > 1 {
                    self.config.queues.len() - 1
                } else {
                    self.config.queues.len()
                };
                let next = build(&self.plan, &tiers, keep);
                // A reload that would strand interactions is refused, and then nothing changes.
                if self.engine.reconfigure(now, next.clone()).is_ok() {
                    self.telemetry.on_config(&next);
                    self.config = next;
                    self.agent_tiers = tiers;
                }
                self.telemetry.observe(&mut self.engine, now);
            }
            other => {
                if let Some(event) = self.event(other) {
                    // Refusals (e.g. logging out an agent who is not logged in) change nothing.
                    let _ = self.engine.handle(now, &event);
                }
                self.telemetry.observe(&mut self.engine, now);
            }
        }
    }

    /// Every gauge against a recount from the engine's full views.
    fn check(&self) -> Result<(), String> {
        let now = self.engine.now();
        let text = self.telemetry.metrics().render_at(now);
        let samples = parse(&text);
        for view in self.engine.queues() {
            let q: &str = &view.id;
            for channel in [Channel::Voice, Channel::Chat] {
                let want = view.waiting_by_channel.get(&channel).copied().unwrap_or(0);
                let got = samples
                    .get(&key(
                        "tierline_queue_waiting",
                        &[("queue", q), ("channel", channel.as_str())],
                    ))
                    .copied();
                ensure!(
                    got.unwrap_or(0.0) == want as f64 && (want == 0 || got.is_some()),
                    "queue {q} {channel}: waiting gauge {got:?}, engine {want}"
                );
            }
            let oldest = view
                .oldest_entered_at
                .map_or(0.0, |at| (now - at) as f64 / 1000.0);
            let got = samples
                .get(&key("tierline_queue_oldest_wait_seconds", &[("queue", q)]))
                .copied();
            ensure!(
                got == Some(oldest),
                "queue {q}: oldest wait gauge {got:?}, engine {oldest}"
            );
            let mut tiers: BTreeSet<Tier> = view.agents.keys().copied().collect();
            tiers.extend(
                samples
                    .keys()
                    .filter(|(n, l)| {
                        n == "tierline_agents" && l.contains(&("queue".into(), q.into()))
                    })
                    .filter_map(|(_, l)| {
                        l.iter().find(|(k, _)| k == "tier")?.1.parse::<Tier>().ok()
                    }),
            );
            for tier in tiers {
                for activity in Activity::ALL {
                    let want = view
                        .agents
                        .get(&tier)
                        .and_then(|by| by.get(&activity))
                        .copied()
                        .unwrap_or(0);
                    let t = tier.to_string();
                    let got = samples
                        .get(&key(
                            "tierline_agents",
                            &[("queue", q), ("tier", &t), ("state", activity.as_str())],
                        ))
                        .copied();
                    ensure!(
                        got.unwrap_or(0.0) == want as f64 && (want == 0 || got.is_some()),
                        "queue {q} tier {tier} {}: gauge {got:?}, engine {want}",
                        activity.as_str()
                    );
                }
            }
        }
        // The whole centre: every agent once, however many queues it serves (or none).
        let mut centre: BTreeMap<Activity, u64> = BTreeMap::new();
        for agent in self.engine.agents() {
            *centre.entry(agent.activity).or_default() += 1;
        }
        for activity in Activity::ALL {
            let want = centre.get(&activity).copied().unwrap_or(0) as f64;
            let got = samples
                .get(&key(
                    "tierline_centre_agents",
                    &[("state", activity.as_str())],
                ))
                .copied();
            ensure!(
                got == Some(want),
                "centre {}: gauge {got:?}, engine {want}",
                activity.as_str()
            );
        }
        // A queue a reload removed shows nothing any more.
        let live: BTreeSet<String> = self.queue_ids().into_iter().collect();
        for ((name, labels), value) in &samples {
            let Some((_, q)) = labels.iter().find(|(k, _)| k == "queue") else {
                continue;
            };
            if !live.contains(q)
                && QUEUES.contains(&q.as_str())
                && ["tierline_queue_waiting", "tierline_agents"].contains(&name.as_str())
            {
                ensure!(
                    *value == 0.0,
                    "removed queue {q}: {name}{labels:?} = {value}"
                );
            }
        }
        self.engine.check_consistency()
    }
}

type Key = (String, Vec<(String, String)>);

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    (name.to_string(), l)
}

/// Every sample of a Prometheus text page, by name and sorted labels.
fn parse(text: &str) -> BTreeMap<Key, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (name, rest) = match series.find('{') {
            Some(i) => (&series[..i], &series[i + 1..series.len() - 1]),
            None => (series, ""),
        };
        let mut labels: Vec<(String, String)> = rest
            .split("\",")
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k.to_string(), v.trim_matches('"').to_string()))
            })
            .collect();
        labels.sort();
        if let Ok(v) = value.parse() {
            out.insert((name.to_string(), labels), v);
        }
    }
    out
}

fn cases() -> u32 {
    proptest_cases(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_gauges_equal_a_recount_from_the_engine_views_after_every_step(
        plan in plan(),
        script in prop::collection::vec(action(), 1..60),
    ) {
        let mut rig = Rig::new(plan);
        rig.check().map_err(TestCaseError::fail)?;
        for (n, action) in script.iter().enumerate() {
            rig.step(action);
            rig.check()
                .map_err(|m| TestCaseError::fail(format!("after step {n} {action:?}: {m}")))?;
        }
    }
}

/// The check can fail: a gauge that disagrees with the engine is reported.
#[test]
fn a_stale_gauge_is_caught() {
    let plan = Plan {
        queues: 2,
        tiers: vec![[1, 0, 0]],
        chat: [false; 3],
        wrap_up_s: [0; 3],
    };
    let mut rig = Rig::new(plan);
    rig.step(&Action::Login(0));
    rig.check().expect("consistent after a login");
    // Change the engine without telling telemetry.
    let now = rig.engine.now();
    rig.engine
        .handle(now, &not_ready("a0", "break"))
        .expect("not ready");
    let err = rig.check().expect_err("the available gauge is stale");
    assert!(err.contains("tier 1 available"), "{err}");
}

/// An agent serving several queues is counted once per queue in `tierline_agents` (summing it
/// over queues, as an "all queues" wallboard does, counts it twice) but once in
/// `tierline_centre_agents`, and the centre's agent-seconds integrate that count.
#[test]
fn the_centre_counts_an_agent_in_two_queues_once() {
    let plan = Plan {
        queues: 2,
        tiers: vec![[1, 2, 0]],
        chat: [false; 3],
        wrap_up_s: [0; 3],
    };
    let mut rig = Rig::new(plan);
    rig.step(&Action::Login(0));
    rig.step(&Action::Wait(10_000));
    rig.check().expect("consistent");
    let samples = parse(&rig.telemetry.metrics().render_at(rig.engine.now()));
    let available = |name: &str| -> f64 {
        samples
            .iter()
            .filter(|((n, l), _)| n == name && l.contains(&("state".into(), "available".into())))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(available("tierline_agents"), 2.0, "once per queue");
    assert_eq!(available("tierline_centre_agents"), 1.0, "once");
    // Ten seconds available: 10 agent-seconds for the centre, 20 summed over the queues.
    assert_eq!(available("tierline_centre_agent_state_seconds_total"), 10.0);
    assert_eq!(available("tierline_agent_state_seconds_total"), 20.0);
}
