//! The Kamailio adapter against a running daemon on 127.0.0.1: what Kamailio sends, what it gets.
//!
//! No timing assertions: each test orders events explicitly (a held `/route` is answered once an
//! agent logs in, once the caller abandons…), with generous timeouts only as a hang guard.

use std::time::Duration;

use serde_json::{json, Value};
use tierline::daemon::{Daemon, DaemonOptions};

const CONFIG: &str = r#"
[defaults]
offer_timeout_s = 10
wrap_up_s = 0
max_no_answer = 1
busy_delay_s = 60

[[queue]]
id = "support"

[[queue]]
id = "night"
schedule = { tz = "UTC" }
closed_target = "sip:night-vm@127.0.0.1:5090"

[[agent]]
id = "a1"
address = "sip:a1@127.0.0.1:5071"
tiers = { support = 1 }

[[agent]]
id = "a2"
address = "sip:a2@127.0.0.1:5072"
tiers = { support = 1 }

[server]
listen = "127.0.0.1:0"
request_timeout_ms = 30000

[journal]
sync = "none"
"#;

struct Harness {
    daemon: Daemon,
    http: reqwest::Client,
    base: String,
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(CONFIG).await
    }

    async fn start_with(config: &str) -> Harness {
        let config = tierline::config::parse(config, "kamailio_adapter.toml").expect("config");
        let daemon = Daemon::start(DaemonOptions::new(config))
            .await
            .expect("daemon starts");
        let base = format!("http://{}", daemon.addr());
        Harness {
            daemon,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!text.contains('\n'), "one line for Kamailio: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn route(&self, body: Value) -> (u16, Value) {
        self.post("/v1/adapters/kamailio/route", body).await
    }

    async fn report(&self, body: Value) -> (u16, Value) {
        self.post("/v1/adapters/kamailio/report", body).await
    }

    /// Call `call_id` rings a1, a1 is forced offline while it rings (the offer is revoked) and
    /// a2 logs in and is rung instead: a1's `/route` answer and a2's ringing slot.
    async fn revoked_from_a1_ringing_a2(&self, call_id: &str) -> (Value, Value) {
        self.login("a1").await;
        let (_, first) = self.route(call(call_id)).await;
        assert_eq!(first["agent"], "a1", "{first}");
        let (status, body) = self
            .post(
                "/v1/events",
                json!({"id": "logout-a1", "type": "agent.logout", "agent": "a1"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        self.login("a2").await;
        let ringing = self.get("/v1/agents/a2").await["interactions"][0].clone();
        assert_eq!(ringing["interaction"], call_id, "{ringing}");
        (first, ringing)
    }

    async fn login(&self, agent: &str) {
        let (status, body) = self
            .post(
                "/v1/events",
                json!({"id": format!("login-{agent}"), "type": "agent.login", "agent": agent}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn call(id: &str) -> Value {
    json!({"call_id": id, "from": "sip:alice@example.org", "queue": "support", "tindex": 1, "tlabel": 2})
}

#[tokio::test]
async fn a_call_to_a_queue_with_a_free_agent_rings_that_agent() {
    let h = Harness::start().await;
    h.login("a1").await;
    let (status, doc) = h.route(call("c1@pbx")).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["routing"], "serial");
    assert_eq!(doc["routes"][0]["uri"], "sip:a1@127.0.0.1:5071");
    assert_eq!(doc["agent"], "a1");
    let ring = doc["routes"][0]["fr_inv_timer"].as_u64().unwrap();
    assert!(
        ring <= 10_000 - tierline::api::kamailio::RING_GUARD_MS && ring > 5_000,
        "ring time {ring}"
    );
    let view = h.get("/v1/interactions/c1@pbx").await;
    assert_eq!(view["state"], "offered");
    assert_eq!(view["queue"], "support");
    h.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_held_call_gets_the_agent_who_logs_in() {
    let h = Harness::start().await;
    let held = {
        let http = h.http.clone();
        let url = format!("{}/v1/adapters/kamailio/route", h.base);
        tokio::spawn(async move {
            let r = http.post(url).json(&call("c2@pbx")).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    // The held request has created the call before the agent appears.
    for _ in 0..200 {
        if h.get("/v1/interactions/c2@pbx").await["state"] == "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.get("/v1/interactions/c2@pbx").await["state"], "waiting");
    h.login("a2").await;
    let (status, doc) = held.await.unwrap();
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["agent"], "a2");
    h.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_declined_call_is_routed_to_the_next_agent_and_reports_are_idempotent() {
    let h = Harness::start().await;
    h.login("a1").await;
    h.login("a2").await;
    let (_, first) = h.route(call("c3@pbx")).await;
    let first_agent = first["agent"].as_str().unwrap().to_string();
    let first_offer = first["offer"].as_str().unwrap().to_string();
    let decline = json!({"call_id": "c3@pbx", "event": "declined", "agent": first_agent,
                         "offer": first_offer, "sip_status": 486});
    let (status, r) = h.report(decline.clone()).await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("applied")),
        "{r}"
    );
    let (status, r) = h.report(decline).await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("duplicate")),
        "{r}"
    );

    let mut again = call("c3@pbx");
    again["previous_offer"] = json!(first_offer);
    let (status, second) = h.route(again).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["agent"], first_agent.as_str());
    assert_ne!(second["offer"], first_offer.as_str());

    let accept = json!({"call_id": "c3@pbx", "event": "accepted", "agent": second["agent"],
                        "offer": second["offer"], "sip_status": 200});
    assert_eq!(h.report(accept).await.1["status"], "applied");
    // A 486 that arrives after the call was answered elsewhere is late, not an error.
    let late = json!({"call_id": "c3@pbx", "event": "declined", "agent": first_agent,
                      "offer": "o-late", "sip_status": 486});
    let (status, r) = h.report(late).await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("ignored")),
        "{r}"
    );
    assert_eq!(r["reason"], "no_such_offer");
    let (_, r) = h
        .report(json!({"call_id": "c3@pbx", "event": "ended"}))
        .await;
    assert_eq!(r["status"], "applied");
    let agent = h.get(&format!("/v1/agents/{first_agent}")).await;
    assert_eq!(
        (agent["status"].as_str(), agent["reason"].as_str()),
        (Some("not_ready"), Some("declined")),
        "one 486 reaches max_no_answer = 1 (count_declines is on by default): {agent}"
    );
    h.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_held_ends_the_held_request_with_410() {
    let h = Harness::start().await;
    let held = {
        let http = h.http.clone();
        let url = format!("{}/v1/adapters/kamailio/route", h.base);
        tokio::spawn(async move {
            let r = http.post(url).json(&call("c4@pbx")).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    for _ in 0..200 {
        if h.get("/v1/interactions/c4@pbx").await["state"] == "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, r) = h
        .report(json!({"call_id": "c4@pbx", "event": "abandoned"}))
        .await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("applied")),
        "{r}"
    );
    let (status, body) = held.await.unwrap();
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "call_gone");
    let queues = h.get("/v1/queues/support").await;
    // Well under `short_abandon_s` (5 s by default): a short abandon.
    assert_eq!(queues["sla"]["short_abandoned"], 1, "{queues}");
    h.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_dialed_number_no_queue_or_rule_takes_is_refused_with_404() {
    let h = Harness::start().await;
    let mut body = call("c5@pbx");
    body["queue"] = json!("0800999");
    let (status, r) = h.route(body).await;
    assert_eq!(status, 404, "{r}");
    assert_eq!(r["error"]["code"], "no_route");
}

#[tokio::test]
async fn a_bad_hold_ms_is_a_400_naming_the_parameter() {
    let h = Harness::start().await;
    let (status, r) = h
        .post("/v1/adapters/kamailio/route?hold_ms=abc", call("c6@pbx"))
        .await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["error"]["code"], "invalid_query");
    assert_eq!(
        r["error"]["message"],
        "query parameter `hold_ms`: not a whole number ≥ 0"
    );
}

#[tokio::test]
async fn a_retried_route_for_a_call_refused_as_closed_rings_the_target_it_was_given_first() {
    let h = Harness::start().await;
    let mut body = call("c6@pbx");
    body["queue"] = json!("night");
    let (status, first) = h.route(body.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["routes"][0]["uri"], "sip:night-vm@127.0.0.1:5090");

    // The admin points closed hours somewhere else: a retransmitted `/route` for the call
    // already refused still gets the target it was told, as the `rejected` decision said.
    let changed = CONFIG.replace("sip:night-vm@", "sip:other-vm@");
    let r = h
        .http
        .put(format!("{}/v1/config", h.base))
        .header("content-type", "application/toml")
        .body(changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let (status, again) = h.route(body.clone()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);

    // Even with the queue gone (nothing waits in it, so it may be removed).
    let (head, tail) = CONFIG.split_once("[[queue]]\nid = \"night\"").unwrap();
    let tail = &tail[tail.find("[[agent]]").unwrap()..];
    let r = h
        .http
        .put(format!("{}/v1/config", h.base))
        .header("content-type", "application/toml")
        .body(format!("{head}{tail}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let (status, after_removal) = h.route(body).await;
    assert_eq!(status, 200, "{after_removal}");
    assert_eq!(after_removal, first);
    h.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_report_without_the_agent_is_refused_with_the_field_named() {
    let h = Harness::start().await;
    let (status, r) = h
        .report(json!({"call_id": "c6@pbx", "event": "accepted"}))
        .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "missing_agent");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("an `accepted` report needs `agent`"),
        "{r}"
    );
    let (status, r) = h
        .report(json!({"call_id": "c6@pbx", "event": "declined"}))
        .await;
    assert_eq!(status, 422, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("a `declined` report needs `agent`"),
        "{r}"
    );
}

#[tokio::test]
async fn a_report_with_a_bad_value_is_refused_with_the_field_named() {
    let h = Harness::start().await;
    let (status, r) = h
        .report(json!({"call_id": "c7@pbx", "event": "picked_up", "agent": "a1"}))
        .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "invalid_field");
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("field `event`: unknown value `picked_up`"),
        "{r}"
    );
    let (status, r) = h.route(json!({"call_id": 7})).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "invalid_field");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("field `call_id`: invalid type: integer `7`"),
        "{r}"
    );
}

/// A report for an earlier offer (a late 408 for a ring that already expired, while the engine
/// rings the same agent again for the same call) changes nothing: the current ring goes on.
#[tokio::test]
async fn a_late_report_for_an_earlier_offer_leaves_the_current_ring_alone() {
    let h = Harness::start().await;
    h.login("a1").await;
    let (_, first) = h.route(call("c8@pbx")).await;
    assert_eq!(first["agent"], "a1", "{first}");
    let current = first["offer"].as_str().unwrap().to_string();
    let stale = json!({"call_id": "c8@pbx", "event": "no_answer", "agent": "a1",
                       "offer": "o-earlier", "sip_status": 408});
    let (status, r) = h.report(stale).await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("ignored")),
        "{r}"
    );
    assert_eq!(r["reason"], "no_such_offer");
    assert!(
        r["message"]
            .as_str()
            .unwrap_or_default()
            .contains("o-earlier"),
        "{r}"
    );
    let view = h.get("/v1/interactions/c8@pbx").await;
    assert_eq!(view["state"], "offered", "{view}");
    let agent = h.get("/v1/agents/a1").await;
    assert_eq!(agent["status"], "available", "no miss counted: {agent}");
    assert_eq!(
        agent["interactions"][0]["offer"],
        current.as_str(),
        "{agent}"
    );
    // The report for the current offer applies.
    let accept = json!({"call_id": "c8@pbx", "event": "accepted", "agent": "a1",
                        "offer": current, "sip_status": 200});
    assert_eq!(h.report(accept).await.1["status"], "applied");
    h.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn an_agent_leg_report_needs_its_offer_and_a_misspelt_field_is_refused() {
    let h = Harness::start().await;
    let (status, r) = h
        .report(json!({"call_id": "c9@pbx", "event": "declined", "agent": "a1", "sip_status": 486}))
        .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "missing_offer");
    let (status, r) = h
        .report(json!({"call_id": "c9@pbx", "event": "declined", "agent": "a1", "ofer": "o1"}))
        .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "unknown_field");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ofer"),
        "{r}"
    );
    // A key given twice is refused, not read as its last value.
    let raw = h
        .http
        .post(format!("{}/v1/adapters/kamailio/report", h.base))
        .header("content-type", "application/json")
        .body(r#"{"call_id":"c9@pbx","call_id":"c10@pbx","event":"ended"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 422);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "duplicate_field", "{body}");
    h.daemon.stop().await.unwrap();
}

/// integrations.md limits only `call_id` (≤ 200 bytes); `from` is an attribute (values up to
/// 1,024 bytes) and the customer. A From URI over 256 bytes must not make the call unroutable
/// (a 422 Kamailio turns into 503 for the caller) under a field name Kamailio never sent.
#[tokio::test]
async fn a_call_with_a_long_from_uri_is_still_routed() {
    let h = Harness::start().await;
    h.login("a1").await;
    let mut c = call("long-from@pbx");
    c["from"] = json!(format!("sip:{}@example.org", "u".repeat(300)));
    let (status, doc) = h.route(c).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["agent"], "a1", "{doc}");
    h.daemon.stop().await.unwrap();
}

