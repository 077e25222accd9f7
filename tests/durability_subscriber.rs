//! Outbound webhook subscribers resume after their last acknowledged decision across restarts.
//!
//! A real HTTP receiver (axum on 127.0.0.1) acknowledges some batches and then refuses the rest;
//! the daemon is restarted on the same journal directory (in-process with a clean stop, and the
//! real binary killed with `kill -9`, so the decisions come back from the journal's replay and
//! not from a final snapshot). The receiver must then get every seq after the acknowledged one,
//! in order, with no gap; only decisions it never acknowledged may arrive twice.

#[path = "api_common/mod.rs"]
mod api_common;
mod daemon_process;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_common::{call, loaded, login, TestDaemon, GIVE_UP};
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use daemon_process::{spawn, wait_ready};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tierline::config::daemon::SubscriberConfig;
use tierline::daemon::DaemonOptions;
use tierline::journal::AckFile;

/// What the receiver has been sent, per daemon run.
#[derive(Default)]
struct Received {
    /// The daemon run the next POSTs belong to (the test bumps it at each restart).
    run: usize,
    /// Acknowledge batches only while the highest seq acknowledged is below this.
    accept_below: Option<u64>,
    /// Batches answered 200, with their run, in arrival order.
    accepted: Vec<(usize, Vec<u64>)>,
    /// Batches answered 503 (never acknowledged), with their run.
    refused: Vec<(usize, Vec<u64>)>,
}

impl Received {
    fn max_accepted(&self) -> u64 {
        self.accepted
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .max()
            .unwrap_or(0)
    }

    fn accepted_seqs(&self) -> Vec<u64> {
        self.accepted
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }

    fn first_accepted_in(&self, run: usize) -> Option<u64> {
        self.accepted
            .iter()
            .find(|(r, _)| *r == run)
            .map(|(_, b)| b[0])
    }
}

