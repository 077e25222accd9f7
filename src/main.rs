//! The `tierline` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tierline::daemon::{LogFormat, ServeArgs};

/// The default config file.
const DEFAULT_CONFIG: &str = "config/tierline.toml";

#[derive(Debug, Parser)]
#[command(name = "tierline", version, about = "Contact-centre routing daemon")]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
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
    /// Run the daemon (the default when no command is given).
    Serve {
        /// The config file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// API listen address (overrides `[server] listen`).
        #[arg(long)]
        listen: Option<String>,
        /// Prometheus listen address (overrides `[metrics] listen`).
        #[arg(long)]
        metrics_listen: Option<String>,
        /// Journal directory (overrides `[journal] dir`).
        #[arg(long)]
        data: Option<PathBuf>,
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
        Some(Command::Serve {
            config,
            listen,
            metrics_listen,
            data,
        }) => tierline::daemon::serve_main(ServeArgs {
            config,
            listen,
            metrics_listen,
            data,
            log_format: cli.log_format,
        }),
        None => tierline::daemon::serve_main(ServeArgs {
            config: PathBuf::from(DEFAULT_CONFIG),
            listen: None,
            metrics_listen: None,
            data: None,
            log_format: cli.log_format,
        }),
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