/// The config accepts agent ids up to the engine's 256 bytes and `/route` answers such an id in
/// `agent`: the reports of that agent's phone must be taken too (they were refused over 200
/// bytes, so an answered call stayed `offered` until it expired and was re-offered).
#[tokio::test]
async fn the_reports_of_an_agent_with_a_long_id_are_taken() {
    let long = "a".repeat(230);
    let h = Harness::start_with(&CONFIG.replace("id = \"a1\"", &format!("id = \"{long}\""))).await;
    h.login(&long).await;
    let (status, doc) = h.route(call("long-agent@pbx")).await;
    assert_eq!(
        (status, doc["agent"].as_str()),
        (200, Some(long.as_str())),
        "{doc}"
    );
    let accept = json!({"call_id": "long-agent@pbx", "event": "accepted", "agent": long,
                        "offer": doc["offer"], "sip_status": 200});
    let (status, r) = h.report(accept).await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("applied")),
        "{r}"
    );
    // Past the engine's limit the field is named with its limit.
    let too_long = "a".repeat(257);
    let (status, r) = h
        .report(
            json!({"call_id": "long-agent@pbx", "event": "accepted", "agent": too_long,
                       "offer": doc["offer"]}),
        )
        .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "field_too_long", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("at most 256"),
        "{r}"
    );
    h.daemon.stop().await.unwrap();
}

