//! Nothing polls: a subscriber with nothing to deliver waits for the next decision instead of
//! asking the engine again and again. The case that used to spin: its ack file cannot be read, so
//! it delivers "from the oldest decision held", and none exists yet. Alone in its own test
//! program, because it reads the CPU time of the whole process.

#[path = "api_common/mod.rs"]
mod api_common;

use std::time::Duration;

use api_common::{loaded, one_agent_desk, TestDaemon};
use tierline::config::daemon::SubscriberConfig;
use tierline::daemon::DaemonOptions;
use tierline::journal::AckFile;

/// User + system CPU time of this process so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_with_an_unreadable_ack_file_and_no_decisions_yet_waits_without_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let acks = AckFile::for_subscriber(dir.path(), "pbx", "pbx", true);
    std::fs::create_dir_all(acks.path().parent().unwrap()).unwrap();
    std::fs::write(acks.path(), "not an ack record\n").unwrap();
    assert!(acks.load().is_err(), "the ack file must be unreadable");

    let mut config = loaded(one_agent_desk());
    // Nobody listens there: nothing is delivered either way.
    let mut sub = SubscriberConfig::new("http://127.0.0.1:9/hook");
    sub.name = Some("pbx".into());
    config.daemon.subscribers.push(sub);
    let mut options = DaemonOptions::new(config);
    options.journal_dir = Some(dir.path().to_path_buf());
    let t = TestDaemon::start(options).await;
    let (status, _) = t.get("/readyz").await;
    assert_eq!(status, reqwest::StatusCode::OK);

    // Idle: no event, no decision. A subscriber asking the engine in a loop keeps a core (the
    // engine task's and its own) busy for the whole window; waiting costs next to nothing.
    let window = Duration::from_millis(600);
    let before = process_cpu();
    tokio::time::sleep(window).await;
    let used = process_cpu() - before;
    assert!(
        used < window / 4,
        "the idle daemon used {used:?} of CPU in {window:?}: something is polling"
    );
    t.stop().await;
}
