//! A retried event (its id in the idempotency window) is answered `duplicate` with the decisions
//! its first delivery caused, exactly as the first answer carried them, while the decision log
//! still holds them; once it does not, with what is left and `"decisions_incomplete": true`.

#[path = "api_common/mod.rs"]
mod api_common;

use api_common::{call, loaded, login, one_agent_desk, routing, TestDaemon};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::daemon::DaemonOptions;

/// The one result of a single-event answer, after checking the status.
fn only_result(status: StatusCode, body: &Value) -> &Value {
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{body}");
    &results[0]
}

#[tokio::test]
async fn a_retried_event_gets_the_decisions_of_its_first_delivery() {
    let t = TestDaemon::with_routing(one_agent_desk()).await;
    t.apply(login("e1", "a1")).await;
    let (status, first) = t.events(call("e2", "c1")).await;
    let first = only_result(status, &first).clone();
    assert_eq!(first["status"], "applied");
    assert_eq!(first["decisions"][0]["type"], "offer", "{first}");
    // Later work, so the retry's decisions are not simply the newest ones.
    let queued = t.apply(call("e3", "c2")).await;
    assert_eq!(queued[0]["type"], "queued", "{queued:?}");

    let (status, body) = t.events(call("e2", "c1")).await;
    let again = only_result(status, &body);
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["decisions"], first["decisions"], "{body}");
    assert!(again.get("decisions_incomplete").is_none(), "{body}");
    // Not applied again: still one decision per event in the feed.
    let (feed, _) = t.poll(0, 0).await;
    assert_eq!(feed.len(), 2, "{feed:?}");
    assert_eq!(feed[0], first["decisions"][0]);

    // A retry that decided nothing is answered with nothing, completely.
    let (status, body) = t.events(login("e1", "a1")).await;
    let again = only_result(status, &body);
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["decisions"], json!([]));
    assert!(again.get("decisions_incomplete").is_none(), "{body}");
    t.stop().await;
}

#[tokio::test]
async fn a_duplicate_in_a_batch_gets_its_first_decisions_in_its_place() {
    let t = TestDaemon::with_routing(one_agent_desk()).await;
    t.apply(login("e1", "a1")).await;
    let offer = t.apply(call("e2", "c1")).await;
    let (status, body) = t
        .events(json!([
            call("b1", "c2"),
            call("e2", "c1"),
            {"id": "b2", "type": "agent.state", "agent": "ghost", "state": "available"},
            call("b1", "c2"),
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "duplicate", "rejected", "duplicate"]);
    assert_eq!(results[1]["decisions"], json!(offer), "{body}");
    // A duplicate of an event earlier in the same batch: that element's decisions.
    assert_eq!(results[0]["decisions"][0]["type"], "queued", "{body}");
    assert_eq!(results[3]["decisions"], results[0]["decisions"], "{body}");
    assert!(results
        .iter()
        .all(|r| r.get("decisions_incomplete").is_none()));
    t.stop().await;
}

/// c1's offer times out (300 ms) and the timers go on deciding about it (the revoke, the
/// offers that follow); a retry of the arrival gets the first offer alone, and an event made
/// meanwhile gets its own decisions, never the timers' around them.
#[tokio::test]
async fn a_duplicate_never_carries_timer_decisions() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    let offer = t.apply(call("e2", "c1")).await;
    assert_eq!(offer.len(), 1, "{offer:?}");
    let mut after = offer[0]["seq"].as_u64().unwrap();
    t.wait_for(&mut after, |d| d["type"] == "offer_revoked")
        .await;
    let own = t.apply(login("e3", "a2")).await;

    let (status, body) = t.events(call("e2", "c1")).await;
    let again = only_result(status, &body);
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["decisions"], json!(offer), "{body}");
    let (status, body) = t.events(login("e3", "a2")).await;
    let again = only_result(status, &body);
    assert_eq!(again["decisions"], json!(own), "{body}");
    assert!(again.get("decisions_incomplete").is_none(), "{body}");
    t.stop().await;
}

/// One queue whose offers never expire during a test, two L1 agents.
fn two_agent_desk() -> tierline::config::RoutingConfig {
    let mut r = one_agent_desk();
    r.agents.push(api_common::agent("a2", &[("support", 1)]));
    r
}

/// With a decision log of 2, a retry whose first delivery's decisions left the log gets what is
/// still held and the flag; never another event's decisions.
#[tokio::test]
async fn a_duplicate_whose_decisions_left_the_log_says_so() {
    let mut options = DaemonOptions::new(loaded(two_agent_desk()));
    options.config.daemon.server.decision_log = 2;
    let t = TestDaemon::start(options).await;
    t.apply(login("e1", "a1")).await;
    t.apply(login("e2", "a2")).await;
    let offer = t.apply(call("e3", "c1")).await;
    assert_eq!(offer.len(), 1, "{offer:?}");
    // a1 logs out with c1 ringing: the offer is revoked and c1 offered to a2 (two decisions).
    let logout = json!({"id": "e4", "type": "agent.logout", "agent": "a1"});
    let moved = t.apply(logout.clone()).await;
    assert_eq!(moved.len(), 2, "{moved:?}");
    // One more decision: the log of 2 now holds the second of e4's and this one.
    let queued = t.apply(call("e5", "c2")).await;
    assert_eq!(queued.len(), 1, "{queued:?}");

    let (status, body) = t.events(call("e3", "c1")).await;
    let again = only_result(status, &body);
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["decisions"], json!([]), "{body}");
    assert_eq!(again["decisions_incomplete"], true, "{body}");

    let (status, body) = t.events(logout).await;
    let again = only_result(status, &body);
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["decisions"], json!([moved[1]]), "{body}");
    assert_eq!(again["decisions_incomplete"], true, "{body}");

    let (status, body) = t.events(call("e5", "c2")).await;
    let again = only_result(status, &body);
    assert_eq!(again["decisions"], json!(queued), "{body}");
    assert!(again.get("decisions_incomplete").is_none(), "{body}");
    t.stop().await;
}
