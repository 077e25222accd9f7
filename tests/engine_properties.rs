//! Property tests of the routing engine against brute-force oracles.
//!
//! Random configs (1–3 queues with ladders, mixed channels, every strategy, capacities, skills,
//! overflow, back-off delays) and random event sequences with clock jumps are driven through the
//! public API. After every `advance` instant and every `handle` the oracles
//! (`support/oracle.rs`, plus the order checks here) recompute, from the public views only
//! (`agents()`, `interaction()`, `counts()`, `waiting_in()`), what `docs/ROUTING.md` says must
//! hold:
//!
//! 1. one owner: no interaction held by two slots; no agent over a channel capacity or the
//!    exclusive rule; view states, owners, slots and waiting lists agree;
//! 2. work conservation: no (free eligible agent, waiting interaction) pair is left; a full
//!    queue refuses an interaction (`queue_full`) only when nobody could take it at once (the
//!    agent handing it over left out when the hand-over frees it);
//! 3. order: an arrival (or a declined, transferred or escalated interaction) goes to the agent
//!    its queue's strategy picks among the agents eligible just before; a freed agent takes a most
//!    urgent eligible interaction;
//! 4. nothing lost: `arrived` = sum of the states = the arrivals we made;
//! 5. timers fire exactly at predictable deadlines, no deadline is missed, histories are
//!    append-only and consistent, and a replay gives byte-identical decisions, also when the
//!    engine is written to a snapshot and read back before a random step (a capture taken
//!    there and written a step later gives the same bytes).
//!
//! The oracles never read engine internals; they are deliberately naive (quadratic scans).

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use tierline::config::{
    AgentConfig, Channel, Millis, Overflow, QueueConfig, RoutingConfig, Step, Strategy as Pick,
    Tier,
};
use tierline::engine::{
    AgentPresence, AgentStatus, AgentView, Decision, DecisionKind, DeclineReason, Engine,
    EngineError, Event, InteractionState, InteractionView, Owner, RejectReason, RequestedState,
    RevokeReason, SlotPhase, Why,
};

use support::oracle::*;
use support::*;

// =============================================================================================
// Generated worlds
// =============================================================================================

const CHANNELS: [Channel; 3] = [Channel::Voice, Channel::Chat, Channel::Email];
const SKILLS: [&str; 2] = ["en", "zh"];

#[derive(Debug, Clone)]
struct QueuePlan {
    channels: u8,
    strategy: u8,
    /// (gap from the previous step in s, tier mask, boost, skip_if_no_agents)
    steps: Vec<(u64, u8, i32, bool)>,
    offer_timeout_s: u64,
    wrap_up_s: u64,
    /// (max_wait_s, overflow choice: 0 = PBX target, n = a later queue)
    max_wait: Option<(u64, u8)>,
    max_waiting: Option<usize>,
    escalation_boost: i32,
    /// reject, busy, no_answer back-off in s
    delays_s: (u64, u64, u64),
    max_no_answer: u32,
    count_declines: bool,
    closed: bool,
}

#[derive(Debug, Clone)]
struct AgentPlan {
    /// Tier per queue index (0 = does not serve it).
    tiers: [u8; 3],
    skills: u8,
    chat_capacity: Option<u32>,
}

#[derive(Debug, Clone)]
struct WorldPlan {
    queues: Vec<QueuePlan>,
    agents: Vec<AgentPlan>,
    chat_capacity: u32,
    chat_exclusive: bool,
    email_capacity: u32,
    default_queue: bool,
    seed: u64,
}

fn mask_to_tiers(mask: u8) -> Vec<Tier> {
    (1..=3).filter(|t| mask & (1 << (t - 1)) != 0).collect()
}

fn queue_plan() -> impl proptest::strategy::Strategy<Value = QueuePlan> {
    (
        1u8..8,
        0u8..5,
        prop::collection::vec(
            (1u64..=20, 1u8..8, 0i32..=3, prop::bool::weighted(0.3)),
            1..=3,
        ),
        2u64..=20,
        prop_oneof![1 => Just(0u64), 3 => 1u64..=8],
        prop::option::weighted(0.4, (10u64..=60, 0u8..3)),
        prop::option::weighted(0.3, 1usize..=4),
        0i32..=3,
        (
            prop_oneof![1 => Just(0u64), 4 => 1u64..=8],
            1u64..=8,
            1u64..=8,
        ),
        (0u32..=3, prop::bool::weighted(0.7)),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(
                channels,
                strategy,
                steps,
                offer_timeout_s,
                wrap_up_s,
                max_wait,
                max_waiting,
                escalation_boost,
                delays_s,
                (max_no_answer, count_declines),
                closed,
            )| QueuePlan {
                channels,
                strategy,
                steps,
                offer_timeout_s,
                wrap_up_s,
                max_wait,
                max_waiting,
                escalation_boost,
                delays_s,
                max_no_answer,
                count_declines,
                closed,
            },
        )
}

fn agent_plan() -> impl proptest::strategy::Strategy<Value = AgentPlan> {
    (
        [0u8..=3, 0u8..=3, 0u8..=3],
        prop_oneof![2 => Just(0u8), 1 => 1u8..4],
        prop::option::weighted(0.3, 1u32..=4),
    )
        .prop_map(|(tiers, skills, chat_capacity)| AgentPlan {
            tiers,
            skills,
            chat_capacity,
        })
}

fn world_plan() -> impl proptest::strategy::Strategy<Value = WorldPlan> {
    (
        prop::collection::vec(queue_plan(), 1..=3),
        prop::collection::vec(agent_plan(), 1..=5),
        1u32..=3,
        prop::bool::weighted(0.15),
        1u32..=3,
        prop::bool::weighted(0.3),
        any::<u64>(),
    )
        .prop_map(
            |(
                queues,
                agents,
                chat_capacity,
                chat_exclusive,
                email_capacity,
                default_queue,
                seed,
            )| {
                WorldPlan {
                    queues,
                    agents,
                    chat_capacity,
                    chat_exclusive,
                    email_capacity,
                    default_queue,
                    seed,
                }
            },
        )
}

fn build_config(plan: &WorldPlan) -> RoutingConfig {
    let n = plan.queues.len();
    let strategies = [
        Pick::LongestIdle,
        Pick::RoundRobin,
        Pick::FewestInteractions,
        Pick::TierOrder,
        Pick::Random,
    ];
    let mut cfg = RoutingConfig::empty();
    cfg.seed = plan.seed;
    cfg.channels[Channel::Chat.index()].capacity = plan.chat_capacity;
    cfg.channels[Channel::Chat.index()].exclusive = plan.chat_exclusive;
    cfg.channels[Channel::Email.index()].capacity = plan.email_capacity;
    cfg.limits.max_history = 100_000;
    for (idx, qp) in plan.queues.iter().enumerate() {
        let mut q = QueueConfig::with_defaults(&format!("q{idx}"));
        q.channels = CHANNELS
            .iter()
            .enumerate()
            .filter(|(k, _)| qp.channels & (1 << k) != 0)
            .map(|(_, c)| *c)
            .collect();
        q.strategy = strategies[qp.strategy as usize];
        let mut after = 0;
        q.steps = qp
            .steps
            .iter()
            .enumerate()
            .map(|(k, &(gap, mask, boost, skip))| {
                if k > 0 {
                    after += secs(gap);
                }
                Step {
                    after_ms: after,
                    tiers: mask_to_tiers(mask),
                    priority_boost: boost,
                    skip_if_no_agents: skip,
                }
            })
            .collect();
        q.offer_timeout_ms = secs(qp.offer_timeout_s);
        q.wrap_up_ms = secs(qp.wrap_up_s);
        if let Some((wait, choice)) = qp.max_wait {
            q.max_wait_ms = Some(secs(wait));
            let later = n - idx - 1;
            q.overflow = Some(if choice == 0 || later == 0 {
                Overflow::Target(format!("sip:overflow-{idx}@pbx"))
            } else {
                Overflow::Queue(format!("q{}", idx + 1 + (choice as usize - 1) % later))
            });
        }
        q.max_waiting = qp.max_waiting;
        q.escalation_priority_boost = qp.escalation_boost;
        q.reject_delay_ms = secs(qp.delays_s.0);
        q.busy_delay_ms = secs(qp.delays_s.1);
        q.no_answer_delay_ms = secs(qp.delays_s.2);
        q.max_no_answer = qp.max_no_answer;
        q.count_declines = qp.count_declines;
        if qp.closed && idx == 0 && n > 1 {
            q.schedule = Some(never_open());
            q.closed_target = Some("sip:closed@pbx".into());
        }
        cfg.queues.push(q);
    }
    // An overflow queue serves every channel of the queues that overflow into it (a config that
    // strands a chat in a voice-only queue is a validation matter; see FINDINGS.md).
    for idx in 0..n {
        if let Some(Overflow::Queue(to)) = cfg.queues[idx].overflow.clone() {
            let from = cfg.queues[idx].channels.clone();
            let target = cfg
                .queues
                .iter_mut()
                .find(|q| q.id == to)
                .expect("generated");
            for c in from {
                if !target.channels.contains(&c) {
                    target.channels.push(c);
                }
            }
        }
    }
    for (k, ap) in plan.agents.iter().enumerate() {
        let id = format!("a{k}");
        let mut a = AgentConfig {
            id: id.clone(),
            address: address_of(&id),
            tiers: BTreeMap::new(),
            skills: SKILLS
                .iter()
                .enumerate()
                .filter(|(b, _)| ap.skills & (1 << b) != 0)
                .map(|(_, s)| s.to_string())
                .collect(),
            capacity: BTreeMap::new(),
        };
        for (qi, &t) in ap.tiers.iter().enumerate().take(n) {
            if t > 0 {
                a.tiers.insert(format!("q{qi}"), t);
            }
        }
        if let Some(c) = ap.chat_capacity {
            a.capacity.insert(Channel::Chat, c);
        }
        cfg.agents.push(a);
    }
    if plan.default_queue {
        cfg.default_queue = Some("q0".into());
    }
    cfg
}

