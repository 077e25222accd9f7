//! Routing engine benchmarks at Twilio TaskRouter's default ceilings: 15,000 agents, 5,000 queues,
//! and 1,000 vs 500,000 interactions waiting, side by side in one run (see `docs/BENCHMARKS.md`).
//!
//! Each benchmark measures one engine operation that must be O(log n):
//! - `arrival_waits`: an arrival into a busy queue that already has interactions waiting (→ `queued`);
//! - `arrival_offered`: an arrival into a queue with a free agent (→ `offer`);
//! - `agent_frees`: `interaction.ended` with wrap-up 0 on a busy L1 agent, which then takes the most
//!   urgent waiting interaction across its queues (→ `offer`);
//! - `ladder_step_fires`: `advance` to a ladder step deadline (→ `escalated`), per timer fired.
//!
//! Only the operation itself is timed (`iter_custom`, in batches of up to 64 operations per clock
//! read), by default in the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): the machines
//! here are shared and often have several runnable processes per core, and wall time would count
//! the time the thread spent descheduled. `TIERLINE_BENCH_CLOCK=wall` measures wall time instead. After each batch, untimed, the engine is put back into a comparable state: arrivals are
//! abandoned, a freed agent accepts its offer and a replacement arrives in the queue it took from,
//! escalated interactions are abandoned. The waiting population therefore stays within 64 of its
//! nominal size.
//!
//! Under `cargo test` (no `--bench` flag) each operation runs once on small fixtures (100 and
//! 2,000 waiting) so the code is checked without the 500,000 build. `TIERLINE_BENCH_SIZES`
//! (e.g. `1000` or `1000,500000`) overrides the sizes, for profiling one of them.

// Shared with `benches/engine_memory.rs`, which uses the parts this program does not.
#[allow(dead_code)]
mod support;

/// The daemon's allocator (see `src/main.rs`), so these figures are what `tierline` itself gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use tierline::engine::{Decision, DecisionKind, EngineError, Event, RevokeReason};

use support::{
    abandon, accept, arrival, assert_queued, busy_agent, busy_queues, ended, idle_queue, must,
    the_offer, thread_cpu_time, Fixture, IDLE_QUEUES, LAST_STEP_AFTER_MS, T0,
};

/// What the benchmarks time with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// CPU time consumed by the benchmark thread (immune to being descheduled).
    ThreadCpu,
    Wall,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

/// A started measurement.
struct Stopwatch {
    clock: Clock,
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        let clock = *CLOCK.get_or_init(|| Clock::ThreadCpu);
        Stopwatch {
            clock,
            wall: Instant::now(),
            cpu: if clock == Clock::ThreadCpu {
                thread_cpu_time()
            } else {
                Duration::ZERO
            },
        }
    }

    fn elapsed(&self) -> Duration {
        match self.clock {
            Clock::ThreadCpu => thread_cpu_time().saturating_sub(self.cpu),
            Clock::Wall => self.wall.elapsed(),
        }
    }
}

/// Operations timed so far (all groups): printed at the end, so that a profiler's totals over
/// the timed calls (`scripts/bench-engine.sh misses`) can be divided per operation.
static TIMED_OPERATIONS: AtomicU64 = AtomicU64::new(0);

/// Operations per clock read. Small enough that the waiting population barely moves.
const BATCH: u64 = 64;

/// An arrival that has to wait: the queue is non-empty and all its eligible agents are busy.
fn arrival_waits(f: &mut Fixture, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    for k in batches(iters, BATCH) {
        let events: Vec<Event> = (0..k)
            .map(|_| {
                let id = f.fresh_id("x");
                let queue = f.random_nonempty_queue();
                let priority = f.random_priority();
                arrival(id, queue, priority)
            })
            .collect();
        let (results, elapsed) = time_each(f, &events);
        timed += elapsed;
        for (event, result) in events.into_iter().zip(results) {
            assert_queued(&ok(result, &event), "arrival_waits");
            let gone = must(&mut f.engine, f.now, &abandon(id_of(event)));
            assert!(gone.is_empty(), "abandon while waiting decided {gone:?}");
        }
    }
    timed
}

