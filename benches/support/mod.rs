//! The contact centre the engine benchmarks run against: Twilio TaskRouter's default workspace
//! ceilings (15,000 agents, 5,000 queues) with a chosen number of interactions waiting.
//!
//! It owns building that engine (outside any timed region) and the bookkeeping the benchmarks
//! need to put the engine back into a comparable state after each measured operation. It never
//! times anything itself and never reaches into engine internals: it drives the public API only,
//! and checks each decision it relies on so a benchmark can never silently measure the wrong path.
//!
//! The layout (every queue voice-only, longest-idle, wrap-up 0):
//! - 4,000 *busy* queues `b0000…b3999`. Each has 3 home agents (L1, L2, L3); every agent also
//!   serves the next busy queue at the same tier and the `backlog` queue at tier 1. All 12,000
//!   busy agents hold a connected call, so interactions routed here wait. The waiting population
//!   is spread round-robin over these queues with priorities 0–9 (seeded RNG).
//! - 999 *idle* queues `i000…i998` with 3,000 free agents (home queue + next idle queue, same
//!   tier): an arrival there is offered at once.
//! - 1 `backlog` queue, used only during setup to hand each busy agent its connected call (an
//!   arrival is offered to any free agent of the queue, so 12,000 arrivals occupy exactly the
//!   12,000 busy agents). It is empty afterwards.
//!
//! The ladder of busy and idle queues is L1 at 0, L1+L2 (+1 priority) at 1 ms, all tiers (+5) at
//! one hour. The 1 ms step is what the timer benchmark fires: engine time moves 1 ms per batch of
//! fired timers, so a fresh step timer is due every millisecond, while the waiting population's
//! next-step timers (one hour out) stay pending in the engine's timer index throughout.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tierline::config::{AgentConfig, Channel, Millis, QueueConfig, RoutingConfig, Step};
use tierline::engine::{Decision, DecisionKind, Engine, Event};

/// Engine time when the fixture is built (an arbitrary Unix millisecond, 2023-11-14).
pub const T0: Millis = 1_700_000_000_000;
pub const IDLE_QUEUES: usize = 999;
pub const IDLE_AGENTS: usize = 3_000;

/// Busy queues: 4,000, for 15,000 agents in all; `TIERLINE_BENCH_AGENTS=N` scales the busy part
/// (3 agents per busy queue) to about N agents in all, e.g. 100,000 for issue 8's "dispatch cost
/// at 100,000 agents and 1,000,000 waiting".
pub fn busy_queues() -> usize {
    static BUSY: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BUSY.get_or_init(|| {
        std::env::var("TIERLINE_BENCH_AGENTS")
            .ok()
            .map(|v| {
                let agents: usize = v
                    .parse()
                    .unwrap_or_else(|_| panic!("TIERLINE_BENCH_AGENTS=`{v}` is not a number"));
                assert!(
                    agents >= IDLE_AGENTS + 3,
                    "TIERLINE_BENCH_AGENTS must be at least {}",
                    IDLE_AGENTS + 3
                );
                (agents - IDLE_AGENTS) / 3
            })
            .unwrap_or(4_000)
    })
}

/// The operations use only the first this many busy queues (and their agents) at every size:
/// `TIERLINE_BENCH_ACTIVE_QUEUES`, unset = all that have interactions waiting. At 1,000 waiting
/// only 1,000 queues have any, at 500,000 all 4,000 do, so by default two sizes differ in how
/// many queues and agents the operations cycle through as well as in how many wait.
/// `TIERLINE_BENCH_ACTIVE_QUEUES=1000` holds that equal, so only the waiting population differs.
pub fn active_queues() -> usize {
    static ACTIVE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ACTIVE.get_or_init(|| {
        std::env::var("TIERLINE_BENCH_ACTIVE_QUEUES")
            .ok()
            .map(|v| {
                v.parse().unwrap_or_else(|_| {
                    panic!("TIERLINE_BENCH_ACTIVE_QUEUES=`{v}` is not a number")
                })
            })
            .unwrap_or(usize::MAX)
    })
}

