//! Whole interaction lifecycles through the real HTTP API: voice and chat, escalation on the
//! ladder timer, offer expiry and re-offer, max_no_answer, abandon while ringing, transfer and
//! explicit escalation. Timers are short (300 ms) and the tests wait for them by long-polling;
//! the exactness of every timer is asserted on engine time (`at`), never on the wall clock.

mod api_common;

use api_common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_voice_call_is_offered_answered_ended_and_wrapped_up() {
    let t = TestDaemon::with_routing(routing()).await;
    assert!(t.apply(login("e1", "a1")).await.is_empty());
    let offer = t.apply(call("e2", "c1")).await;
    assert_eq!(offer.len(), 1);
    assert_eq!(offer[0]["type"], "offer");
    assert_eq!(offer[0]["agent"], "a1");
    assert_eq!(offer[0]["address"], "sip:a1@pbx");
    assert_eq!(offer[0]["channel"], "voice");
    assert_eq!(offer[0]["queue"], "support");
    assert_eq!(offer[0]["seq"], 1);
    assert_eq!(ms(&offer[0], "expires_at"), at_ms(&offer[0]) + 300);

    t.apply(accept("e3", "c1", "a1")).await;
    let (_, agent) = t.get("/v1/agents/a1").await;
    assert_eq!(agent["activity"], "busy");
    assert_eq!(agent["load"]["voice"], 1);
    assert_eq!(agent["interactions"][0]["interaction"], "c1");
    assert_eq!(agent["interactions"][0]["phase"], "connected");

    t.apply(
        json!({"id": "e4", "type": "interaction.ended", "interaction": "c1", "resolved": true}),
    )
    .await;
    let (_, c1) = t.get("/v1/interactions/c1").await;
    assert_eq!(c1["state"], "wrap_up");
    t.apply(json!({"id": "e5", "type": "agent.wrapup_done", "agent": "a1"}))
        .await;
    t.apply(json!({"id": "e6", "type": "interaction.rated", "interaction": "c1", "score": 5}))
        .await;

    let (status, c1) = t.get("/v1/interactions/c1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c1["state"], "done");
    assert_eq!(c1["rating"], 5);
    assert_eq!(c1["resolved"], true);
    let path: Vec<&str> = c1["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["waiting", "offered", "connected", "wrap_up", "done"]);

    let (_, queue) = t.get("/v1/queues/support").await;
    assert_eq!(queue["waiting"], 0);
    assert_eq!(queue["sla"]["answered"], 1);
    assert_eq!(queue["sla"]["answered_within_sla"], 1);
    assert_eq!(queue["sla"]["service_level"], 1.0);
    let (_, agent) = t.get("/v1/agents/a1").await;
    assert_eq!(agent["activity"], "available");
    assert_eq!(agent["accepted_since_login"], 1);
    t.stop().await;
}

#[tokio::test]
async fn a_chat_agent_takes_three_chats_and_the_fourth_waits() {
    let mut r = routing();
    r.agents.push(agent("chat1", &[("support", 1)]));
    let t = TestDaemon::with_routing(r).await;
    t.apply(login("e0", "chat1")).await;
    for i in 1..=3 {
        let d = t
            .apply(json!({"id": format!("c{i}"), "type": "interaction.arrived",
                          "interaction": format!("chat-{i}"), "channel": "chat", "queue": "support"}))
            .await;
        assert_eq!(d[0]["type"], "offer", "chat {i}: {d:?}");
        assert_eq!(d[0]["agent"], "chat1");
        // A chat platform sharing the queue with a PBX knows the offer is its own.
        assert_eq!(d[0]["channel"], "chat");
    }
    let fourth = t
        .apply(
            json!({"id": "c4", "type": "interaction.arrived", "interaction": "chat-4",
                      "channel": "chat", "queue": "support"}),
        )
        .await;
    assert_eq!(fourth[0]["type"], "queued");
    assert_eq!(fourth[0]["position"], 1);
    // Ending one chat (no wrap-up wait: wrapup_done) frees a slot and the fourth is offered.
    t.apply(accept("x1", "chat-1", "chat1")).await;
    t.apply(json!({"id": "x2", "type": "interaction.ended", "interaction": "chat-1"}))
        .await;
    let freed = t
        .apply(json!({"id": "x3", "type": "agent.wrapup_done", "agent": "chat1"}))
        .await;
    assert_eq!(freed[0]["type"], "offer");
    assert_eq!(freed[0]["interaction"], "chat-4");
    let (_, agent) = t.get("/v1/agents/chat1").await;
    assert_eq!(agent["load"]["chat"], 3);
    t.stop().await;
}

#[tokio::test]
async fn an_l2_agent_gets_the_call_when_the_ladder_step_is_reached() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "b1")).await;
    let queued = t.apply(call("e2", "c1")).await;
    assert_eq!(queued[0]["type"], "queued");
    let arrived_at = at_ms(&queued[0]);
    let mut after = queued[0]["seq"].as_u64().unwrap();
    let seen = t.wait_for(&mut after, |d| is(d, "offer")).await;
    let escalated = seen.iter().find(|d| is(d, "escalated")).expect("escalated");
    assert_eq!(escalated["step"], 1);
    assert_eq!(
        at_ms(escalated),
        arrived_at + 300,
        "the step fires exactly at its deadline"
    );
    let offer = seen.last().unwrap();
    assert_eq!(offer["agent"], "b1");
    assert_eq!(at_ms(offer), arrived_at + 300);
    let (_, c1) = t.get("/v1/interactions/c1").await;
    assert_eq!(c1["step"], 1);
    t.stop().await;
}

