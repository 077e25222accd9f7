//! Smoke run of the load generator against the real daemon (in process, ephemeral port,
//! `config/bench.toml`): agents log in, and the generator reacts to the offers the router makes
//! (accepts, ends, wraps up) instead of only firing arrivals. No timing assertions: counts only.

use std::path::Path;

use tierline::daemon::{Daemon, DaemonOptions};
use tierline::loadgen::{feed, run, LoadgenArgs, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_drives_whole_lifecycles_through_the_daemon() {
    let daemon = bench_daemon().await;
    let addr = daemon.addr();

    let dir = tempfile::tempdir().unwrap();
    let args = args(addr, dir.path());
    let report = run(&args).await.unwrap();

    // Every agent logged in (setup fails the run otherwise) and every slot got an answer.
    assert_eq!(report.setup_events, 200);
    assert_eq!(report.answered, report.scheduled);
    assert_eq!(report.server_errors, 0, "{:?}", report.statuses);
    // The router made offers and the generator answered them: accepted, ended.
    assert!(report.decisions_seen.get("offer").copied().unwrap_or(0) > 0);
    for kind in ["interaction.arrived", "offer.accepted", "interaction.ended"] {
        assert!(
            report.sent_by_type.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {:?}",
            report.sent_by_type
        );
    }
    // Nearly everything is applied; the few refusals are races a real PBX sees too (wrap-up
    // done after the wrap-up timer already ended it).
    let ok = report.statuses.get("200").copied().unwrap_or(0);
    assert!(ok * 100 >= report.answered * 95, "{:?}", report.statuses);
    assert!(report.results.get("applied").copied().unwrap_or(0) > 0);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    daemon.stop().await.unwrap();
}

/// The daemon's URL and the report's path in `dir`, as flags take them.
fn url_and_out(addr: std::net::SocketAddr, dir: &Path) -> (String, String) {
    (
        format!("http://{addr}"),
        dir.join("result.json").to_string_lossy().into_owned(),
    )
}

/// A small tierline-mode run against `addr` (config/bench.toml's queues), its report in `dir`.
fn args(addr: std::net::SocketAddr, dir: &Path) -> LoadgenArgs {
    let (url, out) = url_and_out(addr, dir);
    #[rustfmt::skip]
    let flags = [
        "--url", &url, "--mode", "tierline", "--rate", "1000", "--duration", "2s",
        "--arrivals", "poisson", "--connections", "8", "--agents", "200", "--queues", "8",
        "--seed", "5", "--run-id", "smoke", "--out", &out, "--timeout", "30s", "--drain", "60s",
        "--sustained-p99-ms", "60000",
    ];
    LoadgenArgs::from_flags(flags).unwrap()
}

/// The feed starts after the decisions made before the run (`GET /readyz`'s `next_seq`): it
/// used to start from the oldest decision held, so against a daemon with a history its first
/// poll fetched up to 10,000 old decisions at the start of the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feeds_starting_cursor_is_after_the_decisions_made_before_the_run() {
    let daemon = bench_daemon().await;
    let addr = daemon.addr();
    let target = Target::resolve(&format!("http://{addr}")).await.unwrap();

    // Nothing decided yet: the feed takes every decision (seq > 0).
    assert_eq!(feed::current_cursor(&target).await, Some(0));

    // One arrival, no agent: decision 1 (`queued`), made before the run.
    let body = reqwest::Client::new()
        .post(format!("http://{addr}/v1/events"))
        .header("content-type", "application/json")
        .body(r#"{"id":"before-1","type":"interaction.arrived","interaction":"before-i1","channel":"voice","queue":"q0"}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains(r#""seq":1"#), "{body}");
    assert_eq!(feed::current_cursor(&target).await, Some(1));

    daemon.stop().await.unwrap();
}

/// The daemon on config/bench.toml, on an ephemeral port.
async fn bench_daemon() -> Daemon {
    let mut config = tierline::config::load(Path::new("config/bench.toml")).unwrap();
    config.daemon.server.listen = "127.0.0.1:0".into();
    Daemon::start(DaemonOptions::new(config)).await.unwrap()
}

/// A refused login stops the setup, and the message shows that login's refusal (its id and the
/// daemon's error), not the start of the answer, which is mostly the logins that were applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_at_setup_is_named_with_its_error() {
    let daemon = bench_daemon().await;
    let addr = daemon.addr();
    let dir = tempfile::tempdir().unwrap();
    let (url, out) = url_and_out(addr, dir.path());
    #[rustfmt::skip]
    let flags = [
        "--url", &url, "--mode", "tierline", "--rate", "100", "--duration", "1s",
        "--agents", "100", "--queues", "64", "--out", &out, "--timeout", "30s",
    ];
    let args = LoadgenArgs::from_flags(flags).unwrap();
    let err = run(&args)
        .await
        .expect_err("config/bench.toml has fewer queues")
        .to_string();
    assert!(err.contains("` was rejected (are queues q0..q63"), "{err}");
    assert!(
        err.contains(r#""code":"unknown_queue""#) && err.contains("unknown queue `q32`"),
        "{err}"
    );
    assert!(!err.contains(r#""status":"applied""#), "{err}");
    daemon.stop().await.unwrap();
}

/// A `--server-pid` or `--metrics-url` that gives nothing is said, not left as a silent null:
/// each on stderr at once and in the report's `warnings`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_that_cannot_be_read_are_warned_about_not_left_null_in_silence() {
    let daemon = bench_daemon().await;
    let addr = daemon.addr();
    let dir = tempfile::tempdir().unwrap();
    let (url, out) = url_and_out(addr, dir.path());
    // Nothing listens on port 1; pid 4294967295 cannot exist (pid_max is at most 2^22).
    #[rustfmt::skip]
    let flags = [
        "--url", &url, "--mode", "tierline", "--rate", "100", "--duration", "1s",
        "--agents", "20", "--queues", "4", "--out", &out, "--timeout", "30s",
        "--server-pid", "4294967295", "--metrics-url", "http://127.0.0.1:1/metrics",
    ];
    let report = run(&LoadgenArgs::from_flags(flags).unwrap()).await.unwrap();
    assert_eq!(report.server_cpu_s, None);
    assert!(report.timer_lateness.is_none());
    assert_eq!(
        report.warnings,
        [
            "--metrics-url http://127.0.0.1:1/metrics: no 200 answer before the run; the timer \
             lateness will cover the daemon's whole life, not the run",
            "--server-pid 4294967295: cannot read /proc/4294967295/stat (no such process, or \
             not Linux); server_cpu_s will be null",
            "--metrics-url http://127.0.0.1:1/metrics: no 200 answer after the run; \
             timer_lateness is null",
        ]
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(written["warnings"].as_array().map(Vec::len), Some(3));
    daemon.stop().await.unwrap();
}
