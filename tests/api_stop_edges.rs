//! How the daemon's connections and its own stop behave at the edges: a TLS client that sends
//! nothing is closed after `idle_timeout_ms`, silent TLS clients cannot lock out real ones below
//! `max_connections`, connections left at the end of the grace period are closed, and a panic of
//! the engine thread is an error (exit 1), not a clean stop.

mod api_common;

use std::time::{Duration, Instant};

use api_common::*;
use tierline::daemon::DaemonOptions;

/// A TLS daemon with `idle_timeout_ms = 200` and a generated certificate for `localhost`.
async fn tls_daemon(dir: &std::path::Path) -> (TestDaemon, reqwest::Client) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let mut config = loaded(routing());
    config.daemon.server.tls_cert = Some(dir.join("cert.pem"));
    config.daemon.server.tls_key = Some(dir.join("key.pem"));
    config.daemon.server.idle_timeout_ms = 200;
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    (t, client)
}

#[tokio::test]
async fn a_silent_tls_client_is_closed_after_the_idle_timeout() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let (t, _) = tls_daemon(dir.path()).await;
    let mut silent = tokio::net::TcpStream::connect(t.daemon().addr())
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a TLS client that sent nothing is still open {:?} after idle_timeout_ms = 200",
        started.elapsed()
    );
    t.stop().await;
}

/// 256 clients that connect and say nothing (once the fixed handshake bound) do not keep a real
/// HTTPS client out: handshakes are bounded by `max_connections`, and each by the idle timeout.
#[tokio::test]
async fn silent_tls_clients_do_not_lock_out_a_real_client() {
    let dir = tempfile::tempdir().unwrap();
    let (t, client) = tls_daemon(dir.path()).await;
    let port = t.daemon().addr().port();
    let mut silent = Vec::new();
    for _ in 0..256 {
        silent.push(
            tokio::net::TcpStream::connect(t.daemon().addr())
                .await
                .unwrap(),
        );
    }
    let answer = client
        .get(format!("https://localhost:{port}/healthz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    assert!(
        answer.as_ref().is_ok_and(|r| r.status().is_success()),
        "a real HTTPS client was not served: {answer:?}"
    );
    drop(silent);
    t.stop().await;
}

/// `drain`: in-flight requests get the grace period, then what is left is closed, so no
/// connection outlives `Daemon::stop`.
#[tokio::test]
async fn connections_left_at_the_end_of_the_grace_period_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = loaded(routing());
    config.daemon.server.shutdown_grace_ms = 300;
    let mut t = TestDaemon::start(DaemonOptions::new(config)).await;
    let mut slow = tokio::net::TcpStream::connect(t.daemon().addr())
        .await
        .unwrap();
    // A request whose body is still coming when the stop begins.
    slow.write_all(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 60\r\n\r\n{\"id\":\"e1\",",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.daemon.take().unwrap().stop().await.expect("clean stop");
    let mut buf = Vec::new();
    let _ = slow
        .write_all(b"\"type\":\"agent.login\",\"agent\":\"a1\"}               ")
        .await;
    let read = tokio::time::timeout(Duration::from_secs(2), slow.read_to_end(&mut buf)).await;
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        read.is_ok() && !answer.starts_with("HTTP/1.1"),
        "the connection outlived the daemon's stop (still open: {}) and was answered: {answer:?}",
        read.is_err()
    );
}

/// The engine thread died (a panic injected through the public `FactObserver` hook): requests
/// get 503, and the daemon's stop is an error (exit 1), so a supervisor restarts it.
#[tokio::test]
async fn a_daemon_whose_engine_thread_panicked_stops_with_an_error() {
    struct PanicOnFirstFact;
    impl tierline::daemon::task::FactObserver for PanicOnFirstFact {
        fn on_batch(
            &mut self,
            facts: &[tierline::engine::Fact],
            _: &tierline::engine::Engine,
            _: tierline::config::Millis,
        ) {
            assert!(facts.is_empty(), "injected engine panic");
        }
    }
    let mut options = DaemonOptions::new(loaded(routing()));
    options.observer = Some(Box::new(PanicOnFirstFact));
    let mut t = TestDaemon::start(options).await;
    let (status, body) = t.events(login("e1", "a1")).await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let daemon = t.daemon.take().unwrap();
    let ended = tokio::time::timeout(GIVE_UP, daemon.wait())
        .await
        .expect("the daemon stops once its engine is gone");
    match ended {
        Err(e) => assert!(e.to_string().contains("engine thread panicked"), "{e}"),
        Ok(()) => panic!("the engine thread panicked, yet the daemon reports a clean stop"),
    }
}
