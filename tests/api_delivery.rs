//! Decisions reaching the PBX after the fact: long-poll, SSE with `Last-Event-ID` resume, and an
//! outbound webhook subscriber that fails twice and then succeeds; readers behind (410) or past
//! (409) the feed. In every case each decision
//! must arrive exactly once and in seq order.

mod api_common;

use std::sync::{Arc, Mutex};

use api_common::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tierline::api::auth::AuthKeys;
use tierline::config::daemon::SubscriberConfig;
use tierline::daemon::DaemonOptions;

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_a_decision_exists() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    // Nothing yet: an empty answer after the wait, and `next` stays where it was.
    let (decisions, next) = t.poll(0, 100).await;
    assert!(decisions.is_empty());
    assert_eq!(next, 0);

    let base = t.base.clone();
    let waiting = tokio::spawn(async move {
        reqwest::get(format!("{base}/v1/decisions?after=0&wait_ms=15000"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    // Let the poll reach the server before the event (it would also be correct if it did not).
    tokio::task::yield_now().await;
    t.apply(call("e2", "c1")).await;
    let body = tokio::time::timeout(GIVE_UP, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["decisions"][0]["type"], "offer");
    assert_eq!(body["decisions"][0]["seq"], 1);
    assert_eq!(body["next"], 1);
    // Polling from `next` finds nothing new.
    let (decisions, next) = t.poll(1, 0).await;
    assert!(decisions.is_empty());
    assert_eq!(next, 1);
    t.stop().await;
}

#[tokio::test]
async fn a_bad_long_poll_query_is_a_400() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, body) = t.get("/v1/decisions?after=minus-one").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_query");
    assert_eq!(
        body["error"]["message"],
        "query parameter `after`: not a whole number ≥ 0"
    );
    let (_, body) = t.get("/v1/decisions?after=").await;
    assert_eq!(
        body["error"]["message"],
        "query parameter `after`: empty: give a whole number ≥ 0, or leave the parameter out"
    );
    let (status, body) = t.get("/v1/decisions?after=0&limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_query");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("limit=0"),
        "{body}"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_reader_behind_the_decision_log_gets_410_gone() {
    let mut options = DaemonOptions::new(loaded(routing()));
    options.config.daemon.server.decision_log = 2;
    let t = TestDaemon::start(options).await;
    t.apply(login("e1", "a1")).await;
    for i in 1..=4 {
        t.apply(call(&format!("c{i}"), &format!("call-{i}"))).await;
    }
    let (status, body) = t.get("/v1/decisions?after=0").await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"]["code"], "decisions_gone");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("oldest kept is seq 3"),
        "{body}"
    );
    // A reader that resumes by itself needs the seq as a number, not inside prose.
    assert_eq!(body["error"]["resume_after"], 2, "{body}");
    let (decisions, _) = t.poll(2, 0).await;
    let seqs: Vec<u64> = decisions
        .iter()
        .map(|d| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4]);
    let r = t
        .http
        .get(t.url("/v1/decisions/stream"))
        .header("Last-Event-ID", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    t.stop().await;
}

#[tokio::test]
async fn a_reader_past_the_newest_decision_gets_409_ahead_not_a_silent_wait() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    t.apply(call("e2", "c1")).await; // seq 1
    let (status, body) = t.get("/v1/decisions?after=5&wait_ms=10000").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "decisions_ahead");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("newest decision is seq 1") && message.contains("resume from after=1"),
        "{body}"
    );
    assert_eq!(body["error"]["resume_after"], 1, "{body}");
    let r = t
        .http
        .get(t.url("/v1/decisions/stream"))
        .header("Last-Event-ID", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // The message names the cursor the reader sent, not an `after` it never did.
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Last-Event-ID 2 is ahead") && !message.contains("after=2"),
        "{body}"
    );
    assert_eq!(body["error"]["resume_after"], 1, "{body}");
    // Up to date is not ahead: an empty page, cursor kept.
    let (decisions, next) = t.poll(1, 0).await;
    assert!(decisions.is_empty());
    assert_eq!(next, 1);
    t.stop().await;
}

/// One parsed SSE event.
#[derive(Debug, Clone)]
struct Sse {
    id: u64,
    event: String,
    data: Value,
}

