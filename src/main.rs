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
    /// Drive a server with an open-loop event load and report latency and throughput.
    Loadgen(tierline::loadgen::LoadgenArgs),
    /// A bare hyper server answering every POST with a fixed JSON body (the benchmark baseline).
    BaselineServer {
        /// Listen address, host:port.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { path }) => check_config(&path),
        Some(Command::Loadgen(args)) => tierline::loadgen::main(args),
        Some(Command::BaselineServer { listen }) => tierline::loadgen::baseline::main(&listen),
        None => check_config(&PathBuf::from("config/tierline.toml")),
    }
}

/// Exit 0 with one summary line per queue on stdout; exit 2 with every problem on stderr.
fn check_config(path: &std::path::Path) -> ExitCode {
    match tierline::config::load(path) {
        Ok(config) => {
            print!("{}", tierline::config::summary::render(&config.routing));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(2)
        }
    }
}
