//! A daemon whose journal cannot be written (a full disk): every event is refused 503
//! `journal_unavailable` and changes nothing, `/readyz` says so (503, with the cause) instead of
//! "ready", `tierline_journal_append_failures_total` counts the failed batches, and once space
//! returns the next event is applied and the daemon is ready again.
//!
//! The disk is "full" through `RLIMIT_FSIZE` (no privileges needed); this is its own test binary
//! because the limit applies to the whole process.

#[path = "api_common/mod.rs"]
mod api_common;
#[path = "metrics_support/mod.rs"]
mod metrics_support;

use api_common::{call, loaded, login, TestDaemon};
use metrics_support::sample;
use reqwest::StatusCode;
use tierline::daemon::DaemonOptions;
use tierline::metrics;

fn set_file_size_limit(bytes: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack value we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// The largest journal segment's size: a limit at it fails the next append.
fn largest_segment(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .expect("a journal segment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_events_makes_the_daemon_unready_and_counts_the_failures() {
    // Writing past the limit must be an error (EFBIG), not a fatal signal.
    // SAFETY: setting a signal disposition to "ignore" has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = loaded(api_common::one_agent_desk());
    config.daemon.metrics.listen = "127.0.0.1:0".into();
    let metrics = metrics::install(&config.daemon.metrics, &config.routing).expect("listener");
    let scrape_url = format!("http://{}/metrics", metrics.local_addr().expect("served"));
    let mut options = DaemonOptions::new(config);
    options.metrics = Some(metrics);
    options.journal_dir = Some(dir.path().to_path_buf());
    let t = TestDaemon::start(options).await;
    let failures = |text: &str| sample(text, "tierline_journal_append_failures_total", &[]);
    let scrape = || async {
        t.http
            .get(&scrape_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    assert_eq!(failures(&scrape().await), 0.0, "the series exists at 0");
    t.apply(login("e1", "a1")).await;
    let (status, ready) = t.get("/readyz").await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );

    set_file_size_limit(largest_segment(dir.path()));
    let (status, body) = t.events(call("e2", "c1")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "journal_unavailable", "{body}");
    // Not ready, and saying why; a read in between does not clear it.
    for _ in 0..2 {
        let (status, body) = t.get("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "journal_unavailable", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("journal cannot be written"), "{message}");
    }
    assert!(failures(&scrape().await) >= 1.0);
    // The refused call changed nothing: it is unknown.
    let (status, _) = t.get("/v1/interactions/c1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    set_file_size_limit(libc::RLIM_INFINITY);
    let decisions = t.apply(call("e3", "c1")).await;
    assert_eq!(decisions[0]["type"], "offer", "{decisions:?}");
    assert_eq!(decisions[0]["agent"], "a1");
    let (status, ready) = t.get("/readyz").await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    t.stop().await;
}
