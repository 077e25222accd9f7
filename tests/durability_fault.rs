//! A journal that cannot be written (the disk is "full" through `RLIMIT_FSIZE`): the API answers
//! 503 `journal_unavailable` with `Retry-After`, nothing of the refused batch is applied, the
//! state accepted before is intact, `/readyz` says the daemon is not ready and why, and
//! `tierline_journal_append_failures_total` counts the failures; everything works again once
//! space returns.
//!
//! Its own test binary because the file size limit applies to the whole process.

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

/// A daemon journaling to `dir`, and its `/metrics` URL.
async fn start(dir: &std::path::Path) -> (TestDaemon, String) {
    let mut config = loaded(api_common::one_agent_desk());
    config.daemon.metrics.listen = "127.0.0.1:0".into();
    let metrics = metrics::install(&config.daemon.metrics, &config.routing).expect("listener");
    let url = format!("http://{}/metrics", metrics.local_addr().expect("served"));
    let mut options = DaemonOptions::new(config);
    options.metrics = Some(metrics);
    options.journal_dir = Some(dir.to_path_buf());
    (TestDaemon::start(options).await, url)
}

async fn append_failures(d: &TestDaemon, url: &str) -> f64 {
    let text = d.http.get(url).send().await.unwrap().text().await.unwrap();
    sample(&text, "tierline_journal_append_failures_total", &[])
}

async fn assert_ready(d: &TestDaemon) {
    let (status, ready) = d.get("/readyz").await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
}

fn segment_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_keeps_accepted_state_and_recovers_when_space_returns() {
    // SAFETY: setting a signal disposition to "ignore" has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let dir = tempfile::tempdir().unwrap();
    let (d, url) = start(dir.path()).await;
    assert_eq!(
        append_failures(&d, &url).await,
        0.0,
        "the series exists at 0"
    );
    d.apply(login("e1", "a1")).await;
    assert_ready(&d).await;
    let offer = d.apply(call("e2", "c1")).await;
    assert_eq!(offer[0]["type"], "offer");
    let (_, agent_before) = d.get("/v1/agents/a1").await;

    // The disk fills up: not one more byte fits in the segment.
    let used = segment_bytes(dir.path());
    assert!(used > 0);
    set_file_size_limit(used);
    let r = d
        .http
        .post(d.url("/v1/events"))
        .json(&call("e3", "c2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "journal_unavailable", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(".seg"),
        "the message names the file: {body}"
    );

    // Not ready, saying why (a read in between does not clear it), and counted.
    for _ in 0..2 {
        let (status, body) = d.get("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "journal_unavailable", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("journal cannot be written"), "{message}");
        assert!(
            !message.contains(".seg"),
            "no server path on an unauthenticated probe: {message}"
        );
    }
    assert!(append_failures(&d, &url).await >= 1.0);

    // Nothing of the refused batch was applied; what was accepted before is intact.
    let (status, _) = d.get("/v1/interactions/c2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, agent_during) = d.get("/v1/agents/a1").await;
    assert_eq!(agent_during, agent_before);
    assert_eq!(
        segment_bytes(dir.path()),
        used,
        "no partial frame left behind"
    );

    // Space returns: the PBX's retry of the same event is applied (it never was before).
    set_file_size_limit(libc::RLIM_INFINITY);
    d.apply(call("e3", "c2")).await;
    assert_ready(&d).await;
    let (status, waiting) = d.get("/v1/interactions/c2").await;
    assert_eq!(status, StatusCode::OK, "{waiting}");
    d.stop().await;

    // And it is durable: a restart has c1 offered to a1 and c2 waiting, each once.
    let (again, _) = start(dir.path()).await;
    let (status, c2) = again.get("/v1/interactions/c2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c2, waiting);
    let (_, agent_after) = again.get("/v1/agents/a1").await;
    assert_eq!(agent_after, agent_before);
    let (decisions, _) = again.poll(0, 0).await;
    let kinds: Vec<&str> = decisions
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["offer", "queued"]);
    again.stop().await;
}
