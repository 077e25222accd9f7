//! The load generator against the bare-hyper baseline, in process on an ephemeral port: every
//! scheduled event is sent and answered, the counts add up, and the JSON report is well-formed.
//! And against a server that stops answering: the unanswered slots are in the latency figures.
//! No timing assertions on the code under test: only counts, arithmetic and lower bounds that
//! follow from the settings on any machine.

use std::time::Duration;

use tierline::loadgen::{baseline, run, LoadgenArgs, Mode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn args(url: String, out: std::path::PathBuf) -> LoadgenArgs {
    let out = out.to_string_lossy().into_owned();
    #[rustfmt::skip]
    let flags = [
        "--url", &url, "--mode", "baseline", "--rate", "2000", "--duration", "1500ms",
        "--arrivals", "constant", "--connections", "4", "--agents", "50", "--queues", "4",
        "--seed", "3", "--run-id", "t", "--out", &out, "--timeout", "30s", "--drain", "60s",
        "--sustained-p99-ms", "60000",
    ];
    LoadgenArgs::from_flags(flags).unwrap()
}

/// The bare baseline server on an ephemeral port: its address, its stop, its task.
async fn start_baseline() -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(baseline::serve(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_run_sends_and_answers_every_scheduled_event() {
    let (addr, stop, server) = start_baseline().await;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.json");
    // The server runs in this process: its CPU time during the measured phase is reported.
    let mut a = args(format!("http://{addr}"), out.clone());
    a.server_pid = Some(std::process::id());
    let report = run(&a).await.unwrap();
    if cfg!(target_os = "linux") {
        let server_cpu = report.server_cpu_s.unwrap();
        let generator_cpu = report.generator_cpu_s.unwrap();
        // Both read the same process over the same phase (rounded to 1 ms, read in turn).
        assert!(
            (server_cpu - generator_cpu).abs() <= 0.02,
            "{server_cpu} vs {generator_cpu}"
        );
        assert!(report.server_cpu_us_per_event.is_some());
    }

    // 2,000/s for 1.5 s at a constant rate is exactly 3,000 slots, all sent and answered 200.
    assert_eq!(report.scheduled, 3000);
    assert_eq!(report.sent, 3000);
    assert_eq!(report.answered, 3000);
    assert_eq!(report.statuses.get("200"), Some(&3000));
    assert_eq!(report.server_errors, 0);
    assert_eq!(report.setup_events, 50);
    assert_eq!(report.latency_ms.count, 3000);
    // The achieved rate is answers over the time to the last answer, never above the target.
    assert!(report.elapsed_s >= 1.5);
    assert!(report.achieved_rate > 0.0 && report.achieved_rate <= 2000.0);
    // Up to rounding: the rate is rounded to 1/s and elapsed to 1 ms in the report.
    let rounding = 0.5 * report.elapsed_s + 0.0005 * report.achieved_rate + 1e-9;
    assert!(
        (report.achieved_rate * report.elapsed_s - 3000.0).abs() <= rounding,
        "rate {} × elapsed {} s is not 3,000 answers up to rounding",
        report.achieved_rate,
        report.elapsed_s
    );
    // Realistic lifecycles even though the baseline decides nothing (offers are pretended).
    for kind in ["interaction.arrived", "offer.accepted", "interaction.ended"] {
        assert!(
            report.sent_by_type.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {:?}",
            report.sent_by_type
        );
    }
    assert_eq!(report.sent_by_type.values().sum::<u64>(), 3000);
    assert!(report.sustained);

    // The file holds the same report as JSON.
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(file["settings"]["mode"], "baseline");
    assert_eq!(file["settings"]["target_rate"], 2000.0);
    assert_eq!(file["answered"], 3000);
    assert_eq!(file["latency_ms"]["count"], 3000);
    for p in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(file["latency_ms"][p].as_f64().unwrap() >= 0.0, "{p}");
    }
    let p = &file["latency_ms"];
    assert!(p["p50"].as_f64() <= p["p99"].as_f64() && p["p99"].as_f64() <= p["max"].as_f64());

    let _ = stop.send(());
    server.await.unwrap();
}

#[tokio::test]
async fn a_url_that_is_not_http_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args("https://127.0.0.1:1".into(), dir.path().join("r.json"));
    a.mode = Mode::Baseline;
    let err = run(&a).await.unwrap_err().to_string();
    assert!(err.contains("scheme `https` is not supported"), "{err}");
}

/// Answers the first `answered` requests (the setup's login batch) and then none: each later
/// request is read and held open for ever, like a daemon that hung.
async fn serve_then_hang(listener: TcpListener, answered: usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let seen = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                async move {
                    let _ = request.into_body().collect().await;
                    if n >= answered {
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        bytes::Bytes::from_static(baseline::ANSWER),
                    )))
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_shows_in_the_latency_not_only_in_the_failures() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_then_hang(listener, 1));

    let dir = tempfile::tempdir().unwrap();
    let mut a = args(format!("http://{addr}"), dir.path().join("r.json"));
    // 100 slots in 0.5 s; each request is given up after 300 ms, the run 1 s after its end.
    a.rate = 200.0;
    a.duration = Duration::from_millis(500);
    a.timeout = Duration::from_millis(300);
    a.drain = Duration::from_secs(1);
    let report = run(&a).await.unwrap();
    server.abort();

    assert_eq!(report.scheduled, 100);
    assert_eq!(report.answered, 0);
    let failed: u64 = report.failures.values().sum();
    assert_eq!(
        failed, 100,
        "every slot is a failure: {:?}",
        report.failures
    );
    assert!(report.failures.get("timeout").copied().unwrap_or(0) > 0);
    assert_eq!(report.server_errors, 100);
    assert!(!report.sustained);
    // Every slot is in the latency, at no less than the time it was given: a timed-out request
    // was sent no earlier than its slot and given up 300 ms later; an unsent one was given up
    // at the end of the drain, 1 s after the last slot was due.
    assert_eq!(report.latency_ms.count, 100);
    assert!(
        report.latency_ms.p50 >= 300.0,
        "p50 {} ms although nothing was answered",
        report.latency_ms.p50
    );
    assert!(report.latency_ms.p99 >= report.latency_ms.p50);
    // The server's own share covers answers only: there were none.
    assert_eq!(report.service_ms.count, 0);
}

