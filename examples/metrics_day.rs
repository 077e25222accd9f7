//! Stand-in for the daemon in `scripts/e2e-prometheus.sh` until the daemon serves metrics: runs
//! the day in miniature (`tests/metrics_support/day.rs`) in wall-clock time through a real
//! engine and `Telemetry`, serving `/metrics` from `tierline::metrics::install`.
//!
//! What the daemon's own layers would record is recorded here the same way: one
//! `tierline_http_requests_total{route="/v1/events"}` per event with the status the daemon
//! answers (202, or 409/422 for a refused event), one live reload (`config_reloads_total`), and
//! the engine time per event (`decision_seconds`). Subscriber deliveries need the daemon.
//!
//! Usage: `metrics_day [LISTEN] [UNIT_MS] [START]` (defaults 127.0.0.1:9464, 100 and 0).
//! Prints `listening <addr>` once serving; starts the day START milliseconds later, or, with
//! START = `stdin`, when a line arrives on standard input (so a scraper can see every counter at
//! 0 first: Prometheus' `increase()` is only exact from a zero sample); prints `day done` when
//! the day is over, then keeps serving, with the engine frozen at the end of the day, until
//! killed.

#[path = "../tests/metrics_support/day.rs"]
mod day;

use std::time::{Duration, Instant};

use tierline::config::daemon::MetricsConfig;
use tierline::engine::{ErrorClass, Event};
use tierline::metrics::{self, wall_clock_ms, Telemetry};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9464".into());
    let unit: u64 = match args.next() {
        Some(u) => u
            .parse()
            .map_err(|e| anyhow::anyhow!("UNIT_MS `{u}`: {e}"))?,
        None => 100,
    };
    let start_arg = args.next();
    let routing = day::config(unit);
    let cfg = MetricsConfig {
        listen,
        per_agent: false,
    };
    let metrics = metrics::install(&cfg, &routing)?;
    // Register every series at 0 now, before the day starts (they outlive this telemetry).
    drop(Telemetry::new(metrics.clone(), &routing, wall_clock_ms()));
    println!(
        "listening {}",
        metrics
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    let delay: u64 = match start_arg.as_deref() {
        Some("stdin") => {
            let mut line = String::new();
            tokio::io::AsyncBufReadExt::read_line(
                &mut tokio::io::BufReader::new(tokio::io::stdin()),
                &mut line,
            )
            .await?;
            0
        }
        Some(d) => d.parse().map_err(|e| anyhow::anyhow!("START `{d}`: {e}"))?,
        None => 0,
    };

    let start = wall_clock_ms() + delay;
    let started = Instant::now() + Duration::from_millis(delay);
    let mut day = day::Day::new(metrics.clone(), start, unit);
    let end = day.at(day::DAY_END);
    let reload_at = day.at(250);
    let mut reloaded = false;
    while let Some(t) = day.next_time().filter(|t| *t <= end) {
        let due = Duration::from_millis(t - start);
        tokio::time::sleep_until((started + due).into()).await;
        if !reloaded && t >= reload_at {
            reload(&mut day, reload_at, &metrics);
            reloaded = true;
        }
        let refused = day.run_until(t);
        record_requests(&metrics, &refused);
    }
    // One refused event, as a PBX bug would send: the daemon answers it with an error status.
    let bogus = Event::OfferAccepted {
        interaction: "no-such-call".into(),
        agent: "ann".into(),
    };
    if let Err(e) = day.engine.handle(end, &bogus) {
        record_requests(&metrics, &[e]);
    }
    println!("day done");
    std::future::pending::<()>().await;
    Ok(())
}

/// The events the day applied (all accepted) plus the refused ones, as the daemon's HTTP layer
/// counts them.
fn record_requests(metrics: &metrics::Metrics, refused: &[tierline::engine::EngineError]) {
    for e in refused {
        let status = match e.class() {
            ErrorClass::Invalid => 422,
            ErrorClass::Conflict => 409,
            ErrorClass::Limit => 503,
        };
        metrics.http_request("/v1/events", status, Duration::from_micros(200));
    }
    metrics.http_request("/v1/events", 202, Duration::from_micros(150));
}

/// A live reload with the same routing (as `POST /v1/config/reload` would apply it).
fn reload(day: &mut day::Day, at: u64, metrics: &metrics::Metrics) {
    let routing = day.engine.config().clone();
    let applied = day.engine.reconfigure(at, routing.clone()).is_ok();
    if applied {
        day.telemetry.on_config(&routing);
    }
    metrics.config_reload(applied);
}