/// Read `n` SSE events from a response body.
async fn read_sse(response: reqwest::Response, n: usize) -> Vec<Sse> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let read = async {
        while events.len() < n {
            let chunk = stream.next().await.expect("stream open").expect("chunk");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if let Some(id) = id {
                    events.push(Sse {
                        id,
                        event,
                        data: serde_json::from_str(&data).expect("JSON data"),
                    });
                }
            }
        }
    };
    tokio::time::timeout(GIVE_UP, read)
        .await
        .expect("SSE events");
    events
}

#[tokio::test]
async fn an_sse_client_resumes_with_last_event_id_without_gaps_or_repeats() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    let stream = t
        .http
        .get(t.url("/v1/decisions/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    for i in 1..=3 {
        t.apply(call(&format!("c{i}"), &format!("call-{i}"))).await;
    }
    let first = read_sse(stream, 2).await;
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(first[0].event, "offer");
    assert_eq!(first[0].data["interaction"], "call-1");
    assert_eq!(first[1].event, "queued");
    // The client drops; a decision is made meanwhile; it reconnects from the last id it saw.
    t.apply(call("c4", "call-4")).await;
    let resumed = t
        .http
        .get(t.url("/v1/decisions/stream"))
        .header("Last-Event-ID", first[1].id.to_string())
        .send()
        .await
        .unwrap();
    let rest = read_sse(resumed, 2).await;
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(rest[1].data["interaction"], "call-4");
    assert_eq!(rest[1].data["seq"], 4);
    t.stop().await;
}

