//! The daemon's limits at their boundaries (API.md, "Limits and shutdown"): the body limit at
//! exactly its size and one byte past it, with and without `Content-Length`; a full command
//! queue; a request that times out while the engine holds it; a stop with a request in flight;
//! TLS start-up errors. After each refusal the state is intact and a retry under the same event
//! id works (a refused request never takes its id).
//!
//! No timing assertion: the journal's sync is stalled through `DaemonOptions::journal_sync`
//! (`Gate`) to hold a request in the engine, and every wait is on an answer.

mod api_common;

use api_common::*;
use reqwest::StatusCode;
use serde_json::Value;
use tierline::daemon::{Daemon, DaemonOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); the status and the parsed
/// body of the answer.
async fn raw_http(t: &TestDaemon, head: &str, body: &[u8]) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(t.daemon().addr())
        .await
        .unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before the whole body is sent.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    tokio::time::timeout(GIVE_UP, s.read_to_end(&mut out))
        .await
        .expect("answered")
        .expect("read");
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {out:?}"));
    let (head, rest) = out.split_once("\r\n\r\n").expect("a head and a body");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // One chunk is all tierline writes for a JSON answer.
        let (_, chunk) = rest.split_once("\r\n").unwrap_or(("", rest));
        chunk.split("\r\n").next().unwrap_or("").to_string()
    } else {
        rest.to_string()
    };
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {out:?}")),
    )
}

/// A login event padded with spaces to exactly `len` bytes.
fn login_of_len(id: &str, len: usize) -> Vec<u8> {
    let mut body = format!(r#"{{"id":"{id}","type":"agent.login","agent":"a1"}}"#).into_bytes();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

/// `body_limit_bytes` is the largest body read: exactly that many bytes are applied, one more is
/// 413 `payload_too_large`, whether the size is declared (`Content-Length`) or only found while
/// reading (chunked). The refused body takes nothing, not even its event id.
#[tokio::test]
async fn a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413_declared_or_not() {
    const LIMIT: usize = 512;
    let mut config = loaded(routing());
    config.daemon.server.body_limit_bytes = LIMIT;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let declared = |len: usize| {
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    let chunked = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                   Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let as_chunks = |body: &[u8]| {
        // Two chunks, so the size is only known once the second one is read.
        let (a, b) = body.split_at(body.len() / 2);
        let mut out = Vec::new();
        for part in [a, b] {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    };

    for (head, body) in [
        (declared(LIMIT + 1), login_of_len("big-1", LIMIT + 1)),
        (
            chunked.to_string(),
            as_chunks(&login_of_len("big-2", LIMIT + 1)),
        ),
    ] {
        let (status, reply) = raw_http(&t, &head, &body).await;
        assert_eq!(status, 413, "{reply}");
        assert_eq!(code(&reply), "payload_too_large", "{reply}");
        assert!(
            message(&reply).contains(&format!("{LIMIT} bytes")),
            "{reply}"
        );
    }
    let (_, a1) = t.get("/v1/agents/a1").await;
    assert_eq!(a1["status"], "offline", "nothing applied: {a1}");

    // The same ids, exactly at the limit: applied (the refusals did not take them).
    let (status, reply) = raw_http(&t, &declared(LIMIT), &login_of_len("big-1", LIMIT)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][0]["status"], "applied", "{reply}");
    let (status, reply) = raw_http(&t, chunked, &as_chunks(&login_of_len("big-2", LIMIT))).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][0]["status"], "applied", "{reply}");
    t.stop().await;
}

/// A daemon whose journal sync can be stalled, with a one-deep command queue.
async fn stallable(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut tierline::config::LoadedConfig),
) -> (TestDaemon, Gate) {
    let gate = Gate::default();
    let mut config = loaded(one_agent_desk());
    config.daemon.server.event_queue_depth = 1;
    edit(&mut config);
    let mut options = DaemonOptions::new(config);
    options.journal_dir = Some(dir.to_path_buf());
    options.journal_sync = Some(gate.sync());
    (TestDaemon::start(options).await, gate)
}

