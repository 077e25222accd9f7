//! An fsync failure on the `tierline-sync` thread is fatal: the request whose batch it was meant
//! to make durable is answered 503 `journal_unavailable` (with the JSON error body), the daemon
//! stops by itself with `DaemonError::JournalSync` (exit code 1 from `tierline serve`), and a
//! restart replays the journal from what is on disk.
//!
//! The failure is injected through `DaemonOptions::journal_sync` (a `FileSync` trait object in
//! the library API; not a config setting).

#[path = "api_common/mod.rs"]
mod api_common;

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api_common::{call, loaded, login, TestDaemon};
use reqwest::StatusCode;
use tierline::daemon::commit::FileSync;
use tierline::daemon::{DaemonError, DaemonOptions};

/// fdatasync until `failing` is set, then EIO, as a disk that lost a write would report.
struct Breakable(Arc<AtomicBool>);

impl FileSync for Breakable {
    fn sync(&mut self, file: &File) -> std::io::Result<()> {
        if self.0.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        file.sync_data()
    }
}

async fn start(dir: &std::path::Path, failing: &Arc<AtomicBool>) -> TestDaemon {
    let mut options = DaemonOptions::new(loaded(api_common::one_agent_desk()));
    options.journal_dir = Some(dir.to_path_buf());
    options.journal_sync = Some(Box::new(Breakable(Arc::clone(failing))));
    TestDaemon::start(options).await
}

/// Post `event`: it must be answered 503 `journal_unavailable`; its body.
async fn journal_unavailable(d: &TestDaemon, event: serde_json::Value) -> serde_json::Value {
    let r = d
        .http
        .post(d.url("/v1/events"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "journal_unavailable", "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_answers_503_and_stops_the_daemon_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let mut d = start(dir.path(), &failing).await;
    d.apply(login("e1", "a1")).await;

    failing.store(true, Ordering::SeqCst);
    let body = journal_unavailable(&d, call("e2", "c1")).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(".seg") && message.contains("sync"),
        "the message names the file and the sync: {body}"
    );

    // The daemon stops by itself, with the error `tierline serve` turns into exit code 1.
    let daemon = d.daemon.take().unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), daemon.wait())
        .await
        .expect("the daemon stops by itself after a sync failure");
    match ended {
        Err(e @ DaemonError::JournalSync(_)) => {
            assert_eq!(e.exit_code(), 1);
            assert!(e.to_string().contains(".seg"), "{e}");
        }
        other => panic!("expected DaemonError::JournalSync, got {other:?}"),
    }
    // Nothing answers any more.
    assert!(d
        .http
        .get(d.url("/v1/agents/a1"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_err());

    // A restart replays what is on disk: the synced login is there.
    failing.store(false, Ordering::SeqCst);
    let d = start(dir.path(), &failing).await;
    let (status, agent) = d.get("/v1/agents/a1").await;
    assert_eq!(status, StatusCode::OK, "{agent}");
    // The 503'd event may or may not be on disk (its write succeeded, its sync did not): a
    // retry with the same id is answered exactly once either way.
    let (status, retried) = d.events(call("e2", "c1")).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    let result = retried["results"][0]["status"].as_str().unwrap_or_default();
    assert!(matches!(result, "applied" | "duplicate"), "{retried}");
    let (status, _) = d.get("/v1/interactions/c1").await;
    assert_eq!(status, StatusCode::OK);
    d.stop().await;
}

/// The journal directory deleted while the daemon runs (`rm -rf data`, a cleanup job): the next
/// sync notices its segment is gone and fails like an fsync error (503, the daemon stops),
/// instead of acknowledging events into a file nothing will ever read (before, thousands were
/// answered 200 and lost at the next start, which then began the decision seqs again at 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_deleted_while_running_is_not_acknowledged_into() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut options = DaemonOptions::new(loaded(api_common::one_agent_desk()));
    options.journal_dir = Some(data.clone());
    let mut d = TestDaemon::start(options).await;
    d.apply(login("e1", "a1")).await;
    std::fs::remove_dir_all(&data).unwrap();
    let body = journal_unavailable(&d, call("e2", "c1")).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deleted while in use"),
        "{body}"
    );
    let daemon = d.daemon.take().unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), daemon.wait())
        .await
        .expect("the daemon stops by itself");
    assert!(
        matches!(ended, Err(DaemonError::JournalSync(_))),
        "{ended:?}"
    );
}