// =============================================================================================
// Generated scripts
// =============================================================================================

#[derive(Debug, Clone)]
enum Jump {
    None,
    Ms(u64),
    ToNextDeadline,
    JustBeforeNextDeadline,
}

#[derive(Debug, Clone)]
enum Action {
    Arrive {
        queue: Option<u8>,
        channel: u8,
        priority: Option<i32>,
        skills: u8,
    },
    Accept(usize),
    /// A waiting or offered interaction answered by an agent outside its offers.
    Answer(usize, usize),
    Decline(usize, DeclineReason),
    Abandon(usize),
    End(usize, Option<bool>),
    Transfer(usize, u8),
    Escalate(usize, Tier),
    /// A login; with a plan it carries tiers, skills and maybe a chat capacity, which may
    /// differ from the agent's roster ones (the last L1 of a queue coming back as an L2).
    Login(usize, Option<AgentPlan>),
    Logout(usize),
    NotReady(usize),
    Available(usize),
    WrapupDone(usize),
    Rate(usize, u8),
    /// An event picked without looking at state; usually refused.
    Stray(u8, usize, usize),
    /// Only the clock moves.
    Wait,
}

fn jump() -> impl proptest::strategy::Strategy<Value = Jump> {
    prop_oneof![
        3 => Just(Jump::None),
        3 => (1u64..5_000).prop_map(Jump::Ms),
        2 => (5_000u64..40_000).prop_map(Jump::Ms),
        3 => Just(Jump::ToNextDeadline),
        1 => Just(Jump::JustBeforeNextDeadline),
    ]
}

fn decline_reason() -> impl proptest::strategy::Strategy<Value = DeclineReason> {
    prop_oneof![
        Just(DeclineReason::Rejected),
        Just(DeclineReason::Busy),
        Just(DeclineReason::NoAnswer)
    ]
}

fn action() -> impl proptest::strategy::Strategy<Value = Action> {
    let k = 0usize..64;
    prop_oneof![
        6 => (
            prop::option::weighted(0.9, 0u8..3),
            0u8..3,
            prop::option::weighted(0.3, -2i32..=5),
            prop_oneof![3 => Just(0u8), 1 => 1u8..4],
        )
            .prop_map(|(queue, channel, priority, skills)| Action::Arrive {
                queue,
                channel,
                priority,
                skills
            }),
        5 => k.clone().prop_map(Action::Accept),
        1 => (k.clone(), k.clone()).prop_map(|(k, a)| Action::Answer(k, a)),
        2 => (k.clone(), decline_reason()).prop_map(|(k, r)| Action::Decline(k, r)),
        1 => k.clone().prop_map(Action::Abandon),
        3 => (k.clone(), prop::option::of(any::<bool>())).prop_map(|(k, r)| Action::End(k, r)),
        1 => (k.clone(), 0u8..3).prop_map(|(k, q)| Action::Transfer(k, q)),
        1 => (k.clone(), 1u8..=3).prop_map(|(k, t)| Action::Escalate(k, t)),
        3 => (k.clone(), prop::option::weighted(0.4, agent_plan()))
            .prop_map(|(k, plan)| Action::Login(k, plan)),
        1 => k.clone().prop_map(Action::Logout),
        1 => k.clone().prop_map(Action::NotReady),
        2 => k.clone().prop_map(Action::Available),
        1 => k.clone().prop_map(Action::WrapupDone),
        1 => (k.clone(), 0u8..=6).prop_map(|(k, s)| Action::Rate(k, s)),
        1 => (0u8..11, k.clone(), k.clone()).prop_map(|(w, a, b)| Action::Stray(w, a, b)),
        2 => Just(Action::Wait),
    ]
}

// =============================================================================================
// The run
// =============================================================================================

struct Run {
    cfg: RoutingConfig,
    engine: Engine,
    known: Vec<String>,
    arrivals: u64,
    next_id: usize,
    /// Last agent each queue offered to (round-robin).
    last_offered: BTreeMap<String, String>,
    /// offer id → (queue, expires_at)
    offers: BTreeMap<String, (String, Millis)>,
    /// The priority each interaction had on entering its current queue (ladder interactions).
    entry_priority: BTreeMap<String, i32>,
    /// Consecutive missed offers per agent, counted as docs/ROUTING.md "Offer" says.
    missed: BTreeMap<String, u32>,
    seq: u64,
    /// The concrete script, for the replay.
    script: Vec<(Millis, Option<Event>)>,
    /// Every result, serialized, for the replay.
    trace: Vec<String>,
}

fn roster_ids(cfg: &RoutingConfig) -> Vec<String> {
    let mut ids: Vec<String> = cfg.agents.iter().map(|a| a.id.clone()).collect();
    ids.push("dyn".into());
    ids
}

impl Run {
    fn new(cfg: RoutingConfig) -> Run {
        let engine = Engine::new(cfg.clone(), 0);
        let seq = engine.next_seq();
        Run {
            cfg,
            engine,
            known: Vec::new(),
            arrivals: 0,
            next_id: 0,
            last_offered: BTreeMap::new(),
            offers: BTreeMap::new(),
            entry_priority: BTreeMap::new(),
            missed: BTreeMap::new(),
            seq,
            script: Vec::new(),
            trace: Vec::new(),
        }
    }

    fn observe(&self) -> Observed {
        Observed::take(&self.engine, &self.cfg, &self.known)
    }

    fn fail(&self, msg: String) -> TestCaseError {
        let tail: Vec<String> = self
            .script
            .iter()
            .map(|(t, e)| match e {
                Some(e) => format!("  {t}: {}", serde_json::to_string(e).unwrap_or_default()),
                None => format!("  {t}: (advance)"),
            })
            .collect();
        TestCaseError::fail(format!("{msg}\nscript so far:\n{}", tail.join("\n")))
    }

    /// Gap-free seq; record offers for later checks.
    fn absorb(&mut self, ds: &[Decision]) -> Result<(), String> {
        for d in ds {
            ensure!(
                d.seq == self.seq,
                "decision seq {} where {} was next: {d:?}",
                d.seq,
                self.seq
            );
            self.seq += 1;
            if let DecisionKind::Offer {
                agent,
                queue,
                offer,
                expires_at,
                ..
            } = &d.kind
            {
                self.last_offered
                    .insert(queue.to_string(), agent.to_string());
                self.offers
                    .insert(offer.to_string(), (queue.to_string(), *expires_at));
            }
        }
        ensure!(
            self.engine.next_seq() == self.seq,
            "next_seq() is {} after decision {}",
            self.engine.next_seq(),
            self.seq
        );
        Ok(())
    }

