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

/// `[server] decision_log` changes by a restart (a reload lists it in `restart_needed`), and
/// the restart honours it although the snapshot saved the log under the old bound: with 2
/// kept, a reader from 0 is 410 `decisions_gone` and gets the newest 2; back to the default,
/// the log grows again from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_smaller_decision_log_keeps_only_that_many() {
    let dir = tempfile::tempdir().unwrap();
    let with_log = |n: usize| {
        let mut options = DaemonOptions::new(loaded(routing()));
        options.journal_dir = Some(dir.path().to_path_buf());
        options.config.daemon.server.decision_log = n;
        options
    };
    let first = TestDaemon::start(with_log(100)).await;
    first.apply(login("e1", "a1")).await;
    for (e, c) in [("e2", "c1"), ("e3", "c2"), ("e4", "c3")] {
        first.apply(call(e, c)).await;
    }
    let (all, last) = first.poll(0, 0).await;
    assert_eq!((all.len(), last), (3, 3), "{all:?}");
    first.stop().await;

    let second = TestDaemon::start(with_log(2)).await;
    let (status, body) = second.get("/v1/decisions?after=0").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["resume_after"], 1, "{body}");
    let (kept, _) = second.poll(1, 0).await;
    assert_eq!(kept, all[1..], "the newest two");
    second.stop().await;

    let third = TestDaemon::start(with_log(100)).await;
    third.apply(login("e5", "a2")).await;
    let (kept, next) = third.poll(1, 0).await;
    assert_eq!(kept.len(), 3, "the two kept and the new offer: {kept:?}");
    assert_eq!(next, 4);
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

const BEFORE_PUT: &str = r#"
[server]
listen = "127.0.0.1:0"

[[queue]]
id = "support"
offer_timeout_s = 3600

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = { support = 1 }
"#;

/// `BEFORE_PUT` plus a queue `sales` with its agent s1, and another idempotency window.
const AFTER_PUT: &str = r#"
[server]
listen = "127.0.0.1:0"
idempotency_ids = 50

[[queue]]
id = "support"
offer_timeout_s = 3600

[[queue]]
id = "sales"
offer_timeout_s = 3600

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = { support = 1 }

[[agent]]
id = "s1"
address = "sip:s1@pbx"
tiers = { sales = 1 }
"#;

async fn start_with(dir: &std::path::Path, text: &str) -> TestDaemon {
    let config = tierline::config::parse(text, "tierline.toml").expect("valid test config");
    let mut options = DaemonOptions::new(config);
    options.journal_dir = Some(dir.to_path_buf());
    TestDaemon::start(options).await
}

fn sales_call(id: &str, interaction: &str) -> Value {
    json!({"id": id, "type": "interaction.arrived", "interaction": interaction,
           "channel": "voice", "queue": "sales"})
}