/// An agent's phone that answers after tierline revoked its offer (agent forced offline, offer
/// expired while a late 180 restarted Kamailio's ring timer) connects the caller all the same: a
/// 2xx ends the caller's transaction and no `/route` follows. tierline follows the phone: the
/// call is connected to that agent, and the offer of it ringing another agent is revoked (that
/// agent is not blamed and is free at once).
#[tokio::test]
async fn an_answer_after_the_offer_was_revoked_connects_the_call_to_that_agent() {
    let h = Harness::start().await;
    let (first, ringing) = h.revoked_from_a1_ringing_a2("revoked@pbx").await;
    // a1's phone answers anyway: the caller talks to a1.
    let accept = json!({"call_id": "revoked@pbx", "event": "accepted", "agent": "a1",
                        "offer": first["offer"], "sip_status": 200});
    let (status, r) = h.report(accept.clone()).await;
    assert_eq!(
        (status, r["status"].as_str(), r["reason"].as_str()),
        (200, Some("applied"), Some("no_such_offer")),
        "{r}"
    );
    // a2's phone answering too (its 200 racing the CANCEL) connects nothing more and withdraws
    // nothing: the call is a1's.
    let (status, r2) = h
        .report(
            json!({"call_id": "revoked@pbx", "event": "accepted", "agent": "a2",
                       "offer": ringing["offer"], "sip_status": 200}),
        )
        .await;
    assert_eq!(
        (
            status,
            r2["status"].as_str(),
            &r2["connected"],
            &r2["withdrawn"]
        ),
        (200, Some("ignored"), &json!(false), &json!(false)),
        "{r2}"
    );
    assert_eq!(
        (&r["connected"], &r["withdrawn"]),
        (&json!(true), &json!(false)),
        "{r}"
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap_or("")
            .contains("connected to agent `a1`"),
        "{r}"
    );
    let view = h.get("/v1/interactions/revoked@pbx").await;
    assert_eq!(
        (view["state"].as_str(), view["owner"]["id"].as_str()),
        (Some("connected"), Some("a1")),
        "{view}"
    );
    let a2 = h.get("/v1/agents/a2").await;
    assert_eq!(
        (a2["status"].as_str(), a2["activity"].as_str()),
        (Some("available"), Some("available")),
        "a2's ringing offer was revoked, without blame: {a2}"
    );
    // A retransmitted 200 changes nothing more; the BYE ends the call on a1's slot.
    let (status, r) = h.report(accept).await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("duplicate")),
        "{r}"
    );
    let (_, r) = h
        .report(json!({"call_id": "revoked@pbx", "event": "ended"}))
        .await;
    assert_eq!(r["status"], "applied", "{r}");
    let view = h.get("/v1/interactions/revoked@pbx").await;
    assert_eq!(view["state"], "done", "no wrap-up here: {view}");
    assert_eq!(
        view["history"][4]["why"]["kind"], "answered_outside_offer",
        "{view}"
    );
    h.daemon.stop().await.unwrap();
}