    fn resolve(&mut self, action: &Action, obs: &Observed) -> Option<Event> {
        let agents = roster_ids(&self.cfg);
        let queues: Vec<&QueueConfig> = self.cfg.queues.iter().collect();
        let pick = |v: &[(String, String)], k: usize| v.get(k % v.len().max(1)).cloned();
        let offered = obs.slots_in(SlotPhase::Offered);
        let connected = obs.slots_in(SlotPhase::Connected);
        let live: Vec<String> = obs
            .interactions
            .iter()
            .filter(|(_, v)| {
                matches!(
                    v.state,
                    InteractionState::Waiting | InteractionState::Offered
                )
            })
            .map(|(id, _)| id.clone())
            .collect();
        Some(match action {
            Action::Arrive {
                queue,
                channel,
                priority,
                skills,
            } => {
                let id = format!("i{}", self.next_id);
                self.next_id += 1;
                let q = queue.map(|k| queues[k as usize % queues.len()]);
                let channel = match q {
                    Some(q) => q.channels[*channel as usize % q.channels.len()],
                    None => CHANNELS[*channel as usize % 3],
                };
                Event::InteractionArrived {
                    interaction: id,
                    channel,
                    queue: q.map(|q| q.id.clone()),
                    priority: *priority,
                    skills: SKILLS
                        .iter()
                        .enumerate()
                        .filter(|(b, _)| skills & (1 << b) != 0)
                        .map(|(_, s)| s.to_string())
                        .collect(),
                    customer: None,
                    attributes: BTreeMap::new(),
                }
            }
            Action::Accept(k) => {
                let (i, a) = pick(&offered, *k)?;
                accept(&i, &a)
            }
            Action::Decline(k, r) => {
                let (i, a) = pick(&offered, *k)?;
                decline(&i, &a, *r)
            }
            Action::Answer(k, a) => {
                answered(live.get(k % live.len().max(1))?, &agents[a % agents.len()])
            }
            Action::Abandon(k) => abandon(live.get(k % live.len().max(1))?),
            Action::End(k, resolved) => Event::InteractionEnded {
                interaction: pick(&connected, *k)?.0,
                resolved: *resolved,
            },
            Action::Transfer(k, q) => transfer(
                &pick(&connected, *k)?.0,
                &queues[*q as usize % queues.len()].id,
            ),
            Action::Escalate(k, t) => escalate(&pick(&connected, *k)?.0, *t),
            Action::Login(k, plan) => {
                let id = &agents[k % agents.len()];
                match plan {
                    Some(p) => Event::AgentLogin {
                        agent: id.clone(),
                        address: Some(address_of(id)),
                        tiers: Some(
                            queues
                                .iter()
                                .zip(p.tiers)
                                .filter(|(_, t)| *t > 0)
                                .map(|(q, t)| (q.id.clone(), t as Tier))
                                .collect(),
                        ),
                        skills: Some(
                            SKILLS
                                .iter()
                                .enumerate()
                                .filter(|(b, _)| p.skills & (1 << b) != 0)
                                .map(|(_, s)| s.to_string())
                                .collect(),
                        ),
                        // Not below the chats it holds: docs/ROUTING.md does not say what a
                        // capacity under the current load means (the holds stay; see the report).
                        capacity: p
                            .chat_capacity
                            .filter(|c| {
                                let held = obs.agent(id).map_or(0, |a| {
                                    a.slots
                                        .iter()
                                        .filter(|s| s.channel == Channel::Chat)
                                        .count()
                                });
                                held <= *c as usize
                            })
                            .map(|c| [(Channel::Chat, c)].into()),
                    },
                    None if id == "dyn" => Event::AgentLogin {
                        agent: id.clone(),
                        address: Some(address_of(id)),
                        tiers: Some(
                            queues
                                .iter()
                                .enumerate()
                                .map(|(n, q)| (q.id.clone(), (n % 3 + 1) as Tier))
                                .collect(),
                        ),
                        skills: Some(vec!["en".into()]),
                        capacity: None,
                    },
                    None => login(id),
                }
            }
            Action::Logout(k) => logout(&agents[k % agents.len()]),
            Action::NotReady(k) => not_ready(&agents[k % agents.len()], "break"),
            Action::Available(k) => available(&agents[k % agents.len()]),
            Action::WrapupDone(k) => wrapup_done(&agents[k % agents.len()]),
            Action::Rate(k, s) => rate(self.known.get(k % self.known.len().max(1))?, *s),
            Action::Stray(what, x, y) => {
                let i = self
                    .known
                    .get(x % self.known.len().max(1))
                    .cloned()
                    .unwrap_or_else(|| "ghost-call".into());
                let a = agents[y % agents.len()].clone();
                match what {
                    0 => accept(&i, &a),
                    1 => decline(&i, &a, DeclineReason::Busy),
                    2 => end(&i),
                    3 => abandon(&i),
                    4 => transfer(&i, "nowhere"),
                    5 => escalate(&i, 2),
                    6 => call(&i, &queues[y % queues.len()].id),
                    7 => login("ghost"),
                    8 => accept(&i, "ghost"),
                    9 => answered(&i, &a),
                    _ => set_state(&a, RequestedState::Offline, None),
                }
            }
            Action::Wait => return None,
        })
    }

    /// One generated step: move the clock (timers fire), then apply the event.
    fn step(&mut self, jump: &Jump, action: &Action) -> Result<(), TestCaseError> {
        let now = self.engine.now();
        let t = match jump {
            Jump::None => now,
            Jump::Ms(ms) => now + ms,
            Jump::ToNextDeadline => self.engine.next_deadline().unwrap_or(now + 1_000).max(now),
            Jump::JustBeforeNextDeadline => self
                .engine
                .next_deadline()
                .map_or(now + 500, |d| d.saturating_sub(1))
                .max(now),
        };
        // Timers, one instant at a time so each instant's cause can be judged.
        loop {
            let target = match self.engine.next_deadline() {
                Some(d) if d < t => d.max(self.engine.now()),
                _ => t,
            };
            let pre = self.observe();
            let fired = self.engine.advance(target);
            self.script.push((target, None));
            self.trace.push(to_json_lines(&fired));
            let post = self.observe();
            self.check_timers(&pre, &fired, target)
                .map_err(|m| self.fail(m))?;
            self.check_timer_order(&pre, &post, &fired, target)
                .map_err(|m| self.fail(m))?;
            self.check_missed_offers(&pre, &post, None, &fired)
                .map_err(|m| self.fail(m))?;
            check_waiting_again(&post, None, &fired).map_err(|m| self.fail(m))?;
            self.absorb(&fired).map_err(|m| self.fail(m))?;
            self.track_entries(&pre, None, &fired);
            self.check_after(&pre, &post).map_err(|m| self.fail(m))?;
            if let Some(d) = post.next_deadline {
                if d <= target {
                    return Err(
                        self.fail(format!("after advance({target}) next_deadline() is {d}"))
                    );
                }
            }
            if target == t {
                break;
            }
        }
        let post = self.observe();
        // The event.
        let Some(event) = self.resolve(action, &post) else {
            return Ok(());
        };
        let pre = post;
        let result = self.engine.handle(t, &event);
        self.script.push((t, Some(event.clone())));
        match &result {
            Ok(ds) => self.trace.push(to_json_lines(ds)),
            Err(e) => self.trace.push(format!("error {e:?}")),
        }
        match result {
            Err(e) => {
                if let EngineError::QueueFull { queue, .. } = &e {
                    let q = self
                        .cfg
                        .queue(queue)
                        .ok_or("unknown queue")
                        .map_err(|m| self.fail(m.into()))?;
                    let waiting = pre.waiting[&q.id].len();
                    if q.max_waiting.is_none_or(|m| waiting < m) {
                        return Err(self.fail(format!(
                            "{event:?} refused queue_full with {waiting} waiting in `{}` (max {:?})",
                            q.id, q.max_waiting
                        )));
                    }
                    // ... and only when nobody could take it at once (it would then be offered,
                    // not wait): the agent handing it over is left out if the hand-over frees it.
                    let (id, min_tier) = match &event {
                        Event::InteractionTransferred { interaction, .. } => (interaction, None),
                        Event::InteractionEscalated {
                            interaction,
                            min_tier,
                        } => (interaction, Some(*min_tier)),
                        other => {
                            return Err(self.fail(format!("{other:?} refused queue_full")));
                        }
                    };
                    let v = &pre.interactions[id];
                    // The wrap-up that applies is the one of the queue the agent's slot belongs
                    // to (not the interaction's queue, which a drain rewrites; this test never
                    // reloads, but the oracle should not lean on that).
                    let slot_queue = match &v.owner {
                        Owner::Agent(a) => pre.agent(a).and_then(|x| {
                            x.slots
                                .iter()
                                .find(|s| s.interaction.as_deref() == Some(id.as_str()))
                                .map(|s| (a, s.queue.clone()))
                        }),
                        _ => None,
                    };
                    let handing_over = match slot_queue {
                        Some((a, q)) => {
                            let from = self.cfg.queue(&q).ok_or_else(|| {
                                self.fail(format!("`{id}` is held in unknown queue `{q}`"))
                            })?;
                            (from.wrap_up_ms == 0).then_some(&**a)
                        }
                        None => None,
                    };
                    if let Some(taker) =
                        could_take_now(&self.cfg, &pre, q, v, min_tier, t, handing_over)
                    {
                        return Err(self.fail(format!(
                            "{event:?} refused queue_full in `{}` while `{taker}` was free to \
                             take it at once",
                            q.id
                        )));
                    }
                }
                let after = self.observe();
                if after.fingerprint() != pre.fingerprint() {
                    return Err(
                        self.fail(format!("refused event {event:?} ({e}) changed the state"))
                    );
                }
                if let Err(m) = self.engine.check_consistency() {
                    return Err(self.fail(format!("check_consistency after a refusal: {m}")));
                }
            }
            Ok(ds) => {
                if let Event::InteractionArrived { interaction, .. } = &event {
                    self.known.push(interaction.clone());
                    self.arrivals += 1;
                }
                let post = self.observe();
                self.check_event(&pre, &post, &event, &ds, t)
                    .map_err(|m| self.fail(m))?;
                self.check_missed_offers(&pre, &post, Some(&event), &ds)
                    .map_err(|m| self.fail(m))?;
                check_waiting_again(&post, Some(&event), &ds).map_err(|m| self.fail(m))?;
                self.absorb(&ds).map_err(|m| self.fail(m))?;
                self.track_entries(&pre, Some(&event), &ds);
                self.check_after(&pre, &post).map_err(|m| self.fail(m))?;
            }
        }
        Ok(())
    }

    fn check_after(&self, pre: &Observed, post: &Observed) -> Result<(), String> {
        self.engine
            .check_consistency()
            .map_err(|m| format!("check_consistency: {m}"))?;
        check_history_kept(pre, post)?;
        check_state(&self.cfg, post, self.arrivals)?;
        self.check_presence()?;
        self.check_priorities(post)
    }

    /// `agent_presence` (what telemetry reads after a batch) says what the full agent view says.
    fn check_presence(&self) -> Result<(), String> {
        for a in self.engine.agents() {
            let count = |phase| a.slots.iter().filter(|s| s.phase == phase).count() as u32;
            let expected = AgentPresence {
                status: a.status,
                reason: a.reason.clone(),
                activity: a.activity,
                offered: count(SlotPhase::Offered),
                connected: count(SlotPhase::Connected),
                wrap_up: count(SlotPhase::WrapUp),
            };
            let got = self.engine.agent_presence(&a.id);
            if got.as_ref() != Some(&expected) {
                return Err(format!(
                    "agent_presence({}) = {got:?}, the agent view says {expected:?}",
                    a.id
                ));
            }
        }
        Ok(())
    }

