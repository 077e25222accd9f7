//! Periodic snapshots are written while the daemon runs, whatever `journal.sync` is: with
//! `sync = "always"` the first snapshot used to wait for a sync report that never came, so no
//! snapshot was written and no segment pruned until a clean stop.

mod api_common;

use api_common::{call, loaded, login, TestDaemon};
use tierline::config::daemon::SyncMode;
use tierline::daemon::DaemonOptions;

fn snapshots(dir: &std::path::Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".snap").then_some(name)
        })
        .collect();
    found.sort();
    found
}

/// The snapshot files present after 8 events with `snapshot_every_events = 2` (and
/// `snapshot_journal_percent = 0`: the count alone), without a clean stop (which would write
/// one more).
async fn snapshots_taken_while_running(sync: SyncMode) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = loaded(api_common::routing());
    config.daemon.journal.sync = sync;
    config.daemon.journal.snapshot_every_events = 2;
    config.daemon.journal.snapshot_journal_percent = 0;
    let mut options = DaemonOptions::new(config);
    options.journal_dir = Some(dir.path().to_path_buf());
    let d = TestDaemon::start(options).await;
    d.apply(login("e1", "a1")).await;
    for i in 2..=8 {
        d.apply(call(&format!("e{i}"), &format!("c{i}"))).await;
    }
    // The writer thread writes in the background: wait for a second file, up to GIVE_UP.
    let give_up = std::time::Instant::now() + api_common::GIVE_UP;
    while snapshots(dir.path()).len() < 2 && std::time::Instant::now() < give_up {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let found = snapshots(dir.path());
    // Like kill -9: no final snapshot.
    std::mem::forget(d);
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_mode_takes_periodic_snapshots_while_running() {
    for sync in [SyncMode::Batch, SyncMode::Always] {
        let found = snapshots_taken_while_running(sync).await;
        assert!(
            found.len() >= 2,
            "sync = {sync:?}: only {found:?} after 8 events with snapshot_every_events = 2"
        );
    }
}
