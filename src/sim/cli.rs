//! `tierline simulate`: arguments, loading, printing. Kept here so `main.rs` stays thin.
//!
//! Exit codes: 0 report printed, 2 the config, scenario or journal is invalid or unreadable (every
//! problem printed), 1 the simulation itself failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::sim::record::{self, RecordError};
use crate::sim::replay::{self, ReplayError, ReplayOptions};
use crate::sim::{scenario, simulate as run_simulation, Options};

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("traffic")
        .required(true)
        .args(["scenario", "replay"])
))]
pub struct SimulateArgs {
    /// The routing config to test (same format as the daemon's).
    #[arg(long)]
    pub config: PathBuf,
    /// The traffic scenario (TOML, see docs/SIMULATOR.md).
    #[arg(long, conflicts_with = "replay")]
    pub scenario: Option<PathBuf>,
    /// What-if on recorded traffic: replay this daemon journal directory (read-only) with its
    /// own config and with `--config`, side by side.
    #[arg(long, value_name = "JOURNAL_DIR")]
    pub replay: Option<PathBuf>,
    /// With `--replay`: log in the new config's roster agents that never appear in the
    /// recording, for the whole replay.
    #[arg(long, conflicts_with = "scenario")]
    pub add_roster_agents: bool,
    /// With `--scenario`: also write the run's inputs as a daemon journal into this new
    /// directory (something to try `--replay` on).
    #[arg(long, value_name = "DIR", conflicts_with = "replay")]
    pub record_journal: Option<PathBuf>,
    /// Overrides the scenario's seed (replay: default 1).
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
    let loaded = match crate::config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            crate::report!("{errors}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &args.replay {
        return replay_journal(args, dir, loaded.routing);
    }
    let Some(scenario_path) = &args.scenario else {
        crate::report!("error: give --scenario or --replay");
        return ExitCode::from(2);
    };
    let config = loaded.routing.clone();
    let plan = match scenario::load(scenario_path, &config) {
        Ok(p) => p,
        Err(errors) => {
            crate::report!("{errors}");
            return ExitCode::from(2);
        }
    };
    for warning in &plan.warnings {
        crate::report!("warning: {}: {warning}", scenario_path.display());
    }
    let options = Options {
        seed: args.seed,
        agents: args.agents,
    };
    let started = std::time::Instant::now();
    if let Some(dir) = &args.record_journal {
        let seed = args.seed.unwrap_or(plan.seed);
        let journal = crate::journal::JournalOptions::from_config(&loaded.daemon.journal);
        return match record::record(loaded, &plan, seed, args.agents, dir, journal) {
            Ok(report) => {
                if let Err(code) = print_report(args.format, &report.to_table(), &report.to_json())
                {
                    return code;
                }
                crate::report!(
                    "journal written to {} in {:.2} s",
                    dir.display(),
                    started.elapsed().as_secs_f64()
                );
                ExitCode::SUCCESS
            }
            Err(e @ RecordError::Sim(_)) => {
                crate::report!("simulation failed: {e}");
                ExitCode::from(1)
            }
            Err(e) => {
                crate::report!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    match run_simulation(config, &plan, &options) {
        Ok(report) => {
            if let Err(code) = print_report(args.format, &report.to_table(), &report.to_json()) {
                return code;
            }
            crate::report!(
                "simulated {:.0} s of virtual time in {:.2} s",
                report.run.ended_at_s,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::report!("simulation failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Write the report to stdout. A stdout that cannot take it (closed by `| head`, a full disk)
/// is exit 2 with the reason, not a panic.
fn print_report(format: Format, table: &str, json: &str) -> Result<(), ExitCode> {
    match format {
        Format::Table => crate::write_stdout(table),
        Format::Json => crate::write_stdout(&format!("{json}\n")),
    }
}

/// `--replay DIR`: old and new side by side.
fn replay_journal(args: &SimulateArgs, dir: &Path, new: crate::config::RoutingConfig) -> ExitCode {
    let options = ReplayOptions {
        seed: args.seed.unwrap_or(1),
        agents: args.agents,
        add_roster_agents: args.add_roster_agents,
    };
    let started = std::time::Instant::now();
    match replay::replay(dir, new, &options) {
        Ok(report) => {
            if let Err(code) = print_report(args.format, &report.to_table(), &report.to_json()) {
                return code;
            }
            if report.recording.history_incomplete {
                crate::report!(
                    "warning: replayed from {}; older history is not in the figures",
                    report.recording.start_from
                );
            }
            crate::report!(
                "replayed {} records ({:.0} s of recorded time) in {:.2} s",
                report.recording.records,
                report.recording.duration_s,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e @ ReplayError::Sim(_)) => {
            crate::report!("replay failed: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            crate::report!("error: {e}");
            ExitCode::from(2)
        }
    }
}