/// An arrival offered at once to a free agent (idle queues, in rotation).
fn arrival_offered(f: &mut Fixture, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    for k in batches(iters, BATCH) {
        let events: Vec<Event> = (0..k)
            .map(|_| {
                let queue = idle_queue(f.idle_cursor % IDLE_QUEUES);
                f.idle_cursor += 1;
                let id = f.fresh_id("y");
                let priority = f.random_priority();
                arrival(id, queue, priority)
            })
            .collect();
        let (results, elapsed) = time_each(f, &events);
        timed += elapsed;
        for (event, result) in events.into_iter().zip(results) {
            let (interaction, _, _) = the_offer(&ok(result, &event), "arrival_offered");
            let revoked = must(&mut f.engine, f.now, &abandon(interaction));
            assert!(
                matches!(
                    revoked.as_slice(),
                    [Decision {
                        kind: DecisionKind::OfferRevoked {
                            reason: RevokeReason::Abandoned,
                            ..
                        },
                        ..
                    }]
                ),
                "abandon while offered decided {revoked:?}"
            );
        }
    }
    timed
}

/// A busy L1 agent's call ends (wrap-up 0): the agent takes the most urgent waiting interaction
/// of its two busy queues. Agents are taken from every other home queue so that the agents of one
/// batch never compete for the same queue (each pair of queues has work even at 1,000 waiting).
/// How many agents take turns follows from how many queues are active (`Fixture::active`): 500
/// at 1,000 waiting, 2,000 at 500,000 unless `TIERLINE_BENCH_ACTIVE_QUEUES` holds it equal.
fn agent_frees(f: &mut Fixture, iters: u64) -> Duration {
    let homes: Vec<usize> = (0..f.active().min(busy_queues() - 1)).step_by(2).collect();
    assert!(!homes.is_empty(), "agent_frees needs interactions waiting");
    let mut timed = Duration::ZERO;
    for k in batches(iters, BATCH.min(homes.len() as u64)) {
        let freed: Vec<usize> = (0..k)
            .map(|_| {
                let h = homes[f.l1_cursor % homes.len()];
                f.l1_cursor += 1;
                h
            })
            .collect();
        let events: Vec<Event> = freed.iter().map(|&h| ended(f.l1_call[h].clone())).collect();
        let (results, elapsed) = time_each(f, &events);
        timed += elapsed;
        for ((h, event), result) in freed.into_iter().zip(events).zip(results) {
            let (interaction, agent, queue) = the_offer(&ok(result, &event), "agent_frees");
            assert_eq!(
                agent,
                busy_agent(h),
                "the freed agent was not the one offered"
            );
            let connected = must(&mut f.engine, f.now, &accept(interaction.clone(), agent));
            assert!(connected.is_empty(), "accept decided {connected:?}");
            f.l1_call[h] = interaction;
            let id = f.fresh_id("z");
            let priority = f.random_priority();
            let replaced = must(&mut f.engine, f.now, &arrival(id, queue, priority));
            assert_queued(&replaced, "agent_frees replacement");
        }
    }
    timed
}

/// Ladder step timers: `k` fresh interactions arrive (untimed) in busy non-empty queues, then
/// `advance` by 1 ms fires their 1 ms step (timed); they are abandoned afterwards. Reported per
/// timer fired.
fn ladder_step_fires(f: &mut Fixture, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    for k in batches(iters, BATCH) {
        assert!(
            f.now + 1 < T0 + LAST_STEP_AFTER_MS,
            "ladder_step_fires used up its engine-time budget (one hour of 1 ms batches)"
        );
        let mut ids = Vec::with_capacity(k);
        for _ in 0..k {
            let id = f.fresh_id("t");
            let queue = f.random_nonempty_queue();
            let priority = f.random_priority();
            let queued = must(&mut f.engine, f.now, &arrival(id.clone(), queue, priority));
            assert_queued(&queued, "ladder_step_fires arrival");
            ids.push(id);
        }
        let (fired, elapsed) = time_advance(f, f.now + 1);
        timed += elapsed;
        f.now += 1;
        let steps = fired
            .iter()
            .filter(|d| matches!(d.kind, DecisionKind::Escalated { step: Some(1), .. }))
            .count();
        assert!(
            steps == k && fired.len() == k,
            "advance fired {} decisions ({steps} step-1 escalations), expected {k}: {fired:?}",
            fired.len()
        );
        for id in ids {
            let gone = must(&mut f.engine, f.now, &abandon(id));
            assert!(gone.is_empty(), "abandon while waiting decided {gone:?}");
        }
    }
    timed
}