    /// docs/ROUTING.md "Priority": the priority on entering the current queue plus the boost of
    /// every ladder step reached there.
    fn check_priorities(&self, post: &Observed) -> Result<(), String> {
        for (id, v) in &post.interactions {
            if !matches!(
                v.state,
                InteractionState::Waiting | InteractionState::Offered
            ) || v.min_tier.is_some()
            {
                continue;
            }
            let (Some(entry), Some(q), Some(step)) = (
                self.entry_priority.get(id),
                v.queue.as_deref().and_then(|q| self.cfg.queue(q)),
                v.step,
            ) else {
                continue;
            };
            let boosts: i32 = q
                .steps
                .iter()
                .take(step + 1)
                .map(|s| s.priority_boost)
                .sum();
            ensure!(
                v.priority == entry + boosts,
                "`{id}` at step {step} of `{}` has priority {}, expected {entry} on entry + {boosts} \
                 of boosts",
                q.id,
                v.priority
            );
        }
        Ok(())
    }

    /// Track the priority interactions carry into a queue, from what the views showed before.
    fn track_entries(&mut self, pre: &Observed, event: Option<&Event>, ds: &[Decision]) {
        match event {
            Some(Event::InteractionArrived {
                interaction,
                priority,
                ..
            }) => {
                self.entry_priority
                    .insert(interaction.clone(), priority.unwrap_or(0));
            }
            Some(Event::InteractionTransferred { interaction, .. }) => {
                if let Some(v) = pre.interactions.get(interaction) {
                    self.entry_priority.insert(interaction.clone(), v.priority);
                }
            }
            _ => {}
        }
        // Overflows into a queue carry the priority reached so far (steps of this instant included).
        let mut current: BTreeMap<String, i32> = BTreeMap::new();
        for d in ds {
            match &d.kind {
                DecisionKind::Escalated {
                    interaction,
                    queue,
                    step: Some(k),
                    by: None,
                    ..
                } => {
                    let boost = self
                        .cfg
                        .queue(queue)
                        .and_then(|q| q.steps.get(*k))
                        .map_or(0, |s| s.priority_boost);
                    let base = pre
                        .interactions
                        .get(&**interaction)
                        .map_or(0, |v| v.priority);
                    *current.entry(interaction.to_string()).or_insert(base) += boost;
                }
                DecisionKind::Overflow {
                    interaction,
                    queue: Some(_),
                    ..
                } => {
                    let base = pre
                        .interactions
                        .get(&**interaction)
                        .map_or(0, |v| v.priority);
                    let p = current.get(&**interaction).copied().unwrap_or(base);
                    self.entry_priority.insert(interaction.to_string(), p);
                }
                _ => {}
            }
        }
    }

    /// docs/ROUTING.md "Offer": a no-answer (decline `no_answer` or expiry) always counts
    /// towards the agent's consecutive missed offers, a `busy`/`rejected` decline when the
    /// offering queue's `count_declines`; an accept, leaving offline, or becoming available
    /// again (from not_ready) resets the count. At the
    /// offering queue's `max_no_answer` (> 0) an available agent becomes not_ready with reason
    /// `no_answer` (the last miss was a no-answer) or `declined`, announced by `agent_state`;
    /// nothing else makes an `agent_state`.
    fn check_missed_offers(
        &mut self,
        pre: &Observed,
        post: &Observed,
        event: Option<&Event>,
        ds: &[Decision],
    ) -> Result<(), String> {
        let mut status: BTreeMap<String, AgentStatus> = pre
            .agents
            .iter()
            .map(|a| (a.id.to_string(), a.status))
            .collect();
        for a in &post.agents {
            let before = status.get(&*a.id);
            let logged_in = before.is_none_or(|s| *s == AgentStatus::Offline)
                && a.status != AgentStatus::Offline;
            let made_available =
                before != Some(&AgentStatus::Available) && a.status == AgentStatus::Available;
            if logged_in || made_available {
                self.missed.remove(&*a.id);
            }
        }
        // (agent, offering queue, a no-answer?) in the order they happened.
        let mut misses: Vec<(String, String, bool)> = Vec::new();
        match event {
            Some(Event::OfferAccepted { agent, .. } | Event::InteractionAnswered { agent, .. }) => {
                self.missed.remove(agent);
            }
            Some(Event::OfferDeclined {
                interaction,
                agent,
                reason,
                ..
            }) => {
                let queue = pre.interactions[interaction].queue.clone();
                misses.push((
                    agent.clone(),
                    queue.ok_or("declined without a queue")?.to_string(),
                    *reason == DeclineReason::NoAnswer,
                ));
            }
            _ => {}
        }
        let mut expected: Vec<(String, String)> = Vec::new();
        let mut got: Vec<(String, String)> = Vec::new();
        let mut count = |agent: &str, queue: &str, no_answer: bool, status: &BTreeMap<_, _>| {
            let q = self.cfg.queue(queue).expect("a configured queue");
            if !(no_answer || q.count_declines) {
                return;
            }
            let n = self.missed.entry(agent.to_string()).or_default();
            *n += 1;
            if q.max_no_answer > 0
                && *n >= q.max_no_answer
                && status.get(agent) == Some(&AgentStatus::Available)
            {
                let why = if no_answer { "no_answer" } else { "declined" };
                expected.push((agent.to_string(), why.to_string()));
            }
        };
        for (agent, queue, no_answer) in &misses {
            count(agent, queue, *no_answer, &status);
        }
        for d in ds {
            match &d.kind {
                DecisionKind::OfferRevoked {
                    agent,
                    offer,
                    reason: RevokeReason::Expired,
                    ..
                } => {
                    let queue = &self.offers.get(&**offer).ok_or("unknown offer")?.0;
                    count(agent, queue, true, &status);
                }
                DecisionKind::AgentState {
                    agent,
                    state,
                    reason,
                } => {
                    ensure!(
                        *state == AgentStatus::NotReady,
                        "the engine made `{agent}` {state:?} on its own: {d:?}"
                    );
                    status.insert(agent.to_string(), *state);
                    got.push((
                        agent.to_string(),
                        reason.as_deref().unwrap_or("").to_string(),
                    ));
                }
                _ => {}
            }
        }
        ensure!(
            got == expected,
            "missed offers: agent_state decisions (agent, reason) {got:?}, expected {expected:?} \
             (consecutive misses now {:?})",
            self.missed
        );
        for (agent, why) in &got {
            let a = post.agent(agent).ok_or("agent vanished")?;
            ensure!(
                a.status == AgentStatus::NotReady && a.reason.as_deref() == Some(why.as_str()),
                "`{agent}` was announced not_ready ({why}) but shows {:?} ({:?})",
                a.status,
                a.reason
            );
        }
        Ok(())
    }

    /// Invariant 5 for `advance`: every decision a timer made carries a deadline we can
    /// predict from the state before (or from a decision made earlier in the same advance).
    fn check_timers(&self, pre: &Observed, fired: &[Decision], t: Millis) -> Result<(), String> {
        let cfg = &self.cfg;
        let mut deadlines: BTreeSet<Millis> = BTreeSet::new();
        let queue_deadlines = |q: &QueueConfig, entered: Millis, set: &mut BTreeSet<Millis>| {
            set.extend(q.steps.iter().map(|s| entered + s.after_ms));
            set.extend(q.max_wait_ms.map(|w| entered + w));
        };
        for a in &pre.agents {
            deadlines.extend(a.backoff_until);
            for s in &a.slots {
                deadlines.extend(s.until);
            }
        }
        for v in pre.interactions.values() {
            if let (false, Some(q)) = (
                v.state.is_final(),
                v.queue.as_deref().and_then(|q| cfg.queue(q)),
            ) {
                queue_deadlines(q, v.entered_queue_at, &mut deadlines);
            }
        }
        let mut last = pre.now;
        let mut offers = self.offers.clone();
        // Overflowed into a queue and not yet announced there by `offer` or `queued`.
        let mut overflowed_in: BTreeSet<String> = BTreeSet::new();
        for d in fired {
            ensure!(
                d.at >= last && d.at <= t,
                "advance({t}) from {}: decision at {} out of order: {d:?}",
                pre.now,
                d.at
            );
            last = d.at;
            ensure!(
                deadlines.contains(&d.at),
                "advance({t}): decision at {} matches no deadline: {d:?}; deadlines {deadlines:?}",
                d.at
            );
            match &d.kind {
                DecisionKind::Offer {
                    queue,
                    offer,
                    expires_at,
                    ..
                } => {
                    let q = cfg.queue(queue).ok_or("offer from unknown queue")?;
                    ensure!(
                        *expires_at == d.at + q.offer_timeout_ms,
                        "offer expiry {expires_at} ≠ {} + {}: {d:?}",
                        d.at,
                        q.offer_timeout_ms
                    );
                    deadlines.insert(*expires_at);
                    offers.insert(offer.to_string(), (queue.to_string(), *expires_at));
                    if let DecisionKind::Offer { interaction, .. } = &d.kind {
                        overflowed_in.remove(&**interaction);
                    }
                }
                DecisionKind::OfferRevoked { offer, reason, .. } => {
                    let (queue, expires_at) = offers
                        .get(&**offer)
                        .cloned()
                        .ok_or(format!("revoked unknown offer: {d:?}"))?;
                    ensure!(
                        *reason == RevokeReason::Expired,
                        "a timer revoked an offer for {reason:?}: {d:?}"
                    );
                    ensure!(
                        d.at == expires_at,
                        "offer `{offer}` revoked at {}, its expiry is {expires_at}",
                        d.at
                    );
                    let q = cfg.queue(&queue).ok_or("unknown queue")?;
                    deadlines.insert(d.at + q.no_answer_delay_ms);
                }
                DecisionKind::Overflow {
                    interaction,
                    queue: Some(to),
                    ..
                } => {
                    overflowed_in.insert(interaction.to_string());
                    let q = cfg.queue(to).ok_or("overflow to unknown queue")?;
                    queue_deadlines(q, d.at, &mut deadlines);
                }
                // Queued again after its offer expired: `check_waiting_again` judges it.
                DecisionKind::Queued { position: None, .. } => {}
                DecisionKind::Queued { interaction, .. } => ensure!(
                    overflowed_in.remove(&**interaction),
                    "a timer queued an interaction that did not just overflow into a queue: {d:?}"
                ),
                DecisionKind::Rejected { .. } => {
                    return Err(format!("a timer made an arrival decision: {d:?}"))
                }
                DecisionKind::Escalated { by: Some(_), .. } => {
                    return Err(format!("a timer made an agent's escalation: {d:?}"))
                }
                DecisionKind::Escalated { step: Some(0), .. } => {
                    return Err(format!("step 0 is not announced: {d:?}"))
                }
                _ => {}
            }
        }
        ensure!(
            overflowed_in.is_empty(),
            "overflowed into a queue without an offer or queued there: {overflowed_in:?}"
        );
        Ok(())
    }