/// Busy + idle + the backlog queue.
pub fn queues() -> usize {
    busy_queues() + IDLE_QUEUES + 1
}

pub fn busy_agents() -> usize {
    3 * busy_queues()
}

pub fn agents() -> usize {
    busy_agents() + IDLE_AGENTS
}
/// When the waiting population's next ladder step is due (the timer benchmark must stay below).
pub const LAST_STEP_AFTER_MS: Millis = 3_600_000;
pub const BACKLOG: &str = "backlog";

pub fn busy_queue(i: usize) -> String {
    format!("b{i:04}")
}

pub fn idle_queue(i: usize) -> String {
    format!("i{i:03}")
}

/// Busy agent `i`: home queue `i % busy_queues()`, tier `i / busy_queues() + 1`. So agent
/// `h < busy_queues()` is the L1 agent of busy queue `h` (and of `h + 1`).
pub fn busy_agent(i: usize) -> String {
    format!("ab{i:05}")
}

/// Idle agent `j`: home queue `j % 999`, tier `j / 1000 + 1`.
pub fn idle_agent(j: usize) -> String {
    format!("ai{j:04}")
}

fn ladder() -> Vec<Step> {
    vec![
        Step::new(0, &[1]),
        Step::new(1, &[1, 2]).boosted(1),
        Step::new(LAST_STEP_AFTER_MS, &[1, 2, 3]).boosted(5),
    ]
}

fn queue(id: String, steps: Vec<Step>) -> QueueConfig {
    let mut q = QueueConfig::with_defaults(&id);
    q.channels = vec![Channel::Voice];
    q.wrap_up_ms = 0;
    q.steps = steps;
    q
}

/// The 5,000 queues, with or without the 15,000-agent roster.
pub fn config(with_agents: bool) -> RoutingConfig {
    let mut config = RoutingConfig::empty();
    config.seed = 7;
    for i in 0..busy_queues() {
        config.queues.push(queue(busy_queue(i), ladder()));
    }
    for i in 0..IDLE_QUEUES {
        config.queues.push(queue(idle_queue(i), ladder()));
    }
    let mut backlog = queue(BACKLOG.to_string(), ladder());
    backlog.steps.truncate(1);
    config.queues.push(backlog);
    if with_agents {
        for i in 0..busy_agents() {
            let home = i % busy_queues();
            let tier = (i / busy_queues() + 1) as u8;
            let tiers = BTreeMap::from([
                (busy_queue(home), tier),
                (busy_queue((home + 1) % busy_queues()), tier),
                (BACKLOG.to_string(), 1),
            ]);
            config.agents.push(agent(busy_agent(i), tiers));
        }
        for j in 0..IDLE_AGENTS {
            let home = j % IDLE_QUEUES;
            let tier = (j / 1000 + 1) as u8;
            let tiers = BTreeMap::from([
                (idle_queue(home), tier),
                (idle_queue((home + 1) % IDLE_QUEUES), tier),
            ]);
            config.agents.push(agent(idle_agent(j), tiers));
        }
    }
    config
}

fn agent(id: String, tiers: BTreeMap<String, u8>) -> AgentConfig {
    AgentConfig {
        address: format!("sip:{id}@pbx"),
        id,
        tiers,
        skills: Vec::new(),
        capacity: BTreeMap::new(),
    }
}

pub fn arrival(interaction: String, queue: String, priority: i32) -> Event {
    Event::InteractionArrived {
        interaction,
        channel: Channel::Voice,
        queue: Some(queue),
        priority: Some(priority),
        skills: Vec::new(),
        customer: None,
        attributes: BTreeMap::new(),
    }
}

pub fn abandon(interaction: String) -> Event {
    Event::InteractionAbandoned { interaction }
}