#[tokio::test]
async fn an_unanswered_offer_expires_and_goes_to_the_next_agent() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    t.apply(login("e2", "a2")).await;
    let offer = t.apply(call("e3", "c1")).await;
    let first = offer[0]["agent"].as_str().unwrap().to_string();
    let expires = ms(&offer[0], "expires_at");
    let mut after = offer[0]["seq"].as_u64().unwrap();
    let seen = t.wait_for(&mut after, |d| is(d, "offer")).await;
    // (The ladder's second step falls due at the same moment; it may come first.)
    let revoked = seen
        .iter()
        .find(|d| is(d, "offer_revoked"))
        .expect("offer_revoked");
    assert_eq!(revoked["reason"], "expired");
    assert_eq!(revoked["agent"], first);
    assert_eq!(at_ms(revoked), expires);
    let reoffer = seen.last().unwrap();
    assert_ne!(reoffer["agent"], first);
    assert_eq!(reoffer["interaction"], "c1");
    assert_eq!(at_ms(reoffer), expires);
    // The late accept by the first agent is refused: the offer no longer exists.
    let (status, body) = t.events(accept("e4", "c1", &first)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no_such_offer");
    t.stop().await;
}

#[tokio::test]
async fn an_agent_who_never_answers_is_made_not_ready_after_max_no_answer() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    let offer = t.apply(call("e2", "c1")).await;
    let mut after = offer[0]["seq"].as_u64().unwrap();
    let seen = t.wait_for(&mut after, |d| is(d, "agent_state")).await;
    let revokes = seen.iter().filter(|d| is(d, "offer_revoked")).count();
    assert_eq!(revokes, 2, "max_no_answer = 2: {seen:#?}");
    let state = seen.last().unwrap();
    assert_eq!(state["agent"], "a1");
    assert_eq!(state["state"], "not_ready");
    assert_eq!(state["reason"], "no_answer");
    let (_, a1) = t.get("/v1/agents/a1").await;
    assert_eq!(a1["status"], "not_ready");
    let (_, q) = t.get("/v1/queues/support").await;
    assert_eq!(q["waiting"], 1, "the call waits again");
    t.stop().await;
}

#[tokio::test]
async fn a_caller_hanging_up_while_ringing_revokes_the_offer_and_frees_the_agent() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    t.apply(call("e2", "c1")).await;
    let d = t
        .apply(json!({"id": "e3", "type": "interaction.abandoned", "interaction": "c1"}))
        .await;
    assert_eq!(d[0]["type"], "offer_revoked");
    assert_eq!(d[0]["reason"], "abandoned");
    let (_, a1) = t.get("/v1/agents/a1").await;
    assert_eq!(a1["activity"], "available");
    assert_eq!(a1["load"]["voice"].as_u64().unwrap_or(0), 0);
    assert!(a1["interactions"].as_array().unwrap().is_empty());
    // The next call goes straight to the freed agent.
    let next = t.apply(call("e4", "c2")).await;
    assert_eq!(next[0]["agent"], "a1");
    let (_, c1) = t.get("/v1/interactions/c1").await;
    assert_eq!(c1["state"], "abandoned");
    t.stop().await;
}

#[tokio::test]
async fn a_transfer_moves_the_call_and_an_explicit_escalation_reaches_l2() {
    let t = TestDaemon::with_routing(routing()).await;
    for (id, a) in [("e1", "a1"), ("e2", "s1"), ("e3", "b1")] {
        t.apply(login(id, a)).await;
    }
    t.apply(call("e4", "c1")).await;
    t.apply(accept("e5", "c1", "a1")).await;
    let moved = t
        .apply(json!({"id": "e6", "type": "interaction.transferred", "interaction": "c1", "queue": "sales"}))
        .await;
    assert_eq!(moved[0]["type"], "offer");
    assert_eq!(moved[0]["agent"], "s1");
    assert_eq!(moved[0]["queue"], "sales");

    // A second call: a1 is in wrap-up from the transfer, so a2 takes it and escalates to L2.
    t.apply(login("e7", "a2")).await;
    let offer = t.apply(call("e8", "c2")).await;
    assert_eq!(offer[0]["agent"], "a2");
    t.apply(accept("e9", "c2", "a2")).await;
    let esc = t
        .apply(json!({"id": "e10", "type": "interaction.escalated", "interaction": "c2", "min_tier": 2}))
        .await;
    let escalated = esc
        .iter()
        .find(|d| is(d, "escalated"))
        .expect("escalated decision");
    assert_eq!(escalated["by"], "a2");
    assert_eq!(escalated["min_tier"], 2);
    let offer = esc.iter().find(|d| is(d, "offer")).expect("offer to L2");
    assert_eq!(offer["agent"], "b1");
    let (_, c2) = t.get("/v1/interactions/c2").await;
    assert_eq!(c2["min_tier"], 2);
    assert!(c2["history"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["why"]["kind"] == "escalated_by_agent" && h["why"]["by"] == "a2"));
    t.stop().await;
}

