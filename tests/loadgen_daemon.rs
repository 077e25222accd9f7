//! Smoke run of the load generator against the real daemon (in process, ephemeral port,
//! `config/bench.toml`): agents log in, and the generator reacts to the offers the router makes
//! (accepts, ends, wraps up) instead of only firing arrivals. No timing assertions: counts only.

use std::path::Path;
use std::time::Duration;

use tierline::daemon::{Daemon, DaemonOptions};
use tierline::loadgen::schedule::Arrivals;
use tierline::loadgen::{run, LoadgenArgs, Mode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_drives_whole_lifecycles_through_the_daemon() {
    let mut config = tierline::config::load(Path::new("config/bench.toml")).unwrap();
    config.daemon.server.listen = "127.0.0.1:0".into();
    let daemon = Daemon::start(DaemonOptions::new(config)).await.unwrap();
    let addr = daemon.addr();

    let dir = tempfile::tempdir().unwrap();
    let args = LoadgenArgs {
        url: format!("http://{addr}"),
        mode: Mode::Tierline,
        rate: 1000.0,
        duration: Duration::from_secs(2),
        arrivals: Arrivals::Poisson,
        connections: 8,
        agents: 200,
        queues: 8,
        max_live: None,
        seed: 5,
        run_id: Some("smoke".into()),
        out: Some(dir.path().join("result.json")),
        metrics_url: None,
        timeout: Duration::from_secs(30),
        drain: Duration::from_secs(60),
        sustained_p99_ms: 60_000.0,
        threads: 1,
        pace_quantum: std::time::Duration::ZERO,
        server_pid: None,
    };
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

    daemon.stop().await.unwrap();
}