/// A late answer the engine cannot connect (the agent took another call meanwhile) still takes
/// the call out of tierline, so that it is not offered to agents nobody rings.
#[tokio::test]
async fn a_late_answer_the_agent_has_no_room_for_takes_the_call_out_of_tierline() {
    let h = Harness::start().await;
    let (first, _) = h.revoked_from_a1_ringing_a2("ghost@pbx").await;
    // a1 comes back and takes another call before its old phone's 200 is reported.
    h.post(
        "/v1/events",
        json!({"id": "a2-break", "type": "agent.state", "agent": "a2", "state": "not_ready"}),
    )
    .await;
    let (status, body) = h
        .post(
            "/v1/events",
            json!({"id": "login-a1-again", "type": "agent.login", "agent": "a1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, second) = h.route(call("second@pbx")).await;
    assert_eq!(second["agent"], "a1", "{second}");
    let (_, r) = h
        .report(
            json!({"call_id": "second@pbx", "event": "accepted", "agent": "a1",
                       "offer": second["offer"], "sip_status": 200}),
        )
        .await;
    assert_eq!(r["status"], "applied", "{r}");
    let (status, r) = h
        .report(
            json!({"call_id": "ghost@pbx", "event": "accepted", "agent": "a1",
                       "offer": first["offer"], "sip_status": 200}),
        )
        .await;
    assert_eq!(
        (status, r["status"].as_str(), r["reason"].as_str()),
        (200, Some("ignored"), Some("no_such_offer")),
        "{r}"
    );
    assert_eq!(
        (&r["connected"], &r["withdrawn"]),
        (&json!(false), &json!(true)),
        "{r}"
    );
    assert!(
        r["message"].as_str().unwrap_or("").contains("has no room"),
        "{r}"
    );
    let view = h.get("/v1/interactions/ghost@pbx").await;
    assert_eq!(view["state"], "abandoned", "{view}");
    h.daemon.stop().await.unwrap();
}

/// The daemon with queue `support` serving chats as well as calls.
async fn start_with_chats() -> Harness {
    let config = CONFIG.replace(
        "[[queue]]\nid = \"support\"\n",
        "[[queue]]\nid = \"support\"\nchannels = [\"voice\", \"chat\"]\n",
    );
    assert_ne!(config, CONFIG);
    Harness::start_with(&config).await
}

/// A chat (or any interaction another integration brought in) through `POST /v1/events`.
async fn chat_arrives(h: &Harness, id: &str) {
    let (status, body) = h
        .post(
            "/v1/events",
            json!({"id": format!("arrive-{id}"), "type": "interaction.arrived",
                   "interaction": id, "channel": "chat", "queue": "support"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The Call-ID is the interaction id, and chats, emails and callbacks share that id space: a SIP
/// call whose Call-ID is a chat's id (a predictable `chat-1`) must not be taken for that chat.
/// `/route` refuses it, and nothing about the chat changes (its offer to a1 is not rung).
#[tokio::test]
async fn a_call_id_that_names_a_chat_is_refused_and_the_chat_is_untouched() {
    let h = start_with_chats().await;
    h.login("a1").await;
    chat_arrives(&h, "chat-1").await;
    let before = h.get("/v1/interactions/chat-1").await;
    assert_eq!(before["state"], "offered", "{before}");
    assert_eq!(before["channel"], "chat", "{before}");

    let (status, r) = h.route(call("chat-1")).await;
    assert_eq!(status, 409, "{r}");
    assert_eq!(r["error"]["code"], "call_id_in_use", "{r}");
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("chat"), "{r}");
    // A retried `/route` (Kamailio after a failure) gets the same answer.
    let mut again = call("chat-1");
    again["previous_offer"] = json!("o-any");
    let (status, r) = h.route(again).await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (409, Some("call_id_in_use")),
        "{r}"
    );

    let after = h.get("/v1/interactions/chat-1").await;
    assert_eq!(after, before, "the chat is unchanged");
    let agent = h.get("/v1/agents/a1").await;
    assert_eq!(agent["interactions"][0]["interaction"], "chat-1", "{agent}");
    h.daemon.stop().await.unwrap();
}

/// No SIP outcome reported for a Call-ID that is a chat's id is applied to the chat: a CANCEL
/// cannot abandon it, a 2xx cannot take it for the agent's phone (nor withdraw it), a BYE cannot
/// end it. Each is answered as a report the adapter cannot apply.
#[tokio::test]
async fn reports_for_a_call_id_that_names_a_chat_apply_nothing() {
    let h = start_with_chats().await;
    h.login("a1").await;
    chat_arrives(&h, "chat-1").await;
    let before = h.get("/v1/interactions/chat-1").await;
    assert_eq!(before["state"], "offered", "{before}");
    let offer = h.get("/v1/agents/a1").await["interactions"][0]["offer"].clone();
    assert!(offer.is_string(), "{offer}");

    let reports = [
        json!({"call_id": "chat-1", "event": "abandoned"}),
        json!({"call_id": "chat-1", "event": "accepted", "agent": "a1", "offer": offer,
               "sip_status": 200}),
        json!({"call_id": "chat-1", "event": "accepted", "agent": "a1", "offer": "o-other",
               "sip_status": 200}),
        json!({"call_id": "chat-1", "event": "declined", "agent": "a1", "offer": offer,
               "sip_status": 603}),
        json!({"call_id": "chat-1", "event": "no_answer", "agent": "a1", "offer": offer,
               "sip_status": 408}),
        json!({"call_id": "chat-1", "event": "ended"}),
    ];
    for report in reports {
        let (status, r) = h.report(report.clone()).await;
        assert_eq!(
            (status, r["status"].as_str(), r["reason"].as_str()),
            (200, Some("ignored"), Some("call_id_in_use")),
            "{report} -> {r}"
        );
        assert!(
            r["message"].as_str().unwrap_or_default().contains("chat"),
            "{r}"
        );
        assert!(
            r.get("withdrawn").is_none_or(|w| w == false),
            "nothing withdrawn: {r}"
        );
        let now = h.get("/v1/interactions/chat-1").await;
        assert_eq!(now, before, "after {report}: the chat is unchanged");
    }
    let agent = h.get("/v1/agents/a1").await;
    assert_eq!(
        (
            agent["status"].as_str(),
            agent["interactions"][0]["offer"].clone()
        ),
        (Some("available"), offer),
        "a1 keeps its chat offer, no miss counted: {agent}"
    );

    // The chat's own integration still drives it.
    let (status, body) = h
        .post(
            "/v1/events",
            json!({"id": "chat-1-accept", "type": "offer.accepted", "interaction": "chat-1",
                   "agent": "a1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.get("/v1/interactions/chat-1").await["state"], "connected");
    h.daemon.stop().await.unwrap();
}

/// An `accepted` report naming an offer tierline never made to that agent for that call (a stray
/// or forged report) connects nothing and withdraws nothing: the real ring goes on.
#[tokio::test]
async fn an_accepted_report_for_an_offer_never_made_changes_nothing() {
    let h = Harness::start().await;
    h.login("a1").await;
    let (_, first) = h.route(call("stray@pbx")).await;
    assert_eq!(first["agent"], "a1", "{first}");
    for (agent, offer) in [
        ("a2", "bogus"),
        ("a1", "o999"),
        ("a2", first["offer"].as_str().unwrap()),
    ] {
        let (status, r) = h
            .report(
                json!({"call_id": "stray@pbx", "event": "accepted", "agent": agent,
                           "offer": offer, "sip_status": 200}),
            )
            .await;
        assert_eq!(
            (
                status,
                r["status"].as_str(),
                &r["connected"],
                &r["withdrawn"]
            ),
            (200, Some("ignored"), &json!(false), &json!(false)),
            "{agent} {offer}: {r}"
        );
        assert!(
            r["message"]
                .as_str()
                .unwrap_or("")
                .contains("was never made"),
            "{r}"
        );
    }
    let view = h.get("/v1/interactions/stray@pbx").await;
    assert_eq!(
        (view["state"].as_str(), view["owner"]["id"].as_str()),
        (Some("offered"), Some("a1")),
        "{view}"
    );
    h.daemon.stop().await.unwrap();
}