/// An `EventSource` opened with `?after=N` reconnects to that same URL with `Last-Event-ID`:
/// the header must win, or every reconnect would replay from N.
#[tokio::test]
async fn last_event_id_wins_over_the_after_of_the_url() {
    let t = TestDaemon::with_routing(one_agent_desk()).await;
    t.apply(login("e1", "a1")).await;
    for i in 1..=4 {
        t.apply(call(&format!("c{i}"), &format!("call-{i}"))).await;
    }
    let resumed = t
        .http
        .get(t.url("/v1/decisions/stream?after=1"))
        .header("Last-Event-ID", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
    let events = read_sse(resumed, 1).await;
    assert_eq!(events[0].id, 4);
    t.stop().await;
}

#[derive(Clone, Default)]
struct Hook {
    attempts: Arc<Mutex<u32>>,
    accepted: Arc<Mutex<Vec<u64>>>,
    bad_signatures: Arc<Mutex<u32>>,
    got: Arc<tokio::sync::Notify>,
}

async fn hook(State(h): State<Hook>, headers: HeaderMap, body: axum::body::Bytes) -> AxumStatus {
    let keys = AuthKeys::new(&["hook-secret"], &[], &[]);
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signature = headers
        .get("tierline-signature")
        .and_then(|v| v.to_str().ok());
    if keys.verify_signature(signature, &body, now_s).is_err() {
        *h.bad_signatures.lock().unwrap() += 1;
        return AxumStatus::UNAUTHORIZED;
    }
    // Who is calling, for a receiver's logs and firewall.
    let agent = headers.get("user-agent").and_then(|v| v.to_str().ok());
    if !agent.is_some_and(|a| a.starts_with("tierline/")) {
        return AxumStatus::BAD_REQUEST;
    }
    let attempt = {
        let mut a = h.attempts.lock().unwrap();
        *a += 1;
        *a
    };
    if attempt <= 2 {
        return AxumStatus::INTERNAL_SERVER_ERROR;
    }
    let batch: Value = serde_json::from_slice(&body).unwrap();
    let mut accepted = h.accepted.lock().unwrap();
    for d in batch["decisions"].as_array().unwrap() {
        accepted.push(d["seq"].as_u64().unwrap());
    }
    h.got.notify_one();
    AxumStatus::OK
}

#[tokio::test]
async fn a_webhook_subscriber_that_fails_twice_gets_every_decision_once_in_order() {
    let state = Hook::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut config = loaded(routing());
    let mut sub = SubscriberConfig::new(&format!("http://{hook_addr}/hook"));
    sub.secret_env = Some("TEST_HOOK_SECRET".into());
    sub.retry_initial_ms = 20;
    sub.retry_max_ms = 100;
    config.daemon.subscribers.push(sub);
    let mut options = DaemonOptions::new(config);
    options.env = Arc::new(|name: &str| (name == "TEST_HOOK_SECRET").then(|| "hook-secret".into()));
    let t = TestDaemon::start(options).await;

    t.apply(login("e1", "a1")).await;
    for i in 1..=3 {
        t.apply(call(&format!("c{i}"), &format!("call-{i}"))).await;
    }
    t.apply(json_abandon("e9", "call-3")).await;
    let expected: Vec<u64> = (1..=3).collect();
    tokio::time::timeout(GIVE_UP, async {
        loop {
            if state.accepted.lock().unwrap().len() >= expected.len() {
                break;
            }
            state.got.notified().await;
        }
    })
    .await
    .expect("all decisions delivered");
    assert_eq!(*state.accepted.lock().unwrap(), expected);
    assert_eq!(*state.bad_signatures.lock().unwrap(), 0);
    assert!(*state.attempts.lock().unwrap() >= 3);
    // Its progress is a metric: the newest decision's seq and the last it acknowledged (set
    // just after the hook's 2xx reaches it), so lag = one minus the other.
    let label = format!("subscriber=\"http://{hook_addr}/hook\"");
    let metrics = t.daemon.as_ref().unwrap().metrics().clone();
    let acked = tokio::time::timeout(GIVE_UP, async {
        loop {
            let text = metrics.render();
            let line = text
                .lines()
                .find(|l| l.starts_with("tierline_subscriber_acked_seq{") && l.contains(&label))
                .map(str::to_string);
            if line.as_deref().is_some_and(|l| l.ends_with(" 3")) {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the acknowledged seq reaches 3");
    assert!(
        acked.lines().any(|l| l == "tierline_decision_seq 3"),
        "{acked}"
    );
    t.stop().await;
}

fn json_abandon(id: &str, interaction: &str) -> Value {
    serde_json::json!({"id": id, "type": "interaction.abandoned", "interaction": interaction})
}

/// A full command queue is a moment of load, not a reader's fault: an SSE stream must not end
/// with `event: error` `overloaded` (API.md names only `decisions_gone` as ending a stream; the
/// outbound subscriber retries the same read). Every decision made must reach the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sse_stream_survives_a_moment_of_overload() {
    let mut config = loaded(one_agent_desk());
    config.daemon.server.event_queue_depth = 1;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let mut stream = t
        .http
        .get(t.url("/v1/decisions/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let senders = flood_calls(&t, 32, 60);
    for s in senders {
        s.await.unwrap();
    }
    let (_, made) = t.poll(0, 0).await;
    let mut text = String::new();
    while !text.contains(&format!("id: {made}\n")) && !text.contains("event: error") {
        match tokio::time::timeout(GIVE_UP, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("stream ended or stalled ({other:?}) after: {text}"),
        }
    }
    assert!(!text.contains("event: error"), "the stream ended: {text}");
    t.stop().await;
}

/// "A batch is retried until answered 2xx": a receiver answering a redirect (an http → https
/// move, a load balancer) has not taken the batch. The POST must not be turned into a body-less
/// GET of the new location whose 2xx then counts as the delivery: the decisions would be lost
/// without a trace.
#[tokio::test]
async fn a_redirected_webhook_post_is_not_acknowledged_by_a_get() {
    #[derive(Clone, Default)]
    struct Seen {
        log: Arc<Mutex<Vec<String>>>,
        any: Arc<tokio::sync::Notify>,
    }
    async fn moved(State(s): State<Seen>) -> axum::response::Response {
        s.log.lock().unwrap().push("POST /hook".into());
        s.any.notify_one();
        axum::response::Response::builder()
            .status(302)
            .header("location", "/moved")
            .body(axum::body::Body::empty())
            .unwrap()
    }
    async fn get_moved(State(s): State<Seen>) -> AxumStatus {
        s.log.lock().unwrap().push("GET /moved".into());
        s.any.notify_one();
        AxumStatus::OK
    }
    async fn post_moved(State(s): State<Seen>) -> AxumStatus {
        s.log.lock().unwrap().push("POST /moved".into());
        s.any.notify_one();
        AxumStatus::OK
    }
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(moved))
        .route("/moved", axum::routing::get(get_moved).post(post_moved))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut config = loaded(one_agent_desk());
    let mut sub = SubscriberConfig::new(&format!("http://{hook_addr}/hook"));
    sub.retry_initial_ms = 20;
    sub.retry_max_ms = 100;
    config.daemon.subscribers.push(sub);
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    t.apply(login("e1", "a1")).await;
    t.apply(call("c1", "call-1")).await; // one decision: the offer

    // Wait for what settles it: a GET (the bug), the POST retried, or the POST followed as a POST.
    tokio::time::timeout(GIVE_UP, async {
        loop {
            {
                let log = seen.log.lock().unwrap();
                if log.iter().any(|l| l != "POST /hook") || log.len() >= 2 {
                    break;
                }
            }
            seen.any.notified().await;
        }
    })
    .await
    .expect("the receiver heard from the subscriber");
    let log = seen.log.lock().unwrap().clone();
    assert!(!log.contains(&"GET /moved".to_string()), "{log:?}");
    t.stop().await;
}

/// A browser `EventSource` takes a 503 at connect as fatal and stops reconnecting, so a full
/// command queue when a stream opens is waited out, as it is mid-stream, not answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_connect_waits_out_a_full_command_queue() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let mut config = loaded(one_agent_desk());
    config.daemon.server.event_queue_depth = 1;
    let mut options = DaemonOptions::new(config);
    options.journal_dir = Some(dir.path().to_path_buf());
    options.journal_sync = Some(gate.sync());
    let t = TestDaemon::start(options).await;

    // The disk stalls: the first call's batch waits for its sync, the engine takes no command
    // meanwhile, the next call fills the one-deep queue and the others are turned away.
    gate.set(true);
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..4 {
        let (http, url, done) = (t.http.clone(), t.url("/v1/events"), done.clone());
        tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&call(&format!("e{i}"), &format!("c{i}")))
                .send()
                .await;
            let _ = done.send(r.map(|r| r.status()).ok());
        });
    }
    let first = tokio::time::timeout(GIVE_UP, answers.recv()).await;
    assert!(
        matches!(first, Ok(Some(Some(StatusCode::SERVICE_UNAVAILABLE)))),
        "the queue never filled: {first:?}"
    );

    let (http, url) = (t.http.clone(), t.url("/v1/decisions/stream"));
    let connect = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    // Give the stream's first read time to find the queue full (ordering, not a measurement:
    // if it has not run yet it simply succeeds below, as it should).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    gate.set(false);
    let status = tokio::time::timeout(GIVE_UP, connect).await;
    assert!(
        matches!(status, Ok(Ok(Ok(StatusCode::OK)))),
        "the stream did not open once the queue drained: {status:?}"
    );
    t.stop().await;
}

/// `Last-Event-ID` given twice is refused on both read paths (a proxy may have added one: taking
/// either could skip or replay decisions); given empty it is absent (some SSE clients send it so
/// on their first connect); the long-poll resumes from it as the stream does. Before: the first
/// of two was taken, an empty one was 400, and the long-poll ignored it (a full replay).
#[tokio::test]
async fn last_event_id_twice_is_refused_empty_is_absent_and_the_long_poll_takes_it() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    t.apply(call("e2", "c1")).await;
    t.apply(call("e3", "c2")).await;
    for path in ["/v1/decisions?wait_ms=0", "/v1/decisions/stream"] {
        let r = t
            .http
            .get(t.url(path))
            .header("Last-Event-ID", "0")
            .header("Last-Event-ID", "2")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "invalid_last_event_id",
            "{path}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("more than once"),
            "{path}: {body}"
        );
    }
    let seqs = |body: &Value| -> Vec<u64> {
        body["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["seq"].as_u64().unwrap())
            .collect()
    };
    let all = {
        let (status, body) = t.get("/v1/decisions?wait_ms=0").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seqs(&body)
    };
    assert!(all.len() >= 2, "{all:?}");
    let poll = |header: &'static str| {
        t.http
            .get(t.url("/v1/decisions?wait_ms=0"))
            .header("Last-Event-ID", header)
            .send()
    };
    let r = poll("1").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(seqs(&body), all[1..], "resumed after seq 1");
    let r = poll("").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(seqs(&body), all, "an empty header is no header");
    // The stream opens on an empty header as on none.
    let r = t
        .http
        .get(t.url("/v1/decisions/stream"))
        .header("Last-Event-ID", "")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(r);
    t.stop().await;
}