/// Apply `events` back to back at the fixture's time, timing only the engine calls. Never
/// inlined, so that a profiler can collect inside it alone (`callgrind --toggle-collect`).
#[inline(never)]
fn time_each(
    f: &mut Fixture,
    events: &[Event],
) -> (Vec<Result<Vec<Decision>, EngineError>>, Duration) {
    let mut results = Vec::with_capacity(events.len());
    let start = Stopwatch::start();
    for event in events {
        results.push(f.engine.handle(f.now, event));
    }
    let elapsed = start.elapsed();
    TIMED_OPERATIONS.fetch_add(events.len() as u64, Ordering::Relaxed);
    (results, elapsed)
}

/// `advance` to `to`, timed. Never inlined, like `time_each`.
#[inline(never)]
fn time_advance(f: &mut Fixture, to: u64) -> (Vec<Decision>, Duration) {
    let start = Stopwatch::start();
    let fired = f.engine.advance(to);
    let elapsed = start.elapsed();
    TIMED_OPERATIONS.fetch_add(fired.len() as u64, Ordering::Relaxed);
    (fired, elapsed)
}

fn ok(result: Result<Vec<Decision>, EngineError>, event: &Event) -> Vec<Decision> {
    result.unwrap_or_else(|e| panic!("engine refused {event:?}: {e}"))
}

fn id_of(event: Event) -> String {
    match event {
        Event::InteractionArrived { interaction, .. } => interaction,
        other => panic!("not an arrival: {other:?}"),
    }
}

/// Split `iters` into batch sizes of at most `batch`.
fn batches(iters: u64, batch: u64) -> impl Iterator<Item = usize> {
    let full = iters / batch;
    let rest = iters % batch;
    (0..full)
        .map(move |_| batch as usize)
        .chain((rest > 0).then_some(rest as usize))
}

type Operation = fn(&mut Fixture, u64) -> Duration;

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let clock = match std::env::var("TIERLINE_BENCH_CLOCK").as_deref() {
        Ok("wall") => Clock::Wall,
        Ok("cpu") | Err(_) => Clock::ThreadCpu,
        Ok(other) => panic!("TIERLINE_BENCH_CLOCK: `{other}` is neither `cpu` nor `wall`"),
    };
    CLOCK.get_or_init(|| clock);
    eprintln!("timing with {clock:?}");
    // `TIERLINE_BENCH_SIZES=1000` (comma-separated) narrows a profiling run to some sizes.
    let sizes: Vec<usize> = match std::env::var("TIERLINE_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("TIERLINE_BENCH_SIZES: `{n}` is not a size: {e}"))
            })
            .collect(),
        Err(_) if benchmarking => vec![1_000, 500_000],
        Err(_) => vec![100, 2_000],
    };
    let mut fixtures: Vec<(usize, Fixture)> = sizes
        .iter()
        .map(|&n| {
            let start = Instant::now();
            let fixture = Fixture::build(n);
            eprintln!(
                "built the bench contact centre with {n} waiting in {:.1?}",
                start.elapsed()
            );
            (n, fixture)
        })
        .collect();
    let operations: [(&str, Operation); 4] = [
        ("arrival_waits", arrival_waits),
        ("arrival_offered", arrival_offered),
        ("agent_frees", agent_frees),
        ("ladder_step_fires", ladder_step_fires),
    ];
    let mut criterion = Criterion::default().configure_from_args();
    for (name, operation) in operations {
        let mut group = criterion.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        for (n, fixture) in fixtures.iter_mut() {
            fixture.settle();
            group.bench_function(BenchmarkId::from_parameter(*n), |b| {
                b.iter_custom(|iters| operation(fixture, iters))
            });
        }
        group.finish();
    }
    criterion.final_summary();
    eprintln!(
        "timed operations: {}",
        TIMED_OPERATIONS.load(Ordering::Relaxed)
    );
    // Every batch was restored: the waiting population is what the benchmarks claim it was.
    for (n, fixture) in &fixtures {
        let counts = fixture.engine.counts();
        assert_eq!(
            counts.waiting, *n as u64,
            "after the run the {n} fixture has {counts:?}"
        );
    }
}
