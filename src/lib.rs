//! tierline: a contact-centre routing daemon.
//!
//! - `config`: the TOML file → validated routing + daemon settings.
//! - `engine`: the deterministic router (events + clock in, decisions out).
//! - `daemon`: the engine task, clock, live reload, signals and shutdown around the engine.
//! - `api`: the HTTP API (event intake, decisions, read/admin endpoints, auth, TLS, webhooks out).
//! - `metrics`: Prometheus series, KPI statistics and the `/metrics` listener.
//! - `journal`: durability (input journal, snapshots, crash recovery, verify/dump).
//! - `sim`: the engine in virtual time against synthetic traffic (`tierline simulate`).
//! - `loadgen`: the HTTP load generator and the bare-hyper baseline server (benchmarks only).

pub mod api;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod journal;
pub mod loadgen;
pub mod metrics;
pub mod sim;

/// `eprintln!` that never panics: with stderr closed or a broken pipe (`2>&1 | head`) the line
/// is lost, not the command's exit code (`eprintln!` panics there, exit 101).
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {
        $crate::write_stderr_line(&::std::format!($($arg)*))
    };
}

/// Write `line` and a line break to stderr, ignoring a failure (see `report!`).
pub fn write_stderr_line(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(line.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}

/// Write a command's output to stdout and flush it. A closed or failing stdout (the reader of a
/// pipe exited early, a full disk) is reported on stderr and answered with exit 1, where
/// `print!` would panic (exit 101). (A process started with no stdout at all, `>&-`, gets
/// `/dev/null` there from Rust's runtime, so its output is discarded and it succeeds.) Not 2,
/// which the commands keep for "the input is invalid" (a config, a journal): a script must not
/// take a valid config it could not print for an invalid one.
pub fn write_stdout(text: &str) -> Result<(), std::process::ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            crate::report!("error: cannot write to stdout: {e}");
            std::process::ExitCode::FAILURE
        })
}

/// The multi-thread tokio runtime of the commands that serve or drive HTTP (`serve`,
/// `loadgen`, `baseline-server`), with `workers` worker threads (0 = tokio's default, one per
/// CPU). On failure the error is printed and the command's exit code is returned.
pub fn multi_thread_runtime(
    workers: usize,
) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        builder.worker_threads(workers);
    }
    builder.enable_all().build().map_err(|e| {
        crate::report!("cannot start the async runtime: {e}");
        std::process::ExitCode::FAILURE
    })
}