/// POST `event` on its own task; the answer's status, `Retry-After` and body come on `done`.
fn post_later(
    t: &TestDaemon,
    event: Value,
    done: &tokio::sync::mpsc::UnboundedSender<(String, StatusCode, Option<String>, Value)>,
) {
    let (http, url, done) = (t.http.clone(), t.url("/v1/events"), done.clone());
    tokio::spawn(async move {
        let id = event["id"].as_str().unwrap().to_string();
        let r = http.post(url).json(&event).send().await.expect("answered");
        let status = r.status();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = r.json().await.expect("a JSON body");
        let _ = done.send((id, status, retry, body));
    });
}

/// API.md, Limits: a full command queue (`event_queue_depth`) is 503 `overloaded` with
/// `Retry-After: 1` and a JSON error naming the limit. The refused event is not applied and its id
/// is not taken: once the queue drains, the same request is applied (not a `duplicate`), and the
/// events that were queued are each applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_command_queue_is_503_overloaded_and_the_refused_event_applies_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (t, gate) = stallable(dir.path(), |_| {}).await;
    t.apply(login("login", "a1")).await;

    // The disk stalls: the first call waits for its sync (the engine takes no command
    // meanwhile), the next fills the one-deep queue and the last two are refused.
    gate.set(true);
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    const CALLS: usize = 4;
    post_later(&t, call("e0", "c0"), &done);
    gate.stalled().await;
    for i in 1..CALLS {
        post_later(&t, call(&format!("e{i}"), &format!("c{i}")), &done);
    }
    let mut answered = Vec::new();
    for _ in 0..2 {
        let (id, status, retry, body) = tokio::time::timeout(GIVE_UP, answers.recv())
            .await
            .expect("an answer while the disk stalls")
            .unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{id}: {body}");
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(code(&body), "overloaded", "{body}");
        assert!(
            message(&body).contains("event_queue_depth = 1")
                && message(&body).contains("nothing of it was applied"),
            "{body}"
        );
        answered.push((id, status));
    }

    gate.set(false);
    while answered.len() < CALLS {
        let (id, status, _, body) = tokio::time::timeout(GIVE_UP, answers.recv())
            .await
            .expect("every request answered")
            .unwrap();
        if status == StatusCode::OK {
            assert_eq!(body["results"][0]["status"], "applied", "{body}");
        }
        answered.push((id, status));
    }
    for (id, status) in &answered {
        let interaction = format!("c{}", &id[1..]);
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            let (s, _) = t.get(&format!("/v1/interactions/{interaction}")).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{id} was refused, yet applied");
            let (status, body) = t.events(call(id, &interaction)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                body["results"][0]["status"], "applied",
                "retry of {id}: {body}"
            );
        } else {
            assert_eq!(*status, StatusCode::OK, "{id}");
        }
        let (s, _) = t.get(&format!("/v1/interactions/{interaction}")).await;
        assert_eq!(s, StatusCode::OK, "{interaction}");
    }
    let (_, queue) = t.get("/v1/queues/support").await;
    // c0…c3 each arrived once: one is offered to a1, the rest wait.
    assert_eq!(queue["sla"]["arrived"], CALLS, "{queue}");
    assert_eq!(queue["waiting"], CALLS - 1, "{queue}");
    t.stop().await;
}