    /// Invariant 3 and the event's own effects.
    fn check_event(
        &self,
        pre: &Observed,
        post: &Observed,
        event: &Event,
        ds: &[Decision],
        t: Millis,
    ) -> Result<(), String> {
        let cfg = &self.cfg;
        for d in ds {
            ensure!(
                d.at == t,
                "{event:?} at {t} made a decision at {}: {d:?}",
                d.at
            );
            ensure!(
                !matches!(d.kind, DecisionKind::Escalated { step: Some(0), .. }),
                "step 0 is not announced: {d:?}"
            );
            if let DecisionKind::Offer {
                queue, expires_at, ..
            } = &d.kind
            {
                let q = cfg.queue(queue).ok_or("offer from unknown queue")?;
                ensure!(
                    *expires_at == t + q.offer_timeout_ms,
                    "offer expiry {expires_at} ≠ {t} + {}",
                    q.offer_timeout_ms
                );
            }
        }
        let offers = offers(ds);
        let strategy_check = |id: &str, except: Option<&str>| {
            self.strategy_check(pre, post, id, &offers, except, None, &format!("{event:?}"))
        };
        match event {
            Event::InteractionArrived { interaction, .. } => {
                let v = &post.interactions[interaction];
                for d in ds {
                    match &d.kind {
                        DecisionKind::Queued {
                            interaction: i,
                            queue,
                            position,
                        } if &**i == interaction => {
                            let list = &post.waiting[&**queue];
                            let at = list.iter().position(|x| x == interaction);
                            ensure!(
                                at.map(|p| p as u64 + 1) == *position,
                                "`{interaction}` queued at position {position:?}, list {list:?}"
                            );
                        }
                        DecisionKind::Rejected {
                            reason: RejectReason::Closed,
                            target,
                            ..
                        } => {
                            let q = cfg
                                .queue(v.queue.as_deref().ok_or("rejected closed without queue")?)
                                .ok_or("unknown queue")?;
                            ensure!(
                                target.as_deref() == q.closed_target.as_deref(),
                                "`{interaction}` rejected closed by `{}` with target {target:?}, \
                                 its closed_target is {:?}",
                                q.id,
                                q.closed_target
                            );
                        }
                        DecisionKind::Rejected {
                            reason: RejectReason::QueueFull,
                            ..
                        } => {
                            let q = cfg
                                .queue(
                                    v.queue
                                        .as_deref()
                                        .ok_or("rejected queue_full without queue")?,
                                )
                                .ok_or("unknown queue")?;
                            let waiting = pre.waiting[&q.id].len();
                            ensure!(
                                q.max_waiting.is_some_and(|m| waiting >= m),
                                "`{interaction}` rejected queue_full with {waiting} waiting in `{}` (max {:?})",
                                q.id,
                                q.max_waiting
                            );
                            let taker = could_take_now(cfg, pre, q, v, None, t, None);
                            ensure!(
                                taker.is_none(),
                                "`{interaction}` rejected queue_full in `{}` while `{}` was free \
                                 to take it at once",
                                q.id,
                                taker.unwrap_or_default()
                            );
                        }
                        _ => {}
                    }
                }
                // ... and an arrival no agent could take is refused once the queue is full.
                if v.state == InteractionState::Waiting {
                    let q = cfg
                        .queue(v.queue.as_deref().ok_or("waiting without a queue")?)
                        .ok_or("unknown queue")?;
                    check_room(pre, q, interaction)?;
                }
                if v.state == InteractionState::Offered {
                    strategy_check(interaction, None)?;
                } else {
                    ensure!(
                        offers.is_empty(),
                        "arrival `{interaction}` made offers {offers:?}"
                    );
                }
            }
            Event::OfferDeclined {
                interaction,
                agent,
                reason,
                ..
            } => {
                let v = &pre.interactions[interaction];
                let q = cfg
                    .queue(v.queue.as_deref().unwrap_or(""))
                    .ok_or("no queue")?;
                let delay = match reason {
                    DeclineReason::Rejected => q.reject_delay_ms,
                    DeclineReason::Busy => q.busy_delay_ms,
                    DeclineReason::NoAnswer => q.no_answer_delay_ms,
                };
                let a = post.agent(agent).ok_or("agent vanished")?;
                // A shorter back-off never cuts a longer one short.
                let earlier = pre.agent(agent).and_then(|a| a.backoff_until).unwrap_or(0);
                let expected = earlier.max(t + delay);
                ensure!(
                    a.backoff_until.unwrap_or(0).max(t) == expected.max(t),
                    "`{agent}` declined ({reason:?}) at {t}: back-off until {:?}, expected {expected}",
                    a.backoff_until
                );
                if delay > 0 {
                    strategy_check(interaction, Some(agent))?;
                }
            }
            Event::InteractionTransferred { interaction, .. }
            | Event::InteractionEscalated { interaction, .. } => {
                let before = &pre.interactions[interaction];
                let old = cfg
                    .queue(before.queue.as_deref().unwrap_or(""))
                    .ok_or("no queue")?;
                if let Event::InteractionEscalated { min_tier, .. } = event {
                    // `escalated` and the history name who escalated: the agent it was with.
                    let Owner::Agent(by) = &before.owner else {
                        return Err(format!("escalated `{interaction}` had no agent"));
                    };
                    let said = ds.iter().find_map(|d| match &d.kind {
                        DecisionKind::Escalated {
                            interaction: i,
                            queue,
                            step: None,
                            by: Some(who),
                            min_tier: Some(m),
                        } if &**i == interaction => Some((queue, who, *m)),
                        _ => None,
                    });
                    ensure!(
                        said.is_some_and(|(q, who, m)| **q == *old.id
                            && who == by
                            && m == *min_tier),
                        "{event:?} with `{by}`: escalated decision {said:?}"
                    );
                    let after = &post.interactions[interaction];
                    ensure!(
                        after.history.iter().rev().any(|h| h.at == t
                            && matches!(&h.why, Why::EscalatedByAgent { by: who, min_tier: m }
                                if who == by && m == min_tier)),
                        "history of `{interaction}` does not record `{by}` escalating it: {:?}",
                        after.history
                    );
                    ensure!(
                        after.priority == before.priority + old.escalation_priority_boost
                            && after.min_tier == Some(*min_tier),
                        "escalated `{interaction}`: priority {} → {} (boost {}), min_tier {:?}",
                        before.priority,
                        after.priority,
                        old.escalation_priority_boost,
                        after.min_tier
                    );
                }
                // "then `offer` or `queued` as for an arrival"
                let announced: Vec<&Decision> = ds
                    .iter()
                    .filter(|d| match &d.kind {
                        DecisionKind::Offer { interaction: i, .. }
                        | DecisionKind::Queued { interaction: i, .. } => &**i == interaction,
                        _ => false,
                    })
                    .collect();
                ensure!(
                    announced.len() == 1,
                    "{event:?}: expected one offer or queued for `{interaction}`, got {ds:?}"
                );
                // It was let in although it waits there: the queue had room before.
                if let DecisionKind::Queued { queue, .. } = &announced[0].kind {
                    check_room(pre, cfg.queue(queue).ok_or("unknown queue")?, interaction)?;
                }
                // With no wrap-up the agent is freed in the same event, after the interaction was
                // queued: the position was right when announced but may be stale by the end.
                if let (
                    DecisionKind::Queued {
                        queue, position, ..
                    },
                    true,
                ) = (&announced[0].kind, old.wrap_up_ms > 0)
                {
                    let list = &post.waiting[&**queue];
                    let at = list.iter().position(|x| x == interaction);
                    ensure!(
                        at.map(|p| p as u64 + 1) == *position,
                        "`{interaction}` queued at position {position:?}, list {list:?}"
                    );
                }
                if old.wrap_up_ms > 0 {
                    strategy_check(interaction, None)?;
                }
            }
            Event::AgentLogin { agent, .. } => {
                // The agent takes its work first. A login with other tiers may then leave a
                // `skip_if_no_agents` step of a queue it served with nobody: what waits there
                // moves on (`escalated`) and may be offered to anyone the next step admits.
                // (A taken-back call that overflows may pass over a step with nobody in its new
                // queue on the way: that is part of putting it back, not of the moving on.)
                let taken_back: BTreeSet<String> =
                    revocations(ds).into_iter().map(|(i, _, _)| i).collect();
                let moved_from = ds
                    .iter()
                    .position(|d| match &d.kind {
                        DecisionKind::Escalated {
                            interaction,
                            by: None,
                            ..
                        } => !taken_back.contains(&**interaction),
                        _ => false,
                    })
                    .unwrap_or(ds.len());
                let (own, moved) = ds.split_at(moved_from);
                // A login with other tiers first takes back what rang the agent from a queue it
                // no longer serves (`reconfigured`); those are re-offered to agents who serve it.
                let now_serves = |q: Option<&str>| {
                    post.agent(agent)
                        .is_some_and(|a| q.is_some_and(|q| a.tiers.contains_key(q)))
                };
                let mut returned: BTreeSet<String> = BTreeSet::new();
                for (i, a, reason) in revocations(own) {
                    let before = &pre.interactions[&i];
                    ensure!(
                        a == *agent
                            && reason == RevokeReason::Reconfigured
                            && before.owner == Owner::Agent(agent.as_str().into())
                            && !now_serves(before.queue.as_deref()),
                        "{event:?}: revoked `{i}` from `{a}` ({reason:?}), but the login only \
                         takes back offers from queues the agent no longer serves"
                    );
                    returned.insert(i);
                }
                for (k, before) in pre.interactions.iter() {
                    if before.owner == Owner::Agent(agent.as_str().into())
                        && before.state == InteractionState::Offered
                        && !now_serves(before.queue.as_deref())
                    {
                        ensure!(
                            returned.contains(k),
                            "{event:?}: `{k}` still rings `{agent}`, who no longer serves {:?}",
                            before.queue
                        );
                    }
                }
                let (returned_offers, own_offers): (Vec<_>, Vec<_>) = support::offers(own)
                    .into_iter()
                    .partition(|(i, _)| returned.contains(i));
                // One whose max wait passed while it rang overflows as it comes back; in its
                // new queue anyone serving it may take it, this agent too.
                let overflowed_to = |i: &str| {
                    own.iter().find_map(|d| match &d.kind {
                        DecisionKind::Overflow {
                            interaction,
                            queue: Some(q),
                            ..
                        } if **interaction == *i => Some(q.to_string()),
                        _ => None,
                    })
                };
                for (i, a) in &returned_offers {
                    let (q, others_only) = match overflowed_to(i) {
                        Some(q) => (q, false),
                        None => (
                            pre.interactions[i]
                                .queue
                                .as_deref()
                                .unwrap_or("")
                                .to_string(),
                            true,
                        ),
                    };
                    ensure!(
                        !(others_only && a == agent)
                            && post
                                .agent(a)
                                .is_some_and(|x| x.tiers.contains_key(q.as_str())),
                        "{event:?}: taken-back `{i}` went to `{a}`, who does not serve `{q}`"
                    );
                }
                self.freed_agent_check(pre, post, agent, &own_offers, event)?;
                let stepped: BTreeSet<&str> = moved
                    .iter()
                    .filter_map(|d| match &d.kind {
                        DecisionKind::Escalated {
                            interaction,
                            by: None,
                            ..
                        } => Some(&**interaction),
                        _ => None,
                    })
                    .collect();
                for (i, a) in support::offers(moved) {
                    ensure!(
                        stepped.contains(i.as_str()),
                        "{event:?}: `{i}` went to `{a}` after the login, but it did not move on \
                         from a step left with nobody"
                    );
                }
            }
            Event::AgentWrapupDone { agent }
            | Event::AgentState {
                agent,
                state: RequestedState::Available,
                ..
            } => self.freed_agent_check(pre, post, agent, &offers, event)?,
            Event::InteractionEnded { interaction, .. } => {
                let v = &pre.interactions[interaction];
                let q = cfg
                    .queue(v.queue.as_deref().unwrap_or(""))
                    .ok_or("no queue")?;
                let Owner::Agent(agent) = &v.owner else {
                    return Err(format!("ended `{interaction}` had no agent"));
                };
                if q.wrap_up_ms == 0 {
                    self.freed_agent_check(pre, post, agent, &offers, event)?;
                } else {
                    ensure!(
                        offers.is_empty(),
                        "{event:?} made offers {offers:?} with no slot freed"
                    );
                }
            }
            Event::InteractionAbandoned { interaction } => {
                let v = &pre.interactions[interaction];
                match &v.owner {
                    Owner::Agent(agent) => {
                        let revoked = revocations(ds);
                        ensure!(
                            revoked.first()
                                == Some(&(
                                    interaction.clone(),
                                    agent.to_string(),
                                    RevokeReason::Abandoned
                                )),
                            "abandon while offered to `{agent}` must revoke first: {ds:?}"
                        );
                        self.freed_agent_check(pre, post, agent, &offers, event)?;
                    }
                    _ => ensure!(offers.is_empty(), "{event:?} made offers {offers:?}"),
                }
            }
            Event::InteractionAnswered { interaction, agent } => {
                let v = &pre.interactions[interaction];
                let now = &post.interactions[interaction];
                ensure!(
                    now.state == InteractionState::Connected
                        && now.owner == Owner::Agent(agent.as_str().into()),
                    "{event:?}: `{interaction}` is {:?} with {:?}, not connected to `{agent}`",
                    now.state,
                    now.owner
                );
                let revoked = revocations(ds);
                // What rang the answering agent (taken back: its phone is busy with this call)
                // goes to other agents serving its queue, never to it.
                let taken_back: BTreeSet<String> = revoked
                    .iter()
                    .filter(|(_, a, r)| a == agent && *r == RevokeReason::AgentAnsweredOther)
                    .map(|(i, _, _)| i.clone())
                    .collect();
                for i in &taken_back {
                    ensure!(
                        pre.interactions[i].owner == Owner::Agent(agent.as_str().into())
                            && pre.interactions[i].state == InteractionState::Offered,
                        "{event:?}: `{i}` was taken back from `{agent}` but did not ring it"
                    );
                }
                let (returned, own): (Vec<_>, Vec<_>) = offers
                    .iter()
                    .cloned()
                    .partition(|(i, _)| taken_back.contains(i));
                if !taken_back.is_empty() {
                    // Only an agent holding nothing but ringing offers, answering an exclusive
                    // channel's interaction, has them taken back.
                    let before = pre.agent(agent).ok_or("the answering agent is known")?;
                    ensure!(
                        cfg.channels[v.channel.index()].exclusive
                            && before.slots.iter().all(|s| s.phase == SlotPhase::Offered),
                        "{event:?}: `{agent}` had {taken_back:?} taken back though it held \
                         {:?} and `{interaction}` is {:?}",
                        before.slots,
                        v.channel
                    );
                }
                for (i, a) in &returned {
                    // Its queue now: one whose max wait passed while it rang overflows on return.
                    let q = post.interactions[i].queue.as_deref().unwrap_or("");
                    ensure!(
                        a != agent && post.agent(a).is_some_and(|x| x.tiers.contains_key(q)),
                        "{event:?}: taken-back `{i}` went to `{a}`"
                    );
                }
                match &v.owner {
                    Owner::Agent(other) if **other != **agent => {
                        ensure!(
                            revoked.first()
                                == Some(&(
                                    interaction.clone(),
                                    other.to_string(),
                                    RevokeReason::AnsweredElsewhere
                                )),
                            "answered by `{agent}` while offered to `{other}` must revoke \
                             that offer first: {ds:?}"
                        );
                        self.freed_agent_check(pre, post, other, &own, event)?;
                    }
                    _ => ensure!(own.is_empty(), "{event:?} made offers {own:?}"),
                }
            }
            Event::OfferAccepted { .. }
            | Event::InteractionRated { .. }
            | Event::AgentState {
                state: RequestedState::NotReady,
                ..
            } => ensure!(offers.is_empty(), "{event:?} made offers {offers:?}"),
            Event::AgentLogout { agent }
            | Event::AgentState {
                agent,
                state: RequestedState::Offline,
                ..
            } => {
                for (i, a) in &offers {
                    ensure!(a != agent, "`{agent}` went offline and was offered `{i}`");
                }
            }
        }
        Ok(())
    }