/// The engine task has a thread of its own, so its timers never wait behind HTTP connection
/// tasks on the API runtime's workers; it still answers through the same handle, and a graceful
/// stop still hands its final state back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_task_runs_on_its_own_thread_beside_the_http_workers() {
    let t = TestDaemon::with_routing(routing()).await;
    let engine_thread = t
        .daemon()
        .engine()
        .read_core(|_| std::thread::current().name().map(str::to_string))
        .await
        .unwrap();
    assert_eq!(engine_thread.as_deref(), Some("tierline-engine"));
    assert_ne!(
        std::thread::current().name(),
        Some("tierline-engine"),
        "the test itself runs on the API runtime"
    );
    // Events still go through it, and its timers still fire: the 300 ms offer expires.
    t.apply(login("e1", "a1")).await;
    let offer = t.apply(call("e2", "c1")).await;
    assert_eq!(offer[0]["type"], "offer");
    let mut seq = t.daemon().engine().next_seq_watch();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        seq.wait_for(|next| *next > 2),
    )
    .await
    .expect("the offer's expiry fires on the engine thread")
    .unwrap();
    t.stop().await;
}

/// `sla` on `GET /v1/queues` is since start, counted from the same facts as the metrics: after a
/// known sequence every field has its documented value (docs/API.md, "Queues").
#[tokio::test]
async fn the_queue_sla_object_counts_every_outcome_since_start() {
    let mut r = routing();
    r.queues[0].max_waiting = Some(1);
    r.queues[1].short_abandon_ms = 0;
    r.queues[1].max_wait_ms = Some(200);
    r.queues[1].overflow = Some(tierline::config::Overflow::Target(
        "sip:voicemail@pbx".into(),
    ));
    let t = TestDaemon::with_routing(r).await;
    let abandon =
        |id: &str, c: &str| json!({"id": id, "type": "interaction.abandoned", "interaction": c});
    // support: answered within the SLA, two short abandons, one rejected (queue full).
    t.apply(login("e1", "a1")).await;
    let offer = t.apply(call("e2", "c1")).await;
    assert_eq!(offer[0]["type"], "offer");
    t.apply(accept("e3", "c1", "a1")).await;
    t.apply(call("e4", "c2")).await;
    let full = t.apply(call("e5", "c3")).await;
    assert_eq!(full[0]["type"], "rejected", "{full:?}");
    t.apply(abandon("e6", "c2")).await;
    t.apply(call("e7", "c4")).await;
    t.apply(abandon("e8", "c4")).await;
    // sales (nobody logged in): one overflow after max_wait, one abandon (no short abandons).
    let sales = |id: &str, c: &str| {
        json!({"id": id, "type": "interaction.arrived", "interaction": c, "channel": "voice",
               "queue": "sales"})
    };
    let queued = t.apply(sales("e9", "c5")).await;
    let mut after = queued[0]["seq"].as_u64().expect("seq");
    t.wait_for(&mut after, |d| is(d, "overflow")).await;
    t.apply(sales("e10", "c6")).await;
    t.apply(abandon("e11", "c6")).await;

    let expected = [
        json!({"arrived": 4, "answered": 1, "answered_within_sla": 1, "abandoned": 0,
               "short_abandoned": 2, "overflowed": 0, "rejected": 1,
               "service_level": 1.0, "abandon_rate": 0.0}),
        json!({"arrived": 2, "answered": 0, "answered_within_sla": 0, "abandoned": 1,
               "short_abandoned": 0, "overflowed": 1, "rejected": 0,
               "service_level": 0.0, "abandon_rate": 1.0}),
    ];
    let (_, all) = t.get("/v1/queues").await;
    for (n, (id, want)) in ["support", "sales"].iter().zip(expected).enumerate() {
        let (status, one) = t.get(&format!("/v1/queues/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["sla"], want, "{one}");
        assert_eq!(all["queues"][n]["sla"], want, "{all}");
    }
    t.stop().await;
}
