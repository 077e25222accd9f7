//! The example scenarios in `config/scenarios/` load with their routing configs and run.

use std::path::{Path, PathBuf};

use tierline::sim::{scenario, simulate, Options};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/scenarios")
        .join(name)
}

#[test]
fn the_support_ladder_example_runs_and_reports_both_tiers() {
    let config = tierline::config::load(&example("support-ladder.routing.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .routing;
    let plan =
        scenario::load(&example("support-ladder.toml"), &config).unwrap_or_else(|e| panic!("{e}"));
    let report = simulate(
        config,
        &plan,
        &Options {
            seed: None,
            agents: true,
        },
    )
    .expect("runs");
    let q = &report.queues[0];
    assert_eq!(q.queue, "support");
    assert!(q.figures.offered > 500, "{}", q.figures.offered);
    assert!(q.figures.answered_by_tier.get(&1).copied().unwrap_or(0) > 0);
    assert!(q.figures.answered_by_tier.get(&2).copied().unwrap_or(0) > 0);
    assert_eq!(report.agents.as_ref().map(Vec::len), Some(15));
}

#[test]
fn the_thousand_agent_day_loads_against_its_routing_config() {
    // Running it is the `sim_day` benchmark; here only that the two files agree.
    let config = tierline::config::load(&example("centre-1000.routing.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .routing;
    let plan =
        scenario::load(&example("day-1000-agents.toml"), &config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.agents.len(), 1_000);
    assert_eq!(plan.streams.len(), 5);
    assert_eq!(config.queues.len(), 5);
}
