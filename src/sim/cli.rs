//! `tierline simulate`: arguments, loading, printing. Kept here so `main.rs` stays thin.
//!
//! Exit codes: 0 report printed, 2 the config or scenario is invalid (every problem printed),
//! 1 the simulation itself failed.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::sim::{scenario, simulate as run_simulation, Options};

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The routing config to test (same format as the daemon's).
    #[arg(long)]
    pub config: PathBuf,
    /// The traffic scenario (TOML, see docs/SIMULATOR.md).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Overrides the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Add per-agent utilisation to the report.
    #[arg(long)]
    pub agents: bool,
}

/// Run the subcommand.
pub fn simulate(args: &SimulateArgs) -> ExitCode {
    let config = match crate::config::load(&args.config) {
        Ok(c) => c.routing,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let plan = match scenario::load(&args.scenario, &config) {
        Ok(p) => p,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        seed: args.seed,
        agents: args.agents,
    };
    let started = std::time::Instant::now();
    match run_simulation(config, &plan, &options) {
        Ok(report) => {
            match args.format {
                Format::Table => print!("{}", report.to_table()),
                Format::Json => println!("{}", report.to_json()),
            }
            eprintln!(
                "simulated {:.0} s of virtual time in {:.2} s",
                report.run.ended_at_s,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("simulation failed: {e}");
            ExitCode::from(1)
        }
    }
}