/// A request that times out (`request_timeout_ms`) while the engine holds it (here: its journal
/// sync stalls) may still be applied: the 408 says so and says how to find out, and a retry
/// under the same event id is answered `duplicate` with the decisions of the first delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_event_may_be_applied_and_its_retry_says_what_it_decided() {
    let dir = tempfile::tempdir().unwrap();
    let (t, gate) = stallable(dir.path(), |c| c.daemon.server.request_timeout_ms = 1_000).await;
    t.apply(login("login", "a1")).await;

    gate.set(true);
    let (status, body) = tokio::time::timeout(GIVE_UP, t.events(call("e1", "c1")))
        .await
        .expect("the request timeout answers");
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(code(&body), "request_timeout", "{body}");
    let m = message(&body);
    assert!(m.contains("request_timeout_ms = 1000 ms"), "{m}");
    assert!(
        m.contains("may have been applied") && m.contains("same event id"),
        "a 408 must not read as 'nothing happened': {m}"
    );

    gate.set(false);
    let (status, body) = t.events(call("e1", "c1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["results"][0];
    assert_eq!(result["status"], "duplicate", "it was applied: {body}");
    let decisions = result["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{body}");
    assert_eq!(decisions[0]["type"], "offer");
    assert_eq!(decisions[0]["agent"], "a1");
    t.stop().await;
}

/// API.md, "Limits and shutdown": a stop lets a request in flight finish within the grace period
/// (here it waits for its journal sync), answers it, and only then stops the engine; what was
/// acknowledged is durable: a restart on the same journal has it, and its retry is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_answers_the_request_in_flight_and_what_it_acknowledged_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, gate) = stallable(dir.path(), |c| c.daemon.server.shutdown_grace_ms = 60_000).await;
    t.apply(login("login", "a1")).await;

    gate.set(true);
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    post_later(&t, call("e1", "c1"), &done);
    // The request is in flight once its batch is written and waits for the stalled sync.
    gate.stalled().await;
    let daemon = t.daemon.take().unwrap();
    daemon.shutdown_signal().trigger();
    let stopping = tokio::spawn(daemon.wait());
    gate.set(false);
    let (_, status, _, body) = tokio::time::timeout(GIVE_UP, answers.recv())
        .await
        .expect("the request in flight is answered")
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "applied", "{body}");
    let offer = body["results"][0]["decisions"][0].clone();
    tokio::time::timeout(GIVE_UP, stopping)
        .await
        .expect("the daemon stops")
        .unwrap()
        .expect("a clean stop");

    let mut options = DaemonOptions::new(loaded(one_agent_desk()));
    options.journal_dir = Some(dir.path().to_path_buf());
    let t = TestDaemon::start(options).await;
    let (status, c1) = t.get("/v1/interactions/c1").await;
    assert_eq!(status, StatusCode::OK, "{c1}");
    assert_eq!(c1["state"], "offered", "{c1}");
    let (_, body) = t.events(call("e1", "c1")).await;
    assert_eq!(body["results"][0]["status"], "duplicate", "{body}");
    assert_eq!(body["results"][0]["decisions"][0], offer, "{body}");
    t.stop().await;
}

/// A TLS certificate or key that cannot be read stops the start with an error naming the field's
/// file and why, before anything listens: a key file with no key says what it looked for, and an
/// encrypted key or the certificate given as the key are named as such.
#[tokio::test]
async fn a_missing_tls_certificate_or_key_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let missing = dir.path().join("nowhere.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    // Made with `openssl pkcs8 -topk8 -v2 aes-128-cbc` and `openssl ec -aes128` (passphrase
    // `test`; the key is of no use to anyone).
    let pkcs8_encrypted = dir.path().join("pkcs8-encrypted.pem");
    std::fs::write(&pkcs8_encrypted, PKCS8_ENCRYPTED).unwrap();
    let sec1_encrypted = dir.path().join("sec1-encrypted.pem");
    std::fs::write(&sec1_encrypted, SEC1_ENCRYPTED).unwrap();
    let no_key = "cannot read TLS key";
    let no_block = "no PRIVATE KEY block found (PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted; \
                    encrypted keys are not supported)";
    let encrypted = "the private key is encrypted (passphrase-protected)";
    for (c, k, expected) in [
        (&missing, &key_path, vec!["cannot read TLS certificate"]),
        (&cert_path, &missing, vec![no_key]),
        (&garbage, &key_path, vec!["cannot read TLS certificate"]),
        (&cert_path, &garbage, vec![no_key, no_block]),
        (
            &cert_path,
            &cert_path,
            vec![no_key, no_block, "the file holds a CERTIFICATE block"],
        ),
        (&cert_path, &pkcs8_encrypted, vec![no_key, encrypted]),
        (&cert_path, &sec1_encrypted, vec![no_key, encrypted]),
    ] {
        let mut config = loaded(routing());
        config.daemon.server.tls_cert = Some(c.clone());
        config.daemon.server.tls_key = Some(k.clone());
        let err = match Daemon::start(DaemonOptions::new(config)).await {
            Ok(_) => panic!("started with cert {c:?} and key {k:?}"),
            Err(e) => e.to_string(),
        };
        let named = if expected[0].contains("key") { k } else { c };
        for part in expected {
            assert!(err.contains(part), "{err}");
        }
        assert!(!err.contains("no items found"), "{err}");
        assert!(err.contains(&named.display().to_string()), "{err}");
    }
}