#[derive(Clone, Default)]
struct Receiver {
    state: Arc<Mutex<Received>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Receiver {
    /// Serve `POST /hook` on an ephemeral port; returns its URL.
    async fn serve(&self) -> String {
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/hook")
    }

    fn with<R>(&self, f: impl FnOnce(&mut Received) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Wait (without polling) until `cond` holds; a broken daemon fails the test after GIVE_UP.
    async fn wait_until(&self, what: &str, cond: impl Fn(&Received) -> bool) {
        let waited = tokio::time::timeout(GIVE_UP, async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if cond(&self.state.lock().unwrap()) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        if waited.is_err() {
            let state = self.state.lock().unwrap();
            panic!(
                "timed out waiting for {what}; accepted {:?}, refused {:?}",
                state.accepted, state.refused
            );
        }
    }
}

async fn receive(State(r): State<Receiver>, body: axum::body::Bytes) -> AxumStatus {
    let batch: Value = serde_json::from_slice(&body).expect("a JSON batch");
    let seqs: Vec<u64> = batch["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d["seq"].as_u64().expect("seq"))
        .collect();
    let status = r.with(|s| {
        let run = s.run;
        if s.accept_below.is_some_and(|k| s.max_accepted() >= k) {
            s.refused.push((run, seqs));
            AxumStatus::SERVICE_UNAVAILABLE
        } else {
            s.accepted.push((run, seqs));
            AxumStatus::OK
        }
    });
    r.changed.notify_waiters();
    status
}

/// Every seq acknowledged exactly once, in order, none missing.
fn assert_exactly_once_in_order(received: &Received, last_seq: u64) {
    let expected: Vec<u64> = (1..=last_seq).collect();
    assert_eq!(
        received.accepted_seqs(),
        expected,
        "acknowledged batches: {:?}",
        received.accepted
    );
}

fn subscriber(url: &str) -> SubscriberConfig {
    let mut sub = SubscriberConfig::new(url);
    sub.name = Some("pbx".into());
    sub.retry_initial_ms = 10;
    sub.retry_max_ms = 50;
    sub.batch_max = 3;
    sub
}

async fn start_in_process(dir: &Path, hook: &str) -> TestDaemon {
    let mut config = loaded(api_common::one_agent_desk());
    config.daemon.subscribers.push(subscriber(hook));
    let mut options = DaemonOptions::new(config);
    options.journal_dir = Some(dir.to_path_buf());
    TestDaemon::start(options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_subscriber_gets_every_decision_after_its_last_ack_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let hook = receiver.serve().await;
    receiver.with(|s| s.accept_below = Some(4));

    let first = start_in_process(dir.path(), &hook).await;
    first.apply(login("e0", "a1")).await;
    for i in 1..=10 {
        first.apply(call(&format!("e{i}"), &format!("c{i}"))).await;
    }
    // Acknowledged up to some seq ≥ 4; the next batch is refused (and retried) until the stop.
    receiver
        .wait_until("a refused batch", |s| !s.refused.is_empty())
        .await;
    first.stop().await;
    let acked = receiver.with(|s| s.max_accepted());
    assert!((4..10).contains(&acked), "acknowledged up to {acked}");
    let ack_file = AckFile::for_subscriber(dir.path(), "pbx", "pbx", true);
    assert_eq!(ack_file.load().unwrap(), Some(acked), "the ack is on disk");

    receiver.with(|s| {
        s.run = 1;
        s.accept_below = None;
    });
    let second = start_in_process(dir.path(), &hook).await;
    for i in 11..=15 {
        second.apply(call(&format!("e{i}"), &format!("c{i}"))).await;
    }
    receiver
        .wait_until("seq 15", |s| s.max_accepted() >= 15)
        .await;
    second.stop().await;

    receiver.with(|s| {
        assert_eq!(
            s.first_accepted_in(1),
            Some(acked + 1),
            "resumed right after the ack"
        );
        assert_exactly_once_in_order(s, 15);
        // What was refused before the restart was sent again: those are the only repeats.
        let refused: Vec<u64> = s.refused.iter().flat_map(|(_, b)| b.clone()).collect();
        assert!(refused.iter().all(|seq| *seq > acked), "{refused:?}");
    });
    // The ack moved on in the second run (the last batch's may still be in flight at the stop).
    let on_disk = ack_file.load().unwrap().unwrap();
    assert!(on_disk > acked && on_disk <= 15, "ack on disk {on_disk}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subscriber_starts_with_the_decisions_made_after_it_was_configured() {
    let dir = tempfile::tempdir().unwrap();
    // Decisions 1..=3 are made before any subscriber exists.
    let mut options = DaemonOptions::new(loaded(api_common::one_agent_desk()));
    options.journal_dir = Some(dir.path().to_path_buf());
    let before = TestDaemon::start(options).await;
    before.apply(login("e0", "a1")).await;
    for i in 1..=3 {
        before.apply(call(&format!("e{i}"), &format!("c{i}"))).await;
    }
    before.stop().await;

    let receiver = Receiver::default();
    let hook = receiver.serve().await;
    let with_sub = start_in_process(dir.path(), &hook).await;
    with_sub.apply(call("e4", "c4")).await;
    receiver
        .wait_until("seq 4", |s| s.max_accepted() >= 4)
        .await;
    with_sub.stop().await;
    receiver.with(|s| assert_eq!(s.accepted_seqs(), vec![4]));
}

/// The starting point of a subscriber seen for the first time is on disk before the daemon makes
/// a decision: once `start` returns it serves, and its first wake-up fires the timers that fell
/// due while it was down. Were the daemon killed before the subscriber's own task recorded that
/// point, the next start would take the subscriber for new again and skip every decision made
/// in between. (The default runtime has one thread: `start` returns before any task it spawned
/// has run.)
#[tokio::test]
async fn a_new_subscribers_starting_point_is_on_disk_before_the_daemon_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::new(loaded(api_common::one_agent_desk()));
    options.journal_dir = Some(dir.path().to_path_buf());
    let before = TestDaemon::start(options).await;
    before.apply(login("e0", "a1")).await;
    for i in 1..=3 {
        before.apply(call(&format!("e{i}"), &format!("c{i}"))).await;
    }
    before.stop().await;

    // Nothing listens there: the subscriber never gets an answer, so it never acks anything.
    let with_sub = start_in_process(dir.path(), "http://127.0.0.1:9/hook").await;
    let ack_file = AckFile::for_subscriber(dir.path(), "pbx", "pbx", true);
    assert_eq!(
        ack_file.load().unwrap(),
        Some(3),
        "recorded as starting after the newest decision"
    );
    with_sub.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The real binary, killed with `kill -9`.

fn config_text(hook: &str) -> String {
    format!(
        "[defaults]\noffer_timeout_s = 3600\n\n[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n\n\
         [[agent]]\nid = \"a1\"\naddress = \"sip:a1@pbx\"\ntiers = {{ support = 1 }}\n\n\
         [journal]\nsync = \"batch\"\n\n\
         [[subscriber]]\nname = \"pbx\"\nurl = \"{hook}\"\nretry_initial_ms = 10\nretry_max_ms = 50\nbatch_max = 3\n"
    )
}

/// POST one event and insist it was applied.
async fn post(http: &reqwest::Client, base: &str, event: Value) {
    let r = http
        .post(format!("{base}/v1/events"))
        .json(&event)
        .send()
        .await
        .expect("request");
    assert!(r.status().is_success(), "{event}: {}", r.status());
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["results"][0]["status"], "applied", "{event}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_no_decision_for_a_subscriber() {
    const RUNS: usize = 6;
    const CALLS_PER_RUN: u64 = 12;
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let hook = receiver.serve().await;
    let config = tmp.path().join("tierline.toml");
    std::fs::write(&config, config_text(&hook)).unwrap();
    let data = tmp.path().join("data");
    let http = reqwest::Client::new();
    let mut rng = ChaCha8Rng::seed_from_u64(0xac4);
    // Seqs acknowledged before a kill made while nothing could be acknowledged.
    let mut acked_at_quiet_kill: Vec<(usize, u64)> = Vec::new();
    let mut last_seq = 0u64;
    for run in 0..RUNS {
        let (mut child, base) = spawn(&config, &data);
        wait_ready(&http, &base).await;
        let quiet_kill = run % 2 == 0;
        if quiet_kill {
            // Acknowledge a few of this run's decisions, then refuse everything after.
            let stop_at = last_seq + rng.gen_range(2..CALLS_PER_RUN - 3);
            receiver.with(|s| s.accept_below = Some(stop_at));
        }
        if run == 0 {
            post(&http, &base, login("e-login", "a1")).await;
            last_seq = 0;
        }
        for i in 0..CALLS_PER_RUN {
            let id = format!("r{run}-{i}");
            post(&http, &base, call(&id, &id)).await;
            last_seq += 1;
        }
        if quiet_kill {
            receiver
                .wait_until("a refused batch", |s| {
                    s.refused.iter().any(|(r, _)| *r == run)
                })
                .await;
            acked_at_quiet_kill.push((run, receiver.with(|s| s.max_accepted())));
        } else {
            receiver
                .wait_until("a delivery in this run", |s| {
                    s.accepted.iter().any(|(r, _)| *r == run)
                })
                .await;
            // Kill at a random moment, deliveries possibly in flight.
            let after = rng.gen_range(0..30);
            tokio::time::sleep(Duration::from_millis(after)).await;
        }
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        receiver.with(|s| {
            s.run = run + 1;
            s.accept_below = None;
        });
    }
    // A last run acknowledges everything.
    let (mut child, base) = spawn(&config, &data);
    wait_ready(&http, &base).await;
    receiver
        .wait_until("every decision acknowledged", |s| {
            s.max_accepted() >= last_seq
        })
        .await;
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    receiver.with(|s| {
        // After a kill while nothing could be acknowledged, delivery resumed exactly after the ack.
        for (run, acked) in &acked_at_quiet_kill {
            assert_eq!(
                s.first_accepted_in(run + 1),
                Some(acked + 1),
                "run {} did not resume right after seq {acked}",
                run + 1
            );
        }
        // Within a run, acknowledged seqs are consecutive; across runs a restart may only repeat
        // (a batch acknowledged just before a kill), never skip.
        let mut highest = 0u64;
        for (run, batch) in &s.accepted {
            assert!(
                batch[0] <= highest + 1,
                "run {run}: gap before {batch:?} (highest acknowledged {highest})"
            );
            assert!(
                batch.windows(2).all(|w| w[1] == w[0] + 1),
                "run {run}: {batch:?} is not consecutive"
            );
            highest = highest.max(*batch.last().unwrap());
        }
        assert_eq!(highest, last_seq);
        let mut seen: Vec<u64> = s.accepted_seqs();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(
            seen,
            (1..=last_seq).collect::<Vec<u64>>(),
            "every seq delivered"
        );
    });
}
