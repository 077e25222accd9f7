//! What the metrics `Telemetry` costs the engine task per batch, at Twilio TaskRouter's default
//! ceilings (15,000 agents, 5,000 queues; the fixture of `benches/engine.rs`, with 1,000
//! interactions waiting). See `docs/BENCHMARKS.md`.
//!
//! - `observe_after_arrival`: one interaction arrives and waits (untimed), then
//!   `Telemetry::observe` (timed) records the batch's facts and brings the gauges up to date.
//!   Untimed afterwards, the interaction abandons and is observed too, so every measurement
//!   starts from the same state.
//!
//! Timed with the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), as `benches/engine.rs`
//! does: the machines here are shared and wall time would count time spent descheduled.
//!
//! Under `cargo test` (no `--bench` flag) the operation runs a few times and its effect on the
//! gauges is checked, without timing.

// Shared with the engine benchmarks; this program uses only the fixture.
#[allow(dead_code)]
mod support;

/// The daemon's allocator (see `src/main.rs`), so these figures are what `tierline` itself gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use tierline::config::daemon::MetricsConfig;
use tierline::metrics::{Metrics, Telemetry};

use support::{abandon, arrival, assert_queued, must, thread_cpu_time, Fixture, T0};

const WAITING: usize = 1_000;

/// The fixture plus a telemetry that has seen everything so far.
struct Rig {
    f: Fixture,
    telemetry: Telemetry,
}

impl Rig {
    fn build() -> Rig {
        let mut f = Fixture::staffed();
        f.add_waiting(WAITING);
        f.settle();
        let routing = support::config(true);
        let metrics = Metrics::unserved(&MetricsConfig::default(), &routing)
            .unwrap_or_else(|e| panic!("bench setup: metrics: {e}"));
        let mut telemetry = Telemetry::new(metrics, &routing, T0);
        f.engine.set_record_facts(true);
        telemetry.observe(&mut f.engine, f.now);
        Rig { f, telemetry }
    }

    /// One arrival that waits, then the timed `observe`; the arrival abandons afterwards.
    fn observe_after_arrival(&mut self) -> (Duration, String) {
        let id = self.f.fresh_id("x");
        let queue = self.f.random_nonempty_queue();
        let priority = self.f.random_priority();
        let now = self.f.now;
        let queued = must(
            &mut self.f.engine,
            now,
            &arrival(id.clone(), queue.clone(), priority),
        );
        assert_queued(&queued, "observe_after_arrival");
        let start = thread_cpu_time();
        self.telemetry.observe(&mut self.f.engine, now);
        let timed = thread_cpu_time().saturating_sub(start);
        let gone = must(&mut self.f.engine, now, &abandon(id));
        assert!(gone.is_empty(), "abandon while waiting decided {gone:?}");
        self.telemetry.observe(&mut self.f.engine, now);
        (timed, queue)
    }
}

/// `tierline_queue_waiting{queue,channel="voice"}` in the rendered page.
fn waiting_gauge(rig: &Rig, queue: &str) -> Option<f64> {
    let want = format!("queue=\"{queue}\"");
    rig.telemetry.metrics().render().lines().find_map(|line| {
        let rest = line.strip_prefix("tierline_queue_waiting{")?;
        rest.contains(&want)
            .then(|| line.rsplit_once(' ')?.1.parse().ok())?
    })
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let mut rig = Rig::build();
    if !benchmarking {
        // Check the measured path does what it claims: the arrival shows in the gauge.
        for _ in 0..3 {
            let id = rig.f.fresh_id("c");
            let queue = rig.f.random_nonempty_queue();
            let before = waiting_gauge(&rig, &queue).unwrap_or(0.0);
            let now = rig.f.now;
            assert_queued(
                &must(
                    &mut rig.f.engine,
                    now,
                    &arrival(id.clone(), queue.clone(), 0),
                ),
                "check",
            );
            rig.telemetry.observe(&mut rig.f.engine, now);
            assert_eq!(waiting_gauge(&rig, &queue), Some(before + 1.0));
            must(&mut rig.f.engine, now, &abandon(id));
            rig.telemetry.observe(&mut rig.f.engine, now);
            assert_eq!(waiting_gauge(&rig, &queue), Some(before));
        }
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("telemetry_observe_after_arrival");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter("15k_agents_5k_queues"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rig.observe_after_arrival().0).sum())
    });
    group.finish();
    criterion.final_summary();
}
