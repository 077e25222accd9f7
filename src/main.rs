//! The `tierline` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tierline", version, about = "Contact-centre routing daemon")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config file and print a one-line summary per queue (exit 2 on errors).
    CheckConfig {
        /// The config file.
        path: PathBuf,
    },
    /// Run a routing config against a traffic scenario in virtual time (docs/SIMULATOR.md).
    Simulate(tierline::sim::cli::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { path }) => check_config(&path),
        Some(Command::Simulate(args)) => tierline::sim::cli::simulate(&args),
        None => check_config(&PathBuf::from("config/tierline.toml")),
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match tierline::config::load(path) {
        Ok(_) => ExitCode::SUCCESS,
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(2)
        }
    }
}