    /// Exactly one interaction (`id`) newly needs an agent and nothing else changed: every offer
    /// is for it, and it goes to the agent its queue's strategy picks among the agents eligible
    /// just before (minus `except`, an agent that just became ineligible), judged at the ladder
    /// step it had when offered (`step_at_offer`, default: the step it has now).
    #[allow(clippy::too_many_arguments)] // each is one fact about the instant being judged
    fn strategy_check(
        &self,
        pre: &Observed,
        post: &Observed,
        id: &str,
        offers: &[(String, String)],
        except: Option<&str>,
        step_at_offer: Option<usize>,
        context: &str,
    ) -> Result<(), String> {
        let cfg = &self.cfg;
        let t = post.now;
        let v = &post.interactions[id];
        for (i, a) in offers {
            ensure!(
                i == id,
                "{context}: offered `{i}` to `{a}`; only `{id}` needed an agent"
            );
        }
        let Some((_, chosen)) = offers.first() else {
            return Ok(());
        };
        ensure!(
            offers.len() == 1,
            "{context}: `{id}` offered twice: {offers:?}"
        );
        let qid = v.queue.as_deref().ok_or("offered without a queue")?;
        let q = cfg.queue(qid).ok_or("unknown queue")?;
        // Judge eligibility as the interaction stood when it needed an agent (waiting, this step).
        let mut as_waiting = v.clone();
        as_waiting.state = InteractionState::Waiting;
        if v.min_tier.is_none() && step_at_offer.is_some() {
            as_waiting.step = step_at_offer;
        }
        let candidates: Vec<&AgentView> = pre
            .agents
            .iter()
            .filter(|a| Some(&*a.id) != except)
            .filter(|a| eligible(cfg, t, a, &slot_channels(a), &as_waiting))
            .collect();
        let last = self.last_offered.get(qid).map(|s| s.as_str());
        let allowed = strategy_choice(q, v.channel, &candidates, last);
        ensure!(
            allowed.contains(chosen),
            "{context}: `{id}` ({}, queue {qid}, step {:?}) offered to `{chosen}`, but the {:?} \
             oracle picks {allowed:?} among eligible (id, idle_since, accepted, slots) {:?} \
             (last offered {last:?})",
            v.channel,
            v.step,
            q.strategy,
            candidates
                .iter()
                .map(|a| (&*a.id, a.idle_since, a.accepted_since_login, a.slots.len()))
                .collect::<Vec<_>>(),
        );
        Ok(())
    }

