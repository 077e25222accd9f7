//! A restart on the same journal directory loses nothing: waiting interactions keep their places
//! and entry times, agents keep their status, the decision seq continues without a gap, and a
//! retried event id is still recognised as a duplicate.

#[path = "api_common/mod.rs"]
mod api_common;

use api_common::{call, loaded, login, TestDaemon};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::config::{QueueConfig, RoutingConfig};
use tierline::daemon::DaemonOptions;

/// One queue with timers far beyond the test's run time, so nothing fires while it runs.
fn routing() -> RoutingConfig {
    let mut r = RoutingConfig::empty();
    let mut support = QueueConfig::with_defaults("support");
    support.offer_timeout_ms = 3_600_000;
    r.queues.push(support);
    r.agents = vec![
        api_common::agent("a1", &[("support", 1)]),
        api_common::agent("a2", &[("support", 1)]),
    ];
    r
}

async fn start(dir: &std::path::Path) -> TestDaemon {
    let mut options = DaemonOptions::new(loaded(routing()));
    options.journal_dir = Some(dir.to_path_buf());
    TestDaemon::start(options).await
}

/// What must survive a restart, read over the API.
async fn state(d: &TestDaemon) -> Value {
    let mut out = serde_json::Map::new();
    for c in ["c1", "c2", "c3"] {
        let (status, body) = d.get(&format!("/v1/interactions/{c}")).await;
        assert_eq!(status, StatusCode::OK, "{c}: {body}");
        out.insert(c.into(), body);
    }
    let (_, agents) = d.get("/v1/agents").await;
    out.insert("agents".into(), agents);
    Value::Object(out)
}

/// Drop fields computed from the read time (how long something has waited so far).
fn without_read_time(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|k, _| !k.ends_with("wait_ms") && !k.starts_with("waited"));
        for value in map.values_mut() {
            *value = without_read_time(value.take());
        }
    } else if let Value::Array(items) = &mut v {
        for value in items.iter_mut() {
            *value = without_read_time(value.take());
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_journal_keeps_queues_agents_seq_and_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path()).await;
    first.apply(login("e1", "a1")).await;
    let offer = first.apply(call("e2", "c1")).await;
    assert_eq!(offer[0]["type"], "offer", "{offer:?}");
    first.apply(call("e3", "c2")).await;
    first.apply(call("e4", "c3")).await;
    let before = without_read_time(state(&first).await);
    let (decisions, last_seq) = first.poll(0, 0).await;
    assert_eq!(decisions.len(), 3, "an offer and two queued: {decisions:?}");
    assert_eq!(last_seq, 3);
    first.stop().await;

    let second = start(dir.path()).await;
    let after = without_read_time(state(&second).await);
    assert_eq!(before, after, "state changed across the restart");
    // The decision log survived too: a reader resuming from 0 sees the same offer.
    let (again, next) = second.poll(0, 0).await;
    assert_eq!(again, decisions);
    assert_eq!(next, last_seq);

    // A PBX retrying an event it sent before the restart is told it is a duplicate.
    let (status, body) = second.events(call("e3", "c2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "duplicate", "{body}");

    // New work continues the seq without a gap: a2 gets c2, the longest waiting.
    let offer = second.apply(login("e5", "a2")).await;
    assert_eq!(offer[0]["type"], "offer", "{offer:?}");
    assert_eq!(offer[0]["interaction"], "c2");
    assert_eq!(offer[0]["seq"], json!(last_seq + 1));
    second.stop().await;

    // And once more, after a restart that replays records after the last snapshot.
    let third = start(dir.path()).await;
    let (all, next) = third.poll(0, 0).await;
    let seqs: Vec<u64> = all.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (1..=next).collect();
    assert_eq!(seqs, expected, "gap-free from 1");
    assert!(next > last_seq, "the offer to a2 survived: {all:?}");
    third.stop().await;
}

/// A daemon whose wall clock reads `wall_ms` now, on `dir`, with 1 s offer timeouts.
async fn start_at(dir: &std::path::Path, wall_ms: u64) -> TestDaemon {
    let mut routing = routing();
    routing.queues[0].offer_timeout_ms = 1_000;
    let mut options = DaemonOptions::new(loaded(routing));
    options.journal_dir = Some(dir.to_path_buf());
    options.clock = Some(tierline::daemon::clock::Clock::starting_at(wall_ms));
    TestDaemon::start(options).await
}

/// The wall clock is 10 minutes behind the journal's last engine time at the restart (NTP
/// corrected a fast clock while the daemon was down, or the journal was restored on another
/// host). Engine time continues from the journal: the offer made just before the stop times
/// out about 1 s after it, not once the wall clock has caught up 10 minutes later (which is
/// what happened before: every input stamped with the journal's last time, every timer held).
/// The poll waits up to 5 s for the expiry; it is a liveness check, not a timing assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_with_the_wall_clock_behind_the_journal_timers_still_fire_and_time_runs() {
    let dir = tempfile::tempdir().unwrap();
    let t0: u64 = 1_800_000_000_000;
    let first = start_at(dir.path(), t0).await;
    first.apply(login("e1", "a1")).await;
    let offer = first.apply(call("e2", "c1")).await;
    assert_eq!(offer[0]["type"], "offer", "{offer:?}");
    let offered_at = api_common::at_ms(&offer[0]);
    let last_seq = offer[0]["seq"].as_u64().unwrap();
    first.stop().await;

    let second = start_at(dir.path(), t0 - 600_000).await;
    let (after, _) = second.poll(last_seq, 5_000).await;
    let revoked = after
        .iter()
        .find(|d| d["type"] == "offer_revoked")
        .unwrap_or_else(|| {
            panic!("c1's 1 s offer did not time out within 5 s of the restart: {after:?}")
        });
    assert_eq!(revoked["reason"], "expired", "{revoked}");
    assert_eq!(
        api_common::at_ms(revoked),
        offered_at + 1_000,
        "a timer's decision carries its deadline"
    );
    // New inputs are stamped after that deadline: engine time runs on from the journal's.
    let next = second.apply(call("e3", "c2")).await;
    assert!(
        api_common::at_ms(&next[0]) >= offered_at + 1_000,
        "engine time went backwards: {next:?}"
    );
    second.stop().await;
}
