//! Every decision names what made it (`cause`): an event by its envelope id and type, a timer, a
//! config change by its origin, or an administrator's forced agent state. The feed, an event's
//! answer and a retry's answer carry the same object.

mod api_common;

use api_common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::daemon::DaemonOptions;

const DESK: &str = r#"
[server]
listen = "127.0.0.1:0"

[[queue]]
id = "support"
channels = ["voice"]
offer_timeout_s = 1
no_answer_delay_s = 0
max_no_answer = 0
steps = [ { after_s = 0, tiers = [1] } ]

[[queue]]
id = "sales"
channels = ["voice"]
offer_timeout_s = 60
steps = [ { after_s = 0, tiers = [1] } ]

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = { support = 1 }

[[agent]]
id = "a2"
address = "sip:a2@pbx"
tiers = { sales = 1 }

[[agent]]
id = "a3"
address = "sip:a3@pbx"
tiers = { sales = 1 }
"#;

async fn start() -> TestDaemon {
    let config = tierline::config::parse(DESK, "test.toml").expect("valid test config");
    TestDaemon::start(DaemonOptions::new(config)).await
}

/// The feed's next `n` decisions after seq `after` (waits for timers).
async fn feed(t: &TestDaemon, after: u64, n: usize) -> Vec<Value> {
    let last = after + n as u64;
    let mut cursor = after;
    t.wait_for(&mut cursor, |d| d["seq"].as_u64() >= Some(last))
        .await
}

#[tokio::test]
async fn each_decision_names_the_event_timer_admin_or_config_change_that_made_it() {
    let t = start().await;
    t.apply(login("login-a1", "a1")).await;
    // An event: its answer and the feed carry the same cause, the event's id and type.
    let offer = t.apply(call("arrival-7", "c1")).await;
    assert_eq!(offer[0]["type"], "offer", "{offer:?}");
    assert_eq!(
        offer[0]["cause"],
        json!({"kind": "event", "id": "arrival-7", "type": "interaction.arrived"})
    );
    let seq = offer[0]["seq"].as_u64().unwrap();
    assert_eq!(feed(&t, seq - 1, 1).await[0], offer[0]);
    // A retry's answer is the same object.
    let (status, body) = t.events(call("arrival-7", "c1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["decisions"], json!(offer), "{body}");

    // A timer: the offer expires after 1 s; its revocation and the re-offer are the timer's.
    let timed = feed(&t, seq, 2).await;
    assert_eq!(
        (timed[0]["type"].as_str(), timed[1]["type"].as_str()),
        (Some("offer_revoked"), Some("offer")),
        "{timed:?}"
    );
    for d in &timed {
        assert_eq!(d["cause"], json!({"kind": "timer"}), "{d}");
    }
    // c1 is answered, so no more of its timers.
    t.apply(accept("accept-c1", "c1", "a1")).await;

    // An administrator forces a2 offline while c2 rings it: the announcement of a2's new state
    // (the PBX did not send it), the revocation and the re-offer to a3 are theirs.
    t.apply(login("login-a2", "a2")).await;
    let offer = t
        .apply(
            json!({"id": "arrival-8", "type": "interaction.arrived", "interaction": "c2",
                      "channel": "voice", "queue": "sales"}),
        )
        .await;
    assert_eq!(offer[0]["agent"], "a2", "{offer:?}");
    let seq = offer[0]["seq"].as_u64().unwrap();
    t.apply(login("login-a3", "a3")).await;
    let r = t
        .http
        .put(t.url("/v1/agents/a2/state"))
        .json(&json!({"state": "offline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let forced: Vec<Value> = feed(&t, seq, 3)
        .await
        .into_iter()
        .filter(|d| d["interaction"] == "c2" || d["type"] == "agent_state")
        .collect();
    // The admin's answer carries the same objects as the feed.
    assert_eq!(answer["decisions"], json!(forced), "{answer}");
    assert_eq!(
        (
            forced[0]["type"].as_str(),
            forced[0]["agent"].as_str(),
            forced[0]["state"].as_str(),
            forced[0]["reason"].as_str()
        ),
        (
            Some("agent_state"),
            Some("a2"),
            Some("offline"),
            Some("admin")
        ),
        "{forced:?}"
    );
    assert_eq!(
        (forced[1]["type"].as_str(), forced[1]["reason"].as_str()),
        (Some("offer_revoked"), Some("agent_offline")),
        "{forced:?}"
    );
    assert_eq!(
        (forced[2]["type"].as_str(), forced[2]["agent"].as_str()),
        (Some("offer"), Some("a3")),
        "{forced:?}"
    );
    for d in &forced {
        assert_eq!(
            d["cause"],
            json!({"kind": "agent_state", "agent": "a2"}),
            "{d}"
        );
    }
    let seq = forced[2]["seq"].as_u64().unwrap();

    // A config change takes a3 out of sales while c2 rings it: the change's revocation, and
    // c2 queued again (nobody else in sales is free).
    let without_a3 = DESK.replace(
        "id = \"a3\"\naddress = \"sip:a3@pbx\"\ntiers = { sales = 1 }",
        "id = \"a3\"\naddress = \"sip:a3@pbx\"\ntiers = { support = 1 }",
    );
    assert_ne!(without_a3, DESK);
    let (status, body) = put_config(&t, &without_a3).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed = feed(&t, seq, 2).await;
    assert_eq!(body["decisions"], json!(changed), "{body}");
    assert_eq!(
        (changed[0]["type"].as_str(), changed[0]["reason"].as_str()),
        (Some("offer_revoked"), Some("reconfigured")),
        "{changed:?}"
    );
    assert_eq!(
        changed[0]["cause"],
        json!({"kind": "config_change", "origin": "PUT /v1/config"})
    );
    t.stop().await;
}