    /// Order (invariant 3) for one timer instant. Instants whose cause is unambiguous are
    /// checked: only agents freed (wrap-up or back-off over) ⇒ each takes a most urgent
    /// interaction; one interaction changed (a ladder step, an expiry, an overflow into a queue)
    /// and no agent freed ⇒ the strategy's pick. Mixed instants are left to invariants 1, 2, 4, 5.
    fn check_timer_order(
        &self,
        pre: &Observed,
        post: &Observed,
        fired: &[Decision],
        t: Millis,
    ) -> Result<(), String> {
        let offers = offers(fired);
        if offers.is_empty() {
            return Ok(());
        }
        let freed: BTreeSet<&str> = pre
            .agents
            .iter()
            .filter(|a| {
                a.backoff_until == Some(t)
                    || a.slots
                        .iter()
                        .any(|s| s.phase == SlotPhase::WrapUp && s.until == Some(t))
            })
            .map(|a| &*a.id)
            .collect();
        let others: Vec<&Decision> = fired
            .iter()
            .filter(|d| !matches!(d.kind, DecisionKind::Offer { .. }))
            .collect();
        let context = format!("timers at {t}");
        if others.is_empty() {
            for (i, a) in &offers {
                ensure!(
                    freed.contains(a.as_str()),
                    "{context}: only offers were made, yet `{a}` (offered `{i}`) was not freed at {t}"
                );
            }
            return self.freed_agents_check(pre, post, &offers, true, &context);
        }
        if !freed.is_empty() {
            return Ok(());
        }
        let mut subjects = BTreeSet::new();
        let mut except = None;
        for d in &others {
            match &d.kind {
                DecisionKind::Escalated {
                    interaction,
                    by: None,
                    ..
                }
                | DecisionKind::Overflow { interaction, .. }
                | DecisionKind::Queued { interaction, .. } => {
                    subjects.insert(interaction.to_string());
                }
                DecisionKind::OfferRevoked {
                    interaction,
                    agent,
                    offer,
                    ..
                } => {
                    subjects.insert(interaction.to_string());
                    let queue = &self.offers.get(&**offer).ok_or("unknown offer")?.0;
                    if self
                        .cfg
                        .queue(queue)
                        .is_some_and(|q| q.no_answer_delay_ms == 0)
                    {
                        return Ok(()); // the agent is free again at once: two things changed
                    }
                    except = Some(agent.to_string());
                }
                DecisionKind::AgentState { .. } => {}
                _ => return Ok(()),
            }
        }
        if subjects.len() != 1 {
            return Ok(());
        }
        let Some(id) = subjects.pop_first() else {
            return Ok(());
        };
        let was = pre.interactions.get(&id).map(|v| v.state);
        if was == Some(InteractionState::Waiting) || except.is_some() || {
            let v = &post.interactions[&id];
            v.history
                .iter()
                .any(|h| h.at == t && matches!(h.why, Why::Overflow { .. }))
        } {
            // The ladder step when the offer was made: a step reached later in this instant
            // (its timer created later) does not count.
            let offer_at = fired.iter().position(|d| {
                matches!(&d.kind, DecisionKind::Offer { interaction, .. } if **interaction == *id)
            });
            let before_offer = &fired[..offer_at.unwrap_or(0)];
            let step = before_offer
                .iter()
                .rev()
                .find_map(|d| match &d.kind {
                    DecisionKind::Escalated {
                        interaction,
                        step: Some(k),
                        by: None,
                        ..
                    } if **interaction == *id => Some(*k),
                    DecisionKind::Overflow { interaction, .. } if **interaction == *id => Some(0),
                    _ => None,
                })
                .or_else(|| pre.interactions.get(&id).and_then(|v| v.step));
            self.strategy_check(pre, post, &id, &offers, except.as_deref(), step, &context)?;
        }
        Ok(())
    }

    /// Agents were freed and nothing else changed: each offer, in order, is for a most urgent
    /// interaction its agent is eligible for among those still waiting.
    ///
    /// In a timer instant several timers of one agent may share the deadline and fire one after
    /// the other (e.g. its back-off ends, it takes a chat, then its wrap-up ends), so the slots
    /// it held at the moment of an offer are not visible. `timer_instant` then judges with the
    /// wrap-ups ending at this instant still held: more slots only make fewer interactions
    /// eligible, so the check stays sound (never a false alarm), if weaker.
    fn freed_agents_check(
        &self,
        pre: &Observed,
        post: &Observed,
        offers: &[(String, String)],
        timer_instant: bool,
        context: &str,
    ) -> Result<(), String> {
        let cfg = &self.cfg;
        let t = post.now;
        let mut taken: Vec<&str> = Vec::new();
        for (k, (i, agent)) in offers.iter().enumerate() {
            let a = post.agent(agent).ok_or("offered to an unknown agent")?;
            let offered = pre
                .interactions
                .get(i)
                .filter(|v| v.state == InteractionState::Waiting)
                .ok_or(format!(
                    "{context}: `{agent}` was offered `{i}`, which was not waiting"
                ))?;
            // The agent's slots at the moment of this offer: its slots now minus later offers.
            let later: BTreeSet<&str> = offers[k..]
                .iter()
                .filter(|(_, x)| x == agent)
                .map(|(i, _)| i.as_str())
                .collect();
            let mut slots: Vec<Channel> = a
                .slots
                .iter()
                .filter(|s| {
                    !(s.phase == SlotPhase::Offered
                        && s.interaction.as_deref().is_some_and(|x| later.contains(x)))
                })
                .map(|s| s.channel)
                .collect();
            if timer_instant {
                let before = pre.agent(agent).map_or(&[][..], |a| &a.slots[..]);
                slots.extend(
                    before
                        .iter()
                        .filter(|s| s.phase == SlotPhase::WrapUp && s.until == Some(t))
                        .map(|s| s.channel),
                );
            }
            for id in pre.waiting_ids() {
                if taken.contains(&id.as_str()) || id == i {
                    continue;
                }
                let j = &pre.interactions[id];
                let same_queue_ahead = j.queue == offered.queue && {
                    let list = &pre.waiting[offered.queue.as_deref().unwrap_or("")];
                    list.iter().position(|x| x == id) < list.iter().position(|x| x == i)
                };
                ensure!(
                    !((more_urgent(j, offered) || same_queue_ahead)
                        && eligible(cfg, t, a, &slots, j)),
                    "{context}: freed `{agent}` was offered `{i}` (p{} at {}) although `{id}` \
                     (p{} at {}, queue {:?}) is more urgent and eligible",
                    offered.priority,
                    offered.entered_queue_at,
                    j.priority,
                    j.entered_queue_at,
                    j.queue
                );
            }
            taken.push(i);
        }
        Ok(())
    }

    /// A freed agent takes, one after another, a most urgent eligible waiting interaction; no
    /// other agent's situation changed, so no other agent gets anything.
    fn freed_agent_check(
        &self,
        pre: &Observed,
        post: &Observed,
        agent: &str,
        offers: &[(String, String)],
        event: &Event,
    ) -> Result<(), String> {
        for (i, a) in offers {
            ensure!(
                a == agent,
                "{event:?}: only `{agent}` was freed, yet `{i}` went to `{a}`"
            );
        }
        self.freed_agents_check(pre, post, offers, false, &format!("{event:?}"))
    }

    /// Every history, whole: chains, exact ladder and overflow times.
    fn check_histories(&self) -> Result<(), String> {
        for id in &self.known {
            let v = self
                .engine
                .interaction(id)
                .ok_or(format!("`{id}` is no longer readable"))?;
            check_history(&self.cfg, &v)?;
        }
        Ok(())
    }
}