const PKCS8_ENCRYPTED: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgaQfaaL6X44wICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEEOeXNhbGy7+UGZ4RiDrTBzgEgZA8
vDtv2R5NVsWW/ffO3/R0Pvf24zF4ERcujDeab/TpRQ5HiHYiLrcVKpZqCBbc4NII
2EtKbPShl/XaJDGNE+ht/WjsrXbf8s1+ufws+ZmEtxNFzRWWveF9hjl30u5kZ+Hr
CvlVwLNc8npq3I+Oqy145wQC1zh0tVTeJCw1lSGHtfTg5QKi3AdN4YCrR2akLRA=
-----END ENCRYPTED PRIVATE KEY-----
";

const SEC1_ENCRYPTED: &str = "-----BEGIN EC PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-128-CBC,E7A6496613D92B73EF1CAE40CE3713CD

zTzMbgRaUBHNw8rvn3SsEEMKFn9J6dIt1lHGBmfBFdgmaj29lkayqCw3Coz28wnJ
fsaIdggzSwki11g214QQ11oLE8oos8KR8lm5F6/FgiigrayIKAnYA5UQ6Y+FpLpc
KtgjTvqgqr0tS8vMYcnzKHNPKs/Lm1mDGR3W/NIRqxs=
-----END EC PRIVATE KEY-----
";

/// The TLS port spoken to in plain HTTP: the client gets an HTTP answer it can read, 400 with
/// the API's JSON error `tls_required` saying to use https (not a TLS alert, which HTTP clients
/// report as a garbled answer), and the daemon keeps serving HTTPS.
#[tokio::test]
async fn plain_http_on_the_tls_port_is_a_400_tls_required_and_https_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let mut config = loaded(routing());
    config.daemon.server.tls_cert = Some(dir.path().join("cert.pem"));
    config.daemon.server.tls_key = Some(dir.path().join("key.pem"));
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let port = t.daemon().addr().port();

    let (status, body) = raw_http(
        &t,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "tls_required", "{body}");
    assert!(message(&body).contains("https://"), "{body}");
    // An ordinary client sees the same answer.
    let r = reqwest::get(format!("http://127.0.0.1:{port}/v1/queues"))
        .await
        .expect("an HTTP answer");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "tls_required", "{body}");

    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let r = https
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    t.stop().await;
}