#[tokio::test]
async fn a_server_that_never_answers_the_setup_is_an_error_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_then_hang(listener, 0));

    let dir = tempfile::tempdir().unwrap();
    let mut a = args(format!("http://{addr}"), dir.path().join("r.json"));
    a.timeout = Duration::from_millis(200);
    let err = run(&a).await.unwrap_err().to_string();
    server.abort();
    assert!(
        err.contains("agent.login batch: no answer within 200ms"),
        "{err}"
    );
}

/// The generator in its tierline mode pointed at the bare baseline server (a mistyped port)
/// must not report a clean tierline run: the logins are answered with one fixed result, not one
/// per login under its id, so the setup fails, says why, and leaves no report file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tierline_mode_refuses_a_server_that_is_not_tierline_and_leaves_no_report() {
    let (addr, stop, server) = start_baseline().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let mut a = args(format!("http://{addr}"), out.clone());
    a.mode = Mode::Tierline;
    let err = run(&a).await.unwrap_err().to_string();
    let _ = stop.send(());
    let _ = server.await;
    assert!(err.contains("is --url a tierline daemon?"), "{err}");
    assert!(err.contains("answered as `baseline`"), "{err}");
    assert!(!out.exists(), "an empty report file was left behind");
}

#[test]
fn a_zero_timeout_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args("http://127.0.0.1:9".into(), dir.path().join("r.json"));
    a.timeout = Duration::ZERO;
    let err = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(run(&a))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "--timeout must be longer than zero");
}