/// An agent that could take `i` at once on entering `q` at `t`: at the step it enters (step 0,
/// past any `skip_if_no_agents` step with none of its tiers logged in for `q`), or, escalated,
/// at `min_tier`. `handing_over` (the agent a transfer or an escalation frees at once) is left
/// out. A full queue refuses an interaction (`queue_full`) only when this is `None`.
fn could_take_now(
    cfg: &RoutingConfig,
    pre: &Observed,
    q: &QueueConfig,
    i: &InteractionView,
    min_tier: Option<Tier>,
    t: Millis,
    handing_over: Option<&str>,
) -> Option<String> {
    let staffed = |k: usize| {
        pre.agents.iter().any(|a| {
            a.status != AgentStatus::Offline
                && a.tiers
                    .get(q.id.as_str())
                    .is_some_and(|t| q.steps[k].tiers.contains(t))
        })
    };
    let mut step = 0;
    while step + 1 < q.steps.len() && q.steps[step].skip_if_no_agents && !staffed(step) {
        step += 1;
    }
    let mut entering = i.clone();
    entering.queue = Some(q.id.as_str().into());
    entering.step = min_tier.is_none().then_some(step);
    entering.min_tier = min_tier;
    pre.agents
        .iter()
        .filter(|a| Some(&*a.id) != handing_over)
        .find(|a| eligible(cfg, t, a, &slot_channels(a), &entering))
        .map(|a| a.id.to_string())
}

/// An interaction whose offer ended in this step (revoked, or declined by the event) and that
/// waits at its end, not offered again after that, is announced `queued` after the offer ended
/// (without a position when it is back in its place; with one when it overflowed into another
/// queue on its way back); and a `queued` without a position follows an offer of it ending,
/// with no new offer of it in between.
fn check_waiting_again(
    post: &Observed,
    event: Option<&Event>,
    ds: &[Decision],
) -> Result<(), String> {
    // Per interaction, where in `ds` its last offer ended (-1: the event itself declined it).
    let mut ended: BTreeMap<String, i64> = BTreeMap::new();
    let mut last_offer: BTreeMap<String, i64> = BTreeMap::new();
    let mut last_queued: BTreeMap<String, i64> = BTreeMap::new();
    // Per interaction, the `queued` made since its last offer ended: one without a position
    // comes first or not at all (an overflow into another queue was announced there).
    let mut queued_since_end: BTreeMap<String, usize> = BTreeMap::new();
    if let Some(Event::OfferDeclined { interaction, .. }) = event {
        ended.insert(interaction.clone(), -1);
    }
    for (k, d) in ds.iter().enumerate() {
        let k = k as i64;
        match &d.kind {
            DecisionKind::OfferRevoked { interaction, .. } => {
                ended.insert(interaction.to_string(), k);
                queued_since_end.insert(interaction.to_string(), 0);
            }
            DecisionKind::Offer { interaction, .. } => {
                last_offer.insert(interaction.to_string(), k);
            }
            DecisionKind::Queued {
                interaction,
                position,
                ..
            } => {
                if position.is_none() {
                    let end = ended.get(&**interaction).copied().ok_or(format!(
                        "`{interaction}` queued again (no position) but no offer of it ended: {ds:?}"
                    ))?;
                    ensure!(
                        last_offer.get(&**interaction).is_none_or(|o| *o < end),
                        "`{interaction}` queued again while an offer of it rings: {ds:?}"
                    );
                }
                last_queued.insert(interaction.to_string(), k);
                if ended.contains_key(&**interaction) {
                    let n = queued_since_end.entry(interaction.to_string()).or_insert(0);
                    ensure!(
                        position.is_some() || *n == 0,
                        "`{interaction}` queued again (no position) after it was announced \
                         `queued` since its offer ended: {ds:?}"
                    );
                    *n += 1;
                }
            }
            _ => {}
        }
    }
    for (i, end) in &ended {
        let waiting = post
            .interactions
            .get(i)
            .is_some_and(|v| v.state == InteractionState::Waiting);
        let offered_after = last_offer.get(i).is_some_and(|o| o > end);
        let announced = last_queued.get(i).is_some_and(|q| q > end);
        ensure!(
            !waiting || offered_after || announced,
            "`{i}` waits again after its offer ended but was not announced `queued`: {ds:?}"
        );
    }
    Ok(())
}

/// `max_waiting`: an interaction that had to wait in `q` was let in only if fewer than
/// `max_waiting` waited there before (else it is refused `queue_full`).
fn check_room(pre: &Observed, q: &QueueConfig, id: &str) -> Result<(), String> {
    let before = pre.waiting[&q.id].len();
    ensure!(
        q.max_waiting.is_none_or(|m| before < m),
        "`{id}` was queued in `{}` with {before} already waiting (max_waiting {:?}): it should \
         have been refused queue_full",
        q.id,
        q.max_waiting
    );
    Ok(())
}

/// Replays the concrete script on a fresh engine; returns every result, serialized.
fn replay(cfg: &RoutingConfig, script: &[(Millis, Option<Event>)]) -> Vec<String> {
    let mut engine = Engine::new(cfg.clone(), 0);
    script
        .iter()
        .map(|(t, event)| play(&mut engine, *t, event.as_ref()))
        .collect()
}

/// One step of a script (an `advance`, or an event at its time), its result serialized.
fn play(engine: &mut Engine, t: Millis, event: Option<&Event>) -> String {
    match event {
        None => to_json_lines(&engine.advance(t)),
        Some(e) => match engine.handle(t, e) {
            Ok(ds) => to_json_lines(&ds),
            Err(e) => format!("error {e:?}"),
        },
    }
}

/// Replays the script on a fresh engine that, before step `cut`, is written to a snapshot and
/// read back, and goes on as the engine read back. Also checks that a capture taken at `cut` and
/// written only after the next step (the engine having moved on) writes the same bytes.
fn replay_through_snapshot(
    cfg: &RoutingConfig,
    script: &[(Millis, Option<Event>)],
    cut: usize,
) -> Result<Vec<String>, String> {
    let mut engine = Engine::new(cfg.clone(), 0);
    let mut out = Vec::new();
    let mut pending = None;
    for (n, (t, event)) in script.iter().enumerate() {
        if n == cut {
            let mut bytes = Vec::new();
            engine
                .write_snapshot(&mut bytes)
                .map_err(|e| format!("snapshot before step {n}: {e}"))?;
            let restored = Engine::read_snapshot(&mut bytes.as_slice())
                .map_err(|e| format!("snapshot before step {n} read back: {e}"))?;
            restored
                .check_consistency()
                .map_err(|e| format!("restored before step {n}: {e}"))?;
            pending = Some((engine.capture(), bytes));
            engine = restored;
        }
        out.push(play(&mut engine, *t, event.as_ref()));
        if let Some((capture, bytes)) = pending.take() {
            let mut later = Vec::new();
            capture
                .write_snapshot(&mut later)
                .map_err(|e| format!("capture of step {n}: {e}"))?;
            if later != bytes {
                return Err(format!(
                    "a capture taken before step {n}, written after it, differs from the snapshot"
                ));
            }
        }
    }
    Ok(out)
}

/// Replays the script with the clock moved in one jump per generated step (consecutive
/// `advance` calls merged): timers must fire at the same instants with the same decisions.
fn replay_in_big_jumps(cfg: &RoutingConfig, script: &[(Millis, Option<Event>)]) -> Vec<String> {
    let mut engine = Engine::new(cfg.clone(), 0);
    let mut out = Vec::new();
    for (n, (t, event)) in script.iter().enumerate() {
        match event {
            None if matches!(script.get(n + 1), Some((_, None))) => {}
            None => out.extend(
                engine
                    .advance(*t)
                    .iter()
                    .map(|d| to_json_lines(std::slice::from_ref(d))),
            ),
            Some(e) => match engine.handle(*t, e) {
                Ok(ds) => out.extend(ds.iter().map(|d| to_json_lines(std::slice::from_ref(d)))),
                Err(e) => out.push(format!("error {e:?}")),
            },
        }
    }
    out
}

fn cases() -> u32 {
    proptest_cases(1_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    /// Invariants 1–5 after every step of a random day on a random floor.
    #[test]
    fn the_engine_keeps_its_invariants_on_random_days(
        plan in world_plan(),
        script in prop::collection::vec((jump(), action()), 1..80),
        cut in any::<prop::sample::Index>(),
    ) {
        let cfg = build_config(&plan);
        let mut run = Run::new(cfg.clone());
        for (jump, action) in &script {
            run.step(jump, action)?;
        }
        // Drain every timer left: nothing is stuck and everything still holds.
        for _ in 0..200 {
            let Some(d) = run.engine.next_deadline() else { break };
            run.step(&Jump::Ms(d - run.engine.now()), &Action::Wait)?;
        }
        run.check_histories().map_err(|m| run.fail(m))?;
        // 5. Determinism: the same script on a fresh engine makes byte-identical decisions.
        let again = replay(&cfg, &run.script);
        prop_assert_eq!(again.len(), run.trace.len());
        for (n, (a, b)) in run.trace.iter().zip(again.iter()).enumerate() {
            prop_assert_eq!(a, b, "replay differs at script step {}", n);
        }
        let flat: Vec<String> = run
            .trace
            .iter()
            .flat_map(|x| if x.is_empty() { vec![] } else { x.lines().map(str::to_string).collect() })
            .collect();
        let coarse = replay_in_big_jumps(&cfg, &run.script);
        prop_assert_eq!(flat, coarse, "advancing in one jump changed the decisions");
        // A snapshot taken at any step and read back decides exactly like the engine it came
        // from.
        let cut = cut.index(run.script.len() + 1);
        let restored = replay_through_snapshot(&cfg, &run.script, cut).map_err(TestCaseError::fail)?;
        prop_assert_eq!(restored.len(), run.trace.len());
        for (n, (a, b)) in run.trace.iter().zip(restored.iter()).enumerate() {
            prop_assert_eq!(a, b, "after a snapshot before step {}, step {} differs", cut, n);
        }
    }
}