pub fn accept(interaction: String, agent: String) -> Event {
    Event::OfferAccepted {
        interaction,
        agent,
        offer: None,
    }
}

pub fn ended(interaction: String) -> Event {
    Event::InteractionEnded {
        interaction,
        resolved: None,
    }
}

/// Apply an event the fixture knows is valid; a refusal means the benchmark setup is broken.
pub fn must(engine: &mut Engine, now: Millis, event: &Event) -> Vec<Decision> {
    match engine.handle(now, event) {
        Ok(decisions) => decisions,
        Err(e) => panic!("bench setup: engine refused {event:?} at {now}: {e}"),
    }
}

/// The single offer `decisions` must consist of: (interaction, agent, queue).
pub fn the_offer(decisions: &[Decision], context: &str) -> (String, String, String) {
    match decisions {
        [Decision {
            kind:
                DecisionKind::Offer {
                    interaction,
                    agent,
                    queue,
                    ..
                },
            ..
        }] => (
            interaction.to_string(),
            agent.to_string(),
            queue.to_string(),
        ),
        other => panic!("bench setup: {context}: expected exactly one offer, got {other:?}"),
    }
}

/// `decisions` must be exactly one `queued`.
pub fn assert_queued(decisions: &[Decision], context: &str) {
    if !matches!(
        decisions,
        [Decision {
            kind: DecisionKind::Queued { .. },
            ..
        }]
    ) {
        panic!("bench setup: {context}: expected exactly one queued, got {decisions:?}");
    }
}

/// The benchmark contact centre plus what the benchmarks need to restore it.
pub struct Fixture {
    pub engine: Engine,
    /// Engine time; only the timer benchmark moves it.
    pub now: Millis,
    /// Interactions waiting in the busy queues (the size parameter).
    pub waiting: usize,
    /// Busy queues `0..nonempty` hold waiting interactions (all of them at 500k).
    pub nonempty: usize,
    /// The connected interaction of each busy L1 agent `h` (index = home queue).
    pub l1_call: Vec<String>,
    /// Next idle queue an immediately-offered arrival goes to (rotates).
    pub idle_cursor: usize,
    /// Next busy L1 agent to free (rotates over every other home queue).
    pub l1_cursor: usize,
    pub rng: ChaCha8Rng,
    next_id: u64,
}

/// Steps of the build, so the memory program can measure between them.
impl Fixture {
    /// 5,000 queues and 15,000 agents, every agent logged in, every busy agent on a call, nothing
    /// waiting yet.
    pub fn staffed() -> Fixture {
        let mut engine = Engine::new(config(true), T0);
        log_everyone_in(&mut engine);
        let mut l1_call = vec![String::new(); busy_queues()];
        for s in 0..busy_agents() {
            let id = format!("s{s:05}");
            let offered = must(&mut engine, T0, &arrival(id, BACKLOG.to_string(), 0));
            let (interaction, agent, _) = the_offer(&offered, "seeding the busy agents");
            let accepted = must(&mut engine, T0, &accept(interaction.clone(), agent.clone()));
            assert!(
                accepted.is_empty(),
                "bench setup: accepting a seed made decisions: {accepted:?}"
            );
            if let Some(h) = l1_home(&agent) {
                l1_call[h] = interaction;
            }
        }
        assert!(
            l1_call.iter().all(|c| !c.is_empty()),
            "bench setup: some busy L1 agent got no seed call"
        );
        Fixture {
            engine,
            now: T0,
            waiting: 0,
            nonempty: 0,
            l1_call,
            idle_cursor: 0,
            l1_cursor: 0,
            rng: ChaCha8Rng::seed_from_u64(42),
            next_id: 0,
        }
    }

