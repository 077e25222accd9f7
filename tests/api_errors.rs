//! Every error status of the event API with its `{"error":{code,message}}` body: 400 (with line
//! and column), 409, 413, 415, 422 (naming the unknown field), 503 with Retry-After, duplicates,
//! mixed batches, and unknown routes.

mod api_common;

use api_common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::daemon::DaemonOptions;

async fn raw(
    t: &TestDaemon,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = t.http.post(t.url("/v1/events")).body(body.to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "every answer is JSON"
    );
    (status, headers, r.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn malformed_json_is_a_400_with_line_and_column() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, _, body) = raw(
        &t,
        Some("application/json"),
        "{\n  \"id\": \"e1\",\n  \"type\": }",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "malformed_json");
    assert!(message(&body).contains("line 3, column 11"), "{body}");
    // Nothing but white space (or nothing at all) is called empty, not "line 2, column 0".
    for empty in ["", "\n", " \r\n\t"] {
        let (status, _, body) = raw(&t, Some("application/json"), empty).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{empty:?}");
        assert_eq!(
            message(&body),
            "malformed JSON: the body is empty (expected a JSON value)",
            "{empty:?}"
        );
    }
    t.stop().await;
}

/// A UTF-8 byte order mark before the JSON (as some Windows tools write) is skipped, as RFC 8259
/// lets a parser do: the event is applied, not refused with a bare "expected value".
#[tokio::test]
async fn a_leading_byte_order_mark_is_skipped() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, _, body) = raw(
        &t,
        Some("application/json"),
        "\u{FEFF}{\"id\":\"bom-1\",\"type\":\"agent.login\",\"agent\":\"a1\"}",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "applied", "{body}");
    let (status, agent) = t.get("/v1/agents/a1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["status"], "available", "{agent}");
    t.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_a_415() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, _, body) = raw(&t, Some("text/plain"), "{}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code(&body), "unsupported_media_type");
    assert!(message(&body).contains("`text/plain`"));
    let (status, _, _) = raw(&t, None, "{}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A charset parameter is fine.
    let (status, _, _) = raw(
        &t,
        Some("application/json; charset=utf-8"),
        r#"{"id":"e1","type":"agent.login","agent":"a1"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Written any way, UTF-8 (or US-ASCII, a subset) is fine.
    for (n, content_type) in [
        "application/json;Charset=\"UTF-8\"",
        "application/json; charset=us-ascii",
    ]
    .iter()
    .enumerate()
    {
        let (status, _, body) = raw(
            &t,
            Some(content_type),
            &format!(r#"{{"id":"cs{n}","type":"agent.login","agent":"a1"}}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{content_type}: {body}");
    }
    // Any other charset is refused, not read as UTF-8 it is not.
    let (status, _, body) = raw(
        &t,
        Some("application/json; charset=\"ISO-8859-1\""),
        r#"{"id":"e3","type":"agent.login","agent":"a3"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(code(&body), "unsupported_media_type");
    assert!(message(&body).contains("`iso-8859-1`"), "{body}");
    // An encoded body is refused, not read as garbage (or as a plain body it claims not to be).
    for encoding in ["gzip", "br"] {
        let r = t
            .http
            .post(t.url("/v1/events"))
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(r#"{"id":"e2","type":"agent.login","agent":"a2"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body), "unsupported_encoding");
        assert!(message(&body).contains(encoding), "{body}");
    }
    let (_, a2) = t.get("/v1/agents/a2").await;
    assert_eq!(a2["status"], "offline", "nothing applied: {a2}");
    t.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let mut config = loaded(routing());
    config.daemon.server.body_limit_bytes = 1024;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let big = format!(
        r#"{{"id":"e1","type":"agent.login","agent":"{}"}}"#,
        "x".repeat(2000)
    );
    let (status, _, body) = raw(&t, Some("application/json"), &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&body), "payload_too_large");
    assert!(message(&body).contains("1024 bytes"));
    t.stop().await;
}

#[tokio::test]
async fn an_unknown_field_is_a_422_that_names_it() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, body) = t
        .events(
            json!({"id": "e1", "type": "interaction.arrived", "interaction": "c1",
                       "channel": "voice", "queu": "support"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "unknown_field");
    assert!(message(&body).contains("`queu`"), "{body}");
    // Nothing was applied.
    let (status, _) = t.get("/v1/interactions/c1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test]
async fn a_bad_value_is_a_422_that_names_its_field_and_changes_nothing() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, body) = t
        .events(
            json!({"id": "e1", "type": "interaction.arrived", "interaction": "c1",
                       "channel": "fax", "queue": "support"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "invalid_field", "{body}");
    assert!(
        message(&body).starts_with("event `e1`: field `channel`: unknown value `fax`"),
        "{body}"
    );
    let (status, _) = t.get("/v1/interactions/c1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Refused, so not remembered: the corrected event under the same id is applied.
    let (status, body) = t
        .events(
            json!({"id": "e1", "type": "interaction.arrived", "interaction": "c1",
                       "channel": "voice", "queue": "support"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "applied");

    let r = t
        .http
        .put(t.url("/v1/agents/a1/state"))
        .json(&json!({"state": "asleep"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "invalid_field");
    assert!(
        message(&body).starts_with("field `state`: unknown value `asleep`"),
        "{body}"
    );
    let r = t
        .http
        .put(t.url("/v1/agents/a1/state"))
        .json(&json!(["available"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "invalid_body");
    t.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_422_and_invalid_transitions_are_409() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, body) = t
        .events(json!({"id": "e1", "type": "agent.state", "agent": "nobody", "state": "available"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "unknown_agent");
    assert_eq!(message(&body), "event `e1`: unknown agent `nobody`");

    let (status, body) = t
        .events(
            json!({"id": "e2", "type": "interaction.arrived", "interaction": "c1",
                       "channel": "voice", "queue": "nowhere"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "unknown_queue");

    t.apply(call("e3", "c1")).await;
    let (status, body) = t
        .events(json!({"id": "e4", "type": "interaction.ended", "interaction": "c1"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "invalid_transition");
    assert!(message(&body).contains("`c1`"));
    t.stop().await;
}

#[tokio::test]
async fn a_repeated_event_id_is_a_duplicate_and_not_applied_again() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    let offer = t.apply(call("e2", "c1")).await;
    let (status, body) = t.events(call("e2", "c1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"][0]["status"], "duplicate");
    // Answered with what the first delivery decided (tests/api_duplicates.rs has the rest).
    assert_eq!(body["results"][0]["decisions"], json!(offer));
    // Still exactly one decision in the feed.
    let (decisions, _) = t.poll(0, 0).await;
    assert_eq!(decisions.len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn a_batch_applies_in_order_and_reports_each_event() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, body) = t
        .events(json!([
            login("b1", "a1"),
            call("b2", "c1"),
            {"id": "b3", "type": "agent.login", "agent": "a2", "tpyo": 1},
            {"id": "b4", "type": "agent.state", "agent": "ghost", "state": "available"},
            call("b2", "c1"),
            {"type": "agent.logout", "agent": "a1"},
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "applied",
            "applied",
            "rejected",
            "rejected",
            "duplicate",
            "rejected"
        ]
    );
    assert_eq!(results[1]["decisions"][0]["type"], "offer");
    assert_eq!(results[2]["error"]["code"], "unknown_field");
    assert_eq!(results[3]["error"]["code"], "unknown_agent");
    assert_eq!(results[5]["error"]["code"], "missing_id");
    let (status, body) = t.events(json!([])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "empty_batch");
    let (status, body) = t.events(json!("agent.login")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "invalid_body");
    t.stop().await;
}

#[tokio::test]
async fn the_engine_at_its_limit_answers_503_with_retry_after() {
    let mut r = routing();
    r.limits.max_live_interactions = 1;
    let t = TestDaemon::with_routing(r).await;
    t.apply(call("e1", "c1")).await;
    let r = t
        .http
        .post(t.url("/v1/events"))
        .json(&call("e2", "c2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "at_capacity");
    t.stop().await;
}

#[tokio::test]
async fn unknown_routes_methods_and_ids_are_json_404_and_405() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, body) = t.get("/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "not_found");
    let (status, body) = t.get("/v1/queues/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "unknown_queue");
    let (status, body) = t.get("/v1/agents/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "unknown_agent");
    let r = t.http.delete(t.url("/v1/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "method_not_allowed");
    assert_eq!(
        message(&body),
        "DELETE is not allowed on /v1/events; the `Allow` header lists the methods it takes",
        "{body}"
    );
    t.stop().await;
}

#[tokio::test]
async fn health_and_readiness_answer_and_queues_list_in_config_order() {
    let t = TestDaemon::with_routing(routing()).await;
    let (status, body) = t.get("/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["queues"], 2);
    let (_, body) = t.get("/v1/queues").await;
    let ids: Vec<&str> = body["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["support", "sales"]);
    let (_, body) = t.get("/v1/agents").await;
    assert_eq!(body["agents"].as_array().unwrap().len(), 4);
    t.stop().await;
}

/// One keep-alive HTTP/1.1 GET on a raw connection; the whole answer head and body.
async fn get_on(conn: &mut tokio::net::TcpStream, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nHost: tierline\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    // /healthz answers a small body with Content-Length; read until the body is complete.
    loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the answer");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if text.contains("\r\n\r\n") && text.ends_with('}') {
            return text.into_owned();
        }
    }
}

#[tokio::test]
async fn past_max_connections_a_client_waits_until_a_connection_closes() {
    let mut config = loaded(routing());
    config.daemon.server.max_connections = 2;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let addr = t.daemon.as_ref().unwrap().addr();
    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(get_on(&mut first, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(get_on(&mut second, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    // The third connects (the kernel's backlog) but is not served while two are open.
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let waiting = tokio::spawn(async move {
        let answer = get_on(&mut third, "/healthz").await;
        (third, answer)
    });
    // A negative check needs some time to pass: a slow machine can only make it pass wrongly,
    // never fail wrongly. The accept-level unit test (`api::connections`) is the exact one.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a third connection was served");
    // The open ones are still served.
    assert!(get_on(&mut second, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    drop(first);
    let (_third, answer) = tokio::time::timeout(GIVE_UP, waiting)
        .await
        .expect("the third connection is served once one closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    t.stop().await;
}

/// A connection that sends nothing, or half a request head, is closed after `idle_timeout_ms`,
/// and its slot of `max_connections` goes to a client that waited for it. A request being
/// answered for longer than that (an SSE stream) is not cut.
#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout_and_frees_its_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = loaded(routing());
    config.daemon.server.max_connections = 2;
    config.daemon.server.idle_timeout_ms = 200;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let addr = t.daemon.as_ref().unwrap().addr();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Both slots are taken; a third client waits in the backlog until one is closed.
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let served = tokio::spawn(async move { get_on(&mut third, "/healthz").await });
    for conn in [&mut silent, &mut half] {
        let mut buf = [0u8; 512];
        // Closed by the server: end of stream (hyper may first answer 408 to the half head).
        let closed = tokio::time::timeout(GIVE_UP, async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a silent connection was left open");
    }
    let answer = tokio::time::timeout(GIVE_UP, served)
        .await
        .expect("the waiting client is served once the silent ones are closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // An SSE stream that outlives the idle timeout still delivers.
    let mut stream = t
        .http
        .get(t.url("/v1/decisions/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let (status, _) = t
        .events(json!([
            {"id": "idle-1", "type": "agent.login", "agent": "a1"},
            {"id": "idle-2", "type": "interaction.arrived", "interaction": "idle-c1",
             "channel": "voice", "queue": "support"}
        ]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let chunk = tokio::time::timeout(GIVE_UP, async {
        let mut seen = String::new();
        while let Ok(Some(bytes)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&bytes));
            if seen.contains("idle-c1") {
                break;
            }
        }
        seen
    })
    .await
    .expect("the stream still delivers");
    assert!(chunk.contains("idle-c1"), "{chunk}");
    t.stop().await;
}

/// An HTTP/2 client on a plaintext connection (prior knowledge), as a PBX integration could be.
async fn h2_connect(
    addr: std::net::SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, driver)
}

fn h2_get(path: &str) -> hyper::Request<http_body_util::Empty<bytes::Bytes>> {
    hyper::Request::get(format!("http://tierline{path}"))
        .body(http_body_util::Empty::new())
        .unwrap()
}

/// The idle timeout covers HTTP/2 as well: a connection that stalls inside the HTTP/2 preface,
/// and an h2 connection that answered a request and then carries nothing, are closed after
/// `idle_timeout_ms`; an h2 connection carrying an SSE stream is not.
#[tokio::test]
async fn a_stalled_h2_preface_and_an_idle_h2_connection_are_closed_but_an_h2_stream_is_not() {
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = loaded(routing());
    config.daemon.server.idle_timeout_ms = 200;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let addr = t.daemon.as_ref().unwrap().addr();

    // Part of the preface, then nothing: the server cannot yet tell HTTP/1.1 from h2.
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"PRI * HTTP/2").await.unwrap();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(GIVE_UP, async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a stalled preface was left open");

    // A whole h2 connection: one request answered, then idle until the server closes it.
    let (mut idle, idle_conn) = h2_connect(addr).await;
    let answer = idle.send_request(h2_get("/healthz")).await.unwrap();
    assert_eq!(answer.status(), hyper::StatusCode::OK);
    assert_eq!(answer.version(), hyper::Version::HTTP_2);
    tokio::time::timeout(GIVE_UP, idle_conn)
        .await
        .expect("an idle h2 connection was left open")
        .unwrap();

    // An SSE stream on h2 outlives the idle timeout and still delivers.
    let (mut streaming, streaming_conn) = h2_connect(addr).await;
    let answer = streaming
        .send_request(h2_get("/v1/decisions/stream"))
        .await
        .unwrap();
    assert_eq!(answer.status(), hyper::StatusCode::OK);
    let mut body = answer.into_body();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(
        !streaming_conn.is_finished(),
        "the stream's connection was closed"
    );
    let (status, _) = t
        .events(json!([
            {"id": "h2-1", "type": "agent.login", "agent": "a1"},
            {"id": "h2-2", "type": "interaction.arrived", "interaction": "h2-c1",
             "channel": "voice", "queue": "support"}
        ]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let seen = tokio::time::timeout(GIVE_UP, async {
        let mut seen = String::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen.push_str(&String::from_utf8_lossy(data));
            }
            if seen.contains("h2-c1") {
                break;
            }
        }
        seen
    })
    .await
    .expect("the h2 stream still delivers");
    assert!(seen.contains("h2-c1"), "{seen}");
    t.stop().await;
}

/// An agent's `reason` is a string the event creates (shown on `/v1/agents`, a key of
/// `not_ready_reasons_s`, journalled): like every other it has a limit, and beyond it the
/// event is refused with 422 `invalid_value` naming the field, by the event and the admin API.
#[tokio::test]
async fn an_over_long_not_ready_reason_is_refused() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    let reason = "r".repeat(100_000);
    let (status, body) = t
        .events(json!({"id": "e2", "type": "agent.state", "agent": "a1",
                       "state": "not_ready", "reason": reason}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:.200}");
    assert_eq!(code(&body), "invalid_value");
    assert!(message(&body).contains("`reason`"), "{body}");
    let r = t
        .http
        .put(t.url("/v1/agents/a1/state"))
        .json(&json!({"state": "not_ready", "reason": reason}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, agent) = t.get("/v1/agents/a1").await;
    assert_eq!(agent["status"], "available", "nothing applied");
    t.stop().await;
}

/// An over-long entry of a list or map names the entry, not the whole field: the map is not
/// 1025 bytes long, its `note` is; a key says it is a key and how it starts; a skill gives its
/// index. Each case is refused whole with 422 `invalid_value`.
#[tokio::test]
async fn an_over_long_attribute_or_skill_names_the_entry() {
    let t = TestDaemon::with_routing(routing()).await;
    let long_key = format!("k{}", "x".repeat(256));
    let cases = [
        (
            json!({"id": "e1", "type": "interaction.arrived", "interaction": "c1",
                   "channel": "voice", "queue": "support",
                   "attributes": {"lang": "en", "note": "c".repeat(1025)}}),
            "`attributes.note` is 1025 bytes long; at most 1024 are accepted (it starts `ccc",
        ),
        (
            json!({"id": "e2", "type": "interaction.arrived", "interaction": "c1",
                   "channel": "voice", "queue": "support",
                   "attributes": {"lang": "en", long_key.clone(): "v"}}),
            "a key of `attributes` is 257 bytes long; at most 256 are accepted (it starts `kxxx",
        ),
        (
            json!({"id": "e3", "type": "interaction.arrived", "interaction": "c1",
                   "channel": "voice", "queue": "support",
                   "skills": ["billing", "s".repeat(300)]}),
            "`skills[1]` is 300 bytes long; at most 256 are accepted (it starts `sss",
        ),
        (
            json!({"id": "e4", "type": "agent.login", "agent": "a1",
                   "skills": ["s".repeat(257)]}),
            "`skills[0]` is 257 bytes long; at most 256 are accepted (it starts `sss",
        ),
    ];
    for (event, expected) in cases {
        let (status, body) = t.events(event).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:.300}");
        assert_eq!(code(&body), "invalid_value", "{body:.300}");
        assert!(message(&body).contains(expected), "{body:.300}");
        assert!(message(&body).len() < 300, "{body:.300}");
    }
    let (status, _) = t.get("/v1/interactions/c1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing applied");
    let (_, agent) = t.get("/v1/agents/a1").await;
    assert_eq!(agent["status"], "offline", "nothing applied");
    t.stop().await;
}

/// An id an event creates (interaction, agent, customer, skill, attribute key), a reason or an
/// address holding a control character is refused 422 `invalid_value`, naming the field, the
/// character and where: a NUL or a newline in an id was applied and echoed to the PBX, into logs
/// and metric labels. An attribute's value may hold one (a note's line break).
#[tokio::test]
async fn an_id_or_address_with_a_control_character_is_refused() {
    let t = TestDaemon::with_routing(routing()).await;
    let arrival = |extra: Value| {
        let mut e = json!({"id": "e", "type": "interaction.arrived", "interaction": "c1",
                           "channel": "voice", "queue": "support"});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    let cases = [
        (
            arrival(json!({"interaction": "c\u{0}b"})),
            "`interaction` holds a control character (U+0000 at byte 1)",
        ),
        (
            arrival(json!({"customer": "cu\nst"})),
            "`customer` holds a control character (U+000A at byte 2)",
        ),
        (
            arrival(json!({"skills": ["en", "f\u{7f}r"]})),
            "`skills[1]` holds a control character (U+007F at byte 1)",
        ),
        (
            arrival(json!({"attributes": {"la\tng": "en"}})),
            "a key of `attributes` holds a control character (U+0009 at byte 2)",
        ),
        (
            json!({"id": "e", "type": "agent.login", "agent": "a\u{85}", "address": "sip:x@pbx"}),
            "`agent` holds a control character (U+0085 at byte 1)",
        ),
        (
            json!({"id": "e", "type": "agent.login", "agent": "a1", "address": "sip:1@pbx\r\n"}),
            "`address` holds a control character (U+000D at byte 9)",
        ),
    ];
    for (n, (mut event, expected)) in cases.into_iter().enumerate() {
        event["id"] = json!(format!("cc{n}"));
        let (status, body) = t.events(event).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(code(&body), "invalid_value", "{body}");
        assert!(message(&body).contains(expected), "{body}");
    }
    let (status, _) = t.get("/v1/interactions/c1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing applied");
    let (_, agent) = t.get("/v1/agents/a1").await;
    assert_eq!(agent["status"], "offline", "nothing applied");
    // A value may hold one.
    let (status, body) = t
        .events(arrival(json!({"attributes": {"note": "line 1\nline 2"}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, c1) = t.get("/v1/interactions/c1").await;
    assert_eq!(c1["attributes"]["note"], "line 1\nline 2", "{c1}");
    t.stop().await;
}

/// A name the daemon does not know is echoed in full only when it could be an id (256 bytes);
/// a longer one is cut to its length and start, as an over-long value is, so a 900 KB queue name
/// makes a short answer, not a 900 KB one.
#[tokio::test]
async fn an_unknown_name_is_cut_in_the_answer() {
    let t = TestDaemon::with_routing(routing()).await;
    let long = |c: &str| c.repeat(900_000);
    let cases = [
        (
            json!({"id": "lj5", "type": "interaction.arrived", "interaction": "lj5",
                   "channel": "voice", "queue": long("q")}),
            "unknown_queue",
            "unknown queue of 900000 bytes (it starts `qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq`) \
             (interaction `lj5`)",
        ),
        (
            json!({"id": "e2", "type": "agent.state", "agent": long("a"), "state": "available"}),
            "unknown_agent",
            "unknown agent of 900000 bytes (it starts `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`)",
        ),
        (
            json!({"id": "e3", "type": "agent.login", "agent": "a1",
                   "tiers": {"support": 1, long("t"): 2}}),
            "unknown_queue",
            "agent `a1` names unknown queue of 900000 bytes (it starts \
             `tttttttttttttttttttttttttttttttt`) in its tiers",
        ),
        (
            json!({"id": "e4", "type": "interaction.ended", "interaction": long("i")}),
            "unknown_interaction",
            "unknown interaction of 900000 bytes (it starts `iiii",
        ),
        // What serde quotes from the request, too.
        (
            json!({"id": "e5", "type": long("y")}),
            "unknown_type",
            "unknown value of 900000 bytes (it starts `yyyy",
        ),
        (
            json!({"id": "e6", "type": "interaction.arrived", "interaction": "c1",
                   "channel": long("v")}),
            "invalid_field",
            "field `channel`: unknown value of 900000 bytes (it starts `vvvv",
        ),
        (
            json!({"id": "e7", "type": "agent.logout", "agent": "a1", long("f"): 1}),
            "unknown_field",
            "unknown field of 900000 bytes (it starts `ffff",
        ),
    ];
    for (event, expected_code, expected) in cases {
        let (status, body) = t.events(event).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:.300}");
        assert_eq!(code(&body), expected_code, "{body:.300}");
        assert!(message(&body).contains(expected), "{body:.300}");
        assert!(body.to_string().len() < 600, "{body:.600}");
    }
    // A name that could be an id is still given whole.
    let (_, body) = t
        .events(json!({"id": "e8", "type": "agent.state", "agent": "nobody",
                       "state": "available"}))
        .await;
    assert!(message(&body).ends_with("unknown agent `nobody`"), "{body}");
    // The read API cuts an unknown id in the path the same way.
    let (status, body) = t.get(&format!("/v1/queues/{}", "q".repeat(10_000))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "unknown_queue");
    assert!(
        message(&body).contains("of 10000 bytes (it starts `qqq"),
        "{body:.300}"
    );
    assert!(body.to_string().len() < 300, "{body:.300}");
    t.stop().await;
}

/// The 408 is tierline's answer like any other: its message says what ran out and where
/// (`request_timeout_ms`), not only the reason phrase.
#[tokio::test]
async fn a_request_timeout_says_which_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = loaded(routing());
    config.daemon.server.request_timeout_ms = 500;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let mut s = tokio::net::TcpStream::connect(t.daemon().addr())
        .await
        .unwrap();
    s.write_all(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\nConnection: close\r\n\r\n{\"id\":",
    )
    .await
    .unwrap();
    let mut out = String::new();
    tokio::time::timeout(GIVE_UP, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    let body: Value = serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(code(&body), "request_timeout");
    assert!(message(&body).contains("request_timeout_ms"), "{body}");
    t.stop().await;
}

/// API.md, Errors: 400 `invalid_utf8` is the answer for a body that is not UTF-8.
#[tokio::test]
async fn an_event_body_that_is_not_utf8_is_invalid_utf8() {
    let t = TestDaemon::with_routing(routing()).await;
    let mut body = br#"{"id":"e1","type":"agent.login","agent":"a"#.to_vec();
    body.push(0xFF);
    body.extend_from_slice(br#""}"#);
    let r = t
        .http
        .post(t.url("/v1/events"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "invalid_utf8", "{body}");
    t.stop().await;
}

/// API.md, Events: an optional list or map given as `null` is empty, except `agent.login`'s
/// overrides, where `null` means not given (the roster's value stays) and `{}` means none.
#[tokio::test]
async fn a_login_override_given_as_null_is_not_given_and_empty_is_none() {
    let t = TestDaemon::with_routing(routing()).await;
    // a1, a2 and a3's roster entries: `support` tier 1 (a3 is not in the roster).
    t.apply(json!({"id": "e1", "type": "agent.login", "agent": "a1", "tiers": {}, "skills": []}))
        .await;
    t.apply(
        json!({"id": "e2", "type": "agent.login", "agent": "a2", "tiers": null, "skills": null}),
    )
    .await;
    t.apply(json!({"id": "e3", "type": "agent.login", "agent": "a3", "address": "sip:a3@pbx", "tiers": null}))
        .await;
    let (_, with_empty) = t.get("/v1/agents/a1").await;
    let (_, with_null) = t.get("/v1/agents/a2").await;
    let (_, outside) = t.get("/v1/agents/a3").await;
    assert_eq!(with_empty["tiers"], json!({}), "{with_empty}");
    assert_eq!(with_null["tiers"], json!({"support": 1}), "{with_null}");
    assert_eq!(outside["tiers"], json!({}), "{outside}");
    t.stop().await;
}

/// API.md: `/readyz` is "ready to route" and 503 `shutting_down` while stopping. A moment of
/// load that fills the command queue is not "not ready": a readiness probe that flaps to 503
/// `overloaded` takes the daemon out of its load balancer exactly when it is busiest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_does_not_flap_under_load() {
    let mut config = loaded(one_agent_desk());
    config.daemon.server.event_queue_depth = 1;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let senders = flood_calls(&t, 32, 60);
    let mut refused = Vec::new();
    for _ in 0..200 {
        let r = t.http.get(t.url("/readyz")).send().await.unwrap();
        if r.status() != StatusCode::OK {
            refused.push(r.text().await.unwrap());
        }
    }
    for s in senders {
        s.await.unwrap();
    }
    assert!(
        refused.is_empty(),
        "{} of 200 probes refused, e.g. {}",
        refused.len(),
        refused[0]
    );
    t.stop().await;
}

/// API.md, Limits: an event array holds at most `MAX_BATCH_EVENTS` events. Without a bound, a
/// 1 MiB body of 500,000 `{}` was answered with 500,000 results (≈ 60 MB, and ≈ 1 GB at the
/// largest body limit), all built in memory. One over is 413 `batch_too_large` naming the
/// count and the limit, whether the elements are events or not, and nothing of it is applied;
/// exactly at the limit the batch is applied.
#[tokio::test]
async fn an_event_array_over_the_batch_limit_is_a_413_and_applies_nothing() {
    use tierline::api::events::MAX_BATCH_EVENTS;
    let mut config = loaded(routing());
    config.daemon.server.body_limit_bytes = 16 * 1024 * 1024;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let logouts = |n: usize| {
        let events: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"id":"x{i}","type":"agent.logout","agent":"a1"}}"#))
            .collect();
        format!(
            r#"[{{"id":"first","type":"agent.login","agent":"a1"}},{}]"#,
            events.join(",")
        )
    };
    // Events the fast parse takes, and elements only the slow parse sees.
    let not_events = format!("[{}]", vec!["{}"; MAX_BATCH_EVENTS + 1].join(","));
    for body in [logouts(MAX_BATCH_EVENTS), not_events] {
        let (status, _, reply) = raw(&t, Some("application/json"), &body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", code(&reply));
        assert_eq!(code(&reply), "batch_too_large", "{}", message(&reply));
        let m = message(&reply);
        assert!(m.contains(&(MAX_BATCH_EVENTS + 1).to_string()), "{m}");
        assert!(m.contains(&MAX_BATCH_EVENTS.to_string()), "{m}");
    }
    let (_, a1) = t.get("/v1/agents/a1").await;
    assert_eq!(a1["status"], "offline", "nothing applied: {a1}");
    let (status, _, reply) =
        raw(&t, Some("application/json"), &logouts(MAX_BATCH_EVENTS - 1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["results"].as_array().unwrap().len(), MAX_BATCH_EVENTS);
    assert_eq!(reply["results"][0]["status"], "applied");
    t.stop().await;
}

/// A header repeated on several lines counts as one list (RFC 9110 §5.3): `Content-Encoding:
/// identity` followed by `Content-Encoding: gzip` says the body is gzip, and two `Content-Type`
/// lines leave its type ambiguous. Only the first line was checked, so such a body was read as
/// plain JSON and applied. Both are 415 now, and nothing is applied.
#[tokio::test]
async fn a_repeated_content_encoding_or_content_type_is_checked_whole() {
    let t = TestDaemon::with_routing(routing()).await;
    let body = r#"{"id":"e1","type":"agent.login","agent":"a1"}"#;
    let send = |headers: &'static [(&'static str, &'static str)]| {
        let mut req = t.http.post(t.url("/v1/events")).body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, reply) = send(&[
        ("content-type", "application/json"),
        ("content-encoding", "identity"),
        ("content-encoding", "gzip"),
    ])
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{reply}");
    assert_eq!(code(&reply), "unsupported_encoding");
    assert!(message(&reply).contains("gzip"), "{reply}");
    let (status, reply) = send(&[
        ("content-type", "application/json"),
        ("content-encoding", "identity, br"),
    ])
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{reply}");
    assert!(message(&reply).contains("br"), "{reply}");
    let (status, reply) = send(&[
        ("content-type", "application/json"),
        ("content-type", "text/plain"),
    ])
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{reply}");
    assert_eq!(code(&reply), "unsupported_media_type");
    assert!(message(&reply).contains("once"), "{reply}");
    let (_, a1) = t.get("/v1/agents/a1").await;
    assert_eq!(a1["status"], "offline", "nothing applied: {a1}");
    // `identity` on several lines is still no encoding.
    let (status, reply) = send(&[
        ("content-type", "application/json"),
        ("content-encoding", "identity"),
        ("content-encoding", "identity"),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    t.stop().await;
}

/// Every `code` the API answers with (the handlers', the engine's, the KPI reports' and the
/// Kamailio adapter's) is documented: in API.md's Errors table, or for the adapter's own ones
/// in integrations.md, which API.md points to. 500 `internal` (the engine answered a command
/// with no outcome) was answered but documented nowhere.
#[test]
fn every_error_code_answered_is_documented() {
    let read = |path: &str| {
        std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let api = read("docs/API.md");
    let errors = &api[api.find("\n## Errors").expect("an Errors section")..];
    let integrations = read("docs/integrations.md");
    let documented = |text: &str, code: &str| text.contains(&format!("`{code}`"));
    let api_codes = [
        // src/api (handlers, auth, edge fallbacks for 400/401/403/404/405/408/413/415)
        "malformed_json",
        "too_deeply_nested",
        "too_many_readers",
        "invalid_body",
        "invalid_query",
        "invalid_last_event_id",
        "invalid_utf8",
        "unreadable_body",
        "bad_request",
        "signature_missing",
        "signature_malformed",
        "signature_stale",
        "signature_mismatch",
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "request_timeout",
        "tls_required",
        "payload_too_large",
        "batch_too_large",
        "unsupported_media_type",
        "unsupported_encoding",
        "unknown_field",
        "unknown_type",
        "missing_field",
        "invalid_field",
        "duplicate_field",
        "missing_id",
        "invalid_id",
        "invalid_event",
        "empty_batch",
        "invalid_config",
        "empty_config",
        "secret_unavailable",
        "decisions_ahead",
        "decisions_gone",
        "overloaded",
        "shutting_down",
        "journal_unavailable",
        "internal",
        // EngineError::code
        "unknown_agent",
        "unknown_interaction",
        "unknown_queue",
        "duplicate_interaction",
        "channel_not_served",
        "no_such_offer",
        "agent_busy",
        "invalid_transition",
        "agent_needs_address",
        "invalid_value",
        "queue_full",
        "queue_closed",
        "queue_removed",
        "at_capacity",
        "too_many_agents",
        "timers_pending",
        "already_rated",
        // StatsError::code
        "invalid_window",
        "invalid_since",
    ];
    let missing: Vec<&str> = api_codes
        .into_iter()
        .filter(|c| !documented(errors, c))
        .collect();
    assert!(
        missing.is_empty(),
        "not in API.md's Errors table: {missing:?}"
    );
    let adapter_codes = [
        "call_gone",
        "already_connected",
        "call_id_in_use",
        "no_route",
        "closed",
        "field_too_long",
        "missing_agent",
        "missing_offer",
    ];
    let missing: Vec<&str> = adapter_codes
        .into_iter()
        .filter(|c| !documented(&integrations, c))
        .collect();
    assert!(missing.is_empty(), "not in integrations.md: {missing:?}");
    assert!(
        errors.contains("integrations.md"),
        "API.md's Errors table points to the adapter's own codes"
    );
}

/// The read endpoints that take no query parameters refuse one (a typo, or another endpoint's
/// `?window=`), as those that take some refuse an unknown one: never silently ignored.
#[tokio::test]
async fn a_query_on_a_read_endpoint_that_takes_none_is_a_400() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    t.apply(call("e2", "c1")).await;
    for path in [
        "/v1/queues",
        "/v1/queues/support",
        "/v1/agents",
        "/v1/agents/a1",
        "/v1/interactions/c1",
        "/v1/config",
    ] {
        let (status, body) = t.get(&format!("{path}?limit=5")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(code(&body), "invalid_query", "{path}: {body}");
        assert!(
            message(&body).contains(&format!(
                "{path} takes no query parameters (the query `limit=5`)"
            )),
            "{path}: {body}"
        );
        let r = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} without a query");
    }
    t.stop().await;
}

/// A `min_tier` outside 1–255 is one kind of mistake with one code, whichever end it is off:
/// `invalid_field` naming the field, in a single event and in a batch.
#[tokio::test]
async fn a_min_tier_out_of_range_is_invalid_field_at_both_ends() {
    let t = TestDaemon::with_routing(routing()).await;
    for tier in ["0", "256", "1.5"] {
        let event = format!(
            r#"{{"id":"x{tier}","type":"interaction.escalated","interaction":"c1","min_tier":{tier}}}"#
        );
        let (status, _, body) = raw(&t, Some("application/json"), &event).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{tier}: {body}");
        assert_eq!(code(&body), "invalid_field", "{tier}: {body}");
        // The same range at both ends, in the API's words (not Rust's `expected u8`).
        assert!(
            message(&body).contains("field `min_tier`")
                && message(&body).ends_with("expected a tier from 1 to 255"),
            "{tier}: {body}"
        );
        let (status, _, body) = raw(&t, Some("application/json"), &format!("[{event}]")).await;
        assert_eq!(status, StatusCode::OK, "{tier}: {body}");
        let result = &body["results"][0];
        assert_eq!(result["status"], "rejected", "{tier}: {body}");
        assert_eq!(result["error"]["code"], "invalid_field", "{tier}: {body}");
    }
    t.stop().await;
}

/// A `score` outside 1–5 is `invalid_field` at both ends too (0 and 6 fit its type, 256 not).
#[tokio::test]
async fn a_score_out_of_range_is_invalid_field_at_both_ends() {
    let t = TestDaemon::with_routing(routing()).await;
    for score in [0, 6, 256] {
        let event = format!(
            r#"{{"id":"r{score}","type":"interaction.rated","interaction":"c1","score":{score}}}"#
        );
        let (status, _, body) = raw(&t, Some("application/json"), &event).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{score}: {body}");
        assert_eq!(code(&body), "invalid_field", "{score}: {body}");
        assert!(
            message(&body).contains("field `score`")
                && message(&body).ends_with("expected a score from 1 to 5"),
            "{score}: {body}"
        );
    }
    t.stop().await;
}

/// Whatever a request carries where an error message quotes it (a query parameter's name, the
/// path, `since`, an `If-Match` tag, a `Content-Type`, its charset or encoding, the method), the
/// error body stays small: the echo is cut to its length and start. Each of these answered
/// with the whole input (40–100 KB) before.
#[tokio::test]
async fn an_error_quoting_a_huge_input_stays_small() {
    let t = TestDaemon::with_routing(routing()).await;
    let big = "z".repeat(60_000);
    let check = |what: &str, r: reqwest::Response, code: &'static str| {
        let what = what.to_string();
        async move {
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(text.len() < 1_024, "{what}: {status}, {} bytes", text.len());
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["error"]["code"], code, "{what}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(" bytes"),
                "{what}: the length is said: {body}"
            );
        }
    };
    let get = |path: String| t.http.get(t.url(&path)).send();
    check(
        "query name",
        get(format!("/v1/decisions?{big}=1")).await.unwrap(),
        "invalid_query",
    )
    .await;
    check(
        "query of a read without parameters",
        get(format!("/v1/queues?{big}=1")).await.unwrap(),
        "invalid_query",
    )
    .await;
    check(
        "path",
        get(format!("/v1/{big}")).await.unwrap(),
        "not_found",
    )
    .await;
    check(
        "path of a read without parameters",
        get(format!("/v1/queues/{big}?x=1")).await.unwrap(),
        "invalid_query",
    )
    .await;
    check(
        "since",
        get(format!("/v1/agents/a1/stats?since={big}"))
            .await
            .unwrap(),
        "invalid_since",
    )
    .await;
    let toml = "[[queue]]\nid = \"support\"\n";
    let put = || {
        t.http
            .put(t.url("/v1/config"))
            .header("content-type", "application/toml")
            .body(toml)
    };
    check(
        "If-Match",
        put()
            .header("if-match", format!("\"{big}\""))
            .send()
            .await
            .unwrap(),
        "precondition_failed",
    )
    .await;
    let post = || t.http.post(t.url("/v1/events")).body("{}");
    check(
        "Content-Type",
        post().header("content-type", &big).send().await.unwrap(),
        "unsupported_media_type",
    )
    .await;
    check(
        "charset",
        post()
            .header("content-type", format!("application/json; charset={big}"))
            .send()
            .await
            .unwrap(),
        "unsupported_media_type",
    )
    .await;
    check(
        "Content-Encoding",
        post()
            .header("content-type", "application/json")
            .header("content-encoding", &big)
            .send()
            .await
            .unwrap(),
        "unsupported_encoding",
    )
    .await;
    let method = reqwest::Method::from_bytes(&big.as_bytes()[..5_000]).unwrap();
    let r = t
        .http
        .request(method, t.url("/v1/events"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(text.len() < 1_024, "method: {status}, {} bytes", text.len());
    assert!(text.contains("5000 bytes"), "method: {text}");
    t.stop().await;
}

/// `invalid_id` says what the id was instead: a number (quote it), an empty string, one too
/// long (its length and start), so the sender sees which of its mistakes it made.
#[tokio::test]
async fn an_invalid_event_id_says_what_it_was() {
    let t = TestDaemon::with_routing(routing()).await;
    let long = format!("\"{}\"", "i".repeat(300));
    for (id, got) in [
        ("5", "got a number (quote it: ids are strings)"),
        ("\"\"", "got an empty string"),
        (long.as_str(), "got an id of 300 bytes (it starts `iiii"),
        ("null", "got null"),
    ] {
        let event = format!(r#"{{"id":{id},"type":"agent.logout","agent":"a1"}}"#);
        let (status, _, body) = raw(&t, Some("application/json"), &event).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id}: {body}");
        assert_eq!(code(&body), "invalid_id", "{id}: {body}");
        assert!(message(&body).contains(got), "{id}: {body}");
    }
    t.stop().await;
}

/// A body cut short (the connection closed before `Content-Length` bytes came) or sent with
/// broken chunked encoding: 400 `unreadable_body` saying which, not only "error reading a body".
#[tokio::test]
async fn an_unreadable_body_says_why() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestDaemon::with_routing(routing()).await;
    let addr = t.daemon.as_ref().unwrap().addr();
    for (request, why) in [
        (
            "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{\"id\":",
            "end of file before message length reached (Content-Length said 100 bytes",
        ),
        (
            "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            "chunk size",
        ),
    ] {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        conn.shutdown().await.unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("\"code\":\"unreadable_body\""), "{answer}");
        assert!(answer.contains(why), "{answer}");
    }
    t.stop().await;
}

/// A login's capacity and tiers say their range whichever end is off: -1 said "expected an
/// integer from 0 to 4294967295" where 0 is refused too; an unknown channel keeps its own list.
#[tokio::test]
async fn a_login_capacity_or_tier_out_of_range_says_its_range() {
    let t = TestDaemon::with_routing(routing()).await;
    for (n, (field, expected)) in [
        (
            r#""capacity":{"chat":-1}"#,
            "expected a capacity from 1 to 4294967295",
        ),
        (
            r#""tiers":{"support":300}"#,
            "expected a tier from 1 to 255",
        ),
        (r#""capacity":{"fax":1}"#, "expected one of"),
        // Zero is the same mistake as -1, with the same code and words.
        (
            r#""capacity":{"chat":0}"#,
            "expected a capacity from 1 to 4294967295",
        ),
        (r#""tiers":{"support":0}"#, "expected a tier from 1 to 255"),
    ]
    .into_iter()
    .enumerate()
    {
        let event = format!(r#"{{"id":"l{n}","type":"agent.login","agent":"a1",{field}}}"#);
        let (status, _, body) = raw(&t, Some("application/json"), &event).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {body}");
        assert_eq!(code(&body), "invalid_field", "{field}: {body}");
        assert!(message(&body).contains(expected), "{field}: {body}");
    }
    t.stop().await;
}