/// Everything a replayed config change affects, read over the API.
async fn state_after_put(d: &TestDaemon) -> Value {
    let mut out = serde_json::Map::new();
    for c in ["c1", "c2", "c3"] {
        let (status, body) = d.get(&format!("/v1/interactions/{c}")).await;
        assert_eq!(status, StatusCode::OK, "{c}: {body}");
        out.insert(c.into(), body);
    }
    for path in ["/v1/agents", "/v1/queues"] {
        let (status, mut body) = d.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        // A queue's `sla` counts since the process started: not replayed state.
        for queue in body["queues"].as_array_mut().into_iter().flatten() {
            queue.as_object_mut().unwrap().remove("sla");
        }
        out.insert(path.into(), body);
    }
    let config = d
        .http
        .get(d.url("/v1/config"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    out.insert("config".into(), Value::String(config));
    without_read_time(Value::Object(out))
}

/// A `PUT /v1/config` is journaled with the routing config it resolved to, and a restart that
/// replays it (the snapshot taken at the stop removed, as after a crash) rebuilds the same
/// state: the queue and agent it added, the calls routed through them, the decision log, the
/// config text served, and the idempotency window it resized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_put_replayed_from_the_journal_rebuilds_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_with(dir.path(), BEFORE_PUT).await;
    first.apply(login("e1", "a1")).await;
    first.apply(call("e2", "c1")).await;
    let r = first
        .http
        .put(first.url("/v1/config"))
        .header("content-type", "application/toml")
        .body(AFTER_PUT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    first.apply(login("e3", "s1")).await;
    let offer = first.apply(sales_call("e4", "c2")).await;
    assert_eq!(offer[0]["type"], "offer", "{offer:?}");
    assert_eq!(offer[0]["agent"], "s1", "{offer:?}");
    first.apply(sales_call("e5", "c3")).await;
    let before = state_after_put(&first).await;
    let (decisions, last_seq) = first.poll(0, 0).await;
    first.stop().await;

    // The record holds what the text resolved to: replay applies that, not a new parse.
    let mut dump = Vec::new();
    tierline::journal::dump(dir.path(), &mut dump).unwrap();
    let records: Vec<Value> = String::from_utf8(dump)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reconfigures: Vec<&Value> = records
        .iter()
        .filter(|r| r["input"] == "reconfigure")
        .collect();
    assert_eq!(reconfigures.len(), 1, "{records:?}");
    let resolved = &reconfigures[0]["resolved"];
    let expected = tierline::config::parse(AFTER_PUT, "t").unwrap().routing;
    assert_eq!(
        resolved["routing"],
        serde_json::to_value(&expected).unwrap(),
        "{}",
        reconfigures[0]
    );
    assert_eq!(resolved["idempotency_ids"], 50);
    assert_eq!(reconfigures[0]["source"], AFTER_PUT);

    // Recover from snapshot 0, replaying every record (the clean stop's snapshot set aside).
    let mut snapshots = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".snap") {
            snapshots += 1;
            if name != format!("{:020}.snap", 0) {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    assert!(snapshots >= 2, "a snapshot at the stop, besides snapshot 0");

    // Started with the config it had when it stopped (the file was edited to match the PUT).
    let second = start_with(dir.path(), AFTER_PUT).await;
    assert_eq!(state_after_put(&second).await, before);
    let (again, next) = second.poll(0, 0).await;
    assert_eq!(again, decisions);
    assert_eq!(next, last_seq);
    let (status, body) = second.events(sales_call("e4", "c2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "duplicate", "{body}");
    let capacity = second
        .daemon()
        .engine()
        .read(|v| v.core.idempotency_window().capacity())
        .await
        .unwrap();
    assert_eq!(capacity, 50);
    second.stop().await;
}

/// A PBX that never saw the answer to an event applied before a restart retries it after: the
/// duplicate carries the first delivery's decisions, whether the restart loaded a snapshot (the
/// ranges are in it) or replayed the journal (replay makes the same seqs again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_restart_gets_its_first_decisions_from_a_snapshot_or_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path()).await;
    first.apply(login("e1", "a1")).await;
    let offer = first.apply(call("e2", "c1")).await;
    assert_eq!(offer[0]["type"], "offer", "{offer:?}");
    let queued = first.apply(call("e3", "c2")).await;
    assert_eq!(queued[0]["type"], "queued", "{queued:?}");
    first.stop().await;

    // The snapshot the stop wrote set aside (as after a crash): the whole journal replays.
    let mut removed = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".snap") && name != format!("{:020}.snap", 0) {
            std::fs::remove_file(&path).unwrap();
            removed += 1;
        }
    }
    assert_eq!(removed, 1, "the stop wrote a snapshot");
    let second = start(dir.path()).await;
    retry(&second, call("e2", "c1"), offer.clone()).await;
    retry(&second, call("e3", "c2"), queued.clone()).await;
    second.stop().await;

    // This stop's snapshot holds the ranges: loaded from it.
    let third = start(dir.path()).await;
    retry(&third, call("e2", "c1"), offer).await;
    retry(&third, call("e3", "c2"), queued).await;
    third.stop().await;
}

/// Post `event` again: a duplicate carrying exactly `expected`, complete.
async fn retry(d: &TestDaemon, event: Value, expected: Vec<Value>) {
    let (status, body) = d.events(event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["results"][0];
    assert_eq!(result["status"], "duplicate", "{body}");
    assert_eq!(result["decisions"], json!(expected), "{body}");
    assert!(result.get("decisions_incomplete").is_none(), "{body}");
}