    /// Add `n` waiting interactions, round-robin over the busy queues, priorities 0–9.
    pub fn add_waiting(&mut self, n: usize) {
        for k in self.waiting..self.waiting + n {
            let priority = self.rng.gen_range(0..10);
            let event = arrival(format!("w{k:06}"), busy_queue(k % busy_queues()), priority);
            let decisions = must(&mut self.engine, self.now, &event);
            assert_queued(&decisions, "adding the waiting population");
        }
        self.waiting += n;
        self.nonempty = self.waiting.min(busy_queues());
    }

    /// Fire the 1 ms ladder step of everything that is due, so no timer is pending before the
    /// next measurement (1 ms of engine time passes). Nothing may be offered: all tiers that
    /// become eligible are busy.
    pub fn settle(&mut self) {
        self.now += 1;
        let fired = self.engine.advance(self.now);
        if let Some(d) = fired
            .iter()
            .find(|d| !matches!(d.kind, DecisionKind::Escalated { .. }))
        {
            panic!("bench setup: settling made a decision other than escalated: {d:?}");
        }
    }

    /// Finish as many interactions as the engine retains for reads (`limits.retain_finished`,
    /// 100,000 by default): each arrives in the backlog queue (all its agents are busy) and
    /// abandons. A daemon is in this state after its first 100,000 interactions; without it the
    /// timed calls would pay for growing the interaction slab and id map (a one-off copy of
    /// hundreds of MB) instead of the steady state's eviction of the oldest finished interaction.
    pub fn fill_finished(&mut self) {
        for k in 0..self.engine.config().limits.retain_finished {
            let id = format!("f{k:06}");
            let queued = must(
                &mut self.engine,
                self.now,
                &arrival(id.clone(), BACKLOG.to_string(), 0),
            );
            assert_queued(&queued, "filling the finished retention");
            must(&mut self.engine, self.now, &abandon(id));
        }
    }

    /// The whole fixture: staffed, the finished retention full, `waiting` interactions waiting,
    /// timers settled.
    pub fn build(waiting: usize) -> Fixture {
        let mut f = Fixture::staffed();
        f.fill_finished();
        f.add_waiting(waiting);
        f.settle();
        let counts = f.engine.counts();
        assert_eq!(
            (counts.waiting, counts.connected),
            (waiting as u64, busy_agents() as u64),
            "bench setup: unexpected engine counts {counts:?}"
        );
        f
    }

    /// A fresh interaction id (never reused: finished interactions are retained for reads).
    pub fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:09}", self.next_id)
    }

    /// A random busy queue with interactions waiting, among the first `active_queues()`.
    pub fn random_nonempty_queue(&mut self) -> String {
        busy_queue(self.rng.gen_range(0..self.active().max(1)))
    }

    /// How many busy queues (from the first) the operations use: those with interactions
    /// waiting, at most `active_queues()`.
    pub fn active(&self) -> usize {
        self.nonempty.min(active_queues())
    }

    pub fn random_priority(&mut self) -> i32 {
        self.rng.gen_range(0..10)
    }
}

/// Log in all 15,000 roster agents at `T0` (nothing is waiting, so nothing is offered).
pub fn log_everyone_in(engine: &mut Engine) {
    for i in 0..busy_agents() {
        login(engine, busy_agent(i));
    }
    for j in 0..IDLE_AGENTS {
        login(engine, idle_agent(j));
    }
}

fn login(engine: &mut Engine, agent: String) {
    let decisions = must(
        engine,
        T0,
        &Event::AgentLogin {
            agent,
            address: None,
            tiers: None,
            skills: None,
            capacity: None,
        },
    );
    assert!(
        decisions.is_empty(),
        "bench setup: a login made decisions: {decisions:?}"
    );
}

/// `Some(h)` if `agent` is the L1 agent whose home is busy queue `h`.
fn l1_home(agent: &str) -> Option<usize> {
    let i: usize = agent.strip_prefix("ab")?.parse().ok()?;
    (i < busy_queues()).then_some(i)
}

/// CPU time consumed by the calling thread so far (immune to being descheduled; the machines
/// here are shared).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
