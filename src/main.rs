//! The `tierline` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tierline::daemon::{LogFormat, ServeArgs};

/// mimalloc instead of glibc's malloc: a request allocates many small, short-lived objects on one
/// thread and frees some on another (the engine thread), where glibc spent ≈ 10 % of the daemon's
/// CPU under HTTP load (docs/BENCHMARKS_HTTP.md). The library leaves the choice to the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Also read every secret (env var or file) and TLS file it names, as `serve` does at
        /// start: run it where the daemon runs, with its environment and working directory.
        #[arg(long)]
        secrets: bool,
    },
    /// Run a routing config against a traffic scenario in virtual time (docs/SIMULATOR.md).
    Simulate(tierline::sim::cli::SimulateArgs),
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
        /// Worker threads; 0 = tokio's default (one per CPU). `scripts/bench.sh` measures it at
        /// the daemon's own default too (`BASELINE_WORKERS`).
        #[arg(long, default_value_t = 0)]
        workers: usize,
    },
    /// Inspect a journal directory offline (never modifies it).
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Check every segment and snapshot; print a report (exit 0 if usable, 2 if damaged).
    Verify {
        /// The journal directory (`[journal] dir`).
        dir: PathBuf,
    },
    /// Print every journaled input as one JSON line, oldest first, for audits. Inputs are
    /// journaled before they are applied, so refused ones (a config change the live state
    /// refused, an event answered 409) are there too (docs/DURABILITY.md).
    Dump {
        /// The journal directory (`[journal] dir`).
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { path, secrets }) => check_config(&path, secrets),
        Some(Command::Journal { command }) => journal(command),
        Some(Command::Simulate(args)) => tierline::sim::cli::simulate(&args),
        Some(Command::Loadgen(args)) => tierline::loadgen::main(args),
        Some(Command::BaselineServer { listen, workers }) => {
            tierline::loadgen::baseline::main(&listen, workers)
        }
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

/// Exit 0 with one summary line per queue on stdout; exit 2 with every problem on stderr. With
/// `secrets`, a secret or TLS file that cannot be read is a problem too, and a certificate
/// `serve` would warn about (expired, not yet valid, expiring within 14 days) a `warning:` line
/// on stderr that leaves the exit status alone, as the warning leaves `serve` running.
fn check_config(path: &std::path::Path, secrets: bool) -> ExitCode {
    let origin = path.display().to_string();
    match tierline::config::load(path) {
        Ok(config) => {
            // What `serve` and a reload refuse besides validation: a config too large for the
            // journal record it is kept in.
            if let Err(why) = tierline::daemon::core::Input::reconfigure_journaled(&config, &origin)
            {
                tierline::report!("{origin}: {why}");
                return ExitCode::from(2);
            }
            if secrets {
                let check = tierline::daemon::check_secrets(
                    &config.daemon,
                    &tierline::daemon::process_env(),
                    tierline::metrics::wall_clock_ms(),
                );
                // What `serve` would log at start and start all the same: not a failure.
                for warning in &check.warnings {
                    tierline::report!("warning: {origin}: {warning}");
                }
                if !check.problems.is_empty() {
                    for problem in &check.problems {
                        tierline::report!("{origin}: {problem}");
                    }
                    return ExitCode::from(2);
                }
            }
            let mut summary = tierline::config::summary::render(&config.routing);
            for note in config.daemon.notes() {
                summary.push_str(&format!("note: {note}\n"));
            }
            match tierline::write_stdout(&summary) {
                Ok(()) => ExitCode::SUCCESS,
                Err(code) => code,
            }
        }
        Err(errors) => {
            tierline::report!("{errors}");
            ExitCode::from(2)
        }
    }
}

/// `journal verify` / `journal dump`: exit 0 when the journal is usable, 2 when it is damaged.
fn journal(command: JournalCommand) -> ExitCode {
    use tierline::journal::inspect::Checks;
    match command {
        JournalCommand::Verify { dir } => match tierline::journal::verify(&dir, &Checks::generic())
        {
            Ok(report) => {
                if let Err(code) = tierline::write_stdout(&format!("{report}\n")) {
                    return code;
                }
                if report.is_ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            Err(e) => {
                tierline::report!("error: {e}");
                ExitCode::from(2)
            }
        },
        JournalCommand::Dump { dir } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let result = tierline::journal::dump(&dir, &mut out);
            let flushed = std::io::Write::flush(&mut out);
            match (result, flushed) {
                (Ok(report), Ok(())) => {
                    for d in &report.skipped {
                        tierline::report!(
                            "warning: damaged records a snapshot holds, not printed: {d}"
                        );
                    }
                    if let Some(torn) = report.torn {
                        tierline::report!("warning: torn tail not printed: {torn}");
                    }
                    tierline::report!("{} records", report.records);
                    ExitCode::SUCCESS
                }
                // Damage first: it is what the operator must know about.
                (Err(e @ tierline::journal::inspect::DumpError::Journal(_)), _) => {
                    tierline::report!("error: {e}");
                    ExitCode::from(2)
                }
                // The output failed (`| head` closed the pipe, a full disk): 1, as every command
                // answers it; 2 says the journal is damaged or unreadable.
                (Err(tierline::journal::inspect::DumpError::Output(e)), _) | (_, Err(e)) => {
                    // A reader that stopped reading (`| head`) wanted no more: no message.
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        tierline::report!("error: cannot write the dump to stdout: {e}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
    }
}
