//! A journal that cannot be written (the disk is "full" through `RLIMIT_FSIZE`): the API answers
//! 503 `journal_unavailable` with `Retry-After`, nothing of the refused batch is applied, the
//! state accepted before is intact, and everything works again once space returns.
//!
//! Its own test binary because the file size limit applies to the whole process.

#[path = "api_common/mod.rs"]
mod api_common;

use api_common::{call, loaded, login, TestDaemon};
use reqwest::StatusCode;
use tierline::daemon::DaemonOptions;

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

async fn start(dir: &std::path::Path) -> TestDaemon {
    let mut options = DaemonOptions::new(loaded(api_common::one_agent_desk()));
    options.journal_dir = Some(dir.to_path_buf());
    TestDaemon::start(options).await
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
    let d = start(dir.path()).await;
    d.apply(login("e1", "a1")).await;
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
    let (status, waiting) = d.get("/v1/interactions/c2").await;
    assert_eq!(status, StatusCode::OK, "{waiting}");
    d.stop().await;

    // And it is durable: a restart has c1 offered to a1 and c2 waiting, each once.
    let again = start(dir.path()).await;
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
