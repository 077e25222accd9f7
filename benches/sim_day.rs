//! Throughput of the simulator: one simulated day of the 1,000-agent centre in
//! `config/scenarios/day-1000-agents.toml` (about 300,000 interactions).
//!
//! `cargo bench --bench sim_day` prints the wall time of each run and the simulator events and
//! engine decisions per second. Target (issue 6): under 10 s per simulated day in release.
//!
//! Loading the two files is outside the timed part: it measures the engine and the simulator.

use std::path::Path;
use std::time::Instant;

use tierline::sim::{scenario, simulate, Options};

/// The daemon's allocator (see `src/main.rs`), so these figures are what `tierline` itself gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time of this thread so far (Linux `schedstat`), to tell the engine's speed from a busy
/// machine's; `None` elsewhere.
fn thread_cpu_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scenarios");
    let config = match tierline::config::load(&dir.join("centre-1000.routing.toml")) {
        Ok(c) => c.routing,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let plan = match scenario::load(&dir.join("day-1000-agents.toml"), &config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runs: usize = std::env::var("SIM_DAY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for run in 1..=runs {
        let started = Instant::now();
        let cpu_before = thread_cpu_s();
        let report = match simulate(config.clone(), &plan, &Options::default()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("simulation failed: {e}");
                std::process::exit(1);
            }
        };
        let secs = started.elapsed().as_secs_f64();
        let cpu = match (cpu_before, thread_cpu_s()) {
            (Some(a), Some(b)) => format!("{:.2} s CPU, ", b - a),
            _ => String::new(),
        };
        let r = &report.run;
        println!(
            "sim_day run {run}: {} interactions, {} events, {} timer firings, {} decisions in {secs:.2} s wall \
             ({cpu}{:.0} events+timers/s wall); overall SL {:.1} %, abandon rate {:.1} %",
            r.arrivals,
            r.events,
            r.timer_firings,
            r.decisions,
            (r.events + r.timer_firings) as f64 / secs,
            report.overall.service_level.unwrap_or(0.0) * 100.0,
            report.overall.abandon_rate.unwrap_or(0.0) * 100.0,
        );
        if run == 1 {
            print!("{}", report.to_table());
        }
    }
}
