//! Throughput of the simulator: one simulated day of the 1,000-agent centre in
//! `config/scenarios/day-1000-agents.toml` (about 300,000 interactions).
//!
//! `cargo bench --bench sim_day` prints the wall time of each run and the simulator events and
//! engine decisions per second. Target (issue 6): under 10 s per simulated day in release.
//!
//! The routing config is built here to match `config/scenarios/centre-1000.routing.toml` so the
//! benchmark measures the engine and the simulator, not the config parser.

use std::path::Path;
use std::time::Instant;

use tierline::config::{Channel, Overflow, QueueConfig, RoutingConfig, Rule, Step, Strategy};
use tierline::sim::{scenario, simulate, Options};

fn step(after_s: u64, tiers: &[u8], priority_boost: i32) -> Step {
    Step {
        after_ms: after_s * 1000,
        tiers: tiers.to_vec(),
        priority_boost,
        skip_if_no_agents: false,
    }
}

fn queue(id: &str, channels: &[Channel], steps: Vec<Step>) -> QueueConfig {
    let mut q = QueueConfig::with_defaults(id);
    q.channels = channels.to_vec();
    q.steps = steps;
    q.sla_ms = 20_000;
    q
}

/// The same routing as `config/scenarios/centre-1000.routing.toml`.
fn centre_1000() -> RoutingConfig {
    use Channel::*;
    let mut c = RoutingConfig::empty();
    let mut general = queue(
        "general",
        &[Voice],
        vec![
            step(0, &[1], 0),
            step(30, &[1, 2], 0),
            step(90, &[1, 2, 3], 5),
        ],
    );
    general.max_wait_ms = Some(600_000);
    general.overflow = Some(Overflow::Target("sip:voicemail@pbx".into()));
    let mut billing = queue(
        "billing",
        &[Voice],
        vec![
            step(0, &[1], 0),
            step(45, &[1, 2], 0),
            step(120, &[1, 2, 3], 0),
        ],
    );
    billing.max_wait_ms = Some(300_000);
    billing.overflow = Some(Overflow::Queue("general".into()));
    let mut tech = queue(
        "tech",
        &[Voice, Chat],
        vec![step(0, &[1], 0), step(60, &[1, 2], 0)],
    );
    tech.sla_ms = 30_000;
    let mut sales = queue(
        "sales",
        &[Voice, Chat],
        vec![step(0, &[1], 0), step(30, &[1, 2], 0)],
    );
    sales.strategy = Strategy::RoundRobin;
    sales.max_waiting = Some(200);
    let mut complaints = queue(
        "complaints",
        &[Voice, Email],
        vec![step(0, &[3], 0), step(120, &[2, 3], 2)],
    );
    complaints.strategy = Strategy::TierOrder;
    complaints.sla_ms = 60_000;
    complaints.wrap_up_ms = 30_000;
    c.queues = vec![general, billing, tech, sales, complaints];
    c.rules = vec![Rule {
        when: [("category".to_string(), "complaint".to_string())].into(),
        queue: "complaints".into(),
        priority: Some(10),
    }];
    c.default_queue = Some("general".into());
    c
}

/// CPU time of this thread so far (Linux `schedstat`), to tell the engine's speed from a busy
/// machine's; `None` elsewhere.
fn thread_cpu_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scenarios/day-1000-agents.toml");
    let config = centre_1000();
    let plan = match scenario::load(&path, &config) {
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