/// An administrator's command is not refused by the event flood it may be meant to relieve:
/// with the command queue full, events get 503 `overloaded` at once, while a forced agent state
/// (like a config change) waits for room and is applied as soon as the engine takes commands
/// again, ahead of the events that retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_command_waits_for_room_in_a_full_queue_instead_of_503() {
    let dir = tempfile::tempdir().unwrap();
    let (t, gate) = stallable(dir.path(), |_| {}).await;
    t.apply(login("login", "a1")).await;
    gate.set(true);
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    post_later(&t, call("e0", "c0"), &done);
    gate.stalled().await;
    post_later(&t, call("e1", "c1"), &done);
    // e1 fills the one-deep queue.
    tokio::time::timeout(GIVE_UP, async {
        while t.daemon().engine().queued() < 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("e1 queued");
    let (status, body) = t.events(call("e2", "c2")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(code(&body), "overloaded", "{body}");
    let (http, url) = (t.http.clone(), t.url("/v1/agents/a1/state"));
    let forced = tokio::spawn(async move {
        let r = http
            .put(url)
            .json(&serde_json::json!({"state": "not_ready", "reason": "supervisor"}))
            .send()
            .await
            .expect("answered");
        (r.status(), r.json::<Value>().await.expect("JSON"))
    });
    // Give the admin request time to reach the full queue (an ordering aid, not a timing
    // assertion: the answer is checked, not when it came).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !forced.is_finished(),
        "the admin command was answered while the queue was full"
    );
    gate.set(false);
    let (status, body) = tokio::time::timeout(GIVE_UP, forced)
        .await
        .expect("the admin command is answered once the engine takes commands")
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["agent"]["status"], "not_ready", "{body}");
    for _ in 0..2 {
        let (_, status, _, body) = tokio::time::timeout(GIVE_UP, answers.recv())
            .await
            .expect("the queued events are answered")
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    t.stop().await;
}

/// Decision feed readers hold their connections: past `max_feed_readers` a reader is refused
/// `too_many_readers` at once (a long-poll 503, a stream one error event), so events, plain reads and the probes still get connections;
/// a place given back (a stream closed) is taken again.
#[tokio::test]
async fn feed_readers_past_their_limit_get_503_and_leave_the_connections_to_events() {
    let mut options = DaemonOptions::new(loaded(routing()));
    options.config.daemon.server.max_connections = 6;
    options.config.daemon.server.max_feed_readers = 2;
    let t = TestDaemon::start(options).await;
    t.apply(login("e1", "a1")).await;
    let open_stream = || async {
        // A client of its own per stream: each holds a connection.
        reqwest::Client::new()
            .get(t.url("/v1/decisions/stream?after=0"))
            .send()
            .await
            .unwrap()
    };
    let first = open_stream().await;
    let second = open_stream().await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    // A third stream is a stream of one error event asking to reconnect in 5 s, then its end:
    // a browser `EventSource` takes anything but a 200 stream at connect as fatal.
    let third = open_stream().await;
    assert_eq!(third.status(), StatusCode::OK);
    let text = third.text().await.unwrap();
    assert!(text.contains("event: error\n"), "{text}");
    assert!(text.contains("retry: 5000\n"), "{text}");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data line in {text}"));
    let body: Value = serde_json::from_str(data).unwrap();
    assert_eq!(code(&body), "too_many_readers", "{body}");
    assert!(message(&body).contains("max_feed_readers"), "{body}");
    // A bad cursor is still told as such at the limit (not hidden behind the limit's retry).
    let bad = reqwest::Client::new()
        .get(t.url("/v1/decisions/stream"))
        .header("Last-Event-ID", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(code(&body), "invalid_last_event_id", "{body}");
    // A long-poll that has to wait is a reader too; one that does not wait is a plain read.
    let (status, body) = t.get("/v1/decisions?after=0&wait_ms=5000").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(code(&body), "too_many_readers", "{body}");
    let (status, body) = t.get("/v1/decisions?after=0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Events and the probes still get through.
    let offer = t.apply(call("e2", "c1")).await;
    assert_eq!(offer[0]["type"], "offer", "{offer:?}");
    // A long-poll with decisions to return at once does not wait, so takes no place.
    let (status, body) = t.get("/v1/decisions?after=0&wait_ms=5000").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decisions"][0]["type"], "offer", "{body}");
    let r = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A stream closed gives its place back.
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        let mut r = open_stream().await;
        assert_eq!(r.status(), StatusCode::OK);
        // A stream with a place starts with the decisions held (the offer); a refused one with
        // its error.
        let first_chunk = r.chunk().await.unwrap().unwrap_or_default();
        if !String::from_utf8_lossy(&first_chunk).contains("too_many_readers") {
            again = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        again.is_some(),
        "the closed stream's place was never given back"
    );
    drop(second);
    t.stop().await;
}
