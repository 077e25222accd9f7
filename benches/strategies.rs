//! What a strategy's pick costs against the number of free agents in the queue.
//!
//! One voice queue (wrap-up 0) whose N agents (one tier) are all logged in and free, N = 100 and
//! 10,000, under each strategy. The timed call is `interaction.arrived` → `offer`; afterwards,
//! untimed, the interaction is abandoned (→ `offer_revoked`, the agent is free again), so every
//! call sees the same N free agents. The rotation of `round-robin` moves on with each offer, so
//! its picks walk the whole id order over a run.
//!
//! The target is O(log n) per arrival: the two sizes should differ by a small factor,
//! not by the 100× between them. `cargo bench --bench strategies` (criterion, thread CPU time,
//! like `benches/engine.rs`); under `cargo test` each case runs once.

#[allow(dead_code)]
mod support;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use tierline::config::{AgentConfig, Channel, QueueConfig, RoutingConfig, Step, Strategy};
use tierline::engine::{Decision, DecisionKind, Engine};

use support::{abandon, arrival, must, the_offer, thread_cpu_time, T0};

const STRATEGIES: [(&str, Strategy); 5] = [
    ("longest_idle", Strategy::LongestIdle),
    ("round_robin", Strategy::RoundRobin),
    ("fewest_interactions", Strategy::FewestInteractions),
    ("tier_order", Strategy::TierOrder),
    ("random", Strategy::Random),
];

/// One queue `q` under `strategy` with `agents` free agents.
fn desk(strategy: Strategy, agents: usize) -> Engine {
    let mut config = RoutingConfig::empty();
    config.seed = 7;
    let mut q = QueueConfig::with_defaults("q");
    q.channels = vec![Channel::Voice];
    q.wrap_up_ms = 0;
    q.strategy = strategy;
    q.steps = vec![Step::new(0, &[1])];
    config.queues.push(q);
    for i in 0..agents {
        let id = format!("a{i:05}");
        config.agents.push(AgentConfig {
            address: format!("sip:{id}@pbx"),
            id,
            tiers: BTreeMap::from([("q".to_string(), 1)]),
            skills: Vec::new(),
            capacity: BTreeMap::new(),
        });
    }
    let mut engine = Engine::new(config, T0);
    for i in 0..agents {
        let login = tierline::engine::Event::AgentLogin {
            agent: format!("a{i:05}"),
            address: None,
            tiers: None,
            skills: None,
            capacity: None,
        };
        assert!(must(&mut engine, T0, &login).is_empty());
    }
    engine
}

struct Desk {
    engine: Engine,
    next: u64,
}

/// `iters` arrivals, each timed alone, each undone by an abandon afterwards.
fn arrivals(d: &mut Desk, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        d.next += 1;
        let event = arrival(format!("c{}", d.next), "q".to_string(), 0);
        let start = thread_cpu_time();
        let result = d.engine.handle(T0, &event);
        timed += thread_cpu_time().saturating_sub(start);
        let decisions = result.unwrap_or_else(|e| panic!("engine refused {event:?}: {e}"));
        let (interaction, _, _) = the_offer(&decisions, "strategies");
        let revoked = must(&mut d.engine, T0, &abandon(interaction));
        assert!(
            matches!(
                revoked.as_slice(),
                [Decision {
                    kind: DecisionKind::OfferRevoked { .. },
                    ..
                }]
            ),
            "abandon while offered decided {revoked:?}"
        );
    }
    timed
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let sizes: [usize; 2] = if benchmarking {
        [100, 10_000]
    } else {
        [10, 200]
    };
    let mut c = Criterion::default().configure_from_args();
    for (name, strategy) in STRATEGIES {
        let mut desks: Vec<(usize, Desk)> = sizes
            .iter()
            .map(|&n| {
                (
                    n,
                    Desk {
                        engine: desk(strategy, n),
                        next: 0,
                    },
                )
            })
            .collect();
        if !benchmarking {
            for (_, d) in &mut desks {
                arrivals(d, 3);
            }
            continue;
        }
        let mut group = c.benchmark_group(format!("pick_{name}"));
        group.throughput(Throughput::Elements(1));
        for (n, d) in &mut desks {
            group.bench_with_input(BenchmarkId::from_parameter(*n), n, |b, _| {
                b.iter_custom(|iters| arrivals(d, iters))
            });
        }
        group.finish();
    }
    c.final_summary();
}
